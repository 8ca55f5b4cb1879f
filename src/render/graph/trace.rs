//! What a traced probe adds to a picture: its hops, numbered in the order packets took them
//! (requests and answers apart), and notes at nodes: NAT rewrites with the addresses and ports
//! before and after, the point where a packet died and why, a refusal, the arrival.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::model::{IfaceId, NatAction, NatHook, Network, Node, NodeId, Outcome, Probe, Verdict};
use crate::render::pcap::hops;
use crate::run::ProbeResult;
use crate::sim::{DropReason, Ipv4Packet, ProbeRun, SimConfig, Step, StepKind, Transport};

/// What a note says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoteKind {
    Nat,
    Drop,
    Refused,
    Delivered,
}

/// A note beside a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub node: NodeId,
    pub kind: NoteKind,
    pub text: String,
    /// For a drop: the interface the packet came in on.
    pub in_iface: Option<IfaceId>,
}

/// A numbered hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DrawnHop {
    pub number: usize,
    pub from: IfaceId,
    pub to: Option<IfaceId>,
    /// Going back towards the client (a reply, an ICMP error, a RST).
    pub answer: bool,
    /// The packet as it crossed this link (the first time).
    pub packet: Ipv4Packet,
}

/// One traced probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlay {
    pub title: String,
    pub outcome: Outcome,
    pub hops: Vec<DrawnHop>,
    pub notes: Vec<Note>,
    /// The first lines of the explanation, when the probe failed.
    pub why: Vec<String>,
}

/// `10.1.5.87:1234` or `10.1.5.87`.
fn endpoint(addr: Ipv4Addr, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{addr}:{p}"),
        None => addr.to_string(),
    }
}

fn ports(p: &Ipv4Packet) -> (Option<u16>, Option<u16>) {
    match p.transport {
        Transport::Tcp { sport, dport, .. } | Transport::Udp { sport, dport } => {
            (Some(sport), Some(dport))
        }
        _ => (None, None),
    }
}

/// `TCP SYN 10.1.5.39:32768 → 10.1.5.87:1234`, for the hop list.
pub(crate) fn packet_words(p: &Ipv4Packet) -> String {
    let (sport, dport) = ports(p);
    let what = match p.transport {
        Transport::Tcp { flags, .. } => match flags {
            crate::sim::TcpFlags::Syn => "TCP SYN".to_owned(),
            crate::sim::TcpFlags::SynAck => "TCP SYN/ACK".to_owned(),
            crate::sim::TcpFlags::Rst => "TCP RST/ACK".to_owned(),
        },
        Transport::Udp { .. } => "UDP".to_owned(),
        Transport::EchoRequest { seq, .. } => format!("ICMP echo request seq={seq}"),
        Transport::EchoReply { seq, .. } => format!("ICMP echo reply seq={seq}"),
        Transport::IcmpError { error, .. } => format!("ICMP {}", error.name()),
        Transport::Redirect { gateway, .. } => format!("ICMP redirect to {gateway}"),
    };
    format!(
        "{what} {} → {} ttl={}",
        endpoint(p.src, sport),
        endpoint(p.dst, dport),
        p.ttl
    )
}

/// `ssh -p 1234`, `curl http://web/`, `ping`.
pub(crate) fn probe_words(probe: &Probe, target: &str) -> String {
    match probe {
        Probe::Ping => "ping".to_owned(),
        Probe::Ssh { port } if port.get() == 22 => "ssh".to_owned(),
        Probe::Ssh { port } => format!("ssh -p {port}"),
        Probe::Curl { port, path } if port.get() == 80 => format!("curl http://{target}{path}"),
        Probe::Curl { port, path } => format!("curl http://{target}:{port}{path}"),
        Probe::Tcp { port } => format!("tcp {port}"),
        Probe::Udp { port } => format!("udp {port}"),
    }
}

