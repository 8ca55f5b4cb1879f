//! Finding the decisive step of a failed probe and saying it as a network engineer would.

use std::net::Ipv4Addr;

use super::Cause;
use crate::model::{Decider, Lookup, Network, Origin, Outcome, RejectWith, RouteType, Verdict};
use crate::sim::{DropReason, ProbeKind, ProbeRun, Step, StepKind};

/// Why a probe did not get the expected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// The decisive step, as data.
    pub cause: Cause,
    /// What happened, one sentence per line, in a network engineer's words.
    pub lines: Vec<String>,
    /// The element of the file the explanation is about.
    pub origin: Option<Origin>,
}

fn iface_name(net: &Network, iface: Option<crate::model::IfaceId>) -> String {
    iface.map_or_else(|| "loopback".to_owned(), |i| net.interface(i).name.clone())
}

fn subnets(net: &Network, node: crate::model::NodeId) -> String {
    let routes = net.node(node).routes.routes();
    if routes.is_empty() {
        return "its routing table is empty".into();
    }
    let list: Vec<String> = routes
        .iter()
        .map(|r| {
            format!(
                "{} ({})",
                if r.dst.prefix_len() == 0 {
                    "default".to_owned()
                } else {
                    r.dst.to_string()
                },
                net.interface(r.dev).name
            )
        })
        .collect();
    format!("its routes cover only {}", list.join(", "))
}

/// The explanation of `run`, or `None` when it got a reply.
pub fn why(net: &Network, run: &ProbeRun) -> Option<Why> {
    if run.outcome == Outcome::Reply {
        return None;
    }
    let mut why = decisive(net, run)?;
    // Aimed into a network that a platform keeps private (a VirtualBox NAT network, a tenant
    // network): say so first, in the platform's words.
    if let Some((segment, note)) = private_network_of(net, run) {
        why.lines.insert(
            0,
            format!("{} is on segment `{}`: {note}", run.dst, segment),
        );
    }
    Some(why)
}

/// The noted segment whose subnet holds the probe's destination, when the prober is not on it.
fn private_network_of<'n>(net: &'n Network, run: &ProbeRun) -> Option<(&'n str, &'n str)> {
    let prober_segments: Vec<_> = net
        .interfaces_of(net.node(run.from))
        .map(|i| i.segment)
        .collect();
    net.segments.iter().find_map(|s| {
        let note = s.note.as_deref()?;
        let holds = s.interfaces.iter().any(|&i| {
            net.interface(i)
                .addresses
                .iter()
                .any(|a| a.trunc().contains(&run.dst))
        });
        (holds && !prober_segments.contains(&s.id)).then_some((s.name.as_str(), note))
    })
}

/// The decisive step of a failed probe, explained: a firewall that said no before anything
/// else went wrong; a refused connection; an answer from an unexpected address; the first
/// drop; or, with no drop at all, why nothing came back.
fn decisive(net: &Network, run: &ProbeRun) -> Option<Why> {
    let real_drop = |s: &Step| matches!(s.kind, StepKind::Dropped { reason, .. } if !matches!(reason, DropReason::Lost { .. }));
    let filtered = run.steps.iter().position(
        |s| matches!(s.kind, StepKind::Filtered { verdict, .. } if verdict != Verdict::Accept),
    );
    let dropped = run.steps.iter().position(real_drop);
    if let Some(at) = filtered
        && dropped.is_none_or(|d| at < d)
    {
        return Some(filtered_why(net, &run.steps[at]));
    }
    let first_drop = run.steps.iter().find(|s| real_drop(s)).or_else(|| {
        run.steps
            .iter()
            .find(|s| matches!(s.kind, StepKind::Dropped { .. }))
    });
    if run.outcome == Outcome::Refused
        && let Some(step) = run.steps.iter().find(|s| s.kind == StepKind::Refused)
    {
        return Some(refused_why(net, step));
    }
    if first_drop.is_none()
        && run.stopped.is_none()
        && let Some(why) = answer_from_elsewhere(net, run)
    {
        return Some(why);
    }
    Some(match first_drop {
        Some(step) => dropped_why(net, run, step),
        None => silence_why(run),
    })
}

