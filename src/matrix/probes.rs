//! The probes a matrix runs in each cell, as written on the command line (`ping,ssh,tcp:443`).

use std::fmt;
use std::str::FromStr;

use crate::model::Outcome;
pub use crate::model::{ProbeSpec, ProbeSpecError};
use crate::sim::ProbeKind;

impl ProbeSpec {
    /// What the engine runs for one cell: one echo request, or one connection attempt.
    pub fn kind(self) -> ProbeKind {
        crate::sim::ProbeKind::of(&self.probe(), 1, None)
    }
}

/// The probes of a matrix, in the order given, each once (`--probe ping,ssh,tcp:443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeList(Vec<ProbeSpec>);

impl ProbeList {
    /// A list of given probes; an empty list or a probe given twice is refused.
    pub fn new(probes: Vec<ProbeSpec>) -> Result<Self, ProbeSpecError> {
        if probes.is_empty() {
            return Err(ProbeSpecError::Empty);
        }
        for (i, p) in probes.iter().enumerate() {
            if probes[..i].contains(p) {
                return Err(ProbeSpecError::Duplicate(p.to_string()));
            }
        }
        Ok(Self(probes))
    }

    pub fn as_slice(&self) -> &[ProbeSpec] {
        &self.0
    }
}

impl Default for ProbeList {
    /// `ping` alone.
    fn default() -> Self {
        Self(vec![ProbeSpec::Ping])
    }
}

impl FromStr for ProbeList {
    type Err = ProbeSpecError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let probes = written
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(probes)
    }
}

impl fmt::Display for ProbeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(","))
    }
}

/// Every outcome, in the order of the legend.
pub const OUTCOMES: [Outcome; 8] = [
    Outcome::Reply,
    Outcome::Refused,
    Outcome::Timeout,
    Outcome::NoRoute,
    Outcome::NetUnreachable,
    Outcome::HostUnreachable,
    Outcome::Filtered,
    Outcome::TtlExceeded,
];

/// The outcome named `name` in topology files and JSON (`reply`, `no-route`, ...).
pub fn outcome_named(name: &str) -> Option<Outcome> {
    OUTCOMES.into_iter().find(|o| o.name() == name)
}

/// The one-letter cause a failed cell shows after `✗`; `None` for a reply.
pub fn cause_letter(outcome: Outcome) -> Option<char> {
    match outcome {
        Outcome::Reply => None,
        Outcome::Refused => Some('R'),
        Outcome::Timeout => Some('T'),
        Outcome::NoRoute => Some('N'),
        Outcome::NetUnreachable => Some('U'),
        Outcome::HostUnreachable => Some('H'),
        Outcome::Filtered => Some('F'),
        Outcome::TtlExceeded => Some('X'),
    }
}

/// The words of the legend for a cause.
pub fn cause_words(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Reply => "reply",
        Outcome::Refused => "refused",
        Outcome::Timeout => "timeout",
        Outcome::NoRoute => "no route (the sender has none)",
        Outcome::NetUnreachable => "network unreachable",
        Outcome::HostUnreachable => "host unreachable",
        Outcome::Filtered => "filtered (rejected by a firewall)",
        Outcome::TtlExceeded => "TTL exceeded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_read_and_print_canonically() {
        for (written, canonical) in [
            ("ping", "ping"),
            ("ssh", "ssh"),
            ("ssh:22", "ssh"),
            ("ssh:2222", "ssh:2222"),
            ("http", "http"),
            ("curl:8080", "http:8080"),
            ("tcp:443", "tcp:443"),
            ("UDP:53", "udp:53"),
        ] {
            let p: ProbeSpec = written.parse().expect("valid probe");
            assert_eq!(p.to_string(), canonical);
            assert_eq!(canonical.parse::<ProbeSpec>(), Ok(p));
        }
        for bad in ["tcp", "udp:0", "tcp:70000", "ping:1", "icmp", "ssh:x"] {
            assert!(bad.parse::<ProbeSpec>().is_err(), "{bad}");
        }
        assert!("ping,ping".parse::<ProbeList>().is_err());
        assert!("".parse::<ProbeList>().is_err());
        assert_eq!(
            "ping, tcp:443".parse::<ProbeList>().map(|l| l.to_string()),
            Ok("ping,tcp:443".into())
        );
    }

    #[test]
    fn every_failure_has_its_own_letter() {
        let letters: Vec<char> = OUTCOMES.iter().filter_map(|&o| cause_letter(o)).collect();
        assert_eq!(letters.len(), OUTCOMES.len() - 1);
        for (i, l) in letters.iter().enumerate() {
            assert!(!letters[..i].contains(l));
        }
        for o in OUTCOMES {
            assert_eq!(outcome_named(o.name()), Some(o));
        }
    }
}
