//! The naming rule and the emulator's scripts (issue 19, findings 4 and 5): names from a topology
//! never reach `nft -f` or `ip -batch` as anything but one whole, safely quoted word.
//!
//! - The two repros of the issue (an interface named `e"drop;oif"q0`, one ending in `\`) and the
//!   all-zero MAC are refused at load with a positioned diagnostic and a hint.
//! - `names_fuzz`: a proptest over arbitrary names (quotes, backslash, newline, `;`, `#`, NUL,
//!   unicode, `ip` keywords) for a node, a segment and an interface of a small topology. Every
//!   name the loader accepts (1) follows the rule documented in docs/topology-format.md, checked
//!   here by an independent implementation, and every name that follows it is accepted; (2) the
//!   nft ruleset and the ip/tc scripts, read back the way nft and iproute2 read them, are word for
//!   word those of the same topology with a placeholder name; (3) as root, a sample of accepted
//!   names is built with `reachlab emulate up` in a private state directory, and the node's
//!   `nft list ruleset` holds exactly the file's rules, then `down`. Without root or `nft` part
//!   (3) says SKIPPED (a failure under `REACHLAB_REQUIRE_KERNEL=1`).
//!
//! Budget: `REACHLAB_NAMES_CASES` cases (default 5000), `REACHLAB_NAMES_KERNEL` kernel builds
//! (default 4). The number of inputs tried and accepted is printed.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reachlab::emulate::{LabId, Layout, build_scripts, nft_ruleset};
use reachlab::topology::{Code, load_str};

mod support;

/// The reserved interface names as docs/topology-format.md lists them.
const DOCUMENTED_RESERVED: &[&str] = &[
    "lo",
    "all",
    "default",
    "a",
    "ad",
    "add",
    "addr",
    "address",
    "addrgenmode",
    "al",
    "alias",
    "allmulticast",
    "arp",
    "b",
    "br",
    "brd",
    "broadcast",
    "carrier",
    "d",
    "dev",
    "down",
    "dy",
    "dynamic",
    "gro_max_size",
    "group",
    "gso_max_segs",
    "gso_max_size",
    "h",
    "he",
    "help",
    "index",
    "l",
    "li",
    "link",
    "link-netns",
    "link-netnsid",
    "m",
    "ma",
    "master",
    "mode",
    "mtu",
    "multicast",
    "n",
    "name",
    "netns",
    "no",
    "nomaster",
    "nu",
    "numrxqueues",
    "numtxqueues",
    "parentdev",
    "promisc",
    "protodown",
    "qlen",
    "state",
    "t",
    "trailers",
    "tx",
    "txqlen",
    "txqueuelen",
    "ty",
    "type",
    "up",
    "vf",
    "vrf",
    "xdp",
    "xdpdrv",
    "xdpgeneric",
    "xdpoffload",
];

/// The documented rule, written independently of the loader.
fn follows_rule(name: &str, interface: bool) -> bool {
    let max = if interface { 15 } else { 64 };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    chars_ok
        && starts_ok
        && name.len() <= max
        && !(interface && DOCUMENTED_RESERVED.contains(&name))
}

/// `text` as a YAML double-quoted scalar that reads back as exactly `text`.
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A small topology: `node` with interface `iface` on segment `segment`, a static route and a
/// filter rule matching the interface in each direction; a fixed peer on the same segment.
fn topology(node: &str, segment: &str, iface: &str) -> String {
    let (n, s, i) = (yaml_quoted(node), yaml_quoted(segment), yaml_quoted(iface));
    format!(
        "segments:
  - {{ name: {s}, latency: 1ms }}
nodes:
  - name: {n}
    interfaces:
      - {{ name: {i}, segment: {s}, addresses: [192.0.2.1/24], mac: \"02:00:00:00:00:01\" }}
    routes:
      - {{ to: 203.0.113.0/24, via: 192.0.2.2 }}
    firewall:
      input:
        rules:
          - {{ in: {i}, proto: tcp, dport: 22, action: drop }}
      output:
        rules:
          - {{ out: {i}, proto: udp, dport: 53, action: drop }}
  - name: zz-peer-node
    interfaces:
      - {{ name: eth0, segment: {s}, addresses: [192.0.2.2/24] }}
"
    )
}

/// The placeholder used for the reference scripts.
const PLACEHOLDER: &str = "phx0";

/// nft's reading of a ruleset, as words: a `"` starts a string that runs to the next `"`, `#`
/// outside a string starts a comment (refused here: the ruleset has none), `{ } ;` are words.
fn nft_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut s = String::from('"');
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                s.push('"');
                words.push(s);
            }
            '#' => return Err("a comment outside a string".into()),
            '{' | '}' | ';' => words.push(c.to_string()),
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '"' | '#' | '{' | '}' | ';') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                words.push(s);
            }
        }
    }
    Ok(words)
}

