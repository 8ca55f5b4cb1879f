//! Tables of `nft list ruleset` text lowered into a node's [`Netfilter`]: base chains of
//! families ip and inet onto the model's chains by type and hook, regular chains onto user
//! chains of the filter or nat table (by the base chains that reach them), rules into filter
//! and nat rules with nft's and the model's checks. ip6, arp and netdev tables are left out
//! with a warning, bridge tables refused. docs/netfilter.md, "nft list ruleset text".

use std::collections::HashMap;

use super::parse::{ChainDef, Table};
use super::rule::{Action, ReadRule, Step, read_rule};
use super::value::{bad, unsupported};
use crate::format::Code;
use crate::model::{
    Chain, ChainId, ChainName, Effect, FilterRule, Flow, IfaceId, MAX_DEPTH, NatAction, NatHook,
    NatRule, Netfilter, Origin, RuleTarget, UserChain, Verdict,
};
use crate::topology::iptables::{Problem, Word};

/// The model's netfilter and the warnings about what was left out.
#[derive(Debug)]
pub struct Lowered {
    pub nf: Netfilter,
    pub warnings: Vec<Problem>,
}

/// Where a base chain's rules go in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Filter(ChainName),
    Nat(NatHook),
}

/// Which table of the model a regular chain joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Filter,
    Nat,
}

/// What a chain of the text became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Left out: an empty base chain with policy accept, or one refused.
    None,
    Base(Slot),
    User(Kind, ChainId),
}

/// The kernel's conntrack priority: filter chains run after it, and the nat chains after the
/// model's prerouting chain (docs/netfilter.md, "nft list ruleset text").
const CONNTRACK: i32 = -200;

/// Lowers the tables; `iface` resolves the node's interface names (`lo` included), `origin`
/// places a word of the text.
pub fn lower(
    tables: &[Table],
    iface: &dyn Fn(&str) -> Option<IfaceId>,
    origin: &dyn Fn(&Word) -> Origin,
) -> Result<Lowered, Vec<Problem>> {
    let mut l = Lowering {
        nf: Netfilter::default(),
        problems: Vec::new(),
        warnings: Vec::new(),
        origin,
        slots: HashMap::new(),
        names: HashMap::new(),
        nat_hooks: Vec::new(),
    };
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut kept = Vec::new();
    for table in tables {
        let key = (table.family.text.as_str(), table.name.text.as_str());
        if seen.contains(&key) {
            l.problems.push(Problem::new(
                &table.name,
                Code::DuplicateName,
                format!("table `{} {}` appears twice", key.0, key.1),
                "merge the two into one table, as nft lists it",
            ));
            continue;
        }
        seen.push(key);
        if l.family(table) {
            kept.push(table);
        }
    }
    // Read every rule first: jumps decide which table of the model a regular chain joins.
    let read: Vec<Vec<Vec<(Word, ReadRule)>>> = kept
        .iter()
        .map(|t| t.chains.iter().map(|c| l.read(c, iface)).collect())
        .collect();
    let roles: Vec<Vec<Role>> = kept.iter().zip(&read).map(|(t, r)| l.roles(t, r)).collect();
    for ((table, rules), roles) in kept.iter().zip(&read).zip(&roles) {
        for (rules, role) in rules.iter().zip(roles) {
            for (start, rule) in rules {
                l.rule(table, roles, *role, start, rule);
            }
        }
    }
    l.check_jumps();
    if l.problems.is_empty() {
        Ok(Lowered {
            nf: l.nf,
            warnings: l.warnings,
        })
    } else {
        Err(l.problems)
    }
}

struct Lowering<'a> {
    nf: Netfilter,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    origin: &'a dyn Fn(&Word) -> Origin,
    /// The base chain already lowered onto each slot.
    slots: HashMap<Slot, Word>,
    /// The regular chains of each kind, by name.
    names: HashMap<(Kind, String), Word>,
    /// For each nat user chain, the hooks whose base chains reach it.
    nat_hooks: Vec<Vec<NatHook>>,
}

