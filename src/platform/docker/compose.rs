//! Compose files on an engine (`compose:`), brought up as `docker compose up` would: each file
//! read as written (the Compose specification), its networks and services mapped onto the
//! engine's `networks:` and `containers:` (docs/platform-semantics.md, "Docker", **Compose**).
//!
//! - Project name: the file's `name:`, else its folder's name, normalised as Compose does
//!   (lower case, `[a-z0-9_-]` only, no leading `_`/`-`).
//! - Networks: `PROJECT_KEY` unless `name:` (external ones: `name:` or the key); only those a
//!   started service uses are created, in key order; a service that names none is on
//!   `PROJECT_default`.
//! - Containers: `PROJECT-SERVICE-1` unless `container_name:`, started in dependency order
//!   (`depends_on`), file order among independent services; networks attached in Compose's
//!   order (`priority` descending, then the key).
//! - `x-reachlab: { listen: [...], dns: [...] }` on a service says what it answers and which
//!   names resolve to it (Compose ignores `x-` keys).
//! - A Compose key reachlab does not model is a warning naming it once per file; one that
//!   changes networking in a way reachlab cannot follow is an error.
//!
//! What is read is checked here, with positions in the Compose file (`Diagnostic.file`); the
//! networks and containers it becomes are placed at the engine's `compose:` entry, where the
//! later checks (addresses taken, ports bound) report.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::Deserialize;

use super::containers::parse_publish;
use super::{ContainerSpec, DockerEngineSpec, DockerNetworkSpec};
use crate::format::file::{HttpSpec, ListenSpec};
use crate::format::structure::Checker;
use crate::format::tree::{Key, Tree};
use crate::format::{Code, Diagnostic, Located, MAX_FILE_BYTES, SourceFile, Span};

/// Top-level Compose keys reachlab does not model (warned once per file).
const IGNORED_TOP: [&str; 5] = ["version", "volumes", "configs", "secrets", "models"];

/// Service keys of the Compose specification that change nothing reachlab models.
const IGNORED_SERVICE: [&str; 80] = [
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "external_links",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_start",
    "pre_stop",
    "privileged",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
];

/// Service keys reachlab reads.
const READ_SERVICE: [&str; 9] = [
    "container_name",
    "networks",
    "network_mode",
    "ports",
    "expose",
    "depends_on",
    "profiles",
    "scale",
    "x-reachlab",
];

/// Service keys that change networking in ways reachlab does not follow.
const REFUSED_SERVICE: [(&str, &str); 4] = [
    (
        "extra_hosts",
        "reachlab resolves names from `x-reachlab: { dns: [...] }` and the file's `dns:`; remove `extra_hosts`",
    ),
    (
        "extends",
        "write the service out in full: reachlab does not merge `extends`",
    ),
    (
        "provider",
        "a provider service runs no container; remove it or describe what it provides as nodes",
    ),
    (
        "volumes_from",
        "remove `volumes_from` (it may also share another container's network settings)",
    ),
];

/// The engine with its Compose files brought up: its own networks and containers, then each
/// file's, in order. Problems are reported; what could not be read adds nothing.
pub(super) fn bring_up(
    engine: &DockerEngineSpec,
    base: &Path,
    out: &mut Vec<Diagnostic>,
) -> DockerEngineSpec {
    let mut full = engine.clone();
    for written in &engine.compose {
        let Some((source, folder)) = read(base, written, out) else {
            continue;
        };
        let mut reader = Reader {
            source,
            entry: written.span,
            out,
            warned: BTreeSet::new(),
        };
        if let Some(project) = reader.project(&folder, &full) {
            full.networks.extend(project.networks);
            full.containers.extend(project.containers);
        }
    }
    full
}

/// The Compose file `written` names, inside `base`, with the name of its folder; reported at
/// `written` when it cannot be read.
fn read(
    base: &Path,
    written: &Located<String>,
    out: &mut Vec<Diagnostic>,
) -> Option<(Arc<SourceFile>, String)> {
    let fail = |message: String, hint: &str| {
        Diagnostic::error(Code::Io, written.span, message)
            .label("not a Compose file reachlab reads")
            .hint(hint.to_owned())
    };
    let hint = "name a Compose file in the topology's folder, by a relative path";
    let path = match crate::format::confined_path(base, &written.value, "Compose file") {
        Ok(path) => path,
        Err(message) => {
            out.push(fail(message, hint));
            return None;
        }
    };
    let name = base.join(&written.value).display().to_string();
    let bytes = match crate::format::read_regular(&path, MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(e) => {
            out.push(fail(format!("cannot read {name}: {e}"), e.hint()));
            return None;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        out.push(fail(
            format!("{name} is not UTF-8 text"),
            "save the Compose file as UTF-8",
        ));
        return None;
    };
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some((Arc::new(SourceFile::new(name, text)), folder))
}

/// Compose's `NormalizeProjectName`: lower case, only `[a-z0-9_-]`, no leading `_` or `-`.
fn normalize_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// What one Compose file adds to the engine.
#[derive(Debug, Default)]
struct Project {
    networks: Vec<DockerNetworkSpec>,
    containers: Vec<ContainerSpec>,
}

/// A top-level network of the file.
#[derive(Debug)]
struct Network {
    key: String,
    /// Where the key is written (the service's network entry for the implicit `default`).
    span: Span,
    /// Docker's name for it.
    name: String,
    external: bool,
    internal: bool,
    icc: Option<bool>,
    subnet: Option<Ipv4Net>,
}

/// A service's attachment to a network of the file.
#[derive(Debug)]
struct Attach {
    key: Located<String>,
    address: Option<Ipv4Addr>,
    priority: i128,
}

/// A service of the file, as read.
#[derive(Debug, Default)]
struct Service {
    key: Located<String>,
    container_name: Option<String>,
    /// `network_mode` (`host`, `none`, `bridge` or a network of the engine).
    mode: Option<String>,
    /// `networks:` as written (none: `default`).
    networks: Vec<Attach>,
    /// `ports:` as `-p` values.
    ports: Vec<String>,
    depends_on: Vec<Located<String>>,
    /// Has `profiles:`: not started by a plain `docker compose up`.
    profiled: bool,
    listen: Vec<ListenSpec>,
    dns: Vec<String>,
}

/// `x-reachlab` of a service, read again typed once the tree was checked.
#[derive(Deserialize)]
struct Extension {
    #[serde(default)]
    listen: Vec<ListenSpec>,
}

/// A service's `x-reachlab`, as the typed second reading sees it.
#[derive(Deserialize)]
struct ServiceView {
    #[serde(default, rename = "x-reachlab")]
    reachlab: Option<Extension>,
}

/// The whole file, as the typed second reading sees it: services by key.
#[derive(Deserialize)]
struct FileView {
    #[serde(default)]
    services: Option<BTreeMap<String, Option<ServiceView>>>,
}

/// Reads one Compose file, reporting into it.
struct Reader<'o> {
    source: Arc<SourceFile>,
    /// The engine's `compose:` entry naming the file.
    entry: Span,
    out: &'o mut Vec<Diagnostic>,
    /// Ignored keys already warned about in this file.
    warned: BTreeSet<String>,
}

