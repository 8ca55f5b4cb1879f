//! A real dockerd as the referee of `topologies/docker-host-iptables.yaml` (issues 15 and 16).
//! dockerd (Debian's docker.io) starts in a network namespace of this test's own, with its
//! data, exec and socket directories in a temporary directory of its own, and publishes a
//! busybox httpd on 8080 (an image imported from the static busybox: no registry). Then:
//!
//! - what `iptables-save` prints in that namespace is `topologies/docker-host.rules`, line for
//!   line (comments aside): the file the topology loads is what dockerd writes;
//! - each expectation of the topology is run for real (curl, busybox ping and nc from a client
//!   namespace, the container and the host) and the outcome the kernel gives is the one
//!   `reachlab check` predicts.
//!
//! dockerd is stopped by the PID this test started, its container removed first, its mounts
//! undone and its namespaces deleted, also when an assertion fails. Needs root, iproute2,
//! docker.io, busybox-static and curl: SKIPPED otherwise, unless `REACHLAB_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{IP, Tool, can_run};

const DOCKERD: Tool = Tool {
    program: "dockerd",
    arg: "--version",
    package: "docker.io",
};
const DOCKER: Tool = Tool {
    program: "docker",
    arg: "--version",
    package: "docker.io",
};
const BUSYBOX: Tool = Tool {
    program: "busybox",
    arg: "true",
    package: "busybox-static",
};
const CURL: Tool = Tool {
    program: "curl",
    arg: "--version",
    package: "curl",
};

/// The lab: dockerd's namespace (the host), the client's, the directory, dockerd's process.
struct Lab {
    host: String,
    client: String,
    dir: PathBuf,
    dockerd: Option<Child>,
}

