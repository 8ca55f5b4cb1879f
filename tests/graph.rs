//! `reachlab graph`: the SVG of every built-in topology is well-formed XML (checked by a small
//! parser here), names every node, is the same bytes each time, and its boxes do not overlap;
//! platform sections are grouped; a traced probe shows its NAT rewrites and, when it fails, the
//! drop point and its reason. The dot and Mermaid twins name every node too. Last, Chromium
//! renders a picture (when /usr/bin/chromium exists; SKIPPED otherwise, a failure with
//! `REACHLAB_REQUIRE_KERNEL=1`) and the screenshot is decoded and looked at.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reachlab::model::{Network, Probe};
use reachlab::render::graph::{GraphFormat, Picture, parse_probe};
use reachlab::run::{ProbeRequest, node_named, run_request, target_address};
use reachlab::sim::SimConfig;
use reachlab::topology::{Loaded, collect_topology_files, load_path};

// ------------------------------------------------------------------------- a tiny XML reader

#[derive(Debug, Default, Clone)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, name: &str) -> f64 {
        self.attr(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("<{}> has no numeric {name}", self.name))
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a El>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }

    fn all(&self) -> Vec<&El> {
        let mut out = Vec::new();
        self.walk(&mut out);
        out
    }

    fn group(&self, id: &str) -> &El {
        self.all()
            .into_iter()
            .find(|e| e.name == "g" && e.attr("id") == Some(id))
            .unwrap_or_else(|| panic!("no <g id={id}>"))
    }
}

fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let tail = &rest[i..];
        let end = tail
            .find(';')
            .ok_or_else(|| format!("bare & in {text:?}"))?;
        let entity = &tail[1..end];
        let ok = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
            || (entity.starts_with('#') && entity.len() > 1);
        if !ok {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &tail[end + 1..];
    }
    Ok(())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses a whole document: one root element, balanced tags, quoted attributes without
/// duplicates, valid entities.
fn parse_xml(doc: &str) -> Result<El, String> {
    let mut stack: Vec<El> = vec![El::default()];
    let mut rest = doc;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            if !rest.trim().is_empty() {
                return Err(format!("text after the root: {rest:?}"));
            }
            break;
        };
        let text = &rest[..open];
        if text.contains('>') {
            return Err(format!("stray > in {text:?}"));
        }
        check_entities(text)?;
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(text));
        }
        rest = &rest[open..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unclosed comment")?;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unclosed declaration")?;
            rest = &r[end + 2..];
            continue;
        }
        let close = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let el = stack.pop().ok_or("close without open")?;
            if el.name != name.trim() {
                return Err(format!("</{name}> closes <{}>", el.name));
            }
            stack
                .last_mut()
                .ok_or("closing the document")?
                .children
                .push(el);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut el = El {
            name: name.to_owned(),
            ..El::default()
        };
        let mut attrs = tag[name_end..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .ok_or_else(|| format!("attribute without value in <{name}>"))?;
            let key = attrs[..eq].trim();
            let value = attrs[eq + 1..].trim_start();
            let quote = value.chars().next().ok_or("empty attribute")?;
            if quote != '"' && quote != '\'' {
                return Err(format!("unquoted attribute {key} in <{name}>"));
            }
            let end = value[1..].find(quote).ok_or("unclosed attribute")? + 1;
            let raw = &value[1..end];
            if raw.contains('<') {
                return Err(format!("< in attribute {key}"));
            }
            check_entities(raw)?;
            if el.attrs.iter().any(|(k, _)| k == key) {
                return Err(format!("duplicate attribute {key} in <{name}>"));
            }
            el.attrs.push((key.to_owned(), unescape(raw)));
            attrs = value[end + 1..].trim_start();
        }
        if self_closing {
            stack.last_mut().ok_or("no parent")?.children.push(el);
        } else {
            stack.push(el);
        }
    }
    if stack.len() != 1 {
        return Err(format!(
            "unclosed <{}>",
            stack.last().map_or("", |e| e.name.as_str())
        ));
    }
    let mut document = stack.pop().ok_or("no document")?;
    if document.children.len() != 1 {
        return Err(format!("{} root elements", document.children.len()));
    }
    Ok(document.children.remove(0))
}

