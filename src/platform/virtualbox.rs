//! `virtualbox:` — VMs on host nodes, with VirtualBox's adapter modes and defaults
//! (docs/platform-semantics.md, "VirtualBox"):
//!
//! - `nat`: every VM adapter has a NAT engine of its own: guest 10.0.(n+1).15/24, gateway .2,
//!   DNS .3 (n = adapter number). The engine is a hidden node `VM-natN` that masquerades the
//!   VM's traffic to the host, which sends it on with its own address; the 10.0.(n+1).0/24
//!   network is invisible outside the VM, so two NAT VMs never reach each other. Port forwards
//!   (`name, proto, host_ip, host_port, guest_ip, guest_port`) DNAT host:port to the guest; the
//!   guest sees those connections coming from 10.0.(n+1).2, as VirtualBox does.
//! - `nat-network`: one engine shared by the VMs on the named network (default 10.0.2.0/24,
//!   gateway .1, guests from .4); they reach each other.
//! - `host-only`: the host gets `vboxnetN` = 192.168.(56+N).1/24; guests get .101, .102, …
//! - `internal`: a switch among the VMs with the same network name; the host is not on it.
//! - `bridged`: the VM joins the host's segment as a full peer.
//!
//! The engine ↔ host links use link-local 169.254.0.0/16 addresses, never routed anywhere.

use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::file::{
    InterfaceSpec, ListenSpec, NodeSpec, OsName, RouteSpec, RuleSpec, SegmentSpec, TopologyFile,
};
use crate::topology::{Code, Diagnostic, Located, Span};

/// VirtualBox VMs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct VirtualBoxSpec {
    /// The virtual machines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<VmSpec>,
    /// NAT networks (`VBoxManage natnetwork add`), by name; a network used by an adapter but not
    /// listed here gets the default 10.0.2.0/24.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat_networks: Vec<NatNetworkSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NatNetworkSpec {
    pub name: Located<String>,
    /// The network's prefix (default 10.0.2.0/24); the gateway is its .1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Located<String>>,
}

/// A VirtualBox VM: a node of the topology, with its adapters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct VmSpec {
    /// The VM's name; it becomes a node name (probes say `from: NAME`).
    pub name: Located<String>,
    /// The node the VM runs on (the physical PC).
    pub host: Located<String>,
    /// Guest OS profile (default linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<Located<OsName>>,
    /// Network adapters 1 to 4, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<AdapterSpec>,
    /// Extra static routes inside the guest (the default route comes from the NAT adapter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    /// Services in the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<ListenSpec>,
    /// DNS names of the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Located<String>>,
    /// Whether the guest routes (`net.ipv4.ip_forward`, default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<bool>,
}

/// VirtualBox's attachment modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterMode {
    #[default]
    Nat,
    NatNetwork,
    HostOnly,
    Bridged,
    Internal,
}

/// One VM network adapter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AdapterSpec {
    /// Attachment mode (default `nat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Located<AdapterMode>>,
    /// The guest's interface name (default enp0s3, enp0s8, enp0s9, enp0s10 for adapters 1-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<Located<String>>,
    /// `host-only`: vboxnetN (default vboxnet0); `internal`: the network name (default intnet);
    /// `nat-network`: the NAT network name (default NatNetwork).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Located<String>>,
    /// `bridged`: the host's segment the VM joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Located<String>>,
    /// The guest's address with prefix; needed for `bridged` and `internal` (no DHCP modelled
    /// there), optional elsewhere (VirtualBox's DHCP default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Located<String>>,
    /// MAC address (default generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Located<String>>,
    /// `nat` and `nat-network`: port-forwarding rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_forwards: Vec<PortForwardSpec>,
}

