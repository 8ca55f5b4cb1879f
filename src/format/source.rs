//! Source text and positions: the file a topology came from, byte spans inside it, and
//! [`Located`], a value that remembers where in the file it was written. Also the one way
//! reachlab reads an input file ([`read_regular`]): regular files only, never blocking on a
//! FIFO or a device, and never more bytes than a limit.

use std::io::Read as _;
#[cfg(unix)]
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

pub use crate::model::{Origin, Span};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A topology file's name (as the user gave it) and its full text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset of the start of each line. A line ends at `\n`, `\r\n` or a lone `\r`
    /// (YAML's line breaks, so positions agree with the parser's line numbers).
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text` read from the file the user calls `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let bytes = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(bytes.iter().enumerate().filter_map(|(i, &b)| {
                let ends_line = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
                ends_line.then_some(i + 1)
            }))
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// Reads a regular file of at most `limit` bytes of UTF-8 from disk (see
    /// [`read_regular`]); the name is the path as given.
    pub fn read(path: &Path, limit: u64) -> Result<Self, ReadError> {
        let bytes = read_regular(path, limit)?;
        let text = String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })?;
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

    /// The byte offset where 1-based line `line` starts (the end of the text past the last).
    pub fn line_start(&self, line: u32) -> usize {
        self.line_starts
            .get((line as usize).wrapping_sub(1))
            .copied()
            .unwrap_or(self.text.len())
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

/// Which program's text a node's rules text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RulesDialect {
    /// `iptables-save` output (`iptables:`, `iptables_save:`).
    #[default]
    IptablesSave,
    /// `nft list ruleset` output (`nft:`, `nft_ruleset:`).
    Nft,
}

/// Rules text a node takes its netfilter from (`iptables:`, `iptables_save:`, `nft:` or
/// `nft_ruleset:`), and where each of its lines is: in a file of its own, or inside the
/// topology (a `|` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesText {
    pub text: String,
    pub dialect: RulesDialect,
    /// The file the text is, when it is not inside the topology.
    pub file: Option<std::sync::Arc<SourceFile>>,
    /// Inside the topology: where each line of the text starts (after the block's
    /// indentation). Empty when the value is not a `|` block: then every place is `value`.
    pub lines: Vec<Span>,
    /// The key's value in the topology.
    pub value: Span,
    /// Written by a platform section: `lines` holds, for each line, the whole place of the
    /// declaration it was made from, and every word of the line is placed there.
    pub generated: bool,
}

impl RulesText {
    /// Text of a file of its own.
    pub fn of_file(file: SourceFile, value: Span) -> Self {
        Self {
            text: file.text().to_owned(),
            dialect: RulesDialect::default(),
            file: Some(std::sync::Arc::new(file)),
            lines: Vec::new(),
            value,
            generated: false,
        }
    }

    /// Text a platform section wrote: `places[i]` is the declaration line `i + 1` was made from.
    pub fn generated(text: String, places: Vec<Span>, value: Span) -> Self {
        Self {
            text,
            dialect: RulesDialect::IptablesSave,
            file: None,
            lines: places,
            value,
            generated: true,
        }
    }

    /// Text written inside the topology `source` at `value`: a `|` block's lines are placed
    /// one by one, any other scalar as a whole.
    pub fn inline(source: &SourceFile, text: &str, value: Span) -> Self {
        let mut lines = Vec::new();
        // The value's span starts at its first character; a `|` block (`|-`, `|+`) has the
        // indicator before it, on the key's line.
        let before = source.text().get(..value.offset as usize).unwrap_or("");
        let indicator = before.trim_end().trim_end_matches(['-', '+']);
        let start = source.line_start(value.line);
        if indicator.ends_with('|') && (value.offset as usize) >= start {
            let indent = value.offset as usize - start;
            for k in 0..text.lines().count() as u32 {
                lines.push(source.span_at(source.line_start(value.line + k) + indent, 0));
            }
        }
        Self {
            text: text.to_owned(),
            dialect: RulesDialect::default(),
            file: None,
            lines,
            value,
            generated: false,
        }
    }

    /// The same text, read as `dialect`.
    pub fn in_dialect(mut self, dialect: RulesDialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The place of `len` bytes at byte `col` of 1-based line `line` of the text.
    pub fn span(&self, line: u32, col: usize, len: usize) -> Span {
        if let Some(file) = &self.file {
            return file.span_at(file.line_start(line) + col, len);
        }
        let Some(start) = self.lines.get((line as usize).wrapping_sub(1)) else {
            return self.value;
        };
        if self.generated {
            return *start;
        }
        let prefix = self
            .text
            .lines()
            .nth(line as usize - 1)
            .and_then(|l| l.get(..col))
            .map_or(0, |p| p.chars().count());
        Span {
            line: start.line,
            column: start.column + prefix as u32,
            offset: start.offset + col as u32,
            len: len as u32,
        }
    }

    /// The file name origins carry: the rules file's, or `topology`'s.
    pub fn file_name<'a>(&'a self, topology: &'a str) -> &'a str {
        self.file.as_deref().map_or(topology, SourceFile::name)
    }
}

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, device, socket or directory: reading one may block forever or never end.
    #[error("it is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    #[error("it holds more than {limit} bytes, the limit for this kind of file")]
    TooLarge { limit: u64 },
    #[error("it is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
}

