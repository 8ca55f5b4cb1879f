//! One probe end to end: resolve the target, simulate, ask the HTTP service for its answer, and
//! explain a failure; and the `expect:` entries of a file judged that way. The search for
//! verified fixes is a layer above (`crate::fix`, which re-runs these probes on changed copies
//! of the network); the tool's output is rendered from the result (`crate::render`).

use std::net::Ipv4Addr;

use crate::explain::{Cause, DroppedFix, Fix, Why, why};
use crate::model::{
    Expectation, Network, NodeId, Outcome, PROXY_TRIES, Port, Probe, Service, proxy_error_page,
};
use crate::sim::{Compiled, Observed, ProbeKind, ProbeRun, SimConfig, run_probe_on};

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
    /// For ping: the TTL of the requests (`ping -t`); the sender's default when `None`.
    pub ttl: Option<u8>,
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

/// The sender node named `from` and the address of the target `to` (an address, a node or a
/// DNS name), as a probe's command line gives them.
pub fn endpoints(net: &Network, from: &str, to: &str) -> Result<(NodeId, Ipv4Addr), ProbeError> {
    let from = node_named(net, from)?;
    match net.resolve_from(from, to) {
        Some(addr) => Ok((from, addr)),
        None => Err(target_address(net, to)
            .err()
            .unwrap_or_else(|| ProbeError::UnknownTarget(to.to_owned(), None))),
    }
}

/// Everything known about one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub request: ProbeRequest,
    pub run: ProbeRun,
    pub why: Option<Why>,
    /// Verified fixes of a failure: empty until the fix search (`crate::fix`) fills them in.
    pub fixes: Vec<Fix>,
    /// Changes the search verified on the network that the file could not take (see
    /// `fix::attach_patches`): printed instead of "none found" when no fix is left.
    pub dropped_fixes: Vec<DroppedFix>,
    /// For curl: what the HTTP service answered.
    pub http: Option<HttpAnswer>,
}

/// Simulates a probe and explains a failure (also a curl that reached a service which could
/// not reach its own backend: the answer is a 502, the explanation the backend's).
pub fn run_request(net: &Network, request: ProbeRequest, config: &SimConfig) -> ProbeResult {
    run_request_on(&Compiled::new(net), request, config)
}

/// [`run_request`] over a network compiled once for many requests.
pub fn run_request_on(dp: &Compiled<'_>, request: ProbeRequest, config: &SimConfig) -> ProbeResult {
    let net = dp.network();
    let kind = ProbeKind::of(&request.probe, request.count, request.wait).with_ttl(request.ttl);
    let run = run_probe_on(dp, request.from, request.dst, &kind, config);
    let http = match &request.probe {
        Probe::Curl { path, .. } if run.outcome == Outcome::Reply => {
            http_answer(dp, &run, &request.written, path, config)
        }
        _ => None,
    };
    let why = why(net, &run).or_else(|| {
        let answer = http.as_ref()?;
        let failure = answer.backend_failure.as_deref()?;
        Some(backend_why(net, &request, &run, failure, answer.status))
    });
    ProbeResult {
        request,
        run,
        why,
        fixes: Vec::new(),
        dropped_fixes: Vec::new(),
        http,
    }
}

