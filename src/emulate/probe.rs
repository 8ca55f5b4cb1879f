//! Real probes, run by this process inside a node's namespace (or, for `live`, where it runs):
//! ICMP echo through a pnet raw socket (the IPv4 header built here with the node's TTL, the
//! kernel filling in source address, id and checksum); TCP and UDP through the kernel's own
//! sockets, with a pnet raw ICMP socket open beside them to see which ICMP error, from whom,
//! ended the attempt (the errno alone cannot tell a firewall's "administratively prohibited"
//! from a missing host: the kernel reports both as EHOSTUNREACH); HTTP as a real request.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use pnet::packet::icmp::{IcmpPacket, IcmpTypes, MutableIcmpPacket, checksum as icmp_checksum};
use pnet::packet::ip::IpNextHeaderProtocols;
use pnet::packet::ipv4::{Ipv4Packet, MutableIpv4Packet};
use pnet::packet::{MutablePacket as _, Packet as _};
use pnet::transport::{
    TransportChannelType, TransportReceiver, ipv4_packet_iter, transport_channel,
};
use socket2::{Domain, Socket, Type};

use crate::model::{Outcome, Probe};

use super::EmulateError;

/// How long a probe waits for an answer before it calls the result a timeout. Neighbour
/// resolution in emulated labs fails after 3 × 250 ms (see `build`), so an unreachable
/// neighbour is reported well within it.
pub const WAIT: Duration = Duration::from_secs(2);
/// How long an HTTP client waits for the answer once connected (a service may first try its
/// backends for [`super::serve::BACKEND_TIMEOUT`], a proxy up to [`crate::model::PROXY_TRIES`]
/// upstreams for as long each).
pub const HTTP_WAIT: Duration = Duration::from_secs(10);

/// A probe to run for real.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProbe {
    pub probe: Probe,
    pub dst: Ipv4Addr,
    /// The target as written (the HTTP `Host:`).
    pub host: String,
    /// The TTL the node's own packets start with.
    pub ttl: u8,
}

/// An HTTP answer as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// What the kernel did with a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelResult {
    pub outcome: Outcome,
    /// The TTL of an echo reply.
    pub ttl: Option<u8>,
    pub http: Option<HttpReply>,
    /// What was seen, in a few words (`echo reply from 10.0.0.5 ttl=63`, `ICMP 3/13 from ...`).
    pub evidence: String,
    pub elapsed: Duration,
    /// The round-trip time: of the last echo reply (the steady state), of the TCP handshake,
    /// of the UDP answer.
    pub rtt: Option<Duration>,
    /// For ping: what came back for each echo request, in order of sequence number (empty
    /// when none could be sent).
    pub echoes: Vec<EchoAnswer>,
}

/// What came back for one echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoAnswer {
    Reply {
        ttl: u8,
        rtt: Duration,
    },
    /// An ICMP error about it (type and code), as the outcome it means.
    Error {
        outcome: Outcome,
        from: Ipv4Addr,
        kind: u8,
        code: u8,
    },
    /// Nothing, within [`WAIT`] of the last request.
    Silence,
}

/// An ICMP error seen on the raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IcmpError {
    kind: u8,
    code: u8,
    from: Ipv4Addr,
}

impl IcmpError {
    fn outcome(self) -> Option<Outcome> {
        Some(match (self.kind, self.code) {
            (11, _) => Outcome::TtlExceeded,
            (3, 0 | 6 | 11) => Outcome::NetUnreachable,
            (3, 1 | 7 | 12) => Outcome::HostUnreachable,
            (3, 3) => Outcome::Refused,
            (3, 9 | 10 | 13) => Outcome::Filtered,
            _ => return None,
        })
    }

    fn describe(self) -> String {
        format!("ICMP {}/{} from {}", self.kind, self.code, self.from)
    }
}

/// Runs `probe` inside namespace `netns`.
pub fn run_in_namespace(netns: &str, probe: KernelProbe) -> Result<KernelResult, EmulateError> {
    super::netns::run_in(netns, move || run_here(&probe))?
}

