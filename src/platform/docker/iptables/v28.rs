//! Docker Engine 28 (moby v28.2.2 to v28.5.2, whose iptables rules are the same; cited at
//! `v28.5.2`, the bridge driver's firewall code `libnetwork/drivers/bridge/internal/iptabler/`
//! written `ipt/` below, the driver `libnetwork/drivers/bridge/` written `br/`): the driver's
//! chains at start, `DOCKER-USER`, each network as the driver creates it, then each container's
//! endpoints in attach order with its published ports on its gateway endpoint.
//! docs/platform-semantics.md, "Docker", **Docker 28**, says the same in prose.
//!
//! Not replayed, as nothing in the `docker:` section asks for them: the deletions of rules older
//! versions left in FORWARD (`ipt/network.go:214-249, 363-383, 425-433`; a host's own rule
//! identical to one of them would be deleted too), routed and nat-unprotected gateway modes,
//! `--allow-direct-routing`, trusted host interfaces, legacy links, SCTP, IPv6.

use std::cmp::Ordering;
use std::net::Ipv4Addr;

use super::super::containers::{Container, Published};
use super::super::plan::{Bridge, EnginePlan};
use super::{DOCKER, ISOLATION_1, ISOLATION_2, USER, host_dst, nat_jumps, net, proto};
use crate::format::Span;
use crate::format::file::RuleProto;
use crate::platform::tables::{Table, Tables};

/// Docker 28's own chains besides those of every version.
const FORWARD: &str = "DOCKER-FORWARD";
const BRIDGE: &str = "DOCKER-BRIDGE";
const CT: &str = "DOCKER-CT";

/// Replays dockerd 28 on the plan's host, into `t`.
pub(super) fn replay(t: &mut Tables, plan: &EnginePlan<'_>) {
    let host = plan.host.span;
    // br/bridge_linux.go:883-889, br/setup_ip_forwarding.go:20-42, ipt/iptabler.go:94-118: the
    // first IPv4 network (docker0) sets FORWARD's policy to DROP when the daemon itself turned
    // ip_forward on.
    t.forward_drop = !plan.host.was_router;
    setup_ip_chains(t, plan, host);
    setup_user_chain(t, host);
    for bridge in &plan.bridges {
        if bridge.internal {
            setup_internal_network_rules(t, bridge);
        } else {
            setup_ip_tables(t, plan, bridge);
        }
    }
    for (index, container) in plan.containers.iter().enumerate() {
        join(t, plan, index, container);
    }
}

/// `setupIPChains` (ipt/iptabler.go:120-260), run by `NewIptabler` at the driver's start: the
/// chains, nat PREROUTING's and OUTPUT's jumps to DOCKER appended (`addNATJumpRules`,
/// ipt/network.go:174-209), FORWARD's jump to DOCKER-FORWARD and DOCKER-FORWARD's jumps to
/// DOCKER-BRIDGE, the first isolation stage and DOCKER-CT each put at the top
/// (`EnsureJumpRule`, :221-232), so that DOCKER-CT ends first.
fn setup_ip_chains(t: &mut Tables, plan: &EnginePlan<'_>, place: Span) {
    t.new_chain(Table::Nat, DOCKER);
    for chain in [DOCKER, FORWARD, BRIDGE, CT, ISOLATION_1, ISOLATION_2] {
        t.new_chain(Table::Filter, chain);
    }
    // ipt/network.go:174-209 (addNATJumpRules); :195-197: OUTPUT skips 127.0.0.0/8 unless in
    // hairpin mode (no userland proxy, br/bridge_linux.go:515).
    nat_jumps(t, plan, place);
    t.ensure_jump("FORWARD", FORWARD, place);
    for to in [BRIDGE, ISOLATION_1, CT] {
        t.ensure_jump(FORWARD, to, place);
    }
}

