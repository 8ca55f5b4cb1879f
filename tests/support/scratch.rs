//! Files a test writes for itself: each alone in a folder of its own under the temporary
//! directory (`reachlab-<tag>-<pid>-<name>`), removed with whatever the test put beside it when
//! the test drops the [`Scratch`].

use std::path::{Path, PathBuf};

pub struct Scratch(PathBuf);

impl Scratch {
    /// A path for `name` in a new, empty folder (nothing written yet).
    pub fn path(tag: &str, name: &str) -> Scratch {
        let stem = name.split('.').next().unwrap_or(name);
        let dir =
            std::env::temp_dir().join(format!("reachlab-{tag}-{}-{stem}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir.join(name))
    }

    /// `text` written as `name` in a new folder.
    pub fn file(tag: &str, name: &str, text: &str) -> Scratch {
        let scratch = Scratch::path(tag, name);
        std::fs::write(&scratch.0, text).expect("written");
        scratch
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
