//! proptest strategies over topologies, for property tests of your own (and the emulator's
//! differential test): [`internet`] generates small "Internet with sites" networks that mix
//! routers, subnets, default routes, masquerading, port forwarding, 1:1 (floating-IP-like)
//! NAT, stateful filters and Docker-like bridges, each with a handful of probes worth asking
//! (a share of the routers, and of the Docker hosts, write their netfilter as `iptables-save`
//! text with user chains, marks, CONNMARK, addrtype, negations and the rest: [`RouterRules`],
//! [`Construct`]);
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
    /// The router's netfilter as `iptables-save` text (`iptables: |`) in place of `nat:` and
    /// `firewall:`: the same translations and filter, written as real rule sets write them.
    pub rules: Option<RouterRules>,
    /// With `docker`: the Docker host's netfilter as Docker writes it (`iptables: |`: the
    /// DOCKER chains, `! -i docker0`, addrtype, FORWARD DROP) in place of its `nat:`.
    pub docker_rules: bool,
    /// With `docker`: what `docker0` is. Its segment holds two containers, whose traffic to
    /// each other only crosses it.
    pub docker_bridge: DockerBridge,
    /// With `docker`: Docker's `icc` (inter-container communication). `false` drops what the
    /// bridge carries from one container to the other, once br_netfilter shows it to FORWARD.
    pub icc: bool,
}

/// What the Docker host's `docker0` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerBridge {
    /// An interface plugged into a switch (the segment) no node owns.
    Switch,
    /// The host's Linux bridge (`bridge: true`), without br_netfilter.
    Bridge,
    /// The host's Linux bridge with br_netfilter: what it bridges passes the host's iptables.
    BrNetfilter,
}

/// How a site router writes its rules as `iptables-save` text. Whatever is drawn, the text
/// keeps what the site's other fields ask (its port forward, 1:1 NAT, masquerade, filter and
/// ping drop) and goes through user chains: `! -i wan0 -j LAN-OUT` and `-i wan0 -j WAN-IN`
/// in FORWARD, `-j SITE-DNAT` in nat PREROUTING. The rest is drawn here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterRules {
    /// INPUT policy DROP: `-i lo`, replies, the LANs (`! -i wan0`) and pings that are not
    /// INVALID (`! --ctstate INVALID`) pass; the WAN's TCP to the router times out. With
    /// `goto_wan` too, replies pass by their connection's status (`--ctstatus SEEN_REPLY`,
    /// and `--ctstate RELATED` for errors) rather than by `--ctstate ESTABLISHED`.
    pub input_drop: bool,
    /// FORWARD enters WAN-IN with `-g` (its end, and its RETURN, apply FORWARD's policy and
    /// skip the REJECT after the jump) rather than `-j`.
    pub goto_wan: bool,
    /// INVALID packets are logged (`-j LOG`) and dropped before anything else in FORWARD.
    pub drop_invalid: bool,
    /// LAN hosts from the LAN's second host to the next LAN's first (`-m iprange`) may open
    /// only SSH out (`! --dport 22`): the rest is rejected with this type.
    pub range_reject: Option<&'static str>,
    /// Connections from the LANs are marked (`-j MARK`, `-j CONNMARK --save-mark`) and
    /// their replies pass by the restored mark (`-m connmark`, `--restore-mark`, `-m mark`)
    /// rather than by `--ctstate ESTABLISHED`.
    pub connmark: bool,
    /// kube-proxy's pattern: traffic from the LANs to the router's own addresses is marked
    /// in nat (`KUBE-MARK-MASQ`, `--set-xmark 0x4000/0x4000`) and masqueraded by the mark,
    /// so a LAN host reaches the port forward and the floating IP (hairpin NAT).
    pub hairpin_mark: bool,
    /// With masquerade: how traffic between the site's LANs escapes it.
    pub lan_exempt: LanExempt,
    /// The WAN may open SSH and HTTP to the LANs (`-m multiport --dports 22,80`), except
    /// from the second server (`! -s`): reachable on a routed site.
    pub open_ports: bool,
    /// Translated connections pass from the WAN except ICMP (`! -p icmp`).
    pub dnat_not_icmp: bool,
    /// nat PREROUTING returns what is not for the router (`-m addrtype ! --dst-type LOCAL
    /// -j RETURN`) rather than jumping only with `--dst-type LOCAL`.
    pub negated_addrtype: bool,
    /// A rejecting FORWARD answers TCP with a reset before its ICMP error.
    pub tcp_reset: bool,
}

