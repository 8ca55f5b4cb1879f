//! What answers on a node's ports.

use std::net::Ipv4Addr;

use super::{Origin, Port};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What a listener says once a client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// An SSH server sending its identification banner.
    Ssh { banner: String },
    /// An HTTP server answering every request with this status and body.
    Http {
        status: u16,
        body: String,
        content_type: String,
        /// Backends it calls before answering (address, port).
        requires: Vec<(Ipv4Addr, Port)>,
        /// A reverse proxy's routes: a request whose Host and path pick one (see
        /// [`route`]) is answered by an upstream of that route; any other by this answer.
        routes: Vec<HttpRoute>,
    },
    /// A TCP service that sends one line on connect.
    Banner(String),
    /// TCP: accepts and says nothing. UDP: echoes each datagram.
    Plain,
}

/// How a route's path matches a request's path, as nginx's `location` does
/// (docs/platform-semantics.md, "Kubernetes", **Ingress**).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `location = /p`: the path and nothing else.
    Exact(String),
    /// `location /p`: every path that starts with these characters.
    Prefix(String),
}

impl PathMatch {
    /// Whether `path` (without its query) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    /// The path as written.
    pub fn text(&self) -> &str {
        match self {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p,
        }
    }
}

/// One route of a reverse proxy: requests for `host` (every host the proxy has no server
/// for when `None`) whose path matches go to `upstreams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// A host name (`*.example.com` for every name under it), compared without case.
    pub host: Option<String>,
    pub path: PathMatch,
    /// The servers it proxies to, tried in order; none: `503 Service Temporarily Unavailable`.
    pub upstreams: Vec<(Ipv4Addr, Port)>,
    /// What the route stands for, in the platform's words (for explanations).
    pub note: String,
}

/// How many upstreams a proxied request tries before the proxy answers with the last error
/// (ingress-nginx's `proxy-next-upstream-tries`, 3, for errors and timeouts).
pub const PROXY_TRIES: usize = 3;

/// The route of `routes` that answers a request for `host` and `path`, as nginx picks it: the
/// server whose name equals the host (port and case ignored), else the one whose wildcard
/// `*.suffix` covers it, else the default server (routes without a host); then in that server
/// an exact location equal to the path, else the longest prefix location that matches. `None`
/// when that server has no location for the path (or no server exists).
pub fn route<'a>(routes: &'a [HttpRoute], host: &str, path: &str) -> Option<&'a HttpRoute> {
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase();
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let named = |r: &&HttpRoute| {
        r.host
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(&host))
    };
    let wildcard = |r: &HttpRoute| {
        r.host
            .as_deref()
            .and_then(|h| h.strip_prefix('*'))
            .filter(|suffix| host.ends_with(&suffix.to_ascii_lowercase()))
            .map(str::len)
    };
    // `max_by_key` keeps the last of equals: reversed, the first written wins ties.
    let server: Option<&str> = if let Some(r) = routes.iter().find(named) {
        r.host.as_deref()
    } else if let Some(r) = routes
        .iter()
        .rev()
        .filter(|r| wildcard(r).is_some())
        .max_by_key(|r| wildcard(r))
    {
        r.host.as_deref()
    } else {
        None
    };
    let in_server: Vec<&HttpRoute> = routes
        .iter()
        .filter(|r| match (server, r.host.as_deref()) {
            (Some(s), Some(h)) => s.eq_ignore_ascii_case(h),
            (None, None) => true,
            _ => false,
        })
        .collect();
    in_server
        .iter()
        .find(|r| matches!(&r.path, PathMatch::Exact(p) if p == path))
        .or_else(|| {
            in_server
                .iter()
                .rev()
                .filter(|r| matches!(r.path, PathMatch::Prefix(_)) && r.path.matches(path))
                .max_by_key(|r| r.path.text().len())
        })
        .copied()
}

