//! The Kubernetes objects reachlab reads, as typed structs holding only the fields it uses:
//! `kind` and `metadata` of every object; the pod template of Deployments, ReplicaSets and
//! StatefulSets; the spec of Pods, of Services, of NetworkPolicies and of Ingresses; a
//! Namespace's labels; MetalLB's `IPAddressPool` and `L2Advertisement` (metallb.io/v1beta1).
//!
//! Objects are read from YAML values (a manifest's documents, or inline `objects:`) without
//! refusing any: unknown kinds and fields are ignored, and a field of another type than
//! Kubernetes gives it reads as absent — a nested object that is not a mapping reads as empty,
//! a list that is not a list as no items, a label value that is not a string as its JSON text.
//! What is wrong with an object is then reported by the planner ([`super::workloads`]).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::format::Span;
use crate::format::file::ProtoName;

/// The namespace of an object that names none.
pub(super) const DEFAULT_NAMESPACE: &str = "default";

/// An object of a cluster, and where it was written.
pub(super) struct Object {
    /// `kind`, empty when missing or not text.
    pub kind: String,
    /// `metadata.name`, empty when missing or not text.
    pub name: String,
    /// `metadata.namespace`, `default` when missing or not text.
    pub namespace: String,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// What reachlab reads of it, by kind.
    pub body: Body,
    /// Where the object was given: the manifest path, or the cluster's name for inline ones.
    pub span: Span,
    /// Where the object came from, in words (the manifest path, or "inline objects of …").
    pub source: String,
}

/// The kind-specific part of an [`Object`].
pub(super) enum Body {
    /// A Deployment, ReplicaSet or StatefulSet.
    Workload(WorkloadSpec),
    /// A Pod: its metadata and spec, the same shape as a pod template.
    Pod(PodTemplate),
    /// A Service's spec.
    Service(ServiceSpec),
    /// An Ingress: its annotations and spec.
    Ingress(Ingress),
    /// A NetworkPolicy's spec (networking.k8s.io/v1).
    NetworkPolicy(NetworkPolicySpec),
    /// A Namespace, with its labels.
    Namespace(BTreeMap<String, String>),
    /// MetalLB's `IPAddressPool`.
    AddressPool(AddressPoolSpec),
    /// MetalLB's `L2Advertisement`.
    L2Advertisement(L2AdvertisementSpec),
    /// An object without a `kind`.
    NoKind,
    /// Any other kind (ConfigMap, …), which reachlab does not model.
    Other,
}

impl Object {
    /// Reads `value` (an object as written) given at `span` in `source`.
    pub fn read(value: &Value, span: Span, source: &str) -> Self {
        let head: Head = mapping_of(value);
        let kind = head.kind.unwrap_or_default();
        let body = match kind.as_str() {
            "Deployment" | "ReplicaSet" | "StatefulSet" => {
                Body::Workload(mapping_of::<Workload>(value).spec)
            }
            "Pod" => Body::Pod(mapping_of(value)),
            "Service" => Body::Service(mapping_of::<Service>(value).spec),
            "Ingress" => Body::Ingress(mapping_of(value)),
            "NetworkPolicy" => Body::NetworkPolicy(mapping_of::<NetworkPolicy>(value).spec),
            "Namespace" => Body::Namespace(head.metadata.labels.clone()),
            "IPAddressPool" => Body::AddressPool(mapping_of::<AddressPool>(value).spec),
            "L2Advertisement" => Body::L2Advertisement(mapping_of::<L2Advertisement>(value).spec),
            "" => Body::NoKind,
            _ => Body::Other,
        };
        Self {
            kind,
            name: head.metadata.name.unwrap_or_default(),
            namespace: head
                .metadata
                .namespace
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            annotations: head.metadata.annotations,
            body,
            span,
            source: source.to_owned(),
        }
    }
}

/// What every object has.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Head {
    #[serde(deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "mapping")]
    metadata: Metadata,
}

