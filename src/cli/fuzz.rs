//! `reachlab fuzz`: what each line of a file protects.

use std::io::Write;

use reachlab::render::Palette;
use reachlab::sim::SimConfig;

use super::args::{Cli, Format};
use super::common::{EXIT_OK, print_invalid};

pub(crate) fn fuzz_command(
    cli: &Cli,
    file: &std::path::Path,
    limit: Option<usize>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    use reachlab::invariants::fuzz::{FuzzOptions, FuzzTarget, fuzz};
    let target = match FuzzTarget::load(file) {
        Ok(target) => target,
        Err(report) => return print_invalid(&report, cli.output(), out, palette),
    };
    let config = SimConfig {
        seed: cli.seed,
        ..SimConfig::default()
    };
    let options = FuzzOptions {
        limit,
        seed: cli.seed,
    };
    let report = fuzz(&target, &options, &config);
    match cli.output() {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report.json()).unwrap_or_default()
        )?,
        _ => out.write_all(reachlab::render::fuzz_text(&report, palette).as_bytes())?,
    }
    Ok(EXIT_OK)
}
