//! Probes: what `ping`, a TCP `connect()` (ssh, curl) and a UDP exchange do, run on the engine.
//!
//! Each probe gets a fresh run (cold ARP caches, as on a freshly booted lab), so results never
//! depend on what was probed before. Timing follows Linux and the tools: ping sends one echo a
//! second; a TCP SYN is retransmitted after 1, 3, 7, 15, 31 and 63 s and the connection times
//! out at 127 s (`tcp_syn_retries=6`); an ICMP error during the handshake ends it at once.

use std::net::Ipv4Addr;
use std::time::Duration;

use smallvec::SmallVec;

use super::compiled::Compiled;
use super::engine::{Received, Sim, SimConfig, Stopped};
use super::packet::{IcmpError, InnerFlow, Ipv4Packet, TcpFlags, Transport};
use super::stack::SendError;
use super::time::SimTime;
use super::trace::{Step, StepKind};
use crate::model::{Network, NodeId, Outcome, Port, Probe, Proto, RouteType, Service};

/// First port of the client's ephemeral range (Linux `ip_local_port_range` starts at 32768).
pub const EPHEMERAL_PORT: u16 = 32768;
/// The ICMP identifier probes use.
pub(crate) const ECHO_ID: u16 = 0x524c; // "RL"

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `count` echo requests, `interval` apart, waiting `wait` after the last; sent with the
    /// TTL `ttl` (`ping -t`), the sender's default when `None`.
    Ping {
        count: u16,
        interval: Duration,
        wait: Duration,
        ttl: Option<u8>,
    },
    /// A TCP connection attempt, given up after `timeout`.
    Tcp { port: Port, timeout: Duration },
    /// One UDP datagram, waiting `wait` for an answer; sent with the TTL `ttl` (traceroute's
    /// probes), the sender's default when `None`.
    Udp {
        port: Port,
        wait: Duration,
        ttl: Option<u8>,
    },
}

impl ProbeKind {
    /// The simulated time the tool itself runs at most: the last echo's send time plus its wait,
    /// or the connect/answer timeout. A run's horizon is stretched to cover it (see
    /// [`run_probe`]), so that `ping -c 1000` is never cut off by the default 300 s horizon.
    pub fn duration(&self) -> Duration {
        match self {
            ProbeKind::Ping {
                count,
                interval,
                wait,
                ..
            } => interval.saturating_mul(u32::from(count.saturating_sub(1))) + *wait,
            ProbeKind::Tcp { timeout, .. } => *timeout,
            ProbeKind::Udp { wait, .. } => *wait,
        }
    }

    /// `ping` as iputils does it with `-c count` (it waits up to 10 s for the last reply).
    pub fn ping(count: u16) -> Self {
        ProbeKind::Ping {
            count,
            interval: Duration::from_secs(1),
            wait: Duration::from_secs(10),
            ttl: None,
        }
    }

    /// The same probe sent with TTL `ttl` (`ping -t`, traceroute's datagrams; a TCP
    /// connection keeps the sender's default).
    pub fn with_ttl(self, ttl: Option<u8>) -> Self {
        match self {
            ProbeKind::Ping {
                count,
                interval,
                wait,
                ..
            } => ProbeKind::Ping {
                count,
                interval,
                wait,
                ttl,
            },
            ProbeKind::Udp { port, wait, .. } => ProbeKind::Udp { port, wait, ttl },
            other => other,
        }
    }

    /// The TTL the probe's packets leave with from `node`: `ping -t`'s, or the node's
    /// system default.
    pub fn initial_ttl(&self, default: u8) -> u8 {
        match self {
            ProbeKind::Ping { ttl: Some(ttl), .. } | ProbeKind::Udp { ttl: Some(ttl), .. } => *ttl,
            _ => default,
        }
    }

    /// A TCP connect with Linux's default SYN retries (127 s until "Connection timed out").
    pub fn tcp(port: Port) -> Self {
        ProbeKind::Tcp {
            port,
            timeout: Duration::from_secs(127),
        }
    }

    /// A UDP datagram, waiting 2 s for an answer.
    pub fn udp(port: Port) -> Self {
        ProbeKind::Udp {
            port,
            wait: Duration::from_secs(2),
            ttl: None,
        }
    }