/// A port-forwarding rule, with VirtualBox's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PortForwardSpec {
    /// The rule's name, e.g. `ssh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `tcp` or `udp` (VirtualBox requires one; default tcp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Located<crate::topology::file::ProtoName>>,
    /// Host address to listen on; empty or absent: every host address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Located<String>>,
    #[schemars(range(min = 1, max = 65535))]
    pub host_port: Located<u32>,
    /// Guest address; empty or absent: the guest's DHCP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_ip: Option<Located<String>>,
    #[schemars(range(min = 1, max = 65535))]
    pub guest_port: Located<u32>,
}

fn at<T>(value: T, span: Span) -> Located<T> {
    Located::at(value, span)
}

fn interface(name: &str, segment: &str, addresses: &[String], span: Span) -> InterfaceSpec {
    InterfaceSpec {
        name: at(name.to_owned(), span),
        segment: at(segment.to_owned(), span),
        addresses: addresses.iter().map(|a| at(a.clone(), span)).collect(),
        mac: None,
    }
}

/// Link `k` between a NAT engine and its host: 169.254.(k/64).(4(k%64)+1 | +2)/30.
fn link_addresses(k: usize) -> (Ipv4Addr, Ipv4Addr) {
    let third = (k / 64) as u8;
    let base = ((k % 64) * 4) as u8;
    (
        Ipv4Addr::new(169, 254, third, base + 1),
        Ipv4Addr::new(169, 254, third, base + 2),
    )
}

struct Engine<'a> {
    /// Engine node name.
    name: String,
    /// The VM-side segment.
    segment: String,
    /// The VM-side prefix.
    net: ipnet::Ipv4Net,
    /// The gateway the guests use.
    gateway: Ipv4Addr,
    host: &'a str,
    span: Span,
    /// The note shown when a probe is aimed into this private network.
    note: String,
}

