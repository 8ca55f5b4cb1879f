//! Invariants: checks the `invariants:` of a topology over every flow each one covers
//! ([`check`]); what a single forgotten line of the file breaks ([`fuzz`]); which failures of a
//! segment or a node break the invariants and the expectations ([`failures`]).
//!
//! The flows of each invariant, each a fresh simulated probe as `reachlab ping`/`ssh`/`tcp`/`udp`
//! runs it (one echo request, one connection attempt, one datagram):
//!
//! - `isolated: [A, B]`: from every node of A to every address of every node of B, and from B to
//!   A, with each probe (by default ping and TCP and UDP to every port of the
//!   [probe universe](probe_universe)). A flow violates it when one of its packets is
//!   *delivered* to a node of the other side: that node's stack accepted it, whether it then
//!   answered or refused (a RST proves the host is reachable).
//! - `reachable: { from: A, to: B, probe: P }`: from every node of A to every node of B at its
//!   first address (or to the address or DNS name B), with P. A flow without a reply violates it.
//! - `no-private-source-beyond: X`: from every node to every address of every other node, with
//!   every probe of the universe. A flow violates it when X sends or forwards one of its packets
//!   (requests, answers, ICMP errors alike) with a source in 10.0.0.0/8, 172.16.0.0/12 or
//!   192.168.0.0/16, after NAT, out of an interface that has addresses and only public ones
//!   ([`crate::model::Interface::faces_public`]).

pub mod failures;
pub mod fuzz;

pub use failures::{CaseRecord, DownRecord, FailuresRecord};

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use rayon::prelude::*;
use serde::Serialize;

use crate::explain::{Cause, Why};
use crate::matrix::{self, Cell, Destination, Layout, ProbeList, ProbeSpec, Progress, Source};
use crate::model::{
    Decider, Expectation, Invariant, InvariantKind, L4, NatAction, NatHook, Network, Node, NodeId,
    NodeSet, Origin, Outcome, Port, Proto, Reach, Verdict,
};
use crate::sim::{ProbeRun, SimConfig, StepKind, run_probe};

/// One probe an invariant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub from: NodeId,
    /// The destination in words: `web-b (192.168.1.10)`, an address, a DNS name.
    pub to: String,
    pub dst: Ipv4Addr,
    pub probe: ProbeSpec,
}

impl Flow {
    /// `VM_ubuntu tcp:22 web-b (192.168.1.10)`.
    pub fn describe(&self, net: &Network) -> String {
        format!("{} {} {}", net.node(self.from).name, self.probe, self.to)
    }
}

/// A flow that breaks an invariant, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub flow: Flow,
    pub outcome: Outcome,
    pub why: Why,
}

/// How one invariant fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantResult {
    /// Flows simulated.
    pub flows: usize,
    /// Flows that break it.
    pub violated: usize,
    /// The first violating flows (as many as [`Options::explain`] asks), explained.
    pub violations: Vec<Violation>,
}

impl InvariantResult {
    pub fn holds(&self) -> bool {
        self.violated == 0
    }
}

/// How to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How many violating flows of each invariant to explain.
    pub explain: usize,
    /// Nodes that are down: flows from them, and to them (see [`endpoint`]), are not checked.
    pub down: Vec<NodeId>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            explain: 3,
            down: Vec::new(),
        }
    }
}

impl Options {
    fn skips(&self, net: &Network, flow: &Flow) -> bool {
        !self.down.is_empty()
            && (self.down.contains(&flow.from)
                || endpoint(net, flow.dst, &flow.probe.probe())
                    .is_some_and(|n| self.down.contains(&n)))
    }
}

