//! Every input bounded, every diagnostic positioned and hinted (issue 19, findings 6, 7 and
//! parts of 8). Each test runs the CLI (or the loader) on a small hostile input and checks
//! that it ends quickly, cleanly (exit 2, no panic) and says where and what to do.
//!
//! The FIFO tests never write to the FIFOs: before the fix, each of them blocked forever, so
//! the CLI runs under a timeout and a test fails (killing only the child it started) when the
//! command has not ended. The `live` tests need root and `ip`: they run inside a namespace of
//! their own (`reachlab-bounds-…`, removed by a guard) and print SKIPPED otherwise, unless
//! `REACHLAB_REQUIRE_KERNEL=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reachlab::topology::{Diagnostic, load_str};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_reachlab");

/// Generous: each command here ends in well under a second once fixed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A private temporary directory, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("reachlab-bounds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("written");
        path
    }

    fn fifo(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let status = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success(), "mkfifo {}", path.display());
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs reachlab with `args` in `dir`; fails the test (after killing the child) when it has
/// not ended within [`TIMEOUT`].
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reachlab starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`reachlab {}` did not end within {TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A clean refusal: exit 2, no panic.
fn assert_refused(out: &Output, what: &str) -> (String, String) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit 2 expected\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
    (stdout, stderr)
}

const TWO_HOSTS: &str = "segments: [{ name: lan }]
nodes:
  - { name: a, interfaces: [{ name: eth0, segment: lan, addresses: [192.0.2.1/24] }] }
  - { name: b, interfaces: [{ name: eth0, segment: lan, addresses: [192.0.2.2/24] }] }
";

/// A cluster on two nodes whose manifests are `manifests` (as written in the file).
fn cluster_topology(manifests: &str) -> String {
    format!(
        "segments: [{{ name: net }}]
nodes:
  - {{ name: master, interfaces: [{{ name: ens3, segment: net, addresses: [192.0.2.10/24] }}] }}
  - {{ name: worker, interfaces: [{{ name: ens3, segment: net, addresses: [192.0.2.11/24] }}] }}
kubernetes:
  clusters:
    - name: lab
      nodes: [master, worker]
      control_plane: [master]
      manifests: {manifests}
"
    )
}

const HUGE_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 10000000
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: x, ports: [{ containerPort: 5000 }] }]
";

#[test]
fn replicas_beyond_the_budget_are_refused_with_a_position() {
    let dir = TempDir::new("replicas");
    dir.write("app.yaml", HUGE_DEPLOYMENT);
    dir.write("cluster.yaml", &cluster_topology("[app.yaml]"));
    let out = run_in(&dir.0, &["validate", "--color", "never", "cluster.yaml"]);
    let (stdout, _) = assert_refused(&out, "replicas: 10000000");
    assert!(
        stdout.contains("asks for 10000000 replicas; the limit is 10000"),
        "{stdout}"
    );
    // Positioned at the manifest's entry in the topology, with a hint.
    assert!(stdout.contains("--> cluster.yaml:10:19"), "{stdout}");
    assert!(stdout.contains("hint: lower `spec.replicas`"), "{stdout}");
}

