//! `reachlab fuzz`: "what breaks if I forget this line?" Changes the file one element at a time
//! (drops a route, a NAT rule, a listener, an interface address; flips a filter rule's action;
//! accepts where a chain had `policy: drop`; turns forwarding off), validates and lowers each
//! variant again, and reports which invariants and expectations that hold on the file stop
//! holding, at the line and column of the original file.
//!
//! Mutations apply to the file after its platform sections are expanded (see
//! [`Expanded`]): each rule a security group or a port forward lowers into is mutated on its
//! own and named by the line of the platform entry it came from. Elements without a position
//! in the file are left alone. Mutations come in file order; `limit` picks that many of them,
//! the same ones for the same seed.

use std::fmt::Write as _;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use super::{Judgement, Status, StatusRecord, Subject, broken, status_json, statuses};
use crate::model::{ChainName, Network, Origin};
use crate::sim::SimConfig;
use crate::topology::file::{
    ActionName, ChainSpec, FirewallSpec, PolicyName, ProtoName, RuleSpec, TopologyFile,
};
use crate::topology::{
    Code, Diagnostic, Expanded, FileReport, Located, SourceFile, Span, load_expanded,
    load_path_expanded,
};

/// One change to a file, by the indices of the element in the expanded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// Remove `routes[route]` of `nodes[node]`.
    DropRoute { node: usize, route: usize },
    /// Remove `nat[rule]`.
    DropNatRule { node: usize, rule: usize },
    /// Swap a filter rule's action: accept becomes drop, drop and reject become accept.
    FlipFilterRule {
        node: usize,
        chain: ChainName,
        rule: usize,
    },
    /// Remove a chain's `policy: drop`: the chain then accepts by default.
    AcceptPolicy { node: usize, chain: ChainName },
    /// `forwarding: false`.
    DisableForwarding { node: usize },
    /// Remove `listen[listener]`.
    DropListener { node: usize, listener: usize },
    /// Remove `interfaces[interface].addresses[address]`.
    DropAddress {
        node: usize,
        interface: usize,
        address: usize,
    },
}

impl Mutation {
    /// The kebab-case name of the kind of change (`drop-route`, `flip-filter-rule`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Mutation::DropRoute { .. } => "drop-route",
            Mutation::DropNatRule { .. } => "drop-nat-rule",
            Mutation::FlipFilterRule { .. } => "flip-filter-rule",
            Mutation::AcceptPolicy { .. } => "accept-policy",
            Mutation::DisableForwarding { .. } => "disable-forwarding",
            Mutation::DropListener { .. } => "drop-listener",
            Mutation::DropAddress { .. } => "drop-address",
        }
    }
}

/// A mutation of one file: what, where in the original text, and in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutant {
    pub mutation: Mutation,
    /// The text the mutated element came from.
    pub span: Span,
    /// `drop route `default via 10.1.5.1` of `PC``.
    pub description: String,
}

/// A file ready to be mutated: its expanded form and its checks as written.
#[derive(Debug, Clone)]
pub struct FuzzTarget {
    expanded: Expanded,
}

impl FuzzTarget {
    /// Reads and loads a file.
    pub fn load(path: &Path) -> Result<Self, Box<FileReport>> {
        load_path_expanded(path).map(|expanded| Self { expanded })
    }

    /// Loads text; `name` is the file name shown in positions.
    pub fn from_text(name: &str, text: &str) -> Result<Self, Box<FileReport>> {
        load_expanded(SourceFile::new(name, text)).map(|expanded| Self { expanded })
    }

    /// The network as the file describes it.
    pub fn network(&self) -> &Network {
        &self.expanded.loaded.network
    }

    /// The file's text.
    pub fn source(&self) -> &SourceFile {
        &self.expanded.loaded.report.source
    }

