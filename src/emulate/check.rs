//! Prediction against the kernel: every probe is simulated and run for real in the lab, and the
//! two results are compared (outcome, the TTL of an echo reply, the HTTP status). Probes run
//! concurrently (each opens its own sockets with its own ports and ICMP ids), a few dozen at
//! a time, paced where the kernel rate-limits its answers (see [`compare`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::model::{Expectation, Network, NodeId, Origin, Outcome, Probe};
use crate::render::Palette;
use crate::run::{ProbeRequest, ProbeResult, run_request};
use crate::sim::{DropReason, Observed, ProbeKind, SimConfig, StepKind, Transport};

use super::EmulateError;
use super::names::Layout;
use super::probe::{KernelProbe, KernelResult, run_in_namespace};

/// How many probes run at once.
pub const CONCURRENCY: usize = 24;

/// One probe, predicted and observed.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// `pc1 ping pc2`, `vm ssh 10.0.0.5:22`.
    pub probe: String,
    /// What the file's `expect:` entry says, when the probe is one.
    pub expected: Option<Outcome>,
    pub simulated: Outcome,
    pub simulated_ttl: Option<u8>,
    pub simulated_status: Option<u16>,
    pub kernel: KernelResult,
    /// Where prediction and kernel differ; empty when they agree.
    pub differences: Vec<String>,
    pub origin: Option<Origin>,
}

impl Comparison {
    pub fn agrees(&self) -> bool {
        self.differences.is_empty()
    }

    /// Whether the kernel did what the file expects (true when it expects nothing).
    pub fn as_expected(&self) -> bool {
        self.expected.is_none_or(|e| e == self.kernel.outcome)
    }

    pub fn json(&self) -> Value {
        json!({
            "probe": self.probe,
            "expected": self.expected.map(Outcome::name),
            "simulated": self.simulated.name(),
            "simulated_ttl": self.simulated_ttl,
            "simulated_http_status": self.simulated_status,
            "kernel": self.kernel.outcome.name(),
            "kernel_ttl": self.kernel.ttl,
            "kernel_http_status": self.kernel.http.as_ref().map(|h| h.status),
            "kernel_evidence": self.kernel.evidence,
            "kernel_ms": self.kernel.elapsed.as_secs_f64() * 1e3,
            "agree": self.agrees(),
            "differences": self.differences,
            "origin": self.origin.as_ref().map(ToString::to_string),
        })
    }
}

/// A probe to compare: the request, and the expectation it comes from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub request: ProbeRequest,
    pub expectation: Option<Expectation>,
}

/// The file's `expect:` entries as probes.
pub fn expectations(net: &Network) -> Vec<Planned> {
    net.expectations
        .iter()
        .map(|e| Planned {
            request: ProbeRequest {
                from: e.from,
                written: e.target.written.clone(),
                dst: e.target.addr,
                probe: e.probe.clone(),
                count: 1,
                wait: None,
            },
            expectation: Some(e.clone()),
        })
        .collect()
}

/// Simulates and runs every probe, in order.
///
/// A router answers a packet it has no route for through `ip_error()`, which the kernel rate
/// limits per (router, source address) with a token bucket whose size is global, not per
/// namespace (`net.ipv4.route.error_burst` = 5 errors, refilled at `error_cost` = one a
/// second): six such packets from one source at once and the sixth goes unanswered, also when
/// it is a reply from a server to a client that cannot be reached (the drop the simulator's
/// trace shows). So each probe first takes, for every (router, source) whose packet its trace
/// drops for want of a route, a token from a bucket of 4 refilled once a second (3 tokens when
/// a TCP handshake times out: its retransmissions drop again). An ICMP redirect to a source
/// restarts its budget from nothing in the kernel (see `Budget`): a probe that causes one
/// holds that budget alone while it runs, and leaves it empty. Probes that need the same
/// budget never overlap; the others run freely.
pub fn compare(
    net: &Network,
    layout: &Layout,
    planned: &[Planned],
    config: &SimConfig,
) -> Result<Vec<Comparison>, EmulateError> {
    let simulated: Vec<_> = planned
        .iter()
        .map(|p| run_request(net, p.request.clone(), config))
        .collect();
    let budgets: Vec<Budget> = simulated.iter().map(budget).collect();
    let needs = needs(&budgets);
    let next = AtomicUsize::new(0);
    let buckets = Mutex::new(HashMap::new());
    let slots: Vec<Mutex<Option<Result<KernelResult, EmulateError>>>> =
        planned.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY.min(planned.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = planned.get(i) else { break };
                    acquire(&buckets, &needs[i]);
                    let probe = KernelProbe {
                        probe: p.request.probe.clone(),
                        dst: p.request.dst,
                        host: p.request.written.clone(),
                        ttl: net.node(p.request.from).os.initial_ttl(),
                    };
                    let result = run_in_namespace(layout.node(p.request.from), probe);
                    release(&buckets, &needs[i]);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    planned
        .iter()
        .zip(simulated)
        .zip(slots)
        .map(|((p, sim), slot)| {
            let kernel = slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(EmulateError::Command {
                    what: "a probe".into(),
                    message: "it did not run".into(),
                })
            })?;
            Ok(compare_one(net, p, sim, kernel))
        })
        .collect()
}

