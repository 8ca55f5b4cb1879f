//! `reachlab emulate ...` and `reachlab live ...`: argument parsing and printing around
//! [`reachlab::emulate`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Subcommand;

use super::args::{Format, ShowFormat, TextOrJson};
use reachlab::emulate::{self, EmulateError, Lab, ListenerHost, Planned, UpOptions};
use reachlab::model::{Network, Outcome, Port, Probe};
use reachlab::render::Palette;
use reachlab::run::{self as probe_run, ProbeRequest};
use reachlab::sim::SimConfig;
use reachlab::topology;

/// What the commands need from the global options.
pub struct Context {
    pub json: bool,
    pub yaml: bool,
    pub palette: Palette,
    pub seed: u64,
}

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_INVALID: u8 = 2;
/// Stopped by Ctrl-C (SIGINT) or SIGTERM, as a shell reports a process killed by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Subcommand)]
pub enum EmulateCommand {
    /// Build FILE in network namespaces (needs root, iproute2 and, for rules, nftables).
    Up {
        file: PathBuf,
        /// Run the real dockerd on each Docker host, which makes the Docker networks,
        /// containers and rules (needs docker.io, busybox-static, iptables).
        #[arg(long)]
        dockerd: bool,
    },
    /// Remove the lab of FILE, or every lab (--all): exactly what their state files list.
    Down {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        file: Option<PathBuf>,
        #[arg(long)]
        all: bool,
    },
    /// List the labs that are up.
    List,
    /// Run every `expect:` entry (and each --probe) for real and beside the simulator; exit 1 on
    /// any disagreement. Uses the lab `up` built, or builds one for the run.
    Check {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        out: TextOrJson,
        /// An extra probe: "ping FROM TO", "ssh FROM HOST[:PORT]", "curl FROM URL",
        /// "tcp FROM TO:PORT" or "udp FROM TO:PORT" (only with a single file).
        #[arg(long = "probe", value_name = "PROBE")]
        probes: Vec<String>,
        /// Run the real dockerd on each Docker host, which makes the Docker networks,
        /// containers and rules (needs docker.io, busybox-static, iptables).
        #[arg(long)]
        dockerd: bool,
    },
    /// `ping` from FROM to TO for real in the lab, beside the prediction, echo by echo.
    Ping {
        file: PathBuf,
        from: String,
        to: String,
        /// Number of echo requests (one a second, as ping sends them).
        #[arg(short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// Time to live of the echo requests, 1 to 255 (`ping -t`), on both sides.
        #[arg(short = 't', value_parser = clap::value_parser!(u8).range(1..))]
        ttl: Option<u8>,
        #[command(flatten)]
        out: TextOrJson,
    },
    /// `ssh HOST` from FROM for real in the lab, beside the prediction.
    Ssh {
        file: PathBuf,
        from: String,
        host: String,
        #[arg(short = 'p', default_value_t = 22)]
        port: u16,
        #[command(flatten)]
        out: TextOrJson,
    },
    /// `curl URL` from FROM for real in the lab, beside the prediction.
    Curl {
        file: PathBuf,
        from: String,
        url: String,
        #[command(flatten)]
        out: TextOrJson,
    },
    /// Serve a lab's listeners (started by `up`; not for direct use).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        state: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum LiveCommand {
    /// This machine's interfaces, addresses and routes (`--format yaml`: as a topology file).
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// `ping TARGET` from this machine for real, beside the route the model predicts.
    Ping {
        target: String,
        #[command(flatten)]
        out: TextOrJson,
    },
    /// A TCP connection to TARGET:PORT from this machine, beside the predicted route.
    Tcp {
        target: String,
        port: u16,
        #[command(flatten)]
        out: TextOrJson,
    },
}

impl EmulateCommand {
    /// The output format given to the subcommand (text for those without `--format`).
    pub(crate) fn output(&self) -> Format {
        match self {
            EmulateCommand::Check { out, .. }
            | EmulateCommand::Ping { out, .. }
            | EmulateCommand::Ssh { out, .. }
            | EmulateCommand::Curl { out, .. } => out.format.into(),
            _ => Format::Text,
        }
    }
}

impl LiveCommand {
    /// The output format given to the subcommand.
    pub(crate) fn output(&self) -> Format {
        match self {
            LiveCommand::Show { format } => (*format).into(),
            LiveCommand::Ping { out, .. } | LiveCommand::Tcp { out, .. } => out.format.into(),
        }
    }
}

