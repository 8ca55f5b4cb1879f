//! proptest strategies over topologies, for property tests of your own (and the emulator's
//! differential test): [`internet`] generates small "Internet with sites" networks that mix
//! routers, subnets, default routes, masquerading, port forwarding, 1:1 (floating-IP-like)
//! NAT, stateful filters and Docker-like bridges, each with a handful of probes worth asking;
//! [`mutations`] draws single mutations of a file of yours (a route, a NAT rule, a listener or
//! an address forgotten, a filter rule flipped, forwarding off), for properties that must survive
//! any one mistake (the README has an example).
//!
//! ```
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! runner
//!     .run(&reachlab::testing::internet(), |lab| {
//!         // Every generated topology is valid, and its probes resolve.
//!         let net = reachlab::topology::load_str("gen.yaml", &lab.yaml())
//!             .expect("generated topologies are valid")
//!             .network;
//!         prop_assert!(lab.requests(&net).is_ok());
//!         Ok(())
//!     })
//!     .expect("holds");
//! ```

use std::fmt::Write as _;

use proptest::prelude::*;

use crate::invariants::fuzz::{FuzzTarget, Mutant};
use crate::model::{Network, Port, Probe};
use crate::run::{self, ProbeRequest};

/// How a site router filters what it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardFilter {
    /// No filter.
    Open,
    /// `policy: drop`: only replies, the LANs' own connections and forwarded ports pass.
    Stateful,
    /// As `Stateful`, but the rest is rejected with this ICMP error (or a TCP reset).
    StatefulReject(&'static str),
}

/// One site: a router on the Internet segment with LANs of hosts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Hosts on each LAN (1 or 2 LANs).
    pub lans: Vec<Vec<Host>>,
    /// `ip_forward` on the router.
    pub forwarding: bool,
    /// The router masquerades its LANs out of its WAN interface.
    pub masquerade: bool,
    /// WAN tcp 2222 is forwarded to the first host's port 22.
    pub port_forward: bool,
    /// The router holds a second WAN address, translated 1:1 to the first host.
    pub floating_ip: bool,
    pub filter: ForwardFilter,
    /// The router drops pings to itself.
    pub drops_ping: bool,
    /// The ISP router has routes to the site's LANs.
    pub routed: bool,
    /// The first host runs a Docker-like bridge with one container.
    pub docker: bool,
}

/// A host on a LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub ssh: bool,
    pub http: bool,
    pub udp_echo: bool,
    /// Its default route (without it, it reaches only its own LAN).
    pub default_route: bool,
}

/// A generated network and the probes to ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLab {
    pub sites: Vec<Site>,
    /// Servers on the Internet segment (1 or 2).
    pub servers: usize,
    /// Picks which probes to ask (indices into every sensible probe).
    pub picks: Vec<u32>,
}

/// A probe in words: `from` node, the probe, the target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub from: String,
    pub probe: Probe,
    pub target: String,
}

fn host() -> impl Strategy<Value = Host> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(ssh, http, udp_echo, default_route)| Host {
            ssh,
            http,
            udp_echo,
            default_route,
        })
}

fn filter() -> impl Strategy<Value = ForwardFilter> {
    prop_oneof![
        3 => Just(ForwardFilter::Open),
        2 => Just(ForwardFilter::Stateful),
        1 => prop_oneof![
            Just("admin-prohibited"),
            Just("port-unreachable"),
            Just("host-unreachable"),
        ]
        .prop_map(ForwardFilter::StatefulReject),
    ]
}

fn site() -> impl Strategy<Value = Site> {
    (
        prop::collection::vec(prop::collection::vec(host(), 1..=2), 1..=2),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.6),
        prop::bool::weighted(0.4),
        prop::bool::weighted(0.3),
        filter(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(
                lans,
                forwarding,
                masquerade,
                port_forward,
                floating_ip,
                filter,
                drops_ping,
                routed,
                docker,
            )| Site {
                lans,
                forwarding,
                masquerade,
                port_forward,
                floating_ip,
                filter,
                drops_ping,
                routed,
                docker,
            },
        )
}

