//! The search for fixes: candidate changes drawn from the failure (a route, forwarding, a
//! listener, an accept rule, a masquerade, another way in through a port forward), each applied
//! to a copy of the network and kept when the probe then gets a reply; the file's own checks
//! judge what each fix keeps and breaks. Candidates are tried narrowest first (one source before
//! every source; the router that really holds the prefix before any router).

use std::net::Ipv4Addr;

use crate::explain::Fix;
use crate::model::{
    ChainName, FilterRule, L4, Listener, Match, Network, NodeId, Origin, Outcome, Port, Proto,
    Route, RouteKind, Service, States, Verdict,
};
use crate::sim::{DropReason, ProbeKind, ProbeRun, SimConfig, StepKind, Transport, run_probe};
use crate::topology::edit::{Edit, Op, Step};

#[derive(Debug, Clone)]
enum Change {
    /// A static route to `dst` (the default route when `dst` is 0.0.0.0/0).
    AddRoute {
        node: NodeId,
        dst: ipnet::Ipv4Net,
        via: Ipv4Addr,
        router: NodeId,
    },
    Forwarding {
        node: NodeId,
    },
    Listen {
        node: NodeId,
        proto: Proto,
        port: Port,
        service: Service,
    },
    /// An accept rule at the top of a filter chain: for the probe's protocol and port, or for
    /// established and related traffic when it was the answer that was dropped.
    Allow {
        node: NodeId,
        chain: ChainName,
        proto: L4,
        dport: Option<u16>,
        /// Only from this source (the packet's source where the filter saw it); `None`: from
        /// every source, which opens more than the probe needs.
        src: Option<ipnet::Ipv4Net>,
        answers: bool,
        platform: Option<crate::model::PlatformFix>,
    },
    /// A masquerade rule at the end of the node's `nat:` list for what `src` sends to `dst`
    /// out of `out`, so that answers come back through the node: the hairpin NAT a port
    /// forward to the same LAN needs, or the SNAT a private network needs to be answered.
    Masquerade {
        node: NodeId,
        out: crate::model::IfaceId,
        src: ipnet::Ipv4Net,
        dst: Option<Ipv4Addr>,
        /// Only this protocol and destination port (the probe's own flow): the narrow twin.
        flow: Option<(L4, Option<u16>)>,
        hairpin: bool,
    },
}

impl Change {
    fn apply(&self, net: &mut Network) -> bool {
        match self {
            Change::AddRoute { node, dst, via, .. } => {
                let Some(dev) = net.nodes[node.index()]
                    .routes
                    .routes()
                    .iter()
                    .find(|r| r.gateway.is_none() && r.dst.contains(via))
                    .map(|r| r.dev)
                else {
                    return false;
                };
                let route = Route {
                    dst: *dst,
                    gateway: Some(*via),
                    dev,
                    metric: 0,
                    kind: RouteKind::Static,
                    origin: Origin::default(),
                };
                net.nodes[node.index()].routes.insert(route).is_ok()
            }
            Change::Forwarding { node } => {
                net.nodes[node.index()].forwarding = true;
                true
            }
            Change::Listen {
                node,
                proto,
                port,
                service,
            } => {
                net.nodes[node.index()].listeners.push(Listener {
                    proto: *proto,
                    port: *port,
                    bind: None,
                    reply_from_route: false,
                    service: service.clone(),
                    origin: Origin::default(),
                });
                true
            }
            Change::Allow {
                node,
                chain,
                proto,
                dport,
                src,
                answers,
                platform,
            } => {
                let Some(nf) = net.nodes[node.index()].netfilter.as_mut() else {
                    return false;
                };
                let matches = if *answers {
                    Match {
                        states: States::ESTABLISHED.with(States::RELATED),
                        ..Match::default()
                    }
                } else {
                    Match {
                        proto: Some(*proto),
                        dport: dport.map(|d| (d, d)),
                        src: *src,
                        ..Match::default()
                    }
                };
                let rule = FilterRule {
                    matches,
                    target: Verdict::Accept.into(),
                    origin: Origin::default(),
                    comment: None,
                    platform_fix: None,
                };
                let chain = nf.chain_mut(*chain);
                // A platform's fix goes first (DOCKER-USER, which FORWARD jumps to first); the
                // file's own rule goes first among the file's rules, after what a daemon
                // inserted above them (docs/platform-semantics.md, "Docker", **Rules**).
                let at = if platform.is_some() {
                    0
                } else {
                    chain.own_start
                };
                chain.rules.insert(at, rule);
                true
            }
            Change::Masquerade {
                node,
                out,
                src,
                dst,
                flow,
                ..
            } => {
                let nf = net.nodes[node.index()]
                    .netfilter
                    .get_or_insert_with(Default::default);
                nf.nat.push(crate::model::NatRule {
                    hook: crate::model::NatHook::Postrouting,
                    matches: Match {
                        out_iface: Some(*out),
                        src: Some(*src),
                        dst: dst.map(ipnet::Ipv4Net::from),
                        proto: flow.map(|(p, _)| p),
                        dport: flow.and_then(|(_, d)| d).map(|d| (d, d)),
                        ..Match::default()
                    },
                    action: crate::model::NatAction::Masquerade(crate::model::NatFlags::default()),
                    origin: Origin::default(),
                    comment: None,
                });
                true
            }
        }
    }

