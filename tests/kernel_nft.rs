//! The emulator writes a node's netfilter model as one nftables table (`emulate::nft_ruleset`).
//! This test holds that table to the kernel, in network namespaces named `reachlab-h2-<pid>-…`
//! (deleted afterwards, also when a test fails):
//!
//! - a model using every construct (user chains, jumps and gotos, nat ACCEPT, marks and
//!   connection marks, every match) is accepted by `nft -c -f`, loads, and `nft list` shows
//!   the statements meant (docs/netfilter.md, "In nftables (the emulator)");
//! - behaviour: between two namespaces joined by a veth pair (198.51.100.0/24), UDP packets
//!   cross rule sets that jump, go to, return, mark, save and restore connection marks and
//!   translate, and what arrives (source, ports, mark, connection mark, seen by a table of
//!   the test's own after reachlab's input chain) is what the simulator's walk says.
//!
//! Needs root, iproute2 and nftables. Without them the test says SKIPPED on stderr and passes,
//! unless `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a failure.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reachlab::emulate::nft_ruleset;
use reachlab::model::{
    AddrRange, AddrTypes, Chain, ChainId, ChainName, ConnMarkOp, CtStatus, Effect, FilterRule,
    Flow, L4, MarkMatch, MarkSet, Match, Multiport, NatAction, NatFlags, NatHook, NatRule,
    Netfilter, Network, Origin, PacketFacts, Port, PortSide, RejectWith, RuleTarget, SetMatch,
    States, UserChain, Verdict,
};
use reachlab::topology::load_str;

mod support;

const TOPOLOGY: &str = "
segments:
  - { name: lan }
nodes:
  - name: a
    interfaces:
      - { name: eth0, segment: lan, addresses: [198.51.100.1/24] }
  - name: b
    interfaces:
      - { name: eth0, segment: lan, addresses: [198.51.100.2/24] }
      - { name: eth1, segment: lan, addresses: [203.0.113.2/24] }
";

/// Namespaces this test created, deleted when dropped.
struct Lab(Vec<String>);

impl Lab {
    fn new(tag: &str, count: usize) -> Self {
        let mut lab = Lab(Vec::new());
        for i in 0..count {
            let name = format!("reachlab-h2-{}-{tag}{i}", std::process::id());
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            // Pushed first, so that a failed `add` is still cleaned up.
            lab.0.push(name.clone());
            let added = run("ip", &["netns", "add", &name], None);
            assert!(added.status.success(), "ip netns add {name}: {added:?}");
        }
        lab
    }

    fn ns(&self, i: usize) -> &str {
        &self.0[i]
    }

