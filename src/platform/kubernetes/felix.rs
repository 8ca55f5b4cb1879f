//! Calico's felix on one node: the filter-table chains that enforce NetworkPolicy, written
//! with [`Tables`] as felix writes them in iptables mode (projectcalico/calico v3.27.0,
//! `felix/rules/static.go`, `dispatch.go`, `endpoints.go`, `policy.go`; chain names in
//! `rule_defs.go`). docs/platform-semantics.md, "Kubernetes", **NetworkPolicy**.
//!
//! - INPUT, FORWARD and OUTPUT jump to `cali-INPUT`, `cali-FORWARD`, `cali-OUTPUT` from their
//!   top; FORWARD ends with felix's "Policy explicitly accepted packet." ACCEPT of the accept
//!   mark (`StaticFilterForwardAppendRules`).
//! - `cali-FORWARD` clears felix's mark bits but the accept bit, then sends what comes from a
//!   pod's interface to `cali-from-wl-dispatch` and what goes to one to `cali-to-wl-dispatch`;
//!   those go (`-g`) to the pod's `cali-fw-…` (its egress policies) and `cali-tw-…` (its
//!   ingress policies).
//! - An endpoint chain accepts RELATED,ESTABLISHED, drops INVALID, clears the accept bit, and
//!   when policies apply to the pod in that direction: "Start of policies" clears the pass bit,
//!   each policy chain `cali-pi-…`/`cali-po-…` runs in turn (a policy that allows sets the
//!   accept bit 0x10000 and the endpoint chain RETURNs), and "Drop if no policies passed
//!   packet" drops the rest. Otherwise the namespace's profile (`kns.<ns>`, which allows
//!   everything) accepts.
//! - From a pod to its own node (`cali-INPUT` → `cali-wl-to-host`) the pod's egress policies
//!   apply, then felix accepts (DefaultEndpointToHostAction ACCEPT, as Calico's manifests set
//!   it). From the node to its own pods (`cali-OUTPUT`) felix RETURNs without policy: "We don't
//!   currently police host -> endpoint according to the endpoint's ingress policy"
//!   (`static.go`, `filterOutputChain`).
//! - Selectors are ipsets in felix; the model has none, so each selector is written as one
//!   rule per address of a pod it matches (`-s 10.244.1.5/32`), and a named port as one rule
//!   per pod address and port number it resolves to. felix's `-i cali+`/`-o cali+` wildcards
//!   are written as one rule per pod interface of the node, and its dispatch prefix tree as one
//!   flat list: the same packets match.
//! - Without any NetworkPolicy in the cluster only the entry chains are written: the endpoint
//!   chains would accept everything (the namespace profile allows all).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::network::{NodeId, calico_iface};
use super::policy::{self, Namespaces, Peer, PolicyPlan, Port, Protocol, Rule};
use super::schedule::Placed;
use crate::format::Span;
use crate::format::file::ProtoName;
use crate::platform::tables::{Table, Tables};

/// felix's mark bits (its defaults for `IptablesMarkMask` 0xffff0000): accept, pass, and the
/// two scratch bits of its match blocks.
const ACCEPT: u32 = 0x10000;
const PASS: u32 = 0x20000;
const SCRATCH0: u32 = 0x40000;
const SCRATCH1: u32 = 0x80000;
/// Every bit felix uses (`allCalicoMarkBits`).
const ALL_BITS: u32 = ACCEPT | PASS | SCRATCH0 | SCRATCH1;

/// The longest chain name felix writes (`iptables.MaxChainNameLength`).
const MAX_CHAIN: usize = 28;

/// The longest comment iptables keeps (`XT_MAX_COMMENT_LEN` less its NUL).
const MAX_COMMENT: usize = 255;

/// VXLAN's port, whose packets from workloads felix drops (`AllowVXLANPacketsFromWorkloads`
/// false by default).
const VXLAN_PORT: u16 = 4789;

const FORWARD: &str = "cali-FORWARD";
const INPUT: &str = "cali-INPUT";
const OUTPUT: &str = "cali-OUTPUT";
const FROM_DISPATCH: &str = "cali-from-wl-dispatch";
const TO_DISPATCH: &str = "cali-to-wl-dispatch";
const WL_TO_HOST: &str = "cali-wl-to-host";

