//! `reachlab show`: nodes, interfaces, listeners and each node's routing table printed the way
//! `ip route` prints it.

use std::fmt::Write as _;

use std::net::Ipv4Addr;

use serde::Serialize;

use super::Palette;
use crate::model::{Network, Node, Origin, RejectRoute, Route, RouteKind, Service, TableEntry};

/// One route as `ip route` (iproute2) prints it, without its trailing space.
pub fn ip_route_line(net: &Network, route: &Route) -> String {
    let mut line = if route.dst.prefix_len() == 0 {
        "default".to_owned()
    } else if route.dst.prefix_len() == 32 {
        route.dst.addr().to_string()
    } else {
        route.dst.to_string()
    };
    if let Some(gateway) = route.gateway {
        let _ = write!(line, " via {gateway}");
    }
    let _ = write!(line, " dev {}", net.interface(route.dev).name);
    match route.kind {
        RouteKind::Connected { src } => {
            let _ = write!(line, " proto kernel scope link src {src}");
        }
        RouteKind::Static if route.gateway.is_none() => line.push_str(" scope link"),
        RouteKind::Static => {}
    }
    if route.metric != 0 {
        let _ = write!(line, " metric {}", route.metric);
    }
    line
}

/// A `blackhole`, `unreachable` or `prohibit` route as `ip route` prints it, without its
/// trailing space (`blackhole 198.51.100.0/26 metric 5`; iproute2 6.1).
pub fn ip_route_reject_line(route: &RejectRoute) -> String {
    let mut line = format!("{} ", route.kind.word());
    if route.dst.prefix_len() == 0 {
        line.push_str("default");
    } else if route.dst.prefix_len() == 32 {
        line.push_str(&route.dst.addr().to_string());
    } else {
        line.push_str(&route.dst.to_string());
    }
    if route.metric != 0 {
        let _ = write!(line, " metric {}", route.metric);
    }
    line
}

/// A node's main table, line by line, as `ip route` shows it.
pub fn ip_route(net: &Network, node: &Node) -> Vec<String> {
    node.routes
        .entries()
        .into_iter()
        .map(|e| match e {
            TableEntry::Route(r) => ip_route_line(net, r),
            TableEntry::Reject(r) => ip_route_reject_line(r),
        })
        .collect()
}

