//! `-m recent`'s options read into a [`Recent`] match, with the refusals of libxt_recent and of
//! the kernel's `recent_mt_check` (docs/netfilter.md, "Recent lists").

use std::net::Ipv4Addr;

use super::parse::Word;
use super::rule::Problem;
use crate::format::Code;
use crate::model::recent_limits::{DEFAULT_LIST, MAX_HITCOUNT, MAX_NAME};
use crate::model::{Recent, RecentOp, RecentSide};

/// The options of one `-m recent`, as they are read.
pub(super) struct RecentDraft {
    /// The `recent` word of `-m recent`.
    module: Word,
    op: Option<(RecentOp, Word, bool)>,
    seconds: Option<(u32, Word)>,
    reap: Option<Word>,
    hitcount: Option<u32>,
    name: Option<String>,
    mask: Ipv4Addr,
    side: RecentSide,
}

/// Whether a `-m recent` option takes a value.
pub(super) fn takes_value(option: &str) -> bool {
    matches!(option, "--seconds" | "--hitcount" | "--name" | "--mask")
}

impl RecentDraft {
    pub fn new(module: &Word) -> Self {
        RecentDraft {
            module: module.clone(),
            op: None,
            seconds: None,
            reap: None,
            hitcount: None,
            name: None,
            mask: Ipv4Addr::BROADCAST,
            side: RecentSide::Source,
        }
    }

    /// One option `w` (negated with `!` when `not`), with its value when it takes one.
    pub fn option(&mut self, w: &Word, not: bool, value: Option<&Word>) -> Result<(), Problem> {
        let op = match w.text.as_str() {
            "--set" => Some(RecentOp::Set),
            "--rcheck" => Some(RecentOp::Check),
            "--update" => Some(RecentOp::Update),
            "--remove" => Some(RecentOp::Remove),
            _ => None,
        };
        if let Some(op) = op {
            if let Some((_, first, _)) = &self.op {
                return Err(Problem::bad(
                    w,
                    format!("`{}` with `{}`", w.text, first.text),
                    format!(
                        "keep one of --set, --rcheck, --update and --remove (iptables says: recent: option \"{}\" cannot be used together with \"{}\")",
                        first.text, w.text
                    ),
                ));
            }
            self.op = Some((op, w.clone(), not));
            return Ok(());
        }
        if not {
            return Err(Problem::bad(
                w,
                format!("`{}` cannot be negated", w.text),
                "put `!` before --set, --rcheck, --update or --remove",
            ));
        }
        match (w.text.as_str(), value) {
            ("--seconds", Some(v)) => {
                let s = count(v)?;
                self.seconds = (s > 0).then(|| (s, w.clone()));
            }
            ("--hitcount", Some(v)) => {
                let h = count(v)?;
                if h > MAX_HITCOUNT {
                    return Err(Problem::bad(
                        v,
                        format!("hitcount {h} is more than {MAX_HITCOUNT}"),
                        "the kernel keeps at most 255 stamps an address (XT_RECENT_MAX_NSTAMPS)",
                    ));
                }
                self.hitcount = (h > 0).then_some(h);
            }
            ("--name", Some(v)) => self.name = Some(list_name(v)?),
            ("--mask", Some(v)) => {
                self.mask = v.text.parse().map_err(|_| {
                    Problem::new(
                        v,
                        Code::BadAddress,
                        format!("`{}` is not an IPv4 mask", v.text),
                        "write a dotted quad such as 255.255.255.0",
                    )
                })?;
            }
            ("--reap", _) => self.reap = Some(w.clone()),
            ("--rsource", _) => self.side = RecentSide::Source,
            ("--rdest", _) => self.side = RecentSide::Dest,
            ("--rttl", _) => {
                return Err(Problem::new(
                    w,
                    Code::Unsupported,
                    "`-m recent --rttl` (the TTL an address was seen with) is not modelled",
                    "remove it, or describe its effect with rules reachlab models (docs/netfilter.md lists them)",
                ));
            }
            _ => {
                return Err(Problem::bad(
                    w,
                    format!("unknown option `{}` of `-m recent`", w.text),
                    "-m recent takes --set, --rcheck, --update, --remove, --seconds, --reap, --hitcount, --name, --mask, --rsource and --rdest (iptables-extensions(8))",
                ));
            }
        }
        Ok(())
    }

    /// The match, once its options are all read: what libxt_recent's final check and the
    /// kernel's `recent_mt_check` refuse is refused here.
    pub fn finish(self) -> Result<Recent, Problem> {
        let Some((op, op_word, negated)) = self.op else {
            return Err(Problem::bad(
                &self.module,
                "`-m recent` needs one of `--set`, `--rcheck`, `--update` or `--remove`",
                "add one (iptables says: recent: you must specify one of `--set', `--rcheck' `--update' or `--remove')",
            ));
        };
        let checks = matches!(op, RecentOp::Check | RecentOp::Update);
        if !checks {
            let culprit = (self.seconds.as_ref().map(|(_, w)| ("--seconds", w)))
                .or(self.reap.as_ref().map(|w| ("--reap", w)))
                .or(self.hitcount.map(|_| ("--hitcount", &op_word)));
            if let Some((what, w)) = culprit {
                return Err(Problem::bad(
                    w,
                    format!("`{what}` with `{}`", op_word.text),
                    "--seconds, --reap and --hitcount go with --rcheck or --update (the kernel refuses them with --set or --remove: RULE_APPEND failed (Invalid argument))",
                ));
            }
        }
        if let (Some(w), None) = (&self.reap, &self.seconds) {
            return Err(Problem::bad(
                w,
                "`--reap` without `--seconds`",
                "add --seconds N (iptables says: recent: option \"--reap\" also requires \"--seconds\")",
            ));
        }
        Ok(Recent {
            name: self.name.unwrap_or_else(|| DEFAULT_LIST.to_owned()),
            op,
            seconds: self.seconds.map(|(s, _)| s),
            reap: self.reap.is_some(),
            hitcount: self.hitcount,
            side: self.side,
            mask: self.mask,
            negated,
        })
    }
}

/// A non-negative count (`--seconds`, `--hitcount`), in decimal as libxt_recent reads it.
fn count(v: &Word) -> Result<u32, Problem> {
    v.text.parse().map_err(|_| {
        Problem::bad(
            v,
            format!("`{}` is not a count", v.text),
            "write a whole number such as 10800",
        )
    })
}

/// A list name: 1 to 199 characters (`XT_RECENT_NAME_LEN`), which reachlab keeps to letters,
/// digits, `_`, `-` and `.` (iptables-save prints the name unquoted).
fn list_name(v: &Word) -> Result<String, Problem> {
    let ok = !v.text.is_empty()
        && v.text.len() <= MAX_NAME
        && v.text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(v.text.clone())
    } else {
        Err(Problem::bad(
            v,
            format!("`{}` is not a list name reachlab takes", v.text),
            "name the list with 1 to 199 letters, digits, `_`, `-` or `.`",
        ))
    }
}
