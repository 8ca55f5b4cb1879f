//! The model's netfilter written as iptables text (`reachlab::topology::iptables::save` and
//! `rule_lines`, which `reachlab show` prints) must be what the kernel's iptables prints once
//! that text is loaded. Each case gets a network namespace of its own (named
//! `reachlab-ipt<pid>-<case>`, removed afterwards, also when the test fails), the text of
//! `save` is loaded with `iptables-restore`, and there:
//!
//! - `iptables-save` must print our text byte for byte, once its `#` comment lines (generator
//!   and time) are dropped and the chain counters `[packets:bytes]` read `[0:0]`;
//! - `iptables -t mangle -S`, `iptables -t raw -S`, `iptables -S` and `iptables -t nat -S`,
//!   for each table our text has, must print `rule_lines`' lines of that table, without their
//!   `-t mangle ` / `-t raw ` / `-t nat ` lead, byte for byte and in order.
//!
//! And iptables-nft prints its tables in one fixed order, whatever order they were loaded in:
//! mangle, security, raw, filter, nat (`save` writes that order).
//!
//! The cases: every node with rules of every file in `topologies/` and `tests/kernel/`, and
//! rule sets built here that use every construct of the model (docs/netfilter.md, "Writing
//! iptables-save text").
//!
//! Needs root, iproute2 and iptables. Without them the test says SKIPPED on stderr and passes,
//! unless `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a failure.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reachlab::model::{
    AddrRange, AddrTypes, Chain, ChainId, ConnMarkOp, CtStatus, Effect, FilterRule, Flow, IfaceId,
    L4, MarkMatch, MarkSet, Match, Multiport, NatAction, NatFlags, NatHook, NatRule, Netfilter,
    Network, Origin, Port, PortSide, RejectWith, RuleTarget, SetMatch, States, UserChain, Verdict,
};
use reachlab::render::iptables_lines;
use reachlab::topology::iptables::{rule_lines, save};
use reachlab::topology::{load_path, load_str};

mod support;

const IPTABLES: support::Tool = support::Tool {
    program: "iptables",
    arg: "--version",
    package: "iptables",
};

