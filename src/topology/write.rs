//! Writing topologies: the model back into the file format, and the file format into YAML.
//! Used by generators and by the round-trip property tests (write → read gives the same model).

use crate::format::Located;
use crate::format::file::{
    ActionName, ChainSpec, ExpectSpec, FirewallSpec, GroupSpec, GroupsSpec, HttpSpec,
    InterfaceSpec, InvariantSpec, ListenSpec, NatChainName, NodeSpec, OsName, OutcomeName,
    PolicyName, ProtoName, ReachableSpec, RejectName, RouteSpec, RouteTypeName, RuleProto,
    RuleSpec, SegmentSpec, StateName, TopologyFile,
};
use crate::model::{
    Chain, Expectation, IfaceId, InvariantKind, L4, Listener, Match, NatAction, NatFlags, NatHook,
    NatRule, Netfilter, Network, Node, NodeSet, OsProfile, Outcome, Probe, Proto, Reach,
    RejectWith, RouteKind, RouteType, Segment, Service, States, TableEntry, Verdict,
};

/// The file that describes `net` (connected routes are left out: they follow from the addresses).
pub fn to_file(net: &Network) -> TopologyFile {
    let (groups, invariants) = invariants(net);
    TopologyFile {
        name: Some(net.name.clone()),
        description: net.description.clone(),
        segments: net.segments.iter().map(segment_spec).collect(),
        nodes: net.nodes.iter().map(|n| node_spec(net, n)).collect(),
        expect: net
            .expectations
            .iter()
            .map(|e| expect_spec(net, e))
            .collect(),
        groups,
        invariants,
        ..TopologyFile::default()
    }
}

/// A segment, its latency, loss and MTU written only where they differ from the defaults.
fn segment_spec(s: &Segment) -> SegmentSpec {
    SegmentSpec {
        name: s.name.clone().into(),
        latency: (!s.latency.is_zero()).then(|| format!("{}ns", s.latency.as_nanos()).into()),
        loss: (s.loss != 0.0).then(|| format!("{}%", s.loss * 100.0).into()),
        mtu: (s.mtu != 1500).then(|| u32::from(s.mtu).into()),
        note: s.note.clone(),
    }
}

/// A node with its interfaces, static and reject routes, listeners, NAT rules and firewall.
fn node_spec(net: &Network, n: &Node) -> NodeSpec {
    let plain = n
        .netfilter
        .as_deref()
        .filter(|nf| !nf.from_text && fits_rule_keys(nf));
    NodeSpec {
        name: n.name.clone().into(),
        os: match n.os {
            OsProfile::Linux => None,
            OsProfile::Windows => Some(OsName::Windows.into()),
        },
        forwarding: n.forwarding.then_some(true),
        br_netfilter: n.br_netfilter.then_some(true),
        interfaces: net
            .interfaces_of(n)
            .map(|i| InterfaceSpec {
                name: i.name.clone().into(),
                segment: net.segment(i.segment).name.clone().into(),
                addresses: i
                    .addresses
                    .iter()
                    .map(|a| Located::new(a.to_string()))
                    .collect(),
                mac: Some(i.mac.to_string().into()),
                bridge: (net.segment(i.segment).bridge == Some(i.id)).then(|| true.into()),
                hairpin: i.hairpin.then(|| true.into()),
                route_localnet: i.route_localnet.then(|| true.into()),
                proxy_arp: i.proxy_arp.then(|| true.into()),
                answers_arp_for: i
                    .answers_arp_for
                    .iter()
                    .map(|a| Located::new(a.to_string()))
                    .collect(),
            })
            .collect(),
        routes: n
            .routes
            .entries()
            .into_iter()
            .filter_map(|e| route_spec(net, e))
            .collect(),
        ip_addr: None,
        ip_route: None,
        ip_taken: None,
        dns: n.dns.iter().map(|d| Located::new(d.clone())).collect(),
        listen: n.listeners.iter().map(listen_spec).collect(),
        nat: plain.map_or_else(Vec::new, |nf| {
            nf.nat.iter().map(|r| nat_spec(net, r)).collect()
        }),
        firewall: plain.map(|nf| {
            Box::new(FirewallSpec {
                prerouting: chain_spec(net, &nf.prerouting),
                input: chain_spec(net, &nf.input),
                forward: chain_spec(net, &nf.forward),
                output: chain_spec(net, &nf.output),
            })
        }),
        iptables: n
            .netfilter
            .as_deref()
            .filter(|nf| nf.from_text || !fits_rule_keys(nf))
            .map(|nf| Box::new(Located::new(super::iptables::save(net, nf)))),
        iptables_save: None,
        nft: None,
        nft_ruleset: None,
        rules_text: None,
        platform_rules: None,
        resolver: None,
    }
}

