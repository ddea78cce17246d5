//! A real server's MAC is learned only from the answer to the director's own request:
//! an ARP reply to the director from the server's address, its sender hardware address
//! the frame's source, or a solicited Neighbor Advertisement whose target link-layer
//! address is the frame's source (RFC 4861 §7.2.5 for the Override flag), while the
//! request is outstanding. Whatever else claims a real server's address changes nothing
//! and is counted; the frame's verdict stays what it was.

mod support;

use dr_core::{
    Config, Director, DropReason, Instant, MacAddr, PassReason, Protocol, RealConfig, RealId,
    SchedulerKind, ServiceConfig, Verdict,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpRepr, Icmpv6Packet, Icmpv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";
const REAL: &str = "10.0.0.11";
const REAL6: &str = "2001:db8::11";
/// Where the director's solicitations come from: the EUI-64 link-local address of its MAC.
const DIRECTOR_LL: &str = "fe80::ff:fe00:1";
/// A host on the LAN that wants the real servers' traffic.
const ATTACKER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x66];
/// The real server's MAC, and the one it moves to.
const GOOD: [u8; 6] = REAL_MACS[0];
const MOVED: [u8; 6] = REAL_MACS[2];

fn ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// TCP 80 on both VIPs, each with one real server whose MAC is to be learned. The
/// default retry (1 s) and refresh (60 s) intervals.
fn director() -> (Director, RealId, RealId) {
    let mut config = Config::new(mac(DIRECTOR_MAC), [2, 7, 1, 8]);
    config.capacity = 64;
    let mut d = Director::new(config).unwrap();
    let web = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr));
    let real = d.add_real(web.unwrap(), RealConfig::new(ip(REAL))).unwrap();
    let web6 = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr));
    let real6 = d.add_real(web6.unwrap(), RealConfig::new(ip(REAL6))).unwrap();
    (d, real, real6)
}

/// Every request the director has due at `now`: the addresses it asks for.
fn ask(d: &mut Director, now: Instant) -> Vec<String> {
    let requests: Vec<_> = std::iter::from_fn(|| d.poll_neighbour_request(now)).collect();
    requests
        .iter()
        .map(|frame| match frame[12..14] {
            [0x08, 0x06] => match parse_arp(frame).1 {
                ArpRepr::EthernetIpv4 { target_protocol_addr, .. } => {
                    target_protocol_addr.to_string()
                }
                other => panic!("{other:?}"),
            },
            _ => match parse_ndisc(frame).2 {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) => {
                    target_addr.to_string()
                }
                other => panic!("{other:?}"),
            },
        })
        .collect()
}

fn mac_of(d: &Director, real: RealId) -> Option<[u8; 6]> {
    d.real(real).unwrap().mac().map(|m| m.0)
}

/// An ARP reply from `sender_mac` saying `sender_ip` is at it, to the director.
fn arp_reply(sender_mac: [u8; 6], sender_ip: &str) -> Vec<u8> {
    arp(ArpOperation::Reply, DIRECTOR_MAC, sender_mac, sender_ip, DIRECTOR_MAC, "0.0.0.0")
}

/// A Neighbor Advertisement for `target`, from `eth_src` to `eth_dst` and from `target` to
/// the director's link-local address, with `flags` and a target link-layer option `tlla`.
fn advertisement(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    target: &str,
    flags: NdiscNeighborFlags,
    tlla: Option<[u8; 6]>,
) -> Vec<u8> {
    let (src, dst) = (v6(target), v6(DIRECTOR_LL));
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr: v6(target),
        lladdr: tlla.map(|m| RawHardwareAddress::from_bytes(&m)),
    });
    let mut buf = vec![0u8; repr.buffer_len()];
    let checksums = ChecksumCapabilities::default();
    repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf), &checksums);
    let packet = ipv6_packet(src, dst, IpProtocol::Icmpv6, 255, &buf);
    ethernet(eth_dst, eth_src, EthernetProtocol::Ipv6, &packet)
}

const SOLICITED_OVERRIDE: NdiscNeighborFlags =
    NdiscNeighborFlags::SOLICITED.union(NdiscNeighborFlags::OVERRIDE);

