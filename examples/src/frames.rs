//! Ethernet frames for captures and tests, built with smoltcp's `wire` module: an encoder
//! that shares no code with the director's parser, so a bug in one cannot hide in the other.
//!
//! Addresses are given as text for readability; the functions panic on a malformed literal,
//! which is a bug in the caller's fixed scenario, never input from outside.

use smoltcp::phy::ChecksumCapabilities;
pub use smoltcp::wire::{ArpOperation, EthernetProtocol, IpProtocol};
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    Icmpv6Packet, Icmpv6Repr, IpAddress, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber, UdpPacket, UdpRepr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The director's MAC in generated traffic.
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The router's MAC: clients' frames come from it.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
/// Real servers' MACs.
pub const REAL_MACS: [[u8; 6]; 4] = [
    [0x02, 0, 0, 0, 0, 0x11],
    [0x02, 0, 0, 0, 0, 0x12],
    [0x02, 0, 0, 0, 0, 0x13],
    [0x02, 0, 0, 0, 0, 0x14],
];

/// TCP FIN.
pub const FIN: u8 = 0x01;
/// TCP SYN.
pub const SYN: u8 = 0x02;
/// TCP RST.
pub const RST: u8 = 0x04;
/// TCP PSH.
pub const PSH: u8 = 0x08;
/// TCP ACK.
pub const ACK: u8 = 0x10;

/// An IPv4 address from text (panics on a typo: these are fixed test addresses).
pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// An IPv6 address from text.
pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An IP address from text.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An Ethernet II frame around `payload`.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr =
        EthernetRepr { src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst), ethertype };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    buf
}

/// Inserts VLAN tags `(tpid, vid)`, outermost first, after the MAC addresses.
pub fn with_vlans(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for &(tpid, vid) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

fn tcp_segment(
    src: IpAddress,
    sport: u16,
    dst: IpAddress,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control: TcpControl::None,
        seq_number: TcpSeqNumber(1000),
        ack_number: (flags & ACK != 0).then_some(TcpSeqNumber(2000)),
        window_len: 64240,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut packet = TcpPacket::new_unchecked(&mut buf);
    repr.emit(&mut packet, &src, &dst, &ChecksumCapabilities::default());
    packet.set_fin(flags & FIN != 0);
    packet.set_syn(flags & SYN != 0);
    packet.set_rst(flags & RST != 0);
    packet.set_psh(flags & PSH != 0);
    packet.set_ack(flags & ACK != 0);
    packet.fill_checksum(&src, &dst);
    buf
}

fn udp_datagram(src: IpAddress, sport: u16, dst: IpAddress, dport: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: sport, dst_port: dport };
    let mut buf = vec![0u8; repr.header_len() + payload.len()];
    let mut packet = UdpPacket::new_unchecked(&mut buf);
    repr.emit(
        &mut packet,
        &src,
        &dst,
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// An IPv4 packet around `payload`.
pub fn ipv4_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut packet, &ChecksumCapabilities::default());
    packet.payload_mut().copy_from_slice(payload);
    buf
}

/// An IPv6 packet around `payload`.
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: IpProtocol,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut buf);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(payload);
    buf
}

/// A client's TCP segment to the director, IPv4, from the router's MAC.
pub fn tcp4(client: &str, cport: u16, vip: &str, vport: u16, flags: u8) -> Vec<u8> {
    tcp4_payload(client, cport, vip, vport, flags, b"")
}

/// A client's TCP segment with payload, IPv4.
pub fn tcp4_payload(
    client: &str,
    cport: u16,
    vip: &str,
    vport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (c, v) = (v4(client), v4(vip));
    let seg = tcp_segment(IpAddress::Ipv4(c), cport, IpAddress::Ipv4(v), vport, flags, payload);
    let ip = ipv4_packet(c, v, IpProtocol::Tcp, 64, &seg);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip)
}

/// A client's UDP datagram, IPv4.
pub fn udp4(client: &str, cport: u16, vip: &str, vport: u16, payload: &[u8]) -> Vec<u8> {
    let (c, v) = (v4(client), v4(vip));
    let dgram = udp_datagram(IpAddress::Ipv4(c), cport, IpAddress::Ipv4(v), vport, payload);
    let ip = ipv4_packet(c, v, IpProtocol::Udp, 64, &dgram);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip)
}

/// A client's TCP segment, IPv6.
pub fn tcp6(client: &str, cport: u16, vip: &str, vport: u16, flags: u8) -> Vec<u8> {
    let (c, v) = (v6(client), v6(vip));
    let seg = tcp_segment(IpAddress::Ipv6(c), cport, IpAddress::Ipv6(v), vport, flags, b"");
    let ip = ipv6_packet(c, v, IpProtocol::Tcp, 64, &seg);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
}

