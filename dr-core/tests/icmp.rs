//! ICMP to a VIP (spec §3.4): errors relayed to the connection's real server, unchanged but
//! for the MACs; echo requests answered; everything else to the host.

mod support;

use dr_core::{Config, Director, DropReason, Instant, PassReason, Verdict};
use smoltcp::wire::{
    EthernetFrame, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, Ipv4Packet, Ipv6Packet,
};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";
const CLIENT: &str = "192.0.2.7";
const CLIENT6: &str = "2001:db8:1::7";
const ROUTER: &str = "192.0.2.1";
const ROUTER6: &str = "2001:db8:1::1";

fn t(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

/// A director with web services on VIP and VIP6, two servers each, and one open
/// connection on each from CLIENT:40000 / CLIENT6:40000.
fn setup(configure: impl FnOnce(&mut Config)) -> Director {
    let mut d = dual_stack(dr_core::Protocol::Tcp, 80, configure);
    assert!(d.process(t(0), &mut tcp4(CLIENT, 40000, VIP, 80, SYN)).is_transmit());
    assert!(d.process(t(0), &mut tcp6(CLIENT6, 40000, VIP6, 80, SYN)).is_transmit());
    d
}

/// The reply the real server sent to the client, from the VIP: what a router quotes.
fn reply4() -> Vec<u8> {
    datagram(&tcp4_payload(VIP, 80, CLIENT, 40000, ACK | PSH, &[0; 64]))[..28].to_vec()
}

fn reply6() -> Vec<u8> {
    datagram(&tcp6(VIP6, 80, CLIENT6, 40000, ACK))[..48].to_vec()
}

fn real_mac_of(d: &Director, verdict: Verdict) -> [u8; 6] {
    let Verdict::Forward { real } = verdict else { panic!("expected a forward: {verdict:?}") };
    d.real(real).unwrap().mac().unwrap().0
}

#[test]
fn ipv4_errors_go_to_the_connections_real_server_unchanged() {
    for (icmp_type, code) in [(3, 4), (3, 1), (4, 0), (11, 0)] {
        let mut d = setup(|_| {});
        let conn = d.connections().find(|c| c.key.client.is_ipv4()).unwrap();
        let before = d.real(conn.real).unwrap().stats().inpkts;
        let original = icmp4_error(ROUTER, VIP, icmp_type, code, &reply4());
        let mut frame = original.clone();
        let verdict = d.process(t(5), &mut frame);
        assert_eq!(verdict, Verdict::Forward { real: conn.real }, "type {icmp_type} code {code}");
        assert_eq!(&frame[0..6], &real_mac_of(&d, verdict));
        assert_eq!(&frame[6..12], &DIRECTOR_MAC);
        assert!(diff(&frame, &original).iter().all(|&i| i < 12), "only the MACs change");
        // Counted in the statistics; the connection's state and timer are left alone.
        let stats = d.real(conn.real).unwrap().stats();
        assert_eq!(stats.inpkts, before + 1);
        let after = d.connections().find(|c| c.key.client.is_ipv4()).unwrap();
        assert_eq!((after.state, after.expires), (conn.state, conn.expires));
        assert_eq!(d.counters().icmp_relayed(), 1);
    }
}

#[test]
fn ipv6_errors_go_to_the_connections_real_server_unchanged() {
    for (icmp_type, code) in [(2, 0), (1, 4), (3, 0)] {
        let mut d = setup(|_| {});
        let conn = d.connections().find(|c| !c.key.client.is_ipv4()).unwrap();
        let original = icmp6_error(ROUTER6, VIP6, icmp_type, code, &reply6());
        let mut frame = original.clone();
        assert_eq!(d.process(t(5), &mut frame), Verdict::Forward { real: conn.real });
        assert!(diff(&frame, &original).iter().all(|&i| i < 12));
    }
}

#[test]
fn errors_without_a_connection_go_to_the_host() {
    let mut d = setup(|_| {});
    let other_client = datagram(&tcp4(VIP, 80, "192.0.2.99", 40000, ACK))[..28].to_vec();
    let cases = [
        icmp4_error(ROUTER, VIP, 3, 4, &other_client),
        // A quote cut short of the ports.
        icmp4_error(ROUTER, VIP, 3, 4, &reply4()[..22]),
        // A quote of another protocol.
        icmp4_error(ROUTER, VIP, 11, 0, &datagram(&icmp4_echo(VIP, CLIENT))[..28]),
        // Not an error: a timestamp request.
        icmp4_error(ROUTER, VIP, 13, 0, &[0; 12]),
    ];
    for mut frame in cases {
        assert_eq!(d.process(t(5), &mut frame), Verdict::Pass(PassReason::Icmp));
    }
    let mut elsewhere = icmp4_error(ROUTER, "10.0.0.2", 3, 4, &reply4());
    assert_eq!(d.process(t(5), &mut elsewhere), Verdict::Pass(PassReason::NotVip));
    assert_eq!(d.counters().icmp_relayed(), 0);
}

#[test]
fn bad_checksums_are_dropped() {
    let mut d = setup(|_| {});
    let mut frame = icmp4_error(ROUTER, VIP, 3, 4, &reply4());
    let last = frame.len() - 1;
    frame[last] ^= 1;
    assert_eq!(d.process(t(5), &mut frame), Verdict::Drop(DropReason::IcmpChecksum));
    let mut frame = icmp6_error(ROUTER6, VIP6, 2, 0, &reply6());
    frame[14 + 40 + 2] ^= 1;
    assert_eq!(d.process(t(5), &mut frame), Verdict::Drop(DropReason::IcmpChecksum));
}

#[test]
fn echo_requests_to_a_vip_are_answered() {
    let mut d = setup(|c| c.vlans.insert(7).unwrap());
    let mut frame = with_vlans(&icmp4_echo(CLIENT, VIP), &[(0x8100, 7)]);
    assert_eq!(d.process(t(5), &mut frame), Verdict::Reply);
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    assert_eq!(eth.dst_addr().0, ROUTER_MAC);
    assert_eq!(eth.src_addr().0, DIRECTOR_MAC);
    assert_eq!(&frame[12..16], &[0x81, 0x00, 0x00, 0x07], "the VLAN tag is kept");
    let ip = Ipv4Packet::new_checked(&frame[18..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (v4(VIP), v4(CLIENT), 64));
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    let repr = Icmpv4Repr::parse(&icmp, &Default::default()).unwrap();
    assert_eq!(repr, Icmpv4Repr::EchoReply { ident: 1, seq_no: 1, data: b"ping" });

    let mut frame = icmp6_echo(CLIENT6, VIP6);
    assert_eq!(d.process(t(5), &mut frame), Verdict::Reply);
    let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (v6(VIP6), v6(CLIENT6), 64));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    let repr = Icmpv6Repr::parse(&v6(VIP6), &v6(CLIENT6), &icmp, &Default::default()).unwrap();
    assert_eq!(repr, Icmpv6Repr::EchoReply { ident: 1, seq_no: 1, data: b"ping" });
    assert_eq!(d.counters().echo_replies(), 2);
    assert_eq!(d.counters().replies(), 2);
}

#[test]
fn echo_requests_pass_when_answering_is_off() {
    let mut d = setup(|c| c.icmp_echo = false);
    assert_eq!(d.process(t(5), &mut icmp4_echo(CLIENT, VIP)), Verdict::Pass(PassReason::Icmp));
    assert_eq!(d.process(t(5), &mut icmp6_echo(CLIENT6, VIP6)), Verdict::Pass(PassReason::Icmp));
    // Echo requests to other hosts are never ours.
    let mut d = setup(|_| {});
    let mut elsewhere = icmp4_echo(CLIENT, "10.0.0.2");
    assert_eq!(d.process(t(5), &mut elsewhere), Verdict::Pass(PassReason::NotVip));
}

#[test]
fn relayed_errors_follow_decrement_ttl() {
    let mut d = setup(|c| c.decrement_ttl = true);
    let mut frame = icmp4_error(ROUTER, VIP, 3, 4, &reply4());
    assert!(matches!(d.process(t(5), &mut frame), Verdict::Forward { .. }));
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert_eq!(ip.hop_limit(), 63);
    assert!(ip.verify_checksum());
}
