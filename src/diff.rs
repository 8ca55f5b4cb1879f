//! Differential reachability: the flows (source, destination, probe) whose outcome differs
//! between two versions of a topology, with the cause on each side, and the nodes that only one
//! version has. "Adding this security-group rule opens ssh to three instances."
//!
//! Both versions are computed as [matrices](crate::matrix) over the same rows and columns:
//! nodes are matched by name, and a node destination is probed at its primary address in each
//! version (an address given with `--to` is probed as it is in both). Only the cells that
//! changed are simulated again, recording their hops, to say why they fail.
//!
//! This module owns what is compared by default, when no `--probe` is given
//! ([`ProbeChoice::Relevant`]): ping and every probe the two files make relevant (their
//! expectations' probes, the ports their listeners listen on and their DNAT rules match:
//! [`relevant_probes`]) from every source to every destination; and, without `--to`, the
//! addresses DNAT rules match (a port forward's public address, a floating IP: [`Entrance`]),
//! probed only with the probes those rules translate, and the expectations' flows to other
//! targets ([`ExpectedTarget`]). The report says which probes, from where, and how many flows.
//!
//! A version is a file, or `REV:PATH`: `PATH` as git revision `REV` has it (`git show REV:PATH`).

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;
use serde::Serialize;

use crate::invariants::probe_universe;
use crate::matrix::{
    self, BudgetError, Cell, Destination, Layout, ProbeList, ProbeSpec, Progress, ProgressMode,
    SelectError, Selection, Source,
};
use crate::model::{L4, NatAction, NatHook, NatRule, Network, Node, Origin, Outcome, Probe, Proto};
use crate::sim::{SimConfig, run_probe};
use crate::topology::{self, FileReport, Loaded};

/// Where a version of a topology comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A file on disk.
    File(PathBuf),
    /// `PATH` at git revision `REV`.
    Git { rev: String, path: String },
}

impl Version {
    /// Reads a command-line argument: an existing file is a file; otherwise `REV:PATH` (both
    /// parts non-empty) is a git revision of a file; anything else is a file (that will not
    /// load).
    pub fn parse(arg: &str) -> Self {
        if Path::new(arg).exists() {
            return Version::File(arg.into());
        }
        match arg.split_once(':') {
            Some((rev, path)) if !rev.is_empty() && !path.is_empty() => Version::Git {
                rev: rev.to_owned(),
                path: path.to_owned(),
            },
            _ => Version::File(arg.into()),
        }
    }

    /// As the user wrote it.
    pub fn label(&self) -> String {
        match self {
            Version::File(path) => path.display().to_string(),
            Version::Git { rev, path } => format!("{rev}:{path}"),
        }
    }

    /// Loads the version. A git revision is named `PATH@REV` in diagnostics; the manifests a
    /// `kubernetes:` section names are read from the working tree, next to `PATH`.
    pub fn load(&self) -> Result<Loaded, VersionError> {
        match self {
            Version::File(path) => topology::load_path(path).map_err(VersionError::Invalid),
            Version::Git { rev, path } => {
                let (name, text) = git_show(rev, path)?;
                topology::load_str(&name, &text).map_err(VersionError::Invalid)
            }
        }
    }
}

