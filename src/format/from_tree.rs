//! Typed values read from a [`Tree`] instead of from the text: a serde `Deserializer` over the
//! tree, so that a file is scanned once (into the tree the structural check walks) and its
//! [`super::file::TopologyFile`] is read from that tree.
//!
//! It owns one promise: whatever it reads is exactly what serde-saphyr would have read from the
//! text, [`Located`] spans included (they come from the tree, which serde-saphyr placed). Where
//! it cannot be sure of that (a scalar read as a type its written form does not obviously give,
//! a key that was not written as a string, a value of the wrong shape), it gives up with
//! [`Unsure`] and the caller reads the text with serde-saphyr, whose result and error messages
//! are then the reference. Giving up costs only time, never a different answer.
//!
//! serde-saphyr reads a scalar by the type asked for: `22` is a number for a `u32` and the text
//! `22` for a `String`. The tree keeps the scalar as serde-saphyr's untyped reading saw it
//! (`Tree::Int(22)`); where a string is asked for, the text written at the value's span is
//! taken when it reads back to the same value (so `0x16` or an alias `*port` is left to
//! serde-saphyr).

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::source::{LOCATED, Located};
use super::tree::{Key, Tree};

/// `T` read from `tree`, the YAML of `text`; `Err` when the reading is not certain to be
/// serde-saphyr's (read the text then).
pub(crate) fn from_tree<'a, T: de::Deserialize<'a>>(
    tree: &'a Located<Tree>,
    text: &'a str,
) -> Result<T, Unsure> {
    T::deserialize(Node { node: tree, text })
}

/// Why a value was not read from the tree (for tests; callers read the text instead).
#[derive(Debug)]
pub(crate) struct Unsure(String);

impl std::fmt::Display for Unsure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsure {}

impl de::Error for Unsure {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        Unsure(message.to_string())
    }
}

fn unsure<T>(what: &str, node: &Tree) -> Result<T, Unsure> {
    Err(Unsure(format!("{what} from {}", node.kind())))
}

/// One value of the tree, with the text it was read from.
#[derive(Clone, Copy)]
struct Node<'a> {
    node: &'a Located<Tree>,
    text: &'a str,
}

impl<'a> Node<'a> {
    /// The text written at the value's span.
    fn written(&self) -> &'a str {
        let span = self.node.span;
        let start = span.offset as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or("")
    }

    /// Whether a tag (`!!int`, `!name`) may be written before the value: its span does not
    /// cover one, so any `!` earlier on its line counts.
    fn maybe_tagged(&self) -> bool {
        let before = self
            .text
            .get(..self.node.span.offset as usize)
            .unwrap_or("");
        let line = before
            .rfind(['\n', '\r'])
            .map_or(before, |i| &before[i + 1..]);
        line.contains('!')
    }

    /// The scalar as serde-saphyr reads it into a string: the text itself, or for a number or
    /// a boolean the plain, untagged text written, when it reads back to that same value.
    fn as_str(&self) -> Option<&'a str> {
        if let Tree::Str(s) = &self.node.value {
            return Some(s);
        }
        if self.maybe_tagged() {
            return None;
        }
        let written = self.written();
        let plain_number = |w: &str| {
            let digits = w.strip_prefix(['+', '-']).unwrap_or(w);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        };
        match &self.node.value {
            Tree::Str(s) => Some(s),
            Tree::Int(n) => (plain_number(written) && written.parse::<i128>().ok() == Some(*n))
                .then_some(written),
            Tree::Float(f) => {
                let decimal = written
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
                (decimal && written.parse::<f64>().ok() == Some(*f)).then_some(written)
            }
            Tree::Bool(b) => (written == if *b { "true" } else { "false" }).then_some(written),
            _ => None,
        }
    }

    fn integer<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.node.value {
            Tree::Int(n) => match u64::try_from(n) {
                Ok(n) => visitor.visit_u64(n),
                Err(_) => match i64::try_from(n) {
                    Ok(n) => visitor.visit_i64(n),
                    Err(_) => unsure("an integer", &self.node.value),
                },
            },
            ref other => unsure("an integer", other),
        }
    }

    fn float<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.node.value {
            Tree::Float(f) => visitor.visit_f64(f),
            // serde-saphyr parses the text of a number written as an integer.
            Tree::Int(_) => match self.as_str().and_then(|w| w.parse::<f64>().ok()) {
                Some(f) => visitor.visit_f64(f),
                None => unsure("a float", &self.node.value),
            },
            ref other => unsure("a float", other),
        }
    }

    fn string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.as_str() {
            Some(s) => visitor.visit_borrowed_str(s),
            None => unsure("a string", &self.node.value),
        }
    }
}

macro_rules! integers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
            self.integer(visitor)
        })*
    };
}

