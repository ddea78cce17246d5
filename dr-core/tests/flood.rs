//! Floods of spoofed flows against a full connection table, one pattern at a time and
//! mixed: whatever a spoofed source sends per flow (a SYN; a SYN then a reset; a SYN then a
//! forged ACK; one flow's SYN over and over), established connections that carried data
//! keep working, and new legitimate connections (SYN, ACK, data) get every segment to one
//! real server.
//!
//! The table holds 256 entries, a quarter of them established connections that carried
//! data; each flood sends 2,560 spoofed flows (ten times the capacity) with 128 legitimate
//! connections among them. The shares are printed (`cargo test --test flood --
//! --nocapture`) and reported in BENCHMARKS.md.

mod support;

use dr_core::{
    Config, Director, DropReason, Instant, Protocol, RealConfig, RealId, SchedulerKind,
    ServiceConfig, Verdict,
};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use support::*;

const VIP: &str = "10.0.0.100";
const CAPACITY: usize = 256;
const ESTABLISHED: u16 = 64;
const SPOOFED_FLOWS: usize = CAPACITY * 10;
const LEGIT: usize = 128;

/// What each spoofed flow sends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pattern {
    /// A SYN.
    Syn,
    /// A SYN, then a reset: the entry stays in SYN_RECV (the RST row keeps it there).
    SynRst,
    /// A SYN, then a forged ACK: ESTABLISHED, without a handshake the director can see.
    SynAck,
    /// A SYN, and one other flow's SYN sent again, three times.
    RepeatedSyn,
    /// Each flow one of the four, at random.
    Mix,
}

/// A small deterministic generator (xorshift64*), so every flood is the same every run.
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
    legit_ok: usize,
    established_ok: usize,
    evicted: u64,
}

/// One step of a legitimate connection, due after `at` spoofed flows.
struct Step {
    at: usize,
    conn: usize,
    segment: usize,
}

struct Flood {
    d: Director,
    now: u64,
}

impl Flood {
    fn send(&mut self, mut frame: Vec<u8>) -> Verdict {
        self.now += 100_000; // 10 000 frames per second
        self.d.process(Instant::from_nanos(self.now), &mut frame)
    }
}

