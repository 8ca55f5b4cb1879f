//! Netfilter on a node: the nat table and the filter chains, with the semantics of iptables
//! (first match wins; `-j`/`-g`/`RETURN` between user chains; NAT decided on a connection's
//! first packet; replies and related ICMP follow the connection; marks on packets and
//! connections). Each rule keeps its origin and the words to explain it with ("security group
//! `default` of instance `VM_ubuntu`"). docs/netfilter.md says what each part follows.
//!
//! - [`matches`](Match): what a rule looks at, and the facts about a packet;
//! - [`targets`](Target): what a rule does;
//! - the walk through chains (`walk`), shared by both tables.

mod matches;
mod order;
mod recent;
mod targets;
mod walk;

pub use matches::{
    AddrRange, AddrTypes, CtStatus, L4, MarkMatch, Match, Multiport, PacketFacts, PortSide,
    SetMatch, States,
};
pub use order::{Module, ModuleOrder};
pub use recent::{
    DEFAULT_LIST, LIST_SIZE, MAX_HITCOUNT, MAX_NAME, Recent, RecentLists, RecentOp, RecentSide,
    RunState,
};
pub use targets::{
    ConnMarkOp, Effect, FilterRule, Flow, MarkSet, NatAction, NatFlags, NatHook, NatRule,
    PlatformFix, RejectWith, Target, Verdict,
};
pub use walk::MAX_DEPTH;

use walk::{Rule, Step, walk};

use crate::model::Origin;

/// Which built-in chain that filters: the filter table's, mangle PREROUTING, or the raw
/// table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainName {
    /// Every packet arriving on an interface, as it arrived: after conntrack, before any DNAT
    /// (iptables' mangle PREROUTING). Where a filter in front of the machine belongs, such as
    /// an OpenStack security group at the instance's port.
    Prerouting,
    Input,
    Forward,
    Output,
    /// The raw table's PREROUTING: every packet arriving on an interface, before conntrack
    /// sees it (Docker 28's drops of what is sent straight to a container's address).
    RawPrerouting,
    /// The raw table's OUTPUT: every packet the node sends, before conntrack and nat OUTPUT.
    RawOutput,
}

impl ChainName {
    /// The chain's key: `prerouting`, `input`, … (the `firewall:` keys), `raw_prerouting`,
    /// `raw_output` (what `why.cause.chain` says).
    pub fn name(self) -> &'static str {
        match self {
            ChainName::Prerouting => "prerouting",
            ChainName::Input => "input",
            ChainName::Forward => "forward",
            ChainName::Output => "output",
            ChainName::RawPrerouting => "raw_prerouting",
            ChainName::RawOutput => "raw_output",
        }
    }

    /// The chain in prose: as [`ChainName::name`], but `raw PREROUTING` and `raw OUTPUT`.
    pub fn words(self) -> &'static str {
        match self {
            ChainName::RawPrerouting => "raw PREROUTING",
            ChainName::RawOutput => "raw OUTPUT",
            other => other.name(),
        }
    }

    /// A chain of the raw table: it runs before conntrack, and holds no user chain.
    pub fn is_raw(self) -> bool {
        matches!(self, ChainName::RawPrerouting | ChainName::RawOutput)
    }
}

/// A user-defined chain, by its index in its table's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u16);

/// A user-defined chain: a name and rules, reached only by `-j`/`-g`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChain<R> {
    pub name: String,
    pub rules: Vec<R>,
    /// Where it was declared.
    pub origin: Origin,
}

/// Where a rule sits: in a built-in chain (`chain: None`; for the nat table, the index in
/// [`Netfilter::nat`]) or in a user chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleAt {
    pub chain: Option<ChainId>,
    pub index: usize,
}

impl RuleAt {
    /// Rule `index` of the built-in chain.
    pub fn base(index: usize) -> Self {
        RuleAt { chain: None, index }
    }
}

/// A built-in filter chain: rules in order, then the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub policy: Verdict,
    pub rules: Vec<FilterRule>,
    /// Where the policy was set (for "dropped by the policy of …").
    pub policy_origin: Origin,
    pub policy_comment: Option<String>,
    /// How a fix for a packet the policy drops is best said, when a platform set the policy.
    pub policy_fix: Option<PlatformFix>,
    /// Where the rules the file writes for the node begin: a platform's daemon inserted the
    /// rules before this index above them, and appended the rest after them (0 without one).
    pub own_start: usize,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            policy: Verdict::Accept,
            rules: Vec::new(),
            policy_origin: Origin::default(),
            policy_comment: None,
            policy_fix: None,
            own_start: 0,
        }
    }
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decider {
    Rule(RuleAt),
    Policy,
}

