//! The iptables rules `dockerd` writes for an engine, as `nat:` and FORWARD rules of its host.
//! They follow moby's `integration/network/bridge/iptablesdoc/generated/new-daemon.md` and
//! `usernet-portmap.md` (docs/platform-semantics.md, "Docker", **Rules**), flattened because
//! the rules here have no negated output interface and no user chains: one masquerade and one
//! PREROUTING DNAT rule per non-Docker interface of the host stand for `! -o BRIDGE` and for
//! the nat DOCKER chain that RETURNs every bridge.

use std::net::Ipv4Addr;

use super::containers::Published;
use super::plan::{BridgeId, EnginePlan};
use crate::format::Located;
use crate::format::file::{ActionName, NatChainName, RuleSpec, StateName};

/// The nat rules: masquerading for each bridge, then the DNAT rules of the published ports,
/// bridge by bridge.
pub(super) fn nat(plan: &EnginePlan<'_>) -> Vec<RuleSpec> {
    let mut nat = masquerade(plan);
    let local = plan.local_addresses();
    for (id, _) in plan.bridges().filter(|(_, b)| !b.internal) {
        for p in plan.published_on(id) {
            published_dnat(plan, p, &local, &mut nat);
        }
    }
    nat
}

/// `POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE`, as one rule per interface the host had
/// before Docker.
fn masquerade(plan: &EnginePlan<'_>) -> Vec<RuleSpec> {
    let host_name = &plan.host.name;
    let mut nat = Vec::new();
    for bridge in plan.bridges.iter().filter(|b| !b.internal) {
        let span = bridge.span;
        for iface in &plan.host.outer_ifaces {
            nat.push(RuleSpec {
                masquerade: Some(Located::at(true, span)),
                src: Some(Located::at(bridge.subnet.to_string(), span)),
                out_iface: Some(Located::at(iface.clone(), span)),
                comment: Some(format!("Docker on `{host_name}`: `POSTROUTING -s {} ! -o {} -j MASQUERADE` (containers leave from the host's address)", bridge.subnet, bridge.iface)),
                ..RuleSpec::default()
            });
        }
    }
    nat
}

/// A published port's DNAT to `containerIP:C`: in PREROUTING for packets from outside the
/// bridges (per outer interface), in OUTPUT for the host's own connections to a
/// non-loopback local address; `-p 127.0.0.1:…` is left to docker-proxy.
fn published_dnat(
    plan: &EnginePlan<'_>,
    p: &Published<'_>,
    local: &[Ipv4Addr],
    nat: &mut Vec<RuleSpec>,
) {
    let outer = &plan.host.outer_ifaces;
    let words = p.words(&plan.host.name);
    let dnat = |chain, in_iface: Option<&String>, dst: Option<Ipv4Addr>| {
        dnat_rule(p, &words, chain, in_iface, dst)
    };
    match p.publish.host_ip {
        // docker-proxy alone serves 127.0.0.1 (OUTPUT skips 127.0.0.0/8).
        Some(ip) if ip.is_loopback() => {}
        Some(ip) => {
            for iface in outer {
                nat.push(dnat(NatChainName::Prerouting, Some(iface), Some(ip)));
            }
            nat.push(dnat(NatChainName::Output, None, Some(ip)));
        }
        None => {
            for iface in outer {
                let mut rule = dnat(NatChainName::Prerouting, Some(iface), None);
                rule.dst_local = Some(true);
                nat.push(rule);
            }
            for &a in local {
                nat.push(dnat(NatChainName::Output, None, Some(a)));
            }
        }
    }
}

/// `-p H:C` in `chain`: to host port H (of `dst`, when given) → `containerIP:C`.
fn dnat_rule(
    p: &Published<'_>,
    words: &str,
    chain: NatChainName,
    in_iface: Option<&String>,
    dst: Option<Ipv4Addr>,
) -> RuleSpec {
    let span = p.span;
    RuleSpec {
        in_iface: in_iface.map(|i| Located::at(i.clone(), span)),
        dst: dst.map(|d| Located::at(d.to_string(), span)),
        dst_local: None,
        proto: Some(Located::at(p.publish.proto, span)),
        dport: Some(Located::at(p.publish.host_port.to_string(), span)),
        dnat: Some(Located::at(
            format!("{}:{}", p.address, p.publish.container_port),
            span,
        )),
        chain: Some(Located::at(chain, span)),
        comment: Some(words.to_owned()),
        ..RuleSpec::default()
    }
}

