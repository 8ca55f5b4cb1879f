//! The iptables rules dockerd writes on its host, found by replaying what it does, step by
//! step, on tables that hold only the host's own rules: the chains it creates at start, each
//! network as `createNetwork` sets it up, `DOCKER-USER` after each network, each published
//! port as the port mapper adds it. Every `-I` goes to the top of its chain and every `-A` to
//! the end, as iptables does, so the order of the result is dockerd's, and so is where the
//! host's own rules end up among Docker's. docs/platform-semantics.md, "Docker", **Rules**,
//! gives each step with the line of moby's libnetwork (v20.10.24) it follows.
//!
//! The result is `iptables-save` text, each line placed at the declaration it comes from (the
//! engine's host, a network, a `-p` entry), which the topology's lowering reads like any
//! other `iptables-save` text.

use std::fmt::Write as _;

use ipnet::Ipv4Net;

use super::containers::Published;
use super::plan::{Bridge, EnginePlan};
use crate::format::Span;
use crate::format::file::{BeforeOwn, RuleProto};

/// Docker's own chains.
const DOCKER: &str = "DOCKER";
const ISOLATION_1: &str = "DOCKER-ISOLATION-STAGE-1";
const ISOLATION_2: &str = "DOCKER-ISOLATION-STAGE-2";
const USER: &str = "DOCKER-USER";

/// What dockerd leaves in the host's tables, besides the host's own rules.
pub(super) struct Written {
    /// `iptables-save` text of the filter and nat tables.
    pub text: String,
    /// For each line of `text`, the declaration it comes from.
    pub places: Vec<Span>,
    /// Where the host's own rules sit among Docker's.
    pub before_own: BeforeOwn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Filter,
    Nat,
}

/// A rule in a chain: its words as `iptables-save` prints them after `-A CHAIN`, and where it
/// comes from; or the place of the host's own rules in a built-in chain.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Rule { words: String, place: Span },
    Own,
}

/// A chain: its name, whether it is one of the table's built-in chains, and its entries.
struct Chain {
    name: &'static str,
    builtin: bool,
    entries: Vec<Entry>,
}

/// The filter and nat tables as dockerd's commands leave them.
struct Tables {
    filter: Vec<Chain>,
    nat: Vec<Chain>,
    forward_drop: bool,
}

impl Tables {
    /// The built-in chains, with the host's own rules in each one dockerd writes to.
    fn new() -> Self {
        let chain = |name, own: bool| Chain {
            name,
            builtin: true,
            entries: if own { vec![Entry::Own] } else { Vec::new() },
        };
        Tables {
            filter: vec![
                chain("INPUT", false),
                chain("FORWARD", true),
                chain("OUTPUT", false),
            ],
            nat: vec![
                chain("PREROUTING", true),
                chain("INPUT", false),
                chain("OUTPUT", true),
                chain("POSTROUTING", true),
            ],
            forward_drop: false,
        }
    }

    fn table(&mut self, table: Table) -> &mut Vec<Chain> {
        match table {
            Table::Filter => &mut self.filter,
            Table::Nat => &mut self.nat,
        }
    }

    /// `-N NAME`, unless the chain exists.
    fn new_chain(&mut self, table: Table, name: &'static str) {
        let chains = self.table(table);
        if !chains.iter().any(|c| c.name == name) {
            chains.push(Chain {
                name,
                builtin: false,
                entries: Vec::new(),
            });
        }
    }

    /// The entries of chain `name`, which the replay created before writing to it.
    fn chain(&mut self, table: Table, name: &'static str) -> &mut Vec<Entry> {
        self.new_chain(table, name);
        let chains = self.table(table);
        let at = chains.iter().position(|c| c.name == name).unwrap_or(0);
        &mut chains[at].entries
    }

    /// `-C`: whether the rule is in the chain.
    fn exists(&mut self, table: Table, chain: &'static str, words: &str) -> bool {
        self.chain(table, chain)
            .iter()
            .any(|e| matches!(e, Entry::Rule { words: w, .. } if w == words))
    }

    /// `-I CHAIN`: at the top.
    fn insert(&mut self, table: Table, chain: &'static str, words: String, place: Span) {
        self.chain(table, chain)
            .insert(0, Entry::Rule { words, place });
    }

