//! The topology file format: serde types that mirror the YAML one to one.
//!
//! These types say what may be written, not whether it makes sense: addresses stay text here and
//! are parsed, checked and turned into the [`crate::model`] by the lowering (`lower.rs`), so that every
//! problem in a file can be reported at once with its position. Doc comments become the
//! descriptions of the JSON Schema (`schema/topology.schema.json`) that editors use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::{Located, Span};

/// A reachlab topology: L2 segments, the nodes attached to them, and the probes expected to
/// succeed or fail. Platform sections (VirtualBox, Docker, OpenStack, Kubernetes) lower into the
/// same nodes and segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "reachlab topology")]
pub struct TopologyFile {
    /// A short name for the topology (defaults to the file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text: what the topology models, which lab it reproduces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// L2 broadcast domains: a switch, a Linux bridge, a cable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentSpec>,
    /// Hosts and routers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// Probes and the outcome each is expected to have (checked by `reachlab check`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<ExpectSpec>,
    /// Named sets of nodes for `invariants:`: `tenant-a: [web-a, "db-a*"]` (node names, or
    /// patterns where `*` matches any run of characters and `?` one character).
    #[serde(default, skip_serializing_if = "GroupsSpec::is_empty")]
    pub groups: GroupsSpec,
    /// Properties that must hold over every flow they cover (checked by `reachlab check`):
    /// `isolated`, `reachable`, `no-private-source-beyond`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<Located<InvariantSpec>>,
    /// VirtualBox VMs on host nodes, with their adapters (NAT, NAT network, host-only,
    /// bridged, internal) and port forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualbox: Option<super::platform::virtualbox::VirtualBoxSpec>,
    /// Docker engines on nodes or VMs: bridge networks (docker0 and user-defined), containers
    /// and published ports, with the NAT and FORWARD rules Docker writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<super::platform::docker::DockerSpec>,
    /// An OpenStack project: tenant networks, routers (SNAT, floating IPs), security groups and
    /// instances, lowered as Neutron does it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openstack: Option<super::platform::openstack::OpenStackSpec>,
    /// Kubernetes clusters on nodes of the file: workloads from manifests, Services as
    /// kube-proxy builds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<super::platform::kubernetes::KubernetesSpec>,
    /// Set by the `docker:` section's expansion (never read from a file): what dockerd would
    /// be asked for, engine by engine, for `reachlab emulate check --dockerd`.
    #[serde(skip)]
    #[schemars(skip)]
    pub docker_engines: Vec<crate::model::DockerEngine>,
    /// Set by a platform section (never read from a file): the DNS zones it serves (a
    /// Kubernetes cluster's Services by name).
    #[serde(skip)]
    #[schemars(skip)]
    pub dns_zones: Vec<crate::model::DnsZone>,
}

/// An L2 broadcast domain. Every interface attached to it hears every broadcast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SegmentSpec {
    /// Unique segment name, referenced by interfaces.
    pub name: Located<String>,
    /// One-way delay across the segment, e.g. `0.5ms`, `20ms`, `1s` (default `0ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*(ns|us|µs|ms|s)$"))]
    pub latency: Option<Located<String>>,
    /// Share of frames lost, as a percentage, e.g. `1%` or `0.5%` (default `0%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*%$"))]
    pub loss: Option<Located<String>>,
    /// What the segment is, shown when a probe is aimed into it from outside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// MTU of the segment in bytes (default 1500, from 68 to 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<Located<u32>>,
}

/// The behaviour profile of a node's operating system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OsName {
    /// Linux: initial TTL 64.
    #[default]
    Linux,
    /// Windows: initial TTL 128.
    Windows,
}

