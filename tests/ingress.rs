//! A reverse proxy's routes (`listen: … http: { routes: … }`, what an ingress controller
//! becomes) and the `kubernetes:` section's ingress-nginx controller
//! (docs/platform-semantics.md, "Kubernetes", **Ingress**).

use std::net::Ipv4Addr;

use reachlab::model::{Network, Outcome, PathMatch, Probe, Service};
use reachlab::run::{ProbeRequest, run_request};
use reachlab::sim::SimConfig;
use reachlab::topology::{Code, load_path, load_str};

/// A proxy on 10.0.0.1:80 with routes to `app` (answers "app"), `refusing` (nothing listens),
/// `silent` (drops the SYN) and to no upstream at all.
const PROXY: &str = r#"
name: proxy
segments: [{ name: lan }]
nodes:
  - name: client
    dns: [shop.example, other.example]
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.9/24] }]
  - name: proxy
    dns: [proxy.example]
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    listen:
      - port: 80
        http:
          status: 404
          body: "default backend"
          routes:
            - { host: shop.example, path: /api/, upstreams: ["http://10.0.0.2:8080/"] }
            - { host: shop.example, path: /api, match: exact, upstreams: ["http://10.0.0.2:8080/"] }
            - { host: shop.example, path: /down, upstreams: ["http://10.0.0.3:8080/", "http://10.0.0.2:9999/"] }
            - { host: shop.example, path: /slow, upstreams: ["http://10.0.0.4:8080/"] }
            - { host: shop.example, path: /empty }
            - { path: /, upstreams: ["http://10.0.0.3:8080/", "http://10.0.0.2:8080/"] }
  - name: app
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]
    listen: [{ port: 8080, http: { body: "app" } }]
  - name: refusing
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.3/24] }]
  - name: silent
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.4/24] }]
    firewall: { input: { policy: drop } }
"#;

fn net(text: &str) -> Network {
    load_str("proxy.yaml", text)
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network
}

/// What `curl http://HOST/PATH` from `client` gets: status and body.
fn curl(net: &Network, host: &str, path: &str) -> (u16, String) {
    let from = net.node_by_name("client").expect("client").id;
    let request = ProbeRequest {
        from,
        written: host.to_owned(),
        dst: Ipv4Addr::new(10, 0, 0, 1),
        probe: Probe::Curl {
            port: reachlab::model::Port::HTTP,
            path: path.to_owned(),
        },
        count: 1,
        wait: None,
        ttl: None,
    };
    let result = run_request(net, request, &SimConfig::default());
    assert_eq!(result.run.outcome, Outcome::Reply);
    let answer = result.http.expect("an HTTP answer");
    (answer.status, answer.body)
}

#[test]
fn a_route_relays_its_upstreams_answer() {
    let net = net(PROXY);
    assert_eq!(curl(&net, "shop.example", "/api/v1"), (200, "app".into()));
    assert_eq!(curl(&net, "shop.example", "/api"), (200, "app".into()));
}

#[test]
fn a_request_no_location_takes_gets_the_listeners_own_answer() {
    let net = net(PROXY);
    // shop.example has a server of its own, without `/`: the default server is not consulted.
    assert_eq!(
        curl(&net, "shop.example", "/apiv2"),
        (404, "default backend".into())
    );
}

#[test]
fn a_host_without_a_server_goes_to_the_default_server() {
    let net = net(PROXY);
    // The first upstream refuses; nginx tries the next one (proxy_next_upstream error).
    assert_eq!(curl(&net, "other.example", "/x"), (200, "app".into()));
}

#[test]
fn a_route_without_upstreams_answers_503() {
    let net = net(PROXY);
    let (status, body) = curl(&net, "shop.example", "/empty");
    assert_eq!(status, 503);
    assert!(body.contains("<title>503 Service Temporarily Unavailable</title>"));
}

#[test]
fn upstreams_that_refuse_answer_502() {
    let net = net(PROXY);
    let (status, body) = curl(&net, "shop.example", "/down");
    assert_eq!(status, 502);
    assert!(body.contains("<center><h1>502 Bad Gateway</h1></center>"));
}

#[test]
fn an_upstream_that_times_out_answers_504() {
    let net = net(PROXY);
    let (status, body) = curl(&net, "shop.example", "/slow");
    assert_eq!(status, 504);
    assert!(body.contains("504 Gateway Time-out"));
}

#[test]
fn a_route_path_must_start_with_a_slash() {
    let bad = PROXY.replace("path: /empty", "path: empty");
    let report = load_str("proxy.yaml", &bad).expect_err("invalid");
    assert!(report.diagnostics.iter().any(|d| {
        d.message
            .contains("route path `empty` does not start with `/`")
    }));
}

