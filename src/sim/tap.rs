//! The capture tap: what the engine put on the wire, as it put it there.
//!
//! With [`super::SimConfig::capture`] on, the engine hands every frame it transmits onto a
//! segment to the tap (ARP requests and replies, IPv4 packets with the Ethernet addresses the
//! sender chose), stamped with the time it reaches the other interfaces of the segment, before
//! any loss: a capture on the link sees what the sender transmitted. Packets an interface gave up
//! on (nobody answered ARP for their next hop) are recorded too, as never having left. Each IPv4
//! transmission carries its packet's *journey*: a packet a node makes starts one, a packet a node
//! forwards keeps the journey it arrived with, so a packet can be followed hop by hop.
//!
//! The tap only watches: it draws nothing from the RNG and decides nothing, so a tapped run is
//! the same run. Off (the default), the engine holds no tap and checks one `Option` per frame.

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap as HashMap;

use super::packet::{Frame, FramePayload, Ipv4Packet};
use super::time::SimTime;
use crate::model::IfaceId;

/// One thing an interface did on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmission {
    /// For a frame: when it reached the other interfaces of the segment (sent, plus the node's
    /// delay and the segment's latency), the time a capture on the link stamps it with. For an
    /// unresolved packet: when the interface gave up on it.
    pub at: SimTime,
    /// The interface that sent it.
    pub out: IfaceId,
    pub wire: Wire,
    /// The journey of the IPv4 packet (`None` for ARP).
    pub journey: Option<u32>,
}

/// What the interface put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// A frame on the segment, as the sender built it.
    Frame(Frame),
    /// A packet that never left: nobody answered ARP for `nexthop`.
    Unresolved {
        packet: Ipv4Packet,
        nexthop: Ipv4Addr,
    },
}

/// The tap of one run.
#[derive(Debug, Default)]
pub(super) struct Tap {
    frames: Vec<Transmission>,
    /// The journey of the packet the engine is handling now.
    current: u32,
    /// Journeys handed out so far.
    journeys: u32,
    /// Scheduled arrivals (event sequence number) → the journey of the packet they carry.
    arrivals: HashMap<u64, u32>,
}

impl Tap {
    /// The journey of the packet being handled.
    pub(super) fn journey(&self) -> u32 {
        self.current
    }

    /// A node makes a packet: a new journey, current until [`Tap::resume`]; returns the one
    /// it interrupts.
    pub(super) fn start_journey(&mut self) -> u32 {
        let outer = self.current;
        self.current = self.journeys;
        self.journeys += 1;
        outer
    }

    /// Makes `journey` current again (after [`Tap::start_journey`], or for a packet that
    /// waited for ARP).
    pub(super) fn resume(&mut self, journey: u32) {
        self.current = journey;
    }

    /// `frame` left `out`, reaching the segment's other interfaces at `at`.
    pub(super) fn transmitted(&mut self, at: SimTime, out: IfaceId, frame: Frame) {
        let journey = matches!(frame.payload, FramePayload::Ip(_)).then_some(self.current);
        self.frames.push(Transmission {
            at,
            out,
            wire: Wire::Frame(frame),
            journey,
        });
    }

    /// `out` gave up on `packet` of `journey`: nobody answered ARP for `nexthop`.
    pub(super) fn unresolved(
        &mut self,
        at: SimTime,
        out: IfaceId,
        packet: Ipv4Packet,
        nexthop: Ipv4Addr,
        journey: u32,
    ) {
        self.frames.push(Transmission {
            at,
            out,
            wire: Wire::Unresolved { packet, nexthop },
            journey: Some(journey),
        });
    }

    /// The arrival event `seq` carries the current packet.
    pub(super) fn scheduled(&mut self, seq: u64) {
        self.arrivals.insert(seq, self.current);
    }

    /// The arrival event `seq` is being handled: its packet's journey becomes current.
    pub(super) fn arriving(&mut self, seq: u64) {
        if let Some(journey) = self.arrivals.remove(&seq) {
            self.current = journey;
        }
    }

    pub(super) fn into_frames(self) -> Vec<Transmission> {
        self.frames
    }
}
