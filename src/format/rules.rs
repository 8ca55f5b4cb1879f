//! The JSON Schema as the structural check ([`super::structure`]) reads it: static tables that
//! `build.rs` compiles from `schema/topology.schema.json` (the checked-in copy of the schema
//! [`super::schema`] generates; `tests/schema.rs` keeps the two equal). A process checks a file
//! without parsing the schema's JSON or allocating any of it.
//!
//! A [`Rule`] holds the keywords of one schema that the check reads, each as the check reads
//! it: `$ref` as its definition, `anyOf` (or else `oneOf`) as `alternatives`, `enum` as
//! `allowed`, `additionalProperties` as `closed` (`false`) or `values` (a schema). The tables
//! hold numbers only (indices into each other and into one text), no pointers: a pointer in a
//! static is a relocation the loader applies, and a page it dirties, at every start of the
//! program.

/// A piece of [`TEXT`].
#[derive(Debug, Clone, Copy)]
struct Text {
    at: u32,
    len: u16,
}

impl Text {
    fn get(self) -> &'static str {
        let at = self.at as usize;
        TEXT.get(at..at + self.len as usize).unwrap_or("")
    }
}

/// Consecutive entries `(start, len)` of a table.
type Run = (u16, u16);

fn run<T>(table: &'static [T], (start, len): Run) -> &'static [T] {
    table
        .get(start as usize..start as usize + len as usize)
        .unwrap_or(&[])
}

/// A list of text (types, `enum` values, required keys), in the schema's order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Texts(&'static [Text]);

impl Texts {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'static str> + Clone {
        self.0.iter().map(|t| t.get())
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn contains(self, text: &str) -> bool {
        self.iter().any(|t| t == text)
    }

    pub(crate) fn first(self) -> Option<&'static str> {
        self.0.first().map(|t| t.get())
    }

    pub(crate) fn to_vec(self) -> Vec<&'static str> {
        self.iter().collect()
    }
}

/// One schema (a definition, a property's, a list's items, one branch of an `anyOf`).
#[derive(Debug)]
pub(crate) struct Rule {
    /// `$ref`: the definition's index in [`DEFS`].
    reference: Option<u16>,
    /// `type`: one JSON type, or several (in [`TEXTS`]).
    types: Run,
    /// `anyOf`, else `oneOf` (in [`RULES`]).
    alternatives: Option<Run>,
    /// `enum` (in [`TEXTS`]).
    allowed: Option<Run>,
    /// `const`.
    constant: Option<Text>,
    /// `items` (in [`RULES`]).
    items: Option<u16>,
    /// `properties` (in [`PROPERTIES`]), sorted by name.
    properties: Option<Run>,
    /// `additionalProperties: false`.
    pub(crate) closed: bool,
    /// `additionalProperties` as a schema (in [`RULES`]): what every other key's value must be.
    values: Option<u16>,
    /// `required` (in [`TEXTS`]).
    required: Run,
    pub(crate) minimum: Option<f64>,
    pub(crate) maximum: Option<f64>,
    description: Option<Text>,
}

include!(concat!(env!("OUT_DIR"), "/schema_rules.rs"));

fn rule(index: u16) -> &'static Rule {
    RULES.get(index as usize).unwrap_or(&RULES[0])
}

