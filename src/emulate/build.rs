//! `up` and `down`: a network built in namespaces, and removed again. One namespace per node,
//! one switch namespace with a Linux bridge per segment, a veth pair per interface (the node's
//! end, with the file's name, MAC and MTU, in the node's namespace; the other end a port of the
//! segment's bridge), addresses, static routes, sysctls, an nftables table per node with rules,
//! netem where a segment has latency or loss, and the listeners.
//!
//! Safety: every object is inside a namespace this lab created (nothing is configured in the
//! root namespace; the only root-namespace action is `ip netns add`/`del` of its own names),
//! the state file lists every namespace *before* it is created, a failure or Ctrl-C removes
//! what was built, and `down` removes what the state file lists, but only namespaces named for
//! its lab and only processes `/proc` shows to be reachlab serving or building it.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::model::{Network, Node, NodeId, Route, RouteKind, Segment};

use super::EmulateError;
use super::dockerd::{self, Dockerd};
use super::error::{Leftovers, Refusal};
use super::names::{LabId, Layout, bridge, port};
use super::netns::{self, Script};
use super::nft;
use super::serve::Servers;
use super::state::{self, LabState, OwnedProcess};

/// Neighbour resolution in emulated labs: 3 probes 250 ms apart (the kernel's default is 1 s
/// apart), so a missing neighbour is reported in under a second; the outcome is the same.
pub const ARP_RETRANS_MS: u32 = 250;

/// Who serves the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerHost {
    /// A detached `reachlab emulate serve` process started from this executable; it outlives
    /// `up`, and `down` stops it.
    Process(PathBuf),
    /// Threads of the calling process, stopped when the [`Lab`] is dropped.
    InProcess,
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where state files live (see [`super::state_dir`]).
    pub state_dir: PathBuf,
    pub listeners: ListenerHost,
    /// Set (by a signal handler) to stop building and remove what was built.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Each Docker host runs the real dockerd, which makes the Docker networks, containers
    /// and rules (see `dockerd`), instead of the emulator building the lowering.
    pub dockerd: bool,
}

impl UpOptions {
    /// In-process listeners, the default state directory, no interruption.
    pub fn in_process() -> Self {
        UpOptions {
            state_dir: super::state_dir(),
            listeners: ListenerHost::InProcess,
            interrupt: None,
            dockerd: false,
        }
    }
}

/// A lab that is up. Dropping it removes it, unless [`Lab::keep`] handed it over to `down`.
pub struct Lab {
    pub layout: Layout,
    pub state_path: PathBuf,
    /// What could not be emulated.
    pub warnings: Vec<String>,
    /// How many listeners serve.
    pub listeners: usize,
    /// The listener process, when there is one.
    pub server: Option<OwnedProcess>,
    /// Whether the Docker hosts run the real dockerd (`--dockerd`).
    pub dockerd: bool,
    servers: Option<Servers>,
    keep: bool,
}

impl Lab {
    /// Leaves the lab up after this handle is gone; `reachlab emulate down` removes it.
    pub fn keep(mut self) {
        self.keep = true;
    }

    /// A handle on a lab a previous `up` left running (it is not removed when dropped).
    pub fn attach(net: &Network, file: &Path, state_dir: &Path) -> Result<Lab, EmulateError> {
        let (lab, state_path) = identify(file, state_dir)?;
        if !state_path.exists() {
            return Err(EmulateError::NotUp {
                file: file.to_owned(),
                state: state_path,
            });
        }
        let state = LabState::load(&state_path)?;
        let layout = Layout::new(lab, net);
        if !state.complete || layout.namespaces().iter().any(|n| !netns::exists(n)) {
            return Err(EmulateError::State {
                path: state_path,
                message: "the lab is incomplete (interrupted `up`?) or the file changed since `up`"
                    .into(),
            });
        }
        Ok(Lab {
            layout,
            state_path,
            warnings: state.warnings,
            listeners: net.nodes.iter().map(|n| n.listeners.len()).sum(),
            server: state.server,
            dockerd: !state.dockerd.is_empty(),
            servers: None,
            keep: true,
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Sockets keep a namespace alive: close them before the namespaces go.
        self.servers = None;
        if !self.keep {
            let _ = down_state(&self.state_path, &self.layout.lab, None);
        }
    }
}

/// Checks that this process can build labs: root, `ip`, and `nft` when `net` has rules.
pub fn preflight(net: &Network) -> Result<(), EmulateError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(EmulateError::NotRoot);
    }
    tool(
        "ip",
        &["-V"],
        "create namespaces, links and routes",
        "iproute2",
    )?;
    if net.nodes.iter().any(|n| n.netfilter.is_some()) {
        tool(
            "nft",
            &["--version"],
            "load the nodes' NAT and filter rules",
            "nftables",
        )?;
    }
    Ok(())
}

