//! Routes and a node's main routing table, ordered and matched as the Linux kernel does.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{IfaceId, Origin};

/// Where a route came from, which decides how `ip route` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// Added by the kernel for an interface address (`proto kernel scope link src SRC`).
    Connected { src: Ipv4Addr },
    /// Written in the topology (`ip route add`).
    Static,
}

/// One entry of a routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix, host bits clear.
    pub dst: Ipv4Net,
    /// Next hop; `None` means the destination is on the link itself.
    pub gateway: Option<Ipv4Addr>,
    /// Outgoing interface.
    pub dev: IfaceId,
    /// Lower wins among routes to the same prefix.
    pub metric: u32,
    pub kind: RouteKind,
    /// The address (for a connected route) or route entry (for a static one) that made it.
    pub origin: Origin,
}

/// The type of a route that sends nothing anywhere (`ip route add TYPE PREFIX`): what the
/// kernel does with a packet whose best route it is (`fib_props` in net/ipv4/fib_semantics.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// Dropped silently; a local sender's call fails with EINVAL ("Invalid argument").
    Blackhole,
    /// A forwarded packet is answered with ICMP host unreachable; a local sender's call fails
    /// with EHOSTUNREACH ("No route to host").
    Unreachable,
    /// A forwarded packet is answered with ICMP communication administratively prohibited
    /// ("Packet filtered"); a local sender's call fails with EACCES ("Permission denied").
    Prohibit,
}

impl RouteType {
    /// The type word `ip route` takes and prints.
    pub fn word(self) -> &'static str {
        match self {
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
}

/// A `blackhole`, `unreachable` or `prohibit` route: a prefix and metric, no device and no
/// next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRoute {
    /// Destination prefix, host bits clear.
    pub dst: Ipv4Net,
    pub metric: u32,
    pub kind: RouteType,
    /// The route entry that made it.
    pub origin: Origin,
}

/// One entry of a routing table: a route that sends, or one that refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableEntry<'a> {
    Route(&'a Route),
    Reject(&'a RejectRoute),
}

impl TableEntry<'_> {
    pub fn dst(&self) -> Ipv4Net {
        match self {
            TableEntry::Route(r) => r.dst,
            TableEntry::Reject(r) => r.dst,
        }
    }

    pub fn metric(&self) -> u32 {
        match self {
            TableEntry::Route(r) => r.metric,
            TableEntry::Reject(r) => r.metric,
        }
    }

    pub fn origin(&self) -> &Origin {
        match self {
            TableEntry::Route(r) => &r.origin,
            TableEntry::Reject(r) => &r.origin,
        }
    }
}

/// What a lookup found: a route (with its position in [`RoutingTable::routes`]) or a
/// reject route, which wins over any less specific route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Route(usize, &'a Route),
    Reject(&'a RejectRoute),
}

impl Route {
    /// True when the destination is reached directly on the link (no gateway).
    pub fn is_link_scope(&self) -> bool {
        self.gateway.is_none()
    }
}

/// A node's main routing table. Routes are kept in the order `ip route` lists them: by
/// destination address, longer prefixes first for the same address, then by metric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingTable {
    routes: Vec<Route>,
    /// The `blackhole`, `unreachable` and `prohibit` routes, in the same order.
    rejects: Vec<RejectRoute>,
}

impl RoutingTable {
    /// The routes in `ip route` order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The `blackhole`, `unreachable` and `prohibit` routes, in `ip route` order.
    pub fn rejects(&self) -> &[RejectRoute] {
        &self.rejects
    }

