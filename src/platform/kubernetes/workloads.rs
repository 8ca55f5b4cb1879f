//! What a cluster's objects ask for: the pods to schedule (each Deployment, ReplicaSet and
//! StatefulSet replicated, each Pod as written), checked against the budgets
//! ([`MAX_REPLICAS`], [`MAX_PODS_PER_CLUSTER`]) before any of its pods is planned, the
//! Services kube-proxy implements, the NetworkPolicies Calico enforces ([`super::policy`]) and
//! the Namespaces' labels. Other kinds are reported as ignored.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::objects::{self, Body, IntOrString, Object, PodSpec, PodTemplate, ServiceSpec};
use super::policy::{self, PolicyPlan};
use super::{MAX_PODS_PER_CLUSTER, MAX_REPLICAS};
use crate::format::file::ProtoName;
use crate::format::{Code, Diagnostic, Span};

/// A pod to schedule.
pub(super) struct PodPlan {
    /// `<workload>-<index>`, or the Pod's name.
    pub name: String,
    /// The namespace of the workload or Pod.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The node the pod is pinned to (`nodeName`).
    pub node_name: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    /// The ports its containers declare.
    pub ports: Vec<PodPort>,
}

impl PodPlan {
    /// Whether the pod's labels include every label of `selector`.
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// A port a pod's container declares.
#[derive(Clone)]
pub(super) struct PodPort {
    pub name: Option<String>,
    pub port: u16,
    pub proto: ProtoName,
}

/// A Service to implement.
pub(super) struct ServicePlan {
    pub name: String,
    /// Its namespace: it selects pods of this namespace only.
    pub namespace: String,
    /// Where it was written.
    pub span: Span,
    /// Whether it opens nodePorts (type NodePort, or LoadBalancer unless
    /// `allocateLoadBalancerNodePorts: false`).
    pub node_port: bool,
    /// `type: LoadBalancer`: what it asks of the load balancer.
    pub load_balancer: Option<LoadBalancerRequest>,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
    /// `externalIPs`.
    pub external_ips: Vec<Ipv4Addr>,
    /// The ClusterIP the manifest pins, as written (`None` for a headless Service).
    pub cluster_ip: Option<String>,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
    /// `sessionAffinity: ClientIP`: its `timeoutSeconds` (`None` without affinity).
    pub affinity: Option<u32>,
}

/// What a LoadBalancer Service asks for.
pub(super) struct LoadBalancerRequest {
    /// The addresses it asks for: MetalLB's `metallb.io/loadBalancerIPs` annotation (or its
    /// older `metallb.universe.tf/` spelling), else `spec.loadBalancerIP`; as written.
    pub ips: Vec<String>,
    /// The pool it asks for (`metallb.io/address-pool`).
    pub pool: Option<String>,
    /// `loadBalancerSourceRanges`, as written.
    pub source_ranges: Vec<String>,
    /// `loadBalancerClass`: another load balancer's Service, which MetalLB leaves alone.
    pub class: Option<String>,
}

/// The value of MetalLB's annotation `key` (`metallb.io/KEY`, or `metallb.universe.tf/KEY`).
fn metallb_annotation<'o>(object: &'o Object, key: &str) -> Option<&'o String> {
    ["metallb.io", "metallb.universe.tf"]
        .iter()
        .find_map(|prefix| object.annotations.get(&format!("{prefix}/{key}")))
}

/// A port of a Service.
pub(super) struct ServicePort {
    /// The port's name, empty when it has none.
    pub name: String,
    pub port: u16,
    /// `targetPort`; absent means the Service port.
    target: Option<IntOrString>,
    pub node_port: Option<u16>,
    pub proto: ProtoName,
}

impl ServicePort {
    /// The port of `pod` traffic to this Service port goes to: `targetPort` as a number, or
    /// the pod's container port of that name; the Service port when neither is found.
    pub fn target_on(&self, pod: &PodPlan) -> u16 {
        match &self.target {
            Some(IntOrString::Int(port)) => *port,
            Some(IntOrString::String(text)) => text
                .parse()
                .ok()
                .or_else(|| {
                    pod.ports
                        .iter()
                        .find(|p| p.name.as_deref() == Some(text))
                        .map(|p| p.port)
                })
                .unwrap_or(self.port),
            None => self.port,
        }
    }
}