type Map = [(Located<Key>, Located<Tree>)];

impl Reader<'_> {
    fn report(&mut self, mut d: Diagnostic) {
        d.file = Some(self.source.clone());
        self.out.push(d);
    }

    fn error(&mut self, code: Code, span: Span, message: String, label: &str, hint: &str) {
        self.report(
            Diagnostic::error(code, span, message)
                .label(label)
                .hint(hint.to_owned()),
        );
    }

    /// A key of the specification reachlab does not model: a warning, once per file.
    fn ignored(&mut self, key: &Located<Key>, place: &str) {
        let name = format!("{place}{}", key.value.0);
        if self.warned.insert(name.clone()) {
            self.report(
                Diagnostic::warning(
                    Code::Unsupported,
                    key.span,
                    format!("Compose key `{name}` is ignored: it changes nothing reachlab models"),
                )
                .label("ignored")
                .hint("reachlab reads a service's networks, ports and `x-reachlab`; this key is left out of the model"),
            );
        }
    }

    /// A key that is not one of the specification's at this place.
    fn unknown(&mut self, key: &Located<Key>, place: &str, known: &[&str]) {
        let word = &key.value.0;
        let hint = match crate::format::closest_name(word, known) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!(
                "the Compose specification allows here: {}",
                known.join(", ")
            ),
        };
        self.error(
            Code::UnknownKey,
            key.span,
            format!("`{word}` is not a Compose key {place}"),
            "unknown key",
            &hint,
        );
    }

    fn wrong_type(&mut self, node: &Located<Tree>, what: &str) {
        self.error(
            Code::WrongType,
            node.span,
            format!("expected {what}"),
            "wrong type",
            "see the Compose specification for this key",
        );
    }

    fn string(&mut self, node: &Located<Tree>, what: &str) -> Option<String> {
        match &node.value {
            Tree::Str(s) => Some(s.clone()),
            Tree::Int(i) => Some(i.to_string()),
            _ => {
                self.wrong_type(node, what);
                None
            }
        }
    }

    fn boolean(&mut self, node: &Located<Tree>) -> Option<bool> {
        match &node.value {
            Tree::Bool(b) => Some(*b),
            Tree::Str(s) if s == "true" || s == "false" => Some(s == "true"),
            _ => {
                self.wrong_type(node, "true or false");
                None
            }
        }
    }

    fn map<'t>(&mut self, node: &'t Located<Tree>, what: &str) -> Option<&'t Map> {
        match &node.value {
            Tree::Map(m) => Some(m),
            Tree::Null => Some(&[]),
            _ => {
                self.wrong_type(node, what);
                None
            }
        }
    }

    /// The whole file: its networks and services as the engine's. `None` when it is not a
    /// Compose file at all or names no usable project.
    fn project(&mut self, folder: &str, engine: &DockerEngineSpec) -> Option<Project> {
        let text = self.source.text().to_owned();
        let options = crate::format::yaml::parse_options(text.len());
        let tree: Located<Tree> = match serde_saphyr::from_str_with_options(&text, options) {
            Ok(tree) => tree,
            Err(e) => {
                let d = crate::format::yaml::from_saphyr_error(&self.source, &e, Code::YamlSyntax);
                self.report(d);
                return None;
            }
        };
        let before = self.out.len();
        let Tree::Map(top) = &tree.value else {
            self.wrong_type(&tree, "a Compose file: a map with `services:`");
            return None;
        };
        let (mut name, mut services, mut networks) = (None, None, None);
        for (key, value) in top {
            match key.value.0.as_str() {
                "name" => {
                    name = self
                        .string(value, "the project name")
                        .map(|n| (n, value.span))
                }
                "services" => services = Some(value),
                "networks" => networks = Some(value),
                k if k.starts_with("x-") => {}
                k if IGNORED_TOP.contains(&k) => self.ignored(key, ""),
                "include" => self.error(
                    Code::Unsupported,
                    key.span,
                    "Compose `include` is not followed".into(),
                    "not supported",
                    "list each included file under the engine's `compose:` instead",
                ),
                _ => {
                    let mut known = vec!["name", "services", "networks", "include"];
                    known.extend(IGNORED_TOP);
                    self.unknown(key, "at the top of a Compose file", &known);
                }
            }
        }
        let project = match &name {
            Some((n, _)) => normalize_project_name(n),
            None => normalize_project_name(folder),
        };
        if project.is_empty() {
            let span = name.as_ref().map_or(tree.span, |(_, s)| *s);
            self.error(Code::BadValue, span, "the Compose project name is empty once normalised (lower case letters, digits, `_` and `-`)".into(), "no project name", "give the file a `name:` such as `app`");
            return None;
        }
        let declared = match networks {
            Some(n) => self.networks(n, &project),
            None => Vec::new(),
        };
        let mut read = match services {
            Some(s) => self.services(s),
            None => Vec::new(),
        };
        if self.out[before..].iter().any(Diagnostic::is_error) {
            return None;
        }
        self.extensions(&text, &mut read);
        let order = self.start_order(&read)?;
        if order.is_empty() {
            self.report(Diagnostic::warning(Code::MissingKey, tree.span, "the Compose file starts no service (`docker compose up` says: no service selected)").label("nothing to start").hint("list the services under `services:`"));
        }
        if self.out[before..].iter().any(Diagnostic::is_error) {
            return None;
        }
        self.assemble(&project, &declared, &read, &order, engine)
    }

    /// Top-level `networks:`.
    fn networks(&mut self, node: &Located<Tree>, project: &str) -> Vec<Network> {
        let Some(map) = self.map(node, "a map of networks") else {
            return Vec::new();
        };
        let mut networks = Vec::new();
        for (key, value) in map {
            let mut net = Network {
                key: key.value.0.clone(),
                span: key.span,
                name: String::new(),
                external: false,
                internal: false,
                icc: None,
                subnet: None,
            };
            let mut name = None;
            if let Some(body) = self.map(value, "a network: a map of its settings") {
                for (k, v) in body {
                    self.network_key(k, v, &mut net, &mut name);
                }
            }
            net.name = match name {
                Some(n) => n,
                None if net.external => net.key.clone(),
                None => format!("{project}_{}", net.key),
            };
            networks.push(net);
        }
        networks
    }

    fn network_key(
        &mut self,
        k: &Located<Key>,
        v: &Located<Tree>,
        net: &mut Network,
        name: &mut Option<String>,
    ) {
        let unsupported = |r: &mut Self, what: &str, hint: &str| {
            r.error(
                Code::Unsupported,
                v.span,
                format!("network `{}`: {what}", net.key),
                "not supported",
                hint,
            );
        };
        match k.value.0.as_str() {
            "name" => *name = self.string(v, "the network's Docker name"),
            "external" => match &v.value {
                Tree::Map(_) => unsupported(
                    self,
                    "the old `external: { name: … }` form",
                    "write `external: true` and `name:` beside it",
                ),
                _ => net.external = self.boolean(v).unwrap_or(false),
            },
            "internal" => net.internal = self.boolean(v).unwrap_or(false),
            "driver" => {
                if let Some(d) = self.string(v, "a driver name")
                    && d != "bridge"
                {
                    unsupported(
                        self,
                        &format!("driver `{d}` is not modelled"),
                        "reachlab models the `bridge` driver only; remove `driver:` or describe the network as segments",
                    );
                }
            }
            "driver_opts" => {
                if let Some(opts) = self.map(v, "a map of driver options") {
                    for (ok, ov) in opts {
                        match ok.value.0.as_str() {
                            "com.docker.network.bridge.enable_icc" => net.icc = self.boolean(ov),
                            "com.docker.network.driver.mtu" => self.ignored(ok, "networks.*.driver_opts."),
                            other => self.error(Code::Unsupported, ok.span, format!("network `{}`: driver option `{other}` is not modelled", net.key), "not supported", "reachlab follows `com.docker.network.bridge.enable_icc` only; remove this option"),
                        }
                    }
                }
            }
            "ipam" => self.ipam(v, net),
            "enable_ipv6" => {
                if self.boolean(v) == Some(true) {
                    unsupported(self, "IPv6 is not modelled", "remove `enable_ipv6`");
                }
            }
            "enable_ipv4" => {
                if self.boolean(v) == Some(false) {
                    unsupported(
                        self,
                        "an IPv6-only network is not modelled",
                        "remove `enable_ipv4: false`",
                    );
                }
            }
            "attachable" | "labels" => self.ignored(k, "networks.*."),
            x if x.starts_with("x-") => {}
            _ => self.unknown(
                k,
                "in a network",
                &[
                    "name",
                    "external",
                    "internal",
                    "driver",
                    "driver_opts",
                    "ipam",
                    "enable_ipv6",
                    "enable_ipv4",
                    "attachable",
                    "labels",
                ],
            ),
        }
    }

    /// `ipam:`: the default driver and at most one IPv4 `subnet`.
    fn ipam(&mut self, v: &Located<Tree>, net: &mut Network) {
        let Some(ipam) = self.map(v, "a map (`driver`, `config`)") else {
            return;
        };
        for (k, v) in ipam {
            match k.value.0.as_str() {
                "driver" => {
                    if self
                        .string(v, "an IPAM driver")
                        .is_some_and(|d| d != "default")
                    {
                        self.error(
                            Code::Unsupported,
                            v.span,
                            format!(
                                "network `{}`: only Docker's default IPAM driver is modelled",
                                net.key
                            ),
                            "not supported",
                            "remove `ipam.driver`",
                        );
                    }
                }
                "config" => {
                    let Tree::Seq(items) = &v.value else {
                        self.wrong_type(v, "a list of `{ subnet: … }`");
                        continue;
                    };
                    for item in items {
                        let Some(entries) = self.map(item, "a map with `subnet:`") else {
                            continue;
                        };
                        for (ck, cv) in entries {
                            match ck.value.0.as_str() {
                                "subnet" => self.subnet(cv, net),
                                "gateway" | "ip_range" | "aux_addresses" => self.error(Code::Unsupported, ck.span, format!("network `{}`: `ipam.config.{}` is not modelled (the gateway is the subnet's first address)", net.key, ck.value.0), "not supported", "remove it, or give the network a plain `subnet`"),
                                _ => self.unknown(ck, "in `ipam.config`", &["subnet", "gateway", "ip_range", "aux_addresses"]),
                            }
                        }
                    }
                }
                "options" => self.error(
                    Code::Unsupported,
                    k.span,
                    format!("network `{}`: IPAM options are not modelled", net.key),
                    "not supported",
                    "remove `ipam.options`",
                ),
                x if x.starts_with("x-") => {}
                _ => self.unknown(k, "in `ipam`", &["driver", "config", "options"]),
            }
        }
    }

    fn subnet(&mut self, v: &Located<Tree>, net: &mut Network) {
        let Some(text) = self.string(v, "a subnet such as `172.30.0.0/24`") else {
            return;
        };
        if text.contains(':') {
            self.error(
                Code::Unsupported,
                v.span,
                format!(
                    "network `{}`: IPv6 subnet `{text}` is not modelled",
                    net.key
                ),
                "IPv6",
                "remove the IPv6 subnet",
            );
            return;
        }
        let Ok(subnet) = text.parse::<Ipv4Net>() else {
            self.error(
                Code::BadAddress,
                v.span,
                format!("`{text}` is not a subnet"),
                "expected ADDRESS/PREFIX",
                "write it as `172.30.0.0/24`",
            );
            return;
        };
        if subnet.trunc() != subnet {
            self.error(
                Code::HostBitsSet,
                v.span,
                format!("subnet `{text}` has host bits set"),
                "host bits set",
                &format!("did you mean `{}`?", subnet.trunc()),
            );
        } else if net.subnet.is_some() {
            self.error(
                Code::Unsupported,
                v.span,
                format!(
                    "network `{}`: a second IPv4 subnet is not modelled",
                    net.key
                ),
                "second subnet",
                "give the network one subnet",
            );
        } else {
            net.subnet = Some(subnet);
        }
    }

    /// `services:`, in file order.
    fn services(&mut self, node: &Located<Tree>) -> Vec<Service> {
        let Some(map) = self.map(node, "a map of services") else {
            return Vec::new();
        };
        map.iter()
            .map(|(key, value)| self.service(key, value))
            .collect()
    }

    fn service(&mut self, key: &Located<Key>, value: &Located<Tree>) -> Service {
        let mut service = Service {
            key: Located::at(key.value.0.clone(), key.span),
            ..Service::default()
        };
        let Some(body) = self.map(value, "a service: a map of its settings") else {
            return service;
        };
        let mut networks_written = None;
        for (k, v) in body {
            match k.value.0.as_str() {
                "container_name" => service.container_name = self.string(v, "a container name"),
                "networks" => {
                    networks_written = Some(k.span);
                    service.networks = self.service_networks(v);
                }
                "network_mode" => {
                    if let Some(mode) = self.string(v, "`host`, `none` or `bridge`") {
                        if mode.starts_with("service:") || mode.starts_with("container:") {
                            self.error(Code::Unsupported, v.span, format!("service `{}`: `network_mode: {mode}` (sharing another container's network) is not modelled", service.key.value), "not supported", "put the service on the same network as the other one instead");
                        } else {
                            service.mode = Some(mode);
                        }
                    }
                }
                "ports" => service.ports = self.ports(v),
                "expose" => {}
                "depends_on" => service.depends_on = self.depends_on(v),
                "profiles" => {
                    service.profiled = true;
                    self.report(Diagnostic::warning(Code::Unsupported, k.span, format!("service `{}` has `profiles:`: `docker compose up` does not start it unless a profile is chosen", service.key.value)).label("not started").hint("remove `profiles:` to have reachlab start the service"));
                }
                "scale" => {
                    if matches!(v.value, Tree::Int(n) if n > 1) {
                        self.error(Code::Unsupported, v.span, format!("service `{}`: several replicas are not modelled", service.key.value), "not supported", "write one service per container");
                    }
                }
                "x-reachlab" => self.extension(v, &mut service),
                "deploy" if replicas(v) > 1 => self.error(Code::Unsupported, v.span, format!("service `{}`: several replicas are not modelled", service.key.value), "not supported", "write one service per container"),
                "sysctls" if sysctls_touch_network(v) => self.error(Code::Unsupported, k.span, format!("service `{}`: `net.*` sysctls change the container's networking, which reachlab does not follow", service.key.value), "not supported", "remove the `net.*` sysctls"),
                x if x.starts_with("x-") => {}
                x if IGNORED_SERVICE.contains(&x) => self.ignored(k, "services.*."),
                x => match REFUSED_SERVICE.iter().find(|(r, _)| *r == x) {
                    Some((_, hint)) => self.error(Code::Unsupported, k.span, format!("service `{}`: `{x}` changes networking in a way reachlab does not follow", service.key.value), "not supported", hint),
                    None => {
                        let mut known: Vec<&str> = READ_SERVICE.to_vec();
                        known.extend(IGNORED_SERVICE);
                        known.extend(REFUSED_SERVICE.iter().map(|(r, _)| *r));
                        self.unknown(k, "in a service", &known);
                    }
                },
            }
        }
        if let (Some(mode), Some(span)) = (&service.mode, networks_written) {
            self.error(Code::BadValue, span, format!("service `{}` declares mutually exclusive `network_mode: {mode}` and `networks`", service.key.value), "both", "keep one of them");
        }
        service
    }

    /// A service's `networks:`, a list of keys or a map of key to settings.
    fn service_networks(&mut self, v: &Located<Tree>) -> Vec<Attach> {
        match &v.value {
            Tree::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    self.string(i, "a network key").map(|k| Attach {
                        key: Located::at(k, i.span),
                        address: None,
                        priority: 0,
                    })
                })
                .collect(),
            Tree::Map(entries) => entries.iter().map(|(k, s)| self.attachment(k, s)).collect(),
            _ => {
                self.wrong_type(v, "a list of networks or a map of network settings");
                Vec::new()
            }
        }
    }

    fn attachment(&mut self, key: &Located<Key>, settings: &Located<Tree>) -> Attach {
        let mut attach = Attach {
            key: Located::at(key.value.0.clone(), key.span),
            address: None,
            priority: 0,
        };
        let Some(body) = self.map(settings, "the service's settings on this network") else {
            return attach;
        };
        for (k, v) in body {
            match k.value.0.as_str() {
                "ipv4_address" => {
                    if let Some(text) = self.string(v, "an IPv4 address") {
                        match text.parse::<Ipv4Addr>() {
                            Ok(a) => attach.address = Some(a),
                            Err(_) => self.error(
                                Code::BadAddress,
                                v.span,
                                format!("`{text}` is not an IPv4 address"),
                                "expected an address",
                                "write it as `172.30.0.10`",
                            ),
                        }
                    }
                }
                "priority" => match v.value {
                    Tree::Int(p) => attach.priority = p,
                    _ => self.wrong_type(v, "a number"),
                },
                "gw_priority" => {
                    if !matches!(v.value, Tree::Int(0)) {
                        self.error(Code::Unsupported, k.span, "`gw_priority` (Docker 28's gateway choice) is not modelled".into(), "not supported", "remove it: reachlab picks the gateway network by name (docs/platform-semantics.md, \"Docker\")");
                    }
                }
                "aliases" | "mac_address" => self.ignored(k, "services.*.networks.*."),
                "ipv6_address" | "link_local_ips" | "interface_name" | "driver_opts" => self.error(
                    Code::Unsupported,
                    k.span,
                    format!("`{}` on a service's network is not modelled", k.value.0),
                    "not supported",
                    "remove it",
                ),
                x if x.starts_with("x-") => {}
                _ => self.unknown(
                    k,
                    "in a service's network",
                    &[
                        "ipv4_address",
                        "priority",
                        "gw_priority",
                        "aliases",
                        "mac_address",
                        "ipv6_address",
                        "link_local_ips",
                        "interface_name",
                        "driver_opts",
                    ],
                ),
            }
        }
        attach
    }

    /// `ports:`, short or long syntax, as `-p` values (checked here, placed later).
    fn ports(&mut self, v: &Located<Tree>) -> Vec<String> {
        let Tree::Seq(items) = &v.value else {
            self.wrong_type(v, "a list of ports");
            return Vec::new();
        };
        let mut ports = Vec::new();
        for item in items {
            let text = match &item.value {
                Tree::Int(n) => Some(n.to_string()),
                Tree::Str(s) => Some(s.clone()),
                Tree::Map(m) => self.long_port(m),
                _ => {
                    self.wrong_type(item, "a port (`8080:80`) or a map with `target:`");
                    None
                }
            };
            let Some(text) = text else { continue };
            match parse_publish(&text) {
                Ok(_) => ports.push(text),
                Err(hint) => self.error(
                    Code::BadValue,
                    item.span,
                    format!("`{text}` is not a port mapping reachlab can follow"),
                    "bad port",
                    hint,
                ),
            }
        }
        ports
    }

    /// A long-syntax port as the `-p` text it means.
    fn long_port(&mut self, m: &Map) -> Option<String> {
        let (mut target, mut published, mut ip, mut proto) = (None, None, None, None);
        for (k, v) in m {
            match k.value.0.as_str() {
                "target" => target = self.string(v, "the container's port"),
                "published" => published = self.string(v, "the host port"),
                "host_ip" => ip = self.string(v, "the host address"),
                "protocol" => proto = self.string(v, "`tcp` or `udp`"),
                "mode" | "name" | "app_protocol" => self.ignored(k, "services.*.ports."),
                x if x.starts_with("x-") => {}
                _ => self.unknown(
                    k,
                    "in a port",
                    &[
                        "target",
                        "published",
                        "host_ip",
                        "protocol",
                        "mode",
                        "name",
                        "app_protocol",
                    ],
                ),
            }
        }
        let target = target?;
        let mut text = match (ip, published) {
            (Some(ip), Some(p)) => format!("{ip}:{p}:{target}"),
            (None, Some(p)) => format!("{p}:{target}"),
            (_, None) => target,
        };
        if let Some(p) = proto {
            text = format!("{text}/{p}");
        }
        Some(text)
    }

    fn depends_on(&mut self, v: &Located<Tree>) -> Vec<Located<String>> {
        match &v.value {
            Tree::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    self.string(i, "a service name")
                        .map(|s| Located::at(s, i.span))
                })
                .collect(),
            // `condition`, `restart` and `required` change timing, not networking.
            Tree::Map(entries) => entries
                .iter()
                .map(|(k, _)| Located::at(k.value.0.clone(), k.span))
                .collect(),
            _ => {
                self.wrong_type(v, "a list of services or a map of service to condition");
                Vec::new()
            }
        }
    }

    /// `x-reachlab:` checked as written: `listen` entries as the topology's, `dns` names.
    fn extension(&mut self, v: &Located<Tree>, service: &mut Service) {
        let Some(body) = self.map(v, "a map with `listen:` and `dns:`") else {
            return;
        };
        for (k, v) in body {
            match k.value.0.as_str() {
                "listen" => {
                    let Tree::Seq(items) = &v.value else {
                        self.wrong_type(v, "a list of listeners, as under a node's `listen:`");
                        continue;
                    };
                    let mut checker = Checker::new();
                    for item in items {
                        checker.check_definition(item, "ListenSpec");
                    }
                    for d in checker.diagnostics {
                        self.report(d);
                    }
                }
                "dns" => match &v.value {
                    Tree::Seq(items) => {
                        service.dns = items
                            .iter()
                            .filter_map(|i| self.string(i, "a DNS name"))
                            .collect();
                    }
                    _ => self.wrong_type(v, "a list of DNS names"),
                },
                _ => self.unknown(k, "in `x-reachlab`", &["listen", "dns"]),
            }
        }
    }

    /// The listeners of `x-reachlab`, read typed from the checked text.
    fn extensions(&mut self, text: &str, services: &mut [Service]) {
        let options = crate::format::yaml::parse_options(text.len());
        let view: FileView = match serde_saphyr::from_str_with_options(text, options) {
            Ok(view) => view,
            Err(e) => {
                let d = crate::format::yaml::from_saphyr_error(&self.source, &e, Code::WrongType);
                self.report(d);
                return;
            }
        };
        let Some(mut views) = view.services else {
            return;
        };
        for service in services {
            if let Some(Some(ServiceView {
                reachlab: Some(ext),
            })) = views.remove(&service.key.value)
            {
                let entry = self.entry;
                service.listen = ext.listen.into_iter().map(|l| relocate(l, entry)).collect();
            }
        }
    }

    /// The order `docker compose up` starts the services in: by dependency level (a service
    /// after all it depends on), file order within a level; services with `profiles:` are not
    /// started. `None` on a cycle or an
    /// unknown dependency (reported).
    fn start_order(&mut self, services: &[Service]) -> Option<Vec<usize>> {
        let index = |name: &str| services.iter().position(|s| s.key.value == name);
        let mut ok = true;
        for s in services {
            for d in &s.depends_on {
                if index(&d.value).is_none() {
                    self.error(
                        Code::UnknownReference,
                        d.span,
                        format!(
                            "service \"{}\" depends on undefined service \"{}\"",
                            s.key.value, d.value
                        ),
                        "unknown service",
                        "name a service of this file",
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        // Compose starts every service whose dependencies have started, concurrently: a
        // service's level is one more than its deepest dependency's.
        let mut level: Vec<Option<usize>> = vec![None; services.len()];
        for _ in 0..services.len() {
            for (i, s) in services.iter().enumerate() {
                let deps: Option<Vec<usize>> = s
                    .depends_on
                    .iter()
                    .map(|d| index(&d.value).and_then(|j| level[j]))
                    .collect();
                if let Some(deps) = deps {
                    level[i] = Some(deps.into_iter().max().map_or(0, |m| m + 1));
                }
            }
        }
        if let Some(stuck) = level.iter().position(Option::is_none) {
            let s = &services[stuck];
            self.error(
                Code::BadValue,
                s.key.span,
                format!(
                    "dependency cycle detected: service `{}` waits for a service that waits for it",
                    s.key.value
                ),
                "cycle",
                "remove one `depends_on` entry of the cycle",
            );
            return None;
        }
        let mut order: Vec<usize> = (0..services.len()).collect();
        order.sort_by_key(|&i| (level[i], i));
        order.retain(|&i| !services[i].profiled);
        Some(order)
    }

    /// The engine's networks and containers for the services in start `order`.
    fn assemble(
        &mut self,
        project: &str,
        declared: &[Network],
        services: &[Service],
        order: &[usize],
        engine: &DockerEngineSpec,
    ) -> Option<Project> {
        let entry = self.entry;
        let at = |s: &str| Located::at(s.to_owned(), entry);
        let implicit = Network {
            key: "default".into(),
            span: Span::default(),
            name: format!("{project}_default"),
            external: false,
            internal: false,
            icc: None,
            subnet: None,
        };
        let find = |key: &str| {
            declared
                .iter()
                .find(|n| n.key == key)
                .or((key == "default").then_some(&implicit))
        };
        let mut used: BTreeSet<&str> = BTreeSet::new();
        let mut out = Project::default();
        let mut ok = true;
        for &i in order {
            let s = &services[i];
            let mut ct = ContainerSpec {
                name: at(&s
                    .container_name
                    .clone()
                    .unwrap_or_else(|| format!("{project}-{}-1", s.key.value))),
                publish: s.ports.iter().map(|p| at(p)).collect(),
                listen: s.listen.clone(),
                dns: s.dns.iter().map(|d| at(d)).collect(),
                ..ContainerSpec::default()
            };
            if let Some(mode) = &s.mode {
                ct.network = Some(at(mode));
                out.containers.push(ct);
                continue;
            }
            let mut attachments: Vec<&Attach> = s.networks.iter().collect();
            let default = Attach {
                key: Located::at("default".into(), s.key.span),
                address: None,
                priority: 0,
            };
            if attachments.is_empty() {
                attachments.push(&default);
            }
            // compose-go `NetworksByPriority`: priority descending, then the key.
            attachments.sort_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then(a.key.value.cmp(&b.key.value))
            });
            for a in attachments {
                let Some(net) = find(&a.key.value) else {
                    let keys: Vec<&str> = declared.iter().map(|n| n.key.as_str()).collect();
                    let hint = match crate::format::closest_name(&a.key.value, &keys) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => "declare it under the top-level `networks:`".to_owned(),
                    };
                    self.error(
                        Code::UnknownReference,
                        a.key.span,
                        format!(
                            "service \"{}\" refers to undefined network {}",
                            s.key.value, a.key.value
                        ),
                        "undefined network",
                        &hint,
                    );
                    ok = false;
                    continue;
                };
                used.insert(net.key.as_str());
                ct.networks.push(at(&net.name));
                if let Some(addr) = a.address {
                    ct.addresses.insert(net.name.clone(), at(&addr.to_string()));
                }
            }
            out.containers.push(ct);
        }
        let mut keys: Vec<&Network> = declared
            .iter()
            .chain(std::iter::once(&implicit))
            .filter(|n| used.contains(n.key.as_str()))
            .collect();
        // Compose plans the networks it creates in key order (`reconcileNetworks`).
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        keys.dedup_by(|a, b| a.key == b.key);
        for net in keys {
            if net.external {
                let exists = net.name == "bridge"
                    || engine.networks.iter().any(|n| n.name.value == net.name);
                if !exists {
                    self.error(
                        Code::UnknownReference,
                        net.span,
                        format!(
                            "network {} declared as external, but could not be found",
                            net.name
                        ),
                        "not on this engine",
                        "declare it under the engine's `networks:` (or in an earlier Compose file)",
                    );
                    ok = false;
                }
                continue;
            }
            out.networks.push(DockerNetworkSpec {
                name: at(&net.name),
                subnet: net.subnet.map(|s| at(&s.to_string())),
                internal: net.internal.then(|| Located::at(true, entry)),
                icc: net.icc.map(|i| Located::at(i, entry)),
            });
        }
        ok.then_some(out)
    }
}

