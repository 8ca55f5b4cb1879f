//! The invariant layer's reports as `reachlab check` and `reachlab fuzz` print them: a violated
//! invariant with its explained flows, a check that broke, the failure cases that break
//! something, and the mutations of a fuzz run.

use std::fmt::Write as _;

use super::Palette;
use crate::invariants::failures::{FailureReport, elements};
use crate::invariants::fuzz::{Effect, FuzzReport, MutantResult};
use crate::invariants::{InvariantResult, Status, Subject};
use crate::model::{Invariant, Network, Span};

/// The block `reachlab check` prints under a violated invariant: each explained flow with its
/// `why` lines and where in the file they point.
pub fn violation_text(
    net: &Network,
    invariant: &Invariant,
    result: &InvariantResult,
    palette: Palette,
) -> String {
    let (error, accent, dim) = (palette.error(), palette.accent(), palette.dim());
    let mut out = format!(
        "\n{error}✗{error:#} invariant {invariant} ({}): violated by {} of {} flow{}\n",
        invariant.origin,
        result.violated,
        result.flows,
        if result.flows == 1 { "" } else { "s" }
    );
    if let Some(note) = &invariant.note {
        let _ = writeln!(out, "  {dim}note: {}{dim:#}", note.trim());
    }
    for v in &result.violations {
        let _ = writeln!(out, "  {}: {}", v.flow.describe(net), v.outcome);
        for line in &v.why.lines {
            let _ = writeln!(out, "    {line}");
        }
        if let Some(origin) = &v.why.origin {
            let _ = writeln!(out, "    {accent}-->{accent:#} {origin}");
        }
    }
    let more = result.violated.saturating_sub(result.violations.len());
    if more > 0 {
        let _ = writeln!(out, "  … and {more} more");
    }
    out
}

/// The text of a [`Status`] that broke: what, where, the flow, and the first `why_lines` lines
/// of why.
pub fn status_text(s: &Status, palette: Palette, indent: &str, why_lines: usize) -> String {
    let (error, accent) = (palette.error(), palette.accent());
    let what = match s.subject {
        Subject::Invariant => "invariant",
        Subject::Expectation => "expect",
    };
    let mut out = format!(
        "{indent}{error}✗{error:#} {what} {} ({})",
        s.label, s.origin
    );
    if let Some(flow) = &s.flow {
        let _ = write!(out, ": {flow}");
    }
    out.push('\n');
    if let Some(why) = &s.why {
        for line in why.lines.iter().take(why_lines) {
            let _ = writeln!(out, "{indent}    {line}");
        }
        if let Some(origin) = &why.origin {
            let _ = writeln!(out, "{indent}    {accent}-->{accent:#} {origin}");
        }
    }
    out
}

/// The report as text: each case that breaks something, with what and why; the cases that
/// break nothing on one line; the counts.
pub fn failures_text(report: &FailureReport, net: &Network, palette: Palette) -> String {
    let (bold, error, ok) = (palette.bold(), palette.error(), palette.ok());
    let mut out = format!(
        "\n{bold}failures, {} at a time{bold:#}: {} case{} over {} segments and nodes, {} checks each\n",
        report.k,
        report.results.len(),
        if report.results.len() == 1 { "" } else { "s" },
        elements(net).len(),
        report.baseline.len(),
    );
    for r in &report.results {
        if r.broken.is_empty() {
            continue;
        }
        let origins: Vec<String> = r
            .failure
            .0
            .iter()
            .map(|e| e.origin(net).to_string())
            .collect();
        let _ = writeln!(
            out,
            "{error}✗{error:#} {} ({}) breaks {}:",
            r.failure.describe(net),
            origins.join(", "),
            r.broken.len()
        );
        for s in &r.broken {
            out.push_str(&status_text(s, palette, "    ", 1));
        }
    }
    let fine: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.broken.is_empty())
        .map(|r| r.failure.describe(net))
        .collect();
    if !fine.is_empty() {
        let _ = writeln!(out, "{ok}✓{ok:#} nothing breaks with: {}", fine.join(", "));
    }
    let breaking = report
        .results
        .iter()
        .filter(|r| !r.broken.is_empty())
        .count();
    let _ = writeln!(
        out,
        "{} case{}: {breaking} break something, {} break nothing",
        report.results.len(),
        if report.results.len() == 1 { "" } else { "s" },
        report.results.len() - breaking
    );
    out
}

/// The report as text: each mutation that breaks something with what it breaks, the
/// mutated line, and why; then the ones that break nothing; then the counts.
pub fn fuzz_text(report: &FuzzReport, palette: Palette) -> String {
    let (bold, error, dim, warning) = (
        palette.bold(),
        palette.error(),
        palette.dim(),
        palette.warning(),
    );
    let invariants = report
        .baseline
        .iter()
        .filter(|s| s.subject == Subject::Invariant)
        .count();
    let expectations = report.baseline.len() - invariants;
    let mut out = format!(
        "fuzz {}: {} of {} mutations, each checked against {invariants} invariant{} and {expectations} expectation{}\n",
        report.source.name(),
        report.results.len(),
        report.available,
        plural(invariants),
        plural(expectations),
    );
    let failing: Vec<&Status> = report.baseline.iter().filter(|s| !s.holds).collect();
    if !failing.is_empty() {
        let _ = writeln!(
            out,
            "{warning}note{warning:#}: {} check{} already fail{} on the file as written and cannot break:",
            failing.len(),
            plural(failing.len()),
            if failing.len() == 1 { "s" } else { "" }
        );
        for s in failing {
            out.push_str(&status_text(s, palette, "  ", 0));
        }
    }
    let line = |span: Span| {
        format!(
            "{dim}{:>5} |{dim:#} {}\n",
            span.line,
            report.source.line_text(span.line)
        )
    };
    for r in &report.results {
        let span = r.mutant.span;
        match &r.effect {
            Effect::Breaks(broke) => {
                let _ = writeln!(
                    out,
                    "\n{bold}{}{bold:#}  {} {error}breaks {}{error:#}",
                    report.at(span),
                    r.mutant.description,
                    broke.len()
                );
                out.push_str(&line(span));
                for s in broke {
                    out.push_str(&status_text(s, palette, "  ", 1));
                }
            }
            Effect::Invalid(d) => {
                let _ = writeln!(
                    out,
                    "\n{bold}{}{bold:#}  {} {warning}makes the file invalid{warning:#}",
                    report.at(span),
                    r.mutant.description
                );
                out.push_str(&line(span));
                let at = d.span.map_or_else(String::new, |s| format!(" at {s}"));
                let _ = writeln!(out, "  error[{}]{at}: {}", d.code, d.message);
            }
            Effect::Nothing => {}
        }
    }
    let nothing: Vec<&MutantResult> = report
        .results
        .iter()
        .filter(|r| r.effect == Effect::Nothing)
        .collect();
    if !nothing.is_empty() {
        let _ = writeln!(
            out,
            "\nbreaks nothing (no invariant or expectation depends on these):"
        );
        for r in nothing {
            let _ = writeln!(
                out,
                "  {}  {}",
                report.at(r.mutant.span),
                r.mutant.description
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} mutation{}: {} break something, {} break nothing, {} make the file invalid",
        report.results.len(),
        plural(report.results.len()),
        report.count(|e| matches!(e, Effect::Breaks(_))),
        report.count(|e| *e == Effect::Nothing),
        report.count(|e| matches!(e, Effect::Invalid(_))),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
