//! `--pcap`: the frames of a probe, per link. The port-forwarded ssh of Lab 1 (VirtualBox NAT
//! mode: the neighbour connects to the PC's 10.1.5.87:1234, which VirtualBox forwards to the
//! guest's 10.0.2.15:22) must show the NAT rewrite link by link, with valid checksums. The
//! structure is checked here byte by byte; `tshark` then decodes the file when it is installed
//! (SKIPPED otherwise, a failure with `REACHLAB_REQUIRE_KERNEL=1`).
//!
//! The capture is the engine's tap: frame for frame what the engine transmitted, where working
//! it out again from the steps would have to guess (a gateway that never answers ARP while TCP
//! retransmits; ARP and echo requests lost on a lossy link).

mod support;

use std::path::Path;
use std::process::Command;

use std::time::Duration;

use reachlab::model::{Network, Outcome, Port, Probe};
use reachlab::render::pcap::{Capture, capture, hops};
use reachlab::run::{ProbeRequest, ProbeResult, node_named, run_request, target_address};
use reachlab::sim::{
    ArpOp, DropReason, FramePayload, SimConfig, SimTime, StepKind, Transport, Wire,
};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
};

const FILE: &str = "topologies/lab1-virtualbox.yaml";

/// The configuration `--pcap` runs with: the engine's defaults, the tap on.
fn tapped() -> SimConfig {
    SimConfig {
        capture: true,
        ..SimConfig::default()
    }
}

/// Runs `probe` from `from` to `to` (`count` echo requests for ping).
fn run(
    net: &Network,
    from: &str,
    to: &str,
    probe: Probe,
    count: u16,
    config: &SimConfig,
) -> ProbeResult {
    let request = ProbeRequest {
        from: node_named(net, from).expect("the source node"),
        written: to.into(),
        dst: target_address(net, to).expect("the target address"),
        probe,
        count,
        wait: None,
        ttl: None,
    };
    run_request(net, request, config)
}

fn port_forwarded_ssh() -> (Network, ProbeResult, SimConfig) {
    let net = reachlab::topology::load_path(Path::new(FILE))
        .expect("the Lab 1 file loads")
        .network;
    let config = tapped();
    let ssh = Probe::Ssh {
        port: Port::new(1234).expect("port"),
    };
    let result = run(&net, "neighbour", "10.1.5.87", ssh, 1, &config);
    (net, result, config)
}

/// (link name, ip src, ip dst, tcp sport, tcp dport, payload) of every TCP frame.
fn tcp_frames(
    net: &Network,
    capture: &Capture,
) -> Vec<(String, String, String, u16, u16, Vec<u8>)> {
    let mut out = Vec::new();
    for frame in &capture.frames {
        let eth = EthernetFrame::new_checked(&frame.bytes[..]).expect("an Ethernet frame");
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("an IPv4 packet");
        assert!(ip.verify_checksum(), "IPv4 checksum of {}", frame.comment);
        assert_eq!(ip.next_header(), IpProtocol::Tcp);
        let tcp = TcpPacket::new_checked(ip.payload()).expect("a TCP segment");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        assert!(
            tcp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)),
            "TCP checksum of {}",
            frame.comment
        );
        out.push((
            net.segment(frame.link).name.clone(),
            src.to_string(),
            dst.to_string(),
            tcp.src_port(),
            tcp.dst_port(),
            tcp.payload().to_vec(),
        ));
    }
    out
}