/// How a masquerading router leaves traffic between its own LANs untranslated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanExempt {
    /// `-s LANS -o wan0 -j MASQUERADE`, as the YAML says it.
    OutWan,
    /// `-s LANS -d LANS -j ACCEPT`, then `-s LANS -j MASQUERADE` (nat ACCEPT).
    Accept,
    /// `-s LANS -j SITE-SNAT`, whose first rule is `-d LANS -j RETURN` (nat RETURN).
    Return,
}

/// A construct of the generated `iptables-save` text, counted by [`GeneratedLab::constructs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Construct {
    JumpChain,
    GotoChain,
    FilterReturn,
    NatAccept,
    NatReturn,
    SetMark,
    MatchMark,
    SaveConnmark,
    RestoreConnmark,
    MatchConnmark,
    AddrtypeLocal,
    AddrtypeNotLocal,
    AddrtypeSrcLocal,
    NotProto,
    NotSource,
    NotIn,
    NotOut,
    NotDport,
    NotCtstate,
    Ctstatus,
    DropInvalid,
    Multiport,
    Iprange,
    LoopbackOnInputDrop,
    RejectTcpReset,
    RejectPortUnreachable,
    RejectHostUnreachable,
    RejectNetUnreachable,
    RejectAdminProhibited,
    Log,
    HostRules,
}

impl Construct {
    /// Every construct, in order.
    pub const ALL: [Construct; 31] = [
        Construct::JumpChain,
        Construct::GotoChain,
        Construct::FilterReturn,
        Construct::NatAccept,
        Construct::NatReturn,
        Construct::SetMark,
        Construct::MatchMark,
        Construct::SaveConnmark,
        Construct::RestoreConnmark,
        Construct::MatchConnmark,
        Construct::AddrtypeLocal,
        Construct::AddrtypeNotLocal,
        Construct::AddrtypeSrcLocal,
        Construct::NotProto,
        Construct::NotSource,
        Construct::NotIn,
        Construct::NotOut,
        Construct::NotDport,
        Construct::NotCtstate,
        Construct::Ctstatus,
        Construct::DropInvalid,
        Construct::Multiport,
        Construct::Iprange,
        Construct::LoopbackOnInputDrop,
        Construct::RejectTcpReset,
        Construct::RejectPortUnreachable,
        Construct::RejectHostUnreachable,
        Construct::RejectNetUnreachable,
        Construct::RejectAdminProhibited,
        Construct::Log,
        Construct::HostRules,
    ];

    /// How the construct is written.
    pub fn name(self) -> &'static str {
        match self {
            Construct::JumpChain => "-j USER-CHAIN",
            Construct::GotoChain => "-g USER-CHAIN",
            Construct::FilterReturn => "filter -j RETURN",
            Construct::NatAccept => "nat -j ACCEPT",
            Construct::NatReturn => "nat -j RETURN",
            Construct::SetMark => "-j MARK --set-xmark",
            Construct::MatchMark => "-m mark --mark",
            Construct::SaveConnmark => "-j CONNMARK --save-mark",
            Construct::RestoreConnmark => "-j CONNMARK --restore-mark",
            Construct::MatchConnmark => "-m connmark --mark",
            Construct::AddrtypeLocal => "-m addrtype --dst-type LOCAL",
            Construct::AddrtypeNotLocal => "-m addrtype ! --dst-type LOCAL",
            Construct::AddrtypeSrcLocal => "-m addrtype --src-type LOCAL",
            Construct::NotProto => "! -p",
            Construct::NotSource => "! -s",
            Construct::NotIn => "! -i",
            Construct::NotOut => "! -o",
            Construct::NotDport => "! --dport",
            Construct::NotCtstate => "! --ctstate",
            Construct::Ctstatus => "--ctstatus",
            Construct::DropInvalid => "--ctstate INVALID -j DROP",
            Construct::Multiport => "-m multiport --dports",
            Construct::Iprange => "-m iprange --src-range",
            Construct::LoopbackOnInputDrop => "INPUT DROP, -i lo -j ACCEPT",
            Construct::RejectTcpReset => "REJECT tcp-reset",
            Construct::RejectPortUnreachable => "REJECT icmp-port-unreachable",
            Construct::RejectHostUnreachable => "REJECT icmp-host-unreachable",
            Construct::RejectNetUnreachable => "REJECT icmp-net-unreachable",
            Construct::RejectAdminProhibited => "REJECT icmp-admin-prohibited",
            Construct::Log => "-j LOG",
            Construct::HostRules => "iptables text on a host",
        }
    }
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

