//! Tokens of `nft list ruleset` text read into tables, chains and rules, each with its place:
//! no meaning yet (that is `rule`'s and `lower`'s). A table is `table FAMILY NAME { … }`
//! (`table NAME` is family ip); in it `chain NAME { … }` holds an optional base-chain line
//! `type T hook H priority P;`, an optional `policy P;` and rules, one per line (or `;`). Other
//! objects of a table (sets, maps, flowtables, …) are kept by their keyword, for `lower` to
//! refuse. docs/netfilter.md, "nft list ruleset text".

use super::lex::{Kind, Token, Unclosed, tokens};
use crate::topology::iptables::Word;

/// `type T hook H priority P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSpec {
    pub kind: Word,
    pub hook: Word,
    /// The priority as a number (`filter` is 0, `mangle - 5` is -155), and its first word.
    pub priority: i32,
    pub priority_at: Word,
    /// `device D` (netdev and ingress chains).
    pub device: Option<Word>,
}

/// A chain: base (with a hook) or regular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDef {
    pub name: Word,
    pub base: Option<BaseSpec>,
    pub policy: Option<Word>,
    /// Each rule's tokens, without the line end.
    pub rules: Vec<Vec<Token>>,
}

/// `table FAMILY NAME { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: Word,
    pub name: Word,
    pub chains: Vec<ChainDef>,
    /// The keyword of each other object (`set`, `map`, `flowtable`, `flags`, …).
    pub others: Vec<Word>,
}

/// Where the text cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Word,
    pub message: String,
    pub hint: &'static str,
}

/// Priority names nft prints for the ip and inet families (the kernel's NF_IP_PRI_*).
const PRIORITIES: [(&str, i32); 6] = [
    ("raw", -300),
    ("mangle", -150),
    ("dstnat", -100),
    ("filter", 0),
    ("security", 50),
    ("srcnat", 100),
];

/// Reads every table, or says where the text cannot be read.
pub fn parse(text: &str) -> Result<Vec<Table>, SyntaxError> {
    let toks = tokens(text).map_err(|Unclosed(at)| SyntaxError {
        at,
        message: "a quoted string is never closed".into(),
        hint: "close the string on the same line, as nft prints it",
    })?;
    let mut p = Parser { toks: &toks, i: 0 };
    let mut tables = Vec::new();
    while let Some(t) = p.peek() {
        match t.kind {
            Kind::Newline | Kind::Semi => {
                p.i += 1;
            }
            Kind::Word if t.at.text == "table" => {
                p.i += 1;
                tables.push(p.table(&t.at)?);
            }
            Kind::Word if t.at.text == "flush" => {
                // `flush ruleset` heads files written for `nft -f`: the text is the whole
                // rule set anyway.
                let what = p.line();
                if what.len() != 2 || !what[1].is("ruleset") {
                    return Err(fail(
                        &t.at,
                        "only `flush ruleset` may stand outside a table",
                    ));
                }
            }
            _ => {
                return Err(fail(&t.at, &format!("`{}` outside a table", t.at.text)));
            }
        }
    }
    Ok(tables)
}