/// Expands the section into nodes, segments and rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &VirtualBoxSpec, out: &mut Vec<Diagnostic>) {
    let mut link = 0usize;
    let mut host_only_next: std::collections::HashMap<String, u16> =
        std::collections::HashMap::new();
    let mut nat_networks: std::collections::HashMap<String, (usize, u32)> =
        std::collections::HashMap::new();
    for vm in &spec.vms {
        let vm_name = vm.name.value.clone();
        let Some(host_index) = file
            .nodes
            .iter()
            .position(|n| n.name.value == vm.host.value)
        else {
            let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
            let mut d = Diagnostic::error(
                Code::UnknownReference,
                vm.host.span,
                format!(
                    "VM `{vm_name}` runs on host `{}`, which is not a node of this file",
                    vm.host.value
                ),
            )
            .label("unknown host");
            d = match crate::topology::closest_name(&vm.host.value, &names) {
                Some(c) => d.hint(format!(
                    "did you mean `{c}`? the host is a node under `nodes:`"
                )),
                None => d.hint("add the physical PC under `nodes:` and name it here"),
            };
            out.push(d);
            continue;
        };
        let host_name = file.nodes[host_index].name.value.clone();
        let mut node = NodeSpec {
            name: vm.name.clone(),
            os: vm.os.clone(),
            forwarding: vm.forwarding,
            dns: vm.dns.clone(),
            listen: vm.listen.clone(),
            ..NodeSpec::default()
        };
        let mut default_route: Option<(Ipv4Addr, Span)> = None;
        if vm.adapters.len() > 4 {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    vm.name.span,
                    format!(
                        "VM `{vm_name}` has {} adapters; VirtualBox has 4 in the GUI",
                        vm.adapters.len()
                    ),
                )
                .label("too many adapters")
                .hint("keep adapters 1 to 4"),
            );
        }
        for (i, adapter) in vm.adapters.iter().enumerate().take(4) {
            let n = i + 1;
            let span = adapter.mode.as_ref().map_or(vm.name.span, |m| m.span);
            let ifname = adapter.interface.as_ref().map_or_else(
                || ["enp0s3", "enp0s8", "enp0s9", "enp0s10"][i].to_owned(),
                |l| l.value.clone(),
            );
            let mode = adapter.mode.as_ref().map_or(AdapterMode::Nat, |m| m.value);
            let (segment, address, gateway) = match mode {
                AdapterMode::Nat => {
                    let engine = Engine {
                        name: format!("{vm_name}-nat{n}"),
                        segment: format!("{vm_name}-nat{n}"),
                        net: ipnet::Ipv4Net::new(Ipv4Addr::new(10, 0, (n + 1) as u8, 0), 24)
                            .expect("valid /24"),
                        gateway: Ipv4Addr::new(10, 0, (n + 1) as u8, 2),
                        host: &host_name,
                        span,
                        note: format!(
                            "the NAT network of VM `{vm_name}` (adapter {n}), private to VirtualBox on host `{host_name}`: nothing outside `{host_name}` can route to it; reach the VM through a port forward of that adapter (host port → guest port), at the host's address"
                        ),
                    };
                    let guest = Ipv4Addr::new(10, 0, (n + 1) as u8, 15);
                    let address = adapter
                        .address
                        .as_ref()
                        .map_or_else(|| format!("{guest}/24"), |a| a.value.clone());
                    build_engine(
                        file,
                        host_index,
                        &engine,
                        &mut link,
                        &[(guest, &adapter.port_forwards)],
                        true,
                        out,
                    );
                    (engine.segment, Some(address), Some(engine.gateway))
                }
                AdapterMode::NatNetwork => {
                    let name = adapter
                        .network
                        .as_ref()
                        .map_or_else(|| "NatNetwork".to_owned(), |l| l.value.clone());
                    let cidr = spec
                        .nat_networks
                        .iter()
                        .find(|nn| nn.name.value == name)
                        .and_then(|nn| nn.cidr.as_ref())
                        .and_then(|c| c.value.parse::<ipnet::Ipv4Net>().ok())
                        .unwrap_or_else(|| "10.0.2.0/24".parse().expect("valid"))
                        .trunc();
                    let base = u32::from(cidr.network());
                    let entry = nat_networks.entry(name.clone()).or_insert_with(|| {
                        let engine = Engine {
                            name: format!("natnet-{name}"),
                            segment: format!("natnet-{name}"),
                            net: cidr,
                            gateway: Ipv4Addr::from(base + 1),
                            host: &host_name,
                            span,
                            note: format!("NAT network `{name}`, private to VirtualBox on host `{host_name}`: its VMs reach each other and go out through it; from outside, only its port forwards lead in"),
                        };
                        build_engine(file, host_index, &engine, &mut link, &[], false, out);
                        (file.nodes.len() - 1, 4)
                    });
                    let guest = Ipv4Addr::from(base.saturating_add(entry.1));
                    entry.1 += 1;
                    if adapter.address.is_none()
                        && !(cidr.contains(&guest) && guest != cidr.broadcast())
                    {
                        out.push(Diagnostic::error(Code::BadValue, span, format!("NAT network `{name}` ({cidr}) has no free address left for VM `{vm_name}`"))
                            .label("network full")
                            .hint("give the NAT network a larger `cidr`, or the adapter an `address`"));
                        continue;
                    }
                    let engine_index = entry.0;
                    if !adapter.port_forwards.is_empty() {
                        add_forwards(
                            file,
                            host_index,
                            engine_index,
                            guest,
                            &adapter.port_forwards,
                            &mut link,
                            out,
                        );
                    }
                    let address = adapter.address.as_ref().map_or_else(
                        || format!("{guest}/{}", cidr.prefix_len()),
                        |a| a.value.clone(),
                    );
                    (
                        format!("natnet-{name}"),
                        Some(address),
                        Some(Ipv4Addr::from(base + 1)),
                    )
                }
                AdapterMode::HostOnly => {
                    let net_name = adapter
                        .network
                        .as_ref()
                        .map_or_else(|| "vboxnet0".to_owned(), |l| l.value.clone());
                    let Some(index) = net_name
                        .strip_prefix("vboxnet")
                        .and_then(|n| n.parse::<u8>().ok())
                        .filter(|n| *n <= 199)
                    else {
                        out.push(Diagnostic::error(Code::BadValue, adapter.network.as_ref().map_or(span, |n| n.span), format!("`{net_name}` is not a host-only network name"))
                            .label("expected vboxnetN")
                            .hint("host-only networks are named vboxnet0, vboxnet1, … (vboxnetN is 192.168.(56+N).1/24 on the host)"));
                        continue;
                    };
                    let segment = format!("{host_name}-{net_name}");
                    if !file.segments.iter().any(|s| s.name.value == segment) {
                        file.segments.push(SegmentSpec {
                            name: at(segment.clone(), span),
                            ..SegmentSpec::default()
                        });
                        let host = &mut file.nodes[host_index];
                        host.interfaces.push(interface(
                            &net_name,
                            &segment,
                            &[format!("192.168.{}.1/24", 56 + u16::from(index))],
                            span,
                        ));
                    }
                    let next = host_only_next.entry(segment.clone()).or_insert(101);
                    if adapter.address.is_none() && *next > 254 {
                        out.push(Diagnostic::error(Code::BadValue, span, format!("host-only network `{net_name}` has no DHCP address left for VM `{vm_name}`"))
                            .label("network full")
                            .hint("give the adapter an `address`"));
                        continue;
                    }
                    let address = adapter.address.as_ref().map_or_else(
                        || format!("192.168.{}.{}/24", 56 + u16::from(index), next),
                        |a| a.value.clone(),
                    );
                    *next += 1;
                    (segment, Some(address), None)
                }
                AdapterMode::Internal => {
                    let net_name = adapter
                        .network
                        .as_ref()
                        .map_or_else(|| "intnet".to_owned(), |l| l.value.clone());
                    let segment = format!("intnet-{net_name}");
                    if !file.segments.iter().any(|s| s.name.value == segment) {
                        file.segments.push(SegmentSpec {
                            name: at(segment.clone(), span),
                            ..SegmentSpec::default()
                        });
                    }
                    if adapter.address.is_none() {
                        out.push(Diagnostic::error(Code::MissingKey, span, format!("adapter {n} of VM `{vm_name}` is on internal network `{net_name}`, which has no DHCP server"))
                            .label("no address")
                            .hint("give the adapter `address: ADDRESS/PREFIX` (as `ip addr add` inside the guest would)"));
                    }
                    (
                        segment,
                        adapter.address.as_ref().map(|a| a.value.clone()),
                        None,
                    )
                }
                AdapterMode::Bridged => {
                    let Some(segment) = &adapter.segment else {
                        out.push(Diagnostic::error(Code::MissingKey, span, format!("adapter {n} of VM `{vm_name}` is bridged, but to which segment of host `{host_name}`?"))
                            .label("bridged to what?")
                            .hint("add `segment: NAME`, the segment of the host's network card the VM joins"));
                        continue;
                    };
                    if adapter.address.is_none() {
                        out.push(Diagnostic::error(Code::MissingKey, span, format!("bridged adapter {n} of VM `{vm_name}` needs the address the LAN gives it"))
                            .label("no address")
                            .hint("add `address: ADDRESS/PREFIX` in the LAN's subnet"));
                    }
                    (
                        segment.value.clone(),
                        adapter.address.as_ref().map(|a| a.value.clone()),
                        None,
                    )
                }
            };
            let mut iface = interface(
                &ifname,
                &segment,
                &address.into_iter().collect::<Vec<_>>(),
                span,
            );
            iface.mac = adapter.mac.clone();
            if let Some(i) = &adapter.interface {
                iface.name = i.clone();
            }
            if let Some(addr) = &adapter.address {
                iface.addresses = vec![addr.clone()];
            }
            node.interfaces.push(iface);
            if default_route.is_none()
                && let Some(gw) = gateway
            {
                default_route = Some((gw, span));
            }
        }
        if let Some((gw, span)) = default_route
            && !vm.routes.iter().any(|r| r.to.value == "default")
        {
            node.routes.push(RouteSpec {
                to: at("default".into(), span),
                via: Some(at(gw.to_string(), span)),
                ..RouteSpec::default()
            });
        }
        node.routes.extend(vm.routes.iter().cloned());
        file.nodes.push(node);
    }
}

