//! Ingress through an ingress-nginx controller (docs/platform-semantics.md, "Kubernetes",
//! **Ingress**): the controller of the cluster's `ingress_controller:` and the routes it
//! builds from the Ingresses of its class.
//!
//! - `node_port` mode (ingress-nginx's bare-metal deploy manifest,
//!   `deploy/static/provider/baremetal/deploy.yaml`): the Deployment `ingress-nginx-controller`
//!   (one pod, container ports http 80, https 443, webhook 8443) and its Services
//!   `ingress-nginx-controller` (NodePort, http 80 and https 443) and
//!   `ingress-nginx-controller-admission` (ClusterIP 443 → webhook) in namespace
//!   `ingress-nginx`, added to the cluster's objects after the file's own ([`objects`]), so
//!   that the file's allocations do not move; the pod's port 80 is the proxy.
//! - `host_network` mode (`docs/deploy/baremetal.md`, "Via the host network"): the proxy
//!   listens on port 80 of each of its nodes (a DaemonSet, which the control plane's taint
//!   repels).
//! - The proxy ([`routes`]) is nginx as ingress-nginx configures it
//!   (`internal/ingress/controller/controller.go` `createServers`/`getBackendServers`,
//!   `location.go` `updateServerLocations`): a server per rule host, rules without a host in
//!   the default server `_`; Prefix `/p` becomes the locations `/p/` and `= /p`, Exact `= /p`,
//!   ImplementationSpecific nginx's own prefix `/p`; each location proxies to the endpoints of
//!   the Service port (pod IP : targetPort), or to its ClusterIP with the annotation
//!   `nginx.ingress.kubernetes.io/service-upstream: "true"`; a Service without ready endpoints
//!   answers 503 (`rootfs/etc/nginx/lua/balancer.lua`), a request no location takes is
//!   answered 404 by the default backend.
//! - An Ingress belongs to a controller by `spec.ingressClassName` or, without it, the
//!   annotation `kubernetes.io/ingress.class`; the others are reported as ignored.

use serde_json::Value;

use super::network::PodNetwork;
use super::objects::{Body, Ingress, IngressBackend, Object};
use super::proxy::{PortRef, Proxy};
use super::{ClusterSpec, IngressControllerSpec, IngressModeName};
use crate::format::file::{HttpRouteSpec, HttpSpec, ListenSpec, PathMatchName, TopologyFile};
use crate::format::{Code, Diagnostic, Located, Span};
use crate::model::proxy_error_page;

/// The class ingress-nginx serves by default (`--ingress-class=nginx`).
const DEFAULT_CLASS: &str = "nginx";
/// The name of the deploy manifest's controller Deployment.
const NAME: &str = "ingress-nginx-controller";
/// The deprecated annotation that names an Ingress's class.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The annotation that sends requests to the ClusterIP instead of the endpoints.
const SERVICE_UPSTREAM: &str = "nginx.ingress.kubernetes.io/service-upstream";

/// The controller's class.
fn class(spec: &IngressControllerSpec) -> &str {
    spec.class.as_deref().unwrap_or(DEFAULT_CLASS)
}

/// The objects of ingress-nginx's bare-metal deploy manifest (v1.15.1) that shape the
/// network, as it writes them: `{node_name}` and the `{..._node_port}` lines are filled in.
const DEPLOY_MANIFEST: &str = "
kind: Service
metadata: { name: ingress-nginx-controller, namespace: ingress-nginx }
spec:
  type: NodePort
  selector:
    app.kubernetes.io/component: controller
    app.kubernetes.io/instance: ingress-nginx
    app.kubernetes.io/name: ingress-nginx
  ports:
    - { name: http, port: 80, protocol: TCP, targetPort: http{http_node_port} }
    - { name: https, port: 443, protocol: TCP, targetPort: https{https_node_port} }
