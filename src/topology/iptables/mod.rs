//! A node's netfilter as iptables writes it: `iptables-save` text read into the model
//! (`parse` → syntax with positions, `lower` → [`Netfilter`] with diagnostics), and the model written back (`save`: `iptables-save` and `iptables -S` text,
//! as the kernel's iptables prints them). docs/netfilter.md, "iptables-save text".

mod lower;
mod parse;
mod recent;
mod rule;
mod save;

pub use parse::Word;
pub use rule::Problem;
pub(crate) use save::verdict;
pub use save::{filter_rule_line, rule_lines, save};

use crate::format::Code;
use crate::model::{IfaceId, Netfilter, Origin};

/// A node's netfilter from `iptables-save` text: the model, or every problem with its place
/// in the text. `iface` resolves the node's interface names (`lo` included); `origin` places a
/// word of the text for the rules made from it.
pub fn read(
    text: &str,
    iface: &dyn Fn(&str) -> Option<IfaceId>,
    origin: &dyn Fn(&Word) -> Origin,
) -> Result<Netfilter, Vec<Problem>> {
    let tables = parse::parse(text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| Problem::new(&e.at, Code::IptablesSyntax, e.message, e.hint))
            .collect::<Vec<_>>()
    })?;
    let mut nf = lower::lower(&tables, iface, origin)?;
    nf.from_text = true;
    Ok(nf)
}