    /// Runs `args` in namespace `i`, failing the test when it fails.
    fn exec(&self, i: usize, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["netns", "exec", self.ns(i)];
        all.extend_from_slice(args);
        let out = run("ip", &all, stdin);
        assert!(
            out.status.success(),
            "{args:?} in {}: {}\n{}",
            self.ns(i),
            String::from_utf8_lossy(&out.stderr),
            stdin.unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("writes");
    drop(input);
    child.wait_with_output().expect("runs")
}

fn net() -> Network {
    load_str("t.yaml", TOPOLOGY).expect("valid").network
}

fn rule(m: Match, target: impl Into<RuleTarget>) -> FilterRule {
    FilterRule {
        matches: m,
        target: target.into(),
        origin: Origin::default(),
        comment: None,
        platform_fix: None,
    }
}

fn nat(hook: NatHook, m: Match, action: NatAction) -> NatRule {
    NatRule {
        hook,
        matches: m,
        action,
        origin: Origin::default(),
        comment: None,
    }
}

fn user<R>(name: &str, rules: Vec<R>) -> UserChain<R> {
    UserChain {
        name: name.into(),
        rules,
        origin: Origin::default(),
    }
}

fn mark(value: u32, mask: u32) -> RuleTarget {
    RuleTarget::Effect(Effect::Mark(MarkSet { value, mask }))
}

fn udp() -> Match {
    Match {
        proto: Some(L4::Udp),
        ..Match::default()
    }
}

fn chain(rules: Vec<FilterRule>) -> Chain {
    Chain {
        rules,
        ..Chain::default()
    }
}

/// A model with every construct nft has to say, on node `b`.
fn every_construct(net: &Network) -> Netfilter {
    let b = net.node_by_name("b").expect("b");
    let eth0 = net.interfaces_of(b).next().expect("eth0").id;
    let eth1 = net.interfaces_of(b).nth(1).expect("eth1").id;
    let ports = |side, negated| Multiport {
        side,
        ranges: vec![(443, 443), (80, 80), (8000, 8080), (8080, 8090)],
        negated,
    };
    let everything = Match {
        in_iface: Some(eth0),
        not_out_iface: Some(eth1),
        src: Some("198.51.100.0/24".parse().expect("net")),
        not_dst: Some("203.0.113.0/24".parse().expect("net")),
        src_range: Some(AddrRange {
            first: Ipv4Addr::new(198, 51, 100, 1),
            last: Ipv4Addr::new(198, 51, 100, 9),
            negated: false,
        }),
        dst_range: Some(AddrRange {
            first: Ipv4Addr::new(198, 51, 100, 20),
            last: Ipv4Addr::new(198, 51, 100, 29),
            negated: true,
        }),
        proto: Some(L4::Tcp),
        sport: Some((1024, 65535)),
        not_dport: Some((22, 22)),
        multiport: Some(ports(PortSide::Either, false)),
        states: States::NEW.with(States::DNAT),
        not_states: States::INVALID.with(States::SNAT),
        status: Some(SetMatch {
            set: CtStatus::SEEN_REPLY.with(CtStatus::CONFIRMED),
            negated: true,
        }),
        src_type: Some(SetMatch {
            set: AddrTypes::UNICAST,
            negated: false,
        }),
        dst_type: Some(SetMatch {
            set: AddrTypes::LOCAL
                .with(AddrTypes::BROADCAST)
                .with(AddrTypes::THROW),
            negated: true,
        }),
        mark: Some(MarkMatch {
            value: 0x4000,
            mask: 0xff00,
            negated: false,
        }),
        connmark: Some(MarkMatch {
            value: 1,
            mask: u32::MAX,
            negated: true,
        }),
        probability_ppb: Some(250_000_000),
        ..Match::default()
    };
    let mut nf = Netfilter {
        input: chain(vec![
            rule(everything, Verdict::Accept),
            rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0)))),
            rule(
                Match {
                    not_proto: Some(L4::Icmp),
                    not_sport: Some((1, 1023)),
                    dport: Some((53, 53)),
                    multiport: Some(ports(PortSide::Either, true)),
                    ..udp()
                },
                RuleTarget::Flow(Flow::Goto(ChainId(1))),
            ),
            rule(
                Match {
                    multiport: Some(ports(PortSide::Source, true)),
                    ..udp()
                },
                RuleTarget::Flow(Flow::Return),
            ),
            rule(
                Match {
                    multiport: Some(ports(PortSide::Destination, false)),
                    not_states: States::INVALID.with(States::NEW),
                    status: Some(SetMatch {
                        set: CtStatus::EXPECTED,
                        negated: false,
                    }),
                    ..udp()
                },
                Verdict::Reject(RejectWith::AdminProhibited),
            ),
            rule(
                Match {
                    proto: Some(L4::Tcp),
                    states: States::SNAT.with(States::DNAT),
                    not_states: States::DNAT,
                    ..Match::default()
                },
                Verdict::Reject(RejectWith::TcpReset),
            ),
        ]),
        ..Netfilter::default()
    };
    nf.input.policy = Verdict::Drop;
    nf.filter_chains = vec![
        user(
            "MARK-IT \"; drop",
            vec![
                rule(Match::default(), mark(0x4001, 0xffff)),
                rule(Match::default(), mark(0x7, u32::MAX)),
                rule(Match::default(), mark(0x10, 0)),
                rule(
                    Match::default(),
                    RuleTarget::Effect(Effect::ConnMark(ConnMarkOp::Set(MarkSet {
                        value: 0x100,
                        mask: 0xf00,
                    }))),
                ),
                rule(Match::default(), save(u32::MAX, u32::MAX)),
                rule(Match::default(), save(0xff, u32::MAX)),
                rule(Match::default(), save(0, 0xff)),
                rule(Match::default(), save(0xff00, 0xf0f0)),
                rule(Match::default(), restore(u32::MAX, 0xff)),
                rule(Match::default(), restore(0xff, 0x0f0f)),
                rule(
                    Match::default(),
                    RuleTarget::Effect(Effect::Log("--log-prefix \"x\"".into())),
                ),
                rule(Match::default(), RuleTarget::Flow(Flow::Return)),
            ],
        ),
        user(
            "other",
            vec![rule(
                Match {
                    states: States::INVALID.with(States::ESTABLISHED),
                    ..Match::default()
                },
                Verdict::Drop,
            )],
        ),
    ];
    nf.nat = vec![
        nat(
            NatHook::Prerouting,
            Match {
                dst_type: Match::dst_local(),
                ..udp()
            },
            NatAction::Accept,
        ),
        nat(
            NatHook::Prerouting,
            Match::default(),
            NatAction::Flow(Flow::Jump(ChainId(0))),
        ),
        nat(
            NatHook::Postrouting,
            Match::default(),
            NatAction::Flow(Flow::Goto(ChainId(1))),
        ),
        nat(
            NatHook::Output,
            Match {
                dport: Some((80, 80)),
                proto: Some(L4::Tcp),
                ..Match::default()
            },
            NatAction::Dnat(Ipv4Addr::new(198, 51, 100, 7), Port::new(8080)),
        ),
    ];
    let flags = NatFlags {
        random: true,
        random_fully: true,
    };
    nf.nat_chains = vec![
        user(
            "DNAT-HERE",
            vec![
                nat(
                    NatHook::Prerouting,
                    Match::default(),
                    NatAction::Effect(Effect::Mark(MarkSet { value: 1, mask: 1 })),
                ),
                nat(
                    NatHook::Prerouting,
                    udp(),
                    NatAction::Dnat(Ipv4Addr::new(198, 51, 100, 7), None),
                ),
                nat(
                    NatHook::Prerouting,
                    Match::default(),
                    NatAction::Flow(Flow::Return),
                ),
            ],
        ),
        user(
            "SNAT-HERE",
            vec![
                nat(
                    NatHook::Postrouting,
                    udp(),
                    NatAction::Snat(Ipv4Addr::new(198, 51, 100, 50), flags),
                ),
                nat(
                    NatHook::Postrouting,
                    Match::default(),
                    NatAction::Masquerade(NatFlags {
                        random_fully: true,
                        ..NatFlags::default()
                    }),
                ),
            ],
        ),
    ];
    nf
}

