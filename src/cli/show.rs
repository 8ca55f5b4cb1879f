//! `reachlab show`: a node's addresses, routes and rules as `ip` and iptables print them.

use std::io::Write;

use reachlab::render::{self, Palette};

use super::args::Format;
use super::common::{EXIT_INVALID, EXIT_OK, load_or_report};

pub(crate) fn show(
    file: &std::path::Path,
    node: Option<&str>,
    iptables_save: bool,
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
    if iptables_save {
        let nf = only.and_then(|id| net.node(id).netfilter.as_deref());
        if let Some(nf) = nf {
            out.write_all(reachlab::topology::iptables::save(&net, nf).as_bytes())?;
        }
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
