//! IPv6 Neighbor Discovery (RFC 4861) for IPv6 VIPs: validation of solicitations and
//! advertisements, and the advertisements and solicitations the director writes.

use super::checksum::icmpv6_checksum;
use super::classify::IpPacket;
use crate::mac::MacAddr;
use crate::verdict::DropReason;
use core::net::{IpAddr, Ipv6Addr};

const IPV6_HEADER_LEN: usize = 40;
const ND_HEADER_LEN: usize = 24;
const LINK_ADDR_OPTION_LEN: usize = 8;
const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LINK_ADDR: u8 = 1;
const OPTION_TARGET_LINK_ADDR: u8 = 2;
/// Neighbor Advertisement flags (RFC 4861 §4.4): Router, Solicited, Override.
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// `ff02::1`, all nodes on the link.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A validated Neighbor Discovery message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NdMessage {
    /// A Neighbor Solicitation: who has `target`?
    Solicitation {
        /// The address asked for.
        target: Ipv6Addr,
        /// The sender's link-layer address (Source Link-Layer Address option).
        source_mac: Option<MacAddr>,
    },
    /// A Neighbor Advertisement: `target` is at `target_mac`.
    Advertisement {
        /// The address advertised.
        target: Ipv6Addr,
        /// Its link-layer address (Target Link-Layer Address option).
        target_mac: Option<MacAddr>,
        /// Its flags.
        flags: NaFlags,
    },
}

/// The flags of a Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NaFlags {
    /// R: the sender is a router.
    pub(crate) router: bool,
    /// S: sent in response to a Neighbor Solicitation (to its source).
    pub(crate) solicited: bool,
    /// O: the advertisement should override a cached link-layer address.
    pub(crate) overrides: bool,
}

impl NaFlags {
    /// The flags of an advertisement's flags byte.
    const fn from_byte(byte: u8) -> Self {
        Self {
            router: byte & FLAG_ROUTER != 0,
            solicited: byte & FLAG_SOLICITED != 0,
            overrides: byte & FLAG_OVERRIDE != 0,
        }
    }
}

/// Validates a Neighbor Solicitation or Advertisement as RFC 4861 §7.1.1 / §7.1.2 require.
///
/// Returns `Ok(None)` for other ICMPv6 messages.
///
/// # Errors
///
/// [`DropReason::MalformedNeighborDiscovery`] for an NS or NA that fails validation.
pub(crate) fn parse_neighbor_message(
    frame: &[u8],
    l3_offset: usize,
    ip: &IpPacket,
) -> Result<Option<NdMessage>, DropReason> {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (ip.src, ip.dst) else {
        return Ok(None);
    };
    let end = l3_offset + ip.datagram_len as usize;
    let Some(message) = frame.get(ip.l4_offset..end) else {
        return Err(DropReason::MalformedNeighborDiscovery);
    };
    let icmp_type = message.first().copied().unwrap_or(0);
    if icmp_type != ICMPV6_NEIGHBOR_SOLICITATION && icmp_type != ICMPV6_NEIGHBOR_ADVERTISEMENT {
        return Ok(None);
    }
    let bad = DropReason::MalformedNeighborDiscovery;
    if ip.hop_limit != 255 || message.len() < ND_HEADER_LEN || message[1] != 0 {
        return Err(bad);
    }
    let icmp = etherparse::Icmpv6Slice::from_slice(message).map_err(|_| bad)?;
    if !icmp.is_checksum_valid(src.octets(), dst.octets()) {
        return Err(bad);
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&message[8..24]);
    let target = Ipv6Addr::from(target);
    if target.is_multicast() {
        return Err(bad);
    }
    let wanted_option = if icmp_type == ICMPV6_NEIGHBOR_SOLICITATION {
        OPTION_SOURCE_LINK_ADDR
    } else {
        OPTION_TARGET_LINK_ADDR
    };
    let link_addr = link_addr_option(&message[ND_HEADER_LEN..], wanted_option).ok_or(bad)?;
    if icmp_type == ICMPV6_NEIGHBOR_SOLICITATION {
        if src.is_unspecified() && (!is_solicited_node(dst) || link_addr.is_some()) {
            return Err(bad);
        }
        Ok(Some(NdMessage::Solicitation { target, source_mac: link_addr }))
    } else {
        let flags = NaFlags::from_byte(message[4]);
        if dst.is_multicast() && flags.solicited {
            return Err(bad);
        }
        Ok(Some(NdMessage::Advertisement { target, target_mac: link_addr, flags }))
    }
}

