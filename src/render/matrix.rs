//! A finished matrix as a coloured terminal grid, CSV, JSON and Markdown.
//!
//! The grid and the Markdown tables have one table per probe, sources as rows and destinations
//! as columns; a cell is `✓` for a reply, `✗` and a one-letter cause otherwise, `·` where the
//! destination is the source itself. CSV and JSON list one record per probed cell, with the
//! outcome's name as topology files write it (`reply`, `timeout`, `no-route`, ...).
//!
//! Each rendering is a `write_*` function that streams to an [`io::Write`] (CSV and JSON a
//! record at a time, the grid and Markdown a row at a time), so printing a matrix takes memory
//! for one row, not for the whole text; [`csv`], [`json`], [`text`] and [`markdown`] collect the
//! same bytes into a `String`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::Palette;
use crate::matrix::{Cell, Matrix, OUTCOMES, cause_letter, cause_words, counted};
use crate::model::Outcome;

/// What a cell shows, and how many columns that takes on screen.
fn mark(cell: Cell) -> (String, usize) {
    match cell {
        Cell::Itself => ("·".into(), 1),
        Cell::Probed(outcome) => match cause_letter(outcome) {
            None => ("✓".into(), 1),
            Some(letter) => (format!("✗{letter}"), 2),
        },
    }
}

fn styled(cell: Cell, palette: Palette) -> (String, usize) {
    let (text, width) = mark(cell);
    let style = match cell {
        Cell::Itself => palette.dim(),
        Cell::Probed(Outcome::Reply) => palette.ok(),
        Cell::Probed(_) => palette.error(),
    };
    (format!("{style}{text}{style:#}"), width)
}

/// The number of the destination a source is, when it is one (row and column share it).
fn row_numbers(m: &Matrix) -> Vec<Option<usize>> {
    m.sources
        .iter()
        .map(|s| m.destinations.iter().position(|d| &d.label == s))
        .collect()
}

/// The legend, one line.
fn legend(palette: Palette) -> String {
    let (ok, err, dim) = (palette.ok(), palette.error(), palette.dim());
    let causes: Vec<String> = OUTCOMES
        .iter()
        .filter_map(|&o| cause_letter(o).map(|l| format!("{l} {}", cause_words(o))))
        .collect();
    format!(
        "{ok}✓{ok:#} reply   {err}✗{err:#} no reply, because: {}   {dim}·{dim:#} the node itself (not probed)",
        causes.join(", ")
    )
}

fn summary(m: &Matrix) -> String {
    let parts: Vec<String> = m
        .replies()
        .iter()
        .map(|(probe, reply, probed)| format!("{probe} {reply}/{probed}"))
        .collect();
    format!("replies: {}", parts.join(", "))
}

/// The terminal grid: one table per probe, then the destinations' numbers and addresses, the
/// legend and how many cells replied.
pub fn text(m: &Matrix, palette: Palette) -> String {
    to_string(|out| write_text(m, palette, out))
}

