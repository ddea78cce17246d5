//! The director's packet path: what happens to each kind of frame.

mod support;

use dr_core::{
    Config, Director, DropReason, Instant, PassReason, Protocol, RealConfig, RealId, SchedulerKind,
    ServiceConfig, ServiceId, Verdict,
};
use smoltcp::wire::{ArpOperation, ArpRepr, Icmpv6Repr, Ipv4Packet, NdiscNeighborFlags, NdiscRepr};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// A director with a TCP and a UDP service on VIP and a TCP service on VIP6, `n` reals each
/// with static MACs, added in order .11, .12, ...
fn setup(n: usize) -> (Director, ServiceId, Vec<RealId>) {
    let mut d = director(1024);
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    let dns =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    let web6 =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr)).unwrap();
    let mut reals = Vec::new();
    for (i, m) in REAL_MACS.iter().enumerate().take(n) {
        reals.push(
            d.add_real(web, RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_mac(mac(*m)))
                .unwrap(),
        );
        d.add_real(dns, RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_mac(mac(*m)))
            .unwrap();
        d.add_real(web6, RealConfig::new(ip(&format!("2001:db8::{}", 11 + i))).with_mac(mac(*m)))
            .unwrap();
    }
    (d, web, reals)
}

#[test]
fn syn_is_forwarded_with_only_the_macs_changed() {
    let (mut d, _, reals) = setup(1);
    let frame = tcp4_payload("192.0.2.7", 40000, VIP, 80, SYN, b"");
    let mut out = frame.clone();
    assert_eq!(d.process(t(1), &mut out), Verdict::Forward { real: reals[0] });
    assert_eq!(&out[0..6], &REAL_MACS[0]);
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    assert!(diff(&frame, &out).iter().all(|&i| i < 12));
    assert_eq!(d.connection_count(), 1);
    assert_eq!(d.counters().forwarded(), 1);
    assert_eq!(d.counters().conns_created(), 1);
}

#[test]
fn established_flow_follows_its_connection() {
    let (mut d, web, reals) = setup(3);
    let mut syn = tcp4("192.0.2.7", 40000, VIP, 80, SYN);
    let Verdict::Forward { real } = d.process(t(1), &mut syn) else { panic!() };
    for i in 0..10 {
        let mut data =
            tcp4_payload("192.0.2.7", 40000, VIP, 80, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(d.process(t(2 + i), &mut data), Verdict::Forward { real });
    }
    let stats = d.service(web).unwrap().stats();
    assert_eq!((stats.conns, stats.inpkts), (1, 11));
    // IP datagram lengths: a 40-byte SYN and ten 58-byte segments.
    assert_eq!(stats.inbytes, 40 + 10 * 58);
    assert_eq!(d.real(real).unwrap().stats().inpkts, 11);
    assert_eq!(d.totals().inpkts, 11);
    assert!(reals.contains(&real));
}

#[test]
fn rr_walks_reals_newest_first() {
    let (mut d, _, reals) = setup(3);
    // Added .11, .12, .13: the kernel's list is .13, .12, .11.
    let picks: Vec<RealId> = (0..6)
        .map(|i| match d.process(t(1), &mut tcp4("192.0.2.7", 40000 + i, VIP, 80, SYN)) {
            Verdict::Forward { real } => real,
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(picks, [reals[2], reals[1], reals[0], reals[2], reals[1], reals[0]]);
}

#[test]
fn rr_skips_weight_zero_as_in_the_spec() {
    // Spec §1.1: list order A(1), B(0), C(5) gives A, C, A, C.
    let mut d = director(64);
    let s =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    let c = d
        .add_real(s, RealConfig::new(ip("10.0.0.13")).with_weight(5).with_mac(mac(REAL_MACS[2])))
        .unwrap();
    d.add_real(s, RealConfig::new(ip("10.0.0.12")).with_weight(0).with_mac(mac(REAL_MACS[1])))
        .unwrap();
    let a = d
        .add_real(s, RealConfig::new(ip("10.0.0.11")).with_weight(1).with_mac(mac(REAL_MACS[0])))
        .unwrap();
    let picks: Vec<Verdict> =
        (0..4).map(|i| d.process(t(1), &mut tcp4("192.0.2.7", 1000 + i, VIP, 80, SYN))).collect();
    let expected = [a, c, a, c].map(|real| Verdict::Forward { real });
    assert_eq!(picks, expected);
}

#[test]
fn what_is_passed_to_the_host() {
    let (mut d, _, _) = setup(1);
    let cases = [
        (tcp4("192.0.2.7", 40000, "10.0.0.2", 22, SYN), PassReason::NotVip),
        (tcp4("192.0.2.7", 40000, VIP, 443, SYN), PassReason::NoService),
        (tcp4("192.0.2.7", 40000, VIP, 80, ACK), PassReason::NoConnection),
        (tcp4("192.0.2.7", 40000, VIP, 80, SYN | RST), PassReason::NoConnection),
        (icmp4_error("192.0.2.1", VIP, 12, 0, &[0; 28]), PassReason::Icmp),
        (icmp4_echo("192.0.2.7", "10.0.0.2"), PassReason::NotVip),
        (udp6("2001:db8::7", 5353, VIP6, 53, b"q"), PassReason::NoService),
    ];
    for (mut frame, reason) in cases {
        assert_eq!(d.process(t(1), &mut frame), Verdict::Pass(reason));
    }
    let gre = ipv4_packet(v4("192.0.2.7"), v4(VIP), IpProtocol::Unknown(47), 64, &[0; 8]);
    let mut f = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv4, &gre);
    assert_eq!(d.process(t(1), &mut f), Verdict::Pass(PassReason::OtherProtocol));
    let mut other = ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Unknown(0x88b5), &[0; 46]);
    assert_eq!(d.process(t(1), &mut other), Verdict::Pass(PassReason::OtherEtherType));
    assert_eq!(d.counters().passes(PassReason::NoConnection), 2);
    assert_eq!(d.connection_count(), 0);
}

#[test]
fn link_layer_drops() {
    let (mut d, _, _) = setup(1);
    let syn = tcp4("192.0.2.7", 40000, VIP, 80, SYN);
    let mut own = syn.clone();
    own[6..12].copy_from_slice(&DIRECTOR_MAC);
    assert_eq!(d.process(t(1), &mut own), Verdict::Drop(DropReason::OwnFrame));
    let mut group_src = syn.clone();
    group_src[6] = 0x03;
    assert_eq!(d.process(t(1), &mut group_src), Verdict::Drop(DropReason::InvalidSourceMac));
    let mut broadcast = syn.clone();
    broadcast[0..6].fill(0xff);
    assert_eq!(d.process(t(1), &mut broadcast), Verdict::Drop(DropReason::NotUnicast));
    let mut multicast = syn.clone();
    multicast[0..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]);
    assert_eq!(d.process(t(1), &mut multicast), Verdict::Drop(DropReason::NotUnicast));
    let mut other = syn;
    other[0..6].copy_from_slice(&REAL_MACS[3]);
    assert_eq!(d.process(t(1), &mut other), Verdict::Drop(DropReason::OtherHost));
    assert_eq!(d.connection_count(), 0);
    assert_eq!(d.counters().dropped(), 5);
}