impl Chain {
    /// True when nothing can be refused or marked here, and no `-m recent` list changes.
    pub fn is_open(&self) -> bool {
        self.policy == Verdict::Accept
            && self
                .rules
                .iter()
                .all(|r| r.target == Target::Verdict(Verdict::Accept) && r.matches.recent.is_none())
    }
}

impl Rule for FilterRule {
    fn matches(&self) -> &Match {
        &self.matches
    }

    fn step(&self) -> Step<'_> {
        match &self.target {
            Target::Verdict(_) => Step::Stop,
            Target::Flow(f) => Step::Flow(*f),
            Target::Effect(e) => Step::Apply(e),
        }
    }
}

impl Rule for NatRule {
    fn matches(&self) -> &Match {
        &self.matches
    }

    fn step(&self) -> Step<'_> {
        match &self.action {
            NatAction::Flow(f) => Step::Flow(*f),
            NatAction::Effect(e) => Step::Apply(e),
            _ => Step::Stop,
        }
    }
}

/// All of a node's netfilter configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Netfilter {
    /// The nat table's built-in chains, each rule with its hook, in order.
    pub nat: Vec<NatRule>,
    /// The nat table's user chains.
    pub nat_chains: Vec<UserChain<NatRule>>,
    pub prerouting: Chain,
    pub input: Chain,
    pub forward: Chain,
    pub output: Chain,
    /// The raw table's PREROUTING and OUTPUT: before conntrack, no user chains.
    pub raw_prerouting: Chain,
    pub raw_output: Chain,
    /// The filter table's user chains.
    pub filter_chains: Vec<UserChain<FilterRule>>,
    /// Read from `iptables-save` text (not from the topology's rule keys): a fix cannot add
    /// rule keys to it.
    pub from_text: bool,
}

impl Netfilter {
    pub fn chain(&self, name: ChainName) -> &Chain {
        match name {
            ChainName::Prerouting => &self.prerouting,
            ChainName::Input => &self.input,
            ChainName::Forward => &self.forward,
            ChainName::Output => &self.output,
            ChainName::RawPrerouting => &self.raw_prerouting,
            ChainName::RawOutput => &self.raw_output,
        }
    }

    /// The built-in chain `name`, to change.
    pub fn chain_mut(&mut self, name: ChainName) -> &mut Chain {
        match name {
            ChainName::Prerouting => &mut self.prerouting,
            ChainName::Input => &mut self.input,
            ChainName::Forward => &mut self.forward,
            ChainName::Output => &mut self.output,
            ChainName::RawPrerouting => &mut self.raw_prerouting,
            ChainName::RawOutput => &mut self.raw_output,
        }
    }

    /// The filter rule at `at`, reached from the built-in chain `base`.
    pub fn filter_rule(&self, base: ChainName, at: RuleAt) -> Option<&FilterRule> {
        match at.chain {
            None => self.chain(base).rules.get(at.index),
            // The raw table has no user chains.
            Some(_) if base.is_raw() => None,
            Some(c) => self
                .filter_chains
                .get(usize::from(c.0))?
                .rules
                .get(at.index),
        }
    }

    /// The nat rule at `at`.
    pub fn nat_rule_at(&self, at: RuleAt) -> Option<&NatRule> {
        match at.chain {
            None => self.nat.get(at.index),
            Some(c) => self.nat_chains.get(usize::from(c.0))?.rules.get(at.index),
        }
    }

    /// The name of user chain `id` of the filter table (`nat`: of the nat table).
    pub fn chain_label(&self, id: ChainId, nat: bool) -> &str {
        let name = if nat {
            self.nat_chains
                .get(usize::from(id.0))
                .map(|c| c.name.as_str())
        } else {
            self.filter_chains
                .get(usize::from(id.0))
                .map(|c| c.name.as_str())
        };
        name.unwrap_or("?")
    }

