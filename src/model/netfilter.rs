//! Netfilter on a node: NAT rules and stateful filter chains, with the semantics of iptables
//! (first match wins; NAT decided on a connection's first packet; replies and related ICMP
//! follow the connection). Each rule keeps its origin and the words to explain it with
//! ("security group `default` of instance `VM_ubuntu`").

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{IfaceId, Origin, Port};

/// The protocols rules match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    Tcp,
    Udp,
    Icmp,
}

impl L4 {
    pub fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Icmp => "icmp",
        }
    }
}

/// Connection-tracking states, as a set (`-m conntrack --ctstate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct States(u8);

impl States {
    pub const NEW: States = States(1);
    pub const ESTABLISHED: States = States(2);
    pub const RELATED: States = States(4);
    /// The connection's destination was translated here (`--ctstate DNAT`).
    pub const DNAT: States = States(8);

    /// The empty set matches any state.
    pub fn any() -> Self {
        States(0)
    }

    pub fn with(self, other: States) -> Self {
        States(self.0 | other.0)
    }

    /// Whether a packet in state `state` matches: the listed states are alternatives, as in
    /// iptables' conntrack match. Validation keeps `dnat` alone in a set (iptables and nftables
    /// read a mix differently); were it mixed, the packet would need it as well.
    pub fn matches(self, state: States) -> bool {
        let dnat = Self::DNAT.0;
        let base = self.0 & !dnat;
        (base == 0 || base & state.0 != 0) && (self.0 & dnat == 0 || state.0 & dnat != 0)
    }

    /// Whether every state of `other` is in this set.
    pub fn contains(self, other: States) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_any(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::NEW, "new"),
            (Self::ESTABLISHED, "established"),
            (Self::RELATED, "related"),
            (Self::DNAT, "dnat"),
        ]
        .into_iter()
        .filter(|(s, _)| self.0 & s.0 != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// What a rule looks at. Every field left `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub in_iface: Option<IfaceId>,
    /// `! -i IFACE`.
    pub not_in_iface: Option<IfaceId>,
    pub out_iface: Option<IfaceId>,
    /// `! -o IFACE`.
    pub not_out_iface: Option<IfaceId>,
    pub src: Option<Ipv4Net>,
    /// `! -s PREFIX`.
    pub not_src: Option<Ipv4Net>,
    pub dst: Option<Ipv4Net>,
    /// `! -d PREFIX`.
    pub not_dst: Option<Ipv4Net>,
    pub proto: Option<L4>,
    /// Destination port range, inclusive (TCP and UDP only).
    pub dport: Option<(u16, u16)>,
    /// `! --dport RANGE`: any destination port outside it (TCP and UDP only).
    pub not_dport: Option<(u16, u16)>,
    pub states: States,
    /// `-m addrtype --dst-type LOCAL`: the destination is one of the node's addresses.
    pub dst_local: bool,
    /// `-m statistic --mode random --probability P`, in parts per billion: the rule matches
    /// that share of the packets that reach it (kube-proxy picks endpoints this way). The
    /// engine draws from its seeded RNG only when everything else matched.
    pub probability_ppb: Option<u32>,
}

/// The facts about a packet a rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFacts {
    pub in_iface: Option<IfaceId>,
    pub out_iface: Option<IfaceId>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: L4,
    pub dport: Option<u16>,
    pub state: States,
    pub dst_local: bool,
}

impl Match {
    /// Whether the destination part of the match can hold for a packet to `dst` (not
    /// checked when `None`) with protocol `l4` and destination port `port`: what an address
    /// and a probe decide about a DNAT rule, before any packet is sent.
    pub fn fits_destination(&self, dst: Option<Ipv4Addr>, l4: L4, port: Option<u16>) -> bool {
        let within = |(lo, hi): (u16, u16)| port.is_some_and(|p| (lo..=hi).contains(&p));
        let outside = |(lo, hi): (u16, u16)| port.is_some_and(|p| !(lo..=hi).contains(&p));
        dst.is_none_or(|d| {
            self.dst.is_none_or(|n| n.contains(&d)) && self.not_dst.is_none_or(|n| !n.contains(&d))
        }) && self.proto.is_none_or(|p| p == l4)
            && self.dport.is_none_or(within)
            && self.not_dport.is_none_or(outside)
    }

