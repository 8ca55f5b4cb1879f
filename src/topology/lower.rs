//! Semantic validation and lowering: turns a parsed [`TopologyFile`] into the core
//! [`Network`], checking everything the kernel or the tools would refuse (bad addresses,
//! duplicate names, unreachable gateways, dangling references) and collecting every problem
//! with its position instead of stopping at the first.

use std::collections::HashMap;

use indexmap::IndexMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::format::file::{
    InterfaceSpec, NodeSpec, OsName, RouteSpec, RouteTypeName, SegmentSpec, TopologyFile,
};
use crate::format::naming::{self, NameKind};
use crate::format::structure::closest;
use crate::format::units::{self, DestinationError};
use crate::format::{Code, Diagnostic};
use crate::format::{Located, Origin, Span};
use crate::model::{
    IfaceId, Interface, MacAddr, Network, Node, NodeId, OsProfile, Port, RejectRoute, Route,
    RouteKind, RouteType, RoutingTable, Segment, SegmentId, TableEntry,
};

/// Lowers `file` (read from `file_name`) into a network; `default_name` names it when the
/// file does not. Returns the
/// network built from the valid parts and every diagnostic.
pub(crate) fn lower(
    file: &TopologyFile,
    file_name: &str,
    default_name: &str,
) -> (Network, Vec<Diagnostic>) {
    let mut cx = Lowering::start(file, file_name, default_name);
    let mut node_names: HashMap<&str, Span> = HashMap::with_capacity(file.nodes.len());
    for spec in &file.nodes {
        if cx.check_name(&spec.name, "node")
            && let Some(first) = node_names.insert(&spec.name.value, spec.name.span)
        {
            cx.duplicate("node", &spec.name, first);
        }
        cx.node(spec);
    }
    cx.finish(file, &file.nodes)
}

/// [`lower`], for a caller that does not keep the file: each node's interfaces and routes are
/// given back once the node is lowered (nothing after reads them), so that a large file's typed
/// form shrinks while its network grows instead of both being whole at once (benches/RESULTS.md,
/// issue 14). The network and the diagnostics are [`lower`]'s.
pub(crate) fn lower_releasing(
    file: &mut TopologyFile,
    file_name: &str,
    default_name: &str,
) -> (Network, Vec<Diagnostic>) {
    let mut nodes = std::mem::take(&mut file.nodes);
    let mut cx = Lowering::start(file, file_name, default_name);
    cx.net.nodes.reserve_exact(nodes.len());
    cx.net
        .interfaces
        .reserve_exact(nodes.iter().map(|n| n.interfaces.len()).sum());
    let mut node_names: HashMap<&str, Span> = HashMap::with_capacity(nodes.len());
    for spec in nodes.iter_mut() {
        if cx.check_name(&spec.name, "node")
            && let Some(first) = node_names.insert(&spec.name.value, spec.name.span)
        {
            cx.duplicate("node", &spec.name, first);
        }
        cx.node(spec);
        spec.interfaces = Vec::new();
        spec.routes = Vec::new();
    }
    drop(node_names);
    let out = cx.finish(file, &nodes);
    file.nodes = nodes;
    out
}

impl<'f> Lowering<'f> {
    /// The network's header and segments; room for the file's nodes and interfaces.
    fn start(file: &'f TopologyFile, file_name: &str, default_name: &str) -> Self {
        let mut cx = Lowering {
            file: Arc::from(file_name),
            diagnostics: Vec::new(),
            net: Network {
                name: file.name.clone().unwrap_or_else(|| default_name.to_owned()),
                description: file.description.clone(),
                docker: file.docker_engines.clone(),
                zones: file.dns_zones.clone(),
                ..Network::default()
            },
            segment_ids: IndexMap::new(),
        };
        // Room for what the file writes (lowering adds a segment for each bridge, no more).
        cx.net.segments.reserve_exact(file.segments.len());
        cx.net.nodes.reserve_exact(file.nodes.len());
        cx.net
            .interfaces
            .reserve_exact(file.nodes.iter().map(|n| n.interfaces.len()).sum());
        for spec in &file.segments {
            cx.segment(spec);
        }
        cx
    }

    /// What is checked across nodes once all are lowered, then expectations and invariants.
    fn finish(mut self, file: &TopologyFile, nodes: &[NodeSpec]) -> (Network, Vec<Diagnostic>) {
        self.shared_segment_addresses();
        self.dns_names(nodes);
        for spec in &file.expect {
            if let Some(expectation) = self.expectation(spec) {
                self.net.expectations.push(expectation);
            }
        }
        self.invariants(file);
        (self.net, self.diagnostics)
    }
}

