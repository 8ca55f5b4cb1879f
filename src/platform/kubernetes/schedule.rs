//! Where pods run, and the pods as nodes of the file. Scheduling is kube-scheduler's choice
//! made deterministic: control-plane nodes are not schedulable (kubeadm's taint); `nodeName`
//! and `nodeSelector` are honoured; among the eligible nodes the one with the fewest pods
//! wins, ties by node order; a pod with no eligible node stays Pending (a warning). A placed
//! pod takes the next address of its node's block (from its second); `calico` wires it, and
//! it listens where `serve:` and its container ports say.

use std::net::Ipv4Addr;

use super::ClusterSpec;
use super::network::{NodeId, PodNetwork};
use super::workloads::{PodPlan, ServicePlan};
use crate::format::file::{ListenSpec, ProtoName, TopologyFile};
use crate::format::{Code, Diagnostic, Located, Span};

/// A pod placed on a node, with its address.
pub(super) struct Placed<'a> {
    pub node: NodeId,
    pub pod: &'a PodPlan,
    pub address: Ipv4Addr,
}

/// The endpoints of `service`: the placed pods of its namespace its selector matches (none
/// without a selector), in placement order.
pub(super) fn endpoints<'p, 'a>(
    service: &ServicePlan,
    placed: &'p [Placed<'a>],
) -> Vec<&'p Placed<'a>> {
    placed
        .iter()
        .filter(|p| {
            !service.selector.is_empty()
                && p.pod.namespace == service.namespace
                && p.pod.matches(&service.selector)
        })
        .collect()
}

/// Places each pod in order; a pod no node accepts stays Pending (a warning), a pod whose
/// node's block is full is an error.
pub(super) fn place<'a>(
    cluster: &ClusterSpec,
    net: &PodNetwork,
    pods: &'a [PodPlan],
    out: &mut Vec<Diagnostic>,
) -> Vec<Placed<'a>> {
    let span = cluster.name.span;
    let schedulable: Vec<NodeId> = net
        .nodes()
        .filter(|(_, n)| !cluster.control_plane.iter().any(|c| c.value == n.name))
        .map(|(id, _)| id)
        .collect();
    let mut load = vec![0u32; net.len()];
    let mut placed = Vec::new();
    for pod in pods {
        let eligible = eligible(cluster, net, &schedulable, pod);
        let Some(node) = eligible
            .into_iter()
            .min_by_key(|id| (load[id.index()], *id))
        else {
            out.push(Diagnostic::warning(Code::Unsupported, span, format!("pod `{}` of cluster `{}` stays Pending: no node matches its nodeSelector {:?}", pod.name, cluster.name.value, pod.node_selector)).label("unschedulable").hint("label a node under `labels:`, or change the nodeSelector"));
            continue;
        };
        load[node.index()] += 1;
        let block = net.node(node).block;
        let address =
            Ipv4Addr::from(u32::from(block.network()) + load[node.index()] - 1 + net.first_pod());
        if address >= block.broadcast() {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    span,
                    format!(
                        "node `{}` has no pod address left in {block} for `{}`",
                        net.node(node).name,
                        pod.name
                    ),
                )
                .label("pod block full")
                .hint("pin a larger block in `pod_blocks`"),
            );
            continue;
        }
        placed.push(Placed { node, pod, address });
    }
    placed
}

/// The nodes `pod` may run on: the one its `nodeName` names, else the schedulable nodes whose
/// labels (`labels:` of the cluster) include its `nodeSelector`.
fn eligible(
    cluster: &ClusterSpec,
    net: &PodNetwork,
    schedulable: &[NodeId],
    pod: &PodPlan,
) -> Vec<NodeId> {
    match &pod.node_name {
        Some(name) => net.find(name).into_iter().collect(),
        None => schedulable
            .iter()
            .copied()
            .filter(|&id| {
                let labels = cluster.labels.get(&net.node(id).name);
                pod.node_selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect(),
    }
}

/// Whether the file stays within [`crate::format::MAX_NODES`] with the placed pods; the
/// error when it does not.
pub(super) fn within_node_budget(
    file: &TopologyFile,
    cluster: &ClusterSpec,
    placed: &[Placed],
    out: &mut Vec<Diagnostic>,
) -> bool {
    let max_nodes = crate::format::MAX_NODES;
    if file.nodes.len().saturating_add(placed.len()) <= max_nodes {
        return true;
    }
    out.push(
        Diagnostic::error(
            Code::BadValue,
            cluster.name.span,
            format!(
                "cluster `{}` adds {} pods to {} nodes; a topology may have at most {max_nodes} nodes once expanded",
                cluster.name.value,
                placed.len(),
                file.nodes.len()
            ),
        )
        .label("too many pods")
        .hint("lower the replicas, or split the topology"),
    );
    false
}

/// What `pod` listens on: every `serve:` entry whose selector its labels match, then each
/// container port (number and protocol) not already listened on.
pub(super) fn listeners(cluster: &ClusterSpec, pod: &PodPlan, span: Span) -> Vec<ListenSpec> {
    let mut listen: Vec<ListenSpec> = cluster
        .serve
        .iter()
        .filter(|s| pod.matches(&s.selector))
        .map(|serve| ListenSpec {
            port: serve.port.clone(),
            proto: serve.proto.clone(),
            http: serve.http.clone(),
            ssh: serve.ssh.clone(),
            banner: serve.banner.clone(),
            ..ListenSpec::default()
        })
        .collect();
    // A port number may be declared once per protocol (kube-dns's 53/UDP and 53/TCP).
    let udp = |proto: Option<&Located<ProtoName>>| proto.is_some_and(|p| p.value == ProtoName::Udp);
    for p in &pod.ports {
        let is_udp = p.proto == ProtoName::Udp;
        if !listen
            .iter()
            .any(|l| l.port.value == u32::from(p.port) && udp(l.proto.as_ref()) == is_udp)
        {
            listen.push(ListenSpec {
                port: Located::at(u32::from(p.port), span),
                proto: (p.proto == ProtoName::Udp).then(|| Located::at(ProtoName::Udp, span)),
                ..ListenSpec::default()
            });
        }
    }
    listen
}
