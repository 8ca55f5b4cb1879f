//! A [`Network`] compiled for forwarding: the per-node data every per-hop decision reads, built
//! once and shared by the engine ([`super::Sim`]), the fast path ([`super::FastPath`]) and
//! everything that runs probes.
//!
//! What it holds, in flat vectors indexed by the model's typed ids:
//! - every node's own addresses (one slice a node) for the local and martian checks;
//! - every node's routing table flattened longest prefix first, then lowest metric, then
//!   `ip route` order, with `blackhole`/`unreachable`/`prohibit` routes in the same order as the
//!   kernel's fib (docs/linux-semantics.md, "Route types"); tables longer than [`SCAN_LIMIT`] are
//!   looked up by prefix length in a hash map instead of scanned;
//! - for every gateway route, who answers the ARP request for its gateway ([`Next`]), worked
//!   out once every table is in (a proxy ARP answer depends on the answering node's routes);
//! - the owner of every address and each node's interfaces on each segment (for ARP), and
//!   which segments have an interface with proxy ARP;
//! - one slot per distinct MAC address on each segment, so that a bridge's forwarding database
//!   is a vector rather than a map.
//!
//! The lookups here are pure functions of the compiled network; each has a test below.

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap as HashMap;

use super::time::SimTime;
use crate::model::{
    AddrTypes, IfaceId, Listener, MacAddr, Netfilter, Network, NodeId, Port, Proto, Route,
    RouteType, SegmentId,
};

/// Routing tables with more entries than this are looked up by prefix length in a hash map;
/// smaller ones are scanned (a scan of a few entries beats any hashing).
pub(crate) const SCAN_LIMIT: usize = 12;

/// Where an ARP request for a next hop is answered, decided when the network is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// On-link destination: found when the packet is sent.
    Lookup,
    /// Exactly interface `port` answers a request whose sender address is `sender` (the
    /// asker's [`arp_sender`](Compiled::arp_sender), which the answering node learns).
    One { port: IfaceId, sender: Ipv4Addr },
    /// Nobody answers: the request fails after `arp_probes` tries.
    Nobody,
    /// Two or more interfaces would answer (the first answer wins, in event order).
    Ambiguous,
}

/// What an entry of a flattened table does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send out `dev`, to `gateway` or on-link.
    Send {
        dev: IfaceId,
        gateway: Option<Ipv4Addr>,
        next: Next,
    },
    /// A route that sends nothing: `blackhole`, `unreachable` or `prohibit`.
    Reject(RouteType),
}

/// One route, flattened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    net: u32,
    mask: u32,
    pub action: Action,
    /// Position in the node's table (`ip route` order) for a sending route.
    pub index: u32,
}

impl Entry {
    /// The outgoing interface, for a route that sends.
    pub fn dev(&self) -> Option<IfaceId> {
        match self.action {
            Action::Send { dev, .. } => Some(dev),
            Action::Reject(_) => None,
        }
    }
}

/// Addresses a node keeps inline; a node with more reads them from the shared vector.
const INLINE_ADDRS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct NodeData {
    /// Range of `entries`.
    entries: (u32, u32),
    /// Range of `lens` (distinct prefix lengths, longest first) when the table is hashed.
    lens: Option<(u32, u32)>,
    /// Range of `addrs`: every address on every interface of the node.
    addrs: (u32, u32),
    /// The first [`INLINE_ADDRS`] of them; slots beyond the node's addresses hold 127.0.0.1,
    /// which is local anyway, so that all of them can be compared at once.
    inline: [u32; INLINE_ADDRS],
    forwarding: bool,
    ttl: u8,
    /// Some rule of the node looks at address types (`-m addrtype`): only then are they
    /// worked out for each packet.
    addr_types: bool,
}

#[derive(Debug, Clone, Copy)]
struct IfaceData {
    node: NodeId,
    segment: SegmentId,
    mac: MacAddr,
    /// This interface's MAC address's slot on its segment (see [`Compiled::mac_slot`]).
    slot: u32,
    /// Its port on a node's bridge has hairpin mode.
    hairpin: bool,
    /// `route_localnet=1`: 127/8 may leave and arrive through it.
    route_localnet: bool,
    /// `proxy_arp=1` (with `proxy_delay=0`): see [`Compiled::proxies_arp`].
    proxy_arp: bool,
    /// A user-space responder answers ARP for some addresses on it: see
    /// [`Compiled::announces`].
    announces: bool,
    /// Its segment's [`SegmentData::hook`], kept here so that an arriving frame needs one load.
    hook: Option<IfaceId>,
    /// Its addresses with their netmasks, when it has at most [`INLINE_NETS`] of them (else
    /// `None`: read from the model), for [`Compiled::address_towards`].
    nets: Option<([(u32, u32); INLINE_NETS], u8)>,
}

/// Addresses an interface keeps inline with their netmasks.
const INLINE_NETS: usize = 2;

