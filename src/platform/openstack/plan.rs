//! Checks the `openstack:` section against the file and resolves it into a typed [`Plan`]:
//! every address and subnet parsed once, every reference (a network, a security group, the
//! router that serves a floating IP) resolved, every interface name chosen. Each problem is
//! reported here, in the order of the section; nothing here writes to the file — `emit` does,
//! from the plan alone.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use indexmap::IndexMap;
use ipnet::Ipv4Net;

use super::check::{duplicate, first_host, outside, parse_addr, parse_cidr, unknown, usable};
use crate::format::file::TopologyFile;
use crate::format::platform::openstack::{
    ExternalNetworkSpec, InstanceSpec, NetworkSpec, OpenStackSpec, RouterSpec, SecurityGroupSpec,
};
use crate::format::{Code, Diagnostic, Located, Span};

/// The section once checked: what `emit` turns into segments and nodes.
pub(super) struct Plan<'a> {
    pub(super) networks: Networks<'a>,
    pub(super) groups: Groups<'a>,
    pub(super) instances: Vec<Instance<'a>>,
    pub(super) routers: Vec<Router<'a>>,
}

/// The external (provider) network with a valid subnet.
pub(super) struct External<'a> {
    pub(super) name: &'a str,
    /// The segment, when the file has it (routers get a `qg-` port only then).
    pub(super) segment: Option<&'a str>,
    pub(super) net: Ipv4Net,
    /// The upstream router's address: the routers' default gateway.
    pub(super) gateway: Option<Located<Ipv4Addr>>,
}

/// A tenant subnet and its gateway, the address of the routers' `qr-` ports.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subnet {
    pub(super) net: Ipv4Net,
    pub(super) gateway: Ipv4Addr,
}

/// A tenant network with a valid subnet.
pub(super) struct Network<'a> {
    pub(super) spec: &'a NetworkSpec,
    pub(super) subnet: Subnet,
}

/// The tenant networks.
pub(super) struct Networks<'a> {
    /// The valid ones by name, in the order of the file (the first of each name).
    pub(super) valid: IndexMap<&'a str, Network<'a>>,
    /// Every name written, in order (the hints list them); a reference to a declared but
    /// invalid network gets no second error.
    pub(super) declared: Vec<&'a str>,
}

/// The security groups.
pub(super) struct Groups<'a> {
    /// By name, the first of each name.
    pub(super) by_name: HashMap<&'a str, &'a SecurityGroupSpec>,
    /// Every name written, in order, and `default`, which always exists (the hints list them).
    pub(super) declared: Vec<&'a str>,
}

/// A tenant network an instance's port is on.
#[derive(Debug, Clone, Copy)]
pub(super) struct NetworkRef<'a> {
    pub(super) name: &'a str,
    pub(super) subnet: Subnet,
}

/// An instance once checked; a value that did not check is `None` (and was reported).
pub(super) struct Instance<'a> {
    pub(super) spec: &'a InstanceSpec,
    pub(super) network: Option<NetworkRef<'a>>,
    pub(super) fixed: Option<Ipv4Addr>,
    pub(super) floating: Option<Located<Ipv4Addr>>,
    /// The known groups of its port (`default` when none are written).
    pub(super) groups: Vec<&'a str>,
    pub(super) port_security: bool,
}

/// A router once checked.
pub(super) struct Router<'a> {
    pub(super) spec: &'a RouterSpec,
    /// The `qg-` port, when the router has a valid gateway on the external network's segment.
    pub(super) uplink: Option<Uplink<'a>>,
    /// The `qr-` ports, one per attached tenant network.
    pub(super) downlinks: Vec<Downlink<'a>>,
}

/// A router's `qg-` port on the external network.
pub(super) struct Uplink<'a> {
    pub(super) name: String,
    /// The router's gateway address (`external_gateway`).
    pub(super) address: Located<Ipv4Addr>,
    pub(super) segment: &'a str,
    pub(super) net: Ipv4Net,
    /// The external network's gateway, the router's default route.
    pub(super) default_via: Option<Located<Ipv4Addr>>,
    /// The floating IPs the router serves, in the order of the instances.
    pub(super) floating: Vec<FloatingIp<'a>>,
}

