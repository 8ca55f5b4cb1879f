//! One nft rule's statements read into the model: the expressions that match become a
//! [`Match`], each statement that acts becomes a [`Step`] holding the matches written before
//! it (`log prefix "x" drop` is a LOG step then a DROP step, which the kernel's rule does in
//! one go; `rule` refuses the split where re-reading the matches could change the answer).
//! What the model does not hold is refused by name; a rule that can only match IPv6 is kept
//! aside (it never matches an IPv4 packet). docs/netfilter.md, "nft list ruleset text".

use std::net::Ipv4Addr;

use super::lex::{Kind, Token};
use super::value::{self, Addr, Status, Value, bad, unsupported};
use crate::format::Code;
use crate::model::{
    AddrRange, AddrTypes, ConnMarkOp, CtStatus, IfaceId, L4, MarkMatch, MarkSet, Match, Multiport,
    NatFlags, Port, PortSide, RejectWith, SetMatch, States,
};
use crate::topology::iptables::{Problem, Word};

/// What a statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    Reject(RejectWith),
    Return,
    Jump(Word),
    Goto(Word),
    Mark(MarkSet),
    ConnMark(ConnMarkOp),
    /// LOG's options, as iptables writes them (`--log-prefix "x" --log-level 6`).
    Log(String),
    Dnat(Ipv4Addr, Option<Port>),
    Snat(Ipv4Addr, NatFlags),
    Masquerade(NatFlags),
    /// No statement that acts: the rule only counts (iptables' rule without a target).
    Count,
}

impl Action {
    /// Whether the walk goes on after it (marks, log lines, counting).
    pub fn is_effect(&self) -> bool {
        matches!(
            self,
            Action::Mark(_) | Action::ConnMark(_) | Action::Log(_) | Action::Count
        )
    }
}

/// A statement that acts, with the matches written before it and its word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub matches: Match,
    pub action: Action,
    pub at: Word,
}

/// A rule read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadRule {
    /// In order; one [`Action::Count`] for a rule that only counts; empty for a rule that
    /// matches only IPv6.
    pub steps: Vec<Step>,
    pub comment: Option<String>,
    /// The word that makes it IPv6-only (`ip6`, `meta nfproto ipv6`, …), when one does.
    pub ipv6_only: Option<Word>,
    /// The incoming / outgoing interface words, for the checks that depend on the hook.
    pub in_at: Option<Word>,
    pub out_at: Option<Word>,
}

/// What `ct state` and `ct status` said, before it becomes the model's states.
#[derive(Debug, Clone, Copy, Default)]
struct Ct {
    /// The connection states allowed (`None`: any).
    base: Option<States>,
    /// `ct status snat,dnat`: any of these.
    nat_any: Option<States>,
    /// `ct status ! dnat`: none of these.
    nat_none: States,
    /// Any `ct status` expression at all (nft's `ct status` ends the rule for a packet
    /// without a connection).
    status: bool,
}

const BASE: [States; 4] = [
    States::NEW,
    States::ESTABLISHED,
    States::RELATED,
    States::INVALID,
];

fn all_base() -> States {
    BASE.iter().fold(States::any(), |s, b| s.with(*b))
}

/// The states of `a` that are not in `b`, and those in both.
fn minus(a: States, b: States) -> States {
    States::ALL
        .iter()
        .filter(|(s, _)| a.contains(*s) && !b.contains(*s))
        .fold(States::any(), |acc, (s, _)| acc.with(*s))
}

fn both(a: States, b: States) -> States {
    minus(a, minus(a, b))
}

impl Ct {
    /// The model's states for what was said (docs/netfilter.md, "nft list ruleset text": a
    /// packet has one of the four base states, and the NAT bits besides).
    fn apply(self, m: &mut Match) {
        match self.nat_any {
            None => {
                if let Some(b) = self.base.filter(|b| *b != all_base()) {
                    m.states = b;
                }
                m.not_states = self.nat_none;
            }
            Some(any) => {
                m.states = any;
                let excluded = self.base.map_or(States::any(), |b| minus(all_base(), b));
                m.not_states = self.nat_none.with(excluded);
            }
        }
        // A packet without a connection is INVALID in the model; nft's `ct status` never
        // matches it, while the model's status match holds for it beside a state option.
        let admits_invalid =
            m.states.matches(States::INVALID) && !m.not_states.contains(States::INVALID);
        let model_refuses = m.status.is_some() && m.states.is_any() && m.not_states.is_any();
        if self.status && admits_invalid && !model_refuses {
            m.not_states = m.not_states.with(States::INVALID);
        }
    }
}

/// Reads a rule's tokens; `iface` resolves the node's interface names (`lo` included).
pub fn read_rule(
    toks: &[Token],
    iface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Result<ReadRule, Problem> {
    let mut r = Reader {
        toks,
        i: 0,
        iface,
        m: Match::default(),
        ct: Ct::default(),
        out: ReadRule::default(),
        last: None,
    };
    r.statements()?;
    if r.out.steps.is_empty()
        && r.out.ipv6_only.is_none()
        && let Some(first) = toks.first()
    {
        let mut matches = r.m.clone();
        r.ct.apply(&mut matches);
        r.out.steps.push(Step {
            matches,
            action: Action::Count,
            at: first.at.clone(),
        });
    }
    Ok(r.out)
}

struct Reader<'a> {
    toks: &'a [Token],
    i: usize,
    iface: &'a dyn Fn(&str) -> Option<IfaceId>,
    m: Match,
    ct: Ct,
    out: ReadRule,
    /// The verdict that ended the rule, once one did.
    last: Option<Word>,
}

