//! The fast path: probes resolved by walking the compiled network synchronously, packet by
//! packet, without the event queue, for the cases where the walk provably does what the engine
//! does.
//!
//! The walk runs the engine's own stack ([`super::stack`]) over the same compiled network
//! ([`Compiled`]): martian sources, conntrack and NAT (a flow's first packet decides it, answers
//! are translated back, `probability` rules draw from a RNG seeded as the engine's), filter
//! chains with their REJECT answers, route types, local delivery, the kernel's answers and ICMP
//! errors are decided by the same code. What the walk does instead of the engine is only the
//! link layer and time: it knows ahead of time who answers each ARP request (the compiled
//! [`Next`]), so a cold neighbour costs three crossings of the segment (request, answer, packet)
//! and an unanswered one the three requests a second apart, and a crossing costs the engine's
//! `node_delay + latency`.
//!
//! Whenever a probe leaves that ground it returns `None` and the caller runs the engine
//! ([`crate::sim::run_probe_on`]), so the answer is always the engine's: a lossy segment (random
//! draws on frames), a node sending two packets for one (an ICMP redirect with the forwarded
//! packet), a host taking a redirect's advice, an ARP request two interfaces would answer,
//! duplicate MAC addresses on a segment, ping with more than one request, answers that land
//! exactly on a deadline, a TCP connection left unanswered after a packet went back through
//! conntrack or after a `probability` rule drew (its retransmitted SYNs could fare otherwise),
//! or a run that could reach the horizon or the event budget. `tests/fast_path.rs` checks that
//! the two agree, and that the walk answers, on thousands of random probes.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::compiled::{Compiled, Next};
use super::conntrack::Conntrack;
use super::engine::{Received, SimConfig};
use super::packet::Ipv4Packet;
use super::probe::{
    Observed, PingLog, ProbeKind, outcome_of, probe_packet, run_probe_on, tcp_answer, udp_answer,
};
use super::stack::{Link, SendError, Stack};
use super::time::SimTime;
use super::trace::{DropReason, StepKind};
use crate::model::{IfaceId, Network, NodeId, Outcome};

/// Hops one probe's packets may take, all together, before the walk gives up.
const MAX_HOPS: u32 = 2048;

/// Whether neighbour caches start empty (as every probe of the engine does) or hold every
/// neighbour that answers (as after an earlier probe along the same path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Neighbours {
    #[default]
    Cold,
    Warm,
}

/// A probe the fast path resolved: what the engine's [`crate::sim::ProbeRun`] would hold,
/// without the hops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastProbe {
    /// The source address the sender used (`None` when it had no route).
    pub src: Option<Ipv4Addr>,
    pub observed: Observed,
    pub outcome: Outcome,
    /// Interfaces crossed by the probe's packets (a measure of the work done).
    pub hops: u32,
}

/// Neighbour entries resolved during one probe, each with the time it became valid: an
/// open-addressed table inline, a list on the heap beyond three quarters of it.
struct Resolved {
    slots: [Entry; RESOLVED_SLOTS],
    used: usize,
    spill: Vec<Entry>,
}

/// Inline slots: a probe across 8 routers resolves 18 entries (a request teaches the
/// responder the sender too).
const RESOLVED_SLOTS: usize = 32;

impl Default for Resolved {
    fn default() -> Self {
        Self {
            slots: [Entry::default(); RESOLVED_SLOTS],
            used: 0,
            spill: Vec::new(),
        }
    }
}

/// A neighbour entry: (interface, address) valid from `since`; `asked`: the interface's own
/// request made it (packets sent before `since` wait for the answer), else it was learnt from
/// a request (before `since` there is no entry at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    since: u64,
    asked: bool,
}

/// A slot of [`Resolved`]: the packed key (interface id plus one in the high half, so that 0
/// marks a free slot; the address in the low half) and the entry.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    key: u64,
    since: u64,
    asked: bool,
}

impl Resolved {
    fn pack(key: (u32, u32)) -> u64 {
        (u64::from(key.0) + 1) << 32 | u64::from(key.1)
    }

    fn home(key: u64) -> usize {
        // The top 5 bits of a Fibonacci hash: RESOLVED_SLOTS = 32.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize
    }