/// Nothing listens where the connection arrived (after any DNAT on the way).
fn refused_why(net: &Network, step: &Step) -> Why {
    let node = net.node(step.node);
    let (proto, port) = match step.packet.transport {
        crate::sim::Transport::Tcp { dport, .. } => ("tcp", dport),
        crate::sim::Transport::Udp { dport, .. } => ("udp", dport),
        _ => ("icmp", 0),
    };
    let listening: Vec<String> = node
        .listeners
        .iter()
        .map(|l| format!("{}/{}", l.proto.as_str(), l.port))
        .collect();
    let answer = if proto == "tcp" {
        "answered the SYN with RST"
    } else {
        "answered with ICMP port unreachable"
    };
    Why {
        cause: Cause::Refused {
            node: node.name.clone(),
            address: step.packet.dst,
            proto,
            port,
        },
        lines: vec![
            format!(
                "nothing listens on {proto} port {port} of node `{}` ({}), so its kernel {answer}",
                node.name, step.packet.dst
            ),
            if listening.is_empty() {
                format!("node `{}` has no `listen:` entries", node.name)
            } else {
                format!("node `{}` listens on {}", node.name, listening.join(", "))
            },
        ],
        origin: Some(node.origin.clone()),
    }
}

/// No node dropped anything, and no answer came: the run stopped early, or the silence is
/// the answer.
fn silence_why(run: &ProbeRun) -> Why {
    let cause = match run.stopped {
        Some(crate::sim::Stopped::Horizon) => Cause::Stopped { reason: "horizon" },
        Some(crate::sim::Stopped::EventBudget) => Cause::Stopped {
            reason: "event-budget",
        },
        None => Cause::NoAnswer {
            destination: run.dst,
        },
    };
    let line = match run.stopped {
        Some(crate::sim::Stopped::Horizon) => {
            "the simulation stopped early (simulated time reached its horizon) before an answer came".to_owned()
        }
        Some(crate::sim::Stopped::EventBudget) => {
            "the simulation stopped early (its event budget was spent: a forwarding loop or a broadcast storm?) before an answer came".to_owned()
        }
        None => format!("no answer came back from {}, and no node dropped the packets", run.dst),
    };
    Why {
        cause,
        lines: vec![line],
        origin: None,
    }
}

