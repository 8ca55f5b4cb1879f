//! Renderers: text that reads like the real tools (`ip route`), diagnostics that point at the
//! offending text, the matrix as a grid, CSV, JSON and Markdown, and JSON twins of each for
//! scripts.

mod diagnostics;
pub mod diff;
pub mod graph;
pub mod matrix;
mod palette;
pub mod pcap;
mod probe;
mod show;

pub use diagnostics::{render_report, render_summary};
pub use palette::{Palette, console_width};
pub(crate) use probe::filter_words;
pub use probe::{
    HopRecord, ToolOutput, curl_output, ping_output, ssh_output, tcp_output, trace_rows,
    trace_table, udp_output, why_block,
};
pub use show::{
    InterfaceRecord, ListenRecord, NodeRecord, RouteRecord, SegmentRecord, ShowRecord, ip_route,
    ip_route_line, ip_route_reject_line, show_json, show_text,
};
