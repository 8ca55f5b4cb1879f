//! The emulator's trust boundary (issue 19), against the kernel and through the CLI binary:
//! `reachlab emulate down`, which runs as root, deletes only namespaces named for the lab whose
//! state file it reads and signals only reachlab processes of that lab; it refuses a state
//! directory or state file that another user owns or can write; `up` never follows a symlink in
//! the state directory; lab ids are 64 bits and `down FILE` checks the file the state records;
//! a non-root `down` is refused at once; the hint after a refused `up` names a command that
//! removes the leftovers.
//!
//! Every test works in a private temporary state directory, and a guard removes everything it
//! made (namespaces, processes, users, files), also when it fails. The tests drive the binary
//! only (no library calls), so that the same file can be run against an older build. Needs root
//! and iproute2 (SKIPPED otherwise, unless `REACHLAB_REQUIRE_KERNEL=1`); the unprivileged-user
//! cases also need `useradd`/`userdel` and `runuser` or `setpriv`.
#![cfg(all(feature = "emulate", target_os = "linux"))]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod support;

const EXE: &str = env!("CARGO_BIN_EXE_reachlab");

/// Two hosts on one segment, one listener (so that `up` starts a listener process).
const TOPOLOGY: &str = "\
segments:
  - name: lan
nodes:
  - name: a
    interfaces:
      - { name: eth0, segment: lan, addresses: [198.51.100.1/24] }
  - name: b
    interfaces:
      - { name: eth0, segment: lan, addresses: [198.51.100.2/24] }
    listen:
      - { port: 22 }
";

/// `useradd`/`userdel` take a lock on /etc/passwd: one at a time.
static USERS: Mutex<()> = Mutex::new(());

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn netns_list() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Field 22 of /proc/PID/stat, as reachlab records it.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    rest.split_whitespace()
        .nth(19)
        .and_then(|t| t.parse().ok())
        .expect("start time")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
}

/// A user made for one test: name, uid, gid.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

/// One test's world: a directory with the topology and the state directory, and everything
/// the test made, removed when dropped.
struct Sandbox {
    dir: PathBuf,
    state: PathBuf,
    topology: PathBuf,
    victims: Vec<String>,
    lab_ids: Vec<String>,
    children: Vec<Child>,
    users: Vec<String>,
}

