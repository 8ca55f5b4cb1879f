//! The right-hand sides of nft expressions: one value, a flag list `a,b` or an anonymous set
//! `{ a, b }`, and how each kind of value is read (addresses, prefixes, ranges, ports,
//! numbers, names of states, statuses and address types). docs/netfilter.md, "nft list
//! ruleset text".

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::lex::{Kind, Token};
use crate::format::Code;
use crate::model::{AddrTypes, CtStatus, States};
use crate::topology::iptables::{Problem, Word};

/// A value as written: `v`, `a,b` (a flag list) or `{ a, b }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    One(Word),
    List(Vec<Word>),
    Set { open: Word, items: Vec<Word> },
}

impl Value {
    /// Where the value starts.
    pub fn at(&self) -> &Word {
        match self {
            Value::One(w) => w,
            Value::List(ws) => &ws[0],
            Value::Set { open, .. } => open,
        }
    }

    /// Its items, whatever the form.
    pub fn items(&self) -> &[Word] {
        match self {
            Value::One(w) => std::slice::from_ref(w),
            Value::List(ws) => ws,
            Value::Set { items, .. } => items,
        }
    }
}

/// A problem saying that `what` is not modelled, with the common hint.
pub fn unsupported(at: &Word, what: &str) -> Problem {
    Problem::new(
        at,
        Code::Unsupported,
        format!("{what} is not modelled"),
        "remove it, or write the rule with the expressions docs/netfilter.md lists under \"nft list ruleset text\"",
    )
}

/// A value nft would not take here.
pub fn bad(at: &Word, message: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem::new(at, Code::BadValue, message, hint)
}

/// Reads a value at `toks[*i]`; `after` is the word before it (for "a value is missing").
pub fn read(toks: &[Token], i: &mut usize, after: &Word) -> Result<Value, Problem> {
    let missing = || {
        bad(
            after,
            format!("`{}` needs a value", after.text),
            "write the value after it, as nft prints it",
        )
    };
    let first = toks.get(*i).ok_or_else(missing)?;
    match first.kind {
        Kind::Open => {
            let mut items = Vec::new();
            *i += 1;
            loop {
                let t = toks.get(*i).ok_or_else(|| {
                    bad(
                        &first.at,
                        "a set is never closed with `}`",
                        "close it on the rule's line",
                    )
                })?;
                *i += 1;
                match t.kind {
                    Kind::Close => break,
                    Kind::Comma => {}
                    Kind::Word | Kind::Str => items.push(t.at.clone()),
                    _ => {
                        return Err(bad(
                            &t.at,
                            format!("`{}` in a set", t.at.text),
                            "a set holds values separated by `,`",
                        ));
                    }
                }
            }
            if items.is_empty() {
                return Err(bad(
                    &first.at,
                    "an empty set",
                    "write at least one value in it",
                ));
            }
            Ok(Value::Set {
                open: first.at.clone(),
                items,
            })
        }
        Kind::Word | Kind::Str => {
            *i += 1;
            let mut items = vec![first.at.clone()];
            while toks.get(*i).is_some_and(|t| t.kind == Kind::Comma) {
                match toks.get(*i + 1) {
                    Some(t) if matches!(t.kind, Kind::Word | Kind::Str) => {
                        items.push(t.at.clone());
                        *i += 2;
                    }
                    _ => {
                        return Err(bad(
                            &toks[*i].at,
                            "a list ends with `,`",
                            "write a value after each `,`",
                        ));
                    }
                }
            }
            Ok(if items.len() == 1 {
                Value::One(first.at.clone())
            } else {
                Value::List(items)
            })
        }
        _ => Err(missing()),
    }
}

/// A 32-bit number as nft prints one: decimal or `0x` hexadecimal.
pub fn number(w: &Word) -> Result<u32, Problem> {
    let t = w.text.as_str();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    };
    parsed.ok_or_else(|| {
        bad(
            w,
            format!("`{t}` is not a 32-bit number"),
            "write it in decimal or as 0x…",
        )
    })
}

pub fn address(w: &Word, text: &str) -> Result<Ipv4Addr, Problem> {
    text.parse().map_err(|_| {
        Problem::new(
            w,
            Code::BadAddress,
            format!("`{text}` is not an IPv4 address"),
            "write a dotted quad such as 10.0.0.1",
        )
    })
}

/// An address item: `A`, `A/LEN` (host bits cleared, as nft does) or `A-B`.
pub enum Addr {
    Net(Ipv4Net),
    Range(Ipv4Addr, Ipv4Addr),
}

pub fn addr(w: &Word) -> Result<Addr, Problem> {
    if let Some((a, b)) = w.text.split_once('-') {
        let (first, last) = (address(w, a)?, address(w, b)?);
        if first > last {
            return Err(bad(
                w,
                format!("the range `{}` is empty", w.text),
                "write the lower address first",
            ));
        }
        return Ok(Addr::Range(first, last));
    }
    let (a, len) = match w.text.split_once('/') {
        Some((a, l)) => (
            a,
            l.parse::<u8>().ok().filter(|l| *l <= 32).ok_or_else(|| {
                Problem::new(
                    w,
                    Code::BadAddress,
                    format!("`{l}` is not a prefix length"),
                    "write a length from 0 to 32",
                )
            })?,
        ),
        None => (w.text.as_str(), 32),
    };
    let net =
        Ipv4Net::new(address(w, a)?, len).map_err(|_| bad(w, "not a prefix", "write A/LEN"))?;
    Ok(Addr::Net(net.trunc()))
}

