//! The topology file as it is written: its serde types ([`mod@file`], the platform sections in
//! [`platform`]), positions of every value ([`Located`], [`Span`]), diagnostics with
//! `file:line:column`, the schema-guided structural check, the JSON Schema (and the rules compiled from it), units, names, and
//! edits of the file's text (what a fix's patch is made of). Nothing here interprets a file:
//! expanding the platforms is `crate::platform`, loading and lowering into the model
//! `crate::topology`.

mod diagnostic;
pub mod edit;
pub(crate) mod fast_json;
pub(crate) mod fast_tree;
pub mod file;
pub(crate) mod from_tree;
pub mod ip_json;
pub mod naming;
pub mod platform;
mod rules;
mod schema;
mod source;
pub(crate) mod structure;
pub(crate) mod tree;
pub mod units;
pub(crate) mod yaml;

pub use diagnostic::{Code, Diagnostic, DiagnosticJson, FileReport, Severity};
pub use schema::{EMBEDDED_SCHEMA, embedded_schema, schema, schema_json};
pub(crate) use source::open_options;
pub use source::{
    Located, Origin, ReadError, RulesDialect, RulesText, SourceFile, Span, confined_path,
    irregular_kind, read_regular,
};

/// Files larger than this are refused before parsing (a topology is text written by people
/// or generated; 64 MiB holds several hundred thousand nodes).
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// The most nodes a topology may have once platform sections are expanded (pods of a
/// `kubernetes:` cluster become nodes); `reachlab generate` makes at most a million routers.
pub const MAX_NODES: usize = 1 << 20;

/// The name in `names` closest to `word`, if it is a likely typo of it.
pub fn closest_name<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    structure::closest(word, names.iter().copied())
}

/// Every `*.yaml` file under `dir` and its folders, sorted (for tests that read them all).
#[cfg(test)]
pub(crate) fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(dir)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
