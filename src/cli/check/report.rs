//! What `reachlab check` prints, accumulated over the files it checks: the table of
//! expectations (file, probe, expected, predicted, detail, ok) and each unmet one explained;
//! the table of invariants and each violation explained; the failure cases that break
//! something; the JSON document (README, "check --format json"); and the exit status.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use reachlab::fix;
use reachlab::invariants::failures::{FailuresError, FailuresRecord, failures};
use reachlab::invariants::{InvariantRecord, check, result_json};
use reachlab::model::{Network, Origin};
use reachlab::render::{Palette, console_width, failures_text, probe_text, violation_text};
use reachlab::sim::SimConfig;
use reachlab::topology::FileReport;

use super::super::common::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, json_io_error, palette_mark};

/// A `check` run over its files.
#[derive(Debug, Clone)]
pub(super) struct CheckReport {
    palette: Palette,
    files: Vec<FileRecord>,
    invalid: usize,
    /// file, probe, expected, predicted, detail, ok mark.
    expectation_rows: Vec<[String; 6]>,
    /// Each unmet expectation, explained.
    unmet: String,
    expectation_records: Vec<ExpectationRecord>,
    expectations_failed: usize,
    /// file, invariant, flows, ok mark.
    invariant_rows: Vec<[String; 4]>,
    /// Each violated invariant and each failure report, explained.
    details: String,
    invariant_records: Vec<InvariantRecord>,
    failure_records: Vec<FailuresRecord>,
    invariants: usize,
    violated: usize,
    /// Failure cases (over all files) that break a check, and cases run.
    breaking_cases: usize,
    cases: usize,
}

impl CheckReport {
    pub(super) fn new(palette: Palette) -> Self {
        CheckReport {
            palette,
            files: Vec::new(),
            invalid: 0,
            expectation_rows: Vec::new(),
            unmet: String::new(),
            expectation_records: Vec::new(),
            expectations_failed: 0,
            invariant_rows: Vec::new(),
            details: String::new(),
            invariant_records: Vec::new(),
            failure_records: Vec::new(),
            invariants: 0,
            violated: 0,
            breaking_cases: 0,
            cases: 0,
        }
    }

    /// A file that does not load: its diagnostics go into the JSON document (the text output
    /// printed them already).
    pub(super) fn invalid(&mut self, file: &str, report: &FileReport) -> std::io::Result<()> {
        self.invalid += 1;
        let diagnostics =
            serde_json::to_value(report.json_records()).map_err(std::io::Error::other)?;
        self.files.push(FileRecord {
            file: file.to_owned(),
            valid: false,
            diagnostics: Some(diagnostics),
        });
        Ok(())
    }