impl<'a> Deserializer<'a> for Node<'a> {
    type Error = Unsure;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match &self.node.value {
            Tree::Null => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(*b),
            Tree::Int(_) => self.integer(visitor),
            Tree::Float(f) => visitor.visit_f64(*f),
            Tree::Str(s) => visitor.visit_borrowed_str(s),
            Tree::Seq(items) => visitor.visit_seq(Items::new(items, self.text)),
            Tree::Map(entries) => visitor.visit_map(Entries::new(entries, self.text)),
        }
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.node.value {
            Tree::Bool(b) => visitor.visit_bool(b),
            ref other => unsure("a boolean", other),
        }
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'a>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("a character", &self.node.value)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("bytes", &self.node.value)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, _: V) -> Result<V::Value, Unsure> {
        unsure("bytes", &self.node.value)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.node.value {
            Tree::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match self.node.value {
            Tree::Null => visitor.visit_unit(),
            ref other => unsure("nothing", other),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        if name == LOCATED {
            visitor.visit_seq(Spanned::new(self.node.span, self))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match &self.node.value {
            Tree::Seq(items) => visitor.visit_seq(Items::new(items, self.text)),
            other => unsure("a list", other),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _: usize, visitor: V) -> Result<V::Value, Unsure> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        match &self.node.value {
            Tree::Map(entries) => visitor.visit_map(Entries::new(entries, self.text)),
            other => unsure("a map", other),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        self.deserialize_map(visitor)
    }

    /// Unit variants only (the format's enums): the variant's name as a string.
    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        match &self.node.value {
            Tree::Str(s) if !self.maybe_tagged() => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::new(s))
            }
            other => unsure("a variant", other),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        visitor.visit_unit()
    }
}

/// What a [`Located`] is given: its span as two numbers, then its value (`D`, a node or a key;
/// also [`super::fast_json`]'s values and keys).
pub(crate) struct Spanned<D> {
    place: u64,
    extent: u64,
    value: Option<D>,
    /// How many of the three were given.
    given: u8,
}

impl<D> Spanned<D> {
    pub(crate) fn new(span: super::source::Span, value: D) -> Self {
        let (place, extent) = span.pack();
        Self {
            place,
            extent,
            value: Some(value),
            given: 0,
        }
    }
}

impl<'a, D: Deserializer<'a, Error = Unsure>> SeqAccess<'a> for Spanned<D> {
    type Error = Unsure;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Unsure> {
        self.given = self.given.saturating_add(1);
        match self.given {
            1 => seed.deserialize(self.place.into_deserializer()).map(Some),
            2 => seed.deserialize(self.extent.into_deserializer()).map(Some),
            _ => self.value.take().map(|v| seed.deserialize(v)).transpose(),
        }
    }
}

/// The items of a list.
struct Items<'a> {
    items: std::slice::Iter<'a, Located<Tree>>,
    text: &'a str,
}

impl<'a> Items<'a> {
    fn new(items: &'a [Located<Tree>], text: &'a str) -> Self {
        Self {
            items: items.iter(),
            text,
        }
    }
}

impl<'a> SeqAccess<'a> for Items<'a> {
    type Error = Unsure;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Unsure> {
        self.items
            .next()
            .map(|node| {
                seed.deserialize(Node {
                    node,
                    text: self.text,
                })
            })
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a map, in written order.
struct Entries<'a> {
    entries: std::slice::Iter<'a, (Located<Key>, Located<Tree>)>,
    value: Option<&'a Located<Tree>>,
    text: &'a str,
}

impl<'a> Entries<'a> {
    fn new(entries: &'a [(Located<Key>, Located<Tree>)], text: &'a str) -> Self {
        Self {
            entries: entries.iter(),
            value: None,
            text,
        }
    }
}

