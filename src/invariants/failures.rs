//! `reachlab check --failures K`: every invariant and expectation checked again with each set of
//! K elements taken down, one copy of the network per case (as Batfish forks a snapshot per
//! failure), and which cases break which checks.
//!
//! The elements are the segments that have interfaces and the nodes. A segment that is down
//! carries no frame (a dead switch: the interfaces on it keep their addresses and routes, as
//! Linux keeps routes over a link without carrier, and ARP through it gets no answer). Each
//! interface that is down is unplugged onto a segment of its own, so the network stays a
//! consistent model (an interface is on the segment that lists it) for the engine and its fast
//! path alike. A node
//! that is down neither receives nor sends; flows from it and to it are not checked (a node
//! that is down is not expected to answer), and neither are the expectations from it or to it.
//! A flow is to the node its probe is meant for ([`super::endpoint`]): the owner of the
//! address, or the node a floating IP or a port forward of the owner leads to (so a router that
//! is down breaks the floating IPs it holds). Expectations are judged for resilience ([`Judgement::Resilient`]): a
//! `reply` must still get a reply (TTL and RTT may change with a longer path), and a failure
//! must still fail, in any way.

use rayon::prelude::*;
use serde::Serialize;

use super::{Judgement, Status, StatusRecord, broken, status_json, statuses};
use crate::model::{IfaceId, Network, NodeId, Origin, Segment, SegmentId};
use crate::sim::SimConfig;

/// Something that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Element {
    Segment(SegmentId),
    Node(NodeId),
}

impl Element {
    /// `segment `uplink``, `node `gw``.
    pub fn describe(self, net: &Network) -> String {
        match self {
            Element::Segment(s) => format!("segment `{}`", net.segment(s).name),
            Element::Node(n) => format!("node `{}`", net.node(n).name),
        }
    }

    pub fn origin(self, net: &Network) -> Origin {
        match self {
            Element::Segment(s) => net.segment(s).origin.clone(),
            Element::Node(n) => net.node(n).origin.clone(),
        }
    }
}

/// The elements that are down together in one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub Vec<Element>);

impl Failure {
    /// `segment `uplink` and node `gw` down`.
    pub fn describe(&self, net: &Network) -> String {
        let names: Vec<String> = self.0.iter().map(|e| e.describe(net)).collect();
        format!("{} down", names.join(" and "))
    }

    /// The nodes that are down.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Element::Node(n) => Some(*n),
                Element::Segment(_) => None,
            })
            .collect()
    }
}

/// A request for more cases than reachlab runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailuresError {
    #[error(
        "--failures {k} over {elements} segments and nodes is {cases} cases; at most {MAX_CASES} are run"
    )]
    TooMany {
        k: usize,
        elements: usize,
        cases: u128,
    },
}

/// The most cases one run simulates.
pub const MAX_CASES: u128 = 100_000;

/// Every element that can fail: segments with interfaces (file order), then nodes.
pub fn elements(net: &Network) -> Vec<Element> {
    net.segments
        .iter()
        .filter(|s| !s.interfaces.is_empty())
        .map(|s| Element::Segment(s.id))
        .chain(net.nodes.iter().map(|n| Element::Node(n.id)))
        .collect()
}

/// Every set of `k` elements, in lexicographic order of [`elements`].
pub fn cases(net: &Network, k: usize) -> Result<Vec<Failure>, FailuresError> {
    let all = elements(net);
    let n = all.len();
    if k == 0 || k > n {
        return Ok(Vec::new());
    }
    let count = binomial(n, k);
    if count > MAX_CASES {
        return Err(FailuresError::TooMany {
            k,
            elements: n,
            cases: count,
        });
    }
    let mut out = Vec::new();
    let mut pick: Vec<usize> = (0..k).collect();
    loop {
        out.push(Failure(pick.iter().map(|&i| all[i]).collect()));
        // The next combination: bump the rightmost index that can move, reset the ones after.
        let Some(i) = (0..k).rev().find(|&i| pick[i] < n - k + i) else {
            break;
        };
        pick[i] += 1;
        for j in i + 1..k {
            pick[j] = pick[j - 1] + 1;
        }
    }
    Ok(out)
}

