//! Loading: text → YAML tree → structural check → typed file → validated [`Network`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use super::diagnostic::{Code, Diagnostic, FileReport};
use super::file::TopologyFile;
use super::lower::lower;
use super::source::{Located, SourceFile, Span};
use super::structure::{Checker, Tree};
use crate::model::Network;

/// Files larger than this are refused before parsing (a topology is text written by people
/// or generated; 64 MiB holds several hundred thousand nodes).
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// A topology that loaded: the network and any warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub network: Network,
    /// The file and its warnings (no errors).
    pub report: FileReport,
}

/// Loads a topology from text; `name` is the file name shown in diagnostics.
pub fn load_str(name: &str, text: &str) -> Result<Loaded, Box<FileReport>> {
    load_source(SourceFile::new(name, text))
}

/// Reads and loads one file.
pub fn load_path(path: &Path) -> Result<Loaded, Box<FileReport>> {
    read_source(path).and_then(load_source)
}

/// Reads a file's text, refusing what is too large or not UTF-8 as [`load_path`] does.
fn read_source(path: &Path) -> Result<SourceFile, Box<FileReport>> {
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => {
            return Err(io_report(
                &name,
                format!(
                    "the file is {} bytes; the limit is {MAX_FILE_BYTES}",
                    meta.len()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(io_report(&name, format!("cannot read it: {e}"))),
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let source = SourceFile::new(name, text);
                let span = source.span_at(at, 1);
                Err(Box::new(FileReport {
                    diagnostics: vec![
                        Diagnostic::error(Code::YamlSyntax, span, "the file is not UTF-8 text")
                            .label("invalid byte")
                            .hint("save the file as UTF-8"),
                    ],
                    source,
                }))
            }
        },
        Err(e) => Err(io_report(&name, format!("cannot read it: {e}"))),
    }
}

fn io_report(name: &str, message: String) -> Box<FileReport> {
    Box::new(FileReport {
        source: SourceFile::new(name, ""),
        diagnostics: vec![
            Diagnostic::error(Code::Io, Span::default(), message)
                .hint("check the path, and that the file is a readable topology file"),
        ],
    })
}

/// Loads an already-read file.
pub fn load_source(source: SourceFile) -> Result<Loaded, Box<FileReport>> {
    load_expanded(source).map(|expanded| expanded.loaded)
}

/// A topology that loaded, with its file as the lowering saw it: platform sections expanded
/// into ordinary segments, nodes and rules (each keeping the position of the text it came
/// from). Tools that change a file and check it again (`reachlab fuzz`) change this copy and
/// [lower](Expanded::lower) it.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub loaded: Loaded,
    pub file: TopologyFile,
    /// The YAML as written, for positions the typed file does not keep.
    tree: Located<Tree>,
}

impl Expanded {
    /// Validates and lowers a changed copy of [`Expanded::file`] (platform sections are not
    /// expanded again); the errors when it does not validate.
    pub fn lower(&self, file: &TopologyFile) -> Result<Network, Vec<Diagnostic>> {
        let source = &self.loaded.report.source;
        let (network, diagnostics) = lower(file, source.name(), &stem_of(source.name()));
        let errors: Vec<Diagnostic> = diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if errors.is_empty() {
            Ok(network)
        } else {
            Err(errors)
        }
    }

    /// Where the value of `key` of the node called `node` is written, when the node is one of
    /// the file's own `nodes:` (not made by a platform section) and has the key.
    pub fn node_key_span(&self, node: &str, key: &str) -> Option<Span> {
        let Tree::Map(top) = &self.tree.value else {
            return None;
        };
        let (_, nodes) = top.iter().find(|(k, _)| k.value.0 == "nodes")?;
        let Tree::Seq(nodes) = &nodes.value else {
            return None;
        };
        nodes.iter().find_map(|item| {
            let Tree::Map(entries) = &item.value else {
                return None;
            };
            let named = entries
                .iter()
                .any(|(k, v)| k.value.0 == "name" && v.value == Tree::Str(node.to_owned()));
            if !named {
                return None;
            }
            entries
                .iter()
                .find(|(k, _)| k.value.0 == key)
                .map(|(_, v)| v.span)
        })
    }
}