fn fail(err: &EmulateError) -> u8 {
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "reachlab: {err}");
    if let Some(hint) = err.hint() {
        let _ = writeln!(stderr, "  hint: {hint}");
    }
    match err {
        EmulateError::NotRoot
        | EmulateError::DownNotRoot
        | EmulateError::Refused { .. }
        | EmulateError::MissingTool { .. }
        | EmulateError::AlreadyUp { .. }
        | EmulateError::NotUp { .. } => EXIT_INVALID,
        _ => EXIT_FAILED,
    }
}

fn usage(message: &str) -> u8 {
    let _ = writeln!(std::io::stderr(), "reachlab: {message}");
    EXIT_INVALID
}

fn load(file: &Path) -> Result<Network, u8> {
    topology::load_path(file)
        .map(|l| l.network)
        .map_err(|report| {
            let mut err = std::io::stderr();
            for d in &report.diagnostics {
                let _ = writeln!(err, "{}", d.message);
            }
            let _ = writeln!(
                err,
                "reachlab: {} is invalid; `reachlab validate {}` shows where",
                file.display(),
                file.display()
            );
            EXIT_INVALID
        })
}

/// A flag set by SIGINT and SIGTERM, for `up` to stop and clean up.
fn interrupt_flag() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone()).ok()?;
    }
    Some(flag)
}

fn options(dockerd: bool) -> UpOptions {
    options_with(interrupt_flag(), dockerd)
}

fn options_with(interrupt: Option<Arc<AtomicBool>>, dockerd: bool) -> UpOptions {
    UpOptions {
        state_dir: emulate::state_dir(),
        listeners: match std::env::current_exe() {
            Ok(exe) => ListenerHost::Process(exe),
            Err(_) => ListenerHost::InProcess,
        },
        interrupt,
        dockerd,
    }
}

pub fn run(command: &EmulateCommand, ctx: &Context, out: &mut impl Write) -> std::io::Result<u8> {
    match command {
        EmulateCommand::Up { file, dockerd } => {
            let net = match load(file) {
                Ok(n) => n,
                Err(code) => return Ok(code),
            };
            match emulate::up(&net, file, &options(*dockerd)) {
                Ok(lab) => {
                    // Kept before printing: a closed stdout must not take the lab down.
                    let mut summary = Vec::new();
                    print_up(&net, &lab, &mut summary)?;
                    lab.keep();
                    out.write_all(&summary)?;
                    Ok(EXIT_OK)
                }
                Err(e) => Ok(fail(&e)),
            }
        }
        EmulateCommand::Down { file, all } => down(file.as_deref(), *all, out),
        EmulateCommand::List => list(out),
        EmulateCommand::Check {
            paths,
            probes,
            dockerd,
            ..
        } => check(paths, probes, *dockerd, ctx, out),
        EmulateCommand::Ping {
            file,
            from,
            to,
            count,
            ttl,
            ..
        } => one(
            file,
            &format!("ping {from} {to}"),
            Echoes {
                count: *count,
                ttl: *ttl,
            },
            ctx,
            out,
        ),
        EmulateCommand::Ssh {
            file,
            from,
            host,
            port,
            ..
        } => one(
            file,
            &format!("ssh {from} {host}:{port}"),
            Echoes::ONE,
            ctx,
            out,
        ),
        EmulateCommand::Curl {
            file, from, url, ..
        } => one(file, &format!("curl {from} {url}"), Echoes::ONE, ctx, out),
        EmulateCommand::Serve { state } => match emulate::serve_lab(state) {
            Ok(()) => Ok(EXIT_OK),
            Err(e) => Ok(fail(&e)),
        },
    }
}

fn print_up(net: &Network, lab: &Lab, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "lab {} is up: {} nodes, {} segments, {} listeners{}",
        lab.layout.lab,
        net.nodes.len(),
        net.segments.len(),
        lab.listeners,
        lab.server
            .map(|s| format!(" (served by pid {})", s.pid))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "  switch (a bridge per segment): {}",
        lab.layout.switch
    )?;
    for node in &net.nodes {
        writeln!(
            out,
            "  {:20} ip netns exec {} bash",
            node.name,
            lab.layout.node(node.id)
        )?;
    }
    for w in &lab.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out, "  state: {}", lab.state_path.display())?;
    writeln!(
        out,
        "remove it with: reachlab emulate down <file> (or --all)"
    )
}

