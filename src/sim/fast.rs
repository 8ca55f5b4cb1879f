//! The fast path: probes resolved by walking a compiled network hop by hop, without the event
//! queue, for the cases where the walk provably does what the engine does.
//!
//! [`FastPath::new`] compiles a [`Network`] once: every node's routing table flattened into
//! longest-prefix-first entries (hashed by prefix length for large tables), every gateway's
//! ARP responder resolved ahead of time, the addresses each node owns, and an owner index for
//! on-link destinations. [`FastPath::probe`] then follows one probe's packets as compact `Copy`
//! headers, allocating nothing per hop, and applies the engine's rules in the engine's order:
//! martian sources, local delivery (weak host), forwarding off, no route (ICMP net
//! unreachable), TTL (ICMP time exceeded), ARP with cold caches (a request, its answer, the
//! packet: three crossings of the segment; three unanswered requests a second apart, then ICMP
//! host unreachable from the sender's own address or the router's), the kernel's answers
//! (echo, SYN/ACK or RST, UDP answer or port unreachable) and ICMP errors with the source the
//! route back prefers. Times are the engine's: `node_delay + latency` per crossing.
//!
//! Whenever a probe leaves that ground it returns `None` and the caller runs the engine
//! ([`crate::sim::run_probe`]), so the answer is always the engine's: a node with netfilter
//! rules (conntrack, NAT, filters), a lossy segment (random draws), a packet routed out the
//! interface it came in on (an ICMP redirect may follow), an ARP request two interfaces would
//! answer, duplicate MAC addresses on a segment, ping with more than one request, answers that
//! land exactly on a deadline, or a run that could reach the horizon or the event budget.
//! `tests/fast_path.rs` checks that the two agree on thousands of random probes.

use std::net::Ipv4Addr;
use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;

use super::engine::SimConfig;
use super::packet::{IcmpError, InnerFlow, Ipv4Packet, TcpFlags, Transport};
use super::probe::{
    ECHO_ID, EPHEMERAL_PORT, EchoReply, ErrorReport, Observed, ProbeKind, outcome_of, run_probe,
};
use super::time::SimTime;
use crate::model::{Network, NodeId, Outcome, Port, Proto, Route};

/// Routing tables with more entries than this are looked up by prefix length in a hash map;
/// smaller ones are scanned (a scan of a few entries beats any hashing).
const SCAN_LIMIT: usize = 12;
/// Packets one probe may cause (request, answer, errors) before the walk gives up.
const MAX_PACKETS: usize = 8;

/// Where an ARP request for a next hop is answered, decided when the network is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// On-link destination: found when the packet is sent.
    Lookup,
    /// Exactly this interface answers.
    One(u32),
    /// Nobody answers: the request fails after `arp_probes` tries.
    Nobody,
    /// Two or more interfaces would answer: the engine decides.
    Ambiguous,
}

/// One route, flattened.
#[derive(Debug, Clone, Copy)]
struct Entry {
    net: u32,
    mask: u32,
    dev: u32,
    /// The gateway, when the route has one.
    gateway: Option<Ipv4Addr>,
    next: Next,
    /// Position in the node's table (`ip route` order), to find the [`Route`] again.
    index: u32,
}

#[derive(Debug, Clone)]
struct NodeInfo {
    /// Range of `entries`, longest prefix first, then lowest metric, then table order.
    entries: (u32, u32),
    /// Range of `lens` (distinct prefix lengths, longest first) when the table is hashed.
    lens: Option<(u32, u32)>,
    /// Range of `addrs`: every address on every interface of the node.
    addrs: (u32, u32),
    forwarding: bool,
    netfilter: bool,
    /// The node has `blackhole`, `unreachable` or `prohibit` routes: the engine decides.
    rejects: bool,
    ttl: u8,
}

#[derive(Debug, Clone, Copy)]
struct IfaceInfo {
    node: u32,
    segment: u32,
}

#[derive(Debug, Clone, Copy)]
struct SegmentInfo {
    latency_ns: u64,
    lossy: bool,
    ports: u32,
}

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

