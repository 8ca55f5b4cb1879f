//! What a netfilter rule looks at ([`Match`]) and the facts about a packet it is matched
//! against ([`PacketFacts`]): interfaces, addresses, protocol and ports, connection state and
//! status, address types, marks. Each kind of match holds the kernel's own semantics, as the
//! iptables extension of the same name (docs/netfilter.md, "Matches").

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::IfaceId;

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

/// Connection-tracking states, as a set (`-m conntrack --ctstate`). `INVALID` is a packet
/// conntrack could not place (an ICMP error about no known connection, a SYN/ACK, RST or echo
/// reply that starts nothing); `DNAT` and `SNAT` are the kernel's virtual states of a
/// connection whose destination or source is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct States(u8);

impl States {
    pub const NEW: States = States(1);
    pub const ESTABLISHED: States = States(2);
    pub const RELATED: States = States(4);
    /// The connection's destination was translated here (`--ctstate DNAT`).
    pub const DNAT: States = States(8);
    pub const INVALID: States = States(16);
    /// The connection's source was translated here (`--ctstate SNAT`).
    pub const SNAT: States = States(32);

    /// Every state, with its name, in the order iptables prints them.
    pub const ALL: [(States, &'static str); 6] = [
        (Self::INVALID, "invalid"),
        (Self::NEW, "new"),
        (Self::RELATED, "related"),
        (Self::ESTABLISHED, "established"),
        (Self::SNAT, "snat"),
        (Self::DNAT, "dnat"),
    ];

    /// The empty set matches any state.
    pub fn any() -> Self {
        States(0)
    }

    pub fn with(self, other: States) -> Self {
        States(self.0 | other.0)
    }

    /// Whether a packet in state `state` matches: the listed states are alternatives, as in
    /// xt_conntrack (any state of the packet in the set).
    pub fn matches(self, state: States) -> bool {
        self.0 == 0 || self.0 & state.0 != 0
    }

    /// Whether every state of `other` is in this set.
    pub fn contains(self, other: States) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_any(self) -> bool {
        self.0 == 0
    }

    /// The names of the states in the set, in the order iptables prints them.
    pub fn names(self) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|(s, _)| self.0 & s.0 != 0)
            .map(|(_, n)| n)
            .collect()
    }

    /// The state of this name (`new`, `established`, …; any case).
    pub fn named(name: &str) -> Option<States> {
        Self::ALL
            .into_iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(s, _)| s)
    }
}

/// The operations of a set of named flags with an `ALL` table of (flag, name): union,
/// overlap, the names of the flags in a set, the flag of a name (any case).
macro_rules! flag_set_ops {
    ($set:ident) => {
        impl $set {
            pub fn with(self, other: $set) -> Self {
                $set(self.0 | other.0)
            }

            pub fn intersects(self, other: $set) -> bool {
                self.0 & other.0 != 0
            }

            /// The names of the flags in the set, in the order of `ALL`.
            pub fn names(self) -> Vec<&'static str> {
                Self::ALL
                    .into_iter()
                    .filter(|(s, _)| self.intersects(*s))
                    .map(|(_, n)| n)
                    .collect()
            }

            /// The flag of this name (any case).
            pub fn named(name: &str) -> Option<$set> {
                Self::ALL
                    .into_iter()
                    .find(|(_, n)| n.eq_ignore_ascii_case(name))
                    .map(|(s, _)| s)
            }
        }
    };
}

/// A connection's status bits (`-m conntrack --ctstatus`), as far as the model knows them:
/// `CONFIRMED` once the connection's first packet has passed, `SEEN_REPLY` once an answer did.
/// `EXPECTED` (helpers' connections) never holds here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtStatus(u8);

impl CtStatus {
    pub const EXPECTED: CtStatus = CtStatus(1);
    pub const SEEN_REPLY: CtStatus = CtStatus(2);
    pub const CONFIRMED: CtStatus = CtStatus(8);

