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
//!   most [`crate::topology::MAX_FILE_BYTES`] inside the topology file's directory.
//!
//! This module owns the `kubernetes:` section's format ([`KubernetesSpec`]) and the order of
//! its expansion, which runs one way — validate, plan with typed values, emit:
//!
//! 1. [`network`]: the cluster's nodes, pod and Service networks and pod blocks, validated
//!    into a [`network::PodNetwork`]; then each node's pod segment, `cni0` and routes.
//! 2. [`manifest`] and [`objects`]: manifest files and inline objects, read into typed
//!    Kubernetes objects.
//! 3. [`workloads`]: those objects as pods to schedule and Services, within the budgets.
//! 4. [`schedule`]: each pod placed on a node with an address of its block, then emitted.
//! 5. [`proxy`]: kube-proxy's rules for the Services, installed on every node.

mod manifest;
mod network;
mod objects;
mod proxy;
mod schedule;
mod workloads;

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::topology::file::{HttpSpec, ProtoName, TopologyFile};
use crate::topology::{Diagnostic, Located};

/// Kubernetes clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct KubernetesSpec {
    pub clusters: Vec<ClusterSpec>,
}

/// How kube-proxy implements Services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    #[default]
    Iptables,
    Ipvs,
}

/// One cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: Located<String>,
    /// The cluster's nodes: nodes of this file (also VMs and instances of platform sections).
    pub nodes: Vec<Located<String>>,
    /// Nodes that run no workloads (kubeadm taints the control plane NoSchedule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control_plane: Vec<Located<String>>,
    /// Node labels, for `nodeSelector`: `{ worker1: { PoP: space_1 } }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The pod network (Calico's pool, default 192.168.0.0/16); each node gets a /26 of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<Located<String>>,
    /// Pinned pod blocks per node, e.g. `{ worker1: 172.16.235.128/26 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_blocks: BTreeMap<String, String>,
    /// The Service network (default 10.96.0.0/12, kubeadm's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<Located<String>>,
    /// kube-proxy mode (default iptables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_mode: Option<ProxyMode>,
    /// Pinned ClusterIPs per Service name (the API server allocates them at random).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_ips: BTreeMap<String, String>,
    /// Pinned nodePorts per Service name, for manifests that leave them to the API server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_ports: BTreeMap<String, u16>,
    /// Manifest files (multi-document YAML), relative to this topology file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Located<String>>,
    /// The same kinds of objects written inline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Value>,
    /// What pods answer: every pod whose labels include `selector` listens on `port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serve: Vec<ServeSpec>,
}

/// A service pods run, chosen by their labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServeSpec {
    pub selector: BTreeMap<String, String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: Located<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Located<ProtoName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Located<HttpSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<Located<String>>,
}

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
