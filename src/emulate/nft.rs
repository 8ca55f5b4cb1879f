//! A node's netfilter model as one nftables ruleset, loaded atomically with `nft -f`. The
//! chains sit at the hooks and priorities of their iptables twins, so the kernel walks them in
//! the order the simulator does:
//!
//! | model chain | nftables chain | hook, priority |
//! |---|---|---|
//! | raw `prerouting` (Docker 28's direct-access drops), when it holds something | `raw_prerouting` | prerouting, -300 (raw) |
//! | raw `output`, when it holds something | `raw_output` | output, -300 (raw) |
//! | `prerouting` filter (security groups) | `prerouting` | prerouting, -150 (mangle) |
//! | NAT `prerouting` | `nat_prerouting` | prerouting, -100 (dstnat) |
//! | `input`, `forward`, `output` filters | `input`, `forward`, `output` | 0 (filter) |
//! | NAT `output` | `nat_output` | output, -100 |
//! | NAT `postrouting` | `nat_postrouting` | postrouting, 100 (srcnat) |
//! | user chain `i` of the filter (nat) table | `f_i` (`n_i`), its name in a comment | none |
//!
//! Rules keep the model's order; within a rule the matches come first and the random draw
//! (`numgen random`) last, so a packet draws only when everything else matched, as in the
//! engine. `-j`/`-g`/`RETURN` are nft's `jump`/`goto`/`return`, which walk chains as
//! `ipt_do_table` does (docs/netfilter.md, "Tables, chains and the walk"). A match that nft
//! cannot say in one rule (an "either port" multiport, conntrack states mixing NAT states with
//! others) becomes several rules whose conditions exclude each other, so a packet meets at most
//! one of them and the target acts at most once; a CONNMARK save or restore under masks nft
//! cannot combine becomes a jump to a helper chain `x_i` (docs/netfilter.md, "In nftables (the
//! emulator)").
//!
//! Nothing from the topology is spliced in as text: interface names go through [`quoted`]
//! (a double-quoted nft string that nft reads back as exactly that name, refused otherwise),
//! comments through [`comment`] (quotes, backslashes and control characters replaced); user
//! chains are named by their index.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{
    AddrRange, AddrTypes, Chain, ConnMarkOp, CtStatus, Effect, FilterRule, Flow, L4, MarkMatch,
    MarkSet, Match, Multiport, NatAction, NatFlags, NatHook, NatRule, Netfilter, Network, PortSide,
    Recent, RecentOp, RecentSide, RejectWith, RuleTarget as Target, SetMatch, States, Verdict,
};

use super::EmulateError;

/// The table every ruleset lives in.
pub const TABLE: &str = "reachlab";

/// How many `jump`/`goto` may nest below a base chain: the kernel refuses a table in which a
/// chain is reached through more (`NFT_JUMP_STACK_SIZE` is 16, the base chain taking one; a
/// table with a chain 16 jumps deep was refused on Linux 6.18).
pub const MAX_NFT_DEPTH: usize = 15;

/// The ruleset of one node, as `nft -f` input.
pub fn ruleset(net: &Network, nf: &Netfilter) -> Result<String, EmulateError> {
    let mut t = Lowering {
        net,
        chains: Vec::new(),
        helpers: Vec::new(),
        sets: recent_sets(nf)?,
    };
    for (i, c) in nf.filter_chains.iter().enumerate() {
        let mut chain = NftChain::user(format!("f_{i}"), &c.name);
        for rule in &c.rules {
            t.filter_rule(&mut chain, rule)?;
        }
        t.chains.push(chain);
    }
    for (i, c) in nf.nat_chains.iter().enumerate() {
        let mut chain = NftChain::user(format!("n_{i}"), &c.name);
        for rule in &c.rules {
            t.nat_rule(&mut chain, rule)?;
        }
        t.chains.push(chain);
    }
    // The raw table's chains, before conntrack (-200): only when they hold something, so that
    // a ruleset without them stays as it was.
    for (name, hook, chain) in [
        ("raw_prerouting", "prerouting", &nf.raw_prerouting),
        ("raw_output", "output", &nf.raw_output),
    ] {
        if !chain.rules.is_empty() || chain.policy != Verdict::Accept {
            t.filter_chain(name, hook, -300, chain)?;
        }
    }
    t.filter_chain("prerouting", "prerouting", -150, &nf.prerouting)?;
    t.nat_chain(
        "nat_prerouting",
        "prerouting",
        -100,
        nf,
        NatHook::Prerouting,
    )?;
    t.filter_chain("input", "input", 0, &nf.input)?;
    t.filter_chain("forward", "forward", 0, &nf.forward)?;
    t.filter_chain("output", "output", 0, &nf.output)?;
    t.nat_chain("nat_output", "output", -100, nf, NatHook::Output)?;
    t.nat_chain(
        "nat_postrouting",
        "postrouting",
        100,
        nf,
        NatHook::Postrouting,
    )?;
    t.check_depth()?;
    let mut out = format!("table ip {TABLE} {{\n");
    for (i, (_, timeout)) in t.sets.iter().enumerate() {
        let timeout = timeout.map_or(String::new(), |s| format!(" timeout {s}s;"));
        let flags = if timeout.is_empty() {
            "dynamic"
        } else {
            "dynamic,timeout"
        };
        let _ = writeln!(
            out,
            "  set r_{i} {{ type ipv4_addr; flags {flags};{timeout} }}"
        );
    }
    let helpers: Vec<NftChain> = t.helpers.into_iter().map(|(_, c)| c).collect();
    // User and helper chains first, then the base chains (nft also takes a jump to a chain
    // declared further down the file).
    let (base, user): (Vec<NftChain>, Vec<NftChain>) = t.chains.into_iter().partition(|c| c.base);
    for chain in user.iter().chain(helpers.as_slice()).chain(&base) {
        chain.write(&mut out);
    }
    out.push_str("}\n");
    Ok(out)
}

