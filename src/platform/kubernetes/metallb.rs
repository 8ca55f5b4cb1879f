//! MetalLB in layer-2 mode, the load balancer of bare-metal clusters (docs/platform-semantics.md,
//! "Kubernetes", **LoadBalancer Services**): its controller gives each LoadBalancer Service an
//! address of an `IPAddressPool` (`internal/allocator`), and one speaker — the node its
//! election picks among those an `L2Advertisement` of the pool allows
//! (`speaker/layer2_controller.go`, `ShouldAnnounce`) — answers ARP for that address
//! (`answers_arp_for` on the node's interfaces). kube-proxy's rules for the address are
//! [`super::proxy`]'s.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use super::ClusterSpec;
use super::network::{NodeId, PodNetwork};
use super::objects::{Body, Object};
use super::policy::Selector;
use super::schedule::{self, Placed};
use super::workloads::ServicePlan;
use crate::format::file::TopologyFile;
use crate::format::{Code, Diagnostic, Located, Span};

/// The label kubeadm puts on control-plane nodes, which MetalLB's speakers honour
/// (`IsNodeExcludedFromBalancers`).
const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// An `IPAddressPool`.
struct Pool {
    name: String,
    /// Inclusive address ranges, in the order written.
    ranges: Vec<(u32, u32)>,
    auto_assign: bool,
    avoid_buggy: bool,
}

impl Pool {
    fn holds(&self, ip: Ipv4Addr) -> bool {
        let a = u32::from(ip);
        !(self.avoid_buggy && buggy(ip))
            && self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&a))
    }
}

/// An address ending in .0 or .255 (`ipConfusesBuggyFirmwares`).
fn buggy(ip: Ipv4Addr) -> bool {
    matches!(ip.octets()[3], 0 | 255)
}

/// An `L2Advertisement`.
struct Advert {
    /// The pools it announces; empty: every pool.
    pools: Vec<String>,
    /// The nodes it announces from; empty: every node.
    nodes: Vec<Selector>,
    /// The interfaces it announces through; empty: every interface.
    interfaces: Vec<String>,
}

/// A cluster's MetalLB configuration: its pools and layer-2 advertisements, in manifest order.
#[derive(Default)]
pub(super) struct MetalLb {
    pools: Vec<Pool>,
    adverts: Vec<Advert>,
}

/// Reads the cluster's `IPAddressPool`s and `L2Advertisement`s; an error for each address
/// that is neither a CIDR nor a range, a warning for what is not modelled.
pub(super) fn read(objects: &[Object], out: &mut Vec<Diagnostic>) -> MetalLb {
    let mut m = MetalLb::default();
    for object in objects {
        match &object.body {
            Body::AddressPool(spec) => {
                let mut ranges = Vec::new();
                for text in &spec.addresses {
                    match range(text) {
                        Some(r) => ranges.push(r),
                        None => out.push(
                            Diagnostic::error(
                                Code::BadAddress,
                                object.span,
                                format!("address `{text}` of IPAddressPool `{}` ({}) is neither a CIDR nor a range", object.name, object.source),
                            )
                            .label("bad pool address")
                            .hint("write `192.168.10.0/24` or `192.168.9.1-192.168.9.5`"),
                        ),
                    }
                }
                m.pools.push(Pool {
                    name: object.name.clone(),
                    ranges,
                    auto_assign: spec.auto_assign != Some(false),
                    avoid_buggy: spec.avoid_buggy_ips == Some(true),
                });
            }
            Body::L2Advertisement(spec) => {
                if !spec.ip_address_pool_selectors.is_empty() {
                    out.push(unsupported(
                        object,
                        "ipAddressPoolSelectors",
                        "name the pools in `ipAddressPools`",
                    ));
                    continue;
                }
                let mut nodes = Vec::new();
                for s in &spec.node_selectors {
                    match Selector::read(s) {
                        Ok(s) => nodes.push(s),
                        Err(why) => out.push(
                            Diagnostic::error(
                                Code::BadValue,
                                object.span,
                                format!(
                                    "a nodeSelector of L2Advertisement `{}` ({}) is invalid: {why}",
                                    object.name, object.source
                                ),
                            )
                            .label("bad nodeSelector"),
                        ),
                    }
                }
                m.adverts.push(Advert {
                    pools: spec.ip_address_pools.clone(),
                    nodes,
                    interfaces: spec.interfaces.clone(),
                });
            }
            _ => {}
        }
    }
    m
}

