//! The packets the engine moves: compact `Copy` values, so a hop allocates nothing.
//!
//! Only the header fields that decide a packet's fate are kept (addresses, TTL, ICMP type,
//! ports, TCP flags). Payload bytes are not simulated; listeners answer from the model.

use std::net::Ipv4Addr;

use crate::model::MacAddr;

/// The broadcast MAC address.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

/// An Ethernet frame on a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub payload: FramePayload,
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePayload {
    Arp(Arp),
    Ip(Ipv4Packet),
}

/// An ARP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An IPv4 packet.
// Aligned to 8 (32 bytes, not 28 at alignment 2): copies of a packet are then two aligned
// 16-byte moves, and the fast path's crossing 20 % faster (benches/RESULTS.md, "Packets aligned
// to 8 bytes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(8))]
pub struct Ipv4Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub transport: Transport,
}

/// The transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    EchoRequest {
        id: u16,
        seq: u16,
    },
    EchoReply {
        id: u16,
        seq: u16,
    },
    /// An ICMP error about `original`, the header of the packet that caused it.
    IcmpError {
        error: IcmpError,
        original: Inner,
    },
    /// ICMP redirect (type 5 code 1, host): "use `gateway` for `original.dst`". Advice, not an
    /// error: the packet it is about was forwarded anyway.
    Redirect {
        gateway: Ipv4Addr,
        original: Inner,
    },
    Tcp {
        sport: u16,
        dport: u16,
        flags: TcpFlags,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
}

/// The part of an offending packet an ICMP error quotes: enough to find the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub flow: InnerFlow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InnerFlow {
    Echo { id: u16, seq: u16 },
    Tcp { sport: u16, dport: u16 },
    Udp { sport: u16, dport: u16 },
}

/// ICMP errors the engine sends (type/code as in RFC 792 and 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// Type 3 code 0.
    NetUnreachable,
    /// Type 3 code 1.
    HostUnreachable,
    /// Type 3 code 3.
    PortUnreachable,
    /// Type 3 code 13.
    AdminProhibited,
    /// Type 11 code 0.
    TtlExceeded,
}

/// The TCP segments of a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpFlags {
    Syn,
    SynAck,
    /// RST+ACK, the answer of a port nothing listens on.
    Rst,
}

impl TcpFlags {
    /// The flags as people write them: `SYN`, `SYN-ACK`, `RST-ACK`.
    pub fn name(self) -> &'static str {
        match self {
            TcpFlags::Syn => "SYN",
            TcpFlags::SynAck => "SYN-ACK",
            TcpFlags::Rst => "RST-ACK",
        }
    }
}

impl Ipv4Packet {
    /// The quoted header for an ICMP error about this packet; `None` for packets that must
    /// never cause one (ICMP errors themselves, RFC 1122 3.2.2).
    pub fn inner(&self) -> Option<Inner> {
        let flow = match self.transport {
            Transport::EchoRequest { id, seq } | Transport::EchoReply { id, seq } => {
                InnerFlow::Echo { id, seq }
            }
            Transport::Tcp { sport, dport, .. } => InnerFlow::Tcp { sport, dport },
            Transport::Udp { sport, dport } => InnerFlow::Udp { sport, dport },
            Transport::IcmpError { .. } | Transport::Redirect { .. } => return None,
        };
        Some(Inner {
            src: self.src,
            dst: self.dst,
            flow,
        })
    }

    /// A short description for traces: `ICMP echo request id=1 seq=1`, `TCP SYN 40000 → 22`.
    pub fn describe(&self) -> String {
        match self.transport {
            Transport::EchoRequest { seq, .. } => format!("ICMP echo request seq={seq}"),
            Transport::EchoReply { seq, .. } => format!("ICMP echo reply seq={seq}"),
            Transport::IcmpError { error, .. } => format!("ICMP {}", error.name()),
            Transport::Redirect { gateway, .. } => format!("ICMP redirect to {gateway}"),
            Transport::Tcp {
                sport,
                dport,
                flags,
            } => format!("TCP {} {sport} → {dport}", flags.name()),
            Transport::Udp { sport, dport } => format!("UDP {sport} → {dport}"),
        }
    }
}

impl IcmpError {
    /// The name iputils prints after `From ADDR icmp_seq=N`.
    pub fn name(self) -> &'static str {
        match self {
            IcmpError::NetUnreachable => "Destination Net Unreachable",
            IcmpError::HostUnreachable => "Destination Host Unreachable",
            IcmpError::PortUnreachable => "Destination Port Unreachable",
            IcmpError::AdminProhibited => "Packet filtered",
            IcmpError::TtlExceeded => "Time to live exceeded",
        }
    }
}