/// Small Internets: 1 to 3 sites behind an ISP router, 1 or 2 servers, 12 probes.
pub fn internet() -> impl Strategy<Value = GeneratedLab> {
    (
        prop::collection::vec(site(), 1..=3),
        1usize..=2,
        prop::collection::vec(any::<u32>(), 12),
    )
        .prop_map(|(sites, servers, picks)| GeneratedLab {
            sites,
            servers,
            picks,
        })
}

/// One mutation of `target` at a time, drawn from all of [`FuzzTarget::mutants`] (shrinking
/// towards the first lines of the file); [`FuzzTarget::apply`] gives the mutated network, or the
/// errors that make the mutated file invalid. A file with nothing to mutate rejects every case.
pub fn mutations(target: &FuzzTarget) -> BoxedStrategy<Mutant> {
    let all = target.mutants();
    if all.is_empty() {
        return Just(())
            .prop_filter_map("the file has nothing to mutate", |()| None::<Mutant>)
            .boxed();
    }
    prop::sample::select(all).boxed()
}

/// The ISP router's address on the Internet segment (203.0.113.0/24, a documentation range).
const ISP: &str = "203.0.113.1";

fn wan(site: usize) -> String {
    format!("203.0.113.{}", 10 + site)
}

fn floating(site: usize) -> String {
    format!("203.0.113.{}", 100 + site)
}

fn server(k: usize) -> String {
    format!("203.0.113.{}", 200 + k)
}

fn host_addr(site: usize, lan: usize, n: usize) -> String {
    format!("10.{}.{lan}.{}", site + 1, 10 + n)
}

fn container(site: usize) -> String {
    format!("172.{}.0.2", 17 + site)
}

impl GeneratedLab {
    /// The topology file.
    pub fn yaml(&self) -> String {
        let mut y = String::from("name: generated\nsegments:\n  - { name: internet }\n");
        for (i, site) in self.sites.iter().enumerate() {
            for j in 0..site.lans.len() {
                let _ = writeln!(y, "  - {{ name: lan{i}{j} }}");
            }
            if site.docker {
                let _ = writeln!(y, "  - {{ name: docker{i} }}");
            }
        }
        y.push_str("nodes:\n");
        let _ = writeln!(
            y,
            "  - name: isp\n    forwarding: true\n    interfaces:\n      - {{ name: eth0, segment: internet, addresses: [{ISP}/24] }}"
        );
        let routed: Vec<String> = self
            .sites
            .iter()
            .enumerate()
            .filter(|(_, s)| s.routed)
            .flat_map(|(i, s)| {
                (0..s.lans.len()).map(move |j| {
                    format!("      - {{ to: 10.{}.{j}.0/24, via: {} }}", i + 1, wan(i))
                })
            })
            .collect();
        if !routed.is_empty() {
            let _ = writeln!(y, "    routes:\n{}", routed.join("\n"));
        }
        for k in 0..self.servers {
            let _ = writeln!(
                y,
                "  - name: server{k}\n    interfaces:\n      - {{ name: eth0, segment: internet, addresses: [{}/24] }}\n    routes:\n      - {{ to: default, via: {ISP} }}\n    listen:\n      - {{ port: 22, ssh: \"SSH-2.0-OpenSSH_9.6\" }}\n      - {{ port: 80, http: {{ body: \"server{k}\" }} }}\n      - {{ port: 53, proto: udp }}",
                server(k)
            );
        }
        for (i, site) in self.sites.iter().enumerate() {
            self.router_yaml(&mut y, i, site);
            for (j, lan) in site.lans.iter().enumerate() {
                for (n, host) in lan.iter().enumerate() {
                    host_yaml(&mut y, i, j, n, host, site.docker && j == 0 && n == 0);
                }
            }
            if site.docker {
                let _ = writeln!(
                    y,
                    "  - name: c{i}\n    interfaces:\n      - {{ name: eth0, segment: docker{i}, addresses: [{}/24] }}\n    routes:\n      - {{ to: default, via: 172.{}.0.1 }}\n    listen:\n      - {{ port: 80, http: {{ body: \"container {i}\" }} }}",
                    container(i),
                    17 + i
                );
            }
        }
        y
    }