/// A static or reject route as the file writes it; `None` for a connected route.
fn route_spec(net: &Network, e: TableEntry<'_>) -> Option<RouteSpec> {
    let to = if e.dst().prefix_len() == 0 {
        "default".to_owned()
    } else {
        e.dst().to_string()
    }
    .into();
    let metric = (e.metric() != 0).then(|| e.metric().into());
    match e {
        TableEntry::Route(r) if r.kind == RouteKind::Static => Some(RouteSpec {
            to,
            kind: None,
            via: r.gateway.map(|g| g.to_string().into()),
            dev: Some(net.interface(r.dev).name.clone().into()),
            metric,
        }),
        TableEntry::Route(_) => None,
        TableEntry::Reject(r) => Some(RouteSpec {
            to,
            kind: Some(Located::new(match r.kind {
                RouteType::Blackhole => RouteTypeName::Blackhole,
                RouteType::Unreachable => RouteTypeName::Unreachable,
                RouteType::Prohibit => RouteTypeName::Prohibit,
            })),
            via: None,
            dev: None,
            metric,
        }),
    }
}

/// A listener and the service answering on it.
fn listen_spec(l: &Listener) -> ListenSpec {
    let mut spec = ListenSpec {
        port: u32::from(l.port.get()).into(),
        proto: (l.proto == Proto::Udp).then(|| ProtoName::Udp.into()),
        address: l.bind.map(|b| b.to_string().into()),
        udp_reply_from: l
            .reply_from_route
            .then(|| crate::format::file::UdpReplyFromName::Route.into()),
        ..ListenSpec::default()
    };
    match &l.service {
        Service::Ssh { banner } => spec.ssh = Some(banner.clone().into()),
        Service::Http {
            status,
            body,
            content_type,
            requires,
            routes,
        } => {
            let url = |(a, p): &(std::net::Ipv4Addr, crate::model::Port)| {
                Located::new(format!("http://{a}:{p}/"))
            };
            spec.http = Some(Located::new(HttpSpec {
                status: Some(u32::from(*status).into()),
                body: body.clone(),
                content_type: Some(content_type.clone()),
                requires: requires.iter().map(url).collect(),
                routes: routes
                    .iter()
                    .map(|r| crate::format::file::HttpRouteSpec {
                        host: r.host.clone(),
                        path: Located::new(r.path.text().to_owned()),
                        r#match: Some(match r.path {
                            crate::model::PathMatch::Exact(_) => {
                                crate::format::file::PathMatchName::Exact
                            }
                            crate::model::PathMatch::Prefix(_) => {
                                crate::format::file::PathMatchName::Prefix
                            }
                        }),
                        upstreams: r.upstreams.iter().map(url).collect(),
                        note: (!r.note.is_empty()).then(|| r.note.clone()),
                    })
                    .collect(),
            }));
        }
        Service::Banner(b) => spec.banner = Some(b.clone().into()),
        Service::Plain => {}
    }
    spec
}

/// Whether the `nat` and `firewall` keys can say everything the netfilter holds; otherwise it
/// is written as `iptables-save` text.
fn fits_rule_keys(nf: &Netfilter) -> bool {
    let plain_match = |m: &Match| {
        let lo = Some(IfaceId::LOOPBACK);
        let keys = Match {
            not_proto: None,
            sport: None,
            not_sport: None,
            multiport: None,
            not_states: States::any(),
            status: None,
            src_type: None,
            dst_type: None,
            src_range: None,
            dst_range: None,
            mark: None,
            connmark: None,
            recent: None,
            ..m.clone()
        };
        keys == *m
            && (m.dst_type.is_none() || m.is_dst_local())
            && !m.states.contains(States::INVALID)
            && !m.states.contains(States::SNAT)
            && ![m.in_iface, m.not_in_iface, m.out_iface, m.not_out_iface].contains(&lo)
    };
    let plain_chain = |c: &Chain| {
        c.rules
            .iter()
            .all(|r| r.verdict().is_some() && plain_match(&r.matches))
    };
    // The `firewall:` keys have no raw chains.
    let no_raw = |c: &Chain| c.rules.is_empty() && c.policy == Verdict::Accept;
    nf.nat_chains.is_empty()
        && nf.filter_chains.is_empty()
        && no_raw(&nf.raw_prerouting)
        && no_raw(&nf.raw_output)
        && nf.nat.iter().all(|r| {
            plain_match(&r.matches)
                && matches!(
                    r.action,
                    NatAction::Dnat(..)
                        | NatAction::Masquerade(NatFlags {
                            random: false,
                            random_fully: false
                        })
                        | NatAction::Snat(
                            _,
                            NatFlags {
                                random: false,
                                random_fully: false
                            }
                        )
                )
        })
        && [&nf.prerouting, &nf.input, &nf.forward, &nf.output]
            .into_iter()
            .all(plain_chain)
}