impl Lab {
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}/docker.sock", self.dir.display()),
            )
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker runs")
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec runs")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "web"]);
        if let Some(mut child) = self.dockerd.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // dockerd's mounts under the lab's directory, deepest first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|p| p.starts_with(&dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg(p).status();
        }
        for ns in [&self.host, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, the veth between them, dockerd and the container.
fn build() -> Lab {
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("reachlab-dockerd-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rootfs/bin")).expect("a directory");
    std::fs::create_dir_all(dir.join("rootfs/www")).expect("a directory");
    let mut lab = Lab {
        host: format!("reachlab-dkh-{id}"),
        client: format!("reachlab-dkc-{id}"),
        dir,
        dockerd: None,
    };
    let (host, client) = (lab.host.clone(), lab.client.clone());
    for ns in [&host, &client] {
        run("ip", &["netns", "add", ns]);
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }
    run(
        "ip",
        &[
            "-n", &host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &client,
        ],
    );
    run(
        "ip",
        &["-n", &host, "addr", "add", "203.0.113.10/24", "dev", "eth0"],
    );
    run(
        "ip",
        &[
            "-n",
            &client,
            "addr",
            "add",
            "203.0.113.5/24",
            "dev",
            "eth0",
        ],
    );
    for ns in [&host, &client] {
        run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
    }
    run(
        "ip",
        &[
            "-n",
            &client,
            "route",
            "add",
            "172.17.0.0/16",
            "via",
            "203.0.113.10",
        ],
    );
    let d = lab.dir.display().to_string();
    let log = std::fs::File::create(lab.dir.join("dockerd.log")).expect("a log file");
    let netns = format!("--net=/run/netns/{host}");
    let child = Command::new("nsenter")
        .args([&netns, "dockerd"])
        .args([
            "--data-root",
            &format!("{d}/data"),
            "--exec-root",
            &format!("{d}/exec"),
        ])
        .args([
            "--pidfile",
            &format!("{d}/dockerd.pid"),
            "-H",
            &format!("unix://{d}/docker.sock"),
        ])
        .args(["--iptables=true", "--userland-proxy=false"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log"))
        .stderr(log)
        .spawn()
        .expect("dockerd starts");
    lab.dockerd = Some(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lab.docker(&["info"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "dockerd did not come up: {}",
            std::fs::read_to_string(lab.dir.join("dockerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let busybox = which("busybox");
    std::fs::copy(&busybox, lab.dir.join("rootfs/bin/busybox")).expect("busybox copied");
    std::fs::write(lab.dir.join("rootfs/www/index.html"), "hello\n").expect("a page");
    run(
        "tar",
        &[
            "-C",
            &format!("{d}/rootfs"),
            "-cf",
            &format!("{d}/rootfs.tar"),
            ".",
        ],
    );
    let import = lab.docker(&["import", &format!("{d}/rootfs.tar"), "reachlab-busybox:1"]);
    assert!(
        import.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let started = lab.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "reachlab-busybox:1",
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert!(
        started.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    lab
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn without_comments(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The outcome the kernel gives a probe, in reachlab's words.
fn outcome(tool: &str, out: &Output) -> String {
    let code = out.status.code();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    match (tool, code) {
        (_, Some(0)) => "reply",
        ("curl", Some(7)) if text.contains("Couldn't connect") => "refused",
        ("curl", Some(28)) => "timeout",
        ("nc", _) if text.contains("timed out") => "timeout",
        ("nc", _) if text.contains("refused") => "refused",
        ("ping", Some(1)) => "timeout",
        _ => "unexpected",
    }
    .to_owned()
}

#[test]
fn dockerd_writes_the_rules_the_topology_loads_and_the_kernel_agrees_with_check() {
    let test = "dockerd_writes_the_rules_the_topology_loads_and_the_kernel_agrees_with_check";
    if !can_run(test, &[IP, DOCKERD, DOCKER, BUSYBOX, CURL]) {
        return;
    }
    let lab = build();
    let saved = lab.in_ns(&lab.host, &["iptables-save"]);
    let file = std::fs::read_to_string("topologies/docker-host.rules").expect("the rules file");
    assert_eq!(
        without_comments(&String::from_utf8_lossy(&saved.stdout)),
        without_comments(&file),
        "dockerd wrote other rules than topologies/docker-host.rules"
    );
    let pid = String::from_utf8_lossy(
        &lab.docker(&["inspect", "-f", "{{.State.Pid}}", "web"])
            .stdout,
    )
    .trim()
    .to_owned();
    let container = format!("--net=/proc/{pid}/ns/net");
    let curl = |ns: &str, url: &str| lab.in_ns(ns, &["curl", "-sS", "-m", "3", url]);
    let real: Vec<(&str, String)> = vec![
        (
            "client curl 203.0.113.10:8080",
            outcome("curl", &curl(&lab.client, "http://203.0.113.10:8080/")),
        ),
        (
            "client curl 203.0.113.10:80",
            outcome("curl", &curl(&lab.client, "http://203.0.113.10/")),
        ),
        (
            "client curl 172.17.0.2:80",
            outcome("curl", &curl(&lab.client, "http://172.17.0.2/")),
        ),
        (
            "client ping 172.17.0.2",
            outcome(
                "ping",
                &lab.in_ns(
                    &lab.client,
                    &["busybox", "ping", "-c", "1", "-W", "2", "172.17.0.2"],
                ),
            ),
        ),
        (
            "client ssh 172.17.0.2:22",
            outcome(
                "nc",
                &lab.in_ns(
                    &lab.client,
                    &["busybox", "nc", "-w", "3", "172.17.0.2", "22"],
                ),
            ),
        ),
        (
            "web ping 203.0.113.5",
            outcome(
                "ping",
                &Command::new("nsenter")
                    .args([
                        container.as_str(),
                        "busybox",
                        "ping",
                        "-c",
                        "1",
                        "-W",
                        "2",
                        "203.0.113.5",
                    ])
                    .output()
                    .expect("nsenter runs"),
            ),
        ),
        (
            "host curl 172.17.0.1:8080",
            outcome("curl", &curl(&lab.host, "http://172.17.0.1:8080/")),
        ),
    ];
    let check = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args([
            "check",
            "--format",
            "json",
            "topologies/docker-host-iptables.yaml",
        ])
        .output()
        .expect("reachlab runs");
    let doc: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    let predicted: Vec<(String, String)> = doc["expectations"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["probe"].as_str().unwrap_or("").to_owned(),
                r["predicted"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let real: Vec<(String, String)> = real.into_iter().map(|(p, o)| (p.to_owned(), o)).collect();
    assert_eq!(
        real, predicted,
        "the kernel (left) and reachlab check (right) disagree"
    );
    drop(lab);
    assert!(
        !Path::new(&std::env::temp_dir().join(format!("reachlab-dockerd-{}", std::process::id())))
            .exists()
    );
}
