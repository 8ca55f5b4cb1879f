//! Load + validate + lower a generated chain of routers, at several sizes up to 100,000 nodes,
//! written as YAML (`load_validate_lower`) and as JSON (`load_validate_lower_json`, read
//! without a YAML tree: `src/format/fast_json.rs`). Reports time per file and per node, and
//! (before timing) the peak heap memory of one load, measured by a counting global allocator
//! around the system one.

use std::fmt::Write as _;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// `routers` routers in a line, each pair sharing a /30, with static routes both ways.
fn chain(routers: usize) -> String {
    let mut y = String::from("segments:\n");
    for i in 0..=routers {
        let _ = writeln!(y, "  - name: link{i}");
    }
    y.push_str("nodes:\n");
    let net = |i: usize| (10 + (i >> 14), (i >> 6) & 0xff, (i & 0x3f) * 4);
    for r in 0..routers {
        let (a, b, c) = net(r);
        let (d, e, f) = net(r + 1);
        let _ = write!(
            y,
            "  - name: r{r}\n    forwarding: true\n    interfaces:\n      - {{ name: eth0, segment: link{r}, addresses: [{a}.{b}.{c}.2/30] }}\n      - {{ name: eth1, segment: link{}, addresses: [{d}.{e}.{f}.1/30] }}\n    routes:\n      - {{ to: default, via: {d}.{e}.{f}.2 }}\n",
            r + 1
        );
        if r > 0 {
            let _ = writeln!(
                y,
                "      - {{ to: 10.0.0.0/8, via: {a}.{b}.{c}.1, metric: 10 }}"
            );
        }
    }
    y
}

mod support;

#[global_allocator]
static ALLOCATOR: support::Counting = support::Counting;

/// Loads `text` once; the peak heap bytes above what was live before (the text itself is not
/// counted), and the wall time.
fn peak_of_one_load(name: &str, text: &str) -> (usize, std::time::Duration) {
    let (took, peak) = support::peak_during(|| {
        let start = std::time::Instant::now();
        let loaded = reachlab::topology::load_str(name, text);
        let took = start.elapsed();
        assert!(loaded.is_ok(), "generated chain is valid");
        drop(loaded);
        took
    });
    (peak, took)
}

fn load(c: &mut Criterion) {
    for json in [false, true] {
        load_as(c, json);
    }
}

fn load_as(c: &mut Criterion, json: bool) {
    let (group_name, name) = if json {
        ("load_validate_lower_json", "chain.json")
    } else {
        ("load_validate_lower", "chain.yaml")
    };
    let mut group = c.benchmark_group(group_name);
    for size in [10, 1_000, 10_000, 100_000] {
        let text = chain(size);
        let text = if json {
            reachlab::generate::to_json(&text).expect("the chain converts to JSON")
        } else {
            text
        };
        let (peak, took) = peak_of_one_load(name, &text);
        eprintln!(
            "{group_name}/{size}: {} bytes of text, peak heap {:.1} MB, one load {:.3} s",
            text.len(),
            peak as f64 / 1e6,
            took.as_secs_f64()
        );
        group.throughput(Throughput::Elements(size as u64));
        group.sample_size(if size >= 10_000 { 10 } else { 30 });
        if size >= 100_000 {
            group.measurement_time(std::time::Duration::from_secs(60));
        }
        group.bench_with_input(BenchmarkId::from_parameter(size), &text, |b, text| {
            b.iter(|| reachlab::topology::load_str(name, text).map(|l| l.network.nodes.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
