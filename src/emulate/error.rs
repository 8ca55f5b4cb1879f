//! What can go wrong while building, probing or removing an emulated lab, each with the words a
//! user needs to fix it; and [`Refusal`], why the emulator (running as root) will not act on a
//! state directory, a state file, or something a state file names.

use std::path::PathBuf;

/// An emulator failure.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error("the emulator needs root: it creates network namespaces")]
    NotRoot,
    #[error("`reachlab emulate down` needs root: it deletes network namespaces")]
    DownNotRoot,
    #[error("`{tool}` is missing: the emulator runs it to {purpose}")]
    MissingTool {
        tool: &'static str,
        purpose: &'static str,
        package: &'static str,
    },
    #[error("interrupted while {what}; nothing was built")]
    InterruptedBefore { what: String },
    #[error("lab `{lab}` of {file} is already up, or left over from an interrupted run")]
    AlreadyUp {
        lab: String,
        file: PathBuf,
        leftovers: Leftovers,
    },
    #[error("no lab of {file} is up (no state file {state})")]
    NotUp { file: PathBuf, state: PathBuf },
    #[error("{what} failed: {message}")]
    Command { what: String, message: String },
    #[error("state file {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("refusing {path}: {refusal}")]
    Refused { path: PathBuf, refusal: Refusal },
    #[error("{0}")]
    Unsupported(String),
    #[error("interrupted; everything built so far was removed")]
    Interrupted,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// What stands in the way of a new `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftovers {
    /// A state file: `down FILE` removes what it lists.
    StateFile(PathBuf),
    /// Namespaces with the lab's names that no state file lists: `down` leaves them alone.
    Namespaces(Vec<String>),
}

/// Why the emulator does not act on a path or on an entry of a state file. Everything refused
/// is reported, and left as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a {expected}")]
    WrongKind { expected: &'static str },
    #[error("it is owned by uid {owner}, not by uid {expected} (the user running reachlab)")]
    NotOwned { owner: u32, expected: u32 },
    #[error("it is writable by {who} (mode {mode:04o})")]
    Writable { who: &'static str, mode: u32 },
    #[error("it has {links} hard links")]
    HardLinked { links: u64 },
    #[error("it is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("it is named for lab `{named}` but records lab `{recorded}`")]
    LabMismatch { named: String, recorded: String },
    #[error("it records the topology file {recorded}, not {given}")]
    FileMismatch { recorded: PathBuf, given: PathBuf },
    #[error("namespace `{name}` is not one of lab {lab}'s (those are `reachlab-{lab}-…`)")]
    ForeignNamespace { name: String, lab: String },
    #[error("process {pid} (recorded as the lab's {role}) is not this lab's: {why}")]
    ForeignProcess {
        pid: i32,
        role: &'static str,
        why: String,
    },
}

impl Refusal {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Refusal::Symlink | Refusal::WrongKind { .. } | Refusal::HardLinked { .. } => {
                "nothing but reachlab's own files belongs in the state directory: look at what is \
                 there and remove it by hand"
                    .into()
            }
            Refusal::NotOwned { .. } | Refusal::Writable { .. } => {
                let uid = nix::unistd::geteuid();
                format!(
                    "the state directory and its files must be owned by uid {uid} (who runs \
                     reachlab) and writable by nobody else: look at who else could have written \
                     there, then `chown {uid} PATH && chmod go-w PATH`, or point \
                     REACHLAB_STATE_DIR at a private directory"
                )
            }
            Refusal::TooLarge { .. } | Refusal::LabMismatch { .. } => {
                "this is not a state file reachlab wrote: look at it and remove it by hand".into()
            }
            Refusal::FileMismatch { recorded, .. } => format!(
                "that lab belongs to {}: `reachlab emulate down {}`",
                recorded.display(),
                recorded.display()
            ),
            Refusal::ForeignNamespace { name, .. } => {
                format!("reachlab did not create it; if it is really unused: `ip netns del {name}`")
            }
            Refusal::ForeignProcess { pid, .. } => {
                format!("reachlab did not start it; look at it with `ps -fp {pid}`")
            }
        }
    }
}

