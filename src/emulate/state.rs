//! The state directory and the state file of a lab: the list of everything `up` creates,
//! written *before* each object is created, so that `down` removes exactly that, also after a
//! crash or `kill -9` of `up`. One JSON file per lab in the state directory (`/run/reachlab`, or
//! `$REACHLAB_STATE_DIR`).
//!
//! The emulator runs as root and `down` deletes what a state file lists, so a state file is
//! trusted only as far as this module checks it: the directory must be owned by the running user
//! and writable by nobody else (it is created mode 0700), a state file likewise (and a regular
//! file with one link, opened without following symlinks), and every file written there is
//! created with `O_NOFOLLOW` (the temporary file also with `O_EXCL` under a unique name). A
//! process recorded in a state file is signalled only when `/proc` shows that it is reachlab
//! serving (or building) that very lab.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use nix::libc;
use serde::{Deserialize, Serialize};

use super::EmulateError;
use super::error::Refusal;
use super::names::LabId;

/// The default state directory: on tmpfs, gone at reboot like the namespaces themselves.
pub const DEFAULT_STATE_DIR: &str = "/run/reachlab";

/// The largest state file read (a lab of 100 000 nodes lists about 7 MB of names).
const MAX_STATE_BYTES: u64 = 64 << 20;

/// The state directory in use.
pub fn state_dir() -> PathBuf {
    std::env::var_os("REACHLAB_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether an object with this owner and mode may be trusted by user `uid`: owned by it, and
/// writable by neither group nor others.
fn trusted(owner: u32, mode: u32, uid: u32) -> Result<(), Refusal> {
    if owner != uid {
        return Err(Refusal::NotOwned {
            owner,
            expected: uid,
        });
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    Err(Refusal::Writable {
        who,
        mode: mode & 0o7777,
    })
}

/// Checks the state directory `dir`: a directory (a symlink to one is followed), owned by the
/// running user and writable by nobody else. `Ok(false)` when it does not exist.
pub fn check_dir(dir: &Path) -> Result<bool, EmulateError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(EmulateError::io(
                format!("reading the state directory {}", dir.display()),
                e,
            ));
        }
    };
    let refused = |refusal| EmulateError::Refused {
        path: dir.to_owned(),
        refusal,
    };
    if !meta.is_dir() {
        return Err(refused(Refusal::WrongKind {
            expected: "directory",
        }));
    }
    trusted(meta.uid(), meta.mode(), euid()).map_err(refused)?;
    Ok(true)
}

/// Creates the state directory (mode 0700) unless it exists, and checks it.
pub fn prepare_dir(dir: &Path) -> Result<(), EmulateError> {
    if !check_dir(dir)? {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                EmulateError::io(format!("creating the state directory {}", dir.display()), e)
            })?;
        check_dir(dir)?;
    }
    Ok(())
}

/// Checks a file opened in the state directory: a regular file with one link, owned by the
/// running user and writable by nobody else.
fn check_file(path: &Path, file: &File) -> Result<fs::Metadata, EmulateError> {
    let meta = file
        .metadata()
        .map_err(|e| EmulateError::io(format!("reading {}", path.display()), e))?;
    let refused = |refusal| EmulateError::Refused {
        path: path.to_owned(),
        refusal,
    };
    if !meta.is_file() {
        return Err(refused(Refusal::WrongKind {
            expected: "regular file",
        }));
    }
    trusted(meta.uid(), meta.mode(), euid()).map_err(refused)?;
    if meta.nlink() != 1 {
        return Err(refused(Refusal::HardLinked {
            links: meta.nlink(),
        }));
    }
    Ok(meta)
}

/// The error for opening `path` in the state directory; a symlink is a refusal.
fn open_error(path: &Path, what: &str, e: std::io::Error) -> EmulateError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        EmulateError::Refused {
            path: path.to_owned(),
            refusal: Refusal::Symlink,
        }
    } else {
        EmulateError::io(format!("{what} {}", path.display()), e)
    }
}

