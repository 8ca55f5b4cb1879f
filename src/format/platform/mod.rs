//! The platform sections of a topology file (`virtualbox:`, `docker:`, `openstack:`,
//! `kubernetes:`) as the file writes them. Their expansion into plain segments, nodes and
//! rules is `crate::platform`, a layer above the format.

pub mod docker;
pub mod kubernetes;
pub mod openstack;
pub mod virtualbox;