fn save(nfmask: u32, ctmask: u32) -> RuleTarget {
    RuleTarget::Effect(Effect::ConnMark(ConnMarkOp::Save { nfmask, ctmask }))
}

fn restore(nfmask: u32, ctmask: u32) -> RuleTarget {
    RuleTarget::Effect(Effect::ConnMark(ConnMarkOp::Restore { nfmask, ctmask }))
}

/// The rules `nft list` shows, chain by chain (the chain's own lines, not its rules, left out).
fn listed_rules(listing: &str) -> Vec<(String, Vec<String>)> {
    let mut chains: Vec<(String, Vec<String>)> = Vec::new();
    for line in listing.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("chain ") {
            chains.push((name.trim_end_matches(" {").to_owned(), Vec::new()));
        } else if line.is_empty()
            || line == "}"
            || line.starts_with("type ")
            || line.starts_with("comment ")
            || line.starts_with("table ")
        {
            continue;
        } else if let Some((_, rules)) = chains.last_mut() {
            rules.push(line.to_owned());
        }
    }
    chains
}

/// What `nft list` shows for `every_construct`: nft prints bitwise statements in its own
/// form (`x & m ^ v` as `x & (m | v) | v` when the bits of `v` are cleared by `m`), a set with
/// one element as that element, negated flag tests as `!`, and merges nothing else.
const EVERY_CONSTRUCT_LISTED: &[(&str, &[&str])] = &[
    (
        "f_0",
        &[
            "meta mark set meta mark & 0xffff4001 | 0x00004001",
            "meta mark set 0x00000007",
            "meta mark set meta mark ^ 0x00000010",
            "ct mark set ct mark & 0xfffff1ff | 0x00000100",
            "ct mark set meta mark",
            "ct mark set meta mark & 0x000000ff",
            "ct mark set ct mark & 0xffffff00",
            "jump x_0",
            "meta mark set ct mark & 0x000000ff",
            "jump x_1",
            "log",
            "return",
        ],
    ),
    ("f_1", &["ct state invalid,established drop"]),
    (
        "n_0",
        &[
            "meta mark set meta mark | 0x00000001",
            "meta l4proto udp dnat to 198.51.100.7",
            "return",
        ],
    ),
    (
        "n_1",
        &[
            "meta l4proto udp snat to 198.51.100.50 random,fully-random",
            "masquerade fully-random",
        ],
    ),
    (
        "x_0",
        &[
            "ct mark set ct mark & 0xffff0f0f",
            "meta mark & 0x00000100 != 0x00000000 ct mark set ct mark ^ 0x00000100",
            "meta mark & 0x00000200 != 0x00000000 ct mark set ct mark ^ 0x00000200",
            "meta mark & 0x00000400 != 0x00000000 ct mark set ct mark ^ 0x00000400",
            "meta mark & 0x00000800 != 0x00000000 ct mark set ct mark ^ 0x00000800",
            "meta mark & 0x00001000 != 0x00000000 ct mark set ct mark ^ 0x00001000",
            "meta mark & 0x00002000 != 0x00000000 ct mark set ct mark ^ 0x00002000",
            "meta mark & 0x00004000 != 0x00000000 ct mark set ct mark ^ 0x00004000",
            "meta mark & 0x00008000 != 0x00000000 ct mark set ct mark ^ 0x00008000",
        ],
    ),
    (
        "x_1",
        &[
            "ct state { invalid, untracked } return",
            "meta mark set meta mark & 0xffffff00",
            "ct mark & 0x00000001 != 0x00000000 meta mark set meta mark ^ 0x00000001",
            "ct mark & 0x00000002 != 0x00000000 meta mark set meta mark ^ 0x00000002",
            "ct mark & 0x00000004 != 0x00000000 meta mark set meta mark ^ 0x00000004",
            "ct mark & 0x00000008 != 0x00000000 meta mark set meta mark ^ 0x00000008",
            "ct mark & 0x00000100 != 0x00000000 meta mark set meta mark ^ 0x00000100",
            "ct mark & 0x00000200 != 0x00000000 meta mark set meta mark ^ 0x00000200",
            "ct mark & 0x00000400 != 0x00000000 meta mark set meta mark ^ 0x00000400",
            "ct mark & 0x00000800 != 0x00000000 meta mark set meta mark ^ 0x00000800",
        ],
    ),
    (
        "nat_prerouting",
        &["meta l4proto udp fib daddr type local accept", "jump n_0"],
    ),
    (
        "input",
        &[
            "iifname \"eth0\" oifname != \"eth1\" ip saddr 198.51.100.0/24 ip daddr != 203.0.113.0/24 ip saddr 198.51.100.1-198.51.100.9 ip daddr != 198.51.100.20-198.51.100.29 tcp sport 1024-65535 tcp dport != 22 tcp sport { 80, 443, 8000-8090 } ct state new ct state != invalid ct status ! snat ct status ! seen-reply,confirmed fib saddr type unicast fib daddr type != { local, broadcast, 9 } meta mark & 0x0000ff00 == 0x00004000 ct mark != 0x00000001 numgen random mod 1000000000 < 250000000 accept",
            "iifname \"eth0\" oifname != \"eth1\" ip saddr 198.51.100.0/24 ip daddr != 203.0.113.0/24 ip saddr 198.51.100.1-198.51.100.9 ip daddr != 198.51.100.20-198.51.100.29 tcp sport 1024-65535 tcp dport != 22 tcp sport { 80, 443, 8000-8090 } ct state != new ct status dnat ct state != invalid ct status ! snat ct status ! seen-reply,confirmed fib saddr type unicast fib daddr type != { local, broadcast, 9 } meta mark & 0x0000ff00 == 0x00004000 ct mark != 0x00000001 numgen random mod 1000000000 < 250000000 accept",
            "iifname \"eth0\" oifname != \"eth1\" ip saddr 198.51.100.0/24 ip daddr != 203.0.113.0/24 ip saddr 198.51.100.1-198.51.100.9 ip daddr != 198.51.100.20-198.51.100.29 tcp sport 1024-65535 tcp dport != 22 tcp sport != { 80, 443, 8000-8090 } tcp dport { 80, 443, 8000-8090 } ct state new ct state != invalid ct status ! snat ct status ! seen-reply,confirmed fib saddr type unicast fib daddr type != { local, broadcast, 9 } meta mark & 0x0000ff00 == 0x00004000 ct mark != 0x00000001 numgen random mod 1000000000 < 250000000 accept",
            "iifname \"eth0\" oifname != \"eth1\" ip saddr 198.51.100.0/24 ip daddr != 203.0.113.0/24 ip saddr 198.51.100.1-198.51.100.9 ip daddr != 198.51.100.20-198.51.100.29 tcp sport 1024-65535 tcp dport != 22 tcp sport != { 80, 443, 8000-8090 } tcp dport { 80, 443, 8000-8090 } ct state != new ct status dnat ct state != invalid ct status ! snat ct status ! seen-reply,confirmed fib saddr type unicast fib daddr type != { local, broadcast, 9 } meta mark & 0x0000ff00 == 0x00004000 ct mark != 0x00000001 numgen random mod 1000000000 < 250000000 accept",
            "jump f_0",
            "udp sport != 1-1023 udp dport 53 udp sport != { 80, 443, 8000-8090 } udp dport != { 80, 443, 8000-8090 } meta l4proto != icmp goto f_1",
            "udp sport != { 80, 443, 8000-8090 } return",
            "udp dport { 80, 443, 8000-8090 } ct state != { invalid, new } ct status expected reject with icmp admin-prohibited",
            "ct status snat,dnat ct status ! dnat reject with tcp reset",
        ],
    ),
    ("nat_output", &["tcp dport 80 dnat to 198.51.100.7:8080"]),
    ("nat_postrouting", &["goto n_1"]),
];

