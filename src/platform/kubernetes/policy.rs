//! NetworkPolicies and Namespaces, planned: each NetworkPolicy validated as the API server
//! validates it, given the API's defaults (`policyTypes`), and converted into the rules Calico
//! enforces, the way Calico's Kubernetes datastore converts it (projectcalico/calico
//! `libcalico-go/lib/backend/k8s/conversion/conversion.go`, `K8sNetworkPolicyToCalico` and
//! `k8sRuleToCalico`, v3.27.0): one rule per protocol and peer, its ports merged into ranges.
//! felix writes those rules into each node's filter table ([`super::felix`]).
//! docs/platform-semantics.md, "Kubernetes", **NetworkPolicy**.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::objects::{
    IntOrString, LabelSelector, NetworkPolicySpec, Object, PolicyPeer, PolicyPort, PolicyRule,
};
use crate::format::{Code, Diagnostic};

/// The label every namespace carries with its own name (Kubernetes 1.21 and later).
pub(super) const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A label selector, checked: `matchLabels` and `matchExpressions`, all of which must hold.
/// An empty selector selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Selector {
    labels: BTreeMap<String, String>,
    expressions: Vec<(String, Operator)>,
}

/// A `matchExpressions` operator with its values.
#[derive(Debug, Clone, PartialEq)]
enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Whether `labels` satisfy every term: `In` needs the key with one of the values,
    /// `NotIn` the key absent or with another value, `Exists` the key, `DoesNotExist` no key.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(key, op)| {
                let value = labels.get(key);
                match op {
                    Operator::In(values) => value.is_some_and(|v| values.contains(v)),
                    Operator::NotIn(values) => !value.is_some_and(|v| values.contains(v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }

    /// The selector as written, or why the API server refuses it.
    pub fn read(written: &LabelSelector) -> Result<Self, String> {
        let mut expressions = Vec::new();
        for e in &written.match_expressions {
            let values = e.values.clone();
            let op = match (e.operator.as_str(), values.is_empty()) {
                ("In", false) => Operator::In(values),
                ("NotIn", false) => Operator::NotIn(values),
                ("Exists", true) => Operator::Exists,
                ("DoesNotExist", true) => Operator::DoesNotExist,
                ("In" | "NotIn", true) => {
                    return Err(format!(
                        "operator {} of key `{}` needs values",
                        e.operator, e.key
                    ));
                }
                ("Exists" | "DoesNotExist", false) => {
                    return Err(format!(
                        "operator {} of key `{}` takes no values",
                        e.operator, e.key
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "unknown operator `{other}` (In, NotIn, Exists, DoesNotExist)"
                    ));
                }
            };
            expressions.push((e.key.clone(), op));
        }
        Ok(Self {
            labels: written.match_labels.clone(),
            expressions,
        })
    }
}

/// Which pods a peer's `podSelector` looks at: the policy's namespace (no
/// `namespaceSelector`), or every namespace whose labels a selector matches (`{}`: all).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Namespaces {
    Own(String),
    Matching(Selector),
}

/// The other end of a rule: the source of an ingress rule, the destination of an egress one.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Peer {
    /// No `from`/`to` (or an empty list): every address.
    Any,
    /// Pods by label, in the namespaces given.
    Pods {
        pods: Selector,
        namespaces: Namespaces,
    },
    /// `ipBlock`: the CIDR without its exceptions.
    Block { cidr: Ipv4Net, except: Vec<Ipv4Net> },
}

/// A protocol of a rule's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// As iptables names it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A destination port of a rule: a range (one port is a range of one) or a container port's
/// name, resolved on each destination pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Port {
    Range(u16, u16),
    Named(String),
}

/// One rule as Calico holds it: allow traffic of `protocol` (any when `None`) to `ports`
/// (any when empty) from or to `peer`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rule {
    pub protocol: Option<Protocol>,
    pub ports: Vec<Port>,
    pub peer: Peer,
}

