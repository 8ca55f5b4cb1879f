//! `traceroute` as Linux's (traceroute 2.1, Dmitry Butskoy's, Debian's and Ubuntu's) does it by
//! default: UDP datagrams to ports from 33434 up, one more for each probe, three probes with
//! TTL 1, three with TTL 2, and so on; each router on the way answers the probes whose TTL it
//! exhausts with "Time to live exceeded", the destination answers "port unreachable". The
//! trace stops after the hop where the destination answered or where an unreachable error
//! (`!H`, `!N`, `!X`) came back, or at the most hops (`-m`, 30). Each probe is a run of its
//! own on the engine (docs/linux-semantics.md, "ICMP errors": who answers, from which address).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::model::{Network, NodeId, Port};
use crate::sim::{IcmpError, Observed, ProbeKind, SimConfig, SimTime, run_probe};

/// How the trace is sent (traceroute's own defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `-m`: the largest TTL sent.
    pub max_hops: u8,
    /// `-q`: probes a hop.
    pub queries: u8,
    /// `-p`: the destination port of the first probe.
    pub first_port: u16,
    /// `-w`: how long a probe waits for its answer.
    pub wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_hops: 30,
            queries: 3,
            first_port: 33434,
            wait: Duration::from_secs(5),
        }
    }
}

/// What answered one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub from: Ipv4Addr,
    pub rtt: Duration,
    /// The annotation traceroute prints after the time (`!H`, `!N`, `!X`), for the
    /// unreachable errors that end the trace.
    pub note: Option<&'static str>,
    /// The destination answered (port unreachable, or a datagram back): the trace ends here.
    pub reached: bool,
}

/// The probes of one TTL, in the order sent (`None`: no answer, a `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub ttl: u8,
    pub probes: Vec<Option<Answer>>,
}

/// A whole trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub from: NodeId,
    pub dst: Ipv4Addr,
    pub options: Options,
    pub hops: Vec<Hop>,
    /// The sender has no route to the destination: nothing was sent.
    pub no_route: bool,
}

/// Traces the route from `from` to `dst`.
pub fn traceroute(
    net: &Network,
    from: NodeId,
    dst: Ipv4Addr,
    options: Options,
    config: &SimConfig,
) -> Trace {
    let mut trace = Trace {
        from,
        dst,
        options,
        hops: Vec::new(),
        no_route: false,
    };
    let mut port = options.first_port;
    for ttl in 1..=options.max_hops {
        let mut hop = Hop {
            ttl,
            probes: Vec::new(),
        };
        for _ in 0..options.queries {
            let Some(number) = Port::new(port) else {
                break;
            };
            port = port.wrapping_add(1);
            let kind = ProbeKind::Udp {
                port: number,
                wait: options.wait,
                ttl: Some(ttl),
            };
            let run = run_probe(net, from, dst, &kind, config);
            match run.observed {
                Observed::NoRoute | Observed::Rejected(_) => {
                    trace.no_route = true;
                    return trace;
                }
                observed => hop.probes.push(answer(&observed, dst)),
            }
        }
        let done = hop
            .probes
            .iter()
            .flatten()
            .any(|a| a.reached || a.note.is_some());
        trace.hops.push(hop);
        if done {
            break;
        }
    }
    trace
}

/// What traceroute makes of what one probe observed.
fn answer(observed: &Observed, dst: Ipv4Addr) -> Option<Answer> {
    match *observed {
        Observed::Error(report) => {
            let (note, reached) = match report.error {
                IcmpError::TtlExceeded => (None, false),
                IcmpError::PortUnreachable => (None, report.from == dst),
                IcmpError::HostUnreachable => (Some("!H"), false),
                IcmpError::NetUnreachable => (Some("!N"), false),
                IcmpError::AdminProhibited => (Some("!X"), false),
            };
            Some(Answer {
                from: report.from,
                rtt: report.at.since(SimTime::ZERO),
                note,
                reached,
            })
        }
        Observed::UdpAnswer { rtt, from } => Some(Answer {
            from,
            rtt,
            note: None,
            reached: true,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ErrorReport;

    const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

    fn error(from: Ipv4Addr, error: IcmpError) -> Observed {
        Observed::Error(ErrorReport {
            at: SimTime::ZERO.after(Duration::from_micros(40)),
            from,
            error,
            seq: 0,
        })
    }

    #[test]
    fn time_exceeded_names_the_hop_and_goes_on() {
        let a = answer(&error(ROUTER, IcmpError::TtlExceeded), DST).expect("an answer");
        assert_eq!((a.from, a.note, a.reached), (ROUTER, None, false));
        assert_eq!(a.rtt, Duration::from_micros(40));
    }

    #[test]
    fn port_unreachable_from_the_destination_reaches_it() {
        let a = answer(&error(DST, IcmpError::PortUnreachable), DST).expect("an answer");
        assert!(a.reached && a.note.is_none());
    }

    #[test]
    fn unreachable_errors_are_annotated_and_end_the_trace() {
        for (e, note) in [
            (IcmpError::HostUnreachable, "!H"),
            (IcmpError::NetUnreachable, "!N"),
            (IcmpError::AdminProhibited, "!X"),
        ] {
            let a = answer(&error(ROUTER, e), DST).expect("an answer");
            assert_eq!((a.note, a.reached), (Some(note), false));
        }
    }

    #[test]
    fn silence_is_a_star() {
        let silence = Observed::Silence {
            waited: Duration::from_secs(5),
        };
        assert_eq!(answer(&silence, DST), None);
    }
}
