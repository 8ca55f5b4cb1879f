//! A real dockerd as the referee of every Docker topology (issue 16): for each file of
//! `topologies/` with a `docker:` section, `reachlab emulate up --dockerd` builds the lab with
//! the real dockerd on the Docker host (it makes the networks, the containers and the host's
//! rules), then
//!
//! - what `iptables-save` prints in the host's namespace (comments and counters aside) is
//!   what `reachlab show --iptables-save --node HOST` prints for the file: the lowering writes
//!   the rules dockerd writes;
//! - `reachlab emulate check --dockerd` runs every `expect:` probe in that lab and finds each
//!   one as the simulator predicts (exit 0, every probe agreeing);
//! - `reachlab emulate down` removes it all: afterwards no namespace of the labs, no dockerd
//!   started for them, no mount under their state directory and no dockerd directory is left.
//!
//! One dockerd per file, one file after the other. Needs root, iproute2, nftables, docker.io,
//! busybox-static and iptables: SKIPPED otherwise, unless `REACHLAB_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

mod support;

use support::dockerd::{BUSYBOX, DOCKER, DOCKERD};
use support::{IP, NFT, Tool, can_run};

const REACHLAB: &str = env!("CARGO_BIN_EXE_reachlab");

const IPTABLES: Tool = Tool {
    program: "iptables",
    arg: "--version",
    package: "iptables",
};

/// The topologies with a `docker:` section, by name.
fn docker_topologies() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("topologies")
        .expect("topologies/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.trim_end() == "docker:"))
        })
        .collect();
    files.sort();
    files
}

