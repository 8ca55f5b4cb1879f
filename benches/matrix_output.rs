//! Printing a big matrix: CSV and JSON of the all-pairs ping matrix of
//! `reachlab::generate::hosts(1000, 40)` (1,001 nodes, 1,002,001 cells, 1,001,000 probed),
//! streamed as `reachlab matrix` does (`render::matrix::write_csv`/`write_json` through a 64 KiB
//! `BufWriter`), against collecting the whole text in one `String` first (`render::matrix::csv`/`json`,
//! how the command printed before issue 14). Before timing, prints the peak heap each way takes
//! on top of the matrix, measured by a counting global allocator around the system one: the
//! streamed peak does not grow with the number of cells.

use std::io::{self, BufWriter, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reachlab::matrix::{self, Matrix, ProbeList, Progress, Selection, TopologyRef};
use reachlab::sim::SimConfig;
use reachlab::topology::load_str;

mod support;

#[global_allocator]
static ALLOCATOR: support::Counting = support::Counting;

/// The peak heap bytes `f` allocates above what was live before it.
fn peak_of(f: impl FnOnce()) -> usize {
    support::peak_during(f).1
}

/// Streamed, as `reachlab matrix` prints.
fn streamed(m: &Matrix, json: bool) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, io::sink());
    if json {
        reachlab::render::matrix::write_json(m, &mut out)?;
    } else {
        reachlab::render::matrix::write_csv(m, &mut out)?;
    }
    out.flush()
}

/// The whole text in one `String`, then written.
fn collected(m: &Matrix, json: bool) -> io::Result<()> {
    let text = if json {
        reachlab::render::matrix::json(m)
    } else {
        reachlab::render::matrix::csv(m)
    };
    io::sink().write_all(text.as_bytes())
}

fn bench(c: &mut Criterion) {
    let text = reachlab::generate::hosts(1000, 40);
    let loaded = load_str("fleet.yaml", &text).expect("generated fleet is valid");
    let net = &loaded.network;
    let layout = matrix::Layout::resolve(net, "fleet.yaml", &Selection::All, &Selection::All)
        .expect("every node");
    let m = matrix::run(
        net,
        TopologyRef::of(&loaded),
        &layout,
        &ProbeList::default(),
        &SimConfig::default(),
        &Progress::hidden(),
    );
    let probed = m.probed().count() as u64;
    for (format, json) in [("csv", false), ("json", true)] {
        let bytes = if json {
            reachlab::render::matrix::json(&m)
        } else {
            reachlab::render::matrix::csv(&m)
        }
        .len();
        let streamed_peak = peak_of(|| streamed(&m, json).expect("a sink takes everything"));
        let collected_peak = peak_of(|| collected(&m, json).expect("a sink takes everything"));
        eprintln!(
            "matrix_output/{format}: {} cells, {bytes} bytes; peak heap streamed {:.1} KB, as one String {:.1} MB",
            m.cells.len(),
            streamed_peak as f64 / 1e3,
            collected_peak as f64 / 1e6
        );
    }

    let mut group = c.benchmark_group("matrix_output_1000_hosts");
    group.sample_size(10);
    group.throughput(Throughput::Elements(probed));
    for (format, json) in [("csv", false), ("json", true)] {
        group.bench_function(format!("{format}_streamed"), |b| {
            b.iter(|| streamed(&m, json).expect("a sink takes everything"))
        });
        group.bench_function(format!("{format}_one_string"), |b| {
            b.iter(|| collected(&m, json).expect("a sink takes everything"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
