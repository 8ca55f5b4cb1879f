//! `reachlab emulate check` and `emulate ping` against the kernel, through the command line:
//! what they compare and what they say they did not. Needs root, iproute2 and nftables:
//! without them each test says SKIPPED on stderr and passes, unless `REACHLAB_REQUIRE_KERNEL=1`
//! turns the skip into a failure. Every test uses a private state directory, and removes every
//! lab it builds (a Drop guard runs `emulate down`).
//!
//! - `a_ping_is_compared_echo_by_echo`: a gateway that redirects pc to a router on the same
//!   LAN and drops what it would forward: the kernel answers only the echoes sent after pc
//!   followed a redirect, and the row covers every echo, not just the first.
//! - `max_rtt_is_never_said_to_agree_when_latency_is_not_emulated`: a 30 ms segment and a
//!   `max_rtt` expectation. Without `sch_netem` (read from the lab's switch with `tc`) the row
//!   and the JSON say "max_rtt not compared", and the summary counts it apart; with netem the
//!   kernel's RTT is measured (at least 60 ms) and compared.
//! - `a_ping_with_a_small_ttl_is_answered_by_the_router_where_it_runs_out`: `ping -t 2` over
//!   two routers gets "Time to live exceeded" from the second, from the address of its route
//!   back; `-t 3` gets replies with TTL 62, in the kernel as in the simulator.
//! - `traceroute_agrees_with_the_kernel_hop_by_hop`: traceroute 2.1 in the lab and `reachlab
//!   traceroute` give the same hops, probe by probe (who answered, `*`, `!H`, `!N`), to a host,
//!   a router, a rejected and a dropped address, a network a router has no route to, and a
//!   missing neighbour.
//! - `ctrl_c_while_probing_removes_the_lab_and_exits_130`: SIGINT to an `emulate check` whose
//!   probing lasts 10 s, once its lab is complete: it exits within seconds with 130, leaving
//!   no namespace and no state file.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

/// A private directory for the test's topology file and state directory; the guard removes
/// the lab of the file (what the state file lists), then the directory.
struct Scratch {
    dir: PathBuf,
    state: PathBuf,
    file: PathBuf,
    /// A `reachlab` this test started and has not reaped.
    child: Option<Child>,
}

impl Scratch {
    fn new(test: &str, topology: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "reachlab-emulate-check-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let file = dir.join("lab.yaml");
        std::fs::write(&file, topology).expect("topology file");
        let scratch = Scratch {
            state: dir.join("state"),
            dir,
            file,
            child: None,
        };
        let left = scratch.namespaces();
        assert!(
            left.is_empty(),
            "namespaces of this lab exist already: {left:?}"
        );
        scratch
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_reachlab"));
        c.args(args).env("REACHLAB_STATE_DIR", &self.state);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("reachlab runs")
    }

    fn file(&self) -> &str {
        self.file.to_str().expect("a UTF-8 path")
    }

    /// The prefix of every namespace of this lab.
    fn prefix(&self) -> String {
        let canonical = std::fs::canonicalize(&self.file).expect("file exists");
        format!(
            "reachlab-{}-",
            reachlab::emulate::LabId::for_file(&canonical, &self.state)
        )
    }

    fn namespaces(&self) -> Vec<String> {
        let prefix = self.prefix();
        reachlab::emulate::namespaces()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    fn state_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.state)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.state_files().is_empty() {
            let _ = self.run(&["emulate", "down", self.file()]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_rows(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array:\n{}", text(out)))
        .clone()
}

/// One echo's fate as the JSON gives it: `reply ttl=63`, `host-unreachable`, `none`.
fn echo(e: &Value) -> String {
    match e["answer"].as_str() {
        Some("reply") => format!("reply ttl={}", e["ttl"]),
        Some(other) => other.to_owned(),
        None => panic!("an echo without an answer: {e}"),
    }
}

const REDIRECT: &str = "\
name: redirect-first-echo
segments:
  - name: lan
  - name: wan
nodes:
  - name: pc
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.0.2.10/24] }
    routes:
      - { to: default, via: 192.0.2.1 }
  - name: r1
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.0.2.1/24] }
    routes:
      - { to: 198.51.100.0/24, via: 192.0.2.2 }
    firewall:
      forward:
        policy: drop
  - name: r2
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.0.2.2/24] }
      - { name: eth1, segment: wan, addresses: [198.51.100.1/24] }
  - name: srv
    interfaces:
      - { name: eth0, segment: wan, addresses: [198.51.100.10/24] }
    routes:
      - { to: default, via: 198.51.100.1 }
