//! A probe's result as the CLI prints it: the tool's own output, a note when the simulation
//! stopped early, the `why:` block with the verified fixes, and the JSON record of all of it.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::Palette;
use super::probe::{
    ToolOutput, curl_output, ping_output, ssh_output, tcp_output, udp_output, why_block,
};
use crate::explain::Cause;
use crate::model::{Network, Origin, Probe};
use crate::run::ProbeResult;
use crate::sim::{Observed, Stopped};

/// What the real tool prints for this probe, and its exit status.
pub fn tool_output(net: &Network, result: &ProbeResult) -> ToolOutput {
    let (run, written) = (&result.run, result.request.written.as_str());
    match &result.request.probe {
        Probe::Ping => ping_output(run, written),
        Probe::Ssh { port } => ssh_output(net, run, written, *port),
        Probe::Curl { port, .. } => curl_output(net, run, written, *port, result.http.as_ref()),
        Probe::Tcp { port } => tcp_output(run, written, *port),
        Probe::Udp { port } => udp_output(run, written, *port),
    }
}

/// The tool's output, its exit status when it failed, a warning when the simulation stopped
/// early, and the `why:` block with the fixes.
pub fn probe_text(net: &Network, result: &ProbeResult, palette: Palette) -> String {
    let output = tool_output(net, result);
    let mut out = output.text;
    if output.exit_code != 0 {
        let dim = palette.dim();
        out.push_str(&format!(
            "{dim}({} exits with status {}){dim:#}\n",
            result.request.probe.tool(),
            output.exit_code
        ));
    }
    if let Some(stopped) = result.run.stopped {
        let warn = palette.warning();
        let what = match stopped {
            Stopped::Horizon => "simulated time reached the run's horizon",
            Stopped::EventBudget => {
                "the run spent its event budget (a forwarding loop or a broadcast storm?)"
            }
        };
        out.push_str(&format!(
            "{warn}reachlab: the simulation stopped early: {what} before the probe finished; \
             packets after that point are missing from the output above{warn:#}\n"
        ));
    }
    if let Some(why) = &result.why {
        out.push_str(&why_block(
            why,
            &result.fixes,
            &result.dropped_fixes,
            palette,
        ));
    }
    out
}

/// The JSON record of a probe.
pub fn probe_record(net: &Network, result: &ProbeResult) -> ProbeRecord {
    let output = tool_output(net, result);
    let (rtt_ms, ttl) = match &result.run.observed {
        Observed::Ping { replies, .. } => (
            replies.first().map(|r| r.rtt.as_secs_f64() * 1e3),
            replies.first().map(|r| r.ttl),
        ),
        Observed::Connected { rtt, ttl } => (Some(rtt.as_secs_f64() * 1e3), Some(*ttl)),
        Observed::UdpAnswer { rtt, .. } => (Some(rtt.as_secs_f64() * 1e3), None),
        _ => (None, None),
    };
    ProbeRecord {
        address: result.request.dst,
        dropped_fixes: result
            .dropped_fixes
            .iter()
            .map(|d| DroppedFixRecord {
                reason: d.reason.clone(),
                summary: d.summary.clone(),
            })
            .collect(),
        events: result.run.events,
        fixes: result
            .fixes
            .iter()
            .map(|f| FixRecord {
                breaks: f.breaks.clone(),
                keeps: f.keeps,
                no_patch: f.no_patch.clone(),
                patch: f.patch.clone(),
                summary: f.summary.clone(),
                yaml: f.yaml.clone(),
            })
            .collect(),
        from: net.node(result.request.from).name.clone(),
        http_status: result.http.as_ref().map(|a| a.status),
        outcome: result.run.outcome.name(),
        output: output.text,
        probe: result.request.probe.tool(),
        rtt_ms,
        source: result.run.src,
        stopped_early: result.run.stopped.map(|s| format!("{s:?}")),
        target: result.request.written.clone(),
        tool_exit_code: output.exit_code,
        ttl,
        why: result.why.as_ref().map(|w| WhyRecord {
            cause: w.cause.clone(),
            lines: w.lines.clone(),
            origin: w.origin.clone(),
        }),
    }
}

/// One probe in JSON (`--format json` of `ping`, `ssh`, `curl`, `tcp`, `udp`; `trace`'s
/// `probe`). Fields in alphabetical order: the order of this output since its first version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRecord {
    /// The address probed.
    pub address: Ipv4Addr,
    /// Changes the search verified on the network that the file did not take, each with the
    /// reason; only when there are some (older outputs stay as they were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_fixes: Vec<DroppedFixRecord>,
    /// Events the engine ran.
    pub events: u64,
    /// Verified fixes, when the probe failed.
    pub fixes: Vec<FixRecord>,
    /// The node the probe ran on.
    pub from: String,
    pub http_status: Option<u16>,
    pub outcome: &'static str,
    /// What the real tool prints.
    pub output: String,
    /// `ping`, `ssh`, `curl`, `tcp` or `udp`.
    pub probe: &'static str,
    pub rtt_ms: Option<f64>,
    /// The source address the sender chose (none without a route).
    pub source: Option<Ipv4Addr>,
    /// Why the engine stopped before the probe was decided (a budget ran out).
    pub stopped_early: Option<String>,
    /// The target as written.
    pub target: String,
    /// The real tool's exit status.
    pub tool_exit_code: i32,
    pub ttl: Option<u8>,
    pub why: Option<WhyRecord>,
}

/// Why a probe failed: the explanation's lines and the element of the file it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhyRecord {
    /// The decisive step as data (`{"kind": "filtered", "node": …}`).
    pub cause: Cause,
    /// The same in words, one sentence per line.
    pub lines: Vec<String>,
    pub origin: Option<Origin>,
}

/// A verified fix in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixRecord {
    /// Checks of the file that held before and no longer do with the fix
    /// (`label (file:line:col)`).
    pub breaks: Vec<String>,
    /// Other checks of the file that held before and still hold with it.
    pub keeps: usize,
    /// Why no patch could be written for this file (a layout the editor does not rewrite):
    /// the fix was then verified on the loaded network only, not on a patched file.
    pub no_patch: Option<String>,
    /// The unified diff that makes the change in the file (checked by simulating again).
    pub patch: Option<String>,
    /// One line per change.
    pub summary: Vec<String>,
    /// The YAML to add, per node.
    pub yaml: String,
}

/// A change the search verified on the network that the file did not take.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedFixRecord {
    /// Why the file did not take it.
    pub reason: String,
    /// One line per change.
    pub summary: Vec<String>,
}
