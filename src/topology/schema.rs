//! The JSON Schema of the topology format, generated from [`super::file`]. The checked-in copy
//! at `schema/topology.schema.json` is compared with this in the tests, so it cannot go stale.

use super::file::TopologyFile;

/// The schema (JSON Schema 2020-12).
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(TopologyFile)
}

/// The schema as pretty JSON with a final newline, as checked in.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
