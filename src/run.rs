//! One probe end to end, as the CLI and `check` use it: resolve the target, simulate, explain a
//! failure, look for verified fixes, and render the tool's output.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::explain::{Fix, Why, find_fixes, why};
use crate::model::{Expectation, Network, NodeId, Origin, Outcome, Port, Probe, Proto, Service};
use crate::render::{self, Palette, ToolOutput};
use crate::sim::{Observed, ProbeKind, ProbeRun, SimConfig, Stopped, run_probe};
use crate::topology::{SourceFile, edit};

impl Outcome {
    /// The name used in topology files (`reply`, `host-unreachable`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Reply => "reply",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::NoRoute => "no-route",
            Outcome::NetUnreachable => "net-unreachable",
            Outcome::HostUnreachable => "host-unreachable",
            Outcome::Filtered => "filtered",
            Outcome::TtlExceeded => "ttl-exceeded",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a probe could not even start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("`{0}` is not a node of this topology")]
    UnknownNode(String, Option<String>),
    #[error("`{0}` is not an address, a node or a DNS name of this topology")]
    UnknownTarget(String, Option<String>),
    #[error("{0}")]
    BadUrl(String),
}

impl ProbeError {
    /// A did-you-mean or a list of what exists.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ProbeError::UnknownNode(_, h) | ProbeError::UnknownTarget(_, h) => h.as_deref(),
            ProbeError::BadUrl(_) => None,
        }
    }
}

/// A probe as the user asked for it.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub from: NodeId,
    /// The target as typed (for the tool's wording).
    pub written: String,
    pub dst: Ipv4Addr,
    pub probe: Probe,
    /// For ping: how many echo requests.
    pub count: u16,
    /// For ping: how long to wait after the last request.
    pub wait: Option<std::time::Duration>,
}

/// Looks up the source node by name.
pub fn node_named(net: &Network, name: &str) -> Result<NodeId, ProbeError> {
    net.node_by_name(name).map(|n| n.id).ok_or_else(|| {
        let names: Vec<&str> = net.nodes.iter().map(|n| n.name.as_str()).collect();
        let hint = crate::topology::closest_name(name, &names)
            .map(|c| format!("did you mean `{c}`?"))
            .or_else(|| Some(format!("nodes: {}", names.join(", "))));
        ProbeError::UnknownNode(name.to_owned(), hint)
    })
}

/// Resolves what the user typed as a target.
pub fn target_address(net: &Network, written: &str) -> Result<Ipv4Addr, ProbeError> {
    net.resolve(written).ok_or_else(|| {
        let names: Vec<&str> = net
            .nodes
            .iter()
            .flat_map(|n| std::iter::once(n.name.as_str()).chain(n.dns.iter().map(String::as_str)))
            .collect();
        let hint =
            crate::topology::closest_name(written, &names).map(|c| format!("did you mean `{c}`?"));
        ProbeError::UnknownTarget(written.to_owned(), hint)
    })
}

/// The engine probe that imitates a tool.
pub fn probe_kind(probe: &Probe, count: u16, wait: Option<std::time::Duration>) -> ProbeKind {
    match probe {
        Probe::Ping => match (ProbeKind::ping(count.max(1)), wait) {
            (
                ProbeKind::Ping {
                    count, interval, ..
                },
                Some(wait),
            ) => ProbeKind::Ping {
                count,
                interval,
                wait,
            },
            (kind, _) => kind,
        },
        Probe::Ssh { port } | Probe::Curl { port, .. } | Probe::Tcp { port } => {
            ProbeKind::tcp(*port)
        }
        Probe::Udp { port } => ProbeKind::udp(*port),
    }
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
        }),
        _ => None,
    }
}

/// Everything known about one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub request: ProbeRequest,
    pub run: ProbeRun,
    pub output: ToolOutput,
    pub why: Option<Why>,
    pub fixes: Vec<Fix>,
    /// For curl: what the HTTP service answered.
    pub http: Option<HttpAnswer>,
}