    /// The engine probe that imitates a tool: `ping -c count` (with `-W wait` when given), a
    /// TCP connect for ssh, curl and tcp, a datagram for udp.
    pub fn of(probe: &Probe, count: u16, wait: Option<Duration>) -> Self {
        match probe {
            Probe::Ping => match (ProbeKind::ping(count.max(1)), wait) {
                (
                    ProbeKind::Ping {
                        count, interval, ..
                    },
                    Some(wait),
                ) => ProbeKind::Ping {
                    count,
                    interval,
                    wait,
                    ttl: None,
                },
                (kind, _) => kind,
            },
            Probe::Ssh { port } | Probe::Curl { port, .. } | Probe::Tcp { port } => {
                ProbeKind::tcp(*port)
            }
            Probe::Udp { port } => ProbeKind::udp(*port),
        }
    }
}

/// An ICMP error that reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorReport {
    pub at: SimTime,
    pub from: Ipv4Addr,
    pub error: IcmpError,
    /// For ping: the sequence number it is about.
    pub seq: u16,
}

/// An ICMP redirect that reached the client (ping prints it; it is not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectReport {
    pub at: SimTime,
    pub from: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub seq: u16,
}

/// An echo reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    pub seq: u16,
    pub from: Ipv4Addr,
    pub ttl: u8,
    pub rtt: Duration,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Ping {
        sent: u16,
        replies: Vec<EchoReply>,
        errors: Vec<ErrorReport>,
        redirects: Vec<RedirectReport>,
    },
    /// The handshake completed after `rtt` (the SYN/ACK's TTL is kept for explanations).
    Connected { rtt: Duration, ttl: u8 },
    /// RST, after `after`.
    Reset { after: Duration, from: Ipv4Addr },
    /// A UDP answer.
    UdpAnswer { rtt: Duration, from: Ipv4Addr },
    /// An ICMP error ended it.
    Error(ErrorReport),
    /// Nothing came back within the probe's time.
    Silence { waited: Duration },
    /// The sender had no route: the call failed at once.
    NoRoute,
    /// The sender's route is a `blackhole`, `unreachable` or `prohibit` route: the call
    /// failed at once (EINVAL, EHOSTUNREACH, EACCES).
    Rejected(RouteType),
}

/// A probe's full result.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub from: NodeId,
    pub dst: Ipv4Addr,
    /// The source address the sender used (`None` when it had no route).
    pub src: Option<Ipv4Addr>,
    pub kind: ProbeKind,
    pub observed: Observed,
    pub outcome: Outcome,
    /// Every hop of every packet of the probe.
    pub steps: Vec<Step>,
    /// Every frame the probe's run put on a segment, when it was tapped
    /// ([`SimConfig::capture`]); `None` otherwise.
    pub wire: Option<Vec<super::Transmission>>,
    pub events: u64,
    /// Set when the run was cut short by the horizon or the event budget.
    pub stopped: Option<Stopped>,
    /// The random choices the run made (`-m statistic` rules, a Service's endpoint), when
    /// [`SimConfig::draws`] scripted them; empty otherwise.
    pub draws: Vec<bool>,
}

impl ProbeRun {
    /// The listener that accepted the probe's connection, wherever NAT took it: the node, the
    /// address and port it arrived at, and its service.
    pub fn served<'n>(&self, net: &'n Network) -> Option<(NodeId, Ipv4Addr, Port, &'n Service)> {
        self.steps.iter().rev().find_map(|s| {
            let StepKind::Delivered { .. } = s.kind else {
                return None;
            };
            let (proto, dport) = match s.packet.transport {
                Transport::Tcp {
                    dport,
                    flags: TcpFlags::Syn,
                    ..
                } => (Proto::Tcp, dport),
                Transport::Udp { dport, .. }
                    if Some(s.packet.src) == self.src
                        || s.packet.dst != self.src.unwrap_or(s.packet.dst) =>
                {
                    (Proto::Udp, dport)
                }
                _ => return None,
            };
            let port = Port::new(dport)?;
            let listener = net
                .node(s.node)
                .listeners
                .iter()
                .find(|l| l.accepts(proto, s.packet.dst, port))?;
            Some((s.node, s.packet.dst, port, &listener.service))
        })
    }
}

/// Runs one probe from `from` to `dst` (compiling `net` for it: see [`run_probe_on`] to run
/// many probes over one compilation).
pub fn run_probe(
    net: &Network,
    from: NodeId,
    dst: Ipv4Addr,
    kind: &ProbeKind,
    config: &SimConfig,
) -> ProbeRun {
    run_probe_on(&Compiled::new(net), from, dst, kind, config)
}

