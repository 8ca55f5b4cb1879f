//! Edits to a topology file's text that keep everything else byte for byte: add an item to a
//! list (`routes:`, `listen:`, a chain's `rules:`), or set a scalar key (`forwarding: true`),
//! under a path such as `nodes[name=r1].firewall.input.rules`. Verified fixes are printed as
//! such edits, so that the patch a user pastes is exactly what was checked.
//!
//! The editor reads the YAML the way people write topology files: block mappings and
//! sequences by indentation, and flow collections (`{ … }`, `[ … ]`) that open and close on one
//! line. A missing key is created where its parent mapping ends (in the parent's own style); a
//! missing list item (`nodes[name=x]` that the file does not have, a node a platform section
//! made) is an error, as is a flow collection of a YAML file spread over several lines.
//!
//! A JSON file (JSON is YAML; `reachlab generate --format json` writes one) gets the same
//! edits through the `json` module (`edit/json.rs`): the document is read as JSON with the
//! place of every value, whatever its layout (compact on one line, one entry a line, or
//! pretty-printed with any indentation), and what is added is written as JSON (quoted keys and
//! text, `true`/`false`, numbers) in the layout of its neighbours, so that its fixes get
//! patches as a YAML file's do. A file that starts with `{` but is not JSON (a YAML flow
//! mapping) is edited as YAML.
//!
//! What a fix does when its edit cannot be written (`crate::fix::attach_patches`): a missing
//! item ([`EditError::NoSuchItem`]) means the file cannot say the change at all (the element
//! comes from a platform section), and the fix is not offered; any other error is a layout this
//! editor does not rewrite, and the fix is offered without a patch, saying why.

use std::fmt;

mod json;

/// One step of a path into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The value of a mapping key.
    Key(String),
    /// The item of a sequence whose `name:` is this.
    Named(String),
    /// The item of a sequence whose `key:` is `value` (a Docker engine by its `host:`).
    Where { key: String, value: String },
}

impl Step {
    /// For a step into a sequence: the key that names the item, and its value.
    fn item(&self) -> Option<(&str, &str)> {
        match self {
            Step::Key(_) => None,
            Step::Named(name) => Some(("name", name)),
            Step::Where { key, value } => Some((key, value)),
        }
    }
}

/// What to do at the end of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add a flow item (`{ to: default, via: 10.0.0.1 }`) at the end of the sequence.
    Append(String),
    /// Add a flow item at the start of the sequence (a filter rule that must come first).
    Prepend(String),
    /// Set the scalar to this text.
    Set(String),
}

/// One edit: a path from the document's top mapping, and what to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: Vec<Step>,
    pub op: Op,
}

impl Edit {
    /// An edit of the node called `node` (under `nodes:`), at `keys` below it.
    pub fn node(node: &str, keys: &[&str], op: Op) -> Self {
        let mut path = vec![Step::Key("nodes".into()), Step::Named(node.into())];
        path.extend(keys.iter().map(|k| Step::Key((*k).into())));
        Edit { path, op }
    }
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.path.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Named(n) => write!(f, "[name={n}]")?,
                Step::Where { key, value } => write!(f, "[{key}={value}]")?,
            }
        }
        Ok(())
    }
}

/// Why an edit cannot be made in this file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{path}`: the file has no item named `{name}` there")]
    NoSuchItem { path: String, name: String },
    #[error("`{path}`: a flow collection spread over several lines is not edited")]
    MultiLineFlow { path: String },
    #[error("`{path}`: expected {expected} there")]
    Shape {
        path: String,
        expected: &'static str,
    },
    #[error("`{path}`: `{text}` cannot be written as JSON: {why}")]
    NotJson {
        path: String,
        text: String,
        why: String,
    },
}

impl EditError {
    /// Whether the file has no place for the change at all (the item the path names is not in
    /// the file: a node a platform section made), rather than a layout this editor does not
    /// rewrite.
    pub fn file_cannot_hold(&self) -> bool {
        matches!(self, EditError::NoSuchItem { .. })
    }
}

