//! The classifier, case by case, on frames built with smoltcp.

mod support;

use dr_core::DropReason;
use dr_core::wire::{Fragment, Network, TcpFlags, Transport, classify};
use smoltcp::wire::{ArpOperation, EthernetProtocol, IpProtocol, Ipv4Packet};
use support::*;

fn ip_of(frame: &[u8]) -> dr_core::wire::IpPacket {
    match classify(frame).unwrap().network {
        Network::Ip(ip) => ip,
        other => panic!("not IP: {other:?}"),
    }
}

#[test]
fn ipv4_tcp() {
    let frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, SYN);
    let packet = classify(&frame).unwrap();
    assert_eq!(packet.dst_mac.0, DIRECTOR_MAC);
    assert_eq!(packet.src_mac.0, ROUTER_MAC);
    assert!(packet.vlans.is_empty());
    assert_eq!(packet.l3_offset, 14);
    let Network::Ip(ip) = packet.network else { panic!() };
    assert_eq!(ip.src, ip_of_str("192.0.2.7"));
    assert_eq!(ip.dst, ip_of_str("10.0.0.100"));
    assert_eq!(ip.hop_limit, 64);
    assert_eq!(ip.datagram_len, 40);
    assert_eq!(ip.l4_offset, 34);
    assert_eq!(ip.fragment, None);
    assert_eq!(
        ip.transport,
        Transport::Tcp { src_port: 40000, dst_port: 80, flags: TcpFlags(SYN) }
    );
    let key = ip.flow_key().unwrap();
    assert_eq!((key.client_port, key.vip_port), (40000, 80));
    assert_eq!(packet.flow_key(), Some(key));
}

fn ip_of_str(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv4_with_options_and_padding() {
    // A 24-byte header (one NOP and an end-of-options word) and Ethernet padding to 64.
    let seg_frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, ACK | PSH);
    let seg = &seg_frame[34..];
    let mut ip = vec![0u8; 24 + seg.len()];
    ip[24..].copy_from_slice(seg);
    let mut packet = Ipv4Packet::new_unchecked(&mut ip);
    packet.set_version(4);
    packet.set_header_len(24);
    packet.set_total_len((24 + seg.len()) as u16);
    packet.set_hop_limit(64);
    packet.set_next_header(IpProtocol::Tcp);
    packet.set_src_addr(v4("192.0.2.7"));
    packet.set_dst_addr(v4("10.0.0.100"));
    ip[20] = 1; // NOP
    let mut packet = Ipv4Packet::new_unchecked(&mut ip);
    packet.fill_checksum();
    let mut frame = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip);
    frame.extend_from_slice(&[0xaa; 6]); // padding after the datagram
    let ip = ip_of(&frame);
    assert_eq!(ip.l4_offset, 14 + 24);
    assert_eq!(ip.datagram_len, 44);
    assert!(matches!(ip.transport, Transport::Tcp { dst_port: 80, .. }));
}

#[test]
fn vlan_tags() {
    let frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, SYN);
    let one = with_vlans(&frame, &[(0x8100, 42)]);
    let packet = classify(&one).unwrap();
    assert_eq!(packet.vlans.len(), 1);
    assert_eq!((packet.vlans[0].tpid, packet.vlans[0].id), (0x8100, 42));
    assert_eq!(packet.l3_offset, 18);

    let two = with_vlans(&frame, &[(0x88a8, 100), (0x8100, 7)]);
    let packet = classify(&two).unwrap();
    assert_eq!(
        packet.vlans.iter().map(|t| (t.tpid, t.id)).collect::<Vec<_>>(),
        [(0x88a8, 100), (0x8100, 7)]
    );
    assert_eq!(packet.l3_offset, 22);
    assert!(matches!(packet.network, Network::Ip(ip) if ip.l4_offset == 42));

    let three = with_vlans(&frame, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]);
    assert_eq!(classify(&three), Err(DropReason::TooManyVlanTags));
    let qinq = with_vlans(&frame, &[(0x9100, 5)]);
    assert_eq!(classify(&qinq).unwrap().vlans[0].tpid, 0x9100);
}

#[test]
fn truncated_vlan_tag() {
    let frame = with_vlans(&tcp4("192.0.2.7", 1, "10.0.0.100", 80, SYN), &[(0x8100, 1)]);
    assert_eq!(classify(&frame[..16]), Err(DropReason::MalformedVlan));
}

#[test]
fn short_ethernet() {
    for len in 0..14 {
        assert_eq!(classify(&vec![0u8; len]), Err(DropReason::MalformedEthernet), "{len}");
    }
}

