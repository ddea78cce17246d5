//! Martian sources: packets to a VIP from an address no other host may send from, dropped
//! as the kernel's input path drops them before IPVS (at `LOCAL_IN`, spec §3.1) sees them.
//!
//! For IPv4, `ip_route_input_slow` (net/ipv4/route.c) rejects a multicast source
//! (`ipv4_is_multicast`), the limited broadcast 255.255.255.255 (`ipv4_is_lbcast`), a source
//! in 0.0.0.0/8 (`ipv4_is_zeronet`: the unspecified address and the "this network"
//! addresses of RFC 1122 §3.2.1.3) and, with `route_localnet` off, a loopback source
//! (127.0.0.0/8); `fib_validate_source` then rejects a source that is one of the host's own
//! addresses, which the VIPs are. For IPv6 the director applies the same classes: the
//! unspecified address `::` (never the source of a packet to a unicast address but for
//! Neighbor Discovery, RFC 4291 §2.5.2), the loopback `::1` and multicast sources
//! (`ip6_rcv_core` drops these, RFC 4291 §2.5.3 and §2.7) and the VIPs.
//!
//! The rule covers every IP packet whose destination is a VIP (TCP, UDP, their fragments,
//! ICMP errors and echo requests, other protocols), except Neighbor Discovery (ICMPv6 types
//! 133 to 137), whose own rules (duplicate address detection comes from `::`) are in
//! `link.rs`. A packet to any other address is the host's to judge, and a frame that the
//! link layer drops (group or foreign destination MAC) keeps that reason.
//!
//! The check runs for every IP packet, ahead of the connection lookup, so that no entry in
//! the table can carry a martian past it (a client address that later becomes a VIP, say).
//! It stays cheap: the classes are a comparison of the first byte (the whole address for
//! IPv6), and the VIP test goes through a bit set of the VIPs' [`VipFilter`] buckets, so
//! that an ordinary source costs no hash lookup; only a source whose bucket holds a VIP
//! (or an attacker's source chosen to land there) asks the VIP map, one lookup.

use super::Director;
use crate::verdict::DropReason;
use crate::wire::{IpPacket, Packet, Transport};
use core::net::IpAddr;

/// ICMPv6 Router Solicitation, the first Neighbor Discovery type (RFC 4861 §4).
const ND_FIRST: u8 = 133;
/// ICMPv6 Redirect, the last Neighbor Discovery type.
const ND_LAST: u8 = 137;

impl Director {
    /// Why an IP packet to a VIP must be dropped for its source address, if it must.
    #[inline(always)]
    pub(super) fn martian_source(&self, packet: &Packet, ip: &IpPacket) -> Option<DropReason> {
        let reason = match source_class(ip.src) {
            Some(reason) => reason,
            None if self.vip_filter.may_contain(ip.src) && self.vips.contains_key(&ip.src) => {
                DropReason::MartianSourceVip
            }
            None => return None,
        };
        self.martian_applies(packet, ip).then_some(reason)
    }

    /// Whether the martian rule applies to a packet with a martian source: it is to a
    /// VIP, not Neighbor Discovery, and not dropped by the link layer for another reason.
    #[cold]
    fn martian_applies(&self, packet: &Packet, ip: &IpPacket) -> bool {
        let nd = matches!(ip.transport, Transport::Icmpv6 { icmp_type: ND_FIRST..=ND_LAST, .. });
        !nd && self.link_drop(packet).is_none() && self.vips.contains_key(&ip.dst)
    }
}

/// The martian class of a source address that no host may send from: unspecified (IPv4
/// 0.0.0.0/8), loopback, multicast, or the IPv4 limited broadcast.
#[inline(always)]
fn source_class(src: IpAddr) -> Option<DropReason> {
    match src {
        IpAddr::V4(a) => match a.octets()[0] {
            0 => Some(DropReason::MartianSourceUnspecified),
            127 => Some(DropReason::MartianSourceLoopback),
            224..=239 => Some(DropReason::MartianSourceMulticast),
            255 if a.is_broadcast() => Some(DropReason::MartianSourceBroadcast),
            _ => None,
        },
        IpAddr::V6(a) => match a.to_bits() {
            0 => Some(DropReason::MartianSourceUnspecified),
            1 => Some(DropReason::MartianSourceLoopback),
            bits if bits >> 120 == 0xff => Some(DropReason::MartianSourceMulticast),
            _ => None,
        },
    }
}

