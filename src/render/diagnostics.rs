//! Diagnostics as text, in the style of rustc: the message, `--> file:line:column`, the line
//! with the offending text underlined, and the hint. A long line is cut around the column
//! (at most [`MAX_SNIPPET_CHARS`] characters, `…` where text was left out).

use std::fmt::Write as _;

use super::Palette;
use crate::topology::{Diagnostic, FileReport, Severity};

/// The most characters of a source line shown under a diagnostic.
pub const MAX_SNIPPET_CHARS: usize = 120;

/// Characters shown before the column when a long line is cut.
const CONTEXT_BEFORE: usize = 40;

/// Every diagnostic of a report, followed by nothing else (see [`render_summary`]).
pub fn render_report(report: &FileReport, palette: Palette) -> String {
    let mut out = String::new();
    for diagnostic in &report.diagnostics {
        render_one(&mut out, report, diagnostic, palette);
    }
    out
}

/// `FILE: N errors, M warnings` (the last line for an invalid file).
pub fn render_summary(report: &FileReport, palette: Palette) -> String {
    let errors = report.error_count();
    let warnings = report.diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let style = if errors > 0 {
        palette.error()
    } else {
        palette.warning()
    };
    format!(
        "{style}{}{style:#}: {}, {}\n",
        report.source.name(),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn render_one(out: &mut String, report: &FileReport, d: &Diagnostic, p: Palette) {
    let (word, style) = match d.severity {
        Severity::Error => ("error", p.error()),
        Severity::Warning => ("warning", p.warning()),
    };
    let bold = p.bold();
    let accent = p.accent();
    let _ = writeln!(
        out,
        "{style}{word}[{}]{style:#}{bold}: {}{bold:#}",
        d.code, d.message
    );
    let source = d.file.as_deref().unwrap_or(&report.source);
    let Some(span) = d.span else {
        let _ = writeln!(out, "  {accent}-->{accent:#} {}", source.name());
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "   {accent}={accent:#} {bold}hint{bold:#}: {hint}");
        }
        out.push('\n');
        return;
    };
    let line_no = span.line.to_string();
    let pad = " ".repeat(line_no.len());
    let _ = writeln!(
        out,
        "{pad}{accent}-->{accent:#} {}:{}:{}",
        source.name(),
        span.line,
        span.column
    );
    let _ = writeln!(out, "{pad} {accent}|{accent:#}");
    let full = source.line_text(span.line);
    let (line, column) = excerpt(full, span.column);
    let _ = writeln!(out, "{accent}{line_no} |{accent:#} {line}");
    let width = underline_width(source.snippet(span), &line, column);
    let _ = writeln!(
        out,
        "{pad} {accent}|{accent:#} {}{style}{}{}{style:#}",
        " ".repeat(column.saturating_sub(1) as usize),
        "^".repeat(width),
        d.label
            .as_deref()
            .map(|l| format!(" {l}"))
            .unwrap_or_default()
    );
    if let Some((related, note)) = &d.related {
        let _ = writeln!(
            out,
            "{pad} {accent}= note{accent:#}: {note} at {}:{}:{}",
            source.name(),
            related.line,
            related.column
        );
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{pad} {accent}={accent:#} {bold}hint{bold:#}: {hint}");
    }
    out.push('\n');
}

/// How many carets: the characters of the offending text on its first line, at least one.
fn underline_width(snippet: &str, line: &str, column: u32) -> usize {
    let rest = line
        .chars()
        .count()
        .saturating_sub(column.saturating_sub(1) as usize);
    let first_line = snippet.lines().next().unwrap_or("");
    first_line.trim_end().chars().count().clamp(1, rest.max(1))
}

/// The part of `line` shown, and the 1-based column within it: the whole line when it is
/// short, else [`MAX_SNIPPET_CHARS`] characters around `column`, with `…` for the rest.
fn excerpt(line: &str, column: u32) -> (String, u32) {
    let count = line.chars().count();
    if count <= MAX_SNIPPET_CHARS {
        return (line.to_owned(), column);
    }
    let at = (column.saturating_sub(1) as usize).min(count);
    let start = at.saturating_sub(CONTEXT_BEFORE);
    let end = (start + MAX_SNIPPET_CHARS).min(count);
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(line.chars().skip(start).take(end - start));
    if end < count {
        shown.push('…');
    }
    let column = at - start + usize::from(start > 0) + 1;
    (shown, u32::try_from(column).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_line_is_shown_whole() {
        assert_eq!(excerpt("a: 1", 4), ("a: 1".to_owned(), 4));
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(50_000), "b".repeat(50_000));
        let (shown, column) = excerpt(&line, 50_001);
        assert!(
            shown.chars().count() <= MAX_SNIPPET_CHARS + 2,
            "{}",
            shown.len()
        );
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(shown.chars().nth(column as usize - 1), Some('X'));
    }

    #[test]
    fn a_long_line_is_cut_at_its_start_without_a_leading_ellipsis() {
        let line = format!("X{}", "b".repeat(500));
        let (shown, column) = excerpt(&line, 1);
        assert_eq!(column, 1);
        assert!(shown.starts_with('X') && shown.ends_with('…'));
    }
}
