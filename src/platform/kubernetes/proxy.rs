//! kube-proxy in iptables mode, replayed on each node's tables as it writes them
//! (docs/platform-semantics.md, "Kubernetes", **kube-proxy's rules**): kubelet's `KUBE-FIREWALL`
//! first (kubelet starts kube-proxy), then kube-proxy's full sync — its jumps from the built-in
//! chains, each prepended once (`EnsureRule(Prepend, …)`), then one `iptables-restore
//! --noflush` of its own chains. Every rule is written as `iptables-save` prints it, and each
//! step cites the part of `pkg/proxy/iptables/proxier.go` it follows.
//!
//! Planning comes first ([`plan`]): each Service port's ClusterIP (pinned, from the manifest,
//! or allocated as the API server's allocator would: `.1` and `.10` are kubeadm's, dynamic
//! addresses come from above the static band) and nodePort, and its endpoints in kube-proxy's
//! order; the replay ([`Proxy::replay`]) then writes one node's rules.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::network::{NodeId, PodNetwork};
use super::schedule::{self, Placed};
use super::workloads::{ServicePlan, ServicePort};
use super::{ClusterSpec, ProxyMode};
use crate::format::file::ProtoName;
use crate::format::{Code, Diagnostic, Span};
use crate::platform::tables::{Table, Tables};
use crate::platform::{probability, quoted};

/// kubelet's default `clusterDomain`.
pub(super) const CLUSTER_DOMAIN: &str = "cluster.local";

/// The nodePorts the API server accepts (its default range).
const NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// kube-proxy's mark for traffic to masquerade: bit 14 (`--iptables-masquerade-bit`'s
/// default), as iptables-save prints it.
const MASQ_MARK: &str = "0x4000/0x4000";

/// Endpoints above which kube-proxy drops the comments of endpoint rules
/// (`largeClusterEndpointsThreshold`).
const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// kube-proxy's chains (proxier.go, the `const` block at its top).
const SERVICES: &str = "KUBE-SERVICES";
const EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
const NODEPORTS: &str = "KUBE-NODEPORTS";
const POSTROUTING: &str = "KUBE-POSTROUTING";
const MARK_MASQ: &str = "KUBE-MARK-MASQ";
const FORWARD: &str = "KUBE-FORWARD";
const PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
/// kubelet's chain, which kube-proxy duplicates (`kubeletFirewallChain`).
const KUBELET_FIREWALL: &str = "KUBE-FIREWALL";

/// One Service port as kube-proxy sees it.
struct PortPlan {
    /// `namespace/name`, with `:port-name` when the port has a name
    /// (`ServicePortName.String()`).
    name: String,
    /// The Service's DNS name, `NAME.NAMESPACE.svc.cluster.local`.
    fqdn: String,
    /// `tcp` or `udp`, as kube-proxy lowercases the protocol.
    proto: &'static str,
    /// `None` for a headless Service, which kube-proxy skips.
    cluster_ip: Option<Ipv4Addr>,
    port: u16,
    node_port: Option<u16>,
    /// `externalTrafficPolicy: Local`.
    external_local: bool,
    /// `externalIPs`.
    external_ips: Vec<Ipv4Addr>,
    /// The LoadBalancer address MetalLB assigned (`status.loadBalancer.ingress`), if any.
    lb_ips: Vec<Ipv4Addr>,
    /// `loadBalancerSourceRanges`.
    source_ranges: Vec<Ipv4Net>,
    /// The ready endpoints, sorted as kube-proxy sorts them (by `ip:port` as text).
    endpoints: Vec<Endpoint>,
    /// `sessionAffinity: ClientIP`: its timeout in seconds.
    affinity: Option<u32>,
    /// The Service's declaration.
    place: Span,
}

/// An endpoint of a Service port.
struct Endpoint {
    node: NodeId,
    /// `ip:port`, kube-proxy's `BaseEndpointInfo.String()`.
    text: String,
    ip: Ipv4Addr,
}

/// kube-proxy's view of a cluster: every Service port in order.
pub(super) struct Proxy {
    ports: Vec<PortPlan>,
    /// The pod network (`--cluster-cidr`, kubeadm's podSubnet): what kube-proxy's
    /// `LocalTrafficDetector` calls local.
    cluster_cidr: Ipv4Net,
    /// More than [`LARGE_CLUSTER_ENDPOINTS`] endpoints in all.
    large: bool,
    /// In ipvs mode, the ClusterIPs every node holds on `kube-ipvs0`.
    pub ipvs: Vec<Ipv4Addr>,
    /// Each node's address (kube-proxy's `nodeIP`), by node.
    node_ips: Vec<Ipv4Addr>,
}

/// ClusterIPs and nodePorts handed out as Services are planned.
struct Allocator {
    next_ip: u32,
    next_port: u16,
    /// nodePorts written in manifests or pinned, and those allocated so far.
    used_ports: Vec<u16>,
}

