//! Timers decide in deadline order, however late `handle_timeout` comes (spec §2.5, §2.7;
//! `ip_vs_conn_expire`: a template due while it controls connections is re-armed for 60 s
//! from its deadline, again each time it comes up, until a deadline finds it controlling
//! nothing).
//!
//! The expected outcomes are worked out by hand from that rule in each test's comment, and
//! the same sequence is run twice: with `handle_timeout` at every deadline
//! `poll_timeout` gives (every timer on time, as in the kernel) and with nothing but the
//! frames (a replay driver's way). A property test then checks the rule behind it: any
//! sequence gives the same verdicts, bytes, counters and listings whatever the calls.

mod support;

use dr_core::{
    ConnKind, Director, Instant, ListingFormat, Persistence, Protocol, RealConfig, RealEdit,
    RealId, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use proptest::prelude::*;
use support::*;

const VIP: &str = "10.0.0.100";

fn ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// How a driver calls `handle_timeout`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Timers {
    /// At every deadline `poll_timeout` gives, before each frame.
    OnTime,
    /// Never: only the frames bring the director up to date.
    FramesOnly,
}

/// Calls `handle_timeout` at every deadline up to `now`, as a driver whose timer fires on
/// time would.
fn run_timers_until(d: &mut Director, now: Instant) {
    for _ in 0..1_000_000 {
        match d.poll_timeout() {
            Some(at) if at <= now => d.handle_timeout(at),
            _ => return,
        }
    }
    panic!("poll_timeout never moved past {now:?}");
}

/// A persistent rr service with two real servers: rr alternates, so a client that lost its
/// template gets the other server on its next connection.
fn persistent(timeout_secs: u32) -> (Director, ServiceId, [RealId; 2]) {
    let mut d = director(64);
    let svc = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(Persistence::new(timeout_secs)),
        )
        .unwrap();
    let a = d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let b = d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    (d, svc, [a, b])
}

/// Sends `frames` at their times (ms) with `timers`, returning each verdict.
fn run(d: &mut Director, timers: Timers, frames: &[(u64, Vec<u8>)]) -> Vec<Verdict> {
    frames
        .iter()
        .map(|(at, frame)| {
            if timers == Timers::OnTime {
                run_timers_until(d, ms(*at));
            }
            d.process(ms(*at), &mut frame.clone())
        })
        .collect()
}