impl Lowering<'_> {
    /// Whether the table's family is read; the warning or error for one that is not.
    fn family(&mut self, table: &Table) -> bool {
        let name = format!("{} {}", table.family.text, table.name.text);
        let leave_out = |why: &str| {
            Problem::new(
                &table.name,
                Code::Unsupported,
                format!("table `{name}` is left out: {why}"),
                "nothing to do unless the table matters for IPv4; reachlab models IPv4 only",
            )
        };
        match table.family.text.as_str() {
            "ip" | "inet" => {
                for other in &table.others {
                    if other.text != "comment" {
                        self.problems.push(unsupported(
                            other,
                            &format!("`{}` in a table (named sets, maps, flowtables, stateful objects, table flags)", other.text),
                        ));
                    }
                }
                true
            }
            "ip6" => {
                self.warnings
                    .push(leave_out("its rules see IPv6 packets only"));
                false
            }
            "arp" => {
                self.warnings
                    .push(leave_out("its rules see ARP packets only"));
                false
            }
            "netdev" => {
                self.warnings.push(leave_out("the model has no ingress or egress hook (a netdev chain that drops IPv4 would not be seen)"));
                false
            }
            "bridge" => {
                self.problems.push(Problem::new(
                    &table.family,
                    Code::Unsupported,
                    format!("table `{name}` is not modelled: it judges bridged frames"),
                    "remove the table; reachlab's nodes route, they do not filter what a bridge forwards",
                ));
                false
            }
            other => {
                self.problems.push(bad(
                    &table.family,
                    format!("unknown family `{other}`"),
                    "nft's families are ip, ip6, inet, arp, bridge and netdev",
                ));
                false
            }
        }
    }

    /// Every rule of a chain read, with its first word; problems kept.
    fn read(
        &mut self,
        chain: &ChainDef,
        iface: &dyn Fn(&str) -> Option<IfaceId>,
    ) -> Vec<(Word, ReadRule)> {
        let mut out = Vec::new();
        for toks in &chain.rules {
            let Some(first) = toks.first() else { continue };
            match read_rule(toks, iface) {
                Ok(r) => out.push((first.at.clone(), r)),
                Err(p) => self.problems.push(p),
            }
        }
        out
    }

    /// What each chain of a table becomes.
    fn roles(&mut self, table: &Table, read: &[Vec<(Word, ReadRule)>]) -> Vec<Role> {
        let mut roles: Vec<Role> = table
            .chains
            .iter()
            .map(|c| match &c.base {
                Some(_) => self.base(c),
                None => Role::None,
            })
            .collect();
        // Which kinds, and which nat hooks, reach each regular chain.
        let index: HashMap<&str, usize> = table
            .chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.text.as_str(), i))
            .collect();
        let mut reached: Vec<(bool, Vec<NatHook>)> = vec![(false, Vec::new()); roles.len()];
        for (i, role) in roles.iter().enumerate() {
            let Role::Base(slot) = *role else { continue };
            let mut stack = vec![i];
            let mut visited = vec![false; roles.len()];
            while let Some(c) = stack.pop() {
                for (_, rule) in &read[c] {
                    for step in &rule.steps {
                        let (Action::Jump(name) | Action::Goto(name)) = &step.action else {
                            continue;
                        };
                        let Some(&to) = index.get(name.text.as_str()) else {
                            continue;
                        };
                        if table.chains[to].base.is_some() || visited[to] {
                            continue;
                        }
                        visited[to] = true;
                        match slot {
                            Slot::Filter(_) => reached[to].0 = true,
                            Slot::Nat(h) if !reached[to].1.contains(&h) => reached[to].1.push(h),
                            Slot::Nat(_) => {}
                        }
                        stack.push(to);
                    }
                }
            }
        }
        let has_filter = roles
            .iter()
            .any(|r| matches!(r, Role::Base(Slot::Filter(_))));
        let has_nat = roles.iter().any(|r| matches!(r, Role::Base(Slot::Nat(_))));
        for (i, chain) in table.chains.iter().enumerate() {
            if chain.base.is_some() {
                continue;
            }
            let (filter, hooks) = &reached[i];
            let kind = match (*filter, hooks.is_empty()) {
                (true, false) => {
                    self.problems.push(unsupported(
                        &chain.name,
                        &format!(
                            "chain `{}` reached from both filter and nat base chains",
                            chain.name.text
                        ),
                    ));
                    continue;
                }
                (true, true) => Kind::Filter,
                (false, false) => Kind::Nat,
                (false, true) if has_nat && !has_filter => Kind::Nat,
                (false, true) => Kind::Filter,
            };
            if let Some(first) = self.names.get(&(kind, chain.name.text.clone())) {
                let message = format!(
                    "two tables have a chain `{}` (the other at line {})",
                    chain.name.text, first.line
                );
                self.problems.push(Problem::new(
                    &chain.name,
                    Code::DuplicateName,
                    message,
                    "rename one of them: the model keeps the user chains of all tables in one list",
                ));
                continue;
            }
            self.names
                .insert((kind, chain.name.text.clone()), chain.name.clone());
            let origin = (self.origin)(&chain.name);
            let name = chain.name.text.clone();
            let id = match kind {
                Kind::Filter => {
                    self.nf.filter_chains.push(UserChain {
                        name,
                        rules: Vec::new(),
                        origin,
                    });
                    self.nf.filter_chains.len() - 1
                }
                Kind::Nat => {
                    self.nf.nat_chains.push(UserChain {
                        name,
                        rules: Vec::new(),
                        origin,
                    });
                    self.nat_hooks.push(hooks.clone());
                    self.nf.nat_chains.len() - 1
                }
            };
            match u16::try_from(id) {
                Ok(id) => roles[i] = Role::User(kind, ChainId(id)),
                Err(_) => self.problems.push(bad(
                    &chain.name,
                    "too many chains",
                    "a table holds at most 65535 regular chains",
                )),
            }
        }
        roles
    }

    /// The slot of a base chain, its policy set; `Role::None` when left out or refused.
    fn base(&mut self, chain: &ChainDef) -> Role {
        let Some(spec) = &chain.base else {
            return Role::None;
        };
        let accepts = chain.policy.as_ref().is_none_or(|p| p.text == "accept");
        if accepts && chain.rules.is_empty() {
            return Role::None;
        }
        let (kind, hook, p) = (
            spec.kind.text.as_str(),
            spec.hook.text.as_str(),
            spec.priority,
        );
        let slot = match (kind, hook) {
            // Before conntrack: the raw table's place (iptables-nft's raw chains, at -300).
            ("filter", "prerouting") if p < CONNTRACK => Slot::Filter(ChainName::RawPrerouting),
            ("filter", "output") if p < CONNTRACK => Slot::Filter(ChainName::RawOutput),
            ("filter", "prerouting") if p > CONNTRACK && p < -100 => {
                Slot::Filter(ChainName::Prerouting)
            }
            ("filter", "input") if p > CONNTRACK => Slot::Filter(ChainName::Input),
            ("filter", "forward") if p > CONNTRACK => Slot::Filter(ChainName::Forward),
            ("filter", "output") if p > -100 => Slot::Filter(ChainName::Output),
            ("nat", "prerouting") if p >= -100 => Slot::Nat(NatHook::Prerouting),
            ("nat", "output") if p > CONNTRACK => Slot::Nat(NatHook::Output),
            ("nat", "postrouting") if p > CONNTRACK => Slot::Nat(NatHook::Postrouting),
            ("filter" | "nat", "prerouting" | "input" | "forward" | "output" | "postrouting") => {
                self.problems.push(Problem::new(&spec.priority_at, Code::Unsupported, format!("a {kind} chain at hook {hook} with priority {p} is not modelled"), "filter chains run before conntrack (prerouting and output below -200: the raw table) or after it (above -200), prerouting ones before DNAT (below -100), output ones after it (above -100); nat prerouting at -100 or above"));
                return Role::None;
            }
            ("filter" | "nat" | "route", _) => {
                self.problems.push(unsupported(
                    &spec.hook,
                    &format!("a `type {kind} hook {hook}` chain with rules or a drop policy"),
                ));
                return Role::None;
            }
            _ => {
                self.problems.push(bad(
                    &spec.kind,
                    format!("unknown chain type `{kind}`"),
                    "nft's chain types are filter, nat and route",
                ));
                return Role::None;
            }
        };
        if spec.device.is_some() {
            self.problems
                .push(unsupported(&spec.hook, "a base chain bound to a device"));
            return Role::None;
        }
        if let Some(first) = self.slots.get(&slot) {
            let message = format!(
                "chain `{}` and chain `{}` (line {}) both hook {kind} {hook}: an accept in one does not end the other, which the model cannot hold",
                chain.name.text, first.text, first.line
            );
            self.problems.push(Problem::new(
                &chain.name,
                Code::Unsupported,
                message,
                "merge the two chains into one, or leave one of them empty with policy accept",
            ));
            return Role::None;
        }
        self.slots.insert(slot, chain.name.clone());
        if let Some(policy) = &chain.policy {
            let verdict = match (policy.text.as_str(), slot) {
                ("accept", _) => Verdict::Accept,
                ("drop", Slot::Filter(_)) => Verdict::Drop,
                ("drop", Slot::Nat(_)) => {
                    self.problems.push(unsupported(
                        policy,
                        "a nat chain with policy drop (the model's nat chains accept)",
                    ));
                    return Role::None;
                }
                (other, _) => {
                    self.problems.push(bad(
                        policy,
                        format!("`{other}` is not a policy"),
                        "write accept or drop",
                    ));
                    return Role::None;
                }
            };
            if let Slot::Filter(name) = slot {
                let origin = (self.origin)(policy);
                let c = self.filter_chain(name);
                c.policy = verdict;
                c.policy_origin = origin;
            }
        }
        Role::Base(slot)
    }

    fn filter_chain(&mut self, name: ChainName) -> &mut Chain {
        self.nf.chain_mut(name)
    }

    /// Lowers the steps of one rule of `chain` (whose role is `role`).
    fn rule(&mut self, table: &Table, roles: &[Role], role: Role, start: &Word, rule: &ReadRule) {
        if role == Role::None || rule.ipv6_only.is_some() {
            return;
        }
        if let Err(p) = interfaces(role, rule) {
            return self.problems.push(p);
        }
        let origin = (self.origin)(start);
        for step in &rule.steps {
            let flow = match &step.action {
                Action::Jump(name) | Action::Goto(name) => {
                    let goto = matches!(step.action, Action::Goto(_));
                    match self.jump(table, roles, role, name, goto) {
                        Ok(f) => Some(f),
                        Err(p) => return self.problems.push(p),
                    }
                }
                _ => None,
            };
            let lowered = match role {
                Role::Base(Slot::Filter(name)) if name.is_raw() => raw_target(step).map(|t| {
                    self.filter_chain(name)
                        .rules
                        .push(filter_rule(step, t, &origin, rule))
                }),
                Role::Base(Slot::Filter(name)) => {
                    filter_target(step, flow, name == ChainName::Prerouting).map(|t| {
                        self.filter_chain(name)
                            .rules
                            .push(filter_rule(step, t, &origin, rule))
                    })
                }
                Role::User(Kind::Filter, id) => filter_target(step, flow, false).map(|t| {
                    self.nf.filter_chains[usize::from(id.0)]
                        .rules
                        .push(filter_rule(step, t, &origin, rule))
                }),
                Role::Base(Slot::Nat(hook)) => nat_action(step, flow, &[hook]).map(|a| {
                    self.nf.nat.push(nat_rule(hook, step, a, &origin, rule));
                }),
                Role::User(Kind::Nat, id) => {
                    let hooks = self
                        .nat_hooks
                        .get(usize::from(id.0))
                        .cloned()
                        .unwrap_or_default();
                    nat_action(step, flow, &hooks).map(|a| {
                        self.nf.nat_chains[usize::from(id.0)].rules.push(nat_rule(
                            NatHook::Prerouting,
                            step,
                            a,
                            &origin,
                            rule,
                        ));
                    })
                }
                Role::None => Ok(()),
            };
            if let Err(p) = lowered {
                return self.problems.push(p);
            }
        }
    }

    fn jump(
        &self,
        table: &Table,
        roles: &[Role],
        from: Role,
        name: &Word,
        goto: bool,
    ) -> Result<Flow, Problem> {
        let Some(i) = table.chains.iter().position(|c| c.name.text == name.text) else {
            return Err(Problem::new(
                name,
                Code::UnknownReference,
                format!("no chain `{}` in this table", name.text),
                "name a regular chain of the same table",
            ));
        };
        if table.chains[i].base.is_some() {
            return Err(bad(
                name,
                format!("`{}` is a base chain: rules cannot jump to it", name.text),
                "jump to a regular chain",
            ));
        }
        let kind = match from {
            Role::Base(Slot::Filter(ChainName::Prerouting)) => {
                return Err(unsupported(
                    name,
                    "a jump or goto from a prerouting filter chain",
                ));
            }
            Role::Base(Slot::Filter(ChainName::RawPrerouting | ChainName::RawOutput)) => {
                return Err(unsupported(
                    name,
                    "a jump or goto from a chain before conntrack (the raw table)",
                ));
            }
            Role::Base(Slot::Filter(_)) | Role::User(Kind::Filter, _) => Kind::Filter,
            _ => Kind::Nat,
        };
        match roles.get(i) {
            Some(Role::User(k, id)) if *k == kind => Ok(if goto {
                Flow::Goto(*id)
            } else {
                Flow::Jump(*id)
            }),
            _ => Err(unsupported(
                name,
                "a jump to a chain that is also reached from the other kind of base chain",
            )),
        }
    }

    /// No jump loop and no nesting deeper than [`MAX_DEPTH`] below a base chain (nf_tables
    /// refuses both: "Too many links").
    fn check_jumps(&mut self) {
        let flows = |targets: Vec<Flow>| -> Vec<usize> {
            targets
                .into_iter()
                .filter_map(|f| match f {
                    Flow::Jump(id) | Flow::Goto(id) => Some(usize::from(id.0)),
                    Flow::Return => None,
                })
                .collect()
        };
        let filter_of = |rules: &[FilterRule]| {
            flows(
                rules
                    .iter()
                    .filter_map(|r| match r.target {
                        RuleTarget::Flow(f) => Some(f),
                        _ => None,
                    })
                    .collect(),
            )
        };
        let nat_of = |rules: &[NatRule]| {
            flows(
                rules
                    .iter()
                    .filter_map(|r| match r.action {
                        NatAction::Flow(f) => Some(f),
                        _ => None,
                    })
                    .collect(),
            )
        };
        let nf = &self.nf;
        let checks = [
            (
                nf.filter_chains
                    .iter()
                    .map(|c| filter_of(&c.rules))
                    .collect::<Vec<_>>(),
                [&nf.input, &nf.forward, &nf.output]
                    .iter()
                    .flat_map(|c| filter_of(&c.rules))
                    .collect::<Vec<_>>(),
                Kind::Filter,
            ),
            (
                nf.nat_chains.iter().map(|c| nat_of(&c.rules)).collect(),
                nat_of(&nf.nat),
                Kind::Nat,
            ),
        ];
        for (edges, roots, kind) in checks {
            for root in roots {
                let mut path = Vec::new();
                if let Some((i, looped)) = visit(&edges, root, 1, &mut path) {
                    let name = match kind {
                        Kind::Filter => &self.nf.filter_chains[i].name,
                        Kind::Nat => &self.nf.nat_chains[i].name,
                    };
                    let Some(word) = self.names.get(&(kind, name.clone())).cloned() else {
                        return;
                    };
                    let what = if looped {
                        "the jumps loop through this chain".to_owned()
                    } else {
                        format!("jumps and gotos nest deeper than {MAX_DEPTH} chains here")
                    };
                    self.problems.push(bad(
                        &word,
                        format!("chain `{}`: {what}", word.text),
                        "the kernel refuses such a rule set (Too many links)",
                    ));
                    return;
                }
            }
        }
    }
}

