//! Prediction against the kernel: every probe is simulated and run for real in the lab, and the
//! two results are compared as a whole: the outcome, every echo of a ping (reply or not, its
//! TTL, the ICMP error about it and who sent it), the HTTP status and body, and a `max_rtt`
//! budget where latency is really emulated. What cannot be compared is said so, never counted
//! as agreeing: `max_rtt` when the lab could not emulate latency (no `sch_netem`), echoes lost
//! at random on a lossy segment. Probes run concurrently (each opens its own sockets with its
//! own ports and ICMP ids), a few dozen at a time, paced where the kernel rate-limits its
//! answers (see [`compare_with`]), and an interruption (Ctrl-C) stops the comparison at once.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::{Expectation, Network, NodeId, Origin, Outcome, Probe, RouteType, SegmentId};
use crate::run::{ProbeRequest, ProbeResult, run_every_choice};
use crate::sim::{DropReason, Observed, ProbeKind, SimConfig, StepKind, Transport, outcome_of};

use super::EmulateError;
use super::names::Layout;
use super::probe::{EchoAnswer, KernelProbe, KernelResult, run_counted_in_namespace};

/// How many probes run at once.
pub const CONCURRENCY: usize = 24;

/// What came back for one echo request, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Reply {
        ttl: u8,
        rtt: Duration,
    },
    /// An ICMP error about it, as the outcome it means, and who sent it.
    Error {
        outcome: Outcome,
        from: Ipv4Addr,
    },
    Silence,
}

impl Echo {
    fn describe(self) -> String {
        match self {
            Echo::Reply { ttl, .. } => format!("reply ttl={ttl}"),
            Echo::Error { outcome, from } => format!("{outcome} from {from}"),
            Echo::Silence => "no answer".into(),
        }
    }

    fn json(self, seq: usize) -> EchoRecord {
        let mut record = EchoRecord {
            answer: "none",
            from: None,
            rtt_ms: None,
            seq,
            ttl: None,
        };
        match self {
            Echo::Reply { ttl, rtt } => {
                record.answer = "reply";
                record.rtt_ms = Some(rtt.as_secs_f64() * 1e3);
                record.ttl = Some(ttl);
            }
            Echo::Error { outcome, from } => {
                record.answer = outcome.name();
                record.from = Some(from);
            }
            Echo::Silence => {}
        }
        record
    }
}

/// One echo request's fate in JSON: `reply` (with TTL and RTT), an outcome name with the
/// sender of the ICMP error, or `none`. Fields in alphabetical order, as since the first
/// version of this output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EchoRecord {
    pub answer: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    pub seq: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

impl From<EchoAnswer> for Echo {
    fn from(a: EchoAnswer) -> Self {
        match a {
            EchoAnswer::Reply { ttl, rtt } => Echo::Reply { ttl, rtt },
            EchoAnswer::Error { outcome, from, .. } => Echo::Error { outcome, from },
            EchoAnswer::Silence => Echo::Silence,
        }
    }
}

/// Something the comparison of one probe left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCompared {
    /// `max_rtt`, `losses`.
    pub what: &'static str,
    /// `latency could not be emulated (segment `wan`: tc netem: ...)`.
    pub why: String,
}

impl std::fmt::Display for NotCompared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} not compared: {}", self.what, self.why)
    }
}

/// One probe, predicted and observed.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// `pc1 ping pc2`, `vm ssh 10.0.0.5:22`.
    pub probe: String,
    /// What the file's `expect:` entry says, when the probe is one.
    pub expected: Option<Outcome>,
    /// The `max_rtt` of the file's `expect:` entry.
    pub max_rtt: Option<Duration>,
    pub simulated: Outcome,
    pub simulated_ttl: Option<u8>,
    pub simulated_status: Option<u16>,
    /// The steady-state round-trip time the simulator predicts (the last echo's, the
    /// handshake's).
    pub simulated_rtt: Option<Duration>,
    /// For ping: each echo request's fate in the simulator, in order.
    pub simulated_echoes: Vec<Echo>,
    pub kernel: KernelResult,
    /// Where prediction and kernel differ; empty when they agree.
    pub differences: Vec<String>,
    /// What was not compared; the probe agrees only on the rest.
    pub not_compared: Vec<NotCompared>,
    pub origin: Option<Origin>,
}

