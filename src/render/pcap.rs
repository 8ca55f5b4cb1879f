//! Captures of a simulated probe: the frames it put on each link, byte for byte, written as a
//! pcapng file with one interface per link (or as classic pcap files, one per link).
//!
//! The engine records what nodes did with packets ([`crate::sim::Step`]s), not frames. This
//! module rebuilds the frames from the steps and the model ([`hops`]): every packet a node sent or
//! forwarded out of an interface crossed that interface's segment as the step recorded it (after
//! NAT), from the interface's MAC to the MAC of the interface that owns the next hop. ARP is
//! replayed the way the engine does it: cold caches, a request and a reply before the first packet
//! to a neighbour (which learns the asker from the request), three unanswered requests a second
//! apart when nobody owns the address. Timestamps are the simulation clock: the time a frame
//! reached the other end, which is the time the receiver's step shows in `reachlab trace`.
//!
//! The engine stops a TCP probe at the handshake. The conversation the tool then has (OpenSSH's
//! identification strings, curl's request and the HTTP answer, the close) is added along the path
//! the handshake took, with each link's own addresses and ports, so NAT shows on every link.
//! Headers are encoded with smoltcp's `wire` representations (`Repr` → `emit`), checksums
//! included.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    IcmpError, Inner, InnerFlow, Ipv4Packet, Observed, ProbeRun, SimConfig, SimTime, StepKind,
    TcpFlags, Transport,
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

/// A packet crossing one link: what the picture draws as a hop and the capture records as a
/// frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// When the frame reached the other end of the link.
    pub at: SimTime,
    /// The interface that sent it.
    pub from: IfaceId,
    /// The interface of the next hop; `None` when nobody answered ARP (the packet never left).
    pub to: Option<IfaceId>,
    /// The packet as it crossed the link (after the sender's NAT).
    pub packet: Ipv4Packet,
    /// The packet's journey: hops of one chain follow one packet from its sender on.
    pub chain: usize,
    /// Index in the run's steps of the step that sent it.
    pub step: usize,
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

/// The packets of a run on the links they crossed, rebuilt from its steps (see the module
/// documentation), in time order.
pub fn hops(net: &Network, run: &ProbeRun, config: &SimConfig) -> Vec<Hop> {
    let mut replay = Replay::new(net, config);
    replay.run(run);
    replay.hops
}

