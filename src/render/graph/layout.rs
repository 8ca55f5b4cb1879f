//! Where everything of a picture goes: a layered tree layout, deterministic (the same network
//! always gives the same coordinates) and free of overlaps by construction.
//!
//! Nodes and segments alternate in layers: a breadth-first tree from the most upstream node (the
//! one most default routes lead to, typically "the Internet") gives each element its layer, the
//! node's interfaces are ports on the top or bottom edge of its box, and a segment is a bus
//! line with its name on a label hanging below its left end (moved where no link lands). Each subtree gets a horizontal band as wide as
//! its widest layer (boxes, labels and the notes a trace puts beside a node included); a
//! platform group wraps the subtrees of its topmost members, with padding, so group boxes nest
//! and never cross, and each layer reserves room above for the labels of the groups that start
//! there. Text widths are estimated for a monospace font, which the SVG asks for.

use std::collections::BTreeMap;

use super::groups::{GroupKind, Platforms, Vertex};
use crate::model::{IfaceId, Listener, Network, Node, Service};

/// Font sizes (px) and the average advance of a monospace glyph (em).
pub(crate) const TITLE_SIZE: f64 = 13.0;
pub(crate) const SMALL_SIZE: f64 = 11.0;
pub(crate) const GROUP_SIZE: f64 = 12.0;
const ADVANCE: f64 = 0.62;

const MARGIN: f64 = 24.0;
/// Horizontal gap between sibling subtrees.
const SIBLING_GAP: f64 = 26.0;
/// Vertical gap between a layer of nodes and a layer of segments.
const LAYER_GAP: f64 = 40.0;
const PORT_ROW: f64 = 17.0;
const TITLE_ROW: f64 = 19.0;
const INFO_ROW: f64 = 14.0;
const BOX_PAD: f64 = 10.0;
const CELL_PAD: f64 = 6.0;
/// A segment's layer: the line, and its label hanging below it.
const SEGMENT_ROW: f64 = 26.0;
/// Where the line sits in its layer.
const LINE_Y: f64 = 4.0;
const LINE_MARGIN: f64 = 16.0;
const MIN_LINE: f64 = 56.0;
const PILL_PAD: f64 = 6.0;
const GROUP_PAD: f64 = 12.0;
const GROUP_LABEL: f64 = 22.0;
const GROUP_BOTTOM: f64 = 12.0;
/// Space between a node's box and the notes a trace writes beside it.
pub(crate) const NOTE_GAP: f64 = 10.0;
pub(crate) const NOTE_ROW: f64 = 14.0;
const INFO_CHARS: usize = 44;

/// Estimated width of `text` at `size` px in the monospace font.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * ADVANCE
}

/// A port: an interface on the edge of its node's box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Port {
    pub iface: IfaceId,
    pub text: String,
    pub x0: f64,
    pub x1: f64,
}

/// A node's box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeBox {
    /// Centre.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub title: String,
    pub info: Vec<String>,
    pub top: Vec<Port>,
    pub bottom: Vec<Port>,
    pub router: bool,
    /// Made by a platform section and not named in it (a NAT engine, a pod).
    pub generated: bool,
}

/// A segment's bus line and its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bus {
    pub y: f64,
    /// The whole line, label included.
    pub x0: f64,
    pub x1: f64,
    pub label: String,
    /// Where the label sits (left end of the line).
    pub label_x0: f64,
    pub label_w: f64,
}

/// Where an interface's link runs: from its port to the bus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Link {
    pub port: (f64, f64),
    pub bus: (f64, f64),
}

/// A platform group's box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupBox {
    pub kind: GroupKind,
    pub label: String,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// Everything placed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Layout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<NodeBox>,
    pub buses: Vec<Bus>,
    /// Per interface.
    pub links: Vec<Option<Link>>,
    pub groups: Vec<GroupBox>,
}

/// What the layout must leave room for beside a node (the notes of traces).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Aside {
    pub w: f64,
    pub h: f64,
}

/// The breadth-first forest.
struct Tree {
    order: Vec<usize>,
    /// Position of each vertex in `order`.
    rank: Vec<usize>,
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    depth: Vec<usize>,
    roots: Vec<usize>,
}

/// A child in a row: a subtree, or a group wrapping subtrees.
#[derive(Debug, Clone)]
enum Item {
    Vertex(usize),
    Group(usize, Vec<Item>),
}

