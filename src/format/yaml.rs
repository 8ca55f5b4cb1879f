//! Reading YAML (and JSON, its subset) with serde-saphyr the same way everywhere: the parser's
//! limits, and its errors as diagnostics placed in the file read (topologies, Compose files,
//! `ip -j` output).

use super::{Code, Diagnostic, SourceFile, Span};

/// Parser limits that grow with the text: a large generated topology is fine, while alias
/// bombs and absurd nesting stay refused (serde-saphyr's alias and depth limits are kept).
pub(crate) fn parse_options(text_len: usize) -> serde_saphyr::Options {
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

/// A topology's YAML as written, with every position: the common file read straight from the
/// parser's events ([`super::fast_tree`]), the rest by serde-saphyr, which also words every
/// syntax error.
pub(crate) fn read_tree(
    text: &str,
    options: &serde_saphyr::Options,
) -> Result<super::Located<super::tree::Tree>, serde_saphyr::Error> {
    let fast = options
        .budget
        .as_ref()
        .and_then(|budget| super::fast_tree::read_tree(text, budget));
    fast.map_or_else(
        || serde_saphyr::from_str_with_options(text, options.clone()),
        Ok,
    )
}

/// Where a parser error is in `source` (a one-character span where serde-saphyr gives only a
/// line and column).
pub(crate) fn error_span(source: &SourceFile, error: &serde_saphyr::Error) -> Span {
    error
        .location()
        .map(|loc| {
            let span = Span::from_saphyr(&loc);
            if span.len == 0 && span.line > 0 {
                // Recompute the byte offset from line and column for errors that carry only those.
                let line_start = source.line_start(span.line);
                let col = source
                    .line_text(span.line)
                    .char_indices()
                    .nth((span.column as usize).saturating_sub(1))
                    .map_or(0, |(i, _)| i);
                source.span_at(line_start + col, 1)
            } else {
                span
            }
        })
        .unwrap_or_default()
}

/// A parser error's message without its position (`error: line 3 column 9: unknown variant`
/// → `unknown variant`).
pub(crate) fn error_message(error: &serde_saphyr::Error) -> String {
    strip_position_prefix(&error.without_snippet().to_string()).to_owned()
}

/// A parser error as a diagnostic of a topology (or a file read as one), with a hint for the
/// usual causes.
pub(crate) fn from_saphyr_error(
    source: &SourceFile,
    error: &serde_saphyr::Error,
    code: Code,
) -> Diagnostic {
    let message = error_message(error);
    let message = message.as_str();
    let span = error_span(source, error);
    if message.contains("multiple YAML documents") {
        return Diagnostic::error(
            code,
            span,
            "the file holds more than one YAML document (a `---` line starts another)",
        )
        .label("a second document starts here")
        .hint("a topology is one document: remove the `---` line, or split the file in two");
    }
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