/// `setupUserChain` (libnetwork/firewall_linux.go:58-66, from libnetwork/controller.go:216):
/// DOCKER-USER, empty (no RETURN since v28.2.2), and FORWARD's jump to it put at the top, once.
fn setup_user_chain(t: &mut Tables, place: Span) {
    t.new_chain(Table::Filter, USER);
    t.ensure_jump("FORWARD", USER, place);
}

/// `setupInternalNetworkRules` (ipt/network.go:527-581) for an `--internal` network: nothing
/// out of the bridge but to its subnet, nothing into it but from its subnet (each inserted at
/// the top of the first isolation stage, :572-577), and icc (`setIcc`, :580).
fn setup_internal_network_rules(t: &mut Tables, b: &Bridge) {
    let (br, subnet) = (&b.iface, net(b.subnet));
    let inward = format!("! -d {subnet} -i {br} -j DROP");
    t.insert_once(Table::Filter, ISOLATION_1, inward, b.span);
    let outward = format!("! -s {subnet} -o {br} -j DROP");
    t.insert_once(Table::Filter, ISOLATION_1, outward, b.span);
    set_icc(t, b, true);
}

/// `setIcc` (ipt/network.go:395-435): an internal network with icc accepts what its bridge
/// carries (appended to DOCKER-FORWARD, :405-408); any network without icc drops it (appended,
/// :415-418).
fn set_icc(t: &mut Tables, b: &Bridge, internal: bool) {
    let br = &b.iface;
    if internal && b.icc {
        let accept = format!("-i {br} -o {br} -j ACCEPT");
        t.append_once(Table::Filter, FORWARD, accept, b.span);
    }
    if !b.icc {
        let drop = format!("-i {br} -o {br} -j DROP");
        t.append_once(Table::Filter, FORWARD, drop, b.span);
    }
}

