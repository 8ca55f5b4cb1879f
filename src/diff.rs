//! Differential reachability: the flows (source, destination, probe) whose outcome differs
//! between two versions of a topology, with the cause on each side, and the nodes that only one
//! version has. "Adding this security-group rule opens ssh to three instances."
//!
//! Both versions are computed as [matrices](crate::matrix) over the same rows and columns:
//! nodes are matched by name, and a node destination is probed at its primary address in each
//! version (an address given with `--to` is probed as it is in both). Only the cells that
//! changed are simulated again, recording their hops, to say why they fail.
//!
//! A version is a file, or `REV:PATH`: `PATH` as git revision `REV` has it (`git show REV:PATH`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::matrix::{
    self, Cell, Layout, ProbeList, ProbeSpec, Progress, ProgressMode, Selection, counted,
};
use crate::model::{Network, Outcome};
use crate::render::Palette;
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

/// What to compare: the same selections and probes as `reachlab matrix`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub from: Selection,
    pub to: Selection,
    pub probes: ProbeList,
}

/// One version, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The file or `REV:PATH` as given.
    pub label: String,
    /// The topology's `name:`.
    pub name: String,
}

/// Why a flow fails in one version: the first line of its explanation, and where in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub line: String,
    /// `file:line:column` of the element the explanation is about.
    pub origin: Option<String>,
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
    pub probes: Vec<ProbeSpec>,
    /// Sources and destinations both versions have.
    pub sources: usize,
    pub destinations: usize,
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

/// Compares `old` and `new` (labelled as the user named them) on the flows `options` selects.
pub fn diff(
    old: (&str, &Network),
    new: (&str, &Network),
    options: &Options,
    config: &SimConfig,
    progress: ProgressMode,
) -> Result<Diff, matrix::SelectError> {
    let ((old_label, old_net), (new_label, new_net)) = (old, new);
    let old_layout = Layout::resolve(old_net, old_label, &options.from, &options.to)?;
    let new_layout = Layout::resolve(new_net, new_label, &options.from, &options.to)?;
    let (old_layout, new_layout) = old_layout.align(new_layout);
    let probes = options.probes.as_slice();
    let total = matrix::cells_to_run(&old_layout, &options.probes, None);
    let mut bar = Progress::start(total.saturating_mul(2), progress);
    let before = matrix::outcomes(old_net, &old_layout, &options.probes, config, &bar);
    let after = matrix::outcomes(new_net, &new_layout, &options.probes, config, &bar);
    bar.finish();
    let per_source = old_layout.destinations.len() * probes.len();
    let mut compared = 0;
    let mut changed = Vec::new();
    for (index, (a, b)) in before.iter().zip(&after).enumerate() {
        if let (Cell::Probed(a), Cell::Probed(b)) = (*a, *b) {
            compared += 1;
            if a != b {
                changed.push((index, a, b));
            }
        }
    }
    // Explaining takes a recorded run per failing side: in parallel too.
    let mut changes: Vec<FlowChange> = changed
        .into_par_iter()
        .map(|(index, a, b)| {
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
                from: old_layout.sources[s].name.clone(),
                to: old_layout.destinations[d].label.clone(),
                probe: probes[p],
                old: end(old_net, &old_layout, a),
                new: end(new_net, &new_layout, b),
            }
        })
        .collect();
    // Stable: matrix order within each direction.
    changes.sort_by_key(FlowChange::direction);
    Ok(Diff {
        old: Side {
            label: old_label.to_owned(),
            name: old_net.name.clone(),
        },
        new: Side {
            label: new_label.to_owned(),
            name: new_net.name.clone(),
        },
        probes: probes.to_vec(),
        sources: old_layout.sources.len(),
        destinations: old_layout.destinations.len(),
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
        origin: why.origin.map(|o| o.to_string()),
    })
}

fn end_json(end: &FlowEnd) -> Value {
    json!({
        "address": end.address.to_string(),
        "outcome": end.outcome.name(),
        "cause": end.cause.as_ref().map(|c| json!({"line": c.line, "origin": c.origin})),
    })
}

impl Diff {
    /// The JSON twin of [`Diff::text`].
    pub fn json(&self) -> Value {
        let side = |s: &Side| json!({"file": s.label, "topology": s.name});
        json!({
            "old": side(&self.old),
            "new": side(&self.new),
            "probes": self.probes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "sources": self.sources,
            "destinations": self.destinations,
            "compared": self.compared,
            "changed": self.changes.iter().map(|c| json!({
                "from": c.from,
                "to": c.to,
                "probe": c.probe.to_string(),
                "change": c.direction().name(),
                "old": end_json(&c.old),
                "new": end_json(&c.new),
            })).collect::<Vec<_>>(),
            "opened": self.count(Direction::Opened),
            "closed": self.count(Direction::Closed),
            "nodes_removed": self.removed,
            "nodes_added": self.added,
        })
    }

    /// The report: each changed flow with the cause on each side, grouped by direction; the
    /// nodes only one version has; a summary line.
    pub fn text(&self, palette: Palette) -> String {
        let mut out = String::new();
        let (bold, dim) = (palette.bold(), palette.dim());
        let probes: Vec<String> = self.probes.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "{bold}{}{bold:#} → {bold}{}{bold:#}: {} × {} × {} ({}), {} compared",
            self.old.label,
            self.new.label,
            counted(self.sources, "source"),
            counted(self.destinations, "destination"),
            counted(probes.len(), "probe"),
            probes.join(", "),
            counted(self.compared, "flow"),
        );
        let groups = [
            (Direction::Opened, "opened (now reply)", '+', palette.ok()),
            (
                Direction::Closed,
                "closed (no reply any more)",
                '-',
                palette.error(),
            ),
            (
                Direction::Changed,
                "failing differently",
                '~',
                palette.warning(),
            ),
        ];
        for (direction, title, sign, style) in groups {
            let flows: Vec<&FlowChange> = self
                .changes
                .iter()
                .filter(|c| c.direction() == direction)
                .collect();
            if flows.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{bold}{title}{bold:#}: {}", flows.len());
            for c in flows {
                let address = if c.old.address == c.new.address {
                    c.old.address.to_string()
                } else {
                    format!("{} → {}", c.old.address, c.new.address)
                };
                let to = if c.to == c.old.address.to_string() {
                    address
                } else {
                    format!("{} ({address})", c.to)
                };
                let _ = writeln!(
                    out,
                    "  {style}{sign}{style:#} {} → {to}  {}  {} → {style}{}{style:#}",
                    c.from, c.probe, c.old.outcome, c.new.outcome
                );
                for (when, end) in [("before", &c.old), ("after", &c.new)] {
                    if let Some(cause) = &end.cause {
                        let _ = writeln!(out, "      {when}: {}", cause.line);
                        if let Some(origin) = &cause.origin {
                            let _ = writeln!(out, "      {dim}--> {origin}{dim:#}");
                        }
                    }
                }
            }
        }
        for (label, nodes) in [
            (&self.old.label, &self.removed),
            (&self.new.label, &self.added),
        ] {
            if !nodes.is_empty() {
                let _ = writeln!(
                    out,
                    "\n{bold}nodes only in {label}{bold:#}: {}",
                    nodes.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{}",
            if self.changes.is_empty() {
                format!("no flow changed ({} compared)", self.compared)
            } else {
                format!(
                    "{} of {} changed: {} opened, {} closed, {} failing differently",
                    self.changes.len(),
                    counted(self.compared, "flow"),
                    self.count(Direction::Opened),
                    self.count(Direction::Closed),
                    self.count(Direction::Changed)
                )
            }
        );
        out
    }
}