fn tool(
    name: &'static str,
    args: &[&str],
    purpose: &'static str,
    package: &'static str,
) -> Result<(), EmulateError> {
    use std::os::unix::process::ExitStatusExt as _;
    match Command::new(name).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        // Killed by a signal (Ctrl-C reaches the whole process group): it is there.
        Ok(o) if o.status.signal().is_some() => Err(EmulateError::InterruptedBefore {
            what: format!("checking that `{name}` is installed"),
        }),
        _ => Err(EmulateError::MissingTool {
            tool: name,
            purpose,
            package,
        }),
    }
}

/// The lab id and state file of a topology file.
pub fn identify(file: &Path, state_dir: &Path) -> Result<(LabId, PathBuf), EmulateError> {
    let canonical = std::fs::canonicalize(file)
        .map_err(|e| EmulateError::io(format!("reading {}", file.display()), e))?;
    let lab = LabId::for_file(&canonical, state_dir);
    let path = LabState::path(state_dir, &lab);
    Ok((lab, path))
}

/// Builds `net` (loaded from `file`) in namespaces.
pub fn up(net: &Network, file: &Path, options: &UpOptions) -> Result<Lab, EmulateError> {
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    preflight(net).map_err(|e| match e {
        EmulateError::MissingTool { tool, .. } if interrupted() => {
            EmulateError::InterruptedBefore {
                what: format!("checking that `{tool}` is installed"),
            }
        }
        e => e,
    })?;
    let made = if options.dockerd {
        dockerd_preflight()?;
        Dockerd::plan(net)?
    } else {
        Dockerd::none()
    };
    let (lab, state_path) = identify(file, &options.state_dir)?;
    state::prepare_dir(&options.state_dir)?;
    let layout = Layout::new(lab.clone(), net);
    let leftovers = if state_path.symlink_metadata().is_ok() {
        Some(Leftovers::StateFile(state_path.clone()))
    } else {
        let existing: Vec<String> = layout
            .namespaces()
            .into_iter()
            .filter(|n| netns::exists(n))
            .collect();
        (!existing.is_empty()).then_some(Leftovers::Namespaces(existing))
    };
    if let Some(leftovers) = leftovers {
        return Err(EmulateError::AlreadyUp {
            lab: lab.to_string(),
            file: file.to_owned(),
            leftovers,
        });
    }
    let mut state = LabState {
        lab: lab.to_string(),
        file: std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned()),
        namespaces: layout.namespaces(),
        server: None,
        builder: OwnedProcess::of(std::process::id() as i32),
        complete: false,
        warnings: Vec::new(),
        dockerd: made
            .engines
            .iter()
            .enumerate()
            .map(|(i, e)| state::DockerdRun {
                dir: dockerd::dir(&options.state_dir, &lab, i),
                namespace: layout.node(e.host).to_owned(),
                process: None,
            })
            .collect(),
    };
    // Written before anything exists: whatever happens next, `down` knows what to remove.
    state.save(&state_path)?;
    let mut lab = Lab {
        layout,
        state_path,
        warnings: Vec::new(),
        listeners: 0,
        server: None,
        dockerd: options.dockerd,
        servers: None,
        keep: false,
    };
    // On any error (or Ctrl-C) `lab` is dropped here, which removes everything.
    build(net, options, &made, &mut lab, &mut state)?;
    state.warnings = lab.warnings.clone();
    state.complete = true;
    state.save(&lab.state_path)?;
    Ok(lab)
}

