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

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::file::{
    ActionName, ChainSpec, FirewallSpec, InterfaceSpec, ListenSpec, NatChainName, NodeSpec,
    PolicyName, ProtoName, RouteSpec, RuleProto, RuleSpec, SegmentSpec, StateName, TopologyFile,
};
use crate::topology::{Code, Diagnostic, Located, Span};

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

fn at<T>(value: T, span: Span) -> Located<T> {
    Located::at(value, span)
}

/// A Docker bridge on the engine's host.
struct Bridge {
    /// Docker's network name (`bridge` for docker0).
    network: String,
    /// The host's interface (`docker0`, `br-app`).
    iface: String,
    segment: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    /// Addresses taken (network, gateway, containers).
    used: Vec<Ipv4Addr>,
}

/// A parsed `-p` entry.
struct Publish {
    host_ip: Option<Ipv4Addr>,
    host_port: u16,
    container_port: u16,
    proto: RuleProto,
}

/// A published port of a container: the `-p` entry, the container's address and name, the
/// text as written and its place.
type Published = (Publish, Ipv4Addr, String, String, Span);

/// Docker's default address pools after docker0: 172.18/16 … 172.31/16, then the /20s of
/// 192.168.0.0/16.
fn pool() -> impl Iterator<Item = Ipv4Net> {
    let sixteens =
        (18..=31u8).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"));
    let twenties =
        (0..16u8).map(|k| Ipv4Net::new(Ipv4Addr::new(192, 168, k * 16, 0), 20).expect("valid /20"));
    sixteens.chain(twenties)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `-p` syntax: `H:C`, `IP:H:C`, with an optional `/tcp` or `/udp`.
fn parse_publish(text: &str) -> Result<Publish, &'static str> {
    let (ports, proto) = match text.rsplit_once('/') {
        Some((p, "tcp")) => (p, RuleProto::Tcp),
        Some((p, "udp")) => (p, RuleProto::Udp),
        Some(_) => return Err("the protocol after `/` is `tcp` or `udp`"),
        None => (text, RuleProto::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        [_] => {
            return Err(
                "give the host port too (`HOSTPORT:CONTAINERPORT`): a random host port cannot be predicted",
            );
        }
        _ => return Err("expected `HOSTPORT:CONTAINERPORT` or `IP:HOSTPORT:CONTAINERPORT`"),
    };
    let host_ip = match ip {
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| "the host IP must be an IPv4 address like `127.0.0.1`")?,
        ),
        None => None,
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0);
    match (port(host), port(container)) {
        (Some(host_port), Some(container_port)) => Ok(Publish {
            host_ip,
            host_port,
            container_port,
            proto,
        }),
        _ if host.is_empty() => Err(
            "give the host port (`HOSTPORT:CONTAINERPORT`): a random host port cannot be predicted",
        ),
        _ => Err("ports are numbers from 1 to 65535 (ranges are not supported)"),
    }
}

fn addr_of(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>().ok()
}

/// Expands the section into bridges, containers and the host's NAT and filter rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &DockerSpec, out: &mut Vec<Diagnostic>) {
    for engine in &spec.engines {
        expand_engine(file, engine, out);
    }
}

