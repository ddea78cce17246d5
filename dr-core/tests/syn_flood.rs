//! A SYN flood against a full table: established connections keep working, the flood's
//! half-open entries give way oldest first, and legitimate clients still get through when
//! their ACK comes back before the flood has cycled the table.

mod support;

use dr_core::{
    Config, DropReason, Instant, PassReason, Protocol, RealConfig, SchedulerKind, ServiceConfig,
    Verdict,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use support::*;

const VIP: &str = "10.0.0.100";
const CAPACITY: usize = 2_000;
const ESTABLISHED: u16 = 1_000;

/// A small deterministic generator (xorshift64*), so the flood is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Outcome {
    legit_tried: usize,
    legit_ok: usize,
}

/// Fills half the table with established connections, then sends 10x the capacity in SYNs
/// from random sources; every `legit_every` flood SYNs a legitimate client opens a
/// connection and its ACK arrives `rtt` flood SYNs later.
fn flood(legit_every: usize, rtt: usize) -> Outcome {
    let mut config = Config::new(mac(DIRECTOR_MAC), [7, 7, 7, 7]);
    config.capacity = CAPACITY;
    let mut d = dr_core::Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Wlc)).unwrap();
    for (i, real_mac) in REAL_MACS.iter().take(3).enumerate() {
        let addr = ip(&format!("10.0.0.{}", 11 + i));
        d.add_real(svc, RealConfig::new(addr).with_mac(mac(*real_mac))).unwrap();
    }
    let mut now = 1_000_000u64;
    let mut tick = || {
        now += 10_000; // 100 000 frames per second
        Instant::from_nanos(now)
    };
    let mut owners = HashMap::new();
    for port in 0..ESTABLISHED {
        let Verdict::Forward { real } =
            d.process(tick(), &mut tcp4("198.51.100.1", port, VIP, 80, SYN))
        else {
            panic!("setup SYN refused");
        };
        assert!(matches!(
            d.process(tick(), &mut tcp4("198.51.100.1", port, VIP, 80, ACK)),
            Verdict::Forward { .. }
        ));
        owners.insert(port, real);
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pending: Vec<(usize, u16)> = Vec::new();
    let (mut legit_tried, mut legit_ok) = (0, 0);
    let mut legit_port = 0u16;
    for n in 0..CAPACITY * 10 {
        let r = rng.next();
        // 1 to 63 first: spoofed but ordinary unicast sources (martians are dropped first).
        let src = Ipv4Addr::from((r >> 32) as u32 & 0x3fff_ffff | 0x0100_0000).to_string();
        let _ = d.process(tick(), &mut tcp4(&src, r as u16, VIP, 80, SYN));
        assert!(d.connection_count() <= CAPACITY);
        if n % legit_every == 0 {
            legit_port += 1;
            let verdict = d.process(tick(), &mut tcp4("203.0.113.5", legit_port, VIP, 80, SYN));
            assert!(
                matches!(verdict, Verdict::Forward { .. }),
                "a SYN is never refused: {verdict:?}"
            );
            pending.push((n + rtt, legit_port));
        }
        while let Some(&(due, port)) = pending.first() {
            if due > n {
                break;
            }
            pending.remove(0);
            // Counted when the ACK comes back while the flood is still on.
            legit_tried += 1;
            match d.process(tick(), &mut tcp4("203.0.113.5", port, VIP, 80, ACK)) {
                Verdict::Forward { .. } => legit_ok += 1,
                Verdict::Pass(PassReason::NoConnection) => {}
                other => panic!("unexpected verdict for a legitimate ACK: {other:?}"),
            }
        }
        // Every so often, every established connection still goes where it went.
        if n % (CAPACITY * 2) == 0 {
            for (&port, &real) in &owners {
                let v =
                    d.process(tick(), &mut tcp4_payload("198.51.100.1", port, VIP, 80, ACK, b"x"));
                assert_eq!(v, Verdict::Forward { real }, "established connection {port} lost");
            }
        }
    }
    for (&port, &real) in &owners {
        let v = d.process(tick(), &mut tcp4("198.51.100.1", port, VIP, 80, ACK));
        assert_eq!(v, Verdict::Forward { real }, "established connection {port} lost");
    }
    let c = d.counters();
    assert_eq!(c.drops(DropReason::ConnTableFull), 0, "half-open entries always gave way");
    assert!(c.conns_evicted() > 0);
    // The counts still match the table.
    let counted: u32 = d
        .service(svc)
        .unwrap()
        .reals()
        .iter()
        .map(|&r| d.real(r).unwrap())
        .map(|r| r.active_conns() + r.inactive_conns())
        .sum();
    assert_eq!(counted as usize, d.connection_count());
    Outcome { legit_tried, legit_ok }
}

#[test]
fn established_connections_survive_and_quick_handshakes_complete() {
    // Half the table is established, and the 400 legitimate connections that complete stay
    // established too: the flood's entries cycle what is left, 1000 entries shrinking to
    // 600. A handshake whose ACK comes back within 500 flood SYNs always completes.
    for rtt in [1, 100, 500] {
        let o = flood(50, rtt);
        assert_eq!(o.legit_ok, o.legit_tried, "rtt {rtt} flood SYNs");
    }
}

#[test]
fn slow_handshakes_lose_to_the_flood() {
    // An ACK that comes back after the flood has replaced every half-open entry finds
    // nothing: the client retries, as it would against any full table.
    let o = flood(20, 2 * CAPACITY);
    assert_eq!(o.legit_ok, 0);
}

#[test]
fn share_of_legitimate_connections_by_round_trip() {
    // The share of legitimate new connections that complete, by how many flood SYNs arrive
    // during their round trip (printed with cargo test -- --nocapture): all while the flood
    // has not cycled the half-open entries, then falling, then none.
    let mut shares = Vec::new();
    for rtt in [10, 500, 900, 1000, 1100, 1500] {
        let o = flood(50, rtt);
        let share = o.legit_ok as f64 / o.legit_tried as f64;
        println!(
            "flood 10x capacity ({} SYNs), {} established, rtt {rtt:>4} flood SYNs: {}/{} = {:.1}%",
            CAPACITY * 10,
            ESTABLISHED,
            o.legit_ok,
            o.legit_tried,
            100.0 * share
        );
        shares.push(share);
    }
    assert_eq!(shares[0], 1.0);
    assert_eq!(shares[1], 1.0);
    assert!(shares[2] > 0.0 && shares[2] < 1.0, "{shares:?}");
    assert_eq!(*shares.last().unwrap(), 0.0);
    assert!(shares.windows(2).all(|w| w[0] >= w[1]), "a longer round trip never helps: {shares:?}");
}