/// `deploy.replicas` (1 when absent).
fn replicas(v: &Located<Tree>) -> i128 {
    let Tree::Map(m) = &v.value else { return 1 };
    m.iter()
        .find(|(k, _)| k.value.0 == "replicas")
        .and_then(|(_, r)| match r.value {
            Tree::Int(n) => Some(n),
            _ => None,
        })
        .unwrap_or(1)
}

/// Whether `sysctls:` sets a `net.` key (a list of `KEY=VALUE` or a map).
fn sysctls_touch_network(v: &Located<Tree>) -> bool {
    match &v.value {
        Tree::Map(m) => m.iter().any(|(k, _)| k.value.0.starts_with("net.")),
        Tree::Seq(items) => items
            .iter()
            .any(|i| matches!(&i.value, Tree::Str(s) if s.starts_with("net."))),
        _ => false,
    }
}

/// `l` with every place set to `span`: a listener read from a Compose file stands, in the
/// topology, at the engine's `compose:` entry.
fn relocate(l: ListenSpec, span: Span) -> ListenSpec {
    let at = |v| Located::at(v, span);
    let ListenSpec {
        port,
        proto,
        address,
        udp_reply_from,
        ssh,
        http,
        banner,
    } = l;
    ListenSpec {
        port: at(port.value),
        proto: proto.map(|p| Located::at(p.value, span)),
        address: address.map(|a| Located::at(a.value, span)),
        udp_reply_from: udp_reply_from.map(|u| Located::at(u.value, span)),
        ssh: ssh.map(|s| Located::at(s.value, span)),
        http: http.map(|h| {
            let HttpSpec {
                status,
                body,
                content_type,
                requires,
                routes,
            } = h.value;
            Located::at(
                HttpSpec {
                    status: status.map(|s| Located::at(s.value, span)),
                    body,
                    content_type,
                    requires: requires
                        .into_iter()
                        .map(|r| Located::at(r.value, span))
                        .collect(),
                    routes: routes
                        .into_iter()
                        .map(|r| crate::format::file::HttpRouteSpec {
                            path: Located::at(r.path.value, span),
                            upstreams: r
                                .upstreams
                                .into_iter()
                                .map(|u| Located::at(u.value, span))
                                .collect(),
                            ..r
                        })
                        .collect(),
                },
                span,
            )
        }),
        banner: banner.map(|b| Located::at(b.value, span)),
    }
}

