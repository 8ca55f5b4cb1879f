//! Semantic validation and lowering: turns a parsed [`TopologyFile`] into the core
//! [`Network`], checking everything the kernel or the tools would refuse (bad addresses,
//! duplicate names, unreachable gateways, dangling references) and collecting every problem
//! with its position instead of stopping at the first.

use std::collections::HashMap;

use indexmap::IndexMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::diagnostic::{Code, Diagnostic};
use super::file::{
    ExpectSpec, InterfaceSpec, ListenSpec, NodeSpec, OsName, OutcomeName, ProtoName, RouteSpec,
    RouteTypeName, SegmentSpec, TopologyFile,
};
use super::naming::{self, NameKind};
use super::source::{Located, Origin, Span};
use super::structure::closest;
use super::units::{self, DestinationError};
use crate::model::{
    Expectation, IfaceId, Interface, Listener, MacAddr, Network, Node, NodeId, OsProfile, Outcome,
    Port, Probe, Proto, RejectRoute, Route, RouteKind, RouteType, RoutingTable, Segment, SegmentId,
    Service, TableEntry, Target,
};

/// Lowers `file` (read from `file_name`) into a network; `default_name` names it when the
/// file does not. Returns the
/// network built from the valid parts and every diagnostic.
pub(crate) fn lower(
    file: &TopologyFile,
    file_name: &str,
    default_name: &str,
) -> (Network, Vec<Diagnostic>) {
    let mut cx = Lowering {
        file: Arc::from(file_name),
        diagnostics: Vec::new(),
        net: Network {
            name: file.name.clone().unwrap_or_else(|| default_name.to_owned()),
            description: file.description.clone(),
            ..Network::default()
        },
        segment_ids: IndexMap::new(),
    };
    for spec in &file.segments {
        cx.segment(spec);
    }
    let mut node_names: HashMap<String, Span> = HashMap::new();
    for spec in &file.nodes {
        if cx.check_name(&spec.name, "node")
            && let Some(first) = node_names.insert(spec.name.value.clone(), spec.name.span)
        {
            cx.duplicate("node", &spec.name, first);
        }
        cx.node(spec);
    }
    cx.shared_segment_addresses();
    cx.dns_names(&file.nodes);
    for spec in &file.expect {
        cx.expectation(spec);
    }
    cx.invariants(file);
    (cx.net, cx.diagnostics)
}

pub(super) struct Lowering {
    file: Arc<str>,
    diagnostics: Vec<Diagnostic>,
    pub(super) net: Network,
    segment_ids: IndexMap<String, (SegmentId, Span)>,
}

impl Lowering {
    pub(super) fn origin(&self, span: Span) -> Origin {
        Origin {
            file: self.file.clone(),
            span,
        }
    }

