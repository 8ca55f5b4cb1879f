//! `docker:` — Docker engines on nodes (or VirtualBox VMs), their bridges, containers and
//! published ports, with the iptables rules Docker writes (docs/platform-semantics.md, "Docker"):
//!
//! - Every engine has `docker0` = 172.17.0.0/16 (gateway .1); user-defined networks take, in
//!   creation order, the first free subnet of Docker's default pools (172.18/16, 172.19/16, the
//!   /16s of 172.20/14, 172.24/14, 172.28/14, then the /20s of 192.168.0.0/16), skipping
//!   subnets that overlap another bridge or an interface of the host; `subnet:` fixes one.
//!   Each bridge is a segment `HOST-docker0` / `HOST-br-NAME` (segment names cannot hold `@`)
//!   and an interface `docker0` / `br-NAME` of the host (Docker names it `br-<network id>`).
//! - A container is a node with `eth0` on its bridge (addresses from .2 in order, MAC
//!   `02:42:` + the address, as Docker before v26), default route via the gateway.
//!   `network: host` adds its listeners to the host; `network: none` leaves it loopback only.
//!   With `networks:` it has `eth0`, `eth1`, … in that order; the default route goes to the
//!   network whose name sorts first, non-internal ones first (libnetwork's gateway
//!   endpoint), and the published ports too unless that network is internal.
//! - `compose:` files are brought up as `docker compose up` would, into more networks and
//!   containers of the engine (`compose`).
//! - Rules: what dockerd of the engine's `version:` writes, replayed command by command
//!   (`iptables`, each step citing moby's source), as `iptables-save` text merged with the host's
//!   own rules where dockerd's inserts and appends leave them.
//!   - `"20.10"` (default; libnetwork v20.10.24, Debian's docker.io): nat PREROUTING and OUTPUT
//!     jump to nat DOCKER for a local destination (OUTPUT not for 127.0.0.0/8 with the userland
//!     proxy), which RETURNs what comes from a bridge (with the proxy) and DNATs each published
//!     port; POSTROUTING masquerades each subnet (and, per published port, a container reaching
//!     itself through the host). FORWARD: DOCKER-USER, the isolation chains, then per bridge
//!     RELATED,ESTABLISHED toward it, the DOCKER chain (published ports accepted), what leaves
//!     it accepted; icc=false a DROP appended after the host's own rules. `docker_user:` rules
//!     go first in DOCKER-USER.
//!   - `"28"` (28.2.2 to 28.5.2): FORWARD only jumps to DOCKER-USER (empty) and DOCKER-FORWARD,
//!     which runs DOCKER-CT, the isolation chains, DOCKER-BRIDGE (→ DOCKER, whose ACCEPTs of
//!     published ports come before each bridge's DROP of whatever else enters it) and accepts
//!     what leaves each bridge; raw PREROUTING drops every packet for a container's address
//!     that does not come through its bridge, and for a port published on 127.0.0.1 that does
//!     not come through `lo`.
//!
//!   Either way, when the host was not a router, Docker turned on `ip_forward` itself and so set
//!   the FORWARD policy to DROP (moby/libnetwork#1526). docker-proxy (userland proxy, on by
//!   default) listens on `[IP:]H` on the host and serves what the DNAT rules skip: the host's
//!   connections to 127.0.0.1 and containers' connections to a host address; it answers as the
//!   container's service does (or accepts and closes when nothing listens there).
//!
//! The expansion runs in two steps per engine, after `compose` added the Compose files' networks
//! and containers: `plan` (the host and its bridges) and
//! `containers` (placement, addresses, published ports) validate the section against the host
//! and decide everything in typed values, reporting each problem as Docker would; `emit` then
//! writes that plan into the topology, with dockerd's rules from `iptables`.

mod compose;
mod containers;
mod emit;
mod iptables;
mod plan;

pub use crate::format::platform::docker::{
    ContainerSpec, DockerEngineSpec, DockerNetworkSpec, DockerSpec,
};

use crate::format::Diagnostic;
use crate::format::file::TopologyFile;

/// Expands the section into bridges, containers and the host's NAT and filter rules; Compose
/// files are relative to `base`, the topology file's folder.
pub(crate) fn expand(
    file: &mut TopologyFile,
    spec: &DockerSpec,
    base: &std::path::Path,
    out: &mut Vec<Diagnostic>,
) {
    for engine in &spec.engines {
        let brought_up;
        let engine = if engine.compose.is_empty() {
            engine
        } else {
            brought_up = compose::bring_up(engine, base, out);
            &brought_up
        };
        // Each engine is planned against the file as the engines before it left it.
        if let Some(plan) = plan::plan(file, engine, out) {
            emit::emit(file, &plan);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::format::Diagnostic;
    use crate::format::file::TopologyFile;

    /// The topology written in `text` with its `docker:` section expanded, and what expanding
    /// reported.
    pub(in crate::platform::docker) fn expand_text(text: &str) -> (TopologyFile, Vec<Diagnostic>) {
        let mut file: TopologyFile = match serde_saphyr::from_str(text) {
            Ok(file) => file,
            Err(e) => panic!("test topology does not parse: {e}"),
        };
        let mut out = Vec::new();
        if let Some(spec) = file.docker.take() {
            super::expand(&mut file, &spec, std::path::Path::new("."), &mut out);
        }
        (file, out)
    }
}
