//! A finished matrix as a coloured terminal grid, CSV, JSON and Markdown.
//!
//! The grid and the Markdown tables have one table per probe, sources as rows and destinations
//! as columns; a cell is `✓` for a reply, `✗` and a one-letter cause otherwise, `·` where the
//! destination is the source itself. CSV and JSON list one record per probed cell, with the
//! outcome's name as topology files write it (`reply`, `timeout`, `no-route`, ...).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Cell, Matrix, OUTCOMES, cause_letter, cause_words};
use crate::model::Outcome;
use crate::render::Palette;

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

/// `1 source`, `3 sources`.
pub(crate) fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
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
    let mut out = String::new();
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
    let _ = writeln!(
        out,
        "{bold}{}{bold:#} ({}): {} × {}, seed {}",
        m.topology.name,
        m.topology.file,
        counted(m.sources.len(), "source"),
        counted(m.destinations.len(), "destination"),
        m.seed
    );
    for (p, probe) in m.probes.iter().enumerate() {
        let mut header = format!("{bold}{:<label_width$}{bold:#}", probe.to_string());
        for d in 1..=m.destinations.len() {
            let _ = write!(header, " {d:<width$}");
        }
        let _ = writeln!(out, "\n{}", header.trim_end());
        for (s, source) in m.sources.iter().enumerate() {
            let number = numbers[s].map_or_else(String::new, |n| (n + 1).to_string());
            let mut line = format!("{number:>digits$}  {source:<name_width$}");
            for d in 0..m.destinations.len() {
                let (shown, w) = styled(m.cell(s, d, p), palette);
                let _ = write!(line, " {shown}{}", " ".repeat(width - w));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let _ = writeln!(out, "\n{bold}destinations{bold:#}");
    let label_len = m
        .destinations
        .iter()
        .map(|d| d.label.chars().count())
        .max()
        .unwrap_or(0);
    for (d, column) in m.destinations.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>digits$}  {:<label_len$}  {}",
            d + 1,
            column.label,
            column.address
        );
    }
    let _ = writeln!(out, "\n{}", legend(palette));
    let _ = writeln!(out, "{}", summary(m));
    out
}

/// One CSV field, quoted when it must be.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// CSV: a header, then `from,to,address,probe,outcome` for every probed cell.
pub fn csv(m: &Matrix) -> String {
    let mut out = String::from("from,to,address,probe,outcome\n");
    for (from, to, probe, outcome) in m.probed() {
        let _ = writeln!(
            out,
            "{},{},{},{probe},{}",
            csv_field(from),
            csv_field(&to.label),
            to.address,
            outcome.name()
        );
    }
    out
}

fn json_str(text: &str) -> String {
    // A string always serialises.
    serde_json::to_string(text).unwrap_or_default()
}

/// JSON: the topology, the sources, destinations and probes, replies per probe, and one
/// `{"from", "to", "probe", "outcome"}` record per probed cell. Written as it goes: a million
/// cells need no million JSON objects in memory.
pub fn json(m: &Matrix) -> String {
    let fields = [
        ("file", json!(m.topology.file)),
        ("topology", json!(m.topology.name)),
        ("fingerprint", json!(m.topology.fingerprint)),
        ("seed", json!(m.seed)),
        ("sources", json!(m.sources)),
        (
            "destinations",
            m.destinations
                .iter()
                .map(|d| json!({"label": d.label, "address": d.address.to_string()}))
                .collect(),
        ),
        (
            "probes",
            m.probes.iter().map(|p| json!(p.to_string())).collect(),
        ),
        (
            "replies",
            m.replies()
                .iter()
                .map(|(probe, reply, probed)| {
                    json!({"probe": probe.to_string(), "reply": reply, "probed": probed})
                })
                .collect(),
        ),
    ];
    let mut out = String::from("{");
    for (key, value) in fields {
        let value: Value = value;
        let _ = write!(
            out,
            "\n  \"{key}\": {},",
            serde_json::to_string(&value).unwrap_or_default()
        );
    }
    out.push_str("\n  \"cells\": [");
    for (i, (from, to, probe, outcome)) in m.probed().enumerate() {
        let _ = write!(
            out,
            "{}\n    {{\"from\": {}, \"to\": {}, \"probe\": \"{probe}\", \"outcome\": \"{}\"}}",
            if i == 0 { "" } else { "," },
            json_str(from),
            json_str(&to.label),
            outcome.name()
        );
    }
    out.push_str("\n  ]\n}\n");
    out
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Markdown: a heading, one table per probe, the destinations' addresses and the legend.
pub fn markdown(m: &Matrix) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Reachability of {} (`{}`)\n",
        md_cell(&m.topology.name),
        md_cell(&m.topology.file)
    );
    for (p, probe) in m.probes.iter().enumerate() {
        let _ = writeln!(out, "### {probe}\n");
        out.push_str("| from \\ to |");
        for d in &m.destinations {
            let _ = write!(out, " {} |", md_cell(&d.label));
        }
        out.push_str("\n|---|");
        out.push_str(&":-:|".repeat(m.destinations.len()));
        out.push('\n');
        for (s, source) in m.sources.iter().enumerate() {
            let _ = write!(out, "| **{}** |", md_cell(source));
            for d in 0..m.destinations.len() {
                let _ = write!(out, " {} |", mark(m.cell(s, d, p)).0);
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let addresses: Vec<String> = m
        .destinations
        .iter()
        .map(|d| format!("{} `{}`", md_cell(&d.label), d.address))
        .collect();
    let _ = writeln!(out, "Destinations: {}.\n", addresses.join(", "));
    let causes: Vec<String> = OUTCOMES
        .iter()
        .filter_map(|&o| cause_letter(o).map(|l| format!("{l} {}", cause_words(o))))
        .collect();
    let _ = writeln!(
        out,
        "✓ reply, ✗ no reply, because: {}; · the node itself (not probed).\n",
        causes.join(", ")
    );
    let _ = writeln!(out, "{}", summary(m));
    out
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
