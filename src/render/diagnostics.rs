//! Diagnostics as text, in the style of rustc: the message, `--> file:line:column`, the line
//! with the offending text underlined, and the hint.

use std::fmt::Write as _;

use super::Palette;
use crate::topology::{Diagnostic, FileReport, Severity};

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
    let source = &report.source;
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
    let line = source.line_text(span.line);
    let _ = writeln!(out, "{accent}{line_no} |{accent:#} {line}");
    let width = underline_width(source.snippet(span), line, span.column);
    let _ = writeln!(
        out,
        "{pad} {accent}|{accent:#} {}{style}{}{}{style:#}",
        " ".repeat(span.column.saturating_sub(1) as usize),
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