/// One nft chain being written.
struct NftChain {
    name: String,
    /// The first line: `type … hook …; policy …;` of a base chain, the comment of another.
    head: String,
    rules: Vec<String>,
    /// The chains its rules jump or go to.
    to: Vec<String>,
    base: bool,
}

impl NftChain {
    fn user(name: String, label: &str) -> Self {
        let head = comment(Some(label)).trim_start().to_owned();
        NftChain {
            name,
            head,
            rules: Vec::new(),
            to: Vec::new(),
            base: false,
        }
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "  chain {} {{", self.name);
        if !self.head.is_empty() {
            let _ = writeln!(out, "    {}", self.head);
        }
        for rule in &self.rules {
            let _ = writeln!(out, "    {rule}");
        }
        out.push_str("  }\n");
    }
}

/// What a rule does, as nft writes it.
struct Statement {
    text: String,
    /// The chain it jumps or goes to.
    to: Option<String>,
    /// Whether it needs a transport protocol named (a port in DNAT, a TCP reset).
    l4: bool,
}

impl Statement {
    fn plain(text: impl Into<String>) -> Self {
        Statement {
            text: text.into(),
            to: None,
            l4: false,
        }
    }
}

/// The state of one table's lowering.
struct Lowering<'a> {
    net: &'a Network,
    chains: Vec<NftChain>,
    /// Helper chains for CONNMARK save/restore, with what they compute (save or restore,
    /// nfmask, ctmask).
    helpers: Vec<((bool, u32, u32), NftChain)>,
    /// The `-m recent` lists as dynamic sets `r_i`: name, and the timeout of their checks.
    sets: Vec<(String, Option<u32>)>,
}

/// The flush of every `-m recent` list of `nf` (`flush set ip reachlab r_i`, one line each),
/// or `None` when it has none: what forgets the sources earlier probes left there.
pub fn flush_recent(nf: &Netfilter) -> Option<String> {
    let sets = recent_sets(nf).ok()?;
    (!sets.is_empty()).then(|| {
        (0..sets.len())
            .map(|i| format!("flush set ip {TABLE} r_{i}\n"))
            .collect()
    })
}

/// The node's `-m recent` lists as nft dynamic sets (docs/netfilter.md, "In nftables (the
/// emulator)"): set `r_i` holds list *i* (by name), its elements time out after the
/// `--seconds` of the list's checks, so that `ip saddr @r_i` holds exactly when xt_recent's
/// `--rcheck --seconds N` does, and `update @r_i { ip saddr }` is `--set` (add, or refresh
/// the timeout). What a set cannot say is declined: `!`, `--mask`, `--hitcount`, `--remove`,
/// a check without `--seconds`, checks of one list with different `--seconds`.
fn recent_sets(nf: &Netfilter) -> Result<Vec<(String, Option<u32>)>, EmulateError> {
    let filter = [
        &nf.raw_prerouting,
        &nf.raw_output,
        &nf.prerouting,
        &nf.input,
        &nf.forward,
        &nf.output,
    ]
    .into_iter()
    .flat_map(|c| &c.rules)
    .chain(nf.filter_chains.iter().flat_map(|c| &c.rules))
    .map(|r| &r.matches);
    let nat = nf
        .nat
        .iter()
        .chain(nf.nat_chains.iter().flat_map(|c| &c.rules))
        .map(|r| &r.matches);
    let mut sets: Vec<(String, Option<u32>)> = Vec::new();
    for r in filter.chain(nat).filter_map(|m| m.recent.as_deref()) {
        let declined = |why: &str| {
            Err(EmulateError::Unsupported(format!(
                "-m recent list {}: {why} has no faithful nft set form",
                r.name
            )))
        };
        if r.negated {
            return declined("a negated match");
        }
        if r.mask != std::net::Ipv4Addr::BROADCAST {
            return declined("--mask");
        }
        if r.hitcount.is_some() {
            return declined("--hitcount");
        }
        let seconds = match r.op {
            RecentOp::Remove => return declined("--remove"),
            RecentOp::Set => None,
            RecentOp::Check | RecentOp::Update => match r.seconds {
                Some(s) => Some(s),
                None => return declined("a check without --seconds"),
            },
        };
        match sets.iter_mut().find(|(name, _)| *name == r.name) {
            None => sets.push((r.name.clone(), seconds)),
            Some((_, known)) => match (*known, seconds) {
                (Some(a), Some(b)) if a != b => {
                    return declined("checks with different --seconds");
                }
                (None, Some(_)) => *known = seconds,
                _ => {}
            },
        }
    }
    Ok(sets)
}

