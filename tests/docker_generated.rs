//! Generated Docker scenarios against a real dockerd (the issue's "≥ 50 generated Docker
//! scenarios"). A seeded generator writes each scenario as the daemon's flags, the
//! `docker network create`, `docker run` and `docker network connect` commands run in order, and
//! the topology with a `docker:` section that says the same; each scenario's lab (dockerd in a
//! network namespace of this test's own, a client namespace behind a veth, as in
//! tests/docker_referee.rs) runs those commands, then:
//!
//! - (a) **rules**: what `iptables-save` prints on the host (comment lines and `-m comment`
//!   matches dropped, counters zeroed) equals what `reachlab show --iptables-save --node host` prints, once dockerd's
//!   bridge names (`br-` and 12 hex digits of the network ID) are mapped to reachlab's
//!   (`br-NAME`, 15 characters at most);
//! - **addresses**: each container's interfaces, addresses and default route are reachlab's;
//! - (b) **probes**: each expectation (at most 8: from the client to published ports and to
//!   container addresses, between containers on one network and across networks, from a
//!   container to the client and to a published port, from the host) is run for real and the
//!   outcome the kernel gives is the one `reachlab check` predicts.
//!
//! Every mismatch of every scenario is collected and printed (a unified diff for the rules, with
//! the scenario's number, its commands and its topology) before the test fails.
//!
//! Environment:
//! - `REACHLAB_DOCKER_SCENARIO=N[,M…]`: only these scenarios (their numbers are printed);
//! - `REACHLAB_DOCKER_SCENARIOS=COUNT`: how many (default 50), `REACHLAB_DOCKER_SEED=S` the seed;
//! - `REACHLAB_DOCKER_RULES=0`: skip (a) only, for work on the lowering;
//! - `REACHLAB_DOCKER_JOBS=J`: labs run at once (default 3);
//! - `REACHLAB_DOCKER_SAVE=DIR`: write each scenario's commands, topology, dockerd's
//!   `iptables-save` (as printed and as compared), the host's sysctls and reachlab's rules to
//!   `DIR/scenario-N.txt`.
//!
//! Everything runs in namespaces (`reachlab-dg…`) and directories the test creates; dockerd is
//! stopped by the PID the test started; each lab is undone when dropped, also on a panic.
//! Needs root, iproute2, docker.io, busybox-static and curl: SKIPPED otherwise, unless
//! `REACHLAB_REQUIRE_KERNEL=1`.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

mod support;

use support::dockerd::{
    BUSYBOX, CLIENT_ADDRESS, CURL, DOCKER, DOCKERD, HOST_ADDRESS, IMAGE, Lab, LabSpec, predictions,
    run_probe, without_comments,
};
use support::{IP, can_run};

/// The binary under test.
const REACHLAB: &str = env!("CARGO_BIN_EXE_reachlab");
/// The seed of the scenarios unless `REACHLAB_DOCKER_SEED` says otherwise.
const SEED: u64 = 0x7265_6163_686c_6162;
/// How many scenarios unless `REACHLAB_DOCKER_SCENARIOS` says otherwise.
const COUNT: usize = 50;
/// How many labs run at once unless `REACHLAB_DOCKER_JOBS` says otherwise.
const JOBS: usize = 3;
/// At most this many probes per scenario.
const PROBES: usize = 8;

/// User-defined network names (`br-NAME` fits in 15 characters).
const NETWORK_NAMES: [&str; 6] = ["front", "back", "data", "mgmt", "edge", "store"];
/// Container names (node names; none is `host` or `client`).
const CONTAINER_NAMES: [&str; 5] = ["web", "api", "db", "cache", "auth"];
/// `--subnet`s a network may take: none overlaps another nor the pools' first subnets.
const SUBNETS: [&str; 5] = [
    "10.10.0.0/24",
    "10.20.0.0/16",
    "172.25.0.0/16",
    "172.28.5.0/24",
    "10.99.8.0/22",
];
/// A `--subnet` in the pools' way, for the first network only: the networks from the pools
/// skip 172.18.0.0/16 after it.
const POOL_BLOCKER: &str = "172.18.0.0/24";
/// The TCP port of `busybox nc` and the UDP port of the echo server in containers that have them.
const TCP_PORT: u16 = 5000;
const UDP_PORT: u16 = 5353;

// ---------------------------------------------------------------------------------------------
// The generator

/// xorshift64*, seeded through splitmix64: small, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A user-defined network.
#[derive(Clone, Debug)]
struct Network {
    name: String,
    internal: bool,
    icc: bool,
    subnet: Option<String>,
}

/// Where a container runs.
#[derive(Clone, Debug)]
enum Placement {
    /// `--network host`.
    Host,
    /// `--network none`.
    Isolated,
    /// `--network` the first, `docker network connect` the others; each with its `--ip`, if
    /// any.
    Bridged(Vec<(String, Option<Ipv4Addr>)>),
}

/// A `-p`.
#[derive(Clone, Debug)]
struct Publish {
    ip: Option<&'static str>,
    host_port: u16,
    container_port: u16,
    udp: bool,
}

impl Publish {
    fn text(&self) -> String {
        let ip = self.ip.map(|i| format!("{i}:")).unwrap_or_default();
        let proto = if self.udp { "/udp" } else { "" };
        format!("{ip}{}:{}{proto}", self.host_port, self.container_port)
    }
}