#[test]
fn the_xml_reader_rejects_what_it_should() {
    assert!(parse_xml("<svg><g></g></svg>").is_ok());
    assert!(parse_xml("<svg><g></svg>").is_err());
    assert!(parse_xml("<svg a=\"1\" a=\"2\"/>").is_err());
    assert!(parse_xml("<svg a=1/>").is_err());
    assert!(parse_xml("<svg>a & b</svg>").is_err());
    assert!(parse_xml("<svg/><svg/>").is_err());
    assert_eq!(
        parse_xml("<t>a &amp; b</t>").map(|e| e.text),
        Ok("a & b".into())
    );
}

// ------------------------------------------------------------------------- helpers

fn load(file: &str) -> Loaded {
    load_path(Path::new(file)).unwrap_or_else(|e| panic!("{file}: {:?}", e.diagnostics))
}

fn traced(loaded: &Loaded, from: &str, to: &str, probe: &str) -> String {
    let net = &loaded.network;
    let config = SimConfig::default();
    let mut picture = Picture::new(net, Some(&loaded.report.source));
    let request = ProbeRequest {
        from: node_named(net, from).expect("from"),
        written: to.into(),
        dst: target_address(net, to).expect("to"),
        probe: parse_probe(probe).expect("probe"),
        count: 1,
        wait: None,
        ttl: None,
    };
    picture.add_trace(&run_request(net, request, &config), &config);
    picture.render(GraphFormat::Svg)
}

type Rect = (f64, f64, f64, f64);

fn rect(e: &El) -> Rect {
    let (x, y) = (e.num("x"), e.num("y"));
    (x, y, x + e.num("width"), y + e.num("height"))
}

fn overlap(a: Rect, b: Rect) -> bool {
    a.0 < b.2 - 0.5 && b.0 < a.2 - 0.5 && a.1 < b.3 - 0.5 && b.1 < a.3 - 0.5
}

fn inside(a: Rect, b: Rect) -> bool {
    a.0 >= b.0 - 0.5 && a.1 >= b.1 - 0.5 && a.2 <= b.2 + 0.5 && a.3 <= b.3 + 0.5
}

/// Well-formed, every node named, boxes apart, groups nested or apart, notes clear of boxes.
fn check_svg(net: &Network, svg: &str, what: &str) -> El {
    let root = parse_xml(svg).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(root.name, "svg", "{what}");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
    for forbidden in ["<script", "href=\"http", "@import", "url(http"] {
        assert!(
            !svg.contains(forbidden),
            "{what}: self-contained, found {forbidden}"
        );
    }
    let texts: Vec<String> = root
        .all()
        .into_iter()
        .filter(|e| e.name == "text")
        .map(|e| e.text.clone())
        .collect();
    for node in &net.nodes {
        assert!(
            texts.iter().any(|t| t == &node.name),
            "{what}: node {} is not drawn",
            node.name
        );
    }
    let boxes: Vec<Rect> = root
        .group("nodes")
        .children
        .iter()
        .filter(|e| e.name == "rect")
        .map(rect)
        .collect();
    assert_eq!(boxes.len(), net.nodes.len(), "{what}");
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(
                !overlap(*a, *b),
                "{what}: node boxes {a:?} and {b:?} overlap"
            );
        }
    }
    let groups: Vec<Rect> = root
        .group("groups")
        .children
        .iter()
        .filter(|e| e.name == "rect")
        .map(rect)
        .collect();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            assert!(
                !overlap(*a, *b) || inside(*a, *b) || inside(*b, *a),
                "{what}: group boxes {a:?} and {b:?} cross"
            );
        }
        for n in &boxes {
            assert!(
                !overlap(*a, *n) || inside(*n, *a),
                "{what}: node box {n:?} straddles group box {a:?}"
            );
        }
    }
    let notes: Vec<Rect> = root
        .group("notes")
        .children
        .iter()
        .filter(|e| e.name == "rect" && e.attr("stroke") == Some("#ced4da"))
        .map(rect)
        .collect();
    for note in &notes {
        for b in &boxes {
            assert!(
                !overlap(*note, *b),
                "{what}: note {note:?} covers node {b:?}"
            );
        }
    }
    let (width, height) = (root.num("width"), root.num("height"));
    for b in boxes.iter().chain(&groups).chain(&notes) {
        assert!(
            b.0 >= 0.0 && b.1 >= 0.0 && b.2 <= width && b.3 <= height,
            "{what}: {b:?} off the canvas"
        );
    }
    root
}

fn topology_files() -> Vec<PathBuf> {
    let files = collect_topology_files(&[PathBuf::from("topologies")]).expect("topologies/");
    assert!(files.len() >= 15, "{files:?}");
    files
}