pub(super) struct Lowering<'f> {
    file: Arc<str>,
    diagnostics: Vec<Diagnostic>,
    pub(super) net: Network,
    /// Segments by name (names borrowed from the file: a large file has one per link).
    segment_ids: IndexMap<&'f str, (SegmentId, Span)>,
}

impl<'f> Lowering<'f> {
    pub(super) fn origin(&self, span: Span) -> Origin {
        Origin {
            file: self.file.clone(),
            span,
        }
    }

    pub(super) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Runs `lower` on values read from `file` (a node's `ip_addr` or `ip_route` file) rather
    /// than from the topology: the origins it makes name that file, and what it reports points
    /// into it.
    fn in_file<R>(
        &mut self,
        file: Option<&Arc<crate::format::SourceFile>>,
        lower: impl FnOnce(&mut Self) -> R,
    ) -> R {
        let Some(file) = file else {
            return lower(self);
        };
        let topology = std::mem::replace(&mut self.file, Arc::from(file.name()));
        let from = self.diagnostics.len();
        let out = lower(self);
        self.file = topology;
        for d in &mut self.diagnostics[from..] {
            d.file.get_or_insert_with(|| file.clone());
        }
        out
    }

    fn duplicate(&mut self, what: &str, name: &Located<String>, first: Span) {
        self.push(Diagnostic::duplicate(what, name, first));
    }

    /// Node, segment and group names: the naming rule of [`naming`] (`what` is `node`,
    /// `segment` or `group`).
    pub(super) fn check_name(&mut self, name: &Located<String>, what: &str) -> bool {
        let kind = match what {
            "segment" => NameKind::Segment,
            "group" => NameKind::Group,
            _ => NameKind::Node,
        };
        self.check_named(name, kind, format!("a valid {what} name"))
    }

    /// Applies the naming rule to `name`; a refusal is a `bad-name` diagnostic saying it is
    /// not `wanted`.
    fn check_named(&mut self, name: &Located<String>, kind: NameKind, wanted: String) -> bool {
        match naming::check(&name.value, kind) {
            Ok(()) => true,
            Err(problem) => {
                self.push(
                    Diagnostic::error(
                        Code::BadName,
                        name.span,
                        format!("`{}` is not {wanted}", naming::printable(&name.value)),
                    )
                    .label(problem.label(kind))
                    .hint(problem.hint(kind)),
                );
                false
            }
        }
    }

    fn segment(&mut self, spec: &'f SegmentSpec) {
        if !self.check_name(&spec.name, "segment") {
            return;
        }
        if let Some((_, first)) = self.segment_ids.get(spec.name.value.as_str()) {
            let first = *first;
            self.duplicate("segment", &spec.name, first);
            return;
        }
        let latency = match &spec.latency {
            Some(text) => match units::parse_duration(text) {
                Ok(d) => d,
                Err(e) => {
                    self.bad_value(text, format!("`{}` is not a latency", text.value), e);
                    Default::default()
                }
            },
            None => Default::default(),
        };
        let loss = match &spec.loss {
            Some(text) => match units::parse_loss(text) {
                Ok(l) => l,
                Err(e) => {
                    self.bad_value(text, format!("`{}` is not a loss rate", text.value), e);
                    0.0
                }
            },
            None => 0.0,
        };
        let mtu = match &spec.mtu {
            Some(mtu) => match u16::try_from(mtu.value).ok().filter(|m| *m >= 68) {
                Some(m) => m,
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            mtu.span,
                            format!("MTU {} is out of range", mtu.value),
                        )
                        .label("must be from 68 to 65535"),
                    );
                    1500
                }
            },
            None => 1500,
        };
        let id = SegmentId::from_index(self.net.segments.len());
        self.segment_ids
            .insert(&spec.name.value, (id, spec.name.span));
        let origin = self.origin(spec.name.span);
        self.net.segments.push(Segment {
            id,
            name: spec.name.value.clone(),
            latency,
            loss,
            mtu,
            interfaces: Vec::new(),
            note: spec.note.clone(),
            bridge: None,
            origin,
        });
    }

    /// Reports a value that cannot be read: `message`, and `hint` saying why.
    pub(super) fn bad_value(&mut self, at: &Located<String>, message: String, hint: String) {
        self.push(
            Diagnostic::error(Code::BadValue, at.span, message)
                .label("cannot be read")
                .hint(hint),
        );
    }

    /// A port number (1 to 65535), of a listener or a probe.
    pub(super) fn port(&mut self, number: &Located<u32>) -> Option<Port> {
        let port = u16::try_from(number.value).ok().and_then(Port::new);
        if port.is_none() {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    number.span,
                    format!("{} is not a port", number.value),
                )
                .label("must be from 1 to 65535"),
            );
        }
        port
    }

    /// An HTTP status code (100 to 599), of a service or an expected answer.
    pub(super) fn http_status(&mut self, status: &Located<u32>) -> Option<u16> {
        let code = u16::try_from(status.value)
            .ok()
            .filter(|s| (100..=599).contains(s));
        if code.is_none() {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    status.span,
                    format!("{} is not an HTTP status", status.value),
                )
                .label("must be from 100 to 599"),
            );
        }
        code
    }

    fn node(&mut self, spec: &NodeSpec) {
        let id = NodeId::from_index(self.net.nodes.len());
        let os = match spec.os.as_ref().map(|o| o.value) {
            Some(OsName::Windows) => OsProfile::Windows,
            Some(OsName::Linux) | None => OsProfile::Linux,
        };
        let mut node = Node {
            id,
            name: spec.name.value.clone(),
            os,
            forwarding: spec.forwarding.unwrap_or(false),
            br_netfilter: spec.br_netfilter.unwrap_or(false),
            interfaces: Vec::new(),
            routes: RoutingTable::default(),
            dns: spec.dns.iter().map(|d| d.value.clone()).collect(),
            resolver: spec.resolver.as_deref().cloned(),
            listeners: Vec::new(),
            netfilter: None,
            origin: self.origin(spec.name.span),
        };
        let mut names: HashMap<&str, Span> = HashMap::new();
        let taken = spec.ip_taken.as_ref();
        for (index, iface) in spec.interfaces.iter().enumerate() {
            if let Some(first) = names.insert(iface.name.value.as_str(), iface.name.span) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        iface.name.span,
                        format!(
                            "node `{}` has two interfaces called `{}`",
                            spec.name.value, iface.name.value
                        ),
                    )
                    .label("second definition")
                    .related(first, "first defined here")
                    .hint("give each interface of a node its own name"),
                );
                continue;
            }
            let file = taken.and_then(|t| t.interface_file(index));
            if let Some(iface_id) = self.interface(&mut node, iface, file) {
                node.interfaces.push(iface_id);
            }
        }
        self.connected_routes(&mut node);
        // A gateway may be reached through a `dev`-only route written after the route that
        // uses it (`ip -j route` lists `default via 169.254.1.1` before `169.254.1.1 dev eth0`):
        // such routes wait until every other route is in, and are checked once more.
        let mut waiting = Vec::new();
        for (index, route) in spec.routes.iter().enumerate() {
            let file = taken.and_then(|t| t.route_file(index));
            let wait = self.in_file(file, |cx| {
                cx.static_route(&mut node, &spec.name.value, route, false)
            });
            if wait {
                waiting.push(index);
            }
        }
        for index in waiting {
            let file = taken.and_then(|t| t.route_file(index));
            let route = &spec.routes[index];
            self.in_file(file, |cx| {
                cx.static_route(&mut node, &spec.name.value, route, true)
            });
        }
        for listen in &spec.listen {
            if let Some(listener) = self.listener(&node, listen) {
                node.listeners.push(listener);
            }
        }
        node.netfilter = self.netfilter(&node, spec);
        self.net.nodes.push(node);
    }

    /// Adds an interface of `node` (its name checked, its segment found, its addresses and MAC
    /// read, from `file` when its `ip_addr` gave them); `None` when its segment does not exist
    /// (reported).
    fn interface(
        &mut self,
        node: &mut Node,
        spec: &InterfaceSpec,
        file: Option<&Arc<crate::format::SourceFile>>,
    ) -> Option<IfaceId> {
        let name = spec.name.value.as_str();
        // Linux's dev_valid_name() (1 to 15 bytes, not `.`/`..`, no `/`, `:` or white space),
        // narrowed to characters no tool reads specially and to words `ip` does not take for a
        // keyword: see `naming`.
        self.check_named(
            &spec.name,
            NameKind::Interface,
            "a valid Linux interface name".into(),
        );
        let segment = self.interface_segment(node, spec);
        let addresses = self.in_file(file, |cx| cx.interface_addresses(spec));
        let mac = self.in_file(file, |cx| cx.interface_mac(node, spec));
        let segment = segment?;
        let id = IfaceId::from_index(self.net.interfaces.len());
        self.net.segments[segment.index()].interfaces.push(id);
        if let Some(bridge) = spec.bridge.as_ref().filter(|b| b.value) {
            self.bridge(node, segment, id, bridge.span);
        }
        let origin = self.origin(spec.name.span);
        let answers_arp_for = self.in_file(file, |cx| cx.arp_answered(spec));
        self.net.interfaces.push(Interface {
            id,
            node: node.id,
            name: name.to_owned(),
            segment,
            mac,
            addresses,
            hairpin: spec.hairpin.as_ref().is_some_and(|h| h.value),
            route_localnet: spec.route_localnet.as_ref().is_some_and(|r| r.value),
            proxy_arp: spec.proxy_arp.as_ref().is_some_and(|r| r.value),
            answers_arp_for,
            origin,
        });
        Some(id)
    }

    /// Makes interface `id` the Linux bridge of `segment`: at most one a segment.
    fn bridge(&mut self, node: &Node, segment: SegmentId, id: IfaceId, at: Span) {
        let seg = &self.net.segments[segment.index()];
        match seg.bridge {
            None => self.net.segments[segment.index()].bridge = Some(id),
            Some(first) => {
                let first = self.net.interface(first);
                // The node being lowered is not in the network yet.
                let owner = if first.node == node.id {
                    &node.name
                } else {
                    &self.net.node(first.node).name
                };
                let message = format!(
                    "segment `{}` already is a bridge: interface `{}` of node `{owner}`",
                    seg.name, first.name
                );
                let related = first.origin.span;
                self.push(
                    Diagnostic::error(Code::BadValue, at, message)
                        .label("second bridge")
                        .related(related, "the segment's bridge")
                        .hint("a segment is one bridge: give each bridge a segment of its own"),
                );
            }
        }
    }

    /// The segment an interface is plugged into.
    fn interface_segment(&mut self, node: &Node, spec: &InterfaceSpec) -> Option<SegmentId> {
        if let Some((id, _)) = self.segment_ids.get(spec.segment.value.as_str()) {
            return Some(*id);
        }
        let known: Vec<&str> = self.segment_ids.keys().copied().collect();
        let mut hint = match closest(&spec.segment.value, known.iter().copied()) {
            Some(close) => format!("did you mean `{close}`? "),
            None => String::new(),
        };
        if known.is_empty() {
            hint.push_str("the file has no segments: add one under `segments:`");
        } else {
            let mut sorted = known.clone();
            sorted.sort_unstable();
            hint.push_str(&format!("segments in this file: {}", sorted.join(", ")));
        }
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                spec.segment.span,
                format!("interface `{}` of node `{}` is plugged into segment `{}`, which does not exist", spec.name.value, node.name, spec.segment.value),
            )
            .label("unknown segment")
            .hint(hint),
        );
        None
    }

    /// An interface's addresses, without those a host cannot have and those listed twice.
    fn interface_addresses(&mut self, spec: &InterfaceSpec) -> Vec<Ipv4Net> {
        let name = spec.name.value.as_str();
        let mut addresses: Vec<Ipv4Net> = Vec::new();
        for text in &spec.addresses {
            match units::parse_interface_addr(text) {
                Ok(net) => {
                    if let Some(problem) = reserved_problem(net) {
                        self.push(
                            Diagnostic::error(
                                Code::ReservedAddress,
                                text.span,
                                format!("{} cannot be an interface address: {problem}", net.addr()),
                            )
                            .label(problem)
                            .hint(format!(
                                "hosts of {} are {}",
                                net.trunc(),
                                host_range(net)
                            )),
                        );
                    } else if addresses.iter().any(|a| a.addr() == net.addr()) {
                        self.push(
                            Diagnostic::error(
                                Code::DuplicateAddress,
                                text.span,
                                format!("{} is listed twice on interface `{name}`", net.addr()),
                            )
                            .label("listed before")
                            .hint("`ip addr add` would say: RTNETLINK answers: File exists"),
                        );
                    } else {
                        addresses.push(net);
                    }
                }
                Err(e) => self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        text.span,
                        format!("`{}` is not an interface address", text.value),
                    )
                    .label("expected ADDRESS/PREFIX")
                    .hint(e),
                ),
            }
        }
        addresses
    }

    /// An interface's `answers_arp_for`: unicast addresses, each once.
    fn arp_answered(&mut self, spec: &InterfaceSpec) -> Vec<Ipv4Addr> {
        let mut answered: Vec<Ipv4Addr> = Vec::new();
        for text in &spec.answers_arp_for {
            let problem = match units::parse_addr(text) {
                Ok(a)
                    if a.is_unspecified()
                        || a.is_broadcast()
                        || a.is_multicast()
                        || a.is_loopback() =>
                {
                    "ARP resolves unicast addresses only".to_owned()
                }
                Ok(a) if answered.contains(&a) => format!("{a} is listed twice"),
                Ok(a) => {
                    answered.push(a);
                    continue;
                }
                Err(e) => e,
            };
            self.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not an address to answer ARP for", text.value),
                )
                .label("expected a unicast IPv4 address")
                .hint(problem),
            );
        }
        answered
    }

    /// An interface's MAC: the one given if it is a unicast address, else one derived from the
    /// node's and the interface's names.
    fn interface_mac(&mut self, node: &Node, spec: &InterfaceSpec) -> MacAddr {
        let derived = || MacAddr::derived(&format!("{}/{}", node.name, spec.name.value));
        let Some(text) = &spec.mac else {
            return derived();
        };
        match text.value.parse::<MacAddr>() {
            Ok(mac) if mac.0 == [0; 6] => {
                self.push(
                    Diagnostic::error(Code::BadValue, text.span, format!("{mac} is the all-zero MAC address"))
                        .label("no interface can have it")
                        .hint("give the interface a unicast MAC such as 02:00:00:00:00:01, or leave `mac` out to get a derived one"),
                );
                derived()
            }
            Ok(mac) if mac.is_multicast() => {
                self.push(
                    Diagnostic::error(Code::BadValue, text.span, format!("{mac} is a multicast MAC address"))
                        .label("group bit set")
                        .hint("an interface needs a unicast MAC: the lowest bit of the first byte must be 0, e.g. 02:00:00:00:00:01"),
                );
                derived()
            }
            Ok(mac) => mac,
            Err(e) => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        text.span,
                        format!("`{}` is not a MAC address", text.value),
                    )
                    .label("cannot be read")
                    .hint(e.to_string()),
                );
                derived()
            }
        }
    }

    /// The kernel's connected routes: one per subnet per interface, from its first address in
    /// that subnet (later ones are secondaries); none for /32.
    fn connected_routes(&mut self, node: &mut Node) {
        for &iface_id in &node.interfaces {
            let iface = &self.net.interfaces[iface_id.index()];
            for net in &iface.addresses {
                if net.prefix_len() == 32 {
                    continue;
                }
                let dst = net.trunc();
                let secondary = node.routes.routes().iter().any(|r| {
                    r.dev == iface_id
                        && r.dst == dst
                        && matches!(r.kind, RouteKind::Connected { .. })
                });
                if secondary {
                    continue;
                }
                node.routes.append(Route {
                    dst,
                    gateway: None,
                    dev: iface_id,
                    metric: 0,
                    kind: RouteKind::Connected { src: net.addr() },
                    origin: iface.origin.clone(),
                });
            }
        }
    }

    /// Adds the route a `routes:` entry describes to `node` (called `node_name`), if it is
    /// valid and no route with the same destination and metric is there. Returns true, and
    /// adds nothing, when no link route reaches its gateway yet and `last` is false: a
    /// `dev`-only route later in the file may (the caller tries again with `last`).
    fn static_route(
        &mut self,
        node: &mut Node,
        node_name: &str,
        spec: &RouteSpec,
        last: bool,
    ) -> bool {
        let Some(route) = self.route_keys(node, node_name, spec) else {
            return false;
        };
        match &spec.kind {
            Some(kind) => {
                self.reject_route(node, node_name, spec, &route, kind.value);
                false
            }
            None => self.gateway_route(node, node_name, spec, &route, last),
        }
    }

    /// The keys of a `routes:` entry, each read and checked; `None` when one is wrong
    /// (reported).
    fn route_keys(&mut self, node: &Node, node_name: &str, spec: &RouteSpec) -> Option<RouteKeys> {
        let dst = self.route_destination(&spec.to);
        let dev = match &spec.dev {
            Some(dev) => Some(self.route_device(node, node_name, dev)?),
            None => None,
        };
        let via = match &spec.via {
            Some(text) => match units::parse_addr(text) {
                Ok(addr) => Some((addr, text.span)),
                Err(e) => {
                    self.push(
                        Diagnostic::error(
                            Code::BadAddress,
                            text.span,
                            format!("`{}` is not a gateway address", text.value),
                        )
                        .label("expected an IPv4 address")
                        .hint(e),
                    );
                    return None;
                }
            },
            None => None,
        };
        Some(RouteKeys {
            dst: dst?,
            dev,
            via,
            metric: spec.metric.as_ref().map_or(0, |m| m.value),
        })
    }

    /// A route's `to`: `default`, a network, or an address (a /32).
    fn route_destination(&mut self, to: &Located<String>) -> Option<Ipv4Net> {
        match units::parse_destination(to) {
            Ok(dst) => Some(dst),
            Err(DestinationError::Syntax(e)) => {
                self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        to.span,
                        format!("`{}` is not a route destination", to.value),
                    )
                    .label("expected `default`, PREFIX/LENGTH or an address")
                    .hint(e),
                );
                None
            }
            Err(DestinationError::HostBitsSet(meant)) => {
                self.push(
                    Diagnostic::error(Code::HostBitsSet, to.span, format!("`{}` has host bits set", to.value))
                        .label("not a network address")
                        .hint(format!("did you mean `{meant}`? (`ip route add` says: Invalid prefix for given prefix length)")),
                );
                None
            }
        }
    }

    /// A route's `dev`: an interface of the node.
    fn route_device(
        &mut self,
        node: &Node,
        node_name: &str,
        dev: &Located<String>,
    ) -> Option<IfaceId> {
        let found = node
            .interfaces
            .iter()
            .copied()
            .find(|&i| self.net.interfaces[i.index()].name == dev.value);
        if found.is_none() {
            let names: Vec<&str> = node
                .interfaces
                .iter()
                .map(|&i| self.net.interfaces[i.index()].name.as_str())
                .collect();
            let hint = match closest(&dev.value, names.iter().copied()) {
                Some(close) => format!(
                    "did you mean `{close}`? interfaces of `{node_name}`: {}",
                    names.join(", ")
                ),
                None if names.is_empty() => format!("node `{node_name}` has no interfaces"),
                None => format!("interfaces of `{node_name}`: {}", names.join(", ")),
            };
            self.push(
                Diagnostic::error(
                    Code::UnknownReference,
                    dev.span,
                    format!("node `{node_name}` has no interface `{}`", dev.value),
                )
                .label("unknown interface")
                .hint(hint),
            );
        }
        found
    }

    /// A blackhole, unreachable or prohibit route: it takes neither `via` nor `dev`.
    fn reject_route(
        &mut self,
        node: &mut Node,
        node_name: &str,
        spec: &RouteSpec,
        keys: &RouteKeys,
        kind: RouteTypeName,
    ) {
        let RouteKeys { dst, metric, .. } = *keys;
        let word = match kind {
            RouteTypeName::Blackhole => RouteType::Blackhole,
            RouteTypeName::Unreachable => RouteType::Unreachable,
            RouteTypeName::Prohibit => RouteType::Prohibit,
        };
        if let Some(span) = keys
            .via
            .map(|(_, span)| span)
            .or(spec.dev.as_ref().map(|d| d.span))
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    span,
                    format!("a `{}` route to {dst} takes neither `via` nor `dev`", word.word()),
                )
                .label("not allowed with `type`")
                .hint("remove it (`ip route add` says: Gateway, device and multipath can not be specified for this route type)"),
            );
            return;
        }
        let route = RejectRoute {
            dst,
            metric,
            kind: word,
            origin: self.origin(spec.to.span),
        };
        if let Err(existing) = node.routes.insert_reject(route) {
            self.duplicate_route(node_name, spec, keys, existing);
        }
    }

    /// A route through a gateway a link route reaches, or out of a device. Returns true when
    /// its gateway is not reached yet and this is not the `last` try (nothing reported).
    fn gateway_route(
        &mut self,
        node: &mut Node,
        node_name: &str,
        spec: &RouteSpec,
        keys: &RouteKeys,
        last: bool,
    ) -> bool {
        let RouteKeys {
            dst,
            dev,
            via,
            metric,
        } = *keys;
        let (gateway, dev) = match (via, dev) {
            (None, None) => {
                self.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        spec.to.span,
                        format!("the route to {dst} has neither `via` nor `dev`"),
                    )
                    .label("where should it go?")
                    .hint(
                        "add `via: GATEWAY` (an address on a connected subnet) or `dev: INTERFACE`",
                    ),
                );
                return false;
            }
            (None, Some(dev)) => (None, dev),
            (Some((gateway, span)), dev) => match self.gateway_device(node, gateway, dev) {
                Ok(dev) => (Some(gateway), dev),
                Err(GatewayProblem::NotOnLink) if !last => return true,
                Err(reason) => {
                    self.invalid_gateway(node, node_name, gateway, span, dev, reason);
                    return false;
                }
            },
        };
        let route = Route {
            dst,
            gateway,
            dev,
            metric,
            kind: RouteKind::Static,
            origin: self.origin(spec.to.span),
        };
        if let Err(existing) = node.routes.insert(route) {
            self.duplicate_route(node_name, spec, keys, existing);
        }
        false
    }

    /// Reports a route refused because one with the same destination and metric is there.
    fn duplicate_route(
        &mut self,
        node_name: &str,
        spec: &RouteSpec,
        keys: &RouteKeys,
        existing: TableEntry<'_>,
    ) {
        let RouteKeys { dst, metric, .. } = *keys;
        let first = existing.origin().span;
        let what = match existing {
            TableEntry::Route(Route {
                kind: RouteKind::Connected { .. },
                ..
            }) => "the connected route of that subnet",
            TableEntry::Route(_) => "another route",
            TableEntry::Reject(r) => r.kind.word(),
        };
        self.push(
            Diagnostic::error(Code::DuplicateRoute, spec.to.span, format!("node `{node_name}` already has a route to {dst} with metric {metric}"))
                .label(format!("same destination and metric as {what}"))
                .related(first, "the existing route comes from here")
                .hint("give this route another `metric` (`ip route add` says: RTNETLINK answers: File exists)"),
        );
    }

    /// The device a gateway is reached through, as the kernel's nexthop check finds it: a
    /// link-scope route (connected, or `dev`-only) containing the gateway, on `dev` if given;
    /// the gateway must not be a subnet's broadcast address.
    fn gateway_device(
        &self,
        node: &Node,
        gateway: Ipv4Addr,
        dev: Option<IfaceId>,
    ) -> Result<IfaceId, GatewayProblem> {
        let hit = node
            .routes
            .routes()
            .iter()
            .filter(|r| r.is_link_scope() && r.dst.contains(&gateway))
            .filter(|r| dev.is_none_or(|d| r.dev == d))
            .min_by_key(|r| (std::cmp::Reverse(r.dst.prefix_len()), r.metric));
        let Some(route) = hit else {
            return Err(GatewayProblem::NotOnLink);
        };
        let broadcast = node.interfaces.iter().any(|&i| {
            self.net.interfaces[i.index()]
                .addresses
                .iter()
                .any(|a| a.prefix_len() < 31 && a.broadcast() == gateway)
        });
        if broadcast || gateway.is_broadcast() || gateway.is_unspecified() || gateway.is_multicast()
        {
            return Err(GatewayProblem::NotUnicast);
        }
        Ok(route.dev)
    }

    fn invalid_gateway(
        &mut self,
        node: &Node,
        node_name: &str,
        gateway: Ipv4Addr,
        span: Span,
        dev: Option<IfaceId>,
        problem: GatewayProblem,
    ) {
        let subnets: Vec<String> = node
            .routes
            .routes()
            .iter()
            .filter(|r| r.is_link_scope())
            .filter(|r| dev.is_none_or(|d| r.dev == d))
            .map(|r| format!("{} ({})", r.dst, self.net.interfaces[r.dev.index()].name))
            .collect();
        let on = match dev {
            Some(d) => format!(" through `{}`", self.net.interfaces[d.index()].name),
            None => String::new(),
        };
        let (message, label) = match problem {
            GatewayProblem::NotOnLink => (
                format!(
                    "gateway {gateway} is not on any subnet node `{node_name}` is connected to{on}"
                ),
                "no connected subnet or `dev`-only route contains this address",
            ),
            GatewayProblem::NotUnicast => (
                format!("gateway {gateway} is a broadcast or otherwise non-unicast address"),
                "not a host address",
            ),
        };
        let mut reach = if subnets.is_empty() {
            format!(
                "node `{node_name}` has no connected subnets{on}: give an interface an address first"
            )
        } else {
            format!("use a gateway in {}", subnets.join(", "))
        };
        if problem == GatewayProblem::NotOnLink {
            // The kernel's nexthop check takes any link route to the gateway (fib_check_nh).
            let dev = dev.map_or("INTERFACE", |d| {
                self.net.interfaces[d.index()].name.as_str()
            });
            reach.push_str(&format!(
                ", or reach it by a link route (`{{ to: {gateway}, dev: {dev} }}`)"
            ));
        }
        self.push(
            Diagnostic::error(Code::InvalidGateway, span, message)
                .label(label)
                .hint(format!(
                    "{reach} (`ip route add` says: Error: Nexthop has invalid gateway.)"
                )),
        );
    }

    /// An address used by two interfaces of one segment, and MACs likewise.
    fn shared_segment_addresses(&mut self) {
        let mut problems = Vec::new();
        for segment in &self.net.segments {
            let mut seen_addr: HashMap<Ipv4Addr, &Interface> = HashMap::new();
            let mut seen_mac: HashMap<MacAddr, &Interface> = HashMap::new();
            for &iface_id in &segment.interfaces {
                let iface = &self.net.interfaces[iface_id.index()];
                for net in &iface.addresses {
                    if let Some(first) = seen_addr.insert(net.addr(), iface) {
                        problems.push((
                            iface,
                            first,
                            format!("address {}", net.addr()),
                            segment.name.clone(),
                        ));
                    }
                }
                // Generated MACs only collide when the node and interface names do, which is
                // reported as a duplicate name already.
                let generated = |i: &Interface| {
                    let node = self
                        .net
                        .nodes
                        .get(i.node.index())
                        .map_or("", |n| n.name.as_str());
                    i.mac == MacAddr::derived(&format!("{node}/{}", i.name))
                };
                if let Some(first) = seen_mac.insert(iface.mac, iface)
                    && !(generated(iface) && generated(first))
                {
                    problems.push((
                        iface,
                        first,
                        format!("MAC {}", iface.mac),
                        segment.name.clone(),
                    ));
                }
            }
        }
        let diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|(second, first, what, segment)| {
                let owner = |i: &Interface| format!("{} of node `{}`", i.name, self.net.nodes.get(i.node.index()).map_or("?", |n| n.name.as_str()));
                Diagnostic::error(Code::DuplicateAddress, second.origin.span, format!("{what} is used twice on segment `{segment}`"))
                    .label(format!("{} also uses it", owner(first)))
                    .related(first.origin.span, format!("{} has it first", owner(first)))
                    .hint("every interface on one segment needs its own address and MAC (ARP would flap between the two)")
            })
            .collect();
        self.diagnostics.extend(diagnostics);
    }

    fn dns_names(&mut self, nodes: &[NodeSpec]) {
        let mut seen: HashMap<String, (&str, Span)> = HashMap::new();
        for node in nodes {
            for name in &node.dns {
                let valid = !name.value.is_empty()
                    && name.value.len() <= 253
                    && name.value.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && !label.starts_with('-')
                            && !label.ends_with('-')
                            && label
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                if !valid {
                    self.push(
                        Diagnostic::error(Code::BadName, name.span, format!("`{}` is not a DNS name", name.value))
                            .label("bad DNS name")
                            .hint("use labels of letters, digits and `-` separated by dots, like `web.lab`"),
                    );
                    continue;
                }
                let key = name.value.to_ascii_lowercase();
                if let Some((owner, first)) = seen.get(&key) {
                    let (owner, first) = (*owner, *first);
                    self.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            name.span,
                            format!(
                                "DNS name `{}` is given to node `{owner}` and node `{}`",
                                name.value, node.name.value
                            ),
                        )
                        .label("second owner")
                        .related(first, "first given here")
                        .hint("a DNS name resolves to one node"),
                    );
                } else {
                    seen.insert(key, (node.name.value.as_str(), name.span));
                }
            }
        }
    }
}