/// A host or router.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique node name, used by probes (`reachlab ping FILE NODE TARGET`).
    pub name: Located<String>,
    /// Operating-system profile (default `linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Located<OsName>>,
    /// Whether the node forwards packets between interfaces (`net.ipv4.ip_forward`, default
    /// false). Routers need `true`; a host with `false` silently drops packets not addressed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<bool>,
    /// Whether br_netfilter is loaded with `net.bridge.bridge-nf-call-iptables=1` (default
    /// false, a fresh Linux host; Docker and Kubernetes nodes load it): IPv4 frames the node's
    /// bridges (interfaces with `bridge: true`) carry between their ports pass the node's
    /// iptables, with `-i`/`-o` the bridge's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br_netfilter: Option<bool>,
    /// Network interfaces, each attached to one segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceSpec>,
    /// Static routes, as `ip route add` takes them. Connected routes come from the addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    /// A file of `ip -j addr` output (JSON, as `ip -j addr` or `ip -j -p addr` prints it on a
    /// real host), relative to this file's folder and inside it: each interface under
    /// `interfaces:` written without `addresses` takes its IPv4 addresses and its MAC from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_addr: Option<Box<Located<String>>>,
    /// A file of `ip -j route show table all` output, relative to this file's folder and inside
    /// it: the routes of its main table come before those of `routes:`; its connected and local
    /// routes must be those the addresses give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_route: Option<Box<Located<String>>>,
    /// Set on loading (never read from a file): which addresses, MACs and routes came from the
    /// files of `ip_addr` and `ip_route`.
    #[serde(skip)]
    #[schemars(skip)]
    pub ip_taken: Option<Box<super::ip_json::Taken>>,
    /// DNS names that resolve to this node's first address (e.g. `web.lab`, `youtube.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Located<String>>,
    /// Services listening on TCP or UDP ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenSpec>,
    /// NAT rules in order, as iptables' nat table: `masquerade`, `snat` or `dnat` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat: Vec<RuleSpec>,
    /// Stateful filter chains (iptables' filter table). Absent chains accept everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Box<FirewallSpec>>,
    /// The node's netfilter as `iptables-save` prints it, written here (a `|` block keeps
    /// each rule's line for messages): user chains, marks, every match docs/netfilter.md
    /// lists. Instead of `nat` and `firewall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptables: Option<Box<Located<String>>>,
    /// A file of `iptables-save` output (as saved on a real host), relative to this file's
    /// folder and inside it. Instead of `nat`, `firewall` and `iptables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptables_save: Option<Box<Located<String>>>,
    /// The node's netfilter as `nft list ruleset` prints it, written here (a `|` block keeps
    /// each rule's line for messages): tables of families ip and inet (docs/netfilter.md,
    /// "nft list ruleset text"). Instead of `nat`, `firewall` and the other rules keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft: Option<Box<Located<String>>>,
    /// A file of `nft list ruleset` output (as listed on a real host), relative to this
    /// file's folder and inside it. Instead of `nat`, `firewall` and the other rules keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft_ruleset: Option<Box<Located<String>>>,
    /// Set on loading (never read from a file): the text of `iptables`, `iptables_save`,
    /// `nft` or `nft_ruleset`, and where each of its lines is.
    #[serde(skip)]
    #[schemars(skip)]
    pub rules_text: Option<Box<super::source::RulesText>>,
    /// Set by a platform section (never read from a file): the rules its daemon writes on this
    /// node, around the node's own.
    #[serde(skip)]
    #[schemars(skip)]
    pub platform_rules: Option<Box<PlatformRules>>,
    /// Set by a platform section (never read from a file): the node's resolv.conf, when the
    /// platform's DNS serves it (a Kubernetes pod).
    #[serde(skip)]
    #[schemars(skip)]
    pub resolver: Option<Box<crate::model::Resolver>>,
}

