//! A node's addresses and routes from `ip -j` output: the files its `ip_addr:` (`ip -j addr`)
//! and `ip_route:` (`ip -j route show table all`) keys name are read here and written into the
//! node as if the topology gave them (interface `addresses` and `mac`, `routes`), each value
//! keeping its place in its file. What is read, what is skipped and what is refused, and why,
//! is docs/topology-format.md, "Addresses and routes from `ip -j`".

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::format::file::{NodeSpec, RouteSpec, RouteTypeName, TopologyFile};
use crate::format::ip_json::{self, IpLink, IpRoute, Taken};
use crate::format::units::{self, DestinationError};
use crate::format::{Code, Diagnostic, Located, MAX_FILE_BYTES, SourceFile, Span, read_regular};

/// Fills the interfaces and routes of every node with `ip_addr` or `ip_route` from those files
/// (inside `base`, the topology's folder); what is wrong with them.
pub(super) fn attach(file: &mut TopologyFile, base: &Path) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for node in &mut file.nodes {
        if node.ip_addr.is_none() && node.ip_route.is_none() {
            continue;
        }
        let mut taken = Taken::default();
        let mut refused = HashSet::new();
        if let Some(written) = node.ip_addr.clone()
            && let Some(source) = read(base, &written, &mut diagnostics)
        {
            let indexes = Node::new(node, &source, &mut diagnostics).addresses(&mut refused);
            taken.addr = Some((source, indexes));
        }
        if let Some(written) = node.ip_route.clone()
            && let Some(source) = read(base, &written, &mut diagnostics)
        {
            let addr_file = taken.addr.is_some();
            let count =
                Node::new(node, &source, &mut diagnostics).routes(&written, addr_file, &refused);
            taken.route = Some((source, count));
        }
        node.ip_taken = Some(Box::new(taken));
    }
    diagnostics
}

/// The file `written` names, inside `base`; reported at `written` when it cannot be read.
fn read(
    base: &Path,
    written: &Located<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Arc<SourceFile>> {
    let hint = "name a file of `ip -j` output in the topology's folder, by a relative path";
    let fail = |message: String, hint: &str| {
        Diagnostic::error(Code::Io, written.span, message).hint(hint.to_owned())
    };
    let path = match crate::format::confined_path(base, &written.value, "`ip -j` file") {
        Ok(path) => path,
        Err(message) => {
            diagnostics.push(fail(message, hint));
            return None;
        }
    };
    let name = base.join(&written.value).display().to_string();
    let bytes = match read_regular(&path, MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(e) => {
            diagnostics.push(fail(format!("cannot read {name}: {e}"), e.hint()));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(Arc::new(SourceFile::new(name, text))),
        Err(_) => {
            diagnostics.push(fail(
                format!("{name} is not UTF-8 text"),
                "save it as UTF-8 (iproute2 prints UTF-8)",
            ));
            None
        }
    }
}

/// One node and one of its files being read.
struct Node<'a> {
    spec: &'a mut NodeSpec,
    file: &'a Arc<SourceFile>,
    diagnostics: &'a mut Vec<Diagnostic>,
}

/// A link of `ip -j addr`, read.
struct Link {
    name: Located<String>,
    /// Its IPv4 addresses that the model can hold, as `ADDRESS/LENGTH` at the place of
    /// `local`.
    addresses: Vec<Located<String>>,
    /// Whether one of its IPv4 addresses was refused.
    refused: bool,
    mac: Option<Located<String>>,
    link_type: Option<Located<String>>,
    flags: Option<Located<Vec<Located<String>>>>,
}

/// Keys of an IPv4 address that are read or that change nothing the model holds.
const ADDRESS_KEYS: &[&str] = &[
    "family",
    "local",
    "prefixlen",
    "address",
    "broadcast",
    "scope",
    "metric",
    "label",
    "valid_life_time",
    "preferred_life_time",
    "secondary",
    "dynamic",
    "protocol",
    "index",
    "dev",
];

/// Keys of a route that are read or that change nothing the model holds.
const ROUTE_KEYS: &[&str] = &[
    "type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric", "flags",
    "pref", "flow", "metrics",
];

/// What a key of an IPv4 address that reachlab refuses would change.
fn address_key_problem(key: &str) -> String {
    match key {
        "noprefixroute" => {
            "the kernel adds no connected route for this address; the model always does".into()
        }
        "deprecated" => {
            "the kernel avoids a deprecated address as a source; the model does not".into()
        }
        "autojoin" | "anycast" | "multicast" => {
            format!("`{key}` makes a multicast or anycast address, which the model does not have")
        }
        _ => format!("reachlab does not know what `{key}` changes in an address"),
    }
}

/// What a key of a route that reachlab refuses would change.
fn route_key_problem(key: &str) -> String {
    match key {
        "nhid" => {
            "the route uses a nexthop object (`ip nexthop`), which this file does not describe"
                .into()
        }
        "nexthops" => "the route is multipath; the model's routes have one nexthop".into(),
        "via" => "the route's gateway is of another address family".into(),
        "encap" => "the route encapsulates what it sends (a lightweight tunnel)".into(),
        "to" | "newdst" => "the route rewrites the destination (MPLS)".into(),
        "tos" => {
            "the route is only for packets of one TOS value; the model's routes match every packet"
                .into()
        }
        "from" | "src" => {
            "the route is only for packets from one source; the model's routes match every source"
                .into()
        }
        "mark" | "uid" | "iif" => {
            format!("`{key}` is part of a route lookup (`ip route get`), not of a routing table")
        }
        _ => format!("reachlab does not know what `{key}` changes in a route"),
    }
}

/// `fe80::/10` and `::1`: the IPv6 addresses every link and `lo` get by themselves.
fn automatic_ipv6(text: &str) -> bool {
    text.parse::<Ipv6Addr>()
        .is_ok_and(|a| a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80)
}

/// Up to three of `items`, then how many more.
fn some_of(items: &[String]) -> String {
    let mut out = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        out.push_str(&format!(" and {} more", items.len() - 3));
    }
    out
}

impl<'a> Node<'a> {
    fn new(
        spec: &'a mut NodeSpec,
        file: &'a Arc<SourceFile>,
        diagnostics: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Self {
            spec,
            file,
            diagnostics,
        }
    }

    /// Reports `d`, a finding placed in the file.
    fn in_file(&mut self, mut d: Diagnostic) {
        d.message = format!("node `{}`: {}", self.spec.name.value, d.message);
        d.file = Some(self.file.clone());
        self.diagnostics.push(d);
    }

    /// Refuses what the model would get wrong, at `span` in the file.
    fn unsupported(&mut self, span: Span, message: String, label: &str, hint: &str) {
        self.in_file(
            Diagnostic::error(Code::Unsupported, span, message)
                .label(label)
                .hint(hint),
        );
    }

    /// `file:line:column` of `span` in the file, for messages placed in the topology.
    fn place(&self, span: Span) -> String {
        format!("{}:{span}", self.file.name())
    }

    // ---- ip -j addr ----

    /// Reads the `ip_addr` file into the node's interfaces; the indexes of the interfaces
    /// that took their addresses and MAC from it. Interfaces refused (down, not Ethernet, an
    /// address the model cannot hold) go into `refused`.
    fn addresses(&mut self, refused: &mut HashSet<String>) -> Vec<usize> {
        let entries = match ip_json::parse::<IpLink>(self.file, "an `ip -j addr` file") {
            Ok(entries) => entries,
            Err(d) => {
                self.in_file(*d);
                return Vec::new();
            }
        };
        let mut links: Vec<Link> = Vec::new();
        let mut ipv6: Vec<(String, Span)> = Vec::new();
        for (link, tree) in &entries {
            let Some(name) = link.value.ifname.clone() else {
                self.in_file(
                    Diagnostic::error(Code::MissingKey, link.span, "a link without `ifname`")
                        .label("no name")
                        .hint("give the file as `ip -j addr` printed it"),
                );
                continue;
            };
            if let Some(first) = links.iter().find(|l| l.name.value == name.value) {
                let first = first.name.span;
                self.in_file(
                    Diagnostic::error(
                        Code::DuplicateName,
                        name.span,
                        format!("link `{}` is listed twice", name.value),
                    )
                    .label("second time")
                    .related(first, "first listed here")
                    .hint("give the output of one `ip -j addr` run"),
                );
                continue;
            }
            let infos = ip_json::items(tree, "addr_info");
            let loopback = name.value == "lo"
                || link
                    .value
                    .link_type
                    .as_ref()
                    .is_some_and(|t| t.value == "loopback");
            let mut read = Link {
                name: name.clone(),
                addresses: Vec::new(),
                refused: false,
                mac: link.value.address.clone(),
                link_type: link.value.link_type.clone(),
                flags: link.value.flags.clone(),
            };
            for (info, info_tree) in link.value.addr_info.iter().zip(infos) {
                match info.value.family.as_ref().map(|f| f.value.as_str()) {
                    Some("inet") => match self.ipv4_address(&name.value, loopback, info, info_tree)
                    {
                        Some(address) => read.addresses.push(address),
                        None => read.refused = true,
                    },
                    Some("inet6") => {
                        if let Some(local) = &info.value.local
                            && !automatic_ipv6(&local.value)
                        {
                            let len = info.value.prefixlen.as_ref().map_or(128, |p| p.value);
                            ipv6.push((format!("{}/{len}", local.value), local.span));
                        }
                    }
                    _ => {
                        let span = info.value.family.as_ref().map_or(info.span, |f| f.span);
                        self.unsupported(
                            span,
                            format!("an address of `{}` of another family", name.value),
                            "not `inet`",
                            "reachlab reads IPv4 (`inet`) addresses; give the file as `ip -j addr` printed it",
                        );
                        read.refused = true;
                    }
                }
            }
            links.push(read);
        }
        if let Some((_, first)) = ipv6.first() {
            let listed: Vec<String> = ipv6.iter().map(|(a, _)| a.clone()).collect();
            self.in_file(
                Diagnostic::warning(
                    Code::Unsupported,
                    *first,
                    format!(
                        "IPv6 address{} {} {} not modelled: reachlab is IPv4-only",
                        if listed.len() == 1 { "" } else { "es" },
                        some_of(&listed),
                        if listed.len() == 1 { "is" } else { "are" }
                    ),
                )
                .label("IPv6")
                .hint("probes of the model use IPv4 only; link-local addresses (fe80::/10) are left out silently"),
            );
        }
        self.take_addresses(&links, refused)
    }

