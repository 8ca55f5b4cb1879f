//! The `kubernetes:` section: scheduling, pod addresses, and Services as kube-proxy builds them
//! (tests/kubernetes/cluster.yaml with the manifests in tests/kubernetes/app.yaml).

use std::net::Ipv4Addr;
use std::time::Duration;

use reachlab::model::{Network, Outcome, Port};
use reachlab::sim::{
    Ipv4Packet, ProbeKind, Sim, SimConfig, StepKind, TcpFlags, Transport, run_probe,
};
use reachlab::topology::{Code, load_path, load_str};

fn cluster(edit: impl FnOnce(String) -> String) -> Network {
    let text = edit(std::fs::read_to_string("tests/kubernetes/cluster.yaml").expect("fixture"));
    // Written next to the fixture so that the manifest path resolves the same way.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::Path::new("tests/kubernetes")
        .join(format!("edited-{}-{n}.yaml", std::process::id()));
    std::fs::write(&path, text).expect("written");
    let loaded = load_path(&path);
    let _ = std::fs::remove_file(&path);
    loaded
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network
}

/// The node at the other end of the pod's veth.
fn node_of_pod(net: &Network, pod: &str) -> String {
    let pod = net.node_by_name(pod).expect("pod exists");
    let segment = net.interfaces_of(pod).next().expect("eth0").segment;
    let host = net
        .segment(segment)
        .interfaces
        .iter()
        .map(|&i| net.interface(i).node)
        .find(|&n| n != pod.id)
        .expect("the veth's other end");
    net.node(host).name.clone()
}

#[test]
fn pods_are_scheduled_like_kube_scheduler() {
    let net = cluster(|t| t);
    // nodeSelector PoP=space_1: every replica on worker1, numbered from the block's first address.
    for (i, pod) in ["web-0", "web-1", "web-2"].iter().enumerate() {
        assert_eq!(node_of_pod(&net, pod), "worker1");
        assert_eq!(
            net.resolve(pod),
            Some(Ipv4Addr::new(172, 16, 235, 129 + i as u8))
        );
    }
    // testpod: no selector, the control plane is tainted, worker2 has fewer pods.
    assert_eq!(node_of_pod(&net, "testpod"), "worker2");
    assert_eq!(
        net.resolve("testpod"),
        Some(Ipv4Addr::new(172, 16, 189, 65))
    );
}

#[test]
fn the_manifests_load_with_the_ingress_listed_as_ignored() {
    let loaded = load_path(std::path::Path::new("tests/kubernetes/cluster.yaml")).expect("valid");
    let warnings: Vec<_> = loaded
        .report
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::Unsupported)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("Ingress `ing`"));
}