---
kind: Service
metadata: { name: ingress-nginx-controller-admission, namespace: ingress-nginx }
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/component: controller
    app.kubernetes.io/instance: ingress-nginx
    app.kubernetes.io/name: ingress-nginx
  ports: [{ name: https-webhook, port: 443, targetPort: webhook }]
---
kind: Deployment
metadata: { name: ingress-nginx-controller, namespace: ingress-nginx }
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app.kubernetes.io/component: controller
        app.kubernetes.io/instance: ingress-nginx
        app.kubernetes.io/name: ingress-nginx
    spec:
      {node_name}
      containers:
        - name: controller
          ports:
            - { name: http, containerPort: 80, protocol: TCP }
            - { name: https, containerPort: 443, protocol: TCP }
            - { name: webhook, containerPort: 8443, protocol: TCP }
";

/// The objects the deploy manifest adds in `node_port` mode (none in `host_network` mode):
/// the controller's Deployment (pinned to the first of `nodes:` when given) and Services.
pub(super) fn objects(cluster: &ClusterSpec) -> Vec<Object> {
    let Some(spec) = &cluster.ingress_controller else {
        return Vec::new();
    };
    if spec.value.mode.unwrap_or_default() != IngressModeName::NodePort {
        return Vec::new();
    }
    let ports = spec.value.node_ports.clone().unwrap_or_default();
    let node_port = |p: Option<u16>| p.map(|p| format!(", nodePort: {p}")).unwrap_or_default();
    // A node name is a name of the file, which the format keeps to DNS-label characters; it
    // is quoted all the same.
    let node_name = spec
        .value
        .nodes
        .first()
        .map(|n| format!("nodeName: {:?}", n.value))
        .unwrap_or_default();
    let text = DEPLOY_MANIFEST
        .replace("{http_node_port}", &node_port(ports.http))
        .replace("{https_node_port}", &node_port(ports.https))
        .replace("{node_name}", &node_name);
    let source = format!(
        "the ingress-nginx controller of cluster `{}`",
        cluster.name.value
    );
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_default()
        .iter()
        .map(|v| Object::read(v, spec.span, &source))
        .collect()
}

/// The controller's pod in `node_port` mode: the Deployment's first pod.
fn pod_name() -> String {
    format!("{NAME}-0")
}

/// Installs the proxy on the controller's pod or nodes, with the routes of the Ingresses of
/// its class; reports every other Ingress as ignored.
pub(super) fn emit(
    file: &mut TopologyFile,
    cluster: &ClusterSpec,
    net: &PodNetwork,
    objects: &[Object],
    proxy: &Proxy,
    out: &mut Vec<Diagnostic>,
) {
    let ingresses: Vec<(&Object, &Ingress)> = objects
        .iter()
        .filter_map(|o| match &o.body {
            Body::Ingress(i) => Some((o, i)),
            _ => None,
        })
        .collect();
    let Some(spec) = &cluster.ingress_controller else {
        for (object, ingress) in &ingresses {
            out.push(ignored(object, ingress, None));
        }
        return;
    };
    let class = class(&spec.value);
    let mut served = Vec::new();
    for (object, ingress) in &ingresses {
        if ingress_class(ingress) == Some(class) {
            served.push((*object, *ingress));
        } else {
            out.push(ignored(object, ingress, Some(class)));
        }
    }
    let http = HttpSpec {
        status: Some(Located::at(404, spec.span)),
        body: proxy_error_page(404),
        content_type: Some("text/html".into()),
        routes: routes(&served, proxy, spec.span, out),
        ..HttpSpec::default()
    };
    match spec.value.mode.unwrap_or_default() {
        IngressModeName::NodePort => {
            let name = pod_name();
            let Some(pod) = file.nodes.iter_mut().find(|n| n.name.value == name) else {
                return; // Pending: the scheduler said why.
            };
            if let Some(l) = pod.listen.iter_mut().find(|l| l.port.value == 80) {
                l.http = Some(Located::at(http, spec.span));
            }
        }
        IngressModeName::HostNetwork => {
            for node in host_network_nodes(cluster, net, &spec.value) {
                let Some(n) = file.nodes.iter_mut().find(|n| n.name.value == node) else {
                    continue;
                };
                n.listen.push(ListenSpec {
                    port: Located::at(80, spec.span),
                    http: Some(Located::at(http.clone(), spec.span)),
                    ..ListenSpec::default()
                });
            }
        }
    }
}