/// A network compiled for the fast path. Build it once, probe it many times (it is `Sync`).
#[derive(Debug, Clone)]
pub struct FastPath<'n> {
    net: &'n Network,
    nodes: Vec<NodeInfo>,
    ifaces: Vec<IfaceInfo>,
    segments: Vec<SegmentInfo>,
    entries: Vec<Entry>,
    lens: Vec<u8>,
    /// (node, prefix length, network) → entry, for hashed tables.
    by_prefix: HashMap<(u32, u8, u32), u32>,
    addrs: Vec<u32>,
    /// Address → the nodes holding it (usually one).
    owners: HashMap<u32, Vec<u32>>,
    /// (node, segment) → (first interface of the node on it, how many).
    on_segment: HashMap<(u32, u32), (u32, u32)>,
    /// False when some segment has two interfaces with one MAC address: the engine decides.
    usable: bool,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl<'n> FastPath<'n> {
    /// Compiles `net`.
    pub fn new(net: &'n Network) -> Self {
        let segments = net
            .segments
            .iter()
            .map(|s| SegmentInfo {
                latency_ns: SimTime::from_duration(s.latency).0,
                lossy: s.loss > 0.0,
                ports: u32::try_from(s.interfaces.len()).unwrap_or(u32::MAX),
            })
            .collect();
        let ifaces: Vec<IfaceInfo> = net
            .interfaces
            .iter()
            .map(|i| IfaceInfo {
                node: i.node.0,
                segment: i.segment.0,
            })
            .collect();
        let mut usable = true;
        for segment in &net.segments {
            let mut macs: Vec<_> = segment
                .interfaces
                .iter()
                .map(|&i| net.interface(i).mac)
                .collect();
            macs.sort_unstable_by_key(|m| m.0);
            usable &= macs.windows(2).all(|w| w[0] != w[1]);
        }
        let mut fast = Self {
            net,
            nodes: Vec::with_capacity(net.nodes.len()),
            ifaces,
            segments,
            entries: Vec::new(),
            lens: Vec::new(),
            by_prefix: HashMap::default(),
            addrs: Vec::new(),
            owners: HashMap::default(),
            on_segment: HashMap::default(),
            usable,
        };
        for node in &net.nodes {
            let start = fast.addrs.len();
            for iface in net.interfaces_of(node) {
                for a in &iface.addresses {
                    let ip = u32::from(a.addr());
                    fast.addrs.push(ip);
                    let owners = fast.owners.entry(ip).or_default();
                    if !owners.contains(&node.id.0) {
                        owners.push(node.id.0);
                    }
                }
                let slot = fast
                    .on_segment
                    .entry((node.id.0, iface.segment.0))
                    .or_insert((iface.id.0, 0));
                slot.1 += 1;
            }
            let addrs = (range_start(start), range_start(fast.addrs.len()));
            fast.nodes.push(NodeInfo {
                entries: (0, 0),
                lens: None,
                addrs,
                forwarding: node.forwarding,
                netfilter: node.netfilter.is_some(),
                rejects: !node.routes.rejects().is_empty(),
                ttl: node.os.initial_ttl(),
            });
        }
        for node in &net.nodes {
            fast.compile_table(node.id);
        }
        fast
    }

    fn compile_table(&mut self, node: NodeId) {
        let routes = self.net.node(node).routes.routes();
        let mut order: Vec<usize> = (0..routes.len()).collect();
        // The engine takes the first route with the longest prefix and then the lowest metric.
        order.sort_by_key(|&i| {
            (
                std::cmp::Reverse(routes[i].dst.prefix_len()),
                routes[i].metric,
            )
        });
        let start = self.entries.len();
        for i in order {
            let route = &routes[i];
            let next = match route.gateway {
                None => Next::Lookup,
                Some(gw) => self.responder(route.dev.0, gw),
            };
            self.entries.push(Entry {
                net: u32::from(route.dst.network()),
                mask: mask(route.dst.prefix_len()),
                dev: route.dev.0,
                gateway: route.gateway,
                next,
                index: range_start(i),
            });
        }
        let end = self.entries.len();
        let info = &mut self.nodes[node.index()];
        info.entries = (range_start(start), range_start(end));
        if end - start > SCAN_LIMIT {
            let lens_start = self.lens.len();
            for e in start..end {
                let len = routes[self.entries[e].index as usize].dst.prefix_len();
                if self.lens[lens_start..].last() != Some(&len) {
                    self.lens.push(len);
                }
                // Keep the first entry of each prefix: the lowest metric, then table order.
                self.by_prefix
                    .entry((node.0, len, self.entries[e].net))
                    .or_insert(range_start(e));
            }
            self.nodes[node.index()].lens =
                Some((range_start(lens_start), range_start(self.lens.len())));
        }
    }

    /// Who answers an ARP request for `ip` sent out of interface `out` (arp_ignore=0: any
    /// node holding `ip` on any of its interfaces, through each of its interfaces on the
    /// segment; a loopback address never).
    fn responder(&self, out: u32, ip: Ipv4Addr) -> Next {
        if ip.is_loopback() {
            return Next::Nobody;
        }
        let Some(owners) = self.owners.get(&u32::from(ip)) else {
            return Next::Nobody;
        };
        let segment = self.ifaces[out as usize].segment;
        let mut found = None;
        for &node in owners {
            let Some(&(first, count)) = self.on_segment.get(&(node, segment)) else {
                continue;
            };
            if count > 1 {
                return Next::Ambiguous;
            }
            if first == out {
                continue;
            }
            if found.is_some() {
                return Next::Ambiguous;
            }
            found = Some(first);
        }
        found.map_or(Next::Nobody, Next::One)
    }

    fn is_local(&self, node: u32, addr: Ipv4Addr) -> bool {
        if addr.is_loopback() {
            return true;
        }
        let (a, b) = self.nodes[node as usize].addrs;
        let ip = u32::from(addr);
        self.addrs[a as usize..b as usize].contains(&ip)
    }

    fn lookup(&self, node: u32, dst: Ipv4Addr) -> Option<&Entry> {
        let info = &self.nodes[node as usize];
        let ip = u32::from(dst);
        match info.lens {
            None => {
                let (a, b) = info.entries;
                self.entries[a as usize..b as usize]
                    .iter()
                    .find(|e| ip & e.mask == e.net)
            }
            Some((a, b)) => self.lens[a as usize..b as usize].iter().find_map(|&len| {
                self.by_prefix
                    .get(&(node, len, ip & mask(len)))
                    .map(|&e| &self.entries[e as usize])
            }),
        }
    }

    fn route(&self, node: u32, entry: &Entry) -> &'n Route {
        &self.net.nodes[node as usize].routes.routes()[entry.index as usize]
    }

    /// The engine's `source_for` (inet_select_addr).
    fn source_for(&self, route: &Route, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.net.source_for(route, dst)
    }

    /// The engine's `source_address`: the address `node` sends from to reach `dst`.
    fn source_address(&self, node: u32, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.is_local(node, dst) {
            return Some(dst);
        }
        let entry = self.lookup(node, dst)?;
        self.source_for(self.route(node, entry), dst)
    }

    /// The address an ARP request out of `out` for `target` claims as its sender.
    fn arp_sender(&self, out: u32, target: Ipv4Addr) -> Ipv4Addr {
        let iface = &self.net.interfaces[out as usize];
        iface
            .addresses
            .iter()
            .find(|a| a.contains(&target))
            .or_else(|| iface.addresses.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr())
    }

    fn listening(&self, node: u32, proto: Proto, dst: Ipv4Addr, port: u16) -> bool {
        let Some(port) = Port::new(port) else {
            return false;
        };
        self.net.nodes[node as usize]
            .listeners
            .iter()
            .any(|l| l.accepts(proto, dst, port))
    }

    /// Resolves one probe from `from` to `dst` as [`run_probe`] would (fresh caches), or
    /// `None` when the probe needs the engine (see the module documentation).
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
        if !self.usable || from.index() >= self.nodes.len() {
            return None;
        }
        let horizon = SimTime::from_duration(config.horizon);
        let (deadline, flavour) = match kind {
            ProbeKind::Ping {
                count: 1,
                interval: _,
                wait,
            } => (SimTime::from_duration(*wait), Flavour::Ping),
            ProbeKind::Ping { .. } => return None,
            ProbeKind::Tcp { port, timeout } => {
                (SimTime::from_duration(*timeout), Flavour::Tcp(port.get()))
            }
            ProbeKind::Udp { port, wait } => {
                (SimTime::from_duration(*wait), Flavour::Udp(port.get()))
            }
        };
        // The engine's clock must never reach the horizon before the probe is decided.
        if deadline >= horizon {
            return None;
        }
        let node = from.0;
        if self.nodes[node as usize].rejects {
            return None;
        }
        let Some(src) = self.source_address(node, dst) else {
            return Some(FastProbe {
                src: None,
                observed: Observed::NoRoute,
                outcome: Outcome::NoRoute,
                hops: 0,
            });
        };
        let ttl = self.nodes[node as usize].ttl;
        let transport = match flavour {
            Flavour::Ping => Transport::EchoRequest {
                id: ECHO_ID,
                seq: 1,
            },
            Flavour::Tcp(dport) => Transport::Tcp {
                sport: EPHEMERAL_PORT,
                dport,
                flags: TcpFlags::Syn,
            },
            Flavour::Udp(dport) => Transport::Udp {
                sport: EPHEMERAL_PORT,
                dport,
            },
        };
        let first = Ipv4Packet {
            src,
            dst,
            ttl,
            transport,
        };
        let mut walk = Walk {
            fast: self,
            client: node,
            node_delay: SimTime::from_duration(config.node_delay).0,
            arp_fail: SimTime::from_duration(
                config
                    .arp_retrans
                    .saturating_mul(u32::from(config.arp_probes.max(1))),
            )
            .0,
            warm: neighbours == Neighbours::Warm,
            resolved: Resolved::default(),
            events: 0,
            hops: 0,
        };
        let arrival = walk.run(first)?;
        // A TCP client may retransmit its SYN up to 7 times before it is decided.
        let budget = if matches!(flavour, Flavour::Tcp(_)) {
            walk.events.saturating_mul(8)
        } else {
            walk.events
        };
        if budget.saturating_add(16) >= config.max_events {
            return None;
        }
        let observed = match arrival {
            Some((at, _)) if at == deadline => return None,
            // A SYN/ACK or RST after the first retransmission may answer a later SYN first.
            Some((at, packet))
                if matches!(flavour, Flavour::Tcp(_))
                    && at >= SimTime(1_000_000_000)
                    && !matches!(packet.transport, Transport::IcmpError { .. }) =>
            {
                return None;
            }
            Some((at, packet)) if at < deadline => flavour.observe(at, packet, dst, deadline),
            _ => flavour.silence(deadline),
        };
        let outcome = outcome_of(&observed);
        Some(FastProbe {
            src: Some(src),
            observed,
            outcome,
            hops: walk.hops,
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
            None => run_probe(self.net, from, dst, kind, config).outcome,
        }
    }
}

