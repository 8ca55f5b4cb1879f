//! Captures of a simulated probe: the frames the engine put on each link, byte for byte,
//! written as a pcapng file with one interface per link (or as classic pcap files, one per link).
//!
//! This module owns the encoding, not the dataplane. The frames are those the engine's capture
//! tap recorded as it transmitted them ([`crate::sim::Transmission`]): ARP requests and replies
//! and IPv4 packets, with the Ethernet addresses the sender chose, on the link it sent them on,
//! stamped with the simulation clock when they reached the other end (the time the receiver's
//! step shows in `reachlab trace`). A frame a lossy segment dropped is in the capture, as the
//! sender transmitted it. Nothing here resolves ARP or picks a next hop, an owner or an address:
//! a run made without the tap is made again with it (the engine is deterministic: the same
//! network, configuration and seed give the same frames).
//!
//! The engine keeps header fields, not payloads, and stops a TCP probe at the handshake. The
//! bytes around them are the tools' (iputils' echo data, a DNS query, Linux's SYN options), and
//! the conversation the tool then has (OpenSSH's identification strings, curl's request and the
//! HTTP answer, the close) is added along the path the handshake's frames took, with each link's
//! own addresses, ports and MACs, so NAT shows on every link. Headers are encoded with smoltcp's
//! `wire` representations (`Repr` → `emit`), checksums included.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr,
    Icmpv4TimeExceeded, IpAddress, IpProtocol, Ipv4Packet as WireIpv4, Ipv4Repr, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

use crate::model::{IfaceId, MacAddr, Network, NodeId, Probe, SegmentId, Service};
use crate::run::ProbeResult;
use crate::sim::{
    Arp, ArpOp, Frame, FramePayload, IcmpError, Inner, InnerFlow, Ipv4Packet, Observed, ProbeRun,
    SimConfig, SimTime, TcpFlags, Transmission, Transport, Wire, run_probe,
};

/// A capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("cannot write the capture {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An IPv4 packet crossing one link: what the picture draws as a hop and the capture records as
/// a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// When the frame reached the other end of the link (for a packet that never left: when
    /// its interface gave up on it).
    pub at: SimTime,
    /// The interface that sent it.
    pub from: IfaceId,
    /// The interface the frame was addressed to; `None` when nobody answered ARP (the packet
    /// never left).
    pub to: Option<IfaceId>,
    /// The packet as it crossed the link (after the sender's NAT).
    pub packet: Ipv4Packet,
    /// The packet's journey, as the engine followed it: hops of one chain follow one packet from
    /// the node that made it on.
    pub chain: usize,
    /// The frame as the engine sent it; `None` when the packet never left.
    pub frame: Option<Frame>,
}

/// One frame of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    pub at: SimTime,
    /// The link (segment) it was seen on.
    pub link: SegmentId,
    /// The Ethernet frame, without FCS.
    pub bytes: Vec<u8>,
    /// Which interfaces it went between (`pc:vboxnat0 → vm-nat1:ext`).
    pub comment: String,
}

/// The frames of one probe, on every link they crossed, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capture {
    /// The links that carried frames, in the file's order of segments.
    pub links: Vec<SegmentId>,
    pub frames: Vec<CapturedFrame>,
}

/// The client's initial sequence number (fixed: same file, same bytes).
const CLIENT_ISN: u32 = 0x7265_6163; // "reac"
/// The server's initial sequence number.
const SERVER_ISN: u32 = 0x686c_6162; // "hlab"
/// The window Linux advertises in a SYN (64240 = 44 × 1460).
const WINDOW: u16 = 64240;
/// The same window once scaled by the window-scale factor 2^7 both SYNs offer.
const WINDOW_SCALED: u16 = 502;
/// What the UDP probe sends (and an echo service sends back) to ports without a protocol of
/// their own below.
const UDP_PAYLOAD: &[u8] = b"reachlab udp probe\n";
/// OpenSSH's identification string on the client side (Ubuntu 22.04, as in the labs).
const SSH_CLIENT_ID: &[u8] = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4\r\n";

