//! The `openstack:` section as the file writes it: the project, its external network, tenant
//! networks, routers, security groups and instances, with Neutron's and Nova's field names.
//! These types are the format (and the JSON Schema); nothing here interprets them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::Located;
use crate::format::file::{ListenSpec, OsName, RouteSpec, RuleProto};

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