fn range_start(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy)]
enum Flavour {
    Ping,
    Tcp(u16),
    Udp(u16),
}

impl Flavour {
    /// What the probe makes of the first packet reaching the client, as `probe.rs` reads it.
    fn observe(
        self,
        at: SimTime,
        packet: Ipv4Packet,
        dst: Ipv4Addr,
        deadline: SimTime,
    ) -> Observed {
        let rtt = at.since(SimTime::ZERO);
        let error = |matches: &dyn Fn(InnerFlow) -> bool| match packet.transport {
            Transport::IcmpError { error, original } if matches(original.flow) => {
                Some((error, original.flow))
            }
            _ => None,
        };
        match self {
            Flavour::Ping => {
                let mut replies = Vec::new();
                let mut errors = Vec::new();
                match packet.transport {
                    Transport::EchoReply { id: ECHO_ID, seq } => replies.push(EchoReply {
                        seq,
                        from: packet.src,
                        ttl: packet.ttl,
                        rtt,
                    }),
                    _ => {
                        if let Some((error, flow)) =
                            error(&|f| matches!(f, InnerFlow::Echo { id: ECHO_ID, .. }))
                        {
                            let seq = match flow {
                                InnerFlow::Echo { seq, .. } => seq,
                                _ => 0,
                            };
                            errors.push(ErrorReport {
                                at,
                                from: packet.src,
                                error,
                                seq,
                            });
                        }
                    }
                }
                Observed::Ping {
                    sent: 1,
                    replies,
                    errors,
                    redirects: Vec::new(),
                }
            }
            Flavour::Tcp(port) => match packet.transport {
                Transport::Tcp {
                    dport: EPHEMERAL_PORT,
                    flags: TcpFlags::SynAck,
                    sport,
                } if sport == port && packet.src == dst => Observed::Connected {
                    rtt,
                    ttl: packet.ttl,
                },
                Transport::Tcp {
                    dport: EPHEMERAL_PORT,
                    flags: TcpFlags::Rst,
                    sport,
                } if sport == port && packet.src == dst => Observed::Reset {
                    after: rtt,
                    from: packet.src,
                },
                _ => match error(
                    &|f| matches!(f, InnerFlow::Tcp { sport: EPHEMERAL_PORT, dport } if dport == port),
                ) {
                    Some((error, _)) => Observed::Error(ErrorReport {
                        at,
                        from: packet.src,
                        error,
                        seq: 0,
                    }),
                    None => self.silence(deadline),
                },
            },
            Flavour::Udp(port) => match packet.transport {
                Transport::Udp {
                    sport,
                    dport: EPHEMERAL_PORT,
                } if sport == port && packet.src == dst => Observed::UdpAnswer {
                    rtt,
                    from: packet.src,
                },
                _ => match error(
                    &|f| matches!(f, InnerFlow::Udp { sport: EPHEMERAL_PORT, dport } if dport == port),
                ) {
                    Some((error, _)) => Observed::Error(ErrorReport {
                        at,
                        from: packet.src,
                        error,
                        seq: 0,
                    }),
                    None => self.silence(deadline),
                },
            },
        }
    }

