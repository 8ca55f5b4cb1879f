//! The naming rule for nodes, segments, groups and interfaces: what a topology may call things
//! so that every name can be built by the emulator as it is (Linux, `ip`, `nft`) and can never
//! be read as anything but one name. Validation (`lower`) applies it and turns a
//! [`NameProblem`] into a diagnostic; the emulator still quotes or checks every word it hands to
//! a tool (defence in depth).
//!
//! The rule: 1 to [`MAX_NAME_LEN`] characters (interfaces: 1 to [`MAX_INTERFACE_LEN`] bytes,
//! Linux's `IFNAMSIZ - 1`), only ASCII letters, digits, `_`, `-` and `.`, starting with a letter
//! or digit. An interface name may in addition not be `.`/`..` (which that already excludes),
//! nor one of [`RESERVED_INTERFACE_NAMES`]: names the kernel keeps for itself (`lo`, and `all`
//! and `default`, the `/proc/sys/net/ipv4/conf/` entries), and words `ip link set NAME up`
//! reads as a keyword or an abbreviation of one instead of as a device.

/// Longest node, segment or group name.
pub const MAX_NAME_LEN: usize = 64;

/// Longest interface name: Linux's `IFNAMSIZ` (16) less the terminating NUL.
pub const MAX_INTERFACE_LEN: usize = 15;

/// Interface names that are refused although their characters are fine. `lo` exists in every
/// namespace and `all`/`default` are the kernel's own `/proc/sys/net/ipv4/conf/` entries (the
/// kernel refuses to create them); every other word was verified with iproute2 6.1 to make
/// `ip link set NAME up` fail in a fresh namespace because `ip` reads it as a keyword or as an
/// abbreviation of one (`a` for `address`, `d` for `down`).
pub const RESERVED_INTERFACE_NAMES: &[&str] = &[
    // The kernel's.
    "lo",
    "all",
    "default",
    // `ip link` keywords.
    "add",
    "addr",
    "address",
    "addrgenmode",
    "alias",
    "allmulticast",
    "arp",
    "br",
    "broadcast",
    "brd",
    "carrier",
    "dev",
    "down",
    "dynamic",
    "group",
    "gro_max_size",
    "gso_max_segs",
    "gso_max_size",
    "help",
    "index",
    "link",
    "link-netns",
    "link-netnsid",
    "master",
    "mode",
    "mtu",
    "multicast",
    "name",
    "netns",
    "nomaster",
    "numrxqueues",
    "numtxqueues",
    "parentdev",
    "promisc",
    "protodown",
    "qlen",
    "state",
    "trailers",
    "txqlen",
    "txqueuelen",
    "type",
    "up",
    "vf",
    "vrf",
    "xdp",
    "xdpdrv",
    "xdpgeneric",
    "xdpoffload",
    // Abbreviations `ip link` accepts for them (every one- and two-letter word that fails).
    "a",
    "ad",
    "al",
    "b",
    "d",
    "dy",
    "h",
    "he",
    "l",
    "li",
    "m",
    "ma",
    "n",
    "no",
    "nu",
    "t",
    "tx",
    "ty",
];

/// What kind of thing a name names; interfaces have the kernel's stricter rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Node,
    Segment,
    Group,
    Interface,
}

impl NameKind {
    /// The word used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::Node => "node",
            NameKind::Segment => "segment",
            NameKind::Group => "group",
            NameKind::Interface => "interface",
        }
    }

    /// The longest allowed name, in bytes (all allowed characters are one byte).
    pub fn max_len(self) -> usize {
        match self {
            NameKind::Interface => MAX_INTERFACE_LEN,
            _ => MAX_NAME_LEN,
        }
    }
}

/// Why a name breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("the name is empty")]
    Empty,
    #[error("the name is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("the name starts with {}, not a letter or digit", shown(*.0))]
    BadStart(char),
    #[error("the name contains {}", shown(*.0))]
    BadChar(char),
    #[error("`{0}` is reserved")]
    Reserved(&'static str),
}

impl NameProblem {
    /// The note shown under the caret.
    pub fn label(&self, kind: NameKind) -> String {
        match self {
            NameProblem::Empty => "empty name".into(),
            NameProblem::TooLong { len, max } => format!("{len} bytes, at most {max}"),
            NameProblem::BadStart(c) => format!("starts with {}", shown(*c)),
            NameProblem::BadChar(c) => format!("{} is not allowed", shown(*c)),
            NameProblem::Reserved(word) if matches!(*word, "lo" | "all" | "default") => {
                format!("the kernel reserves `{word}`")
            }
            NameProblem::Reserved(_) if kind == NameKind::Interface => {
                "`ip link` reads this as a keyword".into()
            }
            NameProblem::Reserved(_) => "reserved name".into(),
        }
    }