/// `metadata`, of an object or of a pod template.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Metadata {
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    /// `metadata.namespace`; absent means `default`, as kubectl applies it.
    #[serde(deserialize_with = "lenient")]
    pub namespace: Option<String>,
    #[serde(deserialize_with = "labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "labels")]
    pub annotations: BTreeMap<String, String>,
}

/// A Deployment, ReplicaSet or StatefulSet.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Workload {
    #[serde(deserialize_with = "mapping")]
    spec: WorkloadSpec,
}

/// The spec of a Deployment, ReplicaSet or StatefulSet.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct WorkloadSpec {
    /// How many pods (Kubernetes' default, 1, when absent).
    #[serde(deserialize_with = "lenient")]
    pub replicas: Option<u64>,
    #[serde(deserialize_with = "mapping")]
    pub template: PodTemplate,
}

/// A pod template, or a Pod.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct PodTemplate {
    #[serde(deserialize_with = "mapping")]
    pub metadata: Metadata,
    #[serde(deserialize_with = "mapping")]
    pub spec: PodSpec,
}

/// A pod's spec.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodSpec {
    #[serde(deserialize_with = "lenient")]
    pub node_name: Option<String>,
    #[serde(deserialize_with = "labels")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(deserialize_with = "mappings")]
    pub containers: Vec<Container>,
}

/// A container of a pod: only its ports matter.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Container {
    #[serde(deserialize_with = "mappings")]
    pub ports: Vec<ContainerPort>,
}

/// A port a container declares.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ContainerPort {
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub container_port: Option<u16>,
    #[serde(deserialize_with = "lenient")]
    pub protocol: Option<String>,
}

/// A Service.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Service {
    #[serde(deserialize_with = "mapping")]
    spec: ServiceSpec,
}

/// A Service's spec.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServiceSpec {
    /// `ClusterIP` (the default), `NodePort` or `LoadBalancer`.
    #[serde(deserialize_with = "lenient")]
    pub r#type: Option<String>,
    /// A pinned ClusterIP, or `None` for a headless Service.
    #[serde(rename = "clusterIP", deserialize_with = "lenient")]
    pub cluster_ip: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub external_traffic_policy: Option<String>,
    /// Addresses outside the cluster routed to its nodes, which kube-proxy captures like the
    /// ClusterIP (`spec.externalIPs`).
    #[serde(rename = "externalIPs", deserialize_with = "lenient")]
    pub external_ips: Vec<String>,
    #[serde(deserialize_with = "labels")]
    pub selector: BTreeMap<String, String>,
    #[serde(deserialize_with = "mappings")]
    pub ports: Vec<ServicePort>,
    /// The address a LoadBalancer Service asks for (deprecated since Kubernetes 1.24, still
    /// honoured by MetalLB).
    #[serde(rename = "loadBalancerIP", deserialize_with = "lenient")]
    pub load_balancer_ip: Option<String>,
    /// The sources kube-proxy lets reach the load balancer's address.
    #[serde(deserialize_with = "lenient")]
    pub load_balancer_source_ranges: Vec<String>,
    /// Set: a load balancer of that class serves it, not MetalLB (started without
    /// `--lb-class`).
    #[serde(deserialize_with = "lenient")]
    pub load_balancer_class: Option<String>,
    /// `false`: a LoadBalancer Service without nodePorts (default true).
    #[serde(deserialize_with = "lenient")]
    pub allocate_load_balancer_node_ports: Option<bool>,
    /// `None` (the default) or `ClientIP`.
    #[serde(deserialize_with = "lenient")]
    pub session_affinity: Option<String>,
    #[serde(deserialize_with = "optional_mapping")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
}

/// A Service's `sessionAffinityConfig`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct SessionAffinityConfig {
    #[serde(rename = "clientIP", deserialize_with = "mapping")]
    pub client_ip: ClientIpConfig,
}

/// `sessionAffinityConfig.clientIP`.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ClientIpConfig {
    /// As written (any type: the planner says what is wrong with it).
    #[serde(deserialize_with = "lenient")]
    pub timeout_seconds: Option<Value>,
}

