//! `ping`, `ssh`, `curl`, `tcp`, `udp` and `trace`: one probe from a node, printed as the real
//! tool prints it, with the capture `--pcap` asks for.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use reachlab::fix;
use reachlab::model::{Network, NodeId, Port, Probe};
use reachlab::render::{self, Palette};
use reachlab::run::{self as probe_run, ProbeRequest};
use reachlab::sim::SimConfig;
use reachlab::topology;

use super::args::{Cli, Command, Format};
use super::common::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, load_or_report, port_arg, usage_error};

/// How a ping sends its echoes (`-c`, `-W`, `-t`); one of everything for the other probes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Echoes {
    pub(crate) count: u16,
    pub(crate) wait: Option<std::time::Duration>,
    pub(crate) ttl: Option<u8>,
}

impl Echoes {
    const ONE: Echoes = Echoes {
        count: 1,
        wait: None,
        ttl: None,
    };

    /// The probe from `from` to `dst` (written `written`) sending these echoes.
    fn request(self, from: NodeId, written: String, dst: Ipv4Addr, probe: Probe) -> ProbeRequest {
        ProbeRequest {
            from,
            written,
            dst,
            probe,
            count: self.count,
            wait: self.wait,
            ttl: self.ttl,
        }
    }
}

/// Runs a probe as the command line asked for it: explained, its fixes patched against the
/// file and checked, and the capture `--pcap` asks for written (`Some(exit code)` when that
/// failed).
fn diagnosed(
    cli: &Cli,
    loaded: &topology::Loaded,
    request: ProbeRequest,
) -> std::io::Result<(probe_run::ProbeResult, Option<u8>)> {
    let net = &loaded.network;
    let config = SimConfig {
        seed: cli.seed,
        capture: pcap_path(&cli.command).is_some(),
        ..SimConfig::default()
    };
    let mut result = fix::diagnose(net, request, &config);
    fix::attach_patches(&mut result, net, &loaded.report.source, &config);
    let pcap_failed = write_pcap(cli, net, &result, &config)?;
    Ok((result, pcap_failed))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn probe(
    cli: &Cli,
    file: &std::path::Path,
    from: &str,
    to: &str,
    make: impl FnOnce(&Network) -> Result<(Probe, String), String>,
    echoes: Echoes,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_or_report(file, cli.output(), out, palette)? else {
        return Ok(EXIT_INVALID);
    };
    let net = &loaded.network;
    let (probe, written) = match make(net) {
        Ok(p) => p,
        Err(e) => return usage_error(&e, None),
    };
    let (from, dst) = match probe_run::endpoints(net, from, to) {
        Ok(ends) => ends,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    let request = echoes.request(from, written, dst, probe);
    let (result, pcap_failed) = diagnosed(cli, &loaded, request)?;
    match cli.output() {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::probe_record(net, &result)).unwrap_or_default()
        )?,
        _ => out.write_all(render::probe_text(net, &result, palette).as_bytes())?,
    }
    if let Some(code) = pcap_failed {
        return Ok(code);
    }
    Ok(if result.run.outcome == reachlab::model::Outcome::Reply {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The `--pcap` path of a probe command.
pub(crate) fn pcap_path(command: &Command) -> Option<&std::path::Path> {
    match command {
        Command::Ping { out, .. }
        | Command::Ssh { out, .. }
        | Command::Curl { out, .. }
        | Command::Tcp { out, .. }
        | Command::Udp { out, .. }
        | Command::Trace { out, .. } => out.pcap.as_deref(),
        _ => None,
    }
}

/// Writes the capture `--pcap` asks for; `Some(exit code)` when it could not be written.
pub(crate) fn write_pcap(
    cli: &Cli,
    net: &Network,
    result: &probe_run::ProbeResult,
    config: &SimConfig,
) -> std::io::Result<Option<u8>> {
    let Some(path) = pcap_path(&cli.command) else {
        return Ok(None);
    };
    match render::pcap::write_capture(net, result, config, path) {
        Ok(_) => Ok(None),
        Err(e) => {
            writeln!(std::io::stderr(), "reachlab: {e}")?;
            Ok(Some(EXIT_INVALID))
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn trace(
    cli: &Cli,
    file: &std::path::Path,
    from: &str,
    to: &str,
    tcp: Option<u16>,
    udp: Option<u16>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_or_report(file, cli.output(), out, palette)? else {
        return Ok(EXIT_INVALID);
    };
    let net = &loaded.network;
    let probe = match (tcp, udp) {
        (Some(p), _) => match port_arg(p) {
            Ok(port) => Probe::Tcp { port },
            Err(e) => return usage_error(&e, None),
        },
        (None, Some(p)) => match port_arg(p) {
            Ok(port) => Probe::Udp { port },
            Err(e) => return usage_error(&e, None),
        },
        (None, None) => Probe::Ping,
    };
    let (from, dst) = match probe_run::endpoints(net, from, to) {
        Ok(ends) => ends,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    let request = Echoes::ONE.request(from, to.to_owned(), dst, probe);
    let (result, pcap_failed) = diagnosed(cli, &loaded, request)?;
    match cli.output() {
        Format::Json => {
            let steps = reachlab::render::trace_rows(net, &result.run);
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&TraceRecord {
                    hops: steps,
                    probe: render::probe_record(net, &result),
                })
                .unwrap_or_default()
            )?;
        }
        _ => {
            out.write_all(reachlab::render::trace_table(net, &result.run).as_bytes())?;
            writeln!(out, "\noutcome: {}", result.run.outcome)?;
            if let Some(why) = &result.why {
                let block =
                    reachlab::render::why_block(why, &result.fixes, &result.dropped_fixes, palette);
                out.write_all(block.as_bytes())?;
            }
        }
    }
    if let Some(code) = pcap_failed {
        return Ok(code);
    }
    Ok(if result.run.outcome == reachlab::model::Outcome::Reply {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `reachlab ping`.
pub(crate) fn ping(
    cli: &Cli,
    file: &Path,
    from: &str,
    to: &str,
    echoes: Echoes,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let make = |_: &Network| Ok((Probe::Ping, to.to_owned()));
    probe(cli, file, from, to, make, echoes, out, palette)
}

/// `reachlab ssh`, `tcp` and `udp`: one connection attempt (one datagram) to `port` of `to`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn to_port(
    cli: &Cli,
    file: &Path,
    from: &str,
    to: &str,
    port: u16,
    probe_of: fn(Port) -> Probe,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let make = |_: &Network| Ok((probe_of(port_arg(port)?), to.to_owned()));
    probe(cli, file, from, to, make, Echoes::ONE, out, palette)
}

/// `reachlab curl`.
pub(crate) fn curl(
    cli: &Cli,
    file: &Path,
    from: &str,
    url: &str,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let parsed = topology::units::parse_http_url(url);
    let host = parsed
        .as_ref()
        .map_or_else(|_| url.to_owned(), |u| u.host.clone());
    let make = |_: &Network| {
        let u = parsed.clone().map_err(|e| format!("`{url}`: {e}"))?;
        let port = port_arg(u.port)?;
        Ok((Probe::Curl { port, path: u.path }, u.host))
    };
    probe(cli, file, from, &host, make, Echoes::ONE, out, palette)
}

/// `trace --format json`: the hops, and the probe as `ping --format json` prints it.
#[derive(serde::Serialize)]
struct TraceRecord {
    hops: Vec<reachlab::render::HopRecord>,
    probe: reachlab::render::ProbeRecord,
}
