//! Loading: text → YAML tree (read once: from the parser's events where `format/fast_tree.rs`
//! is sure, else by serde-saphyr) → structural check → typed file (read from the tree, which is
//! then dropped) → validated [`Network`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::lower::{lower, lower_releasing};
use crate::format::fast_json;
use crate::format::file::TopologyFile;
use crate::format::from_tree::from_tree;
use crate::format::structure::Checker;
use crate::format::tree::Tree;
use crate::format::yaml::{from_saphyr_error, parse_options, read_tree};
use crate::format::{Code, Diagnostic, FileReport};
use crate::format::{Located, ReadError, RulesDialect, RulesText, SourceFile, Span, read_regular};
use crate::format::{MAX_FILE_BYTES, MAX_NODES};
use crate::model::Network;

/// A topology that loaded: the network and any warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub network: Network,
    /// The file and its warnings (no errors).
    pub report: FileReport,
}

/// Loads a topology from text; `name` is the file name shown in diagnostics.
pub fn load_str(name: &str, text: &str) -> Result<Loaded, Box<FileReport>> {
    load_source(SourceFile::new(name, text))
}

/// Reads and loads one file.
pub fn load_path(path: &Path) -> Result<Loaded, Box<FileReport>> {
    read_source(path).and_then(load_source)
}

/// Reads a file's text, refusing what is not a regular file, too large or not UTF-8 as
/// [`load_path`] does.
fn read_source(path: &Path) -> Result<SourceFile, Box<FileReport>> {
    let name = path.display().to_string();
    let bytes = match read_regular(path, MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(e @ ReadError::TooLarge { .. }) => {
            return Err(io_report(
                &name,
                format!("the file is larger than {MAX_FILE_BYTES} bytes, the limit for a topology"),
                e.hint(),
            ));
        }
        Err(e) => return Err(io_report(&name, e.to_string(), e.hint())),
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let source = SourceFile::new(name, text);
            let span = source.span_at(at, 1);
            Err(Box::new(FileReport {
                diagnostics: vec![
                    Diagnostic::error(Code::YamlSyntax, span, "the file is not UTF-8 text")
                        .label("invalid byte")
                        .hint("save the file as UTF-8"),
                ],
                source,
            }))
        }
    }
}

fn io_report(name: &str, message: String, hint: &str) -> Box<FileReport> {
    Box::new(FileReport {
        source: SourceFile::new(name, ""),
        diagnostics: vec![Diagnostic::error(Code::Io, Span::default(), message).hint(hint)],
    })
}

/// Loads an already-read file.
pub fn load_source(source: SourceFile) -> Result<Loaded, Box<FileReport>> {
    load_kept(source, false).map(|expanded| expanded.loaded)
}

/// A topology that loaded, with its file as the lowering saw it: platform sections expanded
/// into ordinary segments, nodes and rules (each keeping the position of the text it came
/// from). Tools that change a file and check it again (`reachlab fuzz`) change this copy and
/// [lower](Expanded::lower) it.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub loaded: Loaded,
    pub file: TopologyFile,
}

impl Expanded {
    /// Validates and lowers a changed copy of [`Expanded::file`] (platform sections are not
    /// expanded again); the errors when it does not validate.
    pub fn lower(&self, file: &TopologyFile) -> Result<Network, Vec<Diagnostic>> {
        let source = &self.loaded.report.source;
        let (network, diagnostics) = lower(file, source.name(), &stem_of(source.name()));
        let errors: Vec<Diagnostic> = diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if errors.is_empty() {
            Ok(network)
        } else {
            Err(errors)
        }
    }

    /// Where the value of `key` is written in each of the file's own `nodes:` that writes it
    /// (nodes made by a platform section have none), by node name. The YAML is read again:
    /// the loader keeps no tree of it, only the typed file.
    pub fn node_key_spans(&self, key: &str) -> HashMap<String, Span> {
        let text = self.loaded.report.source.text();
        let Ok(tree) = read_tree(text, &parse_options(text.len())) else {
            return HashMap::new();
        };
        let Tree::Map(top) = &tree.value else {
            return HashMap::new();
        };
        let Some((
            _,
            Located {
                value: Tree::Seq(nodes),
                ..
            },
        )) = top.iter().find(|(k, _)| k.value.0 == "nodes")
        else {
            return HashMap::new();
        };
        nodes
            .iter()
            .filter_map(|item| {
                let Tree::Map(entries) = &item.value else {
                    return None;
                };
                let name = entries.iter().find_map(|(k, v)| match &v.value {
                    Tree::Str(name) if k.value.0 == "name" => Some(name.clone()),
                    _ => None,
                })?;
                let (_, value) = entries.iter().find(|(k, _)| k.value.0 == key)?;
                Some((name, value.span))
            })
            .collect()
    }
}