/// A `-m recent` match as nft: a lookup in its set, an update of it, or both.
fn recent_match(r: &Recent, sets: &[(String, Option<u32>)]) -> Result<String, String> {
    let i = sets
        .iter()
        .position(|(name, _)| *name == r.name)
        .ok_or_else(|| format!("-m recent list {} has no set", r.name))?;
    let addr = match r.side {
        RecentSide::Source => "ip saddr",
        RecentSide::Dest => "ip daddr",
    };
    Ok(match r.op {
        RecentOp::Set => format!("update @r_{i} {{ {addr} }}"),
        RecentOp::Check => format!("{addr} @r_{i}"),
        RecentOp::Update => format!("{addr} @r_{i} update @r_{i} {{ {addr} }}"),
        RecentOp::Remove => return Err(format!("-m recent list {}: --remove", r.name)),
    })
}

impl Lowering<'_> {
    fn filter_chain(
        &mut self,
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
        let mut nft = NftChain {
            name: name.to_owned(),
            head: format!("type filter hook {hook} priority {priority}; policy {policy};"),
            rules: Vec::new(),
            to: Vec::new(),
            base: true,
        };
        for rule in &chain.rules {
            self.filter_rule(&mut nft, rule)?;
        }
        self.chains.push(nft);
        Ok(())
    }

    fn nat_chain(
        &mut self,
        name: &str,
        hook: &str,
        priority: i32,
        nf: &Netfilter,
        which: NatHook,
    ) -> Result<(), EmulateError> {
        let mut nft = NftChain {
            name: name.to_owned(),
            head: format!("type nat hook {hook} priority {priority}; policy accept;"),
            rules: Vec::new(),
            to: Vec::new(),
            base: true,
        };
        for rule in nf.nat.iter().filter(|r| r.hook == which) {
            self.nat_rule(&mut nft, rule)?;
        }
        self.chains.push(nft);
        Ok(())
    }

    fn filter_rule(&mut self, chain: &mut NftChain, rule: &FilterRule) -> Result<(), EmulateError> {
        let stmt = match &rule.target {
            Target::Verdict(Verdict::Reject(with)) => Statement {
                l4: *with == RejectWith::TcpReset,
                ..Statement::plain(reject(*with))
            },
            Target::Verdict(v) => Statement::plain(verdict(*v).unwrap_or("drop")),
            Target::Flow(f) => flow(*f, "f"),
            Target::Effect(e) => self.effect(e),
        };
        self.push(chain, &rule.matches, stmt, rule.comment.as_deref())
    }

    fn nat_rule(&mut self, chain: &mut NftChain, rule: &NatRule) -> Result<(), EmulateError> {
        let stmt = match &rule.action {
            NatAction::Masquerade(flags) => {
                Statement::plain(format!("masquerade{}", nat_flags(*flags)))
            }
            NatAction::Snat(addr, flags) => {
                Statement::plain(format!("snat to {addr}{}", nat_flags(*flags)))
            }
            NatAction::Dnat(addr, None) => Statement::plain(format!("dnat to {addr}")),
            NatAction::Dnat(addr, Some(port)) => {
                if rule.matches.proto.is_none_or(|p| p == L4::Icmp) {
                    return Err(EmulateError::Unsupported(format!(
                        "chain {}: a DNAT to a port needs a tcp or udp match",
                        chain.name
                    )));
                }
                Statement {
                    l4: true,
                    ..Statement::plain(format!("dnat to {addr}:{port}"))
                }
            }
            // docs/netfilter.md, "Tables, chains and the walk": a nat ACCEPT stops the walk
            // and nothing is translated at this hook.
            NatAction::Accept => Statement::plain("accept"),
            NatAction::Flow(f) => flow(*f, "n"),
            NatAction::Effect(e) => self.effect(e),
        };
        self.push(chain, &rule.matches, stmt, rule.comment.as_deref())
    }

    /// Writes one model rule as nft rules (one per alternative of its matches).
    fn push(
        &mut self,
        chain: &mut NftChain,
        m: &Match,
        stmt: Statement,
        text: Option<&str>,
    ) -> Result<(), EmulateError> {
        let alternatives = matches(self.net, m, stmt.l4, &self.sets)
            .map_err(|e| EmulateError::Unsupported(format!("chain {}: {e}", chain.name)))?;
        for condition in alternatives {
            chain
                .rules
                .push(format!("{condition}{}{}", stmt.text, comment(text)));
        }
        chain.to.extend(stmt.to);
        Ok(())
    }

    /// docs/netfilter.md, "Targets": MARK and CONNMARK as nft's `meta mark set` and `ct mark
    /// set`; LOG as `log`.
    fn effect(&mut self, e: &Effect) -> Statement {
        match *e {
            Effect::Mark(set) => Statement::plain(mark_set("meta mark", set)),
            Effect::ConnMark(ConnMarkOp::Set(set)) => Statement::plain(mark_set("ct mark", set)),
            // ctmark = ctmark & !C ^ mark & N
            Effect::ConnMark(ConnMarkOp::Save { nfmask, ctmask }) => {
                if ctmask == u32::MAX {
                    Statement::plain(format!("ct mark set {}", masked("meta mark", nfmask)))
                } else if nfmask == 0 {
                    Statement::plain(mark_set(
                        "ct mark",
                        MarkSet {
                            value: 0,
                            mask: ctmask,
                        },
                    ))
                } else {
                    self.helper(true, nfmask, ctmask)
                }
            }
            // mark = mark & !N ^ ctmark & C
            Effect::ConnMark(ConnMarkOp::Restore { nfmask, ctmask }) => {
                if nfmask == u32::MAX {
                    Statement::plain(format!("meta mark set {}", masked("ct mark", ctmask)))
                } else {
                    self.helper(false, nfmask, ctmask)
                }
            }
            Effect::Log(_) => Statement::plain("log"),
            // A rule needs a statement; a counter changes nothing, as the rule without target.
            Effect::Count => Statement::plain("counter"),
        }
    }

    /// A jump to the helper chain that saves (`save`) or restores the connection's mark under
    /// masks nft 1.0 cannot combine in one statement (its binary operations take a constant on
    /// the right, never a second mark): first the bits that go, then one rule per bit that
    /// comes from the other mark. Restoring does nothing without a connection, as xt_CONNMARK.
    fn helper(&mut self, save: bool, nfmask: u32, ctmask: u32) -> Statement {
        let key = (save, nfmask, ctmask);
        let name = match self.helpers.iter().find(|(k, _)| *k == key) {
            Some((_, chain)) => chain.name.clone(),
            None => {
                let chain = helper_chain(format!("x_{}", self.helpers.len()), key);
                let name = chain.name.clone();
                self.helpers.push((key, chain));
                name
            }
        };
        Statement {
            text: format!("jump {name}"),
            to: Some(name),
            l4: false,
        }
    }

    /// Refuses a table the kernel would refuse for nesting `jump`/`goto` deeper than
    /// [`MAX_NFT_DEPTH`] (the model allows deeper: docs/netfilter.md, "In nftables (the
    /// emulator)").
    fn check_depth(&self) -> Result<(), EmulateError> {
        let helpers = self.helpers.iter().map(|(_, c)| c);
        let all: Vec<&NftChain> = self.chains.iter().chain(helpers).collect();
        let index: HashMap<&str, usize> = all
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        // The longest chain of jumps below each chain; `None` while being measured.
        let mut height: Vec<Option<Option<usize>>> = vec![None; all.len()];
        for (i, c) in all.iter().enumerate() {
            if !c.base {
                continue;
            }
            let h = measure(i, &all, &index, &mut height).unwrap_or(usize::MAX);
            if h > MAX_NFT_DEPTH {
                return Err(EmulateError::Unsupported(format!(
                    "chain {}: nftables nests at most {MAX_NFT_DEPTH} jumps and gotos \
                     (NFT_JUMP_STACK_SIZE); these user chains go deeper",
                    c.name
                )));
            }
        }
        Ok(())
    }
}

