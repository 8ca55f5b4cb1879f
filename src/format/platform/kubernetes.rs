//! The `kubernetes:` section as the file writes it: clusters on nodes of the file, their pod
//! and Service networks, pins, manifests and inline objects (read as Kubernetes objects by
//! `crate::platform::kubernetes`). These types are the format (and the JSON Schema).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::format::Located;
use crate::format::file::{HttpSpec, ProtoName};

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

/// The network plugin that wires the pods (docs/platform-semantics.md, "Kubernetes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CniName {
    /// Calico: a veth per pod routed by the node (/32 routes, proxy ARP for 169.254.1.1),
    /// /26 blocks, natOutgoing.
    #[default]
    Calico,
    /// flannel: the pods of a node on its `cni0` bridge (br_netfilter on), a /24 per node,
    /// flannel's masquerade of traffic leaving the cluster network.
    Flannel,
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
    /// The pod network (Calico's pool, default 192.168.0.0/16; flannel's `Network`, default
    /// 10.244.0.0/16); each node gets a /26 of it (Calico) or a /24 (flannel).
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
    /// The network plugin (default calico).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniName>,
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
    /// An ingress controller installed in the cluster (ingress-nginx): it serves the
    /// Ingresses of its class. Without one, Ingresses are ignored (with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_controller: Option<Located<IngressControllerSpec>>,
}

/// How the ingress controller is exposed (ingress-nginx, `docs/deploy/baremetal.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngressModeName {
    /// The bare-metal deploy manifest: one controller pod behind the Service
    /// `ingress-nginx/ingress-nginx-controller` of type NodePort (http 80, https 443).
    #[default]
    NodePort,
    /// `hostNetwork: true`, one controller per node (a DaemonSet): it listens on port 80 of
    /// the node itself.
    HostNetwork,
}

/// The nodePorts of the controller's Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IngressNodePorts {
    /// The nodePort of port 80 (allocated like any other when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// The nodePort of port 443 (allocated like any other when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<u16>,
}

/// An ingress-nginx controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IngressControllerSpec {
    /// The IngressClass it serves (default `nginx`, the deploy manifest's): Ingresses naming
    /// it in `ingressClassName` or in the annotation `kubernetes.io/ingress.class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `node_port` (default) or `host_network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<IngressModeName>,
    /// node_port mode: the Service's nodePorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ports: Option<IngressNodePorts>,
    /// The nodes it may run on: node_port mode schedules its one pod among them;
    /// host_network runs on each. Default: the nodes that run workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Located<String>>,
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
