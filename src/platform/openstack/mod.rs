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
//!
//! The expansion runs in two steps: `plan` checks the section against the file and resolves it
//! into typed values (subnets and addresses parsed once, references resolved, interface names
//! chosen), reporting every problem; `emit` writes that plan into the file, with `security`
//! turning each instance's security groups into its chains. `check` holds the diagnostics they
//! share, `spec` the section's format.

mod check;
mod emit;
mod plan;
mod security;

pub use crate::format::platform::openstack::{
    Direction, Ethertype, ExternalNetworkSpec, InstanceSpec, NetworkSpec, OpenStackSpec,
    RouterSpec, SecurityGroupRuleSpec, SecurityGroupSpec,
};

use crate::format::Diagnostic;
use crate::format::file::TopologyFile;

/// Expands the section into segments, nodes and rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &OpenStackSpec, out: &mut Vec<Diagnostic>) {
    let plan = plan::plan(file, spec, out);
    emit::emit(file, &plan, out);
}
