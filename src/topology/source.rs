//! Source text and positions: the file a topology came from, byte spans inside it, and
//! [`Located`], a value that remembers where in the file it was written.

use std::fmt;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A topology file's name (as the user gave it) and its full text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text` read from the file the user calls `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// Reads a file from disk; the name is the path as given.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::new(path.display().to_string(), text))
    }

    /// The file name as the user wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of 1-based line `line`, without its line break; empty past the end.
    pub fn line_text(&self, line: u32) -> &str {
        let Some(&start) = self.line_starts.get((line as usize).wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line as usize)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// The span covering byte range `offset..offset+len`, with its 1-based line and column
    /// (columns count characters, as editors do).
    pub fn span_at(&self, offset: usize, len: usize) -> Span {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        Span {
            line: line_idx as u32 + 1,
            column: column as u32 + 1,
            offset: offset as u32,
            len: len as u32,
        }
    }

    /// The text a span covers (empty when the span does not fall on character boundaries).
    pub fn snippet(&self, span: Span) -> &str {
        let start = span.offset as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or("")
    }
}

/// Where something was written: 1-based line and character column, plus the byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    /// Byte offset of the first byte.
    pub offset: u32,
    /// Length in bytes (0 when only a point is known).
    pub len: u32,
}

impl Span {
    /// True for the default span of a value that was not read from a file.
    pub fn is_unknown(&self) -> bool {
        self.line == 0
    }

    pub(crate) fn from_saphyr(loc: &serde_saphyr::Location) -> Self {
        let span = loc.span();
        let (offset, len) = match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) if o < u64::from(u32::MAX) => (o as u32, l as u32),
            _ => (0, 0),
        };
        Self {
            line: loc.line() as u32,
            column: loc.column() as u32,
            offset,
            len,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value and the place in the file where it was written.
///
/// Equality looks at the value only: two topologies that say the same thing are equal wherever
/// they say it. Serialising writes the bare value, so a round trip through YAML is lossless.
#[derive(Debug, Clone, Default)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Located<T> {
    /// A value that was not read from a file (generated, or built in code).
    pub fn new(value: T) -> Self {
        Self {
            value,
            span: Span::default(),
        }
    }

    /// A value written at `span`.
    pub fn at(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

impl<T> From<T> for Located<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Self {
            span: Span::from_saphyr(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Where a model element came from: the file and the position of the text that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    pub file: std::sync::Arc<str>,
    pub span: Span,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.span.is_unknown() {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.span)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_characters_per_line() {
        let src = SourceFile::new("t.yaml", "a: 1\nnamé: x\n  c: 3");
        let off = src.text().find('x').unwrap();
        let span = src.span_at(off, 1);
        assert_eq!((span.line, span.column), (2, 7));
        assert_eq!(src.line_text(2), "namé: x");
        assert_eq!(src.line_text(3), "  c: 3");
        assert_eq!(src.line_text(9), "");
        assert_eq!(src.snippet(span), "x");
    }
}