/// The helper chain `name` that saves (restores) the connection's mark under masks.
fn helper_chain(name: String, (save, nfmask, ctmask): (bool, u32, u32)) -> NftChain {
    let (label, to, from, clear, bits) = if save {
        let label = format!("CONNMARK --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}");
        (label, "ct mark", "meta mark", ctmask, nfmask)
    } else {
        let label = format!("CONNMARK --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}");
        (label, "meta mark", "ct mark", nfmask, ctmask)
    };
    let mut chain = NftChain::user(name, &label);
    if !save {
        // No connection, no restore (and `ct mark set` does nothing without one).
        chain
            .rules
            .push("ct state { invalid, untracked } return".into());
    }
    if clear != 0 {
        let cleared = MarkSet {
            value: 0,
            mask: clear,
        };
        chain.rules.push(mark_set(to, cleared));
    }
    for bit in (0..32).map(|i| 1u32 << i).filter(|b| bits & b != 0) {
        let flip = MarkSet {
            value: bit,
            mask: 0,
        };
        chain.rules.push(format!(
            "{from} & {bit:#010x} != 0x00000000 {}",
            mark_set(to, flip)
        ));
    }
    chain
}

/// The longest path of jumps from chain `i`, or `None` on a loop.
fn measure(
    i: usize,
    all: &[&NftChain],
    index: &HashMap<&str, usize>,
    height: &mut [Option<Option<usize>>],
) -> Option<usize> {
    match height.get(i).copied().flatten() {
        Some(Some(h)) => return Some(h),
        Some(None) => return None,
        None => {}
    }
    height[i] = Some(None);
    let mut h = 0;
    for to in &all[i].to {
        let Some(&j) = index.get(to.as_str()) else {
            continue;
        };
        h = h.max(measure(j, all, index, height)?.saturating_add(1));
    }
    height[i] = Some(Some(h));
    Some(h)
}

fn flow(f: Flow, prefix: &str) -> Statement {
    match f {
        Flow::Jump(c) => Statement {
            text: format!("jump {prefix}_{}", c.0),
            to: Some(format!("{prefix}_{}", c.0)),
            l4: false,
        },
        Flow::Goto(c) => Statement {
            text: format!("goto {prefix}_{}", c.0),
            to: Some(format!("{prefix}_{}", c.0)),
            l4: false,
        },
        Flow::Return => Statement::plain("return"),
    }
}