fn expand_engine(file: &mut TopologyFile, engine: &DockerEngineSpec, out: &mut Vec<Diagnostic>) {
    let Some(host_index) = file
        .nodes
        .iter()
        .position(|n| n.name.value == engine.host.value)
    else {
        let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
        let mut d = Diagnostic::error(
            Code::UnknownReference,
            engine.host.span,
            format!(
                "a Docker engine runs on host `{}`, which is not a node of this file",
                engine.host.value
            ),
        )
        .label("unknown host");
        d = match crate::topology::closest_name(&engine.host.value, &names) {
            Some(c) => d.hint(format!(
                "did you mean `{c}`? the host is a node under `nodes:` or a VM under `virtualbox:`"
            )),
            None => d.hint(
                "name a node under `nodes:` (or a VM under `virtualbox:`) that Docker runs on",
            ),
        };
        out.push(d);
        return;
    };
    let host_name = file.nodes[host_index].name.value.clone();
    let host_span = engine.host.span;
    // The host's interfaces before Docker: where masqueraded traffic leaves, where DNAT applies.
    let outer_ifaces: Vec<String> = file.nodes[host_index]
        .interfaces
        .iter()
        .map(|i| i.name.value.clone())
        .collect();
    let host_nets: Vec<Ipv4Net> = file.nodes[host_index]
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .filter_map(|a| addr_of(&a.value))
        .map(|n| n.trunc())
        .collect();

    // Bridges: docker0, then the user-defined networks in creation order.
    let docker0: Ipv4Net = "172.17.0.0/16".parse().expect("valid");
    let mut bridges = vec![Bridge {
        network: "bridge".into(),
        iface: "docker0".into(),
        segment: format!("{host_name}-docker0"),
        subnet: docker0,
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        used: vec![docker0.network(), Ipv4Addr::new(172, 17, 0, 1)],
    }];
    let mut bridge_spans = vec![host_span];
    for network in &engine.networks {
        let name = &network.name.value;
        if ["bridge", "host", "none"].contains(&name.as_str())
            || bridges.iter().any(|b| &b.network == name)
        {
            out.push(Diagnostic::error(Code::DuplicateName, network.name.span, format!("Docker on `{host_name}` says: network with name {name} already exists")).label("name taken").hint(if ["bridge", "host", "none"].contains(&name.as_str()) { "`bridge`, `host` and `none` are Docker's own networks; use them as a container's `network:` directly" } else { "give each network its own name" }));
            continue;
        }
        let subnet = match &network.subnet {
            Some(text) => {
                let Ok(net) = text.value.parse::<Ipv4Net>() else {
                    out.push(Diagnostic::error(Code::BadAddress, text.span, format!("`{}` is not a subnet", text.value)).label("expected ADDRESS/PREFIX").hint("write the subnet as `docker network create --subnet` takes it, e.g. `172.30.0.0/24`"));
                    continue;
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
                    continue;
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
                    continue;
                }
                if let Some(other) = bridges.iter().find(|b| overlaps(&b.subnet, &net)) {
                    out.push(Diagnostic::error(Code::DuplicateAddress, text.span, format!("Docker on `{host_name}` says: Pool overlaps with other one on this address space (network `{}` has {})", other.network, other.subnet)).label("overlapping subnet").hint("choose a subnet that no other Docker network of this host uses"));
                    continue;
                }
                net
            }
            None => {
                let Some(net) = pool().find(|p| {
                    !bridges.iter().any(|b| overlaps(&b.subnet, p))
                        && !host_nets.iter().any(|h| overlaps(h, p))
                }) else {
                    out.push(Diagnostic::error(Code::BadValue, network.name.span, format!("Docker on `{host_name}` says: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network `{name}`")).label("pools exhausted").hint("give the network an explicit `subnet:`"));
                    continue;
                };
                net
            }
        };
        let gateway = Ipv4Addr::from(u32::from(subnet.network()) + 1);
        let iface: String = format!("br-{name}").chars().take(15).collect();
        bridges.push(Bridge {
            network: name.clone(),
            segment: format!("{host_name}-br-{name}"),
            iface,
            subnet,
            gateway,
            used: vec![subnet.network(), gateway],
        });
        bridge_spans.push(network.name.span);
    }

    // The host: one interface per bridge, forwarding on.
    for (bridge, &span) in bridges.iter().zip(&bridge_spans) {
        let what = if bridge.network == "bridge" {
            "the default bridge network".to_owned()
        } else {
            format!("Docker network `{}`", bridge.network)
        };
        file.segments.push(SegmentSpec {
            name: at(bridge.segment.clone(), span),
            note: Some(format!("{what} (`{}`, {}) of Docker on `{host_name}`: private to that host; from outside, only its published ports lead in, at the host's address", bridge.iface, bridge.subnet)),
            ..SegmentSpec::default()
        });
        file.nodes[host_index].interfaces.push(InterfaceSpec {
            name: at(bridge.iface.clone(), span),
            segment: at(bridge.segment.clone(), span),
            addresses: vec![at(
                format!("{}/{}", bridge.gateway, bridge.subnet.prefix_len()),
                span,
            )],
            mac: None,
        });
    }
    let was_router = file.nodes[host_index].forwarding.unwrap_or(false);
    file.nodes[host_index].forwarding = Some(true);

    // Containers.
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut published: Vec<Vec<Published>> = bridges.iter().map(|_| Vec::new()).collect();
    let mut proxies: Vec<ListenSpec> = Vec::new();
    for ct in &engine.containers {
        let ct_name = ct.name.value.clone();
        if let Some(first) = names.insert(ct_name.clone(), ct.name.span) {
            out.push(Diagnostic::error(Code::DuplicateName, ct.name.span, format!("Docker on `{host_name}` says: Conflict. The container name \"/{ct_name}\" is already in use (line {})", first.line)).label("name in use").hint("give each container its own `name:`"));
            continue;
        }
        let network = ct.network.as_ref().map_or("bridge", |n| n.value.as_str());
        let network_span = ct.network.as_ref().map_or(ct.name.span, |n| n.span);
        match network {
            "host" | "none" => {
                for p in &ct.publish {
                    out.push(Diagnostic::warning(Code::BadValue, p.span, format!("container `{ct_name}` uses network `{network}`: Docker discards published ports there")).label("ignored").hint(if network == "host" { "the container's services listen on the host's addresses directly; remove `publish:`" } else { "a container without network has nothing to publish; remove `publish:`" }));
                }
                if let Some(a) = &ct.address {
                    out.push(Diagnostic::warning(Code::BadValue, a.span, format!("container `{ct_name}` uses network `{network}`, which gives it no address of its own")).label("ignored").hint("remove `address:`"));
                }
                if network == "host" {
                    file.nodes[host_index]
                        .listen
                        .extend(ct.listen.iter().cloned());
                } else {
                    file.nodes.push(NodeSpec {
                        name: ct.name.clone(),
                        listen: ct.listen.clone(),
                        dns: ct.dns.clone(),
                        ..NodeSpec::default()
                    });
                }
                continue;
            }
            _ => {}
        }
        let Some(b) = bridges.iter().position(|b| b.network == network) else {
            let mut known: Vec<&str> = bridges.iter().map(|b| b.network.as_str()).collect();
            known.extend(["host", "none"]);
            let mut d = Diagnostic::error(Code::UnknownReference, network_span, format!("Docker on `{host_name}` says: network {network} not found (container `{ct_name}`)")).label("unknown network");
            d = match crate::topology::closest_name(network, &known) {
                Some(c) => d.hint(format!("did you mean `{c}`?")),
                None => d.hint(format!("use `bridge`, `host`, `none` or a network listed under this engine's `networks:` ({})", known.join(", "))),
            };
            out.push(d);
            continue;
        };
        let bridge = &mut bridges[b];
        let address = match &ct.address {
            Some(text) => {
                let parsed = text
                    .value
                    .parse::<Ipv4Addr>()
                    .ok()
                    .or_else(|| addr_of(&text.value).map(|n| n.addr()));
                let Some(a) = parsed else {
                    out.push(
                        Diagnostic::error(
                            Code::BadAddress,
                            text.span,
                            format!("`{}` is not an IPv4 address", text.value),
                        )
                        .label("expected an address")
                        .hint("write the address as `--ip` takes it, e.g. `172.18.0.10`"),
                    );
                    continue;
                };
                if !bridge.subnet.contains(&a) || a == bridge.subnet.broadcast() {
                    out.push(Diagnostic::error(Code::BadAddress, text.span, format!("Docker on `{host_name}` says: Invalid address {a}: It does not belong to any of this network's subnets (network `{}` is {})", bridge.network, bridge.subnet)).label("outside the network").hint(format!("pick an address of {} other than the gateway {}", bridge.subnet, bridge.gateway)));
                    continue;
                }
                if bridge.used.contains(&a) {
                    out.push(Diagnostic::error(Code::DuplicateAddress, text.span, format!("Docker on `{host_name}` says: Address already in use ({a} on network `{}`)", bridge.network)).label("address taken").hint("pick a free address, or let Docker choose one"));
                    continue;
                }
                if bridge.network == "bridge" {
                    out.push(Diagnostic::warning(Code::BadValue, text.span, "Docker refuses `--ip` here: user specified IP address is supported on user defined networks only").label("default bridge").hint("put the container on a user-defined network to fix its address (used as written here)"));
                }
                a
            }
            None => {
                let start = u32::from(bridge.subnet.network()) + 2;
                let end = u32::from(bridge.subnet.broadcast());
                let Some(a) = (start..end)
                    .map(Ipv4Addr::from)
                    .find(|a| !bridge.used.contains(a))
                else {
                    out.push(Diagnostic::error(Code::BadValue, ct.name.span, format!("Docker on `{host_name}` says: no available IPv4 addresses on network `{}` ({})", bridge.network, bridge.subnet)).label("network full").hint("use a larger subnet"));
                    continue;
                };
                a
            }
        };
        bridge.used.push(address);
        let o = address.octets();
        file.nodes.push(NodeSpec {
            name: ct.name.clone(),
            interfaces: vec![InterfaceSpec {
                name: at("eth0".into(), network_span),
                segment: at(bridge.segment.clone(), network_span),
                addresses: vec![at(
                    format!("{address}/{}", bridge.subnet.prefix_len()),
                    ct.address.as_ref().map_or(network_span, |a| a.span),
                )],
                mac: Some(at(
                    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
                    network_span,
                )),
            }],
            routes: vec![RouteSpec {
                to: at("default".into(), network_span),
                via: Some(at(bridge.gateway.to_string(), network_span)),
                ..RouteSpec::default()
            }],
            listen: ct.listen.clone(),
            dns: ct.dns.clone(),
            ..NodeSpec::default()
        });
        for p in &ct.publish {
            let parsed = match parse_publish(&p.value) {
                Ok(parsed) => parsed,
                Err(hint) => {
                    out.push(
                        Diagnostic::error(
                            Code::BadValue,
                            p.span,
                            format!("`{}` is not a `-p` value reachlab can follow", p.value),
                        )
                        .label("bad publish")
                        .hint(hint),
                    );
                    continue;
                }
            };
            let proto = if parsed.proto == RuleProto::Udp {
                ProtoName::Udp
            } else {
                ProtoName::Tcp
            };
            // docker-proxy binds [IP:]H on the host: it conflicts with any other bind of that port.
            let host = &file.nodes[host_index];
            let clash = host.listen.iter().chain(&proxies).any(|l| {
                u16::try_from(l.port.value).ok() == Some(parsed.host_port)
                    && l.proto.as_ref().map_or(ProtoName::Tcp, |p| p.value) == proto
            });
            if clash {
                out.push(Diagnostic::error(Code::DuplicateAddress, p.span, format!("Docker on `{host_name}` says: Bind for {}:{} failed: port is already allocated", parsed.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string()), parsed.host_port)).label("port taken").hint("publish on another host port"));
                continue;
            }
            // The proxy relays to the container: it answers as the container's service does.
            let backend = ct.listen.iter().find(|l| {
                u16::try_from(l.port.value).ok() == Some(parsed.container_port)
                    && l.proto.as_ref().map_or(ProtoName::Tcp, |p| p.value) == proto
            });
            let mut proxy = backend.cloned().unwrap_or_default();
            proxy.port = at(u32::from(parsed.host_port), p.span);
            proxy.proto = Some(at(proto, p.span));
            proxy.address = parsed.host_ip.map(|i| at(i.to_string(), p.span));
            proxies.push(proxy);
            published[b].push((parsed, address, ct_name.clone(), p.value.clone(), p.span));
        }
    }

    // NAT on the host.
    let local_addresses: Vec<Ipv4Addr> = file.nodes[host_index]
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .filter_map(|a| addr_of(&a.value))
        .map(|n| n.addr())
        .filter(|a| !a.is_loopback())
        .collect();
    let mut nat = Vec::new();
    for (bridge, &span) in bridges.iter().zip(&bridge_spans) {
        for iface in &outer_ifaces {
            nat.push(RuleSpec {
                masquerade: Some(at(true, span)),
                src: Some(at(bridge.subnet.to_string(), span)),
                out_iface: Some(at(iface.clone(), span)),
                comment: Some(format!("Docker on `{host_name}`: `POSTROUTING -s {} ! -o {} -j MASQUERADE` (containers leave from the host's address)", bridge.subnet, bridge.iface)),
                ..RuleSpec::default()
            });
        }
    }
    for list in &published {
        for (p, cip, ct_name, text, span) in list {
            let span = *span;
            let words = format!(
                "published port {} → {ct_name}:{} (`-p {text}` on `{host_name}`)",
                p.host_port, p.container_port
            );
            let dnat =
                |chain: NatChainName, in_iface: Option<&String>, dst: Option<String>| RuleSpec {
                    in_iface: in_iface.map(|i| at(i.clone(), span)),
                    dst: dst.map(|d| at(d, span)),
                    dst_local: None,
                    proto: Some(at(p.proto, span)),
                    dport: Some(at(p.host_port.to_string(), span)),
                    dnat: Some(at(format!("{cip}:{}", p.container_port), span)),
                    chain: Some(at(chain, span)),
                    comment: Some(words.clone()),
                    ..RuleSpec::default()
                };
            match p.host_ip {
                // docker-proxy alone serves 127.0.0.1 (OUTPUT skips 127.0.0.0/8).
                Some(ip) if ip.is_loopback() => {}
                Some(ip) => {
                    for iface in &outer_ifaces {
                        nat.push(dnat(
                            NatChainName::Prerouting,
                            Some(iface),
                            Some(ip.to_string()),
                        ));
                    }
                    nat.push(dnat(NatChainName::Output, None, Some(ip.to_string())));
                }
                None => {
                    for iface in &outer_ifaces {
                        let mut rule = dnat(NatChainName::Prerouting, Some(iface), None);
                        rule.dst_local = Some(true);
                        nat.push(rule);
                    }
                    for a in &local_addresses {
                        nat.push(dnat(NatChainName::Output, None, Some(a.to_string())));
                    }
                }
            }
        }
    }

    // FORWARD, in the order of moby's iptablesdoc, before the host's own rules.
    let mut rules = Vec::new();
    for (a, &span) in bridges.iter().zip(&bridge_spans) {
        for other in bridges.iter().filter(|o| o.iface != a.iface) {
            rules.push(RuleSpec {
                in_iface: Some(at(a.iface.clone(), span)),
                out_iface: Some(at(other.iface.clone(), span)),
                action: Some(at(ActionName::Drop, span)),
                comment: Some(format!("Docker isolation between bridges `{}` and `{}` on `{host_name}` (DOCKER-ISOLATION-STAGE-1/2): networks `{}` and `{}` do not reach each other", a.iface, other.iface, a.network, other.network)),
                ..RuleSpec::default()
            });
        }
    }
    for (b, (bridge, &span)) in bridges.iter().zip(&bridge_spans).enumerate() {
        let iface = || Some(at(bridge.iface.clone(), span));
        rules.push(RuleSpec {
            out_iface: iface(),
            state: vec![
                at(StateName::Related, span),
                at(StateName::Established, span),
            ],
            action: Some(at(ActionName::Accept, span)),
            comment: Some(format!(
                "Docker on `{host_name}`: answers to connections of the containers on `{}`",
                bridge.iface
            )),
            ..RuleSpec::default()
        });
        for (p, cip, ct_name, text, pspan) in &published[b] {
            rules.push(RuleSpec {
                not_in: iface(),
                out_iface: iface(),
                dst: Some(at(cip.to_string(), *pspan)),
                proto: Some(at(p.proto, *pspan)),
                dport: Some(at(p.container_port.to_string(), *pspan)),
                action: Some(at(ActionName::Accept, *pspan)),
                comment: Some(format!(
                    "published port {} → {ct_name}:{} (`-p {text}` on `{host_name}`)",
                    p.host_port, p.container_port
                )),
                ..RuleSpec::default()
            });
        }
        rules.push(RuleSpec {
            not_in: iface(),
            out_iface: iface(),
            action: Some(at(ActionName::Drop, span)),
            comment: Some(format!("Docker on `{host_name}` drops traffic entering bridge `{}` from outside that is not for a published port (DOCKER chain)", bridge.iface)),
            ..RuleSpec::default()
        });
        rules.push(RuleSpec {
            in_iface: iface(),
            action: Some(at(ActionName::Accept, span)),
            comment: Some(format!(
                "Docker on `{host_name}`: the containers on `{}` may connect anywhere",
                bridge.iface
            )),
            ..RuleSpec::default()
        });
    }
    let host = &mut file.nodes[host_index];
    host.nat.extend(nat);
    host.listen.extend(proxies);
    let firewall = host.firewall.get_or_insert_with(FirewallSpec::default);
    let chain = firewall.forward.get_or_insert_with(ChainSpec::default);
    if !was_router && chain.policy.is_none() {
        chain.policy = Some(at(PolicyName::Drop, host_span));
    }
    rules.append(&mut chain.rules);
    chain.rules = rules;
}