    /// One `inet` address of `link` (a `loopback` one's are of scope host), as
    /// `ADDRESS/LENGTH` at the place of `local`; `None` (reported) when the model cannot hold it.
    fn ipv4_address(
        &mut self,
        link: &str,
        loopback: bool,
        info: &Located<ip_json::IpAddrInfo>,
        tree: &Located<crate::format::tree::Tree>,
    ) -> Option<Located<String>> {
        let mut ok = true;
        let which = info.value.local.as_ref().map_or_else(
            || "an address".to_owned(),
            |l| format!("address {}", l.value),
        );
        for (key, span) in ip_json::keys(tree) {
            if !ADDRESS_KEYS.contains(&key.as_str()) {
                self.unsupported(
                    span,
                    format!("{which} of `{link}`: {}", address_key_problem(&key)),
                    "not modelled",
                    "leave the interface out of `interfaces:`, or give its addresses under `addresses` instead",
                );
                ok = false;
            }
        }
        let info = &info.value;
        let Some(local) = &info.local else {
            self.in_file(
                Diagnostic::error(
                    Code::MissingKey,
                    tree.span,
                    format!("an address of `{link}` without `local`"),
                )
                .label("no address")
                .hint("give the file as `ip -j addr` printed it"),
            );
            return None;
        };
        let addr = match units::parse_addr(&local.value) {
            Ok(addr) => addr,
            Err(e) => {
                self.in_file(
                    Diagnostic::error(
                        Code::BadAddress,
                        local.span,
                        format!("`{}` is not an IPv4 address", local.value),
                    )
                    .label("expected an IPv4 address")
                    .hint(e),
                );
                return None;
            }
        };
        let len = match &info.prefixlen {
            Some(len) if len.value <= 32 => len.value as u8,
            Some(len) => {
                self.in_file(
                    Diagnostic::error(
                        Code::BadValue,
                        len.span,
                        format!("prefix length {} of {addr}", len.value),
                    )
                    .label("0 to 32")
                    .hint("an IPv4 prefix length is 0 to 32"),
                );
                return None;
            }
            None => {
                self.in_file(
                    Diagnostic::error(
                        Code::MissingKey,
                        local.span,
                        format!("address {addr} of `{link}` has no `prefixlen`"),
                    )
                    .label("no prefix length")
                    .hint("give the file as `ip -j addr` printed it"),
                );
                return None;
            }
        };
        let net = Ipv4Net::new(addr, len).ok()?;
        if let Some(peer) = &info.address
            && peer.value != local.value
        {
            self.unsupported(
                peer.span,
                format!("{addr} on `{link}` is a point-to-point address with peer {}", peer.value),
                "peer address",
                "the model has no peer addresses: its connected routes are the address's subnet; leave the interface out, or write `addresses` for it",
            );
            ok = false;
        }
        if let Some(scope) = &info.scope
            && !loopback
            && scope.value != "global"
        {
            self.unsupported(
                scope.span,
                format!("{addr} on `{link}` has scope `{}`", scope.value),
                "not global",
                "the model's addresses are all of scope global (the kernel picks sources by scope)",
            );
            ok = false;
        }
        if let Some(brd) = &info.broadcast
            && brd.value.parse::<Ipv4Addr>().ok() != Some(net.broadcast())
        {
            self.unsupported(
                brd.span,
                format!(
                    "{addr}/{len} on `{link}` has broadcast address {}",
                    brd.value
                ),
                "not the subnet's",
                &format!(
                    "the model's broadcast address of {} is {}",
                    net.trunc(),
                    net.broadcast()
                ),
            );
            ok = false;
        }
        if let Some(metric) = &info.metric
            && metric.value != 0
        {
            self.unsupported(
                metric.span,
                format!(
                    "{addr}/{len} on `{link}` gives its connected route metric {}",
                    metric.value
                ),
                "connected-route metric",
                "the model's connected routes have metric 0",
            );
            ok = false;
        }
        ok.then(|| Located::at(format!("{addr}/{len}"), local.span))
    }

