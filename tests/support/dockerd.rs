//! A real dockerd in a lab of its own, for the tests that hold reachlab's Docker lowering
//! against it (tests/docker_referee.rs, tests/docker_generated.rs).
//!
//! A lab is two network namespaces the test creates, the host (where dockerd runs) and a
//! client, joined by a veth (`eth0` 203.0.113.10/24 on the host, `eth0` 203.0.113.5/24 on the
//! client), and a directory of its own with dockerd's data, exec root, socket, pidfile and log,
//! and an image imported from the static busybox (no registry). Nothing is configured in the
//! namespace the test runs in. On drop (also when a test panics) the lab stops its UDP echo
//! servers, removes every container, stops dockerd by the PID it started, undoes dockerd's
//! mounts under its directory, deletes its namespaces and its directory.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Tool;

pub const DOCKERD: Tool = Tool {
    program: "dockerd",
    arg: "--version",
    package: "docker.io",
};
pub const DOCKER: Tool = Tool {
    program: "docker",
    arg: "--version",
    package: "docker.io",
};
pub const BUSYBOX: Tool = Tool {
    program: "busybox",
    arg: "true",
    package: "busybox-static",
};
pub const CURL: Tool = Tool {
    program: "curl",
    arg: "--version",
    package: "curl",
};

/// The image every lab imports: the static busybox at `/bin/busybox`.
pub const IMAGE: &str = "reachlab-busybox:1";
/// The host's address on the veth to the client.
pub const HOST_ADDRESS: &str = "203.0.113.10";
/// The client's address.
pub const CLIENT_ADDRESS: &str = "203.0.113.5";

/// `ip netns add` run concurrently can race on the first mount of /run/netns: labs built in
/// parallel create and delete their namespaces one at a time.
static NETNS: Mutex<()> = Mutex::new(());

/// What a lab is built from.
pub struct LabSpec<'a> {
    /// The host's namespace (dockerd's), the client's, and the lab's directory: names of this
    /// test's own, starting with `reachlab-`.
    pub host: String,
    pub client: String,
    pub dir: PathBuf,
    /// dockerd's flags besides its directories and socket.
    pub flags: &'a [&'a str],
    /// The client's routes, `PREFIX/LENGTH` each, via the host.
    pub client_routes: &'a [&'a str],
    /// Web pages baked into the image: directory `/www-NAME` serving BODY, for each
    /// `(NAME, BODY)`.
    pub pages: &'a [(&'a str, &'a str)],
}

/// A UDP echo server running in some namespace: its stop flag and its thread.
struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The lab: dockerd's namespace (the host), the client's, the directory, dockerd's process.
pub struct Lab {
    pub host: String,
    pub client: String,
    pub dir: PathBuf,
    dockerd: Option<Child>,
    echoes: Vec<Echo>,
}