/// A port item: `P` or `P-Q`.
pub fn port_range(w: &Word) -> Result<(u16, u16), Problem> {
    let port = |t: &str| {
        t.parse::<u16>().map_err(|_| {
            bad(
                w,
                format!("`{t}` is not a port number"),
                "write a number from 0 to 65535 (nft prints numbers for ports it has no name for; names such as `ssh` are not read)",
            )
        })
    };
    let (lo, hi) = match w.text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(&w.text)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad(
            w,
            format!("the range `{}` is empty", w.text),
            "write the lower port first",
        ));
    }
    Ok((lo, hi))
}

/// A connection state nft names (`new`, `established`, `related`, `invalid`).
pub fn state(w: &Word) -> Result<States, Problem> {
    match w.text.as_str() {
        "new" | "established" | "related" | "invalid" => {
            States::named(&w.text).ok_or_else(|| unsupported(w, "this state"))
        }
        "untracked" => Err(unsupported(w, "the untracked state")),
        other => Err(bad(
            w,
            format!("unknown state `{other}`"),
            "write new, established, related or invalid",
        )),
    }
}

/// A status bit of `ct status`: a model status, or the NAT bits the model keeps as states.
pub enum Status {
    Bit(CtStatus),
    Nat(States),
}

pub fn status(w: &Word) -> Result<Status, Problem> {
    Ok(match w.text.as_str() {
        "expected" => Status::Bit(CtStatus::EXPECTED),
        "seen-reply" => Status::Bit(CtStatus::SEEN_REPLY),
        "confirmed" => Status::Bit(CtStatus::CONFIRMED),
        "snat" => Status::Nat(States::SNAT),
        "dnat" => Status::Nat(States::DNAT),
        "assured" | "dying" | "fixed-timeout" | "template" | "untracked" | "helper" | "offload"
        | "hw-offload" | "src-nat-done" | "dst-nat-done" | "seq-adjust" => {
            return Err(unsupported(w, &format!("the `{}` status", w.text)));
        }
        other => {
            return Err(bad(
                w,
                format!("unknown status `{other}`"),
                "write expected, seen-reply, confirmed, snat or dnat",
            ));
        }
    })
}

/// An address type of `fib … type`: its name as nft prints it, or its number (nft 1.0 has
/// no names past `prohibit`).
pub fn addr_type(w: &Word) -> Result<AddrTypes, Problem> {
    let by_number = w
        .text
        .parse::<usize>()
        .ok()
        .and_then(|n| AddrTypes::ALL.get(n))
        .map(|(t, _)| *t);
    by_number
        .or_else(|| AddrTypes::named(&w.text).filter(|_| w.text.bytes().all(|b| b.is_ascii_lowercase())))
        .ok_or_else(|| {
            bad(
                w,
                format!("unknown address type `{}`", w.text),
                "write unspec, unicast, local, broadcast, anycast, multicast, blackhole, unreachable, prohibit, or a number up to 11",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::super::lex::tokens;
    use super::*;

    fn value(text: &str) -> Result<Value, Problem> {
        let toks = tokens(text).expect("closed");
        let mut i = 1;
        read(&toks, &mut i, &toks[0].at)
    }

    fn w(text: &str) -> Word {
        Word {
            text: text.into(),
            line: 1,
            col: 0,
            len: text.len(),
        }
    }

    #[test]
    fn one_value_a_flag_list_and_a_set() {
        assert!(matches!(value("x 22"), Ok(Value::One(v)) if v.text == "22"));
        let Ok(Value::List(items)) = value("x established,related") else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        let Ok(Value::Set { items, .. }) = value("x { 22, 80-81 }") else {
            panic!()
        };
        assert_eq!(
            items.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(),
            ["22", "80-81"]
        );
        assert!(value("x").is_err());
        assert!(value("x { }").is_err());
        assert!(value("x { 1, 2").is_err());
        assert!(value("x a,").is_err());
    }

    #[test]
    fn addresses_prefixes_ranges_and_ports() {
        assert!(
            matches!(addr(&w("10.0.0.7/24")), Ok(Addr::Net(n)) if n.to_string() == "10.0.0.0/24")
        );
        assert!(matches!(addr(&w("10.0.0.1-10.0.0.9")), Ok(Addr::Range(a, b)) if a < b));
        assert!(addr(&w("10.0.0.9-10.0.0.1")).is_err());
        assert!(addr(&w("10.0.0.1/33")).is_err());
        assert!(addr(&w("::1")).is_err());
        assert_eq!(port_range(&w("8000-8080")).ok(), Some((8000, 8080)));
        assert!(port_range(&w("ssh")).is_err());
        assert_eq!(number(&w("0x00004000")).ok(), Some(0x4000));
        assert!(number(&w("0x1ffffffff")).is_err());
    }

    #[test]
    fn names_of_states_statuses_and_address_types() {
        assert_eq!(state(&w("established")).ok(), Some(States::ESTABLISHED));
        assert_eq!(
            state(&w("untracked")).map_err(|p| p.code).err(),
            Some(Code::Unsupported)
        );
        assert!(matches!(status(&w("dnat")), Ok(Status::Nat(s)) if s == States::DNAT));
        assert_eq!(
            status(&w("assured")).map_err(|p| p.code).err(),
            Some(Code::Unsupported)
        );
        assert_eq!(addr_type(&w("local")).ok(), Some(AddrTypes::LOCAL));
        assert_eq!(addr_type(&w("11")).ok(), Some(AddrTypes::XRESOLVE));
        assert!(addr_type(&w("LOCAL")).is_err(), "nft prints lower case");
    }
}
