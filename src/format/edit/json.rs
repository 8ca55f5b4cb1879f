//! The same edits on a JSON topology file (JSON is YAML: `reachlab generate --format json`
//! writes one, each entry of `segments:` and `nodes:` on a line of its own). A JSON file is read
//! here with the byte range of every value, whatever its layout (one line, one entry per line,
//! or pretty-printed with any indentation), and an edit is one splice of its text: the new key
//! or item, written as JSON (keys and text quoted, `true`/`false`, numbers), goes where the
//! YAML editor would put it (a key at the end of its mapping, an item first or last), and
//! everything else stays byte for byte.
//!
//! What is added takes the layout of what is around it:
//!
//! - in a collection whose entries are each on a line of their own, on a line of its own, at
//!   the indentation of its neighbours; in a collection written on one line, on that line, with
//!   the separators the file uses there (`,` or `, `, `:` or `: `);
//! - a new list or mapping of its own (a rule, `{"firewall": {"input": {"rules": [...]}}}`) is
//!   spread over lines, one entry a line with the file's indentation step, where the file
//!   spreads the collections at that depth nearby (the node's other lists, its siblings'), and
//!   is written on one line where the file writes them on one line.
//!
//! The value of an [`Op`] is YAML flow text (`{ to: default, via: 10.0.0.1 }`): it is read as
//! YAML, as the YAML twin of the file would read it, and written back as JSON with the same
//! values (`22` stays a number, `10.0.0.1` becomes `"10.0.0.1"`).

use super::{Edit, EditError, Op, Step, path_text};
use crate::format::tree::Tree;

/// Nesting deeper than this is left to the YAML editor (the loader refuses far less).
const MAX_DEPTH: usize = 512;

/// One JSON value of the file.
#[derive(Debug)]
struct Node {
    /// Its bytes: `text[start..end]`.
    start: usize,
    end: usize,
    /// 0 for the document's mapping.
    depth: usize,
    parent: Option<usize>,
    /// The last node of its subtree (nodes are numbered in document order, so a node's
    /// subtree is `self..=last`).
    last: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A mapping's entries: the key's bytes (with its quotes) and the value's node.
    Object(Vec<Entry>),
    Array(Vec<usize>),
    /// A string, number, `true`, `false` or `null`.
    Scalar,
}

#[derive(Debug)]
struct Entry {
    key: (usize, usize),
    value: usize,
}

/// A JSON value to write: scalars already as JSON text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Scalar(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// What is added to a collection: an item of a list, or a key and its value.
enum Child {
    Item(Value),
    Entry(String, Value),
}

/// The file's separators and indentation step near an edit.
struct Style {
    /// Between a key and its value (`": "` pretty-printed, `":"` compact).
    colon: String,
    /// Between the entries of a collection on one line.
    comma: String,
    /// Inside the brackets of a collection on one line (`{ "a": 1 }`).
    pad: String,
    /// What one level of nesting adds to the indentation.
    step: String,
}

/// One change of the text: `range` replaced by `text`.
struct Splice {
    range: std::ops::Range<usize>,
    text: String,
}

/// `text` with `edit` made, when `text` is a JSON document (a mapping); `None` when it is not
/// JSON this reader takes (YAML, or JSON with a mistake): the YAML editor then handles it.
pub(super) fn apply_one(text: &str, edit: &Edit) -> Option<Result<String, EditError>> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let doc = Doc::parse(text)?;
    Some(doc.edit(edit).map(|splice| {
        let mut out = text.to_owned();
        out.replace_range(splice.range, &splice.text);
        out
    }))
}

/// A JSON file read with the place of every value.
struct Doc<'a> {
    text: &'a str,
    nodes: Vec<Node>,
    newline: &'static str,
}

