//! Validation and planning of VM adapters: for each adapter, what VirtualBox sets up on the
//! host's side (a NAT engine, a NAT network's engine, a host-only or internal network) and
//! what the guest gets (segment, DHCP address, gateway), as typed values, with the port
//! forwards checked. Every problem is reported here; nothing here writes to the topology.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{AdapterMode, AdapterSpec, Host, PortForwardSpec, VirtualBoxSpec, VmSpec};
use crate::format::file::{ProtoName, RuleProto};
use crate::format::{Code, Diagnostic, Located, Span};

/// A NAT network's prefix when `nat_networks:` does not give one (or gives no valid one).
const DEFAULT_NAT_NETWORK: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 2, 0), 24);
/// The first guest address of a NAT network (its .4).
const NAT_NETWORK_FIRST_GUEST: u32 = 4;
/// The first DHCP address of a host-only network (its .101).
const HOST_ONLY_FIRST_GUEST: u16 = 101;

/// One adapter, planned.
pub(super) struct AdapterPlan<'a> {
    pub spec: &'a AdapterSpec,
    /// 1 to 4.
    pub number: usize,
    /// Where the adapter's mode is written (the VM's name when it has none): the place of
    /// everything the adapter generates.
    pub span: Span,
    /// What VirtualBox sets up for the adapter outside the guest.
    pub host_side: HostSide<'a>,
    /// The guest's side; `None` when the adapter cannot be attached.
    pub guest: Option<Attachment>,
}

/// What VirtualBox sets up for an adapter outside the guest.
pub(super) enum HostSide<'a> {
    /// Nothing (bridged, or an adapter in error).
    None,
    /// A NAT engine of the adapter's own, with its port forwards.
    NatEngine {
        engine: Engine,
        forwards: Vec<Forward<'a>>,
    },
    /// A NAT network shared by name: its engine, built by the first adapter on it
    /// (`create`), and this adapter's port forwards.
    NatNetwork {
        name: String,
        create: Option<Engine>,
        forwards: Vec<Forward<'a>>,
    },
    /// A host-only network: its segment, and the host's interface `vboxnetN` at `address`
    /// on it, unless the file has the segment already.
    HostOnly {
        segment: String,
        iface: String,
        address: Ipv4Net,
    },
    /// An internal network's segment, unless the file has it already.
    Internal { segment: String },
}

/// Where the guest's interface attaches, and what it learns there.
pub(super) struct Attachment {
    pub segment: String,
    /// The address VirtualBox's DHCP hands out, used when the adapter has no `address`.
    pub dhcp: Option<Ipv4Net>,
    /// The default gateway VirtualBox's DHCP hands out.
    pub gateway: Option<Ipv4Addr>,
}

/// A NAT engine to build: a hidden router between its private network and the host.
pub(super) struct Engine {
    /// The engine's node name, also the name of its private segment.
    pub name: String,
    /// The private network.
    pub net: Ipv4Net,
    /// The engine's address there, the guests' gateway.
    pub gateway: Ipv4Addr,
    pub span: Span,
    /// The note shown when a probe is aimed into this private network.
    pub note: String,
    /// A VM adapter's own engine (`nat`), rather than a NAT network's.
    pub per_vm: bool,
}

/// A checked port forward.
pub(super) struct Forward<'a> {
    pub name: String,
    pub proto: RuleProto,
    /// `host_ip` when not empty: only connections to it are forwarded (else to any local
    /// address).
    pub host_ip: Option<&'a Located<String>>,
    pub host_port: u16,
    pub guest: Ipv4Addr,
    pub guest_port: u16,
    /// The rule's `host_port` entry.
    pub span: Span,
}

impl Forward<'_> {
    /// How rule comments name the forward.
    pub fn words(&self, host_name: &str) -> String {
        format!(
            "port forward `{}` of VirtualBox on `{host_name}`: host port {} → {}:{}",
            self.name, self.host_port, self.guest, self.guest_port
        )
    }
}

