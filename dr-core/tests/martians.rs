//! Martian sources: a packet to a VIP from a VIP, an unspecified, loopback or multicast
//! address, or the IPv4 limited broadcast, is dropped with its own reason, as the kernel's
//! input path drops it before IPVS sees it (`ip_route_input_slow`, `fib_validate_source`,
//! `ip6_rcv_core`). Nothing is scheduled, relayed or answered for it.

mod support;

use dr_core::{
    Config, Director, DropReason, Instant, PassReason, Protocol, RealConfig, SchedulerKind,
    ServiceConfig, Verdict,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, NdiscRepr};
use support::*;

const VIP: &str = "10.0.0.100";
const OTHER_VIP: &str = "10.0.0.101";
const VIP6: &str = "2001:db8::100";
const OTHER_VIP6: &str = "2001:db8::101";

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// TCP 80 and UDP 53 on 10.0.0.100 and 2001:db8::100, TCP 80 on 10.0.0.101 and
/// 2001:db8::101, each with one real server of a known MAC.
fn director() -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [3, 1, 4, 1]);
    config.capacity = 64;
    let mut d = Director::new(config).unwrap();
    let services = [
        (Protocol::Tcp, VIP, 80, "10.0.0.11"),
        (Protocol::Udp, VIP, 53, "10.0.0.11"),
        (Protocol::Tcp, OTHER_VIP, 80, "10.0.0.12"),
        (Protocol::Tcp, VIP6, 80, "2001:db8::11"),
        (Protocol::Udp, VIP6, 53, "2001:db8::11"),
        (Protocol::Tcp, OTHER_VIP6, 80, "2001:db8::12"),
    ];
    for (protocol, vip, port, real) in services {
        let s = d.add_service(ServiceConfig::new(protocol, ip(vip), port, SchedulerKind::Rr));
        let real = RealConfig::new(ip(real)).with_mac(mac(REAL_MACS[0]));
        d.add_real(s.unwrap(), real).unwrap();
    }
    d
}

/// The count of the drop reason named `name`.
fn drops(d: &Director, name: &str) -> u64 {
    let found = d.counters().drop_counts().find(|(r, _)| r.name() == name);
    found.unwrap_or_else(|| panic!("no drop reason {name}")).1
}

const MARTIAN_NAMES: [&str; 5] = [
    "martian-source-vip",
    "martian-source-unspecified",
    "martian-source-loopback",
    "martian-source-multicast",
    "martian-source-broadcast",
];

/// The sources of each class, for IPv4 and IPv6, with the name of their counter.
const SOURCES_V4: [(&str, &str); 9] = [
    (VIP, "martian-source-vip"),
    (OTHER_VIP, "martian-source-vip"),
    ("0.0.0.0", "martian-source-unspecified"),
    ("0.1.2.3", "martian-source-unspecified"),
    ("127.0.0.1", "martian-source-loopback"),
    ("127.9.9.9", "martian-source-loopback"),
    ("224.0.0.1", "martian-source-multicast"),
    ("239.255.0.7", "martian-source-multicast"),
    ("255.255.255.255", "martian-source-broadcast"),
];
const SOURCES_V6: [(&str, &str); 6] = [
    (VIP6, "martian-source-vip"),
    (OTHER_VIP6, "martian-source-vip"),
    ("::", "martian-source-unspecified"),
    ("::1", "martian-source-loopback"),
    ("ff02::1", "martian-source-multicast"),
    ("ff0e::1:3", "martian-source-multicast"),
];

/// Each frame is dropped for `name`, counted once under it and under no other martian
/// reason, and leaves no connection, no forward and no reply behind.
fn assert_martian(src: &str, frames: Vec<(&str, Vec<u8>)>, name: &str) {
    for (what, mut frame) in frames {
        let what = format!("{src} {what}");
        let mut d = director();
        let verdict = d.process(t(1), &mut frame);
        let Verdict::Drop(reason) = verdict else { panic!("{what}: {verdict:?}") };
        assert_eq!(reason.name(), name, "{what}");
        for other in MARTIAN_NAMES {
            assert_eq!(drops(&d, other), u64::from(other == name), "{what}: {other}");
        }
        let c = d.counters();
        assert_eq!((c.forwarded(), c.replies(), c.passed()), (0, 0, 0), "{what}");
        assert_eq!((c.conns_created(), c.echo_replies(), c.icmp_relayed()), (0, 0, 0), "{what}");
        assert_eq!(d.connection_count(), 0, "{what}");
        assert!(d.poll_reply().is_none(), "{what}: nothing is sent back to a martian");
    }
}