/// [`run_in_namespace`], a ping sending `count` echo requests `interval` apart (as `ping -c
/// count -i interval`); other probes ignore both.
pub fn run_counted_in_namespace(
    netns: &str,
    probe: KernelProbe,
    count: u16,
    interval: Duration,
) -> Result<KernelResult, EmulateError> {
    super::netns::run_in(netns, move || run_counted(&probe, count, interval))?
}

/// Runs `probe` from the namespace the calling thread is in.
pub fn run_here(probe: &KernelProbe) -> Result<KernelResult, EmulateError> {
    run_counted(probe, 1, Duration::ZERO)
}

fn run_counted(
    probe: &KernelProbe,
    count: u16,
    interval: Duration,
) -> Result<KernelResult, EmulateError> {
    let started = Instant::now();
    let mut result = match &probe.probe {
        Probe::Ping => ping(probe, count.max(1), interval),
        Probe::Ssh { port } | Probe::Tcp { port } => tcp(probe, port.get(), None),
        Probe::Curl { port, path } => tcp(probe, port.get(), Some(path)),
        Probe::Udp { port } => udp(probe, port.get()),
    }?;
    result.elapsed = started.elapsed();
    Ok(result)
}

fn result(outcome: Outcome, evidence: String) -> KernelResult {
    KernelResult {
        outcome,
        ttl: None,
        http: None,
        evidence,
        elapsed: Duration::ZERO,
        rtt: None,
        echoes: Vec::new(),
    }
}

fn raw_icmp() -> Result<(pnet::transport::TransportSender, TransportReceiver), EmulateError> {
    transport_channel(
        65536,
        TransportChannelType::Layer3(IpNextHeaderProtocols::Icmp),
    )
    .map_err(|e| EmulateError::io("opening a raw ICMP socket", e))
}

/// The identifier of our next echo request: distinct across concurrent probes of this process.
fn next_echo_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() as u16).wrapping_mul(7919);
    base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An echo request with identifier `id` and sequence number `seq`, as ping sends it: 20 bytes
/// of IPv4 header (source 0.0.0.0: the kernel puts the routed source address in), 8 of ICMP
/// header and 56 bytes of data.
fn echo_request(probe: &KernelProbe, id: u16, seq: u16) -> Result<[u8; 84], EmulateError> {
    let mut buffer = [0u8; 84];
    {
        let mut icmp = MutableIcmpPacket::new(&mut buffer[20..]).ok_or_else(short)?;
        icmp.set_icmp_type(IcmpTypes::EchoRequest);
        let payload = icmp.payload_mut();
        payload[0..2].copy_from_slice(&id.to_be_bytes());
        payload[2..4].copy_from_slice(&seq.to_be_bytes());
        for (i, byte) in payload[4..].iter_mut().enumerate() {
            *byte = i as u8;
        }
        let sum = icmp_checksum(&icmp.to_immutable());
        icmp.set_checksum(sum);
    }
    {
        let mut ip = MutableIpv4Packet::new(&mut buffer[..]).ok_or_else(short)?;
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length(84);
        ip.set_ttl(probe.ttl);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Icmp);
        ip.set_destination(probe.dst);
    }
    Ok(buffer)
}

