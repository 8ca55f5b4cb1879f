//! Calico's data plane, the cluster's CNI (docs/platform-semantics.md, "Kubernetes",
//! **Calico**): each pod is wired to its node by a veth, as the Calico CNI plugin wires it —
//!
//! - in the pod, `eth0` holds the pod's address as a /32, with `169.254.1.1 dev eth0` and a
//!   default route via 169.254.1.1;
//! - on the node, the veth's other end `cali…` (named from the pod's namespace and name,
//!   [`calico_iface`]) has no address but `proxy_arp=1` (and `proxy_delay=0`), so the node
//!   answers the pod's ARP for 169.254.1.1 with its own MAC — when it has a route to
//!   169.254.1.1 that leaves by another interface, usually its default route; and a route
//!   `POD/32 dev cali…`.
//!
//! felix also masquerades what pods send out of the IP pool (`natOutgoing`, on by default):
//! `cali-POSTROUTING` → `cali-nat-outgoing` in nat POSTROUTING, inserted above kube-proxy's
//! rules ([`nat`]).

use super::ClusterSpec;
use super::network::{PodNetwork, calico_iface};
use super::schedule::{Placed, listeners};
use crate::format::file::{InterfaceSpec, NodeSpec, RouteSpec, SegmentSpec, TopologyFile};
use crate::format::{Code, Diagnostic, Located, Span};
use crate::platform::tables::{Table, Tables};

/// The pods' gateway: an address nobody holds, which the node answers by proxy ARP.
const GATEWAY: &str = "169.254.1.1";

/// Adds each placed pod as a node wired by its veth to its node: the veth's segment, the
/// pod's `eth0` and routes, the node's `cali…` end and its route to the pod.
pub(super) fn emit(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    net: &PodNetwork,
    placed: &[Placed],
) {
    let span = cluster.name.span;
    let at = |text: String| Located::at(text, span);
    for Placed { node, pod, address } in placed {
        let host = net.node(*node);
        let cali = calico_iface(&pod.namespace, &pod.name);
        let segment = format!("{}-veth", pod.name);
        file.segments.push(SegmentSpec {
            name: at(segment.clone()),
            note: Some(format!(
                "the veth of pod `{}` (namespace `{}`) to node `{}` ({cali}), cluster `{}`",
                pod.name, pod.namespace, host.name, cluster.name.value
            )),
            ..SegmentSpec::default()
        });
        file.nodes.push(NodeSpec {
            name: at(pod.name.clone()),
            interfaces: vec![veth_end(
                "eth0",
                &segment,
                Some(format!("{address}/32")),
                span,
            )],
            routes: vec![
                RouteSpec {
                    to: at(GATEWAY.into()),
                    dev: Some(at("eth0".into())),
                    ..RouteSpec::default()
                },
                RouteSpec {
                    to: at("default".into()),
                    via: Some(at(GATEWAY.into())),
                    ..RouteSpec::default()
                },
            ],
            listen: listeners(cluster, pod, span),
            ..NodeSpec::default()
        });
        let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == host.name) else {
            continue;
        };
        let mut end = veth_end(&cali, &segment, None, span);
        end.proxy_arp = Some(Located::at(true, span));
        node.interfaces.push(end);
        node.routes.push(RouteSpec {
            to: at(format!("{address}/32")),
            dev: Some(at(cali)),
            ..RouteSpec::default()
        });
    }
}

/// One end of a veth on `segment`.
fn veth_end(name: &str, segment: &str, address: Option<String>, span: Span) -> InterfaceSpec {
    let addresses = address.map(|a| Located::at(a, span)).into_iter().collect();
    InterfaceSpec::generated(name, segment, addresses, span)
}

/// felix's nat rules (felix/rules/static.go, `StaticNATPostroutingChains` and
/// `makeNATOutgoingRuleIPTables`): its jump inserted at the top of POSTROUTING, and the
/// masquerade of pod traffic leaving the pool. felix matches the pools with ipsets
/// (`cali40masq-ipam-pools`, `cali40all-ipam-pools`); with one pool that is `-s`/`! -d` of it.
/// Comments name the rule's purpose where felix writes a hash (`cali:…`).
pub(super) fn nat(t: &mut Tables, net: &PodNetwork, place: Span) {
    let pool = net.pod_cidr;
    t.new_chain(Table::Nat, "cali-POSTROUTING");
    t.new_chain(Table::Nat, "cali-nat-outgoing");
    t.append(
        Table::Nat,
        "cali-POSTROUTING",
        "-m comment --comment \"cali:nat-outgoing\" -j cali-nat-outgoing".into(),
        place,
    );
    t.append(
        Table::Nat,
        "cali-nat-outgoing",
        format!("-s {pool} ! -d {pool} -m comment --comment \"cali:natOutgoing of IP pool {pool}\" -j MASQUERADE --random-fully"),
        place,
    );
    t.insert(
        Table::Nat,
        "POSTROUTING",
        "-m comment --comment \"cali:POSTROUTING\" -j cali-POSTROUTING".into(),
        place,
    );
}

/// A warning for each cluster node with pods but no route to 169.254.1.1 (no default route):
/// the node ignores its pods' ARP requests for their gateway, so they can send nothing.
pub(super) fn without_gateway(
    file: &TopologyFile,
    cluster: &ClusterSpec,
    net: &PodNetwork,
    placed: &[Placed],
    out: &mut Vec<Diagnostic>,
) {
    for (id, this) in net.nodes() {
        let pods = placed.iter().filter(|p| p.node == id).count();
        let Some(node) = file.nodes.iter().find(|n| n.name.value == this.name) else {
            continue;
        };
        let covered = node.routes.iter().any(|r| {
            r.kind.is_none()
                && (r.to.value == "default"
                    || r.to
                        .value
                        .parse::<ipnet::Ipv4Net>()
                        .is_ok_and(|n| n.contains(&std::net::Ipv4Addr::new(169, 254, 1, 1))))
        });
        if pods > 0 && !covered && node.ip_route.is_none() {
            out.push(
                Diagnostic::warning(
                    Code::Unsupported,
                    cluster.name.span,
                    format!(
                        "node `{}` of cluster `{}` has no default route: Calico's proxy ARP answers its pods' requests for their gateway 169.254.1.1 only when the node has a route to it, so its {pods} pod(s) can send nothing",
                        this.name, cluster.name.value
                    ),
                )
                .label("pods without a gateway")
                .hint("give the node a default route (a real cluster node has one: kubeadm needs it)"),
            );
        }
    }
}
