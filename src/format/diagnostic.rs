//! Diagnostics: what is wrong with a topology file, where (line:column), the offending text,
//! and a hint that says how to fix it. Loading collects all of them before giving up.

use std::fmt;

use serde::Serialize;

use super::source::{Located, SourceFile, Span};

/// How bad a finding is. Errors make a file invalid; warnings are printed and the file loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A stable, documented name for each kind of problem (used in output and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file is not YAML at all (bad indentation, unclosed bracket, tab, ...).
    YamlSyntax,
    /// A key the format does not know at that place (usually a typo).
    UnknownKey,
    /// A key the format needs is missing.
    MissingKey,
    /// A value of the wrong kind (a list where a map belongs, text where a number belongs).
    WrongType,
    /// A value outside the allowed set or range.
    BadValue,
    /// Text that should be an IPv4 address or prefix and is not.
    BadAddress,
    /// A prefix with host bits set (`10.0.0.1/8` where `10.0.0.0/8` is meant).
    HostBitsSet,
    /// An interface address that is the network or broadcast address of its own subnet.
    ReservedAddress,
    /// Two things with the same name where names must be unique.
    DuplicateName,
    /// Two interfaces on one segment with the same address or MAC.
    DuplicateAddress,
    /// Two routes with the same destination and metric (`ip route add` says "File exists").
    DuplicateRoute,
    /// A name that refers to nothing in the file.
    UnknownReference,
    /// A route gateway that no connected subnet reaches ("Nexthop has invalid gateway").
    InvalidGateway,
    /// A name the emulator could not use (too long, or with characters Linux rejects).
    BadName,
    /// Something the model approximates or ignores (an Ingress without a controller, say).
    Unsupported,
    /// The file could not be read.
    Io,
    /// `iptables-save` text that iptables-restore could not read either.
    IptablesSyntax,
    /// `nft list ruleset` text that `nft -f` could not read either.
    NftSyntax,
}

impl Code {
    /// The kebab-case name shown in `error[name]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml-syntax",
            Code::UnknownKey => "unknown-key",
            Code::MissingKey => "missing-key",
            Code::WrongType => "wrong-type",
            Code::BadValue => "bad-value",
            Code::BadAddress => "bad-address",
            Code::HostBitsSet => "host-bits-set",
            Code::ReservedAddress => "reserved-address",
            Code::DuplicateName => "duplicate-name",
            Code::DuplicateAddress => "duplicate-address",
            Code::DuplicateRoute => "duplicate-route",
            Code::UnknownReference => "unknown-reference",
            Code::InvalidGateway => "invalid-gateway",
            Code::BadName => "bad-name",
            Code::Unsupported => "unsupported",
            Code::Io => "io",
            Code::IptablesSyntax => "iptables-syntax",
            Code::NftSyntax => "nft-syntax",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// Where the offending text is; `None` for file-level problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// A short note printed under the caret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Another place that matters (the first definition of a duplicate, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<(Span, String)>,
    /// The file `span` is in, when it is not the report's own (a rules file the topology
    /// names).
    #[serde(skip)]
    pub file: Option<std::sync::Arc<super::SourceFile>>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: (!span.is_unknown()).then_some(span),
            label: None,
            hint: None,
            related: None,
            file: None,
        }
    }

    /// "{what} `NAME` is defined twice", at the second definition, pointing at the first.
    pub fn duplicate(what: &str, name: &Located<String>, first: Span) -> Self {
        Self::error(
            Code::DuplicateName,
            name.span,
            format!("{what} `{}` is defined twice", name.value),
        )
        .label("second definition")
        .related(first, "first defined here")
        .hint(format!("give each {what} its own name"))
    }

    /// A warning at `span`.
    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, span, message)
        }
    }

    /// Adds the note printed under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Points at a second place (shown as "note: ... at LINE:COL").
    pub fn related(mut self, span: Span, note: impl Into<String>) -> Self {
        if !span.is_unknown() {
            self.related = Some((span, note.into()));
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// All diagnostics for one file, together with that file's text so they can be shown.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub source: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    /// Number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Sorts by position so the output reads top to bottom: the topology's own first, then
    /// each rules file's, file by file.
    pub fn sort(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                (
                    d.file.as_ref().map(|f| f.name().to_owned()),
                    d.span.map_or((0, 0), |s| (s.line, s.column)),
                    d.code as u8,
                )
            };
            key(a).cmp(&key(b))
        });
    }
}

/// The JSON form of one diagnostic, with the file name, the position and the offending text.
#[derive(Debug, Serialize)]
pub struct DiagnosticJson<'a> {
    pub file: &'a str,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub text: Option<&'a str>,
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
}

impl FileReport {
    /// The diagnostics as JSON-ready records.
    pub fn json_records(&self) -> Vec<DiagnosticJson<'_>> {
        self.diagnostics
            .iter()
            .map(|d| {
                let source = d.file.as_deref().unwrap_or(&self.source);
                DiagnosticJson {
                    file: source.name(),
                    line: d.span.map(|s| s.line),
                    column: d.span.map(|s| s.column),
                    text: d.span.map(|s| source.snippet(s)),
                    diagnostic: d,
                }
            })
            .collect()
    }
}
