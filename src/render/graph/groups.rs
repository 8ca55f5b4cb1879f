//! Which nodes and segments of a picture belong together because a platform section made them:
//! a VirtualBox host around its VMs and NAT engines, a Docker engine around its containers, an
//! OpenStack router with its networks and instances, a Kubernetes cluster with its nodes, and
//! each Kubernetes node with its pods. Also the role each such node plays ("VM", "pod").
//!
//! The model keeps no platform tags: platform sections expand into ordinary nodes and segments
//! whose origin is the text of the platform entry they came from. So the file is read again and
//! an element belongs to a platform when its origin lies inside that platform's top-level
//! section. A group starts from the nodes the section names (the VM's host and the VMs, the
//! engine's host and containers, …) and takes in the segments that section generated and the
//! generated nodes on them. Groups whose seeds sit inside another group are nested in it, and a
//! group that would cross another one is dropped, so boxes never overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::model::{Network, Origin};
use crate::topology::SourceFile;
use crate::topology::file::TopologyFile;

/// A node or a segment of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Vertex {
    Node(usize),
    Segment(usize),
}

/// What made a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum GroupKind {
    VirtualBox,
    Docker,
    OpenStack,
    Kubernetes,
    KubeNode,
}

impl GroupKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupKind::VirtualBox => "virtualbox",
            GroupKind::Docker => "docker",
            GroupKind::OpenStack => "openstack",
            GroupKind::Kubernetes => "kubernetes",
            GroupKind::KubeNode => "kubernetes-node",
        }
    }
}

/// A box drawn around the elements one platform object made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub kind: GroupKind,
    pub label: String,
    pub members: BTreeSet<Vertex>,
    /// The nodes the platform section names for it.
    seeds: Vec<usize>,
    /// The innermost group this one sits in.
    pub parent: Option<usize>,
}

/// The groups of a picture and the role of each node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Platforms {
    /// Outer groups before the groups inside them.
    pub groups: Vec<Group>,
    /// Per node: what the platform made it ("VM", "pod", …).
    pub roles: Vec<Vec<&'static str>>,
}

/// The top-level sections of a YAML text and their byte ranges.
fn section_ranges(text: &str) -> BTreeMap<String, Range<usize>> {
    let mut starts: Vec<(String, usize)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && let Some(colon) = line.find(':')
        {
            let key = &line[..colon];
            if key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                starts.push((key.to_owned(), offset));
            }
        }
        offset += line.len();
    }
    let mut ranges = BTreeMap::new();
    for (i, (key, start)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(text.len(), |(_, s)| *s);
        ranges.insert(key.clone(), *start..end);
    }
    ranges
}

/// Reads the platform sections of the file the network was loaded from.
pub(crate) fn platforms(net: &Network, source: Option<&SourceFile>) -> Platforms {
    let mut out = Platforms {
        groups: Vec::new(),
        roles: vec![Vec::new(); net.nodes.len()],
    };
    let Some(source) = source else {
        return out;
    };
    let Ok(file) = serde_saphyr::from_str::<TopologyFile>(source.text()) else {
        return out;
    };
    let sections = section_ranges(source.text());
    let within = |origin: &Origin, key: &str| {
        !origin.span.is_unknown()
            && origin.file.as_ref() == source.name()
            && sections
                .get(key)
                .is_some_and(|r| r.contains(&(origin.span.offset as usize)))
    };
    let id = |name: &str| net.node_by_name(name).map(|n| n.id.index());
    let mut groups: Vec<Group> = Vec::new();
    let mut make = |kind: GroupKind, label: String, seeds: Vec<usize>, key: &str| {
        if seeds.is_empty() {
            return;
        }
        let members = closure(net, &seeds, |o| within(o, key));
        groups.push(Group {
            kind,
            label,
            members,
            seeds,
            parent: None,
        });
    };

    if let Some(vbox) = &file.virtualbox {
        let mut hosts: Vec<&str> = Vec::new();
        for vm in &vbox.vms {
            if !hosts.contains(&vm.host.value.as_str()) {
                hosts.push(&vm.host.value);
            }
        }
        for host in hosts {
            let seeds: Vec<usize> = std::iter::once(host)
                .chain(
                    vbox.vms
                        .iter()
                        .filter(|vm| vm.host.value == host)
                        .map(|vm| vm.name.value.as_str()),
                )
                .filter_map(id)
                .collect();
            make(
                GroupKind::VirtualBox,
                format!("VirtualBox on {host}"),
                seeds,
                "virtualbox",
            );
        }
        let vms: BTreeSet<usize> = vbox.vms.iter().filter_map(|v| id(&v.name.value)).collect();
        for node in &net.nodes {
            let i = node.id.index();
            if vms.contains(&i) {
                out.roles[i].push("VM");
            } else if within(&node.origin, "virtualbox") {
                out.roles[i].push("NAT engine");
            }
        }
    }
    if let Some(docker) = &file.docker {
        for engine in &docker.engines {
            let host = engine.host.value.as_str();
            let seeds: Vec<usize> = std::iter::once(host)
                .chain(engine.containers.iter().map(|c| c.name.value.as_str()))
                .filter_map(id)
                .collect();
            make(
                GroupKind::Docker,
                format!("Docker on {host}"),
                seeds,
                "docker",
            );
            for c in &engine.containers {
                if let Some(i) = id(&c.name.value) {
                    out.roles[i].push("container");
                }
            }
        }
    }
    if let Some(openstack) = &file.openstack {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        for router in &openstack.routers {
            let networks: Vec<&str> = router.interfaces.iter().map(|n| n.value.as_str()).collect();
            let instances: Vec<&str> = openstack
                .instances
                .iter()
                .filter(|i| networks.contains(&i.network.value.as_str()))
                .map(|i| i.name.value.as_str())
                .collect();
            placed.extend(instances.iter().copied());
            let seeds: Vec<usize> = std::iter::once(router.name.value.as_str())
                .chain(instances)
                .filter_map(id)
                .collect();
            make(
                GroupKind::OpenStack,
                format!("OpenStack router {}", router.name.value),
                seeds,
                "openstack",
            );
            if let Some(i) = id(&router.name.value) {
                out.roles[i].push("Neutron router");
            }
        }
        for network in &openstack.networks {
            let seeds: Vec<usize> = openstack
                .instances
                .iter()
                .filter(|i| i.network.value == network.name.value)
                .filter(|i| !placed.contains(i.name.value.as_str()))
                .filter_map(|i| id(&i.name.value))
                .collect();
            make(
                GroupKind::OpenStack,
                format!("OpenStack network {}", network.name.value),
                seeds,
                "openstack",
            );
        }
        for instance in &openstack.instances {
            if let Some(i) = id(&instance.name.value) {
                out.roles[i].push("instance");
            }
        }
    }
    if let Some(kubernetes) = &file.kubernetes {
        for cluster in &kubernetes.clusters {
            let members: Vec<&str> = cluster.nodes.iter().map(|n| n.value.as_str()).collect();
            let seeds: Vec<usize> = members.iter().copied().filter_map(id).collect();
            make(
                GroupKind::Kubernetes,
                format!("Kubernetes cluster {}", cluster.name.value),
                seeds.clone(),
                "kubernetes",
            );
            for name in &members {
                let role = if cluster.control_plane.iter().any(|c| c.value == *name) {
                    "control plane"
                } else {
                    "k8s worker"
                };
                if let Some(i) = id(name) {
                    out.roles[i].push(role);
                    make(
                        GroupKind::KubeNode,
                        format!("node {name} and its pods"),
                        vec![i],
                        "kubernetes",
                    );
                }
            }
        }
        let cluster_nodes: BTreeSet<usize> = kubernetes
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter().filter_map(|n| id(&n.value)))
            .collect();
        for node in &net.nodes {
            let i = node.id.index();
            if within(&node.origin, "kubernetes") && !cluster_nodes.contains(&i) {
                out.roles[i].push("pod");
            }
        }
    }
    out.groups = nest(groups);
    out
}