/// The segments of legitimate connection `n`: SYN, the handshake's ACK, a request, and
/// more data long after.
fn legit_segment(n: usize, segment: usize) -> Vec<u8> {
    let port = 20_000 + n as u16;
    match segment {
        0 => tcp4("203.0.113.5", port, VIP, 80, SYN),
        1 => tcp4("203.0.113.5", port, VIP, 80, ACK),
        2 => tcp4_payload("203.0.113.5", port, VIP, 80, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n"),
        _ => tcp4_payload("203.0.113.5", port, VIP, 80, ACK | PSH, b"more"),
    }
}

/// Spoofed flows after which each segment of a legitimate connection comes: its ACK a
/// round trip (`rtt` flows) after its SYN, its request at once, more data 300 flows later.
fn schedule(legit_every: usize, rtt: usize) -> VecDeque<Step> {
    let mut steps: Vec<Step> = (0..LEGIT)
        .flat_map(|conn| {
            let start = conn * legit_every;
            [start, start + rtt, start + rtt + 1, start + rtt + 301]
                .into_iter()
                .enumerate()
                .map(move |(segment, at)| Step { at, conn, segment })
        })
        .collect();
    steps.sort_by_key(|s| (s.at, s.segment));
    steps.into()
}

fn flood(pattern: Pattern, rtt: usize) -> Outcome {
    let mut config = Config::new(mac(DIRECTOR_MAC), [7, 7, 7, 7]);
    config.capacity = CAPACITY;
    let mut d = Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Wlc)).unwrap();
    for (i, real_mac) in REAL_MACS.iter().take(3).enumerate() {
        let addr = ip(&format!("10.0.0.{}", 11 + i));
        d.add_real(svc, RealConfig::new(addr).with_mac(mac(*real_mac))).unwrap();
    }
    let mut f = Flood { d, now: 1_000_000_000 };

    // Established connections that carried data.
    let mut owners: Vec<RealId> = Vec::new();
    for port in 0..ESTABLISHED {
        let Verdict::Forward { real } = f.send(tcp4("198.51.100.1", port, VIP, 80, SYN)) else {
            panic!("setup SYN refused");
        };
        assert_eq!(f.send(tcp4("198.51.100.1", port, VIP, 80, ACK)), Verdict::Forward { real });
        let request = tcp4_payload("198.51.100.1", port, VIP, 80, ACK | PSH, b"GET");
        assert_eq!(f.send(request), Verdict::Forward { real });
        owners.push(real);
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let legit_every = SPOOFED_FLOWS / LEGIT;
    let mut steps = schedule(legit_every, rtt);
    let mut legit: Vec<Option<RealId>> = vec![None; LEGIT];
    let mut legit_failed = [false; LEGIT];
    // The second segment of each spoofed flow comes after the SYNs of the next few flows.
    let mut later: VecDeque<(usize, Vec<u8>)> = VecDeque::new();
    let mut established_ok = 0;
    let mut established_checks = 0;
    for n in 0..SPOOFED_FLOWS + 400 {
        if n < SPOOFED_FLOWS {
            let r = rng.next();
            // Unicast sources outside 0/8, 127/8 and 224/3, which are martians (dropped).
            let first =
                [1 + (r >> 56) as u8 % 126, 128 + (r >> 56) as u8 % 96][(r >> 55) as usize & 1];
            let src =
                Ipv4Addr::from(u32::from(first) << 24 | (r >> 32) as u32 & 0x00ff_ffff).to_string();
            let port = r as u16;
            let this = match pattern {
                Pattern::Mix => {
                    [Pattern::Syn, Pattern::SynRst, Pattern::SynAck, Pattern::RepeatedSyn]
                        [(r >> 20) as usize % 4]
                }
                other => other,
            };
            let _ = f.send(tcp4(&src, port, VIP, 80, SYN));
            match this {
                Pattern::SynRst => later.push_back((n + 8, tcp4(&src, port, VIP, 80, RST))),
                Pattern::SynAck => later.push_back((n + 8, tcp4(&src, port, VIP, 80, ACK))),
                Pattern::RepeatedSyn => {
                    for _ in 0..3 {
                        let _ = f.send(tcp4("192.0.2.200", 7_000, VIP, 80, SYN));
                    }
                }
                Pattern::Syn | Pattern::Mix => {}
            }
            while later.front().is_some_and(|(at, _)| *at <= n) {
                let _ = f.send(later.pop_front().unwrap().1);
            }
            assert!(f.d.connection_count() <= CAPACITY);
        }
        while steps.front().is_some_and(|s| s.at <= n) {
            let Step { conn, segment, .. } = steps.pop_front().unwrap();
            let verdict = f.send(legit_segment(conn, segment));
            match (verdict, legit[conn]) {
                (Verdict::Forward { real }, None) if segment == 0 => legit[conn] = Some(real),
                (Verdict::Forward { real }, Some(first)) if real == first => {}
                _ => legit_failed[conn] = true,
            }
        }
        // Every so often, every established connection still goes where it went.
        if n % 512 == 0 {
            for (port, &real) in owners.iter().enumerate() {
                let data = tcp4_payload("198.51.100.1", port as u16, VIP, 80, ACK, b"x");
                established_checks += 1;
                established_ok += usize::from(f.send(data) == Verdict::Forward { real });
            }
        }
    }
    let d = &f.d;
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
    assert_eq!(established_ok, established_checks, "{pattern:?}: an established connection lost");
    let legit_ok = (0..LEGIT).filter(|&i| legit[i].is_some() && !legit_failed[i]).count();
    Outcome {
        legit_ok,
        established_ok: established_ok / owners.len(),
        evicted: d.counters().conns_evicted(),
    }
}

const PATTERNS: [Pattern; 5] =
    [Pattern::Syn, Pattern::SynRst, Pattern::SynAck, Pattern::RepeatedSyn, Pattern::Mix];

#[test]
fn every_pattern_keeps_established_connections_and_lets_clients_in() {
    for pattern in PATTERNS {
        // A round trip of 20 spoofed flows: the flood is 20 times as fast as new clients.
        let o = flood(pattern, 20);
        println!(
            "{pattern:?}: {SPOOFED_FLOWS} spoofed flows on {CAPACITY} entries, {ESTABLISHED} \
             established with data: legitimate {}/{LEGIT} = {:.1}%, established kept \
             {}/{} checks each, {} evicted",
            o.legit_ok,
            100.0 * o.legit_ok as f64 / LEGIT as f64,
            o.established_ok,
            o.established_ok,
            o.evicted
        );
        assert!(o.evicted > 0, "{pattern:?}: the table never filled");
        assert_eq!(o.legit_ok, LEGIT, "{pattern:?}");
    }
}

