//! The all-pairs ping matrix of a 1,001-node fleet (`reachlab::generate::hosts(1000, S)`: 1,000
//! hosts on S subnets behind one router, 1,002,001 cells of which 1,001,000 are probed), on
//! every core, as `reachlab matrix` runs it (the fast path where it applies, the engine
//! otherwise). S = 40 (25 hosts a subnet) and S = 4 (250 hosts a subnet, the ARP-flood case).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reachlab::matrix::{self, Layout, ProbeList, Progress, Selection, TopologyRef};
use reachlab::model::Outcome;
use reachlab::sim::SimConfig;
use reachlab::topology::load_str;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_matrix_1000_hosts");
    group.sample_size(10);
    eprintln!("rayon threads: {}", rayon::current_num_threads());
    for subnets in [40usize, 4] {
        let text = reachlab::generate::hosts(1000, subnets);
        let loaded = load_str("fleet.yaml", &text).expect("generated fleet is valid");
        let net = &loaded.network;
        let layout = Layout::resolve(net, "fleet.yaml", &Selection::All, &Selection::All)
            .expect("every node");
        let run = || {
            matrix::run(
                net,
                TopologyRef::of(&loaded),
                &layout,
                &ProbeList::default(),
                &SimConfig::default(),
                &Progress::hidden(),
            )
        };
        let m = run();
        assert!(m.probed().all(|(_, _, _, o)| o == Outcome::Reply));
        group.throughput(Throughput::Elements(m.probed().count() as u64));
        group.bench_function(BenchmarkId::new("subnets", subnets), |b| {
            b.iter(|| run().cells.len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