/// Walks the options; `None` if any option has length 0 or runs past the end, otherwise the
/// link-layer address of the first option of type `wanted`, if present.
fn link_addr_option(mut options: &[u8], wanted: u8) -> Option<Option<MacAddr>> {
    let mut found = None;
    while !options.is_empty() {
        let [kind, units, ..] = *options else {
            return None;
        };
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if kind == wanted && found.is_none() && len >= LINK_ADDR_OPTION_LEN {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&options[2..8]);
            found = Some(MacAddr(mac));
        }
        options = &options[len..];
    }
    Some(found)
}

/// `ff02::1:ffXX:XXXX`.
fn is_solicited_node(addr: Ipv6Addr) -> bool {
    let o = addr.octets();
    o[..11] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0] && o[11] == 1 && o[12] == 0xff
}

/// The solicited-node multicast group of `addr` (RFC 4291 §2.7.1).
fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    let mut group = [0u8; 16];
    group[..2].copy_from_slice(&[0xff, 0x02]);
    group[11] = 1;
    group[12] = 0xff;
    group[13..].copy_from_slice(&o[13..]);
    Ipv6Addr::from(group)
}

/// Writes an IPv6 header and an ICMPv6 Neighbor Discovery message at `l3` of `frame`, with
/// a link-layer address option when `link_option` is set, fixes the checksum, and zeroes
/// whatever follows up to the end of the frame so no stale bytes leave in the padding.
#[allow(clippy::too_many_arguments)]
fn write_nd(
    frame: &mut [u8],
    l3: usize,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    flags: u8,
    target: Ipv6Addr,
    link_option: Option<(u8, MacAddr)>,
) -> bool {
    let icmp_len = ND_HEADER_LEN + if link_option.is_some() { LINK_ADDR_OPTION_LEN } else { 0 };
    let Some(packet) = frame.get_mut(l3..) else {
        return false;
    };
    if packet.len() < IPV6_HEADER_LEN + icmp_len {
        return false;
    }
    // SECURITY: the frame may be a reused receive buffer; clear it before writing.
    packet.fill(0);
    let (header, icmp) = packet.split_at_mut(IPV6_HEADER_LEN);
    header[0] = 0x60;
    header[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    header[6] = 58;
    header[7] = 255;
    header[8..24].copy_from_slice(&src.octets());
    header[24..40].copy_from_slice(&dst.octets());
    icmp[0] = icmp_type;
    icmp[4] = flags;
    icmp[8..24].copy_from_slice(&target.octets());
    if let Some((kind, mac)) = link_option {
        icmp[24] = kind;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&mac.0);
    }
    let checksum = icmpv6_checksum(src.octets(), dst.octets(), &icmp[..icmp_len]);
    icmp[2..4].copy_from_slice(&checksum);
    true
}

/// Turns the Neighbor Solicitation for `vip` in `frame` into the solicited Neighbor
/// Advertisement from `mac`, addressed to the soliciting node. VLAN tags stay; the Target
/// Link-Layer Address option is included when the frame has room for it (always, for a
/// multicast solicitation, which carries the same-sized source option).
pub(crate) fn write_neighbor_advertisement(
    frame: &mut [u8],
    l3: usize,
    mac: MacAddr,
    vip: Ipv6Addr,
    solicitor: Ipv6Addr,
) -> bool {
    if frame.len() < 12 {
        return false;
    }
    let mut requester_mac = [0u8; 6];
    requester_mac.copy_from_slice(&frame[6..12]);
    let with_option = frame.len() >= l3 + IPV6_HEADER_LEN + ND_HEADER_LEN + LINK_ADDR_OPTION_LEN;
    let option = with_option.then_some((OPTION_TARGET_LINK_ADDR, mac));
    let flags = FLAG_SOLICITED | FLAG_OVERRIDE;
    if !write_nd(frame, l3, vip, solicitor, ICMPV6_NEIGHBOR_ADVERTISEMENT, flags, vip, option) {
        return false;
    }
    frame[0..6].copy_from_slice(&requester_mac);
    frame[6..12].copy_from_slice(&mac.0);
    true
}