/// The engine node, its segments and its link to the host, with the host's side of the NAT.
fn build_engine(
    file: &mut TopologyFile,
    host_index: usize,
    engine: &Engine<'_>,
    link: &mut usize,
    forwards: &[(Ipv4Addr, &Vec<PortForwardSpec>)],
    per_vm: bool,
    out: &mut Vec<Diagnostic>,
) {
    let span = engine.span;
    let (host_link, engine_link) = link_addresses(*link);
    let link_segment = format!("{}-link", engine.name);
    let host_if = format!("vboxnat{}", *link);
    *link += 1;
    file.segments.push(SegmentSpec {
        name: at(engine.segment.clone(), span),
        note: Some(engine.note.clone()),
        ..SegmentSpec::default()
    });
    file.segments.push(SegmentSpec {
        name: at(link_segment.clone(), span),
        ..SegmentSpec::default()
    });
    let prefix = engine.net.prefix_len();
    let mut addresses = vec![format!("{}/{prefix}", engine.gateway)];
    if per_vm {
        // DNS proxy .3 and TFTP .4 answer too.
        addresses.push(format!(
            "{}/{prefix}",
            Ipv4Addr::from(u32::from(engine.gateway) + 1)
        ));
    }
    let what = if per_vm {
        format!("VirtualBox NAT engine `{}`", engine.name)
    } else {
        format!("VirtualBox NAT network engine `{}`", engine.name)
    };
    let mut node = NodeSpec {
        name: at(engine.name.clone(), span),
        forwarding: Some(true),
        interfaces: vec![
            interface("int", &engine.segment, &addresses, span),
            interface("ext", &link_segment, &[format!("{engine_link}/30")], span),
        ],
        routes: vec![RouteSpec {
            to: at("default".into(), span),
            via: Some(at(host_link.to_string(), span)),
            ..RouteSpec::default()
        }],
        nat: vec![RuleSpec {
            masquerade: Some(at(true, span)),
            out_iface: Some(at("ext".into(), span)),
            comment: Some(format!("{what}: the VMs' traffic leaves through the host")),
            ..RuleSpec::default()
        }],
        ..NodeSpec::default()
    };
    // Nothing enters the NAT network unasked, except through port forwards.
    node.firewall = Some(crate::topology::file::FirewallSpec {
        forward: Some(crate::topology::file::ChainSpec {
            policy: Some(at(crate::topology::file::PolicyName::Drop, span)),
            rules: vec![
                RuleSpec {
                    state: vec![
                        at(crate::topology::file::StateName::Established, span),
                        at(crate::topology::file::StateName::Related, span),
                    ],
                    action: Some(at(crate::topology::file::ActionName::Accept, span)),
                    comment: Some(format!("{what}: answers")),
                    ..RuleSpec::default()
                },
                RuleSpec {
                    in_iface: Some(at("int".into(), span)),
                    action: Some(at(crate::topology::file::ActionName::Accept, span)),
                    comment: Some(format!("{what}: the VMs' own connections")),
                    ..RuleSpec::default()
                },
            ],
        }),
        ..Default::default()
    });
    file.nodes.push(node);
    let engine_index = file.nodes.len() - 1;
    // The host: the link, and masquerading the engine's traffic out of its own interfaces.
    let host = &mut file.nodes[host_index];
    host.interfaces.push(interface(
        &host_if,
        &link_segment,
        &[format!("{host_link}/30")],
        span,
    ));
    host.nat.push(RuleSpec {
        masquerade: Some(at(true, span)),
        src: Some(at(engine_link.to_string(), span)),
        comment: Some(format!(
            "VirtualBox on `{}` sends the traffic of {what} from its own address",
            engine.host
        )),
        ..RuleSpec::default()
    });
    host_relays(host, &host_if, span, engine.host);
    for (guest, forwards) in forwards {
        add_forwards(file, host_index, engine_index, *guest, forwards, link, out);
    }
}

