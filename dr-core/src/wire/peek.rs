//! A quick look at a frame's flow key, for loading the table's memory ahead of the real
//! lookup: fixed offsets, no validation. A wrong guess costs a useless load, never a wrong
//! verdict, because the frame is classified in full before it is decided.

use crate::flow::{FlowKey, Protocol};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The flow key of an untagged or singly tagged IPv4 or IPv6 TCP/UDP frame, as it appears
/// to be, without checking that the frame is well formed.
pub(crate) fn peek_flow_key(frame: &[u8]) -> Option<FlowKey> {
    let mut l3 = 14;
    let mut ether_type = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ether_type == 0x8100 {
        ether_type = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    let ip = frame.get(l3..)?;
    let (protocol, client, vip, l4) = match ether_type {
        0x0800 => {
            let header_len = usize::from(ip.first()? & 0x0f) * 4;
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let (src, dst) = (IpAddr::V4(Ipv4Addr::from(src)), IpAddr::V4(Ipv4Addr::from(dst)));
            (*ip.get(9)?, src, dst, ip.get(header_len..)?)
        }
        0x86dd => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let (src, dst) = (IpAddr::V6(Ipv6Addr::from(src)), IpAddr::V6(Ipv6Addr::from(dst)));
            (*ip.get(6)?, src, dst, ip.get(40..)?)
        }
        _ => return None,
    };
    let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    Some(FlowKey {
        protocol: Protocol::from_number(protocol)?,
        client,
        client_port: port(0)?,
        vip,
        vip_port: port(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Network, classify};
    use etherparse::{
        EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6Header, SingleVlanHeader, UdpHeader,
        VlanId,
    };
    extern crate alloc;
    use alloc::vec::Vec;

    const DATA: &[u8] = b"data";

    fn ethernet(ether_type: EtherType) -> Vec<u8> {
        let eth = Ethernet2Header {
            source: [2, 0, 0, 0, 0, 1],
            destination: [2, 0, 0, 0, 0, 2],
            ether_type,
        };
        eth.to_bytes().to_vec()
    }

    fn udp(frame: &mut Vec<u8>, source_port: u16, destination_port: u16) {
        let length = (8 + DATA.len()) as u16;
        let udp = UdpHeader { source_port, destination_port, length, checksum: 0 };
        frame.extend_from_slice(&udp.to_bytes());
        frame.extend_from_slice(DATA);
    }

    fn ipv4(mut frame: Vec<u8>, ports: (u16, u16)) -> Vec<u8> {
        let len = (8 + DATA.len()) as u16;
        let mut ip = Ipv4Header::new(len, 64, IpNumber::UDP, [192, 0, 2, 1], [10, 0, 0, 100])
            .expect("a short payload");
        ip.header_checksum = ip.calc_header_checksum();
        frame.extend_from_slice(&ip.to_bytes());
        udp(&mut frame, ports.0, ports.1);
        frame
    }

    #[test]
    fn agrees_with_the_classifier_on_common_frames() {
        let mut tagged = ethernet(EtherType::VLAN_TAGGED_FRAME);
        let vlan = SingleVlanHeader {
            vlan_id: VlanId::try_new(10).expect("a valid id"),
            ether_type: EtherType::IPV4,
            ..SingleVlanHeader::default()
        };
        tagged.extend_from_slice(&vlan.to_bytes());
        let mut v6 = ethernet(EtherType::IPV6);
        let ip6 = Ipv6Header {
            payload_length: (8 + DATA.len()) as u16,
            next_header: IpNumber::UDP,
            hop_limit: 64,
            source: [0x20; 16],
            destination: [0x30; 16],
            ..Ipv6Header::default()
        };
        v6.extend_from_slice(&ip6.to_bytes());
        udp(&mut v6, 40000, 443);
        let frames = [ipv4(ethernet(EtherType::IPV4), (5353, 53)), ipv4(tagged, (1, 2)), v6];
        for frame in &frames {
            let Ok(packet) = classify(frame) else { panic!("valid frame") };
            let Network::Ip(ip) = packet.network else { panic!("an IP frame") };
            assert!(ip.flow_key().is_some());
            assert_eq!(peek_flow_key(frame), ip.flow_key());
        }
    }

    #[test]
    fn short_and_foreign_frames_have_no_key() {
        assert_eq!(peek_flow_key(&[]), None);
        assert_eq!(peek_flow_key(&[0; 13]), None);
        let mut arp = [0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(peek_flow_key(&arp), None);
        let mut truncated = [0u8; 34];
        truncated[12..14].copy_from_slice(&[0x08, 0x00]);
        truncated[14] = 0x45;
        truncated[23] = 6;
        assert_eq!(peek_flow_key(&truncated), None);
    }
}