fn drop_words(net: &Network, reason: DropReason) -> String {
    match reason {
        DropReason::NoRouteAtSender => "no route: the call fails at once".into(),
        DropReason::NoRoute => "no route to the destination".into(),
        DropReason::ForwardingDisabled => "not a router (forwarding off): dropped".into(),
        DropReason::TtlExpired => "TTL expired".into(),
        DropReason::ArpFailed { nexthop, .. } => format!("nobody answers ARP for {nexthop}"),
        DropReason::NoRouteBack => "no route back to the sender".into(),
        DropReason::Lost { segment } => format!("lost on {}", net.segment(segment).name),
        DropReason::MartianSource => "martian source (one of its own addresses)".into(),
        DropReason::LoopbackSource => "loopback source may not leave".into(),
        DropReason::MartianDestination => "martian destination (127/8 from the wire)".into(),
        DropReason::RejectRoute(kind) => format!("{} route", kind.word()),
        DropReason::HairpinOff { .. } => "back out of its port: no hairpin mode".into(),
    }
}

/// The overlay of one probe.
pub(crate) fn overlay(net: &Network, result: &ProbeResult, config: &SimConfig) -> Overlay {
    let run = &result.run;
    Overlay {
        title: title(net, result),
        outcome: run.outcome,
        hops: drawn_hops(net, run, config),
        notes: notes(net, run),
        why: result
            .why
            .as_ref()
            .map(|w| w.lines.iter().take(2).cloned().collect())
            .unwrap_or_default(),
    }
}

/// `pc → web: curl http://web/ (reply)`.
fn title(net: &Network, result: &ProbeResult) -> String {
    let from_name = &net.node(result.run.from).name;
    format!(
        "{from_name} → {}: {} ({})",
        result.request.written,
        probe_words(&result.request.probe, &result.request.written),
        result.run.outcome
    )
}

/// The links the probe's packets crossed, each numbered at its first crossing (a link crossed
/// by a request and by an answer is two hops); a chain of hops is an answer unless the client
/// sent it.
fn drawn_hops(net: &Network, run: &ProbeRun, config: &SimConfig) -> Vec<DrawnHop> {
    let all = hops(net, run, config);
    let mut chain_answer: BTreeMap<usize, bool> = BTreeMap::new();
    for h in &all {
        chain_answer
            .entry(h.chain)
            .or_insert_with(|| net.interface(h.from).node != run.from);
    }
    let mut drawn: Vec<DrawnHop> = Vec::new();
    for h in &all {
        let answer = chain_answer.get(&h.chain).copied().unwrap_or(false);
        if drawn
            .iter()
            .any(|d| d.from == h.from && d.to == h.to && d.answer == answer)
        {
            continue;
        }
        drawn.push(DrawnHop {
            number: drawn.len() + 1,
            from: h.from,
            to: h.to,
            answer,
            packet: h.packet,
        });
    }
    drawn
}

/// The notes of a run, each once: per node the rewrites first, then what ended the packet
/// there, then the arrival (dropped where the node also refused: that reads as a refusal).
fn notes(net: &Network, run: &ProbeRun) -> Vec<Note> {
    let mut notes: Vec<Note> = Vec::new();
    for note in run.steps.iter().filter_map(|s| step_note(net, run.from, s)) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let refused: Vec<NodeId> = notes
        .iter()
        .filter(|n| n.kind == NoteKind::Refused)
        .map(|n| n.node)
        .collect();
    notes.retain(|n| n.kind != NoteKind::Delivered || !refused.contains(&n.node));
    notes.sort_by_key(|n| match n.kind {
        NoteKind::Nat => 0,
        NoteKind::Refused | NoteKind::Drop => 1,
        NoteKind::Delivered => 2,
    });
    notes
}

