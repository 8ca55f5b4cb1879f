//! A platform daemon's rules (dockerd's, from the `docker:` section) put together with the
//! node's own: the daemon started after the node's own rules were in place, so the rules it
//! inserted (`-I`) sit above them and the rules it appended (`-A`) below, chain by chain; its
//! chains come after the node's own user chains; the rules the file writes for the daemon's
//! user chain (`DOCKER-USER`) go first in that chain. docs/platform-semantics.md, "Docker",
//! **Rules**.

use super::lower::Lowering;
use super::lower_netfilter::Place;
use crate::format::file::{BeforeOwn, PlatformRules};
use crate::format::{Code, Diagnostic};
use crate::model::{
    ChainId, ChainName, FilterRule, Flow, NatAction, NatHook, NatRule, Netfilter, Node,
    RuleTarget as Target, Verdict,
};

impl Lowering<'_> {
    /// `own` with `platform`'s rules around it.
    pub(super) fn with_platform(
        &mut self,
        node: &Node,
        own: Option<Box<Netfilter>>,
        platform: &PlatformRules,
    ) -> Option<Box<Netfilter>> {
        let mut daemon = self.read_rules_text(node, &platform.text)?;
        let fix = &platform.fix;
        for rule in daemon.forward.rules.iter_mut().chain(
            daemon
                .filter_chains
                .iter_mut()
                .flat_map(|c| c.rules.iter_mut()),
        ) {
            rule.platform_fix = fix.clone();
        }
        if daemon.forward.policy == Verdict::Drop {
            daemon.forward.policy_comment = Some(platform.policy_comment.clone());
            daemon.forward.policy_fix = fix.clone();
        }
        if let Some((name, specs)) = &platform.user_chain {
            let mut rules = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                let place = Place {
                    what: format!("rule {} of {name} on `{}`", i + 1, node.name),
                    node,
                };
                if let Some(mut rule) = self.filter_rule(&place, ChainName::Forward, spec) {
                    rule.platform_fix = fix.clone();
                    rules.push(rule);
                }
            }
            if let Some(chain) = daemon.filter_chains.iter_mut().find(|c| &c.name == name) {
                chain.rules.splice(0..0, rules);
            }
        }
        let own = own.map(|b| *b).unwrap_or_default();
        // What a real dockerd must find on the host before it starts (`emulate --dockerd`).
        let own_text = crate::topology::iptables::save(&self.net, &own);
        if let Some(engine) = self.net.docker.iter_mut().find(|e| e.host == node.name) {
            engine.own_rules_text = Some(own_text).filter(|t| !t.is_empty());
        }
        for (own_names, daemon_names) in [
            (names(&own.filter_chains), names(&daemon.filter_chains)),
            (names(&own.nat_chains), names(&daemon.nat_chains)),
        ] {
            if let Some(clash) = daemon_names.iter().find(|n| own_names.contains(n)) {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        platform.text.value,
                        format!(
                            "node `{}` has a chain `{clash}` of its own, and Docker creates one by that name",
                            node.name
                        ),
                    )
                    .hint("leave Docker's chains to the `docker:` section, or write the host's whole `iptables-save` without a `docker:` section"),
                );
                return None;
            }
        }
        Some(Box::new(merge(own, daemon, platform.before_own)))
    }
}

/// The first `top` of the daemon's rules `theirs` above the rules of `mine`, the rest below;
/// `mine`'s own rules start after the first ones.
fn around(mine: &mut crate::model::Chain, mut theirs: Vec<FilterRule>, top: usize) {
    let top = top.min(theirs.len());
    let below = theirs.split_off(top);
    mine.rules.splice(0..0, theirs);
    mine.rules.extend(below);
    mine.own_start = top;
}

fn names<R>(chains: &[crate::model::UserChain<R>]) -> Vec<&str> {
    chains.iter().map(|c| c.name.as_str()).collect()
}

