//! Where a model element came from: the file and the position of the text that made it. The
//! loader (`topology`) fills these in; explanations and diagnostics print them.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct as _, Serializer};

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
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a model element came from: the file and the position of the text that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    pub file: std::sync::Arc<str>,
    pub span: Span,
}

/// In JSON: `{"file": "lab.yaml", "line": 12, "column": 7}`; `line` and `column` are null for
/// something not read from a file.
impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let known = (!self.span.is_unknown()).then_some(self.span);
        let mut s = serializer.serialize_struct("Origin", 3)?;
        s.serialize_field("file", &*self.file)?;
        s.serialize_field("line", &known.map(|k| k.line))?;
        s.serialize_field("column", &known.map(|k| k.column))?;
        s.end()
    }
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