/// The netfilter a platform's daemon writes on a node (dockerd on its host), as
/// `iptables-save` text, and how it sits with the node's own rules, which were there before
/// the daemon started: the daemon inserts some rules at the top of a built-in chain (`-I`) and
/// appends others (`-A`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformRules {
    /// The text, each line placed at the declaration it comes from.
    pub text: super::source::RulesText,
    /// How many of the text's rules in each built-in chain come before the node's own.
    pub before_own: BeforeOwn,
    /// A chain of the daemon's that holds rules the file writes (`DOCKER-USER`): its name, and
    /// those rules, which go before the chain's own.
    pub user_chain: Option<(String, Vec<RuleSpec>)>,
    /// Where a fix for a packet these rules drop is written; `None` where the daemon
    /// rewrites its chains (kube-proxy), so that no rule added there would last.
    pub fix: Option<crate::model::PlatformFix>,
    /// Why the FORWARD policy is the text's, when the text sets it to DROP.
    pub policy_comment: String,
}

/// Of a platform's rules in each built-in chain, how many come before the node's own rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeforeOwn {
    /// filter FORWARD.
    pub forward: usize,
    /// nat PREROUTING.
    pub prerouting: usize,
    /// nat OUTPUT.
    pub output: usize,
    /// nat POSTROUTING.
    pub postrouting: usize,
    /// raw PREROUTING.
    pub raw_prerouting: usize,
    /// filter INPUT.
    pub input: usize,
    /// filter OUTPUT.
    pub filter_output: usize,
}

/// The filter chains of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FirewallSpec {
    /// Every packet arriving on an interface, as it arrived: after connection tracking, before
    /// any DNAT (iptables' mangle PREROUTING). A filter in front of the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerouting: Option<ChainSpec>,
    /// Packets for the node itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<ChainSpec>,
    /// Packets the node routes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<ChainSpec>,
    /// Packets the node sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ChainSpec>,
}

/// A filter chain: rules tried in order, then the policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ChainSpec {
    /// What happens to packets no rule matched (default `accept`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Located<PolicyName>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// A chain policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    Accept,
    Drop,
}

