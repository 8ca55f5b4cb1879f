//! Writes a planned Docker engine into the topology: a segment and a host interface per
//! bridge, a node per container, docker-proxy's listeners on the host, and the rules dockerd
//! writes on the host (replayed in `iptables`). Nothing here is checked or reported: `plan` did that.

use super::containers::{Attachment, Container, Published};
use super::iptables;
use super::plan::{Bridge, EnginePlan, Version};
use crate::format::file::{
    InterfaceSpec, ListenSpec, NodeSpec, PlatformRules, RouteSpec, RuleProto, SegmentSpec,
    TopologyFile, UdpReplyFromName,
};
use crate::format::{Located, RulesText};
use crate::model::{DockerContainer, DockerEngine, DockerNetwork, Port, Proto};

/// Writes `plan` into `file`.
pub(super) fn emit(file: &mut TopologyFile, plan: &EnginePlan<'_>) {
    add_bridges(file, plan);
    file.nodes[plan.host.index].forwarding = Some(true);
    // dockerd 20.10 turns bridge-nf-call-iptables on (loading br_netfilter) for a network
    // with icc disabled, so that FORWARD sees what the bridge carries; 28 also does for every
    // network when the userland proxy is off, for the hairpin DNAT
    // (v28.5.2:libnetwork/drivers/bridge/bridge_linux.go:861; docs/platform-semantics.md,
    // "Docker", **Bridges** and **Docker 28**).
    let hairpin_dnat = plan.version == Version::V28 && !plan.userland_proxy;
    if hairpin_dnat || plan.bridges.iter().any(|b| !b.icc) {
        file.nodes[plan.host.index].br_netfilter = Some(true);
    }
    add_containers(file, plan);
    if !plan.userland_proxy {
        hairpin_ports(file, plan);
    }
    let written = iptables::write(plan);
    let record = record(file, plan);
    file.docker_engines.push(record);
    let host_name = plan.host.name.clone();
    let host = &mut file.nodes[plan.host.index];
    if plan.userland_proxy {
        host.listen.extend(plan.published.iter().map(proxy));
    }
    // FORWARD runs DOCKER-USER first, then Docker's chains; a fix for what they drop is a
    // DOCKER-USER rule (docs/platform-semantics.md, "Docker", **Rules**).
    host.platform_rules = Some(Box::new(PlatformRules {
        text: RulesText::generated(written.text, written.places, plan.host.span),
        before_own: written.before_own,
        user_chain: Some(("DOCKER-USER".into(), plan.docker_user.to_vec())),
        fix: Some(crate::model::PlatformFix::DockerUser {
            host: host_name.clone(),
        }),
        policy_comment: format!(
            "Docker on `{host_name}` turned forwarding on and set FORWARD's policy to DROP: into its bridges, only what its rules accept leads"
        ),
    }));
}

/// Each bridge: a segment private to the host, and the host's interface on it at the gateway.
fn add_bridges(file: &mut TopologyFile, plan: &EnginePlan<'_>) {
    let host_name = &plan.host.name;
    for bridge in &plan.bridges {
        let span = bridge.span;
        let what = if bridge.network == "bridge" {
            "the default bridge network".to_owned()
        } else {
            format!("Docker network `{}`", bridge.network)
        };
        file.segments.push(SegmentSpec {
            name: Located::at(bridge.segment.clone(), span),
            note: Some(format!("{what} (`{}`, {}) of Docker on `{host_name}`: private to that host; from outside, only its published ports lead in, at the host's address", bridge.iface, bridge.subnet)),
            ..SegmentSpec::default()
        });
        let address = format!("{}/{}", bridge.gateway, bridge.subnet.prefix_len());
        let addresses = vec![Located::at(address, span)];
        file.nodes[plan.host.index].interfaces.push(InterfaceSpec {
            bridge: Some(Located::at(true, span)),
            // Without the userland proxy dockerd sets route_localnet on its bridges
            // (createNetwork's setupLoopbackAddressesRouting), so that the host's connections
            // to a port published on 127.0.0.1 reach the container through the DNAT.
            route_localnet: (!plan.userland_proxy).then(|| Located::at(true, span)),
            ..InterfaceSpec::generated(&bridge.iface, &bridge.segment, addresses, span)
        });
    }
}

