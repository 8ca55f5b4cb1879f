//! Small address types: MAC addresses and transport ports.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for group (multicast and broadcast) addresses, which no interface may own.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A locally administered unicast MAC derived from `seed` (the node and interface names),
    /// so that it does not change when unrelated parts of a topology do. FNV-1a, 40 bits kept.
    pub fn derived(seed: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in seed.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let b = hash.to_be_bytes();
        // 0x02: locally administered, unicast.
        Self([0x02, b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a text is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected six hexadecimal bytes separated by `:`, like 02:00:5e:10:00:01")]
pub struct MacParseError;

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or(MacParseError)?;
            if part.len() != 2 {
                return Err(MacParseError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacParseError)?;
        }
        if parts.next().is_some() {
            return Err(MacParseError);
        }
        Ok(Self(out))
    }
}

/// A TCP or UDP port number (1 to 65535; port 0 cannot be connected to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(u16);

impl Port {
    /// `None` for port 0.
    pub fn new(port: u16) -> Option<Self> {
        (port != 0).then_some(Self(port))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The SSH port.
    pub const SSH: Port = Port(22);
    /// The HTTP port.
    pub const HTTP: Port = Port(80);
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_and_prints() {
        let mac: MacAddr = "08:00:27:B2:a4:cd".parse().unwrap();
        assert_eq!(mac.to_string(), "08:00:27:b2:a4:cd");
        assert!("08:00:27:b2:a4".parse::<MacAddr>().is_err());
        assert!("08:00:27:b2:a4:cd:00".parse::<MacAddr>().is_err());
        assert!("0g:00:27:b2:a4:cd".parse::<MacAddr>().is_err());
        assert!(
            "ff:ff:ff:ff:ff:ff"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
    }

    #[test]
    fn derived_macs_are_stable_local_unicast() {
        let a = MacAddr::derived("pc/eth0");
        assert_eq!(a, MacAddr::derived("pc/eth0"));
        assert_ne!(a, MacAddr::derived("pc/eth1"));
        assert!(!a.is_multicast());
        assert_eq!(a.0[0] & 0x02, 0x02);
    }

    #[test]
    fn port_zero_is_not_a_port() {
        assert!(Port::new(0).is_none());
        assert_eq!(Port::new(22), Some(Port::SSH));
    }
}