/// Everything the probe put on the wire, as frames.
pub fn capture(net: &Network, result: &ProbeResult, config: &SimConfig) -> Capture {
    let run = &result.run;
    let mut replay = Replay::new(net, config);
    replay.run(run);
    let mut frames: Vec<(SimTime, usize, CapturedFrame)> = Vec::new();
    let mut push = |frame: CapturedFrame| {
        let order = frames.len();
        frames.push((frame.at, order, frame));
    };
    let builder = Builder { net };
    for arp in &replay.arps {
        push(builder.arp_frame(arp));
    }
    for hop in &replay.hops {
        if let Some(frame) = builder.ip_frame(hop, &Segment::Engine, &replay.hops) {
            push(frame);
        }
    }
    for (hop, at, segment) in conversation(net, result, &replay, config) {
        let hop = Hop { at, ..hop };
        if let Some(frame) = builder.ip_frame(&hop, &segment, &replay.hops) {
            push(frame);
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
    use std::os::unix::fs::OpenOptionsExt as _;
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
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
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

// ---------------------------------------------------------------------------- the replay

/// An ARP frame of the replay.
#[derive(Debug, Clone, Copy)]
struct ArpFrame {
    at: SimTime,
    /// The interface that sent it.
    from: IfaceId,
    /// `None`: a broadcast request; `Some`: the reply to this interface.
    reply_to: Option<IfaceId>,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
}

#[derive(Debug, Clone, Copy)]
enum Neighbour {
    /// Resolved (or resolving, answered) at this time.
    Ready(SimTime),
    /// Unanswered requests until this time; packets meanwhile are queued and die.
    Failing(SimTime),
}

/// Replays the engine's ARP and links over the steps of a run.
struct Replay<'n> {
    net: &'n Network,
    node_delay: Duration,
    arp_retrans: Duration,
    arp_probes: u8,
    neighbours: BTreeMap<(IfaceId, Ipv4Addr), Neighbour>,
    hops: Vec<Hop>,
    arps: Vec<ArpFrame>,
    chains: usize,
}

impl<'n> Replay<'n> {
    fn new(net: &'n Network, config: &SimConfig) -> Self {
        Self {
            net,
            node_delay: config.node_delay,
            arp_retrans: config.arp_retrans,
            arp_probes: config.arp_probes.max(1),
            neighbours: BTreeMap::new(),
            hops: Vec::new(),
            arps: Vec::new(),
            chains: 0,
        }
    }

    fn run(&mut self, run: &ProbeRun) {
        for (index, step) in run.steps.iter().enumerate() {
            let (out, nexthop, chain) = match step.kind {
                StepKind::Sent {
                    out: Some(out),
                    nexthop,
                    ..
                } => {
                    self.chains += 1;
                    (out, nexthop, self.chains - 1)
                }
                StepKind::Forwarded {
                    in_iface,
                    out,
                    nexthop,
                    ..
                } => {
                    let chain = self
                        .hops
                        .iter()
                        .rev()
                        .find(|h| h.to == Some(in_iface) && h.at <= step.at)
                        .map(|h| h.chain);
                    let chain = chain.unwrap_or_else(|| {
                        self.chains += 1;
                        self.chains - 1
                    });
                    (out, nexthop, chain)
                }
                _ => continue,
            };
            self.send(step.at, out, nexthop, step.packet, chain, index);
        }
        self.hops.sort_by_key(|h| (h.at, h.step));
    }

    /// One-way time across the segment of `iface`, the node's handling included.
    fn delay(&self, iface: IfaceId) -> Duration {
        self.node_delay + self.net.segment(self.net.interface(iface).segment).latency
    }

    /// The interface on `out`'s segment that answers ARP for `ip` (arp_ignore=0: any interface
    /// of a node that has the address; the interface holding it first).
    fn owner(&self, out: IfaceId, ip: Ipv4Addr) -> Option<IfaceId> {
        owner_on_segment(self.net, out, ip)
    }

    fn send(
        &mut self,
        at: SimTime,
        out: IfaceId,
        nexthop: Ipv4Addr,
        packet: Ipv4Packet,
        chain: usize,
        step: usize,
    ) {
        let d = self.delay(out);
        let owner = self.owner(out, nexthop);
        let leaves = match self.neighbours.get(&(out, nexthop)).copied() {
            Some(Neighbour::Ready(ready)) => Some(ready.max(at)),
            Some(Neighbour::Failing(until)) if at < until => None,
            _ => {
                let sender_ip = sender_address(self.net, out, nexthop);
                match owner {
                    Some(owner) => {
                        let asked = at.after(d);
                        let answered = asked.after(d);
                        self.arps.push(ArpFrame {
                            at: asked,
                            from: out,
                            reply_to: None,
                            sender_ip,
                            target_ip: nexthop,
                        });
                        self.arps.push(ArpFrame {
                            at: answered,
                            from: owner,
                            reply_to: Some(out),
                            sender_ip: nexthop,
                            target_ip: sender_ip,
                        });
                        self.neighbours
                            .insert((out, nexthop), Neighbour::Ready(answered));
                        self.neighbours
                            .entry((owner, sender_ip))
                            .or_insert(Neighbour::Ready(asked));
                        Some(answered)
                    }
                    None => {
                        for k in 0..u32::from(self.arp_probes) {
                            self.arps.push(ArpFrame {
                                at: at.after(self.arp_retrans * k + d),
                                from: out,
                                reply_to: None,
                                sender_ip,
                                target_ip: nexthop,
                            });
                        }
                        let until = at.after(self.arp_retrans * u32::from(self.arp_probes));
                        self.neighbours
                            .insert((out, nexthop), Neighbour::Failing(until));
                        None
                    }
                }
            }
        };
        self.hops.push(Hop {
            at: leaves.map_or(at, |t| t.after(d)),
            from: out,
            to: leaves.and(owner),
            packet,
            chain,
            step,
        });
    }
}

/// The interface on `out`'s segment that answers ARP for `ip`.
fn owner_on_segment(net: &Network, out: IfaceId, ip: Ipv4Addr) -> Option<IfaceId> {
    if ip.is_loopback() {
        return None;
    }
    let segment = net.segment(net.interface(out).segment);
    let others = || segment.interfaces.iter().copied().filter(|&i| i != out);
    others()
        .find(|&i| net.interface(i).addresses.iter().any(|a| a.addr() == ip))
        .or_else(|| {
            others().find(|&i| {
                let node = net.node(net.interface(i).node);
                net.interfaces_of(node)
                    .any(|x| x.addresses.iter().any(|a| a.addr() == ip))
            })
        })
}

/// The address an ARP request from `out` for `target` carries as its sender (the engine's
/// choice: the interface's address in the target's subnet, else its first).
fn sender_address(net: &Network, out: IfaceId, target: Ipv4Addr) -> Ipv4Addr {
    let iface = net.interface(out);
    iface
        .addresses
        .iter()
        .find(|a| a.contains(&target))
        .or_else(|| iface.addresses.first())
        .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr())
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
    replay: &Replay<'_>,
    config: &SimConfig,
) -> Vec<(Hop, SimTime, Segment)> {
    let run = &result.run;
    if !matches!(run.observed, Observed::Connected { .. }) {
        return Vec::new();
    }
    let hops = &replay.hops;
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
            let banner = match crate::explain::served(net, run) {
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
                let content_type = match crate::explain::served(net, run) {
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

    fn arp_frame(&self, arp: &ArpFrame) -> CapturedFrame {
        let from = self.net.interface(arp.from);
        let (operation, dst, target_mac) = match arp.reply_to {
            None => (
                ArpOperation::Request,
                EthernetAddress::BROADCAST,
                EthernetAddress([0; 6]),
            ),
            Some(to) => {
                let m = mac(self.net.interface(to).mac);
                (ArpOperation::Reply, m, m)
            }
        };
        let repr = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: mac(from.mac),
            source_protocol_addr: arp.sender_ip,
            target_hardware_addr: target_mac,
            target_protocol_addr: arp.target_ip,
        };
        let mut payload = vec![0; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut payload));
        let comment = match arp.reply_to {
            None => format!(
                "{} asks who has {}",
                self.endpoint_words(arp.from),
                arp.target_ip
            ),
            Some(to) => format!(
                "{} → {}: {} is at {}",
                self.endpoint_words(arp.from),
                self.endpoint_words(to),
                arp.sender_ip,
                from.mac
            ),
        };
        CapturedFrame {
            at: arp.at,
            link: from.segment,
            bytes: ethernet(mac(from.mac), dst, EthernetProtocol::Arp, &payload),
            comment,
        }
    }

    fn ip_frame(&self, hop: &Hop, segment: &Segment, hops: &[Hop]) -> Option<CapturedFrame> {
        let to = hop.to?;
        let from = self.net.interface(hop.from);
        let payload = self.ip_packet(&hop.packet, segment, hops, hop.at);
        Some(CapturedFrame {
            at: hop.at,
            link: from.segment,
            bytes: ethernet(
                mac(from.mac),
                mac(self.net.interface(to).mac),
                EthernetProtocol::Ipv4,
                &payload,
            ),
            comment: format!(
                "{} → {}",
                self.endpoint_words(hop.from),
                self.endpoint_words(to)
            ),
        })
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