/// Depth-first from chain `at`: the chain where a loop closes or the nesting is too deep.
fn visit(
    edges: &[Vec<usize>],
    at: usize,
    depth: usize,
    path: &mut Vec<usize>,
) -> Option<(usize, bool)> {
    if path.contains(&at) {
        return Some((at, true));
    }
    if depth > MAX_DEPTH {
        return Some((at, false));
    }
    path.push(at);
    for next in edges.get(at).map_or(&[][..], |e| &e[..]) {
        if let Some(bad) = visit(edges, *next, depth + 1, path) {
            return Some(bad);
        }
    }
    path.pop();
    None
}

/// nft's `iifname` never matches where a packet has no incoming interface (output,
/// postrouting), nor `oifname` where it has no outgoing one (prerouting, input); iptables
/// refuses both, and so does the model.
fn interfaces(role: Role, rule: &ReadRule) -> Result<(), Problem> {
    let (no_in, no_out) = match role {
        Role::Base(
            Slot::Filter(ChainName::Output | ChainName::RawOutput)
            | Slot::Nat(NatHook::Output | NatHook::Postrouting),
        ) => (true, false),
        Role::Base(
            Slot::Filter(ChainName::Input | ChainName::Prerouting | ChainName::RawPrerouting)
            | Slot::Nat(NatHook::Prerouting),
        ) => (false, true),
        _ => (false, false),
    };
    match (&rule.in_at, &rule.out_at) {
        (Some(w), _) if no_in => Err(bad(
            w,
            "packets here have no incoming interface",
            format!("remove `{}`: it never matches at this hook", w.text),
        )),
        (_, Some(w)) if no_out => Err(bad(
            w,
            "packets here have no outgoing interface",
            format!("remove `{}`: it never matches at this hook", w.text),
        )),
        _ => Ok(()),
    }
}

