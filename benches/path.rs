//! One ping resolved end to end: by the engine (cold ARP caches, as every probe runs) across a
//! chain of 2 to 256 routers and across a 10,000-node topology (a 9,998-router chain crossed 10
//! routers deep, 10 hops each way); and by the compiled fast path (`reachlab::sim::FastPath`)
//! on the same 10,000-node topology, with cold and with warm neighbour caches (the issue's
//! "ARP warm" row). Prints the events each engine run processes so events/s can be read off.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reachlab::generate::chain;
use reachlab::model::{Network, NodeId};
use reachlab::sim::{FastPath, Neighbours, ProbeKind, SimConfig, run_probe};
use reachlab::topology::load_str;

fn setup(routers: usize) -> Network {
    load_str("chain.yaml", &chain(routers))
        .expect("generated chain is valid")
        .network
}

fn ends(net: &Network, to: &str) -> (NodeId, std::net::Ipv4Addr) {
    let a = net.node_by_name("a").expect("a").id;
    let node = net.node_by_name(to).expect("target");
    (a, net.node_address(node).expect("address"))
}

fn path(c: &mut Criterion) {
    let config = SimConfig {
        record: false,
        ..SimConfig::default()
    };
    let ping = ProbeKind::ping(1);
    let mut group = c.benchmark_group("ping_chain");
    for routers in [2usize, 8, 32, 128, 256] {
        let net = setup(routers);
        let (a, b) = ends(&net, "b");
        let events = run_probe(&net, a, b, &ping, &config).events;
        eprintln!("ping_chain/{routers}: {events} events per ping");
        group.throughput(Throughput::Elements(events));
        group.bench_with_input(BenchmarkId::from_parameter(routers), &net, |bench, net| {
            bench.iter(|| run_probe(net, a, b, &ping, &config).outcome)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ping_10k_nodes");
    let net = setup(9_998);
    assert_eq!(net.nodes.len(), 10_000);
    let (a, r9) = ends(&net, "r9");
    let engine = run_probe(&net, a, r9, &ping, &config);
    eprintln!("ping_10k_nodes/10_hops: {} events per ping", engine.events);
    group.throughput(Throughput::Elements(engine.events));
    group.bench_function("10_hops", |bench| {
        bench.iter(|| run_probe(&net, a, r9, &ping, &config).outcome)
    });
    group.finish();

    // The fast path on the same network and probe; it must give the engine's observation.
    let fast = FastPath::new(&net);
    let cold = fast
        .probe(a, r9, &ping, &config)
        .expect("a plain chain takes the fast path");
    assert_eq!(cold.observed, engine.observed);
    eprintln!(
        "ping_10k_nodes fast path: {} interface crossings per ping",
        cold.hops
    );
    let mut group = c.benchmark_group("ping_10k_nodes_fast");
    group.throughput(Throughput::Elements(u64::from(cold.hops)));
    for (name, neighbours) in [
        ("cold_arp", Neighbours::Cold),
        ("warm_arp", Neighbours::Warm),
    ] {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                fast.probe_with(a, r9, &ping, &config, neighbours)
                    .map(|p| p.outcome)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("compile_10k_nodes");
    group.sample_size(20);
    group.bench_function("fast_path_new", |bench| {
        bench.iter(|| FastPath::new(&net).probe(a, r9, &ping, &config).is_some())
    });
    group.finish();
}

criterion_group!(benches, path);
criterion_main!(benches);