/// A client's UDP datagram, IPv6.
pub fn udp6(client: &str, cport: u16, vip: &str, vport: u16, payload: &[u8]) -> Vec<u8> {
    let (c, v) = (v6(client), v6(vip));
    let dgram = udp_datagram(IpAddress::Ipv6(c), cport, IpAddress::Ipv6(v), vport, payload);
    let ip = ipv6_packet(c, v, IpProtocol::Udp, 64, &dgram);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
}

/// A TCP segment inside an IPv6 packet with extension headers `exts` (raw bytes, each
/// starting with its next-header byte, which this fills in); `first` is the first extension's
/// protocol number.
pub fn tcp6_with_extensions(
    client: &str,
    vip: &str,
    first: IpProtocol,
    exts: &[Vec<u8>],
    flags: u8,
) -> Vec<u8> {
    let (c, v) = (v6(client), v6(vip));
    let seg = tcp_segment(IpAddress::Ipv6(c), 40000, IpAddress::Ipv6(v), 80, flags, b"");
    let mut payload = Vec::new();
    for (i, ext) in exts.iter().enumerate() {
        let mut ext = ext.clone();
        ext[0] = if i + 1 < exts.len() { exts[i + 1][0] } else { 6 };
        payload.extend_from_slice(&ext);
    }
    // exts[i+1][0] holds the protocol number of extension i+1 on input.
    payload.extend_from_slice(&seg);
    let ip = ipv6_packet(c, v, first, 64, &payload);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
}

/// An ICMP echo request.
pub fn icmp4_echo(client: &str, dst: &str) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 1, data: b"ping" };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf), &ChecksumCapabilities::default());
    let ip = ipv4_packet(v4(client), v4(dst), IpProtocol::Icmp, 64, &buf);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip)
}

/// An ICMPv6 echo request.
pub fn icmp6_echo(client: &str, dst: &str) -> Vec<u8> {
    let (c, d) = (v6(client), v6(dst));
    let repr = Icmpv6Repr::EchoRequest { ident: 1, seq_no: 1, data: b"ping" };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&c, &d, &mut Icmpv6Packet::new_unchecked(&mut buf), &ChecksumCapabilities::default());
    let ip = ipv6_packet(c, d, IpProtocol::Icmpv6, 64, &buf);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
}

/// The IP datagram of a frame (its Ethernet header removed), for an ICMP error to quote.
pub fn datagram(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// An ICMP error from `router` to `vip`, quoting `quoted` (the start of the datagram it is
/// about). For fragmentation needed (type 3 code 4) the next-hop MTU is 1400.
pub fn icmp4_error(router: &str, vip: &str, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut message = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    if (icmp_type, code) == (3, 4) {
        message[6..8].copy_from_slice(&1400u16.to_be_bytes());
    }
    message.extend_from_slice(quoted);
    Icmpv4Packet::new_unchecked(&mut message).fill_checksum();
    let ip = ipv4_packet(v4(router), v4(vip), IpProtocol::Icmp, 64, &message);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip)
}

/// An ICMPv6 error from `router` to `vip`, quoting `quoted`. For packet too big (type 2)
/// the MTU is 1280.
pub fn icmp6_error(router: &str, vip: &str, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let (r, v) = (v6(router), v6(vip));
    let mut message = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    if icmp_type == 2 {
        message[4..8].copy_from_slice(&1280u32.to_be_bytes());
    }
    message.extend_from_slice(quoted);
    Icmpv6Packet::new_unchecked(&mut message).fill_checksum(&r, &v);
    let ip = ipv6_packet(r, v, IpProtocol::Icmpv6, 64, &message);
    ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
}

/// Splits a client's UDP datagram (IPv4, with `payload`) into fragments carrying at most
/// `chunk` bytes of data each (a multiple of 8), with IP identification `ident`.
pub fn udp4_fragments(
    client: &str,
    cport: u16,
    vip: &str,
    vport: u16,
    payload: &[u8],
    ident: u16,
    chunk: usize,
) -> Vec<Vec<u8>> {
    let (c, v) = (v4(client), v4(vip));
    let dgram = udp_datagram(IpAddress::Ipv4(c), cport, IpAddress::Ipv4(v), vport, payload);
    let pieces: Vec<&[u8]> = dgram.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut ip = ipv4_packet(c, v, IpProtocol::Udp, 64, piece);
            let mut p = Ipv4Packet::new_unchecked(&mut ip);
            p.set_ident(ident);
            p.set_more_frags(i + 1 < pieces.len());
            p.set_frag_offset((i * chunk) as u16);
            p.fill_checksum();
            ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &ip)
        })
        .collect()
}

