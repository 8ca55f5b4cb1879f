//! What answers on a node's ports.

use std::net::Ipv4Addr;

use super::{Origin, Port};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What a listener says once a client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// An SSH server sending its identification banner.
    Ssh { banner: String },
    /// An HTTP server answering every request with this status and body.
    Http {
        status: u16,
        body: String,
        content_type: String,
        /// Backends it calls before answering (address, port).
        requires: Vec<(Ipv4Addr, Port)>,
    },
    /// A TCP service that sends one line on connect.
    Banner(String),
    /// TCP: accepts and says nothing. UDP: echoes each datagram.
    Plain,
}

/// A socket listening on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: Proto,
    pub port: Port,
    /// `None` listens on every address of the node (`0.0.0.0`).
    pub bind: Option<Ipv4Addr>,
    /// UDP: its answers come from the address the route back picks, not from the address the
    /// datagram was sent to (a plain socket on all addresses, as docker-proxy's).
    pub reply_from_route: bool,
    pub service: Service,
    pub origin: Origin,
}

impl Listener {
    /// Whether a packet to `dst` on this listener's protocol and port reaches it.
    pub fn accepts(&self, proto: Proto, dst: Ipv4Addr, port: Port) -> bool {
        self.proto == proto && self.port == port && self.bind.is_none_or(|b| b == dst)
    }
}

/// The reason phrase of an HTTP status code (RFC 9110), as servers send it; empty when unknown.
pub fn http_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
