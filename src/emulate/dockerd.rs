//! `--dockerd`: each Docker host of the lab runs the real dockerd, which makes the Docker
//! networks, the containers and the host's netfilter, instead of the emulator building the
//! lowering of the `docker:` section ([`crate::model::DockerEngine`] says what to ask for).
//!
//! dockerd runs in the host's namespace (`nsenter --net=/run/netns/HOST dockerd`: `ip netns
//! exec` would remount /sys), with everything of its own in one directory of the lab beside
//! its state file (`LAB-dockerd-N/`: data root, exec root, socket, pidfile, log, an empty
//! daemon configuration), its own containerd namespace, the vfs storage driver, and an image
//! imported from the static busybox (no registry). Every `docker` call goes to that socket
//! (`DOCKER_HOST`, `DOCKER_CONFIG` in the directory): the system's dockerd is never asked.
//! The networks are created in order with the bridge names of the model, the containers run
//! `busybox sleep` in start order, and each container's namespace is attached under the name
//! the lab's layout gives its node (`ip netns attach`), so probes and listeners work there
//! as in any node; its addresses and default route are checked against the model.
//!
//! Removal (`stop`), from the state file: `docker rm -f` of every container through the lab's
//! socket, SIGTERM to the recorded PID once `/proc` shows it is dockerd with this directory as
//! its data root (SIGKILL after 20 s), every mount under the directory undone (deepest
//! first), then the directory removed, only when nothing is mounted under it any more.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::model::{DockerContainer, DockerEngine, IfaceId, Network, Node, NodeId};

use super::EmulateError;
use super::error::Refusal;
use super::names::{LabId, Layout};
use super::state::{DockerdRun, OwnedProcess};

/// The image every lab's dockerd imports: the static busybox at `/bin/busybox`.
pub const IMAGE: &str = "reachlab-busybox:1";

/// How long dockerd may take to answer, and to stop.
const START_WITHIN: Duration = Duration::from_secs(60);
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// The Docker engines of a network, resolved against it, and what of the network dockerd
/// makes instead of the emulator.
#[derive(Debug, Clone, Default)]
pub struct Dockerd {
    pub engines: Vec<Engine>,
}

/// One engine: its host, the containers' nodes (in start order) and the host's bridges.
#[derive(Debug, Clone)]
pub struct Engine {
    pub spec: DockerEngine,
    pub host: NodeId,
    pub containers: Vec<(NodeId, DockerContainer)>,
    pub bridges: Vec<IfaceId>,
}

fn refuse(message: String) -> EmulateError {
    EmulateError::Command {
        what: "emulating Docker with the real dockerd (--dockerd)".into(),
        message,
    }
}

/// What this mode cannot do for a file: refused before anything is built.
fn unsupported(message: String) -> EmulateError {
    EmulateError::Unsupported(format!("--dockerd: {message}"))
}

/// A name dockerd takes (container, network): `[A-Za-z0-9][A-Za-z0-9_.-]*`.
fn docker_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A word passed to `docker -p` or `iptables`: letters, digits and `.:/,!_-+`.
fn plain_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:/,!_-+".contains(&b))
}

impl Dockerd {
    /// No dockerd: the emulator builds everything.
    pub fn none() -> Self {
        Dockerd::default()
    }

