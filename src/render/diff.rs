//! `reachlab diff` as text: what was compared, each changed flow with the cause on each side,
//! grouped by direction, the nodes only one version has, and a summary line.

use std::fmt::Write as _;

use super::Palette;
use crate::diff::{Diff, Direction, FlowChange, names};
use crate::matrix::counted;

/// The report: what was compared (the probes and where they come from, the DNAT addresses
/// and expectations' targets probed besides the destinations); each changed flow with the
/// cause on each side, grouped by direction; the nodes only one version has; a summary line.
pub fn text(d: &Diff, palette: Palette) -> String {
    let mut out = String::new();
    let (bold, dim) = (palette.bold(), palette.dim());
    let _ = writeln!(
        out,
        "{bold}{}{bold:#} → {bold}{}{bold:#}: {} × {} × {}, {} compared",
        d.old.label,
        d.new.label,
        counted(d.sources, "source"),
        counted(d.destinations, "destination"),
        counted(d.probes.len(), "probe"),
        counted(d.compared, "flow"),
    );
    let _ = writeln!(
        out,
        "  probes: {} ({})",
        names(&d.probes).join(", "),
        d.probes_from_words()
    );
    for e in &d.entrances {
        let _ = writeln!(
            out,
            "  DNAT address {} ({}): {}, from every source",
            e.address,
            e.node,
            names(&e.probes).join(", ")
        );
    }
    for t in &d.expected {
        let _ = writeln!(
            out,
            "  expectations to {}: {}, from {}",
            t.to,
            names(&t.probes).join(", "),
            t.from.join(", ")
        );
    }
    let groups = [
        (Direction::Opened, "opened (now reply)", '+', palette.ok()),
        (
            Direction::Closed,
            "closed (no reply any more)",
            '-',
            palette.error(),
        ),
        (
            Direction::Changed,
            "failing differently",
            '~',
            palette.warning(),
        ),
    ];
    for (direction, title, sign, style) in groups {
        let flows: Vec<&FlowChange> = d
            .changes
            .iter()
            .filter(|c| c.direction() == direction)
            .collect();
        if flows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{bold}{title}{bold:#}: {}", flows.len());
        for c in flows {
            let address = if c.old.address == c.new.address {
                c.old.address.to_string()
            } else {
                format!("{} → {}", c.old.address, c.new.address)
            };
            let to = if c.to == c.old.address.to_string() {
                address
            } else {
                format!("{} ({address})", c.to)
            };
            let _ = writeln!(
                out,
                "  {style}{sign}{style:#} {} → {to}  {}  {} → {style}{}{style:#}",
                c.from, c.probe, c.old.outcome, c.new.outcome
            );
            for (when, end) in [("before", &c.old), ("after", &c.new)] {
                if let Some(cause) = &end.cause {
                    let _ = writeln!(out, "      {when}: {}", cause.line);
                    if let Some(origin) = &cause.origin {
                        let _ = writeln!(out, "      {dim}--> {origin}{dim:#}");
                    }
                }
            }
        }
    }
    for (label, nodes) in [(&d.old.label, &d.removed), (&d.new.label, &d.added)] {
        if !nodes.is_empty() {
            let _ = writeln!(
                out,
                "\n{bold}nodes only in {label}{bold:#}: {}",
                nodes.join(", ")
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if d.changes.is_empty() {
            format!("no flow changed ({} compared)", d.compared)
        } else {
            format!(
                "{} of {} changed: {} opened, {} closed, {} failing differently",
                d.changes.len(),
                counted(d.compared, "flow"),
                d.count(Direction::Opened),
                d.count(Direction::Closed),
                d.count(Direction::Changed)
            )
        }
    );
    out
}