#[test]
fn ipv4_martians_are_dropped() {
    for (src, name) in SOURCES_V4 {
        let frames = vec![
            ("tcp syn", tcp4(src, 40000, VIP, 80, SYN)),
            ("tcp syn to the other vip", tcp4(src, 40000, OTHER_VIP, 80, SYN)),
            ("tcp ack", tcp4(src, 40000, VIP, 80, ACK)),
            ("tcp syn, no service", tcp4(src, 40000, VIP, 443, SYN)),
            ("udp", udp4(src, 5353, VIP, 53, b"query")),
            ("ping", icmp4_echo(src, VIP)),
            ("icmp timestamp", icmp4_error(src, VIP, 13, 0, &[0; 12])),
            (
                "gre",
                ethernet(
                    DIRECTOR_MAC,
                    ROUTER_MAC,
                    EthernetProtocol::Ipv4,
                    &ipv4_packet(v4(src), v4(VIP), IpProtocol::Unknown(47), 64, &[0; 8]),
                ),
            ),
        ];
        assert_martian(src, frames, name);
    }
}

#[test]
fn ipv6_martians_are_dropped() {
    for (src, name) in SOURCES_V6 {
        let frames = vec![
            ("tcp syn", tcp6(src, 40000, VIP6, 80, SYN)),
            ("tcp syn to the other vip", tcp6(src, 40000, OTHER_VIP6, 80, SYN)),
            ("tcp ack", tcp6(src, 40000, VIP6, 80, ACK)),
            ("udp", udp6(src, 5353, VIP6, 53, b"query")),
            ("ping", icmp6_echo(src, VIP6)),
        ];
        assert_martian(src, frames, name);
    }
}

#[test]
fn fragments_from_martians_are_dropped_as_martians() {
    for (src, name) in SOURCES_V4 {
        let mut d = director();
        for mut fragment in udp4_fragments(src, 5353, VIP, 53, &[7; 64], 9, 32) {
            let verdict = d.process(t(1), &mut fragment);
            assert_eq!(verdict.drop_name(), Some(name), "{src}");
        }
        assert_eq!(drops(&d, name), 3, "{src}: each of the three fragments");
        assert_eq!(d.counters().drops(DropReason::FragmentUnmatched), 0, "{src}");
        assert_eq!(d.counters().fragments_forwarded(), 0, "{src}");
    }
    for (src, name) in SOURCES_V6 {
        let mut d = director();
        for mut fragment in udp6_fragments(src, 5353, VIP6, 53, &[7; 64], 9, 32) {
            let verdict = d.process(t(1), &mut fragment);
            assert_eq!(verdict.drop_name(), Some(name), "{src}");
        }
        assert_eq!(drops(&d, name), 3, "{src}");
    }
}

/// The name of a drop verdict's reason.
trait DropName {
    fn drop_name(&self) -> Option<&'static str>;
}

impl DropName for Verdict {
    fn drop_name(&self) -> Option<&'static str> {
        match self {
            Self::Drop(reason) => Some(reason.name()),
            _ => None,
        }
    }
}

#[test]
fn ordinary_sources_are_unaffected() {
    // The same frames from a client, and from addresses next to the martian classes:
    // 240.0.0.0/4 (reserved, not martian in Linux), 255.255.255.254, a /24's broadcast
    // address (the director cannot know the client's netmask), ::2, fe80::1.
    for src in ["192.0.2.7", "240.0.0.1", "255.255.255.254", "192.0.2.255", "1.0.0.1"] {
        let mut d = director();
        let mut syn = tcp4(src, 40000, VIP, 80, SYN);
        assert!(matches!(d.process(t(1), &mut syn), Verdict::Forward { .. }), "{src}");
        let mut ping = icmp4_echo(src, VIP);
        assert_eq!(d.process(t(1), &mut ping), Verdict::Reply, "{src}");
        let mut other_vip = tcp4(src, 40000, OTHER_VIP, 80, SYN);
        assert!(matches!(d.process(t(1), &mut other_vip), Verdict::Forward { .. }), "{src}");
    }
    for src in ["2001:db8::7", "::2", "fe80::1", "fec0::1"] {
        let mut d = director();
        let mut syn = tcp6(src, 40000, VIP6, 80, SYN);
        assert!(matches!(d.process(t(1), &mut syn), Verdict::Forward { .. }), "{src}");
        let mut ping = icmp6_echo(src, VIP6);
        assert_eq!(d.process(t(1), &mut ping), Verdict::Reply, "{src}");
    }
}

