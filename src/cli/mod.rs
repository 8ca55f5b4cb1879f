//! The command line: one file per command, each only parsing, calling the library and printing;
//! [`run`] hands a parsed command line to its command.

mod args;
mod check;
mod common;
mod diff;
#[cfg(all(feature = "emulate", target_os = "linux"))]
mod emulate;
mod fuzz;
mod generate;
mod graph;
mod matrix;
mod probe;
mod show;
mod traceroute;
mod validate;

use std::io::Write;

use clap::CommandFactory;
use reachlab::model::Probe;
use reachlab::render::Palette;
use reachlab::topology;

use args::Command;
pub(crate) use args::{Cli, ColorWhen, Format};
pub(crate) use common::{EXIT_INVALID, EXIT_OK};

/// Runs the parsed command line, printing to `out`; the exit code.
pub(crate) fn run(cli: &Cli, out: &mut impl Write, palette: Palette) -> std::io::Result<u8> {
    match &cli.command {
        Command::Validate { paths, .. } => validate::validate(paths, cli.output(), out, palette),
        Command::Show {
            file,
            node,
            iptables_save,
            ..
        } => {
            #[cfg(all(feature = "emulate", target_os = "linux"))]
            let nft = matches!(cli.command, Command::Show { nft: true, .. });
            #[cfg(not(all(feature = "emulate", target_os = "linux")))]
            let nft = false;
            let rules = match (*iptables_save, nft) {
                (true, _) => Some(show::Rules::IptablesSave),
                (_, true) => Some(show::Rules::Nft),
                _ => None,
            };
            show::show(file, node.as_deref(), rules, cli.output(), out, palette)
        }
        Command::Check {
            paths, failures, ..
        } => check::check(paths, *failures, cli, out, palette),
        Command::Fuzz { file, limit, .. } => fuzz::fuzz_command(cli, file, *limit, out, palette),
        Command::Ping {
            file,
            from,
            to,
            count,
            wait,
            ttl,
            ..
        } => {
            let echoes = probe::Echoes {
                count: *count,
                wait: wait.map(std::time::Duration::from_secs),
                ttl: *ttl,
            };
            probe::ping(cli, file, from, to, echoes, out, palette)
        }
        Command::Ssh {
            file,
            from,
            host,
            port,
            ..
        } => probe::to_port(
            cli,
            file,
            from,
            host,
            *port,
            |port| Probe::Ssh { port },
            out,
            palette,
        ),
        Command::Curl {
            file, from, url, ..
        } => probe::curl(cli, file, from, url, out, palette),
        Command::Tcp {
            file,
            from,
            to,
            port,
            ..
        } => probe::to_port(
            cli,
            file,
            from,
            to,
            *port,
            |port| Probe::Tcp { port },
            out,
            palette,
        ),
        Command::Udp {
            file,
            from,
            to,
            port,
            ..
        } => probe::to_port(
            cli,
            file,
            from,
            to,
            *port,
            |port| Probe::Udp { port },
            out,
            palette,
        ),
        Command::Traceroute {
            file,
            from,
            to,
            max_hops,
            queries,
            ..
        } => {
            let options = reachlab::traceroute::Options {
                max_hops: *max_hops,
                queries: *queries,
                ..Default::default()
            };
            traceroute::traceroute_command(cli, file, (from, to), options, out, palette)
        }
        Command::Trace {
            file,
            from,
            to,
            tcp,
            udp,
            ..
        } => probe::trace(cli, file, from, to, *tcp, *udp, out, palette),
        #[cfg(all(feature = "emulate", target_os = "linux"))]
        Command::Emulate { command } => emulate::run(command, &cli_context(cli, palette), out),
        #[cfg(all(feature = "emulate", target_os = "linux"))]
        Command::Live { command } => emulate::live(command, &cli_context(cli, palette), out),
        Command::Matrix(args) => matrix::matrix_command(cli, args, out, palette),
        Command::Diff {
            old, new, cells, ..
        } => diff::diff_command(cli, [old, new], cells, out, palette),
        Command::Graph {
            file,
            trace,
            probe,
            graph_as,
            output,
        } => graph::graph(
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
        Command::Generate { what, format } => generate::generate(what, *format, cli.seed, out),
    }
}

#[cfg(all(feature = "emulate", target_os = "linux"))]
fn cli_context(cli: &Cli, palette: Palette) -> emulate::Context {
    emulate::Context {
        json: cli.output() == Format::Json,
        yaml: cli.output() == Format::Yaml,
        palette,
        seed: cli.seed,
    }
}