impl Comparison {
    /// Prediction and kernel agree on everything that was compared (see
    /// [`Comparison::not_compared`] for what was not).
    pub fn agrees(&self) -> bool {
        self.differences.is_empty()
    }

    /// Whether the kernel did what the file expects (true when it expects nothing): its
    /// outcome, and its steady-state RTT within `max_rtt` when that was compared.
    pub fn as_expected(&self) -> bool {
        let rtt_ok = match (self.max_rtt, self.kernel.rtt) {
            (Some(max), Some(rtt)) if !self.not_compared.iter().any(|n| n.what == MAX_RTT) => {
                rtt <= max
            }
            _ => true,
        };
        self.expected.is_none_or(|e| e == self.kernel.outcome) && rtt_ok
    }

    /// The kernel's echoes, in the terms of the prediction's.
    pub fn kernel_echoes(&self) -> Vec<Echo> {
        self.kernel.echoes.iter().copied().map(Echo::from).collect()
    }

    /// The JSON record of this comparison, for the file it comes from.
    pub fn json(&self, file: &str) -> ComparisonRecord<'_> {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let echoes = |list: &[Echo]| -> Vec<EchoRecord> {
            list.iter()
                .enumerate()
                .map(|(i, e)| e.json(i + 1))
                .collect()
        };
        ComparisonRecord {
            agree: self.agrees(),
            differences: &self.differences,
            expected: self.expected.map(Outcome::name),
            file: file.to_owned(),
            kernel: self.kernel.outcome.name(),
            kernel_echoes: echoes(&self.kernel_echoes()),
            kernel_evidence: &self.kernel.evidence,
            kernel_http_status: self.kernel.http.as_ref().map(|h| h.status),
            kernel_ms: self.kernel.elapsed.as_secs_f64() * 1e3,
            kernel_rtt_ms: ms(self.kernel.rtt),
            kernel_ttl: self.kernel.ttl,
            max_rtt_ms: ms(self.max_rtt),
            not_compared: self.not_compared.iter().map(|n| n.what).collect(),
            not_compared_reasons: self.not_compared.iter().map(ToString::to_string).collect(),
            origin: self.origin.as_ref(),
            probe: &self.probe,
            simulated: self.simulated.name(),
            simulated_echoes: echoes(&self.simulated_echoes),
            simulated_http_status: self.simulated_status,
            simulated_rtt_ms: ms(self.simulated_rtt),
            simulated_ttl: self.simulated_ttl,
        }
    }
}

/// `emulate check --format json`: one probe, predicted and observed. Fields in alphabetical
/// order, as since the first version of this output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRecord<'a> {
    pub agree: bool,
    pub differences: &'a [String],
    pub expected: Option<&'static str>,
    pub file: String,
    pub kernel: &'static str,
    pub kernel_echoes: Vec<EchoRecord>,
    pub kernel_evidence: &'a str,
    pub kernel_http_status: Option<u16>,
    /// How long the kernel probe took.
    pub kernel_ms: f64,
    pub kernel_rtt_ms: Option<f64>,
    pub kernel_ttl: Option<u8>,
    pub max_rtt_ms: Option<f64>,
    pub not_compared: Vec<&'static str>,
    pub not_compared_reasons: Vec<String>,
    pub origin: Option<&'a Origin>,
    pub probe: &'a str,
    pub simulated: &'static str,
    pub simulated_echoes: Vec<EchoRecord>,
    pub simulated_http_status: Option<u16>,
    pub simulated_rtt_ms: Option<f64>,
    pub simulated_ttl: Option<u8>,
}

pub const MAX_RTT: &str = "max_rtt";
const LOSSES: &str = "losses";

/// A probe to compare: the request, and the expectation it comes from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub request: ProbeRequest,
    pub expectation: Option<Expectation>,
}

