//! Expected probe outcomes written in a topology's `expect:` list.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{NodeId, Origin, Port, Proto};

/// Which tool a probe imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// ICMP echo, like `ping`.
    Ping,
    /// A TCP connection to port 22 (or another) that reads the SSH banner, like `ssh`.
    Ssh { port: Port },
    /// An HTTP GET, like `curl URL`.
    Curl { port: Port, path: String },
    /// A bare TCP connection.
    Tcp { port: Port },
    /// A UDP datagram.
    Udp { port: Port },
}

impl Probe {
    /// The tool's name as the user wrote it.
    pub fn tool(&self) -> &'static str {
        match self {
            Probe::Ping => "ping",
            Probe::Ssh { .. } => "ssh",
            Probe::Curl { .. } => "curl",
            Probe::Tcp { .. } => "tcp",
            Probe::Udp { .. } => "udp",
        }
    }

    /// The protocol and port the probe connects to; `None` for ping.
    pub fn port(&self) -> Option<(Proto, Port)> {
        match self {
            Probe::Ping => None,
            Probe::Ssh { port } | Probe::Curl { port, .. } | Probe::Tcp { port } => {
                Some((Proto::Tcp, *port))
            }
            Probe::Udp { port } => Some((Proto::Udp, *port)),
        }
    }
}

/// A probe's destination, resolved to an address, with the words the user used for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What was written: an address, a node name or a DNS name.
    pub written: String,
    pub addr: Ipv4Addr,
}

/// How a probe ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Reply,
    Refused,
    Timeout,
    NoRoute,
    NetUnreachable,
    HostUnreachable,
    Filtered,
    TtlExceeded,
}

/// One entry of `expect:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub from: NodeId,
    pub probe: Probe,
    pub target: Target,
    pub outcome: Outcome,
    /// For a reply: the TTL it must arrive with.
    pub ttl: Option<u8>,
    /// For a reply: the largest acceptable round-trip time.
    pub max_rtt: Option<Duration>,
    /// For curl: the HTTP status the answer must have.
    pub http_status: Option<u16>,
    /// For curl: text the answer's body must contain.
    pub body: Option<String>,
    pub origin: Origin,
}

impl Outcome {
    /// The name used in topology files (`reply`, `host-unreachable`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Reply => "reply",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::NoRoute => "no-route",
            Outcome::NetUnreachable => "net-unreachable",
            Outcome::HostUnreachable => "host-unreachable",
            Outcome::Filtered => "filtered",
            Outcome::TtlExceeded => "ttl-exceeded",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
