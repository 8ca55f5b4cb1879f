//! The picture as text for other tools: Graphviz `dot` (clusters for platform groups) and a
//! Mermaid `flowchart` (subgraphs), with the traced hops as numbered arrows and the NAT and drop
//! notes as note shapes tied to their node. The layout is left to those tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::groups::{Platforms, Vertex};
use super::layout::segment_label;
use super::trace::{NoteKind, Overlay};
use crate::model::Network;

const TRACE_COLOURS: [(&str, &str); 3] = [
    ("#e8590c", "#0c8599"),
    ("#c2255c", "#6741d9"),
    ("#5c940d", "#364fc7"),
];

/// Per vertex: its innermost group, if any.
fn innermost(platforms: &Platforms) -> BTreeMap<Vertex, usize> {
    let mut out = BTreeMap::new();
    // Groups come outer first: a later group containing a vertex is further in.
    for (g, group) in platforms.groups.iter().enumerate() {
        for &v in &group.members {
            out.insert(v, g);
        }
    }
    out
}

/// The second line of a node's label: its roles, `router`, `windows`.
fn node_info(net: &Network, platforms: &Platforms, i: usize) -> String {
    let node = &net.nodes[i];
    let mut kind: Vec<&str> = Vec::new();
    if node.os == crate::model::OsProfile::Windows {
        kind.push("windows");
    }
    let roles = platforms.roles.get(i).map_or(&[][..], Vec::as_slice);
    kind.extend(roles.iter().copied());
    if node.forwarding && roles.is_empty() {
        kind.push("router");
    }
    kind.join(" · ")
}