/// The nodes a host-network controller runs on: `nodes:`, or every node that runs workloads.
fn host_network_nodes(
    cluster: &ClusterSpec,
    net: &PodNetwork,
    spec: &IngressControllerSpec,
) -> Vec<String> {
    if !spec.nodes.is_empty() {
        return spec.nodes.iter().map(|n| n.value.clone()).collect();
    }
    net.nodes()
        .map(|(_, n)| n.name.clone())
        .filter(|n| !cluster.control_plane.iter().any(|c| &c.value == n))
        .collect()
}

/// The class an Ingress names: `spec.ingressClassName`, else its annotation (ingress-nginx
/// `internal/ingress/controller/store/store.go`, `GetIngressClass`).
fn ingress_class(ingress: &Ingress) -> Option<&str> {
    ingress.spec.ingress_class_name.as_deref().or(ingress
        .metadata
        .annotations
        .get(CLASS_ANNOTATION)
        .map(String::as_str))
}

/// The warning for an Ingress no controller serves: none is installed (`controller` is
/// `None`), or it serves another class.
fn ignored(object: &Object, ingress: &Ingress, controller: Option<&str>) -> Diagnostic {
    let why = match (controller, ingress_class(ingress)) {
        (None, _) => {
            "an Ingress needs an ingress controller, and the cluster has no `ingress_controller:`"
                .to_owned()
        }
        (Some(c), None) => format!(
            "it names no class, and the controller serves class `{c}` only (ingress-nginx ignores Ingresses without a class unless started with --watch-ingress-without-class)"
        ),
        (Some(c), Some(other)) => {
            format!("its class is `{other}`, and the controller serves class `{c}`")
        }
    };
    Diagnostic::warning(
        Code::Unsupported,
        object.span,
        format!(
            "Ingress `{}` ({}) is ignored: {why}",
            object.name, object.source
        ),
    )
    .label("ignored")
    .hint("install a controller with `ingress_controller: { class: CLASS }` in the cluster")
}

/// A server of the proxy being built: its host (`None`: the default server `_`), and the
/// Ingress that created it (whose `defaultBackend` becomes its `/`).
struct Server<'a> {
    host: Option<String>,
    creator: (&'a Object, &'a Ingress),
}

/// The proxy's routes for the `served` Ingresses, in the order nginx would consult them.
fn routes(
    served: &[(&Object, &Ingress)],
    proxy: &Proxy,
    span: Span,
    out: &mut Vec<Diagnostic>,
) -> Vec<HttpRouteSpec> {
    let mut servers: Vec<Server> = Vec::new();
    let mut routes: Vec<HttpRouteSpec> = Vec::new();
    for &(object, ingress) in served {
        for rule in &ingress.spec.rules {
            let host = rule.host.clone().filter(|h| !h.is_empty());
            if !servers.iter().any(|s| s.host == host) {
                servers.push(Server {
                    host: host.clone(),
                    creator: (object, ingress),
                });
            }
            for path in &rule.http.paths {
                let written = path.path.clone().filter(|p| !p.is_empty());
                let written = written.as_deref().unwrap_or("/");
                let upstreams = upstreams(object, ingress, &path.backend, proxy, out);
                let note = format!(
                    "Ingress `{}/{}`: {}{written} ({}) → Service `{}`",
                    object.namespace,
                    object.name,
                    host.as_deref().unwrap_or("any host "),
                    path.path_type
                        .as_deref()
                        .unwrap_or("ImplementationSpecific"),
                    path.backend.service.name.as_deref().unwrap_or("?")
                );
                for (location, kind) in locations(written, path.path_type.as_deref()) {
                    routes.push(route(&host, location, kind, &upstreams, &note, span));
                }
            }
        }
    }
    default_backends(served, &servers, &mut routes, proxy, span, out);
    routes
}