/// What felix knows of the whole cluster: its policies, namespaces and placed pods.
pub(super) struct Cluster<'a> {
    policies: &'a [PolicyPlan],
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    placed: &'a [Placed<'a>],
}

impl<'a> Cluster<'a> {
    /// The cluster of `policies`, the Namespace objects `declared` and the `placed` pods.
    pub fn new(
        policies: &'a [PolicyPlan],
        declared: &[(String, BTreeMap<String, String>)],
        placed: &'a [Placed<'a>],
    ) -> Self {
        let used = placed
            .iter()
            .map(|p| p.pod.namespace.as_str())
            .chain(policies.iter().map(|p| p.namespace.as_str()));
        Self {
            policies,
            namespaces: policy::namespace_labels(declared, used),
            placed,
        }
    }

    /// The policies that apply to `pod` in `dir`, in felix's order (all Kubernetes policies
    /// have order 1000, so by name).
    fn applying(&self, pod: &Placed, dir: Dir) -> Vec<&'a PolicyPlan> {
        let mut found: Vec<&PolicyPlan> = self
            .policies
            .iter()
            .filter(|p| dir.rules(p).is_some() && p.selects(&pod.pod.namespace, &pod.pod.labels))
            .collect();
        found.sort_by_key(|p| p.calico_name());
        found
    }

    /// The pods a peer's selectors pick.
    fn peer_pods(&self, pods: &policy::Selector, namespaces: &Namespaces) -> Vec<&Placed<'a>> {
        self.placed
            .iter()
            .filter(|p| match namespaces {
                Namespaces::Own(ns) => p.pod.namespace == *ns,
                Namespaces::Matching(selector) => self
                    .namespaces
                    .get(&p.pod.namespace)
                    .is_some_and(|labels| selector.matches(labels)),
            })
            .filter(|p| pods.matches(&p.pod.labels))
            .collect()
    }
}

/// A direction of policy, from the pod's side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

impl Dir {
    fn rules(self, p: &PolicyPlan) -> Option<&Vec<Rule>> {
        match self {
            Dir::Ingress => p.ingress.as_ref(),
            Dir::Egress => p.egress.as_ref(),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Dir::Ingress => "ingress",
            Dir::Egress => "egress",
        }
    }

    /// The policy chain prefix (`PolicyInboundPfx`, `PolicyOutboundPfx`).
    fn policy_prefix(self) -> &'static str {
        match self {
            Dir::Ingress => "cali-pi-",
            Dir::Egress => "cali-po-",
        }
    }

    /// The profile chain prefix (`ProfileInboundPfx`, `ProfileOutboundPfx`).
    fn profile_prefix(self) -> &'static str {
        match self {
            Dir::Ingress => "cali-pri-",
            Dir::Egress => "cali-pro-",
        }
    }

    /// The endpoint chain prefix: to the workload (ingress), from it (egress).
    fn endpoint_prefix(self) -> &'static str {
        match self {
            Dir::Ingress => "cali-tw-",
            Dir::Egress => "cali-fw-",
        }
    }

    /// The address option of the peer: the source of ingress, the destination of egress.
    fn peer_option(self) -> &'static str {
        match self {
            Dir::Ingress => "-s",
            Dir::Egress => "-d",
        }
    }
}

