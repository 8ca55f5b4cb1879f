//! reachlab: predict what `ping`, `ssh` and `curl` do on a network before it is deployed.
//!
//! The crate is a set of focused modules behind a thin command-line binary:
//!
//! - [`topology`] owns the YAML file format: its serde types, loading, the schema-guided structural
//!   check, semantic validation with `file:line:column` diagnostics, and the JSON Schema.
//! - [`model`] is the small core network model every file lowers into: nodes, interfaces, segments,
//!   routing tables, listeners and expectations, each remembering where in the file it came from.
//! - [`render`] turns models and diagnostics into text that reads like the real tools, or JSON.
//! - [`invariants`] checks a file's `invariants:` over every flow, mutates the file to find what
//!   each line protects (`reachlab fuzz`), and takes segments and nodes down (`--failures`).
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
