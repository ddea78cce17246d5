//! Fragments to a VIP: each later fragment follows its datagram's first fragment to the
//! same real server, one frame at a time, never reassembled.

mod support;

use dr_core::{Config, Director, DropReason, Instant, PassReason, Verdict};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

fn t(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

/// UDP 53 on both VIPs, two real servers each.
fn setup(configure: impl FnOnce(&mut Config)) -> Director {
    dual_stack(dr_core::Protocol::Udp, 53, configure)
}

#[test]
fn every_fragment_follows_the_first() {
    for v6 in [false, true] {
        let mut d = setup(|_| {});
        let payload: Vec<u8> = (0..=255).cycle().take(3000).collect();
        // Two datagrams from the same client port: same connection, same server.
        let make = |ident| {
            if v6 {
                udp6_fragments("2001:db8:1::7", 5353, VIP6, 53, &payload, ident, 1232)
            } else {
                udp4_fragments("192.0.2.7", 5353, VIP, 53, &payload, ident as u16, 1480)
            }
        };
        let mut reals = Vec::new();
        for ident in [1, 2] {
            let fragments = make(ident);
            assert_eq!(fragments.len(), 3);
            for original in fragments {
                let mut frame = original.clone();
                let verdict = d.process(t(10), &mut frame);
                let Verdict::Forward { real } = verdict else { panic!("{verdict:?}") };
                assert!(diff(&frame, &original).iter().all(|&i| i < 12), "only the MACs change");
                reals.push(real);
            }
        }
        assert!(reals.iter().all(|r| *r == reals[0]), "{reals:?}");
        // One packet per datagram, and its reassembled length in bytes: the fragments'
        // data adds up to the UDP datagram, plus one IP header.
        let stats = *d.real(reals[0]).unwrap().stats();
        let ip_header = if v6 { 40 } else { 20 };
        assert_eq!(stats.inpkts, 2, "v6 {v6}");
        assert_eq!(stats.inbytes, 2 * (ip_header + 8 + 3000), "v6 {v6}");
        assert_eq!(d.counters().fragments_forwarded(), 4);
        assert_eq!(d.connection_count(), 1);
    }
}

#[test]
fn fragments_of_different_datagrams_are_kept_apart() {
    let mut d = setup(|_| {});
    let a = udp4_fragments("192.0.2.7", 1000, VIP, 53, &[1; 2000], 77, 1480);
    let b = udp4_fragments("192.0.2.7", 1001, VIP, 53, &[2; 2000], 78, 1480);
    let ra = d.process(t(0), &mut a[0].clone());
    let rb = d.process(t(0), &mut b[0].clone());
    assert_ne!(ra, rb, "rr gave the two connections different servers");
    // Later fragments interleaved, each after its own first.
    assert_eq!(d.process(t(1), &mut b[1].clone()), rb);
    assert_eq!(d.process(t(1), &mut a[1].clone()), ra);
}

#[test]
fn a_later_fragment_before_its_first_is_dropped() {
    let mut d = setup(|_| {});
    let mut fragments = udp4_fragments("192.0.2.7", 5353, VIP, 53, &[9; 2000], 5, 1480);
    let mut later = fragments.pop().unwrap();
    assert_eq!(d.process(t(0), &mut later), Verdict::Drop(DropReason::FragmentUnmatched));
    // Once the first arrives, the retransmitted rest goes through.
    assert!(matches!(d.process(t(1), &mut fragments[0]), Verdict::Forward { .. }));
    let mut later = udp4_fragments("192.0.2.7", 5353, VIP, 53, &[9; 2000], 5, 1480).pop().unwrap();
    assert!(matches!(d.process(t(2), &mut later), Verdict::Forward { .. }));
}

#[test]
fn tracking_ends_after_the_timeout() {
    let mut d = setup(|c| c.fragment_timeout = dr_core::Duration::from_secs(2));
    let fragments = udp4_fragments("192.0.2.7", 5353, VIP, 53, &[9; 4000], 6, 1480);
    assert!(matches!(d.process(t(0), &mut fragments[0].clone()), Verdict::Forward { .. }));
    // Each fragment keeps the datagram for another 2 s.
    assert!(matches!(d.process(t(1_999), &mut fragments[1].clone()), Verdict::Forward { .. }));
    assert_eq!(
        d.process(t(3_999), &mut fragments[2].clone()),
        Verdict::Drop(DropReason::FragmentUnmatched)
    );
}

#[test]
fn fragments_whose_first_went_to_the_host_follow_it() {
    let mut d = setup(|_| {});
    // No service on port 54: the first fragment is passed, and so are the others.
    let fragments = udp4_fragments("192.0.2.7", 5353, VIP, 54, &[9; 2000], 8, 1480);
    assert_eq!(d.process(t(0), &mut fragments[0].clone()), Verdict::Pass(PassReason::NoService));
    assert_eq!(d.process(t(0), &mut fragments[1].clone()), Verdict::Pass(PassReason::Fragment));
    // Fragments to other hosts are not the director's business at all.
    let other = udp4_fragments("192.0.2.7", 5353, "10.0.0.2", 53, &[9; 2000], 8, 1480);
    assert_eq!(d.process(t(0), &mut other[1].clone()), Verdict::Pass(PassReason::NotVip));
}

#[test]
fn tracking_off_drops_every_later_fragment() {
    let mut d = setup(|c| c.fragment_capacity = 0);
    let fragments = udp4_fragments("192.0.2.7", 5353, VIP, 53, &[9; 2000], 5, 1480);
    assert!(matches!(d.process(t(0), &mut fragments[0].clone()), Verdict::Forward { .. }));
    assert_eq!(
        d.process(t(0), &mut fragments[1].clone()),
        Verdict::Drop(DropReason::FragmentUnmatched)
    );
}

#[test]
fn fragment_settings_are_validated() {
    let mut config = Config::new(mac(DIRECTOR_MAC), [0; 4]);
    config.fragment_capacity = Config::MAX_FRAGMENT_CAPACITY + 1;
    let err = Director::new(config.clone()).unwrap_err();
    assert!(err.to_string().contains("fragment_capacity"), "{err}");
    config.fragment_capacity = 16;
    config.fragment_timeout = dr_core::Duration::ZERO;
    let err = Director::new(config).unwrap_err();
    assert!(err.to_string().contains("fragment_timeout"), "{err}");
}