    fn silence(self, deadline: SimTime) -> Observed {
        let waited = Duration::from_nanos(deadline.0);
        match self {
            Flavour::Ping => Observed::Ping {
                sent: 1,
                replies: Vec::new(),
                errors: Vec::new(),
                redirects: Vec::new(),
            },
            Flavour::Tcp(_) | Flavour::Udp(_) => Observed::Silence { waited },
        }
    }
}

/// Neighbour entries resolved during one probe: a few inline, the rest on the heap.
#[derive(Default)]
struct Resolved {
    inline: [(u32, u32); 24],
    len: usize,
    spill: Vec<(u32, u32)>,
}

impl Resolved {
    fn contains(&self, key: (u32, u32)) -> bool {
        self.inline[..self.len].contains(&key) || self.spill.contains(&key)
    }

    fn insert(&mut self, key: (u32, u32)) {
        if self.contains(key) {
            return;
        }
        if self.len < self.inline.len() {
            self.inline[self.len] = key;
            self.len += 1;
        } else {
            self.spill.push(key);
        }
    }
}

/// What happened to a packet sent or received.
enum Fate {
    /// Delivered to the local stack of `node` at `at`.
    Deliver {
        node: u32,
        packet: Ipv4Packet,
        at: u64,
    },
    /// `node` sends an ICMP error about `about` at `at`.
    Error {
        node: u32,
        about: Ipv4Packet,
        error: IcmpError,
        local: Option<Ipv4Addr>,
        at: u64,
    },
    /// Gone without a trace (dropped silently, or no route for a kernel answer).
    Silent,
    /// The sender had no route (for the first packet: the call fails).
    NoRoute,
}