/// Writes felix's filter chains for node `node` of the cluster into `t`, each rule placed at
/// `place`.
pub(super) fn felix(t: &mut Tables, node: NodeId, cluster: &Cluster, place: Span) {
    let mut w = Writer { t, place };
    // felix inserts its jumps at the top of the built-in chains (ChainInsertMode insert).
    for (builtin, chain) in [("INPUT", INPUT), ("FORWARD", FORWARD), ("OUTPUT", OUTPUT)] {
        w.t.new_chain(Table::Filter, chain);
        w.t.insert(Table::Filter, builtin, format!("-j {chain}"), place);
    }
    w.rule(
        FORWARD,
        &format!("-j MARK --set-xmark 0x0/{:#x}", ALL_BITS & !ACCEPT),
    );
    w.rule(
        "FORWARD",
        &format!(
            "-m comment --comment \"Policy explicitly accepted packet.\" {} -j ACCEPT",
            mark_set(ACCEPT)
        ),
    );
    w.rule(
        "FORWARD",
        &format!("-j MARK --set-xmark {ACCEPT:#x}/{ACCEPT:#x}"),
    );
    if cluster.policies.is_empty() {
        return;
    }
    let mut local: Vec<(String, &Placed)> = cluster
        .placed
        .iter()
        .filter(|p| p.node == node)
        .map(|p| (calico_iface(&p.pod.namespace, &p.pod.name), p))
        .collect();
    local.sort_by(|a, b| a.0.cmp(&b.0));
    w.static_chains(&local);
    let mut policies: BTreeMap<String, &PolicyPlan> = BTreeMap::new();
    let mut namespaces = BTreeSet::new();
    for (iface, pod) in &local {
        for dir in [Dir::Ingress, Dir::Egress] {
            let applying = cluster.applying(pod, dir);
            w.endpoint_chain(dir, iface, pod, &applying);
            policies.extend(applying.iter().map(|p| (p.calico_name(), *p)));
        }
        namespaces.insert(pod.pod.namespace.as_str());
    }
    for p in policies.values() {
        for dir in [Dir::Ingress, Dir::Egress] {
            w.policy_chain(dir, p, cluster);
        }
    }
    for ns in namespaces {
        for dir in [Dir::Ingress, Dir::Egress] {
            let chain = limited(dir.profile_prefix(), &format!("kns.{ns}"));
            w.rule(
                &chain,
                &format!(
                    "-m comment --comment \"Profile kns.{ns} {}\" -j MARK --set-xmark {ACCEPT:#x}/{ACCEPT:#x}",
                    dir.word()
                ),
            );
            w.rule(&chain, &format!("{} -j RETURN", mark_set(ACCEPT)));
        }
    }
}

/// Appends rules to chains of the filter table, each placed at `place`.
struct Writer<'t> {
    t: &'t mut Tables,
    place: Span,
}

impl Writer<'_> {
    fn rule(&mut self, chain: &str, words: &str) {
        self.t
            .append(Table::Filter, chain, words.to_owned(), self.place);
    }

    /// The dispatch chains and the jumps to them, for the node's pod interfaces (sorted).
    fn static_chains(&mut self, local: &[(String, &Placed)]) {
        for (iface, _) in local {
            self.rule(FORWARD, &format!("-i {iface} -j {FROM_DISPATCH}"));
        }
        for (iface, _) in local {
            self.rule(FORWARD, &format!("-o {iface} -j {TO_DISPATCH}"));
        }
        for (iface, _) in local {
            self.rule(INPUT, &format!("-i {iface} -g {WL_TO_HOST}"));
            self.rule(OUTPUT, &format!("-o {iface} -j RETURN"));
        }
        self.rule(WL_TO_HOST, &format!("-j {FROM_DISPATCH}"));
        self.rule(
            WL_TO_HOST,
            "-m comment --comment \"Configured DefaultEndpointToHostAction\" -j ACCEPT",
        );
        for (dispatch, option, dir) in [
            (FROM_DISPATCH, "-i", Dir::Egress),
            (TO_DISPATCH, "-o", Dir::Ingress),
        ] {
            self.t.new_chain(Table::Filter, dispatch);
            for (iface, _) in local {
                let target = limited(dir.endpoint_prefix(), iface);
                self.rule(dispatch, &format!("{option} {iface} -g {target}"));
            }
            self.rule(
                dispatch,
                "-m comment --comment \"Unknown interface\" -j DROP",
            );
        }
    }

    /// The chain of `pod`'s interface `iface` in `dir` (`endpointIptablesChain`).
    fn endpoint_chain(&mut self, dir: Dir, iface: &str, pod: &Placed, applying: &[&PolicyPlan]) {
        let chain = limited(dir.endpoint_prefix(), iface);
        self.rule(
            &chain,
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        );
        self.rule(&chain, "-m conntrack --ctstate INVALID -j DROP");
        self.rule(&chain, &format!("-j MARK --set-xmark 0x0/{ACCEPT:#x}"));
        if dir == Dir::Egress {
            self.rule(
                &chain,
                &format!("-p udp -m comment --comment \"Drop VXLAN encapped packets originating in workloads\" -m multiport --dports {VXLAN_PORT} -j DROP"),
            );
        }
        if !applying.is_empty() {
            self.rule(
                &chain,
                &format!(
                    "-m comment --comment \"Start of policies\" -j MARK --set-xmark 0x0/{PASS:#x}"
                ),
            );
            for p in applying {
                let target = limited(dir.policy_prefix(), &p.calico_name());
                self.rule(&chain, &format!("{} -j {target}", mark_clear(PASS)));
                self.rule(
                    &chain,
                    &format!(
                        "-m comment --comment \"Return if policy accepted\" {} -j RETURN",
                        mark_set(ACCEPT)
                    ),
                );
            }
            let names: Vec<String> = applying
                .iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect();
            let comment = drop_comment(dir, &pod.pod.namespace, &pod.pod.name, &names);
            self.rule(
                &chain,
                &format!(
                    "-m comment --comment \"{comment}\" {} -j DROP",
                    mark_clear(PASS)
                ),
            );
        }
        let profile = limited(dir.profile_prefix(), &format!("kns.{}", pod.pod.namespace));
        self.rule(&chain, &format!("-j {profile}"));
        self.rule(
            &chain,
            &format!(
                "-m comment --comment \"Return if profile accepted\" {} -j RETURN",
                mark_set(ACCEPT)
            ),
        );
        self.rule(
            &chain,
            "-m comment --comment \"Drop if no profiles matched\" -j DROP",
        );
    }

    /// Policy `p`'s chain for `dir` (`PolicyToIptablesChains`): its rules in order, the first
    /// commented with the policy's name.
    fn policy_chain(&mut self, dir: Dir, p: &PolicyPlan, cluster: &Cluster) {
        let chain = limited(dir.policy_prefix(), &p.calico_name());
        self.t.new_chain(Table::Filter, &chain);
        let mut lines: Vec<Line> = Vec::new();
        for rule in dir.rules(p).map(Vec::as_slice).unwrap_or_default() {
            lines.extend(render(dir, p, rule, cluster));
        }
        if let Some(first) = lines.first_mut() {
            first.comment = Some(format!("Policy {} {}", p.calico_name(), dir.word()));
        }
        for line in lines {
            self.rule(&chain, &line.words());
        }
    }
}