#[test]
fn arp_request_and_reply() {
    let frame = arp_request("10.0.0.100");
    let Network::Arp(a) = classify(&frame).unwrap().network else { panic!() };
    assert_eq!(a.operation, 1);
    assert_eq!(a.sender_mac.0, ROUTER_MAC);
    assert_eq!(a.sender_ip, v4("10.0.0.1"));
    assert_eq!(a.target_ip, v4("10.0.0.100"));
    let reply =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[0], "10.0.0.11", DIRECTOR_MAC, "10.0.0.2");
    let Network::Arp(a) = classify(&reply).unwrap().network else { panic!() };
    assert_eq!((a.operation, a.target_mac.0), (2, DIRECTOR_MAC));
    assert_eq!(classify(&reply).unwrap().flow_key(), None);
}

#[test]
fn malformed_arp() {
    let frame = arp_request("10.0.0.100");
    assert_eq!(classify(&frame[..14 + 20]), Err(DropReason::MalformedArp));
    let mut other_hw = frame.clone();
    other_hw[15] = 6; // hardware type IEEE 802
    assert_eq!(classify(&other_hw), Err(DropReason::MalformedArp));
    let mut other_proto = frame;
    other_proto[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
    assert_eq!(classify(&other_proto), Err(DropReason::MalformedArp));
}

#[test]
fn ipv4_header_errors() {
    let frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, SYN);
    let mut bad_version = frame.clone();
    bad_version[14] = 0x55;
    assert_eq!(classify(&bad_version), Err(DropReason::MalformedIpv4));
    let mut short_ihl = frame.clone();
    short_ihl[14] = 0x44;
    assert_eq!(classify(&short_ihl), Err(DropReason::MalformedIpv4));
    let mut checksum = frame.clone();
    checksum[24] ^= 0xff;
    assert_eq!(classify(&checksum), Err(DropReason::Ipv4Checksum));
    assert_eq!(classify(&frame[..14 + 19]), Err(DropReason::Ipv4Length));
    // Total length beyond the frame, and below the header: fixed checksums, so only the
    // length is wrong.
    for total in [41u16, 19] {
        let mut f = frame.clone();
        let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
        p.set_total_len(total);
        p.fill_checksum();
        assert_eq!(classify(&f), Err(DropReason::Ipv4Length), "total {total}");
    }
}

#[test]
fn ipv4_fragments() {
    let frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, SYN);
    let mut first = frame.clone();
    let mut p = Ipv4Packet::new_unchecked(&mut first[14..]);
    p.set_more_frags(true);
    p.fill_checksum();
    let ip = ip_of(&first);
    assert_eq!(ip.fragment, Some(Fragment::First));
    assert!(matches!(ip.transport, Transport::Tcp { .. }));
    let mut later = frame;
    let mut p = Ipv4Packet::new_unchecked(&mut later[14..]);
    p.set_frag_offset(1480);
    p.fill_checksum();
    let ip = ip_of(&later);
    assert_eq!(ip.fragment, Some(Fragment::Later));
    assert_eq!(ip.transport, Transport::Fragment { protocol: 6 });
}

#[test]
fn ipv6_tcp_and_udp() {
    let ip = ip_of(&tcp6("2001:db8::7", 40000, "2001:db8::100", 443, SYN | ACK));
    assert_eq!(ip.l4_offset, 54);
    assert_eq!(ip.datagram_len, 60);
    assert_eq!(
        ip.transport,
        Transport::Tcp { src_port: 40000, dst_port: 443, flags: TcpFlags(SYN | ACK) }
    );
    let ip = ip_of(&udp6("2001:db8::7", 5353, "2001:db8::100", 53, b"q"));
    assert_eq!(ip.transport, Transport::Udp { src_port: 5353, dst_port: 53 });
    assert_eq!(ip.datagram_len, 40 + 9);
}

fn raw_ext(next: u8, units: u8) -> Vec<u8> {
    let mut e = vec![0u8; (usize::from(units) + 1) * 8];
    e[0] = next;
    e[1] = units;
    e[2] = 1; // PadN option covering the rest
    e[3] = (e.len() - 4) as u8;
    e
}

#[test]
fn ipv6_extension_headers_are_walked() {
    // hop-by-hop (8 bytes), destination options (16 bytes), then TCP.
    let frame = tcp6_with_extensions(
        "2001:db8::7",
        "2001:db8::100",
        IpProtocol::HopByHop,
        &[raw_ext(0, 0), raw_ext(60, 1)],
        SYN,
    );
    let ip = ip_of(&frame);
    assert_eq!(ip.l4_offset, 14 + 40 + 8 + 16);
    assert!(matches!(ip.transport, Transport::Tcp { dst_port: 80, .. }));
}

