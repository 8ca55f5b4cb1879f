//! The house has one direction: every top-level module of the library may name only the
//! modules below it on the ladder, never one above, so the import graph has no cycle. This test
//! reads the source and fails on an upward `crate::…` path in code: plain paths
//! (`crate::sim::run_probe`) and grouped ones (`use crate::{model::Network, sim::{…}}`, over
//! several lines); comments and doc links are not imports. A file's unit tests (its
//! `#[cfg(test)]` module, last in the file) are not part of the library: they may load a
//! topology file as a fixture. The binary's command modules (`src/cli`, `src/main.rs`) sit on
//! top and name the library as `reachlab::…`.
//!
//! The same source walk holds two more rules of issue 13: no function over 150 lines, and JSON
//! built from types that derive `Serialize`, never from `json!` literals.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The ladder, from the bottom: a module may name only those before it.
///
/// - `model`: ids, network, routes, netfilter, listeners, probes, outcomes, origins;
/// - `format`: the topology file's serde types (platform sections included), positions,
///   diagnostics, the structural check, the schema, text edits;
/// - `platform`: the platform sections expanded into plain segments, nodes and rules;
/// - `topology`: loading (parse, expand, validate, lower into the model) and writing back;
/// - `sim`: the compiled per-node decisions, the engine, the fast path, captures;
/// - analysis, each over the ones before: `explain` (why), `run` (a probe end to end),
///   `traceroute`, `matrix`, `invariants` (checks, failures, fuzz), `fix` (verified fixes, guarded by the
///   checks), `diff`, `generate`, `testing` (proptest strategies), `emulate` (the kernel);
/// - `render`: text like the real tools, JSON records, graphs, pcap.
const LADDER: &[&str] = &[
    "model",
    "format",
    "platform",
    "topology",
    "sim",
    "explain",
    "run",
    "traceroute",
    "matrix",
    "invariants",
    "fix",
    "diff",
    "generate",
    "testing",
    "emulate",
    "render",
];

/// Files that are not a module of the ladder: the crate root and the binary.
const OUTSIDE: &[&str] = &["lib", "main", "cli"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/sim/engine.rs` → `sim`).
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix("src").expect("under src");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The library part of a file (before its unit tests), with comments blanked out. Strings are
/// kept, so a `//` inside one (`"http://"`) does not hide the rest of its line.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim() == "#[cfg(test)]" {
            break;
        }
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = ' ';
        let mut kept = String::new();
        for c in line.chars() {
            if in_string {
                escaped = !escaped && c == '\\';
                if c == '"' && !escaped {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else if c == '/' && previous == '/' {
                kept.pop();
                break;
            }
            kept.push(c);
            previous = c;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every module `code` names through `crate::`, with the line it is named on.
fn named_modules(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut rest = code;
    let mut offset = 0;
    while let Some(at) = rest.find("crate::") {
        let start = offset + at;
        let line = code[..start].matches('\n').count() + 1;
        let after = &code[start + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            for head in group_heads(group) {
                found.push((line, head));
            }
        } else {
            let ident: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((line, ident));
        }
        offset = start + "crate::".len();
        rest = &code[offset..];
    }
    found
}

/// The first identifier of each comma-separated path in a `{…}` group (nested groups skipped),
/// up to the group's closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut expecting) = (0usize, true);
    let mut ident = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if expecting && depth == 0 && (c.is_alphanumeric() || c == '_') => ident.push(c),
            _ if expecting && !ident.is_empty() => {
                heads.push(std::mem::take(&mut ident));
                expecting = false;
            }
            _ => {}
        }
    }
    if expecting && !ident.is_empty() {
        heads.push(ident);
    }
    heads
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    files.sort();
    files
}

#[test]
fn every_module_is_on_the_ladder() {
    let modules: BTreeSet<String> = sources().iter().map(|f| module_of(f)).collect();
    let missing: Vec<&String> = modules
        .iter()
        .filter(|m| !LADDER.contains(&m.as_str()) && !OUTSIDE.contains(&m.as_str()))
        .collect();
    assert!(missing.is_empty(), "modules not on the ladder: {missing:?}");
}

