//! The SVG of a picture: one self-contained file (no script, no external font or stylesheet),
//! drawn from a [`Layout`]: platform groups as tinted boxes, segments as bus lines with their
//! name and networks, nodes as boxes with their interfaces as ports on the edges, then each
//! traced probe: its path hop by hop in its colour (answers in a second colour), numbered
//! badges, NAT rewrites and drop points noted beside the nodes, and a legend listing every hop
//! with the packet as it crossed that link.

use std::fmt::Write as _;

use super::groups::GroupKind;
use super::layout::{
    Bus, GROUP_SIZE, GroupBox, Layout, Link, NOTE_GAP, NOTE_ROW, NodeBox, Port, SMALL_SIZE,
    TITLE_SIZE, text_width,
};
use super::trace::{DrawnHop, NoteKind, Overlay, packet_words, wrap};
use crate::model::{IfaceId, Network};

/// Characters per line of a note beside a node.
pub(crate) const NOTE_CHARS: usize = 42;
const LEGEND_ROW: f64 = 16.0;
/// Characters per line of the explanation in the legend.
const WHY_CHARS: usize = 110;
const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace";
const DROP: &str = "#e03131";
/// The lines between a node's ports and around its title.
const SEPARATOR: &str = r##"stroke="#dee2e6" stroke-width="1""##;

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

/// One line of the legend below the drawing.
struct LegendRow {
    indent: f64,
    colour: &'static str,
    text: String,
    bold: bool,
}

/// The legend: the network's name, then per trace its title, the start of the explanation
/// when it failed, and every hop with the packet as it crossed that link.
fn legend(net: &Network, overlays: &[Overlay]) -> Vec<LegendRow> {
    let mut rows = vec![LegendRow {
        indent: 0.0,
        colour: "#212529",
        text: format!("{} — drawn by reachlab", net.name),
        bold: true,
    }];
    for (t, overlay) in overlays.iter().enumerate() {
        let (req, ans) = colours(t);
        rows.push(LegendRow {
            indent: 0.0,
            colour: req,
            text: format!("trace {}: {}", t + 1, overlay.title),
            bold: true,
        });
        for (k, line) in overlay.why.iter().enumerate() {
            let prefix = if k == 0 { "why: " } else { "     " };
            for (j, part) in wrap(line.trim(), WHY_CHARS).into_iter().enumerate() {
                let lead = if j == 0 { prefix } else { "     " };
                rows.push(LegendRow {
                    indent: 16.0,
                    colour: "#495057",
                    text: format!("{lead}{part}"),
                    bold: false,
                });
            }
        }
        for hop in &overlay.hops {
            rows.push(LegendRow {
                indent: 16.0,
                colour: if hop.answer { ans } else { req },
                text: hop_words(net, hop),
                bold: false,
            });
        }
    }
    rows
}

/// ` 3  r1:eth1 → web:eth0  TCP SYN …`: a hop's number, link and packet.
fn hop_words(net: &Network, hop: &DrawnHop) -> String {
    let link = |i: IfaceId| {
        let iface = net.interface(i);
        format!("{}:{}", net.node(iface.node).name, iface.name)
    };
    let to = hop.to.map_or_else(|| "✗ (no ARP answer)".to_owned(), link);
    format!(
        "{:>2}  {} → {}  {}",
        hop.number,
        link(hop.from),
        to,
        packet_words(&hop.packet)
    )
}

/// How a text is anchored at its position.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    Start,
    Middle,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
        }
    }
}

/// How a text is drawn.
#[derive(Debug, Clone, Copy)]
struct TextStyle {
    size: f64,
    anchor: Anchor,
    fill: &'static str,
    bold: bool,
}

impl TextStyle {
    /// Regular text at `size`.
    fn new(size: f64, anchor: Anchor, fill: &'static str) -> Self {
        Self {
            size,
            anchor,
            fill,
            bold: false,
        }
    }

    /// Small regular text.
    fn small(anchor: Anchor, fill: &'static str) -> Self {
        Self::new(SMALL_SIZE, anchor, fill)
    }