    /// `-A CHAIN`: at the end.
    fn append(&mut self, table: Table, chain: &'static str, words: String, place: Span) {
        self.chain(table, chain).push(Entry::Rule { words, place });
    }

    /// `-D CHAIN RULE`: the first copy, if any.
    fn delete(&mut self, table: Table, chain: &'static str, words: &str) {
        let entries = self.chain(table, chain);
        if let Some(at) = entries
            .iter()
            .position(|e| matches!(e, Entry::Rule { words: w, .. } if w == words))
        {
            entries.remove(at);
        }
    }

    /// libnetwork's `programChainRule(…, insert=true)`: `-I` unless the rule exists.
    fn insert_once(&mut self, table: Table, chain: &'static str, words: String, place: Span) {
        if !self.exists(table, chain, &words) {
            self.insert(table, chain, words, place);
        }
    }

    /// `ProgramRule(…, Append, …)`: `-A` unless the rule exists.
    fn append_once(&mut self, table: Table, chain: &'static str, words: String, place: Span) {
        if !self.exists(table, chain, &words) {
            self.append(table, chain, words, place);
        }
    }

    /// `EnsureJumpRule(from, to)`: the jump deleted if present, then inserted at the top.
    fn ensure_jump(&mut self, from: &'static str, to: &str, place: Span) {
        let words = format!("-j {to}");
        self.delete(Table::Filter, from, &words);
        self.insert(Table::Filter, from, words, place);
    }

    /// How many of Docker's rules precede the host's own in built-in chain `name` of `table`.
    fn before_own(&mut self, table: Table, name: &'static str) -> usize {
        let entries = self.chain(table, name);
        entries.iter().position(|e| *e == Entry::Own).unwrap_or(0)
    }
}

/// Replays dockerd on the plan's host: what it writes, in its order.
pub(super) fn write(plan: &EnginePlan<'_>) -> Written {
    let host = plan.host.span;
    let mut t = Tables::new();
    // The daemon turned ip_forward on itself: it set FORWARD's policy to DROP
    // (setupIPForwarding).
    t.forward_drop = !plan.host.was_router;
    setup_ip_chains(&mut t, host);
    for bridge in &plan.bridges {
        create_network(&mut t, plan, bridge);
        arrange_user_filter_rule(&mut t, host);
    }
    for p in in_mapping_order(&plan.published) {
        forward(&mut t, plan, p);
    }
    let before_own = BeforeOwn {
        forward: t.before_own(Table::Filter, "FORWARD"),
        prerouting: t.before_own(Table::Nat, "PREROUTING"),
        output: t.before_own(Table::Nat, "OUTPUT"),
        postrouting: t.before_own(Table::Nat, "POSTROUTING"),
    };
    let (text, places) = save(&t, host);
    Written {
        text,
        places,
        before_own,
    }
}

/// The driver's start (`setupIPChains`): nat and filter `DOCKER`, the two isolation chains
/// with their RETURN.
fn setup_ip_chains(t: &mut Tables, place: Span) {
    t.new_chain(Table::Nat, DOCKER);
    t.new_chain(Table::Filter, DOCKER);
    t.new_chain(Table::Filter, ISOLATION_1);
    t.new_chain(Table::Filter, ISOLATION_2);
    add_return(t, ISOLATION_1, place);
    add_return(t, ISOLATION_2, place);
}

/// `AddReturnRule(chain)`: `-A CHAIN -j RETURN` unless there.
fn add_return(t: &mut Tables, chain: &'static str, place: Span) {
    t.append_once(Table::Filter, chain, "-j RETURN".into(), place);
}

