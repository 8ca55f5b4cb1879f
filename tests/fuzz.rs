//! `reachlab fuzz`: the mutations a file offers, what each breaks, and the `testing::mutations`
//! strategy. The office below is small enough that every mutation's effect is worked out by hand
//! (the comments say how); the test compares the program with that.
#![cfg(feature = "testing")]

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use proptest::test_runner::{Config, TestRunner};
use reachlab::invariants::fuzz::{Effect, FuzzOptions, FuzzTarget, Mutation, fuzz};
use reachlab::sim::SimConfig;

/// pc1 and pc2 (ssh) on `staff`, phone on `guests`, `edge` masquerading both to `web` (http) and
/// dropping what goes between the LANs, both ways. The same office as tests/invariants.rs.
const OFFICE: &str = r#"segments:
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
  - reachable: { from: staff, to: pc2, probe: ssh }
  - reachable: { from: guests, to: web, probe: curl }
  - no-private-source-beyond: edge
expect:
  - { from: pc1, ssh: pc2, outcome: reply }
  - { from: phone, curl: "http://198.51.100.80/", outcome: reply, body: hello }
  - { from: phone, ping: pc1, outcome: timeout }
  - { from: pc1, ping: phone, outcome: timeout }
"#;

fn target() -> FuzzTarget {
    match FuzzTarget::from_text("office.yaml", OFFICE) {
        Ok(t) => t,
        Err(report) => panic!("invalid: {:#?}", report.diagnostics),
    }
}

/// Line (1-based) of the first line of OFFICE containing `needle`.
fn line_of(needle: &str) -> u32 {
    OFFICE
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in OFFICE"))
}

#[test]
fn every_mutation_of_the_office_and_what_it_breaks() {
    let target = target();
    // pc1: address, route; pc2: address, route, listener; phone: address, route; edge:
    // forwarding, 3 addresses, the NAT rule, 2 forward rules; web: address, listener.
    assert_eq!(target.mutants().len(), 16);
    let report = fuzz(&target, &FuzzOptions::default(), &SimConfig::default());
    assert!(report.baseline.iter().all(|s| s.holds));
    let effects: BTreeMap<String, Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            let what = match &r.effect {
                Effect::Breaks(b) => {
                    let mut labels: Vec<String> = b.iter().map(|s| s.label.clone()).collect();
                    labels.sort();
                    labels
                }
                Effect::Nothing => vec!["nothing".to_owned()],
                Effect::Invalid(d) => vec![format!("invalid: {}", d.code)],
            };
            (r.mutant.description.clone(), what)
        })
        .collect();
    let want = |description: &str, labels: &[&str]| {
        let got = effects
            .get(description)
            .unwrap_or_else(|| panic!("no mutation `{description}` in {effects:#?}"));
        assert_eq!(got, labels, "{description}");
    };
    let curl = "phone curl 198.51.100.80:80: reply";
    let http = "reachable http from guests to web";
    // Without masquerade, web cannot answer the LANs, and their packets leave `wan` from
    // private addresses.
    want(
        "drop nat rule 1 of `edge` (out wan, masquerade)",
        &["no-private-source-beyond edge", curl, http],
    );
    // The guests' packets reach the PCs, whose answers the other rule still drops: the
    // expectation (timeout) holds, the isolation does not. Likewise the other way.
    want(
        "flip forward rule 1 of `edge` (in guests, out staff): drop → accept",
        &["isolated [staff, guests]"],
    );
    want(
        "flip forward rule 2 of `edge` (in staff, out guests): drop → accept",
        &["isolated [staff, guests]"],
    );
    want("turn forwarding off on `edge`", &[curl, http]);
    want(
        "drop listener tcp/22 of `pc2`",
        &["pc1 ssh pc2:22: reply", "reachable ssh from staff to pc2"],
    );
    want("drop listener tcp/80 of `web`", &[curl, http]);
    // Expectations are judged exactly: a timeout that becomes another failure breaks them.
    // Without 192.168.1.1 pc1's ARP for its gateway fails (host unreachable), and edge has no
    // route to the staff LAN (net unreachable to the phone).
    want(
        "drop address 192.168.1.1/24 of `edge` interface `staff`",
        &["pc1 ping phone: timeout", "phone ping pc1: timeout"],
    );
    want(
        "drop address 198.51.100.2/24 of `edge` interface `wan`",
        &[curl, http],
    );
    // The phone's gateway is gone: its curl and ping fail at once, and edge cannot route to it.
    want(
        "drop address 10.10.0.1/24 of `edge` interface `guests`",
        &[
            "pc1 ping phone: timeout",
            curl,
            "phone ping pc1: timeout",
            http,
        ],
    );
    want(
        "drop route `default via 192.168.1.1` of `pc1`",
        &["pc1 ping phone: timeout"],
    );
    want(
        "drop route `default via 10.10.0.1` of `phone`",
        &[curl, "phone ping pc1: timeout", http],
    );
    // pc2 only answers, on its own LAN: nothing depends on its default route.
    want(
        "drop route `default via 192.168.1.1` of `pc2`",
        &["nothing"],
    );
    // A host without its address: its route's gateway is on no subnet of it (or, for web,
    // `reachable … to: web` has no address to probe).
    for host in [
        "192.168.1.11/24 of `pc1`",
        "192.168.1.12/24 of `pc2`",
        "10.10.0.50/24 of `phone` interface `wlan0`",
    ] {
        let key = effects
            .keys()
            .find(|k| k.contains(host))
            .unwrap_or_else(|| panic!("{host}"));
        assert_eq!(effects[key], ["invalid: invalid-gateway"], "{key}");
    }
    want(
        "drop address 198.51.100.80/24 of `web` interface `eth0`",
        &["invalid: bad-value"],
    );
    assert_eq!(effects.len(), 16);
}