fn filter_target(step: &Step, flow: Option<Flow>, prerouting: bool) -> Result<RuleTarget, Problem> {
    let refuse = |what: &str| Err(unsupported(&step.at, what));
    Ok(match &step.action {
        Action::Accept => RuleTarget::Verdict(Verdict::Accept),
        Action::Drop => RuleTarget::Verdict(Verdict::Drop),
        Action::Reject(_) if prerouting => return refuse("a reject in a prerouting chain"),
        Action::Reject(with) => RuleTarget::Verdict(Verdict::Reject(*with)),
        Action::Return => RuleTarget::Flow(Flow::Return),
        Action::Mark(_) | Action::ConnMark(_) if prerouting => {
            return refuse("a mark set in a prerouting filter chain");
        }
        Action::Mark(set) => RuleTarget::Effect(Effect::Mark(*set)),
        Action::ConnMark(op) => RuleTarget::Effect(Effect::ConnMark(*op)),
        Action::Log(options) => RuleTarget::Effect(Effect::Log(options.clone())),
        Action::Count => RuleTarget::Effect(Effect::Count),
        Action::Jump(_) | Action::Goto(_) => match flow {
            Some(f) => RuleTarget::Flow(f),
            None => return refuse("this jump"),
        },
        Action::Dnat(..) | Action::Snat(..) | Action::Masquerade(_) => {
            return Err(bad(
                &step.at,
                format!("`{}` in a filter chain", step.at.text),
                "translate in a `type nat` chain (nft refuses it elsewhere)",
            ));
        }
    })
}

