//! The reachability matrix: every chosen source node against every chosen destination, one cell
//! per probe, simulated in parallel; deterministic shards of it and their merge; its renderings
//! (terminal grid, CSV, JSON, Markdown), streamed to a writer. A matrix has at most
//! [`MAX_CELLS`] cells ([`check_budget`] says so before anything is simulated or allocated).
//!
//! A cell is only an [`Outcome`]: the outcome [`crate::sim::run_probe`] gives on a fresh network,
//! exactly as `reachlab ping`/`ssh`/`curl`/`tcp`/`udp` do (one echo request, one connection
//! attempt), but with no hops recorded and nothing explained; where the compiled fast path
//! ([`crate::sim::FastPath`]) provably agrees with the engine it answers instead, so a 1,000-host
//! matrix costs little more than the million walks. A destination is a node's primary address (the one `reachlab ping FILE A B`
//! uses for `B`), or an address or DNS name given with `--to`. A node is not probed from itself;
//! an address given as such is probed from every source.
//!
//! ```
//! use reachlab::matrix::{self, Layout, ProbeList, Progress, Selection, TopologyRef};
//! let text = reachlab::generate::hosts(3, 1);
//! let loaded = reachlab::topology::load_str("fleet.yaml", &text).expect("valid");
//! let net = &loaded.network;
//! let layout = Layout::resolve(net, "fleet.yaml", &Selection::All, &Selection::All).expect("nodes");
//! let m = matrix::run(
//!     net,
//!     TopologyRef::of(&loaded),
//!     &layout,
//!     &ProbeList::default(),
//!     &reachlab::sim::SimConfig::default(),
//!     &Progress::hidden(),
//! );
//! assert_eq!(m.sources.len(), 4); // the router r and h0, h1, h2
//! assert!(m.probed().all(|(_, _, _, outcome)| outcome == reachlab::model::Outcome::Reply));
//! ```

mod probes;
mod progress;
mod select;
mod shard;

use std::fmt;
use std::net::Ipv4Addr;

use rayon::prelude::*;

use crate::model::{Network, Outcome};
use crate::sim::{FastPath, SimConfig};
use crate::topology::Loaded;

pub use probes::{
    OUTCOMES, ProbeList, ProbeSpec, ProbeSpecError, cause_letter, cause_words, outcome_named,
};
pub use progress::{Progress, ProgressMode};
pub use select::{Destination, Layout, SelectError, Selection, Source};
pub use shard::{
    MAX_SLICE_BYTES, MAX_SLICES, MergeError, Shard, ShardError, Slice, merge, read_slice,
};

/// The most cells (sources × destinations × probes) of one matrix, computed or merged.
pub const MAX_CELLS: usize = 100_000_000;

/// A matrix larger than [`MAX_CELLS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the matrix has {sources} sources × {destinations} destinations × {probes} probes, more than {MAX_CELLS} cells"
)]
pub struct BudgetError {
    pub sources: usize,
    pub destinations: usize,
    pub probes: usize,
}

impl BudgetError {
    /// How to make the matrix fit.
    pub fn hint(&self) -> &'static str {
        "choose fewer sources or destinations with --from and --to, or fewer probes"
    }
}

/// The number of cells of `layout` with `probes`, when it is within [`MAX_CELLS`]; checked
/// before [`run`], [`run_shard`] or [`outcomes`] allocate them.
pub fn check_budget(layout: &Layout, probes: &ProbeList) -> Result<usize, BudgetError> {
    let probes = probes.as_slice();
    layout
        .sources
        .len()
        .checked_mul(layout.destinations.len())
        .and_then(|n| n.checked_mul(probes.len()))
        .filter(|&n| n <= MAX_CELLS)
        .ok_or(BudgetError {
            sources: layout.sources.len(),
            destinations: layout.destinations.len(),
            probes: probes.len(),
        })
}