/// Reads the rules text of each node with `iptables`, `iptables_save`, `nft` or
/// `nft_ruleset` into the node, with where its lines are (one of the four per node). A rules
/// file is read as the topology is (a regular UTF-8 file of at most [`MAX_FILE_BYTES`]), only
/// inside the topology's folder.
fn attach_rules(file: &mut TopologyFile, source: &SourceFile, base: &Path) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for node in &mut file.nodes {
        let keys = [
            (
                "iptables",
                &node.iptables,
                RulesDialect::IptablesSave,
                false,
            ),
            (
                "iptables_save",
                &node.iptables_save,
                RulesDialect::IptablesSave,
                true,
            ),
            ("nft", &node.nft, RulesDialect::Nft, false),
            ("nft_ruleset", &node.nft_ruleset, RulesDialect::Nft, true),
        ];
        let mut given = keys
            .iter()
            .filter_map(|(k, v, d, f)| Some((*k, (*v).as_ref()?, *d, *f)));
        let Some((first, value, dialect, is_file)) = given.next() else {
            continue;
        };
        if let Some((second, other, ..)) = given.next() {
            diagnostics.push(
                Diagnostic::error(
                    Code::BadValue,
                    other.span,
                    format!("a node takes one of `iptables`, `iptables_save`, `nft` and `nft_ruleset`; this one has `{first}` and `{second}`"),
                )
                .hint("keep one of them"),
            );
            continue;
        }
        if !is_file {
            node.rules_text = Some(Box::new(
                RulesText::inline(source, &value.value, value.span).in_dialect(dialect),
            ));
            continue;
        }
        match read_rules(base, &value.value, dialect) {
            Ok(rules) => {
                node.rules_text = Some(Box::new(
                    RulesText::of_file(rules, value.span).in_dialect(dialect),
                ))
            }
            Err((message, hint)) => {
                diagnostics.push(Diagnostic::error(Code::Io, value.span, message).hint(hint))
            }
        }
    }
    diagnostics
}

/// The rules file at `written`, inside `base`.
fn read_rules(
    base: &Path,
    written: &str,
    dialect: RulesDialect,
) -> Result<SourceFile, (String, &'static str)> {
    let hint = match dialect {
        RulesDialect::IptablesSave => {
            "name a file of `iptables-save` output in the topology's folder, by a relative path"
        }
        RulesDialect::Nft => {
            "name a file of `nft list ruleset` output in the topology's folder, by a relative path"
        }
    };
    let path = crate::format::confined_path(base, written, "rules file").map_err(|m| (m, hint))?;
    let name = base.join(written).display().to_string();
    let bytes = read_regular(&path, MAX_FILE_BYTES as u64)
        .map_err(|e| (format!("cannot read rules file {name}: {e}"), e.hint()))?;
    String::from_utf8(bytes)
        .map(|text| SourceFile::new(name.clone(), text))
        .map_err(|_| {
            (
                format!("rules file {name} is not UTF-8 text"),
                "save it as UTF-8",
            )
        })
}

