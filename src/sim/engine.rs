//! The discrete-event engine: time, the event queue, the links below IP, and the run's RNG.
//!
//! Events are ordered by (time, sequence number); the one RNG is ChaCha8 seeded from the
//! configuration, drawn where a segment has loss and where a NAT rule matches `probability`,
//! so the same topology and seed always give the same run. A run ends when the queue is empty,
//! at the time horizon, or when the event budget is spent, and says which, so that a forwarding
//! loop can never hang it.
//!
//! What a node does with a packet is decided by the stack ([`super::stack`]), which this engine
//! runs over the compiled network ([`super::Compiled`]); the engine owns only what lies below IP
//! (docs/linux-semantics.md, "Neighbour resolution" and "Segments"):
//! - segments are learning bridges: unknown and broadcast destinations are flooded; a bridge's
//!   forwarding database is a vector with one slot per MAC address on the segment;
//! - ARP with a neighbour cache per interface; an unanswered request is sent 3 times, 1 s apart,
//!   then the queued packets fail (the stack sends ICMP host unreachable);
//! - a frame crosses a segment in the node's delay plus the segment's latency, and is lost with
//!   the segment's probability.
//!
//! With [`SimConfig::capture`] on, every frame `transmit` puts on a segment goes to the capture
//! tap ([`super::tap`]) as sent: `--pcap` writes those frames, it does not work them out again.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rustc_hash::FxHashMap as HashMap;

use super::compiled::{Compiled, Next};
use super::conntrack::Conntrack;
use super::neighbour::{Neigh, NeighCache};
use super::packet::{Arp, ArpOp, BROADCAST, Frame, FramePayload, Ipv4Packet};
use super::queue::EventQueue;
use super::stack::{Link, SendError, Stack};
use super::tap::{Tap, Transmission};
use super::time::SimTime;
use super::trace::{DropReason, Step, StepKind};
use crate::model::{IfaceId, MacAddr, Network, NodeId};

/// Knobs of a run. The defaults are Linux's where Linux has one.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the RNG (frame loss). Default 1.
    pub seed: u64,
    /// Simulated time after which a run stops. Default 300 s.
    pub horizon: Duration,
    /// Events after which a run stops. Default 1,000,000.
    pub max_events: u64,
    /// Time a node takes to handle and send on a packet. Default 5 µs (a veth hop).
    pub node_delay: Duration,
    /// ARP retransmission interval (`retrans_time_ms`). Default 1 s.
    pub arp_retrans: Duration,
    /// ARP requests before giving up (`mcast_solicit`). Default 3.
    pub arp_probes: u8,
    /// Record every hop for traces and explanations. Default true.
    pub record: bool,
    /// Tap the wire: keep every frame transmitted (see the `tap` module). Default false.
    pub capture: bool,
    /// The outcomes of the run's random choices (`-m statistic --mode random`, as kube-proxy
    /// uses to pick a Service's endpoint), in the order they are drawn, instead of the RNG's;
    /// draws past the end are `false`. `None` (the default): the seeded RNG decides. See
    /// [`crate::sim::ProbeRun::draws`].
    pub draws: Option<Vec<bool>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            horizon: Duration::from_secs(300),
            max_events: 1_000_000,
            node_delay: Duration::from_micros(5),
            arp_retrans: Duration::from_secs(1),
            arp_probes: 3,
            record: true,
            capture: false,
            draws: None,
        }
    }
}

/// Why a run stopped before its work was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Simulated time reached the horizon.
    Horizon,
    /// The event budget was spent (a storm or a loop).
    EventBudget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    /// A frame reaches an interface (the frame's fields inline: with the interface they fill
    /// the event's 48 bytes, where a `Frame` beside the interface would pad it to 56;
    /// benches/RESULTS.md, "Packets aligned to 8 bytes").
    Arrive {
        iface: IfaceId,
        src: MacAddr,
        dst: MacAddr,
        payload: FramePayload,
    },
    /// A packet to one of the node's own addresses, through loopback.
    Loopback { node: NodeId, packet: Ipv4Packet },
    /// Resend or give up an ARP request.
    ArpTimer { iface: IfaceId, ip: Ipv4Addr },
    /// A timer of the probe client.
    Wake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    at: SimTime,
    seq: u64,
    kind: EventKind,
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A packet that reached the probe's client: what arrived, when, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub at: SimTime,
    pub packet: Ipv4Packet,
}

