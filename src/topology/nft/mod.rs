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