/// The file name without its directory and extension, the default topology name.
fn stem_of(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Reads and loads one file, keeping its expanded form (see [`Expanded`]).
pub fn load_path_expanded(path: &Path) -> Result<Expanded, Box<FileReport>> {
    read_source(path).and_then(load_expanded)
}

/// Loads an already-read file, keeping its expanded form (see [`Expanded`]).
pub fn load_expanded(source: SourceFile) -> Result<Expanded, Box<FileReport>> {
    let fail = |source: SourceFile, diagnostics: Vec<Diagnostic>| {
        let mut report = FileReport {
            source,
            diagnostics,
        };
        report.sort();
        Err(Box::new(report))
    };
    if source.text().len() > MAX_FILE_BYTES {
        let d = Diagnostic::error(
            Code::Io,
            Span::default(),
            format!(
                "the text is {} bytes; the limit is {MAX_FILE_BYTES}",
                source.text().len()
            ),
        );
        return fail(source, vec![d]);
    }
    if source.text().trim().is_empty()
        || source
            .text()
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        let d = Diagnostic::error(
            Code::MissingKey,
            Span::default(),
            "the file holds no topology",
        )
        .hint("a topology has at least `nodes:`; see docs/topology-format.md");
        return fail(source, vec![d]);
    }
    let options = parse_options(source.text().len());
    let tree: Located<Tree> =
        match serde_saphyr::from_str_with_options(source.text(), options.clone()) {
            Ok(tree) => tree,
            Err(e) => {
                let d = from_saphyr_error(&source, &e, Code::YamlSyntax);
                return fail(source, vec![d]);
            }
        };
    if !matches!(tree.value, Tree::Map(_)) {
        let d = Diagnostic::error(
            Code::WrongType,
            tree.span,
            "a topology file must be a map of keys",
        )
        .label("not a map")
        .hint("start with `segments:` and `nodes:` at the beginning of a line");
        return fail(source, vec![d]);
    }
    let mut checker = Checker::new(schema_value());
    checker.check_document(&tree);
    let mut diagnostics = checker.diagnostics;
    let mut file: TopologyFile = match serde_saphyr::from_str_with_options(source.text(), options) {
        Ok(file) => file,
        Err(e) => {
            if diagnostics.is_empty() {
                diagnostics.push(from_saphyr_error(&source, &e, Code::WrongType));
            }
            return fail(source, diagnostics);
        }
    };
    let stem = stem_of(source.name());
    let base = Path::new(source.name()).parent().unwrap_or(Path::new("."));
    let mut semantic = crate::platform::expand(&mut file, base);
    let (network, lowered) = lower(&file, source.name(), &stem);
    semantic.extend(lowered);
    // The structural pass and lowering may both see a bad value (an MTU out of range, say):
    // report each place and kind of problem once.
    for d in semantic {
        if !diagnostics
            .iter()
            .any(|seen| seen.span == d.span && seen.code == d.code)
        {
            diagnostics.push(d);
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return fail(source, diagnostics);
    }
    let mut report = FileReport {
        source,
        diagnostics,
    };
    report.sort();
    Ok(Expanded {
        loaded: Loaded { network, report },
        file,
        tree,
    })
}

/// Parser limits that grow with the text: a large generated topology is fine, while alias
/// bombs and absurd nesting stay refused (serde-saphyr's alias and depth limits are kept).
fn parse_options(text_len: usize) -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    // Every YAML node or event takes at least one byte of text unless aliases repeat it.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = text_len.max(budget.max_events);
    budget.max_nodes = text_len.max(budget.max_nodes);
    options.budget = Some(budget);
    options.emit_comments = false;
    options.with_snippet = false;
    options
}

/// The schema, generated once.
pub(crate) fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA
        .get_or_init(|| serde_json::to_value(super::schema::schema()).unwrap_or(Value::Bool(true)))
}

fn from_saphyr_error(source: &SourceFile, error: &serde_saphyr::Error, code: Code) -> Diagnostic {
    let plain = error.without_snippet().to_string();
    let message = strip_position_prefix(&plain);
    let span = error
        .location()
        .map(|loc| {
            let span = Span::from_saphyr(&loc);
            if span.len == 0 && span.line > 0 {
                // Recompute the byte offset from line and column for errors that carry only those.
                let line_start: usize = source
                    .text()
                    .split_inclusive('\n')
                    .take(span.line as usize - 1)
                    .map(str::len)
                    .sum();
                let col = source
                    .line_text(span.line)
                    .char_indices()
                    .nth(span.column as usize - 1)
                    .map_or(0, |(i, _)| i);
                source.span_at(line_start + col, 1)
            } else {
                span
            }
        })
        .unwrap_or_default();
    let hint = if message.contains("budget breached") {
        "the file nests or repeats more than reachlab reads (deep nesting or many aliases); flatten it"
    } else if message.contains("tab") {
        "YAML indents with spaces only; replace the tabs"
    } else if message.contains("duplicate mapping key") {
        "a key may appear once per map; merge the two entries"
    } else if code == Code::YamlSyntax {
        "check the indentation and the brackets and quotes around this place"
    } else {
        "see docs/topology-format.md for the shape of each section"
    };
    Diagnostic::error(
        code,
        span,
        message
            .trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable")
            .to_owned(),
    )
    .label("here")
    .hint(hint)
}

/// `error: line 3 column 9: unknown variant` → `unknown variant`.
fn strip_position_prefix(text: &str) -> &str {
    let text = text.lines().next().unwrap_or(text);
    let text = text.strip_prefix("error: ").unwrap_or(text);
    if text.starts_with("line ")
        && let Some(i) = text.find(": ")
    {
        return &text[i + 2..];
    }
    text
}

/// A Kubernetes manifest (top-level `apiVersion:` and `kind:`), which a topology refers to
/// from its `kubernetes:` section and which is not a topology itself.
fn is_kubernetes_manifest(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|l| l.starts_with("apiVersion:"))
            && text.lines().any(|l| l.starts_with("kind:"))
    })
}

/// Expands files and directories (recursively, `*.yaml` and `*.yml`, sorted, skipping
/// Kubernetes manifests) into file paths. A file named explicitly is always taken.
pub fn collect_topology_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !is_kubernetes_manifest(&path)
        {
            out.push(path);
        }
    }
    Ok(())
}