/// One probe's walk.
struct Walk<'f, 'n> {
    fast: &'f FastPath<'n>,
    client: u32,
    node_delay: u64,
    arp_fail: u64,
    warm: bool,
    resolved: Resolved,
    /// An upper bound of the events the engine processes for the same packets.
    events: u64,
    hops: u32,
}

/// `None` in a walk: the engine must decide.
type Walked<T> = Option<T>;

impl Walk<'_, '_> {
    /// Follows the probe's first packet and what it causes; the first packet for the client
    /// (time, packet), or `Some(None)` when nothing reaches it.
    fn run(&mut self, first: Ipv4Packet) -> Walked<Option<(SimTime, Ipv4Packet)>> {
        let mut fate = self.output(self.client, first, 0)?;
        if matches!(fate, Fate::NoRoute) {
            // `source_address` found a route, so the first packet always has one.
            return None;
        }
        for _ in 0..MAX_PACKETS {
            fate = match fate {
                Fate::Silent | Fate::NoRoute => return Some(None),
                Fate::Deliver { node, packet, at } => match self.deliver(node, packet, at)? {
                    Delivered::Client => return Some(Some((SimTime(at), packet))),
                    Delivered::Then(next) => next,
                },
                Fate::Error {
                    node,
                    about,
                    error,
                    local,
                    at,
                } => self.icmp_error(node, &about, error, local, at)?,
            };
        }
        None
    }