/// Runs `program args`, panicking with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where `program` is, as the shell finds it.
pub fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl Lab {
    /// Creates the namespaces and the veth, starts dockerd and imports the image. Whatever
    /// was created is undone when this panics (the lab is dropped).
    pub fn start(spec: &LabSpec<'_>) -> Lab {
        let _ = std::fs::remove_dir_all(&spec.dir);
        std::fs::create_dir_all(spec.dir.join("rootfs/bin")).expect("a directory");
        let mut lab = Lab {
            host: spec.host.clone(),
            client: spec.client.clone(),
            dir: spec.dir.clone(),
            dockerd: None,
            echoes: Vec::new(),
        };
        let (host, client) = (lab.host.clone(), lab.client.clone());
        {
            let _one_at_a_time = NETNS.lock().unwrap_or_else(|e| e.into_inner());
            for ns in [&host, &client] {
                run("ip", &["netns", "add", ns]);
            }
        }
        for ns in [&host, &client] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        run(
            "ip",
            &[
                "-n", &host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", &client,
            ],
        );
        let host_cidr = format!("{HOST_ADDRESS}/24");
        let client_cidr = format!("{CLIENT_ADDRESS}/24");
        run(
            "ip",
            &["-n", &host, "addr", "add", &host_cidr, "dev", "eth0"],
        );
        run(
            "ip",
            &["-n", &client, "addr", "add", &client_cidr, "dev", "eth0"],
        );
        for ns in [&host, &client] {
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        }
        for route in spec.client_routes {
            run(
                "ip",
                &["-n", &client, "route", "add", route, "via", HOST_ADDRESS],
            );
        }
        lab.start_dockerd(spec.flags);
        lab.import_image(spec.pages);
        lab
    }

    fn start_dockerd(&mut self, flags: &[&str]) {
        let d = self.dir.display().to_string();
        let log = File::create(self.dir.join("dockerd.log")).expect("a log file");
        let netns = format!("--net=/run/netns/{}", self.host);
        let child = Command::new("nsenter")
            .args([&netns, "dockerd"])
            .args([
                "--data-root",
                &format!("{d}/data"),
                "--exec-root",
                &format!("{d}/exec"),
            ])
            .args([
                "--pidfile",
                &format!("{d}/dockerd.pid"),
                "-H",
                &format!("unix://{d}/docker.sock"),
            ])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        self.dockerd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn import_image(&self, pages: &[(&str, &str)]) {
        let d = self.dir.display().to_string();
        std::fs::copy(which("busybox"), self.dir.join("rootfs/bin/busybox"))
            .expect("busybox copied");
        for (name, body) in pages {
            let www = self.dir.join(format!("rootfs/www-{name}"));
            std::fs::create_dir_all(&www).expect("a directory");
            std::fs::write(www.join("index.html"), format!("{body}\n")).expect("a page");
        }
        run(
            "tar",
            &[
                "-C",
                &format!("{d}/rootfs"),
                "-cf",
                &format!("{d}/rootfs.tar"),
                ".",
            ],
        );
        self.docker_ok(&["import", &format!("{d}/rootfs.tar"), IMAGE]);
    }

    /// `docker ARGS` against this lab's dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env(
                "DOCKER_HOST",
                format!("unix://{}/docker.sock", self.dir.display()),
            )
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker runs")
    }

    /// `docker ARGS`, which must succeed: its standard output, trimmed.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The PID of container `name`'s first process.
    pub fn container_pid(&self, name: &str) -> String {
        self.docker_ok(&["inspect", "-f", "{{.State.Pid}}", name])
    }

    /// The network namespace of node `from` (the client, the host or a container) as a path.
    pub fn netns_path(&self, from: &str) -> PathBuf {
        match from {
            "client" => PathBuf::from(format!("/run/netns/{}", self.client)),
            "host" => PathBuf::from(format!("/run/netns/{}", self.host)),
            container => PathBuf::from(format!("/proc/{}/ns/net", self.container_pid(container))),
        }
    }

    /// Runs `args` in the namespace of node `from`: the client, the host or a container.
    pub fn on(&self, from: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.netns_path(from).display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs `args` in namespace `ns` (by name).
    pub fn in_ns(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec runs")
    }

    /// The IPv4 addresses of node `from`'s interfaces but loopback, as `(INTERFACE,
    /// ADDRESS/LENGTH)` in the order `ip` lists them.
    pub fn addresses(&self, from: &str) -> Vec<(String, String)> {
        let out = self.on(from, &["ip", "-4", "-o", "addr", "show"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let iface = w.get(1)?.split('@').next()?;
                let at = w.iter().position(|x| *x == "inet")?;
                let address = *w.get(at + 1)?;
                (iface != "lo").then(|| (iface.to_owned(), address.to_owned()))
            })
            .collect()
    }

    /// The address a probe's target stands for: an address is itself, `client` and `host`
    /// their addresses on the veth, a container the address of its `eth0`.
    pub fn resolve(&self, target: &str) -> String {
        if target.parse::<Ipv4Addr>().is_ok() {
            return target.to_owned();
        }
        match target {
            "client" => CLIENT_ADDRESS.to_owned(),
            "host" => HOST_ADDRESS.to_owned(),
            container => self
                .addresses(container)
                .into_iter()
                .find(|(i, _)| i == "eth0")
                .and_then(|(_, a)| a.split('/').next().map(str::to_owned))
                .unwrap_or_else(|| panic!("container {container} has no address on eth0")),
        }
    }

    /// What `iptables-save` prints on the host.
    pub fn iptables_save(&self) -> String {
        let out = self.in_ns(&self.host, &["iptables-save"]);
        assert!(
            out.status.success(),
            "iptables-save: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A UDP echo server on `port` of each of `addresses`, in the namespace of node `from`
    /// (busybox has no UDP server): each datagram goes back to its sender from the address it
    /// was sent to. It runs until the lab is dropped.
    pub fn udp_echo(&mut self, from: &str, addresses: &[Ipv4Addr], port: u16) {
        let path = self.netns_path(from);
        for &address in addresses {
            let stop = Arc::new(AtomicBool::new(false));
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let flag = Arc::clone(&stop);
            let path = path.clone();
            let thread = std::thread::spawn(move || {
                let socket = enter(&path)
                    .and_then(|()| UdpSocket::bind(SocketAddrV4::new(address, port)))
                    .and_then(|s| {
                        s.set_read_timeout(Some(Duration::from_millis(100)))?;
                        Ok(s)
                    });
                let socket = match socket {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let mut buf = [0u8; 2048];
                while !flag.load(Ordering::Relaxed) {
                    if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(&buf[..n], peer);
                    }
                }
            });
            let ready = ready_rx.recv().unwrap_or_else(|_| Err("no answer".into()));
            self.echoes.push(Echo {
                stop,
                thread: Some(thread),
            });
            if let Err(e) = ready {
                panic!("UDP echo server on {address}:{port} in {from}: {e}");
            }
        }
    }

    fn stop_echoes(&mut self) {
        for echo in &self.echoes {
            echo.stop.store(true, Ordering::Relaxed);
        }
        for echo in &mut self.echoes {
            if let Some(t) = echo.thread.take() {
                let _ = t.join();
            }
        }
        self.echoes.clear();
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) -> std::io::Result<()> {
    let ns = File::open(path)?;
    // SAFETY: setns on a file descriptor this function owns; it changes the network
    // namespace of the calling thread only (a thread of this test spawned for the purpose).
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs `f` on a thread of its own inside the network namespace at `path`.
fn inside<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(path).unwrap_or_else(|e| panic!("setns {}: {e}", path.display()));
            f()
        })
        .join()
        .expect("the probe thread")
    })
}

