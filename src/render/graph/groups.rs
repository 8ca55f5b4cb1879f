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
    let roles = vec![Vec::new(); net.nodes.len()];
    let Some(source) = source else {
        return Platforms {
            groups: Vec::new(),
            roles,
        };
    };
    let Ok(file) = serde_saphyr::from_str::<TopologyFile>(source.text()) else {
        return Platforms {
            groups: Vec::new(),
            roles,
        };
    };
    let mut reader = SectionReader {
        net,
        source,
        sections: section_ranges(source.text()),
        groups: Vec::new(),
        roles,
    };
    reader.virtualbox(&file);
    reader.docker(&file);
    reader.openstack(&file);
    reader.kubernetes(&file);
    Platforms {
        groups: nest(reader.groups),
        roles: reader.roles,
    }
}

/// Gathers the groups (in file order, not yet nested) and the roles of the nodes, one platform
/// section after the other.
struct SectionReader<'a> {
    net: &'a Network,
    source: &'a SourceFile,
    /// The top-level sections of the file.
    sections: BTreeMap<String, Range<usize>>,
    groups: Vec<Group>,
    /// Per node: what the platform made it.
    roles: Vec<Vec<&'static str>>,
}

impl SectionReader<'_> {
    /// Whether `origin` lies in the top-level section `key` of the file.
    fn within(&self, origin: &Origin, key: &str) -> bool {
        !origin.span.is_unknown()
            && origin.file.as_ref() == self.source.name()
            && self
                .sections
                .get(key)
                .is_some_and(|r| r.contains(&(origin.span.offset as usize)))
    }

    /// The index of the node called `name`.
    fn id(&self, name: &str) -> Option<usize> {
        self.net.node_by_name(name).map(|n| n.id.index())
    }

    /// A group around `seeds` and what section `key` made around them (no group without seeds).
    fn group(&mut self, kind: GroupKind, label: String, seeds: Vec<usize>, key: &str) {
        if seeds.is_empty() {
            return;
        }
        let members = closure(self.net, &seeds, |o| self.within(o, key));
        self.groups.push(Group {
            kind,
            label,
            members,
            seeds,
            parent: None,
        });
    }

    /// One group per VirtualBox host around its VMs and their NAT engines.
    fn virtualbox(&mut self, file: &TopologyFile) {
        let Some(vbox) = &file.virtualbox else { return };
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
                .filter_map(|name| self.id(name))
                .collect();
            self.group(
                GroupKind::VirtualBox,
                format!("VirtualBox on {host}"),
                seeds,
                "virtualbox",
            );
        }
        let vms: BTreeSet<usize> = vbox
            .vms
            .iter()
            .filter_map(|v| self.id(&v.name.value))
            .collect();
        let net = self.net;
        for node in &net.nodes {
            let i = node.id.index();
            if vms.contains(&i) {
                self.roles[i].push("VM");
            } else if self.within(&node.origin, "virtualbox") {
                self.roles[i].push("NAT engine");
            }
        }
    }

    /// One group per Docker engine around its host and containers.
    fn docker(&mut self, file: &TopologyFile) {
        let Some(docker) = &file.docker else { return };
        for engine in &docker.engines {
            let host = engine.host.value.as_str();
            let seeds: Vec<usize> = std::iter::once(host)
                .chain(engine.containers.iter().map(|c| c.name.value.as_str()))
                .filter_map(|name| self.id(name))
                .collect();
            self.group(
                GroupKind::Docker,
                format!("Docker on {host}"),
                seeds,
                "docker",
            );
            for c in &engine.containers {
                if let Some(i) = self.id(&c.name.value) {
                    self.roles[i].push("container");
                }
            }
        }
    }

    /// One group per OpenStack router around the instances on its networks, then one per
    /// network for the instances no router took.
    fn openstack(&mut self, file: &TopologyFile) {
        let Some(openstack) = &file.openstack else {
            return;
        };
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
                .filter_map(|name| self.id(name))
                .collect();
            self.group(
                GroupKind::OpenStack,
                format!("OpenStack router {}", router.name.value),
                seeds,
                "openstack",
            );
            if let Some(i) = self.id(&router.name.value) {
                self.roles[i].push("Neutron router");
            }
        }
        for network in &openstack.networks {
            let seeds: Vec<usize> = openstack
                .instances
                .iter()
                .filter(|i| i.network.value == network.name.value)
                .filter(|i| !placed.contains(i.name.value.as_str()))
                .filter_map(|i| self.id(&i.name.value))
                .collect();
            self.group(
                GroupKind::OpenStack,
                format!("OpenStack network {}", network.name.value),
                seeds,
                "openstack",
            );
        }
        for instance in &openstack.instances {
            if let Some(i) = self.id(&instance.name.value) {
                self.roles[i].push("instance");
            }
        }
    }

    /// One group per Kubernetes cluster around its nodes, and one per node around its pods.
    fn kubernetes(&mut self, file: &TopologyFile) {
        let Some(kubernetes) = &file.kubernetes else {
            return;
        };
        for cluster in &kubernetes.clusters {
            let members: Vec<&str> = cluster.nodes.iter().map(|n| n.value.as_str()).collect();
            let seeds: Vec<usize> = members.iter().filter_map(|name| self.id(name)).collect();
            self.group(
                GroupKind::Kubernetes,
                format!("Kubernetes cluster {}", cluster.name.value),
                seeds,
                "kubernetes",
            );
            for name in &members {
                let role = if cluster.control_plane.iter().any(|c| c.value == *name) {
                    "control plane"
                } else {
                    "k8s worker"
                };
                if let Some(i) = self.id(name) {
                    self.roles[i].push(role);
                    self.group(
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
            .flat_map(|c| c.nodes.iter().filter_map(|n| self.id(&n.value)))
            .collect();
        let net = self.net;
        for node in &net.nodes {
            let i = node.id.index();
            if self.within(&node.origin, "kubernetes") && !cluster_nodes.contains(&i) {
                self.roles[i].push("pod");
            }
        }
    }
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
