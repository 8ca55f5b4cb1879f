//! Writes a planned Docker engine into the topology: a segment and a host interface per
//! bridge, a node per container, docker-proxy's listeners on the host, and the host's nat and
//! FORWARD rules (built in `rules`). Nothing here is checked or reported: `plan` did that.

use super::containers::{Attachment, Container, Published};
use super::plan::{Bridge, EnginePlan};
use super::rules;
use crate::format::Located;
use crate::format::file::{
    ChainSpec, FirewallSpec, InterfaceSpec, ListenSpec, NodeSpec, PolicyName, RouteSpec,
    SegmentSpec, TopologyFile,
};

/// Writes `plan` into `file`.
pub(super) fn emit(file: &mut TopologyFile, plan: &EnginePlan<'_>) {
    add_bridges(file, plan);
    file.nodes[plan.host.index].forwarding = Some(true);
    // dockerd 20.10 turns bridge-nf-call-iptables on (loading br_netfilter) for a network
    // with icc disabled, so that FORWARD sees what the bridge carries
    // (docs/platform-semantics.md, "Docker", **Bridges**).
    if plan.bridges.iter().any(|b| !b.icc) {
        file.nodes[plan.host.index].br_netfilter = Some(true);
    }
    add_containers(file, plan);
    if !plan.userland_proxy {
        hairpin_ports(file, plan);
    }
    let nat = rules::nat(plan);
    // FORWARD runs DOCKER-USER first, then Docker's chains; a fix for what they drop is a
    // DOCKER-USER rule (docs/platform-semantics.md, "Docker").
    let fix = crate::model::PlatformFix::DockerUser {
        host: plan.host.name.clone(),
    };
    let mut forward: Vec<_> = plan
        .docker_user
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let mut rule = rule.clone();
            rule.comment.get_or_insert_with(|| {
                format!("rule {} of DOCKER-USER on `{}`", i + 1, plan.host.name)
            });
            rule
        })
        .chain(rules::forward(plan))
        .map(|mut rule| {
            rule.platform_fix = Some(fix.clone());
            rule
        })
        .collect();
    let host = &mut file.nodes[plan.host.index];
    host.nat.extend(nat);
    if plan.userland_proxy {
        host.listen.extend(plan.published.iter().map(proxy));
    }
    let firewall = host.firewall.get_or_insert_with(FirewallSpec::default);
    let chain = firewall.forward.get_or_insert_with(ChainSpec::default);
    if !plan.host.was_router && chain.policy.is_none() {
        chain.policy = Some(Located::at(PolicyName::Drop, plan.host.span));
    }
    // Docker's chains come before the host's own rules.
    forward.append(&mut chain.rules);
    chain.rules = forward;
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
        file.nodes[plan.host.index].interfaces.push(InterfaceSpec {
            bridge: Some(Located::at(true, span)),
            hairpin: None,
            name: Located::at(bridge.iface.clone(), span),
            segment: Located::at(bridge.segment.clone(), span),
            addresses: vec![Located::at(address, span)],
            mac: None,
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
                // No default route when every network is internal (docs/platform-semantics.md,
                // "Docker", **Several networks**).
                let routes = container
                    .gateway()
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
    InterfaceSpec {
        bridge: None,
        hairpin: None,
        name: Located::at(format!("eth{index}"), a.span),
        segment: Located::at(bridge.segment.clone(), a.span),
        addresses: vec![Located::at(
            format!("{}/{}", a.address, bridge.subnet.prefix_len()),
            a.address_span,
        )],
        mac: Some(Located::at(
            format!("02:42:{o1:02x}:{o2:02x}:{o3:02x}:{o4:02x}"),
            a.span,
        )),
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
    proxy
}