/// Opens (creating, mode 0600) and empties the listener's log: never through a symlink, never a
/// file someone else owns or has linked there.
pub fn open_log(path: &Path) -> Result<File, EmulateError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, "creating", e))?;
    check_file(path, &file)?;
    file.set_len(0)
        .map_err(|e| EmulateError::io(format!("emptying {}", path.display()), e))?;
    Ok(file)
}

/// A process the emulator started, identified by pid *and* start time, so that a recycled pid
/// is never signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedProcess {
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`: clock ticks after boot.
    pub start_time: u64,
}

impl OwnedProcess {
    /// The process `pid` as it is now.
    pub fn of(pid: i32) -> Option<Self> {
        Some(OwnedProcess {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// Whether this very process still runs (not a zombie, not a recycled pid).
    pub fn is_alive(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => {
                let fields = stat_fields(&stat);
                fields.first().is_some_and(|s| *s != "Z")
                    && fields.get(19).and_then(|t| t.parse().ok()) == Some(self.start_time)
            }
            Err(_) => false,
        }
    }

    /// Whether this process is the listener process of the lab whose state file is
    /// `state_path`: a reachlab executable running `emulate serve --state STATE_PATH`.
    pub fn serves(&self, state_path: &Path) -> Result<(), String> {
        let seen = Seen::of(self.pid)?;
        seen.is_reachlab()?;
        match &seen.args[1..] {
            [emulate, serve, flag, state]
                if emulate == "emulate" && serve == "serve" && flag == "--state" =>
            {
                if same_file(&seen.resolve(state), state_path) {
                    Ok(())
                } else {
                    Err(format!(
                        "it serves {}, not {}",
                        Path::new(state).display(),
                        state_path.display()
                    ))
                }
            }
            _ => Err(format!(
                "its command line is `{}`, not `reachlab emulate serve --state {}`",
                seen.command_line(),
                state_path.display()
            )),
        }
    }

    /// Whether this process is a reachlab `emulate up` (or `check`, `ping`, `ssh`, `curl`, which
    /// build labs too) of the topology file `file` (or of a directory holding it).
    pub fn builds(&self, file: &Path) -> Result<(), String> {
        let seen = Seen::of(self.pid)?;
        seen.is_reachlab()?;
        let builds = seen.args.get(1).is_some_and(|a| a == "emulate")
            && seen.args.get(2).is_some_and(|a| {
                ["up", "check", "ping", "ssh", "curl"]
                    .iter()
                    .any(|c| a == c)
            });
        let names_file = seen
            .args
            .iter()
            .skip(3)
            .any(|arg| fs::canonicalize(seen.resolve(arg)).is_ok_and(|p| file.starts_with(&p)));
        if builds && names_file {
            Ok(())
        } else {
            Err(format!(
                "its command line is `{}`, not a `reachlab emulate up {}`",
                seen.command_line(),
                file.display()
            ))
        }
    }
}

/// What `/proc` shows of a process.
struct Seen {
    exe: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
}

impl Seen {
    fn of(pid: i32) -> Result<Self, String> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let exe = fs::read_link(proc.join("exe"))
            .map_err(|e| format!("its executable cannot be read ({e})"))?;
        let cmdline = fs::read(proc.join("cmdline"))
            .map_err(|e| format!("its command line cannot be read ({e})"))?;
        let mut args: Vec<OsString> = cmdline
            .split(|b| *b == 0)
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect();
        if args.last().is_some_and(|a| a.is_empty()) {
            args.pop();
        }
        if args.is_empty() {
            return Err("it has no command line".into());
        }
        Ok(Seen {
            exe,
            args,
            cwd: fs::read_link(proc.join("cwd")).ok(),
        })
    }

    /// Whether the executable is reachlab: named `reachlab`, or this very executable.
    fn is_reachlab(&self) -> Result<(), String> {
        if is_reachlab_exe(&self.exe, std::env::current_exe().ok().as_deref()) {
            Ok(())
        } else {
            Err(format!("its executable is {}", self.exe.display()))
        }
    }

    /// A path argument, as the process sees it.
    fn resolve(&self, arg: &OsString) -> PathBuf {
        match &self.cwd {
            Some(cwd) => cwd.join(arg),
            None => PathBuf::from(arg),
        }
    }

    fn command_line(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whether `exe` (as `/proc/PID/exe` shows it) is a reachlab binary: its file name is
/// `reachlab` (also once replaced by a newer build: `reachlab (deleted)`), or it is `own`.
fn is_reachlab_exe(exe: &Path, own: Option<&Path>) -> bool {
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name
        .as_deref()
        .map(|n| n.strip_suffix(" (deleted)").unwrap_or(n));
    name == Some("reachlab") || own.is_some_and(|own| own == exe)
}

/// Whether `a` and `b` are one file (same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces): state first.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat).get(19)?.parse().ok()
}

/// What a lab consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    pub lab: String,
    /// The topology file, canonical.
    pub file: PathBuf,
    /// Every namespace that exists or may exist (listed before it is created).
    pub namespaces: Vec<String>,
    /// The listener process (`reachlab emulate serve`), once started.
    pub server: Option<OwnedProcess>,
    /// The `up` that built it.
    pub builder: Option<OwnedProcess>,
    /// Set once `up` finished.
    pub complete: bool,
    /// What could not be emulated (e.g. latency without `sch_netem`).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The real dockerd of each Docker host (`--dockerd`): listed before its directory is
    /// made, its process once started.
    #[serde(default)]
    pub dockerd: Vec<DockerdRun>,
}

/// A dockerd this lab runs: its directory (data, exec root, socket, log), the namespace it
/// runs in, and its process once started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerdRun {
    pub dir: PathBuf,
    pub namespace: String,
    pub process: Option<OwnedProcess>,
}

impl LabState {
    pub fn path(dir: &Path, lab: &LabId) -> PathBuf {
        dir.join(format!("{lab}.json"))
    }

    /// Reads a state file, after checking its directory and the file itself (see the module's
    /// comment): anything untrusted is refused, never read.
    pub fn load(path: &Path) -> Result<Self, EmulateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            check_dir(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| open_error(path, "reading", e))?;
        let meta = check_file(path, &file)?;
        if meta.len() > MAX_STATE_BYTES {
            return Err(EmulateError::Refused {
                path: path.to_owned(),
                refusal: Refusal::TooLarge {
                    limit: MAX_STATE_BYTES,
                },
            });
        }
        let mut text = String::new();
        file.take(MAX_STATE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| EmulateError::State {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        serde_json::from_str(&text).map_err(|e| EmulateError::State {
            path: path.to_owned(),
            message: format!("not a reachlab state file: {e}"),
        })
    }

    /// Writes the file atomically (a new file, under a name nobody else can have chosen,
    /// renamed over the old one), and syncs it: the list must be on disk before the objects it
    /// names exist. Creates the state directory (mode 0700) if needed, and checks it.
    pub fn save(&self, path: &Path) -> Result<(), EmulateError> {
        let fail = |e: std::io::Error| EmulateError::State {
            path: path.to_owned(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            prepare_dir(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| EmulateError::State {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let (tmp, mut file) = create_temporary(path)?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(())
    }

    /// Every state file in `dir` (named `<lab id>.json`), with its lab id, once the directory
    /// passed [`check_dir`]. None when the directory does not exist.
    pub fn all(dir: &Path) -> Result<Vec<(LabId, PathBuf)>, EmulateError> {
        if !check_dir(dir)? {
            return Ok(Vec::new());
        }
        let entries = fs::read_dir(dir).map_err(|e| {
            EmulateError::io(format!("reading the state directory {}", dir.display()), e)
        })?;
        let mut labs: Vec<(LabId, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                let id = LabId::parse(p.file_stem()?.to_str()?)?;
                (p.extension()? == "json").then_some((id, p))
            })
            .collect();
        labs.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(labs)
    }
}

/// A new file beside `path` for writing it atomically: `O_CREAT | O_EXCL | O_NOFOLLOW`, mode
/// 0600, under a name with this process's id and a counter, so that nothing planted there is
/// ever opened.
fn create_temporary(path: &Path) -> Result<(PathBuf, File), EmulateError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..16 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(
            "{name}.tmp.{}.{}.{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(open_error(&tmp, "creating", e)),
        }
    }
    let (tmp, e) =
        last.unwrap_or_else(|| (path.to_owned(), std::io::ErrorKind::AlreadyExists.into()));
    Err(open_error(&tmp, "creating", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private directory (mode 0700) for one test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("reachlab-state-test-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .expect("temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn sample() -> LabState {
        LabState {
            lab: "0123456789abcdef".into(),
            file: "/x/a.yaml".into(),
            namespaces: vec!["reachlab-0123456789abcdef-switch".into()],
            server: None,
            builder: OwnedProcess::of(std::process::id() as i32),
            complete: false,
            warnings: vec![],
            dockerd: Vec::new(),
        }
    }

    fn refusal(e: EmulateError) -> Refusal {
        match e {
            EmulateError::Refused { refusal, .. } => refusal,
            other => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = OwnedProcess::of(std::process::id() as i32).expect("own stat");
        assert!(me.is_alive());
        let recycled = OwnedProcess {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.is_alive());
    }

    #[test]
    fn a_state_file_round_trips() {
        let dir = TempDir::new("round-trip");
        let id = LabId::parse("0123456789abcdef").expect("id");
        let path = LabState::path(&dir.0, &id);
        sample().save(&path).expect("saved");
        assert_eq!(LabState::load(&path).expect("loaded"), sample());
        assert_eq!(LabState::all(&dir.0).expect("listed"), vec![(id, path)]);
    }

    #[test]
    fn only_an_owner_writable_object_of_the_running_user_is_trusted() {
        assert_eq!(trusted(7, 0o40700, 7), Ok(()));
        assert_eq!(trusted(7, 0o40755, 7), Ok(()));
        assert_eq!(
            trusted(8, 0o40700, 7),
            Err(Refusal::NotOwned {
                owner: 8,
                expected: 7
            })
        );
        assert!(matches!(
            trusted(7, 0o40770, 7),
            Err(Refusal::Writable {
                who: "its group",
                ..
            })
        ));
        assert!(matches!(
            trusted(7, 0o41777, 7),
            Err(Refusal::Writable {
                who: "its group and others",
                mode: 0o1777
            })
        ));
    }

    #[test]
    fn a_state_directory_writable_by_others_is_refused() {
        let dir = TempDir::new("dir-mode");
        chmod(&dir.0, 0o777);
        let e = check_dir(&dir.0).expect_err("refused");
        assert!(e.to_string().contains(&dir.0.display().to_string()), "{e}");
        assert!(e.hint().is_some());
        assert!(matches!(refusal(e), Refusal::Writable { .. }));
        assert!(LabState::all(&dir.0).is_err());
        chmod(&dir.0, 0o700);
        assert_eq!(check_dir(&dir.0).ok(), Some(true));
    }

    #[test]
    fn a_missing_state_directory_is_created_private() {
        let dir = TempDir::new("create");
        let inner = dir.0.join("a/b");
        let id = LabId::parse("0123456789abcdef").expect("id");
        sample().save(&LabState::path(&inner, &id)).expect("saved");
        let mode = fs::metadata(&inner).expect("created").mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_state_file_writable_by_others_is_refused() {
        let dir = TempDir::new("file-mode");
        let path = dir.0.join("0123456789abcdef.json");
        sample().save(&path).expect("saved");
        chmod(&path, 0o666);
        assert!(matches!(
            refusal(LabState::load(&path).expect_err("refused")),
            Refusal::Writable { .. }
        ));
    }

    #[test]
    fn a_symlinked_state_file_is_refused() {
        let dir = TempDir::new("symlink");
        let real = dir.0.join("real.json");
        sample().save(&real).expect("saved");
        let link = dir.0.join("0123456789abcdef.json");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let e = LabState::load(&link).expect_err("refused");
        assert!(e.to_string().contains(&link.display().to_string()), "{e}");
        assert_eq!(refusal(e), Refusal::Symlink);
    }

    #[test]
    fn saving_never_follows_a_planted_temporary_file() {
        let dir = TempDir::new("tmp-link");
        let target = dir.0.join("target");
        fs::write(&target, "precious").expect("written");
        let path = dir.0.join("0123456789abcdef.json");
        std::os::unix::fs::symlink(&target, dir.0.join("0123456789abcdef.json.tmp"))
            .expect("symlink");
        sample().save(&path).expect("saved");
        assert_eq!(fs::read_to_string(&target).expect("read"), "precious");
    }

    #[test]
    fn the_log_is_never_opened_through_a_symlink() {
        let dir = TempDir::new("log-link");
        let target = dir.0.join("target");
        fs::write(&target, "precious").expect("written");
        let log = dir.0.join("0123456789abcdef.log");
        std::os::unix::fs::symlink(&target, &log).expect("symlink");
        assert_eq!(
            refusal(open_log(&log).expect_err("refused")),
            Refusal::Symlink
        );
        assert_eq!(fs::read_to_string(&target).expect("read"), "precious");
        fs::remove_file(&log).expect("removed");
        fs::hard_link(&target, &log).expect("linked");
        assert!(matches!(
            refusal(open_log(&log).expect_err("refused")),
            Refusal::HardLinked { links: 2 }
        ));
        assert_eq!(fs::read_to_string(&target).expect("read"), "precious");
    }

    #[test]
    fn only_a_reachlab_executable_counts_as_reachlab() {
        assert!(is_reachlab_exe(Path::new("/usr/bin/reachlab"), None));
        assert!(is_reachlab_exe(
            Path::new("/w/target/debug/reachlab (deleted)"),
            None
        ));
        assert!(is_reachlab_exe(
            Path::new("/w/target/debug/deps/emulate-0123"),
            Some(Path::new("/w/target/debug/deps/emulate-0123"))
        ));
        assert!(!is_reachlab_exe(Path::new("/usr/bin/sleep"), None));
        assert!(!is_reachlab_exe(Path::new("/tmp/reachlab-evil"), None));
    }

    #[test]
    fn a_process_that_is_not_reachlab_serving_the_lab_is_not_the_lab_s() {
        // This test binary is a reachlab executable (it is `own`) but not `emulate serve`.
        let me = OwnedProcess::of(std::process::id() as i32).expect("own stat");
        let why = me
            .serves(Path::new("/run/reachlab/0123456789abcdef.json"))
            .expect_err("not a server");
        assert!(why.contains("command line"), "{why}");
        assert!(me.builds(Path::new("/x/a.yaml")).is_err());
        // `sleep` is not reachlab at all.
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        // Between fork and exec the child is still this binary, then briefly has no command
        // line: ask again (for at most 5 s) until it is `sleep` for `/proc` too.
        let child = OwnedProcess::of(sleep.id() as i32).expect("sleep's stat");
        let mut why = String::new();
        for _ in 0..500 {
            why = child.serves(Path::new("/x")).expect_err("not a server");
            if why.contains("executable") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = sleep.kill();
        let _ = sleep.wait();
        assert!(why.contains("executable"), "{why}");
    }

    #[test]
    fn one_file_by_two_paths_is_the_same_file() {
        let dir = TempDir::new("same");
        let a = dir.0.join("a");
        fs::write(&a, "x").expect("written");
        fs::write(dir.0.join("b"), "x").expect("written");
        assert!(same_file(&a, &dir.0.join(".").join("a")));
        assert!(!same_file(&a, &dir.0.join("b")));
        assert!(!same_file(&a, &dir.0.join("missing")));
    }
}