/// `KEY set …` computing `(KEY & !mask) ^ value`, nft's bitwise expression being exactly
/// `(reg & mask) ^ xor` (docs/netfilter.md, "Targets").
fn mark_set(key: &str, set: MarkSet) -> String {
    match set.mask {
        u32::MAX => format!("{key} set {:#010x}", set.value),
        0 => format!("{key} set {key} ^ {:#010x}", set.value),
        mask if set.value == 0 => format!("{key} set {key} & {:#010x}", !mask),
        mask => format!("{key} set {key} & {:#010x} ^ {:#010x}", !mask, set.value),
    }
}

/// `KEY & MASK`, or `KEY` under a full mask.
fn masked(key: &str, mask: u32) -> String {
    if mask == u32::MAX {
        key.to_owned()
    } else {
        format!("{key} & {mask:#010x}")
    }
}

fn nat_flags(flags: NatFlags) -> &'static str {
    match (flags.random, flags.random_fully) {
        (false, false) => "",
        (true, false) => " random",
        (false, true) => " fully-random",
        (true, true) => " random,fully-random",
    }
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

/// The clause that holds for a packet without a connection, and only for one (`untracked`
/// aside, which reachlab never asks for).
const NO_CONNECTION: &str = "ct state invalid";

/// A rule's conditions as alternatives that exclude each other: a packet meets at most one,
/// and the rule matches it when it meets one. Each ends with a space, and says whether it
/// needs a connection (a `ct status` or `ct mark` clause, which ends the rule without one) or
/// its absence ([`NO_CONNECTION`]); an alternative that needs both is left out. No alternative
/// at all: the rule can never match.
struct Alternatives(Vec<(String, Option<bool>)>);

/// Whether `clause` needs a connection (`Some(true)`), its absence (`Some(false)`), or neither.
fn connection(clause: &str) -> Option<bool> {
    if clause == NO_CONNECTION {
        Some(false)
    } else if clause.contains("ct status") || clause.contains("ct mark") {
        Some(true)
    } else {
        None
    }
}

impl Alternatives {
    /// Every alternative also needs `clause`.
    fn and(&mut self, clause: &str) {
        self.or(&[clause.to_owned()]);
    }

    /// Every alternative also needs one of `options` (which exclude each other).
    fn or(&mut self, options: &[String]) {
        let mut next = Vec::new();
        for (text, ct) in &self.0 {
            for option in options {
                let needs = connection(option);
                match (*ct, needs) {
                    (Some(a), Some(b)) if a != b => {}
                    (Some(false), Some(false)) => next.push((text.clone(), *ct)),
                    _ => next.push((format!("{text}{option} "), ct.or(needs))),
                }
            }
        }
        self.0 = next;
    }
}

/// The rule's matches. `l4_context`: the statement after them needs a transport protocol
/// named (a port in DNAT, a TCP reset). Errors are the reason alone.
fn matches(
    net: &Network,
    m: &Match,
    l4_context: bool,
    sets: &[(String, Option<u32>)],
) -> Result<Vec<String>, String> {
    let mut alts = Alternatives(vec![(String::new(), None)]);
    let iface = |id| quoted(net.interface_name(id)).map_err(|e| e.to_string());
    if let Some(i) = m.in_iface {
        alts.and(&format!("iifname {}", iface(i)?));
    }
    if let Some(i) = m.not_in_iface {
        alts.and(&format!("iifname != {}", iface(i)?));
    }
    if let Some(o) = m.out_iface {
        alts.and(&format!("oifname {}", iface(o)?));
    }
    if let Some(o) = m.not_out_iface {
        alts.and(&format!("oifname != {}", iface(o)?));
    }
    let prefixes = [
        (m.src, "ip saddr "),
        (m.not_src, "ip saddr != "),
        (m.dst, "ip daddr "),
        (m.not_dst, "ip daddr != "),
    ];
    for (net, what) in prefixes.iter().filter_map(|(n, w)| Some((n.as_ref()?, w))) {
        alts.and(&format!("{what}{net}"));
    }
    for (range, what) in [(m.src_range, "ip saddr"), (m.dst_range, "ip daddr")] {
        if let Some(r) = range {
            alts.and(&addr_range(what, r)?);
        }
    }
    ports(m, l4_context, &mut alts)?;
    conntrack(m, &mut alts);
    for (types, what) in [(m.src_type, "saddr"), (m.dst_type, "daddr")] {
        if let Some(t) = types {
            alts.and(&addr_types(what, t)?);
        }
    }
    if let Some(mark) = m.mark {
        alts.and(&mark_match("meta mark", mark));
    }
    if let Some(mark) = m.connmark {
        // `ct mark` without a connection ends the rule: never a match, as xt_connmark.
        alts.and(&mark_match("ct mark", mark));
    }
    // After the stateless matches, before the draw: the walk's order (docs/netfilter.md,
    // "Recent lists").
    if let Some(r) = m.recent.as_deref() {
        alts.and(&recent_match(r, sets)?);
    }
    if let Some(ppb) = m.probability_ppb {
        alts.and(&format!("numgen random mod 1000000000 < {ppb}"));
    }
    Ok(alts.0.into_iter().map(|(text, _)| text).collect())
}