/// A NetworkPolicy, planned.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PolicyPlan {
    pub name: String,
    pub namespace: String,
    /// The pods of its namespace it applies to.
    pub selector: Selector,
    /// Its ingress rules when it applies to ingress (`policyTypes` holds `Ingress`).
    pub ingress: Option<Vec<Rule>>,
    /// Its egress rules when it applies to egress.
    pub egress: Option<Vec<Rule>>,
}

impl PolicyPlan {
    /// Calico's name of the policy, `<namespace>/knp.default.<name>`, which felix's chain
    /// names and comments carry.
    pub fn calico_name(&self) -> String {
        format!("{}/knp.default.{}", self.namespace, self.name)
    }

    /// Whether it selects a pod of `namespace` with `labels`.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespace == namespace && self.selector.matches(labels)
    }
}

/// The NetworkPolicy `object` with `spec`, planned; `None` with an error when the API server
/// would refuse it.
pub(super) fn plan(
    object: &Object,
    spec: &NetworkPolicySpec,
    out: &mut Vec<Diagnostic>,
) -> Option<PolicyPlan> {
    match convert(object, spec) {
        Ok(plan) => Some(plan),
        Err(why) => {
            out.push(
                Diagnostic::error(
                    Code::BadValue,
                    object.span,
                    format!(
                        "NetworkPolicy `{}/{}` ({}): {why}",
                        object.namespace, object.name, object.source
                    ),
                )
                .label("the API server refuses this policy")
                .hint("check it with `kubectl apply --dry-run=server -f`"),
            );
            None
        }
    }
}

fn convert(object: &Object, spec: &NetworkPolicySpec) -> Result<PolicyPlan, String> {
    let selector =
        Selector::read(&spec.pod_selector).map_err(|e| format!("spec.podSelector: {e}"))?;
    // The API's default: Ingress always, Egress when egress rules are written.
    let (mut ingress, mut egress) = (spec.policy_types.is_empty(), !spec.egress.is_empty());
    if !spec.policy_types.is_empty() {
        egress = false;
        for t in &spec.policy_types {
            match t.as_str() {
                "Ingress" => ingress = true,
                "Egress" => egress = true,
                other => return Err(format!("policyTypes holds `{other}` (Ingress, Egress)")),
            }
        }
    }
    let ns = &object.namespace;
    let rules = |list: &[PolicyRule], to: bool| -> Result<Vec<Rule>, String> {
        let mut all = Vec::new();
        for r in list {
            all.extend(calico_rules(
                if to { &r.to } else { &r.from },
                &r.ports,
                ns,
            )?);
        }
        Ok(all)
    };
    let ingress_rules = rules(&spec.ingress, false)?;
    let egress_rules = rules(&spec.egress, true)?;
    Ok(PolicyPlan {
        name: object.name.clone(),
        namespace: ns.clone(),
        selector,
        ingress: ingress.then_some(ingress_rules),
        egress: egress.then_some(egress_rules),
    })
}

/// The rules of one ingress or egress rule: its ports grouped by protocol (protocols in
/// order, a port without a number opening every port of its protocol), one rule per protocol
/// and peer (`k8sRuleToCalico`).
fn calico_rules(peers: &[PolicyPeer], ports: &[PolicyPort], ns: &str) -> Result<Vec<Rule>, String> {
    let peers: Vec<Peer> = if peers.is_empty() {
        vec![Peer::Any]
    } else {
        peers
            .iter()
            .map(|p| peer(p, ns))
            .collect::<Result<_, _>>()?
    };
    // Protocol → ports; `None` for every port of the protocol. No ports at all: one group
    // without protocol or port.
    let mut groups: BTreeMap<Option<Protocol>, Option<Vec<Port>>> = BTreeMap::new();
    if ports.is_empty() {
        groups.insert(None, None);
    }
    for p in ports {
        let Some(protocol) = protocol(p.protocol.as_deref())? else {
            continue;
        };
        let group = groups
            .entry(Some(protocol))
            .or_insert_with(|| Some(Vec::new()));
        match (port(p)?, group) {
            (None, group) => *group = None,
            (Some(port), Some(list)) => list.push(port),
            (Some(_), None) => {}
        }
    }
    let mut rules = Vec::new();
    for (protocol, ports) in groups {
        let ports = simplify(ports.unwrap_or_default());
        for peer in &peers {
            rules.push(Rule {
                protocol,
                ports: ports.clone(),
                peer: peer.clone(),
            });
        }
    }
    Ok(rules)
}