fn real(verdict: Verdict) -> RealId {
    match verdict {
        Verdict::Forward { real } => real,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn template(d: &Director) -> Option<dr_core::ConnInfo> {
    d.connections().find(|c| matches!(c.kind, ConnKind::Template { .. }))
}

#[test]
fn a_template_due_while_it_controls_a_connection_outlives_it() {
    // Persistence 66 s. 240.714 s: the client's SYN makes a template due at 306.714 s and a
    // connection in SYN_RECV; its SYN again at 248.285 s re-arms the connection to
    // 308.285 s (60 s). At 306.714 s the template still controls it: re-armed for 60 s, to
    // 366.714 s. The connection expires at 308.285 s. At 317.868 s the client's next
    // connection finds the template and goes to its server; rr would have picked the other.
    for timers in [Timers::OnTime, Timers::FramesOnly] {
        let (mut d, _, _) = persistent(66);
        let frames = [
            (240_714, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (248_285, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (317_868, tcp4("192.0.2.7", 1001, VIP, 80, SYN)),
        ];
        let verdicts = run(&mut d, timers, &frames);
        assert_eq!(real(verdicts[2]), real(verdicts[0]), "{timers:?}");
        assert_eq!(d.counters().templates_created(), 1, "{timers:?}");
        // The new connection re-armed the template for its 60 s: 377.868 s.
        assert_eq!(template(&d).unwrap().expires, ms(377_868), "{timers:?}");
    }
}

#[test]
fn the_expire_later_chain_continues_from_the_deadline() {
    // Persistence 66 s. 0 s: SYN, 0.5 s: ACK, so the connection is ESTABLISHED until
    // 900.5 s. The template comes up at 66 s, 126 s, ..., 66 + 60k s: the first of those at
    // or after 900.5 s is 906 s (k = 14), when it controls nothing and goes.
    let frames = |at: u64| {
        [
            (0, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (500, tcp4("192.0.2.7", 1000, VIP, 80, ACK)),
            (at, tcp4("192.0.2.7", 1001, VIP, 80, SYN)),
        ]
    };
    for timers in [Timers::OnTime, Timers::FramesOnly] {
        // Just before 906 s the template still holds; just after, rr picks afresh.
        let (mut d, _, _) = persistent(66);
        let v = run(&mut d, timers, &frames(905_999));
        assert_eq!(real(v[2]), real(v[0]), "{timers:?}");
        let (mut d, _, _) = persistent(66);
        let v = run(&mut d, timers, &frames(906_000));
        assert_ne!(real(v[2]), real(v[0]), "{timers:?}");
        assert_eq!(d.counters().templates_created(), 2, "{timers:?}");
    }
    // Handled late, from 0.5 s straight to 500 s: the template's deadline is the first
    // 66 + 60k s after 500 s, 546 s (k = 8), not 60 s from the late call.
    let (mut d, _, _) = persistent(66);
    run(&mut d, Timers::FramesOnly, &frames(0)[..2]);
    d.handle_timeout(ms(500_000));
    assert_eq!(template(&d).unwrap().expires, ms(546_000));
    // And as late again, at 905 s: the connection is still live, 906 s.
    d.handle_timeout(ms(905_000));
    assert_eq!(template(&d).unwrap().expires, ms(906_000));
    d.handle_timeout(ms(906_000));
    assert_eq!(d.connection_count(), 0);
}

#[test]
fn a_connection_due_at_its_templates_deadline_goes_first() {
    // Persistence 66 s. SYNs at 0 s and 30 s: the connection is due at 90 s (SYN_RECV);
    // the template comes up at 66 s, finds it, and is re-armed to 126 s. A SYN at 66 s
    // (after the template's timer) re-arms the connection to 126 s too. At 126 s the
    // connection's timer goes first, so the template controls nothing and goes with it.
    let frames = |at: u64| {
        [
            (0, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (30_000, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (66_000, tcp4("192.0.2.7", 1000, VIP, 80, SYN)),
            (at, tcp4("192.0.2.7", 1001, VIP, 80, SYN)),
        ]
    };
    for timers in [Timers::OnTime, Timers::FramesOnly] {
        let (mut d, _, _) = persistent(66);
        let v = run(&mut d, timers, &frames(125_999));
        assert_eq!(real(v[3]), real(v[0]), "{timers:?}");
        let (mut d, _, _) = persistent(66);
        let v = run(&mut d, timers, &frames(126_000));
        assert_ne!(real(v[3]), real(v[0]), "{timers:?}");
    }
}

#[test]
fn least_connection_counts_are_those_of_now() {
    // lc sees the counts of entries still live: a connection due at 60 s (SYN_RECV) is no
    // longer counted at 61 s, whether or not handle_timeout ran in between.
    for timers in [Timers::OnTime, Timers::FramesOnly] {
        let mut d = director(64);
        let svc = d
            .add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Lc))
            .unwrap();
        for (i, m) in REAL_MACS.iter().take(2).enumerate() {
            let addr = ip(&format!("10.0.0.{}", 11 + i));
            d.add_real(svc, RealConfig::new(addr).with_mac(mac(*m))).unwrap();
        }
        let frames = [
            // Two connections, one on each server; the first is made to last.
            (0, tcp4("192.0.2.7", 1, VIP, 80, SYN)),
            (0, tcp4("192.0.2.7", 2, VIP, 80, SYN)),
            (1_000, tcp4("192.0.2.7", 1, VIP, 80, ACK)),
            // 61 s: the second is gone, so its server has 0 and takes both new ones in turn
            // with the first's server (1, then 1 each: lc picks the first least).
            (61_000, tcp4("192.0.2.7", 3, VIP, 80, SYN)),
        ];
        let v = run(&mut d, timers, &frames);
        assert_eq!(real(v[3]), real(v[1]), "{timers:?}");
        let r = d.real(real(v[1])).unwrap();
        assert_eq!(r.active_conns() + r.inactive_conns(), 1, "{timers:?}");
    }
}

/// A director with a persistent rr service, an lc service, a persistent UDP wlc service
/// and rate estimation: enough for templates, counts and rates to matter.
fn mixed() -> (Director, Vec<RealId>) {
    let mut d = director(256);
    let web = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(Persistence::new(20)),
        )
        .unwrap();
    let api =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 443, SchedulerKind::Lc)).unwrap();
    let dns = d
        .add_service(
            ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Wlc)
                .with_persistence(Persistence::new(7)),
        )
        .unwrap();
    let mut reals = Vec::new();
    for svc in [web, api, dns] {
        for (i, m) in REAL_MACS.iter().take(3).enumerate() {
            let real = RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_weight(i as u32 + 1);
            reals.push(d.add_real(svc, real.with_mac(mac(*m))).unwrap());
        }
    }
    (d, reals)
}

#[derive(Clone, Debug)]
enum Event {
    /// A TCP segment from client `host` port `port` to port 80 or 443.
    Tcp { host: u8, port: u16, https: bool, flags: u8, data: bool },
    /// A UDP datagram to port 53.
    Udp { host: u8, port: u16 },
    /// Weight of real `real` set to `weight`.
    Weight { real: usize, weight: u32 },
    /// Real `real` removed.
    Remove { real: usize },
}

fn event() -> impl Strategy<Value = Event> {
    let flags = prop::sample::select(vec![SYN, ACK, ACK | PSH, FIN | ACK, RST, 0, SYN | ACK]);
    prop_oneof![
        8 => (0u8..4, 0u16..4, any::<bool>(), flags, any::<bool>())
            .prop_map(|(host, port, https, flags, data)| Event::Tcp { host, port, https, flags, data }),
        3 => (0u8..4, 0u16..4).prop_map(|(host, port)| Event::Udp { host, port }),
        1 => (0usize..9, 0u32..3).prop_map(|(real, weight)| Event::Weight { real, weight }),
        1 => (0usize..9).prop_map(|real| Event::Remove { real }),
    ]
}

/// How often, between two events, the third driver calls `handle_timeout`.
fn extra_calls() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..1_000_000, 0..3)
}

