//! The core network model every topology lowers into: nodes with interfaces on L2 segments,
//! routing tables, listeners, expected probe outcomes and invariants.
//!
//! The model is small on purpose. Platform sections (VirtualBox, Docker, OpenStack, Kubernetes)
//! lower into these same elements, and each element keeps its [`Origin`] so that explanations
//! can point at the text the user wrote. Elements refer to each other by typed ids
//! ([`NodeId`], [`IfaceId`], [`SegmentId`]) that index the [`Network`]'s vectors.

mod address;
mod dns;
mod docker;
mod expectation;
mod ids;
mod invariant;
mod listener;
mod netfilter;
mod network;
mod origin;
mod pattern;
mod probe_spec;
mod route;

pub use address::{MacAddr, Port};
pub use dns::{DnsZone, Resolver};
pub use docker::{DockerContainer, DockerEngine, DockerNetwork};
pub use expectation::{Expectation, Outcome, Probe, Target};
pub use ids::{IfaceId, NodeId, SegmentId};
pub use invariant::{Invariant, InvariantKind, NodeSet, Reach};
pub use listener::{
    HttpRoute, Listener, PROXY_TRIES, PathMatch, Proto, Service, http_reason, proxy_error_page,
    route,
};
pub use netfilter::{
    AddrRange, AddrTypes, Chain, ChainId, ChainName, ConnMarkOp, CtStatus, Decider, Effect,
    FilterRule, Flow, L4, MAX_DEPTH, MarkMatch, MarkSet, Match, Module, ModuleOrder, Multiport,
    NatAction, NatFlags, NatHook, NatRule, Netfilter, PacketFacts, PlatformFix, PortSide, Recent,
    RecentLists, RecentOp, RecentSide, RejectWith, RuleAt, RunState, SetMatch, States,
    Target as RuleTarget, UserChain, Verdict,
};
/// The limits and defaults of `-m recent` (xt_recent).
pub mod recent_limits {
    pub use super::netfilter::{DEFAULT_LIST, LIST_SIZE, MAX_HITCOUNT, MAX_NAME};
}
pub use network::{Interface, Network, Node, OsProfile, Segment};
pub use origin::{Origin, Span};
pub use pattern::matches_pattern;
pub use probe_spec::{ProbeSpec, ProbeSpecError};
pub use route::{Lookup, RejectRoute, Route, RouteKind, RouteType, RoutingTable, TableEntry};
