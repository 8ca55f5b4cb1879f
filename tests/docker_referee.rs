//! A real dockerd as the referee of the Docker host topologies (issues 15 and 16). Each
//! scenario starts dockerd (Debian's docker.io) in a network namespace of this test's own, with
//! its data, exec and socket directories in a temporary directory of its own, with the
//! scenario's daemon flags, and runs two busybox httpd containers (an image imported from the
//! static busybox: no registry): `web` publishing 8080:80, then `web2`. Then:
//!
//! - after the administrator's commands of the scenario (a DOCKER-USER rule), what
//!   `iptables-save` prints in that namespace is the scenario's rules file in
//!   `topologies/`, line for line (comments aside): the file its topology loads is what dockerd
//!   writes;
//! - and the lowering of the scenario's `docker:` twin prints the same (`reachlab show
//!   --iptables-save`);
//! - each expectation of the scenario's topologies is run for real (curl, busybox ping and nc
//!   from a client namespace, from the host and from the containers) and the outcome the kernel
//!   gives is the one `reachlab check` predicts, for the topology that loads dockerd's rules and
//!   for its twin written as a `docker:` section alike.
//!
//! dockerd is stopped by the PID this test started, its containers removed first, its mounts
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

/// One way of running dockerd, the rules it must write, and the topologies to hold against it.
struct Scenario {
    name: &'static str,
    /// dockerd's flags besides its directories.
    flags: &'static [&'static str],
    /// What `iptables-save` must print (comments aside).
    rules: &'static str,
    /// Topologies whose expectations (the same probes, in the same order) are run for real.
    topologies: &'static [&'static str],
    /// `iptables` commands the administrator runs once the containers are up.
    admin: &'static [&'static [&'static str]],
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "icc",
        flags: &["--iptables=true", "--userland-proxy=false"],
        rules: "topologies/docker-host.rules",
        topologies: &[
            "topologies/docker-host-iptables.yaml",
            "topologies/docker-host-section.yaml",
        ],
        admin: &[],
    },
    Scenario {
        name: "noicc",
        flags: &["--iptables=true", "--userland-proxy=false", "--icc=false"],
        rules: "topologies/docker-host-noicc.rules",
        topologies: &[
            "topologies/docker-host-noicc-iptables.yaml",
            "topologies/docker-host-noicc-section.yaml",
        ],
        admin: &[],
    },
    Scenario {
        name: "user",
        flags: &["--iptables=true", "--userland-proxy=false"],
        rules: "topologies/docker-host-user.rules",
        topologies: &[
            "topologies/docker-host-user-iptables.yaml",
            "topologies/docker-host-user-section.yaml",
        ],
        admin: &[&[
            "iptables",
            "-I",
            "DOCKER-USER",
            "-s",
            "203.0.113.5",
            "-p",
            "icmp",
            "-j",
            "ACCEPT",
        ]],
    },
];