    pub fn matches(&self, p: &PacketFacts) -> bool {
        self.in_iface.is_none_or(|i| p.in_iface == Some(i))
            && self.not_in_iface.is_none_or(|i| p.in_iface != Some(i))
            && self.out_iface.is_none_or(|o| p.out_iface == Some(o))
            && self.not_out_iface.is_none_or(|o| p.out_iface != Some(o))
            && self.src.is_none_or(|n| n.contains(&p.src))
            && self.not_src.is_none_or(|n| !n.contains(&p.src))
            && self.dst.is_none_or(|n| n.contains(&p.dst))
            && self.not_dst.is_none_or(|n| !n.contains(&p.dst))
            && self.proto.is_none_or(|l| l == p.proto)
            && self
                .dport
                .is_none_or(|(lo, hi)| p.dport.is_some_and(|d| (lo..=hi).contains(&d)))
            && self
                .not_dport
                .is_none_or(|(lo, hi)| p.dport.is_some_and(|d| !(lo..=hi).contains(&d)))
            && self.states.matches(p.state)
            && (!self.dst_local || p.dst_local)
    }
}

/// What a NAT rule does to a connection's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatAction {
    /// SNAT to the address of the outgoing interface.
    Masquerade,
    Snat(Ipv4Addr),
    /// DNAT to an address, and a port when given.
    Dnat(Ipv4Addr, Option<Port>),
}

/// Where a NAT rule sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatHook {
    /// Packets arriving from the wire (DNAT).
    Prerouting,
    /// Packets the node itself sends (DNAT).
    Output,
    /// Packets leaving (SNAT, MASQUERADE).
    Postrouting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    pub hook: NatHook,
    pub matches: Match,
    pub action: NatAction,
    pub origin: Origin,
    /// The user's words for it (a comment, or what a platform section lowered it from).
    pub comment: Option<String>,
}

/// How a REJECT answers (`--reject-with`; iptables' default is icmp-port-unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectWith {
    PortUnreachable,
    HostUnreachable,
    NetUnreachable,
    AdminProhibited,
    TcpReset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Reject(RejectWith),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub matches: Match,
    pub verdict: Verdict,
    pub origin: Origin,
    pub comment: Option<String>,
    /// How a fix for a packet this rule drops is best said, when a platform section made it.
    pub platform_fix: Option<PlatformFix>,
}

/// Where a platform keeps what decides a filter verdict, so that a fix is written there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlatformFix {
    /// An ingress rule in this OpenStack security group.
    SecurityGroup { group: String },
}

/// Which filter chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainName {
    /// Every packet arriving on an interface, as it arrived: after conntrack, before any DNAT
    /// (iptables' mangle PREROUTING). Where a filter in front of the machine belongs, such as
    /// an OpenStack security group at the instance's port.
    Prerouting,
    Input,
    Forward,
    Output,
}

impl ChainName {
    pub fn name(self) -> &'static str {
        match self {
            ChainName::Prerouting => "prerouting",
            ChainName::Input => "input",
            ChainName::Forward => "forward",
            ChainName::Output => "output",
        }
    }
}

/// A filter chain: rules in order, then the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub policy: Verdict,
    pub rules: Vec<FilterRule>,
    /// Where the policy was set (for "dropped by the policy of …").
    pub policy_origin: Origin,
    pub policy_comment: Option<String>,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            policy: Verdict::Accept,
            rules: Vec::new(),
            policy_origin: Origin::default(),
            policy_comment: None,
        }
    }
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decider {
    Rule(usize),
    Policy,
}

impl Chain {
    /// The verdict for a packet, and what decided it.
    pub fn judge(&self, facts: &PacketFacts) -> (Verdict, Decider) {
        self.rules
            .iter()
            .position(|r| r.matches.matches(facts))
            .map_or((self.policy, Decider::Policy), |i| {
                (self.rules[i].verdict, Decider::Rule(i))
            })
    }

    /// True when nothing can be refused here.
    pub fn is_open(&self) -> bool {
        self.policy == Verdict::Accept && self.rules.iter().all(|r| r.verdict == Verdict::Accept)
    }
}

/// All of a node's netfilter configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Netfilter {
    pub nat: Vec<NatRule>,
    pub prerouting: Chain,
    pub input: Chain,
    pub forward: Chain,
    pub output: Chain,
}

impl Netfilter {
    pub fn chain(&self, name: ChainName) -> &Chain {
        match name {
            ChainName::Prerouting => &self.prerouting,
            ChainName::Input => &self.input,
            ChainName::Forward => &self.forward,
            ChainName::Output => &self.output,
        }
    }

    /// The first NAT rule of `hook` matching `facts`; `draw` answers the random matches
    /// (`-m statistic`), called only for rules whose other matches hold.
    pub fn nat_rule(
        &self,
        hook: NatHook,
        facts: &PacketFacts,
        mut draw: impl FnMut(u32) -> bool,
    ) -> Option<(usize, &NatRule)> {
        self.nat.iter().enumerate().find(|(_, r)| {
            r.hook == hook
                && r.matches.matches(facts)
                && r.matches.probability_ppb.is_none_or(&mut draw)
        })
    }