/// What the engine transmitted in `run`: the run's own tap, or, for a run made without it
/// ([`SimConfig::capture`] off), the same run made again with the tap on. `config` is the one
/// the run was made with.
pub fn transmissions<'r>(
    net: &Network,
    run: &'r ProbeRun,
    config: &SimConfig,
) -> Cow<'r, [Transmission]> {
    if let Some(wire) = &run.wire {
        return Cow::Borrowed(wire);
    }
    let tapped = SimConfig {
        capture: true,
        record: false,
        ..config.clone()
    };
    let again = run_probe(net, run.from, run.dst, &run.kind, &tapped);
    Cow::Owned(again.wire.unwrap_or_default())
}

/// The IPv4 packets of a run on the links they crossed (or were to cross, when nobody answered
/// ARP), in time order.
pub fn hops(net: &Network, run: &ProbeRun, config: &SimConfig) -> Vec<Hop> {
    hops_of(net, &transmissions(net, run, config))
}

fn hops_of(net: &Network, wire: &[Transmission]) -> Vec<Hop> {
    let mut hops: Vec<Hop> = wire
        .iter()
        .filter_map(|t| {
            let chain = t.journey? as usize;
            let (to, packet, frame) = match t.wire {
                Wire::Frame(frame) => match frame.payload {
                    FramePayload::Ip(packet) => {
                        (addressee(net, t.out, frame.dst), packet, Some(frame))
                    }
                    FramePayload::Arp(_) => return None,
                },
                Wire::Unresolved { packet, .. } => (None, packet, None),
            };
            Some(Hop {
                at: t.at,
                from: t.out,
                to,
                packet,
                chain,
                frame,
            })
        })
        .collect();
    hops.sort_by_key(|h| h.at);
    hops
}

/// The interface on `out`'s segment whose MAC is `dst` (the NIC that takes a frame to `dst`).
fn addressee(net: &Network, out: IfaceId, dst: MacAddr) -> Option<IfaceId> {
    let segment = net.segment(net.interface(out).segment);
    segment
        .interfaces
        .iter()
        .copied()
        .find(|&i| i != out && net.interface(i).mac == dst)
}

/// Everything the probe put on the wire, as frames.
pub fn capture(net: &Network, result: &ProbeResult, config: &SimConfig) -> Capture {
    let wire = transmissions(net, &result.run, config);
    let hops = hops_of(net, &wire);
    let mut frames: Vec<(SimTime, usize, CapturedFrame)> = Vec::new();
    let mut push = |frame: CapturedFrame| {
        let order = frames.len();
        frames.push((frame.at, order, frame));
    };
    let builder = Builder { net };
    for t in wire.iter() {
        let Wire::Frame(frame) = t.wire else {
            continue;
        };
        push(match frame.payload {
            FramePayload::Arp(arp) => builder.arp_frame(t.at, t.out, frame, arp),
            FramePayload::Ip(packet) => {
                builder.ip_frame(t.at, t.out, frame, &packet, &Segment::Engine, &hops)
            }
        });
    }
    for (hop, at, segment) in conversation(net, result, &hops, config) {
        if let Some(frame) = hop.frame {
            push(builder.ip_frame(at, hop.from, frame, &hop.packet, &segment, &hops));
        }
    }
    frames.sort_by_key(|(at, order, _)| (*at, *order));
    let mut links: Vec<SegmentId> = frames.iter().map(|(_, _, f)| f.link).collect();
    links.sort();
    links.dedup();
    Capture {
        links,
        frames: frames.into_iter().map(|(_, _, f)| f).collect(),
    }
}

/// Writes the capture of a probe: pcapng with one interface per link to `path`, or, when `path`
/// is a directory (existing, or written with a trailing `/`), one classic pcap file per link in
/// it, named after the link.
pub fn write_capture(
    net: &Network,
    result: &ProbeResult,
    config: &SimConfig,
    path: &Path,
) -> Result<Vec<PathBuf>, PcapError> {
    let capture = capture(net, result, config);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PcapError::Io { path, source }
    };
    let as_dir = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
    if !as_dir {
        write_regular(path, &capture.to_pcapng(net)).map_err(io(path))?;
        return Ok(vec![path.to_path_buf()]);
    }
    std::fs::create_dir_all(path).map_err(io(path))?;
    let mut written = Vec::new();
    for &link in &capture.links {
        let file = path.join(format!("{}.pcap", file_name(&net.segment(link).name)));
        write_regular(&file, &capture.to_pcap(link)).map_err(io(&file))?;
        written.push(file);
    }
    Ok(written)
}