/// The file name without its directory and extension, the default topology name.
fn stem_of(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Reads and loads one file, keeping its expanded form (see [`Expanded`]).
pub fn load_path_expanded(path: &Path) -> Result<Expanded, Box<FileReport>> {
    read_source(path).and_then(load_expanded)
}

/// Loads an already-read file, keeping its expanded form (see [`Expanded`]).
pub fn load_expanded(source: SourceFile) -> Result<Expanded, Box<FileReport>> {
    load_kept(source, true)
}

/// Loads `source`; `keep_file`: whether the caller keeps the expanded file (when it does not,
/// lowering gives back each node's interfaces and routes as it goes, and the `Expanded` it
/// returns holds a file without them).
fn load_kept(source: SourceFile, keep_file: bool) -> Result<Expanded, Box<FileReport>> {
    let fail = |source: SourceFile, diagnostics: Vec<Diagnostic>| {
        let mut report = FileReport {
            source,
            diagnostics,
        };
        report.sort();
        Err(Box::new(report))
    };
    if source.text().len() > MAX_FILE_BYTES {
        let d = Diagnostic::error(
            Code::Io,
            Span::default(),
            format!(
                "the text is {} bytes; the limit is {MAX_FILE_BYTES}",
                source.text().len()
            ),
        )
        .hint("split the topology, or check that this is the file you meant");
        return fail(source, vec![d]);
    }
    if source.text().trim().is_empty()
        || source
            .text()
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        let d = Diagnostic::error(
            Code::MissingKey,
            source.span_at(0, 0),
            "the file holds no topology",
        )
        .hint("a topology has at least `nodes:`; see docs/topology-format.md");
        return fail(source, vec![d]);
    }
    let options = parse_options(source.text().len());
    // A JSON file read without a tree where that reader is sure (format/fast_json.rs); every
    // other file, and every JSON file it declines, through the YAML tree.
    let top_keys = ["kubernetes", "nodes"];
    let fast = options
        .budget
        .as_ref()
        .and_then(|budget| fast_json::read::<TopologyFile>(source.text(), budget, &top_keys));
    let read = match fast {
        Some(read) => Ok(Read {
            nodes_key: read.top_key.unwrap_or(read.document),
            file: read.value,
            document: read.document,
            diagnostics: Vec::new(),
        }),
        None => read_yaml(&source, options, &top_keys),
    };
    let Read {
        mut file,
        document,
        nodes_key,
        mut diagnostics,
    } = match read {
        Ok(read) => read,
        Err(diagnostics) => return fail(source, diagnostics),
    };
    let stem = stem_of(source.name());
    let base = Path::new(source.name()).parent().unwrap_or(Path::new("."));
    let mut semantic = attach_rules(&mut file, &source, base);
    semantic.extend(super::ip_json::attach(&mut file, base));
    semantic.extend(crate::platform::expand(&mut file, base));
    if file.nodes.len() > MAX_NODES {
        semantic.push(too_many_nodes(nodes_key, file.nodes.len()));
        diagnostics.extend(semantic);
        return fail(source, finish(document, diagnostics));
    }
    let (network, lowered) = if keep_file {
        lower(&file, source.name(), &stem)
    } else {
        lower_releasing(&mut file, source.name(), &stem)
    };
    semantic.extend(lowered);
    // The structural pass and lowering may both see a bad value (an MTU out of range, say):
    // a later finding of the same kind at the same known place as a structural one is that
    // problem again. Findings of the later passes are all kept.
    let structural = diagnostics.len();
    for d in semantic {
        let again = diagnostics[..structural]
            .iter()
            .any(|seen| d.span.is_some() && seen.span == d.span && seen.code == d.code);
        if !again && !diagnostics.contains(&d) {
            diagnostics.push(d);
        }
    }
    let diagnostics = finish(document, diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return fail(source, diagnostics);
    }
    let mut report = FileReport {
        source,
        diagnostics,
    };
    report.sort();
    Ok(Expanded {
        loaded: Loaded { network, report },
        file,
    })
}

/// A file's typed form, its structural findings, and the places later passes report at.
struct Read {
    file: TopologyFile,
    /// The whole document (where a finding without a place of its own is shown).
    document: Span,
    /// The first of the top-level keys asked for (the document when none is written).
    nodes_key: Span,
    diagnostics: Vec<Diagnostic>,
}

/// Reads `source` as YAML: the tree (dropped once read), the structural check over it, and
/// the typed file; the diagnostics that end the load when there is no typed file.
fn read_yaml(
    source: &SourceFile,
    options: serde_saphyr::Options,
    top_keys: &[&str],
) -> Result<Read, Vec<Diagnostic>> {
    let tree: Located<Tree> = match read_tree(source.text(), &options) {
        Ok(tree) => tree,
        Err(e) => return Err(vec![from_saphyr_error(source, &e, Code::YamlSyntax)]),
    };
    if !matches!(tree.value, Tree::Map(_)) {
        let d = Diagnostic::error(
            Code::WrongType,
            tree.span,
            "a topology file must be a map of keys",
        )
        .label("not a map")
        .hint("start with `segments:` and `nodes:` at the beginning of a line");
        return Err(vec![d]);
    }
    let document = tree.span;
    let nodes_key = top_key_span(&tree, top_keys);
    let mut checker = Checker::new();
    checker.check_document(&tree);
    let mut diagnostics = checker.diagnostics;
    // The typed file is read from the tree; only what the tree's reader is unsure of (and
    // every file that does not read, for serde-saphyr's own message) is read from the text.
    // (Reading it by consuming the tree saved memory but cost 12 % of a large file's load:
    // the typed file's allocations then land in the tree's freed chunks; benches/RESULTS.md.)
    let typed = from_tree::<TopologyFile>(&tree, source.text())
        .or_else(|_| serde_saphyr::from_str_with_options(source.text(), options));
    match typed {
        Ok(file) => Ok(Read {
            file,
            document,
            nodes_key,
            diagnostics,
        }),
        Err(e) => {
            if diagnostics.is_empty() {
                diagnostics.push(from_saphyr_error(source, &e, Code::WrongType));
            }
            Err(finish(document, diagnostics))
        }
    }
}