    fn get(&self, key: (u32, u32)) -> Option<Known> {
        let key = Self::pack(key);
        let found = |e: &Entry| Known {
            since: e.since,
            asked: e.asked,
        };
        let mut i = Self::home(key);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return Some(found(slot));
            }
            if slot.key == 0 {
                break;
            }
            i = (i + 1) % RESOLVED_SLOTS;
        }
        if self.spill.is_empty() {
            return None;
        }
        self.spill.iter().find(|e| e.key == key).map(found)
    }

    /// Adds an entry unless one exists.
    fn insert(&mut self, key: (u32, u32), since: u64, asked: bool) {
        let key = Self::pack(key);
        let entry = Entry { key, since, asked };
        let mut i = Self::home(key);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return;
            }
            if slot.key == 0 {
                break;
            }
            i = (i + 1) % RESOLVED_SLOTS;
        }
        if self.spill.iter().any(|e| e.key == key) {
            return;
        }
        if self.used * 4 >= RESOLVED_SLOTS * 3 {
            self.spill.push(entry);
        } else {
            self.slots[i] = entry;
            self.used += 1;
        }
    }
}

/// A network compiled for the fast path. Build it once, probe it many times (it is `Sync`).
#[derive(Debug, Clone)]
pub struct FastPath<'n> {
    dp: Cow<'n, Compiled<'n>>,
}

impl<'n> FastPath<'n> {
    /// Compiles `net`.
    pub fn new(net: &'n Network) -> Self {
        Self {
            dp: Cow::Owned(Compiled::new(net)),
        }
    }

    /// The fast path over a network already compiled.
    pub fn on(dp: &'n Compiled<'n>) -> Self {
        Self {
            dp: Cow::Borrowed(dp),
        }
    }