/// The node a probe to `dst` is meant for: the node that owns the address, or, when a DNAT rule
/// of that node matches the address and the probe's protocol and port (a floating IP, a port
/// forward), the node that owns the rule's target address. `None` for an address no node has.
pub fn endpoint(net: &Network, dst: Ipv4Addr, probe: &crate::model::Probe) -> Option<NodeId> {
    let owner = net.node_by_address(dst)?;
    let (l4, port) = match probe.port() {
        None => (L4::Icmp, None),
        Some((Proto::Tcp, p)) => (L4::Tcp, Some(p.get())),
        Some((Proto::Udp, p)) => (L4::Udp, Some(p.get())),
    };
    let target = owner
        .netfilter
        .iter()
        .flat_map(|nf| &nf.nat)
        .filter(|r| r.hook == NatHook::Prerouting)
        .find_map(|r| {
            let m = &r.matches;
            let fits = m.fits_destination(Some(dst), l4, port);
            match r.action {
                NatAction::Dnat(to, _) if fits => Some(to),
                _ => None,
            }
        });
    match target.and_then(|to| net.node_by_address(to)) {
        Some(node) => Some(node.id),
        None => Some(owner.id),
    }
}

/// Checks every invariant of `net`, in file order.
pub fn check(net: &Network, config: &SimConfig) -> Vec<InvariantResult> {
    check_with(net, config, &Options::default())
}

/// Checks every invariant of `net` with `options`.
pub fn check_with(net: &Network, config: &SimConfig, options: &Options) -> Vec<InvariantResult> {
    net.invariants
        .iter()
        .map(|inv| evaluate(net, inv, config, options))
        .collect()
}

/// Checks one invariant.
pub fn evaluate(
    net: &Network,
    invariant: &Invariant,
    config: &SimConfig,
    options: &Options,
) -> InvariantResult {
    match &invariant.kind {
        InvariantKind::Isolated { sets, probes } => isolated(net, sets, probes, config, options),
        InvariantKind::Reachable { from, to, probe } => {
            reachable(net, from, to, *probe, config, options)
        }
        InvariantKind::NoPrivateSourceBeyond { border } => {
            no_private_source(net, border, config, options)
        }
    }
}

/// The probes `isolated` (without `probes:`) and `no-private-source-beyond` try: ping, and a TCP
/// connection and a UDP datagram to every port a listener of the topology listens on or a DNAT
/// rule of it matches (the first port of a range), in port order.
pub fn probe_universe(net: &Network) -> Vec<ProbeSpec> {
    let (mut tcp, mut udp) = (BTreeSet::new(), BTreeSet::new());
    for node in &net.nodes {
        for l in &node.listeners {
            match l.proto {
                Proto::Tcp => tcp.insert(l.port.get()),
                Proto::Udp => udp.insert(l.port.get()),
            };
        }
        let dnat =
            node.netfilter.iter().flat_map(|nf| &nf.nat).filter(|r| {
                matches!(r.action, NatAction::Dnat(..)) && r.hook != NatHook::Postrouting
            });
        for rule in dnat {
            if let Some((lo, _)) = rule.matches.dport {
                match rule.matches.proto {
                    Some(L4::Tcp) => tcp.insert(lo),
                    Some(L4::Udp) => udp.insert(lo),
                    _ => false,
                };
            }
        }
    }
    let port = |p: u16| Port::new(p);
    std::iter::once(ProbeSpec::Ping)
        .chain(tcp.into_iter().filter_map(port).map(ProbeSpec::Tcp))
        .chain(udp.into_iter().filter_map(port).map(ProbeSpec::Udp))
        .collect()
}