#[cfg(test)]
mod tests {
    //! Expected values follow docs/platform-semantics.md, "Docker", **Compose** (compose-go
    //! `NormalizeProjectName`, `setNameFromKey`, the implicit `default` network,
    //! `NetworksByPriority`; compose `getDefaultContainerName`, `reconcileNetworks`).
    use super::*;
    use crate::format::Severity;

    /// A Compose file `text` written at `folder/compose.yaml` in a directory of its own,
    /// brought up on an engine that already has `existing` networks.
    fn up_in(folder: &str, text: &str, existing: &[&str]) -> (DockerEngineSpec, Vec<Diagnostic>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("reachlab-compose-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join(folder)).expect("temp dir");
        std::fs::write(dir.join(folder).join("compose.yaml"), text).expect("write");
        let engine = DockerEngineSpec {
            host: Located::new("vm".into()),
            networks: existing
                .iter()
                .map(|n| DockerNetworkSpec {
                    name: Located::new((*n).to_owned()),
                    ..DockerNetworkSpec::default()
                })
                .collect(),
            compose: vec![Located::new(format!("{folder}/compose.yaml"))],
            ..DockerEngineSpec::default()
        };
        let mut out = Vec::new();
        let full = bring_up(&engine, &dir, &mut out);
        let _ = std::fs::remove_dir_all(&dir);
        (full, out)
    }

    fn up(text: &str) -> (DockerEngineSpec, Vec<Diagnostic>) {
        up_in("app", text, &[])
    }

    fn names(e: &DockerEngineSpec) -> (Vec<String>, Vec<String>) {
        (
            e.networks.iter().map(|n| n.name.value.clone()).collect(),
            e.containers.iter().map(|c| c.name.value.clone()).collect(),
        )
    }

    fn errors(out: &[Diagnostic]) -> Vec<&str> {
        out.iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message.as_str())
            .collect()
    }