/// One simulation run over a network.
pub struct Sim<'n> {
    dp: Cow<'n, Compiled<'n>>,
    /// Connections tracked by nodes with netfilter rules.
    conntrack: Conntrack,
    below: Below,
}

/// Everything of a run below IP, and the run's clock, queue and records.
struct Below {
    config: SimConfig,
    now: SimTime,
    seq: u64,
    events: u64,
    queue: EventQueue<Event>,
    rng: ChaCha8Rng,
    /// The bridges' forwarding databases: per (segment, MAC) slot of the compiled network, the
    /// port learnt plus one (0: not learnt).
    fdb: Vec<u32>,
    neigh: NeighCache,
    /// Next hops learnt from ICMP redirects by hosts: (node, destination) → gateway.
    redirects: HashMap<(NodeId, Ipv4Addr), Ipv4Addr>,
    client: Option<NodeId>,
    inbox: Vec<Received>,
    steps: Vec<Step>,
    stopped: Option<Stopped>,
    /// The capture tap, with `config.capture` only.
    tap: Option<Box<Tap>>,
    /// The random choices made so far, when they are scripted (`config.draws`).
    drawn: Vec<bool>,
}

/// The link layer as the stack sees it during one event: the compiled network and the run.
struct Wires<'s, 'n> {
    dp: &'s Compiled<'n>,
    run: &'s mut Below,
}

impl<'n> Sim<'n> {
    /// A run over `net`, compiling it first (see [`Sim::on`] to share one compilation).
    pub fn new(net: &'n Network, config: SimConfig) -> Self {
        Self::with(Cow::Owned(Compiled::new(net)), config)
    }

    /// A run over a network compiled once for many runs.
    pub fn on(dp: &'n Compiled<'n>, config: SimConfig) -> Self {
        Self::with(Cow::Borrowed(dp), config)
    }

    fn with(dp: Cow<'n, Compiled<'n>>, config: SimConfig) -> Self {
        let fdb = vec![0; dp.mac_slots()];
        Self {
            dp,
            conntrack: Conntrack::default(),
            below: Below {
                tap: config.capture.then(Box::default),
                drawn: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(config.seed),
                config,
                now: SimTime::ZERO,
                seq: 0,
                events: 0,
                queue: EventQueue::default(),
                fdb,
                neigh: NeighCache::default(),
                redirects: HashMap::default(),
                client: None,
                inbox: Vec::new(),
                steps: Vec::new(),
                stopped: None,
            },
        }
    }