/// A NAT or filter rule. The match keys (`in` … `dst_local`) work in both; a NAT rule has one
/// of `masquerade`, `snat`, `dnat`; a filter rule has an `action`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RuleSpec {
    /// Incoming interface (`-i`).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<Located<String>>,
    /// Any incoming interface but this one (`! -i`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in: Option<Located<String>>,
    /// Outgoing interface (`-o`).
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub out_iface: Option<Located<String>>,
    /// Any outgoing interface but this one (`! -o`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_out: Option<Located<String>>,
    /// Source address or prefix (`-s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Located<String>>,
    /// Any source but this address or prefix (`! -s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_src: Option<Located<String>>,
    /// Destination address or prefix (`-d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Located<String>>,
    /// Any destination but this address or prefix (`! -d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_dst: Option<Located<String>>,
    /// `tcp`, `udp` or `icmp` (`-p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Located<RuleProto>>,
    /// Destination port or range `50000-50004` (`--dport`; needs `proto: tcp` or `udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<Located<String>>,
    /// Any destination port but this one or this range (`! --dport`; needs `proto: tcp` or
    /// `udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_dport: Option<Located<String>>,
    /// Connection states (`-m conntrack --ctstate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<Located<StateName>>,
    /// Only packets to one of the node's own addresses (`-m addrtype --dst-type LOCAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_local: Option<bool>,
    /// Matches this share of the packets that reach the rule, from 0 to 1
    /// (`-m statistic --mode random --probability P`; kube-proxy picks endpoints this way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<Located<f64>>,
    /// NAT: rewrite the source to the outgoing interface's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masquerade: Option<Located<bool>>,
    /// NAT: rewrite the source to this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat: Option<Located<String>>,
    /// NAT: rewrite the destination to `ADDRESS` or `ADDRESS:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnat: Option<Located<String>>,
    /// NAT: the chain (default `postrouting` for masquerade/snat, `prerouting` for dnat; a dnat
    /// for the node's own outgoing packets goes in `output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Located<NatChainName>>,
    /// Filter: what to do with a matching packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Located<ActionName>>,
    /// Filter: how `reject` answers (default `port-unreachable`, as iptables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_with: Option<Located<RejectName>>,
    /// Words shown when this rule decides a probe's fate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Set by platform lowering (never read from a file): where a fix for what this rule drops
    /// belongs.
    #[serde(skip)]
    #[schemars(skip)]
    pub platform_fix: Option<crate::model::PlatformFix>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleProto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    New,
    Established,
    Related,
    /// The node translated the connection's destination (`--ctstate DNAT`).
    Dnat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NatChainName {
    Prerouting,
    Output,
    Postrouting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionName {
    Accept,
    Drop,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RejectName {
    PortUnreachable,
    HostUnreachable,
    NetUnreachable,
    AdminProhibited,
    TcpReset,
}

/// A network interface of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InterfaceSpec {
    /// Interface name, unique on its node, as Linux allows it (at most 15 characters, e.g. `eth0`).
    pub name: Located<String>,
    /// The segment the interface is plugged into.
    pub segment: Located<String>,
    /// IPv4 addresses with prefix length, e.g. `192.168.1.10/24`. The first one of each subnet
    /// is the primary address and the source of its connected route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Located<String>>,
    /// MAC address like `02:00:00:00:00:01`; generated from the node and interface names when
    /// absent, so it never changes when other parts of the file do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Located<String>>,
    /// The interface is a Linux bridge (`ip link add NAME type bridge`) and its segment is that
    /// bridge: the segment's other interfaces are its ports. At most one per segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Located<bool>>,
    /// On a segment that is a node's bridge: the interface's port there has hairpin mode
    /// (`bridge link set dev PORT hairpin on`, which Docker sets without its userland proxy),
    /// so the bridge may send a frame back to this interface after its owner translated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<Located<bool>>,
    /// `net.ipv4.conf.IFACE.route_localnet=1` (default false): packets with a 127/8 source may
    /// leave through the interface, and packets to 127/8 may arrive on it — what lets a DNAT
    /// of 127.0.0.1 reach another host (Docker sets it on its bridges without its userland
    /// proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_localnet: Option<Located<bool>>,
    /// `net.ipv4.conf.IFACE.proxy_arp=1` with `net.ipv4.neigh.IFACE.proxy_delay=0` (default
    /// false): on a forwarding node the interface answers, with its own MAC, an ARP request
    /// for an address the node routes out of another interface — what Calico sets on the host
    /// side of each pod's veth, so that the pod's gateway 169.254.1.1 resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_arp: Option<Located<bool>>,
    /// Addresses the node does not hold but answers ARP requests for on this interface, with
    /// the interface's MAC, from user space — MetalLB's speaker announcing a LoadBalancer
    /// address in layer-2 mode. The kernel neither answers for them nor takes them as its
    /// own: a packet to one is routed (or DNATed by the node's rules) like any other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers_arp_for: Vec<Located<String>>,
}

impl InterfaceSpec {
    /// An interface a platform generates: `name` on `segment` with `addresses`, located at
    /// `span`; every option at its default (no MAC: derived from the names).
    pub fn generated(
        name: impl Into<String>,
        segment: impl Into<String>,
        addresses: Vec<Located<String>>,
        span: Span,
    ) -> Self {
        Self {
            name: Located::at(name.into(), span),
            segment: Located::at(segment.into(), span),
            addresses,
            ..Self::default()
        }
    }
}

/// A static route, as `ip route add [TYPE] TO [via VIA] [dev DEV] [metric METRIC]` takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouteSpec {
    /// Destination prefix (`10.0.0.0/8`), a single address (`/32` implied) or `default`.
    pub to: Located<String>,
    /// Route type: `blackhole` (drop silently), `unreachable` (ICMP host unreachable) or
    /// `prohibit` (ICMP administratively prohibited); such a route takes neither `via` nor
    /// `dev`. Absent: an ordinary (unicast) route.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Located<RouteTypeName>>,
    /// Gateway address; a link route must reach it: the connected route of an interface's
    /// subnet, or a `dev`-only route of the node (as `ip route add` checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Located<String>>,
    /// Outgoing interface; needed when there is no gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<Located<String>>,
    /// Route metric (default 0); among routes to the same prefix the lowest wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Located<u32>>,
}