// ------------------------------------------------------------------------- the pictures

#[test]
fn every_topology_draws_as_valid_svg_dot_and_mermaid() {
    for file in topology_files() {
        let what = file.display().to_string();
        let loaded = load(&what);
        let net = &loaded.network;
        let picture = Picture::new(net, Some(&loaded.report.source));
        let svg = picture.render(GraphFormat::Svg);
        check_svg(net, &svg, &what);
        assert_eq!(
            svg,
            picture.render(GraphFormat::Svg),
            "{what}: not deterministic"
        );
        let again = Picture::new(net, Some(&loaded.report.source)).render(GraphFormat::Svg);
        assert_eq!(svg, again, "{what}: not deterministic");

        let dot = picture.render(GraphFormat::Dot);
        assert!(dot.starts_with("graph \""), "{what}");
        assert_eq!(
            dot.matches('{').count(),
            dot.matches('}').count(),
            "{what}: {dot}"
        );
        let mermaid = picture.render(GraphFormat::Mermaid);
        assert!(mermaid.starts_with("flowchart TB\n"), "{what}");
        let opened = mermaid
            .lines()
            .filter(|l| l.trim_start().starts_with("subgraph "))
            .count();
        let closed = mermaid.lines().filter(|l| l.trim() == "end").count();
        assert_eq!(opened, closed, "{what}: {mermaid}");
        for node in &net.nodes {
            assert!(
                dot.contains(&format!("label=\"{}", node.name)),
                "{what}: {} in dot",
                node.name
            );
            assert!(
                mermaid.contains(&format!("[\"{}", node.name)),
                "{what}: {} in mermaid",
                node.name
            );
        }
    }
}

#[test]
fn generated_topologies_draw_without_overlaps() {
    for (name, text) in [
        ("chain.yaml", reachlab::generate::chain(300)),
        ("hosts.yaml", reachlab::generate::hosts(400, 5)),
    ] {
        let loaded = reachlab::topology::load_str(name, &text).expect("valid");
        let started = Instant::now();
        let svg =
            Picture::new(&loaded.network, Some(&loaded.report.source)).render(GraphFormat::Svg);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name}: {:?}",
            started.elapsed()
        );
        check_svg(&loaded.network, &svg, name);
    }
}

#[test]
fn platform_sections_are_grouped() {
    let kinds = |file: &str| -> Vec<(String, String)> {
        let loaded = load(file);
        let svg =
            Picture::new(&loaded.network, Some(&loaded.report.source)).render(GraphFormat::Svg);
        let root = parse_xml(&svg).expect("xml");
        let g = root.group("groups");
        let rects = g.children.iter().filter(|e| e.name == "rect");
        let labels = g.children.iter().filter(|e| e.name == "text");
        rects
            .zip(labels)
            .map(|(r, t)| (r.attr("data-kind").unwrap_or("").to_owned(), t.text.clone()))
            .collect()
    };
    let vbox = kinds("topologies/lab1-virtualbox.yaml");
    assert_eq!(vbox, [("virtualbox".into(), "VirtualBox on pc".into())]);
    let docker = kinds("topologies/docker-lab1.yaml");
    assert_eq!(docker, [("docker".into(), "Docker on vm".into())]);
    let openstack = kinds("topologies/openstack-lab1.yaml");
    assert_eq!(
        openstack,
        [("openstack".into(), "OpenStack router router1".into())]
    );
    let cluster = kinds("topologies/lab2-cluster.yaml");
    let mut labels: Vec<&str> = cluster.iter().map(|(_, l)| l.as_str()).collect();
    labels[2..].sort_unstable();
    assert_eq!(
        labels,
        [
            "OpenStack router router-k8s",
            "Kubernetes cluster lab2",
            "node master and its pods",
            "node worker1 and its pods",
            "node worker2 and its pods",
        ]
    );
    // Without the file, nothing is grouped.
    let loaded = load("topologies/lab1-virtualbox.yaml");
    let svg = Picture::new(&loaded.network, None).render(GraphFormat::Svg);
    assert!(!svg.contains("data-kind"));
}