/// A NAT rule: its matches, its action and the chain it sits in.
fn nat_spec(net: &Network, r: &NatRule) -> RuleSpec {
    let mut spec = match_spec(net, &r.matches);
    match &r.action {
        NatAction::Masquerade(_) => spec.masquerade = Some(true.into()),
        NatAction::Snat(a, _) => spec.snat = Some(a.to_string().into()),
        NatAction::Dnat(a, p) => {
            spec.dnat = Some(
                p.map_or_else(|| a.to_string(), |p| format!("{a}:{p}"))
                    .into(),
            );
        }
        // Not reached: a node with these is written as iptables-save text (`is_plain`).
        NatAction::Accept | NatAction::Flow(_) | NatAction::Effect(_) => {}
    }
    spec.chain = Some(
        match r.hook {
            NatHook::Prerouting => NatChainName::Prerouting,
            NatHook::Output => NatChainName::Output,
            NatHook::Postrouting => NatChainName::Postrouting,
        }
        .into(),
    );
    spec.comment = r.comment.clone();
    spec
}

/// An expectation: the probe under its own key with its target, and what must come back.
fn expect_spec(net: &Network, e: &Expectation) -> ExpectSpec {
    let target = Some(Located::new(e.target.written.clone()));
    let mut spec = ExpectSpec {
        from: net.node(e.from).name.clone().into(),
        outcome: outcome_name(e.outcome).into(),
        ttl: e.ttl.map(|t| u32::from(t).into()),
        max_rtt: e.max_rtt.map(|d| format!("{}ns", d.as_nanos()).into()),
        status: e.http_status.map(|s| u32::from(s).into()),
        body: e.body.clone().map(Located::new),
        ..ExpectSpec::default()
    };
    match &e.probe {
        Probe::Ping => spec.ping = target,
        Probe::Ssh { port } => {
            spec.ssh = target;
            spec.port = (port.get() != 22).then(|| u32::from(port.get()).into());
        }
        Probe::Curl { port, path } => {
            spec.curl = Some(format!("http://{}:{port}{path}", e.target.written).into());
        }
        Probe::Tcp { port } => {
            spec.tcp = target;
            spec.port = Some(u32::from(port.get()).into());
        }
        Probe::Udp { port } => {
            spec.udp = target;
            spec.port = Some(u32::from(port.get()).into());
        }
    }
    spec
}

/// The invariants, and the groups they name (each listing its nodes by name; groups no
/// invariant names are not in the model).
fn invariants(net: &Network) -> (GroupsSpec, Vec<Located<InvariantSpec>>) {
    let mut groups: Vec<GroupSpec> = Vec::new();
    let mut name = |set: &NodeSet| {
        if set.is_group && !groups.iter().any(|g| g.name.value == set.name) {
            groups.push(GroupSpec {
                name: set.name.clone().into(),
                members: set
                    .nodes
                    .iter()
                    .map(|&n| Located::new(net.node(n).name.clone()))
                    .collect(),
            });
        }
        Located::new(set.name.clone())
    };
    let invariants = net
        .invariants
        .iter()
        .map(|inv| {
            let spec = match &inv.kind {
                InvariantKind::Isolated { sets, probes } => InvariantSpec {
                    isolated: Some(sets.iter().map(&mut name).collect()),
                    probes: (!probes.is_empty())
                        .then(|| probes.iter().map(|p| p.to_string().into()).collect()),
                    ..InvariantSpec::default()
                },
                InvariantKind::Reachable { from, to, probe } => {
                    let to = match to {
                        Reach::Nodes(set) => name(set),
                        Reach::Address { written, .. } => Located::new(written.clone()),
                    };
                    InvariantSpec {
                        reachable: Some(ReachableSpec {
                            from: name(from),
                            to,
                            probe: Some(probe.to_string().into()),
                        }),
                        ..InvariantSpec::default()
                    }
                }
                InvariantKind::NoPrivateSourceBeyond { border } => InvariantSpec {
                    no_private_source_beyond: Some(name(border)),
                    ..InvariantSpec::default()
                },
            };
            Located::new(InvariantSpec {
                note: inv.note.clone(),
                ..spec
            })
        })
        .collect();
    (GroupsSpec(groups), invariants)
}