/// A port of a Service.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServicePort {
    /// The port's name (required when a Service has several).
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub port: Option<u16>,
    #[serde(deserialize_with = "lenient")]
    pub target_port: Option<IntOrString>,
    #[serde(deserialize_with = "lenient")]
    pub node_port: Option<u16>,
    #[serde(deserialize_with = "lenient")]
    pub protocol: Option<String>,
}

/// MetalLB's `IPAddressPool`.
#[derive(Default, Deserialize)]
#[serde(default)]
struct AddressPool {
    #[serde(deserialize_with = "mapping")]
    spec: AddressPoolSpec,
}

/// An `IPAddressPool`'s spec.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct AddressPoolSpec {
    /// CIDRs (`192.168.10.0/24`) and ranges (`192.168.9.1-192.168.9.5`).
    #[serde(deserialize_with = "lenient")]
    pub addresses: Vec<String>,
    /// Whether Services without a request get addresses from it (default true).
    #[serde(deserialize_with = "lenient")]
    pub auto_assign: Option<bool>,
    /// Skip addresses ending in .0 and .255 (default false).
    #[serde(rename = "avoidBuggyIPs", deserialize_with = "lenient")]
    pub avoid_buggy_ips: Option<bool>,
}

/// MetalLB's `L2Advertisement`.
#[derive(Default, Deserialize)]
#[serde(default)]
struct L2Advertisement {
    #[serde(deserialize_with = "mapping")]
    spec: L2AdvertisementSpec,
}

/// An `L2Advertisement`'s spec: which pools it announces (every pool when none is named), from
/// which nodes and through which interfaces (all when none).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct L2AdvertisementSpec {
    #[serde(deserialize_with = "lenient")]
    pub ip_address_pools: Vec<String>,
    #[serde(deserialize_with = "mappings")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    #[serde(deserialize_with = "mappings")]
    pub node_selectors: Vec<LabelSelector>,
    #[serde(deserialize_with = "lenient")]
    pub interfaces: Vec<String>,
}

/// An Ingress (networking.k8s.io/v1).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Ingress {
    #[serde(deserialize_with = "mapping")]
    pub metadata: Metadata,
    #[serde(deserialize_with = "mapping")]
    pub spec: IngressSpec,
}

/// An Ingress's spec.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct IngressSpec {
    #[serde(deserialize_with = "lenient")]
    pub ingress_class_name: Option<String>,
    #[serde(deserialize_with = "mapping")]
    pub default_backend: IngressBackend,
    #[serde(deserialize_with = "mappings")]
    pub rules: Vec<IngressRule>,
}

/// A rule of an Ingress: a host (every host when absent) and its paths.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IngressRule {
    #[serde(deserialize_with = "lenient")]
    pub host: Option<String>,
    #[serde(deserialize_with = "mapping")]
    pub http: IngressHttp,
}

/// `http:` of a rule.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IngressHttp {
    #[serde(deserialize_with = "mappings")]
    pub paths: Vec<IngressPath>,
}

/// A path of a rule.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct IngressPath {
    #[serde(deserialize_with = "lenient")]
    pub path: Option<String>,
    /// `Exact`, `Prefix` or `ImplementationSpecific`.
    #[serde(deserialize_with = "lenient")]
    pub path_type: Option<String>,
    #[serde(deserialize_with = "mapping")]
    pub backend: IngressBackend,
}

/// A backend of an Ingress: a Service and one of its ports (by number or by name).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IngressBackend {
    #[serde(deserialize_with = "mapping")]
    pub service: IngressServiceBackend,
}

/// `backend.service`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IngressServiceBackend {
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(deserialize_with = "mapping")]
    pub port: IngressServicePort,
}

/// `backend.service.port`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IngressServicePort {
    #[serde(deserialize_with = "lenient")]
    pub number: Option<u16>,
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
}

/// A NetworkPolicy.
#[derive(Default, Deserialize)]
#[serde(default)]
struct NetworkPolicy {
    #[serde(deserialize_with = "mapping")]
    spec: NetworkPolicySpec,
}