/// Every address of a node, each once, in interface order.
fn addresses(net: &Network, node: &Node) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for addr in net
        .interfaces_of(node)
        .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
    {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// Runs `flows` (each with what its judge needs to know) in parallel, recording their hops;
/// `judge` says why a run breaks the invariant. Keeps the first `options.explain` violations,
/// in flow order.
fn run_judged<C, J>(
    net: &Network,
    flows: Vec<(Flow, C)>,
    config: &SimConfig,
    options: &Options,
    judge: J,
) -> InvariantResult
where
    C: Sync,
    J: Fn(&Flow, &C, &ProbeRun) -> Option<Why> + Sync,
{
    let config = SimConfig {
        record: true,
        ..config.clone()
    };
    let flows: Vec<(Flow, C)> = flows
        .into_iter()
        .filter(|(f, _)| !options.skips(net, f))
        .collect();
    let verdicts: Vec<Option<(Outcome, Why)>> = flows
        .par_iter()
        .map(|(flow, context)| {
            let run = run_probe(net, flow.from, flow.dst, &flow.probe.kind(), &config);
            judge(flow, context, &run).map(|why| (run.outcome, why))
        })
        .collect();
    let violated = verdicts.iter().filter(|v| v.is_some()).count();
    let violations = flows
        .iter()
        .zip(verdicts)
        .filter_map(|((flow, _), v)| {
            v.map(|(outcome, why)| Violation {
                flow: flow.clone(),
                outcome,
                why,
            })
        })
        .take(options.explain)
        .collect();
    InvariantResult {
        flows: flows.len(),
        violated,
        violations,
    }
}

fn isolated(
    net: &Network,
    sets: &[NodeSet],
    probes: &[ProbeSpec],
    config: &SimConfig,
    options: &Options,
) -> InvariantResult {
    let probes = if probes.is_empty() {
        probe_universe(net)
    } else {
        probes.to_vec()
    };
    // Each flow with the side its destination is on.
    let mut flows: Vec<(Flow, usize)> = Vec::new();
    for (i, from) in sets.iter().enumerate() {
        for (j, to) in sets.iter().enumerate() {
            if i == j {
                continue;
            }
            for &a in &from.nodes {
                for &b in &to.nodes {
                    let target = net.node(b);
                    for addr in addresses(net, target) {
                        for &probe in &probes {
                            let flow = Flow {
                                from: a,
                                to: format!("{} ({addr})", target.name),
                                dst: addr,
                                probe,
                            };
                            flows.push((flow, j));
                        }
                    }
                }
            }
        }
    }
    run_judged(net, flows, config, options, |flow, &side, run| {
        let side = &sets[side];
        let at = run
            .steps
            .iter()
            .position(|s| matches!(s.kind, StepKind::Delivered { .. }) && side.contains(s.node))?;
        Some(delivered_why(net, flow, run, at, side))
    })
}

/// Why a flow that was delivered across an isolation breaks it: where it arrived, the path,
/// and the rules that let it through or translated it.
fn delivered_why(net: &Network, flow: &Flow, run: &ProbeRun, at: usize, side: &NodeSet) -> Why {
    let step = &run.steps[at];
    let node = net.node(step.node);
    let iface = match step.kind {
        StepKind::Delivered { in_iface: Some(i) } => format!(" on {}", net.interface(i).name),
        _ => String::new(),
    };
    let group = if side.is_group {
        format!(" of `{}`", side.name)
    } else {
        String::new()
    };
    let mut lines = vec![format!(
        "{} from `{}` was delivered to `{}`{group} ({}{iface})",
        step.packet.describe(),
        net.node(flow.from).name,
        node.name,
        step.packet.dst,
    )];
    let mut path: Vec<&str> = Vec::new();
    for s in &run.steps[..=at] {
        let name = net.node(s.node).name.as_str();
        if path.last() != Some(&name) {
            path.push(name);
        }
    }
    lines.push(format!("path: {}", path.join(" → ")));
    let mut origin = None;
    for s in &run.steps[..=at] {
        let hop = net.node(s.node);
        match s.kind {
            StepKind::Translated {
                rule: Some(r),
                before,
                ..
            } => {
                if let Some(rule) = hop.netfilter.as_ref().and_then(|nf| nf.nat_rule_at(r)) {
                    lines.push(format!(
                        "`{}` translated {} → {} to {} → {} ({})",
                        hop.name,
                        before.src,
                        before.dst,
                        s.packet.src,
                        s.packet.dst,
                        hop.nat_words(r)
                    ));
                    origin = Some(rule.origin.clone());
                }
            }
            StepKind::Filtered {
                chain,
                decider: Decider::Rule(r),
                verdict: Verdict::Accept,
                ..
            } => {
                if let Some(rule) = hop
                    .netfilter
                    .as_ref()
                    .and_then(|nf| nf.filter_rule(chain, r))
                {
                    lines.push(format!(
                        "`{}` let it through: {}",
                        hop.name,
                        hop.filter_words(chain, Decider::Rule(r))
                    ));
                    origin = Some(rule.origin.clone());
                }
            }
            _ => {}
        }
    }
    Why {
        cause: Cause::Delivered {
            node: node.name.clone(),
        },
        lines,
        origin: origin.or_else(|| Some(node.origin.clone())),
    }
}

fn reachable(
    net: &Network,
    from: &NodeSet,
    to: &Reach,
    probe: ProbeSpec,
    config: &SimConfig,
    options: &Options,
) -> InvariantResult {
    let up = |id: &&NodeId| !options.down.contains(id);
    let sources: Vec<Source> = from
        .nodes
        .iter()
        .filter(up)
        .map(|&id| Source {
            name: net.node(id).name.clone(),
            id,
        })
        .collect();
    let destinations: Vec<Destination> = match to {
        Reach::Nodes(set) => set
            .nodes
            .iter()
            .filter(up)
            .filter_map(|&id| {
                let node = net.node(id);
                net.node_address(node).map(|address| Destination {
                    label: node.name.clone(),
                    address,
                    node: Some(id),
                })
            })
            .collect(),
        Reach::Address { written, addr } => vec![Destination {
            label: written.clone(),
            address: *addr,
            node: None,
        }],
    };
    let layout = Layout {
        sources,
        destinations,
    };
    let Ok(probes) = ProbeList::new(vec![probe]) else {
        return InvariantResult {
            flows: 0,
            violated: 0,
            violations: Vec::new(),
        };
    };
    // The cells of a matrix: one probe each, in parallel, without recording hops.
    let cells = matrix::outcomes(net, &layout, &probes, config, &Progress::hidden());
    let mut flows = 0;
    let mut failed: Vec<(Flow, Outcome)> = Vec::new();
    for (k, cell) in cells.iter().enumerate() {
        let (s, d) = (k / layout.destinations.len(), k % layout.destinations.len());
        let destination = &layout.destinations[d];
        let flow = Flow {
            from: layout.sources[s].id,
            to: destination.label.clone(),
            dst: destination.address,
            probe,
        };
        match cell {
            Cell::Probed(_) if options.skips(net, &flow) => {}
            Cell::Probed(outcome) => {
                flows += 1;
                if *outcome != Outcome::Reply {
                    failed.push((flow, *outcome));
                }
            }
            Cell::Itself => {}
        }
    }
    let record = SimConfig {
        record: true,
        ..config.clone()
    };
    let violations = failed
        .iter()
        .take(options.explain)
        .map(|(flow, outcome)| {
            let run = run_probe(net, flow.from, flow.dst, &flow.probe.kind(), &record);
            let why = crate::explain::why(net, &run).unwrap_or_else(|| Why {
                cause: Cause::Ended {
                    outcome: run.outcome.name(),
                },
                lines: vec![format!("the probe ended with {}", run.outcome)],
                origin: None,
            });
            Violation {
                flow: flow.clone(),
                outcome: *outcome,
                why,
            }
        })
        .collect();
    InvariantResult {
        flows,
        violated: failed.len(),
        violations,
    }
}

fn no_private_source(
    net: &Network,
    border: &NodeSet,
    config: &SimConfig,
    options: &Options,
) -> InvariantResult {
    let probes = probe_universe(net);
    let targets: Vec<(NodeId, Vec<Ipv4Addr>)> = net
        .nodes
        .iter()
        .map(|n| (n.id, addresses(net, n)))
        .collect();
    let mut flows = Vec::new();
    for source in &net.nodes {
        for (target, addrs) in &targets {
            if *target == source.id {
                continue;
            }
            let name = &net.node(*target).name;
            for &addr in addrs {
                for &probe in &probes {
                    let flow = Flow {
                        from: source.id,
                        to: format!("{name} ({addr})"),
                        dst: addr,
                        probe,
                    };
                    flows.push((flow, ()));
                }
            }
        }
    }
    run_judged(net, flows, config, options, |_, (), run| {
        run.steps.iter().find_map(|step| {
            if !border.contains(step.node) || !step.packet.src.is_private() {
                return None;
            }
            let (out, arrived) = match step.kind {
                StepKind::Sent { out: Some(out), .. } => (out, None),
                StepKind::Forwarded { in_iface, out, .. } => (out, Some(in_iface)),
                _ => return None,
            };
            let iface = net.interface(out);
            if !iface.faces_public() {
                return None;
            }
            let node = net.node(step.node);
            let verb = match arrived {
                Some(i) => format!("forwarded (in on `{}`)", net.interface(i).name),
                None => "sent".to_owned(),
            };
            let addrs: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
            Some(Why {
                cause: Cause::PrivateSourceLeaked {
                    node: node.name.clone(),
                    interface: iface.name.clone(),
                    source: step.packet.src,
                },
                lines: vec![
                    format!(
                        "`{}` {verb} {} {} → {} out of `{}` ({}), which faces public networks",
                        node.name,
                        step.packet.describe(),
                        step.packet.src,
                        step.packet.dst,
                        iface.name,
                        addrs.join(", ")
                    ),
                    format!(
                        "{} is a private (RFC 1918) address and was not translated on the way out",
                        step.packet.src
                    ),
                ],
                origin: Some(iface.origin.clone()),
            })
        })
    })
}

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Invariant,
    Expectation,
}

