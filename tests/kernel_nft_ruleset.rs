//! The nft reader (`reachlab::topology::nft::read`, the `nft:` and `nft_ruleset:` keys) must
//! read what the kernel's nft lists. Each case gets a network namespace of its own (named
//! `reachlab-nft<pid>-<case>`, removed afterwards, also when the test fails):
//!
//! - every node with rules of every file in `topologies/` and `tests/kernel/`: the node's
//!   rules as `save` writes them are loaded with `iptables-restore` (iptables-nft), `nft list
//!   ruleset` lists them, and our reader must read that listing back into a model that `save`
//!   writes as the same text, comments left out (iptables-nft's comment match is listed as
//!   nothing: docs/netfilter.md, "nft list ruleset text");
//! - iptables rules whose listing nft cannot translate (`xt target CONNMARK`, an address type
//!   without a name, a concatenation): each must be refused as `unsupported` at its line;
//! - rules written in nft's own language (an inet filter table, an ip nat table, an ip6 table),
//!   loaded with `nft -f` and listed back: the model read must be the one written out here.
//!
//! Needs root, iproute2, nftables and iptables. Without them the test says SKIPPED on stderr
//! and passes, unless `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a
//! failure.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reachlab::model::{
    AddrRange, AddrTypes, Chain, ChainId, Effect, FilterRule, Flow, IfaceId, L4, MarkMatch,
    MarkSet, Match, ModuleOrder, Multiport, NatAction, NatFlags, NatHook, NatRule, Netfilter,
    Network, Node, Origin, Port, PortSide, RejectWith, RuleTarget, SetMatch, States, UserChain,
    Verdict,
};
use reachlab::topology::iptables::save;
use reachlab::topology::{Code, load_path, load_str, nft};

mod support;

const IPTABLES: support::Tool = support::Tool {
    program: "iptables",
    arg: "--version",
    package: "iptables",
};

