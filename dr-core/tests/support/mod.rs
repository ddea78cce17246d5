//! Test helpers: the smoltcp frame builders of `examples/src/frames.rs` (shared with the
//! demo capture generator), and the checks tests make on what comes back.

#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

#[path = "../../../examples/src/frames.rs"]
mod frames;

pub use frames::*;

use dr_core::{Config, Director, MacAddr};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetRepr, HardwareAddress,
    Icmpv6Packet, Icmpv6Repr, Ipv6Packet, Ipv6Repr, RawHardwareAddress,
};

pub fn mac(bytes: [u8; 6]) -> MacAddr {
    MacAddr(bytes)
}

pub fn director(capacity: usize) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [11, 22, 33, 44]);
    config.capacity = capacity;
    Director::new(config).unwrap()
}

/// Parses an ICMPv6 frame back with smoltcp, checksum verified.
pub fn parse_ndisc(frame: &[u8]) -> (EthernetRepr, Ipv6Repr, Icmpv6Repr<'_>) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let eth_repr = EthernetRepr::parse(&eth).unwrap();
    let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let ip_repr = Ipv6Repr::parse(&ip).unwrap();
    let end = 14 + 40 + ip_repr.payload_len;
    let icmp = Icmpv6Packet::new_checked(&frame[54..end]).unwrap();
    let icmp_repr = Icmpv6Repr::parse(
        &ip_repr.src_addr,
        &ip_repr.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .unwrap();
    (eth_repr, ip_repr, icmp_repr)
}

pub fn parse_arp(frame: &[u8]) -> (EthernetRepr, ArpRepr) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let eth_repr = EthernetRepr::parse(&eth).unwrap();
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    (eth_repr, arp)
}

pub fn lladdr(addr: Option<RawHardwareAddress>) -> Option<[u8; 6]> {
    match addr?.parse(smoltcp::phy::Medium::Ethernet).ok()? {
        HardwareAddress::Ethernet(EthernetAddress(mac)) => Some(mac),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The bytes at which two frames differ.
pub fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}