/// Protocol and ports (docs/netfilter.md, "Matches"): a port needs `tcp` or `udp`, as
/// iptables' `-p tcp --dport`.
fn ports(m: &Match, l4_context: bool, alts: &mut Alternatives) -> Result<(), String> {
    let singles = [
        (m.sport, "sport "),
        (m.not_sport, "sport != "),
        (m.dport, "dport "),
        (m.not_dport, "dport != "),
    ];
    let any_port = m.multiport.is_some() || singles.iter().any(|(p, _)| p.is_some());
    match m.proto {
        Some(proto @ (L4::Tcp | L4::Udp)) if any_port => {
            let p = proto.name();
            for (range, what) in singles.iter().filter_map(|(r, w)| Some((r.as_ref()?, w))) {
                alts.and(&format!("{p} {what}{}", port_range(*range)?));
            }
            if let Some(multi) = &m.multiport {
                multiport(p, multi, alts)?;
            }
        }
        Some(_) if any_port => return Err("a port match needs `proto: tcp` or `proto: udp`".into()),
        Some(proto) => alts.and(&format!("meta l4proto {}", proto.name())),
        None if l4_context => {
            return Err(
                "a rule that rejects with a TCP reset or DNATs to a port needs `proto`".into(),
            );
        }
        None if any_port => return Err("a port match needs `proto: tcp` or `proto: udp`".into()),
        None => {}
    }
    if let Some(not) = m.not_proto {
        alts.and(&format!("meta l4proto != {}", not.name()));
    }
    Ok(())
}

fn port_range((lo, hi): (u16, u16)) -> Result<String, String> {
    match lo.cmp(&hi) {
        std::cmp::Ordering::Equal => Ok(lo.to_string()),
        std::cmp::Ordering::Less => Ok(format!("{lo}-{hi}")),
        std::cmp::Ordering::Greater => Err(format!("the port range {lo}:{hi} is empty")),
    }
}

/// `-m multiport` as an nft set of ports and ranges (sorted and merged, as nft wants them).
/// `--ports` (either side) has no one-rule form: it is `sport in SET`, or `sport not in SET
/// and dport in SET` (two rules that exclude each other); negated, `sport not in SET and dport
/// not in SET`.
fn multiport(p: &str, multi: &Multiport, alts: &mut Alternatives) -> Result<(), String> {
    let mut ranges = Vec::new();
    for &(lo, hi) in &multi.ranges {
        port_range((lo, hi))?;
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    if merged.is_empty() {
        return Err("a multiport match without ports".into());
    }
    let items: Vec<String> = merged
        .into_iter()
        .map(|r| port_range(r).unwrap_or_default())
        .collect();
    let set = format!("{{ {} }}", items.join(", "));
    let not = if multi.negated { "!= " } else { "" };
    match (multi.side, multi.negated) {
        (PortSide::Source, _) => alts.and(&format!("{p} sport {not}{set}")),
        (PortSide::Destination, _) => alts.and(&format!("{p} dport {not}{set}")),
        (PortSide::Either, true) => alts.and(&format!("{p} sport != {set} {p} dport != {set}")),
        (PortSide::Either, false) => alts.or(&[
            format!("{p} sport {set}"),
            format!("{p} sport != {set} {p} dport {set}"),
        ]),
    }
    Ok(())
}

/// The model's states, split into conntrack states (`ct state`) and the NAT ones, which nft
/// reads from the connection's status (`ct status snat`, `dnat`).
fn split_states(states: States) -> (Vec<&'static str>, Vec<&'static str>) {
    states
        .names()
        .into_iter()
        .partition(|n| !matches!(*n, "snat" | "dnat"))
}

/// `--ctstate` (any of the states), `! --ctstate` (none of them) and `--ctstatus`
/// (docs/netfilter.md, "Connection states"). A packet without a connection has state
/// `invalid`, and `ct status` ends the rule for it (no match, negated or not), as xt_conntrack
/// answers a status match without a connection when the rule has no state option.
fn conntrack(m: &Match, alts: &mut Alternatives) {
    if !m.states.is_any() {
        let (plain, nat) = split_states(m.states);
        match (plain.is_empty(), nat.is_empty()) {
            (false, true) => alts.and(&format!("ct state {}", plain.join(","))),
            (true, _) => alts.and(&format!("ct status {}", nat.join(","))),
            (false, false) => alts.or(&[
                format!("ct state {}", plain.join(",")),
                format!(
                    "ct state != {{ {} }} ct status {}",
                    plain.join(", "),
                    nat.join(",")
                ),
            ]),
        }
    }
    if !m.not_states.is_any() {
        let (plain, nat) = split_states(m.not_states);
        let not_plain = if plain.is_empty() {
            String::new()
        } else {
            format!("ct state != {{ {} }} ", plain.join(", "))
        };
        if nat.is_empty() {
            alts.and(not_plain.trim_end());
        } else {
            // Without a connection there is no NAT status: such a packet (state invalid) is in
            // none of the NAT states.
            let with_ct = format!("{not_plain}ct status & ({}) == 0", nat.join(" | "));
            let invalid_passes = m.states.is_any() || m.states.contains(States::INVALID);
            if plain.contains(&"invalid") || !invalid_passes {
                alts.and(&with_ct);
            } else {
                alts.or(&[NO_CONNECTION.to_owned(), with_ct]);
            }
        }
    }
    if let Some(SetMatch { set, negated }) = m.status {
        let names: Vec<&str> = CtStatus::ALL
            .into_iter()
            .filter(|(s, _)| set.intersects(*s))
            .map(|(s, _)| status_name(s))
            .collect();
        let status = if negated {
            format!("ct status & ({}) == 0", names.join(" | "))
        } else {
            format!("ct status {}", names.join(","))
        };
        let state_option = !m.states.is_any() || !m.not_states.is_any();
        let invalid_passes = (m.states.is_any() || m.states.contains(States::INVALID))
            && !m.not_states.contains(States::INVALID);
        if !state_option || !invalid_passes {
            alts.and(&status);
        } else {
            // xt_conntrack with a state option answers for a packet without a connection once
            // its state passed, without looking at the status (checked with iptables on Linux
            // 6.18: `--ctstate INVALID ! --ctstatus CONFIRMED` matches an echo reply that
            // belongs to no connection, `! --ctstatus CONFIRMED` alone does not).
            alts.or(&[NO_CONNECTION.to_owned(), status]);
        }
    }
}

/// nft's name of a conntrack status bit (`nft describe ct status`).
fn status_name(s: CtStatus) -> &'static str {
    if s == CtStatus::EXPECTED {
        "expected"
    } else if s == CtStatus::SEEN_REPLY {
        "seen-reply"
    } else {
        "confirmed"
    }
}

