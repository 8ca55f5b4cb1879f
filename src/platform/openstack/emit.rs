//! Writes a checked [`Plan`] into the file: a segment per tenant network, a forwarding node
//! per router (its `qg-` and `qr-` ports, default route and the L3 agent's nat table), and a
//! node per instance (its port, default route and security groups). Addresses become the
//! file's text only here, from the typed values of the plan.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::plan::{Downlink, FloatingIp, Instance, Network, NetworkRef, Plan, Router, Uplink};
use super::security::{self, Members};
use crate::format::file::{
    InterfaceSpec, NatChainName, NodeSpec, RouteSpec, RuleSpec, SegmentSpec, TopologyFile,
};
use crate::format::{Diagnostic, Located, Span};

/// Appends the plan's segments and nodes to `file`: segments, then routers, then instances.
/// Security-group rules that do not check are reported into `out` (once per instance).
pub(super) fn emit(file: &mut TopologyFile, plan: &Plan<'_>, out: &mut Vec<Diagnostic>) {
    file.segments
        .extend(plan.networks.valid.values().map(segment));
    file.nodes.extend(plan.routers.iter().map(router_node));
    let members = security::members(&plan.instances);
    for inst in &plan.instances {
        let node = instance_node(inst, plan, &members, out);
        file.nodes.push(node);
    }
}

/// `fa:16:3e:xx:xx:xx`, OpenStack's MAC prefix, from a stable hash of `key`.
fn neutron_mac(key: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let [_, a, b, c] = h.to_be_bytes();
    format!("fa:16:3e:{a:02x}:{b:02x}:{c:02x}")
}

/// `addr` on `net` as an interface address: `ADDRESS/PREFIX`.
fn on(addr: Ipv4Addr, net: Ipv4Net) -> String {
    format!("{addr}/{}", net.prefix_len())
}

/// The default route via `gateway`, written at `span`.
fn default_route(gateway: Ipv4Addr, span: Span) -> RouteSpec {
    RouteSpec {
        to: Located::at("default".into(), span),
        via: Some(Located::at(gateway.to_string(), span)),
        ..RouteSpec::default()
    }
}

/// A tenant network's segment: VXLAN's MTU unless given, and a note that outside does not
/// route to it.
fn segment(n: &Network<'_>) -> SegmentSpec {
    let name = &n.spec.name;
    SegmentSpec {
        name: name.clone(),
        note: Some(format!(
            "tenant network `{}` ({}) of OpenStack: not routed from outside; reach instances through their floating IPs",
            name.value, n.subnet.net
        )),
        mtu: Some(
            n.spec
                .mtu
                .clone()
                .unwrap_or_else(|| Located::at(1450, name.span)),
        ),
        ..SegmentSpec::default()
    }
}

/// A router's node: its ports, its default route to the external network's gateway and its
/// nat table — each floating IP's DNAT and SNAT first, then (with `enable_snat`) the SNAT of
/// each attached subnet.
fn router_node(r: &Router<'_>) -> NodeSpec {
    let rname = &r.spec.name.value;
    let mut node = NodeSpec {
        name: r.spec.name.clone(),
        forwarding: Some(true),
        ..NodeSpec::default()
    };
    if let Some(up) = &r.uplink {
        node.interfaces.push(uplink_interface(rname, up));
        if let Some(via) = &up.default_via {
            node.routes.push(default_route(via.value, via.span));
        }
    }
    node.interfaces
        .extend(r.downlinks.iter().map(|d| downlink_interface(rname, d)));
    if let Some(up) = &r.uplink {
        for f in &up.floating {
            node.nat.extend(floating_rules(rname, up, f));
        }
        if r.spec.enable_snat != Some(false) {
            node.nat
                .extend(r.downlinks.iter().map(|d| subnet_snat(rname, up, d)));
        }
    }
    node
}

/// The `qg-` port: the router's gateway address on the external subnet and each floating IP
/// it serves as a /32, so that it answers ARP for them.
fn uplink_interface(rname: &str, up: &Uplink<'_>) -> InterfaceSpec {
    let span = up.address.span;
    let mut addresses = vec![Located::at(on(up.address.value, up.net), span)];
    addresses.extend(
        up.floating
            .iter()
            .map(|f| Located::at(format!("{}/32", f.address.value), f.address.span)),
    );
    InterfaceSpec {
        mac: Some(Located::at(neutron_mac(&format!("{rname}/qg")), span)),
        ..InterfaceSpec::generated(&up.name, up.segment, addresses, span)
    }
}

