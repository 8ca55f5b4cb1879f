//! Network namespaces: create, delete, list, and run code or commands inside one. Code runs in a
//! thread of its own that enters the namespace with `setns(2)`: sockets it opens stay in that
//! namespace, and `/proc/sys/net` reads and writes that namespace's settings. The calling
//! thread, and the root namespace, are never touched.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use nix::sched::{CloneFlags, setns};

use super::EmulateError;

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Whether the named namespace exists.
pub fn exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// Every named namespace.
pub fn list() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Creates the namespaces, in one `ip -batch`.
pub fn add_all(names: &[String]) -> Result<(), EmulateError> {
    let script: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
    ip_batch(None, &script, "creating the namespaces")
}

/// Deletes a namespace (and with it every interface inside). `Ok(false)` if it did not exist.
pub fn delete(name: &str) -> Result<bool, EmulateError> {
    if !exists(name) {
        return Ok(false);
    }
    // EBUSY while an `ip netns add` of a killed `up` is still finishing: try again shortly.
    let what = format!("ip netns del {name}");
    let mut attempt = 0;
    loop {
        let out = command_output(Command::new("ip").args(["netns", "del", name]), None, &what)?;
        match check(&out, &what) {
            Ok(()) => return Ok(true),
            Err(_) if !exists(name) => return Ok(true),
            Err(e) if attempt >= 20 => return Err(e),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// Runs `f` in a new thread that has entered namespace `name`, and returns what it returns.
pub fn run_in<T, F>(name: &str, f: F) -> Result<T, EmulateError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = Path::new(NETNS_DIR).join(name);
    let handle = std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || -> Result<T, EmulateError> {
            enter(&path)?;
            Ok(f())
        })
        .map_err(|e| EmulateError::io("starting a thread", e))?;
    handle.join().map_err(|_| EmulateError::Command {
        what: format!("work inside namespace {name}"),
        message: "the thread panicked".into(),
    })?
}

/// Moves the *calling thread* into the namespace at `path`. Only for threads made for it.
pub fn enter(path: &Path) -> Result<(), EmulateError> {
    let file = File::open(path)
        .map_err(|e| EmulateError::io(format!("opening namespace {}", path.display()), e))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| EmulateError::Command {
        what: format!("setns into {}", path.display()),
        message: e.desc().into(),
    })
}

/// Writes sysctls (`net/ipv4/ip_forward` = `1`, ...) of namespace `name`. A setting whose file
/// does not exist is skipped when `optional`.
pub fn sysctls(name: &str, settings: Vec<(String, String, bool)>) -> Result<(), EmulateError> {
    let ns = name.to_owned();
    run_in(name, move || -> Result<(), EmulateError> {
        for (key, value, optional) in settings {
            let path = Path::new("/proc/sys").join(&key);
            if optional && !path.exists() {
                continue;
            }
            std::fs::write(&path, value.as_bytes()).map_err(|e| {
                EmulateError::io(
                    format!("setting {} = {value} in {ns}", key.replace('/', ".")),
                    e,
                )
            })?;
        }
        Ok(())
    })?
}

/// `ip [-n NAMESPACE] -batch -` with `script` on standard input; stops at the first error.
pub fn ip_batch(namespace: Option<&str>, script: &str, what: &str) -> Result<(), EmulateError> {
    let mut command = Command::new("ip");
    if let Some(ns) = namespace {
        command.args(["-n", ns]);
    }
    command.args(["-batch", "-"]);
    let out = command_output(&mut command, Some(script), what)?;
    check(&out, what).map_err(|e| match e {
        EmulateError::Command { what, message } => EmulateError::Command {
            what,
            message: format!("{message}\n  script was:\n{}", indent(script)),
        },
        other => other,
    })
}

/// Runs `argv` inside namespace `name` (`ip netns exec`), with `stdin` when given.
pub fn exec(
    name: &str,
    argv: &[&str],
    stdin: Option<&str>,
    what: &str,
) -> Result<Output, EmulateError> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", name]).args(argv);
    let out = command_output(&mut command, stdin, what)?;
    check(&out, what)?;
    Ok(out)
}

fn command_output(
    command: &mut Command,
    stdin: Option<&str>,
    what: &str,
) -> Result<Output, EmulateError> {
    die_with_parent(command);
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| EmulateError::io(format!("{what}: starting {command:?}"), e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| EmulateError::io(format!("{what}: writing to {command:?}"), e))?;
    }
    child
        .wait_with_output()
        .map_err(|e| EmulateError::io(format!("{what}: waiting for {command:?}"), e))
}

/// The command gets SIGKILL if this process dies first: a killed `up` must not leave an `ip`
/// still creating namespaces after `down` has removed the others.
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

fn check(out: &Output, what: &str) -> Result<(), EmulateError> {
    if out.status.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if message.is_empty() {
        message = format!("exit status {}", out.status);
    }
    Err(EmulateError::Command {
        what: what.to_owned(),
        message,
    })
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
