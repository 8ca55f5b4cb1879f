//! dockerd 20.10 (libnetwork v20.10.24, vendored in moby v20.10.24 under
//! `vendor/github.com/docker/libnetwork/`, written `lnw/` below): the driver's chains at start,
//! then each network as `createNetwork` sets it up followed by `arrangeUserFilterRule`, then each
//! published port as the port mapper's `Forward` adds it. docs/platform-semantics.md, "Docker",
//! **Rules**, gives each step.

use super::super::containers::Published;
use super::super::plan::{Bridge, EnginePlan};
use super::{DOCKER, ISOLATION_1, ISOLATION_2, USER, host_dst, nat_jumps, net, proto};
use crate::format::Span;
use crate::format::file::RuleProto;
use crate::platform::tables::{Table, Tables};

/// Replays dockerd 20.10 on the plan's host, into `t`.
pub(super) fn replay(t: &mut Tables, plan: &EnginePlan<'_>) {
    let host = plan.host.span;
    // The daemon turned ip_forward on itself: it set FORWARD's policy to DROP
    // (setupIPForwarding, lnw/drivers/bridge/setup_ip_forwarding.go:24-68).
    t.forward_drop = !plan.host.was_router;
    setup_ip_chains(t, host);
    for bridge in &plan.bridges {
        create_network(t, plan, bridge);
        arrange_user_filter_rule(t, host);
    }
    for p in in_mapping_order(&plan.published) {
        forward(t, plan, p);
    }
}

/// The published ports in the order dockerd maps them: container by container, and within a
/// container as `nat.SortPortMap` (go-connections, vendored in moby v20.10.24, `nat/sort.go`,
/// called from `daemon/container_operations.go:150`) orders its bindings: the larger host port
/// first, then the larger container port, then tcp before udp. (Its comparison is not a strict
/// order: for `-p 8061:5000 -p 8063:80` either binding may come first, as the map it starts
/// from happens to iterate; reachlab takes the host port's order then.)
fn in_mapping_order<'p, 'a>(published: &'p [Published<'a>]) -> Vec<&'p Published<'a>> {
    let key = |p: &Published<'_>| {
        (
            std::cmp::Reverse(p.publish.host_port),
            std::cmp::Reverse(p.publish.container_port),
            p.publish.proto != RuleProto::Tcp,
        )
    };
    // Published ports are in container order; one container's share its address.
    let mut out = Vec::with_capacity(published.len());
    for container in published.chunk_by(|a, b| a.address == b.address && a.bridge == b.bridge) {
        let mut ports: Vec<&Published<'_>> = container.iter().collect();
        ports.sort_by_key(|p| key(p));
        out.extend(ports);
    }
    out
}

/// The driver's start (`setupIPChains`): nat and filter `DOCKER`, the two isolation chains
/// with their RETURN.
fn setup_ip_chains(t: &mut Tables, place: Span) {
    t.new_chain(Table::Nat, DOCKER);
    t.new_chain(Table::Filter, DOCKER);
    t.new_chain(Table::Filter, ISOLATION_1);
    t.new_chain(Table::Filter, ISOLATION_2);
    add_return(t, ISOLATION_1, place);
    add_return(t, ISOLATION_2, place);
}

/// `AddReturnRule(chain)`: `-A CHAIN -j RETURN` unless there.
fn add_return(t: &mut Tables, chain: &'static str, place: Span) {
    t.append_once(Table::Filter, chain, "-j RETURN".into(), place);
}