/// Writes `bytes` to a new or regular file at `path`; a FIFO, device or socket there is
/// refused without blocking (checked before opening, opened with `O_NONBLOCK`, checked again).
fn write_regular(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let refuse = |kind: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file; give the path of a file to create"),
        )
    };
    if let Ok(meta) = std::fs::metadata(path)
        && let Some(kind) = crate::topology::irregular_kind(meta.file_type())
    {
        return Err(refuse(kind));
    }
    let mut file = crate::format::open_options()
        .write(true)
        .create(true)
        .open(path)?;
    if let Some(kind) = crate::topology::irregular_kind(file.metadata()?.file_type()) {
        return Err(refuse(kind));
    }
    file.set_len(0)?;
    file.write_all(bytes)
}

/// A segment name made safe as a file name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
// ---------------------------------------------------------------------------- file formats

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u16 = 1;

impl Capture {
    /// The pcapng file: a section header, one interface description per link (`if_name` is the
    /// segment's name, which tshark shows as `frame.interface_name`), then every frame with a
    /// comment naming the interfaces it went between. Timestamps in nanoseconds.
    pub fn to_pcapng(&self, net: &Network) -> Vec<u8> {
        let mut out = Vec::new();
        // Section Header Block.
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        let app = format!("reachlab {}", env!("CARGO_PKG_VERSION"));
        push_option(&mut body, 4, app.as_bytes()); // shb_userappl
        push_option(&mut body, 0, &[]);
        push_block(&mut out, 0x0A0D_0D0A, &body);
        // One Interface Description Block per link.
        let mut index = BTreeMap::new();
        for (i, &link) in self.links.iter().enumerate() {
            index.insert(link, i as u32);
            let segment = net.segment(link);
            let mut body = Vec::new();
            body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes()); // no snapshot limit
            push_option(&mut body, 2, segment.name.as_bytes()); // if_name
            let members: Vec<String> = segment
                .interfaces
                .iter()
                .map(|&i| {
                    let iface = net.interface(i);
                    format!("{}:{}", net.node(iface.node).name, iface.name)
                })
                .collect();
            let description = format!("segment {} ({})", segment.name, members.join(", "));
            push_option(&mut body, 3, description.as_bytes()); // if_description
            push_option(&mut body, 9, &[9]); // if_tsresol: nanoseconds
            push_option(&mut body, 0, &[]);
            push_block(&mut out, 1, &body);
        }
        // Enhanced Packet Blocks.
        for frame in &self.frames {
            let Some(&interface) = index.get(&frame.link) else {
                continue;
            };
            let ns = frame.at.0;
            let mut body = Vec::new();
            body.extend_from_slice(&interface.to_le_bytes());
            body.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
            body.extend_from_slice(&(ns as u32).to_le_bytes());
            let len = frame.bytes.len() as u32;
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&frame.bytes);
            pad4(&mut body);
            push_option(&mut body, 1, frame.comment.as_bytes()); // opt_comment
            push_option(&mut body, 0, &[]);
            push_block(&mut out, 6, &body);
        }
        out
    }

    /// A classic pcap file of one link (nanosecond timestamps, LINKTYPE_ETHERNET).
    pub fn to_pcap(&self, link: SegmentId) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xA1B2_3C4Du32.to_le_bytes()); // nanosecond magic
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&262_144u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
        for frame in self.frames.iter().filter(|f| f.link == link) {
            let ns = frame.at.0;
            let secs = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
            out.extend_from_slice(&secs.to_le_bytes());
            out.extend_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
            let len = frame.bytes.len() as u32;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&frame.bytes);
        }
        out
    }
}

fn pad4(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

/// A pcapng option: code, length, value padded to 32 bits.
fn push_option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&value[..usize::from(len)]);
    pad4(body);
}

/// A pcapng block: type, total length, body, total length.
fn push_block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let total = (body.len() + 12) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

// ---------------------------------------------------------------------------- the conversation