/// Simulates a probe, renders the tool's output, and explains a failure with verified fixes.
pub fn run_request(net: &Network, request: ProbeRequest, config: &SimConfig) -> ProbeResult {
    run_request_with(net, request, config, true)
}

/// [`run_request`], searching for verified fixes only when `fixes` (the search simulates the
/// network again for every candidate; tools that check many variants of a network skip it).
pub fn run_request_with(
    net: &Network,
    request: ProbeRequest,
    config: &SimConfig,
    fixes: bool,
) -> ProbeResult {
    let kind = probe_kind(&request.probe, request.count, request.wait);
    let run = run_probe(net, request.from, request.dst, &kind, config);
    let http = match &request.probe {
        Probe::Curl { .. } if run.outcome == Outcome::Reply => http_answer(net, &run, config),
        _ => None,
    };
    let output = match &request.probe {
        Probe::Ping => render::ping_output(&run, &request.written),
        Probe::Ssh { port } => render::ssh_output(net, &run, &request.written, *port),
        Probe::Curl { port, .. } => {
            render::curl_output(net, &run, &request.written, *port, http.as_ref())
        }
        Probe::Tcp { port } => render::tcp_output(&run, &request.written, *port),
        Probe::Udp { port } => render::udp_output(&run, &request.written, *port),
    };
    let mut why = why(net, &run);
    let search = fixes;
    let mut fixes = match &why {
        Some(_) if search => find_fixes(
            net,
            &run,
            wanted_service(&request.probe).as_ref(),
            config,
            2,
        ),
        _ => Vec::new(),
    };
    // The connection worked but the service could not do its job: explain the backend.
    if why.is_none()
        && let Some(HttpAnswer {
            backend_failure: Some(failure),
            ..
        }) = &http
    {
        let (node, _, _, _) = crate::explain::served(net, &run).unwrap_or((
            request.from,
            request.dst,
            Port::HTTP,
            &Service::Plain,
        ));
        let mut lines = vec![format!(
            "the service on `{}` answered 502: it could not reach its backend {}:{} ({})",
            net.node(node).name,
            failure.dst,
            failure.kind_port(),
            failure.outcome
        )];
        let inner = crate::explain::why(net, failure);
        let origin = inner.as_ref().and_then(|w| w.origin.clone());
        lines.extend(
            inner
                .into_iter()
                .flat_map(|w| w.lines)
                .map(|l| format!("  {l}")),
        );
        why = Some(Why { lines, origin });
        if search {
            fixes = find_fixes(net, failure, None, config, 2);
        }
    }
    ProbeResult {
        request,
        run,
        output,
        why,
        fixes,
        http,
    }
}

/// What an HTTP service answered.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
    /// The backend the service could not reach, and what happened when it tried.
    pub backend_failure: Option<Box<ProbeRun>>,
}

/// The answer of the HTTP service the probe reached: its configured answer once every backend
/// it `requires` answers a TCP connection from it, `502 Bad Gateway` otherwise.
fn http_answer(net: &Network, run: &ProbeRun, config: &SimConfig) -> Option<HttpAnswer> {
    let (node, _, _, service) = crate::explain::served(net, run)?;
    let Service::Http {
        status,
        body,
        requires,
        ..
    } = service
    else {
        return None;
    };
    for &(addr, port) in requires {
        let backend = run_probe(net, node, addr, &ProbeKind::tcp(port), config);
        if backend.outcome != Outcome::Reply {
            let body = format!(
                "Bad Gateway: cannot reach backend {addr}:{port} ({})\n",
                backend.outcome
            );
            return Some(HttpAnswer {
                status: 502,
                body,
                backend_failure: Some(Box::new(backend)),
            });
        }
    }
    Some(HttpAnswer {
        status: *status,
        body: body.clone(),
        backend_failure: None,
    })
}

trait KindPort {
    fn kind_port(&self) -> String;
}

impl KindPort for ProbeRun {
    fn kind_port(&self) -> String {
        match self.kind {
            ProbeKind::Tcp { port, .. } | ProbeKind::Udp { port, .. } => port.to_string(),
            ProbeKind::Ping { .. } => "icmp".into(),
        }
    }
}

