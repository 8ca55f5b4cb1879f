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

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::topology::file::{
    ActionName, ChainSpec, FirewallSpec, HttpSpec, InterfaceSpec, ListenSpec, NatChainName,
    NodeSpec, ProtoName, RouteSpec, RuleProto, RuleSpec, SegmentSpec, TopologyFile,
};
use crate::topology::{Code, Diagnostic, Located, Span};

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

fn at<T>(value: T, span: Span) -> Located<T> {
    Located::at(value, span)
}

/// A workload to schedule.
struct PodPlan {
    name: String,
    labels: BTreeMap<String, String>,
    node_name: Option<String>,
    node_selector: BTreeMap<String, String>,
    /// Container ports: (name, port, protocol).
    ports: Vec<(Option<String>, u16, ProtoName)>,
}

struct ServicePort {
    port: u16,
    target: Value,
    node_port: Option<u16>,
    proto: ProtoName,
}

struct ServicePlan {
    name: String,
    node_port: bool,
    local: bool,
    cluster_ip: Option<String>,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

fn strings(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .or_else(|| Some(v.to_string()))?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn container_ports(spec: Option<&Value>) -> Vec<(Option<String>, u16, ProtoName)> {
    let mut out = Vec::new();
    for c in spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = p
                .get("containerPort")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            let proto = if p.get("protocol").and_then(Value::as_str) == Some("UDP") {
                ProtoName::Udp
            } else {
                ProtoName::Tcp
            };
            out.push((
                p.get("name").and_then(Value::as_str).map(str::to_owned),
                port,
                proto,
            ));
        }
    }
    out
}

