//! Property tests of the loader: it never panics, whatever it is given, and a valid topology
//! written out and read back gives the same model (routing tables included).

use proptest::prelude::*;
use reachlab::render::ip_route;
use reachlab::topology::{
    Located,
    file::{
        ExpectSpec, InterfaceSpec, ListenSpec, NodeSpec, OutcomeName, RouteSpec, SegmentSpec,
        TopologyFile,
    },
    load_str, to_file, to_yaml,
};

// ---------------------------------------------------------------- never panic

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn arbitrary_yaml_never_panics(doc in yaml_document()) {
        let _ = load_str("fuzz.yaml", &doc);
    }
}

/// Keys and scalars from the format's own vocabulary, so that generated documents get past the
/// parser and deep into validation.
const KEYS: &[&str] = &[
    "name",
    "segments",
    "nodes",
    "expect",
    "interfaces",
    "routes",
    "listen",
    "dns",
    "segment",
    "addresses",
    "mac",
    "to",
    "via",
    "dev",
    "metric",
    "port",
    "proto",
    "ssh",
    "http",
    "banner",
    "status",
    "body",
    "from",
    "ping",
    "curl",
    "tcp",
    "udp",
    "outcome",
    "ttl",
    "max_rtt",
    "latency",
    "loss",
    "mtu",
    "os",
    "forwarding",
    "docker",
    "description",
    "bogus",
    // nat/firewall and the platform sections
    "nat",
    "firewall",
    "input",
    "forward",
    "masquerade",
    "snat",
    "dnat",
    "action",
    "state",
    "virtualbox",
    "vms",
    "adapters",
    "mode",
    "port_forwards",
    "host_port",
    "guest_port",
    "host",
    "engines",
    "containers",
    "publish",
    "networks",
    "openstack",
    "instances",
    "routers",
    "security_groups",
    "fixed_ip",
    "floating_ip",
    "external_network",
    "cidr",
    "segment",
];
const SCALARS: &[&str] = &[
    "lan",
    "eth0",
    "a",
    "b",
    "10.0.0.1/24",
    "10.0.0.0/24",
    "10.0.0.255/24",
    "10.0.0.1",
    "default",
    "192.168.1.1",
    "1.2.3.4/33",
    "0",
    "22",
    "65536",
    "-1",
    "true",
    "~",
    "reply",
    "timeout",
    "linux",
    "windows",
    "1ms",
    "5%",
    "http://a/",
    "02:00:00:00:00:01",
    "ff:ff:ff:ff:ff:ff",
    "\"quoted\"",
    "''",
    "1e9",
    ".nan",
    "é",
    "nat",
    "host-only",
    "bridged",
    "2223:22",
    "drop",
    "accept",
    "10.0.0.0/8",
    "vboxnet999",
];
/// Text that breaks YAML itself, mixed in rarely so most documents still parse.
const NASTY: &[&str] = &[
    "&anchor x",
    "*anchor",
    "[",
    "{",
    "- x",
    "\t",
    "a: b: c",
    "!!binary x",
];

fn yaml_document() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        12 => prop::sample::select(SCALARS),
        1 => prop::sample::select(NASTY),
    ]
    .prop_map(|s| s.to_owned());
    let tree = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::btree_map(prop::sample::select(KEYS), inner.clone(), 0..6)
                .prop_map(|entries| {
                    let body: Vec<String> = entries
                        .into_iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            proptest::collection::vec(inner, 0..6)
                .prop_map(|items| format!("[{}]", items.join(", "))),
        ]
    });
    // Block style at the top, flow style inside: both parsers' paths get exercised.
    proptest::collection::btree_map(prop::sample::select(KEYS), tree, 0..6).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect::<String>()
    })
}

// ---------------------------------------------------------------- round trip

