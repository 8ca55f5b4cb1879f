//! Tables of `iptables-save` text lowered into a node's [`Netfilter`]: the filter and nat
//! tables whole, the mangle table's PREROUTING chain, the raw table's PREROUTING and OUTPUT
//! (without user chains, and without what needs conntrack), an empty security table; chains
//! declared before use; targets only where iptables and the kernel take them (no DROP in nat,
//! DNAT only under PREROUTING/OUTPUT, SNAT and MASQUERADE only under POSTROUTING, REJECT only
//! under INPUT/FORWARD/OUTPUT); no jump loop reachable from a built-in chain and no nesting
//! deeper than [`MAX_DEPTH`]. docs/netfilter.md, "Reading iptables-save text".

use indexmap::IndexMap;

use super::parse::{Table, Word};
use super::rule::{Problem, ReadRule, TargetSpec, read_rule};
use crate::format::Code;
use crate::model::{
    Chain, ChainId, ChainName, Effect, FilterRule, Flow, IfaceId, MAX_DEPTH, NatAction, NatHook,
    NatRule, Netfilter, Origin, RuleTarget, UserChain, Verdict,
};

/// Which table a chain is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Filter,
    Nat,
    Mangle,
    Raw,
}

/// Lowers the tables; `iface` resolves the node's interface names (`lo` included), `origin`
/// places a word of the text.
pub fn lower(
    tables: &[Table],
    iface: &dyn Fn(&str) -> Option<IfaceId>,
    origin: &dyn Fn(&Word) -> Origin,
) -> Result<Netfilter, Vec<Problem>> {
    let mut nf = Netfilter::default();
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for table in tables {
        let name = table.name.text.as_str();
        if seen.contains(&name) {
            problems.push(Problem::new(
                &table.name,
                Code::DuplicateName,
                format!("table `{name}` appears twice"),
                "merge the two into one `*{name}` … `COMMIT`",
            ));
            continue;
        }
        seen.push(name);
        let kind = match name {
            "filter" => Kind::Filter,
            "nat" => Kind::Nat,
            "mangle" => Kind::Mangle,
            "raw" => Kind::Raw,
            "security" => {
                empty_table(table, &mut problems);
                continue;
            }
            other => {
                problems.push(Problem::new(
                    &table.name,
                    Code::BadValue,
                    format!("unknown table `{other}`"),
                    "iptables has the tables filter, nat, mangle, raw and security",
                ));
                continue;
            }
        };
        let mut t = TableLowering {
            kind,
            nf: &mut nf,
            problems: &mut problems,
            iface,
            origin,
            chains: IndexMap::new(),
        };
        t.declare(table);
        for rule in &table.rules {
            t.rule(rule.chain.clone(), &rule.args);
        }
        t.check_graph();
    }
    if problems.is_empty() {
        Ok(nf)
    } else {
        Err(problems)
    }
}

/// security: only its built-in chains, with ACCEPT and no rules.
fn empty_table(table: &Table, problems: &mut Vec<Problem>) {
    let what = format!("the {} table", table.name.text);
    for chain in &table.chains {
        match &chain.policy {
            Some(p) if p.text == "ACCEPT" => {}
            _ => problems.push(Problem::new(
                &chain.name,
                Code::Unsupported,
                format!(
                    "{what} is not modelled: only its built-in chains with policy ACCEPT are taken"
                ),
                "remove the chain, or leave the table out",
            )),
        }
    }
    if let Some(rule) = table.rules.first() {
        problems.push(Problem::new(
            &rule.chain,
            Code::Unsupported,
            format!("rules of {what} are not modelled"),
            "remove them, or leave the table out",
        ));
    }
}

/// A declared chain of the table being lowered.
#[derive(Debug, Clone)]
enum Declared {
    Filter(ChainName),
    Nat(NatHook),
    /// nat INPUT and mangle chains other than PREROUTING: declared, but rules are refused.
    Unmodelled,
    User(ChainId),
}

struct TableLowering<'a> {
    kind: Kind,
    nf: &'a mut Netfilter,
    problems: &'a mut Vec<Problem>,
    iface: &'a dyn Fn(&str) -> Option<IfaceId>,
    origin: &'a dyn Fn(&Word) -> Origin,
    chains: IndexMap<String, (Declared, Word)>,
}