    /// Every mutation of the file, in the order of the text it changes.
    pub fn mutants(&self) -> Vec<Mutant> {
        let mut out = Vec::new();
        let forwarding = self.expanded.node_key_spans("forwarding");
        for (n, node) in self.expanded.file.nodes.iter().enumerate() {
            let name = &node.name.value;
            if node.forwarding == Some(true) {
                let span = forwarding.get(name).copied().unwrap_or(node.name.span);
                out.push(Mutant {
                    mutation: Mutation::DisableForwarding { node: n },
                    span,
                    description: format!("turn forwarding off on `{name}`"),
                });
            }
            for (i, iface) in node.interfaces.iter().enumerate() {
                for (k, addr) in iface.addresses.iter().enumerate() {
                    out.push(Mutant {
                        mutation: Mutation::DropAddress {
                            node: n,
                            interface: i,
                            address: k,
                        },
                        span: addr.span,
                        description: format!(
                            "drop address {} of `{name}` interface `{}`",
                            addr.value, iface.name.value
                        ),
                    });
                }
            }
            for (k, route) in node.routes.iter().enumerate() {
                let mut words = route.to.value.clone();
                if let Some(via) = &route.via {
                    let _ = write!(words, " via {}", via.value);
                }
                if let Some(dev) = &route.dev {
                    let _ = write!(words, " dev {}", dev.value);
                }
                out.push(Mutant {
                    mutation: Mutation::DropRoute { node: n, route: k },
                    span: route.to.span,
                    description: format!("drop route `{words}` of `{name}`"),
                });
            }
            for (k, listen) in node.listen.iter().enumerate() {
                let proto = match listen.proto.as_ref().map(|p| p.value) {
                    Some(ProtoName::Udp) => "udp",
                    _ => "tcp",
                };
                out.push(Mutant {
                    mutation: Mutation::DropListener {
                        node: n,
                        listener: k,
                    },
                    span: listen.port.span,
                    description: format!("drop listener {proto}/{} of `{name}`", listen.port.value),
                });
            }
            for (k, rule) in node.nat.iter().enumerate() {
                out.push(Mutant {
                    mutation: Mutation::DropNatRule { node: n, rule: k },
                    span: rule_span(rule),
                    description: format!("drop nat rule {} of `{name}` ({})", k + 1, words(rule)),
                });
            }
            let Some(firewall) = &node.firewall else {
                continue;
            };
            for chain in CHAINS {
                let Some(spec) = chain_of(firewall, chain) else {
                    continue;
                };
                if let Some(policy) = &spec.policy
                    && policy.value == PolicyName::Drop
                {
                    out.push(Mutant {
                        mutation: Mutation::AcceptPolicy { node: n, chain },
                        span: policy.span,
                        description: format!(
                            "remove `policy: drop` of the {} chain of `{name}` (it then accepts)",
                            chain.name()
                        ),
                    });
                }
                for (k, rule) in spec.rules.iter().enumerate() {
                    let Some(action) = &rule.action else {
                        continue;
                    };
                    let (from, to) = match action.value {
                        ActionName::Accept => ("accept", "drop"),
                        ActionName::Drop => ("drop", "accept"),
                        ActionName::Reject => ("reject", "accept"),
                    };
                    let span = match rule_span(rule) {
                        s if s.is_unknown() => action.span,
                        s => s,
                    };
                    out.push(Mutant {
                        mutation: Mutation::FlipFilterRule {
                            node: n,
                            chain,
                            rule: k,
                        },
                        span,
                        description: format!(
                            "flip {} rule {} of `{name}` ({}): {from} → {to}",
                            chain.name(),
                            k + 1,
                            words(rule)
                        ),
                    });
                }
            }
        }
        out.retain(|m| !m.span.is_unknown());
        // Stable: elements at one position keep the order of the expanded file.
        out.sort_by_key(|m| m.span.offset);
        out
    }