/// A namespace this test created, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(label: &str) -> Self {
        let name = format!("reachlab-nft{}-{label}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip runs");
        assert!(added.status.success(), "ip netns add {name}: {added:?}");
        Netns(name)
    }

    /// Feeds `text` to `program args` inside the namespace; it must succeed.
    fn load(&self, program: &str, args: &[&str], text: &str, case: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the loader runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("written");
        let out = child.wait_with_output().expect("the loader ends");
        assert!(
            out.status.success(),
            "{case}: {program} refused the text: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What `nft list ruleset` prints inside the namespace.
    fn list(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "list", "ruleset"])
            .output()
            .expect("nft runs");
        assert!(
            out.status.success(),
            "nft list ruleset: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The node's interface names (and `lo`), as the loader resolves them.
fn resolver<'a>(net: &'a Network, node: &'a Node) -> impl Fn(&str) -> Option<IfaceId> + 'a {
    move |name: &str| {
        if name == "lo" {
            return Some(IfaceId::LOOPBACK);
        }
        node.interfaces
            .iter()
            .copied()
            .find(|&i| net.interface(i).name == name)
    }
}

fn read(
    text: &str,
    iface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Result<nft::Read, Vec<nft::Problem>> {
    nft::read(text, iface, &|_| Origin::default())
}

/// The model as iptables-nft's listing keeps it: without its rules' comments, and without
/// the order their modules were written in (the nft reader gives reachlab's own order, and
/// an option-less `-m tcp` leaves no trace in nft's expressions).
fn without_comments(nf: &Netfilter) -> Netfilter {
    let mut nf = nf.clone();
    for chain in [
        &mut nf.raw_prerouting,
        &mut nf.raw_output,
        &mut nf.prerouting,
        &mut nf.input,
        &mut nf.forward,
        &mut nf.output,
    ] {
        chain.rules.iter_mut().for_each(|r| {
            r.comment = None;
            r.matches.order = ModuleOrder::default();
        });
    }
    for c in &mut nf.filter_chains {
        c.rules.iter_mut().for_each(|r| {
            r.comment = None;
            r.matches.order = ModuleOrder::default();
        });
    }
    nf.nat.iter_mut().for_each(|r| {
        r.comment = None;
        r.matches.order = ModuleOrder::default();
    });
    for c in &mut nf.nat_chains {
        c.rules.iter_mut().for_each(|r| {
            r.comment = None;
            r.matches.order = ModuleOrder::default();
        });
    }
    nf
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
fn every_topology_reads_back_from_what_nft_lists_of_iptables_nft() {
    if !support::can_run(
        "every_topology_reads_back_from_what_nft_lists_of_iptables_nft",
        &[support::IP, support::NFT, IPTABLES],
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
            let ns = Netns::new(&nodes.to_string());
            ns.load("iptables-restore", &[], &save(&net, nf), &case);
            let listed = ns.list();
            if listed.contains("xt match recent") {
                // iptables-nft keeps `-m recent` as the xtables match itself, which nft lists
                // as `xt match recent` without its options: not readable, and said so.
                let refused = read(&listed, &resolver(&net, node)).expect_err("refused");
                assert!(
                    refused
                        .iter()
                        .all(|p| p.message.contains("xt match recent")),
                    "{case}: {refused:?}"
                );
                continue;
            }
            let expected = save(&net, &without_comments(nf));
            let got = read(&listed, &resolver(&net, node))
                .unwrap_or_else(|p| panic!("{case}: {p:?}\n{listed}"));
            assert_eq!(
                save(&net, &got.nf),
                as_nft_lists_it(&expected),
                "{case}: read from\n{listed}"
            );
        }
    }
    assert!(nodes >= 20, "the topologies have rules on {nodes} nodes");
}

/// nft prints iptables-nft's `-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT` (kubelet's
/// and kube-proxy's KUBE-FIREWALL rule) as `ct status dnat`: the kernel holds the xt match
/// (`nft --debug=netlink` shows `match name conntrack rev 3`, `iptables-nft -S` the rule as
/// written), and nft's translation for display loses the negation and two of the states.
/// Checked in a namespace. Such a rule is compared in the form nft lists it. Likewise a
/// multiport match of one port or one range (felix writes `-m multiport --dports 53`) lists as
/// `udp dport 53`, the same as `-m udp --dport 53`, and reads back as that.
fn as_nft_lists_it(saved: &str) -> String {
    let saved = saved.replace(
        "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT",
        "-m conntrack --ctstate DNAT",
    );
    let mut out = String::with_capacity(saved.len());
    for line in saved.lines() {
        let single = line
            .split_once("-m multiport --dports ")
            .and_then(|(head, rest)| {
                let (ports, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let proto = ["tcp", "udp"]
                    .into_iter()
                    .find(|p| head.contains(&format!("-p {p} ")))?;
                (!ports.contains(',')).then(|| format!("{head}-m {proto} --dport {ports} {tail}"))
            });
        out.push_str(single.as_deref().unwrap_or(line).trim_end());
        out.push('\n');
    }
    out
}

/// Rules in nft's own language: every construct the reader takes, as `nft -f` loads them.
const NATIVE: &str = r#"table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    iif lo accept
    ct state established,related accept
    ct state invalid drop
    ip6 nexthdr ipv6-icmp accept
    meta l4proto icmp ip saddr 192.168.1.0/24 accept
    ip saddr { 10.0.0.0/8 } tcp dport { 22, 80, 8000-8080 } accept comment "admin"
    fib daddr type != local drop
    meta mark & 0x0000ff00 == 0x00000100 accept
    ct status dnat accept
    numgen random mod 1000000000 < 250000000 accept
    log prefix "in: " level info drop
    jump services
    tcp dport 25 reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain services {
    ip saddr 10.0.0.1-10.0.0.9 return
    udp dport 53 accept
    ip daddr != 192.168.0.0/16 goto late
  }
  chain late {
    udp sport != 1-1023 drop
    meta mark set meta mark & 0xffff00ff | 0x00000200
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "eth0" oifname "wan0" ct state new accept
    ct state established,related accept
  }
  chain early {
    type filter hook prerouting priority mangle; policy accept;
    iifname "wan0" ip saddr 192.168.0.0/16 drop
  }
  chain before_conntrack {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 192.168.1.10 iifname != "eth0" drop
  }
  chain out_before_conntrack {
    type filter hook output priority raw - 10; policy accept;
    oifname "wan0" ip daddr 192.168.1.0/24 drop
  }
}
table ip nat {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan0" tcp dport 8080 dnat to 192.168.1.10:80
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ip saddr 192.168.1.0/24 masquerade random
  }
}
table ip6 v6only {
  chain input {
    type filter hook input priority filter; policy drop;
  }
}
"#;

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

fn proto(l4: L4) -> Match {
    Match {
        proto: Some(l4),
        ..Match::default()
    }
}

/// What NATIVE means, written from nft's semantics (docs/netfilter.md, "nft list ruleset
/// text"): the IPv6-only rule and table left out, `log … drop` two rules.
fn native_model(lan: IfaceId, wan: IfaceId) -> Netfilter {
    let chain = |policy, rules| Chain {
        policy,
        rules,
        ..Chain::default()
    };
    let input = vec![
        rule(
            Match {
                in_iface: Some(IfaceId::LOOPBACK),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                states: States::ESTABLISHED.with(States::RELATED),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                states: States::INVALID,
                ..Match::default()
            },
            Verdict::Drop,
        ),
        rule(
            Match {
                src: net("192.168.1.0/24"),
                ..proto(L4::Icmp)
            },
            Verdict::Accept,
        ),
        FilterRule {
            comment: Some("admin".into()),
            ..rule(
                Match {
                    src: net("10.0.0.0/8"),
                    multiport: Some(Multiport {
                        side: PortSide::Destination,
                        ranges: vec![(22, 22), (80, 80), (8000, 8080)],
                        negated: false,
                    }),
                    ..proto(L4::Tcp)
                },
                Verdict::Accept,
            )
        },
        rule(
            Match {
                dst_type: Some(SetMatch {
                    set: AddrTypes::LOCAL,
                    negated: true,
                }),
                ..Match::default()
            },
            Verdict::Drop,
        ),
        rule(
            Match {
                mark: Some(MarkMatch {
                    value: 0x100,
                    mask: 0xff00,
                    negated: false,
                }),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                states: States::DNAT,
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                probability_ppb: Some(250_000_000),
                ..Match::default()
            },
            Verdict::Accept,
        ),
        rule(
            Match::default(),
            RuleTarget::Effect(Effect::Log("--log-prefix \"in: \" --log-level 6".into())),
        ),
        rule(Match::default(), Verdict::Drop),
        rule(Match::default(), RuleTarget::Flow(Flow::Jump(ChainId(0)))),
        rule(
            Match {
                dport: Some((25, 25)),
                ..proto(L4::Tcp)
            },
            Verdict::Reject(RejectWith::TcpReset),
        ),
        rule(
            Match::default(),
            Verdict::Reject(RejectWith::AdminProhibited),
        ),
    ];
    let user = |name: &str, rules| UserChain {
        name: name.into(),
        rules,
        origin: Origin::default(),
    };
    let services = vec![
        rule(
            Match {
                src_range: Some(AddrRange {
                    first: Ipv4Addr::new(10, 0, 0, 1),
                    last: Ipv4Addr::new(10, 0, 0, 9),
                    negated: false,
                }),
                ..Match::default()
            },
            RuleTarget::Flow(Flow::Return),
        ),
        rule(
            Match {
                dport: Some((53, 53)),
                ..proto(L4::Udp)
            },
            Verdict::Accept,
        ),
        rule(
            Match {
                not_dst: net("192.168.0.0/16"),
                ..Match::default()
            },
            RuleTarget::Flow(Flow::Goto(ChainId(1))),
        ),
    ];
    let late = vec![
        rule(
            Match {
                not_sport: Some((1, 1023)),
                ..proto(L4::Udp)
            },
            Verdict::Drop,
        ),
        rule(
            Match::default(),
            RuleTarget::Effect(Effect::Mark(MarkSet {
                value: 0x200,
                mask: 0xff00,
            })),
        ),
    ];
    let nat = |hook, matches, action| NatRule {
        hook,
        matches,
        action,
        origin: Origin::default(),
        comment: None,
    };
    Netfilter {
        nat: vec![
            nat(
                NatHook::Prerouting,
                Match {
                    in_iface: Some(wan),
                    dport: Some((8080, 8080)),
                    ..proto(L4::Tcp)
                },
                NatAction::Dnat(Ipv4Addr::new(192, 168, 1, 10), Port::new(80)),
            ),
            nat(
                NatHook::Postrouting,
                Match {
                    out_iface: Some(wan),
                    src: net("192.168.1.0/24"),
                    ..Match::default()
                },
                NatAction::Masquerade(NatFlags {
                    random: true,
                    random_fully: false,
                }),
            ),
        ],
        nat_chains: Vec::new(),
        prerouting: chain(
            Verdict::Accept,
            vec![rule(
                Match {
                    in_iface: Some(wan),
                    src: net("192.168.0.0/16"),
                    ..Match::default()
                },
                Verdict::Drop,
            )],
        ),
        input: chain(Verdict::Drop, input),
        forward: chain(
            Verdict::Drop,
            vec![
                rule(
                    Match {
                        in_iface: Some(lan),
                        out_iface: Some(wan),
                        states: States::NEW,
                        ..Match::default()
                    },
                    Verdict::Accept,
                ),
                rule(
                    Match {
                        states: States::ESTABLISHED.with(States::RELATED),
                        ..Match::default()
                    },
                    Verdict::Accept,
                ),
            ],
        ),
        output: Chain::default(),
        // The chains at priority raw (-300) and below: before conntrack, the raw table's place.
        raw_prerouting: chain(
            Verdict::Accept,
            vec![rule(
                Match {
                    dst: net("192.168.1.10/32"),
                    not_in_iface: Some(lan),
                    ..Match::default()
                },
                Verdict::Drop,
            )],
        ),
        raw_output: chain(
            Verdict::Accept,
            vec![rule(
                Match {
                    out_iface: Some(wan),
                    dst: net("192.168.1.0/24"),
                    ..Match::default()
                },
                Verdict::Drop,
            )],
        ),
        filter_chains: vec![user("services", services), user("late", late)],
        from_text: true,
    }
}

#[test]
fn native_nft_rules_listed_by_the_kernel_read_into_the_model_they_mean() {
    if !support::can_run(
        "native_nft_rules_listed_by_the_kernel_read_into_the_model_they_mean",
        &[support::IP, support::NFT],
    ) {
        return;
    }
    let yaml = "\
name: nft-native
segments: [{ name: lan }, { name: wan }]
nodes:
  - name: gw
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.168.1.1/24] }
      - { name: wan0, segment: wan, addresses: [203.0.113.1/24] }
";
    let network = load_str("native.yaml", yaml).expect("valid").network;
    let node = &network.nodes[0];
    let id = |name: &str| resolver(&network, node)(name).expect("interface");
    let ns = Netns::new("native");
    ns.load("nft", &["-f", "-"], NATIVE, "native rules");
    let listed = ns.list();
    let got = read(&listed, &resolver(&network, node))
        .unwrap_or_else(|p| panic!("read: {p:?}\n{listed}"));
    assert_eq!(
        got.nf,
        native_model(id("eth0"), id("wan0")),
        "read from\n{listed}"
    );
    assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
    assert!(
        got.warnings[0].message.contains("ip6 v6only"),
        "{:?}",
        got.warnings
    );
}

