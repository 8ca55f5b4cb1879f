//! `reachlab show`: a node's addresses, routes and rules as `ip` and iptables print them.

use std::io::Write;

use reachlab::render::{self, Palette};

use super::args::Format;
use super::common::{EXIT_INVALID, EXIT_OK, load_or_report};

/// A node's rules alone, in another tool's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// As `iptables-save` prints them.
    IptablesSave,
    /// As the nftables table the emulator loads.
    Nft,
}

pub(crate) fn show(
    file: &std::path::Path,
    node: Option<&str>,
    rules: Option<Rules>,
    format: Format,
    out: &mut impl Write,
    palette: Palette,
) -> std::io::Result<u8> {
    let Some(loaded) = load_or_report(file, format, out, palette)? else {
        return Ok(EXIT_INVALID);
    };
    let net = loaded.network;
    let only = match node {
        None => None,
        Some(name) => {
            let Some(found) = net.node_by_name(name) else {
                let names: Vec<&str> = net.nodes.iter().map(|n| n.name.as_str()).collect();
                writeln!(
                    std::io::stderr(),
                    "reachlab: {} has no node `{name}` (nodes: {})",
                    file.display(),
                    names.join(", ")
                )?;
                return Ok(EXIT_INVALID);
            };
            Some(found.id)
        }
    };
    if let Some(rules) = rules {
        let nf = only.and_then(|id| net.node(id).netfilter.as_deref());
        let Some(nf) = nf else { return Ok(EXIT_OK) };
        let text = match rules {
            Rules::IptablesSave => reachlab::topology::iptables::save(&net, nf),
            Rules::Nft => match nft_table(&net, nf) {
                Ok(text) => text,
                Err(e) => {
                    writeln!(std::io::stderr(), "reachlab: {e}")?;
                    return Ok(EXIT_INVALID);
                }
            },
        };
        out.write_all(text.as_bytes())?;
        return Ok(EXIT_OK);
    }
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::show_json(&net, only)).unwrap_or_default()
        )?,
        _ => out.write_all(render::show_text(&net, only, palette).as_bytes())?,
    }
    Ok(EXIT_OK)
}

#[cfg(all(feature = "emulate", target_os = "linux"))]
fn nft_table(
    net: &reachlab::model::Network,
    nf: &reachlab::model::Netfilter,
) -> Result<String, String> {
    reachlab::emulate::nft_ruleset(net, nf).map_err(|e| e.to_string())
}

#[cfg(not(all(feature = "emulate", target_os = "linux")))]
fn nft_table(
    _: &reachlab::model::Network,
    _: &reachlab::model::Netfilter,
) -> Result<String, String> {
    Err("this build has no emulator (feature `emulate`, Linux only)".into())
}