/// The seeds, the segments of the section that are attached to them and the nodes the section
/// generated on those segments, transitively.
fn closure(net: &Network, seeds: &[usize], within: impl Fn(&Origin) -> bool) -> BTreeSet<Vertex> {
    let mut members: BTreeSet<Vertex> = seeds.iter().map(|&s| Vertex::Node(s)).collect();
    let mut stack: Vec<usize> = seeds.to_vec();
    let seed_set: BTreeSet<usize> = seeds.iter().copied().collect();
    while let Some(n) = stack.pop() {
        for iface in net.interfaces_of(&net.nodes[n]) {
            let segment = net.segment(iface.segment);
            if !within(&segment.origin) {
                continue;
            }
            members.insert(Vertex::Segment(segment.id.index()));
            for &other in &segment.interfaces {
                let m = net.interface(other).node;
                let node = net.node(m);
                let generated = within(&node.origin);
                if (generated || seed_set.contains(&m.index()))
                    && members.insert(Vertex::Node(m.index()))
                {
                    stack.push(m.index());
                }
            }
        }
    }
    members
}

/// Nests groups: one whose seeds all sit in another is taken into it; groups that would cross
/// are dropped (the later one). Returns the groups outer first, each with its parent.
fn nest(mut groups: Vec<Group>) -> Vec<Group> {
    // Take in the groups whose seeds are members, until nothing changes.
    loop {
        let mut changed = false;
        for g in 0..groups.len() {
            for h in 0..groups.len() {
                if g == h {
                    continue;
                }
                let inside = groups[h]
                    .seeds
                    .iter()
                    .all(|s| groups[g].members.contains(&Vertex::Node(*s)));
                if inside && !groups[h].members.is_subset(&groups[g].members) {
                    let more = groups[h].members.clone();
                    groups[g].members.extend(more);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Larger first (stable: file order among equals), keep only a laminar family.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| std::cmp::Reverse(groups[g].members.len()));
    let mut kept: Vec<Group> = Vec::new();
    for g in order {
        let group = &groups[g];
        let fits = kept
            .iter()
            .all(|k| group.members.is_subset(&k.members) || group.members.is_disjoint(&k.members));
        if fits {
            kept.push(group.clone());
        }
    }
    for i in 0..kept.len() {
        kept[i].parent = (0..i)
            .rev()
            .find(|&k| kept[i].members.is_subset(&kept[k].members));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_sections_are_found() {
        let text = "name: x\nsegments:\n  - name: a\nvirtualbox:\n  vms: []\n# c\nexpect: []\n";
        let ranges = section_ranges(text);
        assert_eq!(ranges["virtualbox"], 30..56);
        assert!(text[ranges["segments"].clone()].starts_with("segments:"));
        assert_eq!(ranges.len(), 4);
    }
}
