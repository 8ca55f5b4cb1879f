//! Which nodes a matrix probes from and which destinations it probes (`--from`, `--to`),
//! resolved on one network into rows and columns.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::model::{Network, NodeId, matches_pattern};

/// Nodes (or, for destinations, addresses) as the user listed them: every node, or a
/// comma-separated list of names, `*`/`?` patterns over node names, addresses and DNS names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every node (as destinations: every node with an address).
    #[default]
    All,
    /// These items, in this order.
    Items(Vec<String>),
}

impl FromStr for Selection {
    type Err = SelectError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let items: Vec<String> = written
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect();
        if items.is_empty() {
            return Err(SelectError::Empty);
        }
        Ok(Selection::Items(items))
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str("*"),
            Selection::Items(items) => f.write_str(&items.join(",")),
        }
    }
}

/// A selection that does not fit the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the list of nodes is empty")]
    Empty,
    #[error("`{name}` is not a node of {topology}{}", hint_suffix(.hint))]
    UnknownNode {
        name: String,
        topology: String,
        hint: Option<String>,
    },
    #[error(
        "`{written}` is not a node, an address or a DNS name of {topology}{}",
        hint_suffix(.hint)
    )]
    UnknownDestination {
        written: String,
        topology: String,
        hint: Option<String>,
    },
    #[error("no node of {topology} matches `{pattern}`")]
    NoMatch { pattern: String, topology: String },
    #[error("node `{node}` of {topology} has no address to probe")]
    Unaddressed { node: String, topology: String },
    #[error("{topology} has no {what} to probe")]
    Nothing {
        what: &'static str,
        topology: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

/// A row: a node the probes start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub id: NodeId,
}

/// A column: where the probes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// A node's name, or the address or DNS name as written.
    pub label: String,
    pub address: Ipv4Addr,
    /// The node this destination names: it is not probed from itself. `None` for an address
    /// given as such, which every source probes (its owner through its own stack).
    pub node: Option<NodeId>,
}

/// The rows and columns of a matrix on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub sources: Vec<Source>,
    pub destinations: Vec<Destination>,
}

impl Layout {
    /// Resolves `from` and `to` on `net`; `topology` names the network in errors.
    pub fn resolve(
        net: &Network,
        topology: &str,
        from: &Selection,
        to: &Selection,
    ) -> Result<Self, SelectError> {
        let sources = sources(net, topology, from)?;
        let destinations = destinations(net, topology, to)?;
        if sources.is_empty() {
            return Err(SelectError::Nothing {
                what: "node",
                topology: topology.to_owned(),
            });
        }
        if destinations.is_empty() {
            return Err(SelectError::Nothing {
                what: "node with an address",
                topology: topology.to_owned(),
            });
        }
        Ok(Self {
            sources,
            destinations,
        })
    }

    /// Keeps the sources and destinations whose names `other` has too, in this layout's order,
    /// and the same in `other`: the common part two versions of a topology can be compared on.
    pub fn align(self, other: Self) -> (Self, Self) {
        let sources: Vec<(Source, Source)> = self
            .sources
            .into_iter()
            .filter_map(|s| {
                let t = other.sources.iter().find(|t| t.name == s.name)?.clone();
                Some((s, t))
            })
            .collect();
        let destinations: Vec<(Destination, Destination)> = self
            .destinations
            .into_iter()
            .filter_map(|d| {
                let e = other
                    .destinations
                    .iter()
                    .find(|e| e.label == d.label)?
                    .clone();
                Some((d, e))
            })
            .collect();
        let (s1, s2) = sources.into_iter().unzip();
        let (d1, d2) = destinations.into_iter().unzip();
        (
            Self {
                sources: s1,
                destinations: d1,
            },
            Self {
                sources: s2,
                destinations: d2,
            },
        )
    }
}

fn node_names(net: &Network) -> Vec<&str> {
    net.nodes.iter().map(|n| n.name.as_str()).collect()
}

