//! Property tests: the classifier and the director against arbitrary and truncated input,
//! the forwarding rewrite, and the table's bounds and counts.

mod support;

use dr_core::wire::classify;
use dr_core::{
    Config, Director, Instant, Protocol, RealConfig, SchedulerKind, ServiceConfig, Verdict,
};
use proptest::prelude::*;
use smoltcp::wire::Ipv4Packet;
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

fn balancer(capacity: usize, decrement_ttl: bool) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [5, 6, 7, 8]);
    config.capacity = capacity;
    config.decrement_ttl = decrement_ttl;
    let mut d = Director::new(config).unwrap();
    for (proto, vip, port) in [
        (Protocol::Tcp, VIP, 80),
        (Protocol::Udp, VIP, 53),
        (Protocol::Tcp, VIP6, 80),
        (Protocol::Udp, VIP6, 53),
    ] {
        let s = d.add_service(ServiceConfig::new(proto, ip(vip), port, SchedulerKind::Rr)).unwrap();
        for (i, m) in REAL_MACS.iter().enumerate().take(3) {
            let addr = if vip == VIP {
                format!("10.0.0.{}", 11 + i)
            } else {
                format!("2001:db8::{}", 11 + i)
            };
            d.add_real(s, RealConfig::new(ip(&addr)).with_mac(mac(*m))).unwrap();
        }
    }
    d
}

/// A valid client frame of any kind the director forwards.
fn client_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        any::<[u8; 4]>(),
        any::<u16>(),
        prop::sample::select(vec![SYN, SYN | ACK, ACK, ACK | PSH, FIN | ACK, RST]),
        prop::collection::vec(any::<u8>(), 0..64),
        0u8..3,
    )
        .prop_map(|(kind, client, port, flags, payload, vlans)| {
            // 1 to 126 first: an ordinary unicast client, never a martian source.
            let c4 = format!("{}.{}.{}.{}", client[0] % 126 + 1, client[1], client[2], client[3]);
            let c6 = format!(
                "2001:db8:1::{:x}:{:x}",
                client[0],
                u16::from_be_bytes([client[2], client[3]])
            );
            let frame = match kind {
                0 => tcp4_payload(&c4, port, VIP, 80, flags, &payload),
                1 => udp4(&c4, port, VIP, 53, &payload),
                2 => tcp6(&c6, port, VIP6, 80, flags),
                _ => udp6(&c6, port, VIP6, 53, &payload),
            };
            let tags: &[(u16, u16)] = match vlans {
                0 => &[],
                1 => &[(0x8100, 7)],
                _ => &[(0x88a8, 3), (0x8100, 7)],
            };
            with_vlans(&frame, tags)
        })
}

/// A frame of any kind the director handles, valid or not.
fn any_valid_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        client_frame(),
        Just(arp_request(VIP)),
        Just(arp_request("10.0.0.2")),
        Just(neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6)),
        Just(icmp4_echo("192.0.2.1", VIP)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classifier_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        let _ = classify(&bytes);
    }

    #[test]
    fn classifier_never_panics_on_any_truncation(frame in any_valid_frame()) {
        let whole = classify(&frame);
        prop_assert!(whole.is_ok());
        for len in 0..frame.len() {
            let _ = classify(&frame[..len]);
        }
    }

    #[test]
    fn director_never_panics_on_arbitrary_or_damaged_frames(
        frame in any_valid_frame(),
        garbage in prop::collection::vec(any::<u8>(), 0..200),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let mut d = balancer(64, true);
        let _ = d.process(Instant::from_secs(1), &mut garbage.clone());
        for len in 0..=frame.len() {
            let _ = d.process(Instant::from_secs(1), &mut frame[..len].to_vec());
        }
        let mut damaged = frame.clone();
        for (at, xor) in flips {
            let n = damaged.len();
            damaged[at % n] ^= xor;
        }
        let _ = d.process(Instant::from_secs(2), &mut damaged);
    }

    #[test]
    fn a_forwarded_frame_differs_only_in_its_macs(frame in client_frame()) {
        let mut d = balancer(1024, false);
        let mut out = frame.clone();
        // Establish first if the frame is not a connection opener.
        let verdict = d.process(Instant::from_secs(1), &mut out);
        if let Verdict::Forward { real } = verdict {
            let changed = diff(&frame, &out);
            prop_assert!(changed.iter().all(|&i| i < 12), "changed {:?}", changed);
            prop_assert_eq!(&out[6..12], &DIRECTOR_MAC);
            prop_assert_eq!(Some(mac(out[0..6].try_into().unwrap())), d.real(real).unwrap().mac());
        } else {
            prop_assert_eq!(out, frame);
        }
    }

    #[test]
    fn ttl_mode_changes_only_macs_ttl_and_checksum(frame in client_frame()) {
        let mut d = balancer(1024, true);
        let mut out = frame.clone();
        if let Verdict::Forward { .. } = d.process(Instant::from_secs(1), &mut out) {
            let packet = classify(&frame).unwrap();
            let l3 = packet.l3_offset;
            let ipv4 = frame[l3] >> 4 == 4;
            let allowed: &[usize] = if ipv4 { &[8, 10, 11] } else { &[7] };
            for i in diff(&frame, &out) {
                prop_assert!(i < 12 || allowed.contains(&(i - l3)), "byte {} changed", i);
            }
            if ipv4 {
                let ip = Ipv4Packet::new_checked(&out[l3..]).unwrap();
                prop_assert!(ip.verify_checksum());
                prop_assert_eq!(ip.hop_limit(), 63);
            } else {
                prop_assert_eq!(out[l3 + 7], 63);
            }
        }
    }

    #[test]
    fn the_table_holds_its_capacity_and_counts_match_live_entries(
        ops in prop::collection::vec((client_frame(), 0u64..200_000), 1..300),
    ) {
        let capacity = 32;
        let mut d = balancer(capacity, false);
        let mut now = 0u64;
        for (mut frame, advance_ms) in ops {
            now += advance_ms;
            let at = Instant::from_millis(now);
            if d.poll_timeout().is_some_and(|due| due <= at) {
                d.handle_timeout(at);
            }
            let _ = d.process(at, &mut frame);
            prop_assert!(d.connection_count() <= capacity);
            // Every real's active + inactive equals the live entries bound to it.
            let (_, services): (Vec<_>, Vec<_>) = d.services().unzip();
            for service in services {
                for &real in service.reals() {
                    let live = d.connections().filter(|c| c.real == real).count() as u32;
                    let r = d.real(real).unwrap();
                    prop_assert_eq!(r.active_conns() + r.inactive_conns(), live);
                    let active = d.connections().filter(|c| c.real == real && c.state.is_active()).count() as u32;
                    prop_assert_eq!(r.active_conns(), active);
                }
            }
        }
    }
}