impl ProbeResult {
    /// The tool's output followed by the `why:` block when it failed.
    pub fn text(&self, palette: Palette) -> String {
        let mut out = self.output.text.clone();
        if self.output.exit_code != 0 {
            let dim = palette.dim();
            out.push_str(&format!(
                "{dim}({} exits with status {}){dim:#}\n",
                self.request.probe.tool(),
                self.output.exit_code
            ));
        }
        if let Some(stopped) = self.run.stopped {
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
        if let Some(why) = &self.why {
            out.push_str(&render::why_block(why, &self.fixes, palette));
        }
        out
    }

    /// Turns each fix into a patch of the file it was loaded from (`source`), and keeps only
    /// the fixes whose patch applies, loads, and makes this very probe get a reply on the file
    /// that results: what the user pastes is what was checked. Fixes that change nothing in
    /// the file ("connect to the forwarded port instead") are kept as they are.
    pub fn attach_patches(&mut self, net: &Network, source: &SourceFile, config: &SimConfig) {
        let from = net.node(self.request.from).name.clone();
        let request = &self.request;
        self.fixes.retain_mut(|fix| {
            if fix.edits.is_empty() {
                return true;
            }
            let Ok(patched) = edit::apply(source.text(), &fix.edits) else {
                return false;
            };
            let Ok(loaded) = crate::topology::load_str(source.name(), &patched) else {
                return false;
            };
            let Some(node) = loaded.network.node_by_name(&from) else {
                return false;
            };
            let kind = probe_kind(&request.probe, request.count, request.wait);
            let again = run_probe(&loaded.network, node.id, request.dst, &kind, config);
            if again.outcome != Outcome::Reply {
                return false;
            }
            fix.patch = Some(edit::unified_diff(source.name(), source.text(), &patched));
            true
        });
    }

    /// The JSON twin.
    pub fn json(&self, net: &Network) -> ProbeRecord {
        let (rtt_ms, ttl) = match &self.run.observed {
            Observed::Ping { replies, .. } => (
                replies.first().map(|r| r.rtt.as_secs_f64() * 1e3),
                replies.first().map(|r| r.ttl),
            ),
            Observed::Connected { rtt, ttl } => (Some(rtt.as_secs_f64() * 1e3), Some(*ttl)),
            Observed::UdpAnswer { rtt, .. } => (Some(rtt.as_secs_f64() * 1e3), None),
            _ => (None, None),
        };
        ProbeRecord {
            address: self.request.dst,
            events: self.run.events,
            fixes: self
                .fixes
                .iter()
                .map(|f| FixRecord {
                    breaks: f.breaks.clone(),
                    keeps: f.keeps,
                    patch: f.patch.clone(),
                    summary: f.summary.clone(),
                    yaml: f.yaml.clone(),
                })
                .collect(),
            from: net.node(self.request.from).name.clone(),
            http_status: self.http.as_ref().map(|a| a.status),
            outcome: self.run.outcome.name(),
            output: self.output.text.clone(),
            probe: self.request.probe.tool(),
            rtt_ms,
            source: self.run.src,
            stopped_early: self.run.stopped.map(|s| format!("{s:?}")),
            target: self.request.written.clone(),
            tool_exit_code: self.output.exit_code,
            ttl,
            why: self.why.as_ref().map(|w| WhyRecord {
                lines: w.lines.clone(),
                origin: w.origin.clone(),
            }),
        }
    }
}

/// One probe in JSON (`--format json` of `ping`, `ssh`, `curl`, `tcp`, `udp`; `trace`'s
/// `probe`). Fields in alphabetical order: the order of this output since its first version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRecord {
    /// The address probed.
    pub address: Ipv4Addr,
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
    /// The unified diff that makes the change in the file (checked by simulating again).
    pub patch: Option<String>,
    /// One line per change.
    pub summary: Vec<String>,
    /// The YAML to add, per node.
    pub yaml: String,
}

