//! Validation and planning of one Docker engine, as typed values: the host it runs on and its
//! bridges with their subnets here, the containers and their published ports in
//! `containers`. Every problem is reported while planning, in Docker's words where Docker has
//! some; nothing here writes to the topology (`emit` does, from the plan).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::containers::{self, Container, Published};
use super::{DockerEngineSpec, DockerNetworkSpec};
use crate::format::file::TopologyFile;
use crate::format::{Code, Diagnostic, Located, Span};

/// The default bridge `docker0`.
const DOCKER0: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(172, 17, 0, 0), 16);
/// The gateway of `docker0`, the host's address on it.
const DOCKER0_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
/// Docker's own network names; no user-defined network may take them.
const BUILT_IN: [&str; 3] = ["bridge", "host", "none"];

/// A Docker Engine version whose rules reachlab writes (`version:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// 20.10 (libnetwork v20.10.24): Debian's docker.io, the default.
    V20_10,
    /// 28 (moby v28.2.2 to v28.5.2, whose iptables rules are the same).
    V28,
}

impl Version {
    /// The versions, as `version:` names them.
    const NAMES: [(&'static str, Version); 2] = [("20.10", Version::V20_10), ("28", Version::V28)];

    /// The version as `version:` names it.
    pub fn name(self) -> &'static str {
        match self {
            Version::V20_10 => "20.10",
            Version::V28 => "28",
        }
    }
}

/// Everything one engine adds to the topology, decided and checked.
pub(super) struct EnginePlan<'a> {
    pub version: Version,
    pub host: Host,
    /// docker0 first, then the user-defined networks in creation order.
    pub bridges: Vec<Bridge>,
    /// The containers that were placed, in the order they were started.
    pub containers: Vec<Container<'a>>,
    /// The published ports that were accepted, in container order.
    pub published: Vec<Published<'a>>,
    /// docker-proxy serves the published ports (`--userland-proxy`, default true).
    pub userland_proxy: bool,
    /// The rules of the DOCKER-USER chain, as written.
    pub docker_user: &'a [crate::format::file::RuleSpec],
}

/// The node Docker runs on, as it was before Docker.
pub(super) struct Host {
    /// Its position in `file.nodes`.
    pub index: usize,
    pub name: String,
    /// The engine's `host:` entry: the place docker0 and the FORWARD policy point to.
    pub span: Span,
    /// Its addresses (those that parse), with their prefixes.
    pub addresses: Vec<Ipv4Net>,
    /// Whether it forwarded already (otherwise dockerd sets the FORWARD policy to DROP).
    pub was_router: bool,
}

/// A bridge of the engine, by its position in [`EnginePlan::bridges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BridgeId(pub usize);

/// A Docker bridge on the engine's host.
pub(super) struct Bridge {
    /// Docker's network name (`bridge` for docker0).
    pub network: String,
    /// The host's interface (`docker0`, `br-app`).
    pub iface: String,
    /// The segment standing for the bridge (`HOST-docker0`, `HOST-br-app`).
    pub segment: String,
    pub subnet: Ipv4Net,
    /// The host's address on the bridge, the containers' default gateway.
    pub gateway: Ipv4Addr,
    /// Where the network is declared (the engine's `host:` for docker0).
    pub span: Span,
    /// Addresses taken (network, gateway, containers), while containers are placed.
    pub used: Vec<Ipv4Addr>,
    /// `--internal`: nothing leaves or enters the network.
    pub internal: bool,
    /// Inter-container communication on the bridge.
    pub icc: bool,
}

impl EnginePlan<'_> {
    /// The bridge `id` stands for.
    pub fn bridge(&self, id: BridgeId) -> &Bridge {
        &self.bridges[id.0]
    }
}

/// Validates `engine` against `file` and plans it; `None` when its host does not exist.
pub(super) fn plan<'a>(
    file: &TopologyFile,
    engine: &'a DockerEngineSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<EnginePlan<'a>> {
    let version = version(engine, out);
    let host = find_host(file, engine, out)?;
    let mut bridges = plan_bridges(&host, engine, out);
    let listening = &file.nodes[host.index].listen;
    let (containers, published) =
        containers::place(&host.name, listening, &mut bridges, engine, out);
    Some(EnginePlan {
        version,
        host,
        bridges,
        containers,
        published,
        userland_proxy: engine.userland_proxy.as_ref().is_none_or(|u| u.value),
        docker_user: &engine.docker_user,
    })
}