/// FORWARD, in the order of moby's iptablesdoc, to go before the host's own rules: the
/// isolation between bridges, then each bridge's rules.
pub(super) fn forward(plan: &EnginePlan<'_>) -> Vec<RuleSpec> {
    let mut rules = isolation(plan);
    for (id, _) in plan.bridges() {
        bridge_forward(plan, id, &mut rules);
    }
    rules
}

/// DOCKER-ISOLATION-STAGE-1/2: a packet from one bridge to another is dropped.
fn isolation(plan: &EnginePlan<'_>) -> Vec<RuleSpec> {
    let host_name = &plan.host.name;
    let mut rules = Vec::new();
    for a in &plan.bridges {
        let span = a.span;
        for other in plan.bridges.iter().filter(|o| o.iface != a.iface) {
            rules.push(RuleSpec {
                in_iface: Some(Located::at(a.iface.clone(), span)),
                out_iface: Some(Located::at(other.iface.clone(), span)),
                action: Some(Located::at(ActionName::Drop, span)),
                comment: Some(format!("Docker isolation between bridges `{}` and `{}` on `{host_name}` (DOCKER-ISOLATION-STAGE-1/2): networks `{}` and `{}` do not reach each other", a.iface, other.iface, a.network, other.network)),
                ..RuleSpec::default()
            });
        }
    }
    rules
}

/// One bridge's FORWARD rules: answers toward it, its published ports (the DOCKER chain),
/// a drop of the rest entering it from outside, and an accept of what leaves it.
fn bridge_forward(plan: &EnginePlan<'_>, id: BridgeId, rules: &mut Vec<RuleSpec>) {
    let host_name = &plan.host.name;
    let bridge = plan.bridge(id);
    let span = bridge.span;
    let iface = || Some(Located::at(bridge.iface.clone(), span));
    if bridge.internal {
        // An internal network: nothing in from another interface, nothing out to one.
        for (in_iface, not_in, out_iface, not_out) in
            [(None, iface(), iface(), None), (iface(), None, None, iface())]
        {
            rules.push(RuleSpec {
                in_iface,
                not_in,
                out_iface,
                not_out,
                action: Some(Located::at(ActionName::Drop, span)),
                comment: Some(format!("Docker on `{host_name}`: `{}` is an internal network (`--internal`): nothing enters or leaves it", bridge.iface)),
                ..RuleSpec::default()
            });
        }
    }
    if !bridge.icc {
        rules.push(RuleSpec {
            in_iface: iface(),
            out_iface: iface(),
            action: Some(Located::at(ActionName::Drop, span)),
            comment: Some(format!("Docker on `{host_name}`: containers on `{}` may not reach each other (icc disabled)", bridge.iface)),
            ..RuleSpec::default()
        });
    }
    rules.push(RuleSpec {
        out_iface: iface(),
        state: vec![
            Located::at(StateName::Related, span),
            Located::at(StateName::Established, span),
        ],
        action: Some(Located::at(ActionName::Accept, span)),
        comment: Some(format!(
            "Docker on `{host_name}`: answers to connections of the containers on `{}`",
            bridge.iface
        )),
        ..RuleSpec::default()
    });
    for p in plan.published_on(id) {
        let pspan = p.span;
        rules.push(RuleSpec {
            not_in: iface(),
            out_iface: iface(),
            dst: Some(Located::at(p.address.to_string(), pspan)),
            proto: Some(Located::at(p.publish.proto, pspan)),
            dport: Some(Located::at(p.publish.container_port.to_string(), pspan)),
            action: Some(Located::at(ActionName::Accept, pspan)),
            comment: Some(p.words(host_name)),
            ..RuleSpec::default()
        });
    }
    rules.push(RuleSpec {
        not_in: iface(),
        out_iface: iface(),
        action: Some(Located::at(ActionName::Drop, span)),
        comment: Some(format!("Docker on `{host_name}` drops traffic entering bridge `{}` from outside that is not for a published port (DOCKER chain)", bridge.iface)),
        ..RuleSpec::default()
    });
    rules.push(RuleSpec {
        in_iface: iface(),
        action: Some(Located::at(ActionName::Accept, span)),
        comment: Some(format!(
            "Docker on `{host_name}`: the containers on `{}` may connect anywhere",
            bridge.iface
        )),
        ..RuleSpec::default()
    });
}
