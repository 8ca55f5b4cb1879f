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
}

impl RoutingTable {
    /// The routes in `ip route` order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    fn sort_key(route: &Route) -> (u32, std::cmp::Reverse<u8>, u32) {
        (
            u32::from(route.dst.network()),
            std::cmp::Reverse(route.dst.prefix_len()),
            route.metric,
        )
    }

    /// Adds a route. Like the kernel, refuses a second route with the same destination prefix
    /// and metric (`RTNETLINK answers: File exists`) and returns the one already there.
    pub fn insert(&mut self, route: Route) -> Result<(), &Route> {
        let key = Self::sort_key(&route);
        match self
            .routes
            .binary_search_by(|probe| Self::sort_key(probe).cmp(&key))
        {
            Ok(existing) => Err(&self.routes[existing]),
            Err(at) => {
                self.routes.insert(at, route);
                Ok(())
            }
        }
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

    /// The route the kernel would choose for `dst`: the longest matching prefix, and among
    /// routes to that prefix the lowest metric.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.lookup_indexed(dst).map(|(_, route)| route)
    }

    /// [`RoutingTable::lookup`] with the route's position in [`RoutingTable::routes`]: one pass,
    /// no address parsing (the first of the longest matching prefixes with the lowest metric).
    pub fn lookup_indexed(&self, dst: Ipv4Addr) -> Option<(usize, &Route)> {
        let ip = u32::from(dst);
        let mut best: Option<(usize, &Route)> = None;
        for (index, route) in self.routes.iter().enumerate() {
            let len = route.dst.prefix_len();
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            if ip & mask != u32::from(route.dst.network()) {
                continue;
            }
            let better = best.is_none_or(|(_, b)| {
                (len, std::cmp::Reverse(route.metric))
                    > (b.dst.prefix_len(), std::cmp::Reverse(b.metric))
            });
            if better {
                best = Some((index, route));
            }
        }
        best
    }
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
}