#[test]
fn arp_request_for_a_vip_is_answered_in_place() {
    let (mut d, _, _) = setup(1);
    let mut frame = arp_request(VIP);
    let len = frame.len();
    assert_eq!(d.process(t(1), &mut frame), Verdict::Reply);
    assert_eq!(frame.len(), len);
    let (eth, arp) = parse_arp(&frame);
    assert_eq!(eth.dst_addr.0, ROUTER_MAC);
    assert_eq!(eth.src_addr.0, DIRECTOR_MAC);
    assert_eq!(
        arp,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: smoltcp::wire::EthernetAddress(DIRECTOR_MAC),
            source_protocol_addr: v4(VIP),
            target_hardware_addr: smoltcp::wire::EthernetAddress(ROUTER_MAC),
            target_protocol_addr: v4("10.0.0.1"),
        }
    );
    // A request on a VLAN the director does not serve is not answered.
    let request = with_vlans(&arp_request(VIP), &[(0x8100, 42)]);
    let mut tagged = request.clone();
    assert_eq!(d.process(t(1), &mut tagged), Verdict::Pass(PassReason::VlanNotServed));
    assert_eq!(tagged, request);
    assert_eq!(d.counters().replies(), 1);
}

/// `setup`'s services on a director that serves `vlans`.
fn on_vlans(vlans: dr_core::VlanSet) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [11, 22, 33, 44]);
    config.vlans = vlans;
    let mut d = Director::new(config).unwrap();
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d
}

#[test]
fn tagged_requests_are_answered_on_their_vlan() {
    let mut vlans = dr_core::VlanSet::untagged();
    vlans.insert(42).unwrap();
    let mut d = on_vlans(vlans);
    let mut tagged = with_vlans(&arp_request(VIP), &[(0x8100, 42)]);
    assert_eq!(d.process(t(1), &mut tagged), Verdict::Reply);
    assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 42]);
    assert_eq!(&tagged[6..12], &DIRECTOR_MAC);
    // QinQ is served only as a pair.
    let mut qinq = with_vlans(&arp_request(VIP), &[(0x88a8, 42), (0x8100, 42)]);
    assert_eq!(d.process(t(1), &mut qinq), Verdict::Pass(PassReason::VlanNotServed));
}

#[test]
fn other_arp_is_not_answered() {
    let (mut d, _, _) = setup(1);
    let mut not_vip = arp_request("10.0.0.2");
    assert_eq!(d.process(t(1), &mut not_vip), Verdict::Drop(DropReason::NotUnicast));
    let mut announcement = arp(ArpOperation::Request, [0xff; 6], ROUTER_MAC, VIP, [0; 6], VIP);
    assert_eq!(d.process(t(1), &mut announcement), Verdict::Drop(DropReason::NotUnicast));
    let mut unicast =
        arp(ArpOperation::Request, DIRECTOR_MAC, ROUTER_MAC, "10.0.0.1", [0; 6], "10.0.0.2");
    assert_eq!(d.process(t(1), &mut unicast), Verdict::Pass(PassReason::Arp));
    assert_eq!(d.counters().replies(), 0);
}

#[test]
fn neighbor_solicitation_for_a_vip_is_answered() {
    let (mut d, _, _) = setup(1);
    let mut frame = neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6);
    assert_eq!(d.process(t(1), &mut frame), Verdict::Reply);
    let (eth, ip, icmp) = parse_ndisc(&frame);
    assert_eq!(eth.dst_addr.0, ROUTER_MAC);
    assert_eq!(eth.src_addr.0, DIRECTOR_MAC);
    assert_eq!(ip.src_addr, v6(VIP6));
    assert_eq!(ip.dst_addr, v6("2001:db8::1"));
    assert_eq!(ip.hop_limit, 255);
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr: ll }) = icmp
    else {
        panic!("{icmp:?}")
    };
    assert_eq!(target_addr, v6(VIP6));
    assert_eq!(flags, NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE);
    assert_eq!(lladdr(ll), Some(DIRECTOR_MAC));
}

