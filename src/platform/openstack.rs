//! `openstack:` — a Neutron project: tenant networks, routers, security groups, instances and
//! floating IPs (docs/platform-semantics.md, "OpenStack Neutron"), expanded into ordinary
//! segments, nodes and netfilter rules:
//!
//! - each tenant network is a segment (MTU 1450, VXLAN on a 1500 underlay) with a note saying
//!   it is not routed from outside;
//! - each router is a forwarding node with a `qg-` port on the external network's segment (its
//!   gateway address, plus every floating IP it serves as a /32 so that it answers ARP for them)
//!   and a `qr-` port at the gateway of each attached subnet; its default route goes to the
//!   external network's gateway. Its nat table is the L3 agent's: per floating IP a DNAT in
//!   prerouting and output and an SNAT of the fixed IP out of `qg-` (first), then, with
//!   `enable_snat` (default true), an SNAT of each attached subnet out of `qg-` to the gateway
//!   address. Nothing is translated between internal subnets;
//! - each instance is a node with `ens3` on its network and a default route via the subnet
//!   gateway. Its security groups become its `prerouting` chain, judged at the port before
//!   anything in the guest (a NodePort's DNAT included), and its output chain when a group's
//!   default egress rules are removed. Answers and related ICMP pass first (groups are stateful),
//!   then each ingress rule (`remote_group` = one rule per member's fixed IP; the `default`
//!   group implicitly admits its own members), then Neutron's `sg-fallback` DROP. With
//!   `port_security: false` the port has no filter at all.
//!
//! Not modelled: anti-spoofing (a port may send from any address here), the hairpin SNAT of an
//! instance reaching another's floating IP from inside, DHCP and the metadata route, IPv6.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::file::{
    ActionName, ChainSpec, FirewallSpec, InterfaceSpec, ListenSpec, NatChainName, NodeSpec, OsName,
    PolicyName, RouteSpec, RuleProto, RuleSpec, SegmentSpec, StateName, TopologyFile,
};
use crate::topology::{Code, Diagnostic, Located, Span};

/// An OpenStack project as Neutron and Nova see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OpenStackSpec {
    /// The provider network that holds the routers' gateways and the floating IPs (`public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_network: Option<ExternalNetworkSpec>,
    /// Tenant (self-service) networks, one subnet each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkSpec>,
    /// Neutron routers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<RouterSpec>,
    /// Security groups and their rules. `default` exists even when not listed, with Neutron's
    /// rules: egress to anything, ingress only from members of `default`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroupSpec>,
    /// Nova instances, one port each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceSpec>,
}

/// The external (provider) network, e.g. `public`: an existing segment of the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ExternalNetworkSpec {
    /// The network's name in OpenStack (the floating-IP pool), e.g. `public`.
    pub name: Located<String>,
    /// The segment of this file that the provider network is; the routers' `qg-` ports attach
    /// to it.
    pub segment: Located<String>,
    /// The subnet of the provider network, e.g. `192.168.37.0/24`; gateways and floating IPs
    /// come from it.
    pub cidr: Located<String>,
    /// The upstream router's address on the segment (a node of this file); the routers' default
    /// route goes through it. Without it the routers have no default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Located<String>>,
}

/// A tenant network with its subnet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The network's name; it becomes a segment name.
    pub name: Located<String>,
    /// The subnet, e.g. `192.168.0.0/24`.
    pub cidr: Located<String>,
    /// The subnet's gateway (default: the first address, as Neutron allocates it); the routers'
    /// `qr-` ports take it and the instances route through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Located<String>>,
    /// MTU of the network (default 1450: VXLAN on a 1500-byte underlay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<Located<u32>>,
}

/// A Neutron router.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouterSpec {
    /// The router's name; it becomes a node name.
    pub name: Located<String>,
    /// The router's address on the external network (its external gateway port). Without it the
    /// router only joins its tenant networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_gateway: Option<Located<String>>,
    /// The tenant networks the router has an interface on, each at its subnet's gateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Located<String>>,
    /// Whether the router SNATs its subnets' traffic leaving by the external network to its
    /// gateway address (default true, as Neutron).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_snat: Option<bool>,
}

/// A security group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    /// The group's name; `default` is the project's default group.
    pub name: Located<String>,
    /// Rules added to the group (Neutron's own defaults stay: egress to anything, and for
    /// `default` ingress from its members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SecurityGroupRuleSpec>,
    /// Whether the group keeps the egress-to-anything rules Neutron creates with it (default
    /// true); false models deleting them, so only the listed egress rules let traffic out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_egress: Option<bool>,
}

/// The direction of a security-group rule, seen from the instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic to the instance.
    #[default]
    Ingress,
    /// Traffic from the instance.
    Egress,
}