/// Everything observable about a director at `now`; the connection listing sorted, since
/// its order is the table's slot order, which differs with the order entries were freed.
fn observe(d: &Director, now: Instant) -> (dr_core::Counters, String, Vec<String>, usize) {
    let mut conns: Vec<String> =
        d.connection_listing(now).to_string().lines().map(str::to_owned).collect();
    conns.sort();
    (d.counters().clone(), d.listing(ListingFormat::Rate).to_string(), conns, d.template_count())
}

fn apply(
    d: &mut Director,
    reals: &[RealId],
    event: &Event,
    at: Instant,
) -> Option<(Verdict, Vec<u8>)> {
    let client = |host: u8| format!("192.0.2.{}", host + 1);
    let mut frame = match *event {
        Event::Tcp { host, port, https, flags, data } => {
            let vport = if https { 443 } else { 80 };
            let payload: &[u8] = if data { b"data" } else { b"" };
            tcp4_payload(&client(host), 1000 + port, VIP, vport, flags, payload)
        }
        Event::Udp { host, port } => udp4(&client(host), 2000 + port, VIP, 53, b"query"),
        Event::Weight { real, weight } => {
            let id = reals[real];
            if let Some(r) = d.real(id).filter(|r| r.is_available()) {
                d.edit_real(id, RealEdit::of(r).with_weight(weight)).unwrap();
            }
            return None;
        }
        Event::Remove { real } => {
            let _ = d.remove_real(reals[real]);
            return None;
        }
    };
    let verdict = d.process(at, &mut frame);
    Some((verdict, frame))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// For any sequence of frames and configuration changes (each right after a frame, at
    /// its time), calling `handle_timeout` at every deadline, only through the frames, or
    /// at random times in between gives the same verdicts, bytes out, counters and
    /// listings.
    #[test]
    fn results_do_not_depend_on_when_handle_timeout_is_called(
        events in prop::collection::vec((0u64..90_000, event(), extra_calls()), 1..120)
    ) {
        let (mut on_time, reals) = mixed();
        let (mut frames_only, _) = mixed();
        let (mut random, _) = mixed();
        let mut now = 1_000u64;
        // The first time a director is given starts its estimators' 2-second clock.
        for d in [&mut on_time, &mut frames_only, &mut random] {
            d.handle_timeout(ms(now));
        }
        for (gap, event, extra) in &events {
            let previous = now;
            // A configuration change comes right after the frame before it, at its time.
            let gap = if matches!(event, Event::Tcp { .. } | Event::Udp { .. }) { *gap } else { 0 };
            now += gap;
            let at = ms(now);
            run_timers_until(&mut on_time, at);
            let mut calls: Vec<u64> = extra.iter().map(|x| previous + x % (gap + 1)).collect();
            calls.sort_unstable();
            for call in calls {
                random.handle_timeout(ms(call));
            }
            let a = apply(&mut on_time, &reals, event, at);
            let b = apply(&mut frames_only, &reals, event, at);
            let c = apply(&mut random, &reals, event, at);
            prop_assert_eq!(&a, &b, "{:?} at {} ms", event, now);
            prop_assert_eq!(&a, &c, "{:?} at {} ms", event, now);
            let expected = observe(&on_time, at);
            prop_assert_eq!(&observe(&frames_only, at), &expected, "after {:?} at {} ms", event, now);
            prop_assert_eq!(&observe(&random, at), &expected, "after {:?} at {} ms", event, now);
        }
        // And long after, once every timer has run out.
        let end = ms(now + 2_000_000);
        run_timers_until(&mut on_time, end);
        frames_only.handle_timeout(end);
        random.handle_timeout(end);
        prop_assert_eq!(on_time.connection_count(), 0);
        prop_assert_eq!(observe(&frames_only, end), observe(&on_time, end));
        prop_assert_eq!(observe(&random, end), observe(&on_time, end));
    }
}
