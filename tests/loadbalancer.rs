//! LoadBalancer Services with MetalLB in layer-2 mode: which address each Service gets, which
//! node answers ARP for it, and what happens without a pool (docs/platform-semantics.md,
//! "Kubernetes", "LoadBalancer Services"). The elected nodes were worked out by hand with
//! `printf 'NODE#ADDRESS' | sha256sum` (the smaller digest wins):
//!
//! | address | n1 | n2 | winner |
//! |---|---|---|---|
//! | 10.0.0.240 | 9d8dbb0b… | ad0dbead… | n1 |
//! | 10.0.0.241 | bc082b89… | f995ee41… | n1 |
//! | 10.0.0.242 | 42c3b17c… | 3d399fc1… | n2 |
//! | 10.0.0.250 | ff669283… | 8215960d… | n2 |

use std::net::Ipv4Addr;

use reachlab::model::Network;
use reachlab::topology::{load_path, load_str};

/// The addresses node `node`'s `eth0` answers ARP for.
fn announced(net: &Network, node: &str) -> Vec<Ipv4Addr> {
    let node = net.node_by_name(node).expect("node exists");
    net.interfaces_of(node)
        .find(|i| i.name == "eth0")
        .expect("eth0")
        .answers_arp_for
        .clone()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

#[test]
fn each_address_is_answered_by_the_node_metallb_elects() {
    let loaded =
        load_path(std::path::Path::new("topologies/k8s-loadbalancer.yaml")).expect("valid");
    let net = loaded.network;
    // web .240 and weblocal .241 (Local, endpoint on n1) on n1; webfw .242 and pinned .250
    // on n2; empty .243 (no endpoint) nowhere.
    assert_eq!(
        announced(&net, "n1"),
        vec![ip("10.0.0.240"), ip("10.0.0.241")]
    );
    assert_eq!(
        announced(&net, "n2"),
        vec![ip("10.0.0.242"), ip("10.0.0.250")]
    );
    let warning = loaded
        .report
        .diagnostics
        .iter()
        .find(|d| d.message.contains("10.0.0.243"))
        .expect("a warning for the unannounced address");
    assert!(
        warning.message.contains("no ready endpoint"),
        "{}",
        warning.message
    );
}

/// A two-node cluster whose only pod runs on n1, with `service` and `pools` as objects.
fn cluster(service: &str, pools: &str) -> String {
    format!(
        r#"
segments: [{{ name: lan }}]
nodes:
  - {{ name: gw, forwarding: true, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }}] }}
  - {{ name: desk, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.50/24] }}] }}
  - {{ name: n1, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.11/24] }}], routes: [{{ to: default, via: 10.0.0.1 }}] }}
  - {{ name: n2, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.12/24] }}], routes: [{{ to: default, via: 10.0.0.1 }}] }}
kubernetes:
  clusters:
    - name: c
      nodes: [n1, n2]
      pod_cidr: 10.244.0.0/16
      node_ports: {{ web: 30080 }}
      objects:
        - {{ apiVersion: v1, kind: Pod, metadata: {{ name: web, labels: {{ app: web }} }}, spec: {{ nodeName: n1, containers: [{{ name: web, image: web, ports: [{{ containerPort: 8080 }}] }}] }} }}
        - {service}
{pools}
      serve: [{{ selector: {{ app: web }}, port: 8080, http: {{ body: ok }} }}]
"#
    )
}

const ONE_ADDRESS: &str = "        - { apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: { name: p }, spec: { addresses: [10.0.0.242/32] } }
        - { apiVersion: metallb.io/v1beta1, kind: L2Advertisement, metadata: { name: l2 } }";

fn service(policy: &str) -> String {
    format!(
        "{{ apiVersion: v1, kind: Service, metadata: {{ name: web }}, spec: {{ type: LoadBalancer, externalTrafficPolicy: {policy}, selector: {{ app: web }}, ports: [{{ port: 80, targetPort: 8080 }}] }} }}"
    )
}

#[test]
fn with_policy_local_only_a_node_with_an_endpoint_may_announce() {
    // n2 wins the election for 10.0.0.242 among all nodes; only n1 has the endpoint.
    let cluster_wide = load_str("t.yaml", &cluster(&service("Cluster"), ONE_ADDRESS))
        .expect("valid")
        .network;
    assert_eq!(announced(&cluster_wide, "n2"), vec![ip("10.0.0.242")]);
    assert!(announced(&cluster_wide, "n1").is_empty());
    let local = load_str("t.yaml", &cluster(&service("Local"), ONE_ADDRESS))
        .expect("valid")
        .network;
    assert_eq!(announced(&local, "n1"), vec![ip("10.0.0.242")]);
    assert!(announced(&local, "n2").is_empty());
}