#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentData {
    pub latency_ns: u64,
    pub loss: f64,
    pub ports: u32,
    /// The segment's bridge, when its owner's iptables judge the frames it bridges
    /// (br_netfilter, and the owner has rules).
    pub hook: Option<IfaceId>,
    /// Range of `ports` (the compiled network's): the segment's interfaces in file order.
    range: (u32, u32),
    /// Some interface on the segment has proxy ARP or answers ARP from user space.
    proxies: bool,
}

/// A network compiled for forwarding. Build it once, share it between runs (it is `Sync`).
#[derive(Debug, Clone)]
pub struct Compiled<'n> {
    net: &'n Network,
    nodes: Vec<NodeData>,
    ifaces: Vec<IfaceData>,
    segments: Vec<SegmentData>,
    /// Every segment's interfaces, one range a segment.
    ports: Vec<IfaceId>,
    entries: Vec<Entry>,
    lens: Vec<u8>,
    /// (node, prefix length, network) → entry, for hashed tables.
    by_prefix: HashMap<(u32, u8, u32), u32>,
    addrs: Vec<u32>,
    /// Address → the nodes holding it (usually one).
    owners: HashMap<u32, Vec<NodeId>>,
    /// (node, segment) → (first interface of the node on it, how many).
    on_segment: HashMap<(NodeId, SegmentId), (IfaceId, u32)>,
    /// (segment, MAC) → slot, for MAC addresses looked up as a frame's destination.
    macs: HashMap<(SegmentId, MacAddr), u32>,
    slots: u32,
    /// True when some segment has two interfaces with one MAC address.
    duplicate_macs: bool,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'n> Compiled<'n> {
    /// Compiles `net`.
    pub fn new(net: &'n Network) -> Self {
        let mut ports = Vec::with_capacity(net.interfaces.len());
        let segments: Vec<SegmentData> = net
            .segments
            .iter()
            .map(|s| {
                let start = index(ports.len());
                ports.extend_from_slice(&s.interfaces);
                let owner = |b: &IfaceId| net.node(net.interface(*b).node);
                SegmentData {
                    latency_ns: SimTime::from_duration(s.latency).0,
                    loss: s.loss,
                    ports: index(s.interfaces.len()),
                    hook: s
                        .bridge
                        .filter(|b| owner(b).br_netfilter && owner(b).netfilter.is_some()),
                    range: (start, index(ports.len())),
                    proxies: s.interfaces.iter().any(|&i| {
                        let i = net.interface(i);
                        i.proxy_arp || !i.answers_arp_for.is_empty()
                    }),
                }
            })
            .collect();
        let mut macs: HashMap<(SegmentId, MacAddr), u32> = HashMap::default();
        let mut duplicate_macs = false;
        let mut ifaces: Vec<IfaceData> = Vec::with_capacity(net.interfaces.len());
        for i in &net.interfaces {
            let next = index(macs.len());
            let slot = *macs.entry((i.segment, i.mac)).or_insert(next);
            duplicate_macs |= slot != next;
            ifaces.push(IfaceData {
                node: i.node,
                segment: i.segment,
                mac: i.mac,
                slot,
                hairpin: i.hairpin,
                route_localnet: i.route_localnet,
                proxy_arp: i.proxy_arp,
                announces: !i.answers_arp_for.is_empty(),
                hook: segments[i.segment.index()].hook,
                nets: (i.addresses.len() <= INLINE_NETS).then(|| {
                    let mut nets = [(0, 0); INLINE_NETS];
                    for (slot, a) in nets.iter_mut().zip(&i.addresses) {
                        *slot = (u32::from(a.addr()), mask(a.prefix_len()));
                    }
                    (nets, i.addresses.len() as u8)
                }),
            });
        }
        let mut compiled = Self {
            net,
            nodes: Vec::with_capacity(net.nodes.len()),
            ifaces,
            segments,
            ports,
            entries: Vec::new(),
            lens: Vec::new(),
            by_prefix: HashMap::default(),
            addrs: Vec::new(),
            owners: HashMap::default(),
            on_segment: HashMap::default(),
            slots: index(macs.len()),
            macs,
            duplicate_macs,
        };
        for node in &net.nodes {
            let start = compiled.addrs.len();
            for iface in net.interfaces_of(node) {
                for a in &iface.addresses {
                    let ip = u32::from(a.addr());
                    compiled.addrs.push(ip);
                    let owners = compiled.owners.entry(ip).or_default();
                    if !owners.contains(&node.id) {
                        owners.push(node.id);
                    }
                }
                let slot = compiled
                    .on_segment
                    .entry((node.id, iface.segment))
                    .or_insert((iface.id, 0));
                slot.1 += 1;
            }
            let mut inline = [u32::from(Ipv4Addr::LOCALHOST); INLINE_ADDRS];
            for (slot, &a) in inline.iter_mut().zip(&compiled.addrs[start..]) {
                *slot = a;
            }
            compiled.nodes.push(NodeData {
                entries: (0, 0),
                lens: None,
                addrs: (index(start), index(compiled.addrs.len())),
                inline,
                forwarding: node.forwarding,
                ttl: node.os.initial_ttl(),
                addr_types: node.netfilter.as_deref().is_some_and(|nf| {
                    nf.any_match(|m| m.src_type.is_some() || m.dst_type.is_some())
                }),
            });
        }
        for node in &net.nodes {
            compiled.compile_table(node.id);
        }
        compiled.resolve_gateways();
        compiled
    }

    /// Decides who answers the ARP request for each gateway ([`Next`]): once every table is
    /// compiled, since a proxy ARP answer depends on the answering node's route.
    fn resolve_gateways(&mut self) {
        for e in 0..self.entries.len() {
            if let Action::Send {
                dev,
                gateway: Some(gw),
                ..
            } = self.entries[e].action
            {
                let responder = self.responder(dev, gw);
                if let Action::Send { next, .. } = &mut self.entries[e].action {
                    *next = responder;
                }
            }
        }
    }

    fn compile_table(&mut self, node: NodeId) {
        let table = &self.net.node(node).routes;
        let routes = table.routes();
        // (prefix length, metric, sends before rejects, table order): the kernel's choice is the
        // first entry in this order whose prefix matches (RoutingTable::resolve).
        let mut order: Vec<(u8, u32, bool, usize)> = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.dst.prefix_len(), r.metric, false, i))
            .chain(
                table
                    .rejects()
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.dst.prefix_len(), r.metric, true, i)),
            )
            .collect();
        order.sort_by_key(|&(len, metric, reject, i)| (std::cmp::Reverse(len), metric, reject, i));
        let start = self.entries.len();
        for &(len, _, reject, i) in &order {
            let (net, action) = if reject {
                let r = &table.rejects()[i];
                (r.dst, Action::Reject(r.kind))
            } else {
                let r = &routes[i];
                // A gateway's responder is decided by `resolve_gateways`.
                let action = Action::Send {
                    dev: r.dev,
                    gateway: r.gateway,
                    next: Next::Lookup,
                };
                (r.dst, action)
            };
            self.entries.push(Entry {
                net: u32::from(net.network()),
                mask: mask(len),
                action,
                index: index(i),
            });
        }
        let end = self.entries.len();
        self.nodes[node.index()].entries = (index(start), index(end));
        if end - start > SCAN_LIMIT {
            let lens_start = self.lens.len();
            for (e, &(len, ..)) in (start..end).zip(&order) {
                if self.lens[lens_start..].last() != Some(&len) {
                    self.lens.push(len);
                }
                // Keep the first entry of each prefix: the lowest metric, then table order.
                self.by_prefix
                    .entry((node.0, len, self.entries[e].net))
                    .or_insert(index(e));
            }
            self.nodes[node.index()].lens = Some((index(lens_start), index(self.lens.len())));
        }
    }

    /// The network this was compiled from.
    pub fn network(&self) -> &'n Network {
        self.net
    }

    pub(crate) fn segment_of(&self, iface: IfaceId) -> SegmentData {
        self.segments[self.ifaces[iface.index()].segment.index()]
    }

    /// The bridge whose owner judges what arrives on `iface`'s segment (its segment's hook).
    #[inline]
    pub(crate) fn hook_of(&self, iface: IfaceId) -> Option<IfaceId> {
        self.ifaces[iface.index()].hook
    }

    pub(crate) fn node_of(&self, iface: IfaceId) -> NodeId {
        self.ifaces[iface.index()].node
    }

    /// Whether interface `iface` has `route_localnet=1`.
    pub(crate) fn route_localnet(&self, iface: IfaceId) -> bool {
        self.ifaces[iface.index()].route_localnet
    }

    /// Whether the bridge port of interface `iface` has hairpin mode.
    pub(crate) fn hairpin(&self, iface: IfaceId) -> bool {
        self.ifaces[iface.index()].hairpin
    }

    pub(crate) fn mac(&self, iface: IfaceId) -> MacAddr {
        self.ifaces[iface.index()].mac
    }

    /// Whether some segment has two interfaces with the same MAC address.
    pub(crate) fn duplicate_macs(&self) -> bool {
        self.duplicate_macs
    }

    /// The number of (segment, MAC address) slots: the size of a forwarding database.
    pub(crate) fn mac_slots(&self) -> usize {
        self.slots as usize
    }

    /// The slot of interface `iface`'s own MAC address on its segment.
    pub(crate) fn slot_of(&self, iface: IfaceId) -> usize {
        self.ifaces[iface.index()].slot as usize
    }

    /// The interfaces on the segment of interface `iface`, in file order.
    pub(crate) fn ports_of(&self, iface: IfaceId) -> &[IfaceId] {
        let (a, b) = self.segment_of(iface).range;
        &self.ports[a as usize..b as usize]
    }

    /// The slot of MAC address `mac` on the segment of interface `iface`, if any interface on
    /// that segment has it (a scan of a small segment, a hash lookup on a big one).
    #[inline] // see `Stack::receive`
    pub(crate) fn mac_slot(&self, iface: IfaceId, mac: MacAddr) -> Option<usize> {
        let ports = self.ports_of(iface);
        if ports.len() <= 8 {
            return ports
                .iter()
                .find(|p| self.ifaces[p.index()].mac == mac)
                .map(|p| self.ifaces[p.index()].slot as usize);
        }
        let segment = self.ifaces[iface.index()].segment;
        self.macs.get(&(segment, mac)).map(|&s| s as usize)
    }

    pub(crate) fn forwarding(&self, node: NodeId) -> bool {
        self.nodes[node.index()].forwarding
    }

    /// The TTL of packets the node originates.
    pub(crate) fn ttl(&self, node: NodeId) -> u8 {
        self.nodes[node.index()].ttl
    }

    pub(crate) fn netfilter(&self, node: NodeId) -> Option<&'n Netfilter> {
        self.net.node(node).netfilter.as_deref()
    }

    /// Whether `addr` is one of the node's own: an address of any of its interfaces (the weak
    /// host model) or in 127.0.0.0/8.
    // Always inlined: called twice a crossing, its call cost as much as its body
    // (benches/RESULTS.md, "Fast path: plain crossings").
    #[inline(always)]
    pub(crate) fn is_local(&self, node: NodeId, addr: Ipv4Addr) -> bool {
        let ip = u32::from(addr);
        if ip >> 24 == 127 {
            return true;
        }
        let data = &self.nodes[node.index()];
        let (a, b) = data.addrs;
        if (b - a) as usize <= INLINE_ADDRS {
            // Every slot compared, without a branch: a few instructions.
            return data.inline.iter().fold(false, |hit, &a| hit | (a == ip));
        }
        self.addrs[a as usize..b as usize].contains(&ip)
    }

    /// What the node's local routing table says `addr` is, as `-m addrtype` asks it
    /// (inet_addr_type; docs/netfilter.md, "Address types"): 0.0.0.0/8 and 255.255.255.255
    /// are broadcast, 224.0.0.0/4 multicast, the broadcast address of each of the node's
    /// prefixes up to /30 (and 127.255.255.255) broadcast, its own addresses and 127.0.0.0/8
    /// local, anything else unicast.
    #[inline]
    pub(crate) fn addr_type(&self, node: NodeId, addr: Ipv4Addr) -> AddrTypes {
        if !self.nodes[node.index()].addr_types {
            // No rule of the node asks.
            return AddrTypes::default();
        }
        let ip = u32::from(addr);
        if ip >> 24 == 0 || addr.is_broadcast() || ip == 0x7fff_ffff {
            return AddrTypes::BROADCAST;
        }
        if addr.is_multicast() {
            return AddrTypes::MULTICAST;
        }
        if self.subnet_broadcast(node, addr) {
            AddrTypes::BROADCAST
        } else if self.is_local(node, addr) {
            AddrTypes::LOCAL
        } else {
            AddrTypes::UNICAST
        }
    }

    /// Whether `addr` is the broadcast address of one of the node's prefixes up to /30 (a
    /// `broadcast` route of its local table).
    fn subnet_broadcast(&self, node: NodeId, addr: Ipv4Addr) -> bool {
        let net = self.net;
        net.node(node).interfaces.iter().any(|&i| {
            net.interface(i)
                .addresses
                .iter()
                .any(|a| a.prefix_len() < 31 && a.broadcast() == addr)
        })
    }

    /// The entry of the node's table that decides where a packet to `dst` goes, if any.
    // The scan of a small table inline (every crossing looks up a route; the call cost a
    // third of it), the hashed tables' lookup out of line (benches/RESULTS.md, "Fast path:
    // plain crossings").
    #[inline(always)]
    pub(crate) fn lookup(&self, node: NodeId, dst: Ipv4Addr) -> Option<&Entry> {
        let data = &self.nodes[node.index()];
        let ip = u32::from(dst);
        match data.lens {
            None => {
                let (a, b) = data.entries;
                self.entries[a as usize..b as usize]
                    .iter()
                    .find(|e| ip & e.mask == e.net)
            }
            Some(lens) => self.lookup_hashed(node, lens, ip),
        }
    }

    /// [`Compiled::lookup`] in a table longer than [`SCAN_LIMIT`]: each of its prefix lengths
    /// (`lens`, a range of `self.lens`), longest first.
    #[inline(never)]
    fn lookup_hashed(&self, node: NodeId, (a, b): (u32, u32), ip: u32) -> Option<&Entry> {
        self.lens[a as usize..b as usize].iter().find_map(|&len| {
            self.by_prefix
                .get(&(node.0, len, ip & mask(len)))
                .map(|&e| &self.entries[e as usize])
        })
    }

    /// The route (in the model) a sending entry stands for.
    pub(crate) fn route(&self, node: NodeId, entry: &Entry) -> &'n Route {
        &self.net.node(node).routes.routes()[entry.index as usize]
    }

    /// The route that sends a packet to `dst`, when the best entry is one that sends.
    pub(crate) fn sending_route(&self, node: NodeId, dst: Ipv4Addr) -> Option<(&Entry, &'n Route)> {
        let entry = self.lookup(node, dst)?;
        entry.dev()?;
        Some((entry, self.route(node, entry)))
    }

    /// The source address the node uses to reach `dst` (inet_select_addr): `dst` itself when
    /// it is local, else the route's preferred source, else an address of the device in the
    /// next hop's subnet, else the device's first address; `None` without a sending route.
    pub(crate) fn source_address(&self, node: NodeId, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.is_local(node, dst) {
            return Some(dst);
        }
        let (_, route) = self.sending_route(node, dst)?;
        self.net.source_for(route, dst)
    }

    /// The address of interface `out` in the subnet of `hop`, else its first address: the
    /// sender address of an ARP request for `hop`, and what MASQUERADE picks.
    pub(crate) fn address_towards(&self, out: IfaceId, hop: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some((nets, len)) = &self.ifaces[out.index()].nets {
            // The same choice from the compiled copy: `a.contains(hop)` is equal bits under
            // the netmask.
            let nets = &nets[..usize::from(*len)];
            let hop = u32::from(hop);
            return nets
                .iter()
                .find(|&&(a, m)| (a ^ hop) & m == 0)
                .or_else(|| nets.first())
                .map(|&(a, _)| Ipv4Addr::from(a));
        }
        let iface = self.net.interface(out);
        iface
            .addresses
            .iter()
            .find(|a| a.contains(&hop))
            .or_else(|| iface.addresses.first())
            .map(|a| a.addr())
    }

    /// The address inet_select_addr picks on `out` for `hop`: its address in the hop's
    /// subnet, else its first; on an interface without addresses, the node's first address
    /// (the kernel looks at the other devices then). The sender of an ARP request, and the
    /// source MASQUERADE gives (a Calico node masquerading out of a pod's `cali…` veth).
    pub(crate) fn select_address(&self, out: IfaceId, hop: Ipv4Addr) -> Option<Ipv4Addr> {
        self.address_towards(out, hop)
            .or_else(|| self.net.node_address(self.net.node(self.node_of(out))))
    }

    /// The sender address of an ARP request for `target` out of `out`
    /// ([`select_address`](Self::select_address)); 0.0.0.0 when the node has none.
    pub(crate) fn arp_sender(&self, out: IfaceId, target: Ipv4Addr) -> Ipv4Addr {
        self.select_address(out, target)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Whether interface `iface` answers an ARP request from `sender` for `target` arriving on
    /// it (arp_process): for any of its node's own addresses (arp_ignore=0, on any interface;
    /// never for a loopback address), or by proxy ([`proxies_arp`](Self::proxies_arp)).
    #[inline]
    pub(crate) fn answers_arp(&self, iface: IfaceId, sender: Ipv4Addr, target: Ipv4Addr) -> bool {
        if target.is_loopback() {
            return false;
        }
        self.is_local(self.node_of(iface), target) || self.proxies_arp(iface, sender, target)
    }

    /// Whether a user-space responder on `iface` answers an ARP request for `target`
    /// (`answers_arp_for`, MetalLB's speaker): whoever asks, with the interface's MAC; the
    /// kernel itself does not answer (the address is not the node's), nor learn the asker
    /// (docs/linux-semantics.md, "ARP answered from user space").
    #[inline]
    pub(crate) fn announces(&self, iface: IfaceId, target: Ipv4Addr) -> bool {
        self.ifaces[iface.index()].announces
            && self.net.interface(iface).answers_arp_for.contains(&target)
    }

    /// Whether interface `iface` answers by proxy (arp_fwd_proxy, `proxy_delay=0`): it has
    /// `proxy_arp`, its node forwards, `target` is not the node's own and the node's route to
    /// it is a unicast route out of another interface. The kernel finds that route with
    /// ip_route_input(target, sender, iface), which refuses a request without a sender
    /// address (0.0.0.0 only asks for local addresses), a sender of the node's own
    /// (martian source) and a broadcast or multicast target; rp_filter is 0 in the model
    /// (the emulator sets it so), so the sender needs no route back.
    #[inline]
    pub(crate) fn proxies_arp(&self, iface: IfaceId, sender: Ipv4Addr, target: Ipv4Addr) -> bool {
        let data = &self.ifaces[iface.index()];
        if !data.proxy_arp || !self.forwarding(data.node) {
            return false;
        }
        let node = data.node;
        let unicast = |a: Ipv4Addr| {
            u32::from(a) >> 24 != 0
                && !a.is_loopback()
                && !a.is_multicast()
                && !a.is_broadcast()
                && !self.subnet_broadcast(node, a)
        };
        if !unicast(target) || !unicast(sender) || self.is_local(node, target) {
            return false;
        }
        if self.is_local(node, sender) {
            return false;
        }
        matches!(
            self.lookup(node, target).map(|e| e.action),
            Some(Action::Send { dev, .. }) if dev != iface
        )
    }

    /// Who answers an ARP request for `ip` sent out of interface `out`: each node that owns
    /// it, through each of its interfaces on the segment, each interface on the segment
    /// that [`proxies_arp`](Self::proxies_arp) for it (the sender being
    /// [`arp_sender`](Self::arp_sender)) and each that [`announces`](Self::announces) it.
    pub(crate) fn responder(&self, out: IfaceId, ip: Ipv4Addr) -> Next {
        if ip.is_loopback() {
            return Next::Nobody;
        }
        let segment = self.ifaces[out.index()].segment;
        let sender = self.arp_sender(out, ip);
        let mut found = None;
        if self.segments[segment.index()].proxies {
            for &port in self.ports_of(out) {
                if port != out && (self.proxies_arp(port, sender, ip) || self.announces(port, ip)) {
                    if found.is_some() {
                        return Next::Ambiguous;
                    }
                    found = Some(port);
                }
            }
        }
        let one = |port| Next::One { port, sender };
        let Some(owners) = self.owners.get(&u32::from(ip)) else {
            return found.map_or(Next::Nobody, one);
        };
        for &node in owners {
            let Some(&(first, count)) = self.on_segment.get(&(node, segment)) else {
                continue;
            };
            if count > 1 {
                return Next::Ambiguous;
            }
            if first == out {
                continue;
            }
            if found.is_some() {
                return Next::Ambiguous;
            }
            found = Some(first);
        }
        found.map_or(Next::Nobody, one)
    }

    /// Whether a socket of `node` accepts a packet for `dst`, port `port`.
    pub(crate) fn listening(&self, node: NodeId, proto: Proto, dst: Ipv4Addr, port: u16) -> bool {
        self.listener(node, proto, dst, port).is_some()
    }

    /// The listener of `node` a packet to `dst`, `port` reaches.
    pub(crate) fn listener(
        &self,
        node: NodeId,
        proto: Proto,
        dst: Ipv4Addr,
        port: u16,
    ) -> Option<&Listener> {
        let port = Port::new(port)?;
        self.net
            .node(node)
            .listeners
            .iter()
            .find(|l: &&Listener| l.accepts(proto, dst, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::load_str;

    fn net(yaml: &str) -> Network {
        load_str("t.yaml", yaml).expect("valid").network
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    const TWO: &str = "
segments: [{ name: a }, { name: b }]
nodes:
  - name: r
    forwarding: true
    interfaces:
      - { name: e0, segment: a, addresses: [10.0.0.1/24, 10.0.9.1/24] }
      - { name: e1, segment: b, addresses: [10.0.1.1/24] }
    routes:
      - { to: 10.5.0.0/16, via: 10.0.1.2 }
      - { to: 10.5.5.0/24, via: 10.0.0.3 }
      - { to: 10.5.5.0/24, via: 10.0.1.9, metric: 5 }
      - { to: 10.7.0.0/16, type: unreachable }
      - { to: default, via: 10.0.0.2 }
  - { name: h, interfaces: [{ name: e0, segment: a, addresses: [10.0.0.2/24] }] }
  - { name: s, interfaces: [{ name: e0, segment: b, addresses: [10.0.1.2/24] }] }
";

    fn node(net: &Network, name: &str) -> NodeId {
        net.node_by_name(name).expect("node").id
    }

    #[test]
    fn local_addresses_are_every_interfaces_and_loopback() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let r = node(&net, "r");
        for a in ["10.0.0.1", "10.0.9.1", "10.0.1.1", "127.0.0.1", "127.9.9.9"] {
            assert!(c.is_local(r, ip(a)), "{a}");
        }
        assert!(!c.is_local(r, ip("10.0.0.2")));
    }

    #[test]
    fn longest_prefix_then_lowest_metric_then_table_order() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let r = node(&net, "r");
        let gw = |dst: &str| match c.lookup(r, ip(dst)).map(|e| e.action) {
            Some(Action::Send { gateway, .. }) => gateway,
            other => panic!("{dst}: {other:?}"),
        };
        assert_eq!(gw("10.5.5.9"), Some(ip("10.0.0.3")));
        assert_eq!(gw("10.5.6.9"), Some(ip("10.0.1.2")));
        assert_eq!(gw("8.8.8.8"), Some(ip("10.0.0.2")));
        assert_eq!(gw("10.0.1.7"), None);
    }

    #[test]
    fn a_reject_route_wins_by_prefix_like_any_other() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let r = node(&net, "r");
        let action = c.lookup(r, ip("10.7.1.1")).map(|e| e.action);
        assert_eq!(action, Some(Action::Reject(RouteType::Unreachable)));
        assert!(c.sending_route(r, ip("10.7.1.1")).is_none());
        assert!(c.source_address(r, ip("10.7.1.1")).is_none());
    }

    #[test]
    fn hashed_tables_agree_with_the_models_lookup() {
        let mut yaml = String::from(
            "segments: [{ name: a }]\nnodes:\n  - name: r\n    interfaces: [{ name: e0, segment: a, addresses: [10.0.0.1/24] }]\n    routes:\n",
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..60u8 {
            let len = 16 + (i % 3) * 4;
            let prefix = ipnet::Ipv4Net::new(Ipv4Addr::new(10, i % 7, i.wrapping_mul(37), 0), len)
                .expect("prefix length")
                .trunc();
            let metric = u32::from(i % 2) * 10;
            if seen.insert((prefix, metric)) {
                let gw = 2 + i;
                yaml.push_str(&format!(
                    "      - {{ to: {prefix}, via: 10.0.0.{gw}, metric: {metric} }}\n"
                ));
            }
        }
        let net = net(&yaml);
        let c = Compiled::new(&net);
        let r = node(&net, "r");
        assert!(c.nodes[r.index()].lens.is_some(), "the table is hashed");
        for a in 0..8u8 {
            for b in 0..=255u8 {
                let dst = Ipv4Addr::new(10, a, b, 9);
                let model = net.node(r).routes.lookup_indexed(dst).map(|(i, _)| i);
                let ours = c.lookup(r, dst).map(|e| e.index as usize);
                assert_eq!(ours, model, "{dst}");
            }
        }
    }

    #[test]
    fn source_address_prefers_the_subnet_of_the_next_hop() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let r = node(&net, "r");
        assert_eq!(c.source_address(r, ip("10.0.9.7")), Some(ip("10.0.9.1")));
        assert_eq!(c.source_address(r, ip("10.0.1.7")), Some(ip("10.0.1.1")));
        assert_eq!(c.source_address(r, ip("10.0.1.1")), Some(ip("10.0.1.1")));
    }

    #[test]
    fn arp_sender_is_the_address_in_the_targets_subnet() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let e0 = net.node(node(&net, "r")).interfaces[0];
        assert_eq!(c.arp_sender(e0, ip("10.0.9.5")), ip("10.0.9.1"));
        assert_eq!(c.arp_sender(e0, ip("10.0.0.5")), ip("10.0.0.1"));
        assert_eq!(c.arp_sender(e0, ip("172.16.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn the_arp_responder_is_the_owner_on_that_segment() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        let r = net.node(node(&net, "r"));
        let (e0, e1) = (r.interfaces[0], r.interfaces[1]);
        let h0 = net.node(node(&net, "h")).interfaces[0];
        // The request's sender is r's address in the target's subnet, which h learns.
        let asked_by_r = |port| Next::One {
            port,
            sender: ip("10.0.0.1"),
        };
        assert_eq!(c.responder(e0, ip("10.0.0.2")), asked_by_r(h0));
        // s is on the other segment; nobody on `a` holds its address.
        assert_eq!(c.responder(e0, ip("10.0.1.2")), Next::Nobody);
        assert_eq!(c.responder(e1, ip("127.0.0.1")), Next::Nobody);
        // The router's own address, asked from its own interface: nobody else.
        assert_eq!(c.responder(e0, ip("10.0.0.1")), Next::Nobody);
    }

    #[test]
    fn a_user_space_responder_answers_for_an_address_its_node_does_not_hold() {
        let net = net("
segments: [{ name: lan }]
nodes:
  - name: node1
    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.11/24], answers_arp_for: [10.0.0.240] }]
  - { name: c, interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.2/24] }] }
