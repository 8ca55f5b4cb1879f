//! iptables-save text in and out (issues 15, 16): a Docker host's rules as dockerd wrote them
//! come back byte for byte from `reachlab show --iptables-save`, and so do they from the
//! `docker:` section of the same host; every node's netfilter of
//! `topologies/` and `tests/kernel/` survives being written and read again: the same model
//! (origins aside) and the same text. That the text is what the kernel's iptables prints is
//! `tests/kernel_iptables.rs`'s to hold.

use std::path::Path;
use std::process::Command;

use reachlab::model::{Netfilter, Network, Node, Origin};
use reachlab::topology::iptables::{Word, read, save};
use reachlab::topology::load_path;

/// What `reachlab show --iptables-save` prints for node `host` of `file`.
fn shown(file: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(["show", file, "--node", "host", "--iptables-save"])
        .output()
        .expect("reachlab runs");
    assert_eq!(out.status.code(), Some(0), "{file}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rules file saved from a real dockerd, without its comment lines.
fn saved(rules: &str) -> String {
    let saved = std::fs::read_to_string(rules).expect("readable");
    saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Each rules file a real dockerd 20.10 wrote (tests/docker_referee.rs checks that it still
/// does), and the two topologies of that host: one loading the file, one with a `docker:`
/// section whose lowering replays dockerd.
const DOCKER_HOSTS: [(&str, &str, &str); 3] = [
    (
        "topologies/docker-host.rules",
        "topologies/docker-host-iptables.yaml",
        "topologies/docker-host-section.yaml",
    ),
    (
        "topologies/docker-host-noicc.rules",
        "topologies/docker-host-noicc-iptables.yaml",
        "topologies/docker-host-noicc-section.yaml",
    ),
    (
        "topologies/docker-host-user.rules",
        "topologies/docker-host-user-iptables.yaml",
        "topologies/docker-host-user-section.yaml",
    ),
];

#[test]
fn a_docker_hosts_rules_come_back_unchanged() {
    for (rules, loaded, _) in DOCKER_HOSTS {
        assert_eq!(shown(loaded), saved(rules), "{loaded}");
    }
}

#[test]
fn a_docker_section_lowers_into_the_rules_dockerd_wrote() {
    for (rules, _, section) in DOCKER_HOSTS {
        assert_eq!(shown(section), saved(rules), "{section}");
    }
}

/// The model with every place forgotten: what is compared after a round trip.
fn placeless(nf: &Netfilter) -> Netfilter {
    let mut nf = nf.clone();
    let none = Origin::default();
    nf.from_text = false;
    for chain in [
        &mut nf.raw_prerouting,
        &mut nf.raw_output,
        &mut nf.prerouting,
        &mut nf.input,
        &mut nf.forward,
        &mut nf.output,
    ] {
        chain.policy_origin = none.clone();
        chain.policy_comment = None;
        // Where a fix goes and where the file's own rules begin are not in the text.
        chain.policy_fix = None;
        chain.own_start = 0;
        for r in &mut chain.rules {
            r.origin = none.clone();
            r.platform_fix = None;
        }
    }
    for c in &mut nf.filter_chains {
        c.origin = none.clone();
        for r in &mut c.rules {
            r.origin = none.clone();
            r.platform_fix = None;
        }
    }
    for r in &mut nf.nat {
        r.origin = none.clone();
    }
    // Each hook walks its own rules in order; how the hooks' rules interleave in the list
    // means nothing (the text writes them chain by chain).
    nf.nat.sort_by_key(|r| r.hook as u8);
    for c in &mut nf.nat_chains {
        c.origin = none.clone();
        for r in &mut c.rules {
            r.origin = none.clone();
        }
    }
    nf
}

fn read_back(net: &Network, node: &Node, text: &str) -> Netfilter {
    let iface = |name: &str| {
        if name == "lo" {
            return Some(reachlab::model::IfaceId::LOOPBACK);
        }
        node.interfaces
            .iter()
            .copied()
            .find(|&i| net.interface(i).name == name)
    };
    read(text, &iface, &|_: &Word| Origin::default()).unwrap_or_else(|problems| {
        panic!("`{}` does not read back: {problems:?}\n{text}", node.name)
    })
}

#[test]
fn every_nodes_netfilter_is_written_and_read_back_the_same() {
    let mut nodes = 0;
    for dir in ["topologies", "tests/kernel"] {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("a directory")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let loaded =
                load_path(Path::new(&file)).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
            let net = &loaded.network;
            for node in &net.nodes {
                let Some(nf) = node.netfilter.as_deref() else {
                    continue;
                };
                let text = save(net, nf);
                let back = read_back(net, node, &text);
                assert_eq!(
                    save(net, &back),
                    text,
                    "{} {}: the text changed",
                    file.display(),
                    node.name
                );
                let (a, b) = (placeless(nf), placeless(&back));
                assert_eq!(
                    strip_comments(a),
                    strip_comments(b),
                    "{} {}: the model changed",
                    file.display(),
                    node.name
                );
                nodes += 1;
            }
        }
    }
    assert!(nodes >= 20, "only {nodes} nodes with rules");
}

/// Comments are compared through the text above; here only the rules.
fn strip_comments(mut nf: Netfilter) -> Netfilter {
    for chain in [
        &mut nf.raw_prerouting,
        &mut nf.raw_output,
        &mut nf.prerouting,
        &mut nf.input,
        &mut nf.forward,
        &mut nf.output,
    ] {
        for r in &mut chain.rules {
            r.comment = None;
        }
    }
    for c in &mut nf.filter_chains {
        for r in &mut c.rules {
            r.comment = None;
        }
    }
    for r in &mut nf.nat {
        r.comment = None;
    }
    for c in &mut nf.nat_chains {
        for r in &mut c.rules {
            r.comment = None;
        }
    }
    nf
}