#[test]
fn port_forward_frames_show_the_nat_rewrite_per_link() {
    let (net, result, config) = port_forwarded_ssh();
    assert_eq!(result.run.outcome, Outcome::Reply);
    let capture = capture(&net, &result, &config);
    let frames = tcp_frames(&net, &capture);
    let on = |link: &'static str| frames.iter().filter(move |f| f.0 == link);
    // Before VirtualBox: the PC's own address and the forwarded port.
    assert!(
        on("campus").any(|f| f.1 == "10.1.5.39" && f.2 == "10.1.5.87" && f.4 == 1234),
        "{frames:#?}"
    );
    // Inside the NAT network: the guest's address and port 22, from the NAT gateway.
    assert!(
        on("vm-nat1").any(|f| f.1 == "10.0.2.2" && f.2 == "10.0.2.15" && f.4 == 22),
        "{frames:#?}"
    );
    assert!(!on("campus").any(|f| f.2 == "10.0.2.15"));
    // The guest's banner crosses every link back to the neighbour.
    let banner = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4\r\n";
    for link in ["vm-nat1", "vm-nat1-link", "campus"] {
        assert!(
            on(link).any(|f| f.5 == banner),
            "banner on {link}: {frames:#?}"
        );
    }
    // ARP before the first packet on each link, and frames in time order.
    assert!(
        capture
            .frames
            .iter()
            .any(|f| f.comment.contains("asks who has 10.1.5.87"))
    );
    assert!(capture.frames.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn pcapng_blocks_are_well_formed() {
    let (net, result, config) = port_forwarded_ssh();
    let capture = capture(&net, &result, &config);
    let bytes = capture.to_pcapng(&net);
    let (mut at, mut interfaces, mut packets) = (0usize, 0, 0);
    while at < bytes.len() {
        let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let (kind, len) = (word(at), word(at + 4) as usize);
        assert!(
            len >= 12 && len % 4 == 0 && at + len <= bytes.len(),
            "block at {at}"
        );
        assert_eq!(word(at + len - 4) as usize, len, "trailing length at {at}");
        match kind {
            0x0A0D_0D0A => assert_eq!(word(at + 8), 0x1A2B_3C4D),
            1 => interfaces += 1,
            6 => packets += 1,
            other => panic!("unexpected block type {other:#x}"),
        }
        at += len;
    }
    assert_eq!(interfaces, capture.links.len());
    assert_eq!(packets, capture.frames.len());
    // Classic pcap of one link: 24-byte header, then 16-byte record headers.
    let link = capture.links[0];
    let classic = capture.to_pcap(link);
    assert_eq!(&classic[..4], &0xA1B2_3C4Du32.to_le_bytes());
    let records = capture.frames.iter().filter(|f| f.link == link);
    let expected: usize = 24 + records.map(|f| 16 + f.bytes.len()).sum::<usize>();
    assert_eq!(classic.len(), expected);
}

/// A host whose default gateway is not there.
const DEAD_GATEWAY: &str = "
name: dead-gateway
segments:
  - name: lan
nodes:
  - name: h1
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.1/24] }
    routes:
      - { to: default, via: 10.0.0.254 }
  - name: h2
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.2/24] }
";

/// Two hosts on a link that loses 30 % of the frames.
const LOSSY: &str = "
name: lossy
segments:
  - { name: lan, loss: 30% }
nodes:
  - name: a
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.1/24] }
  - name: b
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.2/24] }
";

fn load(name: &str, text: &str) -> Network {
    reachlab::topology::load_str(name, text)
        .unwrap_or_else(|report| panic!("{name} loads: {report:?}"))
        .network
}

/// The frames of `result` as the engine's tap recorded them: (time, Ethernet source,
/// destination, ARP or not).
fn transmitted(result: &ProbeResult) -> Vec<(SimTime, [u8; 6], [u8; 6], bool)> {
    let wire = result.run.wire.as_deref().expect("a tapped run");
    wire.iter()
        .filter_map(|t| match t.wire {
            Wire::Frame(f) => Some((
                t.at,
                f.src.0,
                f.dst.0,
                matches!(f.payload, FramePayload::Arp(_)),
            )),
            Wire::Unresolved { .. } => None,
        })
        .collect()
}

/// The same, read back from the capture's bytes.
fn captured(capture: &Capture) -> Vec<(SimTime, [u8; 6], [u8; 6], bool)> {
    capture
        .frames
        .iter()
        .map(|f| {
            let eth = EthernetFrame::new_checked(&f.bytes[..]).expect("an Ethernet frame");
            (
                f.at,
                eth.src_addr().0,
                eth.dst_addr().0,
                eth.ethertype() == EthernetProtocol::Arp,
            )
        })
        .collect()
}

/// The ICMP message types of the captured IPv4 frames.
fn icmp_types(capture: &Capture) -> Vec<Icmpv4Message> {
    capture
        .frames
        .iter()
        .filter_map(|f| {
            let eth = EthernetFrame::new_checked(&f.bytes[..]).expect("an Ethernet frame");
            if eth.ethertype() != EthernetProtocol::Ipv4 {
                return None;
            }
            let ip = Ipv4Packet::new_checked(eth.payload()).expect("an IPv4 packet");
            let icmp = Icmpv4Packet::new_checked(ip.payload()).expect("an ICMP message");
            assert!(icmp.verify_checksum(), "ICMP checksum of {}", f.comment);
            Some(icmp.msg_type())
        })
        .collect()
}