/// `process` at `now`, and the counts of learned and rejected messages after it.
fn hear(d: &mut Director, now: Instant, mut frame: Vec<u8>) -> (Verdict, u64, u64) {
    let verdict = d.process(now, &mut frame);
    (verdict, d.counters().neighbours_learned(), d.counters().neighbours_rejected())
}

#[test]
fn a_spoofed_reply_before_any_request_is_refused() {
    let (mut d, real, _) = director();
    // The attacker answers a question nobody asked: the real server is at its MAC.
    let verdict = hear(&mut d, ms(500), arp_reply(ATTACKER, REAL));
    assert_eq!(verdict, (Verdict::Pass(PassReason::Arp), 0, 1));
    assert_eq!(mac_of(&d, real), None);
    let mut syn = tcp4("192.0.2.7", 1, VIP, 80, SYN);
    assert_eq!(d.process(ms(600), &mut syn), Verdict::Drop(DropReason::NoRealAvailable));
    // Now the director asks, and the real server's answer is taken.
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    assert_eq!(hear(&mut d, ms(1_001), arp_reply(GOOD, REAL)).1, 1);
    assert_eq!(mac_of(&d, real), Some(GOOD));
    let mut syn = tcp4("192.0.2.7", 2, VIP, 80, SYN);
    assert_eq!(d.process(ms(1_002), &mut syn), Verdict::Forward { real });
    assert_eq!(&syn[0..6], &GOOD);
}

#[test]
fn an_answer_counts_only_within_the_retry_interval_of_its_request() {
    let (mut d, real, _) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    // 1 s later the request has lapsed (it is due again, not yet sent).
    assert_eq!(hear(&mut d, ms(2_000), arp_reply(GOOD, REAL)).1, 0);
    assert_eq!(mac_of(&d, real), None);
    assert_eq!(d.counters().neighbours_rejected(), 1);
    // Asked again: the same answer is taken.
    assert_eq!(ask(&mut d, ms(2_000)), [REAL, REAL6]);
    assert_eq!(hear(&mut d, ms(2_999), arp_reply(GOOD, REAL)).1, 1);
    assert_eq!(mac_of(&d, real), Some(GOOD));
}

#[test]
fn a_reply_must_come_from_its_sender_to_the_director() {
    let (mut d, real, _) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = arp_reply(GOOD, REAL);
        f(&mut frame);
        frame
    };
    let forged = [
        // From the attacker's NIC, claiming the real server's MAC.
        ("another Ethernet source", with(&|f| f[6..12].copy_from_slice(&ATTACKER))),
        // From the real server's NIC (or one spoofing it), naming another sender MAC.
        ("another sender MAC", with(&|f| f[14 + 8..14 + 14].copy_from_slice(&ATTACKER))),
        // Broadcast, or to another station, rather than to the director.
        ("broadcast", with(&|f| f[0..6].fill(0xff))),
        ("to another station", with(&|f| f[0..6].copy_from_slice(&REAL_MACS[3]))),
        // Addressed to the director at the Ethernet layer, but to nobody in ARP.
        ("another target MAC", with(&|f| f[14 + 18..14 + 24].fill(0))),
        // A request, not a reply.
        ("a request", with(&|f| f[14 + 7] = 1)),
    ];
    let verdicts = [
        Verdict::Pass(PassReason::Arp),
        Verdict::Pass(PassReason::Arp),
        Verdict::Drop(DropReason::NotUnicast),
        Verdict::Drop(DropReason::OtherHost),
        Verdict::Pass(PassReason::Arp),
        Verdict::Pass(PassReason::Arp),
    ];
    for (n, ((what, frame), verdict)) in forged.into_iter().zip(verdicts).enumerate() {
        assert_eq!(hear(&mut d, ms(1_010), frame), (verdict, 0, n as u64 + 1), "{what}");
        assert_eq!(mac_of(&d, real), None, "{what}");
    }
    // None of them closed the request: the real answer still teaches the MAC.
    assert_eq!(hear(&mut d, ms(1_020), arp_reply(GOOD, REAL)).1, 1);
    assert_eq!(mac_of(&d, real), Some(GOOD));
}

