//! `reachlab check`: every expectation and invariant of the files, with failures.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use reachlab::invariants::{FailuresRecord, InvariantRecord};
use reachlab::model::Origin;
use reachlab::render::{Palette, console_width};
use reachlab::run as probe_run;
use reachlab::sim::SimConfig;
use reachlab::topology;

use super::args::{Cli, Format};
use super::common::{
    EXIT_FAILED, EXIT_INVALID, EXIT_OK, json_io_error, palette_mark, print_report, usage_error,
};

pub(crate) fn check(
    paths: &[PathBuf],
    failure_k: Option<usize>,
    cli: &Cli,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let files = match topology::collect_topology_files(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => return usage_error("no *.yaml or *.yml files given", None),
        Err(e) => return usage_error(&format!("cannot list the files: {e}"), None),
    };
    let config = SimConfig {
        seed: cli.seed,
        ..SimConfig::default()
    };
    let (mut invalid, mut failed, mut total) = (0usize, 0usize, 0usize);
    let mut file_records = Vec::new();
    let mut expectations = Vec::new();
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut failures = String::new();
    let mut invariants = reachlab::invariants::CheckReport::default();
    for path in &files {
        let net = match topology::load_path(path) {
            Ok(loaded) => loaded.network,
            Err(report) => {
                invalid += 1;
                if cli.format == Format::Text {
                    print_report(&report, out, palette)?;
                } else {
                    let diagnostics = serde_json::to_value(report.json_records())
                        .map_err(std::io::Error::other)?;
                    file_records.push(FileRecord {
                        file: path.display().to_string(),
                        valid: false,
                        diagnostics: Some(diagnostics),
                    });
                }
                continue;
            }
        };
        file_records.push(FileRecord {
            file: path.display().to_string(),
            valid: true,
            diagnostics: None,
        });
        for row in probe_run::check(&net, &config) {
            total += 1;
            if !row.ok {
                failed += 1;
                failures.push_str(&format!(
                    "\n{} {} ({}): expected {}, predicted {}{}\n",
                    palette_mark(palette, false),
                    row.probe,
                    row.origin,
                    row.expected,
                    row.predicted,
                    if row.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", row.detail)
                    }
                ));
                failures.push_str(&row.result.text(palette));
            }
            expectations.push(ExpectationRecord {
                file: path.display().to_string(),
                probe: row.probe.clone(),
                expected: row.expected.name(),
                predicted: row.predicted.name(),
                detail: row.detail.clone(),
                ok: row.ok,
                origin: row.origin.clone(),
            });
            rows.push([
                path.display().to_string(),
                row.probe,
                row.expected.to_string(),
                row.predicted.to_string(),
                row.detail,
                palette_mark(palette, row.ok),
            ]);
        }
        let file = path.display().to_string();
        invariants.invariants(&net, &file, &config, palette);
        if let Some(k) = failure_k.filter(|&k| k > 0)
            && let Err(e) = invariants.failures(&net, &file, k, &config, palette)
        {
            return usage_error(
                &e.to_string(),
                Some("ask for fewer at a time: --failures 1"),
            );
        }
    }
    match cli.format {
        Format::Json => {
            let summary = Summary {
                files: files.len(),
                invalid_files: invalid,
                expectations: total,
                expectations_failed: failed,
                invariants: invariants.invariants,
                invariants_violated: invariants.violated,
                failure_cases: invariants.cases,
                failure_cases_breaking: invariants.breaking_cases,
                ok: invalid == 0 && failed == 0 && !invariants.failed(),
            };
            let document = CheckJson {
                files: file_records,
                expectations,
                invariants: &invariants.invariant_records,
                failures: &invariants.failure_records,
                summary,
            };
            serde_json::to_writer_pretty(&mut *out, &document).map_err(json_io_error)?;
            writeln!(out)?;
        }
        _ => {
            let header =
                ["file", "probe", "expected", "predicted", "detail", "ok"].map(String::from);
            let widths: Vec<usize> = (0..6)
                .map(|c| {
                    std::iter::once(&header)
                        .chain(&rows)
                        .map(|r| console_width(&r[c]))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - console_width(cell))))
                    .collect();
                writeln!(out, "{}", cells.join("  ").trim_end())?;
            }
            out.write_all(failures.as_bytes())?;
            out.write_all(invariants.text().as_bytes())?;
            writeln!(
                out,
                "\n{} expectations in {} file{}: {} as expected, {failed} not{}",
                total,
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                total - failed,
                if invalid > 0 {
                    format!(", {invalid} invalid files")
                } else {
                    String::new()
                }
            )?;
            out.write_all(invariants.summary().as_bytes())?;
        }
    }
    Ok(if invalid > 0 {
        EXIT_INVALID
    } else if failed > 0 || invariants.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// `check --format json`: one document (README, "check --format json").
#[derive(Serialize)]
struct CheckJson<'a> {
    files: Vec<FileRecord>,
    expectations: Vec<ExpectationRecord>,
    invariants: &'a [InvariantRecord],
    failures: &'a [FailuresRecord],
    summary: Summary,
}

/// A file given to `check`, and its diagnostics when it is invalid.
#[derive(Serialize)]
struct FileRecord {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<serde_json::Value>,
}

/// One `expect:` entry and what the simulation predicts for it.
#[derive(Serialize)]
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