/// The file's `expect:` entries as probes, sent as `check` sends them: one echo, two when
/// `max_rtt` asks for the steady state (the second echo is measured).
pub fn expectations(net: &Network) -> Vec<Planned> {
    net.expectations
        .iter()
        .map(|e| Planned {
            request: ProbeRequest {
                from: e.from,
                written: e.target.written.clone(),
                dst: e.target.addr,
                probe: e.probe.clone(),
                count: if e.max_rtt.is_some() { 2 } else { 1 },
                wait: None,
                ttl: None,
            },
            expectation: Some(e.clone()),
        })
        .collect()
}

/// What the lab is, beyond its layout, and how to stop.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// What the lab could not emulate, as `up` recorded it ([`super::Lab::warnings`]).
    pub warnings: Vec<String>,
    /// Set (by a signal handler) to stop probing at once: [`compare_with`] then returns
    /// [`EmulateError::Interrupted`] without waiting for the probes under way.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// [`compare_with`] for a lab that emulates everything, without interruption.
pub fn compare(
    net: &Network,
    layout: &Layout,
    planned: &[Planned],
    config: &SimConfig,
) -> Result<Vec<Comparison>, EmulateError> {
    compare_with(net, layout, planned, config, &CompareOptions::default())
}

/// One probe to run in the kernel.
struct Job {
    netns: String,
    probe: KernelProbe,
    count: u16,
    interval: Duration,
    needs: Vec<Need>,
    /// The simulator says the probe makes a router send an ICMP redirect: a host learns a
    /// route from it, which the kernel keeps after the probe (a route exception) and the
    /// simulator does not.
    redirects: bool,
    /// Some node keeps `-m recent` lists (kube-proxy's session affinity), which remember a
    /// probe's source after it ends: the probe runs alone and the lists are emptied after it.
    lists: bool,
}

type Slot = Result<KernelResult, EmulateError>;

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
///
/// The probes run on threads of their own: when `options.interrupt` is set, this returns at
/// once and the probes under way end with the process (their sockets keep the namespaces
/// they are in alive until then, which `down` does not need).
pub fn compare_with(
    net: &Network,
    layout: &Layout,
    planned: &[Planned],
    config: &SimConfig,
    options: &CompareOptions,
) -> Result<Vec<Comparison>, EmulateError> {
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    // Every prediction the random choices allow (a Service's endpoint): the kernel's answer
    // is held against the one that agrees with it, if any.
    let mut choices: Vec<Vec<ProbeResult>> = Vec::with_capacity(planned.len());
    for p in planned {
        if interrupted() {
            return Err(EmulateError::Interrupted);
        }
        choices.push(run_every_choice(net, &p.request, config));
    }
    let simulated: Vec<&ProbeResult> = choices.iter().filter_map(|c| c.first()).collect();
    let lists = recent_lists(net, layout);
    let budgets: Vec<Budget> = simulated.iter().map(|s| budget(s)).collect();
    let jobs: Vec<Job> = planned
        .iter()
        .zip(&simulated)
        .zip(needs(&budgets))
        .map(|((p, sim), needs)| Job {
            netns: layout.node(p.request.from).to_owned(),
            probe: KernelProbe {
                probe: p.request.probe.clone(),
                dst: p.request.dst,
                host: p.request.written.clone(),
                ttl: sim
                    .run
                    .kind
                    .initial_ttl(net.node(p.request.from).os.initial_ttl()),
            },
            count: p.request.count,
            interval: match sim.run.kind {
                ProbeKind::Ping { interval, .. } => interval,
                _ => Duration::ZERO,
            },
            redirects: !budget(sim).redirects.is_empty(),
            lists: !lists.is_empty(),
            needs,
        })
        .collect();
    let namespaces: Vec<String> = net
        .nodes
        .iter()
        .map(|n| layout.node(n.id).to_owned())
        .collect();
    let mut slots = run_jobs(jobs, namespaces, lists, options.interrupt.clone())?;
    let emulation = Emulation::of(net, &options.warnings);
    planned
        .iter()
        .zip(choices)
        .enumerate()
        .map(|(i, (p, choices))| {
            let kernel = slots.get_mut(i).and_then(Option::take).unwrap_or_else(|| {
                Err(EmulateError::Command {
                    what: "a probe".into(),
                    message: "it did not run".into(),
                })
            })?;
            let at = choices
                .iter()
                .position(|c| {
                    c.run.outcome == kernel.outcome
                        && c.http.as_ref().map(|h| h.status)
                            == kernel.http.as_ref().map(|h| h.status)
                })
                .unwrap_or(0);
            let Some(sim) = choices.into_iter().nth(at) else {
                return Err(EmulateError::Command {
                    what: "a probe".into(),
                    message: "it was not simulated".into(),
                });
            };
            Ok(compare_one(net, p, sim, kernel, &emulation))
        })
        .collect()
}