    /// Every status the model knows, in the order iptables prints them.
    pub const ALL: [(CtStatus, &'static str); 3] = [
        (Self::EXPECTED, "EXPECTED"),
        (Self::SEEN_REPLY, "SEEN_REPLY"),
        (Self::CONFIRMED, "CONFIRMED"),
    ];
}

flag_set_ops!(CtStatus);

/// Address types (`-m addrtype`), as a set: what the node's local routing table says an
/// address is (inet_addr_type; docs/netfilter.md, "Address types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddrTypes(u16);

impl AddrTypes {
    pub const UNSPEC: AddrTypes = AddrTypes(1 << 0);
    pub const UNICAST: AddrTypes = AddrTypes(1 << 1);
    pub const LOCAL: AddrTypes = AddrTypes(1 << 2);
    pub const BROADCAST: AddrTypes = AddrTypes(1 << 3);
    pub const ANYCAST: AddrTypes = AddrTypes(1 << 4);
    pub const MULTICAST: AddrTypes = AddrTypes(1 << 5);
    pub const BLACKHOLE: AddrTypes = AddrTypes(1 << 6);
    pub const UNREACHABLE: AddrTypes = AddrTypes(1 << 7);
    pub const PROHIBIT: AddrTypes = AddrTypes(1 << 8);
    pub const THROW: AddrTypes = AddrTypes(1 << 9);
    pub const NAT: AddrTypes = AddrTypes(1 << 10);
    pub const XRESOLVE: AddrTypes = AddrTypes(1 << 11);

    /// Every type, with the name iptables prints, in its order (the kernel's RTN_ order).
    pub const ALL: [(AddrTypes, &'static str); 12] = [
        (Self::UNSPEC, "UNSPEC"),
        (Self::UNICAST, "UNICAST"),
        (Self::LOCAL, "LOCAL"),
        (Self::BROADCAST, "BROADCAST"),
        (Self::ANYCAST, "ANYCAST"),
        (Self::MULTICAST, "MULTICAST"),
        (Self::BLACKHOLE, "BLACKHOLE"),
        (Self::UNREACHABLE, "UNREACHABLE"),
        (Self::PROHIBIT, "PROHIBIT"),
        (Self::THROW, "THROW"),
        (Self::NAT, "NAT"),
        (Self::XRESOLVE, "XRESOLVE"),
    ];
}

flag_set_ops!(AddrTypes);

/// A set-valued match, possibly negated (`! --dst-type LOCAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetMatch<T> {
    pub set: T,
    pub negated: bool,
}

/// `-m mark --mark VALUE/MASK` (or `-m connmark`): `(mark & mask) == value`, or its negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkMatch {
    pub value: u32,
    pub mask: u32,
    pub negated: bool,
}

impl MarkMatch {
    pub fn holds(self, mark: u32) -> bool {
        ((mark & self.mask) == self.value) != self.negated
    }
}

/// `-m iprange --src-range A-B` (or `--dst-range`), inclusive, possibly negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub negated: bool,
}

impl AddrRange {
    pub fn holds(self, addr: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&addr) != self.negated
    }
}

/// Which ports a `-m multiport` match looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortSide {
    /// `--sports`
    Source,
    /// `--dports`
    Destination,
    /// `--ports`: either one.
    Either,
}

/// `-m multiport --dports 80,443,8000:8080` (at most 15 ports, a range counting two), possibly
/// negated; TCP and UDP only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Multiport {
    pub side: PortSide,
    pub ranges: Vec<(u16, u16)>,
    pub negated: bool,
}

impl Multiport {
    /// Whether a packet with these ports matches (never one without ports).
    pub fn holds(&self, sport: Option<u16>, dport: Option<u16>) -> bool {
        let (Some(s), Some(d)) = (sport, dport) else {
            return false;
        };
        let any = |p: u16| self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&p));
        let hit = match self.side {
            PortSide::Source => any(s),
            PortSide::Destination => any(d),
            PortSide::Either => any(s) || any(d),
        };
        hit != self.negated
    }
}

/// What a rule looks at. Every field left `None` (or empty) matches anything; all the fields
/// set must hold.
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
    /// `! -p PROTO`.
    pub not_proto: Option<L4>,
    /// Source port range, inclusive (`--sport`; TCP and UDP only).
    pub sport: Option<(u16, u16)>,
    /// `! --sport RANGE`.
    pub not_sport: Option<(u16, u16)>,
    /// Destination port range, inclusive (TCP and UDP only).
    pub dport: Option<(u16, u16)>,
    /// `! --dport RANGE`: any destination port outside it (TCP and UDP only).
    pub not_dport: Option<(u16, u16)>,
    /// `-m multiport`.
    pub multiport: Option<Multiport>,
    /// Connection states, any of which matches (`-m conntrack --ctstate`).
    pub states: States,
    /// States none of which may hold (`-m conntrack ! --ctstate`).
    pub not_states: States,
    /// `-m conntrack [!] --ctstatus`.
    pub status: Option<SetMatch<CtStatus>>,
    /// `-m addrtype [!] --src-type`.
    pub src_type: Option<SetMatch<AddrTypes>>,
    /// `-m addrtype [!] --dst-type` (`LOCAL`: one of the node's own addresses).
    pub dst_type: Option<SetMatch<AddrTypes>>,
    /// `-m iprange [!] --src-range`.
    pub src_range: Option<AddrRange>,
    /// `-m iprange [!] --dst-range`.
    pub dst_range: Option<AddrRange>,
    /// `-m mark [!] --mark`: the packet's mark.
    pub mark: Option<MarkMatch>,
    /// `-m connmark [!] --mark`: the connection's mark (never holds without a connection).
    pub connmark: Option<MarkMatch>,
    /// `-m statistic --mode random --probability P`, in parts per billion: the rule matches
    /// that share of the packets that reach it (kube-proxy picks endpoints this way). The
    /// engine draws from its seeded RNG only when everything else matched.
    pub probability_ppb: Option<u32>,
    /// `-m recent`: a list of addresses, state of the run; asked (through
    /// [`super::RunState`]) only when every other match of the rule held, before the random
    /// draw. Boxed: rare, and `Match` is cloned and compared often.
    pub recent: Option<Box<super::Recent>>,
    /// The modules in the order the rule was written (empty when it was not read from
    /// text): how iptables-save prints it. Changes nothing the rule matches.
    pub order: super::ModuleOrder,
}