/// Whether one invariant or expectation holds on a network: what `fuzz` and `--failures`
/// compare between the file as written and a changed copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub subject: Subject,
    /// `isolated [a, b]`, `pc ping srv: reply`.
    pub label: String,
    /// Where it is written.
    pub origin: Origin,
    pub holds: bool,
    /// When it does not hold: the flow that shows it and how it ended
    /// (`pc ping srv: timeout`).
    pub flow: Option<String>,
    pub why: Option<Why>,
}

impl Status {
    /// Same check (the same entry of the file).
    pub fn same_check(&self, other: &Status) -> bool {
        self.subject == other.subject && self.origin == other.origin
    }
}

/// How expectations are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// As `reachlab check` judges them: the outcome, TTL, RTT, status and body.
    Exact,
    /// As failures judge them: a `reply` must still reply (with its status and body; TTL and
    /// RTT may change with the path), a failure must still fail (in any way).
    Resilient,
}

/// The status of every invariant and then every expectation of `net`; flows from and to the
/// nodes of `down` are left out, and so are expectations from or to them (see [`endpoint`]).
pub fn statuses(
    net: &Network,
    config: &SimConfig,
    down: &[NodeId],
    judgement: Judgement,
) -> Vec<Status> {
    let options = Options {
        explain: 1,
        down: down.to_vec(),
    };
    let mut out: Vec<Status> = net
        .invariants
        .iter()
        .map(|inv| {
            let result = evaluate(net, inv, config, &options);
            let first = result.violations.first();
            Status {
                subject: Subject::Invariant,
                label: inv.to_string(),
                origin: inv.origin.clone(),
                holds: result.holds(),
                flow: first.map(|v| format!("{}: {}", v.flow.describe(net), v.outcome)),
                why: first.map(|v| v.why.clone()),
            }
        })
        .collect();
    let checked: Vec<&Expectation> = net
        .expectations
        .iter()
        .filter(|e| {
            !down.contains(&e.from)
                && endpoint(net, e.target.addr, &e.probe).is_none_or(|n| !down.contains(&n))
        })
        .collect();
    let rows: Vec<Status> = checked
        .par_iter()
        .map(|e| {
            let relaxed = Expectation {
                ttl: None,
                max_rtt: None,
                ..(*e).clone()
            };
            let (judged, exact) = match judgement {
                Judgement::Exact => (*e, true),
                Judgement::Resilient => (&relaxed, e.outcome == Outcome::Reply),
            };
            let row = crate::run::check_expectation(net, judged, config);
            let holds = if exact {
                row.ok
            } else {
                row.predicted != Outcome::Reply
            };
            let detail = if row.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", row.detail)
            };
            Status {
                subject: Subject::Expectation,
                label: format!("{}: {}", row.probe, row.expected),
                origin: e.origin.clone(),
                holds,
                flow: (!holds).then(|| format!("predicted {}{detail}", row.predicted)),
                why: if holds { None } else { row.result.why.clone() },
            }
        })
        .collect();
    out.extend(rows);
    out
}

