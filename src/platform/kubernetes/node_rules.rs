//! Each cluster node's netfilter as its daemons leave it, in the order they start
//! (docs/platform-semantics.md, "Kubernetes", **kube-proxy's rules**): kubelet's and
//! kube-proxy's chains ([`Proxy::replay`]), then Calico's felix, which keeps its jumps at the
//! top of the built-in chains: its nat rules ([`calico::nat`]) and its filter chains, which
//! enforce NetworkPolicy ([`felix::felix`]). The result becomes the node's platform rules, read and merged
//! with the node's own rules like any `iptables-save` text. Also what the daemons set on the
//! node: `route_localnet` on every interface (kube-proxy's localhost nodePorts set
//! `net.ipv4.conf.all.route_localnet=1`), and in ipvs mode the ClusterIPs on `kube-ipvs0`.

use super::ClusterSpec;
use super::felix::{self, Cluster};
use super::network::PodNetwork;
use super::proxy::Proxy;
use super::{CniName, calico, flannel};
use crate::format::file::{
    ActionName, FirewallSpec, InterfaceSpec, NodeSpec, PlatformRules, RuleSpec, SegmentSpec,
    TopologyFile,
};
use crate::format::{Code, Diagnostic, Located, RulesText};
use crate::platform::tables::Tables;

/// Writes the daemons' rules on every node of the cluster.
pub(super) fn install(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    net: &PodNetwork,
    proxy: &Proxy,
    policies: &Cluster,
    out: &mut Vec<Diagnostic>,
) {
    let span = cluster.name.span;
    for (id, this) in net.nodes() {
        let mut t = Tables::new();
        proxy.replay(&mut t, id, span);
        match net.cni {
            CniName::Calico => {
                calico::nat(&mut t, net, span);
                felix::felix(&mut t, id, policies, span);
            }
            CniName::Flannel => flannel::rules(&mut t, net, this, span),
        }
        let before_own = t.before_own();
        let (text, places) = t.save(span);
        let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == this.name) else {
            continue;
        };
        if node.platform_rules.is_some() {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    span,
                    format!(
                        "node `{}` of cluster `{}` is also a Docker host: reachlab models one daemon's rules per node",
                        this.name, cluster.name.value
                    ),
                )
                .hint("run the cluster on nodes without a `docker:` engine"),
            );
            continue;
        }
        node.platform_rules = Some(Box::new(PlatformRules {
            text: RulesText::generated(text, places, span),
            before_own,
            user_chain: None,
            fix: None,
            policy_comment: String::new(),
        }));
        for iface in &mut node.interfaces {
            iface.route_localnet = Some(Located::at(true, span));
        }
        admit_ip_in_ip(node, cluster, net);
        if !proxy.ipvs.is_empty() {
            kube_ipvs0(file, cluster, this.name.as_str(), proxy);
        }
    }
}

/// In ipvs mode every node holds each ClusterIP on the dummy interface `kube-ipvs0`.
fn kube_ipvs0(file: &mut TopologyFile, cluster: &ClusterSpec, node: &str, proxy: &Proxy) {
    let span = cluster.name.span;
    let segment = format!("{node}-kube-ipvs0");
    file.segments.push(SegmentSpec {
        name: Located::at(segment.clone(), span),
        ..SegmentSpec::default()
    });
    let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == node) else {
        return;
    };
    let addresses = proxy
        .ipvs
        .iter()
        .map(|a| Located::at(format!("{a}/32"), span))
        .collect();
    node.interfaces.push(InterfaceSpec::generated(
        "kube-ipvs0",
        segment,
        addresses,
        span,
    ));
}

/// Calico carries pod traffic between nodes in IP-in-IP between the node addresses: a filter
/// in front of the node (an OpenStack security group) sees node-to-node traffic, which the
/// group admits for its members. Says so where such a filter exists.
fn admit_ip_in_ip(node: &mut NodeSpec, cluster: &ClusterSpec, net: &PodNetwork) {
    let span = cluster.name.span;
    let pool = net.pod_cidr.to_string();
    if let Some(pre) = node
        .firewall
        .as_mut()
        .and_then(|f: &mut Box<FirewallSpec>| f.prerouting.as_mut())
    {
        pre.rules.insert(
            0,
            RuleSpec {
                src: Some(Located::at(pool.clone(), span)),
                dst: Some(Located::at(pool, span)),
                action: Some(Located::at(ActionName::Accept, span)),
                comment: Some(format!("Calico IP-in-IP: pod traffic between the nodes of cluster `{}` travels encapsulated between node addresses", cluster.name.value)),
                ..RuleSpec::default()
            },
        );
    }
}
