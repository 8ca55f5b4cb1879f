//! `invariants:` in topology files: the flows each kind covers, what violates it (delivery for
//! `isolated`, a reply for `reachable`, a private source out of a public interface for
//! `no-private-source-beyond`), `check`'s exit status, the round trip through `to_file`, and
//! `check --failures`. Every count below is worked out from the topology by hand (the comments
//! say how), not taken from the program's output.

use std::path::Path;
use std::process::Command;

use reachlab::invariants::{self, Judgement, Subject, failures};
use reachlab::model::{InvariantKind, Network, Outcome};
use reachlab::sim::SimConfig;
use reachlab::topology::{load_path, load_str, to_file, to_yaml};

/// The office of docs/topology-format.md (## Invariants): pc1 and pc2 (ssh) on `staff`, phone on
/// `guests`, `edge` masquerading both out of `wan` to `web` (http), and dropping what goes
/// between the two LANs in either direction.
const OFFICE: &str = r#"
segments:
  - name: staff
  - name: guests
  - name: internet
nodes:
  - name: pc1
    interfaces:
      - { name: eth0, segment: staff, addresses: [192.168.1.11/24] }
    routes:
      - { to: default, via: 192.168.1.1 }
  - name: pc2
    interfaces:
      - { name: eth0, segment: staff, addresses: [192.168.1.12/24] }
    routes:
      - { to: default, via: 192.168.1.1 }
    listen:
      - { port: 22, ssh: "SSH-2.0-OpenSSH_9.6p1" }
  - name: phone
    interfaces:
      - { name: wlan0, segment: guests, addresses: [10.10.0.50/24] }
    routes:
      - { to: default, via: 10.10.0.1 }
  - name: edge
    forwarding: true
    interfaces:
      - { name: staff, segment: staff, addresses: [192.168.1.1/24] }
      - { name: guests, segment: guests, addresses: [10.10.0.1/24] }
      - { name: wan, segment: internet, addresses: [198.51.100.2/24] }
    nat:
      - { out: wan, masquerade: true }
    firewall:
      forward:
        rules:
          - { in: guests, out: staff, action: drop }
          - { in: staff, out: guests, action: drop }
  - name: web
    interfaces:
      - { name: eth0, segment: internet, addresses: [198.51.100.80/24] }
    listen:
      - { port: 80, http: { body: "hello" } }
groups:
  staff: ["pc*"]
  guests: [phone]
invariants:
  - isolated: [staff, guests]
    note: the guest Wi-Fi is for the Internet only
  - reachable: { from: staff, to: pc2, probe: ssh }
  - reachable: { from: guests, to: web, probe: curl }
  - no-private-source-beyond: edge
expect:
  - { from: pc1, ssh: pc2, outcome: reply }
  - { from: phone, curl: "http://198.51.100.80/", outcome: reply, body: hello }
  - { from: phone, ping: pc1, outcome: timeout }
  - { from: pc1, ping: phone, outcome: timeout }
"#;

fn net(text: &str) -> Network {
    match load_str("t.yaml", text) {
        Ok(loaded) => loaded.network,
        Err(report) => panic!("invalid: {:#?}", report.diagnostics),
    }
}

fn config() -> SimConfig {
    SimConfig::default()
}