#[test]
fn what_nft_cannot_translate_of_iptables_nft_is_refused_at_its_line() {
    if !support::can_run(
        "what_nft_cannot_translate_of_iptables_nft_is_refused_at_its_line",
        &[support::IP, support::NFT, IPTABLES],
    ) {
        return;
    }
    let rules = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf0
-A INPUT -m addrtype --src-type XRESOLVE -j ACCEPT
-A INPUT -p tcp -m multiport --ports 53,80 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
";
    let ns = Netns::new("untranslated");
    ns.load("iptables-restore", &[], rules, "untranslatable rules");
    let listed = ns.list();
    let problems = read(&listed, &|_| None).expect_err("refused");
    let lines: Vec<&str> = listed.lines().collect();
    let at: Vec<(Code, &str)> = problems
        .iter()
        .map(|p| (p.code, lines[p.at.line as usize - 1].trim()))
        .collect();
    let wanted = [
        "xt target CONNMARK",
        "fib saddr type counter",
        "tcp sport . tcp dport",
    ];
    assert_eq!(at.len(), wanted.len(), "{problems:?}\n{listed}");
    for ((code, line), want) in at.iter().zip(wanted) {
        assert_eq!(*code, Code::Unsupported, "{line}");
        assert!(
            line.contains(want),
            "`{line}` should hold `{want}`\n{listed}"
        );
    }
}