#[test]
fn a_gateway_that_never_answers_shows_the_engines_arp_requests_and_nothing_else() {
    let net = load("dead-gateway.yaml", DEAD_GATEWAY);
    let h1 = net.node_by_name("h1").expect("h1");
    let eth0 = net.interfaces_of(h1).next().expect("h1's eth0");
    let (mac, latency) = (
        EthernetAddress(eth0.mac.0),
        net.segment(eth0.segment).latency,
    );
    let quick = SimConfig {
        arp_probes: 2,
        arp_retrans: Duration::from_millis(500),
        ..tapped()
    };
    for config in [tapped(), quick] {
        let tcp = Probe::Tcp {
            port: Port::new(22).expect("port"),
        };
        let result = run(&net, "h1", "192.0.2.10", tcp, 1, &config);
        assert_eq!(result.run.outcome, Outcome::HostUnreachable);
        // TCP sent the SYN again into the same unanswered resolution: no new ARP round.
        let syns = result
            .run
            .steps
            .iter()
            .filter(|s| {
                matches!(s.kind, StepKind::Sent { out: Some(_), .. })
                    && matches!(s.packet.transport, Transport::Tcp { .. })
            })
            .count();
        assert!(syns >= 2, "{:#?}", result.run.steps);
        let capture = capture(&net, &result, &config);
        assert_eq!(captured(&capture), transmitted(&result));
        // `arp_probes` requests, `arp_retrans` apart, as the engine's configuration says.
        let times: Vec<SimTime> = capture.frames.iter().map(|f| f.at).collect();
        let expected: Vec<SimTime> = (0..u32::from(config.arp_probes))
            .map(|k| SimTime::ZERO.after(config.arp_retrans * k + config.node_delay + latency))
            .collect();
        assert_eq!(times, expected, "{capture:#?}");
        for frame in &capture.frames {
            let eth = EthernetFrame::new_checked(&frame.bytes[..]).expect("an Ethernet frame");
            assert_eq!(eth.ethertype(), EthernetProtocol::Arp, "{}", frame.comment);
            assert_eq!(eth.dst_addr(), EthernetAddress::BROADCAST);
            assert_eq!(eth.src_addr(), mac);
            let arp = ArpPacket::new_checked(eth.payload()).expect("an ARP packet");
            let request = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: mac,
                source_protocol_addr: "10.0.0.1".parse().expect("address"),
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: "10.0.0.254".parse().expect("address"),
            };
            assert_eq!(ArpRepr::parse(&arp).expect("an ARP request"), request);
            assert_eq!(frame.comment, "h1:eth0 asks who has 10.0.0.254");
        }
        // The picture: the SYNs never left h1.
        let hops = hops(&net, &result.run, &config);
        assert_eq!(hops.len(), syns, "{hops:#?}");
        assert!(hops.iter().all(|h| h.to.is_none() && h.frame.is_none()));
    }
}

#[test]
fn a_lossy_link_shows_every_frame_the_sender_transmitted_lost_or_not() {
    let net = load("lossy.yaml", LOSSY);
    let config = tapped();
    let result = run(&net, "a", "b", Probe::Ping, 10, &config);
    let lost: Vec<_> = result
        .run
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Dropped {
                    reason: DropReason::Lost { .. },
                    ..
                }
            )
        })
        .collect();
    assert!(!lost.is_empty(), "the seed loses frames on this link");
    let capture = capture(&net, &result, &config);
    // Frame for frame what the engine transmitted: time, addresses, ARP or IPv4.
    assert_eq!(captured(&capture), transmitted(&result));
    // Every echo request a put on the link is there, also those b never got.
    let types = icmp_types(&capture);
    let requests = types
        .iter()
        .filter(|t| **t == Icmpv4Message::EchoRequest)
        .count();
    let delivered = result
        .run
        .steps
        .iter()
        .filter(|s| {
            matches!(s.kind, StepKind::Delivered { .. })
                && matches!(s.packet.transport, Transport::EchoRequest { .. })
        })
        .count();
    assert!(requests > delivered, "{requests} sent, {delivered} arrived");
    // ARP as the engine did it on this link: each request it sent, answered or lost.
    let wire = result.run.wire.as_deref().expect("a tapped run");
    let arp_requests = |op: ArpOp| {
        wire.iter()
            .filter(|t| matches!(t.wire, Wire::Frame(f) if matches!(f.payload, FramePayload::Arp(a) if a.op == op)))
            .count()
    };
    let asks = capture
        .frames
        .iter()
        .filter(|f| f.comment.contains(" asks who has "))
        .count();
    assert_eq!(asks, arp_requests(ArpOp::Request));
    assert!(arp_requests(ArpOp::Reply) >= 1);
}