/// Runs the jobs, [`CONCURRENCY`] at a time, on detached threads; returns their results in
/// order, or [`EmulateError::Interrupted`] as soon as `interrupt` is set.
///
/// A job whose probe makes a router send a redirect runs alone, and the routes hosts learnt
/// from it are forgotten (`ip route flush cache` in every node's namespace) before the next
/// job starts; in a network with `-m recent` lists every job runs alone and the lists are
/// emptied after it: each probe meets the network as the simulator does, fresh.
fn run_jobs(
    jobs: Vec<Job>,
    namespaces: Vec<String>,
    lists: Vec<(String, String)>,
    interrupt: Option<Arc<AtomicBool>>,
) -> Result<Vec<Option<Slot>>, EmulateError> {
    struct Shared {
        jobs: Vec<Job>,
        next: AtomicUsize,
        buckets: Mutex<HashMap<ErrorSource, Bucket>>,
        interrupt: Option<Arc<AtomicBool>>,
        /// Readers: jobs that redirect nothing; the writer: one that does.
        alone: RwLock<()>,
        namespaces: Vec<String>,
        lists: Vec<(String, String)>,
    }
    let stop =
        |flag: &Option<Arc<AtomicBool>>| flag.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
    let total = jobs.len();
    let shared = Arc::new(Shared {
        jobs,
        next: AtomicUsize::new(0),
        buckets: Mutex::new(HashMap::new()),
        interrupt: interrupt.clone(),
        alone: RwLock::new(()),
        namespaces,
        lists,
    });
    let (tx, rx) = mpsc::channel::<(usize, Slot)>();
    for n in 0..CONCURRENCY.min(total) {
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("probe {n}"))
            .spawn(move || {
                loop {
                    if stop(&shared.interrupt) {
                        break;
                    }
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = shared.jobs.get(i) else { break };
                    if !acquire(&shared.buckets, &job.needs, || stop(&shared.interrupt)) {
                        break;
                    }
                    let run = || {
                        run_counted_in_namespace(
                            &job.netns,
                            job.probe.clone(),
                            job.count,
                            job.interval,
                        )
                    };
                    let result = if job.redirects || job.lists {
                        let _alone = shared.alone.write().unwrap_or_else(|e| e.into_inner());
                        let result = run();
                        if job.redirects {
                            forget_learnt_routes(&shared.namespaces);
                        }
                        forget_recent_sources(&shared.lists);
                        result
                    } else {
                        let _shared = shared.alone.read().unwrap_or_else(|e| e.into_inner());
                        run()
                    };
                    release(&shared.buckets, &job.needs);
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| EmulateError::io("starting a probe thread", e))?;
    }
    drop(tx);
    let mut slots: Vec<Option<Slot>> = (0..total).map(|_| None).collect();
    let mut received = 0;
    while received < total {
        if stop(&interrupt) {
            return Err(EmulateError::Interrupted);
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((i, result)) => {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(result);
                }
                received += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if stop(&interrupt) {
        return Err(EmulateError::Interrupted);
    }
    Ok(slots)
}

/// Each namespace whose rules keep `-m recent` lists, with the nft lines that empty them.
fn recent_lists(net: &Network, layout: &Layout) -> Vec<(String, String)> {
    net.nodes
        .iter()
        .filter_map(|n| {
            let flush = super::nft::flush_recent(n.netfilter.as_deref()?)?;
            Some((layout.node(n.id).to_owned(), flush))
        })
        .collect()
}

/// Empties the `-m recent` lists (`nft flush set`), so that the next probe's source is
/// remembered by none (checked on Linux 6.18: `nft list set` shows the element before, none
/// after).
fn forget_recent_sources(lists: &[(String, String)]) {
    for (ns, flush) in lists {
        let _ = super::netns::exec(
            ns,
            &["nft", "-f", "-"],
            Some(flush),
            "emptying recent lists",
        );
    }
}

/// `ip route flush cache` in each namespace: the routes hosts learnt from redirects go (checked
/// on Linux 6.18: `ip route get` shows the `<redirected>` route before, the table's after).
fn forget_learnt_routes(namespaces: &[String]) {
    let mut script = super::netns::Script::new("ip");
    if script.line(["route", "flush", "cache"]).is_err() {
        return;
    }
    for ns in namespaces {
        let _ = super::netns::ip_batch(Some(ns), &script, "forgetting learnt routes");
    }
}

/// What the lab emulates of the segments' latency and loss.
#[derive(Debug, Default)]
struct Emulation {
    /// Segments with latency or loss whose netem could not be set up, with why.
    failed: HashMap<SegmentId, String>,
}

impl Emulation {
    /// Reads `up`'s warnings: `segment `NAME`: latency and loss not emulated (WHY)`.
    fn of(net: &Network, warnings: &[String]) -> Self {
        let mut failed = HashMap::new();
        for segment in &net.segments {
            if segment.latency.is_zero() && segment.loss == 0.0 {
                continue;
            }
            let prefix = format!("segment `{}`: ", segment.name);
            let Some(rest) = warnings.iter().find_map(|w| w.strip_prefix(&prefix)) else {
                continue;
            };
            let why = rest
                .strip_prefix("latency and loss not emulated (")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(rest);
            failed.insert(segment.id, format!("segment `{}`: {why}", segment.name));
        }
        Emulation { failed }
    }

    /// Why latency could not be emulated, if it could not (on any segment that has some).
    fn latency_failure(&self, net: &Network) -> Option<String> {
        let mut reasons: Vec<&String> = net
            .segments
            .iter()
            .filter(|s| !s.latency.is_zero())
            .filter_map(|s| self.failed.get(&s.id))
            .collect();
        reasons.dedup();
        (!reasons.is_empty()).then(|| {
            reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
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
            // ip_error() answers these from one token bucket per (router, source): no route,
            // and `unreachable` / `prohibit` routes (a `blackhole` answers nothing).
            StepKind::Dropped {
                reason:
                    DropReason::NoRoute
                    | DropReason::RejectRoute(RouteType::Unreachable | RouteType::Prohibit),
                in_iface: Some(_),
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

/// Waits until no other probe holds these budgets and each has the tokens, then takes them;
/// false when `stop` says to give up first.
fn acquire(
    buckets: &Mutex<HashMap<ErrorSource, Bucket>>,
    needs: &[Need],
    stop: impl Fn() -> bool,
) -> bool {
    if needs.is_empty() {
        return true;
    }
    loop {
        if stop() {
            return false;
        }
        let wait = {
            let Ok(mut map) = buckets.lock() else {
                return true;
            };
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
                return true;
            }
            wait
        };
        std::thread::sleep(wait.min(Duration::from_millis(100)));
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

/// Each echo request's fate in the simulator, in order of sequence number.
fn simulated_echoes(observed: &Observed) -> Vec<Echo> {
    let Observed::Ping {
        sent,
        replies,
        errors,
        ..
    } = observed
    else {
        return Vec::new();
    };
    (1..=*sent)
        .map(|seq| {
            if let Some(r) = replies.iter().find(|r| r.seq == seq) {
                Echo::Reply {
                    ttl: r.ttl,
                    rtt: r.rtt,
                }
            } else if let Some(e) = errors.iter().find(|e| e.seq == seq) {
                Echo::Error {
                    outcome: outcome_of(&Observed::Error(*e)),
                    from: e.from,
                }
            } else {
                Echo::Silence
            }
        })
        .collect()
}

/// The segments a simulated probe's packets crossed, both ways.
fn segments_crossed(net: &Network, result: &ProbeResult) -> Vec<SegmentId> {
    let mut crossed = Vec::new();
    for step in &result.run.steps {
        let segment = match step.kind {
            StepKind::Sent { out: Some(i), .. } | StepKind::Forwarded { out: i, .. } => {
                net.interface(i).segment
            }
            StepKind::Dropped {
                reason: DropReason::Lost { segment },
                ..
            } => segment,
            _ => continue,
        };
        if !crossed.contains(&segment) {
            crossed.push(segment);
        }
    }
    crossed
}

/// Both sides of one probe, as far as they are compared.
struct Sides<'a> {
    simulated: Outcome,
    simulated_echoes: &'a [Echo],
    simulated_status: Option<u16>,
    /// The body of the service's own answer (not of a 502 about its backend).
    simulated_body: Option<&'a str>,
    simulated_rtt: Option<Duration>,
    kernel: &'a KernelResult,
    /// `max_rtt`, when it is compared.
    max_rtt: Option<Duration>,
    /// The path crosses a segment that loses frames at random: an echo or a whole probe
    /// answered on one side and lost on the other is no difference.
    random_loss: bool,
}

/// A duration as `0.123 ms`.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Where the two sides differ: the outcome, each echo, the HTTP answer, the `max_rtt` verdict.
fn differences(s: &Sides<'_>) -> Vec<String> {
    use Outcome::{Reply, Timeout};
    let mut out = Vec::new();
    let kernel = s.kernel;
    let kernel_echoes: Vec<Echo> = kernel.echoes.iter().copied().map(Echo::from).collect();
    let outcome_differs = s.simulated != kernel.outcome;
    let lost = s.random_loss
        && matches!(
            (s.simulated, kernel.outcome),
            (Reply, Timeout) | (Timeout, Reply)
        );
    if outcome_differs && !lost {
        out.push(format!(
            "outcome: predicted {}, kernel {}",
            s.simulated, kernel.outcome
        ));
    }
    let (sim_n, real_n) = (s.simulated_echoes.len(), kernel_echoes.len());
    if sim_n > 0 && real_n > 0 && sim_n != real_n {
        out.push(format!(
            "echoes: predicted {sim_n} sent, kernel {real_n} sent"
        ));
    }
    // With a single echo a different outcome already says it all.
    let single = sim_n <= 1 && real_n <= 1;
    if !(single && outcome_differs) {
        for (i, (&a, &b)) in s.simulated_echoes.iter().zip(&kernel_echoes).enumerate() {
            let same = match (a, b) {
                (Echo::Reply { ttl: x, .. }, Echo::Reply { ttl: y, .. }) => x == y,
                (Echo::Reply { .. }, Echo::Silence) | (Echo::Silence, Echo::Reply { .. }) => {
                    s.random_loss
                }
                (a, b) => a == b,
            };
            if !same {
                out.push(format!(
                    "echo {}: predicted {}, kernel {}",
                    i + 1,
                    a.describe(),
                    b.describe()
                ));
            }
        }
    }
    if !outcome_differs {
        let real_status = kernel.http.as_ref().map(|h| h.status);
        if s.simulated_status != real_status {
            out.push(format!(
                "http status: predicted {}, kernel {}",
                s.simulated_status.map_or("none".into(), |v| v.to_string()),
                real_status.map_or("none".into(), |v| v.to_string())
            ));
        } else if let (Some(sim), Some(real)) = (s.simulated_body, kernel.http.as_ref())
            && sim != real.body
        {
            let cut = |b: &str| b.chars().take(60).collect::<String>();
            out.push(format!(
                "http body: predicted {:?}, kernel {:?}",
                cut(sim),
                cut(&real.body)
            ));
        }
    }
    if let (Some(max), Some(sim), Some(real)) = (s.max_rtt, s.simulated_rtt, kernel.rtt) {
        let verdict = |rtt: Duration| if rtt <= max { "within" } else { "over" };
        if verdict(sim) != verdict(real) {
            out.push(format!(
                "max_rtt {}: predicted rtt={} ({}), kernel rtt={} ({})",
                ms(max),
                ms(sim),
                verdict(sim),
                ms(real),
                verdict(real)
            ));
        }
    }
    out
}

fn compare_one(
    net: &Network,
    p: &Planned,
    result: ProbeResult,
    kernel: KernelResult,
    emulation: &Emulation,
) -> Comparison {
    let simulated = result.run.outcome;
    let simulated_echoes = simulated_echoes(&result.run.observed);
    let (simulated_ttl, simulated_rtt) = match &result.run.observed {
        Observed::Ping { replies, .. } => (
            replies.first().map(|r| r.ttl),
            replies.last().map(|r| r.rtt),
        ),
        Observed::Connected { rtt, .. } | Observed::UdpAnswer { rtt, .. } => (None, Some(*rtt)),
        _ => (None, None),
    };
    let simulated_status = result.http.as_ref().map(|h| h.status);
    let max_rtt = p.expectation.as_ref().and_then(|e| e.max_rtt);
    let mut not_compared = Vec::new();
    if max_rtt.is_some()
        && let Some(why) = emulation.latency_failure(net)
    {
        not_compared.push(NotCompared {
            what: MAX_RTT,
            why: format!("latency could not be emulated ({why})"),
        });
    }
    let lossy: Vec<String> = segments_crossed(net, &result)
        .into_iter()
        .map(|id| net.segment(id))
        .filter(|s| s.loss > 0.0)
        .map(|s| {
            let mut text = format!("segment `{}` loses {}% at random", s.name, s.loss * 100.0);
            if let Some(why) = emulation.failed.get(&s.id) {
                text.push_str(&format!(", which could not be emulated ({why})"));
            }
            text
        })
        .collect();
    if !lossy.is_empty() {
        not_compared.push(NotCompared {
            what: LOSSES,
            why: format!(
                "{}: an echo answered on one side and lost on the other is no difference",
                lossy.join("; ")
            ),
        });
    }
    let differences = differences(&Sides {
        simulated,
        simulated_echoes: &simulated_echoes,
        simulated_status,
        simulated_body: result
            .http
            .as_ref()
            .filter(|h| h.backend_failure.is_none())
            .map(|h| h.body.as_str()),
        simulated_rtt,
        kernel: &kernel,
        max_rtt: max_rtt.filter(|_| !not_compared.iter().any(|n| n.what == MAX_RTT)),
        random_loss: !lossy.is_empty(),
    });
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
        max_rtt,
        simulated,
        simulated_ttl,
        simulated_status,
        simulated_rtt,
        simulated_echoes,
        kernel,
        differences,
        not_compared,
        origin: p.expectation.as_ref().map(|e| e.origin.clone()),
    }
}

/// How many rows agree on everything, agree on all that was compared, and differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub agree: usize,
    /// Agree on what was compared; something was not (see [`Comparison::not_compared`]).
    pub partly: usize,
    pub differ: usize,
}

impl Tally {
    pub fn of(rows: &[Comparison]) -> Self {
        let mut t = Tally::default();
        for r in rows {
            if !r.agrees() {
                t.differ += 1;
            } else if r.not_compared.is_empty() {
                t.agree += 1;
            } else {
                t.partly += 1;
            }
        }
        t
    }

    pub fn add(&mut self, other: Tally) {
        self.agree += other.agree;
        self.partly += other.partly;
        self.differ += other.differ;
    }

    pub fn total(&self) -> usize {
        self.agree + self.partly + self.differ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(outcome: Outcome, echoes: Vec<EchoAnswer>, rtt: Option<Duration>) -> KernelResult {
        KernelResult {
            outcome,
            ttl: echoes.iter().find_map(|e| match e {
                EchoAnswer::Reply { ttl, .. } => Some(*ttl),
                _ => None,
            }),
            http: None,
            evidence: String::new(),
            elapsed: Duration::ZERO,
            rtt,
            echoes,
        }
    }

    fn reply(ttl: u8) -> Echo {
        Echo::Reply {
            ttl,
            rtt: Duration::from_millis(1),
        }
    }

    fn kreply(ttl: u8) -> EchoAnswer {
        EchoAnswer::Reply {
            ttl,
            rtt: Duration::from_millis(1),
        }
    }

    fn sides<'a>(sim: &'a [Echo], kernel: &'a KernelResult) -> Sides<'a> {
        Sides {
            simulated: if sim.iter().any(|e| matches!(e, Echo::Reply { .. })) {
                Outcome::Reply
            } else {
                Outcome::Timeout
            },
            simulated_echoes: sim,
            simulated_status: None,
            simulated_body: None,
            simulated_rtt: None,
            kernel,
            max_rtt: None,
            random_loss: false,
        }
    }

    #[test]
    fn a_later_echo_that_differs_is_a_difference() {
        // Same outcome (a reply came), but the second echo went unanswered in the kernel.
        let k = kernel(Outcome::Reply, vec![kreply(63), EchoAnswer::Silence], None);
        let sim = [reply(63), reply(63)];
        assert_eq!(
            differences(&sides(&sim, &k)),
            ["echo 2: predicted reply ttl=63, kernel no answer"]
        );
        let same = kernel(Outcome::Reply, vec![kreply(63), kreply(63)], None);
        assert!(differences(&sides(&sim, &same)).is_empty());
    }

    #[test]
    fn a_later_echo_with_another_ttl_or_error_is_a_difference() {
        let k = kernel(
            Outcome::Reply,
            vec![
                kreply(63),
                kreply(62),
                EchoAnswer::Error {
                    outcome: Outcome::HostUnreachable,
                    from: Ipv4Addr::new(10, 0, 0, 2),
                    kind: 3,
                    code: 1,
                },
            ],
            None,
        );
        let sim = [
            reply(63),
            reply(63),
            Echo::Error {
                outcome: Outcome::HostUnreachable,
                from: Ipv4Addr::new(10, 0, 0, 1),
            },
        ];
        assert_eq!(
            differences(&sides(&sim, &k)),
            [
                "echo 2: predicted reply ttl=63, kernel reply ttl=62",
                "echo 3: predicted host-unreachable from 10.0.0.1, kernel host-unreachable from 10.0.0.2"
            ]
        );
    }

    #[test]
    fn on_a_lossy_path_a_lost_echo_is_not_a_difference_but_a_wrong_ttl_is() {
        let k = kernel(Outcome::Reply, vec![EchoAnswer::Silence, kreply(62)], None);
        let sim = [reply(63), reply(63)];
        let mut s = sides(&sim, &k);
        s.random_loss = true;
        assert_eq!(
            differences(&s),
            ["echo 2: predicted reply ttl=63, kernel reply ttl=62"]
        );
    }

    #[test]
    fn max_rtt_is_a_difference_only_when_the_verdicts_differ() {
        let k = kernel(
            Outcome::Reply,
            vec![kreply(63), kreply(63)],
            Some(Duration::from_micros(80)),
        );
        let sim = [reply(63), reply(63)];
        let mut s = sides(&sim, &k);
        s.max_rtt = Some(Duration::from_millis(50));
        s.simulated_rtt = Some(Duration::from_millis(60));
        assert_eq!(
            differences(&s),
            ["max_rtt 50.000 ms: predicted rtt=60.000 ms (over), kernel rtt=0.080 ms (within)"]
        );
        s.simulated_rtt = Some(Duration::from_millis(40));
        assert!(differences(&s).is_empty());
    }

    #[test]
    fn netem_warnings_name_the_segment_and_why() {
        let net = crate::topology::load_str(
            "t.yaml",
            "segments:\n  - { name: wan, latency: 30ms }\n  - { name: lan }\nnodes:\n  - name: a\n    interfaces:\n      - { name: eth0, segment: wan, addresses: [192.0.2.1/24] }\n",
        )
        .expect("valid")
        .network;
        let e = Emulation::of(
            &net,
            &["segment `wan`: latency and loss not emulated (tc netem: Error: Specified qdisc kind is unknown.)".into()],
        );
        assert_eq!(
            e.latency_failure(&net).as_deref(),
            Some("segment `wan`: tc netem: Error: Specified qdisc kind is unknown.")
        );
        assert_eq!(Emulation::of(&net, &[]).latency_failure(&net), None);
    }
}