/// The pods and Services a cluster's objects ask for, in the order they were written.
#[derive(Default)]
pub(super) struct Workloads {
    pub pods: Vec<PodPlan>,
    pub services: Vec<ServicePlan>,
    pub policies: Vec<PolicyPlan>,
    /// Each Namespace object's name and labels.
    pub namespaces: Vec<(String, BTreeMap<String, String>)>,
}

/// Reads the objects into pods and Services; other kinds are reported as ignored.
pub(super) fn plan(objects: &[Object], out: &mut Vec<Diagnostic>) -> Workloads {
    let mut planned = Workloads::default();
    for object in objects {
        match &object.body {
            Body::Workload(spec) => {
                let replicas = spec.replicas.unwrap_or(1);
                replicate(object, &spec.template, replicas, &mut planned.pods, out);
            }
            Body::Pod(pod) => replicate(object, pod, 1, &mut planned.pods, out),
            Body::Service(spec) => planned.services.push(service(object, spec, out)),
            Body::NetworkPolicy(spec) => planned.policies.extend(policy::plan(object, spec, out)),
            Body::Namespace(labels) => planned
                .namespaces
                .push((object.name.clone(), labels.clone())),
            Body::NoKind => out.push(
                Diagnostic::warning(
                    Code::Unsupported,
                    object.span,
                    format!("an object in {} has no `kind`; ignored", object.source),
                )
                .label("not a Kubernetes object"),
            ),
            // Served by the ingress controller, or reported without one (`super::ingress`).
            Body::Ingress(_) => {}
            // Read by `super::metallb`.
            Body::AddressPool(_) | Body::L2Advertisement(_) => {}
            Body::Other => out.push(ignored(object)),
        }
    }
    planned
}

/// Adds `replicas` pods of `template` for `object` (named `<name>-<index>` for a workload,
/// as the Pod for a Pod), or the error when they exceed the budgets.
fn replicate(
    object: &Object,
    template: &PodTemplate,
    replicas: u64,
    pods: &mut Vec<PodPlan>,
    out: &mut Vec<Diagnostic>,
) {
    let (kind, name) = (&object.kind, &object.name);
    if let Some(d) = over_budget(
        kind,
        name,
        &object.source,
        object.span,
        replicas,
        pods.len(),
    ) {
        out.push(d);
        return;
    }
    let spec = &template.spec;
    let ports = pod_ports(spec);
    let is_pod = matches!(object.body, Body::Pod(_));
    for i in 0..replicas {
        pods.push(PodPlan {
            name: if is_pod {
                name.clone()
            } else {
                format!("{name}-{i}")
            },
            namespace: object.namespace.clone(),
            labels: template.metadata.labels.clone(),
            node_name: spec.node_name.clone(),
            node_selector: spec.node_selector.clone(),
            ports: ports.clone(),
        });
    }
}

/// The ports the containers of a pod declare, in order; ports without a valid number are
/// skipped.
fn pod_ports(spec: &PodSpec) -> Vec<PodPort> {
    spec.containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(|p| {
            Some(PodPort {
                name: p.name.clone(),
                port: p.container_port?,
                proto: objects::protocol(p.protocol.as_deref()),
            })
        })
        .collect()
}

/// The Service `object` with `spec`; an error for each port without a number, a warning
/// when its type is modelled as NodePort.
fn service(object: &Object, spec: &ServiceSpec, out: &mut Vec<Diagnostic>) -> ServicePlan {
    let (name, source) = (&object.name, &object.source);
    let mut ports = Vec::new();
    for p in &spec.ports {
        let Some(port) = p.port else {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    object.span,
                    format!("Service `{name}` ({source}) has a port without a number"),
                )
                .label("port: ?")
                .hint("every Service port needs `port:`"),
            );
            continue;
        };
        ports.push(ServicePort {
            name: p.name.clone().unwrap_or_default(),
            port,
            target: p.target_port.clone(),
            node_port: p.node_port,
            proto: objects::protocol(p.protocol.as_deref()),
        });
    }
    let kind = spec.r#type.as_deref().unwrap_or("ClusterIP");
    if !matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer") {
        out.push(
            Diagnostic::warning(
                Code::Unsupported,
                object.span,
                format!("Service `{name}` ({source}) has type {kind}; it is modelled as NodePort"),
            )
            .label("approximated")
            .hint("reachlab models the types ClusterIP, NodePort and LoadBalancer"),
        );
    }
    let load_balancer = (kind == "LoadBalancer").then(|| LoadBalancerRequest {
        ips: match metallb_annotation(object, "loadBalancerIPs") {
            Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
            None => spec.load_balancer_ip.iter().cloned().collect(),
        },
        pool: metallb_annotation(object, "address-pool").cloned(),
        source_ranges: spec.load_balancer_source_ranges.clone(),
        class: spec.load_balancer_class.clone(),
    });
    ServicePlan {
        name: name.clone(),
        namespace: object.namespace.clone(),
        span: object.span,
        node_port: match kind {
            "ClusterIP" => false,
            "LoadBalancer" => spec.allocate_load_balancer_node_ports != Some(false),
            _ => true,
        },
        load_balancer,
        local: spec.external_traffic_policy.as_deref() == Some("Local"),
        external_ips: external_ips(object, spec, out),
        cluster_ip: spec.cluster_ip.clone(),
        selector: spec.selector.clone(),
        ports,
        affinity: affinity(object, spec, out),
    }
}