/// Reads values into `nodes`, in document order.
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bump()? == byte).then_some(())
    }

    /// A string, from its opening quote past its closing one.
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.bump()? {
                b'"' => return Some(()),
                b'\\' => {
                    self.bump()?;
                }
                b if b < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// A value at `depth` under `parent`; its node's index.
    fn value(&mut self, depth: usize, parent: Option<usize>) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        let index = self.nodes.len();
        let start = self.pos;
        self.nodes.push(Node {
            start,
            end: start,
            depth,
            parent,
            last: index,
            kind: Kind::Scalar,
        });
        let kind = match self.peek()? {
            b'{' => {
                self.pos += 1;
                self.space();
                let mut entries = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        let key_start = self.pos;
                        self.string()?;
                        let key = (key_start, self.pos);
                        self.space();
                        self.eat(b':')?;
                        self.space();
                        let value = self.value(depth + 1, Some(index))?;
                        entries.push(Entry { key, value });
                        self.space();
                        match self.bump()? {
                            b',' => self.space(),
                            b'}' => break,
                            _ => return None,
                        }
                    }
                }
                Kind::Object(entries)
            }
            b'[' => {
                self.pos += 1;
                self.space();
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1, Some(index))?);
                        self.space();
                        match self.bump()? {
                            b',' => self.space(),
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                Kind::Array(items)
            }
            b'"' => {
                self.string()?;
                Kind::Scalar
            }
            _ => {
                while matches!(
                    self.peek(),
                    Some(b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E')
                ) {
                    self.pos += 1;
                }
                let word = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
                let number = || serde_json::from_str::<serde_json::Number>(word).is_ok();
                if !(matches!(word, "true" | "false" | "null") || number()) {
                    return None;
                }
                Kind::Scalar
            }
        };
        let last = self.nodes.len() - 1;
        let node = self.nodes.get_mut(index)?;
        node.end = self.pos;
        node.last = last;
        node.kind = kind;
        Some(index)
    }
}