#[test]
fn cluster_ip_spreads_over_every_endpoint_by_seed() {
    let net = cluster(|t| t);
    let master = net.node_by_name("master").expect("master").id;
    let vip = Ipv4Addr::new(10, 110, 139, 220);
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..60 {
        let run = run_probe(
            &net,
            master,
            vip,
            &ProbeKind::tcp(Port::HTTP),
            &SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        assert_eq!(run.outcome, Outcome::Reply);
        let pod = run
            .steps
            .iter()
            .find(|s| {
                matches!(s.kind, StepKind::Delivered { .. })
                    && net.node(s.node).name.starts_with("web-")
            })
            .expect("a pod got it");
        seen.insert(net.node(pod.node).name.clone());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[test]
fn node_port_answers_on_every_node_and_no_endpoints_is_refused() {
    let net = cluster(|t| t);
    let worker2 = net.node_by_name("worker2").expect("worker2").id;
    let nodeport = ProbeKind::tcp(Port::new(32347).expect("port"));
    for node in [
        Ipv4Addr::new(192, 168, 9, 167),
        Ipv4Addr::new(192, 168, 9, 251),
        Ipv4Addr::new(192, 168, 9, 46),
    ] {
        assert_eq!(
            run_probe(&net, worker2, node, &nodeport, &SimConfig::default()).outcome,
            Outcome::Reply,
            "{node}:32347"
        );
    }
    // The first ClusterIP allocated: above the API server's static band of 256 addresses of
    // 10.96.0.0/12 (`.1` and `.10` stay kubeadm's).
    let empty = Ipv4Addr::new(10, 96, 1, 1);
    assert_eq!(
        run_probe(
            &net,
            worker2,
            empty,
            &ProbeKind::tcp(Port::HTTP),
            &SimConfig::default()
        )
        .outcome,
        Outcome::Refused
    );
}

#[test]
fn external_traffic_policy_local_drops_where_no_endpoint_runs() {
    let net = cluster(|t| t.replace("manifests: [app.yaml]", "manifests: [app-local.yaml]"));
    let master = net.node_by_name("master").expect("master").id;
    let nodeport = ProbeKind::tcp(Port::new(32347).expect("port"));
    // worker1 runs the pods; worker2 runs none and drops.
    assert_eq!(
        run_probe(
            &net,
            master,
            Ipv4Addr::new(192, 168, 9, 251),
            &nodeport,
            &SimConfig::default()
        )
        .outcome,
        Outcome::Reply
    );
    assert_eq!(
        run_probe(
            &net,
            master,
            Ipv4Addr::new(192, 168, 9, 46),
            &nodeport,
            &SimConfig::default()
        )
        .outcome,
        Outcome::Timeout
    );
}

#[test]
fn ipvs_mode_answers_ping_to_a_cluster_ip_iptables_mode_does_not() {
    let vip = Ipv4Addr::new(10, 110, 139, 220);
    let iptables = cluster(|t| t);
    let testpod = iptables.node_by_name("testpod").expect("testpod").id;
    assert_ne!(
        run_probe(
            &iptables,
            testpod,
            vip,
            &ProbeKind::ping(1),
            &SimConfig::default()
        )
        .outcome,
        Outcome::Reply
    );
    let ipvs = cluster(|t| {
        t.replace(
            "pod_cidr: 172.16.0.0/16",
            "pod_cidr: 172.16.0.0/16\n      proxy_mode: ipvs",
        )
    });
    let testpod = ipvs.node_by_name("testpod").expect("testpod").id;
    assert_eq!(
        run_probe(
            &ipvs,
            testpod,
            vip,
            &ProbeKind::ping(1),
            &SimConfig::default()
        )
        .outcome,
        Outcome::Reply
    );
}

#[test]
fn mistakes_are_reported_with_positions() {
    let text = "nodes:\n  - { name: master, interfaces: [{ name: ens3, segment: net, addresses: [10.0.0.1/24] }] }\nsegments: [{ name: net }]\nkubernetes:\n  clusters:\n    - name: c\n      nodes: [mastr]\n      manifests: [missing.yaml]\n";
    let report = load_str("bad.yaml", text).expect_err("invalid");
    let codes: Vec<_> = report
        .diagnostics
        .iter()
        .map(|d| (d.code, d.span.map(|s| s.line)))
        .collect();
    assert!(
        codes.contains(&(Code::UnknownReference, Some(7))),
        "{codes:?}"
    );
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.hint.as_deref() == Some("did you mean `master`?"))
    );
}

/// The filter table of node `name` of `topologies/k8s-networkpolicy.yaml`, as iptables-save
/// prints it.
fn networkpolicy_rules(name: &str) -> String {
    let net = load_path(std::path::Path::new("topologies/k8s-networkpolicy.yaml"))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network;
    let node = net.node_by_name(name).expect("node");
    let nf = node.netfilter.as_ref().expect("felix's rules");
    reachlab::topology::iptables::save(&net, nf)
}

#[test]
fn felix_jumps_first_and_drops_what_no_policy_passes_naming_the_policies() {
    let text = networkpolicy_rules("w1");
    let forward: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("-A FORWARD "))
        .collect();
    assert_eq!(
        forward.first(),
        Some(&"-A FORWARD -j cali-FORWARD"),
        "{text}"
    );
    assert!(
        text.contains("Drop if no policies passed packet (ingress of pod shop/db: NetworkPolicy shop/db-from-dev-clients, shop/default-deny)"),
        "{text}"
    );
    // db's egress: default-deny and egress-dns (db has an `app` label).
    assert!(
        text.contains("Drop if no policies passed packet (egress of pod shop/db: NetworkPolicy shop/default-deny, shop/egress-dns)"),
        "{text}"
    );
}

#[test]
fn felix_does_not_police_the_node_to_its_own_pods() {
    let text = networkpolicy_rules("w1");
    let output: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("-A cali-OUTPUT "))
        .collect();
    // web, db, grafana, tester, coredns run on w1: one RETURN each, nothing else.
    assert_eq!(output.len(), 5, "{output:?}");
    assert!(
        output.iter().all(|l| l.ends_with("-j RETURN")),
        "{output:?}"
    );
}

#[test]
fn a_selector_peer_is_written_as_the_addresses_of_its_pods() {
    // shop/db-from-dev-clients selects `client` only: one source address in its chain.
    let text = networkpolicy_rules("w1");
    let marks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("--dports 5432") && l.contains("-s "))
        .collect();
    assert_eq!(marks.len(), 1, "{text}");
}