/// One network's setup (`createNetwork`): its iptables rules (`setupIPTables`), then the
/// isolation from the other networks (`setupNetworkIsolationRules`).
fn create_network(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let place = b.span;
    let br = &b.iface;
    if b.internal {
        setup_internal_network_rules(t, b);
    } else {
        setup_ip_tables_internal(t, plan, b);
        program_nat_chain(t, plan, place);
        // ProgramChain(filter): the link to DOCKER, then the answers above it.
        t.insert_once(
            Table::Filter,
            "FORWARD",
            format!("-o {br} -j {DOCKER}"),
            place,
        );
        t.insert_once(
            Table::Filter,
            "FORWARD",
            format!("-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            place,
        );
    }
    t.ensure_jump("FORWARD", ISOLATION_1, place);
    if !b.internal {
        // setINC: both rules inserted at the top of their chains.
        let stage1 = format!("-i {br} ! -o {br} -j {ISOLATION_2}");
        if !t.exists(Table::Filter, ISOLATION_1, &stage1) {
            t.insert(Table::Filter, ISOLATION_1, stage1, place);
        }
        let stage2 = format!("-o {br} -j DROP");
        if !t.exists(Table::Filter, ISOLATION_2, &stage2) {
            t.insert(Table::Filter, ISOLATION_2, stage2, place);
        }
    }
}

/// `setupIPTablesInternal`: the masquerade of the subnet, the nat DOCKER chain's RETURN for
/// the bridge (with the userland proxy) or the masquerade of the host's own connections into
/// it (without: hairpin mode), inter-container communication, and what leaves the bridge.
fn setup_ip_tables_internal(t: &mut Tables, plan: &EnginePlan<'_>, b: &Bridge) {
    let (br, place) = (&b.iface, b.span);
    let subnet = net(b.subnet);
    t.insert_once(
        Table::Nat,
        "POSTROUTING",
        format!("-s {subnet} ! -o {br} -j MASQUERADE"),
        place,
    );
    if plan.userland_proxy {
        t.insert_once(Table::Nat, DOCKER, format!("-i {br} -j RETURN"), place);
    } else {
        t.insert_once(
            Table::Nat,
            "POSTROUTING",
            format!("-o {br} -m addrtype --src-type LOCAL -j MASQUERADE"),
            place,
        );
    }
    set_icc(t, b);
    t.insert_once(
        Table::Filter,
        "FORWARD",
        format!("-i {br} ! -o {br} -j ACCEPT"),
        place,
    );
}

/// `setIcc`: with icc, `-I FORWARD -i BR -o BR -j ACCEPT`; without, the ACCEPT deleted and
/// `-A FORWARD -i BR -o BR -j DROP`, at the end of FORWARD, after the host's own rules.
fn set_icc(t: &mut Tables, b: &Bridge) {
    let br = &b.iface;
    let accept = format!("-i {br} -o {br} -j ACCEPT");
    let drop = format!("-i {br} -o {br} -j DROP");
    if b.icc {
        t.delete(Table::Filter, "FORWARD", &drop);
        t.insert_once(Table::Filter, "FORWARD", accept, b.span);
    } else {
        t.delete(Table::Filter, "FORWARD", &accept);
        t.append_once(Table::Filter, "FORWARD", drop, b.span);
    }
}

/// `setupInternalNetworkRules`: nothing into the bridge but from its subnet, nothing out of it
/// but to its subnet (both at the top of DOCKER-ISOLATION-STAGE-1), and icc.
fn setup_internal_network_rules(t: &mut Tables, b: &Bridge) {
    let (br, subnet) = (&b.iface, net(b.subnet));
    t.insert_once(
        Table::Filter,
        ISOLATION_1,
        format!("! -d {subnet} -i {br} -j DROP"),
        b.span,
    );
    t.insert_once(
        Table::Filter,
        ISOLATION_1,
        format!("! -s {subnet} -o {br} -j DROP"),
        b.span,
    );
    set_icc(t, b);
}

/// `ProgramChain(nat)`: PREROUTING and OUTPUT jump to the nat DOCKER chain for a local
/// destination, appended once; OUTPUT skips 127.0.0.0/8 with the userland proxy.
fn program_nat_chain(t: &mut Tables, plan: &EnginePlan<'_>, place: Span) {
    let prerouting = format!("-m addrtype --dst-type LOCAL -j {DOCKER}");
    t.append_once(Table::Nat, "PREROUTING", prerouting, place);
    let output = if plan.userland_proxy {
        format!("! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {DOCKER}")
    } else {
        format!("-m addrtype --dst-type LOCAL -j {DOCKER}")
    };
    t.append_once(Table::Nat, "OUTPUT", output, place);
}

/// `arrangeUserFilterRule`, after each network: DOCKER-USER with its RETURN, and FORWARD's
/// jump to it moved to the top.
fn arrange_user_filter_rule(t: &mut Tables, place: Span) {
    t.new_chain(Table::Filter, USER);
    add_return(t, USER, place);
    t.ensure_jump("FORWARD", USER, place);
}

/// The published ports in the order dockerd maps them: container by container, and within a
/// container as `nat.SortPortMap` (go-connections, vendored in moby v20.10.24, `nat/sort.go`,
/// called from `daemon/container_operations.go:150`) orders its bindings: the larger host port
/// first, then the larger container port, then tcp before udp. (Its comparison is not a strict
/// order: for `-p 8061:5000 -p 8063:80` either binding may come first, as the map it starts
/// from happens to iterate; reachlab takes the host port's order then.)
fn in_mapping_order<'p, 'a>(published: &'p [Published<'a>]) -> Vec<&'p Published<'a>> {
    let key = |p: &Published<'_>| {
        (
            std::cmp::Reverse(p.publish.host_port),
            std::cmp::Reverse(p.publish.container_port),
            p.publish.proto != RuleProto::Tcp,
        )
    };
    // Published ports are in container order; one container's share its address.
    let mut out = Vec::with_capacity(published.len());
    for container in published.chunk_by(|a, b| a.address == b.address && a.bridge == b.bridge) {
        let mut ports: Vec<&Published<'_>> = container.iter().collect();
        ports.sort_by_key(|p| key(p));
        out.extend(ports);
    }
    out
}