    /// The network the file describes with `mutation` applied, or the errors that make that
    /// variant invalid.
    pub fn apply(&self, mutation: &Mutation) -> Result<Network, Vec<Diagnostic>> {
        let mut file = self.expanded.file.clone();
        if mutate(&mut file, mutation).is_none() {
            let d = Diagnostic::error(
                Code::BadValue,
                Span::default(),
                "this mutation names an element the file does not have",
            )
            .hint("take mutations from this file's `FuzzTarget::mutants()`");
            return Err(vec![d]);
        }
        self.expanded.lower(&file)
    }
}

const CHAINS: [ChainName; 4] = [
    ChainName::Prerouting,
    ChainName::Input,
    ChainName::Forward,
    ChainName::Output,
];

fn chain_of(firewall: &FirewallSpec, chain: ChainName) -> Option<&ChainSpec> {
    match chain {
        ChainName::Prerouting => firewall.prerouting.as_ref(),
        ChainName::Input => firewall.input.as_ref(),
        ChainName::Forward => firewall.forward.as_ref(),
        ChainName::Output => firewall.output.as_ref(),
        // The file's `firewall:` has no raw chains.
        ChainName::RawPrerouting | ChainName::RawOutput => None,
    }
}

fn chain_mut(firewall: &mut FirewallSpec, chain: ChainName) -> Option<&mut ChainSpec> {
    match chain {
        ChainName::Prerouting => firewall.prerouting.as_mut(),
        ChainName::Input => firewall.input.as_mut(),
        ChainName::Forward => firewall.forward.as_mut(),
        ChainName::Output => firewall.output.as_mut(),
        ChainName::RawPrerouting | ChainName::RawOutput => None,
    }
}

/// Applies a mutation in place; `None` when the element is not there.
fn mutate(file: &mut TopologyFile, mutation: &Mutation) -> Option<()> {
    let remove = |list_len: usize, k: usize| (k < list_len).then_some(k);
    match *mutation {
        Mutation::DropRoute { node, route } => {
            let routes = &mut file.nodes.get_mut(node)?.routes;
            routes.remove(remove(routes.len(), route)?);
        }
        Mutation::DropNatRule { node, rule } => {
            let nat = &mut file.nodes.get_mut(node)?.nat;
            nat.remove(remove(nat.len(), rule)?);
        }
        Mutation::FlipFilterRule { node, chain, rule } => {
            let firewall = file.nodes.get_mut(node)?.firewall.as_mut()?;
            let rule = chain_mut(firewall, chain)?.rules.get_mut(rule)?;
            let action = rule.action.as_mut()?;
            action.value = match action.value {
                ActionName::Accept => ActionName::Drop,
                ActionName::Drop | ActionName::Reject => ActionName::Accept,
            };
            rule.reject_with = None;
        }
        Mutation::AcceptPolicy { node, chain } => {
            let firewall = file.nodes.get_mut(node)?.firewall.as_mut()?;
            chain_mut(firewall, chain)?.policy.take()?;
        }
        Mutation::DisableForwarding { node } => {
            file.nodes.get_mut(node)?.forwarding = Some(false);
        }
        Mutation::DropListener { node, listener } => {
            let listen = &mut file.nodes.get_mut(node)?.listen;
            listen.remove(remove(listen.len(), listener)?);
        }
        Mutation::DropAddress {
            node,
            interface,
            address,
        } => {
            let iface = file.nodes.get_mut(node)?.interfaces.get_mut(interface)?;
            let addresses = &mut iface.addresses;
            addresses.remove(remove(addresses.len(), address)?);
        }
    }
    Some(())
}