/// A valid topology by construction: segment `s` is 10.s.0.0/24; interface `i` of node `n`
/// on it has host number 1 + 3n + i; routes leave through the first interface's subnet.
fn valid_topology() -> impl Strategy<Value = TopologyFile> {
    (1usize..4, 1usize..6)
        .prop_flat_map(|(segments, nodes)| {
            let node = (
                proptest::collection::vec(0..segments, 1..4),
                proptest::collection::vec((0u8..4, 0u32..4, any::<bool>()), 0..4),
                any::<bool>(),
                proptest::collection::btree_set(1u16..2000, 0..3),
            );
            (
                Just(segments),
                proptest::collection::vec(node, nodes),
                proptest::collection::vec((0usize..6, 0usize..6), 0..4),
            )
        })
        .prop_map(|(segment_count, node_specs, probes)| {
            let segments = (0..segment_count)
                .map(|s| SegmentSpec {
                    name: format!("seg{s}").into(),
                    ..SegmentSpec::default()
                })
                .collect();
            let mut nodes = Vec::new();
            for (n, (attachments, routes, forwarding, ports)) in node_specs.iter().enumerate() {
                let interfaces: Vec<InterfaceSpec> = attachments
                    .iter()
                    .enumerate()
                    .map(|(i, s)| InterfaceSpec {
                        name: format!("eth{i}").into(),
                        segment: format!("seg{s}").into(),
                        addresses: vec![Located::new(format!("10.{s}.0.{}/24", 1 + 3 * n + i))],
                        ..InterfaceSpec::default()
                    })
                    .collect();
                let first = attachments[0];
                let mut used = std::collections::BTreeSet::new();
                let routes = routes
                    .iter()
                    .filter(|(prefix, metric, _)| used.insert((*prefix, *metric)))
                    .map(|(prefix, metric, with_dev)| RouteSpec {
                        to: if *prefix == 0 {
                            "default".to_owned()
                        } else {
                            format!("172.16.{prefix}.0/24")
                        }
                        .into(),
                        via: Some(format!("10.{first}.0.254").into()),
                        dev: with_dev.then(|| "eth0".to_owned().into()),
                        metric: (*metric != 0).then(|| (*metric * 10).into()),
                        kind: None,
                    })
                    .collect();
                let listen = ports
                    .iter()
                    .map(|p| ListenSpec {
                        port: u32::from(*p).into(),
                        banner: Some(format!("hello {p}").into()),
                        ..ListenSpec::default()
                    })
                    .collect();
                nodes.push(NodeSpec {
                    name: format!("node{n}").into(),
                    forwarding: forwarding.then_some(true),
                    interfaces,
                    routes,
                    dns: vec![Located::new(format!("n{n}.lab"))],
                    listen,
                    ..NodeSpec::default()
                });
            }
            let count = nodes.len();
            let expect = probes
                .into_iter()
                .map(|(a, b)| ExpectSpec {
                    from: format!("node{}", a % count).into(),
                    ping: Some(format!("node{}", b % count).into()),
                    outcome: OutcomeName::Reply.into(),
                    ..ExpectSpec::default()
                })
                .collect();
            TopologyFile {
                name: Some("generated".into()),
                segments,
                nodes,
                expect,
                ..TopologyFile::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn valid_topologies_round_trip(file in valid_topology()) {
        let text = to_yaml(&file).expect("serialisable");
        let first = load_str("generated.yaml", &text)
            .unwrap_or_else(|r| panic!("generated topology must be valid:\n{text}\n{:?}", r.diagnostics))
            .network;
        // The model holds what the file says.
        prop_assert_eq!(first.nodes.len(), file.nodes.len());
        for (node, spec) in first.nodes.iter().zip(&file.nodes) {
            let addresses: Vec<String> = first.interfaces_of(node).flat_map(|i| i.addresses.iter().map(ToString::to_string)).collect();
            let written: Vec<String> = spec.interfaces.iter().flat_map(|i| i.addresses.iter().map(|a| a.value.clone())).collect();
            prop_assert_eq!(addresses, written);
            prop_assert_eq!(node.listeners.len(), spec.listen.len());
        }
        // Written out from the model and read again, nothing changes.
        let again_text = to_yaml(&to_file(&first)).expect("serialisable");
        let second = load_str("again.yaml", &again_text)
            .unwrap_or_else(|r| panic!("rewritten topology must be valid:\n{again_text}\n{:?}", r.diagnostics))
            .network;
        prop_assert_eq!(to_file(&first), to_file(&second));
        for (a, b) in first.nodes.iter().zip(&second.nodes) {
            prop_assert_eq!(ip_route(&first, a), ip_route(&second, b));
        }
        prop_assert_eq!(first.expectations.len(), second.expectations.len());
    }
}

/// The generator above is only useful if its documents reach validation; make sure most do.
#[test]
fn generated_yaml_reaches_validation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use reachlab::topology::Code;
    let mut runner = TestRunner::deterministic();
    let strategy = yaml_document();
    let (mut syntax, mut deeper) = (0, 0);
    for _ in 0..2_000 {
        let doc = strategy.new_tree(&mut runner).expect("tree").current();
        match load_str("fuzz.yaml", &doc) {
            Err(report)
                if report
                    .diagnostics
                    .iter()
                    .all(|d| d.code == Code::YamlSyntax) =>
            {
                syntax += 1
            }
            _ => deeper += 1,
        }
    }
    assert!(
        deeper > syntax,
        "only {deeper} of 2000 documents got past the YAML parser"
    );
}

// ---------------------------------------------------------------- mutated real files

fn topology_texts() -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir("topologies")
        .expect("topologies")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable"))
        .collect()
}

/// One edit of a line: drop it, repeat it, or replace a digit or a word in it.
#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Repeat(usize),
    Digit(usize, char),
    Word(usize, &'static str),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        match *edit {
            Edit::Drop(i) => {
                lines.remove(i % lines.len());
            }
            Edit::Repeat(i) => {
                let i = i % lines.len();
                let line = lines[i].clone();
                lines.insert(i, line);
            }
            Edit::Digit(i, d) => {
                let i = i % lines.len();
                if let Some(pos) = lines[i].find(|c: char| c.is_ascii_digit()) {
                    lines[i].replace_range(pos..pos + 1, &d.to_string());
                }
            }
            Edit::Word(i, w) => {
                let i = i % lines.len();
                if let Some(pos) = lines[i].find(": ") {
                    lines[i].truncate(pos + 2);
                    lines[i].push_str(w);
                }
            }
        }
    }
    lines.join("\n")
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Repeat),
        (any::<usize>(), prop::sample::select(vec!['0', '9', '5']))
            .prop_map(|(i, d)| Edit::Digit(i, d)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "~",
                "[]",
                "{}",
                "0",
                "x",
                "-1",
                "999999",
                "10.0.0.0/33",
                "nat",
                "\"\""
            ])
        )
            .prop_map(|(i, w)| Edit::Word(i, w)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every built-in topology, with a few lines dropped, repeated or altered, loads or reports
    /// diagnostics, and never panics; what loads can be checked without panicking too.
    #[test]
    fn mutated_topologies_never_panic(file in any::<prop::sample::Index>(), edits in proptest::collection::vec(edit(), 1..4)) {
        let texts = topology_texts();
        let text = apply(&texts[file.index(texts.len())], &edits);
        if let Ok(loaded) = load_str("mutated.yaml", &text) {
            let config = reachlab::sim::SimConfig { max_events: 20_000, ..reachlab::sim::SimConfig::default() };
            for e in loaded.network.expectations.iter().take(2) {
                let kind = reachlab::sim::ProbeKind::of(&e.probe, 1, None);
                let _ = reachlab::sim::run_probe(&loaded.network, e.from, e.target.addr, &kind, &config);
            }
        }
    }
}
