//! What decided a probe's fate, as data: the kind of step, the node (or segment) it happened
//! on, and the rule, route or address involved. A [`super::Why`] carries one beside its prose,
//! so that scripts read `why.cause` (`{"kind": "filtered", "node": "gw", "chain": "forward",
//! "rule": 2, "verdict": "drop"}`) instead of parsing sentences.

use std::net::Ipv4Addr;

use serde::Serialize;

/// The decisive step, typed. Node, segment and interface names are as the file writes them;
/// rule numbers count from 1, as `iptables -L --line-numbers` does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// A filter chain's rule, or its policy (`rule` absent), dropped or rejected the packet.
    Filtered {
        node: String,
        chain: &'static str,
        /// The user chain the deciding rule is in (reached from `chain` by `-j`/`-g`).
        #[serde(skip_serializing_if = "Option::is_none")]
        user_chain: Option<String>,
        rule: Option<usize>,
        /// `drop`, or `reject` with the ICMP type or TCP reset (`reject-with-tcp-reset`).
        verdict: &'static str,
    },
    /// Nothing listens where the connection arrived (after any DNAT on the way).
    Refused {
        node: String,
        address: Ipv4Addr,
        proto: &'static str,
        port: u16,
    },
    /// The sender has no route to the destination: the call fails at once.
    NoRouteAtSender { node: String, destination: Ipv4Addr },
    /// A `blackhole`, `unreachable` or `prohibit` route took the packet.
    RejectRoute {
        node: String,
        route: &'static str,
        prefix: String,
    },
    /// A host that does not forward received a packet that is not for it.
    ForwardingDisabled { node: String },
    /// A router had no route to the destination (or, for an answer on its way back, to the
    /// prober: `answer` is then true).
    NoRoute {
        node: String,
        destination: Ipv4Addr,
        answer: bool,
    },
    /// The TTL ran out in a loop: the routers the packet went round (the first six).
    RoutingLoop { node: String, path: Vec<String> },
    /// The TTL ran out on a path longer than the TTL the packet was `sent` with: `path` are
    /// the routers that forwarded it before `node`. `chosen` when the prober chose that TTL
    /// (`ping -t`): then the answer is what was asked for, and nothing in the file needs a fix.
    TtlExhausted {
        node: String,
        sent: u8,
        chosen: bool,
        path: Vec<String>,
    },
    /// Nobody answered ARP for the next hop.
    ArpUnanswered {
        node: String,
        segment: String,
        next_hop: Ipv4Addr,
    },
    /// The node that got the probe has no route for its answer.
    NoRouteBack { node: String, destination: Ipv4Addr },
    /// A packet translated away from 127/8 kept its loopback source (route_localnet=0).
    LoopbackSource { node: String },
    /// A packet came back with the node's own address as its source (accept_local=0).
    MartianSource { node: String },
    /// A packet arrived from the wire addressed to 127/8 (route_localnet=0).
    MartianDestination { node: String },
    /// A node's bridge would have sent the packet back out of the port it came in through,
    /// `interface` of `port_node`, which has no hairpin mode.
    HairpinOff {
        node: String,
        port_node: String,
        interface: String,
    },
    /// The segment lost the frame (its `loss`).
    Lost { segment: String, loss: f64 },
    /// The answer came from another address than the one asked (an asymmetric path);
    /// `translated_by` is the node whose DNAT the answer bypassed.
    AsymmetricAnswer {
        client: String,
        answered_from: Ipv4Addr,
        translated_by: Option<String>,
    },
    /// The simulation stopped early: `horizon` or `event-budget`.
    Stopped { reason: &'static str },
    /// No node dropped anything, and no answer came.
    NoAnswer { destination: Ipv4Addr },
    /// A curl got a 502: the service could not reach its backend, for `cause`.
    Backend {
        node: String,
        backend: Ipv4Addr,
        /// The backend's port, or `icmp`.
        port: String,
        cause: Option<Box<Cause>>,
    },
    /// (invariants) A flow crossed an isolation: delivered to `node`.
    Delivered { node: String },
    /// (invariants) A private source left through an interface that faces public networks.
    PrivateSourceLeaked {
        node: String,
        interface: String,
        source: Ipv4Addr,
    },
    /// (invariants) The probe ended with `outcome` and nothing more is known.
    Ended { outcome: &'static str },
}

impl Cause {
    /// Whether a change to the file could make the probe succeed: not when the prober itself
    /// chose a TTL too small for the path.
    pub fn fixable(&self) -> bool {
        !matches!(self, Cause::TtlExhausted { chosen: true, .. })
    }
}

/// Loss rates are validated to lie in 0..=1 when a file loads, never NaN: equality is total.
impl Eq for Cause {}