#[test]
fn every_construct_loads_and_lists_as_meant() {
    if !support::can_run(
        "every_construct_loads_and_lists_as_meant",
        &[support::IP, support::NFT],
    ) {
        return;
    }
    let net = net();
    let text = nft_ruleset(&net, &every_construct(&net)).expect("ruleset");
    let lab = Lab::new("all", 1);
    lab.exec(0, &["nft", "-c", "-f", "-"], Some(&text));
    lab.exec(0, &["nft", "-f", "-"], Some(&text));
    let listing = lab.exec(0, &["nft", "list", "table", "ip", "reachlab"], None);
    let listed = listed_rules(&listing);
    for (name, rules) in EVERY_CONSTRUCT_LISTED {
        let Some((_, got)) = listed.iter().find(|(n, _)| n == name) else {
            panic!("chain {name} missing from\n{listing}");
        };
        assert_eq!(got, rules, "chain {name} in\n{listing}");
    }
}

/// Two namespaces joined by a veth pair `eth0`: 0 is `a` (198.51.100.1, which sends UDP from
/// port 5005 only), 1 is `b` (198.51.100.2), each with its rule set loaded; `b` also has a
/// table of the test's own, `obs`, that records every UDP packet its input hook lets through
/// reachlab's chains (source, ports, mark, connection mark).
fn pair(tag: &str, net: &Network, a: &Netfilter, b: &Netfilter) -> Lab {
    let lab = Lab::new(tag, 2);
    let peer = lab.ns(1).to_owned();
    lab.exec(
        0,
        &[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &peer,
        ],
        None,
    );
    for (i, addr) in [(0, "198.51.100.1/24"), (1, "198.51.100.2/24")] {
        lab.exec(i, &["ip", "addr", "add", addr, "dev", "eth0"], None);
        lab.exec(i, &["ip", "link", "set", "eth0", "up"], None);
        lab.exec(i, &["ip", "link", "set", "lo", "up"], None);
    }
    lab.exec(
        0,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=5005 5005"],
        None,
    );
    for (i, nf) in [(0, a), (1, b)] {
        let text = nft_ruleset(net, nf).expect("ruleset");
        lab.exec(i, &["nft", "-f", "-"], Some(&text));
    }
    lab.exec(1, &["nft", "-f", "-"], Some(OBSERVER));
    lab
}