    fn summary(&self, net: &Network) -> String {
        let name = |n: &NodeId| net.node(*n).name.clone();
        match self {
            Change::AddRoute {
                node,
                dst,
                via,
                router,
            } if dst.prefix_len() == 0 => {
                format!(
                    "give `{}` a default route via {via} (router `{}`)",
                    name(node),
                    name(router)
                )
            }
            Change::AddRoute {
                node,
                dst,
                via,
                router,
            } => {
                format!(
                    "give `{}` a route to {dst} via {via} (router `{}`)",
                    name(node),
                    name(router)
                )
            }
            Change::Forwarding { node } => {
                format!("turn forwarding on at `{}` so it routes", name(node))
            }
            Change::Listen {
                node, proto, port, ..
            } => {
                format!(
                    "run a service on {} port {port} of `{}`",
                    proto.as_str(),
                    name(node)
                )
            }
            Change::Allow {
                proto,
                dport,
                src,
                platform: Some(crate::model::PlatformFix::SecurityGroup { group }),
                ..
            } => {
                let what = dport.map_or_else(
                    || proto.name().to_owned(),
                    |p| format!("{} port {p}", proto.name()),
                );
                format!(
                    "add an ingress rule for {what} {} to security group `{group}`",
                    from_words(*src)
                )
            }
            Change::Allow {
                proto,
                dport,
                src,
                answers,
                platform: Some(crate::model::PlatformFix::DockerUser { host }),
                ..
            } => {
                let what = allowed_words(*proto, *dport, *src, *answers);
                format!(
                    "accept {what} first in DOCKER-USER, which FORWARD runs before Docker's rules on `{host}`"
                )
            }
            Change::Masquerade {
                node,
                out,
                src,
                dst,
                flow,
                hairpin,
            } => {
                let mut to = dst.map_or_else(String::new, |d| format!(" to {d}"));
                match flow {
                    Some((proto, Some(port))) => {
                        to.push_str(&format!(" {} port {port}", proto.name()))
                    }
                    Some((proto, None)) => to.push_str(&format!(" ({})", proto.name())),
                    None => {}
                }
                let why = if *hairpin {
                    "hairpin NAT: the server then answers through it, not past it"
                } else {
                    "the answers then come back to it"
                };
                format!(
                    "masquerade at `{}` what {} sends{to} out of {} ({why})",
                    name(node),
                    source_text(*src),
                    net.interface(*out).name
                )
            }
            Change::Allow {
                node,
                chain,
                proto,
                dport,
                src,
                answers,
                ..
            } => {
                let what = allowed_words(*proto, *dport, *src, *answers);
                format!(
                    "accept {what} first in the {} chain of `{}`",
                    chain.name(),
                    name(node)
                )
            }
        }
    }

    fn node(&self) -> NodeId {
        match self {
            Change::AddRoute { node, .. }
            | Change::Forwarding { node }
            | Change::Listen { node, .. }
            | Change::Allow { node, .. }
            | Change::Masquerade { node, .. } => *node,
        }
    }