impl Allocator {
    /// The API server allocates a Service's ClusterIP at random, preferring the range above
    /// its static band of `min(max(16, size/16), 256)` addresses (`calculateRangeOffset`,
    /// KEP-3070); reachlab takes them in order from the start of that upper range, so that
    /// `.1` (the `kubernetes` Service) and `.10` (kubeadm's kube-dns) stay free. nodePorts
    /// likewise, above a static band of `min(max(16, size/32), 128)` ports.
    fn new(cluster: &ClusterSpec, service_cidr: Ipv4Net, services: &[ServicePlan]) -> Self {
        let size = 1u64 << (32 - service_cidr.prefix_len());
        let offset = if size <= 16 {
            0
        } else {
            (size / 16).clamp(16, 256) as u32
        };
        let ports = u64::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
        let port_offset = (ports / 32).clamp(16, 128) as u16;
        Self {
            // The first address of the range is the network's `.0`, never allocated.
            next_ip: u32::from(service_cidr.network()) + 1 + offset,
            next_port: *NODE_PORTS.start() + port_offset,
            used_ports: services
                .iter()
                .flat_map(|s| s.ports.iter().filter_map(|p| p.node_port))
                .chain(cluster.node_ports.values().copied())
                .collect(),
        }
    }

    /// The next ClusterIP.
    fn cluster_ip(&mut self) -> Ipv4Addr {
        self.next_ip += 1;
        Ipv4Addr::from(self.next_ip - 1)
    }

    /// The next nodePort nothing uses (wrapping to the start of the range).
    fn node_port(&mut self) -> u16 {
        while self.used_ports.contains(&self.next_port) {
            self.next_port = if self.next_port >= *NODE_PORTS.end() {
                *NODE_PORTS.start()
            } else {
                self.next_port + 1
            };
        }
        self.used_ports.push(self.next_port);
        self.next_port
    }
}

/// Plans every Service port in order; a Service with a bad ClusterIP and a port with a bad
/// nodePort are errors and get no rules (the port keeps its ClusterIP rules).
pub(super) fn plan(
    cluster: &ClusterSpec,
    net: &PodNetwork,
    services: &[ServicePlan],
    lb_ips: &[Option<Ipv4Addr>],
    placed: &[Placed],
    out: &mut Vec<Diagnostic>,
) -> Proxy {
    let mode = cluster.proxy_mode.unwrap_or_default();
    let mut allocator = Allocator::new(cluster, net.service_cidr, services);
    let mut proxy = Proxy {
        ports: Vec::new(),
        cluster_cidr: net.pod_cidr,
        large: false,
        ipvs: Vec::new(),
        node_ips: net.nodes().map(|(_, n)| n.address).collect(),
    };
    for (service, lb_ip) in services.iter().zip(lb_ips) {
        let balancer = Balancer {
            ips: lb_ip.iter().copied().collect(),
            source_ranges: source_ranges(service, out),
        };
        let cluster_ip = match cluster_ip(cluster, net.service_cidr, service, &mut allocator) {
            Ok(ip) => ip,
            Err(error) => {
                out.push(*error);
                continue;
            }
        };
        if let (Some(vip), ProxyMode::Ipvs) = (cluster_ip, mode)
            && !proxy.ipvs.contains(&vip)
        {
            proxy.ipvs.push(vip);
        }
        let selected = schedule::endpoints(service, placed);
        for port in &service.ports {
            let node_port = if service.node_port {
                match node_port(cluster, service, port, &mut allocator) {
                    Ok(p) => Some(p),
                    Err(error) => {
                        out.push(*error);
                        None
                    }
                }
            } else {
                None
            };
            proxy.ports.push(port_plan(
                service, port, cluster_ip, node_port, &balancer, &selected,
            ));
        }
    }
    let endpoints: usize = proxy.ports.iter().map(|p| p.endpoints.len()).sum();
    proxy.large = endpoints > LARGE_CLUSTER_ENDPOINTS;
    proxy
}

/// A LoadBalancer Service's address and the sources allowed to it.
struct Balancer {
    ips: Vec<Ipv4Addr>,
    source_ranges: Vec<Ipv4Net>,
}

/// `loadBalancerSourceRanges` of a LoadBalancer Service; an error for each that is no CIDR
/// (the API server refuses it).
fn source_ranges(service: &ServicePlan, out: &mut Vec<Diagnostic>) -> Vec<Ipv4Net> {
    let Some(lb) = &service.load_balancer else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    for text in &lb.source_ranges {
        match text.trim().parse::<Ipv4Net>() {
            Ok(net) => ranges.push(net.trunc()),
            Err(_) => out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    service.span,
                    format!(
                        "loadBalancerSourceRanges entry `{text}` of Service `{}/{}` is not a CIDR",
                        service.namespace, service.name
                    ),
                )
                .label("bad source range")
                .hint("write a prefix such as 203.0.113.0/24"),
            ),
        }
    }
    ranges
}

