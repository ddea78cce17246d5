//! Test helpers: the smoltcp frame builders of `fixtures/src/frames.rs` (shared with the
//! demo capture generator), and the checks tests make on what comes back.

#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

#[path = "../../../fixtures/src/frames.rs"]
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

/// A director of 64 entries with one `protocol` service on `port` of 10.0.0.100 and of
/// 2001:db8::100, two rr real servers each (.11 and .12 of the VIP's network), after
/// `configure` has had its say on the configuration.
pub fn dual_stack(
    protocol: dr_core::Protocol,
    port: u16,
    configure: impl FnOnce(&mut Config),
) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [5, 6, 7, 8]);
    config.capacity = 64;
    configure(&mut config);
    let mut d = Director::new(config).unwrap();
    for (vip, reals) in [
        ("10.0.0.100", ["10.0.0.11", "10.0.0.12"]),
        ("2001:db8::100", ["2001:db8::11", "2001:db8::12"]),
    ] {
        let service =
            dr_core::ServiceConfig::new(protocol, ip(vip), port, dr_core::SchedulerKind::Rr);
        let svc = d.add_service(service).unwrap();
        for (i, real) in reals.iter().enumerate() {
            d.add_real(svc, dr_core::RealConfig::new(ip(real)).with_mac(mac(REAL_MACS[i])))
                .unwrap();
        }
    }
    d
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
