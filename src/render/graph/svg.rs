//! The SVG of a picture: one self-contained file (no script, no external font or stylesheet),
//! drawn from a [`Layout`]: platform groups as tinted boxes, segments as bus lines with their
//! name and networks, nodes as boxes with their interfaces as ports on the edges, then each
//! traced probe: its path hop by hop in its colour (answers in a second colour), numbered
//! badges, NAT rewrites and drop points noted beside the nodes, and a legend listing every hop
//! with the packet as it crossed that link.

use std::fmt::Write as _;

use super::groups::GroupKind;
use super::layout::{
    GROUP_SIZE, Layout, NOTE_GAP, NOTE_ROW, NodeBox, SMALL_SIZE, TITLE_SIZE, text_width,
};
use super::trace::{NoteKind, Overlay, packet_words, wrap};
use crate::model::Network;

/// Characters per line of a note beside a node.
pub(crate) const NOTE_CHARS: usize = 42;
const LEGEND_ROW: f64 = 16.0;
/// Characters per line of the explanation in the legend.
const WHY_CHARS: usize = 110;
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";
const DROP: &str = "#e03131";

/// (request, answer) colours of the first, second, … trace.
const TRACE_COLOURS: [(&str, &str); 3] = [
    ("#e8590c", "#0c8599"),
    ("#c2255c", "#6741d9"),
    ("#5c940d", "#364fc7"),
];

fn colours(trace: usize) -> (&'static str, &'static str) {
    TRACE_COLOURS[trace % TRACE_COLOURS.len()]
}

/// (fill, stroke, label) of a group box.
fn group_style(kind: GroupKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        GroupKind::VirtualBox => ("#f3f0ff", "#9775fa", "#5f3dc4"),
        GroupKind::Docker => ("#e3fafc", "#3bc9db", "#0b7285"),
        GroupKind::OpenStack => ("#fff9db", "#fab005", "#e67700"),
        GroupKind::Kubernetes => ("#e7f5ff", "#74c0fc", "#1864ab"),
        GroupKind::KubeNode => ("#ebfbee", "#69db7c", "#2b8a3e"),
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Lines of the notes beside each node, with the kind and trace of each line.
pub(crate) fn note_lines(
    nodes: usize,
    overlays: &[Overlay],
) -> Vec<Vec<(usize, NoteKind, String)>> {
    let mut out = vec![Vec::new(); nodes];
    let tagged = overlays.len() > 1;
    for (t, overlay) in overlays.iter().enumerate() {
        for note in &overlay.notes {
            let text = if tagged {
                format!("[{}] {}", t + 1, note.text)
            } else {
                note.text.clone()
            };
            for line in wrap(&text, NOTE_CHARS) {
                out[note.node.index()].push((t, note.kind, line));
            }
        }
    }
    out
}

struct Canvas {
    out: String,
}

impl Canvas {
    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
        let _ = writeln!(
            self.out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: f64,
        y: f64,
        size: f64,
        anchor: &str,
        fill: &str,
        bold: bool,
        text: &str,
    ) {
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{weight}>{}</text>"#,
            esc(text)
        );
    }
}

