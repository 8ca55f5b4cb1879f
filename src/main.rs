//! The `reachlab` command line: parses arguments and hands them to their command (`src/cli/`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use reachlab::render::Palette;

mod cli;

use cli::{Cli, ColorWhen, EXIT_INVALID, EXIT_OK, Format};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    // CSV and Markdown are data, never coloured: they bypass the adapter that strips escape
    // sequences (on a million-row matrix it cost as much as the simulation).
    let result = if matches!(cli.output(), Format::Csv | Format::Markdown) {
        cli::run(&cli, &mut std::io::stdout().lock(), Palette::new(false))
    } else {
        let mut out = anstream::AutoStream::new(std::io::stdout().lock(), choice);
        cli::run(&cli, &mut out, Palette::new(cli.color != ColorWhen::Never))
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