/// felix's "Drop if no policies passed packet", with the policies that apply named after it
/// (reachlab's addition, for `why`), within iptables' comment length.
fn drop_comment(dir: Dir, ns: &str, pod: &str, names: &[String]) -> String {
    let head = format!(
        "Drop if no policies passed packet ({} of pod {ns}/{pod}: NetworkPolicy ",
        dir.word()
    );
    let mut text = head.clone();
    for (i, name) in names.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let rest = names.len() - i - 1;
        let tail = if rest == 0 {
            String::new()
        } else {
            format!(" and {rest} more")
        };
        if text.len() + sep.len() + name.len() + tail.len() + 1 > MAX_COMMENT {
            text.push_str(&format!(" and {} more", names.len() - i));
            break;
        }
        text.push_str(sep);
        text.push_str(name);
    }
    text.push(')');
    text
}

/// A rule of a policy chain: its matches, an optional comment, what follows it, its target.
struct Line {
    head: String,
    comment: Option<String>,
    tail: String,
}

impl Line {
    fn new(head: String, tail: String) -> Self {
        Self {
            head,
            comment: None,
            tail,
        }
    }

    fn words(&self) -> String {
        let comment = self
            .comment
            .as_ref()
            .map(|c| format!("-m comment --comment \"{c}\""));
        [
            Some(self.head.as_str()),
            comment.as_deref(),
            Some(self.tail.as_str()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// One allow rule of a policy as felix renders it (`ProtoRuleToIptablesRules`): match blocks
/// on the scratch bits where one iptables rule cannot hold the match (several port groups or
/// named ports; an ipBlock with exceptions), the rules that set the accept bit, and the RETURN
/// on it. Selectors and named ports are expanded to addresses (module docs). A rule whose
/// selector or named port matches nothing (an empty ipset in felix) writes nothing.
fn render(dir: Dir, p: &PolicyPlan, rule: &Rule, cluster: &Cluster) -> Vec<Line> {
    let peer_opt = dir.peer_option();
    let peers: Vec<Option<Ipv4Net>> = match &rule.peer {
        Peer::Any => vec![None],
        Peer::Block { cidr, .. } => vec![Some(*cidr)],
        Peer::Pods { pods, namespaces } => {
            let set: BTreeSet<Ipv4Addr> = cluster
                .peer_pods(pods, namespaces)
                .iter()
                .map(|p| p.address)
                .collect();
            set.into_iter().map(|a| Some(host(a))).collect()
        }
    };
    if peers.is_empty() {
        return Vec::new();
    }
    let proto = rule.protocol.map(Protocol::name);
    let numeric: Vec<(u16, u16)> = rule
        .ports
        .iter()
        .filter_map(|p| match p {
            Port::Range(a, b) => Some((*a, *b)),
            Port::Named(_) => None,
        })
        .collect();
    let named: Vec<Vec<(Ipv4Addr, u16)>> = rule
        .ports
        .iter()
        .filter_map(|port| match port {
            Port::Named(name) => Some(named_port(dir, p, rule, name, cluster)),
            Port::Range(..) => None,
        })
        .collect();
    let splits = split_ports(&numeric);
    let mut lines = Vec::new();
    let mut blocks = false;
    // Main-rule port matches: one split, or one named port's pairs.
    let (mut main_split, mut main_pairs) = (splits.first().cloned(), None);
    if splits.len() + named.len() > 1 {
        blocks = true;
        lines.push(Line::new(
            String::new(),
            format!("-j MARK --set-xmark 0x0/{:#x}", SCRATCH0 | SCRATCH1),
        ));
        let set = format!("-j MARK --set-xmark {SCRATCH0:#x}/{SCRATCH0:#x}");
        let proto = proto.unwrap_or("tcp");
        for split in &splits {
            lines.push(Line::new(
                format!("-p {proto}"),
                format!("-m multiport --dports {split} {set}"),
            ));
        }
        for (addr, port) in named.iter().flatten() {
            lines.push(Line::new(
                format!("-d {addr}/32 -p {proto}"),
                format!("-m {proto} --dport {port} {set}"),
            ));
        }
        main_split = None;
    } else if let Some(pairs) = named.first() {
        main_pairs = Some(pairs.clone());
    }
    if let Peer::Block { except, .. } = &rule.peer
        && !except.is_empty()
    {
        if !blocks {
            lines.push(Line::new(
                String::new(),
                format!(
                    "-j MARK --set-xmark {SCRATCH0:#x}/{:#x}",
                    SCRATCH0 | SCRATCH1
                ),
            ));
            blocks = true;
        }
        for e in except {
            lines.push(Line::new(
                format!("{peer_opt} {e}"),
                format!("-j MARK --set-xmark 0x0/{SCRATCH0:#x}"),
            ));
        }
    }
    let pairs: Vec<Option<(Ipv4Addr, u16)>> = match main_pairs {
        Some(pairs) => pairs.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let mut main = Vec::new();
    for peer in &peers {
        for pair in &pairs {
            let (mut src, mut dst) = match dir {
                Dir::Ingress => (*peer, None),
                Dir::Egress => (None, *peer),
            };
            if let Some((addr, _)) = pair {
                match dst {
                    Some(net) if !net.contains(addr) => continue,
                    _ => dst = Some(host(*addr)),
                }
            }
            let mut head = Vec::new();
            if let Some(s) = src.take() {
                head.push(format!("-s {s}"));
            }
            if let Some(d) = dst {
                head.push(format!("-d {d}"));
            }
            if let Some(proto) = proto {
                head.push(format!("-p {proto}"));
            }
            let mut tail = Vec::new();
            if let Some(split) = &main_split {
                tail.push(format!("-m multiport --dports {split}"));
            }
            if let (Some((_, port)), Some(proto)) = (pair, proto) {
                tail.push(format!("-m {proto} --dport {port}"));
            }
            if blocks {
                tail.push(mark_set(SCRATCH0));
            }
            tail.push(format!("-j MARK --set-xmark {ACCEPT:#x}/{ACCEPT:#x}"));
            main.push(Line::new(head.join(" "), tail.join(" ")));
        }
    }
    if main.is_empty() {
        return Vec::new();
    }
    lines.extend(main);
    lines.push(Line::new(
        String::new(),
        format!("{} -j RETURN", mark_set(ACCEPT)),
    ));
    lines
}

/// The (address, port) pairs named port `name` of `rule`'s protocol resolves to: on the pods
/// the policy selects for ingress, on the pods of the peer (every pod without a selector)
/// for egress — what felix's named-port ipset holds.
fn named_port(
    dir: Dir,
    p: &PolicyPlan,
    rule: &Rule,
    name: &str,
    cluster: &Cluster,
) -> Vec<(Ipv4Addr, u16)> {
    let pods: Vec<&Placed> = match (dir, &rule.peer) {
        (Dir::Ingress, _) => cluster
            .placed
            .iter()
            .filter(|q| p.selects(&q.pod.namespace, &q.pod.labels))
            .collect(),
        (Dir::Egress, Peer::Pods { pods, namespaces }) => cluster.peer_pods(pods, namespaces),
        (Dir::Egress, _) => cluster.placed.iter().collect(),
    };
    let proto = match rule.protocol {
        Some(Protocol::Udp) => ProtoName::Udp,
        _ => ProtoName::Tcp,
    };
    let set: BTreeSet<(Ipv4Addr, u16)> = pods
        .iter()
        .flat_map(|q| {
            q.pod
                .ports
                .iter()
                .filter(|port| port.name.as_deref() == Some(name) && port.proto == proto)
                .map(|port| (q.address, port.port))
        })
        .collect();
    set.into_iter().collect()
}

/// Port ranges in multiport groups of at most 15 slots, a range taking two
/// (`SplitPortList`), each written as multiport lists them (`80,8000:8080`).
fn split_ports(ports: &[(u16, u16)]) -> Vec<String> {
    let mut splits = Vec::new();
    let (mut current, mut slots) = (Vec::new(), 15);
    for &(a, b) in ports {
        let need = if a == b { 1 } else { 2 };
        if slots < need {
            splits.push(std::mem::take(&mut current).join(","));
            slots = 15;
        }
        current.push(if a == b {
            a.to_string()
        } else {
            format!("{a}:{b}")
        });
        slots -= need;
    }
    if !current.is_empty() {
        splits.push(current.join(","));
    }
    splits
}

fn host(a: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new_assert(a, 32)
}

/// `-m mark --mark BIT/BIT`: the bit is set (`MarkSingleBitSet`).
fn mark_set(bit: u32) -> String {
    format!("-m mark --mark {bit:#x}/{bit:#x}")
}

/// `-m mark --mark 0x0/BIT`: the bit is clear (`MarkClear`).
fn mark_clear(bit: u32) -> String {
    format!("-m mark --mark 0x0/{bit:#x}")
}

/// felix's length-limited name (`hashutils.GetLengthLimitedID`): `prefix` and `suffix`
/// when they fit in [`MAX_CHAIN`] characters, else `prefix`, `_` and the start of the
/// URL-safe base64 of the SHA-256 of `suffix`.
fn limited(prefix: &str, suffix: &str) -> String {
    let total = prefix.len() + suffix.len();
    if total < MAX_CHAIN || (total == MAX_CHAIN && !suffix.starts_with('_')) {
        return format!("{prefix}{suffix}");
    }
    use sha2::{Digest, Sha256};
    let hash = base64_url(&Sha256::digest(suffix.as_bytes()));
    let keep = MAX_CHAIN - 1 - prefix.len();
    format!("{prefix}_{}", &hash[..keep])
}

/// Base64 with the URL-safe alphabet and no padding (Go's `base64.RawURLEncoding`).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::kubernetes::objects::Object;
    use crate::platform::kubernetes::policy::plan;
    use crate::platform::kubernetes::workloads::{PodPlan, PodPort};

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)], ports: &[(&str, u16)]) -> PodPlan {
        PodPlan {
            name: name.into(),
            namespace: ns.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            node_name: None,
            node_selector: BTreeMap::new(),
            ports: ports
                .iter()
                .map(|(n, p)| PodPort {
                    name: Some((*n).into()),
                    port: *p,
                    proto: ProtoName::Tcp,
                })
                .collect(),
        }
    }

    fn policies(jsons: &[&str]) -> Vec<PolicyPlan> {
        jsons
            .iter()
            .map(|j| {
                let value: serde_json::Value = serde_json::from_str(j).unwrap();
                let object = Object::read(&value, Span::default(), "test");
                let super::super::objects::Body::NetworkPolicy(spec) = &object.body else {
                    panic!("a NetworkPolicy");
                };
                plan(&object, spec, &mut Vec::new()).expect("a valid policy")
            })
            .collect()
    }

    /// The filter table felix writes on node 0 for `pods` (placed in order on nodes 0 and 1
    /// alternately, at 10.0.0.1, …) under `policies`.
    fn text(pods: &[PodPlan], policies: &[PolicyPlan]) -> String {
        let placed: Vec<Placed> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| Placed {
                node: NodeId::at(i % 2),
                pod,
                address: Ipv4Addr::new(10, 0, 0, i as u8 + 1),
            })
            .collect();
        let cluster = Cluster::new(policies, &[], &placed);
        let mut t = Tables::new();
        felix(&mut t, NodeId::at(0), &cluster, Span::default());
        t.save(Span::default()).0
    }

