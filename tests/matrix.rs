//! `reachlab matrix`: cells agree with the kernel-checked `expect:` entries, shards merged give
//! the unsharded matrix, bad merges are refused, every output format prints, and CSV and JSON
//! stream byte for byte what they always printed.

use std::path::Path;
use std::process::{Command, Output};

use reachlab::matrix::{
    self, Cell, Column, Layout, MergeError, ProbeList, ProbeSpec, Progress, Selection, Shard,
    Slice, TopologyRef,
};
use reachlab::model::{Outcome, Probe};
use reachlab::render;
use reachlab::sim::SimConfig;
use reachlab::topology::{Loaded, load_path, load_str};

const LAB2: &str = "topologies/lab2-nodeport.yaml";

fn load(path: &str) -> Loaded {
    load_path(Path::new(path)).unwrap_or_else(|r| panic!("{path}: {:?}", r.diagnostics))
}

fn probes(list: &str) -> ProbeList {
    list.parse().unwrap_or_else(|e| panic!("{list}: {e}"))
}

fn whole(loaded: &Loaded, probes: &ProbeList) -> matrix::Matrix {
    let layout = Layout::resolve(&loaded.network, "t", &Selection::All, &Selection::All)
        .expect("every node");
    matrix::run(
        &loaded.network,
        TopologyRef::of(loaded),
        &layout,
        probes,
        &SimConfig::default(),
        &Progress::hidden(),
    )
}

fn sliced(loaded: &Loaded, probes: &ProbeList, count: usize) -> Vec<(String, Slice)> {
    let layout = Layout::resolve(&loaded.network, "t", &Selection::All, &Selection::All)
        .expect("every node");
    (1..=count)
        .map(|i| {
            let shard = Shard::new(i, count).expect("valid shard");
            let slice = matrix::run_shard(
                &loaded.network,
                TopologyRef::of(loaded),
                &layout,
                probes,
                shard,
                &SimConfig::default(),
                &Progress::hidden(),
            );
            // Through the JSON files, as `matrix merge` reads them.
            let name = format!("slice-{i}.json");
            let read = Slice::from_json(&name, &slice.to_json()).expect("a slice reads back");
            assert_eq!(read, slice);
            (name, read)
        })
        .collect()
}

#[test]
fn merged_shards_equal_one_unsharded_run() {
    let loaded = load(LAB2);
    let probes = probes("ping,ssh,http:32347,udp:53");
    let one = whole(&loaded, &probes);
    assert_eq!(one.cells.len(), 11 * 11 * 4);
    // More shards than some rows, a prime, and more shards than cells of a small matrix.
    for count in [1, 2, 7, 64] {
        let mut slices = sliced(&loaded, &probes, count);
        slices.reverse();
        let merged = matrix::merge(slices).expect("the slices merge");
        assert_eq!(merged, one, "{count} shards");
    }
    let tiny = load("topologies/basics-two-subnets.yaml");
    let ping = ProbeList::default();
    let slices = sliced(&tiny, &ping, 100);
    assert!(slices.iter().any(|(_, s)| s.cells.is_empty()));
    assert_eq!(matrix::merge(slices).expect("merge"), whole(&tiny, &ping));
}

