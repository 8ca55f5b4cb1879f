//! Probe results printed the way the real tools print them: iputils `ping`, OpenSSH `ssh`,
//! curl 7.81 (Ubuntu 22.04, as in the labs) and OpenBSD `nc -zv` for bare TCP; then the
//! `why:` block and the verified fixes.

use std::fmt::Write as _;
use std::time::Duration;

use super::Palette;
use crate::explain::{DroppedFix, Fix, Why};
use crate::model::{Network, Port, RouteType, Service};
use crate::sim::{DropReason, IcmpError, Observed, ProbeRun, StepKind};

/// What a tool prints and the exit code it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub exit_code: i32,
}

/// iputils' RTT format: 3 decimals below 1 ms, 2 below 10 ms, 1 below 100 ms, none above.
fn rtt_ms(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..1_000 => format!("{}.{:03}", us / 1000, us % 1000),
        1_000..10_000 => format!("{}.{:02}", us / 1000, (us % 1000) / 10),
        10_000..100_000 => format!("{}.{:01}", us / 1000, (us % 1000) / 100),
        _ => format!("{}", us / 1000),
    }
}

/// `ping -c N TARGET` as iputils prints it. `written` is the target as the user typed it.
pub fn ping_output(run: &ProbeRun, written: &str) -> ToolOutput {
    let dst = run.dst;
    let Observed::Ping {
        sent,
        replies,
        errors,
        redirects,
    } = &run.observed
    else {
        // iputils 20221126 in a network namespace, for each route type (EACCES reads as a
        // broadcast or a firewall to ping).
        let text = match &run.observed {
            Observed::Rejected(RouteType::Prohibit) => {
                "ping: Do you want to ping broadcast? Then -b. If not, check your local firewall rules\n".into()
            }
            Observed::Rejected(route) => format!("ping: connect: {}\n", strerror(*route)),
            _ => "ping: connect: Network is unreachable\n".into(),
        };
        return ToolOutput { text, exit_code: 2 };
    };
    let named = written != dst.to_string();
    let who = if named {
        format!("{written} ({dst})")
    } else {
        dst.to_string()
    };
    // iputils names the target as typed and its address, also when both are the address:
    // `PING 203.0.113.10 (203.0.113.10) 56(84) bytes of data.` (iputils 20221126).
    let mut out = format!("PING {written} ({dst}) 56(84) bytes of data.\n");
    let mut events: Vec<(Duration, String)> = Vec::new();
    for r in replies {
        let at = Duration::from_secs(u64::from(r.seq - 1)) + r.rtt;
        events.push((
            at,
            if r.from == dst {
                format!(
                    "64 bytes from {who}: icmp_seq={} ttl={} time={} ms",
                    r.seq,
                    r.ttl,
                    rtt_ms(r.rtt)
                )
            } else {
                format!(
                    "64 bytes from {}: icmp_seq={} ttl={} time={} ms (DIFFERENT ADDRESS!)",
                    r.from,
                    r.seq,
                    r.ttl,
                    rtt_ms(r.rtt)
                )
            },
        ));
    }
    for r in redirects {
        events.push((
            r.at.since(crate::sim::SimTime::ZERO),
            format!(
                "From {}: icmp_seq={} Redirect Host(New nexthop: {})",
                r.from, r.seq, r.gateway
            ),
        ));
    }
    for e in errors {
        events.push((
            e.at.since(crate::sim::SimTime::ZERO),
            format!("From {} icmp_seq={} {}", e.from, e.seq, e.error.name()),
        ));
    }
    events.sort_by_key(|(at, _)| *at);
    for (_, line) in &events {
        out.push_str(line);
        out.push('\n');
    }
    let received = replies.len();
    let loss = 100 * (usize::from(*sent) - received) / usize::from((*sent).max(1));
    let errs = if errors.is_empty() {
        String::new()
    } else {
        format!(", +{} errors", errors.len())
    };
    let elapsed = 1000 * u64::from(sent.saturating_sub(1));
    let _ = write!(
        out,
        "\n--- {written} ping statistics ---\n{sent} packets transmitted, {received} received{errs}, {loss}% packet loss, time {elapsed}ms\n"
    );
    if !replies.is_empty() {
        let ms: Vec<f64> = replies
            .iter()
            .map(|r| r.rtt.as_secs_f64() * 1000.0)
            .collect();
        let n = ms.len() as f64;
        let (min, max) = ms
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let avg = ms.iter().sum::<f64>() / n;
        let mdev = (ms.iter().map(|x| x * x).sum::<f64>() / n - avg * avg)
            .max(0.0)
            .sqrt();
        let _ = writeln!(
            out,
            "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
        );
    }
    ToolOutput {
        text: out,
        exit_code: if received > 0 { 0 } else { 1 },
    }
}