/// An error of `connect`/`send`/`recv` in reachlab's words.
fn error_outcome(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
        ErrorKind::NetworkUnreachable => "no-route",
        ErrorKind::HostUnreachable => "host-unreachable",
        _ => return format!("unexpected ({e})"),
    }
    .to_owned()
}

/// A TCP connection from the namespace at `path` to `target`, as reachlab's `tcp` probe.
pub fn tcp_probe(path: &Path, target: SocketAddrV4) -> String {
    inside(path, || {
        match TcpStream::connect_timeout(&SocketAddr::V4(target), Duration::from_secs(3)) {
            Ok(_) => "reply".to_owned(),
            Err(e) => error_outcome(&e),
        }
    })
}

/// A UDP datagram from the namespace at `path` to `target` and the wait for an answer, as
/// reachlab's `udp` probe: an answer is `reply`, ICMP port unreachable `refused`.
pub fn udp_probe(path: &Path, target: SocketAddrV4) -> String {
    inside(path, || {
        let attempt = || -> std::io::Result<()> {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.connect(target)?;
            socket.set_read_timeout(Some(Duration::from_secs(2)))?;
            socket.send(b"reachlab\n")?;
            let mut buf = [0u8; 64];
            socket.recv(&mut buf)?;
            Ok(())
        };
        match attempt() {
            Ok(()) => "reply".to_owned(),
            Err(e) => error_outcome(&e),
        }
    })
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_echoes();
        if self.dockerd.is_some() {
            let all = self.docker(&["ps", "-aq"]);
            let ids: Vec<String> = String::from_utf8_lossy(&all.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.docker(&args);
            }
        }
        if let Some(mut child) = self.dockerd.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // dockerd's mounts under the lab's directory, deepest first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = format!("{}/", self.dir.display());
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|p| p.starts_with(&dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg(p).status();
        }
        {
            let _one_at_a_time = NETNS.lock().unwrap_or_else(|e| e.into_inner());
            for ns in [&self.host, &self.client] {
                let _ = Command::new("ip")
                    .args(["netns", "del", ns])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lines of `iptables-save` output without its comments (`# Generated by`, `# Completed
/// on`).
pub fn without_comments(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The outcome the kernel gives a probe run by a tool (`curl`, `ping`), in reachlab's words.
pub fn outcome(tool: &str, out: &Output) -> String {
    let code = out.status.code();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    match (tool, code) {
        (_, Some(0)) => "reply",
        ("curl", Some(7)) if text.contains("Couldn't connect") && text.contains("refused") => {
            "refused"
        }
        ("curl", Some(7)) if text.contains("No route to host") => "host-unreachable",
        ("curl", Some(7)) if text.contains("Network is unreachable") => "no-route",
        ("curl", Some(7)) if text.contains("Couldn't connect") => "refused",
        ("curl", Some(28)) => "timeout",
        ("ping", _) if text.contains("Network is unreachable") => "no-route",
        ("ping", Some(1)) => "timeout",
        _ => {
            return format!(
                "unexpected ({tool} exit {code:?}: {})",
                text.trim().lines().last().unwrap_or("")
            );
        }
    }
    .to_owned()
}

/// Runs `probe` (`FROM TOOL TARGET[:PORT]`, as `check --format json` writes it) for real;
/// a target that is a node name stands for its address ([`Lab::resolve`]).
pub fn run_probe(lab: &Lab, probe: &str) -> String {
    let words: Vec<&str> = probe.split_whitespace().collect();
    let [from, tool, target] = words[..] else {
        panic!("unexpected probe {probe:?}");
    };
    let (address, port) = match target.rsplit_once(':') {
        Some((a, p)) => (lab.resolve(a), Some(p)),
        None => (lab.resolve(target), None),
    };
    let socket = || {
        let ip: Ipv4Addr = address
            .parse()
            .unwrap_or_else(|_| panic!("{probe:?}: {address} is no address"));
        let port: u16 = port
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{probe:?}: no port"));
        SocketAddrV4::new(ip, port)
    };
    match tool {
        "curl" => {
            let url = match port {
                Some(p) => format!("http://{address}:{p}/"),
                None => format!("http://{address}/"),
            };
            outcome("curl", &lab.on(from, &["curl", "-sS", "-m", "3", &url]))
        }
        "ping" => outcome(
            "ping",
            &lab.on(from, &["busybox", "ping", "-c", "1", "-W", "2", &address]),
        ),
        "ssh" | "tcp" => tcp_probe(&lab.netns_path(from), socket()),
        "udp" => udp_probe(&lab.netns_path(from), socket()),
        _ => panic!("no real twin for probe {probe:?}"),
    }
}

/// The probes of `topology` with what `reachlab check` predicts for each; `reachlab` is the
/// binary (the test's `CARGO_BIN_EXE_reachlab`).
pub fn predictions(reachlab: &str, topology: &str) -> Vec<(String, String)> {
    let check = Command::new(reachlab)
        .args(["check", "--format", "json", topology])
        .output()
        .expect("reachlab runs");
    let doc: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap_or_else(|e| {
        panic!(
            "reachlab check {topology}: {e}: {}",
            String::from_utf8_lossy(&check.stderr)
        )
    });
    doc["expectations"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "{topology}: no expectations in {doc}: {}",
                String::from_utf8_lossy(&check.stderr)
            )
        })
        .iter()
        .map(|r| {
            (
                r["probe"].as_str().unwrap_or("").to_owned(),
                r["predicted"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}
