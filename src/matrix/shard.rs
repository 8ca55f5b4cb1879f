//! Shards of a matrix (`--shard I/N`): a deterministic partition of its cells, each computed on
//! its own (on another core, machine or CI job) and written as a JSON slice; and the merge of
//! the N slices back into the whole matrix, refusing slices that do not belong together.
//!
//! Cell `c` (row-major index, see [`super::Matrix::cells`]) belongs to shard `c mod N + 1`:
//! interleaving spreads the slow cells (timeouts, long paths) of one row over every shard.
//!
//! A slice is checked against the budgets before anything is allocated for it: at most
//! [`MAX_SLICES`] slices, [`super::MAX_CELLS`] cells in the whole matrix, and
//! [`MAX_SLICE_BYTES`] bytes of JSON per slice file (a regular file).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Cell, Column, Matrix, ProbeSpec, TopologyRef, outcome_named};

/// Slice `index` of `count` (both from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// A shard that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a shard: write I/N with 1 ≤ I ≤ N, e.g. 2/8")]
pub struct ShardError(String);

impl Shard {
    /// Slice `index` of `count`, when `1 ≤ index ≤ count`.
    pub fn new(index: usize, count: usize) -> Option<Self> {
        (1..=count)
            .contains(&index)
            .then_some(Self { index, count })
    }

    /// Which slice (from 1).
    pub fn index(self) -> usize {
        self.index
    }

    /// Of how many.
    pub fn count(self) -> usize {
        self.count
    }

    /// How many of `total` cells this shard holds.
    pub fn len(self, total: usize) -> usize {
        let first = self.index - 1;
        if total <= first {
            0
        } else {
            (total - first).div_ceil(self.count)
        }
    }

    /// Whether the shard holds no cell of `total`.
    pub fn is_empty(self, total: usize) -> bool {
        self.len(total) == 0
    }