/// An adapter being planned, with what its names and diagnostics need.
struct Adapter<'a, 'h> {
    vm: &'a VmSpec,
    host: &'h Host,
    spec: &'a AdapterSpec,
    number: usize,
    span: Span,
}

impl<'a> Adapter<'a, '_> {
    /// The plan of an adapter that cannot be attached (its problem is reported).
    fn unattached(&self) -> AdapterPlan<'a> {
        self.plan(HostSide::None, None)
    }

    fn plan(&self, host_side: HostSide<'a>, guest: Option<Attachment>) -> AdapterPlan<'a> {
        AdapterPlan {
            spec: self.spec,
            number: self.number,
            span: self.span,
            host_side,
            guest,
        }
    }

    /// The adapter's `network:` name, or `default`.
    fn network_name(&self, default: &str) -> String {
        self.spec
            .network
            .as_ref()
            .map_or_else(|| default.to_owned(), |l| l.value.clone())
    }
}

/// The address counters VirtualBox's DHCP servers keep, across VMs.
#[derive(Default)]
pub(super) struct Planner {
    /// The next host part per host-only segment.
    host_only_next: HashMap<String, u16>,
    /// The next guest offset per NAT network.
    nat_network_next: HashMap<String, u32>,
}

impl Planner {
    /// Plans the adapters of `vm` on `host`, in order (VirtualBox has four).
    pub fn plan_vm<'a>(
        &mut self,
        spec: &'a VirtualBoxSpec,
        vm: &'a VmSpec,
        host: &Host,
        out: &mut Vec<Diagnostic>,
    ) -> Vec<AdapterPlan<'a>> {
        if vm.adapters.len() > 4 {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    vm.name.span,
                    format!(
                        "VM `{}` has {} adapters; VirtualBox has 4 in the GUI",
                        vm.name.value,
                        vm.adapters.len()
                    ),
                )
                .label("too many adapters")
                .hint("keep adapters 1 to 4"),
            );
        }
        let mut plans = Vec::new();
        for (i, spec_adapter) in vm.adapters.iter().enumerate().take(4) {
            let adapter = Adapter {
                vm,
                host,
                spec: spec_adapter,
                number: i + 1,
                span: spec_adapter.mode.as_ref().map_or(vm.name.span, |m| m.span),
            };
            let mode = spec_adapter
                .mode
                .as_ref()
                .map_or(AdapterMode::Nat, |m| m.value);
            plans.push(match mode {
                AdapterMode::Nat => nat(&adapter, out),
                AdapterMode::NatNetwork => self.nat_network(spec, &adapter, out),
                AdapterMode::HostOnly => self.host_only(&adapter, out),
                AdapterMode::Internal => internal(&adapter, out),
                AdapterMode::Bridged => bridged(&adapter, out),
            });
        }
        plans
    }

    /// `nat-network`: the shared engine (built by the first adapter on the network), the next
    /// guest address from .4, and the adapter's port forwards.
    fn nat_network<'a>(
        &mut self,
        spec: &VirtualBoxSpec,
        a: &Adapter<'a, '_>,
        out: &mut Vec<Diagnostic>,
    ) -> AdapterPlan<'a> {
        let (vm_name, host_name) = (&a.vm.name.value, &a.host.name);
        let name = a.network_name("NatNetwork");
        let cidr = spec
            .nat_networks
            .iter()
            .find(|nn| nn.name.value == name)
            .and_then(|nn| nn.cidr.as_ref())
            .and_then(|c| c.value.parse::<Ipv4Net>().ok())
            .unwrap_or(DEFAULT_NAT_NETWORK)
            .trunc();
        let base = u32::from(cidr.network());
        let gateway = Ipv4Addr::from(base.wrapping_add(1));
        let (create, next) = match self.nat_network_next.entry(name.clone()) {
            Entry::Occupied(next) => (None, next.into_mut()),
            Entry::Vacant(slot) => {
                let engine = Engine {
                    name: format!("natnet-{name}"),
                    net: cidr,
                    gateway,
                    span: a.span,
                    note: format!(
                        "NAT network `{name}`, private to VirtualBox on host `{host_name}`: its VMs reach each other and go out through it; from outside, only its port forwards lead in"
                    ),
                    per_vm: false,
                };
                (Some(engine), slot.insert(NAT_NETWORK_FIRST_GUEST))
            }
        };
        let guest = Ipv4Addr::from(base.saturating_add(*next));
        *next += 1;
        if a.spec.address.is_none() && !(cidr.contains(&guest) && guest != cidr.broadcast()) {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!(
                        "NAT network `{name}` ({cidr}) has no free address left for VM `{vm_name}`"
                    ),
                )
                .label("network full")
                .hint("give the NAT network a larger `cidr`, or the adapter an `address`"),
            );
            let forwards = Vec::new();
            return a.plan(
                HostSide::NatNetwork {
                    name,
                    create,
                    forwards,
                },
                None,
            );
        }
        let forwards = plan_forwards(&a.spec.port_forwards, guest, out);
        let attachment = Attachment {
            segment: format!("natnet-{name}"),
            dhcp: Some(Ipv4Net::new_assert(guest, cidr.prefix_len())),
            gateway: Some(gateway),
        };
        let host_side = HostSide::NatNetwork {
            name,
            create,
            forwards,
        };
        a.plan(host_side, Some(attachment))
    }

    /// `host-only`: `vboxnetN` is 192.168.(56+N).1/24 on the host, guests from .101.
    fn host_only<'a>(&mut self, a: &Adapter<'a, '_>, out: &mut Vec<Diagnostic>) -> AdapterPlan<'a> {
        let (vm_name, host_name) = (&a.vm.name.value, &a.host.name);
        let net_name = a.network_name("vboxnet0");
        let Some(index) = net_name
            .strip_prefix("vboxnet")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n <= 199)
        else {
            let span = a.spec.network.as_ref().map_or(a.span, |n| n.span);
            out.push(Diagnostic::error(Code::BadValue, span, format!("`{net_name}` is not a host-only network name"))
                .label("expected vboxnetN")
                .hint("host-only networks are named vboxnet0, vboxnet1, … (vboxnetN is 192.168.(56+N).1/24 on the host)"));
            return a.unattached();
        };
        let third = 56 + index;
        let segment = format!("{host_name}-{net_name}");
        let next = self
            .host_only_next
            .entry(segment.clone())
            .or_insert(HOST_ONLY_FIRST_GUEST);
        let host_side = HostSide::HostOnly {
            segment: segment.clone(),
            iface: net_name.clone(),
            address: Ipv4Net::new_assert(Ipv4Addr::new(192, 168, third, 1), 24),
        };
        if a.spec.address.is_none() && *next > 254 {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!(
                        "host-only network `{net_name}` has no DHCP address left for VM `{vm_name}`"
                    ),
                )
                .label("network full")
                .hint("give the adapter an `address`"),
            );
            return a.plan(host_side, None);
        }
        // Past .254 only with an `address` of the adapter's own, which is used instead.
        let dhcp = u8::try_from(*next)
            .ok()
            .map(|host_part| Ipv4Net::new_assert(Ipv4Addr::new(192, 168, third, host_part), 24));
        *next += 1;
        let attachment = Attachment {
            segment,
            dhcp,
            gateway: None,
        };
        a.plan(host_side, Some(attachment))
    }
}