/// The checks that hold in `before` and not in `after` (matched by where they are written).
pub fn broken<'a>(before: &[Status], after: &'a [Status]) -> Vec<&'a Status> {
    after
        .iter()
        .filter(|a| !a.holds && before.iter().any(|b| b.same_check(a) && b.holds))
        .collect()
}

/// The JSON record of one invariant's result (`check --format json`, under `invariants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvariantRecord {
    pub file: String,
    /// The invariant in words (`isolated [guests, office]`).
    pub invariant: String,
    pub origin: Origin,
    pub ok: bool,
    /// Flows simulated, and how many of them broke it.
    pub flows: usize,
    pub violated: usize,
    /// The first violations, explained.
    pub violations: Vec<ViolationRecord>,
}

/// One flow that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationRecord {
    pub from: String,
    /// The destination in words (`web-b (192.168.1.10)`).
    pub to: String,
    pub address: Ipv4Addr,
    /// `ping`, `tcp:22`, ...
    pub probe: String,
    pub outcome: &'static str,
    /// Why, in the lines `reachlab ping` prints under `why:`.
    pub why: Vec<String>,
    /// The decisive step as data.
    pub why_cause: Cause,
    /// The line of the file that decided it, when one did.
    pub why_origin: Option<Origin>,
}

/// The JSON record of one invariant's result.
pub fn result_json(
    net: &Network,
    file: &str,
    invariant: &Invariant,
    result: &InvariantResult,
) -> InvariantRecord {
    InvariantRecord {
        file: file.to_owned(),
        invariant: invariant.to_string(),
        origin: invariant.origin.clone(),
        ok: result.holds(),
        flows: result.flows,
        violated: result.violated,
        violations: result
            .violations
            .iter()
            .map(|v| violation_json(net, v))
            .collect(),
    }
}