/// The errno text a failed `connect()` shows.
fn connect_error(observed: &Observed) -> Option<&'static str> {
    match observed {
        Observed::Reset { .. } => Some("Connection refused"),
        Observed::Error(e) => Some(match e.error {
            IcmpError::PortUnreachable => "Connection refused",
            IcmpError::NetUnreachable => "Network is unreachable",
            IcmpError::HostUnreachable | IcmpError::AdminProhibited => "No route to host",
            IcmpError::TtlExceeded => "No route to host",
        }),
        Observed::Silence { .. } => Some("Connection timed out"),
        Observed::NoRoute => Some("Network is unreachable"),
        Observed::Rejected(route) => Some(strerror(*route)),
        _ => None,
    }
}

/// The errno text of a call refused by the sender's own route of this type.
fn strerror(route: RouteType) -> &'static str {
    match route {
        RouteType::Blackhole => "Invalid argument",
        RouteType::Unreachable => "No route to host",
        RouteType::Prohibit => "Permission denied",
    }
}

fn elapsed(observed: &Observed) -> Duration {
    match observed {
        Observed::Connected { rtt, .. } | Observed::UdpAnswer { rtt, .. } => *rtt,
        Observed::Reset { after, .. } => *after,
        Observed::Error(e) => e.at.since(crate::sim::SimTime::ZERO),
        Observed::Silence { waited } => *waited,
        _ => Duration::ZERO,
    }
}

/// `ssh [-p PORT] HOST`: the server's banner, or OpenSSH's connect error (exit 255).
pub fn ssh_output(net: &Network, run: &ProbeRun, written: &str, port: Port) -> ToolOutput {
    if let Some(error) = connect_error(&run.observed) {
        return ToolOutput {
            text: format!("ssh: connect to host {written} port {port}: {error}\n"),
            exit_code: 255,
        };
    }
    match run.served(net).map(|(_, _, _, service)| service) {
        Some(Service::Ssh { banner }) => ToolOutput {
            text: format!("{banner}\n"),
            exit_code: 0,
        },
        _ => ToolOutput {
            text: format!(
                "kex_exchange_identification: Connection closed by remote host\nConnection closed by {} port {port}\n",
                run.dst
            ),
            exit_code: 255,
        },
    }
}

/// `curl URL`: the body, or curl's error line and exit code.
/// `answer` is the HTTP answer the service gave (see [`crate::run::HttpAnswer`]).
pub fn curl_output(
    net: &Network,
    run: &ProbeRun,
    host: &str,
    port: Port,
    answer: Option<&crate::run::HttpAnswer>,
) -> ToolOutput {
    if let Some(error) = connect_error(&run.observed) {
        let code = if matches!(run.observed, Observed::Silence { .. }) {
            28
        } else {
            7
        };
        let ms = elapsed(&run.observed).as_millis();
        return ToolOutput {
            text: format!(
                "curl: ({code}) Failed to connect to {host} port {port} after {ms} ms: {error}\n"
            ),
            exit_code: code,
        };
    }
    if let Some(answer) = answer {
        // Without -f, curl prints the body whatever the status and exits 0.
        return ToolOutput {
            text: answer.body.clone(),
            exit_code: 0,
        };
    }
    match run.served(net).map(|(_, _, _, service)| service) {
        Some(Service::Http { body, .. }) => ToolOutput {
            text: body.clone(),
            exit_code: 0,
        },
        Some(Service::Ssh { .. } | Service::Banner(_)) => ToolOutput {
            text: "curl: (1) Received HTTP/0.9 when not allowed\n".into(),
            exit_code: 1,
        },
        _ => ToolOutput {
            text: "curl: (52) Empty reply from server\n".into(),
            exit_code: 52,
        },
    }
}

