//! ICMP port unreachable for new connections without a real server (`ip_vs_leave`): opt-in,
//! from the VIP, quoting the packet, rate limited, sent by the driver, allocation-free.

mod support;

use dr_core::{
    Config, Director, Driver, DriverOptions, DropReason, Instant, MemoryIo, Protocol, RealConfig,
    SchedulerKind, ServiceConfig, Verdict,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Icmpv6DstUnreachable, Icmpv6Repr, Ipv4Packet,
    Ipv4Repr,
};
use support::*;

fn director(icmp: bool) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [5, 5, 5, 5]);
    config.capacity = 64;
    config.icmp_port_unreachable = icmp;
    let mut d = Director::new(config).unwrap();
    for (proto, vip) in [(Protocol::Tcp, "10.0.0.100"), (Protocol::Tcp, "2001:db8::100")] {
        let s = d.add_service(ServiceConfig::new(proto, ip(vip), 80, SchedulerKind::Wlc)).unwrap();
        let addr = if vip.contains(':') { "2001:db8::11" } else { "10.0.0.11" };
        // Quiesced: no real server is available.
        d.add_real(s, RealConfig::new(ip(addr)).with_weight(0).with_mac(mac(REAL_MACS[0])))
            .unwrap();
    }
    d
}

#[test]
fn ipv4_reply_quotes_the_packet_from_the_vip() {
    let mut d = director(true);
    let syn = tcp4_payload("192.0.2.7", 40000, "10.0.0.100", 80, SYN, b"early data");
    let mut frame = syn.clone();
    assert_eq!(
        d.process(Instant::from_secs(1), &mut frame),
        Verdict::Drop(DropReason::NoRealAvailable)
    );
    assert_eq!(frame, syn, "the packet itself is not changed");
    let (at, reply) = d.poll_reply().expect("a reply is queued");
    assert_eq!(at, Instant::from_secs(1));
    assert!(d.poll_reply().is_none());
    assert_eq!(&reply[0..6], &ROUTER_MAC);
    assert_eq!(&reply[6..12], &DIRECTOR_MAC);
    let ip = Ipv4Packet::new_checked(&reply[14..]).unwrap();
    assert!(ip.verify_checksum());
    let ip_repr = Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).unwrap();
    assert_eq!(
        (ip_repr.src_addr, ip_repr.dst_addr, ip_repr.hop_limit),
        (v4("10.0.0.100"), v4("192.0.2.7"), 64)
    );
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    let Icmpv4Repr::DstUnreachable { reason, header, data } =
        Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap()
    else {
        panic!("not destination unreachable")
    };
    assert_eq!(reason, Icmpv4DstUnreachable::PortUnreachable);
    assert_eq!((header.src_addr, header.dst_addr), (v4("192.0.2.7"), v4("10.0.0.100")));
    assert_eq!(icmp.data(), &syn[14..], "the whole datagram is quoted (under 548 bytes)");
    assert_eq!(&data[..8], &syn[34..42]);
    assert_eq!(d.counters().icmp_replies(), 1);
}

#[test]
fn ipv6_reply_and_long_packets_are_quoted_up_to_548_bytes() {
    let mut d = director(true);
    let _ = d.process(
        Instant::from_secs(1),
        &mut tcp6("2001:db8:1::7", 40000, "2001:db8::100", 80, SYN),
    );
    let (_, reply) = d.poll_reply().unwrap();
    let (_, ip6, icmp) = parse_ndisc(&reply); // any ICMPv6, checksum verified
    assert_eq!((ip6.src_addr, ip6.dst_addr), (v6("2001:db8::100"), v6("2001:db8:1::7")));
    assert!(matches!(
        icmp,
        Icmpv6Repr::DstUnreachable { reason: Icmpv6DstUnreachable::PortUnreachable, .. }
    ));

    let long = tcp4_payload("192.0.2.8", 40000, "10.0.0.100", 80, SYN, &[7u8; 1000]);
    let _ = d.process(Instant::from_secs(1), &mut long.clone());
    let (_, reply) = d.poll_reply().unwrap();
    assert_eq!(reply.len(), 14 + 20 + 8 + 548);
    assert_eq!(&reply[42..], &long[14..14 + 548]);
    assert!(Icmpv4Packet::new_checked(&reply[34..]).unwrap().verify_checksum());
}

#[test]
fn off_by_default() {
    let mut d = director(false);
    let _ = d.process(Instant::from_secs(1), &mut tcp4("192.0.2.7", 1, "10.0.0.100", 80, SYN));
    assert!(d.poll_reply().is_none());
    assert_eq!(d.counters().icmp_replies(), 0);
}

#[test]
fn rate_limited_and_bounded() {
    let mut d = director(true);
    // 60 at one instant, polled as they come: the burst of 50 passes, 10 are suppressed.
    let mut sent = 0;
    for port in 0..60 {
        let _ =
            d.process(Instant::from_secs(1), &mut tcp4("192.0.2.7", port, "10.0.0.100", 80, SYN));
        sent += usize::from(d.poll_reply().is_some());
    }
    assert_eq!(sent, 50);
    assert_eq!(d.counters().icmp_suppressed(), 10);
    // 5 ms later, 5 more tokens.
    for port in 60..70 {
        let _ = d.process(
            Instant::from_millis(1_005),
            &mut tcp4("192.0.2.7", port, "10.0.0.100", 80, SYN),
        );
    }
    let mut later = 0;
    while d.poll_reply().is_some() {
        later += 1;
    }
    assert_eq!(later, 5);
    // Not polled: the queue holds 8, the rest are suppressed.
    for port in 100..120 {
        let _ =
            d.process(Instant::from_secs(10), &mut tcp4("192.0.2.7", port, "10.0.0.100", 80, SYN));
    }
    assert_eq!(std::iter::from_fn(|| d.poll_reply()).count(), 8);
}

#[test]
fn the_driver_sends_replies_without_allocating_on_the_packet_path() {
    let mut d = director(true);
    let mut io = MemoryIo::new(16);
    for port in 0..3 {
        io.push(Instant::from_secs(1), tcp4("192.0.2.7", port, "10.0.0.100", 80, SYN));
    }
    let mut options = DriverOptions::default();
    options.announce = false;
    let run = Driver::new(options).run(&mut d, &mut io).unwrap();
    assert_eq!(run.generated, 3);
    assert!(io.transmitted().iter().all(|(_, f)| f[14 + 9] == 1 && f[34] == 3));

    let mut frames: Vec<Vec<u8>> =
        (10..40).map(|p| tcp4("192.0.2.7", p, "10.0.0.100", 80, SYN)).collect();
    let info = allocation_counter::measure(|| {
        for frame in &mut frames {
            let _ = d.process(Instant::from_secs(2), frame);
            let _ = d.poll_reply();
        }
    });
    assert_eq!(info.count_total, 0);
}