#[derive(Clone, Debug)]
struct Container {
    name: String,
    placement: Placement,
    /// `busybox nc -ll -p 5000` besides httpd on 80.
    tcp: bool,
    /// A UDP echo server on 5353.
    udp: bool,
    publish: Vec<Publish>,
}

impl Container {
    /// The networks it is on, in attach order (none for `host`/`none`).
    fn networks(&self) -> Vec<&str> {
        match &self.placement {
            Placement::Bridged(nets) => nets.iter().map(|(n, _)| n.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// A probe's target.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    /// A node name (a container: its first address).
    Name(String),
    /// A container's address on its `index`th network.
    On(String, usize),
    /// A literal address.
    Literal(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Curl(Target, Option<u16>),
    Ping(Target),
    Tcp(Target, u16),
    Udp(Target, u16),
}

#[derive(Clone, Debug, PartialEq)]
struct Probe {
    from: String,
    kind: Kind,
}

/// One generated scenario.
#[derive(Clone, Debug)]
struct Scenario {
    number: usize,
    userland_proxy: bool,
    icc: bool,
    networks: Vec<Network>,
    containers: Vec<Container>,
    probes: Vec<Probe>,
}

/// Scenario `number` of the run seeded with `seed`.
fn generate(seed: u64, number: usize) -> Scenario {
    let mut rng = Rng::new(seed ^ (number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let userland_proxy = rng.chance(50);
    let icc = rng.chance(75);
    let networks = gen_networks(&mut rng);
    let containers = gen_containers(&mut rng, &networks);
    let mut scenario = Scenario {
        number,
        userland_proxy,
        icc,
        networks,
        containers,
        probes: Vec::new(),
    };
    scenario.probes = gen_probes(&mut rng, &scenario);
    scenario
}

fn gen_networks(rng: &mut Rng) -> Vec<Network> {
    let count = *rng.pick(&[0, 1, 1, 2, 2, 2, 3, 3]);
    let mut names = NETWORK_NAMES.to_vec();
    rng.shuffle(&mut names);
    let mut subnets = SUBNETS.to_vec();
    rng.shuffle(&mut subnets);
    (0..count)
        .map(|i| {
            let subnet = if i == 0 && rng.chance(10) {
                Some(POOL_BLOCKER.to_owned())
            } else if rng.chance(30) {
                subnets.pop().map(str::to_owned)
            } else {
                None
            };
            Network {
                name: names[i].to_owned(),
                internal: rng.chance(20),
                icc: !rng.chance(20),
                subnet,
            }
        })
        .collect()
}

/// The `.K` address of `subnet`.
fn nth_address(subnet: &str, k: u32) -> Ipv4Addr {
    let base: Ipv4Addr = subnet
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a subnet");
    Ipv4Addr::from(u32::from(base) + k)
}

fn gen_containers(rng: &mut Rng, networks: &[Network]) -> Vec<Container> {
    let count = 1 + rng.below(4);
    let mut names = CONTAINER_NAMES.to_vec();
    rng.shuffle(&mut names);
    let mut choices: Vec<&str> = vec!["bridge"];
    choices.extend(networks.iter().map(|n| n.name.as_str()));
    let internal = |name: &str| networks.iter().any(|n| n.name == name && n.internal);
    // Endpoints per network so far, and the `--ip`s taken.
    let mut endpoints: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fixed: Vec<Ipv4Addr> = Vec::new();
    let mut host_port = 8000 + 10 * rng.below(10) as u16;
    let mut has_host = false;
    let mut out = Vec::new();
    for name in names.iter().take(count) {
        let roll = rng.below(100);
        let placement = if roll < 8 && !has_host {
            has_host = true;
            Placement::Host
        } else if roll < 13 {
            Placement::Isolated
        } else {
            let first = if networks.is_empty() || rng.chance(35) {
                "bridge"
            } else {
                *rng.pick(&choices[1..])
            };
            let mut nets = vec![first];
            if choices.len() > 1 && rng.chance(30) {
                let others: Vec<&str> = choices.iter().copied().filter(|c| *c != first).collect();
                nets.push(*rng.pick(&others));
            }
            let attached = nets
                .iter()
                .map(|net| {
                    let count = endpoints.entry(net).or_insert(0);
                    let subnet = networks
                        .iter()
                        .find(|n| n.name == *net)
                        .and_then(|n| n.subnet.as_deref());
                    // `--ip` only where the network has a `--subnet` (Docker's rule): `.3`
                    // ahead of the first container (the next ones go around it), or an
                    // address no container reaches in order.
                    let ip = subnet.filter(|_| rng.chance(50)).map(|s| {
                        let k = if *count == 0 {
                            3
                        } else {
                            *rng.pick(&[10, 20, 30])
                        };
                        nth_address(s, k)
                    });
                    *count += 1;
                    match ip {
                        Some(ip) if fixed.contains(&ip) => (net.to_string(), None),
                        Some(ip) => {
                            fixed.push(ip);
                            (net.to_string(), Some(ip))
                        }
                        None => (net.to_string(), None),
                    }
                })
                .collect();
            Placement::Bridged(attached)
        };
        let tcp = rng.chance(30);
        let udp = rng.chance(25) && !matches!(placement, Placement::Host);
        let mut publish = Vec::new();
        let reachable = match &placement {
            Placement::Bridged(nets) => nets.iter().any(|(n, _)| !internal(n)),
            _ => false,
        };
        if reachable && rng.chance(55) {
            let ip = match rng.below(100) {
                0..=64 => None,
                65..=89 => Some(HOST_ADDRESS),
                _ => Some("127.0.0.1"),
            };
            let mut ports = vec![(ip, 80, false)];
            if udp && rng.chance(60) {
                ports.push((None, UDP_PORT, true));
            }
            if tcp && rng.chance(50) {
                ports.push((None, TCP_PORT, false));
            }
            // Host ports rise with container ports: dockerd 20.10 orders a container's
            // bindings by `nat.SortPortMap`, whose comparison is no order when a larger host
            // port goes with a smaller container port, and then maps them in an order that
            // depends on Go's map iteration (docs/platform-semantics.md, "Docker", **Rules**).
            ports.sort_by_key(|&(_, container_port, _)| container_port);
            for (ip, container_port, udp) in ports {
                host_port += 1 + rng.below(3) as u16;
                publish.push(Publish {
                    ip,
                    host_port,
                    container_port,
                    udp,
                });
            }
        }
        out.push(Container {
            name: (*name).to_owned(),
            placement,
            tcp,
            udp,
            publish,
        });
    }
    out
}

/// Candidate probes by kind, then one of each kind in turn (in a random order of kinds) until
/// there are [`PROBES`].
fn gen_probes(rng: &mut Rng, s: &Scenario) -> Vec<Probe> {
    let host = || Target::Literal(HOST_ADDRESS);
    let probe = |from: &str, kind| Probe {
        from: from.to_owned(),
        kind,
    };
    let bridged: Vec<&Container> = s
        .containers
        .iter()
        .filter(|c| matches!(c.placement, Placement::Bridged(_)))
        .collect();
    let published: Vec<(&Container, &Publish)> = s
        .containers
        .iter()
        .flat_map(|c| c.publish.iter().map(move |p| (c, p)))
        .collect();
    let to_published = |p: &Publish, at: Target| {
        if p.udp {
            Kind::Udp(at, p.host_port)
        } else if p.container_port == TCP_PORT {
            Kind::Tcp(at, p.host_port)
        } else {
            Kind::Curl(at, Some(p.host_port))
        }
    };
    let mut kinds: Vec<Vec<Probe>> = Vec::new();
    // The client to each published port at the host's address.
    kinds.push(
        published
            .iter()
            .map(|(_, p)| probe("client", to_published(p, host())))
            .collect(),
    );
    // The client to a container's address directly.
    kinds.push(
        bridged
            .iter()
            .flat_map(|c| {
                let mut v = vec![
                    probe("client", Kind::Curl(Target::Name(c.name.clone()), None)),
                    probe("client", Kind::Ping(Target::Name(c.name.clone()))),
                ];
                if c.networks().len() > 1 {
                    v.push(probe(
                        "client",
                        Kind::Curl(Target::On(c.name.clone(), 1), None),
                    ));
                }
                v
            })
            .collect(),
    );
    // Container to container on a network they share, and across networks.
    let mut same = Vec::new();
    let mut across = Vec::new();
    for a in &bridged {
        for b in bridged.iter().filter(|b| b.name != a.name) {
            let (na, nb) = (a.networks(), b.networks());
            match nb.iter().position(|n| na.contains(n)) {
                Some(i) => {
                    let t = || Target::On(b.name.clone(), i);
                    same.push(probe(&a.name, Kind::Curl(t(), None)));
                    same.push(probe(&a.name, Kind::Ping(t())));
                    if b.tcp {
                        same.push(probe(&a.name, Kind::Tcp(t(), TCP_PORT)));
                    }
                    if b.udp {
                        same.push(probe(&a.name, Kind::Udp(t(), UDP_PORT)));
                    }
                }
                None => {
                    across.push(probe(&a.name, Kind::Ping(Target::Name(b.name.clone()))));
                    across.push(probe(
                        &a.name,
                        Kind::Curl(Target::Name(b.name.clone()), None),
                    ));
                }
            }
        }
    }
    kinds.push(same);
    kinds.push(across);
    // A container to the client.
    kinds.push(
        bridged
            .iter()
            .map(|c| probe(&c.name, Kind::Ping(Target::Literal(CLIENT_ADDRESS))))
            .collect(),
    );
    // The host to a published port: at its own address, at 127.0.0.1, at docker0's gateway.
    kinds.push(
        published
            .iter()
            .flat_map(|(_, p)| {
                let mut v = Vec::new();
                if p.ip != Some("127.0.0.1") {
                    v.push(probe("host", to_published(p, host())));
                }
                if p.ip.is_none() {
                    v.push(probe(
                        "host",
                        to_published(p, Target::Literal("172.17.0.1")),
                    ));
                }
                if p.ip.is_none() || p.ip == Some("127.0.0.1") {
                    v.push(probe("host", to_published(p, Target::Literal("127.0.0.1"))));
                }
                v
            })
            .collect(),
    );
    // A container to a published port at the host's address (its own, or another's).
    kinds.push(
        bridged
            .iter()
            .flat_map(|c| {
                published
                    .iter()
                    .filter(|(_, p)| p.ip != Some("127.0.0.1"))
                    .map(|(_, p)| probe(&c.name, to_published(p, host())))
            })
            .collect(),
    );
    // The host to a container.
    kinds.push(
        bridged
            .iter()
            .flat_map(|c| {
                [
                    probe("host", Kind::Ping(Target::Name(c.name.clone()))),
                    probe("host", Kind::Curl(Target::Name(c.name.clone()), None)),
                ]
            })
            .collect(),
    );
    // The client to the services of a `--network host` container.
    kinds.push(
        s.containers
            .iter()
            .filter(|c| matches!(c.placement, Placement::Host))
            .flat_map(|c| {
                let mut v = vec![probe("client", Kind::Curl(host(), None))];
                if c.tcp {
                    v.push(probe("client", Kind::Tcp(host(), TCP_PORT)));
                }
                v
            })
            .collect(),
    );
    // The host's own address from the client (port 80 refused unless a `--network host`
    // container serves it): a scenario always has a probe.
    kinds.push(vec![
        probe("client", Kind::Ping(host())),
        probe("client", Kind::Curl(host(), None)),
    ]);
    kinds.retain(|k| !k.is_empty());
    rng.shuffle(&mut kinds);
    for k in &mut kinds {
        rng.shuffle(k);
    }
    let mut probes = Vec::new();
    while probes.len() < PROBES && kinds.iter().any(|k| !k.is_empty()) {
        for k in &mut kinds {
            if probes.len() == PROBES {
                break;
            }
            while let Some(p) = k.pop() {
                if !probes.contains(&p) {
                    probes.push(p);
                    break;
                }
            }
        }
    }
    probes
}

// ---------------------------------------------------------------------------------------------
// What a scenario says: commands and topology

/// `docker run` for container `ct`, then `docker network connect` for each further network.
fn container_commands(ct: &Container) -> Vec<Vec<String>> {
    let mut c: Vec<String> = ["run", "-d", "--name", &ct.name]
        .map(str::to_owned)
        .to_vec();
    let mut connects = Vec::new();
    match &ct.placement {
        Placement::Host => c.extend(["--network".into(), "host".into()]),
        Placement::Isolated => c.extend(["--network".into(), "none".into()]),
        Placement::Bridged(nets) => {
            for (i, (net, ip)) in nets.iter().enumerate() {
                let ip_args = ip.map(|ip| vec!["--ip".to_owned(), ip.to_string()]);
                if i == 0 {
                    if net != "bridge" {
                        c.extend(["--network".into(), net.clone()]);
                    }
                    c.extend(ip_args.unwrap_or_default());
                } else {
                    let mut connect = vec!["network".to_owned(), "connect".to_owned()];
                    connect.extend(ip_args.unwrap_or_default());
                    connect.extend([net.clone(), ct.name.clone()]);
                    connects.push(connect);
                }
            }
        }
    }
    for p in &ct.publish {
        c.extend(["-p".into(), p.text()]);
    }
    let httpd = format!("exec /bin/busybox httpd -f -p 80 -h /www-{}", ct.name);
    let script = if ct.tcp {
        format!("/bin/busybox nc -ll -p {TCP_PORT} -e /bin/busybox true & {httpd}")
    } else {
        httpd
    };
    c.extend([
        IMAGE.into(),
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        script,
    ]);
    let mut commands = vec![c];
    commands.extend(connects);
    commands
}

impl Scenario {
    /// dockerd's flags.
    fn flags(&self) -> Vec<String> {
        vec![
            "--iptables=true".into(),
            format!("--userland-proxy={}", self.userland_proxy),
            format!("--icc={}", self.icc),
        ]
    }

    /// The `docker` commands, in order (without `docker`).
    fn commands(&self) -> Vec<Vec<String>> {
        let mut commands = self.network_commands();
        for ct in &self.containers {
            commands.extend(container_commands(ct));
        }
        commands
    }

    /// `docker network create` for each network.
    fn network_commands(&self) -> Vec<Vec<String>> {
        self.networks
            .iter()
            .map(|n| {
                let mut c = vec!["network".to_owned(), "create".to_owned()];
                if n.internal {
                    c.push("--internal".into());
                }
                if !n.icc {
                    c.extend([
                        "-o".into(),
                        "com.docker.network.bridge.enable_icc=false".into(),
                    ]);
                }
                if let Some(s) = &n.subnet {
                    c.extend(["--subnet".into(), s.clone()]);
                }
                c.push(n.name.clone());
                c
            })
            .collect()
    }

    /// The daemon and the commands as a shell would run them.
    fn shell(&self) -> String {
        let mut text = format!("dockerd {}\n", self.flags().join(" "));
        for c in self.commands() {
            let words: Vec<String> = c
                .iter()
                .map(|w| {
                    if w.contains(' ') {
                        format!("'{w}'")
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let _ = writeln!(text, "docker {}", words.join(" "));
        }
        for ct in self.containers.iter().filter(|c| c.udp) {
            let _ = writeln!(
                text,
                "# and a UDP echo server on {}:{UDP_PORT} (in the test, in its namespace)",
                ct.name
            );
        }
        text
    }

    /// The topology: `address(container, index)` is the container's address on its
    /// `index`th network (known once the lab is built); `br_netfilter` is the host's.
    fn topology(&self, address: &dyn Fn(&str, usize) -> String, br_netfilter: bool) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "name: docker-generated-{}", self.number);
        let _ = writeln!(
            y,
            "description: Scenario {} of tests/docker_generated.rs.",
            self.number
        );
        y.push_str("segments:\n  - name: lan\nnodes:\n");
        y.push_str("  - name: client\n");
        let _ = writeln!(
            y,
            "    interfaces: [{{ name: eth0, segment: lan, addresses: [{CLIENT_ADDRESS}/24] }}]"
        );
        let _ = writeln!(
            y,
            "    routes: [{{ to: 172.16.0.0/12, via: {HOST_ADDRESS} }}, {{ to: 10.0.0.0/8, via: {HOST_ADDRESS} }}]"
        );
        y.push_str("  - name: host\n");
        if br_netfilter {
            y.push_str("    br_netfilter: true\n");
        }
        let _ = writeln!(
            y,
            "    interfaces: [{{ name: eth0, segment: lan, addresses: [{HOST_ADDRESS}/24] }}]"
        );
        y.push_str("docker:\n  engines:\n    - host: host\n");
        let _ = writeln!(y, "      userland_proxy: {}", self.userland_proxy);
        let _ = writeln!(y, "      icc: {}", self.icc);
        if !self.networks.is_empty() {
            y.push_str("      networks:\n");
            for n in &self.networks {
                let mut keys = vec![format!("name: {}", n.name)];
                if let Some(s) = &n.subnet {
                    keys.push(format!("subnet: {s}"));
                }
                if n.internal {
                    keys.push("internal: true".into());
                }
                if !n.icc {
                    keys.push("icc: false".into());
                }
                let _ = writeln!(y, "        - {{ {} }}", keys.join(", "));
            }
        }
        y.push_str("      containers:\n");
        for c in &self.containers {
            let _ = writeln!(y, "        - name: {}", c.name);
            match &c.placement {
                Placement::Host => y.push_str("          network: host\n"),
                Placement::Isolated => y.push_str("          network: none\n"),
                Placement::Bridged(nets) if nets.len() == 1 => {
                    let _ = writeln!(y, "          network: {}", nets[0].0);
                    if let Some(ip) = nets[0].1 {
                        let _ = writeln!(y, "          address: {ip}");
                    }
                }
                Placement::Bridged(nets) => {
                    let names: Vec<&str> = nets.iter().map(|(n, _)| n.as_str()).collect();
                    let _ = writeln!(y, "          networks: [{}]", names.join(", "));
                    let fixed: Vec<String> = nets
                        .iter()
                        .filter_map(|(n, ip)| ip.map(|ip| format!("{n}: {ip}")))
                        .collect();
                    if !fixed.is_empty() {
                        let _ = writeln!(y, "          addresses: {{ {} }}", fixed.join(", "));
                    }
                }
            }
            if !c.publish.is_empty() {
                let ports: Vec<String> = c
                    .publish
                    .iter()
                    .map(|p| format!("\"{}\"", p.text()))
                    .collect();
                let _ = writeln!(y, "          publish: [{}]", ports.join(", "));
            }
            let mut listen = vec![format!("{{ port: 80, http: {{ body: {} }} }}", c.name)];
            if c.tcp {
                listen.push(format!("{{ port: {TCP_PORT} }}"));
            }
            if c.udp {
                listen.push(format!("{{ port: {UDP_PORT}, proto: udp }}"));
            }
            let _ = writeln!(y, "          listen: [{}]", listen.join(", "));
        }
        y.push_str("expect:\n");
        let target = |t: &Target| match t {
            Target::Name(n) => n.clone(),
            Target::On(c, i) => address(c, *i),
            Target::Literal(a) => (*a).to_owned(),
        };
        for p in &self.probes {
            let what = match &p.kind {
                Kind::Curl(t, port) => {
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    format!("curl: \"http://{}{port}/\"", target(t))
                }
                Kind::Ping(t) => format!("ping: {}", target(t)),
                Kind::Tcp(t, port) => format!("tcp: {}, port: {port}", target(t)),
                Kind::Udp(t, port) => format!("udp: {}, port: {port}", target(t)),
            };
            // The outcome written here is not compared: the kernel's is, with the prediction.
            let _ = writeln!(y, "  - {{ from: {}, {what}, outcome: reply }}", p.from);
        }
        y
    }
}

// ---------------------------------------------------------------------------------------------
// Running a scenario

/// One mismatch of one scenario.
struct Finding {
    scenario: usize,
    /// `rules`, `addresses`, `probe` or `lab`.
    check: &'static str,
    text: String,
}

/// How a scenario went: its mismatches, its probes and how long it took.
struct Report {
    number: usize,
    findings: Vec<Finding>,
    probes: usize,
    seconds: f64,
}

/// Settings read from the environment.
struct Settings {
    seed: u64,
    rules: bool,
    save: Option<std::path::PathBuf>,
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text}: not a number")))
}

/// dockerd's bridge names mapped to reachlab's: `br-` + 12 hex digits of the network ID →
/// `br-NAME` cut to 15 characters.
fn bridge_names(lab: &Lab, s: &Scenario) -> Vec<(String, String)> {
    s.networks
        .iter()
        .map(|n| {
            let id = lab.docker_ok(&["network", "inspect", "-f", "{{.Id}}", &n.name]);
            let real = format!("br-{}", &id[..12]);
            let ours: String = format!("br-{}", n.name).chars().take(15).collect();
            (real, ours)
        })
        .collect()
}

/// `iptables-save` text as compared: no comment lines nor `-m comment` matches, counters
/// zeroed, bridges renamed.
fn normalise(text: &str, names: &[(String, String)]) -> Vec<String> {
    without_comments(text)
        .into_iter()
        .map(|line| {
            let mut line = without_comment_match(&line);
            for (real, ours) in names {
                line = line.replace(real.as_str(), ours);
            }
            if line.starts_with(':')
                && let Some(at) = line.rfind(" [")
            {
                line.truncate(at);
                line.push_str(" [0:0]");
            }
            line
        })
        .collect()
}

/// `line` without its `-m comment --comment "…"` (iptables-save quotes the text, with `\"`
/// and `\'` escaped inside).
fn without_comment_match(line: &str) -> String {
    const MATCH: &str = " -m comment --comment ";
    let Some(at) = line.find(MATCH) else {
        return line.to_owned();
    };
    let rest = &line[at + MATCH.len()..];
    let end = if let Some(quoted) = rest.strip_prefix('"') {
        let mut escaped = false;
        let close = quoted
            .char_indices()
            .find(|&(_, c)| {
                let close = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                close
            })
            .map_or(quoted.len(), |(i, _)| i + 1);
        1 + close
    } else {
        rest.find(' ').unwrap_or(rest.len())
    };
    format!("{}{}", &line[..at], without_comment_match(&rest[end..]))
}

/// A unified diff of `ours` (reachlab) against `real` (dockerd).
fn diff(real: &[String], ours: &[String]) -> String {
    let (real, ours) = (real.join("\n") + "\n", ours.join("\n") + "\n");
    similar::TextDiff::from_lines(&real, &ours)
        .unified_diff()
        .context_radius(3)
        .header("dockerd (iptables-save)", "reachlab show --iptables-save")
        .to_string()
}

/// reachlab's view of each container: its interfaces with addresses, and its default route.
fn reachlab_addresses(file: &str) -> BTreeMap<String, Vec<String>> {
    let out = Command::new(REACHLAB)
        .args(["show", "--format", "json", file])
        .output()
        .expect("reachlab runs");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "reachlab show --format json {file}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut map = BTreeMap::new();
    for node in doc["nodes"].as_array().into_iter().flatten() {
        let name = node["name"].as_str().unwrap_or("").to_owned();
        let mut lines: Vec<String> = node["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| {
                let iface = i["name"].as_str().unwrap_or("").to_owned();
                i["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |a| format!("{iface} {}", a.as_str().unwrap_or("")))
            })
            .collect();
        lines.extend(
            node["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["dst"] == "default")
                .map(|r| r["ip_route"].as_str().unwrap_or("").to_owned()),
        );
        map.insert(name, lines);
    }
    map
}

/// The real view of container `name`, as [`reachlab_addresses`] has it.
fn real_addresses(lab: &Lab, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = lab
        .addresses(name)
        .into_iter()
        .map(|(i, a)| format!("{i} {a}"))
        .collect();
    let routes = lab.on(name, &["ip", "-4", "route", "show", "default"]);
    lines.extend(
        String::from_utf8_lossy(&routes.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty()),
    );
    lines
}

/// Builds scenario `s`'s lab, runs its commands and checks it.
fn run_scenario(s: &Scenario, settings: &Settings) -> (Vec<Finding>, usize) {
    let pid = std::process::id();
    let n = s.number;
    let flags = s.flags();
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let pages: Vec<(&str, &str)> = CONTAINER_NAMES.iter().map(|c| (*c, *c)).collect();
    let mut lab = Lab::start(&LabSpec {
        host: format!("reachlab-dg{pid}-{n}h"),
        client: format!("reachlab-dg{pid}-{n}c"),
        dir: std::env::temp_dir().join(format!("reachlab-dg{pid}-{n}")),
        flags: &flag_refs,
        client_routes: &["172.16.0.0/12", "10.0.0.0/8"],
        pages: &pages,
    });
    let run = |lab: &Lab, c: &Vec<String>| {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        lab.docker_ok(&args);
    };
    for c in s.network_commands() {
        run(&lab, &c);
    }
    for ct in &s.containers {
        for c in container_commands(ct) {
            run(&lab, &c);
        }
        // Once the container is on all its networks, its UDP echo server starts.
        if ct.udp && matches!(ct.placement, Placement::Bridged(_)) {
            let addresses: Vec<Ipv4Addr> = lab
                .addresses(&ct.name)
                .iter()
                .filter_map(|(_, a)| a.split('/').next()?.parse().ok())
                .collect();
            lab.udp_echo(&ct.name, &addresses, UDP_PORT);
        }
    }
    let dir = lab.dir.clone();
    let saved = lab.iptables_save();
    let br_netfilter = lab
        .in_ns(
            &lab.host,
            &["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"],
        )
        .stdout
        .starts_with(b"1");
    let address = |c: &str, i: usize| -> String {
        lab.addresses(c)
            .into_iter()
            .find(|(iface, _)| *iface == format!("eth{i}"))
            .and_then(|(_, a)| a.split('/').next().map(str::to_owned))
            .unwrap_or_else(|| panic!("container {c} has no eth{i}"))
    };
    let yaml = s.topology(&address, br_netfilter);
    let file = dir.join("topology.yaml");
    std::fs::write(&file, &yaml).expect("the topology written");
    let file = file.display().to_string();
    let context = || {
        format!(
            "scenario {n} (again: REACHLAB_DOCKER_SEED={:#x} REACHLAB_DOCKER_SCENARIO={n}):\n{}\n{yaml}",
            settings.seed,
            s.shell()
        )
    };
    let mut findings = Vec::new();

    // (a) the rules.
    let names = bridge_names(&lab, s);
    let shown = Command::new(REACHLAB)
        .args(["show", "--iptables-save", "--node", "host", &file])
        .output()
        .expect("reachlab runs");
    let ours = String::from_utf8_lossy(&shown.stdout).into_owned();
    let (real_rules, our_rules) = (normalise(&saved, &names), normalise(&ours, &[]));
    if let Some(dir) = &settings.save {
        // The host's settings dockerd changes besides its rules (forwarding, br_netfilter,
        // route_localnet without the userland proxy, hairpin mode on the bridge ports).
        let script = "grep -H . /proc/sys/net/ipv4/ip_forward \
            /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/ipv4/conf/*/route_localnet \
            /sys/class/net/*/brport/hairpin_mode 2>/dev/null";
        let settings_out = lab.in_ns(&lab.host, &["sh", "-c", script]);
        let mut sysctls = String::from_utf8_lossy(&settings_out.stdout).into_owned();
        for (real, ours) in &names {
            sysctls = sysctls.replace(real.as_str(), ours);
        }
        let renamed: Vec<String> = names.iter().map(|(r, o)| format!("{r} = {o}")).collect();
        let text = format!(
            "# Scenario {n} of tests/docker_generated.rs (seed {:#x}; again: \
             REACHLAB_DOCKER_SCENARIO={n}), dockerd 20.10 in a namespace of its own\n\n\
             ## Commands\n{}\n## The topology (its `docker:` section says the same)\n{yaml}\n\
             ## dockerd's iptables-save as compared: comment lines dropped, bridges renamed \
             ({})\n{}\n\n## dockerd's iptables-save as printed\n{saved}\n\
             ## The host's settings (bridges renamed)\n{sysctls}\n\
             ## reachlab show --iptables-save --node host\n{ours}",
            settings.seed,
            s.shell(),
            if renamed.is_empty() {
                "none".to_owned()
            } else {
                renamed.join(", ")
            },
            real_rules.join("\n"),
        );
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join(format!("scenario-{n}.txt")), text);
    }
    if settings.rules && (!shown.status.success() || real_rules != our_rules) {
        findings.push(Finding {
            scenario: n,
            check: "rules",
            text: format!(
                "{}{}\n{}",
                context(),
                String::from_utf8_lossy(&shown.stderr),
                diff(&real_rules, &our_rules)
            ),
        });
    }

    // The containers' addresses and default routes.
    let predicted = reachlab_addresses(&file);
    for c in s
        .containers
        .iter()
        .filter(|c| matches!(c.placement, Placement::Bridged(_)))
    {
        let real = real_addresses(&lab, &c.name);
        let ours = predicted.get(&c.name).cloned().unwrap_or_default();
        if real != ours {
            findings.push(Finding {
                scenario: n,
                check: "addresses",
                text: format!(
                    "scenario {n}: container {}: dockerd {real:?}, reachlab {ours:?}",
                    c.name
                ),
            });
        }
    }

    // (b) the probes.
    let predicted = predictions(REACHLAB, &file);
    for (probe, prediction) in &predicted {
        let real = run_probe(&lab, probe);
        if &real != prediction {
            findings.push(Finding {
                scenario: n,
                check: "probe",
                text: format!(
                    "scenario {n}: `{probe}`: kernel {real}, reachlab predicts {prediction}"
                ),
            });
        }
    }
    if findings.iter().any(|f| f.check != "rules") {
        // The context once, with the first finding that is not about rules.
        if let Some(f) = findings.iter_mut().find(|f| f.check != "rules") {
            f.text = format!("{}\n{}", f.text, context());
        }
    }
    drop(lab);
    assert!(!dir.exists(), "{} left behind", dir.display());
    (findings, predicted.len())
}

#[test]
fn generated_docker_scenarios_agree_with_a_real_dockerd() {
    let test = "generated_docker_scenarios_agree_with_a_real_dockerd";
    if !can_run(test, &[IP, DOCKERD, DOCKER, BUSYBOX, CURL]) {
        return;
    }
    let settings = Settings {
        seed: env_number("REACHLAB_DOCKER_SEED").unwrap_or(SEED),
        rules: std::env::var("REACHLAB_DOCKER_RULES").map_or(true, |v| v.trim() != "0"),
        save: std::env::var_os("REACHLAB_DOCKER_SAVE").map(Into::into),
    };
    let numbers: Vec<usize> = match std::env::var("REACHLAB_DOCKER_SCENARIO") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("REACHLAB_DOCKER_SCENARIO={list}"))
            })
            .collect(),
        Err(_) => {
            (0..env_number("REACHLAB_DOCKER_SCENARIOS").map_or(COUNT, |c| c as usize)).collect()
        }
    };
    let jobs = env_number("REACHLAB_DOCKER_JOBS").map_or(JOBS, |j| j.max(1) as usize);
    eprintln!(
        "{test}: seed {:#x} (REACHLAB_DOCKER_SEED), {} scenarios, {jobs} at once, rules {}; \
         one scenario again: REACHLAB_DOCKER_SCENARIO=N",
        settings.seed,
        numbers.len(),
        if settings.rules {
            "checked"
        } else {
            "skipped (REACHLAB_DOCKER_RULES=0)"
        }
    );
    let scenarios: Vec<Scenario> = numbers
        .iter()
        .map(|&n| generate(settings.seed, n))
        .collect();
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Report>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(scenarios.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(s) = scenarios.get(i) else { break };
                    let began = Instant::now();
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        run_scenario(s, &settings)
                    }));
                    let (findings, probes) = result.unwrap_or_else(|e| {
                        let why = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        let text = format!(
                            "scenario {n} (again: REACHLAB_DOCKER_SEED={:#x} \
                             REACHLAB_DOCKER_SCENARIO={n}) failed to run: {why}\n{}",
                            settings.seed,
                            s.shell(),
                            n = s.number,
                        );
                        let finding = Finding {
                            scenario: s.number,
                            check: "lab",
                            text,
                        };
                        (vec![finding], 0)
                    });
                    let seconds = began.elapsed().as_secs_f64();
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for f in &findings {
                        *counts.entry(f.check).or_default() += 1;
                    }
                    eprintln!(
                        "scenario {:>3}: {} containers, {} networks, {probes} probes, {seconds:.1} s{}",
                        s.number,
                        s.containers.len(),
                        s.networks.len(),
                        if counts.is_empty() {
                            String::from(", all equal")
                        } else {
                            format!(", mismatches {counts:?}")
                        }
                    );
                    let report = Report {
                        number: s.number,
                        findings,
                        probes,
                        seconds,
                    };
                    reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| r.number);
    let elapsed = start.elapsed().as_secs_f64();
    let probes: usize = reports.iter().map(|r| r.probes).sum();
    let slowest = reports.iter().map(|r| r.seconds).fold(0.0f64, f64::max);
    let findings: Vec<&Finding> = reports.iter().flat_map(|r| &r.findings).collect();
    let mut summary = String::new();
    for check in ["lab", "rules", "addresses", "probe"] {
        let of: Vec<&&Finding> = findings.iter().filter(|f| f.check == check).collect();
        if of.is_empty() {
            continue;
        }
        let scenarios: std::collections::BTreeSet<usize> = of.iter().map(|f| f.scenario).collect();
        let _ = writeln!(
            summary,
            "{check}: {} mismatches in scenarios {scenarios:?}",
            of.len()
        );
        eprintln!("\n======== {check} mismatches ========");
        for f in of {
            eprintln!("---- {}\n", f.text);
        }
    }
    eprintln!(
        "\n{test}: {} scenarios, {probes} probes, in {elapsed:.0} s ({jobs} at once, slowest \
         scenario {slowest:.0} s)\n{summary}",
        reports.len()
    );
    assert!(
        findings.is_empty(),
        "dockerd and reachlab disagree (details above):\n{summary}"
    );
}