/// The whole SVG document.
pub(crate) fn svg(net: &Network, layout: &Layout, overlays: &[Overlay]) -> String {
    let notes = note_lines(net.nodes.len(), overlays);
    // The legend below the drawing.
    let mut legend: Vec<(f64, String, String, bool)> = Vec::new(); // (indent, colour, text, bold)
    legend.push((
        0.0,
        "#212529".into(),
        format!("{} — drawn by reachlab", net.name),
        true,
    ));
    for (t, overlay) in overlays.iter().enumerate() {
        let (req, ans) = colours(t);
        legend.push((
            0.0,
            req.into(),
            format!("trace {}: {}", t + 1, overlay.title),
            true,
        ));
        for (k, line) in overlay.why.iter().enumerate() {
            let prefix = if k == 0 { "why: " } else { "     " };
            for (j, part) in wrap(line.trim(), WHY_CHARS).into_iter().enumerate() {
                let lead = if j == 0 { prefix } else { "     " };
                legend.push((16.0, "#495057".into(), format!("{lead}{part}"), false));
            }
        }
        for hop in &overlay.hops {
            let link = |i: crate::model::IfaceId| {
                let iface = net.interface(i);
                format!("{}:{}", net.node(iface.node).name, iface.name)
            };
            let to = hop.to.map_or_else(|| "✗ (no ARP answer)".to_owned(), link);
            legend.push((
                16.0,
                if hop.answer { ans } else { req }.into(),
                format!(
                    "{:>2}  {} → {}  {}",
                    hop.number,
                    link(hop.from),
                    to,
                    packet_words(&hop.packet)
                ),
                false,
            ));
        }
    }
    let legend_w = legend
        .iter()
        .map(|(indent, _, text, _)| indent + text_width(text, SMALL_SIZE))
        .fold(0.0, f64::max);
    let width = layout.width.max(legend_w + 48.0).ceil();
    let legend_top = layout.height + 8.0;
    let height = (legend_top + legend.len() as f64 * LEGEND_ROW + 16.0).ceil();

    let mut c = Canvas { out: String::new() };
    let _ = writeln!(
        c.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">"#
    );
    let _ = writeln!(c.out, "<title>{}</title>", esc(&net.name));
    if let Some(description) = &net.description {
        let _ = writeln!(c.out, "<desc>{}</desc>", esc(description.trim()));
    }
    c.out.push_str("<defs>\n");
    for t in 0..overlays.len() {
        let (req, ans) = colours(t);
        for (name, colour) in [("req", req), ("ans", ans)] {
            let _ = writeln!(
                c.out,
                r#"<marker id="arrow-{name}-{t}" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
            );
        }
    }
    c.out.push_str("</defs>\n");
    let _ = writeln!(
        c.out,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );

    // Platform groups, outer first.
    c.out.push_str("<g id=\"groups\">\n");
    for g in &layout.groups {
        let (fill, stroke, label) = group_style(g.kind);
        let _ = writeln!(
            c.out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10" fill="{fill}" fill-opacity="0.75" stroke="{stroke}" stroke-width="1.5" data-kind="{}"/>"#,
            g.x0,
            g.y0,
            g.x1 - g.x0,
            g.y1 - g.y0,
            g.kind.name()
        );
        c.text(
            g.x0 + 10.0,
            g.y0 + 15.0,
            GROUP_SIZE,
            "start",
            label,
            true,
            &g.label,
        );
    }
    c.out.push_str("</g>\n");

    // Links, then buses over them.
    c.out.push_str("<g id=\"links\">\n");
    for link in layout.links.iter().flatten() {
        c.line(
            link.port,
            link.bus,
            r##"stroke="#868e96" stroke-width="1.5""##,
        );
    }
    c.out.push_str("</g>\n<g id=\"segments\">\n");
    for bus in &layout.buses {
        c.line(
            (bus.x0, bus.y),
            (bus.x1, bus.y),
            r##"stroke="#343a40" stroke-width="4" stroke-linecap="round""##,
        );
        let _ = writeln!(
            c.out,
            r##"<path d="M{:.1},{:.1} h{:.1} v12 a5,5 0 0 1 -5,5 h{:.1} a5,5 0 0 1 -5,-5 z" fill="#343a40"/>"##,
            bus.label_x0,
            bus.y + 1.0,
            bus.label_w,
            -(bus.label_w - 10.0)
        );
        c.text(
            bus.label_x0 + bus.label_w / 2.0,
            bus.y + 13.5,
            SMALL_SIZE,
            "middle",
            "#ffffff",
            false,
            &bus.label,
        );
    }
    c.out.push_str("</g>\n<g id=\"nodes\">\n");
    for b in &layout.nodes {
        node(&mut c, b);
    }
    c.out.push_str("</g>\n");

    // Traces.
    let mut badges: Vec<(f64, f64)> = Vec::new();
    for (t, overlay) in overlays.iter().enumerate() {
        let (req, ans) = colours(t);
        let _ = writeln!(c.out, r#"<g id="trace-{}">"#, t + 1);
        for hop in &overlay.hops {
            let Some(from) = layout.links.get(hop.from.index()).copied().flatten() else {
                continue;
            };
            // Requests left of and above the links, answers right and below; each further
            // trace a little further out.
            let spread = 4.0 + 7.0 * (t % TRACE_COLOURS.len()) as f64;
            let (colour, marker, o) = if hop.answer {
                (ans, format!("arrow-ans-{t}"), spread)
            } else {
                (req, format!("arrow-req-{t}"), -spread)
            };
            let mut points = vec![
                (from.port.0 + o, from.port.1),
                (from.bus.0 + o, from.bus.1 + o),
            ];
            if let Some(to) = hop
                .to
                .and_then(|i| layout.links.get(i.index()).copied().flatten())
            {
                points.push((to.bus.0 + o, to.bus.1 + o));
                points.push((to.port.0 + o, to.port.1));
            }
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                c.out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="3" stroke-opacity="0.9" stroke-linejoin="round" marker-end="url(#{marker})"/>"#,
                path.join(" ")
            );
            if hop.to.is_none() {
                cross(&mut c, points[points.len() - 1], 6.0);
            }
            let (bx, by) = badge_spot(&points, &badges);
            badges.push((bx, by));
            let r = if hop.number >= 10 { 9.5 } else { 8.5 };
            let _ = writeln!(
                c.out,
                r##"<circle cx="{bx:.1}" cy="{by:.1}" r="{r}" fill="{colour}" stroke="#ffffff" stroke-width="1.5"/>"##
            );
            c.text(
                bx,
                by + 3.5,
                if hop.number >= 10 { 9.0 } else { 10.0 },
                "middle",
                "#ffffff",
                true,
                &hop.number.to_string(),
            );
        }
        c.out.push_str("</g>\n");
    }

    // Drop points and notes.
    c.out.push_str("<g id=\"notes\">\n");
    for overlay in overlays {
        for note in overlay.notes.iter().filter(|n| n.kind == NoteKind::Drop) {
            let b = &layout.nodes[note.node.index()];
            let _ = writeln!(
                c.out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="none" stroke="{DROP}" stroke-width="2.5"/>"#,
                b.x - b.w / 2.0 - 3.0,
                b.y - 3.0,
                b.w + 6.0,
                b.h + 6.0
            );
            let at = note
                .in_iface
                .and_then(|i| layout.links.get(i.index()).copied().flatten())
                .map_or((b.x - b.w / 2.0 - 3.0, b.y - 3.0), |l| l.port);
            cross(&mut c, at, 7.0);
        }
    }
    for (i, lines) in notes.iter().enumerate() {
        if lines.is_empty() {
            continue;
        }
        let b = &layout.nodes[i];
        let x = b.x + b.w / 2.0 + NOTE_GAP;
        let w = lines
            .iter()
            .map(|(_, _, l)| text_width(l, SMALL_SIZE))
            .fold(0.0, f64::max)
            + 8.0;
        let h = lines.len() as f64 * NOTE_ROW + 6.0;
        let y0 = b.y + b.h / 2.0 - h / 2.0;
        let _ = writeln!(
            c.out,
            r##"<rect x="{x:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" rx="4" fill="#ffffff" fill-opacity="0.92" stroke="#ced4da"/>"##
        );
        for (k, (t, kind, line)) in lines.iter().enumerate() {
            let (colour, bold) = match kind {
                NoteKind::Drop => (DROP, true),
                NoteKind::Refused => ("#c92a2a", false),
                NoteKind::Delivered => ("#2b8a3e", false),
                NoteKind::Nat => (colours(*t).0, false),
            };
            c.text(
                x + 4.0,
                y0 + 3.0 + NOTE_ROW * (k as f64 + 1.0) - 3.0,
                SMALL_SIZE,
                "start",
                colour,
                bold,
                line,
            );
        }
    }
    c.out.push_str("</g>\n<g id=\"legend\">\n");
    for (k, (indent, colour, text, bold)) in legend.iter().enumerate() {
        let y = legend_top + LEGEND_ROW * (k as f64 + 1.0);
        c.text(24.0 + indent, y, SMALL_SIZE, "start", colour, *bold, text);
    }
    c.out.push_str("</g>\n</svg>\n");
    c.out
}

