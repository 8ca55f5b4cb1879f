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
//!
//! The expansion plans each VM's adapters (`plan`: typed addresses and port forwards, every
//! problem reported), then writes them (`emit`, with the NAT engines in `nat`).

mod emit;
mod nat;
mod plan;

pub use crate::format::platform::virtualbox::{
    AdapterMode, AdapterSpec, NatNetworkSpec, PortForwardSpec, VirtualBoxSpec, VmSpec,
};

use crate::format::file::TopologyFile;
use crate::format::{Code, Diagnostic};

/// The node a VM runs on.
struct Host {
    /// Its position in `file.nodes`.
    index: usize,
    name: String,
}

/// Expands the section into nodes, segments and rules.
pub(crate) fn expand(file: &mut TopologyFile, spec: &VirtualBoxSpec, out: &mut Vec<Diagnostic>) {
    let mut planner = plan::Planner::default();
    let mut emitter = emit::Emitter::default();
    for vm in &spec.vms {
        // Each VM is planned against the file as the VMs before it left it (a VM may host
        // another).
        let Some(host) = find_host(file, vm, out) else {
            continue;
        };
        let adapters = planner.plan_vm(spec, vm, &host, out);
        emitter.emit_vm(file, vm, &host, &adapters);
    }
}

/// The VM's host node, or an error naming the closest node.
fn find_host(file: &TopologyFile, vm: &VmSpec, out: &mut Vec<Diagnostic>) -> Option<Host> {
    if let Some(index) = file
        .nodes
        .iter()
        .position(|n| n.name.value == vm.host.value)
    {
        let name = file.nodes[index].name.value.clone();
        return Some(Host { index, name });
    }
    let names: Vec<&str> = file.nodes.iter().map(|n| n.name.value.as_str()).collect();
    let d = Diagnostic::error(
        Code::UnknownReference,
        vm.host.span,
        format!(
            "VM `{}` runs on host `{}`, which is not a node of this file",
            vm.name.value, vm.host.value
        ),
    )
    .label("unknown host");
    out.push(match crate::format::closest_name(&vm.host.value, &names) {
        Some(c) => d.hint(format!(
            "did you mean `{c}`? the host is a node under `nodes:`"
        )),
        None => d.hint("add the physical PC under `nodes:` and name it here"),
    });
    None
}