/// Runs one probe from `from` to `dst` over a compiled network.
pub fn run_probe_on(
    dp: &Compiled<'_>,
    from: NodeId,
    dst: Ipv4Addr,
    kind: &ProbeKind,
    config: &SimConfig,
) -> ProbeRun {
    let net = dp.network();
    let mut config = config.clone();
    // The horizon guards against runs that never settle; it must not cut a probe's own time
    // short. One extra second lets the last events of the probe's deadline drain.
    config.horizon = config
        .horizon
        .max(kind.duration().saturating_add(Duration::from_secs(1)));
    let mut sim = Sim::on(dp, config);
    sim.set_client(from);
    let src = sim.source_address(from, dst);
    let observed = match src {
        None => {
            // Record the failed attempt so traces and explanations see it.
            match sim.originate(from, probe_packet(Ipv4Addr::UNSPECIFIED, dst, 64, kind, 1)) {
                Err(SendError::Rejected(route)) => Observed::Rejected(route),
                _ => Observed::NoRoute,
            }
        }
        Some(src) => {
            let ttl = kind.initial_ttl(net.node(from).os.initial_ttl());
            match kind {
                ProbeKind::Ping {
                    count,
                    interval,
                    wait,
                    ..
                } => ping(&mut sim, from, src, dst, ttl, *count, *interval, *wait),
                ProbeKind::Tcp { port, timeout } => {
                    tcp(&mut sim, from, src, dst, ttl, *port, *timeout)
                }
                ProbeKind::Udp { port, wait, .. } => {
                    udp(&mut sim, from, src, dst, ttl, *port, *wait)
                }
            }
        }
    };
    let outcome = outcome_of(&observed);
    ProbeRun {
        from,
        dst,
        src,
        kind: kind.clone(),
        observed,
        outcome,
        events: sim.events(),
        stopped: sim.stopped(),
        steps: sim.take_steps(),
        wire: sim.take_capture(),
        draws: sim.take_draws(),
    }
}

pub(super) fn probe_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    kind: &ProbeKind,
    seq: u16,
) -> Ipv4Packet {
    let transport = match kind {
        ProbeKind::Ping { .. } => Transport::EchoRequest { id: ECHO_ID, seq },
        ProbeKind::Tcp { port, .. } => Transport::Tcp {
            sport: EPHEMERAL_PORT,
            dport: port.get(),
            flags: TcpFlags::Syn,
        },
        ProbeKind::Udp { port, .. } => Transport::Udp {
            sport: EPHEMERAL_PORT,
            dport: port.get(),
        },
    };
    Ipv4Packet {
        src,
        dst,
        ttl,
        transport,
    }
}

/// How a probe's observation reads as an outcome.
pub fn outcome_of(observed: &Observed) -> Outcome {
    match observed {
        Observed::Ping {
            replies, errors, ..
        } => match (replies.first(), errors.first()) {
            (Some(_), _) => Outcome::Reply,
            (None, Some(e)) => error_outcome(e.error),
            (None, None) => Outcome::Timeout,
        },
        Observed::Connected { .. } | Observed::UdpAnswer { .. } => Outcome::Reply,
        Observed::Reset { .. } => Outcome::Refused,
        Observed::Error(e) => error_outcome(e.error),
        Observed::Silence { .. } => Outcome::Timeout,
        Observed::NoRoute => Outcome::NoRoute,
        Observed::Rejected(route) => rejected_outcome(*route),
    }
}

/// The outcome of a call refused by the sender's own route (kernel: a blackhole route's EINVAL
/// means no usable route; EHOSTUNREACH reads as host unreachable, as `emulate` reads it; EACCES
/// as filtered, like a REJECT with admin-prohibited).
pub fn rejected_outcome(route: RouteType) -> Outcome {
    match route {
        RouteType::Blackhole => Outcome::NoRoute,
        RouteType::Unreachable => Outcome::HostUnreachable,
        RouteType::Prohibit => Outcome::Filtered,
    }
}

fn error_outcome(error: IcmpError) -> Outcome {
    match error {
        IcmpError::NetUnreachable => Outcome::NetUnreachable,
        IcmpError::HostUnreachable => Outcome::HostUnreachable,
        IcmpError::PortUnreachable => Outcome::Refused,
        IcmpError::AdminProhibited => Outcome::Filtered,
        IcmpError::TtlExceeded => Outcome::TtlExceeded,
    }
}

