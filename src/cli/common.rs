//! What every command does the same way: exit codes, usage errors, a file's diagnostics in
//! the chosen format, the check mark and the width of coloured text.

use std::io::Write;

use reachlab::model::Port;
use reachlab::render::{self, Palette};
use reachlab::topology::{self, FileReport};

use super::args::Format;

/// Exit code: everything checked out.
pub(crate) const EXIT_OK: u8 = 0;

/// Exit code: a probe failed or a check did not give the expected outcome.
pub(crate) const EXIT_FAILED: u8 = 1;

/// Exit code: an input file is invalid, or the command line is (clap uses 2 as well).
pub(crate) const EXIT_INVALID: u8 = 2;

/// Says what is wrong with the command line (and how to mend it) on stderr; exit code 2.
pub(crate) fn usage_error(message: &str, hint: Option<&str>) -> std::io::Result<u8> {
    let mut err = std::io::stderr();
    writeln!(err, "reachlab: {message}")?;
    if let Some(hint) = hint {
        writeln!(err, "  hint: {hint}")?;
    }
    Ok(EXIT_INVALID)
}

/// Prints a file's diagnostics in the chosen format.
pub(crate) fn print_invalid(
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

pub(crate) fn print_report(
    report: &FileReport,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<()> {
    out.write_all(render::render_report(report, palette).as_bytes())?;
    out.write_all(render::render_summary(report, palette).as_bytes())
}

/// Loads a file, or prints its diagnostics (in the chosen format) when it is invalid.
pub(crate) fn load_or_report(
    file: &std::path::Path,
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<Option<topology::Loaded>> {
    match topology::load_path(file) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(report) => {
            print_invalid(&report, format, out, palette)?;
            Ok(None)
        }
    }
}

pub(crate) fn port_arg(port: u16) -> Result<Port, String> {
    Port::new(port).ok_or_else(|| "port 0 cannot be connected to: use 1 to 65535".to_owned())
}

pub(crate) fn palette_mark(palette: Palette, ok: bool) -> String {
    let (style, mark) = if ok {
        (palette.ok(), "✓")
    } else {
        (palette.error(), "✗")
    };
    format!("{style}{mark}{style:#}")
}

/// An error of serde_json writing to `out` as the I/O error it was (a closed pipe stays one).
pub(crate) fn json_io_error(e: serde_json::Error) -> std::io::Error {
    match e.io_error_kind() {
        Some(kind) => std::io::Error::from(kind),
        None => std::io::Error::other(e),
    }
}