/// A `qr-` port at its tenant network's gateway.
fn downlink_interface(rname: &str, d: &Downlink<'_>) -> InterfaceSpec {
    let n = d.network;
    let addresses = vec![Located::at(on(d.subnet.gateway, d.subnet.net), n.span)];
    InterfaceSpec {
        mac: Some(Located::at(
            neutron_mac(&format!("{rname}/{}", n.value)),
            n.span,
        )),
        ..InterfaceSpec::generated(&d.name, &n.value, addresses, n.span)
    }
}

/// The L3 agent's rules for one floating IP: DNAT in prerouting and output, and the SNAT of
/// the fixed IP out of `qg-`.
fn floating_rules(rname: &str, up: &Uplink<'_>, f: &FloatingIp<'_>) -> [RuleSpec; 3] {
    let (fip, fixed, iname, span) = (f.address.value, f.fixed, f.instance, f.address.span);
    let words = format!("floating IP {fip} → {fixed} on router `{rname}`");
    let at = |text: String| Some(Located::at(text, span));
    [
        RuleSpec {
            dst: at(fip.to_string()),
            dnat: at(fixed.to_string()),
            comment: Some(format!("{words} (instance `{iname}`)")),
            ..RuleSpec::default()
        },
        RuleSpec {
            dst: at(fip.to_string()),
            dnat: at(fixed.to_string()),
            chain: Some(Located::at(NatChainName::Output, span)),
            comment: Some(format!(
                "{words} (instance `{iname}`), for the router's own packets"
            )),
            ..RuleSpec::default()
        },
        RuleSpec {
            src: at(fixed.to_string()),
            out_iface: at(up.name.clone()),
            snat: at(fip.to_string()),
            comment: Some(format!(
                "{words}: instance `{iname}` goes out from its floating IP"
            )),
            ..RuleSpec::default()
        },
    ]
}

/// `enable_snat`: the attached subnet leaves by `qg-` from the router's gateway address.
fn subnet_snat(rname: &str, up: &Uplink<'_>, d: &Downlink<'_>) -> RuleSpec {
    let (gw, span, net) = (up.address.value, up.address.span, d.subnet.net);
    let network = &d.network.value;
    RuleSpec {
        src: Some(Located::at(net.to_string(), span)),
        out_iface: Some(Located::at(up.name.clone(), span)),
        snat: Some(Located::at(gw.to_string(), span)),
        comment: Some(format!(
            "SNAT of router `{rname}` (enable_snat): network `{network}` ({net}) leaves from the router's gateway address {gw}"
        )),
        ..RuleSpec::default()
    }
}

/// An instance's node: the guest as written, its port on the tenant network with a default
/// route via the subnet's gateway (unless the guest has one), and its security groups.
fn instance_node(
    inst: &Instance<'_>,
    plan: &Plan<'_>,
    members: &Members<'_>,
    out: &mut Vec<Diagnostic>,
) -> NodeSpec {
    let i = inst.spec;
    let ifname = i
        .interface
        .as_ref()
        .map_or_else(|| "ens3".to_owned(), |l| l.value.clone());
    let mut node = NodeSpec {
        name: i.name.clone(),
        os: i.os.clone(),
        forwarding: i.forwarding,
        dns: i.dns.clone(),
        listen: i.listen.clone(),
        ..NodeSpec::default()
    };
    if let (Some(network), Some(fixed)) = (inst.network, inst.fixed) {
        node.interfaces
            .push(port_interface(inst, &ifname, network, fixed));
        if !i.routes.iter().any(|r| r.to.value == "default") {
            node.routes
                .push(default_route(network.subnet.gateway, i.network.span));
        }
    }
    node.routes.extend(i.routes.iter().cloned());
    if inst.port_security && !node.interfaces.is_empty() {
        let groups = &plan.groups.by_name;
        let firewall = security::firewall(inst, &ifname, groups, members, i.name.span, out);
        node.firewall = Some(Box::new(firewall));
    }
    node
}

/// An instance's Neutron port, `ifname` in the guest, with its fixed IP.
fn port_interface(
    inst: &Instance<'_>,
    ifname: &str,
    network: NetworkRef<'_>,
    fixed: Ipv4Addr,
) -> InterfaceSpec {
    let i = inst.spec;
    InterfaceSpec {
        name: Located::at(
            ifname.to_owned(),
            i.interface.as_ref().map_or(i.network.span, |l| l.span),
        ),
        segment: Located::at(network.name.to_owned(), i.network.span),
        addresses: vec![Located::at(on(fixed, network.subnet.net), i.fixed_ip.span)],
        mac: Some(Located::at(
            neutron_mac(&format!("{}/port", i.name.value)),
            i.fixed_ip.span,
        )),
        ..InterfaceSpec::default()
    }
}
