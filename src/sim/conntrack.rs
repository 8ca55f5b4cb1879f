//! Connection tracking: the table of connections a node has seen, keyed by their tuples in both
//! directions, so that NAT decided on a connection's first packet applies to every later packet
//! and reverse-applies to replies, and filters can tell NEW from ESTABLISHED and RELATED.
//!
//! A connection remembers its original tuple (as the first packet arrived, before NAT) and its
//! reply tuple (what an answer looks like, after NAT). A packet in the original direction leaves
//! as the reversed reply tuple; an answer leaves as the reversed original tuple.

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::packet::{Inner, InnerFlow, Ipv4Packet, Transport};
use crate::model::{CtStatus, L4, NodeId, RecentLists, States};

/// Protocol, addresses and ports (the ICMP echo identifier for pings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub proto: L4,
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
}

impl Tuple {
    pub fn reversed(self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }

    /// The tuple of a packet that starts or continues a connection (not ICMP errors).
    pub fn of(packet: &Ipv4Packet) -> Option<Tuple> {
        let (proto, sport, dport) = match packet.transport {
            Transport::EchoRequest { id, .. } | Transport::EchoReply { id, .. } => {
                (L4::Icmp, id, id)
            }
            Transport::Tcp { sport, dport, .. } => (L4::Tcp, sport, dport),
            Transport::Udp { sport, dport } => (L4::Udp, sport, dport),
            Transport::IcmpError { .. } | Transport::Redirect { .. } => return None,
        };
        Some(Tuple {
            proto,
            src: packet.src,
            sport,
            dst: packet.dst,
            dport,
        })
    }

    /// The tuple of the packet an ICMP error quotes.
    pub fn of_inner(inner: &Inner) -> Tuple {
        let (proto, sport, dport) = match inner.flow {
            InnerFlow::Echo { id, .. } => (L4::Icmp, id, id),
            InnerFlow::Tcp { sport, dport } => (L4::Tcp, sport, dport),
            InnerFlow::Udp { sport, dport } => (L4::Udp, sport, dport),
        };
        Tuple {
            proto,
            src: inner.src,
            sport,
            dst: inner.dst,
            dport,
        }
    }
}

/// Which way a packet goes relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Original,
    Reply,
}

/// One tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub orig: Tuple,
    pub reply: Tuple,
    pub seen_reply: bool,
    /// The connection's mark (`-j CONNMARK`, `-m connmark`).
    pub mark: u32,
}

impl Conn {
    /// What a packet going `dir` must look like when it leaves the node.
    pub fn target(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::Original => self.reply.reversed(),
            Dir::Reply => self.orig.reversed(),
        }
    }

    /// The status bits a packet going `dir` sees: confirmed, and whether an answer was seen
    /// (set by the first answer itself, before the hooks see it).
    pub fn status(&self, dir: Dir) -> CtStatus {
        if dir == Dir::Reply || self.seen_reply {
            CtStatus::CONFIRMED.with(CtStatus::SEEN_REPLY)
        } else {
            CtStatus::CONFIRMED
        }
    }

    /// The state a packet going `dir` is in.
    pub fn state(&self, dir: Dir) -> States {
        if dir == Dir::Reply || self.seen_reply {
            States::ESTABLISHED
        } else {
            States::NEW
        }
    }
}

/// All connections of all nodes of one run.
///
/// A probe tracks a handful of connections (one per translating or filtering node it
/// crosses), so the index is a list searched in order, and becomes a hash map only past
/// [`SMALL`] entries; the first few connections and entries are kept inline: a probe
/// allocates nothing for them.
///
/// The run's `-m recent` lists live here too, beside the connections: netfilter state of the
/// run, per node, untouched unless a rule has such a match.
#[derive(Debug, Default)]
pub struct Conntrack {
    conns: SmallVec<[Conn; 4]>,
    small: SmallVec<[(Key, Value); 8]>,
    index: FxHashMap<Key, Value>,
    /// The `-m recent` lists of every node.
    pub recent: RecentLists,
}

/// A node and a tuple it tracks.
type Key = (NodeId, Tuple);
/// The connection and the direction the tuple goes in it.
type Value = (u32, Dir);

/// Index entries kept in a list before the hash map takes over.
const SMALL: usize = 16;

impl Conntrack {
    pub fn lookup(&self, node: NodeId, tuple: Tuple) -> Option<(u32, Dir)> {
        let key = (node, tuple);
        if self.index.is_empty() {
            self.small.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        } else {
            self.index.get(&key).copied()
        }
    }

    pub fn get(&self, id: u32) -> &Conn {
        &self.conns[id as usize]
    }

    pub fn mark_reply_seen(&mut self, id: u32) {
        self.conns[id as usize].seen_reply = true;
    }

    /// Sets a connection's mark.
    pub fn set_mark(&mut self, id: u32, mark: u32) {
        self.conns[id as usize].mark = mark;
    }