/// `setupIPTables` (ipt/network.go:89-159) for a network that is not internal, from the
/// driver's `createNetwork` (`addfirewallerNetwork`, br/bridge_linux.go:916).
fn setup_ip_tables(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let (br, place) = (&b.iface, b.span);
    setup_non_internal_network_rules(t, plan, b);
    // setDefaultForwardRule (:119, :264-289): what reaches the bridge from elsewhere and no
    // published port accepted, dropped (appended: the ports' ACCEPTs are inserted above).
    t.append_once(
        Table::Filter,
        DOCKER,
        format!("! -i {br} -o {br} -j DROP"),
        place,
    );
    // :127-136: answers into the bridge.
    let answers = format!("-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    t.append_once(Table::Filter, CT, answers, place);
    // :138-147: what goes into the bridge, to DOCKER.
    t.append_once(Table::Filter, BRIDGE, format!("-o {br} -j {DOCKER}"), place);
    // setINC (:441-499): the first stage appended (:477-486), the second inserted (:488-496).
    let stage1 = format!("-i {br} ! -o {br} -j {ISOLATION_2}");
    t.append_once(Table::Filter, ISOLATION_1, stage1, place);
    t.insert_once(
        Table::Filter,
        ISOLATION_2,
        format!("-o {br} -j DROP"),
        place,
    );
}

/// `setupNonInternalNetworkRules` (ipt/network.go:291-393): the subnet's masquerade and, with
/// the userland proxy, the nat DOCKER chain's RETURN for the bridge, both inserted (:310, :330);
/// without it (hairpin mode) the masquerade of the host's own connections into the bridge,
/// inserted (:338); icc (:343); what leaves the bridge, accepted (appended to DOCKER-FORWARD,
/// :369-390).
fn setup_non_internal_network_rules(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let (br, place) = (&b.iface, b.span);
    let subnet = net(b.subnet);
    let masquerade = format!("-s {subnet} ! -o {br} -j MASQUERADE");
    t.insert_once(Table::Nat, "POSTROUTING", masquerade, place);
    if plan.userland_proxy {
        t.insert_once(Table::Nat, DOCKER, format!("-i {br} -j RETURN"), place);
    } else {
        let local = format!("-o {br} -m addrtype --src-type LOCAL -j MASQUERADE");
        t.insert_once(Table::Nat, "POSTROUTING", local, place);
    }
    set_icc(t, b, false);
    let out = if b.icc {
        format!("-i {br} -j ACCEPT")
    } else {
        format!("-i {br} ! -o {br} -j ACCEPT")
    };
    t.append_once(Table::Filter, FORWARD, out, place);
}

/// A container's endpoints, in the order it joins its networks (`docker run --network`, then
/// each `docker network connect`): each endpoint's direct-access drop when created
/// (`CreateEndpoint` → `AddEndpoint`, br/bridge_linux.go:1196), and the published ports
/// programmed once the endpoint that ends up the container's gateway has joined
/// (`ProgramExternalConnectivity`, br/bridge_linux.go:1487-1555). A gateway endpoint that an
/// endpoint joining later replaces has its port rules deleted and written again for the new one
/// (libnetwork/endpoint.go:619-714): the rules are as if the ports were programmed when the
/// final gateway joined, after the drops of the endpoints before it.
fn join(t: &mut Tables, plan: &EnginePlan<'_>, index: usize, container: &Container<'_>) {
    let Container::Bridged { attachments, .. } = container else {
        return;
    };
    for a in attachments {
        let bridge = plan.bridge(a.bridge);
        if !bridge.internal {
            filter_direct_access(t, bridge, a.address, a.span);
        }
        if a.gateway {
            let mut ports: Vec<&Published<'_>> = plan
                .published
                .iter()
                .filter(|p| p.container == index)
                .collect();
            ports.sort_by(|x, y| binding_order(x, y));
            for p in ports {
                set_per_port_iptables(t, plan, p);
            }
        }
    }
}

/// `filterDirectAccess` (ipt/endpoint.go:50-78): what arrives for the endpoint's address
/// other than through its bridge, dropped in raw PREROUTING (appended, :72-77).
fn filter_direct_access(t: &mut Tables, b: &Bridge, address: Ipv4Addr, place: Span) {
    let drop = format!("-d {address}/32 ! -i {} -j DROP", b.iface);
    t.append_once(Table::Raw, "PREROUTING", drop, place);
}

/// The order `addPortMappings` sorts a container's bindings in (br/port_mapping_linux.go:113-
/// 114, `cmpPortBinding` :228-258): by container port, then protocol (tcp before udp), then
/// host port, then host IP (none, 0.0.0.0, first).
fn binding_order(a: &Published<'_>, b: &Published<'_>) -> Ordering {
    let key = |p: &Published<'_>| {
        (
            p.publish.container_port,
            p.publish.proto == RuleProto::Udp,
            p.publish.host_port,
            p.publish.host_ip.map_or(0, u32::from),
        )
    };
    key(a).cmp(&key(b))
}

/// `setPerPortIptables` (ipt/port.go:35-75) for one published port: a port on a loopback host
/// address dropped in raw PREROUTING unless it arrives on `lo` (appended,
/// `filterPortMappedOnLoopback`, :166-204); the DNAT in nat DOCKER, from anywhere but the
/// bridge with the userland proxy (appended, `setPerPortNAT`, :79-107); the masquerade of the
/// container reaching itself through the host, without it (appended, :109-118); the accept in
/// filter DOCKER (inserted at the top, `setPerPortForwarding`, :126-141).
fn set_per_port_iptables(t: &mut Tables, plan: &EnginePlan<'_>, p: &Published<'_>) {
    let br = &plan.bridge(p.bridge).iface;
    let place = p.span;
    let proto = proto(p);
    let (port, address, cport) = (p.publish.host_port, p.address, p.publish.container_port);
    let match_port = |port: u16| format!("-p {proto} -m {proto} --dport {port}");
    if let Some(ip) = p.publish.host_ip.filter(Ipv4Addr::is_loopback) {
        let drop = format!("-d {ip}/32 ! -i lo {} -j DROP", match_port(port));
        t.append_once(Table::Raw, "PREROUTING", drop, place);
    }
    let dst = host_dst(p.publish.host_ip);
    let from = if plan.userland_proxy {
        format!("! -i {br} ")
    } else {
        String::new()
    };
    let dnat = format!(
        "{dst}{from}{} -j DNAT --to-destination {address}:{cport}",
        match_port(port)
    );
    t.append_once(Table::Nat, DOCKER, dnat, place);
    if !plan.userland_proxy {
        let itself = format!(
            "-s {address}/32 -d {address}/32 {} -j MASQUERADE",
            match_port(cport)
        );
        t.append_once(Table::Nat, "POSTROUTING", itself, place);
    }
    let accept = format!(
        "-d {address}/32 ! -i {br} -o {br} {} -j ACCEPT",
        match_port(cport)
    );
    t.insert_once(Table::Filter, DOCKER, accept, place);
}