/// The IP version of a security-group rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Ethertype {
    #[default]
    IPv4,
    /// IPv6 rules are accepted and ignored (the simulator is IPv4 only).
    IPv6,
}

/// A security-group rule, with Neutron's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SecurityGroupRuleSpec {
    /// `ingress` or `egress`.
    pub direction: Located<Direction>,
    /// `IPv4` (default) or `IPv6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<Located<Ethertype>>,
    /// `tcp`, `udp` or `icmp` (every ICMP type); absent: any protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Located<RuleProto>>,
    /// Destination port `22` or range `50000-50004` (tcp and udp only); absent: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<Located<String>>,
    /// The remote prefix: sources for ingress, destinations for egress (default 0.0.0.0/0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_prefix: Option<Located<String>>,
    /// Instead of a prefix: the fixed IPs of the members of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_group: Option<Located<String>>,
}

/// A Nova instance with one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InstanceSpec {
    /// The instance's name; it becomes a node name.
    pub name: Located<String>,
    /// Guest OS profile (default linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Located<OsName>>,
    /// The tenant network of its port.
    pub network: Located<String>,
    /// The port's fixed IP, in the network's subnet.
    pub fixed_ip: Located<String>,
    /// A floating IP of the external network associated with the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floating_ip: Option<Located<String>>,
    /// The port's security groups (default `[default]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<Located<String>>>,
    /// Whether the port is filtered at all (default true); false removes security groups and
    /// anti-spoofing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_security: Option<bool>,
    /// The guest's interface name (default ens3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<Located<String>>,
    /// Extra static routes inside the guest (the default route via the subnet gateway is
    /// added unless one is given here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    /// Services in the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenSpec>,
    /// DNS names of the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Located<String>>,
    /// Whether the guest routes (`net.ipv4.ip_forward`, default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<bool>,
}

fn at<T>(value: T, span: Span) -> Located<T> {
    Located::at(value, span)
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

fn unknown(
    out: &mut Vec<Diagnostic>,
    what: &str,
    name: &Located<String>,
    context: String,
    names: &[&str],
    otherwise: &str,
) {
    let mut d = Diagnostic::error(
        Code::UnknownReference,
        name.span,
        format!(
            "{context} `{}`, which is not {what} of this file",
            name.value
        ),
    )
    .label(format!("unknown {}", what.trim_start_matches("a ")));
    d = match crate::topology::closest_name(&name.value, names) {
        Some(c) => d.hint(format!("did you mean `{c}`?")),
        None if names.is_empty() => d.hint(otherwise.to_owned()),
        None => {
            let mut sorted = names.to_vec();
            sorted.sort_unstable();
            d.hint(format!("{otherwise}; known: {}", sorted.join(", ")))
        }
    };
    out.push(d);
}

fn parse_addr(text: &Located<String>, what: &str, out: &mut Vec<Diagnostic>) -> Option<Ipv4Addr> {
    match text.value.trim().parse::<Ipv4Addr>() {
        Ok(a) => Some(a),
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not {what}", text.value),
                )
                .label("expected an IPv4 address")
                .hint("write it like 192.168.0.98, without a prefix length"),
            );
            None
        }
    }
}

fn parse_cidr(text: &Located<String>, what: &str, out: &mut Vec<Diagnostic>) -> Option<Ipv4Net> {
    match text.value.trim().parse::<Ipv4Net>() {
        Ok(n) if n.trunc() == n => Some(n),
        Ok(n) => {
            out.push(
                Diagnostic::error(
                    Code::HostBitsSet,
                    text.span,
                    format!("{what} `{}` has host bits set", text.value),
                )
                .label("not a network prefix")
                .hint(format!("did you mean {}?", n.trunc())),
            );
            None
        }
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not {what}", text.value),
                )
                .label("expected ADDRESS/PREFIX")
                .hint("write the subnet like 192.168.0.0/24"),
            );
            None
        }
    }
}

/// A host address of `net` (not its network or broadcast address, for prefixes up to /30).
fn usable(net: Ipv4Net, addr: Ipv4Addr) -> bool {
    net.contains(&addr)
        && (net.prefix_len() >= 31 || (addr != net.network() && addr != net.broadcast()))
}

fn outside(
    out: &mut Vec<Diagnostic>,
    text: &Located<String>,
    what: String,
    net: Ipv4Net,
    owner: &str,
) {
    out.push(
        Diagnostic::error(
            Code::BadValue,
            text.span,
            format!(
                "{what} is {}, which is not in {owner} ({net})",
                text.value.trim()
            ),
        )
        .label(format!("outside {net}"))
        .hint(format!(
            "Neutron allocates it from the subnet: pick an address from {} to {}",
            Ipv4Addr::from(u32::from(net.network()) + 1),
            Ipv4Addr::from(u32::from(net.broadcast()).saturating_sub(1))
        )),
    );
}