/// A NetworkPolicy's spec. Lists absent and lists empty read alike: the API documents the
/// same meaning for both (`ingress`, `egress`: no rules; `from`, `to`, `ports`: every peer or
/// port).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NetworkPolicySpec {
    /// The pods the policy applies to; `{}` (or absent) selects every pod of the namespace.
    #[serde(deserialize_with = "mapping")]
    pub pod_selector: LabelSelector,
    /// `Ingress`, `Egress`; none written means the API's default.
    #[serde(deserialize_with = "lenient")]
    pub policy_types: Vec<String>,
    #[serde(deserialize_with = "mappings")]
    pub ingress: Vec<PolicyRule>,
    #[serde(deserialize_with = "mappings")]
    pub egress: Vec<PolicyRule>,
}

/// An ingress rule (`from`) or an egress rule (`to`): its peers and ports.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct PolicyRule {
    #[serde(deserialize_with = "mappings")]
    pub from: Vec<PolicyPeer>,
    #[serde(deserialize_with = "mappings")]
    pub to: Vec<PolicyPeer>,
    #[serde(deserialize_with = "mappings")]
    pub ports: Vec<PolicyPort>,
}

/// A peer of a rule: pods by label (in the policy's namespace, or in the namespaces
/// `namespaceSelector` picks), or addresses. An absent selector differs from `{}`.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PolicyPeer {
    #[serde(deserialize_with = "optional_mapping")]
    pub pod_selector: Option<LabelSelector>,
    #[serde(deserialize_with = "optional_mapping")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(deserialize_with = "optional_mapping")]
    pub ip_block: Option<IpBlock>,
}

/// `ipBlock`: a CIDR and the CIDRs inside it that are excepted.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct IpBlock {
    #[serde(deserialize_with = "lenient")]
    pub cidr: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub except: Vec<String>,
}

/// A port of a rule: a protocol (TCP when absent), a number or a container port's name
/// (every port when absent), and with a number an optional `endPort`.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PolicyPort {
    #[serde(deserialize_with = "lenient")]
    pub protocol: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub port: Option<IntOrString>,
    #[serde(deserialize_with = "lenient")]
    pub end_port: Option<u16>,
}

/// A label selector (`matchLabels` and `matchExpressions`, all of which must hold).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct LabelSelector {
    #[serde(deserialize_with = "labels")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "mappings")]
    pub match_expressions: Vec<Requirement>,
}

/// One of `matchExpressions`: `key`, `operator` (In, NotIn, Exists, DoesNotExist), `values`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Requirement {
    #[serde(deserialize_with = "lenient")]
    pub key: String,
    #[serde(deserialize_with = "lenient")]
    pub operator: String,
    #[serde(deserialize_with = "lenient")]
    pub values: Vec<String>,
}

/// Kubernetes' IntOrString, as `targetPort` holds it: a port number, or a container port's
/// name (or a number written as text).
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum IntOrString {
    Int(u16),
    String(String),
}

/// The protocol a `protocol:` field names: UDP when it says `UDP`, TCP otherwise
/// (Kubernetes' default; SCTP is not modelled).
pub(super) fn protocol(field: Option<&str>) -> ProtoName {
    if field == Some("UDP") {
        ProtoName::Udp
    } else {
        ProtoName::Tcp
    }
}

/// Reads `value` as `T` when it is a mapping; anything else reads as `T::default()`, as a
/// field path through it finds nothing (serde would read a list positionally).
fn mapping_of<T: DeserializeOwned + Default>(value: &Value) -> T {
    if value.is_object() {
        T::deserialize(value).unwrap_or_default()
    } else {
        T::default()
    }
}

/// A field read as `T`, or as `T::default()` when the manifest holds another type there.
fn lenient<'de, D, T>(field: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(T::deserialize(Value::deserialize(field)?).unwrap_or_default())
}

/// A nested object read with [`mapping_of`].
fn mapping<'de, D, T>(field: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(mapping_of(&Value::deserialize(field)?))
}