/// The error page nginx sends for `status` (`ngx_http_special_response.c`, with
/// `server_tokens off`, ingress-nginx's default): a small HTML document naming the status.
pub fn proxy_error_page(status: u16) -> String {
    let title = match status {
        503 => "503 Service Temporarily Unavailable".to_owned(),
        504 => "504 Gateway Time-out".to_owned(),
        _ => format!("{status} {}", http_reason(status)),
    };
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

/// A socket listening on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: Proto,
    pub port: Port,
    /// `None` listens on every address of the node (`0.0.0.0`).
    pub bind: Option<Ipv4Addr>,
    /// UDP: its answers come from the address the route back picks, not from the address the
    /// datagram was sent to (a plain socket on all addresses, as docker-proxy's).
    pub reply_from_route: bool,
    pub service: Service,
    pub origin: Origin,
}

impl Listener {
    /// Whether a packet to `dst` on this listener's protocol and port reaches it.
    pub fn accepts(&self, proto: Proto, dst: Ipv4Addr, port: Port) -> bool {
        self.proto == proto && self.port == port && self.bind.is_none_or(|b| b == dst)
    }
}

/// The reason phrase of an HTTP status code (RFC 9110), as servers send it; empty when unknown.
pub fn http_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: Option<&str>, path: PathMatch, note: &str) -> HttpRoute {
        HttpRoute {
            host: host.map(str::to_owned),
            path,
            upstreams: Vec::new(),
            note: note.to_owned(),
        }
    }

    fn picked(routes: &[HttpRoute], host: &str, path: &str) -> Option<String> {
        route(routes, host, path).map(|r| r.note.clone())
    }

    #[test]
    fn an_exact_location_wins_over_every_prefix() {
        // nginx's `location` docs: "If an exact match is found, the search terminates."
        let routes = [
            r(None, PathMatch::Prefix("/foo".into()), "prefix"),
            r(None, PathMatch::Exact("/foo".into()), "exact"),
        ];
        assert_eq!(picked(&routes, "x", "/foo").as_deref(), Some("exact"));
        assert_eq!(picked(&routes, "x", "/foo/bar").as_deref(), Some("prefix"));
    }

    #[test]
    fn the_longest_matching_prefix_wins() {
        let routes = [
            r(None, PathMatch::Prefix("/".into()), "root"),
            r(None, PathMatch::Prefix("/aaa/bbb/".into()), "bbb"),
            r(None, PathMatch::Prefix("/aaa/".into()), "aaa"),
        ];
        assert_eq!(picked(&routes, "x", "/aaa/bbb/ccc").as_deref(), Some("bbb"));
        assert_eq!(picked(&routes, "x", "/aaa/bb").as_deref(), Some("aaa"));
        assert_eq!(picked(&routes, "x", "/zzz?q=1").as_deref(), Some("root"));
    }

    #[test]
    fn the_first_of_equal_locations_wins() {
        let routes = [
            r(None, PathMatch::Prefix("/".into()), "first"),
            r(None, PathMatch::Prefix("/".into()), "second"),
        ];
        assert_eq!(picked(&routes, "x", "/a").as_deref(), Some("first"));
    }

    #[test]
    fn a_named_server_does_not_fall_back_to_the_default_server() {
        let routes = [
            r(
                Some("foo.example"),
                PathMatch::Prefix("/api/".into()),
                "foo api",
            ),
            r(None, PathMatch::Prefix("/".into()), "default"),
        ];
        assert_eq!(
            picked(&routes, "FOO.example:30080", "/api/x").as_deref(),
            Some("foo api")
        );
        assert_eq!(picked(&routes, "foo.example", "/other"), None);
        assert_eq!(
            picked(&routes, "10.0.0.1", "/other").as_deref(),
            Some("default")
        );
    }

    #[test]
    fn a_wildcard_server_takes_names_under_it() {
        let routes = [
            r(Some("*.example"), PathMatch::Prefix("/".into()), "wild"),
            r(Some("a.example"), PathMatch::Prefix("/".into()), "a"),
        ];
        assert_eq!(picked(&routes, "a.example", "/").as_deref(), Some("a"));
        assert_eq!(picked(&routes, "b.example", "/").as_deref(), Some("wild"));
        assert_eq!(picked(&routes, "example", "/"), None);
    }

    #[test]
    fn the_error_page_is_nginx_s() {
        assert_eq!(
            proxy_error_page(503),
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        );
        assert!(proxy_error_page(404).contains("<title>404 Not Found</title>"));
    }
}
