//! The structural check: walks the YAML as written ([`super::tree`]) against the JSON Schema generated from
//! [`super::file`] and reports every unknown key, missing key, wrong kind of value and value out
//! of range at once, with its position. Typed deserialisation alone would stop at the first.

use std::fmt::Write as _;

use super::diagnostic::{Code, Diagnostic};
use super::rules::Rule;
use super::source::Located;
use super::tree::{Key, Tree};

/// User-facing names of the schema's definitions.
fn noun(def: &str) -> &'static str {
    match def {
        "TopologyFile" => "the topology",
        "SegmentSpec" => "a segment",
        "NodeSpec" => "a node",
        "InterfaceSpec" => "an interface",
        "RouteSpec" => "a route",
        "RuleSpec" => "a rule",
        "FirewallSpec" => "a firewall",
        "ChainSpec" => "a chain",
        "ListenSpec" => "a listener",
        "HttpSpec" => "an http answer",
        "ExpectSpec" => "an expectation",
        "InvariantSpec" => "an invariant",
        "ReachableSpec" => "a `reachable` invariant",
        "GroupsSpec" => "the groups",
        _ => "this map",
    }
}

/// Walks a tree against the schema's rules ([`super::rules`]) and collects diagnostics.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Checker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Checks the whole document.
    pub(crate) fn check_document(&mut self, tree: &Located<Tree>) {
        self.check(tree, Rule::root(), "TopologyFile");
    }

    /// Checks `tree` against the schema's definition `name` (e.g. `ListenSpec`), for values
    /// written elsewhere than the topology (a Compose file's extension field).
    pub(crate) fn check_definition(&mut self, tree: &Located<Tree>, name: &str) {
        if let Some((def, schema)) = Rule::definition(name) {
            self.check(tree, schema, def);
        }
    }

    /// Follows `$ref`s; returns the schema and the name of the definition it came from.
    fn resolve(mut schema: &'static Rule, mut def: &'static str) -> (&'static Rule, &'static str) {
        for _ in 0..16 {
            let Some((name, target)) = schema.reference() else {
                break;
            };
            schema = target;
            def = name;
        }
        (schema, def)
    }

    fn check(&mut self, node: &Located<Tree>, schema: &'static Rule, def: &'static str) {
        let (schema, def) = Self::resolve(schema, def);
        if let Some(branches) = schema.alternatives() {
            self.check_alternatives(node, branches, def);
            return;
        }
        let types = schema.types();
        if !types.is_empty() && !types.iter().any(|t| node.value.fits(t)) {
            let wanted = types
                .iter()
                .filter(|t| *t != "null")
                .map(|t| describe_type(t, schema))
                .collect::<Vec<_>>()
                .join(" or ");
            self.wrong_type(node, &wanted, types.first());
            return;
        }
        if let Some(allowed) = schema.allowed() {
            self.check_enum(node, &allowed.to_vec());
        }
        match &node.value {
            Tree::Int(n) => self.check_range(node, *n, schema),
            Tree::Map(entries) => self.check_map(node, entries, schema, def),
            Tree::Seq(items) => {
                if let Some(item_schema) = schema.items() {
                    for item in items {
                        self.check(item, item_schema, def);
                    }
                }
            }
            _ => {}
        }
    }

    fn check_alternatives(
        &mut self,
        node: &Located<Tree>,
        branches: &'static [Rule],
        def: &'static str,
    ) {
        if matches!(node.value, Tree::Null)
            && branches
                .iter()
                .any(|b| Self::resolve(b, def).0.types().contains("null"))
        {
            return;
        }
        // An enum whose variants are documented comes as `oneOf` constants: check it as a set.
        let constants: Option<Vec<&str>> = branches
            .iter()
            .map(|b| Self::resolve(b, def).0.constant())
            .collect();
        if let Some(constants) = constants {
            self.check_enum(node, &constants);
            return;
        }
        // Try each branch that admits this kind of value; keep the quietest.
        let mut best: Option<Vec<Diagnostic>> = None;
        for branch in branches {
            let types = Self::resolve(branch, def).0.types();
            if !types.is_empty() && !types.iter().any(|t| node.value.fits(t)) {
                continue;
            }
            let mut sub = Checker::new();
            sub.check(node, branch, def);
            if best
                .as_ref()
                .is_none_or(|b| sub.diagnostics.len() < b.len())
            {
                best = Some(sub.diagnostics);
            }
        }
        match best {
            Some(diagnostics) => self.diagnostics.extend(diagnostics),
            None => {
                let types: Vec<&str> = branches
                    .iter()
                    .flat_map(|b| Self::resolve(b, def).0.types().iter())
                    .filter(|t| *t != "null")
                    .collect();
                let wanted = branches
                    .iter()
                    .map(|b| Self::resolve(b, def).0)
                    .flat_map(|s| {
                        s.types()
                            .iter()
                            .filter(|t| *t != "null")
                            .map(move |t| describe_type(t, s))
                    })
                    .collect::<Vec<_>>()
                    .join(" or ");
                self.wrong_type(node, &wanted, types.first().copied());
            }
        }
    }

    /// `first`: the first of the types wanted.
    fn wrong_type(&mut self, node: &Located<Tree>, wanted: &str, first: Option<&str>) {
        let hint = match (&node.value, first) {
            (Tree::Map(_), Some("array")) => Some(
                "write a list: one entry per line, each starting with `- ` (e.g. `- name: lan`)",
            ),
            (Tree::Seq(_), _) => Some("write a single value here, without `[ ]` or `- `"),
            (_, Some("boolean")) => Some("write `true` or `false`"),
            (_, Some("object")) => {
                Some("write a map of `key: value` lines, indented under this key")
            }
            (Tree::Null, _) => Some("give a value after the `:`, or remove the key"),
            _ => None,
        };
        let hint = hint.map_or_else(|| format!("write {wanted} here"), str::to_owned);
        self.diagnostics.push(
            Diagnostic::error(
                Code::WrongType,
                node.span,
                format!("expected {wanted}, found {}", node.value.kind()),
            )
            .label(format!("this is {}", node.value.kind()))
            .hint(hint),
        );
    }

    fn check_enum(&mut self, node: &Located<Tree>, names: &[&str]) {
        let Some(text) = node.value.scalar_text() else {
            return;
        };
        if names.contains(&text.as_str()) {
            return;
        }
        let mut hint = format!("use one of: {}", names.join(", "));
        if let Some(close) = closest(&text, names.iter().copied()) {
            hint = format!("did you mean `{close}`? ({hint})");
        }
        self.diagnostics.push(
            Diagnostic::error(
                Code::BadValue,
                node.span,
                format!("`{text}` is not allowed here"),
            )
            .label("unknown value")
            .hint(hint),
        );
    }

    fn check_range(&mut self, node: &Located<Tree>, n: i128, schema: &Rule) {
        let (min, max) = (schema.minimum, schema.maximum);
        let (lo, hi) = (min.map(|m| m as i128), max.map(|m| m as i128));
        if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
            let range = match (lo, hi) {
                (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => unreachable!("checked above"),
            };
            self.diagnostics.push(
                Diagnostic::error(Code::BadValue, node.span, format!("{n} is out of range"))
                    .label(format!("must be {range}"))
                    .hint(format!("write a whole number {range}")),
            );
        }
    }

    fn check_map(
        &mut self,
        node: &Located<Tree>,
        entries: &[(Located<Key>, Located<Tree>)],
        schema: &'static Rule,
        def: &'static str,
    ) {
        let closed = schema.closed;
        // A map of names to values (`groups:`): every value is checked against one schema.
        let values = schema.values();
        let what = describe_map(def, entries);
        for (key, value) in entries {
            match schema.property(&key.value.0) {
                Some(sub) => self.check(value, sub, def),
                None if closed => self.unknown_key(key, schema, def, &what),
                None => {
                    if let Some(values) = values {
                        self.check(value, values, def);
                    }
                }
            }
        }
        for name in schema.required().iter() {
            if !entries.iter().any(|(k, _)| k.value.0 == name) {
                let hint = match schema.property(name).and_then(Self::description) {
                    Some(desc) => format!("add `{name}:` ({desc})"),
                    None => format!("add `{name}:` to {}", noun(def)),
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        node.span,
                        format!("{what} has no `{name}`"),
                    )
                    .label(format!("`{name}` is required here"))
                    .hint(hint),
                );
            }
        }
    }

    fn description(schema: &'static Rule) -> Option<String> {
        let direct = schema.description();
        let resolved = || Self::resolve(schema, "").0.description();
        direct
            .or_else(resolved)
            .map(|d| d.split(['.', '\n']).next().unwrap_or(d).trim().to_owned())
    }

    fn unknown_key(&mut self, key: &Located<Key>, schema: &Rule, def: &str, what: &str) {
        let name = &key.value.0;
        let known: Vec<&str> = schema.property_names().collect();
        let mut hint = String::new();
        if let Some(close) = closest(name, known.iter().copied()) {
            let _ = write!(hint, "did you mean `{close}`? ");
        } else if let Some(owner) = Self::owner_of(name, def) {
            let _ = write!(hint, "`{name}` is a key of {owner}, not of {}; ", noun(def));
        }
        let _ = write!(hint, "the keys of {} are: {}", noun(def), known.join(", "));
        self.diagnostics.push(
            Diagnostic::error(
                Code::UnknownKey,
                key.span,
                format!("unknown key `{name}` in {what}"),
            )
            .label("not a key of ".to_owned() + noun(def))
            .hint(hint),
        );
    }

    /// Another definition that has `key` (for "`addresses` is a key of an interface").
    fn owner_of(key: &str, except: &str) -> Option<&'static str> {
        // Only a definition with a name of its own helps ("is a key of this map" does not).
        Rule::definitions()
            .filter(|(name, _)| *name != except && noun(name) != noun("?"))
            .find(|(_, d)| d.property(key).is_some())
            .map(|(name, _)| noun(name))
    }
}

