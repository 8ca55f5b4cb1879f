//! `-m recent`: named lists of addresses a rule adds to and others look up (kube-proxy's
//! `sessionAffinity: ClientIP`). The match ([`Recent`]) is part of a rule; the lists
//! ([`RecentLists`]) are state of a run, one set per node, consulted by the walk through
//! [`RunState`] as it asks for the random draws of `-m statistic`. The semantics are the
//! kernel's `recent_mt` (net/netfilter/xt_recent.c; docs/netfilter.md, "Recent lists").

use std::net::Ipv4Addr;

use super::PacketFacts;
use crate::model::NodeId;

/// What a `-m recent` match does with its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecentOp {
    /// `--set`: adds the address, or refreshes it; always holds.
    Set,
    /// `--rcheck`: holds when the address is in the list (seen within `--seconds`, at least
    /// `--hitcount` times).
    Check,
    /// `--update`: as `--rcheck`, and refreshes the address when the match holds.
    Update,
    /// `--remove`: removes the address; holds when it was there.
    Remove,
}

impl RecentOp {
    /// The option, as iptables prints it.
    pub fn option(self) -> &'static str {
        match self {
            RecentOp::Set => "--set",
            RecentOp::Check => "--rcheck",
            RecentOp::Update => "--update",
            RecentOp::Remove => "--remove",
        }
    }
}

/// Which address of the packet a `-m recent` match looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecentSide {
    /// `--rsource` (the default).
    #[default]
    Source,
    /// `--rdest`.
    Dest,
}

/// The kernel's default list name (`--name` left out).
pub const DEFAULT_LIST: &str = "DEFAULT";
/// The longest list name xt_recent takes (`XT_RECENT_NAME_LEN` is 200, with its NUL).
pub const MAX_NAME: usize = 199;
/// The largest `--hitcount` the kernel takes (`XT_RECENT_MAX_NSTAMPS` is 256, exclusive).
pub const MAX_HITCOUNT: u32 = 255;
/// Addresses a list holds before the least recently seen one is dropped (the module
/// parameter `ip_list_tot`, 100 by default).
pub const LIST_SIZE: usize = 100;

/// `-m recent [!] --set|--rcheck|--update|--remove [--seconds N] [--reap] [--hitcount N]
/// --name NAME --mask M --rsource|--rdest`. The reader refuses what the kernel refuses
/// (`recent_mt_check`): `--seconds`, `--reap` and `--hitcount` only with `--rcheck` or
/// `--update`, `--reap` only with `--seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recent {
    pub name: String,
    pub op: RecentOp,
    /// `--seconds`: only stamps this recent count.
    pub seconds: Option<u32>,
    /// `--reap`: a lookup purges the least recently seen address when it is older than
    /// `--seconds`.
    pub reap: bool,
    /// `--hitcount`: at least this many stamps (within `--seconds`).
    pub hitcount: Option<u32>,
    pub side: RecentSide,
    /// `--mask`: the address is masked before it is stored or looked up.
    pub mask: Ipv4Addr,
    pub negated: bool,
}

impl Recent {
    /// The match of `op` on list `name`, with the kernel's defaults.
    pub fn new(name: &str, op: RecentOp) -> Self {
        Recent {
            name: name.to_owned(),
            op,
            seconds: None,
            reap: false,
            hitcount: None,
            side: RecentSide::Source,
            mask: Ipv4Addr::BROADCAST,
            negated: false,
        }
    }

    /// Whether the match changes its list when it is consulted.
    pub fn changes_list(&self) -> bool {
        self.op != RecentOp::Check || self.reap
    }

    /// The address of `facts` it looks at, masked.
    pub fn address(&self, facts: &PacketFacts) -> Ipv4Addr {
        let addr = match self.side {
            RecentSide::Source => facts.src,
            RecentSide::Dest => facts.dst,
        };
        Ipv4Addr::from(u32::from(addr) & u32::from(self.mask))
    }
}

/// What a walk asks of the run it belongs to: the random draws of `-m statistic` and the
/// lists of `-m recent`. A closure `FnMut(u32) -> bool` answers the draws of a run without
/// lists: every list is empty and stays so (`--set` holds and remembers nothing).
pub trait RunState {
    /// True with probability `ppb` parts per billion.
    fn draw(&mut self, ppb: u32) -> bool;
    /// Whether `m` holds for the packet, updating its list as the kernel does.
    fn recent(&mut self, m: &Recent, facts: &PacketFacts) -> bool;
}

impl<F: FnMut(u32) -> bool> RunState for F {
    fn draw(&mut self, ppb: u32) -> bool {
        self(ppb)
    }

