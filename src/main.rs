//! The `reachlab` command line: parses arguments, calls the library, prints. Nothing else.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use reachlab::render::{self, Palette};
use reachlab::topology::{self, FileReport};

/// Exit code: everything checked out.
const EXIT_OK: u8 = 0;
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
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
    /// Print the JSON Schema of the topology format.
    Schema,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
    let palette = Palette::new(cli.color != ColorWhen::Never);
    let code = match run(&cli, &mut out, palette) {
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
    match &cli.command {
        Command::Validate { paths } => validate(paths, cli.format, out, palette),
        Command::Show { file, node } => show(file, node.as_deref(), cli.format, out, palette),
        Command::Schema => {
            out.write_all(topology::schema_json().as_bytes())?;
            Ok(EXIT_OK)
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "reachlab", out);
            Ok(EXIT_OK)
        }
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
            Format::Text => match &result {
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
        Format::Text => {}
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
                Format::Text => print_report(&report, out, palette)?,
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
        Format::Text => out.write_all(render::show_text(&net, only, palette).as_bytes())?,
    }
    Ok(EXIT_OK)
}