fn router_rules() -> impl Strategy<Value = RouterRules> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::option::weighted(
            0.5,
            prop_oneof![
                Just("tcp-reset"),
                Just("icmp-net-unreachable"),
                Just("icmp-port-unreachable"),
            ],
        ),
        (any::<bool>(), any::<bool>()),
        prop_oneof![
            Just(LanExempt::OutWan),
            Just(LanExempt::Accept),
            Just(LanExempt::Return),
        ],
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (input_drop, goto_wan, drop_invalid),
                range_reject,
                (connmark, hairpin_mark),
                lan_exempt,
                (open_ports, dnat_not_icmp, negated_addrtype, tcp_reset),
            )| RouterRules {
                input_drop,
                goto_wan,
                drop_invalid,
                range_reject,
                connmark,
                hairpin_mark,
                lan_exempt,
                open_ports,
                dnat_not_icmp,
                negated_addrtype,
                tcp_reset,
            },
        )
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
        prop::option::weighted(0.4, router_rules()),
        (
            prop::bool::weighted(0.5),
            prop_oneof![
                1 => Just(DockerBridge::Switch),
                1 => Just(DockerBridge::Bridge),
                2 => Just(DockerBridge::BrNetfilter),
            ],
            prop::bool::weighted(0.5),
        ),
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
                rules,
                (docker_rules, docker_bridge, icc),
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
                rules,
                docker_rules,
                docker_bridge,
                icc,
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

