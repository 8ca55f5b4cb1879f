//! Docker Engine 28 (`version: "28"`) against moby's own record of what dockerd 28 writes: for
//! each scenario of moby v28.5.2's `integration/network/bridge/iptablesdoc/generated/*.md` that
//! the `docker:` section can say, `topologies/docker28-*.yaml` sets it up and
//! `reachlab show --iptables-save --node host` must print, table by table, the document's
//! listing, which `tests/docker28/*.rules` transcribes into iptables-save form (each file says
//! from where). reachlab names a network's bridge `br-NAME`, Docker those of the documents
//! `NAME` (`com.docker.network.bridge.name`): the output is compared with `br-NAME` read as
//! `NAME`.
//!
//! A table the document does not list must be the one written in the case here, with the moby
//! source that writes it.

use std::process::Command;

/// One scenario: the topology, the transcribed document, the bridges to rename, and the tables
/// reachlab prints that the document does not list (with what they must be).
struct Case {
    topology: &'static str,
    rules: &'static str,
    bridges: &'static [&'static str],
    undocumented: &'static [(&'static str, &'static str)],
}

/// c1's direct-access drop (`filterDirectAccess`, v28.5.2
/// libnetwork/drivers/bridge/internal/iptabler/endpoint.go:72-77), which depends neither on the
/// userland proxy nor on icc: usernet-portmap.md lists it for the same c1 on the same bridge1.
const RAW_C1: &str = "\
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 192.0.2.2/32 ! -i bridge1 -j DROP
COMMIT
";

/// The same with c2 (192.0.2.3, no published port), started after c1, appended after it.
const RAW_C1_C2: &str = "\
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 192.0.2.2/32 ! -i bridge1 -j DROP
-A PREROUTING -d 192.0.2.3/32 ! -i bridge1 -j DROP
COMMIT
";

const CASES: &[Case] = &[
    Case {
        topology: "topologies/docker28-new-daemon.yaml",
        rules: "tests/docker28/new-daemon.rules",
        bridges: &[],
        undocumented: &[],
    },
    Case {
        topology: "topologies/docker28-usernet-portmap.yaml",
        rules: "tests/docker28/usernet-portmap.rules",
        bridges: &["bridge1"],
        undocumented: &[],
    },
    Case {
        topology: "topologies/docker28-usernet-portmap-noproxy.yaml",
        rules: "tests/docker28/usernet-portmap-noproxy.rules",
        bridges: &["bridge1"],
        undocumented: &[("raw", RAW_C1)],
    },
    Case {
        topology: "topologies/docker28-usernet-portmap-noicc.yaml",
        rules: "tests/docker28/usernet-portmap-noicc.rules",
        bridges: &["bridge1"],
        undocumented: &[("raw", RAW_C1_C2)],
    },
    Case {
        topology: "topologies/docker28-usernet-internal.yaml",
        rules: "tests/docker28/usernet-internal.rules",
        bridges: &["bridgeICC", "bridgeNoICC"],
        undocumented: &[],
    },
    Case {
        topology: "topologies/docker28-usernet-portmap-lo.yaml",
        rules: "tests/docker28/usernet-portmap-lo.rules",
        bridges: &["bridge1"],
        undocumented: &[],
    },
];

/// iptables-save text cut into its tables, in order: (name, the text from `*name` to `COMMIT`).
fn tables(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('*') {
            out.push((name.to_owned(), String::new()));
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// What `reachlab show --iptables-save --node host` prints for `topology`, with `br-NAME` read
/// as `NAME` for each bridge named.
fn shown(topology: &str, bridges: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(["show", "--iptables-save", "--node", "host", topology])
        .output()
        .expect("reachlab runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{topology}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::from_utf8(out.stdout).expect("UTF-8");
    for name in bridges {
        // Word by word: `br-bridge1` only where it is a whole interface name.
        text = text
            .split('\n')
            .map(|line| {
                line.split(' ')
                    .map(|w| {
                        if w.strip_prefix("br-") == Some(name) {
                            *name
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text
}

#[test]
fn docker_28_writes_what_moby_documents() {
    let mut failures = Vec::new();
    for case in CASES {
        let documented =
            tables(&std::fs::read_to_string(case.rules).expect("the transcription is readable"));
        assert!(!documented.is_empty(), "{}: no table", case.rules);
        let printed = tables(&shown(case.topology, case.bridges));
        for (name, text) in &documented {
            match printed.iter().find(|(n, _)| n == name) {
                Some((_, ours)) if ours == text => {}
                Some((_, ours)) => failures.push(format!(
                    "{}: table {name} differs from {}\n--- documented\n{text}--- printed\n{ours}",
                    case.topology, case.rules
                )),
                None => failures.push(format!(
                    "{}: no table {name}, which {} lists",
                    case.topology, case.rules
                )),
            }
        }
        for (name, ours) in &printed {
            if documented.iter().any(|(n, _)| n == name) {
                continue;
            }
            match case.undocumented.iter().find(|(n, _)| n == name) {
                Some((_, text)) if text == ours => {}
                _ => failures.push(format!(
                    "{}: table {name}, which {} does not list, is not the one expected here:\n{ours}",
                    case.topology, case.rules
                )),
            }
        }
        // The tables come in iptables-nft's order: raw, filter, nat.
        let order: Vec<&str> = printed.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|n| ["raw", "filter", "nat"].iter().position(|t| t == n));
        if order != sorted {
            failures.push(format!("{}: tables in order {order:?}", case.topology));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every document of the generated folder that the `docker:` section can say has its case.
#[test]
fn every_expressible_scenario_is_checked() {
    let names: Vec<&str> = CASES
        .iter()
        .filter_map(|c| c.rules.strip_prefix("tests/docker28/"))
        .collect();
    for scenario in [
        "new-daemon",
        "usernet-portmap",
        "usernet-portmap-noproxy",
        "usernet-portmap-noicc",
        "usernet-internal",
        "usernet-portmap-lo",
    ] {
        assert!(
            names.contains(&format!("{scenario}.rules").as_str()),
            "{scenario}"
        );
    }
}
