//! A node's rules from nft text in a topology (`nft:` inline, `nft_ruleset:` a file): every
//! diagnostic carries the file, line and column of the text it is about, the warnings about
//! left-out tables let the file load, and a node takes one rules key. docs/netfilter.md,
//! "nft list ruleset text"; docs/topology-format.md, "nft rules".

use std::path::Path;

use reachlab::topology::{Code, Severity, load_path, load_str};

const HEAD: &str = "\
name: nft-inline
segments: [{ name: lan }, { name: wan }]
nodes:
  - name: gw
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [192.168.1.1/24] }
      - { name: wan0, segment: wan, addresses: [203.0.113.1/24] }
";

#[test]
fn an_inline_block_places_each_problem_in_the_topology() {
    let yaml = format!(
        "{HEAD}    nft: |
      table inet filter {{
        chain input {{
          type filter hook input priority filter; policy drop;
          iifname \"eth0\" tcp flags syn accept
        }}
      }}
"
    );
    let report = load_str("inline.yaml", &yaml).expect_err("unsupported");
    let d = &report.diagnostics[0];
    assert_eq!(d.code, Code::Unsupported, "{d:?}");
    let span = d.span.expect("placed");
    // Line 13 of the topology, the word `flags` after 10 spaces of indentation and
    // `iifname "eth0" tcp `.
    assert_eq!((span.line, span.column), (13, 30), "{d:?}");
    assert!(d.file.is_none(), "the place is in the topology itself");
    assert!(d.hint.is_some());
}

#[test]
fn a_rules_file_places_its_problems_in_that_file() {
    let report = load_path(Path::new("tests/nft/syntax.yaml")).expect_err("syntax");
    let d = &report.diagnostics[0];
    assert_eq!(d.code, Code::NftSyntax, "{d:?}");
    let file = d.file.as_ref().expect("the rules file");
    assert!(file.name().ends_with("syntax.nft"), "{}", file.name());
    let span = d.span.expect("placed");
    assert_eq!((span.line, span.column), (4, 14), "{d:?}");
}

#[test]
fn tables_of_other_families_are_warnings_and_the_file_loads() {
    let yaml = format!(
        "{HEAD}    nft: |
      table ip6 v6 {{
        chain input {{ type filter hook input priority 0; policy drop; }}
      }}
      table inet f {{
        chain forward {{ type filter hook forward priority 0; policy drop; iifname \"eth0\" accept; }}
      }}
"
    );
    let loaded = load_str("warn.yaml", &yaml).expect("loads");
    let warnings: Vec<_> = loaded
        .report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("`ip6 v6`"));
    assert_eq!(warnings[0].span.map(|s| s.line), Some(10));
    let nf = loaded.network.nodes[0].netfilter.as_ref().expect("rules");
    assert_eq!(nf.forward.rules.len(), 1);
    assert!(nf.from_text);
}

#[test]
fn a_node_takes_one_rules_key() {
    let yaml = format!("{HEAD}    iptables: \"*filter\\nCOMMIT\\n\"\n    nft: \"\"\n");
    let report = load_str("both.yaml", &yaml).expect_err("two keys");
    let d = &report.diagnostics[0];
    assert_eq!(d.code, Code::BadValue);
    assert!(d.message.contains("`iptables` and `nft`"), "{d:?}");
}