#[test]
fn invalid_neighbor_discovery_is_dropped() {
    let (mut d, _, _) = setup(1);
    let frame = neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6);
    let mut hop = frame.clone();
    hop[14 + 7] = 64; // hop limit must be 255
    assert_eq!(d.process(t(1), &mut hop), Verdict::Drop(DropReason::MalformedNeighborDiscovery));
    let mut checksum = frame.clone();
    checksum[14 + 40 + 2] ^= 0xff;
    assert_eq!(
        d.process(t(1), &mut checksum),
        Verdict::Drop(DropReason::MalformedNeighborDiscovery)
    );
    let mut zero_option = frame;
    zero_option[14 + 40 + 25] = 0; // option length 0
    assert_eq!(
        d.process(t(1), &mut zero_option),
        Verdict::Drop(DropReason::MalformedNeighborDiscovery)
    );
}

#[test]
fn macs_are_learned_and_unknown_reals_are_not_scheduled() {
    let mut d = director(64);
    let s =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    let real = d.add_real(s, RealConfig::new(ip("10.0.0.11"))).unwrap();
    let s6 =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr)).unwrap();
    let real6 = d.add_real(s6, RealConfig::new(ip("2001:db8::11"))).unwrap();
    assert_eq!(
        d.process(t(1), &mut tcp4("192.0.2.7", 1, VIP, 80, SYN)),
        Verdict::Drop(DropReason::NoRealAvailable)
    );
    assert_eq!(d.poll_timeout(), Some(Instant::ZERO), "requests are due at once");

    // The director asks: an ARP probe and a Neighbor Solicitation, then nothing until retry.
    let arp_req = d.poll_neighbour_request(t(1)).unwrap();
    let (eth, request) = parse_arp(&arp_req);
    assert_eq!(eth.dst_addr.0, [0xff; 6]);
    let ArpRepr::EthernetIpv4 { operation, target_protocol_addr, source_hardware_addr, .. } =
        request
    else {
        panic!()
    };
    assert_eq!(
        (operation, target_protocol_addr, source_hardware_addr.0),
        (ArpOperation::Request, v4("10.0.0.11"), DIRECTOR_MAC)
    );
    let ns = d.poll_neighbour_request(t(1)).unwrap();
    let (eth, ip6, icmp) = parse_ndisc(&ns);
    assert_eq!(eth.dst_addr.0, [0x33, 0x33, 0xff, 0, 0, 0x11]);
    assert_eq!(ip6.dst_addr, solicited_node(v6("2001:db8::11")));
    assert!(
        matches!(icmp, Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) if target_addr == v6("2001:db8::11"))
    );
    assert!(d.poll_neighbour_request(t(1)).is_none());
    assert_eq!(d.poll_timeout(), Some(t(2)));

    // The replies to those requests, within the retry interval, teach the MACs.
    let answered = Instant::from_millis(1_500);
    let mut reply =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[0], "10.0.0.11", DIRECTOR_MAC, "0.0.0.0");
    assert_eq!(d.process(answered, &mut reply), Verdict::Pass(PassReason::Arp));
    let mut na = neighbor_advertisement(REAL_MACS[1], "2001:db8::11", "fe80::ff:fe00:1");
    assert!(matches!(d.process(answered, &mut na), Verdict::Pass(_)));
    assert_eq!(d.real(real).unwrap().mac(), Some(mac(REAL_MACS[0])));
    assert_eq!(d.real(real6).unwrap().mac(), Some(mac(REAL_MACS[1])));
    assert_eq!(d.counters().neighbours_learned(), 2);
    assert_eq!(d.counters().neighbours_rejected(), 0);
    assert!(d.poll_neighbour_request(t(10)).is_none());
    assert_eq!(d.process(t(3), &mut tcp4("192.0.2.7", 1, VIP, 80, SYN)), Verdict::Forward { real });
}

#[test]
fn static_macs_are_not_overridden() {
    let (mut d, _, reals) = setup(1);
    let mut spoof =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[3], "10.0.0.11", DIRECTOR_MAC, "0.0.0.0");
    let _ = d.process(t(1), &mut spoof);
    assert_eq!(d.real(reals[0]).unwrap().mac(), Some(mac(REAL_MACS[0])));
    assert_eq!(d.counters().neighbours_learned(), 0);
}

#[test]
fn announcements_cover_every_vip_once() {
    let (d, _, _) = setup(1);
    let frames: Vec<_> = d.announcements().collect();
    assert_eq!(frames.len(), 2, "one for the IPv4 VIP (two services), one for the IPv6 VIP");
    let (eth, arp) = parse_arp(&frames[0]);
    assert_eq!(eth.dst_addr.0, [0xff; 6]);
    assert_eq!(frames[0].len(), 60);
    let ArpRepr::EthernetIpv4 { source_protocol_addr, target_protocol_addr, .. } = arp else {
        panic!()
    };
    assert_eq!((source_protocol_addr, target_protocol_addr), (v4(VIP), v4(VIP)));
    let (eth, ip6, icmp) = parse_ndisc(&frames[1]);
    assert_eq!(eth.dst_addr.0, [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(ip6.src_addr, v6(VIP6));
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr: ll }) = icmp
    else {
        panic!()
    };
    assert_eq!(
        (flags, target_addr, lladdr(ll)),
        (NdiscNeighborFlags::OVERRIDE, v6(VIP6), Some(DIRECTOR_MAC))
    );
}