/// The nginx locations of a path of `path_type` (`updateServerLocations`): Prefix `/p` is
/// `/p/` and `= /p`, `/` stays `/`; Exact is `= /p`; ImplementationSpecific (and a missing
/// type) is nginx's prefix `/p`.
fn locations(path: &str, path_type: Option<&str>) -> Vec<(String, PathMatchName)> {
    match path_type {
        Some("Exact") => vec![(path.to_owned(), PathMatchName::Exact)],
        Some("Prefix") if path != "/" => {
            let prefix = if path.ends_with('/') {
                path.to_owned()
            } else {
                format!("{path}/")
            };
            vec![
                (prefix, PathMatchName::Prefix),
                (path.to_owned(), PathMatchName::Exact),
            ]
        }
        _ => vec![(path.to_owned(), PathMatchName::Prefix)],
    }
}

fn route(
    host: &Option<String>,
    path: String,
    kind: PathMatchName,
    upstreams: &[String],
    note: &str,
    span: Span,
) -> HttpRouteSpec {
    HttpRouteSpec {
        host: host.clone(),
        path: Located::at(path, span),
        r#match: Some(kind),
        upstreams: upstreams
            .iter()
            .map(|u| Located::at(u.clone(), span))
            .collect(),
        note: Some(note.to_owned()),
    }
}

/// Each Ingress's `defaultBackend`: the `/` of the servers it created (after their own
/// locations, which win), and of the default server when it has no rules
/// (`createServers`).
fn default_backends(
    served: &[(&Object, &Ingress)],
    servers: &[Server],
    routes: &mut Vec<HttpRouteSpec>,
    proxy: &Proxy,
    span: Span,
    out: &mut Vec<Diagnostic>,
) {
    for &(object, ingress) in served {
        let backend = &ingress.spec.default_backend;
        if backend.service.name.is_none() {
            continue;
        }
        let upstreams = upstreams(object, ingress, backend, proxy, out);
        let note = format!(
            "defaultBackend of Ingress `{}/{}` → Service `{}`",
            object.namespace,
            object.name,
            backend.service.name.as_deref().unwrap_or("?")
        );
        let hosts: Vec<Option<String>> = if ingress.spec.rules.is_empty() {
            vec![None]
        } else {
            servers
                .iter()
                .filter(|s| std::ptr::eq(s.creator.0, object))
                .map(|s| s.host.clone())
                .collect()
        };
        for host in hosts {
            routes.push(route(
                &host,
                "/".into(),
                PathMatchName::Prefix,
                &upstreams,
                &note,
                span,
            ));
        }
    }
}

