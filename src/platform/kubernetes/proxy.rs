//! Services the way kube-proxy builds them, planned as [`ProxyRules`] and then installed on
//! every node of the cluster:
//!
//! - each Service's ClusterIP (pinned in `cluster_ips:`, from the manifest, or allocated in
//!   order from the Service network; `None` makes it headless) and nodePorts (from the
//!   manifest, `node_ports:`, or allocated from 30000 in order);
//! - nat PREROUTING and OUTPUT DNATs to the endpoints with `statistic` probabilities 1/n,
//!   1/(n−1), …, the last unconditional (KUBE-SVC/KUBE-SEP); REJECT where a Service has no
//!   endpoints, DROP where `externalTrafficPolicy: Local` finds none on the node;
//! - on every node: the masquerade of Service traffic into pods from outside the pod network
//!   (KUBE-MARK-MASQ), Calico's IP-in-IP exception in front of a node's own filter, and in
//!   ipvs mode the ClusterIPs on `kube-ipvs0`.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;

use super::network::{NodeId, PodNetwork};
use super::schedule::Placed;
use super::workloads::{ServicePlan, ServicePort};
use super::{ClusterSpec, ProxyMode};
use crate::format::file::{
    ActionName, ChainSpec, FirewallSpec, InterfaceSpec, NatChainName, NodeSpec, ProtoName,
    RuleProto, RuleSpec, SegmentSpec, StateName, TopologyFile,
};
use crate::format::{Code, Diagnostic, Located, Span};

/// The nodePorts the API server accepts (its default range).
const NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// How far into the Service network allocated ClusterIPs start.
const FIRST_ALLOCATED_IP: u32 = 10;

/// Which nodes of the cluster a rule is installed on.
#[derive(Clone, Copy)]
enum Scope {
    Every,
    Only(NodeId),
}

impl Scope {
    fn includes(self, node: NodeId) -> bool {
        match self {
            Scope::Every => true,
            Scope::Only(only) => only == node,
        }
    }
}

/// kube-proxy's rules for a cluster, in the order they are installed.
#[derive(Default)]
pub(super) struct ProxyRules {
    /// DNATs, for nat PREROUTING and OUTPUT.
    nat: Vec<(Scope, RuleSpec)>,
    /// REJECTs and DROPs, at the front of INPUT, FORWARD and OUTPUT.
    filter: Vec<(Scope, RuleSpec)>,
    /// The ClusterIPs every node holds on `kube-ipvs0` (ipvs mode).
    ipvs: Vec<Ipv4Addr>,
}

/// ClusterIPs and nodePorts handed out as Services are planned.
struct Allocator {
    next_ip: u32,
    next_port: u16,
    /// nodePorts written in manifests or pinned, and those allocated so far.
    used_ports: Vec<u16>,
}