#[test]
fn decrement_ttl_mode() {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 2, 3, 4]);
    config.decrement_ttl = true;
    let mut d = Director::new(config).unwrap();
    let s =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(s, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let s6 =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(s6, RealConfig::new(ip("2001:db8::11")).with_mac(mac(REAL_MACS[0]))).unwrap();

    let frame = tcp4("192.0.2.7", 40000, VIP, 80, SYN);
    let mut out = frame.clone();
    assert!(matches!(d.process(t(1), &mut out), Verdict::Forward { .. }));
    let changed: Vec<usize> = diff(&frame, &out).into_iter().filter(|&i| i >= 12).collect();
    assert!(changed.iter().all(|&i| i == 14 + 8 || i == 14 + 10 || i == 14 + 11), "{changed:?}");
    let packet = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(packet.hop_limit(), 63);
    assert!(packet.verify_checksum());

    let frame6 = tcp6("2001:db8::7", 40000, VIP6, 80, SYN);
    let mut out6 = frame6.clone();
    assert!(matches!(d.process(t(1), &mut out6), Verdict::Forward { .. }));
    assert_eq!(diff(&frame6, &out6).into_iter().filter(|&i| i >= 12).collect::<Vec<_>>(), [14 + 7]);
    assert_eq!(out6[14 + 7], 63);

    let mut expiring = tcp4("192.0.2.8", 40000, VIP, 80, SYN);
    let mut p = Ipv4Packet::new_unchecked(&mut expiring[14..]);
    p.set_hop_limit(1);
    p.fill_checksum();
    assert_eq!(d.process(t(1), &mut expiring), Verdict::Drop(DropReason::TtlExceeded));
}

