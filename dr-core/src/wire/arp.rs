//! ARP (RFC 826) for IPv4 VIPs: replies, announcements and requests, written in place.

use crate::mac::MacAddr;
use core::net::Ipv4Addr;

/// The length of an Ethernet/IPv4 ARP packet.
const ARP_LEN: usize = 28;

/// ARP operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArpOp {
    Request = 1,
    Reply = 2,
}

/// Turns the ARP request in `frame` (network header at `l3`) into the reply that says
/// `vip` is at `mac`, addressed to the requester. VLAN tags stay as they are.
/// Returns false (and leaves the frame alone) if the frame is too short.
pub(crate) fn write_arp_reply(frame: &mut [u8], l3: usize, mac: MacAddr, vip: Ipv4Addr) -> bool {
    if frame.len() < l3 + ARP_LEN {
        return false;
    }
    let mut requester_mac = [0u8; 6];
    requester_mac.copy_from_slice(&frame[l3 + 8..l3 + 14]);
    let mut requester_ip = [0u8; 4];
    requester_ip.copy_from_slice(&frame[l3 + 14..l3 + 18]);
    let ethernet_src = {
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        src
    };
    frame[0..6].copy_from_slice(&ethernet_src);
    frame[6..12].copy_from_slice(&mac.0);
    let arp = &mut frame[l3..l3 + ARP_LEN];
    arp[6..8].copy_from_slice(&(ArpOp::Reply as u16).to_be_bytes());
    arp[8..14].copy_from_slice(&mac.0);
    arp[14..18].copy_from_slice(&vip.octets());
    arp[18..24].copy_from_slice(&requester_mac);
    arp[24..28].copy_from_slice(&requester_ip);
    true
}

/// Writes an untagged, broadcast ARP request into `buf` and returns its length (padded to the
/// 60-byte Ethernet minimum), or 0 if `buf` is too short.
fn write_arp(buf: &mut [u8], mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> usize {
    let Some(frame) = buf.get_mut(..super::MIN_FRAME_LEN) else {
        return 0;
    };
    frame.fill(0);
    frame[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
    frame[6..12].copy_from_slice(&mac.0);
    frame[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let arp = &mut frame[14..14 + ARP_LEN];
    arp[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, ArpOp::Request as u8]);
    arp[8..14].copy_from_slice(&mac.0);
    arp[14..18].copy_from_slice(&sender_ip.octets());
    arp[24..28].copy_from_slice(&target_ip.octets());
    super::MIN_FRAME_LEN
}

/// A gratuitous ARP announcing `vip` at `mac` (an RFC 5227 announcement: a request whose
/// sender and target address are both the VIP).
pub(crate) fn write_arp_announcement(buf: &mut [u8], mac: MacAddr, vip: Ipv4Addr) -> usize {
    write_arp(buf, mac, vip, vip)
}

/// An ARP request for `target` from `sender` (0.0.0.0 makes it an RFC 5227 probe, which
/// hosts answer all the same).
pub(crate) fn write_arp_request(
    buf: &mut [u8],
    mac: MacAddr,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> usize {
    write_arp(buf, mac, sender, target)
}
