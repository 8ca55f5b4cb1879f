//! `traceroute` as traceroute 2.1 prints it (checked in namespaces: `tests/emulate_check.rs`):
//!
//! ```text
//! traceroute to 203.0.113.10 (203.0.113.10), 30 hops max, 60 byte packets
//!  1  192.0.2.1 (192.0.2.1)  0.574 ms  0.389 ms  0.375 ms
//!  2  * * *
//!  3  198.51.100.2 (198.51.100.2)  0.013 ms !H  0.011 ms !H  0.014 ms !H
//! ```
//!
//! The hop number in two columns, then each probe: ` *` for no answer, else the address that
//! answered when it differs from the previous probe's (there is no reverse DNS in a lab, so the
//! name is the address), the time, and the annotation of an unreachable error. Without a
//! route the header is followed by `connect: Network is unreachable` (on stderr) and exit 1.

use std::fmt::Write as _;

use serde::Serialize;

use super::probe::ToolOutput;
use crate::traceroute::{Answer, Trace};

/// What `traceroute` prints (stdout), what it says on stderr, and its exit status.
pub fn traceroute_output(trace: &Trace, written: &str) -> (ToolOutput, Option<&'static str>) {
    let mut text = format!(
        "traceroute to {written} ({}), {} hops max, 60 byte packets\n",
        trace.dst, trace.options.max_hops
    );
    if trace.no_route {
        let output = ToolOutput { text, exit_code: 1 };
        return (output, Some("connect: Network is unreachable"));
    }
    for hop in &trace.hops {
        let _ = write!(text, "{:2} ", hop.ttl);
        let mut last = None;
        for probe in &hop.probes {
            match probe {
                None => text.push_str(" *"),
                Some(answer) => {
                    if last != Some(answer.from) {
                        let _ = write!(text, " {0} ({0})", answer.from);
                        last = Some(answer.from);
                    }
                    let _ = write!(text, "  {:.3} ms", answer.rtt.as_secs_f64() * 1e3);
                    if let Some(note) = answer.note {
                        let _ = write!(text, " {note}");
                    }
                }
            }
        }
        text.push('\n');
    }
    (ToolOutput { text, exit_code: 0 }, None)
}

/// `traceroute --format json`: the hops, each probe's answer or `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRecord {
    pub destination: std::net::Ipv4Addr,
    pub from: String,
    pub hops: Vec<HopRecord>,
    pub max_hops: u8,
    /// The sender had no route: nothing was sent.
    pub no_route: bool,
    /// The destination answered.
    pub reached: bool,
    pub target: String,
}

/// One TTL's probes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopRecord {
    pub probes: Vec<Option<ProbeAnswer>>,
    pub ttl: u8,
}

/// What answered one probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeAnswer {
    pub from: std::net::Ipv4Addr,
    /// `!H`, `!N` or `!X`, when an unreachable error answered.
    pub note: Option<&'static str>,
    pub rtt_ms: f64,
}

/// The JSON record of a trace.
pub fn traceroute_record(trace: &Trace, from: &str, written: &str) -> TraceRecord {
    let answer = |a: &Answer| ProbeAnswer {
        from: a.from,
        note: a.note,
        rtt_ms: a.rtt.as_secs_f64() * 1e3,
    };
    TraceRecord {
        destination: trace.dst,
        from: from.to_owned(),
        hops: trace
            .hops
            .iter()
            .map(|h| HopRecord {
                probes: h.probes.iter().map(|p| p.as_ref().map(answer)).collect(),
                ttl: h.ttl,
            })
            .collect(),
        max_hops: trace.options.max_hops,
        no_route: trace.no_route,
        reached: trace
            .hops
            .iter()
            .flat_map(|h| h.probes.iter().flatten())
            .any(|a| a.reached),
        target: written.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::model::NodeId;
    use crate::traceroute::{Hop, Options};

    fn answered(from: [u8; 4], micros: u64, note: Option<&'static str>) -> Option<Answer> {
        Some(Answer {
            from: Ipv4Addr::from(from),
            rtt: Duration::from_micros(micros),
            note,
            reached: false,
        })
    }

    #[test]
    fn a_hop_prints_its_address_once_then_each_time_and_note() {
        let trace = Trace {
            from: NodeId::from_index(0),
            dst: Ipv4Addr::new(203, 0, 113, 20),
            options: Options {
                max_hops: 4,
                ..Options::default()
            },
            hops: vec![
                Hop {
                    ttl: 1,
                    probes: vec![
                        answered([192, 0, 2, 1], 20, None),
                        answered([192, 0, 2, 1], 21, None),
                        answered([192, 0, 2, 9], 22, None),
                    ],
                },
                Hop {
                    ttl: 2,
                    probes: vec![None, answered([198, 51, 100, 2], 40, Some("!H")), None],
                },
            ],
            no_route: false,
        };
        let (output, stderr) = traceroute_output(&trace, "web");
        assert_eq!(
            output.text,
            "traceroute to web (203.0.113.20), 4 hops max, 60 byte packets\n \
             1  192.0.2.1 (192.0.2.1)  0.020 ms  0.021 ms 192.0.2.9 (192.0.2.9)  0.022 ms\n \
             2  * 198.51.100.2 (198.51.100.2)  0.040 ms !H *\n"
        );
        assert_eq!((output.exit_code, stderr), (0, None));
    }

    #[test]
    fn without_a_route_it_says_so_on_stderr_and_fails() {
        let trace = Trace {
            from: NodeId::from_index(0),
            dst: Ipv4Addr::new(10, 200, 0, 1),
            options: Options::default(),
            hops: Vec::new(),
            no_route: true,
        };
        let (output, stderr) = traceroute_output(&trace, "10.200.0.1");
        assert_eq!(
            output.text,
            "traceroute to 10.200.0.1 (10.200.0.1), 30 hops max, 60 byte packets\n"
        );
        assert_eq!(output.exit_code, 1);
        assert_eq!(stderr, Some("connect: Network is unreachable"));
    }
}