#[test]
fn full_table_refuses_new_connections_but_keeps_established_ones() {
    let mut d = director(4);
    let s =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(s, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    for port in 0..4 {
        for frame in [
            tcp4("192.0.2.7", port, VIP, 80, SYN),
            tcp4("192.0.2.7", port, VIP, 80, ACK),
            tcp4_payload("192.0.2.7", port, VIP, 80, ACK | PSH, b"GET / HTTP/1.1\r\n"),
        ] {
            assert!(matches!(d.process(t(1), &mut frame.clone()), Verdict::Forward { .. }));
        }
    }
    assert_eq!(
        d.process(t(1), &mut tcp4("192.0.2.9", 9, VIP, 80, SYN)),
        Verdict::Drop(DropReason::ConnTableFull)
    );
    assert_eq!(
        d.process(t(1), &mut udp4("192.0.2.9", 9, VIP, 80, b"")),
        Verdict::Pass(PassReason::NoService)
    );
    for port in 0..4 {
        assert!(matches!(
            d.process(t(2), &mut tcp4("192.0.2.7", port, VIP, 80, ACK)),
            Verdict::Forward { .. }
        ));
    }
    assert_eq!(d.connection_count(), 4);
    assert_eq!(d.counters().drops(DropReason::ConnTableFull), 1);
}

#[test]
fn vlan_tagged_traffic_is_forwarded_with_its_tags() {
    let mut vlans = dr_core::VlanSet::none();
    vlans.insert_stacked(10, 20).unwrap();
    vlans.insert(30).unwrap();
    let mut d = on_vlans(vlans);
    for tags in [&[(0x88a8, 10), (0x8100, 20)][..], &[(0x8100, 30)], &[(0x8100, 0x2000 | 30)]] {
        let frame = with_vlans(&tcp4("192.0.2.7", 40000, VIP, 80, SYN), tags);
        let mut out = frame.clone();
        assert!(matches!(d.process(t(1), &mut out), Verdict::Forward { .. }), "{tags:?}");
        assert!(diff(&frame, &out).iter().all(|&i| i < 12), "only the MACs change: {tags:?}");
    }
    // Not the untagged LAN, nor another VLAN, nor the inner VLAN alone: never forwarded.
    for tags in [&[][..], &[(0x8100, 20)], &[(0x8100, 10)], &[(0x88a8, 20), (0x8100, 10)]] {
        let frame = with_vlans(&tcp4("192.0.2.7", 40001, VIP, 80, SYN), tags);
        let mut out = frame.clone();
        assert_eq!(d.process(t(1), &mut out), Verdict::Pass(PassReason::VlanNotServed));
        assert_eq!(out, frame);
    }
}

#[test]
fn ipv6_and_udp_services() {
    let (mut d, _, _) = setup(2);
    assert!(matches!(
        d.process(t(1), &mut tcp6("2001:db8::7", 40000, VIP6, 80, SYN)),
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        d.process(t(1), &mut udp4("192.0.2.7", 5353, VIP, 53, b"q")),
        Verdict::Forward { .. }
    ));
    assert_eq!(d.connection_count(), 2);
}

#[test]
fn addresses_no_host_on_the_lan_can_have_are_refused_with_the_reason() {
    use dr_core::ConfigError;
    let (mut d, web, _) = setup(1);
    let service = |vip: &str| ServiceConfig::new(Protocol::Tcp, ip(vip), 80, SchedulerKind::Rr);
    for (vip, why) in [
        ("127.0.0.1", "loopback (127.0.0.0/8)"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback (::1)"),
        ("0.0.0.0", "unspecified"),
        ("0.0.0.7", "unspecified (0.0.0.0/8, this network)"),
        ("::", "unspecified (::)"),
        ("224.0.0.251", "multicast (224.0.0.0/4)"),
        ("ff02::fb", "multicast (ff00::/8)"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let err = d.add_service(service(vip)).unwrap_err();
        assert_eq!(err, ConfigError::InvalidVip(ip(vip)));
        assert!(err.to_string().starts_with(&format!("vip {vip} is {why}")), "{err}");
    }
    for (real, why) in [
        ("127.0.0.1", "loopback (127.0.0.0/8), the director's own host"),
        ("0.0.0.0", "unspecified"),
        ("239.0.0.1", "multicast"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let err = d.add_real(web, RealConfig::new(ip(real))).unwrap_err();
        assert_eq!(err, ConfigError::InvalidRealAddr(ip(real)));
        assert!(err.to_string().contains(&format!("{real} is {why}")), "{err}");
    }
    // IPv6 link-local: a VIP may be one (the kernel does not look), a real server not.
    let v6 = d
        .add_service(ServiceConfig::new(
            Protocol::Tcp,
            ip("2001:db8::100"),
            8080,
            SchedulerKind::Rr,
        ))
        .unwrap();
    let err = d.add_real(v6, RealConfig::new(ip("fe80::1"))).unwrap_err();
    assert!(err.to_string().contains("fe80::1 is link-local (fe80::/10)"), "{err}");
    assert!(d.add_real(v6, RealConfig::new(ip("::1"))).is_err());
    // A real server at a VIP of the director, and a VIP at a real server's address.
    let err = d.add_real(web, RealConfig::new(ip("2001:db8::100"))).unwrap_err();
    assert!(matches!(err, ConfigError::RealIsVip(_) | ConfigError::FamilyMismatch { .. }));
    let err = d.add_real(web, RealConfig::new(ip(VIP))).unwrap_err();
    assert_eq!(err, ConfigError::RealIsVip(ip(VIP)));
    let err = d.add_service(service("10.0.0.11")).unwrap_err();
    assert_eq!(err, ConfigError::VipIsReal(ip("10.0.0.11")));
    // Once that real server is gone (from both services it is in), its address may be a VIP.
    let elevens: Vec<RealId> =
        d.reals().filter(|(_, r)| r.addr() == ip("10.0.0.11")).map(|(id, _)| id).collect();
    for id in elevens {
        d.remove_real(id).unwrap();
    }
    d.add_service(service("10.0.0.11")).unwrap();
}

#[test]
fn configuration_errors_name_the_problem() {
    use dr_core::ConfigError;
    let (mut d, web, _) = setup(1);
    let dup = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr));
    assert!(matches!(dup, Err(ConfigError::ServiceExists(_))));
    assert!(matches!(
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip("224.0.0.1"), 80, SchedulerKind::Rr)),
        Err(ConfigError::InvalidVip(_))
    ));
    assert!(matches!(
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 0, SchedulerKind::Rr)),
        Err(ConfigError::PortZero(_))
    ));
    assert!(matches!(
        d.add_real(web, RealConfig::new(ip("10.0.0.11"))),
        Err(ConfigError::RealExists(_))
    ));
    assert!(matches!(
        d.add_real(web, RealConfig::new(ip("2001:db8::1"))),
        Err(ConfigError::FamilyMismatch { .. })
    ));
    assert!(matches!(
        d.add_real(web, RealConfig::new(ip("10.0.0.20")).with_weight(u32::MAX)),
        Err(ConfigError::Weight(_))
    ));
    let clash = d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[3])));
    assert!(matches!(clash, Err(ConfigError::RealExists(_))));
    let other =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 8080, SchedulerKind::Rr)).unwrap();
    let err = d
        .add_real(other, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[3])))
        .unwrap_err();
    assert!(matches!(err, ConfigError::MacConflict { .. }));
    assert!(err.to_string().contains("10.0.0.11"), "{err}");
    let mut config = Config::new(mac([0xff; 6]), [0; 4]);
    assert!(matches!(Director::new(config.clone()), Err(ConfigError::DirectorMac(_))));
    config.mac = mac(DIRECTOR_MAC);
    config.capacity = 0;
    let err = Director::new(config).unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
}

