//! Every `expect:` entry of topologies/*.yaml is what the real Linux kernel does. Each topology
//! is built in network namespaces: one per node (`reachlab-p<pid>-<node index>`) and one switch
//! namespace (`reachlab-p<pid>-sw`) holding a Linux bridge per segment (`rlbr<segment index>`).
//! Each interface is a veth pair: the node's end has the interface's name and MAC and sits in
//! the node's namespace, the other end is a port of the segment's bridge. Addresses, static
//! routes, `ip_forward` and (for `os: windows`) `ip_default_ttl=128` are set as the file says,
//! and every listener is a small python3 server in its node's namespace. Then each probe runs
//! for real from its node's namespace (`ping`, or a python3 socket client for ssh, curl, tcp and
//! udp) and its result, classified into the outcome vocabulary, must equal the file's.
//!
//! A node with `nat:` or `firewall:` rules gets them in its namespace as one atomic
//! `iptables-restore` of the `nat` and `filter` tables (printed on stderr for the log); the
//! switch namespace's bridges do not call iptables (`bridge-nf-call-iptables=0`), as a switch
//! does not filter.
//!
//! Not emulated: segment latency, loss (so `max_rtt` is not checked). `rp_filter` is pinned to
//! the kernel's default, 0, so the host's setting does not leak in. ICMP errors are not rate
//! limited (`icmp_ratelimit=0`), so that earlier probes do not silence a router for later ones.
//! Connection-tracking entries of earlier probes stay (a probe opens a new connection, from a
//! new ephemeral port).
//!
//! Needs root, iproute2, ping (iputils) and python3, and iptables-restore for topologies with
//! rules. Without them the test says SKIPPED on stderr and passes, unless
//! `REACHLAB_REQUIRE_KERNEL=1` turns the skip into a failure.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use reachlab::model::{
    Chain, Expectation, L4, Listener, Match, NatAction, NatHook, Netfilter, Network, Node, Outcome,
    Probe, RejectWith, RouteKind, Service, Verdict,
};
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
        Ok(o) if o.status.success() => {}
        _ => return Err("`ip` (iproute2) is missing: apt-get install -y iproute2".into()),
    }
    let ping = Command::new("ping").arg("-V").output();
    let python = Command::new("python3").args(["-c", "pass"]).output();
    match (ping, python) {
        (Ok(p), Ok(y)) if p.status.success() && y.status.success() => Ok(()),
        _ => Err("`ping` or `python3` is missing: apt-get install -y iputils-ping python3".into()),
    }
}