/// Without the userland proxy dockerd turns hairpin mode on for every container's port on its
/// bridges (libnetwork `setHairpinMode` when `!EnableUserlandProxy`), so that a container
/// reaches its own published port through the host (docs/platform-semantics.md, "Docker").
fn hairpin_ports(file: &mut TopologyFile, plan: &EnginePlan<'_>) {
    let segments: Vec<&str> = plan.bridges.iter().map(|b| b.segment.as_str()).collect();
    let containers: Vec<&str> = plan
        .containers
        .iter()
        .filter_map(|c| match c {
            Container::Bridged { spec, .. } => Some(spec.name.value.as_str()),
            Container::Host(_) | Container::Isolated(_) => None,
        })
        .collect();
    for node in file
        .nodes
        .iter_mut()
        .filter(|n| containers.contains(&n.name.value.as_str()))
    {
        for iface in node
            .interfaces
            .iter_mut()
            .filter(|i| segments.contains(&i.segment.value.as_str()))
        {
            iface.hairpin = Some(Located::at(true, iface.name.span));
        }
    }
}

/// The containers, in start order: `--network host` ones add their services to the host,
/// the others become nodes.
fn add_containers(file: &mut TopologyFile, plan: &EnginePlan<'_>) {
    for container in &plan.containers {
        match container {
            Container::Host(ct) => file.nodes[plan.host.index]
                .listen
                .extend(ct.listen.iter().cloned()),
            Container::Isolated(ct) => file.nodes.push(NodeSpec {
                name: ct.name.clone(),
                listen: ct.listen.clone(),
                dns: ct.dns.clone(),
                ..NodeSpec::default()
            }),
            Container::Bridged { spec, attachments } => {
                let interfaces = attachments
                    .iter()
                    .enumerate()
                    .map(|(i, a)| eth(plan.bridge(a.bridge), i, a))
                    .collect();
                // The default route via the gateway endpoint's network, internal or not in
                // 20.10; since moby v25 an internal network has no gateway, so none then
                // (docs/platform-semantics.md, "Docker", **Several networks**).
                let routes = container
                    .gateway()
                    .filter(|g| plan.version == Version::V20_10 || !plan.bridge(g.bridge).internal)
                    .map(|g| RouteSpec {
                        to: Located::at("default".into(), g.span),
                        via: Some(Located::at(
                            plan.bridge(g.bridge).gateway.to_string(),
                            g.span,
                        )),
                        ..RouteSpec::default()
                    })
                    .into_iter()
                    .collect();
                file.nodes.push(NodeSpec {
                    name: spec.name.clone(),
                    interfaces,
                    routes,
                    listen: spec.listen.clone(),
                    dns: spec.dns.clone(),
                    ..NodeSpec::default()
                });
            }
        }
    }
}

/// A container's interface `eth{index}` for attachment `a` on `bridge`, with the MAC address
/// Docker derived from its address before v26 (`02:42:` and the address).
fn eth(bridge: &Bridge, index: usize, a: &Attachment) -> InterfaceSpec {
    let [o1, o2, o3, o4] = a.address.octets();
    let addresses = vec![Located::at(
        format!("{}/{}", a.address, bridge.subnet.prefix_len()),
        a.address_span,
    )];
    InterfaceSpec {
        mac: Some(Located::at(
            format!("02:42:{o1:02x}:{o2:02x}:{o3:02x}:{o4:02x}"),
            a.span,
        )),
        ..InterfaceSpec::generated(format!("eth{index}"), &bridge.segment, addresses, a.span)
    }
}

/// docker-proxy's listener for a published port on `[IP:]H`: it answers as the container's
/// service on the port does (or as an empty listener when none listens there).
fn proxy(p: &Published<'_>) -> ListenSpec {
    let mut proxy = p.backend.cloned().unwrap_or_default();
    proxy.port = Located::at(u32::from(p.publish.host_port), p.span);
    proxy.proto = Some(Located::at(p.publish.proto_name(), p.span));
    proxy.address = p
        .publish
        .host_ip
        .map(|i| Located::at(i.to_string(), p.span));
    // docker-proxy's UDP socket answers with a plain write: from the address the route back
    // picks (docs/platform-semantics.md, "Docker", **Rules**).
    proxy.udp_reply_from =
        (p.publish.proto == RuleProto::Udp).then(|| Located::at(UdpReplyFromName::Route, p.span));
    proxy
}