fn reachlab(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("reachlab runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

mod support;

fn scratch(name: &str, text: &str) -> support::scratch::Scratch {
    support::scratch::Scratch::file("invariants", name, text)
}

#[test]
fn the_office_holds_over_the_flows_each_invariant_covers() {
    let net = net(OFFICE);
    let results = invariants::check(&net, &config());
    let summary: Vec<(String, usize, usize)> = net
        .invariants
        .iter()
        .zip(&results)
        .map(|(i, r)| (i.to_string(), r.flows, r.violated))
        .collect();
    // Probes where every port counts: ping, tcp:22 (pc2) and tcp:80 (web).
    // isolated: 2 staff PCs × phone's 1 address × 3 probes, and phone × 2 addresses × 3 = 12.
    // reachable ssh: pc1 → pc2 (pc2 is not probed from itself) = 1; http: phone → web = 1.
    // no-private: 7 addresses (pc1, pc2, phone, web one each, edge three); each of the 5 nodes
    // probes the addresses of the others: (6 + 6 + 6 + 4 + 6) × 3 probes = 84.
    assert_eq!(
        summary,
        [
            ("isolated [staff, guests]".to_owned(), 12, 0),
            ("reachable ssh from staff to pc2".to_owned(), 1, 0),
            ("reachable http from guests to web".to_owned(), 1, 0),
            ("no-private-source-beyond edge".to_owned(), 84, 0),
        ]
    );
    assert_eq!(
        invariants::probe_universe(&net)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["ping", "tcp:22", "tcp:80"]
    );
}

#[test]
fn without_masquerade_private_sources_leave_the_edge() {
    let text = OFFICE.replace("    nat:\n      - { out: wan, masquerade: true }\n", "");
    assert_ne!(text, OFFICE);
    let net = net(&text);
    let results = invariants::check(&net, &config());
    // web has no route back to the LANs: phone's curl times out.
    assert_eq!(results[2].violated, 1);
    assert_eq!(results[2].violations[0].outcome, Outcome::Timeout);
    // Each of pc1, pc2 and phone sends its 3 probes to web out of `wan` from its own private
    // address; nothing else leaves `wan` (web cannot route to the LANs at all).
    let leak = &results[3];
    assert_eq!((leak.flows, leak.violated), (84, 9));
    let first = &leak.violations[0];
    assert_eq!(first.flow.describe(&net), "pc1 ping web (198.51.100.80)");
    assert!(
        first.why.lines[0].starts_with("`edge` forwarded (in on `staff`)")
            && first.why.lines[0].contains("192.168.1.11 → 198.51.100.80 out of `wan`"),
        "{:?}",
        first.why.lines
    );
    // It points at the interface `wan` (its name, line 31 of OFFICE without the two nat lines).
    let origin = first.why.origin.as_ref().expect("an origin");
    let wan_line = text
        .lines()
        .position(|l| l.contains("{ name: wan,"))
        .expect("wan")
        + 1;
    assert_eq!(origin.span.line as usize, wan_line);
    // The isolation and the ssh inside the staff LAN do not depend on NAT.
    assert!(results[0].holds() && results[1].holds());
}

/// `a` and `b` on two LANs of router `r`.
fn two_lans(r_extra: &str, b_listen: &str, invariant: &str) -> String {
    format!(
        r#"
segments: [{{ name: la }}, {{ name: lb }}]
nodes:
  - name: a
    interfaces: [{{ name: eth0, segment: la, addresses: [10.0.1.10/24] }}]
    routes: [{{ to: default, via: 10.0.1.1 }}]
  - name: b
    interfaces: [{{ name: eth0, segment: lb, addresses: [10.0.2.10/24] }}]
    routes: [{{ to: default, via: 10.0.2.1 }}]
{b_listen}
  - name: r
    forwarding: true
    interfaces:
      - {{ name: ea, segment: la, addresses: [10.0.1.1/24] }}
      - {{ name: eb, segment: lb, addresses: [10.0.2.1/24] }}
{r_extra}
invariants:
  - {invariant}
"#
    )
}

#[test]
fn isolation_is_about_delivery_not_about_the_outcome() {
    // r rejects everything it would forward: every probe is refused, by r, and reaches nobody.
    let rejected = two_lans(
        "    firewall:\n      forward:\n        rules:\n          - { action: reject }",
        "",
        "isolated: [a, b]\n    probes: [ping, tcp:22]",
    );
    let closed = net(&rejected);
    let result = &invariants::check(&closed, &config())[0];
    // Both directions × one address × two probes.
    assert_eq!((result.flows, result.violated), (4, 0));
    // No firewall: a's SYN reaches b, whose kernel refuses it (nothing listens): b is
    // reachable, and so is a from b.
    let open = two_lans("", "", "isolated: [a, b]\n    probes: [tcp:22]");
    let net = net(&open);
    let result = &invariants::check(&net, &config())[0];
    assert_eq!((result.flows, result.violated), (2, 2));
    let v = &result.violations[0];
    assert_eq!(v.outcome, Outcome::Refused);
    assert_eq!(v.flow.describe(&net), "a tcp:22 b (10.0.2.10)");
    assert_eq!(v.why.lines[1], "path: a → r → b");
}

#[test]
fn a_flipped_forward_rule_lets_the_guests_in() {
    let text = OFFICE.replace(
        "{ in: guests, out: staff, action: drop }",
        "{ in: guests, out: staff, action: accept }",
    );
    let net = net(&text);
    let result = &invariants::check(&net, &config())[0];
    // phone → pc1 and pc2, with each of the 3 probes: delivered (pc1's tcp:22 and both tcp:80
    // refused by the PCs' kernels, which still counts). The answers are dropped by the other
    // rule, which does not matter; staff → phone stays dropped.
    assert_eq!((result.flows, result.violated), (12, 6));
    assert!(
        result
            .violations
            .iter()
            .all(|v| v.flow.describe(&net).starts_with("phone "))
    );
}

#[test]
fn reachable_skips_a_node_to_itself_and_takes_addresses() {
    let text = r#"
segments: [{ name: lan }]
nodes:
  - name: h1
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
  - name: h2
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]
  - name: h3
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.3/24] }]
groups:
  hosts: ["h?"]