fn duplicate(out: &mut Vec<Diagnostic>, what: &str, name: &Located<String>, first: Span) {
    out.push(
        Diagnostic::error(
            Code::DuplicateName,
            name.span,
            format!("{what} `{}` is defined twice", name.value),
        )
        .label("second definition")
        .related(first, "first defined here")
        .hint(format!("give each {what} its own name")),
    );
}

/// `22` or `50000-50004` (Horizon writes `50000 - 50004`) as `dport` text.
fn port_range(text: &Located<String>, out: &mut Vec<Diagnostic>) -> Option<String> {
    let compact: String = text.value.chars().filter(|c| !c.is_whitespace()).collect();
    let (lo, hi) = compact.split_once('-').unwrap_or((&compact, &compact));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) if lo >= 1 && lo <= hi => Some(if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }),
        _ => {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    text.span,
                    format!("`{}` is not a port range", text.value),
                )
                .label("expected PORT or MIN-MAX")
                .hint("write `22` or `50000-50004`, ports 1 to 65535, MIN ≤ MAX"),
            );
            None
        }
    }
}

/// A router node being built, its `qg-` interface and its (network, `qr-` interface) pairs.
type RouterBuild = (NodeSpec, Option<String>, Vec<(String, String)>);

struct Network {
    net: Ipv4Net,
    gateway: Ipv4Addr,
}

struct Instance<'a> {
    spec: &'a InstanceSpec,
    network: Option<&'a str>,
    fixed: Option<Ipv4Addr>,
    floating: Option<Ipv4Addr>,
    groups: Vec<&'a str>,
    port_security: bool,
}