impl TableLowering<'_> {
    fn builtin(&self, name: &str) -> Option<Declared> {
        Some(match (self.kind, name) {
            (Kind::Filter, "INPUT") => Declared::Filter(ChainName::Input),
            (Kind::Filter, "FORWARD") => Declared::Filter(ChainName::Forward),
            (Kind::Filter, "OUTPUT") => Declared::Filter(ChainName::Output),
            (Kind::Nat, "PREROUTING") => Declared::Nat(NatHook::Prerouting),
            (Kind::Nat, "OUTPUT") => Declared::Nat(NatHook::Output),
            (Kind::Nat, "POSTROUTING") => Declared::Nat(NatHook::Postrouting),
            (Kind::Nat, "INPUT") => Declared::Unmodelled,
            (Kind::Mangle, "PREROUTING") => Declared::Filter(ChainName::Prerouting),
            (Kind::Mangle, "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING") => Declared::Unmodelled,
            (Kind::Raw, "PREROUTING") => Declared::Filter(ChainName::RawPrerouting),
            (Kind::Raw, "OUTPUT") => Declared::Filter(ChainName::RawOutput),
            _ => return None,
        })
    }

    fn declare(&mut self, table: &Table) {
        for line in &table.chains {
            let name = line.name.text.as_str();
            if self.chains.contains_key(name) {
                self.problems.push(Problem::new(
                    &line.name,
                    Code::DuplicateName,
                    format!("chain `{name}` is declared twice"),
                    "declare each chain once",
                ));
                continue;
            }
            let declared = match (self.builtin(name), &line.policy) {
                (Some(d), Some(policy)) => {
                    self.policy(&d, policy);
                    d
                }
                (Some(_), None) => {
                    self.problems.push(Problem::new(
                        &line.name,
                        Code::BadValue,
                        format!("the built-in chain `{name}` needs a policy"),
                        "write ACCEPT or DROP in place of `-`",
                    ));
                    continue;
                }
                (None, Some(policy)) => {
                    self.problems.push(Problem::new(policy, Code::BadValue, format!("`{name}` is not a built-in chain of the {} table, and only built-in chains have a policy", table.name.text), "write `-` for a user chain"));
                    continue;
                }
                (None, None) => match self.user_chain(&line.name) {
                    Some(id) => Declared::User(id),
                    None => continue,
                },
            };
            self.chains
                .insert(name.to_owned(), (declared, line.name.clone()));
        }
    }

    fn policy(&mut self, chain: &Declared, policy: &Word) {
        let verdict = match policy.text.as_str() {
            "ACCEPT" => Verdict::Accept,
            "DROP" if self.kind != Kind::Nat => Verdict::Drop,
            "DROP" => {
                self.problems.push(Problem::new(
                    policy,
                    Code::BadValue,
                    "the nat table is not intended for filtering: its policies are ACCEPT",
                    "write ACCEPT (iptables says: the use of DROP is therefore inhibited)",
                ));
                return;
            }
            other => {
                self.problems.push(Problem::new(
                    policy,
                    Code::BadValue,
                    format!("`{other}` is not a policy"),
                    "write ACCEPT or DROP",
                ));
                return;
            }
        };
        match chain {
            Declared::Filter(name) => {
                let origin = (self.origin)(policy);
                let c = self.filter_chain(*name);
                c.policy = verdict;
                c.policy_origin = origin;
            }
            Declared::Unmodelled if verdict != Verdict::Accept => {
                self.problems.push(Problem::new(
                    policy,
                    Code::Unsupported,
                    "a DROP policy on this chain is not modelled",
                    "write ACCEPT",
                ));
            }
            _ => {}
        }
    }

    fn filter_chain(&mut self, name: ChainName) -> &mut Chain {
        self.nf.chain_mut(name)
    }

    /// A new user chain of the table (iptables: names under 29 characters).
    fn user_chain(&mut self, name: &Word) -> Option<ChainId> {
        if name.text.len() > 28
            || name.text.is_empty()
            || name.text.starts_with(['-', '!'])
            || name.text.contains(char::is_whitespace)
        {
            self.problems.push(Problem::new(
                name,
                Code::BadName,
                format!("chain name `{}` is not one iptables takes", name.text),
                "use at most 28 characters, none of them blank, not starting with `-` or `!`",
            ));
            return None;
        }
        let origin = (self.origin)(name);
        let id = match self.kind {
            Kind::Filter => push(&mut self.nf.filter_chains, &name.text, origin),
            Kind::Nat => push(&mut self.nf.nat_chains, &name.text, origin),
            Kind::Mangle => {
                self.problems.push(Problem::new(
                    name,
                    Code::Unsupported,
                    "user chains of the mangle table are not modelled",
                    "keep mangle PREROUTING's rules in that chain",
                ));
                return None;
            }
            Kind::Raw => {
                self.problems.push(Problem::new(
                    name,
                    Code::Unsupported,
                    "user chains of the raw table are not modelled",
                    "keep the raw table's rules in PREROUTING and OUTPUT",
                ));
                return None;
            }
        };
        if id.is_none() {
            self.problems.push(Problem::new(
                name,
                Code::BadValue,
                "too many user chains",
                "a table holds at most 65535 user chains",
            ));
        }
        id
    }

    fn rule(&mut self, chain: Word, args: &[Word]) {
        let Some((declared, _)) = self.chains.get(&chain.text).cloned() else {
            self.problems.push(Problem::new(&chain, Code::UnknownReference, format!("chain `{}` does not exist", chain.text), format!("declare it first with a line `:{} - [0:0]` (iptables-restore says: Chain '{}' does not exist)", chain.text, chain.text)));
            return;
        };
        let read = match read_rule(&chain, args, self.iface) {
            Ok(read) => read,
            Err(p) => return self.problems.push(p),
        };
        if let Err(p) = self.interfaces(&declared, &read) {
            return self.problems.push(p);
        }
        let origin = (self.origin)(&chain);
        match declared {
            Declared::Unmodelled => self.problems.push(Problem::new(
                &chain,
                Code::Unsupported,
                format!("rules in {} of this table are not modelled", chain.text),
                "leave the chain empty",
            )),
            Declared::Filter(name) if name.is_raw() => {
                if let Some(rule) = self.raw_rule(&chain, read, origin) {
                    self.filter_chain(name).rules.push(rule);
                }
            }
            Declared::Filter(name) => {
                if let Some(rule) = self.filter_rule(read, origin, name == ChainName::Prerouting) {
                    self.filter_chain(name).rules.push(rule);
                }
            }
            Declared::User(id) if self.kind == Kind::Filter => {
                if let Some(rule) = self.filter_rule(read, origin, false) {
                    self.nf.filter_chains[usize::from(id.0)].rules.push(rule);
                }
            }
            Declared::Nat(hook) => {
                let word = read.target_word.clone();
                if let Some(rule) = self.nat_rule(read, origin, hook) {
                    if !allowed_hooks(&rule.action).contains(&hook) {
                        let valid: Vec<&str> = allowed_hooks(&rule.action)
                            .iter()
                            .map(|h| h.chain_name())
                            .collect();
                        return self.problems.push(Problem::new(
                            &word,
                            Code::BadValue,
                            format!("{} is not valid in {}", word.text, hook.chain_name()),
                            format!(
                                "put it in {} (the kernel refuses it elsewhere)",
                                valid.join(" or ")
                            ),
                        ));
                    }
                    self.nf.nat.push(rule);
                }
            }
            Declared::User(id) => {
                if let Some(rule) = self.nat_rule(read, origin, NatHook::Prerouting) {
                    self.nf.nat_chains[usize::from(id.0)].rules.push(rule);
                }
            }
        }
    }

    /// iptables: "Can't use -i with OUTPUT", "Can't use -o with INPUT" (built-in chains).
    fn interfaces(&self, declared: &Declared, read: &ReadRule) -> Result<(), Problem> {
        let (no_in, no_out) = match declared {
            Declared::Filter(ChainName::Output | ChainName::RawOutput)
            | Declared::Nat(NatHook::Output | NatHook::Postrouting) => (true, false),
            Declared::Filter(
                ChainName::Input | ChainName::Prerouting | ChainName::RawPrerouting,
            )
            | Declared::Nat(NatHook::Prerouting) => (false, true),
            _ => (false, false),
        };
        let refuse = |w: &Word, flag: &str| {
            Err(Problem::new(
                w,
                Code::BadValue,
                format!(
                    "packets here have no {} interface",
                    if flag == "-i" { "incoming" } else { "outgoing" }
                ),
                format!("remove `{flag}` (iptables says: Can't use {flag} with this chain)"),
            ))
        };
        match (&read.in_word, &read.out_word) {
            (Some(w), _) if no_in => refuse(w, "-i"),
            (_, Some(w)) if no_out => refuse(w, "-o"),
            _ => Ok(()),
        }
    }

    fn jump(&mut self, name: &Word, goto: bool) -> Option<Flow> {
        match self.chains.get(&name.text) {
            Some((Declared::User(id), _)) => Some(if goto {
                Flow::Goto(*id)
            } else {
                Flow::Jump(*id)
            }),
            Some(_) => {
                self.problems.push(Problem::new(
                    name,
                    Code::BadValue,
                    format!(
                        "`{}` is a built-in chain: rules cannot jump to it",
                        name.text
                    ),
                    "jump to a user chain",
                ));
                None
            }
            None => {
                let what = if goto
                    || name
                        .text
                        .chars()
                        .any(|c| c.is_ascii_lowercase() || c == '-')
                {
                    "chain"
                } else {
                    "chain or modelled target"
                };
                self.problems.push(Problem::new(name, Code::UnknownReference, format!("no {what} `{}` in this table", name.text), "declare the chain with a line `:NAME - [0:0]`; targets such as NFLOG, REDIRECT or TCPMSS are not modelled"));
                None
            }
        }
    }

    fn filter_rule(&mut self, read: ReadRule, origin: Origin, mangle: bool) -> Option<FilterRule> {
        let target = match read.target {
            TargetSpec::Accept => RuleTarget::Verdict(Verdict::Accept),
            TargetSpec::Drop => RuleTarget::Verdict(Verdict::Drop),
            TargetSpec::Reject(_) if mangle => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::BadValue,
                    "REJECT is only valid in INPUT, FORWARD and OUTPUT",
                    "drop the packet here, or reject it in the filter table",
                ));
                return None;
            }
            TargetSpec::Reject(with) => RuleTarget::Verdict(Verdict::Reject(with)),
            TargetSpec::Return => RuleTarget::Flow(Flow::Return),
            TargetSpec::Mark(_) | TargetSpec::ConnMark(_) if mangle => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::Unsupported,
                    "marks set in mangle PREROUTING are not modelled",
                    "set the mark in the nat or filter table",
                ));
                return None;
            }
            TargetSpec::Mark(set) => RuleTarget::Effect(Effect::Mark(set)),
            TargetSpec::ConnMark(op) => RuleTarget::Effect(Effect::ConnMark(op)),
            TargetSpec::Log(options) => RuleTarget::Effect(Effect::Log(options)),
            TargetSpec::Count => RuleTarget::Effect(Effect::Count),
            TargetSpec::Chain { .. } if mangle => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::Unsupported,
                    "jumps in the mangle table are not modelled",
                    "keep mangle PREROUTING's rules in that chain",
                ));
                return None;
            }
            TargetSpec::Chain { ref name, goto } => RuleTarget::Flow(self.jump(name, goto)?),
            TargetSpec::Dnat(..) | TargetSpec::Snat(..) | TargetSpec::Masquerade(_) => {
                return self.nat_only(&read.target_word);
            }
        };
        Some(filter_rule(read.matches, read.comment, target, origin))
    }

    /// A rule of the raw table: it runs before conntrack, so a match on the connection is
    /// refused (the kernel would see every packet INVALID there), and so are what the model
    /// keeps for later chains (marks) and the raw table's user chains; REJECT is refused as
    /// the kernel refuses it in PREROUTING (and not modelled in OUTPUT).
    fn raw_rule(&mut self, chain: &Word, read: ReadRule, origin: Origin) -> Option<FilterRule> {
        let m = &read.matches;
        if !m.states.is_any()
            || !m.not_states.is_any()
            || m.status.is_some()
            || m.connmark.is_some()
        {
            self.problems.push(Problem::new(
                chain,
                Code::Unsupported,
                "connection matches in the raw table are not modelled: conntrack has not seen the packet yet",
                "match on the connection in the mangle, nat or filter table",
            ));
            return None;
        }
        let target = match read.target {
            TargetSpec::Accept => RuleTarget::Verdict(Verdict::Accept),
            TargetSpec::Drop => RuleTarget::Verdict(Verdict::Drop),
            TargetSpec::Return => RuleTarget::Flow(Flow::Return),
            TargetSpec::Log(options) => RuleTarget::Effect(Effect::Log(options)),
            TargetSpec::Count => RuleTarget::Effect(Effect::Count),
            TargetSpec::Reject(_) => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::Unsupported,
                    "REJECT in the raw table is not modelled",
                    "drop the packet here, or reject it in the filter table",
                ));
                return None;
            }
            TargetSpec::Mark(_) | TargetSpec::ConnMark(_) => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::Unsupported,
                    "marks set in the raw table are not modelled",
                    "set the mark in the nat or filter table",
                ));
                return None;
            }
            TargetSpec::Chain { .. } => {
                self.problems.push(Problem::new(
                    &read.target_word,
                    Code::Unsupported,
                    "jumps in the raw table are not modelled",
                    "keep the raw table's rules in PREROUTING and OUTPUT",
                ));
                return None;
            }
            TargetSpec::Dnat(..) | TargetSpec::Snat(..) | TargetSpec::Masquerade(_) => {
                return self.nat_only(&read.target_word);
            }
        };
        Some(filter_rule(read.matches, read.comment, target, origin))
    }

    /// A NAT target outside the nat table: refused as iptables refuses it.
    fn nat_only<T>(&mut self, target: &Word) -> Option<T> {
        self.problems.push(Problem::new(
            target,
            Code::BadValue,
            format!("{} is only valid in the nat table", target.text),
            "move the rule into `*nat`",
        ));
        None
    }

    fn nat_rule(&mut self, read: ReadRule, origin: Origin, hook: NatHook) -> Option<NatRule> {
        let action = match read.target {
            TargetSpec::Accept => NatAction::Accept,
            TargetSpec::Drop | TargetSpec::Reject(_) => {
                self.problems.push(Problem::new(&read.target_word, Code::BadValue, format!("the nat table is not intended for filtering: {} is refused there", read.target_word.text), "filter in the filter table (iptables says: the use of DROP is therefore inhibited)"));
                return None;
            }
            TargetSpec::Return => NatAction::Flow(Flow::Return),
            TargetSpec::Dnat(addr, port) => NatAction::Dnat(addr, port),
            TargetSpec::Snat(addr, flags) => NatAction::Snat(addr, flags),
            TargetSpec::Masquerade(flags) => NatAction::Masquerade(flags),
            TargetSpec::Mark(set) => NatAction::Effect(Effect::Mark(set)),
            TargetSpec::ConnMark(op) => NatAction::Effect(Effect::ConnMark(op)),
            TargetSpec::Log(options) => NatAction::Effect(Effect::Log(options)),
            TargetSpec::Count => NatAction::Effect(Effect::Count),
            TargetSpec::Chain { ref name, goto } => NatAction::Flow(self.jump(name, goto)?),
        };
        Some(NatRule {
            hook,
            matches: read.matches,
            action,
            origin,
            comment: read.comment,
        })
    }

    /// No loop reachable from a built-in chain, no nesting deeper than [`MAX_DEPTH`], and
    /// translations only under the hooks that take them (the kernel's checks at load time).
    fn check_graph(&mut self) {
        if matches!(self.kind, Kind::Mangle | Kind::Raw) {
            return;
        }
        let words: Vec<Word> = self
            .chains
            .values()
            .filter(|(d, _)| matches!(d, Declared::User(_)))
            .map(|(_, w)| w.clone())
            .collect();
        let graph = Graph::of(self.nf, self.kind == Kind::Nat);
        let mut hooks: Vec<Vec<NatHook>> = vec![Vec::new(); graph.edges.len()];
        for (hook, flows) in &graph.roots {
            for flow in flows {
                let mut path = Vec::new();
                let Err(bad) = visit(&graph.edges, *flow, 1, &mut path, *hook, &mut hooks) else {
                    continue;
                };
                let (i, message) = match bad {
                    Bad::Loop(i) => (i, "the jumps loop through this chain".to_owned()),
                    Bad::Deep(i) => (
                        i,
                        format!("jumps and gotos nest deeper than {MAX_DEPTH} chains here"),
                    ),
                };
                if let Some(word) = words.get(i) {
                    self.problems.push(Problem::new(word, Code::BadValue, format!("chain `{}`: {message}", word.text), "a chain must not jump back to itself, directly or through others (the kernel refuses the rule set: RULE_APPEND failed (Too many links))"));
                }
                return;
            }
        }
        if self.kind == Kind::Nat {
            self.nat_hooks(&hooks, &words);
        }
    }

    /// A user chain that translates is reached only from the hooks that take its translation.
    fn nat_hooks(&mut self, hooks: &[Vec<NatHook>], words: &[Word]) {
        for (i, chain) in self.nf.nat_chains.iter().enumerate() {
            for rule in &chain.rules {
                let allowed = allowed_hooks(&rule.action);
                let (Some(bad), Some(word)) =
                    (hooks[i].iter().find(|h| !allowed.contains(h)), words.get(i))
                else {
                    continue;
                };
                let names: Vec<&str> = allowed.iter().map(|h| h.chain_name()).collect();
                self.problems.push(Problem::new(word, Code::BadValue, format!("chain `{}` is reached from {} but translates as only {} may", word.text, bad.chain_name(), names.join("/")), "DNAT belongs under PREROUTING or OUTPUT, SNAT and MASQUERADE under POSTROUTING (the kernel refuses the rule set otherwise)"));
                return;
            }
        }
    }
}