/// The port mapper's `Forward` for one published port: the DNAT in nat DOCKER (not for what
/// comes from the bridge, with the userland proxy), the accept in filter DOCKER, and the
/// masquerade of the container reaching itself through the host, each appended.
fn forward(t: &mut Tables, plan: &EnginePlan<'_>, p: &Published<'_>) {
    let br = &plan.bridge(p.bridge).iface;
    let place = p.span;
    let proto = match p.publish.proto {
        RuleProto::Udp => "udp",
        RuleProto::Tcp | RuleProto::Icmp => "tcp",
    };
    let (port, address, cport) = (p.publish.host_port, p.address, p.publish.container_port);
    let dst = p
        .publish
        .host_ip
        .map_or_else(String::new, |ip| format!("-d {ip}/32 "));
    let from = if plan.userland_proxy {
        format!("! -i {br} ")
    } else {
        String::new()
    };
    t.append_once(
        Table::Nat,
        DOCKER,
        format!(
            "{dst}{from}-p {proto} -m {proto} --dport {port} -j DNAT --to-destination {address}:{cport}"
        ),
        place,
    );
    t.append_once(
        Table::Filter,
        DOCKER,
        format!(
            "-d {address}/32 ! -i {br} -o {br} -p {proto} -m {proto} --dport {cport} -j ACCEPT"
        ),
        place,
    );
    t.append_once(
        Table::Nat,
        "POSTROUTING",
        format!(
            "-s {address}/32 -d {address}/32 -p {proto} -m {proto} --dport {cport} -j MASQUERADE"
        ),
        place,
    );
}

/// A network as iptables prints it (`172.17.0.0/16`).
fn net(n: Ipv4Net) -> String {
    n.trunc().to_string()
}

/// The tables as `iptables-save` text (filter, then nat), and the place of each line: the
/// declarations, user chains by name, then the rules chain by chain; the host's own rules
/// left out.
fn save(t: &Tables, host: Span) -> (String, Vec<Span>) {
    let mut text = String::new();
    let mut places = Vec::new();
    for (name, chains) in [("filter", &t.filter), ("nat", &t.nat)] {
        let mut line = |text: &mut String, s: &str, place: Span| {
            text.push_str(s);
            text.push('\n');
            places.push(place);
        };
        line(&mut text, &format!("*{name}"), host);
        let mut order: Vec<&Chain> = chains.iter().collect();
        // Built-in chains first (as created), user chains sorted by name.
        order.sort_by_key(|c| (!c.builtin, if c.builtin { "" } else { c.name }));
        for c in &order {
            let policy = match (c.builtin, name, c.name) {
                (false, ..) => "-",
                (true, "filter", "FORWARD") if t.forward_drop => "DROP",
                (true, ..) => "ACCEPT",
            };
            let mut s = String::new();
            let _ = write!(s, ":{} {policy} [0:0]", c.name);
            line(&mut text, &s, host);
        }
        for c in &order {
            for e in &c.entries {
                if let Entry::Rule { words, place } = e {
                    line(&mut text, &format!("-A {} {words}", c.name), *place);
                }
            }
        }
        line(&mut text, "COMMIT", host);
    }
    (text, places)
}