    /// The matrix index of the shard's `k`-th cell.
    pub fn index_of(self, k: usize) -> usize {
        k * self.count + (self.index - 1)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let bad = || ShardError(written.to_owned());
        let (i, n) = written.split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(i, n).ok_or_else(bad)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The cells of one shard, with everything needed to check that slices belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub topology: TopologyRef,
    pub seed: u64,
    pub sources: Vec<String>,
    pub destinations: Vec<Column>,
    pub probes: Vec<ProbeSpec>,
    pub shard: Shard,
    /// The shard's cells, in matrix order.
    pub cells: Vec<Cell>,
}

/// The most slices a matrix may be cut into for `matrix merge`.
pub const MAX_SLICES: usize = 65_536;

/// The largest slice file `matrix merge` reads.
pub const MAX_SLICE_BYTES: u64 = 1 << 30;

/// Version of the slice format.
const SLICE_VERSION: u32 = 1;

/// A slice as written to JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SliceFile {
    /// The format's version; its name says what the file is.
    reachlab_matrix_slice: u32,
    file: String,
    topology: String,
    fingerprint: String,
    seed: u64,
    sources: Vec<String>,
    destinations: Vec<ColumnFile>,
    probes: Vec<String>,
    shard: ShardFile,
    /// Outcome names; `null` where the destination is the source itself.
    cells: Vec<Option<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnFile {
    label: String,
    address: Ipv4Addr,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardFile {
    index: usize,
    count: usize,
}

impl Slice {
    /// The slice as one line of JSON.
    pub fn to_json(&self) -> String {
        let file = SliceFile {
            reachlab_matrix_slice: SLICE_VERSION,
            file: self.topology.file.clone(),
            topology: self.topology.name.clone(),
            fingerprint: self.topology.fingerprint.clone(),
            seed: self.seed,
            sources: self.sources.clone(),
            destinations: self
                .destinations
                .iter()
                .map(|c| ColumnFile {
                    label: c.label.clone(),
                    address: c.address,
                })
                .collect(),
            probes: self.probes.iter().map(ToString::to_string).collect(),
            shard: ShardFile {
                index: self.shard.index,
                count: self.shard.count,
            },
            cells: self
                .cells
                .iter()
                .map(|c| match c {
                    Cell::Itself => None,
                    Cell::Probed(o) => Some(o.name().to_owned()),
                })
                .collect(),
        };
        // Strings, numbers and lists only: serialising cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Reads a slice written by [`Slice::to_json`]; `path` names it in errors.
    pub fn from_json(path: &str, text: &str) -> Result<Self, MergeError> {
        let not = |reason: String| MergeError::NotASlice {
            path: path.to_owned(),
            reason,
        };
        let file: SliceFile = serde_json::from_str(text).map_err(|e| not(e.to_string()))?;
        if file.reachlab_matrix_slice != SLICE_VERSION {
            return Err(not(format!(
                "it is of format version {}; this reachlab reads version {SLICE_VERSION}",
                file.reachlab_matrix_slice
            )));
        }
        let shard = Shard::new(file.shard.index, file.shard.count).ok_or_else(|| {
            not(format!(
                "its shard {}/{} is not one",
                file.shard.index, file.shard.count
            ))
        })?;
        if shard.count > MAX_SLICES {
            return Err(not(format!(
                "it claims {} slices; merge takes at most {MAX_SLICES} (cut the matrix into fewer shards)",
                shard.count
            )));
        }
        let total = cell_total(&file.sources, &file.destinations, &file.probes)
            .filter(|&total| total <= super::MAX_CELLS)
            .ok_or_else(|| {
                not(format!(
                    "its matrix of {} sources, {} destinations and {} probes has more than {} cells",
                    file.sources.len(),
                    file.destinations.len(),
                    file.probes.len(),
                    super::MAX_CELLS
                ))
            })?;
        if file.cells.len() > total {
            return Err(not(format!(
                "it holds {} cells, more than its whole matrix of {total}",
                file.cells.len()
            )));
        }
        let probes = file
            .probes
            .iter()
            .map(|p| p.parse::<ProbeSpec>().map_err(|e| not(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let cells = file
            .cells
            .iter()
            .map(|c| match c {
                None => Ok(Cell::Itself),
                Some(name) => outcome_named(name)
                    .map(Cell::Probed)
                    .ok_or_else(|| not(format!("`{name}` is not an outcome"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            topology: TopologyRef {
                file: file.file,
                name: file.topology,
                fingerprint: file.fingerprint,
            },
            seed: file.seed,
            sources: file.sources,
            destinations: file
                .destinations
                .into_iter()
                .map(|c| Column {
                    label: c.label,
                    address: c.address,
                })
                .collect(),
            probes,
            shard,
            cells,
        })
    }

    /// The number of cells of the whole matrix (at most [`super::MAX_CELLS`] for a slice that
    /// was read; saturating for one built in code).
    fn total(&self) -> usize {
        cell_total(&self.sources, &self.destinations, &self.probes).unwrap_or(usize::MAX)
    }
}

/// sources × destinations × probes, when it does not overflow.
fn cell_total<S, D, P>(sources: &[S], destinations: &[D], probes: &[P]) -> Option<usize> {
    sources
        .len()
        .checked_mul(destinations.len())?
        .checked_mul(probes.len())
}

/// Why slices could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no slices to merge")]
    NoSlices,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: crate::topology::ReadError,
    },
    #[error("{path} is not a matrix slice of reachlab: {reason}")]
    NotASlice { path: String, reason: String },
    #[error("{path} does not belong with {first_path}: {what} differ ({first} there, {this} here)")]
    Mismatch {
        path: String,
        first_path: String,
        what: &'static str,
        first: String,
        this: String,
    },
    #[error("{path}: slice {shard} has {found} cells where it should have {expected}")]
    WrongSize {
        path: String,
        shard: Shard,
        found: usize,
        expected: usize,
    },
    #[error("slice {shard} is given twice: {first_path} and {path}")]
    Duplicate {
        shard: Shard,
        first_path: String,
        path: String,
    },
    #[error("{} of {count} missing: merge needs every slice", missing_words(.missing))]
    Missing { missing: Vec<usize>, count: usize },
}

impl MergeError {
    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            MergeError::NoSlices | MergeError::Missing { .. } => {
                "give every slice `reachlab matrix FILE --shard I/N` printed, I from 1 to N"
            }
            MergeError::Read { source, .. } => source.hint(),
            MergeError::NotASlice { .. } => {
                "give the JSON printed by `reachlab matrix FILE --shard I/N`, unchanged"
            }
            MergeError::Mismatch { .. } | MergeError::WrongSize { .. } => {
                "compute every slice from the same file, seed, probes and --shard count"
            }
            MergeError::Duplicate { .. } => "give each slice once",
        }
    }
}

fn missing_words(missing: &[usize]) -> String {
    let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] => format!("slice {one} is"),
        _ => format!("slices {} are", list.join(", ")),
    }
}

/// Reads one slice file.
pub fn read_slice(path: &Path) -> Result<Slice, MergeError> {
    let name = path.display().to_string();
    let read = |source| MergeError::Read {
        path: name.clone(),
        source,
    };
    let bytes = crate::topology::read_regular(path, MAX_SLICE_BYTES).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        read(crate::topology::ReadError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })
    })?;
    Slice::from_json(&name, &text)
}

/// The first place two lists differ, in words for an error.
fn first_difference<T: PartialEq + fmt::Display>(a: &[T], b: &[T], noun: &str) -> (String, String) {
    if a.len() != b.len() {
        return (format!("{} {noun}", a.len()), format!("{} {noun}", b.len()));
    }
    let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
    let show = |list: &[T]| {
        list.get(at)
            .map_or_else(String::new, |x| format!("`{x}` at {noun} #{}", at + 1))
    };
    (show(a), show(b))
}