#[test]
fn martians_to_other_addresses_are_the_hosts() {
    // Not to a VIP: the host's own kernel judges them.
    let mut d = director();
    for (src, _) in SOURCES_V4 {
        let mut frame = tcp4(src, 40000, "10.0.0.2", 22, SYN);
        assert_eq!(d.process(t(1), &mut frame), Verdict::Pass(PassReason::NotVip), "{src}");
    }
    for (src, _) in SOURCES_V6 {
        let mut frame = tcp6(src, 40000, "2001:db8::2", 22, SYN);
        assert_eq!(d.process(t(1), &mut frame), Verdict::Pass(PassReason::NotVip), "{src}");
    }
    for name in MARTIAN_NAMES {
        assert_eq!(drops(&d, name), 0, "{name}");
    }
}

#[test]
fn the_link_layer_reason_comes_first() {
    // The kernel drops a frame for another station, or a group-addressed one, before it
    // routes it: such frames keep their link-layer reason.
    let mut d = director();
    let mut foreign = tcp4("127.0.0.1", 1, VIP, 80, SYN);
    foreign[0..6].copy_from_slice(&REAL_MACS[3]);
    assert_eq!(d.process(t(1), &mut foreign), Verdict::Drop(DropReason::OtherHost));
    let mut broadcast = icmp6_echo("::1", VIP6);
    broadcast[0..6].fill(0xff);
    assert_eq!(d.process(t(1), &mut broadcast), Verdict::Drop(DropReason::NotUnicast));
    assert_eq!(drops(&d, "martian-source-loopback"), 0);
}

/// A Neighbor Solicitation for `target` from the unspecified address, without a source
/// link-layer option: to its solicited-node group, that is duplicate address detection
/// (RFC 4862 §5.4.2); `unicast`, to the target itself at the director's MAC, it is
/// invalid (RFC 4861 §7.1.1).
fn unspecified_solicitation(target: &str, unicast: bool) -> Vec<u8> {
    let (src, target) = (v6("::"), v6(target));
    let group = solicited_node(target);
    let o = group.octets();
    let (dst, dst_mac) = if unicast {
        (target, DIRECTOR_MAC)
    } else {
        (group, [0x33, 0x33, o[12], o[13], o[14], o[15]])
    };
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr: target, lladdr: None });
    let mut buf = vec![0u8; repr.buffer_len()];
    let checksums = ChecksumCapabilities::default();
    repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf), &checksums);
    let packet = ipv6_packet(src, dst, IpProtocol::Icmpv6, 255, &buf);
    ethernet(dst_mac, ROUTER_MAC, EthernetProtocol::Ipv6, &packet)
}

#[test]
fn neighbor_discovery_keeps_its_own_rules() {
    let mut d = director();
    // Another node's duplicate address detection for the VIP is not answered, and is no
    // malformed message either: a multicast frame that is not for us to answer.
    let mut dad = unspecified_solicitation(VIP6, false);
    assert_eq!(d.process(t(1), &mut dad), Verdict::Drop(DropReason::NotUnicast));
    assert_eq!(d.counters().drops(DropReason::MalformedNeighborDiscovery), 0);
    // From the unspecified address to the VIP itself: Neighbor Discovery's own validation
    // judges it (malformed), not the martian rule.
    let mut unicast = unspecified_solicitation(VIP6, true);
    assert_eq!(
        d.process(t(1), &mut unicast),
        Verdict::Drop(DropReason::MalformedNeighborDiscovery)
    );
    // A solicitation for the VIP from a neighbour is still answered.
    let mut ns = neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6);
    assert_eq!(d.process(t(1), &mut ns), Verdict::Reply);
    for name in MARTIAN_NAMES {
        assert_eq!(drops(&d, name), 0, "{name}");
    }
}

#[test]
fn a_spoofed_icmp_error_about_a_live_connection_is_not_relayed() {
    let mut d = director();
    let mut syn = tcp4("192.0.2.7", 40000, VIP, 80, SYN);
    assert!(matches!(d.process(t(1), &mut syn), Verdict::Forward { .. }));
    // "Fragmentation needed" about the real server's reply to the client: it quotes a
    // live connection, so from a router it is relayed...
    let reply = tcp4_payload(VIP, 80, "192.0.2.7", 40000, ACK, &[0; 1400]);
    let quoted = &datagram(&reply)[..28];
    let mut from_router = icmp4_error("192.0.2.1", VIP, 3, 4, quoted);
    assert!(matches!(d.process(t(2), &mut from_router), Verdict::Forward { .. }));
    assert_eq!(d.counters().icmp_relayed(), 1);
    // ...but not from the VIP itself, another VIP, or a loopback address.
    for (src, name) in [
        (VIP, "martian-source-vip"),
        (OTHER_VIP, "martian-source-vip"),
        ("127.0.0.1", "martian-source-loopback"),
    ] {
        let mut spoofed = icmp4_error(src, VIP, 3, 4, quoted);
        assert_eq!(d.process(t(2), &mut spoofed).drop_name(), Some(name), "{src}");
    }
    assert_eq!(d.counters().icmp_relayed(), 1);
    // IPv6: packet too big about a reply of a live connection, from the VIP.
    let mut syn6 = tcp6("2001:db8::7", 40000, VIP6, 80, SYN);
    assert!(matches!(d.process(t(3), &mut syn6), Verdict::Forward { .. }));
    let reply6 = tcp6(VIP6, 80, "2001:db8::7", 40000, ACK);
    let mut spoofed6 = icmp6_error(VIP6, VIP6, 2, 0, datagram(&reply6));
    assert_eq!(d.process(t(3), &mut spoofed6).drop_name(), Some("martian-source-vip"));
    let mut from_router6 = icmp6_error("2001:db8::1", VIP6, 2, 0, datagram(&reply6));
    assert!(matches!(d.process(t(3), &mut from_router6), Verdict::Forward { .. }));
    assert_eq!(d.counters().icmp_relayed(), 2);
}