#[test]
fn a_reply_for_an_address_not_asked_for_is_refused() {
    let (mut d, real, _) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    // A real server added after the requests went out has none outstanding.
    let web =
        d.find_service(&dr_core::ServiceKey { protocol: Protocol::Tcp, vip: ip(VIP), port: 80 });
    let late = d.add_real(web.unwrap(), RealConfig::new(ip("10.0.0.12"))).unwrap();
    assert_eq!(hear(&mut d, ms(1_010), arp_reply(REAL_MACS[1], "10.0.0.12")).2, 1);
    assert_eq!(mac_of(&d, late), None);
    // And an address that is no real server's is nobody's business: not counted.
    assert_eq!(hear(&mut d, ms(1_010), arp_reply(ATTACKER, "10.0.0.77")).2, 1);
    assert_eq!(hear(&mut d, ms(1_020), arp_reply(GOOD, REAL)).1, 1);
    assert_eq!(mac_of(&d, real), Some(GOOD));
}

#[test]
fn the_first_answer_closes_the_request() {
    let (mut d, real, _) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    assert_eq!(hear(&mut d, ms(1_001), arp_reply(GOOD, REAL)).1, 1);
    // A second answer to the same request, with another MAC, is refused...
    assert_eq!(
        hear(&mut d, ms(1_002), arp_reply(ATTACKER, REAL)),
        (Verdict::Pass(PassReason::Arp), 1, 1)
    );
    assert_eq!(mac_of(&d, real), Some(GOOD));
    // ...and the same answer again changes nothing and is not counted.
    assert_eq!(
        hear(&mut d, ms(1_003), arp_reply(GOOD, REAL)),
        (Verdict::Pass(PassReason::Arp), 1, 1)
    );
}

#[test]
fn gratuitous_arp_cannot_move_a_learned_server_but_a_refresh_follows_a_real_move() {
    let (mut d, real, _) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    assert_eq!(hear(&mut d, ms(1_001), arp_reply(GOOD, REAL)).1, 1);
    let mut syn = tcp4("192.0.2.7", 1, VIP, 80, SYN);
    assert_eq!(d.process(ms(1_100), &mut syn), Verdict::Forward { real });

    // Gratuitous ARP, as a request and as a reply (RFC 5227 §3), and a unicast reply to
    // the director with no request outstanding.
    let announce_request = arp(ArpOperation::Request, [0xff; 6], ATTACKER, REAL, [0; 6], REAL);
    let announce_reply = arp(ArpOperation::Reply, [0xff; 6], ATTACKER, REAL, [0xff; 6], REAL);
    // The real server's own address in an ARP request for a VIP: the request is answered,
    // its sender is not believed.
    let for_vip = arp(ArpOperation::Request, [0xff; 6], ATTACKER, REAL, [0; 6], VIP);
    let attempts = [
        (announce_request, Verdict::Drop(DropReason::NotUnicast)),
        (announce_reply, Verdict::Drop(DropReason::NotUnicast)),
        (arp_reply(ATTACKER, REAL), Verdict::Pass(PassReason::Arp)),
        (for_vip, Verdict::Reply),
    ];
    for (n, (frame, verdict)) in attempts.into_iter().enumerate() {
        assert_eq!(hear(&mut d, ms(2_000), frame), (verdict, 1, n as u64 + 1), "attempt {n}");
        assert_eq!(mac_of(&d, real), Some(GOOD), "attempt {n}");
    }
    let mut ack = tcp4("192.0.2.7", 1, VIP, 80, ACK);
    assert_eq!(d.process(ms(2_100), &mut ack), Verdict::Forward { real });
    assert_eq!(&ack[0..6], &GOOD, "the connection still goes to the real server");

    // The server really moves: the next refresh (60 s after it was confirmed) asks, and
    // its answer from the new NIC is taken.
    assert_eq!(ask(&mut d, ms(61_000)), [REAL6], "the IPv6 server is asked for every second");
    assert_eq!(ask(&mut d, ms(61_001)), [REAL], "the refresh");
    assert_eq!(hear(&mut d, ms(61_002), arp_reply(MOVED, REAL)).1, 2);
    assert_eq!(mac_of(&d, real), Some(MOVED));
    let mut ack = tcp4("192.0.2.7", 1, VIP, 80, ACK);
    assert_eq!(d.process(ms(61_003), &mut ack), Verdict::Forward { real });
    assert_eq!(&ack[0..6], &MOVED);
}