    fn chain<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let prefix = format!("-A {name} ");
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    const DENY_ALL: &str = r#"{"kind":"NetworkPolicy","metadata":{"name":"deny-all"},
        "spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;

    #[test]
    fn without_policies_only_the_entry_chains_are_written() {
        let text = text(&[pod("default", "web", &[], &[])], &[]);
        assert!(text.contains("-A FORWARD -j cali-FORWARD\n"), "{text}");
        assert!(!text.contains("cali-tw-"), "{text}");
        assert!(!text.contains("cali-from-wl-dispatch"), "{text}");
    }

    #[test]
    fn default_deny_drops_in_both_directions_and_names_the_policy() {
        let web = pod("default", "web", &[], &[]);
        let text = text(&[web], &policies(&[DENY_ALL]));
        let iface = calico_iface("default", "web");
        for dir in ["tw", "fw"] {
            let rules = chain(&text, &format!("cali-{dir}-{iface}"));
            assert_eq!(
                rules[0],
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            );
            let drop = rules
                .iter()
                .find(|r| r.ends_with("-m mark --mark 0x0/0x20000 -j DROP"))
                .expect("the drop of no policy passing");
            assert!(drop.contains("NetworkPolicy default/deny-all"), "{drop}");
        }
        // The policy's chains hold no rule: nothing sets the accept bit.
        assert!(
            chain(&text, "cali-pi-_-Wl5cZBkMaJW52alC41").is_empty(),
            "{text}"
        );
        assert!(
            text.contains(":cali-pi-_-Wl5cZBkMaJW52alC41 - [0:0]"),
            "{text}"
        );
    }

