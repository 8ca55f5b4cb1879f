//! The compiled fast path (`reachlab::sim::FastPath`) agrees with the discrete-event engine:
//! wherever it answers, its source address, observation (replies, errors, RTTs, TTLs) and
//! outcome are the engine's, on thousands of probes over random "Internet" labs
//! (`reachlab::testing::internet()`), the generated topologies and the built-in ones, each
//! also randomly mutated (latencies up to 0.4 s, routes removed, forwarding switched, addresses
//! taken away so ARP fails, a lossy segment). Warm neighbour caches are checked against the
//! engine's second echo of `ping -c 2`. Each test also requires the fast path to have answered
//! a good share of the probes, so agreement is never vacuous.
#![cfg(feature = "testing")]

use std::net::Ipv4Addr;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use reachlab::model::{Network, NodeId, Port, RoutingTable};
use reachlab::sim::{FastPath, Neighbours, Observed, ProbeKind, SimConfig, run_probe};
use reachlab::topology::load_str;

fn config() -> SimConfig {
    SimConfig {
        record: false,
        ..SimConfig::default()
    }
}

fn kinds() -> Vec<ProbeKind> {
    let port = |p| Port::new(p).expect("valid port");
    vec![
        ProbeKind::ping(1),
        ProbeKind::tcp(port(22)),
        ProbeKind::tcp(port(80)),
        ProbeKind::tcp(port(2222)),
        ProbeKind::udp(port(53)),
        ProbeKind::udp(port(9)),
    ]
}

/// Counts of probes compared and answered by the fast path.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    probes: usize,
    fast: usize,
}

/// Runs one probe both ways; an error message when they disagree.
fn compare(
    fast: &FastPath<'_>,
    net: &Network,
    from: NodeId,
    dst: Ipv4Addr,
    kind: &ProbeKind,
    tally: &mut Tally,
) -> Result<(), String> {
    let config = config();
    tally.probes += 1;
    let Some(answer) = fast.probe(from, dst, kind, &config) else {
        return Ok(());
    };
    tally.fast += 1;
    let engine = run_probe(net, from, dst, kind, &config);
    if (answer.src, &answer.observed, answer.outcome)
        != (engine.src, &engine.observed, engine.outcome)
    {
        return Err(format!(
            "{} → {dst} {kind:?}:\n fast   {:?} {:?}\n engine {:?} {:?}",
            net.node(from).name,
            answer.src,
            answer.observed,
            engine.src,
            engine.observed
        ));
    }
    // Warm caches: the engine's second echo of `ping -c 2` crossed the same, now resolved, path.
    if matches!(kind, ProbeKind::Ping { .. })
        && let Observed::Ping { replies, .. } = &answer.observed
        && replies.len() == 1
        // The second echo (sent 1 s later) finds the caches warm only if the first was done.
        && replies[0].rtt < Duration::from_secs(1)
        && let Some(warm) = fast.probe_with(from, dst, kind, &config, Neighbours::Warm)
        && let Observed::Ping {
            replies: warm_replies,
            ..
        } = &warm.observed
    {
        let twice = run_probe(net, from, dst, &ProbeKind::ping(2), &config);
        if let Observed::Ping {
            replies: engine_replies,
            redirects,
            ..
        } = &twice.observed
            && redirects.is_empty()
            && engine_replies.len() == 2
            && warm_replies.first().map(|r| r.rtt) != engine_replies.get(1).map(|r| r.rtt)
        {
            return Err(format!(
                "warm {} → {dst}: fast {warm_replies:?}, engine {engine_replies:?}",
                net.node(from).name
            ));
        }
    }
    Ok(())
}

/// Random changes that keep the network well-formed but make probes fail in every way.
fn mutate(net: &mut Network, rng: &mut ChaCha8Rng) {
    let mut roll = |n: u64| rng.next_u64() % n;
    for segment in &mut net.segments {
        if roll(3) == 0 {
            segment.latency = Duration::from_micros(roll(400_000));
        }
        if roll(40) == 0 {
            segment.loss = 0.3;
        }
    }
    for node in &mut net.nodes {
        if roll(12) == 0 {
            node.forwarding = !node.forwarding;
        }
        let routes = node.routes.routes();
        if !routes.is_empty() && roll(6) == 0 {
            let drop = roll(routes.len() as u64) as usize;
            let mut table = RoutingTable::default();
            for (i, r) in routes.iter().enumerate() {
                if i != drop {
                    table.append(r.clone());
                }
            }
            node.routes = table;
        }
    }
    for iface in &mut net.interfaces {
        if !iface.addresses.is_empty() && roll(15) == 0 {
            iface.addresses.remove(0);
        }
    }
}

