//! One `-A CHAIN …` line's words read into a [`Match`] and a target, with iptables' own
//! refusals (a port without its protocol, more than 15 multiport ports, an unknown option)
//! and a clear "not modelled" for what the model does not hold. docs/netfilter.md,
//! "Reading iptables-save text".

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::parse::Word;
use super::recent::{RecentDraft, takes_value};
use crate::format::Code;
use crate::model::{
    AddrRange, AddrTypes, ConnMarkOp, CtStatus, IfaceId, L4, MarkMatch, MarkSet, Match, Module,
    Multiport, NatFlags, PortSide, RejectWith, SetMatch, States,
};

/// A problem with a word of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Word,
    pub code: Code,
    pub message: String,
    pub hint: String,
}

impl Problem {
    pub fn new(at: &Word, code: Code, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            at: at.clone(),
            code,
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn unsupported(at: &Word, what: &str) -> Self {
        Problem::new(
            at,
            Code::Unsupported,
            format!("{what} is not modelled"),
            "remove it, or describe its effect with rules reachlab models (docs/netfilter.md lists them)",
        )
    }

    pub(super) fn bad(at: &Word, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem::new(at, Code::BadValue, message, hint)
    }
}

/// What a rule's `-j`/`-g` says, before the table decides whether it may say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Accept,
    Drop,
    Return,
    Reject(RejectWith),
    Dnat(Ipv4Addr, Option<crate::model::Port>),
    Snat(Ipv4Addr, NatFlags),
    Masquerade(NatFlags),
    Mark(MarkSet),
    ConnMark(ConnMarkOp),
    Log(String),
    /// No `-j`/`-g`: the rule only counts packets.
    Count,
    /// `-j NAME` (`goto: false`) or `-g NAME` of a user chain, resolved by the table.
    Chain {
        name: Word,
        goto: bool,
    },
}

/// A rule line read: its matches, target and comment, and the word of its target.
#[derive(Debug, Clone)]
pub struct ReadRule {
    pub matches: Match,
    pub target: TargetSpec,
    pub target_word: Word,
    pub comment: Option<String>,
    /// `-i` / `-o` words, for the checks that depend on the chain.
    pub in_word: Option<Word>,
    pub out_word: Option<Word>,
}

/// Reads a rule's words. `iface` resolves an interface name of the node (`lo` included).
pub fn read_rule(
    chain: &Word,
    args: &[Word],
    iface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Result<ReadRule, Problem> {
    let mut r = Reader {
        args,
        i: 0,
        iface,
        m: Match::default(),
        module: None,
        recent: None,
        comment: None,
        in_word: None,
        out_word: None,
    };
    let target = r.words()?;
    let (target, target_word) = target.unwrap_or_else(|| (TargetSpec::Count, chain.clone()));
    r.check_protocols(&target_word, &target)?;
    Ok(ReadRule {
        matches: r.m,
        target,
        target_word,
        comment: r.comment,
        in_word: r.in_word,
        out_word: r.out_word,
    })
}

struct Reader<'a> {
    args: &'a [Word],
    i: usize,
    iface: &'a dyn Fn(&str) -> Option<IfaceId>,
    m: Match,
    /// The `-m` module whose options follow, and its word.
    module: Option<&'a Word>,
    /// The options of a `-m recent` being read.
    recent: Option<RecentDraft>,
    comment: Option<String>,
    in_word: Option<Word>,
    out_word: Option<Word>,
}

