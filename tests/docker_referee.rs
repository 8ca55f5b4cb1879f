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
//! - each expectation of the scenario's topologies is run for real (curl, busybox ping, TCP
//!   connections from a client namespace, from the host and from the containers) and the
//!   outcome the kernel
//!   gives is the one `reachlab check` predicts, for the topology that loads dockerd's rules and
//!   for its twin written as a `docker:` section alike.
//!
//! dockerd is stopped by the PID this test started, its containers removed first, its mounts
//! undone and its namespaces deleted, also when an assertion fails. Needs root, iproute2,
//! docker.io, busybox-static and curl: SKIPPED otherwise, unless `REACHLAB_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

mod support;

use support::dockerd::{
    BUSYBOX, CURL, DOCKER, DOCKERD, IMAGE, Lab, LabSpec, predictions, run_probe, without_comments,
};
use support::{IP, can_run};

/// The binary under test.
const REACHLAB: &str = env!("CARGO_BIN_EXE_reachlab");

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
    let pages: Vec<(&str, &str)> = CONTAINERS.iter().map(|(n, _, p)| (*n, *p)).collect();
    let lab = Lab::start(&LabSpec {
        host: format!("reachlab-dkh-{id}-{}", scenario.name),
        client: format!("reachlab-dkc-{id}-{}", scenario.name),
        dir: lab_dir(scenario),
        flags: scenario.flags,
        client_routes: &["172.17.0.0/16"],
        pages: &pages,
    });
    for (name, publish, _) in CONTAINERS {
        let www = format!("/www-{name}");
        let mut args = vec!["run", "-d", "--name", name];
        if let Some(p) = publish {
            args.extend(["-p", p]);
        }
        args.extend([IMAGE, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", &www]);
        lab.docker_ok(&args);
    }
    lab
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
        let shown = std::process::Command::new(REACHLAB)
            .args(["show", "--iptables-save", "--node", "host", section])
            .output()
            .expect("reachlab runs");
        assert_eq!(
            without_comments(&String::from_utf8_lossy(&saved.stdout)),
            without_comments(&String::from_utf8_lossy(&shown.stdout)),
            "dockerd ({}) wrote other rules than the lowering of {section}",
            scenario.name
        );
        let first = predictions(REACHLAB, scenario.topologies[0]);
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
                predictions(REACHLAB, topology),
                "{}: the kernel (left) and `reachlab check {topology}` (right) disagree",
                scenario.name
            );
        }
        drop(lab);
        assert!(!Path::new(&lab_dir(scenario)).exists());
    }
}