    /// Fills the listed interfaces from `links`; the indexes of those filled.
    fn take_addresses(&mut self, links: &[Link], refused: &mut HashSet<String>) -> Vec<usize> {
        let node = self.spec.name.value.clone();
        let file = self.file.name().to_owned();
        let mut taken = Vec::new();
        let listed: HashSet<String> = self
            .spec
            .interfaces
            .iter()
            .map(|i| i.name.value.clone())
            .collect();
        for index in 0..self.spec.interfaces.len() {
            let iface = self.spec.interfaces[index].clone();
            let Some(link) = links.iter().find(|l| l.name.value == iface.name.value) else {
                let names: Vec<&str> = links.iter().map(|l| l.name.value.as_str()).collect();
                let hint = match crate::format::closest_name(&iface.name.value, &names) {
                    Some(close) => format!(
                        "did you mean `{close}`? links in the file: {}",
                        names.join(", ")
                    ),
                    None if names.is_empty() => "the file lists no links".to_owned(),
                    None => format!("links in the file: {}", names.join(", ")),
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::UnknownReference,
                        iface.name.span,
                        format!(
                            "interface `{}` of node `{node}` is not in {file}",
                            iface.name.value
                        ),
                    )
                    .label("not in the `ip -j addr` file")
                    .hint(hint),
                );
                refused.insert(iface.name.value.clone());
                continue;
            };
            if !self.usable_link(link) {
                refused.insert(iface.name.value.clone());
                continue;
            }
            if link.refused {
                refused.insert(iface.name.value.clone());
            }
            if let Some(written) = iface.addresses.first() {
                if let Some(first) = link.addresses.first() {
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::BadValue,
                            written.span,
                            format!(
                                "interface `{}` has addresses here and in {} ({})",
                                iface.name.value,
                                self.place(first.span),
                                first.value
                            ),
                            )
                            .label("given twice")
                            .hint("remove `addresses` to take them from the `ip_addr` file, or give them here only"),
                    );
                    refused.insert(iface.name.value.clone());
                }
                continue;
            }
            let spec = &mut self.spec.interfaces[index];
            spec.addresses = link.addresses.clone();
            if let Some(mac) = &link.mac {
                if let Some(written) = &spec.mac {
                    let span = written.span;
                    let at = format!("{file}:{}", mac.span);
                    self.diagnostics.push(
                        Diagnostic::error(
                            Code::BadValue,
                            span,
                            format!(
                                "interface `{}` has a MAC here and in {at} ({})",
                                iface.name.value, mac.value
                            ),
                        )
                        .label("given twice")
                        .hint("remove `mac` to take it from the `ip_addr` file"),
                    );
                } else {
                    spec.mac = Some(mac.clone());
                }
            }
            taken.push(index);
        }
        for link in links {
            if listed.contains(&link.name.value) {
                continue;
            }
            if link.name.value == "lo" {
                self.loopback_addresses(link);
                continue;
            }
            let what = if link.addresses.is_empty() {
                "no IPv4 address".to_owned()
            } else {
                let all: Vec<String> = link.addresses.iter().map(|a| a.value.clone()).collect();
                all.join(", ")
            };
            self.in_file(
                Diagnostic::warning(
                    Code::Unsupported,
                    link.name.span,
                    format!("interface `{}` ({what}) is not under `interfaces:`; it is left out", link.name.value),
                )
                .label("left out")
                .hint(format!("to keep it, list it under `interfaces:` of `{node}` with the segment it is plugged into")),
            );
        }
        taken
    }

    /// Whether a listed interface's link is one the model can have: Ethernet and up (reported
    /// when not); a link without carrier is warned about.
    fn usable_link(&mut self, link: &Link) -> bool {
        let name = &link.name.value;
        if name == "lo" {
            // The lowering refuses the name `lo` for any interface.
            return false;
        }
        if link
            .link_type
            .as_ref()
            .is_some_and(|t| t.value == "loopback")
        {
            let span = link.link_type.as_ref().map_or(link.name.span, |t| t.span);
            self.unsupported(
                span,
                format!("`{name}` is the loopback interface"),
                "loopback",
                "a segment's interfaces are Ethernet links; take `lo` out of `interfaces:`",
            );
            return false;
        }
        if let Some(kind) = &link.link_type
            && kind.value != "ether"
        {
            self.unsupported(
                kind.span,
                format!("`{name}` is a `{}` link, not Ethernet", kind.value),
                "not Ethernet",
                "the model's segments are Ethernet (ARP, MAC addresses); leave the interface out, or write it by hand",
            );
            return false;
        }
        let flags: Vec<&str> = link
            .flags
            .as_ref()
            .map(|f| f.value.iter().map(|f| f.value.as_str()).collect())
            .unwrap_or_default();
        let flags_span = link.flags.as_ref().map_or(link.name.span, |f| f.span);
        if link.flags.is_some() && !flags.contains(&"UP") {
            self.unsupported(
                flags_span,
                format!("`{name}` is down on the host (no `UP` flag)"),
                "down",
                &format!("the kernel routes nothing through a down link; the model's interfaces are all up: bring it up (`ip link set {name} up`) and capture again, or leave it out"),
            );
            return false;
        }
        if flags.contains(&"NO-CARRIER") {
            self.in_file(
                Diagnostic::warning(
                    Code::Unsupported,
                    flags_span,
                    format!("`{name}` has no carrier on the host (NO-CARRIER)"),
                )
                .label("no carrier")
                .hint("the model plugs the interface into its segment; on the host nothing it sends arrives"),
            );
        }
        true
    }

    /// Warns about the addresses of `lo` outside 127.0.0.0/8, which the model has nowhere.
    fn loopback_addresses(&mut self, link: &Link) {
        let loopback = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).ok();
        for address in &link.addresses {
            let inside = units::parse_interface_addr(&address.value)
                .ok()
                .zip(loopback)
                .is_some_and(|(a, lo)| lo.contains(&a.addr()));
            if !inside {
                self.in_file(
                    Diagnostic::warning(
                        Code::Unsupported,
                        address.span,
                        format!("address {} of `lo` is not modelled", address.value),
                    )
                    .label("left out")
                    .hint("the model's node answers on its interfaces' addresses only: to keep this one, give it to a listed interface (as a /32)"),
                );
            }
        }
    }

    // ---- ip -j route show table all ----

    /// Reads the `ip_route` file into the node's routes (before those written); how many came
    /// from it. `addr_file` says whether the node has an `ip_addr` file (which then reported
    /// the interfaces left out); the connected routes of interfaces in `refused` are not
    /// looked for.
    fn routes(
        &mut self,
        written: &Located<String>,
        addr_file: bool,
        refused: &HashSet<String>,
    ) -> usize {
        let entries = match ip_json::parse::<IpRoute>(self.file, "an `ip -j route` file") {
            Ok(entries) => entries,
            Err(d) => {
                self.in_file(*d);
                return 0;
            }
        };
        let mut scan = RouteScan {
            derived: Derived::of(self.spec),
            addr_file,
            refused,
            seen: HashSet::new(),
            links: link_routes(&entries),
            ipv6: Vec::new(),
            tables: Vec::new(),
        };
        let mut out: Vec<RouteSpec> = Vec::new();
        for (route, tree) in &entries {
            if let Some(spec) = self.route_entry(route, tree, &mut scan) {
                out.push(spec);
            }
        }
        self.route_leftovers(written, scan);
        let count = out.len();
        self.remove_duplicates(&out);
        out.append(&mut self.spec.routes);
        self.spec.routes = out;
        count
    }

    /// One route of the file: the route it gives the node, or `None` (skipped, or reported).
    fn route_entry(
        &mut self,
        route: &Located<IpRoute>,
        tree: &Located<crate::format::tree::Tree>,
        scan: &mut RouteScan<'_>,
    ) -> Option<RouteSpec> {
        let r = &route.value;
        let is_ipv6 = r.pref.is_some()
            || [&r.dst, &r.gateway, &r.prefsrc]
                .iter()
                .any(|v| v.as_ref().is_some_and(|v| v.value.contains(':')));
        if is_ipv6 {
            if r.protocol.as_ref().is_none_or(|p| p.value != "kernel") {
                scan.ipv6
                    .push(r.dst.as_ref().map_or(route.span, |d| d.span));
            }
            return None;
        }
        let mut ok = true;
        for (key, span) in ip_json::keys(tree) {
            if !ROUTE_KEYS.contains(&key.as_str()) {
                self.route_unsupported(span, r, &route_key_problem(&key));
                ok = false;
            }
        }
        if let Some(metrics) = ip_json::value(tree, "metrics") {
            let items: &[Located<crate::format::tree::Tree>] = match &metrics.value {
                crate::format::tree::Tree::Seq(items) => items,
                _ => std::slice::from_ref(metrics),
            };
            for (key, span) in items.iter().flat_map(ip_json::keys) {
                if key == "mtu" {
                    self.route_unsupported(
                        span,
                        r,
                        "the route sets the path MTU; the model's MTU is the segments'",
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let table = r.table.as_ref().map_or("main", |t| t.value.as_str());
        let local = match table {
            "main" | "254" => false,
            "local" | "255" => true,
            other => {
                let span = r.table.as_ref().map_or(route.span, |t| t.span);
                match scan.tables.iter_mut().find(|(t, _, _)| t == other) {
                    Some((_, _, count)) => *count += 1,
                    None => scan.tables.push((other.to_owned(), span, 1)),
                }
                return None;
            }
        };
        let Some(dst_text) = &r.dst else {
            self.in_file(
                Diagnostic::error(Code::MissingKey, route.span, "a route without `dst`")
                    .label("no destination")
                    .hint("give the file as `ip -j route show table all` printed it"),
            );
            return None;
        };
        let dst = self.destination(dst_text)?;
        let metric = match &r.metric {
            Some(m) if m.value > u64::from(u32::MAX) => {
                self.in_file(
                    Diagnostic::error(
                        Code::BadValue,
                        m.span,
                        format!("metric {} is larger than the kernel's (32 bits)", m.value),
                    )
                    .label("too large")
                    .hint("give the file as `ip -j route show table all` printed it"),
                );
                return None;
            }
            Some(m) => Some(Located::at(m.value as u32, m.span)),
            None => None,
        };
        if let Some(dead) = r.flags.iter().find(|f| f.value == "dead") {
            self.route_unsupported(
                dead.span,
                r,
                "the route is dead (its nexthop's link is down); the kernel does not use it",
            );
            return None;
        }
        let kind = r.kind.as_ref().map_or("unicast", |k| k.value.as_str());
        let dev = r.dev.as_ref().map(|d| d.value.as_str());
        let kernel = r.protocol.as_ref().is_some_and(|p| p.value == "kernel");
        if kernel && dev.is_some_and(|d| scan.refused.contains(d)) {
            // What the kernel made from an interface already refused (reported with it).
            return None;
        }
        if local {
            self.local_table_route(route, kind, dst, &scan.derived, scan.addr_file);
            return None;
        }
        let reject = match kind {
            "unicast" => None,
            "blackhole" => Some(RouteTypeName::Blackhole),
            "unreachable" => Some(RouteTypeName::Unreachable),
            "prohibit" => Some(RouteTypeName::Prohibit),
            other => {
                let span = r.kind.as_ref().map_or(route.span, |k| k.span);
                self.route_unsupported(span, r, &format!("the model has no `{other}` routes in the main table (it has unicast, blackhole, unreachable and prohibit)"));
                return None;
            }
        };
        if let Some(reject) = reject {
            let kind_span = r.kind.as_ref().map_or(route.span, |k| k.span);
            return Some(RouteSpec {
                to: dst_text.clone(),
                kind: Some(Located::at(reject, kind_span)),
                via: None,
                dev: None,
                metric,
            });
        }
        self.unicast_route(route, dst_text, dst, metric, kernel, scan)
    }

    /// A unicast route of the main table: through a gateway or on a link of an interface the
    /// node has, checked against what the model would do with it.
    fn unicast_route(
        &mut self,
        route: &Located<IpRoute>,
        dst_text: &Located<String>,
        dst: Ipv4Net,
        metric: Option<Located<u32>>,
        kernel: bool,
        scan: &mut RouteScan<'_>,
    ) -> Option<RouteSpec> {
        let r = &route.value;
        let dev = r.dev.as_ref().map(|d| d.value.as_str());
        let gateway = match &r.gateway {
            Some(g) => match units::parse_addr(&g.value) {
                Ok(addr) => Some(addr),
                Err(e) => {
                    self.in_file(
                        Diagnostic::error(
                            Code::BadAddress,
                            g.span,
                            format!("`{}` is not a gateway address", g.value),
                        )
                        .label("expected an IPv4 address")
                        .hint(e),
                    );
                    return None;
                }
            },
            None => None,
        };
        let Some(dev_name) = dev else {
            // Without `dev` the lowering says what is missing, in the file.
            return Some(RouteSpec {
                to: dst_text.clone(),
                kind: None,
                via: r.gateway.clone(),
                dev: None,
                metric,
            });
        };
        if dev_name == "lo" {
            self.route_unsupported(
                r.dev.as_ref().map_or(route.span, |d| d.span),
                r,
                "the route leaves through `lo`, which the model does not have",
            );
            return None;
        }
        let Some(nets) = scan.derived.addresses.get(dev_name) else {
            if !(kernel && scan.addr_file) {
                let node = self.spec.name.value.clone();
                self.in_file(
                    Diagnostic::warning(
                        Code::Unsupported,
                        r.dev.as_ref().map_or(route.span, |d| d.span),
                        format!("the route to {dst} leaves through `{dev_name}`, which is not under `interfaces:`; it is left out"),
                    )
                    .label("left out")
                    .hint(format!("to keep it, list `{dev_name}` under `interfaces:` of `{node}` with the segment it is plugged into")),
                );
            }
            return None;
        };
        if gateway.is_none() {
            let connected = scan
                .derived
                .connected
                .iter()
                .find(|c| c.dev == dev_name && c.subnet == dst);
            let prefsrc = r.prefsrc.as_ref().map(|p| p.value.parse::<Ipv4Addr>().ok());
            let metric_value = metric.as_ref().map_or(0, |m| m.value);
            if let Some(c) = connected
                && metric_value == 0
                && prefsrc.is_none_or(|p| p == Some(c.primary))
            {
                scan.seen.insert((dev_name.to_owned(), dst));
                return None;
            }
            if kernel {
                let why = match connected {
                    Some(c) if metric_value != 0 => format!(
                        "its metric is {metric_value}; the model's connected route from {} has metric 0",
                        c.primary
                    ),
                    Some(c) => format!(
                        "its source is not {}, the primary address of the subnet on `{dev_name}`",
                        c.primary
                    ),
                    None if nets.is_empty() => format!("`{dev_name}` has no IPv4 address"),
                    None => format!(
                        "no address of `{dev_name}` ({}) is in {dst}",
                        nets.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let span = dst_text.span;
                self.in_file(
                    Diagnostic::error(
                        Code::Unsupported,
                        span,
                        format!("the kernel's connected route to {dst} dev {dev_name} is not one the addresses give: {why}"),
                    )
                    .label("connected route")
                    .hint("a connected route comes from an address of its subnet: capture `ip -j addr` and `ip -j route show table all` together, or give the interface that address"),
                );
                return None;
            }
        }
        if let Some(prefsrc) = &r.prefsrc {
            let chosen = gateway
                .and_then(|g| nets.iter().find(|n| n.contains(&g)))
                .or(nets.first())
                .map(Ipv4Net::addr);
            if prefsrc.value.parse::<Ipv4Addr>().ok() != chosen {
                let model = chosen.map_or("none".to_owned(), |c| c.to_string());
                self.route_unsupported(
                    prefsrc.span,
                    r,
                    &format!("the route prefers source {}; the model sends from {model}, as the kernel does without `src`", prefsrc.value),
                );
                return None;
            }
        }
        // `onlink` skips the kernel's check that a link route reaches the gateway: the same
        // route as without it when one does (a subnet of the device, or a route with only
        // `dev` on it), else one the model cannot have.
        if let (Some(onlink), Some(g)) = (r.flags.iter().find(|f| f.value == "onlink"), gateway)
            && !nets.iter().any(|n| n.contains(&g))
            && !scan
                .links
                .iter()
                .any(|(d, n)| d == dev_name && n.contains(&g))
        {
            self.route_unsupported(
                onlink.span,
                r,
                &format!("gateway {g} is on-link by decree (`onlink`): no subnet of `{dev_name}` and no route with only `dev {dev_name}` holds it, and the model's gateways are reached through a link route"),
            );
            return None;
        }
        Some(RouteSpec {
            to: dst_text.clone(),
            kind: None,
            via: r.gateway.clone(),
            dev: r.dev.clone(),
            metric,
        })
    }

    /// What the whole file says beyond its routes: connected routes the addresses give that
    /// it lacks, and the IPv6 routes and other tables left out.
    fn route_leftovers(&mut self, written: &Located<String>, scan: RouteScan<'_>) {
        for c in &scan.derived.connected {
            if !scan.seen.contains(&(c.dev.clone(), c.subnet)) && !scan.refused.contains(&c.dev) {
                self.diagnostics.push(
                    Diagnostic::error(
                        Code::Unsupported,
                        written.span,
                        format!(
                            "{} has no connected route to {} dev {}, which address {} gives; the model routes by it",
                            self.file.name(),
                            c.subnet,
                            c.dev,
                            c.primary
                        ),
                    )
                    .label("connected route missing")
                    .hint("capture `ip -j addr` and `ip -j route show table all` together; an address added with `noprefixroute`, or a connected route deleted, is not modelled"),
                );
            }
        }
        if let Some(first) = scan.ipv6.first() {
            let count = scan.ipv6.len();
            self.in_file(
                Diagnostic::warning(
                    Code::Unsupported,
                    *first,
                    format!(
                        "{count} IPv6 route{} not modelled: reachlab is IPv4-only",
                        if count == 1 { " is" } else { "s are" }
                    ),
                )
                .label("IPv6")
                .hint("IPv6 routes the kernel makes from addresses are left out silently"),
            );
        }
        for (table, span, count) in scan.tables {
            self.in_file(
                Diagnostic::warning(
                    Code::Unsupported,
                    span,
                    format!("{count} route{} of table `{table}` {} left out: tables other than `main` serve `ip rule`s only, which reachlab does not read", if count == 1 { "" } else { "s" }, if count == 1 { "is" } else { "are" }),
                )
                .label("not main")
                .hint("the model routes every packet by the main table; traffic an `ip rule` sends to this table on the host is routed differently there"),
            );
        }
    }

    /// A route of the file that the model would get wrong: refused at `span`.
    fn route_unsupported(&mut self, span: Span, route: &IpRoute, why: &str) {
        let dst = route.dst.as_ref().map_or("?", |d| d.value.as_str());
        self.unsupported(
            span,
            format!("the route to {dst} is not modelled: {why}"),
            "not modelled",
            "remove the route on the host (or from the file) if the model may do without it",
        );
    }

    /// The destination `dst` of the file, read (reported when it cannot be).
    fn destination(&mut self, dst: &Located<String>) -> Option<Ipv4Net> {
        match units::parse_destination(&dst.value) {
            Ok(net) => Some(net),
            Err(DestinationError::Syntax(e)) => {
                self.in_file(
                    Diagnostic::error(
                        Code::BadAddress,
                        dst.span,
                        format!("`{}` is not a route destination", dst.value),
                    )
                    .label("expected `default`, PREFIX/LENGTH or an address")
                    .hint(e),
                );
                None
            }
            Err(DestinationError::HostBitsSet(meant)) => {
                self.in_file(
                    Diagnostic::error(
                        Code::HostBitsSet,
                        dst.span,
                        format!("`{}` has host bits set", dst.value),
                    )
                    .label("not a network address")
                    .hint(format!(
                        "the kernel prints `{meant}`: give the file as `ip -j route` printed it"
                    )),
                );
                None
            }
        }
    }

    /// A route of table `local`: skipped when it is one the addresses give, refused otherwise.
    fn local_table_route(
        &mut self,
        route: &Located<IpRoute>,
        kind: &str,
        dst: Ipv4Net,
        derived: &Derived,
        addr_file: bool,
    ) {
        let r = &route.value;
        let dev = r.dev.as_ref().map_or("", |d| d.value.as_str());
        let kernel = r.protocol.as_ref().is_some_and(|p| p.value == "kernel");
        if dev == "lo" || (kernel && addr_file && !derived.addresses.contains_key(dev)) {
            // `lo`'s own routes; those of an interface left out (reported with it).
            return;
        }
        let prefsrc = r.prefsrc.as_ref().map(|p| p.value.parse::<Ipv4Addr>().ok());
        let nets = derived.addresses.get(dev).map_or(&[][..], Vec::as_slice);
        let host = (dst.prefix_len() == 32).then_some(dst.addr());
        let given = nets.iter().any(|n| {
            let primary = derived.primary(dev, *n);
            let source = prefsrc.is_none_or(|p| p == Some(primary));
            match kind {
                "local" => host == Some(n.addr()) && source,
                // Kernels before 5.x also made a broadcast route for the subnet's own address.
                "broadcast" => {
                    n.prefix_len() < 31
                        && (host == Some(n.broadcast()) || host == Some(n.network()))
                        && source
                }
                _ => false,
            }
        });
        if !given {
            let span = r.dst.as_ref().map_or(route.span, |d| d.span);
            let why = match kind {
                "local" | "broadcast" => format!(
                    "no address of `{dev}` gives this `{kind}` route; the model's local and broadcast addresses are those of its interfaces' addresses"
                ),
                other => format!(
                    "the model's table `local` holds only the `local` and `broadcast` routes of its addresses, not a `{other}` route"
                ),
            };
            self.route_unsupported(span, r, &why);
        }
    }

    /// Refuses the routes of `routes:` that have the destination and metric of one from the
    /// file (`ip route add` would say: File exists), and drops them so that the lowering does
    /// not report them again.
    fn remove_duplicates(&mut self, from_file: &[RouteSpec]) {
        let key = |r: &RouteSpec| {
            units::parse_destination(&r.to.value)
                .ok()
                .map(|dst| (dst, r.metric.as_ref().map_or(0, |m| m.value)))
        };
        let node = self.spec.name.value.clone();
        let file = self.file.name().to_owned();
        let mut kept = Vec::new();
        for written in std::mem::take(&mut self.spec.routes) {
            let first = key(&written).and_then(|k| {
                from_file
                    .iter()
                    .find(|f| key(f) == Some(k))
                    .map(|f| (k, f.to.span))
            });
            match first {
                Some(((dst, metric), span)) => self.diagnostics.push(
                    Diagnostic::error(
                        Code::DuplicateRoute,
                        written.to.span,
                        format!("node `{node}` already has a route to {dst} with metric {metric}, from {file}:{span}"),
                    )
                    .label("same destination and metric as a route of the `ip_route` file")
                    .hint("remove one of the two, or give this route another `metric` (`ip route add` says: RTNETLINK answers: File exists)"),
                ),
                None => kept.push(written),
            }
        }
        self.spec.routes = kept;
    }
}

/// What the model derives from a node's interface addresses (the topology's or the
/// `ip_addr` file's): the routes the kernel makes from them, which the `ip_route` file holds
/// too.
/// What reading an `ip -j route` file keeps from one route to the next.
/// The unicast routes of the main table without a gateway, by device and destination.
fn link_routes(
    entries: &[(Located<IpRoute>, Located<crate::format::tree::Tree>)],
) -> Vec<(String, Ipv4Net)> {
    entries
        .iter()
        .filter_map(|(route, _)| {
            let r = &route.value;
            let main = r
                .table
                .as_ref()
                .is_none_or(|t| t.value == "main" || t.value == "254");
            let unicast = r.kind.as_ref().is_none_or(|k| k.value == "unicast");
            if !main || !unicast || r.gateway.is_some() {
                return None;
            }
            let dst = units::parse_destination(&r.dst.as_ref()?.value).ok()?;
            Some((r.dev.as_ref()?.value.clone(), dst))
        })
        .collect()
}

struct RouteScan<'a> {
    derived: Derived,
    /// Whether the node has an `ip_addr` file (which reported the interfaces left out).
    addr_file: bool,
    /// Interfaces refused already: their connected routes are not looked for.
    refused: &'a HashSet<String>,
    /// The connected routes found, by device and subnet.
    seen: HashSet<(String, Ipv4Net)>,
    /// Every unicast route of the main table without a gateway, by device and destination:
    /// the link routes a gateway may be reached through.
    links: Vec<(String, Ipv4Net)>,
    /// Where IPv6 routes were.
    ipv6: Vec<Span>,
    /// Tables other than main and local: name, first place, how many routes.
    tables: Vec<(String, Span, usize)>,
}

struct Derived {
    /// Each interface's IPv4 addresses, in order.
    addresses: HashMap<String, Vec<Ipv4Net>>,
    connected: Vec<Connected>,
}

/// A connected route: the subnet of a primary address that is not a /32 (the lowering's
/// `connected_routes`).
struct Connected {
    dev: String,
    subnet: Ipv4Net,
    primary: Ipv4Addr,
}

impl Derived {
    fn of(spec: &NodeSpec) -> Self {
        let mut addresses = HashMap::new();
        let mut connected: Vec<Connected> = Vec::new();
        for iface in &spec.interfaces {
            let nets: Vec<Ipv4Net> = iface
                .addresses
                .iter()
                .filter_map(|a| units::parse_interface_addr(&a.value).ok())
                .collect();
            for net in &nets {
                let subnet = net.trunc();
                let known = connected
                    .iter()
                    .any(|c| c.dev == iface.name.value && c.subnet == subnet);
                if net.prefix_len() < 32 && !known {
                    connected.push(Connected {
                        dev: iface.name.value.clone(),
                        subnet,
                        primary: net.addr(),
                    });
                }
            }
            addresses.insert(iface.name.value.clone(), nets);
        }
        Self {
            addresses,
            connected,
        }
    }

    /// The primary address of `net`'s subnet on `dev`: the first address there in it.
    fn primary(&self, dev: &str, net: Ipv4Net) -> Ipv4Addr {
        self.addresses
            .get(dev)
            .and_then(|nets| nets.iter().find(|n| n.trunc() == net.trunc()))
            .map_or(net.addr(), Ipv4Net::addr)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::format::FileReport;
    use crate::topology::{Loaded, load_path};

    /// A link of `ip -j addr` as iproute2 6.1 prints it (veth, up), with `addr_info` given.
    fn link(name: &str, mac: &str, addr_info: &str) -> String {
        format!(
            r#"{{"ifindex":3,"link":"peer","ifname":"{name}","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"{mac}","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{addr_info}]}}"#
        )
    }

    /// An `inet` address as iproute2 prints it; `extra` is added before `label`.
    fn inet(addr: &str, len: u8, extra: &str) -> String {
        format!(
            r#"{{"family":"inet","local":"{addr}","prefixlen":{len},"scope":"global",{extra}"label":"x","valid_life_time":4294967295,"preferred_life_time":4294967295}}"#
        )
    }

    const LO: &str = r#"{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]}"#;

    /// eth0 with 10.0.0.2/24, 10.1.0.1/16 and the secondary 10.0.0.3/24, as the kernel lists
    /// them (primaries first).
    fn eth0() -> String {
        link(
            "eth0",
            "3a:d6:68:b1:76:56",
            &[
                inet("10.0.0.2", 24, ""),
                inet("10.1.0.1", 16, ""),
                inet("10.0.0.3", 24, r#""secondary":true,"#),
            ]
            .join(","),
        )
    }

    /// The routes the kernel makes from eth0's addresses (`ip -j route show table all`).
    const ETH0_KERNEL: &[&str] = &[
        r#"{"dst":"10.0.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.2","flags":[]}"#,
        r#"{"dst":"10.1.0.0/16","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.1.0.1","flags":[]}"#,
        r#"{"type":"local","dst":"10.0.0.2","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.0.0.2","flags":[]}"#,
        r#"{"type":"local","dst":"10.0.0.3","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.0.0.2","flags":[]}"#,
        r#"{"type":"broadcast","dst":"10.0.0.255","dev":"eth0","table":"local","protocol":"kernel","scope":"link","prefsrc":"10.0.0.2","flags":[]}"#,
        r#"{"type":"local","dst":"10.1.0.1","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.1.0.1","flags":[]}"#,
        r#"{"type":"broadcast","dst":"10.1.255.255","dev":"eth0","table":"local","protocol":"kernel","scope":"link","prefsrc":"10.1.0.1","flags":[]}"#,
        r#"{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]}"#,
    ];

    /// `ip -j route show table all` with eth0's kernel routes and `more`.
    fn routes(more: &[&str]) -> String {
        let all: Vec<&str> = more.iter().chain(ETH0_KERNEL).copied().collect();
        format!("[{}]", all.join(","))
    }

    const NODE: &str = "segments: [{ name: lan }]\nnodes:\n  - name: h\n    interfaces:\n      - { name: eth0, segment: lan }\n";

    /// Loads `topology` from a folder of its own holding `files`.
    fn load(test: &str, topology: &str, files: &[(&str, &str)]) -> Result<Loaded, Box<FileReport>> {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reachlab-ipj-{}-{test}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::fs::write(dir.join("t.yaml"), topology).unwrap();
        let loaded = load_path(&dir.join("t.yaml"));
        std::fs::remove_dir_all(&dir).unwrap();
        loaded
    }

    /// A topology of node `h` with eth0 on `lan`, taking `ip_addr: a.json`, `ip_route: r.json`
    /// and the extra node keys `more`.
    fn both(more: &str) -> String {
        format!("{NODE}    ip_addr: a.json\n    ip_route: r.json\n{more}")
    }

    fn addr_file(links: &[String]) -> String {
        format!("[{}]", links.join(","))
    }

    fn errors(report: &FileReport) -> Vec<(Code, String)> {
        report
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| (d.code, d.message.clone()))
            .collect()
    }

    fn warnings(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .map(|d| d.message.clone())
            .collect()
    }

    /// The one error of a topology that must not load, and the file it is placed in.
    fn one_error(report: &FileReport) -> (&Diagnostic, String) {
        let all: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(all.len(), 1, "{:#?}", report.diagnostics);
        let file = all[0].file.as_ref().map_or("topology".to_owned(), |f| {
            Path::new(f.name())
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        });
        (all[0], file)
    }

    fn table(loaded: &Loaded) -> Vec<String> {
        let net = &loaded.network;
        crate::render::ip_route(net, &net.nodes[0])
    }

    #[test]
    fn listed_interfaces_take_addresses_in_order_and_mac() {
        let loaded = load(
            "take",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[LO.into(), eth0()]))],
        )
        .unwrap();
        let net = &loaded.network;
        let iface = &net.interfaces[0];
        let addresses: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addresses, ["10.0.0.2/24", "10.1.0.1/16", "10.0.0.3/24"]);
        assert_eq!(iface.mac.to_string(), "3a:d6:68:b1:76:56");
        assert!(
            loaded.report.diagnostics.is_empty(),
            "{:?}",
            loaded.report.diagnostics
        );
    }

    #[test]
    fn pretty_printed_json_is_read_alike() {
        let pretty = "[ {\n        \"ifname\": \"eth0\",\n        \"flags\": [ \"BROADCAST\",\"MULTICAST\",\"UP\",\"LOWER_UP\" ],\n        \"link_type\": \"ether\",\n        \"address\": \"02:00:00:00:00:09\",\n        \"addr_info\": [ {\n                \"family\": \"inet\",\n                \"local\": \"10.0.0.2\",\n                \"prefixlen\": 24,\n                \"scope\": \"global\"\n            } ]\n    } ]\n";
        let loaded = load(
            "pretty",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", pretty)],
        )
        .unwrap();
        assert_eq!(
            loaded.network.interfaces[0].addresses[0].to_string(),
            "10.0.0.2/24"
        );
        assert_eq!(
            loaded.network.interfaces[0].mac.to_string(),
            "02:00:00:00:00:09"
        );
    }

    #[test]
    fn addresses_in_both_places_are_an_error() {
        let topology = NODE.replace("segment: lan }", "segment: lan, addresses: [10.9.0.1/24] }")
            + "    ip_addr: a.json\n";
        let report = load("both", &topology, &[("a.json", &addr_file(&[eth0()]))]).unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::BadValue, "topology"));
        assert!(
            d.message.contains("addresses here and in") && d.message.contains("a.json:1:"),
            "{d:?}"
        );
    }

    #[test]
    fn a_mac_in_both_places_is_an_error() {
        let topology = NODE.replace("segment: lan }", "segment: lan, mac: 02:00:00:00:00:01 }")
            + "    ip_addr: a.json\n";
        let report = load("mac", &topology, &[("a.json", &addr_file(&[eth0()]))]).unwrap_err();
        let (d, _) = one_error(&report);
        assert!(d.message.contains("a MAC here and in"), "{d:?}");
    }

    #[test]
    fn written_addresses_stay_when_the_file_has_none() {
        let topology = NODE.replace("segment: lan }", "segment: lan, addresses: [10.9.0.1/24] }")
            + "    ip_addr: a.json\n";
        let bare = link("eth0", "02:00:00:00:00:07", "");
        let loaded = load("written", &topology, &[("a.json", &addr_file(&[bare]))]).unwrap();
        let iface = &loaded.network.interfaces[0];
        assert_eq!(iface.addresses[0].to_string(), "10.9.0.1/24");
        assert_ne!(
            iface.mac.to_string(),
            "02:00:00:00:00:07",
            "only an interface without addresses takes the file's MAC"
        );
    }

    #[test]
    fn an_interface_missing_from_the_file_is_an_error() {
        let topology = NODE.replace(
            "- { name: eth0, segment: lan }",
            "- { name: eth0, segment: lan }\n      - { name: eth9, segment: lan }",
        ) + "    ip_addr: a.json\n";
        let report = load("missing", &topology, &[("a.json", &addr_file(&[eth0()]))]).unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!(
            (d.code, file.as_str()),
            (Code::UnknownReference, "topology")
        );
        assert!(
            d.message.contains("`eth9`") && d.hint.as_deref().is_some_and(|h| h.contains("eth0")),
            "{d:?}"
        );
        assert_eq!(d.span.map(|s| s.line), Some(6));
    }

    #[test]
    fn an_interface_not_listed_is_a_warning_naming_its_addresses() {
        let eth1 = link("eth1", "02:00:00:00:00:02", &inet("192.168.7.1", 24, ""));
        let loaded = load(
            "unlisted",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[LO.into(), eth0(), eth1]))],
        )
        .unwrap();
        let warned = warnings(&loaded.report.diagnostics);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("`eth1` (192.168.7.1/24)"), "{warned:?}");
        let d = &loaded.report.diagnostics[0];
        assert!(
            d.hint.as_deref().is_some_and(|h| h.contains("segment")),
            "{d:?}"
        );
    }

    #[test]
    fn loopback_addresses_beyond_127_are_a_warning() {
        let lo = LO.replace(
            r#"{"family":"inet6""#,
            &format!("{},{{\"family\":\"inet6\"", inet("10.255.0.1", 32, "")),
        );
        let loaded = load(
            "lo",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[lo, eth0()]))],
        )
        .unwrap();
        assert_eq!(
            warnings(&loaded.report.diagnostics),
            ["node `h`: address 10.255.0.1/32 of `lo` is not modelled"]
        );
    }

    #[test]
    fn ipv6_addresses_give_one_warning_per_file_and_link_local_none() {
        let v6 = r#"{"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"2001:db8:1::1","prefixlen":64,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::38d6:68ff:feb1:7656","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}"#;
        let eth = link(
            "eth0",
            "02:00:00:00:00:01",
            &format!("{},{v6}", inet("10.0.0.2", 24, "")),
        );
        let loaded = load(
            "v6",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[LO.into(), eth]))],
        )
        .unwrap();
        assert_eq!(
            warnings(&loaded.report.diagnostics),
            [
                "node `h`: IPv6 addresses 2001:db8::1/64, 2001:db8:1::1/64 are not modelled: reachlab is IPv4-only"
            ]
        );
    }

    #[test]
    fn a_peer_address_is_unsupported_at_its_place() {
        let eth = link(
            "eth0",
            "02:00:00:00:00:01",
            r#"{"family":"inet","local":"10.9.0.1","address":"10.9.0.2","prefixlen":32,"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295}"#,
        );
        let text = addr_file(&[eth]);
        let report = load(
            "peer",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &text)],
        )
        .unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::Unsupported, "a.json"));
        let span = d.span.unwrap();
        assert_eq!(
            &text[span.offset as usize..][..span.len as usize].trim_matches('"'),
            &"10.9.0.2"
        );
        assert_eq!(
            (span.line, span.column as usize),
            (1, text.find(r#""10.9.0.2""#).unwrap() + 1)
        );
    }

    #[test]
    fn address_keys_that_change_routes_or_sources_are_refused() {
        for (extra, word) in [
            (r#""noprefixroute":true,"#, "no connected route"),
            (r#""metric":5,"#, "metric 5"),
            (r#""deprecated":true,"#, "deprecated"),
            (
                r#""broadcast":"10.0.0.127","#,
                "broadcast address 10.0.0.127",
            ),
            (r#""frobnicate":1,"#, "does not know what `frobnicate`"),
        ] {
            let eth = link("eth0", "02:00:00:00:00:01", &inet("10.0.0.2", 24, extra));
            let report = load(
                "keys",
                &format!("{NODE}    ip_addr: a.json\n"),
                &[("a.json", &addr_file(&[eth]))],
            )
            .unwrap_err();
            let (d, file) = one_error(&report);
            assert_eq!((d.code, file.as_str()), (Code::Unsupported, "a.json"));
            assert!(d.message.contains(word), "{word}: {d:?}");
        }
        let standard = link(
            "eth0",
            "02:00:00:00:00:01",
            &inet(
                "10.0.0.2",
                24,
                r#""broadcast":"10.0.0.255","dynamic":true,"#,
            ),
        );
        load(
            "keys-ok",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[standard]))],
        )
        .unwrap();
    }

    #[test]
    fn a_scope_other_than_global_is_refused() {
        let eth = link(
            "eth0",
            "02:00:00:00:00:01",
            &inet("10.0.0.2", 24, "").replace("\"global\"", "\"link\""),
        );
        let report = load(
            "scope",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[eth]))],
        )
        .unwrap_err();
        assert!(one_error(&report).0.message.contains("scope `link`"));
    }

    #[test]
    fn a_down_link_is_refused_and_no_carrier_warned() {
        let down = eth0().replace(r#""UP","LOWER_UP""#, "");
        let report = load(
            "down",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[down]))],
        )
        .unwrap_err();
        assert!(one_error(&report).0.message.contains("down on the host"));
        let no_carrier = eth0().replace(r#""UP","LOWER_UP""#, r#""NO-CARRIER","UP""#);
        let loaded = load(
            "carrier",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[no_carrier]))],
        )
        .unwrap();
        assert_eq!(
            warnings(&loaded.report.diagnostics),
            ["node `h`: `eth0` has no carrier on the host (NO-CARRIER)"]
        );
    }

    #[test]
    fn links_that_are_not_ethernet_are_refused() {
        let tun = eth0().replace(r#""link_type":"ether""#, r#""link_type":"none""#);
        let report = load(
            "tun",
            &format!("{NODE}    ip_addr: a.json\n"),
            &[("a.json", &addr_file(&[tun]))],
        )
        .unwrap_err();
        assert!(one_error(&report).0.message.contains("a `none` link"));
        let topology = NODE.replace("name: eth0", "name: lo0") + "    ip_addr: a.json\n";
        let lo0 = LO.replace(r#""ifname":"lo""#, r#""ifname":"lo0""#);
        let report = load("lo-listed", &topology, &[("a.json", &addr_file(&[lo0]))]).unwrap_err();
        assert!(one_error(&report).0.message.contains("loopback"));
    }

    #[test]
    fn main_table_routes_come_first_and_match_the_kernel() {
        let more = [
            r#"{"dst":"10.70.0.0/16","gateway":"10.0.0.1","dev":"eth0","table":"100","flags":[]}"#,
            r#"{"dst":"default","gateway":"10.0.0.1","dev":"eth0","flags":[]}"#,
            r#"{"dst":"10.50.0.0/16","gateway":"10.0.0.1","dev":"eth0","metric":100,"flags":[]}"#,
            r#"{"dst":"10.51.0.0/16","dev":"eth0","scope":"link","flags":[]}"#,
            r#"{"type":"blackhole","dst":"10.60.0.0/16","flags":[]}"#,
            r#"{"type":"unreachable","dst":"10.61.0.0/16","flags":[]}"#,
            r#"{"type":"prohibit","dst":"10.62.0.0/16","metric":3,"flags":[]}"#,
            r#"{"dst":"10.52.0.0/16","gateway":"10.1.0.9","dev":"eth0","protocol":"static","scope":"global","prefsrc":"10.1.0.1","flags":[]}"#,
        ];
        let written = "    routes:\n      - { to: 10.99.0.0/16, via: 10.0.0.1 }\n";
        let loaded = load(
            "routes",
            &both(written),
            &[
                ("a.json", &addr_file(&[LO.into(), eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap();
        // `ip route` in a namespace holding these addresses and routes (iproute2 6.1).
        assert_eq!(
            table(&loaded),
            [
                "default via 10.0.0.1 dev eth0",
                "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2",
                "10.1.0.0/16 dev eth0 proto kernel scope link src 10.1.0.1",
                "10.50.0.0/16 via 10.0.0.1 dev eth0 metric 100",
                "10.51.0.0/16 dev eth0 scope link",
                "10.52.0.0/16 via 10.1.0.9 dev eth0",
                "blackhole 10.60.0.0/16",
                "unreachable 10.61.0.0/16",
                "prohibit 10.62.0.0/16 metric 3",
                "10.99.0.0/16 via 10.0.0.1 dev eth0",
            ]
        );
        assert_eq!(
            warnings(&loaded.report.diagnostics),
            [
                "node `h`: 1 route of table `100` is left out: tables other than `main` serve `ip rule`s only, which reachlab does not read"
            ]
        );
        let net = &loaded.network;
        let default = net.nodes[0]
            .routes
            .routes()
            .iter()
            .find(|r| r.dst.prefix_len() == 0)
            .unwrap();
        assert!(
            default.origin.file.ends_with("r.json"),
            "{:?}",
            default.origin
        );
        assert_eq!(default.origin.span.line, 1);
    }

    #[test]
    fn a_gateway_a_dev_route_reaches_is_taken_onlink_or_not() {
        // A Calico pod's table (Linux 6.18, iproute2 6.1): a /32 address gives no connected
        // route, `169.254.1.1 dev eth0 scope link` reaches the gateway, and `ip -j route`
        // lists the routes through it first. With that route, `onlink` changes nothing.
        let eth0 = link("eth0", "8e:5b:9e:65:47:0d", &inet("10.244.0.5", 32, ""));
        let routes = [
            r#"{"dst":"default","gateway":"169.254.1.1","dev":"eth0","flags":[]}"#,
            r#"{"dst":"10.99.0.0/16","gateway":"169.254.1.1","dev":"eth0","flags":["onlink"]}"#,
            r#"{"dst":"169.254.1.1","dev":"eth0","scope":"link","flags":[]}"#,
            r#"{"type":"local","dst":"10.244.0.5","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.244.0.5","flags":[]}"#,
            r#"{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]}"#,
        ];
        let loaded = load(
            "linkgw",
            &both(""),
            &[
                ("a.json", &addr_file(&[LO.into(), eth0])),
                ("r.json", &format!("[{}]", routes.join(","))),
            ],
        )
        .unwrap();
        assert_eq!(
            table(&loaded),
            [
                "default via 169.254.1.1 dev eth0",
                "10.99.0.0/16 via 169.254.1.1 dev eth0",
                "169.254.1.1 dev eth0 scope link",
            ]
        );
    }

    #[test]
    fn details_output_is_read_alike() {
        let more = [
            r#"{"type":"unicast","dst":"default","gateway":"10.0.0.1","dev":"eth0","table":"main","protocol":"boot","scope":"global","flags":[]}"#,
        ];
        let loaded = load(
            "details",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap();
        assert_eq!(table(&loaded)[0], "default via 10.0.0.1 dev eth0");
    }

    #[test]
    fn a_connected_route_without_its_address_is_an_error() {
        let more = [
            r#"{"dst":"10.5.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.5.0.1","flags":[]}"#,
        ];
        let report = load(
            "connected",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::Unsupported, "r.json"));
        assert!(
            d.message
                .contains("connected route to 10.5.0.0/24 dev eth0"),
            "{d:?}"
        );
    }

    #[test]
    fn a_connected_route_the_file_lacks_is_an_error() {
        let text = format!("[{}]", ETH0_KERNEL[1..].join(","));
        let report = load(
            "lacks",
            &both(""),
            &[("a.json", &addr_file(&[eth0()])), ("r.json", &text)],
        )
        .unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::Unsupported, "topology"));
        assert!(
            d.message
                .contains("no connected route to 10.0.0.0/24 dev eth0"),
            "{d:?}"
        );
        assert_eq!(d.span.map(|s| s.line), Some(7), "at `ip_route:`");
    }

    #[test]
    fn a_local_route_no_address_gives_is_refused() {
        let more = [
            r#"{"type":"local","dst":"10.44.0.0/16","dev":"eth0","table":"local","protocol":"boot","scope":"host","flags":[]}"#,
        ];
        let report = load(
            "anyip",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap_err();
        assert!(
            one_error(&report)
                .0
                .message
                .contains("no address of `eth0` gives this `local` route")
        );
    }

    #[test]
    fn the_network_broadcast_of_older_kernels_is_accepted() {
        let more = [
            r#"{"type":"broadcast","dst":"10.0.0.0","dev":"eth0","table":"local","protocol":"kernel","scope":"link","prefsrc":"10.0.0.2","flags":[]}"#,
        ];
        load(
            "oldbrd",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap();
    }

    #[test]
    fn ipv6_routes_give_one_warning_and_kernel_ones_none() {
        let more = [
            r#"{"dst":"default","gateway":"fe80::1","dev":"eth0","protocol":"ra","metric":1024,"flags":[],"pref":"medium"}"#,
            r#"{"dst":"2001:db8:5::/64","gateway":"fe80::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}"#,
            r#"{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}"#,
        ];
        let loaded = load(
            "v6routes",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap();
        assert_eq!(
            warnings(&loaded.report.diagnostics),
            ["node `h`: 2 IPv6 routes are not modelled: reachlab is IPv4-only"]
        );
    }

    #[test]
    fn routes_whose_meaning_the_model_lacks_are_refused() {
        for (route, word) in [
            (
                r#"{"dst":"10.81.0.0/16","flags":[],"nexthops":[{"gateway":"10.0.0.1","dev":"eth0","weight":1,"flags":[]},{"gateway":"10.1.0.5","dev":"eth0","weight":1,"flags":[]}]}"#,
                "multipath",
            ),
            (
                r#"{"dst":"10.81.0.0/16","nhid":7,"gateway":"10.0.0.1","dev":"eth0","flags":[]}"#,
                "nexthop object",
            ),
            (
                r#"{"dst":"10.81.0.0/16","tos":"0x10","gateway":"10.0.0.1","dev":"eth0","flags":[]}"#,
                "one TOS",
            ),
            (
                r#"{"dst":"10.81.0.0/16","encap":"mpls","gateway":"10.0.0.1","dev":"eth0","flags":[]}"#,
                "encapsulates",
            ),
            (
                r#"{"type":"throw","dst":"10.81.0.0/16","flags":[]}"#,
                "no `throw` routes",
            ),
            (
                r#"{"dst":"10.81.0.0/16","gateway":"10.0.0.1","dev":"eth0","flags":[],"metrics":[{"mtu":1400}]}"#,
                "path MTU",
            ),
            (
                r#"{"dst":"10.81.0.0/16","dev":"eth0","scope":"link","prefsrc":"10.0.0.3","flags":[]}"#,
                "prefers source 10.0.0.3",
            ),
            (
                r#"{"dst":"10.81.0.0/16","gateway":"192.168.9.1","dev":"eth0","flags":["onlink"]}"#,
                "on-link by decree",
            ),
            (
                r#"{"dst":"10.81.0.0/16","gateway":"10.0.0.1","dev":"eth0","flags":["dead","linkdown"]}"#,
                "dead",
            ),
            (
                r#"{"dst":"10.81.0.0/16","gateway":"10.0.0.1","dev":"eth0","bogus":1,"flags":[]}"#,
                "does not know what `bogus`",
            ),
        ] {
            let report = load(
                "refused",
                &both(""),
                &[
                    ("a.json", &addr_file(&[eth0()])),
                    ("r.json", &routes(&[route])),
                ],
            )
            .unwrap_err();
            let (d, file) = one_error(&report);
            assert_eq!(
                (d.code, file.as_str()),
                (Code::Unsupported, "r.json"),
                "{word}"
            );
            assert!(d.message.contains(word), "{word}: {d:?}");
        }
    }

    #[test]
    fn fields_that_do_not_change_forwarding_are_accepted() {
        let route = r#"{"dst":"10.81.0.0/16","gateway":"10.0.0.1","dev":"eth0","protocol":"dhcp","scope":"global","prefsrc":"10.0.0.2","metric":50,"flags":["onlink","linkdown","offload"],"flow":{"to":"5"},"metrics":[{"initcwnd":10}]}"#;
        let loaded = load(
            "accepted",
            &both(""),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&[route])),
            ],
        )
        .unwrap();
        assert!(
            table(&loaded).contains(&"10.81.0.0/16 via 10.0.0.1 dev eth0 metric 50".to_owned())
        );
    }

    #[test]
    fn a_route_through_an_unlisted_interface_is_left_out_with_a_warning() {
        let route = r#"{"dst":"default","gateway":"192.168.7.254","dev":"eth1","flags":[]}"#;
        let loaded = load(
            "unlisted-route",
            &format!("{NODE}    ip_route: r.json\n").replace(
                "segment: lan }",
                "segment: lan, addresses: [10.0.0.2/24, 10.1.0.1/16, 10.0.0.3/24] }",
            ),
            &[("r.json", &routes(&[route]))],
        )
        .unwrap();
        let warned = warnings(&loaded.report.diagnostics);
        assert!(
            warned.len() == 1 && warned[0].contains("`eth1`"),
            "{warned:?}"
        );
        assert!(!table(&loaded).iter().any(|l| l.starts_with("default")));
    }

    #[test]
    fn a_written_route_duplicating_the_files_is_an_error() {
        let more = [r#"{"dst":"default","gateway":"10.0.0.1","dev":"eth0","flags":[]}"#];
        let written = "    routes:\n      - { to: default, via: 10.1.0.7 }\n";
        let report = load(
            "dup",
            &both(written),
            &[
                ("a.json", &addr_file(&[eth0()])),
                ("r.json", &routes(&more)),
            ],
        )
        .unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::DuplicateRoute, "topology"));
        assert_eq!(d.span.map(|s| s.line), Some(9));
    }

    #[test]
    fn what_the_lowering_says_of_file_values_points_into_the_file() {
        // Addresses written by hand, routes from a host whose gateway they do not reach.
        let topology = format!("{NODE}    ip_route: r.json\n").replace(
            "segment: lan }",
            "segment: lan, addresses: [10.0.0.2/24, 10.1.0.1/16, 10.0.0.3/24] }",
        );
        let text = routes(&[r#"{"dst":"default","gateway":"172.16.0.1","flags":[]}"#]);
        let report = load("lowered", &topology, &[("r.json", &text)]).unwrap_err();
        let (d, file) = one_error(&report);
        assert_eq!((d.code, file.as_str()), (Code::InvalidGateway, "r.json"));
        let span = d.span.unwrap();
        assert_eq!(
            &text[span.offset as usize..][..span.len as usize].trim_matches('"'),
            &"172.16.0.1"
        );
    }

    #[test]
    fn files_outside_the_folder_or_missing_are_refused() {
        let report = load(
            "outside",
            &format!("{NODE}    ip_addr: /etc/hostname\n    ip_route: nowhere.json\n"),
            &[],
        )
        .unwrap_err();
        let all = errors(&report);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all.iter().all(|(code, _)| *code == Code::Io), "{all:?}");
        assert!(all[0].1.contains("is absolute"), "{all:?}");
        assert!(all[1].1.contains("nowhere.json"), "{all:?}");
    }

    #[test]
    fn garbage_gives_diagnostics_never_a_panic() {
        let cases = [
            "",
            "{",
            "{}",
            "null",
            "[1, 2]",
            "[{\"ifname\": [1]}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": 3}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"family\": \"inet\", \"local\": \"10.0.0.2\", \"prefixlen\": \"x\"}]}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"family\": \"inet\", \"local\": \"10.0.0.299\", \"prefixlen\": 24}]}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"family\": \"inet\", \"local\": \"10.0.0.2\", \"prefixlen\": 99}]}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"family\": \"inet\", \"prefixlen\": 24}]}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"local\": \"10.0.0.2\"}]}]",
            "[{\"ifname\": \"eth0\", \"address\": \"zz:00\", \"addr_info\": [{\"family\": \"inet\", \"local\": \"10.0.0.2\", \"prefixlen\": 24}]}]",
            "[{\"ifname\": \"eth0\"}, {\"ifname\": \"eth0\"}]",
            "[{\"addr_info\": []}]",
            "[{\"ifname\": \"eth0\", \"addr_info\": [{\"family\": \"inet\", \"local\": \"10.0.0.2\", \"prefixlen\": 99999999999999999999999}]}]",
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            "\u{feff}[]x",
        ];
        for case in cases {
            let report = load(
                "garbage",
                &format!("{NODE}    ip_addr: a.json\n"),
                &[("a.json", case)],
            )
            .unwrap_err();
            assert!(report.error_count() > 0);
            for d in &report.diagnostics {
                assert!(d.span.is_some() && d.hint.is_some(), "{case}: {d:?}");
            }
        }
        let route_cases = [
            "[{}]",
            "[{\"dst\": \"nowhere\", \"dev\": \"eth0\"}]",
            "[{\"dst\": \"10.0.0.1/8\", \"dev\": \"eth0\"}]",
            "[{\"dst\": \"default\", \"gateway\": \"x\", \"dev\": \"eth0\"}]",
            "[{\"dst\": \"default\", \"metric\": 99999999999, \"dev\": \"eth0\"}]",
            "[{\"dst\": \"default\", \"metric\": -1, \"dev\": \"eth0\"}]",
            "[{\"dst\": \"default\", \"flags\": \"x\"}]",
            "[{\"dst\": \"default\"}]",
        ];
        let topology = format!("{NODE}    ip_route: r.json\n")
            .replace("segment: lan }", "segment: lan, addresses: [10.0.0.2/24] }");
        for case in route_cases {
            let report = load("garbage-route", &topology, &[("r.json", case)]).unwrap_err();
            assert!(report.error_count() > 0, "{case}");
            for d in &report.diagnostics {
                assert!(d.span.is_some() && d.hint.is_some(), "{case}: {d:?}");
            }
        }
    }
}