");
        let c = Compiled::new(&net);
        let n0 = net.node(node(&net, "node1")).interfaces[0];
        let c0 = net.node(node(&net, "c")).interfaces[0];
        assert!(c.announces(n0, ip("10.0.0.240")));
        assert!(!c.announces(n0, ip("10.0.0.241")));
        // Not the kernel's answer: the address is not the node's.
        assert!(!c.answers_arp(n0, ip("10.0.0.2"), ip("10.0.0.240")));
        assert!(!c.is_local(node(&net, "node1"), ip("10.0.0.240")));
        let asked_by_c = Next::One {
            port: n0,
            sender: ip("10.0.0.2"),
        };
        assert_eq!(c.responder(c0, ip("10.0.0.240")), asked_by_c);
        // Its own node's request goes unanswered (the responder is on the asking interface).
        assert_eq!(c.responder(n0, ip("10.0.0.240")), Next::Nobody);
    }

    #[test]
    fn answers_arp_for_refuses_what_arp_cannot_ask_for() {
        for bad in [
            "224.0.0.1",
            "255.255.255.255",
            "127.0.0.1",
            "0.0.0.0",
            "10.0.0.300",
        ] {
            let text = format!("
segments: [{{ name: lan }}]
nodes:
  - name: node1
    interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.11/24], answers_arp_for: [\"{bad}\"] }}]
");
            assert!(load_str("t.yaml", &text).is_err(), "{bad}");
        }
    }

    /// A Calico-like host `h`: its LAN eth0, a default route to `o`, and cali0 (no address,
    /// proxy ARP) to the pod `p` (a /32, its gateway 169.254.1.1 through a link route).
    /// `{forwarding}`, `{proxy}` and `{routes}` vary the host.
    fn calico(forwarding: bool, proxy: bool, routes: &str) -> Network {
        net(&format!(
            "
segments: [{{ name: lan }}, {{ name: cali }}]
nodes:
  - name: h
    forwarding: {forwarding}
    interfaces:
      - {{ name: eth0, segment: lan, addresses: [10.0.0.11/24] }}
      - {{ name: cali0, segment: cali, proxy_arp: {proxy} }}
    routes:
      - {{ to: 10.244.0.5/32, dev: cali0 }}
{routes}
  - name: p
    interfaces: [{{ name: eth0, segment: cali, addresses: [10.244.0.5/32] }}]
    routes:
      - {{ to: default, via: 169.254.1.1, dev: eth0 }}
      - {{ to: 169.254.1.1, dev: eth0 }}
  - {{ name: o, interfaces: [{{ name: eth0, segment: lan, addresses: [10.0.0.12/24] }}] }}
"
        ))
    }

    const DEFAULT: &str = "      - { to: default, via: 10.0.0.12 }";

    /// (host's cali0, pod's eth0).
    fn cali_ends(net: &Network) -> (IfaceId, IfaceId) {
        let h = net.node(node(net, "h")).interfaces[1];
        let p = net.node(node(net, "p")).interfaces[0];
        (h, p)
    }

    #[test]
    fn proxy_arp_answers_for_an_address_routed_out_of_another_interface() {
        let net = calico(true, true, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        let pod_ip = ip("10.244.0.5");
        assert!(c.answers_arp(cali, pod_ip, ip("169.254.1.1")));
        assert!(c.answers_arp(cali, pod_ip, ip("10.0.0.12")));
        let asked_by_pod = Next::One {
            port: cali,
            sender: pod_ip,
        };
        assert_eq!(c.responder(pod, ip("169.254.1.1")), asked_by_pod);
        // The pod's gateway route, decided once every table is compiled.
        let gateway = c.lookup(node(&net, "p"), ip("8.8.8.8")).map(|e| e.action);
        assert!(
            matches!(gateway, Some(Action::Send { next, .. }) if next == asked_by_pod),
            "{gateway:?}"
        );
    }

    #[test]
    fn proxy_arp_needs_a_route_to_the_target() {
        let net = calico(true, true, "");
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        assert!(!c.answers_arp(cali, ip("10.244.0.5"), ip("169.254.1.1")));
        assert_eq!(c.responder(pod, ip("169.254.1.1")), Next::Nobody);
        // The host's own address is answered as ever.
        let asked_by_pod = Next::One {
            port: cali,
            sender: ip("10.244.0.5"),
        };
        assert_eq!(c.responder(pod, ip("10.0.0.11")), asked_by_pod);
    }

    #[test]
    fn proxy_arp_needs_the_route_out_of_another_interface() {
        let net = calico(true, true, "      - { to: 169.254.0.0/16, dev: cali0 }");
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        assert!(!c.answers_arp(cali, ip("10.244.0.5"), ip("169.254.1.1")));
        assert_eq!(c.responder(pod, ip("169.254.1.1")), Next::Nobody);
    }

    #[test]
    fn proxy_arp_needs_a_unicast_route() {
        let net = calico(true, true, "      - { to: default, type: blackhole }");
        let c = Compiled::new(&net);
        let (cali, _) = cali_ends(&net);
        assert!(!c.answers_arp(cali, ip("10.244.0.5"), ip("169.254.1.1")));
    }

    #[test]
    fn proxy_arp_needs_forwarding() {
        let net = calico(false, true, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        assert!(!c.answers_arp(cali, ip("10.244.0.5"), ip("169.254.1.1")));
        assert_eq!(c.responder(pod, ip("169.254.1.1")), Next::Nobody);
    }

    #[test]
    fn proxy_arp_needs_the_sysctl_on_the_asked_interface() {
        let net = calico(true, false, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        assert!(!c.answers_arp(cali, ip("10.244.0.5"), ip("169.254.1.1")));
        assert_eq!(c.responder(pod, ip("169.254.1.1")), Next::Nobody);
    }

    #[test]
    fn proxy_arp_refuses_a_sender_that_is_unset_or_the_nodes_own() {
        let net = calico(true, true, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, _) = cali_ends(&net);
        let target = ip("169.254.1.1");
        assert!(!c.answers_arp(cali, Ipv4Addr::UNSPECIFIED, target));
        assert!(!c.answers_arp(cali, ip("10.0.0.11"), target));
    }

    #[test]
    fn proxy_arp_refuses_broadcast_multicast_and_loopback_targets() {
        let net = calico(true, true, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, _) = cali_ends(&net);
        let sender = ip("10.244.0.5");
        for target in [
            "10.0.0.255",
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "0.0.0.1",
        ] {
            assert!(!c.answers_arp(cali, sender, ip(target)), "{target}");
        }
    }

    #[test]
    fn arp_sender_of_an_interface_without_addresses_is_the_nodes_first() {
        let net = calico(true, true, DEFAULT);
        let c = Compiled::new(&net);
        let (cali, pod) = cali_ends(&net);
        assert_eq!(c.arp_sender(cali, ip("10.244.0.5")), ip("10.0.0.11"));
        assert_eq!(c.arp_sender(pod, ip("169.254.1.1")), ip("10.244.0.5"));
    }

    #[test]
    fn every_mac_on_a_segment_has_one_slot() {
        let net = net(TWO);
        let c = Compiled::new(&net);
        assert!(!c.duplicate_macs());
        assert_eq!(c.mac_slots(), net.interfaces.len());
        for i in &net.interfaces {
            assert_eq!(c.mac_slot(i.id, i.mac), Some(c.slot_of(i.id)));
        }
    }
}
