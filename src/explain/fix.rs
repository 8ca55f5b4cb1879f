//! A verified fix as data: the changes, the YAML and patch a user pastes, and what the file's
//! other checks do with it, and a change the search verified that the file cannot take. The
//! search that finds and verifies fixes is `crate::fix`, above the analysis it re-runs; a
//! probe's result carries the fixes it found.

use crate::model::Outcome;
use crate::topology::edit::Edit;

/// One verified fix: the changes, as YAML, and what the probe does after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// One line per change, e.g. "give `pc` a default route via 192.168.1.1 (router `r1`)".
    pub summary: Vec<String>,
    /// The YAML to add, per node (what the edits say, for a reader).
    pub yaml: String,
    /// The same changes as edits of the topology file's text: what a patch is made of.
    pub edits: Vec<Edit>,
    /// The unified diff that makes the change in the file, once [`Fix::edits`] were applied to
    /// the file's text and the probe checked again on the file that results (see
    /// `fix::attach_patches`).
    pub patch: Option<String>,
    /// Why no patch could be written for this file although the fix has edits: the editor does
    /// not rewrite the layout the edit falls in (`crate::topology::edit`). Such a fix was
    /// verified on the loaded network only, not on a patched file, and says so.
    pub no_patch: Option<String>,
    /// The outcome once the change is applied (always `Reply`).
    pub outcome: Outcome,
    /// How many other checks (expectations and invariants) of the file held before and still
    /// hold with the fix.
    pub keeps: usize,
    /// The checks of the file that held before and no longer do with the fix, as
    /// `label (file:line:col)`. Such a fix is offered only when no fix keeps every check: the
    /// file then says that the failure is intended, or shares its cause.
    pub breaks: Vec<String>,
}

/// A change the search verified on the loaded network that is not offered as a fix, because
/// it could not be written into the file or did not hold there (see `fix::attach_patches`):
/// said instead of "none found", so that a user knows what the search saw and why it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFix {
    /// One line per change, as [`Fix::summary`].
    pub summary: Vec<String>,
    /// Why the file did not take it, e.g. "`openstack.security_groups`: the file has no item
    /// named `default` there".
    pub reason: String,
}
