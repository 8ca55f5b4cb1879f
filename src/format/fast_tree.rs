//! Reading a file's [`Tree`] straight from the YAML parser's events.
//!
//! serde-saphyr runs granit-parser and then puts every event through a general deserializer
//! (anchors, merge keys, tags, comments, budgets, typed scalars): about two thirds of the time
//! a topology takes to load went there (benches/RESULTS.md, issue 14). This reader takes the
//! same parser, with the same options, and builds the [`Tree`] itself — but only for the files
//! it reads exactly as serde-saphyr would: one document, no tags, anchors, aliases, merge keys
//! or repeated keys, within serde-saphyr's budget, keys that are text, and plain scalars whose
//! type it is sure of (`null`, YAML 1.1 booleans, decimal integers, and text no number parser
//! takes). Anything else, a parser error included, gives `None`, and the caller asks
//! serde-saphyr, whose result and messages the diagnostics quote. `tests` below hold the two
//! readers against each other, spans included.
//!
//! The scalar rules follow serde-saphyr 2.2's `deserialize_any` with reachlab's options
//! (`format/yaml.rs`): null first (empty, `~`, `null`, `Null`, `NULL`), then booleans
//! (`y|yes|true|on`, `n|no|false|off`, any case), then integers, then floats, then text.

use granit_parser::{Event, Marker, Parser, ScalarStyle, StrInput};

use super::source::{Located, Span};
use super::tree::{Key, Tree};

/// The tree of `text`, when this reader is sure to read it as serde-saphyr would with
/// `budget`; `None` when serde-saphyr must read it.
pub(crate) fn read_tree(text: &str, budget: &serde_saphyr::Budget) -> Option<Located<Tree>> {
    let mut reader = Reader {
        parser: Parser::with_options(StrInput::new(text), parser_options(budget)),
        events: 0,
        nodes: 0,
        scalar_bytes: 0,
        // Stay clear of every limit serde-saphyr checks (it reports a breach, this reader
        // leaves it to it): events, nodes, depth, scalar bytes.
        max_events: budget.max_events.saturating_sub(1),
        max_nodes: budget.max_nodes.saturating_sub(1),
        max_depth: budget.max_depth.saturating_sub(2),
        max_scalar_bytes: budget.max_total_scalar_bytes.saturating_sub(1),
        items: Vec::new(),
        entries: Vec::new(),
    };
    if !matches!(reader.next()?.0, Event::StreamStart) {
        return None;
    }
    if !matches!(reader.next()?.0, Event::DocumentStart(..)) {
        return None;
    }
    let (event, span) = reader.next()?;
    let tree = reader.node(event, span, 0)?;
    if !matches!(reader.next()?.0, Event::DocumentEnd) {
        return None;
    }
    // A second document is serde-saphyr's error to report.
    if !matches!(reader.next()?.0, Event::StreamEnd) {
        return None;
    }
    Some(tree)
}

/// granit-parser's options as serde-saphyr derives them from a budget (`Budget::parser_options`
/// and `Options::parser_options` in serde-saphyr 2.2), so that the parser accepts and refuses
/// the same texts: no comment events, default indentation and BOM rules.
fn parser_options(budget: &serde_saphyr::Budget) -> granit_parser::Options {
    granit_parser::options! {
        simple_key_max_lookahead: budget.simple_key_max_lookahead,
        flow_nesting_limit: budget.flow_nesting_limit,
        block_nesting_limit: granit_parser::Options::default()
            .block_nesting_limit
            .max(budget.max_depth.saturating_add(1)),
        emit_comments: false,
    }
}

struct Reader<'a> {
    parser: Parser<'a, StrInput<'a>>,
    events: usize,
    nodes: usize,
    scalar_bytes: usize,
    max_events: usize,
    max_nodes: usize,
    max_depth: usize,
    max_scalar_bytes: usize,
    /// The lists and maps being read, innermost last: each collects its entries here and
    /// takes them out at its end into a `Vec` of exactly their number. Most lists and maps of
    /// a topology hold two or three entries; grown one push at a time, a large file's tree
    /// carried about a quarter of slack, and shrinking each cost a reallocation.
    items: Vec<Located<Tree>>,
    entries: Vec<(Located<Key>, Located<Tree>)>,
}

