//! ICMP and ICMPv6 "port unreachable", as the kernel's `ip_vs_leave` → `icmp_send` sends it
//! to a client whose new connection found no real server.

use super::checksum::icmpv6_checksum;
use super::classify::{IpPacket, Packet};
use crate::mac::MacAddr;
use core::net::IpAddr;
use etherparse::checksum::u32_16bit_word;

/// How much of the offending datagram an ICMP error quotes: `icmp_send` fits the whole
/// reply in 576 bytes, so 576 − 20 (IP) − 8 (ICMP). The same bound is used for ICMPv6.
pub(crate) const QUOTE_MAX: usize = 548;

fn ones_complement(bytes: &[u8]) -> [u8; 2] {
    u32_16bit_word::ones_complement(u32_16bit_word::add_slice(0, bytes)).to_ne_bytes()
}

/// Writes into `buf` the port-unreachable reply to the packet in `frame`: from the VIP and
/// the director's MAC, back to the client's MAC on the same VLANs. Returns its length, or
/// 0 if `buf` is too short.
pub(crate) fn write_port_unreachable(
    buf: &mut [u8],
    mac: MacAddr,
    frame: &[u8],
    packet: &Packet,
    ip: &IpPacket,
) -> usize {
    let l3 = packet.l3_offset;
    let datagram_end = (l3 + ip.datagram_len as usize).min(frame.len());
    let Some(offending) = frame.get(l3..datagram_end) else { return 0 };
    let quoted = &offending[..offending.len().min(QUOTE_MAX)];
    let (ip_len, icmp_type, code) = if ip.src.is_ipv4() { (20, 3, 3) } else { (40, 1, 4) };
    let total = l3 + ip_len + 8 + quoted.len();
    let Some(out) = buf.get_mut(..total) else { return 0 };
    out.fill(0);
    // Link layer: back to the sender, same tags.
    out[0..6].copy_from_slice(&packet.src_mac.0);
    out[6..12].copy_from_slice(&mac.0);
    out[12..l3].copy_from_slice(&frame[12..l3]);
    let (header, rest) = out[l3..].split_at_mut(ip_len);
    let (icmp, quote) = rest.split_at_mut(8);
    quote.copy_from_slice(quoted);
    icmp[0] = icmp_type;
    icmp[1] = code;
    let message_len = 8 + quoted.len();
    match (ip.dst, ip.src) {
        (IpAddr::V4(vip), IpAddr::V4(client)) => {
            header[0] = 0x45;
            header[1] = 0xc0; // IPTOS_PREC_INTERNETCONTROL, as icmp_send sets it
            header[2..4].copy_from_slice(&((ip_len + message_len) as u16).to_be_bytes());
            header[8] = 64;
            header[9] = 1;
            header[12..16].copy_from_slice(&vip.octets());
            header[16..20].copy_from_slice(&client.octets());
            let sum = ones_complement(header);
            header[10..12].copy_from_slice(&sum);
            let mut message = [0u8; 8 + QUOTE_MAX];
            message[..8].copy_from_slice(icmp);
            message[8..message_len].copy_from_slice(quoted);
            let sum = ones_complement(&message[..message_len]);
            icmp[2..4].copy_from_slice(&sum);
        }
        (IpAddr::V6(vip), IpAddr::V6(client)) => {
            header[0] = 0x60;
            header[4..6].copy_from_slice(&(message_len as u16).to_be_bytes());
            header[6] = 58;
            header[7] = 64;
            header[8..24].copy_from_slice(&vip.octets());
            header[24..40].copy_from_slice(&client.octets());
            let mut message = [0u8; 8 + QUOTE_MAX];
            message[..8].copy_from_slice(icmp);
            message[8..message_len].copy_from_slice(quoted);
            let sum = icmpv6_checksum(vip.octets(), client.octets(), &message[..message_len]);
            icmp[2..4].copy_from_slice(&sum);
        }
        _ => return 0,
    }
    total
}