#[test]
fn the_control_plane_does_not_announce() {
    // kubeadm labels control-plane nodes node.kubernetes.io/exclude-from-external-load-balancers.
    let text = cluster(&service("Cluster"), ONE_ADDRESS).replace(
        "nodes: [n1, n2]",
        "nodes: [n1, n2]\n      control_plane: [n2]",
    );
    let net = load_str("t.yaml", &text).expect("valid").network;
    assert_eq!(announced(&net, "n1"), vec![ip("10.0.0.242")]);
    assert!(announced(&net, "n2").is_empty());
}

#[test]
fn without_a_pool_the_service_stays_pending_and_serves_its_node_ports() {
    let loaded = load_str("t.yaml", &cluster(&service("Cluster"), "")).expect("valid");
    let pending = loaded
        .report
        .diagnostics
        .iter()
        .find(|d| d.message.contains("<pending>"))
        .expect("a warning");
    assert!(
        pending.message.contains("no MetalLB IPAddressPool"),
        "{}",
        pending.message
    );
    for node in ["n1", "n2"] {
        assert!(announced(&loaded.network, node).is_empty());
    }
    let n2 = loaded.network.node_by_name("n2").expect("n2");
    let nf = n2.netfilter.as_deref().expect("n2 has rules");
    let rules = reachlab::topology::iptables::save(&loaded.network, nf);
    assert!(rules.contains("--dport 30080 -j KUBE-EXT-"), "{rules}");
    assert!(!rules.contains("loadbalancer IP"), "{rules}");
}

#[test]
fn an_address_no_pool_holds_stays_pending() {
    let asked = service("Cluster").replace(
        "metadata: { name: web }",
        "metadata: { name: web, annotations: { metallb.io/loadBalancerIPs: 10.0.0.99 } }",
    );
    let loaded = load_str("t.yaml", &cluster(&asked, ONE_ADDRESS)).expect("valid");
    assert!(
        loaded
            .report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("10.0.0.99 is in no IPAddressPool")),
        "{:?}",
        loaded.report.diagnostics
    );
}

#[test]
fn several_auto_assign_pools_are_a_random_choice_and_say_so() {
    let pools = "        - { kind: IPAddressPool, metadata: { name: a }, spec: { addresses: [10.0.0.240/32] } }
        - { kind: IPAddressPool, metadata: { name: b }, spec: { addresses: [10.0.0.241/32] } }
        - { kind: L2Advertisement, metadata: { name: l2 } }";
    let loaded = load_str("t.yaml", &cluster(&service("Cluster"), pools)).expect("valid");
    assert!(
        loaded
            .report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("several auto-assign pools")),
        "{:?}",
        loaded.report.diagnostics
    );
    // The first pool written.
    assert_eq!(announced(&loaded.network, "n1"), vec![ip("10.0.0.240")]);
}

#[test]
fn a_pool_without_an_advertisement_is_announced_by_nobody() {
    let pools = "        - { kind: IPAddressPool, metadata: { name: p }, spec: { addresses: [10.0.0.242/32] } }";
    let loaded = load_str("t.yaml", &cluster(&service("Cluster"), pools)).expect("valid");
    assert!(
        loaded
            .report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("no L2Advertisement announces pool `p`")),
        "{:?}",
        loaded.report.diagnostics
    );
}

/// kube-proxy ends a `KUBE-FW-` chain with a rule that has no target. iptables v1.8.9
/// (nf_tables), in a namespace: `iptables -t nat -A KUBE-FW-X -m comment --comment "other
/// traffic to a will be dropped by KUBE-PROXY-FIREWALL"` is accepted and `iptables-save`
/// prints it back as that line, without `-j`. It only counts: the walk goes on past it.
#[test]
fn a_rule_without_a_target_loads_counts_and_saves_as_iptables_prints_it() {
    let text = r#"
segments: [{ name: lan }]
nodes:
  - name: r
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    listen: [{ port: 80 }]
    iptables: |
      *filter
      :INPUT ACCEPT [0:0]
      :X - [0:0]
      -A INPUT -j X
      -A INPUT -p tcp -m tcp --dport 80 -j DROP
      -A X -m comment --comment "other traffic to a will be dropped by KUBE-PROXY-FIREWALL"
      COMMIT
  - { name: c, interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }] }
expect:
  - { from: c, tcp: 10.0.0.1, port: 80, outcome: timeout }
"#;
    let loaded = load_str("t.yaml", text).expect("valid");
    let r = loaded.network.node_by_name("r").expect("r");
    let saved =
        reachlab::topology::iptables::save(&loaded.network, r.netfilter.as_deref().expect("rules"));
    assert!(
        saved.contains("\n-A X -m comment --comment \"other traffic to a will be dropped by KUBE-PROXY-FIREWALL\"\n"),
        "{saved}"
    );
    let checked = reachlab::run::check(&loaded.network, &reachlab::sim::SimConfig::default());
    assert!(
        checked.len() == 1 && checked.iter().all(|c| c.ok),
        "the DROP after the counting rule applies"
    );
}
