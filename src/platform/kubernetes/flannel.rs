//! flannel's data plane, the cluster's CNI when `cni: flannel` (docs/platform-semantics.md,
//! "Kubernetes", **flannel**): flannel's CNI plugin delegates to the reference `bridge` plugin
//! (`isGateway`, `hairpinMode`), so each node's pods are ports of its `cni0` bridge, which
//! holds the first address of the node's /24 and is their gateway; kube-proxy needs the bridge
//! to pass its frames to iptables (br_netfilter, `bridge-nf-call-iptables=1`). flanneld's own
//! rules (`pkg/trafficmngr/iptables/iptables.go`, `masqRules` and `forwardRules`) are appended
//! to POSTROUTING and FORWARD ([`rules`]).

use super::ClusterSpec;
use super::network::{ClusterNode, PodNetwork};
use super::schedule::{Placed, listeners};
use crate::format::file::{InterfaceSpec, NodeSpec, RouteSpec, SegmentSpec, TopologyFile};
use crate::format::{Located, Span};
use crate::platform::tables::{Table, Tables};

/// kube-proxy's masquerade mark, which flannel leaves to kube-proxy (`kubeProxyMark`).
const KUBE_PROXY_MARK: &str = "0x4000/0x4000";

/// Adds each node's `cni0` bridge and segment, and each placed pod as a node on it.
pub(super) fn emit(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    net: &PodNetwork,
    placed: &[Placed],
) {
    let span = cluster.name.span;
    let at = |text: String| Located::at(text, span);
    for (_, this) in net.nodes() {
        let segment = bridge_segment(&this.name);
        file.segments.push(SegmentSpec {
            name: at(segment.clone()),
            note: Some(format!(
                "the cni0 bridge of node `{}` in cluster `{}` ({}), flannel",
                this.name, cluster.name.value, this.block
            )),
            ..SegmentSpec::default()
        });
        let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == this.name) else {
            continue;
        };
        node.br_netfilter = Some(true);
        let mut cni0 = port(
            "cni0",
            &segment,
            format!("{}/{}", gateway(this), this.block.prefix_len()),
            span,
        );
        cni0.bridge = Some(Located::at(true, span));
        node.interfaces.push(cni0);
    }
    for Placed { node, pod, address } in placed {
        let host = net.node(*node);
        let mut eth0 = port(
            "eth0",
            &bridge_segment(&host.name),
            format!("{address}/{}", host.block.prefix_len()),
            span,
        );
        // hairpinMode: the bridge may send a pod's frame back to it (a pod reaching itself
        // through its Service).
        eth0.hairpin = Some(Located::at(true, span));
        file.nodes.push(NodeSpec {
            name: at(pod.name.clone()),
            interfaces: vec![eth0],
            routes: vec![RouteSpec {
                to: at("default".into()),
                via: Some(at(gateway(host).to_string())),
                ..RouteSpec::default()
            }],
            listen: listeners(cluster, pod, span),
            ..NodeSpec::default()
        });
    }
}

/// The node's `cni0` address: its subnet's first address.
fn gateway(node: &ClusterNode) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(node.block.network()) + 1)
}

fn bridge_segment(node: &str) -> String {
    format!("{node}-cni0")
}

fn port(name: &str, segment: &str, address: String, span: Span) -> InterfaceSpec {
    InterfaceSpec::generated(name, segment, vec![Located::at(address, span)], span)
}

/// flanneld's rules on one node, appended as it appends them (`AppendUnique`): the masquerade
/// of what leaves the cluster network, kube-proxy's marked traffic left to kube-proxy, and
/// FORWARD accepting the cluster network both ways.
pub(super) fn rules(t: &mut Tables, net: &PodNetwork, node: &ClusterNode, place: Span) {
    let (cluster, subnet) = (net.pod_cidr, node.block);
    let c = "-m comment --comment \"flanneld masq\"";
    t.new_chain(Table::Nat, "FLANNEL-POSTRTG");
    t.append(
        Table::Nat,
        "POSTROUTING",
        format!("{c} -j FLANNEL-POSTRTG"),
        place,
    );
    for words in [
        format!("-m mark --mark {KUBE_PROXY_MARK} {c} -j RETURN"),
        format!("-s {subnet} -d {cluster} {c} -j RETURN"),
        format!("-s {cluster} -d {subnet} {c} -j RETURN"),
        format!("! -s {cluster} -d {subnet} {c} -j RETURN"),
        format!("-s {cluster} ! -d 224.0.0.0/4 {c} -j MASQUERADE --random-fully"),
        format!("! -s {cluster} -d {cluster} {c} -j MASQUERADE --random-fully"),
    ] {
        t.append(Table::Nat, "FLANNEL-POSTRTG", words, place);
    }
    let f = "-m comment --comment \"flanneld forward\"";
    t.new_chain(Table::Filter, "FLANNEL-FWD");
    t.append(
        Table::Filter,
        "FORWARD",
        format!("{f} -j FLANNEL-FWD"),
        place,
    );
    t.append(
        Table::Filter,
        "FLANNEL-FWD",
        format!("-s {cluster} {f} -j ACCEPT"),
        place,
    );
    t.append(
        Table::Filter,
        "FLANNEL-FWD",
        format!("-d {cluster} {f} -j ACCEPT"),
        place,
    );
}
