//! What happened to packets, hop by hop: the record traces and explanations are made from.

use std::net::Ipv4Addr;

use super::packet::Ipv4Packet;
use super::time::SimTime;
use crate::model::{ChainName, Decider, IfaceId, NatHook, NodeId, RouteType, SegmentId, Verdict};

/// One thing a node did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub at: SimTime,
    pub node: NodeId,
    pub packet: Ipv4Packet,
    pub kind: StepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// The node sent a packet it made (`out: None` for loopback), by route `route`
    /// (index in the node's table).
    Sent {
        out: Option<IfaceId>,
        route: Option<usize>,
        nexthop: Ipv4Addr,
    },
    /// The node routed a packet through (TTL already decremented).
    Forwarded {
        in_iface: IfaceId,
        out: IfaceId,
        route: usize,
        nexthop: Ipv4Addr,
    },
    /// The node's bridge `bridge` carried the packet between two of its ports, after the
    /// node's iptables let it through (br_netfilter; TTL unchanged).
    Bridged { bridge: IfaceId },
    /// The packet reached one of the node's own addresses.
    Delivered { in_iface: Option<IfaceId> },
    /// Nothing listened: the node answered with RST or ICMP port unreachable.
    Refused,
    /// NAT rewrote the packet (`packet` is the result); `rule` is the NAT rule's index, or
    /// `None` when the connection's existing translation applied.
    Translated {
        hook: NatHook,
        rule: Option<crate::model::RuleAt>,
        before: Ipv4Packet,
    },
    /// A filter chain judged the packet; `Drop` and `Reject` end it here.
    Filtered {
        chain: ChainName,
        decider: Decider,
        verdict: Verdict,
        in_iface: Option<IfaceId>,
    },
    /// The packet died here.
    Dropped {
        in_iface: Option<IfaceId>,
        reason: DropReason,
    },
}

/// Why a packet died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The sending node has no route to the destination.
    NoRouteAtSender,
    /// A forwarding node has no route to the destination.
    NoRoute,
    /// The node is not a router (`forwarding: false`) and the packet is not for it.
    ForwardingDisabled,
    /// The TTL ran out.
    TtlExpired,
    /// No answer to ARP for the next hop.
    ArpFailed { iface: IfaceId, nexthop: Ipv4Addr },
    /// A reply or error could not be sent: no route back to the sender.
    NoRouteBack,
    /// Lost on a lossy segment.
    Lost { segment: SegmentId },
    /// It arrived from the wire with one of the node's own addresses as its source: Linux drops
    /// such "martian" packets (`accept_local=0`).
    MartianSource,
    /// A packet from the wire addressed to 127/8 (after PREROUTING) on an interface without
    /// `route_localnet=1`: a martian destination, dropped before routing.
    MartianDestination,
    /// A packet with a loopback source (127/8) would leave through a real interface (after an
    /// OUTPUT DNAT of 127.0.0.1 to another host): the kernel's route refuses it
    /// (`route_localnet=0`) and the packet is dropped on the way out.
    LoopbackSource,
    /// The best route to the destination is a `blackhole`, `unreachable` or `prohibit` route:
    /// the packet is dropped (and, when forwarded through the last two, answered with an ICMP
    /// error; a local sender's call fails).
    RejectRoute(RouteType),
    /// A node's bridge would send the packet (after its owner translated it) back out of the
    /// port it came in through, `port` (an interface of the node behind it), and that port has
    /// no hairpin mode: the bridge drops it.
    HairpinOff { port: IfaceId },
}