fn binomial(n: usize, k: usize) -> u128 {
    let k = k.min(n - k);
    (0..k).fold(1u128, |acc, i| {
        acc.saturating_mul((n - i) as u128) / (i as u128 + 1)
    })
}

/// `net` with the elements of `failure` down: every interface of a segment that is down, and
/// of a node that is down, unplugged onto a segment of its own (with the name and properties of
/// the one it left, so that explanations name it), where nobody answers it.
pub fn apply(net: &Network, failure: &Failure) -> Network {
    let mut out = net.clone();
    for element in &failure.0 {
        let ifaces: Vec<IfaceId> = match *element {
            Element::Segment(s) => net.segment(s).interfaces.clone(),
            Element::Node(n) => net.node(n).interfaces.clone(),
        };
        for iface in ifaces {
            unplug(&mut out, iface);
        }
    }
    out
}

/// Moves `iface` to a new segment that holds only it.
fn unplug(net: &mut Network, iface: IfaceId) {
    let old = net.interface(iface).segment;
    if net.segment(old).interfaces == [iface] {
        return;
    }
    net.segments[old.index()].interfaces.retain(|&i| i != iface);
    // A bridge unplugged keeps being a bridge, of no ports; its old segment has none.
    let bridge = net.segments[old.index()].bridge.take_if(|b| *b == iface);
    let id = SegmentId::from_index(net.segments.len());
    let alone = Segment {
        id,
        interfaces: vec![iface],
        bridge,
        ..net.segment(old).clone()
    };
    net.segments.push(alone);
    net.interfaces[iface.index()].segment = id;
}

/// One case and the checks it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub failure: Failure,
    pub broken: Vec<Status>,
}

/// Every case of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    pub k: usize,
    /// The checks without failures, judged for resilience.
    pub baseline: Vec<Status>,
    pub results: Vec<CaseResult>,
}

impl FailureReport {
    /// Whether some case breaks a check.
    pub fn breaks_something(&self) -> bool {
        self.results.iter().any(|r| !r.broken.is_empty())
    }
}

/// Checks every invariant and expectation of `net` under every case of `k` elements down.
pub fn failures(
    net: &Network,
    k: usize,
    config: &SimConfig,
) -> Result<FailureReport, FailuresError> {
    let cases = cases(net, k)?;
    let baseline = statuses(net, config, &[], Judgement::Resilient);
    let results = cases
        .into_par_iter()
        .map(|failure| {
            let variant = apply(net, &failure);
            let after = statuses(&variant, config, &failure.nodes(), Judgement::Resilient);
            let broken = broken(&baseline, &after).into_iter().cloned().collect();
            CaseResult { failure, broken }
        })
        .collect();
    Ok(FailureReport {
        k,
        baseline,
        results,
    })
}

impl FailureReport {
    /// The JSON record of the report: one entry per case.
    pub fn json(&self, net: &Network, file: &str) -> FailuresRecord {
        let cases = self.results.iter().map(|r| CaseRecord {
            down: r
                .failure
                .0
                .iter()
                .map(|e| DownRecord {
                    element: e.describe(net),
                    origin: e.origin(net),
                })
                .collect(),
            breaks: r.broken.iter().map(status_json).collect(),
        });
        FailuresRecord {
            file: file.to_owned(),
            k: self.k,
            cases: cases.collect(),
        }
    }
}

/// The failures checked for one file, in JSON (`check --failures K --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailuresRecord {
    pub file: String,
    /// Elements taken down at once.
    pub k: usize,
    pub cases: Vec<CaseRecord>,
}

/// One failure case: what went down, and the checks that broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseRecord {
    pub down: Vec<DownRecord>,
    pub breaks: Vec<StatusRecord>,
}

/// A segment or node taken down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownRecord {
    /// `segment lan`, `node r1`.
    pub element: String,
    pub origin: Origin,
}