/// A statement of a chain before conntrack (the raw table's place): verdicts, `return` and
/// `log`; a match on the connection is refused (conntrack has not seen the packet yet), and so
/// are marks, rejects and jumps, as in the raw table of iptables-save text.
fn raw_target(step: &Step) -> Result<RuleTarget, Problem> {
    let m = &step.matches;
    if !m.states.is_any() || !m.not_states.is_any() || m.status.is_some() || m.connmark.is_some() {
        return Err(unsupported(
            &step.at,
            "a match on the connection before conntrack (the raw table)",
        ));
    }
    match &step.action {
        Action::Accept => Ok(RuleTarget::Verdict(Verdict::Accept)),
        Action::Drop => Ok(RuleTarget::Verdict(Verdict::Drop)),
        Action::Return => Ok(RuleTarget::Flow(Flow::Return)),
        Action::Log(options) => Ok(RuleTarget::Effect(Effect::Log(options.clone()))),
        Action::Count => Ok(RuleTarget::Effect(Effect::Count)),
        Action::Dnat(..) | Action::Snat(..) | Action::Masquerade(_) => Err(bad(
            &step.at,
            format!("`{}` in a filter chain", step.at.text),
            "translate in a `type nat` chain (nft refuses it elsewhere)",
        )),
        _ => Err(unsupported(
            &step.at,
            &format!("`{}` before conntrack (the raw table)", step.at.text),
        )),
    }
}