/// A router's `qr-` port at a tenant network's gateway.
pub(super) struct Downlink<'a> {
    pub(super) name: String,
    /// The network as the router's `interfaces:` names it.
    pub(super) network: &'a Located<String>,
    pub(super) subnet: Subnet,
}

/// A floating IP and the fixed IP it maps to.
pub(super) struct FloatingIp<'a> {
    pub(super) instance: &'a str,
    pub(super) address: Located<Ipv4Addr>,
    pub(super) fixed: Ipv4Addr,
}

/// Checks the section against `file` (its segments and nodes, for the external network) and
/// resolves it, reporting every problem into `out`.
pub(super) fn plan<'a>(
    file: &TopologyFile,
    spec: &'a OpenStackSpec,
    out: &mut Vec<Diagnostic>,
) -> Plan<'a> {
    let external = spec
        .external_network
        .as_ref()
        .and_then(|ext| external(file, ext, out));
    let networks = networks(spec, out);
    let groups = groups(spec, out);
    let scope = Scope {
        spec,
        networks: &networks,
        external: external.as_ref(),
    };
    let instances = scope.instances(&groups, out);
    let mut routers = scope.routers(out);
    scope.assign_floating_ips(&mut routers, &instances, out);
    Plan {
        networks,
        groups,
        instances,
        routers,
    }
}

/// The external network, when its subnet is valid; its segment and gateway are checked
/// against the file.
fn external<'a>(
    file: &TopologyFile,
    ext: &'a ExternalNetworkSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<External<'a>> {
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
    let gateway = ext
        .gateway
        .as_ref()
        .and_then(|gw| upstream(file, ext, gw, cidr, segment_ok, out));
    Some(External {
        name: &ext.name.value,
        segment: segment_ok.then_some(ext.segment.value.as_str()),
        net: cidr?,
        gateway,
    })
}

/// The external network's `gateway` when it is a host of the subnet; it is reported when no
/// node of the file has it on the segment (but still routed to).
fn upstream(
    file: &TopologyFile,
    ext: &ExternalNetworkSpec,
    gw: &Located<String>,
    cidr: Option<Ipv4Net>,
    segment_ok: bool,
    out: &mut Vec<Diagnostic>,
) -> Option<Located<Ipv4Addr>> {
    let addr = parse_addr(gw, "a gateway address", out)?;
    let net = cidr?;
    if !usable(net, addr) {
        let owner = format!("external network `{}`", ext.name.value);
        outside(out, gw, "gateway".into(), net, &owner);
        return None;
    }
    if segment_ok && !answers_on(file, &ext.segment.value, addr) {
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
    Some(Located::at(addr, gw.span))
}

/// Whether a node of the file has `addr` on `segment`. The nodes are not validated yet: this
/// compares the text of each address before its `/` as written.
fn answers_on(file: &TopologyFile, segment: &str, addr: Ipv4Addr) -> bool {
    let addr = addr.to_string();
    file.nodes.iter().any(|n| {
        n.interfaces.iter().any(|i| {
            i.segment.value == segment
                && i.addresses
                    .iter()
                    .any(|a| a.value.split('/').next() == Some(addr.as_str()))
        })
    })
}

/// The tenant networks, each name once, those with a valid subnet and gateway kept.
fn networks<'a>(spec: &'a OpenStackSpec, out: &mut Vec<Diagnostic>) -> Networks<'a> {
    let mut valid = IndexMap::new();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for n in &spec.networks {
        if let Some(first) = seen.insert(&n.name.value, n.name.span) {
            duplicate(out, "OpenStack network", &n.name, first);
            continue;
        }
        if let Some(subnet) = subnet(n, out) {
            valid.insert(n.name.value.as_str(), Network { spec: n, subnet });
        }
    }
    let declared = spec
        .networks
        .iter()
        .map(|n| n.name.value.as_str())
        .collect();
    Networks { valid, declared }
}

