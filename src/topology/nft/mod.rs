//! A node's netfilter from `nft list ruleset` text (the `nft:` and `nft_ruleset:` keys):
//! `lex` splits the text into tokens with their places, `parse` reads tables, chains and
//! rules, `rule` reads one rule's statements into matches and actions, `lower` builds the
//! [`Netfilter`] (tables of families ip and inet; ip6, arp and netdev tables left out with a
//! warning). docs/netfilter.md, "nft list ruleset text".

mod lex;
mod parse;
mod rule;
mod value;

pub use crate::topology::iptables::{Problem, Word};
