//! reachlab: predict what `ping`, `ssh` and `curl` do on a network before it is deployed.
//!
//! The crate is a set of focused modules behind a thin command-line binary, each naming only
//! the ones before it (`tests/layers.rs` holds the ladder):
//!
//! - [`model`] is the small core network model every file lowers into: nodes, interfaces,
//!   segments, routing tables, listeners and expectations, each remembering where in the file it
//!   came from.
//! - [`mod@format`] is the topology file as written: serde types, positions, diagnostics, the
//!   schema-guided structural check, the JSON Schema; [`platform`] expands its platform sections;
//!   [`topology`] loads a file (parse, expand, validate, lower into the model) and writes one.
//! - [`sim`] moves packets: one set of per-hop decisions, the discrete-event engine, the fast
//!   path, captures.
//! - The analyses: [`explain`] (why a probe failed), [`run`] (a probe end to end), [`matrix`],
//!   [`invariants`] (checks over every flow, failures, fuzz), [`fix`] (verified fixes),
//!   [`diff`], and the emulator (`emulate`), which holds predictions against the kernel.
//! - [`render`] turns results into text that reads like the real tools, JSON, graphs and pcap.
//!
//! Cargo features, both on by default: `emulate` (Linux only) builds the emulator, which holds a
//! topology's predictions against the kernel in network namespaces (`emulate`, `live`), and
//! `testing` the proptest strategies of `testing`. `cargo build --no-default-features` is the
//! simulator alone, with no Linux-only dependency, on any system.
//!
//! ```
//! let text = "
//! segments:
//!   - name: lan
//! nodes:
//!   - name: pc
//!     interfaces:
//!       - { name: eth0, segment: lan, addresses: [192.168.1.10/24] }
//!     routes:
//!       - { to: default, via: 192.168.1.1 }
//! ";
//! let net = reachlab::topology::load_str("example.yaml", text).expect("valid").network;
//! let pc = net.node_by_name("pc").expect("pc exists");
//! let lines = reachlab::render::ip_route(&net, pc);
//! assert_eq!(lines, [
//!     "default via 192.168.1.1 dev eth0",
//!     "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.10",
//! ]);
//! ```

pub mod diff;
#[cfg(all(feature = "emulate", target_os = "linux"))]
pub mod emulate;
pub mod explain;
pub mod fix;
pub mod format;
pub mod generate;
pub mod invariants;
pub mod matrix;
pub mod model;
pub mod platform;
pub mod render;
pub mod run;
pub mod sim;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;
pub mod traceroute;
