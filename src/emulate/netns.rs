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
    let mut script = Script::new("ip");
    for name in names {
        script.line(["netns", "add", name])?;
    }
    ip_batch(None, &script, "creating the namespaces")
}

/// A word that cannot be handed to `ip -batch` or `tc -batch` as one argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{word}` cannot be passed to `{tool} -batch` as one word: only letters, digits and `_.-:/%` are"
)]
pub struct UnsafeWord {
    pub tool: &'static str,
    pub word: String,
}

impl From<UnsafeWord> for EmulateError {
    fn from(e: UnsafeWord) -> Self {
        EmulateError::Unsupported(e.to_string())
    }
}

/// A script for `ip -batch` or `tc -batch`, built from words, never from spliced text.
///
/// iproute2 reads a batch line by line (`getcmdline`: a `#` starts a comment, a line ending in
/// `\` continues on the next) and splits it at spaces, tabs, CR and LF (`makeargs`, where a word
/// starting with `'` or `"` runs to the next such quote). A word made only of the characters of
/// [`is_batch_word`] contains none of these, so it comes back as exactly one argument, itself:
/// every word is checked and a line is the words joined by single spaces. Such a word may still
/// be a keyword of `ip`; callers put names after `dev`/`name`, where `ip` takes any word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    tool: &'static str,
    text: String,
}

impl Script {
    /// An empty script for `tool` (`ip` or `tc`).
    pub fn new(tool: &'static str) -> Self {
        Script {
            tool,
            text: String::new(),
        }
    }

    /// Appends one command, given as its words.
    pub fn line<I, W>(&mut self, words: I) -> Result<&mut Self, UnsafeWord>
    where
        I: IntoIterator<Item = W>,
        W: AsRef<str>,
    {
        let mut line = String::new();
        for word in words {
            let word = word.as_ref();
            if !is_batch_word(word) {
                return Err(UnsafeWord {
                    tool: self.tool,
                    word: word.escape_debug().to_string(),
                });
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            self.text.push_str(&line);
            self.text.push('\n');
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The script as the tool reads it on standard input.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tool this script is for.
    pub fn tool(&self) -> &'static str {
        self.tool
    }
}

/// Whether `word` passes through iproute2's batch reader unchanged, as one argument: not empty,
/// only ASCII letters, digits and `_ . - : / %` (no space, quote, `#`, `\` or control
/// character).
pub fn is_batch_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:/%".contains(&b))
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
            let path = sysctl_path(&key)?;
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

/// The file of sysctl `key` (`net/ipv4/ip_forward`): every component a plain word, so that a
/// key can only name a file under `/proc/sys`.
fn sysctl_path(key: &str) -> Result<std::path::PathBuf, EmulateError> {
    if key
        .split('/')
        .all(|c| is_batch_word(c) && c != "." && c != "..")
    {
        Ok(Path::new("/proc/sys").join(key))
    } else {
        Err(EmulateError::Unsupported(format!(
            "`{}` is not a sysctl key",
            key.escape_debug()
        )))
    }
}

/// `TOOL [-n NAMESPACE] -batch -` with `script` on standard input; stops at the first error.
pub fn ip_batch(namespace: Option<&str>, script: &Script, what: &str) -> Result<(), EmulateError> {
    let out = batch_output(namespace, script, what)?;
    check(&out, what).map_err(|e| match e {
        EmulateError::Command { what, message } => EmulateError::Command {
            what,
            message: format!("{message}\n  script was:\n{}", indent(script.text())),
        },
        other => other,
    })
}

/// Runs `script` with its tool, as [`ip_batch`] does, and returns what the tool said.
pub fn batch_output(
    namespace: Option<&str>,
    script: &Script,
    what: &str,
) -> Result<Output, EmulateError> {
    let mut command = Command::new(script.tool());
    if let Some(ns) = namespace {
        command.args(["-n", ns]);
    }
    command.args(["-batch", "-"]);
    command_output(&mut command, Some(script.text()), what)
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

/// Whether every bridge port in namespace `name` is up: the bridge forwards through a port
/// only once the kernel has seen its carrier, which for a veth can take up to a second
/// (docs/linux-semantics.md, "Links coming up").
pub fn bridge_ports_up(name: &str) -> Result<bool, EmulateError> {
    let mut command = Command::new("ip");
    command.args(["-n", name, "-j", "link", "show"]);
    let what = format!("listing the links of {name}");
    let out = command_output(&mut command, None, &what)?;
    check(&out, &what)?;
    let links: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| EmulateError::Command {
            what,
            message: format!("`ip -j link show` printed something that is not JSON: {e}"),
        })?;
    let links = links.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(links
        .iter()
        .filter(|l| l.get("master").is_some())
        .all(|l| l.get("operstate").and_then(|s| s.as_str()) == Some("UP")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_words_are_plain() {
        for word in [
            "eth0",
            "10.0.0.1/24",
            "02:00:5e:10:00:01",
            "0.5%",
            "a.b-c_d",
        ] {
            assert!(is_batch_word(word), "{word}");
        }
        for word in [
            "", "a b", "e\"q", "e'q", "a#b", "eth0\\", "a\nb", "a\0", "é", "a;b",
        ] {
            assert!(!is_batch_word(word), "{word:?}");
        }
    }

    #[test]
    fn a_script_refuses_a_word_it_cannot_pass_whole() {
        let mut script = Script::new("ip");
        script
            .line(["addr", "add", "10.0.0.1/24", "dev", "eth0"])
            .expect("plain words");
        assert_eq!(script.text(), "addr add 10.0.0.1/24 dev eth0\n");
        let refused = script.line(["link", "set", "dev", "eth0\\", "up"]);
        assert!(refused.is_err());
        // Nothing of the refused line was added.
        assert_eq!(script.text(), "addr add 10.0.0.1/24 dev eth0\n");
    }

    #[test]
    fn sysctl_keys_stay_under_proc_sys() {
        assert_eq!(
            sysctl_path("net/ipv4/neigh/eth0/retrans_time_ms").expect("plain key"),
            Path::new("/proc/sys/net/ipv4/neigh/eth0/retrans_time_ms")
        );
        for key in [
            "net/ipv4/neigh/../../../../etc/x",
            "net/ipv4/conf/a b/x",
            "",
            "/etc/x",
        ] {
            assert!(sysctl_path(key).is_err(), "{key:?}");
        }
    }
}