/// The engine's `version:` (default 20.10); an unknown one is reported, and 20.10 planned.
fn version(engine: &DockerEngineSpec, out: &mut Vec<Diagnostic>) -> Version {
    let Some(v) = &engine.version else {
        return Version::V20_10;
    };
    if let Some((_, version)) = Version::NAMES.iter().find(|(name, _)| *name == v.value) {
        return *version;
    }
    let names: Vec<String> = Version::NAMES
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    out.push(
        Diagnostic::error(
            Code::BadValue,
            v.span,
            format!(
                "reachlab does not know the iptables rules of Docker Engine `{}`",
                v.value
            ),
        )
        .label("unknown version")
        .hint(format!(
            "write one of {} (\"28\" stands for 28.2.2 to 28.5.2, which write the same rules)",
            names.join(", ")
        )),
    );
    Version::V20_10
}

/// The engine's host node, or an error naming the closest node.
fn find_host(
    file: &TopologyFile,
    engine: &DockerEngineSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<Host> {
    let Some(index) = file
        .nodes
        .iter()
        .position(|n| n.name.value == engine.host.value)
    else {
        let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
        let d = Diagnostic::error(
            Code::UnknownReference,
            engine.host.span,
            format!(
                "a Docker engine runs on host `{}`, which is not a node of this file",
                engine.host.value
            ),
        )
        .label("unknown host");
        out.push(match crate::format::closest_name(&engine.host.value, &names) {
            Some(c) => d.hint(format!(
                "did you mean `{c}`? the host is a node under `nodes:` or a VM under `virtualbox:`"
            )),
            None => d.hint(
                "name a node under `nodes:` (or a VM under `virtualbox:`) that Docker runs on",
            ),
        });
        return None;
    };
    let node = &file.nodes[index];
    Some(Host {
        index,
        name: node.name.value.clone(),
        span: engine.host.span,
        addresses: node
            .interfaces
            .iter()
            .flat_map(|i| i.addresses.iter())
            .filter_map(|a| a.value.parse::<Ipv4Net>().ok())
            .collect(),
        was_router: node.forwarding.unwrap_or(false),
    })
}

/// Docker's default address pools after docker0: 172.18/16 … 172.31/16, then the /20s of
/// 192.168.0.0/16.
fn pool() -> impl Iterator<Item = Ipv4Net> {
    let sixteens = (18..=31u8).map(|b| Ipv4Net::new_assert(Ipv4Addr::new(172, b, 0, 0), 16));
    let twenties = (0..16u8).map(|k| Ipv4Net::new_assert(Ipv4Addr::new(192, 168, k * 16, 0), 20));
    sixteens.chain(twenties)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Bridge {
    /// The default bridge network, docker0.
    fn docker0(host_name: &str, span: Span) -> Self {
        Self {
            network: "bridge".into(),
            iface: "docker0".into(),
            segment: format!("{host_name}-docker0"),
            subnet: DOCKER0,
            gateway: DOCKER0_GATEWAY,
            span,
            used: vec![DOCKER0.network(), DOCKER0_GATEWAY],
            internal: false,
            icc: true,
        }
    }

    /// User-defined network `name` on `subnet`, gateway its first address; the interface is
    /// `br-NAME` cut to the 15 characters of an interface name.
    fn user_defined(host_name: &str, name: &str, subnet: Ipv4Net, span: Span) -> Self {
        let gateway = Ipv4Addr::from(u32::from(subnet.network()) + 1);
        Self {
            network: name.to_owned(),
            iface: format!("br-{name}").chars().take(15).collect(),
            segment: format!("{host_name}-br-{name}"),
            subnet,
            gateway,
            span,
            used: vec![subnet.network(), gateway],
            internal: false,
            icc: true,
        }
    }
}

/// docker0, then each user-defined network that is valid, in creation order.
fn plan_bridges(host: &Host, engine: &DockerEngineSpec, out: &mut Vec<Diagnostic>) -> Vec<Bridge> {
    let mut docker0 = Bridge::docker0(&host.name, host.span);
    docker0.icc = engine.icc.as_ref().is_none_or(|i| i.value);
    let mut bridges = vec![docker0];
    for network in &engine.networks {
        if let Some(bridge) = plan_network(host, network, &bridges, out) {
            bridges.push(bridge);
        }
    }
    bridges
}

/// A user-defined network: a name of its own and a subnet, fixed or from the pools.
fn plan_network(
    host: &Host,
    network: &DockerNetworkSpec,
    bridges: &[Bridge],
    out: &mut Vec<Diagnostic>,
) -> Option<Bridge> {
    let host_name = &host.name;
    let name = &network.name.value;
    let built_in = BUILT_IN.contains(&name.as_str());
    if built_in || bridges.iter().any(|b| &b.network == name) {
        out.push(Diagnostic::error(Code::DuplicateName, network.name.span, format!("Docker on `{host_name}` says: network with name {name} already exists")).label("name taken").hint(if built_in { "`bridge`, `host` and `none` are Docker's own networks; use them as a container's `network:` directly" } else { "give each network its own name" }));
        return None;
    }
    let subnet = match &network.subnet {
        Some(text) => fixed_subnet(host_name, text, bridges, out)?,
        None => pooled_subnet(host, network, bridges, out)?,
    };
    let mut bridge = Bridge::user_defined(host_name, name, subnet, network.name.span);
    bridge.internal = network.internal.as_ref().is_some_and(|i| i.value);
    bridge.icc = network.icc.as_ref().is_none_or(|i| i.value);
    Some(bridge)
}

/// `--subnet`: a network address with room for a gateway and a container, overlapping no
/// other bridge.
fn fixed_subnet(
    host_name: &str,
    text: &Located<String>,
    bridges: &[Bridge],
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Net> {
    let Ok(net) = text.value.parse::<Ipv4Net>() else {
        out.push(Diagnostic::error(Code::BadAddress, text.span, format!("`{}` is not a subnet", text.value)).label("expected ADDRESS/PREFIX").hint("write the subnet as `docker network create --subnet` takes it, e.g. `172.30.0.0/24`"));
        return None;
    };
    if net.trunc() != net {
        out.push(
            Diagnostic::error(
                Code::HostBitsSet,
                text.span,
                format!("subnet `{}` has host bits set", text.value),
            )
            .label("host bits set")
            .hint(format!("did you mean `{}`?", net.trunc())),
        );
        return None;
    }
    if net.prefix_len() > 30 {
        out.push(
            Diagnostic::error(
                Code::BadValue,
                text.span,
                format!("subnet `{net}` has no room for a gateway and a container"),
            )
            .label("too small")
            .hint("use a prefix of /30 or shorter"),
        );
        return None;
    }
    if let Some(other) = bridges.iter().find(|b| overlaps(&b.subnet, &net)) {
        out.push(Diagnostic::error(Code::DuplicateAddress, text.span, format!("Docker on `{host_name}` says: Pool overlaps with other one on this address space (network `{}` has {})", other.network, other.subnet)).label("overlapping subnet").hint("choose a subnet that no other Docker network of this host uses"));
        return None;
    }
    Some(net)
}

/// The first pool subnet that overlaps neither a bridge nor a network of the host.
fn pooled_subnet(
    host: &Host,
    network: &DockerNetworkSpec,
    bridges: &[Bridge],
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Net> {
    let free = pool().find(|p| {
        !bridges.iter().any(|b| overlaps(&b.subnet, p))
            && !host.addresses.iter().any(|h| overlaps(&h.trunc(), p))
    });
    if free.is_none() {
        let (host_name, name) = (&host.name, &network.name.value);
        out.push(Diagnostic::error(Code::BadValue, network.name.span, format!("Docker on `{host_name}` says: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network `{name}`")).label("pools exhausted").hint("give the network an explicit `subnet:`"));
    }
    free
}