/// The facts about a packet a rule is matched against. The marks change as rules set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFacts {
    pub in_iface: Option<IfaceId>,
    pub out_iface: Option<IfaceId>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: L4,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub state: States,
    pub status: CtStatus,
    pub src_type: AddrTypes,
    pub dst_type: AddrTypes,
    /// The packet's mark (skb->mark; 0 as it enters a node).
    pub mark: u32,
    /// The connection's mark; `None` for a packet without a connection (INVALID).
    pub ctmark: Option<u32>,
}

fn within(range: (u16, u16), port: Option<u16>) -> bool {
    port.is_some_and(|p| (range.0..=range.1).contains(&p))
}

fn outside(range: (u16, u16), port: Option<u16>) -> bool {
    port.is_some_and(|p| !(range.0..=range.1).contains(&p))
}

impl Match {
    /// The `-m addrtype --dst-type LOCAL` match.
    pub fn dst_local() -> Option<SetMatch<AddrTypes>> {
        Some(SetMatch {
            set: AddrTypes::LOCAL,
            negated: false,
        })
    }

    /// Whether this is exactly `--dst-type LOCAL` (what the topology format calls
    /// `dst_local`).
    pub fn is_dst_local(&self) -> bool {
        self.dst_type == Self::dst_local()
    }