/// Which topology a matrix is of: enough to refuse merging slices of different ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyRef {
    /// The file as it was named on the command line.
    pub file: String,
    /// The topology's `name:` (or the file's stem).
    pub name: String,
    /// FNV-1a of the file's text, in hex: two runs on different texts never merge.
    pub fingerprint: String,
}

impl TopologyRef {
    /// The reference of a loaded file.
    pub fn of(loaded: &Loaded) -> Self {
        let source = &loaded.report.source;
        Self {
            file: source.name().to_owned(),
            name: loaded.network.name.clone(),
            fingerprint: format!("{:016x}", fnv1a(source.text().as_bytes())),
        }
    }
}

/// 64-bit FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One cell of a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cell {
    /// The destination is the source node itself: not probed.
    Itself,
    /// The probe ran and ended this way.
    Probed(Outcome),
}

/// A destination as a finished matrix shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// A node's name, or the address or DNS name as given.
    pub label: String,
    pub address: Ipv4Addr,
}

/// `label address`, or the address alone when it is the label.
impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.label == self.address.to_string() {
            write!(f, "{}", self.address)
        } else {
            write!(f, "{} {}", self.label, self.address)
        }
    }
}

/// A whole matrix: every (source, destination, probe) cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub topology: TopologyRef,
    /// The seed of the simulation's random numbers.
    pub seed: u64,
    /// Row names: the nodes the probes start from.
    pub sources: Vec<String>,
    pub destinations: Vec<Column>,
    pub probes: Vec<ProbeSpec>,
    /// Row-major: the cell of source `s`, destination `d`, probe `p` is at
    /// `(s * destinations + d) * probes + p` (see [`Matrix::cell`]).
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// The cell of source `s`, destination `d` and probe `p` (indices into the vectors).
    pub fn cell(&self, s: usize, d: usize, p: usize) -> Cell {
        self.cells[(s * self.destinations.len() + d) * self.probes.len() + p]
    }

    /// Every probed cell: (source, destination, probe, outcome), row by row.
    pub fn probed(&self) -> impl Iterator<Item = (&str, &Column, ProbeSpec, Outcome)> + '_ {
        let per_source = self.destinations.len() * self.probes.len();
        self.cells
            .iter()
            .enumerate()
            .filter_map(move |(i, cell)| match cell {
                Cell::Itself => None,
                Cell::Probed(outcome) => {
                    let (s, rest) = (i / per_source, i % per_source);
                    let (d, p) = (rest / self.probes.len(), rest % self.probes.len());
                    Some((
                        self.sources[s].as_str(),
                        &self.destinations[d],
                        self.probes[p],
                        *outcome,
                    ))
                }
            })
    }

    /// For each probe: how many cells got a reply, and how many were probed.
    pub fn replies(&self) -> Vec<(ProbeSpec, usize, usize)> {
        self.probes
            .iter()
            .enumerate()
            .map(|(p, &probe)| {
                let cells = (0..self.sources.len())
                    .flat_map(|s| (0..self.destinations.len()).map(move |d| (s, d)))
                    .map(|(s, d)| self.cell(s, d, p));
                let (mut reply, mut probed) = (0, 0);
                for cell in cells {
                    if let Cell::Probed(outcome) = cell {
                        probed += 1;
                        reply += usize::from(outcome == Outcome::Reply);
                    }
                }
                (probe, reply, probed)
            })
            .collect()
    }
}

/// Which cells of a layout to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    Shard(Shard),
}

/// Number of cells of `layout` with `probes`.
fn cell_count(layout: &Layout, probes: &[ProbeSpec]) -> usize {
    layout.sources.len() * layout.destinations.len() * probes.len()
}