impl<'a> Doc<'a> {
    /// The document, when it is one JSON mapping (after an optional byte-order mark and
    /// white space).
    fn parse(text: &'a str) -> Option<Self> {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            pos: if text.starts_with('\u{feff}') { 3 } else { 0 },
            nodes: Vec::new(),
        };
        parser.space();
        if parser.peek() != Some(b'{') {
            return None;
        }
        parser.value(0, None)?;
        parser.space();
        if parser.pos != text.len() {
            return None;
        }
        Some(Doc {
            text,
            nodes: parser.nodes,
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
        })
    }

    /// The text of a string (its bytes with their quotes), escapes read.
    fn string(&self, (start, end): (usize, usize)) -> Option<String> {
        let raw = self.text.get(start..end)?;
        if raw.contains('\\') {
            serde_json::from_str(raw).ok()
        } else {
            raw.get(1..raw.len().checked_sub(1)?).map(str::to_owned)
        }
    }

    /// A scalar as the text a path compares with: a string's text, a number's digits.
    fn scalar_text(&self, node: usize) -> Option<String> {
        let n = &self.nodes[node];
        match n.kind {
            Kind::Scalar if self.text.as_bytes().get(n.start) == Some(&b'"') => {
                self.string((n.start, n.end))
            }
            Kind::Scalar => Some(self.text[n.start..n.end].to_owned()),
            _ => None,
        }
    }

    /// The value of key `key` in the mapping `node`.
    fn entry(&self, node: usize, key: &str) -> Option<usize> {
        let Kind::Object(entries) = &self.nodes[node].kind else {
            return None;
        };
        entries
            .iter()
            .find(|e| self.string(e.key).as_deref() == Some(key))
            .map(|e| e.value)
    }

    /// The byte ranges of a collection's entries (a mapping's from its key to its value's end).
    fn children(&self, node: usize) -> Vec<(usize, usize)> {
        match &self.nodes[node].kind {
            Kind::Object(entries) => entries
                .iter()
                .map(|e| (e.key.0, self.nodes[e.value].end))
                .collect(),
            Kind::Array(items) => items
                .iter()
                .map(|&i| (self.nodes[i].start, self.nodes[i].end))
                .collect(),
            Kind::Scalar => Vec::new(),
        }
    }

    /// Whether a collection has entries and its first one starts on a line after its bracket.
    fn spread(&self, node: usize) -> bool {
        self.children(node)
            .first()
            .is_some_and(|&(start, _)| self.text[self.nodes[node].start..start].contains('\n'))
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    /// The white space that starts the line `at` is on.
    fn indent(&self, at: usize) -> &'a str {
        let line = &self.text[self.line_start(at)..];
        &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
    }

    /// Whether only white space is before `at` on its line.
    fn starts_line(&self, at: usize) -> bool {
        self.text[self.line_start(at)..at]
            .bytes()
            .all(|b| b == b' ' || b == b'\t')
    }

    /// The first answer `found` gives for a node near `anchor`: in its subtree, then in its
    /// parent's, and so on up to the whole document.
    fn nearest<T>(&self, anchor: usize, found: impl Fn(usize) -> Option<T>) -> Option<T> {
        let mut seen: Option<(usize, usize)> = None;
        let mut at = Some(anchor);
        while let Some(node) = at {
            let (first, last) = (node, self.nodes[node].last);
            let fresh = (first..=last).filter(|i| seen.is_none_or(|(a, b)| *i < a || *i > b));
            for i in fresh {
                if let Some(answer) = found(i) {
                    return Some(answer);
                }
            }
            seen = Some((first, last));
            at = self.nodes[node].parent;
        }
        None
    }

    /// Whether collections with entries at `depth` are spread over lines near `anchor`
    /// (nearest first; where the file has none that deep, as the file does one level up).
    fn spread_at(&self, anchor: usize, depth: usize) -> bool {
        let spread = self.nearest(anchor, |i| {
            let n = &self.nodes[i];
            (n.depth == depth && !self.children(i).is_empty()).then(|| self.spread(i))
        });
        match spread {
            Some(spread) => spread,
            None if depth == 0 => false,
            None => self.spread_at(anchor, depth - 1),
        }
    }

    /// The separators and indentation step near `anchor`.
    fn style(&self, anchor: usize) -> Style {
        let colon = self
            .nearest(anchor, |i| match &self.nodes[i].kind {
                Kind::Object(entries) => entries.first().and_then(|e| {
                    let between = &self.text[e.key.1..self.nodes[e.value].start];
                    (!between.contains('\n')).then(|| between.to_owned())
                }),
                _ => None,
            })
            .unwrap_or_else(|| ": ".into());
        let comma = self
            .nearest(anchor, |i| match self.children(i).as_slice() {
                [(_, end), (start, _), ..] => {
                    let between = &self.text[*end..*start];
                    (!between.contains('\n')).then(|| between.to_owned())
                }
                _ => None,
            })
            .unwrap_or_else(|| if colon.ends_with(' ') { ", " } else { "," }.into());
        let pad = self
            .nearest(anchor, |i| {
                let &(start, _) = self.children(i).first()?;
                let inside = &self.text[self.nodes[i].start + 1..start];
                (!inside.contains('\n')).then(|| inside.to_owned())
            })
            .unwrap_or_default();
        let step = self
            .nearest(anchor, |i| {
                let &(start, _) = self.children(i).first()?;
                if !self.spread(i) || !self.starts_line(start) {
                    return None;
                }
                let (outer, inner) = (self.indent(self.nodes[i].start), self.indent(start));
                inner
                    .strip_prefix(outer)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "  ".into());
        Style {
            colon,
            comma,
            pad,
            step,
        }
    }

    /// Follows the edit's path from the document's mapping, and makes the change at its end
    /// (creating missing keys in their parent mapping).
    fn edit(&self, edit: &Edit) -> Result<Splice, EditError> {
        let mut node = 0;
        for (at, step) in edit.path.iter().enumerate() {
            let shown = || path_text(&edit.path[..at]);
            match (step, &self.nodes[node].kind) {
                (Step::Key(key), Kind::Object(_)) => match self.entry(node, key) {
                    Some(value) => node = value,
                    None => {
                        let value = new_value(&edit.path[at + 1..], &edit.op, &shown())?;
                        return Ok(self.insert(node, &Child::Entry(key.clone(), value), false));
                    }
                },
                (Step::Key(_), _) => {
                    return Err(EditError::Shape {
                        path: shown(),
                        expected: "a mapping",
                    });
                }
                (Step::Named(_) | Step::Where { .. }, Kind::Array(items)) => {
                    let (key, name) = step.item().unwrap_or_default();
                    node = items
                        .iter()
                        .copied()
                        .find(|&item| {
                            self.entry(item, key)
                                .and_then(|v| self.scalar_text(v))
                                .is_some_and(|v| v == name)
                        })
                        .ok_or_else(|| EditError::NoSuchItem {
                            path: shown(),
                            name: name.to_owned(),
                        })?;
                }
                (Step::Named(_) | Step::Where { .. }, _) => {
                    return Err(EditError::Shape {
                        path: shown(),
                        expected: "a sequence",
                    });
                }
            }
        }
        self.act(node, &edit.op, &path_text(&edit.path))
    }

    /// Performs `op` on the value `node`.
    fn act(&self, node: usize, op: &Op, path: &str) -> Result<Splice, EditError> {
        let n = &self.nodes[node];
        let null = &self.text[n.start..n.end] == "null";
        match (op, &n.kind) {
            (Op::Set(value), Kind::Scalar) => {
                let value = read_value(value, path)?;
                let text = self.render(&value, n.depth, self.indent(n.start), false, node);
                Ok(Splice {
                    range: n.start..n.end,
                    text,
                })
            }
            (Op::Append(item) | Op::Prepend(item), Kind::Array(_)) => {
                let item = read_value(item, path)?;
                Ok(self.insert(node, &Child::Item(item), matches!(op, Op::Prepend(_))))
            }
            (Op::Append(item) | Op::Prepend(item), Kind::Scalar) if null => {
                // `"key": null` is an empty list in YAML's reading too: make it a list.
                let list = Value::Array(vec![read_value(item, path)?]);
                let text = self.render(&list, n.depth, self.indent(n.start), false, node);
                Ok(Splice {
                    range: n.start..n.end,
                    text,
                })
            }
            (Op::Set(_), _) => Err(EditError::Shape {
                path: path.to_owned(),
                expected: "a scalar",
            }),
            _ => Err(EditError::Shape {
                path: path.to_owned(),
                expected: "a sequence",
            }),
        }
    }

    /// Adds `child` to the collection `node`, first or last, in the layout of its entries.
    fn insert(&self, node: usize, child: &Child, first: bool) -> Splice {
        let n = &self.nodes[node];
        let style = self.style(node);
        let nl = self.newline;
        let write = |indent: &str, one_line: bool| {
            let (key, value) = match child {
                Child::Item(value) => (String::new(), value),
                Child::Entry(key, value) => (format!("{}{}", quoted(key), style.colon), value),
            };
            let value = self.render_with(value, n.depth + 1, indent, one_line, node, &style);
            format!("{key}{value}")
        };
        let children = self.children(node);
        let Some(&model) = (if first {
            children.first()
        } else {
            children.last()
        }) else {
            // Empty: spread over lines where the file spreads such collections here, and the
            // collection holding this one is spread too.
            let inside = n.start + 1..n.end.saturating_sub(1).max(n.start + 1);
            let outer_spread = n.parent.is_none_or(|p| self.spread(p));
            let text = if outer_spread
                && (self.text[inside.clone()].contains('\n') || self.spread_at(node, n.depth))
            {
                let outer = self.indent(n.start);
                let inner = format!("{outer}{}", style.step);
                format!("{nl}{inner}{}{nl}{outer}", write(&inner, false))
            } else {
                format!("{pad}{}{pad}", write("", true), pad = style.pad)
            };
            return Splice {
                range: inside,
                text,
            };
        };
        if self.spread(node) && self.starts_line(model.0) {
            let indent = self.indent(model.0);
            let written = write(indent, false);
            if first {
                Splice {
                    range: model.0..model.0,
                    text: format!("{written},{nl}{indent}"),
                }
            } else {
                Splice {
                    range: model.1..model.1,
                    text: format!(",{nl}{indent}{written}"),
                }
            }
        } else {
            let written = write("", true);
            if first {
                Splice {
                    range: model.0..model.0,
                    text: format!("{written}{}", style.comma),
                }
            } else {
                Splice {
                    range: model.1..model.1,
                    text: format!("{}{written}", style.comma),
                }
            }
        }
    }

    /// `value` as JSON at `depth`, starting on a line indented by `indent`, in the style found
    /// near `anchor` (on one line when `one_line`).
    fn render(
        &self,
        value: &Value,
        depth: usize,
        indent: &str,
        one_line: bool,
        anchor: usize,
    ) -> String {
        let style = self.style(anchor);
        self.render_with(value, depth, indent, one_line, anchor, &style)
    }

    fn render_with(
        &self,
        value: &Value,
        depth: usize,
        indent: &str,
        one_line: bool,
        anchor: usize,
        style: &Style,
    ) -> String {
        let (open, close, entries): (&str, &str, Vec<(Option<&str>, &Value)>) = match value {
            Value::Scalar(text) => return text.clone(),
            Value::Array(items) => ("[", "]", items.iter().map(|v| (None, v)).collect()),
            Value::Object(entries) => (
                "{",
                "}",
                entries.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
            ),
        };
        if entries.is_empty() {
            return format!("{open}{close}");
        }
        let spread = !one_line && self.spread_at(anchor, depth);
        let inner = if spread {
            format!("{indent}{}", style.step)
        } else {
            String::new()
        };
        let written: Vec<String> = entries
            .iter()
            .map(|(key, v)| {
                let key = key.map_or_else(String::new, |k| format!("{}{}", quoted(k), style.colon));
                let v = self.render_with(v, depth + 1, &inner, !spread, anchor, style);
                format!("{key}{v}")
            })
            .collect();
        if spread {
            let nl = self.newline;
            let body = written.join(&format!(",{nl}{inner}"));
            format!("{open}{nl}{inner}{body}{nl}{indent}{close}")
        } else {
            let body = written.join(&style.comma);
            format!("{open}{pad}{body}{pad}{close}", pad = style.pad)
        }
    }
}