/// `daemon`'s rules around `own`'s: in each built-in chain the first `before` of the daemon's
/// rules, then the node's own, then the rest of the daemon's; the daemon's user chains after
/// the node's own (its jumps renumbered); FORWARD's policy the daemon's when it set DROP.
fn merge(mut own: Netfilter, mut daemon: Netfilter, before: BeforeOwn) -> Netfilter {
    let filter_offset = own.filter_chains.len() as u16;
    let nat_offset = own.nat_chains.len() as u16;
    let renumber = |flow: &mut Flow, offset: u16| match flow {
        Flow::Jump(ChainId(id)) | Flow::Goto(ChainId(id)) => *id += offset,
        Flow::Return => {}
    };
    let filter_rules = daemon.forward.rules.iter_mut().chain(
        daemon
            .filter_chains
            .iter_mut()
            .flat_map(|c| c.rules.iter_mut()),
    );
    for rule in filter_rules {
        if let Target::Flow(flow) = &mut rule.target {
            renumber(flow, filter_offset);
        }
    }
    let nat_rules = daemon.nat.iter_mut().chain(
        daemon
            .nat_chains
            .iter_mut()
            .flat_map(|c| c.rules.iter_mut()),
    );
    for rule in nat_rules {
        if let NatAction::Flow(flow) = &mut rule.action {
            renumber(flow, nat_offset);
        }
    }
    own.filter_chains.append(&mut daemon.filter_chains);
    own.nat_chains.append(&mut daemon.nat_chains);
    // FORWARD and raw PREROUTING: the first rules of the daemon above the node's own.
    around(&mut own.forward, daemon.forward.rules, before.forward);
    around(
        &mut own.raw_prerouting,
        daemon.raw_prerouting.rules,
        before.raw_prerouting,
    );
    if daemon.forward.policy == Verdict::Drop {
        own.forward.policy = Verdict::Drop;
        own.forward.policy_origin = daemon.forward.policy_origin;
        own.forward.policy_comment = daemon.forward.policy_comment;
        own.forward.policy_fix = daemon.forward.policy_fix;
    }
    around(&mut own.input, daemon.input.rules, before.input);
    around(&mut own.output, daemon.output.rules, before.filter_output);
    // mangle PREROUTING and raw OUTPUT: the daemons write none; were they to, above the
    // node's own.
    for (mine, theirs) in [
        (&mut own.prerouting, daemon.prerouting),
        (&mut own.raw_output, daemon.raw_output),
    ] {
        let top = theirs.rules.len();
        around(mine, theirs.rules, top);
    }
    // nat, hook by hook.
    let mut nat = Vec::with_capacity(own.nat.len() + daemon.nat.len());
    for (hook, top) in [
        (NatHook::Prerouting, before.prerouting),
        (NatHook::Output, before.output),
        (NatHook::Postrouting, before.postrouting),
    ] {
        let of = |rules: &[NatRule]| -> Vec<NatRule> {
            rules.iter().filter(|r| r.hook == hook).cloned().collect()
        };
        let mut theirs = of(&daemon.nat);
        let below = theirs.split_off(top.min(theirs.len()));
        nat.extend(theirs);
        nat.extend(of(&own.nat));
        nat.extend(below);
    }
    own.nat = nat;
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilterRule, Match, Origin, UserChain};

    fn rule(target: Target) -> FilterRule {
        FilterRule {
            matches: Match::default(),
            target,
            origin: Origin::default(),
            comment: None,
            platform_fix: None,
        }
    }

    fn nat(hook: NatHook, action: NatAction) -> NatRule {
        NatRule {
            hook,
            matches: Match::default(),
            action,
            origin: Origin::default(),
            comment: None,
        }
    }

    fn chain(name: &str) -> UserChain<FilterRule> {
        UserChain {
            name: name.into(),
            rules: vec![rule(Target::Flow(Flow::Return))],
            origin: Origin::default(),
        }
    }

    #[test]
    fn inserted_rules_go_above_the_nodes_own_and_appended_ones_below() {
        let mut own = Netfilter::default();
        own.forward.rules.push(rule(Verdict::Accept.into()));
        let mut daemon = Netfilter::default();
        daemon.forward.rules = vec![
            rule(Target::Flow(Flow::Jump(ChainId(0)))),
            rule(Verdict::Drop.into()),
        ];
        daemon.filter_chains.push(chain("DOCKER-USER"));
        let before = BeforeOwn {
            forward: 1,
            ..BeforeOwn::default()
        };
        let nf = merge(own, daemon, before);
        let targets: Vec<&Target> = nf.forward.rules.iter().map(|r| &r.target).collect();
        assert_eq!(
            targets,
            [
                &Target::Flow(Flow::Jump(ChainId(0))),
                &Target::Verdict(Verdict::Accept),
                &Target::Verdict(Verdict::Drop)
            ]
        );
        assert_eq!(nf.forward.own_start, 1);
    }

    #[test]
    fn the_daemons_chains_follow_the_nodes_own_and_its_jumps_are_renumbered() {
        let mut own = Netfilter::default();
        own.filter_chains.push(chain("MINE"));
        let mut daemon = Netfilter::default();
        daemon.forward.rules = vec![rule(Target::Flow(Flow::Jump(ChainId(0))))];
        daemon.filter_chains.push(chain("DOCKER-USER"));
        let nf = merge(
            own,
            daemon,
            BeforeOwn {
                forward: 1,
                ..BeforeOwn::default()
            },
        );
        assert_eq!(names(&nf.filter_chains), ["MINE", "DOCKER-USER"]);
        assert_eq!(
            nf.forward.rules[0].target,
            Target::Flow(Flow::Jump(ChainId(1)))
        );
    }

    #[test]
    fn nat_rules_sit_hook_by_hook_around_the_nodes_own() {
        let own = Netfilter {
            nat: vec![
                nat(NatHook::Postrouting, NatAction::Accept),
                nat(NatHook::Prerouting, NatAction::Accept),
            ],
            ..Netfilter::default()
        };
        let daemon = Netfilter {
            nat: vec![
                nat(NatHook::Prerouting, NatAction::Flow(Flow::Jump(ChainId(0)))),
                nat(NatHook::Postrouting, NatAction::Flow(Flow::Return)),
                nat(
                    NatHook::Postrouting,
                    NatAction::Flow(Flow::Jump(ChainId(0))),
                ),
            ],
            ..Netfilter::default()
        };
        let before = BeforeOwn {
            prerouting: 0,
            postrouting: 1,
            ..BeforeOwn::default()
        };
        let nf = merge(own, daemon, before);
        let order: Vec<(NatHook, &NatAction)> =
            nf.nat.iter().map(|r| (r.hook, &r.action)).collect();
        assert_eq!(
            order,
            [
                (NatHook::Prerouting, &NatAction::Accept),
                (
                    NatHook::Prerouting,
                    &NatAction::Flow(Flow::Jump(ChainId(0)))
                ),
                (NatHook::Postrouting, &NatAction::Flow(Flow::Return)),
                (NatHook::Postrouting, &NatAction::Accept),
                (
                    NatHook::Postrouting,
                    &NatAction::Flow(Flow::Jump(ChainId(0)))
                ),
            ]
        );
    }

    #[test]
    fn a_drop_policy_of_the_daemon_replaces_the_nodes() {
        let own = Netfilter::default();
        let mut daemon = Netfilter::default();
        daemon.forward.policy = Verdict::Drop;
        let nf = merge(own, daemon, BeforeOwn::default());
        assert_eq!(nf.forward.policy, Verdict::Drop);
        let mut own = Netfilter::default();
        own.forward.policy = Verdict::Drop;
        let nf = merge(own, Netfilter::default(), BeforeOwn::default());
        assert_eq!(nf.forward.policy, Verdict::Drop);
    }

    #[test]
    fn the_daemons_appended_raw_rules_follow_the_nodes_own() {
        let mut own = Netfilter::default();
        own.raw_prerouting.rules.push(rule(Verdict::Accept.into()));
        let mut daemon = Netfilter::default();
        daemon.raw_prerouting.rules.push(rule(Verdict::Drop.into()));
        let nf = merge(own, daemon, BeforeOwn::default());
        let targets: Vec<&Target> = nf.raw_prerouting.rules.iter().map(|r| &r.target).collect();
        assert_eq!(
            targets,
            [
                &Target::Verdict(Verdict::Accept),
                &Target::Verdict(Verdict::Drop)
            ]
        );
        assert_eq!(nf.raw_prerouting.own_start, 0);
    }

    #[test]
    fn the_nodes_own_accepts_stay_beside_the_daemons_rules() {
        // Alone, an ACCEPT under an ACCEPT policy changes nothing; below Docker's inserted
        // rules and above its appended icc DROP, it decides.
        let text = "segments: [{ name: lan }]\nnodes:\n  - name: h\n    forwarding: true\n    interfaces: [{ name: eth0, segment: lan, addresses: [10.0.0.1/24] }]\n    firewall: { forward: { rules: [{ src: 172.17.0.0/16, action: accept }] } }\ndocker:\n  engines:\n    - { host: h, icc: false }\n";
        let net = crate::topology::load_str("t.yaml", text)
            .expect("valid")
            .network;
        let h = net.node_by_name("h").expect("host");
        let forward = &h.netfilter.as_ref().expect("rules").forward;
        let own = forward
            .rules
            .get(forward.own_start)
            .expect("the node's rule");
        assert_eq!(own.target, Target::Verdict(Verdict::Accept));
        assert_eq!(own.matches.src, "172.17.0.0/16".parse().ok());
        assert_eq!(
            forward.rules.last().map(|r| &r.target),
            Some(&Target::Verdict(Verdict::Drop)),
            "the icc DROP, appended after it"
        );
    }
}
