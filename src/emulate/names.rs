//! Names of everything the emulator creates. Every object carries the project's prefix: the
//! namespaces are `reachlab-<lab>-n-<node>` and `reachlab-<lab>-switch`, and inside the switch
//! namespace the bridges are `rlbr<segment>` and the bridge ports `rlp<interface>`. The node's
//! own interfaces keep their names from the file (they live only inside the node's namespace).

use std::path::Path;

use crate::model::{IfaceId, Network, NodeId, SegmentId};

/// The prefix of every namespace the emulator creates.
pub const PREFIX: &str = "reachlab-";

/// A lab's short identity: 8 hex digits of a hash of the topology file's canonical path and the
/// state directory, so that the same file gets the same namespaces, and `down FILE` finds them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabId(String);

impl LabId {
    pub fn for_file(canonical_file: &Path, state_dir: &Path) -> Self {
        // FNV-1a: stable across builds and platforms (std's hasher is not).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = canonical_file
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .chain([0u8].iter())
            .chain(state_dir.as_os_str().as_encoded_bytes());
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        LabId(format!("{:08x}", (hash >> 32) ^ (hash & 0xffff_ffff)))
    }

    /// A lab id as written in a state file name; `None` unless it is 8 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| LabId(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LabId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where each part of a network lives once emulated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub lab: LabId,
    /// The namespace holding one bridge per segment.
    pub switch: String,
    /// The namespace of each node, by node index.
    pub nodes: Vec<String>,
}

impl Layout {
    pub fn new(lab: LabId, net: &Network) -> Self {
        let mut nodes: Vec<String> = Vec::with_capacity(net.nodes.len());
        for node in &net.nodes {
            let clean: String = node
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(40)
                .collect();
            let mut name = format!("{PREFIX}{lab}-n-{clean}");
            // Two names that clean to the same text: the second gets its index.
            if nodes.contains(&name) {
                name = format!("{name}-{}", node.id.index());
            }
            nodes.push(name);
        }
        Layout {
            switch: format!("{PREFIX}{lab}-switch"),
            lab,
            nodes,
        }
    }

    pub fn node(&self, id: NodeId) -> &str {
        &self.nodes[id.index()]
    }

    /// Every namespace, switch first.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.switch.clone())
            .chain(self.nodes.iter().cloned())
            .collect()
    }

    /// Whether `namespace` belongs to this lab.
    pub fn owns(&self, namespace: &str) -> bool {
        namespace.starts_with(&format!("{PREFIX}{}-", self.lab))
    }
}

/// The bridge of a segment, inside the switch namespace.
pub fn bridge(segment: SegmentId) -> String {
    format!("rlbr{}", segment.index())
}

/// The bridge port an interface's veth peer becomes, inside the switch namespace.
pub fn port(iface: IfaceId) -> String {
    format!("rlp{}", iface.index())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_ids_are_stable_and_distinct() {
        let a = LabId::for_file(Path::new("/x/a.yaml"), Path::new("/run/reachlab"));
        let b = LabId::for_file(Path::new("/x/b.yaml"), Path::new("/run/reachlab"));
        let c = LabId::for_file(Path::new("/x/a.yaml"), Path::new("/tmp/state"));
        assert_eq!(a.as_str().len(), 8);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            LabId::for_file(Path::new("/x/a.yaml"), Path::new("/run/reachlab"))
        );
        assert_eq!(LabId::parse(a.as_str()), Some(a));
        assert_eq!(LabId::parse("nothex!!"), None);
    }

    #[test]
    fn switch_side_names_fit_the_kernel_limit() {
        assert!(port(IfaceId(u32::MAX)).len() <= 15);
        assert!(bridge(SegmentId(u32::MAX)).len() <= 15);
    }
}