/// `nat`: an engine of the adapter's own on 10.0.(n+1).0/24, gateway .2, guest .15.
fn nat<'a>(a: &Adapter<'a, '_>, out: &mut Vec<Diagnostic>) -> AdapterPlan<'a> {
    let (vm_name, host_name, n) = (&a.vm.name.value, &a.host.name, a.number);
    // n is 1 to 4.
    let third = (n + 1) as u8;
    let engine = Engine {
        name: format!("{vm_name}-nat{n}"),
        net: Ipv4Net::new_assert(Ipv4Addr::new(10, 0, third, 0), 24),
        gateway: Ipv4Addr::new(10, 0, third, 2),
        span: a.span,
        note: format!(
            "the NAT network of VM `{vm_name}` (adapter {n}), private to VirtualBox on host `{host_name}`: nothing outside `{host_name}` can route to it; reach the VM through a port forward of that adapter (host port → guest port), at the host's address"
        ),
        per_vm: true,
    };
    let guest = Ipv4Addr::new(10, 0, third, 15);
    let forwards = plan_forwards(&a.spec.port_forwards, guest, out);
    let attachment = Attachment {
        segment: engine.name.clone(),
        dhcp: Some(Ipv4Net::new_assert(guest, 24)),
        gateway: Some(engine.gateway),
    };
    a.plan(HostSide::NatEngine { engine, forwards }, Some(attachment))
}