/// A router and the source address whose packets it answers with ICMP unreachable.
type ErrorSource = (NodeId, Ipv4Addr);

/// What a probe does to the kernel's ICMP budgets, read off its simulated trace: a "no route"
/// drop at a router takes a token of (router, source); a redirect the router sends that
/// source restarts the same budget from nothing (`ip_rt_send_redirect()` sets the peer's
/// `rate_last`, which `ip_error()` counts its tokens from).
#[derive(Debug, Default)]
struct Budget {
    unreachable: Vec<(ErrorSource, f64)>,
    redirects: Vec<ErrorSource>,
}

fn budget(result: &ProbeResult) -> Budget {
    let retransmits =
        matches!(result.run.kind, ProbeKind::Tcp { .. }) && result.run.outcome == Outcome::Timeout;
    let mut b = Budget::default();
    for step in &result.run.steps {
        match step.kind {
            StepKind::Dropped {
                reason: DropReason::NoRoute,
                ..
            } => {
                let key = (step.node, step.packet.src);
                let cost = if retransmits { 3.0 } else { 1.0 };
                match b.unreachable.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, c)) => *c = (*c + cost).min(Bucket::BURST),
                    None => b.unreachable.push((key, cost)),
                }
            }
            StepKind::Sent { .. }
                if matches!(step.packet.transport, Transport::Redirect { .. }) =>
            {
                let key = (step.node, step.packet.dst);
                if !b.redirects.contains(&key) {
                    b.redirects.push(key);
                }
            }
            _ => {}
        }
    }
    b
}

/// What a probe needs of one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Need {
    key: ErrorSource,
    /// Tokens taken at the start.
    tokens: f64,
    /// The probe sends this source redirects: the bucket is empty when it ends.
    resets: bool,
}

/// What each probe needs: its own unreachables, and every budget it restarts that another
/// probe needs. A probe holds its budgets while it runs, so that no two overlap.
fn needs(budgets: &[Budget]) -> Vec<Vec<Need>> {
    let needed: Vec<ErrorSource> = budgets
        .iter()
        .flat_map(|b| b.unreachable.iter().map(|(k, _)| *k))
        .collect();
    budgets
        .iter()
        .map(|b| {
            let mut needs: Vec<Need> = b
                .unreachable
                .iter()
                .map(|&(key, tokens)| Need {
                    key,
                    tokens,
                    resets: false,
                })
                .collect();
            for key in b.redirects.iter().filter(|k| needed.contains(k)) {
                match needs.iter_mut().find(|n| n.key == *key) {
                    Some(n) => n.resets = true,
                    None => needs.push(Need {
                        key: *key,
                        tokens: 0.0,
                        resets: true,
                    }),
                }
            }
            needs
        })
        .collect()
}

/// Waits until no other probe holds these budgets and each has the tokens, then takes them.
fn acquire(buckets: &Mutex<HashMap<ErrorSource, Bucket>>, needs: &[Need]) {
    if needs.is_empty() {
        return;
    }
    loop {
        let wait = {
            let Ok(mut map) = buckets.lock() else { return };
            let now = Instant::now();
            let mut wait = Duration::ZERO;
            for need in needs {
                let bucket = map.entry(need.key).or_insert_with(|| Bucket::new(now));
                bucket.refill(now);
                if bucket.held {
                    wait = wait.max(Duration::from_millis(50));
                } else if bucket.tokens < need.tokens {
                    wait = wait.max(Duration::from_secs_f64(
                        (need.tokens - bucket.tokens) / Bucket::PER_SECOND,
                    ));
                }
            }
            if wait.is_zero() {
                for need in needs {
                    if let Some(bucket) = map.get_mut(&need.key) {
                        bucket.tokens -= need.tokens;
                        bucket.held = true;
                    }
                }
                return;
            }
            wait
        };
        std::thread::sleep(wait);
    }
}

