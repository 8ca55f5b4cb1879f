//! Times the phases of loading a big topology file: `cargo run --release --example chain_check FILE`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: chain_check FILE");
        return;
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("cannot read {path}");
        return;
    };
    let t = std::time::Instant::now();
    let parsed: Result<serde_json::Value, _> = serde_saphyr::from_str(&text);
    println!(
        "plain YAML parse into serde_json::Value: {:?} ({})",
        t.elapsed(),
        parsed.is_ok()
    );
    let t = std::time::Instant::now();
    match reachlab::topology::load_str(&path, &text) {
        Ok(l) => println!(
            "load + validate + lower: {} nodes in {:?}",
            l.network.nodes.len(),
            t.elapsed()
        ),
        Err(r) => println!(
            "invalid: {:?}",
            &r.diagnostics[..r.diagnostics.len().min(3)]
        ),
    }
}