/// The error for a topology with more than [`MAX_NODES`] nodes after expansion, at `nodes:`
/// (or the first platform section when the file writes no nodes itself).
fn too_many_nodes(span: Span, count: usize) -> Diagnostic {
    Diagnostic::error(
        Code::BadValue,
        span,
        format!("the topology has {count} nodes once expanded; the limit is {MAX_NODES}"),
    )
    .label("too many nodes")
    .hint("split the topology, or generate fewer pods and nodes")
}

/// The span of the first of `keys` written at the top of the file; the file's start else.
fn top_key_span(tree: &Located<Tree>, keys: &[&str]) -> Span {
    let Tree::Map(top) = &tree.value else {
        return tree.span;
    };
    keys.iter()
        .find_map(|key| top.iter().find(|(k, _)| k.value.0 == *key))
        .map_or(tree.span, |(k, _)| k.span)
}

/// The last pass over a file's diagnostics: every one gets a position (the start of the
/// document when no pass knew a better one) and a hint, so nothing is shown without either.
fn finish(document: Span, diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics
        .into_iter()
        .map(|mut d| {
            if d.span.is_none() && !document.is_unknown() {
                d.span = Some(document);
            }
            if d.hint.is_none() {
                d.hint = Some(default_hint(d.code).to_owned());
            }
            d
        })
        .collect()
}

/// The hint for a diagnostic whose pass gave none, by its kind.
fn default_hint(code: Code) -> &'static str {
    match code {
        Code::YamlSyntax => "check the indentation and the brackets and quotes around this place",
        Code::UnknownKey => "check the spelling; docs/topology-format.md lists every key",
        Code::MissingKey => "add the missing key; docs/topology-format.md shows each section",
        Code::WrongType => "see docs/topology-format.md for the shape of each section",
        Code::BadValue => "see docs/topology-format.md for the values allowed here",
        Code::BadAddress => {
            "write an IPv4 address such as 10.0.0.1, or a prefix such as 10.0.0.0/24"
        }
        Code::HostBitsSet => "clear the host bits: 10.0.0.1/8 is written 10.0.0.0/8",
        Code::ReservedAddress => "pick another address of the subnet",
        Code::DuplicateName => "rename one of the two",
        Code::DuplicateAddress => "give each interface of a segment its own address and MAC",
        Code::DuplicateRoute => "remove one of the routes, or give them different metrics",
        Code::UnknownReference => "check the spelling of the name",
        Code::InvalidGateway => "use a gateway inside one of the node's connected subnets",
        Code::BadName => "use a short name of letters, digits and `-`",
        Code::Unsupported => {
            "docs/platform-semantics.md lists what reachlab models of each platform"
        }
        Code::Io => "check the path, and that the file is a readable topology file",
        Code::IptablesSyntax => "write the rules as `iptables-save` prints them",
        Code::NftSyntax => "write the rules as `nft list ruleset` prints them",
    }
}

/// A Kubernetes manifest (top-level `apiVersion:` and `kind:`), which a topology refers to
/// from its `kubernetes:` section and which is not a topology itself.
fn is_kubernetes_manifest(path: &Path) -> bool {
    read_regular(path, MAX_FILE_BYTES as u64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|text| {
            text.lines().any(|l| l.starts_with("apiVersion:"))
                && text.lines().any(|l| l.starts_with("kind:"))
        })
}

/// A Compose file (top-level `services:`, no `nodes:`), which a topology refers to from an
/// engine's `compose:` and which is not a topology itself.
fn is_compose_file(path: &Path) -> bool {
    read_regular(path, MAX_FILE_BYTES as u64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|text| {
            text.lines().any(|l| l.starts_with("services:"))
                && !text.lines().any(|l| l.starts_with("nodes:"))
        })
}