/// Where a backend's requests go, as `http://IP:PORT/`: the ready endpoints of the Service
/// port, or its ClusterIP with `service-upstream`; none (a warning) when the Service or the
/// port does not exist.
fn upstreams(
    object: &Object,
    ingress: &Ingress,
    backend: &IngressBackend,
    proxy: &Proxy,
    out: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let service = backend.service.name.as_deref().unwrap_or_default();
    let port = match (&backend.service.port.number, &backend.service.port.name) {
        (Some(n), _) => PortRef::Number(*n),
        (None, Some(name)) => PortRef::Name(name),
        (None, None) => PortRef::Number(0),
    };
    let Some(found) = proxy.backend(&object.namespace, service, &port) else {
        out.push(
            Diagnostic::warning(
                Code::UnknownReference,
                object.span,
                format!(
                    "Ingress `{}` ({}) sends requests to Service `{service}` port {}, which namespace `{}` does not have: ingress-nginx answers them 503",
                    object.name,
                    object.source,
                    match port {
                        PortRef::Number(n) => n.to_string(),
                        PortRef::Name(n) => n.to_owned(),
                    },
                    object.namespace
                ),
            )
            .label("no such Service port")
            .hint("name a Service and port of the Ingress's namespace"),
        );
        return Vec::new();
    };
    let service_upstream = ingress
        .metadata
        .annotations
        .get(SERVICE_UPSTREAM)
        .is_some_and(|v| v == "true");
    match (service_upstream, found.cluster_ip) {
        (true, Some(ip)) => vec![format!("http://{ip}:{}/", found.port)],
        _ => found
            .endpoints
            .iter()
            .map(|(ip, port)| format!("http://{ip}:{port}/"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_path_becomes_a_directory_and_an_exact_location() {
        // location.go `updateServerLocations`: `/foo` → `location /foo/` + `location = /foo`.
        assert_eq!(
            locations("/foo", Some("Prefix")),
            [
                ("/foo/".to_owned(), PathMatchName::Prefix),
                ("/foo".to_owned(), PathMatchName::Exact)
            ]
        );
        assert_eq!(
            locations("/", Some("Prefix")),
            [("/".to_owned(), PathMatchName::Prefix)]
        );
    }

    #[test]
    fn an_exact_path_is_one_exact_location() {
        assert_eq!(
            locations("/foo", Some("Exact")),
            [("/foo".to_owned(), PathMatchName::Exact)]
        );
    }

    #[test]
    fn implementation_specific_is_nginx_s_own_prefix() {
        // Left as written by `updateServerLocations`: nginx's `location /foo` also takes `/foobar`.
        assert_eq!(
            locations("/foo", Some("ImplementationSpecific")),
            [("/foo".to_owned(), PathMatchName::Prefix)]
        );
    }

    #[test]
    fn the_deploy_manifest_reads_as_two_services_and_a_deployment() {
        let cluster = ClusterSpec {
            ingress_controller: Some(Located::new(IngressControllerSpec {
                node_ports: Some(crate::format::platform::kubernetes::IngressNodePorts {
                    http: Some(30080),
                    https: None,
                }),
                nodes: vec![Located::new("n2".into())],
                ..IngressControllerSpec::default()
            })),
            ..ClusterSpec::default()
        };
        let objects = objects(&cluster);
        let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["Service", "Service", "Deployment"]);
        let Body::Service(service) = &objects[0].body else {
            panic!("a Service");
        };
        assert_eq!(service.r#type.as_deref(), Some("NodePort"));
        assert_eq!(service.ports[0].node_port, Some(30080));
        assert_eq!(service.ports[1].node_port, None);
        assert_eq!(
            service.selector["app.kubernetes.io/component"],
            "controller"
        );
        let Body::Workload(deployment) = &objects[2].body else {
            panic!("a Deployment");
        };
        assert_eq!(deployment.template.spec.node_name.as_deref(), Some("n2"));
        assert_eq!(deployment.template.spec.containers[0].ports.len(), 3);
        assert_eq!(objects[2].namespace, "ingress-nginx");
    }

    fn ingress(json: &str) -> Ingress {
        let value: Value = serde_json::from_str(json).unwrap();
        match Object::read(&value, Span::default(), "test").body {
            Body::Ingress(i) => i,
            _ => panic!("an Ingress"),
        }
    }

    #[test]
    fn ingress_class_name_names_the_class_before_the_annotation() {
        let both = ingress(
            r#"{"kind": "Ingress", "metadata": {"annotations": {"kubernetes.io/ingress.class": "a"}},
                "spec": {"ingressClassName": "b"}}"#,
        );
        assert_eq!(ingress_class(&both), Some("b"));
        let annotated = ingress(
            r#"{"kind": "Ingress", "metadata": {"annotations": {"kubernetes.io/ingress.class": "a"}}}"#,
        );
        assert_eq!(ingress_class(&annotated), Some("a"));
        assert_eq!(ingress_class(&ingress(r#"{"kind": "Ingress"}"#)), None);
    }
}
