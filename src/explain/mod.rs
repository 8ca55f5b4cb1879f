//! Explanations: why a probe failed, in the user's words and pointing at the file, and the
//! shape of a verified fix (found by `crate::fix`, which re-runs probes on changed copies of
//! the network).

mod cause;
mod fix;
mod why;

pub use cause::Cause;
pub use fix::{DroppedFix, Fix};
pub use why::{Why, why};