/// A namespace this test created, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip runs");
        assert!(added.status.success(), "ip netns add {name}: {added:?}");
        Netns(name)
    }

    /// What `program args` prints inside the namespace; it must succeed.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .output()
            .expect("iptables runs");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Loads `text` with `iptables-restore`.
    fn restore(&self, text: &str, place: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, "iptables-restore"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("iptables-restore runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("written");
        let out = child.wait_with_output().expect("iptables-restore ends");
        assert!(
            out.status.success(),
            "{place}: iptables-restore refused our text: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// `iptables-save` output without its comment lines, every chain's counters `[0:0]`.
fn normalised(saved: &str) -> String {
    let mut out = String::new();
    for line in saved.lines().filter(|l| !l.starts_with('#')) {
        match line.rfind(" [") {
            Some(at) if line.starts_with(':') && line.ends_with(']') => {
                out.push_str(&line[..at]);
                out.push_str(" [0:0]");
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Loads `nf` as `save` writes it into a namespace of its own (`reachlab-ipt<pid>-<label>`)
/// and compares what iptables prints there with `save` and `rule_lines`; `case` names it in
/// failures.
fn check(net: &Network, nf: &Netfilter, label: &str, case: &str) {
    let ns = Netns::new(format!("reachlab-ipt{}-{label}", std::process::id()));
    let text = save(net, nf);
    ns.restore(&text, case);
    let kernel = normalised(&ns.run("iptables-save", &[]));
    assert_eq!(
        kernel.lines().collect::<Vec<_>>(),
        text.lines().collect::<Vec<_>>(),
        "{case}: iptables-save"
    );
    assert_eq!(kernel, text, "{case}: iptables-save, byte for byte");
    let lines = rule_lines(net, nf);
    assert_eq!(
        lines,
        iptables_lines(net, nf),
        "{case}: show prints rule_lines"
    );
    let tables: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix('*')).collect();
    let mut seen = 0;
    for table in &tables {
        let lead = if *table == "filter" {
            String::new()
        } else {
            format!("-t {table} ")
        };
        let ours: Vec<&str> = lines
            .iter()
            .filter_map(|l| match table {
                &"filter" => (!l.starts_with("-t ")).then_some(l.as_str()),
                _ => l.strip_prefix(lead.as_str()),
            })
            .collect();
        seen += ours.len();
        let listed = ns.run("iptables", &["-t", table, "-S"]);
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            ours,
            "{case}: iptables -t {table} -S"
        );
    }
    assert_eq!(
        seen,
        lines.len(),
        "{case}: rule_lines of tables save left out"
    );
}

fn topology_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["topologies", "tests/kernel"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("directory"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_topology_is_written_as_iptables_prints_it() {
    if !support::can_run(
        "every_topology_is_written_as_iptables_prints_it",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let mut nodes = 0;
    for file in topology_files() {
        let net = load_path(Path::new(&file)).expect("valid").network;
        for node in &net.nodes {
            let Some(nf) = &node.netfilter else { continue };
            nodes += 1;
            let case = format!("{} node {}", file.display(), node.name);
            check(&net, nf, &nodes.to_string(), &case);
        }
    }
    assert!(nodes >= 20, "the topologies have rules on {nodes} nodes");
}

/// A gateway with a LAN (`eth0`) and a WAN (`wan0`) interface, to hang rule sets on.
fn gateway() -> (Network, IfaceId, IfaceId) {
    let yaml = "\
name: iptables-constructs
segments: [{ name: lan }, { name: wan }]
nodes:
  - name: gw
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.168.1.1/24] }
      - { name: wan0, segment: wan, addresses: [203.0.113.1/24] }
";
    let net = load_str("constructs.yaml", yaml).expect("valid").network;
    let id = |name: &str| {
        net.interfaces
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.id)
            .expect("interface")
    };
    let (lan, wan) = (id("eth0"), id("wan0"));
    (net, lan, wan)
}

fn net(s: &str) -> Option<ipnet::Ipv4Net> {
    Some(s.parse().expect("prefix"))
}

fn rule(matches: Match, target: impl Into<RuleTarget>) -> FilterRule {
    FilterRule {
        matches,
        target: target.into(),
        origin: Origin::default(),
        comment: None,
        platform_fix: None,
    }
}

fn commented(comment: &str, r: FilterRule) -> FilterRule {
    FilterRule {
        comment: Some(comment.to_owned()),
        ..r
    }
}

fn nat(hook: NatHook, matches: Match, action: NatAction) -> NatRule {
    NatRule {
        hook,
        matches,
        action,
        origin: Origin::default(),
        comment: None,
    }
}

fn user<R>(name: &str, rules: Vec<R>) -> UserChain<R> {
    UserChain {
        name: name.to_owned(),
        rules,
        origin: Origin::default(),
    }
}

fn effect(e: Effect) -> RuleTarget {
    RuleTarget::Effect(e)
}

fn mark(value: u32, mask: u32) -> Effect {
    Effect::Mark(MarkSet { value, mask })
}

fn mark_match(value: u32, mask: u32, negated: bool) -> Option<MarkMatch> {
    Some(MarkMatch {
        value,
        mask,
        negated,
    })
}

fn tcp() -> Match {
    Match {
        proto: Some(L4::Tcp),
        ..Match::default()
    }
}

/// The filter table's INPUT chain: every match, negated and not, and the REJECT kinds.
fn input_rules(lan: IfaceId) -> Vec<FilterRule> {
    let reject = |with| Verdict::Reject(with);
    vec![
        rule(
            Match {
                not_src: net("10.0.0.0/8"),
                not_dst: net("10.1.0.0/16"),
                not_in_iface: Some(lan),
                not_proto: Some(L4::Udp),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        commented(
            "simple",
            rule(
                Match {
                    src: net("192.168.1.7/24"),
                    dst: net("192.168.1.1/32"),
                    in_iface: Some(lan),
                    sport: Some((1024, 65535)),
                    not_dport: Some((22, 22)),
                    states: States::NEW,
                    not_states: States::INVALID.with(States::DNAT),
                    status: Some(SetMatch {
                        set: CtStatus::CONFIRMED.with(CtStatus::SEEN_REPLY),
                        negated: true,
                    }),
                    ..tcp()
                },
                Verdict::Accept,
            ),
        ),
        commented(
            "security group \"default\" of instance 'VM', C:\\ and\ttab, ünï\ncode",
            rule(
                Match {
                    not_sport: Some((5, 5)),
                    dport: Some((80, 90)),
                    ..tcp()
                },
                reject(RejectWith::TcpReset),
            ),
        ),
        commented(
            "",
            rule(
                Match {
                    proto: Some(L4::Udp),
                    multiport: Some(Multiport {
                        side: PortSide::Destination,
                        ranges: vec![(53, 53), (67, 68)],
                        negated: true,
                    }),
                    ..Match::default()
                },
                reject(RejectWith::PortUnreachable),
            ),
        ),
        rule(
            Match {
                multiport: Some(Multiport {
                    side: PortSide::Source,
                    ranges: vec![(1, 1), (2, 2)],
                    negated: false,
                }),
                ..tcp()
            },
            reject(RejectWith::HostUnreachable),
        ),
        rule(
            Match {
                multiport: Some(Multiport {
                    side: PortSide::Either,
                    ranges: vec![(80, 80), (443, 443), (8000, 8080)],
                    negated: false,
                }),
                ..tcp()
            },
            reject(RejectWith::NetUnreachable),
        ),
        rule(
            Match {
                not_states: States::INVALID,
                status: Some(SetMatch {
                    set: CtStatus::EXPECTED,
                    negated: false,
                }),
                ..Match::default()
            },
            reject(RejectWith::AdminProhibited),
        ),
        rule(
            Match {
                states: States::ALL
                    .iter()
                    .fold(States::any(), |s, (t, _)| s.with(*t)),
                ..Match::default()
            },
            Verdict::Drop,
        ),
        rule(
            Match {
                proto: Some(L4::Icmp),
                mark: mark_match(1, u32::MAX, false),
                connmark: mark_match(0x4000, 0x4000, true),
                src_type: Some(SetMatch {
                    set: AddrTypes::LOCAL.with(AddrTypes::BROADCAST),
                    negated: true,
                }),
                dst_type: Some(SetMatch {
                    set: AddrTypes::UNICAST,
                    negated: false,
                }),
                src_range: Some(AddrRange {
                    first: Ipv4Addr::new(10, 0, 0, 1),
                    last: Ipv4Addr::new(10, 0, 0, 5),
                    negated: true,
                }),
                dst_range: Some(AddrRange {
                    first: Ipv4Addr::new(10, 0, 0, 9),
                    last: Ipv4Addr::new(10, 0, 0, 9),
                    negated: false,
                }),
                probability_ppb: Some(330_000_000),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                connmark: mark_match(0, 0, false),
                dst_type: Match::dst_local(),
                ..Match::default()
            },
            RuleTarget::Flow(Flow::Jump(ChainId(1))),
        ),
        rule(Match::default(), RuleTarget::Flow(Flow::Goto(ChainId(2)))),
        rule(Match::default(), RuleTarget::Flow(Flow::Return)),
    ]
}

/// The filter table's user chains, declared out of name order: `zed` (every MARK, CONNMARK
/// and LOG form), `Allowed` and `B-2`.
fn filter_chains() -> Vec<UserChain<FilterRule>> {
    let log = |o: &str| effect(Effect::Log(o.to_owned()));
    let connmark = |op| effect(Effect::ConnMark(op));
    let zed = vec![
        rule(Match::default(), effect(mark(5, u32::MAX))),
        rule(Match::default(), effect(mark(5, 5))),
        rule(Match::default(), effect(mark(5, 0))),
        rule(Match::default(), effect(mark(0, !5))),
        rule(Match::default(), effect(mark(0xffff_ffff, 0xff))),
        rule(
            Match::default(),
            connmark(ConnMarkOp::Set(MarkSet {
                value: 0x4000,
                mask: 0x4000,
            })),
        ),
        rule(
            Match::default(),
            connmark(ConnMarkOp::Save {
                nfmask: u32::MAX,
                ctmask: u32::MAX,
            }),
        ),
        rule(
            Match::default(),
            connmark(ConnMarkOp::Restore {
                nfmask: 0xff,
                ctmask: 0xf0,
            }),
        ),
        rule(Match::default(), log("")),
        rule(
            Match::default(),
            log("--log-prefix \"drop: \" --log-level 4"),
        ),
        rule(
            Match::default(),
            log("--log-uid --log-level debug --log-ip-options --log-prefix \"say \\\"hi\\\"\""),
        ),
        rule(
            Match::default(),
            log(
                "--log-macdecode --log-tcp-options --log-tcp-sequence --log-level 0 --log-prefix x",
            ),
        ),
        rule(Match::default(), RuleTarget::Flow(Flow::Return)),
    ];
    let allowed = vec![
        rule(
            Match {
                dport: Some((22, 22)),
                ..tcp()
            },
            Verdict::Accept,
        ),
        rule(Match::default(), RuleTarget::Flow(Flow::Goto(ChainId(2)))),
    ];
    let b2 = vec![
        rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0)))),
        rule(Match::default(), Verdict::Drop),
    ];
    vec![user("zed", zed), user("Allowed", allowed), user("B-2", b2)]
}

/// The nat table: rules of the three hooks interleaved, kube-proxy's chains.
fn nat_rules(lan: IfaceId, wan: IfaceId) -> (Vec<NatRule>, Vec<UserChain<NatRule>>) {
    let addr = |s: &str| s.parse::<Ipv4Addr>().expect("address");
    let services = NatAction::Flow(Flow::Jump(ChainId(0)));
    let rules = vec![
        nat(
            NatHook::Postrouting,
            Match {
                src: net("192.168.1.0/24"),
                dst: net("192.168.1.0/24"),
                ..Match::default()
            },
            NatAction::Accept,
        ),
        nat(
            NatHook::Prerouting,
            Match {
                in_iface: Some(wan),
                dport: Some((2222, 2222)),
                ..tcp()
            },
            NatAction::Dnat(addr("192.168.1.5"), Port::new(22)),
        ),
        nat(
            NatHook::Output,
            Match {
                dst_type: Match::dst_local(),
                ..Match::default()
            },
            services.clone(),
        ),
        nat(NatHook::Prerouting, Match::default(), services),
        nat(
            NatHook::Prerouting,
            Match {
                dst: net("203.0.113.1/32"),
                ..Match::default()
            },
            NatAction::Dnat(addr("192.168.1.6"), None),
        ),
        nat(
            NatHook::Postrouting,
            Match {
                out_iface: Some(wan),
                not_src: net("203.0.113.0/24"),
                ..Match::default()
            },
            NatAction::Masquerade(NatFlags {
                random: true,
                random_fully: true,
            }),
        ),
        nat(
            NatHook::Postrouting,
            Match {
                not_out_iface: Some(lan),
                mark: mark_match(0x4000, 0x4000, false),
                ..Match::default()
            },
            NatAction::Snat(
                addr("203.0.113.1"),
                NatFlags {
                    random: true,
                    random_fully: false,
                },
            ),
        ),
        nat(
            NatHook::Postrouting,
            Match::default(),
            NatAction::Snat(
                addr("203.0.113.1"),
                NatFlags {
                    random: false,
                    random_fully: true,
                },
            ),
        ),
        nat(
            NatHook::Postrouting,
            Match::default(),
            NatAction::Masquerade(NatFlags::default()),
        ),
    ];
    let hook = NatHook::Prerouting;
    let chains = vec![
        user(
            "KUBE-SERVICES",
            vec![
                nat(
                    hook,
                    Match {
                        dst: net("10.96.0.1/32"),
                        dport: Some((443, 443)),
                        probability_ppb: Some(500_000_000),
                        ..tcp()
                    },
                    NatAction::Flow(Flow::Jump(ChainId(2))),
                ),
                nat(
                    hook,
                    Match::default(),
                    NatAction::Flow(Flow::Goto(ChainId(1))),
                ),
            ],
        ),
        user(
            "KUBE-SEP-B",
            vec![
                nat(
                    hook,
                    Match::default(),
                    NatAction::Effect(Effect::Log("--log-level 6".into())),
                ),
                nat(
                    hook,
                    Match::default(),
                    NatAction::Effect(Effect::ConnMark(ConnMarkOp::Save {
                        nfmask: 0x4000,
                        ctmask: 0x4000,
                    })),
                ),
                nat(hook, Match::default(), NatAction::Flow(Flow::Return)),
            ],
        ),
        user(
            "KUBE-SEP-A",
            vec![
                nat(
                    hook,
                    Match {
                        src: net("10.0.0.5/32"),
                        ..Match::default()
                    },
                    NatAction::Effect(mark(0x4000, 0x4000)),
                ),
                nat(
                    hook,
                    tcp(),
                    NatAction::Dnat(addr("10.0.0.5"), Port::new(6443)),
                ),
            ],
        ),
    ];
    (rules, chains)
}

/// The raw table as Docker 28 writes it (a container's address reached from elsewhere than its
/// bridge, a port published on 127.0.0.1 reached from elsewhere than `lo`), and a raw OUTPUT
/// rule with a policy.
fn raw_chains(lan: IfaceId) -> (Chain, Chain) {
    let prerouting = Chain {
        rules: vec![
            rule(
                Match {
                    dst: net("192.168.1.2/32"),
                    not_in_iface: Some(lan),
                    ..Match::default()
                },
                Verdict::Drop,
            ),
            rule(
                Match {
                    dst: net("127.0.0.1/32"),
                    not_in_iface: Some(IfaceId::LOOPBACK),
                    dport: Some((8080, 8080)),
                    ..tcp()
                },
                Verdict::Drop,
            ),
            rule(
                Match {
                    src: net("10.9.0.0/16"),
                    ..Match::default()
                },
                effect(Effect::Log("--log-prefix raw".into())),
            ),
            rule(
                Match {
                    in_iface: Some(lan),
                    ..Match::default()
                },
                Verdict::Accept,
            ),
        ],
        ..Chain::default()
    };
    let output = Chain {
        policy: Verdict::Drop,
        rules: vec![rule(
            Match {
                out_iface: Some(lan),
                ..Match::default()
            },
            Verdict::Accept,
        )],
        ..Chain::default()
    };
    (prerouting, output)
}

/// Every table: mangle PREROUTING closed, raw PREROUTING and OUTPUT, filter with user chains,
/// nat with user chains.
fn everything(lan: IfaceId, wan: IfaceId) -> Netfilter {
    let (nat, nat_chains) = nat_rules(lan, wan);
    let (raw_prerouting, raw_output) = raw_chains(lan);
    Netfilter {
        from_text: false,
        nat,
        nat_chains,
        raw_prerouting,
        raw_output,
        prerouting: Chain {
            policy: Verdict::Drop,
            rules: vec![
                commented(
                    "mangle's",
                    rule(
                        Match {
                            in_iface: Some(lan),
                            ..Match::default()
                        },
                        Verdict::Accept,
                    ),
                ),
                rule(
                    Match {
                        in_iface: Some(wan),
                        states: States::RELATED.with(States::ESTABLISHED),
                        ..Match::default()
                    },
                    Verdict::Accept,
                ),
                rule(
                    Match {
                        connmark: mark_match(1, u32::MAX, false),
                        ..Match::default()
                    },
                    effect(Effect::ConnMark(ConnMarkOp::Restore {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    })),
                ),
            ],
            ..Chain::default()
        },
        input: Chain {
            policy: Verdict::Drop,
            rules: input_rules(lan),
            ..Chain::default()
        },
        forward: Chain {
            rules: vec![
                rule(
                    Match {
                        in_iface: Some(lan),
                        not_out_iface: Some(wan),
                        ..Match::default()
                    },
                    Verdict::Drop,
                ),
                rule(
                    Match {
                        out_iface: Some(wan),
                        ..Match::default()
                    },
                    effect(Effect::Log("--log-prefix fwd".into())),
                ),
            ],
            ..Chain::default()
        },
        output: Chain {
            policy: Verdict::Drop,
            rules: vec![rule(
                Match {
                    out_iface: Some(lan),
                    proto: Some(L4::Icmp),
                    ..Match::default()
                },
                Verdict::Accept,
            )],
            ..Chain::default()
        },
        filter_chains: filter_chains(),
    }
}

#[test]
fn every_construct_is_written_as_iptables_prints_it() {
    if !support::can_run(
        "every_construct_is_written_as_iptables_prints_it",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let (mut network, lan, wan) = gateway();
    let all = everything(lan, wan);
    let (nat, nat_chains) = nat_rules(lan, wan);
    let cases = [
        ("all", "every table", all.clone()),
        (
            "nat",
            "the nat table alone",
            Netfilter {
                nat,
                nat_chains,
                ..Netfilter::default()
            },
        ),
        (
            "chains",
            "filter user chains only, an open mangle PREROUTING",
            Netfilter {
                filter_chains: vec![user("only", vec![rule(Match::default(), Verdict::Drop)])],
                prerouting: Chain {
                    rules: vec![rule(Match::default(), Verdict::Accept)],
                    ..Chain::default()
                },
                ..Netfilter::default()
            },
        ),
        (
            "policy",
            "a policy alone",
            Netfilter {
                forward: Chain {
                    policy: Verdict::Drop,
                    ..Chain::default()
                },
                ..Netfilter::default()
            },
        ),
        ("nothing", "nothing at all", Netfilter::default()),
        (
            "raw",
            "the raw table alone",
            Netfilter {
                raw_prerouting: raw_chains(lan).0,
                ..Netfilter::default()
            },
        ),
    ];
    for (label, case, nf) in cases {
        network.nodes[0].netfilter = Some(Box::new(nf));
        let nf = network.nodes[0].netfilter.as_deref().expect("set");
        check(&network, nf, label, case);
    }
    let text = save(&network, &all);
    for table in ["*mangle", "*raw", "*filter", "*nat"] {
        assert!(text.contains(table), "{table} written:\n{text}");
    }
}

/// iptables-nft lists its tables in a fixed order (its `enum nft_table_type`), not in the order
/// they were loaded nor by name: mangle, security, raw, filter, nat. Checked with every table
/// loaded in the reverse order; `save` writes the tables it has in that order.
#[test]
fn iptables_nft_prints_tables_in_a_fixed_order() {
    if !support::can_run(
        "iptables_nft_prints_tables_in_a_fixed_order",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let ns = Netns::new(format!("reachlab-ipt{}-order", std::process::id()));
    let table = |name: &str, chains: &[&str], rule: &str| {
        let mut text = format!("*{name}\n");
        for chain in chains {
            text.push_str(&format!(":{chain} ACCEPT [0:0]\n"));
        }
        text.push_str(&format!("{rule}\nCOMMIT\n"));
        text
    };
    let text = [
        table(
            "nat",
            &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            "-A POSTROUTING -j MASQUERADE",
        ),
        table(
            "filter",
            &["INPUT", "FORWARD", "OUTPUT"],
            "-A FORWARD -j DROP",
        ),
        table(
            "raw",
            &["PREROUTING", "OUTPUT"],
            "-A PREROUTING -d 10.0.0.2/32 ! -i lo -j DROP",
        ),
        table(
            "security",
            &["INPUT", "FORWARD", "OUTPUT"],
            "-A INPUT -j ACCEPT",
        ),
        table(
            "mangle",
            &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            "-A PREROUTING -j ACCEPT",
        ),
    ]
    .concat();
    ns.restore(&text, "every table, in reverse order");
    let saved = normalised(&ns.run("iptables-save", &[]));
    let order: Vec<&str> = saved.lines().filter_map(|l| l.strip_prefix('*')).collect();
    assert_eq!(order, ["mangle", "security", "raw", "filter", "nat"]);
    // What save writes keeps that order.
    let (mut network, lan, wan) = gateway();
    network.nodes[0].netfilter = Some(Box::new(everything(lan, wan)));
    let nf = network.nodes[0].netfilter.as_deref().expect("set");
    let ours = save(&network, nf);
    let order: Vec<&str> = ours.lines().filter_map(|l| l.strip_prefix('*')).collect();
    assert_eq!(order, ["mangle", "raw", "filter", "nat"]);
}

/// `-m recent` as kube-proxy types it (`--name X --rcheck --seconds N --reap`, and `--set`
/// before `-m tcp` in an endpoint chain): iptables-save prints libxt_recent's order, the
/// operation first and `--name`, `--mask` and the side always (checked on iptables 1.8.9,
/// nf_tables, Linux 6.18). The reader takes that text, and `save` writes it back as the kernel
/// prints it, byte for byte (the option-less `-m tcp` included, in its place).
#[test]
fn recent_matches_are_read_and_written_as_iptables_prints_them() {
    if !support::can_run(
        "recent_matches_are_read_and_written_as_iptables_prints_them",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let ns = Netns::new(format!("reachlab-ipt{}-recent", std::process::id()));
    ns.run("iptables", &["-t", "nat", "-N", "X"]);
    let typed: [&[&str]; 4] = [
        &[
            "-m",
            "recent",
            "--name",
            "KUBE-SEP-ABC",
            "--rcheck",
            "--seconds",
            "10800",
            "--reap",
            "-j",
            "ACCEPT",
        ],
        &[
            "-p",
            "tcp",
            "-m",
            "comment",
            "--comment",
            "ns/svc:p",
            "-m",
            "recent",
            "--name",
            "KUBE-SEP-ABC",
            "--set",
            "-m",
            "tcp",
            "-j",
            "DNAT",
            "--to-destination",
            "10.1.2.3:80",
        ],
        &[
            "-m",
            "recent",
            "!",
            "--update",
            "--seconds",
            "5",
            "--hitcount",
            "3",
            "--name",
            "foo",
            "--rdest",
            "--mask",
            "255.255.0.0",
            "-j",
            "ACCEPT",
        ],
        &["-m", "recent", "--remove", "-j", "ACCEPT"],
    ];
    for words in typed {
        let mut args = vec!["-t", "nat", "-A", "X"];
        args.extend_from_slice(words);
        ns.run("iptables", &args);
    }
    let kernel = normalised(&ns.run("iptables-save", &["-t", "nat"]));
    let rules: Vec<&str> = kernel.lines().filter(|l| l.starts_with("-A X ")).collect();
    assert_eq!(
        rules,
        [
            "-A X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-ABC --mask 255.255.255.255 --rsource -j ACCEPT",
            "-A X -p tcp -m comment --comment \"ns/svc:p\" -m recent --set --name KUBE-SEP-ABC --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.1.2.3:80",
            "-A X -m recent ! --update --seconds 5 --hitcount 3 --name foo --mask 255.255.0.0 --rdest -j ACCEPT",
            "-A X -m recent --remove --name DEFAULT --mask 255.255.255.255 --rsource -j ACCEPT",
        ],
        "iptables-save"
    );
    let (net, _, _) = gateway();
    let nf = reachlab::topology::iptables::read(&kernel, &|_| None, &|_| Origin::default())
        .expect("the reader takes iptables-save's text");
    // Byte for byte, the modules in the order written: `-m recent` before the bare `-m tcp`.
    assert_eq!(save(&net, &nf), kernel, "read and written back");
    check(&net, &nf, "recent-back", "recent, read back");
}

/// kube-proxy's and kubelet's rules typed with the arguments in the order proxier.go (and
/// kubelet_network_linux.go) pass them, as `iptables -A` takes them: what `iptables-save`
/// prints then is, line for line, what `reachlab show --iptables-save` prints for the same
/// rules of `topologies/k8s-loadbalancer.yaml`'s node n2 (the modules in the order written,
/// a bare `-m tcp`, a rule without a target).
#[test]
fn kube_proxys_rules_are_printed_as_the_kernel_prints_them() {
    if !support::can_run(
        "kube_proxys_rules_are_printed_as_the_kernel_prints_them",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let ns = Netns::new(format!("reachlab-ipt{}-kube", std::process::id()));
    let (ext_web, ext_fw) = ("KUBE-EXT-LOLE4ISW44XBNF3G", "KUBE-EXT-2532YVYKP5ZJMBYQ");
    let (fw, sep) = ("KUBE-FW-2532YVYKP5ZJMBYQ", "KUBE-SEP-D7JNIT25UF25XIVX");
    for (table, chain) in [
        ("filter", "KUBE-EXTERNAL-SERVICES"),
        ("filter", "KUBE-PROXY-FIREWALL"),
        ("filter", "KUBE-FIREWALL"),
        ("nat", "KUBE-SERVICES"),
        ("nat", ext_web),
        ("nat", ext_fw),
        ("nat", fw),
        ("nat", sep),
    ] {
        ns.run("iptables", &["-t", table, "-N", chain]);
    }
    let typed: [&[&str]; 8] = [
        &[
            "-t",
            "filter",
            "-A",
            "KUBE-EXTERNAL-SERVICES",
            "-m",
            "comment",
            "--comment",
            "default/weblocal has no local endpoints",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-m",
            "tcp",
            "-p",
            "tcp",
            "--dport",
            "30087",
            "-j",
            "DROP",
        ],
        &[
            "-t",
            "filter",
            "-A",
            "KUBE-PROXY-FIREWALL",
            "-m",
            "comment",
            "--comment",
            "default/webfw traffic not accepted by KUBE-FW-2532YVYKP5ZJMBYQ",
            "-m",
            "tcp",
            "-p",
            "tcp",
            "-d",
            "10.0.0.242",
            "--dport",
            "80",
            "-j",
            "DROP",
        ],
        &[
            "-t",
            "filter",
            "-A",
            "KUBE-FIREWALL",
            "-m",
            "comment",
            "--comment",
            "block incoming localnet connections",
            "-d",
            "127.0.0.0/8",
            "!",
            "-s",
            "127.0.0.0/8",
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-j",
            "DROP",
        ],
        &[
            "-t",
            "filter",
            "-I",
            "INPUT",
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
            "-j",
            "KUBE-PROXY-FIREWALL",
        ],
        &[
            "-t",
            "nat",
            "-A",
            "KUBE-SERVICES",
            "-m",
            "comment",
            "--comment",
            "default/web loadbalancer IP",
            "-m",
            "tcp",
            "-p",
            "tcp",
            "-d",
            "10.0.0.240",
            "--dport",
            "80",
            "-j",
            ext_web,
        ],
        &[
            "-t",
            "nat",
            "-A",
            fw,
            "-m",
            "comment",
            "--comment",
            "default/webfw loadbalancer IP",
            "-s",
            "203.0.113.0/24",
            "-j",
            ext_fw,
        ],
        &[
            "-t",
            "nat",
            "-A",
            fw,
            "-m",
            "comment",
            "--comment",
            "other traffic to default/webfw will be dropped by KUBE-PROXY-FIREWALL",
        ],
        &[
            "-t",
            "nat",
            "-A",
            sep,
            "-m",
            "comment",
            "--comment",
            "default/web",
            "-m",
            "tcp",
            "-p",
            "tcp",
            "-j",
            "DNAT",
            "--to-destination",
            "10.244.0.1:8080",
        ],
    ];
    for args in typed {
        ns.run("iptables", args);
    }
    let kernel = format!(
        "{}{}",
        ns.run("iptables-save", &["-t", "filter"]),
        ns.run("iptables-save", &["-t", "nat"])
    );
    let kernel: Vec<&str> = kernel.lines().filter(|l| l.starts_with("-A ")).collect();
    assert_eq!(kernel.len(), typed.len(), "{kernel:#?}");
    let loaded =
        reachlab::topology::load_path(std::path::Path::new("topologies/k8s-loadbalancer.yaml"))
            .expect("valid");
    let n2 = loaded.network.node_by_name("n2").expect("n2");
    let ours = save(&loaded.network, n2.netfilter.as_deref().expect("rules"));
    for line in kernel {
        assert!(
            ours.lines().any(|l| l == line),
            "the kernel prints\n{line}\nwhich reachlab does not:\n{ours}"
        );
    }
}