/// What dockerd is asked for to build this plan (`reachlab emulate check --dockerd`), written
/// before the host gets Docker's rules and listeners.
fn record(file: &TopologyFile, plan: &EnginePlan<'_>) -> DockerEngine {
    let host = &file.nodes[plan.host.index];
    let own_rules = !host.nat.is_empty()
        || host.firewall.is_some()
        || host.iptables.is_some()
        || host.iptables_save.is_some()
        || host.nft.is_some()
        || host.nft_ruleset.is_some()
        || host.platform_rules.is_some();
    let docker_user = plan
        .docker_user
        .iter()
        .map(|r| iptables_words(r).ok_or_else(|| r.comment.clone().unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|comment| {
            format!("a `docker_user:` rule ({comment}) uses a key only `-s -d -i -o -p --dport --ctstate -j` rules may have in this mode")
        });
    let networks = plan.bridges[1..]
        .iter()
        .map(|b| DockerNetwork {
            name: b.network.clone(),
            subnet: b.subnet,
            gateway: b.gateway,
            internal: b.internal,
            icc: b.icc,
            bridge: b.iface.clone(),
            segment: b.segment.clone(),
        })
        .collect();
    let containers = plan
        .containers
        .iter()
        .filter_map(|c| match c {
            Container::Bridged { spec, attachments } => Some(DockerContainer {
                name: spec.name.value.clone(),
                attachments: attachments
                    .iter()
                    .map(|a| (plan.bridge(a.bridge).network.clone(), a.address))
                    .collect(),
                gateway: c.gateway().map(|g| plan.bridge(g.bridge).gateway),
                publish: spec.publish.iter().map(|p| p.value.clone()).collect(),
            }),
            Container::Host(_) | Container::Isolated(_) => None,
        })
        .collect();
    let proxies = if plan.userland_proxy {
        plan.published
            .iter()
            .filter_map(|p| {
                let proto = match p.publish.proto {
                    RuleProto::Udp => Proto::Udp,
                    _ => Proto::Tcp,
                };
                Some((proto, p.publish.host_ip, Port::new(p.publish.host_port)?))
            })
            .collect()
    } else {
        Vec::new()
    };
    DockerEngine {
        host: plan.host.name.clone(),
        version: plan.version.name().to_owned(),
        own_rules_text: None,
        forwarding_before: plan.host.was_router,
        userland_proxy: plan.userland_proxy,
        icc: plan.bridges.first().is_none_or(|b| b.icc),
        own_rules,
        docker_user,
        networks,
        containers,
        proxies,
    }
}

/// A `docker_user:` rule as the words after `iptables -I DOCKER-USER N`; `None` when it uses
/// a key beyond addresses, interfaces, protocol, destination port, state and verdict.
fn iptables_words(r: &crate::format::file::RuleSpec) -> Option<Vec<String>> {
    use crate::format::file::{ActionName, StateName};
    let unsupported = r.not_dport.is_some()
        || r.dst_local.is_some()
        || r.probability.is_some()
        || r.masquerade.is_some()
        || r.snat.is_some()
        || r.dnat.is_some()
        || r.chain.is_some()
        || r.reject_with.is_some();
    if unsupported {
        return None;
    }
    let mut words: Vec<String> = Vec::new();
    let mut pair = |negated: bool, flag: &str, value: &Option<Located<String>>| {
        if let Some(v) = value {
            if negated {
                words.push("!".into());
            }
            words.extend([flag.to_owned(), v.value.clone()]);
        }
    };
    pair(false, "-s", &r.src);
    pair(true, "-s", &r.not_src);
    pair(false, "-d", &r.dst);
    pair(true, "-d", &r.not_dst);
    pair(false, "-i", &r.in_iface);
    pair(true, "-i", &r.not_in);
    pair(false, "-o", &r.out_iface);
    pair(true, "-o", &r.not_out);
    if let Some(p) = &r.proto {
        let name = match p.value {
            RuleProto::Tcp => "tcp",
            RuleProto::Udp => "udp",
            RuleProto::Icmp => "icmp",
        };
        words.extend(["-p".into(), name.into()]);
    }
    if let Some(d) = &r.dport {
        words.extend(["--dport".into(), d.value.replace('-', ":")]);
    }
    if !r.state.is_empty() {
        let states: Vec<&str> = r
            .state
            .iter()
            .map(|s| match s.value {
                StateName::New => "NEW",
                StateName::Established => "ESTABLISHED",
                StateName::Related => "RELATED",
                StateName::Dnat => "DNAT",
            })
            .collect();
        words.extend([
            "-m".into(),
            "conntrack".into(),
            "--ctstate".into(),
            states.join(","),
        ]);
    }
    let verdict = match r.action.as_ref().map(|a| a.value) {
        Some(ActionName::Accept) => "ACCEPT",
        Some(ActionName::Drop) => "DROP",
        Some(ActionName::Reject) => "REJECT",
        None => return None,
    };
    words.extend(["-j".into(), verdict.into()]);
    Some(words)
}