fn dot_str(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz `dot` source.
pub(crate) fn dot(net: &Network, platforms: &Platforms, overlays: &[Overlay]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph \"{}\" {{", dot_str(&net.name));
    let _ = writeln!(
        out,
        "  graph [fontname=\"monospace\", fontsize=11, label=\"{} — drawn by reachlab\", labelloc=t, newrank=true];",
        dot_str(&net.name)
    );
    out.push_str("  node [fontname=\"monospace\", fontsize=11, shape=box, style=rounded];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=9, color=\"#868e96\"];\n");
    let inner = innermost(platforms);
    let vertex_line = |v: Vertex| -> String {
        match v {
            Vertex::Node(i) => {
                let node = &net.nodes[i];
                let info = node_info(net, platforms, i);
                let label = if info.is_empty() {
                    dot_str(&node.name)
                } else {
                    format!("{}\\n{}", dot_str(&node.name), dot_str(&info))
                };
                let style = if node.forwarding {
                    ", color=\"#1c7ed6\", penwidth=1.8"
                } else {
                    ""
                };
                format!("n{i} [label=\"{label}\"{style}];")
            }
            Vertex::Segment(s) => format!(
                "s{s} [label=\"{}\", shape=box, style=\"rounded,filled\", fillcolor=\"#343a40\", fontcolor=white, height=0.3];",
                dot_str(&segment_label(net, s))
            ),
        }
    };
    // Clusters, nested.
    fn cluster(
        out: &mut String,
        g: usize,
        depth: usize,
        platforms: &Platforms,
        inner: &BTreeMap<Vertex, usize>,
        vertex_line: &dyn Fn(Vertex) -> String,
    ) {
        let pad = "  ".repeat(depth + 1);
        let group = &platforms.groups[g];
        let (fill, stroke) = match group.kind {
            super::groups::GroupKind::VirtualBox => ("#f3f0ff", "#9775fa"),
            super::groups::GroupKind::Docker => ("#e3fafc", "#3bc9db"),
            super::groups::GroupKind::OpenStack => ("#fff9db", "#fab005"),
            super::groups::GroupKind::Kubernetes => ("#e7f5ff", "#74c0fc"),
            super::groups::GroupKind::KubeNode => ("#ebfbee", "#69db7c"),
        };
        let _ = writeln!(out, "{pad}subgraph cluster_{g} {{");
        let _ = writeln!(
            out,
            "{pad}  label=\"{}\"; style=\"rounded,filled\"; fillcolor=\"{fill}\"; color=\"{stroke}\";",
            dot_str(&group.label)
        );
        for &v in &group.members {
            if inner.get(&v) == Some(&g) {
                let _ = writeln!(out, "{pad}  {}", vertex_line(v));
            }
        }
        for (h, other) in platforms.groups.iter().enumerate() {
            if other.parent == Some(g) {
                cluster(out, h, depth + 1, platforms, inner, vertex_line);
            }
        }
        let _ = writeln!(out, "{pad}}}");
    }
    for (g, group) in platforms.groups.iter().enumerate() {
        if group.parent.is_none() {
            cluster(&mut out, g, 0, platforms, &inner, &vertex_line);
        }
    }
    for i in 0..net.nodes.len() {
        if !inner.contains_key(&Vertex::Node(i)) {
            let _ = writeln!(out, "  {}", vertex_line(Vertex::Node(i)));
        }
    }
    for s in 0..net.segments.len() {
        if !inner.contains_key(&Vertex::Segment(s)) {
            let _ = writeln!(out, "  {}", vertex_line(Vertex::Segment(s)));
        }
    }
    for iface in &net.interfaces {
        let label = match iface.primary_address() {
            Some(a) => format!("{}\\n{a}", dot_str(&iface.name)),
            None => dot_str(&iface.name),
        };
        let _ = writeln!(
            out,
            "  n{} -- s{} [label=\"{label}\"];",
            iface.node.index(),
            iface.segment.index()
        );
    }
    for (t, overlay) in overlays.iter().enumerate() {
        let (req, ans) = TRACE_COLOURS[t % TRACE_COLOURS.len()];
        let _ = writeln!(out, "  // trace {}: {}", t + 1, overlay.title);
        for hop in &overlay.hops {
            let colour = if hop.answer { ans } else { req };
            let from = net.interface(hop.from).node.index();
            let target = match hop.to {
                Some(to) => format!("n{}", net.interface(to).node.index()),
                None => format!("s{}", net.interface(hop.from).segment.index()),
            };
            let _ = writeln!(
                out,
                "  n{from} -- {target} [dir=forward, color=\"{colour}\", fontcolor=\"{colour}\", penwidth=2.5, label=\"{}\", constraint=false];",
                hop.number
            );
        }
        for (k, note) in overlay.notes.iter().enumerate() {
            let colour = match note.kind {
                NoteKind::Drop | NoteKind::Refused => "#e03131",
                NoteKind::Delivered => "#2b8a3e",
                NoteKind::Nat => req,
            };
            let _ = writeln!(
                out,
                "  t{t}_note{k} [shape=note, label=\"{}\", color=\"{colour}\", fontcolor=\"{colour}\"];",
                dot_str(&note.text)
            );
            let _ = writeln!(
                out,
                "  n{} -- t{t}_note{k} [style=dotted, color=\"{colour}\", constraint=false];",
                note.node.index()
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Text for a Mermaid label in double quotes.
fn mermaid_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid flowchart.
pub(crate) fn mermaid(net: &Network, platforms: &Platforms, overlays: &[Overlay]) -> String {
    let mut out = String::from("flowchart TB\n");
    let _ = writeln!(
        out,
        "  %% {} — drawn by reachlab",
        net.name.replace('\n', " ")
    );
    let inner = innermost(platforms);
    let vertex_line = |v: Vertex| -> String {
        match v {
            Vertex::Node(i) => {
                let info = node_info(net, platforms, i);
                let name = mermaid_str(&net.nodes[i].name);
                if info.is_empty() {
                    format!("n{i}[\"{name}\"]")
                } else {
                    format!("n{i}[\"{name}<br/>{}\"]", mermaid_str(&info))
                }
            }
            Vertex::Segment(s) => {
                format!("s{s}([\"{}\"])", mermaid_str(&segment_label(net, s)))
            }
        }
    };
    fn subgraph(
        out: &mut String,
        g: usize,
        depth: usize,
        platforms: &Platforms,
        inner: &BTreeMap<Vertex, usize>,
        vertex_line: &dyn Fn(Vertex) -> String,
    ) {
        let pad = "  ".repeat(depth + 1);
        let _ = writeln!(
            out,
            "{pad}subgraph g{g}[\"{}\"]",
            mermaid_str(&platforms.groups[g].label)
        );
        for &v in &platforms.groups[g].members {
            if inner.get(&v) == Some(&g) {
                let _ = writeln!(out, "{pad}  {}", vertex_line(v));
            }
        }
        for (h, other) in platforms.groups.iter().enumerate() {
            if other.parent == Some(g) {
                subgraph(out, h, depth + 1, platforms, inner, vertex_line);
            }
        }
        let _ = writeln!(out, "{pad}end");
    }
    for (g, group) in platforms.groups.iter().enumerate() {
        if group.parent.is_none() {
            subgraph(&mut out, g, 0, platforms, &inner, &vertex_line);
        }
    }
    for i in 0..net.nodes.len() {
        if !inner.contains_key(&Vertex::Node(i)) {
            let _ = writeln!(out, "  {}", vertex_line(Vertex::Node(i)));
        }
    }
    for s in 0..net.segments.len() {
        if !inner.contains_key(&Vertex::Segment(s)) {
            let _ = writeln!(out, "  {}", vertex_line(Vertex::Segment(s)));
        }
    }
    let mut links = 0usize;
    for iface in &net.interfaces {
        let label = match iface.primary_address() {
            Some(a) => format!("{} {a}", iface.name),
            None => iface.name.clone(),
        };
        let _ = writeln!(
            out,
            "  n{} ---|\"{}\"| s{}",
            iface.node.index(),
            mermaid_str(&label),
            iface.segment.index()
        );
        links += 1;
    }
    let mut styles = Vec::new();
    let mut drops = Vec::new();
    let mut nats = Vec::new();
    for (t, overlay) in overlays.iter().enumerate() {
        let (req, ans) = TRACE_COLOURS[t % TRACE_COLOURS.len()];
        let _ = writeln!(out, "  %% trace {}: {}", t + 1, overlay.title);
        for hop in &overlay.hops {
            let from = net.interface(hop.from).node.index();
            let target = match hop.to {
                Some(to) => format!("n{}", net.interface(to).node.index()),
                None => format!("s{}", net.interface(hop.from).segment.index()),
            };
            let _ = writeln!(out, "  n{from} ==>|\"{}\"| {target}", hop.number);
            styles.push((links, if hop.answer { ans } else { req }));
            links += 1;
        }
        for (k, note) in overlay.notes.iter().enumerate() {
            let id = format!("t{t}n{k}");
            let _ = writeln!(out, "  {id}[/\"{}\"/]", mermaid_str(&note.text));
            let _ = writeln!(out, "  n{} -.- {id}", note.node.index());
            links += 1;
            match note.kind {
                NoteKind::Drop | NoteKind::Refused => drops.push(id),
                _ => nats.push(id),
            }
        }
    }
    for (index, colour) in styles {
        let _ = writeln!(
            out,
            "  linkStyle {index} stroke:{colour},stroke-width:3px,color:{colour}"
        );
    }
    out.push_str("  classDef segment fill:#343a40,color:#ffffff,stroke:#343a40\n");
    out.push_str("  classDef router stroke:#1c7ed6,stroke-width:2px\n");
    out.push_str("  classDef drop fill:#fff5f5,stroke:#e03131,color:#c92a2a\n");
    out.push_str("  classDef note fill:#fff9db,stroke:#fab005,color:#5c3c00\n");
    if !net.segments.is_empty() {
        let ids: Vec<String> = (0..net.segments.len()).map(|s| format!("s{s}")).collect();
        let _ = writeln!(out, "  class {} segment", ids.join(","));
    }
    let routers: Vec<String> = net
        .nodes
        .iter()
        .filter(|n| n.forwarding)
        .map(|n| format!("n{}", n.id.index()))
        .collect();
    if !routers.is_empty() {
        let _ = writeln!(out, "  class {} router", routers.join(","));
    }
    if !drops.is_empty() {
        let _ = writeln!(out, "  class {} drop", drops.join(","));
    }
    if !nats.is_empty() {
        let _ = writeln!(out, "  class {} note", nats.join(","));
    }
    out
}