/// `ping -c count -i interval`: sends the requests, then waits up to [`WAIT`] after the last
/// one for whatever is still unanswered. Replies and errors are matched by identifier and
/// sequence number, as iputils does.
fn ping(probe: &KernelProbe, count: u16, interval: Duration) -> Result<KernelResult, EmulateError> {
    let (mut tx, mut rx) = raw_icmp()?;
    let id = next_echo_id();
    let mut iter = ipv4_packet_iter(&mut rx);
    let mut echoes = vec![EchoAnswer::Silence; usize::from(count)];
    let mut sent_at: Vec<Instant> = Vec::with_capacity(usize::from(count));
    let mut source = None;
    // Takes in what arrives until `until`, or until every request sent is answered.
    let mut receive = |until: Instant,
                       sent_at: &[Instant],
                       echoes: &mut [EchoAnswer],
                       source: &mut Option<Ipv4Addr>| {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if sent_at.len() == echoes.len()
                && echoes.iter().all(|e| !matches!(e, EchoAnswer::Silence))
            {
                return;
            }
            let Ok(Some((ip, _))) = iter.next_with_timeout(left.max(Duration::from_millis(1)))
            else {
                continue;
            };
            let Some(icmp) = IcmpPacket::new(ip.payload()) else {
                continue;
            };
            let body = icmp.payload();
            let slot = |seq: u16| {
                usize::from(seq)
                    .checked_sub(1)
                    .filter(|&i| i < sent_at.len())
            };
            if icmp.get_icmp_type() == IcmpTypes::EchoReply {
                if body.len() >= 4
                    && body[0..2] == id.to_be_bytes()
                    && let Some(i) = slot(u16::from_be_bytes([body[2], body[3]]))
                    && echoes[i] == EchoAnswer::Silence
                {
                    echoes[i] = EchoAnswer::Reply {
                        ttl: ip.get_ttl(),
                        rtt: sent_at[i].elapsed(),
                    };
                    source.get_or_insert(ip.get_source());
                }
                continue;
            }
            // An error quotes the header of the packet it is about, and its first 8 bytes.
            let quoted_seq = |inner: &Ipv4Packet| {
                let p = inner.payload();
                (inner.get_next_level_protocol() == IpNextHeaderProtocols::Icmp
                    && p.len() >= 8
                    && p[0] == 8
                    && p[4..6] == id.to_be_bytes())
                .then(|| u16::from_be_bytes([p[6], p[7]]))
            };
            let seq = Ipv4Packet::new(icmp.packet().get(8..).unwrap_or_default())
                .and_then(|inner| quoted_seq(&inner));
            if let Some(seq) = seq
                && let Some(i) = slot(seq)
                && echoes[i] == EchoAnswer::Silence
                && let Some(error) = quoted_error(&ip, &icmp, |inner| quoted_seq(inner).is_some())
                && let Some(outcome) = error.outcome()
            {
                echoes[i] = EchoAnswer::Error {
                    outcome,
                    from: error.from,
                    kind: error.kind,
                    code: error.code,
                };
            }
        }
    };
    let started = Instant::now();
    for seq in 1..=count {
        let due = started + interval * u32::from(seq - 1);
        receive(due, &sent_at, &mut echoes, &mut source);
        let buffer = echo_request(probe, id, seq)?;
        let packet = Ipv4Packet::new(&buffer[..]).ok_or_else(short)?;
        if let Err(e) = tx.send_to(packet, IpAddr::V4(probe.dst)) {
            return match e.raw_os_error() {
                Some(errno) if errno == nix::libc::ENETUNREACH => Ok(result(
                    Outcome::NoRoute,
                    "connect: Network is unreachable".into(),
                )),
                // The sender's own blackhole, unreachable or prohibit route.
                Some(errno) if errno == nix::libc::EINVAL => {
                    Ok(result(Outcome::NoRoute, "connect: Invalid argument".into()))
                }
                Some(errno) if errno == nix::libc::EHOSTUNREACH => Ok(result(
                    Outcome::HostUnreachable,
                    "connect: No route to host".into(),
                )),
                Some(errno) if errno == nix::libc::EACCES => Ok(result(
                    Outcome::Filtered,
                    "connect: Permission denied".into(),
                )),
                _ => Err(EmulateError::io("sending an echo request", e)),
            };
        }
        sent_at.push(Instant::now());
    }
    receive(Instant::now() + WAIT, &sent_at, &mut echoes, &mut source);
    Ok(ping_result(count, echoes, source))
}

/// The result of a ping from what each echo got: a reply if any came (the TTL of the first,
/// the RTT of the last), else the first error by sequence number, else a timeout.
fn ping_result(count: u16, echoes: Vec<EchoAnswer>, source: Option<Ipv4Addr>) -> KernelResult {
    let replies: Vec<(u8, Duration)> = echoes
        .iter()
        .filter_map(|e| match *e {
            EchoAnswer::Reply { ttl, rtt } => Some((ttl, rtt)),
            _ => None,
        })
        .collect();
    let first_error = echoes.iter().find_map(|e| match *e {
        EchoAnswer::Error {
            outcome,
            from,
            kind,
            code,
        } => Some((outcome, IcmpError { kind, code, from })),
        _ => None,
    });
    let mut r = match (replies.first(), first_error) {
        (Some(&(ttl, _)), _) => {
            let from = source.map_or_else(String::new, |s| format!(" from {s}"));
            let mut r = if count == 1 {
                result(Outcome::Reply, format!("echo reply{from} ttl={ttl}"))
            } else {
                result(
                    Outcome::Reply,
                    format!("{}/{count} echo replies{from} ttl={ttl}", replies.len()),
                )
            };
            r.ttl = Some(ttl);
            r.rtt = replies.last().map(|&(_, rtt)| rtt);
            r
        }
        (None, Some((outcome, error))) => result(outcome, error.describe()),
        (None, None) => result(Outcome::Timeout, format!("no answer in {WAIT:?}")),
    };
    r.echoes = echoes;
    r
}