    fn in_compose_file(out: &[Diagnostic]) -> bool {
        out.iter().all(|d| {
            d.file
                .as_ref()
                .is_some_and(|f| f.name().ends_with("compose.yaml"))
        })
    }

    #[test]
    fn project_name_is_the_normalised_folder_name() {
        let (e, out) = up_in("My App.v2", "services:\n  web: {}\n", &[]);
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(
            names(&e),
            (vec!["myappv2_default".into()], vec!["myappv2-web-1".into()])
        );
    }

    #[test]
    fn name_key_sets_the_project_name() {
        let (e, _) = up("name: Shop\nservices:\n  web: {}\n");
        assert_eq!(
            names(&e),
            (vec!["shop_default".into()], vec!["shop-web-1".into()])
        );
    }

    #[test]
    fn container_name_replaces_the_generated_name() {
        let (e, _) = up("services:\n  db: { container_name: pg }\n");
        assert_eq!(names(&e).1, ["pg"]);
    }

    #[test]
    fn networks_are_project_scoped_unless_named_and_only_used_ones_are_created() {
        let text = "services:\n  web: { networks: [b, a] }\nnetworks:\n  a: { name: custom }\n  b: {}\n  unused: {}\n";
        let (e, out) = up(text);
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(names(&e).0, ["custom", "app_b"]);
        let ct = &e.containers[0];
        let nets: Vec<&str> = ct.networks.iter().map(|n| n.value.as_str()).collect();
        assert_eq!(nets, ["custom", "app_b"]);
    }

