//! Names of everything the emulator creates, and the parsing of those names back. Every object
//! carries the project's prefix: the namespaces are `reachlab-<lab>-n<index>-<node>` and
//! `reachlab-<lab>-switch`, and inside the switch namespace the bridges are `rlbr<segment>` and
//! the bridge ports `rlp<interface>`. The node's own interfaces keep their names from the file
//! (they live only inside the node's namespace). A lab id is 16 hex digits; the node's index in
//! its namespace name makes the node → namespace mapping injective.

use std::path::{Component, Path, PathBuf};

use crate::model::{IfaceId, Network, NodeId, SegmentId};

/// The prefix of every namespace the emulator creates.
pub const PREFIX: &str = "reachlab-";

/// How many hex digits a lab id has (64 bits).
pub const LAB_ID_DIGITS: usize = 16;

/// How many characters of a node's name its namespace name keeps (the index before them keeps
/// the names distinct; this keeps every name under 64 characters).
const NODE_NAME_CHARS: usize = 24;

/// A lab's identity: 16 hex digits (64 bits) of a hash of the topology file's canonical path and
/// the state directory, so that the same file gets the same namespaces, and `down FILE` finds
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabId(String);

impl LabId {
    /// The id of the lab of `canonical_file` with its state in `state_dir` (`/run/reachlab`,
    /// `/run/reachlab/` and `/run/./reachlab` are one directory, and give one id).
    pub fn for_file(canonical_file: &Path, state_dir: &Path) -> Self {
        let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_owned());
        let dir: PathBuf = dir
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        // FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = canonical_file
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .chain([0u8].iter())
            .chain(dir.as_os_str().as_encoded_bytes());
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        LabId(format!("{hash:016x}"))
    }

    /// A lab id as written in a state file name; `None` unless it is 16 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == LAB_ID_DIGITS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| LabId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lab whose namespace `name` is, if it is named like one of a lab's:
    /// `reachlab-<lab>-switch` or `reachlab-<lab>-n<index>-<node>` (the node's name cleaned to
    /// letters, digits, `-` and `_`).
    pub fn of_namespace(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(PREFIX)?;
        let (id, role) = rest.split_at_checked(LAB_ID_DIGITS)?;
        let role = role.strip_prefix('-')?;
        let lab = LabId::parse(id)?;
        if role == "switch" {
            return Some(lab);
        }
        let (index, node) = role.strip_prefix('n')?.split_once('-')?;
        let well_formed = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && index.parse::<u32>().is_ok()
            && node.chars().count() <= NODE_NAME_CHARS
            && node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then_some(lab)
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
        let nodes = net
            .nodes
            .iter()
            .map(|node| node_namespace(&lab, node.id.index(), &node.name))
            .collect();
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

    /// Whether `namespace` is named as one of this lab's: the only namespaces `down` deletes.
    pub fn owns(&self, namespace: &str) -> bool {
        owns(&self.lab, namespace)
    }
}

/// The namespace of node number `index`, named `name`: the index makes the name unique whatever
/// the cleaning (to letters, digits, `-` and `_`, at most 24 characters) merged.
fn node_namespace(lab: &LabId, index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(NODE_NAME_CHARS)
        .collect();
    format!("{PREFIX}{lab}-n{index}-{clean}")
}

/// Whether `namespace` is named as one of lab `lab`'s namespaces.
pub fn owns(lab: &LabId, namespace: &str) -> bool {
    LabId::of_namespace(namespace).as_ref() == Some(lab)
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

    fn id(file: &str, dir: &str) -> LabId {
        LabId::for_file(Path::new(file), Path::new(dir))
    }

    #[test]
    fn lab_ids_are_stable_and_distinct() {
        let a = id("/x/a.yaml", "/run/reachlab");
        assert_ne!(a, id("/x/b.yaml", "/run/reachlab"));
        assert_ne!(a, id("/x/a.yaml", "/tmp/state"));
        assert_eq!(a, id("/x/a.yaml", "/run/reachlab"));
        assert_eq!(LabId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn lab_ids_have_64_bits() {
        let a = id("/x/a.yaml", "/run/reachlab");
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        // 100 000 files: no two share an id (with 32 bits, a collision was found in 0.5 s).
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            assert!(seen.insert(id(&format!("/x/{i}.yaml"), "/run/reachlab")));
        }
    }

    #[test]
    fn one_state_directory_written_two_ways_gives_one_id() {
        let a = id("/x/a.yaml", "/run/reachlab");
        assert_eq!(a, id("/x/a.yaml", "/run/reachlab/"));
        assert_eq!(a, id("/x/a.yaml", "/run/./reachlab"));
    }

    #[test]
    fn only_16_lowercase_hex_digits_parse_as_a_lab_id() {
        assert!(LabId::parse("0123456789abcdef").is_some());
        for bad in [
            "0123abcd",
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "0123456789abcdef0",
        ] {
            assert_eq!(LabId::parse(bad), None, "{bad}");
        }
    }

    fn namespaces(lab: &LabId, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| node_namespace(lab, i, n))
            .collect()
    }

    #[test]
    fn the_node_to_namespace_mapping_is_injective() {
        let lab = id("/x/a.yaml", "/run/reachlab");
        let mut names = namespaces(&lab, &["a_b-2", "a.b", "a_b", "a b", "a_b-1", "a_b"]);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 6, "{names:?}");
    }

    #[test]
    fn namespace_names_fit_and_belong_to_their_lab() {
        let lab = id("/x/a.yaml", "/run/reachlab");
        let long = "x".repeat(200);
        let mut names = namespaces(&lab, &[&long, "pc1", "ü-ñ", "", "a/../b"]);
        names.push(node_namespace(&lab, u32::MAX as usize, &long));
        names.push(format!("{PREFIX}{lab}-switch"));
        for name in names {
            assert!(name.len() <= 64, "{name}");
            assert!(!name.contains('/'), "{name}");
            assert!(owns(&lab, &name), "{name}");
        }
    }

    #[test]
    fn a_lab_owns_only_namespaces_named_for_it() {
        let lab = id("/x/a.yaml", "/run/reachlab");
        let other = id("/x/b.yaml", "/run/reachlab");
        assert!(owns(&lab, &format!("reachlab-{lab}-switch")));
        assert!(owns(&lab, &format!("reachlab-{lab}-n3-pc1")));
        for foreign in [
            "victim-test".to_owned(),
            "reachlab-victim-123".to_owned(),
            format!("reachlab-{other}-switch"),
            format!("reachlab-{lab}-n3-../../x"),
            format!("reachlab-{lab}-n-pc1"),
            format!("reachlab-{lab}-nx-pc1"),
            format!("reachlab-{lab}-switch2"),
            format!("reachlab-{lab}"),
            format!("{lab}-switch"),
        ] {
            assert!(!owns(&lab, &foreign), "{foreign}");
        }
    }

    #[test]
    fn switch_side_names_fit_the_kernel_limit() {
        assert!(port(IfaceId(u32::MAX)).len() <= 15);
        assert!(bridge(SegmentId(u32::MAX)).len() <= 15);
    }
}