/// The first drop, in the words of its reason.
fn dropped_why(net: &Network, run: &ProbeRun, step: &Step) -> Why {
    let StepKind::Dropped { in_iface, reason } = step.kind else {
        unreachable!("called with a drop step")
    };
    let node = net.node(step.node);
    let cause = drop_cause(net, run, step, reason);
    let node_origin = Some(node.origin.clone());
    let dst = step.packet.dst;
    let what = step.packet.describe();
    let (lines, origin) = match reason {
        DropReason::NoRouteAtSender => (
            vec![
                format!("node `{}` has no route to {}: {}", node.name, run.dst, subnets(net, step.node)),
                "so the call fails at once with `connect: Network is unreachable` (ENETUNREACH)".into(),
            ],
            node_origin,
        ),
        DropReason::RejectRoute(kind) => return reject_route_why(net, run, step, in_iface, kind),
        DropReason::ForwardingDisabled => (
            vec![
                format!("{what} to {dst} reached node `{}` on {}, but `{}` is not a router (forwarding: false)", node.name, iface_name(net, in_iface), node.name),
                "a Linux host with net.ipv4.ip_forward=0 drops packets that are not for it, silently".into(),
            ],
            node_origin,
        ),
        DropReason::NoRoute if Some(dst) == run.src => {
            // The answer, on its way back to the prober, found no road.
            let answerer = net.node_by_address(step.packet.src).map_or_else(|| step.packet.src.to_string(), |n| format!("`{}`", n.name));
            (
                vec![
                    format!("the answer from {answerer} ({what}) reached router `{}`, which has no route back to {dst} ({})", node.name, subnets(net, step.node)),
                    format!("`{}` told {answerer} with ICMP Destination Net Unreachable; `{}` hears nothing", node.name, net.node(run.from).name),
                ],
                node_origin,
            )
        }
        DropReason::NoRoute => (
            vec![format!(
                "router `{}` has no route to {dst} ({}); it answered with ICMP Destination Net Unreachable",
                node.name,
                subnets(net, step.node)
            )],
            node_origin,
        ),
        DropReason::TtlExpired => return ttl_why(net, run, step),
        DropReason::ArpFailed { iface, nexthop } => {
            let segment = net.segment(net.interface(iface).segment);
            let origin = node.routes.lookup(dst).map(|r| r.origin.clone());
            (
                vec![
                    format!("node `{}` asked on segment `{}` (ARP, 3 times) who has {nexthop}, and nobody answered", node.name, segment.name),
                    arp_silence(net, segment, nexthop),
                ],
                origin.or(node_origin),
            )
        }
        DropReason::NoRouteBack => (
            vec![
                format!("node `{}` got the probe, but its answer ({what}) cannot go back: it has no route to {dst} ({})", node.name, subnets(net, step.node)),
                "the sender waits and times out".into(),
            ],
            node_origin,
        ),
        DropReason::LoopbackSource => (
            vec![
                format!("{what} from {} was translated on `{}` to {dst}, but kept its loopback source", step.packet.src, node.name),
                "Linux refuses to route a 127/8 source out of a real interface (route_localnet=0): the packet is dropped on the way out and the sender times out".into(),
            ],
            node_origin,
        ),
        DropReason::HairpinOff { port } => {
            let i = net.interface(port);
            (
                vec![
                    format!("{what} was translated on `{}` to {dst}, behind the same bridge it came from, and through the same port: `{}` of `{}`", node.name, i.name, net.node(i.node).name),
                    "a Linux bridge sends nothing back out of the port it came in through unless that port has hairpin mode (`hairpin: true`; Docker sets it without its userland proxy)".into(),
                ],
                Some(i.origin.clone()),
            )
        }
        DropReason::MartianSource => (
            vec![
                format!("{what} came back to node `{}` on {} with `{}`'s own address {} as its source", node.name, iface_name(net, in_iface), node.name, step.packet.src),
                "Linux drops such \"martian\" packets on arrival (accept_local=0): the route sends them back to their sender".into(),
            ],
            node_origin,
        ),
        DropReason::MartianDestination => (
            vec![
                format!("{what} arrived at node `{}` on {} addressed to the loopback address {dst}", node.name, iface_name(net, in_iface)),
                "Linux drops such \"martian\" packets on arrival unless the interface has route_localnet=1 (`route_localnet: true`)".into(),
            ],
            node_origin,
        ),
        DropReason::Lost { segment } => {
            let s = net.segment(segment);
            (
                vec![format!("{what} was lost on segment `{}` (loss {}%)", s.name, s.loss * 100.0)],
                Some(s.origin.clone()),
            )
        }
    };
    Why {
        cause,
        lines,
        origin,
    }
}

