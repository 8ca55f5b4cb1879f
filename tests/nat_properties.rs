//! Properties of NAT and filtering over generated networks (issue 4):
//! - a MASQUERADE'd private source never appears beyond the NAT node;
//! - adding an accept rule never removes a reachable pair;
//! - removing all filters never makes a reachable pair unreachable.
//!
//! The generator: LAN hosts 10.0.0.0/24 behind a gateway that masquerades out of its WAN
//! interface (or not), servers on 203.0.113.0/24 with listeners, and random filter rules
//! (protocol, port, state, accept/drop/reject, policy) on the gateway and the servers.

use proptest::prelude::*;
use reachlab::model::{
    Chain, ChainName, FilterRule, L4, Match, Netfilter, Network, Origin, Outcome, Port, RejectWith,
    States, Verdict,
};
use reachlab::sim::{ProbeKind, SimConfig, StepKind, run_probe};
use reachlab::topology::load_str;

#[derive(Debug, Clone)]
struct RuleGen {
    proto: Option<L4>,
    dport: Option<u16>,
    established: bool,
    verdict: Verdict,
}

fn rule_gen() -> impl Strategy<Value = RuleGen> {
    (
        prop_oneof![
            Just(None),
            Just(Some(L4::Tcp)),
            Just(Some(L4::Udp)),
            Just(Some(L4::Icmp))
        ],
        prop_oneof![
            Just(None),
            Just(Some(22u16)),
            Just(Some(80)),
            Just(Some(53))
        ],
        any::<bool>(),
        prop_oneof![
            Just(Verdict::Accept),
            Just(Verdict::Drop),
            Just(Verdict::Reject(RejectWith::PortUnreachable)),
            Just(Verdict::Reject(RejectWith::TcpReset))
        ],
    )
        .prop_map(|(proto, dport, established, verdict)| RuleGen {
            proto,
            dport,
            established,
            verdict,
        })
}

fn to_rule(g: &RuleGen) -> FilterRule {
    let proto = match (g.proto, g.dport, g.verdict) {
        // A port needs tcp/udp; a TCP reset needs tcp.
        (_, _, Verdict::Reject(RejectWith::TcpReset)) => Some(L4::Tcp),
        (Some(L4::Icmp) | None, Some(_), _) => Some(L4::Tcp),
        (p, _, _) => p,
    };
    let dport = if matches!(proto, Some(L4::Tcp | L4::Udp)) {
        g.dport.map(|p| (p, p))
    } else {
        None
    };
    let states = if g.established {
        States::ESTABLISHED.with(States::RELATED)
    } else {
        States::any()
    };
    FilterRule {
        matches: Match {
            proto,
            dport,
            states,
            ..Match::default()
        },
        target: g.verdict.into(),
        origin: Origin::default(),
        comment: None,
        platform_fix: None,
    }
}

#[derive(Debug, Clone)]
struct Case {
    hosts: usize,
    servers: usize,
    masquerade: bool,
    /// Servers have a route back to the LAN (through the gateway).
    route_back: bool,
    gw_policy_drop: bool,
    gw_rules: Vec<RuleGen>,
    server_rules: Vec<(usize, bool, Vec<RuleGen>)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..3, 1usize..3, any::<bool>(), any::<bool>()),
        any::<bool>(),
        proptest::collection::vec(rule_gen(), 0..4),
        proptest::collection::vec(
            (
                0usize..3,
                any::<bool>(),
                proptest::collection::vec(rule_gen(), 0..3),
            ),
            0..3,
        ),
    )
        .prop_map(
            |((hosts, servers, masquerade, route_back), gw_policy_drop, gw_rules, server_rules)| {
                Case {
                    hosts,
                    servers,
                    masquerade,
                    route_back,
                    gw_policy_drop,
                    gw_rules,
                    server_rules,
                }
            },
        )
}