/// A nested object that may be absent: `Some` when the field holds a mapping (`{}` included),
/// `None` when it is absent, null or of another type.
fn optional_mapping<'de, D, T>(field: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let value = Value::deserialize(field)?;
    Ok(value.is_object().then(|| mapping_of(&value)))
}

/// A list of objects, each read with [`mapping_of`]; anything but a list reads as none.
fn mappings<'de, D, T>(field: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(match Value::deserialize(field)? {
        Value::Array(items) => items.iter().map(mapping_of).collect(),
        _ => Vec::new(),
    })
}

/// Labels (or a selector): a mapping of text, where a value that is not text reads as its
/// JSON text (`1`, `true`); anything but a mapping reads as no labels.
fn labels<'de, D>(field: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Value::deserialize(field)? {
        Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Object {
        let value: Value = serde_json::from_str(json).unwrap();
        Object::read(&value, Span::default(), "test")
    }

    #[test]
    fn fields_of_another_type_read_as_absent() {
        let object = read(
            r#"{"kind": "Service", "metadata": {"name": 7}, "spec": {"type": 3,
                "selector": {"app": "web", "n": 1, "b": true},
                "ports": [{"port": 70000}, "x", {"port": 80, "targetPort": "http"},
                          {"port": 81, "targetPort": 8080, "protocol": "UDP"}]}}"#,
        );
        assert_eq!(
            (object.kind.as_str(), object.name.as_str()),
            ("Service", "")
        );
        let Body::Service(spec) = object.body else {
            panic!("a Service");
        };
        assert_eq!(spec.r#type, None);
        assert_eq!(spec.selector["n"], "1");
        assert_eq!(spec.selector["b"], "true");
        let ports: Vec<_> = spec.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, [None, None, Some(80), Some(81)]);
        assert!(matches!(&spec.ports[2].target_port, Some(IntOrString::String(s)) if s == "http"));
        assert!(matches!(
            spec.ports[3].target_port,
            Some(IntOrString::Int(8080))
        ));
        assert_eq!(protocol(spec.ports[3].protocol.as_deref()), ProtoName::Udp);
    }

    #[test]
    fn only_mappings_read_as_objects() {
        // serde would read a list into a struct by position; a field path finds nothing there.
        let object = read(r#"{"kind": "Deployment", "metadata": ["web"], "spec": [2]}"#);
        let Body::Workload(spec) = object.body else {
            panic!("a workload");
        };
        assert_eq!((object.name.as_str(), spec.replicas), ("", None));
        assert!(matches!(read(r#"["Pod"]"#).body, Body::NoKind));
        assert!(matches!(read(r#"{"kind": "ConfigMap"}"#).body, Body::Other));
    }

    #[test]
    fn an_ingress_reads_its_class_rules_and_backends() {
        let object = read(
            r#"{"kind": "Ingress", "metadata": {"name": "web",
                "annotations": {"kubernetes.io/ingress.class": "nginx"}},
                "spec": {"defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
                "rules": [{"host": "a.example", "http": {"paths": [
                    {"path": "/api", "pathType": "Exact",
                     "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}},
                    {"http": "x"}]}}"#,
        );
        let Body::Ingress(ingress) = object.body else {
            panic!("an Ingress");
        };
        assert_eq!(
            ingress.metadata.annotations["kubernetes.io/ingress.class"],
            "nginx"
        );
        let spec = &ingress.spec;
        assert_eq!(spec.ingress_class_name, None);
        assert_eq!(
            spec.default_backend.service.port.name.as_deref(),
            Some("http")
        );
        assert_eq!(spec.rules[0].host.as_deref(), Some("a.example"));
        let path = &spec.rules[0].http.paths[0];
        assert_eq!(
            (path.path.as_deref(), path.path_type.as_deref()),
            (Some("/api"), Some("Exact"))
        );
        assert_eq!(path.backend.service.port.number, Some(8080));
        assert!(spec.rules[1].http.paths.is_empty());
    }
}
