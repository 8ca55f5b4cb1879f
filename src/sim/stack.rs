//! The IPv4 stack of every node: what a node does with a packet it receives, sends or makes,
//! written once and run by both the engine ([`super::Sim`]) and the fast path
//! ([`super::FastPath`]).
//!
//! It follows Linux (docs/linux-semantics.md, "Packet flow" and the sections after it):
//! - a packet from the wire claiming one of the node's own addresses is a martian;
//! - raw PREROUTING (before conntrack), conntrack and nat PREROUTING, mangle PREROUTING, then
//!   local delivery for the node's own addresses on any interface (weak host) and 127.0.0.0/8
//!   through filter INPUT;
//! - forwarding only with `forwarding: true` (silent drop otherwise); the route is looked up
//!   first (no route: ICMP net unreachable; a `blackhole`/`unreachable`/`prohibit` route:
//!   nothing, host unreachable, packet filtered), then the TTL (≤ 1: ICMP time exceeded),
//!   the redirect, filter FORWARD and nat POSTROUTING;
//! - the local output path: route, raw OUTPUT, conntrack and nat OUTPUT (re-routing after
//!   DNAT), filter OUTPUT, nat POSTROUTING; a packet to the node itself loops back through raw
//!   and mangle PREROUTING and filter INPUT;
//! - the kernel's own answers (echo reply, SYN/ACK or RST, UDP port unreachable) and ICMP errors
//!   with the source the route back prefers, never about ICMP errors.
//!
//! Everything below IP — neighbours, bridges, time, loss, who the probe's client is — belongs to
//! the caller, behind the [`Link`] trait: the engine schedules frames on an event queue, the
//! fast path walks them synchronously. Neither decides anything the stack decides.

use std::net::Ipv4Addr;

use super::compiled::{Action, Compiled, Entry, Next};
use super::conntrack::{Conntrack, Dir, Tuple, set_dst, set_inner, set_src};
use super::packet::{IcmpError, Ipv4Packet, TcpFlags, Transport};
use super::probe::EPHEMERAL_PORT;
use super::trace::{DropReason, StepKind};
use crate::model::{
    ChainName, CtStatus, IfaceId, L4, NatAction, NatHook, Netfilter, NodeId, PacketFacts, Port,
    Proto, Recent, RecentLists, RejectWith, RouteType, RunState, States, Verdict,
};

/// Why a locally generated packet could not be sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No route to the destination: the socket call fails with ENETUNREACH.
    NoRoute,
    /// The route to the destination is a `blackhole`, `unreachable` or `prohibit` route: the
    /// socket call fails with EINVAL, EHOSTUNREACH or EACCES.
    Rejected(RouteType),
}

/// What the stack needs from the layer below it and from whoever runs it.
pub(crate) trait Link {
    /// Notes what a node did with a packet (for traces; may do nothing).
    fn record(&mut self, node: NodeId, packet: Ipv4Packet, kind: StepKind);
    /// Hands a routed packet to the neighbour layer of `out`, for `nexthop`; `next` says who
    /// answers ARP for it when the network was compiled. `made_here`: the node made the packet
    /// (it did not forward it).
    fn send(
        &mut self,
        out: IfaceId,
        nexthop: Ipv4Addr,
        next: Next,
        packet: Ipv4Packet,
        made_here: bool,
    );
    /// Loops a packet the node sent to one of its own addresses back to it.
    fn loopback(&mut self, node: NodeId, packet: Ipv4Packet);
    /// Whether `node` runs the probe's client.
    fn is_client(&self, node: NodeId) -> bool;
    /// Hands a packet to the probe's client.
    fn to_client(&mut self, packet: Ipv4Packet);
    /// True with probability `ppb` parts per billion, from the run's seeded RNG.
    fn draw(&mut self, ppb: u32) -> bool;
    /// The run's clock, in nanoseconds (what `-m recent` stamps addresses with).
    fn now(&self) -> u64;
    /// The gateway an earlier ICMP redirect taught `node` for `dst`.
    fn learnt_gateway(&mut self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr>;
    /// A host was told by a redirect to reach `dst` through `gateway` on `dev`.
    fn advised(&mut self, node: NodeId, dev: IfaceId, gateway: Ipv4Addr, dst: Ipv4Addr);
}

/// What routing decides about a packet a node received, after PREROUTING (a pure function of
/// the compiled network: see [`Compiled::route_received`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// For one of the node's own addresses.
    Local,
    /// Not for the node, and the node does not forward.
    NotForwarding,
    /// No route: ICMP net unreachable.
    NoRoute,
    /// The best route is a route that sends nothing.
    Rejected(RouteType),
    /// The TTL would run out: ICMP time exceeded.
    TtlExceeded,
    /// Forward out of `out` to `nexthop` by route `route` (index in the node's table).
    Forward {
        out: IfaceId,
        nexthop: Ipv4Addr,
        next: Next,
        route: usize,
    },
}

impl Compiled<'_> {
    /// The routing decision for a packet `node` received (ip_route_input_slow, then the TTL
    /// check of ip_forward).
    // Always inlined: its only caller is `Stack::route_in`, on every crossing, and LLVM left it
    // out of line (benches/RESULTS.md, "Fast path: plain crossings").
    #[inline(always)]
    pub(crate) fn route_received(&self, node: NodeId, packet: &Ipv4Packet) -> Routed {
        if self.is_local(node, packet.dst) {
            return Routed::Local;
        }
        if !self.forwarding(node) {
            return Routed::NotForwarding;
        }
        let Some(entry) = self.lookup(node, packet.dst) else {
            return Routed::NoRoute;
        };
        let (out, gateway, next) = match entry.action {
            Action::Reject(kind) => return Routed::Rejected(kind),
            Action::Send { dev, gateway, next } => (dev, gateway, next),
        };
        if packet.ttl <= 1 {
            return Routed::TtlExceeded;
        }
        Routed::Forward {
            out,
            nexthop: gateway.unwrap_or(packet.dst),
            next,
            route: entry.index as usize,
        }
    }
}

/// What the answer to an error-worthy packet is, for a REJECT verdict.
fn reject_error(with: RejectWith) -> Option<IcmpError> {
    match with {
        RejectWith::TcpReset => None,
        RejectWith::PortUnreachable => Some(IcmpError::PortUnreachable),
        RejectWith::HostUnreachable => Some(IcmpError::HostUnreachable),
        RejectWith::NetUnreachable => Some(IcmpError::NetUnreachable),
        RejectWith::AdminProhibited => Some(IcmpError::AdminProhibited),
    }
}

/// What conntrack said about a packet on its way through a node, and the marks rules gave it
/// there.
#[derive(Debug, Clone, Copy, Default)]
struct Track {
    /// The connection it belongs to, when known.
    conn: Option<(u32, Dir)>,
    state: States,
    status: CtStatus,
    /// For a new connection: its tuple as it arrived, before any NAT.
    orig: Option<Tuple>,
    /// The packet's mark (0 as it enters the node).
    mark: u32,
    /// The connection's mark; `None` without a connection.
    ctmark: Option<u32>,
}