impl Sandbox {
    fn new(tag: &str) -> Option<Self> {
        if !can_run(tag) {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("reachlab-trust-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        chmod(&dir, 0o755);
        let topology = dir.join("lab.yaml");
        std::fs::write(&topology, TOPOLOGY).expect("topology written");
        let state = dir.join("state");
        std::fs::create_dir(&state).expect("state dir");
        chmod(&state, 0o700);
        Some(Sandbox {
            dir,
            state,
            topology,
            victims: Vec::new(),
            lab_ids: Vec::new(),
            children: Vec::new(),
            users: Vec::new(),
        })
    }

    fn run_in(&self, state: &Path, args: &[&str]) -> Output {
        Command::new(EXE)
            .args(args)
            .env("REACHLAB_STATE_DIR", state)
            .output()
            .expect("reachlab runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.state, args)
    }

    fn file(&self) -> &str {
        self.topology.to_str().expect("utf-8 path")
    }

    /// `up FILE`, which must succeed; the lab id it printed.
    fn up_file(&mut self, file: &Path) -> String {
        let out = self.run(&["emulate", "up", file.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "up failed: {}", text(&out));
        let id = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("lab id")
            .to_owned();
        self.lab_ids.push(id.clone());
        id
    }

    fn up(&mut self) -> String {
        let file = self.topology.clone();
        self.up_file(&file)
    }

    fn down_ok(&self, file: &Path) {
        let out = self.run(&["emulate", "down", file.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "down failed: {}", text(&out));
    }

    /// The id of the lab of FILE in this state directory, learnt from an `up` and a `down`.
    fn id_of(&mut self, file: &Path) -> String {
        let id = self.up_file(file);
        self.down_ok(file);
        id
    }

    /// The namespaces named for lab `id` that exist.
    fn lab_namespaces(&self, id: &str) -> Vec<String> {
        netns_list()
            .into_iter()
            .filter(|n| n.starts_with(&format!("reachlab-{id}-")))
            .collect()
    }

    /// A namespace this test creates and reachlab must never delete.
    fn victim(&mut self, name: String) -> String {
        assert!(works("ip", &["netns", "add", &name]), "ip netns add {name}");
        self.victims.push(name.clone());
        name
    }

    /// A `sleep 30` that reachlab must never signal: its pid and start time.
    fn sleeper(&mut self) -> (u32, u64) {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let pid = child.id();
        self.children.push(child);
        (pid, start_time(pid))
    }

    fn sleeper_alive(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|c| c.id() == pid)
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    fn state_file(&self, id: &str) -> PathBuf {
        self.state.join(format!("{id}.json"))
    }

    fn read_state(&self, path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("state file")).expect("json")
    }

    fn edit_state(&self, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.state_file(id);
        let mut state = self.read_state(&path);
        edit(&mut state);
        std::fs::write(&path, serde_json::to_string_pretty(&state).expect("json"))
            .expect("written");
    }

    /// A user of this test's own, removed when the sandbox drops; `None` (SKIPPED) without
    /// `useradd`.
    fn user(&mut self, tag: &str, test: &str) -> Option<User> {
        if !works("sh", &["-c", "command -v useradd && command -v userdel"]) {
            eprintln!("SKIPPED {test}: needs useradd and userdel");
            return None;
        }
        let name = format!("reachlab-t{}{tag}", std::process::id());
        {
            let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
            let out = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg(&name)
                .output()
                .expect("useradd runs");
            assert!(out.status.success(), "useradd {name}: {}", text(&out));
        }
        self.users.push(name.clone());
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("an id")
        };
        Some(User {
            uid: id("-u"),
            gid: id("-g"),
            name,
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for id in self.lab_ids.clone() {
            for name in self.lab_namespaces(&id) {
                let _ = works("ip", &["netns", "del", &name]);
            }
        }
        for name in &self.victims {
            let _ = works("ip", &["netns", "del", name]);
        }
        // Listener processes of this sandbox's labs end once their switch namespace is gone;
        // wait for that, then stop any that did not.
        let dir = self.dir.to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let servers: Vec<i32> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                    let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    (cmdline.contains("emulate serve") && cmdline.contains(&dir)).then_some(pid)
                })
                .collect();
            if servers.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for pid in servers {
                    let _ = works("kill", &["-KILL", &pid.to_string()]);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        {
            let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
            for user in &self.users {
                let _ = works("userdel", &[user]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Finding 1: a namespace name appended to a lab's state file is not deleted, by `down FILE`
/// nor by `down --all`, and the command says it refused it.
#[test]
fn a_namespace_appended_to_a_state_file_survives_down() {
    let Some(mut sb) = Sandbox::new("appended") else {
        return;
    };
    let victim = sb.victim(format!("reachlab-victim-{}", std::process::id()));
    let file = sb.file().to_owned();
    for args in [["emulate", "down", &file], ["emulate", "down", "--all"]] {
        let id = sb.up();
        sb.edit_state(&id, |s| {
            s["namespaces"]
                .as_array_mut()
                .expect("a list")
                .push(victim.clone().into());
        });
        let out = sb.run(&args);
        assert!(
            netns_exists(&victim),
            "`{}` deleted {victim}: {}",
            args.join(" "),
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refused") && stderr.contains(&victim),
            "`{}` did not report the refusal: {}",
            args.join(" "),
            text(&out)
        );
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            sb.lab_namespaces(&id),
            Vec::<String>::new(),
            "the lab's own namespaces stay"
        );
        assert!(!sb.state_file(&id).exists(), "the state file stays");
    }
}

/// Finding 1: a process recorded as the lab's listener, or as its builder, is signalled only
/// if it is reachlab serving (building) that lab: an unrelated `sleep` survives `down`.
#[test]
fn an_unrelated_process_recorded_in_a_state_file_survives_down() {
    let Some(mut sb) = Sandbox::new("process") else {
        return;
    };
    for (role, all) in [("server", false), ("builder", true)] {
        let (pid, start) = sb.sleeper();
        let id = sb.up();
        sb.edit_state(&id, |s| {
            s[role] = serde_json::json!({ "pid": pid, "start_time": start });
        });
        let file = sb.file().to_owned();
        let out = if all {
            sb.run(&["emulate", "down", "--all"])
        } else {
            sb.run(&["emulate", "down", &file])
        };
        assert!(
            sb.sleeper_alive(pid),
            "down stopped `sleep` (pid {pid}) recorded as the {role}: {}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refused") && stderr.contains(&pid.to_string()),
            "{}",
            text(&out)
        );
        assert_eq!(sb.lab_namespaces(&id), Vec::<String>::new());
    }
}

/// Writes a state file claiming lab `id`, listing `victim` and `sleeper` as its listener.
fn plant(path: &Path, id: &str, file: &Path, victim: &str, sleeper: (u32, u64)) {
    let state = serde_json::json!({
        "lab": id,
        "file": file,
        "namespaces": [victim],
        "server": { "pid": sleeper.0, "start_time": sleeper.1 },
        "builder": null,
        "complete": true,
        "warnings": [],
    });
    std::fs::write(path, serde_json::to_string_pretty(&state).expect("json")).expect("planted");
    chmod(path, 0o600);
}

/// Finding 1: a state directory others can write is refused, and nothing it lists is touched.
#[test]
fn a_state_directory_others_can_write_is_refused() {
    let Some(mut sb) = Sandbox::new("writable") else {
        return;
    };
    let topology = sb.topology.clone();
    let id = sb.id_of(&topology);
    let victim = sb.victim(format!("reachlab-victim-{}-w", std::process::id()));
    let sleeper = sb.sleeper();
    plant(&sb.state_file(&id), &id, &topology, &victim, sleeper);
    chmod(&sb.state, 0o777);
    let state = sb.state.display().to_string();
    let file = sb.file().to_owned();
    for args in [["emulate", "down", "--all"], ["emulate", "down", &file]] {
        let out = sb.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(netns_exists(&victim), "{}", text(&out));
        assert!(sb.sleeper_alive(sleeper.0), "{}", text(&out));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            stderr.contains(&state) && stderr.contains("writable") && stderr.contains("hint:"),
            "{}",
            text(&out)
        );
    }
    // `up` does not build into it either.
    let out = sb.run(&["emulate", "up", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(sb.lab_namespaces(&id), Vec::<String>::new());
    chmod(&sb.state, 0o700);
}

/// Finding 1, the unprivileged user's attack: a state directory, or a state file, that another
/// user owns is refused by root's `down --all`, which deletes nothing and signals nothing.
#[test]
fn a_state_directory_or_file_another_user_owns_is_refused() {
    let test = "a_state_directory_or_file_another_user_owns_is_refused";
    let Some(mut sb) = Sandbox::new("owner") else {
        return;
    };
    let Some(user) = sb.user("o", test) else {
        return;
    };
    let topology = sb.topology.clone();
    let id = sb.id_of(&topology);
    let victim = sb.victim(format!("reachlab-victim-{}-o", std::process::id()));
    let sleeper = sb.sleeper();

    // The user's own directory, with the user's file in it.
    let planted = sb.dir.join("planted");
    std::fs::create_dir(&planted).expect("dir");
    chmod(&planted, 0o700);
    let file = planted.join(format!("{id}.json"));
    plant(&file, &id, &topology, &victim, sleeper);
    chown(&file, user.uid, user.gid);
    chown(&planted, user.uid, user.gid);
    let out = sb.run_in(&planted, &["emulate", "down", "--all"]);
    assert!(netns_exists(&victim), "{}", text(&out));
    assert!(sb.sleeper_alive(sleeper.0), "{}", text(&out));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&planted.display().to_string())
            && stderr.contains(&format!("owned by uid {}", user.uid)),
        "{}",
        text(&out)
    );

    // Root's directory, the user's file in it (planted before the directory was made private).
    chown(&planted, 0, 0);
    let out = sb.run_in(&planted, &["emulate", "down", "--all"]);
    assert!(netns_exists(&victim), "{}", text(&out));
    assert!(sb.sleeper_alive(sleeper.0), "{}", text(&out));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&file.display().to_string())
            && stderr.contains(&format!("owned by uid {}", user.uid)),
        "{}",
        text(&out)
    );
    assert!(file.exists(), "a refused state file is left as it is");
}

/// Finding 2: symlinks at `<lab>.json.tmp` and `<lab>.log` do not make `up` write through them.
#[test]
fn symlinks_in_the_state_directory_are_not_followed() {
    let Some(mut sb) = Sandbox::new("symlink") else {
        return;
    };
    let topology = sb.topology.clone();
    let id = sb.id_of(&topology);
    let mut targets = Vec::new();
    for suffix in ["json.tmp", "log"] {
        let target = sb.dir.join(format!("precious-{suffix}"));
        std::fs::write(&target, "precious\n").expect("written");
        chmod(&target, 0o600);
        let link = sb.state.join(format!("{id}.{suffix}"));
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        targets.push((target, link));
    }
    let out = sb.run(&["emulate", "up", sb.file()]);
    for (target, link) in &targets {
        assert_eq!(
            std::fs::read_to_string(target).expect("target"),
            "precious\n",
            "up wrote through {}: {}",
            link.display(),
            text(&out)
        );
        let mode = std::fs::metadata(target)
            .expect("target")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    if out.status.success() {
        sb.down_ok(&topology);
    } else {
        // A clear error naming the symlink, and nothing left of the attempt.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            targets
                .iter()
                .any(|(_, link)| stderr.contains(&link.display().to_string())),
            "{}",
            text(&out)
        );
        assert!(stderr.contains("symbolic link"), "{}", text(&out));
        assert_eq!(sb.lab_namespaces(&id), Vec::<String>::new());
    }
}

/// Finding 3: lab ids have 64 bits, and `down OTHERFILE` refuses a state file (under
/// OTHERFILE's id, as after a collision) that records another topology file.
#[test]
fn down_of_another_file_refuses_a_state_that_records_a_different_file() {
    let Some(mut sb) = Sandbox::new("collision") else {
        return;
    };
    let other = sb.dir.join("other.yaml");
    std::fs::write(&other, TOPOLOGY).expect("written");
    let other_id = sb.id_of(&other);
    let id = sb.up();
    for lab in [&id, &other_id] {
        assert!(
            lab.len() >= 16 && lab.bytes().all(|b| b.is_ascii_hexdigit()),
            "lab id `{lab}` is shorter than 64 bits"
        );
    }
    assert_ne!(id, other_id);
    let built = sb.lab_namespaces(&id);
    assert!(!built.is_empty());
    // What a collision would look like: the lab of lab.yaml under other.yaml's id.
    let mut state = sb.read_state(&sb.state_file(&id));
    state["lab"] = other_id.clone().into();
    std::fs::write(sb.state_file(&other_id), state.to_string()).expect("written");
    std::fs::remove_file(sb.state_file(&id)).expect("moved");
    let out = sb.run(&["emulate", "down", other.to_str().expect("utf-8")]);
    assert_eq!(sb.lab_namespaces(&id), built, "{}", text(&out));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(sb.file()),
        "the refusal names the file the state records: {}",
        text(&out)
    );
    // Put back, it is removed as usual.
    state["lab"] = id.clone().into();
    std::fs::write(sb.state_file(&id), state.to_string()).expect("written");
    std::fs::remove_file(sb.state_file(&other_id)).expect("moved");
    sb.down_ok(&sb.topology.clone());
    assert_eq!(sb.lab_namespaces(&id), Vec::<String>::new());
}

/// Finding 8: `down` by a user who is not root is refused at once (exit 2, "needs root"), and
/// touches nothing.
#[test]
fn down_by_a_user_who_is_not_root_is_refused_at_once() {
    let test = "down_by_a_user_who_is_not_root_is_refused_at_once";
    let Some(mut sb) = Sandbox::new("nonroot") else {
        return;
    };
    let runner = if works("sh", &["-c", "command -v runuser"]) {
        "runuser"
    } else if works("sh", &["-c", "command -v setpriv"]) {
        "setpriv"
    } else {
        eprintln!("SKIPPED {test}: needs runuser or setpriv");
        return;
    };
    let Some(user) = sb.user("n", test) else {
        return;
    };
    let id = sb.up();
    let built = sb.lab_namespaces(&id);
    let file = sb.file().to_owned();
    for args in [["emulate", "down", &file], ["emulate", "down", "--all"]] {
        let mut command = Command::new(runner);
        if runner == "runuser" {
            command.args(["-u", &user.name, "--"]);
        } else {
            command.args([
                format!("--reuid={}", user.uid),
                format!("--regid={}", user.gid),
                "--clear-groups".into(),
            ]);
        }
        let started = Instant::now();
        let out = command
            .arg(EXE)
            .args(args)
            .env("REACHLAB_STATE_DIR", &sb.state)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr.contains("needs root"), "{}", text(&out));
        assert!(!stderr.contains("Permission denied"), "{}", text(&out));
        assert!(started.elapsed() < Duration::from_secs(5), "{}", text(&out));
        assert_eq!(sb.lab_namespaces(&id), built, "{}", text(&out));
    }
    sb.down_ok(&sb.topology.clone());
}

/// Finding 8: when `up` is refused because namespaces named for the lab exist but no state file
/// lists them, its hint is a command that removes them (run here), after which `up` works.
#[test]
fn the_hint_after_a_refused_up_removes_the_leftovers() {
    let Some(mut sb) = Sandbox::new("hint") else {
        return;
    };
    let topology = sb.topology.clone();
    let id = sb.id_of(&topology);
    let stray = sb.victim(format!("reachlab-{id}-switch"));
    let out = sb.run(&["emulate", "up", sb.file()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let hint = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("hint:"))
        .unwrap_or_else(|| panic!("no hint: {}", text(&out)));
    let command = hint
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|c| c.contains("ip netns del") && c.contains(&stray))
        .unwrap_or_else(|| panic!("the hint names no command removing {stray}: {hint}"));
    assert!(works("sh", &["-c", command]), "`{command}` failed");
    assert!(!netns_exists(&stray), "`{command}` left {stray}");
    sb.up();
    sb.down_ok(&topology);
    assert_eq!(sb.lab_namespaces(&id), Vec::<String>::new());
}

/// Whether the test may run (root, iproute2): see `support`.
fn can_run(test: &str) -> bool {
    support::can_run(&format!("emulate_trust ({test})"), &[support::IP])
}
