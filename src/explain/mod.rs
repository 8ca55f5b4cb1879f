//! Explanations: why a probe failed, in the user's words and pointing at the file, and fixes
//! that were checked by running the probe again on a changed copy of the network.

mod fix;
mod why;

pub use fix::{Fix, find_fixes};
pub use why::{Why, served, why};