/// The type of a route that sends nothing (`ip route add blackhole|unreachable|prohibit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteTypeName {
    Blackhole,
    Unreachable,
    Prohibit,
}

/// Transport protocol of a listener or probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtoName {
    #[default]
    Tcp,
    Udp,
}

/// Where a UDP listener answers from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UdpReplyFromName {
    /// The address the datagram was sent to.
    #[default]
    Destination,
    /// The address the route back to the client picks.
    Route,
}

/// A service that answers on a port. At most one of `ssh`, `http` and `banner` says what it
/// answers; with none, a TCP port accepts connections silently and a UDP port echoes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ListenSpec {
    /// Port number, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Located<u32>,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Located<ProtoName>>,
    /// Bind address: one of the node's addresses, or `127.0.0.1`. Default: all addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Located<String>>,
    /// UDP only: the source address of its answers. `destination` (default): the address the
    /// datagram was sent to (IP_PKTINFO, as DNS servers do); `route`: the address the route
    /// back picks (a plain socket on all addresses, as docker-proxy's). A client's connected
    /// socket takes only an answer from the address it sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_reply_from: Option<Located<UdpReplyFromName>>,
    /// An SSH server; the value is the banner it sends, e.g. `SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Located<String>>,
    /// An HTTP server and its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Located<HttpSpec>>,
    /// A TCP service that sends this line when a client connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<Located<String>>,
}

/// What an HTTP listener answers to every request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpSpec {
    /// Status code (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<Located<u32>>,
    /// Response body, e.g. `{"hello":"world"}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Content-Type header (default `text/plain`; `application/json` when the body is JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Backends the service calls before answering, as `http://ADDRESS:PORT/` (a front end and
    /// its services). If one cannot be reached, the service answers `502 Bad Gateway` naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Located<String>>,
    /// A reverse proxy (nginx): each request is routed by its Host and path to the upstreams
    /// of a route, whose answer it relays; a request no route takes gets `status` and `body`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<HttpRouteSpec>,
}

/// How a route's path matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathMatchName {
    /// Every path that starts with `path` (nginx's `location /path`).
    #[default]
    Prefix,
    /// `path` only (nginx's `location = /path`).
    Exact,
}

/// One route of a reverse proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// The Host it serves (`*.example.com`: every name under it); absent: every host no
    /// other route names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path, starting with `/`.
    pub path: Located<String>,
    /// `prefix` (default) or `exact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<PathMatchName>,
    /// Where requests go, as `http://ADDRESS:PORT/`, tried in order; none: 503.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<Located<String>>,
    /// What the route stands for (shown in explanations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A probe and the outcome it must have. Exactly one of `ping`, `ssh`, `curl`, `tcp`, `udp`
/// names the probe and its target (an address, a node name or a DNS name from the file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ExpectSpec {
    /// The node the probe runs on.
    pub from: Located<String>,
    /// `ping TARGET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<Located<String>>,
    /// `ssh TARGET` (port 22 unless `port` says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Located<String>>,
    /// `curl URL`, e.g. `http://web.lab:8080/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curl: Option<Located<String>>,
    /// A TCP connection to TARGET on `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Located<String>>,
    /// A UDP datagram to TARGET on `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Located<String>>,
    /// Destination port for `ssh` (default 22), `tcp` and `udp` (required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<Located<u32>>,
    /// The expected outcome.
    pub outcome: Located<OutcomeName>,
    /// For a `reply`: the TTL the reply must arrive with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub ttl: Option<Located<u32>>,
    /// For a `reply`: the largest acceptable round-trip time, e.g. `20ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?\s*(ns|us|µs|ms|s)$"))]
    pub max_rtt: Option<Located<String>>,
    /// For `curl` with `reply`: the HTTP status the answer must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<Located<u32>>,
    /// For `curl` with `reply`: text the answer's body must contain, e.g. `result = 22`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Located<String>>,
}

