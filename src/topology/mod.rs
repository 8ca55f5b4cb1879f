//! Loading a topology file: parse it with positions (`crate::format`), check its structure
//! against the schema, expand its platform sections (`crate::platform`), validate it with
//! `file:line:column` diagnostics and lower it into the [`crate::model`]; and the way back,
//! a model written as a file. The format's own items are re-exported here, so that a user of
//! the library finds everything about a topology file in one place.

mod ip_json;
pub mod iptables;
mod load;
mod lower;
mod lower_expect;
mod lower_invariants;
mod lower_listen;
mod lower_netfilter;
mod lower_platform_rules;
pub mod nft;
mod write;

pub use crate::format::{
    Code, Diagnostic, DiagnosticJson, EMBEDDED_SCHEMA, FileReport, Located, MAX_FILE_BYTES,
    MAX_NODES, Origin, ReadError, Severity, SourceFile, Span, closest_name, edit, embedded_schema,
    file, irregular_kind, naming, read_regular, schema, schema_json, units,
};
pub use load::{
    Collected, Expanded, Loaded, collect_topology_files, collect_topology_files_reporting,
    load_expanded, load_path, load_path_expanded, load_source, load_str,
};
pub use write::{to_file, to_yaml};