impl<'a> Reader<'a> {
    /// The next event and where it is written; `None` at an error or a budget's edge.
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        loop {
            let (event, span) = self.parser.next()?.ok()?;
            self.events += 1;
            if self.events > self.max_events {
                return None;
            }
            if let Event::Comment(..) = event {
                continue;
            }
            return Some((event, span_of(&span.start, &span.end)?));
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Option<Located<Tree>> {
        self.nodes += 1;
        if self.nodes > self.max_nodes || depth > self.max_depth {
            return None;
        }
        let tree = match event {
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                self.count_scalar(&value)?;
                if style == ScalarStyle::Plain {
                    plain(&value)?
                } else {
                    Tree::Str(value.into_owned())
                }
            }
            Event::SequenceStart(_, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let start = self.items.len();
                loop {
                    let (event, span) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    let item = self.node(event, span, depth + 1)?;
                    self.items.push(item);
                }
                Tree::Seq(self.items.drain(start..).collect())
            }
            Event::MappingStart(_, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let start = self.entries.len();
                loop {
                    let (event, key_span) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => break,
                        Event::Scalar(key, style, 0, None) => {
                            self.count_scalar(&key)?;
                            self.nodes += 1;
                            // Keys serde-saphyr would type (numbers, booleans, null) or merge
                            // (`<<`), and repeated keys, are left to it.
                            if style == ScalarStyle::Plain
                                && (key == "<<" || !matches!(plain(&key)?, Tree::Str(_)))
                            {
                                return None;
                            }
                            if self.entries[start..].iter().any(|(k, _)| k.value.0 == key) {
                                return None;
                            }
                            Key(key.into_owned(), true)
                        }
                        _ => return None,
                    };
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, depth + 1)?;
                    self.entries.push((Located::at(key, key_span), value));
                }
                Tree::Map(self.entries.drain(start..).collect())
            }
            _ => return None,
        };
        Some(Located::at(tree, span))
    }

    fn count_scalar(&mut self, text: &str) -> Option<()> {
        self.scalar_bytes += text.len();
        (self.scalar_bytes <= self.max_scalar_bytes).then_some(())
    }
}

/// A span as serde-saphyr makes it of a parser's span (`location_from_span`): the start's
/// line, its column counted from 1, and the bytes between start and end. `None` where a
/// position does not fit (serde-saphyr then leaves the span without bytes).
fn span_of(start: &Marker, end: &Marker) -> Option<Span> {
    let offset = start.byte_offset()?;
    let len = end.byte_offset()?.checked_sub(offset)?;
    Some(Span {
        line: u32::try_from(start.line()).ok()?,
        column: u32::try_from(start.col() + 1).ok()?,
        offset: u32::try_from(offset).ok().filter(|&o| o < u32::MAX)?,
        len: u32::try_from(len).ok()?,
    })
}

