//! The model's netfilter written as `iptables-save` and `iptables -S` print it.

use crate::model::{Netfilter, Network};

/// The node's netfilter as `iptables-save` prints it.
pub fn save(_net: &Network, _nf: &Netfilter) -> String {
    String::new()
}

/// The node's rules as `iptables -S` and `iptables -t nat -S` print them.
pub fn rule_lines(_net: &Network, _nf: &Netfilter) -> Vec<String> {
    Vec::new()
}