fn is_pattern(item: &str) -> bool {
    item.contains(['*', '?'])
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn sources(net: &Network, topology: &str, from: &Selection) -> Result<Vec<Source>, SelectError> {
    let source = |id: NodeId| Source {
        name: net.node(id).name.clone(),
        id,
    };
    let items = match from {
        Selection::All => return Ok(net.nodes.iter().map(|n| source(n.id)).collect()),
        Selection::Items(items) => items,
    };
    let mut ids = Vec::new();
    for item in items {
        if is_pattern(item) {
            let matching: Vec<NodeId> = net
                .nodes
                .iter()
                .filter(|n| matches_pattern(item, &n.name))
                .map(|n| n.id)
                .collect();
            if matching.is_empty() {
                return Err(SelectError::NoMatch {
                    pattern: item.clone(),
                    topology: topology.to_owned(),
                });
            }
            for id in matching {
                push_unique(&mut ids, id);
            }
        } else {
            let node = net
                .node_by_name(item)
                .ok_or_else(|| SelectError::UnknownNode {
                    name: item.clone(),
                    topology: topology.to_owned(),
                    hint: did_you_mean(item, &node_names(net)),
                })?;
            push_unique(&mut ids, node.id);
        }
    }
    Ok(ids.into_iter().map(source).collect())
}

fn did_you_mean(word: &str, names: &[&str]) -> Option<String> {
    crate::topology::closest_name(word, names).map(|c| format!("did you mean `{c}`?"))
}

fn destinations(
    net: &Network,
    topology: &str,
    to: &Selection,
) -> Result<Vec<Destination>, SelectError> {
    let of_node = |id: NodeId| {
        let node = net.node(id);
        net.node_address(node).map(|address| Destination {
            label: node.name.clone(),
            address,
            node: Some(id),
        })
    };
    let items = match to {
        Selection::All => return Ok(net.nodes.iter().filter_map(|n| of_node(n.id)).collect()),
        Selection::Items(items) => items,
    };
    let mut out: Vec<Destination> = Vec::new();
    for item in items {
        if let Ok(address) = item.parse::<Ipv4Addr>() {
            push_unique(
                &mut out,
                Destination {
                    label: item.clone(),
                    address,
                    node: None,
                },
            );
        } else if is_pattern(item) {
            let matching: Vec<NodeId> = net
                .nodes
                .iter()
                .filter(|n| matches_pattern(item, &n.name))
                .map(|n| n.id)
                .collect();
            if matching.is_empty() {
                return Err(SelectError::NoMatch {
                    pattern: item.clone(),
                    topology: topology.to_owned(),
                });
            }
            // A pattern picks the nodes that have an address; naming one without is an error.
            for d in matching.into_iter().filter_map(of_node) {
                push_unique(&mut out, d);
            }
        } else if let Some(node) = net.node_by_name(item) {
            let d = of_node(node.id).ok_or_else(|| SelectError::Unaddressed {
                node: item.clone(),
                topology: topology.to_owned(),
            })?;
            push_unique(&mut out, d);
        } else if let Some(node) = net.node_by_dns(item) {
            let address = net
                .node_address(node)
                .ok_or_else(|| SelectError::Unaddressed {
                    node: node.name.clone(),
                    topology: topology.to_owned(),
                })?;
            push_unique(
                &mut out,
                Destination {
                    label: item.clone(),
                    address,
                    node: Some(node.id),
                },
            );
        } else {
            let names: Vec<&str> = net
                .nodes
                .iter()
                .flat_map(|n| {
                    std::iter::once(n.name.as_str()).chain(n.dns.iter().map(String::as_str))
                })
                .collect();
            return Err(SelectError::UnknownDestination {
                written: item.clone(),
                topology: topology.to_owned(),
                hint: did_you_mean(item, &names),
            });
        }
    }
    Ok(out)
}