/// What a TCP segment carries besides the engine's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Encode the engine's packet as it is (SYN, SYN/ACK, RST, UDP, ICMP).
    Engine,
    /// A segment of the synthesised conversation.
    Tcp {
        seq: u32,
        ack: u32,
        control: TcpControl,
        data: Vec<u8>,
    },
}

/// Which side of the connection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// The rest of a TCP conversation after the handshake, along the handshake's path: each item is
/// a hop (with its link's addresses and ports), its time and what it carries.
fn conversation(
    net: &Network,
    result: &ProbeResult,
    hops: &[Hop],
    config: &SimConfig,
) -> Vec<(Hop, SimTime, Segment)> {
    let run = &result.run;
    if !matches!(run.observed, Observed::Connected { .. }) {
        return Vec::new();
    }
    let node_of = |i: IfaceId| net.interface(i).node;
    // The SYN/ACK that reached the client, and the SYN it answered.
    let Some(last) = hops.iter().rev().find(|h| {
        matches!(
            h.packet.transport,
            Transport::Tcp {
                flags: TcpFlags::SynAck,
                ..
            }
        ) && h.to.map(node_of) == Some(run.from)
    }) else {
        return Vec::new();
    };
    let back: Vec<Hop> = hops
        .iter()
        .filter(|h| h.chain == last.chain)
        .copied()
        .collect();
    let Some(first_back) = back.first() else {
        return Vec::new();
    };
    let server = node_of(first_back.from);
    let Some(syn_end) = hops.iter().rev().find(|h| {
        matches!(
            h.packet.transport,
            Transport::Tcp {
                flags: TcpFlags::Syn,
                ..
            }
        ) && h.to.map(node_of) == Some(server)
            && h.at <= first_back.at
    }) else {
        return Vec::new();
    };
    let forth: Vec<Hop> = hops
        .iter()
        .filter(|h| h.chain == syn_end.chain)
        .copied()
        .collect();
    if forth.iter().chain(&back).any(|h| h.to.is_none()) {
        return Vec::new();
    }
    let mut script: Vec<(Side, TcpControl, Vec<u8>)> = Vec::new();
    match &result.request.probe {
        Probe::Ssh { .. } => {
            let banner = match run.served(net) {
                Some((_, _, _, Service::Ssh { banner } | Service::Banner(banner))) => {
                    format!("{banner}\r\n").into_bytes()
                }
                _ => Vec::new(),
            };
            script.push((Side::Client, TcpControl::None, Vec::new()));
            if !banner.is_empty() {
                script.push((Side::Server, TcpControl::Psh, banner));
                script.push((Side::Client, TcpControl::Psh, SSH_CLIENT_ID.to_vec()));
                script.push((Side::Server, TcpControl::None, Vec::new()));
            }
        }
        Probe::Curl { port, path } => {
            let host = if port.get() == 80 {
                result.request.written.clone()
            } else {
                format!("{}:{port}", result.request.written)
            };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.81.0\r\nAccept: */*\r\n\r\n"
            );
            script.push((Side::Client, TcpControl::None, Vec::new()));
            script.push((Side::Client, TcpControl::Psh, request.into_bytes()));
            if let Some(answer) = &result.http {
                let content_type = match run.served(net) {
                    Some((_, _, _, Service::Http { content_type, .. })) => content_type.clone(),
                    _ => "text/plain".to_owned(),
                };
                let response = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{}",
                    answer.status,
                    crate::model::http_reason(answer.status),
                    answer.body.len(),
                    answer.body
                );
                script.push((Side::Server, TcpControl::Psh, response.into_bytes()));
            }
            script.push((Side::Client, TcpControl::Fin, Vec::new()));
            script.push((Side::Server, TcpControl::Fin, Vec::new()));
            script.push((Side::Client, TcpControl::None, Vec::new()));
        }
        Probe::Tcp { .. } => {
            script.push((Side::Client, TcpControl::None, Vec::new()));
            script.push((Side::Client, TcpControl::Fin, Vec::new()));
            script.push((Side::Server, TcpControl::Fin, Vec::new()));
            script.push((Side::Client, TcpControl::None, Vec::new()));
        }
        Probe::Ping | Probe::Udp { .. } => return Vec::new(),
    }
    let mut out = Vec::new();
    let (mut client_next, mut server_next) =
        (CLIENT_ISN.wrapping_add(1), SERVER_ISN.wrapping_add(1));
    // A side answers once the other side's segment arrived; its own segments go back to back.
    let (mut start, mut arrived) = (last.at, last.at);
    let mut previous = Side::Server;
    for (side, control, data) in script {
        if side != previous {
            start = arrived;
            previous = side;
        }
        let path = match side {
            Side::Client => &forth,
            Side::Server => &back,
        };
        let (seq, ack) = match side {
            Side::Client => (client_next, server_next),
            Side::Server => (server_next, client_next),
        };
        let advance = data.len() as u32 + u32::from(control == TcpControl::Fin);
        match side {
            Side::Client => client_next = client_next.wrapping_add(advance),
            Side::Server => server_next = server_next.wrapping_add(advance),
        }
        let segment = Segment::Tcp {
            seq,
            ack,
            control,
            data,
        };
        let mut at = start;
        for hop in path {
            let d = config.node_delay + net.segment(net.interface(hop.from).segment).latency;
            at = at.after(d);
            out.push((*hop, at, segment.clone()));
        }
        arrived = at;
    }
    out
}

// ---------------------------------------------------------------------------- encoding

/// Encodes frames for one run.
struct Builder<'a> {
    net: &'a Network,
}

fn mac(m: MacAddr) -> EthernetAddress {
    EthernetAddress(m.0)
}

impl Builder<'_> {
    fn endpoint_words(&self, iface: IfaceId) -> String {
        let i = self.net.interface(iface);
        format!("{}:{}", self.net.node(i.node).name, i.name)
    }

    /// The interface `frame` from `out` was addressed to, in words (its MAC when no interface
    /// of the segment has it).
    fn addressee_words(&self, out: IfaceId, frame: &Frame) -> String {
        addressee(self.net, out, frame.dst)
            .map_or_else(|| frame.dst.to_string(), |to| self.endpoint_words(to))
    }

    /// An ARP frame as the engine sent it.
    fn arp_frame(&self, at: SimTime, out: IfaceId, frame: Frame, arp: Arp) -> CapturedFrame {
        let (operation, target_mac) = match arp.op {
            ArpOp::Request => (ArpOperation::Request, EthernetAddress([0; 6])),
            ArpOp::Reply => (ArpOperation::Reply, mac(frame.dst)),
        };
        let repr = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: mac(arp.sender_mac),
            source_protocol_addr: arp.sender_ip,
            target_hardware_addr: target_mac,
            target_protocol_addr: arp.target_ip,
        };
        let mut payload = vec![0; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut payload));
        let comment = match arp.op {
            ArpOp::Request => format!(
                "{} asks who has {}",
                self.endpoint_words(out),
                arp.target_ip
            ),
            ArpOp::Reply => format!(
                "{} → {}: {} is at {}",
                self.endpoint_words(out),
                self.addressee_words(out, &frame),
                arp.sender_ip,
                arp.sender_mac
            ),
        };
        CapturedFrame {
            at,
            link: self.net.interface(out).segment,
            bytes: ethernet(
                mac(frame.src),
                mac(frame.dst),
                EthernetProtocol::Arp,
                &payload,
            ),
            comment,
        }
    }

    /// An IPv4 frame: the engine's Ethernet addresses around `packet`, whose transport carries
    /// what `segment` says.
    fn ip_frame(
        &self,
        at: SimTime,
        out: IfaceId,
        frame: Frame,
        packet: &Ipv4Packet,
        segment: &Segment,
        hops: &[Hop],
    ) -> CapturedFrame {
        let payload = self.ip_packet(packet, segment, hops, at);
        CapturedFrame {
            at,
            link: self.net.interface(out).segment,
            bytes: ethernet(
                mac(frame.src),
                mac(frame.dst),
                EthernetProtocol::Ipv4,
                &payload,
            ),
            comment: format!(
                "{} → {}",
                self.endpoint_words(out),
                self.addressee_words(out, &frame)
            ),
        }
    }

    /// The IPv4 packet's bytes: header and transport, checksums filled in.
    fn ip_packet(&self, p: &Ipv4Packet, segment: &Segment, hops: &[Hop], at: SimTime) -> Vec<u8> {
        let (protocol, transport) = self.transport(p, segment, hops, at);
        ipv4(p.src, p.dst, p.ttl, protocol, &transport)
    }

    fn transport(
        &self,
        p: &Ipv4Packet,
        segment: &Segment,
        hops: &[Hop],
        at: SimTime,
    ) -> (IpProtocol, Vec<u8>) {
        match (p.transport, segment) {
            (
                Transport::Tcp { sport, dport, .. },
                Segment::Tcp {
                    seq,
                    ack,
                    control,
                    data,
                },
            ) => (
                IpProtocol::Tcp,
                tcp(
                    p.src,
                    p.dst,
                    sport,
                    dport,
                    *seq,
                    Some(*ack),
                    *control,
                    false,
                    data,
                ),
            ),
            (
                Transport::Tcp {
                    sport,
                    dport,
                    flags,
                },
                _,
            ) => {
                let bytes = match flags {
                    TcpFlags::Syn => tcp(
                        p.src,
                        p.dst,
                        sport,
                        dport,
                        CLIENT_ISN,
                        None,
                        TcpControl::Syn,
                        true,
                        &[],
                    ),
                    TcpFlags::SynAck => tcp(
                        p.src,
                        p.dst,
                        sport,
                        dport,
                        SERVER_ISN,
                        Some(CLIENT_ISN.wrapping_add(1)),
                        TcpControl::Syn,
                        true,
                        &[],
                    ),
                    TcpFlags::Rst => tcp(
                        p.src,
                        p.dst,
                        sport,
                        dport,
                        0,
                        Some(CLIENT_ISN.wrapping_add(1)),
                        TcpControl::Rst,
                        false,
                        &[],
                    ),
                };
                (IpProtocol::Tcp, bytes)
            }
            (Transport::Udp { sport, dport }, _) => (
                IpProtocol::Udp,
                udp(p.src, p.dst, sport, dport, &udp_payload(sport, dport)),
            ),
            (Transport::EchoRequest { id, seq }, _) => {
                let data = echo_data(seq);
                let repr = Icmpv4Repr::EchoRequest {
                    ident: id,
                    seq_no: seq,
                    data: &data,
                };
                (IpProtocol::Icmp, icmp(&repr))
            }
            (Transport::EchoReply { id, seq }, _) => {
                let data = echo_data(seq);
                let repr = Icmpv4Repr::EchoReply {
                    ident: id,
                    seq_no: seq,
                    data: &data,
                };
                (IpProtocol::Icmp, icmp(&repr))
            }
            (Transport::IcmpError { error, original }, _) => {
                let quoted = self.quoted(&original, hops, at, p.src);
                let (header, data) = split_quote(&quoted);
                let repr = match error {
                    IcmpError::TtlExceeded => Icmpv4Repr::TimeExceeded {
                        reason: Icmpv4TimeExceeded::TtlExpired,
                        header,
                        data,
                    },
                    other => Icmpv4Repr::DstUnreachable {
                        reason: match other {
                            IcmpError::NetUnreachable => Icmpv4DstUnreachable::NetUnreachable,
                            IcmpError::HostUnreachable => Icmpv4DstUnreachable::HostUnreachable,
                            IcmpError::AdminProhibited => Icmpv4DstUnreachable::CommProhibited,
                            _ => Icmpv4DstUnreachable::PortUnreachable,
                        },
                        header,
                        data,
                    },
                };
                (IpProtocol::Icmp, icmp(&repr))
            }
            (Transport::Redirect { gateway, original }, _) => {
                let quoted = self.quoted(&original, hops, at, p.src);
                (IpProtocol::Icmp, redirect(gateway, &quoted))
            }
        }
    }

    /// The header and first 8 bytes of the packet an ICMP error is about, as the node that
    /// sends the error saw it (its TTL on arrival, from the last hop that carried it there).
    fn quoted(&self, inner: &Inner, hops: &[Hop], at: SimTime, reporter: Ipv4Addr) -> Vec<u8> {
        let reporter_node: Option<NodeId> = self.net.node_by_address(reporter).map(|n| n.id);
        let transport = match inner.flow {
            InnerFlow::Echo { id, seq } => Transport::EchoRequest { id, seq },
            InnerFlow::Tcp { sport, dport } => Transport::Tcp {
                sport,
                dport,
                flags: TcpFlags::Syn,
            },
            InnerFlow::Udp { sport, dport } => Transport::Udp { sport, dport },
        };
        let ttl = hops
            .iter()
            .rev()
            .filter(|h| h.at <= at)
            .find(|h| {
                h.packet.inner().is_some_and(|i| {
                    i.src == inner.src && i.dst == inner.dst && i.flow == inner.flow
                }) && h.to.map(|t| self.net.interface(t).node) == reporter_node
            })
            .map_or(64, |h| h.packet.ttl);
        let original = Ipv4Packet {
            src: inner.src,
            dst: inner.dst,
            ttl,
            transport,
        };
        let mut bytes = self.ip_packet(&original, &Segment::Engine, &[], at);
        bytes.truncate(20 + 8);
        bytes
    }
}

/// A datagram the service on the port understands, so that dissectors do not call it
/// malformed: a DNS query (`reachlab.test A`) for DNS, an NTP client request for NTP, text
/// otherwise. An echo service sends the same bytes back.
fn udp_payload(sport: u16, dport: u16) -> Vec<u8> {
    let either = |port: u16| sport == port || dport == port;
    if either(53) || either(5353) {
        let mut query = vec![0x52, 0x4c, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["reachlab", "test"] {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        query
    } else if either(123) {
        let mut request = vec![0; 48];
        request[0] = 0x23; // LI 0, version 4, mode 3 (client)
        request
    } else {
        UDP_PAYLOAD.to_vec()
    }
}

/// iputils' echo data: a `struct timeval` of the send time (one request a second), then the
/// bytes 0x10, 0x11, … up to 56 bytes.
fn echo_data(seq: u16) -> Vec<u8> {
    let secs = u64::from(seq.saturating_sub(1));
    let mut data = Vec::with_capacity(56);
    data.extend_from_slice(&secs.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    data.extend((0x10u8..).take(56 - 16));
    data
}

fn ethernet(
    src: EthernetAddress,
    dst: EthernetAddress,
    kind: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: kind,
    };
    let mut bytes = vec![0; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    bytes
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut bytes = vec![0; repr.buffer_len() + payload.len()];
    let mut packet = WireIpv4::new_unchecked(&mut bytes);
    repr.emit(&mut packet, &ChecksumCapabilities::default());
    packet.payload_mut().copy_from_slice(payload);
    bytes
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    control: TcpControl,
    syn_options: bool,
    data: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: match (control, syn_options) {
            (TcpControl::Rst, _) => 0,
            (_, true) => WINDOW,
            (_, false) => WINDOW_SCALED,
        },
        window_scale: syn_options.then_some(7),
        max_seg_size: syn_options.then_some(1460),
        sack_permitted: syn_options,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: data,
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut bytes),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        &ChecksumCapabilities::default(),
    );
    bytes
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    let mut bytes = vec![0; repr.header_len() + data.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut bytes),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        data.len(),
        |payload| payload.copy_from_slice(data),
        &ChecksumCapabilities::default(),
    );
    bytes
}

fn icmp(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut bytes[..]),
        &ChecksumCapabilities::default(),
    );
    bytes
}

/// The quoted packet as smoltcp's ICMP representations take it: the header and what follows.
fn split_quote(quoted: &[u8]) -> (Ipv4Repr, &[u8]) {
    let packet = WireIpv4::new_unchecked(quoted);
    let header_len = usize::from(packet.header_len()).min(quoted.len());
    let data = &quoted[header_len..];
    (
        Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: data.len(),
            hop_limit: packet.hop_limit(),
        },
        data,
    )
}

/// ICMP redirect for host (type 5 code 1), which smoltcp has no representation for: the
/// gateway, then the quoted packet; checksum by smoltcp.
fn redirect(gateway: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0; 8 + quoted.len()];
    bytes[4..8].copy_from_slice(&gateway.octets());
    bytes[8..].copy_from_slice(quoted);
    let mut packet = Icmpv4Packet::new_unchecked(&mut bytes[..]);
    packet.set_msg_type(Icmpv4Message::Redirect);
    packet.set_msg_code(1);
    packet.fill_checksum();
    bytes
}