/// The topology files found under the paths given, and what a directory walk passed over.
#[derive(Debug, Default)]
pub struct Collected {
    pub files: Vec<PathBuf>,
    /// Entries of a directory that were not read, with the reason (a FIFO, a device, a
    /// symbolic link to a directory).
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Expands files and directories (recursively, `*.yaml` and `*.yml`, sorted, skipping
/// Kubernetes manifests and Compose files) into file paths. A file named explicitly is always taken. Entries of
/// a directory that are not regular files are skipped with a warning on stderr (see
/// [`collect_topology_files_reporting`] to get them instead).
pub fn collect_topology_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let collected = collect_topology_files_reporting(paths)?;
    for (path, why) in &collected.skipped {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    Ok(collected.files)
}

/// [`collect_topology_files`], returning the skipped entries instead of printing them.
/// Symbolic links to directories are not followed (a link back up would never end); a FIFO
/// or device in a directory is never opened.
pub fn collect_topology_files_reporting(paths: &[PathBuf]) -> std::io::Result<Collected> {
    let mut out = Collected::default();
    for path in paths {
        if path.is_dir() {
            let mut found = Collected::default();
            walk(path, &mut found)?;
            found.files.sort();
            found.skipped.sort();
            out.files.extend(found.files);
            out.skipped.extend(found.skipped);
        } else {
            out.files.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Collected) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(&path, out)?;
            continue;
        }
        // What the entry is, following a symbolic link (without opening anything).
        let target = if file_type.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(meta) => meta.file_type(),
                Err(_) => {
                    out.skipped.push((path, "a symbolic link to nothing"));
                    continue;
                }
            }
        } else {
            file_type
        };
        if target.is_dir() {
            out.skipped
                .push((path, "a symbolic link to a directory (not followed)"));
            continue;
        }
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        if let Some(kind) = crate::format::irregular_kind(target) {
            out.skipped.push((path, kind));
        } else if !is_kubernetes_manifest(&path) && !is_compose_file(&path) {
            out.files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_files_are_not_collected_as_topologies() {
        let dir = std::env::temp_dir().join(format!("reachlab-collect-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(dir.join("app/compose.yaml"), "services:\n  web: {}\n").unwrap();
        std::fs::write(dir.join("lab.yaml"), "nodes: []\nservices: x\n").unwrap();
        let collected = collect_topology_files_reporting(std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        let files = collected.unwrap().files;
        assert_eq!(files, [dir.join("lab.yaml")]);
    }

    const RULES: &str = "segments: [{ name: lan }]
nodes:
  - name: gw
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    firewall:
      input:
        rules: [{}, { proto: icmp }, {}]
";

    /// Lowering that gives back each node's interfaces and routes as it goes (what every
    /// command but `fuzz` loads with) builds the network, and finds the problems, that lowering
    /// a kept file does: every topology and broken file of the repository.
    #[test]
    fn lowering_without_keeping_the_file_changes_nothing() {
        let mut files = crate::format::yaml_files("topologies");
        files.extend(crate::format::yaml_files("tests/broken"));
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let name = path.display().to_string();
            let kept = load_expanded(SourceFile::new(name.clone(), text.clone()))
                .map(|e| format!("{:?}", e.loaded))
                .map_err(|r| format!("{:?}", r.diagnostics));
            let released = load_source(SourceFile::new(name.clone(), text))
                .map(|l| format!("{l:?}"))
                .map_err(|r| format!("{:?}", r.diagnostics));
            assert_eq!(kept, released, "{name}");
        }
    }

    #[test]
    fn distinct_problems_at_one_place_are_all_kept() {
        let report = load_str("t.yaml", RULES).expect_err("invalid");
        assert_eq!(report.diagnostics.len(), 3, "{:#?}", report.diagnostics);
    }

    #[test]
    fn every_diagnostic_gets_a_position_and_a_hint() {
        let report = load_str("t.yaml", RULES).expect_err("invalid");
        for d in &report.diagnostics {
            assert!(d.span.is_some() && d.hint.is_some(), "{d:?}");
        }
    }

    #[test]
    fn a_second_document_is_named_as_such() {
        let report = load_str("t.yaml", "nodes: []\n---\nnodes: []\n").expect_err("invalid");
        let d = &report.diagnostics[0];
        assert!(d.message.contains("more than one YAML document"), "{d:?}");
        assert!(!d.message.contains("from_str"), "{d:?}");
    }

    #[test]
    fn an_empty_file_is_refused_at_its_start() {
        let report = load_str("t.yaml", "# nothing\n").expect_err("invalid");
        assert_eq!(report.diagnostics[0].span.map(|s| s.line), Some(1));
    }

    #[test]
    fn a_directory_walk_skips_what_is_not_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("reachlab-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "nodes: []\n").unwrap();
        nix::unistd::mkfifo(&dir.join("b.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let collected = collect_topology_files_reporting(std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        let collected = collected.unwrap();
        assert_eq!(collected.files, [dir.join("a.yaml")]);
        assert_eq!(
            collected.skipped,
            [(dir.join("b.yaml"), "a FIFO (named pipe)")]
        );
    }
}
