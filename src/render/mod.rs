//! Renderers: text that reads like the real tools (`ip route`), diagnostics that point at the
//! offending text, the matrix as a grid, CSV, JSON and Markdown, and JSON twins of each for
//! scripts.

mod diagnostics;
pub mod diff;
#[cfg(all(feature = "emulate", target_os = "linux"))]
mod emulate;
pub mod graph;
mod invariants;
pub mod matrix;
mod palette;
pub mod pcap;
mod probe;
mod result;
mod show;
mod traceroute;

pub use diagnostics::{render_report, render_summary};
#[cfg(all(feature = "emulate", target_os = "linux"))]
pub use emulate::emulate_table;
pub use invariants::{failures_text, fuzz_text, status_text, violation_text};
pub use palette::{Palette, console_width};
pub use probe::{
    HopRecord, ToolOutput, curl_output, ping_output, ssh_output, tcp_output, trace_rows,
    trace_table, udp_output, why_block,
};
pub use result::{
    DroppedFixRecord, FixRecord, ProbeRecord, WhyRecord, probe_record, probe_text, tool_output,
};
pub use show::{
    InterfaceRecord, ListenRecord, NodeRecord, RouteRecord, SegmentRecord, ShowRecord, ip_route,
    ip_route_line, ip_route_reject_line, iptables_lines, show_json, show_text,
};
pub use traceroute::{
    HopRecord as TracerouteHopRecord, ProbeAnswer, TraceRecord, traceroute_output,
    traceroute_record,
};
