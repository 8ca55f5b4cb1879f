//! Start-up: what a `reachlab` process costs around the engine (issue 14's target: `reachlab
//! check` of a lab file as a process ≤ 2 ms wall).
//!
//! - `process/check_lab1`: `reachlab check topologies/lab1-virtualbox.yaml` as a user runs it
//!   (spawned, output to /dev/null, waited for); `process/version`: `reachlab --version`, the
//!   floor under any command (exec, dynamic linking, page faults, clap).
//! - `in_process/check_lab1`: the same check in this process (load + every `expect:` entry),
//!   the schema already parsed.
//! - `schema/generate_with_schemars`: what every process did before the schema was embedded
//!   (schemars, then a `serde_json::Value`); `schema/parse_embedded`: what the first load of a
//!   process does now (`serde_json::from_str` of the copy embedded at build time).

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use reachlab::topology::{EMBEDDED_SCHEMA, load_path, schema};

const LAB: &str = "topologies/lab1-virtualbox.yaml";

fn run_process(args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn bench(c: &mut Criterion) {
    assert!(run_process(&["check", LAB]), "reachlab check {LAB} passes");

    let mut group = c.benchmark_group("process");
    group.sample_size(200);
    group.bench_function("check_lab1", |b| b.iter(|| run_process(&["check", LAB])));
    group.bench_function("version", |b| b.iter(|| run_process(&["--version"])));
    group.finish();

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(LAB);
    let config = reachlab::sim::SimConfig::default();
    let mut group = c.benchmark_group("in_process");
    group.bench_function("check_lab1", |b| {
        b.iter(|| {
            let loaded = load_path(&path).expect("the lab loads");
            reachlab::run::check(&loaded.network, &config).len()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("schema");
    group.bench_function("generate_with_schemars", |b| {
        b.iter(|| serde_json::to_value(schema()).expect("a schema is JSON"))
    });
    group.bench_function("parse_embedded", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(EMBEDDED_SCHEMA).expect("JSON"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
