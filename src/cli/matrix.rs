//! `reachlab matrix`: every source against every destination, one cell per probe.

use std::io::Write;

use reachlab::render::Palette;
use reachlab::sim::SimConfig;
use reachlab::topology;

use super::args::{Cli, Format, MatrixArgs, MatrixCommand};
use super::common::{EXIT_OK, print_invalid, usage_error};

pub(crate) fn matrix_command(
    cli: &Cli,
    args: &MatrixArgs,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    use reachlab::matrix::{self, Layout, Progress};
    let m = match (&args.merge, &args.file) {
        (Some(MatrixCommand::Merge { slices }), _) => {
            let read = slices
                .iter()
                .map(|p| matrix::read_slice(p).map(|s| (p.display().to_string(), s)))
                .collect::<Result<Vec<_>, _>>();
            match read.and_then(matrix::merge) {
                Ok(m) => m,
                Err(e) => return usage_error(&e.to_string(), Some(e.hint())),
            }
        }
        (None, Some(file)) => {
            let loaded = match topology::load_path(file) {
                Ok(loaded) => loaded,
                Err(report) => return print_invalid(&report, cli.output(), out, palette),
            };
            let (from, to) = (
                args.cells.from.clone().unwrap_or_default(),
                args.cells.to.clone().unwrap_or_default(),
            );
            let layout =
                match Layout::resolve(&loaded.network, &file.display().to_string(), &from, &to) {
                    Ok(layout) => layout,
                    Err(e) => return usage_error(&e.to_string(), None),
                };
            let config = SimConfig {
                seed: cli.seed,
                ..SimConfig::default()
            };
            let probes = &args.cells.probe.clone().unwrap_or_default();
            if let Err(e) = matrix::check_budget(&layout, probes) {
                return usage_error(&e.to_string(), Some(e.hint()));
            }
            let total = matrix::cells_to_run(&layout, probes, args.shard);
            let topology = matrix::TopologyRef::of(&loaded);
            if args.shard.is_some() && matches!(cli.output(), Format::Csv | Format::Markdown) {
                return usage_error(
                    "a slice is JSON",
                    Some("print the matrix in CSV or Markdown with `reachlab matrix merge`"),
                );
            }
            let progress = Progress::start(total, args.cells.progress());
            if let Some(shard) = args.shard {
                let slice = matrix::run_shard(
                    &loaded.network,
                    topology,
                    &layout,
                    probes,
                    shard,
                    &config,
                    &progress,
                );
                drop(progress);
                writeln!(out, "{}", slice.to_json())?;
                return Ok(EXIT_OK);
            }
            let m = matrix::run(
                &loaded.network,
                topology,
                &layout,
                probes,
                &config,
                &progress,
            );
            drop(progress);
            m
        }
        (None, None) => return usage_error("give a topology file, or `merge` and slices", None),
    };
    // Streamed: a million cells are never one string in memory. Buffered here because stdout
    // flushes at every newline.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    match cli.output() {
        Format::Json => reachlab::render::matrix::write_json(&m, &mut out),
        Format::Csv => reachlab::render::matrix::write_csv(&m, &mut out),
        Format::Markdown => reachlab::render::matrix::write_markdown(&m, &mut out),
        _ => reachlab::render::matrix::write_text(&m, palette, &mut out),
    }?;
    out.flush()?;
    Ok(EXIT_OK)
}