/// Joins the N slices of one matrix (`path`, slice), in any order, into the whole matrix.
pub fn merge(slices: Vec<(String, Slice)>) -> Result<Matrix, MergeError> {
    let Some((first_path, first)) = slices.first() else {
        return Err(MergeError::NoSlices);
    };
    let count = first.shard.count;
    let total = first.total();
    // Slices read from files are within the budgets; slices built in code are checked here.
    for (path, slice) in &slices {
        if slice.shard.count > MAX_SLICES || slice.total() > super::MAX_CELLS {
            return Err(MergeError::NotASlice {
                path: path.clone(),
                reason: format!(
                    "it exceeds the budgets of {MAX_SLICES} slices and {} cells",
                    super::MAX_CELLS
                ),
            });
        }
    }
    let mut holder: Vec<Option<&str>> = vec![None; count];
    for (path, slice) in &slices {
        let mismatch = |what, first: String, this: String| MergeError::Mismatch {
            path: path.clone(),
            first_path: first_path.clone(),
            what,
            first,
            this,
        };
        let checks = [
            (
                "files",
                first.topology.file.clone(),
                slice.topology.file.clone(),
            ),
            (
                "versions of the file (text fingerprints)",
                first.topology.fingerprint.clone(),
                slice.topology.fingerprint.clone(),
            ),
            ("seeds", first.seed.to_string(), slice.seed.to_string()),
            (
                "numbers of slices",
                format!("{count} slices"),
                format!("{} slices", slice.shard.count),
            ),
        ];
        for (what, a, b) in checks {
            if a != b {
                return Err(mismatch(what, a, b));
            }
        }
        if first.probes != slice.probes {
            let (a, b) = first_difference(&first.probes, &slice.probes, "probe");
            return Err(mismatch("probes", a, b));
        }
        if first.sources != slice.sources {
            let (a, b) = first_difference(&first.sources, &slice.sources, "source");
            return Err(mismatch("sources", a, b));
        }
        if first.destinations != slice.destinations {
            let (a, b) = first_difference(&first.destinations, &slice.destinations, "destination");
            return Err(mismatch("destinations", a, b));
        }
        let expected = slice.shard.len(total);
        if slice.cells.len() != expected {
            return Err(MergeError::WrongSize {
                path: path.clone(),
                shard: slice.shard,
                found: slice.cells.len(),
                expected,
            });
        }
        let seen = &mut holder[slice.shard.index - 1];
        if let Some(first_path) = seen {
            return Err(MergeError::Duplicate {
                shard: slice.shard,
                first_path: (*first_path).to_owned(),
                path: path.clone(),
            });
        }
        *seen = Some(path);
    }
    let missing: Vec<usize> = (1..=count).filter(|i| holder[i - 1].is_none()).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    let mut cells = vec![Cell::Itself; total];
    for (_, slice) in &slices {
        for (k, cell) in slice.cells.iter().enumerate() {
            cells[slice.shard.index_of(k)] = *cell;
        }
    }
    Ok(Matrix {
        topology: first.topology.clone(),
        seed: first.seed,
        sources: first.sources.clone(),
        destinations: first.destinations.clone(),
        probes: first.probes.clone(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::{MAX_SLICES, MergeError, Shard, Slice};

    /// A slice of a `sources` × `destinations` × 1 matrix cut into `count` shards.
    fn slice_json(count: u64, sources: usize, destinations: usize) -> String {
        let sources: Vec<String> = (0..sources).map(|i| format!("s{i}")).collect();
        let destinations: Vec<serde_json::Value> = (0..destinations)
            .map(|i| serde_json::json!({ "label": format!("d{i}"), "address": "192.0.2.2" }))
            .collect();
        serde_json::json!({
            "reachlab_matrix_slice": 1, "file": "t.yaml", "topology": "t", "fingerprint": "0",
            "seed": 1, "sources": sources, "destinations": destinations,
            "probes": ["ping"], "shard": { "index": 1, "count": count }, "cells": [],
        })
        .to_string()
    }

    #[test]
    fn slices_of_too_many_shards_are_refused() {
        for count in [
            MAX_SLICES as u64 + 1,
            1_000_000_000,
            1_000_000_000_000_000_000,
        ] {
            let err = Slice::from_json("s.json", &slice_json(count, 1, 1));
            assert!(
                matches!(err, Err(MergeError::NotASlice { .. })),
                "{count}: {err:?}"
            );
        }
    }

    #[test]
    fn slices_of_too_large_a_matrix_are_refused() {
        let err = Slice::from_json("s.json", &slice_json(1, 10_001, 10_000));
        assert!(
            matches!(&err, Err(MergeError::NotASlice { reason, .. }) if reason.contains("cells")),
            "{err:?}"
        );
    }

    #[test]
    fn shards_partition_every_total() {
        for total in [0usize, 1, 5, 12, 13, 100] {
            for count in 1..=7 {
                let mut seen = vec![0u8; total];
                for index in 1..=count {
                    let shard = Shard::new(index, count).expect("valid shard");
                    for k in 0..shard.len(total) {
                        seen[shard.index_of(k)] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&n| n == 1),
                    "total {total}, {count} shards"
                );
            }
        }
    }

    #[test]
    fn shards_read_as_i_of_n() {
        assert_eq!("2/8".parse::<Shard>().ok(), Shard::new(2, 8));
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