const OBSERVER: &str = "table ip obs {
  set seen { typeof ip saddr . udp sport . udp dport . meta mark . ct mark; flags dynamic; }
  chain input {
    type filter hook input priority 10; policy accept;
    meta l4proto udp add @seen { ip saddr . udp sport . udp dport . meta mark . ct mark }
  }
}
";

/// Sends one UDP packet from `a` to `b`'s port `dport`.
fn send(lab: &Lab, dport: u16) {
    let line = format!("echo x > /dev/udp/198.51.100.2/{dport}");
    lab.exec(0, &["bash", "-c", &line], None);
}

/// What `obs` recorded in `b`, waiting up to a second for `count` packets.
fn seen(lab: &Lab, count: usize) -> BTreeSet<String> {
    let start = Instant::now();
    loop {
        let listing = lab.exec(1, &["nft", "list", "set", "ip", "obs", "seen"], None);
        let elements: BTreeSet<String> = listing
            .split_once("elements = {")
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(inside, _)| {
                inside
                    .split(',')
                    .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if elements.len() >= count || start.elapsed() > Duration::from_secs(1) {
            return elements;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the simulator's walk says `b` lets through its input hook of a packet from `a`'s
/// port 5005 to `b`'s port `dport`, as `obs` records it: `a`'s nat OUTPUT, filter OUTPUT and
/// nat POSTROUTING, then `b`'s mangle PREROUTING, nat PREROUTING and filter INPUT (the mark
/// starts at 0 on each node; each node's connection is new, with mark 0).
fn model_sees(net: &Network, a: &Netfilter, b: &Netfilter, dport: u16) -> Option<String> {
    let iface = |node: &str| {
        let node = net.node_by_name(node).expect("node");
        net.interfaces_of(node).next().expect("eth0").id
    };
    let mut draw = |_: u32| true;
    let mut facts = PacketFacts {
        in_iface: None,
        out_iface: Some(iface("a")),
        src: Ipv4Addr::new(198, 51, 100, 1),
        dst: Ipv4Addr::new(198, 51, 100, 2),
        proto: L4::Udp,
        sport: Some(5005),
        dport: Some(dport),
        state: States::NEW,
        status: CtStatus::default(),
        src_type: AddrTypes::LOCAL,
        dst_type: AddrTypes::UNICAST,
        mark: 0,
        ctmark: Some(0),
    };
    translate(
        a.nat_rule(NatHook::Output, &mut facts, &mut draw),
        &mut facts,
    );
    if a.judge(ChainName::Output, &mut facts, &mut draw).0 != Verdict::Accept {
        return None;
    }
    translate(
        a.nat_rule(NatHook::Postrouting, &mut facts, &mut draw),
        &mut facts,
    );
    let mut facts = PacketFacts {
        in_iface: Some(iface("b")),
        out_iface: None,
        src_type: AddrTypes::UNICAST,
        dst_type: AddrTypes::LOCAL,
        mark: 0,
        ctmark: Some(0),
        ..facts
    };
    if b.judge(ChainName::Prerouting, &mut facts, &mut draw).0 != Verdict::Accept {
        return None;
    }
    translate(
        b.nat_rule(NatHook::Prerouting, &mut facts, &mut draw),
        &mut facts,
    );
    if b.judge(ChainName::Input, &mut facts, &mut draw).0 != Verdict::Accept {
        return None;
    }
    Some(format!(
        "{} . 5005 . {} . {:#010x} . {:#010x}",
        facts.src,
        facts.dport.unwrap_or_default(),
        facts.mark,
        facts.ctmark.unwrap_or_default()
    ))
}

fn translate(rule: Option<(reachlab::model::RuleAt, &NatRule)>, facts: &mut PacketFacts) {
    match rule.map(|(_, r)| &r.action) {
        Some(NatAction::Dnat(addr, port)) => {
            facts.dst = *addr;
            facts.dport = port.map(Port::get).or(facts.dport);
        }
        Some(NatAction::Snat(addr, _)) => facts.src = *addr,
        _ => {}
    }
}

/// Sends to each of `dports` across the pair and holds what arrives to the simulator's
/// walk, and to `expected` (the values worked out by hand).
fn check(tag: &str, a: &Netfilter, b: &Netfilter, dports: &[u16], expected: &[&str]) {
    let net = net();
    let lab = pair(tag, &net, a, b);
    let model: BTreeSet<String> = dports
        .iter()
        .filter_map(|&d| model_sees(&net, a, b, d))
        .collect();
    let by_hand: BTreeSet<String> = expected.iter().map(|e| (*e).to_owned()).collect();
    assert_eq!(model, by_hand, "{tag}: the simulator");
    for &d in dports {
        send(&lab, d);
    }
    assert_eq!(seen(&lab, model.len()), model, "{tag}: the kernel");
}

fn or_mark(value: u32) -> RuleTarget {
    mark(value, value)
}

#[test]
fn the_kernel_walks_jumps_and_marks_as_the_simulator() {
    if !support::can_run(
        "the_kernel_walks_jumps_and_marks_as_the_simulator",
        &[support::IP, support::NFT],
    ) {
        return;
    }
    let open = Netfilter::default();
    let mark_match = |value, mask, negated| MarkMatch {
        value,
        mask,
        negated,
    };
    // INPUT: -j MARK-IT (mark 0x4001, RETURN before 0x99), then CONNMARK set, save and restore
    // under partial masks (helper chains), a multiport --ports match that both ports meet
    // (its XOR must act once), a connmark check, and states/status/addrtype/iprange.
    let mut b = Netfilter {
        input: chain(vec![
            rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0)))),
            rule(
                Match {
                    mark: Some(mark_match(1, 0xff, false)),
                    ..Match::default()
                },
                RuleTarget::Effect(Effect::ConnMark(ConnMarkOp::Set(MarkSet {
                    value: 0x0f0f_0f0f,
                    mask: u32::MAX,
                }))),
            ),
            rule(Match::default(), save(0xff00, 0xf0f0)),
            rule(Match::default(), restore(0xff, 0x0f0f)),
            rule(
                Match {
                    multiport: Some(Multiport {
                        side: PortSide::Either,
                        ranges: vec![(5005, 5005), (6000, 6010)],
                        negated: false,
                    }),
                    ..udp()
                },
                mark(0x10, 0),
            ),
            rule(
                Match {
                    connmark: Some(mark_match(0x0f0f_4f0f, u32::MAX, true)),
                    ..Match::default()
                },
                Verdict::Drop,
            ),
            rule(
                Match {
                    states: States::NEW.with(States::DNAT),
                    not_states: States::INVALID.with(States::SNAT),
                    status: Some(SetMatch {
                        set: CtStatus::SEEN_REPLY.with(CtStatus::CONFIRMED),
                        negated: true,
                    }),
                    dst_type: Some(SetMatch {
                        set: AddrTypes::LOCAL.with(AddrTypes::BROADCAST),
                        negated: false,
                    }),
                    src_type: Some(SetMatch {
                        set: AddrTypes::LOCAL,
                        negated: true,
                    }),
                    src_range: Some(AddrRange {
                        first: Ipv4Addr::new(198, 51, 100, 1),
                        last: Ipv4Addr::new(198, 51, 100, 9),
                        negated: false,
                    }),
                    mark: Some(mark_match(0x4f1f, 0xffff, false)),
                    ..Match::default()
                },
                or_mark(0x10_0000),
            ),
        ]),
        ..Netfilter::default()
    };
    b.filter_chains = vec![user(
        "MARK-IT",
        vec![
            rule(udp(), mark(0x4001, 0xffff)),
            rule(Match::default(), RuleTarget::Flow(Flow::Return)),
            rule(Match::default(), mark(0x99, u32::MAX)),
        ],
    )];
    check(
        "marks",
        &open,
        &b,
        &[6001],
        &["198.51.100.1 . 5005 . 6001 . 0x00104f1f . 0x0f0f4f0f"],
    );

    // -g: the end of the chain gone to returns past the last -j (0x70 is skipped); from a
    // built-in chain, to its policy (the DROP after it is not reached).
    let gone = |first: FilterRule| Netfilter {
        input: chain(vec![first, rule(Match::default(), or_mark(0x2))]),
        filter_chains: vec![
            user(
                "A",
                vec![
                    rule(Match::default(), RuleTarget::Flow(Flow::Goto(ChainId(1)))),
                    rule(Match::default(), or_mark(0x70)),
                ],
            ),
            user("B", vec![rule(Match::default(), or_mark(0x1000))]),
        ],
        ..Netfilter::default()
    };
    let jump_a = rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0))));
    check(
        "goto",
        &open,
        &gone(jump_a),
        &[6001],
        &["198.51.100.1 . 5005 . 6001 . 0x00001002 . 0x00000000"],
    );
    let goto_b = rule(Match::default(), RuleTarget::Flow(Flow::Goto(ChainId(1))));
    check(
        "goto-base",
        &open,
        &gone(goto_b),
        &[6001],
        &["198.51.100.1 . 5005 . 6001 . 0x00001000 . 0x00000000"],
    );

    // RETURN in a built-in chain: its policy (DROP); a DROP in a user chain.
    let mut returned = Netfilter {
        input: chain(vec![
            rule(
                Match {
                    dport: Some((6001, 6001)),
                    ..udp()
                },
                RuleTarget::Flow(Flow::Return),
            ),
            rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0)))),
            rule(Match::default(), Verdict::Accept),
        ]),
        filter_chains: vec![user(
            "NO-6002",
            vec![rule(
                Match {
                    dport: Some((6002, 6002)),
                    ..udp()
                },
                Verdict::Drop,
            )],
        )],
        ..Netfilter::default()
    };
    returned.input.policy = Verdict::Drop;
    check(
        "return",
        &open,
        &returned,
        &[6001, 6002, 6003],
        &["198.51.100.1 . 5005 . 6003 . 0x00000000 . 0x00000000"],
    );
}