    pub(super) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn duplicate(&mut self, what: &str, name: &Located<String>, first: Span) {
        self.push(
            Diagnostic::error(
                Code::DuplicateName,
                name.span,
                format!("{what} `{}` is defined twice", name.value),
            )
            .label("second definition")
            .related(first, "first defined here")
            .hint(format!("give each {what} its own name")),
        );
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

    fn segment(&mut self, spec: &SegmentSpec) {
        if !self.check_name(&spec.name, "segment") {
            return;
        }
        if let Some((_, first)) = self.segment_ids.get(&spec.name.value) {
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
            .insert(spec.name.value.clone(), (id, spec.name.span));
        let origin = self.origin(spec.name.span);
        self.net.segments.push(Segment {
            id,
            name: spec.name.value.clone(),
            latency,
            loss,
            mtu,
            interfaces: Vec::new(),
            note: spec.note.clone(),
            origin,
        });
    }

    fn bad_value(&mut self, at: &Located<String>, message: String, hint: String) {
        self.push(
            Diagnostic::error(Code::BadValue, at.span, message)
                .label("cannot be read")
                .hint(hint),
        );
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
            interfaces: Vec::new(),
            routes: RoutingTable::default(),
            dns: spec.dns.iter().map(|d| d.value.clone()).collect(),
            listeners: Vec::new(),
            netfilter: None,
            origin: self.origin(spec.name.span),
        };
        let mut names: HashMap<&str, Span> = HashMap::new();
        for iface in &spec.interfaces {
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
            if let Some(iface_id) = self.interface(&mut node, iface) {
                node.interfaces.push(iface_id);
            }
        }
        self.connected_routes(&mut node);
        for route in &spec.routes {
            self.static_route(&mut node, &spec.name.value, route);
        }
        for listen in &spec.listen {
            if let Some(listener) = self.listener(&node, listen) {
                node.listeners.push(listener);
            }
        }
        node.netfilter = self.netfilter(&node, spec);
        self.net.nodes.push(node);
    }

    fn interface(&mut self, node: &mut Node, spec: &InterfaceSpec) -> Option<IfaceId> {
        let name = spec.name.value.as_str();
        // Linux's dev_valid_name() (1 to 15 bytes, not `.`/`..`, no `/`, `:` or white space),
        // narrowed to characters no tool reads specially and to words `ip` does not take for a
        // keyword: see `naming`.
        self.check_named(
            &spec.name,
            NameKind::Interface,
            "a valid Linux interface name".into(),
        );
        let segment = match self.segment_ids.get(&spec.segment.value) {
            Some((id, _)) => Some(*id),
            None => {
                let known: Vec<&str> = self.segment_ids.keys().map(String::as_str).collect();
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
                        format!("interface `{}` of node `{}` is plugged into segment `{}`, which does not exist", name, node.name, spec.segment.value),
                    )
                    .label("unknown segment")
                    .hint(hint),
                );
                None
            }
        };
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
        let mac = match &spec.mac {
            Some(text) => match text.value.parse::<MacAddr>() {
                Ok(mac) if mac.0 == [0; 6] => {
                    self.push(
                        Diagnostic::error(Code::BadValue, text.span, format!("{mac} is the all-zero MAC address"))
                            .label("no interface can have it")
                            .hint("give the interface a unicast MAC such as 02:00:00:00:00:01, or leave `mac` out to get a derived one"),
                    );
                    MacAddr::derived(&format!("{}/{name}", node.name))
                }
                Ok(mac) if mac.is_multicast() => {
                    self.push(
                        Diagnostic::error(Code::BadValue, text.span, format!("{mac} is a multicast MAC address"))
                            .label("group bit set")
                            .hint("an interface needs a unicast MAC: the lowest bit of the first byte must be 0, e.g. 02:00:00:00:00:01"),
                    );
                    MacAddr::derived(&format!("{}/{name}", node.name))
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
                    MacAddr::derived(&format!("{}/{name}", node.name))
                }
            },
            None => MacAddr::derived(&format!("{}/{name}", node.name)),
        };
        let segment = segment?;
        let id = IfaceId::from_index(self.net.interfaces.len());
        self.net.segments[segment.index()].interfaces.push(id);
        let origin = self.origin(spec.name.span);
        self.net.interfaces.push(Interface {
            id,
            node: node.id,
            name: name.to_owned(),
            segment,
            mac,
            addresses,
            origin,
        });
        Some(id)
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

