//! The `virtualbox:` section as the file writes it: VMs on host nodes, their adapters (with
//! VirtualBox's modes) and NAT networks. These types are the format (and the JSON Schema);
//! `crate::platform::virtualbox` expands them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::Located;
use crate::format::file::{ListenSpec, OsName, RouteSpec};

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
    pub proto: Option<Located<crate::format::file::ProtoName>>,
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
