//! A node's netfilter from `nft list ruleset` text (the `nft:` and `nft_ruleset:` keys):
//! `lex` splits the text into tokens with their places, `parse` reads tables, chains and
//! rules, `rule` reads one rule's statements into matches and actions, `lower` builds the
//! [`Netfilter`] (tables of families ip and inet; ip6, arp and netdev tables left out with a
//! warning). docs/netfilter.md, "nft list ruleset text".

mod lex;
mod lower;
mod parse;
mod rule;
mod value;

pub use crate::topology::iptables::{Problem, Word};

use crate::format::Code;
use crate::model::{IfaceId, Netfilter, Origin};

/// A node's netfilter read from nft text, and what was left out of it (tables of other
/// families), said as warnings.
#[derive(Debug)]
pub struct Read {
    pub nf: Netfilter,
    pub warnings: Vec<Problem>,
}

/// A node's netfilter from `nft list ruleset` text: the model, or every problem with its
/// place in the text. `iface` resolves the node's interface names (`lo` included); `origin`
/// places a word of the text for the rules made from it.
pub fn read(
    text: &str,
    iface: &dyn Fn(&str) -> Option<IfaceId>,
    origin: &dyn Fn(&Word) -> Origin,
) -> Result<Read, Vec<Problem>> {
    let tables = parse::parse(text)
        .map_err(|e| vec![Problem::new(&e.at, Code::NftSyntax, e.message, e.hint)])?;
    let lowered = lower::lower(&tables, iface, origin)?;
    let mut nf = lowered.nf;
    nf.from_text = true;
    Ok(Read {
        nf,
        warnings: lowered.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Read, Vec<Problem>> {
        read(
            text,
            &|name| (name == "lo").then_some(IfaceId::LOOPBACK),
            &|_| Origin::default(),
        )
    }

    #[test]
    fn a_read_model_is_marked_as_read_from_text() {
        let r = read_text(
            "table ip t { chain i { type filter hook input priority 0; iif lo accept } }",
        )
        .expect("reads");
        assert!(r.nf.from_text);
        assert_eq!(r.nf.input.rules.len(), 1);
    }

    #[test]
    fn a_syntax_error_has_its_code_and_place() {
        let e = read_text("table ip t {\n  chain i {\n    accept \"x\n").expect_err("unclosed");
        assert_eq!(
            (e[0].code, e[0].at.line, e[0].at.col),
            (Code::NftSyntax, 3, 11)
        );
    }

    /// Bytes cut and shuffled out of a real listing: every answer is a model or problems,
    /// never a panic.
    #[test]
    fn garbage_never_panics() {
        let listing = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tct state established,related accept\n\t\tip saddr 10.0.0.0/8 tcp dport { 22, 80-81 } meta mark & 0x1 == 0x1 log prefix \"a\" level info accept comment \"x\"\n\t\tfib daddr type != local jump x\n\t}\n\tchain x { ct mark set mark and 0xff; meta random & 2147483647 < 5 return }\n}\ntable ip nat { chain p { type nat hook postrouting priority srcnat; masquerade random } }\n";
        let bytes = listing.as_bytes();
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        for _ in 0..2000 {
            let (a, b) = (next() % bytes.len(), next() % bytes.len());
            let mut cut = bytes.to_vec();
            match next() % 3 {
                0 => {
                    cut.drain(a.min(b)..a.max(b));
                }
                1 => cut.swap(a, b),
                _ => cut.insert(a, b"{}\";,!#\\ \n"[next() % 10]),
            }
            let text = String::from_utf8_lossy(&cut);
            let _ = read_text(&text);
        }
        assert!(read_text(listing).is_ok(), "the listing itself reads");
    }
}