/// The drop of `step` for `reason`, as data.
fn drop_cause(net: &Network, run: &ProbeRun, step: &Step, reason: DropReason) -> Cause {
    let node = net.node(step.node).name.clone();
    let destination = step.packet.dst;
    match reason {
        DropReason::NoRouteAtSender => Cause::NoRouteAtSender {
            node,
            destination: run.dst,
        },
        // Worded by `reject_route_why`, which builds its own cause.
        DropReason::RejectRoute(kind) => Cause::RejectRoute {
            node,
            route: kind.word(),
            prefix: destination.to_string(),
        },
        DropReason::ForwardingDisabled => Cause::ForwardingDisabled { node },
        DropReason::NoRoute => Cause::NoRoute {
            node,
            destination,
            answer: Some(destination) == run.src,
        },
        DropReason::TtlExpired => ttl_cause(net, run, step),
        DropReason::ArpFailed { iface, nexthop } => Cause::ArpUnanswered {
            node,
            segment: net.segment(net.interface(iface).segment).name.clone(),
            next_hop: nexthop,
        },
        DropReason::NoRouteBack => Cause::NoRouteBack { node, destination },
        DropReason::LoopbackSource => Cause::LoopbackSource { node },
        DropReason::MartianSource => Cause::MartianSource { node },
        DropReason::MartianDestination => Cause::MartianDestination { node },
        DropReason::HairpinOff { port } => Cause::HairpinOff {
            node,
            port_node: net.node(net.interface(port).node).name.clone(),
            interface: net.interface(port).name.clone(),
        },
        DropReason::Lost { segment } => {
            let s = net.segment(segment);
            Cause::Lost {
                segment: s.name.clone(),
                loss: s.loss,
            }
        }
    }
}

/// A `blackhole`, `unreachable` or `prohibit` route took the packet: what the sender's call
/// returns, or what a router answers.
fn reject_route_why(
    net: &Network,
    run: &ProbeRun,
    step: &Step,
    in_iface: Option<crate::model::IfaceId>,
    kind: RouteType,
) -> Why {
    let node = net.node(step.node);
    let dst = step.packet.dst;
    let what = step.packet.describe();
    let route = match node.routes.resolve(dst) {
        Some(Lookup::Reject(r)) => Some(r),
        _ => None,
    };
    let prefix = route.map_or_else(|| dst.to_string(), |r| r.dst.to_string());
    let word = kind.word();
    let first = format!(
        "node `{}` has a `{word}` route to {prefix} (`ip route add {word} {prefix}`)",
        node.name
    );
    let second = match (in_iface, kind) {
        (None, _) if step.node != run.from => {
            format!("so its answer ({what}) to {dst} is never sent; the sender waits and times out")
        }
        (None, RouteType::Blackhole) => {
            "so the call fails at once with `Invalid argument` (EINVAL); nothing is sent".into()
        }
        (None, RouteType::Unreachable) => {
            "so the call fails at once with `No route to host` (EHOSTUNREACH); nothing is sent"
                .into()
        }
        (None, RouteType::Prohibit) => {
            "so the call fails at once with `Permission denied` (EACCES); nothing is sent".into()
        }
        (Some(_), RouteType::Blackhole) => {
            format!("{what} to {dst} is dropped there silently; the sender times out")
        }
        (Some(_), RouteType::Unreachable) => format!(
            "{what} to {dst} is dropped there and answered with ICMP Destination Host Unreachable"
        ),
        (Some(_), RouteType::Prohibit) => format!(
            "{what} to {dst} is dropped there and answered with ICMP Packet filtered (communication administratively prohibited)"
        ),
    };
    Why {
        cause: Cause::RejectRoute {
            node: node.name.clone(),
            route: word,
            prefix,
        },
        lines: vec![first, second],
        origin: route
            .map(|r| r.origin.clone())
            .or_else(|| Some(node.origin.clone())),
    }
}

