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
//! The expansion runs in two steps per engine: `plan` (the host and its bridges) and
//! `containers` (placement, addresses, published ports) validate the section against the host
//! and decide everything in typed values, reporting each problem as Docker would; `emit` then
//! writes that plan into the topology, with the nat and FORWARD rules of dockerd from `rules`.

mod containers;
mod emit;
mod plan;
mod rules;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::file::{ListenSpec, TopologyFile};
use crate::topology::{Diagnostic, Located};

/// Docker engines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DockerSpec {
    /// One Docker daemon per host node (or VirtualBox VM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<DockerEngineSpec>,
}

/// A Docker daemon on a node, with its networks and containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DockerEngineSpec {
    /// The node (or VirtualBox VM) Docker runs on; it gets `docker0` = 172.17.0.1/16.
    pub host: Located<String>,
    /// User-defined bridge networks (`docker network create NAME`), in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<DockerNetworkSpec>,
    /// The running containers, in the order they were started (addresses follow that order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerSpec>,
}

/// A user-defined bridge network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DockerNetworkSpec {
    /// The network's name (`bridge`, `host` and `none` are Docker's own).
    pub name: Located<String>,
    /// `--subnet`, e.g. `172.30.0.0/24`; default: the next free subnet of Docker's pools
    /// (172.18.0.0/16, 172.19.0.0/16, …). The gateway is its first address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Located<String>>,
}

/// A container: a node of the topology (unless it uses the host's network).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ContainerSpec {
    /// The container's name (`--name`); it becomes a node name (probes say `from: NAME`).
    pub name: Located<String>,
    /// `--network`: `bridge` (default, docker0), `host`, `none` or a user-defined network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Located<String>>,
    /// `-p` entries: `HOSTPORT:CONTAINERPORT`, `IP:HOSTPORT:CONTAINERPORT`, each optionally
    /// followed by `/tcp` (default) or `/udp`, e.g. `2223:22`, `127.0.0.1:8080:80`, `5353:53/udp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Located<String>>,
    /// Services in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenSpec>,
    /// `--ip`: a fixed address in the network's subnet, without prefix; default: the next free
    /// one from .2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Located<String>>,
    /// DNS names that resolve to the container's address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Located<String>>,
}

/// Expands the section into bridges, containers and the host's NAT and filter rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &DockerSpec, out: &mut Vec<Diagnostic>) {
    for engine in &spec.engines {
        // Each engine is planned against the file as the engines before it left it.
        if let Some(plan) = plan::plan(file, engine, out) {
            emit::emit(file, &plan);
        }
    }
}
