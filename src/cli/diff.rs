//! `reachlab diff`: the flows whose outcome differs between two versions of a topology.

use std::io::Write;

use reachlab::render::Palette;
use reachlab::sim::SimConfig;

use super::args::{CellArgs, Cli, Format};
use super::common::{EXIT_FAILED, EXIT_OK, print_invalid, usage_error};

pub(crate) fn diff_command(
    cli: &Cli,
    versions: [&String; 2],
    cells: &CellArgs,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    use reachlab::diff::{self, Version, VersionError};
    let versions = versions.map(|v| Version::parse(v));
    let mut loaded = Vec::new();
    for version in &versions {
        match version.load() {
            Ok(l) => loaded.push(l),
            Err(VersionError::Invalid(report)) => {
                return print_invalid(&report, cli.output(), out, palette);
            }
            Err(e) => return usage_error(&e.to_string(), None),
        }
    }
    let [old, new] = [&versions[0], &versions[1]].map(Version::label);
    let options = diff::Options {
        from: cells.from.clone().unwrap_or_default(),
        to: cells.to.clone().unwrap_or_default(),
        probes: match &cells.probe {
            Some(given) => diff::ProbeChoice::Given(given.clone()),
            None => diff::ProbeChoice::Relevant,
        },
    };
    let config = SimConfig {
        seed: cli.seed,
        ..SimConfig::default()
    };
    let found = diff::diff(
        (&old, &loaded[0].network),
        (&new, &loaded[1].network),
        &options,
        &config,
        cells.progress(),
    );
    let found = match found {
        Ok(found) => found,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    match cli.output() {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&found.json()).unwrap_or_default()
        )?,
        _ => out.write_all(reachlab::render::diff::text(&found, palette).as_bytes())?,
    }
    Ok(if found.changed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