/// The host relays its NAT engines' traffic and nothing else (it is not a router otherwise).
fn host_relays(host: &mut NodeSpec, host_if: &str, span: Span, host_name: &str) {
    use crate::topology::file::{ActionName, ChainSpec, FirewallSpec, PolicyName, StateName};
    let was_router = host.forwarding.unwrap_or(false);
    host.forwarding = Some(true);
    let firewall = host.firewall.get_or_insert_with(FirewallSpec::default);
    let chain = firewall.forward.get_or_insert_with(|| ChainSpec {
        policy: (!was_router).then(|| at(PolicyName::Drop, span)),
        rules: vec![RuleSpec {
            state: vec![
                at(StateName::Established, span),
                at(StateName::Related, span),
            ],
            action: Some(at(ActionName::Accept, span)),
            comment: Some(format!(
                "VirtualBox on `{host_name}`: answers to its VMs' connections"
            )),
            ..RuleSpec::default()
        }],
    });
    chain.rules.push(RuleSpec {
        in_iface: Some(at(host_if.to_owned(), span)),
        action: Some(at(ActionName::Accept, span)),
        comment: Some(format!(
            "VirtualBox on `{host_name}` relays its VMs' NAT traffic"
        )),
        ..RuleSpec::default()
    });
    chain.rules.push(RuleSpec {
        out_iface: Some(at(host_if.to_owned(), span)),
        action: Some(at(ActionName::Accept, span)),
        comment: Some(format!(
            "VirtualBox on `{host_name}`: port forwards into its VMs"
        )),
        ..RuleSpec::default()
    });
}