#[test]
fn a_martian_never_gets_an_entry_and_a_later_packet_finds_none() {
    for (src, name) in SOURCES_V4 {
        let mut d = director();
        let mut syn = tcp4(src, 40000, VIP, 80, SYN);
        assert_eq!(d.process(t(1), &mut syn).drop_name(), Some(name), "{src}");
        assert!(d.connections().next().is_none(), "{src}");
        // The rest of the handshake is dropped as martian too, not passed for want of a
        // connection.
        let mut ack = tcp4(src, 40000, VIP, 80, ACK);
        assert_eq!(d.process(t(1), &mut ack).drop_name(), Some(name), "{src}");
        assert_eq!(d.counters().passes(PassReason::NoConnection), 0, "{src}");
    }
}

#[test]
fn a_connection_whose_client_becomes_a_vip_is_dropped_from_then_on() {
    // A client's connection, then a service on the client's address: from that moment the
    // address is the director's own, and packets from it to a VIP are martians even though
    // their connection entry exists. Removing the service makes it a client again.
    let client = "192.0.2.50";
    for burst in [false, true] {
        let mut d = director();
        let decide = |d: &mut Director, mut frame: Vec<u8>| {
            if burst {
                let mut verdicts = [Verdict::Reply];
                d.process_burst(t(2), &mut [&mut frame[..]], &mut verdicts);
                verdicts[0]
            } else {
                d.process(t(2), &mut frame)
            }
        };
        let syn = tcp4(client, 1234, VIP, 80, SYN);
        assert!(matches!(decide(&mut d, syn), Verdict::Forward { .. }));
        let service = ServiceConfig::new(Protocol::Udp, ip(client), 53, SchedulerKind::Rr);
        let s = d.add_service(service).unwrap();
        let ack = tcp4(client, 1234, VIP, 80, ACK);
        assert_eq!(decide(&mut d, ack.clone()).drop_name(), Some("martian-source-vip"));
        assert_eq!(drops(&d, "martian-source-vip"), 1);
        assert_eq!(d.connection_count(), 1, "the entry stays; its packets are dropped");
        d.remove_service(s).unwrap();
        assert!(matches!(decide(&mut d, ack), Verdict::Forward { .. }), "burst: {burst}");
    }
}

#[test]
fn the_vip_filter_follows_services_added_and_removed() {
    // Many VIPs in one subnet, then all but one removed: a removed VIP is a client again, a
    // remaining one is still its own martian.
    let mut d = director();
    let mut ids = Vec::new();
    for i in 1..=200u8 {
        let vip = ip(&format!("198.51.100.{i}"));
        ids.push(d.add_service(ServiceConfig::new(Protocol::Tcp, vip, 80, SchedulerKind::Rr)));
    }
    for i in 1..=200u8 {
        let mut frame = tcp4(&format!("198.51.100.{i}"), 1, VIP, 80, SYN);
        assert_eq!(d.process(t(1), &mut frame).drop_name(), Some("martian-source-vip"));
    }
    for id in ids.into_iter().skip(1) {
        d.remove_service(id.unwrap()).unwrap();
    }
    let mut kept = tcp4("198.51.100.1", 1, VIP, 80, SYN);
    assert_eq!(d.process(t(1), &mut kept).drop_name(), Some("martian-source-vip"));
    for i in 2..=200u8 {
        let mut frame = tcp4(&format!("198.51.100.{i}"), 1, VIP, 80, SYN);
        assert!(matches!(d.process(t(1), &mut frame), Verdict::Forward { .. }), "{i}");
    }
}
