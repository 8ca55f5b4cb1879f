//! `reachlab live`: this machine (or the namespace the command runs in) as a topology, read
//! with pnet's datalink interface list and `/proc` (routes, forwarding), and real probes from
//! here set beside what the model predicts: the route the model picks, against the kernel's own
//! `ip route get`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::model::{Network, Probe};

use super::EmulateError;
use super::probe::{KernelProbe, KernelResult, run_here};

/// An interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInterface {
    pub name: String,
    pub mac: Option<String>,
    pub addresses: Vec<Ipv4Net>,
    pub up: bool,
    pub loopback: bool,
}

/// A route of the main table (`/proc/net/route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub dst: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dev: String,
    pub metric: u32,
}

/// This machine's network, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveHost {
    pub hostname: String,
    pub forwarding: bool,
    pub interfaces: Vec<LiveInterface>,
    pub routes: Vec<LiveRoute>,
    /// What `iptables-save` printed here, when it ran.
    pub iptables: Option<String>,
}

/// Reads interfaces, addresses, routes and `ip_forward`.
pub fn snapshot() -> Result<LiveHost, EmulateError> {
    let interfaces = pnet::datalink::interfaces()
        .into_iter()
        .map(|i| LiveInterface {
            up: i.is_up(),
            loopback: i.is_loopback(),
            mac: i.mac.map(|m| m.to_string()),
            addresses: i
                .ips
                .iter()
                .filter_map(|ip| match ip {
                    pnet::ipnetwork::IpNetwork::V4(v4) => Ipv4Net::new(v4.ip(), v4.prefix()).ok(),
                    pnet::ipnetwork::IpNetwork::V6(_) => None,
                })
                .collect(),
            name: i.name,
        })
        .collect();
    let routes = std::fs::read_to_string("/proc/net/route")
        .map_err(|e| EmulateError::io("reading /proc/net/route", e))?;
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|t| t.trim() == "1")
        .unwrap_or(false);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|_| "this-host".into());
    Ok(LiveHost {
        hostname,
        forwarding,
        interfaces,
        routes: parse_proc_routes(&routes),
        iptables: iptables_save(),
    })
}

/// The output of `iptables-save` in this namespace (it only reads), when it runs and succeeds.
fn iptables_save() -> Option<String> {
    let out = std::process::Command::new("iptables-save")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).ok())
        .flatten()
}

/// The `iptables:` block of the node, or comment lines saying why the rules were left out
/// (a rule set the model cannot hold, or one naming an interface that was left out): the
/// file written always loads.
fn iptables_yaml(text: &str, usable: &[&LiveInterface]) -> String {
    if !text
        .lines()
        .any(|l| l.starts_with("-A ") || l.contains(" DROP ["))
    {
        return String::new();
    }
    let iface = |name: &str| {
        if name == "lo" {
            return Some(crate::model::IfaceId::LOOPBACK);
        }
        usable
            .iter()
            .position(|i| i.name == name)
            .map(crate::model::IfaceId::from_index)
    };
    let origin = |_: &crate::topology::iptables::Word| crate::model::Origin::default();
    let mut out = String::new();
    match crate::topology::iptables::read(text, &iface, &origin) {
        Ok(_) => {
            out.push_str("    iptables: |\n");
            for line in text.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
        Err(problems) => {
            out.push_str("    # iptables rules left out (`iptables-save` shows them):\n");
            for p in problems.iter().take(5) {
                let _ = writeln!(out, "    #   line {}: {}", p.at.line, p.message);
            }
        }
    }
    out
}

/// The routes of `/proc/net/route` (addresses in hex, in the machine's byte order).
pub fn parse_proc_routes(text: &str) -> Vec<LiveRoute> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    // The kernel prints the address's four bytes read as a native-endian u32.
    let addr = |s: &str| hex(s).map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dev, dst, gw, flags, metric, mask) = (
                f.first()?,
                f.get(1)?,
                f.get(2)?,
                f.get(3)?,
                f.get(6)?,
                f.get(7)?,
            );
            let flags = hex(flags)?;
            if flags & RTF_UP == 0 {
                return None;
            }
            let mask = addr(mask)?;
            let prefix = u32::from(mask).leading_ones() as u8;
            Some(LiveRoute {
                dst: Ipv4Net::new(addr(dst)?, prefix).ok()?.trunc(),
                gateway: (flags & RTF_GATEWAY != 0).then(|| addr(gw)).flatten(),
                dev: (*dev).to_owned(),
                metric: metric.parse().ok()?,
            })
        })
        .collect()
}

