//! The probes a matrix runs in each cell, as written on the command line (`ping,ssh,tcp:443`).

use std::fmt;
use std::str::FromStr;

use crate::model::{Outcome, Port, Probe};
use crate::sim::ProbeKind;

/// One probe of a matrix: a tool and, where it has one, the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeSpec {
    /// One ICMP echo request, as `ping -c 1`.
    Ping,
    /// A TCP connection to an SSH port (22 unless given), as `ssh`.
    Ssh(Port),
    /// A TCP connection to an HTTP port (80 unless given), as `curl http://HOST[:PORT]/`.
    Http(Port),
    /// A bare TCP connection.
    Tcp(Port),
    /// One UDP datagram.
    Udp(Port),
}

impl ProbeSpec {
    /// The tool-level probe, as `reachlab ping`/`ssh`/`curl`/`tcp`/`udp` run it.
    pub fn probe(self) -> Probe {
        match self {
            ProbeSpec::Ping => Probe::Ping,
            ProbeSpec::Ssh(port) => Probe::Ssh { port },
            ProbeSpec::Http(port) => Probe::Curl {
                port,
                path: "/".into(),
            },
            ProbeSpec::Tcp(port) => Probe::Tcp { port },
            ProbeSpec::Udp(port) => Probe::Udp { port },
        }
    }

    /// What the engine runs for one cell: one echo request, or one connection attempt.
    pub fn kind(self) -> ProbeKind {
        crate::run::probe_kind(&self.probe(), 1, None)
    }
}

impl fmt::Display for ProbeSpec {
    /// The canonical spelling: `ping`, `ssh`, `ssh:2222`, `http`, `http:8080`, `tcp:443`, `udp:53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeSpec::Ping => f.write_str("ping"),
            ProbeSpec::Ssh(port) if *port == Port::SSH => f.write_str("ssh"),
            ProbeSpec::Ssh(port) => write!(f, "ssh:{port}"),
            ProbeSpec::Http(port) if *port == Port::HTTP => f.write_str("http"),
            ProbeSpec::Http(port) => write!(f, "http:{port}"),
            ProbeSpec::Tcp(port) => write!(f, "tcp:{port}"),
            ProbeSpec::Udp(port) => write!(f, "udp:{port}"),
        }
    }
}

/// A probe that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeSpecError {
    #[error("`{0}` is not a probe: use ping, ssh[:PORT], http[:PORT], tcp:PORT or udp:PORT")]
    Unknown(String),
    #[error("`{0}` needs a port: {0}:PORT")]
    MissingPort(String),
    #[error("`{written}`: the port must be a number from 1 to 65535")]
    BadPort { written: String },
    #[error("`{0}` takes no port")]
    PortNotTaken(String),
    #[error("no probe given: use ping, ssh[:PORT], http[:PORT], tcp:PORT or udp:PORT")]
    Empty,
    #[error("probe `{0}` is listed twice")]
    Duplicate(String),
}

impl FromStr for ProbeSpec {
    type Err = ProbeSpecError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let written = written.trim();
        let (tool, port) = match written.split_once(':') {
            Some((tool, port)) => (tool, Some(port)),
            None => (written, None),
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .and_then(Port::new)
                    .ok_or_else(|| ProbeSpecError::BadPort {
                        written: written.to_owned(),
                    })
            })
            .transpose()?;
        match (tool.to_ascii_lowercase().as_str(), port) {
            ("ping", None) => Ok(ProbeSpec::Ping),
            ("ping", Some(_)) => Err(ProbeSpecError::PortNotTaken(written.to_owned())),
            ("ssh", port) => Ok(ProbeSpec::Ssh(port.unwrap_or(Port::SSH))),
            ("http" | "curl", port) => Ok(ProbeSpec::Http(port.unwrap_or(Port::HTTP))),
            ("tcp", Some(port)) => Ok(ProbeSpec::Tcp(port)),
            ("udp", Some(port)) => Ok(ProbeSpec::Udp(port)),
            ("tcp" | "udp", None) => Err(ProbeSpecError::MissingPort(tool.to_owned())),
            _ => Err(ProbeSpecError::Unknown(written.to_owned())),
        }
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
