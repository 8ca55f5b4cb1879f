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
//!   With `networks:` it has `eth0`, `eth1`, … in that order; the default route and the
//!   published ports go to the non-internal network whose name sorts first (libnetwork's
//!   gateway endpoint), none when all are internal.
//! - `compose:` files are brought up as `docker compose up` would, into more networks and
//!   containers of the engine (`compose`).
//! - NAT: `POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE`; rules here have no `! -o`, so it is
//!   one masquerade rule per non-Docker interface of the host (`out: IF`), which is the same set
//!   of packets. A published port `-p [IP:]H:C[/proto]` is `DNAT --to-destination cIP:C` in
//!   PREROUTING for packets to a local address (or IP) that do not come from a Docker bridge
//!   (again one rule per non-Docker interface, `in: IF`: the nat DOCKER chain RETURNs every
//!   bridge), and in OUTPUT for the host's own connections to its non-loopback addresses
//!   (`! -d 127.0.0.0/8`). docker-proxy (userland proxy, on by default) listens on `[IP:]H` on the
//!   host and serves what the DNAT rules skip: the host's connections to 127.0.0.1 and
//!   containers' connections to a host address; it answers as the container's service does
//!   (or accepts and closes when nothing listens there).
//! - FORWARD, flattened in iptablesdoc order before the host's own rules: isolation (drop
//!   `-i BR_A -o BR_B` for each pair of bridges), then per bridge: RELATED,ESTABLISHED
//!   toward it, published ports (`-d cIP ! -i BR -o BR -p P --dport C`), drop the rest entering
//!   it from outside, accept what leaves it. When the host was not a router, Docker turned on
//!   `ip_forward` itself and so set the FORWARD policy to DROP (moby/libnetwork#1526).
//!   `DOCKER-USER` is empty and not modelled.
//!
//! The expansion runs in two steps per engine, after `compose` added the Compose files' networks
//! and containers: `plan` (the host and its bridges) and
//! `containers` (placement, addresses, published ports) validate the section against the host
//! and decide everything in typed values, reporting each problem as Docker would; `emit` then
//! writes that plan into the topology, with the nat and FORWARD rules of dockerd from `rules`.

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