#[test]
fn share_of_legitimate_connections_by_round_trip() {
    // Evictable entries give way oldest first, so a new connection survives the flood as
    // long as fewer spoofed flows than there are unproven entries (256 less the proven
    // ones) arrive between its SYN and its first data; then it loses, as it would against
    // any full table, and its client retries (the few that still succeed opened as the
    // flood ended).
    for pattern in PATTERNS {
        let mut shares = Vec::new();
        for rtt in [1, 20, 60, 100, 200, 400] {
            let o = flood(pattern, rtt);
            println!("{pattern:?}: round trip {rtt:>3} spoofed flows: {}/{LEGIT}", o.legit_ok);
            shares.push(o.legit_ok);
        }
        assert_eq!(shares[..2], [LEGIT; 2], "{pattern:?}: {shares:?}");
        // A repeated SYN whose entry gave way makes a new one: up to two entries per flow.
        assert!(shares[2] * 10 >= LEGIT * 9, "{pattern:?}: {shares:?}");
        // Only the connections that open as the flood ends get through.
        assert!(*shares.last().unwrap() < LEGIT / 10, "{pattern:?}: {shares:?}");
        assert!(shares.windows(2).all(|w| w[0] >= w[1]), "{pattern:?}: {shares:?}");
    }
}

#[test]
fn a_table_of_proven_connections_refuses_new_ones() {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 1, 1, 1]);
    config.capacity = 8;
    let mut d = Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let t = Instant::from_secs(1);
    for port in 0..8 {
        for mut frame in [
            tcp4("198.51.100.1", port, VIP, 80, SYN),
            tcp4("198.51.100.1", port, VIP, 80, ACK),
            tcp4_payload("198.51.100.1", port, VIP, 80, ACK, b"x"),
        ] {
            assert!(d.process(t, &mut frame).is_transmit());
        }
    }
    // A reset, a FIN: still proven, still theirs.
    let _ = d.process(t, &mut tcp4("198.51.100.1", 0, VIP, 80, RST));
    let _ = d.process(t, &mut tcp4("198.51.100.1", 1, VIP, 80, FIN | ACK));
    let verdict = d.process(t, &mut tcp4("192.0.2.1", 1, VIP, 80, SYN));
    assert_eq!(verdict, Verdict::Drop(DropReason::ConnTableFull));
    assert_eq!(d.counters().conns_evicted(), 0);
    assert_eq!(d.connection_count(), 8);
}

#[test]
fn a_full_table_never_evicts_the_template_a_new_connection_needs() {
    // Capacity 2. The client's template outlives its connection (persistence 300 s, the
    // connection SYN_RECV for 60 s) and becomes the oldest evictable entry; a datagram of
    // another service fills the table. The client's next SYN finds its template: room must
    // be made by evicting the datagram's entry, not the template the SYN is tied to.
    let mut config = Config::new(mac(DIRECTOR_MAC), [3, 3, 3, 3]);
    config.capacity = 2;
    let mut d = Director::new(config).unwrap();
    let web = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(dr_core::Persistence::new(300)),
        )
        .unwrap();
    let dns =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    for svc in [web, dns] {
        for (i, m) in REAL_MACS.iter().take(2).enumerate() {
            let addr = ip(&format!("10.0.0.{}", 11 + i));
            d.add_real(svc, RealConfig::new(addr).with_mac(mac(*m))).unwrap();
        }
    }
    let s = Instant::from_secs;
    let Verdict::Forward { real } = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN))
    else {
        panic!("first SYN refused")
    };
    d.handle_timeout(s(62)); // the connection is gone, the template stays
    assert_eq!((d.connection_count(), d.template_count()), (1, 1));
    assert!(d.process(s(63), &mut udp4("192.0.2.9", 5353, VIP, 53, b"q")).is_transmit());
    assert_eq!(d.connection_count(), 2, "full");
    let verdict = d.process(s(64), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN));
    assert_eq!(verdict, Verdict::Forward { real }, "the template's server");
    assert_eq!((d.connection_count(), d.template_count()), (2, 1));
    assert_eq!(d.counters().conns_evicted(), 1, "the datagram's entry gave way");
    let template =
        d.connections().find(|c| matches!(c.kind, dr_core::ConnKind::Template { .. })).unwrap();
    assert!(matches!(template.kind, dr_core::ConnKind::Template { controlled: 1, .. }));
    // And everything expires in the end, the counts back to zero.
    d.handle_timeout(s(10_000));
    assert_eq!(d.connection_count(), 0);
    for (_, r) in d.reals() {
        assert_eq!((r.active_conns(), r.inactive_conns(), r.persistent_conns()), (0, 0, 0));
    }
}