/// A version that could not be read or does not validate.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("`{spec}`: a git revision cannot start with `-`")]
    BadRevision { spec: String },
    #[error("cannot run `git show {spec}`: {source}")]
    GitUnavailable {
        spec: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git show {spec}` failed: {message}")]
    Git { spec: String, message: String },
    #[error("`{spec}` is not UTF-8 text")]
    NotText { spec: String },
    /// The file's diagnostics, to print as `reachlab validate` does.
    #[error("{} is not a valid topology", .0.source.name())]
    Invalid(Box<FileReport>),
}

/// `git show REV:PATH`: the diagnostics name (`PATH@REV`, relative to the current directory
/// so that manifests resolve next to the working-tree file) and the text.
fn git_show(rev: &str, path: &str) -> Result<(String, String), VersionError> {
    let spec = format!("{rev}:{path}");
    if rev.starts_with('-') {
        return Err(VersionError::BadRevision { spec });
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .map_err(|source| VersionError::GitUnavailable {
                spec: spec.clone(),
                source,
            })
    };
    let shown = git(&["show", &spec])?;
    if !shown.status.success() {
        return Err(VersionError::Git {
            spec: spec.clone(),
            message: String::from_utf8_lossy(&shown.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8(shown.stdout)
        .map_err(|_| VersionError::NotText { spec: spec.clone() })?;
    // `REV:PATH` is relative to the repository's top unless PATH starts with ./ or ../.
    let relative = path.starts_with("./") || path.starts_with("../");
    let prefix = if relative {
        String::new()
    } else {
        git(&["rev-parse", "--show-cdup"])
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    Ok((format!("{prefix}{path}@{rev}"), text))
}

/// What to compare: sources and destinations as `reachlab matrix` selects them (`--from`,
/// `--to`), and the probes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub from: Selection,
    pub to: Selection,
    pub probes: ProbeChoice,
}

/// Which probes to compare with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProbeChoice {
    /// What the two files make relevant ([`relevant_probes`]), at every destination; and when
    /// the destinations are every node (no `--to`), also at the addresses DNAT rules match
    /// ([`Entrance`]) and on the flows of the files' expectations to other targets
    /// ([`ExpectedTarget`]).
    #[default]
    Relevant,
    /// These probes (`--probe`), from the sources to the destinations and nothing else.
    Given(ProbeList),
}

/// Where the probes compared come from, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeSource {
    /// Listed with `--probe`.
    Given,
    /// Ping: always part of the default.
    Ping,
    /// The probes of the files' `expect:` entries.
    Expectations,
    /// The ports the files' listeners listen on.
    Listeners,
    /// The ports the files' DNAT rules match (port forwards, floating IPs, Kubernetes services).
    PortForwards,
}

impl ProbeSource {
    /// The words of the report (text and JSON).
    pub fn name(self) -> &'static str {
        match self {
            ProbeSource::Given => "--probe",
            ProbeSource::Ping => "ping",
            ProbeSource::Expectations => "expectations",
            ProbeSource::Listeners => "listeners",
            ProbeSource::PortForwards => "port forwards",
        }
    }
}

/// What a probe puts on the wire, whatever the tool: an echo request, or a TCP connection or a
/// UDP datagram to a port. `ssh`, `http:22` and `tcp:22` are the same connection attempt (see
/// [`ProbeSpec::kind`]); ordered echo, TCP by port, UDP by port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wire {
    Echo,
    Tcp(u16),
    Udp(u16),
}

impl Wire {
    fn of(probe: ProbeSpec) -> Self {
        match probe.probe().port() {
            None => Wire::Echo,
            Some((Proto::Tcp, port)) => Wire::Tcp(port.get()),
            Some((Proto::Udp, port)) => Wire::Udp(port.get()),
        }
    }
}

/// The probe an `expect:` entry runs, as a matrix cell runs it.
fn spec_of(probe: &Probe) -> ProbeSpec {
    match probe {
        Probe::Ping => ProbeSpec::Ping,
        Probe::Ssh { port } => ProbeSpec::Ssh(*port),
        Probe::Curl { port, .. } => ProbeSpec::Http(*port),
        Probe::Tcp { port } => ProbeSpec::Tcp(*port),
        Probe::Udp { port } => ProbeSpec::Udp(*port),
    }
}

/// The probe of `probes` that puts `probe` on the wire (the list has one per [`Wire`]).
fn spelled_in(probes: &[ProbeSpec], probe: ProbeSpec) -> ProbeSpec {
    let wire = Wire::of(probe);
    probes
        .iter()
        .copied()
        .find(|&p| Wire::of(p) == wire)
        .unwrap_or(probe)
}

/// The DNAT rules of a node, as the [probe universe](probe_universe) counts them: those that
/// translate arriving packets and the node's own.
fn dnat_rules(node: &Node) -> impl Iterator<Item = &NatRule> {
    node.netfilter
        .iter()
        .flat_map(|nf| &nf.nat)
        .filter(|r| matches!(r.action, NatAction::Dnat(..)) && r.hook != NatHook::Postrouting)
}

/// The probes two versions make relevant, and where they come from: ping; the probe of every
/// `expect:` entry of either file; TCP and UDP to every port of either file's
/// [probe universe](probe_universe) (the ports listeners listen on and DNAT rules match).
/// One probe per `Wire`, spelled as the first expectation that uses it (`ssh:2222`,
/// `http:8080`), else `tcp:P`/`udp:P`; in the order ping, TCP by port, UDP by port.
pub fn relevant_probes(old: &Network, new: &Network) -> (Vec<ProbeSpec>, Vec<ProbeSource>) {
    let versions = [old, new];
    let expected = versions
        .iter()
        .flat_map(|net| &net.expectations)
        .map(|e| spec_of(&e.probe));
    let universe = versions.iter().flat_map(|net| probe_universe(net));
    let mut by_wire: BTreeMap<Wire, ProbeSpec> = BTreeMap::new();
    for probe in std::iter::once(ProbeSpec::Ping)
        .chain(expected)
        .chain(universe)
    {
        by_wire.entry(Wire::of(probe)).or_insert(probe);
    }
    let nodes = || versions.iter().flat_map(|net| &net.nodes);
    let from = [
        (ProbeSource::Ping, true),
        (
            ProbeSource::Expectations,
            versions
                .iter()
                .flat_map(|net| &net.expectations)
                .any(|e| e.probe != Probe::Ping),
        ),
        (
            ProbeSource::Listeners,
            nodes().any(|n| !n.listeners.is_empty()),
        ),
        (
            ProbeSource::PortForwards,
            nodes().any(|n| dnat_rules(n).any(|r| r.matches.dport.is_some())),
        ),
    ];
    (
        by_wire.into_values().collect(),
        from.into_iter()
            .filter(|(_, yes)| *yes)
            .map(|(s, _)| s)
            .collect(),
    )
}

/// An address that DNAT rules match and no destination has (a port forward's public address,
/// a floating IP, a ClusterIP): probed from every source with the probes the rules translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrance {
    pub address: Ipv4Addr,
    /// The node whose rules match it (in the old version when both have it).
    pub node: String,
    /// The probes of the comparison that a rule matching the address translates.
    pub probes: Vec<ProbeSpec>,
}

/// The addresses a DNAT rule of `node` matches: its `dst` when that is one address (else the
/// node's addresses inside the prefix); without `dst`, the addresses of the interface it
/// matches arriving packets on (`in:` the WAN), else every address of the node but those of
/// the interface of `not_in:`.
fn rule_addresses(net: &Network, node: &Node, rule: &NatRule) -> Vec<Ipv4Addr> {
    let m = &rule.matches;
    if let Some(dst) = m.dst.filter(|d| d.prefix_len() == 32) {
        return vec![dst.addr()];
    }
    net.interfaces_of(node)
        .filter(|i| m.in_iface.is_none_or(|id| id == i.id))
        .filter(|i| m.not_in_iface != Some(i.id))
        .flat_map(|i| i.addresses.iter().map(|a| a.addr()))
        .filter(|a| m.dst.is_none_or(|d| d.contains(a)) && m.not_dst.is_none_or(|d| !d.contains(a)))
        .collect()
}

/// Whether `rule` translates `probe`: its protocol, and its port within the rule's range.
fn translates(rule: &NatRule, probe: ProbeSpec) -> bool {
    let (l4, port) = match Wire::of(probe) {
        Wire::Echo => (L4::Icmp, None),
        Wire::Tcp(p) => (L4::Tcp, Some(p)),
        Wire::Udp(p) => (L4::Udp, Some(p)),
    };
    rule.matches.fits_destination(None, l4, port)
}

/// The addresses the DNAT rules of either version match, each with the probes of `probes`
/// some rule matching it translates, in the order the files give them.
fn dnat_entrances(versions: [&Network; 2], probes: &[ProbeSpec]) -> Vec<Entrance> {
    let mut out: Vec<Entrance> = Vec::new();
    for net in versions {
        for node in &net.nodes {
            for rule in dnat_rules(node) {
                let admitted: Vec<ProbeSpec> = probes
                    .iter()
                    .copied()
                    .filter(|&p| translates(rule, p))
                    .collect();
                for address in rule_addresses(net, node, rule) {
                    let at = match out.iter().position(|e| e.address == address) {
                        Some(at) => at,
                        None => {
                            out.push(Entrance {
                                address,
                                node: node.name.clone(),
                                probes: Vec::new(),
                            });
                            out.len() - 1
                        }
                    };
                    let entrance = &mut out[at];
                    for &p in &admitted {
                        if !entrance.probes.contains(&p) {
                            entrance.probes.push(p);
                        }
                    }
                }
            }
        }
    }
    for entrance in &mut out {
        entrance.probes.sort_by_key(|&p| Wire::of(p));
    }
    out.retain(|e| !e.probes.is_empty());
    out
}

/// A target of the files' expectations that neither the destinations nor the entrances cover
/// (an address that is no node's first one, a DNS name), with the sources and probes of those
/// expectations: each of them probes it with each probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTarget {
    /// As the expectation wrote it.
    pub to: String,
    pub from: Vec<String>,
    pub probes: Vec<ProbeSpec>,
}

/// One version, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The file or `REV:PATH` as given.
    pub label: String,
    /// The topology's `name:`.
    pub name: String,
}

/// Why a flow fails in one version: the first line of its explanation, where in the file, and
/// the decisive step as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub line: String,
    /// The element of the file the explanation is about.
    pub origin: Option<Origin>,
    pub step: crate::explain::Cause,
}

/// A flow in one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEnd {
    pub address: Ipv4Addr,
    pub outcome: Outcome,
    /// For a failure: why (when the explanation finds the decisive step).
    pub cause: Option<Cause>,
}

/// Which way a flow changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// It failed and now gets a reply.
    Opened,
    /// It got a reply and now fails.
    Closed,
    /// It fails in both, differently.
    Changed,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Opened => "opened",
            Direction::Closed => "closed",
            Direction::Changed => "changed",
        }
    }
}

/// A flow whose outcome differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowChange {
    pub from: String,
    /// The destination: a node's name, or an address or DNS name as given.
    pub to: String,
    pub probe: ProbeSpec,
    pub old: FlowEnd,
    pub new: FlowEnd,
}

impl FlowChange {
    pub fn direction(&self) -> Direction {
        match (self.old.outcome, self.new.outcome) {
            (_, Outcome::Reply) => Direction::Opened,
            (Outcome::Reply, _) => Direction::Closed,
            _ => Direction::Changed,
        }
    }
}

/// Everything that differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub old: Side,
    pub new: Side,
    /// The probes of every source to every destination.
    pub probes: Vec<ProbeSpec>,
    /// Where they come from: `--probe`, or ping and what the files make relevant.
    pub probes_from: Vec<ProbeSource>,
    /// Sources and destinations both versions have.
    pub sources: usize,
    pub destinations: usize,
    /// Addresses DNAT rules match, probed from every source with the probes they translate.
    pub entrances: Vec<Entrance>,
    /// The expectations' targets beyond the destinations and the entrances.
    pub expected: Vec<ExpectedTarget>,
    /// Flows compared (cells probed in both versions).
    pub compared: usize,
    /// The flows whose outcome differs, opened first, then closed, then changed, each in
    /// matrix order.
    pub changes: Vec<FlowChange>,
    /// Nodes only the old version has.
    pub removed: Vec<String>,
    /// Nodes only the new version has.
    pub added: Vec<String>,
}

impl Diff {
    /// Whether anything differs: a flow, or a node that only one version has.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty() || !self.removed.is_empty() || !self.added.is_empty()
    }

    /// How many changes go `direction`.
    pub fn count(&self, direction: Direction) -> usize {
        self.changes
            .iter()
            .filter(|c| c.direction() == direction)
            .count()
    }
}

/// Cells compared together: a matrix over the same rows and columns in both versions.
struct Block {
    old: Layout,
    new: Layout,
    probes: ProbeList,
}

impl Block {
    /// `sources` (each version's rows) to `destinations` (each version's columns) with `probes`;
    /// `None` for no probe (the lists are built without duplicates).
    fn of(
        sources: [Vec<Source>; 2],
        destinations: [Vec<Destination>; 2],
        probes: Vec<ProbeSpec>,
    ) -> Option<Self> {
        let probes = ProbeList::new(probes).ok()?;
        let [old_sources, new_sources] = sources;
        let [old_destinations, new_destinations] = destinations;
        Some(Self {
            old: Layout {
                sources: old_sources,
                destinations: old_destinations,
            },
            new: Layout {
                sources: new_sources,
                destinations: new_destinations,
            },
            probes,
        })
    }
}

/// What a comparison probes, resolved on both versions.
struct Plan {
    /// Every source to every destination first, then the entrances, then the expectations'
    /// other targets.
    blocks: Vec<Block>,
    probes: Vec<ProbeSpec>,
    probes_from: Vec<ProbeSource>,
    entrances: Vec<Entrance>,
    expected: Vec<ExpectedTarget>,
}

/// An address given as such: probed from every source, its owner included.
fn address_column(label: String, address: Ipv4Addr) -> Destination {
    Destination {
        label,
        address,
        node: None,
    }
}

/// Where `written` (a node, an address or a DNS name) is probed in `net`, as `--to` reads it.
fn resolve_target(net: &Network, written: &str) -> Option<Ipv4Addr> {
    let to = Selection::Items(vec![written.to_owned()]);
    Layout::resolve(net, "", &Selection::All, &to)
        .ok()
        .and_then(|l| l.destinations.first().map(|d| d.address))
}

/// The expectations' flows of both versions that `covered` does not say are compared already,
/// by target (in file order): which of `sources` (by index) probe it, with which of `probes`
/// (the expectation's probe as `probes` spells it), and its address in each version. An
/// expectation from a node that is not a source, or to a target one version cannot resolve,
/// is left out.
fn expected_targets(
    versions: [&Network; 2],
    sources: &[Source],
    probes: &[ProbeSpec],
    covered: impl Fn(Ipv4Addr, Ipv4Addr, ProbeSpec) -> bool,
) -> Vec<(ExpectedTarget, Vec<usize>, [Ipv4Addr; 2])> {
    let [old, new] = versions;
    let mut out: Vec<(ExpectedTarget, Vec<usize>, [Ipv4Addr; 2])> = Vec::new();
    let mut unresolved: HashSet<&str> = HashSet::new();
    for net in versions {
        for e in &net.expectations {
            let from = &net.node(e.from).name;
            let Some(s) = sources.iter().position(|s| &s.name == from) else {
                continue;
            };
            let probe = spelled_in(probes, spec_of(&e.probe));
            let written = e.target.written.as_str();
            let at = match out.iter().position(|(t, ..)| t.to == written) {
                Some(at) => at,
                None if unresolved.contains(written) => continue,
                None => match (resolve_target(old, written), resolve_target(new, written)) {
                    (Some(a), Some(b)) => {
                        let target = ExpectedTarget {
                            to: written.to_owned(),
                            from: Vec::new(),
                            probes: Vec::new(),
                        };
                        out.push((target, Vec::new(), [a, b]));
                        out.len() - 1
                    }
                    _ => {
                        unresolved.insert(written);
                        continue;
                    }
                },
            };
            let (target, rows, [a, b]) = &mut out[at];
            if covered(*a, *b, probe) {
                continue;
            }
            if !rows.contains(&s) {
                rows.push(s);
                target.from.push(from.clone());
            }
            if !target.probes.contains(&probe) {
                target.probes.push(probe);
            }
        }
    }
    out.retain(|(t, ..)| !t.probes.is_empty());
    for (target, ..) in &mut out {
        target.probes.sort_by_key(|&p| Wire::of(p));
    }
    out
}

impl Plan {
    fn new(
        (old_label, old_net): (&str, &Network),
        (new_label, new_net): (&str, &Network),
        options: &Options,
    ) -> Result<Self, DiffError> {
        let old_layout = Layout::resolve(old_net, old_label, &options.from, &options.to)?;
        let new_layout = Layout::resolve(new_net, new_label, &options.from, &options.to)?;
        let (old_main, new_main) = old_layout.align(new_layout);
        let (probes, probes_from) = match &options.probes {
            ProbeChoice::Given(list) => (list.as_slice().to_vec(), vec![ProbeSource::Given]),
            ProbeChoice::Relevant => relevant_probes(old_net, new_net),
        };
        let mut plan = Self {
            blocks: Vec::new(),
            probes,
            probes_from,
            entrances: Vec::new(),
            expected: Vec::new(),
        };
        let extras = options.probes == ProbeChoice::Relevant && options.to == Selection::All;
        if extras {
            plan.add_extras(&old_main, &new_main, [old_net, new_net]);
        }
        let main = Block::of(
            [old_main.sources, new_main.sources],
            [old_main.destinations, new_main.destinations],
            plan.probes.clone(),
        );
        plan.blocks.splice(0..0, main);
        for block in &plan.blocks {
            matrix::check_budget(&block.old, &block.probes)?;
        }
        Ok(plan)
    }

    /// The entrances and the expectations' other targets, each a block of its own: from every
    /// source of `old_main`/`new_main`, with only the probes that are not compared there yet.
    fn add_extras(&mut self, old_main: &Layout, new_main: &Layout, versions: [&Network; 2]) {
        let sources = || [old_main.sources.clone(), new_main.sources.clone()];
        // Every source probes a destination with every probe already.
        let at_destination = |a: Ipv4Addr, b: Ipv4Addr| {
            old_main
                .destinations
                .iter()
                .zip(&new_main.destinations)
                .any(|(x, y)| x.address == a && y.address == b)
        };
        let mut entrances = dnat_entrances(versions, &self.probes);
        entrances.retain(|e| !at_destination(e.address, e.address));
        // One block per set of probes: a port forward's address only with its own ports.
        let mut groups: Vec<(Vec<ProbeSpec>, Vec<Destination>)> = Vec::new();
        for e in &entrances {
            let column = address_column(e.address.to_string(), e.address);
            match groups.iter_mut().find(|(p, _)| *p == e.probes) {
                Some((_, columns)) => columns.push(column),
                None => groups.push((e.probes.clone(), vec![column])),
            }
        }
        for (probes, columns) in groups {
            self.blocks
                .extend(Block::of(sources(), [columns.clone(), columns], probes));
        }
        let expected = expected_targets(versions, &old_main.sources, &self.probes, |a, b, p| {
            at_destination(a, b)
                || (a == b
                    && entrances
                        .iter()
                        .any(|e| e.address == a && e.probes.contains(&p)))
        });
        for (target, rows, [a, b]) in expected {
            let pick = |layout: &Layout| rows.iter().map(|&s| layout.sources[s].clone()).collect();
            let columns = [
                vec![address_column(target.to.clone(), a)],
                vec![address_column(target.to.clone(), b)],
            ];
            self.blocks.extend(Block::of(
                [pick(old_main), pick(new_main)],
                columns,
                target.probes.clone(),
            ));
            self.expected.push(target);
        }
        self.entrances = entrances;
    }
}

/// Why two versions cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Budget(#[from] BudgetError),
}

impl DiffError {
    /// How to make the comparison fit, when there is a way.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            DiffError::Select(_) => None,
            DiffError::Budget(_) => Some(
                "choose fewer sources or destinations with --from and --to, or the probes with --probe",
            ),
        }
    }
}

/// Compares `old` and `new` (labelled as the user named them) on the flows `options` selects.
pub fn diff(
    old: (&str, &Network),
    new: (&str, &Network),
    options: &Options,
    config: &SimConfig,
    progress: ProgressMode,
) -> Result<Diff, DiffError> {
    let ((old_label, old_net), (new_label, new_net)) = (old, new);
    let plan = Plan::new(old, new, options)?;
    let total: u64 = plan
        .blocks
        .iter()
        .map(|b| matrix::cells_to_run(&b.old, &b.probes, None))
        .sum();
    let mut bar = Progress::start(total.saturating_mul(2), progress);
    let outcomes: Vec<(Vec<Cell>, Vec<Cell>)> = plan
        .blocks
        .iter()
        .map(|b| {
            (
                matrix::outcomes(old_net, &b.old, &b.probes, config, &bar),
                matrix::outcomes(new_net, &b.new, &b.probes, config, &bar),
            )
        })
        .collect();
    bar.finish();
    let mut compared = 0;
    let mut changed = Vec::new();
    for (block, (before, after)) in plan.blocks.iter().zip(&outcomes) {
        for (index, (a, b)) in before.iter().zip(after).enumerate() {
            if let (Cell::Probed(a), Cell::Probed(b)) = (*a, *b) {
                compared += 1;
                if a != b {
                    changed.push((block, index, a, b));
                }
            }
        }
    }
    // Explaining takes a recorded run per failing side: in parallel too.
    let mut changes: Vec<FlowChange> = changed
        .into_par_iter()
        .map(|(block, index, a, b)| {
            let probes = block.probes.as_slice();
            let per_source = block.old.destinations.len() * probes.len();
            let (s, rest) = (index / per_source, index % per_source);
            let (d, p) = (rest / probes.len(), rest % probes.len());
            let end = |net: &Network, layout: &Layout, outcome: Outcome| {
                let (source, destination) = (&layout.sources[s], &layout.destinations[d]);
                let cause = (outcome != Outcome::Reply)
                    .then(|| cause(net, source.id, destination.address, probes[p], config))
                    .flatten();
                FlowEnd {
                    address: destination.address,
                    outcome,
                    cause,
                }
            };
            FlowChange {
                from: block.old.sources[s].name.clone(),
                to: block.old.destinations[d].label.clone(),
                probe: probes[p],
                old: end(old_net, &block.old, a),
                new: end(new_net, &block.new, b),
            }
        })
        .collect();
    // Stable: block and matrix order within each direction.
    changes.sort_by_key(FlowChange::direction);
    let (sources, destinations) = plan
        .blocks
        .first()
        .map_or((0, 0), |b| (b.old.sources.len(), b.old.destinations.len()));
    Ok(Diff {
        old: Side {
            label: old_label.to_owned(),
            name: old_net.name.clone(),
        },
        new: Side {
            label: new_label.to_owned(),
            name: new_net.name.clone(),
        },
        probes: plan.probes,
        probes_from: plan.probes_from,
        sources,
        destinations,
        entrances: plan.entrances,
        expected: plan.expected,
        compared,
        changes,
        removed: nodes_missing_from(old_net, new_net),
        added: nodes_missing_from(new_net, old_net),
    })
}

/// The names of the nodes of `net` that `other` has no node of that name for, in file order.
fn nodes_missing_from(net: &Network, other: &Network) -> Vec<String> {
    let present: HashSet<&str> = other.nodes.iter().map(|n| n.name.as_str()).collect();
    net.nodes
        .iter()
        .filter(|n| !present.contains(n.name.as_str()))
        .map(|n| n.name.clone())
        .collect()
}

/// Why the flow fails in `net`: it is simulated again with its hops recorded and explained.
fn cause(
    net: &Network,
    from: crate::model::NodeId,
    dst: Ipv4Addr,
    probe: ProbeSpec,
    config: &SimConfig,
) -> Option<Cause> {
    let config = SimConfig {
        record: true,
        ..config.clone()
    };
    let run = run_probe(net, from, dst, &probe.kind(), &config);
    let why = crate::explain::why(net, &run)?;
    Some(Cause {
        line: why.lines.first()?.clone(),
        origin: why.origin,
        step: why.cause,
    })
}

fn end_json(end: &FlowEnd) -> EndRecord<'_> {
    EndRecord {
        address: end.address,
        cause: end.cause.as_ref().map(|c| CauseRecord {
            line: &c.line,
            origin: c.origin.as_ref(),
            step: &c.step,
        }),
        outcome: end.outcome.name(),
    }
}

/// The probes as the command line spells them.
pub(crate) fn names(probes: &[ProbeSpec]) -> Vec<String> {
    probes.iter().map(ToString::to_string).collect()
}

impl Diff {
    /// Where the probes come from, in words: "given with --probe", or "the default: ping and
    /// the files' expectations, listeners and port forwards; --probe replaces it".
    pub(crate) fn probes_from_words(&self) -> String {
        if self.probes_from.contains(&ProbeSource::Given) {
            return "given with --probe".to_owned();
        }
        let files: Vec<&str> = self
            .probes_from
            .iter()
            .filter(|&&s| s != ProbeSource::Ping)
            .map(|s| s.name())
            .collect();
        let listed = match files.as_slice() {
            [] => {
                return "the default: the files have no expectations, listeners or port forwards; \
                        --probe replaces it"
                    .to_owned();
            }
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        format!("the default: ping and the files' {listed}; --probe replaces it")
    }

    /// The JSON twin of [`crate::render::diff::text`].
    pub fn json(&self) -> DiffRecord<'_> {
        DiffRecord {
            changed: self
                .changes
                .iter()
                .map(|c| ChangeRecord {
                    change: c.direction().name(),
                    from: &c.from,
                    new: end_json(&c.new),
                    old: end_json(&c.old),
                    probe: c.probe.to_string(),
                    to: &c.to,
                })
                .collect(),
            closed: self.count(Direction::Closed),
            compared: self.compared,
            destinations: self.destinations,
            entrances: self
                .entrances
                .iter()
                .map(|e| EntranceRecord {
                    address: e.address,
                    node: &e.node,
                    probes: names(&e.probes),
                })
                .collect(),
            expected: self
                .expected
                .iter()
                .map(|t| ExpectedRecord {
                    from: &t.from,
                    probes: names(&t.probes),
                    to: &t.to,
                })
                .collect(),
            new: SideRecord {
                file: &self.new.label,
                topology: &self.new.name,
            },
            nodes_added: &self.added,
            nodes_removed: &self.removed,
            old: SideRecord {
                file: &self.old.label,
                topology: &self.old.name,
            },
            opened: self.count(Direction::Opened),
            probes: names(&self.probes),
            probes_from: self.probes_from.iter().map(|s| s.name()).collect(),
            sources: self.sources,
        }
    }
}

/// `diff --format json`. Fields of each record in alphabetical order: the order of this output
/// since its first version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRecord<'a> {
    /// Flows whose outcome differs.
    pub changed: Vec<ChangeRecord<'a>>,
    pub closed: usize,
    /// Flows compared.
    pub compared: usize,
    pub destinations: usize,
    /// Addresses where port forwards let flows in, probed too.
    pub entrances: Vec<EntranceRecord<'a>>,
    /// Destinations the files' expectations probe.
    pub expected: Vec<ExpectedRecord<'a>>,
    pub new: SideRecord<'a>,
    pub nodes_added: &'a [String],
    pub nodes_removed: &'a [String],
    pub old: SideRecord<'a>,
    pub opened: usize,
    pub probes: Vec<String>,
    /// Where the probes come from.
    pub probes_from: Vec<&'static str>,
    pub sources: usize,
}

/// One version: the file (or `REV:PATH`) and the topology's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideRecord<'a> {
    pub file: &'a str,
    pub topology: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntranceRecord<'a> {
    pub address: Ipv4Addr,
    pub node: &'a str,
    pub probes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedRecord<'a> {
    pub from: &'a [String],
    pub probes: Vec<String>,
    pub to: &'a str,
}

/// A flow whose outcome differs, with both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord<'a> {
    /// `opened`, `closed` or `changed`.
    pub change: &'static str,
    pub from: &'a str,
    pub new: EndRecord<'a>,
    pub old: EndRecord<'a>,
    pub probe: String,
    pub to: &'a str,
}

/// A flow's outcome in one version, and its cause when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndRecord<'a> {
    pub address: Ipv4Addr,
    pub cause: Option<CauseRecord<'a>>,
    pub outcome: &'static str,
}

/// Why a flow failed: the decisive line of the explanation, where the file says it
/// (`{file, line, column}`), and the decisive step as data (`{"kind": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CauseRecord<'a> {
    pub line: &'a str,
    pub origin: Option<&'a Origin>,
    pub step: &'a crate::explain::Cause,
}
