//! Replays through the packet path for dh, fo, ovf, lblc and lblcr, each against picks
//! worked out by hand from the kernel's `ip_vs_<name>.c` (written down beside each step),
//! never from dr's output; and twos, random, against its distribution.

mod support;

use dr_core::{
    Config, Director, DropReason, Instant, Protocol, RealConfig, RealEdit, RealId, SchedulerKind,
    ServiceConfig, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";

struct Replay {
    d: Director,
    /// By the last byte of their address (10.0.0.11 is `ids[&11]`).
    ids: std::collections::HashMap<u8, RealId>,
    port: u16,
}

impl Replay {
    /// `reals` (last address byte, weight, upper threshold) added in this order, so the
    /// kernel's list is the reverse.
    fn new(
        kind: SchedulerKind,
        reals: &[(u8, u32, u32)],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(mac(DIRECTOR_MAC), [4, 3, 2, 1]);
        config.capacity = 4096;
        configure(&mut config);
        let mut d = Director::new(config).unwrap();
        let s = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, kind)).unwrap();
        let mut ids = std::collections::HashMap::new();
        for &(last, weight, upper) in reals {
            let real = RealConfig::new(ip(&format!("10.0.0.{last}")))
                .with_weight(weight)
                .with_thresholds(upper, 0)
                .with_mac(mac([2, 0, 0, 0, 0, last]));
            ids.insert(last, d.add_real(s, real).unwrap());
        }
        Self { d, ids, port: 1000 }
    }

    /// A SYN from a new port of `client` at `secs`: the last address byte of the server it
    /// went to, or 0 when no server was available.
    fn syn(&mut self, client: &str, secs: u64) -> u8 {
        self.port += 1;
        let verdict =
            self.d.process(Instant::from_secs(secs), &mut tcp4(client, self.port, VIP, 80, SYN));
        match verdict {
            Verdict::Forward { real } => {
                let addr = self.d.real(real).unwrap().addr();
                let std::net::IpAddr::V4(v4) = addr else { unreachable!() };
                v4.octets()[3]
            }
            Verdict::Drop(DropReason::NoRealAvailable) => 0,
            other => panic!("{other:?}"),
        }
    }

    /// `n` SYNs from distinct clients at `secs`.
    fn syns(&mut self, n: usize, secs: u64) -> Vec<u8> {
        (0..n).map(|i| self.syn(&format!("192.0.2.{}", i % 200 + 1), secs)).collect()
    }

    fn weight(&mut self, last: u8, weight: u32) {
        let id = self.ids[&last];
        let edit = RealEdit::of(self.d.real(id).unwrap()).with_weight(weight);
        self.d.edit_real(id, edit).unwrap();
    }

    fn active(&self, last: u8) -> u32 {
        self.d.real(self.ids[&last]).unwrap().active_conns()
    }
}

#[test]
fn dh_sends_the_whole_vip_to_one_server() {
    // Added .11, .12, .13: the list is .13, .12, .11; buckets .13 .12 .11 .13 ...;
    // 10.0.0.100 is bucket hash_32(0x0a000064, 8) = 248, and 248 mod 3 = 2: .11.
    let mut r = Replay::new(SchedulerKind::Dh, &[(11, 1, 0), (12, 5, 0), (13, 1, 0)], |_| {});
    assert_eq!(r.syns(50, 1), vec![11; 50]);
    // Weights do not matter, and an edit does not rebuild the table.
    r.weight(12, 100);
    assert_eq!(r.syns(5, 2), vec![11; 5]);
    // .11 quiesced: no server, no fallback.
    r.weight(11, 0);
    assert_eq!(r.syns(5, 3), vec![0; 5]);
    // .12 removed: the list is .13, .11, and 248 mod 2 = 0: .13.
    r.d.remove_real(r.ids[&12]).unwrap();
    assert_eq!(r.syns(5, 4), vec![13; 5]);
}

