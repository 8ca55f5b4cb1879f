//! Generated topologies for tests and benchmarks, written as ordinary topology text.

use std::fmt::Write as _;

/// `routers` routers in a line between host `a` (left) and host `b` (right). Link `i` is
/// 10.(i/256).(i%256).0/30-ish: each link is a /24 inside 10.0.0.0/8; every router has a default
/// route to the right and a route to 10.0.0.0/8... back to the left, so pings work both ways.
pub fn chain(routers: usize) -> String {
    let link = |i: usize| (i / 250, i % 250);
    let mut y = String::from("segments:\n");
    for i in 0..=routers {
        let _ = writeln!(y, "  - name: link{i}");
    }
    y.push_str("nodes:\n");
    let (a0, b0) = link(0);
    let _ = writeln!(
        y,
        "  - name: a\n    interfaces:\n      - {{ name: eth0, segment: link0, addresses: [10.{a0}.{b0}.10/24] }}\n    routes:\n      - {{ to: default, via: 10.{a0}.{b0}.1 }}"
    );
    for r in 0..routers {
        let (la, lb) = link(r);
        let (ra, rb) = link(r + 1);
        let _ = write!(
            y,
            "  - name: r{r}\n    forwarding: true\n    interfaces:\n      - {{ name: eth0, segment: link{r}, addresses: [10.{la}.{lb}.1/24] }}\n      - {{ name: eth1, segment: link{}, addresses: [10.{ra}.{rb}.2/24] }}\n    routes:\n",
            r + 1
        );
        if r + 1 < routers {
            let _ = writeln!(y, "      - {{ to: default, via: 10.{ra}.{rb}.1 }}");
        } else {
            let _ = writeln!(y, "      - {{ to: default, via: 10.{ra}.{rb}.10 }}");
        }
        if r > 0 {
            let _ = writeln!(
                y,
                "      - {{ to: 10.{a0}.{b0}.0/24, via: 10.{la}.{lb}.2 }}"
            );
        }
    }
    let (za, zb) = link(routers);
    let _ = writeln!(
        y,
        "  - name: b\n    interfaces:\n      - {{ name: eth0, segment: link{routers}, addresses: [10.{za}.{zb}.10/24] }}\n    routes:\n      - {{ to: default, via: 10.{za}.{zb}.2 }}"
    );
    y
}

/// `hosts` hosts `h0`, `h1`, ... spread in blocks over `subnets` subnets (at least one, at most
/// 256) behind one router `r`, for reachability matrices. Subnet `k` is the segment `lan{k}`,
/// 10.k.0.0/16, with the router at 10.k.0.1 and its hosts from 10.k.0.2 up; every host has a
/// default route via the router, so every host reaches every other one.
///
/// # Panics
///
/// When a subnet would hold more than 65,000 hosts (the /16 runs out).
pub fn hosts(hosts: usize, subnets: usize) -> String {
    let subnets = subnets.clamp(1, 256);
    let per_subnet = hosts.div_ceil(subnets).max(1);
    assert!(per_subnet <= 65_000, "at most 65,000 hosts per subnet");
    let mut y = String::from("segments:\n");
    for k in 0..subnets {
        let _ = writeln!(y, "  - name: lan{k}");
    }
    y.push_str("nodes:\n  - name: r\n    forwarding: true\n    interfaces:\n");
    for k in 0..subnets {
        let _ = writeln!(
            y,
            "      - {{ name: eth{k}, segment: lan{k}, addresses: [10.{k}.0.1/16] }}"
        );
    }
    for h in 0..hosts {
        let (k, j) = (h / per_subnet, h % per_subnet + 2);
        let (hi, lo) = (j / 256, j % 256);
        let _ = writeln!(
            y,
            "  - name: h{h}\n    interfaces:\n      - {{ name: eth0, segment: lan{k}, addresses: [10.{k}.{hi}.{lo}/16] }}\n    routes:\n      - {{ to: default, via: 10.{k}.0.1 }}"
        );
    }
    y
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_fleets_are_valid() {
        for (hosts, subnets) in [(1, 1), (10, 3), (300, 1), (1000, 4)] {
            let text = super::hosts(hosts, subnets);
            let loaded = crate::topology::load_str("hosts.yaml", &text);
            assert!(
                loaded
                    .as_ref()
                    .is_ok_and(|l| l.network.nodes.len() == hosts + 1),
                "hosts {hosts}/{subnets}: {:?}",
                loaded.err().map(|r| r.diagnostics)
            );
        }
    }

    #[test]
    fn chains_are_valid() {
        for n in [1, 2, 7, 300] {
            let text = super::chain(n);
            let loaded = crate::topology::load_str("chain.yaml", &text);
            assert!(
                loaded.is_ok(),
                "chain {n}: {:?}",
                loaded.err().map(|r| r.diagnostics)
            );
        }
    }
}
