//! Reading a topology written as JSON straight into its typed file: no tree, no second pass.
//!
//! JSON is YAML (a flow mapping of double-quoted keys), so a `.json` topology loads through
//! the YAML path like any other file: a tree, the structural check over it, the typed file read
//! from the tree. For a large generated file that path is mostly the tree: building it, walking
//! it, and holding it beside the typed file (benches/RESULTS.md, issue 14). This reader makes
//! the typed file from the text in one pass and checks the schema's rules ([`super::rules`]) as
//! it goes, value by value, exactly where the structural check ([`super::structure`]) would.
//!
//! It owns one promise, the one [`super::from_tree`] makes: what it reads is what the YAML
//! path reads from the same text — values, and every [`Located`] span (as granit-parser places
//! a flow scalar, its quotes included, and a flow collection, its opening bracket) — and it
//! reads only files the structural check finds nothing in. Anything it is not sure of gives
//! [`Unsure`], and the caller takes the YAML path, whose diagnostics are the reference: text
//! that is not JSON, or JSON a YAML parser might take differently (tabs or carriage returns
//! between tokens, a byte-order mark, `\u` escapes of surrogates, characters YAML does not
//! allow in a stream, long keys, a key not on its colon's line); numbers other than decimal
//! integers of up to 18 digits; a number where text is wanted; repeated keys; and every value
//! the schema refuses (unknown keys, missing ones, wrong kinds, values outside an `enum` or a
//! range). Declining costs time, never a different answer; `tests` below hold the two paths
//! against each other, spans included.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess};
use serde::de::{IgnoredAny, Visitor};

use super::from_tree::{KeyNode, Spanned, Unsure};
use super::rules::Rule;
use super::source::{LOCATED, Span};

/// A topology file read from JSON text, and the places the loader's later passes need.
pub(crate) struct Read<T> {
    pub(crate) value: T,
    /// The root map's span (where a diagnostic without a place of its own is shown).
    pub(crate) document: Span,
    /// The first top-level key of the file named in `top_keys`, in that order of preference.
    pub(crate) top_key: Option<Span>,
}

/// `T` read from `text`, a JSON document whose root is a map, checked against the schema's
/// root rule; `None` when the YAML path must read it (see the module's documentation).
/// `budget` is the one the YAML path would parse with; `top_keys` names the top-level keys
/// whose place [`Read::top_key`] reports.
pub(crate) fn read<'a, T: de::Deserialize<'a>>(
    text: &'a str,
    budget: &serde_saphyr::Budget,
    top_keys: &[&str],
) -> Option<Read<T>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        line_start: 0,
        column_at: (0, 1),
        depth: 0,
        // The YAML path's limits, with room to spare (this reader declines near any of them).
        max_depth: budget.max_depth.saturating_sub(4),
        events: 4,
        max_events: budget.max_events.saturating_sub(8),
        scalar_bytes: 0,
        max_scalar_bytes: budget.max_total_scalar_bytes.saturating_sub(1),
        max_key_bytes: budget.simple_key_max_lookahead.min(256),
        keys: Vec::new(),
        scratch: String::new(),
        lengths: Vec::new().into_iter(),
        top_keys,
        top_key: None,
    };
    reader.skip_space().ok()?;
    if reader.peek() != Some(b'{') {
        return None;
    }
    // Only now: a YAML file (the usual case) costs one look at its first byte.
    reader.lengths = list_lengths(text.as_bytes()).into_iter();
    let document = reader.span(1);
    let value = T::deserialize(Value {
        reader: &mut reader,
        rule: Some(Rule::root()),
    })
    .ok()?;
    reader.skip_space().ok()?;
    if reader.at != reader.bytes.len() {
        return None;
    }
    let top_key = reader.top_key.map(|(_, span)| span);
    Some(Read {
        value,
        document,
        top_key,
    })
}

