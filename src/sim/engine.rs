//! The discrete-event engine and the dataplane.
//!
//! Events are ordered by (time, sequence number); the one RNG is ChaCha8 seeded from the
//! configuration, and it is drawn only where a segment has loss, so the same topology and seed
//! always give the same run. A run ends when the queue is empty, at the time horizon, or when the
//! event budget is spent, and says which, so that a forwarding loop can never hang it.
//!
//! The dataplane follows Linux (docs/linux-semantics.md, "Packet flow" and the sections after it):
//! - segments are learning bridges: unknown and broadcast destinations are flooded;
//! - ARP with a neighbour cache; an unanswered request is sent 3 times, 1 s apart, then the
//!   queued packets fail with ICMP host unreachable (to a local sender, from its own address);
//! - local delivery for the node's own addresses on any interface (weak host) and 127.0.0.0/8;
//! - forwarding only with `forwarding: true` (silent drop otherwise); the route is looked up
//!   first (no route: ICMP net unreachable), then the TTL (≤ 1: ICMP time exceeded);
//! - ICMP errors take the source address the route back to the sender prefers, are never sent
//!   about ICMP errors, and are not sent when no route leads back.
//!
//! With [`SimConfig::capture`] on, every frame `transmit` puts on a segment goes to the capture
//! tap ([`super::tap`]) as sent: `--pcap` writes those frames, it does not work them out again.

use rustc_hash::FxHashMap as HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::conntrack::{Conntrack, Dir, Tuple, set_dst, set_inner, set_src};
use super::packet::{
    Arp, ArpOp, BROADCAST, Frame, FramePayload, IcmpError, Ipv4Packet, TcpFlags, Transport,
};
use super::queue::EventQueue;
use super::tap::{Tap, Transmission};
use super::time::SimTime;
use super::trace::{DropReason, Step, StepKind};
use crate::model::{
    ChainName, IfaceId, L4, Lookup, MacAddr, NatAction, NatHook, Netfilter, Network, NodeId,
    PacketFacts, Port, Proto, RejectWith, Route, RouteType, SegmentId, States, Verdict,
};

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
    /// A frame reaches an interface.
    Arrive { iface: IfaceId, frame: Frame },
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

#[derive(Debug)]
enum Neigh {
    Reachable(MacAddr),
    /// Resolving; the packets waiting, each with its journey (for the tap; 0 without one).
    Incomplete {
        probes: u8,
        queue: Vec<(Ipv4Packet, u32)>,
    },
}

/// What conntrack said about a packet on its way through a node.
#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// The connection it belongs to, when known.
    conn: Option<(u32, Dir)>,
    state: States,
    /// For a new connection: its tuple as it arrived, before any NAT.
    orig: Option<Tuple>,
}

/// A packet that reached the probe's client: what arrived, when, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub at: SimTime,
    pub packet: Ipv4Packet,
}

/// Why a locally generated packet could not be sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No route to the destination: the socket call fails with ENETUNREACH.
    NoRoute,
    /// The route to the destination is a `blackhole`, `unreachable` or `prohibit` route: the
    /// socket call fails with EINVAL, EHOSTUNREACH or EACCES.
    Rejected(RouteType),
}

/// One simulation run over a network.
pub struct Sim<'n> {
    net: &'n Network,
    config: SimConfig,
    now: SimTime,
    seq: u64,
    events: u64,
    queue: EventQueue<Event>,
    rng: ChaCha8Rng,
    /// The bridges' forwarding databases: (segment, MAC) → port learnt. One map for all
    /// segments, filled as frames flow, so a run costs nothing for the parts it never touches.
    fdb: HashMap<(SegmentId, MacAddr), IfaceId>,
    /// Neighbour caches: (interface, IPv4) → state (an interface id names its node).
    neigh: HashMap<(IfaceId, Ipv4Addr), Neigh>,
    /// Connections tracked by nodes with netfilter rules.
    conntrack: Conntrack,
    /// Next hops learnt from ICMP redirects by hosts: (node, destination) → gateway.
    redirects: HashMap<(NodeId, Ipv4Addr), Ipv4Addr>,
    client: Option<NodeId>,
    inbox: Vec<Received>,
    steps: Vec<Step>,
    stopped: Option<Stopped>,
    /// The capture tap, with `config.capture` only.
    tap: Option<Box<Tap>>,
}

impl<'n> Sim<'n> {
    pub fn new(net: &'n Network, config: SimConfig) -> Self {
        Self {
            net,
            tap: config.capture.then(Box::default),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            now: SimTime::ZERO,
            seq: 0,
            events: 0,
            queue: EventQueue::default(),
            fdb: HashMap::default(),
            neigh: HashMap::default(),
            redirects: HashMap::default(),
            conntrack: Conntrack::default(),
            client: None,
            inbox: Vec::new(),
            steps: Vec::new(),
            stopped: None,
        }
    }

