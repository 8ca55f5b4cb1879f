//! The topology file format: serde types ([`mod@file`]), loading with positions, the schema-guided
//! structural check, semantic validation with `file:line:column` diagnostics, lowering into the
//! [`crate::model`], and the JSON Schema.

mod diagnostic;
pub mod edit;
pub mod file;
mod load;
mod lower;
mod lower_expect;
mod lower_invariants;
mod lower_listen;
mod lower_netfilter;
pub mod naming;
mod schema;
mod source;
mod structure;
pub mod units;
mod write;

pub use diagnostic::{Code, Diagnostic, DiagnosticJson, FileReport, Severity};
pub use load::{
    Collected, Expanded, Loaded, MAX_FILE_BYTES, MAX_NODES, collect_topology_files,
    collect_topology_files_reporting, load_expanded, load_path, load_path_expanded, load_source,
    load_str,
};
pub use schema::{EMBEDDED_SCHEMA, embedded_schema, schema, schema_json};
pub(crate) use source::open_options;
pub use source::{Located, Origin, ReadError, SourceFile, Span, irregular_kind, read_regular};
pub use write::{to_file, to_yaml};

/// The name in `names` closest to `word`, if it is a likely typo of it.
pub fn closest_name<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    structure::closest(word, names.iter().copied())
}
