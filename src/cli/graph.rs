//! `reachlab graph`: the topology (and a probe's path) as a picture.

use std::io::Write;

use reachlab::render::Palette;
use reachlab::sim::SimConfig;
use reachlab::topology;

use super::args::{Cli, GraphAs};
use super::common::{EXIT_INVALID, EXIT_OK, print_report, usage_error};

#[allow(clippy::too_many_arguments)]
pub(crate) fn graph(
    cli: &Cli,
    file: &std::path::Path,
    traces: &[String],
    probes: &[String],
    graph_as: GraphAs,
    output: Option<&std::path::Path>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    use reachlab::render::graph::{GraphFormat, Picture, pair_traces};
    let loaded = match topology::load_path(file) {
        Ok(loaded) => loaded,
        Err(report) => {
            print_report(&report, out, palette)?;
            return Ok(EXIT_INVALID);
        }
    };
    let net = &loaded.network;
    let specs = match pair_traces(traces, probes) {
        Ok(specs) => specs,
        Err(e) => return usage_error(&e.to_string(), None),
    };
    let config = SimConfig {
        seed: cli.seed,
        ..SimConfig::default()
    };
    let mut picture = Picture::new(net, Some(&loaded.report.source));
    for spec in &specs {
        if let Err(e) = picture.trace(spec, &config) {
            return usage_error(&e.to_string(), e.hint());
        }
    }
    let text = picture.render(match graph_as {
        GraphAs::Svg => GraphFormat::Svg,
        GraphAs::Dot => GraphFormat::Dot,
        GraphAs::Mermaid => GraphFormat::Mermaid,
    });
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                writeln!(
                    std::io::stderr(),
                    "reachlab: cannot write {}: {e}",
                    path.display()
                )?;
                return Ok(EXIT_INVALID);
            }
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(EXIT_OK)
}