/// Expands the section into segments, nodes and rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &OpenStackSpec, out: &mut Vec<Diagnostic>) {
    // The external network.
    let mut external: Option<(Option<String>, Ipv4Net, String)> = None;
    let mut external_gateway: Option<(Ipv4Addr, Span)> = None;
    if let Some(ext) = &spec.external_network {
        let segments: Vec<&str> = file
            .segments
            .iter()
            .map(|s| s.name.value.as_str())
            .collect();
        let segment_ok = segments.contains(&ext.segment.value.as_str());
        if !segment_ok {
            unknown(
                out,
                "a segment",
                &ext.segment,
                format!("external network `{}` is segment", ext.name.value),
                &segments,
                "add the provider network's segment under `segments:` (with the upstream router on it)",
            );
        }
        let cidr = parse_cidr(&ext.cidr, "the external network's subnet", out);
        if let Some(gw) = &ext.gateway
            && let Some(addr) = parse_addr(gw, "a gateway address", out)
            && let Some(net) = cidr
        {
            if !usable(net, addr) {
                outside(
                    out,
                    gw,
                    "gateway".into(),
                    net,
                    &format!("external network `{}`", ext.name.value),
                );
            } else {
                let on_segment = file.nodes.iter().any(|n| {
                    n.interfaces.iter().any(|i| {
                        i.segment.value == ext.segment.value
                            && i.addresses
                                .iter()
                                .any(|a| a.value.split('/').next() == Some(&addr.to_string()))
                    })
                });
                if segment_ok && !on_segment {
                    out.push(
                        Diagnostic::error(
                            Code::UnknownReference,
                            gw.span,
                            format!(
                                "gateway {addr} of external network `{}` is no node's address on segment `{}`",
                                ext.name.value, ext.segment.value
                            ),
                        )
                        .label("nobody answers ARP for it")
                        .hint("give the upstream router this address on that segment, or leave `gateway:` out (the routers then have no default route)"),
                    );
                }
                external_gateway = Some((addr, gw.span));
            }
        }
        if let Some(net) = cidr {
            let segment = segment_ok.then(|| ext.segment.value.clone());
            external = Some((segment, net, ext.name.value.clone()));
        }
    }
    let external_name = spec
        .external_network
        .as_ref()
        .map(|e| e.name.value.as_str());

    // Tenant networks.
    let mut networks: HashMap<&str, Network> = HashMap::new();
    let mut first_network: HashMap<&str, Span> = HashMap::new();
    for n in &spec.networks {
        if let Some(first) = first_network.insert(&n.name.value, n.name.span) {
            duplicate(out, "OpenStack network", &n.name, first);
            continue;
        }
        let Some(net) = parse_cidr(&n.cidr, "a subnet", out) else {
            continue;
        };
        let gateway = match &n.gateway {
            Some(g) => match parse_addr(g, "a gateway address", out) {
                Some(a) if usable(net, a) => a,
                Some(_) => {
                    outside(
                        out,
                        g,
                        "gateway".into(),
                        net,
                        &format!("network `{}`", n.name.value),
                    );
                    continue;
                }
                None => continue,
            },
            None => Ipv4Addr::from(u32::from(net.network()) + 1),
        };
        file.segments.push(SegmentSpec {
            name: n.name.clone(),
            note: Some(format!(
                "tenant network `{}` ({net}) of OpenStack: not routed from outside; reach instances through their floating IPs",
                n.name.value
            )),
            mtu: Some(n.mtu.clone().unwrap_or_else(|| at(1450, n.name.span))),
            ..SegmentSpec::default()
        });
        networks.insert(&n.name.value, Network { net, gateway });
    }
    let network_names: Vec<&str> = spec
        .networks
        .iter()
        .map(|n| n.name.value.as_str())
        .collect();

    // Security groups (`default` always exists).
    let mut groups: HashMap<&str, &SecurityGroupSpec> = HashMap::new();
    let mut first_group: HashMap<&str, Span> = HashMap::new();
    for g in &spec.security_groups {
        if let Some(first) = first_group.insert(&g.name.value, g.name.span) {
            duplicate(out, "security group", &g.name, first);
            continue;
        }
        groups.insert(&g.name.value, g);
    }
    let mut group_names: Vec<&str> = spec
        .security_groups
        .iter()
        .map(|g| g.name.value.as_str())
        .collect();
    if !group_names.contains(&"default") {
        group_names.push("default");
    }

    // Instances.
    let mut instances: Vec<Instance<'_>> = Vec::new();
    let mut first_instance: HashMap<&str, Span> = HashMap::new();
    let mut floating_seen: HashMap<Ipv4Addr, Span> = HashMap::new();
    for i in &spec.instances {
        if let Some(first) = first_instance.insert(&i.name.value, i.name.span) {
            duplicate(out, "instance", &i.name, first);
            continue;
        }
        let name = &i.name.value;
        let network = match networks.get(i.network.value.as_str()) {
            Some(n) => Some((i.network.value.as_str(), n)),
            None => {
                if Some(i.network.value.as_str()) == external_name {
                    out.push(
                        Diagnostic::error(
                            Code::BadValue,
                            i.network.span,
                            format!("instance `{name}` is plugged straight into the external network `{}`", i.network.value),
                        )
                        .label("the provider network")
                        .hint("Nova fails such a launch with \"Binding failed for port\": put the instance on a tenant network (`networks:`) behind a router whose `external_gateway` is on the external network, and give it a floating IP"),
                    );
                } else if !first_network.contains_key(i.network.value.as_str()) {
                    unknown(
                        out,
                        "a network",
                        &i.network,
                        format!("instance `{name}` is on network"),
                        &network_names,
                        "declare the tenant network under `openstack: networks:`",
                    );
                }
                None
            }
        };
        let fixed = parse_addr(&i.fixed_ip, "a fixed IP", out).and_then(|a| match network {
            Some((nname, n)) if !usable(n.net, a) => {
                outside(out, &i.fixed_ip, format!("fixed IP of instance `{name}`"), n.net, &format!("network `{nname}`"));
                None
            }
            Some((nname, n)) if a == n.gateway => {
                out.push(
                    Diagnostic::error(Code::DuplicateAddress, i.fixed_ip.span, format!("fixed IP {a} of instance `{name}` is the gateway of network `{nname}`"))
                        .label("reserved for the router")
                        .hint("Neutron keeps the subnet's gateway address for the router interface: pick another address"),
                );
                None
            }
            _ => Some(a),
        });
        let floating = i.floating_ip.as_ref().and_then(|f| {
            let a = parse_addr(f, "a floating IP", out)?;
            let Some((_, net, ext)) = &external else {
                if spec.external_network.is_none() {
                    out.push(
                        Diagnostic::error(Code::MissingKey, f.span, format!("instance `{name}` has a floating IP, but there is no external network"))
                            .label("from which pool?")
                            .hint("add `openstack: external_network: {{ name, segment, cidr, gateway }}`"),
                    );
                }
                return None;
            };
            if !usable(*net, a) {
                outside(out, f, format!("floating IP of instance `{name}`"), *net, &format!("external network `{ext}`"));
                return None;
            }
            if let Some(first) = floating_seen.insert(a, f.span) {
                out.push(
                    Diagnostic::error(Code::DuplicateAddress, f.span, format!("floating IP {a} is associated twice"))
                        .label("already associated")
                        .related(first, "first associated here")
                        .hint("a floating IP belongs to one port at a time"),
                );
                return None;
            }
            Some(a)
        });
        let port_security = i.port_security.unwrap_or(true);
        let mut names: Vec<&str> = Vec::new();
        match &i.security_groups {
            None => names.push("default"),
            Some(list) => {
                for g in list {
                    if group_names.contains(&g.value.as_str()) {
                        names.push(&g.value);
                    } else {
                        unknown(
                            out,
                            "a security group",
                            g,
                            format!("instance `{name}` is in security group"),
                            &group_names,
                            "declare it under `openstack: security_groups:`",
                        );
                    }
                }
                if !port_security && !list.is_empty() {
                    out.push(
                        Diagnostic::error(Code::BadValue, list[0].span, format!("instance `{name}` has security groups and `port_security: false`"))
                            .label("groups on an unfiltered port")
                            .hint("Neutron refuses this (\"Port has security group associated\"): write `security_groups: []` with `port_security: false`"),
                    );
                }
            }
        }
        instances.push(Instance {
            spec: i,
            network: network.map(|(n, _)| n),
            fixed,
            floating,
            groups: names,
            port_security,
        });
    }

    // Routers.
    let mut first_router: HashMap<&str, Span> = HashMap::new();
    let mut router_nodes: Vec<RouterBuild> = Vec::new();
    for r in &spec.routers {
        if let Some(first) = first_router.insert(&r.name.value, r.name.span) {
            duplicate(out, "router", &r.name, first);
            continue;
        }
        let rname = &r.name.value;
        let mut node = NodeSpec {
            name: r.name.clone(),
            forwarding: Some(true),
            ..NodeSpec::default()
        };
        let mut qg: Option<String> = None;
        if let Some(g) = &r.external_gateway {
            match (&external, parse_addr(g, "a gateway address", out)) {
                (None, Some(_)) => {
                    if spec.external_network.is_none() {
                        out.push(
                            Diagnostic::error(Code::MissingKey, g.span, format!("router `{rname}` has an external gateway, but there is no external network"))
                                .label("on which network?")
                                .hint("add `openstack: external_network: {{ name, segment, cidr, gateway }}`"),
                        );
                    }
                }
                (Some((segment, net, ext)), Some(a)) => {
                    if !usable(*net, a) {
                        outside(
                            out,
                            g,
                            format!("external gateway of router `{rname}`"),
                            *net,
                            &format!("external network `{ext}`"),
                        );
                    } else if let Some(segment) = segment {
                        let name = if_name("qg-", rname, &[]);
                        node.interfaces.push(InterfaceSpec {
                            name: at(name.clone(), g.span),
                            segment: at(segment.clone(), g.span),
                            addresses: vec![at(format!("{a}/{}", net.prefix_len()), g.span)],
                            mac: Some(at(neutron_mac(&format!("{rname}/qg")), g.span)),
                        });
                        if let Some((gw, gw_span)) = external_gateway {
                            node.routes.push(RouteSpec {
                                to: at("default".into(), gw_span),
                                via: Some(at(gw.to_string(), gw_span)),
                                ..RouteSpec::default()
                            });
                        }
                        qg = Some(name);
                    }
                }
                (_, None) => {}
            }
        }
        let mut qrs: Vec<(String, String)> = Vec::new();
        let mut attached: HashMap<&str, Span> = HashMap::new();
        for n in &r.interfaces {
            if let Some(first) = attached.insert(&n.value, n.span) {
                out.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        n.span,
                        format!(
                            "router `{rname}` has two interfaces on network `{}`",
                            n.value
                        ),
                    )
                    .label("second interface")
                    .related(first, "first here")
                    .hint("a router has one interface per subnet"),
                );
                continue;
            }
            let Some(net) = networks.get(n.value.as_str()) else {
                if Some(n.value.as_str()) == external_name {
                    out.push(
                        Diagnostic::error(
                            Code::BadValue,
                            n.span,
                            format!(
                                "router `{rname}` lists the external network `{}` as an interface",
                                n.value
                            ),
                        )
                        .label("the provider network")
                        .hint("set the router's gateway with `external_gateway: ADDRESS` instead"),
                    );
                } else if !first_network.contains_key(n.value.as_str()) {
                    unknown(
                        out,
                        "a network",
                        n,
                        format!("router `{rname}` has an interface on network"),
                        &network_names,
                        "declare the tenant network under `openstack: networks:`",
                    );
                }
                continue;
            };
            let taken: Vec<&str> = node
                .interfaces
                .iter()
                .map(|i| i.name.value.as_str())
                .collect();
            let name = if_name("qr-", &n.value, &taken);
            node.interfaces.push(InterfaceSpec {
                name: at(name.clone(), n.span),
                segment: at(n.value.clone(), n.span),
                addresses: vec![at(
                    format!("{}/{}", net.gateway, net.net.prefix_len()),
                    n.span,
                )],
                mac: Some(at(neutron_mac(&format!("{rname}/{}", n.value)), n.span)),
            });
            qrs.push((n.value.clone(), name));
        }
        router_nodes.push((node, qg, qrs));
    }

    // Floating IPs: the router that joins the instance's network to the external network.
    for inst in &instances {
        let (Some(fip), Some(fixed), Some(f)) =
            (inst.floating, inst.fixed, inst.spec.floating_ip.as_ref())
        else {
            continue;
        };
        let span = f.span;
        let iname = &inst.spec.name.value;
        let owner = router_nodes.iter_mut().find(|(_, qg, qrs)| {
            qg.is_some() && qrs.iter().any(|(n, _)| Some(n.as_str()) == inst.network)
        });
        let Some((node, Some(qg), _)) = owner else {
            if let Some(network) = inst.network
                && external
                    .as_ref()
                    .is_some_and(|(segment, _, _)| segment.is_some())
            {
                out.push(
                    Diagnostic::error(Code::UnknownReference, span, format!("floating IP {fip} of instance `{iname}`: external network `{}` is not reachable from network `{network}`", external_name.unwrap_or("?")))
                        .label("no router between them")
                        .hint(format!("Neutron refuses the association: add a router with `external_gateway:` on the external network and `interfaces: [{network}]`")),
                );
            }
            continue;
        };
        let rname = node.name.value.clone();
        let words = format!("floating IP {fip} → {fixed} on router `{rname}`");
        if let Some(iface) = node.interfaces.iter_mut().find(|i| &i.name.value == qg) {
            iface.addresses.push(at(format!("{fip}/32"), span));
        }
        node.nat.push(RuleSpec {
            dst: Some(at(fip.to_string(), span)),
            dnat: Some(at(fixed.to_string(), span)),
            comment: Some(format!("{words} (instance `{iname}`)")),
            ..RuleSpec::default()
        });
        node.nat.push(RuleSpec {
            dst: Some(at(fip.to_string(), span)),
            dnat: Some(at(fixed.to_string(), span)),
            chain: Some(at(NatChainName::Output, span)),
            comment: Some(format!(
                "{words} (instance `{iname}`), for the router's own packets"
            )),
            ..RuleSpec::default()
        });
        let qg = qg.clone();
        node.nat.push(RuleSpec {
            src: Some(at(fixed.to_string(), span)),
            out_iface: Some(at(qg, span)),
            snat: Some(at(fip.to_string(), span)),
            comment: Some(format!(
                "{words}: instance `{iname}` goes out from its floating IP"
            )),
            ..RuleSpec::default()
        });
    }

    // The routers' own SNAT, after the floating IPs' (first match wins).
    for (r, (node, qg, qrs)) in spec
        .routers
        .iter()
        .filter(|r| first_router.get(r.name.value.as_str()) == Some(&r.name.span))
        .zip(router_nodes.iter_mut())
    {
        if r.enable_snat == Some(false) {
            continue;
        }
        let Some(qg) = qg else { continue };
        let gw = node
            .interfaces
            .iter()
            .find(|i| &i.name.value == qg)
            .and_then(|i| i.addresses.first())
            .map(|a| a.value.split('/').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let span = r.external_gateway.as_ref().map_or(r.name.span, |g| g.span);
        for (network, _) in qrs.iter() {
            let Some(net) = networks.get(network.as_str()) else {
                continue;
            };
            node.nat.push(RuleSpec {
                src: Some(at(net.net.to_string(), span)),
                out_iface: Some(at(qg.clone(), span)),
                snat: Some(at(gw.clone(), span)),
                comment: Some(format!("SNAT of router `{}` (enable_snat): network `{network}` ({}) leaves from the router's gateway address {gw}", r.name.value, net.net)),
                ..RuleSpec::default()
            });
        }
    }
    file.nodes
        .extend(router_nodes.into_iter().map(|(n, _, _)| n));

    // Members of each group: (instance, fixed IP).
    let mut members: HashMap<&str, Vec<(&str, Ipv4Addr)>> = HashMap::new();
    for inst in &instances {
        if !inst.port_security {
            continue;
        }
        if let Some(fixed) = inst.fixed {
            for g in &inst.groups {
                members
                    .entry(g)
                    .or_default()
                    .push((&inst.spec.name.value, fixed));
            }
        }
    }

    // Instance nodes.
    for inst in &instances {
        let i = inst.spec;
        let span = i.name.span;
        let iname = &i.name.value;
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
            let net = &networks[network];
            node.interfaces.push(InterfaceSpec {
                name: at(
                    ifname.clone(),
                    i.interface.as_ref().map_or(i.network.span, |l| l.span),
                ),
                segment: at(network.to_owned(), i.network.span),
                addresses: vec![at(
                    format!("{fixed}/{}", net.net.prefix_len()),
                    i.fixed_ip.span,
                )],
                mac: Some(at(neutron_mac(&format!("{iname}/port")), i.fixed_ip.span)),
            });
            if !i.routes.iter().any(|r| r.to.value == "default") {
                node.routes.push(RouteSpec {
                    to: at("default".into(), i.network.span),
                    via: Some(at(net.gateway.to_string(), i.network.span)),
                    ..RouteSpec::default()
                });
            }
        }
        node.routes.extend(i.routes.iter().cloned());
        if inst.port_security && !node.interfaces.is_empty() {
            node.firewall = Some(security_groups(inst, &ifname, &groups, &members, span, out));
        }
        file.nodes.push(node);
    }
}

