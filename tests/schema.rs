//! The checked-in JSON Schema (embedded in the binary for the structural check) must be the one
//! the code generates, and every topology we ship must satisfy the structural rules it states.

#[test]
fn checked_in_schema_is_current() {
    let generated = reachlab::topology::schema_json();
    let checked_in = std::fs::read_to_string("schema/topology.schema.json").unwrap_or_default();
    assert!(
        generated == checked_in,
        "schema/topology.schema.json is stale: run `cargo run -- schema > schema/topology.schema.json` and commit it"
    );
    // The loader checks files against the copy embedded at build time, not the generated one.
    assert!(
        reachlab::topology::EMBEDDED_SCHEMA == generated,
        "the embedded schema differs from the generated one: rebuild after updating schema/topology.schema.json"
    );
}

#[test]
fn embedded_schema_parses_to_the_generated_schema() {
    let generated = serde_json::to_value(reachlab::topology::schema()).expect("schema is JSON");
    assert!(
        generated
            .get("$defs")
            .is_some_and(|defs| defs.get("NodeSpec").is_some())
    );
    assert_eq!(reachlab::topology::embedded_schema(), &generated);
}

#[test]
fn schema_closes_every_map_and_names_the_required_keys() {
    let schema: serde_json::Value =
        serde_json::from_str(&reachlab::topology::schema_json()).expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], false);
    for def in [
        "SegmentSpec",
        "NodeSpec",
        "InterfaceSpec",
        "RouteSpec",
        "ListenSpec",
        "HttpSpec",
        "ExpectSpec",
    ] {
        assert_eq!(
            schema["$defs"][def]["additionalProperties"], false,
            "{def} must reject unknown keys"
        );
    }
    let required = |def: &str| schema["$defs"][def]["required"].clone();
    assert_eq!(
        required("InterfaceSpec"),
        serde_json::json!(["name", "segment"])
    );
    assert_eq!(required("RouteSpec"), serde_json::json!(["to"]));
    assert_eq!(
        required("ExpectSpec"),
        serde_json::json!(["from", "outcome"])
    );
}
