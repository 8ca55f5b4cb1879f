//! Verified fixes: changes to the topology that make a failed probe succeed, found by running
//! the probe again on changed copies of the network and checked against every other
//! expectation and invariant of the file (the search is in `search`). This layer sits above
//! the probes it re-runs (`crate::run`) and the checks it guards (`crate::invariants`).
//!
//! - [`diagnose`]: a probe, explained, with up to two verified fixes;
//! - [`check`]: every `expect:` entry, with fixes where an entry is not met;
//! - [`attach_patches`]: each fix as a unified diff of the file, kept only when the patched
//!   file loads and the probe gets a reply on it.
//!
//! A fix is verified twice: by the search, on a copy of the loaded network with the change
//! made (the probe gets a reply, the file's other checks are judged), and, once its edits are
//! written into the file's text, on the patched file loaded again. When the edits cannot be
//! written there are two cases. If the file has no place for the change (the node or item the
//! edit names is not in the file: a platform section made it), the network the search changed
//! is not one the file can describe, so the search's verification does not carry over and the
//! fix is not offered, as a patch that does not make the probe reply is not. If the place is
//! there but written in a layout the editor does not rewrite (a YAML flow collection spread
//! over several lines, JSON with a value the editor cannot write), the change is the same one
//! a file in another layout gets a verified patch for: the fix is offered, verified on the
//! network, with the reason in [`crate::explain::Fix::no_patch`], and printed as such (its YAML
//! to merge by hand, and "no patch could be written for this file"), never as a checked patch.
//! A change not offered is kept in [`ProbeResult::dropped_fixes`] with the reason: when no fix
//! is left, the output says what the search found and why the file did not take it, rather
//! than "none found".

mod search;

pub use search::find_fixes;

use crate::explain::DroppedFix;
use crate::model::{Network, Outcome, Probe, Service};
use crate::run::{CheckRow, ProbeRequest, ProbeResult, run_request};
use crate::sim::{ProbeKind, SimConfig, run_probe};
use crate::topology::{SourceFile, edit};

/// How many fixes a failure is offered.
const FIXES: usize = 2;

/// Simulates a probe, explains a failure, and searches for verified fixes.
pub fn diagnose(net: &Network, request: ProbeRequest, config: &SimConfig) -> ProbeResult {
    let mut result = run_request(net, request, config);
    search_fixes(net, &mut result, config);
    result
}

/// Fills in the fixes of a failed probe: of the probe itself, or, when the probe got its
/// answer and that answer was a service's 502, of the service's own probe to its backend.
pub fn search_fixes(net: &Network, result: &mut ProbeResult, config: &SimConfig) {
    if result.why.as_ref().is_some_and(|w| !w.cause.fixable()) {
        result.fixes = Vec::new();
        return;
    }
    result.fixes = if result.run.outcome != Outcome::Reply {
        let wanted = wanted_service(&result.request.probe);
        find_fixes(net, &result.run, wanted.as_ref(), config, FIXES)
    } else if let Some(failure) = result
        .http
        .as_ref()
        .and_then(|a| a.backend_failure.as_deref())
    {
        find_fixes(net, failure, None, config, FIXES)
    } else {
        Vec::new()
    };
}

/// Runs every `expect:` entry of `net`; an entry that is not met gets its verified fixes (only
/// such an entry: a fix for a failure the file expects would break that very expectation).
pub fn check(net: &Network, config: &SimConfig) -> Vec<CheckRow> {
    let mut rows = crate::run::check(net, config);
    for row in rows.iter_mut().filter(|r| !r.ok) {
        search_fixes(net, &mut row.result, config);
    }
    rows
}

/// The service a fix should start for this probe.
fn wanted_service(probe: &Probe) -> Option<Service> {
    match probe {
        Probe::Ssh { .. } => Some(Service::Ssh {
            banner: "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.4".into(),
        }),
        Probe::Curl { .. } => Some(Service::Http {
            status: 200,
            body: "ok".into(),
            content_type: "text/plain".into(),
            requires: Vec::new(),
            routes: Vec::new(),
        }),
        _ => None,
    }
}

/// Turns each fix of `result` into a patch of the file it was loaded from (`source`), and
/// keeps only the fixes whose patch applies, loads, and makes this very probe get a reply on
/// the file that results: what the user pastes is what was checked. Fixes that change nothing
/// in the file ("connect to the forwarded port instead") are kept as they are; a fix whose
/// edits fall in a layout the editor cannot rewrite is kept without a patch, with the reason
/// in `no_patch` (see the module's documentation).
pub fn attach_patches(
    result: &mut ProbeResult,
    net: &Network,
    source: &SourceFile,
    config: &SimConfig,
) {
    let from = net.node(result.request.from).name.clone();
    let request = &result.request;
    let dropped = &mut result.dropped_fixes;
    result.fixes.retain_mut(|fix| {
        if fix.edits.is_empty() {
            return true;
        }
        let mut drop = |reason: String| {
            dropped.push(DroppedFix {
                summary: fix.summary.clone(),
                reason,
            });
            false
        };
        let patched = match edit::apply(source.text(), &fix.edits) {
            Ok(patched) => patched,
            Err(e) if e.file_cannot_hold() => return drop(e.to_string()),
            Err(e) => {
                fix.patch = None;
                fix.no_patch = Some(e.to_string());
                return true;
            }
        };
        let loaded = match crate::topology::load_str(source.name(), &patched) {
            Ok(loaded) => loaded,
            Err(_) => return drop("the patched file does not load".to_owned()),
        };
        let Some(node) = loaded.network.node_by_name(&from) else {
            return drop(format!("the patched file has no node `{from}`"));
        };
        let kind = ProbeKind::of(&request.probe, request.count, request.wait).with_ttl(request.ttl);
        let again = run_probe(&loaded.network, node.id, request.dst, &kind, config);
        if again.outcome != Outcome::Reply {
            return drop(format!(
                "on the patched file the probe ends in `{}`, not a reply",
                again.outcome
            ));
        }
        fix.patch = Some(edit::unified_diff(source.name(), source.text(), &patched));
        true
    });
}