impl ReadError {
    /// How to fix it, for the diagnostic's hint.
    pub fn hint(&self) -> &'static str {
        match self {
            ReadError::Io(_) => "check the path, and that the file is readable",
            ReadError::NotRegular { .. } => {
                "give the path of a regular file (write a pipe's output to a file first)"
            }
            ReadError::TooLarge { .. } => {
                "split the file, or check that this is the file you meant"
            }
            ReadError::NotUtf8 { .. } => "save the file as UTF-8",
        }
    }
}

/// What kind of file `meta` describes, as a user would say it, unless it is a regular file.
pub fn irregular_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        if file_type.is_fifo() {
            return Some("a FIFO (named pipe)");
        } else if file_type.is_char_device() {
            return Some("a character device");
        } else if file_type.is_block_device() {
            return Some("a block device");
        } else if file_type.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Options that open a path without blocking on a FIFO and without making a terminal the
/// controlling one (`O_NONBLOCK | O_NOCTTY` on Unix; plain options elsewhere, where a path
/// cannot name a FIFO).
pub(crate) fn open_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options
}

/// The file at `written` (as the topology gives it), resolved inside `base`, the
/// topology file's directory: absolute paths and paths that leave `base` (through `..` or a
/// symbolic link) are refused.
pub fn confined_path(base: &Path, written: &str, what: &str) -> Result<std::path::PathBuf, String> {
    let relative = Path::new(written);
    if relative.is_absolute() {
        return Err(format!("{what} path `{written}` is absolute"));
    }
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let root = base.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the topology's directory {}: {e}",
            base.display()
        )
    })?;
    let full = base
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("cannot read {what} {}: {e}", base.join(relative).display()))?;
    if !full.starts_with(&root) {
        return Err(format!(
            "{what} path `{written}` leads outside the topology's directory"
        ));
    }
    Ok(full)
}

/// Reads at most `limit` bytes of the regular file at `path`.
///
/// FIFOs, devices, sockets and directories are refused without blocking: the path is checked
/// before opening, opened with `O_NONBLOCK` (so a FIFO swapped in meanwhile cannot block the
/// open) and checked again on the open descriptor. The limit counts bytes actually read, not
/// the size the file system reports.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let check = |meta: &std::fs::Metadata| match irregular_kind(meta.file_type()) {
        Some(kind) => Err(ReadError::NotRegular { kind }),
        None if meta.len() > limit => Err(ReadError::TooLarge { limit }),
        None => Ok(()),
    };
    check(&std::fs::metadata(path)?)?;
    let file = open_options().read(true).open(path)?;
    let meta = file.metadata()?;
    check(&meta)?;
    // Sized for the file as it is now (one read, no doubling); a file that grows while it is
    // read still reads to the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

impl Span {
    /// The span as two numbers: line and column, byte offset and length (see [`LOCATED`]).
    pub(crate) fn pack(self) -> (u64, u64) {
        (
            u64::from(self.line) << 32 | u64::from(self.column),
            u64::from(self.offset) << 32 | u64::from(self.len),
        )
    }

    /// The span [`Span::pack`] packed.
    pub(crate) fn unpack(place: u64, extent: u64) -> Self {
        Self {
            line: (place >> 32) as u32,
            column: place as u32,
            offset: (extent >> 32) as u32,
            len: extent as u32,
        }
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

/// The newtype name [`Located`] asks a deserializer for. serde-saphyr passes it through (its
/// own [`serde_saphyr::Spanned`] then gives the span); the reader of a tree
/// ([`super::from_tree`]) answers it with the span packed in two numbers and then the value
/// (see [`Span::pack`]).
pub(crate) const LOCATED: &str = "__reachlab_located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(std::marker::PhantomData))
    }
}

struct LocatedVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value")
    }

    /// YAML read by serde-saphyr (and any other format): the span as serde-saphyr records it.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Located<T>, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located {
            span: Span::from_saphyr(&spanned.referenced),
            value: spanned.value,
        })
    }

    /// A tree's reader: the packed span, then the value.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
        let missing = || serde::de::Error::invalid_length(0, &"a span and a value");
        let place: u64 = seq.next_element()?.ok_or_else(missing)?;
        let extent: u64 = seq.next_element()?.ok_or_else(missing)?;
        let value: T = seq.next_element()?.ok_or_else(missing)?;
        Ok(Located {
            value,
            span: Span::unpack(place, extent),
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

    #[test]
    fn only_regular_files_are_read() {
        let err = read_regular(Path::new("/dev/zero"), 16);
        assert!(
            matches!(
                err,
                Err(ReadError::NotRegular {
                    kind: "a character device"
                })
            ),
            "{err:?}"
        );
        let err = read_regular(Path::new("/"), 16);
        assert!(matches!(err, Err(ReadError::NotRegular { .. })), "{err:?}");
    }

    #[test]
    fn reads_are_bounded_by_bytes_read() {
        let dir = std::env::temp_dir().join(format!("reachlab-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.txt");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        let err = read_regular(&path, 9);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(err, Err(ReadError::TooLarge { limit: 9 })),
            "{err:?}"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("reachlab-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipe.yaml");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_regular(&path, 16);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(
                err,
                Err(ReadError::NotRegular {
                    kind: "a FIFO (named pipe)"
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        let src = SourceFile::new("t.yaml", "a: 1\rb: 2\r\nc: 3\nd: 4");
        assert_eq!(src.line_text(1), "a: 1");
        assert_eq!(src.line_text(2), "b: 2");
        assert_eq!(src.line_text(3), "c: 3");
        assert_eq!(src.line_text(4), "d: 4");
        let span = src.span_at(src.text().find('c').unwrap_or(0), 1);
        assert_eq!((span.line, span.column), (3, 1));
        assert_eq!(src.line_start(2), 5);
    }
}
