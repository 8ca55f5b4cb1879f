//! Lowering `nat:` and `firewall:` into a node's [`Netfilter`], refusing what iptables refuses
//! (with its words in the hint): `-o` in INPUT or PREROUTING, `-i` in OUTPUT or POSTROUTING,
//! a port without `-p tcp|udp`, a NAT rule with no or two actions.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::lower::Lowering;
use crate::format::file::{
    ActionName, ChainSpec, NatChainName, NodeSpec, PolicyName, RejectName, RuleProto, RuleSpec,
    StateName,
};
use crate::format::structure::closest;
use crate::format::units;
use crate::format::{Code, Diagnostic};
use crate::format::{Located, RulesDialect, RulesText, Span};
use crate::model::{
    Chain, ChainName, FilterRule, IfaceId, L4, Match, NatAction, NatFlags, NatHook, NatRule,
    Netfilter, Node, Origin, Port, RejectWith, States, Verdict,
};
use crate::topology::iptables::Word;

/// Where a rule is, for messages: "nat rule 2 of `gw`".
pub(super) struct Place<'a> {
    pub what: String,
    pub node: &'a Node,
}

impl Lowering<'_> {
    /// The node's netfilter: its own rules, with a platform daemon's around them.
    pub(super) fn netfilter(&mut self, node: &Node, spec: &NodeSpec) -> Option<Box<Netfilter>> {
        let own = self.own_netfilter(node, spec);
        match &spec.platform_rules {
            Some(platform) => self.with_platform(node, own, platform),
            None => own,
        }
    }

    /// The rules the file writes for the node.
    fn own_netfilter(&mut self, node: &Node, spec: &NodeSpec) -> Option<Box<Netfilter>> {
        if let Some(rules) = &spec.rules_text {
            return self.iptables_text(node, spec, rules);
        }
        let mut nf = Netfilter::default();
        for (i, rule) in spec.nat.iter().enumerate() {
            let place = Place {
                what: format!("nat rule {} of `{}`", i + 1, node.name),
                node,
            };
            if let Some(rule) = self.nat_rule(&place, rule) {
                nf.nat.push(rule);
            }
        }
        if let Some(firewall) = &spec.firewall {
            for (name, chain) in [
                (ChainName::Prerouting, &firewall.prerouting),
                (ChainName::Input, &firewall.input),
                (ChainName::Forward, &firewall.forward),
                (ChainName::Output, &firewall.output),
            ] {
                if let Some(chain) = chain {
                    *nf.chain_mut(name) = self.chain(node, name, chain);
                }
            }
        }
        // Rules that change nothing alone (accepts under an accepting policy) still matter
        // among a platform daemon's, which may drop below them.
        (!nf.is_empty() || spec.platform_rules.is_some()).then(|| Box::new(nf))
    }

    /// The node's netfilter from `iptables-save` or `nft list ruleset` text (docs/netfilter.md,
    /// "Reading iptables-save text", "nft list ruleset text"); problems are placed in the
    /// text, in its own file or in the topology.
    fn iptables_text(
        &mut self,
        node: &Node,
        spec: &NodeSpec,
        rules: &RulesText,
    ) -> Option<Box<Netfilter>> {
        if !spec.nat.is_empty() || spec.firewall.is_some() {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    rules.value,
                    format!(
                        "node `{}` has both rules text and `nat`/`firewall`",
                        node.name
                    ),
                )
                .hint("write every rule in the rules text, or none there"),
            );
            return None;
        }
        self.read_rules_text(node, rules).map(Box::new)
    }

    /// A netfilter from rules text, every problem reported where it is in the text.
    pub(super) fn read_rules_text(&mut self, node: &Node, rules: &RulesText) -> Option<Netfilter> {
        let net = &self.net;
        let iface = |name: &str| {
            if name == "lo" {
                return Some(IfaceId::LOOPBACK);
            }
            node.interfaces
                .iter()
                .copied()
                .find(|&i| net.interface(i).name == name)
        };
        let file: std::sync::Arc<str> = rules
            .file_name(self.origin(Span::default()).file.as_ref())
            .into();
        let origin = |w: &Word| Origin {
            file: file.clone(),
            span: rules.span(w.line, w.col, w.len),
        };
        let read = match rules.dialect {
            RulesDialect::IptablesSave => {
                crate::topology::iptables::read(&rules.text, &iface, &origin).map(|nf| (nf, vec![]))
            }
            RulesDialect::Nft => {
                crate::topology::nft::read(&rules.text, &iface, &origin).map(|r| (r.nf, r.warnings))
            }
        };
        let place = |p: crate::topology::iptables::Problem, warning: bool| {
            let span = rules.span(p.at.line, p.at.col, p.at.len);
            let message = format!("node `{}`: {}", node.name, p.message);
            let mut d = if warning {
                Diagnostic::warning(p.code, span, message)
            } else {
                Diagnostic::error(p.code, span, message)
            }
            .hint(p.hint);
            d.file = rules.file.clone();
            d
        };
        match read {
            Ok((nf, warnings)) => {
                for w in warnings {
                    self.push(place(w, true));
                }
                (!nf.is_empty() || !nf.filter_chains.is_empty() || !nf.nat_chains.is_empty())
                    .then_some(nf)
            }
            Err(problems) => {
                for p in problems {
                    self.push(place(p, false));
                }
                None
            }
        }
    }

    fn chain(&mut self, node: &Node, name: ChainName, spec: &ChainSpec) -> Chain {
        let mut chain = Chain::default();
        if let Some(policy) = &spec.policy {
            chain.policy = match policy.value {
                PolicyName::Accept => Verdict::Accept,
                PolicyName::Drop => Verdict::Drop,
            };
            chain.policy_origin = self.origin(policy.span);
        }
        for (i, rule) in spec.rules.iter().enumerate() {
            let place = Place {
                what: format!("{} rule {} of `{}`", name.name(), i + 1, node.name),
                node,
            };
            if let Some(rule) = self.filter_rule(&place, name, rule) {
                chain.rules.push(rule);
            }
        }
        chain
    }

    fn iface(&mut self, place: &Place<'_>, name: &Located<String>) -> Option<IfaceId> {
        let found = place
            .node
            .interfaces
            .iter()
            .copied()
            .find(|&i| self.net.interface(i).name == name.value);
        if found.is_none() {
            let names: Vec<&str> = place
                .node
                .interfaces
                .iter()
                .map(|&i| self.net.interface(i).name.as_str())
                .collect();
            let hint = match closest(&name.value, names.iter().copied()) {
                Some(c) => format!(
                    "did you mean `{c}`? interfaces of `{}`: {}",
                    place.node.name,
                    names.join(", ")
                ),
                None => format!("interfaces of `{}`: {}", place.node.name, names.join(", ")),
            };
            self.push(
                Diagnostic::error(
                    Code::UnknownReference,
                    name.span,
                    format!(
                        "{}: `{}` has no interface `{}`",
                        place.what, place.node.name, name.value
                    ),
                )
                .label("unknown interface")
                .hint(hint),
            );
        }
        found
    }

    fn prefix(&mut self, place: &Place<'_>, text: &Located<String>) -> Option<Ipv4Net> {
        let parsed = if text.value.contains('/') {
            units::parse_interface_addr(text).map(|n| n.trunc())
        } else {
            units::parse_addr(text).map(Ipv4Net::from)
        };
        parsed
            .map_err(|e| {
                self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        text.span,
                        format!(
                            "{}: `{}` is not an address or prefix",
                            place.what, text.value
                        ),
                    )
                    .label("expected ADDRESS or PREFIX/LENGTH")
                    .hint(e),
                )
            })
            .ok()
    }

    /// The match part, shared by NAT and filter rules.
    fn matches(&mut self, place: &Place<'_>, r: &RuleSpec) -> Option<Match> {
        // What iptables 1.8 says to a match given twice (checked in a namespace).
        let pairs = [
            (
                &r.in_iface,
                &r.not_in,
                ("in", "not_in"),
                "incoming-interface",
                "multiple -i flags not allowed",
            ),
            (
                &r.out_iface,
                &r.not_out,
                ("out", "not_out"),
                "outgoing-interface",
                "multiple -o flags not allowed",
            ),
            (
                &r.dst,
                &r.not_dst,
                ("dst", "not_dst"),
                "destination",
                "multiple -d flags not allowed",
            ),
            (
                &r.dport,
                &r.not_dport,
                ("dport", "not_dport"),
                "destination-port",
                "Only one `--destination-port' allowed",
            ),
        ];
        for (plain, negated, (key, not_key), what, says) in pairs {
            if let (Some(_), Some(negated)) = (plain, negated) {
                self.not_here(
                    place,
                    not_key,
                    negated.span,
                    &format!("a rule has one {what} match"),
                    &format!("keep `{key}` or `{not_key}` (iptables says: {says})"),
                );
                return None;
            }
        }
        let mut ok = true;
        let mut m = Match::default();
        let mut iface = |this: &mut Self, key: &Option<Located<String>>, slot: &mut Option<_>| {
            if let Some(i) = key {
                *slot = this.iface(place, i);
                ok &= slot.is_some();
            }
        };
        iface(self, &r.in_iface, &mut m.in_iface);
        iface(self, &r.not_in, &mut m.not_in_iface);
        iface(self, &r.out_iface, &mut m.out_iface);
        iface(self, &r.not_out, &mut m.not_out_iface);
        let mut prefix = |this: &mut Self, key: &Option<Located<String>>, slot: &mut Option<_>| {
            if let Some(p) = key {
                *slot = this.prefix(place, p);
                ok &= slot.is_some();
            }
        };
        prefix(self, &r.src, &mut m.src);
        prefix(self, &r.not_src, &mut m.not_src);
        prefix(self, &r.dst, &mut m.dst);
        prefix(self, &r.not_dst, &mut m.not_dst);
        m.proto = r.proto.as_ref().map(|p| match p.value {
            RuleProto::Tcp => L4::Tcp,
            RuleProto::Udp => L4::Udp,
            RuleProto::Icmp => L4::Icmp,
        });
        if let Some(dport) = &r.dport {
            m.dport = self.port_match(place, m.proto, "--dport", dport);
            ok &= m.dport.is_some();
        }
        if let Some(dport) = &r.not_dport {
            m.not_dport = self.port_match(place, m.proto, "! --dport", dport);
            ok &= m.not_dport.is_some();
        }
        for state in &r.state {
            m.states = m.states.with(match state.value {
                StateName::New => States::NEW,
                StateName::Established => States::ESTABLISHED,
                StateName::Related => States::RELATED,
                StateName::Dnat => States::DNAT,
            });
        }
        // iptables reads `--ctstate NEW,DNAT` as "new or translated", nftables' `ct state new
        // ct status dnat` as "new and translated": a rule mixing them means different things
        // to the two, so the file says which it wants with two rules.
        if m.states.contains(States::DNAT)
            && m.states != States::DNAT
            && let Some(dnat) = r.state.iter().find(|s| s.value == StateName::Dnat)
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    dnat.span,
                    format!(
                        "{}: `dnat` cannot be combined with other states in one rule",
                        place.what
                    ),
                )
                .label("iptables reads this as \"or\", nftables as \"and\"")
                .hint("match `state: [dnat]` alone, and write a second rule for the other states"),
            );
            ok = false;
        }
        if r.dst_local == Some(true) {
            m.dst_type = Match::dst_local();
        }
        if let Some(p) = &r.probability {
            if p.value > 0.0 && p.value <= 1.0 {
                m.probability_ppb = Some((p.value * 1e9).round() as u32);
            } else {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        p.span,
                        format!("{}: probability {} is out of range", place.what, p.value),
                    )
                    .label("must be above 0 and at most 1")
                    .hint("write the share of packets the rule takes, e.g. `0.5`"),
                );
                ok = false;
            }
        }
        ok.then_some(m)
    }

    /// A destination port or range of `proto` (`flag` is how iptables spells the match).
    fn port_match(
        &mut self,
        place: &Place<'_>,
        proto: Option<L4>,
        flag: &str,
        dport: &Located<String>,
    ) -> Option<(u16, u16)> {
        let mut ok = true;
        if !matches!(proto, Some(L4::Tcp | L4::Udp)) {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    dport.span,
                    format!("{}: a port needs `proto: tcp` or `proto: udp`", place.what),
                )
                .label("port without protocol")
                .hint(format!(
                    "add `proto: tcp` (iptables says: unknown option \"{}\")",
                    flag.trim_start_matches("! ")
                )),
            );
            ok = false;
        }
        let range = port_range(&dport.value);
        if range.is_none() {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    dport.span,
                    format!(
                        "{}: `{}` is not a port or port range",
                        place.what, dport.value
                    ),
                )
                .label("expected PORT or FIRST-LAST")
                .hint("write `22` or `50000-50004` (ports 1 to 65535, first ≤ last)"),
            );
        }
        range.filter(|_| ok)
    }

    fn not_here(&mut self, place: &Place<'_>, key: &str, span: Span, why: &str, hint: &str) {
        self.push(
            Diagnostic::error(
                Code::BadValue,
                span,
                format!("{}: `{key}` does not apply here", place.what),
            )
            .label(why.to_owned())
            .hint(hint.to_owned()),
        );
    }

    /// The rule's outgoing-interface match, `out` or `not_out`, with its key.
    fn out_key(r: &RuleSpec) -> Option<(&'static str, &Located<String>)> {
        match (&r.out_iface, &r.not_out) {
            (Some(o), _) => Some(("out", o)),
            (None, Some(o)) => Some(("not_out", o)),
            (None, None) => None,
        }
    }

    /// Refuses `out` (or `not_out`) where the outgoing interface is not known yet; true when
    /// it did.
    fn out_in_prerouting(&mut self, place: &Place<'_>, r: &RuleSpec) -> bool {
        let Some((key, o)) = Self::out_key(r) else {
            return false;
        };
        self.not_here(
            place,
            key,
            o.span,
            "the outgoing interface is not known yet",
            &format!("remove `{key}` (iptables says: Can't use -o with PREROUTING)"),
        );
        true
    }

    fn nat_rule(&mut self, place: &Place<'_>, r: &RuleSpec) -> Option<NatRule> {
        if let Some(action) = &r.action {
            self.not_here(
                place,
                "action",
                action.span,
                "a NAT rule translates, it does not filter",
                "move the rule under `firewall:`, or give it `masquerade`, `snat` or `dnat`",
            );
            return None;
        }
        let kinds: Vec<(&str, Span)> = [
            r.masquerade
                .as_ref()
                .filter(|m| m.value)
                .map(|m| ("masquerade", m.span)),
            r.snat.as_ref().map(|s| ("snat", s.span)),
            r.dnat.as_ref().map(|d| ("dnat", d.span)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let anchor = rule_anchor(place, r);
        let kind = match kinds.as_slice() {
            [one] => *one,
            [] => {
                self.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        anchor,
                        format!(
                            "{} says neither `masquerade`, `snat` nor `dnat`",
                            place.what
                        ),
                    )
                    .label("what should it translate?")
                    .hint("add `masquerade: true`, `snat: ADDRESS` or `dnat: ADDRESS[:PORT]`"),
                );
                return None;
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(Code::BadValue, second.1, format!("{} has both `{}` and `{}`", place.what, first.0, second.0))
                        .label("second translation")
                        .hint("write one NAT rule per translation (a 1:1 NAT is a dnat rule plus an snat rule)"),
                );
                return None;
            }
        };
        let m = self.matches(place, r)?;
        let action = match kind.0 {
            "masquerade" => NatAction::Masquerade(NatFlags::default()),
            "snat" => NatAction::Snat(self.address(place, r.snat.as_ref()?)?, NatFlags::default()),
            _ => {
                let text = r.dnat.as_ref()?;
                let (addr, port) = match text.value.rsplit_once(':') {
                    Some((a, p)) => (a, Some(p)),
                    None => (text.value.as_str(), None),
                };
                let addr = self.address(place, &Located::at(addr.to_owned(), text.span))?;
                let port = match port {
                    None => None,
                    Some(p) => match p.parse::<u16>().ok().and_then(Port::new) {
                        Some(port) if matches!(m.proto, Some(L4::Tcp | L4::Udp)) => Some(port),
                        Some(_) => {
                            self.push(
                                Diagnostic::error(Code::BadValue, text.span, format!("{}: a port translation needs `proto: tcp` or `proto: udp`", place.what))
                                    .label("port without protocol")
                                    .hint("add `proto: tcp` (iptables says: Need TCP, UDP, SCTP or DCCP with port specification)"),
                            );
                            return None;
                        }
                        None => {
                            self.push(
                                Diagnostic::error(
                                    Code::BadValue,
                                    text.span,
                                    format!("{}: `{p}` is not a port", place.what),
                                )
                                .label("must be from 1 to 65535"),
                            );
                            return None;
                        }
                    },
                };
                NatAction::Dnat(addr, port)
            }
        };
        let hook = match (r.chain.as_ref().map(|c| c.value), &action) {
            (Some(NatChainName::Prerouting), _) => NatHook::Prerouting,
            (Some(NatChainName::Output), _) => NatHook::Output,
            (Some(NatChainName::Postrouting), _) => NatHook::Postrouting,
            (None, NatAction::Dnat(..)) => NatHook::Prerouting,
            (None, _) => NatHook::Postrouting,
        };
        let chain_span = r.chain.as_ref().map_or(kind.1, |c| c.span);
        match (hook, &action) {
            (NatHook::Postrouting, NatAction::Dnat(..))
            | (
                NatHook::Prerouting | NatHook::Output,
                NatAction::Masquerade(_) | NatAction::Snat(..),
            ) => {
                self.not_here(place, kind.0, chain_span, "wrong chain for this translation", "snat and masquerade go in postrouting; dnat in prerouting or output (iptables: \"only valid in the nat table, POSTROUTING chain\" / \"PREROUTING and OUTPUT chains\")");
                return None;
            }
            _ => {}
        }
        if hook != NatHook::Prerouting
            && let Some(i) = r.in_iface.as_ref().or(r.not_in.as_ref())
        {
            let key = if r.in_iface.is_some() { "in" } else { "not_in" };
            self.not_here(
                place,
                key,
                i.span,
                "packets here have no incoming interface",
                &format!("remove `{key}` (iptables says: Can't use -i with POSTROUTING/OUTPUT)"),
            );
            return None;
        }
        if hook == NatHook::Prerouting && self.out_in_prerouting(place, r) {
            return None;
        }
        Some(NatRule {
            hook,
            matches: m,
            action,
            origin: self.origin(kind.1),
            comment: r.comment.clone(),
        })
    }

    fn address(&mut self, place: &Place<'_>, text: &Located<String>) -> Option<Ipv4Addr> {
        units::parse_addr(text)
            .map_err(|e| {
                self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        text.span,
                        format!("{}: `{}` is not an address", place.what, text.value),
                    )
                    .label("expected an IPv4 address")
                    .hint(e),
                )
            })
            .ok()
    }

    pub(super) fn filter_rule(
        &mut self,
        place: &Place<'_>,
        chain: ChainName,
        r: &RuleSpec,
    ) -> Option<FilterRule> {
        for (key, span) in [
            ("masquerade", r.masquerade.as_ref().map(|m| m.span)),
            ("snat", r.snat.as_ref().map(|s| s.span)),
            ("dnat", r.dnat.as_ref().map(|d| d.span)),
            ("chain", r.chain.as_ref().map(|c| c.span)),
        ] {
            if let Some(span) = span {
                self.not_here(
                    place,
                    key,
                    span,
                    "a filter rule does not translate",
                    "move NAT rules to the node's `nat:` list",
                );
                return None;
            }
        }
        let Some(action) = &r.action else {
            let anchor = rule_anchor(place, r);
            self.push(
                Diagnostic::error(
                    Code::MissingKey,
                    anchor,
                    format!("{} has no `action`", place.what),
                )
                .label("accept, drop or reject?")
                .hint("add `action: accept`, `action: drop` or `action: reject`"),
            );
            return None;
        };
        if chain == ChainName::Prerouting && action.value == ActionName::Reject {
            self.not_here(place, "action", action.span, "REJECT answers from the filter table only", "use `action: drop` here, or move the rule to `input`/`forward` (iptables says: REJECT is only valid in the INPUT, FORWARD and OUTPUT chains)");
            return None;
        }
        if chain == ChainName::Prerouting && self.out_in_prerouting(place, r) {
            return None;
        }
        if chain == ChainName::Input
            && let Some((key, o)) = Self::out_key(r)
        {
            self.not_here(
                place,
                key,
                o.span,
                "packets for the node go out nowhere",
                &format!("remove `{key}` (iptables says: Can't use -o with INPUT)"),
            );
            return None;
        }
        if chain == ChainName::Output
            && let Some(i) = r.in_iface.as_ref().or(r.not_in.as_ref())
        {
            self.not_here(
                place,
                "in",
                i.span,
                "packets the node sends came in nowhere",
                "remove `in` (iptables says: Can't use -i with OUTPUT)",
            );
            return None;
        }
        if let Some(with) = &r.reject_with
            && action.value != ActionName::Reject
        {
            self.not_here(
                place,
                "reject_with",
                with.span,
                "only `action: reject` answers",
                "remove `reject_with`, or use `action: reject`",
            );
            return None;
        }
        let m = self.matches(place, r)?;
        let verdict = match action.value {
            ActionName::Accept => Verdict::Accept,
            ActionName::Drop => Verdict::Drop,
            ActionName::Reject => Verdict::Reject(match r.reject_with.as_ref().map(|w| w.value) {
                None | Some(RejectName::PortUnreachable) => RejectWith::PortUnreachable,
                Some(RejectName::HostUnreachable) => RejectWith::HostUnreachable,
                Some(RejectName::NetUnreachable) => RejectWith::NetUnreachable,
                Some(RejectName::AdminProhibited) => RejectWith::AdminProhibited,
                Some(RejectName::TcpReset) => {
                    if m.proto != Some(L4::Tcp) {
                        let span = r.reject_with.as_ref().map_or(action.span, |w| w.span);
                        self.not_here(place, "reject_with", span, "a TCP reset needs TCP", "add `proto: tcp` (iptables says: TCP RST can only be used with -p tcp)");
                        return None;
                    }
                    RejectWith::TcpReset
                }
            }),
        };
        Some(FilterRule {
            matches: m,
            target: verdict.into(),
            origin: self.origin(action.span),
            comment: r.comment.clone(),
            platform_fix: r.platform_fix.clone(),
        })
    }
}

