//! The layers point down: a module may use the layers below it, never one above. This test
//! reads the source and fails on an upward `crate::…` path in code (comments and doc links are
//! not imports). It holds the three lowest layers today: the model, the format with its
//! lowering (`topology` and `platform`, one layer: the file types include the platform
//! sections), and the simulator; of the analysis layer, `matrix` and `diff` (their renderings
//! are in `render::matrix` and `render::diff`). The rest of the ladder follows as issue 13
//! untangles it. A file's unit tests (its `#[cfg(test)]` module, last in the file) are not
//! part of the library: they may load a topology file as a fixture.

use std::path::Path;

/// The modules above each checked layer: what it must never name.
const RULES: &[(&str, &[&str])] = &[
    (
        "src/model",
        &[
            "topology",
            "platform",
            "sim",
            "run",
            "explain",
            "invariants",
            "matrix",
            "diff",
            "render",
            "cli",
            "emulate",
            "generate",
            "testing",
        ],
    ),
    (
        "src/topology",
        &[
            "sim",
            "run",
            "explain",
            "invariants",
            "matrix",
            "diff",
            "render",
            "cli",
            "emulate",
            "generate",
            "testing",
        ],
    ),
    (
        "src/platform",
        &[
            "sim",
            "run",
            "explain",
            "invariants",
            "matrix",
            "diff",
            "render",
            "cli",
            "emulate",
            "generate",
            "testing",
        ],
    ),
    // The analysis layer, one module at a time as it is untangled: nothing above it.
    (
        "src/matrix",
        &["render", "cli", "emulate", "generate", "testing"],
    ),
    (
        "src/diff.rs",
        &["render", "cli", "emulate", "generate", "testing"],
    ),
    (
        "src/sim",
        &[
            "topology",
            "platform",
            "run",
            "explain",
            "invariants",
            "matrix",
            "diff",
            "render",
            "cli",
            "emulate",
            "generate",
            "testing",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
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

/// Every upward path in `text`: (line number, the path).
fn upward(text: &str, above: &[&str]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let library = text.lines().take_while(|l| l.trim() != "#[cfg(test)]");
    for (n, line) in library.enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for module in above {
            let path = format!("crate::{module}");
            if let Some(at) = code.find(&path) {
                let next = code[at + path.len()..].chars().next();
                if next.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                    found.push((n + 1, path));
                }
            }
        }
    }
    found
}

#[test]
fn the_lower_layers_name_nothing_above_them() {
    let mut problems = Vec::new();
    for (layer, above) in RULES {
        let mut files = Vec::new();
        rust_files(Path::new(layer), &mut files);
        assert!(!files.is_empty(), "{layer} has no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            for (line, path) in upward(&text, above) {
                problems.push(format!("{}:{line}: {layer} uses {path}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_path() {
    assert_eq!(
        upward(
            "use crate::topology::Origin; // ok\n/// [`crate::invariants`]\n",
            &["topology", "invariants"]
        ),
        [(1, "crate::topology".to_owned())]
    );
    assert!(upward("use crate::topologyx::A;", &["topology"]).is_empty());
    // Unit tests after `#[cfg(test)]` may load fixtures; the library above it may not.
    let text =
        "use crate::sim::X;\n#[cfg(test)]\nmod tests {\n    use crate::topology::load_str;\n}\n";
    assert_eq!(
        upward(text, &["sim", "topology"]),
        [(1, "crate::sim".to_owned())]
    );
}

/// JSON output is made of types that derive `Serialize` (their fields are the documentation of
/// the format), never of `json!` literals assembled in place.
#[test]
fn no_json_literals_outside_tests() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let library = text.lines().take_while(|l| l.trim() != "#[cfg(test)]");
        for (n, line) in library.enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("json!(") {
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
