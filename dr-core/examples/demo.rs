//! A director on a bundled default scenario, in memory: two VIPs (IPv4 and IPv6), TCP and
//! UDP services, four real servers (one whose MAC must be learned by ARP), a few hundred
//! clients opening, using and closing connections over ten minutes, ARP and Neighbor
//! Discovery for the VIPs, and some malformed frames. Frames are built with smoltcp, driven
//! through `MemoryIo` and `Driver`, and the run ends with what the director decided.
//!
//! `cargo run -p dr-core --example demo`

use dr_core::{
    Config, Director, Driver, DriverOptions, Instant, MacAddr, MemoryIo, Protocol, RealConfig,
    SchedulerKind, ServiceConfig,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, NdiscRepr, RawHardwareAddress, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber, UdpPacket, UdpRepr,
};
use std::error::Error;
use std::net::{Ipv4Addr, Ipv6Addr};

const DIRECTOR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const REALS: [(Ipv4Addr, [u8; 6], u32, bool); 4] = [
    (Ipv4Addr::new(10, 0, 0, 11), [0x02, 0, 0, 0, 0, 0x11], 1, true),
    (Ipv4Addr::new(10, 0, 0, 12), [0x02, 0, 0, 0, 0, 0x12], 1, true),
    (Ipv4Addr::new(10, 0, 0, 13), [0x02, 0, 0, 0, 0, 0x13], 0, true),
    (Ipv4Addr::new(10, 0, 0, 14), [0x02, 0, 0, 0, 0, 0x14], 1, false),
];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = Config::new(MacAddr(DIRECTOR), [0x5eed, 1, 2, 3]);
    config.capacity = 4096;
    config.ipv4 = Some(Ipv4Addr::new(10, 0, 0, 2));
    let mut director = Director::new(config)?;
    let web = director.add_service(ServiceConfig::new(
        Protocol::Tcp,
        VIP.into(),
        80,
        SchedulerKind::Rr,
    ))?;
    let dns = director.add_service(ServiceConfig::new(
        Protocol::Udp,
        VIP.into(),
        53,
        SchedulerKind::Rr,
    ))?;
    let web6 = director.add_service(ServiceConfig::new(
        Protocol::Tcp,
        VIP6.into(),
        80,
        SchedulerKind::Rr,
    ))?;
    for (i, (addr, mac, weight, known)) in REALS.into_iter().enumerate() {
        let real = RealConfig::new(addr.into()).with_weight(weight);
        let real = if known { real.with_mac(MacAddr(mac)) } else { real };
        director.add_real(web, real)?;
        director.add_real(dns, real)?;
        if i < 2 {
            let addr6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11 + i as u16);
            director.add_real(web6, RealConfig::new(addr6.into()).with_mac(MacAddr(mac)))?;
        }
    }

    let mut io = MemoryIo::new(32);
    let mut ms = 0u64;
    let mut at = |step: u64| {
        ms += step;
        Instant::from_millis(ms)
    };
    io.push(at(1), arp(ArpOperation::Request, [0xff; 6], ROUTER, Ipv4Addr::new(10, 0, 0, 1), VIP));
    io.push(at(1), neighbor_solicitation(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), VIP6));
    for c in 0..300u16 {
        if c == 20 {
            // By now the director has asked for the MAC it lacks; the real server answers.
            io.push(
                at(1),
                arp(
                    ArpOperation::Reply,
                    DIRECTOR,
                    REALS[3].1,
                    REALS[3].0,
                    Ipv4Addr::new(10, 0, 0, 2),
                ),
            );
        }
        let client = Ipv4Addr::new(192, 0, 2, (c % 250) as u8 + 1);
        let port = 30000 + c;
        io.push(at(7), tcp4(client, port, SYN, b""));
        io.push(at(3), tcp4(client, port, ACK, b""));
        io.push(at(2), tcp4(client, port, ACK, b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n"));
        if c % 3 != 0 {
            io.push(at(20), tcp4(client, port, FIN | ACK, b""));
        }
        io.push(at(1), udp4(client, port, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"));
        if c % 6 == 0 {
            io.push(at(1), tcp6(c, SYN));
        }
    }
    let mut truncated = tcp4(Ipv4Addr::new(198, 51, 100, 1), 1, SYN, b"");
    truncated.truncate(30);
    io.push(at(1), truncated);
    let mut corrupt = tcp4(Ipv4Addr::new(198, 51, 100, 2), 2, SYN, b"");
    corrupt[24] ^= 0x55;
    io.push(at(1), corrupt);
    io.push(at(1), tcp4(Ipv4Addr::new(198, 51, 100, 3), 3, ACK, b"stray"));
    // Ten minutes later, the last client: by then UDP (300 s) and closed flows (120 s) are gone.
    io.push(at(600_000), udp4(Ipv4Addr::new(203, 0, 113, 9), 999, b"late"));

    let frames_in = io.pending();
    let mut driver = Driver::new(DriverOptions::default());
    let run = driver.run(&mut director, &mut io)?;

    println!(
        "dr demo: {frames_in} frames in, {} transmitted, {} generated (announcements, ARP requests)\n",
        run.transmitted, run.generated
    );
    println!(
        "{:<22} {:>6} {:>6} {:>9} {:>9} {:>7} {:>7} {:>9}",
        "service / real", "weight", "active", "inactive", "conns", "inpkts", "inbytes", "mac"
    );
    for (_, service) in director.services() {
        let key = service.key();
        let s = service.stats();
        println!("{key} {}  {:>26} {:>7} {:>7}", service.scheduler(), s.conns, s.inpkts, s.inbytes);
        for &id in service.reals() {
            let r = director.real(id).ok_or("listed real exists")?;
            let mac = r.mac().map_or("(unknown)".to_string(), |m| m.to_string());
            println!(
                "  -> {:<17} {:>6} {:>6} {:>9} {:>9} {:>7} {:>7} {mac}",
                r.addr().to_string(),
                r.weight(),
                r.active_conns(),
                r.inactive_conns(),
                r.stats().conns,
                r.stats().inpkts,
                r.stats().inbytes
            );
        }
    }
    let counters = director.counters();
    println!(
        "\nforwarded {}  replies {}  connections now {} (created {}, expired {})  MACs learned {}",
        counters.forwarded(),
        counters.replies(),
        director.connection_count(),
        counters.conns_created(),
        counters.conns_expired(),
        counters.neighbours_learned()
    );
    for (reason, n) in counters.pass_counts().filter(|(_, n)| *n > 0) {
        println!("passed  {reason:<28} {n}");
    }
    for (reason, n) in counters.drop_counts().filter(|(_, n)| *n > 0) {
        println!("dropped {reason:<28} {n}");
    }
    Ok(())
}

fn ethernet(dst: [u8; 6], ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress(ROUTER),
        dst_addr: EthernetAddress(dst),
        ethertype,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    buf
}

fn ethernet_from(
    src: [u8; 6],
    dst: [u8; 6],
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = ethernet(dst, ethertype, payload);
    frame[6..12].copy_from_slice(&src);
    frame
}

fn tcp_segment(src: IpAddress, dst: IpAddress, port: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: port,
        dst_port: 80,
        control: if flags & SYN != 0 {
            TcpControl::Syn
        } else if flags & FIN != 0 {
            TcpControl::Fin
        } else {
            TcpControl::None
        },
        seq_number: TcpSeqNumber(1),
        ack_number: (flags & ACK != 0).then_some(TcpSeqNumber(1)),
        window_len: 64240,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf),
        &src,
        &dst,
        &ChecksumCapabilities::default(),
    );
    buf
}

fn ipv4(src: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: VIP,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut packet, &ChecksumCapabilities::default());
    packet.payload_mut().copy_from_slice(payload);
    ethernet(DIRECTOR, EthernetProtocol::Ipv4, &buf)
}

fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    protocol: IpProtocol,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = Ipv6Packet::new_unchecked(&mut buf);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(payload);
    buf
}

fn tcp4(client: Ipv4Addr, port: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    ipv4(
        client,
        IpProtocol::Tcp,
        &tcp_segment(IpAddress::Ipv4(client), IpAddress::Ipv4(VIP), port, flags, payload),
    )
}

fn udp4(client: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: port, dst_port: 53 };
    let mut buf = vec![0u8; repr.header_len() + payload.len()];
    let (src, dst) = (IpAddress::Ipv4(client), IpAddress::Ipv4(VIP));
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf),
        &src,
        &dst,
        payload.len(),
        |p| p.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    ipv4(client, IpProtocol::Udp, &buf)
}

fn tcp6(c: u16, flags: u8) -> Vec<u8> {
    let client = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, c + 1);
    let segment =
        tcp_segment(IpAddress::Ipv6(client), IpAddress::Ipv6(VIP6), 40000 + c, flags, b"");
    ethernet(DIRECTOR, EthernetProtocol::Ipv6, &ipv6(client, VIP6, IpProtocol::Tcp, 64, &segment))
}

fn arp(
    operation: ArpOperation,
    dst: [u8; 6],
    sender: [u8; 6],
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: EthernetAddress(sender),
        source_protocol_addr: sender_ip,
        target_hardware_addr: EthernetAddress(if dst == [0xff; 6] { [0; 6] } else { dst }),
        target_protocol_addr: target_ip,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf));
    ethernet_from(sender, dst, EthernetProtocol::Arp, &buf)
}

fn neighbor_solicitation(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from_bytes(&ROUTER)),
    });
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &src,
        &group,
        &mut Icmpv6Packet::new_unchecked(&mut buf),
        &ChecksumCapabilities::default(),
    );
    let g = group.octets();
    ethernet(
        [0x33, 0x33, g[12], g[13], g[14], g[15]],
        EthernetProtocol::Ipv6,
        &ipv6(src, group, IpProtocol::Icmpv6, 255, &buf),
    )
}
