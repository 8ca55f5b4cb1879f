//! Writing topologies: the model back into the file format, and the file format into YAML.
//! Used by generators and by the round-trip property tests (write → read gives the same model).

use super::file::{
    ExpectSpec, HttpSpec, InterfaceSpec, ListenSpec, NodeSpec, OsName, OutcomeName, ProtoName,
    RouteSpec, SegmentSpec, TopologyFile,
};
use super::source::Located;
use crate::model::{Network, OsProfile, Outcome, Probe, Proto, RouteKind, Service};

/// The file that describes `net` (connected routes are left out: they follow from the addresses).
pub fn to_file(net: &Network) -> TopologyFile {
    let segments = net
        .segments
        .iter()
        .map(|s| SegmentSpec {
            name: s.name.clone().into(),
            latency: (!s.latency.is_zero()).then(|| format!("{}ns", s.latency.as_nanos()).into()),
            loss: (s.loss != 0.0).then(|| format!("{}%", s.loss * 100.0).into()),
            mtu: (s.mtu != 1500).then(|| u32::from(s.mtu).into()),
        })
        .collect();
    let nodes = net
        .nodes
        .iter()
        .map(|n| NodeSpec {
            name: n.name.clone().into(),
            os: match n.os {
                OsProfile::Linux => None,
                OsProfile::Windows => Some(OsName::Windows.into()),
            },
            forwarding: n.forwarding.then_some(true),
            interfaces: net
                .interfaces_of(n)
                .map(|i| InterfaceSpec {
                    name: i.name.clone().into(),
                    segment: net.segment(i.segment).name.clone().into(),
                    addresses: i
                        .addresses
                        .iter()
                        .map(|a| Located::new(a.to_string()))
                        .collect(),
                    mac: Some(i.mac.to_string().into()),
                })
                .collect(),
            routes: n
                .routes
                .routes()
                .iter()
                .filter(|r| r.kind == RouteKind::Static)
                .map(|r| RouteSpec {
                    to: if r.dst.prefix_len() == 0 {
                        "default".to_owned()
                    } else {
                        r.dst.to_string()
                    }
                    .into(),
                    via: r.gateway.map(|g| g.to_string().into()),
                    dev: Some(net.interface(r.dev).name.clone().into()),
                    metric: (r.metric != 0).then(|| r.metric.into()),
                })
                .collect(),
            dns: n.dns.iter().map(|d| Located::new(d.clone())).collect(),
            listen: n
                .listeners
                .iter()
                .map(|l| {
                    let mut spec = ListenSpec {
                        port: u32::from(l.port.get()).into(),
                        proto: (l.proto == Proto::Udp).then(|| ProtoName::Udp.into()),
                        address: l.bind.map(|b| b.to_string().into()),
                        ..ListenSpec::default()
                    };
                    match &l.service {
                        Service::Ssh { banner } => spec.ssh = Some(banner.clone().into()),
                        Service::Http {
                            status,
                            body,
                            content_type,
                        } => {
                            spec.http = Some(Located::new(HttpSpec {
                                status: Some(u32::from(*status).into()),
                                body: body.clone(),
                                content_type: Some(content_type.clone()),
                            }));
                        }
                        Service::Banner(b) => spec.banner = Some(b.clone().into()),
                        Service::Plain => {}
                    }
                    spec
                })
                .collect(),
        })
        .collect();
    let expect = net
        .expectations
        .iter()
        .map(|e| {
            let target = Some(Located::new(e.target.written.clone()));
            let mut spec = ExpectSpec {
                from: net.node(e.from).name.clone().into(),
                outcome: outcome_name(e.outcome).into(),
                ttl: e.ttl.map(|t| u32::from(t).into()),
                max_rtt: e.max_rtt.map(|d| format!("{}ns", d.as_nanos()).into()),
                ..ExpectSpec::default()
            };
            match &e.probe {
                Probe::Ping => spec.ping = target,
                Probe::Ssh { port } => {
                    spec.ssh = target;
                    spec.port = (port.get() != 22).then(|| u32::from(port.get()).into());
                }
                Probe::Curl { port, path } => {
                    spec.curl = Some(format!("http://{}:{port}{path}", e.target.written).into());
                }
                Probe::Tcp { port } => {
                    spec.tcp = target;
                    spec.port = Some(u32::from(port.get()).into());
                }
                Probe::Udp { port } => {
                    spec.udp = target;
                    spec.port = Some(u32::from(port.get()).into());
                }
            }
            spec
        })
        .collect();
    TopologyFile {
        name: Some(net.name.clone()),
        description: net.description.clone(),
        segments,
        nodes,
        expect,
        ..TopologyFile::default()
    }
}

fn outcome_name(outcome: Outcome) -> OutcomeName {
    match outcome {
        Outcome::Reply => OutcomeName::Reply,
        Outcome::Refused => OutcomeName::Refused,
        Outcome::Timeout => OutcomeName::Timeout,
        Outcome::NoRoute => OutcomeName::NoRoute,
        Outcome::NetUnreachable => OutcomeName::NetUnreachable,
        Outcome::HostUnreachable => OutcomeName::HostUnreachable,
        Outcome::Filtered => OutcomeName::Filtered,
        Outcome::TtlExceeded => OutcomeName::TtlExceeded,
    }
}

/// The file as YAML text.
pub fn to_yaml(file: &TopologyFile) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(file)
}