/// The text and where the reading is.
struct Reader<'a, 'k> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The line of `at` (from 1) and the offset its line starts at.
    line: u32,
    line_start: usize,
    /// The last column worked out on this line: (offset, column from 1). Columns count
    /// characters, so they are counted on from here rather than from the line's start.
    column_at: (usize, u32),
    depth: usize,
    max_depth: usize,
    events: usize,
    max_events: usize,
    scalar_bytes: usize,
    max_scalar_bytes: usize,
    max_key_bytes: usize,
    /// The keys of the maps being read, innermost last (for repeats and required keys).
    keys: Vec<&'a str>,
    /// A string with escapes, decoded.
    scratch: String,
    /// How many items each list holds, lists in the order they open (see [`list_lengths`]).
    lengths: std::vec::IntoIter<u32>,
    top_keys: &'k [&'k str],
    /// The preferred top-level key seen so far: its rank in `top_keys` and its span.
    top_key: Option<(usize, Span)>,
}

fn unsure<T>(what: &str) -> Result<T, Unsure> {
    Err(de::Error::custom(what))
}

/// What a value is, once its first bytes are read.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Str,
    Seq,
    Map,
}

impl Kind {
    /// The JSON Schema types the structural check lets this kind of value be (`Tree::fits`);
    /// a number where text is wanted is declined, so `string` is only text here.
    fn fits(self, json_type: &str) -> bool {
        matches!(
            (json_type, self),
            ("null", Kind::Null)
                | ("boolean", Kind::Bool(_))
                | ("integer" | "number", Kind::Int(_))
                | ("string", Kind::Str)
                | ("array", Kind::Seq)
                | ("object", Kind::Map)
        )
    }
}

