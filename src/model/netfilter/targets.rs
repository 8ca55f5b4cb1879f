//! What a rule does when it matches: a filter verdict, a NAT translation, a jump to another
//! chain, or an effect after which the walk goes on (a mark, a log line). docs/netfilter.md,
//! "Targets".

use std::net::Ipv4Addr;

use super::{ChainId, Match};
use crate::model::{Origin, Port};

/// How a REJECT answers (`--reject-with`; iptables' default is icmp-port-unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectWith {
    PortUnreachable,
    HostUnreachable,
    NetUnreachable,
    AdminProhibited,
    TcpReset,
}

/// A filter chain's final word on a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Reject(RejectWith),
}

/// A move between chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// `-j CHAIN`: walk CHAIN, then come back to the next rule.
    Jump(ChainId),
    /// `-g CHAIN`: walk CHAIN; its end returns to where the last `-j` came from.
    Goto(ChainId),
    /// `-j RETURN`: back to the rule after the last `-j`; in a built-in chain, the policy.
    Return,
}

/// A new mark from an old one: `(old & !mask) ^ value` (xt_MARK's `--set-xmark VALUE/MASK`;
/// `--set-mark V` is `V/0xffffffff`, `--or-mark V` is `V/V`, `--xor-mark V` is `V/0`,
/// `--and-mark V` is `0/!V`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkSet {
    pub value: u32,
    pub mask: u32,
}

impl MarkSet {
    pub fn apply(self, old: u32) -> u32 {
        (old & !self.mask) ^ self.value
    }
}

/// What `-j CONNMARK` does with the connection's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnMarkOp {
    /// `--set-xmark VALUE/MASK` on the connection's mark.
    Set(MarkSet),
    /// `--save-mark --nfmask N --ctmask C`: ctmark = (ctmark & !C) ^ (mark & N).
    Save { nfmask: u32, ctmask: u32 },
    /// `--restore-mark --nfmask N --ctmask C`: mark = (mark & !N) ^ (ctmark & C).
    Restore { nfmask: u32, ctmask: u32 },
}

/// A target after which the walk goes on with the next rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `-j MARK`: the packet's mark.
    Mark(MarkSet),
    /// `-j CONNMARK`: the connection's mark (nothing without a connection).
    ConnMark(ConnMarkOp),
    /// `-j LOG` (its options as written): a kernel log line, nothing else.
    Log(String),
    /// No target: the rule only counts the packets it matches (kube-proxy ends a `KUBE-FW-`
    /// chain with one, a comment for the reader).
    Count,
}

/// What a filter rule does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Verdict(Verdict),
    Flow(Flow),
    Effect(Effect),
}

impl Target {
    /// The verdict, when the rule decides.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Target::Verdict(v) => Some(*v),
            _ => None,
        }
    }
}

impl From<Verdict> for Target {
    fn from(v: Verdict) -> Self {
        Target::Verdict(v)
    }
}

/// Options of a MASQUERADE or SNAT (`--random`, `--random-fully`): they pick the source port,
/// which the model does not predict, so they change no outcome; kept to write the rule back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatFlags {
    pub random: bool,
    pub random_fully: bool,
}

/// What a NAT rule does to a connection's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatAction {
    /// SNAT to the address of the outgoing interface.
    Masquerade(NatFlags),
    Snat(Ipv4Addr, NatFlags),
    /// DNAT to an address, and a port when given.
    Dnat(Ipv4Addr, Option<Port>),
    /// `-j ACCEPT` in the nat table: stop here, translate nothing at this hook.
    Accept,
    Flow(Flow),
    Effect(Effect),
}

impl NatAction {
    /// Whether the rule changes an address.
    pub fn translates(&self) -> bool {
        matches!(
            self,
            NatAction::Masquerade(_) | NatAction::Snat(..) | NatAction::Dnat(..)
        )
    }
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

impl NatHook {
    /// The built-in chain's name, as iptables writes it.
    pub fn chain_name(self) -> &'static str {
        match self {
            NatHook::Prerouting => "PREROUTING",
            NatHook::Output => "OUTPUT",
            NatHook::Postrouting => "POSTROUTING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    /// The built-in chain the rule is in (for a rule of a user chain: the hook of the first
    /// built-in chain that reaches it; not read).
    pub hook: NatHook,
    pub matches: Match,
    pub action: NatAction,
    pub origin: Origin,
    /// The user's words for it (a comment, or what a platform section lowered it from).
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub matches: Match,
    pub target: Target,
    pub origin: Origin,
    pub comment: Option<String>,
    /// How a fix for a packet this rule drops is best said, when a platform section made it.
    pub platform_fix: Option<PlatformFix>,
}

impl FilterRule {
    /// The verdict, when the rule decides.
    pub fn verdict(&self) -> Option<Verdict> {
        self.target.verdict()
    }
}

/// Where a platform keeps what decides a filter verdict, so that a fix is written there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlatformFix {
    /// An ingress rule in this OpenStack security group.
    SecurityGroup { group: String },
    /// A rule in the DOCKER-USER chain of the Docker engine on this host, which FORWARD runs
    /// before Docker's own rules.
    DockerUser { host: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmark_covers_set_or_xor_and() {
        let set = MarkSet {
            value: 0x1,
            mask: 0xffff_ffff,
        };
        assert_eq!(set.apply(0x4000), 0x1);
        let or = MarkSet {
            value: 0x4000,
            mask: 0x4000,
        };
        assert_eq!(or.apply(0x1), 0x4001);
        assert_eq!(or.apply(0x4001), 0x4001);
        let xor = MarkSet {
            value: 0x4000,
            mask: 0,
        };
        assert_eq!(xor.apply(0x4001), 0x1);
        let and = MarkSet {
            value: 0,
            mask: !0xff,
        };
        assert_eq!(and.apply(0x41ff), 0xff);
    }
}