/// The keys of a `routes:` entry, read.
#[derive(Debug, Clone, Copy)]
struct RouteKeys {
    dst: Ipv4Net,
    dev: Option<IfaceId>,
    /// The gateway, and where the file gives it.
    via: Option<(Ipv4Addr, Span)>,
    metric: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GatewayProblem {
    NotOnLink,
    NotUnicast,
}

/// Why `net.addr()` cannot be a host's address in its own subnet, if it cannot.
fn reserved_problem(net: Ipv4Net) -> Option<&'static str> {
    let addr = net.addr();
    if addr.is_unspecified() {
        Some("0.0.0.0 means no address")
    } else if addr.is_multicast() || addr.is_broadcast() {
        Some("it is a multicast or broadcast address")
    } else if net.prefix_len() <= 30 && addr == net.network() {
        Some("it is the network address of its subnet")
    } else if net.prefix_len() <= 30 && addr == net.broadcast() {
        Some("it is the broadcast address of its subnet")
    } else {
        None
    }
}

fn host_range(net: Ipv4Net) -> String {
    if net.prefix_len() >= 31 {
        return format!("{} to {}", net.network(), net.broadcast());
    }
    let first = Ipv4Addr::from(u32::from(net.network()) + 1);
    let last = Ipv4Addr::from(u32::from(net.broadcast()) - 1);
    format!("{first} to {last}")
}