/// The protocol a port names: TCP when absent; `None` for SCTP, which reachlab does not
/// model (a rule for it matches no TCP, UDP or ICMP packet, so leaving it out changes nothing
/// the model carries).
fn protocol(written: Option<&str>) -> Result<Option<Protocol>, String> {
    match written {
        None | Some("TCP") => Ok(Some(Protocol::Tcp)),
        Some("UDP") => Ok(Some(Protocol::Udp)),
        Some("SCTP") => Ok(None),
        Some(other) => Err(format!("port protocol `{other}` (TCP, UDP, SCTP)")),
    }
}

/// A rule port: a number (to `endPort`), a name, or `None` for every port.
fn port(p: &PolicyPort) -> Result<Option<Port>, String> {
    match (&p.port, p.end_port) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("endPort without a port".into()),
        (Some(IntOrString::Int(first)), end) => {
            let last = end.unwrap_or(*first);
            if last < *first || *first == 0 {
                return Err(format!("port range {first}-{last}"));
            }
            Ok(Some(Port::Range(*first, last)))
        }
        (Some(IntOrString::String(_)), Some(_)) => {
            Err("endPort with a named port (endPort needs a numeric port)".into())
        }
        (Some(IntOrString::String(name)), None) => Ok(Some(Port::Named(name.clone()))),
    }
}

/// Ports as Calico's `SimplifyPorts` leaves them: with two numeric ports or more, the named
/// ones first, then the numbers merged into ranges in order; otherwise as written.
fn simplify(ports: Vec<Port>) -> Vec<Port> {
    let mut numbers: Vec<u32> = Vec::new();
    let mut out: Vec<Port> = Vec::new();
    for p in &ports {
        match p {
            Port::Named(_) => out.push(p.clone()),
            Port::Range(a, b) => numbers.extend(u32::from(*a)..=u32::from(*b)),
        }
    }
    if numbers.len() <= 1 {
        return ports;
    }
    numbers.sort_unstable();
    numbers.dedup();
    let mut start = numbers[0];
    let mut last = start;
    for &n in &numbers[1..] {
        if n > last + 1 {
            out.push(range(start, last));
            start = n;
        }
        last = n;
    }
    out.push(range(start, last));
    out
}

fn range(first: u32, last: u32) -> Port {
    let narrow = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    Port::Range(narrow(first), narrow(last))
}

/// A peer as Calico converts it (`k8sPeerToCalicoFields`): an `ipBlock` alone, or pods by
/// `podSelector` (every pod when absent) in the policy's namespace or in the namespaces
/// `namespaceSelector` selects — both in one peer is their AND.
fn peer(p: &PolicyPeer, ns: &str) -> Result<Peer, String> {
    if let Some(block) = &p.ip_block {
        if p.pod_selector.is_some() || p.namespace_selector.is_some() {
            return Err("a peer with ipBlock takes no podSelector or namespaceSelector".into());
        }
        let cidr = net(block.cidr.as_deref().unwrap_or(""))?;
        let mut except = Vec::new();
        for e in &block.except {
            let e = net(e)?;
            if !(cidr.contains(&e.network()) && e.prefix_len() > cidr.prefix_len()) {
                return Err(format!("ipBlock except {e} is not inside {cidr}"));
            }
            except.push(e);
        }
        return Ok(Peer::Block { cidr, except });
    }
    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
        return Err("a peer needs podSelector, namespaceSelector or ipBlock".into());
    }
    let pods = match &p.pod_selector {
        Some(s) => Selector::read(s).map_err(|e| format!("podSelector: {e}"))?,
        None => Selector::default(),
    };
    let namespaces = match &p.namespace_selector {
        Some(s) => {
            Namespaces::Matching(Selector::read(s).map_err(|e| format!("namespaceSelector: {e}"))?)
        }
        None => Namespaces::Own(ns.to_owned()),
    };
    Ok(Peer::Pods { pods, namespaces })
}

