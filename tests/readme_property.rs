//! The property test the README shows (section "Invariants, fuzz and failures"), run as it is
//! written there: the lines between the markers are the README's ```rust block, which
//! `readme_shows_this_test` compares, so neither can change without the other.
#![cfg(feature = "testing")]

// README begin
use std::sync::LazyLock;

use proptest::prelude::*;
use reachlab::invariants::{self, fuzz::FuzzTarget};
use reachlab::model::InvariantKind;
use reachlab::sim::SimConfig;

static LAB: LazyLock<FuzzTarget> = LazyLock::new(|| {
    let path = std::path::Path::new("topologies/openstack-tenants.yaml");
    FuzzTarget::load(path).expect("the lab is valid")
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No single forgotten route, NAT rule, listener or address, no flipped filter rule and no
    /// router with forwarding off lets one project's instances reach the other's.
    #[test]
    fn one_mistake_never_joins_the_projects(m in reachlab::testing::mutations(&LAB)) {
        // A mutation that makes the file invalid is refused by `reachlab validate` anyway.
        let Ok(net) = LAB.apply(&m.mutation) else { return Ok(()) };
        let results = invariants::check(&net, &SimConfig::default());
        for (invariant, result) in net.invariants.iter().zip(results) {
            if matches!(invariant.kind, InvariantKind::Isolated { .. }) {
                prop_assert!(result.holds(), "{} at {}: {:?}", m.description, m.span, result.violations);
            }
        }
    }
}
// README end

#[test]
fn readme_shows_this_test() {
    let source = std::fs::read_to_string("tests/readme_property.rs").expect("this file");
    let example: Vec<&str> = source
        .lines()
        .skip_while(|l| *l != "// README begin")
        .skip(1)
        .take_while(|l| *l != "// README end")
        .collect();
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Invariants, fuzz and failures"))
        .skip_while(|l| *l != "```rust")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    assert!(example.len() > 10, "markers not found");
    assert_eq!(
        block, example,
        "README.md's example differs from tests/readme_property.rs"
    );
}