/// The host as a topology file: one node, each interface on a segment of its own, the static
/// routes; what the format cannot say is written as a comment.
pub fn to_yaml(host: &LiveHost) -> String {
    let name: String = host
        .hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.is_empty() {
        "this-host".into()
    } else {
        name
    };
    let mut out = String::from(
        "# This machine as reachlab reads it (`reachlab live show --format yaml`).\n\
         # Each interface is on a segment of its own: what lies beyond it is not known here.\n",
    );
    let usable: Vec<&LiveInterface> = host
        .interfaces
        .iter()
        .filter(|i| !i.loopback && i.up && !i.addresses.is_empty())
        .collect();
    for i in host.interfaces.iter().filter(|i| !usable.contains(i)) {
        let why = if i.loopback {
            "loopback"
        } else if !i.up {
            "down"
        } else {
            "no IPv4 address"
        };
        let _ = writeln!(out, "# interface {} left out: {why}", i.name);
    }
    out.push_str("segments:\n");
    for i in &usable {
        let _ = writeln!(
            out,
            "  - {{ name: \"{}-link\", note: \"what {} plugs into\" }}",
            i.name, i.name
        );
    }
    let _ = writeln!(
        out,
        "nodes:\n  - name: \"{name}\"\n    forwarding: {}",
        host.forwarding
    );
    out.push_str("    interfaces:\n");
    for i in &usable {
        let addresses: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
        let mac = i
            .mac
            .as_ref()
            .filter(|m| *m != "00:00:00:00:00:00")
            .map(|m| format!(", mac: \"{m}\""))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "      - {{ name: \"{}\", segment: \"{}-link\", addresses: [{}]{mac} }}",
            i.name,
            i.name,
            addresses.join(", ")
        );
    }
    let mut routes = String::new();
    for r in &host.routes {
        let Some(iface) = usable.iter().find(|i| i.name == r.dev) else {
            let _ = writeln!(
                routes,
                "      # left out: {} dev {} (interface left out)",
                r.dst, r.dev
            );
            continue;
        };
        let connected = iface
            .addresses
            .iter()
            .any(|a| a.trunc() == r.dst && r.gateway.is_none());
        if connected {
            continue;
        }
        if let Some(gw) = r.gateway
            && !iface.addresses.iter().any(|a| a.contains(&gw))
        {
            let _ = writeln!(
                routes,
                "      # left out: {} via {gw} dev {} (gateway outside the interface's subnets)",
                r.dst, r.dev
            );
            continue;
        }
        let to = if r.dst.prefix_len() == 0 {
            "default".to_owned()
        } else {
            r.dst.to_string()
        };
        let via = r.gateway.map(|g| format!(", via: {g}")).unwrap_or_default();
        let metric = if r.metric != 0 {
            format!(", metric: {}", r.metric)
        } else {
            String::new()
        };
        let _ = writeln!(
            routes,
            "      - {{ to: {to}{via}, dev: \"{}\"{metric} }}",
            r.dev
        );
    }
    if !routes.is_empty() {
        out.push_str("    routes:\n");
        out.push_str(&routes);
    }
    if let Some(text) = &host.iptables {
        out.push_str(&iptables_yaml(text, &usable));
    }
    out
}

