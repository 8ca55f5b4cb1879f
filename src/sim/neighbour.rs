//! Neighbour caches (the ARP tables of `ip neigh`): one small table per interface, in a vector
//! indexed by interface id, grown only as far as the interfaces a run touches.

use std::net::Ipv4Addr;

use super::packet::Ipv4Packet;
use crate::model::{IfaceId, MacAddr};

/// One neighbour entry.
#[derive(Debug)]
pub(crate) enum Neigh {
    Reachable(MacAddr),
    /// Resolving; the packets waiting, each with its journey (for the tap; 0 without one).
    Incomplete {
        probes: u8,
        queue: Vec<(Ipv4Packet, u32)>,
    },
}

/// Every interface's neighbour cache of one run.
#[derive(Debug, Default)]
pub(crate) struct NeighCache {
    tables: Vec<Vec<(Ipv4Addr, Neigh)>>,
}

impl NeighCache {
    pub fn get(&self, iface: IfaceId, ip: Ipv4Addr) -> Option<&Neigh> {
        let table = self.tables.get(iface.index())?;
        table.iter().find(|(a, _)| *a == ip).map(|(_, n)| n)
    }

    pub fn get_mut(&mut self, iface: IfaceId, ip: Ipv4Addr) -> Option<&mut Neigh> {
        let table = self.tables.get_mut(iface.index())?;
        table.iter_mut().find(|(a, _)| *a == ip).map(|(_, n)| n)
    }

    /// Adds an entry (the caller knows there is none for `ip`).
    pub fn insert(&mut self, iface: IfaceId, ip: Ipv4Addr, entry: Neigh) {
        let i = iface.index();
        if self.tables.len() <= i {
            self.tables.resize_with(i + 1, Vec::new);
        }
        self.tables[i].push((ip, entry));
    }

    pub fn remove(&mut self, iface: IfaceId, ip: Ipv4Addr) -> Option<Neigh> {
        let table = self.tables.get_mut(iface.index())?;
        let at = table.iter().position(|(a, _)| *a == ip)?;
        Some(table.swap_remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_interface() {
        let mut n = NeighCache::default();
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        n.insert(
            IfaceId(3),
            ip,
            Neigh::Reachable(MacAddr([2, 0, 0, 0, 0, 1])),
        );
        assert!(n.get(IfaceId(3), ip).is_some());
        assert!(n.get(IfaceId(2), ip).is_none());
        assert!(n.get(IfaceId(9), ip).is_none());
        assert!(matches!(
            n.remove(IfaceId(3), ip),
            Some(Neigh::Reachable(_))
        ));
        assert!(n.get(IfaceId(3), ip).is_none());
    }
}