fn down(file: Option<&Path>, all: bool, out: &mut impl Write) -> std::io::Result<u8> {
    let dir = emulate::state_dir();
    let results = if all {
        emulate::down_all(&dir)
    } else if let Some(file) = file {
        vec![emulate::down(file, &dir)]
    } else {
        return Ok(usage("give a FILE or --all"));
    };
    let mut code = EXIT_OK;
    for result in &results {
        match result {
            Ok(r) => {
                writeln!(
                    out,
                    "lab {} ({}): removed {} namespaces{}",
                    r.lab,
                    r.file.display(),
                    r.namespaces_removed,
                    if r.server_stopped {
                        ", stopped its listeners"
                    } else {
                        ""
                    }
                )?;
                // What the state file listed but is not the lab's: reported, left alone.
                let mut stderr = std::io::stderr();
                for refusal in &r.refused {
                    let _ = writeln!(
                        stderr,
                        "reachlab: lab {}: refused, left alone: {refusal}\n  hint: {}",
                        r.lab,
                        refusal.hint()
                    );
                    code = code.max(EXIT_FAILED);
                }
            }
            Err(e) => code = code.max(fail(e)),
        }
    }
    if all && results.is_empty() {
        writeln!(out, "no labs are up")?;
    }
    let strays = emulate::strays(&dir);
    if !strays.is_empty() {
        writeln!(
            out,
            "{} namespaces are named like a lab's, but no state file lists them; they are left alone:",
            strays.len()
        )?;
        for s in strays {
            writeln!(out, "  {s}   (remove by hand: ip netns del {s})")?;
        }
    }
    Ok(code)
}

fn list(out: &mut impl Write) -> std::io::Result<u8> {
    let labs = match emulate::LabState::all(&emulate::state_dir()) {
        Ok(labs) => labs,
        Err(e) => return Ok(fail(&e)),
    };
    if labs.is_empty() {
        writeln!(out, "no labs are up")?;
    }
    for (id, path) in labs {
        match emulate::LabState::load(&path) {
            Ok(s) => writeln!(
                out,
                "{id}  {}  {} namespaces{}",
                s.file.display(),
                s.namespaces.len(),
                if s.complete { "" } else { "  (incomplete)" }
            )?,
            Err(e) => writeln!(out, "{id}  unreadable state: {e}")?,
        }
    }
    Ok(EXIT_OK)
}

/// Parses "ping FROM TO", "ssh FROM HOST[:PORT]", "curl FROM URL", "tcp FROM TO:PORT",
/// "udp FROM TO:PORT" into a request.
fn parse_probe(net: &Network, text: &str) -> Result<ProbeRequest, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [tool, from, target] = words[..] else {
        return Err(format!(
            "`{text}`: write TOOL FROM TARGET, e.g. \"ping pc1 10.0.0.5\""
        ));
    };
    let from = probe_run::node_named(net, from).map_err(|e| e.to_string())?;
    let split_port = |t: &str, default: Option<u16>| -> Result<(String, Port), String> {
        let (host, port) = match t.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a port"))?,
            ),
            None => (
                t,
                default.ok_or_else(|| format!("`{t}`: give the port as HOST:PORT"))?,
            ),
        };
        let port = Port::new(port).ok_or_else(|| "port 0 cannot be connected to".to_owned())?;
        Ok((host.to_owned(), port))
    };
    let (probe, written) = match tool {
        "ping" => (Probe::Ping, target.to_owned()),
        "ssh" => {
            let (h, port) = split_port(target, Some(22))?;
            (Probe::Ssh { port }, h)
        }
        "tcp" => {
            let (h, port) = split_port(target, None)?;
            (Probe::Tcp { port }, h)
        }
        "udp" => {
            let (h, port) = split_port(target, None)?;
            (Probe::Udp { port }, h)
        }
        "curl" => {
            let u =
                topology::units::parse_http_url(target).map_err(|e| format!("`{target}`: {e}"))?;
            let port =
                Port::new(u.port).ok_or_else(|| "port 0 cannot be connected to".to_owned())?;
            (Probe::Curl { port, path: u.path }, u.host)
        }
        other => {
            return Err(format!(
                "`{other}` is not a probe: ping, ssh, curl, tcp or udp"
            ));
        }
    };
    let dst = probe_run::target_address(net, &written).map_err(|e| e.to_string())?;
    Ok(ProbeRequest {
        from,
        written,
        dst,
        probe,
        count: 1,
        wait: None,
        ttl: None,
    })
}

/// How the pings given on the command line send their echoes (`-c`, `-t`).
#[derive(Debug, Clone, Copy)]
struct Echoes {
    count: u16,
    ttl: Option<u8>,
}

impl Echoes {
    const ONE: Echoes = Echoes {
        count: 1,
        ttl: None,
    };
}

fn one(
    file: &Path,
    probe: &str,
    echoes: Echoes,
    ctx: &Context,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    check_files(
        &[file.to_owned()],
        &[probe.to_owned()],
        How {
            echoes,
            expectations: false,
            dockerd: false,
        },
        ctx,
        out,
    )
}