    /// Rules that come as a narrow and a wide twin (an allow from one source or from all, a
    /// masquerade of the probe's flow or of everything): the node and chain they belong to.
    fn narrowing(&self) -> Option<(NodeId, Option<ChainName>)> {
        match self {
            Change::Allow { node, chain, .. } => Some((*node, Some(*chain))),
            Change::Masquerade { node, .. } => Some((*node, None)),
            _ => None,
        }
    }

    /// The wide twin: it opens more than the probe needs.
    fn is_wide(&self) -> bool {
        matches!(
            self,
            Change::Allow {
                src: None,
                answers: false,
                ..
            } | Change::Masquerade { flow: None, .. }
        )
    }

    /// The change as an edit of the topology file's text.
    fn edit(&self, net: &Network) -> Edit {
        let node = net.node(self.node()).name.as_str();
        match self {
            Change::AddRoute { dst, via, .. } => {
                let to = if dst.prefix_len() == 0 {
                    "default".to_owned()
                } else {
                    dst.to_string()
                };
                Edit::node(
                    node,
                    &["routes"],
                    Op::Append(format!("{{ to: {to}, via: {via} }}")),
                )
            }
            Change::Forwarding { .. } => Edit::node(node, &["forwarding"], Op::Set("true".into())),
            Change::Listen { .. } => Edit::node(node, &["listen"], Op::Append(self.item(net))),
            Change::Allow {
                proto,
                dport,
                src,
                platform: Some(crate::model::PlatformFix::SecurityGroup { group }),
                ..
            } => Edit {
                path: vec![
                    Step::Key("openstack".into()),
                    Step::Key("security_groups".into()),
                    Step::Named(group.clone()),
                    Step::Key("rules".into()),
                ],
                op: Op::Append(security_group_rule(*proto, *dport, *src)),
            },
            Change::Allow {
                platform: Some(crate::model::PlatformFix::DockerUser { host }),
                ..
            } => Edit {
                path: vec![
                    Step::Key("docker".into()),
                    Step::Key("engines".into()),
                    Step::Where {
                        key: "host".into(),
                        value: host.clone(),
                    },
                    Step::Key("docker_user".into()),
                ],
                op: Op::Prepend(self.item(net)),
            },
            Change::Allow { chain, .. } => Edit::node(
                node,
                &["firewall", chain.name(), "rules"],
                Op::Prepend(self.item(net)),
            ),
            Change::Masquerade { .. } => Edit::node(node, &["nat"], Op::Append(self.item(net))),
        }
    }

    /// The list item a `listen:`, `rules:` or `nat:` change adds, in flow style.
    fn item(&self, net: &Network) -> String {
        self.yaml(net)
            .lines()
            .last()
            .and_then(|l| l.trim().strip_prefix("- "))
            .unwrap_or_default()
            .to_owned()
    }

    fn yaml(&self, net: &Network) -> String {
        match self {
            Change::AddRoute { dst, via, .. } => {
                let to = if dst.prefix_len() == 0 {
                    "default".to_owned()
                } else {
                    dst.to_string()
                };
                format!("    routes:\n      - {{ to: {to}, via: {via} }}\n")
            }
            Change::Forwarding { .. } => "    forwarding: true\n".into(),
            Change::Listen {
                proto,
                port,
                service,
                ..
            } => {
                let what = match service {
                    Service::Ssh { banner } => format!(", ssh: \"{banner}\""),
                    Service::Http { .. } => ", http: { body: \"ok\" }".into(),
                    _ => String::new(),
                };
                let proto = if *proto == Proto::Udp {
                    ", proto: udp"
                } else {
                    ""
                };
                format!("    listen:\n      - {{ port: {port}{proto}{what} }}\n")
            }
            Change::Masquerade {
                src,
                dst,
                out,
                flow,
                ..
            } => {
                let dst = dst.map_or_else(String::new, |d| format!(", dst: {d}"));
                let flow = match flow {
                    Some((proto, Some(port))) => {
                        format!(", proto: {}, dport: {port}", proto.name())
                    }
                    Some((proto, None)) => format!(", proto: {}", proto.name()),
                    None => String::new(),
                };
                format!(
                    "    nat:\n      - {{ masquerade: true, src: {}{dst}{flow}, out: {} }}\n",
                    source_text(*src),
                    net.interface(*out).name
                )
            }
            Change::Allow {
                chain,
                proto,
                dport,
                src,
                answers,
                platform,
                ..
            } => {
                let src = src.map_or_else(String::new, |s| format!("src: {}, ", source_text(s)));
                let rule = match (answers, dport) {
                    (true, _) => "state: [established, related], action: accept".to_owned(),
                    (false, Some(port)) => {
                        format!(
                            "{src}proto: {}, dport: {port}, action: accept",
                            proto.name()
                        )
                    }
                    (false, None) => format!("{src}proto: {}, action: accept", proto.name()),
                };
                match platform {
                    Some(crate::model::PlatformFix::DockerUser { host }) => format!(
                        "docker:\n  engines:\n    - host: {host}\n      docker_user:   # first in the chain\n        - {{ {rule} }}\n"
                    ),
                    _ => format!(
                        "    firewall:\n      {}:\n        rules:   # first in the chain\n          - {{ {rule} }}\n",
                        chain.name()
                    ),
                }
            }
        }
    }
}