/// The layers a placed group spans, and how many group labels stack above its top (its own and
/// those of the groups inside it that start on the same layer) and bottoms below its bottom.
#[derive(Debug, Clone, Copy)]
struct GroupSpan {
    top: usize,
    bottom: usize,
    labels_above: usize,
    bottoms_below: usize,
}

/// The vertical placement of the layers.
struct Layers {
    /// Per layer: where it starts.
    tops: Vec<f64>,
    /// Per layer: its height.
    heights: Vec<f64>,
    /// The bottom of the drawing.
    bottom: f64,
}

struct Layouter<'a> {
    net: &'a Network,
    platforms: &'a Platforms,
    n: usize,
    tree: Tree,
    /// Children rows per vertex, and the row of component roots.
    rows: Vec<Vec<Item>>,
    top_row: Vec<Item>,
    /// Per vertex: extents left and right of its anchor.
    ext: Vec<(f64, f64)>,
    /// Per vertex: absolute anchor.
    x: Vec<f64>,
    boxes: Vec<NodeBox>,
    asides: Vec<Aside>,
    labels: Vec<(String, f64)>,
    /// Per group: (x0, x1) of its wrapper.
    group_x: BTreeMap<usize, (f64, f64)>,
    /// Per group: the roots it wraps.
    group_roots: BTreeMap<usize, Vec<usize>>,
}

/// Lays out `net` with its platform groups, leaving `asides[node]` free right of each node.
pub(crate) fn layout(net: &Network, platforms: &Platforms, asides: &[Aside]) -> Layout {
    let n = net.nodes.len();
    let count = n + net.segments.len();
    let tree = forest(net);
    let mut l = Layouter {
        net,
        platforms,
        n,
        tree,
        rows: vec![Vec::new(); count],
        top_row: Vec::new(),
        ext: vec![(0.0, 0.0); count],
        x: vec![0.0; count],
        boxes: Vec::new(),
        asides: (0..n)
            .map(|i| asides.get(i).copied().unwrap_or_default())
            .collect(),
        labels: Vec::new(),
        group_x: BTreeMap::new(),
        group_roots: BTreeMap::new(),
    };
    l.build_rows();
    l.boxes = (0..n).map(|i| l.node_box(i)).collect();
    l.labels = net
        .segments
        .iter()
        .map(|s| {
            let label = segment_label(net, s.id.index());
            let w = text_width(&label, SMALL_SIZE) + 2.0 * PILL_PAD;
            (label, w)
        })
        .collect();
    l.measure();
    l.place();
    l.finish()
}

/// Vertex index of a node or segment.
fn vertex_index(n: usize, v: Vertex) -> usize {
    match v {
        Vertex::Node(i) => i,
        Vertex::Segment(s) => n + s,
    }
}

/// Per node: the node its chain of default routes finally leads to (itself without one; the
/// last new node when the chain loops).
fn upstreams(net: &Network) -> Vec<usize> {
    let n = net.nodes.len();
    let mut owner: BTreeMap<std::net::Ipv4Addr, usize> = BTreeMap::new();
    for iface in &net.interfaces {
        for a in &iface.addresses {
            owner.entry(a.addr()).or_insert(iface.node.index());
        }
    }
    let next: Vec<Option<usize>> = net
        .nodes
        .iter()
        .map(|node| {
            node.routes
                .routes()
                .iter()
                .find(|r| r.dst.prefix_len() == 0)
                .and_then(|r| r.gateway)
                .and_then(|gw| owner.get(&gw).copied())
        })
        .collect();
    let mut end = vec![usize::MAX; n];
    let mut walk = vec![usize::MAX; n];
    for start in 0..n {
        let mut path = Vec::new();
        let mut at = start;
        let found = loop {
            if end[at] != usize::MAX {
                break end[at];
            }
            if walk[at] == start {
                break path.last().copied().unwrap_or(at);
            }
            walk[at] = start;
            path.push(at);
            match next[at] {
                Some(next) => at = next,
                None => break at,
            }
        };
        for p in path {
            end[p] = found;
        }
    }
    end
}

