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
    /// On one bridge or several: `attachments[i]` is its interface `eth{i}`.
    Bridged {
        spec: &'a ContainerSpec,
        attachments: Vec<Attachment>,
    },
}

/// A bridged container's interface on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attachment {
    pub bridge: BridgeId,
    pub address: Ipv4Addr,
    /// The network's entry (`network:`, an item of `networks:`; the container's `name:` on
    /// docker0 by default).
    pub span: Span,
    /// Where the address was written (`address:`, `addresses:`), else `span`.
    pub address_span: Span,
    /// Docker's gateway endpoint: the default route goes through this network's gateway, and,
    /// unless the network is internal, the published ports are DNATed to this address.
    /// Exactly one attachment has it (docs/platform-semantics.md, "Docker",
    /// **Several networks**).
    pub gateway: bool,
}

impl Container<'_> {
    /// The attachment providing the default route, if any.
    pub fn gateway(&self) -> Option<&Attachment> {
        match self {
            Container::Bridged { attachments, .. } => attachments.iter().find(|a| a.gateway),
            Container::Host(_) | Container::Isolated(_) => None,
        }
    }
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
    /// The container's position in the plan's containers.
    pub container: usize,
    /// The bridge of the container's gateway attachment: the endpoint Docker programs the port
    /// mapping on.
    pub bridge: BridgeId,
    /// The container's address on that bridge, where the DNAT goes.
    pub address: Ipv4Addr,
    pub publish: Publish,
    /// Where the `-p` value is written.
    pub span: Span,
    /// The container's service docker-proxy relays to, if one listens on the port.
    pub backend: Option<&'a ListenSpec>,
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
        let Some(networks) = networks_of(host_name, ct, out) else {
            return;
        };
        if let [(network, _)] = networks.as_slice()
            && (network == "host" || network == "none")
        {
            self.place_without_bridge(ct, network, out);
            return;
        }
        let Some(attachments) = attach(host_name, ct, &networks, bridges, out) else {
            return;
        };
        for a in &attachments {
            bridges[a.bridge.0].used.push(a.address);
        }
        // Docker maps ports on the gateway endpoint, unless its network is internal.
        let gateway = attachments
            .iter()
            .find(|a| a.gateway && !bridges[a.bridge.0].internal)
            .copied();
        self.containers.push(Container::Bridged {
            spec: ct,
            attachments,
        });
        let Some(gateway) = gateway else {
            // Docker programs port mappings on the gateway endpoint only, never on an
            // internal network (docs/platform-semantics.md, "Docker", **Several networks**).
            for p in &ct.publish {
                out.push(Diagnostic::warning(Code::BadValue, p.span, format!("container `{ct_name}` is on internal networks only: Docker publishes none of its ports")).label("not published").hint("connect the container to a network that is not internal, or remove `publish:`"));
            }
            return;
        };
        for p in &ct.publish {
            if let Some(published) = self.publish(ct, gateway.bridge, gateway.address, p, out) {
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
        for a in ct.addresses.values() {
            out.push(Diagnostic::warning(Code::BadValue, a.span, format!("container `{ct_name}` uses network `{network}`, which gives it no address of its own")).label("ignored").hint("remove `addresses:`"));
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
            container: self.containers.len().saturating_sub(1),
            bridge,
            address,
            publish,
            span: p.span,
            backend,
        })
    }
}