    /// Every entry, routes and reject routes together, in `ip route` order.
    pub fn entries(&self) -> Vec<TableEntry<'_>> {
        let mut all: Vec<TableEntry<'_>> = self
            .routes
            .iter()
            .map(TableEntry::Route)
            .chain(self.rejects.iter().map(TableEntry::Reject))
            .collect();
        // Stable: among equal keys, routes come first, as they were added first.
        all.sort_by_key(|e| key(e.dst(), e.metric()));
        all
    }

    fn sort_key(route: &Route) -> (u32, std::cmp::Reverse<u8>, u32) {
        key(route.dst, route.metric)
    }

    /// The entry with this destination prefix and metric, if there is one.
    fn existing(&self, k: (u32, std::cmp::Reverse<u8>, u32)) -> Option<TableEntry<'_>> {
        self.routes
            .iter()
            .find(|r| key(r.dst, r.metric) == k)
            .map(TableEntry::Route)
            .or_else(|| {
                self.rejects
                    .iter()
                    .find(|r| key(r.dst, r.metric) == k)
                    .map(TableEntry::Reject)
            })
    }

    /// Adds a route. Like the kernel, refuses a second route with the same destination prefix
    /// and metric, whatever its type (`RTNETLINK answers: File exists`), and returns the one
    /// already there.
    pub fn insert(&mut self, route: Route) -> Result<(), TableEntry<'_>> {
        let key = Self::sort_key(&route);
        if self.existing(key).is_some() {
            return Err(self.existing(key).expect("just found"));
        }
        let at = self
            .routes
            .partition_point(|probe| Self::sort_key(probe) < key);
        self.routes.insert(at, route);
        Ok(())
    }

    /// Adds a `blackhole`, `unreachable` or `prohibit` route, refused like [`Self::insert`].
    pub fn insert_reject(&mut self, route: RejectRoute) -> Result<(), TableEntry<'_>> {
        let k = key(route.dst, route.metric);
        if self.existing(k).is_some() {
            return Err(self.existing(k).expect("just found"));
        }
        let at = self
            .rejects
            .partition_point(|probe| key(probe.dst, probe.metric) < k);
        self.rejects.insert(at, route);
        Ok(())
    }

    /// Adds a route after any with the same destination and metric, as the kernel does for the
    /// connected routes of two interfaces in one subnet.
    pub fn append(&mut self, route: Route) {
        let key = Self::sort_key(&route);
        let at = self
            .routes
            .partition_point(|probe| Self::sort_key(probe) <= key);
        self.routes.insert(at, route);
    }

    /// The route the kernel would send along to `dst`: the longest matching prefix, and among
    /// routes to that prefix the lowest metric. `None` also when the best match is a
    /// `blackhole`, `unreachable` or `prohibit` route (see [`RoutingTable::resolve`]).
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.lookup_indexed(dst).map(|(_, route)| route)
    }

    /// [`RoutingTable::lookup`] with the route's position in [`RoutingTable::routes`].
    pub fn lookup_indexed(&self, dst: Ipv4Addr) -> Option<(usize, &Route)> {
        match self.resolve(dst)? {
            Lookup::Route(index, route) => Some((index, route)),
            Lookup::Reject(_) => None,
        }
    }

    /// What the kernel's lookup for `dst` finds: one pass, no address parsing (the first of
    /// the longest matching prefixes with the lowest metric, reject routes included).
    pub fn resolve(&self, dst: Ipv4Addr) -> Option<Lookup<'_>> {
        let ip = u32::from(dst);
        let matches = |net: Ipv4Net| {
            let len = net.prefix_len();
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            ip & mask == u32::from(net.network())
        };
        let rank = |net: Ipv4Net, metric: u32| (net.prefix_len(), std::cmp::Reverse(metric));
        let mut best: Option<(usize, &Route)> = None;
        for (index, route) in self.routes.iter().enumerate() {
            if !matches(route.dst) {
                continue;
            }
            if best.is_none_or(|(_, b)| rank(route.dst, route.metric) > rank(b.dst, b.metric)) {
                best = Some((index, route));
            }
        }
        let mut reject: Option<&RejectRoute> = None;
        for route in &self.rejects {
            if matches(route.dst)
                && reject.is_none_or(|b| rank(route.dst, route.metric) > rank(b.dst, b.metric))
            {
                reject = Some(route);
            }
        }
        match (best, reject) {
            (Some((_, b)), Some(r)) if rank(r.dst, r.metric) > rank(b.dst, b.metric) => {
                Some(Lookup::Reject(r))
            }
            (None, Some(r)) => Some(Lookup::Reject(r)),
            (Some((index, route)), _) => Some(Lookup::Route(index, route)),
            (None, None) => None,
        }
    }
}