/// Reads objects into pods and services; other kinds are reported as ignored.
fn plan(
    objects: &[(Value, Span, String)],
    pods: &mut Vec<PodPlan>,
    services: &mut Vec<ServicePlan>,
    out: &mut Vec<Diagnostic>,
) {
    for (object, span, source) in objects {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match kind {
            "Deployment" | "ReplicaSet" | "StatefulSet" => {
                let replicas = object
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                if let Some(d) = over_budget(kind, &name, source, *span, replicas, pods.len()) {
                    out.push(d);
                    continue;
                }
                let template = object.pointer("/spec/template");
                let pod_spec = template.and_then(|t| t.get("spec"));
                for i in 0..replicas {
                    pods.push(PodPlan {
                        name: format!("{name}-{i}"),
                        labels: strings(template.and_then(|t| t.pointer("/metadata/labels"))),
                        node_name: pod_spec
                            .and_then(|s| s.get("nodeName"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        node_selector: strings(pod_spec.and_then(|s| s.get("nodeSelector"))),
                        ports: container_ports(pod_spec),
                    });
                }
            }
            "Pod" => {
                if let Some(d) = over_budget(kind, &name, source, *span, 1, pods.len()) {
                    out.push(d);
                    continue;
                }
                let spec = object.get("spec");
                pods.push(PodPlan {
                    name: name.clone(),
                    labels: strings(object.pointer("/metadata/labels")),
                    node_name: spec
                        .and_then(|s| s.get("nodeName"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    node_selector: strings(spec.and_then(|s| s.get("nodeSelector"))),
                    ports: container_ports(spec),
                });
            }
            "Service" => {
                let spec = object.get("spec");
                let kind = spec
                    .and_then(|s| s.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP");
                let mut ports = Vec::new();
                for p in spec
                    .and_then(|s| s.get("ports"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(port) = p
                        .get("port")
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                    else {
                        out.push(
                            Diagnostic::error(
                                Code::BadValue,
                                *span,
                                format!("Service `{name}` ({source}) has a port without a number"),
                            )
                            .label("port: ?")
                            .hint("every Service port needs `port:`"),
                        );
                        continue;
                    };
                    ports.push(ServicePort {
                        port,
                        target: p.get("targetPort").cloned().unwrap_or(Value::from(port)),
                        node_port: p
                            .get("nodePort")
                            .and_then(Value::as_u64)
                            .and_then(|p| u16::try_from(p).ok()),
                        proto: if p.get("protocol").and_then(Value::as_str) == Some("UDP") {
                            ProtoName::Udp
                        } else {
                            ProtoName::Tcp
                        },
                    });
                }
                if !matches!(kind, "ClusterIP" | "NodePort") {
                    out.push(Diagnostic::warning(Code::Unsupported, *span, format!("Service `{name}` ({source}) has type {kind}; it is modelled as NodePort")).label("approximated").hint("LoadBalancer Services add an external load balancer reachlab does not model"));
                }
                services.push(ServicePlan {
                    name,
                    node_port: kind != "ClusterIP",
                    local: spec
                        .and_then(|s| s.get("externalTrafficPolicy"))
                        .and_then(Value::as_str)
                        == Some("Local"),
                    cluster_ip: spec
                        .and_then(|s| s.get("clusterIP"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    selector: strings(spec.and_then(|s| s.get("selector"))),
                    ports,
                });
            }
            "" => out.push(
                Diagnostic::warning(
                    Code::Unsupported,
                    *span,
                    format!("an object in {source} has no `kind`; ignored"),
                )
                .label("not a Kubernetes object"),
            ),
            other => {
                let why = if other == "Ingress" {
                    "an Ingress needs an ingress controller, which is not modelled"
                } else {
                    "reachlab models Deployments, Pods and Services"
                };
                out.push(
                    Diagnostic::warning(
                        Code::Unsupported,
                        *span,
                        format!("{other} `{name}` ({source}) is ignored: {why}"),
                    )
                    .label("ignored"),
                );
            }
        }
    }
}

/// The error for a workload of `replicas` pods when it, with the `planned` pods before it,
/// exceeds the budgets ([`MAX_REPLICAS`], [`MAX_PODS_PER_CLUSTER`]); checked before any pod
/// is planned.
fn over_budget(
    kind: &str,
    name: &str,
    source: &str,
    span: Span,
    replicas: u64,
    planned: usize,
) -> Option<Diagnostic> {
    if replicas > MAX_REPLICAS {
        return Some(Diagnostic::error(
            Code::BadValue,
            span,
            format!("{kind} `{name}` ({source}) asks for {replicas} replicas; the limit is {MAX_REPLICAS}"),
        )
        .label("too many replicas")
        .hint(format!("lower `spec.replicas` to at most {MAX_REPLICAS}: a few pods per node show the same reachability")));
    }
    let total = u64::try_from(planned)
        .unwrap_or(u64::MAX)
        .saturating_add(replicas);
    if total > MAX_PODS_PER_CLUSTER as u64 {
        return Some(Diagnostic::error(
            Code::BadValue,
            span,
            format!("{kind} `{name}` ({source}) brings the cluster to {total} pods; the limit is {MAX_PODS_PER_CLUSTER}"),
        )
        .label("too many pods")
        .hint(format!("lower the replicas: a cluster may generate at most {MAX_PODS_PER_CLUSTER} pods")));
    }
    None
}

/// The manifest at `written` (as the topology gives it), resolved inside `base`, the
/// topology file's directory: absolute paths and paths that leave `base` (through `..` or a
/// symbolic link) are refused.
fn confined_manifest(base: &Path, written: &str) -> Result<std::path::PathBuf, String> {
    let relative = Path::new(written);
    if relative.is_absolute() {
        return Err(format!("manifest path `{written}` is absolute"));
    }
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let root = base.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the topology's directory {}: {e}",
            base.display()
        )
    })?;
    let full = base.join(relative).canonicalize().map_err(|e| {
        format!(
            "cannot read manifest {}: {e}",
            base.join(relative).display()
        )
    })?;
    if !full.starts_with(&root) {
        return Err(format!(
            "manifest path `{written}` leads outside the topology's directory {}",
            root.display()
        ));
    }
    Ok(full)
}

/// Reads a manifest's text: a regular UTF-8 file of at most [`crate::topology::MAX_FILE_BYTES`].
fn read_manifest(path: &Path) -> Result<String, crate::topology::ReadError> {
    let bytes = crate::topology::read_regular(path, crate::topology::MAX_FILE_BYTES as u64)?;
    String::from_utf8(bytes).map_err(|e| crate::topology::ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

fn node_address(file: &TopologyFile, name: &str) -> Option<Ipv4Addr> {
    let node = file.nodes.iter().find(|n| n.name.value == name)?;
    node.interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .find_map(|a| a.value.split('/').next()?.parse().ok())
}

fn prefix(text: &Located<String>, what: &str, out: &mut Vec<Diagnostic>) -> Option<Ipv4Net> {
    match text.value.parse::<Ipv4Net>() {
        Ok(n) => Some(n.trunc()),
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not a {what} prefix", text.value),
                )
                .label("expected PREFIX/LENGTH")
                .hint("e.g. 172.16.0.0/16"),
            );
            None
        }
    }
}

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

fn expand_cluster(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    base: &Path,
    out: &mut Vec<Diagnostic>,
) {
    let span = cluster.name.span;
    let cname = &cluster.name.value;
    // The nodes, in order, with their addresses.
    let mut nodes: Vec<(String, Ipv4Addr)> = Vec::new();
    for n in &cluster.nodes {
        match node_address(file, &n.value) {
            Some(addr) => nodes.push((n.value.clone(), addr)),
            None => {
                let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
                let mut d = Diagnostic::error(Code::UnknownReference, n.span, format!("cluster `{cname}` runs on node `{}`, which is not a node of this file with an address", n.value)).label("unknown node");
                if let Some(c) = crate::topology::closest_name(&n.value, &names) {
                    d = d.hint(format!("did you mean `{c}`?"));
                }
                out.push(d);
            }
        }
    }
    if nodes.is_empty() {
        return;
    }
    let pod_cidr = cluster.pod_cidr.as_ref().map_or_else(
        || "192.168.0.0/16".parse().ok(),
        |p| prefix(p, "pod network", out),
    );
    let service_cidr = cluster.service_cidr.as_ref().map_or_else(
        || "10.96.0.0/12".parse().ok(),
        |p| prefix(p, "Service network", out),
    );
    let (Some(pod_cidr), Some(service_cidr)) = (pod_cidr, service_cidr) else {
        return;
    };
    // Pod blocks.
    let mut free = pod_cidr.subnets(26).into_iter().flatten();
    let mut blocks: Vec<Ipv4Net> = Vec::new();
    let pinned: Vec<Ipv4Net> = cluster
        .pod_blocks
        .values()
        .filter_map(|b| b.parse::<Ipv4Net>().ok())
        .collect();
    for (name, _) in &nodes {
        let block = match cluster.pod_blocks.get(name) {
            Some(text) => match text.parse::<Ipv4Net>() {
                Ok(b) if pod_cidr.contains(&b.network()) && b.prefix_len() <= 30 => b.trunc(),
                _ => {
                    out.push(Diagnostic::error(Code::BadValue, span, format!("pod block `{text}` of node `{name}` is not a prefix inside the pod network {pod_cidr}")).label("bad pod block").hint("pin a /26 of `pod_cidr`"));
                    return;
                }
            },
            None => match free.find(|b| {
                !pinned
                    .iter()
                    .any(|p| p.contains(&b.network()) || b.contains(&p.network()))
            }) {
                Some(b) => b,
                None => {
                    out.push(
                        Diagnostic::error(
                            Code::BadValue,
                            span,
                            format!("the pod network {pod_cidr} has no /26 left for node `{name}`"),
                        )
                        .label("pod network full")
                        .hint("use a larger `pod_cidr`"),
                    );
                    return;
                }
            },
        };
        blocks.push(block);
    }
    // Per node: the pod segment, cni0, forwarding, routes to the other blocks.
    for (i, (name, _)) in nodes.iter().enumerate() {
        let block = blocks[i];
        let gateway = Ipv4Addr::from(u32::from(block.broadcast()) - 1);
        let segment = format!("{name}-pods");
        file.segments.push(SegmentSpec {
            name: at(segment.clone(), span),
            note: Some(format!("the pod network of node `{name}` in cluster `{cname}` ({block}): reached from the cluster's nodes; from outside, through a Service's NodePort")),
            ..SegmentSpec::default()
        });
        let others: Vec<(Ipv4Net, Ipv4Addr)> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, (_, a))| (blocks[j], *a))
            .collect();
        let Some(node) = file.nodes.iter_mut().find(|n| &n.name.value == name) else {
            continue;
        };
        node.forwarding = Some(true);
        node.interfaces.push(InterfaceSpec {
            name: at("cni0".into(), span),
            segment: at(segment, span),
            addresses: vec![at(format!("{gateway}/{}", block.prefix_len()), span)],
            mac: None,
        });
        for (block, via) in others {
            node.routes.push(RouteSpec {
                to: at(block.to_string(), span),
                via: Some(at(via.to_string(), span)),
                ..RouteSpec::default()
            });
        }
    }
    // Objects: manifests, then inline.
    let mut objects: Vec<(Value, Span, String)> = Vec::new();
    for path in &cluster.manifests {
        let full = match confined_manifest(base, &path.value) {
            Ok(full) => full,
            Err(message) => {
                out.push(
                    Diagnostic::error(Code::Io, path.span, message)
                        .label("not a manifest reachlab reads")
                        .hint("manifest paths are relative to the topology file and stay inside its directory; copy the manifest there"),
                );
                continue;
            }
        };
        let text = match read_manifest(&full) {
            Ok(t) => t,
            Err(e) => {
                out.push(
                    Diagnostic::error(Code::Io, path.span, format!("manifest {}: {e}", path.value))
                        .label("unreadable")
                        .hint(e.hint()),
                );
                continue;
            }
        };
        match serde_saphyr::from_multiple::<Value>(&text) {
            Ok(docs) => objects.extend(
                docs.into_iter()
                    .filter(|d| !d.is_null())
                    .map(|d| (d, path.span, path.value.clone())),
            ),
            Err(e) => out.push(
                Diagnostic::error(
                    Code::YamlSyntax,
                    path.span,
                    format!(
                        "manifest {} is not valid YAML: {}",
                        path.value,
                        e.without_snippet()
                    ),
                )
                .label("bad manifest")
                .hint("check it with `kubectl apply --dry-run=client -f`"),
            ),
        }
    }
    objects.extend(cluster.objects.iter().map(|o| {
        (
            o.clone(),
            span,
            format!("inline objects of cluster `{cname}`"),
        )
    }));
    let mut pods = Vec::new();
    let mut services = Vec::new();
    plan(&objects, &mut pods, &mut services, out);
    // Scheduling.
    let schedulable: Vec<usize> = (0..nodes.len())
        .filter(|&i| !cluster.control_plane.iter().any(|c| c.value == nodes[i].0))
        .collect();
    let mut load = vec![0u32; nodes.len()];
    let mut placed: Vec<(usize, &PodPlan, Ipv4Addr)> = Vec::new();
    for pod in &pods {
        let eligible: Vec<usize> = match &pod.node_name {
            Some(n) => nodes
                .iter()
                .position(|(name, _)| name == n)
                .into_iter()
                .collect(),
            None => schedulable
                .iter()
                .copied()
                .filter(|&i| {
                    pod.node_selector.iter().all(|(k, v)| {
                        cluster.labels.get(&nodes[i].0).and_then(|l| l.get(k)) == Some(v)
                    })
                })
                .collect(),
        };
        let Some(&node) = eligible.iter().min_by_key(|&&i| (load[i], i)) else {
            out.push(Diagnostic::warning(Code::Unsupported, span, format!("pod `{}` of cluster `{cname}` stays Pending: no node matches its nodeSelector {:?}", pod.name, pod.node_selector)).label("unschedulable").hint("label a node under `labels:`, or change the nodeSelector"));
            continue;
        };
        load[node] += 1;
        let block = blocks[node];
        let addr = Ipv4Addr::from(u32::from(block.network()) + load[node]);
        if u32::from(addr) >= u32::from(block.broadcast()) - 1 {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    span,
                    format!(
                        "node `{}` has no pod address left in {block} for `{}`",
                        nodes[node].0, pod.name
                    ),
                )
                .label("pod block full")
                .hint("pin a larger block in `pod_blocks`"),
            );
            continue;
        }
        placed.push((node, pod, addr));
    }
    let max_nodes = crate::topology::MAX_NODES;
    if file.nodes.len().saturating_add(placed.len()) > max_nodes {
        out.push(
            Diagnostic::error(
                Code::BadValue,
                span,
                format!(
                    "cluster `{cname}` adds {} pods to {} nodes; a topology may have at most {max_nodes} nodes once expanded",
                    placed.len(),
                    file.nodes.len()
                ),
            )
            .label("too many pods")
            .hint("lower the replicas, or split the topology"),
        );
        return;
    }
    for (node, pod, addr) in &placed {
        let block = blocks[*node];
        let gateway = Ipv4Addr::from(u32::from(block.broadcast()) - 1);
        let mut listen: Vec<ListenSpec> = Vec::new();
        for serve in cluster
            .serve
            .iter()
            .filter(|s| s.selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)))
        {
            listen.push(ListenSpec {
                port: serve.port.clone(),
                proto: serve.proto.clone(),
                http: serve.http.clone(),
                ssh: serve.ssh.clone(),
                banner: serve.banner.clone(),
                ..ListenSpec::default()
            });
        }
        for (_, port, proto) in &pod.ports {
            if !listen.iter().any(|l| l.port.value == u32::from(*port)) {
                listen.push(ListenSpec {
                    port: at(u32::from(*port), span),
                    proto: (*proto == ProtoName::Udp).then(|| at(ProtoName::Udp, span)),
                    ..ListenSpec::default()
                });
            }
        }
        file.nodes.push(NodeSpec {
            name: at(pod.name.clone(), span),
            interfaces: vec![InterfaceSpec {
                name: at("eth0".into(), span),
                segment: at(format!("{}-pods", nodes[*node].0), span),
                addresses: vec![at(format!("{addr}/{}", block.prefix_len()), span)],
                mac: None,
            }],
            routes: vec![RouteSpec {
                to: at("default".into(), span),
                via: Some(at(gateway.to_string(), span)),
                ..RouteSpec::default()
            }],
            listen,
            ..NodeSpec::default()
        });
    }
    // Services.
    let mode = cluster.proxy_mode.unwrap_or_default();
    let mut next_ip = u32::from(service_cidr.network()) + 10;
    let mut next_port = 30000u16;
    let mut used_ports: Vec<u16> = services
        .iter()
        .flat_map(|s| s.ports.iter().filter_map(|p| p.node_port))
        .chain(cluster.node_ports.values().copied())
        .collect();
    let mut rules: Vec<(Option<usize>, RuleSpec)> = Vec::new(); // (only on this node, rule) for nat
    let mut filters: Vec<(Option<usize>, RuleSpec)> = Vec::new();
    let mut ipvs_addresses: Vec<String> = Vec::new();
    for svc in &services {
        let cluster_ip = match cluster
            .cluster_ips
            .get(&svc.name)
            .or(svc.cluster_ip.as_ref())
        {
            Some(ip) if ip == "None" => None,
            Some(ip) => match ip.parse::<Ipv4Addr>() {
                Ok(a) if service_cidr.contains(&a) => Some(a),
                _ => {
                    out.push(Diagnostic::error(Code::BadAddress, span, format!("ClusterIP `{ip}` of Service `{}` is not an address of the Service network {service_cidr}", svc.name)).label("bad ClusterIP").hint("pin an address inside `service_cidr`"));
                    continue;
                }
            },
            None => {
                next_ip += 1;
                Some(Ipv4Addr::from(next_ip - 1))
            }
        };
        let endpoints: Vec<&(usize, &PodPlan, Ipv4Addr)> = if svc.selector.is_empty() {
            Vec::new()
        } else {
            placed
                .iter()
                .filter(|(_, p, _)| svc.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
                .collect()
        };
        for sp in &svc.ports {
            let proto = if sp.proto == ProtoName::Udp {
                RuleProto::Udp
            } else {
                RuleProto::Tcp
            };
            let target = |pod: &PodPlan| -> u16 {
                match &sp.target {
                    Value::Number(n) => n
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .unwrap_or(sp.port),
                    Value::String(s) => s
                        .parse()
                        .ok()
                        .or_else(|| {
                            pod.ports
                                .iter()
                                .find(|(n, _, _)| n.as_deref() == Some(s))
                                .map(|(_, p, _)| *p)
                        })
                        .unwrap_or(sp.port),
                    _ => sp.port,
                }
            };
            let words = |what: &str| {
                format!(
                    "Service `{}` port {} → targetPort (kube-proxy{what}, cluster `{cname}`)",
                    svc.name, sp.port
                )
            };
            let chain_of = |eps: &[&&(usize, &PodPlan, Ipv4Addr)],
                            base: RuleSpec,
                            tag: &str|
             -> Vec<RuleSpec> {
                let n = eps.len();
                eps.iter()
                    .enumerate()
                    .map(|(i, (_, pod, addr))| {
                        let mut r = base.clone();
                        r.dnat = Some(at(format!("{addr}:{}", target(pod)), span));
                        r.probability = (i + 1 < n).then(|| at(1.0 / (n - i) as f64, span));
                        r.comment = Some(format!(
                            "{} endpoint {}/{n}: {} {addr}:{}",
                            words(tag),
                            i + 1,
                            pod.name,
                            target(pod)
                        ));
                        r
                    })
                    .collect()
            };
            if let Some(vip) = cluster_ip {
                if mode == ProxyMode::Ipvs && !ipvs_addresses.contains(&vip.to_string()) {
                    ipvs_addresses.push(vip.to_string());
                }
                let base = RuleSpec {
                    dst: Some(at(vip.to_string(), span)),
                    proto: Some(at(proto, span)),
                    dport: Some(at(sp.port.to_string(), span)),
                    ..RuleSpec::default()
                };
                if endpoints.is_empty() {
                    let mut reject = base.clone();
                    reject.action = Some(at(ActionName::Reject, span));
                    reject.comment = Some(format!(
                        "Service `{}` has no endpoints: kube-proxy rejects (Connection refused)",
                        svc.name
                    ));
                    filters.push((None, reject));
                } else {
                    let eps: Vec<_> = endpoints.iter().collect();
                    for chain in [NatChainName::Prerouting, NatChainName::Output] {
                        for mut r in chain_of(&eps, base.clone(), "") {
                            r.chain = Some(at(chain, span));
                            rules.push((None, r));
                        }
                    }
                }
            }
            if svc.node_port {
                let node_port = match sp
                    .node_port
                    .or_else(|| cluster.node_ports.get(&svc.name).copied())
                {
                    Some(p) if (30000..=32767).contains(&p) => p,
                    Some(p) => {
                        out.push(Diagnostic::error(Code::BadValue, span, format!("nodePort {p} of Service `{}` is outside 30000-32767", svc.name)).label("bad nodePort").hint("the API server refuses nodePorts outside the default range 30000-32767"));
                        continue;
                    }
                    None => {
                        while used_ports.contains(&next_port) {
                            next_port += 1;
                        }
                        used_ports.push(next_port);
                        next_port
                    }
                };
                let base = RuleSpec {
                    dst_local: Some(true),
                    proto: Some(at(proto, span)),
                    dport: Some(at(node_port.to_string(), span)),
                    ..RuleSpec::default()
                };
                for (i, _) in nodes.iter().enumerate() {
                    let eps: Vec<_> = endpoints
                        .iter()
                        .filter(|(n, _, _)| !svc.local || *n == i)
                        .collect();
                    if eps.is_empty() {
                        let mut r = base.clone();
                        r.action = Some(at(
                            if svc.local && !endpoints.is_empty() {
                                ActionName::Drop
                            } else {
                                ActionName::Reject
                            },
                            span,
                        ));
                        r.comment = Some(if svc.local && !endpoints.is_empty() {
                            format!(
                                "NodePort {node_port} of Service `{}` (externalTrafficPolicy: Local): no endpoint on this node, kube-proxy drops",
                                svc.name
                            )
                        } else {
                            format!(
                                "NodePort {node_port} of Service `{}`: no endpoints, kube-proxy rejects",
                                svc.name
                            )
                        });
                        filters.push((Some(i), r));
                        continue;
                    }
                    for chain in [NatChainName::Prerouting, NatChainName::Output] {
                        for mut r in
                            chain_of(&eps, base.clone(), &format!(", NodePort {node_port}"))
                        {
                            r.chain = Some(at(chain, span));
                            rules.push((Some(i), r));
                        }
                    }
                }
            }
        }
    }
    // Install on every node: DNATs, the masquerade of traffic into pods from outside the pod
    // network (KUBE-MARK-MASQ), filters, and the ipvs addresses.
    for (i, (name, _)) in nodes.iter().enumerate() {
        let Some(node) = file.nodes.iter_mut().find(|n| &n.name.value == name) else {
            continue;
        };
        for (only, r) in &rules {
            if only.is_none_or(|o| o == i) {
                node.nat.push(r.clone());
            }
        }
        node.nat.push(RuleSpec {
            masquerade: Some(at(true, span)),
            not_src: Some(at(pod_cidr.to_string(), span)),
            dst: Some(at(pod_cidr.to_string(), span)),
            // KUBE-MARK-MASQ marks only what kube-proxy's own DNAT handled.
            state: vec![at(crate::topology::file::StateName::Dnat, span)],
            comment: Some(format!("kube-proxy masquerades Service traffic from outside the pod network (cluster `{cname}`)")),
            ..RuleSpec::default()
        });
        // Calico carries pod traffic between nodes in IP-in-IP between the node addresses: a
        // filter in front of the node (an OpenStack security group) sees node-to-node traffic,
        // which the group admits for its members. Say so where such a filter exists.
        if let Some(pre) = node.firewall.as_mut().and_then(|f| f.prerouting.as_mut()) {
            pre.rules.insert(
                0,
                RuleSpec {
                    src: Some(at(pod_cidr.to_string(), span)),
                    dst: Some(at(pod_cidr.to_string(), span)),
                    action: Some(at(ActionName::Accept, span)),
                    comment: Some(format!("Calico IP-in-IP: pod traffic between the nodes of cluster `{cname}` travels encapsulated between node addresses")),
                    ..RuleSpec::default()
                },
            );
        }
        let mine: Vec<RuleSpec> = filters
            .iter()
            .filter(|(only, _)| only.is_none_or(|o| o == i))
            .map(|(_, r)| r.clone())
            .collect();
        if !mine.is_empty() {
            let firewall = node.firewall.get_or_insert_with(FirewallSpec::default);
            for chain in [
                &mut firewall.input,
                &mut firewall.forward,
                &mut firewall.output,
            ] {
                let chain = chain.get_or_insert_with(ChainSpec::default);
                let at_front: Vec<RuleSpec> = mine.clone();
                chain.rules.splice(0..0, at_front);
            }
        }
        if !ipvs_addresses.is_empty() {
            let segment = format!("{name}-kube-ipvs0");
            file.segments.push(SegmentSpec {
                name: at(segment.clone(), span),
                ..SegmentSpec::default()
            });
            node.interfaces.push(InterfaceSpec {
                name: at("kube-ipvs0".into(), span),
                segment: at(segment, span),
                addresses: ipvs_addresses
                    .iter()
                    .map(|a| at(format!("{a}/32"), span))
                    .collect(),
                mac: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_over_the_budget_are_refused() {
        let span = Span::default();
        assert!(over_budget("Deployment", "web", "a.yaml", span, MAX_REPLICAS, 0).is_none());
        let d = over_budget("Deployment", "web", "a.yaml", span, MAX_REPLICAS + 1, 0);
        assert!(d.is_some_and(|d| d.message.contains("the limit is 10000")));
    }

    #[test]
    fn pods_over_the_cluster_budget_are_refused() {
        let span = Span::default();
        let planned = MAX_PODS_PER_CLUSTER - 1;
        assert!(over_budget("Pod", "p", "a.yaml", span, 1, planned).is_none());
        assert!(over_budget("Pod", "p", "a.yaml", span, 2, planned).is_some());
        assert!(over_budget("Pod", "p", "a.yaml", span, 1, usize::MAX).is_some());
    }

    #[test]
    fn manifests_stay_inside_the_topology_directory() {
        let dir = std::env::temp_dir().join(format!("reachlab-confine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lab")).unwrap();
        std::fs::write(dir.join("lab/app.yaml"), "kind: Pod\n").unwrap();
        std::fs::write(dir.join("out.yaml"), "kind: Pod\n").unwrap();
        let base = dir.join("lab");
        let inside = confined_manifest(&base, "app.yaml");
        let absolute = confined_manifest(&base, "/etc/passwd");
        let escaping = confined_manifest(&base, "../out.yaml");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(inside.is_ok(), "{inside:?}");
        assert!(absolute.is_err_and(|e| e.contains("is absolute")));
        assert!(escaping.is_err_and(|e| e.contains("leads outside")));
    }
}