/// `fib saddr type …`: the type of the address in the local routing table, as
/// `-m addrtype` asks it (docs/netfilter.md, "Address types"). nft 1.0 names the types up to
/// `prohibit` and takes the others (throw, nat, xresolve) as their numbers.
fn addr_types(what: &str, t: SetMatch<AddrTypes>) -> Result<String, String> {
    let names: Vec<String> = AddrTypes::ALL
        .iter()
        .enumerate()
        .filter(|(_, (ty, _))| t.set.intersects(*ty))
        .map(|(i, (_, name))| {
            if i <= 8 {
                name.to_ascii_lowercase()
            } else {
                i.to_string()
            }
        })
        .collect();
    let not = if t.negated { "!= " } else { "" };
    match names.as_slice() {
        [] => Err("an empty address-type match".into()),
        [one] => Ok(format!("fib {what} type {not}{one}")),
        many => Ok(format!("fib {what} type {not}{{ {} }}", many.join(", "))),
    }
}

/// `-m iprange` as an nft address range.
fn addr_range(what: &str, r: AddrRange) -> Result<String, String> {
    let not = if r.negated { "!= " } else { "" };
    match r.first.cmp(&r.last) {
        std::cmp::Ordering::Equal => Ok(format!("{what} {not}{}", r.first)),
        std::cmp::Ordering::Less => Ok(format!("{what} {not}{}-{}", r.first, r.last)),
        std::cmp::Ordering::Greater => {
            Err(format!("the address range {}-{} is empty", r.first, r.last))
        }
    }
}