    /// Records a new connection: `orig` as it arrived, `leaving` as it left after NAT, with
    /// the mark rules gave it.
    pub fn confirm(&mut self, node: NodeId, orig: Tuple, leaving: Tuple, mark: u32) -> u32 {
        let id = self.conns.len() as u32;
        let reply = leaving.reversed();
        self.conns.push(Conn {
            orig,
            reply,
            seen_reply: false,
            mark,
        });
        // The original direction replaces an entry; the reply direction never does.
        self.put((node, orig), (id, Dir::Original), true);
        self.put((node, reply), (id, Dir::Reply), false);
        id
    }

    fn put(&mut self, key: Key, value: Value, replace: bool) {
        if !self.index.is_empty() {
            match self.index.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut e) if replace => {
                    e.insert(value);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
            return;
        }
        match self.small.iter().position(|(k, _)| *k == key) {
            Some(i) if replace => self.small[i].1 = value,
            Some(_) => {}
            None if self.small.len() < SMALL => self.small.push((key, value)),
            None => {
                self.index = self.small.drain(..).collect();
                self.index.insert(key, value);
            }
        }
    }
}

/// Rewrites the destination address and port of a packet.
pub fn set_dst(packet: &mut Ipv4Packet, addr: Ipv4Addr, port: u16) {
    packet.dst = addr;
    match &mut packet.transport {
        Transport::Tcp { dport, .. } | Transport::Udp { dport, .. } => *dport = port,
        _ => {}
    }
}

/// Rewrites the source address and port of a packet.
pub fn set_src(packet: &mut Ipv4Packet, addr: Ipv4Addr, port: u16) {
    packet.src = addr;
    match &mut packet.transport {
        Transport::Tcp { sport, .. } | Transport::Udp { sport, .. } => *sport = port,
        _ => {}
    }
}

/// Rewrites the quoted header of an ICMP error to `tuple`.
pub fn set_inner(inner: &mut Inner, tuple: Tuple) {
    inner.src = tuple.src;
    inner.dst = tuple.dst;
    inner.flow = match inner.flow {
        InnerFlow::Echo { id, seq } => InnerFlow::Echo { id, seq },
        InnerFlow::Tcp { .. } => InnerFlow::Tcp {
            sport: tuple.sport,
            dport: tuple.dport,
        },
        InnerFlow::Udp { .. } => InnerFlow::Udp {
            sport: tuple.sport,
            dport: tuple.dport,
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_forward_and_its_reply() {
        // 203.0.113.9:40000 → 10.1.5.87:1234, DNAT to 10.0.2.15:22.
        let orig = Tuple {
            proto: L4::Tcp,
            src: Ipv4Addr::new(203, 0, 113, 9),
            sport: 40000,
            dst: Ipv4Addr::new(10, 1, 5, 87),
            dport: 1234,
        };
        let leaving = Tuple {
            dst: Ipv4Addr::new(10, 0, 2, 15),
            dport: 22,
            ..orig
        };
        let mut ct = Conntrack::default();
        let node = NodeId(0);
        let id = ct.confirm(node, orig, leaving, 0);
        let answer = leaving.reversed();
        assert_eq!(ct.lookup(node, answer), Some((id, Dir::Reply)));
        // The answer leaves looking like it came from the host's port 1234.
        assert_eq!(ct.get(id).target(Dir::Reply), orig.reversed());
        assert_eq!(ct.get(id).state(Dir::Original), States::NEW);
        ct.mark_reply_seen(id);
        assert_eq!(ct.get(id).state(Dir::Original), States::ESTABLISHED);
    }

    #[test]
    fn the_index_keeps_its_answers_past_the_small_list() {
        let mut ct = Conntrack::default();
        let tuple = |i: u16| Tuple {
            proto: L4::Udp,
            src: Ipv4Addr::new(10, 0, 0, 1),
            sport: i,
            dst: Ipv4Addr::new(10, 0, 0, 2),
            dport: 53,
        };
        let ids: Vec<u32> = (0..40)
            .map(|i| ct.confirm(NodeId(1), tuple(i), tuple(i), 0))
            .collect();
        for (i, id) in (0..40).zip(ids) {
            assert_eq!(ct.lookup(NodeId(1), tuple(i)), Some((id, Dir::Original)));
            let answer = tuple(i).reversed();
            assert_eq!(ct.lookup(NodeId(1), answer), Some((id, Dir::Reply)));
            assert_eq!(ct.lookup(NodeId(2), answer), None);
        }
        // A second connection with the same original tuple takes it over; a reply tuple
        // already taken stays with its first connection.
        let again = ct.confirm(NodeId(1), tuple(3), tuple(3), 0);
        assert_eq!(ct.lookup(NodeId(1), tuple(3)), Some((again, Dir::Original)));
        assert_eq!(
            ct.lookup(NodeId(1), tuple(3).reversed()),
            Some((3, Dir::Reply))
        );
    }
}