    #[test]
    fn networks_attach_by_priority_then_key() {
        let text = "services:\n  web:\n    networks:\n      z: { priority: 10 }\n      b:\n      a:\nnetworks: { a: {}, b: {}, z: {} }\n";
        let (e, _) = up(text);
        let nets: Vec<&str> = e.containers[0]
            .networks
            .iter()
            .map(|n| n.value.as_str())
            .collect();
        assert_eq!(nets, ["app_z", "app_a", "app_b"]);
    }

    #[test]
    fn external_network_is_used_by_its_name_and_must_exist() {
        let text = "services:\n  web: { networks: [ext] }\nnetworks:\n  ext: { external: true, name: shared }\n";
        let (e, out) = up_in("app", text, &["shared"]);
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(names(&e).0, ["shared"]);
        assert_eq!(e.containers[0].networks[0].value, "shared");
        let (_, out) = up(text);
        assert!(
            errors(&out)
                .iter()
                .any(|m| m.contains("declared as external, but could not be found")),
            "{out:?}"
        );
        assert!(in_compose_file(&out));
    }

    #[test]
    fn services_start_in_dependency_then_file_order() {
        let text = "services:\n  proxy: { depends_on: [web] }\n  web: { depends_on: { db: { condition: service_healthy } } }\n  cache: {}\n  db: {}\n";
        let (e, _) = up(text);
        assert_eq!(
            names(&e).1,
            ["app-cache-1", "app-db-1", "app-web-1", "app-proxy-1"]
        );
        let (e, _) = up("services:\n  a: { depends_on: [b] }\n  b: {}\n  c: {}\n");
        assert_eq!(names(&e).1, ["app-b-1", "app-c-1", "app-a-1"]);
    }