    /// Runs the `expect:` entries of one file; an unmet one is explained, with verified fixes.
    pub(super) fn expectations(&mut self, net: &Network, file: &str, config: &SimConfig) {
        let palette = self.palette;
        self.files.push(FileRecord {
            file: file.to_owned(),
            valid: true,
            diagnostics: None,
        });
        for row in fix::check(net, config) {
            if !row.ok {
                self.expectations_failed += 1;
                let detail = if row.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", row.detail)
                };
                let _ = writeln!(
                    self.unmet,
                    "\n{} {} ({}): expected {}, predicted {}{detail}",
                    palette_mark(palette, false),
                    row.probe,
                    row.origin,
                    row.expected,
                    row.predicted,
                );
                self.unmet.push_str(&probe_text(net, &row.result, palette));
            }
            self.expectation_records.push(ExpectationRecord {
                file: file.to_owned(),
                probe: row.probe.clone(),
                expected: row.expected.name(),
                predicted: row.predicted.name(),
                detail: row.detail.clone(),
                ok: row.ok,
                origin: row.origin.clone(),
            });
            self.expectation_rows.push([
                file.to_owned(),
                row.probe,
                row.expected.to_string(),
                row.predicted.to_string(),
                row.detail,
                palette_mark(palette, row.ok),
            ]);
        }
    }

    /// Checks the invariants of one file.
    pub(super) fn invariants(&mut self, net: &Network, file: &str, config: &SimConfig) {
        let palette = self.palette;
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
            self.invariant_rows.push([
                file.to_owned(),
                invariant.to_string(),
                result.flows.to_string(),
                format!("{style}{mark}{style:#}"),
            ]);
        }
    }

    /// Checks the invariants and expectations of one file with every `k` elements down.
    pub(super) fn failures(
        &mut self,
        net: &Network,
        file: &str,
        k: usize,
        config: &SimConfig,
    ) -> Result<(), FailuresError> {
        let report = failures(net, k, config)?;
        self.cases += report.results.len();
        self.breaking_cases += report
            .results
            .iter()
            .filter(|r| !r.broken.is_empty())
            .count();
        let _ = write!(self.details, "\n== {file}");
        self.details
            .push_str(&failures_text(&report, net, self.palette));
        self.failure_records.push(report.json(net, file));
        Ok(())
    }

    /// Whether an expectation is unmet, an invariant violated or a failure case breaks
    /// something.
    fn failed(&self) -> bool {
        self.expectations_failed > 0 || self.violated > 0 || self.breaking_cases > 0
    }

    /// 2 when a file is invalid, 1 when a check failed, 0 when all is well.
    pub(super) fn exit_code(&self) -> u8 {
        if self.invalid > 0 {
            EXIT_INVALID
        } else if self.failed() {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// The text output: the expectations' table and the unmet ones explained, the invariants'
    /// table and the violations explained, the failure reports, then the counts.
    pub(super) fn write_text(&self, out: &mut impl Write, files: usize) -> std::io::Result<()> {
        let header = ["file", "probe", "expected", "predicted", "detail", "ok"];
        out.write_all(table(&header, &self.expectation_rows).as_bytes())?;
        out.write_all(self.unmet.as_bytes())?;
        if !self.invariant_rows.is_empty() {
            let header = ["file", "invariant", "flows", "ok"];
            writeln!(out)?;
            out.write_all(table(&header, &self.invariant_rows).as_bytes())?;
        }
        out.write_all(self.details.as_bytes())?;
        let total = self.expectation_records.len();
        let (failed, invalid) = (self.expectations_failed, self.invalid);
        writeln!(
            out,
            "\n{total} expectations in {files} file{}: {} as expected, {failed} not{}",
            if files == 1 { "" } else { "s" },
            total - failed,
            if invalid > 0 {
                format!(", {invalid} invalid files")
            } else {
                String::new()
            }
        )?;
        if self.invariants > 0 {
            writeln!(
                out,
                "{} invariant{}: {} hold, {} violated",
                self.invariants,
                if self.invariants == 1 { "" } else { "s" },
                self.invariants - self.violated,
                self.violated
            )?;
        }
        if self.cases > 0 {
            writeln!(
                out,
                "{} failure case{}: {} break something",
                self.cases,
                if self.cases == 1 { "" } else { "s" },
                self.breaking_cases
            )?;
        }
        Ok(())
    }

    /// The JSON document.
    pub(super) fn write_json(&self, out: &mut impl Write, files: usize) -> std::io::Result<()> {
        let summary = Summary {
            files,
            invalid_files: self.invalid,
            expectations: self.expectation_records.len(),
            expectations_failed: self.expectations_failed,
            invariants: self.invariants,
            invariants_violated: self.violated,
            failure_cases: self.cases,
            failure_cases_breaking: self.breaking_cases,
            ok: self.invalid == 0 && !self.failed(),
        };
        let document = CheckJson {
            files: &self.files,
            expectations: &self.expectation_records,
            invariants: &self.invariant_records,
            failures: &self.failure_records,
            summary,
        };
        serde_json::to_writer_pretty(&mut *out, &document).map_err(json_io_error)?;
        writeln!(out)
    }
}

/// Columns padded to their widest cell (colour codes take no width), two spaces apart.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(String::from);
    let all: Vec<&[String; N]> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..N)
        .map(|c| all.iter().map(|r| console_width(&r[c])).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in all {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - console_width(cell))))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// `check --format json`: one document (README, "check --format json").
#[derive(Serialize)]
struct CheckJson<'a> {
    files: &'a [FileRecord],
    expectations: &'a [ExpectationRecord],
    invariants: &'a [InvariantRecord],
    failures: &'a [FailuresRecord],
    summary: Summary,
}

/// A file given to `check`, and its diagnostics when it is invalid.
#[derive(Debug, Clone, Serialize)]
struct FileRecord {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<serde_json::Value>,
}

/// One `expect:` entry and what the simulation predicts for it.
#[derive(Debug, Clone, Serialize)]
struct ExpectationRecord {
    file: String,
    /// The probe as written (`pc ping 10.0.0.1`).
    probe: String,
    expected: &'static str,
    predicted: &'static str,
    /// What the prediction rests on, when it says more than the outcome.
    detail: String,
    ok: bool,
    origin: Origin,
}

/// The counts `check` ends its text output with, and whether all is well (exit status 0).
#[derive(Serialize)]
struct Summary {
    files: usize,
    invalid_files: usize,
    expectations: usize,
    expectations_failed: usize,
    invariants: usize,
    invariants_violated: usize,
    failure_cases: usize,
    failure_cases_breaking: usize,
    ok: bool,
}
