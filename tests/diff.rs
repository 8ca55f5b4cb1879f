//! `reachlab diff` on the before/after pairs of `topologies/`: it lists exactly the flows that
//! change. The expected flows are derived from the files, not from the program: from their
//! `expect:` entries (which tests/emulate.rs checks against the kernel) and from what the
//! one rule that differs between the two files admits.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use reachlab::diff::{self, Diff, Direction, Entrance, ExpectedTarget, Options, ProbeChoice};
use reachlab::diff::{ProbeSource, Version};
use reachlab::matrix::{ProbeSpec, ProgressMode, Selection};
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
        probes: ProbeChoice::Given(probes.parse().expect("probes")),
    }
}

fn compare(old: &str, new: &str, options: &Options) -> Diff {
    compare_networks((old, &load(old)), (new, &load(new)), options)
}

fn compare_networks(old: (&str, &Network), new: (&str, &Network), options: &Options) -> Diff {
    diff::diff(
        old,
        new,
        options,
        &SimConfig::default(),
        ProgressMode::Never,
    )
    .expect("the selections fit both files")
}

fn probes(written: &str) -> Vec<ProbeSpec> {
    written
        .split(',')
        .map(|p| p.parse().expect("probe"))
        .collect()
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
        let origin = before.origin.as_ref().expect("an origin");
        assert_eq!(
            &*origin.file, "topologies/openstack-lab1-no-rules.yaml",
            "{origin}"
        );
        assert!(
            matches!(before.step, reachlab::explain::Cause::Filtered { .. }),
            "{:?}",
            before.step
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
    let text = reachlab::render::diff::text(&d, reachlab::render::Palette::new(false));
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
    // The position is `{file, line, column}`, as everywhere else; the step is data.
    assert!(
        change["old"]["cause"]["origin"]["line"].is_u64(),
        "{change}"
    );
    assert!(
        change["old"]["cause"]["step"]["kind"].is_string(),
        "{change}"
    );
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

/// A home network: `gw` routes the LAN (10.0.0.0/24) to the Internet segment, where `client`
/// is, and masquerades the LAN out of wan0. `nas` serves HTTP on 8080. `client` has no route
/// to 10.0.0.0/24 (only its connected 203.0.113.0/24).
const HOME: &str = "\
name: home
segments:
  - name: lan
  - name: internet
nodes:
  - name: nas
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.5/24] }
    routes:
      - { to: default, via: 10.0.0.1 }
    listen:
      - { port: 8080, http: { body: nas } }
  - name: laptop
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.20/24] }
    routes:
      - { to: default, via: 10.0.0.1 }
  - name: gw
    forwarding: true
    interfaces:
      - { name: lan0, segment: lan, addresses: [10.0.0.1/24] }
      - { name: wan0, segment: internet, addresses: [203.0.113.10/24] }
    nat:
      - { masquerade: true, src: 10.0.0.0/24, out: wan0 }
  - name: client
    interfaces:
      - { name: eth0, segment: internet, addresses: [203.0.113.50/24] }
";

/// HOME plus a port forward of the public address 203.0.113.10:8080 to the nas, for packets
/// from anywhere (no `in:`), with the hairpin masquerade docs/topology-format.md describes.
fn home_with_port_forward() -> String {
    let rules = "    nat:\n      \
        - { dnat: \"10.0.0.5:8080\", dst: 203.0.113.10, proto: tcp, dport: 8080 }\n      \
        - { masquerade: true, src: 10.0.0.0/24, dst: 10.0.0.5, out: lan0 }\n";
    let text = HOME.replace("    nat:\n", rules);
    assert_ne!(text, HOME);
    text
}