/// A red ✗ centred at `at`.
fn cross(c: &mut Canvas, (x, y): (f64, f64), r: f64) {
    let style = format!(r#"stroke="{DROP}" stroke-width="3.5" stroke-linecap="round""#);
    c.line((x - r, y - r), (x + r, y + r), &style);
    c.line((x - r, y + r), (x + r, y - r), &style);
}

/// Where a hop's badge goes: on its first leg, else along the path, away from other badges.
fn badge_spot(points: &[(f64, f64)], taken: &[(f64, f64)]) -> (f64, f64) {
    let free = |p: (f64, f64)| taken.iter().all(|q| (p.0 - q.0).hypot(p.1 - q.1) >= 19.0);
    let lerp =
        |a: (f64, f64), b: (f64, f64), t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    let mut candidates = Vec::new();
    for leg in points.windows(2) {
        for t in [0.5, 0.3, 0.7, 0.15, 0.85] {
            candidates.push(lerp(leg[0], leg[1], t));
        }
    }
    candidates
        .iter()
        .copied()
        .find(|&p| free(p))
        .or_else(|| candidates.first().copied())
        .unwrap_or((0.0, 0.0))
}

fn node(c: &mut Canvas, b: &NodeBox) {
    let (fill, stroke, width) = if b.router {
        ("#f8f9fa", "#1c7ed6", 1.8)
    } else {
        ("#ffffff", "#495057", 1.3)
    };
    let dash = if b.generated {
        r#" stroke-dasharray="5 3""#
    } else {
        ""
    };
    let x0 = b.x - b.w / 2.0;
    let _ = writeln!(
        c.out,
        r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="5" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
        b.y, b.w, b.h
    );
    let separator = r##"stroke="#dee2e6" stroke-width="1""##;
    let mut y = b.y + 4.0;
    if !b.top.is_empty() {
        for (k, p) in b.top.iter().enumerate() {
            c.text(
                (p.x0 + p.x1) / 2.0,
                y + 12.0,
                SMALL_SIZE,
                "middle",
                "#495057",
                false,
                &p.text,
            );
            if k > 0 {
                c.line((p.x0, y), (p.x0, y + 15.0), separator);
            }
        }
        y += 17.0;
        c.line((x0, y), (x0 + b.w, y), separator);
    }
    c.text(
        b.x,
        y + 14.5,
        TITLE_SIZE,
        "middle",
        "#212529",
        true,
        &b.title,
    );
    y += 19.0;
    for line in &b.info {
        c.text(b.x, y + 10.5, SMALL_SIZE, "middle", "#868e96", false, line);
        y += 14.0;
    }
    if !b.bottom.is_empty() {
        let top = b.y + b.h - 19.0;
        c.line((x0, top), (x0 + b.w, top), separator);
        for (k, p) in b.bottom.iter().enumerate() {
            c.text(
                (p.x0 + p.x1) / 2.0,
                top + 13.0,
                SMALL_SIZE,
                "middle",
                "#495057",
                false,
                &p.text,
            );
            if k > 0 {
                c.line((p.x0, top), (p.x0, b.y + b.h), separator);
            }
        }
    }
}