/// `qg-NAME` / `qr-NAME`, cut to Linux's 15 characters and made unique on the router.
fn if_name(prefix: &str, name: &str, taken: &[&str]) -> String {
    let mut candidate: String = format!("{prefix}{name}").chars().take(15).collect();
    let mut k = 1;
    while taken.contains(&candidate.as_str()) {
        let suffix = format!("-{k}");
        candidate = format!("{prefix}{name}")
            .chars()
            .take(15 - suffix.len())
            .collect::<String>()
            + &suffix;
        k += 1;
    }
    candidate
}

fn describe(rule: &SecurityGroupRuleSpec, ports: Option<&str>) -> String {
    let proto = match rule.protocol.as_ref().map(|p| p.value) {
        Some(RuleProto::Tcp) => "tcp",
        Some(RuleProto::Udp) => "udp",
        Some(RuleProto::Icmp) => "icmp",
        None => "any protocol",
    };
    match ports {
        Some(p) => format!("{proto} {p}"),
        None => proto.to_owned(),
    }
}

/// The instance's filter chains from its security groups.
fn security_groups(
    inst: &Instance<'_>,
    ifname: &str,
    groups: &HashMap<&str, &SecurityGroupSpec>,
    members: &HashMap<&str, Vec<(&str, Ipv4Addr)>>,
    span: Span,
    out: &mut Vec<Diagnostic>,
) -> FirewallSpec {
    let iname = &inst.spec.name.value;
    let list = inst
        .groups
        .iter()
        .map(|g| format!("`{g}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let accept = Some(at(ActionName::Accept, span));
    let stateful = RuleSpec {
        state: vec![
            at(StateName::Established, span),
            at(StateName::Related, span),
        ],
        action: accept.clone(),
        comment: Some(format!(
            "the security groups of instance `{iname}` are stateful: answers and related ICMP pass"
        )),
        ..RuleSpec::default()
    };
    let mut input = vec![
        stateful.clone(),
        RuleSpec {
            not_in: Some(at(ifname.to_owned(), span)),
            action: accept.clone(),
            comment: Some(format!(
                "instance `{iname}` talking to itself never crosses its Neutron port"
            )),
            ..RuleSpec::default()
        },
    ];
    let mut output = vec![stateful];
    let mut egress_all = false;
    for &g in &inst.groups {
        let spec = groups.get(g).copied();
        let rules: &[SecurityGroupRuleSpec] = spec.map_or(&[], |s| s.rules.as_slice());
        if spec.is_none_or(|s| s.default_egress != Some(false)) {
            egress_all = true;
        }
        let whose = format!("security group `{g}` of instance `{iname}`");
        if g == "default" {
            for (m, ip) in members.get(g).map_or(&[][..], Vec::as_slice) {
                input.push(RuleSpec {
                    src: Some(at(ip.to_string(), spec.map_or(span, |s| s.name.span))),
                    action: accept.clone(),
                    comment: Some(format!(
                        "{whose}: ingress from member `{m}` ({ip}) of `default`"
                    )),
                    ..RuleSpec::default()
                });
            }
        }
        for rule in rules {
            let rspan = rule.direction.span;
            if rule
                .ethertype
                .as_ref()
                .is_some_and(|e| e.value == Ethertype::IPv6)
            {
                continue;
            }
            let ports = match &rule.port_range {
                Some(p)
                    if matches!(
                        rule.protocol.as_ref().map(|p| p.value),
                        Some(RuleProto::Tcp | RuleProto::Udp)
                    ) =>
                {
                    match port_range(p, out) {
                        Some(text) => Some(text),
                        None => continue,
                    }
                }
                Some(p) => {
                    out.push(
                        Diagnostic::error(Code::BadValue, p.span, format!("`port_range` in {whose} needs `protocol: tcp` or `udp`"))
                            .label("ports of which protocol?")
                            .hint("add `protocol: tcp` (for ICMP, Neutron's port fields mean type and code, which reachlab does not model)"),
                    );
                    continue;
                }
                None => None,
            };
            let ingress = rule.direction.value == Direction::Ingress;
            let base = RuleSpec {
                proto: rule.protocol.clone(),
                dport: ports.as_ref().map(|p| at(p.clone(), rspan)),
                action: accept.clone(),
                ..RuleSpec::default()
            };
            let what = describe(rule, ports.as_deref());
            let (dir, from) = if ingress {
                ("ingress", "from")
            } else {
                ("egress", "to")
            };
            match (&rule.remote_ip_prefix, &rule.remote_group) {
                (Some(p), Some(_)) => {
                    out.push(
                        Diagnostic::error(
                            Code::BadValue,
                            p.span,
                            format!(
                                "a rule of {whose} has both `remote_ip_prefix` and `remote_group`"
                            ),
                        )
                        .label("one or the other")
                        .hint(
                            "Neutron: \"Only remote_ip_prefix or remote_group_id may be provided\"",
                        ),
                    );
                }
                (Some(p), None) => {
                    let prefix = match p
                        .value
                        .trim()
                        .parse::<Ipv4Net>()
                        .or_else(|_| p.value.trim().parse::<Ipv4Addr>().map(Ipv4Net::from))
                    {
                        Ok(n) => n.trunc(),
                        Err(_) => {
                            out.push(
                                Diagnostic::error(
                                    Code::BadAddress,
                                    p.span,
                                    format!("`{}` is not a remote prefix", p.value),
                                )
                                .label("expected ADDRESS/PREFIX")
                                .hint("write it like 0.0.0.0/0 or 10.1.5.0/24"),
                            );
                            continue;
                        }
                    };
                    let matcher = (prefix.prefix_len() > 0).then(|| at(prefix.to_string(), p.span));
                    let mut r = base;
                    if ingress {
                        r.src = matcher;
                    } else {
                        r.dst = matcher;
                    }
                    r.comment = Some(format!("{whose}: {dir} {what} {from} {prefix}"));
                    if ingress {
                        input.push(r)
                    } else {
                        output.push(r)
                    }
                }
                (None, Some(remote)) => {
                    if !groups.contains_key(remote.value.as_str()) && remote.value != "default" {
                        let mut names: Vec<&str> = groups.keys().copied().collect();
                        if !names.contains(&"default") {
                            names.push("default");
                        }
                        unknown(
                            out,
                            "a security group",
                            remote,
                            format!("a rule of {whose} names remote group"),
                            &names,
                            "declare it under `openstack: security_groups:`",
                        );
                        continue;
                    }
                    for (m, ip) in members
                        .get(remote.value.as_str())
                        .map_or(&[][..], Vec::as_slice)
                    {
                        let mut r = base.clone();
                        if ingress {
                            r.src = Some(at(ip.to_string(), remote.span));
                        } else {
                            r.dst = Some(at(ip.to_string(), remote.span));
                        }
                        r.comment = Some(format!(
                            "{whose}: {dir} {what} {from} member `{m}` ({ip}) of `{}`",
                            remote.value
                        ));
                        if ingress {
                            input.push(r)
                        } else {
                            output.push(r)
                        }
                    }
                }
                (None, None) => {
                    let mut r = base;
                    r.comment = Some(format!("{whose}: {dir} {what} {from} 0.0.0.0/0"));
                    if ingress {
                        input.push(r)
                    } else {
                        output.push(r)
                    }
                }
            }
        }
    }
    let drop = Some(at(PolicyName::Drop, span));
    input.push(RuleSpec {
        action: Some(at(ActionName::Drop, span)),
        comment: Some(format!("Neutron's sg-fallback of instance `{iname}`: its security groups ({list}) have no ingress rule for this packet")),
        platform_fix: inst.groups.first().map(|g| crate::model::PlatformFix::SecurityGroup { group: g.to_string() }),
        ..RuleSpec::default()
    });
    let output = (!egress_all).then(|| {
        let mut rules = output;
        rules.push(RuleSpec {
            action: Some(at(ActionName::Drop, span)),
            comment: Some(format!("Neutron's sg-fallback of instance `{iname}`: its security groups ({list}) have no egress rule for this packet")),
            ..RuleSpec::default()
        });
        ChainSpec { policy: drop.clone(), rules }
    });
    // Neutron filters at the instance's port, before anything inside the guest (its own DNAT,
    // kube-proxy's included) sees the packet: mangle PREROUTING, not INPUT.
    FirewallSpec {
        prerouting: Some(ChainSpec {
            policy: drop,
            rules: input,
        }),
        input: None,
        forward: None,
        output,
    }
}
