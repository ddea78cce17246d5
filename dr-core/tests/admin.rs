//! Runtime changes (`ipvsadm -E/-D/-e/-d`) and the overload thresholds (spec §2.6, §5.1):
//! connections survive, schedulers follow.

mod support;

use dr_core::{
    Config, ConfigError, Director, DropReason, Instant, Protocol, RealConfig, RealEdit, RealId,
    SchedFlags, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn with_reals(
    config: Config,
    kind: SchedulerKind,
    reals: &[(&str, RealConfig)],
) -> (Director, ServiceId, Vec<RealId>) {
    let mut d = Director::new(config).unwrap();
    let s = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, kind)).unwrap();
    let ids = reals.iter().map(|(_, r)| d.add_real(s, *r).unwrap()).collect();
    (d, s, ids)
}

fn config() -> Config {
    let mut c = Config::new(mac(DIRECTOR_MAC), [7, 7, 7, 7]);
    c.capacity = 1024;
    c
}

fn real(n: usize) -> RealConfig {
    RealConfig::new(ip(&format!("10.0.0.{}", 11 + n))).with_mac(mac(REAL_MACS[n]))
}

fn syn(d: &mut Director, now: Instant, port: u16) -> Verdict {
    d.process(now, &mut tcp4("192.0.2.7", port, VIP, 80, SYN))
}

#[test]
fn upper_threshold_overloads_and_three_quarters_clears() {
    // u = 3, l = 0: the third connection overloads; an expiry down to 2 clears (8 < 9).
    let (mut d, _, ids) = with_reals(
        config(),
        SchedulerKind::Wlc,
        &[("a", real(0).with_thresholds(3, 0)), ("b", real(1))],
    );
    let a = ids[0];
    // Quiesce B so every connection goes to A.
    d.edit_real(ids[1], RealEdit::of(d.real(ids[1]).unwrap()).with_weight(0)).unwrap();
    for port in 0..3 {
        assert_eq!(syn(&mut d, t(1), port), Verdict::Forward { real: a });
    }
    assert!(d.real(a).unwrap().is_overloaded());
    assert_eq!(syn(&mut d, t(1), 3), Verdict::Drop(DropReason::NoRealAvailable));
    // Establish and reset one connection (an RST in SYN_RECV keeps SYN_RECV): CLOSE
    // expires 10 s later, bringing the total to 2.
    assert!(d.process(t(2), &mut tcp4("192.0.2.7", 0, VIP, 80, ACK)).is_transmit());
    assert!(d.process(t(2), &mut tcp4("192.0.2.7", 0, VIP, 80, RST)).is_transmit());
    d.handle_timeout(t(12));
    assert_eq!(d.real(a).unwrap().active_conns() + d.real(a).unwrap().inactive_conns(), 2);
    assert!(!d.real(a).unwrap().is_overloaded());
    assert_eq!(syn(&mut d, t(13), 4), Verdict::Forward { real: a });
}

#[test]
fn lower_threshold_clears_below_it() {
    let (mut d, _, ids) =
        with_reals(config(), SchedulerKind::Rr, &[("a", real(0).with_thresholds(4, 2))]);
    for port in 0..4 {
        assert!(syn(&mut d, t(1), port).is_transmit());
    }
    assert!(d.real(ids[0]).unwrap().is_overloaded());
    // Three of them established and reset: CLOSE for 10 s; the clear happens once the
    // total is below 2.
    for port in 0..3 {
        assert!(d.process(t(2), &mut tcp4("192.0.2.7", port, VIP, 80, ACK)).is_transmit());
        assert!(d.process(t(2), &mut tcp4("192.0.2.7", port, VIP, 80, RST)).is_transmit());
    }
    d.handle_timeout(t(12));
    assert!(!d.real(ids[0]).unwrap().is_overloaded(), "1 < 2");
    // Raising the upper threshold (or zeroing it) clears the flag too.
    let (mut d, _, ids) =
        with_reals(config(), SchedulerKind::Rr, &[("a", real(0).with_thresholds(1, 0))]);
    assert!(syn(&mut d, t(1), 1).is_transmit());
    assert!(d.real(ids[0]).unwrap().is_overloaded());
    d.edit_real(ids[0], RealEdit::of(d.real(ids[0]).unwrap()).with_thresholds(5, 0)).unwrap();
    assert!(!d.real(ids[0]).unwrap().is_overloaded());
    let err = d
        .edit_real(ids[0], RealEdit::of(d.real(ids[0]).unwrap()).with_thresholds(0, 3))
        .unwrap_err();
    assert!(matches!(err, ConfigError::Thresholds { upper: 0, lower: 3 }), "{err}");
}

#[test]
fn weight_zero_quiesces_and_existing_flows_continue() {
    let (mut d, _, ids) =
        with_reals(config(), SchedulerKind::Rr, &[("a", real(0)), ("b", real(1))]);
    let Verdict::Forward { real: first } = syn(&mut d, t(1), 1) else { panic!() };
    d.edit_real(first, RealEdit::of(d.real(first).unwrap()).with_weight(0)).unwrap();
    assert_eq!(
        d.process(t(2), &mut tcp4("192.0.2.7", 1, VIP, 80, ACK)),
        Verdict::Forward { real: first }
    );
    let other = if first == ids[0] { ids[1] } else { ids[0] };
    for port in 2..6 {
        assert_eq!(syn(&mut d, t(2), port), Verdict::Forward { real: other });
    }
}