    /// The compiled network (for running the engine over it).
    pub fn compiled(&self) -> &Compiled<'n> {
        &self.dp
    }

    /// Resolves one probe from `from` to `dst` as [`crate::sim::run_probe`] would (fresh
    /// caches), or `None` when the probe needs the engine (see the module documentation).
    pub fn probe(
        &self,
        from: NodeId,
        dst: Ipv4Addr,
        kind: &ProbeKind,
        config: &SimConfig,
    ) -> Option<FastProbe> {
        self.probe_with(from, dst, kind, config, Neighbours::Cold)
    }

    /// As [`FastPath::probe`], with the neighbour caches chosen.
    pub fn probe_with(
        &self,
        from: NodeId,
        dst: Ipv4Addr,
        kind: &ProbeKind,
        config: &SimConfig,
        neighbours: Neighbours,
    ) -> Option<FastProbe> {
        let dp: &Compiled<'n> = &self.dp;
        if dp.duplicate_macs() || from.index() >= dp.network().nodes.len() {
            return None;
        }
        let horizon = SimTime::from_duration(config.horizon);
        let (deadline, flavour) = match kind {
            ProbeKind::Ping { count: 1, wait, .. } => {
                (SimTime::from_duration(*wait), Flavour::Ping)
            }
            ProbeKind::Ping { .. } => return None,
            ProbeKind::Tcp { port, timeout } => {
                (SimTime::from_duration(*timeout), Flavour::Tcp(port.get()))
            }
            ProbeKind::Udp { port, wait, .. } => {
                (SimTime::from_duration(*wait), Flavour::Udp(port.get()))
            }
        };
        // The engine's clock must never reach the horizon before the probe is decided.
        if deadline >= horizon {
            return None;
        }
        let mut conntrack = Conntrack::default();
        let mut stack = Stack {
            dp,
            conntrack: &mut conntrack,
            link: Walker {
                dp,
                client: from,
                dst,
                flavour,
                deadline: deadline.0,
                node_delay: SimTime::from_duration(config.node_delay).0,
                arp_fail: SimTime::from_duration(
                    config
                        .arp_retrans
                        .saturating_mul(u32::from(config.arp_probes.max(1))),
                )
                .0,
                warm: neighbours == Neighbours::Warm,
                seed: config.seed,
                rng: None,
                resolved: Resolved::default(),
                events: 0,
                hops: 0,
                at: 0,
                seq: 0,
                pending: Pending::default(),
                declined: false,
                learnt: Learnt::default(),
                arrived_on: None,
                log: PingLog::to(dst),
                observed: None,
            },
        };
        let Some(src) = dp.source_address(from, dst) else {
            // As the engine's probe: the attempt fails at once.
            let attempt = probe_packet(Ipv4Addr::UNSPECIFIED, dst, 64, kind, 1);
            let observed = match stack.output(from, attempt, DropReason::NoRouteAtSender) {
                Err(SendError::Rejected(route)) => Observed::Rejected(route),
                _ => Observed::NoRoute,
            };
            return Some(FastProbe {
                src: None,
                outcome: outcome_of(&observed),
                observed,
                hops: 0,
            });
        };
        let first = probe_packet(src, dst, kind.initial_ttl(dp.ttl(from)), kind, 1);
        if stack
            .output(from, first, DropReason::NoRouteAtSender)
            .is_err()
        {
            return None; // `source_address` found a route: the engine decides the oddity
        }
        if let Flavour::Tcp(_) = flavour {
            stack.link.retransmit(first, 0);
        }
        stack.walk()?;
        let walker = &mut stack.link;
        if walker.events.saturating_add(16) >= config.max_events {
            return None;
        }
        let observed = walker.observed.take().unwrap_or_else(|| walker.silence());
        Some(FastProbe {
            src: Some(src),
            outcome: outcome_of(&observed),
            observed,
            hops: walker.hops,
        })
    }

    /// The outcome of a probe: the fast path's when it applies, the engine's otherwise.
    pub fn outcome(
        &self,
        from: NodeId,
        dst: Ipv4Addr,
        kind: &ProbeKind,
        config: &SimConfig,
    ) -> Outcome {
        match self.probe(from, dst, kind, config) {
            Some(fast) => fast.outcome,
            None => run_probe_on(&self.dp, from, dst, kind, config).outcome,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Flavour {
    Ping,
    Tcp(u16),
    Udp(u16),
}

/// Something the walk must still do, at a time.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// `packet` reaches interface `port`.
    Arrive { port: IfaceId, packet: Ipv4Packet },
    /// `packet`, sent by interface `from`, reaches the bridge `bridge` on its way to the port
    /// `port` (the bridge itself: to its owner), and the bridge's owner judges it
    /// (br_netfilter).
    Bridged {
        bridge: IfaceId,
        from: IfaceId,
        port: IfaceId,
        packet: Ipv4Packet,
    },
    /// `packet` comes back to `node` through loopback.
    Loopback { node: NodeId, packet: Ipv4Packet },
    /// Nobody answered ARP for `nexthop` out of `out`; `node` gives up on `packet`.
    Unresolved {
        node: NodeId,
        out: IfaceId,
        nexthop: Ipv4Addr,
        packet: Ipv4Packet,
    },
    /// The TCP client sends its SYN again (the `retries`-th time): after every packet of the
    /// same instant, as the engine's client runs once the queue is done with that instant.
    Retransmit { syn: Ipv4Packet, retries: u32 },
}

/// One event in flight, with what orders it among events of the same instant as the engine
/// orders them: the time it was scheduled (the engine's sequence numbers grow with it), the
/// order the walk made it in, and the neighbour it waited for (its frame was scheduled when the
/// answer came, in a handling the walk does not run).
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: u64,
    scheduled: u64,
    seq: u64,
    waited: Option<(u32, u32)>,
    event: Event,
}

impl Slot {
    fn retransmit(&self) -> bool {
        matches!(self.event, Event::Retransmit { .. })
    }

    fn key(&self) -> (u64, u64, u64) {
        (self.at, self.scheduled, self.seq)
    }
}

/// The events in flight (a handful at most; more and the walk declines), kept in
/// `slots[..len]`.
#[derive(Debug, Default)]
struct Pending {
    slots: [Option<Slot>; PENDING],
    len: usize,
}

const PENDING: usize = 6;

impl Pending {
    /// Adds an event; false when full.
    fn push(&mut self, slot: Slot) -> bool {
        if self.len == PENDING {
            return false;
        }
        self.slots[self.len] = Some(slot);
        self.len += 1;
        true
    }