/// The ICMP error in `packet` if it is about our flow: the packet it quotes went to `dst` (the
/// kernel finds a connected socket by the quoted addresses, iputils checks the quoted
/// destination; an error quoting a translated destination reaches no one) and is ours.
fn error_about(
    packet: &Ipv4Packet,
    dst: Ipv4Addr,
    matches: impl Fn(InnerFlow) -> bool,
) -> Option<(IcmpError, u16)> {
    match packet.transport {
        Transport::IcmpError { error, original }
            if original.dst == dst && matches(original.flow) =>
        {
            let seq = match original.flow {
                InnerFlow::Echo { seq, .. } => seq,
                _ => 0,
            };
            Some((error, seq))
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn ping(
    sim: &mut Sim<'_>,
    from: NodeId,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    count: u16,
    interval: Duration,
    wait: Duration,
) -> Observed {
    let mut log = PingLog::to(dst);
    for seq in 1..=count {
        let at = SimTime::ZERO.after(interval * u32::from(seq - 1));
        drain(sim, at, &mut |r| log.collect(r));
        let request = Ipv4Packet {
            src,
            dst,
            ttl,
            transport: Transport::EchoRequest { id: ECHO_ID, seq },
        };
        if sim.originate(from, request).is_err() {
            return Observed::NoRoute;
        }
        log.sent_at.push(sim.now());
    }
    // iputils waits for the outstanding replies, at most `wait` after the last request.
    let deadline = sim.now().after(wait);
    while !log.complete(count) && sim.now() < deadline {
        let more = sim.run_until(deadline);
        for r in sim.drain_inbox() {
            log.collect(r);
        }
        if !more {
            break;
        }
    }
    Observed::Ping {
        sent: count,
        replies: log.replies,
        errors: log.errors,
        redirects: log.redirects,
    }
}

/// What a ping has seen so far.
pub(super) struct PingLog {
    /// Where the echoes go: errors quoting another destination are not ours.
    dst: Ipv4Addr,
    pub sent_at: Vec<SimTime>,
    pub replies: Vec<EchoReply>,
    pub errors: Vec<ErrorReport>,
    pub redirects: Vec<RedirectReport>,
    /// Per sequence number: a reply came (bit 0), an error came (bit 1). Inline for the
    /// first few: a one-echo ping allocates nothing for it.
    seen: SmallVec<[u8; 16]>,
}

impl PingLog {
    const REPLIED: u8 = 1;
    const ERRORED: u8 = 2;

    /// The log of a ping to `dst`.
    pub(super) fn to(dst: Ipv4Addr) -> Self {
        PingLog {
            dst,
            sent_at: Vec::new(),
            replies: Vec::new(),
            errors: Vec::new(),
            redirects: Vec::new(),
            seen: SmallVec::new(),
        }
    }

    /// Every request answered, by a reply or an error.
    pub(super) fn complete(&self, count: u16) -> bool {
        self.seen
            .get(1..=usize::from(count))
            .is_some_and(|seen| seen.iter().all(|&s| s != 0))
    }

    /// Notes `what` about `seq`; true when it is new for that sequence number.
    fn mark(&mut self, seq: u16, what: u8) -> bool {
        let i = usize::from(seq);
        if self.seen.len() <= i {
            self.seen.resize(i + 1, 0);
        }
        let new = self.seen[i] & what == 0;
        self.seen[i] |= what;
        new
    }

    pub(super) fn collect(&mut self, r: Received) {
        let ours = |f| matches!(f, InnerFlow::Echo { id: ECHO_ID, .. });
        match r.packet.transport {
            // iputils matches replies by identifier and sequence, whatever their source.
            Transport::EchoReply { id: ECHO_ID, seq } => {
                let sent = self
                    .sent_at
                    .get(usize::from(seq).wrapping_sub(1))
                    .copied()
                    .unwrap_or(SimTime::ZERO);
                if self.mark(seq, Self::REPLIED) {
                    self.replies.push(EchoReply {
                        seq,
                        from: r.packet.src,
                        ttl: r.packet.ttl,
                        rtt: r.at.since(sent),
                    });
                }
            }
            Transport::Redirect { gateway, original } if ours(original.flow) => {
                let seq = match original.flow {
                    InnerFlow::Echo { seq, .. } => seq,
                    _ => 0,
                };
                self.redirects.push(RedirectReport {
                    at: r.at,
                    from: r.packet.src,
                    gateway,
                    seq,
                });
            }
            _ => {
                if let Some((error, seq)) = error_about(&r.packet, self.dst, ours) {
                    self.mark(seq, Self::ERRORED);
                    self.errors.push(ErrorReport {
                        at: r.at,
                        from: r.packet.src,
                        error,
                        seq,
                    });
                }
            }
        }
    }
}

/// Runs the engine up to `until`, handing each inbox packet to `handle`.
fn drain(sim: &mut Sim<'_>, until: SimTime, handle: &mut dyn FnMut(Received)) {
    while sim.now() < until {
        let more = sim.run_until(until);
        for r in sim.drain_inbox() {
            handle(r);
        }
        if !more {
            break;
        }
    }
}

fn tcp(
    sim: &mut Sim<'_>,
    from: NodeId,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    port: Port,
    timeout: Duration,
) -> Observed {
    let syn = Ipv4Packet {
        src,
        dst,
        ttl,
        transport: Transport::Tcp {
            sport: EPHEMERAL_PORT,
            dport: port.get(),
            flags: TcpFlags::Syn,
        },
    };
    if sim.originate(from, syn) == Err(SendError::NoRoute) {
        return Observed::NoRoute;
    }
    let deadline = SimTime::ZERO.after(timeout);
    // Retransmissions at 1, 3, 7, 15, 31, 63 s (initial RTO 1 s, doubling).
    let mut retransmit =
        (0..6u32).map(|k| SimTime::ZERO.after(Duration::from_secs((1u64 << (k + 1)) - 1)));
    let mut next = retransmit.next();
    loop {
        let until = next.filter(|t| *t < deadline).unwrap_or(deadline);
        sim.wake_at(until);
        let more = sim.run_until(until);
        for r in sim.drain_inbox() {
            if let Some(observed) = tcp_answer(&r, dst, port.get()) {
                return observed;
            }
        }
        if sim.now() >= deadline || (!more && sim.stopped().is_some()) {
            return Observed::Silence { waited: timeout };
        }
        if next.is_some_and(|t| sim.now() >= t) {
            let _ = sim.originate(from, syn);
            next = retransmit.next();
        }
    }
}

fn udp(
    sim: &mut Sim<'_>,
    from: NodeId,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    port: Port,
    wait: Duration,
) -> Observed {
    let datagram = Ipv4Packet {
        src,
        dst,
        ttl,
        transport: Transport::Udp {
            sport: EPHEMERAL_PORT,
            dport: port.get(),
        },
    };
    if sim.originate(from, datagram) == Err(SendError::NoRoute) {
        return Observed::NoRoute;
    }
    let deadline = SimTime::ZERO.after(wait);
    while sim.now() < deadline {
        sim.wake_at(deadline);
        let more = sim.run_until(deadline);
        for r in sim.drain_inbox() {
            if let Some(observed) = udp_answer(&r, dst, port.get()) {
                return observed;
            }
        }
        if !more {
            break;
        }
    }
    Observed::Silence { waited: wait }
}

/// What a TCP client connecting to `dst`, port `port`, makes of a packet it received: connected,
/// reset, an ICMP error about its SYN, or nothing (it keeps waiting).
pub(super) fn tcp_answer(r: &Received, dst: Ipv4Addr, port: u16) -> Option<Observed> {
    match r.packet.transport {
        Transport::Tcp {
            dport: EPHEMERAL_PORT,
            flags: TcpFlags::SynAck,
            sport,
        } if sport == port && r.packet.src == dst => Some(Observed::Connected {
            rtt: r.at.since(SimTime::ZERO),
            ttl: r.packet.ttl,
        }),
        Transport::Tcp {
            dport: EPHEMERAL_PORT,
            flags: TcpFlags::Rst,
            sport,
        } if sport == port && r.packet.src == dst => Some(Observed::Reset {
            after: r.at.since(SimTime::ZERO),
            from: r.packet.src,
        }),
        _ => error_observed(
            r,
            dst,
            |f| matches!(f, InnerFlow::Tcp { sport: EPHEMERAL_PORT, dport } if dport == port),
        ),
    }
}

/// An ICMP error `r` carries about the client's own packet (`ours` recognises its quoted
/// header), as the client observes it.
fn error_observed(
    r: &Received,
    dst: Ipv4Addr,
    ours: impl Fn(InnerFlow) -> bool,
) -> Option<Observed> {
    error_about(&r.packet, dst, ours).map(|(error, _)| {
        Observed::Error(ErrorReport {
            at: r.at,
            from: r.packet.src,
            error,
            seq: 0,
        })
    })
}

/// What a UDP client sending to `dst`, port `port`, makes of a packet it received: an answer,
/// an ICMP error about its datagram, or nothing (it keeps waiting).
pub(super) fn udp_answer(r: &Received, dst: Ipv4Addr, port: u16) -> Option<Observed> {
    match r.packet.transport {
        Transport::Udp {
            sport,
            dport: EPHEMERAL_PORT,
        } if sport == port && r.packet.src == dst => Some(Observed::UdpAnswer {
            rtt: r.at.since(SimTime::ZERO),
            from: r.packet.src,
        }),
        _ => error_observed(
            r,
            dst,
            |f| matches!(f, InnerFlow::Udp { sport: EPHEMERAL_PORT, dport } if dport == port),
        ),
    }
}