/// Candidate changes for the failure `run` shows. A node whose rules are iptables-save text
/// takes no `firewall:`/`nat:` change: the file would then say both, and not load
/// (docs/topology-format.md, "iptables rules").
fn candidates(net: &Network, run: &ProbeRun, wanted: Option<&Service>) -> Vec<Change> {
    let mut out = proposed(net, run, wanted);
    out.retain(|c| {
        !matches!(
            c,
            Change::Allow { platform: None, .. } | Change::Masquerade { .. }
        ) || net
            .node(c.node())
            .netfilter
            .as_deref()
            .is_none_or(|nf| !nf.from_text)
    });
    out
}

/// Every change that could end the failure `run` shows.
fn proposed(net: &Network, run: &ProbeRun, wanted: Option<&Service>) -> Vec<Change> {
    let mut out = Vec::new();
    if run.outcome == Outcome::Refused
        && let Some(step) = run.steps.iter().find(|s| s.kind == StepKind::Refused)
    {
        let (proto, port) = match run.kind {
            ProbeKind::Tcp { port, .. } => (Proto::Tcp, port),
            ProbeKind::Udp { port, .. } => (Proto::Udp, port),
            ProbeKind::Ping { .. } => return out,
        };
        let service = wanted.cloned().unwrap_or(Service::Plain);
        out.push(Change::Listen {
            node: step.node,
            proto,
            port,
            service,
        });
        return out;
    }
    let filtered = run.steps.iter().find_map(|s| match s.kind {
        StepKind::Filtered {
            chain,
            verdict,
            decider,
            ..
        } if verdict != Verdict::Accept => Some((s, chain, decider)),
        _ => None,
    });
    if let Some((step, chain, decider)) = filtered {
        // The raw table is not among the file's `firewall:` chains, and no platform's fix
        // reaches it (Docker 28's drops there come before DOCKER-USER): nothing to propose.
        if chain.is_raw() {
            return out;
        }
        let platform = match decider {
            crate::model::Decider::Rule(at) => net
                .node(step.node)
                .netfilter
                .as_ref()
                .and_then(|nf| nf.filter_rule(chain, at))
                .and_then(|r| r.platform_fix.clone()),
            crate::model::Decider::Policy => net
                .node(step.node)
                .netfilter
                .as_ref()
                .and_then(|nf| nf.chain(chain).policy_fix.clone()),
        };
        let answers = Some(step.packet.src) != run.src && step.packet.dst != run.dst;
        let (proto, dport) = match step.packet.transport {
            Transport::Tcp { dport, .. } => (L4::Tcp, Some(dport)),
            Transport::Udp { dport, .. } => (L4::Udp, Some(dport)),
            _ => (L4::Icmp, None),
        };
        // The narrowest rule first: only the source the filter saw. An answer (established,
        // related) is matched by its state, which is already as narrow as it gets.
        if !answers {
            out.push(Change::Allow {
                node: step.node,
                chain,
                proto,
                dport,
                src: Some(ipnet::Ipv4Net::from(step.packet.src)),
                answers,
                platform: platform.clone(),
            });
        }
        out.push(Change::Allow {
            node: step.node,
            chain,
            proto,
            dport,
            src: None,
            answers,
            platform,
        });
        return out;
    }
    let drop = run.steps.iter().find_map(|s| match s.kind {
        StepKind::Dropped { reason, .. } if !matches!(reason, DropReason::Lost { .. }) => {
            Some((s.node, reason, s.packet.dst))
        }
        _ => None,
    });
    let Some((node, reason, lost)) = drop else {
        out.extend(masquerades(net, run));
        return out;
    };
    match reason {
        DropReason::NoRouteAtSender | DropReason::NoRouteBack | DropReason::NoRoute => {
            // A router said "net unreachable": the sender may need another way there, through
            // another router on its own subnets (`route add -net … gw …` on the sender).
            if reason == DropReason::NoRoute
                && let Some(subnet) = subnet_of(net, lost)
            {
                for (via, router) in gateways(net, run.from, lost)
                    .into_iter()
                    .filter(|(_, r)| *r != node)
                {
                    out.push(Change::AddRoute {
                        node: run.from,
                        dst: subnet,
                        via,
                        router,
                    });
                }
            }
            for (via, router) in gateways(net, node, lost) {
                // The subnet of the address that could not be reached first (as `route add
                // -net` does), then a default route.
                if let Some(subnet) = subnet_of(net, lost) {
                    out.push(Change::AddRoute {
                        node,
                        dst: subnet,
                        via,
                        router,
                    });
                }
                out.push(Change::AddRoute {
                    node,
                    dst: ipnet::Ipv4Net::default(),
                    via,
                    router,
                });
            }
        }
        DropReason::ForwardingDisabled => out.push(Change::Forwarding { node }),
        _ => {}
    }
    out.extend(masquerades(net, run));
    out
}