/// A CIDR of an `ipBlock`, truncated to its prefix as Calico parses it.
fn net(text: &str) -> Result<Ipv4Net, String> {
    text.parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| format!("ipBlock cidr `{text}` is not an IPv4 prefix"))
}

/// The labels of each namespace: those its Namespace object gives, and on every namespace
/// `kubernetes.io/metadata.name` with its name (namespaces that only pods or policies name
/// exist with that label alone).
pub(super) fn namespace_labels<'a>(
    declared: &[(String, BTreeMap<String, String>)],
    used: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for name in used {
        all.entry(name.to_owned()).or_default();
    }
    for (name, labels) in declared {
        all.entry(name.clone()).or_default().extend(labels.clone());
    }
    for (name, labels) in &mut all {
        labels.insert(NAME_LABEL.to_owned(), name.clone());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Span;

    fn policy(json: &str) -> Result<PolicyPlan, String> {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let object = Object::read(&value, Span::default(), "test");
        let super::super::objects::Body::NetworkPolicy(spec) = &object.body else {
            panic!("a NetworkPolicy");
        };
        convert(&object, spec)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn policy_types_default_to_ingress_and_to_egress_only_with_egress_rules() {
        let p = policy(r#"{"kind":"NetworkPolicy","spec":{"podSelector":{}}}"#).unwrap();
        assert_eq!((p.ingress, p.egress), (Some(vec![]), None));
        let p = policy(r#"{"kind":"NetworkPolicy","spec":{"egress":[{}]}}"#).unwrap();
        assert!(p.ingress.is_some() && p.egress.is_some());
        let p = policy(r#"{"kind":"NetworkPolicy","spec":{"policyTypes":["Egress"]}}"#).unwrap();
        assert_eq!((p.ingress, p.egress), (None, Some(vec![])));
    }

    #[test]
    fn an_empty_rule_allows_every_peer_and_port_and_no_rule_allows_nothing() {
        let p = policy(r#"{"kind":"NetworkPolicy","spec":{"ingress":[{}]}}"#).unwrap();
        let all = Rule {
            protocol: None,
            ports: vec![],
            peer: Peer::Any,
        };
        assert_eq!(p.ingress, Some(vec![all]));
        let p = policy(r#"{"kind":"NetworkPolicy","spec":{"ingress":[]}}"#).unwrap();
        assert_eq!(p.ingress, Some(vec![]));
    }

    #[test]
    fn match_expressions_and_match_labels_must_all_hold() {
        let s = Selector::read(
            &serde_json::from_str::<LabelSelector>(
                r#"{"matchLabels":{"app":"web"},"matchExpressions":[
                {"key":"tier","operator":"In","values":["a","b"]},
                {"key":"env","operator":"NotIn","values":["prod"]},
                {"key":"team","operator":"Exists"},
                {"key":"legacy","operator":"DoesNotExist"}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        let base = [("app", "web"), ("tier", "a"), ("team", "x")];
        assert!(s.matches(&labels(&base)));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "x")])));
        assert!(
            !s.matches(&labels(&[("app", "web"), ("tier", "a")])),
            "Exists"
        );
        let mut prod = labels(&base);
        prod.insert("env".into(), "prod".into());
        assert!(!s.matches(&prod), "NotIn");
        let mut legacy = labels(&base);
        legacy.insert("legacy".into(), "".into());
        assert!(!s.matches(&legacy), "DoesNotExist");
        assert!(
            Selector::default().matches(&BTreeMap::new()),
            "{{}} selects all"
        );
    }

    #[test]
    fn pod_and_namespace_selector_in_one_peer_is_and_in_two_peers_is_or() {
        let one = policy(
            r#"{"kind":"NetworkPolicy","metadata":{"namespace":"db"},"spec":{"ingress":[{"from":[
                {"namespaceSelector":{"matchLabels":{"team":"a"}},"podSelector":{"matchLabels":{"role":"c"}}}]}]}}"#,
        )
        .unwrap();
        let rules = one.ingress.unwrap();
        assert_eq!(rules.len(), 1);
        assert!(
            matches!(&rules[0].peer, Peer::Pods { namespaces: Namespaces::Matching(_), pods } if *pods != Selector::default())
        );
        let two = policy(
            r#"{"kind":"NetworkPolicy","metadata":{"namespace":"db"},"spec":{"ingress":[{"from":[
                {"namespaceSelector":{"matchLabels":{"team":"a"}}},{"podSelector":{"matchLabels":{"role":"c"}}}]}]}}"#,
        )
        .unwrap();
        let rules = two.ingress.unwrap();
        assert_eq!(rules.len(), 2);
        assert!(
            matches!(&rules[0].peer, Peer::Pods { namespaces: Namespaces::Matching(_), pods } if *pods == Selector::default())
        );
        assert!(
            matches!(&rules[1].peer, Peer::Pods { namespaces: Namespaces::Own(ns), .. } if ns == "db")
        );
    }

    #[test]
    fn ports_group_by_protocol_and_a_port_without_number_opens_the_protocol() {
        let p = policy(
            r#"{"kind":"NetworkPolicy","spec":{"egress":[{"ports":[
                {"protocol":"UDP","port":53},{"port":53},{"port":80},{"port":81},
                {"port":"http"},{"port":8000,"endPort":8080},{"protocol":"UDP"}]}]}}"#,
        )
        .unwrap();
        let rules = p.egress.unwrap();
        let got: Vec<_> = rules
            .iter()
            .map(|r| (r.protocol, r.ports.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some(Protocol::Tcp),
                    vec![
                        Port::Named("http".into()),
                        Port::Range(53, 53),
                        Port::Range(80, 81),
                        Port::Range(8000, 8080)
                    ]
                ),
                (Some(Protocol::Udp), vec![]),
            ]
        );
    }

    #[test]
    fn ip_block_except_must_lie_inside_the_cidr() {
        let ok = policy(
            r#"{"kind":"NetworkPolicy","spec":{"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}]}]}}"#,
        )
        .unwrap();
        assert!(
            matches!(&ok.ingress.unwrap()[0].peer, Peer::Block { except, .. } if except.len() == 1)
        );
        let bad = policy(
            r#"{"kind":"NetworkPolicy","spec":{"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["11.0.0.0/16"]}}]}]}}"#,
        );
        assert!(bad.is_err_and(|e| e.contains("not inside")));
    }

    #[test]
    fn end_port_needs_a_numeric_port() {
        let bad = policy(
            r#"{"kind":"NetworkPolicy","spec":{"ingress":[{"ports":[{"port":"http","endPort":90}]}]}}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn every_namespace_carries_its_name_label() {
        let declared = vec![("prod".to_owned(), labels(&[("team", "a")]))];
        let all = namespace_labels(&declared, ["default"].into_iter());
        assert_eq!(all["default"][NAME_LABEL], "default");
        assert_eq!(all["prod"]["team"], "a");
        assert_eq!(all["prod"][NAME_LABEL], "prod");
    }
}