#[test]
fn the_tap_only_watches_and_an_untapped_run_gets_the_same_capture() {
    let lab1 = reachlab::topology::load_path(Path::new(FILE))
        .expect("the Lab 1 file loads")
        .network;
    let lossy = load("lossy.yaml", LOSSY);
    let ssh = Probe::Ssh {
        port: Port::new(1234).expect("port"),
    };
    let cases = [
        (&lab1, "neighbour", "10.1.5.87", ssh, 1),
        (&lossy, "a", "b", Probe::Ping, 10),
    ];
    for (net, from, to, probe, count) in cases {
        let plain_config = SimConfig::default();
        let plain = run(net, from, to, probe.clone(), count, &plain_config);
        let tapped = run(net, from, to, probe, count, &tapped());
        assert!(plain.run.wire.is_none());
        assert!(tapped.run.wire.as_ref().is_some_and(|w| !w.is_empty()));
        assert_eq!(plain.run.steps, tapped.run.steps);
        assert_eq!(plain.run.observed, tapped.run.observed);
        assert_eq!(plain.run.events, tapped.run.events);
        assert_eq!(
            capture(net, &plain, &plain_config),
            capture(net, &tapped, &self::tapped())
        );
    }
}

fn tshark_available() -> bool {
    Command::new("tshark").arg("--version").output().is_ok()
}

fn require_or_skip(what: &str) -> bool {
    if tshark_available() {
        return true;
    }
    if std::env::var("REACHLAB_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!("{what} needs tshark (REACHLAB_REQUIRE_KERNEL=1): apt-get install -y tshark");
    }
    eprintln!("SKIPPED {what}: tshark is not installed (apt-get install -y tshark)");
    false
}

fn scratch(name: &str) -> support::scratch::Scratch {
    support::scratch::Scratch::path("pcap", name)
}

#[test]
fn tshark_decodes_the_port_forward_with_valid_checksums() {
    if !require_or_skip("tshark_decodes_the_port_forward_with_valid_checksums") {
        return;
    }
    let file = scratch("ssh-port-forward.pcapng");
    let status = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args([
            "ssh",
            FILE,
            "neighbour",
            "10.1.5.87",
            "-p",
            "1234",
            "--pcap",
        ])
        .arg(&file)
        .output()
        .expect("reachlab runs");
    assert!(status.status.success(), "{status:?}");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.interface_name",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.col.Info",
        ])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    assert!(rows.len() > 10, "{text}");
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
        assert!(row[7].is_empty(), "malformed: {row:?}");
        if !row[1].is_empty() {
            assert_eq!(row[5], "1", "IPv4 checksum not good: {row:?}");
        }
        if !row[3].is_empty() {
            assert_eq!(row[6], "1", "TCP checksum not good: {row:?}");
        }
    }
    let seen = |link: &str, dst: &str, port: &str| {
        rows.iter()
            .any(|r| r[0] == link && r[2] == dst && r[4] == port)
    };
    assert!(seen("campus", "10.1.5.87", "1234"), "{text}");
    assert!(seen("vm-nat1-link", "169.254.0.2", "1234"), "{text}");
    assert!(seen("vm-nat1", "10.0.2.15", "22"), "{text}");
    assert!(
        rows.iter()
            .any(|r| r[0] == "vm-nat1" && r[8].contains("SSH-2.0-OpenSSH_8.9p1")),
        "{text}"
    );
    // No expert error (bad checksum, malformed, …) anywhere.
    let errors = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            "_ws.expert.severity == error || _ws.malformed",
        ])
        .output()
        .expect("tshark runs");
    assert!(errors.status.success(), "{errors:?}");
    assert_eq!(String::from_utf8_lossy(&errors.stdout).trim(), "");
    let _ = std::fs::remove_file(&file);
}
