//! Pictures of a topology (`reachlab graph`): a self-contained SVG, or Graphviz `dot` and Mermaid
//! text, of the nodes and segments, with platform sections grouped as the platform shows them,
//! and optionally probes traced on it hop by hop with their NAT rewrites and drop points.
//!
//! ```
//! use reachlab::render::graph::{GraphFormat, Picture};
//! let text = "
//! segments: [{ name: lan }]
//! nodes:
//!   - { name: a, interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }] }
//!   - { name: b, interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }] }
//! ";
//! let loaded = reachlab::topology::load_str("t.yaml", text).expect("valid");
//! let picture = Picture::new(&loaded.network, Some(&loaded.report.source));
//! let svg = picture.render(GraphFormat::Svg);
//! assert!(svg.starts_with("<svg") && svg.contains(">a</text>"));
//! ```

mod groups;
mod layout;
mod svg;
mod text;
mod trace;

use crate::model::{Network, Port, Probe};
use crate::run::{ProbeError, ProbeRequest, ProbeResult, node_named, run_request, target_address};
use crate::sim::SimConfig;
use crate::topology::SourceFile;

/// The output formats of a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphFormat {
    /// A self-contained SVG image.
    Svg,
    /// Graphviz `dot` source.
    Dot,
    /// A Mermaid `flowchart`.
    Mermaid,
}

/// A probe given on the command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceSpecError {
    #[error("`{0}` is not a probe: use ping, ssh, ssh:PORT, curl, curl:PORT, tcp:PORT or udp:PORT")]
    UnknownProbe(String),
    #[error("`{0}`: the port must be a number from 1 to 65535")]
    BadPort(String),
    #[error("give one --probe per --trace ({traces} traces, {probes} probes) or none (ping)")]
    Unpaired { traces: usize, probes: usize },
    #[error("--trace takes two values, FROM and TO")]
    Odd,
}

/// A probe to trace on a picture, as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpec {
    pub from: String,
    pub to: String,
    pub probe: Probe,
}

/// Parses `ping`, `ssh`, `ssh:PORT`, `curl`, `curl:PORT`, `tcp:PORT` or `udp:PORT`.
pub fn parse_probe(spec: &str) -> Result<Probe, TraceSpecError> {
    let (tool, written) = match spec.split_once(':') {
        Some((tool, port)) => (tool, Some(port)),
        None => (spec, None),
    };
    let port = |default: Option<u16>| -> Result<Port, TraceSpecError> {
        let number = match (written, default) {
            (Some(text), _) => text.parse::<u16>().ok(),
            (None, Some(d)) => Some(d),
            (None, None) => None,
        };
        number
            .and_then(Port::new)
            .ok_or_else(|| TraceSpecError::BadPort(spec.to_owned()))
    };
    match tool {
        "ping" if written.is_none() => Ok(Probe::Ping),
        "ssh" => Ok(Probe::Ssh {
            port: port(Some(22))?,
        }),
        "curl" | "http" => Ok(Probe::Curl {
            port: port(Some(80))?,
            path: "/".into(),
        }),
        "tcp" => Ok(Probe::Tcp { port: port(None)? }),
        "udp" => Ok(Probe::Udp { port: port(None)? }),
        _ => Err(TraceSpecError::UnknownProbe(spec.to_owned())),
    }
}

/// Pairs `--trace FROM TO` values (flattened) with the `--probe` values: one probe per trace,
/// in order, or none at all (every trace pings).
pub fn pair_traces(
    endpoints: &[String],
    probes: &[String],
) -> Result<Vec<TraceSpec>, TraceSpecError> {
    if !endpoints.len().is_multiple_of(2) {
        return Err(TraceSpecError::Odd);
    }
    let traces = endpoints.len() / 2;
    if !probes.is_empty() && probes.len() != traces {
        return Err(TraceSpecError::Unpaired {
            traces,
            probes: probes.len(),
        });
    }
    endpoints
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let probe = match probes.get(i) {
                Some(spec) => parse_probe(spec)?,
                None => Probe::Ping,
            };
            Ok(TraceSpec {
                from: pair[0].clone(),
                to: pair[1].clone(),
                probe,
            })
        })
        .collect()
}

