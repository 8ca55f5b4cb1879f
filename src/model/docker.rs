//! What a `docker:` section asks of dockerd, for an emulator that runs the real dockerd
//! (`reachlab emulate check --dockerd`): per engine the daemon's flags, the user-defined
//! networks in creation order, the bridged containers in start order with their addresses and
//! `-p` entries, the `DOCKER-USER` rules, and which of the host's listeners are docker-proxy's
//! (dockerd binds those itself). The rest of the model already holds the result (nodes,
//! segments, the host's rules); this says how to make dockerd produce it. Everything is named
//! as in the [`super::Network`]: nodes, interfaces and segments by their names.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Port, Proto};

/// One Docker engine on a node of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEngine {
    /// The node dockerd runs on.
    pub host: String,
    /// The Docker Engine version whose rules the model holds (`20.10`, `28`): a real dockerd
    /// referees only a file of its own version.
    pub version: String,
    /// Whether the host forwarded before dockerd started (dockerd sets FORWARD's policy to
    /// DROP when it turns forwarding on itself).
    pub forwarding_before: bool,
    /// `--userland-proxy`.
    pub userland_proxy: bool,
    /// `--icc` (docker0's inter-container communication).
    pub icc: bool,
    /// Whether the host has netfilter rules of its own besides dockerd's.
    pub own_rules: bool,
    /// Those rules as `iptables-save` text (set by the lowering): loaded before dockerd starts,
    /// as they were there before it.
    pub own_rules_text: Option<String>,
    /// The `DOCKER-USER` rules, each as the words after `iptables -I DOCKER-USER N`, in
    /// order; why they cannot be written so, when one cannot.
    pub docker_user: Result<Vec<Vec<String>>, String>,
    /// The user-defined networks, in creation order (docker0 is dockerd's own).
    pub networks: Vec<DockerNetwork>,
    /// The containers with a network namespace of their own on Docker's bridges, in start
    /// order (`--network host` ones only add listeners to the host; `--network none` ones are
    /// plain nodes).
    pub containers: Vec<DockerContainer>,
    /// The host's listeners that are docker-proxy's: `(protocol, address, port)`.
    pub proxies: Vec<(Proto, Option<Ipv4Addr>, Port)>,
}

/// A user-defined bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerNetwork {
    /// Docker's name for it.
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `--internal`.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc`.
    pub icc: bool,
    /// The host's bridge interface (`br-NAME`, at most 15 characters).
    pub bridge: String,
    /// The segment standing for it.
    pub segment: String,
}

/// A container on one bridge or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerContainer {
    /// Its name, also the name of its node.
    pub name: String,
    /// Its networks in attach order (`eth0`, `eth1`, …): Docker's network name (`bridge` for
    /// docker0) and the address.
    pub attachments: Vec<(String, Ipv4Addr)>,
    /// The address of its default gateway, if it has one.
    pub gateway: Option<Ipv4Addr>,
    /// Its `-p` entries, as written.
    pub publish: Vec<String>,
}