#[test]
fn the_port_forward_is_drawn_with_its_nat_rewrites() {
    let loaded = load("topologies/lab1-virtualbox.yaml");
    let svg = traced(&loaded, "neighbour", "10.1.5.87", "ssh:1234");
    let root = check_svg(&loaded.network, &svg, "port forward");
    let texts: Vec<String> = root
        .all()
        .iter()
        .filter(|e| e.name == "text")
        .map(|e| e.text.clone())
        .collect();
    for expected in [
        "DNAT 10.1.5.87:1234 → 169.254.0.2:1234",
        "DNAT 169.254.0.2:1234 → 10.0.2.15:22",
        "SNAT 169.254.0.1:32768 → 10.0.2.2:32768",
        "✓ reached tcp/22",
        "trace 1: neighbour → 10.1.5.87: ssh -p 1234 (reply)",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected:?} not in {texts:#?}"
        );
    }
    // Six numbered hops: three links there, three back.
    let badges: Vec<&str> = root
        .group("trace-1")
        .children
        .iter()
        .filter(|e| e.name == "text")
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(badges, ["1", "2", "3", "4", "5", "6"]);
    assert!(!svg.contains("#e03131"), "nothing dropped, nothing red");
}

#[test]
fn a_failed_probe_shows_where_and_why_it_was_dropped() {
    let loaded = load("topologies/lab1-virtualbox.yaml");
    let svg = traced(&loaded, "neighbour", "10.0.2.15", "ssh");
    let root = check_svg(&loaded.network, &svg, "blocked");
    let notes: Vec<String> = root
        .group("notes")
        .children
        .iter()
        .filter(|e| e.name == "text")
        .map(|e| e.text.clone())
        .collect();
    let joined = notes.join(" ");
    assert!(joined.contains("✗ dropped (forward chain)"), "{joined}");
    assert!(joined.contains("bogon filter"), "{joined}");
    // The drop is marked in red beside campus-gw, and the legend says why.
    let red = root
        .group("notes")
        .children
        .iter()
        .filter(|e| e.attr("stroke") == Some("#e03131"))
        .count();
    assert!(red >= 3, "a red outline and a red cross");
    assert!(svg.contains("why: "), "{svg}");

    // Lab 2: the NodePort behind the floating IP dies at the security group.
    let loaded = load("topologies/lab2-nodeport.yaml");
    let svg = traced(&loaded, "PC", "192.168.37.62", "curl:32347");
    let root = check_svg(&loaded.network, &svg, "nodeport");
    let notes: Vec<String> = root
        .group("notes")
        .children
        .iter()
        .filter(|e| e.name == "text")
        .map(|e| e.text.clone())
        .collect();
    let joined = notes.join(" ");
    assert!(
        joined.contains("sg-fallback of instance `master`"),
        "{joined}"
    );
    assert!(
        joined.contains("DNAT 192.168.37.62:32347 → 192.168.9.167:32347"),
        "{joined}"
    );
}

#[test]
fn traces_draw_on_dot_and_mermaid_too() {
    let loaded = load("topologies/docker-lab1.yaml");
    let net = &loaded.network;
    let config = SimConfig::default();
    let mut picture = Picture::new(net, Some(&loaded.report.source));
    let request = ProbeRequest {
        from: node_named(net, "peer").expect("peer"),
        written: "10.0.2.15".into(),
        dst: target_address(net, "10.0.2.15").expect("address"),
        probe: Probe::Tcp {
            port: reachlab::model::Port::new(2223).expect("port"),
        },
        count: 1,
        wait: None,
        ttl: None,
    };
    picture.add_trace(&run_request(net, request, &config), &config);
    let dot = picture.render(GraphFormat::Dot);
    assert!(dot.contains("DNAT 10.0.2.15:2223 → 172.17.0.3:22"), "{dot}");
    assert!(dot.contains("dir=forward"), "{dot}");
    let mermaid = picture.render(GraphFormat::Mermaid);
    assert!(mermaid.contains("==>|\"1\"|"), "{mermaid}");
    assert!(mermaid.contains("linkStyle"), "{mermaid}");
}

// ------------------------------------------------------------------------- the CLI

fn reachlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("reachlab runs")
}

