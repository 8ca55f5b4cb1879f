//! Simulated vs emulated: the wall time of `reachlab check FILE` (in process: load + every
//! `expect:` entry; and as a process, as a user runs it) against `reachlab emulate check FILE`,
//! which builds the lab in network namespaces and probes it for real. Not criterion: the
//! emulator takes seconds a run, so it runs a few times and medians are printed with the
//! ratios. Needs root, `ip` and `nft`/`iptables`; without them it prints `SKIPPED` and exits 0.
//! FILE is `topologies/lab1-virtualbox.yaml` unless `REACHLAB_BENCH_FILE` names another.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time_process(args: &[&str], runs: usize) -> Option<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
            .args(args)
            .output()
            .ok()?;
        let took = start.elapsed();
        if !out.status.success() {
            eprintln!(
                "emulate_vs_sim: `reachlab {}` exited {:?}:\n{}{}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        times.push(took);
    }
    Some(median(times))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another bench skips this one.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| "emulate_vs_sim".contains(f.as_str())) {
        return;
    }
    let file = std::env::var_os("REACHLAB_BENCH_FILE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("topologies/lab1-virtualbox.yaml"),
        PathBuf::from,
    );
    let Some(path) = file.to_str() else {
        println!("emulate_vs_sim: SKIPPED (the file name is not UTF-8)");
        return;
    };
    let root = nix::unistd::geteuid().is_root();
    let tools = ["ip", "nft"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !root || !tools {
        println!(
            "emulate_vs_sim: SKIPPED (needs root, iproute2 and nftables: the emulator builds network namespaces)"
        );
        return;
    }

    // Simulated, in process: load + validate + lower + every expectation.
    let config = reachlab::sim::SimConfig::default();
    let mut in_process = Vec::new();
    let mut rows = 0;
    for _ in 0..51 {
        let start = Instant::now();
        let loaded = match reachlab::topology::load_path(&file) {
            Ok(l) => l,
            Err(report) => {
                println!(
                    "emulate_vs_sim: SKIPPED ({path} does not load: {} problems)",
                    report.diagnostics.len()
                );
                return;
            }
        };
        rows = std::hint::black_box(reachlab::run::check(&loaded.network, &config)).len();
        in_process.push(start.elapsed());
    }
    let sim = median(in_process);
    let Some(sim_cli) = time_process(&["check", path], 11) else {
        return;
    };
    let Some(emulated) = time_process(&["emulate", "check", path], 3) else {
        println!("emulate_vs_sim: SKIPPED (the emulator could not check {path})");
        return;
    };
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
    println!("emulate_vs_sim: {path}, {rows} expectations");
    println!(
        "  simulated, in process (median of 51):   {:>12.3} ms",
        sim.as_secs_f64() * 1e3
    );
    println!(
        "  simulated, `reachlab check` (median of 11): {:>8.3} ms",
        sim_cli.as_secs_f64() * 1e3
    );
    println!(
        "  emulated, `reachlab emulate check` (median of 3): {:>8.3} ms",
        emulated.as_secs_f64() * 1e3
    );
    println!(
        "  emulated / simulated in process: {:.0}x",
        ratio(emulated, sim)
    );
    println!(
        "  emulated / simulated process:    {:.0}x",
        ratio(emulated, sim_cli)
    );
}
