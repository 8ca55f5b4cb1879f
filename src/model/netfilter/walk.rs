//! The walk through a table's chains, as the kernel's ipt_do_table does it: rules in order,
//! the first whose matches hold acts; `-j` pushes a return point, `-g` does not, `RETURN` and
//! the end of a user chain pop one, and falling off (or returning from) a built-in chain ends
//! the walk. Marks set on the way are written into the packet's facts. No allocation: the
//! return points live in a fixed array, as deep as validation allows ([`MAX_DEPTH`]).

use super::{ChainId, Effect, Flow, Match, PacketFacts, RuleAt, RunState, UserChain};

/// How deep `-j` and `-g` may nest below a built-in chain: nf_tables (what iptables 1.8 loads
/// rules into) refuses a chain reached through more (`NFT_JUMP_STACK_SIZE` is 16, the base
/// chain taking one: "Too many links"); validation refuses such rule sets.
pub const MAX_DEPTH: usize = 15;

/// What a rule does to the walk.
pub(crate) enum Step<'a> {
    /// The rule decides: the walk ends here.
    Stop,
    Flow(Flow),
    /// An effect; the walk goes on.
    Apply(&'a Effect),
}

/// A rule of some table, as the walk sees it.
pub(crate) trait Rule {
    fn matches(&self) -> &Match;
    fn step(&self) -> Step<'_>;
}

/// Walks from the rules of `base` for which `in_base` holds, through the user chains `chains`;
/// the rule that decided, or `None` when the walk fell off the built-in chain (its policy).
/// `run` answers `-m recent`, asked only when every other match of the rule held, then
/// `-m statistic`, drawn only when `-m recent` held too (docs/netfilter.md, "Recent lists").
pub(crate) fn walk<'a, R: Rule>(
    base: &'a [R],
    in_base: impl Fn(&R) -> bool,
    chains: &'a [UserChain<R>],
    facts: &mut PacketFacts,
    run: &mut dyn RunState,
) -> Option<(RuleAt, &'a R)> {
    if chains.is_empty() {
        return walk_base(base, in_base, facts, run);
    }
    // Return points: (chain, next rule); `None` is the built-in chain.
    let mut stack = [(None::<ChainId>, 0usize); MAX_DEPTH];
    let mut depth = 0;
    let mut chain: Option<ChainId> = None;
    let mut index = 0;
    loop {
        let rules: &[R] = match chain {
            None => base,
            Some(c) => chains.get(usize::from(c.0)).map_or(&[], |c| &c.rules),
        };
        let Some(rule) = rules.get(index) else {
            // The end of a chain: a user chain returns, a built-in one falls to its policy.
            if chain.is_none() || depth == 0 {
                return None;
            }
            depth -= 1;
            (chain, index) = stack[depth];
            continue;
        };
        let at = RuleAt { chain, index };
        index += 1;
        if (chain.is_none() && !in_base(rule)) || !holds(rule.matches(), facts, run) {
            continue;
        }
        match rule.step() {
            Step::Stop => return Some((at, rule)),
            Step::Apply(effect) => apply(effect, facts),
            Step::Flow(Flow::Jump(to)) => {
                if depth == MAX_DEPTH {
                    return None;
                }
                stack[depth] = (chain, index);
                depth += 1;
                (chain, index) = (Some(to), 0);
            }
            Step::Flow(Flow::Goto(to)) => (chain, index) = (Some(to), 0),
            Step::Flow(Flow::Return) => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                (chain, index) = stack[depth];
            }
        }
    }
}

/// The walk of a table without user chains (most nodes): the built-in chain alone, where a
/// `RETURN` ends the walk.
fn walk_base<'a, R: Rule>(
    base: &'a [R],
    in_base: impl Fn(&R) -> bool,
    facts: &mut PacketFacts,
    run: &mut dyn RunState,
) -> Option<(RuleAt, &'a R)> {
    for (index, rule) in base.iter().enumerate() {
        if !in_base(rule) || !holds(rule.matches(), facts, run) {
            continue;
        }
        match rule.step() {
            Step::Stop => return Some((RuleAt::base(index), rule)),
            Step::Apply(effect) => apply(effect, facts),
            // No user chain to go to (validation sees to it): nothing happens.
            Step::Flow(Flow::Jump(_) | Flow::Goto(_)) => {}
            Step::Flow(Flow::Return) => return None,
        }
    }
    None
}

/// Whether a rule's matches hold: the packet's facts first, then the run's lists, then the
/// draw.
#[inline]
fn holds(m: &Match, facts: &PacketFacts, run: &mut dyn RunState) -> bool {
    m.matches(facts)
        && m.recent.as_deref().is_none_or(|r| run.recent(r, facts))
        && m.probability_ppb.is_none_or(|ppb| run.draw(ppb))
}

/// What an effect does to the packet's facts (xt_MARK, xt_CONNMARK).
fn apply(effect: &Effect, facts: &mut PacketFacts) {
    use super::ConnMarkOp;
    match effect {
        Effect::Mark(set) => facts.mark = set.apply(facts.mark),
        Effect::ConnMark(op) => {
            let Some(ct) = facts.ctmark else { return };
            match *op {
                ConnMarkOp::Set(set) => facts.ctmark = Some(set.apply(ct)),
                ConnMarkOp::Save { nfmask, ctmask } => {
                    facts.ctmark = Some((ct & !ctmask) ^ (facts.mark & nfmask));
                }
                ConnMarkOp::Restore { nfmask, ctmask } => {
                    facts.mark = (facts.mark & !nfmask) ^ (ct & ctmask);
                }
            }
        }
        Effect::Log(_) | Effect::Count => {}
    }
}

#[cfg(test)]
pub(super) fn tests_apply(effect: &Effect, facts: &mut PacketFacts) {
    apply(effect, facts)
}