/// What an untagged plain scalar is, as serde-saphyr's `deserialize_any` types it; `None`
/// where this reader is not sure (floats, radix and underscore numbers, out-of-range integers).
fn plain(text: &str) -> Option<Tree> {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Some(Tree::Null);
    }
    if text.len() <= 5 {
        for (word, value) in [
            ("true", true),
            ("yes", true),
            ("y", true),
            ("on", true),
            ("false", false),
            ("no", false),
            ("n", false),
            ("off", false),
        ] {
            if text.eq_ignore_ascii_case(word) {
                return Some(Tree::Bool(value));
            }
        }
    }
    // Plain scalars carry no padding, but serde-saphyr trims before it reads a number.
    let padding = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    if text.as_bytes().first().is_some_and(padding) || text.as_bytes().last().is_some_and(padding) {
        return None;
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let Some(&first) = unsigned.as_bytes().first() else {
        return Some(Tree::Str(text.to_owned()));
    };
    // No number serde-saphyr reads starts otherwise (Rust's `inf` and `nan` are refused for
    // not starting with a digit; `.inf` and `.nan` start with a dot).
    if !first.is_ascii_digit() && first != b'.' {
        return Some(Tree::Str(text.to_owned()));
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) {
        // A decimal integer in range, without a leading zero; the rest (`0127` reads as a
        // float, 20-digit numbers overflow) is serde-saphyr's.
        if (unsigned.len() > 1 && first == b'0') || unsigned.len() > 18 {
            return None;
        }
        let magnitude: i128 = unsigned.parse().ok()?;
        return Some(Tree::Int(if negative { -magnitude } else { magnitude }));
    }
    // Text that neither the integer reader (radix prefixes, underscores) nor Rust's float
    // parser takes is text; anything either might take is left to serde-saphyr.
    if unsigned.contains('_')
        || unsigned.len() > 1 && first == b'0' && unsigned.as_bytes()[1].is_ascii_alphabetic()
        || text.parse::<f64>().is_ok()
        || unsigned.starts_with('.')
    {
        return None;
    }
    Some(Tree::Str(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::yaml::parse_options;

    /// serde-saphyr's tree of `text`, as the loader reads it when this reader declines.
    fn saphyr(text: &str) -> Result<Located<Tree>, serde_saphyr::Error> {
        serde_saphyr::from_str_with_options(text, parse_options(text.len()))
    }

    fn fast(text: &str) -> Option<Located<Tree>> {
        let options = parse_options(text.len());
        read_tree(text, options.budget.as_ref().expect("a budget"))
    }

    /// Equal values at equal places, all the way down (`Located`'s own `==` ignores places).
    fn same(a: &Located<Tree>, b: &Located<Tree>) -> Result<(), String> {
        if a.span != b.span {
            return Err(format!(
                "span {:?} vs {:?} at {:?}",
                a.span, b.span, a.value
            ));
        }
        match (&a.value, &b.value) {
            (Tree::Seq(x), Tree::Seq(y)) if x.len() == y.len() => {
                x.iter().zip(y).try_for_each(|(x, y)| same(x, y))
            }
            (Tree::Map(x), Tree::Map(y)) if x.len() == y.len() => {
                x.iter().zip(y).try_for_each(|((kx, vx), (ky, vy))| {
                    if kx.value != ky.value || kx.span != ky.span {
                        return Err(format!("key {kx:?} vs {ky:?}"));
                    }
                    same(vx, vy)
                })
            }
            (Tree::Seq(_) | Tree::Map(_), _) => Err(format!("{:?} vs {:?}", a.value, b.value)),
            (x, y) if x == y => Ok(()),
            (x, y) => Err(format!("{x:?} vs {y:?} at {:?}", a.span)),
        }
    }

    /// Where this reader reads `text`, serde-saphyr reads the same tree; returns whether it did.
    fn agrees(text: &str) -> bool {
        match fast(text) {
            None => false,
            Some(tree) => {
                let reference = saphyr(text).unwrap_or_else(|e| {
                    panic!("the fast reader took what serde-saphyr refuses: {e}\n{text}")
                });
                if let Err(e) = same(&tree, &reference) {
                    panic!("the two readers differ: {e}\n{text}");
                }
                true
            }
        }
    }

    #[test]
    fn every_topology_of_the_repository_reads_alike() {
        let files = crate::format::yaml_files("topologies");
        let read = files
            .iter()
            .filter(|path| agrees(&std::fs::read_to_string(path).expect("UTF-8")))
            .count();
        // The fast reader is the common case (the declined are multi-document manifests).
        assert!(
            read * 10 >= files.len() * 9,
            "{read} of {} files",
            files.len()
        );
    }

    #[test]
    fn broken_files_and_examples_read_alike_or_are_left_to_serde_saphyr() {
        let mut files = crate::format::yaml_files("tests/broken");
        files.extend(crate::format::yaml_files("examples"));
        for path in files {
            agrees(&std::fs::read_to_string(&path).expect("UTF-8"));
        }
    }

    #[test]
    fn plain_scalars_are_typed_as_serde_saphyr_types_them() {
        for text in [
            "a: ~",
            "a: null",
            "a: Null",
            "a: NULL",
            "a:",
            "a: nul",
            "a: y",
            "a: Y",
            "a: yes",
            "a: YES",
            "a: On",
            "a: off",
            "a: n",
            "a: No",
            "a: True",
            "a: FALSE",
            "a: tru",
            "a: 0",
            "a: -0",
            "a: 7",
            "a: -42",
            "a: +42",
            "a: 123456789012345678",
            "a: 10.0.0.1",
            "a: 10.0.0.0/24",
            "a: 22/tcp",
            "a: 5s",
            "a: 1-2",
            "a: 8080:80",
            "a: inf",
            "a: nan",
            "a: infinity",
            "a: abc",
            "a: -abc",
            "a: 'quoted 1'",
            "a: \"2\"",
            "a: |\n  block\n",
            "a: >\n  folded\n  text\n",
            "a: x # comment",
            "a: two\n  lines",
            "a: é",
            "a: [1, b, {c: d}]",
            "a: {}",
            "a: []",
            "a: 'it''s'",
            "a: \"tab\\tnew\\nline\"",
            "'k': v",
            "\"k k\": v",
            "a.b/c: d",
        ] {
            assert!(agrees(text), "the fast reader declined {text:?}");
        }
    }

    #[test]
    fn what_it_is_unsure_of_is_left_to_serde_saphyr() {
        for text in [
            "a: 1.5",
            "a: .5",
            "a: 1e3",
            "a: 0x1F",
            "a: 0o17",
            "a: 0b1",
            "a: 1_000",
            "a: 0127",
            "a: 12345678901234567890123",
            "a: .inf",
            "a: -.nan",
            "a: &x 1\nb: *x",
            "a: !!str 1",
            "<<: {a: 1}",
            "a: 1\na: 2",
            "1: a",
            "true: a",
            "~: a",
            "[a]: b",
            "a: 1\n---\nb: 2",
            "a: [",
            "a: 'x",
            "{a: b}: c",
        ] {
            assert!(fast(text).is_none(), "the fast reader read {text:?}");
        }
    }

    #[test]
    fn places_agree_with_carriage_returns_a_bom_tabs_and_wide_characters() {
        for text in [
            "a: 1\r\nb:\r\n  - x\r\n  - y\r\n",
            "\u{feff}a: b\nc: d\n",
            "a:\t1\nb: [x,\ty]\n",
            "é: ü\nnodes:\n  - { name: 𝔁, interfaces: [] }\n",
            "# head\n\nnodes: # list\n  - name: a # one\n    x: [1, 2]\n",
            "a:\n- 1\n- - 2\n  - 3\n- k: v\n  l: w\n",
        ] {
            assert!(agrees(text), "the fast reader declined {text:?}");
        }
    }

    #[test]
    fn deep_nesting_and_many_events_are_left_to_serde_saphyr_budget() {
        let deep = format!("a: {}1{}", "[".repeat(80), "]".repeat(80));
        assert!(fast(&deep).is_none());
        let shallow = format!("a: {}1{}", "[".repeat(20), "]".repeat(20));
        assert!(agrees(&shallow));
    }
}
