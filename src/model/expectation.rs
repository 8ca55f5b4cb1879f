//! Expected probe outcomes written in a topology's `expect:` list.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{NodeId, Origin, Port};

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