impl<'a> MapAccess<'a> for Entries<'a> {
    type Error = Unsure;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Unsure> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(KeyNode::of(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Unsure> {
        match self.value.take() {
            Some(node) => seed.deserialize(Node {
                node,
                text: self.text,
            }),
            None => Err(Unsure("a value without its key".into())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A map key: a string when it was written as one (any other key is left to serde-saphyr).
/// Also the keys [`super::fast_json`] reads (always strings there).
pub(crate) struct KeyNode<'a> {
    text: &'a str,
    written_as_text: bool,
    span: super::source::Span,
}

impl<'a> KeyNode<'a> {
    fn of(key: &'a Located<Key>) -> Self {
        let Key(text, written_as_text) = &key.value;
        Self {
            text,
            written_as_text: *written_as_text,
            span: key.span,
        }
    }

    /// A key written as the string `text` at `span`.
    pub(crate) fn string(text: &'a str, span: super::source::Span) -> Self {
        Self {
            text,
            written_as_text: true,
            span,
        }
    }

    fn text(&self) -> Result<&'a str, Unsure> {
        if self.written_as_text {
            Ok(self.text)
        } else {
            Err(Unsure(format!("the key `{}` read as a string", self.text)))
        }
    }
}

impl<'a> Deserializer<'a> for KeyNode<'a> {
    type Error = Unsure;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        visitor.visit_borrowed_str(self.text()?)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Unsure> {
        if name == LOCATED {
            visitor.visit_seq(Spanned::new(self.span, self))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Unsure> {
        visitor.visit_unit()
    }

    // A key read as anything but a string meets a visitor that refuses a string.
    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct map struct enum identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::file::TopologyFile;
    use crate::format::yaml::parse_options;
    use crate::format::yaml_files;

    /// The file read from its tree, when the reader is sure, and as serde-saphyr reads it
    /// (both with every span: `Debug` shows them, equality does not look at them).
    fn both(text: &str) -> (Option<String>, Result<String, String>) {
        let options = parse_options(text.len());
        let tree: Located<Tree> =
            serde_saphyr::from_str_with_options(text, options.clone()).expect("a YAML tree");
        let read = from_tree::<TopologyFile>(&tree, text)
            .ok()
            .map(|f| format!("{f:?}"));
        let reference = serde_saphyr::from_str_with_options::<TopologyFile>(text, options)
            .map(|f| format!("{f:?}"))
            .map_err(|e| e.to_string());
        (read, reference)
    }

    #[test]
    fn every_shipped_topology_reads_from_its_tree_as_from_its_text() {
        for path in yaml_files("topologies") {
            let text = std::fs::read_to_string(&path).expect("readable");
            if crate::topology::load_str("t.yaml", &text).is_err() {
                continue;
            }
            let (read, reference) = both(&text);
            let read = read.unwrap_or_else(|| panic!("{} not read from its tree", path.display()));
            assert_eq!(Ok(read), reference, "{}", path.display());
        }
    }

    #[test]
    fn what_the_tree_reads_serde_saphyr_reads_the_same() {
        let mut files = yaml_files("tests/broken");
        files.extend(yaml_files("examples"));
        for path in files {
            let text = std::fs::read_to_string(&path).expect("readable");
            let options = parse_options(text.len());
            if serde_saphyr::from_str_with_options::<Located<Tree>>(&text, options).is_err() {
                continue;
            }
            if let (Some(read), reference) = both(&text) {
                assert_eq!(Ok(read), reference, "{}", path.display());
            }
        }
    }

    #[test]
    fn scalars_read_as_serde_saphyr_reads_them_or_not_at_all() {
        let cases = [
            // Numbers where text is wanted: the text as written.
            "segments: [{ name: 22, latency: 1.50 ms }]\nnodes: [{ name: 007 }]\n",
            "segments: [{ name: 0x16 }]\n",
            "segments: [{ name: 1e3 }]\n",
            "segments: [{ name: true }, { name: yes }, { name: 'no' }]\n",
            "segments: [{ name: !!str 22 }, { name: !!int 22 }]\n",
            "segments: [{ name: lan, mtu: 0x5dc }, { name: b, mtu: '1500' }]\n",
            "segments: [{ name: lan, mtu: 1500.0 }]\n",
            "segments: [{ name: lan, mtu: -1 }]\n",
            "segments: [{ name: lan, mtu: 99999999999 }]\n",
            "segments: [{ name: ~ }]\n",
            "segments: [{ name: '' }]\n",
            "segments:\n- name: a\n  note: ~\n",
            "nodes: [{ name: a, forwarding: yes, interfaces: ~ }]\n",
            "nodes: [{ name: a, forwarding: 'true' }]\n",
            "nodes: [{ name: a, nat: [{ probability: 1 }, { probability: 0.5 }, { probability: 1_0 }] }]\n",
            "nodes: [{ name: a, nat: [{ proto: tcp }, { proto: 'udp' }, { proto: !icmp x }] }]\n",
            "nodes: [{ name: a, nat: [{ proto: !udp tcp }, { masquerade: !!bool true }] }]\n",
            // Aliases, merges and keys that are not text.
            "base: &b { name: x, mtu: 1500 }\nsegments: [*b, { <<: *b, name: y }]\n",
            "segments: [{ name: &n 22 }, { name: *n }]\n",
            "groups: { web: [a, b], 22: [c] }\nnodes: [{ name: a }]\n",
            "groups: { web: [a, b], ~: [c] }\n",
            "nodes: [{ name: a, 0: b }]\n",
            "segments: [{ name: \"quoted\\ttab\", note: |\n    two\n    lines\n  }]\n",
            "segments: [{ name: >-\n    folded\n    text\n  }]\n",
            "segments: [{name: a}]\nnodes: []\nexpect: [{ from: a, ping: b, outcome: reply, port: 22 }]\n",
        ];
        for text in cases {
            let options = parse_options(text.len());
            if serde_saphyr::from_str_with_options::<Located<Tree>>(text, options).is_err() {
                continue;
            }
            if let (Some(read), reference) = both(text) {
                assert_eq!(Ok(read), reference, "{text}");
            }
        }
        // Plain numbers where text is wanted, null options and quoted text are read.
        for text in [
            cases[0],
            cases[2],
            cases[10],
            cases[11],
            cases[cases.len() - 1],
        ] {
            assert!(both(text).0.is_some(), "{text}");
        }
    }
}