    /// The engines of `net`, checked for what this mode can do; a refusal names what it
    /// cannot.
    pub fn plan(net: &Network) -> Result<Self, EmulateError> {
        if net.docker.is_empty() {
            return Err(unsupported(format!(
                "`{}` has no `docker:` section: there is no dockerd to run",
                net.name
            )));
        }
        let node = |name: &str| {
            net.node_by_name(name).ok_or_else(|| {
                unsupported(format!("node `{name}` of the Docker section is missing"))
            })
        };
        let mut engines: Vec<Engine> = Vec::new();
        for spec in &net.docker {
            let host = node(&spec.host)?;
            if engines.iter().any(|e| e.host == host.id) {
                return Err(unsupported(format!(
                    "node `{}` has two Docker engines; one dockerd per host is supported",
                    host.name
                )));
            }
            if spec.own_rules && spec.own_rules_text.is_none() {
                return Err(unsupported(format!(
                    "the Docker host `{}` has rules of its own that cannot be written as \
                     iptables-save text for dockerd to find",
                    host.name
                )));
            }
            let rules = spec
                .docker_user
                .as_ref()
                .map_err(|why| unsupported(format!("Docker on `{}`: {why}", host.name)))?;
            if let Some(word) = rules.iter().flatten().find(|w| !plain_word(w)) {
                return Err(unsupported(format!(
                    "Docker on `{}`: `{word}` in a `docker_user:` rule is not passed to iptables",
                    host.name
                )));
            }
            let mut containers = Vec::new();
            for c in &spec.containers {
                let n = node(&c.name)?;
                let bad = std::iter::once(c.name.as_str())
                    .chain(c.attachments.iter().map(|(n, _)| n.as_str()))
                    .find(|w| !docker_name(w))
                    .or_else(|| {
                        c.publish
                            .iter()
                            .map(String::as_str)
                            .find(|p| !plain_word(p))
                    });
                if let Some(bad) = bad {
                    return Err(unsupported(format!(
                        "container `{}`: `{bad}` is not a name or `-p` value passed to docker",
                        c.name
                    )));
                }
                containers.push((n.id, c.clone()));
            }
            let mut bridges = Vec::new();
            for nw in &spec.networks {
                if !docker_name(&nw.name) || !super::netns::is_batch_word(&nw.bridge) {
                    return Err(unsupported(format!(
                        "network `{}` (bridge `{}`) is not a name passed to docker",
                        nw.name, nw.bridge
                    )));
                }
            }
            for iface in net.interfaces_of(host) {
                let seg = net.segment(iface.segment);
                if seg.bridge == Some(iface.id)
                    && (iface.name == "docker0"
                        || spec.networks.iter().any(|n| n.bridge == iface.name))
                {
                    bridges.push(iface.id);
                }
            }
            engines.push(Engine {
                spec: spec.clone(),
                host: host.id,
                containers,
                bridges,
            });
        }
        Ok(Dockerd { engines })
    }

    /// Whether dockerd makes the namespace of `node` (a container).
    pub fn makes_node(&self, node: NodeId) -> bool {
        self.engines
            .iter()
            .any(|e| e.containers.iter().any(|(n, _)| *n == node))
    }

    /// Whether dockerd makes interface `iface` (a Docker bridge on the host).
    pub fn makes_iface(&self, iface: IfaceId) -> bool {
        self.engines.iter().any(|e| e.bridges.contains(&iface))
    }

    /// The engine on `node`, if it is a Docker host.
    pub fn on_host(&self, node: NodeId) -> Option<&Engine> {
        self.engines.iter().find(|e| e.host == node)
    }

    /// `net` without docker-proxy's listeners (dockerd binds those) for the listener servers.
    pub fn servable(&self, net: &Network) -> Network {
        let mut net = net.clone();
        for e in &self.engines {
            let host = &mut net.nodes[e.host.index()];
            host.listeners.retain(|l| {
                !e.spec.proxies.iter().any(|(proto, bind, port)| {
                    *proto == l.proto && *bind == l.bind && *port == l.port
                })
            });
        }
        net
    }
}