/// What one step of a run from `client` notes beside its node: a NAT rewrite, a filter's
/// drop or reject, a packet's death, a refusal, or the arrival of what the client sent.
fn step_note(net: &Network, client: NodeId, step: &Step) -> Option<Note> {
    let node = net.node(step.node);
    let (kind, text, in_iface) = match step.kind {
        StepKind::Translated {
            hook,
            rule: Some(rule),
            before,
        } => (
            NoteKind::Nat,
            nat_words(node, hook, rule, &before, &step.packet),
            None,
        ),
        StepKind::Filtered {
            chain,
            decider,
            verdict,
            in_iface,
        } if verdict != Verdict::Accept => {
            let verb = match verdict {
                Verdict::Reject(_) => "rejected",
                _ => "dropped",
            };
            let text = format!(
                "✗ {verb} ({} chain): {}",
                chain.words(),
                node.filter_words(chain, decider)
            );
            (NoteKind::Drop, text, in_iface)
        }
        StepKind::Dropped { in_iface, reason } => (
            NoteKind::Drop,
            format!("✗ {}", drop_words(net, reason)),
            in_iface,
        ),
        StepKind::Refused => (NoteKind::Refused, refused_words(&step.packet), None),
        StepKind::Delivered { .. } if step.node != client && from_client(&step.packet) => {
            (NoteKind::Delivered, reached_words(&step.packet), None)
        }
        _ => return None,
    };
    Some(Note {
        node: step.node,
        kind,
        text,
        in_iface,
    })
}

/// `DNAT 10.0.0.1:80 → 10.1.0.5:8080`, `MASQUERADE 10.1.0.5:32768 → 192.0.2.1:32768`: what
/// NAT rule `rule` of `node` at `hook` did to the packet (`before` it, `after` it).
fn nat_words(
    node: &Node,
    hook: NatHook,
    rule: crate::model::RuleAt,
    before: &Ipv4Packet,
    after: &Ipv4Packet,
) -> String {
    let action = node
        .netfilter
        .as_ref()
        .and_then(|nf| nf.nat_rule_at(rule))
        .map(|rule| &rule.action);
    let (b, a) = (ports(before), ports(after));
    match hook {
        NatHook::Prerouting | NatHook::Output => format!(
            "DNAT {} → {}",
            endpoint(before.dst, b.1),
            endpoint(after.dst, a.1)
        ),
        NatHook::Postrouting => format!(
            "{} {} → {}",
            match action {
                Some(NatAction::Masquerade(_)) => "MASQUERADE",
                _ => "SNAT",
            },
            endpoint(before.src, b.0),
            endpoint(after.src, a.0)
        ),
    }
}

/// What a node that nothing listens on answers `packet` with.
fn refused_words(packet: &Ipv4Packet) -> String {
    match packet.transport {
        Transport::Tcp { dport, .. } => format!("nothing listens on tcp/{dport}: answers RST"),
        Transport::Udp { dport, .. } => {
            format!("nothing listens on udp/{dport}: port unreachable")
        }
        _ => "refused".to_owned(),
    }
}

/// `✓ reached tcp/22`: the arrival of `packet`.
fn reached_words(packet: &Ipv4Packet) -> String {
    let (_, dport) = ports(packet);
    match (packet.transport, dport) {
        (Transport::Tcp { .. }, Some(p)) => format!("✓ reached tcp/{p}"),
        (Transport::Udp { .. }, Some(p)) => format!("✓ reached udp/{p}"),
        _ => "✓ reached".to_owned(),
    }
}

/// Whether the client sent `packet`: an echo request, a SYN, a datagram from the client's port.
fn from_client(packet: &Ipv4Packet) -> bool {
    match packet.transport {
        Transport::EchoRequest { .. } => true,
        Transport::Tcp { flags, .. } => flags == crate::sim::TcpFlags::Syn,
        Transport::Udp { sport, .. } => sport == crate::sim::EPHEMERAL_PORT,
        _ => false,
    }
}

/// Splits `text` into lines of at most `width` characters, at spaces where it can.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let tail: String = line.chars().skip(width).collect();
            lines.push(head);
            line = tail;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_at_spaces_and_long_words() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert!(wrap("", 3).is_empty());
    }
}