/// Splits a client's UDP datagram (IPv6) into fragments with fragment headers carrying at
/// most `chunk` bytes of data each (a multiple of 8), with identification `ident`.
pub fn udp6_fragments(
    client: &str,
    cport: u16,
    vip: &str,
    vport: u16,
    payload: &[u8],
    ident: u32,
    chunk: usize,
) -> Vec<Vec<u8>> {
    let (c, v) = (v6(client), v6(vip));
    let dgram = udp_datagram(IpAddress::Ipv6(c), cport, IpAddress::Ipv6(v), vport, payload);
    let pieces: Vec<&[u8]> = dgram.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let offset = (i * chunk) as u16;
            let more = u16::from(i + 1 < pieces.len());
            let mut body = vec![17, 0];
            body.extend_from_slice(&(offset | more).to_be_bytes());
            body.extend_from_slice(&ident.to_be_bytes());
            body.extend_from_slice(piece);
            let ip = ipv6_packet(c, v, IpProtocol::Ipv6Frag, 64, &body);
            ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &ip)
        })
        .collect()
}

/// An ARP packet in an Ethernet frame to `dst`.
pub fn arp(
    op: ArpOperation,
    dst: [u8; 6],
    sender_mac: [u8; 6],
    sender_ip: &str,
    target_mac: [u8; 6],
    target_ip: &str,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: EthernetAddress(sender_mac),
        source_protocol_addr: v4(sender_ip),
        target_hardware_addr: EthernetAddress(target_mac),
        target_protocol_addr: v4(target_ip),
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf));
    ethernet(dst, sender_mac, EthernetProtocol::Arp, &buf)
}

/// An ARP request from the router for `target`.
pub fn arp_request(target: &str) -> Vec<u8> {
    arp(ArpOperation::Request, [0xff; 6], ROUTER_MAC, "10.0.0.1", [0; 6], target)
}

fn icmpv6_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    repr: NdiscRepr<'_>,
) -> Vec<u8> {
    let repr = Icmpv6Repr::Ndisc(repr);
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut buf),
        &ChecksumCapabilities::default(),
    );
    let ip = ipv6_packet(src, dst, IpProtocol::Icmpv6, 255, &buf);
    ethernet(dst_mac, src_mac, EthernetProtocol::Ipv6, &ip)
}

/// The solicited-node multicast group of `target`.
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A multicast Neighbor Solicitation for `target` from `src` at `src_mac`.
pub fn neighbor_solicitation(src_mac: [u8; 6], src: &str, target: &str) -> Vec<u8> {
    let target = v6(target);
    let group = solicited_node(target);
    let o = group.octets();
    let dst_mac = [0x33, 0x33, o[12], o[13], o[14], o[15]];
    let repr = NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from_bytes(&src_mac)),
    };
    icmpv6_frame(dst_mac, src_mac, v6(src), group, repr)
}

/// A solicited Neighbor Advertisement from `src` at `src_mac`, to the director.
pub fn neighbor_advertisement(src_mac: [u8; 6], src: &str, to: &str) -> Vec<u8> {
    let repr = NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        target_addr: v6(src),
        lladdr: Some(RawHardwareAddress::from_bytes(&src_mac)),
    };
    icmpv6_frame(DIRECTOR_MAC, src_mac, v6(src), v6(to), repr)
}

/// Eleven malformed variants of `good` (a client's frame to the director, untagged IPv4
/// TCP), each dropped for a different reason: cut to 10 and 30 bytes, a bad header
/// checksum, IP version 5, a TCP data offset of 3, three VLAN tags, a cut VLAN tag, a short
/// ARP packet, a short IPv6 header, the director's own source MAC, a group source MAC.
pub fn malformed_variants(good: &[u8]) -> Vec<Vec<u8>> {
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = good.to_vec();
        f(&mut frame);
        frame
    };
    vec![
        good[..10].to_vec(),
        good[..30].to_vec(),
        with(&|f| f[24] ^= 0x40),
        with(&|f| f[14] = 0x55),
        with(&|f| f[14 + 20 + 12] = 0x30),
        with_vlans(good, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]),
        with_vlans(good, &[(0x8100, 7)])[..16].to_vec(),
        ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Arp, &[0, 1, 8, 0, 6, 4]),
        ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &[0x60; 30]),
        with(&|f| f[6..12].copy_from_slice(&DIRECTOR_MAC)),
        with(&|f| f[6] |= 1),
    ]
}