/// The position of a rule: its first match or NAT key written in the file (a platform's rule
/// keeps the line of the entry it came from there), else unknown.
fn rule_span(rule: &RuleSpec) -> Span {
    let s = |l: &Option<Located<String>>| l.as_ref().map(|l| l.span);
    [
        s(&rule.in_iface),
        s(&rule.not_in),
        s(&rule.out_iface),
        s(&rule.not_out),
        s(&rule.src),
        s(&rule.not_src),
        s(&rule.dst),
        s(&rule.not_dst),
        rule.proto.as_ref().map(|p| p.span),
        s(&rule.dport),
        s(&rule.not_dport),
        rule.state.first().map(|st| st.span),
        rule.masquerade.as_ref().map(|m| m.span),
        s(&rule.snat),
        s(&rule.dnat),
        rule.action.as_ref().map(|a| a.span),
    ]
    .into_iter()
    .flatten()
    .filter(|span| !span.is_unknown())
    .min_by_key(|span| span.offset)
    .unwrap_or_default()
}

/// A rule in words: its comment, or its keys (`out eth0, masquerade`).
fn words(rule: &RuleSpec) -> String {
    if let Some(comment) = &rule.comment {
        return comment.clone();
    }
    let mut parts = Vec::new();
    let mut key = |k: &str, v: &Option<Located<String>>| {
        if let Some(v) = v {
            parts.push(format!("{k} {}", v.value));
        }
    };
    key("in", &rule.in_iface);
    key("not_in", &rule.not_in);
    key("out", &rule.out_iface);
    key("not_out", &rule.not_out);
    key("src", &rule.src);
    key("not_src", &rule.not_src);
    key("dst", &rule.dst);
    key("not_dst", &rule.not_dst);
    key("dport", &rule.dport);
    key("not_dport", &rule.not_dport);
    key("snat", &rule.snat);
    key("dnat", &rule.dnat);
    if rule.masquerade.as_ref().is_some_and(|m| m.value) {
        parts.push("masquerade".into());
    }
    if parts.is_empty() {
        "every packet".into()
    } else {
        parts.join(", ")
    }
}

/// How many mutations to run, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuzzOptions {
    /// At most this many mutations (chosen with `seed`), reported in file order.
    pub limit: Option<usize>,
    pub seed: u64,
}

/// What one mutation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// These checks hold on the file and not on the mutated file.
    Breaks(Vec<Status>),
    /// Every check that held still holds: nothing depends on this element.
    Nothing,
    /// The mutated file does not validate; its first error.
    Invalid(Diagnostic),
}

/// One mutation and its effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutantResult {
    pub mutant: Mutant,
    pub effect: Effect,
}

/// A fuzz run over one file.
#[derive(Debug, Clone)]
pub struct FuzzReport {
    /// The file's name and text (for positions and the mutated lines).
    pub source: SourceFile,
    /// Mutations the file offers.
    pub available: usize,
    /// Every check on the file as written.
    pub baseline: Vec<Status>,
    /// The mutations run, in file order.
    pub results: Vec<MutantResult>,
}

/// Runs the mutations of `target` that `options` choose.
pub fn fuzz(target: &FuzzTarget, options: &FuzzOptions, config: &SimConfig) -> FuzzReport {
    let all = target.mutants();
    let available = all.len();
    let chosen = choose(all, options);
    let baseline = statuses(target.network(), config, &[], Judgement::Exact);
    let results = chosen
        .into_par_iter()
        .map(|mutant| {
            let effect = match target.apply(&mutant.mutation) {
                Err(errors) => match errors.into_iter().next() {
                    Some(first) => Effect::Invalid(first),
                    None => Effect::Nothing,
                },
                Ok(net) => {
                    let after = statuses(&net, config, &[], Judgement::Exact);
                    let broke: Vec<Status> =
                        broken(&baseline, &after).into_iter().cloned().collect();
                    if broke.is_empty() {
                        Effect::Nothing
                    } else {
                        Effect::Breaks(broke)
                    }
                }
            };
            MutantResult { mutant, effect }
        })
        .collect();
    FuzzReport {
        source: target.source().clone(),
        available,
        baseline,
        results,
    }
}

