//! `reachlab generate`: topologies of a chosen size, for benchmarks and property tests.

use std::io::Write;

use super::args::{GenerateWhat, TopologyFormat};
use super::common::{EXIT_OK, usage_error};

pub(crate) fn generate(
    what: &GenerateWhat,
    format: TopologyFormat,
    seed: u64,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    use reachlab::generate as g;
    let text = match *what {
        GenerateWhat::Chain { routers } if (1..=1_000_000).contains(&routers) => {
            Ok(g::chain(routers))
        }
        GenerateWhat::Chain { .. } => Err(g::GenerateError::OutOfRange(
            "a chain has 1 to 1,000,000 routers".into(),
        )),
        GenerateWhat::FatTree { k } => g::fat_tree(k, seed),
        GenerateWhat::Campus { sites, lans, hosts } => g::campus(sites, lans, hosts, seed),
        GenerateWhat::Cluster { nodes, pods } => g::cluster(nodes, pods, seed),
        GenerateWhat::Hosts { hosts, subnets }
            if hosts <= 1_000_000 && hosts.div_ceil(subnets.clamp(1, 256)) <= 65_000 =>
        {
            Ok(g::hosts(hosts, subnets))
        }
        GenerateWhat::Hosts { .. } => Err(g::GenerateError::OutOfRange(
            "at most 1,000,000 hosts and 65,000 per subnet".into(),
        )),
    };
    let text = match format {
        TopologyFormat::Yaml => text,
        TopologyFormat::Json => text.and_then(|yaml| g::to_json(&yaml)),
    };
    match text {
        Ok(text) => {
            out.write_all(text.as_bytes())?;
            Ok(EXIT_OK)
        }
        Err(e) => usage_error(&e.to_string(), None),
    }
}
