//! ARP answered from user space: addresses an interface announces without its node holding
//! them (`answers_arp_for`; MetalLB's layer-2 speaker announcing a LoadBalancer address). One
//! thread per such interface, inside its node's namespace, reads frames from an `AF_PACKET`
//! socket bound to the interface and answers each ARP request for an announced address with
//! the interface's MAC — what the speaker does (docs/linux-semantics.md, "ARP answered from
//! user space"). The kernel of that namespace neither answers nor learns from those requests.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pnet::datalink::{self, Channel, Config, DataLinkReceiver, DataLinkSender};
use pnet::packet::Packet as _;
use pnet::packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet::packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet::util::MacAddr;

use super::EmulateError;
use super::netns::enter;

/// How long a read waits before the stop flag is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// Ethernet header (14) plus an IPv4-over-Ethernet ARP packet (28).
const FRAME_LEN: usize = 42;

/// An open responder: the interface's MAC and both ends of its packet socket.
pub(super) struct Responder {
    mac: MacAddr,
    addresses: Vec<Ipv4Addr>,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

/// Opens a packet socket on `iface` inside the namespace at `netns` (the calling thread
/// enters it for good).
pub(super) fn open(
    netns: &Path,
    node: &str,
    iface: &str,
    addresses: Vec<Ipv4Addr>,
) -> Result<Responder, EmulateError> {
    enter(netns)?;
    let what = || format!("answering ARP on `{node}`'s `{iface}`");
    let fail = |message: String| EmulateError::Command {
        what: what(),
        message,
    };
    let link = datalink::interfaces()
        .into_iter()
        .find(|i| i.name == iface)
        .ok_or_else(|| fail("no such interface in the namespace".into()))?;
    let mac = link
        .mac
        .ok_or_else(|| fail("the interface has no MAC address".into()))?;
    let config = Config {
        read_timeout: Some(POLL),
        ..Config::default()
    };
    match datalink::channel(&link, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok(Responder {
            mac,
            addresses,
            tx,
            rx,
        }),
        Ok(_) => Err(fail("not an Ethernet channel".into())),
        Err(e) => Err(EmulateError::io(what(), e)),
    }
}

impl Responder {
    /// Answers until `stop` is set.
    pub(super) fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let Ok(frame) = self.rx.next() else {
                // A read timeout (or a transient error): look at the flag again.
                continue;
            };
            if let Some(reply) = answer(frame, self.mac, &self.addresses) {
                let _ = self.tx.send_to(&reply, None);
            }
        }
    }
}

/// The reply to `frame`, when it is an ARP request for one of `addresses` that reached this
/// interface (broadcast or sent to `mac`) and was not sent by it: the interface's MAC for the
/// asked address, to the asker.
fn answer(frame: &[u8], mac: MacAddr, addresses: &[Ipv4Addr]) -> Option<[u8; FRAME_LEN]> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp
        || eth.get_source() == mac
        || !(eth.get_destination() == mac || eth.get_destination().is_broadcast())
    {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    if arp.get_operation() != ArpOperations::Request
        || arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || !addresses.contains(&arp.get_target_proto_addr())
    {
        return None;
    }
    let mut out = [0u8; FRAME_LEN];
    let mut reply_eth = MutableEthernetPacket::new(&mut out)?;
    reply_eth.set_destination(arp.get_sender_hw_addr());
    reply_eth.set_source(mac);
    reply_eth.set_ethertype(EtherTypes::Arp);
    let mut reply = MutableArpPacket::new(&mut out[14..])?;
    reply.set_hardware_type(ArpHardwareTypes::Ethernet);
    reply.set_protocol_type(EtherTypes::Ipv4);
    reply.set_hw_addr_len(6);
    reply.set_proto_addr_len(4);
    reply.set_operation(ArpOperations::Reply);
    reply.set_sender_hw_addr(mac);
    reply.set_sender_proto_addr(arp.get_target_proto_addr());
    reply.set_target_hw_addr(arp.get_sender_hw_addr());
    reply.set_target_proto_addr(arp.get_sender_proto_addr());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
    const ASKER: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);

    fn request(dst: MacAddr, src: MacAddr, target: Ipv4Addr) -> [u8; FRAME_LEN] {
        let mut out = [0u8; FRAME_LEN];
        let mut eth = MutableEthernetPacket::new(&mut out).expect("room");
        eth.set_destination(dst);
        eth.set_source(src);
        eth.set_ethertype(EtherTypes::Arp);
        let mut arp = MutableArpPacket::new(&mut out[14..]).expect("room");
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(src);
        arp.set_sender_proto_addr(Ipv4Addr::new(10, 0, 0, 2));
        arp.set_target_proto_addr(target);
        out
    }

    const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 240);

    #[test]
    fn a_broadcast_request_for_an_announced_address_gets_the_interfaces_mac() {
        let frame = request(MacAddr::broadcast(), ASKER, LB);
        let reply = answer(&frame, OURS, &[LB]).expect("answered");
        let eth = EthernetPacket::new(&reply).expect("frame");
        assert_eq!((eth.get_destination(), eth.get_source()), (ASKER, OURS));
        let arp = ArpPacket::new(eth.payload()).expect("arp");
        assert_eq!(arp.get_operation(), ArpOperations::Reply);
        assert_eq!(arp.get_sender_hw_addr(), OURS);
        assert_eq!(arp.get_sender_proto_addr(), LB);
        assert_eq!(arp.get_target_hw_addr(), ASKER);
        assert_eq!(arp.get_target_proto_addr(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn a_unicast_request_to_the_interface_is_answered_too() {
        assert!(answer(&request(OURS, ASKER, LB), OURS, &[LB]).is_some());
    }

    #[test]
    fn other_addresses_other_destinations_and_our_own_requests_are_not_answered() {
        let other = Ipv4Addr::new(10, 0, 0, 241);
        assert!(answer(&request(MacAddr::broadcast(), ASKER, other), OURS, &[LB]).is_none());
        let elsewhere = MacAddr(2, 0, 0, 0, 0, 9);
        assert!(answer(&request(elsewhere, ASKER, LB), OURS, &[LB]).is_none());
        assert!(answer(&request(MacAddr::broadcast(), OURS, LB), OURS, &[LB]).is_none());
        assert!(answer(&[0u8; 10], OURS, &[LB]).is_none());
    }
}