/// The number of 64-bit words of a [`VipFilter`]: 1024 buckets.
const FILTER_WORDS: usize = 16;
/// log2 of the number of buckets.
const FILTER_BITS: u32 = 10;

/// A set of buckets, one bit each, holding every VIP's bucket: an address whose bucket is
/// clear is no VIP. Kept in step with the VIP map by the configuration methods.
#[derive(Clone, Debug, Default)]
pub(super) struct VipFilter([u64; FILTER_WORDS]);

impl VipFilter {
    /// The filter of exactly these VIPs.
    pub(super) fn of(vips: impl Iterator<Item = IpAddr>) -> Self {
        let mut filter = Self::default();
        for vip in vips {
            let b = bucket(vip);
            filter.0[b / 64] |= 1 << (b % 64);
        }
        filter
    }

    /// False if `addr` is certainly no VIP.
    #[inline(always)]
    fn may_contain(&self, addr: IpAddr) -> bool {
        let b = bucket(addr);
        self.0.get(b / 64).is_some_and(|word| word >> (b % 64) & 1 != 0)
    }
}

/// An address's bucket: the address folded to 32 bits, spread by a multiplicative
/// (Fibonacci) hash whose top bits pick the bucket, so that neighbouring VIPs (a run of
/// addresses in one subnet) fall in different buckets.
#[inline(always)]
fn bucket(addr: IpAddr) -> usize {
    let folded = match addr {
        IpAddr::V4(a) => a.to_bits(),
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            let half = (bits as u64) ^ ((bits >> 64) as u64);
            (half as u32) ^ ((half >> 32) as u32)
        }
    };
    (folded.wrapping_mul(0x9e37_79b1) >> (32 - FILTER_BITS)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn classes() {
        let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
        let cases = [
            (v4("0.0.0.0"), Some(DropReason::MartianSourceUnspecified)),
            (v4("0.1.2.3"), Some(DropReason::MartianSourceUnspecified)),
            (v4("127.0.0.1"), Some(DropReason::MartianSourceLoopback)),
            (v4("127.255.255.254"), Some(DropReason::MartianSourceLoopback)),
            (v4("224.0.0.1"), Some(DropReason::MartianSourceMulticast)),
            (v4("239.255.255.255"), Some(DropReason::MartianSourceMulticast)),
            (v4("255.255.255.255"), Some(DropReason::MartianSourceBroadcast)),
            (v4("1.0.0.0"), None),
            (v4("126.255.255.255"), None),
            (v4("128.0.0.0"), None),
            (v4("223.255.255.255"), None),
            // Class E is not martian in Linux; neither is a directed broadcast.
            (v4("240.0.0.1"), None),
            (v4("255.255.255.254"), None),
            (v4("192.0.2.255"), None),
            (v6("::"), Some(DropReason::MartianSourceUnspecified)),
            (v6("::1"), Some(DropReason::MartianSourceLoopback)),
            (v6("ff02::1"), Some(DropReason::MartianSourceMulticast)),
            (v6("ff0e::1:2"), Some(DropReason::MartianSourceMulticast)),
            (v6("::2"), None),
            (v6("fe80::1"), None),
            (v6("feff::1"), None),
            (v6("2001:db8::1"), None),
        ];
        for (addr, class) in cases {
            assert_eq!(source_class(addr), class, "{addr}");
        }
    }

    #[test]
    fn filter_holds_its_vips_and_spreads_a_subnet() {
        let vips: alloc::vec::Vec<IpAddr> =
            (1..=255u8).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))).collect();
        let filter = VipFilter::of(vips.iter().copied());
        assert!(vips.iter().all(|&vip| filter.may_contain(vip)));
        let set: u32 = filter.0.iter().map(|w| w.count_ones()).sum();
        assert!(set > 200, "255 neighbouring VIPs share few buckets: {set} set");
        let empty = VipFilter::default();
        assert!(!empty.may_contain(vips[0]));
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        assert!(VipFilter::of([v6].into_iter()).may_contain(v6));
    }
}
