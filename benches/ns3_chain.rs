//! The ns-3 comparison scenario in reachlab: hosts `a` and `b` at the ends of a chain of 8
//! routers (`reachlab::generate::chain(8)`), 1,000 pings from `a` to `b`. Two ways: the engine
//! running `ping -c 1000` (one echo a second, as ns-3's Ping application sends them; events
//! counted), and the fast path resolving 1,000 one-echo pings. `benches/compare/run.sh` runs
//! the same scenario in ns-3 and prints the ratios; it reads the `SUMMARY` line this bench
//! prints on stderr (medians of its own repetitions, measured before criterion's).

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reachlab::model::Outcome;
use reachlab::sim::{FastPath, Observed, ProbeKind, SimConfig, run_probe};
use reachlab::topology::load_str;

const PINGS: u16 = 1000;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn bench(c: &mut Criterion) {
    let net = load_str("chain.yaml", &reachlab::generate::chain(8))
        .expect("generated chain is valid")
        .network;
    let a = net.node_by_name("a").expect("a").id;
    let b = net
        .node_address(net.node_by_name("b").expect("b"))
        .expect("address");
    let config = SimConfig {
        record: false,
        horizon: std::time::Duration::from_secs(2_000),
        max_events: 10_000_000,
        ..SimConfig::default()
    };
    let many = ProbeKind::ping(PINGS);
    let one = ProbeKind::ping(1);
    let run = run_probe(&net, a, b, &many, &config);
    let Observed::Ping { replies, .. } = &run.observed else {
        panic!("a ping observes a ping")
    };
    assert_eq!(replies.len(), usize::from(PINGS));
    let events = run.events;
    let fast = FastPath::new(&net);
    assert_eq!(fast.outcome(a, b, &one, &config), Outcome::Reply);

    // Medians of a few repetitions for the comparison script.
    let engine_s = median(
        (0..51)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(run_probe(&net, a, b, &many, &config).events);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let fast_s = median(
        (0..51)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..PINGS {
                    std::hint::black_box(fast.probe(a, b, &one, &config));
                }
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    eprintln!(
        "SUMMARY {{\"pings\": {PINGS}, \"engine_events\": {events}, \"engine_seconds\": {engine_s:.9}, \"fast_seconds\": {fast_s:.9}}}"
    );

    let mut group = c.benchmark_group("ns3_chain_8_routers_1000_pings");
    group.throughput(Throughput::Elements(u64::from(PINGS)));
    group.bench_function("engine_ping_c1000", |bench| {
        bench.iter(|| run_probe(&net, a, b, &many, &config).events)
    });
    group.bench_function("fast_path_1000_pings", |bench| {
        bench.iter(|| {
            (0..PINGS)
                .filter(|_| fast.probe(a, b, &one, &config).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