/// A probe from here: the route the model picks, the kernel's `ip route get`, and the result.
#[derive(Debug, Clone)]
pub struct LiveProbe {
    pub target: Ipv4Addr,
    /// `via G dev D src S`, or `no route`.
    pub predicted_route: String,
    pub kernel_route: String,
    pub result: KernelResult,
}

/// Probes `target` from here, for real, after predicting its route from `net` (the snapshot).
pub fn probe(
    net: &Network,
    probe: Probe,
    target: Ipv4Addr,
    written: &str,
) -> Result<LiveProbe, EmulateError> {
    if probe == Probe::Ping {
        ensure_raw_sockets()?;
    }
    let predicted_route = predicted_route(net, target);
    let kernel_route = kernel_route(target);
    let ttl = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(64);
    let result = run_here(&KernelProbe {
        probe,
        dst: target,
        host: written.to_owned(),
        ttl,
    })?;
    Ok(LiveProbe {
        target,
        predicted_route,
        kernel_route,
        result,
    })
}

/// The route the model predicts for `target` from the snapshot's node, in the words of
/// `kernel_route`. Loopback addresses (127.0.0.0/8) and the node's own addresses are local:
/// the kernel delivers them on `lo` (which the snapshot leaves out), never through a gateway.
pub fn predicted_route(net: &Network, target: Ipv4Addr) -> String {
    let Some(node) = net.nodes.first() else {
        return "no route".into();
    };
    if target.is_loopback() {
        return "dev lo src 127.0.0.1".into();
    }
    if net
        .interfaces_of(node)
        .any(|i| i.addresses.iter().any(|a| a.addr() == target))
    {
        return format!("dev lo src {target}");
    }
    node.routes
        .lookup(target)
        .map(|route| {
            let dev = &net.interface(route.dev);
            format!(
                "{}dev {}{}",
                route
                    .gateway
                    .map(|g| format!("via {g} "))
                    .unwrap_or_default(),
                dev.name,
                dev.primary_address()
                    .map(|s| format!(" src {s}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no route".into())
}

/// A ping sends from a raw ICMP socket, which needs root or `CAP_NET_RAW`: refused with those
/// words (instead of a bare "Operation not permitted") before anything is sent.
fn ensure_raw_sockets() -> Result<(), EmulateError> {
    match socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::ICMPV4),
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(EmulateError::Unsupported(
                "`live ping` needs root or CAP_NET_RAW: it sends from a raw ICMP socket \
                 (run it with sudo, or `setcap cap_net_raw+ep` on the reachlab binary)"
                    .into(),
            ))
        }
        Err(e) => Err(EmulateError::io("opening a raw ICMP socket", e)),
    }
}

/// `ip -j route get TARGET`, in the same words as the prediction.
fn kernel_route(target: Ipv4Addr) -> String {
    let out = std::process::Command::new("ip")
        .args(["-j", "route", "get", &target.to_string()])
        .output();
    let Ok(out) = out else {
        return "unknown (`ip` did not run)".into();
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return if text.contains("unreachable") {
            "no route".into()
        } else {
            text.trim().to_owned()
        };
    }
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let Some(route) = parsed.get(0) else {
        return "unknown".into();
    };
    let field = |k: &str| route.get(k).and_then(Value::as_str);
    format!(
        "{}dev {}{}",
        field("gateway")
            .map(|g| format!("via {g} "))
            .unwrap_or_default(),
        field("dev").unwrap_or("?"),
        field("prefsrc")
            .map(|s| format!(" src {s}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_network() -> Network {
        let host = LiveHost {
            hostname: "box".into(),
            forwarding: false,
            interfaces: vec![LiveInterface {
                name: "eth0".into(),
                mac: Some("02:00:00:00:00:05".into()),
                addresses: vec!["192.0.2.2/24".parse().expect("net")],
                up: true,
                loopback: false,
            }],
            routes: parse_proc_routes(
                "h\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
            ),
            iptables: None,
        };
        crate::topology::load_str("live.yaml", &to_yaml(&host))
            .unwrap_or_else(|r| panic!("invalid: {:?}", r.diagnostics))
            .network
    }

    #[test]
    fn loopback_addresses_are_predicted_on_lo() {
        let net = snapshot_network();
        for target in ["127.0.0.1", "127.1.2.3"] {
            let target: Ipv4Addr = target.parse().expect("addr");
            assert_eq!(predicted_route(&net, target), "dev lo src 127.0.0.1");
        }
    }

    #[test]
    fn own_addresses_are_predicted_on_lo() {
        let net = snapshot_network();
        let own = Ipv4Addr::new(192, 0, 2, 2);
        assert_eq!(predicted_route(&net, own), "dev lo src 192.0.2.2");
        let far = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(
            predicted_route(&net, far),
            "via 192.0.2.1 dev eth0 src 192.0.2.2"
        );
    }

    #[test]
    fn proc_routes_parse() {
        // The kernel prints each address as the u32 in host byte order (little endian here).
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_proc_routes(text);
        assert_eq!(
            routes,
            vec![
                LiveRoute {
                    dst: "0.0.0.0/0".parse().expect("net"),
                    gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
                    dev: "eth0".into(),
                    metric: 100
                },
                LiveRoute {
                    dst: "10.0.0.0/24".parse().expect("net"),
                    gateway: None,
                    dev: "eth0".into(),
                    metric: 0
                },
            ]
        );
    }

    #[test]
    fn a_snapshot_writes_a_valid_topology() {
        let host = LiveHost {
            hostname: "box.example".into(),
            forwarding: false,
            interfaces: vec![
                LiveInterface {
                    name: "lo".into(),
                    mac: None,
                    addresses: vec!["127.0.0.1/8".parse().expect("net")],
                    up: true,
                    loopback: true,
                },
                LiveInterface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:05".into()),
                    addresses: vec!["10.0.0.5/24".parse().expect("net")],
                    up: true,
                    loopback: false,
                },
            ],
            routes: parse_proc_routes(
                "h\neth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                 eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 eth0\t0000A8C0\t0200A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n",
            ),
            iptables: Some(
                "# Generated by iptables-save v1.8.9\n*filter\n:INPUT DROP [0:0]\n\
                 -A INPUT -i lo -j ACCEPT\n-A INPUT -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n\
                 COMMIT\n"
                    .into(),
            ),
        };
        let yaml = to_yaml(&host);
        let net = crate::topology::load_str("live.yaml", &yaml)
            .unwrap_or_else(|r| panic!("invalid: {:?}\n{yaml}", r.diagnostics))
            .network;
        let lines = crate::render::ip_route(&net, &net.nodes[0]);
        assert_eq!(
            lines,
            [
                "default via 10.0.0.1 dev eth0 metric 100",
                "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.5",
            ],
            "{yaml}"
        );
        assert!(
            yaml.contains("# left out: 192.168.0.0/16 via 192.168.0.2"),
            "{yaml}"
        );
        assert!(yaml.contains("# interface lo left out: loopback"), "{yaml}");
        let input = &net.nodes[0]
            .netfilter
            .as_deref()
            .expect("the rules were kept")
            .input;
        assert_eq!(
            (input.policy, input.rules.len()),
            (crate::model::Verdict::Drop, 2)
        );
    }

    #[test]
    fn rules_the_model_cannot_hold_are_left_out_with_their_reason() {
        let usable = LiveInterface {
            name: "eth0".into(),
            mac: None,
            addresses: vec!["10.0.0.5/24".parse().expect("net")],
            up: true,
            loopback: false,
        };
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i docker0 -j ACCEPT\nCOMMIT\n";
        let yaml = iptables_yaml(text, &[&usable]);
        assert!(!yaml.contains("iptables: |"), "{yaml}");
        assert!(
            yaml.contains("line 3: the node has no interface `docker0`"),
            "{yaml}"
        );
        assert_eq!(
            iptables_yaml("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", &[&usable]),
            ""
        );
    }
}