/// The installed dockerd's version (`20.10.24+dfsg1`).
fn installed_dockerd() -> String {
    let out = Command::new("dockerd")
        .arg("--version")
        .output()
        .expect("dockerd runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or("")
        .trim_end_matches(',')
        .to_owned()
}

/// The Docker version a topology's engine models: its `version:` (quoted), else 20.10.
fn modelled_version(file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .unwrap_or_else(|| "20.10".to_owned())
}

/// A state directory of this test's own; on drop (also when the test panics) every lab in it
/// is taken down and the directory removed.
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> Self {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = std::env::temp_dir().join(format!("rl-edk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("a state directory");
        StateDir(dir)
    }

    fn reachlab(&self, args: &[&str]) -> Output {
        Command::new(REACHLAB)
            .env("REACHLAB_STATE_DIR", &self.0)
            .args(args)
            .output()
            .expect("reachlab runs")
    }

    /// The dockerd runs the state files list: (namespace, directory).
    fn dockerd_runs(&self) -> Vec<(String, String)> {
        let mut runs = Vec::new();
        for entry in std::fs::read_dir(&self.0)
            .expect("the state directory")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a state file");
            let state: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            for run in state["dockerd"].as_array().cloned().unwrap_or_default() {
                runs.push((
                    run["namespace"].as_str().unwrap_or_default().to_owned(),
                    run["dir"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        runs
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = self.reachlab(&["emulate", "down", "--all"]);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `iptables-save` text without comments, with every chain's counters zero.
fn normalised(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match (l.starts_with(':'), l.rfind(" [")) {
            (true, Some(at)) => format!("{} [0:0]", &l[..at]),
            _ => l.to_owned(),
        })
        .collect()
}

/// The Docker host of a file: the first `host:` under `docker:`.
fn docker_host(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("the topology");
    let section = text.split_once("\ndocker:").expect("a docker: section").1;
    section
        .lines()
        .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix("host:"))
        .map(|h| h.trim().to_owned())
        .expect("an engine's host")
}

/// `N probes in 1 file: A agree with the kernel, D do not`: (N, A).
fn tally(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.contains(" probes in ") || l.contains(" probe in "))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let probes = words[0].parse().expect("a count");
    let agree = words
        .iter()
        .position(|w| *w == "agree")
        .and_then(|i| words[i - 1].parse().ok())
        .expect("an agreeing count");
    (probes, agree)
}

#[test]
fn every_docker_topology_agrees_with_the_real_dockerd() {
    let test = "every_docker_topology_agrees_with_the_real_dockerd";
    if !can_run(test, &[IP, NFT, DOCKERD, DOCKER, BUSYBOX, IPTABLES]) {
        return;
    }
    let installed = installed_dockerd();
    let (files, other): (Vec<PathBuf>, Vec<PathBuf>) = docker_topologies()
        .into_iter()
        .partition(|f| installed.starts_with(&format!("{}.", modelled_version(f))));
    // Files of another Docker version are refereed by that version only (`tests/docker28.rs`
    // holds Docker 28's to moby's own listings).
    for f in &other {
        eprintln!(
            "{}: modelled as dockerd {}, this machine's is {installed}: not refereed here",
            f.display(),
            modelled_version(f)
        );
    }
    assert!(files.len() >= 5, "the Docker topologies: {files:?}");
    let state = StateDir::new();
    let started = Instant::now();
    let mut table = Vec::new();
    let mut labs_namespaces: Vec<String> = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let one = Instant::now();
        let up = state.reachlab(&["emulate", "up", "--dockerd", &name]);
        assert!(
            up.status.success(),
            "emulate up --dockerd {name}: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let runs = state.dockerd_runs();
        assert_eq!(runs.len(), 1, "{name}: one dockerd per file");
        let (host_ns, _) = &runs[0];
        let lab_prefix: String = host_ns.split('-').take(2).collect::<Vec<_>>().join("-");
        labs_namespaces.push(lab_prefix);
        let saved = Command::new("ip")
            .args(["netns", "exec", host_ns, "iptables-save"])
            .output()
            .expect("iptables-save runs");
        let host = docker_host(file);
        let shown = state.reachlab(&["show", "--iptables-save", "--node", &host, &name]);
        assert_eq!(
            normalised(&String::from_utf8_lossy(&saved.stdout)),
            normalised(&String::from_utf8_lossy(&shown.stdout)),
            "{name}: dockerd (left) wrote other rules on `{host}` than the lowering (right)"
        );
        let check = state.reachlab(&["emulate", "check", "--dockerd", &name]);
        let stdout = String::from_utf8_lossy(&check.stdout).into_owned();
        let down = state.reachlab(&["emulate", "down", &name]);
        assert!(
            down.status.success(),
            "emulate down {name}: {}",
            String::from_utf8_lossy(&down.stderr)
        );
        assert!(
            check.status.success(),
            "{name}: the kernel with dockerd and the simulator disagree:\n{stdout}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let (probes, agree) = tally(&stdout);
        assert_eq!(probes, agree, "{name}:\n{stdout}");
        table.push((name, probes, agree, one.elapsed()));
    }
    eprintln!(
        "{:<45} {:>6} {:>6} {:>7}",
        "file", "probes", "agree", "time"
    );
    for (name, probes, agree, time) in &table {
        eprintln!(
            "{name:<45} {probes:>6} {agree:>6} {:>6.1}s",
            time.as_secs_f64()
        );
    }
    eprintln!(
        "{} files against the real dockerd in {:.1} s",
        table.len(),
        started.elapsed().as_secs_f64()
    );
    // Nothing is left: namespaces, dockerd processes, mounts, directories.
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for prefix in &labs_namespaces {
        assert!(
            !namespaces.iter().any(|n| n.starts_with(prefix.as_str())),
            "namespaces of {prefix} left: {namespaces:?}"
        );
    }
    let dir = state.0.display().to_string();
    let dockerds: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("dockerd") && c.contains(&dir))
        .collect();
    assert!(dockerds.is_empty(), "dockerd left running: {dockerds:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&dir), "mounts left under {dir}:\n{mounts}");
    let left: Vec<PathBuf> = std::fs::read_dir(&state.0)
        .expect("the state directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left in the state directory: {left:?}");
}
