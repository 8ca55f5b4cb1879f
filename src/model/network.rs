//! The network itself: nodes, their interfaces and the segments those plug into.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::{
    ChainName, Decider, Expectation, IfaceId, Invariant, Listener, MacAddr, Netfilter, NodeId,
    Origin, RoutingTable, RuleAt, SegmentId,
};

/// How a node's operating system behaves where systems differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OsProfile {
    /// Linux: initial TTL 64.
    #[default]
    Linux,
    /// Windows: initial TTL 128.
    Windows,
}

impl OsProfile {
    /// The TTL of packets the node originates.
    pub fn initial_ttl(self) -> u8 {
        match self {
            OsProfile::Linux => 64,
            OsProfile::Windows => 128,
        }
    }
}

/// An L2 broadcast domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: SegmentId,
    pub name: String,
    /// One-way delay across the segment.
    pub latency: Duration,
    /// Probability that a frame is lost, from 0 to 1.
    pub loss: f64,
    pub mtu: u16,
    /// Interfaces plugged into it, in file order.
    pub interfaces: Vec<IfaceId>,
    /// What the segment is, for explanations (platform sections describe their networks).
    pub note: Option<String>,
    /// The interface that is this segment's Linux bridge, on the node that owns it; the
    /// segment's other interfaces are its ports. `None`: a switch no node owns. Frames bridged
    /// between ports meet the owner's iptables when the owner has `br_netfilter`
    /// (docs/linux-semantics.md, "Bridges and br_netfilter").
    pub bridge: Option<IfaceId>,
    pub origin: Origin,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub id: IfaceId,
    pub node: NodeId,
    pub name: String,
    pub segment: SegmentId,
    pub mac: MacAddr,
    /// Addresses with their prefix length (`192.168.1.10/24`), in file order.
    pub addresses: Vec<Ipv4Net>,
    /// Its port on a node's bridge has hairpin mode (`bridge link set dev PORT hairpin on`):
    /// the bridge may send a frame back out of the port it came in through.
    pub hairpin: bool,
    /// `net.ipv4.conf.IFACE.route_localnet=1`: a 127/8 source may leave through it and a 127/8
    /// destination may arrive on it (docs/linux-semantics.md, "Loopback traffic").
    pub route_localnet: bool,
    /// `net.ipv4.conf.IFACE.proxy_arp=1` (with `proxy_delay=0`): on a forwarding node it
    /// answers ARP requests for addresses routed out of another interface
    /// (docs/linux-semantics.md, "Proxy ARP").
    pub proxy_arp: bool,
    /// Addresses a user-space responder answers ARP requests for on this interface, with its
    /// MAC, though the node does not hold them (MetalLB's layer-2 speaker;
    /// docs/linux-semantics.md, "ARP answered from user space").
    pub answers_arp_for: Vec<Ipv4Addr>,
    pub origin: Origin,
}

impl Interface {
    /// Whether the interface faces public networks: it has addresses, none of them private
    /// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16).
    pub fn faces_public(&self) -> bool {
        !self.addresses.is_empty() && self.addresses.iter().all(|a| !a.addr().is_private())
    }

    /// The first address, which a probe sent out of this interface uses as its source.
    pub fn primary_address(&self) -> Option<Ipv4Addr> {
        self.addresses.first().map(Ipv4Net::addr)
    }
}

/// A host or router.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub os: OsProfile,
    /// `net.ipv4.ip_forward`.
    pub forwarding: bool,
    /// br_netfilter is loaded with `net.bridge.bridge-nf-call-iptables=1`: IPv4 frames bridged
    /// by this node's bridges pass its iptables.
    pub br_netfilter: bool,
    pub interfaces: Vec<IfaceId>,
    pub routes: RoutingTable,
    /// DNS names that resolve to this node.
    pub dns: Vec<String>,
    /// The node's resolv.conf when a platform's DNS serves it (a Kubernetes pod).
    pub resolver: Option<super::Resolver>,
    pub listeners: Vec<Listener>,
    /// NAT and filter rules; `None` when the node has none (no connection tracking needed).
    pub netfilter: Option<Box<Netfilter>>,
    pub origin: Origin,
}

impl Node {
    /// A NAT rule's comment, or its place: "nat rule 2 of `gw`", "rule 1 of nat chain
    /// KUBE-SEP-X of `node1`".
    pub fn nat_words(&self, at: RuleAt) -> String {
        let nf = self.netfilter.as_deref();
        if let Some(comment) = nf.and_then(|nf| nf.nat_rule_at(at)?.comment.clone()) {
            return comment;
        }
        match (at.chain, nf) {
            (Some(c), Some(nf)) => format!(
                "rule {} of nat chain {} of `{}`",
                at.index + 1,
                nf.chain_label(c, true),
                self.name
            ),
            _ => format!("nat rule {} of `{}`", at.index + 1, self.name),
        }
    }