/// Writes the Ethernet header of a generated, untagged IPv6 frame.
fn write_ethernet(buf: &mut [u8], dst: MacAddr, src: MacAddr) {
    buf[0..6].copy_from_slice(&dst.0);
    buf[6..12].copy_from_slice(&src.0);
    buf[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
}

const GENERATED_ND_LEN: usize =
    super::ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + ND_HEADER_LEN + LINK_ADDR_OPTION_LEN;

/// An unsolicited Neighbor Advertisement of `vip` at `mac` to all nodes (RFC 4861 §7.2.6),
/// with the override flag set. Returns the length written, or 0 if `buf` is too short.
pub(crate) fn write_unsolicited_advertisement(
    buf: &mut [u8],
    mac: MacAddr,
    vip: Ipv6Addr,
) -> usize {
    let Some(frame) = buf.get_mut(..GENERATED_ND_LEN) else {
        return 0;
    };
    write_ethernet(frame, MacAddr::ipv6_multicast(ALL_NODES.octets()), mac);
    let option = Some((OPTION_TARGET_LINK_ADDR, mac));
    write_nd(frame, 14, vip, ALL_NODES, ICMPV6_NEIGHBOR_ADVERTISEMENT, FLAG_OVERRIDE, vip, option);
    GENERATED_ND_LEN
}

/// A Neighbor Solicitation for `target` from `source`, sent to the target's solicited-node
/// group with our link-layer address. Returns the length written, or 0 if `buf` is too short.
pub(crate) fn write_neighbor_solicitation(
    buf: &mut [u8],
    mac: MacAddr,
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> usize {
    let Some(frame) = buf.get_mut(..GENERATED_ND_LEN) else {
        return 0;
    };
    let group = solicited_node(target);
    write_ethernet(frame, MacAddr::ipv6_multicast(group.octets()), mac);
    let option = Some((OPTION_SOURCE_LINK_ADDR, mac));
    write_nd(frame, 14, source, group, ICMPV6_NEIGHBOR_SOLICITATION, 0, target, option);
    GENERATED_ND_LEN
}

/// The modified EUI-64 link-local address for `mac` (RFC 4291 appendix A), the source of
/// our solicitations when the configuration gives no IPv6 address.
pub(crate) fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group() {
        let addr: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(solicited_node(addr), "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node(solicited_node(addr)));
        assert!(!is_solicited_node(ALL_NODES));
    }

    #[test]
    fn eui64_link_local() {
        let mac = MacAddr([0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);
        assert_eq!(link_local(mac), "fe80::ff:feaa:bbcc".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn advertisement_flags() {
        let none = NaFlags::default();
        assert_eq!(NaFlags::from_byte(0), none);
        assert_eq!(NaFlags::from_byte(0x80), NaFlags { router: true, ..none });
        assert_eq!(NaFlags::from_byte(0x40), NaFlags { solicited: true, ..none });
        assert_eq!(NaFlags::from_byte(0x20), NaFlags { overrides: true, ..none });
        let all = NaFlags { router: true, solicited: true, overrides: true };
        assert_eq!(NaFlags::from_byte(0xff), all, "the reserved bits are ignored");
        assert_eq!(NaFlags::from_byte(0x1f), none);
    }

    #[test]
    fn options_walk() {
        let opts = [1, 1, 1, 2, 3, 4, 5, 6, 2, 1, 9, 9, 9, 9, 9, 9];
        assert_eq!(link_addr_option(&opts, 2), Some(Some(MacAddr([9; 6]))));
        assert_eq!(link_addr_option(&opts, 1), Some(Some(MacAddr([1, 2, 3, 4, 5, 6]))));
        assert_eq!(link_addr_option(&[], 1), Some(None));
        assert_eq!(link_addr_option(&[1, 0, 0, 0, 0, 0, 0, 0], 1), None);
        assert_eq!(link_addr_option(&[1, 2, 0, 0, 0, 0, 0, 0], 1), None);
        assert_eq!(link_addr_option(&[1], 1), None);
    }
}
