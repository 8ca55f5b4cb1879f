//! A node's netfilter model as one nftables ruleset, loaded atomically with `nft -f`. The
//! chains sit at the hooks and priorities of their iptables twins, so the kernel walks them in
//! the order the simulator does:
//!
//! | model chain | nftables chain | hook, priority |
//! |---|---|---|
//! | `prerouting` filter (security groups, Docker's raw drops) | `prerouting` | prerouting, -150 (mangle) |
//! | NAT `prerouting` | `nat_prerouting` | prerouting, -100 (dstnat) |
//! | `input`, `forward`, `output` filters | `input`, `forward`, `output` | 0 (filter) |
//! | NAT `output` | `nat_output` | output, -100 |
//! | NAT `postrouting` | `nat_postrouting` | postrouting, 100 (srcnat) |
//!
//! Rules keep the model's order; within a rule the matches come first and the random draw
//! (`numgen random`) last, so a packet draws only when everything else matched, as in the
//! engine.
//!
//! Nothing from the topology is spliced in as text: interface names go through [`quoted`]
//! (a double-quoted nft string that nft reads back as exactly that name, refused otherwise),
//! comments through [`comment`] (quotes, backslashes and control characters replaced).

use std::fmt::Write as _;

use crate::model::{Chain, L4, Match, NatAction, NatHook, Netfilter, Network, RejectWith, Verdict};

use super::EmulateError;

/// The table every ruleset lives in.
pub const TABLE: &str = "reachlab";

/// The ruleset of one node, as `nft -f` input.
pub fn ruleset(net: &Network, nf: &Netfilter) -> Result<String, EmulateError> {
    let mut out = format!("table ip {TABLE} {{\n");
    filter_chain(
        net,
        &mut out,
        "prerouting",
        "prerouting",
        -150,
        &nf.prerouting,
    )?;
    nat_chain(
        net,
        &mut out,
        "nat_prerouting",
        "prerouting",
        -100,
        nf,
        NatHook::Prerouting,
    )?;
    filter_chain(net, &mut out, "input", "input", 0, &nf.input)?;
    filter_chain(net, &mut out, "forward", "forward", 0, &nf.forward)?;
    filter_chain(net, &mut out, "output", "output", 0, &nf.output)?;
    nat_chain(
        net,
        &mut out,
        "nat_output",
        "output",
        -100,
        nf,
        NatHook::Output,
    )?;
    nat_chain(
        net,
        &mut out,
        "nat_postrouting",
        "postrouting",
        100,
        nf,
        NatHook::Postrouting,
    )?;
    out.push_str("}\n");
    Ok(out)
}

fn filter_chain(
    net: &Network,
    out: &mut String,
    name: &str,
    hook: &str,
    priority: i32,
    chain: &Chain,
) -> Result<(), EmulateError> {
    let policy = verdict(chain.policy).ok_or_else(|| {
        EmulateError::Unsupported(format!(
            "chain {name}: nftables has no REJECT policy (end the chain with a reject rule)"
        ))
    })?;
    let _ = writeln!(
        out,
        "  chain {name} {{\n    type filter hook {hook} priority {priority}; policy {policy};"
    );
    for rule in &chain.rules {
        let Some(v) = rule.verdict() else {
            return Err(EmulateError::Unsupported(format!(
                "chain {name}: jumps and marks are not built yet"
            )));
        };
        let action = match v {
            Verdict::Reject(with) => reject(with).to_owned(),
            other => verdict(other).unwrap_or("drop").to_owned(),
        };
        let _ = writeln!(
            out,
            "    {}{action}{}",
            matches(net, &rule.matches, needs_l4(v))?,
            comment(rule.comment.as_deref())
        );
    }
    out.push_str("  }\n");
    Ok(())
}

