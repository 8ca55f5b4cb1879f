//! A node's `ip_addr:` and `ip_route:` files, captured from a real kernel, must give the node
//! exactly the addresses, MACs and routing table configured there. Each case builds a network
//! namespace of its own (named `reachlab-ipj<pid>-<case>`, deleted afterwards, also when the
//! test fails; the root namespace is never configured), captures `ip -j addr` and
//! `ip -j route show table all` there into a folder with a topology naming the files, loads
//! it, and compares the lowered node with what was configured and with the kernel's own
//! `ip route`; the warnings and errors are those docs/topology-format.md ("Addresses and routes
//! from `ip -j`") promises.
//!
//! Needs root and iproute2. Without them the test says SKIPPED on stderr and passes, unless
//! `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a failure.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use reachlab::render::ip_route;
use reachlab::topology::{Code, Diagnostic, load_path};

mod support;

/// A namespace this test created, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(case: &str) -> Self {
        let name = format!("reachlab-ipj{}-{case}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let netns = Netns(name);
        netns.ip(&["netns", "add", &netns.0], false);
        netns
    }

    /// Runs `ip ARGS` in the namespace (or, with `global`, as given); it must succeed.
    fn ip(&self, args: &[&str], inside: bool) -> String {
        let mut command = Command::new("ip");
        if inside {
            command.args(["-n", &self.0]);
        }
        let out = command.args(args).output().expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Runs each line of `script` as `ip -n NS LINE`.
    fn script(&self, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let args: Vec<&str> = line.split_whitespace().collect();
            self.ip(&args, true);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A folder of this test's, deleted when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(case: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("reachlab-ipj{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Folder(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("written");
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Captures the namespace's `ip -j -p addr` and `ip -j route show table all` into `folder`
/// beside a topology whose node `h` lists `interfaces` (YAML flow maps) and names the files.
fn capture(ns: &Netns, folder: &Folder, interfaces: &[&str]) -> PathBuf {
    folder.write("addr.json", &ns.ip(&["-j", "-p", "addr"], true));
    folder.write(
        "route.json",
        &ns.ip(&["-j", "route", "show", "table", "all"], true),
    );
    let mut topology = String::from(
        "segments: [{ name: lan }, { name: b }]\nnodes:\n  - name: h\n    interfaces:\n",
    );
    for iface in interfaces {
        topology.push_str(&format!("      - {iface}\n"));
    }
    topology.push_str("    ip_addr: addr.json\n    ip_route: route.json\n");
    folder.write("lab.yaml", &topology)
}

fn messages(diagnostics: &[Diagnostic], errors: bool) -> Vec<String> {
    let mut all: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error() == errors)
        .map(|d| d.message.clone())
        .collect();
    all.sort();
    all
}

/// The text a diagnostic points at, in the file it names.
fn pointed(d: &Diagnostic) -> String {
    let (Some(file), Some(span)) = (&d.file, d.span) else {
        return String::new();
    };
    file.snippet(span).to_owned()
}

#[test]
fn a_captured_node_is_what_was_configured() {
    if !support::can_run("kernel_ip_json", &[support::IP]) {
        return;
    }
    let ns = Netns::new("main");
    ns.script(
        "
        link set lo up
        link add veth0 type veth peer name veth1
        link add veth2 type veth peer name veth3
        link set veth0 address 02:aa:00:00:00:01
        link set veth2 address 02:aa:00:00:00:02
        link set veth0 up
        link set veth1 up
        link set veth2 up
        link set veth3 up
        addr add 10.0.0.2/24 dev veth0
        addr add 10.0.0.3/24 dev veth0
        addr add 10.1.0.1/16 dev veth0
        addr add 172.16.0.1/30 dev veth2
        addr add 192.168.5.1/32 dev veth2
        -6 addr add 2001:db8::1/64 dev veth0 nodad
        route add default via 10.0.0.1
        route add 10.50.0.0/16 via 10.0.0.1 metric 100
        route add 10.51.0.0/16 dev veth2
        route add blackhole 10.60.0.0/16
        route add unreachable 10.61.0.0/16
        route add prohibit 10.62.0.0/16 metric 5
        route add 10.70.0.0/16 via 10.0.0.1 table 100
        ",
    );
    let folder = Folder::new("main");
    let topology = capture(
        &ns,
        &folder,
        &[
            "{ name: veth0, segment: lan }",
            "{ name: veth2, segment: b }",
        ],
    );
    let loaded = load_path(&topology)
        .unwrap_or_else(|r| panic!("the capture must load: {:#?}", r.diagnostics));
    let net = &loaded.network;
    let node = &net.nodes[0];
    let ifaces: Vec<(String, String, Vec<String>)> = net
        .interfaces_of(node)
        .map(|i| {
            let addresses = i.addresses.iter().map(ToString::to_string).collect();
            (i.name.clone(), i.mac.to_string(), addresses)
        })
        .collect();
    // As configured; the kernel keeps a subnet's primary address before its secondaries.
    let configured = |name: &str, mac: &str, addresses: &[&str]| {
        let addresses = addresses.iter().map(|a| a.to_string()).collect();
        (name.to_owned(), mac.to_owned(), addresses)
    };
    assert_eq!(
        ifaces,
        [
            configured(
                "veth0",
                "02:aa:00:00:00:01",
                &["10.0.0.2/24", "10.1.0.1/16", "10.0.0.3/24"]
            ),
            configured(
                "veth2",
                "02:aa:00:00:00:02",
                &["172.16.0.1/30", "192.168.5.1/32"]
            ),
        ]
    );
    // The main table, as the kernel prints it (iproute2 ends each line with a space).
    let kernel: Vec<String> = ns
        .ip(&["route"], true)
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    assert_eq!(ip_route(net, node), kernel);
    for configured in [
        "default via 10.0.0.1 dev veth0",
        "10.50.0.0/16 via 10.0.0.1 dev veth0 metric 100",
        "10.51.0.0/16 dev veth2 scope link",
        "blackhole 10.60.0.0/16",
        "unreachable 10.61.0.0/16",
        "prohibit 10.62.0.0/16 metric 5",
    ] {
        assert!(
            kernel.iter().any(|l| l == configured),
            "{configured}: {kernel:?}"
        );
    }
    let default = node
        .routes
        .routes()
        .iter()
        .find(|r| r.dst.prefix_len() == 0);
    assert!(
        default.is_some_and(|r| r.origin.file.ends_with("route.json")),
        "{default:?}"
    );
    assert_eq!(
        messages(&loaded.report.diagnostics, false),
        [
            "node `h`: 1 route of table `100` is left out: tables other than `main` serve `ip rule`s only, which reachlab does not read",
            "node `h`: IPv6 address 2001:db8::1/64 is not modelled: reachlab is IPv4-only",
            "node `h`: interface `veth1` (no IPv4 address) is not under `interfaces:`; it is left out",
            "node `h`: interface `veth3` (no IPv4 address) is not under `interfaces:`; it is left out",
        ]
    );
}

#[test]
fn what_the_model_would_get_wrong_is_refused_at_its_place() {
    if !support::can_run("kernel_ip_json", &[support::IP]) {
        return;
    }
    let ns = Netns::new("refused");
    ns.script(
        "
        link set lo up
        link add veth0 type veth peer name veth1
        link add veth2 type veth peer name veth3
        link set veth0 up
        link set veth1 up
        link set veth2 up
        link set veth3 up
        addr add 10.0.0.2/24 dev veth0
        addr add 10.0.0.3/24 dev veth0
        addr add 10.9.0.1 peer 10.9.0.2 dev veth2
        addr add 10.8.0.1/24 dev veth1
        route add 10.81.0.0/16 nexthop via 10.0.0.1 nexthop via 10.0.0.5
        route add 10.82.0.0/16 dev veth0 src 10.0.0.3
        route add 10.83.0.0/16 via 10.0.0.1 mtu lock 1400
        ",
    );
    let folder = Folder::new("refused");
    let topology = capture(
        &ns,
        &folder,
        &[
            "{ name: veth0, segment: lan }",
            "{ name: veth2, segment: b }",
            "{ name: veth1, segment: b, addresses: [10.7.0.1/24] }",
        ],
    );
    let report = load_path(&topology).expect_err("the capture must not load");
    let errors: Vec<(Code, String, String)> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let file = d.file.as_ref().map_or("lab.yaml".to_owned(), |f| {
                Path::new(f.name())
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned())
            });
            (d.code, file, pointed(d))
        })
        .collect();
    let expected = [
        (Code::Unsupported, "addr.json", "\"10.9.0.2\""),
        (Code::BadValue, "lab.yaml", ""),
        (Code::Unsupported, "route.json", "\"nexthops\""),
        (Code::Unsupported, "route.json", "\"10.0.0.3\""),
        (Code::Unsupported, "route.json", "\"mtu\""),
    ];
    let expected: Vec<(Code, String, String)> = expected
        .iter()
        .map(|(c, f, t)| (*c, f.to_string(), t.to_string()))
        .collect();
    let mut sorted = errors.clone();
    sorted.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    let mut want = expected.clone();
    want.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    assert_eq!(sorted, want, "{:#?}", report.diagnostics);
    let both = report
        .diagnostics
        .iter()
        .find(|d| d.code == Code::BadValue)
        .expect("the twice-given addresses");
    assert!(
        both.message.contains("`veth1` has addresses here and in")
            && both.message.contains("10.8.0.1/24"),
        "{both:?}"
    );
}