#[test]
fn every_reason_is_reachable_and_counted() {
    use smoltcp::wire::{EthernetProtocol, IpProtocol};
    let mut config = Config::new(mac(DIRECTOR_MAC), [9, 9, 9, 9]);
    config.capacity = 2;
    config.decrement_ttl = true;
    let mut d = Director::new(config).unwrap();
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let dark =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 81, SchedulerKind::Rr)).unwrap();
    d.add_real(dark, RealConfig::new(ip("10.0.0.12"))).unwrap();
    d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr)).unwrap();

    let syn = tcp4("192.0.2.7", 1, VIP, 80, SYN);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = syn.clone();
        f(&mut frame);
        frame
    };
    let ipv4_fix =
        |frame: &mut Vec<u8>| Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
    let ns = neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6);
    let mut corpus = vec![
        vec![0u8; 10],
        with_vlans(&syn, &[(0x8100, 99)]),
        with_vlans(&syn, &[(0x8100, 1)])[..16].to_vec(),
        with_vlans(&syn, &[(0x8100, 1), (0x8100, 2), (0x8100, 3)]),
        with(&|f| f[6..12].copy_from_slice(&DIRECTOR_MAC)),
        with(&|f| f[6] = 1),
        with(&|f| f[0..6].fill(0xff)),
        with(&|f| f[0..6].copy_from_slice(&REAL_MACS[3])),
        arp_request(VIP)[..30].to_vec(),
        with(&|f| f[14] = 0x35),
        with(&|f| f[24] ^= 1),
        syn[..30].to_vec(),
        ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Ipv6, &[0x60; 20]),
        tcp6("2001:db8::7", 1, VIP6, 80, SYN)[..70].to_vec(),
        tcp6_with_extensions(
            "2001:db8::7",
            VIP6,
            IpProtocol::Ipv6Opts,
            &[vec![60, 0, 1, 4, 0, 0, 0, 0], vec![0, 0, 1, 4, 0, 0, 0, 0]],
            SYN,
        ),
        with(&|f| f[14 + 20 + 12] = 0x20),
        // An IPv4 header with a Router Alert option of length 0.
        {
            let mut f = syn[..34].to_vec();
            f.extend_from_slice(&[0x94, 0, 0, 0]);
            f.extend_from_slice(&syn[34..]);
            let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
            p.set_header_len(24);
            p.set_total_len(p.total_len() + 4);
            p.fill_checksum();
            f
        },
        ethernet(
            DIRECTOR_MAC,
            ROUTER_MAC,
            EthernetProtocol::Ipv4,
            &ipv4_packet(v4("192.0.2.7"), v4(VIP), IpProtocol::Udp, 64, &[0; 4]),
        ),
        ethernet(
            DIRECTOR_MAC,
            ROUTER_MAC,
            EthernetProtocol::Ipv4,
            &ipv4_packet(v4("192.0.2.7"), v4(VIP), IpProtocol::Icmp, 64, &[0; 4]),
        ),
        {
            let mut f = ns.clone();
            f[14 + 7] = 1;
            f
        },
        with(&|f| {
            Ipv4Packet::new_unchecked(&mut f[14..]).set_more_frags(true);
            ipv4_fix(f);
        }),
        with(&|f| {
            Ipv4Packet::new_unchecked(&mut f[14..]).set_hop_limit(1);
            ipv4_fix(f);
        }),
        tcp4("192.0.2.7", 1, VIP, 81, SYN),
        tcp4("192.0.2.7", 2, VIP, 80, SYN),
        tcp4("192.0.2.7", 3, VIP, 80, SYN),
        // Established with data: a full table of them has no unproven entry to give way.
        tcp4_payload("192.0.2.7", 2, VIP, 80, ACK, b"GET"),
        tcp4_payload("192.0.2.7", 3, VIP, 80, ACK, b"GET"),
        tcp4("192.0.2.7", 4, VIP, 80, SYN),
        ethernet(DIRECTOR_MAC, ROUTER_MAC, EthernetProtocol::Unknown(0x88b5), &[0; 46]),
        arp(ArpOperation::Request, DIRECTOR_MAC, ROUTER_MAC, "10.0.0.1", [0; 6], "10.0.0.2"),
        tcp4("192.0.2.7", 1, "10.0.0.2", 80, SYN),
        tcp4("192.0.2.7", 1, VIP, 443, SYN),
        tcp4("192.0.2.7", 9, VIP, 80, ACK),
        icmp4_echo("192.0.2.7", VIP),
        icmp4_error("192.0.2.1", VIP, 13, 0, &[0; 12]),
        {
            let mut f = icmp4_echo("192.0.2.7", VIP);
            let last = f.len() - 1;
            f[last] ^= 0xff;
            f
        },
        // A later fragment whose first one was never seen.
        udp4_fragments("192.0.2.7", 5353, VIP, 53, &[7; 64], 9, 32).pop().unwrap(),
        // A fragmented datagram to a port without a service: the rest follows the first.
        udp4_fragments("192.0.2.7", 5353, VIP, 54, &[7; 64], 10, 32).remove(0),
        udp4_fragments("192.0.2.7", 5353, VIP, 54, &[7; 64], 10, 32).pop().unwrap(),
        // A fragmented ICMPv6 message to a VIP.
        ethernet(
            DIRECTOR_MAC,
            ROUTER_MAC,
            EthernetProtocol::Ipv6,
            &ipv6_packet(
                v6("2001:db8::7"),
                v6(VIP6),
                IpProtocol::Ipv6Frag,
                64,
                &[58, 0, 0, 1, 0, 0, 0, 1, 128, 0, 0, 0, 0, 1, 0, 1],
            ),
        ),
        ethernet(
            DIRECTOR_MAC,
            ROUTER_MAC,
            EthernetProtocol::Ipv4,
            &ipv4_packet(v4("192.0.2.7"), v4(VIP), IpProtocol::Unknown(47), 64, &[0; 8]),
        ),
        // Martian sources.
        tcp4(VIP, 1, VIP, 80, SYN),
        tcp4("0.0.0.0", 1, VIP, 80, SYN),
        tcp4("127.0.0.1", 1, VIP, 80, SYN),
        tcp4("224.0.0.1", 1, VIP, 80, SYN),
        tcp4("255.255.255.255", 1, VIP, 80, SYN),
    ];
    for frame in &mut corpus {
        let _ = d.process(t(1), frame);
    }
    // A connection whose real server is then removed.
    let real = d.service(web).unwrap().reals()[0];
    d.remove_real(real).unwrap();
    let _ = d.process(t(2), &mut tcp4("192.0.2.7", 2, VIP, 80, ACK));
    let counters = d.counters();
    for &reason in DropReason::ALL {
        assert!(counters.drops(reason) > 0, "no frame of the corpus was dropped for {reason}");
    }
    for &reason in PassReason::ALL {
        assert!(counters.passes(reason) > 0, "no frame of the corpus was passed for {reason}");
    }
}

