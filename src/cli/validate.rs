//! `reachlab validate`: load files and report their diagnostics.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use reachlab::render::{self, Palette};
use reachlab::topology;

use super::args::Format;
use super::common::{EXIT_INVALID, EXIT_OK, print_report};

pub(crate) fn validate(
    paths: &[PathBuf],
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let files = match topology::collect_topology_files(paths) {
        Ok(files) => files,
        Err(e) => {
            writeln!(std::io::stderr(), "reachlab: cannot list the files: {e}")?;
            return Ok(EXIT_INVALID);
        }
    };
    if files.is_empty() {
        writeln!(
            std::io::stderr(),
            "reachlab: no *.yaml or *.yml files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        return Ok(EXIT_INVALID);
    }
    let mut invalid = 0;
    let mut records = Vec::new();
    for path in &files {
        let result = topology::load_path(path);
        if result.is_err() {
            invalid += 1;
        }
        match format {
            Format::Json => {
                let (loaded, report) = match &result {
                    Ok(loaded) => (Some(&loaded.network), &loaded.report),
                    Err(report) => (None, &**report),
                };
                let diagnostics =
                    serde_json::to_value(report.json_records()).map_err(std::io::Error::other)?;
                records.push(FileRecord {
                    diagnostics,
                    expect: loaded.map(|n| n.expectations.len()),
                    file: path.display().to_string(),
                    nodes: loaded.map(|n| n.nodes.len()),
                    segments: loaded.map(|n| n.segments.len()),
                    valid: loaded.is_some(),
                });
            }
            _ => match &result {
                Ok(loaded) => {
                    out.write_all(render::render_report(&loaded.report, palette).as_bytes())?;
                    let net = &loaded.network;
                    let ok = palette.ok();
                    writeln!(
                        out,
                        "{ok}ok{ok:#} {} ({} nodes, {} segments, {} routes, {} expectations)",
                        path.display(),
                        net.nodes.len(),
                        net.segments.len(),
                        net.nodes
                            .iter()
                            .map(|n| n.routes.routes().len())
                            .sum::<usize>(),
                        net.expectations.len()
                    )?;
                }
                Err(report) => print_report(report, out, palette)?,
            },
        }
    }
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        )?,
        Format::Text if files.len() > 1 => writeln!(
            out,
            "{} files, {} valid, {invalid} invalid",
            files.len(),
            files.len() - invalid
        )?,
        _ => {}
    }
    Ok(if invalid > 0 { EXIT_INVALID } else { EXIT_OK })
}

/// One file of `validate --format json`. Fields in alphabetical order: the order of this
/// output since its first version; the counts only for a valid file.
#[derive(Serialize)]
struct FileRecord {
    /// As `check --format json` and every command give them for an invalid file.
    diagnostics: serde_json::Value,
    /// `expect:` entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    expect: Option<usize>,
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
    valid: bool,
}