/// The case: adding a hairpin port forward. Both versions' listeners and DNAT rules
/// make one port relevant, 8080/tcp, so the default probes are ping and tcp:8080. Every node
/// at its first address with both: 4 × 4 × 2 cells less the 8 of a node to itself, 24 flows,
/// none of which changes (the rule matches only 203.0.113.10; laptop and gw reach the nas
/// directly on the LAN, client has no route to it). 203.0.113.10 is the rule's address and no
/// node's first address (gw's is 10.0.0.1): probed from the 4 nodes with tcp:8080 only, 4 more
/// flows, 28 in all. Before, 203.0.113.10:8080 is gw itself, which listens on nothing:
/// refused. After, it is the nas's 8080: nas and laptop (their SYN is masqueraded to
/// 10.0.0.1, so the nas answers gw) and client (the nas answers via its default route, gw)
/// get a reply; gw's own SYN does not pass prerouting, so it stays refused.
#[test]
fn a_hairpin_port_forward_shows_with_the_default_probes() {
    let old = load_str("home.yaml", HOME).expect("valid");
    let new = load_str("home-forward.yaml", &home_with_port_forward()).expect("valid");
    let versions = (
        ("home.yaml", &old.network),
        ("home-forward.yaml", &new.network),
    );
    let d = compare_networks(versions.0, versions.1, &Options::default());
    assert_eq!(d.probes, probes("ping,tcp:8080"));
    assert_eq!(
        d.probes_from,
        [
            ProbeSource::Ping,
            ProbeSource::Listeners,
            ProbeSource::PortForwards
        ]
    );
    assert_eq!(
        d.entrances,
        [Entrance {
            address: "203.0.113.10".parse().expect("address"),
            node: "gw".into(),
            probes: probes("tcp:8080"),
        }]
    );
    assert_eq!(d.compared, 24 + 4);
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("nas", "203.0.113.10", "tcp:8080", "refused", "reply"),
            flow("laptop", "203.0.113.10", "tcp:8080", "refused", "reply"),
            flow("client", "203.0.113.10", "tcp:8080", "refused", "reply"),
        ])
    );
    // What `diff` probed by default before: each node's first address with ping, 4 × 4 - 4
    // flows. It misses the change.
    let pings = compare_networks(versions.0, versions.1, &options("", "", "ping"));
    assert_eq!((pings.compared, pings.changes.len()), (12, 0));
    assert_eq!(pings.probes_from, [ProbeSource::Given]);
    assert!(pings.entrances.is_empty() && pings.expected.is_empty());
}

/// Two hosts on one segment; the new version starts a TCP listener on 5432 and a UDP one
/// (echo) on 53 on h2. The default probes become ping, tcp:5432 and udp:53 (the new file's
/// listeners): 2 × 2 × 3 cells less 6 to a node itself, 6 flows. From h1 to h2 the TCP port
/// goes from refused (h2's RST) to reply, the UDP port from refused (h2's port unreachable)
/// to reply (the echo); from h2 to h1 both stay refused.
#[test]
fn a_listener_on_a_new_port_shows_by_default() {
    let old_text = "\
name: pair
segments:
  - name: lan
nodes:
  - name: h1
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.1/24] }
  - name: h2
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.2/24] }
";
    let new_text = format!(
        "{old_text}    listen:\n      - {{ port: 5432 }}\n      - {{ port: 53, proto: udp }}\n"
    );
    let old = load_str("pair.yaml", old_text).expect("valid");
    let new = load_str("pair-listening.yaml", &new_text).expect("valid");
    let d = compare_networks(
        ("pair.yaml", &old.network),
        ("pair-listening.yaml", &new.network),
        &Options::default(),
    );
    assert_eq!(d.probes, probes("ping,tcp:5432,udp:53"));
    assert_eq!(d.probes_from, [ProbeSource::Ping, ProbeSource::Listeners]);
    assert_eq!(d.compared, 6);
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("h1", "h2", "tcp:5432", "refused", "reply"),
            flow("h1", "h2", "udp:53", "refused", "reply"),
        ])
    );
    assert!(d.entrances.is_empty() && d.expected.is_empty());
}

