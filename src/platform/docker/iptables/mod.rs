//! The iptables rules dockerd writes on its host, found by replaying what it does, step by
//! step, on tables that hold only the host's own rules (`tables`): the chains it creates at
//! start, each network as the bridge driver sets it up, each container's endpoints and published
//! ports. Every `-I` goes to the top of its chain and every `-A` to the end, as iptables does,
//! so the order of the result is dockerd's, and so is where the host's own rules end up among
//! Docker's. Each engine `version:` has its own replay, every step citing the line of moby it
//! follows: `v20` (libnetwork v20.10.24, vendored in moby v20.10.24) and `v28` (moby v28.2.2 to
//! v28.5.2, whose rules are the same). docs/platform-semantics.md, "Docker", **Rules** and
//! **Docker 28**.
//!
//! The result is `iptables-save` text, each line placed at the declaration it comes from (the
//! engine's host, a network, a container's network, a `-p` entry), which the topology's
//! lowering reads like any other `iptables-save` text.

mod v20;
mod v28;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::containers::Published;
use super::plan::{EnginePlan, Version};
use crate::format::Span;
use crate::format::file::{BeforeOwn, RuleProto};

/// The chains of every version of dockerd.
const DOCKER: &str = "DOCKER";
const ISOLATION_1: &str = "DOCKER-ISOLATION-STAGE-1";
const ISOLATION_2: &str = "DOCKER-ISOLATION-STAGE-2";
const USER: &str = "DOCKER-USER";

/// What dockerd leaves in the host's tables, besides the host's own rules.
pub(super) struct Written {
    /// `iptables-save` text of the raw (when written to), filter and nat tables.
    pub text: String,
    /// For each line of `text`, the declaration it comes from.
    pub places: Vec<Span>,
    /// Where the host's own rules sit among Docker's.
    pub before_own: BeforeOwn,
}

/// Replays dockerd of the plan's version on the plan's host: what it writes, in its order.
pub(super) fn write(plan: &EnginePlan<'_>) -> Written {
    let mut t = crate::platform::tables::Tables::new();
    match plan.version {
        Version::V20_10 => v20::replay(&mut t, plan),
        Version::V28 => v28::replay(&mut t, plan),
    }
    let before_own = t.before_own();
    let (text, places) = t.save(plan.host.span);
    Written {
        text,
        places,
        before_own,
    }
}

/// nat PREROUTING and OUTPUT jump to nat DOCKER for a local destination, each appended once;
/// OUTPUT skips 127.0.0.0/8 with the userland proxy (every version writes these alike).
fn nat_jumps(t: &mut crate::platform::tables::Tables, plan: &EnginePlan<'_>, place: Span) {
    use crate::platform::tables::Table;
    let prerouting = format!("-m addrtype --dst-type LOCAL -j {DOCKER}");
    t.append_once(Table::Nat, "PREROUTING", prerouting, place);
    let output = if plan.userland_proxy {
        format!("! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j {DOCKER}")
    } else {
        format!("-m addrtype --dst-type LOCAL -j {DOCKER}")
    };
    t.append_once(Table::Nat, "OUTPUT", output, place);
}

/// A network as iptables prints it (`172.17.0.0/16`).
fn net(n: Ipv4Net) -> String {
    n.trunc().to_string()
}

/// A published port's protocol, as `-p` and `-m` name it.
fn proto(p: &Published<'_>) -> &'static str {
    match p.publish.proto {
        RuleProto::Udp => "udp",
        RuleProto::Tcp | RuleProto::Icmp => "tcp",
    }
}

/// `-d IP/32 ` for a published port's host IP; nothing for none or `0.0.0.0`, which dockerd
/// passes as `0/0` (any address), which iptables does not print.
fn host_dst(ip: Option<Ipv4Addr>) -> String {
    match ip {
        Some(ip) if !ip.is_unspecified() => format!("-d {ip}/32 "),
        _ => String::new(),
    }
}