#[test]
fn merge_refuses_slices_that_do_not_belong_together() {
    let loaded = load(LAB2);
    let ping = ProbeList::default();
    let three = sliced(&loaded, &ping, 3);

    let missing = vec![three[0].clone(), three[2].clone()];
    let err = matrix::merge(missing).expect_err("slice 2 is missing");
    assert!(matches!(&err, MergeError::Missing { missing, count: 3 } if missing == &[2]));
    assert_eq!(
        err.to_string(),
        "slice 2 is of 3 missing: merge needs every slice"
    );

    let twice = vec![three[0].clone(), three[1].clone(), three[1].clone()];
    let err = matrix::merge(twice).expect_err("slice 2 twice");
    assert!(matches!(err, MergeError::Duplicate { .. }), "{err}");

    let mut other_probes = sliced(&loaded, &probes("ping,ssh"), 3);
    other_probes[1] = three[1].clone();
    let err = matrix::merge(other_probes).expect_err("different probes");
    assert!(
        matches!(&err, MergeError::Mismatch { what: "probes", .. }),
        "{err}"
    );

    let mut other_file = sliced(&load("topologies/lab2-nodeport-open.yaml"), &ping, 3);
    other_file[0] = three[0].clone();
    let err = matrix::merge(other_file).expect_err("different files");
    assert!(
        matches!(&err, MergeError::Mismatch { what: "files", .. }),
        "{err}"
    );

    let mut other_count = sliced(&loaded, &ping, 4);
    other_count.push(three[0].clone());
    let err = matrix::merge(other_count).expect_err("different N");
    assert!(
        matches!(
            &err,
            MergeError::Mismatch {
                what: "numbers of slices",
                ..
            }
        ),
        "{err}"
    );

    // The same path with another text (an edited file) is another topology.
    let mut edited = three.clone();
    edited[2].1.topology.fingerprint = "0000000000000000".into();
    let err = matrix::merge(edited).expect_err("another version of the file");
    assert!(matches!(&err, MergeError::Mismatch { .. }), "{err}");

    let mut short = three.clone();
    short[1].1.cells.pop();
    let err = matrix::merge(short).expect_err("a cell short");
    assert!(matches!(err, MergeError::WrongSize { .. }), "{err}");

    assert!(matches!(
        matrix::merge(Vec::new()),
        Err(MergeError::NoSlices)
    ));
    for bad in ["{}", "[]", "not json", "{\"reachlab_matrix_slice\": 2}"] {
        assert!(
            matches!(
                Slice::from_json("bad.json", bad),
                Err(MergeError::NotASlice { .. })
            ),
            "{bad}"
        );
    }
}

/// The probe of a matrix that runs what an `expect:` entry runs (curl: the connection).
fn spec_of(probe: &Probe) -> ProbeSpec {
    match probe {
        Probe::Ping => ProbeSpec::Ping,
        Probe::Ssh { port } => ProbeSpec::Ssh(*port),
        Probe::Curl { port, .. } => ProbeSpec::Http(*port),
        Probe::Tcp { port } => ProbeSpec::Tcp(*port),
        Probe::Udp { port } => ProbeSpec::Udp(*port),
    }
}