const MODULES: [&str; 12] = [
    "tcp",
    "udp",
    "multiport",
    "conntrack",
    "state",
    "addrtype",
    "iprange",
    "mark",
    "connmark",
    "comment",
    "statistic",
    "recent",
];

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<&'a Word> {
        let w = self.args.get(self.i)?;
        self.i += 1;
        Some(w)
    }

    fn value(&mut self, option: &Word) -> Result<&'a Word, Problem> {
        self.next().ok_or_else(|| {
            Problem::bad(
                option,
                format!("`{}` needs a value", option.text),
                "iptables-save writes every option with its value",
            )
        })
    }

    /// Reads every word; the target and its word when there is one.
    fn words(&mut self) -> Result<Option<(TargetSpec, Word)>, Problem> {
        let mut negated: Option<&Word> = None;
        while let Some(w) = self.next() {
            if w.text == "!" {
                negated = Some(w);
                continue;
            }
            let not = negated.take().is_some();
            match w.text.as_str() {
                "-j" | "--jump" | "-g" | "--goto" => {
                    if not {
                        return Err(Problem::bad(
                            w,
                            "a target cannot be negated",
                            "remove the `!`",
                        ));
                    }
                    let name = self.value(w)?;
                    self.end_recent()?;
                    let goto = w.text == "-g" || w.text == "--goto";
                    let target = self.target(name, goto)?;
                    if let Some(extra) = self.args.get(self.i) {
                        return Err(Problem::bad(
                            extra,
                            format!("`{}` after the target's options", extra.text),
                            "iptables-save writes the target last; move the match before `-j`",
                        ));
                    }
                    return Ok(Some((target, name.clone())));
                }
                "-m" | "--match" => {
                    let name = self.value(w)?;
                    if not {
                        return Err(Problem::bad(
                            w,
                            "`-m` cannot be negated",
                            "put `!` before the option to negate",
                        ));
                    }
                    if !MODULES.contains(&name.text.as_str()) {
                        return Err(Problem::unsupported(name, &format!("`-m {}`", name.text)));
                    }
                    self.end_recent()?;
                    self.m.order.push(match name.text.as_str() {
                        "comment" => Module::Comment,
                        "tcp" => Module::Tcp,
                        "udp" => Module::Udp,
                        "multiport" => Module::Multiport,
                        "conntrack" | "state" => Module::Conntrack,
                        "addrtype" => Module::Addrtype,
                        "iprange" => Module::Iprange,
                        "mark" => Module::Mark,
                        "connmark" => Module::Connmark,
                        "statistic" => Module::Statistic,
                        _ => Module::Recent,
                    });
                    if name.text == "recent" {
                        if self.m.recent.is_some() {
                            return Err(Problem::unsupported(
                                name,
                                "a second `-m recent` in one rule",
                            ));
                        }
                        self.recent = Some(RecentDraft::new(name));
                    }
                    self.module = Some(name);
                }
                _ if !w.text.starts_with("--") => self.basic(w, not)?,
                _ if self.recent.is_some() => {
                    let value = if takes_value(&w.text) {
                        Some(self.value(w)?)
                    } else {
                        None
                    };
                    if let Some(draft) = self.recent.as_mut() {
                        draft.option(w, not, value)?;
                    }
                }
                _ => self.module_option(w, not)?,
            }
        }
        self.end_recent()?;
        Ok(None)
    }

    /// Ends the `-m recent` being read, if any. The walk asks a rule's `-m recent` after
    /// every other match but `-m statistic`: one that changes its list must not come after
    /// a random match (the kernel would change the list only for the packets drawn).
    fn end_recent(&mut self) -> Result<(), Problem> {
        let Some(draft) = self.recent.take() else {
            return Ok(());
        };
        let recent = draft.finish()?;
        if recent.changes_list()
            && self.m.probability_ppb.is_some()
            && let Some(module) = self.module
        {
            return Err(Problem::unsupported(
                module,
                "`-m recent` that changes its list after `-m statistic`",
            ));
        }
        self.m.recent = Some(Box::new(recent));
        Ok(())
    }

    /// `-s`, `-d`, `-i`, `-o`, `-p`.
    fn basic(&mut self, w: &'a Word, not: bool) -> Result<(), Problem> {
        match w.text.as_str() {
            "-s" | "--source" | "-d" | "--destination" => {
                let v = self.value(w)?;
                let net = prefix(v)?;
                let slot = match (w.text.starts_with("-s") || w.text == "--source", not) {
                    (true, false) => &mut self.m.src,
                    (true, true) => &mut self.m.not_src,
                    (false, false) => &mut self.m.dst,
                    (false, true) => &mut self.m.not_dst,
                };
                *slot = Some(net);
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let v = self.value(w)?;
                let id = self.interface(v)?;
                let incoming = w.text == "-i" || w.text == "--in-interface";
                if incoming {
                    self.in_word = Some(w.clone());
                } else {
                    self.out_word = Some(w.clone());
                }
                let slot = match (incoming, not) {
                    (true, false) => &mut self.m.in_iface,
                    (true, true) => &mut self.m.not_in_iface,
                    (false, false) => &mut self.m.out_iface,
                    (false, true) => &mut self.m.not_out_iface,
                };
                *slot = Some(id);
            }
            "-p" | "--protocol" => {
                let v = self.value(w)?;
                let proto = match v.text.to_ascii_lowercase().as_str() {
                    "tcp" | "6" => Some(L4::Tcp),
                    "udp" | "17" => Some(L4::Udp),
                    "icmp" | "1" => Some(L4::Icmp),
                    "all" | "0" => None,
                    other => return Err(Problem::unsupported(v, &format!("protocol `{other}`"))),
                };
                match (proto, not) {
                    (Some(p), false) => self.m.proto = Some(p),
                    (Some(p), true) => self.m.not_proto = Some(p),
                    (None, false) => {}
                    (None, true) => {
                        return Err(Problem::unsupported(
                            v,
                            "`! -p all` (a rule that matches nothing)",
                        ));
                    }
                }
            }
            "-f" | "--fragment" => return Err(Problem::unsupported(w, "`-f` (fragments)")),
            other => {
                return Err(Problem::bad(
                    w,
                    format!("unknown option `{other}`"),
                    "iptables-save writes -s, -d, -i, -o, -p, -m, -j and -g; a module's options start with `--`",
                ));
            }
        }
        Ok(())
    }

    fn interface(&self, v: &Word) -> Result<IfaceId, Problem> {
        if v.text.ends_with('+') {
            return Err(Problem::unsupported(
                v,
                &format!("the interface wildcard `{}`", v.text),
            ));
        }
        (self.iface)(&v.text).ok_or_else(|| {
            Problem::new(
                v,
                Code::UnknownReference,
                format!("the node has no interface `{}`", v.text),
                "name one of the node's interfaces (or `lo`), or add the interface to the node",
            )
        })
    }

    fn module_option(&mut self, w: &'a Word, not: bool) -> Result<(), Problem> {
        let Some(module) = self.module else {
            return Err(Problem::bad(
                w,
                format!("`{}` without the `-m` module it belongs to", w.text),
                "write the module first, as iptables-save does: `-m tcp --dport 22`",
            ));
        };
        let option = w.text.as_str();
        if !matches!(module.text.as_str(), "comment" | "statistic")
            && self.m.recent.as_ref().is_some_and(|r| r.changes_list())
        {
            // The kernel asks the matches in order: a match after the list changed would not
            // undo the change, and the walk asks `-m recent` after it.
            return Err(Problem::unsupported(
                w,
                &format!(
                    "`-m {} {option}` after a `-m recent` that changes its list (write it before `-m recent`)",
                    module.text
                ),
            ));
        }
        match (module.text.as_str(), option) {
            ("tcp" | "udp", "--dport" | "--destination-port" | "--sport" | "--source-port") => {
                let v = self.value(w)?;
                let range = port_range(v)?;
                let dst = option.starts_with("--d");
                let slot = match (dst, not) {
                    (true, false) => &mut self.m.dport,
                    (true, true) => &mut self.m.not_dport,
                    (false, false) => &mut self.m.sport,
                    (false, true) => &mut self.m.not_sport,
                };
                *slot = Some(range);
            }
            ("multiport", _) => {
                let side = match option {
                    "--dports" | "--destination-ports" => PortSide::Destination,
                    "--sports" | "--source-ports" => PortSide::Source,
                    "--ports" => PortSide::Either,
                    _ => return Err(Problem::unsupported(w, &format!("`-m multiport {option}`"))),
                };
                let v = self.value(w)?;
                self.m.multiport = Some(Multiport {
                    side,
                    ranges: port_list(v)?,
                    negated: not,
                });
            }
            ("conntrack", "--ctstate") | ("state", "--state") => {
                let v = self.value(w)?;
                let states = state_list(v)?;
                if not {
                    self.m.not_states = self.m.not_states.with(states);
                } else {
                    self.m.states = self.m.states.with(states);
                }
            }
            ("conntrack", "--ctstatus") => {
                let v = self.value(w)?;
                self.m.status = Some(SetMatch {
                    set: status_list(v)?,
                    negated: not,
                });
            }
            ("addrtype", "--src-type" | "--dst-type") => {
                let v = self.value(w)?;
                let set = Some(SetMatch {
                    set: type_list(v)?,
                    negated: not,
                });
                if option == "--src-type" {
                    self.m.src_type = set;
                } else {
                    self.m.dst_type = set;
                }
            }
            ("iprange", "--src-range" | "--dst-range") => {
                let v = self.value(w)?;
                let (first, last) = match v.text.split_once('-') {
                    Some((a, b)) => (address(v, a)?, address(v, b)?),
                    None => (address(v, &v.text)?, address(v, &v.text)?),
                };
                let range = Some(AddrRange {
                    first,
                    last,
                    negated: not,
                });
                if option == "--src-range" {
                    self.m.src_range = range;
                } else {
                    self.m.dst_range = range;
                }
            }
            ("mark" | "connmark", "--mark") => {
                let v = self.value(w)?;
                let (value, mask) = mark_pair(v)?;
                let m = Some(MarkMatch {
                    value,
                    mask,
                    negated: not,
                });
                if module.text == "mark" {
                    self.m.mark = m;
                } else {
                    self.m.connmark = m;
                }
            }
            ("comment", "--comment") if !not => {
                self.comment = Some(self.value(w)?.text.clone());
            }
            ("statistic", "--mode") if !not => {
                let v = self.value(w)?;
                if v.text != "random" {
                    return Err(Problem::unsupported(
                        v,
                        &format!("`-m statistic --mode {}`", v.text),
                    ));
                }
            }
            ("statistic", "--probability") if !not => {
                let v = self.value(w)?;
                let p: f64 = v
                    .text
                    .parse()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        Problem::bad(
                            v,
                            format!("`{}` is not a probability", v.text),
                            "write a number from 0 to 1",
                        )
                    })?;
                self.m.probability_ppb = Some((p * 1e9).round() as u32);
            }
            _ => {
                let what = format!("`{}{} {option}`", if not { "! " } else { "" }, module.text);
                return Err(Problem::unsupported(
                    w,
                    &format!("{what} (in `-m {}`)", module.text),
                ));
            }
        }
        Ok(())
    }

    /// A port match needs its protocol (iptables: "TCP match requires '-p tcp'"), as does a
    /// TCP reset.
    fn check_protocols(&self, target_word: &Word, target: &TargetSpec) -> Result<(), Problem> {
        let m = &self.m;
        let ports = m.sport.is_some()
            || m.not_sport.is_some()
            || m.dport.is_some()
            || m.not_dport.is_some()
            || m.multiport.is_some();
        let tcp_or_udp = matches!(m.proto, Some(L4::Tcp | L4::Udp));
        if let (true, Some(module)) = (ports, self.port_module()) {
            let wanted = match module.text.as_str() {
                "tcp" => m.proto == Some(L4::Tcp),
                "udp" => m.proto == Some(L4::Udp),
                _ => tcp_or_udp,
            };
            if !wanted {
                return Err(Problem::bad(
                    module,
                    format!("`-m {}` needs its protocol", module.text),
                    "add `-p tcp` or `-p udp` before it (iptables says: TCP match requires '-p tcp')",
                ));
            }
        }
        if *target == TargetSpec::Reject(RejectWith::TcpReset) && m.proto != Some(L4::Tcp) {
            return Err(Problem::bad(
                target_word,
                "a TCP reset needs `-p tcp`",
                "add `-p tcp` (iptables says: TCP RST can only be used with -p tcp)",
            ));
        }
        Ok(())
    }

    /// The last `-m tcp`, `-m udp` or `-m multiport` word.
    fn port_module(&self) -> Option<&'a Word> {
        let args = self.args;
        args.windows(2)
            .filter(|w| {
                w[0].text == "-m" && matches!(w[1].text.as_str(), "tcp" | "udp" | "multiport")
            })
            .map(|w| &w[1])
            .next_back()
    }

    fn target(&mut self, name: &'a Word, goto: bool) -> Result<TargetSpec, Problem> {
        let builtin = [
            "ACCEPT",
            "DROP",
            "RETURN",
            "REJECT",
            "DNAT",
            "SNAT",
            "MASQUERADE",
            "MARK",
            "CONNMARK",
            "LOG",
        ];
        if goto || !builtin.contains(&name.text.as_str()) {
            return Ok(TargetSpec::Chain {
                name: name.clone(),
                goto,
            });
        }
        let mut opts = Options::new(self.args, self.i);
        let spec = match name.text.as_str() {
            "ACCEPT" => TargetSpec::Accept,
            "DROP" => TargetSpec::Drop,
            "RETURN" => TargetSpec::Return,
            "REJECT" => TargetSpec::Reject(match opts.take("--reject-with")? {
                None => RejectWith::PortUnreachable,
                Some(v) => reject_with(v)?,
            }),
            "DNAT" => {
                let to = opts.require("--to-destination", name)?;
                let (addr, port) = match to.text.split_once(':') {
                    Some((a, p)) => (a, Some(p)),
                    None => (to.text.as_str(), None),
                };
                if addr.contains('-') || port.is_some_and(|p| p.contains('-')) {
                    return Err(Problem::unsupported(to, "a DNAT to a range"));
                }
                let port = match port {
                    Some(p) => Some(
                        p.parse::<u16>()
                            .ok()
                            .and_then(crate::model::Port::new)
                            .ok_or_else(|| {
                                Problem::bad(
                                    to,
                                    format!("`{p}` is not a port"),
                                    "write a port from 1 to 65535",
                                )
                            })?,
                    ),
                    None => None,
                };
                TargetSpec::Dnat(address(to, addr)?, port)
            }
            "SNAT" => {
                let to = opts.require("--to-source", name)?;
                if to.text.contains(['-', ':']) {
                    return Err(Problem::unsupported(to, "an SNAT to a range or port"));
                }
                let addr = address(to, &to.text)?;
                TargetSpec::Snat(addr, opts.nat_flags())
            }
            "MASQUERADE" => TargetSpec::Masquerade(opts.nat_flags()),
            "MARK" => TargetSpec::Mark(opts.mark_set()?.ok_or_else(|| {
                Problem::bad(
                    name,
                    "`-j MARK` needs `--set-xmark` or another mark option",
                    "write `-j MARK --set-xmark VALUE/MASK`",
                )
            })?),
            "CONNMARK" => TargetSpec::ConnMark(opts.connmark(name)?),
            "LOG" => TargetSpec::Log(opts.rest()),
            _ => unreachable!("listed above"),
        };
        if let Some(left) = opts.left() {
            if !left.text.starts_with("--") {
                return Err(Problem::bad(
                    left,
                    format!("`{}` after the target", left.text),
                    "iptables-save writes the target last; move the match before `-j`",
                ));
            }
            return Err(Problem::unsupported(
                left,
                &format!("`-j {} {}`", name.text, left.text),
            ));
        }
        self.i = self.args.len();
        Ok(spec)
    }
}

