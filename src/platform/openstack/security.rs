//! An instance's security groups as its filter chains, judged at its Neutron port: answers and
//! related ICMP first (groups are stateful), then each group's rules (a `remote_group` is one
//! rule per member's fixed IP; `default` implicitly admits its own members), then Neutron's
//! `sg-fallback` DROP. Ingress rules fill `prerouting`; egress rules fill `output` only when a
//! group's default egress rules are removed.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::check::unknown;
use super::plan::Instance;
use crate::format::file::{
    ActionName, ChainSpec, FirewallSpec, PolicyName, RuleProto, RuleSpec, StateName,
};
use crate::format::platform::openstack::{
    Direction, Ethertype, SecurityGroupRuleSpec, SecurityGroupSpec,
};
use crate::format::{Code, Diagnostic, Located, Span};

/// An instance in a security group, by its fixed IP.
pub(super) struct Member<'a> {
    instance: &'a str,
    fixed: Ipv4Addr,
}

/// The members of each security group.
pub(super) type Members<'a> = HashMap<&'a str, Vec<Member<'a>>>;

/// The members of each group: the instances with port security and a fixed IP, once per time
/// they list the group.
pub(super) fn members<'a>(instances: &[Instance<'a>]) -> Members<'a> {
    let mut members: Members<'a> = HashMap::new();
    for inst in instances.iter().filter(|i| i.port_security) {
        let Some(fixed) = inst.fixed else { continue };
        for &g in &inst.groups {
            members.entry(g).or_default().push(Member {
                instance: &inst.spec.name.value,
                fixed,
            });
        }
    }
    members
}

/// The instance's filter chains from its security groups; `span` is its name's, where the
/// chains' policies and generated rules point.
pub(super) fn firewall(
    inst: &Instance<'_>,
    ifname: &str,
    groups: &HashMap<&str, &SecurityGroupSpec>,
    members: &Members<'_>,
    span: Span,
    out: &mut Vec<Diagnostic>,
) -> FirewallSpec {
    let iname = &inst.spec.name.value;
    let port = Port {
        groups,
        members,
        span,
    };
    let mut chains = Chains::stateful(iname, ifname, span);
    let mut egress_all = false;
    for &g in &inst.groups {
        let spec = groups.get(g).copied();
        if spec.is_none_or(|s| s.default_egress != Some(false)) {
            egress_all = true;
        }
        let whose = format!("security group `{g}` of instance `{iname}`");
        if g == "default" {
            let at = spec.map_or(span, |s| s.name.span);
            for m in members.get(g).map_or(&[][..], Vec::as_slice) {
                chains.ingress.push(RuleSpec {
                    src: Some(Located::at(m.fixed.to_string(), at)),
                    action: port.accept(),
                    comment: Some(format!(
                        "{whose}: ingress from member `{}` ({}) of `default`",
                        m.instance, m.fixed
                    )),
                    ..RuleSpec::default()
                });
            }
        }
        for rule in spec.map_or(&[][..], |s| s.rules.as_slice()) {
            port.add_rule(rule, &whose, &mut chains, out);
        }
    }
    chains.with_fallback(inst, egress_all, span)
}

/// What the rules of one instance's port share.
struct Port<'s, 'a> {
    groups: &'s HashMap<&'a str, &'a SecurityGroupSpec>,
    members: &'s Members<'a>,
    /// The instance's name: where the ACCEPT actions point.
    span: Span,
}

/// The rules collected so far: ingress ones for `prerouting`, egress ones for `output`.
struct Chains {
    ingress: Vec<RuleSpec>,
    egress: Vec<RuleSpec>,
}

/// A destination port or range of a tcp or udp rule, `lo ≤ hi`.
#[derive(Debug, Clone, Copy)]
struct PortRange {
    lo: u16,
    hi: u16,
}

impl fmt::Display for PortRange {
    /// `22`, or `50000-50004`: `dport` text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// What a rule admits from (ingress) or to (egress): the address it matches (`None`: any) and
/// how its comment says it.
struct Peer {
    matcher: Option<Located<String>>,
    words: String,
}

/// A rule that did not check, and was reported.
struct Invalid;

impl Chains {
    /// Answers and related ICMP pass both ways; the instance talking to itself never crosses
    /// its port.
    fn stateful(iname: &str, ifname: &str, span: Span) -> Self {
        let accept = Some(Located::at(ActionName::Accept, span));
        let stateful = RuleSpec {
            state: vec![
                Located::at(StateName::Established, span),
                Located::at(StateName::Related, span),
            ],
            action: accept.clone(),
            comment: Some(format!(
                "the security groups of instance `{iname}` are stateful: answers and related ICMP pass"
            )),
            ..RuleSpec::default()
        };
        let local = RuleSpec {
            not_in: Some(Located::at(ifname.to_owned(), span)),
            action: accept,
            comment: Some(format!(
                "instance `{iname}` talking to itself never crosses its Neutron port"
            )),
            ..RuleSpec::default()
        };
        Self {
            ingress: vec![stateful.clone(), local],
            egress: vec![stateful],
        }
    }