fn short() -> EmulateError {
    EmulateError::Unsupported("packet buffer too short".into())
}

/// The error an ICMP message reports about a packet `ours` recognises, if it is one.
fn quoted_error(
    ip: &Ipv4Packet,
    icmp: &IcmpPacket,
    ours: impl Fn(&Ipv4Packet) -> bool,
) -> Option<IcmpError> {
    let kind = icmp.get_icmp_type().0;
    if kind != 3 && kind != 11 {
        return None;
    }
    // Type, code, checksum and 4 unused bytes, then the quoted packet: its header and first 8
    // bytes (pnet clamps the payload to what is there).
    let inner = Ipv4Packet::new(icmp.packet().get(8..)?)?;
    ours(&inner).then_some(IcmpError {
        kind,
        code: icmp.get_icmp_code().0,
        from: ip.get_source(),
    })
}

/// The ICMP error about our TCP or UDP socket from local port `sport`, waiting up to `wait`.
fn error_for_socket(
    rx: &mut TransportReceiver,
    proto: pnet::packet::ip::IpNextHeaderProtocol,
    dst: Ipv4Addr,
    sport: u16,
    wait: Duration,
) -> Option<IcmpError> {
    let deadline = Instant::now() + wait;
    let mut iter = ipv4_packet_iter(rx);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(Some((ip, _))) = iter.next_with_timeout(left.max(Duration::from_millis(1))) else {
            continue;
        };
        let Some(icmp) = IcmpPacket::new(ip.payload()) else {
            continue;
        };
        let found = quoted_error(&ip, &icmp, |inner| {
            inner.get_next_level_protocol() == proto
                && inner.get_destination() == dst
                && inner.payload().len() >= 2
                && inner.payload()[0..2] == sport.to_be_bytes()
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

fn bound_socket(kind: Type) -> Result<(Socket, u16), EmulateError> {
    let socket = Socket::new(Domain::IPV4, kind, None)
        .map_err(|e| EmulateError::io("opening a socket", e))?;
    socket
        .bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).into())
        .map_err(|e| EmulateError::io("binding a socket", e))?;
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port());
    Ok((socket, port))
}

/// The outcome of a failed connect or receive: the ICMP error when one came, else the errno.
fn failure(e: &std::io::Error, error: Option<IcmpError>) -> Result<KernelResult, EmulateError> {
    if let Some(error) = error
        && let Some(outcome) = error.outcome()
    {
        return Ok(result(outcome, format!("{e}; {}", error.describe())));
    }
    let errno = e.raw_os_error().unwrap_or(0);
    let outcome =
        if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock {
            Outcome::Timeout
        } else if errno == nix::libc::ECONNREFUSED {
            // A TCP reset (no ICMP error came).
            Outcome::Refused
        } else if errno == nix::libc::ENETUNREACH {
            // The sender had no route: nothing was sent.
            Outcome::NoRoute
        } else if errno == nix::libc::EHOSTUNREACH {
            Outcome::HostUnreachable
        } else if errno == nix::libc::EINVAL {
            // The sender's own blackhole route: nothing was sent.
            Outcome::NoRoute
        } else if errno == nix::libc::EACCES {
            // The sender's own prohibit route.
            Outcome::Filtered
        } else {
            return Err(EmulateError::io(
                "probing",
                std::io::Error::from_raw_os_error(errno),
            ));
        };
    Ok(result(outcome, e.to_string()))
}

