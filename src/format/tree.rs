//! The YAML of a file as written: [`Tree`], every value with its position ([`Located`]) and
//! every map in its written order, unknown keys included. It is read once per file with
//! serde-saphyr; the structural check ([`super::structure`]) walks it, and the typed file is
//! read from it ([`super::from_tree`]) rather than from the text again.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::source::Located;

/// YAML as written: maps keep their order and every value its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Located<Tree>>),
    Map(Vec<(Located<Key>, Located<Tree>)>),
}

/// A map key: any scalar, kept as text (a number or `true` as its value's text), and whether
/// it was written as a string (the typed reading of [`super::from_tree`] takes only those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key(pub String, pub(crate) bool);

impl Tree {
    /// What kind of value this is, as a user would say it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Tree::Null => "nothing",
            Tree::Bool(_) => "true/false",
            Tree::Int(_) => "a number",
            Tree::Float(_) => "a decimal number",
            Tree::Str(_) => "text",
            Tree::Seq(_) => "a list",
            Tree::Map(_) => "a map",
        }
    }

    pub(crate) fn fits(&self, json_type: &str) -> bool {
        matches!(
            (json_type, self),
            ("null", Tree::Null)
                | ("boolean", Tree::Bool(_))
                | ("integer", Tree::Int(_))
                | ("number", Tree::Int(_) | Tree::Float(_))
                // A plain scalar such as `22` or `1.5` is text too where text is wanted.
                | ("string", Tree::Str(_) | Tree::Int(_) | Tree::Float(_))
                | ("array", Tree::Seq(_))
                | ("object", Tree::Map(_))
        )
    }

    /// Appends the value as compact JSON, maps in their written order (keys as text); `None`
    /// for a number JSON cannot hold (an infinite or NaN float).
    pub(crate) fn write_json(&self, out: &mut String) -> Option<()> {
        use std::fmt::Write as _;
        match self {
            Tree::Null => out.push_str("null"),
            Tree::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Tree::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Tree::Float(f) if f.is_finite() => out.push_str(&serde_json::to_string(f).ok()?),
            Tree::Float(_) => return None,
            Tree::Str(s) => out.push_str(&serde_json::to_string(s).ok()?),
            Tree::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.value.write_json(out)?;
                }
                out.push(']');
            }
            Tree::Map(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(&key.value.0).ok()?);
                    out.push(':');
                    value.value.write_json(out)?;
                }
                out.push('}');
            }
        }
        Some(())
    }

    /// The scalar's text (for enum checks).
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            Tree::Str(s) => Some(s.clone()),
            Tree::Int(i) => Some(i.to_string()),
            Tree::Float(f) => Some(f.to_string()),
            Tree::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Tree, E> {
        Ok(Tree::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Tree, E> {
        Ok(Tree::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Tree, E> {
        Ok(Tree::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        Tree::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Located<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Located<Key>>()? {
            let value = map.next_value::<Located<Tree>>()?;
            entries.push((key, value));
        }
        Ok(Tree::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a plain map key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned(), true))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string(), false))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string(), false))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string(), false))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string(), false))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".into(), false))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
                Err(de::Error::custom("a map cannot be a key here"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Key, A::Error> {
                Err(de::Error::custom("a list cannot be a key here"))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}