    fn recent(&mut self, m: &Recent, _: &PacketFacts) -> bool {
        (m.op == RecentOp::Set) != m.negated
    }
}

/// An address in a list, with the times it was seen (nanoseconds of the run), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    addr: Ipv4Addr,
    stamps: Vec<u64>,
}

impl Entry {
    fn last(&self) -> u64 {
        self.stamps.last().copied().unwrap_or(0)
    }

    /// A new stamp; the oldest goes past the most a `--hitcount` can ask for.
    fn touch(&mut self, now: u64) {
        if self.stamps.len() > MAX_HITCOUNT as usize {
            self.stamps.remove(0);
        }
        self.stamps.push(now);
    }
}

/// One list of one node: its addresses, least recently seen first (the kernel's LRU list).
#[derive(Debug, Clone, PartialEq, Eq)]
struct List {
    node: NodeId,
    name: String,
    entries: Vec<Entry>,
}

/// The `-m recent` lists of every node of a run. Empty (and never looked at) unless a rule
/// has such a match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentLists {
    lists: Vec<List>,
}

impl RecentLists {
    /// Whether `m` holds for `facts` on `node` at `now` (nanoseconds), changing the list as
    /// `recent_mt` does. `ret` starts as the negation and flips when the operation succeeds;
    /// `--update` refreshes when the answer, after negation, is true.
    pub fn consult(&mut self, node: NodeId, m: &Recent, facts: &PacketFacts, now: u64) -> bool {
        let addr = m.address(facts);
        let list = self.list(node, &m.name);
        let hit = list.entries.iter().position(|e| e.addr == addr);
        let Some(at) = hit else {
            if m.op != RecentOp::Set {
                return m.negated;
            }
            if list.entries.len() >= LIST_SIZE {
                list.entries.remove(0);
            }
            list.entries.push(Entry {
                addr,
                stamps: vec![now],
            });
            return !m.negated;
        };
        match m.op {
            RecentOp::Set => {
                refresh(&mut list.entries, at, now);
                !m.negated
            }
            RecentOp::Remove => {
                list.entries.remove(at);
                !m.negated
            }
            RecentOp::Check | RecentOp::Update => {
                // Stamps older than `--seconds` do not count (`time_after(time, stamp)`).
                let since = m
                    .seconds
                    .map(|s| now.saturating_sub(u64::from(s) * 1_000_000_000));
                let hits = list.entries[at]
                    .stamps
                    .iter()
                    .filter(|&&t| since.is_none_or(|since| t >= since))
                    .count();
                let held = hits >= m.hitcount.map_or(1, |h| h.max(1) as usize);
                let ret = held != m.negated;
                let mut at = at;
                if let (true, Some(since)) = (m.reap, since) {
                    // recent_entry_reap: the least recently seen address goes when it is not
                    // this one and was last seen before the window.
                    if at != 0 && list.entries[0].last() < since {
                        list.entries.remove(0);
                        at -= 1;
                    }
                }
                if m.op == RecentOp::Update && ret {
                    refresh(&mut list.entries, at, now);
                }
                ret
            }
        }
    }

    /// The addresses of list `name` of `node`, least recently seen first.
    pub fn addresses(&self, node: NodeId, name: &str) -> Vec<Ipv4Addr> {
        self.lists
            .iter()
            .find(|l| l.node == node && l.name == name)
            .map(|l| l.entries.iter().map(|e| e.addr).collect())
            .unwrap_or_default()
    }