#[test]
fn removed_real_drops_its_packets_and_comes_back_with_its_counters() {
    let (mut d, s, ids) =
        with_reals(config(), SchedulerKind::Rr, &[("a", real(0)), ("b", real(1))]);
    let Verdict::Forward { real: gone } = syn(&mut d, t(1), 1) else { panic!() };
    d.remove_real(gone).unwrap();
    assert!(!d.real(gone).unwrap().is_available());
    assert_eq!(
        d.process(t(2), &mut tcp4("192.0.2.7", 1, VIP, 80, ACK)),
        Verdict::Drop(DropReason::RealRemoved)
    );
    assert_eq!(d.service(s).unwrap().reals().len(), 1);
    let kept = if gone == ids[0] { ids[1] } else { ids[0] };
    for port in 2..5 {
        assert_eq!(syn(&mut d, t(2), port), Verdict::Forward { real: kept });
    }
    assert!(matches!(d.remove_real(gone), Err(ConfigError::UnknownReal)));
    // Added again: the same server, its counters and its connection.
    let index = if gone == ids[0] { 0 } else { 1 };
    let back = d.add_real(s, real(index)).unwrap();
    assert_eq!(back, gone);
    assert_eq!(d.real(back).unwrap().stats().conns, 1);
    assert_eq!(
        d.process(t(3), &mut tcp4("192.0.2.7", 1, VIP, 80, ACK)),
        Verdict::Forward { real: back }
    );
}

#[test]
fn expire_nodest_conn_reschedules() {
    let mut c = config();
    c.expire_nodest_conn = true;
    let (mut d, _, _) = with_reals(c, SchedulerKind::Rr, &[("a", real(0)), ("b", real(1))]);
    let Verdict::Forward { real: gone } = syn(&mut d, t(1), 1) else { panic!() };
    d.remove_real(gone).unwrap();
    assert_eq!(d.connection_count(), 0, "expired at once");
    assert_eq!(d.real(gone).unwrap().active_conns(), 0);
    let Verdict::Forward { real: now } = syn(&mut d, t(2), 1) else { panic!() };
    assert_ne!(now, gone);
}

#[test]
fn switching_to_wrr_starts_from_the_servers_present() {
    // Added C, B, A one at a time under rr, then `ipvsadm -E -s wrr`: init with the list
    // A=4, B=3, C=2 present, so cw starts at mw (spec §1.2): A A B A B C A B C.
    let (mut d, s, ids) = with_reals(
        config(),
        SchedulerKind::Rr,
        &[
            ("c", real(2).with_weight(2)),
            ("b", real(1).with_weight(3)),
            ("a", real(0).with_weight(4)),
        ],
    );
    d.edit_service(s, SchedulerKind::Wrr, SchedFlags::NONE).unwrap();
    let name = |r: RealId| ["c", "b", "a"][ids.iter().position(|&x| x == r).unwrap()];
    let picks: String = (0..9)
        .map(|port| match syn(&mut d, t(1), port) {
            Verdict::Forward { real } => name(real).to_uppercase(),
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(picks, "AABABCABC");
    assert_eq!(d.service(s).unwrap().scheduler(), SchedulerKind::Wrr);
}

#[test]
fn built_one_at_a_time_wrr_starts_at_cw_one() {
    let (mut d, _, ids) = with_reals(
        config(),
        SchedulerKind::Wrr,
        &[
            ("c", real(2).with_weight(2)),
            ("b", real(1).with_weight(3)),
            ("a", real(0).with_weight(4)),
        ],
    );
    let name = |r: RealId| ["C", "B", "A"][ids.iter().position(|&x| x == r).unwrap()];
    let picks: String = (0..12)
        .map(|port| match syn(&mut d, t(1), port) {
            Verdict::Forward { real } => name(real),
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(picks, "ABCAABABCABC");
}

#[test]
fn schedule_answers_without_creating_a_connection() {
    let (mut d, s, ids) =
        with_reals(config(), SchedulerKind::Rr, &[("a", real(0)), ("b", real(1))]);
    let flow = dr_core::FlowKey {
        protocol: Protocol::Tcp,
        client: ip("192.0.2.7"),
        client_port: 1,
        vip: ip(VIP),
        vip_port: 80,
    };
    // The list is b, a: rr answers b, then a, and the next real SYN gets b again.
    assert_eq!(d.schedule(s, &flow), Some(ids[1]));
    assert_eq!(d.schedule(s, &flow), Some(ids[0]));
    assert_eq!(d.connection_count(), 0);
    assert_eq!(syn(&mut d, t(1), 1), Verdict::Forward { real: ids[1] });
}

#[test]
fn removing_a_service_keeps_its_connections_out() {
    let (mut d, s, _) = with_reals(config(), SchedulerKind::Wlc, &[("a", real(0))]);
    assert!(syn(&mut d, t(1), 1).is_transmit());
    d.remove_service(s).unwrap();
    assert!(d.service(s).is_none());
    assert_eq!(d.services().count(), 0);
    assert_eq!(
        d.process(t(2), &mut tcp4("192.0.2.7", 1, VIP, 80, ACK)),
        Verdict::Drop(DropReason::RealRemoved)
    );
    assert_eq!(syn(&mut d, t(2), 2), Verdict::Pass(dr_core::PassReason::NotVip));
    assert_eq!(d.announcements().count(), 0, "the VIP is no longer announced");
    assert!(matches!(d.remove_service(s), Err(ConfigError::UnknownService)));
    // The same service can be added again.
    let again =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Wlc)).unwrap();
    assert_ne!(again, s);
}