#[test]
fn an_advertisement_must_be_solicited_and_name_its_source() {
    let (mut d, _, real6) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    let pass = Verdict::Pass(PassReason::NotVip);
    let forged = [
        // Unsolicited (an announcement, O set), to the director.
        (
            "no solicited flag",
            advertisement(
                ATTACKER,
                DIRECTOR_MAC,
                REAL6,
                NdiscNeighborFlags::OVERRIDE,
                Some(ATTACKER),
            ),
            pass,
        ),
        // Solicited, but the link-layer address is not the frame's source.
        (
            "target link-layer address of another station",
            advertisement(ATTACKER, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, Some(GOOD)),
            pass,
        ),
        (
            "target link-layer address of another station, the other way",
            advertisement(GOOD, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, Some(ATTACKER)),
            pass,
        ),
        // Solicited, right option, but sent to another station.
        (
            "to another station",
            advertisement(ATTACKER, REAL_MACS[3], REAL6, SOLICITED_OVERRIDE, Some(ATTACKER)),
            Verdict::Drop(DropReason::OtherHost),
        ),
    ];
    for (n, (what, frame, verdict)) in forged.into_iter().enumerate() {
        assert_eq!(hear(&mut d, ms(1_010), frame), (verdict, 0, n as u64 + 1), "{what}");
        assert_eq!(mac_of(&d, real6), None, "{what}");
    }
    // Without a link-layer address an advertisement tells no MAC: not taken, not counted.
    let bare = advertisement(GOOD, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, None);
    assert_eq!(hear(&mut d, ms(1_010), bare), (pass, 0, 4));
    assert_eq!(mac_of(&d, real6), None);
    // The real answer.
    let answer = advertisement(GOOD, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, Some(GOOD));
    assert_eq!(hear(&mut d, ms(1_020), answer), (pass, 1, 4));
    assert_eq!(mac_of(&d, real6), Some(GOOD));
    let mut syn = tcp6("2001:db8:1::7", 1, VIP6, 80, SYN);
    assert_eq!(d.process(ms(1_030), &mut syn), Verdict::Forward { real: real6 });
}

#[test]
fn a_solicitation_source_option_is_not_learned_from() {
    let (mut d, _, real6) = director();
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    // The real server's address soliciting the VIP with the attacker's MAC: answered, not
    // believed, even with a request outstanding.
    let ns = neighbor_solicitation(ATTACKER, REAL6, VIP6);
    assert_eq!(hear(&mut d, ms(1_010), ns), (Verdict::Reply, 0, 1));
    assert_eq!(mac_of(&d, real6), None);
}