impl<'a> Reader<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Spaces and line breaks between tokens; tabs and carriage returns are declined (YAML
    /// takes them differently in places, and places lines by them).
    fn skip_space(&mut self) -> Result<(), Unsure> {
        while let Some(&b) = self.bytes.get(self.at) {
            match b {
                b' ' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    self.line += 1;
                    self.line_start = self.at;
                    self.column_at = (self.at, 1);
                }
                b'\t' | b'\r' => return unsure("a tab or carriage return between tokens"),
                _ => break,
            }
        }
        Ok(())
    }

    /// The span of the `len` bytes at the reading position.
    fn span(&mut self, len: usize) -> Span {
        let (from, column) = self.column_at;
        let from = from.max(self.line_start);
        let counted = self
            .text
            .get(from..self.at)
            .map_or(0, |s| s.chars().count() as u32);
        let column = column + counted;
        self.column_at = (self.at, column);
        Span {
            line: self.line,
            column,
            offset: self.at as u32,
            len: len as u32,
        }
    }

    /// Whether the list or map being read ends here (then its closing bracket is read).
    fn at_close(&mut self, close: u8) -> Result<bool, Unsure> {
        self.skip_space()?;
        let closes = self.peek() == Some(close);
        if closes {
            self.at += 1;
        }
        Ok(closes)
    }

    fn expect(&mut self, byte: u8) -> Result<(), Unsure> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            unsure("not JSON")
        }
    }

    fn count(&mut self, events: usize, scalar_bytes: usize) -> Result<(), Unsure> {
        self.events += events;
        self.scalar_bytes += scalar_bytes;
        if self.events > self.max_events || self.scalar_bytes > self.max_scalar_bytes {
            return unsure("near the YAML parser's budget");
        }
        Ok(())
    }

    /// The length of the token at the reading position (a whole string or number; a
    /// collection's opening bracket), for its span.
    fn token_len(&self) -> Result<usize, Unsure> {
        let rest = &self.bytes[self.at..];
        match rest.first() {
            Some(b'{' | b'[') => Ok(1),
            Some(b'"') => {
                let mut i = 1;
                while let Some(&b) = rest.get(i) {
                    match b {
                        b'"' => return Ok(i + 1),
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
                unsure("an unterminated string")
            }
            Some(b't' | b'n') => Ok(4),
            Some(b'f') => Ok(5),
            Some(_) => Ok(rest
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(rest.len())),
            None => unsure("the end of the text"),
        }
    }

    /// A string at the reading position: borrowed from the text when it holds no escape,
    /// else decoded into `scratch` (`Ok(None)`).
    fn string(&mut self) -> Result<Option<&'a str>, Unsure> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = &self.bytes[start..];
        let Some(end) = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        else {
            return unsure("an unterminated string");
        };
        if rest[end] == b'"' {
            let text = &self.text[start..start + end];
            check_printable(text)?;
            self.at = start + end + 1;
            self.count(1, text.len())?;
            return Ok(Some(text));
        }
        self.scratch.clear();
        let mut i = start;
        loop {
            let b = *self
                .bytes
                .get(i)
                .ok_or_else(|| de::Error::custom("a string"))?;
            match b {
                b'"' => break,
                b'\\' => {
                    let escaped = *self
                        .bytes
                        .get(i + 1)
                        .ok_or_else(|| de::Error::custom("a string"))?;
                    i += 2;
                    let c = match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self.text.get(i..i + 4).unwrap_or("");
                            let code = u32::from_str_radix(hex, 16)
                                .ok()
                                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()));
                            i += 4;
                            match code.and_then(char::from_u32) {
                                Some(c) if !c.is_control() => c,
                                _ => return unsure("a \\u escape of a surrogate or a control"),
                            }
                        }
                        _ => return unsure("an escape JSON does not have"),
                    };
                    self.scratch.push(c);
                }
                0..0x20 => return unsure("a control character in a string"),
                _ => {
                    let run_end = self.bytes[i..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                        .map_or(self.bytes.len(), |n| i + n);
                    let run = &self.text[i..run_end];
                    check_printable(run)?;
                    self.scratch.push_str(run);
                    i = run_end;
                }
            }
        }
        self.at = i + 1;
        self.count(1, self.scratch.len())?;
        Ok(None)
    }

    /// A decimal integer (JSON's grammar, at most 18 digits, as the YAML path is sure of).
    fn integer(&mut self) -> Result<i128, Unsure> {
        let len = self.token_len()?;
        let written = &self.text[self.at..self.at + len];
        let digits = written.strip_prefix('-').unwrap_or(written);
        let plain = !digits.is_empty()
            && digits.len() <= 18
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits.len() == 1 || !digits.starts_with('0'));
        if !plain {
            return unsure("a number other than a decimal integer");
        }
        let n: i128 = written.parse().map_err(|_| de::Error::custom("a number"))?;
        self.at += len;
        self.count(1, len)?;
        Ok(n)
    }

    fn literal(&mut self, word: &str) -> Result<(), Unsure> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            let next = self.peek();
            if next.is_some_and(|b| b.is_ascii_alphanumeric()) {
                return unsure("not JSON");
            }
            self.count(1, word.len())
        } else {
            unsure("not JSON")
        }
    }

    /// What the value at the reading position is, without reading it (after spaces).
    fn kind(&mut self) -> Result<Kind, Unsure> {
        self.skip_space()?;
        match self.peek() {
            Some(b'{') => Ok(Kind::Map),
            Some(b'[') => Ok(Kind::Seq),
            Some(b'"') => Ok(Kind::Str),
            Some(b't') => Ok(Kind::Bool(true)),
            Some(b'f') => Ok(Kind::Bool(false)),
            Some(b'n') => Ok(Kind::Null),
            // The number itself is read by whoever reads the value.
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Int(0)),
            _ => unsure("not JSON"),
        }
    }

    fn enter(&mut self) -> Result<(), Unsure> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return unsure("nested deeper than the YAML parser's budget");
        }
        self.count(2, 0)
    }
}

