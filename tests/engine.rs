//! The engine against facts about Linux that do not need a namespace to check: TTL arithmetic,
//! RTT from link latencies, determinism, the run bounds, and `reachlab check`'s exit codes.

use std::process::Command;

use reachlab::generate::chain;
use reachlab::model::{Outcome, Port};
use reachlab::sim::{Observed, ProbeKind, SimConfig, Stopped, run_probe};
use reachlab::topology::load_str;

fn chain_net(routers: usize) -> reachlab::model::Network {
    load_str("chain.yaml", &chain(routers))
        .expect("generated chain is valid")
        .network
}

fn ping_a_to_b(routers: usize) -> reachlab::sim::ProbeRun {
    let net = chain_net(routers);
    let a = net.node_by_name("a").expect("a").id;
    let b = net
        .node_address(net.node_by_name("b").expect("b"))
        .expect("b has an address");
    run_probe(&net, a, b, &ProbeKind::ping(1), &SimConfig::default())
}

/// A Linux reply starts at TTL 64 and loses one per router (RFC 1812 5.3.1): across n routers
/// it arrives with 64 − n. At 64 routers the request itself expires at the last router
/// (it arrives there with TTL 1), which answers "Time to live exceeded".
#[test]
fn reply_ttl_is_64_minus_routers_on_the_way_back() {
    for routers in [1usize, 2, 5, 30, 63] {
        let run = ping_a_to_b(routers);
        let Observed::Ping { replies, .. } = &run.observed else {
            panic!("ping")
        };
        assert_eq!(run.outcome, Outcome::Reply, "{routers} routers");
        assert_eq!(
            u32::from(replies[0].ttl),
            64 - routers as u32,
            "{routers} routers"
        );
    }
    let run = ping_a_to_b(64);
    assert_eq!(run.outcome, Outcome::TtlExceeded);
    let Observed::Ping { errors, .. } = &run.observed else {
        panic!("ping")
    };
    let net = chain_net(64);
    let last = net.node_by_name("r63").expect("r63");
    // The error comes from the address r63 uses towards `a`: its left interface.
    assert_eq!(
        Some(errors[0].from),
        net.interfaces_of(last)
            .next()
            .and_then(|i| i.primary_address())
    );
}

/// RTT = the sum of the one-way latencies both ways plus 5 µs per hop; the first ping also
/// pays for ARP at every hop (request and reply cross each link once more).
#[test]
fn rtt_is_the_sum_of_link_latencies() {
    let text = std::fs::read_to_string("topologies/basics-two-subnets.yaml").expect("file");
    let net = load_str("t.yaml", &text).expect("valid").network;
    let pc1 = net.node_by_name("pc1").expect("pc1").id;
    let pc2 = net.resolve("pc2").expect("pc2");
    let run = run_probe(&net, pc1, pc2, &ProbeKind::ping(2), &SimConfig::default());
    let Observed::Ping { replies, .. } = &run.observed else {
        panic!("ping")
    };
    // Second ping, caches warm: 4 link crossings × (latency + 5 µs).
    let lan = net.segments[0].latency;
    let per_crossing = lan + std::time::Duration::from_micros(5);
    assert_eq!(replies[1].rtt, per_crossing * 4);
    // First ping: plus an ARP exchange on each link in each direction's first use.
    assert_eq!(replies[0].rtt, per_crossing * 8);
}

fn lossy_topology() -> String {
    "segments:\n  - { name: lan, loss: 30% }\nnodes:\n  - name: a\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]\n  - name: b\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]\n".into()
}

