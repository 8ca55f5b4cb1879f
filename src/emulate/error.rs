//! What can go wrong while building, probing or removing an emulated lab, each with the words a
//! user needs to fix it.

use std::path::PathBuf;

/// An emulator failure.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error("the emulator needs root: it creates network namespaces")]
    NotRoot,
    #[error("`{tool}` is missing: the emulator runs it to {purpose}")]
    MissingTool {
        tool: &'static str,
        purpose: &'static str,
        package: &'static str,
    },
    #[error("lab `{lab}` of {file} is already up, or left over from an interrupted run")]
    AlreadyUp { lab: String, file: PathBuf },
    #[error("no lab of {file} is up (no state file {state})")]
    NotUp { file: PathBuf, state: PathBuf },
    #[error("{what} failed: {message}")]
    Command { what: String, message: String },
    #[error("state file {path}: {message}")]
    State { path: PathBuf, message: String },
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

impl EmulateError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            EmulateError::NotRoot => {
                Some("run it as root, e.g. `sudo reachlab emulate ...`".into())
            }
            EmulateError::MissingTool { package, .. } => {
                Some(format!("install it: `apt-get install -y {package}`"))
            }
            EmulateError::AlreadyUp { file, .. } => Some(format!(
                "remove it first: `reachlab emulate down {}` (or `reachlab emulate down --all`)",
                file.display()
            )),
            EmulateError::NotUp { file, .. } => Some(format!(
                "build it first: `reachlab emulate up {}`",
                file.display()
            )),
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