/// A target's options, taken one by one; what is left is refused.
struct Options<'a> {
    words: Vec<(&'a Word, Option<&'a Word>)>,
    raw: &'a [Word],
}

impl<'a> Options<'a> {
    fn new(args: &'a [Word], from: usize) -> Self {
        let raw = args.get(from..).unwrap_or(&[]);
        let mut words = Vec::new();
        let mut i = 0;
        while let Some(w) = raw.get(i) {
            let value = raw.get(i + 1).filter(|v| !v.text.starts_with("--"));
            words.push((w, value));
            i += 1 + usize::from(value.is_some());
        }
        Options { words, raw }
    }

    fn take(&mut self, option: &str) -> Result<Option<&'a Word>, Problem> {
        let Some(at) = self.words.iter().position(|(w, _)| w.text == option) else {
            return Ok(None);
        };
        let (w, value) = self.words.remove(at);
        value.map(Some).ok_or_else(|| {
            Problem::bad(
                w,
                format!("`{option}` needs a value"),
                "iptables-save writes every option with its value",
            )
        })
    }

    fn flag(&mut self, option: &str) -> bool {
        match self
            .words
            .iter()
            .position(|(w, v)| w.text == option && v.is_none())
        {
            Some(at) => {
                self.words.remove(at);
                true
            }
            None => false,
        }
    }

    fn require(&mut self, option: &str, target: &Word) -> Result<&'a Word, Problem> {
        self.take(option)?.ok_or_else(|| {
            Problem::bad(
                target,
                format!("`-j {}` needs `{option}`", target.text),
                format!("add `{option} …`"),
            )
        })
    }

    fn nat_flags(&mut self) -> NatFlags {
        NatFlags {
            random: self.flag("--random"),
            random_fully: self.flag("--random-fully"),
        }
    }

    /// `--set-xmark`, `--set-mark`, `--or-mark`, `--and-mark`, `--xor-mark` as libxt_MARK
    /// reads them.
    fn mark_set(&mut self) -> Result<Option<MarkSet>, Problem> {
        if let Some(v) = self.take("--set-xmark")? {
            let (value, mask) = mark_pair(v)?;
            return Ok(Some(MarkSet { value, mask }));
        }
        if let Some(v) = self.take("--set-mark")? {
            let (value, mask) = mark_pair(v)?;
            return Ok(Some(MarkSet {
                value,
                mask: mask | value,
            }));
        }
        for (option, make) in [
            (
                "--or-mark",
                (|v| MarkSet { value: v, mask: v }) as fn(u32) -> MarkSet,
            ),
            ("--and-mark", |v| MarkSet { value: 0, mask: !v }),
            ("--xor-mark", |v| MarkSet { value: v, mask: 0 }),
        ] {
            if let Some(v) = self.take(option)? {
                return Ok(Some(make(number(v, &v.text)?)));
            }
        }
        Ok(None)
    }

    fn connmark(&mut self, name: &Word) -> Result<ConnMarkOp, Problem> {
        if let Some(set) = self.mark_set()? {
            return Ok(ConnMarkOp::Set(set));
        }
        let save = self.flag("--save-mark");
        let restore = !save && self.flag("--restore-mark");
        if !save && !restore {
            return Err(Problem::bad(
                name,
                "`-j CONNMARK` needs `--set-xmark`, `--save-mark` or `--restore-mark`",
                "write one of them",
            ));
        }
        let mask = self
            .take("--mask")?
            .map(|v| number(v, &v.text))
            .transpose()?;
        let nfmask = self
            .take("--nfmask")?
            .map(|v| number(v, &v.text))
            .transpose()?;
        let ctmask = self
            .take("--ctmask")?
            .map(|v| number(v, &v.text))
            .transpose()?;
        let all = mask.unwrap_or(u32::MAX);
        let (nfmask, ctmask) = (nfmask.unwrap_or(all), ctmask.unwrap_or(all));
        Ok(if save {
            ConnMarkOp::Save { nfmask, ctmask }
        } else {
            ConnMarkOp::Restore { nfmask, ctmask }
        })
    }

    /// Every option left, written back as iptables-save quotes words (`LOG`'s options).
    fn rest(&mut self) -> String {
        let words: Vec<String> = self
            .raw
            .iter()
            .map(|w| {
                if w.text.is_empty()
                    || w.text
                        .contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
                {
                    format!("\"{}\"", w.text.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    w.text.clone()
                }
            })
            .collect();
        self.words.clear();
        words.join(" ")
    }

    fn left(&self) -> Option<&'a Word> {
        self.words.first().map(|(w, _)| *w)
    }
}