/// iproute2's reading of a batch (`getcmdline` then `makeargs`), as lines of words; anything
/// that reading treats specially (a comment, a continuation, a quoted word) is refused.
fn batch_lines(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut lines = Vec::new();
    for line in text.split('\n') {
        if line.contains('#') {
            return Err(format!("`#` in {line:?}"));
        }
        if line.ends_with('\\') {
            return Err(format!("continuation in {line:?}"));
        }
        let words: Vec<String> = line
            .split([' ', '\t', '\r'])
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if words.iter().any(|w| w.starts_with(['"', '\''])) {
            return Err(format!("a quoted word in {line:?}"));
        }
        if !words.is_empty() {
            lines.push(words);
        }
    }
    Ok(lines)
}

/// Everything the emulator hands to `nft` and `ip`/`tc` for `text`, read back as words.
type Plan = (Vec<String>, Vec<(String, Vec<Vec<String>>)>);

fn plan(text: &str) -> Result<Plan, String> {
    let net = load_str("t.yaml", text)
        .map_err(|r| format!("{:?}", r.diagnostics))?
        .network;
    let node = &net.nodes[0];
    let nf = node.netfilter.as_deref().ok_or("no rules")?;
    let ruleset = nft_ruleset(&net, nf).map_err(|e| e.to_string())?;
    let layout = Layout::new(
        LabId::for_file(Path::new("/x/t.yaml"), Path::new("/y")),
        &net,
    );
    let mut scripts = Vec::new();
    for (ns, script) in build_scripts(&net, &layout).map_err(|e| e.to_string())? {
        scripts.push((ns, batch_lines(script.text())?));
    }
    Ok((nft_words(&ruleset)?, scripts))
}

/// (2): the plan for `iface` is the placeholder's plan with the placeholder's words replaced.
fn same_plan_as_placeholder(node: &str, segment: &str, iface: &str) -> Result<(), String> {
    let (nft, ip) = plan(&topology(node, segment, iface))?;
    let (nft0, ip0) = plan(&topology(node, segment, PLACEHOLDER))?;
    let swap = |w: &String| {
        if w == PLACEHOLDER {
            iface.to_owned()
        } else if *w == format!("\"{PLACEHOLDER}\"") {
            format!("\"{iface}\"")
        } else {
            w.clone()
        }
    };
    // In the reference, the placeholder is only ever a device operand (after `dev`/`name`).
    for (_, lines) in &ip0 {
        for line in lines {
            for (k, word) in line.iter().enumerate() {
                if word == PLACEHOLDER && !(k > 0 && matches!(line[k - 1].as_str(), "dev" | "name"))
                {
                    return Err(format!("the interface is not after dev/name in {line:?}"));
                }
            }
        }
    }
    let nft0: Vec<String> = nft0.iter().map(swap).collect();
    if nft != nft0 {
        return Err(format!("nft words differ:\n{nft:?}\n{nft0:?}"));
    }
    let ip0: Vec<(String, Vec<Vec<String>>)> = ip0
        .into_iter()
        .map(|(ns, lines)| {
            let lines = lines.iter().map(|l| l.iter().map(swap).collect()).collect();
            (ns, lines)
        })
        .collect();
    if ip != ip0 {
        return Err(format!("ip/tc words differ:\n{ip:?}\n{ip0:?}"));
    }
    Ok(())
}

