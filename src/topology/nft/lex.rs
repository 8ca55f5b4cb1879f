//! `nft list ruleset` text split into tokens, each with its place: words, quoted strings,
//! braces, `;`, `,` and line ends (which end a statement, as in nft's own scanner). `#` starts
//! a comment up to the end of the line, outside a string; a `\` at the end of a line joins it
//! with the next. docs/netfilter.md, "nft list ruleset text".

use crate::topology::iptables::Word;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run of characters up to a blank or one of `{ } ; , " #`: a keyword, a name, a
    /// number, an address, a range (`10-20`), an operator (`!=`, `&`).
    Word,
    /// `"…"`; the token's text is what is between the quotes.
    Str,
    Open,
    Close,
    Semi,
    Comma,
    /// The end of a line: it ends a statement outside braces.
    Newline,
}

/// A token and where it is (its `Word` covers the quotes of a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub at: Word,
}

impl Token {
    /// Whether this is the word `text`.
    pub fn is(&self, text: &str) -> bool {
        self.kind == Kind::Word && self.at.text == text
    }
}

/// A string that is never closed on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclosed(pub Word);

/// Splits the text into tokens; the first string left open, if any.
pub fn tokens(text: &str) -> Result<Vec<Token>, Unclosed> {
    let mut out = Vec::new();
    let lines = text.split('\n').count();
    for (i, raw) in text.split('\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let joined = line_tokens(raw, line, &mut out)?;
        if !joined && i + 1 < lines {
            out.push(Token {
                kind: Kind::Newline,
                at: Word {
                    text: String::new(),
                    line,
                    col: raw.len(),
                    len: 0,
                },
            });
        }
    }
    Ok(out)
}

/// The tokens of one line; true when the line ends with `\` (joined with the next).
fn line_tokens(raw: &str, line: u32, out: &mut Vec<Token>) -> Result<bool, Unclosed> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    let word = |start: usize, end: usize, text: &str| Word {
        text: text.to_owned(),
        line,
        col: start,
        len: end - start,
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => return Ok(false),
            b'\\' if raw[i + 1..].trim().is_empty() => return Ok(true),
            b'{' | b'}' | b';' | b',' => {
                let kind = match c {
                    b'{' => Kind::Open,
                    b'}' => Kind::Close,
                    b';' => Kind::Semi,
                    _ => Kind::Comma,
                };
                out.push(Token {
                    kind,
                    at: word(i, i + 1, &raw[i..i + 1]),
                });
                i += 1;
            }
            b'"' => {
                let Some(len) = raw[i + 1..].find('"') else {
                    return Err(Unclosed(word(i, raw.len(), &raw[i + 1..])));
                };
                let end = i + 1 + len;
                out.push(Token {
                    kind: Kind::Str,
                    at: word(i, end + 1, &raw[i + 1..end]),
                });
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'{' | b'}' | b';' | b',' | b'"' | b'#'
                    )
                {
                    i += 1;
                }
                // Stops only at ASCII bytes, so `start..i` falls on character boundaries.
                out.push(Token {
                    kind: Kind::Word,
                    at: word(start, i, &raw[start..i]),
                });
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        tokens(text)
            .expect("closed")
            .into_iter()
            .map(|t| (t.kind, t.at.text))
            .collect()
    }

    #[test]
    fn words_strings_and_punctuation_with_their_places() {
        let toks = tokens("\tiifname \"eth0\" ct state established,related accept # x\n}")
            .expect("closed");
        let texts: Vec<&str> = toks.iter().map(|t| t.at.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "iifname",
                "eth0",
                "ct",
                "state",
                "established",
                ",",
                "related",
                "accept",
                "",
                "}"
            ]
        );
        assert_eq!(toks[1].kind, Kind::Str);
        assert_eq!(
            (toks[1].at.col, toks[1].at.len),
            (9, 6),
            "the quotes included"
        );
        assert_eq!(toks[8].kind, Kind::Newline);
        assert_eq!((toks[9].at.line, toks[9].at.col), (2, 0));
    }

    #[test]
    fn a_comment_ends_the_line_and_a_backslash_joins_lines() {
        assert_eq!(
            kinds("}# Warning: table ip nat is managed by iptables-nft"),
            [(Kind::Close, "}".to_owned())]
        );
        assert_eq!(
            kinds("tcp dport \\\n 22"),
            [
                (Kind::Word, "tcp".to_owned()),
                (Kind::Word, "dport".to_owned()),
                (Kind::Word, "22".to_owned())
            ]
        );
    }

    #[test]
    fn an_unclosed_string_is_said_with_its_place() {
        let Unclosed(at) = tokens("ok\nlog prefix \"x y").expect_err("unclosed");
        assert_eq!((at.line, at.col), (2, 11));
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "\"", "\\", "{{{", "é\"ü", "\u{0}#\"", "a\\ b", "\\\n", "\"\"\"", "ü{ü}ü",
        ] {
            let _ = tokens(text);
        }
    }
}