fn build(
    net: &Network,
    options: &UpOptions,
    made: &Dockerd,
    lab: &mut Lab,
    state: &mut LabState,
) -> Result<(), EmulateError> {
    let interrupted = || {
        if options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            Err(EmulateError::Interrupted)
        } else {
            Ok(())
        }
    };
    let layout = lab.layout.clone();
    check_bridge_ports(net)?;
    // dockerd makes its containers' namespaces; they are named once they exist.
    let namespaces: Vec<String> = layout
        .namespaces()
        .into_iter()
        .filter(|ns| {
            !net.nodes
                .iter()
                .any(|n| made.makes_node(n.id) && layout.node(n.id) == ns)
        })
        .collect();
    netns::add_all(&namespaces)?;
    interrupted()?;

    // The switch: a bridge per segment. With br_netfilter loaded, bridged frames would pass the
    // switch namespace's netfilter hooks: a switch does not filter.
    netns::sysctls(
        &layout.switch,
        vec![
            setting("net/bridge/bridge-nf-call-iptables", "0", true),
            setting("net/bridge/bridge-nf-call-arptables", "0", true),
        ],
    )?;
    netns::ip_batch(
        Some(&layout.switch),
        &switch_script(net)?,
        "building the switch",
    )?;
    interrupted()?;

    for node in net.nodes.iter().filter(|n| !made.makes_node(n.id)) {
        build_node(net, node, &layout, made)?;
        interrupted()?;
    }

    // Plug every interface's peer into its segment's bridge: the switch's, or a node's.
    let plugs = plug_scripts(net, &layout, made)?;
    for (ns, script) in &plugs {
        if !script.is_empty() {
            netns::ip_batch(Some(ns), script, "plugging the interfaces in")?;
        }
    }
    interrupted()?;

    for node in net.nodes.iter().filter(|n| !made.makes_node(n.id)) {
        routes(net, node, &layout)?;
        if let Some(nf) = node
            .netfilter
            .as_ref()
            .filter(|_| made.on_host(node.id).is_none())
        {
            let ruleset = nft::ruleset(net, nf)?;
            netns::exec(
                layout.node(node.id),
                &["nft", "-f", "-"],
                Some(&ruleset),
                &format!("loading the rules of `{}` with nft", node.name),
            )?;
        }
        interrupted()?;
    }
    for (i, engine) in made.engines.iter().enumerate() {
        run_dockerd(net, engine, i, lab, state, options)?;
        interrupted()?;
    }
    lab.warnings.extend(netem(net, &layout));
    interrupted()?;
    let bridges: Vec<&str> = plugs
        .iter()
        .filter(|(_, script)| !script.is_empty())
        .map(|(ns, _)| ns.as_str())
        .chain(made.engines.iter().map(|e| layout.node(e.host)))
        .collect();
    lab.warnings.extend(wait_for_ports(&bridges)?);
    interrupted()?;

    lab.listeners = net.nodes.iter().map(|n| n.listeners.len()).sum();
    if lab.listeners > 0 {
        match &options.listeners {
            ListenerHost::InProcess => {
                lab.servers = Some(Servers::start(&made.servable(net), &layout)?);
            }
            ListenerHost::Process(exe) => {
                let server = spawn_server(exe, &lab.state_path, state)?;
                lab.server = Some(server);
            }
        }
    }
    interrupted()
}

/// How long `up` waits for every bridge port to come up.
const PORTS_UP_WITHIN: Duration = Duration::from_secs(3);