    #[test]
    fn dependency_cycles_and_unknown_dependencies_are_errors() {
        let (_, out) = up("services:\n  a: { depends_on: [b] }\n  b: { depends_on: [a] }\n");
        assert!(
            errors(&out).iter().any(|m| m.contains("dependency cycle")),
            "{out:?}"
        );
        let (_, out) = up("services:\n  a: { depends_on: [nope] }\n");
        assert!(
            errors(&out)
                .iter()
                .any(|m| m.contains("depends on undefined service")),
            "{out:?}"
        );
        assert!(in_compose_file(&out));
    }

    #[test]
    fn ipv4_address_is_the_address_on_that_network() {
        let text = "services:\n  db:\n    networks:\n      data: { ipv4_address: 172.30.3.10 }\nnetworks:\n  data: { ipam: { config: [{ subnet: 172.30.3.0/24 }] } }\n";
        let (e, out) = up(text);
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(
            e.networks[0].subnet.as_ref().map(|s| s.value.as_str()),
            Some("172.30.3.0/24")
        );
        assert_eq!(
            e.containers[0]
                .addresses
                .get("app_data")
                .map(|a| a.value.as_str()),
            Some("172.30.3.10")
        );
    }

    #[test]
    fn ports_short_and_long_syntax_become_publish_entries() {
        let text = "services:\n  web:\n    ports:\n      - \"8080:80\"\n      - { target: 53, published: 5353, host_ip: 127.0.0.1, protocol: udp }\n";
        let (e, out) = up(text);
        assert_eq!(errors(&out), Vec::<&str>::new());
        let p: Vec<&str> = e.containers[0]
            .publish
            .iter()
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(p, ["8080:80", "127.0.0.1:5353:53/udp"]);
    }