/// Adjacency in file order: a node's segments in interface order, a segment's nodes likewise.
fn neighbours(net: &Network, n: usize, v: usize) -> Vec<usize> {
    let mut out = Vec::new();
    if v < n {
        for iface in net.interfaces_of(&net.nodes[v]) {
            out.push(n + iface.segment.index());
        }
    } else {
        for &i in &net.segments[v - n].interfaces {
            out.push(net.interface(i).node.index());
        }
    }
    let mut seen = Vec::new();
    out.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    out
}

fn forest(net: &Network) -> Tree {
    let n = net.nodes.len();
    let count = n + net.segments.len();
    let mut tree = Tree {
        order: Vec::with_capacity(count),
        rank: vec![0; count],
        parent: vec![None; count],
        children: vec![Vec::new(); count],
        depth: vec![0; count],
        roots: Vec::new(),
    };
    let mut component = vec![usize::MAX; count];
    let adjacency: Vec<Vec<usize>> = (0..count).map(|v| neighbours(net, n, v)).collect();
    let ends = upstreams(net);
    for start in 0..count {
        if component[start] != usize::MAX {
            continue;
        }
        // The component, then its root: the node most default routes end at.
        let id = tree.roots.len();
        let mut members = vec![start];
        component[start] = id;
        let mut i = 0;
        while i < members.len() {
            for &w in &adjacency[members[i]] {
                if component[w] == usize::MAX {
                    component[w] = id;
                    members.push(w);
                }
            }
            i += 1;
        }
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        for &m in members.iter().filter(|&&m| m < n) {
            let end = ends[m];
            if component[end] == id {
                *votes.entry(end).or_default() += 1;
            }
        }
        let root = votes
            .iter()
            .max_by_key(|(v, c)| (**c, std::cmp::Reverse(**v)))
            .map_or_else(|| *members.iter().min().unwrap_or(&start), |(v, _)| *v);
        tree.roots.push(root);
        // Breadth first from the root.
        let mut seen = vec![false; count];
        seen[root] = true;
        let first = tree.order.len();
        tree.order.push(root);
        let mut i = first;
        while i < tree.order.len() {
            let v = tree.order[i];
            for &w in &adjacency[v] {
                if !seen[w] {
                    seen[w] = true;
                    tree.parent[w] = Some(v);
                    tree.depth[w] = tree.depth[v] + 1;
                    tree.children[v].push(w);
                    tree.order.push(w);
                }
            }
            i += 1;
        }
    }
    for (i, &v) in tree.order.iter().enumerate() {
        tree.rank[v] = i;
    }
    tree
}

/// `campus 10.1.5.0/24`: the segment's name and the networks of the addresses on it.
pub(crate) fn segment_label(net: &Network, s: usize) -> String {
    let segment = &net.segments[s];
    let mut networks: Vec<String> = Vec::new();
    for &i in &segment.interfaces {
        for a in &net.interface(i).addresses {
            let text = a.trunc().to_string();
            if !networks.contains(&text) {
                networks.push(text);
            }
        }
    }
    if networks.iter().any(|n| !n.ends_with("/32")) {
        networks.retain(|n| !n.ends_with("/32"));
    }
    if networks.is_empty() {
        segment.name.clone()
    } else {
        format!("{} {}", segment.name, networks.join(" "))
    }
}

/// The lines under a node's name: what it is (its OS if not Linux, its platform roles, or
/// "router"), what it listens on, its DNS names.
fn info_lines(node: &Node, roles: &[&str]) -> Vec<String> {
    let mut kind: Vec<String> = Vec::new();
    if node.os == crate::model::OsProfile::Windows {
        kind.push("windows".into());
    }
    kind.extend(roles.iter().map(|r| (*r).to_owned()));
    if node.forwarding && roles.is_empty() {
        kind.push("router".into());
    }
    let mut info = Vec::new();
    if !kind.is_empty() {
        info.push(kind.join(" · "));
    }
    if !node.listeners.is_empty() {
        let listens: Vec<String> = node.listeners.iter().map(listen_words).collect();
        info.push(truncate(
            format!("listens {}", listens.join(" ")),
            INFO_CHARS,
        ));
    }
    if !node.dns.is_empty() {
        info.push(truncate(format!("dns {}", node.dns.join(" ")), INFO_CHARS));
    }
    info
}