/// Port forwards: DNAT on the host (host port → engine) and in the engine (→ guest), the
/// guest seeing the engine's gateway address as the client.
fn add_forwards(
    file: &mut TopologyFile,
    host_index: usize,
    engine_index: usize,
    guest: Ipv4Addr,
    forwards: &[PortForwardSpec],
    _link: &mut usize,
    out: &mut Vec<Diagnostic>,
) {
    use crate::topology::file::{ActionName, NatChainName, ProtoName, RuleProto};
    let engine_name = file.nodes[engine_index].name.value.clone();
    let engine_link = file.nodes[engine_index]
        .interfaces
        .iter()
        .find(|i| i.name.value == "ext")
        .and_then(|i| i.addresses.first())
        .map(|a| a.value.split('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let engine_gateway = file.nodes[engine_index]
        .interfaces
        .iter()
        .find(|i| i.name.value == "int")
        .and_then(|i| i.addresses.first())
        .map(|a| a.value.split('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let host_if = file.nodes[host_index]
        .interfaces
        .iter()
        .find(|i| i.segment.value == format!("{engine_name}-link"))
        .map(|i| i.name.value.clone())
        .unwrap_or_default();
    let host_name = file.nodes[host_index].name.value.clone();
    for pf in forwards {
        let span = pf.host_port.span;
        let proto = match pf.proto.as_ref().map(|p| p.value) {
            Some(ProtoName::Udp) => RuleProto::Udp,
            _ => RuleProto::Tcp,
        };
        let (Ok(host_port), Ok(guest_port)) = (
            u16::try_from(pf.host_port.value),
            u16::try_from(pf.guest_port.value),
        ) else {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    span,
                    "a port forward's ports are 1 to 65535",
                )
                .label("bad port"),
            );
            continue;
        };
        let guest_ip = match pf.guest_ip.as_ref().filter(|g| !g.value.is_empty()) {
            Some(g) => match g.value.parse::<Ipv4Addr>() {
                Ok(a) => a,
                Err(_) => {
                    out.push(
                        Diagnostic::error(
                            Code::BadAddress,
                            g.span,
                            format!("`{}` is not a guest address", g.value),
                        )
                        .label("expected an IPv4 address")
                        .hint("leave `guest_ip` empty for the guest's DHCP address"),
                    );
                    continue;
                }
            },
            None => guest,
        };
        let name = pf.name.clone().unwrap_or_else(|| {
            format!(
                "{}-{host_port}",
                if proto == RuleProto::Udp {
                    "udp"
                } else {
                    "tcp"
                }
            )
        });
        let words = format!(
            "port forward `{name}` of VirtualBox on `{host_name}`: host port {host_port} → {guest_ip}:{guest_port}"
        );
        let host_match = |chain: NatChainName| RuleSpec {
            proto: Some(at(proto, span)),
            dport: Some(at(host_port.to_string(), span)),
            dst: pf.host_ip.as_ref().filter(|h| !h.value.is_empty()).cloned(),
            dst_local: pf
                .host_ip
                .as_ref()
                .is_none_or(|h| h.value.is_empty())
                .then_some(true),
            dnat: Some(at(format!("{engine_link}:{host_port}"), span)),
            chain: Some(at(chain, span)),
            comment: Some(words.clone()),
            ..RuleSpec::default()
        };
        let host = &mut file.nodes[host_index];
        host.nat.push(host_match(NatChainName::Prerouting));
        host.nat.push(host_match(NatChainName::Output));
        // Connections into the engine come from the host's link address (host sockets).
        host.nat.push(RuleSpec {
            out_iface: Some(at(host_if.clone(), span)),
            proto: Some(at(proto, span)),
            dport: Some(at(host_port.to_string(), span)),
            snat: Some(at(host_link_of(&engine_link), span)),
            comment: Some(words.clone()),
            ..RuleSpec::default()
        });
        let engine = &mut file.nodes[engine_index];
        engine.nat.push(RuleSpec {
            in_iface: Some(at("ext".into(), span)),
            proto: Some(at(proto, span)),
            dport: Some(at(host_port.to_string(), span)),
            dnat: Some(at(format!("{guest_ip}:{guest_port}"), span)),
            comment: Some(words.clone()),
            ..RuleSpec::default()
        });
        engine.nat.push(RuleSpec {
            out_iface: Some(at("int".into(), span)),
            proto: Some(at(proto, span)),
            dport: Some(at(guest_port.to_string(), span)),
            dst: Some(at(guest_ip.to_string(), span)),
            snat: Some(at(engine_gateway.clone(), span)),
            comment: Some(format!(
                "{words} (the guest sees the NAT gateway as the client)"
            )),
            ..RuleSpec::default()
        });
        if let Some(chain) = engine.firewall.as_mut().and_then(|f| f.forward.as_mut()) {
            chain.rules.push(RuleSpec {
                in_iface: Some(at("ext".into(), span)),
                dst: Some(at(guest_ip.to_string(), span)),
                proto: Some(at(proto, span)),
                dport: Some(at(guest_port.to_string(), span)),
                action: Some(at(ActionName::Accept, span)),
                comment: Some(words.clone()),
                ..RuleSpec::default()
            });
        }
    }
}

/// The host side of the link whose engine side is `engine_link` (one less).
fn host_link_of(engine_link: &str) -> String {
    engine_link.parse::<Ipv4Addr>().map_or_else(
        |_| String::new(),
        |a| Ipv4Addr::from(u32::from(a) - 1).to_string(),
    )
}