fn check(
    paths: &[PathBuf],
    probes: &[String],
    dockerd: bool,
    ctx: &Context,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    let how = How {
        echoes: Echoes::ONE,
        expectations: true,
        dockerd,
    };
    check_files(paths, probes, how, ctx, out)
}

/// How `check_files` runs: a ping's echoes, whether the files' `expect:` entries are run, and
/// whether the Docker hosts run the real dockerd.
struct How {
    echoes: Echoes,
    expectations: bool,
    dockerd: bool,
}

/// Says that the lab of `file` is up with dockerd (`up_with`) or without it, unlike this
/// check; the exit code.
fn other_mode(file: &Path, up_with: bool) -> u8 {
    let with = if up_with { "with" } else { "without" };
    let _ = writeln!(
        std::io::stderr(),
        "reachlab: the lab of {} is up {with} dockerd: check it {with} --dockerd, or `reachlab emulate down` it first",
        file.display(),
    );
    EXIT_INVALID
}

/// Says that the run was interrupted and what became of the lab; the exit code.
fn interrupted(file: &Path, built_here: bool) -> u8 {
    let _ = writeln!(
        std::io::stderr(),
        "reachlab: interrupted while comparing {} with the kernel; {}",
        file.display(),
        if built_here {
            "the lab built for this check was removed"
        } else {
            "its lab stays up (`reachlab emulate down` removes it)"
        }
    );
    EXIT_INTERRUPTED
}