    /// The verdict of built-in chain `name` for a packet, and what decided it; marks set on
    /// the way are written into `facts`. `run` answers the random matches (`-m statistic`)
    /// and the lists of `-m recent`.
    pub fn judge(
        &self,
        name: ChainName,
        facts: &mut PacketFacts,
        run: &mut dyn RunState,
    ) -> (Verdict, Decider) {
        let chain = self.chain(name);
        // The filter table's user chains; the raw table has none.
        let users: &[UserChain<FilterRule>] = if name.is_raw() {
            &[]
        } else {
            &self.filter_chains
        };
        match walk(&chain.rules, |_| true, users, facts, run) {
            Some((at, rule)) => (rule.verdict().unwrap_or(chain.policy), Decider::Rule(at)),
            None => (chain.policy, Decider::Policy),
        }
    }

    /// The nat rule of `hook` that decides a new connection's first packet: a translation,
    /// or a nat `ACCEPT`; `None` when the walk fell off the chain. Marks set on the way are
    /// written into `facts`; `run` answers the random matches (`-m statistic`) and the lists
    /// of `-m recent`.
    pub fn nat_rule(
        &self,
        hook: NatHook,
        facts: &mut PacketFacts,
        run: &mut dyn RunState,
    ) -> Option<(RuleAt, &NatRule)> {
        walk(&self.nat, |r| r.hook == hook, &self.nat_chains, facts, run)
    }

    /// Whether some rule, in any chain of either table, has a match for which `test` holds.
    pub fn any_match(&self, test: impl Fn(&Match) -> bool) -> bool {
        let filter = [
            &self.raw_prerouting,
            &self.raw_output,
            &self.prerouting,
            &self.input,
            &self.forward,
            &self.output,
        ]
        .into_iter()
        .flat_map(|c| &c.rules)
        .chain(self.filter_chains.iter().flat_map(|c| &c.rules))
        .any(|r| test(&r.matches));
        filter
            || self
                .nat
                .iter()
                .chain(self.nat_chains.iter().flat_map(|c| &c.rules))
                .any(|r| test(&r.matches))
    }