#[test]
fn override_clear_teaches_an_unknown_mac_but_does_not_replace_a_known_one() {
    let (mut d, _, real6) = director();
    let solicited = NdiscNeighborFlags::SOLICITED;
    assert_eq!(ask(&mut d, ms(1_000)), [REAL, REAL6]);
    // O clear, no MAC known yet: learned (RFC 4861 §7.2.5, an INCOMPLETE entry).
    let first = advertisement(GOOD, DIRECTOR_MAC, REAL6, solicited, Some(GOOD));
    assert_eq!(hear(&mut d, ms(1_001), first).1, 1);
    assert_eq!(mac_of(&d, real6), Some(GOOD));
    // At the refresh, O clear with another MAC: the known one stays, and the request is
    // still open...
    assert!(ask(&mut d, ms(61_001)).contains(&REAL6.to_string()));
    let proxy = advertisement(MOVED, DIRECTOR_MAC, REAL6, solicited, Some(MOVED));
    let pass = Verdict::Pass(PassReason::NotVip);
    assert_eq!(hear(&mut d, ms(61_002), proxy.clone()), (pass, 1, 1));
    assert_eq!(mac_of(&d, real6), Some(GOOD));
    // ...so the owner's answer with O set still replaces it.
    let owner = advertisement(MOVED, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, Some(MOVED));
    assert_eq!(hear(&mut d, ms(61_003), owner).1, 2);
    assert_eq!(mac_of(&d, real6), Some(MOVED));
    // At the next refresh, O clear with the MAC already known confirms it and closes the
    // request: an O-set answer after it is refused.
    assert!(ask(&mut d, ms(121_003)).contains(&REAL6.to_string()));
    assert_eq!(hear(&mut d, ms(121_004), proxy), (pass, 2, 1), "no change, nothing refused");
    let late = advertisement(GOOD, DIRECTOR_MAC, REAL6, SOLICITED_OVERRIDE, Some(GOOD));
    assert_eq!(hear(&mut d, ms(121_005), late), (pass, 2, 2));
    assert_eq!(mac_of(&d, real6), Some(MOVED));
    // Confirmed at 121.004 s: the next refresh is due 60 s after that.
    assert!(!ask(&mut d, ms(181_003)).contains(&REAL6.to_string()));
    assert!(ask(&mut d, ms(181_004)).contains(&REAL6.to_string()));
}

#[test]
fn a_configured_mac_is_never_replaced_and_claims_against_it_are_counted() {
    let mut config = Config::new(mac(DIRECTOR_MAC), [2, 7, 1, 8]);
    config.capacity = 8;
    let mut d = Director::new(config).unwrap();
    let web = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr));
    let real = d.add_real(web.unwrap(), RealConfig::new(ip(REAL)).with_mac(mac(GOOD))).unwrap();
    assert!(ask(&mut d, ms(1_000)).is_empty(), "a configured MAC is never asked for");
    assert_eq!(hear(&mut d, ms(1_001), arp_reply(ATTACKER, REAL)).2, 1);
    assert_eq!(hear(&mut d, ms(1_002), arp_reply(GOOD, REAL)).2, 1, "the same MAC: not counted");
    assert_eq!(mac_of(&d, real), Some(GOOD));
    assert_eq!(d.counters().neighbours_learned(), 0);
}

#[test]
fn learn_neighbour_needs_no_request() {
    // The embedder's word (a MAC another worker learned) is taken as it was.
    let (mut d, real, real6) = director();
    d.learn_neighbour(ip(REAL), MacAddr(GOOD));
    d.learn_neighbour(ip(REAL6), MacAddr(REAL_MACS[1]));
    assert_eq!((mac_of(&d, real), mac_of(&d, real6)), (Some(GOOD), Some(REAL_MACS[1])));
    assert_eq!(d.counters().neighbours_learned(), 2);
    assert!(ask(&mut d, ms(1_000)).is_empty(), "both resolved");
    let mut syn = tcp4("192.0.2.7", 1, VIP, 80, SYN);
    assert_eq!(d.process(ms(1_001), &mut syn), Verdict::Forward { real });
}

#[test]
fn the_burst_path_learns_and_refuses_alike() {
    let (mut one, real, _) = director();
    let (mut burst, _, _) = director();
    let frames = || {
        vec![
            arp_reply(ATTACKER, REAL),
            arp_reply(GOOD, REAL),
            arp_reply(ATTACKER, REAL),
            tcp4("192.0.2.7", 1, VIP, 80, SYN),
        ]
    };
    assert_eq!(ask(&mut one, ms(1_000)).len(), 2);
    assert_eq!(ask(&mut burst, ms(1_000)).len(), 2);
    let mut a = frames();
    let verdicts_one: Vec<Verdict> = a.iter_mut().map(|f| one.process(ms(1_001), f)).collect();
    let mut b = frames();
    let mut verdicts_burst = vec![Verdict::Reply; b.len()];
    burst.process_burst(ms(1_001), &mut b, &mut verdicts_burst);
    assert_eq!(verdicts_one, verdicts_burst);
    assert_eq!(verdicts_one[3], Verdict::Forward { real });
    for d in [&one, &burst] {
        assert_eq!((d.counters().neighbours_learned(), d.counters().neighbours_rejected()), (1, 1));
    }
}