#[test]
fn every_module_names_only_the_modules_below_it() {
    let rank = |m: &str| LADDER.iter().position(|l| *l == m);
    let mut problems = Vec::new();
    let mut edges = BTreeSet::new();
    for file in sources() {
        let module = module_of(&file);
        let Some(own) = rank(&module) else { continue };
        let text = std::fs::read_to_string(&file).expect("readable");
        for (line, named) in named_modules(&code_of(&text)) {
            let Some(other) = rank(&named) else { continue };
            if other == own {
                continue;
            }
            edges.insert((module.clone(), named.clone()));
            if other > own {
                problems.push(format!(
                    "{}:{line}: `{module}` names `{named}`, which is above it",
                    file.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
    // The check saw the graph: the layers it knows use each other.
    for (from, to) in [("sim", "model"), ("platform", "format"), ("render", "run")] {
        assert!(
            edges.contains(&(from.to_owned(), to.to_owned())),
            "{from} → {to} not seen; edges: {edges:?}"
        );
    }
}

#[test]
fn the_check_reads_plain_grouped_and_multiline_paths() {
    let code = code_of(
        "use crate::topology::Origin; // crate::render is a comment\n\
         /// [`crate::invariants`]\n\
         use crate::{\n    model::{Network, Node},\n    sim::run_probe,\n};\n\
         let url = \"http://x\"; let y = crate::diff::cells();\n\
         use crate::topologyx::A;\n\
         #[cfg(test)]\nmod tests {\n    use crate::cli::X;\n}\n",
    );
    let named: Vec<(usize, String)> = named_modules(&code);
    let expected: Vec<(usize, String)> = [
        (1, "topology"),
        (3, "model"),
        (3, "sim"),
        (7, "diff"),
        (8, "topologyx"),
    ]
    .iter()
    .map(|(l, m)| (*l, (*m).to_owned()))
    .collect();
    assert_eq!(named, expected);
}

/// The end of the function whose signature is on line `start` of `lines`: the first later
/// line that closes a block at the signature's indentation (rustfmt's layout), if any.
fn function_end(lines: &[&str], start: usize) -> Option<usize> {
    let indent = lines[start].len() - lines[start].trim_start().len();
    let closing = format!("{}}}", " ".repeat(indent));
    (start + 1..lines.len()).find(|&n| lines[n].starts_with(&closing))
}

fn is_function_start(line: &str) -> bool {
    let trimmed = line.trim_start();
    let rest = ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p))
        .unwrap_or(trimmed);
    let rest = rest.strip_prefix("const ").unwrap_or(rest);
    let rest = rest.strip_prefix("unsafe ").unwrap_or(rest);
    rest.starts_with("fn ") && !trimmed.ends_with(';')
}

/// Functions say one thing each: none in `src/` runs over 150 lines.
#[test]
fn no_function_over_150_lines() {
    let mut long = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for start in (0..lines.len()).filter(|&n| is_function_start(lines[n])) {
            if let Some(end) = function_end(&lines, start)
                && end - start + 1 > 150
            {
                long.push(format!(
                    "{}:{} is {} lines",
                    file.display(),
                    start + 1,
                    end - start + 1
                ));
            }
        }
    }
    assert!(long.is_empty(), "long functions:\n{}", long.join("\n"));
}

#[test]
fn the_length_check_measures_a_function() {
    let text = "fn a() {\n    x();\n}\n    pub(crate) fn b() {\n        y();\n    }\n";
    let lines: Vec<&str> = text.lines().collect();
    assert!(is_function_start(lines[0]) && is_function_start(lines[3]));
    assert_eq!(function_end(&lines, 0), Some(2));
    assert_eq!(function_end(&lines, 3), Some(5));
    assert!(!is_function_start("    fn declared(&self);"));
}

/// JSON output is made of types that derive `Serialize` (their fields are the documentation of
/// the format), never of `json!` literals assembled in place.
#[test]
fn no_json_literals_outside_tests() {
    let mut found = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).expect("readable");
        for (n, line) in code_of(&text).lines().enumerate() {
            if line.contains("json!(") {
                found.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "json! outside tests:\n{}",
        found.join("\n")
    );
}
