//! Platform sections (VirtualBox, Docker, OpenStack) lower into the core network model by
//! **expanding** into ordinary segments, nodes, routes and `nat:`/`firewall:` rules before
//! validation. Everything downstream (validation, the engine, explanations) is then the same
//! for a hand-written router and a Neutron router; generated elements keep the position of the
//! platform entry they came from, and their rule comments speak the platform's words
//! ("security group `default` of instance `VM_ubuntu`").
//!
//! Names of generated infrastructure nodes and segments use the platform object's name plus a
//! suffix (`vm-nat1`, `vm-docker0`, `pc-vboxnet0`) so they never clash with the user's.

pub mod docker;
pub mod kubernetes;
pub mod openstack;
pub mod virtualbox;

mod tables;

pub(crate) use tables::{probability, quoted};

use crate::format::Diagnostic;
use crate::format::file::TopologyFile;

/// Expands every platform section of `file` in place; VirtualBox first, since Docker engines
/// and OpenStack clients may run on its VMs.
/// `base` is the directory of the topology file (Compose files and Kubernetes manifests are
/// relative to it).
pub(crate) fn expand(file: &mut TopologyFile, base: &std::path::Path) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if let Some(section) = file.virtualbox.take() {
        virtualbox::expand(file, &section, &mut diagnostics);
        file.virtualbox = Some(section);
    }
    if let Some(section) = file.docker.take() {
        docker::expand(file, &section, base, &mut diagnostics);
        file.docker = Some(section);
    }
    if let Some(section) = file.openstack.take() {
        openstack::expand(file, &section, &mut diagnostics);
        file.openstack = Some(section);
    }
    if let Some(section) = file.kubernetes.take() {
        kubernetes::expand(file, &section, base, &mut diagnostics);
        file.kubernetes = Some(section);
    }
    diagnostics
}