/// `internal`: a switch named by the network; no DHCP, so the adapter needs an `address`.
fn internal<'a>(a: &Adapter<'a, '_>, out: &mut Vec<Diagnostic>) -> AdapterPlan<'a> {
    let (vm_name, n) = (&a.vm.name.value, a.number);
    let net_name = a.network_name("intnet");
    let segment = format!("intnet-{net_name}");
    if a.spec.address.is_none() {
        out.push(Diagnostic::error(Code::MissingKey, a.span, format!("adapter {n} of VM `{vm_name}` is on internal network `{net_name}`, which has no DHCP server"))
            .label("no address")
            .hint("give the adapter `address: ADDRESS/PREFIX` (as `ip addr add` inside the guest would)"));
    }
    let attachment = Attachment {
        segment: segment.clone(),
        dhcp: None,
        gateway: None,
    };
    a.plan(HostSide::Internal { segment }, Some(attachment))
}

/// `bridged`: a peer on a segment of the host, with the address the LAN gives it.
fn bridged<'a>(a: &Adapter<'a, '_>, out: &mut Vec<Diagnostic>) -> AdapterPlan<'a> {
    let (vm_name, host_name, n) = (&a.vm.name.value, &a.host.name, a.number);
    let Some(segment) = &a.spec.segment else {
        out.push(Diagnostic::error(Code::MissingKey, a.span, format!("adapter {n} of VM `{vm_name}` is bridged, but to which segment of host `{host_name}`?"))
            .label("bridged to what?")
            .hint("add `segment: NAME`, the segment of the host's network card the VM joins"));
        return a.unattached();
    };
    if a.spec.address.is_none() {
        out.push(
            Diagnostic::error(
                Code::MissingKey,
                a.span,
                format!("bridged adapter {n} of VM `{vm_name}` needs the address the LAN gives it"),
            )
            .label("no address")
            .hint("add `address: ADDRESS/PREFIX` in the LAN's subnet"),
        );
    }
    let attachment = Attachment {
        segment: segment.value.clone(),
        dhcp: None,
        gateway: None,
    };
    a.plan(HostSide::None, Some(attachment))
}

/// The port forwards of an adapter whose guest has the DHCP address `guest`: ports 1 to
/// 65535, `guest_ip` an address (empty: `guest`), protocol TCP unless UDP.
fn plan_forwards<'a>(
    forwards: &'a [PortForwardSpec],
    guest: Ipv4Addr,
    out: &mut Vec<Diagnostic>,
) -> Vec<Forward<'a>> {
    let mut planned = Vec::new();
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
        let guest = match pf.guest_ip.as_ref().filter(|g| !g.value.is_empty()) {
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
            let proto = if proto == RuleProto::Udp {
                "udp"
            } else {
                "tcp"
            };
            format!("{proto}-{host_port}")
        });
        planned.push(Forward {
            name,
            proto,
            host_ip: pf.host_ip.as_ref().filter(|h| !h.value.is_empty()),
            host_port,
            guest,
            guest_port,
            span,
        });
    }
    planned
}
