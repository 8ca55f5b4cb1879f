//! A cluster's network: its nodes (nodes of the file, with an address), its pod and Service
//! networks and each node's Calico pod block, validated into a [`PodNetwork`] before anything
//! is generated; then emitted as each node's routes to the blocks (what Calico's BGP
//! installs). The pods' own wiring is `calico`'s.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{ClusterSpec, CniName};
use crate::format::file::{RouteSpec, RouteTypeName, TopologyFile};
use crate::format::{Code, Diagnostic, Located, Span};

/// Calico's default IP pool, for a cluster without `pod_cidr`.
const CALICO_POD_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16);

/// flannel's default `Network` (kube-flannel.yml's net-conf.json), for a cluster without
/// `pod_cidr`.
const FLANNEL_POD_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 244, 0, 0), 16);

/// kubeadm's default Service network, for a cluster without `service_cidr`.
const DEFAULT_SERVICE_CIDR: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 96, 0, 0), 12);

/// The prefix length of the blocks Calico hands each node (`blockSize`).
const CALICO_BLOCK_LEN: u8 = 26;

/// The prefix length of flannel's node subnets (`SubnetLen`).
const FLANNEL_BLOCK_LEN: u8 = 24;

/// The longest prefix a pinned pod block may have: a /30 still holds two pods.
const MAX_PINNED_LEN: u8 = 30;

/// A node of the cluster: its position in [`PodNetwork::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct NodeId(usize);

impl NodeId {
    /// The position, for per-node tables.
    pub fn index(self) -> usize {
        self.0
    }

    /// The node at `index`, for tests that place pods by hand.
    #[cfg(test)]
    pub fn at(index: usize) -> Self {
        NodeId(index)
    }
}

/// A cluster node as planned.
pub(super) struct ClusterNode {
    /// Its name, that of a node of the file.
    pub name: String,
    /// The address the other nodes route this node's pods via (its first address).
    pub address: Ipv4Addr,
    /// Its pod block.
    pub block: Ipv4Net,
}

/// A cluster's validated network: what the rest of the expansion builds on.
pub(super) struct PodNetwork {
    /// The network plugin.
    pub cni: CniName,
    /// The pod network, truncated to its prefix.
    pub pod_cidr: Ipv4Net,
    /// The Service network, truncated to its prefix.
    pub service_cidr: Ipv4Net,
    /// The nodes of the cluster that exist, in the order the cluster lists them.
    nodes: Vec<ClusterNode>,
}

impl PodNetwork {
    /// Every node with its id, in order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &ClusterNode)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &ClusterNode {
        &self.nodes[id.0]
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The offset in a block of its first pod: flannel's `cni0` holds the block's first
    /// address (host-local IPAM starts after the gateway), Calico's IPAM hands out from it.
    pub fn first_pod(&self) -> u32 {
        match self.cni {
            CniName::Calico => 1,
            CniName::Flannel => 2,
        }
    }

    /// The id of the node called `name`.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(NodeId)
    }

    /// Turns forwarding on on each node, and adds the routes to the blocks: each other node's
    /// block via that node's address (Calico's BGP, flannel's host-gw; flannel's VXLAN reaches
    /// the same pods through `flannel.1`), and with Calico a blackhole for the node's own block
    /// (its pods' /32 routes are more specific).
    pub fn emit(&self, file: &mut TopologyFile, cluster: &ClusterSpec) {
        let span = cluster.name.span;
        let at = |text: String| Located::at(text, span);
        for (id, this) in self.nodes() {
            let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == this.name) else {
                continue;
            };
            node.forwarding = Some(true);
            if self.cni == CniName::Calico {
                node.routes.push(RouteSpec {
                    to: at(this.block.to_string()),
                    kind: Some(Located::at(RouteTypeName::Blackhole, span)),
                    ..RouteSpec::default()
                });
            }
            for (_, other) in self.nodes().filter(|(other, _)| *other != id) {
                node.routes.push(RouteSpec {
                    to: at(other.block.to_string()),
                    via: Some(at(other.address.to_string())),
                    ..RouteSpec::default()
                });
            }
        }
    }
}