/// A real slice of a two-host matrix, with its shard count replaced by `count`.
fn slice_claiming(dir: &TempDir, count: u64) -> PathBuf {
    dir.write("two.yaml", TWO_HOSTS);
    let out = run_in(
        &dir.0,
        &["matrix", "two.yaml", "--shard", "1/2", "--format", "json"],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let mut slice: serde_json::Value = serde_json::from_slice(&out.stdout).expect("slice JSON");
    slice["shard"]["count"] = count.into();
    dir.write(&format!("slice-{count}.json"), &slice.to_string())
}

#[test]
fn merge_of_a_slice_claiming_1e18_shards_is_a_clean_error() {
    let dir = TempDir::new("merge18");
    let slice = slice_claiming(&dir, 1_000_000_000_000_000_000);
    let out = run_in(&dir.0, &["matrix", "merge", &slice.display().to_string()]);
    let (_, stderr) = assert_refused(&out, "merge of 10^18 shards");
    assert!(stderr.contains("at most 65536"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn merge_of_a_slice_claiming_1e9_shards_is_a_clean_error() {
    let dir = TempDir::new("merge9");
    let slice = slice_claiming(&dir, 1_000_000_000);
    let out = run_in(&dir.0, &["matrix", "merge", &slice.display().to_string()]);
    let (_, stderr) = assert_refused(&out, "merge of 10^9 shards");
    assert!(stderr.contains("claims 1000000000 slices"), "{stderr}");
}

#[test]
fn validate_dev_zero_is_refused() {
    let out = run_in(
        Path::new("/"),
        &["validate", "--color", "never", "/dev/zero"],
    );
    let (stdout, _) = assert_refused(&out, "validate /dev/zero");
    assert!(
        stdout.contains("a character device, not a regular file"),
        "{stdout}"
    );
    assert!(stdout.contains("hint:"), "{stdout}");
}

#[test]
fn a_fifo_as_topology_is_refused_without_blocking() {
    let dir = TempDir::new("fifo-topology");
    dir.fifo("pipe.yaml");
    let out = run_in(&dir.0, &["validate", "--color", "never", "pipe.yaml"]);
    let (stdout, _) = assert_refused(&out, "a FIFO as topology");
    assert!(
        stdout.contains("a FIFO (named pipe), not a regular file"),
        "{stdout}"
    );
}

#[test]
fn a_fifo_as_manifest_is_refused_without_blocking() {
    let dir = TempDir::new("fifo-manifest");
    dir.fifo("app.yaml");
    dir.write("cluster.yaml", &cluster_topology("[app.yaml]"));
    let out = run_in(&dir.0, &["validate", "--color", "never", "cluster.yaml"]);
    let (stdout, _) = assert_refused(&out, "a FIFO as manifest");
    assert!(
        stdout.contains("manifest app.yaml: it is a FIFO"),
        "{stdout}"
    );
    assert!(stdout.contains("--> cluster.yaml:10:19"), "{stdout}");
}

#[test]
fn a_fifo_in_a_directory_for_check_is_skipped_with_a_warning() {
    let dir = TempDir::new("fifo-check");
    dir.write("lab/two.yaml", TWO_HOSTS);
    dir.fifo("lab/pipe.yaml");
    let out = run_in(&dir.0, &["check", "lab"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("skipped lab/pipe.yaml: a FIFO (named pipe)"),
        "{stderr}"
    );
}

#[test]
fn a_fifo_as_pcap_target_is_refused_without_blocking() {
    let dir = TempDir::new("fifo-pcap");
    dir.write("two.yaml", TWO_HOSTS);
    dir.fifo("capture.pcapng");
    let out = run_in(
        &dir.0,
        &["ping", "two.yaml", "a", "b", "--pcap", "capture.pcapng"],
    );
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("a FIFO (named pipe), not a regular file"),
        "{stderr}"
    );
}

#[test]
fn manifest_paths_outside_the_topology_directory_are_refused() {
    let dir = TempDir::new("confined");
    dir.write("outside.yaml", HUGE_DEPLOYMENT);
    dir.write(
        "lab/cluster.yaml",
        &cluster_topology("[/etc/passwd, ../outside.yaml]"),
    );
    let out = run_in(
        &dir.0,
        &["validate", "--color", "never", "lab/cluster.yaml"],
    );
    let (stdout, _) = assert_refused(&out, "manifests outside");
    assert!(
        stdout.contains("manifest path `/etc/passwd` is absolute"),
        "{stdout}"
    );
    assert!(
        stdout.contains("manifest path `../outside.yaml` leads outside the topology's directory"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hint: manifest paths are relative"),
        "{stdout}"
    );
    // Neither file was read: no replicas error from outside.yaml.
    assert!(!stdout.contains("replicas"), "{stdout}");
}

#[test]
fn rules_without_keys_each_get_a_positioned_diagnostic() {
    let file = "segments: [{ name: lan }]
nodes:
  - name: gw
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    firewall:
      input:
        rules:
          - {}
          - { proto: icmp }
          - {}
          - { proto: tcp }
          - { dport: 22 }
";
    let report = load_str("rules.yaml", file).expect_err("invalid");
    let messages: Vec<&str> = report
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    for n in 1..=5 {
        let want = format!("input rule {n} of `gw` has no `action`");
        assert!(messages.contains(&want.as_str()), "{want} in {messages:#?}");
    }
    assert_eq!(report.diagnostics.len(), 5, "{messages:#?}");
    for d in &report.diagnostics {
        assert!(d.span.is_some(), "no position: {d:?}");
    }
    // `{ proto: icmp }` points at its own line.
    let icmp = report
        .diagnostics
        .iter()
        .find(|d| d.message.starts_with("input rule 2 "))
        .expect("rule 2");
    assert_eq!(icmp.span.map(|s| s.line), Some(9), "{icmp:?}");
}

/// Files each of which used to get a diagnostic with no position or no hint.
const UNHINTED: &[(&str, &str)] = &[
    (
        "out of range",
        "segments: [{ name: lan, mtu: 40 }]\nnodes: []\n",
    ),
    (
        "expected X, found Y",
        "segments: [{ name: lan }]\nnodes:\n  - { name: a, interfaces: [{ name: eth0, segment: lan, addresses: 5 }] }\n",
    ),
    (
        "a list where text belongs",
        "segments: [{ name: lan }]\nnodes:\n  - { name: a, interfaces: [{ name: [eth0], segment: lan }] }\n",
    ),
    (
        "this map has no `X`",
        "segments: [{ name: lan }]\nnodes:\n  - { interfaces: [] }\n",
    ),
    (
        "typed deserialisation",
        "segments: [{ name: lan }]\nnodes:\n  - { name: a, listen: [{ port: 22, proto: sctp }] }\n",
    ),
    (
        "nat rule without a kind",
        "segments: [{ name: lan }]\nnodes:\n  - name: a\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]\n    nat: [{}]\n",
    ),
];

#[test]
fn every_diagnostic_has_a_position_and_a_hint() {
    for (what, file) in UNHINTED {
        let report = load_str("t.yaml", file).expect_err(what);
        assert!(!report.diagnostics.is_empty(), "{what}");
        let bad: Vec<&Diagnostic> = report
            .diagnostics
            .iter()
            .filter(|d| d.span.is_none() || d.hint.is_none())
            .collect();
        assert!(bad.is_empty(), "{what}: {bad:#?}");
    }
}

#[test]
fn a_cr_only_file_shows_the_right_line() {
    let dir = TempDir::new("cr");
    dir.write(
        "cr.yaml",
        "segments: [{ name: lan }]\rnodes:\r  - name: a\r    mtu: x\r",
    );
    let out = run_in(&dir.0, &["validate", "--color", "never", "cr.yaml"]);
    let (stdout, _) = assert_refused(&out, "CR-only file");
    assert!(stdout.contains("--> cr.yaml:4:5"), "{stdout}");
    assert!(stdout.contains("4 |     mtu: x\n"), "{stdout}");
}

#[test]
fn a_long_line_is_cut_around_the_column() {
    let dir = TempDir::new("long");
    let file = format!(
        "segments: [{{ name: lan }}]\nnodes: [{{ name: a, {}: 1, interfaces: 5 }}]\n",
        "k".repeat(100_000)
    );
    dir.write("long.yaml", &file);
    let out = run_in(&dir.0, &["validate", "--color", "never", "long.yaml"]);
    let (stdout, _) = assert_refused(&out, "a long line");
    assert!(
        stdout.contains('…'),
        "{}",
        &stdout[..stdout.len().min(2000)]
    );
    let longest = stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest < 400, "a line of {longest} characters was shown");
}

#[test]
fn the_multi_document_error_speaks_of_documents() {
    let report = load_str("multi.yaml", "nodes: []\n---\nsegments: []\n").expect_err("invalid");
    let d = &report.diagnostics[0];
    assert!(
        d.message.contains("more than one YAML document"),
        "{}",
        d.message
    );
    assert!(!d.message.contains("from_str"), "{}", d.message);
    assert_eq!(d.span.map(|s| s.line), Some(3));
}

// ------------------------------------------------------------------------------- `live`

/// `reachlab live` (the `emulate` feature, Linux).
#[cfg(all(feature = "emulate", target_os = "linux"))]
mod live {
    use super::*;

    /// A namespace of this test's own with `lo` up and one veth end at 192.0.2.2/24 (default
    /// route via 192.0.2.1); deleted on drop.
    struct Namespace(String);

    impl Namespace {
        fn new(test: &str) -> Self {
            let ns = Self(format!("reachlab-bounds-{test}-{}", std::process::id()));
            let ip = |args: &str| {
                let status = Command::new("ip")
                    .args(["-n", &ns.0])
                    .args(args.split(' '))
                    .status()
                    .expect("ip runs");
                assert!(status.success(), "ip -n {} {args}", ns.0);
            };
            let status = Command::new("ip")
                .args(["netns", "add", &ns.0])
                .status()
                .expect("ip runs");
            assert!(status.success(), "ip netns add {}", ns.0);
            ip("link set lo up");
            ip("link add v0 type veth peer name v1");
            ip("addr add 192.0.2.2/24 dev v0");
            ip("link set v0 up");
            ip("link set v1 up");
            ip("route add default via 192.0.2.1");
            ns
        }

        /// `reachlab ARGS` run inside the namespace (as `setpriv_args` say, when given).
        fn run(&self, setpriv_args: &[&str], args: &[&str]) -> Output {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", &self.0]);
            if !setpriv_args.is_empty() {
                command.arg("setpriv").args(setpriv_args);
            }
            command.arg(BIN).args(args);
            command.output().expect("ip netns exec runs")
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    #[test]
    fn live_ping_of_a_loopback_address_is_predicted_on_lo() {
        if !can_run("live_ping_of_a_loopback_address_is_predicted_on_lo") {
            return;
        }
        let ns = Namespace::new("lo");
        let out = ns.run(&[], &["live", "ping", "127.0.0.1"]);
        let (stdout, stderr) = text(&out);
        assert!(
            stdout.contains("route predicted:  dev lo src 127.0.0.1\n"),
            "{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("route (kernel):   dev lo src 127.0.0.1   agree"),
            "{stdout}\n{stderr}"
        );
    }

    #[test]
    fn live_ping_without_cap_net_raw_is_a_clear_error() {
        if !can_run("live_ping_without_cap_net_raw_is_a_clear_error") {
            return;
        }
        let ns = Namespace::new("eperm");
        let nobody = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ];
        let out = ns.run(&nobody, &["live", "ping", "127.0.0.1"]);
        let (stdout, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("needs root or CAP_NET_RAW"),
            "{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("os error"), "{stderr}");
    }

    /// Whether the test may run (root, iproute2, setpriv): see `support`.
    fn can_run(test: &str) -> bool {
        support::can_run(test, &[support::IP, support::SETPRIV])
    }
}
