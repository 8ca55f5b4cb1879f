//! `reachlab emulate` leaves nothing behind: 50 consecutive `up`/`down` cycles, 5 runs of `up`
//! killed with SIGKILL in the middle of building, one interrupted with SIGINT (Ctrl-C), then
//! `down --all`; afterwards no namespace of these labs exists, no listener process they
//! started runs, no state file is left, and the root namespace has exactly the links it had
//! before (veths and bridges are only ever created inside the labs' namespaces).
//!
//! This binary holds one test only: `down --all` removes every lab of its state directory, so
//! nothing else may share it. Needs root, iproute2 and nftables (SKIPPED otherwise, unless
//! `REACHLAB_REQUIRE_KERNEL=1`).
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

const EXE: &str = env!("CARGO_BIN_EXE_reachlab");

fn reachlab(state: &Path, args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .env("REACHLAB_STATE_DIR", state)
        .output()
        .expect("reachlab runs")
}

fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip runs");
    let mut links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
        .collect();
    links.sort();
    links
}

/// The namespaces of labs whose state lives in `state` (their ids are in the names).
fn lab_namespaces(ids: &[String]) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| {
            ids.iter()
                .any(|id| n.starts_with(&format!("reachlab-{id}-")))
        })
        .map(str::to_owned)
        .collect()
}

/// Processes running `reachlab emulate serve` with a state file in `state`.
fn servers(state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("emulate serve") && text.contains(&*state.to_string_lossy()) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// The lab ids that have a state file in `state`.
fn state_ids(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect()
}

/// The id of the lab of `file` (the same hash `reachlab emulate` uses).
fn state_ids_of(file: &Path, state: &Path) -> Vec<String> {
    let canonical = std::fs::canonicalize(file).expect("file exists");
    vec![reachlab::emulate::LabId::for_file(&canonical, state).to_string()]
}

fn lab_id(state: &Path, file: &Path) -> String {
    let out = reachlab(state, &["emulate", "up", &file.to_string_lossy()]);
    assert!(
        out.status.success(),
        "up failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).expect("lab id").to_owned()
}

#[test]
fn nothing_is_left_behind() {
    if !support::can_run("emulate_cleanup", &[support::IP, support::NFT]) {
        return;
    }
    let state = std::env::temp_dir().join(format!("reachlab-cleanup-{}", std::process::id()));
    std::fs::create_dir_all(&state).expect("state dir");
    let before = root_links();
    let started = Instant::now();

    // 50 cycles of a lab with NAT rules, a filter and listeners served by a process.
    let small = Path::new("topologies/lab1-virtualbox.yaml");
    let mut ids = Vec::new();
    for cycle in 0..50 {
        let id = lab_id(&state, small);
        if !ids.contains(&id) {
            ids.push(id.clone());
        }
        assert!(
            !lab_namespaces(&ids).is_empty(),
            "cycle {cycle}: up built nothing"
        );
        let out = reachlab(&state, &["emulate", "down", &small.to_string_lossy()]);
        assert!(
            out.status.success(),
            "cycle {cycle}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            lab_namespaces(&ids),
            Vec::<String>::new(),
            "cycle {cycle} left namespaces"
        );
        assert_eq!(
            servers(&state),
            Vec::<String>::new(),
            "cycle {cycle} left its listener process"
        );
    }
    eprintln!("50 up/down cycles in {:.1?}", started.elapsed());

    // A bigger lab (a chain of 100 routers: 103 namespaces), killed with SIGKILL in the middle
    // of `up`: when its state file appears, and once 10, 50 and all 103 of its namespaces
    // exist (while it creates namespaces, then builds nodes, plugs them in, loads routes). The
    // kill points follow the build's progress, not the clock, so a fast or a loaded machine
    // kills at the same stages.
    let big = state.join("chain.yaml");
    std::fs::write(&big, reachlab::generate::chain(100)).expect("written");
    for (run, stage) in [0usize, 10, 50, 103].into_iter().enumerate() {
        let mut child = Command::new(EXE)
            .args(["emulate", "up", &big.to_string_lossy()])
            .env("REACHLAB_STATE_DIR", &state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("up starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while state_ids(&state).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut built = lab_namespaces(&state_ids(&state)).len();
        while built < stage
            && Instant::now() < deadline
            && child.try_wait().ok().flatten().is_none()
        {
            std::thread::sleep(Duration::from_millis(1));
            built = lab_namespaces(&state_ids(&state)).len();
        }
        let finished = child.try_wait().expect("status").is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            !finished,
            "run {run}: `up` finished before it could be killed"
        );
        eprintln!("kill -9 of up at stage {stage} ({built} namespaces existed)");
        // A second `up` refuses to build over the leftovers, and says how to clean them.
        let again = reachlab(&state, &["emulate", "up", &big.to_string_lossy()]);
        let text = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(2), "run {run}: {text}");
        assert!(text.contains("reachlab emulate down"), "run {run}: {text}");
        let out = reachlab(&state, &["emulate", "down", "--all"]);
        assert!(
            out.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            lab_namespaces(&state_ids_of(&big, &state)),
            Vec::<String>::new()
        );
    }
    // Ctrl-C during `up`: it removes what it built by itself.
    let child = Command::new(EXE)
        .args(["emulate", "up", &big.to_string_lossy()])
        .env("REACHLAB_STATE_DIR", &state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("up starts");
    std::thread::sleep(Duration::from_millis(400));
    let _ = nix_kill_int(child.id());
    let out = child.wait_with_output().expect("up ends");
    let text = String::from_utf8_lossy(&out.stderr);
    eprintln!("SIGINT during up: {}", text.trim());

    let out = reachlab(&state, &["emulate", "down", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = std::fs::read_dir(&state)
        .expect("state dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(listed, Vec::<String>::new(), "state files left");
    let leftover: Vec<String> = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("reachlab-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(leftover, Vec::<String>::new(), "namespaces left behind");
    assert_eq!(
        servers(&state),
        Vec::<String>::new(),
        "listener processes left behind"
    );
    assert_eq!(root_links(), before, "the root namespace's links changed");
    eprintln!("emulate_cleanup: all clean after {:.1?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&state);
}

fn nix_kill_int(pid: u32) -> nix::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
}
