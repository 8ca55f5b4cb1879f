//! Invariants written in a topology's `invariants:` list: properties over every flow between
//! sets of nodes (isolation, reachability, no private source address beyond a border node),
//! resolved to node ids. The analysis layer (`invariants`) checks them.

use std::fmt;
use std::net::Ipv4Addr;

use super::ProbeSpec;
use super::{NodeId, Origin};

/// The nodes an invariant names: a group of the file's `groups:`, or one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSet {
    /// The group's or the node's name, as written.
    pub name: String,
    /// Whether `name` is a group (otherwise it is a node).
    pub is_group: bool,
    /// The nodes, in the file's order, each once.
    pub nodes: Vec<NodeId>,
}

impl NodeSet {
    pub fn contains(&self, node: NodeId) -> bool {
        self.nodes.contains(&node)
    }
}

/// Where the probes of a `reachable` invariant go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every node of the set, each at its first address.
    Nodes(NodeSet),
    /// One address, written as an address or a DNS name of the file.
    Address { written: String, addr: Ipv4Addr },
}

impl Reach {
    /// As written in the file.
    pub fn written(&self) -> &str {
        match self {
            Reach::Nodes(set) => &set.name,
            Reach::Address { written, .. } => written,
        }
    }
}

/// What an invariant requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvariantKind {
    /// No probe from a node of one set is delivered to a node of another, at any of its
    /// addresses, in either direction.
    Isolated {
        sets: Vec<NodeSet>,
        /// The probes to try; empty means every probe (see `invariants::probe_universe`).
        probes: Vec<ProbeSpec>,
    },
    /// Every probe from a node of `from` to `to` gets a reply.
    Reachable {
        from: NodeSet,
        to: Reach,
        probe: ProbeSpec,
    },
    /// No packet with a private (RFC 1918) source leaves a node of `border` through an
    /// interface whose addresses are all public, over every probe between nodes.
    NoPrivateSourceBeyond { border: NodeSet },
}

/// One entry of `invariants:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invariant {
    pub kind: InvariantKind,
    /// The user's words for why it matters.
    pub note: Option<String>,
    pub origin: Origin,
}

/// `isolated [tenant-a, tenant-b]`, `reachable ssh from campus to 192.168.37.69`,
/// `no-private-source-beyond edge`.
impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            InvariantKind::Isolated { sets, probes } => {
                let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
                write!(f, "isolated [{}]", names.join(", "))?;
                if !probes.is_empty() {
                    let probes: Vec<String> = probes.iter().map(ToString::to_string).collect();
                    write!(f, " by {}", probes.join(", "))?;
                }
                Ok(())
            }
            InvariantKind::Reachable { from, to, probe } => {
                write!(
                    f,
                    "reachable {probe} from {} to {}",
                    from.name,
                    to.written()
                )
            }
            InvariantKind::NoPrivateSourceBeyond { border } => {
                write!(f, "no-private-source-beyond {}", border.name)
            }
        }
    }
}
