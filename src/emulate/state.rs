//! The state file of a lab: the list of everything `up` creates, written *before* each object is
//! created, so that `down` removes exactly that, also after a crash or `kill -9` of `up`. One
//! JSON file per lab in the state directory (`/run/reachlab`, or `$REACHLAB_STATE_DIR`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EmulateError;
use super::names::LabId;

/// The default state directory: on tmpfs, gone at reboot like the namespaces themselves.
pub const DEFAULT_STATE_DIR: &str = "/run/reachlab";

/// The state directory in use.
pub fn state_dir() -> PathBuf {
    std::env::var_os("REACHLAB_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
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
}

impl LabState {
    pub fn path(dir: &Path, lab: &LabId) -> PathBuf {
        dir.join(format!("{lab}.json"))
    }

    pub fn load(path: &Path) -> Result<Self, EmulateError> {
        let text = fs::read_to_string(path).map_err(|e| EmulateError::State {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| EmulateError::State {
            path: path.to_owned(),
            message: format!("not a reachlab state file: {e}"),
        })
    }

    /// Writes the file atomically (a new file renamed over the old one), and syncs it: the list
    /// must be on disk before the objects it names exist.
    pub fn save(&self, path: &Path) -> Result<(), EmulateError> {
        let fail = |e: std::io::Error| EmulateError::State {
            path: path.to_owned(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| EmulateError::State {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        {
            use std::io::Write as _;
            let mut file = fs::File::create(&tmp).map_err(fail)?;
            file.write_all(text.as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        fs::rename(&tmp, path).map_err(fail)
    }

    /// Every state file in `dir`, with its lab id.
    pub fn all(dir: &Path) -> Vec<(LabId, PathBuf)> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut labs: Vec<(LabId, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|p| {
                let id = LabId::parse(p.file_stem()?.to_str()?)?;
                (p.extension()? == "json").then_some((id, p))
            })
            .collect();
        labs.sort_by(|a, b| a.1.cmp(&b.1));
        labs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let dir = std::env::temp_dir().join(format!("reachlab-state-test-{}", std::process::id()));
        let state = LabState {
            lab: "0123abcd".into(),
            file: "/x/a.yaml".into(),
            namespaces: vec!["reachlab-0123abcd-switch".into()],
            server: None,
            builder: OwnedProcess::of(std::process::id() as i32),
            complete: false,
            warnings: vec![],
        };
        let id = LabId::parse("0123abcd").expect("id");
        let path = LabState::path(&dir, &id);
        state.save(&path).expect("saved");
        assert_eq!(LabState::load(&path).expect("loaded"), state);
        assert_eq!(LabState::all(&dir), vec![(id, path)]);
        let _ = fs::remove_dir_all(&dir);
    }
}