fn violation_json(net: &Network, v: &Violation) -> ViolationRecord {
    ViolationRecord {
        from: net.node(v.flow.from).name.clone(),
        to: v.flow.to.clone(),
        address: v.flow.dst,
        probe: v.flow.probe.to_string(),
        outcome: v.outcome.name(),
        why: v.why.lines.clone(),
        why_cause: v.why.cause.clone(),
        why_origin: v.why.origin.clone(),
    }
}

/// A check (an invariant or an expectation) that broke, in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRecord {
    /// `invariant` or `expect`.
    pub check: &'static str,
    /// `isolated [a, b]`, `pc ping srv: reply`.
    pub label: String,
    pub origin: Origin,
    /// The flow that shows it and how it ended (`pc ping srv: timeout`).
    pub flow: Option<String>,
    pub why: Option<Vec<String>>,
    /// The decisive step as data.
    pub why_cause: Option<Cause>,
    pub why_origin: Option<Origin>,
}

/// The JSON of a [`Status`] that broke.
pub(crate) fn status_json(s: &Status) -> StatusRecord {
    StatusRecord {
        check: match s.subject {
            Subject::Invariant => "invariant",
            Subject::Expectation => "expect",
        },
        label: s.label.clone(),
        origin: s.origin.clone(),
        flow: s.flow.clone(),
        why: s.why.as_ref().map(|w| w.lines.clone()),
        why_cause: s.why.as_ref().map(|w| w.cause.clone()),
        why_origin: s.why.as_ref().and_then(|w| w.origin.clone()),
    }
}
