//! `reachlab diff` on the before/after pairs of `topologies/`: it lists exactly the flows that
//! change. The expected flows are derived from the files, not from the program: from their
//! `expect:` entries (which tests/emulate.rs checks against the kernel) and from what the
//! one rule that differs between the two files admits.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use reachlab::diff::{self, Diff, Direction, Options, Version};
use reachlab::matrix::{ProgressMode, Selection};
use reachlab::model::Network;
use reachlab::sim::SimConfig;
use reachlab::topology::{load_path, load_str};

fn load(path: &str) -> Network {
    load_path(Path::new(path))
        .unwrap_or_else(|r| panic!("{path}: {:?}", r.diagnostics))
        .network
}

fn options(from: &str, to: &str, probes: &str) -> Options {
    let pick = |s: &str| -> Selection {
        if s.is_empty() {
            Selection::All
        } else {
            s.parse().expect("selection")
        }
    };
    Options {
        from: pick(from),
        to: pick(to),
        probes: probes.parse().expect("probes"),
    }
}

fn compare(old: &str, new: &str, options: &Options) -> Diff {
    diff::diff(
        (old, &load(old)),
        (new, &load(new)),
        options,
        &SimConfig::default(),
        ProgressMode::Never,
    )
    .expect("the selections fit both files")
}

/// (from, to, probe, old outcome, new outcome) of every changed flow.
type Flow = (String, String, String, String, String);

fn flows(d: &Diff) -> BTreeSet<Flow> {
    d.changes
        .iter()
        .map(|c| {
            (
                c.from.clone(),
                c.to.clone(),
                c.probe.to_string(),
                c.old.outcome.to_string(),
                c.new.outcome.to_string(),
            )
        })
        .collect()
}

fn flow(from: &str, to: &str, probe: &str, old: &str, new: &str) -> Flow {
    (from.into(), to.into(), probe.into(), old.into(), new.into())
}

/// Lab 1, OpenStack: the report's two rules (ingress ICMP, ingress TCP 22) open ping and ssh
/// from the PC to the floating IP 192.168.37.69 (no-rules.yaml expects timeout for both,
/// openstack-lab1.yaml reply for both). The fixed IPs stay unreachable from the PC in both
/// files: the campus edge drops 192.168.0.0/16 in both (expected timeout for 192.168.0.98 in
/// both, for 192.168.0.9 in openstack-lab1.yaml), whatever the security group says.
#[test]
fn lab1_rules_open_ping_and_ssh_to_the_floating_ip() {
    let d = compare(
        "topologies/openstack-lab1-no-rules.yaml",
        "topologies/openstack-lab1.yaml",
        &options("PC", "192.168.37.69,192.168.0.98,192.168.0.9", "ping,ssh"),
    );
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("PC", "192.168.37.69", "ping", "timeout", "reply"),
            flow("PC", "192.168.37.69", "ssh", "timeout", "reply"),
        ])
    );
    assert_eq!(d.compared, 6);
    for c in &d.changes {
        assert_eq!(c.direction(), Direction::Opened);
        assert!(c.new.cause.is_none(), "a reply has no cause");
        let before = c.old.cause.as_ref().expect("the old failure is explained");
        assert!(
            before.line.contains("security group"),
            "the cause is the security group: {}",
            before.line
        );
        let origin = before.origin.as_deref().unwrap_or_default();
        assert!(
            origin.starts_with("topologies/openstack-lab1-no-rules.yaml:"),
            "{origin}"
        );
    }
    assert!(d.added.is_empty() && d.removed.is_empty());
}

/// The five floating IPs of the calculator and the ports of its services (openstack-calculator.yaml).
const CALCULATOR: [(&str, u16); 5] = [
    ("192.168.37.155", 50000),
    ("192.168.37.13", 50001),
    ("192.168.37.183", 50002),
    ("192.168.37.177", 50003),
    ("192.168.37.51", 50004),
];