    /// The next event, or `Err(())` when the engine's order of two events of one instant is
    /// not known: the client's retransmission and a packet, or two packets scheduled at one
    /// instant by handlings the walk does not run in the engine's order.
    #[allow(clippy::result_unit_err)]
    #[inline] // see `Stack::receive`
    fn pop(&mut self) -> Result<Option<Slot>, ()> {
        if self.len == 1 {
            // One event in flight (a plain crossing's usual case): it is the next, and there
            // is nothing to order it against.
            self.len = 0;
            return Ok(self.slots[0].take());
        }
        let live = &self.slots[..self.len];
        let mut first = 0;
        let mut best = match live.first() {
            Some(Some(slot)) => slot.key(),
            _ => return Ok(None),
        };
        for (i, slot) in live.iter().enumerate().skip(1) {
            if let Some(slot) = slot
                && slot.key() < best
            {
                best = slot.key();
                first = i;
            }
        }
        let Some(next) = self.slots[first].take() else {
            return Ok(None);
        };
        self.len -= 1;
        if first != self.len {
            // The last slot fills the hole (order among slots does not matter).
            self.slots[first] = self.slots[self.len].take();
        }
        let unordered = self.slots[..self.len].iter().flatten().any(|other| {
            other.at == next.at
                && (other.retransmit()
                    || next.retransmit()
                    || (other.scheduled == next.scheduled && other.waited != next.waited))
        });
        if unordered {
            return Err(());
        }
        Ok(Some(next))
    }
}

/// The neighbour entry (interface, address) a packet waited for, and when its answer came.
type Waited = ((u32, u32), u64);

/// Next hops hosts learnt from redirects during the walk: (node, destination, gateway).
#[derive(Debug, Default)]
struct Learnt {
    entries: [Option<(NodeId, Ipv4Addr, Ipv4Addr)>; 4],
}

/// The link layer, clock and client of one probe's walk.
struct Walker<'f, 'n> {
    dp: &'f Compiled<'n>,
    client: NodeId,
    dst: Ipv4Addr,
    flavour: Flavour,
    deadline: u64,
    node_delay: u64,
    arp_fail: u64,
    warm: bool,
    seed: u64,
    /// The run's RNG, seeded on its first draw.
    rng: Option<ChaCha8Rng>,
    resolved: Resolved,
    /// An upper bound of the events the engine processes for the same packets.
    events: u64,
    hops: u32,
    /// The time of the event being handled.
    at: u64,
    seq: u64,
    pending: Pending,
    /// The walk left the ground where it is exact: the engine decides.
    declined: bool,
    /// Next hops hosts learnt from redirects.
    learnt: Learnt,
    /// The interface the packet being handled arrived on.
    arrived_on: Option<IfaceId>,
    /// What a ping client has seen.
    log: PingLog,
    /// What the client made of the packets it received, once decided.
    observed: Option<Observed>,
}

impl<'f, 'n> Stack<'f, 'n, Walker<'f, 'n>> {
    /// Follows the events in flight in time order until the client has decided, nothing is
    /// left before its deadline, or the walk declines; `None` when the engine must decide.
    #[inline] // see `Stack::receive`
    fn walk(&mut self) -> Option<()> {
        loop {
            if self.link.declined || self.link.hops > MAX_HOPS {
                return None;
            }
            if self.link.observed.is_some() {
                return Some(());
            }
            let Some(Slot { at, event, .. }) = self.link.pending.pop().ok()? else {
                return Some(());
            };
            if at > self.link.deadline {
                return Some(());
            }
            self.link.at = at;
            self.link.arrived_on = None;
            match event {
                Event::Arrive { port, packet } => {
                    self.link.arrived_on = Some(port);
                    let node = self.dp.node_of(port);
                    self.receive(node, port, packet);
                }
                Event::Bridged {
                    bridge,
                    from,
                    port,
                    packet,
                } if port == bridge => {
                    self.link.arrived_on = Some(port);
                    let node = self.dp.node_of(port);
                    self.receive_from(node, port, Some(from), packet);
                }
                Event::Bridged {
                    bridge,
                    from,
                    port,
                    packet,
                } => {
                    if self.link.warm {
                        // Whether an earlier probe's redirect changed the path through the
                        // bridge's owner is the engine's to say.
                        self.link.declined = true;
                        return None;
                    }
                    self.bridged(bridge, Some(from), port, packet)
                }
                Event::Loopback { node, packet } => self.loopback_receive(node, packet),
                Event::Unresolved {
                    node,
                    out,
                    nexthop,
                    packet,
                } => self.neighbour_failed(node, out, nexthop, packet),
                Event::Retransmit { syn, retries } => {
                    if at >= self.link.deadline {
                        return Some(());
                    }
                    self.link.events += 1;
                    let client = self.link.client;
                    let _ = self.output(client, syn, DropReason::NoRouteAtSender);
                    self.link.retransmit(syn, retries);
                }
            }
        }
    }
}