    pub fn network(&self) -> &'n Network {
        self.dp.network()
    }

    pub fn now(&self) -> SimTime {
        self.below.now
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.below.events
    }

    /// Why the run stopped early, if it did.
    pub fn stopped(&self) -> Option<Stopped> {
        self.below.stopped
    }

    /// The hops recorded so far.
    pub fn steps(&self) -> &[Step] {
        &self.below.steps
    }

    pub fn take_steps(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.below.steps)
    }

    /// The random choices the run made, when they were scripted (`SimConfig::draws`).
    pub fn take_draws(&mut self) -> Vec<bool> {
        std::mem::take(&mut self.below.drawn)
    }

    /// What the tap saw, in the order it was transmitted (`None` without `config.capture`).
    pub fn take_capture(&mut self) -> Option<Vec<Transmission>> {
        self.below.tap.take().map(|tap| tap.into_frames())
    }

    /// Packets for the client node that arrived since the last call.
    pub fn take_inbox(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.below.inbox)
    }

    /// As [`Sim::take_inbox`], keeping the inbox's memory for the packets still to come.
    pub fn drain_inbox(&mut self) -> std::vec::Drain<'_, Received> {
        self.below.inbox.drain(..)
    }

    /// Packets delivered to `node`'s own addresses that are not answered by the kernel (echo
    /// replies, ICMP errors, TCP answers, UDP answers) are handed to the probe through the inbox.
    pub fn set_client(&mut self, node: NodeId) {
        self.below.client = Some(node);
    }

    /// Wakes the client at `at` (so `run_until` returns then).
    pub fn wake_at(&mut self, at: SimTime) {
        self.below.schedule(at, EventKind::Wake);
    }

    /// The stack of `self`'s nodes, over this run's links.
    fn stack(&mut self) -> Stack<'_, 'n, Wires<'_, 'n>> {
        Stack {
            dp: &self.dp,
            conntrack: &mut self.conntrack,
            link: Wires {
                dp: &self.dp,
                run: &mut self.below,
            },
        }
    }

    fn wires(&mut self) -> Wires<'_, 'n> {
        Wires {
            dp: &self.dp,
            run: &mut self.below,
        }
    }

    /// Sends a packet the client originates. Fails at once when the node has no route, as
    /// `connect()` and `sendto()` do; a packet to one of the node's own addresses loops back.
    pub fn originate(&mut self, node: NodeId, packet: Ipv4Packet) -> Result<(), SendError> {
        self.stack()
            .output(node, packet, DropReason::NoRouteAtSender)
    }

    /// The source address the node would use to reach `dst`, if it has a route.
    pub fn source_address(&self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.dp.source_address(node, dst)
    }

    /// Processes events up to and including time `until`; returns early when the client is
    /// woken or a packet reaches its inbox. Returns false when the run is over (queue empty,
    /// horizon or budget reached).
    pub fn run_until(&mut self, until: SimTime) -> bool {
        let horizon = SimTime::from_duration(self.below.config.horizon);
        while let Some(event) = self.below.queue.peek() {
            if event.at > until {
                self.below.now = until;
                return true;
            }
            if event.at > horizon {
                self.below.stopped = Some(Stopped::Horizon);
                return false;
            }
            if self.below.events >= self.below.config.max_events {
                self.below.stopped = Some(Stopped::EventBudget);
                return false;
            }
            self.below.queue.pop();
            self.below.events += 1;
            self.below.now = event.at;
            let inbox_before = self.below.inbox.len();
            match event.kind {
                EventKind::Arrive {
                    iface,
                    src,
                    dst,
                    payload,
                } => {
                    if let Some(tap) = self.below.tap.as_deref_mut() {
                        tap.arriving(event.seq);
                    }
                    self.arrive(iface, Frame { src, dst, payload })
                }
                EventKind::Loopback { node, packet } => self.stack().loopback_receive(node, packet),
                EventKind::ArpTimer { iface, ip } => self.arp_timer(iface, ip),
                EventKind::Wake => return true,
            }
            if self.below.inbox.len() > inbox_before {
                return true;
            }
        }
        self.below.now = self.below.now.max(until.min(horizon));
        false
    }

    fn arrive(&mut self, iface: IfaceId, frame: Frame) {
        if frame.dst != self.dp.mac(iface) && frame.dst != BROADCAST {
            return; // not for this NIC
        }
        let node = self.dp.node_of(iface);
        match frame.payload {
            FramePayload::Arp(arp) => self.wires().arp(iface, arp),
            // A unicast frame between two ports of a bridge whose owner judges what it bridges.
            FramePayload::Ip(packet) => match self.dp.hook_of(iface) {
                Some(bridge) if frame.dst != BROADCAST && frame.src != self.dp.mac(bridge) => {
                    // The sending port, as the segment's forwarding database learnt it.
                    let from = self
                        .dp
                        .mac_slot(iface, frame.src)
                        .and_then(|slot| self.below.fdb[slot].checked_sub(1))
                        .map(IfaceId);
                    if bridge == iface {
                        self.stack().receive_from(node, iface, from, packet)
                    } else {
                        self.stack().bridged(bridge, from, iface, packet)
                    }
                }
                _ => self.stack().receive(node, iface, packet),
            },
        }
    }

    /// Resends an ARP request, or gives up: the packets that waited fail.
    fn arp_timer(&mut self, out: IfaceId, ip: Ipv4Addr) {
        let Some(failed) = self.wires().arp_timer(out, ip) else {
            return;
        };
        let node = self.dp.node_of(out);
        for (packet, journey) in failed {
            let now = self.below.now;
            if let Some(tap) = self.below.tap.as_deref_mut() {
                tap.unresolved(now, out, packet, ip, journey);
            }
            self.stack().neighbour_failed(node, out, ip, packet);
        }
    }
}

impl Below {
    fn schedule(&mut self, at: SimTime, kind: EventKind) {
        self.seq += 1;
        let event = Event {
            at,
            seq: self.seq,
            kind,
        };
        // Timers lie far ahead; frames mostly come in time order (see `queue.rs`).
        match kind {
            EventKind::ArpTimer { .. } | EventKind::Wake => self.queue.push_far(event),
            EventKind::Arrive { .. } | EventKind::Loopback { .. } => self.queue.push(event),
        }
    }

    fn record(&mut self, node: NodeId, packet: Ipv4Packet, kind: StepKind) {
        if self.config.record {
            self.steps.push(Step {
                at: self.now,
                node,
                packet,
                kind,
            });
        }
    }
}

