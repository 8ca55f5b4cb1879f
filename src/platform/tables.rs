//! The tables a platform's daemon changes (dockerd, kube-proxy, Calico's felix), replayed: raw,
//! filter and nat, each built-in chain holding a marker where the host's own rules are, and
//! the primitives the daemons call (`-C`, `-I` to the top, `-A` to the end, `-D`, libnetwork's
//! `EnsureJumpRule`), as iptables does them. The replays of `docker::iptables` and
//! `kubernetes::proxy` run on these; `save` writes the result as `iptables-save` text.

use std::fmt::Write as _;

use crate::format::Span;
use crate::format::file::BeforeOwn;

/// A probability as xt_statistic keeps it (a fraction of 2^31, rounded as iptables' `lround`
/// does) and iptables-save prints it (11 decimals): 1/3 prints as `0.33333333349`.
pub(crate) fn probability(p: f64) -> String {
    const SCALE: f64 = 2_147_483_648.0;
    let stored = (p * SCALE).round();
    format!("{:.11}", stored / SCALE)
}

/// A string as iptables prints it (`xtables_save_string`): bare when it is only letters,
/// digits, `_` and `-`; otherwise in double quotes, with `"`, `\` and `'` escaped.
pub(crate) fn quoted(s: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !s.is_empty() && s.chars().all(bare) {
        return s.to_owned();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A table a daemon writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Raw,
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
    name: String,
    builtin: bool,
    entries: Vec<Entry>,
}

/// The raw, filter and nat tables as dockerd's commands leave them.
pub(crate) struct Tables {
    raw: Vec<Chain>,
    filter: Vec<Chain>,
    nat: Vec<Chain>,
    /// dockerd set FORWARD's policy to DROP.
    pub forward_drop: bool,
}

impl Tables {
    /// The built-in chains, each holding the host's own rules.
    pub fn new() -> Self {
        let chain = |name: &str| Chain {
            name: name.to_owned(),
            builtin: true,
            entries: vec![Entry::Own],
        };
        Tables {
            raw: vec![chain("PREROUTING"), chain("OUTPUT")],
            filter: vec![chain("INPUT"), chain("FORWARD"), chain("OUTPUT")],
            nat: vec![
                chain("PREROUTING"),
                chain("INPUT"),
                chain("OUTPUT"),
                chain("POSTROUTING"),
            ],
            forward_drop: false,
        }
    }

    fn table(&mut self, table: Table) -> &mut Vec<Chain> {
        match table {
            Table::Raw => &mut self.raw,
            Table::Filter => &mut self.filter,
            Table::Nat => &mut self.nat,
        }
    }

    /// `-N NAME`, unless the chain exists.
    pub fn new_chain(&mut self, table: Table, name: &str) {
        let chains = self.table(table);
        if !chains.iter().any(|c| c.name == name) {
            chains.push(Chain {
                name: name.to_owned(),
                builtin: false,
                entries: Vec::new(),
            });
        }
    }

    /// The entries of chain `name`, which the replay created before writing to it.
    fn chain(&mut self, table: Table, name: &str) -> &mut Vec<Entry> {
        self.new_chain(table, name);
        let chains = self.table(table);
        let at = chains.iter().position(|c| c.name == name).unwrap_or(0);
        &mut chains[at].entries
    }

    /// `-C`: whether the rule is in the chain.
    pub fn exists(&mut self, table: Table, chain: &str, words: &str) -> bool {
        self.chain(table, chain)
            .iter()
            .any(|e| matches!(e, Entry::Rule { words: w, .. } if w == words))
    }

    /// `-I CHAIN`: at the top.
    pub fn insert(&mut self, table: Table, chain: &str, words: String, place: Span) {
        self.chain(table, chain)
            .insert(0, Entry::Rule { words, place });
    }

    /// `-A CHAIN`: at the end.
    pub fn append(&mut self, table: Table, chain: &str, words: String, place: Span) {
        self.chain(table, chain).push(Entry::Rule { words, place });
    }

    /// `-D CHAIN RULE`: the first copy, if any.
    pub fn delete(&mut self, table: Table, chain: &str, words: &str) {
        let entries = self.chain(table, chain);
        if let Some(at) = entries
            .iter()
            .position(|e| matches!(e, Entry::Rule { words: w, .. } if w == words))
        {
            entries.remove(at);
        }
    }

    /// A chain line of `iptables-restore --noflush` (`:NAME - [0:0]`): the chain created, or
    /// emptied when it exists.
    pub fn flush(&mut self, table: Table, name: &str) {
        self.chain(table, name).clear();
    }

    /// `-I` unless the rule exists (libnetwork's `programChainRule(…, insert)`, `Rule.Insert`).
    pub fn insert_once(&mut self, table: Table, chain: &str, words: String, place: Span) {
        if !self.exists(table, chain, &words) {
            self.insert(table, chain, words, place);
        }
    }

    /// `-A` unless the rule exists (`ProgramRule(…, Append, …)`, `Rule.Append`).
    pub fn append_once(&mut self, table: Table, chain: &str, words: String, place: Span) {
        if !self.exists(table, chain, &words) {
            self.append(table, chain, words, place);
        }
    }

    /// `EnsureJumpRule(from, to)` of the filter table: the jump deleted if present, then
    /// inserted at the top.
    pub fn ensure_jump(&mut self, from: &str, to: &str, place: Span) {
        let words = format!("-j {to}");
        self.delete(Table::Filter, from, &words);
        self.insert(Table::Filter, from, words, place);
    }

    /// How many of Docker's rules precede the host's own in built-in chain `name` of `table`.
    fn before(&mut self, table: Table, name: &str) -> usize {
        let entries = self.chain(table, name);
        entries.iter().position(|e| *e == Entry::Own).unwrap_or(0)
    }

    /// Where the host's own rules sit among Docker's, chain by chain.
    pub fn before_own(&mut self) -> BeforeOwn {
        BeforeOwn {
            forward: self.before(Table::Filter, "FORWARD"),
            prerouting: self.before(Table::Nat, "PREROUTING"),
            output: self.before(Table::Nat, "OUTPUT"),
            postrouting: self.before(Table::Nat, "POSTROUTING"),
            raw_prerouting: self.before(Table::Raw, "PREROUTING"),
            input: self.before(Table::Filter, "INPUT"),
            filter_output: self.before(Table::Filter, "OUTPUT"),
        }
    }

    /// The tables as `iptables-save` text (raw when Docker wrote to it, then filter and nat), and
    /// the place of each line: the declarations (at `host`), user chains by name, then the
    /// rules chain by chain; the host's own rules left out.
    pub fn save(&self, host: Span) -> (String, Vec<Span>) {
        let mut text = String::new();
        let mut places = Vec::new();
        let written = |chains: &[Chain]| {
            chains
                .iter()
                .any(|c| c.entries.iter().any(|e| matches!(e, Entry::Rule { .. })))
        };
        let tables = [
            ("raw", &self.raw, written(&self.raw)),
            ("filter", &self.filter, true),
            ("nat", &self.nat, true),
        ];
        for (name, chains, _) in tables.into_iter().filter(|t| t.2) {
            let mut line = |text: &mut String, s: &str, place: Span| {
                text.push_str(s);
                text.push('\n');
                places.push(place);
            };
            line(&mut text, &format!("*{name}"), host);
            let mut order: Vec<&Chain> = chains.iter().collect();
            // Built-in chains first (as created), user chains sorted by name.
            order.sort_by_key(|c| (!c.builtin, if c.builtin { "" } else { c.name.as_str() }));
            for c in &order {
                let policy = match (c.builtin, name, c.name.as_str()) {
                    (false, ..) => "-",
                    (true, "filter", "FORWARD") if self.forward_drop => "DROP",
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32) -> Span {
        Span {
            line,
            ..Span::default()
        }
    }

    #[test]
    fn inserted_rules_go_above_the_hosts_own_and_appended_ones_below() {
        let mut t = Tables::new();
        t.append(Table::Raw, "PREROUTING", "-j DROP".into(), at(1));
        t.insert(Table::Filter, "FORWARD", "-j B".into(), at(2));
        t.insert(Table::Filter, "FORWARD", "-j A".into(), at(3));
        t.append(Table::Filter, "FORWARD", "-j C".into(), at(4));
        let before = t.before_own();
        assert_eq!((before.forward, before.raw_prerouting), (2, 0));
        let (text, places) = t.save(at(0));
        assert!(
            text.starts_with("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j DROP\nCOMMIT\n*filter\n"),
            "{text}"
        );
        assert!(
            text.contains("-A FORWARD -j A\n-A FORWARD -j B\n-A FORWARD -j C\n"),
            "{text}"
        );
        assert_eq!(places.len(), text.lines().count());
    }

    #[test]
    fn an_untouched_raw_table_is_not_written() {
        let (text, _) = Tables::new().save(at(0));
        assert!(text.starts_with("*filter\n"), "{text}");
    }

    #[test]
    fn once_means_not_when_the_rule_is_there() {
        let mut t = Tables::new();
        t.append_once(Table::Nat, "DOCKER", "-j RETURN".into(), at(1));
        t.insert_once(Table::Nat, "DOCKER", "-j RETURN".into(), at(2));
        t.ensure_jump("FORWARD", "X", at(3));
        t.ensure_jump("FORWARD", "X", at(4));
        let (text, places) = t.save(at(0));
        assert_eq!(text.matches("-j RETURN").count(), 1);
        assert_eq!(text.matches("-A FORWARD -j X").count(), 1);
        let line = text.lines().position(|l| l == "-A FORWARD -j X");
        assert_eq!(line.map(|i| places[i].line), Some(4));
    }
}