/// A string as JSON.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The value that `path` (keys only, after the missing key) ending in `op` adds: `[ITEM]`,
/// `{"input": {"rules": [ITEM]}}`, `true`.
fn new_value(path: &[Step], op: &Op, shown: &str) -> Result<Value, EditError> {
    let mut value = match op {
        Op::Set(text) => read_value(text, shown)?,
        Op::Append(item) | Op::Prepend(item) => Value::Array(vec![read_value(item, shown)?]),
    };
    for step in path.iter().rev() {
        let Step::Key(key) = step else {
            return Err(EditError::NoSuchItem {
                path: shown.to_owned(),
                name: step
                    .item()
                    .map_or_else(String::new, |(_, name)| name.to_owned()),
            });
        };
        value = Value::Object(vec![(key.clone(), value)]);
    }
    Ok(value)
}

/// An [`Op`]'s YAML text as the JSON value it means.
fn read_value(text: &str, path: &str) -> Result<Value, EditError> {
    let not_json = |why: String| EditError::NotJson {
        path: path.to_owned(),
        text: text.to_owned(),
        why,
    };
    let options = crate::format::yaml::parse_options(text.len());
    let tree =
        crate::format::yaml::read_tree(text, &options).map_err(|e| not_json(e.to_string()))?;
    from_tree(&tree.value).ok_or_else(|| not_json("a number JSON cannot hold".into()))
}