fn unsupported(object: &Object, what: &str, hint: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::Unsupported,
        object.span,
        format!(
            "`{what}` of L2Advertisement `{}` ({}) is not modelled; the advertisement is ignored",
            object.name, object.source
        ),
    )
    .label("not modelled")
    .hint(hint.to_owned())
}

/// A pool address as MetalLB reads it: a CIDR (all its addresses, network and broadcast
/// included) or `FIRST-LAST`.
fn range(text: &str) -> Option<(u32, u32)> {
    let text = text.trim();
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (a <= b).then_some((u32::from(a), u32::from(b)));
    }
    let net: Ipv4Net = text.parse().ok()?;
    Some((u32::from(net.network()), u32::from(net.broadcast())))
}

impl MetalLb {
    /// Each Service's LoadBalancer address, in the order the Services are written, as the
    /// controller assigns them: the address asked for when a pool holds it and no earlier
    /// Service has it, else the first free address of the pool asked for, else of the first
    /// pool with `autoAssign` that has one (MetalLB tries its pools in Go's map order, at
    /// random: a warning says so when several could serve). A Service MetalLB leaves without
    /// an address stays `<pending>` (a warning says why).
    pub fn allocate(
        &self,
        services: &[ServicePlan],
        out: &mut Vec<Diagnostic>,
    ) -> Vec<Option<Ipv4Addr>> {
        let mut used: Vec<Ipv4Addr> = Vec::new();
        let mut assigned = Vec::with_capacity(services.len());
        for service in services {
            let ip = service.load_balancer.as_ref().and_then(|lb| {
                if lb.class.is_some() {
                    return None;
                }
                let ip = self.assign(service, &used);
                match ip {
                    Ok(ip) => {
                        if self.ambiguous(service) {
                            out.push(Diagnostic::warning(
                                Code::Unsupported,
                                service.span,
                                format!("LoadBalancer Service `{}/{}` may get its address from any of several auto-assign pools (MetalLB tries them in random order); reachlab takes the first written, {ip}", service.namespace, service.name),
                            )
                            .label("random pool")
                            .hint("pin a pool with the annotation `metallb.io/address-pool: NAME`"));
                        }
                        used.push(ip);
                        Some(ip)
                    }
                    Err(why) => {
                        out.push(pending(service, &why));
                        None
                    }
                }
            });
            assigned.push(ip);
        }
        assigned
    }

    /// The address of one LoadBalancer Service, or why it gets none.
    fn assign(&self, service: &ServicePlan, used: &[Ipv4Addr]) -> Result<Ipv4Addr, String> {
        let Some(lb) = &service.load_balancer else {
            return Err("not a LoadBalancer Service".into());
        };
        if self.pools.is_empty() {
            return Err("the cluster has no MetalLB IPAddressPool".into());
        }
        if !lb.ips.is_empty() {
            let wanted: Vec<Ipv4Addr> = lb.ips.iter().filter_map(|t| t.parse().ok()).collect();
            let [ip] = wanted[..] else {
                return Err(format!(
                    "it asks for `{}`: MetalLB takes one IPv4 address",
                    lb.ips.join(",")
                ));
            };
            let Some(pool) = self.pools.iter().find(|p| p.holds(ip)) else {
                return Err(format!("{ip} is in no IPAddressPool"));
            };
            if lb.pool.as_ref().is_some_and(|p| *p != pool.name) {
                return Err(format!(
                    "{ip} is not in pool `{}`",
                    lb.pool.as_deref().unwrap_or_default()
                ));
            }
            if used.contains(&ip) {
                return Err(format!(
                    "{ip} is taken by another Service (sharing keys are not modelled)"
                ));
            }
            return Ok(ip);
        }
        let candidates: Vec<&Pool> = match &lb.pool {
            Some(name) => match self.pools.iter().find(|p| p.name == *name) {
                Some(p) => vec![p],
                None => return Err(format!("there is no IPAddressPool `{name}`")),
            },
            None => self.pools.iter().filter(|p| p.auto_assign).collect(),
        };
        candidates
            .iter()
            .find_map(|p| first_free(p, used))
            .ok_or_else(|| "no pool it may use has a free address".to_owned())
    }