/// The nat hooks a translation is valid under (nft_nat's and nft_masq's hook checks).
fn allowed(action: &NatAction) -> &'static [NatHook] {
    match action {
        NatAction::Dnat(..) => &[NatHook::Prerouting, NatHook::Output],
        NatAction::Snat(..) | NatAction::Masquerade(_) => &[NatHook::Postrouting],
        _ => &[NatHook::Prerouting, NatHook::Output, NatHook::Postrouting],
    }
}

fn nat_action(step: &Step, flow: Option<Flow>, hooks: &[NatHook]) -> Result<NatAction, Problem> {
    let action = match &step.action {
        Action::Accept => NatAction::Accept,
        Action::Drop | Action::Reject(_) => {
            return Err(unsupported(
                &step.at,
                &format!(
                    "`{}` in a nat chain (the model's nat chains translate or accept)",
                    step.at.text
                ),
            ));
        }
        Action::Return => NatAction::Flow(Flow::Return),
        Action::Jump(_) | Action::Goto(_) => match flow {
            Some(f) => NatAction::Flow(f),
            None => return Err(unsupported(&step.at, "this jump")),
        },
        Action::Mark(set) => NatAction::Effect(Effect::Mark(*set)),
        Action::ConnMark(op) => NatAction::Effect(Effect::ConnMark(*op)),
        Action::Log(options) => NatAction::Effect(Effect::Log(options.clone())),
        Action::Count => NatAction::Effect(Effect::Count),
        Action::Dnat(a, p) => NatAction::Dnat(*a, *p),
        Action::Snat(a, f) => NatAction::Snat(*a, *f),
        Action::Masquerade(f) => NatAction::Masquerade(*f),
    };
    if let Some(h) = hooks.iter().find(|h| !allowed(&action).contains(h)) {
        let names: Vec<String> = allowed(&action)
            .iter()
            .map(|h| h.chain_name().to_ascii_lowercase())
            .collect();
        return Err(bad(
            &step.at,
            format!(
                "`{}` is not valid at hook {}",
                step.at.text,
                h.chain_name().to_ascii_lowercase()
            ),
            format!(
                "put it in a nat chain at {} (the kernel refuses it elsewhere)",
                names.join(" or ")
            ),
        ));
    }
    Ok(action)
}

