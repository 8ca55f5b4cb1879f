//! Times the phases of loading a topology file, for profiling the loader:
//! `cargo run --release --example chain_check FILE [REPEAT]`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: chain_check FILE [REPEAT]");
        return;
    };
    let repeat: u32 = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("cannot read {path}");
        return;
    };
    let t = std::time::Instant::now();
    for _ in 0..repeat {
        let parsed: Result<serde_json::Value, _> = serde_saphyr::from_str(&text);
        std::hint::black_box(parsed.is_ok());
    }
    println!(
        "YAML parse into serde_json::Value: {:?} each",
        t.elapsed() / repeat
    );
    let t = std::time::Instant::now();
    for _ in 0..repeat {
        match reachlab::topology::load_str(&path, &text) {
            Ok(l) => {
                std::hint::black_box(l.network.nodes.len());
            }
            Err(r) => {
                println!(
                    "invalid: {:?}",
                    &r.diagnostics[..r.diagnostics.len().min(3)]
                );
                return;
            }
        }
    }
    println!("load + validate + lower: {:?} each", t.elapsed() / repeat);
}