    /// The engine's `local_deliver`: the kernel answers, or the packet is the client's.
    fn deliver(&mut self, node: u32, packet: Ipv4Packet, at: u64) -> Walked<Delivered> {
        let fast = self.fast;
        let ttl = fast.nodes[node as usize].ttl;
        let client = node == self.client;
        let answer = |transport| Ipv4Packet {
            src: packet.dst,
            dst: packet.src,
            ttl,
            transport,
        };
        let next = match packet.transport {
            Transport::EchoRequest { id, seq } => {
                self.reply(node, answer(Transport::EchoReply { id, seq }), at)?
            }
            Transport::Tcp {
                sport,
                dport,
                flags: TcpFlags::Syn,
            } => {
                let flags = if fast.listening(node, Proto::Tcp, packet.dst, dport) {
                    TcpFlags::SynAck
                } else {
                    TcpFlags::Rst
                };
                self.reply(
                    node,
                    answer(Transport::Tcp {
                        sport: dport,
                        dport: sport,
                        flags,
                    }),
                    at,
                )?
            }
            Transport::Udp { sport, dport } if !client || dport < EPHEMERAL_PORT => {
                if fast.listening(node, Proto::Udp, packet.dst, dport) {
                    self.reply(
                        node,
                        answer(Transport::Udp {
                            sport: dport,
                            dport: sport,
                        }),
                        at,
                    )?
                } else {
                    self.icmp_error(
                        node,
                        &packet,
                        IcmpError::PortUnreachable,
                        Some(packet.dst),
                        at,
                    )?
                }
            }
            // A host acts on a redirect (and starts resolving the gateway): the engine's.
            Transport::Redirect { .. } => return None,
            _ if client => return Some(Delivered::Client),
            _ => Fate::Silent,
        };
        Some(Delivered::Then(next))
    }

    /// The engine's `icmp_error`.
    fn icmp_error(
        &mut self,
        node: u32,
        about: &Ipv4Packet,
        error: IcmpError,
        local: Option<Ipv4Addr>,
        at: u64,
    ) -> Walked<Fate> {
        let Some(original) = about.inner() else {
            return Some(Fate::Silent);
        };
        if about.src.is_unspecified() || about.src.is_broadcast() || about.src.is_multicast() {
            return Some(Fate::Silent);
        }
        let Some(src) = local.or_else(|| self.fast.source_address(node, about.src)) else {
            return Some(Fate::Silent);
        };
        let packet = Ipv4Packet {
            src,
            dst: about.src,
            ttl: self.fast.nodes[node as usize].ttl,
            transport: Transport::IcmpError { error, original },
        };
        self.reply(node, packet, at)
    }