/// Waits until the bridges in `namespaces` forward through every port (docs/linux-semantics.md,
/// "Links coming up"); a warning when some port is still down after [`PORTS_UP_WITHIN`].
fn wait_for_ports(namespaces: &[&str]) -> Result<Vec<String>, EmulateError> {
    let start = Instant::now();
    let mut waiting: Vec<&str> = namespaces.to_vec();
    loop {
        let mut still = Vec::new();
        for ns in waiting {
            if !netns::bridge_ports_up(ns)? {
                still.push(ns);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        if start.elapsed() > PORTS_UP_WITHIN {
            return Ok(waiting
                .iter()
                .map(|ns| {
                    format!(
                        "a bridge port in {ns} was still down after {} s: early probes may be lost",
                        PORTS_UP_WITHIN.as_secs()
                    )
                })
                .collect());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn setting(key: &str, value: impl ToString, optional: bool) -> (String, String, bool) {
    (key.to_owned(), value.to_string(), optional)
}

/// Every `ip`/`tc` script `up` runs for `net`, with the namespace each runs in, in order: the
/// switch, each node's interfaces, the bridge ports, each node's routes, then netem. For
/// inspection (tests read them back); `up` builds the same scripts step by step.
pub fn scripts(net: &Network, layout: &Layout) -> Result<Vec<(String, Script)>, EmulateError> {
    let mut out = vec![(layout.switch.clone(), switch_script(net)?)];
    for node in &net.nodes {
        out.push((
            layout.node(node.id).to_owned(),
            node_script(net, node, layout, &Dockerd::none())?,
        ));
    }
    out.extend(plug_scripts(net, layout, &Dockerd::none())?);
    for node in &net.nodes {
        out.push((layout.node(node.id).to_owned(), route_script(net, node)?));
    }
    for segment in net.segments.iter().filter(|s| s.bridge.is_none()) {
        if let Some(script) = netem_script(segment)? {
            out.push((layout.switch.clone(), script));
        }
    }
    Ok(out)
}

/// The plug scripts, with the namespace each runs in: the switch's, then each bridge owner's.
fn plug_scripts(
    net: &Network,
    layout: &Layout,
    made: &Dockerd,
) -> Result<Vec<(String, Script)>, EmulateError> {
    let mut out = vec![(layout.switch.clone(), plug_script(net, None, made)?)];
    for node in &net.nodes {
        let owns = net
            .segments
            .iter()
            .any(|s| s.bridge.is_some_and(|b| net.interface(b).node == node.id));
        if owns {
            out.push((
                layout.node(node.id).to_owned(),
                plug_script(net, Some(node.id), made)?,
            ));
        }
    }
    Ok(out)
}

/// The switch namespace: loopback up, one bridge per segment.
fn switch_script(net: &Network) -> Result<Script, EmulateError> {
    let mut script = Script::new("ip");
    script.line(["link", "set", "dev", "lo", "up"])?;
    // A segment that is a node's bridge lives in that node's namespace instead.
    for segment in net.segments.iter().filter(|s| s.bridge.is_none()) {
        let name = bridge(segment.id);
        script.line(["link", "add", "name", &name, "type", "bridge"])?;
        script.line([
            "link",
            "set",
            "dev",
            &name,
            "mtu",
            &segment.mtu.to_string(),
            "up",
        ])?;
    }
    Ok(script)
}

/// Every interface's peer made a port of its segment's bridge: the switch's, or with `owner`
/// the bridges of that node (run in its namespace). Not those of nodes dockerd makes.
fn plug_script(
    net: &Network,
    owner: Option<NodeId>,
    made: &Dockerd,
) -> Result<Script, EmulateError> {
    let mut script = Script::new("ip");
    for iface in net.interfaces.iter().filter(|i| !made.makes_node(i.node)) {
        let segment = net.segment(iface.segment);
        let master = match segment.bridge {
            None if owner.is_none() => bridge(iface.segment),
            Some(b) if b != iface.id && Some(net.interface(b).node) == owner => {
                net.interface(b).name.clone()
            }
            _ => continue,
        };
        script.line([
            "link",
            "set",
            "dev",
            &port(iface.id),
            "master",
            &master,
            "mtu",
            &segment.mtu.to_string(),
            "up",
        ])?;
        if iface.hairpin && owner.is_some() {
            script.line([
                "link",
                "set",
                "dev",
                &port(iface.id),
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
        }
    }
    Ok(script)
}

/// The namespace where the bridge of `segment` lives: its owner's, or the switch.
fn bridge_home<'l>(net: &Network, layout: &'l Layout, segment: &Segment) -> &'l str {
    match segment.bridge {
        Some(b) => layout.node(net.interface(b).node),
        None => &layout.switch,
    }
}

/// A node that owns a bridge must not have an interface named like one of the bridge's ports
/// (`rlp<interface>`), which the emulator creates in its namespace.
fn check_bridge_ports(net: &Network) -> Result<(), EmulateError> {
    for segment in &net.segments {
        let Some(b) = segment.bridge else { continue };
        let owner = net.node(net.interface(b).node);
        for &i in segment.interfaces.iter().filter(|&&i| i != b) {
            if net.interfaces_of(owner).any(|o| o.name == port(i)) {
                return Err(EmulateError::Command {
                    what: format!("building the bridge `{}`", net.interface(b).name),
                    message: format!(
                        "node `{}` has an interface named `{}`, the name the emulator gives a \
                         port of that bridge; rename the interface",
                        owner.name,
                        port(i)
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A node's loopback, interfaces (veth pairs, the peer moved to the switch) and addresses.
/// Names follow `name`/`dev`, where `ip` takes any word for a device.
fn node_script(
    net: &Network,
    node: &Node,
    layout: &Layout,
    made: &Dockerd,
) -> Result<Script, EmulateError> {
    let mut script = Script::new("ip");
    script.line(["link", "set", "dev", "lo", "up"])?;
    for iface in net.interfaces_of(node).filter(|i| !made.makes_iface(i.id)) {
        let segment = net.segment(iface.segment);
        let mtu = segment.mtu.to_string();
        let mac = iface.mac.to_string();
        if segment.bridge == Some(iface.id) {
            // The node's bridge itself; its ports are plugged in once every node is built.
            script.line([
                "link",
                "add",
                "name",
                &iface.name,
                "address",
                &mac,
                "mtu",
                &mtu,
                "type",
                "bridge",
            ])?;
        } else {
            script.line([
                "link",
                "add",
                "name",
                &iface.name,
                "address",
                &mac,
                "mtu",
                &mtu,
                "type",
                "veth",
                "peer",
                "name",
                &port(iface.id),
                "netns",
                bridge_home(net, layout, segment),
            ])?;
        }
        script.line(["link", "set", "dev", &iface.name, "up"])?;
        for addr in &iface.addresses {
            script.line(["addr", "add", &addr.to_string(), "dev", &iface.name])?;
        }
    }
    Ok(script)
}

/// Sysctls, interfaces and addresses of one node; a Docker host's forwarding as it was before
/// dockerd, when dockerd runs there.
fn build_node(
    net: &Network,
    node: &Node,
    layout: &Layout,
    made: &Dockerd,
) -> Result<(), EmulateError> {
    let ns = layout.node(node.id);
    let forwarding = match made.on_host(node.id) {
        Some(engine) => engine.spec.forwarding_before,
        None => node.forwarding,
    };
    // Before any interface exists: `default` settings apply to interfaces created later.
    netns::sysctls(ns, base_settings(node, forwarding))?;
    // br_netfilter: whether the node's bridges hand what they carry to its iptables. Needed
    // when the file says so; without the module nothing is handed anyway.
    let owns_bridge = net
        .segments
        .iter()
        .any(|s| s.bridge.is_some_and(|b| net.interface(b).node == node.id));
    if owns_bridge {
        let on = node.br_netfilter;
        netns::sysctls(
            ns,
            vec![
                setting("net/bridge/bridge-nf-call-iptables", u8::from(on), !on),
                setting("net/bridge/bridge-nf-call-arptables", 0, true),
            ],
        )?;
    }
    netns::ip_batch(
        Some(ns),
        &node_script(net, node, layout, made)?,
        &format!("building `{}`", node.name),
    )?;
    // A new namespace has no `neigh/default` to inherit from: set each interface. And
    // route_localnet and proxy_arp where the file says so; proxy ARP answers at once
    // (proxy_delay=0, as Calico sets it; the kernel's default waits up to 0.8 s at random).
    let localnet = net
        .interfaces_of(node)
        .filter(|i| i.route_localnet && !made.makes_iface(i.id))
        .map(|i| {
            setting(
                &format!("net/ipv4/conf/{}/route_localnet", i.name),
                1,
                false,
            )
        });
    let proxy_arp = net
        .interfaces_of(node)
        .filter(|i| i.proxy_arp && !made.makes_iface(i.id))
        .flat_map(|i| {
            [
                setting(&format!("net/ipv4/conf/{}/proxy_arp", i.name), 1, false),
                setting(&format!("net/ipv4/neigh/{}/proxy_delay", i.name), 0, false),
            ]
        });
    netns::sysctls(
        ns,
        net.interfaces_of(node)
            .filter(|i| !made.makes_iface(i.id))
            .map(|i| {
                setting(
                    &format!("net/ipv4/neigh/{}/retrans_time_ms", i.name),
                    ARP_RETRANS_MS,
                    false,
                )
            })
            .chain(localnet)
            .chain(proxy_arp)
            .collect(),
    )
}

/// The settings of every node's namespace, before its interfaces exist.
fn base_settings(node: &Node, forwarding: bool) -> Vec<(String, String, bool)> {
    vec![
        // The kernel's default, whatever the host has.
        setting("net/ipv4/conf/all/rp_filter", 0, false),
        setting("net/ipv4/conf/default/rp_filter", 0, false),
        setting("net/ipv4/ip_forward", u8::from(forwarding), false),
        // Every probe is judged as on a fresh network: ICMP errors are not rate limited
        // (neither per destination nor by the global budget), so earlier probes cannot
        // silence a router for later ones.
        setting("net/ipv4/icmp_ratelimit", 0, false),
        setting("net/ipv4/icmp_ratemask", 0, false),
        setting("net/ipv4/ip_default_ttl", node.os.initial_ttl(), false),
    ]
}

/// The node's static routes (connected ones come from its addresses): those without a
/// gateway first, since the kernel takes a gateway only when a link route reaches it
/// (fib_check_nh), and that may be a `dev`-only route listed after the gateway's.
fn route_script(net: &Network, node: &Node) -> Result<Script, EmulateError> {
    let mut script = Script::new("ip");
    let statics = node
        .routes
        .routes()
        .iter()
        .filter(|r| r.kind == RouteKind::Static);
    let (link, gateway): (Vec<&Route>, Vec<&Route>) = statics.partition(|r| r.gateway.is_none());
    for route in link.into_iter().chain(gateway) {
        let mut words = vec!["route".to_owned(), "add".into(), route.dst.to_string()];
        if let Some(gateway) = route.gateway {
            words.extend(["via".into(), gateway.to_string()]);
        }
        words.extend([
            "dev".into(),
            net.interface(route.dev).name.clone(),
            "metric".into(),
            route.metric.to_string(),
        ]);
        script.line(words)?;
    }
    for route in node.routes.rejects() {
        // `ip route add blackhole|unreachable|prohibit PREFIX metric M`: no device, no gateway.
        script.line([
            "route".to_owned(),
            "add".into(),
            route.kind.word().into(),
            route.dst.to_string(),
            "metric".into(),
            route.metric.to_string(),
        ])?;
    }
    Ok(script)
}

/// Adds the node's static routes.
fn routes(net: &Network, node: &Node, layout: &Layout) -> Result<(), EmulateError> {
    let script = route_script(net, node)?;
    if script.is_empty() {
        return Ok(());
    }
    netns::ip_batch(
        Some(layout.node(node.id)),
        &script,
        &format!("adding the routes of `{}`", node.name),
    )
}

/// The `tc` script of a segment's latency and loss, `None` when it has neither.
fn netem_script(segment: &Segment) -> Result<Option<Script>, EmulateError> {
    if segment.latency.is_zero() && segment.loss == 0.0 {
        return Ok(None);
    }
    let mut script = Script::new("tc");
    let delay = format!("{}us", segment.latency.as_micros());
    let loss = format!("{}%", segment.loss * 100.0);
    for &iface in &segment.interfaces {
        script.line([
            "qdisc",
            "add",
            "dev",
            &port(iface),
            "root",
            "netem",
            "delay",
            &delay,
            "loss",
            &loss,
        ])?;
    }
    Ok(Some(script))
}

/// Latency and loss of segments, on the bridge ports' egress: a frame crosses exactly one of
/// them per segment. Returns what could not be set (no `sch_netem` in this kernel, say).
fn netem(net: &Network, layout: &Layout) -> Vec<String> {
    let mut warnings = Vec::new();
    for segment in &net.segments {
        if let Some(b) = segment.bridge
            && (!segment.latency.is_zero() || segment.loss > 0.0)
        {
            warnings.push(format!(
                "segment `{}` is the bridge `{}` of `{}`: its latency and loss are not emulated",
                segment.name,
                net.interface(b).name,
                net.node(net.interface(b).node).name
            ));
            continue;
        }
        let script = match netem_script(segment) {
            Ok(Some(script)) => script,
            Ok(None) => continue,
            Err(e) => {
                warnings.push(format!(
                    "segment `{}`: latency and loss not emulated ({e})",
                    segment.name
                ));
                continue;
            }
        };
        let out = netns::batch_output(Some(&layout.switch), &script, "tc netem");
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => warnings.push(format!(
                "segment `{}`: latency and loss not emulated (tc netem: {})",
                segment.name,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
            )),
            Err(e) => warnings.push(format!(
                "segment `{}`: latency and loss not emulated (tc: {e})",
                segment.name
            )),
        }
    }
    warnings
}

/// Starts `reachlab emulate serve --state STATE` detached, records it, and waits until every
/// listener is bound.
fn spawn_server(
    exe: &Path,
    state_path: &Path,
    state: &mut LabState,
) -> Result<OwnedProcess, EmulateError> {
    let log = state_path.with_extension("log");
    let stderr = state::open_log(&log)?;
    // Absolute: `down` recognises the process by this argument (see `OwnedProcess::serves`).
    let state_arg = std::path::absolute(state_path).unwrap_or_else(|_| state_path.to_owned());
    let mut child = Command::new(exe)
        .args(["emulate", "serve", "--state"])
        .arg(&state_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        // Its own process group: a Ctrl-C meant for `up` does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| EmulateError::io(format!("starting {}", exe.display()), e))?;
    let pid = child.id() as i32;
    let server = OwnedProcess::of(pid).ok_or_else(|| EmulateError::Command {
        what: "starting the listeners".into(),
        message: format!("the listener process ended at once; see {}", log.display()),
    })?;
    state.server = Some(server);
    state.save(state_path)?;
    let stdout = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) if line.trim() == "READY" => Ok(server),
        _ => Err(EmulateError::Command {
            what: "starting the listeners".into(),
            message: format!(
                "the listener process did not report ready; see {}",
                log.display()
            ),
        }),
    }
}

/// What `down` removed, and what it refused to touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    pub lab: String,
    pub file: PathBuf,
    pub namespaces_removed: usize,
    pub server_stopped: bool,
    /// Entries of the state file that are not this lab's (a namespace not named for it, a
    /// process that is not reachlab serving or building it): left alone.
    pub refused: Vec<Refusal>,
}

/// `down` deletes namespaces: without root it could only fail half-way.
fn require_root() -> Result<(), EmulateError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(EmulateError::DownNotRoot)
    }
}

/// Removes the lab of `file`: the one whose state file records exactly that file.
pub fn down(file: &Path, state_dir: &Path) -> Result<DownReport, EmulateError> {
    require_root()?;
    let (lab, state_path, recorded) = match identify(file, state_dir) {
        Ok((lab, path)) => {
            let canonical = std::fs::canonicalize(file)
                .map_err(|e| EmulateError::io(format!("reading {}", file.display()), e))?;
            (lab, path, canonical)
        }
        // The file is gone since `up`: find its lab by the path the state file recorded.
        Err(e) => {
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
            let (lab, path) = LabState::all(state_dir)?
                .into_iter()
                .find(|(_, path)| LabState::load(path).is_ok_and(|s| s.file == absolute))
                .ok_or(e)?;
            (lab, path, absolute)
        }
    };
    if state_path.symlink_metadata().is_err() {
        return Err(EmulateError::NotUp {
            file: file.to_owned(),
            state: state_path,
        });
    }
    down_state(&state_path, &lab, Some(&recorded))
}

/// Removes every lab with a state file in `state_dir`.
pub fn down_all(state_dir: &Path) -> Vec<Result<DownReport, EmulateError>> {
    if let Err(e) = require_root() {
        return vec![Err(e)];
    }
    match LabState::all(state_dir) {
        Ok(labs) => labs
            .into_iter()
            .map(|(lab, path)| down_state(&path, &lab, None))
            .collect(),
        Err(e) => vec![Err(e)],
    }
}

/// Namespaces named like a lab's (`reachlab-<lab>-switch`, `reachlab-<lab>-n<i>-<node>`) that no
/// state file in `state_dir` lists: reported, never removed (nothing proves this project created
/// them). None when the state directory cannot be trusted (then nothing is known to be listed).
pub fn strays(state_dir: &Path) -> Vec<String> {
    let Ok(labs) = LabState::all(state_dir) else {
        return Vec::new();
    };
    let listed: Vec<String> = labs
        .into_iter()
        .filter_map(|(_, path)| LabState::load(&path).ok())
        .flat_map(|s| s.namespaces)
        .collect();
    netns::list()
        .into_iter()
        .filter(|n| LabId::of_namespace(n).is_some() && !listed.contains(n))
        .collect()
}

/// Stops the listener process, stops a still-running `up`, deletes the namespaces, and removes
/// the state file, in that order. The state file at `state_path` is lab `lab`'s (the id in its
/// name) and, when `file` is given, must record that topology file. Only this lab's namespaces
/// are deleted and only processes that `/proc` shows to be reachlab serving or building it are
/// signalled; anything else the state file lists is refused (see [`DownReport::refused`]).
fn down_state(
    state_path: &Path,
    lab: &LabId,
    file: Option<&Path>,
) -> Result<DownReport, EmulateError> {
    let state = LabState::load(state_path)?;
    let refuse = |refusal| EmulateError::Refused {
        path: state_path.to_owned(),
        refusal,
    };
    if state.lab != lab.as_str() {
        return Err(refuse(Refusal::LabMismatch {
            named: lab.to_string(),
            recorded: state.lab,
        }));
    }
    if let Some(file) = file
        && state.file != file
    {
        return Err(refuse(Refusal::FileMismatch {
            recorded: state.file,
            given: file.to_owned(),
        }));
    }
    let mut refused = Vec::new();
    // An `up` still building (this is a second process) would go on creating: stop it first.
    if let Some(builder) = state.builder
        && builder.pid != std::process::id() as i32
        && builder.is_alive()
    {
        match builder.builds(&state.file) {
            Ok(()) => stop(builder),
            Err(why) => refused.push(Refusal::ForeignProcess {
                pid: builder.pid,
                role: "builder",
                why,
            }),
        }
    }
    let mut server_stopped = false;
    if let Some(server) = state.server.filter(OwnedProcess::is_alive) {
        match server.serves(state_path) {
            Ok(()) => {
                stop(server);
                server_stopped = true;
            }
            Err(why) => refused.push(Refusal::ForeignProcess {
                pid: server.pid,
                role: "listener process",
                why,
            }),
        }
    }
    let mut errors = Vec::new();
    // dockerd before the namespaces: its containers first, then itself, its mounts, its
    // directory; only directories named for this lab beside its state file.
    let state_dir = state_path.parent().unwrap_or(Path::new("."));
    for run in &state.dockerd {
        if !dockerd::owns_dir(state_dir, lab, &run.dir) || !super::names::owns(lab, &run.namespace)
        {
            refused.push(Refusal::ForeignNamespace {
                name: run.dir.display().to_string(),
                lab: lab.to_string(),
            });
            continue;
        }
        if let Err(e) = dockerd::stop(run, &mut refused) {
            errors.push(e);
        }
    }
    let mut removed = 0;
    for name in &state.namespaces {
        if !super::names::owns(lab, name) {
            refused.push(Refusal::ForeignNamespace {
                name: name.clone(),
                lab: lab.to_string(),
            });
            continue;
        }
        match netns::delete(name) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(EmulateError::Command {
            what: format!("removing lab {}", state.lab),
            message: errors.join("; "),
        });
    }
    // `remove_file` removes a symlink itself, never what it points to.
    let _ = std::fs::remove_file(state_path.with_extension("log"));
    std::fs::remove_file(state_path)
        .map_err(|e| EmulateError::io(format!("removing {}", state_path.display()), e))?;
    Ok(DownReport {
        lab: state.lab,
        file: state.file,
        namespaces_removed: removed,
        server_stopped,
        refused,
    })
}

/// SIGTERM, then SIGKILL after 2 s, to a process this project started (checked by start time).
fn stop(process: OwnedProcess) {
    if !process.is_alive() {
        return;
    }
    let pid = Pid::from_raw(process.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while process.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if process.is_alive() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    // Our own child: reap it, so that it does not linger as a zombie.
    let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
}

/// The listener process: serves the lab's listeners until SIGTERM, or until the lab's switch
/// namespace is gone (so that it never outlives its lab).
pub fn serve_lab(state_path: &Path) -> Result<(), EmulateError> {
    let state = LabState::load(state_path)?;
    let report = crate::topology::load_path(&state.file).map_err(|r| EmulateError::State {
        path: state.file.clone(),
        message: format!("{} problems in the topology file", r.diagnostics.len()),
    })?;
    let lab = LabId::parse(&state.lab).ok_or_else(|| EmulateError::State {
        path: state_path.to_owned(),
        message: format!("`{}` is not a lab id", state.lab),
    })?;
    let layout = Layout::new(lab, &report.network);
    // With dockerd, docker-proxy binds the published ports: not served here.
    let net = if state.dockerd.is_empty() {
        report.network
    } else {
        Dockerd::plan(&report.network)?.servable(&report.network)
    };
    let term = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, term.clone())
            .map_err(|e| EmulateError::io("installing a signal handler", e))?;
    }
    let servers = Servers::start(&net, &layout)?;
    println!("READY");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    while !term.load(Ordering::Relaxed) && netns::exists(&layout.switch) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(servers);
    Ok(())
}

/// Checks the tools `--dockerd` runs.
fn dockerd_preflight() -> Result<(), EmulateError> {
    tool(
        "dockerd",
        &["--version"],
        "run the Docker hosts' dockerd",
        "docker.io",
    )?;
    tool(
        "docker",
        &["--version"],
        "ask dockerd for networks and containers",
        "docker.io",
    )?;
    tool(
        "nsenter",
        &["--version"],
        "start dockerd in a namespace",
        "util-linux",
    )?;
    tool("tar", &["--version"], "pack the containers' image", "tar")?;
    tool(
        "iptables",
        &["--version"],
        "add the DOCKER-USER rules",
        "iptables",
    )
}

/// Starts the dockerd of engine number `index` (recorded in the state before its directory
/// and once its process exists), then has it make the networks and the containers, and sets
/// the containers' namespaces as the emulator sets a node's.
fn run_dockerd(
    net: &Network,
    engine: &dockerd::Engine,
    index: usize,
    lab: &mut Lab,
    state: &mut LabState,
    options: &UpOptions,
) -> Result<(), EmulateError> {
    let Some(dir) = state.dockerd.get(index).map(|r| r.dir.clone()) else {
        return Err(EmulateError::State {
            path: lab.state_path.clone(),
            message: format!("dockerd {index} is not listed"),
        });
    };
    dockerd::check_version(engine)?;
    dockerd::make_dir(&dir)?;
    dockerd::restore_own_rules(engine, lab.layout.node(engine.host))?;
    let process = dockerd::spawn(engine, lab.layout.node(engine.host), &dir, &lab.layout.lab)?;
    state.dockerd[index].process = Some(process);
    state.save(&lab.state_path)?;
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    dockerd::ready(process, &dir, &interrupted)?;
    dockerd::populate(net, engine, &lab.layout, &dir)?;
    for (node, _) in &engine.containers {
        let node = net.node(*node);
        let mut settings = base_settings(node, false);
        settings.extend(net.interfaces_of(node).map(|i| {
            setting(
                &format!("net/ipv4/neigh/{}/retrans_time_ms", i.name),
                ARP_RETRANS_MS,
                false,
            )
        }));
        netns::sysctls(lab.layout.node(node.id), settings)?;
    }
    let bridges = net
        .interfaces_of(net.node(engine.host))
        .filter(|i| engine.bridges.contains(&i.id))
        .map(|i| {
            setting(
                &format!("net/ipv4/neigh/{}/retrans_time_ms", i.name),
                ARP_RETRANS_MS,
                true,
            )
        })
        .collect();
    netns::sysctls(lab.layout.node(engine.host), bridges)
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    #[test]
    fn a_tool_check_killed_by_a_signal_is_an_interruption_not_a_missing_tool() {
        // What Ctrl-C does to `ip -V`: the whole process group gets SIGINT. The test kills
        // the shell with SIGKILL instead: a shell started from a background job inherits
        // SIGINT ignored, and then `kill -INT $$` does nothing (seen when the suite ran as one).
        let e = tool("sh", &["-c", "kill -KILL $$"], "test", "dash").expect_err("interrupted");
        assert!(matches!(e, EmulateError::InterruptedBefore { .. }), "{e}");
        let e = tool("reachlab-no-such-tool", &[], "test", "none").expect_err("missing");
        assert!(matches!(e, EmulateError::MissingTool { .. }), "{e}");
    }
}
