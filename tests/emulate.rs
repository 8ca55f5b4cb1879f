//! The emulator against the kernel, and the simulator against both. Needs root, iproute2 and
//! nftables: without them each test says SKIPPED on stderr and passes, unless
//! `REACHLAB_REQUIRE_KERNEL=1` (set by `.ci/run`) turns the skip into a failure.
//!
//! - `topologies_agree_with_the_kernel`: every `expect:` entry of every file in `topologies/`
//!   is run for real in the namespaces `reachlab emulate` builds; the kernel must give what the
//!   file expects and what the simulator predicts.
//! - `random_topologies_agree_with_the_kernel`: the differential test. 300 topologies from
//!   `reachlab::testing::internet()` (routers, subnets, default routes, masquerade, port
//!   forwards, 1:1 NAT, stateful filters, Docker-like bridges), a dozen probes each, built and
//!   probed for real; every simulated outcome must equal the kernel's. A mismatch is shrunk by
//!   proptest and the smallest topology that still disagrees is printed, ready to save as a file.
//! - `live_reads_a_namespace`: `reachlab live show --format yaml` inside a lab's namespace is a
//!   valid topology with that node's addresses and routes, and `live ping` there gets a reply.
#![cfg(all(feature = "emulate", feature = "testing", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reachlab::emulate::{self, Comparison, ListenerHost, Planned, UpOptions};
use reachlab::sim::SimConfig;
use reachlab::testing::{Construct, DockerBridge, GeneratedLab, internet};
use reachlab::topology::load_path;

mod support;

/// A state directory of this test run's own, so that nothing here touches other labs.
fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reachlab-test-{name}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn options(state_dir: &Path) -> UpOptions {
    UpOptions {
        state_dir: state_dir.to_owned(),
        listeners: ListenerHost::InProcess,
        interrupt: None,
        dockerd: false,
    }
}