/// "node `vm` dropped the TCP SYN …: the policy of its input chain (no rule accepts it)".
fn filtered_why(net: &Network, step: &Step) -> Why {
    let StepKind::Filtered {
        chain,
        decider,
        verdict,
        in_iface,
    } = step.kind
    else {
        unreachable!("called with a filter step")
    };
    let node = net.node(step.node);
    let words = node.filter_words(chain, decider);
    let rules = node.netfilter.as_ref().map(|nf| nf.chain(chain));
    let what = step.packet.describe();
    let came = in_iface.map_or_else(String::new, |i| format!(" on {}", net.interface(i).name));
    let done = match verdict {
        Verdict::Drop => "was dropped silently (the sender waits and times out) by".to_owned(),
        Verdict::Reject(with) => format!(
            "was rejected with {} by",
            match with {
                RejectWith::TcpReset => "a TCP reset (Connection refused)",
                RejectWith::PortUnreachable => "ICMP port unreachable (Connection refused)",
                RejectWith::HostUnreachable => "ICMP host unreachable (No route to host)",
                RejectWith::NetUnreachable => "ICMP net unreachable (Network is unreachable)",
                RejectWith::AdminProhibited => "ICMP administratively prohibited (Packet filtered)",
            }
        ),
        Verdict::Accept => "was accepted by".to_owned(),
    };
    let mut lines = vec![format!(
        "{what} {} → {} reached node `{}`{came} and {done}: {words}",
        step.packet.src, step.packet.dst, node.name
    )];
    // A rule without words of its own (read from rules text, or written by a platform's
    // daemon) is quoted as iptables prints it.
    if let Decider::Rule(at) = decider
        && let Some(nf) = node.netfilter.as_deref()
        && nf
            .filter_rule(chain, at)
            .is_some_and(|r| r.comment.is_none())
        && let Some(line) = crate::topology::iptables::filter_rule_line(net, nf, chain, at)
    {
        lines.push(format!("the rule: `{line}`"));
    }
    if decider == Decider::Policy
        && let Some(rules) = rules
    {
        lines.push(if rules.rules.is_empty() {
            format!(
                "the {} chain has no rules, and its policy is drop",
                chain.words()
            )
        } else {
            format!(
                "none of the {} rules of the {} chain accepts it",
                rules.rules.len(),
                chain.words()
            )
        });
    }
    let nf = node.netfilter.as_deref();
    let origin = rules.map(|c| match decider {
        Decider::Rule(at) => nf
            .and_then(|nf| nf.filter_rule(chain, at))
            .map_or_else(|| node.origin.clone(), |r| r.origin.clone()),
        Decider::Policy if c.policy_origin.file.is_empty() => node.origin.clone(),
        Decider::Policy => c.policy_origin.clone(),
    });
    let verdict = match verdict {
        Verdict::Drop => "drop",
        Verdict::Accept => "accept",
        Verdict::Reject(with) => match with {
            RejectWith::TcpReset => "reject-with-tcp-reset",
            RejectWith::PortUnreachable => "reject-with-icmp-port-unreachable",
            RejectWith::HostUnreachable => "reject-with-icmp-host-unreachable",
            RejectWith::NetUnreachable => "reject-with-icmp-net-unreachable",
            RejectWith::AdminProhibited => "reject-with-icmp-admin-prohibited",
        },
    };
    let cause = Cause::Filtered {
        node: node.name.clone(),
        chain: chain.name(),
        user_chain: match (decider, nf) {
            (Decider::Rule(at), Some(nf)) => at.chain.map(|c| nf.chain_label(c, false).to_owned()),
            _ => None,
        },
        rule: match decider {
            Decider::Rule(at) => Some(at.index + 1),
            Decider::Policy => None,
        },
        verdict,
    };
    Why {
        cause,
        lines,
        origin,
    }
}

