//! Printing a big matrix: CSV and JSON of the all-pairs ping matrix of
//! `reachlab::generate::hosts(1000, 40)` (1,001 nodes, 1,002,001 cells, 1,001,000 probed),
//! streamed as `reachlab matrix` does (`matrix::write_csv`/`write_json` through a 64 KiB
//! `BufWriter`), against collecting the whole text in one `String` first (`matrix::csv`/`json`,
//! how the command printed before issue 14). Before timing, prints the peak heap each way takes
//! on top of the matrix, measured by a counting global allocator around the system one: the
//! streamed peak does not grow with the number of cells.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reachlab::matrix::{self, Matrix, ProbeList, Progress, Selection, TopologyRef};
use reachlab::sim::SimConfig;
use reachlab::topology::load_str;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak heap bytes `f` allocates above what was live before it.
fn peak_of(f: impl FnOnce()) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - before
}

/// Streamed, as `reachlab matrix` prints.
fn streamed(m: &Matrix, json: bool) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, io::sink());
    if json {
        matrix::write_json(m, &mut out)?;
    } else {
        matrix::write_csv(m, &mut out)?;
    }
    out.flush()
}

/// The whole text in one `String`, then written.
fn collected(m: &Matrix, json: bool) -> io::Result<()> {
    let text = if json {
        matrix::json(m)
    } else {
        matrix::csv(m)
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
            matrix::json(&m)
        } else {
            matrix::csv(&m)
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