/// The containers, in start order: name, `-p` (if any), the page it serves.
const CONTAINERS: [(&str, Option<&str>, &str); 2] =
    [("web", Some("8080:80"), "hello"), ("web2", None, "web2")];

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

    /// The network namespace of container `name`, as an `nsenter --net=` argument.
    fn container_net(&self, name: &str) -> String {
        let pid = String::from_utf8_lossy(
            &self
                .docker(&["inspect", "-f", "{{.State.Pid}}", name])
                .stdout,
        )
        .trim()
        .to_owned();
        format!("--net=/proc/{pid}/ns/net")
    }

    /// Runs `args` in the namespace of node `from`: the client, the host or a container.
    fn on(&self, from: &str, args: &[&str]) -> Output {
        if from == "client" {
            return self.in_ns(&self.client, args);
        }
        if from == "host" {
            return self.in_ns(&self.host, args);
        }
        Command::new("nsenter")
            .arg(self.container_net(from))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
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
        for (name, _, _) in CONTAINERS {
            let _ = self.docker(&["rm", "-f", name]);
        }
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

/// The directory of a scenario's lab.
fn lab_dir(scenario: &Scenario) -> PathBuf {
    std::env::temp_dir().join(format!(
        "reachlab-dockerd-{}-{}",
        std::process::id(),
        scenario.name
    ))
}

/// The namespaces, the veth between them, dockerd and the containers.
fn build(scenario: &Scenario) -> Lab {
    let id = std::process::id();
    let dir = lab_dir(scenario);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rootfs/bin")).expect("a directory");
    let mut lab = Lab {
        host: format!("reachlab-dkh-{id}-{}", scenario.name),
        client: format!("reachlab-dkc-{id}-{}", scenario.name),
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
        .args(scenario.flags)
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
    for (name, _, page) in CONTAINERS {
        let www = lab.dir.join(format!("rootfs/www-{name}"));
        std::fs::create_dir_all(&www).expect("a directory");
        std::fs::write(www.join("index.html"), format!("{page}\n")).expect("a page");
    }
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
    for (name, publish, _) in CONTAINERS {
        let www = format!("/www-{name}");
        let mut args = vec!["run", "-d", "--name", name];
        if let Some(p) = publish {
            args.extend(["-p", p]);
        }
        args.extend([
            "reachlab-busybox:1",
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            &www,
        ]);
        let started = lab.docker(&args);
        assert!(
            started.status.success(),
            "docker run {name}: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
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

/// Runs `probe` (`FROM TOOL TARGET[:PORT]`, as `check --format json` writes it) for real.
fn run_probe(lab: &Lab, probe: &str) -> String {
    let words: Vec<&str> = probe.split_whitespace().collect();
    let [from, tool, target] = words[..] else {
        panic!("unexpected probe {probe:?}");
    };
    match tool {
        "curl" => {
            let url = format!("http://{target}/");
            outcome("curl", &lab.on(from, &["curl", "-sS", "-m", "3", &url]))
        }
        "ping" => outcome(
            "ping",
            &lab.on(from, &["busybox", "ping", "-c", "1", "-W", "2", target]),
        ),
        "ssh" | "tcp" => {
            let (address, port) = target.split_once(':').expect("ADDRESS:PORT");
            outcome(
                "nc",
                &lab.on(from, &["busybox", "nc", "-w", "3", address, port]),
            )
        }
        _ => panic!("no real twin for probe {probe:?}"),
    }
}

/// The probes of `topology` with what `reachlab check` predicts for each.
fn predictions(topology: &str) -> Vec<(String, String)> {
    let check = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(["check", "--format", "json", topology])
        .output()
        .expect("reachlab runs");
    let doc: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    doc["expectations"]
        .as_array()
        .unwrap_or_else(|| panic!("{topology}: no expectations in {doc}"))
        .iter()
        .map(|r| {
            (
                r["probe"].as_str().unwrap_or("").to_owned(),
                r["predicted"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn dockerd_writes_the_rules_the_topologies_load_and_the_kernel_agrees_with_check() {
    let test = "dockerd_writes_the_rules_the_topologies_load_and_the_kernel_agrees_with_check";
    if !can_run(test, &[IP, DOCKERD, DOCKER, BUSYBOX, CURL]) {
        return;
    }
    for scenario in &SCENARIOS {
        let lab = build(scenario);
        for command in scenario.admin {
            let out = lab.in_ns(&lab.host, command);
            assert!(
                out.status.success(),
                "{command:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let saved = lab.in_ns(&lab.host, &["iptables-save"]);
        let file = std::fs::read_to_string(scenario.rules).expect("the rules file");
        assert_eq!(
            without_comments(&String::from_utf8_lossy(&saved.stdout)),
            without_comments(&file),
            "dockerd ({}) wrote other rules than {}",
            scenario.name,
            scenario.rules
        );
        // The `docker:` twin's lowering replays dockerd: the same text, from the section.
        let section = scenario.topologies[1];
        let shown = Command::new(env!("CARGO_BIN_EXE_reachlab"))
            .args(["show", "--iptables-save", "--node", "host", section])
            .output()
            .expect("reachlab runs");
        assert_eq!(
            without_comments(&String::from_utf8_lossy(&saved.stdout)),
            without_comments(&String::from_utf8_lossy(&shown.stdout)),
            "dockerd ({}) wrote other rules than the lowering of {section}",
            scenario.name
        );
        let first = predictions(scenario.topologies[0]);
        let real: Vec<(String, String)> = first
            .iter()
            .map(|(probe, _)| (probe.clone(), run_probe(&lab, probe)))
            .collect();
        eprintln!(
            "{}: {} probes run against dockerd",
            scenario.name,
            real.len()
        );
        for topology in scenario.topologies {
            assert_eq!(
                real,
                predictions(topology),
                "{}: the kernel (left) and `reachlab check {topology}` (right) disagree",
                scenario.name
            );
        }
        drop(lab);
        assert!(!Path::new(&lab_dir(scenario)).exists());
    }
}