/// One port of `service` with its endpoints among the `selected` pods.
fn port_plan(
    service: &ServicePlan,
    port: &ServicePort,
    cluster_ip: Option<Ipv4Addr>,
    node_port: Option<u16>,
    balancer: &Balancer,
    selected: &[&Placed],
) -> PortPlan {
    let mut name = format!("{}/{}", service.namespace, service.name);
    if !port.name.is_empty() {
        name.push(':');
        name.push_str(&port.name);
    }
    let mut endpoints: Vec<Endpoint> = selected
        .iter()
        .map(|p| Endpoint {
            node: p.node,
            text: format!("{}:{}", p.address, port.target_on(p.pod)),
            ip: p.address,
        })
        .collect();
    // The EndpointSlice cache sorts a port's endpoints by their text.
    endpoints.sort_by(|a, b| a.text.cmp(&b.text));
    PortPlan {
        name,
        fqdn: format!(
            "{}.{}.svc.{CLUSTER_DOMAIN}",
            service.name, service.namespace
        ),
        proto: if port.proto == ProtoName::Udp {
            "udp"
        } else {
            "tcp"
        },
        cluster_ip,
        port: port.port,
        node_port,
        external_local: service.local,
        external_ips: service.external_ips.clone(),
        lb_ips: balancer.ips.clone(),
        source_ranges: balancer.source_ranges.clone(),
        endpoints,
        affinity: service.affinity,
        place: service.span,
    }
}

/// The ClusterIP of `service`: pinned in `cluster_ips:`, else from the manifest, else the
/// next one allocated; `None` for a headless Service; an error when it is not an address of
/// the Service network.
fn cluster_ip(
    cluster: &ClusterSpec,
    service_cidr: Ipv4Net,
    service: &ServicePlan,
    allocator: &mut Allocator,
) -> Result<Option<Ipv4Addr>, Box<Diagnostic>> {
    let written = cluster
        .cluster_ips
        .get(&service.name)
        .or(service.cluster_ip.as_ref());
    match written {
        Some(ip) if ip == "None" => Ok(None),
        Some(ip) => match ip.parse::<Ipv4Addr>() {
            Ok(a) if service_cidr.contains(&a) => Ok(Some(a)),
            _ => Err(Box::new(Diagnostic::error(Code::BadAddress, cluster.name.span, format!("ClusterIP `{ip}` of Service `{}` is not an address of the Service network {service_cidr}", service.name)).label("bad ClusterIP").hint("pin an address inside `service_cidr`"))),
        },
        None => Ok(Some(allocator.cluster_ip())),
    }
}

/// The nodePort of `port` of `service`: from the manifest, else pinned in `node_ports:`, else
/// the next one allocated; an error when it is outside [`NODE_PORTS`].
fn node_port(
    cluster: &ClusterSpec,
    service: &ServicePlan,
    port: &ServicePort,
    allocator: &mut Allocator,
) -> Result<u16, Box<Diagnostic>> {
    match port
        .node_port
        .or_else(|| cluster.node_ports.get(&service.name).copied())
    {
        Some(p) if NODE_PORTS.contains(&p) => Ok(p),
        Some(p) => Err(Box::new(
            Diagnostic::error(
                Code::BadValue,
                cluster.name.span,
                format!(
                    "nodePort {p} of Service `{}` is outside 30000-32767",
                    service.name
                ),
            )
            .label("bad nodePort")
            .hint("the API server refuses nodePorts outside the default range 30000-32767"),
        )),
        None => Ok(allocator.node_port()),
    }
}

/// The 16 characters kube-proxy names a Service port's chains with (`portProtoHash`): base32
/// of the SHA-256 of the port's name and protocol; with an endpoint, of all three
/// (`servicePortEndpointChainName`).
fn chain_hash(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
    }
    let mut encoded = data_encoding::BASE32.encode(&hash.finalize());
    encoded.truncate(16);
    encoded
}

/// The chain of endpoint `ep` of `port` (`servicePortEndpointChainName`): `KUBE-SEP-` and
/// the hash of the port's name, protocol and the endpoint.
fn endpoint_chain(port: &PortPlan, ep: &Endpoint) -> String {
    format!(
        "KUBE-SEP-{}",
        chain_hash(&[&port.name, port.proto, &ep.text])
    )
}

/// `-m recent` on the list named after endpoint chain `sep`, as iptables-save prints what
/// kube-proxy writes (`-m recent --name SEP OP`): the operation `op` first, then the name
/// and libxt_recent's defaults.
fn recent_words(sep: &str, op: &str) -> String {
    format!("-m recent {op} --name {sep} --mask 255.255.255.255 --rsource")
}