invariants:
  - reachable: { from: hosts, to: hosts }
  - reachable: { from: hosts, to: 10.0.0.9 }
"#;
    let net = net(text);
    let results = invariants::check(&net, &config());
    // 3 × 3 pairs less the 3 self pairs; all on one LAN.
    assert_eq!((results[0].flows, results[0].violated), (6, 0));
    // Nobody has 10.0.0.9: ARP fails for each of the three.
    assert_eq!((results[1].flows, results[1].violated), (3, 3));
    assert_eq!(results[1].violations[0].outcome, Outcome::HostUnreachable);
}

#[test]
fn lab1_leaks_the_edge_inside_address_to_the_internet() {
    // openstack-lab1.yaml as it is: `isp` routes everything on-link (`default dev eth0`), so it
    // ARPs for insa-edge's inside address 172.31.0.1 on `internet`, insa-edge answers (Linux
    // answers ARP for any local address) and its echo reply and RST leave `out` from
    // 172.31.0.1. No other packet with a private source leaves `out`: the campus is
    // masqueraded. The probes: ping and tcp:22 (VM_ubuntu's ssh; the floating IP's DNAT has
    // no port).
    let text = std::fs::read_to_string("topologies/openstack-lab1.yaml").expect("lab 1");
    let text = format!("{text}invariants:\n  - no-private-source-beyond: insa-edge\n");
    let net = net(&text);
    let result = &invariants::check(&net, &config())[0];
    // 7 nodes, 12 addresses (PC 1, campus-gw 3, insa-edge 2, isp 1, router1 3 with the
    // floating IP, the two instances 1 each): (7 × 12 − 12) pairs × 2 probes.
    assert_eq!((result.flows, result.violated), (144, 2));
    let flows: Vec<String> = result
        .violations
        .iter()
        .map(|v| format!("{}: {}", v.flow.describe(&net), v.outcome))
        .collect();
    assert_eq!(
        flows,
        [
            "isp ping insa-edge (172.31.0.1): reply",
            "isp tcp:22 insa-edge (172.31.0.1): refused"
        ]
    );
}