fn reject_with(v: &Word) -> Result<RejectWith, Problem> {
    Ok(match v.text.as_str() {
        "icmp-port-unreachable" | "port-unreach" => RejectWith::PortUnreachable,
        "icmp-host-unreachable" | "host-unreach" => RejectWith::HostUnreachable,
        "icmp-net-unreachable" | "net-unreach" => RejectWith::NetUnreachable,
        "icmp-admin-prohibited" | "admin-prohib" => RejectWith::AdminProhibited,
        "tcp-reset" | "tcp-rst" => RejectWith::TcpReset,
        "icmp-host-prohibited"
        | "host-prohib"
        | "icmp-net-prohibited"
        | "net-prohib"
        | "icmp-proto-unreachable"
        | "proto-unreach" => {
            return Err(Problem::unsupported(
                v,
                &format!("`--reject-with {}`", v.text),
            ));
        }
        other => {
            return Err(Problem::bad(
                v,
                format!("unknown reject type `{other}`"),
                "write icmp-port-unreachable, icmp-host-unreachable, icmp-net-unreachable, icmp-admin-prohibited or tcp-reset",
            ));
        }
    })
}

fn address(at: &Word, text: &str) -> Result<Ipv4Addr, Problem> {
    text.parse().map_err(|_| {
        Problem::new(
            at,
            Code::BadAddress,
            format!("`{text}` is not an IPv4 address"),
            "write a dotted quad such as 10.0.0.1",
        )
    })
}

