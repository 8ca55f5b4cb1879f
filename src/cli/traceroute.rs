//! `reachlab traceroute`: the route from a node to a destination as traceroute 2.1 shows it.

use std::io::Write;
use std::path::Path;

use reachlab::render::{self, Palette};
use reachlab::run as probe_run;
use reachlab::sim::SimConfig;
use reachlab::traceroute::{Options, traceroute};

use super::args::{Cli, Format};
use super::common::{EXIT_INVALID, json_io_error, load_or_report, usage_error};

/// Traces from `from` to `to` with `options`; prints like the real tool (or its JSON record).
pub(crate) fn traceroute_command(
    cli: &Cli,
    file: &Path,
    (from, to): (&str, &str),
    options: Options,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_or_report(file, cli.output(), out, palette)? else {
        return Ok(EXIT_INVALID);
    };
    let net = &loaded.network;
    let (sender, dst) = match probe_run::endpoints(net, from, to) {
        Ok(ends) => ends,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    let config = SimConfig {
        seed: cli.seed,
        ..SimConfig::default()
    };
    let trace = traceroute(net, sender, dst, options, &config);
    let (output, stderr) = render::traceroute_output(&trace, to);
    if cli.output() == Format::Json {
        let record = render::traceroute_record(&trace, from, to);
        serde_json::to_writer_pretty(&mut *out, &record).map_err(json_io_error)?;
        writeln!(out)?;
    } else {
        out.write_all(output.text.as_bytes())?;
        if let Some(line) = stderr {
            writeln!(std::io::stderr(), "{line}")?;
        }
    }
    Ok(u8::try_from(output.exit_code).unwrap_or(1))
}
