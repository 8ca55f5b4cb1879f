//! What the kernel tests share: whether this machine can run them. Tests that need root and
//! kernel tools say so and skip visibly (`SKIPPED …` on stderr) on a machine without them; with
//! `REACHLAB_REQUIRE_KERNEL=1` (set by `.ci/run`, which runs as root and installs the tools)
//! the skip is a failure instead.

#![allow(dead_code)] // each test binary uses its own part

use std::process::{Command, Stdio};

#[cfg(target_os = "linux")]
pub mod dockerd;
pub mod scratch;

/// iproute2's `ip`.
pub const IP: Tool = Tool {
    program: "ip",
    arg: "-V",
    package: "iproute2",
};
/// nftables' `nft`.
pub const NFT: Tool = Tool {
    program: "nft",
    arg: "--version",
    package: "nftables",
};
/// Linux traceroute (2.1, Dmitry Butskoy's).
pub const TRACEROUTE: Tool = Tool {
    program: "traceroute",
    arg: "--version",
    package: "traceroute",
};
/// util-linux's `setpriv` (runs a command as another user).
pub const SETPRIV: Tool = Tool {
    program: "setpriv",
    arg: "--version",
    package: "util-linux",
};

/// A program a test runs, how to ask it for its version, and the Debian package that has it.
pub struct Tool {
    pub program: &'static str,
    pub arg: &'static str,
    pub package: &'static str,
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Why the kernel tests cannot run here, if they cannot: not root, or a tool is missing.
pub fn missing(tools: &[Tool]) -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    tools.iter().find_map(|t| {
        let works = Command::new(t.program)
            .arg(t.arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!works).then(|| {
            format!(
                "`{}` is missing: apt-get install -y {}",
                t.program, t.package
            )
        })
    })
}

/// Whether `test` may run: true when root and `tools` are here; otherwise prints SKIPPED and
/// returns false, or fails under `REACHLAB_REQUIRE_KERNEL`.
pub fn can_run(test: &str, tools: &[Tool]) -> bool {
    let Some(reason) = missing(tools) else {
        return true;
    };
    assert!(
        std::env::var_os("REACHLAB_REQUIRE_KERNEL").is_none(),
        "kernel test {test} required but cannot run: {reason}"
    );
    eprintln!("SKIPPED {test}: {reason}");
    false
}