/// `A`, `A/LEN` or `A/MASK`; host bits are cleared, as iptables does.
fn prefix(v: &Word) -> Result<Ipv4Net, Problem> {
    let bad = || {
        Problem::new(
            v,
            Code::BadAddress,
            format!("`{}` is not an IPv4 address or prefix", v.text),
            "write 10.0.0.1, 10.0.0.0/8 or 10.0.0.0/255.0.0.0",
        )
    };
    if v.text.contains(',') {
        return Err(Problem::unsupported(
            v,
            "a list of addresses (iptables-save writes one rule per address)",
        ));
    }
    let (addr, len) = match v.text.split_once('/') {
        None => (v.text.as_str(), 32),
        Some((a, l)) => match l.parse::<u8>() {
            Ok(len) => (a, len),
            Err(_) => {
                let mask: Ipv4Addr = l.parse().map_err(|_| bad())?;
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(bad());
                }
                (a, bits.leading_ones() as u8)
            }
        },
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    Ipv4Net::new(addr, len)
        .map(|n| n.trunc())
        .map_err(|_| bad())
}

fn port(at: &Word, text: &str) -> Result<u16, Problem> {
    text.parse().map_err(|_| {
        Problem::bad(
            at,
            format!("`{text}` is not a port number"),
            "write a number from 0 to 65535 (iptables-save writes numbers, not service names)",
        )
    })
}