fn describe(rows: &[Comparison]) -> String {
    rows.iter()
        .filter(|r| !r.agrees() || !r.as_expected())
        .map(|r| {
            format!(
                "  {}: expected {}, predicted {}, kernel {} ({}) {}",
                r.probe,
                r.expected.map_or("-".into(), |e| e.to_string()),
                r.simulated,
                r.kernel.outcome,
                r.kernel.evidence,
                r.differences.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn topologies_agree_with_the_kernel() {
    if !can_run("topologies_agree_with_the_kernel") {
        return;
    }
    let dir = state_dir("topologies");
    let started = Instant::now();
    let mut files: Vec<PathBuf> = std::fs::read_dir("topologies")
        .expect("topologies/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let (mut probes, mut problems) = (0, Vec::new());
    for file in &files {
        let net = load_path(file)
            .unwrap_or_else(|r| panic!("{}: {:?}", file.display(), r.diagnostics))
            .network;
        let planned = emulate::expectations(&net);
        if planned.is_empty() {
            continue;
        }
        let lab = emulate::up(&net, file, &options(&dir))
            .unwrap_or_else(|e| panic!("{}: up failed: {e}", file.display()));
        // What `up` could not emulate (latency without sch_netem) is not compared.
        let compare = emulate::CompareOptions {
            warnings: lab.warnings.clone(),
            interrupt: None,
        };
        let rows =
            emulate::compare_with(&net, &lab.layout, &planned, &SimConfig::default(), &compare)
                .unwrap_or_else(|e| panic!("{}: probing failed: {e}", file.display()));
        drop(lab);
        probes += rows.len();
        eprintln!(
            "== {}\n{}",
            file.display(),
            reachlab::render::emulate_table(&rows, reachlab::render::Palette::new(false))
        );
        if rows.iter().any(|r| !r.agrees() || !r.as_expected()) {
            problems.push(format!("{}:\n{}", file.display(), describe(&rows)));
        }
    }
    eprintln!(
        "emulate: {probes} probes of {} files compared with the kernel in {:.1?}, {} files disagree",
        files.len(),
        started.elapsed(),
        problems.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(probes >= 200, "only {probes} probes ran");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Builds one generated lab, probes it, and returns the probes that disagree (empty: none).
fn differences(
    lab: &GeneratedLab,
    dir: &Path,
    tag: &str,
) -> Result<(usize, Vec<Comparison>), String> {
    let file = dir.join(format!("{tag}.yaml"));
    let yaml = lab.yaml();
    std::fs::write(&file, &yaml).map_err(|e| e.to_string())?;
    let net = load_path(&file)
        .map_err(|r| format!("generated topology is invalid: {:?}\n{yaml}", r.diagnostics))?
        .network;
    let planned: Vec<Planned> = lab
        .requests(&net)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|request| Planned {
            request,
            expectation: None,
        })
        .collect();
    let up = emulate::up(&net, &file, &options(dir)).map_err(|e| format!("up: {e}"))?;
    let rows = emulate::compare(&net, &up.layout, &planned, &SimConfig::default())
        .map_err(|e| format!("probing: {e}"))?;
    drop(up);
    let _ = std::fs::remove_file(&file);
    let count = rows.len();
    Ok((count, rows.into_iter().filter(|r| !r.agrees()).collect()))
}

#[test]
fn random_topologies_agree_with_the_kernel() {
    if !can_run("random_topologies_agree_with_the_kernel") {
        return;
    }
    let cases: usize = std::env::var("REACHLAB_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = state_dir("differential");
    let started = Instant::now();
    // A fixed seed: every CI run checks the same 300 topologies (REACHLAB_DIFF_SEED varies it).
    let seed: u64 = std::env::var("REACHLAB_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261126);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = internet();
    let trees: Vec<_> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).expect("a tree"))
        .collect();
    let labs: Vec<GeneratedLab> = trees.iter().map(ValueTree::current).collect();
    let next = AtomicUsize::new(0);
    let probes = AtomicUsize::new(0);
    let failing: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(lab) = labs.get(i) else { break };
                    match differences(lab, &dir, &format!("case{i}")) {
                        Ok((n, bad)) => {
                            probes.fetch_add(n, Ordering::Relaxed);
                            if !bad.is_empty()
                                && let Ok(mut f) = failing.lock()
                            {
                                f.push((i, describe(&bad)));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failing.lock() {
                                f.push((i, e));
                            }
                        }
                    }
                }
            });
        }
    });
    let mut failing = failing.into_inner().unwrap_or_default();
    failing.sort();
    eprintln!(
        "differential: {cases} random topologies, {} probes compared with the kernel in {:.1?}, {} topologies disagree",
        probes.load(Ordering::Relaxed),
        started.elapsed(),
        failing.len()
    );
    for (i, why) in &failing {
        eprintln!("case {i} disagrees:\n{why}\n---\n{}---", labs[*i].yaml());
    }
    // Which constructs of iptables-save text the labs used, and how many of those labs failed.
    let used: Vec<Vec<Construct>> = labs.iter().map(GeneratedLab::constructs).collect();
    eprintln!(
        "differential: {} of {cases} labs write iptables text; labs per construct (of which disagree or fail):",
        used.iter().filter(|c| !c.is_empty()).count()
    );
    for construct in Construct::ALL {
        let using = used.iter().filter(|c| c.contains(&construct)).count();
        let bad = failing
            .iter()
            .filter(|(i, _)| used[*i].contains(&construct))
            .count();
        eprintln!("  {:<32} {using:>4} ({bad})", construct.name());
    }
    // The Docker bridges: what docker0 was, and whether `icc` dropped what crosses it.
    eprintln!("differential: Docker bridges (labs, of which disagree or fail; probes across):");
    for kind in [
        DockerBridge::Switch,
        DockerBridge::Bridge,
        DockerBridge::BrNetfilter,
    ] {
        for icc in [true, false] {
            let with = |lab: &GeneratedLab| {
                lab.sites
                    .iter()
                    .any(|s| s.docker && s.docker_bridge == kind && s.icc == icc)
            };
            let using = labs.iter().filter(|l| with(l)).count();
            let bad = failing.iter().filter(|(i, _)| with(&labs[*i])).count();
            let sites: usize = labs
                .iter()
                .flat_map(|l| &l.sites)
                .filter(|s| s.docker && s.docker_bridge == kind && s.icc == icc)
                .count();
            // Two probes cross each such bridge (GeneratedLab::across_bridges).
            let across = 2 * sites;
            let name = format!("{kind:?}, icc {icc}");
            eprintln!("  {name:<32} {using:>4} ({bad}) {across:>5}");
        }
    }
    let shrink: usize = std::env::var("REACHLAB_DIFF_SHRINK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    if let Some((first, why)) = failing.first() {
        // Shrink the first failure: simplify while it still disagrees.
        let mut tree = trees.into_iter().nth(*first).expect("the failing case");
        let mut smallest = (tree.current(), why.clone());
        let mut steps = 0;
        while steps < shrink && tree.simplify() {
            steps += 1;
            let candidate = tree.current();
            match differences(&candidate, &dir, "shrink") {
                Ok((_, bad)) if !bad.is_empty() => smallest = (candidate, describe(&bad)),
                _ => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "{} of {cases} random topologies disagree with the kernel (cases {:?}).\n\
             Smallest reproducer after {steps} shrink steps; save it as a file and run \
             `reachlab emulate check FILE --probe ...`:\n---\n{}---\nprobes: {:?}\ndisagreements:\n{}",
            failing.len(),
            failing.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            smallest.0.yaml(),
            smallest.0.probes(),
            smallest.1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_reads_a_namespace() {
    if !can_run("live_reads_a_namespace") {
        return;
    }
    let dir = state_dir("live");
    let file = Path::new("topologies/basics-two-subnets.yaml");
    let net = load_path(file).expect("valid").network;
    let lab = emulate::up(&net, file, &options(&dir)).expect("up");
    let pc1 = net.node_by_name("pc1").expect("pc1");
    let ns = lab.layout.node(pc1.id).to_owned();
    let exe = env!("CARGO_BIN_EXE_reachlab");
    let show = Command::new("ip")
        .args([
            "netns", "exec", &ns, exe, "live", "show", "--format", "yaml",
        ])
        .output()
        .expect("live show runs");
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let yaml = String::from_utf8_lossy(&show.stdout).into_owned();
    let live = reachlab::topology::load_str("live.yaml", &yaml)
        .unwrap_or_else(|r| panic!("invalid: {:?}\n{yaml}", r.diagnostics))
        .network;
    // The namespace's routing table, as the kernel has it, read back through the file.
    assert_eq!(
        reachlab::render::ip_route(&live, &live.nodes[0]),
        reachlab::render::ip_route(&net, pc1),
        "{yaml}"
    );
    let ping = Command::new("ip")
        .args(["netns", "exec", &ns, exe, "live", "ping", "192.168.2.10"])
        .output()
        .expect("live ping runs");
    let text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(
        text.contains("route predicted:  via 192.168.1.1 dev eth0 src 192.168.1.10"),
        "{text}"
    );
    assert!(text.contains("reply ttl=63"), "{text}");
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the test may run (root, iproute2, nftables): see `support`.
fn can_run(test: &str) -> bool {
    support::can_run(test, &[support::IP, support::NFT])
}