/// Simulates the cells of `part`, in index order, in parallel.
fn compute(
    net: &Network,
    layout: &Layout,
    probes: &[ProbeSpec],
    part: Part,
    config: &SimConfig,
    progress: &Progress,
) -> Vec<Cell> {
    let config = SimConfig {
        record: false,
        ..config.clone()
    };
    let kinds: Vec<_> = probes.iter().map(|p| p.kind()).collect();
    // Compiled once; each cell takes the fast path where it gives the engine's answer, and
    // runs the engine otherwise (see `crate::sim::FastPath`).
    let fast = FastPath::new(net);
    let per_source = layout.destinations.len() * probes.len();
    let total = cell_count(layout, probes);
    let cell = |index: usize| {
        let (s, rest) = (index / per_source, index % per_source);
        let (d, p) = (rest / probes.len(), rest % probes.len());
        let source = &layout.sources[s];
        let destination = &layout.destinations[d];
        let cell = if destination.node == Some(source.id) {
            Cell::Itself
        } else {
            Cell::Probed(fast.outcome(source.id, destination.address, &kinds[p], &config))
        };
        progress.advance();
        cell
    };
    match part {
        Part::Whole => (0..total).into_par_iter().map(cell).collect(),
        Part::Shard(shard) => (0..shard.len(total))
            .into_par_iter()
            .map(|k| cell(shard.index_of(k)))
            .collect(),
    }
}

/// Every cell of `layout` on `net`, for each of `probes`.
pub fn run(
    net: &Network,
    topology: TopologyRef,
    layout: &Layout,
    probes: &ProbeList,
    config: &SimConfig,
    progress: &Progress,
) -> Matrix {
    let probes = probes.as_slice();
    let cells = compute(net, layout, probes, Part::Whole, config, progress);
    Matrix {
        topology,
        seed: config.seed,
        sources: layout.sources.iter().map(|s| s.name.clone()).collect(),
        destinations: columns(layout),
        probes: probes.to_vec(),
        cells,
    }
}

/// The cells of one shard of the matrix [`run`] computes.
pub fn run_shard(
    net: &Network,
    topology: TopologyRef,
    layout: &Layout,
    probes: &ProbeList,
    shard: Shard,
    config: &SimConfig,
    progress: &Progress,
) -> Slice {
    let probes = probes.as_slice();
    let cells = compute(net, layout, probes, Part::Shard(shard), config, progress);
    Slice {
        topology,
        seed: config.seed,
        sources: layout.sources.iter().map(|s| s.name.clone()).collect(),
        destinations: columns(layout),
        probes: probes.to_vec(),
        shard,
        cells,
    }
}

/// The number of cells [`run`] (or [`run_shard`]) simulates: for sizing a [`Progress`].
pub fn cells_to_run(layout: &Layout, probes: &ProbeList, shard: Option<Shard>) -> u64 {
    let total = cell_count(layout, probes.as_slice());
    let n = shard.map_or(total, |s| s.len(total));
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The outcomes of every cell of `layout`, computed for a comparison (see [`crate::diff`]).
pub fn outcomes(
    net: &Network,
    layout: &Layout,
    probes: &ProbeList,
    config: &SimConfig,
    progress: &Progress,
) -> Vec<Cell> {
    compute(
        net,
        layout,
        probes.as_slice(),
        Part::Whole,
        config,
        progress,
    )
}

fn columns(layout: &Layout) -> Vec<Column> {
    layout
        .destinations
        .iter()
        .map(|d| Column {
            label: d.label.clone(),
            address: d.address,
        })
        .collect()
}

/// `1 source`, `3 sources`.
pub(crate) fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeId;

    fn layout(sources: usize, destinations: usize) -> Layout {
        Layout {
            sources: (0..sources)
                .map(|i| Source {
                    name: format!("s{i}"),
                    id: NodeId::from_index(i),
                })
                .collect(),
            destinations: (0..destinations)
                .map(|i| Destination {
                    label: format!("d{i}"),
                    address: Ipv4Addr::new(192, 0, 2, 1),
                    node: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_matrix_over_the_cell_budget_is_refused() {
        let probes = ProbeList::default();
        assert_eq!(check_budget(&layout(10, 10), &probes), Ok(100));
        let err = check_budget(&layout(10_001, 10_000), &probes);
        assert!(err.is_err_and(|e| e.to_string().contains("more than 100000000 cells")));
    }
}