/// [`text`], written to `out` a row at a time.
pub fn write_text(m: &Matrix, palette: Palette, out: &mut impl Write) -> io::Result<()> {
    let bold = palette.bold();
    let digits = m.destinations.len().to_string().len();
    let width = digits.max(2);
    let numbers = row_numbers(m);
    let name_width = m
        .sources
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    let label_width = digits + 2 + name_width;
    writeln!(
        out,
        "{bold}{}{bold:#} ({}): {} × {}, seed {}",
        m.topology.name,
        m.topology.file,
        counted(m.sources.len(), "source"),
        counted(m.destinations.len(), "destination"),
        m.seed
    )?;
    let mut line = String::new();
    for (p, probe) in m.probes.iter().enumerate() {
        line.clear();
        let _ = write!(line, "{bold}{:<label_width$}{bold:#}", probe.to_string());
        for d in 1..=m.destinations.len() {
            let _ = write!(line, " {d:<width$}");
        }
        writeln!(out, "\n{}", line.trim_end())?;
        for (s, source) in m.sources.iter().enumerate() {
            let number = numbers[s].map_or_else(String::new, |n| (n + 1).to_string());
            line.clear();
            let _ = write!(line, "{number:>digits$}  {source:<name_width$}");
            for d in 0..m.destinations.len() {
                let (shown, w) = styled(m.cell(s, d, p), palette);
                let _ = write!(line, " {shown}{}", " ".repeat(width - w));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    writeln!(out, "\n{bold}destinations{bold:#}")?;
    let label_len = m
        .destinations
        .iter()
        .map(|d| d.label.chars().count())
        .max()
        .unwrap_or(0);
    for (d, column) in m.destinations.iter().enumerate() {
        writeln!(
            out,
            "{:>digits$}  {:<label_len$}  {}",
            d + 1,
            column.label,
            column.address
        )?;
    }
    writeln!(out, "\n{}", legend(palette))?;
    writeln!(out, "{}", summary(m))
}

/// What `write` wrote, as a string. Every writer here writes UTF-8 to a `Vec`, which cannot
/// fail.
fn to_string(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut bytes = Vec::new();
    let _ = write(&mut bytes);
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One CSV field, quoted when it must be.
fn csv_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// CSV: a header, then `from,to,address,probe,outcome` for every probed cell.
pub fn csv(m: &Matrix) -> String {
    to_string(|out| write_csv(m, out))
}

/// [`csv`], written to `out` row by row: the memory it takes does not grow with the number of
/// cells (each source, destination and probe is rendered once; a row is copied from those).
pub fn write_csv(m: &Matrix, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"from,to,address,probe,outcome\n")?;
    let sources: Vec<Cow<'_, str>> = m.sources.iter().map(|s| csv_field(s)).collect();
    // `to,address,` of each destination, and `probe,` of each probe.
    let destinations: Vec<String> = m
        .destinations
        .iter()
        .map(|d| format!("{},{},", csv_field(&d.label), d.address))
        .collect();
    let probes: Vec<String> = m.probes.iter().map(|p| format!("{p},")).collect();
    let mut row = Vec::with_capacity(256);
    each_probed(m, |s, d, p, outcome| {
        row.clear();
        row.extend_from_slice(sources[s].as_bytes());
        row.push(b',');
        row.extend_from_slice(destinations[d].as_bytes());
        row.extend_from_slice(probes[p].as_bytes());
        row.extend_from_slice(outcome.name().as_bytes());
        row.push(b'\n');
        out.write_all(&row)
    })
}

/// Calls `f` with (source, destination, probe, outcome) of every probed cell, in row-major
/// order (as [`Matrix::probed`] yields them), stopping at the first error.
fn each_probed(
    m: &Matrix,
    mut f: impl FnMut(usize, usize, usize, Outcome) -> io::Result<()>,
) -> io::Result<()> {
    let (destinations, probes) = (m.destinations.len(), m.probes.len());
    if destinations == 0 || probes == 0 {
        return Ok(());
    }
    for (i, cell) in m.cells.iter().enumerate() {
        if let Cell::Probed(outcome) = *cell {
            let (s, rest) = (i / (destinations * probes), i % (destinations * probes));
            f(s, rest / probes, rest % probes, outcome)?;
        }
    }
    Ok(())
}

fn json_str(text: &str) -> String {
    // A string always serialises.
    serde_json::to_string(text).unwrap_or_default()
}

/// JSON: the topology, the sources, destinations and probes, replies per probe, and one
/// `{"from", "to", "probe", "outcome"}` record per probed cell.
pub fn json(m: &Matrix) -> String {
    to_string(|out| write_json(m, out))
}

/// [`json()`], written to `out` as it goes: a million cells need no million JSON objects, nor
/// their text, in memory.
pub fn write_json(m: &Matrix, out: &mut impl Write) -> io::Result<()> {
    /// A destination in the header (keys in alphabetical order, as since the first version).
    #[derive(serde::Serialize)]
    struct DestinationRecord<'a> {
        address: std::net::Ipv4Addr,
        label: &'a str,
    }
    /// Replies per probe in the header.
    #[derive(serde::Serialize)]
    struct RepliesRecord {
        probe: String,
        probed: usize,
        reply: usize,
    }
    fn field(out: &mut impl Write, key: &str, value: &impl serde::Serialize) -> io::Result<()> {
        write!(out, "\n  \"{key}\": ")?;
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(b",")
    }
    out.write_all(b"{")?;
    field(out, "file", &m.topology.file)?;
    field(out, "topology", &m.topology.name)?;
    field(out, "fingerprint", &m.topology.fingerprint)?;
    field(out, "seed", &m.seed)?;
    field(out, "sources", &m.sources)?;
    let destinations: Vec<DestinationRecord<'_>> = m
        .destinations
        .iter()
        .map(|d| DestinationRecord {
            address: d.address,
            label: &d.label,
        })
        .collect();
    field(out, "destinations", &destinations)?;
    let probes: Vec<String> = m.probes.iter().map(ToString::to_string).collect();
    field(out, "probes", &probes)?;
    let replies: Vec<RepliesRecord> = m
        .replies()
        .iter()
        .map(|&(probe, reply, probed)| RepliesRecord {
            probe: probe.to_string(),
            probed,
            reply,
        })
        .collect();
    field(out, "replies", &replies)?;
    out.write_all(b"\n  \"cells\": [")?;
    // `"from": "s", "to": ` of each source, `"d", "probe": "p", "outcome": ` of each
    // destination and probe: a record is four copies.
    let sources: Vec<String> = m
        .sources
        .iter()
        .map(|s| format!("\n    {{\"from\": {}, \"to\": ", json_str(s)))
        .collect();
    let destinations: Vec<String> = m.destinations.iter().map(|d| json_str(&d.label)).collect();
    let probes: Vec<String> = m
        .probes
        .iter()
        .map(|p| format!(", \"probe\": \"{p}\", \"outcome\": \""))
        .collect();
    let mut record = Vec::with_capacity(256);
    let mut first = true;
    each_probed(m, |s, d, p, outcome| {
        record.clear();
        if !std::mem::take(&mut first) {
            record.push(b',');
        }
        record.extend_from_slice(sources[s].as_bytes());
        record.extend_from_slice(destinations[d].as_bytes());
        record.extend_from_slice(probes[p].as_bytes());
        record.extend_from_slice(outcome.name().as_bytes());
        record.extend_from_slice(b"\"}");
        out.write_all(&record)
    })?;
    out.write_all(b"\n  ]\n}\n")
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Markdown: a heading, one table per probe, the destinations' addresses and the legend.
pub fn markdown(m: &Matrix) -> String {
    to_string(|out| write_markdown(m, out))
}

/// [`markdown`], written to `out` a row at a time.
pub fn write_markdown(m: &Matrix, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "## Reachability of {} (`{}`)\n",
        md_cell(&m.topology.name),
        md_cell(&m.topology.file)
    )?;
    let mut line = String::new();
    for (p, probe) in m.probes.iter().enumerate() {
        writeln!(out, "### {probe}\n")?;
        line.clear();
        line.push_str("| from \\ to |");
        for d in &m.destinations {
            let _ = write!(line, " {} |", md_cell(&d.label));
        }
        line.push_str("\n|---|");
        line.push_str(&":-:|".repeat(m.destinations.len()));
        line.push('\n');
        out.write_all(line.as_bytes())?;
        for (s, source) in m.sources.iter().enumerate() {
            line.clear();
            let _ = write!(line, "| **{}** |", md_cell(source));
            for d in 0..m.destinations.len() {
                let _ = write!(line, " {} |", mark(m.cell(s, d, p)).0);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    let addresses: Vec<String> = m
        .destinations
        .iter()
        .map(|d| format!("{} `{}`", md_cell(&d.label), d.address))
        .collect();
    writeln!(out, "Destinations: {}.\n", addresses.join(", "))?;
    let causes: Vec<String> = OUTCOMES
        .iter()
        .filter_map(|&o| cause_letter(o).map(|l| format!("{l} {}", cause_words(o))))
        .collect();
    writeln!(
        out,
        "✓ reply, ✗ no reply, because: {}; · the node itself (not probed).\n",
        causes.join(", ")
    )?;
    writeln!(out, "{}", summary(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("pc1"), "pc1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
