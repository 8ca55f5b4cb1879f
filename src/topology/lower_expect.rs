//! Lowering `expect:` entries into [`Expectation`]s: exactly one key names the probe and its
//! target, `port` goes with `ssh`, `tcp` and `udp` (which needs it), `ttl` and `max_rtt` with
//! a reply, `status` and `body` with a `curl` expecting one, and the target is an address, a
//! node name or a DNS name of the file.

use super::lower::Lowering;
use crate::format::Located;
use crate::format::file::{ExpectSpec, OutcomeName};
use crate::format::structure::closest;
use crate::format::units;
use crate::format::{Code, Diagnostic};
use crate::model::{Expectation, NodeId, Outcome, Port, Probe, Target};

/// The key of an expectation that names its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKey {
    Ping,
    Ssh,
    Curl,
    Tcp,
    Udp,
}

impl ProbeKey {
    /// The key as the file writes it.
    fn word(self) -> &'static str {
        match self {
            ProbeKey::Ping => "ping",
            ProbeKey::Ssh => "ssh",
            ProbeKey::Curl => "curl",
            ProbeKey::Tcp => "tcp",
            ProbeKey::Udp => "udp",
        }
    }
}

/// The outcome an expectation names.
fn outcome(name: OutcomeName) -> Outcome {
    match name {
        OutcomeName::Reply => Outcome::Reply,
        OutcomeName::Refused => Outcome::Refused,
        OutcomeName::Timeout => Outcome::Timeout,
        OutcomeName::NoRoute => Outcome::NoRoute,
        OutcomeName::NetUnreachable => Outcome::NetUnreachable,
        OutcomeName::HostUnreachable => Outcome::HostUnreachable,
        OutcomeName::Filtered => Outcome::Filtered,
        OutcomeName::TtlExceeded => Outcome::TtlExceeded,
    }
}