/// `(KEY & mask) == value`, or `!=` (xt_mark, xt_connmark).
fn mark_match(key: &str, m: MarkMatch) -> String {
    let op = if m.negated { "!= " } else { "" };
    if m.mask == u32::MAX {
        format!("{key} {op}{:#010x}", m.value)
    } else {
        let op = if m.negated { "!=" } else { "==" };
        format!("{key} & {:#010x} {op} {:#010x}", m.mask, m.value)
    }
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

    fn with_input(rules: Vec<FilterRule>, chains: Vec<Vec<FilterRule>>) -> Netfilter {
        let origin = crate::model::Origin::default();
        Netfilter {
            input: Chain {
                rules,
                ..Chain::default()
            },
            filter_chains: chains
                .into_iter()
                .enumerate()
                .map(|(i, rules)| crate::model::UserChain {
                    name: format!("c{i}"),
                    rules,
                    origin: origin.clone(),
                })
                .collect(),
            ..Netfilter::default()
        }
    }

    fn rule(m: Match, target: impl Into<Target>) -> FilterRule {
        FilterRule {
            matches: m,
            target: target.into(),
            origin: crate::model::Origin::default(),
            comment: None,
            platform_fix: None,
        }
    }

    fn lan() -> Network {
        let text = "
segments:
  - { name: lan }
nodes:
  - name: b
    interfaces:
      - { name: eth0, segment: lan, addresses: [198.51.100.2/24] }
";
        load_str("t.yaml", text).expect("valid").network
    }

    fn input_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|l| *l != "  chain input {")
            .skip(2)
            .take_while(|l| *l != "  }")
            .map(str::trim)
            .collect()
    }

    #[test]
    fn user_chains_are_named_by_index_with_the_name_in_a_comment() {
        let mut nf = with_input(
            vec![rule(
                Match::default(),
                Target::Flow(Flow::Jump(crate::model::ChainId(0))),
            )],
            vec![vec![rule(Match::default(), Target::Flow(Flow::Return))]],
        );
        nf.filter_chains[0].name = "x\" }\nflush ruleset\n".into();
        let text = ruleset(&lan(), &nf).expect("ruleset");
        assert!(text.contains("  chain f_0 {\n    comment \"x' }'flush ruleset'\"\n    return\n"));
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("flush")),
            "{text}"
        );
        assert_eq!(input_lines(&text), ["jump f_0"]);
    }

    #[test]
    fn either_ports_and_mixed_states_become_rules_that_exclude_each_other() {
        let m = Match {
            proto: Some(L4::Tcp),
            multiport: Some(Multiport {
                side: PortSide::Either,
                ranges: vec![(80, 80), (8000, 8080), (443, 443), (81, 90)],
                negated: false,
            }),
            states: States::ESTABLISHED.with(States::DNAT),
            ..Match::default()
        };
        let nf = with_input(vec![rule(m, Verdict::Accept)], vec![]);
        let text = ruleset(&lan(), &nf).expect("ruleset");
        let set = "{ 80-90, 443, 8000-8080 }";
        assert_eq!(
            input_lines(&text),
            [
                format!("tcp sport {set} ct state established accept"),
                format!("tcp sport {set} ct state != {{ established }} ct status dnat accept"),
                format!("tcp sport != {set} tcp dport {set} ct state established accept"),
                format!(
                    "tcp sport != {set} tcp dport {set} ct state != {{ established }} ct status dnat accept"
                ),
            ]
        );
    }

    #[test]
    fn negations_of_flags_test_that_no_bit_is_set() {
        // nft's `ct status != a,b` compares the whole word; `& (a | b) == 0` is xt_conntrack's
        // "none of them".
        let m = Match {
            not_states: States::NEW.with(States::SNAT),
            status: Some(SetMatch {
                set: CtStatus::SEEN_REPLY.with(CtStatus::EXPECTED),
                negated: true,
            }),
            dst_type: Some(SetMatch {
                set: AddrTypes::LOCAL.with(AddrTypes::XRESOLVE),
                negated: true,
            }),
            ..Match::default()
        };
        let nf = with_input(vec![rule(m, Verdict::Drop)], vec![]);
        let text = ruleset(&lan(), &nf).expect("ruleset");
        // Without a connection the state passes (it is in none of them) and xt_conntrack
        // does not look at the status: one rule without it.
        let rest = "fib daddr type != { local, 11 } drop";
        assert_eq!(
            input_lines(&text),
            [
                format!("ct state invalid {rest}"),
                format!(
                    "ct state != {{ new }} ct status & (snat) == 0 \
                     ct status & (expected | seen-reply) == 0 {rest}"
                ),
            ]
        );
    }

    #[test]
    fn marks_are_nft_bitwise_expressions() {
        let set = |value, mask| MarkSet { value, mask };
        assert_eq!(
            mark_set("meta mark", set(1, u32::MAX)),
            "meta mark set 0x00000001"
        );
        assert_eq!(
            mark_set("ct mark", set(4, 0)),
            "ct mark set ct mark ^ 0x00000004"
        );
        assert_eq!(
            mark_set("meta mark", set(0x4000, 0xff00)),
            "meta mark set meta mark & 0xffff00ff ^ 0x00004000"
        );
        let m = |value, mask, negated| MarkMatch {
            value,
            mask,
            negated,
        };
        assert_eq!(
            mark_match("ct mark", m(1, u32::MAX, true)),
            "ct mark != 0x00000001"
        );
        assert_eq!(
            mark_match("meta mark", m(1, 0xff, false)),
            "meta mark & 0x000000ff == 0x00000001"
        );
    }

    #[test]
    fn connmark_under_partial_masks_shares_one_helper_chain() {
        let save = || {
            rule(
                Match::default(),
                Target::Effect(Effect::ConnMark(ConnMarkOp::Save {
                    nfmask: 0x3,
                    ctmask: 0x3,
                })),
            )
        };
        let restore = rule(
            Match::default(),
            Target::Effect(Effect::ConnMark(ConnMarkOp::Restore {
                nfmask: u32::MAX,
                ctmask: u32::MAX,
            })),
        );
        let nf = with_input(vec![save(), save(), restore], vec![]);
        let text = ruleset(&lan(), &nf).expect("ruleset");
        assert_eq!(
            input_lines(&text),
            ["jump x_0", "jump x_0", "meta mark set ct mark"]
        );
        assert!(text.contains(
            "  chain x_0 {\n    comment \"CONNMARK --save-mark --nfmask 0x3 --ctmask 0x3\"\n    \
             ct mark set ct mark & 0xfffffffc\n    \
             meta mark & 0x00000001 != 0x00000000 ct mark set ct mark ^ 0x00000001\n    \
             meta mark & 0x00000002 != 0x00000000 ct mark set ct mark ^ 0x00000002\n  }\n"
        ), "{text}");
    }

    #[test]
    fn jumps_deeper_than_the_kernel_stack_are_refused() {
        let chained = |depth: usize| {
            let jump = |to: usize| {
                rule(
                    Match::default(),
                    Target::Flow(Flow::Goto(crate::model::ChainId(to as u16))),
                )
            };
            let chains = (1..depth).map(|i| vec![jump(i)]).chain([vec![]]).collect();
            with_input(vec![jump(0)], chains)
        };
        assert!(ruleset(&lan(), &chained(MAX_NFT_DEPTH)).is_ok());
        let err = ruleset(&lan(), &chained(MAX_NFT_DEPTH + 1)).expect_err("too deep");
        assert!(err.to_string().contains("at most 15 jumps"), "{err}");
    }
}
