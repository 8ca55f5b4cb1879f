//! `--pcap`: the frames of a probe, per link. The port-forwarded ssh of Lab 1 (VirtualBox NAT
//! mode: the neighbour connects to the PC's 10.1.5.87:1234, which VirtualBox forwards to the
//! guest's 10.0.2.15:22) must show the NAT rewrite link by link, with valid checksums. The
//! structure is checked here byte by byte; `tshark` then decodes the file when it is installed
//! (SKIPPED otherwise, a failure with `REACHLAB_REQUIRE_KERNEL=1`).

use std::path::{Path, PathBuf};
use std::process::Command;

use reachlab::model::{Port, Probe};
use reachlab::render::pcap::{Capture, capture};
use reachlab::run::{ProbeRequest, ProbeResult, node_named, run_request, target_address};
use reachlab::sim::SimConfig;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
};

const FILE: &str = "topologies/lab1-virtualbox.yaml";

fn port_forwarded_ssh() -> (reachlab::model::Network, ProbeResult, SimConfig) {
    let net = reachlab::topology::load_path(Path::new(FILE))
        .expect("the Lab 1 file loads")
        .network;
    let config = SimConfig::default();
    let request = ProbeRequest {
        from: node_named(&net, "neighbour").expect("neighbour"),
        written: "10.1.5.87".into(),
        dst: target_address(&net, "10.1.5.87").expect("address"),
        probe: Probe::Ssh {
            port: Port::new(1234).expect("port"),
        },
        count: 1,
        wait: None,
    };
    let result = run_request(&net, request, &config);
    (net, result, config)
}

/// (link name, ip src, ip dst, tcp sport, tcp dport, payload) of every TCP frame.
fn tcp_frames(
    net: &reachlab::model::Network,
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
    assert_eq!(result.run.outcome, reachlab::model::Outcome::Reply);
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

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reachlab-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
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