/// The second container of a site, beside the first on `docker0`.
fn container_b(site: usize) -> String {
    format!("172.{}.0.3", 17 + site)
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
                    host_yaml(&mut y, (i, j, n), host, site);
                }
            }
            if site.docker {
                for (name, address) in [
                    (format!("c{i}"), container(i)),
                    (format!("c{i}b"), container_b(i)),
                ] {
                    let _ = writeln!(
                        y,
                        "  - name: {name}\n    interfaces:\n      - {{ name: eth0, segment: docker{i}, addresses: [{address}/24] }}\n    routes:\n      - {{ to: default, via: 172.{}.0.1 }}\n    listen:\n      - {{ port: 80, http: {{ body: \"container {name}\" }} }}",
                        17 + i
                    );
                }
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
        match &site.rules {
            Some(rules) => iptables_block(y, &router_iptables(i, site, rules)),
            None => yaml_netfilter(y, i, site),
        }
    }

    /// Every node that writes its rules as `iptables-save` text, with the text.
    pub fn iptables_texts(&self) -> Vec<(String, String)> {
        let mut texts = Vec::new();
        for (i, site) in self.sites.iter().enumerate() {
            if let Some(rules) = &site.rules {
                texts.push((format!("r{i}"), router_iptables(i, site, rules)));
            }
            if site.docker && site.docker_rules {
                texts.push((format!("h{i}00"), docker_iptables(i, site.icc)));
            }
        }
        texts
    }

    /// The constructs the lab's `iptables-save` texts use, in [`Construct::ALL`]'s order
    /// (empty when every node writes YAML rules).
    pub fn constructs(&self) -> Vec<Construct> {
        let mut found = Vec::new();
        for (node, text) in self.iptables_texts() {
            constructs_in(&text, &mut found);
            if node.starts_with('h') {
                found.push(Construct::HostRules);
            }
        }
        found.sort();
        found.dedup();
        found
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
                sources.push(format!("c{i}b"));
                targets.push((container(i), vec![Probe::Ping, tcp(80)]));
                targets.push((container_b(i), vec![Probe::Ping, tcp(80)]));
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
        // Always what crosses a Docker bridge from one container to the other: rare among the
        // picks, and the one path br_netfilter and `icc` decide.
        for p in self.across_bridges() {
            if !picked.contains(&p) {
                picked.push(p);
            }
        }
        picked
    }

    /// The probes from one container of a site to the other, which only its `docker0` carries.
    pub fn across_bridges(&self) -> Vec<ProbeSpec> {
        let mut out = Vec::new();
        for (i, _) in self.sites.iter().enumerate().filter(|(_, s)| s.docker) {
            out.push(ProbeSpec {
                from: format!("c{i}b"),
                probe: Probe::Tcp { port: Port::HTTP },
                target: container(i),
            });
            out.push(ProbeSpec {
                from: format!("c{i}"),
                probe: Probe::Ping,
                target: container_b(i),
            });
        }
        out
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

/// The router's `nat:` and `firewall:` in YAML.
fn yaml_netfilter(y: &mut String, i: usize, site: &Site) {
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
        firewall
            .push_str("      input:\n        rules:\n          - { proto: icmp, action: drop }\n");
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

/// `iptables: |` with the text indented under it.
fn iptables_block(y: &mut String, text: &str) {
    y.push_str("    iptables: |\n");
    for line in text.lines() {
        let _ = writeln!(y, "      {line}");
    }
}

/// The site router's rules as `iptables-save` prints them: what `yaml_netfilter` says, through
/// user chains, with what `rules` draws around it.
fn router_iptables(i: usize, site: &Site, rules: &RouterRules) -> String {
    let mut text = filter_table(i, site, rules);
    text.push_str(&nat_table(i, site, rules));
    text
}

fn policy(drop: bool) -> &'static str {
    if drop { "DROP" } else { "ACCEPT" }
}

fn filter_table(i: usize, site: &Site, r: &RouterRules) -> String {
    let lans = format!("10.{}.0.0/16", i + 1);
    let mut t = String::from("*filter\n");
    let _ = writeln!(t, ":INPUT {} [0:0]", policy(r.input_drop));
    let _ = writeln!(
        t,
        ":FORWARD {} [0:0]",
        policy(site.filter != ForwardFilter::Open)
    );
    t.push_str(":OUTPUT ACCEPT [0:0]\n:LAN-OUT - [0:0]\n:WAN-IN - [0:0]\n");
    if r.input_drop {
        t.push_str("-A INPUT -i lo -j ACCEPT\n");
    }
    if site.drops_ping {
        t.push_str("-A INPUT -p icmp -j DROP\n");
    }
    if r.input_drop && r.goto_wan {
        t.push_str("-A INPUT -m conntrack --ctstate RELATED -j ACCEPT\n");
        t.push_str("-A INPUT -m conntrack --ctstatus SEEN_REPLY -j ACCEPT\n");
    } else if r.input_drop {
        t.push_str("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
        t.push_str("-A INPUT ! -i wan0 -j ACCEPT\n");
        t.push_str("-A INPUT -p icmp -m conntrack ! --ctstate INVALID -j ACCEPT\n");
    }
    if r.drop_invalid {
        t.push_str("-A FORWARD -m conntrack --ctstate INVALID -j LOG --log-prefix \"invalid: \"\n");
        t.push_str("-A FORWARD -m conntrack --ctstate INVALID -j DROP\n");
    }
    if r.connmark {
        t.push_str("-A FORWARD -m conntrack --ctstate RELATED -j ACCEPT\n");
        t.push_str("-A FORWARD -m connmark --mark 0x1/0x1 -j CONNMARK --restore-mark --nfmask 0x1 --ctmask 0x1\n");
        t.push_str("-A FORWARD -m mark --mark 0x1/0x1 -j ACCEPT\n");
    } else {
        t.push_str("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    }
    t.push_str("-A FORWARD ! -i wan0 -j LAN-OUT\n");
    let _ = writeln!(
        t,
        "-A FORWARD -i wan0 -{} WAN-IN",
        if r.goto_wan { 'g' } else { 'j' }
    );
    if let ForwardFilter::StatefulReject(with) = site.filter {
        if r.tcp_reset {
            t.push_str("-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\n");
        }
        let _ = writeln!(t, "-A FORWARD -j REJECT --reject-with icmp-{with}");
    }
    if let Some(with) = r.range_reject {
        let _ = writeln!(
            t,
            "-A LAN-OUT -p tcp -m iprange --src-range 10.{n}.0.11-10.{n}.1.10 -m tcp ! --dport 22 -m conntrack --ctstate NEW -j REJECT --reject-with {with}",
            n = i + 1
        );
    }
    if r.connmark {
        t.push_str("-A LAN-OUT -j MARK --set-xmark 0x1/0x1\n");
        t.push_str("-A LAN-OUT -j CONNMARK --save-mark --nfmask 0x1 --ctmask 0x1\n");
    }
    t.push_str("-A LAN-OUT -j ACCEPT\n");
    if site.port_forward || site.floating_ip {
        let not_icmp = if r.dnat_not_icmp { "! -p icmp " } else { "" };
        let _ = writeln!(
            t,
            "-A WAN-IN {not_icmp}-m conntrack --ctstate DNAT -j ACCEPT"
        );
    }
    if r.open_ports {
        let _ = writeln!(
            t,
            "-A WAN-IN ! -s {}/32 -d {lans} -p tcp -m multiport --dports 22,80 -j ACCEPT",
            server(1)
        );
    }
    t.push_str("-A WAN-IN -j RETURN\nCOMMIT\n");
    t
}

fn nat_table(i: usize, site: &Site, r: &RouterRules) -> String {
    let lans = format!("10.{}.0.0/16", i + 1);
    let first = host_addr(i, 0, 0);
    let exempt = if site.masquerade {
        Some(r.lan_exempt)
    } else {
        None
    };
    let mut t = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    if r.hairpin_mark {
        t.push_str(":KUBE-MARK-MASQ - [0:0]\n");
    }
    t.push_str(":SITE-DNAT - [0:0]\n");
    if exempt == Some(LanExempt::Return) {
        t.push_str(":SITE-SNAT - [0:0]\n");
    }
    if r.negated_addrtype {
        t.push_str("-A PREROUTING -m addrtype ! --dst-type LOCAL -j RETURN\n");
        t.push_str("-A PREROUTING -j SITE-DNAT\n");
    } else {
        t.push_str("-A PREROUTING -m addrtype --dst-type LOCAL -j SITE-DNAT\n");
    }
    if r.hairpin_mark {
        t.push_str("-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n");
    }
    if site.floating_ip {
        let _ = writeln!(
            t,
            "-A POSTROUTING -s {first}/32 -o wan0 -j SNAT --to-source {}",
            floating(i)
        );
    }
    match exempt {
        None => {}
        Some(LanExempt::OutWan) => {
            let _ = writeln!(t, "-A POSTROUTING -s {lans} -o wan0 -j MASQUERADE");
        }
        Some(LanExempt::Accept) => {
            let _ = writeln!(t, "-A POSTROUTING -s {lans} -d {lans} -j ACCEPT");
            let _ = writeln!(t, "-A POSTROUTING -s {lans} -j MASQUERADE");
        }
        Some(LanExempt::Return) => {
            let _ = writeln!(t, "-A POSTROUTING -s {lans} -j SITE-SNAT");
        }
    }
    if r.hairpin_mark {
        t.push_str("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
        let _ = writeln!(t, "-A SITE-DNAT -s {lans} -j KUBE-MARK-MASQ");
    }
    if site.port_forward {
        // With the hairpin, the LANs reach the port forward too.
        let from_wan = if r.hairpin_mark { "" } else { "-i wan0 " };
        let _ = writeln!(
            t,
            "-A SITE-DNAT {from_wan}-p tcp -m tcp --dport 2222 -j DNAT --to-destination {first}:22"
        );
    }
    if site.floating_ip {
        let _ = writeln!(
            t,
            "-A SITE-DNAT -d {}/32 -j DNAT --to-destination {first}",
            floating(i)
        );
    }
    if exempt == Some(LanExempt::Return) {
        let _ = writeln!(t, "-A SITE-SNAT -d {lans} -j RETURN");
        t.push_str("-A SITE-SNAT -j MASQUERADE\n");
    }
    t.push_str("COMMIT\n");
    t
}

/// A Docker host's rules as Docker writes them for one bridge and one published port
/// (`-p 8080:80`) with `userland-proxy: false` (the host's own connections to the port are
/// translated in OUTPUT and masqueraded by `--src-type LOCAL`), with `iptables-save`'s layout.
fn docker_iptables(i: usize, icc: bool) -> String {
    let icc = if icc { "ACCEPT" } else { "DROP" };
    let bridge = format!("172.{}.0.0/24", 17 + i);
    let c = container(i);
    format!(
        "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s {bridge} ! -o docker0 -j MASQUERADE
-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {c}:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j {icc}
-A DOCKER -d {c}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
"
    )
}

/// The constructs one `iptables-save` text uses, added to `found` (each once).
fn constructs_in(text: &str, found: &mut Vec<Construct>) {
    let mut add = |c: Construct| {
        if !found.contains(&c) {
            found.push(c);
        }
    };
    let (mut table, mut user, mut input_drop) = ("", Vec::new(), false);
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            (table, user) = (name, Vec::new());
            continue;
        }
        if let Some(declared) = line.strip_prefix(':') {
            let mut words = declared.split_whitespace();
            match (words.next(), words.next()) {
                (Some(name), Some("-")) => user.push(name),
                (Some("INPUT"), Some("DROP")) if table == "filter" => input_drop = true,
                _ => {}
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|at| words.get(at + 1).copied())
        };
        let has = |part: &str| line.contains(part);
        if after("-j").is_some_and(|t| user.contains(&t)) {
            add(Construct::JumpChain);
        }
        if after("-g").is_some_and(|t| user.contains(&t)) {
            add(Construct::GotoChain);
        }
        match (table, after("-j")) {
            ("filter", Some("RETURN")) => add(Construct::FilterReturn),
            ("nat", Some("RETURN")) => add(Construct::NatReturn),
            ("nat", Some("ACCEPT")) => add(Construct::NatAccept),
            _ => {}
        }
        for (part, construct) in [
            ("-j MARK --set-xmark", Construct::SetMark),
            ("-m mark --mark", Construct::MatchMark),
            ("--save-mark", Construct::SaveConnmark),
            ("--restore-mark", Construct::RestoreConnmark),
            ("-m connmark --mark", Construct::MatchConnmark),
            ("-m addrtype --dst-type LOCAL", Construct::AddrtypeLocal),
            (
                "-m addrtype ! --dst-type LOCAL",
                Construct::AddrtypeNotLocal,
            ),
            ("-m addrtype --src-type LOCAL", Construct::AddrtypeSrcLocal),
            ("! -p ", Construct::NotProto),
            ("! -s ", Construct::NotSource),
            ("! -i ", Construct::NotIn),
            ("! -o ", Construct::NotOut),
            ("! --dport ", Construct::NotDport),
            ("! --ctstate ", Construct::NotCtstate),
            ("--ctstatus ", Construct::Ctstatus),
            ("--ctstate INVALID -j DROP", Construct::DropInvalid),
            ("-m multiport --dports", Construct::Multiport),
            ("-m iprange --src-range", Construct::Iprange),
            ("--reject-with tcp-reset", Construct::RejectTcpReset),
            (
                "--reject-with icmp-port-unreachable",
                Construct::RejectPortUnreachable,
            ),
            (
                "--reject-with icmp-host-unreachable",
                Construct::RejectHostUnreachable,
            ),
            (
                "--reject-with icmp-net-unreachable",
                Construct::RejectNetUnreachable,
            ),
            (
                "--reject-with icmp-admin-prohibited",
                Construct::RejectAdminProhibited,
            ),
            ("-j LOG", Construct::Log),
        ] {
            if has(part) {
                add(construct);
            }
        }
        if input_drop && line == "-A INPUT -i lo -j ACCEPT" {
            add(Construct::LoopbackOnInputDrop);
        }
    }
}

fn host_yaml(y: &mut String, (i, j, n): (usize, usize, usize), host: &Host, site: &Site) {
    let docker = site.docker && j == 0 && n == 0;
    let _ = writeln!(
        y,
        "  - name: h{i}{j}{n}\n    forwarding: {docker}\n    interfaces:\n      - {{ name: eth0, segment: lan{i}{j}, addresses: [{}/24] }}",
        host_addr(i, j, n)
    );
    if docker {
        let bridge = match site.docker_bridge {
            DockerBridge::Switch => "",
            DockerBridge::Bridge | DockerBridge::BrNetfilter => "bridge: true, ",
        };
        let _ = writeln!(
            y,
            "      - {{ name: docker0, segment: docker{i}, {bridge}addresses: [172.{}.0.1/24] }}",
            17 + i
        );
        if site.docker_bridge == DockerBridge::BrNetfilter {
            y.push_str("    br_netfilter: true\n");
        }
    }
    if host.default_route {
        let _ = writeln!(
            y,
            "    routes:\n      - {{ to: default, via: 10.{}.{j}.1 }}",
            i + 1
        );
    }
    if docker && site.docker_rules {
        iptables_block(y, &docker_iptables(i, site.icc));
    } else if docker {
        let _ = writeln!(
            y,
            "    nat:\n      - {{ in: eth0, proto: tcp, dport: 8080, dnat: \"{}:80\" }}\n      - {{ src: 172.{}.0.0/24, out: eth0, masquerade: true }}",
            container(i),
            17 + i
        );
        if !site.icc {
            y.push_str("    firewall:\n      forward:\n        rules:\n          - { in: docker0, out: docker0, action: drop }\n");
        }
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

    /// The labs `tests/emulate.rs` draws: its fixed seed, its strategy, one tree each.
    fn differential_labs(cases: usize) -> Vec<GeneratedLab> {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{RngAlgorithm, TestRng};
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&20261126u64.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        let strategy = internet();
        (0..cases)
            .map(|_| strategy.new_tree(&mut runner).expect("a tree").current())
            .collect()
    }

    /// The lab with every node's rules back in YAML (`nat:`/`firewall:`).
    fn without_iptables(lab: &GeneratedLab) -> GeneratedLab {
        let mut plain = lab.clone();
        for site in &mut plain.sites {
            site.rules = None;
            site.docker_rules = false;
        }
        plain
    }

    #[test]
    fn the_differential_labs_use_every_construct_load_and_keep_meaningful_probes() {
        use crate::model::Outcome;
        use crate::sim::SimConfig;
        let labs = differential_labs(300);
        let mut counts = vec![0usize; Construct::ALL.len()];
        let (mut with_rules, mut probes, mut replies) = (0, 0, 0);
        let (mut changed, mut stopped, mut opened) = (0, 0, 0);
        for (n, lab) in labs.iter().enumerate() {
            let load = |lab: &GeneratedLab| {
                let yaml = lab.yaml();
                let net = crate::topology::load_str("gen.yaml", &yaml)
                    .unwrap_or_else(|r| panic!("lab {n} is invalid: {:?}\n{yaml}", r.diagnostics))
                    .network;
                let requests = lab
                    .requests(&net)
                    .unwrap_or_else(|e| panic!("lab {n}: {e}\n{yaml}"));
                (net, requests)
            };
            let (net, requests) = load(lab);
            let constructs = lab.constructs();
            for c in &constructs {
                counts[Construct::ALL.iter().position(|a| a == c).expect("listed")] += 1;
            }
            if constructs.is_empty() {
                continue;
            }
            with_rules += 1;
            // The same probes with the rules back in YAML: what the rule sets change.
            let (plain_net, plain_requests) = load(&without_iptables(lab));
            for (request, plain) in requests.into_iter().zip(plain_requests) {
                let config = SimConfig::default();
                let got = crate::run::run_request(&net, request, &config).run.outcome;
                let before = crate::run::run_request(&plain_net, plain, &config)
                    .run
                    .outcome;
                probes += 1;
                replies += usize::from(got == Outcome::Reply);
                stopped += usize::from(got != Outcome::Reply && before == Outcome::Reply);
                opened += usize::from(got == Outcome::Reply && before != Outcome::Reply);
                changed += usize::from(got != before);
            }
        }
        eprintln!(
            "{with_rules} of {} labs write iptables text; of their {probes} probes {replies} get a reply; against the same lab in YAML the rule sets change {changed} outcomes, stop {stopped} replies and let {opened} through",
            labs.len()
        );
        for (c, count) in Construct::ALL.iter().zip(&counts) {
            eprintln!("  {:<32} {count} labs", c.name());
        }
        let rare: Vec<_> = Construct::ALL
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n < 5)
            .map(|(c, n)| format!("{} ({n})", c.name()))
            .collect();
        assert!(rare.is_empty(), "constructs in fewer than 5 labs: {rare:?}");
        assert!(with_rules >= 100, "{with_rules}");
        assert!(
            replies * 5 >= probes,
            "{replies} of {probes} probes get a reply"
        );
        assert!(
            changed >= 40 && stopped >= 5 && opened >= 5,
            "changed {changed}, stopped {stopped}, opened {opened}"
        );
    }

    #[test]
    fn the_same_seed_writes_the_same_topologies() {
        let a: Vec<String> = differential_labs(20)
            .iter()
            .map(GeneratedLab::yaml)
            .collect();
        let b: Vec<String> = differential_labs(20)
            .iter()
            .map(GeneratedLab::yaml)
            .collect();
        assert_eq!(a, b);
    }
}