/// Every `expect:` entry of the Lab 1 and Lab 2 files (checked against the kernel by
/// tests/emulate.rs) is a cell of the matrix from every node to the entries' addresses,
/// and the cell has the expected outcome.
#[test]
fn cells_agree_with_the_files_expectations() {
    let files = [
        "topologies/lab2-cluster.yaml",
        "topologies/lab2-nodeport.yaml",
        "topologies/lab2-nodeport-open.yaml",
        "topologies/lab2-hybrid-edge.yaml",
        "topologies/openstack-lab1.yaml",
        "topologies/openstack-lab1-no-rules.yaml",
        "topologies/openstack-calculator.yaml",
        "topologies/openstack-calculator-no-rule.yaml",
        "topologies/docker-lab1.yaml",
        "topologies/lab1-virtualbox.yaml",
    ];
    let mut checked = 0;
    for file in files {
        let loaded = load(file);
        let net = &loaded.network;
        let mut specs: Vec<ProbeSpec> = Vec::new();
        let mut addresses: Vec<String> = Vec::new();
        for e in &net.expectations {
            let spec = spec_of(&e.probe);
            if !specs.contains(&spec) {
                specs.push(spec);
            }
            let address = e.target.addr.to_string();
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        let to = Selection::Items(addresses.clone());
        let layout = Layout::resolve(net, file, &Selection::All, &to).expect("layout");
        let probes = ProbeList::new(specs.clone()).expect("probes");
        let m = matrix::run(
            net,
            TopologyRef::of(&loaded),
            &layout,
            &probes,
            &SimConfig::default(),
            &Progress::hidden(),
        );
        for e in &net.expectations {
            let s = m
                .sources
                .iter()
                .position(|n| *n == net.node(e.from).name)
                .expect("source row");
            let d = addresses
                .iter()
                .position(|a| *a == e.target.addr.to_string())
                .expect("destination column");
            let p = specs
                .iter()
                .position(|p| *p == spec_of(&e.probe))
                .expect("probe");
            assert_eq!(
                m.cell(s, d, p),
                Cell::Probed(e.outcome),
                "{file}: {} {} {} ({})",
                m.sources[s],
                e.probe.tool(),
                e.target.written,
                e.origin
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} expectations checked");
}

#[test]
fn a_host_fleet_reaches_itself_everywhere_but_not_from_itself() {
    let text = reachlab::generate::hosts(30, 3);
    let loaded = load_str("fleet.yaml", &text).expect("valid");
    let m = whole(&loaded, &probes("ping,tcp:22"));
    assert_eq!(m.sources.len(), 31);
    for (s, source) in m.sources.iter().enumerate() {
        for (d, column) in m.destinations.iter().enumerate() {
            let want = if *source == column.label {
                [Cell::Itself, Cell::Itself]
            } else {
                [Cell::Probed(Outcome::Reply), Cell::Probed(Outcome::Refused)]
            };
            assert_eq!(
                [m.cell(s, d, 0), m.cell(s, d, 1)],
                want,
                "{source} → {column}"
            );
        }
    }
}

#[test]
fn selections_pick_rows_and_columns_and_name_what_is_missing() {
    let loaded = load(LAB2);
    let net = &loaded.network;
    let pick = |from: &str, to: &str| {
        Layout::resolve(
            net,
            LAB2,
            &from.parse().expect("selection"),
            &to.parse().expect("selection"),
        )
    };
    let layout = pick(
        "worker*,PC",
        "fastapi-app-?,192.168.37.62,archive.ubuntu.com",
    )
    .expect("ok");
    let rows: Vec<&str> = layout.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(rows, ["worker1", "worker2", "PC"]);
    let columns: Vec<String> = layout
        .destinations
        .iter()
        .map(|d| format!("{} {}", d.label, d.address))
        .collect();
    assert_eq!(
        columns,
        [
            "fastapi-app-0 172.16.235.129",
            "fastapi-app-1 172.16.235.130",
            "fastapi-app-2 172.16.235.131",
            "192.168.37.62 192.168.37.62",
            "archive.ubuntu.com 203.0.113.1",
        ]
    );
    let err = pick("wroker1", "PC").expect_err("a typo");
    assert_eq!(
        err.to_string(),
        "`wroker1` is not a node of topologies/lab2-nodeport.yaml (did you mean `worker1`?)"
    );
    assert!(pick("db*", "PC").is_err());
    assert!(pick("PC", "nowhere").is_err());
}

fn reachlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_command_prints_every_format() {
    let run = |format: &str| {
        let out = reachlab(&[
            "matrix", LAB2, "--probe", "ping,ssh", "--format", format, "--color", "never",
        ]);
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        stdout(&out)
    };
    let text = run("text");
    assert!(text.contains("\nping "), "{text}");
    assert!(text.contains("✗T") && text.contains('✓') && text.contains('·'));
    assert!(text.contains("T timeout"), "the legend: {text}");
    assert!(!text.contains('\u{1b}'), "no colour with --color never");

    let csv = run("csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "from,to,address,probe,outcome");
    assert_eq!(rows.len(), 1 + 11 * 10 * 2);
    assert!(rows.contains(&"PC,worker1,192.168.9.251,ping,timeout"));
    assert!(rows.contains(&"master,worker1,192.168.9.251,ssh,reply"));

    let json: serde_json::Value = serde_json::from_str(&run("json")).expect("valid JSON");
    assert_eq!(json["topology"], "lab2-nodeport");
    assert_eq!(json["probes"], serde_json::json!(["ping", "ssh"]));
    assert_eq!(json["sources"].as_array().map(Vec::len), Some(11));
    let cells = json["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 11 * 10 * 2);
    assert!(cells.contains(&serde_json::json!(
        {"from": "master", "to": "worker1", "probe": "ssh", "outcome": "reply"}
    )));

    let md = run("markdown");
    assert!(md.contains("### ping") && md.contains("### ssh"));
    assert!(md.contains("| from \\ to | PC | campus-gw |"), "{md}");
    assert_eq!(md.matches("| **worker2** |").count(), 2);

    // Each command offers only the formats it prints: clap refuses the others and lists them.
    let refused = reachlab(&["show", LAB2, "--format", "csv"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("invalid value 'csv'"), "{stderr}");
    assert!(stderr.contains("[possible values: text, json]"), "{stderr}");
    let refused = reachlab(&["graph", LAB2, "--format", "json"]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn the_command_shards_and_merges() {
    let dir = std::env::temp_dir().join(format!("reachlab-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut paths = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let out = reachlab(&["matrix", LAB2, "--probe", "ping,http", "--shard", &shard]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, &out.stdout).expect("write slice");
        paths.push(path.display().to_string());
    }
    let whole = reachlab(&["matrix", LAB2, "--probe", "ping,http", "--format", "csv"]);
    let mut args = vec!["matrix", "merge"];
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--format", "csv"]);
    let merged = reachlab(&args);
    assert_eq!(merged.status.code(), Some(0), "{merged:?}");
    assert_eq!(stdout(&merged), stdout(&whole));

    let missing = reachlab(&["matrix", "merge", &paths[0], &paths[2]]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("slice 2 is of 3 missing"),
        "{missing:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_progress_bar_never_reaches_stdout() {
    let args = |progress| ["matrix", LAB2, "--progress", progress, "--format", "csv"];
    let quiet = reachlab(&args("never"));
    let forced = reachlab(&args("always"));
    assert_eq!(stdout(&forced), stdout(&quiet));
    assert!(quiet.stderr.is_empty());
}

/// Two sources whose names need CSV quoting and JSON escaping, a destination that is one of them
/// and one given as an address, two probes, and every kind of cell.
fn small_matrix() -> matrix::Matrix {
    use Outcome::*;
    let address = |last| std::net::Ipv4Addr::new(10, 0, 0, last);
    matrix::Matrix {
        topology: TopologyRef {
            file: "t.yaml".into(),
            name: "t".into(),
            fingerprint: "0123456789abcdef".into(),
        },
        seed: 7,
        sources: vec!["a,b".into(), "q\"x".into()],
        destinations: vec![
            Column {
                label: "a,b".into(),
                address: address(1),
            },
            Column {
                label: "10.0.0.9".into(),
                address: address(9),
            },
        ],
        probes: probes("ping,ssh:2222").as_slice().to_vec(),
        cells: [
            [Cell::Itself, Cell::Itself],
            [Cell::Probed(Reply), Cell::Probed(Refused)],
            [Cell::Probed(Timeout), Cell::Probed(NoRoute)],
            [Cell::Probed(Filtered), Cell::Probed(TtlExceeded)],
        ]
        .concat(),
    }
}

#[test]
fn csv_and_json_are_byte_for_byte_what_they_were() {
    let m = small_matrix();
    let csv = "from,to,address,probe,outcome
\"a,b\",10.0.0.9,10.0.0.9,ping,reply
\"a,b\",10.0.0.9,10.0.0.9,ssh:2222,refused
\"q\"\"x\",\"a,b\",10.0.0.1,ping,timeout
\"q\"\"x\",\"a,b\",10.0.0.1,ssh:2222,no-route
\"q\"\"x\",10.0.0.9,10.0.0.9,ping,filtered
\"q\"\"x\",10.0.0.9,10.0.0.9,ssh:2222,ttl-exceeded
";
    assert_eq!(render::matrix::csv(&m), csv);
    let json = r#"{
  "file": "t.yaml",
  "topology": "t",
  "fingerprint": "0123456789abcdef",
  "seed": 7,
  "sources": ["a,b","q\"x"],
  "destinations": [{"address":"10.0.0.1","label":"a,b"},{"address":"10.0.0.9","label":"10.0.0.9"}],
  "probes": ["ping","ssh:2222"],
  "replies": [{"probe":"ping","probed":3,"reply":1},{"probe":"ssh:2222","probed":3,"reply":0}],
  "cells": [
    {"from": "a,b", "to": "10.0.0.9", "probe": "ping", "outcome": "reply"},
    {"from": "a,b", "to": "10.0.0.9", "probe": "ssh:2222", "outcome": "refused"},
    {"from": "q\"x", "to": "a,b", "probe": "ping", "outcome": "timeout"},
    {"from": "q\"x", "to": "a,b", "probe": "ssh:2222", "outcome": "no-route"},
    {"from": "q\"x", "to": "10.0.0.9", "probe": "ping", "outcome": "filtered"},
    {"from": "q\"x", "to": "10.0.0.9", "probe": "ssh:2222", "outcome": "ttl-exceeded"}
  ]
}
"#;
    assert_eq!(render::matrix::json(&m), json);
    // The string forms are the streamed bytes; a matrix with no probed cell is a header.
    let mut streamed = Vec::new();
    render::matrix::write_json(&m, &mut streamed).expect("a Vec takes every byte");
    assert_eq!(streamed, json.as_bytes());
    let empty = matrix::Matrix {
        destinations: Vec::new(),
        cells: Vec::new(),
        ..m
    };
    assert_eq!(
        render::matrix::csv(&empty),
        "from,to,address,probe,outcome\n"
    );
    assert!(render::matrix::json(&empty).ends_with("\"cells\": [\n  ]\n}\n"));
}

/// A writer that takes `room` bytes, then fails as a closed pipe does.
struct Closing {
    room: usize,
    written: usize,
}

impl std::io::Write for Closing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn streaming_stops_at_the_first_failed_write() {
    let m = whole(&load(LAB2), &probes("ping,ssh"));
    type Render = fn(&matrix::Matrix, &mut Closing) -> std::io::Result<()>;
    let renders: [(&str, Render, usize); 4] = [
        (
            "csv",
            |m, w| render::matrix::write_csv(m, w),
            render::matrix::csv(&m).len(),
        ),
        (
            "json",
            |m, w| render::matrix::write_json(m, w),
            render::matrix::json(&m).len(),
        ),
        (
            "markdown",
            |m, w| render::matrix::write_markdown(m, w),
            render::matrix::markdown(&m).len(),
        ),
        (
            "text",
            |m, w| render::matrix::write_text(m, reachlab::render::Palette::new(false), w),
            render::matrix::text(&m, reachlab::render::Palette::new(false)).len(),
        ),
    ];
    for (name, render, len) in renders {
        let mut all = Closing {
            room: usize::MAX,
            written: 0,
        };
        render(&m, &mut all).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(all.written, len, "{name}: the streamed length");
        let mut closed = Closing {
            room: 100,
            written: 0,
        };
        let err = render(&m, &mut closed).expect_err(name);
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{name}");
        assert_eq!(closed.written, 100, "{name}");
    }
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reachlab"))
        .args([
            "matrix",
            LAB2,
            "--probe",
            "ping,ssh,http",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("it ends");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// The 1,000-host acceptance run: `cargo test --release --test matrix -- --ignored --nocapture`
/// prints the wall time of a ping matrix of `generate::hosts(1000, SUBNETS)` (1,001 nodes,
/// 1,002,001 cells) for 40 subnets of 25 hosts and 4 of 250 (where each ARP floods 250 ports).
#[test]
#[ignore = "a benchmark: a million probes"]
fn thousand_hosts_timing() {
    for subnets in [40, 4] {
        let text = reachlab::generate::hosts(1000, subnets);
        let loaded = load_str("hosts.yaml", &text).expect("valid");
        let start = std::time::Instant::now();
        let m = whole(&loaded, &ProbeList::default());
        let elapsed = start.elapsed();
        let replies = m.replies()[0];
        println!(
            "1,000 hosts on {subnets} subnets: {} cells, {} replies of {} probed, in {:.2} s ({:.2} µs a cell, {} threads)",
            m.cells.len(),
            replies.1,
            replies.2,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / m.cells.len() as f64,
            rayon::current_num_threads()
        );
        assert_eq!(replies.1, replies.2, "every host reaches every other");
    }
}
