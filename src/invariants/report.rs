//! What `reachlab check` prints about invariants and failures, accumulated over the files it
//! checks: a table (file, invariant, flows, ok), the explanation of each violated invariant, the
//! failure cases that break something, the JSON records, and the counts for the exit status.

use std::fmt::Write as _;

use super::failures::{FailuresError, FailuresRecord, failures};
use super::{InvariantRecord, check, result_json, violation_text};
use crate::model::Network;
use crate::render::{Palette, console_width};
use crate::sim::SimConfig;

/// The invariant and failure part of a `check` run.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// file, invariant, flows, ok mark.
    rows: Vec<[String; 4]>,
    details: String,
    /// One JSON record per invariant.
    pub invariant_records: Vec<InvariantRecord>,
    /// One JSON record per file checked for failures.
    pub failure_records: Vec<FailuresRecord>,
    pub invariants: usize,
    pub violated: usize,
    /// Failure cases (over all files) that break a check, and cases run.
    pub breaking_cases: usize,
    pub cases: usize,
}

impl CheckReport {
    /// Checks the invariants of one file.
    pub fn invariants(&mut self, net: &Network, file: &str, config: &SimConfig, palette: Palette) {
        for (invariant, result) in net.invariants.iter().zip(check(net, config)) {
            self.invariants += 1;
            let (style, mark) = if result.holds() {
                (palette.ok(), "✓")
            } else {
                self.violated += 1;
                self.details
                    .push_str(&violation_text(net, invariant, &result, palette));
                (palette.error(), "✗")
            };
            self.invariant_records
                .push(result_json(net, file, invariant, &result));
            self.rows.push([
                file.to_owned(),
                invariant.to_string(),
                result.flows.to_string(),
                format!("{style}{mark}{style:#}"),
            ]);
        }
    }

    /// Checks the invariants and expectations of one file with every `k` elements down.
    pub fn failures(
        &mut self,
        net: &Network,
        file: &str,
        k: usize,
        config: &SimConfig,
        palette: Palette,
    ) -> Result<(), FailuresError> {
        let report = failures(net, k, config)?;
        self.cases += report.results.len();
        self.breaking_cases += report
            .results
            .iter()
            .filter(|r| !r.broken.is_empty())
            .count();
        let _ = write!(self.details, "\n== {file}");
        self.details.push_str(&report.text(net, palette));
        self.failure_records.push(report.json(net, file));
        Ok(())
    }

    /// Whether an invariant is violated or a failure case breaks something.
    pub fn failed(&self) -> bool {
        self.violated > 0 || self.breaking_cases > 0
    }

    /// The table of invariants (when there are any), each violation explained, and the failure
    /// reports.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if !self.rows.is_empty() {
            let header = ["file", "invariant", "flows", "ok"].map(String::from);
            let rows: Vec<&[String; 4]> = std::iter::once(&header).chain(&self.rows).collect();
            let widths: Vec<usize> = (0..4)
                .map(|c| rows.iter().map(|r| console_width(&r[c])).max().unwrap_or(0))
                .collect();
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - console_width(cell))))
                    .collect();
                let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            }
        }
        out.push_str(&self.details);
        out
    }

    /// The count lines, printed after the expectations' (nothing without invariants or cases).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if self.invariants > 0 {
            let _ = writeln!(
                out,
                "{} invariant{}: {} hold, {} violated",
                self.invariants,
                if self.invariants == 1 { "" } else { "s" },
                self.invariants - self.violated,
                self.violated
            );
        }
        if self.cases > 0 {
            let _ = writeln!(
                out,
                "{} failure case{}: {} break something",
                self.cases,
                if self.cases == 1 { "" } else { "s" },
                self.breaking_cases
            );
        }
        out
    }
}
