//! Verified fixes as a user meets them: a fix is offered only if the failing probe then gets a
//! reply *and* every other check of the file still holds; narrow fixes come first; the printed
//! YAML can be pasted. Each topology is small enough to work out by hand (the comments say how).

use std::path::PathBuf;
use std::process::Command;

mod support;
use support::scratch::Scratch;

fn scratch(name: &str, text: &str) -> Scratch {
    Scratch::file("fixes", name, text)
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
    // The YAML of the fix (the JSON's `yaml`) names `mid` once.
    let (_, json) = reachlab(&[
        "ping",
        "--format",
        "json",
        path.to_str().expect("utf-8"),
        "h",
        "srv",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let yaml = json["fixes"][0]["yaml"].as_str().expect("yaml");
    assert_eq!(yaml.matches("- name: mid").count(), 1, "{yaml}");
    assert!(
        fix.contains(&"+    forwarding: true")
            && fix.iter().any(|l| l.starts_with("+      - { to: ")),
        "{out}"
    );
    // Pasting it: the printed patch, applied by `git apply`, to a file with the expectation.
    let with_expect = format!("{text}expect:\n  - {{ from: h, ping: srv, outcome: reply }}\n");
    let dir = path.parent().expect("dir").join("paste");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("two-changes.yaml"), &with_expect).expect("written");
    let patch = paste_first_patch(
        &out,
        path.to_str().expect("utf-8"),
        &dir,
        "two-changes.yaml",
    );
    let (code, out) = reachlab(&[
        "check",
        dir.join("two-changes.yaml").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{patch}\n{out}");
}

/// Docker drops what enters `docker0` from outside unless it is for a published port (its
/// DOCKER chain). `admin` has a route to the containers and wants db's 5432, not its 22. A rule
/// in the host's `firewall:` would come after Docker's and change nothing; the fix is a
/// DOCKER-USER rule (FORWARD runs that chain first), from admin's address only, and pasting
/// the printed patch makes the file's expectation hold.
#[test]
fn a_fix_past_dockers_rules_is_a_docker_user_rule_that_pastes() {
    let text = "segments: [{ name: lan }]
nodes:
  - name: host
    interfaces: [{ name: eth0, segment: lan, addresses: [192.168.1.10/24] }]
  - name: admin
    interfaces: [{ name: eth0, segment: lan, addresses: [192.168.1.20/24] }]
    routes: [{ to: 172.17.0.0/16, via: 192.168.1.10 }]
docker:
  engines:
    - host: host
      containers:
        - name: db
          listen: [{ port: 5432 }, { port: 22 }]
expect:
  - { from: admin, tcp: 172.17.0.2, port: 22, outcome: timeout }
";
    let path = scratch("docker-user.yaml", text);
    let printed = path.to_str().expect("utf-8");
    let (_, out) = reachlab(&["tcp", printed, "admin", "172.17.0.2", "5432"]);
    let fix = out
        .lines()
        .find(|l| l.starts_with("fix "))
        .unwrap_or_default();
    assert!(
        fix.contains("accept tcp port 5432 from 192.168.1.20 first in DOCKER-USER"),
        "{out}"
    );
    let with_expect =
        format!("{text}  - {{ from: admin, tcp: 172.17.0.2, port: 5432, outcome: reply }}\n");
    let dir = path.parent().expect("dir").join("paste-docker");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("docker-user.yaml"), &with_expect).expect("written");
    let (code, before) = reachlab(&[
        "check",
        dir.join("docker-user.yaml").to_str().expect("utf-8"),
    ]);
    assert_eq!(
        code,
        Some(1),
        "the expectation fails before the fix:\n{before}"
    );
    let patch = paste_first_patch(&out, printed, &dir, "docker-user.yaml");
    assert!(patch.contains("+      docker_user:"), "{patch}");
    let (code, after) = reachlab(&[
        "check",
        dir.join("docker-user.yaml").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{patch}\n{after}");
}

/// Pastes the first patch printed in `out` (for the file `printed` names) as a user would:
/// `git apply` in `dir`, where the file is called `name`. Returns the patch.
fn paste_first_patch(out: &str, printed: &str, dir: &std::path::Path, name: &str) -> String {
    let patch: String = out
        .lines()
        .skip_while(|l| !l.starts_with("--- a/"))
        .take_while(|l| !l.starts_with("fix "))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(printed, name);
    std::fs::write(dir.join("fix.patch"), &patch).expect("written");
    let applied = Command::new("git")
        .args(["apply", "fix.patch"])
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        applied.status.success(),
        "{patch}\n{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    patch
}

/// What applying one fix's patch does to a file: the probe replies, and every check of the
/// file that held before still holds, except the ones the fix says it changes.
fn patch_holds(
    name: &str,
    text: &str,
    result: &reachlab::run::ProbeResult,
    fix: &reachlab::explain::Fix,
) -> Result<(), String> {
    use reachlab::invariants::{Judgement, statuses};
    use reachlab::topology::{edit, load_str};
    let config = reachlab::sim::SimConfig::default();
    let before = load_str(name, text).map_err(|r| format!("{:?}", r.diagnostics))?;
    let patched = edit::apply(text, &fix.edits).map_err(|e| e.to_string())?;
    let after = load_str(name, &patched)
        .map_err(|r| format!("patched file does not load: {:?}\n{patched}", r.diagnostics))?;
    let from = &before.network.node(result.request.from).name;
    let node = after.network.node_by_name(from).ok_or("sender gone")?.id;
    let run = reachlab::sim::run_probe(
        &after.network,
        node,
        result.request.dst,
        &result.run.kind,
        &config,
    );
    if run.outcome != reachlab::model::Outcome::Reply {
        return Err(format!("the probe is {} after the patch", run.outcome));
    }
    // This very probe is not a check to keep: it is what the fix changes.
    let mut old = before.network.clone();
    let mut new = after.network.clone();
    let this = |e: &reachlab::model::Expectation| {
        e.target.addr == result.request.dst
            && before.network.node(e.from).name == *from
            && reachlab::sim::ProbeKind::of(&e.probe, 1, None)
                == reachlab::sim::ProbeKind::of(&result.request.probe, 1, None)
    };
    old.expectations.retain(|e| !this(e));
    new.expectations.retain(|e| {
        let sender = &after.network.node(e.from).name;
        !(e.target.addr == result.request.dst
            && sender == from
            && reachlab::sim::ProbeKind::of(&e.probe, 1, None)
                == reachlab::sim::ProbeKind::of(&result.request.probe, 1, None))
    });
    let held = statuses(&old, &config, &[], Judgement::Exact);
    let now = statuses(&new, &config, &[], Judgement::Exact);
    // The patch moves text, so positions differ: checks are matched by their order, which a
    // patch that only adds keys and items keeps.
    assert_eq!(held.len(), now.len());
    let changed: Vec<&reachlab::invariants::Status> = held
        .iter()
        .zip(&now)
        .filter(|(h, n)| h.holds && !n.holds)
        .map(|(_, n)| n)
        .collect();
    if changed.len() != fix.breaks.len() {
        return Err(format!(
            "for {} {:?}: the fix says it changes {:?}, the patched file changes {:?}; held {:?} now {:?}",
            from,
            result.request.probe,
            fix.breaks,
            changed.iter().map(|s| &s.label).collect::<Vec<_>>(),
            held.iter()
                .map(|s| (&s.label, s.holds, s.origin.to_string()))
                .collect::<Vec<_>>(),
            now.iter()
                .map(|s| (&s.label, s.holds, s.origin.to_string()))
                .collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Every failing probe of a file (its expectations whose outcome is not a reply), with the fixes
/// offered for it; returns (probes, fixes with a patch), failing on any patch that does not hold.
fn every_fix_of(name: &str, text: &str) -> (usize, usize) {
    let Ok(loaded) = reachlab::topology::load_str(name, text) else {
        return (0, 0);
    };
    let config = reachlab::sim::SimConfig::default();
    let source = reachlab::topology::SourceFile::new(name, text);
    let (mut probes, mut patches) = (0, 0);
    for e in &loaded.network.expectations {
        let request = reachlab::run::ProbeRequest {
            from: e.from,
            written: e.target.written.clone(),
            dst: e.target.addr,
            probe: e.probe.clone(),
            count: 1,
            wait: None,
            ttl: None,
        };
        let mut result = reachlab::fix::diagnose(&loaded.network, request, &config);
        if result.run.outcome == reachlab::model::Outcome::Reply {
            continue;
        }
        probes += 1;
        let offered: Vec<reachlab::explain::Fix> = result.fixes.clone();
        reachlab::fix::attach_patches(&mut result, &loaded.network, &source, &config);
        for fix in offered
            .iter()
            .filter(|f| !result.fixes.iter().any(|g| g.summary == f.summary))
        {
            let why = match reachlab::topology::edit::apply(text, &fix.edits) {
                Err(e) => e.to_string(),
                Ok(patched) => match reachlab::topology::load_str(name, &patched) {
                    Err(r) => format!(
                        "does not load: {:?}",
                        r.diagnostics.first().map(|d| d.message.clone())
                    ),
                    Ok(_) => "the probe does not reply on the patched file".into(),
                },
            };
            eprintln!(
                "not offered (its patch does not hold) {name}: {}: {why}",
                fix.summary.join("; ")
            );
        }
        for fix in result.fixes.iter().filter(|f| !f.edits.is_empty()) {
            assert!(
                fix.patch.is_some(),
                "{name}: a fix offered without its patch"
            );
            if let Err(problem) = patch_holds(name, text, &result, fix) {
                panic!("{name}: fix `{}`: {problem}", fix.summary.join("; "));
            }
            patches += 1;
        }
    }
    (probes, patches)
}

/// The topology files of `topologies/`, sorted.
fn topology_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("topologies")
        .expect("topologies/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// The issue's acceptance: every fix printed for every failing probe of `topologies/`, applied
/// as its patch, makes the probe reply and changes no other check but those it names.
#[test]
fn every_fix_for_the_topologies_applies_as_printed() {
    let files = topology_files();
    let (mut probes, mut patches) = (0, 0);
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable");
        let (p, f) = every_fix_of(path.to_str().expect("utf-8"), &text);
        probes += p;
        patches += f;
    }
    println!(
        "fixes: {probes} failing probes in {} files, {patches} patches applied and checked",
        files.len()
    );
    assert!(
        patches >= 10,
        "only {patches} patches: the test checks too little"
    );
}

/// The same for the variants `reachlab fuzz` makes of a file (one element dropped or flipped),
/// written back as YAML by the topology writer (block style, another layout for the editor).
#[test]
fn every_fix_for_fuzzed_variants_applies_as_printed() {
    use reachlab::invariants::fuzz::FuzzTarget;
    let (mut variants, mut probes, mut patches) = (0, 0, 0);
    for file in [
        "topologies/firewall-stateful.yaml",
        "topologies/nat-port-forward.yaml",
        "topologies/basics-two-subnets.yaml",
    ] {
        let target = FuzzTarget::load(std::path::Path::new(file)).expect("loads");
        for mutant in target.mutants() {
            let Ok(net) = target.apply(&mutant.mutation) else {
                continue;
            };
            let Ok(text) = reachlab::topology::to_yaml(&reachlab::topology::to_file(&net)) else {
                continue;
            };
            variants += 1;
            let (p, f) = every_fix_of(&format!("{file}~{}", mutant.description), &text);
            probes += p;
            patches += f;
        }
    }
    println!(
        "fixes: {variants} fuzzed variants, {probes} failing probes, {patches} patches applied and checked"
    );
    assert!(
        patches >= 10,
        "only {patches} patches: the test checks too little"
    );
}

/// Without the hairpin masquerade, `nas` answers `laptop` past `gw`: `why:` names the
/// asymmetric path (it said the retried SYN "reached `nas` … not a router" after a redirect
/// that never happens), and the fix is the NAT rule docs/topology-format.md describes, as a
/// patch that `git apply` takes and after which the file checks with the probe expected to
/// reply.
#[test]
fn a_hairpin_without_masquerade_is_explained_and_fixed_with_nat() {
    let (_, out) = reachlab(&[
        "ssh",
        "topologies/nat-hairpin.yaml",
        "laptop",
        "203.0.113.10",
        "-p",
        "2222",
    ]);
    assert!(
        out.contains("the answer reached `laptop` from 192.168.1.5 (`nas`), not from 203.0.113.10")
            && out.contains("`gw` translated the request to 192.168.1.5 (DNAT), but `nas` answered `laptop` directly, past `gw`"),
        "{out}"
    );
    assert!(!out.contains("not a router"), "{out}");
    assert!(
        out.contains(
            "masquerade at `gw` what 192.168.1.0/24 sends to 192.168.1.5 tcp port 22 out of lan0"
        ),
        "{out}"
    );
    let text = std::fs::read_to_string("topologies/nat-hairpin.yaml").expect("file");
    let flipped = text.replace(
        "{ from: laptop, ssh: 203.0.113.10, port: 2222, outcome: timeout }",
        "{ from: laptop, ssh: 203.0.113.10, port: 2222, outcome: reply }",
    );
    assert_ne!(text, flipped);
    let file = scratch("nat-hairpin.yaml", &flipped);
    let dir = file.parent().expect("dir");
    let patch = paste_first_patch(&out, "topologies/nat-hairpin.yaml", dir, "nat-hairpin.yaml");
    let (code, out) = reachlab(&[
        "check",
        dir.join("nat-hairpin.yaml").to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{patch}\n{out}");
}

/// Docker's rules come before the file's own `firewall: forward:` rules on `vm`, so "accept
/// icmp first in the forward chain" could only be verified by inserting a rule the file cannot
/// express; pasted, it changed nothing. A fix is offered only when its patch, applied to the
/// file, makes the probe reply: the forward-chain rule never is, the DOCKER-USER rule is (and
/// says which other check it changes: it also opens ct3's network to peer's pings).
#[test]
fn a_fix_the_file_cannot_hold_is_not_offered() {
    let (_, out) = reachlab(&[
        "ping",
        "topologies/docker-lab1.yaml",
        "peer",
        "172.17.0.2",
        "-c",
        "1",
    ]);
    assert!(out.contains("dropped silently"), "{out}");
    assert!(!out.contains("forward chain of `vm`"), "{out}");
    assert!(
        out.contains("accept icmp from 10.0.2.20 first in DOCKER-USER, which FORWARD runs before Docker's rules on `vm`")
            && out.contains("peer ping ct3: timeout"),
        "{out}"
    );
}

/// The same router with its rules as iptables-save text: a `firewall:` fix would make the file
/// say both and not load, so `check` offers none for `r` (issue 15); with the rule keys, the
/// accept is offered.
#[test]
fn no_rule_key_fix_for_a_node_whose_rules_are_iptables_text() {
    let keys = scratch("router-ssh-keys.yaml", ROUTER_SSH);
    let (_, out) = reachlab(&["check", keys.to_str().expect("utf-8")]);
    assert!(out.contains("firewall:"), "{out}");
    let text = ROUTER_SSH.replace(
        "    firewall:
      input:
        policy: drop
        rules:
          - { state: [established, related], action: accept }
",
        "    iptables: |
      *filter
      :INPUT DROP [0:0]
      -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
      COMMIT
",
    );
    assert_ne!(text, ROUTER_SSH);
    let path = scratch("router-ssh-iptables.yaml", &text);
    let (code, out) = reachlab(&["check", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("expected reply, predicted timeout"), "{out}");
    assert!(!out.contains("firewall:"), "{out}");
}

/// The JSON twins of `ROUTER_SSH`, as `reachlab generate --format json` lays a file out (one
/// entry a line, each compact) and pretty-printed: the probe gets the fix its YAML twin gets,
/// as a patch of the JSON file that `git apply` takes, after which the whole file checks; and
/// every failing probe of the file gets as many fixes with a holding patch as the YAML's.
#[test]
fn a_json_file_gets_the_fix_of_its_yaml_twin_as_a_json_patch() {
    let generated = reachlab::generate::to_json(ROUTER_SSH).expect("json");
    let value: serde_json::Value = serde_json::from_str(&generated).expect("valid JSON");
    let pretty = format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("pretty")
    );
    // The YAML fix's rule, `{ src: 10.0.0.10, proto: tcp, dport: 22, action: accept }`, first
    // in `r`'s input chain: on the node's line in the generated layout, ...
    let fixed_generated = generated.replacen(
        r#""rules":[{"state""#,
        r#""rules":[{"src":"10.0.0.10","proto":"tcp","dport":22,"action":"accept"},{"state""#,
        1,
    );
    // ... and spread as the rule after it is in the pretty one (serde_json indents by two and
    // sorts keys: `r`'s rules at 10 spaces, each rule at 12, its keys at 14).
    let fixed_pretty = pretty.replacen(
        "\"rules\": [\n            {\n",
        "\"rules\": [\n            {\n              \"src\": \"10.0.0.10\",\n              \"proto\": \"tcp\",\n              \"dport\": 22,\n              \"action\": \"accept\"\n            },\n            {\n",
        1,
    );
    assert_ne!(fixed_generated, generated);
    assert_ne!(fixed_pretty, pretty);
    let yaml_twin = every_fix_of("router-ssh.yaml", ROUTER_SSH);
    assert!(yaml_twin.1 >= 1, "{yaml_twin:?}");
    for (name, text, fixed) in [
        ("router-ssh.json", &generated, &fixed_generated),
        ("router-ssh-pretty.json", &pretty, &fixed_pretty),
    ] {
        let path = scratch(name, text);
        let printed = path.to_str().expect("utf-8");
        let (_, out) = reachlab(&["ssh", printed, "admin", "r"]);
        assert!(
            out.contains("fix (verified: the probe then gets a reply, and all 2 other checks of the file still hold): accept tcp port 22 from 10.0.0.10 first in the input chain of `r`"),
            "{out}"
        );
        assert!(!out.contains("no patch"), "{out}");
        let dir = path.parent().expect("dir").join(format!("paste-{name}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(name), text).expect("written");
        let patch = paste_first_patch(&out, printed, &dir, name);
        let after = std::fs::read_to_string(dir.join(name)).expect("patched");
        assert_eq!(&after, fixed, "{patch}");
        let (code, checked) = reachlab(&["check", dir.join(name).to_str().expect("utf-8")]);
        assert_eq!(code, Some(0), "{patch}\n{checked}");
        assert_eq!(every_fix_of(name, text), yaml_twin, "{name}");
    }
}

/// A layout the editor does not rewrite (a YAML flow mapping spread over several lines) does
/// not make the fix vanish: it is offered as verified on the loaded network only, as YAML to
/// merge, with the reason it has no patch; merged by hand, the whole file checks.
#[test]
fn a_fix_whose_patch_cannot_be_written_is_offered_without_one_and_says_why() {
    let text = ROUTER_SSH.replace(
        "    firewall:\n      input:\n        policy: drop\n        rules:\n          - { state: [established, related], action: accept }\n",
        "    firewall: { input: { policy: drop,\n                         rules: [{ state: [established, related], action: accept }] } }\n",
    );
    assert_ne!(text, ROUTER_SSH);
    let path = scratch("router-ssh-flow.yaml", &text);
    let printed = path.to_str().expect("utf-8");
    let (_, out) = reachlab(&["ssh", printed, "admin", "r"]);
    assert!(
        out.contains("fix (verified on the loaded network, not on a patched file: the probe then gets a reply, and all 2 other checks of the file still hold): accept tcp port 22 from 10.0.0.10 first in the input chain of `r`"),
        "{out}"
    );
    assert!(
        out.contains("- { src: 10.0.0.10, proto: tcp, dport: 22, action: accept }")
            && out.contains("  (no patch could be written for this file: `nodes[name=r].firewall`: a flow collection spread over several lines is not edited)"),
        "{out}"
    );
    assert!(!out.contains("--- a/"), "{out}");
    let (_, json) = reachlab(&["ssh", "--format", "json", printed, "admin", "r"]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(json["fixes"][0]["patch"].is_null(), "{json}");
    assert!(
        json["fixes"][0]["no_patch"]
            .as_str()
            .is_some_and(|why| why.contains("spread over several lines")),
        "{json}"
    );
    let merged = text.replace(
        "rules: [{ state:",
        "rules: [{ src: 10.0.0.10, proto: tcp, dport: 22, action: accept }, { state:",
    );
    assert_ne!(merged, text);
    let fixed = scratch("router-ssh-flow-merged.yaml", &merged);
    let (code, out) = reachlab(&["check", fixed.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{out}");
}

/// The JSON twins of every topology (as `reachlab generate --format json` lays a file out, and
/// pretty-printed with its keys sorted) get what their YAML gets: as many failing probes, and
/// as many fixes whose patch, written as JSON, loads, makes the probe reply and changes no
/// other check but those it names. Before, every JSON edit failed and the fix was dropped.
#[test]
fn every_fix_for_the_json_twins_of_the_topologies_applies_as_printed() {
    let files = topology_files();
    let mut patches = 0;
    for path in &files {
        let name = path.to_str().expect("utf-8");
        let text = std::fs::read_to_string(path).expect("readable");
        let yaml = every_fix_of(name, &text);
        let json = reachlab::generate::to_json(&text).expect("JSON holds every topology");
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        let pretty = format!(
            "{}\n",
            serde_json::to_string_pretty(&value).expect("pretty")
        );
        let twin = name.replace(".yaml", ".json");
        assert_eq!(every_fix_of(&twin, &json), yaml, "{twin}");
        assert_eq!(every_fix_of(&twin, &pretty), yaml, "{twin}, pretty-printed");
        patches += yaml.1;
    }
    println!(
        "fixes: {} JSON twins (two layouts each), {patches} patches each applied and checked",
        files.len()
    );
    assert!(
        patches >= 10,
        "only {patches} patches: the test checks too little"
    );
}

/// A change the search verifies on the network but the file cannot take is said, with the
/// reason, instead of "none found": the OpenStack lab without security-group rules writes no
/// `security_groups:` (Neutron's `default` group is made by the platform section), so the one
/// change that lets the PC's SSH in, a rule in `default`, has no place in the file.
#[test]
fn a_change_the_file_cannot_take_is_said_instead_of_none_found() {
    let file = "topologies/openstack-lab1-no-rules.yaml";
    let (code, out) = reachlab(&["ssh", file, "PC", "192.168.37.69"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "fix: none this file can take: the search found 1 change that makes the probe get a \
             reply on the loaded network, but not in the file\n  - add an ingress rule for tcp \
             port 22 from 10.1.5.234 to security group `default`\n    (`openstack`: the file \
             has no item named `default` there)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("none found"), "{out}");
    let (_, json) = reachlab(&["ssh", "--format", "json", file, "PC", "192.168.37.69"]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["fixes"].as_array().map(Vec::len), Some(0), "{json}");
    assert!(
        json["dropped_fixes"][0]["reason"]
            .as_str()
            .is_some_and(|why| why.contains("no item named `default`")),
        "{json}"
    );
    // A probe whose fixes the file takes prints no such field.
    let (_, json) = reachlab(&["ssh", "--format", "json", file, "PC", "192.168.37.1"]);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(json.get("dropped_fixes").is_none(), "{json}");
}
