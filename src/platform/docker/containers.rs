//! Placing an engine's containers, in the order they were started: a unique name, a network
//! of the engine (or the host's, or none), an address there (`--ip` or the next free one), and
//! the `-p` entries, each checked against what already binds the host port.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::plan::{Bridge, BridgeId};
use super::{ContainerSpec, DockerEngineSpec};
use crate::format::file::{ListenSpec, ProtoName, RuleProto};
use crate::format::{Code, Diagnostic, Located, Span};

/// A container that was placed, by its `--network`.
pub(super) enum Container<'a> {
    /// `--network host`: its services listen on the host's addresses.
    Host(&'a ContainerSpec),
    /// `--network none`: a node with loopback only.
    Isolated(&'a ContainerSpec),
    /// On a bridge, with `eth0` at `address`.
    Bridged {
        spec: &'a ContainerSpec,
        bridge: BridgeId,
        address: Ipv4Addr,
        /// The container's `network:` entry (its `name:` when it has none).
        network_span: Span,
    },
}

/// A parsed `-p` entry.
pub(super) struct Publish {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: RuleProto,
}

impl Publish {
    /// The protocol as `listen:` entries name it.
    pub fn proto_name(&self) -> ProtoName {
        if self.proto == RuleProto::Udp {
            ProtoName::Udp
        } else {
            ProtoName::Tcp
        }
    }
}

/// An accepted published port of a container.
pub(super) struct Published<'a> {
    /// The bridge the container is on.
    pub bridge: BridgeId,
    pub container: &'a str,
    /// The container's address.
    pub address: Ipv4Addr,
    pub publish: Publish,
    /// The `-p` value as written, and its place.
    pub text: &'a str,
    pub span: Span,
    /// The container's service docker-proxy relays to, if one listens on the port.
    pub backend: Option<&'a ListenSpec>,
}

impl Published<'_> {
    /// How rule comments name the published port.
    pub fn words(&self, host_name: &str) -> String {
        format!(
            "published port {} → {}:{} (`-p {}` on `{host_name}`)",
            self.publish.host_port, self.container, self.publish.container_port, self.text
        )
    }
}

/// Places the containers of `engine` on `bridges` (their addresses marked used), on a host
/// whose services are `listening`: those placed, and the published ports accepted.
pub(super) fn place<'a>(
    host_name: &str,
    listening: &[ListenSpec],
    bridges: &mut [Bridge],
    engine: &'a DockerEngineSpec,
    out: &mut Vec<Diagnostic>,
) -> (Vec<Container<'a>>, Vec<Published<'a>>) {
    let mut placing = Placing {
        host_name,
        names: HashMap::new(),
        bound: listening.iter().map(listen_key).collect(),
        containers: Vec::new(),
        published: Vec::new(),
    };
    for ct in &engine.containers {
        placing.place(ct, bridges, out);
    }
    (placing.containers, placing.published)
}

/// The port and protocol a service listens on, for comparing binds.
fn listen_key(l: &ListenSpec) -> (u32, ProtoName) {
    (
        l.port.value,
        l.proto.as_ref().map_or(ProtoName::Tcp, |p| p.value),
    )
}

/// The containers placed so far, with what they hold.
struct Placing<'a, 'h> {
    host_name: &'h str,
    /// Container names taken, with where.
    names: HashMap<String, Span>,
    /// Ports bound on the host: its services, `--network host` containers', docker-proxy's.
    bound: Vec<(u32, ProtoName)>,
    containers: Vec<Container<'a>>,
    published: Vec<Published<'a>>,
}