/// The calculator: the rule "ingress TCP 50000-50004 from 0.0.0.0/0" admits the PC's
/// connections to every floating IP on each of the five ports. Before, the group has only the
/// ICMP and SSH rules, so they all time out (no-rule.yaml expects it for :50000 and :50001).
/// After, each instance answers on its own port (reply: expected for :50000, :50001, :50004)
/// and resets the four others, where nothing listens: refused.
#[test]
fn the_calculator_rule_opens_each_service_and_lets_the_others_refuse() {
    let to: Vec<&str> = CALCULATOR.iter().map(|(ip, _)| *ip).collect();
    let probes: Vec<String> = CALCULATOR
        .iter()
        .map(|(_, port)| format!("http:{port}"))
        .collect();
    let d = compare(
        "topologies/openstack-calculator-no-rule.yaml",
        "topologies/openstack-calculator.yaml",
        &options("PC", &to.join(","), &probes.join(",")),
    );
    let mut want = BTreeSet::new();
    for (ip, port) in CALCULATOR {
        for (_, probe) in CALCULATOR {
            let after = if probe == port { "reply" } else { "refused" };
            want.insert(flow("PC", ip, &format!("http:{probe}"), "timeout", after));
        }
    }
    assert_eq!(flows(&d), want);
    assert_eq!(d.count(Direction::Opened), 5);
    assert_eq!(d.count(Direction::Changed), 20);
    assert_eq!(d.count(Direction::Closed), 0);
}

/// The same pair over every node, probing the sum service's port 50001 at each node's first
/// address (instances: their fixed IPs). Only `router1` reaches the tenant network without
/// being a member of `default` (its port has no security group and 192.168.0.1 is no member's
/// address); the PC, the campus routers and the ISP never get to the tenant network (the edge
/// drops RFC 1918 destinations, the ISP has no route), and the instances are members, which
/// `default` admits with or without the rule. So five flows change, all from `router1`: it now
/// reaches sumService, and the four other instances now refuse instead of staying silent.
#[test]
fn over_every_node_only_the_router_outside_the_group_sees_the_rule() {
    let d = compare(
        "topologies/openstack-calculator-no-rule.yaml",
        "topologies/openstack-calculator.yaml",
        &options("", "", "http:50001"),
    );
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("router1", "sumService", "http:50001", "timeout", "reply"),
            flow(
                "router1",
                "calculatorService",
                "http:50001",
                "timeout",
                "refused"
            ),
            flow("router1", "subService", "http:50001", "timeout", "refused"),
            flow("router1", "MulService", "http:50001", "timeout", "refused"),
            flow("router1", "divService", "http:50001", "timeout", "refused"),
        ])
    );
    // Ping and ssh use no port of 50000-50004: nothing else can change.
    let d = compare(
        "topologies/openstack-calculator-no-rule.yaml",
        "topologies/openstack-calculator.yaml",
        &options("", "", "ping,ssh"),
    );
    assert!(d.changes.is_empty(), "{:?}", flows(&d));
    assert!(!d.changed());
}

/// Lab 2: lab2-nodeport-open.yaml adds "ingress TCP 30000-32767" to `default`. The PC's
/// requests to the nodePort 32347 on the three instances' floating IPs go from timeout (expected
/// for master's in lab2-nodeport.yaml) to reply (expected for master's and worker2's in
/// -open.yaml; worker1 runs the same kube-proxy rules); ping and ssh were already admitted.
#[test]
fn the_nodeport_rule_opens_the_nodeport_on_three_instances() {
    let d = compare(
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        &options(
            "PC",
            "192.168.37.62,192.168.37.69,192.168.37.186",
            "ping,ssh,http:32347",
        ),
    );
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("PC", "192.168.37.62", "http:32347", "timeout", "reply"),
            flow("PC", "192.168.37.69", "http:32347", "timeout", "reply"),
            flow("PC", "192.168.37.186", "http:32347", "timeout", "reply"),
        ])
    );
    // The rule's ports exclude 22 and ICMP has none: over every node, ping and ssh do not move.
    let all = compare(
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        &options("", "", "ping,ssh"),
    );
    assert!(!all.changed(), "{:?}", flows(&all));
    assert_eq!(all.compared, 11 * 10 * 2);
}

#[test]
fn nodes_only_in_one_version_are_listed_and_not_compared() {
    let old = load_str("old.yaml", &reachlab::generate::hosts(3, 1)).expect("valid");
    let new_text = reachlab::generate::hosts(4, 1).replace("name: h0\n", "name: h7\n");
    let new = load_str("new.yaml", &new_text).expect("valid");
    let d = diff::diff(
        ("old.yaml", &old.network),
        ("new.yaml", &new.network),
        &options("", "", "ping"),
        &SimConfig::default(),
        ProgressMode::Never,
    )
    .expect("diff");
    assert_eq!(d.removed, ["h0"]);
    assert_eq!(d.added, ["h7", "h3"]);
    // r, h1, h2 in both: 3 × 2 flows, all replies in both.
    assert_eq!((d.sources, d.destinations, d.compared), (3, 3, 6));
    assert!(d.changes.is_empty() && d.changed());
    let text = d.text(reachlab::render::Palette::new(false));
    assert!(text.contains("nodes only in old.yaml: h0"), "{text}");
    assert!(text.contains("nodes only in new.yaml: h7, h3"), "{text}");
}