/// What a probe ends with, in the words a network engineer would use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeName {
    /// An echo reply, an accepted connection, an HTTP answer, a UDP answer.
    #[default]
    Reply,
    /// TCP RST or ICMP port unreachable: "Connection refused".
    Refused,
    /// Nothing came back before the tool gave up: "100% packet loss", "Connection timed out".
    Timeout,
    /// The sender itself has no route: "connect: Network is unreachable".
    NoRoute,
    /// A router had no route: ICMP "Destination Net Unreachable".
    NetUnreachable,
    /// ARP got no answer, or ICMP host unreachable: "Destination Host Unreachable", "No route to host".
    HostUnreachable,
    /// A firewall rejected it with ICMP administratively prohibited: "Packet filtered".
    Filtered,
    /// The TTL ran out on the way: "Time to live exceeded".
    TtlExceeded,
}

/// The `groups:` map: each group's name and the nodes it holds, in the order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupsSpec(pub Vec<GroupSpec>);

/// One entry of `groups:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSpec {
    /// The group's name, used in place of a node name in `invariants:`.
    pub name: Located<String>,
    /// Node names and `*`/`?` patterns over node names.
    pub members: Vec<Located<String>>,
}

impl GroupsSpec {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for GroupsSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for group in &self.0 {
            map.serialize_entry(&group.name, &group.members)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for GroupsSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupsVisitor;
        impl<'de> serde::de::Visitor<'de> for GroupsVisitor {
            type Value = GroupsSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of group names to lists of nodes")
            }
            fn visit_unit<E>(self) -> Result<GroupsSpec, E> {
                Ok(GroupsSpec::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<GroupsSpec, A::Error> {
                let mut groups = Vec::new();
                while let Some(name) = map.next_key::<Located<String>>()? {
                    let members = map.next_value::<Vec<Located<String>>>()?;
                    groups.push(GroupSpec { name, members });
                }
                Ok(GroupsSpec(groups))
            }
        }
        deserializer.deserialize_map(GroupsVisitor)
    }
}

impl JsonSchema for GroupsSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GroupsSpec".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Named sets of nodes: each key a group name (used in `invariants:` in place of a node name), each value a list of node names and `*`/`?` patterns.",
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$" },
            "additionalProperties": {
                "type": "array",
                "items": { "type": "string" }
            }
        })
    }
}

/// A property checked over every flow it covers. Exactly one of `isolated`, `reachable` and
/// `no-private-source-beyond` says which; a group or node name stands for its nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InvariantSpec {
    /// Two or more groups or nodes that must not reach each other: no probe from a node of one
    /// is delivered to a node of another, at any of its addresses, in either direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<Vec<Located<String>>>,
    /// For `isolated`: the probes to try (`ping`, `ssh[:PORT]`, `curl[:PORT]`, `tcp:PORT`,
    /// `udp:PORT`). Default: ping, and TCP and UDP to every port a listener or a DNAT rule of the
    /// topology names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<Located<String>>>,
    /// Every node of `from` gets a reply from every node of `to` (or from the address `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<ReachableSpec>,
    /// A node (or group) that no packet with a private (RFC 1918) source address ever leaves
    /// through an interface whose addresses are all public, over every probe between nodes.
    #[serde(
        default,
        rename = "no-private-source-beyond",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_private_source_beyond: Option<Located<String>>,
    /// Why the property matters, printed when it does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `reachable: { from: A, to: B, probe: ssh }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReachableSpec {
    /// The group or node every probe starts from.
    pub from: Located<String>,
    /// A group or node (each probed at its first address), an IPv4 address or a DNS name.
    pub to: Located<String>,
    /// `ping` (default), `ssh[:PORT]`, `curl[:PORT]` (the HTTP connection), `tcp:PORT` or
    /// `udp:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(ping|ssh(:[0-9]+)?|curl(:[0-9]+)?|http(:[0-9]+)?|tcp:[0-9]+|udp:[0-9]+)$"
    ))]
    pub probe: Option<Located<String>>,
}