#[test]
fn ipv6_fragments() {
    let mut frag = vec![0u8; 8];
    frag[0] = 44;
    frag[3] = 1; // offset 0, more fragments
    let first = tcp6_with_extensions(
        "2001:db8::7",
        "2001:db8::100",
        IpProtocol::Ipv6Frag,
        &[frag.clone()],
        SYN,
    );
    let ip = ip_of(&first);
    assert_eq!(ip.fragment, Some(Fragment::First));
    assert!(matches!(ip.transport, Transport::Tcp { .. }));
    frag[2] = 0x05; // offset 80 (in 8-byte units: 0x05 << 5 ... any non-zero offset)
    let later =
        tcp6_with_extensions("2001:db8::7", "2001:db8::100", IpProtocol::Ipv6Frag, &[frag], SYN);
    let ip = ip_of(&later);
    assert_eq!(ip.fragment, Some(Fragment::Later));
    assert_eq!(ip.transport, Transport::Fragment { protocol: 6 });
    assert_eq!(ip.l4_offset, 14 + 48);
}

#[test]
fn ipv6_errors() {
    let frame = tcp6("2001:db8::7", 40000, "2001:db8::100", 443, SYN);
    let mut version = frame.clone();
    version[14] = 0x40;
    assert_eq!(classify(&version), Err(DropReason::MalformedIpv6));
    assert_eq!(classify(&frame[..14 + 39]), Err(DropReason::MalformedIpv6));
    assert_eq!(classify(&frame[..frame.len() - 1]), Err(DropReason::Ipv6Length));
    // Hop-by-hop after another extension header.
    let late_hbh = tcp6_with_extensions(
        "2001:db8::7",
        "2001:db8::100",
        IpProtocol::Ipv6Opts,
        &[raw_ext(60, 0), raw_ext(0, 0)],
        SYN,
    );
    assert_eq!(classify(&late_hbh), Err(DropReason::MalformedIpv6Extension));
    // An extension header longer than the payload.
    let mut long = raw_ext(60, 0);
    long[1] = 30;
    let cut =
        tcp6_with_extensions("2001:db8::7", "2001:db8::100", IpProtocol::Ipv6Opts, &[long], SYN);
    assert_eq!(classify(&cut), Err(DropReason::MalformedIpv6Extension));
}

#[test]
fn tcp_udp_icmp_errors() {
    let frame = tcp4("192.0.2.7", 40000, "10.0.0.100", 80, SYN);
    let mut offset = frame.clone();
    offset[14 + 20 + 12] = 0x40; // data offset 4 words
    assert_eq!(classify(&offset), Err(DropReason::MalformedTcp));
    let mut long = frame.clone();
    long[14 + 20 + 12] = 0xf0; // 60-byte header in a 20-byte segment
    assert_eq!(classify(&long), Err(DropReason::MalformedTcp));

    let udp = udp4("192.0.2.7", 5353, "10.0.0.100", 53, b"query");
    for len in [4u16, 14] {
        let mut f = udp.clone();
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(classify(&f), Err(DropReason::MalformedUdp), "udp length {len}");
    }
    let short_udp = ipv4_packet(v4("192.0.2.7"), v4("10.0.0.100"), IpProtocol::Udp, 64, &[0; 6]);
    let f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &short_udp);
    assert_eq!(classify(&f), Err(DropReason::MalformedUdp));

    let short_icmp =
        ipv4_packet(v4("192.0.2.7"), v4("10.0.0.100"), IpProtocol::Icmp, 64, &[8, 0, 0, 0]);
    let f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &short_icmp);
    assert_eq!(classify(&f), Err(DropReason::MalformedIcmp));
    let short_icmp6 =
        ipv6_packet(v6("2001:db8::7"), v6("2001:db8::100"), IpProtocol::Icmpv6, 64, &[128, 0]);
    let f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &short_icmp6);
    assert_eq!(classify(&f), Err(DropReason::MalformedIcmp));
}

#[test]
fn icmp_and_other_protocols() {
    let ip = ip_of(&icmp4_echo("192.0.2.7", "10.0.0.100"));
    assert_eq!(ip.transport, Transport::Icmpv4 { icmp_type: 8, code: 0 });
    let ns = neighbor_solicitation(ROUTER_MAC, "2001:db8::1", "2001:db8::100");
    assert_eq!(ip_of(&ns).transport, Transport::Icmpv6 { icmp_type: 135, code: 0 });
    let gre = ipv4_packet(v4("192.0.2.7"), v4("10.0.0.100"), IpProtocol::Unknown(47), 64, &[0; 8]);
    let f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &gre);
    assert_eq!(ip_of(&f).transport, Transport::Other { protocol: 47 });
    let no_next =
        ipv6_packet(v6("2001:db8::7"), v6("2001:db8::100"), IpProtocol::IpSecEsp, 64, &[0; 8]);
    let f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &no_next);
    assert_eq!(ip_of(&f).transport, Transport::Other { protocol: 50 });
}

#[test]
fn other_ether_types() {
    let lldp = ethernet(
        [0x01, 0x80, 0xc2, 0, 0, 0x0e],
        ROUTER_MAC,
        EthernetProtocol::Unknown(0x88cc),
        &[0; 46],
    );
    assert_eq!(classify(&lldp).unwrap().network, Network::Other { ether_type: 0x88cc });
}