fn evil_name() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = "aZ09_.-\"'\\\n\r\t ;#\0*/:$`{}é\u{2028}\u{7f}"
        .chars()
        .collect();
    let words: Vec<String> = DOCUMENTED_RESERVED
        .iter()
        .map(|w| (*w).to_owned())
        .chain(
            [
                "in",
                "out",
                "eth0",
                "on",
                "peer",
                "via",
                "e\"drop;oif\"q0",
                "eth0\\",
            ]
            .map(String::from),
        )
        .collect();
    prop_oneof![
        3 => "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,16}",
        2 => prop::sample::select(words),
        3 => prop::collection::vec(prop::sample::select(alphabet.clone()), 0..18)
            .prop_map(|v| v.into_iter().collect::<String>()),
        2 => ("[a-z][a-z0-9]{0,8}", prop::sample::select(alphabet), "[a-z0-9]{0,4}")
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        1 => any::<String>(),
        1 => "[a-z]{60,70}",
    ]
}

fn env_count(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn names_fuzz() {
    let cases = env_count("REACHLAB_NAMES_CASES", 5000);
    let tried = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let samples = std::sync::Mutex::new(Vec::<(String, String, String)>::new());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(
        &(evil_name(), evil_name(), evil_name()),
        |(node, segment, iface)| {
            tried.fetch_add(1, Ordering::Relaxed);
            let text = topology(&node, &segment, &iface);
            let ok = load_str("t.yaml", &text).is_ok();
            let wanted = follows_rule(&node, false)
                && follows_rule(&segment, false)
                && follows_rule(&iface, true)
                && node != "zz-peer-node";
            // (1) accepted exactly when the documented rule holds.
            prop_assert_eq!(ok, wanted, "names {:?} {:?} {:?}", node, segment, iface);
            if ok {
                accepted.fetch_add(1, Ordering::Relaxed);
                // (2) every name reaches nft and ip as one whole word.
                same_plan_as_placeholder(&node, &segment, &iface).map_err(TestCaseError::fail)?;
                let mut samples = samples.lock().expect("not poisoned");
                if samples.len() < 64 && !iface.chars().all(|c| c.is_ascii_alphanumeric()) {
                    samples.push((node, segment, iface));
                }
            }
            Ok(())
        },
    );
    println!(
        "names fuzz: {} inputs tried, {} accepted",
        tried.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let samples = samples.into_inner().expect("not poisoned");
    kernel_builds(&samples);
}

#[test]
fn the_issues_quote_name_is_refused_at_load() {
    refused_at(r#"e"drop;oif"q0"#, Code::BadName, "`\"` is not allowed");
}

#[test]
fn a_name_ending_in_backslash_is_refused_at_load() {
    refused_at("eth0\\", Code::BadName, "`\\` is not allowed");
}

#[test]
fn ip_keywords_and_kernel_names_are_refused_as_interface_names() {
    for word in [
        "br", "a", "d", "up", "dev", "name", "type", "lo", "all", "default", "*",
    ] {
        let text = topology("pc", "lan", word);
        let report = load_str("t.yaml", &text).expect_err(word);
        assert!(
            report.diagnostics.iter().any(|d| d.code == Code::BadName
                && d.hint.is_some()
                && d.span.is_some_and(|s| s.line == 6)),
            "{word}: {:?}",
            report.diagnostics
        );
    }
}

/// An interface named `name` is refused with `code` at its place (line 6, column 17).
fn refused_at(name: &str, code: Code, label: &str) {
    let text = topology("pc", "lan", name);
    let report = load_str("t.yaml", &text).expect_err("must be refused");
    let d = report
        .diagnostics
        .iter()
        .find(|d| d.span.is_some_and(|s| s.line == 6))
        .unwrap_or_else(|| panic!("no diagnostic at the interface: {:?}", report.diagnostics));
    let span = d.span.expect("positioned");
    assert_eq!((d.code, span.line, span.column), (code, 6, 17), "{d:?}");
    assert_eq!(d.label.as_deref(), Some(label));
    assert!(
        d.hint.as_deref().is_some_and(|h| h.contains("letters")),
        "{d:?}"
    );
}

#[test]
fn the_all_zero_and_group_macs_are_refused() {
    for mac in [
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:01",
    ] {
        let text = format!(
            "segments:\n  - name: lan\nnodes:\n  - name: pc\n    interfaces:\n      - {{ name: eth0, segment: lan, mac: \"{mac}\" }}\n"
        );
        let report = load_str("t.yaml", &text).expect_err(mac);
        let d = &report.diagnostics[0];
        let column = text
            .lines()
            .nth(5)
            .and_then(|l| l.find("\"0").or(l.find("\"f")))
            .expect("mac")
            + 1;
        assert_eq!(d.code, Code::BadValue, "{mac}: {d:?}");
        assert_eq!(
            d.span.map(|s| (s.line, s.column as usize)),
            Some((6, column)),
            "{mac}"
        );
        assert!(
            d.hint
                .as_deref()
                .is_some_and(|h| h.contains("02:00:00:00:00:01"))
        );
    }
    let text = "segments:\n  - name: lan\nnodes:\n  - name: pc\n    interfaces:\n      - { name: eth0, segment: lan, mac: \"02:00:00:00:00:01\" }\n";
    assert!(load_str("t.yaml", text).is_ok());
}

#[test]
fn the_reserved_names_are_the_documented_ones() {
    let doc = std::fs::read_to_string("docs/topology-format.md").expect("docs");
    for word in DOCUMENTED_RESERVED {
        assert!(
            doc.contains(&format!("`{word}`")),
            "`{word}` not in the docs"
        );
    }
    let mut code: Vec<&str> = reachlab::topology::naming::RESERVED_INTERFACE_NAMES.to_vec();
    let mut documented = DOCUMENTED_RESERVED.to_vec();
    code.sort_unstable();
    documented.sort_unstable();
    assert_eq!(code, documented);
}

// ---- (3) the kernel ----

/// A private state directory and topology file; `down` and removal on drop, also on failure.
struct Private {
    dir: PathBuf,
    file: PathBuf,
}

impl Private {
    fn new(tag: usize) -> Private {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = std::env::temp_dir().join(format!("reachlab-names-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("private directory");
        let dir = std::fs::canonicalize(&dir).expect("canonical");
        let file = dir.join("names.yaml");
        Private { dir, file }
    }

    fn reachlab(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_reachlab"))
            .args(args)
            .env("REACHLAB_STATE_DIR", self.dir.join("state"))
            .output()
            .expect("reachlab runs")
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.reachlab(&["emulate", "down", &self.file.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kernel_builds(samples: &[(String, String, String)]) {
    if !support::can_run("names_fuzz kernel builds", &[support::IP, support::NFT]) {
        return;
    }
    let wanted = env_count("REACHLAB_NAMES_KERNEL", 4) as usize;
    // Always the hardest accepted shapes, then fuzzed ones.
    let mut chosen: Vec<(String, String, String)> =
        vec![("a.b_c-9".into(), "s.e-g_0".into(), "e.x-y_z9.".into())];
    chosen.extend(samples.iter().take(wanted.saturating_sub(1)).cloned());
    for (k, (node, segment, iface)) in chosen.iter().enumerate() {
        let private = Private::new(k);
        let text = topology(node, segment, iface);
        std::fs::write(&private.file, &text).expect("file written");
        let up = private.reachlab(&["emulate", "up", &private.file.to_string_lossy()]);
        assert!(
            up.status.success(),
            "up of {iface:?}: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let net = load_str("t.yaml", &text).expect("valid").network;
        let layout = Layout::new(
            LabId::for_file(&private.file, &private.dir.join("state")),
            &net,
        );
        let ns = layout.node(net.nodes[0].id);
        let listed = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "list", "ruleset"])
            .output()
            .expect("nft runs");
        let listed = String::from_utf8_lossy(&listed.stdout);
        let rules: Vec<&str> = listed
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with("drop") || l.ends_with("accept") || l.ends_with("masquerade"))
            .filter(|l| !l.starts_with("type "))
            .collect();
        let quoted = format!("\"{iface}\"");
        assert_eq!(
            rules,
            [
                format!("iifname {quoted} tcp dport 22 drop"),
                format!("oifname {quoted} udp dport 53 drop"),
            ],
            "namespace {ns} holds other rules than the file's:\n{listed}"
        );
        let addr = Command::new("ip")
            .args(["-n", ns, "-o", "addr", "show", "dev", iface])
            .output()
            .expect("ip runs");
        assert!(
            String::from_utf8_lossy(&addr.stdout).contains("192.0.2.1/24"),
            "address of {iface:?} missing"
        );
        let down = private.reachlab(&["emulate", "down", &private.file.to_string_lossy()]);
        assert!(
            down.status.success(),
            "{}",
            String::from_utf8_lossy(&down.stderr)
        );
    }
    println!(
        "names fuzz: {} accepted name sets built in the kernel",
        chosen.len()
    );
}
