//! `reachlab show` prints each node's netfilter rules "in `iptables -S` notation": this test
//! holds it to that. Every node with rules, of every file in `topologies/` and `tests/kernel/`,
//! has its lines loaded with `iptables` into a network namespace of its own (named
//! `reachlab-ipt<pid>-<n>`, removed afterwards), and what `iptables -S` and `iptables -t nat -S`
//! print there must be the same lines, chain by chain and in order (the `# comment` reachlab
//! adds is not part of the rule; policies are printed by reachlab for closed chains only).
//!
//! Needs root, iproute2 and iptables. Without them the test says SKIPPED on stderr and passes,
//! unless `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a failure.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use reachlab::render::iptables_lines;
use reachlab::topology::load_path;

mod support;

const IPTABLES: support::Tool = support::Tool {
    program: "iptables",
    arg: "--version",
    package: "iptables",
};

/// A namespace this test created, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let added = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip runs");
        assert!(added.status.success(), "ip netns add {name}: {added:?}");
        Netns(name)
    }

    fn iptables(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "iptables"])
            .args(args)
            .output()
            .expect("iptables runs");
        assert!(
            out.status.success(),
            "iptables {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The rules of one table, by chain, in order: `-A` lines, and `-P` lines apart.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    rules: BTreeMap<String, Vec<String>>,
    policies: Vec<String>,
}

impl Table {
    fn add(&mut self, line: &str) {
        if line.starts_with("-P ") {
            self.policies.push(line.to_owned());
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split(' ').next().unwrap_or_default().to_owned();
            self.rules.entry(chain).or_default().push(line.to_owned());
        }
    }
}

fn topology_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["topologies", "tests/kernel"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("directory"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn show_prints_rules_as_iptables_lists_them() {
    if !support::can_run(
        "show_prints_rules_as_iptables_lists_them",
        &[support::IP, IPTABLES],
    ) {
        return;
    }
    let mut nodes = 0;
    for file in topology_files() {
        let net = load_path(Path::new(&file)).expect("valid").network;
        for node in &net.nodes {
            let Some(nf) = &node.netfilter else { continue };
            nodes += 1;
            let ns = Netns::new(format!("reachlab-ipt{}-{nodes}", std::process::id()));
            let (mut filter, mut nat) = (Table::default(), Table::default());
            for line in iptables_lines(&net, nf) {
                let rule = line.split("  # ").next().unwrap_or_default();
                let args: Vec<&str> = rule.split_whitespace().collect();
                ns.iptables(&args);
                match rule.strip_prefix("-t nat ") {
                    Some(rest) => nat.add(rest),
                    None => filter.add(rule),
                }
            }
            let (mut kernel_filter, mut kernel_nat) = (Table::default(), Table::default());
            ns.iptables(&["-S"])
                .lines()
                .for_each(|l| kernel_filter.add(l));
            ns.iptables(&["-t", "nat", "-S"])
                .lines()
                .for_each(|l| kernel_nat.add(l));
            let place = format!("{} node {}", file.display(), node.name);
            assert_eq!(filter.rules, kernel_filter.rules, "{place}: filter rules");
            assert_eq!(nat.rules, kernel_nat.rules, "{place}: nat rules");
            for policy in filter.policies.iter().chain(&nat.policies) {
                assert!(
                    kernel_filter.policies.contains(policy) || kernel_nat.policies.contains(policy),
                    "{place}: {policy} not in {:?}",
                    kernel_filter.policies
                );
            }
        }
    }
    assert!(nodes >= 20, "the topologies have rules on {nodes} nodes");
}