fn reachlab(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("reachlab runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

mod support;

fn scratch(name: &str, text: &str) -> support::scratch::Scratch {
    support::scratch::Scratch::file("engine", name, text)
}

#[test]
fn same_seed_same_bytes_other_seed_other_losses() {
    let path = scratch("lossy.yaml", &lossy_topology());
    let file = path.to_str().expect("utf-8 path");
    let run = |seed: &str| {
        reachlab(&[
            "--seed", seed, "ping", file, "a", "10.0.0.2", "-c", "20", "-W", "1",
        ])
    };
    let first = run("7");
    assert_eq!(first, run("7"), "same seed, same output");
    assert!(first.1.contains("packet loss"));
    assert!(
        !first.1.contains(", 0% packet loss") && !first.1.contains(" 100% packet loss"),
        "30% loss shows: {}",
        first.1
    );
    let others: Vec<_> = ["8", "9", "10"].iter().map(|s| run(s).1).collect();
    assert!(
        others.iter().any(|o| *o != first.1),
        "other seeds draw other losses"
    );
    // The whole explanation and fix search is deterministic too.
    let failing = ["ping", "topologies/basics-missing-gateway.yaml", "h1", "h2"];
    assert_eq!(reachlab(&failing), reachlab(&failing));
}

#[test]
fn check_passes_on_topologies_and_fails_on_a_changed_expectation() {
    let (code, out) = reachlab(&["check", "--color", "never", "topologies"]);
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string("topologies/basics-two-subnets.yaml").expect("file");
    let changed = text.replacen("outcome: refused", "outcome: timeout", 1);
    assert_ne!(text, changed);
    let path = scratch("changed.yaml", &changed);
    let (code, out) = reachlab(&["check", "--color", "never", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("expected timeout, predicted refused"), "{out}");
    assert!(out.contains("1 not"), "{out}");
}

#[test]
fn a_run_stops_at_its_event_budget_and_says_so() {
    let net = chain_net(50);
    let a = net.node_by_name("a").expect("a").id;
    let b = net
        .node_address(net.node_by_name("b").expect("b"))
        .expect("b");
    let config = SimConfig {
        max_events: 20,
        ..SimConfig::default()
    };
    let run = run_probe(&net, a, b, &ProbeKind::ping(1), &config);
    assert_eq!(run.stopped, Some(Stopped::EventBudget));
    assert_eq!(run.outcome, Outcome::Timeout);
    assert!(run.events <= 20);
    let why = reachlab::explain::why(&net, &run).expect("a why");
    assert!(why.lines[0].contains("stopped early"), "{:?}", why.lines);
    assert_eq!(
        why.cause,
        reachlab::explain::Cause::Stopped {
            reason: "event-budget"
        }
    );
}

#[test]
fn tcp_retransmits_like_linux_before_timing_out() {
    // Nobody forwards: the SYN dies at `box`; connect() gives up after 127 s.
    let text = std::fs::read_to_string("topologies/basics-forwarding-off.yaml").expect("file");
    let net = load_str("t.yaml", &text).expect("valid").network;
    let pc = net.node_by_name("pc").expect("pc").id;
    let srv = net.resolve("srv").expect("srv");
    let run = run_probe(
        &net,
        pc,
        srv,
        &ProbeKind::tcp(Port::SSH),
        &SimConfig::default(),
    );
    assert_eq!(run.outcome, Outcome::Timeout);
    let syns: Vec<f64> = run
        .steps
        .iter()
        .filter(|s| matches!(s.kind, reachlab::sim::StepKind::Sent { .. }) && s.node == pc)
        .map(|s| s.at.as_millis_f64() / 1000.0)
        .collect();
    assert_eq!(syns, [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]);
    let (_, out) = reachlab(&["ssh", "topologies/basics-forwarding-off.yaml", "pc", "srv"]);
    assert!(
        out.starts_with("ssh: connect to host srv port 22: Connection timed out\n"),
        "{out}"
    );
}

/// iputils sends one echo a second and waits for the last: `ping -c 1000` runs 1,009 s of
/// simulated time, longer than the engine's default 300 s horizon. The run's horizon stretches
/// to the probe's own duration, so a loss-free network answers every echo (it said "300
/// received, 70% packet loss" before).
#[test]
fn a_ping_longer_than_the_horizon_is_simulated_to_its_end() {
    let (code, out) = reachlab(&[
        "ping",
        "topologies/basics-two-subnets.yaml",
        "pc1",
        "pc2",
        "-c",
        "1000",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1000 packets transmitted, 1000 received, 0% packet loss"),
        "{}",
        out.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
    assert!(!out.contains("stopped early"), "{out}");
}

/// iputils 20221126 refuses `-c 0` ("ping: invalid argument: '0': out of range: 1 <= value <=
/// …", exit 1, checked by hand); reachlab refuses it as a usage error instead of sending one.
#[test]
fn ping_count_zero_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args([
            "ping",
            "topologies/basics-two-subnets.yaml",
            "pc1",
            "pc2",
            "-c",
            "0",
        ])
        .output()
        .expect("reachlab runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'0'") && err.contains("-c"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A run cut short says so in the text a person reads, not only in the JSON.
#[test]
fn a_run_cut_short_says_so_in_its_text() {
    let net = chain_net(50);
    let a = net.node_by_name("a").expect("a").id;
    let b = net
        .node_address(net.node_by_name("b").expect("b"))
        .expect("b");
    let config = SimConfig {
        max_events: 20,
        ..SimConfig::default()
    };
    let request = reachlab::run::ProbeRequest {
        from: a,
        written: b.to_string(),
        dst: b,
        probe: reachlab::model::Probe::Ping,
        count: 1,
        wait: None,
        ttl: None,
    };
    let result = reachlab::run::run_request(&net, request, &config);
    assert_eq!(result.run.stopped, Some(Stopped::EventBudget));
    let text = reachlab::render::probe_text(&net, &result, reachlab::render::Palette::new(false));
    assert!(
        text.contains("the simulation stopped early: the run spent its event budget"),
        "{text}"
    );
}

/// `trace` and its JSON say why a packet died in words: a gateway that does not answer ARP was
/// printed as `DROPPED: ArpFailed { iface: IfaceId(0), … }`.
#[test]
fn trace_names_drops_in_words_not_debug_text() {
    let path = scratch(
        "arp.yaml",
        "segments: [{ name: lan }]\nnodes:\n  - name: a\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]\n    routes: [{ to: default, via: 10.0.0.254 }]\n  - name: b\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]\n    firewall: { input: { policy: drop } }\n",
    );
    let file = path.to_str().expect("utf-8 path");
    let (_, text) = reachlab(&["trace", file, "a", "192.0.2.1"]);
    assert!(
        text.contains("DROPPED: no ARP answer for 10.0.0.254 on eth0"),
        "{text}"
    );
    let (_, filtered) = reachlab(&["trace", file, "a", "10.0.0.2"]);
    assert!(filtered.contains("DROP by "), "{filtered}");
    let (_, json) = reachlab(&["trace", "--format", "json", file, "a", "192.0.2.1"]);
    for out in [&text, &filtered, &json] {
        assert!(
            !out.contains("IfaceId") && !out.contains("ArpFailed") && !out.contains("Drop by"),
            "{out}"
        );
    }
}

/// Two hosts and their gateway on `lan`; `a` reaches the Internet through `gw`.
fn gateway_lan(loss: &str) -> reachlab::model::Network {
    let text = format!(
        "segments: [{{ name: lan, loss: {loss} }}, {{ name: wan }}]\nnodes:\n  - name: a\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }}]\n    routes: [{{ to: default, via: 10.0.0.254 }}]\n  - name: b\n    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }}]\n  - name: gw\n    forwarding: true\n    interfaces:\n      - {{ name: lan0, segment: lan, addresses: [10.0.0.254/24] }}\n      - {{ name: wan0, segment: wan, addresses: [192.0.2.254/24] }}\n  - name: web\n    interfaces: [{{ name: eth0, segment: wan, addresses: [192.0.2.80/24] }}]\n    routes: [{{ to: default, via: 192.0.2.254 }}]\n"
    );
    load_str("gw.yaml", &text).expect("valid").network
}

/// ARP that went unanswered because frames were lost is named as loss: `why:` said
/// "10.0.0.254 exists, but not on segment `lan`" while `gw` has it on `lan`.
#[test]
fn arp_lost_on_a_lossy_segment_is_named_as_loss() {
    let net = gateway_lan("90%");
    let a = net.node_by_name("a").expect("a").id;
    let web: std::net::Ipv4Addr = "192.0.2.80".parse().expect("ip");
    let lost_arp = (1..200u64)
        .map(|seed| {
            let config = SimConfig {
                seed,
                ..SimConfig::default()
            };
            run_probe(&net, a, web, &ProbeKind::ping(1), &config)
        })
        .find(|run| run.outcome == Outcome::HostUnreachable)
        .expect("some seed loses all three ARP exchanges");
    let why = reachlab::explain::why(&net, &lost_arp).expect("a why");
    let text = why.lines.join("\n");
    assert!(
        text.contains("`gw` has 10.0.0.254 on segment `lan`, but the requests or the answers were lost there (it loses 90% of frames)"),
        "{text}"
    );
    assert!(!text.contains("not on segment"), "{text}");
    // The decisive step is the ARP that went unanswered; the loss is what its words name.
    assert_eq!(
        why.cause,
        reachlab::explain::Cause::ArpUnanswered {
            node: "a".into(),
            segment: "lan".into(),
            next_hop: "10.0.0.254".parse().expect("ip"),
        }
    );
}

/// With `lan` down (`check --failures`), the gateway's silence is explained by the failure,
/// not by an address "not on segment `lan`"; with `gw` down, by `gw`.
#[test]
fn arp_silence_under_a_failure_names_what_is_down() {
    use reachlab::invariants::failures::{Element, Failure, apply};
    let net = gateway_lan("0%");
    let a = net.node_by_name("a").expect("a").id;
    let web: std::net::Ipv4Addr = "192.0.2.80".parse().expect("ip");
    let lan = net.segments[0].id;
    let gw = net.node_by_name("gw").expect("gw").id;
    for (element, expected) in [
        (
            Element::Segment(lan),
            "`gw` has 10.0.0.254 on segment `lan`, but `lan` is down",
        ),
        (
            Element::Node(gw),
            "`gw` has 10.0.0.254 on segment `lan`, but `gw` is down",
        ),
    ] {
        let broken = apply(&net, &Failure(vec![element]));
        let run = run_probe(&broken, a, web, &ProbeKind::ping(1), &SimConfig::default());
        assert_eq!(run.outcome, Outcome::HostUnreachable);
        let why = reachlab::explain::why(&broken, &run).expect("a why");
        let text = why.lines.join("\n");
        assert!(text.contains(expected), "{text}");
        assert_eq!(
            why.cause,
            reachlab::explain::Cause::ArpUnanswered {
                node: "a".into(),
                segment: "lan".into(),
                next_hop: "10.0.0.254".parse().expect("ip"),
            }
        );
    }
}

/// A router's ICMP redirect about a packet it DNATed never reaches the sender (checked in
/// namespaces: gw counts IcmpOutRedirects, laptop's IcmpMsgInType5 stays 0, and iputils' `ping
/// -c 4` gets 4 answers "(DIFFERENT ADDRESS!)"). reachlab printed "Redirect Host" and lost half
/// the echoes.
#[test]
fn no_redirect_reaches_the_sender_about_a_packet_the_router_dnated() {
    let text = std::fs::read_to_string("topologies/nat-hairpin.yaml").expect("file");
    let net = load_str("t.yaml", &text).expect("valid").network;
    let laptop = net.node_by_name("laptop").expect("laptop").id;
    let public: std::net::Ipv4Addr = "203.0.113.10".parse().expect("ip");
    let run = run_probe(
        &net,
        laptop,
        public,
        &ProbeKind::ping(4),
        &SimConfig::default(),
    );
    let Observed::Ping {
        replies, redirects, ..
    } = &run.observed
    else {
        panic!("ping")
    };
    assert_eq!(replies.len(), 4, "{:?}", run.observed);
    assert!(redirects.is_empty(), "{redirects:?}");
    let (_, out) = reachlab(&[
        "ping",
        "topologies/nat-hairpin.yaml",
        "laptop",
        "203.0.113.10",
    ]);
    assert!(
        out.starts_with("PING 203.0.113.10 (203.0.113.10) 56(84) bytes of data.\n64 bytes from 192.168.1.5: icmp_seq=1 ttl=64"),
        "{out}"
    );
    assert!(
        out.contains("(DIFFERENT ADDRESS!)") && !out.contains("Redirect"),
        "{out}"
    );
}

/// ip_forward() sends the ICMP redirect before the FORWARD hook: `r1` drops every forwarded
/// packet, yet redirects `pc` to `r2`. Kernel (reachlab emulate ping -c 3, iputils alike):
/// echoes 1 and 2 draw a redirect each and are dropped, echo 3 goes to r2 and is answered.
/// reachlab predicted 0 of 3.
#[test]
fn a_router_redirects_before_its_forward_chain_drops() {
    let text = "segments: [{ name: lan }, { name: far }]
nodes:
  - { name: pc, interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.10/24] }], routes: [{ to: default, via: 10.0.0.1 }] }
  - name: r1
    forwarding: true
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    routes: [{ to: 10.0.1.0/24, via: 10.0.0.2 }]
    firewall: { forward: { policy: drop } }
  - name: r2
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.2/24] }
      - { name: eth1, segment: far, addresses: [10.0.1.1/24] }
  - { name: srv, interfaces: [{ name: eth0, segment: far, addresses: [10.0.1.10/24] }], routes: [{ to: default, via: 10.0.1.1 }] }
";
    let net = load_str("t.yaml", text).expect("valid").network;
    let pc = net.node_by_name("pc").expect("pc").id;
    let srv = net.resolve("srv").expect("srv");
    let run = run_probe(&net, pc, srv, &ProbeKind::ping(3), &SimConfig::default());
    let Observed::Ping {
        replies, redirects, ..
    } = &run.observed
    else {
        panic!("ping")
    };
    assert_eq!(replies.iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(replies[0].ttl, 63);
    assert_eq!(redirects.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
}

/// `blackhole`, `unreachable` and `prohibit` routes, as the kernel treats them (checked with
/// `reachlab emulate check topologies/linux-route-types.yaml`: 13 of 13 agree): forwarded,
/// silence / ICMP host unreachable / ICMP packet filtered; the sender's own, EINVAL /
/// EHOSTUNREACH / EACCES at once, with nothing sent.
#[test]
fn route_types_blackhole_unreachable_prohibit() {
    use reachlab::model::RouteType;
    let text = std::fs::read_to_string("topologies/linux-route-types.yaml").expect("file");
    let net = load_str("linux-route-types.yaml", &text)
        .expect("valid")
        .network;
    let laptop = net.node_by_name("laptop").expect("laptop").id;
    let run = |dst: &str, kind: &ProbeKind| {
        run_probe(
            &net,
            laptop,
            dst.parse().unwrap(),
            kind,
            &SimConfig::default(),
        )
    };
    let ssh = ProbeKind::tcp(Port::new(22).unwrap());
    for (dst, outcome) in [
        ("198.51.100.1", Outcome::Timeout),
        ("198.51.100.65", Outcome::HostUnreachable),
        ("198.51.100.129", Outcome::Filtered),
        ("203.0.113.1", Outcome::NoRoute),
        ("203.0.113.65", Outcome::HostUnreachable),
        ("203.0.113.129", Outcome::Filtered),
    ] {
        assert_eq!(run(dst, &ProbeKind::ping(1)).outcome, outcome, "ping {dst}");
        assert_eq!(run(dst, &ssh).outcome, outcome, "ssh {dst}");
    }
    for (dst, route) in [
        ("203.0.113.1", RouteType::Blackhole),
        ("203.0.113.65", RouteType::Unreachable),
        ("203.0.113.129", RouteType::Prohibit),
    ] {
        let r = run(dst, &ssh);
        assert_eq!(r.observed, Observed::Rejected(route), "{dst}");
        assert_eq!(r.src, None, "nothing is sent to {dst}");
    }
    let lines = reachlab::render::ip_route(&net, net.node_by_name("gw").expect("gw"));
    assert!(
        lines.contains(&"blackhole 198.51.100.0/26".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"prohibit 198.51.100.128/26".to_owned()),
        "{lines:?}"
    );
    // `ip route` refuses a gateway or device on such a route.
    let bad = text.replace(
        "{ to: 198.51.100.0/26, type: blackhole }",
        "{ to: 198.51.100.0/26, type: blackhole, via: 192.0.2.2 }",
    );
    assert!(load_str("bad.yaml", &bad).is_err());
}

/// Two routers in a line, which also send 10.99.0.0/24 to each other: a loop
/// (tests/kernel/two-routers.yaml, also held against the kernel in tests/emulate_check.rs).
fn two_routers() -> reachlab::model::Network {
    let text = include_str!("kernel/two-routers.yaml");
    load_str("two-routers.yaml", text).expect("valid").network
}

/// `ping -t 2` runs out at the second router: the explanation says the TTL was chosen, names
/// the path, and offers no fix (nothing in the file is wrong). The kernel's answer (r2, from
/// 198.51.100.2) is held in `tests/emulate_check.rs`.
#[test]
fn a_chosen_ttl_that_runs_out_is_explained_without_a_fix() {
    let net = two_routers();
    let pc = net.node_by_name("pc").expect("pc").id;
    let request = reachlab::run::ProbeRequest {
        from: pc,
        written: "203.0.113.1".into(),
        dst: "203.0.113.1".parse().expect("ip"),
        probe: reachlab::model::Probe::Ping,
        count: 1,
        wait: None,
        ttl: Some(1),
    };
    let result = reachlab::fix::diagnose(&net, request.clone(), &SimConfig::default());
    let text = reachlab::render::probe_text(&net, &result, reachlab::render::Palette::new(false));
    assert!(
        text.contains("From 192.0.2.1 icmp_seq=1 Time to live exceeded"),
        "{text}"
    );
    assert!(text.contains("(`ping -t 1`)"), "{text}");
    assert!(!text.contains("fix"), "no fix for a chosen TTL: {text}");
    let why = result.why.expect("a why");
    assert_eq!(
        why.cause,
        reachlab::explain::Cause::TtlExhausted {
            node: "r1".into(),
            sent: 1,
            chosen: true,
            path: vec![],
        }
    );
    // TTL 2 reaches r2, the address itself: a reply with r2's TTL (64).
    let two = reachlab::run::ProbeRequest {
        ttl: Some(2),
        ..request
    };
    let result = reachlab::run::run_request(&net, two, &SimConfig::default());
    assert_eq!(result.run.outcome, Outcome::Reply);
}

/// The loop between r1 and r2: the TTL of 64 runs out going round, and the explanation says so,
/// with the routers it went round.
#[test]
fn a_ttl_that_runs_out_in_a_loop_is_a_routing_loop() {
    let net = two_routers();
    let pc = net.node_by_name("pc").expect("pc").id;
    let dst = "10.99.0.1".parse().expect("ip");
    let run = run_probe(&net, pc, dst, &ProbeKind::ping(1), &SimConfig::default());
    assert_eq!(run.outcome, Outcome::TtlExceeded);
    let why = reachlab::explain::why(&net, &run).expect("a why");
    let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        why.cause,
        // Router k on the way gets the echo with TTL 65 - k; the 64th, an even one, is r2.
        reachlab::explain::Cause::RoutingLoop {
            node: "r2".into(),
            path: names(&["r1", "r2", "r1", "r2", "r1", "r2"]),
        },
        "{:?}",
        why.lines
    );
    assert!(
        why.lines[1].contains("went round r1 → r2 → r1 → r2 → r1 → r2 → …: a routing loop"),
        "{:?}",
        why.lines
    );
}