/// The NetworkPolicy matrix of topologies/k8s-networkpolicy.yaml, derived by hand from the
/// Kubernetes documentation's semantics before the simulator could run it (the table in
/// docs/platform-semantics.md, "Kubernetes", **NetworkPolicy**): `r` a reply, `.` dropped,
/// `-` the pod itself. Every cell is simulated and must agree.
#[test]
fn the_network_policy_matrix_is_the_one_the_documentation_gives() {
    let net = load_path(std::path::Path::new("topologies/k8s-networkpolicy.yaml"))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network;
    let columns = [
        ("web", false, 8080),
        ("db", false, 5432),
        ("api", false, 9105),
        ("api", false, 9200),
        ("prom", false, 9090),
        ("coredns", true, 53),
        ("echo", false, 80),
        ("partner", false, 80),
    ];
    let rows = [
        ("web", "-.r..r.."),
        ("api", "..--.r.."),
        ("tester", "..r..rr."),
        ("client", ".rr..rrr"),
        ("grafana", "....rrrr"),
        ("partner", "r.....r-"),
        ("guest", "......rr"),
        ("w1", "rr...rrr"),
        ("w2", "..rrr.rr"),
    ];
    for (from, cells) in rows {
        let source = net.node_by_name(from).expect("row node").id;
        for ((to, udp, port), want) in columns.iter().zip(cells.chars()) {
            if want == '-' {
                continue;
            }
            let dst = reachlab::run::target_address(&net, to).expect("column node");
            let port = Port::new(*port).expect("port");
            let kind = if *udp {
                ProbeKind::udp(port)
            } else {
                ProbeKind::tcp(port)
            };
            let outcome = run_probe(&net, source, dst, &kind, &SimConfig::default()).outcome;
            let expected = if want == 'r' {
                Outcome::Reply
            } else {
                Outcome::Timeout
            };
            assert_eq!(outcome, expected, "{from} → {to}:{port}");
        }
    }
}

/// Cluster DNS: a pod resolves a Service's short, namespaced and full names through its
/// search list; a node of the cluster does not (its resolv.conf is the host's), nor a pod of
/// another namespace by the short name.
#[test]
fn pods_resolve_services_by_name_and_nodes_do_not() {
    let net = load_path(std::path::Path::new("topologies/k8s-services.yaml"))
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network;
    let id = |name: &str| net.node_by_name(name).expect("node").id;
    let web = Some(Ipv4Addr::new(10, 96, 0, 80));
    for name in [
        "web",
        "web.default",
        "web.default.svc",
        "web.default.svc.cluster.local.",
    ] {
        assert_eq!(net.resolve_from(id("client"), name), web, "{name}");
    }
    assert_eq!(
        net.resolve_from(id("n1"), "web.default.svc.cluster.local"),
        None
    );
    // `weblocal` is no node's name: outside the cluster it resolves to nothing.
    assert_eq!(net.resolve_from(id("gw"), "weblocal"), None);
    assert_eq!(
        net.resolve_from(id("far"), "weblocal"),
        Some(Ipv4Addr::new(10, 96, 0, 81))
    );
}

/// A two-node cluster with a Service `web` of two pods, one a node, and a client pod;
/// `affinity` is added to the Service's spec.
fn affinity_cluster(affinity: &str) -> Network {
    let text = format!(
        r#"
segments: [{{ name: lan }}]
nodes:
  - {{ name: n1, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.11/24] }}], routes: [{{ to: default, via: 10.0.0.1 }}] }}
  - {{ name: n2, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.12/24] }}], routes: [{{ to: default, via: 10.0.0.1 }}] }}
  - {{ name: gw, forwarding: true, interfaces: [{{ name: lan, segment: lan, addresses: [10.0.0.1/24] }}] }}
kubernetes:
  clusters:
    - name: c
      nodes: [n1, n2]
      pod_cidr: 10.244.0.0/16
      cluster_ips: {{ web: 10.96.0.80 }}
      objects:
        - {{ apiVersion: v1, kind: Pod, metadata: {{ name: web-a, labels: {{ app: web }} }}, spec: {{ nodeName: n1, containers: [{{ name: web, image: web, ports: [{{ containerPort: 8080 }}] }}] }} }}
        - {{ apiVersion: v1, kind: Pod, metadata: {{ name: web-b, labels: {{ app: web }} }}, spec: {{ nodeName: n2, containers: [{{ name: web, image: web, ports: [{{ containerPort: 8080 }}] }}] }} }}
        - {{ apiVersion: v1, kind: Pod, metadata: {{ name: client }}, spec: {{ nodeName: n1, containers: [{{ name: c, image: busybox }}] }} }}
        - {{ apiVersion: v1, kind: Service, metadata: {{ name: web }}, spec: {{ selector: {{ app: web }}, ports: [{{ port: 80, targetPort: 8080 }}]{affinity} }} }}
      serve: [{{ selector: {{ app: web }}, port: 8080, http: {{ body: ok }} }}]
