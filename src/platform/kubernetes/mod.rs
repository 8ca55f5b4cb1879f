//! `kubernetes:` — clusters on nodes of the file, workloads from real manifests (and inline),
//! and Services the way kube-proxy builds them (docs/platform-semantics.md, "Kubernetes"):
//!
//! - Every cluster node gets a Calico-style /26 block of the pod CIDR (or the pinned one), a
//!   `cni0` interface at the block's last address (standing for Calico's 169.254.1.1 gateway),
//!   and routes to the other nodes' blocks via their addresses (what Calico's BGP installs).
//! - Deployments and Pods are scheduled deterministically: control-plane nodes are not
//!   schedulable (kubeadm's taint); `nodeName` and `nodeSelector` are honoured; among the
//!   eligible nodes the one with the fewest pods wins, ties by node order. A pod with no
//!   eligible node stays Pending (a warning). Pods become nodes named `<deployment>-<index>`
//!   or the Pod's name, numbered from the block's first address.
//! - ClusterIP: on every node, nat PREROUTING and OUTPUT DNAT `clusterIP:port → podIP:targetPort`
//!   with `statistic` probabilities 1/n, 1/(n−1), …, the last unconditional (KUBE-SVC/KUBE-SEP).
//!   Traffic from outside the pod network to pods is masqueraded (KUBE-MARK-MASQ). A Service
//!   without endpoints REJECTs (Connection refused). In iptables mode nothing answers ICMP to a
//!   ClusterIP; in ipvs mode every node holds the ClusterIPs on `kube-ipvs0` and answers.
//! - NodePort (30000-32767, from the manifest, a pin, or allocated from 30000 in order): the same
//!   DNAT for the node's own addresses (`--dst-type LOCAL`); `externalTrafficPolicy: Local`
//!   uses only the node's own endpoints and DROPs where it has none.
//! - Ingress objects need a controller, which is not modelled: they are listed as ignored.
//! - Budgets, checked before anything is generated: at most [`MAX_REPLICAS`] pods per
//!   workload and [`MAX_PODS_PER_CLUSTER`] per cluster; manifests are regular files of at
//!   most [`crate::format::MAX_FILE_BYTES`] inside the topology file's directory.
//!
//! The section's format ([`KubernetesSpec`]) is `crate::format::platform::kubernetes`; this
//! module owns the order of its expansion, which runs one way — validate, plan with typed values, emit:
//!
//! 1. `network`: the cluster's nodes, pod and Service networks and pod blocks, validated
//!    into a `network::PodNetwork`; then each node's pod segment, `cni0` and routes.
//! 2. `manifest` and `objects`: manifest files and inline objects, read into typed
//!    Kubernetes objects.
//! 3. `workloads`: those objects as pods to schedule and Services, within the budgets.
//! 4. `schedule`: each pod placed on a node with an address of its block, then emitted.
//! 5. `proxy`: kube-proxy's rules for the Services, installed on every node.

mod felix;
mod manifest;
mod network;
mod objects;
mod policy;
mod proxy;
mod schedule;
mod workloads;

pub use crate::format::platform::kubernetes::{ClusterSpec, KubernetesSpec, ProxyMode, ServeSpec};

use std::path::Path;

use crate::format::Diagnostic;
use crate::format::file::TopologyFile;

/// The most pods one Deployment, ReplicaSet or StatefulSet may ask for (`spec.replicas`).
pub const MAX_REPLICAS: u64 = 10_000;

/// The most pods one cluster may generate in all (Kubernetes' own tested limit is 150,000).
pub const MAX_PODS_PER_CLUSTER: usize = 150_000;

/// Expands every cluster; manifest paths are relative to `base`.
pub(crate) fn expand(
    file: &mut TopologyFile,
    spec: &KubernetesSpec,
    base: &Path,
    out: &mut Vec<Diagnostic>,
) {
    for cluster in &spec.clusters {
        expand_cluster(file, cluster, base, out);
    }
}

/// Expands one cluster into `file`: nothing is generated for a cluster whose nodes or
/// networks are wrong; a cluster whose pods would exceed the file's node budget keeps only
/// its pod networks.
fn expand_cluster(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    base: &Path,
    out: &mut Vec<Diagnostic>,
) {
    let Some(net) = network::plan(file, cluster, out) else {
        return;
    };
    net.emit(file, cluster);
    let objects = manifest::objects(cluster, base, out);
    let workloads = workloads::plan(&objects, out);
    let placed = schedule::place(cluster, &net, &workloads.pods, out);
    if !schedule::within_node_budget(file, cluster, &placed, out) {
        return;
    }
    schedule::emit(file, cluster, &net, &placed);
    let rules = proxy::plan(cluster, &net, &workloads.services, &placed, out);
    rules.install(file, cluster, &net);
}
