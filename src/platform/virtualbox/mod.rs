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

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topology::file::{ListenSpec, OsName, RouteSpec, TopologyFile};
use crate::topology::{Code, Diagnostic, Located};

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
    out.push(
        match crate::topology::closest_name(&vm.host.value, &names) {
            Some(c) => d.hint(format!(
                "did you mean `{c}`? the host is a node under `nodes:`"
            )),
            None => d.hint("add the physical PC under `nodes:` and name it here"),
        },
    );
    None
}
