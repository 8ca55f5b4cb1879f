//! A node's netfilter as iptables writes it: `iptables-save` text read into the model
//! (`parse` → syntax with positions, `lower` → [`Netfilter`](crate::model::Netfilter) with
//! diagnostics), and the model written back (`save`: `iptables-save` and `iptables -S` text,
//! as the kernel's iptables prints them). docs/netfilter.md, "iptables-save text".

mod save;

pub use save::{rule_lines, save};