#[test]
fn the_kernel_translates_in_user_chains_and_stops_at_nat_accept() {
    if !support::can_run(
        "the_kernel_translates_in_user_chains_and_stops_at_nat_accept",
        &[support::IP, support::NFT],
    ) {
        return;
    }
    let udp_to = |port| Match {
        dport: Some((port, port)),
        ..udp()
    };
    // `a`: marks everything it sends (the mark does not cross into `b`); its POSTROUTING jumps
    // to a chain that RETURNs for port 6001 and SNATs the rest.
    let a = Netfilter {
        output: chain(vec![rule(Match::default(), mark(0x77, u32::MAX))]),
        nat: vec![nat(
            NatHook::Postrouting,
            Match::default(),
            NatAction::Flow(Flow::Jump(ChainId(0))),
        )],
        nat_chains: vec![user(
            "SNAT-IT",
            vec![
                nat(
                    NatHook::Postrouting,
                    udp_to(6001),
                    NatAction::Flow(Flow::Return),
                ),
                nat(
                    NatHook::Postrouting,
                    udp(),
                    // No `random`: it would pick another source port (the text test has it).
                    NatAction::Snat(Ipv4Addr::new(198, 51, 100, 50), NatFlags::default()),
                ),
            ],
        )],
        ..Netfilter::default()
    };
    // `b`: nat ACCEPT for port 6002 (no translation, the jump after it not taken); the rest
    // jumps to a chain that marks and DNATs to port 7000.
    let b = Netfilter {
        nat: vec![
            nat(NatHook::Prerouting, udp_to(6002), NatAction::Accept),
            nat(
                NatHook::Prerouting,
                Match::default(),
                NatAction::Flow(Flow::Jump(ChainId(0))),
            ),
        ],
        nat_chains: vec![user(
            "DNAT-IT",
            vec![
                nat(
                    NatHook::Prerouting,
                    Match::default(),
                    NatAction::Effect(Effect::Mark(MarkSet {
                        value: 0x8,
                        mask: 0,
                    })),
                ),
                nat(
                    NatHook::Prerouting,
                    udp(),
                    NatAction::Dnat(Ipv4Addr::new(198, 51, 100, 2), Port::new(7000)),
                ),
            ],
        )],
        ..Netfilter::default()
    };
    check(
        "nat",
        &a,
        &b,
        &[6001, 6002, 6003],
        &[
            "198.51.100.1 . 5005 . 7000 . 0x00000008 . 0x00000000",
            "198.51.100.50 . 5005 . 6002 . 0x00000000 . 0x00000000",
            "198.51.100.50 . 5005 . 7000 . 0x00000008 . 0x00000000",
        ],
    );
}