/// The human-readable `show` output.
pub fn show_text(net: &Network, only: Option<crate::model::NodeId>, p: Palette) -> String {
    let (bold, dim, accent) = (p.bold(), p.dim(), p.accent());
    let mut out = String::new();
    let _ = writeln!(out, "{bold}topology {}{bold:#}", net.name);
    if let Some(description) = &net.description {
        for line in description.trim().lines() {
            let _ = writeln!(out, "  {dim}{line}{dim:#}");
        }
    }
    let _ = writeln!(out, "\n{bold}segments{bold:#}");
    let width = net.segments.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for segment in &net.segments {
        let members: Vec<String> = segment
            .interfaces
            .iter()
            .map(|&i| {
                let iface = net.interface(i);
                format!("{}:{}", net.node(iface.node).name, iface.name)
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<width$}  latency {:?}  loss {}%  mtu {}  {dim}[{}]{dim:#}",
            segment.name,
            segment.latency,
            segment.loss * 100.0,
            segment.mtu,
            members.join(" ")
        );
    }
    for node in net
        .nodes
        .iter()
        .filter(|n| only.is_none_or(|id| n.id == id))
    {
        let _ = writeln!(
            out,
            "\n{bold}node {}{bold:#} {dim}({}, initial TTL {}, forwarding {}){dim:#}",
            node.name,
            format!("{:?}", node.os).to_lowercase(),
            node.os.initial_ttl(),
            if node.forwarding { "on" } else { "off" }
        );
        for iface in net.interfaces_of(node) {
            let addrs: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "  {:<6} {}  {:<18} on {}",
                iface.name,
                iface.mac,
                if addrs.is_empty() {
                    "(no address)".to_owned()
                } else {
                    addrs.join(", ")
                },
                net.segment(iface.segment).name
            );
        }
        if !node.dns.is_empty() {
            let _ = writeln!(out, "  dns    {}", node.dns.join(", "));
        }
        for l in &node.listeners {
            let bind = l.bind.map_or("*".to_owned(), |b| b.to_string());
            let what = match &l.service {
                Service::Ssh { banner } => format!("ssh {banner:?}"),
                Service::Http {
                    status,
                    body,
                    routes,
                    ..
                } if !routes.is_empty() => {
                    let mut text = format!("http proxy, else {status}");
                    for r in routes {
                        let upstreams: Vec<String> = r
                            .upstreams
                            .iter()
                            .map(|(a, p)| format!("{a}:{p}"))
                            .collect();
                        let path = match &r.path {
                            crate::model::PathMatch::Exact(p) => format!("= {p}"),
                            crate::model::PathMatch::Prefix(p) => p.clone(),
                        };
                        let _ = write!(
                            text,
                            "\n         {} {path} → {}",
                            r.host.as_deref().unwrap_or("_"),
                            if upstreams.is_empty() {
                                "none (503)".to_owned()
                            } else {
                                upstreams.join(", ")
                            }
                        );
                    }
                    text
                }
                Service::Http { status, body, .. } => format!("http {status} {body:?}"),
                Service::Banner(b) => format!("banner {b:?}"),
                Service::Plain => if l.proto == crate::model::Proto::Udp {
                    "echo"
                } else {
                    "accept"
                }
                .to_owned(),
            };
            let _ = writeln!(
                out,
                "  listen {}/{} on {bind}: {what}",
                l.proto.as_str(),
                l.port
            );
        }
        let _ = writeln!(out, "  {accent}$ ip route{accent:#}");
        for line in ip_route(net, node) {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(nf) = &node.netfilter {
            let _ = writeln!(
                out,
                "  {accent}netfilter{accent:#} {dim}(iptables -S notation, as reachlab lowered it){dim:#}"
            );
            for line in iptables_lines(net, nf) {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    if only.is_none() && !net.expectations.is_empty() {
        let _ = writeln!(out, "\n{bold}expect{bold:#}");
        for e in &net.expectations {
            let _ = writeln!(
                out,
                "  {} {} {} ({}) → {:?}",
                net.node(e.from).name,
                e.probe.tool(),
                e.target.written,
                e.target.addr,
                e.outcome
            );
        }
    }
    out
}

/// The `show --format json` document. Fields of each record in alphabetical order: the
/// order of this output since its first version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShowRecord<'n> {
    pub description: Option<&'n str>,
    /// `expect:` entries.
    pub expect: usize,
    pub name: &'n str,
    pub nodes: Vec<NodeRecord<'n>>,
    pub segments: Vec<SegmentRecord<'n>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRecord<'n> {
    pub latency_ns: u64,
    pub loss: f64,
    pub mtu: u16,
    pub name: &'n str,
    pub origin: &'n Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord<'n> {
    pub dns: &'n [String],
    pub forwarding: bool,
    pub initial_ttl: u8,
    pub interfaces: Vec<InterfaceRecord<'n>>,
    pub listen: Vec<ListenRecord<'n>>,
    pub name: &'n str,
    pub origin: &'n Origin,
    /// `linux`, `windows`, ...
    pub os: String,
    pub routes: Vec<RouteRecord<'n>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceRecord<'n> {
    pub addresses: Vec<String>,
    pub mac: String,
    pub name: &'n str,
    pub origin: &'n Origin,
    pub segment: &'n str,
}

/// A route as `ip route` shows it; `type` only for the route types that send nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteRecord<'n> {
    pub dev: Option<&'n str>,
    /// `default` or the prefix.
    pub dst: String,
    pub gateway: Option<Ipv4Addr>,
    /// The line `ip route` prints.
    pub ip_route: String,
    pub metric: u32,
    pub origin: &'n Origin,
    pub prefsrc: Option<Ipv4Addr>,
    /// `kernel` (connected) or `static`.
    pub protocol: &'static str,
    /// `blackhole`, `unreachable` or `prohibit`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenRecord<'n> {
    /// The bound address (`null`: every address).
    pub address: Option<Ipv4Addr>,
    pub origin: &'n Origin,
    pub port: u16,
    pub proto: &'static str,
}

fn destination(dst: &ipnet::Ipv4Net) -> String {
    if dst.prefix_len() == 0 {
        "default".to_owned()
    } else {
        dst.to_string()
    }
}

/// The `show --format json` document of `net` (of one node when `only` says so).
pub fn show_json(net: &Network, only: Option<crate::model::NodeId>) -> ShowRecord<'_> {
    let segments = net
        .segments
        .iter()
        .map(|s| SegmentRecord {
            latency_ns: s.latency.as_nanos() as u64,
            loss: s.loss,
            mtu: s.mtu,
            name: &s.name,
            origin: &s.origin,
        })
        .collect();
    ShowRecord {
        description: net.description.as_deref(),
        expect: net.expectations.len(),
        name: &net.name,
        nodes: net
            .nodes
            .iter()
            .filter(|n| only.is_none_or(|id| n.id == id))
            .map(|n| node_record(net, n))
            .collect(),
        segments,
    }
}

fn node_record<'n>(net: &'n Network, n: &'n Node) -> NodeRecord<'n> {
    let interfaces = net
        .interfaces_of(n)
        .map(|i| InterfaceRecord {
            addresses: i.addresses.iter().map(ToString::to_string).collect(),
            mac: i.mac.to_string(),
            name: &i.name,
            origin: &i.origin,
            segment: &net.segment(i.segment).name,
        })
        .collect();
    let routes = n
        .routes
        .entries()
        .into_iter()
        .map(|e| match e {
            TableEntry::Reject(r) => RouteRecord {
                dev: None,
                dst: destination(&r.dst),
                gateway: None,
                ip_route: ip_route_reject_line(r),
                metric: r.metric,
                origin: &r.origin,
                prefsrc: None,
                protocol: "static",
                kind: Some(r.kind.word()),
            },
            TableEntry::Route(r) => RouteRecord {
                dev: Some(&net.interface(r.dev).name),
                dst: destination(&r.dst),
                gateway: r.gateway,
                ip_route: ip_route_line(net, r),
                metric: r.metric,
                origin: &r.origin,
                prefsrc: match r.kind {
                    RouteKind::Connected { src } => Some(src),
                    RouteKind::Static => None,
                },
                protocol: match r.kind {
                    RouteKind::Connected { .. } => "kernel",
                    RouteKind::Static => "static",
                },
                kind: None,
            },
        })
        .collect();
    NodeRecord {
        dns: &n.dns,
        forwarding: n.forwarding,
        initial_ttl: n.os.initial_ttl(),
        interfaces,
        listen: n
            .listeners
            .iter()
            .map(|l| ListenRecord {
                address: l.bind,
                origin: &l.origin,
                port: l.port.get(),
                proto: l.proto.as_str(),
            })
            .collect(),
        name: &n.name,
        origin: &n.origin,
        os: format!("{:?}", n.os).to_lowercase(),
        routes,
    }
}

/// A node's netfilter in `iptables -S` notation: the lines `iptables -S` prints once the rules
/// are loaded, table by table (mangle, raw, filter, nat; the lines of the mangle, raw and nat
/// tables led by `-t mangle ` / `-t raw ` / `-t nat `), a rule's comment as `-m comment --comment "…"` where iptables
/// keeps it. Written by [`crate::topology::iptables::rule_lines`] and compared with the kernel's
/// iptables in namespaces by `tests/kernel_iptables.rs` (docs/netfilter.md, "Writing
/// iptables-save text").
pub fn iptables_lines(net: &Network, nf: &crate::model::Netfilter) -> Vec<String> {
    crate::topology::iptables::rule_lines(net, nf)
}