/// All mutants, or `limit` of them drawn with the seed, in file order.
fn choose(all: Vec<Mutant>, options: &FuzzOptions) -> Vec<Mutant> {
    let Some(limit) = options.limit.filter(|&l| l < all.len()) else {
        return all;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..all.len()).collect();
    // Fisher-Yates, drawing from the seeded generator.
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut picked: Vec<usize> = order.into_iter().take(limit).collect();
    picked.sort_unstable();
    let mut all: Vec<Option<Mutant>> = all.into_iter().map(Some).collect();
    picked
        .into_iter()
        .filter_map(|i| all.get_mut(i).and_then(Option::take))
        .collect()
}

impl FuzzReport {
    /// How many mutations had an effect that `pick` chooses.
    pub fn count(&self, pick: impl Fn(&Effect) -> bool) -> usize {
        self.results.iter().filter(|r| pick(&r.effect)).count()
    }

    /// `file:line:column`.
    pub fn at(&self, span: Span) -> String {
        format!("{}:{span}", self.source.name())
    }

    /// The JSON record of the report (its text is `render::fuzz_text`).
    pub fn json(&self) -> FuzzRecord<'_> {
        let mutations = self
            .results
            .iter()
            .map(|r| {
                let span = r.mutant.span;
                let (effect, breaks, invalid) = match &r.effect {
                    Effect::Breaks(b) => ("breaks", b.iter().map(status_json).collect(), None),
                    Effect::Nothing => ("nothing", Vec::new(), None),
                    Effect::Invalid(d) => (
                        "invalid",
                        Vec::new(),
                        Some(InvalidRecord {
                            code: d.code,
                            column: d.span.map(|s| s.column),
                            line: d.span.map(|s| s.line),
                            message: &d.message,
                        }),
                    ),
                };
                MutationRecord {
                    breaks,
                    column: span.column,
                    description: &r.mutant.description,
                    effect,
                    invalid,
                    kind: r.mutant.mutation.kind(),
                    line: span.line,
                    text: self.source.line_text(span.line).trim(),
                }
            })
            .collect();
        FuzzRecord {
            available: self.available,
            checks: self
                .baseline
                .iter()
                .map(|s| CheckRecord {
                    check: match s.subject {
                        Subject::Invariant => "invariant",
                        Subject::Expectation => "expect",
                    },
                    holds: s.holds,
                    label: &s.label,
                    origin: &s.origin,
                })
                .collect(),
            file: self.source.name(),
            mutations,
        }
    }
}

/// `fuzz --format json`. Fields of each record in alphabetical order: the order of this
/// output since its first version.
#[derive(Debug, Clone, Serialize)]
pub struct FuzzRecord<'a> {
    /// Mutations the file offers (more than were run with `--limit`).
    pub available: usize,
    /// The checks of the file, as they are before any mutation.
    pub checks: Vec<CheckRecord<'a>>,
    pub file: &'a str,
    pub mutations: Vec<MutationRecord<'a>>,
}

/// A check of the file (an invariant or an expectation) before any mutation.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRecord<'a> {
    /// `invariant` or `expect`.
    pub check: &'static str,
    pub holds: bool,
    pub label: &'a str,
    pub origin: &'a Origin,
}

/// One mutation and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct MutationRecord<'a> {
    /// The checks it broke.
    pub breaks: Vec<StatusRecord>,
    pub column: u32,
    pub description: &'a str,
    /// `breaks`, `nothing` or `invalid`.
    pub effect: &'static str,
    /// The diagnostic, when the mutated file is invalid.
    pub invalid: Option<InvalidRecord<'a>>,
    pub kind: &'static str,
    pub line: u32,
    /// The line of the file it changes.
    pub text: &'a str,
}

/// The diagnostic of a mutated file that no longer loads.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidRecord<'a> {
    pub code: Code,
    pub column: Option<u32>,
    pub line: Option<u32>,
    pub message: &'a str,
}