";

#[test]
fn a_ping_is_compared_echo_by_echo() {
    if !can_run("a_ping_is_compared_echo_by_echo") {
        return;
    }
    let lab = Scratch::new("echoes", REDIRECT);
    // r1 redirects pc to r2 (same LAN) and drops the echo itself. pc applies a redirect only
    // once it has r2's MAC, so the first redirect just starts ARP: the kernel answers from the
    // third echo on (as iputils' ping shows there). A comparison of the first echo alone sees
    // two timeouts.
    let out = lab.run(&[
        "emulate",
        "ping",
        "--format",
        "json",
        lab.file(),
        "pc",
        "srv",
        "-c",
        "3",
    ]);
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 1, "{}", text(&out));
    let row = &rows[0];
    let kernel: Vec<String> = row["kernel_echoes"]
        .as_array()
        .unwrap_or_else(|| panic!("no kernel_echoes:\n{}", text(&out)))
        .iter()
        .map(echo)
        .collect();
    let simulated: Vec<String> = row["simulated_echoes"]
        .as_array()
        .unwrap_or_else(|| panic!("no simulated_echoes:\n{}", text(&out)))
        .iter()
        .map(echo)
        .collect();
    assert_eq!(
        kernel.len(),
        3,
        "three echoes sent: {kernel:?}\n{}",
        text(&out)
    );
    assert_eq!(simulated.len(), 3, "{simulated:?}");
    // What makes this test worth running: the kernel treats the echoes differently.
    assert!(
        kernel[0] != "reply ttl=63" && kernel[1..].iter().any(|e| e == "reply ttl=63"),
        "expected the kernel to drop the first echo and answer a later one: {kernel:?}"
    );
    let differences: Vec<&str> = row["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (i, (s, k)) in simulated.iter().zip(&kernel).enumerate() {
        let named = differences
            .iter()
            .any(|d| d.starts_with(&format!("echo {}:", i + 1)));
        assert_eq!(
            named,
            s != k,
            "echo {}: predicted {s}, kernel {k}; differences {differences:?}",
            i + 1
        );
    }
    let agree = simulated == kernel;
    assert_eq!(row["agree"], agree, "{}", text(&out));
    assert_eq!(
        out.status.code(),
        Some(if agree { 0 } else { 1 }),
        "{}",
        text(&out)
    );

    // Every echo counted on both sides in the row: r2's own LAN address answers them all.
    let out = lab.run(&["emulate", "ping", lab.file(), "pc", "192.0.2.2", "-c", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with("pc ping 192.0.2.2"))
        .unwrap_or_else(|| panic!("no row:\n{}", text(&out)));
    assert_eq!(
        row.matches("reply 3/3 ttl=64").count(),
        2,
        "predicted and kernel columns: {row}"
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(lab.namespaces().is_empty(), "{:?}", lab.namespaces());
}

const WAN: &str = "\
name: wan-latency
segments:
  - name: lan
  - name: wan
    latency: 30ms
nodes:
  - name: pc
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.0.2.10/24] }
    routes:
      - { to: default, via: 192.0.2.1 }
  - name: r1
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.0.2.1/24] }
      - { name: eth1, segment: wan, addresses: [198.51.100.1/24] }
  - name: srv
    interfaces:
      - { name: eth0, segment: wan, addresses: [198.51.100.10/24] }
    routes:
      - { to: default, via: 198.51.100.1 }