/// The number of items of every list of the JSON text `bytes`, in the order the lists open:
/// one pass that steps over strings and counts the commas at each list's own level. On text
/// that is not JSON the numbers may be wrong; they are only hints (the reader then declines).
fn list_lengths(bytes: &[u8]) -> Vec<u32> {
    let mut lengths = Vec::new();
    // The open collections, innermost last: the index of a list's count, or `None` for a map.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            b'[' => {
                let empty = bytes[i + 1..]
                    .iter()
                    .find(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))
                    .is_none_or(|&c| c == b']');
                open.push(Some(lengths.len()));
                lengths.push(u32::from(!empty));
            }
            b'{' => open.push(None),
            b']' | b'}' => {
                open.pop();
            }
            b',' => {
                if let Some(Some(at)) = open.last() {
                    lengths[*at] += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    lengths
}

/// YAML refuses some characters JSON strings may hold as they are (C0 and C1 controls, DEL,
/// the byte-order mark, non-characters) and may break lines at others: both are declined.
fn check_printable(text: &str) -> Result<(), Unsure> {
    if text.is_ascii() {
        return if text.bytes().all(|b| b >= 0x20 && b != 0x7f) {
            Ok(())
        } else {
            unsure("a character YAML does not allow")
        };
    }
    let printable = |c: char| {
        // YAML's printable set, less what YAML 1.1 counts as a line break (NEL, LS, PS).
        matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && !matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
    };
    if text.chars().all(printable) {
        Ok(())
    } else {
        unsure("a character YAML does not allow")
    }
}

/// The schema's verdict on a value of `kind` where `rule` applies, as the structural check
/// gives it: `Ok(rule)` with the rule its entries or items are checked against (`None`: not
/// checked), or `Unsure` where the check would report something, or where it would try
/// several branches of an `anyOf` against a list or a map.
fn admit(
    rule: Option<&'static Rule>,
    kind: Kind,
    text: &str,
) -> Result<Option<&'static Rule>, Unsure> {
    let Some(rule) = rule else {
        return Ok(None);
    };
    let rule = resolve(rule);
    if let Some(branches) = rule.alternatives() {
        if kind == Kind::Null && branches.iter().any(|b| resolve(b).types().contains("null")) {
            return Ok(None);
        }
        let constants: Option<Vec<&str>> = branches.iter().map(|b| resolve(b).constant()).collect();
        if let Some(constants) = constants {
            return match kind {
                Kind::Str if constants.contains(&text) => Ok(None),
                _ => unsure("a value outside the constants"),
            };
        }
        let mut fitting = branches.iter().filter(|b| {
            let types = resolve(b).types();
            types.is_empty() || types.iter().any(|t| kind.fits(t))
        });
        return match kind {
            Kind::Seq | Kind::Map => match (fitting.next(), fitting.next()) {
                (Some(only), None) => admit(Some(only), kind, text),
                _ => unsure("a list or a map that several branches could take"),
            },
            _ => {
                if fitting.any(|b| admit(Some(b), kind, text).is_ok()) {
                    Ok(None)
                } else {
                    unsure("a value no branch takes")
                }
            }
        };
    }
    let types = rule.types();
    if !types.is_empty() && !types.iter().any(|t| kind.fits(t)) {
        return unsure("a value of the wrong type");
    }
    if let Some(allowed) = rule.allowed() {
        let written = match kind {
            Kind::Str => Some(text.to_owned()),
            Kind::Int(n) => Some(n.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        if written.is_some_and(|w| !allowed.contains(&w)) {
            return unsure("a value outside the enum");
        }
    }
    match kind {
        Kind::Int(n) => {
            let low = rule.minimum.is_some_and(|m| n < m as i128);
            let high = rule.maximum.is_some_and(|m| n > m as i128);
            if low || high {
                return unsure("a number out of range");
            }
            Ok(None)
        }
        Kind::Seq => Ok(rule.items()),
        Kind::Map => Ok(Some(rule)),
        _ => Ok(None),
    }
}

/// Follows `$ref`s, as the structural check does.
fn resolve(mut rule: &'static Rule) -> &'static Rule {
    for _ in 0..16 {
        match rule.reference() {
            Some((_, target)) => rule = target,
            None => break,
        }
    }
    rule
}

/// One value of the text, and the rule it is checked against.
struct Value<'r, 'a, 'k> {
    reader: &'r mut Reader<'a, 'k>,
    rule: Option<&'static Rule>,
}

impl<'de> Value<'_, 'de, '_> {
    /// Reads a string, checks it, and gives it to `visitor`.
    fn string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        let reader = self.reader;
        match reader.string()? {
            Some(text) => {
                admit(self.rule, Kind::Str, text)?;
                visitor.visit_borrowed_str(text)
            }
            None => {
                let text = std::mem::take(&mut reader.scratch);
                let result =
                    admit(self.rule, Kind::Str, &text).and_then(|_| visitor.visit_str(&text));
                reader.scratch = text;
                result
            }
        }
    }

    fn integer<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        let n = self.reader.integer()?;
        admit(self.rule, Kind::Int(n), "")?;
        match u64::try_from(n) {
            Ok(n) => visitor.visit_u64(n),
            Err(_) => match i64::try_from(n) {
                Ok(n) => visitor.visit_i64(n),
                Err(_) => unsure("an integer out of range"),
            },
        }
    }

    fn seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        let items = admit(self.rule, Kind::Seq, "")?;
        let reader = self.reader;
        reader.expect(b'[')?;
        reader.enter()?;
        let length = reader.lengths.next().map(|n| n as usize);
        let mut access = Items {
            reader,
            rule: items,
            length,
            first: true,
            done: false,
        };
        let value = visitor.visit_seq(&mut access)?;
        if !access.done {
            return unsure("a list not read to its end");
        }
        access.reader.depth -= 1;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        let rule = admit(self.rule, Kind::Map, "")?;
        let reader = self.reader;
        reader.expect(b'{')?;
        reader.enter()?;
        let start = reader.keys.len();
        let mut access = Entries {
            reader,
            rule,
            start,
            value: None,
            done: false,
        };
        let value = visitor.visit_map(&mut access)?;
        if !access.done {
            return unsure("a map not read to its end");
        }
        access.reader.depth -= 1;
        Ok(value)
    }
}