    fn list(&mut self, node: NodeId, name: &str) -> &mut List {
        let at = match self
            .lists
            .iter()
            .position(|l| l.node == node && l.name == name)
        {
            Some(at) => at,
            None => {
                self.lists.push(List {
                    node,
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
                self.lists.len() - 1
            }
        };
        &mut self.lists[at]
    }
}

/// recent_entry_update: a new stamp, and the entry moves to the end of the LRU list.
fn refresh(entries: &mut Vec<Entry>, at: usize, now: u64) {
    let mut e = entries.remove(at);
    e.touch(now);
    entries.push(e);
}

#[cfg(test)]
mod tests {
    use super::super::States;
    use super::super::matches::tests::facts;
    use super::*;

    const S: u64 = 1_000_000_000;

    fn from(a: u8) -> PacketFacts {
        PacketFacts {
            src: Ipv4Addr::new(10, 0, 0, a),
            ..facts(80, States::NEW)
        }
    }

    fn check(seconds: u32) -> Recent {
        Recent {
            seconds: Some(seconds),
            ..Recent::new("L", RecentOp::Check)
        }
    }

    #[test]
    fn set_always_holds_and_rcheck_sees_it_within_its_seconds() {
        let mut lists = RecentLists::default();
        let n = NodeId(0);
        let set = Recent::new("L", RecentOp::Set);
        assert!(!lists.consult(n, &check(10), &from(1), 0), "empty list");
        assert!(lists.consult(n, &set, &from(1), 0));
        assert!(lists.consult(n, &set, &from(1), S), "set holds again");
        assert!(
            lists.consult(n, &check(10), &from(1), 11 * S),
            "refreshed at 1 s"
        );
        assert!(!lists.consult(n, &check(10), &from(1), 11 * S + 1));
        assert!(
            lists.consult(n, &Recent::new("L", RecentOp::Check), &from(1), 99 * S),
            "no --seconds: any stamp"
        );
        assert!(
            !lists.consult(n, &check(10), &from(2), 0),
            "another address"
        );
        assert!(
            !lists.consult(NodeId(1), &check(10), &from(1), S),
            "another node"
        );
        assert!(!lists.consult(
            n,
            &Recent {
                name: "l".into(),
                ..check(10)
            },
            &from(1),
            S
        ));
    }

    #[test]
    fn negation_update_remove_and_hitcount() {
        let mut lists = RecentLists::default();
        let n = NodeId(0);
        let not_set = Recent {
            negated: true,
            ..Recent::new("L", RecentOp::Set)
        };
        assert!(
            !lists.consult(n, &not_set, &from(1), 0),
            "! --set never holds"
        );
        assert_eq!(
            lists.addresses(n, "L"),
            [Ipv4Addr::new(10, 0, 0, 1)],
            "but sets"
        );
        let update = Recent {
            op: RecentOp::Update,
            ..check(5)
        };
        assert!(lists.consult(n, &update, &from(1), 4 * S));
        assert!(
            lists.consult(n, &update, &from(1), 8 * S),
            "refreshed at 4 s"
        );
        assert!(!lists.consult(n, &update, &from(1), 14 * S));
        let twice = Recent {
            hitcount: Some(2),
            ..check(5)
        };
        assert!(
            !lists.consult(n, &twice, &from(1), 14 * S),
            "one stamp since 9 s"
        );
        assert!(lists.consult(n, &twice, &from(1), 8 * S), "4 s and 8 s");
        let not_check = Recent {
            negated: true,
            ..check(5)
        };
        assert!(lists.consult(n, &not_check, &from(2), 0), "absent: ! holds");
        let remove = Recent::new("L", RecentOp::Remove);
        assert!(lists.consult(n, &remove, &from(1), 20 * S));
        assert!(!lists.consult(n, &remove, &from(1), 20 * S), "gone");
    }

    #[test]
    fn reap_purges_the_oldest_other_address_and_lists_are_bounded() {
        let mut lists = RecentLists::default();
        let n = NodeId(0);
        let set = Recent::new("L", RecentOp::Set);
        lists.consult(n, &set, &from(1), 0);
        lists.consult(n, &set, &from(2), 5 * S);
        let reap = Recent {
            reap: true,
            ..check(3)
        };
        assert!(lists.consult(n, &reap, &from(2), 6 * S));
        assert_eq!(lists.addresses(n, "L"), [Ipv4Addr::new(10, 0, 0, 2)]);
        for a in 0..=LIST_SIZE as u8 {
            lists.consult(n, &set, &from(a), 10 * S);
        }
        assert_eq!(lists.addresses(n, "L").len(), LIST_SIZE);
        assert!(
            !lists.consult(n, &check(100), &from(0), 10 * S),
            "the oldest went"
        );
    }

    #[test]
    fn the_mask_and_the_destination() {
        let mut lists = RecentLists::default();
        let n = NodeId(0);
        let set = Recent {
            mask: Ipv4Addr::new(255, 255, 255, 0),
            ..Recent::new("L", RecentOp::Set)
        };
        lists.consult(n, &set, &from(1), 0);
        assert_eq!(lists.addresses(n, "L"), [Ipv4Addr::new(10, 0, 0, 0)]);
        let dest = Recent {
            side: RecentSide::Dest,
            ..Recent::new("L", RecentOp::Check)
        };
        assert!(
            !lists.consult(n, &dest, &from(1), 0),
            "10.0.0.2 is not listed"
        );
    }

    #[test]
    fn a_closure_answers_as_empty_lists() {
        let mut f = |_| true;
        let f: &mut dyn RunState = &mut f;
        assert!(f.recent(&Recent::new("L", RecentOp::Set), &from(1)));
        assert!(!f.recent(&check(1), &from(1)));
    }
}