/// A bare TCP connection, worded as `nc -zv HOST PORT`.
pub fn tcp_output(run: &ProbeRun, written: &str, port: Port) -> ToolOutput {
    match connect_error(&run.observed) {
        Some(error) => ToolOutput {
            text: format!("nc: connect to {written} port {port} (tcp) failed: {error}\n"),
            exit_code: 1,
        },
        None => ToolOutput {
            text: format!("Connection to {written} {port} port [tcp/*] succeeded!\n"),
            exit_code: 0,
        },
    }
}

/// One UDP datagram and what came back.
pub fn udp_output(run: &ProbeRun, written: &str, port: Port) -> ToolOutput {
    let text = match &run.observed {
        Observed::UdpAnswer { rtt, from } => format!(
            "udp {written} port {port}: answer from {from} after {} ms\n",
            rtt_ms(*rtt)
        ),
        Observed::Error(e) => format!(
            "udp {written} port {port}: From {} {} ({})\n",
            e.from,
            e.error.name(),
            connect_error(&run.observed).unwrap_or("")
        ),
        Observed::NoRoute => format!("udp {written} port {port}: sendto: Network is unreachable\n"),
        Observed::Rejected(route) => {
            format!("udp {written} port {port}: sendto: {}\n", strerror(*route))
        }
        Observed::Silence { waited } => format!(
            "udp {written} port {port}: no answer in {} s\n",
            waited.as_secs()
        ),
        _ => String::new(),
    };
    let exit_code = i32::from(!matches!(run.observed, Observed::UdpAnswer { .. }));
    ToolOutput { text, exit_code }
}