/// How an expression compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// No operator: equality, or for flags "any of".
    Implicit,
    Eq,
    Ne,
    /// `!` before a flag list: none of them.
    NotFlags,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    fn word(&mut self) -> Option<&'a Word> {
        let t = self.toks.get(self.i)?;
        self.i += 1;
        Some(&t.at)
    }

    /// The next word, which must be one of `expected`.
    fn expect(&mut self, after: &Word, expected: &[&str]) -> Result<&'a Word, Problem> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word && expected.contains(&t.at.text.as_str()) => {
                self.i += 1;
                Ok(&t.at)
            }
            Some(t) if t.kind == Kind::Word => Err(unsupported(
                &t.at,
                &format!("`{} {}`", after.text, t.at.text),
            )),
            _ => Err(bad(
                after,
                format!("`{}` is incomplete", after.text),
                format!("write one of {} after it", expected.join(", ")),
            )),
        }
    }

    fn op(&mut self) -> Op {
        let op = match self.peek().map(|t| t.at.text.as_str()) {
            Some("==" | "eq") => Op::Eq,
            Some("!=" | "ne") => Op::Ne,
            Some("!") => Op::NotFlags,
            _ => return Op::Implicit,
        };
        self.i += 1;
        op
    }

    fn value(&mut self, after: &Word) -> Result<Value, Problem> {
        value::read(self.toks, &mut self.i, after)
    }

    fn statements(&mut self) -> Result<(), Problem> {
        while let Some(t) = self.peek() {
            self.i += 1;
            let w = &t.at;
            if self.out.ipv6_only.is_some() {
                return Ok(());
            }
            if t.kind != Kind::Word {
                return Err(bad(
                    w,
                    format!("`{}` where a statement starts", w.text),
                    "write the rule as `nft list ruleset` prints it",
                ));
            }
            if let Some(verdict) = &self.last
                && w.text != "comment"
            {
                return Err(bad(
                    w,
                    format!("`{}` after the verdict `{}`", w.text, verdict.text),
                    "a verdict ends the rule: move the statement before it",
                ));
            }
            match w.text.as_str() {
                "counter" => self.counter(w)?,
                "comment" => {
                    let v = self.value(w)?;
                    self.out.comment = Some(v.at().text.clone());
                }
                "iifname" | "oifname" | "iif" | "oif" => self.interface(w)?,
                "meta" => self.meta(w)?,
                "mark" => self.mark(w, w)?,
                "l4proto" => self.protocol(w)?,
                "ip" => self.ip(w)?,
                "tcp" | "udp" => self.port(w)?,
                "ct" => self.ct(w)?,
                "fib" => self.fib(w)?,
                "numgen" => self.numgen(w)?,
                "ip6" | "icmpv6" => self.out.ipv6_only = Some(w.clone()),
                "log" => {
                    let options = self.log()?;
                    self.act(w, Action::Log(options))?;
                }
                "accept" => self.act(w, Action::Accept)?,
                "drop" => self.act(w, Action::Drop)?,
                "return" => self.act(w, Action::Return)?,
                "continue" => {}
                "jump" | "goto" => {
                    let name = self
                        .peek()
                        .filter(|t| matches!(t.kind, Kind::Word | Kind::Str));
                    let Some(name) = name else {
                        return Err(bad(
                            w,
                            format!("`{}` needs a chain", w.text),
                            "write the chain's name after it",
                        ));
                    };
                    self.i += 1;
                    let action = if w.text == "jump" {
                        Action::Jump(name.at.clone())
                    } else {
                        Action::Goto(name.at.clone())
                    };
                    self.act(w, action)?;
                }
                "reject" => {
                    let with = self.reject(w)?;
                    self.act(w, Action::Reject(with))?;
                }
                "dnat" | "snat" | "masquerade" => {
                    let action = self.nat(w)?;
                    self.act(w, action)?;
                }
                "xt" => {
                    let what: Vec<&str> = self.toks[self.i..]
                        .iter()
                        .take(2)
                        .map(|t| t.at.text.as_str())
                        .collect();
                    return Err(Problem::new(
                        w,
                        Code::Unsupported,
                        format!(
                            "`xt {}` (an iptables extension nft cannot translate) is not modelled",
                            what.join(" ")
                        ),
                        "iptables-nft wrote this rule: read the host's `iptables-save` output instead (`iptables_save:`)",
                    ));
                }
                other => return Err(unsupported(w, &format!("the `{other}` statement"))),
            }
        }
        Ok(())
    }

    /// `counter [packets N bytes M]`: counts, nothing else.
    fn counter(&mut self, w: &Word) -> Result<(), Problem> {
        if self.peek().is_some_and(|t| t.is("name")) {
            return Err(unsupported(w, "a named counter"));
        }
        for key in ["packets", "bytes"] {
            if self.peek().is_some_and(|t| t.is(key)) {
                self.i += 1;
                let n = self.word().ok_or_else(|| {
                    bad(
                        w,
                        format!("`{key}` needs a number"),
                        "write `counter packets N bytes M`",
                    )
                })?;
                if !n.text.bytes().all(|b| b.is_ascii_digit()) || n.text.is_empty() {
                    return Err(bad(
                        n,
                        format!("`{}` is not a count", n.text),
                        "write `counter packets N bytes M`",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds the step of an action with the matches read so far.
    fn act(&mut self, w: &Word, action: Action) -> Result<(), Problem> {
        if self.out.ipv6_only.is_some() {
            return Ok(());
        }
        let mut m = self.m.clone();
        self.ct.apply(&mut m);
        if let Some(prev) = self.out.steps.last() {
            let rereads = match &prev.action {
                Action::Mark(_) | Action::ConnMark(ConnMarkOp::Restore { .. }) => {
                    prev.matches.mark.is_some()
                }
                Action::ConnMark(_) => prev.matches.connmark.is_some(),
                _ => false,
            };
            if rereads || prev.matches.probability_ppb.is_some() {
                return Err(unsupported(
                    &prev.at,
                    "a statement after a mark set or a random draw on the same rule",
                ));
            }
        }
        if !action.is_effect() {
            self.last = Some(w.clone());
        }
        self.out.steps.push(Step {
            matches: m,
            action,
            at: w.clone(),
        });
        Ok(())
    }

    fn once<T>(slot: &mut Option<T>, at: &Word, v: T) -> Result<(), Problem> {
        if slot.is_some() {
            return Err(unsupported(
                at,
                &format!("a second `{}` in one rule", at.text),
            ));
        }
        *slot = Some(v);
        Ok(())
    }

    fn interface(&mut self, w: &Word) -> Result<(), Problem> {
        let op = self.op();
        let v = self.value(w)?;
        let name = match (&v, op) {
            (_, Op::NotFlags) => return Err(bad(v.at(), "`!` before an interface", "write `!=`")),
            (Value::One(n), _) => n,
            (Value::Set { items, .. }, _) if items.len() == 1 => &items[0],
            _ => return Err(unsupported(v.at(), "a set of several interfaces")),
        };
        if name.text.ends_with('*') {
            return Err(unsupported(
                name,
                &format!("the interface wildcard `{}`", name.text),
            ));
        }
        let id = (self.iface)(&name.text).ok_or_else(|| {
            Problem::new(
                name,
                Code::UnknownReference,
                format!("the node has no interface `{}`", name.text),
                "name one of the node's interfaces (or `lo`), or add the interface to the node",
            )
        })?;
        let incoming = w.text.starts_with('i');
        let negated = op == Op::Ne;
        let slot = match (incoming, negated) {
            (true, false) => &mut self.m.in_iface,
            (true, true) => &mut self.m.not_in_iface,
            (false, false) => &mut self.m.out_iface,
            (false, true) => &mut self.m.not_out_iface,
        };
        Self::once(slot, w, id)?;
        if incoming {
            self.out.in_at = Some(w.clone());
        } else {
            self.out.out_at = Some(w.clone());
        }
        Ok(())
    }

    fn meta(&mut self, meta: &Word) -> Result<(), Problem> {
        let key = self
            .word()
            .ok_or_else(|| bad(meta, "`meta` needs a key", "write e.g. `meta l4proto tcp`"))?;
        match key.text.as_str() {
            "iifname" | "oifname" | "iif" | "oif" => self.interface(key),
            "l4proto" => self.protocol(key),
            "mark" => self.mark(meta, key),
            "nfproto" | "protocol" => {
                let op = self.op();
                let v = self.value(key)?;
                let Value::One(family) = &v else {
                    return Err(unsupported(
                        v.at(),
                        &format!("a set after `meta {}`", key.text),
                    ));
                };
                let ipv4 = match family.text.as_str() {
                    "ipv4" | "ip" => true,
                    "ipv6" | "ip6" => false,
                    _ => {
                        return Err(unsupported(
                            family,
                            &format!("`meta {} {}`", key.text, family.text),
                        ));
                    }
                };
                match (ipv4, op) {
                    (true, Op::Implicit | Op::Eq) | (false, Op::Ne) => Ok(()),
                    (_, Op::NotFlags) => Err(bad(family, "`!` before a family", "write `!=`")),
                    _ => {
                        self.out.ipv6_only = Some(family.clone());
                        Ok(())
                    }
                }
            }
            "random" => self.random(key),
            other => Err(unsupported(key, &format!("`meta {other}`"))),
        }
    }

    /// `meta l4proto P`, `ip protocol P` (the same for IPv4).
    fn protocol(&mut self, key: &Word) -> Result<(), Problem> {
        let op = self.op();
        let v = self.value(key)?;
        let p = match (&v, op) {
            (Value::One(p), Op::Implicit | Op::Eq | Op::Ne) => p,
            (Value::Set { items, .. }, Op::Implicit | Op::Eq | Op::Ne) if items.len() == 1 => {
                &items[0]
            }
            _ => return Err(unsupported(v.at(), "a set of several protocols")),
        };
        let l4 = match p.text.as_str() {
            "tcp" | "6" => L4::Tcp,
            "udp" | "17" => L4::Udp,
            "icmp" | "1" => L4::Icmp,
            "ipv6-icmp" | "icmpv6" | "58" if op != Op::Ne => {
                self.out.ipv6_only = Some(p.clone());
                return Ok(());
            }
            other => return Err(unsupported(p, &format!("protocol `{other}`"))),
        };
        if op == Op::Ne {
            return Self::once(&mut self.m.not_proto, key, l4);
        }
        self.need_proto(p, l4)
    }

    /// The rule's protocol is `l4` (a port expression implies it, as nft's dependency does).
    fn need_proto(&mut self, at: &Word, l4: L4) -> Result<(), Problem> {
        match self.m.proto {
            None if self.m.not_proto != Some(l4) => {
                self.m.proto = Some(l4);
                Ok(())
            }
            Some(p) if p == l4 => Ok(()),
            _ => Err(bad(
                at,
                format!(
                    "the rule already excludes {}: it can never match",
                    l4.name()
                ),
                "remove the expression that contradicts it",
            )),
        }
    }

    fn ip(&mut self, ip: &Word) -> Result<(), Problem> {
        let field = self.expect(ip, &["saddr", "daddr", "protocol"])?;
        if field.text == "protocol" {
            return self.protocol(field);
        }
        let op = self.op();
        if op == Op::NotFlags {
            return Err(bad(field, "`!` before an address", "write `!=`"));
        }
        let v = self.value(field)?;
        let item = match &v {
            Value::One(a) => a,
            Value::Set { items, .. } if items.len() == 1 => &items[0],
            _ => return Err(unsupported(v.at(), "a set of several addresses")),
        };
        let src = field.text == "saddr";
        let negated = op == Op::Ne;
        match value::addr(item)? {
            Addr::Net(net) => {
                let slot = match (src, negated) {
                    (true, false) => &mut self.m.src,
                    (true, true) => &mut self.m.not_src,
                    (false, false) => &mut self.m.dst,
                    (false, true) => &mut self.m.not_dst,
                };
                Self::once(slot, field, net)
            }
            Addr::Range(first, last) => {
                let slot = if src {
                    &mut self.m.src_range
                } else {
                    &mut self.m.dst_range
                };
                Self::once(
                    slot,
                    field,
                    AddrRange {
                        first,
                        last,
                        negated,
                    },
                )
            }
        }
    }

    fn port(&mut self, proto: &Word) -> Result<(), Problem> {
        let field = self.expect(proto, &["sport", "dport"])?;
        let l4 = if proto.text == "tcp" {
            L4::Tcp
        } else {
            L4::Udp
        };
        self.need_proto(proto, l4)?;
        let op = self.op();
        if self.peek().is_some_and(|t| t.is(".")) {
            return Err(unsupported(
                field,
                "a concatenation of ports (iptables-nft prints `-m multiport --ports` so)",
            ));
        }
        let v = self.value(field)?;
        let negated = match op {
            Op::Implicit | Op::Eq => false,
            Op::Ne => true,
            Op::NotFlags => return Err(bad(field, "`!` before a port", "write `!=`")),
        };
        let dst = field.text == "dport";
        match &v {
            Value::One(p) => {
                let range = value::port_range(p)?;
                let slot = match (dst, negated) {
                    (true, false) => &mut self.m.dport,
                    (true, true) => &mut self.m.not_dport,
                    (false, false) => &mut self.m.sport,
                    (false, true) => &mut self.m.not_sport,
                };
                Self::once(slot, field, range)
            }
            Value::List(_) => Err(bad(
                v.at(),
                "ports separated by `,` outside a set",
                "write a set: `{ 80, 443 }`",
            )),
            Value::Set { items, .. } => {
                let ranges = items
                    .iter()
                    .map(value::port_range)
                    .collect::<Result<Vec<_>, _>>()?;
                let count: usize = ranges
                    .iter()
                    .map(|(lo, hi)| if lo == hi { 1 } else { 2 })
                    .sum();
                if count > 15 {
                    return Err(unsupported(
                        v.at(),
                        "a set of more than 15 ports (a range counting two: the most the model's multiport holds)",
                    ));
                }
                let side = if dst {
                    PortSide::Destination
                } else {
                    PortSide::Source
                };
                Self::once(
                    &mut self.m.multiport,
                    field,
                    Multiport {
                        side,
                        ranges,
                        negated,
                    },
                )
            }
        }
    }

    fn ct(&mut self, ct: &Word) -> Result<(), Problem> {
        let key = self.expect(ct, &["state", "status", "mark"])?;
        if key.text == "mark" {
            if self.peek().is_some_and(|t| t.is("set")) {
                self.i += 1;
                let op = self.mark_source(key, true)?;
                return self.act(key, Action::ConnMark(op));
            }
            let m = self.mark_match(key)?;
            return Self::once(&mut self.m.connmark, key, m);
        }
        let op = self.op();
        let v = self.value(key)?;
        if key.text == "state" {
            let set = v.items().iter().try_fold(States::any(), |s, w| {
                Ok::<_, Problem>(s.with(value::state(w)?))
            })?;
            let allowed = match (op, &v) {
                (Op::Implicit, _) | (Op::Eq, Value::One(_) | Value::Set { .. }) => set,
                (Op::Ne, Value::One(_) | Value::Set { .. })
                | (Op::NotFlags, Value::One(_) | Value::List(_)) => minus(all_base(), set),
                _ => return Err(unsupported(v.at(), "this comparison of `ct state`")),
            };
            self.ct.base = Some(both(self.ct.base.unwrap_or_else(all_base), allowed));
            return Ok(());
        }
        self.ct.status = true;
        let none_of = match (op, &v) {
            (Op::Implicit, Value::One(_) | Value::List(_)) => false,
            (Op::NotFlags, Value::One(_) | Value::List(_)) => true,
            _ => {
                return Err(unsupported(
                    v.at(),
                    "`ct status` compared as a whole word (`==`, `!=` or a set; nft's `ct status a,b` and `ct status ! a,b` test the bits)",
                ));
            }
        };
        let (mut bits, mut nat) = (CtStatus::default(), States::any());
        for w in v.items() {
            match value::status(w)? {
                Status::Bit(b) => bits = bits.with(b),
                Status::Nat(s) => nat = nat.with(s),
            }
        }
        match (bits == CtStatus::default(), nat.is_any()) {
            (false, false) => Err(unsupported(
                v.at(),
                "a `ct status` list mixing snat/dnat with other bits",
            )),
            (true, false) if none_of => {
                self.ct.nat_none = self.ct.nat_none.with(nat);
                Ok(())
            }
            (true, _) => Self::once(&mut self.ct.nat_any, key, nat),
            (false, true) => Self::once(
                &mut self.m.status,
                key,
                SetMatch {
                    set: bits,
                    negated: none_of,
                },
            ),
        }
    }

    /// `mark V`, `mark != V`, `mark & M == V`, `mark and M != V` (`meta mark` or `ct mark`).
    fn mark_match(&mut self, key: &Word) -> Result<MarkMatch, Problem> {
        let mut mask = u32::MAX;
        if self.peek().is_some_and(|t| t.is("&") || t.is("and")) {
            self.i += 1;
            let m = self
                .word()
                .ok_or_else(|| bad(key, "a mask is missing", "write `mark & MASK == VALUE`"))?;
            mask = value::number(m)?;
        }
        let op = self.op();
        let v = self.value(key)?;
        let Value::One(n) = &v else {
            return Err(unsupported(v.at(), "a set of marks"));
        };
        let negated = match op {
            Op::Implicit | Op::Eq => false,
            Op::Ne => true,
            Op::NotFlags => return Err(bad(n, "`!` before a mark", "write `!=`")),
        };
        Ok(MarkMatch {
            value: value::number(n)?,
            mask,
            negated,
        })
    }

    /// `meta mark …` / `mark …`: a match, or `set` and what the mark becomes.
    fn mark(&mut self, lead: &Word, key: &Word) -> Result<(), Problem> {
        if self.peek().is_some_and(|t| t.is("set")) {
            self.i += 1;
            return match self.mark_source(key, false)? {
                ConnMarkOp::Set(set) => self.act(lead, Action::Mark(set)),
                op => self.act(lead, Action::ConnMark(op)),
            };
        }
        let m = self.mark_match(key)?;
        Self::once(&mut self.m.mark, key, m)
    }

    /// What `meta mark set` (`conn: false`) or `ct mark set` (`conn: true`) sets: a value, the
    /// same mark changed by `and`/`or`/`xor` with constants, or the other mark under a mask.
    fn mark_source(&mut self, key: &Word, conn: bool) -> Result<ConnMarkOp, Problem> {
        let first = self
            .word()
            .ok_or_else(|| bad(key, "`set` needs a value", "write `mark set VALUE`"))?;
        let from_ct = match first.text.as_str() {
            "ct" => {
                self.expect(first, &["mark"])?;
                true
            }
            "meta" => {
                self.expect(first, &["mark"])?;
                false
            }
            "mark" => false,
            _ => {
                return Ok(ConnMarkOp::Set(MarkSet {
                    value: value::number(first)?,
                    mask: u32::MAX,
                }));
            }
        };
        let mut set = MarkSet { value: 0, mask: 0 };
        while let Some(op) = self
            .peek()
            .filter(|t| ["&", "and", "|", "or", "^", "xor"].contains(&t.at.text.as_str()))
        {
            self.i += 1;
            let n = self.word().ok_or_else(|| {
                bad(
                    &op.at,
                    "a number is missing",
                    "write a constant after the operator",
                )
            })?;
            let n = value::number(n)?;
            set = match op.at.text.as_str() {
                "&" | "and" => MarkSet {
                    value: set.value & n,
                    mask: set.mask | !n,
                },
                "|" | "or" => MarkSet {
                    value: set.value | n,
                    mask: set.mask | n,
                },
                _ => MarkSet {
                    value: set.value ^ n,
                    mask: set.mask,
                },
            };
        }
        // The other mark under a mask: only `and` can say it (`set.value` is 0 then).
        let kept = !set.mask;
        let and_only = set.value == 0;
        match (conn, from_ct) {
            (false, false) | (true, true) => Ok(ConnMarkOp::Set(set)),
            (true, false) if and_only => Ok(ConnMarkOp::Save {
                nfmask: kept,
                ctmask: u32::MAX,
            }),
            (false, true) if and_only => Ok(ConnMarkOp::Restore {
                nfmask: u32::MAX,
                ctmask: kept,
            }),
            _ => Err(unsupported(
                first,
                "a mark set from the other mark with `or` or `xor`",
            )),
        }
    }

    fn fib(&mut self, fib: &Word) -> Result<(), Problem> {
        let side = self.expect(fib, &["saddr", "daddr"])?;
        if self.peek().is_some_and(|t| t.is(".")) {
            return Err(unsupported(
                side,
                "`fib` with `. iif`, `. oif` or `. mark` (an address type limited to an interface)",
            ));
        }
        let result = self.expect(side, &["type"])?;
        let op = self.op();
        let stops = self.peek().is_none_or(|t| {
            t.kind == Kind::Word
                && t.at.text.bytes().all(|b| b.is_ascii_lowercase())
                && value::addr_type(&t.at).is_err()
        });
        if stops {
            return Err(unsupported(
                result,
                "`fib … type` without a type (iptables-nft prints an addrtype match so when nft has no name for its type)",
            ));
        }
        let v = self.value(result)?;
        let negated = match (op, &v) {
            (Op::Implicit | Op::Eq, Value::One(_) | Value::Set { .. }) => false,
            (Op::Ne, Value::One(_) | Value::Set { .. }) => true,
            _ => return Err(unsupported(v.at(), "this comparison of `fib … type`")),
        };
        let set = v.items().iter().try_fold(AddrTypes::default(), |s, w| {
            Ok::<_, Problem>(s.with(value::addr_type(w)?))
        })?;
        let slot = if side.text == "saddr" {
            &mut self.m.src_type
        } else {
            &mut self.m.dst_type
        };
        Self::once(slot, side, SetMatch { set, negated })
    }

    /// `meta random & 2147483647 < N` (xt_statistic's draw, as iptables-nft lists it).
    fn random(&mut self, key: &Word) -> Result<(), Problem> {
        let shape = [self.word(), self.word(), self.word(), self.word()];
        let [Some(and), Some(mask), Some(lt), Some(n)] = shape else {
            return Err(unsupported(key, "this use of `meta random`"));
        };
        if and.text != "&" && and.text != "and"
            || lt.text != "<"
            || value::number(mask)? != 0x7fff_ffff
        {
            return Err(unsupported(
                key,
                "`meta random` other than `& 2147483647 < N`",
            ));
        }
        let n = value::number(n)?;
        self.probability(key, f64::from(n) / 2_147_483_648.0)
    }

    /// `numgen random mod M < P`.
    fn numgen(&mut self, key: &Word) -> Result<(), Problem> {
        let shape = [
            self.word(),
            self.word(),
            self.word(),
            self.word(),
            self.word(),
        ];
        let [Some(mode), Some(m), Some(modulus), Some(lt), Some(p)] = shape else {
            return Err(unsupported(key, "this use of `numgen`"));
        };
        if mode.text != "random" || m.text != "mod" || lt.text != "<" {
            return Err(unsupported(mode, "`numgen` other than `random mod M < P`"));
        }
        let (modulus, p) = (value::number(modulus)?, value::number(p)?);
        if modulus == 0 {
            return Err(bad(key, "`mod 0`", "write a modulus above 0"));
        }
        self.probability(key, f64::from(p) / f64::from(modulus))
    }

    fn probability(&mut self, key: &Word, p: f64) -> Result<(), Problem> {
        let ppb = (p.min(1.0) * 1e9).round() as u32;
        Self::once(&mut self.m.probability_ppb, key, ppb)
    }

    /// `log [prefix S] [level L] [flags F…]` as LOG's options.
    fn log(&mut self) -> Result<String, Problem> {
        let mut out = Vec::new();
        let mut flags = [false; 5];
        while let Some(t) = self.peek().filter(|t| t.kind == Kind::Word) {
            match t.at.text.as_str() {
                "prefix" => {
                    self.i += 1;
                    let v = self.value(&t.at)?;
                    let text = v.at().text.replace('\\', "\\\\");
                    out.push(format!("--log-prefix \"{text}\""));
                }
                "level" => {
                    self.i += 1;
                    let v = self.value(&t.at)?;
                    const LEVELS: [&str; 8] = [
                        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
                    ];
                    let n = LEVELS
                        .iter()
                        .position(|l| *l == v.at().text)
                        .ok_or_else(|| {
                            unsupported(v.at(), &format!("log level `{}`", v.at().text))
                        })?;
                    out.push(format!("--log-level {n}"));
                }
                "flags" => {
                    self.i += 1;
                    let f = self.word().ok_or_else(|| {
                        bad(
                            &t.at,
                            "`flags` needs a flag",
                            "write e.g. `flags tcp sequence`",
                        )
                    })?;
                    match f.text.as_str() {
                        "tcp" | "ip" => {
                            let v = self.value(f)?;
                            for o in v.items() {
                                let k = match (f.text.as_str(), o.text.as_str()) {
                                    ("tcp", "sequence") => 0,
                                    ("tcp", "options") => 1,
                                    ("ip", "options") => 2,
                                    _ => {
                                        return Err(unsupported(
                                            o,
                                            &format!("log flag `{} {}`", f.text, o.text),
                                        ));
                                    }
                                };
                                flags[k] = true;
                            }
                        }
                        "skuid" => flags[3] = true,
                        "ether" => flags[4] = true,
                        "all" => flags = [true; 5],
                        other => return Err(unsupported(f, &format!("log flag `{other}`"))),
                    }
                }
                "group" | "snaplen" | "queue-threshold" => {
                    return Err(unsupported(&t.at, &format!("`log {}` (nflog)", t.at.text)));
                }
                _ => break,
            }
        }
        const NAMES: [&str; 5] = [
            "--log-tcp-sequence",
            "--log-tcp-options",
            "--log-ip-options",
            "--log-uid",
            "--log-macdecode",
        ];
        out.extend(
            NAMES
                .iter()
                .zip(flags)
                .filter(|(_, on)| *on)
                .map(|(n, _)| (*n).to_owned()),
        );
        Ok(out.join(" "))
    }

    fn reject(&mut self, reject: &Word) -> Result<RejectWith, Problem> {
        if !self.peek().is_some_and(|t| t.is("with")) {
            return Ok(RejectWith::PortUnreachable);
        }
        self.i += 1;
        let kind = self.expect(reject, &["icmp", "icmpx", "tcp", "icmpv6"])?;
        if kind.text == "tcp" {
            self.expect(kind, &["reset"])?;
            self.need_proto(kind, L4::Tcp)?;
            return Ok(RejectWith::TcpReset);
        }
        if self.peek().is_some_and(|t| t.is("type")) {
            self.i += 1;
        }
        let code = self.word().ok_or_else(|| {
            bad(
                kind,
                "the reject type is missing",
                "write e.g. `reject with icmp type host-unreachable`",
            )
        })?;
        if kind.text == "icmpv6" {
            // nft makes the rule IPv6-only (`meta nfproto ipv6`).
            self.out.ipv6_only = Some(kind.clone());
            return Ok(RejectWith::PortUnreachable);
        }
        Ok(match (kind.text.as_str(), code.text.as_str()) {
            (_, "port-unreachable") => RejectWith::PortUnreachable,
            (_, "host-unreachable") => RejectWith::HostUnreachable,
            ("icmp", "net-unreachable") | ("icmpx", "no-route") => RejectWith::NetUnreachable,
            (_, "admin-prohibited") => RejectWith::AdminProhibited,
            _ => {
                return Err(unsupported(
                    code,
                    &format!("`reject with {} {}`", kind.text, code.text),
                ));
            }
        })
    }

    fn nat(&mut self, w: &Word) -> Result<Action, Problem> {
        let mut addr = None;
        if w.text != "masquerade" {
            if self.peek().is_some_and(|t| t.is("ip")) {
                self.i += 1;
            }
            let to = self.expect(w, &["to"])?;
            let target = self
                .word()
                .ok_or_else(|| bad(to, "an address is missing", "write `to ADDRESS`"))?;
            let (a, port) = match target.text.split_once(':') {
                Some((a, p)) => (a, Some(p)),
                None => (target.text.as_str(), None),
            };
            if a.contains('-')
                || port.is_some_and(|p| p.contains('-'))
                || a.is_empty()
                || self.peek().is_some_and(|t| t.is("map"))
            {
                return Err(unsupported(target, "a translation to a range or a map"));
            }
            let port = match port {
                Some(_) if w.text == "snat" => {
                    return Err(unsupported(target, "an SNAT to a port"));
                }
                Some(p) => Some(p.parse::<u16>().ok().and_then(Port::new).ok_or_else(|| {
                    bad(
                        target,
                        format!("`{p}` is not a port"),
                        "write a port from 1 to 65535",
                    )
                })?),
                None => None,
            };
            let address = match value::address(target, a) {
                Err(_) if a.bytes().any(|b| b.is_ascii_alphabetic()) => {
                    return Err(unsupported(
                        target,
                        "a translation to anything but one address",
                    ));
                }
                other => other?,
            };
            addr = Some((address, port));
        } else if self.peek().is_some_and(|t| t.is("to")) {
            return Err(unsupported(w, "`masquerade to :PORT`"));
        }
        let mut flags = NatFlags::default();
        while let Some(t) = self.peek().filter(|t| {
            t.kind == Kind::Comma
                || ["random", "fully-random", "persistent"].contains(&t.at.text.as_str())
        }) {
            self.i += 1;
            match t.at.text.as_str() {
                "random" => flags.random = true,
                "fully-random" => flags.random_fully = true,
                "persistent" => {
                    return Err(unsupported(
                        &t.at,
                        "`persistent` (the model keeps random and fully-random only)",
                    ));
                }
                _ => {}
            }
        }
        Ok(match (w.text.as_str(), addr) {
            ("masquerade", _) => Action::Masquerade(flags),
            ("snat", Some((a, _))) => Action::Snat(a, flags),
            (_, Some((a, port))) if flags == NatFlags::default() => Action::Dnat(a, port),
            _ => return Err(unsupported(w, "a DNAT with random or fully-random")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::tokens;
    use super::*;

    fn read(line: &str) -> Result<ReadRule, Problem> {
        let toks: Vec<Token> = tokens(line).expect("closed");
        read_rule(&toks, &|name| match name {
            "eth0" => Some(IfaceId(0)),
            "wan0" => Some(IfaceId(1)),
            "lo" => Some(IfaceId::LOOPBACK),
            _ => None,
        })
    }

    fn one(line: &str) -> (Match, Action) {
        let r = read(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(r.steps.len(), 1, "{line}");
        let s = r.steps.into_iter().next().expect("step");
        (s.matches, s.action)
    }

    #[test]
    fn interfaces_addresses_and_their_negations() {
        let (m, a) = one(
            "iifname != \"lo\" meta l4proto != udp ip saddr 10.0.0.7/24 ip daddr != 10.1.0.0/16 counter packets 0 bytes 0 accept",
        );
        assert_eq!(m.not_in_iface, Some(IfaceId::LOOPBACK));
        assert_eq!(m.not_proto, Some(L4::Udp));
        assert_eq!(m.src, Some("10.0.0.0/24".parse().expect("net")));
        assert_eq!(m.not_dst, Some("10.1.0.0/16".parse().expect("net")));
        assert_eq!(a, Action::Accept);
        let (m, _) = one("oif \"wan0\" ip daddr != 10.0.0.1-10.0.0.9 ip saddr { 10.0.0.1 } drop");
        assert_eq!(m.out_iface, Some(IfaceId(1)));
        assert_eq!(
            m.dst_range,
            Some(AddrRange {
                first: Ipv4Addr::new(10, 0, 0, 1),
                last: Ipv4Addr::new(10, 0, 0, 9),
                negated: true
            })
        );
        assert_eq!(m.src, Some("10.0.0.1/32".parse().expect("net")));
    }

    #[test]
    fn ports_imply_their_protocol_and_sets_are_multiport() {
        let (m, a) = one("tcp sport != 10-20 tcp dport 22 reject with tcp reset");
        assert_eq!(
            (m.proto, m.not_sport, m.dport),
            (Some(L4::Tcp), Some((10, 20)), Some((22, 22)))
        );
        assert_eq!(a, Action::Reject(RejectWith::TcpReset));
        let (m, _) = one("meta l4proto udp udp dport != { 53, 1000-2000 } accept");
        assert_eq!(
            m.multiport,
            Some(Multiport {
                side: PortSide::Destination,
                ranges: vec![(53, 53), (1000, 2000)],
                negated: true
            })
        );
        let e = read("meta l4proto udp tcp dport 22 accept").expect_err("contradiction");
        assert_eq!(e.code, Code::BadValue);
        let (m, _) = one("reject with tcp reset");
        assert_eq!(m.proto, Some(L4::Tcp), "nft adds `meta l4proto tcp`");
    }

    #[test]
    fn conntrack_states_and_status_bits_as_the_model_holds_them() {
        let (m, _) = one("ct state established,related accept");
        assert_eq!(m.states, States::ESTABLISHED.with(States::RELATED));
        let (m, _) = one("ct state != { established, new } drop");
        assert_eq!(m.states, States::INVALID.with(States::RELATED));
        let (m, _) = one("ct state ! invalid,new accept");
        assert_eq!(m.states, States::ESTABLISHED.with(States::RELATED));
        let (m, _) = one("ct status dnat accept");
        assert_eq!((m.states, m.not_states), (States::DNAT, States::any()));
        let (m, _) = one("ct state new ct status dnat accept");
        assert_eq!(m.states, States::DNAT);
        assert_eq!(
            m.not_states,
            States::ESTABLISHED
                .with(States::RELATED)
                .with(States::INVALID)
        );
        let (m, _) = one("ct status ! dnat accept");
        assert_eq!(
            m.not_states,
            States::DNAT.with(States::INVALID),
            "nft: no connection, no match"
        );
        let (m, _) = one("ct status seen-reply accept");
        assert_eq!(
            m.status,
            Some(SetMatch {
                set: CtStatus::SEEN_REPLY,
                negated: false
            })
        );
        assert!(
            m.not_states.is_any(),
            "the model's status alone already needs a connection"
        );
        let (m, _) = one("ct state invalid,new ct status ! expected,confirmed accept");
        assert_eq!(
            m.status,
            Some(SetMatch {
                set: CtStatus::EXPECTED.with(CtStatus::CONFIRMED),
                negated: true
            })
        );
        assert!(m.not_states.contains(States::INVALID));
        for bad in [
            "ct status != dnat accept",
            "ct status { dnat } accept",
            "ct status confirmed,dnat accept",
            "ct state untracked accept",
        ] {
            assert_eq!(
                read(bad).map_err(|e| e.code).err(),
                Some(Code::Unsupported),
                "{bad}"
            );
        }
    }

    #[test]
    fn marks_match_and_set_as_xt_mark_does() {
        let (m, _) = one("meta mark & 0x00004000 == 0x00004000 ct mark and 0x3 != 0x1 accept");
        assert_eq!(
            m.mark,
            Some(MarkMatch {
                value: 0x4000,
                mask: 0x4000,
                negated: false
            })
        );
        assert_eq!(
            m.connmark,
            Some(MarkMatch {
                value: 1,
                mask: 3,
                negated: true
            })
        );
        let set = |line: &str| one(line).1;
        assert_eq!(
            set("meta mark set 0x1"),
            Action::Mark(MarkSet {
                value: 1,
                mask: u32::MAX
            })
        );
        assert_eq!(
            set("meta mark set mark or 0x4000"),
            Action::Mark(MarkSet {
                value: 0x4000,
                mask: 0x4000
            })
        );
        assert_eq!(
            set("meta mark set mark and 0xfffffff0 xor 0x3"),
            Action::Mark(MarkSet {
                value: 3,
                mask: 0xf
            })
        );
        assert_eq!(
            set("meta mark set meta mark & 0xffff02ff | 0x00000200"),
            Action::Mark(MarkSet {
                value: 0x200,
                mask: 0xff00
            })
        );
        assert_eq!(
            set("ct mark set ct mark xor 0x3"),
            Action::ConnMark(ConnMarkOp::Set(MarkSet { value: 3, mask: 0 }))
        );
        assert_eq!(
            set("ct mark set mark and 0xff"),
            Action::ConnMark(ConnMarkOp::Save {
                nfmask: 0xff,
                ctmask: u32::MAX
            })
        );
        assert_eq!(
            set("meta mark set ct mark"),
            Action::ConnMark(ConnMarkOp::Restore {
                nfmask: u32::MAX,
                ctmask: u32::MAX
            })
        );
        assert!(read("meta mark set ct mark or 0x1").is_err());
    }

    #[test]
    fn address_types_draws_and_logs() {
        let (m, _) = one("fib saddr type != { local, broadcast } fib daddr type 11 accept");
        assert_eq!(
            m.src_type,
            Some(SetMatch {
                set: AddrTypes::LOCAL.with(AddrTypes::BROADCAST),
                negated: true
            })
        );
        assert_eq!(
            m.dst_type,
            Some(SetMatch {
                set: AddrTypes::XRESOLVE,
                negated: false
            })
        );
        let (m, _) = one("meta random & 2147483647 < 536870912 accept");
        assert_eq!(m.probability_ppb, Some(250_000_000));
        let (m, _) = one("numgen random mod 1000000000 < 330000000 accept");
        assert_eq!(m.probability_ppb, Some(330_000_000));
        assert_eq!(one("log prefix \"x y \" level info flags tcp sequence,options flags skuid").1, Action::Log("--log-prefix \"x y \" --log-level 6 --log-tcp-sequence --log-tcp-options --log-uid".into()));
        assert_eq!(one("log").1, Action::Log(String::new()));
        let e = read("fib saddr type counter packets 0 bytes 0 accept").expect_err("untyped");
        assert_eq!((e.code, e.at.text.as_str()), (Code::Unsupported, "type"));
    }

    #[test]
    fn effects_then_a_verdict_are_steps_with_the_matches_before_them() {
        let r = read("ct state new log prefix \"new \" tcp dport 22 accept comment \"ssh\"")
            .expect("reads");
        assert_eq!(r.steps.len(), 2);
        assert_eq!(r.steps[0].matches.dport, None);
        assert_eq!(r.steps[1].matches.dport, Some((22, 22)));
        assert_eq!(r.comment.as_deref(), Some("ssh"));
        let e = read("meta mark 0x1 meta mark set 0x2 accept").expect_err("re-read");
        assert_eq!(e.code, Code::Unsupported);
        let e = read("accept drop").expect_err("after a verdict");
        assert_eq!(e.at.text, "drop");
        // A rule that only counts: one step that counts, with its matches.
        let counting = read("tcp dport 22 counter").expect("reads");
        assert_eq!(counting.steps.len(), 1);
        assert_eq!(counting.steps[0].action, Action::Count);
        assert_eq!(counting.steps[0].matches.dport, Some((22, 22)));
    }

    #[test]
    fn ipv6_only_rules_are_set_aside() {
        for line in [
            "ip6 nexthdr ipv6-icmp accept",
            "meta nfproto ipv6 drop",
            "meta l4proto ipv6-icmp accept",
            "meta nfproto != ipv4 drop",
            "reject with icmpv6 type admin-prohibited",
        ] {
            let r = read(line).expect(line);
            assert!(r.ipv6_only.is_some() && r.steps.is_empty(), "{line}");
        }
        let (m, _) = one("meta nfproto ipv4 accept");
        assert_eq!(m, Match::default());
    }

    #[test]
    fn nat_statements() {
        assert_eq!(
            one("tcp dport 80 dnat to 10.0.0.2:8080").1,
            Action::Dnat(Ipv4Addr::new(10, 0, 0, 2), Port::new(8080))
        );
        assert_eq!(
            one("dnat ip to 10.0.0.3").1,
            Action::Dnat(Ipv4Addr::new(10, 0, 0, 3), None)
        );
        assert_eq!(
            one("masquerade random,fully-random").1,
            Action::Masquerade(NatFlags {
                random: true,
                random_fully: true
            })
        );
        assert_eq!(
            one("snat to 1.2.3.4 fully-random").1,
            Action::Snat(
                Ipv4Addr::new(1, 2, 3, 4),
                NatFlags {
                    random: false,
                    random_fully: true
                }
            )
        );
        for line in [
            "snat to 1.2.3.4-1.2.3.9",
            "masquerade persistent",
            "dnat to 1.2.3.4 random",
            "redirect to :80",
            "masquerade to :1024-2048",
        ] {
            assert_eq!(
                read(line).map_err(|e| e.code).err(),
                Some(Code::Unsupported),
                "{line}"
            );
        }
    }

    #[test]
    fn what_is_not_modelled_is_said_at_its_word() {
        for (line, word) in [
            ("iifname \"eth*\" accept", "eth*"),
            ("iifname { \"eth0\", \"wan0\" } accept", "{"),
            ("ip saddr { 10.0.0.1, 10.0.0.2 } accept", "{"),
            ("tcp flags & syn == syn accept", "flags"),
            ("icmp type echo-request accept", "icmp"),
            ("fib daddr . iif type local accept", "daddr"),
            (
                "meta l4proto tcp tcp sport . tcp dport { 0-65535 . 53 } accept",
                "sport",
            ),
            ("xt match conntrack accept", "xt"),
            ("counter xt target CONNMARK", "xt"),
            ("limit rate 10/second accept", "limit"),
            ("ct direction original accept", "direction"),
            ("reject with icmp type host-prohibited", "host-prohibited"),
            ("log group 2", "group"),
            ("ip ttl 1 drop", "ttl"),
            ("meta skuid 0 accept", "skuid"),
            ("numgen inc mod 2 0 accept", "inc"),
        ] {
            let e = read(line).expect_err(line);
            assert_eq!(
                (e.code, e.at.text.as_str()),
                (Code::Unsupported, word),
                "{line}: {e:?}"
            );
        }
        let e = read("iifname \"wlan0\" accept").expect_err("unknown");
        assert_eq!(e.code, Code::UnknownReference);
    }

    #[test]
    fn garbage_never_panics() {
        for line in [
            "",
            "ip",
            "ip saddr",
            "ip saddr !=",
            "tcp",
            "tcp dport {",
            "ct",
            "ct mark set",
            "ct mark &",
            "meta",
            "meta mark set mark and",
            "meta random &",
            "numgen random mod 0 < 1",
            "fib",
            "fib daddr type",
            "log prefix",
            "log level",
            "log flags",
            "log flags tcp",
            "reject with",
            "reject with icmp type",
            "dnat",
            "dnat to",
            "dnat to :",
            "snat to 1.2.3.4:",
            "jump",
            "comment",
            "counter packets",
            "== != !",
            "{ } ,",
            "ct state ! { new }",
            "ct status !",
            "tcp dport 99999",
            "ip saddr 1.2.3.4/99",
            "meta mark & 0x1 { 1 }",
        ] {
            let _ = read(line);
        }
    }
}