/// The jumps from the built-in chains, in the order kube-proxy ensures them
/// (`iptablesJumpChains`, then `iptablesKubeletJumpChains`): table, built-in chain, extra
/// matches, comment, kube-proxy's chain.
const JUMPS: [(Table, &str, &str, &str, &str); 12] = [
    (
        Table::Filter,
        "INPUT",
        "-m conntrack --ctstate NEW ",
        "kubernetes externally-visible service portals",
        EXTERNAL_SERVICES,
    ),
    (
        Table::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW ",
        "kubernetes externally-visible service portals",
        EXTERNAL_SERVICES,
    ),
    (
        Table::Filter,
        "INPUT",
        "",
        "kubernetes health check service ports",
        NODEPORTS,
    ),
    (
        Table::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW ",
        "kubernetes service portals",
        SERVICES,
    ),
    (
        Table::Filter,
        "OUTPUT",
        "-m conntrack --ctstate NEW ",
        "kubernetes service portals",
        SERVICES,
    ),
    (
        Table::Filter,
        "FORWARD",
        "",
        "kubernetes forwarding rules",
        FORWARD,
    ),
    (
        Table::Filter,
        "INPUT",
        "-m conntrack --ctstate NEW ",
        "kubernetes load balancer firewall",
        PROXY_FIREWALL,
    ),
    (
        Table::Filter,
        "OUTPUT",
        "-m conntrack --ctstate NEW ",
        "kubernetes load balancer firewall",
        PROXY_FIREWALL,
    ),
    (
        Table::Filter,
        "FORWARD",
        "-m conntrack --ctstate NEW ",
        "kubernetes load balancer firewall",
        PROXY_FIREWALL,
    ),
    (
        Table::Nat,
        "OUTPUT",
        "",
        "kubernetes service portals",
        SERVICES,
    ),
    (
        Table::Nat,
        "PREROUTING",
        "",
        "kubernetes service portals",
        SERVICES,
    ),
    (
        Table::Nat,
        "POSTROUTING",
        "",
        "kubernetes postrouting rules",
        POSTROUTING,
    ),
];

/// A Service port as an ingress controller reads it (Service and EndpointSlices).
pub(super) struct Backend {
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    /// The ready endpoints (`podIP`, `targetPort`), in kube-proxy's order.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// A port of a Service as an Ingress names it.
pub(super) enum PortRef<'a> {
    Number(u16),
    Name(&'a str),
}

impl Proxy {
    /// The TCP port `port` of Service `namespace/service`; `None` when there is no such
    /// Service or port.
    pub fn backend(&self, namespace: &str, service: &str, port: &PortRef) -> Option<Backend> {
        let base = format!("{namespace}/{service}");
        let p = self.ports.iter().find(|p| {
            let (svc, name) = p.name.split_once(':').unwrap_or((p.name.as_str(), ""));
            p.proto == "tcp"
                && svc == base
                && match port {
                    PortRef::Number(n) => p.port == *n,
                    PortRef::Name(n) => name == *n,
                }
        })?;
        Some(Backend {
            cluster_ip: p.cluster_ip,
            port: p.port,
            endpoints: p
                .endpoints
                .iter()
                .filter_map(|e| Some((e.ip, e.text.rsplit_once(':')?.1.parse().ok()?)))
                .collect(),
        })
    }
}

/// The rules kubelet and kube-proxy write on one node, as they write them.
struct Replay<'a> {
    proxy: &'a Proxy,
    t: &'a mut Tables,
    node: NodeId,
    /// Where the cluster is declared: the place of rules no Service writes.
    place: Span,
}

impl Proxy {
    /// What CoreDNS answers for the Services: each Service's name and its ClusterIP, once
    /// (headless Services, which resolve to their pods, are left out).
    pub fn dns_records(&self) -> Vec<(String, Ipv4Addr)> {
        let mut records: Vec<(String, Ipv4Addr)> = Vec::new();
        for port in &self.ports {
            if let Some(ip) = port.cluster_ip
                && !records.iter().any(|(name, _)| *name == port.fqdn)
            {
                records.push((port.fqdn.to_ascii_lowercase(), ip));
            }
        }
        records
    }

    /// Writes kubelet's and kube-proxy's rules for `node` into `t`.
    pub fn replay(&self, t: &mut Tables, node: NodeId, place: Span) {
        let mut r = Replay {
            proxy: self,
            t,
            node,
            place,
        };
        r.kubelet();
        r.jumps();
        r.restore();
    }
}