impl Link for Wires<'_, '_> {
    fn record(&mut self, node: NodeId, packet: Ipv4Packet, kind: StepKind) {
        self.run.record(node, packet, kind);
    }

    fn send(
        &mut self,
        out: IfaceId,
        nexthop: Ipv4Addr,
        _: Next,
        packet: Ipv4Packet,
        made_here: bool,
    ) {
        // A packet the node makes starts a journey of its own, also when it answers one.
        let outer = match self.run.tap.as_deref_mut() {
            Some(tap) if made_here => Some(tap.start_journey()),
            _ => None,
        };
        self.resolve_and_send(out, nexthop, packet);
        if let (Some(tap), Some(outer)) = (self.run.tap.as_deref_mut(), outer) {
            tap.resume(outer);
        }
    }

    fn loopback(&mut self, node: NodeId, packet: Ipv4Packet) {
        let at = self.run.now.after(self.run.config.node_delay);
        self.run.schedule(at, EventKind::Loopback { node, packet });
    }

    fn is_client(&self, node: NodeId) -> bool {
        self.run.client == Some(node)
    }

    fn to_client(&mut self, packet: Ipv4Packet) {
        let at = self.run.now;
        self.run.inbox.push(Received { at, packet });
    }

    fn now(&self) -> u64 {
        self.run.now.0
    }

    fn draw(&mut self, ppb: u32) -> bool {
        if let Some(script) = &self.run.config.draws {
            let choice = script.get(self.run.drawn.len()).copied().unwrap_or(false);
            self.run.drawn.push(choice);
            return choice;
        }
        (self.run.rng.next_u64() % 1_000_000_000) < u64::from(ppb)
    }

    fn learnt_gateway(&mut self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.run.redirects.is_empty() {
            return None;
        }
        self.run.redirects.get(&(node, dst)).copied()
    }

    /// As in __ip_do_redirect(), the advice is taken only once the new gateway's neighbour
    /// entry is valid: until then the kernel starts resolving it (neigh_event_send) and a later
    /// redirect counts.
    fn advised(&mut self, node: NodeId, dev: IfaceId, gateway: Ipv4Addr, dst: Ipv4Addr) {
        match self.run.neigh.get(dev, gateway) {
            Some(Neigh::Reachable(_)) => {
                self.run.redirects.insert((node, dst), gateway);
            }
            Some(Neigh::Incomplete { .. }) => {}
            None => {
                self.run.neigh.insert(
                    dev,
                    gateway,
                    Neigh::Incomplete {
                        probes: 1,
                        queue: Vec::new(),
                    },
                );
                self.send_arp_request(dev, gateway);
            }
        }
    }
}

impl Wires<'_, '_> {
    fn resolve_and_send(&mut self, out: IfaceId, nexthop: Ipv4Addr, packet: Ipv4Packet) {
        let journey = self.run.tap.as_deref().map_or(0, Tap::journey);
        match self.run.neigh.get_mut(out, nexthop) {
            Some(Neigh::Reachable(mac)) => {
                let dst = *mac;
                self.transmit(out, dst, FramePayload::Ip(packet));
            }
            Some(Neigh::Incomplete { queue, .. }) => {
                // Linux keeps a few packets per unresolved neighbour (unres_qlen).
                if queue.len() < 3 {
                    queue.push((packet, journey));
                }
            }
            None => {
                let entry = Neigh::Incomplete {
                    probes: 1,
                    queue: vec![(packet, journey)],
                };
                self.run.neigh.insert(out, nexthop, entry);
                self.send_arp_request(out, nexthop);
            }
        }
    }

    fn send_arp_request(&mut self, out: IfaceId, target_ip: Ipv4Addr) {
        let arp = Arp {
            op: ArpOp::Request,
            sender_mac: self.dp.mac(out),
            sender_ip: self.dp.arp_sender(out, target_ip),
            target_ip,
        };
        self.transmit(out, BROADCAST, FramePayload::Arp(arp));
        let at = self.run.now.after(self.run.config.arp_retrans);
        let timer = EventKind::ArpTimer {
            iface: out,
            ip: target_ip,
        };
        self.run.schedule(at, timer);
    }