fn listing_director() -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 1, 1, 1]);
    config.capacity = 4096;
    let mut d = Director::new(config).unwrap();
    // Added out of order: the listing sorts as ipvsadm does. The kernel list of the web
    // service is .11, .12 (newest first), so rr gives .11 the first and third SYN.
    let dns =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    let flags =
        dr_core::SchedFlags { sh_port: true, sh_fallback: true, ..dr_core::SchedFlags::NONE };
    let sh6 = ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Sh).with_flags(flags);
    let web6 = d.add_service(sh6).unwrap();
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.12")).with_weight(2).with_mac(mac(REAL_MACS[1])))
        .unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(web6, RealConfig::new(ip("2001:db8::11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    for port in 0..3 {
        let _ = d.process(t(1), &mut tcp4("192.0.2.7", port, VIP, 80, SYN));
    }
    let _ = d.process(t(1), &mut tcp4_payload("192.0.2.7", 0, VIP, 80, ACK, &[0; 100]));
    let _ = d.process(t(1), &mut udp4("192.0.2.7", 9, VIP, 53, b"q"));
    d
}

#[test]
fn listing_plain_matches_ipvsadm() {
    let d = listing_director();
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 Route   1      2          0         
  -> 10.0.0.12:80                 Route   2      1          0         
UDP  10.0.0.100:53 rr
  -> 10.0.0.11:53                 Route   1      0          1         
TCP  [2001:db8::100]:80 sh (sh-fallback,sh-port)
  -> [2001:db8::11]:80            Route   1      0          0         
";
    assert_eq!(d.listing(dr_core::ListingFormat::Plain).to_string(), expected);
}

#[test]
fn listing_stats_matches_ipvsadm() {
    let d = listing_director();
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       3        4        0      260        0
  -> 10.0.0.11:80                        2        3        0      220        0
  -> 10.0.0.12:80                        1        1        0       40        0
UDP  10.0.0.100:53                       1        1        0       29        0
  -> 10.0.0.11:53                        1        1        0       29        0
TCP  [2001:db8::100]:80                  0        0        0        0        0
  -> [2001:db8::11]:80                   0        0        0        0        0
";
    assert_eq!(d.listing(dr_core::ListingFormat::Stats).to_string(), expected);
}

/// The listing director with thresholds on 10.0.0.12 and a persistent service (/24) whose
/// one real server has a template and a connection.
fn listing_director_with_persistence() -> Director {
    let mut d = listing_director();
    let web = d.find_service(&key(Protocol::Tcp, VIP, 80)).unwrap();
    let reals = d.service(web).unwrap().reals().to_vec();
    let twelve = reals.into_iter().find(|&r| d.real(r).unwrap().addr() == ip("10.0.0.12")).unwrap();
    let edit = dr_core::RealEdit::of(d.real(twelve).unwrap()).with_thresholds(100, 50);
    d.edit_real(twelve, edit).unwrap();
    let persistence = dr_core::Persistence::new(360).with_prefix_len(24);
    let https = ServiceConfig::new(Protocol::Tcp, ip(VIP), 443, SchedulerKind::Wlc)
        .with_persistence(persistence);
    let https = d.add_service(https).unwrap();
    let real = RealConfig::new(ip("10.0.0.13")).with_weight(5).with_mac(mac(REAL_MACS[2]));
    d.add_real(https, real).unwrap();
    let _ = d.process(t(1), &mut tcp4("192.0.2.7", 7, VIP, 443, SYN));
    d
}

fn key(protocol: Protocol, vip: &str, port: u16) -> dr_core::ServiceKey {
    dr_core::ServiceKey { protocol, vip: ip(vip), port }
}

#[test]
fn listing_thresholds_matches_ipvsadm() {
    // print_title and print_service_entry with FMT_THRESHOLDS: the service line as in the
    // plain listing, "  -> %-28s %-10u %-10u %-10u %-10u" for each real server.
    let d = listing_director_with_persistence();
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 0          0          2          0         
  -> 10.0.0.12:80                 100        50         1          0         
TCP  10.0.0.100:443 wlc persistent 360 mask 255.255.255.0
  -> 10.0.0.13:443                0          0          1          0         
UDP  10.0.0.100:53 rr
  -> 10.0.0.11:53                 0          0          0          1         
TCP  [2001:db8::100]:80 sh (sh-fallback,sh-port)
  -> [2001:db8::11]:80            0          0          0          0         
";
    assert_eq!(d.listing(dr_core::ListingFormat::Thresholds).to_string(), expected);
}

#[test]
fn listing_persistent_conn_of_one_service_matches_ipvsadm() {
    // -L -n -t VIP:443 --persistent-conn: list_service prints the title lines and the
    // service, without the version line; "  -> %-28s %-9u %-11u %-10u %-10u".
    let d = listing_director_with_persistence();
    let expected = "\
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  10.0.0.100:443 wlc persistent 360 mask 255.255.255.0
  -> 10.0.0.13:443                5         1           1          0         
";
    let options = dr_core::ListingOptions::new(dr_core::ListingFormat::PersistentConn)
        .service(Some(key(Protocol::Tcp, VIP, 443)));
    assert_eq!(d.listing(options).to_string(), expected);
    let expected = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.100:53 rr
  -> 10.0.0.11:53                 Route   1      0          1         
";
    let options = dr_core::ListingOptions::new(dr_core::ListingFormat::Plain).service(Some(key(
        Protocol::Udp,
        VIP,
        53,
    )));
    assert_eq!(d.listing(options).to_string(), expected);
}

#[test]
fn rules_match_ipvsadm_save() {
    // print_service_entry with FMT_RULE: "-A %s -s %s", " -p %u", " -M mask" (IPv6: the
    // prefix length), " -b flags"; "-a %s -r %s %s -w %d" per real server. Thresholds are
    // dr's addition (ipvsadm -S drops them).
    let d = listing_director_with_persistence();
    let expected = "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 2 -x 100 -y 50
-A -t 10.0.0.100:443 -s wlc -p 360 -M 255.255.255.0
-a -t 10.0.0.100:443 -r 10.0.0.13:443 -g -w 5
-A -u 10.0.0.100:53 -s rr
-a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 1
-A -t [2001:db8::100]:80 -s sh -b sh-fallback,sh-port
-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 1
";
    assert_eq!(d.listing(dr_core::ListingFormat::Rules).to_string(), expected);
}

#[test]
fn unsorted_listing_is_in_the_order_added_with_the_newest_real_first() {
    let d = listing_director();
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.100:53 rr
  -> 10.0.0.11:53                 Route   1      0          1         
TCP  [2001:db8::100]:80 sh (sh-fallback,sh-port)
  -> [2001:db8::11]:80            Route   1      0          0         
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 Route   1      2          0         
  -> 10.0.0.12:80                 Route   2      1          0         
";
    let options = dr_core::ListingOptions::new(dr_core::ListingFormat::Plain).sorted(false);
    assert_eq!(d.listing(options).to_string(), expected);
}

#[test]
fn tables_of_directors_sharing_the_work_add_up() {
    // Two workers with the same services: one listing with the sums, the capacity of both
    // tables in the header.
    let d = listing_director();
    let mut table = d.table();
    table.add(&d.table());
    let expected = "\
IP Virtual Server version 1.2.1 (size=8192)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       6        8        0      520        0
  -> 10.0.0.11:80                        4        6        0      440        0
  -> 10.0.0.12:80                        2        2        0       80        0
UDP  10.0.0.100:53                       2        2        0       58        0
  -> 10.0.0.11:53                        2        2        0       58        0
TCP  [2001:db8::100]:80                  0        0        0        0        0
  -> [2001:db8::11]:80                   0        0        0        0        0
";
    let options = dr_core::ListingOptions::new(dr_core::ListingFormat::Stats);
    assert_eq!(dr_core::Listing::new(table.clone(), options).to_string(), expected);
    let plain = dr_core::Listing::new(table, dr_core::ListingFormat::Plain).to_string();
    assert!(
        plain.contains("  -> 10.0.0.11:80                 Route   1      4          0         \n")
    );
    assert!(
        plain.contains("  -> 10.0.0.11:53                 Route   1      0          2         \n")
    );
}

#[test]
fn learned_macs_are_refreshed_and_followed() {
    let mut d = director(64);
    let s =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    let real = d.add_real(s, RealConfig::new(ip("10.0.0.11"))).unwrap();
    let fixed = d.add_real(s, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1])));
    assert!(fixed.is_ok());
    assert!(d.poll_neighbour_request(t(2)).is_some(), "asked for the unknown MAC");
    let mut reply =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[0], "10.0.0.11", DIRECTOR_MAC, "0.0.0.0");
    assert_eq!(d.process(t(2), &mut reply), Verdict::Pass(PassReason::Arp));
    assert_eq!(d.real(real).unwrap().mac(), Some(mac(REAL_MACS[0])));
    // Confirmed at 2 s: asked again at 62 s (the default refresh), never for the static one.
    assert!(d.poll_neighbour_request(Instant::from_millis(61_999)).is_none());
    assert!(d.poll_timeout().is_some_and(|due| due <= t(62)));
    let request = d.poll_neighbour_request(t(62)).expect("a refresh");
    let (_, ArpRepr::EthernetIpv4 { target_protocol_addr, .. }) = parse_arp(&request) else {
        panic!()
    };
    assert_eq!(target_protocol_addr, v4("10.0.0.11"));
    assert!(d.poll_neighbour_request(t(62)).is_none(), "once per interval");
    // The server answers the refresh from a new NIC: its connections follow.
    let mut moved =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[2], "10.0.0.11", DIRECTOR_MAC, "0.0.0.0");
    let _ = d.process(Instant::from_millis(62_500), &mut moved);
    assert_eq!(d.real(real).unwrap().mac(), Some(mac(REAL_MACS[2])));
    // No answer at all: asked once more an interval later, and the MAC is kept.
    assert!(d.poll_neighbour_request(t(122)).is_none());
    assert!(d.poll_neighbour_request(t(123)).is_some());
    assert_eq!(d.real(real).unwrap().mac(), Some(mac(REAL_MACS[2])));
    assert_eq!(d.counters().neighbours_rejected(), 0);
}

#[test]
fn a_connection_is_found_by_its_key() {
    let (mut d, web, reals) = setup(2);
    let key = |port| dr_core::FlowKey {
        protocol: Protocol::Tcp,
        client: ip("192.0.2.1"),
        client_port: port,
        vip: ip(VIP),
        vip_port: 80,
    };
    assert_eq!(d.connection(&key(1000)), None);
    assert!(d.process(t(1), &mut tcp4("192.0.2.1", 1000, VIP, 80, SYN)).is_transmit());
    let conn = d.connection(&key(1000)).expect("the SYN made a connection");
    assert_eq!(conn.key, key(1000));
    assert_eq!(conn.state, dr_core::ConnState::SynRecv);
    assert_eq!(conn.service, web);
    assert!(reals.contains(&conn.real));
    assert_eq!(conn.expires, t(61));
    assert_eq!(d.connection(&key(1001)), None);
    assert_eq!(d.connection(&dr_core::FlowKey { protocol: Protocol::Udp, ..key(1000) }), None);
}