/// A network's subnet and its gateway (by default the first address, as Neutron allocates it).
fn subnet(n: &NetworkSpec, out: &mut Vec<Diagnostic>) -> Option<Subnet> {
    let net = parse_cidr(&n.cidr, "a subnet", out)?;
    let gateway = match &n.gateway {
        None => first_host(net),
        Some(g) => {
            let a = parse_addr(g, "a gateway address", out)?;
            if !usable(net, a) {
                let owner = format!("network `{}`", n.name.value);
                outside(out, g, "gateway".into(), net, &owner);
                return None;
            }
            a
        }
    };
    Some(Subnet { net, gateway })
}

/// The security groups, each name once.
fn groups<'a>(spec: &'a OpenStackSpec, out: &mut Vec<Diagnostic>) -> Groups<'a> {
    let mut by_name: HashMap<&str, &SecurityGroupSpec> = HashMap::new();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for g in &spec.security_groups {
        if let Some(first) = seen.insert(&g.name.value, g.name.span) {
            duplicate(out, "security group", &g.name, first);
            continue;
        }
        by_name.insert(&g.name.value, g);
    }
    let mut declared: Vec<&str> = spec
        .security_groups
        .iter()
        .map(|g| g.name.value.as_str())
        .collect();
    if !declared.contains(&"default") {
        declared.push("default");
    }
    Groups { by_name, declared }
}

/// What instances and routers are checked against.
struct Scope<'p, 'a> {
    spec: &'a OpenStackSpec,
    networks: &'p Networks<'a>,
    external: Option<&'p External<'a>>,
}