/// The default `sessionAffinityConfig.clientIP.timeoutSeconds` (three hours), and the most
/// the API server accepts (a day): `DefaultClientIPServiceAffinitySeconds` and
/// `MaxClientIPServiceAffinitySeconds` (docs/platform-semantics.md, "Kubernetes").
const AFFINITY_DEFAULT: u32 = 10800;
const AFFINITY_MAX: u32 = 86400;

/// The Service's `sessionAffinity: ClientIP` timeout, `None` without affinity; an error for
/// what the API server refuses (another affinity, a timeout outside 1..=86400, a config
/// without ClientIP), and the Service is then planned without affinity.
fn affinity(object: &Object, spec: &ServiceSpec, out: &mut Vec<Diagnostic>) -> Option<u32> {
    let (name, source) = (&object.name, &object.source);
    let error = |message: String, label: &str, hint: &str| {
        Diagnostic::error(Code::BadValue, object.span, message)
            .label(label)
            .hint(hint)
    };
    let config = spec.session_affinity_config.as_ref();
    match spec.session_affinity.as_deref() {
        None | Some("None") => {
            if config.is_some() {
                out.push(error(
                    format!("Service `{name}` ({source}) has sessionAffinityConfig without sessionAffinity: ClientIP"),
                    "sessionAffinityConfig",
                    "the API server refuses it (\"must not be set when session affinity is None\"): set sessionAffinity: ClientIP, or remove it",
                ));
            }
            None
        }
        Some("ClientIP") => {
            let written = config.and_then(|c| c.client_ip.timeout_seconds.as_ref());
            let Some(value) = written else {
                return Some(AFFINITY_DEFAULT);
            };
            match value.as_u64().and_then(|t| u32::try_from(t).ok()) {
                Some(t @ 1..=AFFINITY_MAX) => Some(t),
                _ => {
                    out.push(error(
                        format!("sessionAffinityConfig.clientIP.timeoutSeconds {value} of Service `{name}` ({source}) is not from 1 to {AFFINITY_MAX}"),
                        "bad timeoutSeconds",
                        "the API server accepts 1 to 86400 seconds (the default is 10800)",
                    ));
                    None
                }
            }
        }
        Some(other) => {
            out.push(error(
                format!("Service `{name}` ({source}) has sessionAffinity `{other}`"),
                "bad sessionAffinity",
                "write None or ClientIP",
            ));
            None
        }
    }
}

/// The Service's `externalIPs`; an error for each that is not an IPv4 address.
fn external_ips(object: &Object, spec: &ServiceSpec, out: &mut Vec<Diagnostic>) -> Vec<Ipv4Addr> {
    let mut ips = Vec::new();
    for text in &spec.external_ips {
        match text.parse() {
            Ok(ip) => ips.push(ip),
            Err(_) => out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    object.span,
                    format!(
                        "externalIP `{text}` of Service `{}` ({}) is not an IPv4 address",
                        object.name, object.source
                    ),
                )
                .label("bad externalIP")
                .hint("write an address such as 192.0.2.10"),
            ),
        }
    }
    ips
}

/// The warning for an object of a kind reachlab does not model.
fn ignored(object: &Object) -> Diagnostic {
    let why =
        "reachlab models Deployments, Pods, Services, NetworkPolicies, Namespaces and Ingresses";
    Diagnostic::warning(
        Code::Unsupported,
        object.span,
        format!(
            "{} `{}` ({}) is ignored: {why}",
            object.kind, object.name, object.source
        ),
    )
    .label("ignored")
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
}