/// The base network as topology text (addresses, routes, listeners, the masquerade rule).
fn base(case: &Case) -> Network {
    let mut y = String::from("segments: [{ name: lan }, { name: wan }]\nnodes:\n");
    for h in 0..case.hosts {
        y.push_str(&format!("  - name: h{h}\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.{}/24] }}]\n    routes: [{{ to: default, via: 10.0.0.1 }}]\n    listen: [{{ port: 22, ssh: SSH-2.0-x }}]\n", 10 + h));
    }
    y.push_str("  - name: gw\n    forwarding: true\n    interfaces:\n      - { name: lan0, segment: lan, addresses: [10.0.0.1/24] }\n      - { name: wan0, segment: wan, addresses: [203.0.113.1/24] }\n");
    if case.masquerade {
        y.push_str("    nat: [{ masquerade: true, src: 10.0.0.0/24, out: wan0 }]\n");
    }
    for s in 0..case.servers {
        // Servers route only their own subnet: without masquerade, answers to 10/8 are lost.
        y.push_str(&format!("  - name: s{s}\n    interfaces: [{{ name: eth0, segment: wan, addresses: [203.0.113.{}/24] }}]\n    listen: [{{ port: 22, ssh: SSH-2.0-x }}, {{ port: 80, http: {{ body: ok }} }}, {{ port: 53, proto: udp }}]\n", 20 + s));
        if case.route_back {
            y.push_str("    routes: [{ to: 10.0.0.0/24, via: 203.0.113.1 }]\n");
        }
    }
    load_str("gen.yaml", &y)
        .expect("generated base is valid")
        .network
}

/// Installs the generated filters (and optionally more).
fn with_filters(mut net: Network, case: &Case) -> Network {
    let chain = |drop: bool, rules: &[RuleGen]| Chain {
        policy: if drop { Verdict::Drop } else { Verdict::Accept },
        rules: rules.iter().map(to_rule).collect(),
        ..Chain::default()
    };
    let gw = net.nodes.iter().position(|n| n.name == "gw").expect("gw");
    let nf = net.nodes[gw]
        .netfilter
        .get_or_insert_with(|| Box::new(Netfilter::default()));
    nf.forward = chain(case.gw_policy_drop, &case.gw_rules);
    for (server, drop, rules) in &case.server_rules {
        if let Some(index) = net
            .nodes
            .iter()
            .position(|n| n.name == format!("s{}", server % case.servers))
        {
            let nf = net.nodes[index]
                .netfilter
                .get_or_insert_with(|| Box::new(Netfilter::default()));
            nf.input = chain(*drop, rules);
        }
    }
    net
}

fn probes() -> Vec<ProbeKind> {
    let port = |p| Port::new(p).expect("port");
    vec![
        ProbeKind::ping(1),
        ProbeKind::tcp(port(22)),
        ProbeKind::tcp(port(80)),
        ProbeKind::udp(port(53)),
    ]
}