/// `text` with every edit applied, in order.
pub fn apply(text: &str, edits: &[Edit]) -> Result<String, EditError> {
    let mut text = text.to_owned();
    for edit in edits {
        text = apply_one(&text, edit)?;
    }
    Ok(text)
}

/// The unified diff from `old` to `new`, naming the file `name` on both sides.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// A file as lines (without their breaks), and the break it uses.
struct Doc {
    lines: Vec<String>,
    newline: &'static str,
    /// Whether the text ended with a line break.
    final_newline: bool,
}

impl Doc {
    fn parse(text: &str) -> Self {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let final_newline = text.ends_with('\n');
        let lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect::<Vec<_>>();
        let mut lines = lines;
        if final_newline {
            lines.pop();
        }
        Doc {
            lines,
            newline,
            final_newline,
        }
    }

    fn text(&self) -> String {
        let mut out = self.lines.join(self.newline);
        if self.final_newline {
            out.push_str(self.newline);
        }
        out
    }
}

/// A part of the document a path step looks into.
#[derive(Debug, Clone, Copy)]
enum Region {
    /// A block mapping whose keys start at column `indent`, on lines `start..end`. When
    /// `dash` is set, the first line is a sequence item (`- key: …`): its key follows the dash.
    BlockMap {
        start: usize,
        end: usize,
        indent: usize,
    },
    /// A block sequence: items `- …` at column `indent` on lines `start..end`.
    BlockSeq {
        start: usize,
        end: usize,
        indent: usize,
    },
    /// A flow collection on one line: `open` is the column of `{` or `[`, `close` of its match.
    FlowMap {
        line: usize,
        open: usize,
        close: usize,
    },
    FlowSeq {
        line: usize,
        open: usize,
        close: usize,
    },
    /// A plain scalar (possibly empty) at `line`, columns `from..to`.
    Scalar { line: usize, from: usize, to: usize },
}

/// The column of a line's first character that is not a space; `None` for blank and
/// comment-only lines.
fn content_col(line: &str) -> Option<usize> {
    let col = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[col..];
    (!rest.is_empty() && !rest.starts_with('#')).then_some(col)
}

/// Where a block item's own content starts: after `- ` at `col` (and any further spaces).
fn after_dash(line: &str, col: usize) -> Option<usize> {
    let rest = line.get(col..)?;
    let rest = rest.strip_prefix('-')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    Some(col + 1 + spaces)
}

/// The end (exclusive) of the text of a plain value or a key line: before a ` #` comment that
/// is outside quotes, and before trailing spaces.
fn value_end(line: &str, from: usize) -> usize {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'#' && (i == from || bytes[i - 1] == b' ') => break,
            None => {}
        }
        i += 1;
    }
    line[..i].trim_end_matches(' ').len().max(from)
}