fn tcp(
    probe: &KernelProbe,
    port: u16,
    http_path: Option<&String>,
) -> Result<KernelResult, EmulateError> {
    let (_tx, mut rx) = raw_icmp()?;
    let (socket, sport) = bound_socket(Type::STREAM)?;
    let dst = SocketAddr::V4(SocketAddrV4::new(probe.dst, port));
    let connecting = Instant::now();
    if let Err(e) = socket.connect_timeout(&dst.into(), WAIT) {
        let error = error_for_socket(
            &mut rx,
            IpNextHeaderProtocols::Tcp,
            probe.dst,
            sport,
            Duration::from_millis(50),
        );
        return failure(&e, error);
    }
    let mut stream: TcpStream = socket.into();
    let mut r = result(Outcome::Reply, format!("connected from port {sport}"));
    r.rtt = Some(connecting.elapsed());
    match (&probe.probe, http_path) {
        (Probe::Ssh { .. }, _) => {
            let _ = stream.set_read_timeout(Some(WAIT));
            let line = read_line(&mut stream);
            r.evidence = if line.is_empty() {
                "connected, no banner".into()
            } else {
                line
            };
        }
        (_, Some(path)) => {
            let _ = stream.set_read_timeout(Some(HTTP_WAIT));
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: curl/7.81.0\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                probe.host
            );
            let _ = stream.write_all(request.as_bytes());
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let text = String::from_utf8_lossy(&answer);
            r.http = parse_http(&text);
            r.evidence = text
                .lines()
                .next()
                .unwrap_or("connected, no answer")
                .to_owned();
        }
        _ => {}
    }
    Ok(r)
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 512 {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

/// The status and body of an HTTP/1.1 answer.
pub fn parse_http(text: &str) -> Option<HttpReply> {
    let status_line = text.lines().next()?;
    let mut words = status_line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some(HttpReply { status, body })
}

fn udp(probe: &KernelProbe, port: u16) -> Result<KernelResult, EmulateError> {
    let (_tx, mut rx) = raw_icmp()?;
    let (socket, sport) = bound_socket(Type::DGRAM)?;
    let dst = SocketAddr::V4(SocketAddrV4::new(probe.dst, port));
    if let Err(e) = socket.connect(&dst.into()) {
        return failure(&e, None);
    }
    let socket: UdpSocket = socket.into();
    if let Err(e) = socket.send(b"reachlab probe\n") {
        return failure(&e, None);
    }
    let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match socket.recv(&mut buf) {
            Ok(n) => {
                return Ok(result(
                    Outcome::Reply,
                    format!("{n} bytes echoed from {}", probe.dst),
                ));
            }
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                let error = error_for_socket(
                    &mut rx,
                    IpNextHeaderProtocols::Udp,
                    probe.dst,
                    sport,
                    Duration::from_millis(50),
                );
                return failure(&e, error);
            }
            Err(_) => {}
        }
        if let Some(error) = error_for_socket(
            &mut rx,
            IpNextHeaderProtocols::Udp,
            probe.dst,
            sport,
            Duration::from_millis(20),
        ) && let Some(outcome) = error.outcome()
        {
            return Ok(result(outcome, error.describe()));
        }
    }
    Ok(result(Outcome::Timeout, format!("no answer in {WAIT:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_parse() {
        let reply = parse_http("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nno\n")
            .expect("parses");
        assert_eq!(reply.status, 502);
        assert_eq!(reply.body, "no\n");
        assert_eq!(parse_http("SSH-2.0-x\r\n"), None);
    }

    #[test]
    fn icmp_codes_map_to_outcomes() {
        let e = |kind, code| IcmpError {
            kind,
            code,
            from: Ipv4Addr::LOCALHOST,
        };
        assert_eq!(e(3, 13).outcome(), Some(Outcome::Filtered));
        assert_eq!(e(3, 1).outcome(), Some(Outcome::HostUnreachable));
        assert_eq!(e(3, 0).outcome(), Some(Outcome::NetUnreachable));
        assert_eq!(e(3, 3).outcome(), Some(Outcome::Refused));
        assert_eq!(e(11, 0).outcome(), Some(Outcome::TtlExceeded));
        assert_eq!(e(5, 1).outcome(), None);
    }
}
