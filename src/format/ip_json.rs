//! The JSON iproute2 prints for `ip -j addr` and `ip -j route show table all` (with or without
//! `-p`, `-d`), as serde types: the files a node's `ip_addr:` and `ip_route:` keys name.
//!
//! JSON is YAML, so the files are read with the same parser as a topology and every value keeps
//! its place in its file ([`Located`]). The types hold the fields reachlab reads; which of the
//! other fields are accepted and which are refused is decided where the files are read
//! (`topology::ip_json`, from the list in docs/topology-format.md, "Addresses and routes from
//! `ip -j`"), from the keys as written.

use serde::Deserialize;

use super::diagnostic::{Code, Diagnostic};
use super::source::{Located, SourceFile, Span};
use super::tree::Tree;

/// One link of `ip -j addr`: its name, state, MAC and addresses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpLink {
    pub ifname: Option<Located<String>>,
    /// `UP`, `LOWER_UP`, `NO-CARRIER`, `POINTOPOINT`, …
    #[serde(default)]
    pub flags: Option<Located<Vec<Located<String>>>>,
    /// `ether`, `loopback`, `none` (a tunnel), …
    pub link_type: Option<Located<String>>,
    /// The link-layer address: the MAC of an `ether` link.
    pub address: Option<Located<String>>,
    #[serde(default)]
    pub addr_info: Vec<Located<IpAddrInfo>>,
}

/// One address of a link.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpAddrInfo {
    /// `inet` or `inet6`.
    pub family: Option<Located<String>>,
    /// The address itself.
    pub local: Option<Located<String>>,
    /// The peer of a point-to-point address (printed only when it differs from `local`).
    pub address: Option<Located<String>>,
    pub prefixlen: Option<Located<u64>>,
    /// The broadcast address, when one was set.
    pub broadcast: Option<Located<String>>,
    /// `global`, `link`, `host`, …
    pub scope: Option<Located<String>>,
    /// The metric of the address's prefix route (`ip addr add … metric N`).
    pub metric: Option<Located<u64>>,
}

/// One route of `ip -j route show table all`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpRoute {
    /// Absent for `unicast` (printed with `-d` only); `blackhole`, `local`, `broadcast`, …
    #[serde(rename = "type")]
    pub kind: Option<Located<String>>,
    /// `default`, an address, or ADDRESS/LENGTH.
    pub dst: Option<Located<String>>,
    pub gateway: Option<Located<String>>,
    pub dev: Option<Located<String>>,
    /// Absent for `main` (printed with `-d` only); `local`, a number or a name.
    pub table: Option<Located<String>>,
    /// Absent for `boot`; `kernel`, `static`, `dhcp`, …
    pub protocol: Option<Located<String>>,
    pub scope: Option<Located<String>>,
    /// The source address the route prefers (`src` in `ip route`).
    pub prefsrc: Option<Located<String>>,
    pub metric: Option<Located<u64>>,
    #[serde(default)]
    pub flags: Vec<Located<String>>,
    /// Printed for IPv6 routes only.
    pub pref: Option<Located<String>>,
}

/// The keys of one map as written, with where each is.
pub(crate) type Keys = Vec<(String, Span)>;

/// The keys of map `tree` as written ([`Keys`]); empty when it is not a map.
pub(crate) fn keys(tree: &Located<Tree>) -> Keys {
    match &tree.value {
        Tree::Map(entries) => entries
            .iter()
            .map(|(k, _)| (k.value.0.clone(), k.span))
            .collect(),
        _ => Vec::new(),
    }
}

/// The value of key `key` of map `tree`.
pub(crate) fn value<'a>(tree: &'a Located<Tree>, key: &str) -> Option<&'a Located<Tree>> {
    match &tree.value {
        Tree::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.value.0 == key)
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The maps in list `key` of map `tree` (the `addr_info` of a link, say).
pub(crate) fn items<'a>(tree: &'a Located<Tree>, key: &str) -> &'a [Located<Tree>] {
    match value(tree, key).map(|v| &v.value) {
        Some(Tree::Seq(items)) => items,
        _ => &[],
    }
}

/// An entry of a file: typed, and as written.
pub(crate) type Entry<T> = (Located<T>, Located<Tree>);

/// Reads `source` as a JSON list of `T` (what `what` names in messages): each entry typed
/// and as written (for the keys the types do not read); the diagnostic (placed in `source`) when it is not such a
/// list.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    source: &SourceFile,
    what: &str,
) -> Result<Vec<Entry<T>>, Box<Diagnostic>> {
    let options = super::yaml::parse_options(source.text().len());
    let tree: Located<Tree> =
        serde_saphyr::from_str_with_options(source.text(), options.clone())
            .map_err(|e| Box::new(saphyr_error(source, &e, Code::YamlSyntax, what)))?;
    let Tree::Seq(items) = tree.value else {
        let found = match tree.value {
            Tree::Null => "nothing",
            Tree::Map(_) => "a map",
            _ => "a single value",
        };
        return Err(Box::new(
            Diagnostic::error(
                Code::WrongType,
                tree.span,
                format!("{what} holds {found}, not the JSON list `ip -j` prints"),
            )
            .label("expected `[ {…}, … ]`"),
        ));
    };
    if let Some(item) = items.iter().find(|i| !matches!(i.value, Tree::Map(_))) {
        return Err(Box::new(
            Diagnostic::error(
                Code::WrongType,
                item.span,
                format!("an entry of {what} is not a JSON object"),
            )
            .label("expected `{ \"key\": value, … }`"),
        ));
    }
    let typed: Vec<Located<T>> = serde_saphyr::from_str_with_options(source.text(), options)
        .map_err(|e| Box::new(saphyr_error(source, &e, Code::WrongType, what)))?;
    Ok(typed.into_iter().zip(items).collect())
}

/// A parser error as a diagnostic placed in `source`.
fn saphyr_error(
    source: &SourceFile,
    error: &serde_saphyr::Error,
    code: Code,
    what: &str,
) -> Diagnostic {
    let message = super::yaml::error_message(error);
    let span = super::yaml::error_span(source, error);
    Diagnostic::error(code, span, format!("{what} cannot be read: {message}"))
        .label("here")
        .hint("give the file exactly as `ip -j` printed it (JSON)")
}

/// Which values of a node came from its `ip_addr` and `ip_route` files (set on loading), so
/// that what the lowering says of them points into those files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken {
    /// The `ip_addr` file, and the indexes in `interfaces` of the interfaces whose addresses
    /// and MAC it gave.
    pub addr: Option<(std::sync::Arc<SourceFile>, Vec<usize>)>,
    /// The `ip_route` file, and how many of the node's first `routes` it gave.
    pub route: Option<(std::sync::Arc<SourceFile>, usize)>,
}

impl Taken {
    /// The file the addresses and MAC of interface `index` came from, if not the topology.
    pub fn interface_file(&self, index: usize) -> Option<&std::sync::Arc<SourceFile>> {
        self.addr
            .as_ref()
            .filter(|(_, taken)| taken.contains(&index))
            .map(|(file, _)| file)
    }

    /// The file route `index` came from, if not the topology.
    pub fn route_file(&self, index: usize) -> Option<&std::sync::Arc<SourceFile>> {
        self.route
            .as_ref()
            .filter(|(_, count)| index < *count)
            .map(|(file, _)| file)
    }
}