/// Gives the budgets back; those the probe restarted are empty from now on.
fn release(buckets: &Mutex<HashMap<ErrorSource, Bucket>>, needs: &[Need]) {
    let Ok(mut map) = buckets.lock() else { return };
    let now = Instant::now();
    for need in needs {
        if let Some(bucket) = map.get_mut(&need.key) {
            bucket.held = false;
            if need.resets {
                bucket.tokens = 0.0;
                bucket.at = now;
            }
        }
    }
}

/// The kernel's budget of ICMP unreachables, a little on the safe side.
struct Bucket {
    tokens: f64,
    at: Instant,
    /// A probe that needs it runs.
    held: bool,
}

impl Bucket {
    const BURST: f64 = 4.0;
    const PER_SECOND: f64 = 0.9;

    fn new(now: Instant) -> Self {
        Bucket {
            tokens: Self::BURST,
            at: now,
            held: false,
        }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * Self::PER_SECOND)
            .min(Self::BURST);
        self.at = now;
    }
}

fn compare_one(
    net: &Network,
    p: &Planned,
    result: ProbeResult,
    kernel: KernelResult,
) -> Comparison {
    let simulated = result.run.outcome;
    let simulated_ttl = match &result.run.observed {
        Observed::Ping { replies, .. } => replies.first().map(|r| r.ttl),
        _ => None,
    };
    let simulated_status = result.http.as_ref().map(|h| h.status);
    let mut differences = Vec::new();
    if simulated != kernel.outcome {
        differences.push(format!(
            "outcome: predicted {simulated}, kernel {}",
            kernel.outcome
        ));
    } else {
        if let (Some(sim), Some(real)) = (simulated_ttl, kernel.ttl)
            && sim != real
        {
            differences.push(format!("ttl: predicted {sim}, kernel {real}"));
        }
        let real_status = kernel.http.as_ref().map(|h| h.status);
        if simulated_status != real_status {
            differences.push(format!(
                "http status: predicted {}, kernel {}",
                simulated_status.map_or("none".into(), |s| s.to_string()),
                real_status.map_or("none".into(), |s| s.to_string())
            ));
        }
    }
    let port = match &p.request.probe {
        Probe::Ping => String::new(),
        Probe::Ssh { port }
        | Probe::Curl { port, .. }
        | Probe::Tcp { port }
        | Probe::Udp { port } => {
            format!(":{port}")
        }
    };
    Comparison {
        probe: format!(
            "{} {} {}{port}",
            net.node(p.request.from).name,
            p.request.probe.tool(),
            p.request.written
        ),
        expected: p.expectation.as_ref().map(|e| e.outcome),
        simulated,
        simulated_ttl,
        simulated_status,
        kernel,
        differences,
        origin: p.expectation.as_ref().map(|e| e.origin.clone()),
    }
}

/// The side-by-side table `reachlab emulate check` prints.
pub fn render(rows: &[Comparison], palette: Palette) -> String {
    let width = rows
        .iter()
        .map(|r| r.probe.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:16}  {:16}  {:16}  {}\n",
        "probe", "expected", "predicted", "kernel", "agree"
    );
    let (ok, bad, dim) = (palette.ok(), palette.error(), palette.dim());
    for r in rows {
        let with_ttl = |o: Outcome, ttl: Option<u8>| match ttl {
            Some(t) => format!("{o} ttl={t}"),
            None => o.to_string(),
        };
        let with_status = |text: String, status: Option<u16>| match status {
            Some(s) => format!("{text} {s}"),
            None => text,
        };
        let predicted = with_status(with_ttl(r.simulated, r.simulated_ttl), r.simulated_status);
        let kernel = with_status(
            with_ttl(r.kernel.outcome, r.kernel.ttl),
            r.kernel.http.as_ref().map(|h| h.status),
        );
        let verdict = if r.agrees() {
            format!("{ok}yes{ok:#}")
        } else {
            format!("{bad}NO: {}{bad:#}", r.differences.join("; "))
        };
        out.push_str(&format!(
            "{:width$}  {:16}  {:16}  {:16}  {verdict}  {dim}{} [{}]{dim:#}\n",
            r.probe,
            r.expected.map_or("-".to_owned(), |e| e.to_string()),
            predicted,
            kernel,
            r.kernel.evidence,
            fmt_ms(r.kernel.elapsed),
        ));
    }
    out
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}