/// A picture of a network, with the probes traced on it.
#[derive(Debug, Clone)]
pub struct Picture<'n> {
    net: &'n Network,
    platforms: groups::Platforms,
    overlays: Vec<trace::Overlay>,
}

impl<'n> Picture<'n> {
    /// A picture of `net`; `source` is the file it was loaded from (its platform sections give
    /// the groups; without it nothing is grouped).
    pub fn new(net: &'n Network, source: Option<&SourceFile>) -> Self {
        Self {
            net,
            platforms: groups::platforms(net, source),
            overlays: Vec::new(),
        }
    }

    /// Draws a probe's path on the picture (the same `config` the probe ran with).
    pub fn add_trace(&mut self, result: &ProbeResult, config: &SimConfig) {
        self.overlays.push(trace::overlay(self.net, result, config));
    }

    /// Runs the probe `spec` asks for (one echo request for ping) and draws it.
    pub fn trace(&mut self, spec: &TraceSpec, config: &SimConfig) -> Result<(), ProbeError> {
        let request = ProbeRequest {
            from: node_named(self.net, &spec.from)?,
            written: spec.to.clone(),
            dst: target_address(self.net, &spec.to)?,
            probe: spec.probe.clone(),
            count: 1,
            wait: None,
            ttl: None,
        };
        let result = run_request(self.net, request, config);
        self.add_trace(&result, config);
        Ok(())
    }

    /// The picture in `format`.
    pub fn render(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Svg => {
                let layout = self.layout();
                svg::svg(self.net, &layout, &self.overlays)
            }
            GraphFormat::Dot => text::dot(self.net, &self.platforms, &self.overlays),
            GraphFormat::Mermaid => text::mermaid(self.net, &self.platforms, &self.overlays),
        }
    }

    fn layout(&self) -> layout::Layout {
        let lines = svg::note_lines(self.net.nodes.len(), &self.overlays);
        let asides: Vec<layout::Aside> = lines
            .iter()
            .map(|lines| {
                if lines.is_empty() {
                    return layout::Aside::default();
                }
                let w = lines
                    .iter()
                    .map(|(_, _, l)| layout::text_width(l, layout::SMALL_SIZE))
                    .fold(0.0, f64::max)
                    + 8.0;
                layout::Aside {
                    w,
                    h: lines.len() as f64 * layout::NOTE_ROW + 6.0,
                }
            })
            .collect();
        layout::layout(self.net, &self.platforms, &asides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_parse() {
        assert_eq!(parse_probe("ping"), Ok(Probe::Ping));
        assert_eq!(
            parse_probe("ssh:2222"),
            Ok(Probe::Ssh {
                port: Port::new(2222).expect("port")
            })
        );
        assert_eq!(parse_probe("ssh"), Ok(Probe::Ssh { port: Port::SSH }));
        assert!(matches!(
            parse_probe("tcp"),
            Err(TraceSpecError::BadPort(_))
        ));
        assert!(matches!(
            parse_probe("tcp:0"),
            Err(TraceSpecError::BadPort(_))
        ));
        assert!(matches!(
            parse_probe("tcp:99999"),
            Err(TraceSpecError::BadPort(_))
        ));
        assert!(matches!(
            parse_probe("smtp"),
            Err(TraceSpecError::UnknownProbe(_))
        ));
    }

    #[test]
    fn traces_pair_with_probes() {
        let e: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(pair_traces(&e, &[]).map(|t| t.len()), Ok(2));
        let p = vec!["tcp:1".to_owned()];
        assert!(matches!(
            pair_traces(&e, &p),
            Err(TraceSpecError::Unpaired {
                traces: 2,
                probes: 1
            })
        ));
    }
}