impl Rule {
    /// The whole topology file's rule.
    pub(crate) fn root() -> &'static Rule {
        &RULES[0]
    }

    /// The definition called `name` (e.g. `ListenSpec`), with its name.
    pub(crate) fn definition(name: &str) -> Option<(&'static str, &'static Rule)> {
        DEFS.binary_search_by(|(key, _)| key.get().cmp(name))
            .ok()
            .map(|i| (DEFS[i].0.get(), rule(DEFS[i].1)))
    }

    /// Every definition, sorted by name.
    pub(crate) fn definitions() -> impl Iterator<Item = (&'static str, &'static Rule)> {
        DEFS.iter().map(|(name, i)| (name.get(), rule(*i)))
    }

    /// `$ref`: the definition's name and rule.
    pub(crate) fn reference(&self) -> Option<(&'static str, &'static Rule)> {
        let (name, index) = DEFS.get(self.reference? as usize)?;
        Some((name.get(), rule(*index)))
    }

    pub(crate) fn types(&self) -> Texts {
        Texts(run(&TEXTS, self.types))
    }

    pub(crate) fn alternatives(&self) -> Option<&'static [Rule]> {
        self.alternatives.map(|r| run(&RULES, r))
    }

    pub(crate) fn allowed(&self) -> Option<Texts> {
        self.allowed.map(|r| Texts(run(&TEXTS, r)))
    }

    pub(crate) fn constant(&self) -> Option<&'static str> {
        self.constant.map(Text::get)
    }

    pub(crate) fn items(&self) -> Option<&'static Rule> {
        self.items.map(rule)
    }

    /// Whether the schema lists `properties` at all.
    #[cfg(test)]
    pub(crate) fn has_properties(&self) -> bool {
        self.properties.is_some()
    }

    /// The names of the properties, sorted.
    pub(crate) fn property_names(&self) -> impl Iterator<Item = &'static str> {
        let properties = self.properties.map_or(&[][..], |r| run(&PROPERTIES, r));
        properties.iter().map(|(name, _)| name.get())
    }

    /// The rule of the property `name`.
    pub(crate) fn property(&self, name: &str) -> Option<&'static Rule> {
        let properties = run(&PROPERTIES, self.properties?);
        properties
            .binary_search_by(|(key, _)| key.get().cmp(name))
            .ok()
            .map(|i| rule(properties[i].1))
    }

    pub(crate) fn values(&self) -> Option<&'static Rule> {
        self.values.map(rule)
    }

    pub(crate) fn required(&self) -> Texts {
        Texts(run(&TEXTS, self.required))
    }

    pub(crate) fn description(&self) -> Option<&'static str> {
        self.description.map(Text::get)
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
        assert_eq!(rule.reference().map(|(name, _)| name), reference, "{at}");
        let types = match get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            other => texts(other).unwrap_or_default(),
        };
        assert_eq!(rule.types().to_vec(), types, "{at}");
        let branches = get("anyOf")
            .or_else(|| get("oneOf"))
            .and_then(Value::as_array);
        assert_eq!(
            rule.alternatives().map(<[Rule]>::len),
            branches.map(Vec::len),
            "{at}"
        );
        for (i, (r, b)) in rule
            .alternatives()
            .unwrap_or(&[])
            .iter()
            .zip(branches.into_iter().flatten())
            .enumerate()
        {
            same(r, b, &format!("{at}/anyOf/{i}"));
        }
        assert_eq!(
            rule.allowed().map(Texts::to_vec),
            texts(get("enum")),
            "{at}"
        );
        assert_eq!(
            rule.constant(),
            get("const").and_then(Value::as_str),
            "{at}"
        );
        assert_eq!(rule.items().is_some(), get("items").is_some(), "{at}");
        if let (Some(r), Some(v)) = (rule.items(), get("items")) {
            same(r, v, &format!("{at}/items"));
        }
        let properties = get("properties").and_then(Value::as_object);
        assert_eq!(
            rule.has_properties().then(|| rule.property_names().count()),
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
        assert_eq!(rule.values().is_some(), values.is_some(), "{at}");
        if let (Some(r), Some(v)) = (rule.values(), values) {
            same(r, v, &format!("{at}/additionalProperties"));
        }
        assert_eq!(
            rule.required().to_vec(),
            texts(get("required")).unwrap_or_default(),
            "{at}"
        );
        assert_eq!(rule.minimum, get("minimum").and_then(Value::as_f64), "{at}");
        assert_eq!(rule.maximum, get("maximum").and_then(Value::as_f64), "{at}");
        assert_eq!(
            rule.description(),
            get("description").and_then(Value::as_str),
            "{at}"
        );
    }

    #[test]
    fn the_rules_say_what_the_embedded_schema_says() {
        let schema = crate::format::embedded_schema();
        same(Rule::root(), schema, "#");
        let defs = schema["$defs"].as_object().expect("definitions");
        assert_eq!(Rule::definitions().count(), defs.len());
        for (name, def) in defs {
            let (found, rule) = Rule::definition(name).expect("every definition");
            assert_eq!(found, name);
            same(rule, def, name);
        }
    }
}