/// `22`, `50000-50004` or `50000:50004`.
fn port_range(text: &str) -> Option<(u16, u16)> {
    let text = text.trim();
    let (lo, hi) = match text.split_once(['-', ':']) {
        Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
        None => {
            let p: u16 = text.parse().ok()?;
            (p, p)
        }
    };
    (lo >= 1 && lo <= hi).then_some((lo, hi))
}

/// Where to point at a rule that lacks a key: its first key written, else its node's name
/// (a rule written `{}` has no position of its own).
fn rule_anchor(place: &Place<'_>, r: &RuleSpec) -> Span {
    let s = |l: &Option<Located<String>>| l.as_ref().map(|l| l.span);
    [
        s(&r.in_iface),
        s(&r.not_in),
        s(&r.out_iface),
        s(&r.not_out),
        s(&r.src),
        s(&r.not_src),
        s(&r.dst),
        s(&r.not_dst),
        r.proto.as_ref().map(|p| p.span),
        s(&r.dport),
        s(&r.not_dport),
        r.state.first().map(|st| st.span),
        r.probability.as_ref().map(|p| p.span),
    ]
    .into_iter()
    .flatten()
    .find(|span| !span.is_unknown())
    .unwrap_or(place.node.origin.span)
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_ranges() {
        assert_eq!(super::port_range("22"), Some((22, 22)));
        assert_eq!(super::port_range("50000-50004"), Some((50000, 50004)));
        assert_eq!(super::port_range("50000:50004"), Some((50000, 50004)));
        assert_eq!(super::port_range("5-1"), None);
        assert_eq!(super::port_range("0"), None);
        assert_eq!(super::port_range("70000"), None);
    }
}
