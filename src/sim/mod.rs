//! The simulator: a deterministic discrete-event engine ([`Sim`]) running a Linux-like
//! dataplane over the [`crate::model`], and the probes (`ping`, TCP connect, UDP) that run on it.

mod compiled;
mod conntrack;
mod engine;
mod fast;
mod neighbour;
mod packet;
mod probe;
mod queue;
mod stack;
mod tap;
mod time;
mod trace;

pub use compiled::Compiled;
pub use engine::{Received, Sim, SimConfig, Stopped};
pub use fast::{FastPath, FastProbe, Neighbours};
pub use packet::{
    Arp, ArpOp, Frame, FramePayload, IcmpError, Inner, InnerFlow, Ipv4Packet, TcpFlags, Transport,
};
pub use probe::{
    EPHEMERAL_PORT, EchoReply, ErrorReport, Observed, ProbeKind, ProbeRun, RedirectReport,
    outcome_of, run_probe, run_probe_on,
};
pub use stack::SendError;
pub use tap::{Transmission, Wire};
pub use time::SimTime;
pub use trace::{DropReason, Step, StepKind};
