//! Where a cluster's Kubernetes objects come from: its manifest files — paths confined to the
//! topology file's directory, regular UTF-8 files of at most
//! [`crate::format::MAX_FILE_BYTES`], multi-document YAML — and then its inline `objects:`,
//! each read into a typed [`Object`] that remembers where it was written.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ClusterSpec;
use super::objects::Object;
use crate::format::{Code, Diagnostic, Located, ReadError};

/// The cluster's objects: those of each manifest in order (empty documents skipped), then the
/// inline ones. A manifest that cannot be read is an error and contributes nothing.
pub(super) fn objects(
    cluster: &ClusterSpec,
    base: &Path,
    out: &mut Vec<Diagnostic>,
) -> Vec<Object> {
    let mut objects = Vec::new();
    for path in &cluster.manifests {
        let Some(documents) = documents(base, path, out) else {
            continue;
        };
        objects.extend(
            documents
                .iter()
                .filter(|d| !d.is_null())
                .map(|d| Object::read(d, path.span, &path.value)),
        );
    }
    let inline = format!("inline objects of cluster `{}`", cluster.name.value);
    objects.extend(
        cluster
            .objects
            .iter()
            .map(|o| Object::read(o, cluster.name.span, &inline)),
    );
    objects
}

/// The YAML documents of the manifest at `path` (relative to `base`); `None` with an error
/// at the path when it is refused, unreadable or not YAML.
fn documents(base: &Path, path: &Located<String>, out: &mut Vec<Diagnostic>) -> Option<Vec<Value>> {
    let full = match confined_manifest(base, &path.value) {
        Ok(full) => full,
        Err(message) => {
            out.push(
                Diagnostic::error(Code::Io, path.span, message)
                    .label("not a manifest reachlab reads")
                    .hint("manifest paths are relative to the topology file and stay inside its directory; copy the manifest there"),
            );
            return None;
        }
    };
    let text = match read_manifest(&full) {
        Ok(t) => t,
        Err(e) => {
            out.push(
                Diagnostic::error(Code::Io, path.span, format!("manifest {}: {e}", path.value))
                    .label("unreadable")
                    .hint(e.hint()),
            );
            return None;
        }
    };
    match serde_saphyr::from_multiple::<Value>(&text) {
        Ok(documents) => Some(documents),
        Err(e) => {
            out.push(
                Diagnostic::error(
                    Code::YamlSyntax,
                    path.span,
                    format!(
                        "manifest {} is not valid YAML: {}",
                        path.value,
                        e.without_snippet()
                    ),
                )
                .label("bad manifest")
                .hint("check it with `kubectl apply --dry-run=client -f`"),
            );
            None
        }
    }
}

fn confined_manifest(base: &Path, written: &str) -> Result<PathBuf, String> {
    crate::format::confined_path(base, written, "manifest")
}

/// Reads a manifest's text: a regular UTF-8 file of at most [`crate::format::MAX_FILE_BYTES`].
fn read_manifest(path: &Path) -> Result<String, ReadError> {
    let bytes = crate::format::read_regular(path, crate::format::MAX_FILE_BYTES as u64)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_stay_inside_the_topology_directory() {
        let dir = std::env::temp_dir().join(format!("reachlab-confine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lab")).unwrap();
        std::fs::write(dir.join("lab/app.yaml"), "kind: Pod\n").unwrap();
        std::fs::write(dir.join("out.yaml"), "kind: Pod\n").unwrap();
        let base = dir.join("lab");
        let inside = confined_manifest(&base, "app.yaml");
        let absolute = confined_manifest(&base, "/etc/passwd");
        let escaping = confined_manifest(&base, "../out.yaml");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(inside.is_ok(), "{inside:?}");
        assert!(absolute.is_err_and(|e| e.contains("is absolute")));
        assert!(escaping.is_err_and(|e| e.contains("leads outside")));
    }
}