"#
    );
    load_str("affinity.yaml", &text)
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
        .network
}

/// Two connections from the client pod to the Service, `gap` apart, with the random choices
/// scripted (`draws`): the pod each SYN reached, and the choices the run made.
fn two_connections(net: &Network, draws: &[bool], gap: Duration) -> (Vec<String>, Vec<bool>) {
    let client = net.node_by_name("client").expect("client").id;
    let vip = Ipv4Addr::new(10, 96, 0, 80);
    let mut sim = Sim::new(
        net,
        SimConfig {
            draws: Some(draws.to_vec()),
            ..SimConfig::default()
        },
    );
    sim.set_client(client);
    let src = sim.source_address(client, vip).expect("a route");
    for (i, sport) in [40000u16, 40001].into_iter().enumerate() {
        let syn = Ipv4Packet {
            src,
            dst: vip,
            ttl: 64,
            transport: Transport::Tcp {
                sport,
                dport: 80,
                flags: TcpFlags::Syn,
            },
        };
        sim.originate(client, syn).expect("sent");
        let until = sim
            .now()
            .after(if i == 0 { gap } else { Duration::from_secs(1) });
        loop {
            let running = sim.run_until(until);
            sim.drain_inbox();
            if !running || sim.now() >= until {
                break;
            }
        }
    }
    let pods = sim
        .steps()
        .iter()
        .filter(|s| {
            matches!(s.kind, StepKind::Delivered { .. })
                && matches!(
                    s.packet.transport,
                    Transport::Tcp {
                        flags: TcpFlags::Syn,
                        ..
                    }
                )
        })
        .map(|s| net.node(s.node).name.clone())
        .collect();
    (pods, sim.take_draws())
}

/// `sessionAffinity: ClientIP` (proxier.go: `-m recent --rcheck --seconds T --reap` jumps in
/// KUBE-SVC before the random ones, `-m recent --set` in each KUBE-SEP): a second connection
/// from the same client within the timeout goes to the endpoint of the first without drawing
/// again; without affinity, or once the timeout has passed, it draws anew. Scripted draws
/// `[false, true]`: the first connection fails the 1/2 rule of the first endpoint (web-a,
/// 10.244.… sorted first) and goes to web-b; a second draw, `true`, would pick web-a.
#[test]
fn client_ip_affinity_keeps_a_client_on_its_endpoint_until_the_timeout() {
    let script = [false, true];
    let second = Duration::from_secs(2);
    let plain = affinity_cluster("");
    let (pods, drawn) = two_connections(&plain, &script, second);
    assert_eq!(
        pods,
        ["web-b", "web-a"],
        "without affinity each connection draws"
    );
    assert_eq!(drawn, script);
    let sticky = affinity_cluster(
        ", sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } }",
    );
    let (pods, drawn) = two_connections(&sticky, &script, second);
    assert_eq!(pods, ["web-b", "web-b"], "the second connection sticks");
    assert_eq!(drawn, [false], "and draws nothing");
    let (pods, drawn) = two_connections(&sticky, &script, Duration::from_secs(6));
    assert_eq!(
        pods,
        ["web-b", "web-a"],
        "after 6 s of a 5 s timeout it draws again"
    );
    assert_eq!(drawn, script);
    // The default timeout (10800 s) keeps it too.
    let default = affinity_cluster(", sessionAffinity: ClientIP");
    let (pods, _) = two_connections(&default, &script, Duration::from_secs(60));
    assert_eq!(pods, ["web-b", "web-b"]);
}

#[test]
fn session_affinity_mistakes_are_reported_with_positions() {
    for (affinity, says) in [
        (
            ", sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } }",
            "timeoutSeconds 0",
        ),
        (
            ", sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } }",
            "timeoutSeconds 86401",
        ),
        (", sessionAffinity: Cookie", "sessionAffinity `Cookie`"),
        (
            ", sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } }",
            "without sessionAffinity",
        ),
    ] {
        let result = std::panic::catch_unwind(|| affinity_cluster(affinity));
        let Err(panic) = result else {
            panic!("{affinity}: accepted");
        };
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains(says), "{affinity}: {text}");
        assert!(
            text.contains("line: 9, column: 13"),
            "{affinity}: placed at the cluster: {text}"
        );
    }
}