#[test]
fn fo_fails_over_by_weight() {
    // The list is .13 (5), .12 (5, overloaded at 3 connections), .11 (2): the first of the
    // highest weight, .13.
    let mut r = Replay::new(SchedulerKind::Fo, &[(11, 2, 0), (12, 5, 3), (13, 5, 0)], |_| {});
    assert_eq!(r.syns(4, 1), vec![13; 4]);
    // .13 quiesced: .12 until its third connection sets its overload flag, then .11.
    r.weight(13, 0);
    assert_eq!(r.syns(5, 2), [12, 12, 12, 11, 11]);
    // .12 raised to 9: no longer the best... .13 is still 0, .12 (9) is, overload or not?
    // Editing the upper threshold up clears the flag; the weight alone does not.
    r.weight(12, 9);
    assert_eq!(r.syns(2, 3), [11, 11], ".12 still overloaded");
    let id = r.ids[&12];
    let edit = RealEdit::of(r.d.real(id).unwrap()).with_thresholds(10, 0);
    r.d.edit_real(id, edit).unwrap();
    assert_eq!(r.syns(2, 4), [12, 12]);
}

#[test]
fn ovf_overflows_by_active_connections() {
    // The list is .11 (3), .12 (1). A SYN's connection is active (SYN_RECV): .11 takes
    // connections while it has 0 to 3 active, .12 while it has 0 or 1, then nobody.
    let mut r = Replay::new(SchedulerKind::Ovf, &[(12, 1, 0), (11, 3, 0)], |_| {});
    assert_eq!(r.syns(7, 1), [11, 11, 11, 11, 12, 12, 0]);
    assert_eq!((r.active(11), r.active(12)), (4, 2));
    // A .11 connection established then reset is no longer active (a RST in SYN_RECV would
    // leave it there, as the input-only state table does): .11 takes the next one.
    let _ = r.d.process(Instant::from_secs(2), &mut tcp4("192.0.2.1", 1001, VIP, 80, ACK));
    let _ = r.d.process(Instant::from_secs(2), &mut tcp4("192.0.2.1", 1001, VIP, 80, RST));
    assert_eq!(r.active(11), 3);
    assert_eq!(r.syns(2, 2), [11, 0]);
}

impl Replay {
    /// `n` connections from distinct clients at `secs`, each established (SYN then ACK), so
    /// they stay active for 900 s: where each went, as [`Replay::syn`] gives it.
    fn open(&mut self, n: usize, secs: u64) -> Vec<u8> {
        (0..n)
            .map(|i| {
                let client = format!("198.51.100.{}", i % 200 + 1);
                let real = self.syn(&client, secs);
                let ack = &mut tcp4(&client, self.port, VIP, 80, ACK);
                let _ = self.d.process(Instant::from_secs(secs), ack);
                real
            })
            .collect()
    }
}

/// .11 (1), .12 (1), .13 (2) in list order: added .13, .12, .11.
const LOCALITY: [(u8, u32, u32); 3] = [(13, 2, 0), (12, 1, 0), (11, 1, 0)];

#[test]
fn lblc_keeps_the_vip_on_one_server_until_it_is_overloaded() {
    // No entry: wlc gives .11. .11 with 1 active: kept. With 2 (> 1) while .12 is under
    // half its weight: wlc gives .12; the same again for .12, then .13 (0 of 2). .13 with
    // 1, 2, 3 active: kept (above its weight from 3, but nobody is under half).
    let mut r = Replay::new(SchedulerKind::Lblc, &LOCALITY, |_| {});
    assert_eq!(r.open(10, 1), [11, 11, 12, 12, 13, 13, 13, 13, 13, 13]);
    assert_eq!((r.active(11), r.active(12), r.active(13)), (2, 2, 6));
}

#[test]
fn lblc_ignores_the_upper_threshold_of_its_cached_server() {
    // .13 overloaded at 5 connections: the cache keeps sending it more, as the kernel's
    // lblc, which tests weight and availability but not IP_VS_DEST_F_OVERLOAD.
    let mut r = Replay::new(SchedulerKind::Lblc, &[(13, 2, 5), (12, 1, 0), (11, 1, 0)], |_| {});
    assert_eq!(r.open(9, 1), [11, 11, 12, 12, 13, 13, 13, 13, 13]);
    assert!(r.d.real(r.ids[&13]).unwrap().is_overloaded());
    assert_eq!(r.open(2, 2), [13, 13]);
    assert_eq!(r.active(13), 7);
}

