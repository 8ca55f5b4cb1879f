//! `reachlab show` must print the routing table the kernel builds from the same addresses and
//! `ip route add` commands. Each node of tests/kernel/*.yaml is built in a network namespace
//! of its own (named `reachlab-t<pid>-<n>`, removed afterwards), and `ip route` there is
//! compared line by line with reachlab's rendering.
//!
//! Needs root and iproute2. Without them the test says SKIPPED on stderr and passes, unless
//! `REACHLAB_REQUIRE_KERNEL=1` (set by .ci/run) turns the skip into a failure.

use std::path::Path;
use std::process::Command;

use reachlab::model::{Network, RouteKind};
use reachlab::render::ip_route;
use reachlab::topology::load_path;

fn kernel_available() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    if String::from_utf8_lossy(&root.stdout).trim() != "0" {
        return Err("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`ip` (iproute2) is missing: apt-get install -y iproute2".into()),
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var_os("REACHLAB_REQUIRE_KERNEL").is_some() {
        panic!("kernel test required but cannot run: {reason}");
    }
    eprintln!("SKIPPED kernel_ip_route: {reason}");
}

/// A namespace this test created; deleting it removes every interface inside it.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        // A leftover from a killed run of this same test (same pid is impossible, but be safe).
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        let mut full = vec!["ip", "netns", "exec", self.0.as_str()];
        full.extend_from_slice(args);
        let out = Command::new(full[0])
            .args(&full[1..])
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "{full:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Netns {
    /// A veth `name` whose peer stays in the same namespace, both up, so `name` has carrier.
    fn add_link(&self, name: &str, peer: &str) {
        self.exec(&[
            "ip", "link", "add", name, "type", "veth", "peer", "name", peer,
        ]);
        self.exec(&["ip", "link", "set", name, "up"]);
        self.exec(&["ip", "link", "set", peer, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds one node in its namespace exactly as the topology says, returns `ip route` output.
fn kernel_routes(net: &Network, node_index: usize, ns: &Netns) -> Vec<String> {
    let node = &net.nodes[node_index];
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    for (i, iface) in net.interfaces_of(node).enumerate() {
        ns.add_link(&iface.name, &format!("rlpeer{i}"));
        for addr in &iface.addresses {
            ns.exec(&["ip", "addr", "add", &addr.to_string(), "dev", &iface.name]);
        }
    }
    // Routes without a gateway first: one of them may be the link route a gateway needs
    // (fib_check_nh), as the emulator adds them.
    let (link, through): (Vec<_>, Vec<_>) = node
        .routes
        .routes()
        .iter()
        .filter(|r| r.kind == RouteKind::Static)
        .partition(|r| r.gateway.is_none());
    for route in link.into_iter().chain(through) {
        let dst = route.dst.to_string();
        let dev = net.interface(route.dev).name.clone();
        let metric = route.metric.to_string();
        let mut args = vec!["ip", "route", "add", dst.as_str()];
        let via = route.gateway.map(|g| g.to_string());
        if let Some(via) = &via {
            args.extend(["via", via.as_str()]);
        }
        args.extend(["dev", dev.as_str(), "metric", metric.as_str()]);
        ns.exec(&args);
    }
    // Routes without a next hop: `ip route add blackhole|unreachable|prohibit PREFIX`.
    for route in node.routes.rejects() {
        let dst = route.dst.to_string();
        let metric = route.metric.to_string();
        ns.exec(&[
            "ip",
            "route",
            "add",
            route.kind.word(),
            dst.as_str(),
            "metric",
            metric.as_str(),
        ]);
    }
    let out = ns.exec(&["ip", "route"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // iproute2 ends each line with a space; reachlab does not.
        .map(|l| l.trim_end().to_owned())
        .collect()
}

#[test]
fn show_matches_ip_route_in_a_namespace() {
    if let Err(reason) = kernel_available() {
        return skip_or_fail(&reason);
    }
    let dir = Path::new("tests/kernel");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/kernel")
        .map(|e| e.expect("entry").path())
        .collect();
    files.extend(
        std::fs::read_dir("topologies")
            .expect("topologies")
            .map(|e| e.expect("entry").path()),
    );
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    let mut compared = 0;
    for file in files {
        let net = load_path(&file)
            .unwrap_or_else(|r| panic!("{} must load: {:?}", file.display(), r.diagnostics))
            .network;
        for (index, node) in net.nodes.iter().enumerate() {
            let ns = Netns::new(format!("reachlab-t{}-{index}", std::process::id()));
            let kernel = kernel_routes(&net, index, &ns);
            let predicted = ip_route(&net, node);
            assert_eq!(
                predicted,
                kernel,
                "{}: node `{}`",
                file.display(),
                node.name
            );
            compared += kernel.len();
        }
    }
    eprintln!("kernel_ip_route: {compared} routes identical to the kernel's");
    assert!(compared > 20);
}

/// What validation refuses in routes, the kernel refuses too, with the message the hint quotes.
#[test]
fn kernel_refuses_the_routes_validation_refuses() {
    if let Err(reason) = kernel_available() {
        return skip_or_fail(&reason);
    }
    use reachlab::topology::{Code, load_str};
    let base = "segments: [{name: lan}]\nnodes:\n  - name: pc\n    interfaces: [{name: eth0, segment: lan, addresses: [192.168.1.10/24]}]\n    routes:\n";
    let cases: &[(&str, &[&str], Code, &str)] = &[
        (
            "      - {to: default, via: 192.168.2.1}\n",
            &["default", "via", "192.168.2.1"],
            Code::InvalidGateway,
            "Nexthop has invalid gateway",
        ),
        (
            "      - {to: 10.0.0.0/8, via: 192.168.1.255}\n",
            &["10.0.0.0/8", "via", "192.168.1.255"],
            Code::InvalidGateway,
            "Nexthop has invalid gateway",
        ),
        (
            "      - {to: 10.0.0.1/8, via: 192.168.1.1}\n",
            &["10.0.0.1/8", "via", "192.168.1.1"],
            Code::HostBitsSet,
            "Invalid prefix for given prefix length",
        ),
        (
            "      - {to: 192.168.1.0/24, via: 192.168.1.1}\n",
            &["192.168.1.0/24", "via", "192.168.1.1"],
            Code::DuplicateRoute,
            "File exists",
        ),
    ];
    let ns = Netns::new(format!("reachlab-t{}-refuse", std::process::id()));
    ns.add_link("eth0", "rlpeer0");
    ns.exec(&["ip", "addr", "add", "192.168.1.10/24", "dev", "eth0"]);
    for (route_yaml, ip_args, code, kernel_says) in cases {
        let report = load_str("case.yaml", &format!("{base}{route_yaml}"))
            .expect_err("validation refuses it");
        assert_eq!(
            report
                .diagnostics
                .iter()
                .map(|d| d.code)
                .collect::<Vec<_>>(),
            [*code],
            "{route_yaml}"
        );
        assert!(
            report.diagnostics[0]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains(kernel_says),
            "hint quotes the kernel"
        );
        let mut args = vec!["ip", "netns", "exec", ns.0.as_str(), "ip", "route", "add"];
        args.extend_from_slice(ip_args);
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("ip runs");
        assert!(!out.status.success(), "the kernel accepted {ip_args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(kernel_says),
            "{ip_args:?}: kernel said {stderr}"
        );
    }
}