    /// Whether several auto-assign pools could serve `service` (MetalLB's choice among them
    /// is random).
    fn ambiguous(&self, service: &ServicePlan) -> bool {
        service
            .load_balancer
            .as_ref()
            .is_some_and(|lb| lb.ips.is_empty() && lb.pool.is_none() && lb.class.is_none())
            && self
                .pools
                .iter()
                .filter(|p| p.auto_assign && !p.ranges.is_empty())
                .count()
                > 1
    }

    /// Makes the elected node of each assigned address answer ARP for it: on every interface
    /// its speaker announces through (the advertisement's `interfaces`, else every interface
    /// that can: no bridge's port and not the NOARP `kube-ipvs0`). An address with no ready
    /// endpoint, no advertisement or no eligible node is announced by nobody (a warning).
    pub fn announce(
        &self,
        file: &mut TopologyFile,
        cluster: &ClusterSpec,
        net: &PodNetwork,
        services: &[ServicePlan],
        addresses: &[Option<Ipv4Addr>],
        placed: &[Placed],
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (service, ip) in services.iter().zip(addresses) {
            let Some(ip) = *ip else { continue };
            match self.elect(cluster, net, service, ip, placed) {
                Ok((node, interfaces)) => {
                    announce_on(file, &net.node(node).name, &interfaces, ip, service.span);
                }
                Err(why) => out.push(
                    Diagnostic::warning(
                        Code::Unsupported,
                        service.span,
                        format!("no node announces {ip} of LoadBalancer Service `{}/{}`: {why}", service.namespace, service.name),
                    )
                    .label("nobody answers ARP for it")
                    .hint("MetalLB's speakers announce an address only with a ready endpoint and an L2Advertisement of its pool"),
                ),
            }
        }
        out
    }

    /// The speaker election for `ip`: the nodes allowed to announce it, sorted by the SHA-256
    /// of `NODE#IP`; the first wins. With `externalTrafficPolicy: Local` only nodes with an
    /// endpoint may. Returns the node and the interfaces named by its advertisements (empty:
    /// all).
    fn elect(
        &self,
        cluster: &ClusterSpec,
        net: &PodNetwork,
        service: &ServicePlan,
        ip: Ipv4Addr,
        placed: &[Placed],
    ) -> Result<(NodeId, Vec<String>), String> {
        let endpoints = schedule::endpoints(service, placed);
        if endpoints.is_empty() {
            return Err("it has no ready endpoint".into());
        }
        let pool = self
            .pools
            .iter()
            .find(|p| p.holds(ip))
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        let adverts: Vec<&Advert> = self
            .adverts
            .iter()
            .filter(|a| a.pools.is_empty() || a.pools.iter().any(|p| p == pool))
            .collect();
        if adverts.is_empty() {
            return Err(format!("no L2Advertisement announces pool `{pool}`"));
        }
        let no_labels = Default::default();
        let mut eligible: Vec<(NodeId, &str, Vec<&Advert>)> = Vec::new();
        for (id, node) in net.nodes() {
            let labels = cluster.labels.get(&node.name).unwrap_or(&no_labels);
            let control_plane = cluster.control_plane.iter().any(|c| c.value == node.name);
            if control_plane || labels.contains_key(EXCLUDE_LABEL) {
                continue;
            }
            if service.local && !endpoints.iter().any(|p| p.node == id) {
                continue;
            }
            let mine: Vec<&Advert> = adverts
                .iter()
                .copied()
                .filter(|a| a.nodes.is_empty() || a.nodes.iter().any(|s| s.matches(labels)))
                .collect();
            if !mine.is_empty() {
                eligible.push((id, node.name.as_str(), mine));
            }
        }
        let winner = eligible
            .into_iter()
            .min_by_key(|(_, name, _)| Sha256::digest(format!("{name}#{ip}").as_bytes()))
            .ok_or_else(|| "no node may announce it".to_owned())?;
        let (id, _, mine) = winner;
        let interfaces = if mine.iter().any(|a| a.interfaces.is_empty()) {
            Vec::new()
        } else {
            mine.iter()
                .flat_map(|a| a.interfaces.iter().cloned())
                .collect()
        };
        Ok((id, interfaces))
    }
}

