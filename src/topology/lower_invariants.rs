//! Lowering `groups:` and `invariants:`: resolves group members (node names and `*`/`?`
//! patterns), the group or node names each invariant uses, its probes, and refuses what cannot
//! be checked (an unknown name, a probe that is not one, two properties in one entry, a node in
//! two groups that must be isolated from each other), each with its position and a hint.

use std::net::Ipv4Addr;

use indexmap::IndexMap;

use super::lower::Lowering;
use crate::format::file::{GroupsSpec, InvariantSpec, ReachableSpec, TopologyFile};
use crate::format::structure::closest;
use crate::format::{Code, Diagnostic};
use crate::format::{Located, Span};
use crate::model::{
    Interface, Invariant, InvariantKind, NodeId, NodeSet, ProbeSpec, ProbeSpecError, Reach,
    matches_pattern,
};

/// The groups of a file: name → (nodes, where the name was written).
type Groups = IndexMap<String, (Vec<NodeId>, Span)>;

/// The keys that name an invariant's property, as written.
const PROPERTIES: [&str; 3] = ["isolated", "reachable", "no-private-source-beyond"];

impl Lowering<'_> {
    /// Lowers `groups:` and then every entry of `invariants:`.
    pub(super) fn invariants(&mut self, file: &TopologyFile) {
        let groups = self.groups(&file.groups);
        for spec in &file.invariants {
            if let Some(invariant) = self.invariant(spec, &groups) {
                self.net.invariants.push(invariant);
            }
        }
    }

    fn groups(&mut self, spec: &GroupsSpec) -> Groups {
        let mut groups = Groups::new();
        for group in &spec.0 {
            let name = &group.name;
            if !self.check_name(name, "group") {
                continue;
            }
            if let Some(node) = self.net.node_by_name(&name.value) {
                let first = node.origin.span;
                self.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        name.span,
                        format!("group `{}` has the name of a node", name.value),
                    )
                    .label("also a node")
                    .related(first, "the node is defined here")
                    .hint("rename the group: in `invariants:` a name must say whether it means the group or the node"),
                );
                continue;
            }
            let mut nodes: Vec<NodeId> = Vec::new();
            for member in &group.members {
                for id in self.members(&name.value, member, spec) {
                    if !nodes.contains(&id) {
                        nodes.push(id);
                    }
                }
            }
            if group.members.is_empty() {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        name.span,
                        format!("group `{}` lists no nodes", name.value),
                    )
                    .label("empty group")
                    .hint("list node names or patterns: `tenant-a: [web-a, \"db-*\"]`"),
                );
                continue;
            }
            nodes.sort_unstable();
            groups.insert(name.value.clone(), (nodes, name.span));
        }
        groups
    }

    /// The nodes one member of a group stands for; diagnoses a name or pattern that names none.
    fn members(&mut self, group: &str, member: &Located<String>, spec: &GroupsSpec) -> Vec<NodeId> {
        let text = member.value.as_str();
        if text.contains(['*', '?']) {
            let found: Vec<NodeId> = self
                .net
                .nodes
                .iter()
                .filter(|n| matches_pattern(text, &n.name))
                .map(|n| n.id)
                .collect();
            if found.is_empty() {
                let hint = format!("nodes in this file: {}", self.node_names().join(", "));
                self.push(
                    Diagnostic::error(
                        Code::UnknownReference,
                        member.span,
                        format!("no node matches `{text}` (in group `{group}`)"),
                    )
                    .label("matches nothing")
                    .hint(hint),
                );
            }
            return found;
        }
        if let Some(node) = self.net.node_by_name(text) {
            return vec![node.id];
        }
        let hint = if spec.0.iter().any(|g| g.name.value == text) {
            format!("`{text}` is a group: a group lists nodes, not groups; list its nodes here")
        } else {
            let names = self.node_names();
            match closest(text, names.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("nodes in this file: {}", names.join(", ")),
            }
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                member.span,
                format!("group `{group}` lists `{text}`, which is not a node of this file"),
            )
            .label("unknown node")
            .hint(hint),
        );
        Vec::new()
    }

    fn node_names(&self) -> Vec<String> {
        self.net.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn invariant(&mut self, spec: &Located<InvariantSpec>, groups: &Groups) -> Option<Invariant> {
        let entry = spec.span;
        let inv = &spec.value;
        let present: Vec<&str> = PROPERTIES
            .into_iter()
            .zip([
                inv.isolated.is_some(),
                inv.reachable.is_some(),
                inv.no_private_source_beyond.is_some(),
            ])
            .filter_map(|(name, given)| given.then_some(name))
            .collect();
        match present.as_slice() {
            [_] => {}
            [] => {
                self.push(
                    Diagnostic::error(Code::MissingKey, entry, "this invariant names no property")
                        .label("which property?")
                        .hint("add one of `isolated: [A, B]`, `reachable: { from: A, to: B }` or `no-private-source-beyond: NODE`"),
                );
                return None;
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        entry,
                        format!("one invariant has both `{first}` and `{second}`"),
                    )
                    .label("two properties")
                    .hint("write one invariant per entry"),
                );
                return None;
            }
        }
        if let Some(probes) = &inv.probes
            && inv.isolated.is_none()
        {
            let span = probes.first().map_or(entry, |p| p.span);
            self.push(
                Diagnostic::error(Code::BadValue, span, "`probes` only applies to `isolated`")
                    .label("not used")
                    .hint(if inv.reachable.is_some() {
                        "a `reachable` invariant takes one `probe:` inside it"
                    } else {
                        "`no-private-source-beyond` tries every probe: remove `probes`"
                    }),
            );
            return None;
        }
        let kind = if let Some(names) = &inv.isolated {
            self.isolated(entry, names, inv.probes.as_deref().unwrap_or(&[]), groups)?
        } else if let Some(reach) = &inv.reachable {
            self.reachable(reach, groups)?
        } else {
            let border = inv.no_private_source_beyond.as_ref()?;
            let border = self.node_set(border, groups, "`no-private-source-beyond` names")?;
            self.warn_if_vacuous(&border, entry);
            InvariantKind::NoPrivateSourceBeyond { border }
        };
        Some(Invariant {
            kind,
            note: inv.note.clone(),
            origin: self.origin(entry),
        })
    }

    fn isolated(
        &mut self,
        entry: Span,
        names: &[Located<String>],
        probes: &[Located<String>],
        groups: &Groups,
    ) -> Option<InvariantKind> {
        if names.len() < 2 {
            let span = names.first().map_or(entry, |n| n.span);
            self.push(
                Diagnostic::error(Code::BadValue, span, "`isolated` needs two groups or nodes")
                    .label("isolated from what?")
                    .hint("write `isolated: [A, B]` with two group or node names"),
            );
            return None;
        }
        let mut sets: Vec<(NodeSet, Span)> = Vec::new();
        let mut ok = true;
        for name in names {
            if let Some((_, first)) = sets.iter().find(|(s, _)| s.name == name.value) {
                let first = *first;
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        name.span,
                        format!("`{}` is listed twice", name.value),
                    )
                    .label("second time")
                    .related(first, "first listed here")
                    .hint("a group cannot be isolated from itself: list each group once"),
                );
                ok = false;
                continue;
            }
            match self.node_set(name, groups, "`isolated` lists") {
                Some(set) => sets.push((set, name.span)),
                None => ok = false,
            }
        }
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                let (a, b) = (&sets[i].0, &sets[j].0);
                if let Some(&shared) = a.nodes.iter().find(|n| b.contains(**n)) {
                    let node = self.net.node(shared).name.clone();
                    let (a_name, b_name, span) = (a.name.clone(), b.name.clone(), sets[j].1);
                    self.push(
                        Diagnostic::error(
                            Code::BadValue,
                            span,
                            format!("node `{node}` is in both `{a_name}` and `{b_name}`"),
                        )
                        .label("overlaps")
                        .hint("a node cannot be isolated from itself: make the groups disjoint"),
                    );
                    ok = false;
                }
            }
        }
        let parsed: Vec<ProbeSpec> = probes.iter().filter_map(|p| self.probe(p)).collect();
        let mut unique: Vec<ProbeSpec> = Vec::new();
        for probe in parsed.iter().copied() {
            if !unique.contains(&probe) {
                unique.push(probe);
            }
        }
        (ok && parsed.len() == probes.len()).then_some(InvariantKind::Isolated {
            sets: sets.into_iter().map(|(s, _)| s).collect(),
            probes: unique,
        })
    }

    fn reachable(&mut self, spec: &ReachableSpec, groups: &Groups) -> Option<InvariantKind> {
        let from = self.node_set(&spec.from, groups, "`from` names");
        let to = self.reach(&spec.to, groups);
        let probe = match &spec.probe {
            Some(p) => Some(self.probe(p)?),
            None => Some(ProbeSpec::Ping),
        };
        let (from, to, probe) = (from?, to?, probe?);
        if let Reach::Nodes(to_set) = &to
            && from.nodes.iter().all(|n| to_set.nodes == [*n])
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    spec.to.span,
                    format!("`{}` would only probe itself", spec.to.value),
                )
                .label("same node as `from`")
                .hint("a node is not probed from itself: name another node, a group or an address"),
            );
            return None;
        }
        Some(InvariantKind::Reachable { from, to, probe })
    }

    /// A probe as written (`ping`, `ssh:2222`, `tcp:443`, ...).
    fn probe(&mut self, written: &Located<String>) -> Option<ProbeSpec> {
        match written.value.parse::<ProbeSpec>() {
            Ok(probe) => Some(probe),
            Err(e) => {
                let hint = match e {
                    ProbeSpecError::Unknown(_) => {
                        "use ping, ssh[:PORT], curl[:PORT], tcp:PORT or udp:PORT".to_owned()
                    }
                    other => other.to_string(),
                };
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        written.span,
                        format!("`{}` is not a probe", written.value),
                    )
                    .label("not a probe")
                    .hint(hint),
                );
                None
            }
        }
    }

    /// A group's or a node's nodes.
    fn node_set(&mut self, name: &Located<String>, groups: &Groups, role: &str) -> Option<NodeSet> {
        if let Some((nodes, _)) = groups.get(&name.value) {
            return Some(NodeSet {
                name: name.value.clone(),
                is_group: true,
                nodes: nodes.clone(),
            });
        }
        if let Some(node) = self.net.node_by_name(&name.value) {
            return Some(NodeSet {
                name: name.value.clone(),
                is_group: false,
                nodes: vec![node.id],
            });
        }
        self.unknown_name(name, groups, role, false);
        None
    }

    /// `to` of `reachable`: a group or a node (each at its first address), an address, a DNS name.
    fn reach(&mut self, written: &Located<String>, groups: &Groups) -> Option<Reach> {
        let text = written.value.as_str();
        if groups.contains_key(text) || self.net.node_by_name(text).is_some() {
            let set = self.node_set(written, groups, "`to` names")?;
            let unaddressed: Vec<String> = set
                .nodes
                .iter()
                .map(|&n| self.net.node(n))
                .filter(|n| self.net.node_address(n).is_none())
                .map(|n| format!("`{}`", n.name))
                .collect();
            if !unaddressed.is_empty() {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        written.span,
                        format!(
                            "{} of `{text}` has no address to probe",
                            unaddressed.join(", ")
                        ),
                    )
                    .label("node without addresses")
                    .hint("give one of its interfaces an address"),
                );
                return None;
            }
            return Some(Reach::Nodes(set));
        }
        if let Ok(addr) = text.parse::<Ipv4Addr>() {
            return Some(Reach::Address {
                written: text.to_owned(),
                addr,
            });
        }
        if let Some(node) = self.net.node_by_dns(text) {
            let Some(addr) = self.net.node_address(node) else {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        written.span,
                        format!("`{text}` has no address to send to"),
                    )
                    .label("node without addresses")
                    .hint("give one of its interfaces an address"),
                );
                return None;
            };
            return Some(Reach::Address {
                written: text.to_owned(),
                addr,
            });
        }
        self.unknown_name(written, groups, "`to` names", true);
        None
    }

    fn unknown_name(&mut self, name: &Located<String>, groups: &Groups, role: &str, dns: bool) {
        let mut candidates: Vec<&str> = groups.keys().map(String::as_str).collect();
        candidates.extend(self.net.nodes.iter().map(|n| n.name.as_str()));
        if dns {
            candidates.extend(
                self.net
                    .nodes
                    .iter()
                    .flat_map(|n| n.dns.iter().map(String::as_str)),
            );
        }
        let hint = match closest(&name.value, candidates.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if groups.is_empty() => format!(
                "name a node{}, or define a group under `groups:`",
                if dns {
                    ", an address or a DNS name"
                } else {
                    ""
                }
            ),
            None => format!(
                "groups in this file: {}",
                groups
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let what = if dns {
            "a group, a node, an address or a DNS name"
        } else {
            "a group or a node"
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                name.span,
                format!("{role} `{}`, which is not {what} of this file", name.value),
            )
            .label("unknown name")
            .hint(hint),
        );
    }

    /// `no-private-source-beyond` at nodes none of whose interfaces has only public addresses
    /// holds whatever happens: say so.
    fn warn_if_vacuous(&mut self, border: &NodeSet, entry: Span) {
        let faces_public = border.nodes.iter().any(|&n| {
            self.net
                .interfaces_of(self.net.node(n))
                .any(Interface::faces_public)
        });
        if !faces_public {
            self.push(
                Diagnostic::warning(
                    Code::BadValue,
                    entry,
                    if border.is_group {
                        format!("no node of `{}` has an interface whose addresses are all public: this invariant cannot be violated", border.name)
                    } else {
                        format!("node `{}` has no interface whose addresses are all public: this invariant cannot be violated", border.name)
                    },
                )
                .label("nothing to check")
                .hint("name the node whose interface faces the public network (the edge router)"),
            );
        }
    }
}