/// The `ip route` order: by destination address, longer prefixes first, then by metric.
fn key(dst: Ipv4Net, metric: u32) -> (u32, std::cmp::Reverse<u8>, u32) {
    (
        u32::from(dst.network()),
        std::cmp::Reverse(dst.prefix_len()),
        metric,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, metric: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dev: IfaceId(0),
            metric,
            kind: RouteKind::Static,
            origin: Origin::default(),
        }
    }

    #[test]
    fn kernel_order_address_then_longer_prefix_then_metric() {
        // Order seen from `ip route` in a network namespace (iproute2 6.1, see the module test
        // tests/kernel_ip_route.rs for the live comparison).
        let mut table = RoutingTable::default();
        for (dst, metric) in [
            ("10.0.0.0/8", 1),
            ("0.0.0.0/1", 0),
            ("10.0.0.0/8", 0),
            ("0.0.0.0/0", 0),
            ("10.0.0.0/30", 0),
            ("10.0.0.0/16", 0),
        ] {
            table.insert(route(dst, metric)).unwrap();
        }
        let order: Vec<_> = table
            .routes()
            .iter()
            .map(|r| format!("{} {}", r.dst, r.metric))
            .collect();
        assert_eq!(
            order,
            [
                "0.0.0.0/1 0",
                "0.0.0.0/0 0",
                "10.0.0.0/30 0",
                "10.0.0.0/16 0",
                "10.0.0.0/8 0",
                "10.0.0.0/8 1"
            ]
        );
    }

    #[test]
    fn same_prefix_and_metric_is_refused() {
        let mut table = RoutingTable::default();
        table.insert(route("10.0.0.0/8", 0)).unwrap();
        assert!(table.insert(route("10.0.0.0/8", 0)).is_err());
        assert!(table.insert(route("10.0.0.0/8", 5)).is_ok());
        let mut second = route("10.0.0.0/8", 0);
        second.dev = IfaceId(1);
        table.append(second);
        let devs: Vec<_> = table.routes().iter().map(|r| (r.metric, r.dev.0)).collect();
        assert_eq!(devs, [(0, 0), (0, 1), (5, 0)]);
    }

    #[test]
    fn lookup_is_longest_prefix_then_lowest_metric() {
        let mut table = RoutingTable::default();
        table.insert(route("0.0.0.0/0", 0)).unwrap();
        table.insert(route("10.0.0.0/8", 9)).unwrap();
        table.insert(route("10.0.0.0/8", 3)).unwrap();
        table.insert(route("10.1.0.0/16", 100)).unwrap();
        let hit = |a: [u8; 4]| {
            table
                .lookup(Ipv4Addr::from(a))
                .map(|r| (r.dst.to_string(), r.metric))
        };
        assert_eq!(hit([10, 1, 2, 3]), Some(("10.1.0.0/16".into(), 100)));
        assert_eq!(hit([10, 2, 2, 3]), Some(("10.0.0.0/8".into(), 3)));
        assert_eq!(hit([8, 8, 8, 8]), Some(("0.0.0.0/0".into(), 0)));
        assert!(
            RoutingTable::default()
                .lookup(Ipv4Addr::LOCALHOST)
                .is_none()
        );
    }

    #[test]
    fn reject_routes_take_part_in_lookup_and_refusal() {
        let reject = |dst: &str, metric, kind| RejectRoute {
            dst: dst.parse().unwrap(),
            metric,
            kind,
            origin: Origin::default(),
        };
        let mut table = RoutingTable::default();
        table.insert(route("0.0.0.0/0", 0)).unwrap();
        table.insert(route("10.1.2.0/24", 0)).unwrap();
        table
            .insert_reject(reject("10.0.0.0/8", 0, RouteType::Blackhole))
            .unwrap();
        // Kernel: `ip route add unreachable P` beside `ip route add blackhole P` (same metric)
        // and `ip route add P dev X` beside it both answer "File exists".
        assert!(
            table
                .insert_reject(reject("10.0.0.0/8", 0, RouteType::Unreachable))
                .is_err()
        );
        assert!(table.insert(route("10.0.0.0/8", 0)).is_err());
        table
            .insert_reject(reject("10.0.0.0/8", 5, RouteType::Prohibit))
            .unwrap();
        let kind = |a: [u8; 4]| match table.resolve(Ipv4Addr::from(a)) {
            Some(Lookup::Reject(r)) => Some(r.kind),
            _ => None,
        };
        assert_eq!(kind([10, 9, 9, 9]), Some(RouteType::Blackhole));
        assert_eq!(kind([10, 1, 2, 3]), None);
        assert!(table.lookup(Ipv4Addr::new(10, 9, 9, 9)).is_none());
        assert_eq!(
            table
                .lookup(Ipv4Addr::new(10, 1, 2, 3))
                .map(|r| r.dst.to_string()),
            Some("10.1.2.0/24".into())
        );
        let order: Vec<_> = table
            .entries()
            .iter()
            .map(|e| format!("{} {}", e.dst(), e.metric()))
            .collect();
        assert_eq!(
            order,
            [
                "0.0.0.0/0 0",
                "10.0.0.0/8 0",
                "10.0.0.0/8 5",
                "10.1.2.0/24 0"
            ]
        );
    }
}
