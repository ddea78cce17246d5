//! Scheduler laws, over random weights, thresholds and traffic.

mod support;

use dr_core::{
    Config, Director, Instant, Protocol, RealConfig, RealId, SchedFlags, SchedulerKind,
    ServiceConfig, ServiceId, Verdict,
};
use proptest::prelude::*;
use support::*;

const VIP: &str = "10.0.0.100";

fn director_with(kind: SchedulerKind, reals: &[(u32, u32)]) -> (Director, ServiceId, Vec<RealId>) {
    let mut config = Config::new(mac(DIRECTOR_MAC), [3, 1, 4, 1]);
    config.capacity = 4096;
    let mut d = Director::new(config).unwrap();
    let s = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, kind)).unwrap();
    let ids = reals
        .iter()
        .enumerate()
        .map(|(i, &(weight, upper))| {
            let real = RealConfig::new(ip(&format!("10.0.{}.{}", i / 200, i % 200 + 1)))
                .with_weight(weight)
                .with_thresholds(upper, 0)
                .with_mac(mac([2, 0, 0, 1, (i >> 8) as u8, i as u8]));
            d.add_real(s, real).unwrap()
        })
        .collect();
    (d, s, ids)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn one_wrr_cycle_gives_each_real_its_weight_share(weights in prop::collection::vec(0u32..12, 1..8)) {
        let reals: Vec<(u32, u32)> = weights.iter().map(|&w| (w, 0)).collect();
        // Build under rr, then switch: wrr starts its cycle at the top (cw = mw).
        let (mut d, s, ids) = director_with(SchedulerKind::Rr, &reals);
        d.edit_service(s, SchedulerKind::Wrr, SchedFlags::NONE).unwrap();
        let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        let cycle: u32 = weights.iter().sum::<u32>().checked_div(g).unwrap_or(0);
        let mut picks = vec![0u32; weights.len()];
        for port in 0..cycle {
            match d.process(Instant::from_secs(1), &mut tcp4("192.0.2.7", port as u16, VIP, 80, SYN)) {
                Verdict::Forward { real } => picks[ids.iter().position(|&r| r == real).unwrap()] += 1,
                v => prop_assert!(false, "{:?}", v),
            }
        }
        for (i, &w) in weights.iter().enumerate() {
            prop_assert_eq!(picks[i], w.checked_div(g).unwrap_or(0), "weights {:?}", weights);
        }
    }

    #[test]
    fn hashing_keeps_a_source_on_one_real(
        kind in prop::sample::select(vec![SchedulerKind::Sh, SchedulerKind::Mh, SchedulerKind::Dh]),
        weights in prop::collection::vec(1u32..5, 1..6),
        client in any::<[u8; 4]>(),
    ) {
        let reals: Vec<(u32, u32)> = weights.iter().map(|&w| (w, 0)).collect();
        let (mut d, _, _) = director_with(kind, &reals);
        // 1 to 126 first: an ordinary unicast client, never a martian source.
        let client = format!("{}.{}.{}.{}", client[0] % 126 + 1, client[1], client[2], client[3]);
        let mut chosen = None;
        for port in 0..20u16 {
            let Verdict::Forward { real } = d.process(Instant::from_secs(1), &mut tcp4(&client, 1000 + port, VIP, 80, SYN)) else {
                return Err(TestCaseError::fail(format!("{kind} found no server")));
            };
            prop_assert!(chosen.is_none_or(|c| c == real), "the source moved");
            chosen = Some(real);
        }
    }

    #[test]
    fn no_scheduler_picks_weight_zero_or_overloaded(
        kind in prop::sample::select(SchedulerKind::ALL.to_vec()),
        reals in prop::collection::vec((0u32..4, 0u32..4), 1..6),
        steps in prop::collection::vec((any::<u16>(), any::<bool>()), 1..80),
    ) {
        let (mut d, _, ids) = director_with(kind, &reals);
        let mut now = 1u64;
        let mut last_pick = None;
        for (port, close) in steps {
            now += 1;
            let at = Instant::from_secs(now);
            if d.poll_timeout().is_some_and(|due| due <= at) {
                d.handle_timeout(at);
            }
            let before: Vec<(u32, bool)> = ids.iter().map(|&r| {
                let real = d.real(r).unwrap();
                (real.weight(), real.is_overloaded())
            }).collect();
            let created = d.counters().conns_created();
            let flags = if close { ACK | RST } else { SYN };
            let verdict = d.process(at, &mut tcp4("192.0.2.9", port % 64, VIP, 80, flags));
            if let Verdict::Forward { real } = verdict
                && d.counters().conns_created() > created
            {
                // A new connection: the scheduler picked `real`.
                let i = ids.iter().position(|&r| r == real).unwrap();
                prop_assert!(before[i].0 > 0, "{} picked a weight-0 server", kind);
                // lblc's cache does not look at the overload flag (ip_vs_lblc_schedule):
                // the server it holds, always its last pick here, may be over its
                // threshold.
                let cached = kind == SchedulerKind::Lblc && last_pick == Some(real);
                prop_assert!(!before[i].1 || cached, "{} picked an overloaded server", kind);
                last_pick = Some(real);
            }
        }
        // Every real: total connections never above a non-zero upper threshold (but for
        // lblc, whose cached server takes connections past it).
        for (&r, &(_, upper)) in ids.iter().zip(&reals) {
            let real = d.real(r).unwrap();
            if upper > 0 && kind != SchedulerKind::Lblc {
                prop_assert!(real.active_conns() + real.inactive_conns() <= upper);
            }
            if real.weight() == 0 {
                prop_assert_eq!(real.stats().conns, 0, "{} picked a weight-0 server", kind);
            }
        }
    }
}