/// The `why:` block and the verified fixes; without any, the changes the search verified
/// on the network that the file did not take (`dropped`), and why.
pub fn why_block(why: &Why, fixes: &[Fix], dropped: &[DroppedFix], p: Palette) -> String {
    let (bold, accent, ok) = (p.bold(), p.accent(), p.ok());
    let mut out = format!("\n{bold}why:{bold:#}\n");
    for line in &why.lines {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(origin) = &why.origin {
        let _ = writeln!(out, "  {accent}-->{accent:#} {origin}");
    }
    for fix in fixes {
        let kept = match (fix.breaks.len(), fix.keeps) {
            (0, 0) => String::new(),
            (0, 1) => ", and the file's 1 other check still holds".to_owned(),
            (0, n) => format!(", and all {n} other checks of the file still hold"),
            (1, _) => "; it also changes 1 check the file makes".to_owned(),
            (b, _) => format!("; it also changes {b} checks the file makes"),
        };
        // A fix without a patch for this file was verified on the loaded network only.
        let verified = if fix.no_patch.is_some() {
            "verified on the loaded network, not on a patched file"
        } else {
            "verified"
        };
        let _ = writeln!(
            out,
            "{bold}fix{bold:#} {ok}({verified}: the probe then gets a reply{kept}){ok:#}: {}",
            fix.summary.join("; ")
        );
        for broken in &fix.breaks {
            let _ = writeln!(
                out,
                "  {accent}!{accent:#} no longer as the file expects: {broken}"
            );
        }
        // The patch when the file was at hand to make one (it was applied and checked), as
        // `git apply` or `patch -p1` take it; otherwise the YAML to merge into the file, and
        // why the file got no patch when it was at hand.
        match &fix.patch {
            Some(patch) => out.push_str(patch),
            None => {
                for line in fix.yaml.lines() {
                    let _ = writeln!(out, "  {line}");
                }
                if let Some(why) = &fix.no_patch {
                    let _ = writeln!(
                        out,
                        "  {accent}(no patch could be written for this file: {why}){accent:#}"
                    );
                }
            }
        }
    }
    if fixes.is_empty() && !dropped.is_empty() {
        let changes = match dropped.len() {
            1 => "1 change that makes".to_owned(),
            n => format!("{n} changes that make"),
        };
        let _ = writeln!(
            out,
            "{bold}fix{bold:#}: none this file can take: the search found {changes} the probe get \
             a reply on the loaded network, but not in the file"
        );
        for d in dropped {
            let _ = writeln!(out, "  - {}", d.summary.join("; "));
            let _ = writeln!(out, "    {accent}({}){accent:#}", d.reason);
        }
    } else if fixes.is_empty() && why.cause.fixable() {
        let _ = writeln!(
            out,
            "{bold}fix{bold:#}: none found by trying routes, forwarding, listeners and filter rules \
             that keep the file's other checks"
        );
    }
    out
}

/// The hops of a probe as a table: time, node, in → out, route, what happened.
pub fn trace_table(net: &Network, run: &ProbeRun) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "time".into(),
        "node".into(),
        "in → out".into(),
        "packet".into(),
        "decision".into(),
    ]];
    let name = |i: crate::model::IfaceId| net.interface(i).name.clone();
    for step in &run.steps {
        let node = &net.node(step.node);
        let route = |index: usize| {
            node.routes
                .routes()
                .get(index)
                .map_or_else(String::new, |r| super::ip_route_line(net, r))
        };
        let (ifaces, decision) = match step.kind {
            StepKind::Sent {
                out,
                route: r,
                nexthop,
            } => (
                format!("- → {}", out.map_or("lo".into(), name)),
                match r {
                    Some(i) => format!("sent via {nexthop} (route: {})", route(i)),
                    None => "local address: loopback".into(),
                },
            ),
            StepKind::Forwarded {
                in_iface,
                out,
                route: r,
                nexthop,
            } => (
                format!("{} → {}", name(in_iface), name(out)),
                format!(
                    "forwarded to {nexthop}, ttl now {} (route: {})",
                    step.packet.ttl,
                    route(r)
                ),
            ),
            StepKind::Bridged { bridge } => (
                format!("{} → {}", name(bridge), name(bridge)),
                "bridged to its port (br_netfilter)".into(),
            ),
            StepKind::Delivered { in_iface } => (
                format!("{} → local", in_iface.map_or("lo".into(), name)),
                "delivered".into(),
            ),
            StepKind::Refused => ("-".into(), "nothing listens: refused".into()),
            StepKind::Translated { hook, rule, before } => (
                "-".into(),
                format!(
                    "{} {} → {} ({})",
                    match (hook, rule) {
                        (_, None) => "NAT of the connection",
                        (crate::model::NatHook::Prerouting, _) => "DNAT (prerouting)",
                        (crate::model::NatHook::Output, _) => "DNAT (output)",
                        (crate::model::NatHook::Postrouting, _) => "SNAT (postrouting)",
                    },
                    endpoint(before.src, before.dst, &before),
                    endpoint(step.packet.src, step.packet.dst, &step.packet),
                    rule.map_or_else(|| "existing connection".to_owned(), |r| node.nat_words(r)),
                ),
            ),
            StepKind::Filtered {
                chain,
                decider,
                verdict,
                in_iface,
            } => (
                in_iface.map_or("-".into(), name),
                format!(
                    "{} by {}",
                    crate::topology::iptables::verdict(verdict),
                    node.filter_words(chain, decider)
                ),
            ),
            StepKind::Dropped { in_iface, reason } => (
                format!("{} → ✗", in_iface.map_or("-".into(), name)),
                format!("DROPPED: {}", drop_words(net, reason)),
            ),
        };
        rows.push([
            format!("{:.3} ms", step.at.as_millis_f64()),
            node.name.clone(),
            ifaces,
            format!(
                "{} {} → {}",
                step.packet.describe(),
                step.packet.src,
                step.packet.dst
            ),
            decision,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One hop of `trace --format json`. Fields in alphabetical order: the order of this output
/// since its first version.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HopRecord {
    pub dst: std::net::Ipv4Addr,
    /// The interface the packet came in on (`null`: made here, or through loopback).
    #[serde(rename = "in")]
    pub in_iface: Option<String>,
    /// `sent`, `forwarded`, `bridged`, `delivered`, `refused`, `translated`, `filtered` or `dropped`.
    pub kind: &'static str,
    pub node: String,
    pub out: Option<String>,
    /// The packet in words (`ICMP echo request id=… seq=1`).
    pub packet: String,
    /// What translated, filtered or dropped it, in words.
    pub reason: Option<String>,
    /// The route used, as `ip route` prints it.
    pub route: Option<String>,
    pub src: std::net::Ipv4Addr,
    pub time_ms: f64,
    pub ttl: u8,
}

/// The hops as JSON records, for `trace --format json`.
pub fn trace_rows(net: &Network, run: &ProbeRun) -> Vec<HopRecord> {
    run.steps
        .iter()
        .map(|step| {
            let iface = |i: Option<crate::model::IfaceId>| i.map(|i| net.interface(i).name.clone());
            let (kind, in_iface, out_iface, route, reason) = match step.kind {
                StepKind::Sent { out, route, .. } => ("sent", None, iface(out), route, None),
                StepKind::Forwarded {
                    in_iface,
                    out,
                    route,
                    ..
                } => (
                    "forwarded",
                    iface(Some(in_iface)),
                    iface(Some(out)),
                    Some(route),
                    None,
                ),
                StepKind::Bridged { bridge } => (
                    "bridged",
                    iface(Some(bridge)),
                    iface(Some(bridge)),
                    None,
                    None,
                ),
                StepKind::Delivered { in_iface } => {
                    ("delivered", iface(in_iface), None, None, None)
                }
                StepKind::Refused => ("refused", None, None, None, None),
                StepKind::Translated { before, .. } => (
                    "translated",
                    None,
                    None,
                    None,
                    Some(format!(
                        "{} {} → {} {}",
                        before.src, before.dst, step.packet.src, step.packet.dst
                    )),
                ),
                StepKind::Filtered {
                    chain,
                    decider,
                    verdict,
                    in_iface,
                } => (
                    "filtered",
                    iface(in_iface),
                    None,
                    None,
                    Some(format!(
                        "{} by {}",
                        crate::topology::iptables::verdict(verdict),
                        net.node(step.node).filter_words(chain, decider)
                    )),
                ),
                StepKind::Dropped { in_iface, reason } => (
                    "dropped",
                    iface(in_iface),
                    None,
                    None,
                    Some(drop_words(net, reason)),
                ),
            };
            let node = net.node(step.node);
            HopRecord {
                dst: step.packet.dst,
                in_iface,
                kind,
                node: node.name.clone(),
                out: out_iface,
                packet: step.packet.describe(),
                reason,
                route: route
                    .and_then(|r| node.routes.routes().get(r))
                    .map(|r| super::ip_route_line(net, r)),
                src: step.packet.src,
                time_ms: step.at.as_millis_f64(),
                ttl: step.packet.ttl,
            }
        })
        .collect()
}

/// `10.0.2.15:22 ← 203.0.113.9:40000` style endpoints for translations.
fn endpoint(
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    packet: &crate::sim::Ipv4Packet,
) -> String {
    match packet.transport {
        crate::sim::Transport::Tcp { sport, dport, .. }
        | crate::sim::Transport::Udp { sport, dport } => format!("{src}:{sport}→{dst}:{dport}"),
        _ => format!("{src}→{dst}"),
    }
}

/// "forward rule 3 of `gw`", "the policy of the input chain of `vm`", or the rule's comment.
/// Why a packet was dropped, in words (never Rust debug text: `trace` and its JSON show this).
pub(crate) fn drop_words(net: &Network, reason: DropReason) -> String {
    match reason {
        DropReason::NoRouteAtSender => "the sender has no route to the destination".into(),
        DropReason::NoRoute => "no route to the destination".into(),
        DropReason::RejectRoute(kind) => {
            format!("its route to the destination is `{}`", kind.word())
        }
        DropReason::ForwardingDisabled => {
            "not addressed to this node, and it does not forward (forwarding: false)".into()
        }
        DropReason::TtlExpired => "the TTL ran out".into(),
        DropReason::ArpFailed { iface, nexthop } => format!(
            "no ARP answer for {nexthop} on {}",
            net.interface(iface).name
        ),
        DropReason::NoRouteBack => "no route back to the sender for the answer".into(),
        DropReason::Lost { segment } => {
            let segment = net.segment(segment);
            format!(
                "lost on segment `{}` (loss {}%)",
                segment.name,
                segment.loss * 100.0
            )
        }
        DropReason::LoopbackSource => {
            "its source is a loopback address, which may not leave through a real interface \
             (route_localnet=0)"
                .into()
        }
        DropReason::MartianDestination => {
            "martian: it came from the wire addressed to 127/8 (route_localnet=0)".into()
        }
        DropReason::MartianSource => {
            "martian: it came from the wire with one of this node's own addresses as its source"
                .into()
        }
        DropReason::HairpinOff { port } => format!(
            "the bridge would send it back out of the port it came in through (`{}` of `{}`), which has no hairpin mode",
            net.interface(port).name,
            net.node(net.interface(port).node).name
        ),
    }
}