fn fail(at: &Word, message: &str) -> SyntaxError {
    SyntaxError {
        at: at.clone(),
        message: message.to_owned(),
        hint: "write the rules as `nft list ruleset` prints them: `table ip NAME { chain NAME { … } }`",
    }
}

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i)?;
        self.i += 1;
        Some(t)
    }

    /// The place after the last token, for "the text ends here".
    fn end(&self) -> Word {
        self.toks.last().map_or(
            Word {
                text: String::new(),
                line: 1,
                col: 0,
                len: 0,
            },
            |t| t.at.clone(),
        )
    }

    /// A name: a word or a quoted string.
    fn name(&mut self, what: &str) -> Result<Word, SyntaxError> {
        match self.next() {
            Some(t) if matches!(t.kind, Kind::Word | Kind::Str) => Ok(t.at.clone()),
            Some(t) => Err(fail(&t.at, &format!("{what} expected here"))),
            None => Err(fail(
                &self.end(),
                &format!("the text ends where {what} belongs"),
            )),
        }
    }

    fn open(&mut self, after: &Word) -> Result<(), SyntaxError> {
        match self.next() {
            Some(t) if t.kind == Kind::Open => Ok(()),
            Some(t) => Err(fail(
                &t.at,
                &format!("`{{` expected after `{}`", after.text),
            )),
            None => Err(fail(after, "the text ends before `{`")),
        }
    }

    /// The tokens up to the end of the statement (a line end or `;` outside braces), braces
    /// included; the line end is consumed, a `}` that closes the block is not.
    fn line(&mut self) -> Vec<Token> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t.kind {
                Kind::Newline | Kind::Semi if depth == 0 => {
                    self.i += 1;
                    break;
                }
                Kind::Newline => {
                    self.i += 1;
                    continue;
                }
                Kind::Close if depth == 0 => break,
                Kind::Close => depth -= 1,
                Kind::Open => depth += 1,
                _ => {}
            }
            out.push(t.clone());
            self.i += 1;
        }
        out
    }

    fn table(&mut self, keyword: &Word) -> Result<Table, SyntaxError> {
        let first = self.name("a family and a table name")?;
        let (family, name) = if self.peek().is_some_and(|t| t.kind == Kind::Open) {
            let mut family = keyword.clone();
            family.text = "ip".into();
            (family, first)
        } else {
            (first, self.name("a table name")?)
        };
        self.open(&name)?;
        let mut table = Table {
            family,
            name,
            chains: Vec::new(),
            others: Vec::new(),
        };
        loop {
            let Some(t) = self.next() else {
                return Err(fail(&table.name, "this table is never closed with `}`"));
            };
            match t.kind {
                Kind::Close => return Ok(table),
                Kind::Newline | Kind::Semi => {}
                Kind::Word if t.at.text == "chain" => {
                    let name = self.name("a chain name")?;
                    self.open(&name)?;
                    table.chains.push(self.chain(name)?);
                }
                Kind::Word => {
                    // An object of its own (`set NAME { … }`, read to its `}`) or a line
                    // (`flags dormant`).
                    table.others.push(t.at.clone());
                    let rest = self.line();
                    let opened = rest.iter().filter(|r| r.kind == Kind::Open).count();
                    let closed = rest.iter().filter(|r| r.kind == Kind::Close).count();
                    if opened > closed {
                        return Err(fail(&t.at, "this block is never closed with `}`"));
                    }
                }
                _ => {
                    return Err(fail(
                        &t.at,
                        &format!("`{}` where a chain or `}}` belongs", t.at.text),
                    ));
                }
            }
        }
    }

    fn chain(&mut self, name: Word) -> Result<ChainDef, SyntaxError> {
        let mut chain = ChainDef {
            name,
            base: None,
            policy: None,
            rules: Vec::new(),
        };
        loop {
            match self.peek() {
                None => return Err(fail(&chain.name, "this chain is never closed with `}`")),
                Some(t) if t.kind == Kind::Close => {
                    self.i += 1;
                    return Ok(chain);
                }
                Some(_) => {}
            }
            let line = self.line();
            let Some(first) = line.first() else { continue };
            if first.is("type") {
                if chain.base.is_some() || !chain.rules.is_empty() {
                    return Err(fail(
                        &first.at,
                        "a chain's `type … hook …` line comes once, first",
                    ));
                }
                chain.base = Some(base_spec(&line)?);
            } else if first.is("policy") {
                match (line.get(1), line.len()) {
                    (Some(p), 2) if p.kind == Kind::Word => chain.policy = Some(p.at.clone()),
                    _ => {
                        return Err(fail(
                            &first.at,
                            "a policy line is `policy accept;` or `policy drop;`",
                        ));
                    }
                }
            } else if first.is("comment") && line.len() == 2 && line[1].kind == Kind::Str {
                // The chain's comment: no meaning for packets.
            } else {
                chain.rules.push(line);
            }
        }
    }
}