#[test]
fn lblc_entries_expire_at_the_half_hourly_full_check() {
    // lblc_expiration 3600 s; the service starts at 0, the entry (.13) is last used at 1 s;
    // the connections expire at 901 s. Full checks at 1800 s and 3600 s keep it (idle less
    // than 3600 s), the one at 5400 s drops it: at 5399 s the cache still gives .13, at
    // 5400 s wlc over empty servers gives the first, .11.
    for (at, want) in [(5399, 13), (5400, 11)] {
        let mut r = Replay::new(SchedulerKind::Lblc, &LOCALITY, |c| {
            c.lblc_expiration = std::time::Duration::from_secs(3600);
        });
        assert_eq!(r.open(5, 1), [11, 11, 12, 12, 13]);
        r.d.handle_timeout(Instant::from_secs(2000));
        assert_eq!(r.active(13), 0, "the connections have expired");
        assert_eq!(r.open(1, at), [want], "at {at} s");
    }
}

#[test]
fn lblcr_replicates_and_sheds_the_most_loaded() {
    // The set grows {.11}, {.12, .11}, {.13, .12, .11}; its least loaded per weight is
    // picked while not overloaded: `.11 .11 .12 .12 .13 .13 .13 .13 .13 .12 .11`.
    let mut r = Replay::new(SchedulerKind::Lblcr, &LOCALITY, |_| {});
    assert_eq!(r.open(11, 1), [11, 11, 12, 12, 13, 13, 13, 13, 13, 12, 11]);
    // lblcr_expiration 60 s: 61 s after .13 joined, the set sheds its most loaded member
    // (.13, 1024/2 against 512/1 twice: the first of the highest), after .13 was found:
    // .13, then .12 and .11 from what is left.
    let mut r = Replay::new(SchedulerKind::Lblcr, &LOCALITY, |c| {
        c.lblcr_expiration = std::time::Duration::from_secs(60);
    });
    assert_eq!(r.open(8, 1), [11, 11, 12, 12, 13, 13, 13, 13]);
    assert_eq!(r.open(1, 62), [13]);
    assert_eq!(r.open(1, 63), [12]);
    assert_eq!(r.open(1, 64), [11]);
}

#[test]
fn twos_draws_from_the_seed_with_the_kernel_distribution() {
    // Not the kernel's picks (it draws from prandom_u32), but its distribution: weights 1
    // and 2 with no connections give each half the picks (draws 0 ..= 3: 0 and 1 pick the
    // first server), and equal overheads keep the first draw.
    let picks = |seed: [u64; 4]| {
        let mut config = Config::new(mac(DIRECTOR_MAC), seed);
        config.capacity = 64;
        let mut d = Director::new(config).unwrap();
        let s = d
            .add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Twos))
            .unwrap();
        let two =
            RealConfig::new(ip("10.0.0.12")).with_weight(2).with_mac(mac([2, 0, 0, 0, 0, 12]));
        let one =
            RealConfig::new(ip("10.0.0.11")).with_weight(1).with_mac(mac([2, 0, 0, 0, 0, 11]));
        d.add_real(s, two).unwrap();
        let first = d.add_real(s, one).unwrap(); // the head of the list
        let key = dr_core::FlowKey {
            protocol: Protocol::Tcp,
            client: ip("192.0.2.1"),
            client_port: 1,
            vip: ip(VIP),
            vip_port: 80,
        };
        (0..40_000).map(|_| d.schedule(s, &key) == Some(first)).collect::<Vec<bool>>()
    };
    let a = picks([1, 2, 3, 4]);
    assert_eq!(a, picks([1, 2, 3, 4]), "the same seed draws alike");
    assert_ne!(a, picks([1, 2, 3, 5]), "another seed draws otherwise");
    let share = a.iter().filter(|&&f| f).count() as f64 / a.len() as f64;
    // 5 standard deviations of 40 000 fair draws: 0.0125.
    assert!((share - 0.5).abs() < 0.0125, "{share}");
}