/// A filter rule of the text: its matches and comment, with `target`.
fn filter_rule(
    matches: crate::model::Match,
    comment: Option<String>,
    target: RuleTarget,
    origin: Origin,
) -> FilterRule {
    FilterRule {
        matches,
        target,
        origin,
        comment,
        platform_fix: None,
    }
}

/// The nat hooks a translation is valid under (xt_nat's hook masks); all for the rest.
fn allowed_hooks(action: &NatAction) -> &'static [NatHook] {
    match action {
        NatAction::Dnat(..) => &[NatHook::Prerouting, NatHook::Output],
        NatAction::Snat(..) | NatAction::Masquerade(_) => &[NatHook::Postrouting],
        _ => &[NatHook::Prerouting, NatHook::Output, NatHook::Postrouting],
    }
}

/// What is wrong with the jumps at a user chain.
enum Bad {
    Loop(usize),
    Deep(usize),
}

fn push<R>(chains: &mut Vec<UserChain<R>>, name: &str, origin: Origin) -> Option<ChainId> {
    let id = ChainId(u16::try_from(chains.len()).ok()?);
    chains.push(UserChain {
        name: name.to_owned(),
        rules: Vec::new(),
        origin,
    });
    Some(id)
}

/// The jumps of a table: for each user chain, the flows its rules take; the flows of each
/// built-in chain (with its nat hook).
struct Graph {
    edges: Vec<Vec<Flow>>,
    roots: Vec<(Option<NatHook>, Vec<Flow>)>,
}