    /// The words for what decided a packet's fate in `chain` of this node: the rule's (or the
    /// policy's) comment, which for platform rules speaks the platform's words, else its place
    /// ("input rule 2 of `gw`", "the policy of the input chain of `gw`"). Empty for a node with
    /// no netfilter.
    pub fn filter_words(&self, chain: ChainName, decider: Decider) -> String {
        let Some(nf) = self.netfilter.as_ref() else {
            return String::new();
        };
        let c = nf.chain(chain);
        match decider {
            Decider::Rule(at) => match nf.filter_rule(chain, at).and_then(|r| r.comment.as_ref()) {
                Some(comment) => comment.clone(),
                None => match at.chain {
                    None => format!("{} rule {} of `{}`", chain.words(), at.index + 1, self.name),
                    Some(id) => format!(
                        "rule {} of chain {} of `{}`",
                        at.index + 1,
                        nf.chain_label(id, false),
                        self.name
                    ),
                },
            },
            Decider::Policy => match &c.policy_comment {
                Some(comment) => comment.clone(),
                None => format!(
                    "the policy of the {} chain of `{}`",
                    chain.words(),
                    self.name
                ),
            },
        }
    }
}

/// A whole topology, lowered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// The topology's name (its `name:` or the file stem).
    pub name: String,
    pub description: Option<String>,
    pub segments: Vec<Segment>,
    pub nodes: Vec<Node>,
    pub interfaces: Vec<Interface>,
    pub expectations: Vec<Expectation>,
    /// The `invariants:` entries, in file order.
    pub invariants: Vec<Invariant>,
    /// The Docker engines of a `docker:` section, as dockerd would be asked for them.
    pub docker: Vec<super::DockerEngine>,
    /// The DNS zones platforms serve (a Kubernetes cluster's), which nodes' resolvers use.
    pub zones: Vec<super::DnsZone>,
}

impl Network {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// An interface's name; `lo` for [`IfaceId::LOOPBACK`].
    pub fn interface_name(&self, id: IfaceId) -> &str {
        if id == IfaceId::LOOPBACK {
            "lo"
        } else {
            &self.interface(id).name
        }
    }

    pub fn interface(&self, id: IfaceId) -> &Interface {
        &self.interfaces[id.index()]
    }

    pub fn segment(&self, id: SegmentId) -> &Segment {
        &self.segments[id.index()]
    }

    /// The node called `name`.
    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node that owns `addr` on one of its interfaces.
    pub fn node_by_address(&self, addr: Ipv4Addr) -> Option<&Node> {
        self.interfaces
            .iter()
            .find(|i| i.addresses.iter().any(|a| a.addr() == addr))
            .map(|i| self.node(i.node))
    }

    /// The node a DNS name from the file resolves to.
    pub fn node_by_dns(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.dns.iter().any(|d| d.eq_ignore_ascii_case(name)))
    }

    /// A node's interfaces.
    pub fn interfaces_of<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a Interface> + 'a {
        node.interfaces.iter().map(|&i| self.interface(i))
    }

    /// The first address of a node (first interface with an address), used when a probe names
    /// the node rather than an address.
    pub fn node_address(&self, node: &Node) -> Option<Ipv4Addr> {
        self.interfaces_of(node)
            .find_map(Interface::primary_address)
    }

    /// The source address Linux picks for a packet sent along `route` (inet_select_addr): the
    /// route's preferred source, else an address of the device in the next hop's subnet, else
    /// the device's first address, else the node's first address.
    pub fn source_for(&self, route: &super::Route, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if let super::RouteKind::Connected { src } = route.kind {
            return Some(src);
        }
        let hop = route.gateway.unwrap_or(dst);
        let iface = self.interface(route.dev);
        iface
            .addresses
            .iter()
            .find(|a| a.contains(&hop))
            .or_else(|| iface.addresses.first())
            .map(|a| a.addr())
            .or_else(|| self.node_address(self.node(iface.node)))
    }

    /// Resolves what a user typed as a probe target from node `from`: through the node's
    /// resolver and its zone first (a pod resolving a Service's name), then as [`resolve`]
    /// does.
    ///
    /// [`resolve`]: Self::resolve
    pub fn resolve_from(&self, from: super::NodeId, written: &str) -> Option<Ipv4Addr> {
        if let Ok(addr) = written.parse::<Ipv4Addr>() {
            return Some(addr);
        }
        let resolved = self.node(from).resolver.as_ref().and_then(|r| {
            let zone = self.zones.get(r.zone)?;
            r.candidates(written).iter().find_map(|c| zone.lookup(c))
        });
        resolved.or_else(|| self.resolve(written))
    }

    /// Resolves what a user typed as a probe target: an address, a node name or a DNS name.
    pub fn resolve(&self, written: &str) -> Option<Ipv4Addr> {
        if let Ok(addr) = written.parse::<Ipv4Addr>() {
            return Some(addr);
        }
        let node = self
            .node_by_name(written)
            .or_else(|| self.node_by_dns(written))?;
        self.node_address(node)
    }
}