    /// Resends the request for `ip`, or gives up on it: then the packets that waited, each
    /// with its journey.
    fn arp_timer(&mut self, out: IfaceId, ip: Ipv4Addr) -> Option<Vec<(Ipv4Packet, u32)>> {
        let probes = match self.run.neigh.get_mut(out, ip) {
            Some(Neigh::Incomplete { probes, .. }) => probes,
            _ => return None,
        };
        if *probes < self.run.config.arp_probes {
            *probes += 1;
            self.send_arp_request(out, ip);
            return None;
        }
        match self.run.neigh.remove(out, ip) {
            Some(Neigh::Incomplete { queue, .. }) => Some(queue),
            _ => None,
        }
    }

    /// Puts a frame on the wire of `out`'s segment: the bridge learns the source and forwards
    /// to the known port, or floods.
    fn transmit(&mut self, out: IfaceId, dst: MacAddr, payload: FramePayload) {
        let dp = self.dp;
        let frame = Frame {
            src: dp.mac(out),
            dst,
            payload,
        };
        self.run.fdb[dp.slot_of(out)] = out.0 + 1;
        let known = if dst == BROADCAST {
            None
        } else {
            dp.mac_slot(out, dst)
                .and_then(|slot| self.run.fdb[slot].checked_sub(1))
                .map(IfaceId)
        };
        let segment = dp.segment_of(out);
        let at = self
            .run
            .now
            .after(self.run.config.node_delay)
            .after(Duration::from_nanos(segment.latency_ns));
        if let Some(tap) = self.run.tap.as_deref_mut() {
            tap.transmitted(at, out, frame);
        }
        match known {
            Some(port) if port != out => self.deliver_frame(port, frame, at, segment.loss),
            Some(_) => {}
            None => {
                let ports = &dp
                    .network()
                    .segment(dp.network().interface(out).segment)
                    .interfaces;
                for &port in ports {
                    if port != out {
                        self.deliver_frame(port, frame, at, segment.loss);
                    }
                }
            }
        }
    }

    fn deliver_frame(&mut self, port: IfaceId, frame: Frame, at: SimTime, loss: f64) {
        if loss > 0.0 {
            let draw = (self.run.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if draw < loss {
                if let FramePayload::Ip(packet) = frame.payload {
                    let node = self.dp.node_of(port);
                    let segment = self.dp.network().interface(port).segment;
                    let reason = DropReason::Lost { segment };
                    let kind = StepKind::Dropped {
                        in_iface: Some(port),
                        reason,
                    };
                    self.run.record(node, packet, kind);
                }
                return;
            }
        }
        let Frame { src, dst, payload } = frame;
        self.run.schedule(
            at,
            EventKind::Arrive {
                iface: port,
                src,
                dst,
                payload,
            },
        );
        let seq = self.run.seq;
        if let Some(tap) = self.run.tap.as_deref_mut() {
            tap.scheduled(seq);
        }
    }

    fn arp(&mut self, iface: IfaceId, arp: Arp) {
        match arp.op {
            ArpOp::Request => {
                // The kernel answers and learns the asker; a user-space responder only answers.
                let kernel = self.dp.answers_arp(iface, arp.sender_ip, arp.target_ip);
                if !kernel && !self.dp.announces(iface, arp.target_ip) {
                    return;
                }
                self.learn(iface, arp.sender_ip, arp.sender_mac, kernel);
                let reply = Arp {
                    op: ArpOp::Reply,
                    sender_mac: self.dp.mac(iface),
                    sender_ip: arp.target_ip,
                    target_ip: arp.sender_ip,
                };
                self.transmit(iface, arp.sender_mac, FramePayload::Arp(reply));
            }
            ArpOp::Reply => self.learn(iface, arp.sender_ip, arp.sender_mac, false),
        }
    }

    /// Records a neighbour and sends what waited for it. `create`: a request addressed to us
    /// creates the entry; an unsolicited reply only updates one (arp_accept=0).
    fn learn(&mut self, iface: IfaceId, ip: Ipv4Addr, mac: MacAddr, create: bool) {
        let waiting = match self.run.neigh.get_mut(iface, ip) {
            Some(entry) => match std::mem::replace(entry, Neigh::Reachable(mac)) {
                Neigh::Incomplete { queue, .. } => queue,
                Neigh::Reachable(_) => Vec::new(),
            },
            None if create => {
                self.run.neigh.insert(iface, ip, Neigh::Reachable(mac));
                Vec::new()
            }
            None => Vec::new(),
        };
        for (packet, journey) in waiting {
            if let Some(tap) = self.run.tap.as_deref_mut() {
                tap.resume(journey);
            }
            self.transmit(iface, mac, FramePayload::Ip(packet));
        }
    }
}