impl<'a> Scope<'_, 'a> {
    /// The external network's name, even when its subnet is invalid.
    fn external_name(&self) -> Option<&'a str> {
        self.spec
            .external_network
            .as_ref()
            .map(|e| e.name.value.as_str())
    }

    /// The instances, each name once; a floating IP is associated once.
    fn instances(&self, groups: &Groups<'a>, out: &mut Vec<Diagnostic>) -> Vec<Instance<'a>> {
        let mut instances = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut floating_seen: HashMap<Ipv4Addr, Span> = HashMap::new();
        for i in &self.spec.instances {
            if let Some(first) = seen.insert(&i.name.value, i.name.span) {
                duplicate(out, "instance", &i.name, first);
                continue;
            }
            let network = self.instance_network(i, out);
            let fixed = fixed_ip(i, network, out);
            let floating = self.floating_ip(i, &mut floating_seen, out);
            let port_security = i.port_security.unwrap_or(true);
            let groups = port_groups(i, port_security, &groups.declared, out);
            instances.push(Instance {
                spec: i,
                network,
                fixed,
                floating,
                groups,
                port_security,
            });
        }
        instances
    }

    /// The tenant network of an instance's port.
    fn instance_network(
        &self,
        i: &'a InstanceSpec,
        out: &mut Vec<Diagnostic>,
    ) -> Option<NetworkRef<'a>> {
        let name = i.network.value.as_str();
        if let Some(n) = self.networks.valid.get(name) {
            return Some(NetworkRef {
                name,
                subnet: n.subnet,
            });
        }
        if Some(name) == self.external_name() {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    i.network.span,
                    format!("instance `{}` is plugged straight into the external network `{name}`", i.name.value),
                )
                .label("the provider network")
                .hint("Nova fails such a launch with \"Binding failed for port\": put the instance on a tenant network (`networks:`) behind a router whose `external_gateway` is on the external network, and give it a floating IP"),
            );
        } else if !self.networks.declared.contains(&name) {
            unknown(
                out,
                "a network",
                &i.network,
                format!("instance `{}` is on network", i.name.value),
                &self.networks.declared,
                "declare the tenant network under `openstack: networks:`",
            );
        }
        None
    }

    /// An instance's floating IP: a host of the external network, associated once.
    fn floating_ip(
        &self,
        i: &InstanceSpec,
        seen: &mut HashMap<Ipv4Addr, Span>,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Located<Ipv4Addr>> {
        let f = i.floating_ip.as_ref()?;
        let name = &i.name.value;
        let a = parse_addr(f, "a floating IP", out)?;
        let Some(ext) = self.external else {
            if self.spec.external_network.is_none() {
                out.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        f.span,
                        format!(
                            "instance `{name}` has a floating IP, but there is no external network"
                        ),
                    )
                    .label("from which pool?")
                    .hint("add `openstack: external_network: {{ name, segment, cidr, gateway }}`"),
                );
            }
            return None;
        };
        if !usable(ext.net, a) {
            let owner = format!("external network `{}`", ext.name);
            outside(
                out,
                f,
                format!("floating IP of instance `{name}`"),
                ext.net,
                &owner,
            );
            return None;
        }
        if let Some(first) = seen.insert(a, f.span) {
            out.push(
                Diagnostic::error(
                    Code::DuplicateAddress,
                    f.span,
                    format!("floating IP {a} is associated twice"),
                )
                .label("already associated")
                .related(first, "first associated here")
                .hint("a floating IP belongs to one port at a time"),
            );
            return None;
        }
        Some(Located::at(a, f.span))
    }

    /// The routers, each name once.
    fn routers(&self, out: &mut Vec<Diagnostic>) -> Vec<Router<'a>> {
        let mut routers = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for r in &self.spec.routers {
            if let Some(first) = seen.insert(&r.name.value, r.name.span) {
                duplicate(out, "router", &r.name, first);
                continue;
            }
            let uplink = self.uplink(r, out);
            let downlinks = self.downlinks(r, uplink.as_ref().map(|u| u.name.as_str()), out);
            routers.push(Router {
                spec: r,
                uplink,
                downlinks,
            });
        }
        routers
    }

    /// A router's `qg-` port: its `external_gateway`, a host of the external network, whose
    /// segment is in the file.
    fn uplink(&self, r: &RouterSpec, out: &mut Vec<Diagnostic>) -> Option<Uplink<'a>> {
        let g = r.external_gateway.as_ref()?;
        let rname = &r.name.value;
        let addr = parse_addr(g, "a gateway address", out);
        let Some(ext) = self.external else {
            if addr.is_some() && self.spec.external_network.is_none() {
                out.push(
                    Diagnostic::error(Code::MissingKey, g.span, format!("router `{rname}` has an external gateway, but there is no external network"))
                        .label("on which network?")
                        .hint("add `openstack: external_network: {{ name, segment, cidr, gateway }}`"),
                );
            }
            return None;
        };
        let addr = addr?;
        if !usable(ext.net, addr) {
            let owner = format!("external network `{}`", ext.name);
            let what = format!("external gateway of router `{rname}`");
            outside(out, g, what, ext.net, &owner);
            return None;
        }
        Some(Uplink {
            name: if_name("qg-", rname, &[]),
            address: Located::at(addr, g.span),
            segment: ext.segment?,
            net: ext.net,
            default_via: ext.gateway.clone(),
            floating: Vec::new(),
        })
    }

    /// A router's `qr-` ports, one per tenant network it lists; `uplink` is the name of its
    /// `qg-` port, which the `qr-` names must not take.
    fn downlinks(
        &self,
        r: &'a RouterSpec,
        uplink: Option<&str>,
        out: &mut Vec<Diagnostic>,
    ) -> Vec<Downlink<'a>> {
        let mut links: Vec<Downlink<'a>> = Vec::new();
        let mut attached: HashMap<&str, Span> = HashMap::new();
        for n in &r.interfaces {
            if let Some(first) = attached.insert(&n.value, n.span) {
                out.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        n.span,
                        format!(
                            "router `{}` has two interfaces on network `{}`",
                            r.name.value, n.value
                        ),
                    )
                    .label("second interface")
                    .related(first, "first here")
                    .hint("a router has one interface per subnet"),
                );
                continue;
            }
            let Some(subnet) = self.router_network(r, n, out) else {
                continue;
            };
            let taken: Vec<&str> = uplink
                .into_iter()
                .chain(links.iter().map(|l| l.name.as_str()))
                .collect();
            links.push(Downlink {
                name: if_name("qr-", &n.value, &taken),
                network: n,
                subnet,
            });
        }
        links
    }

    /// The subnet of tenant network `n`, which router `r` lists as an interface.
    fn router_network(
        &self,
        r: &RouterSpec,
        n: &Located<String>,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Subnet> {
        if let Some(net) = self.networks.valid.get(n.value.as_str()) {
            return Some(net.subnet);
        }
        let rname = &r.name.value;
        if Some(n.value.as_str()) == self.external_name() {
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
        } else if !self.networks.declared.contains(&n.value.as_str()) {
            unknown(
                out,
                "a network",
                n,
                format!("router `{rname}` has an interface on network"),
                &self.networks.declared,
                "declare the tenant network under `openstack: networks:`",
            );
        }
        None
    }

    /// Gives each floating IP to the first router that joins the instance's network to the
    /// external network; reports those no router serves.
    fn assign_floating_ips(
        &self,
        routers: &mut [Router<'a>],
        instances: &[Instance<'a>],
        out: &mut Vec<Diagnostic>,
    ) {
        for inst in instances {
            let (Some(address), Some(fixed)) = (&inst.floating, inst.fixed) else {
                continue;
            };
            let network = inst.network.map(|n| n.name);
            let owner = routers.iter_mut().find_map(|r| {
                let serves = r
                    .downlinks
                    .iter()
                    .any(|d| Some(d.network.value.as_str()) == network);
                r.uplink.as_mut().filter(|_| serves)
            });
            if let Some(uplink) = owner {
                uplink.floating.push(FloatingIp {
                    instance: &inst.spec.name.value,
                    address: address.clone(),
                    fixed,
                });
            } else if let Some(network) = network
                && let Some(ext) = self.external.filter(|e| e.segment.is_some())
            {
                out.push(
                    Diagnostic::error(Code::UnknownReference, address.span, format!("floating IP {} of instance `{}`: external network `{}` is not reachable from network `{network}`", address.value, inst.spec.name.value, ext.name))
                        .label("no router between them")
                        .hint(format!("Neutron refuses the association: add a router with `external_gateway:` on the external network and `interfaces: [{network}]`")),
                );
            }
        }
    }
}

/// An instance's fixed IP: a host of its network, not the gateway.
fn fixed_ip(
    i: &InstanceSpec,
    network: Option<NetworkRef<'_>>,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Addr> {
    let a = parse_addr(&i.fixed_ip, "a fixed IP", out)?;
    let name = &i.name.value;
    match network {
        Some(n) if !usable(n.subnet.net, a) => {
            let owner = format!("network `{}`", n.name);
            let what = format!("fixed IP of instance `{name}`");
            outside(out, &i.fixed_ip, what, n.subnet.net, &owner);
            None
        }
        Some(n) if a == n.subnet.gateway => {
            out.push(
                Diagnostic::error(Code::DuplicateAddress, i.fixed_ip.span, format!("fixed IP {a} of instance `{name}` is the gateway of network `{}`", n.name))
                    .label("reserved for the router")
                    .hint("Neutron keeps the subnet's gateway address for the router interface: pick another address"),
            );
            None
        }
        _ => Some(a),
    }
}

/// The known security groups of an instance's port (`default` when it names none); groups on
/// a port without port security are reported.
fn port_groups<'a>(
    i: &'a InstanceSpec,
    port_security: bool,
    declared: &[&'a str],
    out: &mut Vec<Diagnostic>,
) -> Vec<&'a str> {
    let Some(list) = &i.security_groups else {
        return vec!["default"];
    };
    let name = &i.name.value;
    let mut names = Vec::new();
    for g in list {
        if declared.contains(&g.value.as_str()) {
            names.push(g.value.as_str());
        } else {
            unknown(
                out,
                "a security group",
                g,
                format!("instance `{name}` is in security group"),
                declared,
                "declare it under `openstack: security_groups:`",
            );
        }
    }
    if let Some(first) = list.first().filter(|_| !port_security) {
        out.push(
            Diagnostic::error(Code::BadValue, first.span, format!("instance `{name}` has security groups and `port_security: false`"))
                .label("groups on an unfiltered port")
                .hint("Neutron refuses this (\"Port has security group associated\"): write `security_groups: []` with `port_security: false`"),
        );
    }
    names
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
