//! The JSON Schema as the structural check ([`super::structure`]) reads it: static tables that
//! `build.rs` compiles from `schema/topology.schema.json` (the checked-in copy of the schema
//! [`super::schema`] generates; `tests/schema.rs` keeps the two equal). A process checks a file
//! without parsing the schema's JSON or allocating any of it.
//!
//! A [`Rule`] holds the keywords of one schema that the check reads, each as the check reads
//! it: `$ref` already resolved to its definition, `anyOf` (or else `oneOf`) as `alternatives`,
//! `enum` as `allowed`, `additionalProperties` as `closed` (`false`) or `values` (a schema).

/// One schema (a definition, a property's, a list's items, one branch of an `anyOf`).
#[derive(Debug)]
pub(crate) struct Rule {
    /// `$ref`: the definition's name and rule.
    pub reference: Option<(&'static str, &'static Rule)>,
    /// `type`: one JSON type, or several.
    pub types: &'static [&'static str],
    /// `anyOf`, else `oneOf`.
    pub alternatives: Option<&'static [Rule]>,
    /// `enum` (of text).
    pub allowed: Option<&'static [&'static str]>,
    /// `const` (text).
    pub constant: Option<&'static str>,
    /// `items`.
    pub items: Option<&'static Rule>,
    /// `properties`, sorted by name.
    pub properties: Option<&'static [(&'static str, Rule)]>,
    /// `additionalProperties: false`.
    pub closed: bool,
    /// `additionalProperties` as a schema: what every other key's value must be.
    pub values: Option<&'static Rule>,
    /// `required`.
    pub required: &'static [&'static str],
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub description: Option<&'static str>,
}

include!(concat!(env!("OUT_DIR"), "/schema_rules.rs"));

impl Rule {
    /// The rule of the property `name`.
    pub(crate) fn property(&self, name: &str) -> Option<&'static Rule> {
        let properties = self.properties?;
        properties
            .binary_search_by(|(key, _)| (*key).cmp(name))
            .ok()
            .map(|i| &properties[i].1)
    }

    /// The definition called `name` (e.g. `ListenSpec`), with its name.
    pub(crate) fn definition(name: &str) -> Option<(&'static str, &'static Rule)> {
        DEFS.binary_search_by(|(key, _)| (*key).cmp(name))
            .ok()
            .map(|i| DEFS[i])
    }

    /// The whole topology file's rule.
    pub(crate) fn root() -> &'static Rule {
        &ROOT
    }

    /// Every definition, sorted by name.
    pub(crate) fn definitions() -> &'static [(&'static str, &'static Rule)] {
        DEFS
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// `rule` says what `schema` says, keyword by keyword, as the structural check reads it.
    fn same(rule: &Rule, schema: &Value, at: &str) {
        let get = |key: &str| schema.get(key);
        fn texts(v: Option<&Value>) -> Option<Vec<&str>> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
        }
        let reference = get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"));
        assert_eq!(rule.reference.map(|(name, _)| name), reference, "{at}");
        let types = match get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            other => texts(other).unwrap_or_default(),
        };
        assert_eq!(rule.types, types, "{at}");
        let branches = get("anyOf")
            .or_else(|| get("oneOf"))
            .and_then(Value::as_array);
        assert_eq!(
            rule.alternatives.map(<[Rule]>::len),
            branches.map(Vec::len),
            "{at}"
        );
        for (i, (r, b)) in rule
            .alternatives
            .unwrap_or(&[])
            .iter()
            .zip(branches.into_iter().flatten())
            .enumerate()
        {
            same(r, b, &format!("{at}/anyOf/{i}"));
        }
        assert_eq!(
            rule.allowed.map(<[&str]>::to_vec),
            texts(get("enum")),
            "{at}"
        );
        assert_eq!(rule.constant, get("const").and_then(Value::as_str), "{at}");
        assert_eq!(rule.items.is_some(), get("items").is_some(), "{at}");
        if let (Some(r), Some(v)) = (rule.items, get("items")) {
            same(r, v, &format!("{at}/items"));
        }
        let properties = get("properties").and_then(Value::as_object);
        assert_eq!(
            rule.properties.map(<[_]>::len),
            properties.map(|p| p.len()),
            "{at}"
        );
        for (name, value) in properties.into_iter().flatten() {
            let r = rule
                .property(name)
                .unwrap_or_else(|| panic!("{at}: no {name}"));
            same(r, value, &format!("{at}/{name}"));
        }
        assert_eq!(
            rule.closed,
            get("additionalProperties") == Some(&Value::Bool(false)),
            "{at}"
        );
        let values = get("additionalProperties").filter(|v| v.is_object());
        assert_eq!(rule.values.is_some(), values.is_some(), "{at}");
        if let (Some(r), Some(v)) = (rule.values, values) {
            same(r, v, &format!("{at}/additionalProperties"));
        }
        assert_eq!(
            rule.required,
            texts(get("required")).unwrap_or_default(),
            "{at}"
        );
        assert_eq!(rule.minimum, get("minimum").and_then(Value::as_f64), "{at}");
        assert_eq!(rule.maximum, get("maximum").and_then(Value::as_f64), "{at}");
        assert_eq!(
            rule.description,
            get("description").and_then(Value::as_str),
            "{at}"
        );
    }

    #[test]
    fn the_rules_say_what_the_embedded_schema_says() {
        let schema = crate::format::embedded_schema();
        same(Rule::root(), schema, "#");
        let defs = schema["$defs"].as_object().expect("definitions");
        assert_eq!(Rule::definitions().len(), defs.len());
        for (name, def) in defs {
            let (found, rule) = Rule::definition(name).expect("every definition");
            assert_eq!(found, name);
            same(rule, def, name);
        }
    }
}