    /// Whether the node needs connection tracking at all.
    pub fn is_empty(&self) -> bool {
        self.nat.is_empty()
            && self.raw_prerouting.is_open()
            && self.raw_output.is_open()
            && self.prerouting.is_open()
            && self.input.is_open()
            && self.forward.is_open()
            && self.output.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::matches::tests::facts;
    use super::*;

    fn rule(m: Match, target: impl Into<Target>) -> FilterRule {
        FilterRule {
            matches: m,
            target: target.into(),
            origin: Origin::default(),
            comment: None,
            platform_fix: None,
        }
    }

    fn port(p: u16) -> Match {
        Match {
            proto: Some(L4::Tcp),
            dport: Some((p, p)),
            ..Match::default()
        }
    }

    fn judge(nf: &Netfilter, f: &mut PacketFacts) -> (Verdict, Decider) {
        nf.judge(ChainName::Input, f, &mut |_: u32| true)
    }

    #[test]
    fn first_match_wins_then_policy() {
        let nf = Netfilter {
            input: Chain {
                policy: Verdict::Drop,
                rules: vec![
                    rule(port(22), Verdict::Accept),
                    rule(
                        Match {
                            dport: Some((20, 30)),
                            ..port(0)
                        },
                        Verdict::Reject(RejectWith::PortUnreachable),
                    ),
                ],
                ..Chain::default()
            },
            ..Netfilter::default()
        };
        let at = |i| Decider::Rule(RuleAt::base(i));
        assert_eq!(
            judge(&nf, &mut facts(22, States::NEW)),
            (Verdict::Accept, at(0))
        );
        assert_eq!(
            judge(&nf, &mut facts(25, States::NEW)),
            (Verdict::Reject(RejectWith::PortUnreachable), at(1))
        );
        assert_eq!(
            judge(&nf, &mut facts(80, States::NEW)),
            (Verdict::Drop, Decider::Policy)
        );
    }

    /// INPUT: -j A; A: -p tcp --dport 22 -j ACCEPT, -g B, (unreached); B: --dport 80 -j
    /// RETURN, -j MARK --set-xmark 0x1/0xffffffff. After -g, B's end returns past `-j A`.
    fn chained() -> Netfilter {
        let mut nf = Netfilter::default();
        let a = ChainId(0);
        let b = ChainId(1);
        nf.input = Chain {
            policy: Verdict::Drop,
            rules: vec![
                rule(Match::default(), Target::Flow(Flow::Jump(a))),
                rule(
                    Match {
                        mark: Some(MarkMatch {
                            value: 1,
                            mask: 0xffff_ffff,
                            negated: false,
                        }),
                        ..Match::default()
                    },
                    Verdict::Accept,
                ),
            ],
            ..Chain::default()
        };
        let user = |name: &str, rules| UserChain {
            name: name.into(),
            rules,
            origin: Origin::default(),
        };
        nf.filter_chains = vec![
            user(
                "A",
                vec![
                    rule(port(22), Verdict::Accept),
                    rule(Match::default(), Target::Flow(Flow::Goto(b))),
                    rule(Match::default(), Verdict::Reject(RejectWith::TcpReset)),
                ],
            ),
            user(
                "B",
                vec![
                    rule(port(80), Target::Flow(Flow::Return)),
                    rule(
                        Match::default(),
                        Target::Effect(Effect::Mark(MarkSet {
                            value: 1,
                            mask: 0xffff_ffff,
                        })),
                    ),
                ],
            ),
        ];
        nf
    }

    #[test]
    fn jumps_gotos_and_returns_walk_as_the_kernel_does() {
        let nf = chained();
        let (v, d) = judge(&nf, &mut facts(22, States::NEW));
        assert_eq!(
            (v, d),
            (
                Verdict::Accept,
                Decider::Rule(RuleAt {
                    chain: Some(ChainId(0)),
                    index: 0
                })
            )
        );
        assert_eq!(
            nf.filter_rule(ChainName::Input, RuleAt::base(1)),
            nf.input.rules.get(1)
        );
        // Port 80 returns from B straight to INPUT (the goto left no return point in A),
        // unmarked: the policy drops it.
        let mut f = facts(80, States::NEW);
        assert_eq!(judge(&nf, &mut f), (Verdict::Drop, Decider::Policy));
        assert_eq!(f.mark, 0);
        // Any other port is marked at B's end, returns to INPUT and is accepted by rule 1.
        let mut f = facts(443, States::NEW);
        assert_eq!(
            judge(&nf, &mut f),
            (Verdict::Accept, Decider::Rule(RuleAt::base(1)))
        );
        assert_eq!(f.mark, 1);
    }

    #[test]
    fn a_nat_accept_ends_the_walk_without_translating() {
        let nat = |hook, m, action| NatRule {
            hook,
            matches: m,
            action,
            origin: Origin::default(),
            comment: None,
        };
        let nf = Netfilter {
            nat: vec![
                nat(NatHook::Postrouting, port(22), NatAction::Accept),
                nat(
                    NatHook::Postrouting,
                    Match::default(),
                    NatAction::Masquerade(NatFlags::default()),
                ),
            ],
            ..Netfilter::default()
        };
        let mut draw = |_: u32| true;
        let (at, r) = nf
            .nat_rule(NatHook::Postrouting, &mut facts(22, States::NEW), &mut draw)
            .expect("decided");
        assert_eq!((at, r.action.translates()), (RuleAt::base(0), false));
        let (at, r) = nf
            .nat_rule(NatHook::Postrouting, &mut facts(80, States::NEW), &mut draw)
            .expect("decided");
        assert_eq!((at, r.action.translates()), (RuleAt::base(1), true));
        assert!(
            nf.nat_rule(NatHook::Prerouting, &mut facts(80, States::NEW), &mut draw)
                .is_none(),
            "rules of another hook are not walked"
        );
    }

    #[test]
    fn connmark_saves_and_restores() {
        let mut f = facts(80, States::NEW);
        f.mark = 0x4001;
        walk::tests_apply(
            &Effect::ConnMark(ConnMarkOp::Save {
                nfmask: 0x4000,
                ctmask: 0xffff_ffff,
            }),
            &mut f,
        );
        assert_eq!(f.ctmark, Some(0x4000));
        f.mark = 0x2;
        walk::tests_apply(
            &Effect::ConnMark(ConnMarkOp::Restore {
                nfmask: 0xffff_ffff,
                ctmask: 0xffff_ffff,
            }),
            &mut f,
        );
        assert_eq!(f.mark, 0x4000);
        f.ctmark = None;
        walk::tests_apply(
            &Effect::ConnMark(ConnMarkOp::Set(MarkSet { value: 7, mask: 7 })),
            &mut f,
        );
        assert_eq!(f.ctmark, None, "no connection: nothing to mark");
    }
}