/// Validates the cluster's nodes and networks and hands each node its pod block; `None`
/// (with the errors in `out`) when something is wrong.
pub(super) fn plan(
    file: &TopologyFile,
    cluster: &ClusterSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<PodNetwork> {
    let named = known_nodes(file, cluster, out);
    if named.is_empty() {
        return None;
    }
    let cni = cluster.cni.unwrap_or_default();
    let (default_pool, block_len) = match cni {
        CniName::Calico => (CALICO_POD_CIDR, CALICO_BLOCK_LEN),
        CniName::Flannel => (FLANNEL_POD_CIDR, FLANNEL_BLOCK_LEN),
    };
    let pod_cidr = network(cluster.pod_cidr.as_ref(), default_pool, "pod network", out);
    let service_cidr = network(
        cluster.service_cidr.as_ref(),
        DEFAULT_SERVICE_CIDR,
        "Service network",
        out,
    );
    let (Some(pod_cidr), Some(service_cidr)) = (pod_cidr, service_cidr) else {
        return None;
    };
    let blocks = match blocks(cluster, pod_cidr, &named, block_len) {
        Ok(blocks) => blocks,
        Err(error) => {
            out.push(*error);
            return None;
        }
    };
    let nodes = named
        .into_iter()
        .zip(blocks)
        .map(|((name, address), block)| ClusterNode {
            name,
            address,
            block,
        })
        .collect();
    Some(PodNetwork {
        cni,
        pod_cidr,
        service_cidr,
        nodes,
    })
}

/// The cluster's nodes that are nodes of the file with an address, in order, with that
/// address; an error for each other one.
fn known_nodes(
    file: &TopologyFile,
    cluster: &ClusterSpec,
    out: &mut Vec<Diagnostic>,
) -> Vec<(String, Ipv4Addr)> {
    let mut nodes = Vec::new();
    for n in &cluster.nodes {
        match node_address(file, &n.value) {
            Some(addr) => nodes.push((n.value.clone(), addr)),
            None => {
                let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
                let mut d = Diagnostic::error(Code::UnknownReference, n.span, format!("cluster `{}` runs on node `{}`, which is not a node of this file with an address", cluster.name.value, n.value)).label("unknown node");
                if let Some(c) = crate::format::closest_name(&n.value, &names) {
                    d = d.hint(format!("did you mean `{c}`?"));
                }
                out.push(d);
            }
        }
    }
    nodes
}

/// The first IPv4 address written on node `name` of the file (the text before an
/// address's `/`): the file keeps addresses as text until they are lowered.
fn node_address(file: &TopologyFile, name: &str) -> Option<Ipv4Addr> {
    let node = file.nodes.iter().find(|n| n.name.value == name)?;
    node.interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .find_map(|a| a.value.split('/').next()?.parse().ok())
}

/// The network written in `text` (truncated to its prefix), or `default` when none is
/// written; `None` with an error when the text is not a prefix.
fn network(
    text: Option<&Located<String>>,
    default: Ipv4Net,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Net> {
    let Some(text) = text else {
        return Some(default);
    };
    match text.value.parse::<Ipv4Net>() {
        Ok(n) => Some(n.trunc()),
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not a {what} prefix", text.value),
                )
                .label("expected PREFIX/LENGTH")
                .hint("e.g. 172.16.0.0/16"),
            );
            None
        }
    }
}

/// Each node's pod block, in node order: the pinned one (a prefix inside the pod network of
/// at most /30), or the next block of the pod network that overlaps no pinned block.
fn blocks(
    cluster: &ClusterSpec,
    pod_cidr: Ipv4Net,
    nodes: &[(String, Ipv4Addr)],
    block_len: u8,
) -> Result<Vec<Ipv4Net>, Box<Diagnostic>> {
    let span = cluster.name.span;
    // Each pinned block as written and as parsed.
    let pinned: BTreeMap<&str, (&str, Option<Ipv4Net>)> = cluster
        .pod_blocks
        .iter()
        .map(|(node, text)| (node.as_str(), (text.as_str(), text.parse().ok())))
        .collect();
    let taken: Vec<Ipv4Net> = pinned.values().filter_map(|(_, b)| *b).collect();
    let mut free = pod_cidr
        .subnets(block_len)
        .into_iter()
        .flatten()
        .filter(|b| {
            !taken
                .iter()
                .any(|p| p.contains(&b.network()) || b.contains(&p.network()))
        });
    let mut blocks = Vec::with_capacity(nodes.len());
    for (name, _) in nodes {
        let block = match pinned.get(name.as_str()) {
            Some((_, Some(b)))
                if pod_cidr.contains(&b.network()) && b.prefix_len() <= MAX_PINNED_LEN =>
            {
                b.trunc()
            }
            Some((text, _)) => {
                return Err(Box::new(Diagnostic::error(Code::BadValue, span, format!("pod block `{text}` of node `{name}` is not a prefix inside the pod network {pod_cidr}")).label("bad pod block").hint("pin a /26 of `pod_cidr`")));
            }
            None => free
                .next()
                .ok_or_else(|| full(pod_cidr, name, block_len, span))?,
        };
        blocks.push(block);
    }
    Ok(blocks)
}

/// The error for node `name` when the pod network has no /26 left for it.
fn full(pod_cidr: Ipv4Net, name: &str, block_len: u8, span: Span) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::error(
            Code::BadValue,
            span,
            format!("the pod network {pod_cidr} has no /{block_len} left for node `{name}`"),
        )
        .label("pod network full")
        .hint("use a larger `pod_cidr`"),
    )
}

/// The host side of pod `pod`'s veth in namespace `namespace`, as Calico's CNI plugin names
/// it: `cali` and the first 11 hex digits of the SHA-1 of `namespace.pod`
/// (docs/platform-semantics.md, "Kubernetes", **Calico**).
pub(super) fn calico_iface(namespace: &str, pod: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let mut name = String::with_capacity(15);
    name.push_str("cali");
    for byte in digest.iter().take(6) {
        name.push_str(&format!("{byte:02x}"));
    }
    name.truncate(15);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_names_the_host_veth_from_the_sha1_of_namespace_dot_pod() {
        // `printf default.web | sha1sum` prints 68caf03a5f4aa41b0a8b0a4b0ad8f3dd6f51c354.
        assert_eq!(calico_iface("default", "web"), "cali68caf03a5f4");
    }
}