/// The first address of `pool` no Service has.
fn first_free(pool: &Pool, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    pool.ranges.iter().find_map(|&(lo, hi)| {
        (lo..=hi)
            .map(Ipv4Addr::from)
            .find(|ip| pool.holds(*ip) && !used.contains(ip))
    })
}

fn pending(service: &ServicePlan, why: &str) -> Diagnostic {
    Diagnostic::warning(
        Code::Unsupported,
        service.span,
        format!(
            "LoadBalancer Service `{}/{}` gets no address ({why}): its EXTERNAL-IP stays <pending>, only its nodePorts serve",
            service.namespace, service.name
        ),
    )
    .label("EXTERNAL-IP <pending>")
    .hint("add a MetalLB IPAddressPool (metallb.io/v1beta1) and an L2Advertisement to the cluster's objects")
}

/// Adds `ip` to `answers_arp_for` of the named interfaces of node `node` (all that can
/// answer ARP when `only` is empty).
fn announce_on(file: &mut TopologyFile, node: &str, only: &[String], ip: Ipv4Addr, span: Span) {
    let bridges: Vec<String> = file
        .nodes
        .iter()
        .find(|n| n.name.value == node)
        .map(|n| {
            n.interfaces
                .iter()
                .filter(|i| i.bridge.as_ref().is_some_and(|b| b.value))
                .map(|i| i.segment.value.clone())
                .collect()
        })
        .unwrap_or_default();
    let Some(n) = file.nodes.iter_mut().find(|n| n.name.value == node) else {
        return;
    };
    for iface in &mut n.interfaces {
        let port = bridges.contains(&iface.segment.value)
            && !iface.bridge.as_ref().is_some_and(|b| b.value);
        let eligible = if only.is_empty() {
            !port && iface.name.value != "kube-ipvs0"
        } else {
            only.contains(&iface.name.value)
        };
        let text = ip.to_string();
        if eligible && !iface.answers_arp_for.iter().any(|a| a.value == text) {
            iface.answers_arp_for.push(Located::at(text, span));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_addresses_read_as_metallb_reads_them() {
        let a = |s: &str| u32::from(s.parse::<Ipv4Addr>().expect("address"));
        assert_eq!(
            range("10.0.0.240/28"),
            Some((a("10.0.0.240"), a("10.0.0.255")))
        );
        assert_eq!(
            range("10.0.0.5-10.0.0.7"),
            Some((a("10.0.0.5"), a("10.0.0.7")))
        );
        assert_eq!(
            range(" 10.0.0.5 - 10.0.0.7 "),
            Some((a("10.0.0.5"), a("10.0.0.7")))
        );
        assert_eq!(range("10.0.0.7-10.0.0.5"), None);
        assert_eq!(range("10.0.0.0/33"), None);
        assert_eq!(range("pool"), None);
    }

    #[test]
    fn allocation_takes_the_first_free_address_skipping_buggy_ones_when_asked() {
        let pool = Pool {
            name: "p".into(),
            ranges: vec![range("10.0.0.255-10.0.1.2").expect("range")],
            auto_assign: true,
            avoid_buggy: true,
        };
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("address");
        assert_eq!(first_free(&pool, &[]), Some(ip("10.0.1.1")));
        assert_eq!(first_free(&pool, &[ip("10.0.1.1")]), Some(ip("10.0.1.2")));
        assert_eq!(first_free(&pool, &[ip("10.0.1.1"), ip("10.0.1.2")]), None);
        assert!(!pool.holds(ip("10.0.0.255")));
    }

    /// The election's order, worked out with `printf 'n1#10.0.0.240' | sha256sum` (and n2):
    /// the smaller digest wins.
    #[test]
    fn the_election_sorts_nodes_by_the_hash_of_node_and_address() {
        let digest = |s: &str| Sha256::digest(s.as_bytes());
        let (n1, n2) = (digest("n1#10.0.0.240"), digest("n2#10.0.0.240"));
        assert_eq!(format!("{n1:x}").get(..8), Some("9d8dbb0b"));
        assert_eq!(format!("{n2:x}").get(..8), Some("ad0dbead"));
        assert!(n1 < n2);
    }
}
