//! Name resolution as a node's stub resolver does it, over a zone a platform serves (a
//! Kubernetes cluster's DNS: its Services by name): the search list and `ndots` of
//! resolv.conf, tried in glibc's `res_search` order. Resolution is static — no DNS packet is
//! simulated — so it happens when a probe's target is read (docs/platform-semantics.md,
//! "Kubernetes", **DNS**).

use std::net::Ipv4Addr;

/// Names and their addresses, as a DNS server answers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsZone {
    /// What serves it, for messages (`CoreDNS of cluster `c``).
    pub server: String,
    /// Fully qualified names (no trailing dot, lowercase) and their A records.
    pub records: Vec<(String, Ipv4Addr)>,
}

impl DnsZone {
    /// The address of `name` (case-insensitive, a trailing dot ignored).
    pub fn lookup(&self, name: &str) -> Option<Ipv4Addr> {
        let name = name.trim_end_matches('.');
        self.records
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }
}

/// A node's resolv.conf: which zone answers it, its search list and `ndots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    /// The zone's position in [`crate::model::Network::zones`].
    pub zone: usize,
    pub search: Vec<String>,
    pub ndots: usize,
}

impl Resolver {
    /// The names tried for `name`, in order (glibc `res_search`): a name ending in a dot as it
    /// is; a name with at least `ndots` dots as it is, then with each search domain; any other
    /// name with each search domain first, then as it is.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.trim_end_matches('.').to_owned()];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_owned())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_in(namespace: &str) -> Resolver {
        Resolver {
            zone: 0,
            search: vec![
                format!("{namespace}.svc.cluster.local"),
                "svc.cluster.local".into(),
                "cluster.local".into(),
            ],
            ndots: 5,
        }
    }

    #[test]
    fn a_short_name_is_tried_with_each_search_domain_first() {
        assert_eq!(
            pod_in("shop").candidates("web"),
            [
                "web.shop.svc.cluster.local",
                "web.svc.cluster.local",
                "web.cluster.local",
                "web"
            ]
        );
    }

    #[test]
    fn a_name_with_ndots_dots_is_tried_as_it_is_first() {
        let r = Resolver {
            ndots: 1,
            ..pod_in("shop")
        };
        assert_eq!(r.candidates("web.shop")[0], "web.shop");
    }

    #[test]
    fn a_name_ending_in_a_dot_is_only_tried_as_it_is() {
        assert_eq!(
            pod_in("shop").candidates("web.shop.svc.cluster.local."),
            ["web.shop.svc.cluster.local"]
        );
    }

    #[test]
    fn lookup_ignores_case_and_the_trailing_dot() {
        let zone = DnsZone {
            server: "CoreDNS".into(),
            records: vec![(
                "web.shop.svc.cluster.local".into(),
                Ipv4Addr::new(10, 96, 1, 1),
            )],
        };
        assert_eq!(
            zone.lookup("Web.Shop.svc.cluster.local."),
            Some(Ipv4Addr::new(10, 96, 1, 1))
        );
        assert_eq!(zone.lookup("db.shop.svc.cluster.local"), None);
    }
}