    /// Whether the destination part of the match can hold for a packet to `dst` (not
    /// checked when `None`) with protocol `l4` and destination port `port`: what an address
    /// and a probe decide about a DNAT rule, before any packet is sent.
    pub fn fits_destination(&self, dst: Option<Ipv4Addr>, l4: L4, port: Option<u16>) -> bool {
        dst.is_none_or(|d| {
            self.dst.is_none_or(|n| n.contains(&d))
                && self.not_dst.is_none_or(|n| !n.contains(&d))
                && self.dst_range.is_none_or(|r| r.holds(d))
        }) && self.proto.is_none_or(|p| p == l4)
            && self.not_proto != Some(l4)
            && self.dport.is_none_or(|r| within(r, port))
            && self.not_dport.is_none_or(|r| outside(r, port))
            && self
                .multiport
                .as_ref()
                .is_none_or(|m| m.side != PortSide::Destination || m.holds(Some(0), port))
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
            && self.not_proto != Some(p.proto)
            && self.sport.is_none_or(|r| within(r, p.sport))
            && self.not_sport.is_none_or(|r| outside(r, p.sport))
            && self.dport.is_none_or(|r| within(r, p.dport))
            && self.not_dport.is_none_or(|r| outside(r, p.dport))
            && self
                .multiport
                .as_ref()
                .is_none_or(|m| m.holds(p.sport, p.dport))
            && self.states.matches(p.state)
            && (self.not_states.is_any() || !self.not_states.matches(p.state))
            && self.status.is_none_or(|s| match p.ctmark {
                // xt_conntrack: without a connection the status is not looked at; the match
                // holds when it also has a state option (which the packet passed above).
                None => !self.states.is_any() || !self.not_states.is_any(),
                Some(_) => s.set.intersects(p.status) != s.negated,
            })
            && self
                .src_type
                .is_none_or(|t| t.set.intersects(p.src_type) != t.negated)
            && self
                .dst_type
                .is_none_or(|t| t.set.intersects(p.dst_type) != t.negated)
            && self.src_range.is_none_or(|r| r.holds(p.src))
            && self.dst_range.is_none_or(|r| r.holds(p.dst))
            && self.mark.is_none_or(|m| m.holds(p.mark))
            && self
                .connmark
                .is_none_or(|m| p.ctmark.is_some_and(|c| m.holds(c)))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn facts(dport: u16, state: States) -> PacketFacts {
        PacketFacts {
            in_iface: Some(IfaceId(0)),
            out_iface: None,
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            proto: L4::Tcp,
            sport: Some(40000),
            dport: Some(dport),
            state,
            status: CtStatus::default(),
            src_type: AddrTypes::UNICAST,
            dst_type: AddrTypes::LOCAL,
            mark: 0,
            ctmark: Some(0),
        }
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
    fn states_are_alternatives_dnat_included() {
        let rule = States::DNAT;
        assert!(rule.matches(States::NEW.with(States::DNAT)));
        assert!(rule.matches(States::ESTABLISHED.with(States::DNAT)));
        assert!(!rule.matches(States::NEW));
        let either = States::NEW.with(States::DNAT);
        assert!(
            either.matches(States::NEW),
            "xt_conntrack: any state in the set"
        );
        assert_eq!(States::NEW.with(States::DNAT).names(), ["new", "dnat"]);
        assert_eq!(States::named("INVALID"), Some(States::INVALID));
    }

    #[test]
    fn negated_states_and_interfaces() {
        let m = Match {
            not_states: States::INVALID.with(States::NEW),
            not_in_iface: Some(IfaceId(1)),
            ..Match::default()
        };
        assert!(m.matches(&facts(1, States::ESTABLISHED)));
        assert!(!m.matches(&facts(1, States::NEW)));
        assert!(!m.matches(&facts(1, States::INVALID)));
        let mut f = facts(1, States::RELATED);
        f.in_iface = Some(IfaceId(1));
        assert!(!m.matches(&f));
    }

    #[test]
    fn without_a_connection_the_status_holds_only_beside_a_state_option() {
        let mut invalid = facts(80, States::INVALID);
        invalid.ctmark = None;
        let not_confirmed = SetMatch {
            set: CtStatus::CONFIRMED,
            negated: true,
        };
        let alone = Match {
            status: Some(not_confirmed),
            ..Match::default()
        };
        assert!(
            !alone.matches(&invalid),
            "kernel: no match without a connection"
        );
        let with_state = Match {
            states: States::INVALID,
            status: Some(SetMatch {
                negated: false,
                ..not_confirmed
            }),
            ..Match::default()
        };
        assert!(
            with_state.matches(&invalid),
            "kernel: the status is not looked at"
        );
    }

    #[test]
    fn marks_are_compared_under_their_mask() {
        let m = MarkMatch {
            value: 0x4000,
            mask: 0x4000,
            negated: false,
        };
        assert!(m.holds(0x4001) && !m.holds(0x1));
        let not = MarkMatch { negated: true, ..m };
        assert!(!not.holds(0x4000) && not.holds(0));
        let connmark = Match {
            connmark: Some(m),
            ..Match::default()
        };
        let mut f = facts(80, States::NEW);
        f.ctmark = None;
        assert!(!connmark.matches(&f), "no connection, no connection mark");
        f.ctmark = Some(0x4000);
        assert!(connmark.matches(&f));
    }

    #[test]
    fn multiport_ranges_and_address_ranges() {
        let m = Match {
            multiport: Some(Multiport {
                side: PortSide::Destination,
                ranges: vec![(80, 80), (8000, 8080)],
                negated: false,
            }),
            dst_range: Some(AddrRange {
                first: Ipv4Addr::new(10, 0, 0, 2),
                last: Ipv4Addr::new(10, 0, 0, 3),
                negated: false,
            }),
            ..Match::default()
        };
        assert!(m.matches(&facts(8080, States::NEW)));
        assert!(m.matches(&facts(80, States::NEW)));
        assert!(!m.matches(&facts(443, States::NEW)));
        let mut icmp = facts(80, States::NEW);
        icmp.sport = None;
        icmp.dport = None;
        assert!(!m.matches(&icmp), "no ports, no multiport match");
        let far = PacketFacts {
            dst: Ipv4Addr::new(10, 0, 0, 4),
            ..facts(80, States::NEW)
        };
        assert!(!m.matches(&far));
    }

    #[test]
    fn address_types_negate_as_a_set() {
        let not_local = Match {
            dst_type: Some(SetMatch {
                set: AddrTypes::LOCAL.with(AddrTypes::BROADCAST),
                negated: true,
            }),
            ..Match::default()
        };
        assert!(!not_local.matches(&facts(80, States::NEW)));
        let mut f = facts(80, States::NEW);
        f.dst_type = AddrTypes::UNICAST;
        assert!(not_local.matches(&f));
        assert_eq!(AddrTypes::named("local"), Some(AddrTypes::LOCAL));
    }
}