    fn push(&mut self, ingress: bool, rule: RuleSpec) {
        if ingress {
            self.ingress.push(rule);
        } else {
            self.egress.push(rule);
        }
    }

    /// The firewall: Neutron's `sg-fallback` DROP closes the ingress chain, and the egress
    /// chain unless a group keeps its egress-to-anything rules (`egress_all`). Neutron filters
    /// at the port, before anything in the guest (its own DNAT, kube-proxy's included) sees the
    /// packet: `prerouting`, not `input`.
    fn with_fallback(self, inst: &Instance<'_>, egress_all: bool, span: Span) -> FirewallSpec {
        let iname = &inst.spec.name.value;
        let list = inst
            .groups
            .iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let drop = Some(Located::at(PolicyName::Drop, span));
        let mut input = self.ingress;
        input.push(RuleSpec {
            action: Some(Located::at(ActionName::Drop, span)),
            comment: Some(format!("Neutron's sg-fallback of instance `{iname}`: its security groups ({list}) have no ingress rule for this packet")),
            platform_fix: inst.groups.first().map(|g| crate::model::PlatformFix::SecurityGroup { group: g.to_string() }),
            ..RuleSpec::default()
        });
        let output = (!egress_all).then(|| {
            let mut rules = self.egress;
            rules.push(RuleSpec {
                action: Some(Located::at(ActionName::Drop, span)),
                comment: Some(format!("Neutron's sg-fallback of instance `{iname}`: its security groups ({list}) have no egress rule for this packet")),
                ..RuleSpec::default()
            });
            ChainSpec { policy: drop.clone(), rules }
        });
        FirewallSpec {
            prerouting: Some(ChainSpec {
                policy: drop,
                rules: input,
            }),
            input: None,
            forward: None,
            output,
        }
    }
}

impl Port<'_, '_> {
    fn accept(&self) -> Option<Located<ActionName>> {
        Some(Located::at(ActionName::Accept, self.span))
    }

    /// Adds `rule` of a group (`whose` names the group and the instance) to its chain, one
    /// rule per peer; IPv6 rules are left out, and rules that do not check are reported.
    fn add_rule(
        &self,
        rule: &SecurityGroupRuleSpec,
        whose: &str,
        chains: &mut Chains,
        out: &mut Vec<Diagnostic>,
    ) {
        if rule
            .ethertype
            .as_ref()
            .is_some_and(|e| e.value == Ethertype::IPv6)
        {
            return;
        }
        let Ok(ports) = rule_ports(rule, whose, out) else {
            return;
        };
        let ingress = rule.direction.value == Direction::Ingress;
        let base = RuleSpec {
            proto: rule.protocol.clone(),
            dport: ports.map(|p| Located::at(p.to_string(), rule.direction.span)),
            action: self.accept(),
            ..RuleSpec::default()
        };
        let what = describe(rule, ports);
        let (dir, from) = if ingress {
            ("ingress", "from")
        } else {
            ("egress", "to")
        };
        let Ok(peers) = self.peers(rule, whose, out) else {
            return;
        };
        for peer in peers {
            let mut r = base.clone();
            if ingress {
                r.src = peer.matcher;
            } else {
                r.dst = peer.matcher;
            }
            r.comment = Some(format!("{whose}: {dir} {what} {from} {}", peer.words));
            chains.push(ingress, r);
        }
    }

    /// What a rule admits from or to: anything, a remote prefix, or each member of a remote
    /// group.
    fn peers(
        &self,
        rule: &SecurityGroupRuleSpec,
        whose: &str,
        out: &mut Vec<Diagnostic>,
    ) -> Result<Vec<Peer>, Invalid> {
        match (&rule.remote_ip_prefix, &rule.remote_group) {
            (Some(p), Some(_)) => {
                out.push(
                    Diagnostic::error(
                        Code::BadValue,
                        p.span,
                        format!("a rule of {whose} has both `remote_ip_prefix` and `remote_group`"),
                    )
                    .label("one or the other")
                    .hint("Neutron: \"Only remote_ip_prefix or remote_group_id may be provided\""),
                );
                Err(Invalid)
            }
            (Some(p), None) => {
                let prefix = remote_prefix(p, out)?;
                Ok(vec![Peer {
                    matcher: (prefix.prefix_len() > 0)
                        .then(|| Located::at(prefix.to_string(), p.span)),
                    words: prefix.to_string(),
                }])
            }
            (None, Some(remote)) => self.group_peers(remote, whose, out),
            (None, None) => Ok(vec![Peer {
                matcher: None,
                words: "0.0.0.0/0".to_owned(),
            }]),
        }
    }