impl Allocator {
    fn new(cluster: &ClusterSpec, service_cidr: Ipv4Net, services: &[ServicePlan]) -> Self {
        Self {
            next_ip: u32::from(service_cidr.network()) + FIRST_ALLOCATED_IP,
            next_port: *NODE_PORTS.start(),
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

    /// The next nodePort nothing uses.
    fn node_port(&mut self) -> u16 {
        while self.used_ports.contains(&self.next_port) {
            self.next_port += 1;
        }
        self.used_ports.push(self.next_port);
        self.next_port
    }
}

/// Plans the rules for every Service in order; a Service with a bad ClusterIP and a port with
/// a bad nodePort are errors and get no rules (the port keeps its ClusterIP rules).
pub(super) fn plan(
    cluster: &ClusterSpec,
    net: &PodNetwork,
    services: &[ServicePlan],
    placed: &[Placed],
    out: &mut Vec<Diagnostic>,
) -> ProxyRules {
    let mode = cluster.proxy_mode.unwrap_or_default();
    let mut rules = ProxyRules::default();
    let mut allocator = Allocator::new(cluster, net.service_cidr, services);
    for service in services {
        let cluster_ip = match cluster_ip(cluster, net.service_cidr, service, &mut allocator) {
            Ok(ip) => ip,
            Err(error) => {
                out.push(*error);
                continue;
            }
        };
        let endpoints: Vec<&Placed> = if service.selector.is_empty() {
            Vec::new()
        } else {
            placed
                .iter()
                .filter(|p| p.pod.matches(&service.selector))
                .collect()
        };
        for port in &service.ports {
            let port = PortRules {
                cluster,
                service,
                service_port: port,
                endpoints: &endpoints,
            };
            if let Some(vip) = cluster_ip {
                rules.cluster_ip(&port, vip, mode);
            }
            if service.node_port {
                match node_port(cluster, service, port.service_port, &mut allocator) {
                    Ok(node_port) => rules.node_port(&port, net, node_port),
                    Err(error) => out.push(*error),
                }
            }
        }
    }
    rules
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

/// One port of a Service and its endpoints, for building its rules.
struct PortRules<'a> {
    cluster: &'a ClusterSpec,
    service: &'a ServicePlan,
    service_port: &'a ServicePort,
    /// The placed pods the Service selects, on any node.
    endpoints: &'a [&'a Placed<'a>],
}

impl PortRules<'_> {
    fn span(&self) -> Span {
        self.cluster.name.span
    }

    fn at<T>(&self, value: T) -> Located<T> {
        Located::at(value, self.span())
    }

    /// The rule protocol of the port.
    fn proto(&self) -> RuleProto {
        if self.service_port.proto == ProtoName::Udp {
            RuleProto::Udp
        } else {
            RuleProto::Tcp
        }
    }

    /// The DNATs of `base` spreading over `endpoints`: probabilities 1/n, 1/(n−1), …, the
    /// last unconditional. `via` says how the traffic came (", NodePort 30080" or nothing).
    fn spread(&self, endpoints: &[&Placed], base: &RuleSpec, via: &str) -> Vec<RuleSpec> {
        let n = endpoints.len();
        let words = format!(
            "Service `{}` port {} → targetPort (kube-proxy{via}, cluster `{}`)",
            self.service.name, self.service_port.port, self.cluster.name.value
        );
        endpoints
            .iter()
            .enumerate()
            .map(|(i, placed)| {
                let (pod, address) = (placed.pod, placed.address);
                let target = self.service_port.target_on(pod);
                RuleSpec {
                    dnat: Some(self.at(format!("{address}:{target}"))),
                    probability: (i + 1 < n).then(|| self.at(1.0 / (n - i) as f64)),
                    comment: Some(format!(
                        "{words} endpoint {}/{n}: {} {address}:{target}",
                        i + 1,
                        pod.name
                    )),
                    ..base.clone()
                }
            })
            .collect()
    }
}

impl ProxyRules {
    /// The rules for `port` on its ClusterIP `vip`: DNATs to the endpoints on every node, or
    /// a REJECT when there are none; in ipvs mode the address goes on `kube-ipvs0`.
    fn cluster_ip(&mut self, port: &PortRules, vip: Ipv4Addr, mode: ProxyMode) {
        if mode == ProxyMode::Ipvs && !self.ipvs.contains(&vip) {
            self.ipvs.push(vip);
        }
        let base = RuleSpec {
            dst: Some(port.at(vip.to_string())),
            proto: Some(port.at(port.proto())),
            dport: Some(port.at(port.service_port.port.to_string())),
            ..RuleSpec::default()
        };
        if port.endpoints.is_empty() {
            self.filter.push((
                Scope::Every,
                RuleSpec {
                    action: Some(port.at(ActionName::Reject)),
                    comment: Some(format!(
                        "Service `{}` has no endpoints: kube-proxy rejects (Connection refused)",
                        port.service.name
                    )),
                    ..base
                },
            ));
        } else {
            let rules = port.spread(port.endpoints, &base, "");
            self.dnat(Scope::Every, &rules, port.span());
        }
    }

    /// The rules for `port` on `node_port` of each node's own addresses: DNATs to the
    /// endpoints (only the node's own with `externalTrafficPolicy: Local`), or where there are
    /// none a DROP (Local, endpoints elsewhere) or a REJECT (no endpoints at all).
    fn node_port(&mut self, port: &PortRules, net: &PodNetwork, node_port: u16) {
        let base = RuleSpec {
            dst_local: Some(true),
            proto: Some(port.at(port.proto())),
            dport: Some(port.at(node_port.to_string())),
            ..RuleSpec::default()
        };
        let local = port.service.local;
        for (id, _) in net.nodes() {
            let endpoints: Vec<&Placed> = port
                .endpoints
                .iter()
                .copied()
                .filter(|p| !local || p.node == id)
                .collect();
            if !endpoints.is_empty() {
                let rules = port.spread(&endpoints, &base, &format!(", NodePort {node_port}"));
                self.dnat(Scope::Only(id), &rules, port.span());
                continue;
            }
            let elsewhere = local && !port.endpoints.is_empty();
            let name = &port.service.name;
            self.filter.push((
                Scope::Only(id),
                RuleSpec {
                    action: Some(port.at(if elsewhere {
                        ActionName::Drop
                    } else {
                        ActionName::Reject
                    })),
                    comment: Some(if elsewhere {
                        format!("NodePort {node_port} of Service `{name}` (externalTrafficPolicy: Local): no endpoint on this node, kube-proxy drops")
                    } else {
                        format!("NodePort {node_port} of Service `{name}`: no endpoints, kube-proxy rejects")
                    }),
                    ..base.clone()
                },
            ));
        }
    }