impl Graph {
    fn of(nf: &Netfilter, nat: bool) -> Graph {
        let filter_flows = |rules: &[FilterRule]| -> Vec<Flow> {
            rules
                .iter()
                .filter_map(|r| match r.target {
                    RuleTarget::Flow(f) => Some(f),
                    _ => None,
                })
                .collect()
        };
        let nat_flows = |rules: &mut dyn Iterator<Item = &NatRule>| -> Vec<Flow> {
            rules
                .filter_map(|r| match r.action {
                    NatAction::Flow(f) => Some(f),
                    _ => None,
                })
                .collect()
        };
        if nat {
            Graph {
                edges: nf
                    .nat_chains
                    .iter()
                    .map(|c| nat_flows(&mut c.rules.iter()))
                    .collect(),
                roots: [NatHook::Prerouting, NatHook::Output, NatHook::Postrouting]
                    .into_iter()
                    .map(|h| {
                        (
                            Some(h),
                            nat_flows(&mut nf.nat.iter().filter(|r| r.hook == h)),
                        )
                    })
                    .collect(),
            }
        } else {
            Graph {
                edges: nf
                    .filter_chains
                    .iter()
                    .map(|c| filter_flows(&c.rules))
                    .collect(),
                roots: [&nf.input, &nf.forward, &nf.output]
                    .into_iter()
                    .map(|c| (None, filter_flows(&c.rules)))
                    .collect(),
            }
        }
    }
}

/// Depth-first from `flow`: records `hook` on every chain reached; what is wrong where, when
/// something is. Jumps and gotos both count towards nf_tables' depth.
fn visit(
    edges: &[Vec<Flow>],
    flow: Flow,
    depth: usize,
    path: &mut Vec<usize>,
    hook: Option<NatHook>,
    hooks: &mut [Vec<NatHook>],
) -> Result<(), Bad> {
    let (Flow::Jump(id) | Flow::Goto(id)) = flow else {
        return Ok(());
    };
    let i = usize::from(id.0);
    if path.contains(&i) {
        return Err(Bad::Loop(i));
    }
    if depth > MAX_DEPTH {
        return Err(Bad::Deep(i));
    }
    if let Some(h) = hook
        && let Some(seen) = hooks.get_mut(i)
        && !seen.contains(&h)
    {
        seen.push(h);
    }
    path.push(i);
    for next in edges.get(i).map_or(&[][..], |e| &e[..]) {
        visit(edges, *next, depth + 1, path, hook, hooks)?;
    }
    path.pop();
    Ok(())
}