    fn static_route(&mut self, node: &mut Node, node_name: &str, spec: &RouteSpec) {
        let dst = match units::parse_destination(&spec.to) {
            Ok(dst) => Some(dst),
            Err(DestinationError::Syntax(e)) => {
                self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        spec.to.span,
                        format!("`{}` is not a route destination", spec.to.value),
                    )
                    .label("expected `default`, PREFIX/LENGTH or an address")
                    .hint(e),
                );
                None
            }
            Err(DestinationError::HostBitsSet(meant)) => {
                self.push(
                    Diagnostic::error(Code::HostBitsSet, spec.to.span, format!("`{}` has host bits set", spec.to.value))
                        .label("not a network address")
                        .hint(format!("did you mean `{meant}`? (`ip route add` says: Invalid prefix for given prefix length)")),
                );
                None
            }
        };
        let dev = match &spec.dev {
            Some(dev) => {
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
                    return;
                }
                found
            }
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
                    return;
                }
            },
            None => None,
        };
        let Some(dst) = dst else { return };
        let metric = spec.metric.as_ref().map_or(0, |m| m.value);
        if let Some(kind) = &spec.kind {
            let word = match kind.value {
                RouteTypeName::Blackhole => RouteType::Blackhole,
                RouteTypeName::Unreachable => RouteType::Unreachable,
                RouteTypeName::Prohibit => RouteType::Prohibit,
            };
            if let Some(span) = via
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
                let first = existing.origin().span;
                self.duplicate_route(node_name, spec, dst, metric, existing, first);
            }
            return;
        }
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
                return;
            }
            (None, Some(dev)) => (None, dev),
            (Some((gateway, span)), dev) => match self.gateway_device(node, gateway, dev) {
                Ok(dev) => (Some(gateway), dev),
                Err(reason) => {
                    self.invalid_gateway(node, node_name, gateway, span, dev, reason);
                    return;
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
            let first = existing.origin().span;
            self.duplicate_route(node_name, spec, dst, metric, existing, first);
        }
    }

    /// Reports a route refused because one with the same destination and metric is there.
    fn duplicate_route(
        &mut self,
        node_name: &str,
        spec: &RouteSpec,
        dst: Ipv4Net,
        metric: u32,
        existing: TableEntry<'_>,
        first: Span,
    ) {
        {
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
                "no connected subnet contains this address",
            ),
            GatewayProblem::NotUnicast => (
                format!("gateway {gateway} is a broadcast or otherwise non-unicast address"),
                "not a host address",
            ),
        };
        let reach = if subnets.is_empty() {
            format!(
                "node `{node_name}` has no connected subnets{on}: give an interface an address first"
            )
        } else {
            format!("use a gateway in {}", subnets.join(", "))
        };
        self.push(
            Diagnostic::error(Code::InvalidGateway, span, message)
                .label(label)
                .hint(format!(
                    "{reach} (`ip route add` says: Error: Nexthop has invalid gateway.)"
                )),
        );
    }

    fn listener(&mut self, node: &Node, spec: &ListenSpec) -> Option<Listener> {
        let Some(port) = u16::try_from(spec.port.value).ok().and_then(Port::new) else {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    spec.port.span,
                    format!("{} is not a port", spec.port.value),
                )
                .label("must be from 1 to 65535"),
            );
            return None;
        };
        let proto = match spec.proto.as_ref().map(|p| p.value) {
            Some(ProtoName::Udp) => Proto::Udp,
            Some(ProtoName::Tcp) | None => Proto::Tcp,
        };
        let kinds: Vec<(&str, Span)> = [
            spec.ssh.as_ref().map(|s| ("ssh", s.span)),
            spec.http.as_ref().map(|h| ("http", h.span)),
            spec.banner.as_ref().map(|b| ("banner", b.span)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() > 1 {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    kinds[1].1,
                    format!(
                        "port {port} is given both `{}` and `{}`",
                        kinds[0].0, kinds[1].0
                    ),
                )
                .label("second answer")
                .hint("a listener answers one way: keep one of `ssh`, `http`, `banner`"),
            );
            return None;
        }
        if proto == Proto::Udp
            && let Some((kind, span)) = kinds.first()
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    *span,
                    format!("`{kind}` runs over TCP, but this listener is UDP"),
                )
                .label("TCP service")
                .hint("remove `proto: udp`, or remove the service to get a UDP echo"),
            );
            return None;
        }
        let service = if let Some(banner) = &spec.ssh {
            Service::Ssh {
                banner: banner.value.clone(),
            }
        } else if let Some(http) = &spec.http {
            let status = match &http.value.status {
                Some(s) if (100..=599).contains(&s.value) => s.value as u16,
                Some(s) => {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            s.span,
                            format!("{} is not an HTTP status", s.value),
                        )
                        .label("must be from 100 to 599"),
                    );
                    return None;
                }
                None => 200,
            };
            let body = http.value.body.clone();
            let content_type = http.value.content_type.clone().unwrap_or_else(|| {
                if serde_json::from_str::<serde_json::Value>(&body)
                    .is_ok_and(|v| v.is_object() || v.is_array())
                {
                    "application/json".into()
                } else {
                    "text/plain".into()
                }
            });
            let mut requires = Vec::new();
            for text in &http.value.requires {
                let parsed = units::parse_http_url(text)
                    .ok()
                    .and_then(|u| Some((u.host.parse::<Ipv4Addr>().ok()?, Port::new(u.port)?)));
                match parsed {
                    Some(backend) => requires.push(backend),
                    None => self.push(
                        Diagnostic::error(Code::BadValue, text.span, format!("`{}` is not a backend URL", text.value))
                            .label("expected http://ADDRESS:PORT/")
                            .hint("write the backend as the service calls it, with an IPv4 address, e.g. `http://192.168.0.79:50001`"),
                    ),
                }
            }
            Service::Http {
                status,
                body,
                content_type,
                requires,
            }
        } else if let Some(banner) = &spec.banner {
            Service::Banner(banner.value.clone())
        } else {
            Service::Plain
        };
        let bind = match &spec.address {
            Some(text) => match units::parse_addr(text) {
                Ok(addr) if addr.is_unspecified() => None,
                Ok(addr) if addr.is_loopback() || self.node_owns(node, addr) => Some(addr),
                Ok(addr) => {
                    self.push(
                        Diagnostic::error(Code::BadValue, text.span, format!("node `{}` has no address {addr} to listen on", node.name))
                            .label("not an address of this node")
                            .hint("listen on one of the node's addresses, 127.0.0.1, or leave `address` out for all (bind() would fail: Cannot assign requested address)"),
                    );
                    return None;
                }
                Err(e) => {
                    self.push(
                        Diagnostic::error(
                            Code::BadAddress,
                            text.span,
                            format!("`{}` is not a listen address", text.value),
                        )
                        .label("expected an IPv4 address")
                        .hint(e),
                    );
                    return None;
                }
            },
            None => None,
        };
        if let Some(clash) = node.listeners.iter().find(|l| {
            l.proto == proto
                && l.port == port
                && (l.bind.is_none() || bind.is_none() || l.bind == bind)
        }) {
            let first = clash.origin.span;
            self.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    spec.port.span,
                    format!(
                        "node `{}` already listens on {} port {port}",
                        node.name,
                        proto.as_str()
                    ),
                )
                .label("second listener")
                .related(first, "first listener")
                .hint("bind() would fail with: Address already in use"),
            );
            return None;
        }
        Some(Listener {
            proto,
            port,
            bind,
            service,
            origin: self.origin(spec.port.span),
        })
    }

    fn node_owns(&self, node: &Node, addr: Ipv4Addr) -> bool {
        node.interfaces.iter().any(|&i| {
            self.net.interfaces[i.index()]
                .addresses
                .iter()
                .any(|a| a.addr() == addr)
        })
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

    fn expectation(&mut self, spec: &ExpectSpec) {
        let from = self.net.node_by_name(&spec.from.value).map(|n| n.id);
        if from.is_none() {
            self.unknown_node(&spec.from, "probe source");
        }
        let probes: Vec<(&str, &Located<String>)> = [
            ("ping", &spec.ping),
            ("ssh", &spec.ssh),
            ("curl", &spec.curl),
            ("tcp", &spec.tcp),
            ("udp", &spec.udp),
        ]
        .into_iter()
        .filter_map(|(tool, target)| target.as_ref().map(|t| (tool, t)))
        .collect();
        let (tool, target_text) = match probes.as_slice() {
            [one] => *one,
            [] => {
                self.push(
                    Diagnostic::error(Code::MissingKey, spec.from.span, "this expectation names no probe")
                        .label("which probe?")
                        .hint("add one of `ping: TARGET`, `ssh: TARGET`, `curl: URL`, `tcp: TARGET` or `udp: TARGET`"),
                );
                return;
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        second.1.span,
                        format!("one expectation has both `{}` and `{}`", first.0, second.0),
                    )
                    .label("second probe")
                    .hint("write one expectation per probe"),
                );
                return;
            }
        };
        let port = match &spec.port {
            Some(p) => match u16::try_from(p.value).ok().and_then(Port::new) {
                Some(port) if tool == "ping" || tool == "curl" => {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            p.span,
                            format!("`port: {port}` does not apply to {tool}"),
                        )
                        .label("not used")
                        .hint(if tool == "curl" {
                            "put the port in the URL: `http://HOST:PORT/`"
                        } else {
                            "ping has no port: remove it, or use `tcp:`/`udp:`"
                        }),
                    );
                    return;
                }
                Some(port) => Some(port),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            p.span,
                            format!("{} is not a port", p.value),
                        )
                        .label("must be from 1 to 65535"),
                    );
                    return;
                }
            },
            None => None,
        };
        let (probe, host) = match tool {
            "ping" => (Probe::Ping, target_text.value.clone()),
            "ssh" => (
                Probe::Ssh {
                    port: port.unwrap_or(Port::SSH),
                },
                target_text.value.clone(),
            ),
            "curl" => match units::parse_http_url(target_text) {
                Ok(url) => match Port::new(url.port) {
                    Some(port) => (
                        Probe::Curl {
                            port,
                            path: url.path,
                        },
                        url.host,
                    ),
                    None => return,
                },
                Err(e) => {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            target_text.span,
                            format!("`{}` is not a URL curl can probe here", target_text.value),
                        )
                        .label("bad URL")
                        .hint(e),
                    );
                    return;
                }
            },
            "tcp" | "udp" => {
                let Some(port) = port else {
                    self.push(
                        Diagnostic::error(
                            Code::MissingKey,
                            target_text.span,
                            format!("a {tool} probe needs `port:`"),
                        )
                        .label("to which port?")
                        .hint("add `port: NUMBER`"),
                    );
                    return;
                };
                let probe = if tool == "tcp" {
                    Probe::Tcp { port }
                } else {
                    Probe::Udp { port }
                };
                (probe, target_text.value.clone())
            }
            _ => unreachable!("tool names come from the list above"),
        };
        let target = self.resolve_target(&host, target_text);
        let outcome = match spec.outcome.value {
            OutcomeName::Reply => Outcome::Reply,
            OutcomeName::Refused => Outcome::Refused,
            OutcomeName::Timeout => Outcome::Timeout,
            OutcomeName::NoRoute => Outcome::NoRoute,
            OutcomeName::NetUnreachable => Outcome::NetUnreachable,
            OutcomeName::HostUnreachable => Outcome::HostUnreachable,
            OutcomeName::Filtered => Outcome::Filtered,
            OutcomeName::TtlExceeded => Outcome::TtlExceeded,
        };
        let ttl =
            spec.ttl
                .as_ref()
                .and_then(|t| match u8::try_from(t.value).ok().filter(|t| *t >= 1) {
                    Some(ttl) => Some(ttl),
                    None => {
                        self.push(
                            Diagnostic::error(
                                Code::BadValue,
                                t.span,
                                format!("TTL {} is out of range", t.value),
                            )
                            .label("must be from 1 to 255"),
                        );
                        None
                    }
                });
        let max_rtt = spec
            .max_rtt
            .as_ref()
            .and_then(|m| match units::parse_duration(m) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.bad_value(m, format!("`{}` is not a round-trip time", m.value), e);
                    None
                }
            });
        for (key, span) in [
            ("ttl", spec.ttl.as_ref().map(|t| t.span)),
            ("max_rtt", spec.max_rtt.as_ref().map(|m| m.span)),
        ] {
            if let Some(span) = span
                && outcome != Outcome::Reply
            {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        span,
                        format!("`{key}` only applies when the outcome is `reply`"),
                    )
                    .label("no reply to measure")
                    .hint(format!("remove `{key}`, or expect `outcome: reply`")),
                );
            }
        }
        if let (Some(from), Some(target)) = (from, target) {
            let origin = self.origin(spec.from.span);
            let is_curl = matches!(probe, Probe::Curl { .. });
            let mut http_status = None;
            if let Some(status) = &spec.status {
                match u16::try_from(status.value)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                {
                    Some(s) if is_curl && outcome == Outcome::Reply => http_status = Some(s),
                    Some(_) => self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            status.span,
                            "`status` only applies to a `curl` expecting `reply`",
                        )
                        .label("no HTTP answer to check")
                        .hint("remove `status`, or use it with `curl:` and `outcome: reply`"),
                    ),
                    None => self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            status.span,
                            format!("{} is not an HTTP status", status.value),
                        )
                        .label("must be from 100 to 599"),
                    ),
                }
            }
            let mut body = None;
            if let Some(text) = &spec.body {
                if is_curl && outcome == Outcome::Reply {
                    body = Some(text.value.clone());
                } else {
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            text.span,
                            "`body` only applies to a `curl` expecting `reply`",
                        )
                        .label("no HTTP answer to check")
                        .hint("remove `body`, or use it with `curl:` and `outcome: reply`"),
                    );
                }
            }
            self.net.expectations.push(Expectation {
                from,
                probe,
                target,
                outcome,
                ttl,
                max_rtt,
                http_status,
                body,
                origin,
            });
        }
    }

    fn unknown_node(&mut self, name: &Located<String>, role: &str) {
        let names: Vec<&str> = self.net.nodes.iter().map(|n| n.name.as_str()).collect();
        let hint = match closest(&name.value, names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("nodes in this file: {}", names.join(", ")),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                name.span,
                format!("{role} `{}` is not a node of this file", name.value),
            )
            .label("unknown node")
            .hint(hint),
        );
    }

    /// An address, a node name or a DNS name from the file.
    fn resolve_target(&mut self, host: &str, written: &Located<String>) -> Option<Target> {
        if let Some(addr) = self.net.resolve(host) {
            return Some(Target {
                written: host.to_owned(),
                addr,
            });
        }
        if self
            .net
            .node_by_name(host)
            .or_else(|| self.net.node_by_dns(host))
            .is_some()
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    written.span,
                    format!("`{host}` has no address to send to"),
                )
                .label("node without addresses")
                .hint("give one of its interfaces an address"),
            );
            return None;
        }
        let candidates: Vec<&str> = self
            .net
            .nodes
            .iter()
            .flat_map(|n| std::iter::once(n.name.as_str()).chain(n.dns.iter().map(String::as_str)))
            .collect();
        let hint = match closest(host, candidates.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "write an IPv4 address, a node name, or a DNS name given to a node with `dns:`"
                .into(),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                written.span,
                format!("`{host}` is not an address, a node or a DNS name of this file"),
            )
            .label("cannot resolve")
            .hint(hint),
        );
        None
    }
}

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
