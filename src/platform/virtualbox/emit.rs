//! Writes planned VMs into the topology: each VM a node with an interface per attached
//! adapter and its default route, preceded by what its adapters set up outside the guest
//! (NAT engines in `nat`, host-only and internal segments here). Nothing here is checked or
//! reported: `plan` did that.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::nat::EngineNode;
use super::plan::{AdapterPlan, Attachment, HostSide};
use super::{Host, VmSpec};
use crate::format::file::{InterfaceSpec, NodeSpec, RouteSpec, SegmentSpec, TopologyFile};
use crate::format::{Located, Span};

/// The guest's interface names of adapters 1 to 4 when the file names none.
const DEFAULT_IFACES: [&str; 4] = ["enp0s3", "enp0s8", "enp0s9", "enp0s10"];

/// What has been written so far that later VMs build on.
#[derive(Default)]
pub(super) struct Emitter {
    /// Engine ↔ host links made so far: the number of the next one.
    pub(super) links: usize,
    /// The NAT networks' engines, by network name.
    nat_networks: HashMap<String, EngineNode>,
}

impl Emitter {
    /// Writes `vm` on `host`: what its adapters set up, then the VM's node.
    pub fn emit_vm(
        &mut self,
        file: &mut TopologyFile,
        vm: &VmSpec,
        host: &Host,
        adapters: &[AdapterPlan<'_>],
    ) {
        let mut node = NodeSpec {
            name: vm.name.clone(),
            os: vm.os.clone(),
            forwarding: vm.forwarding,
            dns: vm.dns.clone(),
            listen: vm.listen.clone(),
            ..NodeSpec::default()
        };
        let mut default_route: Option<(Ipv4Addr, Span)> = None;
        for adapter in adapters {
            self.emit_network(file, host, adapter);
            let Some(attachment) = &adapter.guest else {
                continue;
            };
            node.interfaces.push(guest_interface(adapter, attachment));
            if default_route.is_none()
                && let Some(gw) = attachment.gateway
            {
                default_route = Some((gw, adapter.span));
            }
        }
        // The first adapter with a gateway gives the default route, unless the file gives one.
        if let Some((gw, span)) = default_route
            && !vm.routes.iter().any(|r| r.to.value == "default")
        {
            node.routes.push(RouteSpec {
                to: Located::at("default".into(), span),
                via: Some(Located::at(gw.to_string(), span)),
                ..RouteSpec::default()
            });
        }
        node.routes.extend(vm.routes.iter().cloned());
        file.nodes.push(node);
    }

    /// What VirtualBox sets up outside the guest for one adapter.
    fn emit_network(&mut self, file: &mut TopologyFile, host: &Host, adapter: &AdapterPlan<'_>) {
        let span = adapter.span;
        match &adapter.host_side {
            HostSide::None => {}
            HostSide::NatEngine { engine, forwards } => {
                let node = self.build_engine(file, host, engine);
                node.add_forwards(file, host, forwards);
            }
            HostSide::NatNetwork {
                name,
                create,
                forwards,
            } => {
                if let Some(engine) = create {
                    let node = self.build_engine(file, host, engine);
                    self.nat_networks.insert(name.clone(), node);
                }
                if let Some(node) = self.nat_networks.get(name) {
                    node.add_forwards(file, host, forwards);
                }
            }
            HostSide::HostOnly {
                segment,
                iface,
                address,
            } => {
                if add_segment(file, segment, span) {
                    let host_iface = interface(iface, segment, &[*address], span);
                    file.nodes[host.index].interfaces.push(host_iface);
                }
            }
            HostSide::Internal { segment } => {
                add_segment(file, segment, span);
            }
        }
    }
}

/// Adds segment `name` unless the file has it; whether it was added.
fn add_segment(file: &mut TopologyFile, name: &str, span: Span) -> bool {
    if file.segments.iter().any(|s| s.name.value == name) {
        return false;
    }
    file.segments.push(SegmentSpec {
        name: Located::at(name.to_owned(), span),
        ..SegmentSpec::default()
    });
    true
}

/// An interface generated at `span`.
pub(super) fn interface(
    name: &str,
    segment: &str,
    addresses: &[Ipv4Net],
    span: Span,
) -> InterfaceSpec {
    let addresses = addresses
        .iter()
        .map(|a| Located::at(a.to_string(), span))
        .collect();
    InterfaceSpec::generated(name, segment, addresses, span)
}

/// The guest's interface of an attached adapter: the name, address and MAC address the file
/// gives, else VirtualBox's defaults.
fn guest_interface(adapter: &AdapterPlan<'_>, attachment: &Attachment) -> InterfaceSpec {
    let spec = adapter.spec;
    let span = adapter.span;
    let default_name = DEFAULT_IFACES[adapter.number - 1];
    let dhcp: Vec<Ipv4Net> = attachment.dhcp.into_iter().collect();
    let mut iface = interface(default_name, &attachment.segment, &dhcp, span);
    iface.mac = spec.mac.clone();
    if let Some(i) = &spec.interface {
        iface.name = i.clone();
    }
    if let Some(addr) = &spec.address {
        iface.addresses = vec![addr.clone()];
    }
    iface
}
