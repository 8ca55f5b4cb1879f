//! Generated topologies for tests and benchmarks, written as ordinary topology text: router
//! chains, host fleets, k-ary fat-trees, campuses of NATed sites, and Kubernetes clusters.
//! Each is a pure function of its arguments (and `seed`, where sizes vary), so the same call
//! always gives the same bytes; `reachlab generate` prints them.

use std::fmt::Write as _;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Arguments a generator cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    OutOfRange(String),
}

fn out_of_range(message: impl Into<String>) -> GenerateError {
    GenerateError::OutOfRange(message.into())
}

/// A number in `1..=max` drawn from `rng`.
fn draw(rng: &mut ChaCha8Rng, max: usize) -> usize {
    let max = max.max(1);
    (rng.next_u64() % max as u64) as usize + 1
}

/// The address of point-to-point link `i` (a /30 in 100.64.0.0/10), end 1 or 2.
fn link_addr(i: usize, end: usize) -> String {
    let base = 0x6440_0000u32 + (i as u32) * 4 + end as u32;
    std::net::Ipv4Addr::from(base).to_string()
}

/// A k-ary fat-tree (Al-Fares et al.) of routers: `k` pods of `k/2` edge and `k/2` aggregation
/// routers, `(k/2)^2` core routers, and `k/2` hosts under each edge router (`k^3/4` hosts).
/// Every link is a /30 of 100.64.0.0/10; pod `p`'s edge `e` serves 10.p.e.0/24. Routing is
/// static and single-path: each edge router's default goes to one of its pod's aggregation
/// routers, each aggregation router's default to one of its cores (chosen from `seed`), and
/// routes lead back down by prefix, so every host reaches every other one.
pub fn fat_tree(k: usize, seed: u64) -> Result<String, GenerateError> {
    if k < 2 || !k.is_multiple_of(2) || k > 64 {
        return Err(out_of_range(format!(
            "fat-tree K must be even, from 2 to 64 (got {k})"
        )));
    }
    let h = k / 2;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Links: pod p has h*h edge–aggregation links, then h*h aggregation–core links.
    let links = k * 2 * h * h;
    let edge_agg = |p: usize, e: usize, a: usize| p * 2 * h * h + e * h + a;
    let agg_core = |p: usize, a: usize, j: usize| p * 2 * h * h + h * h + a * h + j;
    let mut y = String::from("segments:\n");
    for p in 0..k {
        for e in 0..h {
            let _ = writeln!(y, "  - name: lan{p}-{e}");
        }
    }
    for i in 0..links {
        let _ = writeln!(y, "  - name: link{i}");
    }
    y.push_str("nodes:\n");
    for p in 0..k {
        for e in 0..h {
            for i in 0..h {
                let _ = writeln!(
                    y,
                    "  - name: h{p}-{e}-{i}\n    interfaces:\n      - {{ name: eth0, segment: lan{p}-{e}, addresses: [10.{p}.{e}.{}/24] }}\n    routes:\n      - {{ to: default, via: 10.{p}.{e}.1 }}",
                    i + 2
                );
            }
            let _ = writeln!(
                y,
                "  - name: edge{p}-{e}\n    forwarding: true\n    interfaces:\n      - {{ name: lan, segment: lan{p}-{e}, addresses: [10.{p}.{e}.1/24] }}"
            );
            for a in 0..h {
                let l = edge_agg(p, e, a);
                let _ = writeln!(
                    y,
                    "      - {{ name: up{a}, segment: link{l}, addresses: [{}/30] }}",
                    link_addr(l, 1)
                );
            }
            let up = draw(&mut rng, h) - 1;
            let _ = writeln!(
                y,
                "    routes:\n      - {{ to: default, via: {} }}",
                link_addr(edge_agg(p, e, up), 2)
            );
        }
        for a in 0..h {
            let _ = writeln!(
                y,
                "  - name: agg{p}-{a}\n    forwarding: true\n    interfaces:"
            );
            for e in 0..h {
                let l = edge_agg(p, e, a);
                let _ = writeln!(
                    y,
                    "      - {{ name: down{e}, segment: link{l}, addresses: [{}/30] }}",
                    link_addr(l, 2)
                );
            }
            for j in 0..h {
                let l = agg_core(p, a, j);
                let _ = writeln!(
                    y,
                    "      - {{ name: up{j}, segment: link{l}, addresses: [{}/30] }}",
                    link_addr(l, 1)
                );
            }
            y.push_str("    routes:\n");
            for e in 0..h {
                let _ = writeln!(
                    y,
                    "      - {{ to: 10.{p}.{e}.0/24, via: {} }}",
                    link_addr(edge_agg(p, e, a), 1)
                );
            }
            let up = draw(&mut rng, h) - 1;
            let _ = writeln!(
                y,
                "      - {{ to: default, via: {} }}",
                link_addr(agg_core(p, a, up), 2)
            );
        }
    }
    for a in 0..h {
        for j in 0..h {
            let c = a * h + j;
            let _ = writeln!(
                y,
                "  - name: core{c}\n    forwarding: true\n    interfaces:"
            );
            for p in 0..k {
                let l = agg_core(p, a, j);
                let _ = writeln!(
                    y,
                    "      - {{ name: pod{p}, segment: link{l}, addresses: [{}/30] }}",
                    link_addr(l, 2)
                );
            }
            y.push_str("    routes:\n");
            for p in 0..k {
                let _ = writeln!(
                    y,
                    "      - {{ to: 10.{p}.0.0/16, via: {} }}",
                    link_addr(agg_core(p, a, j), 1)
                );
            }
        }
    }
    let last = k - 1;
    let _ = writeln!(
        y,
        "expect:\n  - {{ from: h0-0-0, ping: h{last}-{}-{}, outcome: reply, ttl: 59 }}",
        h - 1,
        h - 1
    );
    Ok(y)
}