fn nat_chain(
    net: &Network,
    out: &mut String,
    name: &str,
    hook: &str,
    priority: i32,
    nf: &Netfilter,
    which: NatHook,
) -> Result<(), EmulateError> {
    let _ = writeln!(
        out,
        "  chain {name} {{\n    type nat hook {hook} priority {priority}; policy accept;"
    );
    for rule in nf.nat.iter().filter(|r| r.hook == which) {
        let (action, port) = match rule.action {
            NatAction::Masquerade(_) => ("masquerade".to_owned(), false),
            NatAction::Snat(addr, _) => (format!("snat to {addr}"), false),
            NatAction::Dnat(addr, None) => (format!("dnat to {addr}"), false),
            NatAction::Dnat(addr, Some(port)) => (format!("dnat to {addr}:{port}"), true),
            _ => {
                return Err(EmulateError::Unsupported(format!(
                    "chain {name}: jumps and marks are not built yet"
                )));
            }
        };
        if port && rule.matches.proto.is_none_or(|p| p == L4::Icmp) {
            return Err(EmulateError::Unsupported(format!(
                "chain {name}: a DNAT to a port needs a tcp or udp match"
            )));
        }
        let _ = writeln!(
            out,
            "    {}{action}{}",
            matches(net, &rule.matches, port)?,
            comment(rule.comment.as_deref())
        );
    }
    out.push_str("  }\n");
    Ok(())
}

fn verdict(v: Verdict) -> Option<&'static str> {
    match v {
        Verdict::Accept => Some("accept"),
        Verdict::Drop => Some("drop"),
        Verdict::Reject(_) => None,
    }
}

fn reject(with: RejectWith) -> &'static str {
    match with {
        RejectWith::PortUnreachable => "reject with icmp type port-unreachable",
        RejectWith::HostUnreachable => "reject with icmp type host-unreachable",
        RejectWith::NetUnreachable => "reject with icmp type net-unreachable",
        RejectWith::AdminProhibited => "reject with icmp type admin-prohibited",
        RejectWith::TcpReset => "reject with tcp reset",
    }
}

/// A `reject with tcp reset` needs the rule to have matched TCP.
fn needs_l4(v: Verdict) -> bool {
    v == Verdict::Reject(RejectWith::TcpReset)
}

/// The rule's matches, each followed by a space. `l4_context`: the statement after them needs
/// a transport protocol named (a port in DNAT, a TCP reset).
fn matches(net: &Network, m: &Match, l4_context: bool) -> Result<String, EmulateError> {
    let mut out = String::new();
    let iface = |id| quoted(&net.interface(id).name);
    if let Some(i) = m.in_iface {
        let _ = write!(out, "iifname {} ", iface(i)?);
    }
    if let Some(i) = m.not_in_iface {
        let _ = write!(out, "iifname != {} ", iface(i)?);
    }
    if let Some(o) = m.out_iface {
        let _ = write!(out, "oifname {} ", iface(o)?);
    }
    if let Some(o) = m.not_out_iface {
        let _ = write!(out, "oifname != {} ", iface(o)?);
    }
    if let Some(src) = m.src {
        let _ = write!(out, "ip saddr {src} ");
    }
    if let Some(src) = m.not_src {
        let _ = write!(out, "ip saddr != {src} ");
    }
    if let Some(dst) = m.dst {
        let _ = write!(out, "ip daddr {dst} ");
    }
    if let Some(dst) = m.not_dst {
        let _ = write!(out, "ip daddr != {dst} ");
    }
    let ports = [(m.dport, ""), (m.not_dport, "!= ")];
    let any_port = ports.iter().any(|(p, _)| p.is_some());
    match m.proto {
        Some(proto @ (L4::Tcp | L4::Udp)) if any_port => {
            for ((lo, hi), not) in ports.iter().filter_map(|&(p, not)| Some((p?, not))) {
                let _ = write!(out, "{} dport {not}", proto.name());
                if lo == hi {
                    let _ = write!(out, "{lo} ");
                } else {
                    let _ = write!(out, "{lo}-{hi} ");
                }
            }
        }
        Some(_) if any_port => {
            return Err(EmulateError::Unsupported(
                "a destination port needs `proto: tcp` or `proto: udp`".into(),
            ));
        }
        Some(proto) => {
            let _ = write!(out, "meta l4proto {} ", proto.name());
        }
        None if l4_context => {
            return Err(EmulateError::Unsupported(
                "a rule that rejects with a TCP reset or DNATs to a port needs `proto`".into(),
            ));
        }
        None if any_port => {
            return Err(EmulateError::Unsupported(
                "a destination port needs `proto: tcp` or `proto: udp`".into(),
            ));
        }
        None => {}
    }
    let states = m.states.names();
    let plain: Vec<&str> = states.iter().copied().filter(|s| *s != "dnat").collect();
    if !plain.is_empty() {
        let _ = write!(out, "ct state {} ", plain.join(","));
    }
    if states.contains(&"dnat") {
        out.push_str("ct status dnat ");
    }
    if m.is_dst_local() {
        out.push_str("fib daddr type local ");
    }
    if let Some(ppb) = m.probability_ppb {
        let _ = write!(out, "numgen random mod 1000000000 < {ppb} ");
    }
    Ok(out)
}