/// The column of the bracket closing the one at `open`, on the same line.
fn matching(line: &str, open: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// The top-level entries of the flow collection `line[open..=close]`, as column ranges.
fn flow_entries(line: &str, open: usize, close: usize) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut start = open + 1;
    for (i, &b) in bytes.iter().enumerate().take(close).skip(open + 1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => {
                    out.push((start, i));
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    out.push((start, close));
    out.into_iter()
        .map(|(a, b)| {
            let text = &line[a..b];
            let lead = text.len() - text.trim_start().len();
            (a + lead, a + text.trim_end().len())
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// A scalar's text without quotes.
fn unquote(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| t.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(t)
}

/// The region of a value that starts at column `from` of `line` (after `key:` or `- `), or, when
/// nothing follows there, the block below it (lines after `line` indented deeper than `parent`,
/// or a sequence at `parent` itself).
fn value_region(doc: &Doc, line: usize, from: usize, parent: usize, end: usize) -> Region {
    let text = &doc.lines[line];
    let stop = value_end(text, from);
    if from < stop {
        let first = text.as_bytes()[from];
        if (first == b'{' || first == b'[')
            && let Some(close) = matching(text, from)
        {
            return if first == b'{' {
                Region::FlowMap {
                    line,
                    open: from,
                    close,
                }
            } else {
                Region::FlowSeq {
                    line,
                    open: from,
                    close,
                }
            };
        }
        if first == b'{' || first == b'[' {
            // Opened here, closed on a later line.
            return Region::Scalar {
                line,
                from,
                to: usize::MAX,
            };
        }
        return Region::Scalar {
            line,
            from,
            to: stop,
        };
    }
    // A block value: the lines below, until one at `parent` or left of it (a sequence may sit
    // at `parent` itself: `key:\n- item`).
    let mut child_end = line + 1;
    let mut first: Option<usize> = None;
    for (i, l) in doc.lines.iter().enumerate().take(end).skip(line + 1) {
        let Some(col) = content_col(l) else {
            continue;
        };
        let seq_at_parent = col == parent && after_dash(l, col).is_some();
        if col < parent || (col == parent && !seq_at_parent) {
            break;
        }
        first.get_or_insert(col);
        child_end = i + 1;
    }
    match first {
        None => Region::Scalar {
            line,
            from,
            to: from,
        },
        Some(col) => {
            let start = line + 1;
            let at = doc.lines[start..child_end]
                .iter()
                .find_map(|l| content_col(l).map(|c| (c, l)));
            match at {
                Some((c, l)) if after_dash(l, c).is_some() => Region::BlockSeq {
                    start,
                    end: child_end,
                    indent: col,
                },
                _ => Region::BlockMap {
                    start,
                    end: child_end,
                    indent: col,
                },
            }
        }
    }
}

/// The key `key` of a block mapping: its line and the column where its value starts.
fn block_key(
    doc: &Doc,
    start: usize,
    end: usize,
    indent: usize,
    key: &str,
) -> Option<(usize, usize)> {
    for (i, line) in doc.lines.iter().enumerate().take(end).skip(start) {
        // The first line of a sequence item holds its first key after the dash.
        let col = if i == start {
            match content_col(line) {
                Some(c) if c == indent => c,
                Some(c) => match after_dash(line, c) {
                    Some(k) if k == indent => k,
                    _ => continue,
                },
                None => continue,
            }
        } else if content_col(line) == Some(indent) {
            indent
        } else {
            continue;
        };
        let rest = &line[col..];
        // A compact sequence item at the keys' column (`key:\n- item`) is no key.
        if after_dash(line, col).is_some() && i != start {
            continue;
        }
        let Some(name_end) = rest.find(':') else {
            continue;
        };
        if unquote(&rest[..name_end]) == key
            && rest[name_end + 1..].is_empty() | rest[name_end + 1..].starts_with(' ')
        {
            let after = col + name_end + 1;
            let spaces = line[after..].len() - line[after..].trim_start_matches(' ').len();
            return Some((i, after + spaces));
        }
    }
    None
}

/// The last line of a block region that has content (where new keys or items go after).
fn last_content(doc: &Doc, start: usize, end: usize) -> usize {
    (start..end)
        .rev()
        .find(|&i| content_col(&doc.lines[i]).is_some())
        .unwrap_or(start)
}

fn path_text(path: &[Step]) -> String {
    Edit {
        path: path.to_vec(),
        op: Op::Set(String::new()),
    }
    .to_string()
}

fn apply_one(text: &str, edit: &Edit) -> Result<String, EditError> {
    if let Some(edited) = json::apply_one(text, edit) {
        return edited;
    }
    let mut doc = Doc::parse(text);
    let end = doc.lines.len();
    let root = Region::BlockMap {
        start: 0,
        end,
        indent: doc.lines.iter().find_map(|l| content_col(l)).unwrap_or(0),
    };
    descend(&mut doc, root, &edit.path, 0, &edit.op)?;
    Ok(doc.text())
}

/// Follows `path[at..]` from `region` and performs `op` there, creating missing keys.
fn descend(
    doc: &mut Doc,
    region: Region,
    path: &[Step],
    at: usize,
    op: &Op,
) -> Result<(), EditError> {
    let shown = || path_text(&path[..at.min(path.len())]);
    let Some(step) = path.get(at) else {
        return act(doc, region, op, &shown());
    };
    match (step, region) {
        (Step::Key(key), Region::BlockMap { start, end, indent }) => {
            match block_key(doc, start, end, indent, key) {
                Some((line, from)) => {
                    let child = value_region(doc, line, from, indent, end);
                    descend(doc, child, path, at + 1, op)
                }
                None => {
                    let after = last_content(doc, start, end);
                    let mut lines = block_text(&path[at..], op, indent, &shown())?;
                    let at_line = after + 1;
                    for (k, l) in lines.drain(..).enumerate() {
                        doc.lines.insert(at_line + k, l);
                    }
                    Ok(())
                }
            }
        }
        (Step::Key(key), Region::FlowMap { line, open, close }) => {
            let text = doc.lines[line].clone();
            for (a, b) in flow_entries(&text, open, close) {
                let entry = &text[a..b];
                if let Some(colon) = entry.find(':')
                    && unquote(&entry[..colon]) == key
                {
                    let rest = &entry[colon + 1..];
                    let from = a + colon + 1 + (rest.len() - rest.trim_start().len());
                    let child = flow_value(&text, line, from, b, &shown())?;
                    return descend(doc, child, path, at + 1, op);
                }
            }
            let value = flow_text(&path[at + 1..], op, &shown())?;
            insert_flow_item(doc, line, open, close, &format!("{key}: {value}"), false);
            Ok(())
        }
        (Step::Named(_) | Step::Where { .. }, Region::BlockSeq { start, end, indent }) => {
            let (key, name) = path[at].item().unwrap_or_default();
            let items: Vec<usize> = (start..end)
                .filter(|&i| {
                    content_col(&doc.lines[i]) == Some(indent)
                        && after_dash(&doc.lines[i], indent).is_some()
                })
                .collect();
            for (k, &item) in items.iter().enumerate() {
                let item_end = items.get(k + 1).copied().unwrap_or(end);
                let Some(content) = after_dash(&doc.lines[item], indent) else {
                    continue;
                };
                let child = if doc.lines[item].as_bytes().get(content) == Some(&b'{') {
                    value_region(doc, item, content, indent, item_end)
                } else {
                    Region::BlockMap {
                        start: item,
                        end: item_end,
                        indent: content,
                    }
                };
                if named(doc, child, key, name) {
                    return descend(doc, child, path, at + 1, op);
                }
            }
            Err(EditError::NoSuchItem {
                path: shown(),
                name: name.to_owned(),
            })
        }
        (Step::Named(_) | Step::Where { .. }, Region::FlowSeq { line, open, close }) => {
            let (key, name) = path[at].item().unwrap_or_default();
            let text = doc.lines[line].clone();
            for (a, _) in flow_entries(&text, open, close) {
                if text.as_bytes()[a] == b'{'
                    && let Some(c) = matching(&text, a)
                {
                    let child = Region::FlowMap {
                        line,
                        open: a,
                        close: c,
                    };
                    if named(doc, child, key, name) {
                        return descend(doc, child, path, at + 1, op);
                    }
                }
            }
            Err(EditError::NoSuchItem {
                path: shown(),
                name: name.to_owned(),
            })
        }
        (_, Region::Scalar { to: usize::MAX, .. }) => {
            Err(EditError::MultiLineFlow { path: shown() })
        }
        (Step::Key(_), _) => Err(EditError::Shape {
            path: shown(),
            expected: "a mapping",
        }),
        (Step::Named(_) | Step::Where { .. }, _) => Err(EditError::Shape {
            path: shown(),
            expected: "a sequence",
        }),
    }
}

/// Whether the mapping `region` has `name: NAME`.
fn named(doc: &Doc, region: Region, key: &str, name: &str) -> bool {
    match region {
        Region::BlockMap { start, end, indent } => block_key(doc, start, end, indent, key)
            .is_some_and(|(line, from)| {
                let l = &doc.lines[line];
                unquote(&l[from..value_end(l, from)]) == name
            }),
        Region::FlowMap { line, open, close } => {
            let text = &doc.lines[line];
            flow_entries(text, open, close).into_iter().any(|(a, b)| {
                let entry = &text[a..b];
                entry
                    .split_once(':')
                    .is_some_and(|(k, v)| unquote(k) == key && unquote(v) == name)
            })
        }
        _ => false,
    }
}

/// The region of a flow value at `line[from..to]`.
fn flow_value(
    text: &str,
    line: usize,
    from: usize,
    to: usize,
    path: &str,
) -> Result<Region, EditError> {
    match text.as_bytes().get(from) {
        Some(b'{') | Some(b'[') => {
            let close = matching(text, from).ok_or_else(|| EditError::MultiLineFlow {
                path: path.to_owned(),
            })?;
            Ok(if text.as_bytes()[from] == b'{' {
                Region::FlowMap {
                    line,
                    open: from,
                    close,
                }
            } else {
                Region::FlowSeq {
                    line,
                    open: from,
                    close,
                }
            })
        }
        _ => Ok(Region::Scalar { line, from, to }),
    }
}

/// Performs `op` on the value `region`.
fn act(doc: &mut Doc, region: Region, op: &Op, path: &str) -> Result<(), EditError> {
    match (op, region) {
        (Op::Set(value), Region::Scalar { line, from, to }) if to != usize::MAX => {
            let l = &mut doc.lines[line];
            if from == to && !l[..from].ends_with(' ') {
                l.replace_range(from..to, &format!(" {value}"));
            } else {
                l.replace_range(from..to, value);
            }
            Ok(())
        }
        (Op::Append(item) | Op::Prepend(item), Region::FlowSeq { line, open, close }) => {
            insert_flow_item(doc, line, open, close, item, matches!(op, Op::Prepend(_)));
            Ok(())
        }
        (Op::Append(item) | Op::Prepend(item), Region::BlockSeq { start, end, indent }) => {
            let row = format!("{}- {item}", " ".repeat(indent));
            if matches!(op, Op::Prepend(_)) {
                let first = (start..end)
                    .find(|&i| content_col(&doc.lines[i]) == Some(indent))
                    .unwrap_or(start);
                doc.lines.insert(first, row);
            } else {
                let last = last_content(doc, start, end);
                doc.lines.insert(last + 1, row);
            }
            Ok(())
        }
        (Op::Append(item) | Op::Prepend(item), Region::Scalar { line, from, to }) if from == to => {
            // `key:` with nothing under it yet (an empty value): make it a flow list.
            doc.lines[line].replace_range(from..to, &format!(" [{item}]"));
            Ok(())
        }
        (_, Region::Scalar { to: usize::MAX, .. }) => Err(EditError::MultiLineFlow {
            path: path.to_owned(),
        }),
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

/// Inserts `item` into the flow collection `line[open..=close]`, first or last.
fn insert_flow_item(
    doc: &mut Doc,
    line: usize,
    open: usize,
    close: usize,
    item: &str,
    first: bool,
) {
    let l = &mut doc.lines[line];
    let empty = l[open + 1..close].trim().is_empty();
    if empty {
        l.replace_range(open + 1..close, &format!(" {item} "));
    } else if first {
        let inner = &l[open + 1..close];
        let lead = inner.len() - inner.trim_start().len();
        l.insert_str(open + 1 + lead, &format!("{item}, "));
    } else {
        let inner = &l[open + 1..close];
        let at = open + 1 + inner.trim_end().len();
        l.insert_str(at, &format!(", {item}"));
    }
}

/// The block lines that create `path` (keys only) at column `indent`, ending in `op`.
fn block_text(
    path: &[Step],
    op: &Op,
    indent: usize,
    shown: &str,
) -> Result<Vec<String>, EditError> {
    let mut lines = Vec::new();
    let mut col = indent;
    for (i, step) in path.iter().enumerate() {
        let Step::Key(key) = step else {
            return Err(EditError::NoSuchItem {
                path: shown.to_owned(),
                name: match step {
                    Step::Named(n) => n.clone(),
                    Step::Where { value, .. } => value.clone(),
                    Step::Key(k) => k.clone(),
                },
            });
        };
        let pad = " ".repeat(col);
        if i + 1 == path.len() {
            match op {
                Op::Set(value) => lines.push(format!("{pad}{key}: {value}")),
                Op::Append(item) | Op::Prepend(item) => {
                    lines.push(format!("{pad}{key}:"));
                    lines.push(format!("{pad}  - {item}"));
                }
            }
        } else {
            lines.push(format!("{pad}{key}:"));
        }
        col += 2;
    }
    Ok(lines)
}

/// The flow text of `path` (keys only) ending in `op`: `{ rules: [ITEM] }`, `[ITEM]`, `true`.
fn flow_text(path: &[Step], op: &Op, shown: &str) -> Result<String, EditError> {
    let mut text = match op {
        Op::Set(value) => value.clone(),
        Op::Append(item) | Op::Prepend(item) => format!("[{item}]"),
    };
    for step in path.iter().rev() {
        let Step::Key(key) = step else {
            return Err(EditError::NoSuchItem {
                path: shown.to_owned(),
                name: match step {
                    Step::Named(n) => n.clone(),
                    Step::Where { value, .. } => value.clone(),
                    Step::Key(k) => k.clone(),
                },
            });
        };
        text = format!("{{ {key}: {text} }}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(node: &str) -> Edit {
        Edit::node(
            node,
            &["routes"],
            Op::Append("{ to: default, via: 10.0.0.1 }".into()),
        )
    }

    #[test]
    fn a_missing_key_is_added_at_the_end_of_a_block_node() {
        let text = "nodes:\n  - name: a\n    interfaces: []\n  - name: b\n    forwarding: false\n";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: a\n    interfaces: []\n    routes:\n      - { to: default, via: 10.0.0.1 }\n  - name: b\n    forwarding: false\n"
        );
    }

    #[test]
    fn an_item_is_appended_to_a_block_sequence() {
        let text = "nodes:\n  - name: a\n    routes:\n      - { to: 10.1.0.0/16, via: 10.0.0.2 } # lab\n\n    listen: []\n";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: a\n    routes:\n      - { to: 10.1.0.0/16, via: 10.0.0.2 } # lab\n      - { to: default, via: 10.0.0.1 }\n\n    listen: []\n"
        );
    }

    #[test]
    fn an_item_is_appended_to_a_flow_sequence_before_its_comment() {
        let text = "nodes:\n  - name: a\n    routes: [{ to: 10.1.0.0/16, via: 10.0.0.2 }]  # one\n";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: a\n    routes: [{ to: 10.1.0.0/16, via: 10.0.0.2 }, { to: default, via: 10.0.0.1 }]  # one\n"
        );
    }

    #[test]
    fn a_flow_node_gets_the_key_inside_its_braces() {
        let text = "nodes:\n  - { name: a, interfaces: [] }\n  - { name: 'b', routes: [] }\n";
        let out = apply(text, &[route("a"), route("b")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - { name: a, interfaces: [], routes: [{ to: default, via: 10.0.0.1 }] }\n  - { name: 'b', routes: [ { to: default, via: 10.0.0.1 } ] }\n"
        );
    }

    #[test]
    fn a_rule_that_must_come_first_is_prepended_through_nested_keys() {
        let rule = || Op::Prepend("{ proto: tcp, dport: 22, action: accept }".into());
        let block = "nodes:\n  - name: r\n    firewall:\n      input:\n        policy: drop\n        rules:\n          - { state: [established], action: accept }\n";
        let out = apply(
            block,
            &[Edit::node("r", &["firewall", "input", "rules"], rule())],
        )
        .expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: r\n    firewall:\n      input:\n        policy: drop\n        rules:\n          - { proto: tcp, dport: 22, action: accept }\n          - { state: [established], action: accept }\n"
        );
        let flow = "nodes:\n  - name: r\n    firewall: { input: { policy: drop } }\n";
        let out = apply(
            flow,
            &[Edit::node("r", &["firewall", "input", "rules"], rule())],
        )
        .expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: r\n    firewall: { input: { policy: drop, rules: [{ proto: tcp, dport: 22, action: accept }] } }\n"
        );
        let none = "nodes:\n  - name: r\n    interfaces: []\n";
        let out = apply(
            none,
            &[Edit::node("r", &["firewall", "forward", "rules"], rule())],
        )
        .expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: r\n    interfaces: []\n    firewall:\n      forward:\n        rules:\n          - { proto: tcp, dport: 22, action: accept }\n"
        );
    }

    #[test]
    fn a_scalar_is_set_in_place_or_added() {
        let text = "nodes:\n  - name: r\n    forwarding: false # off\n  - name: s\n";
        let set = |n: &str| Edit::node(n, &["forwarding"], Op::Set("true".into()));
        let out = apply(text, &[set("r"), set("s")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n  - name: r\n    forwarding: true # off\n  - name: s\n    forwarding: true\n"
        );
    }

    #[test]
    fn a_sequence_at_its_keys_indentation_is_read_as_the_keys_value() {
        let text =
            "nodes:\n- name: a\n  routes:\n  - { to: 10.1.0.0/16, via: 10.0.0.2 }\n- name: b\n";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n- name: a\n  routes:\n  - { to: 10.1.0.0/16, via: 10.0.0.2 }\n  - { to: default, via: 10.0.0.1 }\n- name: b\n"
        );
    }

    #[test]
    fn compact_sequences_at_column_zero_hold_their_items_keys() {
        // The layout `reachlab`'s own writer (serde-saphyr) produces.
        let text = "nodes:\n- name: a\n  interfaces:\n  - name: eth0\n  routes:\n  - to: 10.1.0.0/16\n    via: 10.0.0.2\n- name: b\n  interfaces: []\nexpect: []\n";
        let out = apply(text, &[route("a"), route("b")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\n- name: a\n  interfaces:\n  - name: eth0\n  routes:\n  - to: 10.1.0.0/16\n    via: 10.0.0.2\n  - { to: default, via: 10.0.0.1 }\n- name: b\n  interfaces: []\n  routes:\n    - { to: default, via: 10.0.0.1 }\nexpect: []\n"
        );
    }

    #[test]
    fn a_line_without_a_colon_does_not_end_the_search_for_a_key() {
        let text = "nodes:\n- name: a\n  dns:\n  - 192.0.2.53\n  listen:\n  - port: 22\n";
        let edit = Edit::node("a", &["listen"], Op::Append("{ port: 80 }".into()));
        assert_eq!(
            apply(text, &[edit]).expect("edit"),
            "nodes:\n- name: a\n  dns:\n  - 192.0.2.53\n  listen:\n  - port: 22\n  - { port: 80 }\n"
        );
    }

    #[test]
    fn a_node_the_file_does_not_list_is_an_error() {
        let text = "nodes:\n  - name: a\n";
        assert_eq!(
            apply(text, &[route("dockerhost")]),
            Err(EditError::NoSuchItem {
                path: "nodes".into(),
                name: "dockerhost".into()
            })
        );
    }

    #[test]
    fn a_flow_collection_over_several_lines_is_not_edited() {
        let text = "nodes:\n  - name: a\n    routes: [{ to: 10.1.0.0/16,\n               via: 10.0.0.2 }]\n";
        assert!(matches!(
            apply(text, &[route("a")]),
            Err(EditError::MultiLineFlow { .. })
        ));
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = "nodes:\r\n  - name: a\r\n    interfaces: []\r\n";
        let out = apply(text, &[route("a")]).expect("edit");
        assert_eq!(
            out,
            "nodes:\r\n  - name: a\r\n    interfaces: []\r\n    routes:\r\n      - { to: default, via: 10.0.0.1 }\r\n"
        );
    }

    #[test]
    fn a_named_item_of_another_section_is_found() {
        let text = "openstack:\n  security_groups:\n    - name: web\n      rules:\n        - { direction: ingress, protocol: tcp, port_range: \"80\" }\n    - { name: ssh, rules: [] }\n";
        let edit = |g: &str| Edit {
            path: vec![
                Step::Key("openstack".into()),
                Step::Key("security_groups".into()),
                Step::Named(g.into()),
                Step::Key("rules".into()),
            ],
            op: Op::Append("{ direction: ingress, protocol: icmp }".into()),
        };
        let out = apply(text, &[edit("web"), edit("ssh")]).expect("edit");
        assert_eq!(
            out,
            "openstack:\n  security_groups:\n    - name: web\n      rules:\n        - { direction: ingress, protocol: tcp, port_range: \"80\" }\n        - { direction: ingress, protocol: icmp }\n    - { name: ssh, rules: [ { direction: ingress, protocol: icmp } ] }\n"
        );
    }
}