/// One network's setup (`createNetwork`): its iptables rules (`setupIPTables`), then the
/// isolation from the other networks (`setupNetworkIsolationRules`).
fn create_network(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let place = b.span;
    let br = &b.iface;
    if b.internal {
        setup_internal_network_rules(t, b);
    } else {
        setup_ip_tables_internal(t, plan, b);
        program_nat_chain(t, plan, place);
        // ProgramChain(filter): the link to DOCKER, then the answers above it.
        t.insert_once(
            Table::Filter,
            "FORWARD",
            format!("-o {br} -j {DOCKER}"),
            place,
        );
        t.insert_once(
            Table::Filter,
            "FORWARD",
            format!("-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            place,
        );
    }
    t.ensure_jump("FORWARD", ISOLATION_1, place);
    if !b.internal {
        // setINC: both rules inserted at the top of their chains.
        let stage1 = format!("-i {br} ! -o {br} -j {ISOLATION_2}");
        if !t.exists(Table::Filter, ISOLATION_1, &stage1) {
            t.insert(Table::Filter, ISOLATION_1, stage1, place);
        }
        let stage2 = format!("-o {br} -j DROP");
        if !t.exists(Table::Filter, ISOLATION_2, &stage2) {
            t.insert(Table::Filter, ISOLATION_2, stage2, place);
        }
    }
}

/// `setupIPTablesInternal`: the masquerade of the subnet, the nat DOCKER chain's RETURN for
/// the bridge (with the userland proxy) or the masquerade of the host's own connections into
/// it (without: hairpin mode), inter-container communication, and what leaves the bridge.
fn setup_ip_tables_internal(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let (br, place) = (&b.iface, b.span);
    let subnet = net(b.subnet);
    t.insert_once(
        Table::Nat,
        "POSTROUTING",
        format!("-s {subnet} ! -o {br} -j MASQUERADE"),
        place,
    );
    if plan.userland_proxy {
        t.insert_once(Table::Nat, DOCKER, format!("-i {br} -j RETURN"), place);
    } else {
        t.insert_once(
            Table::Nat,
            "POSTROUTING",
            format!("-o {br} -m addrtype --src-type LOCAL -j MASQUERADE"),
            place,
        );
    }
    set_icc(t, b);
    t.insert_once(
        Table::Filter,
        "FORWARD",
        format!("-i {br} ! -o {br} -j ACCEPT"),
        place,
    );
}

/// `setIcc`: with icc, `-I FORWARD -i BR -o BR -j ACCEPT`; without, the ACCEPT deleted and
/// `-A FORWARD -i BR -o BR -j DROP`, at the end of FORWARD, after the host's own rules.
fn set_icc(t: &mut Tables, b: &Bridge) {
    let br = &b.iface;
    let accept = format!("-i {br} -o {br} -j ACCEPT");
    let drop = format!("-i {br} -o {br} -j DROP");
    if b.icc {
        t.delete(Table::Filter, "FORWARD", &drop);
        t.insert_once(Table::Filter, "FORWARD", accept, b.span);
    } else {
        t.delete(Table::Filter, "FORWARD", &accept);
        t.append_once(Table::Filter, "FORWARD", drop, b.span);
    }
}

/// `setupInternalNetworkRules`: nothing into the bridge but from its subnet, nothing out of it
/// but to its subnet (both at the top of DOCKER-ISOLATION-STAGE-1), and icc.
fn setup_internal_network_rules(t: &mut Tables, b: &Bridge) {
    let (br, subnet) = (&b.iface, net(b.subnet));
    t.insert_once(
        Table::Filter,
        ISOLATION_1,
        format!("! -d {subnet} -i {br} -j DROP"),
        b.span,
    );
    t.insert_once(
        Table::Filter,
        ISOLATION_1,
        format!("! -s {subnet} -o {br} -j DROP"),
        b.span,
    );
    set_icc(t, b);
}

/// `ProgramChain(nat)`: PREROUTING and OUTPUT jump to the nat DOCKER chain for a local
/// destination, appended once; OUTPUT skips 127.0.0.0/8 with the userland proxy.
fn program_nat_chain(t: &mut Tables, plan: &EnginePlan<'_>, place: Span) {
    nat_jumps(t, plan, place);
}

/// `arrangeUserFilterRule`, after each network: DOCKER-USER with its RETURN, and FORWARD's
/// jump to it moved to the top.
fn arrange_user_filter_rule(t: &mut Tables, place: Span) {
    t.new_chain(Table::Filter, USER);
    add_return(t, USER, place);
    t.ensure_jump("FORWARD", USER, place);
}

/// The port mapper's `Forward` for one published port: the DNAT in nat DOCKER (not for what
/// comes from the bridge, with the userland proxy), the accept in filter DOCKER, and the
/// masquerade of the container reaching itself through the host, each appended.
fn forward(t: &mut Tables, plan: &EnginePlan<'_>, p: &Published<'_>) {
    let br = &plan.bridge(p.bridge).iface;
    let place = p.span;
    let proto = proto(p);
    let (port, address, cport) = (p.publish.host_port, p.address, p.publish.container_port);
    // lnw/iptables/iptables.go:289-294: no `-d` for 0.0.0.0.
    let dst = host_dst(p.publish.host_ip);
    let from = if plan.userland_proxy {
        format!("! -i {br} ")
    } else {
        String::new()
    };
    t.append_once(
        Table::Nat,
        DOCKER,
        format!(
            "{dst}{from}-p {proto} -m {proto} --dport {port} -j DNAT --to-destination {address}:{cport}"
        ),
        place,
    );
    t.append_once(
        Table::Filter,
        DOCKER,
        format!(
            "-d {address}/32 ! -i {br} -o {br} -p {proto} -m {proto} --dport {cport} -j ACCEPT"
        ),
        place,
    );
    t.append_once(
        Table::Nat,
        "POSTROUTING",
        format!(
            "-s {address}/32 -d {address}/32 -p {proto} -m {proto} --dport {cport} -j MASQUERADE"
        ),
        place,
    );
}