/// `P`, `P:Q`, `:Q` or `P:`.
fn port_range(v: &Word) -> Result<(u16, u16), Problem> {
    range_of(v, &v.text)
}

fn range_of(v: &Word, text: &str) -> Result<(u16, u16), Problem> {
    let (lo, hi) = match text.split_once(':') {
        None => {
            let p = port(v, text)?;
            (p, p)
        }
        Some((a, b)) => (
            if a.is_empty() { 0 } else { port(v, a)? },
            if b.is_empty() { u16::MAX } else { port(v, b)? },
        ),
    };
    if lo > hi {
        return Err(Problem::bad(
            v,
            format!("the range `{text}` is empty"),
            "write the lower port first",
        ));
    }
    Ok((lo, hi))
}

/// `-m multiport` ports: at most 15, a range counting two ("too many ports specified").
fn port_list(v: &Word) -> Result<Vec<(u16, u16)>, Problem> {
    let ranges = v
        .text
        .split(',')
        .map(|p| range_of(v, p))
        .collect::<Result<Vec<_>, _>>()?;
    let count: usize = ranges
        .iter()
        .map(|(lo, hi)| if lo == hi { 1 } else { 2 })
        .sum();
    if count > 15 {
        return Err(Problem::bad(
            v,
            "too many ports specified",
            "multiport takes at most 15 ports, a range counting two: split the rule",
        ));
    }
    Ok(ranges)
}

fn state_list(v: &Word) -> Result<States, Problem> {
    v.text.split(',').try_fold(States::any(), |set, name| {
        if name.eq_ignore_ascii_case("UNTRACKED") {
            return Err(Problem::unsupported(v, "the UNTRACKED state"));
        }
        States::named(name).map(|s| set.with(s)).ok_or_else(|| {
            Problem::bad(
                v,
                format!("unknown state `{name}`"),
                "write INVALID, NEW, RELATED, ESTABLISHED, SNAT or DNAT",
            )
        })
    })
}

fn status_list(v: &Word) -> Result<CtStatus, Problem> {
    v.text
        .split(',')
        .try_fold(CtStatus::default(), |set, name| {
            if name.eq_ignore_ascii_case("ASSURED") || name.eq_ignore_ascii_case("NONE") {
                return Err(Problem::unsupported(v, &format!("the {name} status")));
            }
            CtStatus::named(name).map(|s| set.with(s)).ok_or_else(|| {
                Problem::bad(
                    v,
                    format!("unknown status `{name}`"),
                    "write EXPECTED, SEEN_REPLY or CONFIRMED",
                )
            })
        })
}

fn type_list(v: &Word) -> Result<AddrTypes, Problem> {
    v.text
        .split(',')
        .try_fold(AddrTypes::default(), |set, name| {
            AddrTypes::named(name).map(|s| set.with(s)).ok_or_else(|| {
                Problem::bad(
                    v,
                    format!("unknown address type `{name}`"),
                    "write LOCAL, UNICAST, BROADCAST, MULTICAST, …",
                )
            })
        })
}

/// A 32-bit number as iptables reads one: decimal, `0x` hexadecimal or `0` octal.
fn number(v: &Word, text: &str) -> Result<u32, Problem> {
    let parsed = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    };
    parsed.ok_or_else(|| {
        Problem::bad(
            v,
            format!("`{text}` is not a 32-bit number"),
            "write it in decimal or as 0x…",
        )
    })
}

