//! The checks the OpenStack expansion shares: reading the section's addresses and subnets into
//! typed values, and the diagnostics for an unknown name, a name defined twice and an address
//! outside its subnet, in Neutron's words.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::format::{Code, Diagnostic, Located, Span};

/// Reports `name` (written where `context` says) as not `what` of this file (`a network`, `a
/// security group`), with the closest of `names` as a hint, or `otherwise` and the known names.
pub(super) fn unknown(
    out: &mut Vec<Diagnostic>,
    what: &str,
    name: &Located<String>,
    context: String,
    names: &[&str],
    otherwise: &str,
) {
    let mut d = Diagnostic::error(
        Code::UnknownReference,
        name.span,
        format!(
            "{context} `{}`, which is not {what} of this file",
            name.value
        ),
    )
    .label(format!("unknown {}", what.trim_start_matches("a ")));
    d = match crate::format::closest_name(&name.value, names) {
        Some(c) => d.hint(format!("did you mean `{c}`?")),
        None if names.is_empty() => d.hint(otherwise.to_owned()),
        None => {
            let mut sorted = names.to_vec();
            sorted.sort_unstable();
            d.hint(format!("{otherwise}; known: {}", sorted.join(", ")))
        }
    };
    out.push(d);
}

/// An IPv4 address without a prefix length (a gateway, a fixed or a floating IP).
pub(super) fn parse_addr(
    text: &Located<String>,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Addr> {
    match text.value.trim().parse::<Ipv4Addr>() {
        Ok(a) => Some(a),
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not {what}", text.value),
                )
                .label("expected an IPv4 address")
                .hint("write it like 192.168.0.98, without a prefix length"),
            );
            None
        }
    }
}

/// A subnet `ADDRESS/PREFIX` without host bits.
pub(super) fn parse_cidr(
    text: &Located<String>,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Ipv4Net> {
    match text.value.trim().parse::<Ipv4Net>() {
        Ok(n) if n.trunc() == n => Some(n),
        Ok(n) => {
            out.push(
                Diagnostic::error(
                    Code::HostBitsSet,
                    text.span,
                    format!("{what} `{}` has host bits set", text.value),
                )
                .label("not a network prefix")
                .hint(format!("did you mean {}?", n.trunc())),
            );
            None
        }
        Err(_) => {
            out.push(
                Diagnostic::error(
                    Code::BadAddress,
                    text.span,
                    format!("`{}` is not {what}", text.value),
                )
                .label("expected ADDRESS/PREFIX")
                .hint("write the subnet like 192.168.0.0/24"),
            );
            None
        }
    }
}

/// A host address of `net` (not its network or broadcast address, for prefixes up to /30).
pub(super) fn usable(net: Ipv4Net, addr: Ipv4Addr) -> bool {
    net.contains(&addr)
        && (net.prefix_len() >= 31 || (addr != net.network() && addr != net.broadcast()))
}

/// The address after `net`'s network address, Neutron's first allocation (its default
/// gateway). Wraps for 255.255.255.255/32, as the release build always did.
pub(super) fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).wrapping_add(1))
}

/// Reports `text`, the `what` of something, as outside `net`, the subnet of `owner`.
pub(super) fn outside(
    out: &mut Vec<Diagnostic>,
    text: &Located<String>,
    what: String,
    net: Ipv4Net,
    owner: &str,
) {
    out.push(
        Diagnostic::error(
            Code::BadValue,
            text.span,
            format!(
                "{what} is {}, which is not in {owner} ({net})",
                text.value.trim()
            ),
        )
        .label(format!("outside {net}"))
        .hint(format!(
            "Neutron allocates it from the subnet: pick an address from {} to {}",
            first_host(net),
            Ipv4Addr::from(u32::from(net.broadcast()).saturating_sub(1))
        )),
    );
}

/// Reports the second definition of `name`, a `what`, first defined at `first`.
pub(super) fn duplicate(
    out: &mut Vec<Diagnostic>,
    what: &str,
    name: &Located<String>,
    first: Span,
) {
    out.push(Diagnostic::duplicate(what, name, first));
}
