//! `kubernetes:` — clusters on nodes of the file, workloads from real manifests (and inline),
//! wired by Calico and served by kube-proxy as they build them (docs/platform-semantics.md,
//! "Kubernetes"):
//!
//! - Every cluster node gets a Calico /26 block of the pod CIDR (or the pinned one), a
//!   blackhole route for it and routes to the other nodes' blocks via their addresses (what
//!   Calico's BGP installs); each pod a veth to its node, with proxy ARP for its gateway
//!   169.254.1.1 and a /32 route to it (`calico`).
//! - Deployments and Pods are scheduled deterministically: control-plane nodes are not
//!   schedulable (kubeadm's taint); `nodeName` and `nodeSelector` are honoured; among the
//!   eligible nodes the one with the fewest pods wins, ties by node order. A pod with no
//!   eligible node stays Pending (a warning). Pods become nodes named `<deployment>-<index>`
//!   or the Pod's name, numbered from the block's second address.
//! - Services: kube-proxy's chains in iptables mode, replayed as kube-proxy writes them
//!   (`proxy`), with kubelet's `KUBE-FIREWALL` and Calico's `natOutgoing` (`node_rules`). In
//!   ipvs mode every node also holds the ClusterIPs on `kube-ipvs0` and answers them.
//! - NetworkPolicies (and Namespaces' labels): enforced in each node's filter table as
//!   Calico's felix writes it (`policy` plans them, `felix` writes the chains).
//! - LoadBalancer Services get an address from MetalLB's pools, announced by the node its
//!   speakers elect (`metallb`), and captured by kube-proxy like an external IP.
//! - Ingresses are served by the cluster's `ingress_controller:` (ingress-nginx, as a pod
//!   behind a NodePort Service or on the nodes' own network), as nginx routes by Host and
//!   path (`ingress`); without a controller of their class they are listed as ignored.
//! - Budgets, checked before anything is generated: at most [`MAX_REPLICAS`] pods per
//!   workload and [`MAX_PODS_PER_CLUSTER`] per cluster; manifests are regular files of at
//!   most [`crate::format::MAX_FILE_BYTES`] inside the topology file's directory.
//!
//! The section's format ([`KubernetesSpec`]) is `crate::format::platform::kubernetes`; this
//! module owns the order of its expansion, which runs one way — validate, plan with typed values, emit:
//!
//! 1. `network`: the cluster's nodes, pod and Service networks and pod blocks, validated
//!    into a `network::PodNetwork`; then each node's routes to the blocks.
//! 2. `manifest` and `objects`: manifest files and inline objects, read into typed
//!    Kubernetes objects.
//! 3. `workloads`: those objects as pods to schedule, Services, NetworkPolicies (`policy`)
//!    and Namespaces, within the budgets.
//! 4. `schedule`: each pod placed on a node with an address of its block; `calico` wires it.
//! 5. `proxy`: kube-proxy's view of the Services; `ingress`: the controller's routes to
//!    their endpoints; `felix`: Calico's enforcement of the NetworkPolicies; `node_rules`:
//!    each node's tables.

mod calico;
mod felix;
mod flannel;
mod ingress;
mod manifest;
mod metallb;
mod network;
mod node_rules;
mod objects;
mod policy;
mod proxy;
mod schedule;
mod workloads;

pub use crate::format::platform::kubernetes::{
    ClusterSpec, CniName, IngressControllerSpec, IngressModeName, KubernetesSpec, ProxyMode,
    ServeSpec,
};

use std::path::Path;

use crate::format::file::TopologyFile;
use crate::format::{Code, Diagnostic};

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

/// The cluster's DNS: a zone of its Services' names (CoreDNS), and each pod's resolv.conf as
/// kubelet writes it (search `NS.svc.cluster.local svc.cluster.local cluster.local`, `ndots:5`).
fn cluster_dns(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    proxy: &proxy::Proxy,
    placed: &[schedule::Placed],
) {
    let zone = file.dns_zones.len();
    file.dns_zones.push(crate::model::DnsZone {
        server: format!("CoreDNS of cluster `{}`", cluster.name.value),
        records: proxy.dns_records(),
    });
    for p in placed {
        let Some(node) = file.nodes.iter_mut().find(|n| n.name.value == p.pod.name) else {
            continue;
        };
        let domain = proxy::CLUSTER_DOMAIN;
        node.resolver = Some(Box::new(crate::model::Resolver {
            zone,
            search: vec![
                format!("{}.svc.{domain}", p.pod.namespace),
                format!("svc.{domain}"),
                domain.to_owned(),
            ],
            ndots: 5,
        }));
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
    let mut objects = manifest::objects(cluster, base, out);
    objects.extend(ingress::objects(cluster));
    let workloads = workloads::plan(&objects, out);
    let placed = schedule::place(cluster, &net, &workloads.pods, out);
    if !schedule::within_node_budget(file, cluster, &placed, out) {
        return;
    }
    match net.cni {
        CniName::Calico => {
            calico::without_gateway(file, cluster, &net, &placed, out);
            calico::emit(file, cluster, &net, &placed);
        }
        CniName::Flannel => {
            flannel::emit(file, cluster, &net, &placed);
            if let Some(first) = workloads.policies.first() {
                out.push(
                    Diagnostic::warning(
                        Code::Unsupported,
                        cluster.name.span,
                        format!(
                            "cluster `{}` uses flannel, which does not enforce NetworkPolicy: its {} policies (`{}/{}` first) allow everything, as on a real flannel cluster",
                            cluster.name.value,
                            workloads.policies.len(),
                            first.namespace,
                            first.name
                        ),
                    )
                    .label("NetworkPolicy not enforced")
                    .hint("use `cni: calico` (the default) to have them enforced"),
                );
            }
        }
    }
    let metallb = metallb::read(&objects, out);
    let lb_ips = metallb.allocate(&workloads.services, out);
    let proxy = proxy::plan(cluster, &net, &workloads.services, &lb_ips, &placed, out);
    let unannounced = metallb.announce(file, cluster, &net, &workloads.services, &lb_ips, &placed);
    out.extend(unannounced);
    cluster_dns(file, cluster, &proxy, &placed);
    ingress::emit(file, cluster, &net, &objects, &proxy, out);
    let policies = felix::Cluster::new(&workloads.policies, &workloads.namespaces, &placed);
    node_rules::install(file, cluster, &net, &proxy, &policies, out);
}
