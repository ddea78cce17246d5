//! What the director decided about a frame.

use crate::service::RealId;
use core::fmt;

/// The outcome of [`Director::process`](crate::Director::process).
///
/// [`Verdict::Forward`] and [`Verdict::Reply`] both mean *transmit the frame*: it has been
/// rewritten in place and goes back out on the interface it came from.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The frame belongs to a connection and now carries the real server's MAC as its
    /// destination and the director's as its source. Transmit it.
    Forward {
        /// The real server the frame goes to.
        real: RealId,
    },
    /// The frame was replaced by a reply (an ARP reply or Neighbor Advertisement for a VIP),
    /// addressed back to its sender. Transmit it.
    Reply,
    /// The frame is not load balanced; leave it to the host's own stack.
    Pass(PassReason),
    /// The frame is discarded.
    Drop(DropReason),
}

impl Verdict {
    /// True when the (rewritten) frame must be transmitted.
    pub const fn is_transmit(&self) -> bool {
        matches!(self, Self::Forward { .. } | Self::Reply)
    }
}

macro_rules! reasons {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[doc = $doc:literal])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $name {
            /// Every reason, in counter order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
            /// The number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// A stable kebab-case name, used in listings and metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )*
                }
            }

            /// The index of this reason's counter.
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

reasons! {
    /// Why a frame was dropped. Every reason has its own counter in
    /// [`Counters`](crate::Counters).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum DropReason {
        /// Shorter than an Ethernet II header, or an 802.3 length field instead of an EtherType.
        MalformedEthernet => "malformed-ethernet",
        /// A VLAN tag cut short.
        MalformedVlan => "malformed-vlan",
        /// More than two VLAN tags (802.1Q / 802.1ad).
        TooManyVlanTags => "too-many-vlan-tags",
        /// The source MAC is the director's own: a frame we sent came back.
        OwnFrame => "own-frame",
        /// The source MAC is a group (multicast or broadcast) address.
        InvalidSourceMac => "invalid-source-mac",
        /// Broadcast or multicast destination, and not ARP or Neighbor Discovery for a VIP.
        NotUnicast => "not-unicast",
        /// Unicast to another station's MAC (a promiscuous interface or a flooding switch).
        OtherHost => "other-host",
        /// An ARP packet that is not Ethernet/IPv4 or is cut short.
        MalformedArp => "malformed-arp",
        /// IPv4 header with a wrong version or header length.
        MalformedIpv4 => "malformed-ipv4",
        /// IPv4 header checksum does not verify.
        Ipv4Checksum => "ipv4-checksum",
        /// IPv4 total length shorter than the header or longer than the frame.
        Ipv4Length => "ipv4-length",
        /// IPv4 options that do not parse: an option length below 2 or past the end of the
        /// header (`ip_options_compile`).
        MalformedIpv4Options => "malformed-ipv4-options",
        /// IPv6 header with a wrong version, or cut short.
        MalformedIpv6 => "malformed-ipv6",
        /// IPv6 payload length longer than the frame.
        Ipv6Length => "ipv6-length",
        /// An IPv6 extension header chain that is cut short or out of order.
        MalformedIpv6Extension => "malformed-ipv6-extension",
        /// TCP header cut short or with a data offset below 5 words.
        MalformedTcp => "malformed-tcp",
        /// UDP header cut short or with an inconsistent length field.
        MalformedUdp => "malformed-udp",
        /// ICMP or ICMPv6 header cut short.
        MalformedIcmp => "malformed-icmp",
        /// An ICMP or ICMPv6 error or echo request to a VIP whose checksum does not verify
        /// (`ip_vs_in_icmp` drops them too).
        IcmpChecksum => "icmp-checksum",
        /// A Neighbor Solicitation or Advertisement that fails RFC 4861 §7.1 validation.
        MalformedNeighborDiscovery => "malformed-neighbor-discovery",
        /// To a VIP from a VIP: the kernel's `fib_validate_source` rejects a source that is
        /// one of its own addresses.
        MartianSourceVip => "martian-source-vip",
        /// To a VIP from the unspecified address: IPv6 `::`, or IPv4 0.0.0.0/8
        /// (`ipv4_is_zeronet` in `ip_route_input_slow`).
        MartianSourceUnspecified => "martian-source-unspecified",
        /// To a VIP from a loopback address, 127.0.0.0/8 or `::1` (`ipv4_is_loopback` with
        /// `route_localnet` off; `ip6_rcv_core`).
        MartianSourceLoopback => "martian-source-loopback",
        /// To a VIP from a multicast address, 224.0.0.0/4 or ff00::/8
        /// (`ipv4_is_multicast`; `ip6_rcv_core`).
        MartianSourceMulticast => "martian-source-multicast",
        /// To a VIP from the limited broadcast 255.255.255.255 (`ipv4_is_lbcast`).
        MartianSourceBroadcast => "martian-source-broadcast",
        /// A fragmented ICMPv6 message to a VIP (`ip_vs_in_icmp_v6` drops them).
        Fragment => "fragment",
        /// A later fragment to a VIP whose first fragment was not seen, or seen too long
        /// ago: the director neither holds nor reassembles fragments.
        FragmentUnmatched => "fragment-unmatched",
        /// `decrement_ttl` is on and the TTL or hop limit is 1 or less.
        TtlExceeded => "ttl-exceeded",
        /// The scheduler found no real server (all weight 0, overloaded or unresolved).
        NoRealAvailable => "no-real-available",
        /// A new connection arrived while the connection table was full.
        ConnTableFull => "conn-table-full",
        /// A packet of a connection whose real server was removed (`expire_nodest_conn` off,
        /// as the kernel's default).
        RealRemoved => "real-removed",
    }
}

reasons! {
    /// Why a frame was left to the host. Each reason has a counter too.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum PassReason {
        /// Neither ARP nor IP (another EtherType).
        OtherEtherType => "other-ether-type",
        /// An ARP packet that is not a request for a VIP.
        Arp => "arp",
        /// An IP packet whose destination is no VIP.
        NotVip => "not-vip",
        /// To a VIP, but no service matches its protocol and port.
        NoService => "no-service",
        /// A TCP segment without SYN (unless `sloppy_tcp`) or with RST, and no connection entry.
        NoConnection => "no-connection",
        /// ICMP or ICMPv6 to a VIP that is neither Neighbor Discovery, nor an error about a
        /// connection, nor an echo request the director answers.
        Icmp => "icmp",
        /// A later fragment of a datagram whose first fragment was passed to the host.
        Fragment => "fragment",
        /// Another IP protocol to a VIP.
        OtherProtocol => "other-protocol",
        /// A frame on a VLAN the director does not serve ([`Config::vlans`](crate::Config::vlans)).
        VlanNotServed => "vlan-not-served",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_dense() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            for other in &DropReason::ALL[i + 1..] {
                assert_ne!(r.name(), other.name());
            }
        }
        for (i, r) in PassReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn transmit_verdicts() {
        assert!(Verdict::Reply.is_transmit());
        assert!(Verdict::Forward { real: RealId::from_index(0) }.is_transmit());
        assert!(!Verdict::Pass(PassReason::NotVip).is_transmit());
        assert!(!Verdict::Drop(DropReason::OwnFrame).is_transmit());
    }
}