impl Walker<'_, '_> {
    fn next(&mut self, at: u64, event: Event) {
        self.schedule(at, None, event);
    }

    /// Schedules `event` at `at`; `waited`: the neighbour entry whose answer released it, and
    /// when that answer came.
    fn schedule(&mut self, at: u64, waited: Option<Waited>, event: Event) {
        self.seq += 1;
        let scheduled = match waited {
            Some((_, since)) => since.max(self.at),
            None => self.at,
        };
        let waited = waited.map(|(key, _)| key);
        let slot = Slot {
            at,
            scheduled,
            seq: self.seq,
            waited,
            event,
        };
        if !self.pending.push(slot) {
            self.declined = true;
        }
    }

    /// Arms the client's next SYN retransmission after `retries` of them (initial RTO 1 s,
    /// doubling: 1, 3, 7, 15, 31 and 63 s, as the engine's client).
    fn retransmit(&mut self, syn: Ipv4Packet, retries: u32) {
        if retries < 6 {
            let at = ((1u64 << (retries + 1)) - 1).saturating_mul(1_000_000_000);
            let retries = retries + 1;
            self.next(at, Event::Retransmit { syn, retries });
        }
    }

    /// When a packet sent out of `out` to `nexthop` now reaches the responder `port` (whose
    /// node learns the request's `sender`): after one crossing with a valid neighbour entry,
    /// after the answer to a request under way, or after a request, its answer and the packet
    /// itself.
    fn departure(
        &mut self,
        out: IfaceId,
        nexthop: Ipv4Addr,
        port: IfaceId,
        sender: Ipv4Addr,
        crossing: u64,
    ) -> (u64, Option<Waited>) {
        if self.warm {
            return (self.at.saturating_add(crossing), None);
        }
        let key = (out.0, u32::from(nexthop));
        match self.resolved.get(key) {
            Some(k) if k.since <= self.at => (self.at.saturating_add(crossing), None),
            Some(k) if k.asked => (k.since.saturating_add(crossing), Some((key, k.since))),
            // Learnt from a request still on its way (or failing): the engine's to decide.
            Some(_) => {
                self.declined = true;
                (self.at, None)
            }
            None => {
                // Request (flooded), answer, then the packet; the responder learns the sender
                // when the request reaches it.
                let asked = self.at.saturating_add(crossing);
                self.resolved
                    .insert((port.0, u32::from(sender)), asked, false);
                let answered = asked.saturating_add(crossing);
                self.resolved.insert(key, answered, true);
                (answered.saturating_add(crossing), Some((key, answered)))
            }
        }
    }

    /// What the client makes of its silence until the deadline.
    fn silence(&self) -> Observed {
        match self.flavour {
            Flavour::Ping => Observed::Ping {
                sent: 1,
                replies: self.log.replies.clone(),
                errors: self.log.errors.clone(),
                redirects: self.log.redirects.clone(),
            },
            Flavour::Tcp(_) | Flavour::Udp(_) => Observed::Silence {
                waited: std::time::Duration::from_nanos(self.deadline),
            },
        }
    }
}

impl Link for Walker<'_, '_> {
    fn record(&mut self, _: NodeId, _: Ipv4Packet, _: StepKind) {}

    fn send(
        &mut self,
        out: IfaceId,
        nexthop: Ipv4Addr,
        next: Next,
        packet: Ipv4Packet,
        made_here: bool,
    ) {
        let dp = self.dp;
        if self.warm && !made_here && self.arrived_on == Some(out) {
            // Out the way it came: after an earlier probe, a redirect may have changed the
            // path (warm caches stand for that earlier probe).
            self.declined = true;
            return;
        }
        let segment = dp.segment_of(out);
        if segment.loss > 0.0 {
            self.declined = true;
            return;
        }
        let next = match next {
            Next::Lookup => dp.responder(out, nexthop),
            known => known,
        };
        let (port, sender) = match next {
            Next::Ambiguous | Next::Lookup => {
                self.declined = true;
                return;
            }
            Next::Nobody => {
                if self.resolved.get((out.0, u32::from(nexthop))).is_some() {
                    self.declined = true;
                    return;
                }
                // Three requests flooded, three timers, then the packet fails.
                self.events = self.events.saturating_add(3 * u64::from(segment.ports) + 3);
                let node = dp.node_of(out);
                let at = self.at.saturating_add(self.arp_fail);
                let event = Event::Unresolved {
                    node,
                    out,
                    nexthop,
                    packet,
                };
                return self.next(at, event);
            }
            Next::One { port, sender } => (port, sender),
        };
        let crossing = self.node_delay.saturating_add(segment.latency_ns);
        self.events = self.events.saturating_add(3 * u64::from(segment.ports));
        let (at, waited) = self.departure(out, nexthop, port, sender, crossing);
        self.hops += 1;
        let event = match segment.hook {
            Some(bridge) if bridge != out => Event::Bridged {
                bridge,
                from: out,
                port,
                packet,
            },
            _ => Event::Arrive { port, packet },
        };
        self.schedule(at, waited, event);
    }

