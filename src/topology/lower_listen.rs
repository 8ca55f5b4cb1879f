//! Lowering `listen:` entries into a node's [`Listener`]s: a port, at most one service (none
//! of them over UDP), an address the node has to bind to, and no clash with an earlier
//! listener, as bind() would allow.

use std::net::Ipv4Addr;

use super::lower::Lowering;
use crate::format::file::{
    HttpRouteSpec, HttpSpec, ListenSpec, PathMatchName, ProtoName, UdpReplyFromName,
};
use crate::format::units;
use crate::format::{Code, Diagnostic};
use crate::format::{Located, Span};
use crate::model::{HttpRoute, Listener, Node, PathMatch, Port, Proto, Service};

impl Lowering<'_> {
    /// Lowers one `listen:` entry of `node`; `None` when something in it is wrong (and
    /// reported).
    pub(super) fn listener(&mut self, node: &Node, spec: &ListenSpec) -> Option<Listener> {
        let port = self.port(&spec.port)?;
        let proto = match spec.proto.as_ref().map(|p| p.value) {
            Some(ProtoName::Udp) => Proto::Udp,
            Some(ProtoName::Tcp) | None => Proto::Tcp,
        };
        if !self.service_fits(spec, port, proto) {
            return None;
        }
        let service = self.service(spec)?;
        let bind = match &spec.address {
            Some(text) => Some(self.bind_address(node, text)?).filter(|a| !a.is_unspecified()),
            None => None,
        };
        let reply_from_route = match &spec.udp_reply_from {
            Some(r) if proto == Proto::Tcp => {
                self.push(
                    Diagnostic::error(
                        Code::BadValue,
                        r.span,
                        format!(
                            "port {port} is TCP: `udp_reply_from` says where UDP answers come from"
                        ),
                    )
                    .hint("add `proto: udp`, or remove `udp_reply_from`"),
                );
                return None;
            }
            Some(r) => r.value == UdpReplyFromName::Route,
            None => false,
        };
        let listener = Listener {
            proto,
            port,
            bind,
            reply_from_route,
            service,
            origin: self.origin(spec.port.span),
        };
        self.clash_free(node, &listener).then_some(listener)
    }

    /// Whether the listener on `port` names at most one service, and none of those (which
    /// all run over TCP) when it is UDP.
    fn service_fits(&mut self, spec: &ListenSpec, port: Port, proto: Proto) -> bool {
        let kinds: Vec<(&str, Span)> = [
            spec.ssh.as_ref().map(|s| ("ssh", s.span)),
            spec.http.as_ref().map(|h| ("http", h.span)),
            spec.banner.as_ref().map(|b| ("banner", b.span)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if kinds.len() > 1 {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    kinds[1].1,
                    format!(
                        "port {port} is given both `{}` and `{}`",
                        kinds[0].0, kinds[1].0
                    ),
                )
                .label("second answer")
                .hint("a listener answers one way: keep one of `ssh`, `http`, `banner`"),
            );
            return false;
        }
        if proto == Proto::Udp
            && let Some((kind, span)) = kinds.first()
        {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    *span,
                    format!("`{kind}` runs over TCP, but this listener is UDP"),
                )
                .label("TCP service")
                .hint("remove `proto: udp`, or remove the service to get a UDP echo"),
            );
            return false;
        }
        true
    }

    /// What answers on the listener: an SSH server, an HTTP service, a banner, or nothing in
    /// particular (the connection is accepted; over UDP, an echo).
    fn service(&mut self, spec: &ListenSpec) -> Option<Service> {
        let service = if let Some(banner) = &spec.ssh {
            Service::Ssh {
                banner: banner.value.clone(),
            }
        } else if let Some(http) = &spec.http {
            self.http_service(&http.value)?
        } else if let Some(banner) = &spec.banner {
            Service::Banner(banner.value.clone())
        } else {
            Service::Plain
        };
        Some(service)
    }

    /// An HTTP service: its status (200 unless given), body, content type (JSON when the body
    /// is a JSON object or array, else plain text, unless given) and the backends it calls.
    fn http_service(&mut self, http: &HttpSpec) -> Option<Service> {
        let status = match &http.status {
            Some(s) => self.http_status(s)?,
            None => 200,
        };
        let body = http.body.clone();
        let content_type = http.content_type.clone().unwrap_or_else(|| {
            if serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|v| v.is_object() || v.is_array())
            {
                "application/json".into()
            } else {
                "text/plain".into()
            }
        });
        let requires = self.backends(&http.requires);
        let routes = http
            .routes
            .iter()
            .map(|r| self.http_route(r))
            .collect::<Option<Vec<_>>>()?;
        Some(Service::Http {
            status,
            body,
            content_type,
            requires,
            routes,
        })
    }

    /// A route of a reverse proxy: a path starting with `/`, and its upstreams.
    fn http_route(&mut self, spec: &HttpRouteSpec) -> Option<HttpRoute> {
        if !spec.path.value.starts_with('/') {
            self.push(
                Diagnostic::error(
                    Code::BadValue,
                    spec.path.span,
                    format!("route path `{}` does not start with `/`", spec.path.value),
                )
                .label("not a path")
                .hint("write the path as a request carries it, e.g. `/api`"),
            );
            return None;
        }
        let path = spec.path.value.clone();
        Some(HttpRoute {
            host: spec.host.clone(),
            path: match spec.r#match.unwrap_or_default() {
                PathMatchName::Prefix => PathMatch::Prefix(path),
                PathMatchName::Exact => PathMatch::Exact(path),
            },
            upstreams: self.backends(&spec.upstreams),
            note: spec.note.clone().unwrap_or_default(),
        })
    }

    /// The backends an HTTP service calls, written `http://ADDRESS:PORT/`; the others are
    /// reported and left out.
    fn backends(&mut self, urls: &[Located<String>]) -> Vec<(Ipv4Addr, Port)> {
        let mut backends = Vec::new();
        for text in urls {
            let parsed = units::parse_http_url(text)
                .ok()
                .and_then(|u| Some((u.host.parse::<Ipv4Addr>().ok()?, Port::new(u.port)?)));
            match parsed {
                Some(backend) => backends.push(backend),
                None => self.push(
                    Diagnostic::error(Code::BadValue, text.span, format!("`{}` is not a backend URL", text.value))
                        .label("expected http://ADDRESS:PORT/")
                        .hint("write the backend as the service calls it, with an IPv4 address, e.g. `http://192.168.0.79:50001`"),
                ),
            }
        }
        backends
    }

    /// The `address` a listener binds to: one of the node's, a loopback address, or 0.0.0.0
    /// (all of them).
    fn bind_address(&mut self, node: &Node, text: &Located<String>) -> Option<Ipv4Addr> {
        match units::parse_addr(text) {
            Ok(addr)
                if addr.is_unspecified() || addr.is_loopback() || self.node_owns(node, addr) =>
            {
                Some(addr)
            }
            Ok(addr) => {
                self.push(
                    Diagnostic::error(Code::BadValue, text.span, format!("node `{}` has no address {addr} to listen on", node.name))
                        .label("not an address of this node")
                        .hint("listen on one of the node's addresses, 127.0.0.1, or leave `address` out for all (bind() would fail: Cannot assign requested address)"),
                );
                None
            }
            Err(e) => {
                self.push(
                    Diagnostic::error(
                        Code::BadAddress,
                        text.span,
                        format!("`{}` is not a listen address", text.value),
                    )
                    .label("expected an IPv4 address")
                    .hint(e),
                );
                None
            }
        }
    }

    fn node_owns(&self, node: &Node, addr: Ipv4Addr) -> bool {
        node.interfaces.iter().any(|&i| {
            self.net.interfaces[i.index()]
                .addresses
                .iter()
                .any(|a| a.addr() == addr)
        })
    }

    /// Whether `listener` can bind next to the node's earlier listeners: not on the same
    /// protocol and port when either takes all addresses or both take the same one.
    fn clash_free(&mut self, node: &Node, listener: &Listener) -> bool {
        let Listener {
            proto, port, bind, ..
        } = *listener;
        let Some(clash) = node.listeners.iter().find(|l| {
            l.proto == proto
                && l.port == port
                && (l.bind.is_none() || bind.is_none() || l.bind == bind)
        }) else {
            return true;
        };
        let first = clash.origin.span;
        self.push(
            Diagnostic::error(
                Code::DuplicateName,
                listener.origin.span,
                format!(
                    "node `{}` already listens on {} port {port}",
                    node.name,
                    proto.as_str()
                ),
            )
            .label("second listener")
            .related(first, "first listener")
            .hint("bind() would fail with: Address already in use"),
        );
        false
    }
}