#[test]
fn the_tenants_topology_holds_and_check_says_so() {
    let (code, out) = reachlab(&[
        "check",
        "--color",
        "never",
        "topologies/openstack-tenants.yaml",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("5 invariants: 5 hold, 0 violated"), "{out}");
    let net = load_path(Path::new("topologies/openstack-tenants.yaml"))
        .expect("valid")
        .network;
    let isolated = net
        .invariants
        .iter()
        .position(|i| matches!(i.kind, InvariantKind::Isolated { .. }))
        .expect("an isolation");
    // project-a (2 instances) × web-b's one address, and back: × ping, tcp:22, tcp:80.
    let result = invariants::evaluate(
        &net,
        &net.invariants[isolated],
        &config(),
        &invariants::Options::default(),
    );
    assert_eq!((result.flows, result.violated), (12, 0));
}

#[test]
fn check_exits_1_on_a_violated_invariant_and_explains_it() {
    let text = OFFICE.replace("    nat:\n      - { out: wan, masquerade: true }\n", "");
    let path = scratch("nonat.yaml", &text);
    let (code, out) = reachlab(&["check", "--color", "never", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("4 invariants: 2 hold, 2 violated"), "{out}");
    assert!(out.contains("violated by 9 of 84 flows"), "{out}");
    // Notes are printed under violated invariants only; the isolation holds.
    assert!(!out.contains("note: the guest Wi-Fi"), "{out}");
    let (code, json) = reachlab(&["check", "--format", "json", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1));
    let document: serde_json::Value = serde_json::from_str(&json).expect("json");
    let leak = document["invariants"]
        .as_array()
        .expect("the invariants' records")
        .iter()
        .find(|r| r["invariant"] == "no-private-source-beyond edge")
        .expect("the invariant's record");
    assert_eq!(
        (leak["ok"].as_bool(), leak["violated"].as_u64()),
        (Some(false), Some(9))
    );
    // The same counts as the text's "4 invariants: 2 hold, 2 violated".
    let summary = &document["summary"];
    assert_eq!(
        (
            summary["invariants"].as_u64(),
            summary["invariants_violated"].as_u64()
        ),
        (Some(4), Some(2))
    );
    assert_eq!(summary["ok"].as_bool(), Some(false));
    // A violation names the line of the file that decided it, as a position.
    let why_origin = &leak["violations"][0]["why_origin"];
    assert!(why_origin["line"].as_u64().is_some_and(|l| l > 0), "{leak}");
}

#[test]
fn invariants_survive_the_round_trip_through_to_file() {
    let first = net(OFFICE);
    let text = to_yaml(&to_file(&first)).expect("serialisable");
    let second = net(&text);
    let words = |n: &Network| {
        n.invariants
            .iter()
            .map(|i| (i.to_string(), i.note.clone(), i.kind.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&first), words(&second));
    assert!(text.contains("groups:"), "{text}");
}

#[test]
fn every_invariant_of_the_docs_and_topologies_holds() {
    let doc = std::fs::read_to_string("docs/topology-format.md").expect("docs");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    let mut checked = 0;
    for text in blocks {
        let net = net(&text);
        for (inv, result) in net
            .invariants
            .iter()
            .zip(invariants::check(&net, &config()))
        {
            assert!(result.holds(), "docs: {inv}: {:?}", result.violations);
            checked += 1;
        }
    }
    for entry in std::fs::read_dir("topologies").expect("topologies") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let net = load_path(&path).expect("valid").network;
        for (inv, result) in net
            .invariants
            .iter()
            .zip(invariants::check(&net, &config()))
        {
            assert!(
                result.holds(),
                "{}: {inv}: {:?}",
                path.display(),
                result.violations
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 9,
        "the docs' and topologies' invariants: {checked}"
    );
}

#[test]
fn a_border_without_public_interfaces_is_warned_about() {
    let text = OFFICE.replace(
        "  - no-private-source-beyond: edge\n",
        "  - no-private-source-beyond: edge\n  - no-private-source-beyond: pc1\n",
    );
    let loaded = load_str("t.yaml", &text).expect("a warning, not an error");
    let warnings: Vec<&str> = loaded
        .report
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        warnings,
        [
            "node `pc1` has no interface whose addresses are all public: this invariant cannot be violated"
        ]
    );
}

#[test]
fn single_failures_of_the_office() {
    let net = net(OFFICE);
    let report = failures::failures(&net, 1, &config()).expect("8 cases");
    let broken: Vec<(String, Vec<String>)> = report
        .results
        .iter()
        .filter(|r| !r.broken.is_empty())
        .map(|r| {
            let mut labels: Vec<String> = r.broken.iter().map(|s| s.label.clone()).collect();
            labels.sort();
            (r.failure.describe(&net), labels)
        })
        .collect();
    // Segments staff, guests, internet, then the 5 nodes. staff down: pc1's ssh to pc2.
    // guests, internet or edge down: phone's http to web. A node that is down takes its own
    // flows and expectations out: pc1, pc2, phone and web down break nothing else.
    let ssh = vec![
        "pc1 ssh pc2:22: reply".to_owned(),
        "reachable ssh from staff to pc2".to_owned(),
    ];
    let http = vec![
        "phone curl 198.51.100.80:80: reply".to_owned(),
        "reachable http from guests to web".to_owned(),
    ];
    assert_eq!(report.results.len(), 8);
    assert_eq!(
        broken,
        [
            ("segment `staff` down".to_owned(), ssh),
            ("segment `guests` down".to_owned(), http.clone()),
            ("segment `internet` down".to_owned(), http.clone()),
            ("node `edge` down".to_owned(), http),
        ]
    );
    // The failing expectations (timeouts) stay failures; as `check` judges them they would
    // change (host unreachable when the LAN is down), which resilience does not count.
    assert!(report.baseline.iter().all(|s| s.holds));
    let exact = invariants::statuses(&net, &config(), &[], Judgement::Exact);
    assert_eq!(
        exact
            .iter()
            .filter(|s| s.subject == Subject::Invariant)
            .count(),
        4
    );
}

#[test]
fn a_floating_ip_breaks_with_its_router_not_with_nothing() {
    let net = load_path(Path::new("topologies/openstack-tenants.yaml"))
        .expect("valid")
        .network;
    let router_b = net.node_by_name("router-b").expect("router-b").id;
    let web_b = net.node_by_name("web-b").expect("web-b").id;
    let fip = "192.168.37.70".parse().expect("address");
    let http = reachlab::model::Probe::Tcp {
        port: reachlab::model::Port::HTTP,
    };
    // router-b holds 192.168.37.70 and DNATs it to web-b.
    assert_eq!(invariants::endpoint(&net, fip, &http), Some(web_b));
    let case = failures::Failure(vec![failures::Element::Node(router_b)]);
    let down = failures::apply(&net, &case);
    let after = invariants::statuses(&down, &config(), &[router_b], Judgement::Resilient);
    let broken: Vec<&str> = after
        .iter()
        .filter(|s| !s.holds)
        .map(|s| s.label.as_str())
        .collect();
    assert_eq!(
        broken,
        [
            "reachable http from campus to 192.168.37.70",
            "PC curl 192.168.37.70:80: reply"
        ]
    );
    let (code, out) = reachlab(&[
        "check",
        "--color",
        "never",
        "--failures",
        "1",
        "topologies/openstack-tenants.yaml",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("✗ node `router-b` down"), "{out}");
}