    #[test]
    fn a_port_without_host_port_is_an_error_in_the_compose_file() {
        let (_, out) = up("services:\n  web:\n    ports: [80]\n");
        assert!(
            errors(&out)
                .iter()
                .any(|m| m.contains("`80` is not a port mapping")),
            "{out:?}"
        );
        assert!(in_compose_file(&out));
        assert_eq!(out[0].span.map(|s| s.line), Some(3));
    }

    #[test]
    fn ignored_keys_warn_once_per_file() {
        let (e, out) = up(
            "services:\n  a: { image: x, environment: [A=1] }\n  b: { image: y }\nvolumes: { v: {} }\n",
        );
        let warned: Vec<&str> = out
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(warned.len(), 3, "{warned:?}");
        assert_eq!(
            warned
                .iter()
                .filter(|m| m.contains("`services.*.image`"))
                .count(),
            1
        );
        assert_eq!(e.containers.len(), 2);
    }

    #[test]
    fn networking_keys_reachlab_cannot_follow_are_errors() {
        for text in [
            "services:\n  a: { extra_hosts: [\"h:1.2.3.4\"] }\n",
            "services:\n  a: { network_mode: \"service:b\" }\n  b: {}\n",
            "services:\n  a: {}\nnetworks:\n  default: { driver: macvlan }\n",
            "services:\n  a: {}\nnetworks:\n  default: { enable_ipv6: true }\n",
            "services:\n  a: { networks: { n: { ipv6_address: \"fd00::2\" } } }\nnetworks: { n: {} }\n",
            "services:\n  a: { sysctls: { net.ipv4.ip_forward: 1 } }\n",
            "services:\n  a: { network_mode: host, networks: [n] }\nnetworks: { n: {} }\n",
        ] {
            let (e, out) = up(text);
            assert!(!errors(&out).is_empty(), "{text}: {out:?}");
            assert!(in_compose_file(&out), "{text}");
            assert!(e.containers.is_empty(), "{text}");
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_with_the_closest_key() {
        let (_, out) = up("services:\n  a: { netwroks: [n] }\n");
        let d = out
            .iter()
            .find(|d| d.severity == Severity::Error)
            .expect("an error");
        assert!(
            d.message.contains("`netwroks` is not a Compose key"),
            "{d:?}"
        );
        assert!(
            format!("{d:?}").contains("did you mean `networks`"),
            "{d:?}"
        );
    }

    #[test]
    fn network_mode_sets_the_container_network() {
        let (e, _) = up("services:\n  a: { network_mode: host }\n  b: { network_mode: none }\n");
        let modes: Vec<Option<&str>> = e
            .containers
            .iter()
            .map(|c| c.network.as_ref().map(|n| n.value.as_str()))
            .collect();
        assert_eq!(modes, [Some("host"), Some("none")]);
        assert_eq!(names(&e).0, Vec::<String>::new());
    }

    #[test]
    fn driver_opts_icc_and_internal_map_onto_the_network() {
        let text = "services:\n  a: {}\nnetworks:\n  default:\n    internal: true\n    driver_opts: { com.docker.network.bridge.enable_icc: \"false\" }\n";
        let (e, out) = up(text);
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(e.networks[0].internal.as_ref().map(|i| i.value), Some(true));
        assert_eq!(e.networks[0].icc.as_ref().map(|i| i.value), Some(false));
    }

    #[test]
    fn x_reachlab_says_what_the_service_answers() {
        let (e, out) = up(
            "services:\n  web:\n    x-reachlab: { listen: [{ port: 80, http: { body: hi } }], dns: [shop.example] }\n",
        );
        assert_eq!(errors(&out), Vec::<&str>::new());
        assert_eq!(e.containers[0].listen[0].port.value, 80);
        assert_eq!(e.containers[0].dns[0].value, "shop.example");
        let (_, out) =
            up("services:\n  web:\n    x-reachlab: { listen: [{ port: 80, protocl: udp }] }\n");
        assert!(!errors(&out).is_empty(), "{out:?}");
        assert!(in_compose_file(&out));
    }

    #[test]
    fn profiled_services_are_not_started() {
        let (e, out) = up("services:\n  a: {}\n  debug: { profiles: [debug] }\n");
        assert_eq!(names(&e).1, ["app-a-1"]);
        assert!(
            out.iter()
                .any(|d| d.severity == Severity::Warning && d.message.contains("profiles"))
        );
    }

    #[test]
    fn compose_files_stay_inside_the_topology_folder() {
        let engine = DockerEngineSpec {
            host: Located::new("vm".into()),
            compose: vec![Located::new("../../etc/passwd".into())],
            ..DockerEngineSpec::default()
        };
        let mut out = Vec::new();
        let full = bring_up(&engine, &std::env::temp_dir(), &mut out);
        assert!(full.containers.is_empty());
        assert!(
            out.iter()
                .any(|d| d.message.contains("leads outside") || d.message.contains("cannot read")),
            "{out:?}"
        );
    }

    #[test]
    fn garbage_gives_diagnostics_not_panics() {
        for text in [
            "",
            ": : :",
            "[1, 2]",
            "services: 3",
            "services: { a: [1] }",
            "services: { a: { ports: 7, networks: 3, depends_on: 1, x-reachlab: [] } }",
            "services: { a: { ports: [{ published: 1 }, [], true] } }",
            "networks: { n: { ipam: { config: 7 } } }\nservices: { a: { networks: [n] } }",
            "networks: { n: { ipam: { config: [{ subnet: 10.0.0.1/8 }, { subnet: zz }] } } }",
            "services: { a: { networks: { n: 5 } } }",
            "\tservices:\n",
            "services:\n  a: { x-reachlab: { listen: [{ port: 99999999999999999999999 }] } }\n",
            "name: \"---\"\nservices: { a: {} }",
        ] {
            let (_, out) = up(text);
            assert!(!out.is_empty(), "no diagnostic for {text:?}");
        }
    }
}