impl Track {
    /// A packet conntrack cannot place.
    fn invalid() -> Self {
        Track {
            state: States::INVALID,
            ..Track::default()
        }
    }
}

/// Whether a packet without a connection starts one: a SYN, an echo request, any UDP
/// datagram. A SYN/ACK, an RST or an echo reply is INVALID instead (nf_conntrack's TCP state
/// table from NONE; icmp_new).
fn starts_connection(packet: &Ipv4Packet) -> bool {
    match packet.transport {
        Transport::Tcp { flags, .. } => flags == TcpFlags::Syn,
        Transport::EchoRequest { .. } | Transport::Udp { .. } => true,
        _ => false,
    }
}

/// What a node's rules ask of the run as they are walked: the link's draws, and the run's
/// `-m recent` lists of the node, at the link's clock (docs/netfilter.md, "Recent lists").
struct Run<'r, L: Link> {
    link: &'r mut L,
    recent: &'r mut RecentLists,
    node: NodeId,
}

impl<L: Link> RunState for Run<'_, L> {
    fn draw(&mut self, ppb: u32) -> bool {
        self.link.draw(ppb)
    }

    fn recent(&mut self, m: &Recent, facts: &PacketFacts) -> bool {
        let now = self.link.now();
        self.recent.consult(self.node, m, facts, now)
    }
}

/// The stack of one run: the compiled network, the run's connections and the link below.
pub(crate) struct Stack<'s, 'n, L: Link> {
    pub dp: &'s Compiled<'n>,
    pub conntrack: &'s mut Conntrack,
    pub link: L,
}