    /// Whether the node needs connection tracking at all.
    pub fn is_empty(&self) -> bool {
        self.nat.is_empty()
            && self.prerouting.is_open()
            && self.input.is_open()
            && self.forward.is_open()
            && self.output.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(dport: u16, state: States) -> PacketFacts {
        PacketFacts {
            in_iface: Some(IfaceId(0)),
            out_iface: None,
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            proto: L4::Tcp,
            dport: Some(dport),
            state,
            dst_local: true,
        }
    }

    #[test]
    fn first_match_wins_then_policy() {
        let rule = |dport, verdict| FilterRule {
            matches: Match {
                proto: Some(L4::Tcp),
                dport: Some(dport),
                ..Match::default()
            },
            verdict,
            origin: Origin::default(),
            comment: None,
            platform_fix: None,
        };
        let chain = Chain {
            policy: Verdict::Drop,
            rules: vec![
                rule((22, 22), Verdict::Accept),
                rule((20, 30), Verdict::Reject(RejectWith::PortUnreachable)),
            ],
            ..Chain::default()
        };
        assert_eq!(
            chain.judge(&facts(22, States::NEW)),
            (Verdict::Accept, Decider::Rule(0))
        );
        assert_eq!(
            chain.judge(&facts(25, States::NEW)),
            (
                Verdict::Reject(RejectWith::PortUnreachable),
                Decider::Rule(1)
            )
        );
        assert_eq!(
            chain.judge(&facts(80, States::NEW)),
            (Verdict::Drop, Decider::Policy)
        );
    }

    #[test]
    fn a_negated_outgoing_interface_matches_every_other_one() {
        let m = Match {
            not_out_iface: Some(IfaceId(1)),
            ..Match::default()
        };
        let to = |out| PacketFacts {
            out_iface: Some(IfaceId(out)),
            ..facts(80, States::NEW)
        };
        assert!(m.matches(&to(2)));
        assert!(!m.matches(&to(1)));
    }

    #[test]
    fn a_negated_destination_matches_outside_the_prefix() {
        let m = Match {
            not_dst: Some("10.0.0.0/30".parse().expect("prefix")),
            ..Match::default()
        };
        assert!(!m.matches(&facts(80, States::NEW)), "10.0.0.2 is inside");
        let outside = PacketFacts {
            dst: Ipv4Addr::new(10, 0, 0, 9),
            ..facts(80, States::NEW)
        };
        assert!(m.matches(&outside));
    }

    #[test]
    fn a_negated_port_range_matches_ports_outside_it() {
        let m = Match {
            proto: Some(L4::Tcp),
            not_dport: Some((20, 22)),
            ..Match::default()
        };
        assert!(m.matches(&facts(80, States::NEW)));
        assert!(!m.matches(&facts(20, States::NEW)));
        assert!(!m.matches(&facts(22, States::NEW)));
        assert!(m.fits_destination(None, L4::Tcp, Some(23)));
        assert!(!m.fits_destination(None, L4::Tcp, Some(21)));
        assert!(
            !m.fits_destination(None, L4::Udp, Some(23)),
            "the protocol still counts"
        );
    }

    #[test]
    fn dnat_is_a_condition_on_top_of_the_other_states() {
        let rule = States::DNAT;
        assert!(rule.matches(States::NEW.with(States::DNAT)));
        assert!(rule.matches(States::ESTABLISHED.with(States::DNAT)));
        assert!(!rule.matches(States::NEW));
        let either = States::NEW.with(States::ESTABLISHED).with(States::DNAT);
        assert!(either.matches(States::ESTABLISHED.with(States::DNAT)));
        assert!(!either.matches(States::RELATED.with(States::DNAT)));
        assert_eq!(States::NEW.with(States::DNAT).names(), ["new", "dnat"]);
        assert!(either.contains(States::DNAT) && !States::NEW.contains(States::DNAT));
    }

    #[test]
    fn states_and_negations() {
        let m = Match {
            states: States::ESTABLISHED.with(States::RELATED),
            not_in_iface: Some(IfaceId(1)),
            ..Match::default()
        };
        assert!(m.matches(&facts(1, States::ESTABLISHED)));
        assert!(!m.matches(&facts(1, States::NEW)));
        let mut f = facts(1, States::RELATED);
        f.in_iface = Some(IfaceId(1));
        assert!(!m.matches(&f));
    }
}