macro_rules! integers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
            self.reader.skip_space()?;
            self.integer(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for Value<'_, 'de, '_> {
    type Error = Unsure;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Map => self.map(visitor),
            Kind::Seq => self.seq(visitor),
            Kind::Str => self.string(visitor),
            Kind::Int(_) => self.integer(visitor),
            Kind::Bool(b) => {
                self.reader.literal(if b { "true" } else { "false" })?;
                admit(self.rule, Kind::Bool(b), "")?;
                visitor.visit_bool(b)
            }
            Kind::Null => {
                self.reader.literal("null")?;
                admit(self.rule, Kind::Null, "")?;
                visitor.visit_unit()
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Bool(_) => self.deserialize_any(visitor),
            _ => unsure("a boolean"),
        }
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_f64(visitor)
    }

    /// A whole number where a float is wanted: its text as a float, as the YAML path reads it.
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.reader.skip_space()?;
        let from = self.reader.at;
        let n = self.reader.integer()?;
        admit(self.rule, Kind::Int(n), "")?;
        let written = &self.reader.text[from..self.reader.at];
        match written.parse::<f64>() {
            Ok(f) => visitor.visit_f64(f),
            Err(_) => unsure("a float"),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("a character")
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Str => self.string(visitor),
            _ => unsure("a string"),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("bytes")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("bytes")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Null => {
                self.reader.literal("null")?;
                admit(self.rule, Kind::Null, "")?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Null => self.deserialize_any(visitor),
            _ => unsure("nothing"),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        if name == LOCATED {
            self.reader.skip_space()?;
            let len = self.reader.token_len()?;
            let span = self.reader.span(len);
            visitor.visit_seq(Spanned::new(span, self))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Seq => self.seq(visitor),
            _ => unsure("a list"),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.reader.kind()? {
            Kind::Map => self.map(visitor),
            _ => unsure("a map"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_map(visitor)
    }

    /// Unit variants only (the format's enums): the variant's name as a string.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        if self.reader.kind()? != Kind::Str {
            return unsure("a variant");
        }
        let reader = self.reader;
        match reader.string()? {
            Some(text) => {
                admit(self.rule, Kind::Str, text)?;
                visitor.visit_enum(de::value::BorrowedStrDeserializer::new(text))
            }
            None => {
                let text = std::mem::take(&mut reader.scratch);
                admit(self.rule, Kind::Str, &text)?;
                let result = visitor.visit_enum(de::value::StrDeserializer::<Unsure>::new(&text));
                reader.scratch = text;
                result
            }
        }
    }

    /// A value the typed file does not keep is still read, and checked as the structural
    /// check checks it.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_any(IgnoredAny)?;
        visitor.visit_unit()
    }
}