/// `iptables-restore`, needed only by topologies with `nat:` or `firewall:` rules.
fn iptables_available() -> Result<(), String> {
    match Command::new("iptables-restore").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`iptables-restore` is missing: apt-get install -y iptables".into()),
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var_os("REACHLAB_REQUIRE_KERNEL").is_some() {
        panic!("kernel test required but cannot run: {reason}");
    }
    eprintln!("SKIPPED kernel_probes: {reason}");
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A namespace this test created; deleting it removes every interface inside it.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        // A leftover from a killed run of this same test (same pid is unlikely, but be safe).
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.0.as_str()]).args(args);
        command
    }

    /// Runs `args` in the namespace and insists that it succeeds.
    fn exec(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("ip netns exec runs");
        assert!(
            out.status.success(),
            "in {}: {args:?}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn sysctl(&self, setting: &str) {
        self.exec(&["sysctl", "-q", "-w", setting]);
    }

    /// Loads `ruleset` with one `iptables-restore` (atomic: all tables or none).
    fn iptables_restore(&self, ruleset: &str) {
        let mut child = self
            .command(&["iptables-restore"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("iptables-restore starts");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(ruleset.as_bytes())
            .expect("ruleset written");
        let out = child.wait_with_output().expect("iptables-restore ends");
        assert!(
            out.status.success(),
            "in {}: iptables-restore refused the ruleset: {}\n{ruleset}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// One topology built in namespaces. Dropping it kills and reaps the listener processes it
/// started (by their own pids), then deletes the namespaces.
struct Lab {
    listeners: Vec<Child>,
    nodes: Vec<Netns>,
    switch: Netns,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.listeners {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The fields drop next: every node namespace, then the switch.
    }
}

/// A TCP or UDP server for one listener. Prints READY once bound.
const SERVER: &str = r"
import socket, sys
from http import HTTPStatus
proto, bind, port, kind, text, status, ctype = sys.argv[1:8]
if proto == 'udp':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, int(port)))
    print('READY', flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, int(port)))
s.listen(16)
print('READY', flush=True)
while True:
    conn, _ = s.accept()
    try:
        conn.settimeout(2)
        if kind in ('ssh', 'banner'):
            conn.sendall(text.encode() + b'\r\n')
        elif kind == 'http':
            request = b''
            while b'\r\n\r\n' not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            try:
                reason = HTTPStatus(int(status)).phrase
            except ValueError:
                reason = ''
            body = text.encode()
            head = f'HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n'
            conn.sendall(head.encode() + body)
    except OSError:
        pass
    finally:
        conn.close()
";

/// A client for ssh, curl, tcp and udp probes. Prints one line: CONNECTED, BANNER ..., HTTP ...,
/// ECHO ..., TIMEOUT, or the errno name followed by the ICMP error the kernel queued (type,
/// code, sender) when there is one (`IP_RECVERR`).
const CLIENT: &str = r"
import errno, socket, struct, sys
kind, addr, port, path, host = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
IP_RECVERR, MSG_ERRQUEUE = 11, 0x2000

def icmp(s):
    s.setblocking(False)
    try:
        _, ancillary, _, _ = s.recvmsg(2048, 1024, MSG_ERRQUEUE)
    except OSError:
        return ''
    for level, ctype, data in ancillary:
        if level == socket.IPPROTO_IP and ctype == IP_RECVERR and len(data) >= 24:
            _, origin, itype, code = struct.unpack_from('=IBBB', data)
            return f' icmp type={itype} code={code} from={socket.inet_ntoa(data[20:24])}'
    return ''

def failed(s, e):
    name = errno.errorcode.get(e.errno, str(e.errno))
    print(f'{name}{icmp(s)} ({e.strerror})')
    sys.exit(0)

udp = kind == 'udp'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
s.settimeout(5)
try:
    s.connect((addr, port))
    if udp:
        s.send(b'reachlab probe\n')
        print('ECHO', s.recv(65535))
    elif kind == 'tcp':
        print('CONNECTED')
    elif kind == 'ssh':
        s.settimeout(3)
        line = s.makefile('rb').readline()
        print(('BANNER ' if line.startswith(b'SSH-') else 'NO-BANNER ') + repr(line))
    else:
        s.sendall(f'GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nConnection: close\r\n\r\n'.encode())
        s.settimeout(3)
        line = s.makefile('rb').readline()
        print(('HTTP ' if line.startswith(b'HTTP/') else 'NO-HTTP ') + repr(line))
except TimeoutError:
    print('TIMEOUT')
except OSError as e:
    failed(s, e)
";

fn build(net: &Network) -> Lab {
    let pid = std::process::id();
    let mut lab = Lab {
        listeners: Vec::new(),
        nodes: Vec::new(),
        switch: Netns::new(format!("reachlab-p{pid}-sw")),
    };
    lab.switch.exec(&["ip", "link", "set", "lo", "up"]);
    // With br_netfilter loaded, bridged IPv4 frames would go through the switch namespace's
    // iptables hooks: a switch does not filter.
    if lab
        .switch
        .command(&["test", "-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"])
        .status()
        .is_ok_and(|s| s.success())
    {
        lab.switch.sysctl("net.bridge.bridge-nf-call-iptables=0");
    }
    for (index, segment) in net.segments.iter().enumerate() {
        let bridge = format!("rlbr{index}");
        let mtu = segment.mtu.to_string();
        lab.switch
            .exec(&["ip", "link", "add", &bridge, "type", "bridge"]);
        lab.switch
            .exec(&["ip", "link", "set", &bridge, "mtu", &mtu, "up"]);
    }
    for (index, node) in net.nodes.iter().enumerate() {
        let ns = Netns::new(format!("reachlab-p{pid}-{index}"));
        build_node(net, node, &ns, &lab.switch);
        lab.nodes.push(ns);
    }
    for node in &net.nodes {
        for listener in &node.listeners {
            start_listener(&mut lab, node, listener);
        }
    }
    lab
}

/// Sysctls, interfaces (plugged into their bridges in `switch`), addresses and static routes.
fn build_node(net: &Network, node: &Node, ns: &Netns, switch: &Netns) {
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    // The kernel's default, whatever the host has.
    ns.sysctl("net.ipv4.conf.all.rp_filter=0");
    ns.sysctl("net.ipv4.conf.default.rp_filter=0");
    ns.sysctl(&format!(
        "net.ipv4.ip_forward={}",
        u8::from(node.forwarding)
    ));
    // Every probe is judged as on a fresh network: the per-destination token bucket of ICMP
    // errors (6, then one a second) would carry over from earlier probes, and a router that
    // answered the SYN retransmissions of one probe would be silent for the next.
    ns.sysctl("net.ipv4.icmp_ratelimit=0");
    // 64 for linux, 128 for windows.
    ns.sysctl(&format!(
        "net.ipv4.ip_default_ttl={}",
        node.os.initial_ttl()
    ));
    for iface in net.interfaces_of(node) {
        let peer = format!("rlp{}", iface.id.index());
        let bridge = format!("rlbr{}", iface.segment.index());
        let mtu = net.segment(iface.segment).mtu.to_string();
        let mac = iface.mac.to_string();
        let name = iface.name.as_str();
        ns.exec(&[
            "ip", "link", "add", name, "type", "veth", "peer", "name", &peer, "netns", &switch.0,
        ]);
        ns.exec(&["ip", "link", "set", "dev", name, "address", &mac]);
        ns.exec(&["ip", "link", "set", name, "mtu", &mtu, "up"]);
        switch.exec(&[
            "ip", "link", "set", &peer, "master", &bridge, "mtu", &mtu, "up",
        ]);
        for addr in &iface.addresses {
            ns.exec(&["ip", "addr", "add", &addr.to_string(), "dev", name]);
        }
    }
    for route in node
        .routes
        .routes()
        .iter()
        .filter(|r| r.kind == RouteKind::Static)
    {
        let dst = route.dst.to_string();
        let dev = net.interface(route.dev).name.clone();
        let metric = route.metric.to_string();
        let via = route.gateway.map(|g| g.to_string());
        let mut args = vec!["ip", "route", "add", dst.as_str()];
        if let Some(via) = &via {
            args.extend(["via", via.as_str()]);
        }
        args.extend(["dev", dev.as_str(), "metric", metric.as_str()]);
        ns.exec(&args);
    }
    if let Some(nf) = &node.netfilter {
        let ruleset = iptables_ruleset(net, nf);
        eprintln!("   iptables-restore on {}:", node.name);
        for line in ruleset.lines() {
            eprintln!("   : {line}");
        }
        ns.iptables_restore(&ruleset);
    }
}

/// The node's rules as `iptables-restore` input: the `nat` and `filter` tables, whole.
fn iptables_ruleset(net: &Network, nf: &Netfilter) -> String {
    let mut out = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n");
    out.push_str(":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    for rule in &nf.nat {
        let chain = match rule.hook {
            NatHook::Prerouting => "PREROUTING",
            NatHook::Output => "OUTPUT",
            NatHook::Postrouting => "POSTROUTING",
        };
        let target = match rule.action {
            NatAction::Masquerade => "MASQUERADE".to_owned(),
            NatAction::Snat(addr) => format!("SNAT --to-source {addr}"),
            NatAction::Dnat(addr, None) => format!("DNAT --to-destination {addr}"),
            NatAction::Dnat(addr, Some(port)) => format!("DNAT --to-destination {addr}:{port}"),
        };
        let _ = writeln!(
            out,
            "-A {chain}{} -j {target}",
            match_args(net, &rule.matches)
        );
    }
    out.push_str("COMMIT\n*filter\n");
    let chains = [
        ("INPUT", &nf.input),
        ("FORWARD", &nf.forward),
        ("OUTPUT", &nf.output),
    ];
    for (name, chain) in chains {
        let policy = match chain.policy {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject(_) => panic!("iptables has no REJECT policy (chain {name})"),
        };
        let _ = writeln!(out, ":{name} {policy} [0:0]");
    }
    for (name, chain) in chains {
        filter_rules(net, name, chain, &mut out);
    }
    out.push_str("COMMIT\n");
    // The prerouting filter chain is mangle PREROUTING (after conntrack, before DNAT).
    let policy = match nf.prerouting.policy {
        Verdict::Accept => "ACCEPT",
        Verdict::Drop => "DROP",
        Verdict::Reject(_) => panic!("iptables has no REJECT policy (mangle PREROUTING)"),
    };
    let _ = writeln!(out, "*mangle\n:PREROUTING {policy} [0:0]");
    filter_rules(net, "PREROUTING", &nf.prerouting, &mut out);
    out.push_str("COMMIT\n");
    out
}

fn filter_rules(net: &Network, name: &str, chain: &Chain, out: &mut String) {
    for rule in &chain.rules {
        let target = match rule.verdict {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject(with) => match with {
                RejectWith::PortUnreachable => "REJECT --reject-with icmp-port-unreachable",
                RejectWith::HostUnreachable => "REJECT --reject-with icmp-host-unreachable",
                RejectWith::NetUnreachable => "REJECT --reject-with icmp-net-unreachable",
                RejectWith::AdminProhibited => "REJECT --reject-with icmp-admin-prohibited",
                RejectWith::TcpReset => "REJECT --reject-with tcp-reset",
            },
        };
        let _ = writeln!(
            out,
            "-A {name}{} -j {target}",
            match_args(net, &rule.matches)
        );
    }
}

/// The match options of a rule, each with a leading space.
fn match_args(net: &Network, m: &Match) -> String {
    let mut out = String::new();
    let iface = |id| net.interface(id).name.as_str();
    // iptables refuses `-i A ! -i B` ("multiple -i flags not allowed").
    assert!(
        m.in_iface.is_none() || m.not_in_iface.is_none(),
        "a rule with both `in` and `not_in` has no iptables form"
    );
    if let Some(i) = m.in_iface {
        let _ = write!(out, " -i {}", iface(i));
    }
    if let Some(i) = m.not_in_iface {
        let _ = write!(out, " ! -i {}", iface(i));
    }
    if let Some(o) = m.out_iface {
        let _ = write!(out, " -o {}", iface(o));
    }
    if let Some(src) = m.src {
        let _ = write!(out, " -s {src}");
    }
    if let Some(src) = m.not_src {
        let _ = write!(out, " ! -s {src}");
    }
    if let Some(dst) = m.dst {
        let _ = write!(out, " -d {dst}");
    }
    if let Some(proto) = m.proto {
        let _ = write!(
            out,
            " -p {}",
            match proto {
                L4::Tcp => "tcp",
                L4::Udp => "udp",
                L4::Icmp => "icmp",
            }
        );
    }
    match m.dport {
        Some((lo, hi)) if lo == hi => {
            let _ = write!(out, " --dport {lo}");
        }
        Some((lo, hi)) => {
            let _ = write!(out, " --dport {lo}:{hi}");
        }
        None => {}
    }
    if !m.states.is_any() {
        let states: Vec<String> = m.states.names().iter().map(|s| s.to_uppercase()).collect();
        let _ = write!(out, " -m conntrack --ctstate {}", states.join(","));
    }
    if m.dst_local {
        out.push_str(" -m addrtype --dst-type LOCAL");
    }
    if let Some(ppb) = m.probability_ppb {
        out.push_str(&format!(
            " -m statistic --mode random --probability {:.9}",
            f64::from(ppb) / 1e9
        ));
    }
    out
}

/// Starts the listener's server in its node's namespace and waits until it has bound.
fn start_listener(lab: &mut Lab, node: &Node, listener: &Listener) {
    let (kind, text, status, content_type) = match &listener.service {
        Service::Ssh { banner } => ("ssh", banner.as_str(), 0, ""),
        Service::Http {
            status,
            body,
            content_type,
            ..
        } => ("http", body.as_str(), *status, content_type.as_str()),
        Service::Banner(line) => ("banner", line.as_str(), 0, ""),
        Service::Plain => ("plain", "", 0, ""),
    };
    let bind = listener
        .bind
        .map_or_else(|| "0.0.0.0".to_owned(), |b| b.to_string());
    let mut child = lab.nodes[node.id.index()]
        .command(&[
            "python3",
            "-c",
            SERVER,
            listener.proto.as_str(),
            &bind,
            &listener.port.to_string(),
            kind,
            text,
            &status.to_string(),
            content_type,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let stdout = child.stdout.take().expect("piped stdout");
    // Kept before anything can panic, so that the Lab's Drop kills it.
    lab.listeners.push(child);
    // READY once bound; end of file if the server died (its error is on stderr).
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    assert_eq!(
        line.trim(),
        "READY",
        "listener {kind} {}/{} on {} did not start",
        listener.port,
        listener.proto.as_str(),
        node.name
    );
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Reply => "reply",
        Outcome::Refused => "refused",
        Outcome::Timeout => "timeout",
        Outcome::NoRoute => "no-route",
        Outcome::NetUnreachable => "net-unreachable",
        Outcome::HostUnreachable => "host-unreachable",
        Outcome::Filtered => "filtered",
        Outcome::TtlExceeded => "ttl-exceeded",
    }
}

/// What a probe gave: an outcome name (or a description of something unexpected), the reply
/// TTL for a ping reply, and the raw output as evidence.
struct Observed {
    outcome: String,
    ttl: Option<u8>,
    raw: String,
}

fn classify_ping(text: &str) -> (String, Option<u8>) {
    if let Some(line) = text.lines().find(|l| l.contains("bytes from")) {
        let ttl = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ttl="))
            .and_then(|t| t.parse().ok());
        return ("reply".into(), ttl);
    }
    let outcome = [
        ("Destination Host Unreachable", "host-unreachable"),
        ("Destination Net Unreachable", "net-unreachable"),
        ("Time to live exceeded", "ttl-exceeded"),
        ("Network is unreachable", "no-route"),
        // ICMP port unreachable (a REJECT's default): "Connection refused" for a socket.
        ("Destination Port Unreachable", "refused"),
        // ICMP type 3 codes 13, 9 and 10: administratively prohibited.
        ("Packet filtered", "filtered"),
        ("Destination Net Prohibited", "filtered"),
        ("Destination Host Prohibited", "filtered"),
    ]
    .iter()
    .find(|(printed, _)| text.contains(printed))
    .map(|(_, outcome)| *outcome);
    match outcome {
        Some(outcome) => (outcome.into(), None),
        None if text.contains(" 0 received") => ("timeout".into(), None),
        None => (format!("unrecognised ping output: {text}"), None),
    }
}

/// Classifies the client's one line. An errno with an ICMP error queued came from a router or
/// the far host; an errno without one is the sender's own verdict (ENETUNREACH from connect:
/// no route at all). The errno alone does not tell a firewall from a missing host: the kernel
/// turns ICMP host unreachable (code 1) and administratively prohibited (codes 9, 10, 13) alike
/// into EHOSTUNREACH ("No route to host", what ssh and curl print), so the queued ICMP code
/// decides; a REJECT with tcp-reset is a plain ECONNREFUSED.
fn classify_client(line: &str) -> String {
    let first = line.split_whitespace().next().unwrap_or("");
    let icmp = |key: &str| -> Option<u8> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    let outcome = match first {
        "CONNECTED" | "BANNER" | "HTTP" | "ECHO" => "reply",
        "TIMEOUT" => "timeout",
        _ => match (first, icmp("type="), icmp("code=")) {
            (_, Some(11), _) => "ttl-exceeded",
            (_, Some(3), Some(0 | 6 | 11)) => "net-unreachable",
            (_, Some(3), Some(1 | 7 | 12)) => "host-unreachable",
            (_, Some(3), Some(3)) | ("ECONNREFUSED", None, _) => "refused",
            (_, Some(3), Some(9 | 10 | 13)) => "filtered",
            ("ENETUNREACH", None, _) => "no-route",
            ("EHOSTUNREACH", None, _) => "host-unreachable",
            _ => return format!("unrecognised: {line}"),
        },
    };
    outcome.into()
}

fn probe(lab: &Lab, expectation: &Expectation) -> Observed {
    let ns = &lab.nodes[expectation.from.index()];
    let addr = expectation.target.addr.to_string();
    let (kind, port, path) = match &expectation.probe {
        Probe::Ping => {
            // -W 4: a failed ARP resolution is reported after about 3 s.
            let out = ns
                .command(&["ping", "-n", "-c", "1", "-W", "4", &addr])
                .output()
                .expect("ping runs");
            let raw = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let (outcome, ttl) = classify_ping(&raw);
            return Observed { outcome, ttl, raw };
        }
        Probe::Ssh { port } => ("ssh", *port, "/"),
        Probe::Curl { port, path } => ("curl", *port, path.as_str()),
        Probe::Tcp { port } => ("tcp", *port, "/"),
        Probe::Udp { port } => ("udp", *port, "/"),
    };
    let out = ns
        .command(&[
            "python3",
            "-c",
            CLIENT,
            kind,
            &addr,
            &port.to_string(),
            path,
            &expectation.target.written,
        ])
        .output()
        .expect("python3 runs");
    let raw = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Observed {
        outcome: classify_client(raw.trim()),
        ttl: None,
        raw,
    }
}

fn describe(net: &Network, e: &Expectation) -> String {
    let port = match &e.probe {
        Probe::Ping => String::new(),
        Probe::Ssh { port } | Probe::Tcp { port } | Probe::Udp { port } => format!(" port {port}"),
        Probe::Curl { port, path } => format!(" port {port} path {path}"),
    };
    format!(
        "from {} {} {} ({}){port}",
        net.node(e.from).name,
        e.probe.tool(),
        e.target.written,
        e.target.addr
    )
}

fn topology_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("topologies")
        .expect("topologies")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn check_file(file: &Path, mismatches: &mut Vec<String>) -> usize {
    let net = load_path(file)
        .unwrap_or_else(|r| panic!("{} must load: {:?}", file.display(), r.diagnostics))
        .network;
    if net.expectations.is_empty() {
        return 0;
    }
    if net.nodes.iter().any(|n| n.netfilter.is_some())
        && let Err(reason) = iptables_available()
    {
        skip_or_fail(&format!("{} has rules: {reason}", file.display()));
        return 0;
    }
    let started = Instant::now();
    // Before the build, so that the rulesets it prints follow the file's name.
    eprintln!("== {}", file.display());
    let lab = build(&net);
    eprintln!(
        "   {} nodes, {} segments, {} listeners, built in {:?}",
        net.nodes.len(),
        net.segments.len(),
        lab.listeners.len(),
        started.elapsed()
    );
    for expectation in &net.expectations {
        let started = Instant::now();
        let observed = probe(&lab, expectation);
        let expected = outcome_name(expectation.outcome);
        let what = describe(&net, expectation);
        let mut verdict = if observed.outcome == expected {
            None
        } else {
            Some(format!(
                "kernel gave {}, file says {expected}",
                observed.outcome
            ))
        };
        if verdict.is_none()
            && let Some(want) = expectation.ttl
            && observed.ttl != Some(want)
        {
            verdict = Some(format!(
                "reply ttl {:?}, file says ttl {want}",
                observed.ttl
            ));
        }
        eprintln!(
            "  {what}: expect {expected}{} -> kernel {}{} [{:.1?}] {}",
            expectation
                .ttl
                .map(|t| format!(" ttl {t}"))
                .unwrap_or_default(),
            observed.outcome,
            observed
                .ttl
                .map(|t| format!(" ttl {t}"))
                .unwrap_or_default(),
            started.elapsed(),
            if verdict.is_some() { "MISMATCH" } else { "ok" }
        );
        for line in observed.raw.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("      | {line}");
        }
        if let Some(verdict) = verdict {
            mismatches.push(format!("{}: {what}: {verdict}", file.display()));
        }
    }
    net.expectations.len()
}

#[test]
fn expectations_hold_in_the_kernel() {
    if let Err(reason) = kernel_available() {
        return skip_or_fail(&reason);
    }
    let started = Instant::now();
    let mut mismatches = Vec::new();
    let mut probed = 0;
    for file in topology_files() {
        probed += check_file(&file, &mut mismatches);
    }
    eprintln!(
        "kernel_probes: {probed} probes run in {:.1?}, {} mismatches",
        started.elapsed(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "the kernel disagrees with these expectations:\n{}",
        mismatches.join("\n")
    );
    assert!(probed >= 30, "only {probed} expectations probed");
}