impl EmulateError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            EmulateError::NotRoot => {
                Some("run it as root, e.g. `sudo reachlab emulate ...`".into())
            }
            EmulateError::DownNotRoot => {
                Some("run it as root, e.g. `sudo reachlab emulate down ...`".into())
            }
            EmulateError::MissingTool { package, .. } => {
                Some(format!("install it: `apt-get install -y {package}`"))
            }
            EmulateError::AlreadyUp {
                lab,
                file,
                leftovers,
            } => Some(match leftovers {
                Leftovers::StateFile(_) => format!(
                    "remove it first: `reachlab emulate down {}`",
                    file.display()
                ),
                Leftovers::Namespaces(names) => format!(
                    "no state file lists its namespaces, so `reachlab emulate down` leaves them \
                     alone; if nothing uses them, remove them: `{}`",
                    if names.len() <= 3 {
                        names
                            .iter()
                            .map(|n| format!("ip netns del {n}"))
                            .collect::<Vec<_>>()
                            .join(" && ")
                    } else {
                        format!(
                            "ip netns list | grep -o '^reachlab-{lab}-[^ ]*' | xargs -rn1 ip netns del"
                        )
                    }
                ),
            }),
            EmulateError::NotUp { file, .. } => Some(format!(
                "build it first: `reachlab emulate up {}`",
                file.display()
            )),
            EmulateError::Refused { refusal, .. } => Some(refusal.hint()),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        EmulateError::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_namespaces_get_a_hint_that_removes_them() {
        let e = EmulateError::AlreadyUp {
            lab: "0123456789abcdef".into(),
            file: "lab.yaml".into(),
            leftovers: Leftovers::Namespaces(vec!["reachlab-0123456789abcdef-switch".into()]),
        };
        let hint = e.hint().expect("hint");
        assert!(
            hint.contains("`ip netns del reachlab-0123456789abcdef-switch`"),
            "{hint}"
        );
        assert!(!hint.contains("reachlab emulate down lab.yaml"), "{hint}");
    }

    #[test]
    fn a_leftover_state_file_gets_a_hint_to_run_down() {
        let e = EmulateError::AlreadyUp {
            lab: "0123456789abcdef".into(),
            file: "lab.yaml".into(),
            leftovers: Leftovers::StateFile("/run/reachlab/0123456789abcdef.json".into()),
        };
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("`reachlab emulate down lab.yaml`"))
        );
    }

    #[test]
    fn every_refusal_has_a_hint() {
        let refusals = [
            Refusal::Symlink,
            Refusal::WrongKind { expected: "file" },
            Refusal::NotOwned {
                owner: 1,
                expected: 0,
            },
            Refusal::Writable {
                who: "others",
                mode: 0o777,
            },
            Refusal::HardLinked { links: 2 },
            Refusal::TooLarge { limit: 1 },
            Refusal::LabMismatch {
                named: "a".into(),
                recorded: "b".into(),
            },
            Refusal::FileMismatch {
                recorded: "/a".into(),
                given: "/b".into(),
            },
            Refusal::ForeignNamespace {
                name: "victim".into(),
                lab: "a".into(),
            },
            Refusal::ForeignProcess {
                pid: 1,
                role: "listener process",
                why: "it is sleep".into(),
            },
        ];
        for refusal in refusals {
            assert!(!refusal.hint().is_empty(), "{refusal}");
            let e = EmulateError::Refused {
                path: "/run/reachlab/x.json".into(),
                refusal,
            };
            assert!(e.to_string().contains("/run/reachlab/x.json"), "{e}");
            assert!(e.hint().is_some(), "{e}");
        }
    }
}