fn match_spec(net: &Network, m: &Match) -> RuleSpec {
    let iface = |i: Option<crate::model::IfaceId>| {
        i.map(|i| Located::new(net.interface_name(i).to_owned()))
    };
    let prefix = |n: Option<ipnet::Ipv4Net>| {
        n.map(|n| {
            Located::new(if n.prefix_len() == 32 {
                n.addr().to_string()
            } else {
                n.to_string()
            })
        })
    };
    RuleSpec {
        in_iface: iface(m.in_iface),
        not_in: iface(m.not_in_iface),
        out_iface: iface(m.out_iface),
        not_out: iface(m.not_out_iface),
        src: prefix(m.src),
        not_src: prefix(m.not_src),
        dst: prefix(m.dst),
        not_dst: prefix(m.not_dst),
        proto: m.proto.map(|p| {
            match p {
                L4::Tcp => RuleProto::Tcp,
                L4::Udp => RuleProto::Udp,
                L4::Icmp => RuleProto::Icmp,
            }
            .into()
        }),
        dport: m.dport.map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
            .into()
        }),
        not_dport: m.not_dport.map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
            .into()
        }),
        state: [
            (States::NEW, StateName::New),
            (States::ESTABLISHED, StateName::Established),
            (States::RELATED, StateName::Related),
            (States::DNAT, StateName::Dnat),
        ]
        .into_iter()
        .filter(|(s, _)| m.states.contains(*s))
        .map(|(_, n)| n.into())
        .collect(),
        dst_local: m.is_dst_local().then_some(true),
        probability: m
            .probability_ppb
            .map(|ppb| Located::new(f64::from(ppb) / 1e9)),
        ..RuleSpec::default()
    }
}

fn chain_spec(net: &Network, chain: &Chain) -> Option<ChainSpec> {
    if chain.policy == Verdict::Accept && chain.rules.is_empty() {
        return None;
    }
    Some(ChainSpec {
        policy: (chain.policy != Verdict::Accept).then(|| PolicyName::Drop.into()),
        rules: chain
            .rules
            .iter()
            .map(|r| {
                let mut spec = match_spec(net, &r.matches);
                let (action, with) = match r.verdict().unwrap_or(Verdict::Accept) {
                    Verdict::Accept => (ActionName::Accept, None),
                    Verdict::Drop => (ActionName::Drop, None),
                    Verdict::Reject(w) => (
                        ActionName::Reject,
                        Some(match w {
                            RejectWith::PortUnreachable => RejectName::PortUnreachable,
                            RejectWith::HostUnreachable => RejectName::HostUnreachable,
                            RejectWith::NetUnreachable => RejectName::NetUnreachable,
                            RejectWith::AdminProhibited => RejectName::AdminProhibited,
                            RejectWith::TcpReset => RejectName::TcpReset,
                        }),
                    ),
                };
                spec.action = Some(action.into());
                spec.reject_with = with.map(Located::new);
                spec.comment = r.comment.clone();
                spec
            })
            .collect(),
    })
}

fn outcome_name(outcome: Outcome) -> OutcomeName {
    match outcome {
        Outcome::Reply => OutcomeName::Reply,
        Outcome::Refused => OutcomeName::Refused,
        Outcome::Timeout => OutcomeName::Timeout,
        Outcome::NoRoute => OutcomeName::NoRoute,
        Outcome::NetUnreachable => OutcomeName::NetUnreachable,
        Outcome::HostUnreachable => OutcomeName::HostUnreachable,
        Outcome::Filtered => OutcomeName::Filtered,
        Outcome::TtlExceeded => OutcomeName::TtlExceeded,
    }
}

/// The file as YAML text.
pub fn to_yaml(file: &TopologyFile) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(file)
}
