//! Platform sections end to end: a trace across the VirtualBox port forward and across an
//! OpenStack floating IP shows every translation, both ways.

use std::net::Ipv4Addr;

use reachlab::model::{Network, Outcome, Port};
use reachlab::sim::{Ipv4Packet, ProbeKind, SimConfig, Step, StepKind, Transport, run_probe};
use reachlab::topology::load_path;

fn load(path: &str) -> Network {
    load_path(std::path::Path::new(path))
        .unwrap_or_else(|r| panic!("{path}: {:?}", r.diagnostics))
        .network
}

/// Source address and port, destination address and port.
type Endpoints = (Ipv4Addr, u16, Ipv4Addr, u16);

fn endpoint(p: &Ipv4Packet) -> Endpoints {
    match p.transport {
        Transport::Tcp { sport, dport, .. } => (p.src, sport, p.dst, dport),
        _ => (p.src, 0, p.dst, 0),
    }
}

/// (node, before, after) of every translation.
fn translations(net: &Network, steps: &[Step]) -> Vec<(String, Endpoints, Endpoints)> {
    steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::Translated { before, .. } => Some((
                net.node(s.node).name.clone(),
                endpoint(&before),
                endpoint(&s.packet),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn virtualbox_port_forward_translates_both_ways() {
    let net = load("topologies/lab1-virtualbox.yaml");
    let neighbour = net.node_by_name("neighbour").expect("neighbour").id;
    let host = Ipv4Addr::new(10, 1, 5, 87);
    let run = run_probe(
        &net,
        neighbour,
        host,
        &ProbeKind::tcp(Port::new(1234).expect("port")),
        &SimConfig::default(),
    );
    assert_eq!(run.outcome, Outcome::Reply);
    let t = translations(&net, &run.steps);
    let guest = Ipv4Addr::new(10, 0, 2, 15);
    // On the way in: the host's port 1234 ends at the guest's port 22, from the NAT gateway.
    assert!(
        t.iter()
            .any(|(_, before, after)| before.2 == host && before.3 == 1234 && after.3 == 1234),
        "host DNAT: {t:#?}"
    );
    assert!(
        t.iter()
            .any(|(node, _, after)| node == "vm-nat1" && after.2 == guest && after.3 == 22),
        "engine DNAT: {t:#?}"
    );
    assert!(
        t.iter().any(|(node, _, after)| node == "vm-nat1"
            && after.0 == Ipv4Addr::new(10, 0, 2, 2)
            && after.2 == guest),
        "engine SNAT to 10.0.2.2: {t:#?}"
    );
    // On the way back: the neighbour hears from 10.1.5.87:1234.
    assert!(
        t.iter()
            .any(|(node, _, after)| node == "pc" && after.0 == host && after.1 == 1234),
        "host reverse: {t:#?}"
    );
    let delivered = run
        .steps
        .iter()
        .filter(|s| net.node(s.node).name == "vm")
        .find(|s| matches!(s.kind, StepKind::Delivered { .. }))
        .expect("reaches the vm");
    assert_eq!(
        (delivered.packet.src, delivered.packet.dst),
        (Ipv4Addr::new(10, 0, 2, 2), guest)
    );
}

#[test]
fn floating_ip_translates_both_ways() {
    let net = load("topologies/openstack-lab1.yaml");
    let pc = net.node_by_name("PC").expect("PC").id;
    let fip = Ipv4Addr::new(192, 168, 37, 69);
    let fixed = Ipv4Addr::new(192, 168, 0, 98);
    let run = run_probe(
        &net,
        pc,
        fip,
        &ProbeKind::tcp(Port::SSH),
        &SimConfig::default(),
    );
    assert_eq!(run.outcome, Outcome::Reply);
    let t = translations(&net, &run.steps);
    assert!(
        t.iter()
            .any(|(_, before, after)| before.2 == fip && after.2 == fixed),
        "DNAT of the floating IP: {t:#?}"
    );
    assert!(
        t.iter()
            .any(|(_, before, after)| before.0 == fixed && after.0 == fip),
        "the answer leaves from the floating IP: {t:#?}"
    );
    let delivered = run
        .steps
        .iter()
        .filter(|s| net.node(s.node).name == "VM_ubuntu")
        .find(|s| matches!(s.kind, StepKind::Delivered { .. }))
        .expect("reaches the VM");
    assert_eq!(delivered.packet.dst, fixed);
}
