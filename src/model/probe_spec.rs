//! One probe as a matrix, an invariant or the command line names it (`ping`, `ssh:2222`,
//! `http`, `tcp:443`, `udp:53`): a tool and, where it has one, the port. What the engine runs
//! for it lives above the model (`matrix::probes`).

use std::fmt;
use std::str::FromStr;

use super::{Port, Probe};

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