/// The networks container `ct` joins, in the order Docker attaches them, each with its
/// entry: `network:` (default `bridge`, at the container's name) or `networks:`. `None`
/// (reported) when the two are mixed, a network is repeated, `host` or `none` shares the
/// container with another network, or an address key does not fit.
fn networks_of(
    host_name: &str,
    ct: &ContainerSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<Vec<(String, Span)>> {
    let ct_name = &ct.name.value;
    let mut ok = true;
    if let (Some(_), Some(first)) = (&ct.network, ct.networks.first()) {
        out.push(Diagnostic::error(Code::BadValue, first.span, format!("container `{ct_name}` has both `network:` and `networks:`")).label("second network key").hint("list every network under `networks:` (the first is `--network`, the others `docker network connect`), or keep `network:` alone"));
        return None;
    }
    if ct.networks.is_empty() {
        if let Some((net, a)) = ct.addresses.iter().next() {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!("container `{ct_name}` has `addresses:` ({net}) but no `networks:`"),
                )
                .label("per-network address")
                .hint("with one network, write its address as `address:`"),
            );
            ok = false;
        }
        let network = ct.network.as_ref().map_or("bridge", |n| n.value.as_str());
        let span = ct.network.as_ref().map_or(ct.name.span, |n| n.span);
        return ok.then(|| vec![(network.to_owned(), span)]);
    }
    if let Some(a) = &ct.address {
        out.push(Diagnostic::error(Code::BadValue, a.span, format!("container `{ct_name}` has `networks:`: `address:` does not say which network it is on")).label("which network?").hint("write `addresses: { NETWORK: ADDRESS }` (`docker network connect --ip ADDRESS NETWORK`)"));
        ok = false;
    }
    let mut seen: Vec<&str> = Vec::new();
    for n in &ct.networks {
        let name = n.value.as_str();
        if seen.contains(&name) {
            out.push(Diagnostic::error(Code::DuplicateName, n.span, format!("Docker on `{host_name}` says: endpoint with name {ct_name} already exists in network {name}")).label("listed twice").hint("list each network once"));
            ok = false;
        }
        seen.push(name);
    }
    if ct.networks.len() > 1 {
        for n in ct
            .networks
            .iter()
            .filter(|n| n.value == "host" || n.value == "none")
        {
            let message = if n.value == "host" {
                "container sharing network namespace with another container or host cannot be connected to any other network"
            } else {
                "container cannot be connected to multiple networks with one of the networks in private (none) mode"
            };
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    n.span,
                    format!("Docker on `{host_name}` says: {message} (container `{ct_name}`)"),
                )
                .label("cannot share")
                .hint(format!(
                    "a container on `{}` has no other network; use `network: {}` alone",
                    n.value, n.value
                )),
            );
            ok = false;
        }
    }
    for (net, a) in &ct.addresses {
        if !seen.contains(&net.as_str()) {
            out.push(Diagnostic::error(Code::UnknownReference, a.span, format!("container `{ct_name}` has an address on `{net}`, which is not one of its `networks:`")).label("not a network of the container").hint(format!("key `addresses:` by one of: {}", seen.join(", "))));
            ok = false;
        }
    }
    ok.then(|| {
        ct.networks
            .iter()
            .map(|n| (n.value.clone(), n.span))
            .collect()
    })
}