#[cfg(test)]
mod tests {
    //! Expected values: the orders of moby v28.5.2 cited on each step above.
    use super::super::super::tests::expand_text;

    const HOST: &str = "nodes:\n  - name: vm\n    forwarding: true\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.5/24] }]\nsegments: [{ name: lan }]\ndocker:\n  engines:\n    - host: vm\n      version: \"28\"\n";

    /// The rules dockerd writes for `engine` (the lines under the engine's `host:`), as
    /// `iptables-save` lines.
    fn rules(engine: &str) -> Vec<String> {
        let (file, out) = expand_text(&format!("{HOST}{engine}"));
        assert!(
            out.iter()
                .all(|d| d.severity != crate::format::Severity::Error),
            "{out:?}"
        );
        let vm = file
            .nodes
            .iter()
            .find(|n| n.name.value == "vm")
            .expect("host");
        let rules = vm.platform_rules.as_ref().expect("Docker's rules");
        rules.text.text.lines().map(str::to_owned).collect()
    }

    /// The `-A CHAIN` lines of `table`, in order.
    fn chain(lines: &[String], table: &str, chain: &str) -> Vec<String> {
        let start = lines
            .iter()
            .position(|l| *l == format!("*{table}"))
            .unwrap_or(lines.len());
        let prefix = format!("-A {chain} ");
        lines[start..]
            .iter()
            .take_while(|l| *l != "COMMIT")
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_container_on_two_networks_has_a_raw_drop_per_endpoint_and_ports_at_its_gateway() {
        // zeta joins first, alpha second and becomes the gateway (its name sorts first): the
        // ports are written once alpha has joined, after both endpoints' drops.
        let lines = rules(
            "      networks:\n        - { name: zeta, subnet: 172.30.1.0/24 }\n        - { name: alpha, subnet: 172.30.2.0/24 }\n      containers:\n        - { name: c, networks: [zeta, alpha], publish: ['127.0.0.1:8080:80'] }\n        - { name: d, network: zeta }\n",
        );
        assert_eq!(
            chain(&lines, "raw", "PREROUTING"),
            [
                "-d 172.30.1.2/32 ! -i br-zeta -j DROP",
                "-d 172.30.2.2/32 ! -i br-alpha -j DROP",
                "-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP",
                "-d 172.30.1.3/32 ! -i br-zeta -j DROP",
            ]
        );
        assert_eq!(
            chain(&lines, "nat", "DOCKER").last().map(String::as_str),
            Some(
                "-d 127.0.0.1/32 ! -i br-alpha -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.2.2:80"
            )
        );
    }

    #[test]
    fn bindings_are_sorted_and_accepts_inserted() {
        // Sorted by container port, then tcp before udp, then host port, then host address:
        // DNATs appended in that order, ACCEPTs inserted so in the reverse one.
        let lines = rules(
            "      containers:\n        - { name: c, publish: ['9090:80/udp', '0.0.0.0:8081:80', '10.0.0.5:8080:80', '7070:70'] }\n",
        );
        assert_eq!(
            chain(&lines, "nat", "DOCKER"),
            [
                "-i docker0 -j RETURN",
                "! -i docker0 -p tcp -m tcp --dport 7070 -j DNAT --to-destination 172.17.0.2:70",
                "-d 10.0.0.5/32 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
                "! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80",
                "! -i docker0 -p udp -m udp --dport 9090 -j DNAT --to-destination 172.17.0.2:80",
            ]
        );
        assert_eq!(
            chain(&lines, "filter", "DOCKER"),
            [
                "-d 172.17.0.2/32 ! -i docker0 -o docker0 -p udp -m udp --dport 80 -j ACCEPT",
                "-d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT",
                "-d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 70 -j ACCEPT",
                "! -i docker0 -o docker0 -j DROP",
            ]
        );
    }

    #[test]
    fn without_the_proxy_nat_changes_and_the_filter_table_does_not() {
        let with = rules("      containers:\n        - { name: c, publish: ['8080:80'] }\n");
        let without = rules(
            "      userland_proxy: false\n      containers:\n        - { name: c, publish: ['8080:80'] }\n",
        );
        for c in ["FORWARD", "DOCKER", "DOCKER-FORWARD", "DOCKER-USER"] {
            assert_eq!(
                chain(&with, "filter", c),
                chain(&without, "filter", c),
                "{c}"
            );
        }
        assert_eq!(
            chain(&without, "nat", "POSTROUTING"),
            [
                "-o docker0 -m addrtype --src-type LOCAL -j MASQUERADE",
                "-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
                "-s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
            ]
        );
        assert_eq!(
            chain(&with, "nat", "POSTROUTING"),
            ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"]
        );
        assert_eq!(
            chain(&without, "nat", "OUTPUT"),
            ["-m addrtype --dst-type LOCAL -j DOCKER"]
        );
    }

    #[test]
    fn networks_keep_creation_order_except_in_the_second_isolation_stage() {
        let lines = rules(
            "      networks:\n        - { name: one, subnet: 172.30.1.0/24 }\n        - { name: two, subnet: 172.30.2.0/24, internal: true }\n        - { name: three, subnet: 172.30.3.0/24, icc: false }\n",
        );
        assert_eq!(
            chain(&lines, "filter", "DOCKER-ISOLATION-STAGE-1"),
            [
                "! -s 172.30.2.0/24 -o br-two -j DROP",
                "! -d 172.30.2.0/24 -i br-two -j DROP",
                "-i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
                "-i br-one ! -o br-one -j DOCKER-ISOLATION-STAGE-2",
                "-i br-three ! -o br-three -j DOCKER-ISOLATION-STAGE-2",
            ]
        );
        assert_eq!(
            chain(&lines, "filter", "DOCKER-ISOLATION-STAGE-2"),
            [
                "-o br-three -j DROP",
                "-o br-one -j DROP",
                "-o docker0 -j DROP"
            ]
        );
        assert_eq!(
            chain(&lines, "filter", "DOCKER-FORWARD"),
            [
                "-j DOCKER-CT",
                "-j DOCKER-ISOLATION-STAGE-1",
                "-j DOCKER-BRIDGE",
                "-i docker0 -j ACCEPT",
                "-i br-one -j ACCEPT",
                "-i br-two -o br-two -j ACCEPT",
                "-i br-three -o br-three -j DROP",
                "-i br-three ! -o br-three -j ACCEPT",
            ]
        );
        assert_eq!(
            chain(&lines, "filter", "FORWARD"),
            ["-j DOCKER-USER", "-j DOCKER-FORWARD"]
        );
        assert!(chain(&lines, "filter", "DOCKER-USER").is_empty());
        assert!(!lines.iter().any(|l| l == "*raw"), "no container, no raw");
    }
}