    pub fn network(&self) -> &'n Network {
        self.net
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Why the run stopped early, if it did.
    pub fn stopped(&self) -> Option<Stopped> {
        self.stopped
    }

    /// The hops recorded so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn take_steps(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.steps)
    }

    /// What the tap saw, in the order it was transmitted (`None` without `config.capture`).
    pub fn take_capture(&mut self) -> Option<Vec<Transmission>> {
        self.tap.take().map(|tap| tap.into_frames())
    }

    /// Packets for the client node that arrived since the last call.
    pub fn take_inbox(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.inbox)
    }

    /// Packets delivered to `node`'s own addresses that are not answered by the kernel (echo
    /// replies, ICMP errors, TCP answers, UDP answers) are handed to the probe through the inbox.
    pub fn set_client(&mut self, node: NodeId) {
        self.client = Some(node);
    }

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

    /// Wakes the client at `at` (so `run_until` returns then).
    pub fn wake_at(&mut self, at: SimTime) {
        self.schedule(at, EventKind::Wake);
    }

    /// Processes events up to and including time `until`; returns early when the client is
    /// woken or a packet reaches its inbox. Returns false when the run is over (queue empty,
    /// horizon or budget reached).
    pub fn run_until(&mut self, until: SimTime) -> bool {
        let horizon = SimTime::from_duration(self.config.horizon);
        while let Some(event) = self.queue.peek() {
            if event.at > until {
                self.now = until;
                return true;
            }
            if event.at > horizon {
                self.stopped = Some(Stopped::Horizon);
                return false;
            }
            if self.events >= self.config.max_events {
                self.stopped = Some(Stopped::EventBudget);
                return false;
            }
            self.queue.pop();
            self.events += 1;
            self.now = event.at;
            let inbox_before = self.inbox.len();
            match event.kind {
                EventKind::Arrive { iface, frame } => {
                    if let Some(tap) = self.tap.as_deref_mut() {
                        tap.arriving(event.seq);
                    }
                    self.arrive(iface, frame)
                }
                EventKind::Loopback { node, packet } => self.loopback_receive(node, packet),
                EventKind::ArpTimer { iface, ip } => self.arp_timer(iface, ip),
                EventKind::Wake => return true,
            }
            if self.inbox.len() > inbox_before {
                return true;
            }
        }
        self.now = self.now.max(until.min(horizon));
        false
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

    // ------------------------------------------------------------------ addresses and routes

    fn is_local(&self, node: NodeId, addr: Ipv4Addr) -> bool {
        addr.is_loopback()
            || self
                .net
                .interfaces_of(self.net.node(node))
                .any(|i| i.addresses.iter().any(|a| a.addr() == addr))
    }

    /// The source address Linux picks for a packet sent along `route` (inet_select_addr): the
    /// route's preferred source, else an address of the device in the next hop's subnet, else
    /// the device's first address.
    pub fn source_for(&self, route: &Route, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.net.source_for(route, dst)
    }

    /// Sends a packet the client originates. Fails at once when the node has no route, as
    /// `connect()` and `sendto()` do; a packet to one of the node's own addresses loops back.
    pub fn originate(&mut self, node: NodeId, packet: Ipv4Packet) -> Result<(), SendError> {
        self.output(node, packet, DropReason::NoRouteAtSender)
    }

    /// The source address the node would use to reach `dst`, if it has a route.
    pub fn source_address(&self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.is_local(node, dst) {
            return Some(dst);
        }
        let (_, route) = self.lookup(node, dst)?;
        self.source_for(route, dst)
    }

    fn lookup(&self, node: NodeId, dst: Ipv4Addr) -> Option<(usize, &'n Route)> {
        self.net.node(node).routes.lookup_indexed(dst)
    }

    /// Sends a packet the node's kernel generates (replies, errors). Silently dropped without a
    /// route back, as the kernel does.
    fn reply(&mut self, node: NodeId, packet: Ipv4Packet) {
        let _ = self.output(node, packet, DropReason::NoRouteBack);
    }

    /// The local output path (docs/linux-semantics.md, "Packet flow"): the route for the original
    /// destination first (no route: the call fails, before any NAT rule is seen), then conntrack
    /// and nat OUTPUT, re-routing if the destination changed (inside the nat OUTPUT hook, as
    /// `ip_route_me_harder`), filter OUTPUT, nat POSTROUTING.
    fn output(
        &mut self,
        node: NodeId,
        packet: Ipv4Packet,
        no_route: DropReason,
    ) -> Result<(), SendError> {
        let local = self.is_local(node, packet.dst);
        if !local {
            let (reason, error) = match self.net.node(node).routes.resolve(packet.dst) {
                Some(Lookup::Route(..)) => (None, SendError::NoRoute),
                None => (Some(no_route), SendError::NoRoute),
                // ip_route_output_key fails with the route type's error (fib_props).
                Some(Lookup::Reject(r)) => (
                    Some(DropReason::RejectRoute(r.kind)),
                    SendError::Rejected(r.kind),
                ),
            };
            if let Some(reason) = reason {
                self.record(
                    node,
                    packet,
                    StepKind::Dropped {
                        in_iface: None,
                        reason,
                    },
                );
                return Err(error);
            }
        }
        let mut packet = packet;
        if let Some(nf) = self.net.node(node).netfilter.as_deref() {
            let track = self.track(node, &mut packet, None, nf, NatHook::Output);
            let out = if self.is_local(node, packet.dst) {
                None
            } else {
                self.lookup(node, packet.dst).map(|(_, r)| r.dev)
            };
            // An OUTPUT DNAT of 127.0.0.1 to another host keeps the loopback source, which may
            // not leave a real interface: the re-routing fails and the packet is dropped
            // (route_localnet=0; docs/linux-semantics.md, "Loopback traffic").
            if out.is_some() && packet.src.is_loopback() {
                self.record(
                    node,
                    packet,
                    StepKind::Dropped {
                        in_iface: None,
                        reason: DropReason::LoopbackSource,
                    },
                );
                return Ok(());
            }
            if self.is_local(node, packet.dst) || out.is_some() {
                if !self.enforce(node, nf, ChainName::Output, &packet, None, out, &track) {
                    return Ok(());
                }
                if let Some(out) = out {
                    self.postrouting(node, nf, &mut packet, out, &track);
                }
                self.confirm(node, &packet, &track);
            }
        }
        if self.is_local(node, packet.dst) {
            self.record(
                node,
                packet,
                StepKind::Sent {
                    out: None,
                    route: None,
                    nexthop: packet.dst,
                },
            );
            let at = self.now.after(self.config.node_delay);
            self.schedule(at, EventKind::Loopback { node, packet });
            return Ok(());
        }
        let Some((index, route)) = self.lookup(node, packet.dst) else {
            self.record(
                node,
                packet,
                StepKind::Dropped {
                    in_iface: None,
                    reason: no_route,
                },
            );
            return Err(SendError::NoRoute);
        };
        let nexthop = self
            .redirects
            .get(&(node, packet.dst))
            .copied()
            .unwrap_or_else(|| route.gateway.unwrap_or(packet.dst));
        self.record(
            node,
            packet,
            StepKind::Sent {
                out: Some(route.dev),
                route: Some(index),
                nexthop,
            },
        );
        // A packet the node makes starts a journey of its own, also when it answers one.
        let outer = self.tap.as_deref_mut().map(Tap::start_journey);
        self.resolve_and_send(route.dev, nexthop, packet);
        if let (Some(tap), Some(outer)) = (self.tap.as_deref_mut(), outer) {
            tap.resume(outer);
        }
        Ok(())
    }

    /// Sends an ICMP error about `about` back to its sender.
    fn icmp_error(
        &mut self,
        node: NodeId,
        about: &Ipv4Packet,
        error: IcmpError,
        local_src: Option<Ipv4Addr>,
    ) {
        let Some(original) = about.inner() else {
            return;
        };
        if about.src.is_unspecified() || about.src.is_broadcast() || about.src.is_multicast() {
            return;
        }
        let src = match local_src {
            Some(src) => Some(src),
            None => self.source_address(node, about.src),
        };
        let Some(src) = src else {
            self.record(
                node,
                *about,
                StepKind::Dropped {
                    in_iface: None,
                    reason: DropReason::NoRouteBack,
                },
            );
            return;
        };
        let packet = Ipv4Packet {
            src,
            dst: about.src,
            ttl: self.net.node(node).os.initial_ttl(),
            transport: Transport::IcmpError { error, original },
        };
        self.reply(node, packet);
    }

    // ------------------------------------------------------------------ L2

    fn resolve_and_send(&mut self, out: IfaceId, nexthop: Ipv4Addr, packet: Ipv4Packet) {
        let key = (out, nexthop);
        let journey = self.tap.as_deref().map_or(0, Tap::journey);
        match self.neigh.get_mut(&key) {
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
                self.neigh.insert(
                    key,
                    Neigh::Incomplete {
                        probes: 1,
                        queue: vec![(packet, journey)],
                    },
                );
                self.send_arp_request(out, nexthop);
            }
        }
    }

    fn send_arp_request(&mut self, out: IfaceId, target_ip: Ipv4Addr) {
        let iface = self.net.interface(out);
        let sender_ip = iface
            .addresses
            .iter()
            .find(|a| a.contains(&target_ip))
            .or_else(|| iface.addresses.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr());
        let arp = Arp {
            op: ArpOp::Request,
            sender_mac: iface.mac,
            sender_ip,
            target_ip,
        };
        self.transmit(out, BROADCAST, FramePayload::Arp(arp));
        let at = self.now.after(self.config.arp_retrans);
        self.schedule(
            at,
            EventKind::ArpTimer {
                iface: out,
                ip: target_ip,
            },
        );
    }

    fn arp_timer(&mut self, out: IfaceId, ip: Ipv4Addr) {
        let node = self.net.interface(out).node;
        let table = &mut self.neigh;
        let Some(Neigh::Incomplete { probes, .. }) = table.get_mut(&(out, ip)) else {
            return;
        };
        if *probes < self.config.arp_probes {
            *probes += 1;
            self.send_arp_request(out, ip);
            return;
        }
        let Some(Neigh::Incomplete { queue, .. }) = table.remove(&(out, ip)) else {
            return;
        };
        for (packet, journey) in queue {
            if let Some(tap) = self.tap.as_deref_mut() {
                tap.unresolved(self.now, out, packet, ip, journey);
            }
            self.record(
                node,
                packet,
                StepKind::Dropped {
                    in_iface: None,
                    reason: DropReason::ArpFailed {
                        iface: out,
                        nexthop: ip,
                    },
                },
            );
            // A local sender hears it from its own address; a forwarded packet's sender from us.
            let local = self.is_local(node, packet.src).then_some(packet.src);
            self.icmp_error(node, &packet, IcmpError::HostUnreachable, local);
        }
    }

    /// Puts a frame on the wire of `out`'s segment: the bridge learns the source and forwards
    /// to the known port, or floods.
    fn transmit(&mut self, out: IfaceId, dst: MacAddr, payload: FramePayload) {
        let iface = self.net.interface(out);
        let frame = Frame {
            src: iface.mac,
            dst,
            payload,
        };
        let segment = self.net.segment(iface.segment);
        self.fdb.insert((segment.id, iface.mac), out);
        let known = if dst == BROADCAST {
            None
        } else {
            self.fdb.get(&(segment.id, dst)).copied()
        };
        let at = self.now.after(self.config.node_delay + segment.latency);
        if let Some(tap) = self.tap.as_deref_mut() {
            tap.transmitted(at, out, frame);
        }
        match known {
            Some(port) if port != out => self.deliver_frame(port, frame, at, segment.loss),
            Some(_) => {}
            None => {
                for index in 0..segment.interfaces.len() {
                    let port = segment.interfaces[index];
                    if port != out {
                        self.deliver_frame(port, frame, at, segment.loss);
                    }
                }
            }
        }
    }

    fn deliver_frame(&mut self, port: IfaceId, frame: Frame, at: SimTime, loss: f64) {
        if loss > 0.0 {
            let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if draw < loss {
                if let FramePayload::Ip(packet) = frame.payload {
                    let node = self.net.interface(port).node;
                    let segment = self.net.interface(port).segment;
                    self.record(
                        node,
                        packet,
                        StepKind::Dropped {
                            in_iface: Some(port),
                            reason: DropReason::Lost { segment },
                        },
                    );
                }
                return;
            }
        }
        self.schedule(at, EventKind::Arrive { iface: port, frame });
        if let Some(tap) = self.tap.as_deref_mut() {
            tap.scheduled(self.seq);
        }
    }

    fn arrive(&mut self, iface_id: IfaceId, frame: Frame) {
        let iface = self.net.interface(iface_id);
        if frame.dst != iface.mac && frame.dst != BROADCAST {
            return; // not for this NIC
        }
        let node = iface.node;
        match frame.payload {
            FramePayload::Arp(arp) => self.arp(node, iface_id, arp),
            FramePayload::Ip(packet) => self.ip_receive(node, iface_id, packet),
        }
    }

    fn arp(&mut self, node: NodeId, iface_id: IfaceId, arp: Arp) {
        match arp.op {
            ArpOp::Request => {
                // arp_ignore=0: answer for any local address, on any interface.
                if !self.is_local(node, arp.target_ip) || arp.target_ip.is_loopback() {
                    return;
                }
                self.learn(iface_id, arp.sender_ip, arp.sender_mac, true);
                let mac = self.net.interface(iface_id).mac;
                let reply = Arp {
                    op: ArpOp::Reply,
                    sender_mac: mac,
                    sender_ip: arp.target_ip,
                    target_ip: arp.sender_ip,
                };
                self.transmit(iface_id, arp.sender_mac, FramePayload::Arp(reply));
            }
            ArpOp::Reply => self.learn(iface_id, arp.sender_ip, arp.sender_mac, false),
        }
    }

    /// Records a neighbour and sends what waited for it. `create`: a request addressed to us
    /// creates the entry; an unsolicited reply only updates one (arp_accept=0).
    fn learn(&mut self, iface: IfaceId, ip: Ipv4Addr, mac: MacAddr, create: bool) {
        let table = &mut self.neigh;
        let waiting = match table.get_mut(&(iface, ip)) {
            Some(entry) => match std::mem::replace(entry, Neigh::Reachable(mac)) {
                Neigh::Incomplete { queue, .. } => queue,
                Neigh::Reachable(_) => Vec::new(),
            },
            None if create => {
                table.insert((iface, ip), Neigh::Reachable(mac));
                Vec::new()
            }
            None => Vec::new(),
        };
        for (packet, journey) in waiting {
            if let Some(tap) = self.tap.as_deref_mut() {
                tap.resume(journey);
            }
            self.transmit(iface, mac, FramePayload::Ip(packet));
        }
    }

    // ------------------------------------------------------------------ L3

    fn ip_receive(&mut self, node: NodeId, in_iface: IfaceId, packet: Ipv4Packet) {
        // fib_validate_source: a packet from the wire claiming one of our own addresses as its
        // source is a martian, dropped before routing (accept_local=0).
        if self.is_local(node, packet.src) {
            return self.record(
                node,
                packet,
                StepKind::Dropped {
                    in_iface: Some(in_iface),
                    reason: DropReason::MartianSource,
                },
            );
        }
        let nf = self.net.node(node).netfilter.as_deref();
        let mut packet = packet;
        let arrived = packet;
        let track = match nf {
            Some(nf) => self.track(node, &mut packet, Some(in_iface), nf, NatHook::Prerouting),
            None => Track::default(),
        };
        // mangle PREROUTING: after conntrack, before the DNAT above changed anything.
        if let Some(nf) = nf
            && !self.enforce(
                node,
                nf,
                ChainName::Prerouting,
                &arrived,
                Some(in_iface),
                None,
                &track,
            )
        {
            return;
        }
        if self.is_local(node, packet.dst) {
            if let Some(nf) = nf {
                if !self.enforce(
                    node,
                    nf,
                    ChainName::Input,
                    &packet,
                    Some(in_iface),
                    None,
                    &track,
                ) {
                    return;
                }
                // nat INPUT: an answer to a connection this node translated gets its source
                // back (the source half of the translation, for local delivery).
                self.source_half(node, &mut packet, &track, NatHook::Prerouting);
                self.confirm(node, &packet, &track);
            }
            return self.local_deliver(node, Some(in_iface), packet);
        }
        if !self.net.node(node).forwarding {
            return self.record(
                node,
                packet,
                StepKind::Dropped {
                    in_iface: Some(in_iface),
                    reason: DropReason::ForwardingDisabled,
                },
            );
        }
        let (index, route) = match self.net.node(node).routes.resolve(packet.dst) {
            Some(Lookup::Route(index, route)) => (index, route),
            None => {
                self.record(
                    node,
                    packet,
                    StepKind::Dropped {
                        in_iface: Some(in_iface),
                        reason: DropReason::NoRoute,
                    },
                );
                return self.icmp_error(node, &packet, IcmpError::NetUnreachable, None);
            }
            // ip_route_input_slow: the lookup fails with the type's error and ip_error()
            // answers (before the TTL check and the FORWARD chain): EHOSTUNREACH → host
            // unreachable, EACCES → packet filtered, EINVAL (blackhole) → nothing.
            Some(Lookup::Reject(r)) => {
                self.record(
                    node,
                    packet,
                    StepKind::Dropped {
                        in_iface: Some(in_iface),
                        reason: DropReason::RejectRoute(r.kind),
                    },
                );
                return match r.kind {
                    RouteType::Blackhole => {}
                    RouteType::Unreachable => {
                        self.icmp_error(node, &packet, IcmpError::HostUnreachable, None)
                    }
                    RouteType::Prohibit => {
                        self.icmp_error(node, &packet, IcmpError::AdminProhibited, None)
                    }
                };
            }
        };
        if packet.ttl <= 1 {
            self.record(
                node,
                packet,
                StepKind::Dropped {
                    in_iface: Some(in_iface),
                    reason: DropReason::TtlExpired,
                },
            );
            return self.icmp_error(node, &packet, IcmpError::TtlExceeded, None);
        }
        let received = packet;
        let mut forwarded = Ipv4Packet {
            ttl: packet.ttl - 1,
            ..packet
        };
        let nexthop = route.gateway.unwrap_or(forwarded.dst);
        let redirect = self.redirect(node, in_iface, route.dev, &arrived, &received, nexthop);
        if let Some(nf) = nf {
            if !self.enforce(
                node,
                nf,
                ChainName::Forward,
                &forwarded,
                Some(in_iface),
                Some(route.dev),
                &track,
            ) {
                // ip_forward() sends the redirect before the FORWARD hook: also about a packet
                // the filter then drops (docs/linux-semantics.md, "Redirects").
                if let Some(redirect) = redirect {
                    self.reply(node, redirect);
                }
                return;
            }
            self.postrouting(node, nf, &mut forwarded, route.dev, &track);
            self.confirm(node, &forwarded, &track);
        }
        self.record(
            node,
            forwarded,
            StepKind::Forwarded {
                in_iface,
                out: route.dev,
                route: index,
                nexthop,
            },
        );
        self.resolve_and_send(route.dev, nexthop, forwarded);
        if let Some(redirect) = redirect {
            self.reply(node, redirect);
        }
    }

    /// The ICMP redirect a router sends about a packet it forwards out the way it came, to a
    /// sender on that link: the better next hop (send_redirects=1; __mkroute_input sets
    /// IPSKB_DOREDIRECT). None about a packet this node DNATed: the kernel counts such a
    /// redirect as sent, but it never reaches the sender (docs/linux-semantics.md, "Redirects").
    fn redirect(
        &self,
        node: NodeId,
        in_iface: IfaceId,
        out: IfaceId,
        arrived: &Ipv4Packet,
        received: &Ipv4Packet,
        nexthop: Ipv4Addr,
    ) -> Option<Ipv4Packet> {
        let on_link = |a: &ipnet::Ipv4Net| a.contains(&received.src) && a.contains(&nexthop);
        if out != in_iface
            || arrived.dst != received.dst
            || !self.net.interface(in_iface).addresses.iter().any(on_link)
        {
            return None;
        }
        let original = received.inner()?;
        let src = self.source_address(node, received.src)?;
        Some(Ipv4Packet {
            src,
            dst: received.src,
            ttl: self.net.node(node).os.initial_ttl(),
            transport: Transport::Redirect {
                gateway: nexthop,
                original,
            },
        })
    }

    // ------------------------------------------------------------------ netfilter

    fn facts(
        &self,
        node: NodeId,
        packet: &Ipv4Packet,
        in_iface: Option<IfaceId>,
        out_iface: Option<IfaceId>,
        state: States,
    ) -> PacketFacts {
        let (proto, dport) = match packet.transport {
            Transport::Tcp { dport, .. } => (L4::Tcp, Some(dport)),
            Transport::Udp { dport, .. } => (L4::Udp, Some(dport)),
            _ => (L4::Icmp, None),
        };
        PacketFacts {
            in_iface,
            out_iface,
            src: packet.src,
            dst: packet.dst,
            proto,
            dport,
            state,
            dst_local: self.is_local(node, packet.dst),
        }
    }

    /// Conntrack and the destination half of NAT (PREROUTING or OUTPUT): a known connection's
    /// translation, or the first matching DNAT rule for a new one; ICMP errors about a tracked
    /// connection are RELATED and translated back, outer and quoted header alike.
    fn track(
        &mut self,
        node: NodeId,
        packet: &mut Ipv4Packet,
        in_iface: Option<IfaceId>,
        nf: &Netfilter,
        hook: NatHook,
    ) -> Track {
        let before = *packet;
        if let Transport::IcmpError { original, .. } | Transport::Redirect { original, .. } =
            &mut packet.transport
        {
            let quoted = Tuple::of_inner(original);
            let Some((id, dir)) = self.conntrack.lookup(node, quoted.reversed()) else {
                return Track {
                    state: States::NEW,
                    ..Track::default()
                };
            };
            // The error goes the way answers to the quoted packet go; make both headers look
            // as they did before this node translated the quoted packet.
            let conn = *self.conntrack.get(id);
            let quoted_before = match dir {
                Dir::Reply => conn.orig,
                Dir::Original => conn.reply,
            };
            if packet.src == quoted.dst {
                packet.src = quoted_before.dst;
            }
            packet.dst = quoted_before.src;
            set_inner(original, quoted_before);
            self.record_translation(node, before, *packet, hook);
            return Track {
                conn: None,
                state: States::RELATED,
                orig: None,
            };
        }
        let Some(tuple) = Tuple::of(packet) else {
            return Track::default();
        };
        if let Some((id, dir)) = self.conntrack.lookup(node, tuple) {
            let conn = *self.conntrack.get(id);
            if dir == Dir::Reply {
                self.conntrack.mark_reply_seen(id);
            }
            let target = conn.target(dir);
            set_dst(packet, target.dst, target.dport);
            self.record_translation(node, before, *packet, hook);
            let dnat = conn.orig.dst != conn.reply.src || conn.orig.dport != conn.reply.sport;
            let state = if dnat {
                conn.state(dir).with(States::DNAT)
            } else {
                conn.state(dir)
            };
            return Track {
                conn: Some((id, dir)),
                state,
                orig: None,
            };
        }
        let facts = self.facts(node, packet, in_iface, None, States::NEW);
        let mut state = States::NEW;
        if let Some((index, rule)) = nf.nat_rule(hook, &facts, |ppb| Self::draw(&mut self.rng, ppb))
            && let NatAction::Dnat(addr, port) = rule.action
        {
            state = state.with(States::DNAT);
            let dport = port.map_or(tuple.dport, Port::get);
            set_dst(packet, addr, dport);
            self.record(
                node,
                *packet,
                StepKind::Translated {
                    hook,
                    rule: Some(index),
                    before,
                },
            );
        }
        Track {
            conn: None,
            state,
            orig: Some(tuple),
        }
    }

    /// The source half of NAT (POSTROUTING): a known connection's translation, or the first
    /// matching SNAT/MASQUERADE rule for a new one.
    fn postrouting(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        packet: &mut Ipv4Packet,
        out: IfaceId,
        track: &Track,
    ) {
        let before = *packet;
        if track.conn.is_some() {
            self.source_half(node, packet, track, NatHook::Postrouting);
        } else if track.orig.is_some() {
            let facts = self.facts(node, packet, None, Some(out), track.state);
            if let Some((index, rule)) = nf.nat_rule(NatHook::Postrouting, &facts, |ppb| {
                Self::draw(&mut self.rng, ppb)
            }) {
                let to = match rule.action {
                    NatAction::Snat(addr) => Some(addr),
                    NatAction::Masquerade => {
                        let iface = self.net.interface(out);
                        let hop = self
                            .lookup(node, packet.dst)
                            .map_or(packet.dst, |(_, r)| r.gateway.unwrap_or(packet.dst));
                        iface
                            .addresses
                            .iter()
                            .find(|a| a.contains(&hop))
                            .or_else(|| iface.addresses.first())
                            .map(|a| a.addr())
                    }
                    NatAction::Dnat(..) => None,
                };
                if let Some(to) = to {
                    let sport = Tuple::of(packet).map_or(0, |t| t.sport);
                    set_src(packet, to, sport);
                    if *packet != before {
                        let kind = StepKind::Translated {
                            hook: NatHook::Postrouting,
                            rule: Some(index),
                            before,
                        };
                        self.record(node, *packet, kind);
                    }
                }
            }
        }
    }

    /// True with probability `ppb` parts per billion, from the run's seeded RNG.
    fn draw(rng: &mut ChaCha8Rng, ppb: u32) -> bool {
        (rng.next_u64() % 1_000_000_000) < u64::from(ppb)
    }

    /// Records that a known connection's translation changed a packet (when it did).
    fn record_translation(
        &mut self,
        node: NodeId,
        before: Ipv4Packet,
        after: Ipv4Packet,
        hook: NatHook,
    ) {
        if after != before {
            self.record(
                node,
                after,
                StepKind::Translated {
                    hook,
                    rule: None,
                    before,
                },
            );
        }
    }

    /// Applies a known connection's source translation.
    fn source_half(&mut self, node: NodeId, packet: &mut Ipv4Packet, track: &Track, hook: NatHook) {
        let Some((id, dir)) = track.conn else { return };
        let before = *packet;
        let target = self.conntrack.get(id).target(dir);
        set_src(packet, target.src, target.sport);
        self.record_translation(node, before, *packet, hook);
    }

    /// Records a new connection once its first packet is accepted and translated.
    fn confirm(&mut self, node: NodeId, leaving: &Ipv4Packet, track: &Track) {
        if let (Some(orig), Some(leaving)) = (track.orig, Tuple::of(leaving)) {
            self.conntrack.confirm(node, orig, leaving);
        }
    }

    /// Runs a filter chain; false when the packet does not pass. A REJECT answers first.
    #[allow(clippy::too_many_arguments)]
    fn enforce(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        chain: ChainName,
        packet: &Ipv4Packet,
        in_iface: Option<IfaceId>,
        out_iface: Option<IfaceId>,
        track: &Track,
    ) -> bool {
        let rules = nf.chain(chain);
        if rules.is_open() {
            return true;
        }
        let facts = self.facts(node, packet, in_iface, out_iface, track.state);
        let (verdict, decider) = rules.judge(&facts);
        self.record(
            node,
            *packet,
            StepKind::Filtered {
                chain,
                decider,
                verdict,
                in_iface,
            },
        );
        match verdict {
            Verdict::Accept => true,
            Verdict::Drop => false,
            Verdict::Reject(with) => {
                let local = (chain == ChainName::Input).then_some(packet.dst);
                match with {
                    RejectWith::TcpReset => {
                        if let Transport::Tcp { sport, dport, .. } = packet.transport {
                            let ttl = self.net.node(node).os.initial_ttl();
                            let rst = Ipv4Packet {
                                src: packet.dst,
                                dst: packet.src,
                                ttl,
                                transport: Transport::Tcp {
                                    sport: dport,
                                    dport: sport,
                                    flags: TcpFlags::Rst,
                                },
                            };
                            self.reply(node, rst);
                        }
                    }
                    RejectWith::PortUnreachable => {
                        self.icmp_error(node, packet, IcmpError::PortUnreachable, local)
                    }
                    RejectWith::HostUnreachable => {
                        self.icmp_error(node, packet, IcmpError::HostUnreachable, local)
                    }
                    RejectWith::NetUnreachable => {
                        self.icmp_error(node, packet, IcmpError::NetUnreachable, local)
                    }
                    RejectWith::AdminProhibited => {
                        self.icmp_error(node, packet, IcmpError::AdminProhibited, local)
                    }
                }
                false
            }
        }
    }

    /// A packet the node sent to one of its own addresses comes back in through `lo`: mangle
    /// PREROUTING and filter INPUT judge it like any packet received (with no interface of the
    /// file: rules with `in:` do not match it), and conntrack keeps the state it had on the way
    /// out (the first packet of a connection is still NEW). The nat chains are not seen again.
    /// docs/linux-semantics.md, "Loopback traffic".
    fn loopback_receive(&mut self, node: NodeId, packet: Ipv4Packet) {
        let mut packet = packet;
        if let Some(nf) = self.net.node(node).netfilter.as_deref() {
            let track = self.track(node, &mut packet, None, nf, NatHook::Prerouting);
            for chain in [ChainName::Prerouting, ChainName::Input] {
                if !self.enforce(node, nf, chain, &packet, None, None, &track) {
                    return;
                }
            }
            self.confirm(node, &packet, &track);
        }
        self.local_deliver(node, None, packet)
    }

    fn local_deliver(&mut self, node: NodeId, in_iface: Option<IfaceId>, packet: Ipv4Packet) {
        self.record(node, packet, StepKind::Delivered { in_iface });
        let ttl = self.net.node(node).os.initial_ttl();
        let client = self.client == Some(node);
        match packet.transport {
            Transport::EchoRequest { id, seq } => {
                let answer = Ipv4Packet {
                    src: packet.dst,
                    dst: packet.src,
                    ttl,
                    transport: Transport::EchoReply { id, seq },
                };
                self.reply(node, answer);
            }
            Transport::Tcp {
                sport,
                dport,
                flags: TcpFlags::Syn,
            } => {
                let flags = if self.listening(node, Proto::Tcp, packet.dst, dport) {
                    TcpFlags::SynAck
                } else {
                    TcpFlags::Rst
                };
                if flags == TcpFlags::Rst {
                    self.record(node, packet, StepKind::Refused);
                }
                let answer = Ipv4Packet {
                    src: packet.dst,
                    dst: packet.src,
                    ttl,
                    transport: Transport::Tcp {
                        sport: dport,
                        dport: sport,
                        flags,
                    },
                };
                self.reply(node, answer);
            }
            Transport::Udp { sport, dport } if !client || !self.is_client_port(sport, dport) => {
                if self.listening(node, Proto::Udp, packet.dst, dport) {
                    let answer = Ipv4Packet {
                        src: packet.dst,
                        dst: packet.src,
                        ttl,
                        transport: Transport::Udp {
                            sport: dport,
                            dport: sport,
                        },
                    };
                    self.reply(node, answer);
                } else {
                    self.record(node, packet, StepKind::Refused);
                    self.icmp_error(node, &packet, IcmpError::PortUnreachable, Some(packet.dst));
                }
            }
            // Hosts take the advice (accept_redirects=1); routers ignore it. As in
            // __ip_do_redirect(), only once the new gateway's neighbour entry is valid: until
            // then the kernel starts resolving it (neigh_event_send) and a later redirect counts.
            Transport::Redirect { gateway, original } if !self.net.node(node).forwarding => {
                if let Some(dev) = self.lookup(node, original.dst).map(|(_, r)| r.dev) {
                    match self.neigh.get(&(dev, gateway)) {
                        Some(Neigh::Reachable(_)) => {
                            self.redirects.insert((node, original.dst), gateway);
                        }
                        Some(Neigh::Incomplete { .. }) => {}
                        None => {
                            self.neigh.insert(
                                (dev, gateway),
                                Neigh::Incomplete {
                                    probes: 1,
                                    queue: Vec::new(),
                                },
                            );
                            self.send_arp_request(dev, gateway);
                        }
                    }
                }
                if client {
                    self.inbox.push(Received {
                        at: self.now,
                        packet,
                    });
                }
            }
            _ if client => self.inbox.push(Received {
                at: self.now,
                packet,
            }),
            _ => {}
        }
    }

    /// Client sockets use ephemeral ports; a UDP datagram to one is an answer for the client.
    fn is_client_port(&self, _sport: u16, dport: u16) -> bool {
        dport >= super::probe::EPHEMERAL_PORT
    }

    fn listening(&self, node: NodeId, proto: Proto, dst: Ipv4Addr, port: u16) -> bool {
        let Some(port) = Port::new(port) else {
            return false;
        };
        self.net
            .node(node)
            .listeners
            .iter()
            .any(|l| l.accepts(proto, dst, port))
    }
}