fn filter_rule(step: &Step, target: RuleTarget, origin: &Origin, rule: &ReadRule) -> FilterRule {
    FilterRule {
        matches: step.matches.clone(),
        target,
        origin: origin.clone(),
        comment: rule.comment.clone(),
        platform_fix: None,
    }
}

fn nat_rule(
    hook: NatHook,
    step: &Step,
    action: NatAction,
    origin: &Origin,
    rule: &ReadRule,
) -> NatRule {
    NatRule {
        hook,
        matches: step.matches.clone(),
        action,
        origin: origin.clone(),
        comment: rule.comment.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn lowered(text: &str) -> Result<Lowered, Vec<Problem>> {
        let tables = parse(text).expect("parses");
        lower(
            &tables,
            &|name| match name {
                "eth0" => Some(IfaceId(0)),
                "wan0" => Some(IfaceId(1)),
                "lo" => Some(IfaceId::LOOPBACK),
                _ => None,
            },
            &|_| Origin::default(),
        )
    }

    fn refused(text: &str) -> Vec<Problem> {
        lowered(text).expect_err(text)
    }

    #[test]
    fn base_chains_land_on_the_model_chains_by_type_and_hook() {
        let l = lowered(
            "table inet f {
  chain i { type filter hook input priority filter; policy drop; accept }
  chain p { type filter hook prerouting priority mangle; drop }
  chain o { type filter hook output priority 10; policy accept; }
  chain unused_route { type route hook output priority mangle; policy accept; }
}
table ip nat {
  chain pre { type nat hook prerouting priority dstnat; tcp dport 1 dnat to 10.0.0.1 }
  chain post { type nat hook postrouting priority srcnat; masquerade }
  chain in { type nat hook input priority 100; policy accept; }
}",
        )
        .expect("lowers");
        let nf = &l.nf;
        assert_eq!((nf.input.policy, nf.input.rules.len()), (Verdict::Drop, 1));
        assert_eq!(nf.prerouting.rules.len(), 1);
        assert_eq!(nf.output.rules.len(), 0);
        assert_eq!(
            nf.nat.iter().map(|r| r.hook).collect::<Vec<_>>(),
            [NatHook::Prerouting, NatHook::Postrouting]
        );
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn regular_chains_join_the_table_of_the_base_chains_that_reach_them() {
        let l = lowered(
            "table ip t {
  chain input { type filter hook input priority 0; jump a }
  chain a { goto b }
  chain b { return }
  chain pre { type nat hook prerouting priority -100; jump n }
  chain n { dnat to 10.0.0.2 }
}",
        )
        .expect("lowers");
        let names =
            |c: &[UserChain<FilterRule>]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&l.nf.filter_chains), ["a", "b"]);
        assert_eq!(l.nf.nat_chains.len(), 1);
        assert_eq!(
            l.nf.filter_chains[0].rules[0].target,
            RuleTarget::Flow(Flow::Goto(ChainId(1)))
        );
        let e = refused(
            "table ip t {
  chain input { type filter hook input priority 0; jump a }
  chain pre { type nat hook prerouting priority -100; jump a }
  chain a { return }
}",
        );
        assert_eq!((e[0].code, e[0].at.text.as_str()), (Code::Unsupported, "a"));
    }

    #[test]
    fn two_base_chains_on_one_hook_are_refused_naming_both() {
        let e = refused(
            "table inet a { chain x { type filter hook input priority 0; drop } }
table ip b { chain y { type filter hook input priority 10; accept } }",
        );
        assert_eq!(e[0].code, Code::Unsupported);
        assert!(
            e[0].message.contains("`y`") && e[0].message.contains("`x` (line 1)"),
            "{e:?}"
        );
        // An empty one with policy accept changes nothing and is left out.
        assert!(
            lowered(
                "table inet a { chain x { type filter hook input priority 0; drop } }
table ip b { chain y { type filter hook input priority 10; policy accept; } }"
            )
            .is_ok()
        );
    }

    #[test]
    fn priorities_outside_the_model_order_are_refused() {
        for text in [
            "table ip t { chain p { type filter hook prerouting priority dstnat; drop } }",
            "table ip t { chain p { type filter hook input priority raw; drop } }",
            "table ip t { chain o { type filter hook output priority mangle; drop } }",
            "table ip t { chain n { type nat hook input priority 100; accept } }",
            "table ip t { chain f { type filter hook postrouting priority 0; drop } }",
        ] {
            assert_eq!(refused(text)[0].code, Code::Unsupported, "{text}");
        }
    }

    #[test]
    fn families_other_than_ip_and_inet_are_warned_about_or_refused() {
        let l = lowered(
            "table ip6 v6 { chain i { type filter hook input priority 0; policy drop; } }
table arp a { chain i { type filter hook input priority 0; } }
table netdev n { chain i { type filter hook ingress device \"eth0\" priority 0; drop } }",
        )
        .expect("lowers");
        assert_eq!(l.warnings.len(), 3);
        assert!(l.warnings[0].message.contains("`ip6 v6`"));
        assert_eq!(l.nf, Netfilter::default());
        let e =
            refused("table bridge br { chain f { type filter hook forward priority 0; drop } }");
        assert_eq!(
            (e[0].code, e[0].at.text.as_str()),
            (Code::Unsupported, "bridge")
        );
        let e = refused("table inet t { set s { type ipv4_addr; } }");
        assert_eq!(e[0].at.text, "set");
    }

    #[test]
    fn statements_only_where_the_hook_takes_them() {
        for (text, word) in [
            (
                "table ip t { chain i { type filter hook input priority 0; oifname \"eth0\" accept } }",
                "oifname",
            ),
            (
                "table ip t { chain o { type filter hook output priority 0; iif \"eth0\" accept } }",
                "iif",
            ),
            (
                "table ip t { chain i { type filter hook input priority 0; masquerade } }",
                "masquerade",
            ),
            (
                "table ip t { chain n { type nat hook prerouting priority -100; masquerade } }",
                "masquerade",
            ),
            (
                "table ip t { chain n { type nat hook output priority -100; drop } }",
                "drop",
            ),
            (
                "table ip t { chain n { type nat hook postrouting priority 100; policy drop; } }",
                "drop",
            ),
            (
                "table ip t { chain p { type filter hook prerouting priority -150; reject } }",
                "reject",
            ),
            (
                "table ip t { chain i { type filter hook input priority 0; jump nowhere } }",
                "nowhere",
            ),
            (
                "table ip t { chain i { type filter hook input priority 0; jump i } }",
                "i",
            ),
        ] {
            let e = refused(text);
            assert_eq!(e[0].at.text, word, "{text}: {e:?}");
        }
    }

    #[test]
    fn a_jump_loop_is_refused() {
        let e = refused(
            "table ip t {
  chain i { type filter hook input priority 0; jump a }
  chain a { jump b }
  chain b { goto a }
}",
        );
        assert!(e[0].message.contains("loop"), "{e:?}");
    }

    #[test]
    fn ipv6_only_rules_are_left_out() {
        let l = lowered(
            "table inet t { chain i { type filter hook input priority 0; policy drop; ip6 saddr ::1 accept; meta nfproto ipv6 drop; accept } }",
        )
        .expect("lowers");
        assert_eq!(l.nf.input.rules.len(), 1);
    }
}