    /// The same, bold when `bold`.
    fn bold(self, bold: bool) -> Self {
        Self { bold, ..self }
    }
}

/// The SVG document being written.
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

    fn text(&mut self, (x, y): (f64, f64), style: TextStyle, text: &str) {
        let TextStyle {
            size,
            anchor,
            fill,
            bold,
        } = style;
        let anchor = anchor.as_str();
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{weight}>{}</text>"#,
            esc(text)
        );
    }

    /// The opening tag, title, description, the arrow heads of every trace and the white
    /// background.
    fn open(&mut self, net: &Network, traces: usize, width: f64, height: f64) {
        let _ = writeln!(
            self.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">"#
        );
        let _ = writeln!(self.out, "<title>{}</title>", esc(&net.name));
        if let Some(description) = &net.description {
            let _ = writeln!(self.out, "<desc>{}</desc>", esc(description.trim()));
        }
        self.out.push_str("<defs>\n");
        for t in 0..traces {
            let (req, ans) = colours(t);
            for (name, colour) in [("req", req), ("ans", ans)] {
                let _ = writeln!(
                    self.out,
                    r#"<marker id="arrow-{name}-{t}" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
                );
            }
        }
        self.out.push_str("</defs>\n");
        let _ = writeln!(
            self.out,
            r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
        );
    }

    /// Platform groups as tinted boxes with their label, outer first.
    fn groups(&mut self, groups: &[GroupBox]) {
        self.out.push_str("<g id=\"groups\">\n");
        for g in groups {
            let (fill, stroke, label) = group_style(g.kind);
            let _ = writeln!(
                self.out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10" fill="{fill}" fill-opacity="0.75" stroke="{stroke}" stroke-width="1.5" data-kind="{}"/>"#,
                g.x0,
                g.y0,
                g.x1 - g.x0,
                g.y1 - g.y0,
                g.kind.name()
            );
            self.text(
                (g.x0 + 10.0, g.y0 + 15.0),
                TextStyle::new(GROUP_SIZE, Anchor::Start, label).bold(true),
                &g.label,
            );
        }
        self.out.push_str("</g>\n");
    }

    /// The links from ports to buses, under the buses.
    fn links(&mut self, links: &[Option<Link>]) {
        self.out.push_str("<g id=\"links\">\n");
        for link in links.iter().flatten() {
            self.line(
                link.port,
                link.bus,
                r##"stroke="#868e96" stroke-width="1.5""##,
            );
        }
        self.out.push_str("</g>\n");
    }

    /// The segments: bus lines with their label hanging below.
    fn segments(&mut self, buses: &[Bus]) {
        self.out.push_str("<g id=\"segments\">\n");
        for bus in buses {
            self.line(
                (bus.x0, bus.y),
                (bus.x1, bus.y),
                r##"stroke="#343a40" stroke-width="4" stroke-linecap="round""##,
            );
            let _ = writeln!(
                self.out,
                r##"<path d="M{:.1},{:.1} h{:.1} v12 a5,5 0 0 1 -5,5 h{:.1} a5,5 0 0 1 -5,-5 z" fill="#343a40"/>"##,
                bus.label_x0,
                bus.y + 1.0,
                bus.label_w,
                -(bus.label_w - 10.0)
            );
            self.text(
                (bus.label_x0 + bus.label_w / 2.0, bus.y + 13.5),
                TextStyle::small(Anchor::Middle, "#ffffff"),
                &bus.label,
            );
        }
        self.out.push_str("</g>\n");
    }

    fn nodes(&mut self, nodes: &[NodeBox]) {
        self.out.push_str("<g id=\"nodes\">\n");
        for b in nodes {
            self.node(b);
        }
        self.out.push_str("</g>\n");
    }

    /// A node's box: ports above (towards the upstream segment), title, info lines, ports below.
    fn node(&mut self, b: &NodeBox) {
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
            self.out,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="5" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
            b.y, b.w, b.h
        );
        let mut y = b.y + 4.0;
        if !b.top.is_empty() {
            self.ports(&b.top, y + 12.0, (y, y + 15.0));
            y += 17.0;
            self.line((x0, y), (x0 + b.w, y), SEPARATOR);
        }
        self.text(
            (b.x, y + 14.5),
            TextStyle::new(TITLE_SIZE, Anchor::Middle, "#212529").bold(true),
            &b.title,
        );
        y += 19.0;
        for line in &b.info {
            self.text(
                (b.x, y + 10.5),
                TextStyle::small(Anchor::Middle, "#868e96"),
                line,
            );
            y += 14.0;
        }
        if !b.bottom.is_empty() {
            let top = b.y + b.h - 19.0;
            self.line((x0, top), (x0 + b.w, top), SEPARATOR);
            self.ports(&b.bottom, top + 13.0, (top, b.y + b.h));
        }
    }

    /// A row of ports: each one's text at `text_y`, separated by lines from `y0` to `y1`.
    fn ports(&mut self, ports: &[Port], text_y: f64, (y0, y1): (f64, f64)) {
        for (k, p) in ports.iter().enumerate() {
            self.text(
                ((p.x0 + p.x1) / 2.0, text_y),
                TextStyle::small(Anchor::Middle, "#495057"),
                &p.text,
            );
            if k > 0 {
                self.line((p.x0, y0), (p.x0, y1), SEPARATOR);
            }
        }
    }

    /// Every traced probe's hops, in its colours, with numbered badges kept apart.
    fn traces(&mut self, layout: &Layout, overlays: &[Overlay]) {
        let mut badges: Vec<(f64, f64)> = Vec::new();
        for (t, overlay) in overlays.iter().enumerate() {
            let _ = writeln!(self.out, r#"<g id="trace-{}">"#, t + 1);
            for hop in &overlay.hops {
                let Some(points) = hop_path(layout, t, hop) else {
                    continue;
                };
                let (req, ans) = colours(t);
                let (colour, marker) = if hop.answer {
                    (ans, "ans")
                } else {
                    (req, "req")
                };
                let path: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let _ = writeln!(
                    self.out,
                    r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="3" stroke-opacity="0.9" stroke-linejoin="round" marker-end="url(#arrow-{marker}-{t})"/>"#,
                    path.join(" ")
                );
                if hop.to.is_none() {
                    self.cross(points[points.len() - 1], 6.0);
                }
                let spot = badge_spot(&points, &badges);
                badges.push(spot);
                self.badge(spot, hop.number, colour);
            }
            self.out.push_str("</g>\n");
        }
    }

    /// A hop's number in a disc of its colour.
    fn badge(&mut self, (x, y): (f64, f64), number: usize, colour: &'static str) {
        let r = if number >= 10 { 9.5 } else { 8.5 };
        let _ = writeln!(
            self.out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{colour}" stroke="#ffffff" stroke-width="1.5"/>"##
        );
        let size = if number >= 10 { 9.0 } else { 10.0 };
        self.text(
            (x, y + 3.5),
            TextStyle::new(size, Anchor::Middle, "#ffffff").bold(true),
            &number.to_string(),
        );
    }

    /// Where a packet died: a red frame around the node and a ✗ at the port it came in on
    /// (at the box's corner when it came from the node itself).
    fn drop_marks(&mut self, layout: &Layout, overlays: &[Overlay]) {
        for overlay in overlays {
            for note in overlay.notes.iter().filter(|n| n.kind == NoteKind::Drop) {
                let b = &layout.nodes[note.node.index()];
                let _ = writeln!(
                    self.out,
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
                self.cross(at, 7.0);
            }
        }
    }

    /// The notes beside a node, in a white box right of it, each line in the colour of what
    /// it tells.
    fn note_box(&mut self, b: &NodeBox, lines: &[(usize, NoteKind, String)]) {
        let x = b.x + b.w / 2.0 + NOTE_GAP;
        let w = lines
            .iter()
            .map(|(_, _, l)| text_width(l, SMALL_SIZE))
            .fold(0.0, f64::max)
            + 8.0;
        let h = lines.len() as f64 * NOTE_ROW + 6.0;
        let y0 = b.y + b.h / 2.0 - h / 2.0;
        let _ = writeln!(
            self.out,
            r##"<rect x="{x:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" rx="4" fill="#ffffff" fill-opacity="0.92" stroke="#ced4da"/>"##
        );
        for (k, (t, kind, line)) in lines.iter().enumerate() {
            let (colour, bold) = match kind {
                NoteKind::Drop => (DROP, true),
                NoteKind::Refused => ("#c92a2a", false),
                NoteKind::Delivered => ("#2b8a3e", false),
                NoteKind::Nat => (colours(*t).0, false),
            };
            self.text(
                (x + 4.0, y0 + 3.0 + NOTE_ROW * (k as f64 + 1.0) - 3.0),
                TextStyle::small(Anchor::Start, colour).bold(bold),
                line,
            );
        }
    }

    fn legend(&mut self, rows: &[LegendRow], top: f64) {
        self.out.push_str("<g id=\"legend\">\n");
        for (k, row) in rows.iter().enumerate() {
            let y = top + LEGEND_ROW * (k as f64 + 1.0);
            self.text(
                (24.0 + row.indent, y),
                TextStyle::small(Anchor::Start, row.colour).bold(row.bold),
                &row.text,
            );
        }
        self.out.push_str("</g>\n");
    }

    /// A red ✗ centred at `at`.
    fn cross(&mut self, (x, y): (f64, f64), r: f64) {
        let style = format!(r#"stroke="{DROP}" stroke-width="3.5" stroke-linecap="round""#);
        self.line((x - r, y - r), (x + r, y + r), &style);
        self.line((x - r, y + r), (x + r, y - r), &style);
    }
}

/// The whole SVG document.
pub(crate) fn svg(net: &Network, layout: &Layout, overlays: &[Overlay]) -> String {
    let legend = legend(net, overlays);
    let legend_w = legend
        .iter()
        .map(|row| row.indent + text_width(&row.text, SMALL_SIZE))
        .fold(0.0, f64::max);
    let width = layout.width.max(legend_w + 48.0).ceil();
    let legend_top = layout.height + 8.0;
    let height = (legend_top + legend.len() as f64 * LEGEND_ROW + 16.0).ceil();

    let mut c = Canvas { out: String::new() };
    c.open(net, overlays.len(), width, height);
    c.groups(&layout.groups);
    c.links(&layout.links);
    c.segments(&layout.buses);
    c.nodes(&layout.nodes);
    c.traces(layout, overlays);
    c.out.push_str("<g id=\"notes\">\n");
    c.drop_marks(layout, overlays);
    for (b, lines) in layout
        .nodes
        .iter()
        .zip(note_lines(net.nodes.len(), overlays))
    {
        if !lines.is_empty() {
            c.note_box(b, &lines);
        }
    }
    c.out.push_str("</g>\n");
    c.legend(&legend, legend_top);
    c.out.push_str("</svg>\n");
    c.out
}

/// The polyline of hop `hop` of trace `t`: from the sender's port to its bus, then along to
/// the receiver's port (when someone answered ARP). Requests run left of and above the links,
/// answers right and below, each further trace a little further out. `None` when the sending
/// interface has no link drawn.
fn hop_path(layout: &Layout, t: usize, hop: &DrawnHop) -> Option<Vec<(f64, f64)>> {
    let link = |i: IfaceId| layout.links.get(i.index()).copied().flatten();
    let from = link(hop.from)?;
    let spread = 4.0 + 7.0 * (t % TRACE_COLOURS.len()) as f64;
    let o = if hop.answer { spread } else { -spread };
    let mut points = vec![
        (from.port.0 + o, from.port.1),
        (from.bus.0 + o, from.bus.1 + o),
    ];
    if let Some(to) = hop.to.and_then(link) {
        points.push((to.bus.0 + o, to.bus.1 + o));
        points.push((to.port.0 + o, to.port.1));
    }
    Some(points)
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