    /// A packet the node's kernel sends: dropped without a route.
    fn reply(&mut self, node: u32, packet: Ipv4Packet, at: u64) -> Walked<Fate> {
        match self.output(node, packet, at)? {
            Fate::NoRoute => Some(Fate::Silent),
            fate => Some(fate),
        }
    }

    /// The engine's `output` for a node without netfilter rules.
    fn output(&mut self, node: u32, packet: Ipv4Packet, at: u64) -> Walked<Fate> {
        let fast = self.fast;
        if fast.nodes[node as usize].netfilter || fast.nodes[node as usize].rejects {
            return None;
        }
        if fast.is_local(node, packet.dst) {
            self.events += 1;
            return Some(Fate::Deliver {
                node,
                packet,
                at: at.saturating_add(self.node_delay),
            });
        }
        let Some(entry) = fast.lookup(node, packet.dst) else {
            return Some(Fate::NoRoute);
        };
        self.forward(node, *entry, packet, at)
    }

    /// Sends `packet` along `entry` and follows it, hop by hop, until it is delivered,
    /// dropped or answered with an error.
    fn forward(&mut self, node: u32, entry: Entry, packet: Ipv4Packet, at: u64) -> Walked<Fate> {
        let fast = self.fast;
        let (mut node, mut entry, mut packet, mut at) = (node, entry, packet, at);
        loop {
            // resolve_and_send + transmit
            let out = entry.dev;
            let nexthop = entry.gateway.unwrap_or(packet.dst);
            let segment = fast.segments[fast.ifaces[out as usize].segment as usize];
            if segment.lossy {
                return None;
            }
            let next = match entry.next {
                Next::Lookup => fast.responder(out, nexthop),
                known => known,
            };
            let crossing = self.node_delay.saturating_add(segment.latency_ns);
            let port = match next {
                Next::Ambiguous | Next::Lookup => return None,
                Next::Nobody => {
                    // Three requests flooded, three timers, then the error.
                    self.events = self.events.saturating_add(3 * u64::from(segment.ports) + 3);
                    let local = fast.is_local(node, packet.src).then_some(packet.src);
                    return Some(Fate::Error {
                        node,
                        about: packet,
                        error: IcmpError::HostUnreachable,
                        local,
                        at: at.saturating_add(self.arp_fail),
                    });
                }
                Next::One(port) => port,
            };
            if self.warm || self.resolved.contains((out, u32::from(nexthop))) {
                at = at.saturating_add(crossing);
                self.events = self.events.saturating_add(u64::from(segment.ports));
            } else {
                // Request (flooded), reply, then the packet: the responder learns the sender.
                at = at.saturating_add(crossing.saturating_mul(3));
                self.events = self.events.saturating_add(3 * u64::from(segment.ports));
                self.resolved.insert((out, u32::from(nexthop)));
                let sender = fast.arp_sender(out, nexthop);
                self.resolved.insert((port, u32::from(sender)));
            }
            self.hops += 1;
            // ip_receive
            let in_iface = port;
            node = fast.ifaces[port as usize].node;
            let info = &fast.nodes[node as usize];
            if fast.is_local(node, packet.src) {
                return Some(Fate::Silent); // martian source
            }
            if info.netfilter || info.rejects {
                return None;
            }
            if fast.is_local(node, packet.dst) {
                return Some(Fate::Deliver { node, packet, at });
            }
            if !info.forwarding {
                return Some(Fate::Silent);
            }
            let Some(found) = fast.lookup(node, packet.dst) else {
                return Some(Fate::Error {
                    node,
                    about: packet,
                    error: IcmpError::NetUnreachable,
                    local: None,
                    at,
                });
            };
            if packet.ttl <= 1 {
                return Some(Fate::Error {
                    node,
                    about: packet,
                    error: IcmpError::TtlExceeded,
                    local: None,
                    at,
                });
            }
            if found.dev == in_iface {
                return None; // a redirect may follow
            }
            entry = *found;
            packet.ttl -= 1;
        }
    }
}

enum Delivered {
    /// The packet is for the probe's client.
    Client,
    /// The kernel's answer, or nothing.
    Then(Fate),
}