/// `type T hook H [device D] priority P`, P a number or a name with `+ N` / `- N`.
fn base_spec(line: &[Token]) -> Result<BaseSpec, SyntaxError> {
    let word = |i: usize| line.get(i).filter(|t| t.kind != Kind::Open);
    let bad = |at: &Word| {
        fail(
            at,
            "a base chain's line is `type filter|nat|route hook HOOK priority P;`",
        )
    };
    let (Some(kind), Some(hook_kw), Some(hook)) = (word(1), word(2), word(3)) else {
        return Err(bad(&line[0].at));
    };
    if !hook_kw.is("hook") {
        return Err(bad(&hook_kw.at));
    }
    let mut i = 4;
    let mut device = None;
    if line.get(i).is_some_and(|t| t.is("device")) {
        device = line.get(i + 1).map(|t| t.at.clone());
        i += 2;
    }
    let Some(kw) = line.get(i).filter(|t| t.is("priority")) else {
        return Err(bad(&line.get(i).unwrap_or(&line[0]).at));
    };
    let Some(first) = line.get(i + 1) else {
        return Err(bad(&kw.at));
    };
    let base = match PRIORITIES.iter().find(|(n, _)| first.is(n)) {
        Some((_, v)) => Some(*v),
        None => first.at.text.parse::<i32>().ok(),
    };
    let Some(mut priority) = base else {
        return Err(SyntaxError {
            at: first.at.clone(),
            message: format!("`{}` is not a priority", first.at.text),
            hint: "write a number or one of raw, mangle, dstnat, filter, security, srcnat",
        });
    };
    match (line.get(i + 2), line.get(i + 3), line.len()) {
        (None, None, _) => {}
        (Some(sign), Some(n), len) if len == i + 4 && (sign.is("+") || sign.is("-")) => {
            let n: i32 = n.at.text.parse().map_err(|_| bad(&n.at))?;
            priority = if sign.is("+") {
                priority.saturating_add(n)
            } else {
                priority.saturating_sub(n)
            };
        }
        (Some(extra), _, _) => return Err(bad(&extra.at)),
        (None, Some(_), _) => return Err(bad(&first.at)),
    }
    Ok(BaseSpec {
        kind: kind.at.clone(),
        hook: hook.at.clone(),
        priority,
        priority_at: first.at.clone(),
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = "table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\ttcp dport { 22, 80 } accept comment \"ssh, web\"
\t}

\tchain early {
\t\ttype filter hook prerouting priority mangle + 1; policy accept;
\t}

\tchain extra {
\t\treturn
\t}
\tset blocked {
\t\ttype ipv4_addr
\t\telements = { 10.0.0.1 }
\t}
}
table ip nat {
\tchain POSTROUTING {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"wan0\" masquerade
\t}
}
";

    #[test]
    fn tables_chains_hooks_and_rules_with_their_places() {
        let tables = parse(LISTED).expect("parses");
        assert_eq!(tables.len(), 2);
        let t = &tables[0];
        assert_eq!(
            (t.family.text.as_str(), t.name.text.as_str()),
            ("inet", "filter")
        );
        assert_eq!(t.chains.len(), 3);
        let input = &t.chains[0];
        let base = input.base.as_ref().expect("base chain");
        assert_eq!(
            (
                base.kind.text.as_str(),
                base.hook.text.as_str(),
                base.priority
            ),
            ("filter", "input", 0)
        );
        assert_eq!(input.policy.as_ref().map(|p| p.text.as_str()), Some("drop"));
        assert_eq!(input.rules.len(), 2);
        assert_eq!(
            (input.rules[1][0].at.line, input.rules[1][0].at.col),
            (5, 2)
        );
        assert_eq!(
            input.rules[1].len(),
            10,
            "the set's tokens stay in the rule"
        );
        assert_eq!(t.chains[1].base.as_ref().map(|b| b.priority), Some(-149));
        assert!(t.chains[2].base.is_none());
        assert_eq!(t.others.len(), 1);
        assert_eq!(t.others[0].text, "set");
        assert_eq!(tables[1].chains[0].rules.len(), 1);
    }

    #[test]
    fn a_table_without_family_is_ip_and_flush_ruleset_is_read() {
        let tables =
            parse("flush ruleset\ntable t { chain c { type nat hook output priority -100; } }")
                .expect("parses");
        assert_eq!(tables[0].family.text, "ip");
        assert_eq!(
            tables[0].chains[0].base.as_ref().map(|b| b.priority),
            Some(-100)
        );
    }

    #[test]
    fn what_cannot_be_read_is_said_with_its_place() {
        for (text, line, col) in [
            ("table ip t {\n chain c {\n accept\n", 2, 7),
            ("chain c { }", 1, 0),
            (
                "table ip t { chain c { type filter hook input priority lots; } }",
                1,
                55,
            ),
            ("table ip t { chain c { accept log prefix \"x } }", 1, 41),
            ("table ip t { chain c { policy; } }", 1, 23),
            ("table ip t }", 1, 11),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!((e.at.line, e.at.col), (line, col), "{text}: {e:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "table",
            "table ip",
            "table ip t",
            "table ip t {",
            "table ip t { chain",
            "}}}}",
            "table ip t { chain c { type } }",
            "table ip t { chain c { type filter hook } }",
            "table ip t { chain c { type filter hook input priority filter + } }",
            "table ip t { set s { { { } }",
            "table ip t { chain c { { { { } }",
            "table ip t { chain c { type filter hook input device priority 0; } }",
            "table ip t { chain c { type filter hook input priority 99999999999; } }",
        ] {
            let _ = parse(text);
        }
    }
}