/// An asymmetric path: the answer reached the client from another address than the one it
/// asked (a server behind a DNAT answering the client directly, past the node that translated
/// the request, so that nothing translates the answer back). To the client's TCP that answer
/// belongs to no connection, and its `connect()` keeps waiting.
fn answer_from_elsewhere(net: &Network, run: &ProbeRun) -> Option<Why> {
    let client = run.src?;
    let answer = run.steps.iter().find(|s| {
        s.node == run.from
            && s.packet.dst == client
            && s.packet.src != run.dst
            && matches!(s.kind, StepKind::Delivered { .. })
            && matches!(
                s.packet.transport,
                crate::sim::Transport::Tcp { .. } | crate::sim::Transport::Udp { .. }
            )
    })?;
    let from = answer.packet.src;
    let server = net
        .node_by_address(from)
        .map(|n| n.name.as_str())
        .unwrap_or("?");
    let client_name = &net.node(run.from).name;
    let mut lines = vec![format!(
        "the answer reached `{client_name}` from {from} (`{server}`), not from {}: to `{client_name}` it belongs to no connection (Linux answers such a packet with a reset), so connect() keeps waiting",
        run.dst
    )];
    let dnat = run.steps.iter().find_map(|s| match s.kind {
        StepKind::Translated {
            hook: crate::model::NatHook::Prerouting,
            before,
            ..
        } if before.dst == run.dst && s.packet.dst == from => Some(s.node),
        _ => None,
    });
    let origin = match dnat {
        Some(node) => {
            let gw = &net.node(node).name;
            lines.push(format!(
                "`{gw}` translated the request to {from} (DNAT), but `{server}` answered `{client_name}` directly, past `{gw}`, so nothing translated the answer back: an asymmetric path"
            ));
            lines.push(format!(
                "hairpin NAT: a masquerade at `{gw}` for what `{client_name}`'s network sends to {from} makes `{server}` answer through `{gw}`"
            ));
            Some(net.node(node).origin.clone())
        }
        None => {
            lines.push(format!(
                "the request went one way and the answer another (an asymmetric path): the address {} that was asked never answered",
                run.dst
            ));
            None
        }
    };
    let cause = Cause::AsymmetricAnswer {
        client: client_name.clone(),
        answered_from: from,
        translated_by: dnat.map(|n| net.node(n).name.clone()),
    };
    Some(Why {
        cause,
        lines,
        origin,
    })
}

/// Why nobody answered ARP for `addr` on `segment`, from where its owner's interface is.
fn arp_silence(net: &Network, segment: &crate::model::Segment, addr: Ipv4Addr) -> String {
    let owner = net
        .interfaces
        .iter()
        .find(|i| i.addresses.iter().any(|a| a.addr() == addr));
    let Some(owner) = owner else {
        let none = format!(
            "no interface on segment `{}` has the address {addr}",
            segment.name
        );
        return match proxy_silence(net, segment, addr) {
            Some(proxy) => format!("{none}, and {proxy}"),
            None => none,
        };
    };
    let node = &net.node(owner.node).name;
    let theirs = net.segment(owner.segment);
    if theirs.id == segment.id {
        if segment.loss > 0.0 {
            format!(
                "`{node}` has {addr} on segment `{}`, but the requests or the answers were lost \
                 there (it loses {}% of frames)",
                segment.name,
                segment.loss * 100.0
            )
        } else {
            format!(
                "`{node}` has {addr} on segment `{}`, yet did not answer",
                segment.name
            )
        }
    } else if theirs.name == segment.name {
        // Segment names are unique in a file: a second segment of the same name is a piece that
        // failures unplugged an interface onto. The asker alone on its piece: the segment is
        // down; the asker still with others: the owner's node was taken off it.
        if segment.interfaces.len() <= 1 {
            format!(
                "`{node}` has {addr} on segment `{}`, but `{}` is down",
                segment.name, segment.name
            )
        } else {
            format!(
                "`{node}` has {addr} on segment `{}`, but `{node}` is down",
                segment.name
            )
        }
    } else {
        format!(
            "{addr} belongs to `{node}` on segment `{}`, not on segment `{}`",
            theirs.name, segment.name
        )
    }
}

/// Why an interface with proxy ARP on `segment` did not answer for `addr`, when one is there
/// (arp_fwd_proxy: only a forwarding node answers, and only for an address it routes out of
/// another interface; docs/linux-semantics.md, "Proxy ARP").
fn proxy_silence(net: &Network, segment: &crate::model::Segment, addr: Ipv4Addr) -> Option<String> {
    let iface = segment
        .interfaces
        .iter()
        .map(|&i| net.interface(i))
        .find(|i| i.proxy_arp)?;
    let node = net.node(iface.node);
    let has = format!("`{}`'s `{}` has proxy_arp", node.name, iface.name);
    if !node.forwarding {
        return Some(format!(
            "{has}, but `{}` does not forward (proxy ARP answers only on a router)",
            node.name
        ));
    }
    match node.routes.lookup(addr) {
        None => Some(format!(
            "{has}, but `{}` has no route to {addr} (proxy ARP answers only for an address routed out of another interface)",
            node.name
        )),
        Some(r) if r.dev == iface.id => Some(format!(
            "{has}, but `{}` routes {addr} back out of `{}` (proxy ARP answers only for an address routed out of another interface)",
            node.name, iface.name
        )),
        Some(_) => None,
    }
}