/// Container `ct`'s interfaces on `networks` (in order), each with its address, and the
/// gateway endpoint marked: the first network by name, non-internal ones first, as libnetwork
/// sorts a sandbox's endpoints; dockerd 20.10 gives internal networks a gateway too, so a
/// container on internal networks only routes through one (docs/platform-semantics.md,
/// "Docker", **Several networks**). `None` (reported) when a network is unknown or an address
/// cannot be had; nothing is marked used.
fn attach(
    host_name: &str,
    ct: &ContainerSpec,
    networks: &[(String, Span)],
    bridges: &[Bridge],
    out: &mut Vec<Diagnostic>,
) -> Option<Vec<Attachment>> {
    let mut attachments = Vec::new();
    let mut ok = true;
    for (network, span) in networks {
        let Some(b) = bridges.iter().position(|b| &b.network == network) else {
            out.push(unknown_network(host_name, ct, network, *span, bridges));
            ok = false;
            continue;
        };
        let fixed = if ct.networks.is_empty() {
            ct.address.as_ref()
        } else {
            ct.addresses.get(network)
        };
        let Some(address) = container_address(host_name, &bridges[b], ct, fixed, out) else {
            ok = false;
            continue;
        };
        attachments.push(Attachment {
            bridge: BridgeId(b),
            address,
            span: *span,
            address_span: fixed.map_or(*span, |a| a.span),
            gateway: false,
        });
    }
    if !ok {
        return None;
    }
    let gateway = attachments.iter_mut().min_by(|a, b| {
        let (x, y) = (&bridges[a.bridge.0], &bridges[b.bridge.0]);
        (x.internal, &x.network).cmp(&(y.internal, &y.network))
    });
    if let Some(g) = gateway {
        g.gateway = true;
    }
    Some(attachments)
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

/// The container's address on `bridge`: `fixed` (its `--ip`), or the next free one from .2.
fn container_address(
    host_name: &str,
    bridge: &Bridge,
    ct: &ContainerSpec,
    fixed: Option<&Located<String>>,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Addr> {
    match fixed {
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
pub(super) fn parse_publish(text: &str) -> Result<Publish, &'static str> {
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

#[cfg(test)]
mod tests {
    //! Expected values: interface order is attach order (libnetwork osl numbers a sandbox's
    //! interfaces `eth0`, `eth1`, … as they join); the gateway endpoint is the first of the
    //! sandbox's endpoints sorted by libnetwork's `Endpoint.Less` (non-internal first, then the
    //! network name); port mappings are programmed on that endpoint only
    //! (docs/platform-semantics.md, "Docker", **Several networks**, where the same container
    //! layouts observed on dockerd 20.10.24 are written down).
    use super::super::tests::expand_text;
    use crate::format::Severity;

    const ENGINE: &str = "nodes:\n  - name: vm\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.5/24] }]\nsegments: [{ name: lan }]\ndocker:\n  engines:\n    - host: vm\n      networks:\n        - { name: zeta, subnet: 172.30.1.0/24 }\n        - { name: alpha, subnet: 172.30.2.0/24 }\n        - { name: aaa, subnet: 172.30.3.0/24, internal: true }\n      containers:\n";

    fn node<'f>(
        file: &'f crate::format::file::TopologyFile,
        name: &str,
    ) -> &'f crate::format::file::NodeSpec {
        file.nodes
            .iter()
            .find(|n| n.name.value == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn ifaces(n: &crate::format::file::NodeSpec) -> Vec<(String, String, String)> {
        n.interfaces
            .iter()
            .map(|i| {
                (
                    i.name.value.clone(),
                    i.segment.value.clone(),
                    i.addresses[0].value.clone(),
                )
            })
            .collect()
    }

    fn default_via(n: &crate::format::file::NodeSpec) -> Option<String> {
        n.routes
            .iter()
            .find(|r| r.to.value == "default")
            .and_then(|r| r.via.as_ref().map(|v| v.value.clone()))
    }

    fn errors(out: &[crate::format::Diagnostic]) -> Vec<String> {
        out.iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn interfaces_are_numbered_in_attach_order() {
        let (file, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, alpha] }}\n"
        ));
        assert_eq!(errors(&out), Vec::<String>::new());
        assert_eq!(
            ifaces(node(&file, "proxy")),
            [
                ("eth0".into(), "vm-br-zeta".into(), "172.30.1.2/24".into()),
                ("eth1".into(), "vm-br-alpha".into(), "172.30.2.2/24".into()),
            ]
        );
    }

    #[test]
    fn default_gateway_is_the_first_network_by_name() {
        let (file, _) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, alpha] }}\n"
        ));
        assert_eq!(
            default_via(node(&file, "proxy")).as_deref(),
            Some("172.30.2.1")
        );
    }

    #[test]
    fn internal_networks_never_provide_the_default_gateway() {
        let (file, _) = expand_text(&format!(
            "{ENGINE}        - {{ name: db, networks: [aaa, zeta] }}\n"
        ));
        assert_eq!(
            default_via(node(&file, "db")).as_deref(),
            Some("172.30.1.1")
        );
    }

    #[test]
    fn internal_only_container_routes_via_its_network_and_publishes_nothing() {
        let (file, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: db, network: aaa, publish: ['5432:5432'] }}\n"
        ));
        // dockerd 20.10: `default via 172.30.3.1` (seen in a namespace).
        assert_eq!(
            default_via(node(&file, "db")).as_deref(),
            Some("172.30.3.1")
        );
        assert!(
            out.iter()
                .any(|d| d.severity == Severity::Warning && d.message.contains("publishes none")),
            "{out:?}"
        );
        assert!(
            !node(&file, "vm")
                .listen
                .iter()
                .any(|l| l.port.value == 5432)
        );
    }

    #[test]
    fn published_port_goes_to_the_gateway_endpoint() {
        let text = format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, alpha], publish: ['8080:80'] }}\n"
        );
        let file: crate::format::file::TopologyFile =
            serde_saphyr::from_str(&text).expect("parses");
        let engine = &file.docker.as_ref().expect("docker").engines[0];
        let mut out = Vec::new();
        let plan = super::super::plan::plan(&file, engine, &mut out).expect("planned");
        let addresses: Vec<String> = plan
            .published
            .iter()
            .map(|p| p.address.to_string())
            .collect();
        assert_eq!(addresses, ["172.30.2.2"]);
        assert_eq!(plan.bridge(plan.published[0].bridge).network, "alpha");
    }

    #[test]
    fn addresses_fix_the_address_per_network() {
        let (file, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, alpha], addresses: {{ alpha: 172.30.2.40 }} }}\n"
        ));
        assert_eq!(errors(&out), Vec::<String>::new());
        let got: Vec<String> = ifaces(node(&file, "proxy"))
            .into_iter()
            .map(|i| i.2)
            .collect();
        assert_eq!(got, ["172.30.1.2/24", "172.30.2.40/24"]);
    }

    #[test]
    fn network_and_networks_are_exclusive() {
        let (_, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, network: zeta, networks: [alpha] }}\n"
        ));
        assert!(
            errors(&out)
                .iter()
                .any(|e| e.contains("both `network:` and `networks:`")),
            "{out:?}"
        );
    }

    #[test]
    fn address_with_networks_must_name_its_network() {
        let (_, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, alpha], address: 172.30.1.9 }}\n"
        ));
        assert!(
            errors(&out)
                .iter()
                .any(|e| e.contains("does not say which network")),
            "{out:?}"
        );
        let (_, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta], addresses: {{ alpha: 172.30.2.9 }} }}\n"
        ));
        assert!(
            errors(&out)
                .iter()
                .any(|e| e.contains("not one of its `networks:`")),
            "{out:?}"
        );
        let (_, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, network: zeta, addresses: {{ zeta: 172.30.1.9 }} }}\n"
        ));
        assert!(
            errors(&out).iter().any(|e| e.contains("no `networks:`")),
            "{out:?}"
        );
    }

    #[test]
    fn a_network_joins_once() {
        let (file, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: proxy, networks: [zeta, zeta] }}\n"
        ));
        assert!(
            errors(&out)
                .iter()
                .any(|e| e.contains("already exists in network zeta")),
            "{out:?}"
        );
        assert!(!file.nodes.iter().any(|n| n.name.value == "proxy"));
    }

    #[test]
    fn host_and_none_take_no_other_network() {
        for net in ["host", "none"] {
            let (_, out) = expand_text(&format!(
                "{ENGINE}        - {{ name: c, networks: [zeta, {net}] }}\n"
            ));
            assert!(
                errors(&out)
                    .iter()
                    .any(|e| e.contains("cannot be connected to")),
                "{net}: {out:?}"
            );
        }
    }

    #[test]
    fn an_unknown_network_leaves_no_address_taken() {
        let (file, out) = expand_text(&format!(
            "{ENGINE}        - {{ name: a, networks: [zeta, nope] }}\n        - {{ name: b, network: zeta }}\n"
        ));
        assert!(
            errors(&out)
                .iter()
                .any(|e| e.contains("network nope not found")),
            "{out:?}"
        );
        assert_eq!(ifaces(node(&file, "b"))[0].2, "172.30.1.2/24");
    }
}