impl<L: Link> Stack<'_, '_, L> {
    /// What `node`'s rules ask of the run.
    fn run(&mut self, node: NodeId) -> Run<'_, L> {
        Run {
            link: &mut self.link,
            recent: &mut self.conntrack.recent,
            node,
        }
    }

    #[inline]
    fn record(&mut self, node: NodeId, packet: Ipv4Packet, kind: StepKind) {
        self.link.record(node, packet, kind);
    }

    fn discard(
        &mut self,
        node: NodeId,
        packet: Ipv4Packet,
        in_iface: Option<IfaceId>,
        reason: DropReason,
    ) {
        self.record(node, packet, StepKind::Dropped { in_iface, reason });
    }

    // ------------------------------------------------------------------ output

    /// Sends a packet the node makes. Fails at once when the node has no route, as `connect()`
    /// and `sendto()` do (recording `no_route`); a packet to one of the node's own addresses
    /// loops back.
    ///
    /// The local output path (docs/linux-semantics.md, "Packet flow"): the route for the
    /// original destination first (no route: the call fails, before any NAT rule is seen), then
    /// conntrack and nat OUTPUT, re-routing if the destination changed (inside the nat OUTPUT
    /// hook, as `ip_route_me_harder`), filter OUTPUT, nat POSTROUTING.
    pub(crate) fn output(
        &mut self,
        node: NodeId,
        packet: Ipv4Packet,
        no_route: DropReason,
    ) -> Result<(), SendError> {
        let dp = self.dp;
        let mut local = dp.is_local(node, packet.dst);
        let mut entry = None;
        if !local {
            let failure = match dp.lookup(node, packet.dst) {
                Some(
                    e @ Entry {
                        action: Action::Send { .. },
                        ..
                    },
                ) => {
                    entry = Some(e);
                    None
                }
                None => Some((no_route, SendError::NoRoute)),
                // ip_route_output_key fails with the route type's error (fib_props).
                Some(Entry {
                    action: Action::Reject(kind),
                    ..
                }) => Some((DropReason::RejectRoute(*kind), SendError::Rejected(*kind))),
            };
            if let Some((reason, error)) = failure {
                self.discard(node, packet, None, reason);
                return Err(error);
            }
        }
        let mut packet = packet;
        if let Some(nf) = dp.netfilter(node) {
            // raw OUTPUT: before conntrack, out of the interface the route chose.
            let routed_out = entry.and_then(Entry::dev);
            if !self.raw(node, nf, ChainName::RawOutput, &packet, None, routed_out) {
                return Ok(());
            }
            let dst = packet.dst;
            let mut track = self.track(node, &mut packet, None, nf, NatHook::Output);
            if packet.dst != dst {
                // Re-routed for the new destination (a reject route does not send).
                local = dp.is_local(node, packet.dst);
                entry = if local {
                    None
                } else {
                    dp.lookup(node, packet.dst).filter(|e| e.dev().is_some())
                };
            }
            let out = entry.and_then(Entry::dev);
            // An OUTPUT DNAT of 127.0.0.1 to another host keeps the loopback source, which may
            // not leave a real interface: the re-routing fails and the packet is dropped
            // (unless route_localnet=1 there; docs/linux-semantics.md, "Loopback traffic").
            if out.is_some_and(|o| !dp.route_localnet(o)) && packet.src.is_loopback() {
                self.discard(node, packet, None, DropReason::LoopbackSource);
                return Ok(());
            }
            if local || out.is_some() {
                if !self.enforce(node, nf, ChainName::Output, &packet, None, out, &mut track) {
                    return Ok(());
                }
                if let Some(out) = out {
                    self.postrouting(node, nf, &mut packet, out, &mut track);
                }
                self.confirm(node, &packet, &track);
            }
        }
        if local {
            let kind = StepKind::Sent {
                out: None,
                route: None,
                nexthop: packet.dst,
            };
            self.record(node, packet, kind);
            self.link.loopback(node, packet);
            return Ok(());
        }
        let Some(entry) = entry else {
            self.discard(node, packet, None, no_route);
            return Err(SendError::NoRoute);
        };
        let route = dp.route(node, entry);
        let (nexthop, next) = match self.link.learnt_gateway(node, packet.dst) {
            Some(gateway) => (gateway, Next::Lookup),
            None => match entry.action {
                Action::Send { next, .. } => (route.gateway.unwrap_or(packet.dst), next),
                Action::Reject(_) => (packet.dst, Next::Lookup),
            },
        };
        let kind = StepKind::Sent {
            out: Some(route.dev),
            route: Some(entry.index as usize),
            nexthop,
        };
        self.record(node, packet, kind);
        self.link.send(route.dev, nexthop, next, packet, true);
        Ok(())
    }

    /// Sends a packet the node's kernel generates (replies, errors). Silently dropped without a
    /// route back, as the kernel does.
    fn reply(&mut self, node: NodeId, packet: Ipv4Packet) {
        let _ = self.output(node, packet, DropReason::NoRouteBack);
    }

    /// Sends an ICMP error about `about` back to its sender, from `local_src` or else from the
    /// address the route back prefers; never about an ICMP error or to a non-unicast source.
    pub(crate) fn icmp_error(
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
        let Some(src) = local_src.or_else(|| self.dp.source_address(node, about.src)) else {
            self.discard(node, *about, None, DropReason::NoRouteBack);
            return;
        };
        let packet = Ipv4Packet {
            src,
            dst: about.src,
            ttl: self.dp.ttl(node),
            transport: Transport::IcmpError { error, original },
        };
        self.reply(node, packet);
    }

    /// A neighbour never answered: the packet that waited for it is dropped, and its sender
    /// hears ICMP host unreachable (a local sender from its own address, a forwarded packet's
    /// sender from this node).
    pub(crate) fn neighbour_failed(
        &mut self,
        node: NodeId,
        out: IfaceId,
        nexthop: Ipv4Addr,
        packet: Ipv4Packet,
    ) {
        let reason = DropReason::ArpFailed {
            iface: out,
            nexthop,
        };
        self.discard(node, packet, None, reason);
        let local = self.dp.is_local(node, packet.src).then_some(packet.src);
        self.icmp_error(node, &packet, IcmpError::HostUnreachable, local);
    }

    // ------------------------------------------------------------------ input

    /// A packet `node` received on `in_iface`.
    // Inlined into the engine's and the fast path's loops: left to itself LLVM stopped doing
    // so once other code grew, at +7 % instructions a probe (benches/RESULTS.md, issue 12).
    #[inline(always)]
    pub(crate) fn receive(&mut self, node: NodeId, in_iface: IfaceId, packet: Ipv4Packet) {
        self.receive_from(node, in_iface, None, packet);
    }

    /// A packet `node` received on `in_iface`; `from`: the interface that sent it, when
    /// `in_iface` is a bridge of the node whose frames its iptables judge (br_netfilter): a
    /// DNAT there to an address behind the same bridge keeps the packet bridged (TTL kept, to
    /// the new address's port; back out of `from` only with hairpin mode), as
    /// `br_nf_pre_routing_finish` does (docs/linux-semantics.md, "Bridges and br_netfilter").
    // Always inlined, as `route_in`: with two callers each LLVM stopped inlining them into the
    // engine's and the fast path's loops, at +13 % instructions a probe (benches/RESULTS.md,
    // "Bridges, and the hot path").
    #[inline(always)]
    pub(crate) fn receive_from(
        &mut self,
        node: NodeId,
        in_iface: IfaceId,
        from: Option<IfaceId>,
        packet: Ipv4Packet,
    ) {
        let dp = self.dp;
        // fib_validate_source: a packet from the wire claiming one of our own addresses as its
        // source is a martian, dropped before routing (accept_local=0).
        if dp.is_local(node, packet.src) {
            return self.discard(node, packet, Some(in_iface), DropReason::MartianSource);
        }
        let Some(nf) = dp.netfilter(node) else {
            // No netfilter on the node: nothing translates or judges the packet. A call of its
            // own, so that the inlined copy of `route_in` drops every hook and keeps the packet
            // in one place (benches/RESULTS.md, "Fast path: the plain crossing's copies").
            return self.route_in(node, in_iface, None, packet, packet, Track::default());
        };
        let Some((arrived, packet, track)) = self.prerouting(node, nf, in_iface, packet) else {
            return;
        };
        if let Some(from) = from
            && packet.dst != arrived.dst
            && self.stays_on_bridge(node, in_iface, &packet)
        {
            return self.bridge_out(node, nf, in_iface, Some(from), None, packet, track);
        }
        self.route_in(node, in_iface, Some(nf), arrived, packet, track);
    }

    /// The PREROUTING hooks of a packet `node` received on `in_iface` (a bridge, for a frame
    /// its owner's iptables judge): raw before conntrack on the packet as it arrived, then
    /// conntrack and nat PREROUTING (a DNAT changes the packet), then mangle PREROUTING on the
    /// packet as it arrived. `None` when a chain dropped it; else the packet as it arrived, as
    /// translated, and what conntrack said.
    #[inline(always)]
    fn prerouting(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        in_iface: IfaceId,
        packet: Ipv4Packet,
    ) -> Option<(Ipv4Packet, Ipv4Packet, Track)> {
        let here = Some(in_iface);
        if !self.raw(node, nf, ChainName::RawPrerouting, &packet, here, None) {
            return None;
        }
        let arrived = packet;
        let mut packet = packet;
        let mut track = self.track(node, &mut packet, here, nf, NatHook::Prerouting);
        self.enforce(
            node,
            nf,
            ChainName::Prerouting,
            &arrived,
            here,
            None,
            &mut track,
        )
        .then_some((arrived, packet, track))
    }

    /// Whether `bridge`'s owner sends a packet it translated back out of `bridge` (a route
    /// that leads there, without ip_forward too): then the packet stays bridged.
    fn stays_on_bridge(&self, owner: NodeId, bridge: IfaceId, packet: &Ipv4Packet) -> bool {
        let dp = self.dp;
        dp.segment_of(bridge).hook == Some(bridge)
            && !dp.is_local(owner, packet.dst)
            && dp.lookup(owner, packet.dst).and_then(Entry::dev) == Some(bridge)
    }

    /// What `node` does with a packet it received on `in_iface` once PREROUTING is behind it
    /// (`arrived`: as it came, `packet`: after any DNAT): local delivery through INPUT, or
    /// forwarding through FORWARD and POSTROUTING, or the drop and the error routing decided.
    #[inline(always)]
    fn route_in(
        &mut self,
        node: NodeId,
        in_iface: IfaceId,
        nf: Option<&Netfilter>,
        arrived: Ipv4Packet,
        packet: Ipv4Packet,
        mut track: Track,
    ) {
        let dp = self.dp;
        let mut packet = packet;
        let here = Some(in_iface);
        // ip_route_input_slow: a 127/8 destination from the wire (an answer whose masquerade
        // was undone back to 127.0.0.1) is a martian unless route_localnet=1 on the interface.
        if packet.dst.is_loopback() && !dp.route_localnet(in_iface) {
            return self.discard(node, packet, here, DropReason::MartianDestination);
        }
        let (out, nexthop, next, route) = match dp.route_received(node, &packet) {
            Routed::Local => {
                if let Some(nf) = nf {
                    if !self.enforce(node, nf, ChainName::Input, &packet, here, None, &mut track) {
                        return;
                    }
                    // nat INPUT: an answer to a connection this node translated gets its
                    // source back (the source half of the translation, for local delivery).
                    self.source_half(node, &mut packet, &track, NatHook::Prerouting);
                    self.confirm(node, &packet, &track);
                }
                return self.local_deliver(node, here, packet);
            }
            Routed::NotForwarding => {
                return self.discard(node, packet, here, DropReason::ForwardingDisabled);
            }
            Routed::NoRoute => {
                self.discard(node, packet, here, DropReason::NoRoute);
                return self.icmp_error(node, &packet, IcmpError::NetUnreachable, None);
            }
            // ip_route_input_slow: the lookup fails with the type's error and ip_error()
            // answers (before the TTL check and the FORWARD chain): EHOSTUNREACH → host
            // unreachable, EACCES → packet filtered, EINVAL (blackhole) → nothing.
            Routed::Rejected(kind) => {
                self.discard(node, packet, here, DropReason::RejectRoute(kind));
                let error = match kind {
                    RouteType::Blackhole => return,
                    RouteType::Unreachable => IcmpError::HostUnreachable,
                    RouteType::Prohibit => IcmpError::AdminProhibited,
                };
                return self.icmp_error(node, &packet, error, None);
            }
            Routed::TtlExceeded => {
                self.discard(node, packet, here, DropReason::TtlExpired);
                return self.icmp_error(node, &packet, IcmpError::TtlExceeded, None);
            }
            Routed::Forward {
                out,
                nexthop,
                next,
                route,
            } => (out, nexthop, next, route),
        };
        let received = packet;
        let mut forwarded = Ipv4Packet {
            ttl: packet.ttl - 1,
            ..packet
        };
        let redirect = self.redirect(node, in_iface, out, &arrived, &received, nexthop);
        if let Some(nf) = nf {
            if !self.enforce(
                node,
                nf,
                ChainName::Forward,
                &forwarded,
                here,
                Some(out),
                &mut track,
            ) {
                // ip_forward() sends the redirect before the FORWARD hook: also about a packet
                // the filter then drops (docs/linux-semantics.md, "Redirects").
                if let Some(redirect) = redirect {
                    self.reply(node, redirect);
                }
                return;
            }
            self.postrouting(node, nf, &mut forwarded, out, &mut track);
            self.confirm(node, &forwarded, &track);
        }
        let kind = StepKind::Forwarded {
            in_iface,
            out,
            route,
            nexthop,
        };
        self.record(node, forwarded, kind);
        self.link.send(out, nexthop, next, forwarded, false);
        if let Some(redirect) = redirect {
            self.reply(node, redirect);
        }
    }

    /// A frame the bridge `bridge` carries from `from` (the sending interface, when known) to
    /// its port `port`, when its owner's iptables judge bridged frames (br_netfilter;
    /// docs/linux-semantics.md, "Bridges and br_netfilter"): conntrack, mangle and nat
    /// PREROUTING, filter FORWARD and nat POSTROUTING of the owner see it with `-i` and `-o`
    /// the bridge; the TTL stays. A packet DNAT sends elsewhere is routed by the owner as if it
    /// had arrived on the bridge; one DNAT keeps on the bridge goes to the new destination's
    /// port.
    #[inline(never)]
    pub(crate) fn bridged(
        &mut self,
        bridge: IfaceId,
        from: Option<IfaceId>,
        port: IfaceId,
        packet: Ipv4Packet,
    ) {
        let dp = self.dp;
        let owner = dp.node_of(bridge);
        let Some(nf) = dp.netfilter(owner) else {
            return self.receive(dp.node_of(port), port, packet);
        };
        let Some((arrived, packet, track)) = self.prerouting(owner, nf, bridge, packet) else {
            return;
        };
        // br_nf_pre_routing_finish: after DNAT the owner routes the packet; it stays bridged
        // only when the route leads back out of the bridge (without ip_forward too).
        if packet.dst == arrived.dst {
            self.bridge_out(owner, nf, bridge, from, Some(port), packet, track);
        } else if self.stays_on_bridge(owner, bridge, &packet) {
            self.bridge_out(owner, nf, bridge, from, None, packet, track);
        } else {
            self.route_in(owner, bridge, Some(nf), arrived, packet, track);
        }
    }

    /// The rest of a bridged packet's way through the owner of `bridge`: filter FORWARD and
    /// nat POSTROUTING with `-i` and `-o` the bridge, then on to `port`, or, after a DNAT
    /// (`port` is `None`), to the port of the new destination, found as the owner's
    /// neighbour on the bridge; never back out of `from` without hairpin mode.
    #[allow(clippy::too_many_arguments)]
    fn bridge_out(
        &mut self,
        owner: NodeId,
        nf: &Netfilter,
        bridge: IfaceId,
        from: Option<IfaceId>,
        port: Option<IfaceId>,
        packet: Ipv4Packet,
        mut track: Track,
    ) {
        let dp = self.dp;
        let mut packet = packet;
        let here = Some(bridge);
        if !self.enforce(
            owner,
            nf,
            ChainName::Forward,
            &packet,
            here,
            here,
            &mut track,
        ) {
            return;
        }
        self.postrouting(owner, nf, &mut packet, bridge, &mut track);
        self.confirm(owner, &packet, &track);
        if port.is_none()
            && let (Some(from), Next::One { port: to, .. }) =
                (from, dp.responder(bridge, packet.dst))
            && to == from
            && !dp.hairpin(from)
        {
            let reason = DropReason::HairpinOff { port: from };
            return self.discard(owner, packet, here, reason);
        }
        self.record(owner, packet, StepKind::Bridged { bridge });
        match port {
            Some(port) => self.receive(dp.node_of(port), port, packet),
            None => self
                .link
                .send(bridge, packet.dst, Next::Lookup, packet, false),
        }
    }

    /// The ICMP redirect a router sends about a packet it forwards out the way it came, to a
    /// sender on that link: the better next hop (send_redirects=1; __mkroute_input sets
    /// IPSKB_DOREDIRECT). None about a packet this node DNATed: the kernel counts such a
    /// redirect as sent, but it never reaches the sender (docs/linux-semantics.md, "Redirects").
    // The test inline, the rest out of line: nearly every forwarded packet leaves by another
    // interface (benches/RESULTS.md, "Fast path: plain crossings").
    #[inline(always)]
    fn redirect(
        &self,
        node: NodeId,
        in_iface: IfaceId,
        out: IfaceId,
        arrived: &Ipv4Packet,
        received: &Ipv4Packet,
        nexthop: Ipv4Addr,
    ) -> Option<Ipv4Packet> {
        if out != in_iface || arrived.dst != received.dst {
            return None;
        }
        self.redirect_back(node, in_iface, received, nexthop)
    }

    /// [`Stack::redirect`] about a packet forwarded out of the interface `in_iface` it came
    /// in on.
    #[inline(never)]
    fn redirect_back(
        &self,
        node: NodeId,
        in_iface: IfaceId,
        received: &Ipv4Packet,
        nexthop: Ipv4Addr,
    ) -> Option<Ipv4Packet> {
        let on_link = |a: &ipnet::Ipv4Net| a.contains(&received.src) && a.contains(&nexthop);
        if !self
            .dp
            .network()
            .interface(in_iface)
            .addresses
            .iter()
            .any(on_link)
        {
            return None;
        }
        let original = received.inner()?;
        let src = self.dp.source_address(node, received.src)?;
        Some(Ipv4Packet {
            src,
            dst: received.src,
            ttl: self.dp.ttl(node),
            transport: Transport::Redirect {
                gateway: nexthop,
                original,
            },
        })
    }

    /// A packet the node sent to one of its own addresses comes back in through `lo`: raw and
    /// mangle PREROUTING and filter INPUT judge it like any packet received (with no interface
    /// of the file: rules with `in:` do not match it), and conntrack keeps the state it had on
    /// the way out (the first packet of a connection is still NEW). The nat chains are not seen
    /// again.
    /// docs/linux-semantics.md, "Loopback traffic".
    pub(crate) fn loopback_receive(&mut self, node: NodeId, packet: Ipv4Packet) {
        let mut packet = packet;
        if let Some(nf) = self.dp.netfilter(node) {
            if !self.raw(node, nf, ChainName::RawPrerouting, &packet, None, None) {
                return;
            }
            let mut track = self.track(node, &mut packet, None, nf, NatHook::Prerouting);
            for chain in [ChainName::Prerouting, ChainName::Input] {
                if !self.enforce(node, nf, chain, &packet, None, None, &mut track) {
                    return;
                }
            }
            self.confirm(node, &packet, &track);
        }
        self.local_deliver(node, None, packet)
    }

    /// The node's own stack takes the packet: the kernel answers echo requests, SYNs and UDP
    /// datagrams itself; what is left is the probe client's, on the client's node.
    fn local_deliver(&mut self, node: NodeId, in_iface: Option<IfaceId>, packet: Ipv4Packet) {
        let dp = self.dp;
        self.record(node, packet, StepKind::Delivered { in_iface });
        let client = self.link.is_client(node);
        let answer = |transport| Ipv4Packet {
            src: packet.dst,
            dst: packet.src,
            ttl: dp.ttl(node),
            transport,
        };
        match packet.transport {
            Transport::EchoRequest { id, seq } => {
                self.reply(node, answer(Transport::EchoReply { id, seq }));
            }
            Transport::Tcp {
                sport,
                dport,
                flags: TcpFlags::Syn,
            } => {
                let flags = if dp.listening(node, Proto::Tcp, packet.dst, dport) {
                    TcpFlags::SynAck
                } else {
                    self.record(node, packet, StepKind::Refused);
                    TcpFlags::Rst
                };
                let transport = Transport::Tcp {
                    sport: dport,
                    dport: sport,
                    flags,
                };
                self.reply(node, answer(transport));
            }
            Transport::Udp { sport, dport } if !client || dport < EPHEMERAL_PORT => {
                if let Some(listener) = dp.listener(node, Proto::Udp, packet.dst, dport) {
                    let transport = Transport::Udp {
                        sport: dport,
                        dport: sport,
                    };
                    let mut answer = answer(transport);
                    // A socket on all addresses without IP_PKTINFO answers from the address
                    // the route back picks (docs/topology-format.md, "Listen").
                    if listener.reply_from_route && listener.bind.is_none() {
                        answer.src = dp.source_address(node, packet.src).unwrap_or(answer.src);
                    }
                    self.reply(node, answer);
                } else {
                    self.record(node, packet, StepKind::Refused);
                    self.icmp_error(node, &packet, IcmpError::PortUnreachable, Some(packet.dst));
                }
            }
            // Hosts take the advice (accept_redirects=1); routers ignore it.
            Transport::Redirect { gateway, original } if !dp.forwarding(node) => {
                if let Some((_, route)) = dp.sending_route(node, original.dst) {
                    self.link.advised(node, route.dev, gateway, original.dst);
                }
                if client {
                    self.link.to_client(packet);
                }
            }
            _ if client => self.link.to_client(packet),
            _ => {}
        }
    }

    // ------------------------------------------------------------------ netfilter

    fn facts(
        &self,
        node: NodeId,
        packet: &Ipv4Packet,
        in_iface: Option<IfaceId>,
        out_iface: Option<IfaceId>,
        track: &Track,
    ) -> PacketFacts {
        let (proto, sport, dport) = match packet.transport {
            Transport::Tcp { sport, dport, .. } => (L4::Tcp, Some(sport), Some(dport)),
            Transport::Udp { sport, dport } => (L4::Udp, Some(sport), Some(dport)),
            _ => (L4::Icmp, None, None),
        };
        PacketFacts {
            in_iface,
            out_iface,
            src: packet.src,
            dst: packet.dst,
            proto,
            sport,
            dport,
            state: track.state,
            status: track.status,
            src_type: self.dp.addr_type(node, packet.src),
            dst_type: self.dp.addr_type(node, packet.dst),
            mark: track.mark,
            ctmark: track.ctmark,
        }
    }

    /// Keeps the marks rules set: the packet's in `track`, the connection's in its entry.
    fn keep_marks(&mut self, track: &mut Track, facts: &PacketFacts) {
        track.mark = facts.mark;
        if track.ctmark != facts.ctmark {
            track.ctmark = facts.ctmark;
            if let (Some((id, _)), Some(mark)) = (track.conn, facts.ctmark) {
                self.conntrack.set_mark(id, mark);
            }
        }
    }

    /// Conntrack and the destination half of NAT (PREROUTING or OUTPUT): a known connection's
    /// translation, or the nat chain's decision for a new one; ICMP errors about a tracked
    /// connection are RELATED and translated back, outer and quoted header alike. A packet
    /// that can start no connection and belongs to none is INVALID and sees no nat chain
    /// (docs/netfilter.md, "Connection states").
    // Out of line: only nodes with netfilter take it, and inlined it would make LLVM stop
    // inlining the plain routing path into the engine's and the fast path's loops
    // (benches/RESULTS.md, "Inlining of the hot path").
    #[inline(never)]
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
                return Track::invalid();
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
                state: States::RELATED,
                status: conn.status(dir),
                ctmark: Some(conn.mark),
                ..Track::default()
            };
        }
        let Some(tuple) = Tuple::of(packet) else {
            return Track::default();
        };
        if let Some((id, dir)) = self.conntrack.lookup(node, tuple) {
            if dir == Dir::Reply {
                self.conntrack.mark_reply_seen(id);
            }
            let conn = *self.conntrack.get(id);
            let target = conn.target(dir);
            set_dst(packet, target.dst, target.dport);
            self.record_translation(node, before, *packet, hook);
            let mut state = conn.state(dir);
            if conn.orig.dst != conn.reply.src || conn.orig.dport != conn.reply.sport {
                state = state.with(States::DNAT);
            }
            if conn.orig.src != conn.reply.dst || conn.orig.sport != conn.reply.dport {
                state = state.with(States::SNAT);
            }
            return Track {
                conn: Some((id, dir)),
                state,
                status: conn.status(dir),
                ctmark: Some(conn.mark),
                ..Track::default()
            };
        }
        if !starts_connection(packet) {
            return Track::invalid();
        }
        let mut track = Track {
            state: States::NEW,
            orig: Some(tuple),
            ctmark: Some(0),
            ..Track::default()
        };
        let mut facts = self.facts(node, packet, in_iface, None, &track);
        let decided = nf.nat_rule(hook, &mut facts, &mut self.run(node));
        self.keep_marks(&mut track, &facts);
        if let Some((at, rule)) = decided
            && let NatAction::Dnat(addr, port) = rule.action
        {
            track.state = track.state.with(States::DNAT);
            let dport = port.map_or(tuple.dport, Port::get);
            set_dst(packet, addr, dport);
            let kind = StepKind::Translated {
                hook,
                rule: Some(at),
                before,
            };
            self.record(node, *packet, kind);
        }
        track
    }

    /// The source half of NAT (POSTROUTING): a known connection's translation, or the nat
    /// chain's decision (SNAT, MASQUERADE) for a new one.
    // Out of line: only nodes with netfilter take it, and inlined it would make LLVM stop
    // inlining the plain routing path into the engine's and the fast path's loops
    // (benches/RESULTS.md, "Inlining of the hot path").
    #[inline(never)]
    fn postrouting(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        packet: &mut Ipv4Packet,
        out: IfaceId,
        track: &mut Track,
    ) {
        if track.conn.is_some() {
            return self.source_half(node, packet, track, NatHook::Postrouting);
        }
        if track.orig.is_none() {
            return;
        }
        let before = *packet;
        let mut facts = self.facts(node, packet, None, Some(out), track);
        let decided = nf.nat_rule(NatHook::Postrouting, &mut facts, &mut self.run(node));
        self.keep_marks(track, &facts);
        let Some((at, rule)) = decided else {
            return;
        };
        let to = match rule.action {
            NatAction::Snat(addr, _) => Some(addr),
            NatAction::Masquerade(_) => {
                let hop = self
                    .dp
                    .sending_route(node, packet.dst)
                    .map_or(packet.dst, |(_, r)| r.gateway.unwrap_or(packet.dst));
                self.dp.select_address(out, hop)
            }
            _ => None,
        };
        if let Some(to) = to {
            let sport = Tuple::of(packet).map_or(0, |t| t.sport);
            set_src(packet, to, sport);
            if *packet != before {
                let kind = StepKind::Translated {
                    hook: NatHook::Postrouting,
                    rule: Some(at),
                    before,
                };
                self.record(node, *packet, kind);
            }
        }
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
            let kind = StepKind::Translated {
                hook,
                rule: None,
                before,
            };
            self.record(node, after, kind);
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
            let mark = track.ctmark.unwrap_or(0);
            self.conntrack.confirm(node, orig, leaving, mark);
        }
    }

    /// Runs a chain of the raw table (`RawPrerouting`, `RawOutput`), which comes before
    /// conntrack: no connection, no marks yet. False when the packet does not pass; nothing to
    /// do (and no step recorded) when the chain is empty.
    #[inline(always)]
    fn raw(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        chain: ChainName,
        packet: &Ipv4Packet,
        in_iface: Option<IfaceId>,
        out_iface: Option<IfaceId>,
    ) -> bool {
        let c = nf.chain(chain);
        (c.rules.is_empty() && c.policy == Verdict::Accept)
            || self.enforce(
                node,
                nf,
                chain,
                packet,
                in_iface,
                out_iface,
                &mut Track::default(),
            )
    }

    /// Runs a filter chain; false when the packet does not pass. A REJECT answers first.
    #[allow(clippy::too_many_arguments)]
    // Out of line: only nodes with netfilter take it, and inlined it would make LLVM stop
    // inlining the plain routing path into the engine's and the fast path's loops
    // (benches/RESULTS.md, "Inlining of the hot path").
    #[inline(never)]
    fn enforce(
        &mut self,
        node: NodeId,
        nf: &Netfilter,
        chain: ChainName,
        packet: &Ipv4Packet,
        in_iface: Option<IfaceId>,
        out_iface: Option<IfaceId>,
        track: &mut Track,
    ) -> bool {
        if nf.chain(chain).is_open() {
            return true;
        }
        let mut facts = self.facts(node, packet, in_iface, out_iface, track);
        // A packet the node sent itself comes in on, and goes out through, `lo`.
        match chain {
            ChainName::Prerouting | ChainName::Input | ChainName::RawPrerouting
                if in_iface.is_none() =>
            {
                facts.in_iface = Some(IfaceId::LOOPBACK);
            }
            ChainName::Output | ChainName::RawOutput if out_iface.is_none() => {
                facts.out_iface = Some(IfaceId::LOOPBACK);
            }
            _ => {}
        }
        let (verdict, decider) = nf.judge(chain, &mut facts, &mut self.run(node));
        self.keep_marks(track, &facts);
        let kind = StepKind::Filtered {
            chain,
            decider,
            verdict,
            in_iface,
        };
        self.record(node, *packet, kind);
        let with = match verdict {
            Verdict::Accept => return true,
            Verdict::Drop => return false,
            Verdict::Reject(with) => with,
        };
        // The answer carries the new connection's conntrack entry (nf_ct_attach): about a
        // packet this node translated, it leaves translated back, from the address the sender
        // wrote (docs/netfilter.md, "Connection states").
        let (before, translated) = match track.orig {
            Some(orig) if Tuple::of(packet) != Some(orig) => {
                let mut before = *packet;
                set_dst(&mut before, orig.dst, orig.dport);
                set_src(&mut before, orig.src, orig.sport);
                (before, true)
            }
            _ => (*packet, false),
        };
        let packet = &before;
        match reject_error(with) {
            Some(error) => {
                let local = (translated || chain == ChainName::Input).then_some(packet.dst);
                self.icmp_error(node, packet, error, local);
            }
            None => {
                if let Transport::Tcp { sport, dport, .. } = packet.transport {
                    let rst = Ipv4Packet {
                        src: packet.dst,
                        dst: packet.src,
                        ttl: self.dp.ttl(node),
                        transport: Transport::Tcp {
                            sport: dport,
                            dport: sport,
                            flags: TcpFlags::Rst,
                        },
                    };
                    self.reply(node, rst);
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Network;
    use crate::topology::load_str;

    fn net(yaml: &str) -> Network {
        load_str("t.yaml", yaml).expect("valid").network
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    const LAB: &str = "
segments: [{ name: a }, { name: b }]
nodes:
  - name: r
    forwarding: true
    interfaces:
      - { name: e0, segment: a, addresses: [10.0.0.1/24] }
      - { name: e1, segment: b, addresses: [10.0.1.1/24] }
    routes:
      - { to: 10.9.0.0/16, via: 10.0.1.2 }
      - { to: 10.6.0.0/16, type: blackhole }
      - { to: 10.7.0.0/16, type: unreachable }
      - { to: 10.8.0.0/16, type: prohibit }
  - { name: h, interfaces: [{ name: e0, segment: a, addresses: [10.0.0.2/24] }] }
";

    fn echo(dst: &str, ttl: u8) -> Ipv4Packet {
        Ipv4Packet {
            src: ip("10.0.0.2"),
            dst: ip(dst),
            ttl,
            transport: Transport::EchoRequest { id: 1, seq: 1 },
        }
    }

    fn routed(dst: &str, ttl: u8, router: bool) -> Routed {
        let net = net(LAB);
        let c = Compiled::new(&net);
        let name = if router { "r" } else { "h" };
        let node = net.node_by_name(name).expect("node").id;
        c.route_received(node, &echo(dst, ttl))
    }

    #[test]
    fn a_packet_for_any_own_address_is_local() {
        assert_eq!(routed("10.0.1.1", 1, true), Routed::Local);
        assert_eq!(routed("127.0.0.1", 64, true), Routed::Local);
    }

    #[test]
    fn a_host_does_not_forward() {
        assert_eq!(routed("10.0.1.5", 64, false), Routed::NotForwarding);
    }

    #[test]
    fn no_route_before_ttl() {
        assert_eq!(routed("192.0.2.1", 1, true), Routed::NoRoute);
    }

    #[test]
    fn a_reject_route_answers_before_the_ttl_check() {
        for (dst, kind) in [
            ("10.6.0.1", RouteType::Blackhole),
            ("10.7.0.1", RouteType::Unreachable),
            ("10.8.0.1", RouteType::Prohibit),
        ] {
            assert_eq!(routed(dst, 1, true), Routed::Rejected(kind), "{dst}");
        }
    }

    #[test]
    fn ttl_of_one_is_not_forwarded() {
        assert_eq!(routed("10.9.0.1", 1, true), Routed::TtlExceeded);
    }

    #[test]
    fn forward_to_the_gateway_or_on_link() {
        let Routed::Forward { nexthop, .. } = routed("10.9.0.1", 2, true) else {
            panic!("forwarded")
        };
        assert_eq!(nexthop, ip("10.0.1.2"));
        let Routed::Forward { nexthop, .. } = routed("10.0.1.7", 2, true) else {
            panic!("forwarded")
        };
        assert_eq!(nexthop, ip("10.0.1.7"));
    }

    /// `h` owns the bridge `br0` (ports: a, b, c) with br_netfilter, and routes to x behind
    /// eth1. FORWARD drops what bridged rules do not accept. docs/linux-semantics.md,
    /// "Bridges and br_netfilter"; the same cases, checked against the kernel, are
    /// topologies/linux-bridge-netfilter.yaml.
    const BRIDGE: &str = "
segments: [{ name: br }, { name: out }]
nodes:
  - name: h
    forwarding: true
    br_netfilter: BRNF
    interfaces:
      - { name: br0, segment: br, bridge: true, addresses: [10.1.0.1/24, 10.1.0.100/24] }
      - { name: eth1, segment: out, addresses: [10.2.0.1/24] }
    listen: [{ port: 80 }]
    iptables: |
      *nat
      :PREROUTING ACCEPT [0:0]
      :POSTROUTING ACCEPT [0:0]
      -A PREROUTING -d 10.1.0.3/32 -p tcp -m tcp --dport 81 -j DNAT --to-destination 10.1.0.4:80
      -A PREROUTING -d 10.1.0.3/32 -p tcp -m tcp --dport 82 -j DNAT --to-destination 10.2.0.2:80
      -A PREROUTING -d 10.1.0.3/32 -p tcp -m tcp --dport 83 -j DNAT --to-destination 10.1.0.1:80
      -A PREROUTING -d 10.1.0.100/32 -p icmp -j DNAT --to-destination 10.1.0.3
      -A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 85 -j DNAT --to-destination 10.1.0.2:80
      -A PREROUTING -d 10.1.0.100/32 -p tcp -m tcp --dport 86 -j DNAT --to-destination 10.1.0.4:80
      -A POSTROUTING -s 10.1.0.2/32 -d 10.1.0.4/32 -o br0 -j MASQUERADE
      -A POSTROUTING -s 10.1.0.2/32 -d 10.1.0.2/32 -j MASQUERADE
      -A POSTROUTING -s 10.1.0.4/32 -d 10.1.0.4/32 -j MASQUERADE
      COMMIT
      *filter
      :INPUT DROP [0:0]
      :FORWARD DROP [0:0]
      -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
      -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
      -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      -A FORWARD -i br0 -o br0 -p icmp -j ACCEPT
      -A FORWARD -i br0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT
      -A FORWARD -i br0 -o eth1 -j ACCEPT
      COMMIT
  - { name: a, interfaces: [{ name: eth0, segment: br, addresses: [10.1.0.2/24] }], routes: [{ to: default, via: 10.1.0.1 }], listen: [{ port: 80 }] }
  - { name: b, interfaces: [{ name: eth0, segment: br, addresses: [10.1.0.3/24] }], routes: [{ to: default, via: 10.1.0.1 }], listen: [{ port: 80 }, { port: 8080 }] }
  - { name: c, interfaces: [{ name: eth0, segment: br, addresses: [10.1.0.4/24], hairpin: true }], routes: [{ to: default, via: 10.1.0.1 }], listen: [{ port: 80 }] }
  - { name: x, interfaces: [{ name: eth0, segment: out, addresses: [10.2.0.2/24] }], routes: [{ to: default, via: 10.2.0.1 }], listen: [{ port: 80 }] }
";

    fn bridge_net(br_netfilter: bool) -> Network {
        net(&BRIDGE.replace("BRNF", if br_netfilter { "true" } else { "false" }))
    }

    /// A probe from `from` to `dst` on the bridge lab: what it saw, and every step.
    fn bridged_probe(
        net: &Network,
        from: &str,
        dst: &str,
        kind: &crate::sim::ProbeKind,
    ) -> crate::sim::ProbeRun {
        let from = net.node_by_name(from).expect("node").id;
        let config = crate::sim::SimConfig::default();
        crate::sim::run_probe(net, from, ip(dst), kind, &config)
    }

    fn tcp(port: u16) -> crate::sim::ProbeKind {
        crate::sim::ProbeKind::tcp(Port::new(port).expect("port"))
    }

    /// The nodes that handled the probe's first packet (until its first delivery), by name.
    fn delivered_at(net: &Network, run: &crate::sim::ProbeRun) -> Option<String> {
        run.steps.iter().find_map(|s| match s.kind {
            StepKind::Delivered { .. } => Some(net.node(s.node).name.clone()),
            _ => None,
        })
    }

    fn connected(run: &crate::sim::ProbeRun) -> bool {
        matches!(run.observed, crate::sim::Observed::Connected { .. })
    }

    #[test]
    fn bridged_frames_meet_forward_with_the_bridge_as_in_and_out() {
        let net = bridge_net(true);
        let accepted = bridged_probe(&net, "a", "10.1.0.3", &tcp(80));
        assert!(connected(&accepted), "{:?}", accepted.observed);
        let h = net.node_by_name("h").expect("h").id;
        assert!(accepted.steps.iter().any(|s| s.node == h
            && matches!(
                s.kind,
                StepKind::Filtered {
                    chain: ChainName::Forward,
                    verdict: Verdict::Accept,
                    ..
                }
            )));
        // No rule accepts tcp 8080 across the bridge: FORWARD's policy drops it.
        let dropped = bridged_probe(&net, "a", "10.1.0.3", &tcp(8080));
        assert!(matches!(
            dropped.observed,
            crate::sim::Observed::Silence { .. }
        ));
    }

    #[test]
    fn without_br_netfilter_a_bridge_only_switches() {
        let net = bridge_net(false);
        let run = bridged_probe(&net, "a", "10.1.0.3", &tcp(8080));
        assert!(connected(&run), "{:?}", run.observed);
        let h = net.node_by_name("h").expect("h").id;
        assert!(run.steps.iter().all(|s| s.node != h));
    }

    #[test]
    fn bridged_frames_keep_their_ttl() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.3", &crate::sim::ProbeKind::ping(1));
        let crate::sim::Observed::Ping { replies, .. } = &run.observed else {
            panic!("{:?}", run.observed)
        };
        assert_eq!(replies.iter().map(|r| r.ttl).collect::<Vec<_>>(), [64]);
        let h = net.node_by_name("h").expect("h").id;
        assert!(
            run.steps
                .iter()
                .any(|s| s.node == h && matches!(s.kind, StepKind::Bridged { .. }))
        );
        assert!(
            !run.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Forwarded { .. }))
        );
    }

    #[test]
    fn a_dnat_to_another_port_stays_bridged() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.3", &tcp(81));
        assert!(connected(&run), "{:?}", run.observed);
        assert_eq!(delivered_at(&net, &run).as_deref(), Some("c"));
        // (c's answer goes to h, whose address the masquerade gave the SYN, and is routed.)
        let to_c = run
            .steps
            .iter()
            .take_while(|s| !matches!(s.kind, StepKind::Delivered { .. }));
        assert!(
            !to_c
                .clone()
                .any(|s| matches!(s.kind, StepKind::Forwarded { .. }))
        );
        assert!(
            to_c.clone()
                .any(|s| matches!(s.kind, StepKind::Bridged { .. }))
        );
    }

    #[test]
    fn a_dnat_elsewhere_is_routed_by_the_bridges_owner() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.3", &tcp(82));
        assert!(connected(&run), "{:?}", run.observed);
        assert_eq!(delivered_at(&net, &run).as_deref(), Some("x"));
        let h = net.node_by_name("h").expect("h").id;
        assert!(
            run.steps
                .iter()
                .any(|s| s.node == h && matches!(s.kind, StepKind::Forwarded { .. }))
        );
    }

    #[test]
    fn a_dnat_to_the_owner_is_delivered_through_input() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.3", &tcp(83));
        assert!(connected(&run), "{:?}", run.observed);
        assert_eq!(delivered_at(&net, &run).as_deref(), Some("h"));
        let h = net.node_by_name("h").expect("h").id;
        assert!(run.steps.iter().any(|s| s.node == h
            && matches!(
                s.kind,
                StepKind::Filtered {
                    chain: ChainName::Input,
                    ..
                }
            )));
    }

    #[test]
    fn masquerade_out_of_the_bridge_takes_the_bridges_address() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.4", &tcp(80));
        assert!(connected(&run), "{:?}", run.observed);
        let c = net.node_by_name("c").expect("c").id;
        let seen = run
            .steps
            .iter()
            .find(|s| s.node == c && matches!(s.kind, StepKind::Delivered { .. }));
        assert_eq!(seen.map(|s| s.packet.src), Some(ip("10.1.0.1")));
    }

    #[test]
    fn a_frame_to_the_owner_translated_behind_the_same_bridge_stays_bridged() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.100", &crate::sim::ProbeKind::ping(1));
        let crate::sim::Observed::Ping { replies, .. } = &run.observed else {
            panic!("{:?}", run.observed)
        };
        // b answers (TTL 64 both ways: bridged, not routed), as 10.1.0.100.
        assert_eq!(
            replies.iter().map(|r| (r.from, r.ttl)).collect::<Vec<_>>(),
            [(ip("10.1.0.100"), 64)]
        );
        assert!(
            !run.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Forwarded { .. }))
        );
        // Without br_netfilter h routes it: TTL 63.
        let routed = bridged_probe(
            &bridge_net(false),
            "a",
            "10.1.0.100",
            &crate::sim::ProbeKind::ping(1),
        );
        assert!(
            routed
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Forwarded { .. }))
        );
    }

    #[test]
    fn a_bridge_sends_nothing_back_out_of_its_ingress_port_without_hairpin_mode() {
        let net = bridge_net(true);
        let run = bridged_probe(&net, "a", "10.1.0.100", &tcp(85));
        assert!(matches!(run.observed, crate::sim::Observed::Silence { .. }));
        let a_port = net.node_by_name("a").expect("a").interfaces[0];
        assert!(run.steps.iter().any(|s| s.kind
            == StepKind::Dropped {
                in_iface: Some(net.node_by_name("h").expect("h").interfaces[0]),
                reason: DropReason::HairpinOff { port: a_port },
            }));
        // c's port has hairpin mode.
        let hairpin = bridged_probe(&net, "c", "10.1.0.100", &tcp(86));
        assert!(connected(&hairpin), "{:?}", hairpin.observed);
    }

    #[test]
    fn the_owners_own_traffic_into_the_bridge_is_not_forwarded() {
        // h's OUTPUT accepts; were its packets bridged through FORWARD, the policy would drop
        // them.
        let net = bridge_net(true);
        let run = bridged_probe(&net, "h", "10.1.0.3", &tcp(8080));
        assert!(connected(&run), "{:?}", run.observed);
        assert!(
            !run.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Bridged { .. }))
        );
    }

    #[test]
    fn reject_with_maps_to_the_icmp_error() {
        assert_eq!(reject_error(RejectWith::TcpReset), None);
        assert_eq!(
            reject_error(RejectWith::AdminProhibited),
            Some(IcmpError::AdminProhibited)
        );
        assert_eq!(
            reject_error(RejectWith::PortUnreachable),
            Some(IcmpError::PortUnreachable)
        );
    }
}