/// The connection worked but the service could not do its job: explain the backend.
fn backend_why(
    net: &Network,
    request: &ProbeRequest,
    run: &ProbeRun,
    failure: &ProbeRun,
    status: u16,
) -> Why {
    let (node, _, _, _) =
        run.served(net)
            .unwrap_or((request.from, request.dst, Port::HTTP, &Service::Plain));
    let mut lines = vec![format!(
        "the service on `{}` answered {status}: it could not reach its backend {}:{} ({})",
        net.node(node).name,
        failure.dst,
        failure.kind_port(),
        failure.outcome
    )];
    let inner = why(net, failure);
    let origin = inner.as_ref().and_then(|w| w.origin.clone());
    let cause = Cause::Backend {
        node: net.node(node).name.clone(),
        backend: failure.dst,
        port: failure.kind_port(),
        cause: inner.as_ref().map(|w| Box::new(w.cause.clone())),
    };
    lines.extend(
        inner
            .into_iter()
            .flat_map(|w| w.lines)
            .map(|l| format!("  {l}")),
    );
    Why {
        cause,
        lines,
        origin,
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

/// The answer of the HTTP service the probe reached, to a request for `host` and `path`
/// ([`serve_http`]).
fn http_answer(
    dp: &Compiled<'_>,
    run: &ProbeRun,
    host: &str,
    path: &str,
    config: &SimConfig,
) -> Option<HttpAnswer> {
    let (node, _, _, service) = run.served(dp.network())?;
    serve_http(dp, node, service, host, path, config, 0)
}

/// How deep proxies may relay to proxies before reachlab stops following (a loop).
const MAX_PROXY_DEPTH: usize = 8;

/// What `service` on `node` answers a request for `host` and `path`: `502 Bad Gateway` when
/// a backend it `requires` does not answer a TCP connection from it; as a reverse proxy, what
/// the upstream of the route the request takes answers ([`crate::model::route`]): `503` for a
/// route without upstreams, and when no upstream of the first [`PROXY_TRIES`] answers, `504`
/// for a timeout and `502` for another error, nginx's error page as the body (an upstream that
/// answers but is no HTTP server: `502`); else its own status and body.
fn serve_http(
    dp: &Compiled<'_>,
    node: NodeId,
    service: &Service,
    host: &str,
    path: &str,
    config: &SimConfig,
    depth: usize,
) -> Option<HttpAnswer> {
    let Service::Http {
        status,
        body,
        requires,
        routes,
        ..
    } = service
    else {
        return None;
    };
    for &(addr, port) in requires {
        let backend = run_probe_on(dp, node, addr, &ProbeKind::tcp(port), config);
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
    let error = |status: u16, failure: Option<ProbeRun>| HttpAnswer {
        status,
        body: proxy_error_page(status),
        backend_failure: failure.map(Box::new),
    };
    let Some(route) = crate::model::route(routes, host, path) else {
        return Some(HttpAnswer {
            status: *status,
            body: body.clone(),
            backend_failure: None,
        });
    };
    let mut last = error(503, None);
    for &(addr, port) in route.upstreams.iter().take(PROXY_TRIES) {
        let upstream = run_probe_on(dp, node, addr, &ProbeKind::tcp(port), config);
        if upstream.outcome == Outcome::Reply {
            return Some(
                upstream
                    .served(dp.network())
                    .filter(|_| depth < MAX_PROXY_DEPTH)
                    .and_then(|(n, _, _, s)| serve_http(dp, n, s, host, path, config, depth + 1))
                    .unwrap_or_else(|| error(502, None)),
            );
        }
        let status = if upstream.outcome == Outcome::Timeout {
            504
        } else {
            502
        };
        last = error(status, Some(upstream));
    }
    Some(last)
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

/// Runs every `expect:` entry of `net`, without searching for fixes (`crate::fix::check`
/// adds them to the entries that are not met).
pub fn check(net: &Network, config: &SimConfig) -> Vec<CheckRow> {
    let dp = Compiled::new(net);
    net.expectations
        .iter()
        .map(|e| check_expectation_on(&dp, e, config))
        .collect()
}

/// Whether `result` meets `e`, and the details shown with it.
fn judge(e: &Expectation, result: &ProbeResult) -> (bool, Vec<String>) {
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
    (ok, detail)
}

/// The most runs of one probe [`run_every_choice`] makes.
pub const MAX_CHOICES: usize = 64;

/// Runs the probe once for every combination of the random choices it meets (a `-m statistic`
/// rule: kube-proxy picking one of a Service's endpoints), by scripting the draws: the first
/// run draws `false` everywhere, and each draw it made is then flipped in a run of its own.
/// One run when the probe draws nothing; at most [`MAX_CHOICES`].
pub fn run_every_choice(
    net: &Network,
    request: &ProbeRequest,
    config: &SimConfig,
) -> Vec<ProbeResult> {
    run_every_choice_on(&Compiled::new(net), request, config)
}

/// [`run_every_choice`] over a network compiled once for many requests.
pub fn run_every_choice_on(
    dp: &Compiled<'_>,
    request: &ProbeRequest,
    config: &SimConfig,
) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    let mut pending: Vec<Vec<bool>> = vec![Vec::new()];
    while let Some(prefix) = pending.pop() {
        if results.len() == MAX_CHOICES {
            break;
        }
        let mut scripted = config.clone();
        let known = prefix.len();
        scripted.draws = Some(prefix);
        let result = run_request_on(dp, request.clone(), &scripted);
        let drawn = &result.run.draws;
        for flip in (known..drawn.len()).rev() {
            let mut next = drawn[..flip].to_vec();
            next.push(true);
            pending.push(next);
        }
        results.push(result);
    }
    results
}

/// Runs one `expect:` entry for every random choice it meets and judges the results: the
/// outcome, and the TTL, RTT, HTTP status and body where the entry asks for them. When the
/// choices disagree, the entry is not met and the row says how the predictions split.
pub fn check_expectation(net: &Network, e: &Expectation, config: &SimConfig) -> CheckRow {
    check_expectation_on(&Compiled::new(net), e, config)
}

/// [`check_expectation`] over a network compiled once for many entries.
pub fn check_expectation_on(dp: &Compiled<'_>, e: &Expectation, config: &SimConfig) -> CheckRow {
    let net = dp.network();
    let request = ProbeRequest {
        from: e.from,
        written: e.target.written.clone(),
        dst: e.target.addr,
        probe: e.probe.clone(),
        // `max_rtt` is a budget for the steady state: the second echo, caches warm, is measured.
        count: if e.max_rtt.is_some() { 2 } else { 1 },
        wait: None,
        ttl: None,
    };
    let results = run_every_choice_on(dp, &request, config);
    let judged: Vec<(bool, Vec<String>)> = results.iter().map(|r| judge(e, r)).collect();
    let met = judged.iter().filter(|(ok, _)| *ok).count();
    // The row shows a failing choice when there is one.
    let shown = judged.iter().position(|(ok, _)| !ok).unwrap_or(0);
    let (ok, mut detail) = judged[shown].clone();
    if results.len() > 1 && met > 0 && met < results.len() {
        let mut outcomes: Vec<String> = results.iter().map(|r| r.run.outcome.to_string()).collect();
        outcomes.dedup();
        detail.push(format!(
            "depends on the random choice (a Service's endpoint): {met} of {} choices as expected, predictions {}",
            results.len(),
            outcomes.join(", ")
        ));
    }
    let result = results
        .into_iter()
        .nth(shown)
        .unwrap_or_else(|| run_request_on(dp, request, config));
    let predicted = result.run.outcome;
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