impl<'a> Placing<'a, '_> {
    /// Places container `ct` (in start order): a unique name, a known network, an address
    /// there, then its published ports.
    fn place(&mut self, ct: &'a ContainerSpec, bridges: &mut [Bridge], out: &mut Vec<Diagnostic>) {
        let (host_name, ct_name) = (self.host_name, &ct.name.value);
        if let Some(first) = self.names.insert(ct_name.clone(), ct.name.span) {
            out.push(Diagnostic::error(Code::DuplicateName, ct.name.span, format!("Docker on `{host_name}` says: Conflict. The container name \"/{ct_name}\" is already in use (line {})", first.line)).label("name in use").hint("give each container its own `name:`"));
            return;
        }
        let network = ct.network.as_ref().map_or("bridge", |n| n.value.as_str());
        let network_span = ct.network.as_ref().map_or(ct.name.span, |n| n.span);
        if network == "host" || network == "none" {
            self.place_without_bridge(ct, network, out);
            return;
        }
        let Some(b) = bridges.iter().position(|b| b.network == network) else {
            out.push(unknown_network(
                host_name,
                ct,
                network,
                network_span,
                bridges,
            ));
            return;
        };
        let bridge = &mut bridges[b];
        let Some(address) = container_address(host_name, bridge, ct, out) else {
            return;
        };
        bridge.used.push(address);
        self.containers.push(Container::Bridged {
            spec: ct,
            bridge: BridgeId(b),
            address,
            network_span,
        });
        for p in &ct.publish {
            if let Some(published) = self.publish(ct, BridgeId(b), address, p, out) {
                let port = u32::from(published.publish.host_port);
                self.bound.push((port, published.publish.proto_name()));
                self.published.push(published);
            }
        }
    }

    /// `--network host` or `none`: Docker ignores `-p` and `--ip` there.
    fn place_without_bridge(
        &mut self,
        ct: &'a ContainerSpec,
        network: &str,
        out: &mut Vec<Diagnostic>,
    ) {
        let ct_name = &ct.name.value;
        for p in &ct.publish {
            out.push(Diagnostic::warning(Code::BadValue, p.span, format!("container `{ct_name}` uses network `{network}`: Docker discards published ports there")).label("ignored").hint(if network == "host" { "the container's services listen on the host's addresses directly; remove `publish:`" } else { "a container without network has nothing to publish; remove `publish:`" }));
        }
        if let Some(a) = &ct.address {
            out.push(Diagnostic::warning(Code::BadValue, a.span, format!("container `{ct_name}` uses network `{network}`, which gives it no address of its own")).label("ignored").hint("remove `address:`"));
        }
        if network == "host" {
            self.bound.extend(ct.listen.iter().map(listen_key));
            self.containers.push(Container::Host(ct));
        } else {
            self.containers.push(Container::Isolated(ct));
        }
    }

    /// A `-p` entry of container `ct` at `address`: parsed, and its host port free.
    fn publish(
        &self,
        ct: &'a ContainerSpec,
        bridge: BridgeId,
        address: Ipv4Addr,
        p: &'a Located<String>,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Published<'a>> {
        let publish = match parse_publish(&p.value) {
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
                return None;
            }
        };
        let proto = publish.proto_name();
        // docker-proxy binds [IP:]H on the host: it conflicts with any other bind of that port.
        if self.bound.contains(&(u32::from(publish.host_port), proto)) {
            let host_name = self.host_name;
            out.push(Diagnostic::error(Code::DuplicateAddress, p.span, format!("Docker on `{host_name}` says: Bind for {}:{} failed: port is already allocated", publish.host_ip.map_or_else(|| "0.0.0.0".to_owned(), |i| i.to_string()), publish.host_port)).label("port taken").hint("publish on another host port"));
            return None;
        }
        // The proxy relays to the container: it answers as the container's service does.
        let container_port = (u32::from(publish.container_port), proto);
        let backend = ct.listen.iter().find(|l| listen_key(l) == container_port);
        Some(Published {
            bridge,
            container: &ct.name.value,
            address,
            publish,
            text: &p.value,
            span: p.span,
            backend,
        })
    }
}

/// The error for a container on a network this engine does not have.
fn unknown_network(
    host_name: &str,
    ct: &ContainerSpec,
    network: &str,
    network_span: Span,
    bridges: &[Bridge],
) -> Diagnostic {
    let ct_name = &ct.name.value;
    let mut known: Vec<&str> = bridges.iter().map(|b| b.network.as_str()).collect();
    known.extend(["host", "none"]);
    let d = Diagnostic::error(
        Code::UnknownReference,
        network_span,
        format!(
            "Docker on `{host_name}` says: network {network} not found (container `{ct_name}`)"
        ),
    )
    .label("unknown network");
    match crate::format::closest_name(network, &known) {
        Some(c) => d.hint(format!("did you mean `{c}`?")),
        None => d.hint(format!(
            "use `bridge`, `host`, `none` or a network listed under this engine's `networks:` ({})",
            known.join(", ")
        )),
    }
}

/// The container's address on `bridge`: its `--ip`, or the next free one from .2.
fn container_address(
    host_name: &str,
    bridge: &Bridge,
    ct: &ContainerSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Addr> {
    match &ct.address {
        Some(text) => fixed_address(host_name, bridge, text, out),
        None => {
            let start = u32::from(bridge.subnet.network()) + 2;
            let end = u32::from(bridge.subnet.broadcast());
            let free = (start..end)
                .map(Ipv4Addr::from)
                .find(|a| !bridge.used.contains(a));
            if free.is_none() {
                out.push(Diagnostic::error(Code::BadValue, ct.name.span, format!("Docker on `{host_name}` says: no available IPv4 addresses on network `{}` ({})", bridge.network, bridge.subnet)).label("network full").hint("use a larger subnet"));
            }
            free
        }
    }
}

/// `--ip`: an address (a prefix is tolerated and dropped) inside the bridge's subnet, not
/// its broadcast and not taken.
fn fixed_address(
    host_name: &str,
    bridge: &Bridge,
    text: &Located<String>,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Addr> {
    let parsed = text
        .value
        .parse::<Ipv4Addr>()
        .ok()
        .or_else(|| text.value.parse::<Ipv4Net>().ok().map(|n| n.addr()));
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
        return None;
    };
    if !bridge.subnet.contains(&a) || a == bridge.subnet.broadcast() {
        out.push(Diagnostic::error(Code::BadAddress, text.span, format!("Docker on `{host_name}` says: Invalid address {a}: It does not belong to any of this network's subnets (network `{}` is {})", bridge.network, bridge.subnet)).label("outside the network").hint(format!("pick an address of {} other than the gateway {}", bridge.subnet, bridge.gateway)));
        return None;
    }
    if bridge.used.contains(&a) {
        out.push(
            Diagnostic::error(
                Code::DuplicateAddress,
                text.span,
                format!(
                    "Docker on `{host_name}` says: Address already in use ({a} on network `{}`)",
                    bridge.network
                ),
            )
            .label("address taken")
            .hint("pick a free address, or let Docker choose one"),
        );
        return None;
    }
    if bridge.network == "bridge" {
        out.push(Diagnostic::warning(Code::BadValue, text.span, "Docker refuses `--ip` here: user specified IP address is supported on user defined networks only").label("default bridge").hint("put the container on a user-defined network to fix its address (used as written here)"));
    }
    Some(a)
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