    /// Adds `rules` to nat PREROUTING, then the same to OUTPUT.
    fn dnat(&mut self, scope: Scope, rules: &[RuleSpec], span: Span) {
        for chain in [NatChainName::Prerouting, NatChainName::Output] {
            for rule in rules {
                let chain = Some(Located::at(chain, span));
                self.nat.push((
                    scope,
                    RuleSpec {
                        chain,
                        ..rule.clone()
                    },
                ));
            }
        }
    }

    /// Installs the rules on every node of the cluster, with the masquerade of traffic into
    /// pods from outside the pod network, Calico's IP-in-IP exception, and `kube-ipvs0`.
    pub fn install(&self, file: &mut TopologyFile, cluster: &ClusterSpec, net: &PodNetwork) {
        let span = cluster.name.span;
        for (id, this) in net.nodes() {
            let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == this.name) else {
                continue;
            };
            node.nat.extend(
                self.nat
                    .iter()
                    .filter(|(scope, _)| scope.includes(id))
                    .map(|(_, r)| r.clone()),
            );
            node.nat.push(masquerade(cluster, net.pod_cidr));
            admit_ip_in_ip(node, cluster, net.pod_cidr);
            let filters: Vec<RuleSpec> = self
                .filter
                .iter()
                .filter(|(scope, _)| scope.includes(id))
                .map(|(_, r)| r.clone())
                .collect();
            if !filters.is_empty() {
                let firewall = node.firewall.get_or_insert_with(FirewallSpec::default);
                for chain in [
                    &mut firewall.input,
                    &mut firewall.forward,
                    &mut firewall.output,
                ] {
                    let chain = chain.get_or_insert_with(ChainSpec::default);
                    chain.rules.splice(0..0, filters.iter().cloned());
                }
            }
            if !self.ipvs.is_empty() {
                let segment = format!("{}-kube-ipvs0", this.name);
                file.segments.push(SegmentSpec {
                    name: Located::at(segment.clone(), span),
                    ..SegmentSpec::default()
                });
                node.interfaces.push(InterfaceSpec {
                    bridge: None,
                    hairpin: None,
                    route_localnet: None,
                    proxy_arp: None,
                    name: Located::at("kube-ipvs0".into(), span),
                    segment: Located::at(segment, span),
                    addresses: self
                        .ipvs
                        .iter()
                        .map(|a| Located::at(format!("{a}/32"), span))
                        .collect(),
                    mac: None,
                });
            }
        }
    }
}

/// KUBE-MARK-MASQ: Service traffic into the pod network from outside it is masqueraded (only
/// what kube-proxy's own DNAT handled).
fn masquerade(cluster: &ClusterSpec, pod_cidr: Ipv4Net) -> RuleSpec {
    let span = cluster.name.span;
    RuleSpec {
        masquerade: Some(Located::at(true, span)),
        not_src: Some(Located::at(pod_cidr.to_string(), span)),
        dst: Some(Located::at(pod_cidr.to_string(), span)),
        state: vec![Located::at(StateName::Dnat, span)],
        comment: Some(format!(
            "kube-proxy masquerades Service traffic from outside the pod network (cluster `{}`)",
            cluster.name.value
        )),
        ..RuleSpec::default()
    }
}

/// Calico carries pod traffic between nodes in IP-in-IP between the node addresses: a filter
/// in front of the node (an OpenStack security group) sees node-to-node traffic, which the
/// group admits for its members. Says so where such a filter exists.
fn admit_ip_in_ip(node: &mut NodeSpec, cluster: &ClusterSpec, pod_cidr: Ipv4Net) {
    let span = cluster.name.span;
    if let Some(pre) = node.firewall.as_mut().and_then(|f| f.prerouting.as_mut()) {
        pre.rules.insert(
            0,
            RuleSpec {
                src: Some(Located::at(pod_cidr.to_string(), span)),
                dst: Some(Located::at(pod_cidr.to_string(), span)),
                action: Some(Located::at(ActionName::Accept, span)),
                comment: Some(format!("Calico IP-in-IP: pod traffic between the nodes of cluster `{}` travels encapsulated between node addresses", cluster.name.value)),
                ..RuleSpec::default()
            },
        );
    }
}