    #[test]
    fn a_pod_no_policy_selects_is_accepted_by_its_namespace_profile() {
        let other = r#"{"kind":"NetworkPolicy","metadata":{"name":"db"},
            "spec":{"podSelector":{"matchLabels":{"app":"db"}}}}"#;
        let text = text(
            &[pod("default", "web", &[("app", "web")], &[])],
            &policies(&[other]),
        );
        let rules = chain(
            &text,
            &format!("cali-tw-{}", calico_iface("default", "web")),
        );
        assert!(
            !rules.iter().any(|r| r.contains("Start of policies")),
            "{rules:?}"
        );
        assert!(rules.contains(&"-j cali-pri-kns.default"), "{rules:?}");
        assert_eq!(
            chain(&text, "cali-pri-kns.default"),
            [
                "-m comment --comment \"Profile kns.default ingress\" -j MARK --set-xmark 0x10000/0x10000",
                "-m mark --mark 0x10000/0x10000 -j RETURN"
            ]
        );
    }

    #[test]
    fn the_node_reaches_its_own_pods_without_their_ingress_policy() {
        let text = text(&[pod("default", "web", &[], &[])], &policies(&[DENY_ALL]));
        let iface = calico_iface("default", "web");
        assert_eq!(
            chain(&text, "cali-OUTPUT"),
            [format!("-o {iface} -j RETURN")]
        );
        assert_eq!(
            chain(&text, "cali-INPUT"),
            [format!("-i {iface} -g cali-wl-to-host")]
        );
        assert_eq!(
            chain(&text, "cali-wl-to-host")[0],
            "-j cali-from-wl-dispatch"
        );
    }

    #[test]
    fn a_pod_selector_peer_is_one_rule_per_pod_address_in_the_policy_namespace() {
        let allow = r#"{"kind":"NetworkPolicy","metadata":{"name":"from-client"},
            "spec":{"podSelector":{"matchLabels":{"app":"web"}},
                    "ingress":[{"from":[{"podSelector":{"matchLabels":{"role":"client"}}}]}]}}"#;
        let pods = [
            pod("default", "web", &[("app", "web")], &[]),
            pod("default", "c1", &[("role", "client")], &[]),
            pod("other", "c2", &[("role", "client")], &[]),
            pod("default", "c3", &[("role", "client")], &[]),
        ];
        let text = text(&pods, &policies(&[allow]));
        let name = limited("cali-pi-", "default/knp.default.from-client");
        assert_eq!(
            chain(&text, &name),
            [
                "-s 10.0.0.2/32 -m comment --comment \"Policy default/knp.default.from-client ingress\" -j MARK --set-xmark 0x10000/0x10000",
                "-s 10.0.0.4/32 -j MARK --set-xmark 0x10000/0x10000",
                "-m mark --mark 0x10000/0x10000 -j RETURN"
            ]
        );
    }

    #[test]
    fn a_named_port_resolves_on_each_destination_pod() {
        let allow = r#"{"kind":"NetworkPolicy","metadata":{"name":"http"},
            "spec":{"podSelector":{"matchLabels":{"app":"web"}},
                    "ingress":[{"ports":[{"port":"http"}]}]}}"#;
        let pods = [
            pod("default", "w1", &[("app", "web")], &[("http", 8080)]),
            pod("default", "w2", &[("app", "web")], &[("http", 9090)]),
        ];
        let text = text(&pods, &policies(&[allow]));
        let rules = chain(&text, &limited("cali-pi-", "default/knp.default.http"));
        assert_eq!(rules.len(), 3, "{rules:?}");
        assert!(rules[0].starts_with("-d 10.0.0.1/32 -p tcp"), "{rules:?}");
        assert!(rules[0].ends_with("-m tcp --dport 8080 -j MARK --set-xmark 0x10000/0x10000"));
        assert_eq!(
            rules[1],
            "-d 10.0.0.2/32 -p tcp -m tcp --dport 9090 -j MARK --set-xmark 0x10000/0x10000"
        );
    }

    #[test]
    fn ip_block_except_clears_the_scratch_bit_before_the_match() {
        let allow = r#"{"kind":"NetworkPolicy","metadata":{"name":"block"},
            "spec":{"podSelector":{},"policyTypes":["Egress"],
                    "egress":[{"to":[{"ipBlock":{"cidr":"203.0.113.0/24","except":["203.0.113.128/25"]}}],
                               "ports":[{"port":443},{"port":8000,"endPort":8080}]}]}}"#;
        let text = text(&[pod("default", "web", &[], &[])], &policies(&[allow]));
        let rules = chain(&text, &limited("cali-po-", "default/knp.default.block"));
        assert_eq!(
            rules,
            [
                "-m comment --comment \"Policy default/knp.default.block egress\" -j MARK --set-xmark 0x40000/0xc0000",
                "-d 203.0.113.128/25 -j MARK --set-xmark 0x0/0x40000",
                "-d 203.0.113.0/24 -p tcp -m multiport --dports 443,8000:8080 -m mark --mark 0x40000/0x40000 -j MARK --set-xmark 0x10000/0x10000",
                "-m mark --mark 0x10000/0x10000 -j RETURN",
            ]
        );
    }

    #[test]
    fn a_selector_that_matches_no_pod_writes_no_rule() {
        let allow = r#"{"kind":"NetworkPolicy","metadata":{"name":"none"},
            "spec":{"podSelector":{},"ingress":[{"from":[{"podSelector":{"matchLabels":{"x":"y"}}}]}]}}"#;
        let text = text(&[pod("default", "web", &[], &[])], &policies(&[allow]));
        assert!(chain(&text, &limited("cali-pi-", "default/knp.default.none")).is_empty());
    }

    #[test]
    fn long_names_are_hashed_as_felix_does() {
        // base64url(sha256("default/knp.default.deny-all")), its first 19 characters.
        assert_eq!(
            limited("cali-pi-", "default/knp.default.deny-all"),
            "cali-pi-_-Wl5cZBkMaJW52alC41"
        );
        assert_eq!(
            limited("cali-tw-", "cali68caf03a5f4"),
            "cali-tw-cali68caf03a5f4"
        );
    }

    #[test]
    fn the_drop_comment_stays_within_iptables_limit() {
        let names: Vec<String> = (0..40).map(|i| format!("ns/policy-number-{i}")).collect();
        let c = drop_comment(Dir::Ingress, "ns", "pod", &names);
        assert!(c.len() <= MAX_COMMENT, "{}", c.len());
        assert!(c.contains("more)"), "{c}");
    }
}
