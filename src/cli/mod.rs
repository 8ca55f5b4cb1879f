//! Command-line front ends of the binary that are big enough for a file of their own. Like
//! `main.rs`, they only parse, call the library and print.

#[cfg(all(feature = "emulate", target_os = "linux"))]
pub mod emulate;