    /// The members of `remote`, a group of the section or `default`.
    fn group_peers(
        &self,
        remote: &Located<String>,
        whose: &str,
        out: &mut Vec<Diagnostic>,
    ) -> Result<Vec<Peer>, Invalid> {
        if !self.groups.contains_key(remote.value.as_str()) && remote.value != "default" {
            let mut names: Vec<&str> = self.groups.keys().copied().collect();
            if !names.contains(&"default") {
                names.push("default");
            }
            unknown(
                out,
                "a security group",
                remote,
                format!("a rule of {whose} names remote group"),
                &names,
                "declare it under `openstack: security_groups:`",
            );
            return Err(Invalid);
        }
        let members = self
            .members
            .get(remote.value.as_str())
            .map_or(&[][..], Vec::as_slice);
        Ok(members
            .iter()
            .map(|m| Peer {
                matcher: Some(Located::at(m.fixed.to_string(), remote.span)),
                words: format!(
                    "member `{}` ({}) of `{}`",
                    m.instance, m.fixed, remote.value
                ),
            })
            .collect())
    }
}

/// The rule's destination ports: tcp and udp rules only.
fn rule_ports(
    rule: &SecurityGroupRuleSpec,
    whose: &str,
    out: &mut Vec<Diagnostic>,
) -> Result<Option<PortRange>, Invalid> {
    let Some(p) = &rule.port_range else {
        return Ok(None);
    };
    let proto = rule.protocol.as_ref().map(|p| p.value);
    if matches!(proto, Some(RuleProto::Tcp | RuleProto::Udp)) {
        return port_range(p, out).map(Some).ok_or(Invalid);
    }
    out.push(
        Diagnostic::error(Code::BadValue, p.span, format!("`port_range` in {whose} needs `protocol: tcp` or `udp`"))
            .label("ports of which protocol?")
            .hint("add `protocol: tcp` (for ICMP, Neutron's port fields mean type and code, which reachlab does not model)"),
    );
    Err(Invalid)
}

/// `22` or `50000-50004` (Horizon writes `50000 - 50004`).
fn port_range(text: &Located<String>, out: &mut Vec<Diagnostic>) -> Option<PortRange> {
    let compact: String = text.value.chars().filter(|c| !c.is_whitespace()).collect();
    let (lo, hi) = compact.split_once('-').unwrap_or((&compact, &compact));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) if lo >= 1 && lo <= hi => Some(PortRange { lo, hi }),
        _ => {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    text.span,
                    format!("`{}` is not a port range", text.value),
                )
                .label("expected PORT or MIN-MAX")
                .hint("write `22` or `50000-50004`, ports 1 to 65535, MIN ≤ MAX"),
            );
            None
        }
    }
}

/// A remote prefix, `ADDRESS/PREFIX` or a bare address (a /32), host bits cleared.
fn remote_prefix(p: &Located<String>, out: &mut Vec<Diagnostic>) -> Result<Ipv4Net, Invalid> {
    let text = p.value.trim();
    match text
        .parse::<Ipv4Net>()
        .or_else(|_| text.parse::<Ipv4Addr>().map(Ipv4Net::from))
    {
        Ok(n) => Ok(n.trunc()),
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    p.span,
                    format!("`{}` is not a remote prefix", p.value),
                )
                .label("expected ADDRESS/PREFIX")
                .hint("write it like 0.0.0.0/0 or 10.1.5.0/24"),
            );
            Err(Invalid)
        }
    }
}

/// The rule's protocol and ports in words: `tcp 22`, `icmp`, `any protocol`.
fn describe(rule: &SecurityGroupRuleSpec, ports: Option<PortRange>) -> String {
    let proto = match rule.protocol.as_ref().map(|p| p.value) {
        Some(RuleProto::Tcp) => "tcp",
        Some(RuleProto::Udp) => "udp",
        Some(RuleProto::Icmp) => "icmp",
        None => "any protocol",
    };
    match ports {
        Some(p) => format!("{proto} {p}"),
        None => proto.to_owned(),
    }
}