/// The items of a list being read.
struct Items<'r, 'a, 'k> {
    reader: &'r mut Reader<'a, 'k>,
    rule: Option<&'static Rule>,
    /// How many items the list holds (from [`list_lengths`]; a hint only).
    length: Option<usize>,
    first: bool,
    done: bool,
}

impl<'de> SeqAccess<'de> for &mut Items<'_, 'de, '_> {
    type Error = Unsure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Unsure> {
        if self.done {
            return Ok(None);
        }
        if self.reader.at_close(b']')? {
            self.done = true;
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            self.reader.expect(b',')?;
        }
        self.length = self.length.map(|n| n.saturating_sub(1));
        seed.deserialize(Value {
            reader: self.reader,
            rule: self.rule,
        })
        .map(Some)
    }

    /// The items left: a `Vec` is then made at its length (most lists hold one to three
    /// items, and one grown a push at a time takes room for four).
    fn size_hint(&self) -> Option<usize> {
        self.length
    }
}

/// The entries of a map being read; its keys are kept on the reader's stack from `start`.
struct Entries<'r, 'a, 'k> {
    reader: &'r mut Reader<'a, 'k>,
    rule: Option<&'static Rule>,
    start: usize,
    /// The rule of the value whose key was just read (`Some(None)`: not checked).
    value: Option<Option<&'static Rule>>,
    done: bool,
}

