//! Verified fixes as a user meets them: a fix is offered only if the failing probe then gets a
//! reply *and* every other check of the file still holds; narrow fixes come first; the printed
//! YAML can be pasted. Each topology is small enough to work out by hand (the comments say how).

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reachlab-fixes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

fn reachlab(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(["--color", "never"])
        .args(args)
        .output()
        .expect("reachlab runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `r` drops everything on input; `admin` must reach its ssh, `guest` must not. "accept tcp 22
/// first in the input chain" would open ssh to `guest` too and break the file's second
/// expectation, so the fix offered accepts `admin`'s address only.
const ROUTER_SSH: &str = "segments: [{ name: lan }]
nodes:
  - name: admin
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.10/24] }]
  - name: guest
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.66/24] }]
  - name: r
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    listen: [{ port: 22, ssh: \"SSH-2.0-OpenSSH_9.6\" }]
    firewall:
      input:
        policy: drop
        rules:
          - { state: [established, related], action: accept }
expect:
  - { from: admin, ssh: r, outcome: reply }
  - { from: guest, ssh: r, outcome: timeout }
  - { from: guest, ping: admin, outcome: reply }
";

#[test]
fn a_fix_never_breaks_another_check_of_the_file() {
    let path = scratch("router-ssh.yaml", ROUTER_SSH);
    let file = path.to_str().expect("utf-8");
    let (_, out) = reachlab(&["ssh", file, "admin", "r"]);
    assert!(
        out.contains("fix (verified: the probe then gets a reply, and all 2 other checks of the file still hold): accept tcp port 22 from 10.0.0.10 first in the input chain of `r`"),
        "{out}"
    );
    assert!(
        out.contains("- { src: 10.0.0.10, proto: tcp, dport: 22, action: accept }"),
        "{out}"
    );
    // The wide rule opens ssh to `guest`, against the file: never offered.
    assert!(!out.contains("from every source"), "{out}");

    // Pasted where the fix says (first in the chain), the whole file checks.
    let pasted = ROUTER_SSH.replace(
        "        rules:\n",
        "        rules:\n          - { src: 10.0.0.10, proto: tcp, dport: 22, action: accept }\n",
    );
    let fixed = scratch("router-ssh-fixed.yaml", &pasted);
    let (code, out) = reachlab(&["check", fixed.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{out}");
}

/// Without other checks in the way the wide rule is still not needed: the narrow one works and
/// comes first, and its wider twin is not offered beside it.
#[test]
fn the_narrowest_allow_comes_first_and_alone() {
    let only_admin: String = ROUTER_SSH
        .lines()
        .take_while(|l| !l.starts_with("expect:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = scratch("router-ssh-bare.yaml", &only_admin);
    let (_, out) = reachlab(&["ssh", path.to_str().expect("utf-8"), "admin", "r"]);
    assert!(
        out.contains("fix (verified: the probe then gets a reply): accept tcp port 22 from 10.0.0.10 first in the input chain of `r`"),
        "{out}"
    );
    assert_eq!(out.matches("\nfix ").count(), 1, "{out}");
}

/// `h` has no route to 10.0.2.0/24. Both `r1` (whose default route leads to `r2`) and `r2`
/// (which holds 10.0.2.0/24 itself) would carry it; the fix names `r2`, the router that really
/// holds the prefix, first.
#[test]
fn a_route_fix_goes_via_the_router_that_holds_the_prefix() {
    let text = "segments: [{ name: lan }, { name: far }]
nodes:
  - name: h
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.5/24] }]
  - name: r1
    forwarding: true
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]
    routes: [{ to: default, via: 10.0.0.2 }]
  - name: r2
    forwarding: true
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.2/24] }
      - { name: eth1, segment: far, addresses: [10.0.2.1/24] }
  - name: srv
    interfaces: [{ name: eth0, segment: far, addresses: [10.0.2.10/24] }]
    routes: [{ to: default, via: 10.0.2.1 }]
";
    let path = scratch("two-routers.yaml", text);
    let (_, out) = reachlab(&["ping", path.to_str().expect("utf-8"), "h", "srv"]);
    let first = out
        .lines()
        .find(|l| l.starts_with("fix "))
        .unwrap_or_else(|| panic!("a fix: {out}"));
    assert!(first.contains("via 10.0.0.2 (router `r2`)"), "{out}");
}

/// `mid` neither forwards nor has a route to `far`: the fix takes two changes on `mid`, printed
/// under one `- name: mid` (two entries of one node would not load).
#[test]
fn two_changes_on_one_node_are_one_entry() {
    let text = "segments: [{ name: lan }, { name: core }, { name: far }]
nodes:
  - name: h
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.5/24] }]
    routes: [{ to: default, via: 10.0.0.1 }]
  - name: mid
    interfaces:
      - { name: eth0, segment: lan, addresses: [10.0.0.1/24] }
      - { name: eth1, segment: core, addresses: [10.0.1.1/24] }
  - name: edge
    forwarding: true
    interfaces:
      - { name: eth0, segment: core, addresses: [10.0.1.2/24] }
      - { name: eth1, segment: far, addresses: [10.0.2.1/24] }
    routes: [{ to: 10.0.0.0/24, via: 10.0.1.1 }]
  - name: srv
    interfaces: [{ name: eth0, segment: far, addresses: [10.0.2.10/24] }]
    routes: [{ to: default, via: 10.0.2.1 }]
";
    let path = scratch("two-changes.yaml", text);
    let (_, out) = reachlab(&["ping", path.to_str().expect("utf-8"), "h", "srv"]);
    let fix: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("fix "))
        .take_while(|l| !l.starts_with("fix ") || l.contains("; "))
        .collect();
    assert!(
        fix.first().is_some_and(
            |l| l.contains("turn forwarding on at `mid`") && l.contains("give `mid` a ")
        ),
        "{out}"
    );
    assert_eq!(
        fix.iter().filter(|l| l.trim() == "- name: mid").count(),
        1,
        "{out}"
    );
    // Pasting it: the node's keys merged into the file's own entry for `mid`.
    let keys: Vec<&str> = fix
        .iter()
        .skip_while(|l| l.trim() != "- name: mid")
        .skip(1)
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();
    let pasted = text.replace(
        "  - name: mid\n",
        &format!("  - name: mid\n{}\n", keys.join("\n")),
    );
    let pasted = format!("{pasted}expect:\n  - {{ from: h, ping: srv, outcome: reply }}\n");
    let fixed = scratch("two-changes-fixed.yaml", &pasted);
    let (code, out) = reachlab(&["check", fixed.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{pasted}\n{out}");
}