#[test]
fn the_command_line_draws_and_refuses_bad_probes() {
    let out = reachlab(&[
        "graph",
        "topologies/basics-two-subnets.yaml",
        "--as",
        "mermaid",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("flowchart TB"));
    let out = reachlab(&[
        "graph",
        "topologies/basics-two-subnets.yaml",
        "--trace",
        "pc1",
        "pc2",
        "--probe",
        "smtp",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`smtp` is not a probe"));
    let out = reachlab(&[
        "graph",
        "topologies/basics-two-subnets.yaml",
        "--trace",
        "nobody",
        "pc2",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

// ------------------------------------------------------------------------- Chromium

/// Inflates a zlib stream (RFC 1950/1951), enough for PNG data.
fn inflate(zlib: &[u8]) -> Result<Vec<u8>, String> {
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        bit: u32,
    }
    impl Bits<'_> {
        fn get(&mut self, n: u32) -> Result<u32, String> {
            let mut v = 0;
            for i in 0..n {
                let byte = *self.data.get(self.pos).ok_or("out of data")?;
                v |= u32::from((byte >> self.bit) & 1) << i;
                self.bit += 1;
                if self.bit == 8 {
                    self.bit = 0;
                    self.pos += 1;
                }
            }
            Ok(v)
        }
    }
    struct Huffman {
        counts: [u16; 16],
        symbols: Vec<u16>,
    }
    fn huffman(lengths: &[u8]) -> Huffman {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for i in 1..16 {
            offsets[i] = offsets[i - 1] + counts[i - 1];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (s, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[usize::from(offsets[usize::from(l)])] = s as u16;
                offsets[usize::from(l)] += 1;
            }
        }
        Huffman { counts, symbols }
    }
    fn decode(bits: &mut Bits<'_>, h: &Huffman) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.get(1)? as i32;
            let count = i32::from(h.counts[len]);
            if code - count < first {
                return h
                    .symbols
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or_else(|| "bad code".to_owned());
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err("code too long".into())
    }
    const LBASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEXT: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DBASE: [u32; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DEXT: [u32; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    if zlib.len() < 2 || zlib[0] & 0x0f != 8 {
        return Err("not a deflate zlib stream".into());
    }
    let mut bits = Bits {
        data: &zlib[2..],
        pos: 0,
        bit: 0,
    };
    let mut out: Vec<u8> = Vec::new();
    loop {
        let last = bits.get(1)?;
        match bits.get(2)? {
            0 => {
                if bits.bit != 0 {
                    bits.bit = 0;
                    bits.pos += 1;
                }
                let d = bits.data;
                let p = bits.pos;
                let len = usize::from(*d.get(p).ok_or("eof")?)
                    | usize::from(*d.get(p + 1).ok_or("eof")?) << 8;
                out.extend_from_slice(d.get(p + 4..p + 4 + len).ok_or("eof")?);
                bits.pos = p + 4 + len;
            }
            kind @ (1 | 2) => {
                let (lit, dist) = if kind == 1 {
                    let mut l = [8u8; 288];
                    l[144..256].fill(9);
                    l[256..280].fill(7);
                    (huffman(&l), huffman(&[5u8; 30]))
                } else {
                    let hlit = bits.get(5)? as usize + 257;
                    let hdist = bits.get(5)? as usize + 1;
                    let hclen = bits.get(4)? as usize + 4;
                    const ORDER: [usize; 19] = [
                        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                    ];
                    let mut cl = [0u8; 19];
                    for &o in ORDER.iter().take(hclen) {
                        cl[o] = bits.get(3)? as u8;
                    }
                    let ch = huffman(&cl);
                    let mut lengths = Vec::with_capacity(hlit + hdist);
                    while lengths.len() < hlit + hdist {
                        match decode(&mut bits, &ch)? {
                            s @ 0..=15 => lengths.push(s as u8),
                            16 => {
                                let prev = *lengths.last().ok_or("repeat of nothing")?;
                                for _ in 0..3 + bits.get(2)? {
                                    lengths.push(prev);
                                }
                            }
                            17 => lengths.extend(std::iter::repeat_n(0, 3 + bits.get(3)? as usize)),
                            _ => lengths.extend(std::iter::repeat_n(0, 11 + bits.get(7)? as usize)),
                        }
                    }
                    (huffman(&lengths[..hlit]), huffman(&lengths[hlit..]))
                };
                loop {
                    let sym = decode(&mut bits, &lit)?;
                    if sym < 256 {
                        out.push(sym as u8);
                    } else if sym == 256 {
                        break;
                    } else {
                        let i = usize::from(sym - 257);
                        let len = usize::from(*LBASE.get(i).ok_or("bad length")?)
                            + bits.get(LEXT[i])? as usize;
                        let d = usize::from(decode(&mut bits, &dist)?);
                        let back = *DBASE.get(d).ok_or("bad distance")? as usize
                            + bits.get(DEXT[d])? as usize;
                        let start = out.len().checked_sub(back).ok_or("distance too far")?;
                        for k in 0..len {
                            out.push(out[start + k]);
                        }
                    }
                }
            }
            _ => return Err("bad block type".into()),
        }
        if last == 1 {
            return Ok(out);
        }
    }
}

/// Width, height and RGBA pixels of an 8-bit RGB or RGBA PNG.
fn decode_png(png: &[u8]) -> Result<(u32, u32, Vec<[u8; 4]>), String> {
    if png.get(..8) != Some(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a][..]) {
        return Err("not a PNG".into());
    }
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().map_err(|_| "len")?) as usize;
        let kind = &png[at + 4..at + 8];
        let data = png.get(at + 8..at + 8 + len).ok_or("truncated chunk")?;
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().map_err(|_| "w")?);
                height = u32::from_be_bytes(data[4..8].try_into().map_err(|_| "h")?);
                if data[8] != 8 || data[12] != 0 {
                    return Err(format!("bit depth {} / interlace {}", data[8], data[12]));
                }
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => return Err(format!("colour type {other}")),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let raw = inflate(&idat)?;
    let stride = width as usize * channels;
    let mut pixels = Vec::with_capacity(width as usize * height as usize);
    let mut previous = vec![0u8; stride];
    for row in 0..height as usize {
        let start = row * (stride + 1);
        let filter = *raw.get(start).ok_or("short image data")?;
        let mut line = raw
            .get(start + 1..start + 1 + stride)
            .ok_or("short row")?
            .to_vec();
        for i in 0..stride {
            let a = if i >= channels { line[i - channels] } else { 0 };
            let b = previous[i];
            let c = if i >= channels {
                previous[i - channels]
            } else {
                0
            };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => return Err(format!("filter {other}")),
            };
            line[i] = line[i].wrapping_add(predictor);
        }
        for px in line.chunks(channels) {
            pixels.push([px[0], px[1], px[2], if channels == 4 { px[3] } else { 255 }]);
        }
        previous = line;
    }
    Ok((width, height, pixels))
}

fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("REACHLAB_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!(
            "{test} needs /usr/bin/chromium (REACHLAB_REQUIRE_KERNEL=1): apt-get install -y chromium"
        );
    }
    eprintln!("SKIPPED {test}: /usr/bin/chromium is not installed (apt-get install -y chromium)");
    None
}

#[test]
fn chromium_renders_the_picture() {
    let Some(chromium) = chromium_or_skip("chromium_renders_the_picture") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("reachlab-graph-{}", std::process::id()));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).expect("scratch directory");
    let svg_path = dir.join("blocked.svg");
    let png_path = dir.join("blocked.png");
    let out = reachlab(&[
        "graph",
        "topologies/lab1-virtualbox.yaml",
        "--trace",
        "neighbour",
        "10.0.2.15",
        "--probe",
        "ssh",
        "-o",
        svg_path.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG");
    let root = parse_xml(&svg).expect("xml");
    let (width, height) = (root.num("width") as u32, root.num("height") as u32);
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", svg_path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let png = std::fs::read(&png_path).expect("chromium wrote the screenshot");
    assert!(
        png.len() > 20_000,
        "a real picture, not {} bytes",
        png.len()
    );
    let (w, h, pixels) = decode_png(&png).expect("a PNG");
    assert_eq!((w, h), (width, height), "the window is the SVG's size");
    let mut colours: Vec<[u8; 4]> = pixels.iter().step_by(7).copied().collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours", colours.len());
    let white = pixels
        .iter()
        .filter(|p| p[0] > 245 && p[1] > 245 && p[2] > 245)
        .count();
    assert!(white * 10 > pixels.len() * 5, "mostly white background");
    assert!(white < pixels.len(), "not blank");
    // The drop is painted red (#e03131), the group box tinted violet (#f3f0ff).
    let red = pixels
        .iter()
        .filter(|p| p[0] > 200 && p[1] < 90 && p[2] < 90)
        .count();
    assert!(red > 200, "red drop marks: {red} pixels");
    let violet = pixels
        .iter()
        .filter(|p| (240..=250).contains(&p[0]) && (235..=245).contains(&p[1]) && p[2] > 250)
        .count();
    assert!(violet > 10_000, "VirtualBox group tint: {violet} pixels");
    let _ = std::fs::remove_dir_all(&dir);
}