/// A YAML value as JSON; `None` for an infinite or NaN number.
fn from_tree(tree: &Tree) -> Option<Value> {
    Some(match tree {
        Tree::Seq(items) => Value::Array(
            items
                .iter()
                .map(|i| from_tree(&i.value))
                .collect::<Option<_>>()?,
        ),
        Tree::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Some((k.value.0.clone(), from_tree(&v.value)?)))
                .collect::<Option<_>>()?,
        ),
        scalar => {
            let mut out = String::new();
            scalar.write_json(&mut out)?;
            Value::Scalar(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Edit, EditError, Op, Step, apply};

    fn route(node: &str) -> Edit {
        Edit::node(
            node,
            &["routes"],
            Op::Append("{ to: default, via: 10.0.0.1 }".into()),
        )
    }

    fn rule(node: &str) -> Edit {
        Edit::node(
            node,
            &["firewall", "input", "rules"],
            Op::Prepend("{ proto: tcp, dport: 22, action: accept }".into()),
        )
    }

    fn forwarding(node: &str) -> Edit {
        Edit::node(node, &["forwarding"], Op::Set("true".into()))
    }

    /// The layout of `reachlab generate --format json`: the top-level lists spread, one entry a
    /// line, each entry compact.
    const GENERATED: &str = r#"{
  "segments": [
    {"name":"lan"}
  ],
  "nodes": [
    {"name":"a","interfaces":[{"name":"eth0","segment":"lan","addresses":["10.0.0.5/24"]}]},
    {"name":"r","forwarding":false,"interfaces":[],"firewall":{"input":{"policy":"drop","rules":[{"state":["established"],"action":"accept"}]}}}
  ]
}
"#;

    #[test]
    fn a_generated_file_gets_its_keys_and_items_on_the_entrys_line() {
        let out = apply(
            GENERATED,
            &[route("a"), rule("r"), forwarding("r"), forwarding("a")],
        )
        .expect("edit");
        let expected = GENERATED
            .replace(
                r#""addresses":["10.0.0.5/24"]}]}"#,
                r#""addresses":["10.0.0.5/24"]}],"routes":[{"to":"default","via":"10.0.0.1"}],"forwarding":true}"#,
            )
            .replace(
                r#""rules":[{"state""#,
                r#""rules":[{"proto":"tcp","dport":22,"action":"accept"},{"state""#,
            )
            .replace(r#""forwarding":false"#, r#""forwarding":true"#);
        assert_eq!(out, expected);
        // A missing key in an empty list's node, and a list created inside a new mapping.
        let out = apply(GENERATED, &[route("r"), rule("a")]).expect("edit");
        let expected = GENERATED
            .replace(
                r#""accept"}]}}}"#,
                r#""accept"}]}},"routes":[{"to":"default","via":"10.0.0.1"}]}"#,
            )
            .replace(
                r#""addresses":["10.0.0.5/24"]}]}"#,
                r#""addresses":["10.0.0.5/24"]}],"firewall":{"input":{"rules":[{"proto":"tcp","dport":22,"action":"accept"}]}}}"#,
            );
        assert_eq!(out, expected);
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
    }

    #[test]
    fn a_compact_file_on_one_line_stays_on_one_line_with_its_separators() {
        let compact = "{\"nodes\":[{\"name\":\"a\",\"interfaces\":[]},{\"name\":\"b\",\"routes\":[{\"to\":\"10.1.0.0/16\",\"via\":\"10.0.0.2\"}]}]}";
        let out = apply(compact, &[route("a"), route("b")]).expect("edit");
        assert_eq!(
            out,
            "{\"nodes\":[{\"name\":\"a\",\"interfaces\":[],\"routes\":[{\"to\":\"default\",\"via\":\"10.0.0.1\"}]},{\"name\":\"b\",\"routes\":[{\"to\":\"10.1.0.0/16\",\"via\":\"10.0.0.2\"},{\"to\":\"default\",\"via\":\"10.0.0.1\"}]}]}"
        );
        // Python's `json.dumps` separators: `, ` and `: `.
        let spaced = "{\"nodes\": [{\"name\": \"a\", \"interfaces\": []}]}\n";
        let out = apply(spaced, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "{\"nodes\": [{\"name\": \"a\", \"interfaces\": [], \"routes\": [{\"to\": \"default\", \"via\": \"10.0.0.1\"}]}]}\n"
        );
        // And inside an empty list of a file that pads its brackets.
        let padded = "{ \"nodes\": [ { \"name\": \"a\", \"routes\": [] } ] }";
        let out = apply(padded, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "{ \"nodes\": [ { \"name\": \"a\", \"routes\": [ { \"to\": \"default\", \"via\": \"10.0.0.1\" } ] } ] }"
        );
    }

    /// Pretty-printed as `jq .` or `json.dumps(indent=2)` write it: every list and mapping with
    /// entries spread, one entry a line.
    const PRETTY: &str = r#"{
  "nodes": [
    {
      "name": "a",
      "interfaces": [
        {
          "name": "eth0",
          "addresses": [
            "10.0.0.5/24"
          ]
        }
      ]
    },
    {
      "name": "r",
      "forwarding": false,
      "routes": [],
      "firewall": {
        "input": {
          "policy": "drop"
        }
      }
    }
  ]
}
"#;

    #[test]
    fn a_pretty_file_gets_new_entries_spread_at_its_indentation() {
        let out = apply(PRETTY, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            PRETTY.replace(
                "          ]\n        }\n      ]\n    },",
                "          ]\n        }\n      ],\n      \"routes\": [\n        {\n          \"to\": \"default\",\n          \"via\": \"10.0.0.1\"\n        }\n      ]\n    },"
            )
        );
        // An empty list of a pretty file is spread once it has an item.
        let out = apply(PRETTY, &[route("r")]).expect("edit");
        assert_eq!(
            out,
            PRETTY.replace(
                "      \"routes\": [],",
                "      \"routes\": [\n        {\n          \"to\": \"default\",\n          \"via\": \"10.0.0.1\"\n        }\n      ],"
            )
        );
        // A missing key of a nested mapping, then a scalar set in place.
        let out = apply(PRETTY, &[rule("r"), forwarding("r")]).expect("edit");
        assert_eq!(
            out,
            PRETTY
                .replace(
                    "          \"policy\": \"drop\"\n",
                    "          \"policy\": \"drop\",\n          \"rules\": [\n            {\n              \"proto\": \"tcp\",\n              \"dport\": 22,\n              \"action\": \"accept\"\n            }\n          ]\n"
                )
                .replace("\"forwarding\": false", "\"forwarding\": true")
        );
        // Keys created several levels deep, in a node without them.
        let out = apply(PRETTY, &[rule("a")]).expect("edit");
        assert_eq!(
            out,
            PRETTY.replace(
                "          ]\n        }\n      ]\n    },",
                "          ]\n        }\n      ],\n      \"firewall\": {\n        \"input\": {\n          \"rules\": [\n            {\n              \"proto\": \"tcp\",\n              \"dport\": 22,\n              \"action\": \"accept\"\n            }\n          ]\n        }\n      }\n    },"
            )
        );
    }

    #[test]
    fn a_rule_that_must_come_first_goes_before_the_first_on_a_line_of_its_own() {
        let text = "{\n    \"nodes\": [\n        {\n            \"name\": \"r\",\n            \"firewall\": {\n                \"input\": {\n                    \"rules\": [\n                        {\"state\": [\"established\"], \"action\": \"accept\"}\n                    ]\n                }\n            }\n        }\n    ]\n}\n";
        let out = apply(text, &[rule("r")]).expect("edit");
        // Four spaces a level; the items of `rules` on one line each, as the one already there.
        assert_eq!(
            out,
            text.replace(
                "                        {\"state\"",
                "                        {\"proto\": \"tcp\", \"dport\": 22, \"action\": \"accept\"},\n                        {\"state\""
            )
        );
    }

    #[test]
    fn crlf_and_tabs_are_kept() {
        let text = "{\r\n\t\"nodes\": [\r\n\t\t{\r\n\t\t\t\"name\": \"a\",\r\n\t\t\t\"interfaces\": []\r\n\t\t}\r\n\t]\r\n}\r\n";
        let out = apply(text, &[forwarding("a")]).expect("edit");
        assert_eq!(
            out,
            text.replace(
                "\"interfaces\": []\r\n",
                "\"interfaces\": [],\r\n\t\t\t\"forwarding\": true\r\n"
            )
        );
    }

    #[test]
    fn items_are_found_by_their_key_escapes_read() {
        let text = "{\"docker\": {\"engines\": [{\"host\": \"h\\u0031\", \"containers\": []}, {\"host\": \"h2\"}]}, \"nodes\": []}";
        let edit = |host: &str| Edit {
            path: vec![
                Step::Key("docker".into()),
                Step::Key("engines".into()),
                Step::Where {
                    key: "host".into(),
                    value: host.into(),
                },
                Step::Key("docker_user".into()),
            ],
            op: Op::Prepend("{ src: 10.0.0.9, proto: tcp, dport: 5432, action: accept }".into()),
        };
        let out = apply(text, &[edit("h1")]).expect("edit");
        assert_eq!(
            out,
            "{\"docker\": {\"engines\": [{\"host\": \"h\\u0031\", \"containers\": [], \"docker_user\": [{\"src\": \"10.0.0.9\", \"proto\": \"tcp\", \"dport\": 5432, \"action\": \"accept\"}]}, {\"host\": \"h2\"}]}, \"nodes\": []}"
        );
        assert_eq!(
            apply(text, &[edit("h3")]),
            Err(EditError::NoSuchItem {
                path: "docker.engines".into(),
                name: "h3".into()
            })
        );
        assert_eq!(
            apply(text, &[route("a")]),
            Err(EditError::NoSuchItem {
                path: "nodes".into(),
                name: "a".into()
            })
        );
    }

    #[test]
    fn text_is_written_as_json_strings_with_escapes() {
        let text = "{\"nodes\": [{\"name\": \"r\", \"listen\": []}]}";
        let edit = Edit::node(
            "r",
            &["listen"],
            Op::Append(r#"{ port: 22, ssh: "SSH-2.0-\"x\" \\ é", http: { body: "ok" } }"#.into()),
        );
        let out = apply(text, &[edit]).expect("edit");
        assert_eq!(
            out,
            r#"{"nodes": [{"name": "r", "listen": [{"port": 22, "ssh": "SSH-2.0-\"x\" \\ é", "http": {"body": "ok"}}]}]}"#
        );
        let value: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(
            value["nodes"][0]["listen"][0]["ssh"],
            serde_json::json!("SSH-2.0-\"x\" \\ é")
        );
    }

    #[test]
    fn null_is_an_empty_list_and_shapes_are_checked() {
        let text = "{\"nodes\": [{\"name\": \"a\", \"routes\": null, \"firewall\": {}, \"forwarding\": false}]}";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "{\"nodes\": [{\"name\": \"a\", \"routes\": [{\"to\": \"default\", \"via\": \"10.0.0.1\"}], \"firewall\": {}, \"forwarding\": false}]}"
        );
        // An empty mapping gets its first key.
        let out = apply(text, &[rule("a")]).expect("edit");
        assert!(
            out.contains("\"firewall\": {\"input\": {\"rules\": [{\"proto\": \"tcp\", \"dport\": 22, \"action\": \"accept\"}]}}"),
            "{out}"
        );
        let set = |keys: &[&str]| Edit::node("a", keys, Op::Set("true".into()));
        assert_eq!(
            apply(text, &[set(&["firewall"])]),
            Err(EditError::Shape {
                path: "nodes[name=a].firewall".into(),
                expected: "a scalar"
            })
        );
        assert_eq!(
            apply(
                text,
                &[Edit::node("a", &["forwarding"], Op::Append("x".into()))]
            ),
            Err(EditError::Shape {
                path: "nodes[name=a].forwarding".into(),
                expected: "a sequence"
            })
        );
        assert_eq!(
            apply(text, &[set(&["routes", "x"])]),
            Err(EditError::Shape {
                path: "nodes[name=a].routes".into(),
                expected: "a mapping"
            })
        );
    }

    #[test]
    fn text_that_is_not_json_is_left_to_the_yaml_editor() {
        // A YAML flow mapping over several lines (keys not quoted): not JSON, so not edited.
        let text = "{ nodes: [{ name: a,\n   interfaces: [] }] }\n";
        assert!(super::apply_one(text, &route("a")).is_none());
        assert!(super::apply_one("{\"nodes\": [],}", &route("a")).is_none());
        assert!(super::apply_one("nodes: []\n", &route("a")).is_none());
    }
}