expect:
  - { from: pc, ping: srv, outcome: reply, ttl: 63, max_rtt: 100ms }
  - { from: pc, ping: 192.0.2.1, outcome: reply, ttl: 64 }
";

#[test]
fn max_rtt_is_never_said_to_agree_when_latency_is_not_emulated() {
    if !can_run("max_rtt_is_never_said_to_agree_when_latency_is_not_emulated") {
        return;
    }
    let lab = Scratch::new("max-rtt", WAN);
    let up = lab.run(&["emulate", "up", lab.file()]);
    assert!(up.status.success(), "{}", text(&up));
    let up_text = String::from_utf8_lossy(&up.stdout).into_owned();
    let switch = up_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("switch (a bridge per segment): "))
        .unwrap_or_else(|| panic!("no switch namespace in:\n{up_text}"))
        .to_owned();
    assert!(switch.starts_with(&lab.prefix()), "{switch}");
    // What the kernel really has on the bridge ports, not what the emulator says it set.
    let qdiscs = Command::new("ip")
        .args(["netns", "exec", &switch, "tc", "qdisc", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let netem = qdiscs.contains("netem");

    let json = lab.run(&["emulate", "check", "--format", "json", lab.file()]);
    let plain = lab.run(&["emulate", "check", lab.file()]);
    let down = lab.run(&["emulate", "down", lab.file()]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(lab.namespaces().is_empty(), "{:?}", lab.namespaces());

    let rows = json_rows(&json);
    let row = rows
        .iter()
        .find(|r| r["probe"] == "pc ping srv")
        .unwrap_or_else(|| panic!("no row for pc ping srv:\n{}", text(&json)));
    let other = rows
        .iter()
        .find(|r| r["probe"] == "pc ping 192.0.2.1")
        .expect("the second expectation");
    assert_eq!(other["not_compared"], serde_json::json!([]), "{other}");
    // max_rtt asks for the steady state: two echoes.
    assert_eq!(
        row["kernel_echoes"].as_array().map(Vec::len),
        Some(2),
        "{row}"
    );
    let stdout = String::from_utf8_lossy(&plain.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("pc ping srv "))
        .unwrap_or_else(|| panic!("no row:\n{}", text(&plain)));
    if netem {
        eprintln!("this kernel has sch_netem: the RTT is compared");
        assert_eq!(row["not_compared"], serde_json::json!([]), "{row}");
        let rtt = row["kernel_rtt_ms"].as_f64().expect("a kernel RTT");
        assert!(rtt >= 60.0, "30 ms each way, measured {rtt} ms");
        assert!(line.contains("rtt predicted"), "{line}");
    } else {
        eprintln!("this kernel has no sch_netem ({qdiscs:?}): max_rtt is not compared");
        assert_eq!(row["not_compared"], serde_json::json!(["max_rtt"]), "{row}");
        let reason = row["not_compared_reasons"][0].as_str().unwrap_or_default();
        assert!(
            reason
                .starts_with("max_rtt not compared: latency could not be emulated (segment `wan`"),
            "{reason}"
        );
        assert!(
            line.contains("max_rtt not compared: latency could not be emulated (segment `wan`"),
            "{line}"
        );
        assert!(!line.contains("  yes  "), "an unqualified yes: {line}");
        assert!(
            stdout.contains(
                ": 1 agree with the kernel, 1 agree on all but what was not compared (max_rtt"
            ),
            "the summary counts it apart:\n{stdout}"
        );
    }
}

/// `WAN` with a `srv` that drops everything it is sent, and 120 expectations of a TCP
/// connection to it: 5 rounds of 24 concurrent probes of 2 s each, a probing phase of 10 s.
fn silent() -> String {
    let mut text = WAN
        .replace(
            "      - { to: default, via: 198.51.100.1 }\nexpect:",
            "      - { to: default, via: 198.51.100.1 }\n    firewall:\n      input:\n        policy: drop\nexpect:",
        )
        .lines()
        .take_while(|l| !l.starts_with("  - { from: pc, ping"))
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    for port in 1001..=1120 {
        text.push_str(&format!(
            "  - {{ from: pc, tcp: 198.51.100.10, port: {port}, outcome: timeout }}\n"
        ));
    }
    text
}

#[test]
fn ctrl_c_while_probing_removes_the_lab_and_exits_130() {
    if !can_run("ctrl_c_while_probing_removes_the_lab_and_exits_130") {
        return;
    }
    let topology = silent();
    assert!(topology.contains("policy: drop"), "{topology}");
    let mut lab = Scratch::new("sigint", &topology);
    let child = lab
        .command(&["emulate", "check", lab.file()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reachlab starts");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    lab.child = Some(child);
    let complete = |lab: &Scratch| {
        lab.state_files().iter().any(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v["complete"] == true)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !complete(&lab) {
        assert!(Instant::now() < deadline, "the lab never became complete");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Into the probing phase (the lab is built, the echoes go out).
    std::thread::sleep(Duration::from_millis(500));
    let child = lab.child.as_mut().expect("child");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "it ended before the signal"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    lab.child = None;
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(took < Duration::from_secs(3), "took {took:?} to stop");
    assert!(stderr.contains("interrupted"), "stderr: {stderr}");
    assert!(lab.namespaces().is_empty(), "left: {:?}", lab.namespaces());
    assert!(
        lab.state_files().is_empty(),
        "left: {:?}",
        lab.state_files()
    );
}

/// The two routers of the TTL tests (tests/kernel/two-routers.yaml).
const TWO_ROUTERS: &str = include_str!("kernel/two-routers.yaml");

/// `ping -t N` in the kernel and in the simulator, echo by echo: with TTL 2 the second router,
/// r2, has none left to forward the echo and answers "Time to live exceeded" from the address
/// its route back to pc leaves by (198.51.100.2, not the 203.0.113.1 the echo was going
/// toward); with TTL 3 the echo arrives and the reply comes back with TTL 62.
#[test]
fn a_ping_with_a_small_ttl_is_answered_by_the_router_where_it_runs_out() {
    if !can_run("a_ping_with_a_small_ttl_is_answered_by_the_router_where_it_runs_out") {
        return;
    }
    let lab = Scratch::new("ttl", TWO_ROUTERS);
    let ping = |ttl: &str| {
        let out = lab.run(&[
            "emulate",
            "ping",
            "--format",
            "json",
            lab.file(),
            "pc",
            "srv",
            "-c",
            "2",
            "-t",
            ttl,
        ]);
        let rows = json_rows(&out);
        assert_eq!(rows.len(), 1, "{}", text(&out));
        rows[0].clone()
    };
    let short = ping("2");
    assert_eq!(short["differences"], serde_json::json!([]), "{short}");
    for side in ["kernel_echoes", "simulated_echoes"] {
        let echoes = short[side].as_array().expect("echoes");
        assert_eq!(echoes.len(), 2, "{short}");
        for e in echoes {
            assert_eq!(e["answer"], "ttl-exceeded", "{side}: {short}");
            assert_eq!(e["from"], "198.51.100.2", "{side}: {short}");
        }
    }
    let enough = ping("3");
    assert_eq!(enough["differences"], serde_json::json!([]), "{enough}");
    let kernel: Vec<String> = enough["kernel_echoes"]
        .as_array()
        .expect("echoes")
        .iter()
        .map(echo)
        .collect();
    assert_eq!(kernel, ["reply ttl=62", "reply ttl=62"], "{enough}");
}

/// A trace as hops of probes: each `*`, or the address that answered with its annotation
/// (`198.51.100.2 !H`), without the times.
type Hops = Vec<Vec<String>>;

/// The hops of `traceroute -n` as it prints them.
fn kernel_hops(text: &str) -> Hops {
    text.lines()
        .skip(1)
        .map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().skip(1).collect();
            let mut probes = Vec::new();
            let mut from = String::new();
            for (i, token) in tokens.iter().enumerate() {
                if *token == "*" {
                    probes.push("*".to_owned());
                } else if token.parse::<std::net::Ipv4Addr>().is_ok() {
                    from = (*token).to_owned();
                } else if tokens.get(i + 1) == Some(&"ms") {
                    let note = tokens.get(i + 2).filter(|t| t.starts_with('!'));
                    probes.push(match note {
                        Some(note) => format!("{from} {note}"),
                        None => from.clone(),
                    });
                }
            }
            probes
        })
        .collect()
}

/// The hops of `reachlab traceroute --format json`.
fn simulated_hops(json: &Value) -> Hops {
    json["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|hop| {
            hop["probes"]
                .as_array()
                .expect("probes")
                .iter()
                .map(|p| match (p["from"].as_str(), p["note"].as_str()) {
                    (None, _) => "*".to_owned(),
                    (Some(from), None) => from.to_owned(),
                    (Some(from), Some(note)) => format!("{from} {note}"),
                })
                .collect()
        })
        .collect()
}

/// `reachlab traceroute` against traceroute 2.1 in the lab, hop by hop and probe by probe:
/// the destination answering at hop 3; a FORWARD reject with host-unreachable (hop 2 answers
/// "Time to live exceeded" first: the TTL is checked before FORWARD, then `!H` at hop 3); a
/// drop (`* * *` from hop 3 on); a router without a route (`!N`); a loop (r1, r2, r1, r2: each
/// answers from the address of its route back to pc, r1 from 192.0.2.1 though the probe
/// came in on its other side); an address nobody has on the sender's own LAN (`!H` from the
/// sender itself, after ARP gives up).
#[test]
fn traceroute_agrees_with_the_kernel_hop_by_hop() {
    if !support::can_run(
        "traceroute_agrees_with_the_kernel_hop_by_hop",
        &[support::IP, support::NFT, support::TRACEROUTE],
    ) {
        return;
    }
    let lab = Scratch::new("traceroute", TWO_ROUTERS);
    let up = lab.run(&["emulate", "up", lab.file()]);
    assert!(up.status.success(), "{}", text(&up));
    let net = reachlab::topology::load_path(std::path::Path::new(lab.file()))
        .expect("valid")
        .network;
    let canonical = std::fs::canonicalize(&lab.file).expect("file exists");
    let layout = reachlab::emulate::Layout::new(
        reachlab::emulate::LabId::for_file(&canonical, &lab.state),
        &net,
    );
    let pc = layout
        .node(net.node_by_name("pc").expect("pc").id)
        .to_owned();
    for target in [
        "203.0.113.10",
        "198.51.100.2",
        "203.0.113.20",
        "203.0.113.30",
        "10.98.0.1",
        "10.99.0.1",
        "192.0.2.99",
    ] {
        let kernel = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pc,
                "traceroute",
                "-n",
                "-m",
                "4",
                "-w",
                "1",
                target,
            ])
            .output()
            .expect("traceroute runs");
        assert!(kernel.status.success(), "{}", text(&kernel));
        let kernel = kernel_hops(&String::from_utf8_lossy(&kernel.stdout));
        let simulated = lab.run(&[
            "traceroute",
            "--format",
            "json",
            "-m",
            "4",
            lab.file(),
            "pc",
            target,
        ]);
        assert!(simulated.status.success(), "{}", text(&simulated));
        let json: Value = serde_json::from_slice(&simulated.stdout).expect("JSON");
        assert_eq!(simulated_hops(&json), kernel, "traceroute to {target}");
    }
    let text_out = lab.run(&["traceroute", "-m", "4", lab.file(), "pc", "203.0.113.20"]);
    let printed = String::from_utf8_lossy(&text_out.stdout);
    assert!(
        printed.starts_with(
            "traceroute to 203.0.113.20 (203.0.113.20), 4 hops max, 60 byte packets\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("\n 3  198.51.100.2 (198.51.100.2)  "),
        "{printed}"
    );
    assert!(printed.trim_end().ends_with(" ms !H"), "{printed}");
}

/// Whether the test may run (root, iproute2, nftables): see `support`.
fn can_run(test: &str) -> bool {
    support::can_run(test, &[support::IP, support::NFT])
}