/// Compares the probes (the files' `expect:` entries when `expectations`, and `probes`, a ping
/// sending its `echoes`) with the kernel, file by file. Ctrl-C stops at once: the lab built
/// for the run is removed (one `up` left running stays), and the exit code is 130.
fn check_files(
    paths: &[PathBuf],
    probes: &[String],
    how: How,
    ctx: &Context,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    let (echoes, expectations, dockerd) = (how.echoes, how.expectations, how.dockerd);
    let files = match topology::collect_topology_files(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => return Ok(usage("no *.yaml or *.yml files given")),
        Err(e) => return Ok(usage(&format!("cannot list the files: {e}"))),
    };
    if !probes.is_empty() && files.len() != 1 {
        return Ok(usage("--probe needs exactly one topology file"));
    }
    let config = SimConfig {
        seed: ctx.seed,
        ..SimConfig::default()
    };
    let interrupt = interrupt_flag();
    let is_interrupted = || {
        interrupt
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    };
    let (mut tally, mut code) = (emulate::Tally::default(), EXIT_OK);
    let mut not_compared: Vec<&'static str> = Vec::new();
    let mut records = Vec::new();
    let started = std::time::Instant::now();
    for file in &files {
        if is_interrupted() {
            return Ok(interrupted(file, false));
        }
        let net = match load(file) {
            Ok(n) => n,
            Err(c) => {
                code = code.max(c);
                continue;
            }
        };
        let mut planned = if expectations {
            emulate::expectations(&net)
        } else {
            Vec::new()
        };
        for text in probes {
            match parse_probe(&net, text) {
                Ok(mut request) => {
                    if request.probe == Probe::Ping {
                        request.count = echoes.count;
                        request.ttl = echoes.ttl;
                    }
                    planned.push(Planned {
                        request,
                        expectation: None,
                    })
                }
                Err(e) => return Ok(usage(&e)),
            }
        }
        if planned.is_empty() {
            continue;
        }
        // A lab `up` left running, or one built for this run (removed when `lab` drops).
        let (lab, built_here) = match Lab::attach(&net, file, &emulate::state_dir()) {
            // `check` runs a lab in the mode asked for; `ping`, `ssh` and `curl` (no
            // expectations) take a lab as it is up.
            Ok(lab) if expectations && lab.dockerd != dockerd => {
                return Ok(other_mode(file, lab.dockerd));
            }
            Ok(lab) => (lab, false),
            Err(EmulateError::NotUp { .. }) => {
                match emulate::up(&net, file, &options_with(interrupt.clone(), dockerd)) {
                    Ok(lab) => (lab, true),
                    Err(EmulateError::Interrupted | EmulateError::InterruptedBefore { .. }) => {
                        return Ok(interrupted(file, true));
                    }
                    Err(e) => return Ok(fail(&e)),
                }
            }
            Err(e) => return Ok(fail(&e)),
        };
        let options = emulate::CompareOptions {
            warnings: lab.warnings.clone(),
            interrupt: interrupt.clone(),
        };
        let result = emulate::compare_with(&net, &lab.layout, &planned, &config, &options);
        drop(lab);
        let rows = match result {
            Ok(rows) => rows,
            Err(EmulateError::Interrupted) => return Ok(interrupted(file, built_here)),
            Err(e) => return Ok(fail(&e)),
        };
        tally.add(emulate::Tally::of(&rows));
        for n in rows.iter().flat_map(|r| &r.not_compared) {
            if !not_compared.contains(&n.what) {
                not_compared.push(n.what);
            }
        }
        if ctx.json {
            let file = file.display().to_string();
            for row in &rows {
                let record =
                    serde_json::to_value(row.json(&file)).map_err(std::io::Error::other)?;
                records.push(record);
            }
        } else {
            writeln!(out, "== {}", file.display())?;
            out.write_all(reachlab::render::emulate_table(&rows, ctx.palette).as_bytes())?;
        }
    }
    if ctx.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        )?;
    } else if tally.total() > 0 || code == EXIT_OK {
        let partly = if tally.partly > 0 {
            format!(
                ", {} agree on all but what was not compared ({}; see the rows)",
                tally.partly,
                not_compared.join(", ")
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "\n{} probes in {} file{}: {} agree with the kernel{partly}, {} do not ({:.1} s)",
            tally.total(),
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            tally.agree,
            tally.differ,
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(if code != EXIT_OK {
        code
    } else if tally.differ > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

pub fn live(command: &LiveCommand, ctx: &Context, out: &mut impl Write) -> std::io::Result<u8> {
    let host = match emulate::live::snapshot() {
        Ok(h) => h,
        Err(e) => return Ok(fail(&e)),
    };
    let yaml = emulate::live::to_yaml(&host);
    if matches!(command, LiveCommand::Show { .. }) && ctx.yaml {
        out.write_all(yaml.as_bytes())?;
        return Ok(EXIT_OK);
    }
    let net = match topology::load_str("live.yaml", &yaml) {
        Ok(l) => l.network,
        Err(report) => {
            return Ok(usage(&format!(
                "this machine's network does not make a valid topology ({} problems); `reachlab live show --format yaml` prints it",
                report.diagnostics.len()
            )));
        }
    };
    let (probe, target) = match command {
        LiveCommand::Show { .. } => {
            if ctx.json {
                let text = serde_json::to_string_pretty(&reachlab::render::show_json(&net, None))
                    .unwrap_or_default();
                writeln!(out, "{text}")?;
            } else {
                out.write_all(reachlab::render::show_text(&net, None, ctx.palette).as_bytes())?;
            }
            return Ok(EXIT_OK);
        }
        LiveCommand::Ping { target, .. } => (Probe::Ping, target),
        LiveCommand::Tcp { target, port, .. } => match Port::new(*port) {
            Some(port) => (Probe::Tcp { port }, target),
            None => return Ok(usage("port 0 cannot be connected to")),
        },
    };
    let Ok(addr) = target.parse() else {
        return Ok(usage(&format!("`{target}`: give an IPv4 address")));
    };
    let probed = match emulate::live::probe(&net, probe, addr, target) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    let agree = probed.predicted_route == probed.kernel_route;
    if ctx.json {
        let v = LiveRecord {
            evidence: &probed.result.evidence,
            kernel_route: &probed.kernel_route,
            outcome: probed.result.outcome.name(),
            predicted_route: &probed.predicted_route,
            route_agrees: agree,
            target,
            ttl: probed.result.ttl,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
    } else {
        writeln!(out, "route predicted:  {}", probed.predicted_route)?;
        writeln!(
            out,
            "route (kernel):   {}   {}",
            probed.kernel_route,
            if agree { "agree" } else { "DIFFER" }
        )?;
        writeln!(
            out,
            "result (kernel):  {}{}  ({}, {:.1} ms)",
            probed.result.outcome,
            probed
                .result
                .ttl
                .map(|t| format!(" ttl={t}"))
                .unwrap_or_default(),
            probed.result.evidence,
            probed.result.elapsed.as_secs_f64() * 1e3
        )?;
    }
    Ok(if !agree {
        EXIT_FAILED
    } else if probed.result.outcome == Outcome::Reply {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `live ping|tcp --format json`. Fields in alphabetical order: the order of this output since
/// its first version.
#[derive(serde::Serialize)]
struct LiveRecord<'a> {
    /// What the kernel showed (the reply, the ICMP error, the reset).
    evidence: &'a str,
    kernel_route: &'a str,
    outcome: &'static str,
    predicted_route: &'a str,
    route_agrees: bool,
    target: &'a str,
    ttl: Option<u8>,
}