    fn router_yaml(&self, y: &mut String, i: usize, site: &Site) {
        let wan_addrs = if site.floating_ip {
            format!("{}/24, {}/32", wan(i), floating(i))
        } else {
            format!("{}/24", wan(i))
        };
        let _ = writeln!(
            y,
            "  - name: r{i}\n    forwarding: {}\n    interfaces:\n      - {{ name: wan0, segment: internet, addresses: [{wan_addrs}] }}",
            site.forwarding
        );
        for j in 0..site.lans.len() {
            let _ = writeln!(
                y,
                "      - {{ name: lan{j}, segment: lan{i}{j}, addresses: [10.{}.{j}.1/24] }}",
                i + 1
            );
        }
        let _ = writeln!(y, "    routes:\n      - {{ to: default, via: {ISP} }}");
        let first = host_addr(i, 0, 0);
        let mut nat = Vec::new();
        if site.port_forward {
            nat.push(format!(
                "{{ in: wan0, proto: tcp, dport: 2222, dnat: \"{first}:22\" }}"
            ));
        }
        if site.floating_ip {
            nat.push(format!("{{ dst: {}, dnat: {first} }}", floating(i)));
            nat.push(format!(
                "{{ src: {first}, out: wan0, snat: {} }}",
                floating(i)
            ));
        }
        if site.masquerade {
            nat.push(format!(
                "{{ src: 10.{}.0.0/16, out: wan0, masquerade: true }}",
                i + 1
            ));
        }
        if !nat.is_empty() {
            let _ = writeln!(y, "    nat:");
            for rule in nat {
                let _ = writeln!(y, "      - {rule}");
            }
        }
        let mut firewall = String::new();
        if site.drops_ping {
            firewall.push_str(
                "      input:\n        rules:\n          - { proto: icmp, action: drop }\n",
            );
        }
        if site.filter != ForwardFilter::Open {
            firewall.push_str("      forward:\n        policy: drop\n        rules:\n");
            firewall.push_str("          - { state: [established, related], action: accept }\n");
            for j in 0..site.lans.len() {
                let _ = writeln!(firewall, "          - {{ in: lan{j}, action: accept }}");
            }
            if site.port_forward || site.floating_ip {
                firewall.push_str("          - { state: [dnat], action: accept }\n");
            }
            if let ForwardFilter::StatefulReject(with) = site.filter {
                let _ = writeln!(
                    firewall,
                    "          - {{ action: reject, reject_with: {with} }}"
                );
            }
        }
        if !firewall.is_empty() {
            let _ = write!(y, "    firewall:\n{firewall}");
        }
    }

    /// Every node that sends probes, and every target worth probing, then the picks.
    pub fn probes(&self) -> Vec<ProbeSpec> {
        let mut sources = Vec::new();
        let mut targets: Vec<(String, Vec<Probe>)> = Vec::new();
        let tcp = |p: u16| Probe::Tcp {
            port: Port::new(p).unwrap_or(Port::SSH),
        };
        let common = || {
            vec![
                Probe::Ping,
                tcp(22),
                tcp(80),
                Probe::Udp {
                    port: Port::new(53).unwrap_or(Port::SSH),
                },
            ]
        };
        for k in 0..self.servers {
            sources.push(format!("server{k}"));
            targets.push((server(k), common()));
        }
        targets.push((ISP.to_owned(), vec![Probe::Ping, tcp(22)]));
        for (i, site) in self.sites.iter().enumerate() {
            let mut router = vec![Probe::Ping, tcp(22)];
            if site.port_forward {
                router.push(tcp(2222));
            }
            targets.push((wan(i), router));
            if site.floating_ip {
                targets.push((floating(i), common()));
            }
            for (j, lan) in site.lans.iter().enumerate() {
                for n in 0..lan.len() {
                    sources.push(format!("h{i}{j}{n}"));
                    let mut probes = common();
                    if site.docker && j == 0 && n == 0 {
                        probes.push(tcp(8080));
                    }
                    targets.push((host_addr(i, j, n), probes));
                }
            }
            if site.docker {
                sources.push(format!("c{i}"));
                targets.push((container(i), vec![Probe::Ping, tcp(80)]));
            }
        }
        let all: Vec<ProbeSpec> = sources
            .iter()
            .flat_map(|from| {
                targets.iter().flat_map(move |(target, probes)| {
                    probes.iter().map(move |probe| ProbeSpec {
                        from: from.clone(),
                        probe: probe.clone(),
                        target: target.clone(),
                    })
                })
            })
            .collect();
        let mut picked: Vec<ProbeSpec> = Vec::new();
        for &pick in &self.picks {
            if let Some(p) = all.get(pick as usize % all.len().max(1))
                && !picked.contains(p)
            {
                picked.push(p.clone());
            }
        }
        picked
    }