/// The directory of engine number `index` of lab `lab`, beside its state file, as an
/// absolute path (dockerd's command line and /proc's mount table name it so).
pub fn dir(state_dir: &Path, lab: &LabId, index: usize) -> PathBuf {
    absolute(state_dir).join(format!("{lab}-dockerd-{index}"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Whether `dir` is named as one of lab `lab`'s dockerd directories in `state_dir`.
pub fn owns_dir(state_dir: &Path, lab: &LabId, dir: &Path) -> bool {
    let prefix = format!("{lab}-dockerd-");
    dir.is_absolute()
        && dir.parent() == Some(absolute(state_dir).as_path())
        && dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&prefix))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// `docker ARGS` against the dockerd of `dir`.
fn docker(dir: &Path, args: &[&str]) -> Result<Output, EmulateError> {
    let mut command = Command::new("docker");
    command
        .env(
            "DOCKER_HOST",
            format!("unix://{}/docker.sock", dir.display()),
        )
        .env("DOCKER_CONFIG", dir.join("config"))
        .args(args)
        .stdin(Stdio::null());
    super::netns::die_with_parent(&mut command);
    command
        .output()
        .map_err(|e| EmulateError::io("running docker", e))
}

/// `docker ARGS`, which must succeed: its standard output, trimmed.
fn docker_ok(dir: &Path, args: &[&str]) -> Result<String, EmulateError> {
    let out = docker(dir, args)?;
    if !out.status.success() {
        return Err(EmulateError::Command {
            what: format!("docker {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A command that must succeed.
fn run(program: &str, args: &[&str], what: &str) -> Result<Output, EmulateError> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    super::netns::die_with_parent(&mut command);
    let out = command
        .output()
        .map_err(|e| EmulateError::io(format!("running {program}"), e))?;
    if !out.status.success() {
        return Err(EmulateError::Command {
            what: what.to_owned(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}

/// Makes the directory of a dockerd (mode 0700) with an empty daemon configuration.
pub fn make_dir(dir: &Path) -> Result<(), EmulateError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| EmulateError::io(format!("creating {}", dir.display()), e))?;
    std::fs::write(dir.join("daemon.json"), "{}\n")
        .map_err(|e| EmulateError::io(format!("writing {}/daemon.json", dir.display()), e))
}

/// The installed dockerd's version (`20.10.24+dfsg1` from `Docker version 20.10.24+dfsg1,
/// build …`).
fn installed_version() -> Result<String, EmulateError> {
    let out = run("dockerd", &["--version"], "asking dockerd its version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .map(|v| v.trim_end_matches(',').to_owned())
        .ok_or_else(|| refuse(format!("`dockerd --version` said {text:?}")))
}

/// A real dockerd referees only a file of its own version: `20.10` for 20.10.x, `28` for
/// 28.x.
pub fn check_version(engine: &Engine) -> Result<(), EmulateError> {
    let installed = installed_version()?;
    let wanted = &engine.spec.version;
    if installed.starts_with(&format!("{wanted}.")) {
        return Ok(());
    }
    Err(unsupported(format!(
        "Docker on `{}` is modelled as dockerd {wanted} (`version:`), and this machine's dockerd \
         is {installed}: a real dockerd referees only its own version's rules",
        engine.spec.host
    )))
}

/// Loads the host's own rules (`iptables-restore`) in namespace `ns` before dockerd starts,
/// as they were there before it (docs/platform-semantics.md, "Docker", **Rules**).
pub fn restore_own_rules(engine: &Engine, ns: &str) -> Result<(), EmulateError> {
    use std::io::Write as _;
    let Some(text) = &engine.spec.own_rules_text else {
        return Ok(());
    };
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg("iptables-restore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            EmulateError::io("loading the Docker host's own rules (iptables-restore)", e)
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| EmulateError::io("writing to iptables-restore", e))?;
    }
    let out = child.wait_with_output().map_err(|e| {
        EmulateError::io("loading the Docker host's own rules (iptables-restore)", e)
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(refuse(format!(
        "iptables-restore refused the own rules of `{}`: {}",
        engine.spec.host,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Starts dockerd for `engine` in namespace `ns`, with `dir` its own, in a process group of
/// its own (a Ctrl-C is for `up`, which then stops it). Returns it as soon as it runs.
pub fn spawn(
    engine: &Engine,
    ns: &str,
    dir: &Path,
    lab: &LabId,
) -> Result<OwnedProcess, EmulateError> {
    let d = dir.display().to_string();
    let log = super::state::open_log(&dir.join("dockerd.log"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| EmulateError::io("opening dockerd's log", e))?;
    let bool_flag = |name: &str, on: bool| format!("--{name}={on}");
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg("dockerd")
        .args(["--config-file", &format!("{d}/daemon.json")])
        .args(["--data-root", &format!("{d}/data")])
        .args(["--exec-root", &format!("{d}/exec")])
        .args(["--pidfile", &format!("{d}/dockerd.pid")])
        .args(["-H", &format!("unix://{d}/docker.sock")])
        .args(["--containerd-namespace", &format!("reachlab-{lab}")])
        .args([
            "--containerd-plugins-namespace",
            &format!("reachlab-{lab}-plugins"),
        ])
        .args(["--storage-driver", "vfs", "--bip", "172.17.0.1/16"])
        .arg("--iptables=true")
        .arg(bool_flag("userland-proxy", engine.spec.userland_proxy))
        .arg(bool_flag("icc", engine.spec.icc))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| EmulateError::io("starting dockerd (nsenter … dockerd)", e))?;
    let pid = child.id() as i32;
    // The child is reaped by `stop` (waitpid); the handle is not needed.
    drop(child);
    OwnedProcess::of(pid).ok_or_else(|| {
        refuse(format!(
            "dockerd ended at once; see {}/dockerd.log",
            dir.display()
        ))
    })
}

/// Waits until the dockerd of `dir` answers, then imports the image.
pub fn ready(
    process: OwnedProcess,
    dir: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), EmulateError> {
    let deadline = Instant::now() + START_WITHIN;
    loop {
        if interrupted() {
            return Err(EmulateError::Interrupted);
        }
        if !process.is_alive() {
            return Err(refuse(format!(
                "dockerd stopped while starting:\n{}",
                log_tail(dir)
            )));
        }
        if docker(dir, &["version"])?.status.success() {
            break;
        }
        if Instant::now() > deadline {
            return Err(refuse(format!(
                "dockerd did not answer within {} s:\n{}",
                START_WITHIN.as_secs(),
                log_tail(dir)
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    import_image(dir)
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Where `busybox` is on `PATH`.
fn busybox() -> Result<PathBuf, EmulateError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/bin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .ok_or(EmulateError::MissingTool {
            tool: "busybox",
            purpose: "make the containers' image (a static busybox)",
            package: "busybox-static",
        })
}

/// `docker import` of a root with the static busybox at /bin/busybox.
fn import_image(dir: &Path) -> Result<(), EmulateError> {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).map_err(|e| EmulateError::io("creating the image's root", e))?;
    let target = bin.join("busybox");
    std::fs::copy(busybox()?, &target).map_err(|e| EmulateError::io("copying busybox", e))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| EmulateError::io("making busybox executable", e))?;
    let root = dir.join("rootfs").display().to_string();
    let tar = dir.join("rootfs.tar").display().to_string();
    run("tar", &["-C", &root, "-cf", &tar, "."], "packing the image")?;
    docker_ok(dir, &["import", &tar, IMAGE])?;
    Ok(())
}

/// The networks, then the containers in start order, then the `DOCKER-USER` rules; each
/// container's namespace is attached as its node's (`layout`) and checked against the model.
pub fn populate(
    net: &Network,
    engine: &Engine,
    layout: &Layout,
    dir: &Path,
) -> Result<(), EmulateError> {
    for nw in &engine.spec.networks {
        let subnet = nw.subnet.to_string();
        let gateway = nw.gateway.to_string();
        let name_opt = format!("com.docker.network.bridge.name={}", nw.bridge);
        let mut args = vec![
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &subnet,
            "--gateway",
            &gateway,
            "-o",
            &name_opt,
        ];
        if nw.internal {
            args.push("--internal");
        }
        if !nw.icc {
            args.extend(["-o", "com.docker.network.bridge.enable_icc=false"]);
        }
        args.push(&nw.name);
        docker_ok(dir, &args)?;
    }
    for (node, c) in &engine.containers {
        run_container(net, net.node(*node), c, layout, dir)?;
    }
    let host_ns = format!("--net=/run/netns/{}", layout.node(engine.host));
    for (i, words) in engine.spec.docker_user.iter().flatten().enumerate() {
        let position = (i + 1).to_string();
        let mut args = vec![host_ns.as_str(), "iptables", "-I", "DOCKER-USER", &position];
        args.extend(words.iter().map(String::as_str));
        run("nsenter", &args, "adding a DOCKER-USER rule")?;
    }
    Ok(())
}

/// `docker run` on the first network, `docker network connect` to the others, the namespace
/// attached and checked.
fn run_container(
    net: &Network,
    node: &Node,
    c: &DockerContainer,
    layout: &Layout,
    dir: &Path,
) -> Result<(), EmulateError> {
    let Some(((first, first_ip), rest)) = c.attachments.split_first() else {
        return Err(refuse(format!("container `{}` has no network", c.name)));
    };
    let ip = first_ip.to_string();
    let mut args = vec!["run", "-d", "--name", &c.name, "--network", first];
    // dockerd takes `--ip` on user-defined networks only; on docker0 it gives the next
    // address, which the model predicts (and the check below holds it to).
    if first != "bridge" {
        args.extend(["--ip", &ip]);
    }
    for p in &c.publish {
        args.extend(["-p", p]);
    }
    args.extend([IMAGE, "/bin/busybox", "sleep", "2147483647"]);
    docker_ok(dir, &args)?;
    for (network, address) in rest {
        let ip = address.to_string();
        let mut args = vec!["network", "connect"];
        if network != "bridge" {
            args.extend(["--ip", &ip]);
        }
        args.extend([network.as_str(), &c.name]);
        docker_ok(dir, &args)?;
    }
    let pid = docker_ok(dir, &["inspect", "-f", "{{.State.Pid}}", &c.name])?;
    if pid.parse::<u32>().is_err() {
        return Err(refuse(format!(
            "container `{}` has no process ({pid})",
            c.name
        )));
    }
    let ns = layout.node(node.id);
    run(
        "ip",
        &["netns", "attach", ns, &pid],
        &format!("naming the namespace of container `{}`", c.name),
    )?;
    verify(net, node, c, ns)
}

/// The container's addresses and default route are the model's.
fn verify(net: &Network, node: &Node, c: &DockerContainer, ns: &str) -> Result<(), EmulateError> {
    let out = run(
        "ip",
        &["-n", ns, "-j", "addr", "show"],
        "reading a container's addresses",
    )?;
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let links = links.as_array().cloned().unwrap_or_default();
    let mut wrong = Vec::new();
    for iface in net.interfaces_of(node) {
        let have: Vec<String> = links
            .iter()
            .filter(|l| l.get("ifname").and_then(|n| n.as_str()) == Some(&iface.name))
            .flat_map(|l| {
                l.get("addr_info")
                    .and_then(|a| a.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|a| a.get("family").and_then(|f| f.as_str()) == Some("inet"))
            .filter_map(|a| {
                Some(format!(
                    "{}/{}",
                    a.get("local")?.as_str()?,
                    a.get("prefixlen")?.as_u64()?
                ))
            })
            .collect();
        let want: Vec<String> = iface.addresses.iter().map(|a| a.to_string()).collect();
        if have != want {
            wrong.push(format!(
                "{} has {:?}, the model {:?}",
                iface.name, have, want
            ));
        }
    }
    let out = run(
        "ip",
        &["-n", ns, "-j", "route", "show", "default"],
        "reading a container's routes",
    )?;
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let gateway = routes
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r.get("gateway"))
        .and_then(|g| g.as_str())
        .map(str::to_owned);
    let want = c.gateway.map(|g| g.to_string());
    if gateway != want {
        wrong.push(format!("default via {gateway:?}, the model {want:?}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(refuse(format!(
            "dockerd made container `{}` other than the model: {}",
            c.name,
            wrong.join("; ")
        )))
    }
}

/// Whether `pid` is dockerd with `dir/data` its data root.
fn is_our_dockerd(process: OwnedProcess, dir: &Path) -> Result<(), String> {
    let proc = PathBuf::from(format!("/proc/{}", process.pid));
    let exe = std::fs::read_link(proc.join("exe"))
        .map_err(|e| format!("its executable cannot be read ({e})"))?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.strip_suffix(" (deleted)").unwrap_or(&name) != "dockerd" {
        return Err(format!("its executable is {}", exe.display()));
    }
    let cmdline = std::fs::read(proc.join("cmdline"))
        .map_err(|e| format!("its command line cannot be read ({e})"))?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let data = dir.join("data");
    let ours = args
        .windows(2)
        .any(|w| w[0] == b"--data-root" && w[1] == data.as_os_str().as_encoded_bytes());
    if ours {
        Ok(())
    } else {
        Err(format!(
            "it is a dockerd whose data root is not {}",
            data.display()
        ))
    }
}

/// Stops the dockerd of `run` and removes its directory (see the module's comment). What it
/// could not prove its own is refused; what failed is an error.
pub fn stop(run: &DockerdRun, refused: &mut Vec<Refusal>) -> Result<(), String> {
    let dir = &run.dir;
    if let Some(process) = run.process.filter(OwnedProcess::is_alive) {
        match is_our_dockerd(process, dir) {
            Ok(()) => {
                if let Ok(out) = docker(dir, &["ps", "-aq"]) {
                    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
                        .map(str::to_owned)
                        .collect();
                    if !ids.is_empty() {
                        let mut args = vec!["rm", "-f"];
                        args.extend(ids.iter().map(String::as_str));
                        let _ = docker(dir, &args);
                    }
                }
                let pid = Pid::from_raw(process.pid);
                let _ = kill(pid, Signal::SIGTERM);
                let deadline = Instant::now() + STOP_WITHIN;
                while process.is_alive() && Instant::now() < deadline {
                    let _ =
                        nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
                    std::thread::sleep(Duration::from_millis(50));
                }
                if process.is_alive() {
                    let _ = kill(pid, Signal::SIGKILL);
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            }
            Err(why) => {
                refused.push(Refusal::ForeignProcess {
                    pid: process.pid,
                    role: "dockerd",
                    why,
                });
                return Ok(());
            }
        }
    }
    if dir.symlink_metadata().is_err() {
        return Ok(());
    }
    for point in mounts_under(dir) {
        let _ = Command::new("umount")
            .arg(&point)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let left = mounts_under(dir);
    if !left.is_empty() {
        return Err(format!(
            "{} is left in place: still mounted under it: {}",
            dir.display(),
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

/// The mount points under `dir` (itself included), deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    points
}

/// A path of /proc/self/mountinfo with its octal escapes (`\040`) undone.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&text[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_and_words_reach_docker() {
        assert!(docker_name("shop-proxy-1") && docker_name("shop_data") && docker_name("ct1"));
        assert!(!docker_name("-x") && !docker_name("") && !docker_name("a b"));
        assert!(plain_word("8080:80") && plain_word("127.0.0.1:53:53/udp") && plain_word("!"));
        assert!(!plain_word("") && !plain_word("a b") && !plain_word("$(x)"));
    }

    fn load(path: &str) -> Network {
        match crate::topology::load_path(Path::new(path)) {
            Ok(loaded) => loaded.network,
            Err(report) => panic!("{path}: {} problems", report.diagnostics.len()),
        }
    }

    #[test]
    fn dockerd_makes_the_containers_and_bridges_and_binds_the_published_ports() {
        let net = load("topologies/docker-lab1.yaml");
        let made = Dockerd::plan(&net).expect("docker-lab1 runs with dockerd");
        let id = |name: &str| net.node_by_name(name).expect("a node").id;
        for ct in ["ct1", "ct2", "ct3"] {
            assert!(made.makes_node(id(ct)), "{ct}");
        }
        assert!(!made.makes_node(id("vm")) && !made.makes_node(id("peer")));
        let vm = net.node(id("vm"));
        let bridges: Vec<&str> = net
            .interfaces_of(vm)
            .filter(|i| made.makes_iface(i.id))
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(bridges, ["docker0", "br-app"]);
        let engine = made.on_host(vm.id).expect("vm is the Docker host");
        assert!(!engine.spec.forwarding_before && engine.spec.userland_proxy);
        let ports = |n: &Network| -> Vec<u16> {
            n.node(vm.id)
                .listeners
                .iter()
                .map(|l| l.port.get())
                .collect()
        };
        assert!(
            ports(&net).contains(&2223),
            "docker-proxy's listener in the model"
        );
        assert!(
            !ports(&made.servable(&net)).contains(&2223),
            "dockerd binds it"
        );
    }

    #[test]
    fn what_this_mode_cannot_do_is_refused_and_own_rules_are_kept() {
        let e = Dockerd::plan(&load("topologies/basics-one-subnet.yaml")).expect_err("no docker");
        assert!(e.to_string().contains("no `docker:` section"), "{e}");
        let text = "
segments: [{ name: lan }]
nodes:
  - name: host
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.5/24] }]
    nat: [{ masquerade: true, out: eth0 }]
docker:
  engines:
    - host: host
      containers: [{ name: web }]
";
        let net = match crate::topology::load_str("own.yaml", text) {
            Ok(loaded) => loaded.network,
            Err(report) => panic!("{} problems", report.diagnostics.len()),
        };
        // The host's own rules are not refused: they are loaded before dockerd starts.
        let made = Dockerd::plan(&net).expect("own rules are loaded");
        let own = made.engines[0].spec.own_rules_text.as_deref().unwrap_or("");
        assert!(
            own.contains("-A POSTROUTING -o eth0 -j MASQUERADE"),
            "{own}"
        );
        assert!(!own.contains("DOCKER"), "only the host's own: {own}");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn only_the_labs_own_directories_are_its() {
        let lab = LabId::parse("0123456789abcdef").expect("an id");
        let dir = Path::new("/run/reachlab");
        assert!(owns_dir(dir, &lab, &dir.join("0123456789abcdef-dockerd-0")));
        assert!(!owns_dir(
            dir,
            &lab,
            Path::new("/run/0123456789abcdef-dockerd-0")
        ));
        assert!(!owns_dir(dir, &lab, &dir.join("0123456789abcdef-dockerd-")));
        assert!(!owns_dir(
            dir,
            &lab,
            &dir.join("fedcba9876543210-dockerd-0")
        ));
    }
}