impl Replay<'_> {
    /// kubelet's `KUBE-FIREWALL` (pkg/kubelet/kubelet_network_linux.go): the chain, its
    /// anti-martian rule, and jumps prepended to INPUT and OUTPUT. kube-proxy's restore
    /// rewrites the same rule.
    fn kubelet(&mut self) {
        self.t.new_chain(Table::Filter, KUBELET_FIREWALL);
        self.t
            .append(Table::Filter, KUBELET_FIREWALL, firewall_rule(), self.place);
        for chain in ["OUTPUT", "INPUT"] {
            self.t.insert_once(
                Table::Filter,
                chain,
                format!("-j {KUBELET_FIREWALL}"),
                self.place,
            );
        }
    }

    /// syncProxyRules, `if doFullSync`: each jump's chain ensured, the jump prepended unless
    /// it exists (`EnsureRule(utiliptables.Prepend, …)`); kubelet's two jumps exist already.
    fn jumps(&mut self) {
        for (table, from, extra, comment, to) in JUMPS {
            self.t.new_chain(table, to);
            let words = format!("{extra}-m comment --comment {} -j {to}", quoted(comment));
            self.t.insert_once(table, from, words, self.place);
        }
    }

    /// The `iptables-restore --noflush` of syncProxyRules: kube-proxy's chains flushed and
    /// written, filter then nat.
    fn restore(&mut self) {
        for chain in [
            SERVICES,
            EXTERNAL_SERVICES,
            FORWARD,
            NODEPORTS,
            PROXY_FIREWALL,
            KUBELET_FIREWALL,
        ] {
            self.t.flush(Table::Filter, chain);
        }
        for chain in [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ] {
            self.t.flush(Table::Nat, chain);
        }
        // "Install the kubernetes-specific postrouting rules."
        self.nat(
            POSTROUTING,
            format!("-m mark ! --mark {MASQ_MARK} -j RETURN"),
        );
        // "Clear the mark to avoid re-masquerading…": `--xor-mark 0x4000`.
        self.nat(POSTROUTING, "-j MARK --set-xmark 0x4000/0x0".into());
        self.nat(
            POSTROUTING,
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
        );
        // "Install the kubernetes-specific masquerade mark rule": `--or-mark 0x4000`.
        self.nat(MARK_MASQ, format!("-j MARK --set-xmark {MASQ_MARK}"));
        // localhostNodePorts (the default): the route_localnet hole closed (issue 90259).
        self.filter(KUBELET_FIREWALL, firewall_rule(), self.place);
        for port in &self.proxy.ports {
            self.service_port(port);
        }
        // "Finally, tail-call to the nodePorts chain." (nodePortAddresses: all.)
        self.nat(
            SERVICES,
            "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into(),
        );
        // INVALID dropped (nf_conntrack_tcp_be_liberal unset, the default).
        self.filter(
            FORWARD,
            "-m conntrack --ctstate INVALID -j DROP".into(),
            self.place,
        );
        self.filter(
            FORWARD,
            format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK} -j ACCEPT"),
            self.place,
        );
        self.filter(
            FORWARD,
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
            self.place,
        );
    }

    fn nat(&mut self, chain: &str, words: String) {
        self.t.append(Table::Nat, chain, words, self.place);
    }

    fn filter(&mut self, chain: &str, words: String, place: Span) {
        self.t.append(Table::Filter, chain, words, place);
    }
}

/// What `KUBE-EXTERNAL-SERVICES` does with external traffic no endpoint takes: DROP when the
/// Service has endpoints elsewhere ("has no local endpoints"), REJECT when it has none.
fn drop_or_reject(name: &str, has_endpoints: bool) -> (&'static str, String) {
    if has_endpoints {
        ("DROP", format!("{name} has no local endpoints"))
    } else {
        (
            "REJECT --reject-with icmp-port-unreachable",
            format!("{name} has no endpoints"),
        )
    }
}

/// kubelet's and kube-proxy's anti-martian rule in `KUBE-FIREWALL`.
fn firewall_rule() -> String {
    "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP".into()
}

/// How one Service port's traffic is handled on a node (the `CategorizeEndpoints` part of
/// syncProxyRules).
struct Handling<'p> {
    svc_chain: String,
    svl_chain: String,
    ext_chain: String,
    /// `KUBE-FW-…`, where LoadBalancer traffic goes when `loadBalancerSourceRanges` limit it.
    fw_chain: String,
    /// The port's endpoints on this node.
    local: Vec<&'p Endpoint>,
    has_endpoints: bool,
    has_external_endpoints: bool,
    /// `KUBE-SVC-…` is written (Cluster endpoints exist and a policy uses them).
    uses_cluster_chain: bool,
    /// `KUBE-SVL-…` is written.
    uses_local_chain: bool,
    /// `KUBE-FW-…` is written (`usesFWChain`).
    uses_fw_chain: bool,
}