    /// The probes as requests on the loaded network.
    pub fn requests(&self, net: &Network) -> Result<Vec<ProbeRequest>, run::ProbeError> {
        self.probes()
            .into_iter()
            .map(|p| {
                Ok(ProbeRequest {
                    from: run::node_named(net, &p.from)?,
                    dst: run::target_address(net, &p.target)?,
                    written: p.target,
                    probe: p.probe,
                    count: 1,
                    wait: None,
                    ttl: None,
                })
            })
            .collect()
    }
}

fn host_yaml(y: &mut String, i: usize, j: usize, n: usize, host: &Host, docker: bool) {
    let _ = writeln!(
        y,
        "  - name: h{i}{j}{n}\n    forwarding: {docker}\n    interfaces:\n      - {{ name: eth0, segment: lan{i}{j}, addresses: [{}/24] }}",
        host_addr(i, j, n)
    );
    if docker {
        let _ = writeln!(
            y,
            "      - {{ name: docker0, segment: docker{i}, addresses: [172.{}.0.1/24] }}",
            17 + i
        );
    }
    if host.default_route {
        let _ = writeln!(
            y,
            "    routes:\n      - {{ to: default, via: 10.{}.{j}.1 }}",
            i + 1
        );
    }
    if docker {
        let _ = writeln!(
            y,
            "    nat:\n      - {{ in: eth0, proto: tcp, dport: 8080, dnat: \"{}:80\" }}\n      - {{ src: 172.{}.0.0/24, out: eth0, masquerade: true }}",
            container(i),
            17 + i
        );
    }
    let mut listen = Vec::new();
    if host.ssh {
        listen.push("{ port: 22, ssh: \"SSH-2.0-OpenSSH_8.9p1\" }".to_owned());
    }
    if host.http {
        listen.push(format!("{{ port: 80, http: {{ body: \"h{i}{j}{n}\" }} }}"));
    }
    if host.udp_echo {
        listen.push("{ port: 53, proto: udp }".to_owned());
    }
    if !listen.is_empty() {
        let _ = writeln!(y, "    listen:");
        for l in listen {
            let _ = writeln!(y, "      - {l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::{Config, TestRunner};

    #[test]
    fn generated_labs_are_valid_and_their_probes_resolve() {
        let mut runner = TestRunner::new(Config {
            cases: 300,
            ..Config::default()
        });
        runner
            .run(&internet(), |lab| {
                let yaml = lab.yaml();
                let net = match crate::topology::load_str("gen.yaml", &yaml) {
                    Ok(l) => l.network,
                    Err(r) => {
                        return Err(TestCaseError::fail(format!(
                            "invalid: {:?}\n{yaml}",
                            r.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
                        )));
                    }
                };
                let requests = lab.requests(&net);
                prop_assert!(requests.is_ok(), "{requests:?}");
                prop_assert!(!lab.probes().is_empty());
                Ok(())
            })
            .expect("generated labs are valid");
    }
}
