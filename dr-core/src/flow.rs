//! Flow keys: what identifies a connection, as IPVS keys it.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::net::IpAddr;

/// The transport protocols a virtual service can balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp = 6,
    /// UDP (IP protocol 17).
    Udp = 17,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The protocol for an IP protocol number, if it is one a service can balance.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            _ => None,
        }
    }

    /// The name `ipvsadm` prints: `TCP` or `UDP`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }

    /// The ipvsadm option that names a service of this protocol: `-t` or `-u`
    /// (`option_from_protocol`).
    pub const fn option(self) -> &'static str {
        match self {
            Self::Tcp => "-t",
            Self::Udp => "-u",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The key of a connection entry: `(protocol, client address, client port, VIP, VIP port)`,
/// exactly the fields `__ip_vs_conn_in_get` matches on for incoming packets.
///
/// The client and VIP addresses always have the same family.
///
/// A key hashes as few wide words (one for IPv4), not field by field: hashing it is on the
/// packet path of every frame.
#[derive(Clone, Copy, Debug, Eq)]
pub struct FlowKey {
    /// Transport protocol.
    pub protocol: Protocol,
    /// The client's (source) address.
    pub client: IpAddr,
    /// The client's (source) port.
    pub client_port: u16,
    /// The virtual IP the client addressed.
    pub vip: IpAddr,
    /// The destination port on the VIP.
    pub vip_port: u16,
}

impl PartialEq for FlowKey {
    /// Every field, the ports first: they are the most likely to differ.
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.client_port == other.client_port
            && self.vip_port == other.vip_port
            && self.protocol == other.protocol
            && self.client == other.client
            && self.vip == other.vip
    }
}

impl Hash for FlowKey {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let small = u64::from(self.protocol.number()) << 32
            | u64::from(self.client_port) << 16
            | u64::from(self.vip_port);
        match (self.client, self.vip) {
            (IpAddr::V4(client), IpAddr::V4(vip)) => state.write_u128(
                u128::from(small) << 64
                    | u128::from(client.to_bits()) << 32
                    | u128::from(vip.to_bits()),
            ),
            (client, vip) => {
                // Mixed families never form a key, but must still hash consistently.
                let bits = |addr: IpAddr| match addr {
                    IpAddr::V4(a) => u128::from(a.to_bits()) | 1 << 127,
                    IpAddr::V6(a) => a.to_bits(),
                };
                state.write_u128(bits(client));
                state.write_u128(bits(vip));
                state.write_u64(small | 1 << 48);
            }
        }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}",
            self.protocol,
            SocketDisplay(self.client, self.client_port),
            SocketDisplay(self.vip, self.vip_port)
        )
    }
}

/// `a.b.c.d:port` or `[v6]:port`, as `ipvsadm -n` prints addresses.
#[derive(Clone, Copy, Debug)]
pub struct SocketDisplay(pub IpAddr, pub u16);

impl fmt::Display for SocketDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate alloc;
    use alloc::string::ToString;

    #[test]
    fn protocol_numbers() {
        assert_eq!(Protocol::from_number(6), Some(Protocol::Tcp));
        assert_eq!(Protocol::from_number(17), Some(Protocol::Udp));
        assert_eq!(Protocol::from_number(1), None);
        assert_eq!(Protocol::Udp.number(), 17);
    }

    #[test]
    fn display() {
        let key = FlowKey {
            protocol: Protocol::Tcp,
            client: "2001:db8::1".parse().unwrap(),
            client_port: 40000,
            vip: "2001:db8::100".parse().unwrap(),
            vip_port: 80,
        };
        assert_eq!(key.to_string(), "TCP [2001:db8::1]:40000 -> [2001:db8::100]:80");
    }
}