/// An interface name as an nft string: `"NAME"`. nft reads a double-quoted string up to the
/// next `"`, takes a trailing `*` as a wildcard and `\` as an escape, so only names of letters,
/// digits, `_`, `-` and `.` (what the topology's naming rule allows) of 1 to 15 bytes are
/// quoted; anything else is refused rather than loaded as a different rule.
pub fn quoted(name: &str) -> Result<String, EmulateError> {
    let plain = (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(EmulateError::Unsupported(format!(
            "interface name `{}` cannot be written as an nftables string",
            name.escape_debug()
        )))
    }
}

/// The rule's comment as nftables takes it (at most 128 bytes; no double quote, backslash or
/// control character, each replaced by `'`).
fn comment(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.trim().is_empty() => {
            let mut clean: String = text
                .chars()
                .map(|c| {
                    if c == '"' || c == '\\' || c.is_control() {
                        '\''
                    } else {
                        c
                    }
                })
                .collect();
            while clean.len() > 120 {
                clean.pop();
            }
            format!(" comment \"{clean}\"")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::load_str;

    #[test]
    fn interface_names_are_quoted_or_refused() {
        assert_eq!(quoted("eth0").expect("plain"), "\"eth0\"");
        assert_eq!(quoted("a.b-c_9").expect("plain"), "\"a.b-c_9\"");
        for bad in [
            "e\"drop;oif\"q0",
            "eth0\\",
            "eth*",
            "a b",
            "a\nb",
            "a\0",
            "",
            "sixteen-bytes-xx",
        ] {
            assert!(quoted(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn comments_hold_no_quote_backslash_or_control_character() {
        let text = comment(Some("a\"b\\c\nd"));
        assert_eq!(text, " comment \"a'b'c'd\"");
    }

    #[test]
    fn a_port_forward_and_a_stateful_filter_become_one_table() {
        let text = "
segments:
  - { name: wan }
  - { name: lan }
nodes:
  - name: gw
    forwarding: true
    interfaces:
      - { name: eth0, segment: wan, addresses: [203.0.113.1/24] }
      - { name: eth1, segment: lan, addresses: [10.0.0.1/24] }
    nat:
      - { chain: prerouting, in: eth0, proto: tcp, dport: 2222, dnat: 10.0.0.5:22 }
      - { chain: postrouting, out: eth0, masquerade: true }
    firewall:
      forward:
        policy: drop
        rules:
          - { state: [established, related], action: accept }
          - { in: eth0, proto: tcp, dport: 22, state: [new], action: accept, comment: 'ssh \"in\"' }
  - name: pc
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.5/24] }
";
        let net = load_str("t.yaml", text).expect("valid").network;
        let gw = net.node_by_name("gw").expect("gw");
        let text = ruleset(&net, gw.netfilter.as_deref().expect("rules")).expect("ruleset");
        for line in [
            "    type filter hook forward priority 0; policy drop;",
            "    ct state related,established accept",
            "    iifname \"eth0\" tcp dport 22 ct state new accept comment \"ssh 'in'\"",
            "    iifname \"eth0\" tcp dport 2222 dnat to 10.0.0.5:22",
            "    oifname \"eth0\" masquerade",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
    }
}