#[test]
fn a_version_is_a_file_or_a_git_revision_of_one() {
    assert_eq!(
        Version::parse("topologies/lab2-nodeport.yaml"),
        Version::File("topologies/lab2-nodeport.yaml".into())
    );
    assert_eq!(
        Version::parse("HEAD~1:topologies/lab2-nodeport.yaml"),
        Version::Git {
            rev: "HEAD~1".into(),
            path: "topologies/lab2-nodeport.yaml".into()
        }
    );
    assert_eq!(
        Version::parse("nowhere.yaml"),
        Version::File("nowhere.yaml".into())
    );
}

fn reachlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_command_exits_1_on_a_change_0_without_and_2_on_bad_input() {
    let changed = reachlab(&[
        "diff",
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        "--from",
        "PC",
        "--to",
        "192.168.37.62,192.168.37.69,192.168.37.186",
        "--probe",
        "http:32347",
        "--color",
        "never",
    ]);
    assert_eq!(changed.status.code(), Some(1), "{changed:?}");
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(text.contains("opened (now reply): 3"), "{text}");
    assert!(
        text.contains("+ PC → 192.168.37.62  http:32347  timeout → reply"),
        "{text}"
    );
    assert!(text.contains("3 of 3 flows changed"), "{text}");

    let same = reachlab(&[
        "diff",
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        "--probe",
        "ping",
        "--format",
        "json",
    ]);
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    let json: serde_json::Value = serde_json::from_slice(&same.stdout).expect("JSON");
    assert_eq!(json["changed"], serde_json::json!([]));
    assert_eq!(json["compared"], 110);

    let broken = reachlab(&[
        "diff",
        "topologies/lab2-nodeport.yaml",
        "tests/broken/does-not-exist.yaml",
    ]);
    assert_eq!(broken.status.code(), Some(2), "{broken:?}");
    let unknown = reachlab(&[
        "diff",
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        "--from",
        "nobody",
    ]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
}

#[test]
fn the_json_report_has_both_sides_of_each_change() {
    let out = reachlab(&[
        "diff",
        "topologies/openstack-lab1-no-rules.yaml",
        "topologies/openstack-lab1.yaml",
        "--from",
        "PC",
        "--to",
        "192.168.37.69",
        "--probe",
        "ssh",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let change = &json["changed"][0];
    assert_eq!(change["from"], "PC");
    assert_eq!(change["to"], "192.168.37.69");
    assert_eq!(change["probe"], "ssh");
    assert_eq!(change["change"], "opened");
    assert_eq!(change["old"]["outcome"], "timeout");
    assert_eq!(change["new"]["outcome"], "reply");
    assert!(change["old"]["cause"]["line"].is_string());
    assert!(change["new"]["cause"].is_null());
}

/// `REV:PATH` reads the file as git has it. Only where this is a git checkout whose copy of
/// the files is the committed one (a packaged crate has no history).
#[test]
fn a_git_revision_compares_like_the_file() {
    let files = [
        "topologies/openstack-lab1-no-rules.yaml",
        "topologies/openstack-lab1.yaml",
    ];
    let clean = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--"])
        .args(files)
        .status()
        .is_ok_and(|s| s.success());
    if !clean {
        eprintln!("SKIPPED: no git, or the files differ from HEAD");
        return;
    }
    let rev = format!("HEAD:{}", files[0]);
    let args = |old: &str| {
        reachlab(&[
            "diff",
            old,
            files[1],
            "--from",
            "PC",
            "--to",
            "192.168.37.69",
            "--probe",
            "ping,ssh",
            "--color",
            "never",
        ])
    };
    let (from_git, from_file) = (args(&rev), args(files[0]));
    assert_eq!(from_git.status.code(), Some(1), "{from_git:?}");
    let text = String::from_utf8_lossy(&from_git.stdout);
    assert!(text.contains("2 of 2 flows changed"), "{text}");
    // The same report but for the name of the old side and the causes' file names.
    let tidy = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .replace(&rev, files[0])
            .replace(&format!("{}@HEAD", files[0]), files[0])
    };
    assert_eq!(tidy(&from_git), tidy(&from_file));

    let missing = reachlab(&["diff", "no-such-revision-xyz:topologies/x.yaml", files[1]]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("git show"));
}