/// NAT candidates from the request's path: a masquerade at a node that DNATed the request
/// (the hairpin NAT: the server then answers through that node, which translates the answer
/// back), and, where an answer to the client could not be routed, a masquerade at each
/// router the request crossed (nearest the server first), for the client's subnet.
fn masquerades(net: &Network, run: &ProbeRun) -> Vec<Change> {
    let Some(client) = run.src else {
        return Vec::new();
    };
    let client_net = subnet_of(net, client).unwrap_or_else(|| ipnet::Ipv4Net::from(client));
    let mut out = Vec::new();
    for (i, step) in run.steps.iter().enumerate() {
        let StepKind::Translated {
            hook: crate::model::NatHook::Prerouting,
            rule: Some(_),
            before,
        } = step.kind
        else {
            continue;
        };
        if before.src != client {
            continue;
        }
        let leaves = run.steps[i..].iter().find_map(|s| match s.kind {
            StepKind::Forwarded { out, .. }
                if s.node == step.node && s.packet.dst == step.packet.dst =>
            {
                Some(out)
            }
            _ => None,
        });
        if let Some(iface) = leaves {
            for flow in [Some(flow_of(&step.packet)), None] {
                out.push(Change::Masquerade {
                    node: step.node,
                    out: iface,
                    src: client_net,
                    dst: Some(step.packet.dst),
                    flow,
                    hairpin: true,
                });
            }
        }
    }
    let unanswerable = run.steps.iter().any(|s| {
        matches!(
            s.kind,
            StepKind::Dropped {
                reason: DropReason::NoRouteBack | DropReason::NoRoute,
                ..
            }
        ) && s.packet.dst == client
    });
    if unanswerable {
        for step in run.steps.iter().rev() {
            if let StepKind::Forwarded { out: iface, .. } = step.kind
                && step.packet.src == client
                && !out
                    .iter()
                    .any(|c| matches!(c, Change::Masquerade { node, .. } if *node == step.node))
            {
                for flow in [Some(flow_of(&step.packet)), None] {
                    out.push(Change::Masquerade {
                        node: step.node,
                        out: iface,
                        src: client_net,
                        dst: None,
                        flow,
                        hairpin: false,
                    });
                }
            }
        }
    }
    out
}

/// The subnet of the interface that owns `addr`, when some node has it.
fn subnet_of(net: &Network, addr: Ipv4Addr) -> Option<ipnet::Ipv4Net> {
    net.interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .find(|a| a.addr() == addr && a.prefix_len() < 32)
        .map(|a| a.trunc())
}