    /// How to fix it.
    pub fn hint(&self, kind: NameKind) -> String {
        let rule = format!(
            "use 1 to {} letters, digits, `_`, `-` or `.`, starting with a letter or digit",
            kind.max_len()
        );
        match (self, kind) {
            (NameProblem::Reserved(word), _) => {
                format!(
                    "rename it, e.g. `{word}0`; reserved interface names: lo, all, default and ip's keywords (see docs/topology-format.md)"
                )
            }
            (_, NameKind::Interface) => format!("{rule}, like `eth0`"),
            _ => rule,
        }
    }
}

/// A character as a message shows it: printable ones in backquotes, others escaped.
fn shown(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c => format!("`{}`", c.escape_default()),
    }
}

/// `text` with control characters escaped (`\0`, `\n`, `\u{1b}`), for messages.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether `c` may appear in a name at all.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Checks `name` against the rule for `kind`.
pub fn check(name: &str, kind: NameKind) -> Result<(), NameProblem> {
    let first = name.chars().next().ok_or(NameProblem::Empty)?;
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(NameProblem::BadChar(bad));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NameProblem::BadStart(first));
    }
    if name.len() > kind.max_len() {
        return Err(NameProblem::TooLong {
            len: name.len(),
            max: kind.max_len(),
        });
    }
    if kind == NameKind::Interface
        && let Some(word) = RESERVED_INTERFACE_NAMES.iter().find(|w| **w == name)
    {
        return Err(NameProblem::Reserved(word));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters_digits_underscore_dash_dot() {
        for good in ["eth0", "a.b", "a_b-2", "archive.ubuntu.com", "9lives"] {
            assert_eq!(check(good, NameKind::Node), Ok(()), "{good}");
        }
        for (bad, c) in [
            ("e\"q", '"'),
            ("e\\", '\\'),
            ("a#b", '#'),
            ("a b", ' '),
            ("a\0", '\0'),
            ("a;b", ';'),
            ("é", 'é'),
            ("*", '*'),
            ("a\nb", '\n'),
        ] {
            assert_eq!(
                check(bad, NameKind::Interface),
                Err(NameProblem::BadChar(c)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_start_with_a_letter_or_digit() {
        for bad in ["-x", ".x", "_x", ".", ".."] {
            assert!(
                matches!(
                    check(bad, NameKind::Interface),
                    Err(NameProblem::BadStart(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(check(&"e".repeat(15), NameKind::Interface), Ok(()));
        assert_eq!(
            check(&"e".repeat(16), NameKind::Interface),
            Err(NameProblem::TooLong { len: 16, max: 15 })
        );
        assert_eq!(check(&"n".repeat(64), NameKind::Node), Ok(()));
        assert!(check(&"n".repeat(65), NameKind::Segment).is_err());
        assert_eq!(check("", NameKind::Group), Err(NameProblem::Empty));
    }

    #[test]
    fn reserved_words_are_refused_for_interfaces_only() {
        for word in [
            "br", "a", "d", "up", "dev", "name", "type", "lo", "all", "default",
        ] {
            assert_eq!(
                check(word, NameKind::Interface),
                Err(NameProblem::Reserved(
                    RESERVED_INTERFACE_NAMES
                        .iter()
                        .find(|w| **w == word)
                        .expect("listed")
                )),
                "{word}"
            );
            assert_eq!(check(word, NameKind::Node), Ok(()), "{word}");
        }
        // Interface names the shipped topologies use stay valid.
        for used in ["in", "out", "eth0", "qg0", "wan", "lan0", "ens3", "cni0"] {
            assert_eq!(check(used, NameKind::Interface), Ok(()), "{used}");
        }
    }

    #[test]
    fn every_diagnostic_has_a_label_and_a_hint() {
        for problem in [
            NameProblem::Empty,
            NameProblem::TooLong { len: 16, max: 15 },
            NameProblem::BadStart('-'),
            NameProblem::BadChar('\0'),
            NameProblem::Reserved("lo"),
            NameProblem::Reserved("dev"),
        ] {
            assert!(!problem.label(NameKind::Interface).is_empty());
            assert!(problem.hint(NameKind::Interface).contains(' '));
        }
    }
}