impl Lowering<'_> {
    /// Lowers one `expect:` entry; `None` when something in it is wrong (and reported).
    pub(super) fn expectation(&mut self, spec: &ExpectSpec) -> Option<Expectation> {
        let from = self.net.node_by_name(&spec.from.value).map(|n| n.id);
        if from.is_none() {
            self.unknown_node(&spec.from, "probe source");
        }
        let (key, target_text) = self.probe_key(spec)?;
        let (probe, host) = self.expected_probe(key, target_text, spec.port.as_ref())?;
        let target = self.resolve_target(from, &host, target_text);
        let outcome = outcome(spec.outcome.value);
        let ttl = self.expected_ttl(spec);
        let max_rtt = self.expected_rtt(spec);
        self.reply_only_keys(spec, outcome);
        let (from, target) = (from?, target?);
        let origin = self.origin(spec.from.span);
        let (http_status, body) = self.http_checks(spec, &probe, outcome);
        Some(Expectation {
            from,
            probe,
            target,
            outcome,
            ttl,
            max_rtt,
            http_status,
            body,
            origin,
        })
    }

    /// The one key that names the probe, with its target; `None` when there is none or more
    /// than one (reported).
    fn probe_key<'s>(&mut self, spec: &'s ExpectSpec) -> Option<(ProbeKey, &'s Located<String>)> {
        let probes: Vec<(ProbeKey, &Located<String>)> = [
            (ProbeKey::Ping, &spec.ping),
            (ProbeKey::Ssh, &spec.ssh),
            (ProbeKey::Curl, &spec.curl),
            (ProbeKey::Tcp, &spec.tcp),
            (ProbeKey::Udp, &spec.udp),
        ]
        .into_iter()
        .filter_map(|(key, target)| target.as_ref().map(|t| (key, t)))
        .collect();
        match probes.as_slice() {
            [one] => Some(*one),
            [] => {
                self.push(
                    Diagnostic::error(Code::MissingKey, spec.from.span, "this expectation names no probe")
                        .label("which probe?")
                        .hint("add one of `ping: TARGET`, `ssh: TARGET`, `curl: URL`, `tcp: TARGET` or `udp: TARGET`"),
                );
                None
            }
            [first, second, ..] => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        second.1.span,
                        format!(
                            "one expectation has both `{}` and `{}`",
                            first.0.word(),
                            second.0.word()
                        ),
                    )
                    .label("second probe")
                    .hint("write one expectation per probe"),
                );
                None
            }
        }
    }

    /// The probe `key` names, with the `port` given for it, and the host it goes to (for curl,
    /// the URL's).
    fn expected_probe(
        &mut self,
        key: ProbeKey,
        target: &Located<String>,
        port: Option<&Located<u32>>,
    ) -> Option<(Probe, String)> {
        let port = match port {
            Some(p) => Some(self.probe_port(key, p)?),
            None => None,
        };
        let probe = match key {
            ProbeKey::Ping => Probe::Ping,
            ProbeKey::Ssh => Probe::Ssh {
                port: port.unwrap_or(Port::SSH),
            },
            ProbeKey::Curl => return self.curl_probe(target),
            ProbeKey::Tcp | ProbeKey::Udp => {
                let Some(port) = port else {
                    self.push(
                        Diagnostic::error(
                            Code::MissingKey,
                            target.span,
                            format!("a {} probe needs `port:`", key.word()),
                        )
                        .label("to which port?")
                        .hint("add `port: NUMBER`"),
                    );
                    return None;
                };
                if key == ProbeKey::Tcp {
                    Probe::Tcp { port }
                } else {
                    Probe::Udp { port }
                }
            }
        };
        Some((probe, target.value.clone()))
    }

    /// The `port:` of an expectation: a port, for a probe that takes one.
    fn probe_port(&mut self, key: ProbeKey, p: &Located<u32>) -> Option<Port> {
        let port = self.port(p)?;
        if matches!(key, ProbeKey::Ping | ProbeKey::Curl) {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    p.span,
                    format!("`port: {port}` does not apply to {}", key.word()),
                )
                .label("not used")
                .hint(if key == ProbeKey::Curl {
                    "put the port in the URL: `http://HOST:PORT/`"
                } else {
                    "ping has no port: remove it, or use `tcp:`/`udp:`"
                }),
            );
            return None;
        }
        Some(port)
    }

    /// A curl of the URL `url`, and the URL's host.
    fn curl_probe(&mut self, url: &Located<String>) -> Option<(Probe, String)> {
        match units::parse_http_url(url) {
            Ok(parsed) => {
                let port = Port::new(parsed.port)?;
                let probe = Probe::Curl {
                    port,
                    path: parsed.path,
                };
                Some((probe, parsed.host))
            }
            Err(e) => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        url.span,
                        format!("`{}` is not a URL curl can probe here", url.value),
                    )
                    .label("bad URL")
                    .hint(e),
                );
                None
            }
        }
    }

    /// The `ttl` the reply must arrive with (1 to 255).
    fn expected_ttl(&mut self, spec: &ExpectSpec) -> Option<u8> {
        let t = spec.ttl.as_ref()?;
        let ttl = u8::try_from(t.value).ok().filter(|t| *t >= 1);
        if ttl.is_none() {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    t.span,
                    format!("TTL {} is out of range", t.value),
                )
                .label("must be from 1 to 255"),
            );
        }
        ttl
    }

    /// The `max_rtt` the reply must arrive within.
    fn expected_rtt(&mut self, spec: &ExpectSpec) -> Option<std::time::Duration> {
        let m = spec.max_rtt.as_ref()?;
        match units::parse_duration(m) {
            Ok(d) => Some(d),
            Err(e) => {
                self.bad_value(m, format!("`{}` is not a round-trip time", m.value), e);
                None
            }
        }
    }

    /// Reports `ttl` and `max_rtt` given with an outcome other than a reply.
    fn reply_only_keys(&mut self, spec: &ExpectSpec, outcome: Outcome) {
        for (key, span) in [
            ("ttl", spec.ttl.as_ref().map(|t| t.span)),
            ("max_rtt", spec.max_rtt.as_ref().map(|m| m.span)),
        ] {
            if let Some(span) = span
                && outcome != Outcome::Reply
            {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        span,
                        format!("`{key}` only applies when the outcome is `reply`"),
                    )
                    .label("no reply to measure")
                    .hint(format!("remove `{key}`, or expect `outcome: reply`")),
                );
            }
        }
    }

    /// The HTTP `status` and `body` the answer must have: only for a curl expecting a reply.
    fn http_checks(
        &mut self,
        spec: &ExpectSpec,
        probe: &Probe,
        outcome: Outcome,
    ) -> (Option<u16>, Option<String>) {
        let answered = matches!(probe, Probe::Curl { .. }) && outcome == Outcome::Reply;
        let mut http_status = None;
        if let Some(status) = &spec.status {
            match self.http_status(status) {
                Some(s) if answered => http_status = Some(s),
                Some(_) => self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        status.span,
                        "`status` only applies to a `curl` expecting `reply`",
                    )
                    .label("no HTTP answer to check")
                    .hint("remove `status`, or use it with `curl:` and `outcome: reply`"),
                ),
                None => {}
            }
        }
        let mut body = None;
        if let Some(text) = &spec.body {
            if answered {
                body = Some(text.value.clone());
            } else {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        text.span,
                        "`body` only applies to a `curl` expecting `reply`",
                    )
                    .label("no HTTP answer to check")
                    .hint("remove `body`, or use it with `curl:` and `outcome: reply`"),
                );
            }
        }
        (http_status, body)
    }

    fn unknown_node(&mut self, name: &Located<String>, role: &str) {
        let names: Vec<&str> = self.net.nodes.iter().map(|n| n.name.as_str()).collect();
        let hint = match closest(&name.value, names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("nodes in this file: {}", names.join(", ")),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                name.span,
                format!("{role} `{}` is not a node of this file", name.value),
            )
            .label("unknown node")
            .hint(hint),
        );
    }

    /// An address, a node name or a DNS name from the file, or a name the source node's
    /// resolver finds (a pod resolving a Service).
    fn resolve_target(
        &mut self,
        from: Option<NodeId>,
        host: &str,
        written: &Located<String>,
    ) -> Option<Target> {
        let resolved = match from {
            Some(from) => self.net.resolve_from(from, host),
            None => self.net.resolve(host),
        };
        if let Some(addr) = resolved {
            return Some(Target {
                written: host.to_owned(),
                addr,
            });
        }
        if self
            .net
            .node_by_name(host)
            .or_else(|| self.net.node_by_dns(host))
            .is_some()
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    written.span,
                    format!("`{host}` has no address to send to"),
                )
                .label("node without addresses")
                .hint("give one of its interfaces an address"),
            );
            return None;
        }
        let candidates: Vec<&str> = self
            .net
            .nodes
            .iter()
            .flat_map(|n| std::iter::once(n.name.as_str()).chain(n.dns.iter().map(String::as_str)))
            .collect();
        let hint = match closest(host, candidates.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "write an IPv4 address, a node name, or a DNS name given to a node with `dns:`"
                .into(),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownReference,
                written.span,
                format!("`{host}` is not an address, a node or a DNS name of this file"),
            )
            .label("cannot resolve")
            .hint(hint),
        );
        None
    }
}
