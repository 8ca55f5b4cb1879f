//! The `docker:` section as the file writes it: engines on nodes, their networks, containers
//! and published ports, with Docker's own words. These types are the format (and the JSON
//! Schema); `crate::platform::docker` expands them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::Located;
use crate::format::file::ListenSpec;

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
    /// The Docker Engine's version, for the iptables rules it writes: `"20.10"` (default;
    /// Debian's docker.io) or `"28"` (Docker Engine 28.2.2 to 28.5.2, which write the same
    /// rules: a raw table, DOCKER-FORWARD, no RETURN in DOCKER-USER; docs/platform-semantics.md,
    /// "Docker", **Docker 28**).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Located<String>>,
    /// The daemon's `--icc` (default true): whether containers on docker0 may reach each
    /// other. `false` drops what docker0 bridges from one container to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icc: Option<Located<bool>>,
    /// The daemon's `--userland-proxy` (default true): docker-proxy listens on published
    /// ports; `false` leaves them to the nat rules alone (hairpin NAT on the bridges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userland_proxy: Option<Located<bool>>,
    /// Rules of the `DOCKER-USER` chain, in order: filter rules with an `action` (the keys of
    /// a `firewall:` rule), which FORWARD runs before Docker's own rules. Where a host's own
    /// filtering of what reaches or leaves its containers belongs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docker_user: Vec<crate::format::file::RuleSpec>,
    /// User-defined bridge networks (`docker network create NAME`), in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<DockerNetworkSpec>,
    /// The running containers, in the order they were started (addresses follow that order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerSpec>,
    /// Compose files (`docker compose -f FILE up`), relative to this file's folder and inside
    /// it, each brought up after the `networks:` and `containers:` above, in this order
    /// (docs/platform-semantics.md, "Docker", **Compose**).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose: Vec<Located<String>>,
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
    /// `--internal`: no way out of the network and none in (no masquerade, no published
    /// ports), only its containers and the host's address on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<Located<bool>>,
    /// `-o com.docker.network.bridge.enable_icc` (default true): `false` drops what the bridge
    /// carries from one of its containers to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icc: Option<Located<bool>>,
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
    /// Several networks, instead of `network:`: `--network` the first, then `docker network
    /// connect` each other one, in this order; the container gets `eth0`, `eth1`, … on them in
    /// this order. Its default route goes through the gateway of the non-internal network whose
    /// name sorts first (docs/platform-semantics.md, "Docker", **Several networks**).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Located<String>>,
    /// `-p` entries: `HOSTPORT:CONTAINERPORT`, `IP:HOSTPORT:CONTAINERPORT`, each optionally
    /// followed by `/tcp` (default) or `/udp`, e.g. `2223:22`, `127.0.0.1:8080:80`, `5353:53/udp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Located<String>>,
    /// Services in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenSpec>,
    /// `--ip`: a fixed address in the network's subnet, without prefix; default: the next free
    /// one from .2. With `networks:`, write `addresses:` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Located<String>>,
    /// With `networks:`: the fixed address on some of them (`docker network connect --ip`), by
    /// network name, e.g. `{ backend: 172.30.1.10 }`; the others take the next free one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, Located<String>>,
    /// DNS names that resolve to the container's address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Located<String>>,
}