/// "node `r1`", or "a node" when it has no name yet.
fn describe_map(def: &str, entries: &[(Located<Key>, Located<Tree>)]) -> String {
    let name = entries
        .iter()
        .find(|(k, _)| k.value.0 == "name")
        .and_then(|(_, v)| v.value.scalar_text());
    let noun = noun(def);
    match name {
        Some(name) if def != "TopologyFile" => {
            let bare = noun.split_once(' ').map_or(noun, |(_, n)| n);
            format!("{bare} `{name}`")
        }
        _ => noun.to_owned(),
    }
}

fn describe_type(json_type: &str, schema: &Rule) -> String {
    match json_type {
        "object" => "a map".into(),
        "array" => "a list".into(),
        "string" => match schema.allowed() {
            Some(names) => {
                let names = names.to_vec();
                format!("one of {}", names.join(", "))
            }
            None => "text".into(),
        },
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "boolean" => "true or false".into(),
        other => other.into(),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1))
        // Ties go to the alphabetically first candidate, so the hint never depends on map order.
        .min_by_key(|&(distance, c)| (distance, c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<Diagnostic> {
        let tree: Located<Tree> = serde_saphyr::from_str(yaml).expect("YAML");
        let mut checker = Checker::new();
        checker.check_document(&tree);
        checker.diagnostics
    }

    #[test]
    fn a_key_of_another_map_names_that_map() {
        let d =
            check("segments: [{ name: lan }]\nnodes: [{ name: h, mac: '02:00:00:00:00:01' }]\n");
        assert_eq!(d.len(), 1, "{d:?}");
        let hint = d[0].hint.as_deref().unwrap_or_default();
        assert!(
            hint.starts_with("`mac` is a key of an interface, not of a node"),
            "{hint}"
        );
    }

    #[test]
    fn a_number_out_of_range_gets_a_hint() {
        let d = check("segments: [{ name: lan, mtu: 40 }]\nnodes: []\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].hint.as_deref(),
            Some("write a whole number from 68 to 65535")
        );
    }

    #[test]
    fn a_wrong_type_gets_a_hint() {
        let d = check("segments: [{ name: lan }]\nnodes: [{ name: a, interfaces: 5 }]\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].hint.as_deref(), Some("write a list here"));
    }

    #[test]
    fn a_missing_key_gets_a_hint() {
        let d = check("segments: [{ name: lan }]\nnodes: [{ interfaces: [] }]\n");
        assert!(!d.is_empty() && d.iter().all(|d| d.hint.is_some()), "{d:?}");
    }

    #[test]
    fn closest_finds_typos_only() {
        let keys = ["interfaces", "routes", "name", "forwarding"];
        assert_eq!(closest("interfacs", keys), Some("interfaces"));
        assert_eq!(closest("route", keys), Some("routes"));
        assert_eq!(closest("Forwarding", keys), Some("forwarding"));
        assert_eq!(closest("colour", keys), None);
    }
}