/// One row of `reachlab check`.
#[derive(Debug, Clone)]
pub struct CheckRow {
    /// `pc1 ping pc2`.
    pub probe: String,
    pub expected: Outcome,
    pub predicted: Outcome,
    /// TTL and RTT where relevant, and what did not match.
    pub detail: String,
    pub ok: bool,
    pub origin: crate::model::Origin,
    pub result: ProbeResult,
}

/// Runs every `expect:` entry of `net`.
pub fn check(net: &Network, config: &SimConfig) -> Vec<CheckRow> {
    net.expectations
        .iter()
        .map(|e| check_expectation(net, e, config, true))
        .collect()
}

/// Runs one `expect:` entry; with `fixes: false` a failure is explained without the search for
/// verified fixes (see [`run_request_with`]).
pub fn check_expectation(
    net: &Network,
    e: &Expectation,
    config: &SimConfig,
    fixes: bool,
) -> CheckRow {
    let request = ProbeRequest {
        from: e.from,
        written: e.target.written.clone(),
        dst: e.target.addr,
        probe: e.probe.clone(),
        // `max_rtt` is a budget for the steady state: the second echo, caches warm, is measured.
        count: if e.max_rtt.is_some() { 2 } else { 1 },
        wait: None,
    };
    // Fixes are searched only where the file's expectation is not met: a fix for a failure the
    // file expects would break that very expectation.
    let mut result = run_request_with(net, request.clone(), config, false);
    let predicted = result.run.outcome;
    let mut ok = predicted == e.outcome;
    let mut detail = Vec::new();
    let (rtt, ttl) = match &result.run.observed {
        Observed::Ping { replies, .. } => (
            replies.last().map(|r| r.rtt),
            replies.first().map(|r| r.ttl),
        ),
        Observed::Connected { rtt, ttl } => (Some(*rtt), Some(*ttl)),
        Observed::UdpAnswer { rtt, .. } => (Some(*rtt), None),
        _ => (None, None),
    };
    if let Some(ttl) = ttl {
        detail.push(format!("ttl={ttl}"));
        if let Some(want) = e.ttl
            && want != ttl
        {
            ok = false;
            detail.push(format!("expected ttl={want}"));
        }
    }
    if let Some(rtt) = rtt {
        detail.push(format!("rtt={:.3} ms", rtt.as_secs_f64() * 1e3));
        if let Some(max) = e.max_rtt
            && rtt > max
        {
            ok = false;
            detail.push(format!("over max_rtt {:.3} ms", max.as_secs_f64() * 1e3));
        }
    }
    if let Some(answer) = &result.http {
        detail.push(format!("status={}", answer.status));
    }
    if let Some(want) = e.http_status
        && result.http.as_ref().is_none_or(|a| a.status != want)
    {
        ok = false;
        detail.push(format!("expected status={want}"));
    }
    if let Some(want) = &e.body
        && result
            .http
            .as_ref()
            .is_none_or(|a| !a.body.contains(want.as_str()))
    {
        ok = false;
        detail.push(format!("body lacks {want:?}"));
    }
    if fixes && !ok {
        result = run_request_with(net, request, config, true);
    }
    let port = match &e.probe {
        Probe::Ping => String::new(),
        Probe::Ssh { port }
        | Probe::Curl { port, .. }
        | Probe::Tcp { port }
        | Probe::Udp { port } => format!(":{port}"),
    };
    CheckRow {
        probe: format!(
            "{} {} {}{port}",
            net.node(e.from).name,
            e.probe.tool(),
            e.target.written
        ),
        expected: e.outcome,
        predicted,
        detail: detail.join(" "),
        ok,
        origin: e.origin.clone(),
        result,
    }
}

/// The port and protocol a probe uses, for messages.
pub fn probe_port(probe: &Probe) -> Option<(Proto, Port)> {
    match probe {
        Probe::Ping => None,
        Probe::Ssh { port } | Probe::Curl { port, .. } | Probe::Tcp { port } => {
            Some((Proto::Tcp, *port))
        }
        Probe::Udp { port } => Some((Proto::Udp, *port)),
    }
}