/// Every generated topology is valid and warns of nothing (no root needed): a scenario
/// reachlab refuses would test nothing. Addresses of containers, which only the lab knows,
/// are a placeholder here.
#[test]
fn generated_topologies_are_valid() {
    let seed = env_number("REACHLAB_DOCKER_SEED").unwrap_or(SEED);
    let count = env_number("REACHLAB_DOCKER_SCENARIOS").map_or(COUNT, |c| c as usize);
    let dir = std::env::temp_dir().join(format!("reachlab-dg{}-valid", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let mut shapes: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..count {
        let s = generate(seed, n);
        let yaml = s.topology(&|_, _| "192.0.2.1".to_owned(), true);
        std::fs::write(dir.join(format!("scenario-{n}.yaml")), yaml).expect("written");
        let mut count = |k| *shapes.entry(k).or_default() += 1;
        for c in &s.containers {
            match &c.placement {
                Placement::Host => count("host network"),
                Placement::Isolated => count("none network"),
                Placement::Bridged(nets) if nets.len() > 1 => count("two networks"),
                Placement::Bridged(nets) if nets.iter().any(|(_, ip)| ip.is_some()) => {
                    count("--ip")
                }
                Placement::Bridged(_) => count("one network"),
            }
            for p in &c.publish {
                count(match (p.ip, p.udp) {
                    (_, true) => "udp publish",
                    (Some("127.0.0.1"), _) => "127.0.0.1 publish",
                    (Some(_), _) => "host-IP publish",
                    (None, _) => "tcp publish",
                });
            }
        }
        for net in &s.networks {
            count("network");
            if net.internal {
                count("internal");
            }
            if !net.icc {
                count("icc=false network");
            }
            if net.subnet.is_some() {
                count("--subnet");
            }
        }
        count(if s.userland_proxy {
            "proxy on"
        } else {
            "proxy off"
        });
        if !s.icc {
            count("--icc=false");
        }
    }
    let out = Command::new(REACHLAB)
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("reachlab runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{count} scenarios (seed {seed:#x}): {shapes:?}");
    assert!(
        out.status.success() && !text.contains("warning"),
        "generated topologies refused or warned of:\n{text}"
    );
}