/// `:22 ssh`, `:53/udp`: a listener's port and service.
fn listen_words(l: &Listener) -> String {
    let what = match &l.service {
        Service::Ssh { .. } => " ssh",
        Service::Http { .. } => " http",
        Service::Banner(_) => " banner",
        Service::Plain => "",
    };
    match l.proto {
        crate::model::Proto::Tcp => format!(":{}{what}", l.port),
        crate::model::Proto::Udp => format!(":{}/udp{what}", l.port),
    }
}

fn truncate(text: String, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text;
    }
    let mut short: String = text.chars().take(chars.saturating_sub(1)).collect();
    short.push('…');
    short
}

impl Layouter<'_> {
    fn group_ancestors(&self, g: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = self.platforms.groups[g].parent;
        while let Some(p) = at {
            out.push(p);
            at = self.platforms.groups[p].parent;
        }
        out
    }

    /// Decides which groups wrap which children, and builds every row.
    fn build_rows(&mut self) {
        let n = self.n;
        let mut at_parent: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
        for (g, group) in self.platforms.groups.iter().enumerate() {
            let members: Vec<usize> = group.members.iter().map(|&v| vertex_index(n, v)).collect();
            let mut tops: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&m| self.tree.parent[m].is_none_or(|p| !members.contains(&p)))
                .collect();
            tops.sort_by_key(|&m| self.tree.rank[m]);
            let Some(&first) = tops.first() else { continue };
            let parent = self.tree.parent[first];
            tops.retain(|&m| self.tree.parent[m] == parent);
            self.group_roots.insert(g, tops);
            at_parent.entry(parent).or_default().push(g);
        }
        for v in 0..self.rows.len() {
            let groups = at_parent.get(&Some(v)).cloned().unwrap_or_default();
            let children = self.tree.children[v].clone();
            self.rows[v] = self.row(&children, &groups);
        }
        let groups = at_parent.get(&None).cloned().unwrap_or_default();
        let roots = self.tree.roots.clone();
        self.top_row = self.row(&roots, &groups);
    }

    /// A row of `children`, the groups among `groups` wrapping theirs (outer groups first).
    fn row(&self, children: &[usize], groups: &[usize]) -> Vec<Item> {
        let outer: Vec<usize> = groups
            .iter()
            .copied()
            .filter(|&g| !self.group_ancestors(g).iter().any(|a| groups.contains(a)))
            .collect();
        let mut items = Vec::new();
        let mut used: Vec<usize> = Vec::new();
        for &c in children {
            if used.contains(&c) {
                continue;
            }
            let wrapping = outer.iter().copied().find(|g| {
                self.group_roots
                    .get(g)
                    .is_some_and(|roots| roots.contains(&c))
            });
            match wrapping {
                Some(g) => {
                    let roots: Vec<usize> = children
                        .iter()
                        .copied()
                        .filter(|x| self.group_roots.get(&g).is_some_and(|r| r.contains(x)))
                        .collect();
                    let inner: Vec<usize> = groups
                        .iter()
                        .copied()
                        .filter(|&h| h != g && self.group_ancestors(h).contains(&g))
                        .collect();
                    used.extend(roots.iter().copied());
                    items.push(Item::Group(g, self.row(&roots, &inner)));
                }
                None => {
                    used.push(c);
                    items.push(Item::Vertex(c));
                }
            }
        }
        items
    }

    /// Node `i`'s box, sized for its title, info lines and ports (ports on the top edge for
    /// the segments above it in the tree, on the bottom edge for the others).
    fn node_box(&self, i: usize) -> NodeBox {
        let net = self.net;
        let node = &net.nodes[i];
        let depth = self.tree.depth[i];
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        for iface in net.interfaces_of(node) {
            let s = self.n + iface.segment.index();
            let text = match iface.primary_address() {
                Some(a) => format!("{} {a}", iface.name),
                None => iface.name.clone(),
            };
            let port = Port {
                iface: iface.id,
                text,
                x0: 0.0,
                x1: 0.0,
            };
            if self.tree.depth[s] < depth {
                top.push(port);
            } else {
                bottom.push(port);
            }
        }
        let roles = &self.platforms.roles[i];
        let info = info_lines(node, roles);
        let cells = |ports: &[Port]| {
            ports
                .iter()
                .map(|p| text_width(&p.text, SMALL_SIZE) + 2.0 * CELL_PAD)
                .sum::<f64>()
        };
        let w = [
            text_width(&node.name, TITLE_SIZE) + 2.0 * BOX_PAD,
            info.iter()
                .map(|t| text_width(t, SMALL_SIZE) + 2.0 * BOX_PAD)
                .fold(0.0, f64::max),
            cells(&top),
            cells(&bottom),
            60.0,
        ]
        .into_iter()
        .fold(0.0, f64::max)
        .ceil();
        let h = 6.0
            + if top.is_empty() { 0.0 } else { PORT_ROW }
            + TITLE_ROW
            + INFO_ROW * info.len() as f64
            + if bottom.is_empty() { 0.0 } else { PORT_ROW }
            + 4.0;
        let generated = roles.iter().any(|r| matches!(*r, "NAT engine" | "pod"));
        NodeBox {
            x: 0.0,
            y: 0.0,
            w,
            h,
            title: node.name.clone(),
            info,
            top,
            bottom,
            router: node.forwarding,
            generated,
        }
    }

    fn item_ext(&self, item: &Item) -> (f64, f64) {
        match item {
            Item::Vertex(v) => self.ext[*v],
            Item::Group(g, items) => {
                let (_, l, r) = self.row_shape(items);
                let (l, mut r) = (l + GROUP_PAD, r + GROUP_PAD);
                let label = text_width(&self.platforms.groups[*g].label, GROUP_SIZE) + 2.0 * 10.0;
                if l + r < label {
                    r = label - l;
                }
                (l, r)
            }
        }
    }

    /// Anchors of a row's items relative to the row's anchor, and the row's extents.
    fn row_shape(&self, items: &[Item]) -> (Vec<f64>, f64, f64) {
        let exts: Vec<(f64, f64)> = items.iter().map(|i| self.item_ext(i)).collect();
        let mut anchors = Vec::with_capacity(items.len());
        let mut at = 0.0;
        for (i, &(l, _)) in exts.iter().enumerate() {
            if i > 0 {
                at += exts[i - 1].1 + SIBLING_GAP + l;
            }
            anchors.push(at);
        }
        let (Some(&first), Some(&last)) = (anchors.first(), anchors.last()) else {
            return (Vec::new(), 0.0, 0.0);
        };
        let centre = (first + last) / 2.0;
        let left = centre - (first - exts[0].0);
        let right = last + exts[exts.len() - 1].1 - centre;
        (anchors.iter().map(|a| a - centre).collect(), left, right)
    }

    /// Extents of every subtree, children before parents.
    fn measure(&mut self) {
        for k in (0..self.tree.order.len()).rev() {
            let v = self.tree.order[k];
            let (_, rl, rr) = self.row_shape(&self.rows[v]);
            let ext = if v < self.n {
                let b = &self.boxes[v];
                let aside = self.asides[v];
                let own_r = b.w / 2.0
                    + if aside.w > 0.0 {
                        NOTE_GAP + aside.w
                    } else {
                        0.0
                    };
                (rl.max(b.w / 2.0), rr.max(own_r))
            } else {
                let (_, pill) = self.labels[v - self.n];
                let half = if self.rows[v].is_empty() {
                    MIN_LINE / 2.0
                } else {
                    let (anchors, _, _) = self.row_shape(&self.rows[v]);
                    let span = anchors.last().copied().unwrap_or(0.0);
                    (span + LINE_MARGIN).max(MIN_LINE / 2.0)
                };
                (rl.max(half + pill + 4.0), rr.max(half))
            };
            self.ext[v] = ext;
        }
    }

    /// Absolute anchors, parents before children.
    fn place(&mut self) {
        let top = self.top_row.clone();
        let (_, left, _) = self.row_shape(&top);
        self.place_row(&top, MARGIN + left);
        for k in 0..self.tree.order.len() {
            let v = self.tree.order[k];
            let row = self.rows[v].clone();
            self.place_row(&row, self.x[v]);
        }
    }

    fn place_row(&mut self, items: &[Item], anchor: f64) {
        let (anchors, _, _) = self.row_shape(items);
        for (item, a) in items.iter().zip(anchors) {
            let x = anchor + a;
            match item {
                Item::Vertex(v) => self.x[*v] = x,
                Item::Group(g, inner) => {
                    let (l, r) = self.item_ext(item);
                    self.group_x.insert(*g, (x - l, x + r));
                    self.place_row(inner, x);
                }
            }
        }
    }

    /// The innermost group of each vertex.
    fn innermost(&self) -> Vec<Option<usize>> {
        let mut out = vec![None; self.x.len()];
        for (g, group) in self.platforms.groups.iter().enumerate() {
            for &v in &group.members {
                out[vertex_index(self.n, v)] = Some(g);
            }
        }
        out
    }

    /// Lengthens each bus towards the port of the node above it (its tree parent), so that
    /// the link drops straight down, as far as the neighbouring buses of the layer allow and
    /// without leaving its group.
    fn stretch_buses(&self, buses: &mut [Bus]) {
        let n = self.n;
        let inner = self.innermost();
        let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for s in 0..buses.len() {
            by_layer.entry(self.tree.depth[n + s]).or_default().push(s);
        }
        for row in by_layer.values_mut() {
            row.sort_by(|&a, &b| buses[a].x0.total_cmp(&buses[b].x0));
            for k in 0..row.len() {
                let s = row[k];
                let Some(parent) = self.tree.parent[n + s] else {
                    continue;
                };
                if parent >= n || inner[parent] != inner[n + s] {
                    continue;
                }
                let port = self.boxes[parent]
                    .bottom
                    .iter()
                    .find(|p| self.net.interface(p.iface).segment.index() == s);
                let Some(port) = port else { continue };
                let px = (port.x0 + port.x1) / 2.0;
                let left_limit = k
                    .checked_sub(1)
                    .map_or(f64::NEG_INFINITY, |j| buses[row[j]].x1 + 16.0);
                let right_limit = row
                    .get(k + 1)
                    .map_or(f64::INFINITY, |&j| buses[j].x0 - 16.0);
                let bus = &mut buses[s];
                if px > bus.x1 - 6.0 {
                    bus.x1 = bus.x1.max((px + 10.0).min(right_limit));
                } else if px < bus.x0 + 4.0 {
                    bus.x0 = bus.x0.min((px - 10.0).max(left_limit));
                }
            }
        }
    }

    /// Moves a segment's label (which hangs below the line) off the place where a link from
    /// below wants to land: to the right end of the bus when the layer and the group leave
    /// room there, else into a gap between links.
    fn place_labels(&self, buses: &mut [Bus]) {
        let n = self.n;
        let inner = self.innermost();
        let mut wanted: Vec<Vec<f64>> = vec![Vec::new(); buses.len()];
        for b in &self.boxes {
            for p in &b.top {
                let s = self.net.interface(p.iface).segment.index();
                wanted[s].push((p.x0 + p.x1) / 2.0);
            }
        }
        let mut by_layer: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for s in 0..buses.len() {
            by_layer.entry(self.tree.depth[n + s]).or_default().push(s);
        }
        for row in by_layer.values_mut() {
            row.sort_by(|&a, &b| buses[a].x0.total_cmp(&buses[b].x0));
            for k in 0..row.len() {
                let s = row[k];
                let mut xs = wanted[s].clone();
                xs.sort_by(f64::total_cmp);
                let (pill0, pill1) = (buses[s].label_x0, buses[s].label_x0 + buses[s].label_w);
                if !xs.iter().any(|&x| x > pill0 - 8.0 && x < pill1 + 8.0) {
                    continue;
                }
                let w = buses[s].label_w;
                let mut right_limit = row
                    .get(k + 1)
                    .map_or(f64::INFINITY, |&j| buses[j].x0 - 16.0);
                if let Some((_, x1)) = inner[n + s].and_then(|g| self.group_x.get(&g)) {
                    right_limit = right_limit.min(x1 - 8.0);
                }
                let last = xs.last().copied().unwrap_or(buses[s].x1);
                let start = buses[s].x1.max(last + 12.0);
                let line0 = xs.first().map_or(pill1, |&x| (x - 10.0).min(pill1 + 4.0));
                let bus = &mut buses[s];
                if start + 8.0 + w + 4.0 <= right_limit {
                    bus.label_x0 = start + 8.0;
                    bus.x0 = line0.max(bus.x0);
                    bus.x1 = bus.label_x0 + w + 4.0;
                    continue;
                }
                let gap = xs
                    .windows(2)
                    .find(|pair| pair[1] - pair[0] >= w + 28.0)
                    .map(|pair| (pair[0] + pair[1]) / 2.0 - w / 2.0);
                if let Some(x) = gap {
                    bus.label_x0 = x;
                }
            }
        }
    }

    /// Layers, ports, links and boxes.
    fn finish(mut self) -> Layout {
        let spans = self.group_spans();
        let layers = self.layers(&spans);
        // Boxes, centred in their layer.
        for v in 0..self.n {
            let d = self.tree.depth[v];
            let b = &mut self.boxes[v];
            b.x = self.x[v];
            b.y = (layers.tops[d] + (layers.heights[d] - b.h) / 2.0).round();
        }
        let mut buses = self.buses(&layers);
        self.place_ports();
        self.stretch_buses(&mut buses);
        self.place_labels(&mut buses);
        let links = self.links(&buses);
        let groups = self.group_boxes(&spans, &layers);
        let width = self.width(&groups, &buses);
        Layout {
            width: (width + MARGIN).ceil(),
            height: layers.bottom.ceil(),
            nodes: self.boxes,
            buses,
            links,
            groups,
        }
    }

    /// Per placed group: the layers it spans and how its label and bottom stack with those of
    /// the groups inside it.
    fn group_spans(&self) -> BTreeMap<usize, GroupSpan> {
        let mut layers: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        for (g, roots) in &self.group_roots {
            if !self.group_x.contains_key(g) {
                continue;
            }
            let top = roots.iter().map(|&r| self.tree.depth[r]).min().unwrap_or(0);
            let mut bottom = top;
            let mut stack = roots.clone();
            while let Some(v) = stack.pop() {
                bottom = bottom.max(self.tree.depth[v]);
                stack.extend(self.tree.children[v].iter().copied());
            }
            layers.insert(*g, (top, bottom));
        }
        // Inner groups come after outer ones: count from the innermost out.
        let mut spans: BTreeMap<usize, GroupSpan> = BTreeMap::new();
        let groups: Vec<usize> = layers.keys().copied().collect();
        for &g in groups.iter().rev() {
            let (top, bottom) = layers[&g];
            let inner = |count: &dyn Fn(&GroupSpan) -> Option<usize>| {
                groups
                    .iter()
                    .filter(|&&h| self.platforms.groups[h].parent == Some(g))
                    .filter_map(|h| spans.get(h).and_then(count))
                    .max()
                    .unwrap_or(0)
            };
            let labels_above = 1 + inner(&|h| (h.top == top).then_some(h.labels_above));
            let bottoms_below = 1 + inner(&|h| (h.bottom == bottom).then_some(h.bottoms_below));
            spans.insert(
                g,
                GroupSpan {
                    top,
                    bottom,
                    labels_above,
                    bottoms_below,
                },
            );
        }
        spans
    }

    /// Where each layer goes: as tall as its tallest element (a node's notes included), with
    /// room above for the group labels starting there and below for the group bottoms ending
    /// there.
    fn layers(&self, spans: &BTreeMap<usize, GroupSpan>) -> Layers {
        let count = self.tree.depth.iter().copied().max().map_or(0, |d| d + 1);
        let mut reserve_above = vec![0usize; count];
        let mut reserve_below = vec![0usize; count];
        for span in spans.values() {
            reserve_above[span.top] = reserve_above[span.top].max(span.labels_above);
            reserve_below[span.bottom] = reserve_below[span.bottom].max(span.bottoms_below);
        }
        let mut heights = vec![0.0f64; count];
        for v in 0..self.x.len() {
            let d = self.tree.depth[v];
            let h = if v < self.n {
                self.boxes[v].h.max(self.asides[v].h)
            } else {
                SEGMENT_ROW
            };
            heights[d] = heights[d].max(h);
        }
        let mut tops = vec![0.0f64; count];
        let mut y = MARGIN;
        for d in 0..count {
            y += reserve_above[d] as f64 * GROUP_LABEL;
            tops[d] = y;
            y += heights[d] + reserve_below[d] as f64 * GROUP_BOTTOM + LAYER_GAP;
        }
        Layers {
            tops,
            heights,
            bottom: y - LAYER_GAP + MARGIN,
        }
    }

    /// Each segment's bus, spanning its tree children's anchors, with its label at the left end.
    fn buses(&self, layers: &Layers) -> Vec<Bus> {
        let n = self.n;
        let mut buses = Vec::with_capacity(self.net.segments.len());
        for s in 0..self.net.segments.len() {
            let v = n + s;
            let d = self.tree.depth[v];
            let y = layers.tops[d] + LINE_Y;
            let xs: Vec<f64> = self.tree.children[v].iter().map(|&c| self.x[c]).collect();
            let centre = self.x[v];
            let (mut x0, mut x1) = (centre - MIN_LINE / 2.0, centre + MIN_LINE / 2.0);
            for x in xs {
                x0 = x0.min(x - LINE_MARGIN);
                x1 = x1.max(x + LINE_MARGIN);
            }
            let (label, w) = self.labels[s].clone();
            buses.push(Bus {
                y,
                x0: x0 - w - 4.0,
                x1,
                label,
                label_x0: x0 - w - 4.0,
                label_w: w,
            });
        }
        buses
    }

    /// The ports along the top and bottom edges of each box, ordered by where their bus is,
    /// sharing the spare width.
    fn place_ports(&mut self) {
        let n = self.n;
        for v in 0..n {
            let bus_x = |p: &Port| {
                let s = self.net.interface(p.iface).segment.index();
                self.x[n + s]
            };
            let b = &mut self.boxes[v];
            b.top.sort_by(|p, q| bus_x(p).total_cmp(&bus_x(q)));
            b.bottom.sort_by(|p, q| bus_x(p).total_cmp(&bus_x(q)));
            let (x, w) = (b.x, b.w);
            for ports in [&mut b.top, &mut b.bottom] {
                let widths: Vec<f64> = ports
                    .iter()
                    .map(|p| text_width(&p.text, SMALL_SIZE) + 2.0 * CELL_PAD)
                    .collect();
                let total: f64 = widths.iter().sum();
                let spare = (w - total) / ports.len().max(1) as f64;
                let mut at = x - w / 2.0;
                for (p, cell) in ports.iter_mut().zip(widths) {
                    p.x0 = at;
                    p.x1 = at + cell + spare;
                    at = p.x1;
                }
            }
        }
    }

    /// Per interface, its link: from the port straight down or up to the bus where it can,
    /// beside the label.
    fn links(&self, buses: &[Bus]) -> Vec<Option<Link>> {
        let mut links = vec![None; self.net.interfaces.len()];
        for b in &self.boxes {
            for (ports, edge) in [(&b.top, b.y), (&b.bottom, b.y + b.h)] {
                for p in ports {
                    let bus = &buses[self.net.interface(p.iface).segment.index()];
                    let px = (p.x0 + p.x1) / 2.0;
                    let mut bx = px.clamp(bus.x0 + 4.0, (bus.x1 - 6.0).max(bus.x0 + 4.0));
                    // The label hangs below the line: links from below land beside it.
                    let (pill0, pill1) = (bus.label_x0 - 4.0, bus.label_x0 + bus.label_w + 4.0);
                    let below = edge == b.y;
                    if below && bx > pill0 && bx < pill1 {
                        bx = if bx - pill0 < pill1 - bx && pill0 - 2.0 > bus.x0 {
                            pill0 - 2.0
                        } else {
                            pill1 + 2.0
                        };
                    }
                    links[p.iface.index()] = Some(Link {
                        port: (px, edge),
                        bus: (bx, bus.y),
                    });
                }
            }
        }
        links
    }

    /// The box of each placed group, from its wrapper's extent and the layers it spans.
    fn group_boxes(&self, spans: &BTreeMap<usize, GroupSpan>, layers: &Layers) -> Vec<GroupBox> {
        let mut boxes = Vec::new();
        for (&g, span) in spans {
            let (x0, x1) = self.group_x[&g];
            let group = &self.platforms.groups[g];
            boxes.push(GroupBox {
                kind: group.kind,
                label: group.label.clone(),
                x0,
                x1,
                y0: layers.tops[span.top] - span.labels_above as f64 * GROUP_LABEL + 4.0,
                y1: layers.tops[span.bottom]
                    + layers.heights[span.bottom]
                    + span.bottoms_below as f64 * GROUP_BOTTOM
                    - 2.0,
            });
        }
        boxes
    }

    /// The right edge of the drawing: of every subtree, group box and bus.
    fn width(&self, groups: &[GroupBox], buses: &[Bus]) -> f64 {
        let mut width: f64 = 0.0;
        for v in 0..self.x.len() {
            width = width.max(self.x[v] + self.ext[v].1);
        }
        for g in groups {
            width = width.max(g.x1);
        }
        for b in buses {
            width = width.max(b.x1);
        }
        width
    }
}