/// A campus: `sites` sites on a backbone 198.18.0.0/16, each a NAT router masquerading up to
/// `lans` LANs (10.s.l.0/24) of 1 to `hosts` hosts (sizes drawn from `seed`), with a port
/// forward from the router's TCP 2222 to its first host's SSH; a core router and a server
/// (`www.campus.example`, SSH and HTTP) on the backbone. The core has no route to the private
/// LANs: sites reach the server only through their NAT, and the server reaches a site only
/// through its port forward.
pub fn campus(sites: usize, lans: usize, hosts: usize, seed: u64) -> Result<String, GenerateError> {
    if sites == 0 || sites > 250 {
        return Err(out_of_range(format!(
            "sites must be 1 to 250 (got {sites})"
        )));
    }
    if lans == 0 || lans > 250 || hosts == 0 || hosts > 250 {
        return Err(out_of_range(format!(
            "LANs per site and hosts per LAN must be 1 to 250 (got {lans} and {hosts})"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sizes: Vec<Vec<usize>> = (0..sites)
        .map(|_| {
            let n = draw(&mut rng, lans);
            (0..n).map(|_| draw(&mut rng, hosts)).collect()
        })
        .collect();
    let mut y = String::from("name: campus\nsegments:\n  - name: backbone\n");
    for (s, site) in sizes.iter().enumerate() {
        for l in 0..site.len() {
            let _ = writeln!(y, "  - name: s{s}-lan{l}");
        }
    }
    y.push_str(
        "nodes:\n  - name: core\n    forwarding: true\n    interfaces:\n      - { name: bb, segment: backbone, addresses: [198.18.0.1/16] }\n",
    );
    y.push_str("  - name: server\n    dns: [www.campus.example]\n    interfaces:\n      - { name: eth0, segment: backbone, addresses: [198.18.0.2/16] }\n    routes:\n      - { to: default, via: 198.18.0.1 }\n    listen:\n      - { port: 22, ssh: \"SSH-2.0-OpenSSH_9.6p1\" }\n      - { port: 80, http: { body: \"campus server\" } }\n");
    for (s, site) in sizes.iter().enumerate() {
        let wan = format!("198.18.{}.{}", 1 + s / 200, 10 + s % 200);
        let _ = writeln!(
            y,
            "  - name: gw{s}\n    forwarding: true\n    interfaces:\n      - {{ name: wan, segment: backbone, addresses: [{wan}/16] }}"
        );
        for l in 0..site.len() {
            let _ = writeln!(
                y,
                "      - {{ name: lan{l}, segment: s{s}-lan{l}, addresses: [10.{s}.{l}.1/24] }}"
            );
        }
        let _ = writeln!(
            y,
            "    routes:\n      - {{ to: default, via: 198.18.0.1 }}\n    nat:\n      - {{ masquerade: true, out: wan, comment: \"site {s} NAT\" }}\n      - {{ in: wan, proto: tcp, dport: 2222, dnat: \"10.{s}.0.2:22\", comment: \"SSH to site {s}\" }}"
        );
        for (l, &n) in site.iter().enumerate() {
            for i in 0..n {
                let _ = writeln!(
                    y,
                    "  - name: s{s}-l{l}-h{i}\n    interfaces:\n      - {{ name: eth0, segment: s{s}-lan{l}, addresses: [10.{s}.{l}.{}/24] }}\n    routes:\n      - {{ to: default, via: 10.{s}.{l}.1 }}",
                    i + 2
                );
                if l == 0 && i == 0 {
                    y.push_str(
                        "    listen:\n      - { port: 22, ssh: \"SSH-2.0-OpenSSH_8.9p1\" }\n",
                    );
                }
            }
        }
    }
    let last = sites - 1;
    let _ = writeln!(
        y,
        "expect:\n  - {{ from: s0-l0-h0, ping: server, outcome: reply }}\n  - {{ from: s0-l0-h0, curl: \"http://www.campus.example/\", outcome: reply }}\n  - {{ from: s{last}-l0-h0, ssh: server, outcome: reply }}\n  - {{ from: server, tcp: 198.18.{}.{}, port: 2222, outcome: reply }}\n  - {{ from: server, ping: s0-l0-h0, outcome: net-unreachable }}",
        1 + last / 200,
        10 + last % 200
    );
    Ok(y)
}

/// A Kubernetes cluster (the `kubernetes:` section) of `nodes` nodes (a control-plane node
/// `master` and workers `worker1`…) on one LAN 10.0.0.0/16 behind a gateway, running `pods`
/// pods in Deployments `app0`, `app1`… of 1 to 8 replicas (drawn from `seed`), each behind a
/// ClusterIP Service (10.96.x.y, port 80 → 5000) whose pods answer HTTP on 5000. Calico-style
/// /26 blocks of 172.16.0.0/12 hold up to 60 pods per worker.
pub fn cluster(nodes: usize, pods: usize, seed: u64) -> Result<String, GenerateError> {
    if !(2..=16_000).contains(&nodes) {
        return Err(out_of_range(format!(
            "a cluster has 2 to 16,000 nodes (got {nodes})"
        )));
    }
    let workers = nodes - 1;
    if pods == 0 || pods > workers * 60 {
        return Err(out_of_range(format!(
            "{pods} pods do not fit: 1 to {} pods on {workers} workers (60 each)",
            workers * 60
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut replicas = Vec::new();
    let mut left = pods;
    while left > 0 {
        let r = draw(&mut rng, 8).min(left);
        replicas.push(r);
        left -= r;
    }
    let addr = |i: usize| format!("10.0.{}.{}", (i + 10) / 250, (i + 10) % 250 + 2);
    let name = |i: usize| {
        if i == 0 {
            "master".to_owned()
        } else {
            format!("worker{i}")
        }
    };
    let mut y = String::from(
        "name: cluster\nsegments:\n  - name: net\nnodes:\n  - name: gw\n    forwarding: true\n    interfaces:\n      - { name: eth0, segment: net, addresses: [10.0.0.1/16] }\n",
    );
    for i in 0..nodes {
        let _ = writeln!(
            y,
            "  - name: {}\n    interfaces:\n      - {{ name: ens3, segment: net, addresses: [{}/16] }}\n    routes:\n      - {{ to: default, via: 10.0.0.1 }}",
            name(i),
            addr(i)
        );
    }
    y.push_str("kubernetes:\n  clusters:\n    - name: gen\n      nodes: [");
    for i in 0..nodes {
        if i > 0 {
            y.push_str(", ");
        }
        y.push_str(&name(i));
    }
    y.push_str(
        "]\n      control_plane: [master]\n      pod_cidr: 172.16.0.0/12\n      cluster_ips: {",
    );
    for d in 0..replicas.len() {
        if d > 0 {
            y.push(',');
        }
        let _ = write!(y, " app{d}: 10.96.{}.{}", d / 250, d % 250 + 1);
    }
    y.push_str(" }\n      objects:\n");
    for (d, r) in replicas.iter().enumerate() {
        let _ = writeln!(
            y,
            "        - {{ apiVersion: apps/v1, kind: Deployment, metadata: {{ name: app{d} }}, spec: {{ replicas: {r}, selector: {{ matchLabels: {{ app: app{d} }} }}, template: {{ metadata: {{ labels: {{ app: app{d}, tier: web }} }}, spec: {{ containers: [{{ name: web, image: web, ports: [{{ containerPort: 5000 }}] }}] }} }} }} }}\n        - {{ apiVersion: v1, kind: Service, metadata: {{ name: app{d} }}, spec: {{ selector: {{ app: app{d} }}, ports: [{{ port: 80, targetPort: 5000 }}] }} }}"
        );
    }
    y.push_str(
        "      serve:\n        - { selector: { tier: web }, port: 5000, http: { body: \"ok\" } }\n",
    );
    y.push_str("expect:\n  - { from: master, curl: \"http://app0-0:5000/\", outcome: reply }\n  - { from: master, curl: \"http://10.96.0.1/\", outcome: reply }\n  - { from: gw, ping: worker1, outcome: reply }\n");
    Ok(y)
}

/// `routers` routers in a line between host `a` (left) and host `b` (right). Link `i` is the
/// /24 10.(i/250).(i%250).0 (past 64,000 links, 11.x, 12.x and so on); every router has a
/// default route to the right and a route to `a`'s link back to the left, so pings work both
/// ways.
pub fn chain(routers: usize) -> String {
    let link = |i: usize| {
        let (first, i) = (10 + i / 64_000, i % 64_000);
        (format!("{first}.{}", i / 250), i % 250)
    };
    let mut y = String::from("segments:\n");
    for i in 0..=routers {
        let _ = writeln!(y, "  - name: link{i}");
    }
    y.push_str("nodes:\n");
    let (a0, b0) = link(0);
    let _ = writeln!(
        y,
        "  - name: a\n    interfaces:\n      - {{ name: eth0, segment: link0, addresses: [{a0}.{b0}.10/24] }}\n    routes:\n      - {{ to: default, via: {a0}.{b0}.1 }}"
    );
    for r in 0..routers {
        let (la, lb) = link(r);
        let (ra, rb) = link(r + 1);
        let _ = write!(
            y,
            "  - name: r{r}\n    forwarding: true\n    interfaces:\n      - {{ name: eth0, segment: link{r}, addresses: [{la}.{lb}.1/24] }}\n      - {{ name: eth1, segment: link{}, addresses: [{ra}.{rb}.2/24] }}\n    routes:\n",
            r + 1
        );
        if r + 1 < routers {
            let _ = writeln!(y, "      - {{ to: default, via: {ra}.{rb}.1 }}");
        } else {
            let _ = writeln!(y, "      - {{ to: default, via: {ra}.{rb}.10 }}");
        }
        if r > 0 {
            let _ = writeln!(y, "      - {{ to: {a0}.{b0}.0/24, via: {la}.{lb}.2 }}");
        }
    }
    let (za, zb) = link(routers);
    let _ = writeln!(
        y,
        "  - name: b\n    interfaces:\n      - {{ name: eth0, segment: link{routers}, addresses: [{za}.{zb}.10/24] }}\n    routes:\n      - {{ to: default, via: {za}.{zb}.2 }}"
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

/// A generated topology written as JSON instead of YAML: the same keys and values, one map,
/// with each top-level list's entries on a line of their own (compact enough for a million
/// nodes to stay under the size limit, and a diagnostic's line still names one entry). JSON is
/// read by the loader without building a YAML tree (docs/topology-format.md, "JSON").
pub fn to_json(yaml: &str) -> Result<String, GenerateError> {
    use crate::format::tree::Tree;
    let unreadable = |why: &str| out_of_range(format!("the generated YAML {why}"));
    let options = crate::format::yaml::parse_options(yaml.len());
    let tree = crate::format::yaml::read_tree(yaml, &options)
        .map_err(|e| unreadable(&format!("does not read back: {e}")))?;
    let Tree::Map(top) = &tree.value else {
        return Err(unreadable("is not a map"));
    };
    let mut json = String::with_capacity(yaml.len());
    json.push('{');
    for (i, (key, value)) in top.iter().enumerate() {
        json.push_str(if i == 0 { "\n  " } else { ",\n  " });
        Tree::Str(key.value.0.clone()).write_json(&mut json);
        json.push_str(": ");
        let written = match &value.value {
            Tree::Seq(items) if !items.is_empty() => {
                json.push('[');
                for (j, item) in items.iter().enumerate() {
                    json.push_str(if j == 0 { "\n    " } else { ",\n    " });
                    item.value
                        .write_json(&mut json)
                        .ok_or_else(|| unreadable("holds a float JSON cannot"))?;
                }
                json.push_str("\n  ]");
                Some(())
            }
            other => other.write_json(&mut json),
        };
        written.ok_or_else(|| unreadable("holds a float JSON cannot"))?;
    }
    json.push_str("\n}\n");
    Ok(json)
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
    fn fat_trees_campuses_and_clusters_are_valid_and_deterministic() {
        let texts = [
            ("fat-tree", super::fat_tree(4, 1), 36),
            ("campus", super::campus(3, 3, 5, 7), 0),
            ("cluster", super::cluster(4, 12, 3), 0),
        ];
        for (name, text, nodes) in texts {
            let text = text.expect("arguments in range");
            let loaded = crate::topology::load_str("gen.yaml", &text);
            assert!(
                loaded
                    .as_ref()
                    .is_ok_and(|l| nodes == 0 || l.network.nodes.len() == nodes),
                "{name}: {:?}",
                loaded.err().map(|r| r.diagnostics)
            );
        }
        assert_eq!(super::campus(5, 4, 9, 11), super::campus(5, 4, 9, 11));
        assert_ne!(super::campus(5, 4, 9, 11), super::campus(5, 4, 9, 12));
        assert!(super::fat_tree(3, 1).is_err());
        assert!(super::cluster(2, 100, 1).is_err());
    }

    #[test]
    fn json_says_what_the_yaml_says() {
        let texts = [
            super::chain(5),
            super::hosts(20, 3),
            super::fat_tree(4, 1).expect("in range"),
            super::campus(3, 3, 5, 7).expect("in range"),
            super::cluster(4, 12, 3).expect("in range"),
        ];
        for yaml in texts {
            let json = super::to_json(&yaml).expect("converts");
            let from_yaml = crate::topology::load_str("gen.yaml", &yaml).expect("loads");
            let from_json = crate::topology::load_str("gen.json", &json).expect("loads");
            // The same network, but for the places (line, column) its parts were written at.
            let unplaced = |text: String| {
                let mut out = String::with_capacity(text.len());
                let mut rest = text.as_str();
                while let Some(at) = rest.find("span: Span {") {
                    out.push_str(&rest[..at]);
                    rest = rest[at..].split_once('}').map_or("", |(_, after)| after);
                }
                out.push_str(rest);
                out.replace("gen.json", "gen.yaml")
            };
            assert_eq!(
                unplaced(format!("{:?}", from_yaml.network)),
                unplaced(format!("{:?}", from_json.network))
            );
            assert!(
                json.starts_with("{\n  \"") && json.ends_with("\n}\n"),
                "{json}"
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