/// The routes of the proxy listening on port 80 of node `name`.
fn routes_of(net: &Network, name: &str) -> Vec<reachlab::model::HttpRoute> {
    let node = net.node_by_name(name).expect("node");
    let listener = node
        .listeners
        .iter()
        .find(|l| l.port.get() == 80)
        .expect("port 80");
    match &listener.service {
        Service::Http { routes, .. } => routes.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_controller_pod_routes_each_ingress_path_to_the_endpoints() {
    let loaded = load_path(std::path::Path::new("topologies/k8s-ingress.yaml")).expect("valid");
    let net = loaded.network;
    let routes = routes_of(&net, "ingress-nginx-controller-0");
    let find = |host: Option<&str>, path: PathMatch| {
        routes
            .iter()
            .find(|r| r.host.as_deref() == host && r.path == path)
            .unwrap_or_else(|| panic!("{host:?} {path:?} in {routes:?}"))
    };
    // Prefix /api: `location /api/` and `location = /api`, to both api pods' targetPort 8080.
    let api = net.resolve("api-0").expect("api-0");
    let api1 = net.resolve("api-1").expect("api-1");
    for path in [
        PathMatch::Prefix("/api/".into()),
        PathMatch::Exact("/api".into()),
    ] {
        let upstreams: Vec<_> = find(Some("shop.example"), path)
            .upstreams
            .iter()
            .map(|(a, p)| (*a, p.get()))
            .collect();
        assert_eq!(upstreams.len(), 2);
        assert!(upstreams.contains(&(api, 8080)) && upstreams.contains(&(api1, 8080)));
    }
    // cart has no endpoints.
    assert!(
        find(Some("shop.example"), PathMatch::Exact("/cart".into()))
            .upstreams
            .is_empty()
    );
    // The class annotation selects the controller too; the host-less rule is the default server's.
    let dead = net.resolve("dead").expect("dead");
    let status = find(None, PathMatch::Prefix("/status/".into()));
    assert_eq!(status.upstreams[0].0, dead);
    assert_eq!(status.upstreams[0].1.get(), 9000);
    // The Ingress of class traefik is reported, and routes nothing.
    assert!(
        loaded
            .report
            .diagnostics
            .iter()
            .any(|d| d.code == Code::Unsupported
                && d.message.contains("Ingress `other`")
                && d.message.contains("its class is `traefik`"))
    );
    assert!(routes.iter().all(|r| !r.note.contains("`default/other`")));
}

#[test]
fn the_controller_service_is_a_node_port_service_of_the_deploy_manifest() {
    let net = load_path(std::path::Path::new("topologies/k8s-ingress.yaml"))
        .expect("valid")
        .network;
    // `nodes: [n2]` pins the controller's pod; its ports 80, 443 and 8443 listen.
    let pod = net.node_by_name("ingress-nginx-controller-0").expect("pod");
    let ports: Vec<u16> = pod.listeners.iter().map(|l| l.port.get()).collect();
    assert_eq!(ports, [80, 443, 8443]);
    let segment = net
        .segments
        .iter()
        .find(|s| s.name == "ingress-nginx-controller-0-veth")
        .expect("veth");
    let n2 = net.node_by_name("n2").expect("n2");
    assert!(net.interfaces_of(n2).any(|i| i.segment == segment.id));
}

#[test]
fn host_network_mode_listens_on_port_80_of_each_worker() {
    let text = std::fs::read_to_string("topologies/k8s-ingress.yaml")
        .expect("file")
        .replace(
            "mode: node_port, node_ports: { http: 30080, https: 30443 }, nodes: [n2]",
            "mode: host_network",
        );
    let net = net(&text);
    assert!(net.node_by_name("ingress-nginx-controller-0").is_none());
    for node in ["n1", "n2"] {
        let routes = routes_of(&net, node);
        assert!(
            routes
                .iter()
                .any(|r| r.host.as_deref() == Some("blog.example"))
        );
    }
}

#[test]
fn without_a_controller_every_ingress_is_ignored() {
    let text = std::fs::read_to_string("topologies/k8s-ingress.yaml")
        .expect("file")
        .replace(
            "      ingress_controller: { class: nginx, mode: node_port, node_ports: { http: 30080, https: 30443 }, nodes: [n2] }\n",
            "",
        );
    let loaded = load_str("k8s-ingress.yaml", &text).expect("valid");
    let ignored = loaded
        .report
        .diagnostics
        .iter()
        .filter(|d| {
            d.message
                .contains("the cluster has no `ingress_controller:`")
        })
        .count();
    assert_eq!(ignored, 3);
}
