//! NAT engines as written into the topology (docs/platform-semantics.md, "VirtualBox"): the
//! hidden engine node with its private segment and its link-local /30 to the host, the host's
//! masquerading and relaying of the engine's traffic, and port forwards (DNAT on the host to
//! the engine, DNAT in the engine to the guest, which sees the engine's gateway address as the
//! client).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Host;
use super::emit::{Emitter, interface};
use super::plan::{Engine, Forward};
use crate::format::file::{
    ActionName, ChainSpec, FirewallSpec, NatChainName, NodeSpec, PolicyName, RouteSpec, RuleSpec,
    SegmentSpec, StateName, TopologyFile,
};
use crate::format::{Located, Span};

/// The interface names of an engine: toward its VMs and toward the host.
const INT: &str = "int";
const EXT: &str = "ext";

/// The /30 between a NAT engine and its host.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    pub host: Ipv4Addr,
    pub engine: Ipv4Addr,
}

impl Link {
    /// Link `k`: 169.254.(k/64).(4(k%64)+1 | +2)/30.
    fn numbered(k: usize) -> Self {
        let third = (k / 64) as u8;
        let base = ((k % 64) * 4) as u8;
        Self {
            host: Ipv4Addr::new(169, 254, third, base + 1),
            engine: Ipv4Addr::new(169, 254, third, base + 2),
        }
    }
}

/// A NAT engine once written: what its port forwards need.
#[derive(Debug, Clone)]
pub(super) struct EngineNode {
    /// Its position in `file.nodes`.
    index: usize,
    /// The position of its host in `file.nodes`, and the host's interface on the link.
    host: usize,
    host_if: String,
    link: Link,
    /// The engine's address toward the VMs, which forwarded connections come from.
    gateway: Ipv4Addr,
}

impl Emitter {
    /// The engine node, its segments and its link to `host`, with the host's side of the NAT.
    pub(super) fn build_engine(
        &mut self,
        file: &mut TopologyFile,
        host: &Host,
        engine: &Engine,
    ) -> EngineNode {
        let span = engine.span;
        let link = Link::numbered(self.links);
        let link_segment = format!("{}-link", engine.name);
        let host_if = format!("vboxnat{}", self.links);
        self.links += 1;
        file.segments.push(SegmentSpec {
            name: Located::at(engine.name.clone(), span),
            note: Some(engine.note.clone()),
            ..SegmentSpec::default()
        });
        file.segments.push(SegmentSpec {
            name: Located::at(link_segment.clone(), span),
            ..SegmentSpec::default()
        });
        file.nodes.push(engine_node(engine, link, &link_segment));
        let index = file.nodes.len() - 1;
        // The host: the link, and masquerading the engine's traffic out of its own interfaces.
        let host_link = Ipv4Net::new_assert(link.host, 30);
        let node = &mut file.nodes[host.index];
        node.interfaces
            .push(interface(&host_if, &link_segment, &[host_link], span));
        node.nat.push(RuleSpec {
            masquerade: Some(Located::at(true, span)),
            src: Some(Located::at(link.engine.to_string(), span)),
            comment: Some(format!(
                "VirtualBox on `{}` sends the traffic of {} from its own address",
                host.name,
                engine_words(engine)
            )),
            ..RuleSpec::default()
        });
        host_relays(node, &host_if, span, &host.name);
        EngineNode {
            index,
            host: host.index,
            host_if,
            link,
            gateway: engine.gateway,
        }
    }
}

/// How rule comments name the engine.
fn engine_words(engine: &Engine) -> String {
    if engine.per_vm {
        format!("VirtualBox NAT engine `{}`", engine.name)
    } else {
        format!("VirtualBox NAT network engine `{}`", engine.name)
    }
}

/// The engine node: `int` on its private network at the gateway (and, for a VM's own engine,
/// the DNS proxy .3 next to it), `ext` on the link; it masquerades what leaves through `ext`
/// and lets nothing in unasked, except through port forwards.
fn engine_node(engine: &Engine, link: Link, link_segment: &str) -> NodeSpec {
    let span = engine.span;
    let what = engine_words(engine);
    let prefix = engine.net.prefix_len();
    let mut addresses = vec![Ipv4Net::new_assert(engine.gateway, prefix)];
    if engine.per_vm {
        // DNS proxy .3 and TFTP .4 answer too.
        let dns = Ipv4Addr::from(u32::from(engine.gateway) + 1);
        addresses.push(Ipv4Net::new_assert(dns, prefix));
    }
    let accept = |state: Vec<Located<StateName>>, in_iface, comment| RuleSpec {
        state,
        in_iface,
        action: Some(Located::at(ActionName::Accept, span)),
        comment: Some(comment),
        ..RuleSpec::default()
    };
    let answers = vec![
        Located::at(StateName::Established, span),
        Located::at(StateName::Related, span),
    ];
    NodeSpec {
        name: Located::at(engine.name.clone(), span),
        forwarding: Some(true),
        interfaces: vec![
            interface(INT, &engine.name, &addresses, span),
            interface(
                EXT,
                link_segment,
                &[Ipv4Net::new_assert(link.engine, 30)],
                span,
            ),
        ],
        routes: vec![RouteSpec {
            to: Located::at("default".into(), span),
            via: Some(Located::at(link.host.to_string(), span)),
            ..RouteSpec::default()
        }],
        nat: vec![RuleSpec {
            masquerade: Some(Located::at(true, span)),
            out_iface: Some(Located::at(EXT.into(), span)),
            comment: Some(format!("{what}: the VMs' traffic leaves through the host")),
            ..RuleSpec::default()
        }],
        firewall: Some(Box::new(FirewallSpec {
            forward: Some(ChainSpec {
                policy: Some(Located::at(PolicyName::Drop, span)),
                rules: vec![
                    accept(answers, None, format!("{what}: answers")),
                    accept(
                        Vec::new(),
                        Some(Located::at(INT.into(), span)),
                        format!("{what}: the VMs' own connections"),
                    ),
                ],
            }),
            ..Default::default()
        })),
        ..NodeSpec::default()
    }
}

