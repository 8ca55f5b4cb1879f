//! The emulator: the model built for real in Linux network namespaces, probed there, and held
//! against the simulator's prediction.
//!
//! - [`up`] builds a lab (namespaces, veths, bridges, addresses, routes, sysctls, nftables,
//!   netem, listeners); [`down`] and [`down_all`] remove what a trusted state file lists of
//!   its own lab (see `state` for what is trusted).
//! - [`compare_with`] runs probes in the lab and beside the simulator, and compares them.
//! - [`live`] reads the machine it runs on as a topology and probes from it.
//! - With [`UpOptions::dockerd`], each Docker host runs the real dockerd, which makes the
//!   Docker networks, containers and rules the `docker:` section asks for (see `dockerd`).
//!
//! Everything it creates is named with [`PREFIX`] and lives inside namespaces it made; the root
//! namespace is never configured. See `names` for the naming scheme and `build` for the steps.

mod arp_responder;
mod build;
mod check;
mod dockerd;
mod error;
pub mod live;
mod names;
mod netns;
mod nft;
mod probe;
mod serve;
mod state;

pub use build::scripts as build_scripts;
pub use build::{
    ARP_RETRANS_MS, DownReport, Lab, ListenerHost, UpOptions, down, down_all, identify, preflight,
    serve_lab, strays, up,
};
pub(crate) use check::ms;
pub use check::{
    CONCURRENCY, CompareOptions, Comparison, Echo, MAX_RTT, NotCompared, Planned, Tally, compare,
    compare_with, expectations,
};
pub use error::{EmulateError, Leftovers, Refusal};
pub use names::{LabId, Layout, PREFIX, bridge, port};
pub use netns::{
    Script, UnsafeWord, exists as namespace_exists, is_batch_word, list as namespaces, run_in,
};
pub use nft::{MAX_NFT_DEPTH, ruleset as nft_ruleset};
pub use probe::{
    EchoAnswer, HttpReply, KernelProbe, KernelResult, WAIT, parse_http, run_counted_in_namespace,
    run_here, run_in_namespace,
};
pub use serve::Servers;
pub use state::{
    DEFAULT_STATE_DIR, LabState, OwnedProcess, check_dir as check_state_dir, state_dir,
};
