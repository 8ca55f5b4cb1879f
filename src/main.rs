//! The `reachlab` command line: parses arguments, calls the library, prints. Nothing else.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

mod cli;
use reachlab::model::{Network, Port, Probe};
use reachlab::render::{self, Palette};
use reachlab::run::{self as probe_run, ProbeRequest};
use reachlab::sim::SimConfig;
use reachlab::topology::{self, FileReport};

/// Exit code: everything checked out.
const EXIT_OK: u8 = 0;
/// Exit code: a probe failed or a check did not give the expected outcome.
const EXIT_FAILED: u8 = 1;
/// Exit code: an input file is invalid, or the command line is (clap uses 2 as well).
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "reachlab",
    version,
    about = "Predict what ping, ssh and curl do on a network before you deploy it",
    after_help = "Exit codes: 0 ok, 1 a check or probe did not give the expected outcome, 2 invalid input."
)]
struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// Seed of the simulation's random numbers (frame loss); the same seed gives the same output.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    /// A topology file (`live show` only).
    Yaml,
    /// Comma-separated values, one row per cell (`matrix` only).
    Csv,
    /// Markdown tables (`matrix` only).
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Check topology files (and every *.yaml/*.yml under directories); report all problems.
    Validate {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Show a topology: segments, nodes, interfaces, listeners and each routing table as `ip route` prints it.
    Show {
        file: PathBuf,
        /// Show only this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Run every `expect:` entry of the files and compare the predicted outcome with the expected
    /// one; check every invariant over the flows it covers.
    Check {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Also check every invariant and expectation again with each set of K segments or
        /// nodes down (1: every single failure); exit 1 when one breaks something.
        #[arg(long, value_name = "K")]
        failures: Option<usize>,
    },
    /// Predict `ping` from node FROM to TO (an address, a node name or a DNS name).
    Ping {
        file: PathBuf,
        from: String,
        to: String,
        /// Number of echo requests.
        #[arg(short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// Seconds to wait for a reply after the last request.
        #[arg(short = 'W')]
        wait: Option<u64>,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Predict `ssh HOST` from node FROM.
    Ssh {
        file: PathBuf,
        from: String,
        host: String,
        #[arg(short = 'p', default_value_t = 22)]
        port: u16,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Predict `curl URL` from node FROM (http:// URLs).
    Curl {
        file: PathBuf,
        from: String,
        url: String,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Predict a TCP connection from FROM to TO:PORT.
    Tcp {
        file: PathBuf,
        from: String,
        to: String,
        port: u16,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Predict a UDP datagram from FROM to TO:PORT.
    Udp {
        file: PathBuf,
        from: String,
        to: String,
        port: u16,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Every hop of a probe: node, interfaces, route used, decision (ping unless --tcp/--udp).
    Trace {
        file: PathBuf,
        from: String,
        to: String,
        #[arg(long, conflicts_with = "udp")]
        tcp: Option<u16>,
        #[arg(long)]
        udp: Option<u16>,
        /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// Build a topology in Linux network namespaces and probe it for real (needs root).
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    Emulate {
        #[command(subcommand)]
        command: cli::emulate::EmulateCommand,
    },
    /// This machine as a topology, and real probes from it beside the prediction.
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    Live {
        #[command(subcommand)]
        command: cli::emulate::LiveCommand,
    },
    /// Every source node against every destination, one cell per probe: ✓ a reply, ✗ and the
    /// cause otherwise (--format text, csv, json or markdown).
    Matrix(MatrixArgs),
    /// The flows whose outcome differs between two versions of a topology, with the cause on
    /// each side; nodes only one version has. Exit 0 when nothing differs, 1 when something does.
    Diff {
        /// The old version: a file, or REV:PATH for PATH at git revision REV.
        old: String,
        /// The new version: a file, or REV:PATH.
        new: String,
        #[command(flatten)]
        cells: CellArgs,
    },
    /// Draw the topology (SVG, Graphviz dot or Mermaid), platform sections grouped, with probes
    /// traced on it: hops numbered, NAT rewrites noted, the drop point in red.
    Graph {
        file: PathBuf,
        /// Trace a probe from FROM to TO (an address, a node or a DNS name); repeatable.
        #[arg(long, num_args = 2, value_names = ["FROM", "TO"], action = clap::ArgAction::Append)]
        trace: Vec<String>,
        /// The probe of each --trace, in order: ping, ssh[:PORT], curl[:PORT], tcp:PORT,
        /// udp:PORT (default ping).
        #[arg(long, value_name = "PROBE", action = clap::ArgAction::Append)]
        probe: Vec<String>,
        /// Output format.
        #[arg(long = "as", value_enum, default_value_t = GraphAs::Svg)]
        graph_as: GraphAs,
        /// Write to FILE instead of standard output.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// What breaks if a line is forgotten: mutate the file one element at a time (drop a route,
    /// a NAT rule, a listener, an address; flip a filter rule; forwarding off) and report which
    /// invariants and expectations each mutation breaks, at the line of the original file.
    Fuzz {
        file: PathBuf,
        /// Run at most N mutations, chosen with --seed (default: all, in file order).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print the JSON Schema of the topology format.
    Schema,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a generated topology file (for benchmarks and experiments; sizes drawn from --seed).
    Generate {
        #[command(subcommand)]
        what: GenerateWhat,
    },
}

/// What `reachlab generate` writes.
#[derive(Subcommand)]
enum GenerateWhat {
    /// N routers in a line between hosts `a` and `b` (N + 2 nodes).
    Chain { routers: usize },
    /// A k-ary fat-tree of routers: k^3/4 hosts, 5k^2/4 routers (K even, 2 to 64).
    FatTree { k: usize },
    /// Sites behind NAT routers on a backbone, with a core router and a server.
    Campus {
        #[arg(long, default_value_t = 20)]
        sites: usize,
        /// At most this many LANs per site.
        #[arg(long, default_value_t = 4)]
        lans: usize,
        /// At most this many hosts per LAN.
        #[arg(long, default_value_t = 20)]
        hosts: usize,
    },
    /// A Kubernetes cluster of NODES nodes running PODS pods behind ClusterIP Services.
    Cluster { nodes: usize, pods: usize },
    /// HOSTS hosts on SUBNETS subnets (1 to 256) behind one router.
    Hosts { hosts: usize, subnets: usize },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    // CSV and Markdown are data, never coloured: they bypass the adapter that strips escape
    // sequences (on a million-row matrix it cost as much as the simulation).
    let result = if matches!(cli.format, Format::Csv | Format::Markdown) {
        run(&cli, &mut std::io::stdout().lock(), Palette::new(false))
    } else {
        let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
        run(&cli, &mut out, Palette::new(cli.color != ColorWhen::Never))
    };
    let code = match result {
        Ok(code) => code,
        // A closed pipe (`reachlab show x | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "reachlab: {e}");
            EXIT_INVALID
        }
    };
    ExitCode::from(code)
}

fn run(cli: &Cli, out: &mut impl Write, palette: Palette) -> std::io::Result<u8> {
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    let live_show = matches!(
        &cli.command,
        Command::Live {
            command: cli::emulate::LiveCommand::Show
        }
    );
    #[cfg(not(all(feature = "emulate", target_os = "linux")))]
    let live_show = false;
    if cli.format == Format::Yaml && !live_show {
        return usage_error(
            "`--format yaml` is for `reachlab live show` only",
            Some("use --format text or --format json"),
        );
    }
    let tables = matches!(cli.format, Format::Csv | Format::Markdown);
    if tables && !matches!(cli.command, Command::Matrix(_)) {
        return usage_error(
            "`--format csv` and `--format markdown` are for `reachlab matrix` only",
            Some("use --format text or --format json"),
        );
    }
    match &cli.command {
        Command::Validate { paths } => validate(paths, cli.format, out, palette),
        Command::Show { file, node } => show(file, node.as_deref(), cli.format, out, palette),
        Command::Check { paths, failures } => check(paths, *failures, cli, out, palette),
        Command::Fuzz { file, limit } => fuzz_command(cli, file, *limit, out, palette),
        Command::Ping {
            file,
            from,
            to,
            count,
            wait,
            ..
        } => {
            let wait = wait.map(std::time::Duration::from_secs);
            probe(
                cli,
                file,
                from,
                to,
                |_| Ok((Probe::Ping, to.clone())),
                *count,
                wait,
                out,
                palette,
            )
        }
        Command::Ssh {
            file,
            from,
            host,
            port,
            ..
        } => probe(
            cli,
            file,
            from,
            host,
            |_| {
                Ok((
                    Probe::Ssh {
                        port: port_arg(*port)?,
                    },
                    host.clone(),
                ))
            },
            1,
            None,
            out,
            palette,
        ),
        Command::Curl {
            file, from, url, ..
        } => {
            let parsed = topology::units::parse_http_url(url);
            let host = parsed
                .as_ref()
                .map_or_else(|_| url.clone(), |u| u.host.clone());
            probe(
                cli,
                file,
                from,
                &host,
                |_| {
                    let u = parsed.clone().map_err(|e| format!("`{url}`: {e}"))?;
                    Ok((
                        Probe::Curl {
                            port: port_arg(u.port)?,
                            path: u.path,
                        },
                        u.host,
                    ))
                },
                1,
                None,
                out,
                palette,
            )
        }
        Command::Tcp {
            file,
            from,
            to,
            port,
            ..
        } => probe(
            cli,
            file,
            from,
            to,
            |_| {
                Ok((
                    Probe::Tcp {
                        port: port_arg(*port)?,
                    },
                    to.clone(),
                ))
            },
            1,
            None,
            out,
            palette,
        ),
        Command::Udp {
            file,
            from,
            to,
            port,
            ..
        } => probe(
            cli,
            file,
            from,
            to,
            |_| {
                Ok((
                    Probe::Udp {
                        port: port_arg(*port)?,
                    },
                    to.clone(),
                ))
            },
            1,
            None,
            out,
            palette,
        ),
        Command::Trace {
            file,
            from,
            to,
            tcp,
            udp,
            ..
        } => trace(cli, file, from, to, *tcp, *udp, out, palette),
        #[cfg(all(feature = "emulate", target_os = "linux"))]
        Command::Emulate { command } => cli::emulate::run(command, &cli_context(cli, palette), out),
        #[cfg(all(feature = "emulate", target_os = "linux"))]
        Command::Live { command } => cli::emulate::live(command, &cli_context(cli, palette), out),
        Command::Matrix(args) => matrix_command(cli, args, out, palette),
        Command::Diff { old, new, cells } => diff_command(cli, [old, new], cells, out, palette),
        Command::Graph {
            file,
            trace,
            probe,
            graph_as,
            output,
        } => graph(
            cli,
            file,
            trace,
            probe,
            *graph_as,
            output.as_deref(),
            out,
            palette,
        ),
        Command::Schema => {
            out.write_all(topology::schema_json().as_bytes())?;
            Ok(EXIT_OK)
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "reachlab", out);
            Ok(EXIT_OK)
        }
        Command::Generate { what } => generate(what, cli.seed, out),
    }
}

fn generate(what: &GenerateWhat, seed: u64, out: &mut impl Write) -> std::io::Result<u8> {
    use reachlab::generate as g;
    let text = match *what {
        GenerateWhat::Chain { routers } if (1..=1_000_000).contains(&routers) => {
            Ok(g::chain(routers))
        }
        GenerateWhat::Chain { .. } => Err(g::GenerateError::OutOfRange(
            "a chain has 1 to 1,000,000 routers".into(),
        )),
        GenerateWhat::FatTree { k } => g::fat_tree(k, seed),
        GenerateWhat::Campus { sites, lans, hosts } => g::campus(sites, lans, hosts, seed),
        GenerateWhat::Cluster { nodes, pods } => g::cluster(nodes, pods, seed),
        GenerateWhat::Hosts { hosts, subnets }
            if hosts <= 1_000_000 && hosts.div_ceil(subnets.clamp(1, 256)) <= 65_000 =>
        {
            Ok(g::hosts(hosts, subnets))
        }
        GenerateWhat::Hosts { .. } => Err(g::GenerateError::OutOfRange(
            "at most 1,000,000 hosts and 65,000 per subnet".into(),
        )),
    };
    match text {
        Ok(text) => {
            out.write_all(text.as_bytes())?;
            Ok(EXIT_OK)
        }
        Err(e) => usage_error(&e.to_string(), None),
    }
}

#[cfg(all(feature = "emulate", target_os = "linux"))]
fn cli_context(cli: &Cli, palette: Palette) -> cli::emulate::Context {
    cli::emulate::Context {
        json: cli.format == Format::Json,
        yaml: cli.format == Format::Yaml,
        palette,
        seed: cli.seed,
    }
}

fn validate(
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
            Format::Json => records.push(match &result {
                Ok(loaded) => serde_json::json!({
                    "file": path.display().to_string(),
                    "valid": true,
                    "nodes": loaded.network.nodes.len(),
                    "segments": loaded.network.segments.len(),
                    "expect": loaded.network.expectations.len(),
                    "diagnostics": loaded.report.json_records(),
                }),
                Err(report) => serde_json::json!({
                    "file": path.display().to_string(),
                    "valid": false,
                    "diagnostics": report.json_records(),
                }),
            }),
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

fn print_report(
    report: &FileReport,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<()> {
    out.write_all(render::render_report(report, palette).as_bytes())?;
    out.write_all(render::render_summary(report, palette).as_bytes())
}

fn show(
    file: &std::path::Path,
    node: Option<&str>,
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let loaded = match topology::load_path(file) {
        Ok(loaded) => loaded,
        Err(report) => {
            match format {
                Format::Json => writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&report.json_records()).unwrap_or_default()
                )?,
                _ => print_report(&report, out, palette)?,
            }
            return Ok(EXIT_INVALID);
        }
    };
    let net = loaded.network;
    let only = match node {
        None => None,
        Some(name) => {
            let Some(found) = net.node_by_name(name) else {
                let names: Vec<&str> = net.nodes.iter().map(|n| n.name.as_str()).collect();
                writeln!(
                    std::io::stderr(),
                    "reachlab: {} has no node `{name}` (nodes: {})",
                    file.display(),
                    names.join(", ")
                )?;
                return Ok(EXIT_INVALID);
            };
            Some(found.id)
        }
    };
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::show_json(&net, only)).unwrap_or_default()
        )?,
        _ => out.write_all(render::show_text(&net, only, palette).as_bytes())?,
    }
    Ok(EXIT_OK)
}

fn port_arg(port: u16) -> Result<Port, String> {
    Port::new(port).ok_or_else(|| "port 0 cannot be connected to: use 1 to 65535".to_owned())
}

/// Loads a file for a probe command, printing its diagnostics when it is invalid.
fn load_for_probe(
    file: &std::path::Path,
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<Option<topology::Loaded>> {
    match topology::load_path(file) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(report) => {
            match format {
                Format::Json => writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&report.json_records()).unwrap_or_default()
                )?,
                _ => print_report(&report, out, palette)?,
            }
            Ok(None)
        }
    }
}

fn usage_error(message: &str, hint: Option<&str>) -> std::io::Result<u8> {
    let mut err = std::io::stderr();
    writeln!(err, "reachlab: {message}")?;
    if let Some(hint) = hint {
        writeln!(err, "  hint: {hint}")?;
    }
    Ok(EXIT_INVALID)
}

#[allow(clippy::too_many_arguments)]
fn probe(
    cli: &Cli,
    file: &std::path::Path,
    from: &str,
    to: &str,
    make: impl FnOnce(&Network) -> Result<(Probe, String), String>,
    count: u16,
    wait: Option<std::time::Duration>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_for_probe(file, cli.format, out, palette)? else {
        return Ok(EXIT_INVALID);
    };
    let net = &loaded.network;
    let (probe, written) = match make(net) {
        Ok(p) => p,
        Err(e) => return usage_error(&e, None),
    };
    let from = match probe_run::node_named(net, from) {
        Ok(id) => id,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    let dst = match probe_run::target_address(net, to) {
        Ok(addr) => addr,
        Err(e) => return usage_error(&e.to_string(), e.hint()),
    };
    let config = SimConfig {
        seed: cli.seed,
        capture: pcap_path(&cli.command).is_some(),
        ..SimConfig::default()
    };
    let request = ProbeRequest {
        from,
        written,
        dst,
        probe,
        count,
        wait,
    };
    let mut result = probe_run::run_request(net, request, &config);
    result.attach_patches(net, &loaded.report.source, &config);
    let pcap_failed = write_pcap(cli, net, &result, &config)?;
    match cli.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&result.json(net)).unwrap_or_default()
        )?,
        _ => out.write_all(result.text(palette).as_bytes())?,
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

/// The formats of `reachlab graph --as`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphAs {
    Svg,
    Dot,
    Mermaid,
}

#[allow(clippy::too_many_arguments)]
fn graph(
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

/// The `--pcap` path of a probe command.
fn pcap_path(command: &Command) -> Option<&std::path::Path> {
    match command {
        Command::Ping { pcap, .. }
        | Command::Ssh { pcap, .. }
        | Command::Curl { pcap, .. }
        | Command::Tcp { pcap, .. }
        | Command::Udp { pcap, .. }
        | Command::Trace { pcap, .. } => pcap.as_deref(),
        _ => None,
    }
}

/// Writes the capture `--pcap` asks for; `Some(exit code)` when it could not be written.
fn write_pcap(
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
fn trace(
    cli: &Cli,
    file: &std::path::Path,
    from: &str,
    to: &str,
    tcp: Option<u16>,
    udp: Option<u16>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_for_probe(file, cli.format, out, palette)? else {
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
    let (from, dst) = match (
        probe_run::node_named(net, from),
        probe_run::target_address(net, to),
    ) {
        (Ok(f), Ok(d)) => (f, d),
        (Err(e), _) | (_, Err(e)) => return usage_error(&e.to_string(), e.hint()),
    };
    let config = SimConfig {
        seed: cli.seed,
        capture: pcap_path(&cli.command).is_some(),
        ..SimConfig::default()
    };
    let request = ProbeRequest {
        from,
        written: to.to_owned(),
        dst,
        probe,
        count: 1,
        wait: None,
    };
    let mut result = probe_run::run_request(net, request, &config);
    result.attach_patches(net, &loaded.report.source, &config);
    let pcap_failed = write_pcap(cli, net, &result, &config)?;
    match cli.format {
        Format::Json => {
            let steps: Vec<serde_json::Value> = reachlab::render::trace_rows(net, &result.run);
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"probe": result.json(net), "hops": steps})
                )
                .unwrap_or_default()
            )?;
        }
        _ => {
            out.write_all(reachlab::render::trace_table(net, &result.run).as_bytes())?;
            writeln!(out, "\noutcome: {}", result.run.outcome)?;
            if let Some(why) = &result.why {
                out.write_all(reachlab::render::why_block(why, &result.fixes, palette).as_bytes())?;
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

fn check(
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
    let mut records = Vec::new();
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
                    records.push(serde_json::json!({"file": path.display().to_string(), "valid": false, "diagnostics": report.json_records()}));
                }
                continue;
            }
        };
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
            records.push(serde_json::json!({
                "file": path.display().to_string(),
                "probe": row.probe,
                "expected": row.expected.name(),
                "predicted": row.predicted.name(),
                "detail": row.detail,
                "ok": row.ok,
                "origin": row.origin.to_string(),
            }));
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
    records.append(&mut invariants.records);
    match cli.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        )?,
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

fn palette_mark(palette: Palette, ok: bool) -> String {
    let (style, mark) = if ok {
        (palette.ok(), "✓")
    } else {
        (palette.error(), "✗")
    };
    format!("{style}{mark}{style:#}")
}

/// Width on screen, ignoring ANSI colour sequences.
fn console_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// What `matrix` and `diff` probe.
#[derive(clap::Args)]
struct CellArgs {
    /// Probes, comma-separated: ping, ssh[:PORT], http[:PORT], tcp:PORT, udp:PORT. Default:
    /// ping for `matrix`; for `diff`, ping and the probes of the files' expectations, listeners
    /// and port forwards (also at the addresses port forwards match).
    #[arg(long, value_name = "PROBES")]
    probe: Option<reachlab::matrix::ProbeList>,
    /// Source nodes, comma-separated names or patterns (`h*`); default: every node.
    #[arg(long, value_name = "NODES")]
    from: Option<reachlab::matrix::Selection>,
    /// Destinations, comma-separated node names, patterns, addresses or DNS names; default: every
    /// node with an address, probed at its first address.
    #[arg(long, value_name = "NODES")]
    to: Option<reachlab::matrix::Selection>,
    /// Progress bar on stderr: auto shows it when a run lasts over a second on a terminal.
    #[arg(long, value_enum, default_value_t = ProgressWhen::Auto)]
    progress: ProgressWhen,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressWhen {
    Auto,
    Always,
    Never,
}

impl CellArgs {
    fn progress(&self) -> reachlab::matrix::ProgressMode {
        match self.progress {
            ProgressWhen::Auto => reachlab::matrix::ProgressMode::Auto,
            ProgressWhen::Always => reachlab::matrix::ProgressMode::Always,
            ProgressWhen::Never => reachlab::matrix::ProgressMode::Never,
        }
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct MatrixArgs {
    #[command(subcommand)]
    merge: Option<MatrixCommand>,
    /// The topology file.
    #[arg(required = true)]
    file: Option<PathBuf>,
    #[command(flatten)]
    cells: CellArgs,
    /// Compute only slice I of N (from 1) and print it as JSON, for `reachlab matrix merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<reachlab::matrix::Shard>,
}

#[derive(Subcommand)]
enum MatrixCommand {
    /// Join the JSON slices of `matrix --shard I/N` into the whole matrix, in any --format.
    Merge {
        #[arg(required = true, value_name = "SLICE.json")]
        slices: Vec<PathBuf>,
    },
}

/// Prints a file's diagnostics in the chosen format.
fn print_invalid(
    report: &FileReport,
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report.json_records()).unwrap_or_default()
        )?,
        _ => print_report(report, out, palette)?,
    }
    Ok(EXIT_INVALID)
}

fn matrix_command(
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
                Err(report) => return print_invalid(&report, cli.format, out, palette),
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
            if args.shard.is_some() && matches!(cli.format, Format::Csv | Format::Markdown) {
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
    match cli.format {
        Format::Json => matrix::write_json(&m, &mut out),
        Format::Csv => matrix::write_csv(&m, &mut out),
        Format::Markdown => matrix::write_markdown(&m, &mut out),
        _ => matrix::write_text(&m, palette, &mut out),
    }?;
    out.flush()?;
    Ok(EXIT_OK)
}

fn diff_command(
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
                return print_invalid(&report, cli.format, out, palette);
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
    match cli.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&found.json()).unwrap_or_default()
        )?,
        _ => out.write_all(found.text(palette).as_bytes())?,
    }
    Ok(if found.changed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn fuzz_command(
    cli: &Cli,
    file: &std::path::Path,
    limit: Option<usize>,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    use reachlab::invariants::fuzz::{FuzzOptions, FuzzTarget, fuzz};
    let target = match FuzzTarget::load(file) {
        Ok(target) => target,
        Err(report) => return print_invalid(&report, cli.format, out, palette),
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
    match cli.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report.json()).unwrap_or_default()
        )?,
        _ => out.write_all(report.text(palette).as_bytes())?,
    }
    Ok(EXIT_OK)
}