/// nat-port-forward.yaml, and the same with gw listening on tcp 22. Default probes: ping; the
/// expectations' ssh:2222, udp:5353, ssh:2223, ssh, tcp:8080, udp:53; the listeners' 22/tcp
/// (ssh already) and 53/udp; the DNAT rules' 2222, 2223 (ssh:2222, ssh:2223 already) and
/// 5353/udp: 7 probes. 7 nodes: 7 × 7 × 7 - 49 = 294 flows. The three rules say `in: wan0`
/// and no `dst`: they match wan0's 203.0.113.10 (no node's first address), probed from the 7
/// nodes with the rules' ssh:2222, ssh:2223, udp:5353: 21 flows. The expectations to
/// 203.0.113.10 with other probes are all client's (ssh, tcp:8080, udp:53, ping): 4 flows; its
/// others go to node names or to 10.0.0.5 (nas's first address), or use a forwarded port.
/// 319 in all. What changes: ssh to gw's 10.0.0.1 from nas, printer, laptop (on the LAN) and
/// neighbour (its route to 10.0.0.0/24 is via gw), refused before, reply now (client and isp
/// have no route to it in either); and client's ssh to 203.0.113.10, gw itself on port 22.
#[test]
fn the_expectations_targets_are_compared_by_default() {
    let path = "topologies/nat-port-forward.yaml";
    let text = std::fs::read_to_string(path).expect("readable");
    let listening = text.replace(
        "  - name: gw\n    forwarding: true\n",
        "  - name: gw\n    forwarding: true\n    listen:\n      - { port: 22 }\n",
    );
    assert_ne!(listening, text);
    let new = load_str("listening.yaml", &listening).expect("valid");
    let d = compare_networks(
        (path, &load(path)),
        ("listening.yaml", &new.network),
        &Options::default(),
    );
    assert_eq!(
        d.probes,
        probes("ping,ssh,ssh:2222,ssh:2223,tcp:8080,udp:53,udp:5353")
    );
    assert_eq!(
        d.probes_from,
        [
            ProbeSource::Ping,
            ProbeSource::Expectations,
            ProbeSource::Listeners,
            ProbeSource::PortForwards
        ]
    );
    assert_eq!(
        d.entrances,
        [Entrance {
            address: "203.0.113.10".parse().expect("address"),
            node: "gw".into(),
            probes: probes("ssh:2222,ssh:2223,udp:5353"),
        }]
    );
    assert_eq!(
        d.expected,
        [ExpectedTarget {
            to: "203.0.113.10".into(),
            from: vec!["client".into()],
            probes: probes("ping,ssh,tcp:8080,udp:53"),
        }]
    );
    assert_eq!(d.compared, 294 + 21 + 4);
    assert_eq!(
        flows(&d),
        BTreeSet::from([
            flow("nas", "gw", "ssh", "refused", "reply"),
            flow("printer", "gw", "ssh", "refused", "reply"),
            flow("laptop", "gw", "ssh", "refused", "reply"),
            flow("neighbour", "gw", "ssh", "refused", "reply"),
            flow("client", "203.0.113.10", "ssh", "refused", "reply"),
        ])
    );
}

/// The command on the hairpin pair (see the test above for each number): it names the probes
/// and where they come from, the DNAT address, and the flows compared, in text and JSON; an
/// explicit --probe replaces the default.
#[test]
fn the_report_names_the_probes_compared() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diff-hairpin");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let (old, new) = (dir.join("home.yaml"), dir.join("home-forward.yaml"));
    std::fs::write(&old, HOME).expect("written");
    std::fs::write(&new, home_with_port_forward()).expect("written");
    let (old, new) = (old.to_string_lossy(), new.to_string_lossy());

    let text = reachlab(&["diff", &old, &new, "--color", "never"]);
    assert_eq!(text.status.code(), Some(1), "{text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    for line in [
        "4 sources × 4 destinations × 2 probes, 28 flows compared",
        "  probes: ping, tcp:8080 (the default: ping and the files' listeners and port forwards; --probe replaces it)",
        "  DNAT address 203.0.113.10 (gw): tcp:8080, from every source",
        "  + laptop → 203.0.113.10  tcp:8080  refused → reply",
        "3 of 28 flows changed: 3 opened, 0 closed, 0 failing differently",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    let json = reachlab(&["diff", &old, &new, "--format", "json"]);
    assert_eq!(json.status.code(), Some(1), "{json:?}");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["probes"], serde_json::json!(["ping", "tcp:8080"]));
    assert_eq!(
        json["probes_from"],
        serde_json::json!(["ping", "listeners", "port forwards"])
    );
    assert_eq!(json["compared"], 28);
    assert_eq!(json["opened"], 3);
    assert_eq!(
        json["entrances"],
        serde_json::json!([{"address": "203.0.113.10", "node": "gw", "probes": ["tcp:8080"]}])
    );

    // ping alone, each node's first address: 12 flows, nothing changes.
    let given = reachlab(&["diff", &old, &new, "--probe", "ping", "--color", "never"]);
    assert_eq!(given.status.code(), Some(0), "{given:?}");
    let given = String::from_utf8_lossy(&given.stdout);
    assert!(
        given.contains("  probes: ping (given with --probe)\n"),
        "{given}"
    );
    assert!(given.contains("no flow changed (12 compared)"), "{given}");
    assert!(!given.contains("DNAT address"), "{given}");
}
