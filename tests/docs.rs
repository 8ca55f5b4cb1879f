//! Every ```yaml example in docs/topology-format.md is a complete topology that validates, and
//! whose expectations hold.

use reachlab::topology::load_str;

fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some((number + 1, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn format_examples_validate() {
    let doc = std::fs::read_to_string("docs/topology-format.md").expect("docs/topology-format.md");
    let blocks = yaml_blocks(&doc);
    assert!(
        blocks.len() >= 8,
        "one example per construct, found {}",
        blocks.len()
    );
    let mut checked = 0;
    for (line, text) in blocks {
        let net = match load_str(&format!("docs/topology-format.md:{line}"), &text) {
            Ok(loaded) => loaded.network,
            Err(report) => panic!(
                "example at line {line} is invalid: {:#?}",
                report.diagnostics
            ),
        };
        // What the examples promise, the simulator must predict.
        for row in reachlab::run::check(&net, &reachlab::sim::SimConfig::default()) {
            assert!(
                row.ok,
                "example at line {line}: {} expected {}, predicted {} {}",
                row.probe, row.expected, row.predicted, row.detail
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 40,
        "the examples carry expectations, found {checked}"
    );
}
