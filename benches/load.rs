//! Load + validate + lower a generated chain of routers, at several sizes up to 100,000 nodes.
//! Reports time per file and per node, and (before timing) the peak heap memory of one load,
//! measured by a counting global allocator around the system one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Loads `text` once; the peak heap bytes above what was live before (the text itself is not
/// counted), and the wall time.
fn peak_of_one_load(text: &str) -> (usize, std::time::Duration) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = std::time::Instant::now();
    let loaded = reachlab::topology::load_str("chain.yaml", text);
    let took = start.elapsed();
    assert!(loaded.is_ok(), "generated chain is valid");
    drop(loaded);
    (PEAK.load(Ordering::Relaxed) - before, took)
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_validate_lower");
    for size in [10, 1_000, 10_000, 100_000] {
        let text = chain(size);
        let (peak, took) = peak_of_one_load(&text);
        eprintln!(
            "load_validate_lower/{size}: {} bytes of text, peak heap {:.1} MB, one load {:.3} s",
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
            b.iter(|| {
                reachlab::topology::load_str("chain.yaml", text).map(|l| l.network.nodes.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