    fn loopback(&mut self, node: NodeId, packet: Ipv4Packet) {
        self.events += 1;
        let at = self.at.saturating_add(self.node_delay);
        self.next(at, Event::Loopback { node, packet });
    }

    fn is_client(&self, node: NodeId) -> bool {
        node == self.client
    }

    fn to_client(&mut self, packet: Ipv4Packet) {
        if self.at == self.deadline {
            // Whether the client still waits at its deadline is the engine's to say.
            self.declined = true;
            return;
        }
        let received = Received {
            at: SimTime(self.at),
            packet,
        };
        self.observed = match self.flavour {
            Flavour::Ping => {
                self.log.collect(received);
                self.log.complete(1).then(|| Observed::Ping {
                    sent: 1,
                    replies: std::mem::take(&mut self.log.replies),
                    errors: std::mem::take(&mut self.log.errors),
                    redirects: std::mem::take(&mut self.log.redirects),
                })
            }
            Flavour::Tcp(port) => tcp_answer(&received, self.dst, port),
            Flavour::Udp(port) => udp_answer(&received, self.dst, port),
        };
    }

    fn now(&self) -> u64 {
        self.at
    }

    fn draw(&mut self, ppb: u32) -> bool {
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
        (rng.next_u64() % 1_000_000_000) < u64::from(ppb)
    }

    fn learnt_gateway(&mut self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.learnt
            .entries
            .iter()
            .flatten()
            .find(|(n, d, _)| *n == node && *d == dst)
            .map(|(_, _, gateway)| *gateway)
    }

    /// The host takes the advice once its neighbour entry for the gateway is valid; without
    /// one it asks for it (the gateway learns the host when the request reaches it).
    fn advised(&mut self, node: NodeId, dev: IfaceId, gateway: Ipv4Addr, dst: Ipv4Addr) {
        if self.warm {
            // After an earlier probe the host would have taken this advice already.
            self.declined = true;
            return;
        }
        let key = (dev.0, u32::from(gateway));
        let known = self.resolved.get(key);
        if known.is_some_and(|k| k.since <= self.at) {
            let entry = Some((node, dst, gateway));
            let entries = &mut self.learnt.entries;
            let at = entries
                .iter()
                .position(|e| e.is_some_and(|(n, d, _)| n == node && d == dst))
                .or_else(|| entries.iter().position(Option::is_none));
            match at {
                Some(i) => entries[i] = entry,
                None => self.declined = true,
            }
            return;
        }
        if known.is_some() {
            return; // resolving already
        }
        let segment = self.dp.segment_of(dev);
        let crossing = self.node_delay.saturating_add(segment.latency_ns);
        match self.dp.responder(dev, gateway) {
            Next::One { port, sender } => {
                self.events = self.events.saturating_add(2 * u64::from(segment.ports) + 1);
                let asked = self.at.saturating_add(crossing);
                self.resolved
                    .insert((port.0, u32::from(sender)), asked, false);
                self.resolved
                    .insert(key, asked.saturating_add(crossing), true);
            }
            Next::Nobody => {
                // Three requests a second apart, unanswered; the entry then goes away. Until
                // it does, a packet for the gateway would wait: the engine's to decide.
                self.events = self.events.saturating_add(3 * u64::from(segment.ports) + 3);
                self.resolved.insert(key, u64::MAX, false);
            }
            Next::Ambiguous | Next::Lookup => self.declined = true,
        }
    }
}