impl<'de> MapAccess<'de> for &mut Entries<'_, 'de, '_> {
    type Error = Unsure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Unsure> {
        if self.done {
            return Ok(None);
        }
        let reader = &mut *self.reader;
        if reader.at_close(b'}')? {
            if let Some(rule) = self.rule {
                let written = &reader.keys[self.start..];
                if resolve(rule)
                    .required()
                    .iter()
                    .any(|k| !written.contains(&k))
                {
                    return unsure("a required key missing");
                }
            }
            reader.keys.truncate(self.start);
            self.done = true;
            return Ok(None);
        }
        if reader.keys.len() > self.start {
            reader.expect(b',')?;
            reader.skip_space()?;
        }
        if reader.peek() != Some(b'"') {
            return unsure("not JSON");
        }
        let line = reader.line;
        let len = reader.token_len()?;
        let span = reader.span(len);
        let Some(key) = reader.string()? else {
            return unsure("a key with escapes");
        };
        if key.len() > reader.max_key_bytes || reader.keys[self.start..].contains(&key) {
            return unsure("a long or repeated key");
        }
        reader.keys.push(key);
        // YAML wants an implicit key's colon on the key's line.
        reader.skip_space()?;
        if reader.line != line {
            return unsure("a key whose colon is on another line");
        }
        reader.expect(b':')?;
        if reader.at - span.offset as usize > reader.max_key_bytes {
            return unsure("a key far from its colon");
        }
        if reader.depth == 1
            && let Some(rank) = reader.top_keys.iter().position(|k| *k == key)
            && reader.top_key.is_none_or(|(best, _)| rank < best)
        {
            reader.top_key = Some((rank, span));
        }
        self.value = Some(match self.rule.map(resolve) {
            None => None,
            Some(rule) => match rule.property(key) {
                Some(sub) => Some(sub),
                None if rule.closed => return unsure("an unknown key"),
                None => rule.values(),
            },
        });
        seed.deserialize(KeyNode::string(key, span)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Unsure> {
        let Some(rule) = self.value.take() else {
            return unsure("a value without its key");
        };
        seed.deserialize(Value {
            reader: self.reader,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::file::TopologyFile;
    use crate::format::from_tree::from_tree;
    use crate::format::structure::Checker;
    use crate::format::tree::Tree;
    use crate::format::yaml::{parse_options, read_tree};
    use crate::format::{Located, yaml_files};

    const TOP: [&str; 2] = ["kubernetes", "nodes"];

    /// What the YAML path makes of `text`: the structural check's findings, and the typed file
    /// (`Debug`, spans included) with the document's and the top key's spans.
    fn yaml_path(text: &str) -> Option<(usize, String, Span, Span)> {
        let options = parse_options(text.len());
        let tree: Located<Tree> = read_tree(text, &options).ok()?;
        let mut checker = Checker::new();
        checker.check_document(&tree);
        let file: TopologyFile = from_tree(&tree, text)
            .ok()
            .or_else(|| serde_saphyr::from_str_with_options(text, options).ok())?;
        let Tree::Map(top) = &tree.value else {
            return None;
        };
        let key = TOP
            .iter()
            .find_map(|k| top.iter().find(|(key, _)| key.value.0 == *k))
            .map_or(tree.span, |(k, _)| k.span);
        Some((
            checker.diagnostics.len(),
            format!("{file:?}"),
            tree.span,
            key,
        ))
    }

    /// Where this reader reads `text`, the YAML path finds nothing wrong and reads the same
    /// file at the same places; returns whether it read it.
    fn agrees(text: &str) -> bool {
        let budget = parse_options(text.len()).budget.expect("a budget");
        let Some(read) = read::<TopologyFile>(text, &budget, &TOP) else {
            return false;
        };
        let (findings, file, document, key) = yaml_path(text).unwrap_or_else(|| {
            panic!("the YAML path does not read what this reader read:\n{text}")
        });
        assert_eq!(
            findings, 0,
            "the structural check finds something in:\n{text}"
        );
        assert_eq!(format!("{:?}", read.value), file, "{text}");
        assert_eq!(read.document, document, "{text}");
        assert_eq!(read.top_key.unwrap_or(read.document), key, "{text}");
        true
    }

    /// The topology files of the repository written as JSON: compact, as `generate --format
    /// json` writes it, and pretty-printed (keys sorted, two-space indents).
    fn as_json(dirs: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for dir in dirs {
            for path in yaml_files(dir) {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let Ok(json) = crate::generate::to_json(&text) else {
                    continue;
                };
                let name = path.display().to_string();
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&json) {
                    let pretty = serde_json::to_string_pretty(&value).expect("JSON");
                    out.push((format!("{name} (pretty)"), pretty));
                }
                out.push((name, json));
            }
        }
        out
    }

    #[test]
    fn every_topology_of_the_repository_reads_as_the_yaml_path_reads_it() {
        let files = as_json(&["topologies"]);
        let read = files.iter().filter(|(_, json)| agrees(json)).count();
        // Declined: files with decimals, numbers where text is wanted, and the like.
        assert!(
            read * 10 >= files.len() * 7,
            "{read} of {} files",
            files.len()
        );
    }

    #[test]
    fn broken_files_are_left_to_the_yaml_path() {
        for (name, json) in as_json(&["tests/broken", "examples"]) {
            let budget = parse_options(json.len()).budget.expect("a budget");
            if read::<TopologyFile>(&json, &budget, &TOP).is_some() {
                assert!(agrees(&json), "{name}");
            }
        }
    }

    /// Every string, number and literal of a file replaced by each kind of value in turn, and
    /// every key renamed: whatever this reader still reads, the YAML path reads alike.
    #[test]
    fn mutated_files_read_alike_or_not_at_all() {
        let replacements = [
            "12",
            "-1",
            "0",
            "70000",
            "\"zz\"",
            "\"\"",
            "null",
            "true",
            "[]",
            "{}",
            "[\"a\"]",
            "1.5",
            "\"reply\"",
            "\"10.0.0.1/24\"",
        ];
        let mut read = 0;
        for file in [
            "topologies/lab1-virtualbox.yaml",
            "topologies/linux-nat-chain.yaml",
        ] {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let json = crate::generate::to_json(&text).expect("JSON");
            // Where each token starts and ends.
            let mut tokens = Vec::new();
            let bytes = json.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        let start = i;
                        i += 1;
                        while bytes[i] != b'"' {
                            i += if bytes[i] == b'\\' { 2 } else { 1 };
                        }
                        tokens.push((start, i + 1));
                    }
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                        let start = i;
                        while i < bytes.len() && bytes[i].is_ascii_alphanumeric()
                            || bytes[i] == b'-'
                        {
                            i += 1;
                        }
                        tokens.push((start, i));
                        continue;
                    }
                    _ => {}
                }
                i += 1;
            }
            for (start, end) in tokens {
                for new in replacements {
                    let mutated = format!("{}{new}{}", &json[..start], &json[end..]);
                    read += usize::from(agrees(&mutated));
                }
            }
        }
        assert!(read > 100, "{read}");
    }

    #[test]
    fn json_a_yaml_parser_may_take_otherwise_is_declined() {
        let cases = [
            // Read: escapes, other scripts, empty collections, layout.
            (
                "{\"segments\": [{\"name\": \"l\\u00e9n\\/a\"}], \"nodes\": []}",
                true,
            ),
            (
                "{\n\"nodes\":[\n{\"name\":\"a\",\"interfaces\":[]}\n]\n}\n",
                true,
            ),
            ("  {\"nodes\" :  [ { \"name\" : \"é\" } ] }  \n", true),
            ("{\"segments\": [{\"name\": \"l\", \"mtu\": 9000}]}", true),
            // Declined: layout YAML reads otherwise, numbers, repeats, escapes.
            ("{\"nodes\":\t[]}", false),
            ("{\"nodes\": []}\r\n", false),
            ("\u{feff}{\"nodes\": []}", false),
            ("{\"nodes\"\n: []}", false),
            ("{\"nodes\": [], \"nodes\": []}", false),
            (
                "{\"segments\": [{\"name\": \"l\", \"mtu\": 9000.0}]}",
                false,
            ),
            ("{\"segments\": [{\"name\": \"l\", \"mtu\": 9e3}]}", false),
            ("{\"segments\": [{\"name\": 12}]}", false),
            ("{\"segments\": [{\"name\": \"\\ud83d\\ude00\"}]}", false),
            ("{\"segments\": [{\"name\": \"\\u0007\"}]}", false),
            ("{\"segments\": [{\"name\": \"a\u{85}\"}]}", false),
            ("{\"segments\": [{\"name\": \"l\"},]}", false),
            ("{\"nodes\": []} {}", false),
            ("{\"nodes\": [], \"bogus\": 1}", false),
            ("{\"segments\": [{}]}", false),
            (
                "{\"expect\": [{\"from\": \"a\", \"ping\": \"b\", \"outcome\": \"replied\"}]}",
                false,
            ),
            ("[]", false),
            ("nodes: []", false),
        ];
        for (text, expected) in cases {
            let budget = parse_options(text.len()).budget.expect("a budget");
            let read = read::<TopologyFile>(text, &budget, &TOP).is_some();
            assert_eq!(read, expected, "{text:?}");
            if read {
                assert!(agrees(text), "{text:?}");
            }
        }
    }

    #[test]
    fn lists_are_counted_by_their_own_commas() {
        let text = r#"{"a": [1, [2, 3], {"b": [], "c": "x,y]"}], "d": [ ], "e": [{}]}"#;
        assert_eq!(list_lengths(text.as_bytes()), [3, 2, 0, 0, 1]);
    }
}
