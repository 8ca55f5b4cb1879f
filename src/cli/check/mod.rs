//! `reachlab check`: every expectation and invariant of the files, with failures. The
//! results accumulate in a [`report::CheckReport`], which prints the tables or the JSON
//! document at the end.

mod report;

use std::io::Write;
use std::path::PathBuf;

use reachlab::render::Palette;
use reachlab::sim::SimConfig;
use reachlab::topology;

use super::args::{Cli, Format};
use super::common::{print_report, usage_error};

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
    let mut report = report::CheckReport::new(palette);
    for path in &files {
        let file = path.display().to_string();
        let net = match topology::load_path(path) {
            Ok(loaded) => loaded.network,
            Err(diagnostics) => {
                if cli.output() == Format::Text {
                    print_report(&diagnostics, out, palette)?;
                }
                report.invalid(&file, &diagnostics)?;
                continue;
            }
        };
        report.expectations(&net, &file, &config);
        report.invariants(&net, &file, &config);
        if let Some(k) = failure_k.filter(|&k| k > 0)
            && let Err(e) = report.failures(&net, &file, k, &config)
        {
            return usage_error(
                &e.to_string(),
                Some("ask for fewer at a time: --failures 1"),
            );
        }
    }
    match cli.output() {
        Format::Json => report.write_json(out, files.len())?,
        _ => report.write_text(out, files.len())?,
    }
    Ok(report.exit_code())
}