impl Replay<'_> {
    /// syncProxyRules' loop body for one Service port.
    fn service_port(&mut self, port: &PortPlan) {
        let Some(vip) = port.cluster_ip else {
            // "if ClusterIP is "None" or empty, skip proxying"
            return;
        };
        let base = chain_hash(&[&port.name, port.proto]);
        let local: Vec<&Endpoint> = port
            .endpoints
            .iter()
            .filter(|e| e.node == self.node)
            .collect();
        let has_endpoints = !port.endpoints.is_empty();
        let h = Handling {
            svc_chain: format!("KUBE-SVC-{base}"),
            svl_chain: format!("KUBE-SVL-{base}"),
            ext_chain: format!("KUBE-EXT-{base}"),
            fw_chain: format!("KUBE-FW-{base}"),
            uses_fw_chain: has_endpoints
                && !port.lb_ips.is_empty()
                && !port.source_ranges.is_empty(),
            has_external_endpoints: has_endpoints && (!port.external_local || !local.is_empty()),
            uses_cluster_chain: has_endpoints,
            uses_local_chain: port.external_local && !local.is_empty(),
            local,
            has_endpoints,
        };
        let (name, proto, place) = (&port.name, port.proto, port.place);
        let dport = format!("-m {proto} --dport {}", port.port);
        // "Capture the clusterIP."
        if h.has_endpoints {
            self.t.append(
                Table::Nat,
                SERVICES,
                format!(
                    "-d {vip}/32 -p {proto} -m comment --comment {} {dport} -j {}",
                    quoted(&format!("{name} cluster IP")),
                    h.svc_chain
                ),
                place,
            );
        } else {
            self.filter(
                SERVICES,
                format!(
                    "-d {vip}/32 -p {proto} -m comment --comment {} {dport} -j REJECT --reject-with icmp-port-unreachable",
                    quoted(&format!("{name} has no endpoints"))
                ),
                place,
            );
        }
        self.external_ips(port, &h, &dport);
        self.load_balancer_ips(port, &h, &dport);
        if let Some(node_port) = port.node_port {
            self.node_port(port, &h, node_port);
        }
        self.policy_chains(port, &h, vip, &dport);
    }

    /// "Capture externalIPs."
    fn external_ips(&mut self, port: &PortPlan, h: &Handling, dport: &str) {
        let (name, proto, place) = (&port.name, port.proto, port.place);
        for ip in &port.external_ips {
            if h.has_endpoints {
                self.t.append(
                    Table::Nat,
                    SERVICES,
                    format!(
                        "-d {ip}/32 -p {proto} -m comment --comment {} {dport} -j {}",
                        quoted(&format!("{name} external IP")),
                        h.ext_chain
                    ),
                    place,
                );
            }
            if !h.has_external_endpoints {
                let (target, why) = drop_or_reject(name, h.has_endpoints);
                self.filter(
                    EXTERNAL_SERVICES,
                    format!(
                        "-d {ip}/32 -p {proto} -m comment --comment {} {dport} -j {target}",
                        quoted(&why)
                    ),
                    place,
                );
            }
        }
    }

    /// "Capture load-balancer ingress": to KUBE-FW when source ranges limit the address,
    /// else to KUBE-EXT; KUBE-PROXY-FIREWALL drops what KUBE-FW let through undiverted.
    fn load_balancer_ips(&mut self, port: &PortPlan, h: &Handling, dport: &str) {
        let (name, proto, place) = (&port.name, port.proto, port.place);
        let target = if h.uses_fw_chain {
            &h.fw_chain
        } else {
            &h.ext_chain
        };
        for ip in &port.lb_ips {
            if h.has_endpoints {
                self.t.append(
                    Table::Nat,
                    SERVICES,
                    format!(
                        "-d {ip}/32 -p {proto} -m comment --comment {} {dport} -j {target}",
                        quoted(&format!("{name} loadbalancer IP"))
                    ),
                    place,
                );
            }
            if h.uses_fw_chain {
                self.filter(
                    PROXY_FIREWALL,
                    format!(
                        "-d {ip}/32 -p {proto} -m comment --comment {} {dport} -j DROP",
                        quoted(&format!("{name} traffic not accepted by {}", h.fw_chain))
                    ),
                    place,
                );
            }
        }
        if !h.has_external_endpoints {
            for ip in &port.lb_ips {
                let (target, why) = drop_or_reject(name, h.has_endpoints);
                self.filter(
                    EXTERNAL_SERVICES,
                    format!(
                        "-d {ip}/32 -p {proto} -m comment --comment {} {dport} -j {target}",
                        quoted(&why)
                    ),
                    place,
                );
            }
        }
    }

    /// "Set up firewall chain, if needed": the allowed sources on to KUBE-EXT (and the
    /// address itself when a range holds the node's own address), the rest falls through
    /// to KUBE-PROXY-FIREWALL's DROP.
    fn firewall_chain(&mut self, port: &PortPlan, h: &Handling, rules: &mut Vec<(String, String)>) {
        if !h.uses_fw_chain {
            return;
        }
        let name = &port.name;
        self.t.flush(Table::Nat, &h.fw_chain);
        let comment = quoted(&format!("{name} loadbalancer IP"));
        let node_ip = self.proxy.node_ips.get(self.node.index()).copied();
        let mut allow_from_node = false;
        for cidr in &port.source_ranges {
            rules.push((
                h.fw_chain.clone(),
                format!(
                    "-s {cidr} -m comment --comment {comment} -j {}",
                    h.ext_chain
                ),
            ));
            allow_from_node |= node_ip.is_some_and(|a| cidr.contains(&a));
        }
        if allow_from_node {
            for ip in &port.lb_ips {
                rules.push((
                    h.fw_chain.clone(),
                    format!(
                        "-s {ip}/32 -m comment --comment {comment} -j {}",
                        h.ext_chain
                    ),
                ));
            }
        }
        rules.push((
            h.fw_chain.clone(),
            format!(
                "-m comment --comment {}",
                quoted(&format!(
                    "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"
                ))
            ),
        ));
    }

    /// "Capture nodeports."
    fn node_port(&mut self, port: &PortPlan, h: &Handling, node_port: u16) {
        let (name, proto, place) = (&port.name, port.proto, port.place);
        if h.has_endpoints {
            self.t.append(
                Table::Nat,
                NODEPORTS,
                format!(
                    "-p {proto} -m comment --comment {} -m {proto} --dport {node_port} -j {}",
                    quoted(name),
                    h.ext_chain
                ),
                place,
            );
        }
        if !h.has_external_endpoints {
            let (target, why) = drop_or_reject(name, h.has_endpoints);
            self.filter(
                EXTERNAL_SERVICES,
                format!(
                    "-p {proto} -m comment --comment {} -m addrtype --dst-type LOCAL -m {proto} --dport {node_port} -j {target}",
                    quoted(&why)
                ),
                place,
            );
        }
    }

    /// The SVC, EXT, SVL and SEP chains of one Service port.
    fn policy_chains(&mut self, port: &PortPlan, h: &Handling, vip: Ipv4Addr, dport: &str) {
        let (name, proto, place) = (&port.name, port.proto, port.place);
        let cidr = self.proxy.cluster_cidr;
        let mut rules: Vec<(String, String)> = Vec::new();
        // "Set up internal traffic handling": off-cluster sources are masqueraded
        // (`localDetector.IfNotLocal()`: `! -s <cluster CIDR>`).
        if h.has_endpoints {
            rules.push((
                h.svc_chain.clone(),
                format!(
                    "! -s {cidr} -d {vip}/32 -p {proto} -m comment --comment {} {dport} -j {MARK_MASQ}",
                    quoted(&format!("{name} cluster IP"))
                ),
            ));
        }
        // "Set up external traffic handling."
        // `ExternallyAccessible`: a nodePort, externalIPs or a LoadBalancer address.
        let accessible =
            port.node_port.is_some() || !port.external_ips.is_empty() || !port.lb_ips.is_empty();
        if h.has_endpoints && accessible {
            self.t.flush(Table::Nat, &h.ext_chain);
            let ext = &h.ext_chain;
            if !port.external_local {
                rules.push((
                    ext.clone(),
                    format!(
                        "-m comment --comment {} -j {MARK_MASQ}",
                        quoted(&format!(
                            "masquerade traffic for {name} external destinations"
                        ))
                    ),
                ));
            } else {
                rules.push((
                    ext.clone(),
                    format!(
                        "-s {cidr} -m comment --comment {} -j {}",
                        quoted(&format!("pod traffic for {name} external destinations")),
                        h.svc_chain
                    ),
                ));
                rules.push((
                    ext.clone(),
                    format!(
                        "-m comment --comment {} -m addrtype --src-type LOCAL -j {MARK_MASQ}",
                        quoted(&format!(
                            "masquerade LOCAL traffic for {name} external destinations"
                        ))
                    ),
                ));
                rules.push((
                    ext.clone(),
                    format!(
                        "-m comment --comment {} -m addrtype --src-type LOCAL -j {}",
                        quoted(&format!(
                            "route LOCAL traffic for {name} external destinations"
                        )),
                        h.svc_chain
                    ),
                ));
            }
            if h.has_external_endpoints {
                let policy = if port.external_local {
                    &h.svl_chain
                } else {
                    &h.svc_chain
                };
                rules.push((ext.clone(), format!("-j {policy}")));
            }
        }
        self.firewall_chain(port, h, &mut rules);
        if h.uses_cluster_chain {
            self.t.flush(Table::Nat, &h.svc_chain);
            let all: Vec<&Endpoint> = port.endpoints.iter().collect();
            self.to_endpoints(port, &h.svc_chain, &all, &mut rules);
        }
        if h.uses_local_chain {
            self.t.flush(Table::Nat, &h.svl_chain);
            self.to_endpoints(port, &h.svl_chain, &h.local, &mut rules);
        }
        // "Generate the per-endpoint chains" (every endpoint is locally reachable: the
        // internal policy is Cluster).
        for ep in &port.endpoints {
            let chain = endpoint_chain(port, ep);
            self.t.flush(Table::Nat, &chain);
            let comment = self.comment(name);
            rules.push((
                chain.clone(),
                format!("-s {}/32{comment} -j {MARK_MASQ}", ep.ip),
            ));
            // "Update client-affinity lists." (docs/platform-semantics.md, "Kubernetes",
            // **Session affinity**): the client's address goes into the endpoint's list.
            let set = match port.affinity {
                Some(_) => format!(" {}", recent_words(&chain, "--set")),
                None => String::new(),
            };
            rules.push((
                chain,
                format!(
                    "-p {proto}{comment}{set} -m {proto} -j DNAT --to-destination {}",
                    ep.text
                ),
            ));
        }
        for (chain, words) in rules {
            self.t.append(Table::Nat, &chain, words, place);
        }
    }

    /// writeServiceToEndpointRules: with `sessionAffinity: ClientIP`, first a jump to each
    /// endpoint's chain for a client in its list, seen within the timeout (docs/platform-
    /// semantics.md, "Kubernetes", **Session affinity**); then the jumps of `chain` to the
    /// endpoints' chains, each but the last with probability 1/(endpoints left).
    fn to_endpoints(
        &self,
        port: &PortPlan,
        chain: &str,
        endpoints: &[&Endpoint],
        rules: &mut Vec<(String, String)>,
    ) {
        if let Some(timeout) = port.affinity {
            for ep in endpoints {
                let sep = endpoint_chain(port, ep);
                let comment = self.comment(&format!("{} -> {}", port.name, ep.text));
                let check = format!("--rcheck --seconds {timeout} --reap");
                let recent = recent_words(&sep, &check);
                let words = format!("{comment} {recent} -j {sep}");
                rules.push((chain.to_owned(), words.trim_start().to_owned()));
            }
        }
        let n = endpoints.len();
        for (i, ep) in endpoints.iter().enumerate() {
            let sep = endpoint_chain(port, ep);
            let mut words = self.comment(&format!("{} -> {}", port.name, ep.text));
            if i + 1 < n {
                // kube-proxy writes `%0.10f` of 1/(n−i); iptables keeps it in 2^31ths.
                let written: f64 = format!("{:.10}", 1.0 / (n - i) as f64)
                    .parse()
                    .unwrap_or(0.0);
                words.push_str(" -m statistic --mode random --probability ");
                words.push_str(&probability(written));
            }
            words.push_str(" -j ");
            words.push_str(&sep);
            rules.push((chain.to_owned(), words.trim_start().to_owned()));
        }
    }

    /// ` -m comment --comment TEXT`, or nothing in a large cluster
    /// (`appendServiceCommentLocked`).
    fn comment(&self, text: &str) -> String {
        if self.proxy.large {
            String::new()
        } else {
            format!(" -m comment --comment {}", quoted(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nat rules `proxy` writes on node 0, as iptables-save lines.
    fn nat_lines(proxy: &Proxy) -> Vec<String> {
        let mut t = Tables::new();
        proxy.replay(&mut t, NodeId::at(0), Span::default());
        let (text, _) = t.save(Span::default());
        let nat = text.split("*nat\n").nth(1).unwrap_or_default();
        nat.lines()
            .filter(|l| l.starts_with("-A KUBE-S"))
            .map(str::to_owned)
            .collect()
    }

    fn web(affinity: Option<u32>) -> Proxy {
        let endpoint = |ip: [u8; 4]| {
            let ip = Ipv4Addr::from(ip);
            Endpoint {
                node: NodeId::at(0),
                text: format!("{ip}:8080"),
                ip,
            }
        };
        Proxy {
            ports: vec![PortPlan {
                name: "default/web".into(),
                fqdn: "web.default.svc.cluster.local".into(),
                proto: "tcp",
                cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 80)),
                port: 80,
                node_port: None,
                external_local: false,
                external_ips: Vec::new(),
                lb_ips: Vec::new(),
                source_ranges: Vec::new(),
                endpoints: vec![endpoint([10, 244, 1, 2]), endpoint([10, 244, 2, 2])],
                affinity,
                place: Span::default(),
            }],
            cluster_cidr: "10.244.0.0/16".parse().expect("prefix"),
            large: false,
            ipvs: Vec::new(),
            node_ips: vec![Ipv4Addr::new(10, 0, 0, 11)],
        }
    }

    /// proxier.go with `sessionAffinity: ClientIP`: first, per endpoint, `-m recent --name
    /// SEP --rcheck --seconds T --reap -j SEP` in the SVC chain, then the statistic rules; in
    /// each SEP chain `-m recent --name SEP --set` before `-m tcp -p tcp -j DNAT`. Written as
    /// iptables-save prints them (checked in a namespace: tests/kernel_iptables.rs).
    #[test]
    fn client_ip_affinity_writes_kube_proxys_recent_rules() {
        let svc = format!("KUBE-SVC-{}", chain_hash(&["default/web", "tcp"]));
        let sep = |ep: &str| format!("KUBE-SEP-{}", chain_hash(&["default/web", "tcp", ep]));
        let (a, b) = (sep("10.244.1.2:8080"), sep("10.244.2.2:8080"));
        let lines = nat_lines(&web(Some(600)));
        let want = [
            format!(
                "-A {svc} -m comment --comment \"default/web -> 10.244.1.2:8080\" -m recent --rcheck --seconds 600 --reap --name {a} --mask 255.255.255.255 --rsource -j {a}"
            ),
            format!(
                "-A {svc} -m comment --comment \"default/web -> 10.244.2.2:8080\" -m recent --rcheck --seconds 600 --reap --name {b} --mask 255.255.255.255 --rsource -j {b}"
            ),
            format!(
                "-A {svc} -m comment --comment \"default/web -> 10.244.1.2:8080\" -m statistic --mode random --probability 0.50000000000 -j {a}"
            ),
            format!("-A {svc} -m comment --comment \"default/web -> 10.244.2.2:8080\" -j {b}"),
        ];
        let svc_rules: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("-A {svc} ")) && !l.contains("KUBE-MARK-MASQ"))
            .collect();
        assert_eq!(svc_rules, want.iter().collect::<Vec<_>>());
        let dnat = format!(
            "-A {a} -p tcp -m comment --comment \"default/web\" -m recent --set --name {a} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.2:8080"
        );
        assert!(lines.contains(&dnat), "{lines:#?}");
        let plain = nat_lines(&web(None));
        assert!(plain.iter().all(|l| !l.contains("recent")), "{plain:#?}");
        assert_eq!(
            plain.len() + 2,
            lines.len(),
            "two checks and no other rule more"
        );
    }

    #[test]
    fn chain_names_are_those_kube_proxy_prints() {
        // Seen on every kubeadm cluster: the `kubernetes` Service's https port, and kube-dns.
        assert_eq!(
            chain_hash(&["default/kubernetes:https", "tcp"]),
            "NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            chain_hash(&["kube-system/kube-dns:dns", "udp"]),
            "TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            chain_hash(&["kube-system/kube-dns:dns-tcp", "tcp"]),
            "ERIFXISQEP7F7OF4"
        );
    }
}