/// The routers that forwarded the packet `step` dropped, in order, before it was dropped
/// (the same source and destination: the packet itself, not the others of the run).
fn forwarders(net: &Network, run: &ProbeRun, step: &Step) -> Vec<String> {
    let at = run
        .steps
        .iter()
        .position(|s| std::ptr::eq(s, step))
        .unwrap_or(run.steps.len());
    run.steps[..at]
        .iter()
        .filter(|s| {
            matches!(s.kind, StepKind::Forwarded { .. })
                && s.packet.src == step.packet.src
                && s.packet.dst == step.packet.dst
        })
        .map(|s| net.node(s.node).name.clone())
        .collect()
}

/// Whether a router forwarded the packet twice: it went round in a loop.
fn went_round(path: &[String]) -> bool {
    path.iter()
        .enumerate()
        .any(|(i, name)| path[..i].contains(name))
}

/// The TTL the dropped packet left with, and whether the prober chose it: the probe's
/// (`ping -t`, or its sender's default) for what the prober sent, the answering node's
/// default for an answer.
fn sent_ttl(net: &Network, run: &ProbeRun, step: &Step) -> (u8, bool) {
    if Some(step.packet.src) == run.src {
        let chosen = matches!(run.kind, ProbeKind::Ping { ttl: Some(_), .. });
        (
            run.kind.initial_ttl(net.node(run.from).os.initial_ttl()),
            chosen,
        )
    } else {
        let default = net
            .node_by_address(step.packet.src)
            .map_or(64, |n| n.os.initial_ttl());
        (default, false)
    }
}

/// The TTL ran out: in a routing loop (a router saw the packet twice), or on a path longer
/// than the TTL it was sent with (`ping -t`, or a very long path).
fn ttl_cause(net: &Network, run: &ProbeRun, step: &Step) -> Cause {
    let node = net.node(step.node).name.clone();
    let path = forwarders(net, run, step);
    if went_round(&path) {
        Cause::RoutingLoop {
            node,
            path: path.into_iter().take(6).collect(),
        }
    } else {
        let (sent, chosen) = sent_ttl(net, run, step);
        Cause::TtlExhausted {
            node,
            sent,
            chosen,
            path,
        }
    }
}

/// [`ttl_cause`] in words.
fn ttl_why(net: &Network, run: &ProbeRun, step: &Step) -> Why {
    let node = net.node(step.node);
    let cause = ttl_cause(net, run, step);
    let first = format!(
        "the TTL ran out at node `{}`: it answered with ICMP Time to live exceeded",
        node.name
    );
    let second = match &cause {
        Cause::RoutingLoop { path, .. } => {
            format!(
                "the packet went round {} → …: a routing loop",
                path.join(" → ")
            )
        }
        Cause::TtlExhausted {
            sent, chosen, path, ..
        } => {
            let sender = net.node_by_address(step.packet.src);
            let how = if *chosen {
                format!(" (`ping -t {sent}`)")
            } else {
                String::new()
            };
            let hops: Vec<String> = sender
                .map(|n| n.name.as_str())
                .into_iter()
                .chain(path.iter().map(String::as_str))
                .chain([node.name.as_str()])
                .map(|n| format!("`{n}`"))
                .collect();
            format!(
                "{} left with TTL {sent}{how}, one less at each router: `{}` is router {} on the way ({}) and has none left to forward it",
                step.packet.describe(),
                node.name,
                path.len() + 1,
                hops.join(" → ")
            )
        }
        _ => String::new(),
    };
    Why {
        cause,
        lines: vec![first, second],
        origin: Some(node.origin.clone()),
    }
}