#[test]
fn mutations_name_the_line_of_the_original_file() {
    let target = target();
    let mutants = target.mutants();
    let at = |kind: &str| {
        mutants
            .iter()
            .filter(|m| m.mutation.kind() == kind)
            .map(|m| m.span.line)
            .collect::<Vec<_>>()
    };
    assert_eq!(at("drop-nat-rule"), [line_of("masquerade: true")]);
    assert_eq!(at("disable-forwarding"), [line_of("forwarding: true")]);
    assert_eq!(
        at("flip-filter-rule"),
        [
            line_of("in: guests, out: staff"),
            line_of("in: staff, out: guests")
        ]
    );
    assert_eq!(
        at("drop-listener"),
        [line_of("port: 22"), line_of("port: 80")]
    );
    // The NAT rule's first key is `out`: its value is where the mutation points.
    let nat = mutants
        .iter()
        .find(|m| m.mutation.kind() == "drop-nat-rule")
        .expect("the NAT rule");
    let column = OFFICE
        .lines()
        .nth(nat.span.line as usize - 1)
        .expect("line")
        .find("wan")
        .expect("wan")
        + 1;
    assert_eq!(nat.span.column as usize, column);
    // File order.
    assert!(
        mutants
            .windows(2)
            .all(|w| w[0].span.offset <= w[1].span.offset)
    );
    // A mutation of another file's element is refused, not applied.
    let foreign = Mutation::DropRoute { node: 40, route: 0 };
    assert!(target.apply(&foreign).is_err());
}

#[test]
fn a_limit_draws_the_same_mutations_for_the_same_seed() {
    let target = target();
    let config = SimConfig::default();
    let pick = |seed| {
        let options = FuzzOptions {
            limit: Some(5),
            seed,
        };
        fuzz(&target, &options, &config)
            .results
            .iter()
            .map(|r| r.mutant.clone())
            .collect::<Vec<_>>()
    };
    let first = pick(7);
    assert_eq!(first.len(), 5);
    assert_eq!(first, pick(7));
    assert!(
        first
            .windows(2)
            .all(|w| w[0].span.offset <= w[1].span.offset)
    );
    let all = target.mutants();
    assert!(first.iter().all(|m| all.contains(m)));
}

#[test]
fn the_command_reports_and_exits_0() {
    let path = support::scratch::Scratch::file("fuzz", "office.yaml", OFFICE);
    let file = path.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
            .args(args)
            .output()
            .expect("reachlab runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["fuzz", "--color", "never", file]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.ends_with(
            "16 mutations: 11 break something, 1 break nothing, 4 make the file invalid\n"
        ),
        "{out}"
    );
    let pc2_route = format!(
        "{file}:{}:15  drop route `default via 192.168.1.1` of `pc2`",
        line_of("name: pc2") + 4
    );
    assert!(out.contains(&pc2_route), "{pc2_route}\n{out}");
    let (code, json) = run(&["fuzz", "--format", "json", "--limit", "3", file]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(doc["available"], 16);
    assert_eq!(doc["mutations"].as_array().map(Vec::len), Some(3));
    let (code, _) = run(&["fuzz", "--color", "never", "tests/broken/invariants.yaml"]);
    assert_eq!(code, Some(2), "an invalid file is refused");
}

#[test]
fn the_mutation_strategy_draws_the_file_mutations() {
    let target = target();
    let all = target.mutants();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&reachlab::testing::mutations(&target), |m| {
            assert!(all.contains(&m));
            // Every drawn mutation either lowers or makes the file invalid; it never panics.
            let _ = target.apply(&m.mutation);
            Ok(())
        })
        .expect("holds");
    // A file without anything to mutate rejects every case instead of panicking.
    let bare = FuzzTarget::from_text(
        "bare.yaml",
        "segments: [{ name: lan }]\nnodes:\n  - name: a\n",
    )
    .expect("valid");
    assert!(bare.mutants().is_empty());
    let mut runner = TestRunner::new(Config {
        cases: 4,
        max_global_rejects: 8,
        failure_persistence: None,
        ..Config::default()
    });
    assert!(
        runner
            .run(&reachlab::testing::mutations(&bare), |_| Ok(()))
            .is_err()
    );
}
