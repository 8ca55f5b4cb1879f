//! `reachlab check --format json`: one document `{files, expectations, invariants, failures,
//! summary}` (README, "check --format json"), whose counts are the text output's and whose
//! origins are positions in the file.

use std::process::Command;

const LAB: &str = "\
segments: [{ name: lan }]
nodes:
  - name: a
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
  - name: b
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]
expect:
  - { from: a, ping: 10.0.0.2, outcome: reply }
  - { from: a, ping: 10.0.0.3, outcome: reply }
";

const BROKEN: &str = "\
segments: [{ name: lan }]
nodes:
  - name: a
    interfaces: [{ name: eth0, segment: wan, addresses: [10.0.0.1/24] }]
";

fn reachlab(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("reachlab runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_json_is_one_document_with_the_text_outputs_counts() {
    let dir = std::env::temp_dir().join(format!("reachlab-check-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("a-lab.yaml"), LAB).expect("written");
    std::fs::write(dir.join("b-broken.yaml"), BROKEN).expect("written");
    let dir_arg = dir.to_str().expect("utf-8");

    let (code, json) = reachlab(&["check", "--format", "json", dir_arg]);
    let (text_code, text) = reachlab(&["check", "--color", "never", dir_arg]);
    std::fs::remove_dir_all(&dir).expect("removed");
    // An invalid file: exit 2, in both formats.
    assert_eq!((code, text_code), (Some(2), Some(2)), "{json}\n{text}");
    assert!(
        text.contains("2 expectations in 2 files: 1 as expected, 1 not, 1 invalid files"),
        "{text}"
    );

    let doc: serde_json::Value = serde_json::from_str(&json).expect("one JSON document");
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{json}");
    assert_eq!(files[0]["valid"], true);
    assert!(files[0].get("diagnostics").is_none());
    assert_eq!(files[1]["valid"], false);
    let diagnostic = &files[1]["diagnostics"][0];
    // `segment: wan` is on line 4 of the broken file.
    assert_eq!(diagnostic["line"], 4, "{json}");

    let expectations = doc["expectations"].as_array().expect("expectations");
    let oks: Vec<_> = expectations.iter().map(|e| e["ok"].as_bool()).collect();
    assert_eq!(oks, [Some(true), Some(false)], "{json}");
    assert_eq!(expectations[1]["expected"], "reply");
    assert_eq!(expectations[1]["predicted"], "host-unreachable");
    // Each origin is the line of its `expect:` entry (lines 8 and 9 of LAB).
    for (e, line) in expectations.iter().zip([8, 9]) {
        assert_eq!(e["origin"]["line"], line, "{e}");
        assert!(e["origin"]["column"].as_u64().is_some_and(|c| c > 0), "{e}");
        assert!(
            e["origin"]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("a-lab.yaml"))
        );
    }
    assert_eq!(doc["invariants"], serde_json::json!([]));
    assert_eq!(doc["failures"], serde_json::json!([]));
    assert_eq!(
        doc["summary"],
        serde_json::json!({
            "files": 2, "invalid_files": 1, "expectations": 2, "expectations_failed": 1,
            "invariants": 0, "invariants_violated": 0, "failure_cases": 0,
            "failure_cases_breaking": 0, "ok": false
        })
    );
}

/// A failure's cause is data as well as words: `why.cause` names the decisive step, the node
/// and what it involves. Nobody owns 10.0.0.3, so `a`'s ARP for it goes unanswered (the kernel
/// gives `Destination Host Unreachable` after three tries); a drop rule names its chain and
/// its number (from 1, as `iptables -L --line-numbers`).
#[test]
fn a_probes_json_says_its_cause_as_data() {
    let dir = std::env::temp_dir().join(format!("reachlab-cause-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let lab = dir.join("lab.yaml");
    std::fs::write(
        &lab,
        format!(
            "{LAB}    firewall:\n      input: {{ policy: accept, rules: [{{ proto: icmp, action: accept }}, {{ proto: tcp, dport: 22, action: drop }}] }}\n"
        )
        .replace("  - name: b\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]\n", "")
        .replace("expect:\n  - { from: a, ping: 10.0.0.2, outcome: reply }\n  - { from: a, ping: 10.0.0.3, outcome: reply }\n", "")
            + "  - name: b\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }]\n",
    )
    .expect("written");
    let file = lab.to_str().expect("utf-8");
    let (_, unowned) = reachlab(&["ping", "--format", "json", file, "a", "10.0.0.3"]);
    let (_, dropped) = reachlab(&["tcp", "--format", "json", file, "b", "10.0.0.1", "22"]);
    std::fs::remove_dir_all(&dir).expect("removed");
    let unowned: serde_json::Value = serde_json::from_str(&unowned).expect("JSON");
    assert_eq!(
        unowned["why"]["cause"],
        serde_json::json!({
            "kind": "arp-unanswered", "node": "a", "segment": "lan", "next_hop": "10.0.0.3"
        }),
        "{unowned}"
    );
    let dropped: serde_json::Value = serde_json::from_str(&dropped).expect("JSON");
    assert_eq!(
        dropped["why"]["cause"],
        serde_json::json!({
            "kind": "filtered", "node": "a", "chain": "input", "rule": 2, "verdict": "drop"
        }),
        "{dropped}"
    );
}
