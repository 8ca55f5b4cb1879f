//! The broken files under tests/broken/ must produce exactly their golden diagnostics
//! (`NAME.out`, the text `reachlab validate --color never` prints), exit with 2, and point at
//! the offending text. Set `REACHLAB_BLESS=1` to rewrite the goldens after a deliberate change,
//! then read the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use reachlab::topology::{Code, load_path};

fn broken_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/broken")
        .expect("tests/broken exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_diagnostics() {
    let files = broken_files();
    assert!(
        files.len() >= 12,
        "at least 12 broken files, found {}",
        files.len()
    );
    let bless = std::env::var_os("REACHLAB_BLESS").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
            .args(["validate", "--color", "never"])
            .arg(file)
            .output()
            .expect("reachlab runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{} must be invalid (exit 2)",
            file.display()
        );
        let actual = String::from_utf8(output.stdout).expect("utf-8 output");
        let golden = file.with_extension("out");
        if bless {
            std::fs::write(&golden, &actual).expect("golden written");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!(
                "missing golden {}: run with REACHLAB_BLESS=1",
                golden.display()
            )
        });
        if actual != expected {
            failures.push(format!("--- {}\n{actual}", golden.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "diagnostics changed:\n{}",
        failures.join("\n")
    );
}

/// Line and column (1-based, in characters) of the `nth` occurrence of `needle` in `file`;
/// a `|` in the needle marks the exact spot within it.
fn position(file: &Path, needle: &str, nth: usize) -> (u32, u32) {
    let text = std::fs::read_to_string(file).expect("readable");
    let mark = needle.find('|').unwrap_or(0);
    let bare = needle.replace('|', "");
    let offset = text
        .match_indices(&bare)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` #{nth} not in {}", file.display()))
        .0
        + mark;
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, column)
}

/// Each problem is reported at the text that causes it, with the right code; the positions
/// are found by searching the files, independently of the program.
#[test]
fn diagnostics_point_at_the_offending_text() {
    use Code::*;
    /// (code, text it points at, which occurrence of that text in the file); text in a
    /// rules file or `ip -j` file the topology names is written `FILE.rules::text` or
    /// `FILE.json::text`.
    type Expected = &'static [(Code, &'static str, usize)];
    let cases: &[(&str, Expected)] = &[
        (
            "unknown-keys",
            &[
                (UnknownKey, "latncy", 0),
                (UnknownKey, "interfacs", 0),
                (UnknownKey, "addresses", 1),
            ],
        ),
        (
            "bad-addresses",
            &[
                (BadAddress, "192.168.1.300/24", 0),
                (BadAddress, "10.0.0.5", 0),
                (BadAddress, "172.16.0.1/33", 0),
                (BadAddress, "10.1/8", 0),
            ],
        ),
        (
            "duplicate-names",
            &[
                (DuplicateName, "lan", 1),
                (DuplicateName, "eth0", 1),
                (DuplicateName, "pc", 1),
            ],
        ),
        ("duplicate-address", &[(DuplicateAddress, "eth0", 1)]),
        // br_netfilter: true (0), the first bridge: true (1), the second (2).
        ("two-bridges", &[(BadValue, "true", 2)]),
        (
            "invalid-gateway",
            &[
                (InvalidGateway, "192.168.2.1", 0),
                (InvalidGateway, "192.168.1.255", 0),
            ],
        ),
        (
            "unknown-segment",
            &[(UnknownReference, "lan3", 0), (UnknownReference, "lna1", 0)],
        ),
        (
            "network-broadcast",
            &[
                (ReservedAddress, "192.168.1.0/24", 0),
                (ReservedAddress, "192.168.1.255/24", 0),
            ],
        ),
        (
            "host-bits",
            &[
                (HostBitsSet, "10.0.0.1/8", 0),
                (DuplicateRoute, "default", 1),
            ],
        ),
        (
            "unknown-node",
            &[
                (UnknownReference, "clinet", 0),
                (UnknownReference, "sever", 0),
                (MissingKey, "server", 2),
            ],
        ),
        (
            "wrong-types",
            &[
                (WrongType, "lan", 0),
                (WrongType, "maybe", 0),
                (BadValue, "linuxx", 0),
                (WrongType, "[lan]", 0),
                (BadValue, "70000", 0),
            ],
        ),
        ("yaml-syntax", &[(YamlSyntax, "[10.0.0.1", 0)]),
        (
            "missing-keys",
            &[
                (MissingKey, "latency", 0),
                (MissingKey, "{ name: eth0", 0),
                (MissingKey, "{ from: pc", 0),
            ],
        ),
        (
            "bad-units",
            &[
                (BadValue, "20", 0),
                (BadValue, "5", 0),
                (BadValue, "40", 0),
                (BadValue, "3 min", 0),
                (BadValue, "120%", 0),
                (BadValue, "\"01:", 0),
                (BadValue, "\"zz", 0),
            ],
        ),
        (
            "listeners",
            &[
                (DuplicateName, "80", 1),
                (BadValue, "\"SSH-2.0-x\"", 0),
                (BadValue, "10.0.0.9", 0),
                (BadValue, "hi", 0),
            ],
        ),
        (
            "interface-names",
            &[
                (BadName, "\"bad segment\"", 0),
                (BadName, "averyveryverylongname0", 0),
                (BadName, "\"eth:1\"", 0),
                (BadName, "-router", 0),
                (BadName, "\"bad_name-.lab\"", 0),
            ],
        ),
        (
            "probes",
            &[
                (BadValue, "22", 0),
                (BadValue, "ssh: |b", 0),
                (BadValue, "\"https", 0),
                (BadValue, "64", 0),
                (MissingKey, "from: |a, outcome", 0),
            ],
        ),
        ("platform-sections", &[(UnknownReference, "mastr", 0)]),
        (
            "netfilter-rules",
            &[
                (BadValue, "not_in: |eth0", 0),
                (BadValue, "not_in: |eth0", 1),
                (BadValue, "out: |eth0", 0),
                (BadValue, "dport: |22", 0),
                (BadValue, "dnat: |10.0.0.9", 0),
            ],
        ),
        (
            "invariants",
            &[
                (UnknownReference, "wbe2", 0),
                (UnknownReference, "\"cache*\"", 0),
                (DuplicateName, "db: [web1]", 0),
                (UnknownReference, "bakc", 0),
                (BadValue, "everyone]", 0),
                (BadValue, "[|front]", 0),
                (BadValue, "icmp", 0),
                (BadValue, "probe: |tcp", 0),
                (BadValue, "probes: [|ping]", 0),
                (BadValue, "reachable: { from: front, to: 10.0.0.9", 0),
                (MissingKey, "note: forgot", 0),
                (BadValue, "no-private-source-beyond: everyone", 0),
            ],
        ),
        (
            "names-rule",
            &[
                (BadName, "\"lan\\0x\"", 0),
                (BadName, "\"pc#1\"", 0),
                (BadName, "\"e\\\"drop", 0),
                (BadName, "\"eth0\\\\\"", 0),
                (BadName, "dev,", 0),
                (BadName, "lo,", 0),
                (BadName, "\"eth*\"", 0),
                (BadValue, "\"00:00:00:00:00:00\"", 0),
                (BadValue, "\"ff:ff:ff:ff:ff:ff\"", 0),
            ],
        ),
        (
            "negated-matches",
            &[
                (BadValue, "not_out: |eth0", 0),
                (BadValue, "not_dst: |10.0.0.5", 0),
                (BadValue, "not_dport: |23", 0),
                (BadValue, "not_out: |eth0", 1),
                (BadValue, "not_dport: |22", 0),
                (BadValue, "not_out: |eth0", 2),
            ],
        ),
        (
            "iptables-inline",
            &[
                (BadValue, "-j ACCEPT |-m comment", 0),
                (UnknownReference, "-i |wlan0", 0),
                (BadValue, "-m |tcp --dport 80", 0),
                (BadValue, "--dports |1,2,3", 0),
                (BadValue, "-A OUTPUT |-i", 0),
                (Unsupported, "-m |icmp", 0),
                (UnknownReference, "-j |NFLOG", 0),
                (BadValue, "-j |DNAT", 0),
                (BadValue, ":POSTROUTING |DROP", 0),
                (BadValue, "-A PREROUTING -j |DROP", 0),
                (BadValue, "-A POSTROUTING -j |DNAT", 0),
            ],
        ),
        (
            "iptables-raw",
            &[
                (Unsupported, ":|NOTRACK-HERE", 0),
                (Unsupported, "-A |PREROUTING -m conntrack", 0),
                (Unsupported, "-j |MARK", 0),
                (Unsupported, "-j |REJECT", 0),
                (BadValue, "-A PREROUTING |-o eth0", 0),
                (BadValue, "-A OUTPUT |-i", 0),
                (Unsupported, "-j |NOTRACK-HERE", 0),
            ],
        ),
        ("docker-version", &[(BadValue, "version: |\"27.5\"", 0)]),
        (
            "iptables-file",
            &[
                (Io, "../../Cargo.toml", 0),
                (BadValue, "iptables-file.rules:::|A - ", 0),
                (BadValue, "iptables-file.rules::-p tcp |--dport", 0),
                (UnknownReference, "iptables-file.rules::-A |GHOST", 0),
                (BadValue, "iptables-file.rules:::|X - ", 0),
                (IptablesSyntax, "iptables-syntax.rules::-I INPUT", 0),
                (
                    IptablesSyntax,
                    "iptables-syntax.rules::--comment |\"unclosed",
                    0,
                ),
                (IptablesSyntax, "iptables-syntax.rules::*|mangle", 0),
            ],
        ),
        (
            "ip-json",
            &[
                (UnknownReference, "eth2", 0),
                (Unsupported, "ip-json.addr.json::\"ifname\": |\"eth1\"", 0),
                (
                    Unsupported,
                    "ip-json.addr.json::\"address\": |\"10.9.0.2\"",
                    0,
                ),
                (Unsupported, "ip-json.route.json::\"nexthops\"", 0),
                (
                    Unsupported,
                    "ip-json.route.json::\"prefsrc\": |\"10.9.0.1\"",
                    1,
                ),
            ],
        ),
        (
            "invariants-keys",
            &[
                (WrongType, "pair: |a", 0),
                (UnknownKey, "reachabel", 0),
                (MissingKey, "{ from: a, too", 0),
                (UnknownKey, "too", 0),
            ],
        ),
    ];
    let tested: Vec<&str> = cases.iter().map(|(name, _)| *name).collect();
    for file in broken_files() {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert!(
            tested.contains(&stem),
            "{stem}.yaml has no position expectations here"
        );
    }
    for (name, expected) in cases {
        let path = PathBuf::from(format!("tests/broken/{name}.yaml"));
        let report = load_path(&path).expect_err("broken file must not load");
        let actual: Vec<(Code, String, u32, u32)> = report
            .diagnostics
            .iter()
            .map(|d| {
                let span = d.span.expect("every diagnostic here has a position");
                let file = d.file.as_ref().map_or(report.source.name(), |f| f.name());
                (d.code, file.to_owned(), span.line, span.column)
            })
            .collect();
        let wanted: Vec<(Code, String, u32, u32)> = expected
            .iter()
            .map(|(code, needle, nth)| {
                let (file, needle) = match needle.split_once("::") {
                    Some((name, rest)) if name.ends_with(".rules") || name.ends_with(".json") => {
                        (PathBuf::from(format!("tests/broken/{name}")), rest)
                    }
                    _ => (path.clone(), *needle),
                };
                let (line, column) = position(&file, needle, *nth);
                (*code, file.display().to_string(), line, column)
            })
            .collect();
        assert_eq!(actual, wanted, "diagnostics of {name}.yaml");
        for d in &report.diagnostics {
            assert!(
                d.hint.is_some() || d.code == Code::BadValue || d.code == Code::WrongType,
                "{name}: `{}` has no hint",
                d.message
            );
        }
    }
}

#[test]
fn valid_topologies_validate() {
    let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(["validate", "--color", "never", "topologies"])
        .output()
        .expect("reachlab runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("error"), "{stdout}");
}

#[test]
fn json_diagnostics_carry_file_line_column_and_text() {
    let output = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args([
            "validate",
            "--format",
            "json",
            "tests/broken/unknown-keys.yaml",
        ])
        .output()
        .expect("reachlab runs");
    assert_eq!(output.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let first = &doc[0]["diagnostics"][0];
    assert_eq!(doc[0]["valid"], false);
    assert_eq!(first["file"], "tests/broken/unknown-keys.yaml");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(3), Some(5))
    );
    assert_eq!(first["text"], "latncy");
    assert_eq!(first["code"], "unknown-key");
    assert_eq!(first["severity"], "error");
}