/// `input` going to chain 0, each chain going to the next, `depth` chains in all.
fn gotos(depth: usize) -> Netfilter {
    let goto = |to: usize| {
        let id = ChainId(u16::try_from(to).expect("small"));
        rule(Match::default(), RuleTarget::Flow(Flow::Goto(id)))
    };
    let chains = (1..depth)
        .map(|i| user(&format!("c{i}"), vec![goto(i)]))
        .chain([user("last", vec![])])
        .collect();
    Netfilter {
        input: chain(vec![goto(0)]),
        filter_chains: chains,
        ..Netfilter::default()
    }
}

#[test]
fn the_deepest_table_the_emulator_writes_loads() {
    if !support::can_run(
        "the_deepest_table_the_emulator_writes_loads",
        &[support::IP, support::NFT],
    ) {
        return;
    }
    let net = net();
    let deepest = nft_ruleset(&net, &gotos(reachlab::emulate::MAX_NFT_DEPTH)).expect("ruleset");
    let lab = Lab::new("deep", 1);
    lab.exec(0, &["nft", "-f", "-"], Some(&deepest));
    // One more and the kernel says "Too many links" (EMLINK): the emulator refuses it first.
    assert!(nft_ruleset(&net, &gotos(reachlab::emulate::MAX_NFT_DEPTH + 1)).is_err());
}