/// Addresses of routers (forwarding nodes) on `node`'s connected subnets, the ones that really
/// hold a way to `toward` first: a router with the prefix on one of its own interfaces, then one
/// with a specific route to it, then one with a default route, then the rest (a route via a
/// router that would only send the packet on, or back, fixes nothing in practice).
fn gateways(net: &Network, node: NodeId, toward: Ipv4Addr) -> Vec<(Ipv4Addr, NodeId)> {
    let mut out = Vec::new();
    for route in net
        .node(node)
        .routes
        .routes()
        .iter()
        .filter(|r| r.gateway.is_none())
    {
        let segment = net.interface(route.dev).segment;
        for &port in &net.segment(segment).interfaces {
            let iface = net.interface(port);
            if iface.node == node || !net.node(iface.node).forwarding {
                continue;
            }
            for addr in &iface.addresses {
                if route.dst.contains(&addr.addr()) && !out.iter().any(|(a, _)| *a == addr.addr()) {
                    out.push((addr.addr(), iface.node));
                }
            }
        }
    }
    // Stable: routers equally good keep the order of the sender's routes and segment ports.
    out.sort_by_key(|(_, router)| reach_rank(net, *router, toward));
    out
}

/// How directly `router` reaches `addr`: 0 on a connected subnet, 1 by a specific route, 2 by
/// a default route, 3 not at all.
fn reach_rank(net: &Network, router: NodeId, addr: Ipv4Addr) -> u8 {
    match net.node(router).routes.lookup(addr) {
        Some(r) if r.gateway.is_none() => 0,
        Some(r) if r.dst.prefix_len() > 0 => 1,
        Some(_) => 2,
        None => 3,
    }
}

/// `from 10.0.0.5` or `from every source`.
/// What an allow rule lets through, in words: "tcp port 22 from 10.0.0.5", or the answers.
fn allowed_words(
    proto: L4,
    dport: Option<u16>,
    src: Option<ipnet::Ipv4Net>,
    answers: bool,
) -> String {
    match (answers, dport) {
        (true, _) => "established and related traffic".to_owned(),
        (false, Some(port)) => format!("{} port {port} {}", proto.name(), from_words(src)),
        (false, None) => format!("{} {}", proto.name(), from_words(src)),
    }
}

fn from_words(src: Option<ipnet::Ipv4Net>) -> String {
    match src {
        Some(net) => format!("from {}", source_text(net)),
        None => "from every source".into(),
    }
}

