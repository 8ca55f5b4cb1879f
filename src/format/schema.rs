//! The JSON Schema of the topology format. It owns the views of one schema:
//!
//! - [`schema`] / [`schema_json`] generate it from the serde types of [`super::file`] with
//!   schemars: the source of truth, printed by `reachlab schema` and checked in at
//!   `schema/topology.schema.json`;
//! - `build.rs` compiles that checked-in copy into the static tables of [`super::rules`], which
//!   the structural check of every load reads (no process parses the schema to check a file;
//!   generating it costs ~3 M instructions, parsing the JSON ~1.5 M);
//! - [`embedded_schema`] is the checked-in copy embedded in the binary and parsed on first use,
//!   for whoever wants the schema as a JSON value (the tests compare it with the generated one).
//!
//! `tests/schema.rs` fails when the checked-in copy differs from the generated schema (so neither
//! the embedded copy nor the compiled rules can go stale unnoticed), and when the embedded copy
//! does not parse to the same JSON value as the generated one; `rules.rs` tests that its tables
//! say what the embedded copy says.

use std::sync::OnceLock;

use serde_json::Value;

use super::file::TopologyFile;

/// `schema/topology.schema.json` as it was when this binary was built.
pub const EMBEDDED_SCHEMA: &str = include_str!("../../schema/topology.schema.json");

/// The schema (JSON Schema 2020-12), generated from the types.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(TopologyFile)
}

/// The generated schema as pretty JSON with a final newline, as checked in.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The embedded schema as a JSON value, parsed on first use. Should the embedded text ever not
/// parse (the tests make sure it does), the generated schema is used instead.
pub fn embedded_schema() -> &'static Value {
    static VALUE: OnceLock<Value> = OnceLock::new();
    VALUE.get_or_init(|| {
        serde_json::from_str(EMBEDDED_SCHEMA)
            .or_else(|_| serde_json::to_value(schema()))
            .unwrap_or(Value::Bool(true))
    })
}