/// Every source against every node's addresses and a few others, with every kind of probe.
fn all_pairs(net: &Network, extra: &[Ipv4Addr]) -> Result<Tally, String> {
    let fast = FastPath::new(net);
    let mut tally = Tally::default();
    let mut targets: Vec<Ipv4Addr> = net
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
        .collect();
    targets.extend_from_slice(extra);
    targets.push(Ipv4Addr::LOCALHOST);
    for node in &net.nodes {
        for &dst in &targets {
            for kind in &kinds() {
                compare(&fast, net, node.id, dst, kind, &mut tally)?;
            }
        }
    }
    Ok(tally)
}

/// Random probes on a big network.
fn sampled(net: &Network, probes: usize, rng: &mut ChaCha8Rng) -> Result<Tally, String> {
    let fast = FastPath::new(net);
    let mut tally = Tally::default();
    let targets: Vec<Ipv4Addr> = net
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
        .collect();
    let kinds = kinds();
    for _ in 0..probes {
        let from = net.nodes[(rng.next_u64() % net.nodes.len() as u64) as usize].id;
        let dst = targets[(rng.next_u64() % targets.len() as u64) as usize];
        let kind = &kinds[(rng.next_u64() % kinds.len() as u64) as usize];
        compare(&fast, net, from, dst, kind, &mut tally)?;
    }
    Ok(tally)
}

#[test]
fn internet_labs_agree() {
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    // Tallies of the labs as drawn, and of the mutated ones.
    let total = std::cell::Cell::new([Tally::default(); 2]);
    let result = runner.run(
        &(reachlab::testing::internet(), any::<u64>()),
        |(lab, seed)| {
            let mut net = load_str("gen.yaml", &lab.yaml())
                .map_err(|r| TestCaseError::fail(format!("invalid: {:?}", r.diagnostics)))?
                .network;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mutated = seed % 2 == 0;
            if mutated {
                mutate(&mut net, &mut rng);
            }
            let extra = [Ipv4Addr::new(203, 0, 113, 77), Ipv4Addr::new(8, 8, 8, 8)];
            let tally = all_pairs(&net, &extra).map_err(TestCaseError::fail)?;
            let mut sum = total.get();
            sum[usize::from(mutated)].probes += tally.probes;
            sum[usize::from(mutated)].fast += tally.fast;
            total.set(sum);
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let [drawn, mutated] = total.get();
    eprintln!("internet labs: as drawn {drawn:?}, mutated {mutated:?}");
    // Every probe of the labs as drawn (NAT, port forwards, firewalls and all) but a few the
    // engine must decide: the fast path answers at least 95 % of them.
    assert!(
        drawn.fast * 100 >= drawn.probes * 95,
        "fast path too rarely taken on the labs as drawn: {drawn:?}"
    );
    // Mutations add loss (declined by design) and long latencies.
    assert!(
        mutated.fast * 2 >= mutated.probes,
        "fast path too rarely taken on mutated labs: {mutated:?}"
    );
}

#[test]
fn generated_topologies_agree() {
    let texts = [
        ("chain", reachlab::generate::chain(12)),
        ("hosts", reachlab::generate::hosts(120, 5)),
        ("fat-tree", reachlab::generate::fat_tree(4, 3).expect("k=4")),
        (
            "campus",
            reachlab::generate::campus(4, 3, 6, 5).expect("small"),
        ),
        (
            "cluster",
            reachlab::generate::cluster(5, 20, 2).expect("small"),
        ),
    ];
    let mut total = Tally::default();
    for (name, text) in texts {
        let base = load_str("gen.yaml", &text).expect("valid").network;
        for round in 0..6u64 {
            let mut net = base.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(round);
            if round > 0 {
                mutate(&mut net, &mut rng);
            }
            let tally = sampled(&net, 700, &mut rng).unwrap_or_else(|e| panic!("{name}: {e}"));
            eprintln!("{name} round {round}: {tally:?}");
            total.probes += tally.probes;
            total.fast += tally.fast;
        }
    }
    assert!(
        total.fast * 2 >= total.probes,
        "fast path too rarely taken: {total:?}"
    );
}

#[test]
fn builtin_topologies_agree() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let files =
        reachlab::topology::collect_topology_files(&[dir]).expect("topologies/ is readable");
    let mut total = Tally::default();
    for file in files {
        let Ok(loaded) = reachlab::topology::load_path(&file) else {
            continue;
        };
        let tally =
            all_pairs(&loaded.network, &[]).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        total.probes += tally.probes;
        total.fast += tally.fast;
    }
    eprintln!("built-in topologies: {total:?}");
    assert!(total.fast > 0);
}

#[test]
fn matrix_cells_are_the_engines() {
    let text = reachlab::generate::hosts(40, 3);
    let net = load_str("fleet.yaml", &text).expect("valid").network;
    let fast = FastPath::new(&net);
    let config = config();
    for a in &net.nodes {
        for b in &net.nodes {
            let dst = net.node_address(b).expect("address");
            let engine = run_probe(&net, a.id, dst, &ProbeKind::ping(1), &config).outcome;
            assert_eq!(
                fast.outcome(a.id, dst, &ProbeKind::ping(1), &config),
                engine
            );
        }
    }
}