/// `VALUE[/MASK]`, the mask 0xffffffff when absent.
fn mark_pair(v: &Word) -> Result<(u32, u32), Problem> {
    match v.text.split_once('/') {
        Some((a, b)) => Ok((number(v, a)?, number(v, b)?)),
        None => Ok((number(v, &v.text)?, u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn read(line: &str) -> Result<ReadRule, Problem> {
        let text = format!("*filter\n{line}\nCOMMIT\n");
        let tables = parse(&text).expect("parses");
        let rule = &tables[0].rules[0];
        read_rule(&rule.chain, &rule.args, &|name| match name {
            "eth0" => Some(IfaceId(0)),
            "lo" => Some(IfaceId::LOOPBACK),
            _ => None,
        })
    }

    #[test]
    fn matches_and_negations() {
        let r = read("-A INPUT -s 10.0.0.7/24 ! -d 10.1.0.0/16 ! -i eth0 ! -p udp -m addrtype ! --src-type LOCAL,BROADCAST -m conntrack ! --ctstate INVALID,NEW --ctstatus SEEN_REPLY -m mark --mark 0x4000/0x4000 -j ACCEPT").expect("reads");
        let m = &r.matches;
        assert_eq!(
            m.src,
            Some("10.0.0.0/24".parse().expect("net")),
            "host bits cleared"
        );
        assert_eq!(m.not_dst, Some("10.1.0.0/16".parse().expect("net")));
        assert_eq!(m.not_in_iface, Some(IfaceId(0)));
        assert_eq!(m.not_proto, Some(L4::Udp));
        assert_eq!(
            m.src_type,
            Some(SetMatch {
                set: AddrTypes::LOCAL.with(AddrTypes::BROADCAST),
                negated: true
            })
        );
        assert_eq!(m.not_states, States::INVALID.with(States::NEW));
        assert_eq!(
            m.status,
            Some(SetMatch {
                set: CtStatus::SEEN_REPLY,
                negated: false
            })
        );
        assert_eq!(
            m.mark,
            Some(MarkMatch {
                value: 0x4000,
                mask: 0x4000,
                negated: false
            })
        );
        assert_eq!(r.target, TargetSpec::Accept);
    }

    #[test]
    fn ports_need_their_protocol_and_multiport_counts_ranges_twice() {
        let r = read(
            "-A INPUT -p tcp -m tcp ! --sport 10:20 --dport 22 -j REJECT --reject-with tcp-reset",
        )
        .expect("reads");
        assert_eq!(
            (r.matches.not_sport, r.matches.dport),
            (Some((10, 20)), Some((22, 22)))
        );
        assert_eq!(r.target, TargetSpec::Reject(RejectWith::TcpReset));
        let e = read("-A INPUT -m tcp --dport 22 -j ACCEPT").expect_err("no -p");
        assert!(e.hint.contains("TCP match requires"), "{e:?}");
        let e = read(
            "-A INPUT -p udp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16 -j DROP",
        )
        .expect_err("16");
        assert_eq!(e.message, "too many ports specified");
        let e = read("-A INPUT -p udp -j REJECT --reject-with tcp-reset").expect_err("udp reset");
        assert!(e.message.contains("TCP reset"));
    }

    #[test]
    fn mark_targets_as_libxt_mark_reads_them() {
        let mark = |opts: &str| match read(&format!("-A INPUT -j MARK {opts}"))
            .expect("reads")
            .target
        {
            TargetSpec::Mark(m) => (m.value, m.mask),
            other => panic!("{other:?}"),
        };
        assert_eq!(mark("--set-xmark 0x4000/0x4000"), (0x4000, 0x4000));
        assert_eq!(mark("--set-mark 0x1"), (0x1, 0xffff_ffff));
        assert_eq!(mark("--or-mark 0x4000"), (0x4000, 0x4000));
        assert_eq!(mark("--xor-mark 0x4000"), (0x4000, 0));
        assert_eq!(mark("--and-mark 0xff"), (0, 0xffff_ff00));
        let r = read("-A INPUT -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff")
            .expect("reads");
        assert_eq!(
            r.target,
            TargetSpec::ConnMark(ConnMarkOp::Save {
                nfmask: u32::MAX,
                ctmask: u32::MAX
            })
        );
        let r = read("-A INPUT -j CONNMARK --restore-mark --mask 0xff").expect("reads");
        assert_eq!(
            r.target,
            TargetSpec::ConnMark(ConnMarkOp::Restore {
                nfmask: 0xff,
                ctmask: 0xff
            })
        );
    }

    #[test]
    fn what_is_not_modelled_is_said() {
        for (line, word) in [
            ("-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT", "icmp"),
            (
                "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT",
                "--tcp-flags",
            ),
            ("-A INPUT -i veth+ -j ACCEPT", "veth+"),
            (
                "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
                "icmp-host-prohibited",
            ),
            (
                "-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT",
                "UNTRACKED",
            ),
        ] {
            let e = read(line).expect_err(line);
            assert_eq!(
                (e.code, e.at.text.as_str()),
                (Code::Unsupported, word),
                "{line}: {e:?}"
            );
        }
        let e = read("-A INPUT -i wlan0 -j ACCEPT").expect_err("unknown");
        assert_eq!(e.code, Code::UnknownReference);
    }

    #[test]
    fn recent_as_kube_proxy_writes_it_and_as_iptables_save_prints_it() {
        use crate::model::{Recent, RecentOp, RecentSide};
        let typed = read(
            "-A INPUT -m recent --name KUBE-SEP-ABC --rcheck --seconds 10800 --reap -j ACCEPT",
        )
        .expect("reads");
        let saved = read("-A INPUT -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-ABC --mask 255.255.255.255 --rsource -j ACCEPT")
            .expect("reads");
        let want = Recent {
            seconds: Some(10800),
            reap: true,
            ..Recent::new("KUBE-SEP-ABC", RecentOp::Check)
        };
        assert_eq!(typed.matches.recent.as_deref(), Some(&want));
        assert_eq!(saved.matches, typed.matches);
        let r = read(
            "-A INPUT -p tcp -m comment --comment x -m recent --set --name S -m tcp -j ACCEPT",
        )
        .expect("an option-less -m tcp after --set");
        assert_eq!(
            r.matches.recent.as_deref(),
            Some(&Recent::new("S", RecentOp::Set))
        );
        let r = read("-A INPUT -m recent ! --update --seconds 5 --hitcount 3 --name foo --mask 255.255.0.0 --rdest -j DROP")
            .expect("reads");
        let want = Recent {
            seconds: Some(5),
            hitcount: Some(3),
            side: RecentSide::Dest,
            mask: Ipv4Addr::new(255, 255, 0, 0),
            negated: true,
            ..Recent::new("foo", RecentOp::Update)
        };
        assert_eq!(r.matches.recent.as_deref(), Some(&want));
        let r = read("-A INPUT -m recent --remove -j ACCEPT").expect("reads");
        assert_eq!(r.matches.recent.map(|r| r.name), Some("DEFAULT".into()));
    }

    #[test]
    fn recent_refuses_what_iptables_and_the_kernel_refuse() {
        for (line, word, says) in [
            (
                "-A INPUT -m recent --name A -j ACCEPT",
                "recent",
                "you must specify one of",
            ),
            (
                "-A INPUT -m recent --set --seconds 4 -j ACCEPT",
                "--seconds",
                "Invalid argument",
            ),
            (
                "-A INPUT -m recent --remove --hitcount 2 -j ACCEPT",
                "--remove",
                "Invalid argument",
            ),
            (
                "-A INPUT -m recent --rcheck --reap -j ACCEPT",
                "--reap",
                "also requires",
            ),
            (
                "-A INPUT -m recent --rcheck --set -j ACCEPT",
                "--set",
                "cannot be used together",
            ),
            (
                "-A INPUT -m recent --rcheck --bogus -j ACCEPT",
                "--bogus",
                "-m recent takes",
            ),
            (
                "-A INPUT -m recent ! --name A --set -j ACCEPT",
                "--name",
                "put `!` before",
            ),
            (
                "-A INPUT -m recent --rcheck --hitcount 256 -j ACCEPT",
                "256",
                "255 stamps",
            ),
            (
                "-A INPUT -m recent --rcheck --seconds -1 -j ACCEPT",
                "-1",
                "whole number",
            ),
        ] {
            let e = read(line).expect_err(line);
            assert_eq!(
                (e.code, e.at.text.as_str()),
                (Code::BadValue, word),
                "{line}: {e:?}"
            );
            assert!(e.hint.contains(says), "{line}: {e:?}");
        }
        for (line, word) in [
            ("-A INPUT -m recent --rcheck --rttl -j ACCEPT", "--rttl"),
            (
                "-A INPUT -m recent --set -m conntrack --ctstate NEW -j ACCEPT",
                "--ctstate",
            ),
            (
                "-A INPUT -m statistic --mode random --probability 0.5 -m recent --set -j ACCEPT",
                "recent",
            ),
            (
                "-A INPUT -m recent --set -m recent --rcheck -j ACCEPT",
                "recent",
            ),
        ] {
            let e = read(line).expect_err(line);
            assert_eq!(
                (e.code, e.at.text.as_str()),
                (Code::Unsupported, word),
                "{line}: {e:?}"
            );
        }
        read("-A INPUT -m recent --rcheck --seconds 5 -m conntrack --ctstate NEW -j ACCEPT")
            .expect("a check changes nothing: any order");
        read("-A INPUT -m recent --set -m statistic --mode random --probability 0.5 -j ACCEPT")
            .expect("set, then draw: the walk's order");
    }

    #[test]
    fn nat_targets_and_log_options() {
        let r = read("-A INPUT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80")
            .expect("reads");
        assert_eq!(
            r.target,
            TargetSpec::Dnat(Ipv4Addr::new(172, 17, 0, 2), crate::model::Port::new(80))
        );
        let r = read("-A INPUT -j MASQUERADE --random-fully").expect("reads");
        assert_eq!(
            r.target,
            TargetSpec::Masquerade(NatFlags {
                random: false,
                random_fully: true
            })
        );
        let r = read("-A INPUT -j LOG --log-prefix \"x y \" --log-level 4").expect("reads");
        assert_eq!(
            r.target,
            TargetSpec::Log("--log-prefix \"x y \" --log-level 4".into())
        );
        let r = read("-A INPUT -m comment --comment \"a b\" -g DOCKER").expect("reads");
        assert_eq!(r.comment.as_deref(), Some("a b"));
        assert!(matches!(r.target, TargetSpec::Chain { goto: true, .. }));
        let e = read("-A INPUT -j SNAT --to-source 1.2.3.4 --persistent").expect_err("persistent");
        assert_eq!(e.at.text, "--persistent");
    }
}
