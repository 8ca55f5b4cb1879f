//! Typed indices into a [`super::Network`]: a `NodeId` can never be used where an `IfaceId` belongs.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u32);

        impl $name {
            /// The position in the network's vector of these elements.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            pub(crate) fn from_index(index: usize) -> Self {
                Self(u32::try_from(index).expect("fewer than 2^32 elements"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A node (host, router, VM, container, pod) of the network.
    NodeId,
    "node#"
);
id_type!(
    /// An interface of some node.
    IfaceId,
    "iface#"
);
id_type!(
    /// An L2 segment.
    SegmentId,
    "segment#"
);

impl IfaceId {
    /// `lo` in a netfilter match: what a packet the node sent to one of its own addresses goes
    /// out through and comes back in on. Not an index: [`super::Network::interface_name`] names
    /// it, [`super::Network::interface`] must not be asked.
    pub const LOOPBACK: IfaceId = IfaceId(u32::MAX);
}