/// The host relays its NAT engines' traffic and nothing else (it is not a router otherwise).
fn host_relays(host: &mut NodeSpec, host_if: &str, span: Span, host_name: &str) {
    let was_router = host.forwarding.unwrap_or(false);
    host.forwarding = Some(true);
    let firewall = host.firewall.get_or_insert_with(Box::default);
    let chain = firewall.forward.get_or_insert_with(|| ChainSpec {
        policy: (!was_router).then(|| Located::at(PolicyName::Drop, span)),
        rules: vec![RuleSpec {
            state: vec![
                Located::at(StateName::Established, span),
                Located::at(StateName::Related, span),
            ],
            action: Some(Located::at(ActionName::Accept, span)),
            comment: Some(format!(
                "VirtualBox on `{host_name}`: answers to its VMs' connections"
            )),
            ..RuleSpec::default()
        }],
    });
    chain.rules.push(RuleSpec {
        in_iface: Some(Located::at(host_if.to_owned(), span)),
        action: Some(Located::at(ActionName::Accept, span)),
        comment: Some(format!(
            "VirtualBox on `{host_name}` relays its VMs' NAT traffic"
        )),
        ..RuleSpec::default()
    });
    chain.rules.push(RuleSpec {
        out_iface: Some(Located::at(host_if.to_owned(), span)),
        action: Some(Located::at(ActionName::Accept, span)),
        comment: Some(format!(
            "VirtualBox on `{host_name}`: port forwards into its VMs"
        )),
        ..RuleSpec::default()
    });
}

impl EngineNode {
    /// Port forwards of a VM on `host` through this engine: DNAT on the host (host port →
    /// engine) and in the engine (→ guest), the guest seeing the engine's gateway address as
    /// the client.
    pub(super) fn add_forwards(
        &self,
        file: &mut TopologyFile,
        host: &Host,
        forwards: &[Forward<'_>],
    ) {
        // Only the engine's own host has an interface on its link. A NAT network is shared by
        // name across hosts here; a VM on another host gets rules naming no interface.
        let host_if = if host.index == self.host {
            self.host_if.as_str()
        } else {
            ""
        };
        for f in forwards {
            let words = f.words(&host.name);
            let node = &mut file.nodes[host.index];
            node.nat
                .push(self.host_dnat(f, NatChainName::Prerouting, &words));
            node.nat
                .push(self.host_dnat(f, NatChainName::Output, &words));
            // Connections into the engine come from the host's link address (host sockets).
            node.nat.push(RuleSpec {
                out_iface: Some(Located::at(host_if.to_owned(), f.span)),
                proto: Some(Located::at(f.proto, f.span)),
                dport: Some(Located::at(f.host_port.to_string(), f.span)),
                snat: Some(Located::at(self.link.host.to_string(), f.span)),
                comment: Some(words.clone()),
                ..RuleSpec::default()
            });
            self.engine_forward(&mut file.nodes[self.index], f, &words);
        }
    }

    /// The host's DNAT of forward `f` in `chain`: host port → the engine's link address.
    fn host_dnat(&self, f: &Forward<'_>, chain: NatChainName, words: &str) -> RuleSpec {
        let span = f.span;
        RuleSpec {
            proto: Some(Located::at(f.proto, span)),
            dport: Some(Located::at(f.host_port.to_string(), span)),
            dst: f.host_ip.cloned(),
            dst_local: f.host_ip.is_none().then_some(true),
            dnat: Some(Located::at(
                format!("{}:{}", self.link.engine, f.host_port),
                span,
            )),
            chain: Some(Located::at(chain, span)),
            comment: Some(words.to_owned()),
            ..RuleSpec::default()
        }
    }

    /// The engine's side of forward `f`: DNAT to the guest, SNAT to the gateway, and the
    /// FORWARD accept past its policy.
    fn engine_forward(&self, engine: &mut NodeSpec, f: &Forward<'_>, words: &str) {
        let span = f.span;
        engine.nat.push(RuleSpec {
            in_iface: Some(Located::at(EXT.into(), span)),
            proto: Some(Located::at(f.proto, span)),
            dport: Some(Located::at(f.host_port.to_string(), span)),
            dnat: Some(Located::at(format!("{}:{}", f.guest, f.guest_port), span)),
            comment: Some(words.to_owned()),
            ..RuleSpec::default()
        });
        engine.nat.push(RuleSpec {
            out_iface: Some(Located::at(INT.into(), span)),
            proto: Some(Located::at(f.proto, span)),
            dport: Some(Located::at(f.guest_port.to_string(), span)),
            dst: Some(Located::at(f.guest.to_string(), span)),
            snat: Some(Located::at(self.gateway.to_string(), span)),
            comment: Some(format!(
                "{words} (the guest sees the NAT gateway as the client)"
            )),
            ..RuleSpec::default()
        });
        if let Some(chain) = engine.firewall.as_mut().and_then(|f| f.forward.as_mut()) {
            chain.rules.push(RuleSpec {
                in_iface: Some(Located::at(EXT.into(), span)),
                dst: Some(Located::at(f.guest.to_string(), span)),
                proto: Some(Located::at(f.proto, span)),
                dport: Some(Located::at(f.guest_port.to_string(), span)),
                action: Some(Located::at(ActionName::Accept, span)),
                comment: Some(words.to_owned()),
                ..RuleSpec::default()
            });
        }
    }
}