/// A /32 as its address, anything else as a prefix.
fn source_text(net: ipnet::Ipv4Net) -> String {
    if net.prefix_len() == 32 {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// Up to `limit` fixes that make the probe get a reply, each of one or two changes, checked by
/// simulation: the probe gets a reply on the changed network, and the file's other expectations
/// and invariants are checked again. Fixes that keep every check that held come first, and
/// when there is one, fixes that break a check are left out; otherwise those are offered with
/// the checks they break, fewest first. An expectation that is this very probe is not a check
/// to keep: it is what is being fixed. `wanted` is the service a new listener should offer
/// (ssh for ssh, http for curl).
pub fn find_fixes(
    net: &Network,
    run: &ProbeRun,
    wanted: Option<&Service>,
    config: &SimConfig,
    limit: usize,
) -> Vec<Fix> {
    let quiet = SimConfig {
        record: true,
        ..config.clone()
    };
    let mut fixes = through_forwards(net, run, &quiet);
    fixes.truncate(limit);
    let mut base = net.clone();
    base.expectations.retain(|e| !is_this_probe(e, run));
    let mut guard = Guard::new(&base, &quiet);
    // A narrow rule that keeps every check makes its wider twin pointless.
    let mut allowed: Vec<(NodeId, Option<ChainName>)> = Vec::new();
    let mut verified: Vec<Fix> = Vec::new();
    let clean = |fixes: &[Fix]| fixes.iter().filter(|f| f.breaks.is_empty()).count();
    for first in candidates(&base, run, wanted) {
        if clean(&fixes) + clean(&verified) >= limit {
            break;
        }
        if first.is_wide() && first.narrowing().is_some_and(|k| allowed.contains(&k)) {
            continue;
        }
        let mut changed = base.clone();
        if !first.apply(&mut changed) {
            continue;
        }
        let again = run_probe(&changed, run.from, run.dst, &run.kind, &quiet);
        if again.outcome == Outcome::Reply {
            let (keeps, breaks) = guard.judge(&changed);
            if let (Some(key), true) = (first.narrowing(), breaks.is_empty()) {
                allowed.push(key);
            }
            verified.push(render(&base, &[first], keeps, breaks));
            continue;
        }
        // One more change on top, where the first one moved the failure elsewhere.
        for second in candidates(&changed, &again, wanted) {
            let mut both = changed.clone();
            if second.apply(&mut both)
                && run_probe(&both, run.from, run.dst, &run.kind, &quiet).outcome == Outcome::Reply
            {
                let (keeps, breaks) = guard.judge(&both);
                verified.push(render(&base, &[first.clone(), second], keeps, breaks));
                break;
            }
        }
    }
    // Stable: among equals, the order candidates were tried in (narrowest first).
    verified.sort_by_key(|f| f.breaks.len());
    if verified.first().is_some_and(|f| f.breaks.is_empty()) || clean(&fixes) > 0 {
        verified.retain(|f| f.breaks.is_empty());
    }
    fixes.extend(verified);
    fixes.truncate(limit);
    fixes
}

/// Whether the expectation `e` is the probe `run` itself (same sender, target and probe).
fn is_this_probe(e: &crate::model::Expectation, run: &ProbeRun) -> bool {
    let same_kind = match (crate::sim::ProbeKind::of(&e.probe, 1, None), &run.kind) {
        (ProbeKind::Ping { .. }, ProbeKind::Ping { .. }) => true,
        (ProbeKind::Tcp { port: a, .. }, ProbeKind::Tcp { port: b, .. })
        | (ProbeKind::Udp { port: a, .. }, ProbeKind::Udp { port: b, .. }) => a == *b,
        _ => false,
    };
    same_kind && e.from == run.from && e.target.addr == run.dst
}

/// The file's own checks, as a fix must leave them: what held before still holds.
struct Guard<'a> {
    net: &'a Network,
    config: &'a SimConfig,
    /// The checks as the file stands, computed when the first candidate needs them.
    before: Option<Vec<crate::invariants::Status>>,
}

impl<'a> Guard<'a> {
    fn new(net: &'a Network, config: &'a SimConfig) -> Self {
        Guard {
            net,
            config,
            before: None,
        }
    }

    /// How many checks that held still hold on `changed`, and the ones that break there.
    fn judge(&mut self, changed: &Network) -> (usize, Vec<String>) {
        use crate::invariants::{Judgement, broken, statuses};
        let (net, config) = (self.net, self.config);
        let before = self
            .before
            .get_or_insert_with(|| statuses(net, config, &[], Judgement::Exact));
        if before.is_empty() {
            return (0, Vec::new());
        }
        let after = statuses(changed, config, &[], Judgement::Exact);
        let breaks: Vec<String> = broken(before, &after)
            .iter()
            .map(|s| match &s.flow {
                Some(flow) => format!("{} ({}): now {flow}", s.label, s.origin),
                None => format!("{} ({})", s.label, s.origin),
            })
            .collect();
        let held = before.iter().filter(|s| s.holds).count();
        (held - breaks.len(), breaks)
    }
}

/// When the destination sits behind NAT, the way in is an address and port some DNAT rule
/// leads from: try every (node address, forwarded port) whose DNAT ends at the destination and
/// keep those with which the very same probe gets a reply.
fn through_forwards(net: &Network, run: &ProbeRun, config: &SimConfig) -> Vec<Fix> {
    let (ProbeKind::Tcp { port, timeout }
    | ProbeKind::Udp {
        port,
        wait: timeout,
        ..
    }) = run.kind
    else {
        return Vec::new();
    };
    if run.outcome == Outcome::Reply {
        return Vec::new();
    }
    let mut fixes = Vec::new();
    for node in &net.nodes {
        let Some(nf) = node.netfilter.as_deref() else {
            continue;
        };
        for rule in nf
            .nat
            .iter()
            .filter(|r| r.hook == crate::model::NatHook::Prerouting)
        {
            let crate::model::NatAction::Dnat(..) = rule.action else {
                continue;
            };
            let Some((public_port, _)) = rule.matches.dport else {
                continue;
            };
            let Some(public_port) = Port::new(public_port) else {
                continue;
            };
            let addresses: Vec<Ipv4Addr> = match rule.matches.dst {
                Some(dst) if dst.prefix_len() == 32 => vec![dst.addr()],
                _ => net
                    .interfaces_of(node)
                    .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
                    .collect(),
            };
            for addr in addresses {
                if fixes.len() >= 2 {
                    return fixes;
                }
                let kind = match run.kind {
                    ProbeKind::Udp { ttl, .. } => ProbeKind::Udp {
                        port: public_port,
                        wait: timeout,
                        ttl,
                    },
                    _ => ProbeKind::Tcp {
                        port: public_port,
                        timeout,
                    },
                };
                let again = run_probe(net, run.from, addr, &kind, config);
                let arrives = again.steps.iter().any(|s| {
                    matches!(s.kind, StepKind::Delivered { .. })
                        && s.packet.dst == run.dst
                        && matches!(s.packet.transport, Transport::Tcp { dport, .. } | Transport::Udp { dport, .. } if dport == port.get())
                });
                if again.outcome == Outcome::Reply && arrives {
                    let words = rule
                        .comment
                        .clone()
                        .unwrap_or_else(|| format!("a DNAT rule of `{}`", node.name));
                    fixes.push(Fix {
                        summary: vec![format!(
                            "connect to {addr}:{public_port} instead: {words} leads to {}:{port}",
                            run.dst
                        )],
                        yaml: String::new(),
                        edits: Vec::new(),
                        patch: None,
                        no_patch: None,
                        outcome: Outcome::Reply,
                        // Nothing in the file changes.
                        keeps: 0,
                        breaks: Vec::new(),
                    });
                }
            }
        }
    }
    fixes
}

fn render(net: &Network, changes: &[Change], keeps: usize, breaks: Vec<String>) -> Fix {
    let mut yaml = String::new();
    // One `- name:` entry per node, its changes together (two entries for one node would not
    // load: names are unique).
    let mut nodes: Vec<(NodeId, String)> = Vec::new();
    for change in changes {
        match change {
            Change::Allow {
                proto,
                dport,
                src,
                platform: Some(crate::model::PlatformFix::SecurityGroup { group }),
                ..
            } => {
                yaml.push_str(&format!(
                    "openstack:\n  security_groups:\n    - name: {group}\n      rules:\n        - {}\n",
                    security_group_rule(*proto, *dport, *src)
                ));
            }
            Change::Allow {
                platform: Some(crate::model::PlatformFix::DockerUser { .. }),
                ..
            } => yaml.push_str(&change.yaml(net)),
            _ => match nodes.iter_mut().find(|(n, _)| *n == change.node()) {
                Some((_, text)) => text.push_str(&change.yaml(net)),
                None => nodes.push((change.node(), change.yaml(net))),
            },
        }
    }
    if !nodes.is_empty() {
        yaml.push_str("nodes:\n");
        for (node, text) in nodes {
            yaml.push_str(&format!("  - name: {}\n", net.node(node).name));
            yaml.push_str(&text);
        }
    }
    Fix {
        summary: changes.iter().map(|c| c.summary(net)).collect(),
        yaml,
        edits: changes.iter().map(|c| c.edit(net)).collect(),
        patch: None,
        no_patch: None,
        outcome: Outcome::Reply,
        keeps,
        breaks,
    }
}

/// A packet's protocol and destination port, as a rule matches them.
fn flow_of(packet: &crate::sim::Ipv4Packet) -> (L4, Option<u16>) {
    match packet.transport {
        Transport::Tcp { dport, .. } => (L4::Tcp, Some(dport)),
        Transport::Udp { dport, .. } => (L4::Udp, Some(dport)),
        _ => (L4::Icmp, None),
    }
}

/// A security-group rule as the `openstack:` section writes it.
fn security_group_rule(proto: L4, dport: Option<u16>, src: Option<ipnet::Ipv4Net>) -> String {
    let ports = dport.map_or_else(String::new, |p| format!(", port_range: \"{p}\""));
    let remote = src.map_or_else(String::new, |s| format!(", remote_ip_prefix: \"{s}\""));
    format!(
        "{{ direction: ingress, protocol: {}{ports}{remote} }}",
        proto.name()
    )
}
