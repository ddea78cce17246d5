//! ICMP and ICMPv6 messages to a VIP: checksums, the flow an error quotes, and echo replies
//! written in place.

use super::checksum::icmpv6_checksum;
use super::classify::{IpPacket, Packet, Transport};
use crate::flow::{FlowKey, Protocol};
use crate::mac::MacAddr;
use core::net::IpAddr;
use etherparse::LaxIpSlice;
use etherparse::checksum::u32_16bit_word;

/// What an ICMP message to a VIP is, as far as the director is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpKind {
    /// An error about a datagram (`ip_vs_in_icmp`): IPv4 destination unreachable (3, which
    /// includes fragmentation needed), source quench (4), time exceeded (11); ICMPv6
    /// destination unreachable (1), packet too big (2), time exceeded (3).
    Error,
    /// An echo request (IPv4 8, ICMPv6 128).
    EchoRequest,
    /// Anything else: for the host.
    Other,
}

/// Sorts an ICMP or ICMPv6 message.
pub(crate) fn icmp_kind(transport: Transport) -> IcmpKind {
    match transport {
        Transport::Icmpv4 { icmp_type: 3 | 4 | 11, .. }
        | Transport::Icmpv6 { icmp_type: 1..=3, .. } => IcmpKind::Error,
        Transport::Icmpv4 { icmp_type: 8, code: 0 }
        | Transport::Icmpv6 { icmp_type: 128, code: 0 } => IcmpKind::EchoRequest,
        _ => IcmpKind::Other,
    }
}

fn ones_complement(sum: u32) -> [u8; 2] {
    u32_16bit_word::ones_complement(sum).to_ne_bytes()
}

/// The ICMP message of a classified packet: from its header to the end of the datagram.
fn message<'a>(frame: &'a [u8], packet: &Packet, ip: &IpPacket) -> Option<&'a [u8]> {
    let end = packet.l3_offset.checked_add(ip.datagram_len as usize)?;
    frame.get(ip.l4_offset..end)
}

/// Whether the message's checksum verifies (ICMPv6's covers the pseudo-header).
pub(crate) fn icmp_checksum_ok(frame: &[u8], packet: &Packet, ip: &IpPacket) -> bool {
    let Some(message) = message(frame, packet, ip) else { return false };
    match (ip.src, ip.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            ones_complement(u32_16bit_word::add_slice(0, message)) == [0, 0]
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            icmpv6_checksum(src.octets(), dst.octets(), message) == [0, 0]
        }
        _ => false,
    }
}

/// The connection an ICMP error is about: the datagram it quotes was sent from the VIP to
/// the client (a reply of the real server), so its header is read inverted, as
/// `ip_vs_in_icmp` does: key `(protocol, quoted dst, quoted dst port, quoted src, quoted src
/// port)`. `None` when the quote is cut short of the ports, is a later fragment, or is
/// neither TCP nor UDP.
pub(crate) fn quoted_flow(frame: &[u8], packet: &Packet, ip: &IpPacket) -> Option<FlowKey> {
    let quote = message(frame, packet, ip)?.get(8..)?;
    let (sliced, _) = LaxIpSlice::from_slice(quote).ok()?;
    let (src, dst, later_fragment) = match &sliced {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.fragments_offset().value() != 0,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let later = v6.payload().fragmented;
            (IpAddr::V6(h.source().into()), IpAddr::V6(h.destination().into()), later)
        }
    };
    if later_fragment || src.is_ipv4() != ip.src.is_ipv4() {
        return None;
    }
    let payload = sliced.payload();
    let protocol = Protocol::from_number(payload.ip_number.0)?;
    let [sp0, sp1, dp0, dp1, ..] = *payload.payload else { return None };
    Some(FlowKey {
        protocol,
        client: dst,
        client_port: u16::from_be_bytes([dp0, dp1]),
        vip: src,
        vip_port: u16::from_be_bytes([sp0, sp1]),
    })
}

/// Turns an echo request to a VIP into the echo reply, in place: back to the sender's MAC
/// from the director's, addresses swapped, a fresh TTL / hop limit of 64, the checksums
/// computed again, VLAN tags kept. False (nothing written) if the offsets do not fit.
pub(crate) fn write_echo_reply(
    frame: &mut [u8],
    packet: &Packet,
    ip: &IpPacket,
    mac: MacAddr,
) -> bool {
    let l3 = packet.l3_offset;
    let Some(end) = l3.checked_add(ip.datagram_len as usize).filter(|&e| e <= frame.len()) else {
        return false;
    };
    if ip.l4_offset + 8 > end {
        return false;
    }
    frame[0..6].copy_from_slice(&packet.src_mac.0);
    frame[6..12].copy_from_slice(&mac.0);
    let (header, message) = frame[l3..end].split_at_mut(ip.l4_offset - l3);
    match (ip.src, ip.dst) {
        (IpAddr::V4(client), IpAddr::V4(vip)) if header.len() >= 20 => {
            header[8] = 64;
            header[12..16].copy_from_slice(&vip.octets());
            header[16..20].copy_from_slice(&client.octets());
            header[10..12].fill(0);
            let sum = ones_complement(u32_16bit_word::add_slice(0, header));
            header[10..12].copy_from_slice(&sum);
            message[0] = 0;
            message[2..4].fill(0);
            let sum = ones_complement(u32_16bit_word::add_slice(0, message));
            message[2..4].copy_from_slice(&sum);
        }
        (IpAddr::V6(client), IpAddr::V6(vip)) if header.len() >= 40 => {
            header[7] = 64;
            header[8..24].copy_from_slice(&vip.octets());
            header[24..40].copy_from_slice(&client.octets());
            message[0] = 129;
            message[2..4].fill(0);
            let sum = icmpv6_checksum(vip.octets(), client.octets(), message);
            message[2..4].copy_from_slice(&sum);
        }
        _ => return false,
    }
    true
}
