//! `iptables-save` text read into tables, chain declarations and rule lines, each word with
//! its place in the text: no meaning yet (that is `lower`'s). Words split as iptables-restore
//! splits them: at blanks, with `"…"` and `'…'` quoting and `\` escaping the next character.
//! docs/netfilter.md, "iptables-save text".

/// A word of the text and where it is: 1-based line, byte column within the line (0-based)
/// and byte length in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub line: u32,
    pub col: usize,
    pub len: usize,
}

/// `:NAME POLICY [packets:bytes]`; `policy` is `None` for a user chain (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLine {
    pub name: Word,
    pub policy: Option<Word>,
}

/// `-A CHAIN …`: the chain and the words after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLine {
    pub chain: Word,
    pub args: Vec<Word>,
}

/// `*NAME` up to `COMMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: Word,
    pub chains: Vec<ChainLine>,
    pub rules: Vec<RuleLine>,
}

/// What the text says where it cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Word,
    pub message: String,
    pub hint: &'static str,
}

/// Reads `iptables-save` text: every table, or every line that cannot be read.
pub fn parse(text: &str) -> Result<Vec<Table>, Vec<SyntaxError>> {
    let mut tables: Vec<Table> = Vec::new();
    let mut errors = Vec::new();
    let mut open: Option<Table> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        if raw.trim_start().starts_with('#') {
            continue;
        }
        let words = match split(raw, line) {
            Ok(words) => words,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some(first) = words.first() else { continue };
        let fail = |message: String, hint: &'static str| SyntaxError {
            at: first.clone(),
            message,
            hint,
        };
        if let Some(name) = first.text.strip_prefix('*') {
            if open.is_some() {
                errors.push(fail(
                    "a table starts before the last one was committed".into(),
                    "end each table with a line `COMMIT`",
                ));
            }
            let mut name_word = first.clone();
            name_word.text = name.to_owned();
            name_word.col += 1;
            name_word.len = name.len();
            open = Some(Table {
                name: name_word,
                chains: Vec::new(),
                rules: Vec::new(),
            });
            continue;
        }
        let Some(table) = open.as_mut() else {
            errors.push(fail(
                format!("`{}` outside a table", first.text),
                "start a table with a line such as `*filter` and end it with `COMMIT`",
            ));
            continue;
        };
        match first.text.as_str() {
            "COMMIT" => tables.extend(open.take()),
            t if t.starts_with(':') => match chain_line(&words) {
                Some(chain) => table.chains.push(chain),
                None => errors.push(fail(
                    "a chain line is `:NAME POLICY [packets:bytes]`".into(),
                    "write the policy ACCEPT or DROP for a built-in chain, `-` for a user chain",
                )),
            },
            _ => match rule_line(words) {
                Ok(rule) => table.rules.push(rule),
                Err(e) => errors.push(e),
            },
        }
    }
    if let Some(table) = open {
        errors.push(SyntaxError {
            message: format!("table `{}` is never committed", table.name.text),
            at: table.name,
            hint: "end the table with a line `COMMIT`, as iptables-save does",
        });
    }
    if errors.is_empty() {
        Ok(tables)
    } else {
        Err(errors)
    }
}

fn chain_line(words: &[Word]) -> Option<ChainLine> {
    let first = words.first()?;
    let name = first.text.strip_prefix(':')?;
    if name.is_empty() || words.len() < 2 || words.len() > 3 {
        return None;
    }
    let policy = &words[1];
    Some(ChainLine {
        name: Word {
            text: name.to_owned(),
            line: first.line,
            col: first.col + 1,
            len: first.len - 1,
        },
        policy: (policy.text != "-").then(|| policy.clone()),
    })
}

/// `[packets:bytes] -A CHAIN args…` (the counters of `iptables-save -c` are skipped).
fn rule_line(words: Vec<Word>) -> Result<RuleLine, SyntaxError> {
    let mut rest = words.into_iter().peekable();
    let counters = rest.next_if(|w| is_counters(&w.text));
    let Some(append) = rest.next().or(counters) else {
        return Err(SyntaxError {
            at: Word {
                text: String::new(),
                line: 0,
                col: 0,
                len: 0,
            },
            message: "an empty rule".into(),
            hint: "a rule line is `-A CHAIN matches… -j TARGET`",
        });
    };
    let Some(chain) = rest.next() else {
        return Err(SyntaxError {
            message: format!("`{}` alone is not a rule", append.text),
            at: append,
            hint: "a rule line is `-A CHAIN matches… -j TARGET`",
        });
    };
    if append.text != "-A" && append.text != "--append" {
        return Err(SyntaxError {
            message: format!("`{}` where a rule line starts with `-A CHAIN`", append.text),
            at: append,
            hint: "iptables-save writes rules as `-A CHAIN …`; lines such as `-I` or `-D` are commands, not saved rules",
        });
    }
    Ok(RuleLine {
        chain,
        args: rest.collect(),
    })
}

fn is_counters(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.split_once(':'))
        .is_some_and(|(p, b)| {
            !p.is_empty()
                && !b.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

/// Splits a line into words as iptables-restore does.
fn split(raw: &str, line: u32) -> Result<Vec<Word>, SyntaxError> {
    let mut words = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut quote: Option<char> = None;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match (quote, c) {
                (_, '\\') => {
                    if let Some((j, escaped)) = chars.next() {
                        text.push(escaped);
                        end = j + escaped.len_utf8();
                    }
                }
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, c) => text.push(c),
            }
        }
        let word = Word {
            text,
            line,
            col: start,
            len: end - start,
        };
        if quote.is_some() {
            return Err(SyntaxError {
                at: word,
                message: "a quote is never closed".into(),
                hint: "close the quoted text on the same line",
            });
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on a host's \"box\"
*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
[3:180] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT DROP [0:0]
-A INPUT -m comment --comment \"a b \\\"q\\\"\" -j ACCEPT
COMMIT
";

    #[test]
    fn tables_chains_and_rules_with_their_places() {
        let tables = parse(SAVED).expect("parses");
        assert_eq!(tables.len(), 2);
        let nat = &tables[0];
        assert_eq!(nat.name.text, "nat");
        assert_eq!(nat.chains[1].name.text, "DOCKER");
        assert_eq!(nat.chains[1].policy, None);
        assert_eq!(
            nat.chains[0].policy.as_ref().map(|p| p.text.as_str()),
            Some("ACCEPT")
        );
        let dnat = &nat.rules[1];
        assert_eq!(dnat.chain.text, "DOCKER");
        assert_eq!(dnat.args[0].text, "!");
        assert_eq!((dnat.args[1].line, dnat.args[1].col), (6, 20));
        let comment = &tables[1].rules[0].args[3];
        assert_eq!(comment.text, "a b \"q\"");
        assert_eq!(comment.len, "\"a b \\\"q\\\"\"".len());
    }

    #[test]
    fn what_cannot_be_read_is_said_with_its_line() {
        let errors = parse("*filter\n-I INPUT -j DROP\n-A INPUT -m comment --comment \"x\n")
            .expect_err("bad");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].at.line, 2);
        assert!(errors[1].message.contains("quote"));
        assert!(errors[2].message.contains("never committed"));
        let outside = parse("-A INPUT -j DROP\n").expect_err("outside");
        assert!(outside[0].message.contains("outside a table"));
    }
}