/// Every (from, to, probe) outcome, hosts → servers and servers → hosts.
fn outcomes(net: &Network) -> Vec<((String, String, usize), Outcome)> {
    let config = SimConfig::default();
    let mut out = Vec::new();
    for a in &net.nodes {
        for b in &net.nodes {
            let pair = (a.name.starts_with('h') && b.name.starts_with('s'))
                || (a.name.starts_with('s') && b.name.starts_with('h'));
            if !pair {
                continue;
            }
            let dst = net.node_address(b).expect("address");
            for (i, kind) in probes().iter().enumerate() {
                out.push((
                    (a.name.clone(), b.name.clone(), i),
                    run_probe(net, a.id, dst, kind, &config).outcome,
                ));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn masqueraded_sources_never_leave_the_nat_node(case in case()) {
        let net = with_filters(base(&Case { masquerade: true, ..case.clone() }), &Case { masquerade: true, ..case });
        let lan: ipnet::Ipv4Net = "10.0.0.0/24".parse().expect("prefix");
        let config = SimConfig::default();
        for host in net.nodes.iter().filter(|n| n.name.starts_with('h')) {
            for server in net.nodes.iter().filter(|n| n.name.starts_with('s')) {
                let dst = net.node_address(server).expect("address");
                for kind in probes() {
                    let run = run_probe(&net, host.id, dst, &kind, &config);
                    for step in &run.steps {
                        let beyond = net.node(step.node).name.starts_with('s');
                        let arrived = matches!(step.kind, StepKind::Delivered { .. } | StepKind::Dropped { .. } | StepKind::Filtered { .. } | StepKind::Refused);
                        prop_assert!(
                            !(beyond && arrived && lan.contains(&step.packet.src)),
                            "{} saw private source {} ({:?})", net.node(step.node).name, step.packet.src, step.kind
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_accept_rule_never_removes_a_reachable_pair(case in case(), at_gw in any::<bool>(), extra in rule_gen()) {
        let before_net = with_filters(base(&case), &case);
        let before = outcomes(&before_net);
        let mut after_net = before_net.clone();
        let accept = to_rule(&RuleGen { verdict: Verdict::Accept, ..extra });
        let target = if at_gw { "gw".to_owned() } else { format!("s{}", 0) };
        let index = after_net.nodes.iter().position(|n| n.name == target).expect("node");
        let nf = after_net.nodes[index].netfilter.get_or_insert_with(|| Box::new(Netfilter::default()));
        let chain = if at_gw { &mut nf.forward } else { &mut nf.input };
        let position = (extra.dport.unwrap_or(0) as usize) % (chain.rules.len() + 1);
        chain.rules.insert(position, accept);
        let _ = ChainName::Forward;
        let after = outcomes(&after_net);
        for ((key, was), (_, now)) in before.iter().zip(&after) {
            prop_assert!(!(*was == Outcome::Reply && *now != Outcome::Reply), "{key:?}: reply before, {now:?} after adding an accept rule");
        }
    }

    #[test]
    fn removing_all_filters_never_makes_a_pair_unreachable(case in case()) {
        let filtered = with_filters(base(&case), &case);
        let mut open = filtered.clone();
        for node in &mut open.nodes {
            if let Some(nf) = node.netfilter.as_mut() {
                nf.input = Chain::default();
                nf.forward = Chain::default();
                nf.output = Chain::default();
            }
        }
        for ((key, was), (_, now)) in outcomes(&filtered).iter().zip(&outcomes(&open)) {
            prop_assert!(!(*was == Outcome::Reply && *now != Outcome::Reply), "{key:?}: reply with filters, {now:?} without");
        }
    }
}

/// The leak detector above works: without masquerade, the servers do see 10.0.0.x sources.
#[test]
fn without_masquerade_private_sources_do_reach_servers() {
    let case = Case {
        hosts: 1,
        servers: 1,
        masquerade: false,
        route_back: false,
        gw_policy_drop: false,
        gw_rules: vec![],
        server_rules: vec![],
    };
    let net = base(&case);
    let h0 = net.node_by_name("h0").expect("h0").id;
    let s0 = net.resolve("s0").expect("s0");
    let run = run_probe(&net, h0, s0, &ProbeKind::ping(1), &SimConfig::default());
    let lan: ipnet::Ipv4Net = "10.0.0.0/24".parse().expect("prefix");
    assert!(
        run.steps
            .iter()
            .any(|s| net.node(s.node).name == "s0" && lan.contains(&s.packet.src))
    );
    // And the answer cannot come back: the server has no route to 10/8.
    assert_eq!(run.outcome, Outcome::Timeout);
    let masq = base(&Case {
        masquerade: true,
        ..case
    });
    assert_eq!(
        run_probe(&masq, h0, s0, &ProbeKind::ping(1), &SimConfig::default()).outcome,
        Outcome::Reply
    );
}

/// The generated cases exercise both sides of the monotonicity properties.
#[test]
fn generated_cases_reach_and_fail() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut replies, mut failures) = (0, 0);
    for _ in 0..40 {
        let c = case().new_tree(&mut runner).expect("tree").current();
        for (_, outcome) in outcomes(&with_filters(base(&c), &c)) {
            if outcome == Outcome::Reply {
                replies += 1
            } else {
                failures += 1
            }
        }
    }
    assert!(
        replies > 50 && failures > 50,
        "{replies} replies, {failures} failures"
    );
}

/// kube-proxy's endpoint choice: rules with probability 1/3, 1/2 and an unconditional last one
/// spread connections evenly; the seed decides, so the same seed picks the same endpoint.
#[test]
fn random_dnat_spreads_like_kube_proxy_and_follows_the_seed() {
    let text = "segments: [{ name: lan }]\nnodes:\n  - name: client\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]\n    routes: [{ to: 10.96.0.0/12, dev: eth0 }]\n    nat:\n      - { dnat: \"10.0.0.11:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output, probability: 0.333333333 }\n      - { dnat: \"10.0.0.12:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output, probability: 0.5 }\n      - { dnat: \"10.0.0.13:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output }\n  - name: p1\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.11/24] }]\n    listen: [{ port: 5000 }]\n  - name: p2\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.12/24] }]\n    listen: [{ port: 5000 }]\n  - name: p3\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.13/24] }]\n    listen: [{ port: 5000 }]\n";
    let net = load_str("lb.yaml", text).expect("valid").network;
    let client = net.node_by_name("client").expect("client").id;
    let vip = std::net::Ipv4Addr::new(10, 96, 0, 10);
    let kind = ProbeKind::tcp(Port::new(80).expect("port"));
    let chosen = |seed: u64| {
        let run = run_probe(
            &net,
            client,
            vip,
            &kind,
            &SimConfig {
                seed,
                ..SimConfig::default()
            },
        );
        assert_eq!(run.outcome, Outcome::Reply);
        run.steps
            .iter()
            .find(|s| {
                matches!(s.kind, StepKind::Delivered { .. })
                    && net.node(s.node).name.starts_with('p')
            })
            .map(|s| net.node(s.node).name.clone())
            .expect("an endpoint got it")
    };
    let mut counts = std::collections::HashMap::new();
    for seed in 0..600 {
        *counts.entry(chosen(seed)).or_insert(0) += 1;
    }
    for endpoint in ["p1", "p2", "p3"] {
        let n = counts.get(endpoint).copied().unwrap_or(0);
        // 600 draws of p = 1/3: mean 200, standard deviation 11.5; ±60 is over 5 sigma.
        assert!(
            (140..=260).contains(&n),
            "{endpoint} chosen {n} times of 600: {counts:?}"
        );
    }
    assert_eq!(chosen(42), chosen(42));
}

/// The random choice made explicit: every endpoint of a three-way spread is tried once, and an
/// expectation is met only when every choice meets it — with one endpoint not listening, a
/// third of the choices are refused, and `check` says so.
#[test]
fn every_endpoint_choice_is_simulated_and_check_says_when_the_outcome_depends_on_it() {
    let listening = |p3: &str| {
        format!(
            "segments: [{{ name: lan }}]\nnodes:\n  - name: client\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }}]\n    routes: [{{ to: 10.96.0.0/12, dev: eth0 }}]\n    nat:\n      - {{ dnat: \"10.0.0.11:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output, probability: 0.333333333 }}\n      - {{ dnat: \"10.0.0.12:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output, probability: 0.5 }}\n      - {{ dnat: \"10.0.0.13:5000\", dst: 10.96.0.10, proto: tcp, dport: 80, chain: output }}\n  - name: p1\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.11/24] }}]\n    listen: [{{ port: 5000 }}]\n  - name: p2\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.12/24] }}]\n    listen: [{{ port: 5000 }}]\n  - name: p3\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.13/24] }}]\n{p3}expect:\n  - {{ from: client, tcp: 10.96.0.10, port: 80, outcome: reply }}\n"
        )
    };
    let config = SimConfig::default();
    let all = load_str("lb.yaml", &listening("    listen: [{ port: 5000 }]\n"))
        .expect("valid")
        .network;
    let request = reachlab::run::ProbeRequest {
        from: all.node_by_name("client").expect("client").id,
        written: "10.96.0.10".into(),
        dst: std::net::Ipv4Addr::new(10, 96, 0, 10),
        probe: reachlab::model::Probe::Tcp {
            port: Port::new(80).expect("port"),
        },
        count: 1,
        wait: None,
        ttl: None,
    };
    let runs = reachlab::run::run_every_choice(&all, &request, &config);
    let mut reached: Vec<String> = runs
        .iter()
        .map(|r| {
            let delivered = r.run.steps.iter().rev().find(|s| {
                matches!(s.kind, StepKind::Delivered { .. })
                    && all.node(s.node).name.starts_with('p')
            });
            all.node(delivered.expect("an endpoint got it").node)
                .name
                .clone()
        })
        .collect();
    reached.sort();
    assert_eq!(reached, ["p1", "p2", "p3"]);
    let rows = reachlab::run::check(&all, &config);
    assert!(rows[0].ok, "{}", rows[0].detail);

    let one_down = load_str("lb.yaml", &listening("")).expect("valid").network;
    let rows = reachlab::run::check(&one_down, &config);
    assert!(!rows[0].ok);
    assert!(
        rows[0].detail.contains("2 of 3 choices as expected"),
        "{}",
        rows[0].detail
    );
    assert_eq!(rows[0].predicted, Outcome::Refused);
}
