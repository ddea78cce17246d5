//! A SYN that finds an existing connection (spec §2.5 "Port reuse", §2.6): `conn_reuse_mode`
//! and `expire_nodest_conn`, as `ip_vs_in_hook` and `is_new_conn_expected` decide.

mod support;

use dr_core::{
    Config, ConnState, Director, Instant, Protocol, RealConfig, RealEdit, RealId, SchedulerKind,
    ServiceConfig, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// An rr service with two servers; returns the director and the servers.
fn setup(configure: impl FnOnce(&mut Config)) -> (Director, [RealId; 2]) {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 2, 3, 4]);
    config.capacity = 64;
    configure(&mut config);
    let mut d = Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    let a = d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let b = d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    (d, [a, b])
}

fn send(d: &mut Director, at: u64, flags: u8) -> RealId {
    match d.process(s(at), &mut tcp4("192.0.2.7", 40000, VIP, 80, flags)) {
        Verdict::Forward { real } => real,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn state(d: &Director) -> ConnState {
    d.connections().next().unwrap().state
}

/// Active + inactive over both servers.
fn counted(d: &Director, reals: [RealId; 2]) -> u32 {
    reals.iter().map(|&r| d.real(r).unwrap()).map(|r| r.active_conns() + r.inactive_conns()).sum()
}

#[test]
fn a_syn_in_time_wait_is_scheduled_afresh() {
    let (mut d, reals) = setup(|_| {});
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, FIN); // SYN_RECV + FIN -> TIME_WAIT
    assert_eq!(state(&d), ConnState::TimeWait);
    let second = send(&mut d, 2, SYN);
    // rr moved on: the old entry was expired and the SYN scheduled anew.
    assert_ne!(second, first);
    assert_eq!(state(&d), ConnState::SynRecv);
    assert_eq!(d.connection_count(), 1);
    assert_eq!(d.counters().conns_reused(), 1);
    assert_eq!(d.counters().conns_created(), 2);
    assert_eq!(counted(&d, reals), 1);
}

#[test]
fn a_syn_in_fin_wait_reuses_the_entry_by_default() {
    let (mut d, _) = setup(|_| {});
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    send(&mut d, 2, FIN | ACK);
    assert_eq!(state(&d), ConnState::FinWait);
    // Mode 1: FIN_WAIT -> SYN_RECV on the same entry and server.
    assert_eq!(send(&mut d, 3, SYN), first);
    assert_eq!(state(&d), ConnState::SynRecv);
    assert_eq!(d.counters().conns_reused(), 0);
}

#[test]
fn mode_bit_2_reschedules_from_fin_wait() {
    let (mut d, reals) = setup(|c| c.conn_reuse_mode = 3);
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    send(&mut d, 2, FIN | ACK);
    assert_ne!(send(&mut d, 3, SYN), first);
    assert_eq!(d.counters().conns_reused(), 1);
    assert_eq!(counted(&d, reals), 1);
}

#[test]
fn mode_0_never_reschedules() {
    let (mut d, _) = setup(|c| c.conn_reuse_mode = 0);
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, FIN);
    assert_eq!(state(&d), ConnState::TimeWait);
    assert_eq!(send(&mut d, 2, SYN), first);
    assert_eq!(state(&d), ConnState::SynRecv);
}

#[test]
fn a_syn_to_a_quiesced_server_is_rescheduled_with_expire_nodest_conn() {
    let (mut d, reals) = setup(|c| c.expire_nodest_conn = true);
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    d.edit_real(first, RealEdit::of(d.real(first).unwrap()).with_weight(0)).unwrap();
    // Data keeps flowing to the quiesced server...
    assert_eq!(send(&mut d, 2, ACK), first);
    // ...but a new SYN on the same ports goes elsewhere.
    assert_ne!(send(&mut d, 3, SYN), first);
    assert_eq!(counted(&d, reals), 1);
    assert_eq!(d.real(first).unwrap().active_conns(), 0);
}

#[test]
fn without_expire_nodest_conn_a_quiesced_server_keeps_its_syn() {
    let (mut d, _) = setup(|_| {});
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    d.edit_real(first, RealEdit::of(d.real(first).unwrap()).with_weight(0)).unwrap();
    // ESTABLISHED + SYN stays ESTABLISHED on the same server.
    assert_eq!(send(&mut d, 2, SYN), first);
    assert_eq!(state(&d), ConnState::Established);
}

#[test]
fn out_of_range_modes_are_refused() {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 2, 3, 4]);
    config.conn_reuse_mode = 4;
    let err = Director::new(config).unwrap_err();
    assert!(err.to_string().contains("conn_reuse_mode 4"), "{err}");
}

/// The connection of 192.0.2.7:40000 in the listing.
fn the_connection(d: &Director) -> dr_core::ConnInfo {
    d.connections().find(|c| c.key.client_port == 40000).expect("the connection")
}

#[test]
fn a_syn_after_a_reset_is_scheduled_afresh() {
    // is_new_conn_expected: TIME_WAIT or CLOSE. ESTABLISHED + RST is CLOSE (10 s); a SYN
    // 3 s later expires the entry and rr picks the other server.
    let (mut d, reals) = setup(|_| {});
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    send(&mut d, 2, RST);
    assert_eq!(state(&d), ConnState::Close);
    let second = send(&mut d, 5, SYN);
    assert_ne!(second, first);
    assert_eq!(state(&d), ConnState::SynRecv);
    assert_eq!(d.counters().conns_reused(), 1);
    assert_eq!(d.counters().conns_created(), 2);
    assert_eq!(counted(&d, reals), 1);
    assert_eq!(d.real(second).unwrap().active_conns(), 1);
}

#[test]
fn a_syn_after_a_segment_without_flags_is_scheduled_afresh() {
    // None of SYN, FIN, ACK, RST (a bare PSH, or no flag at all) moves to CLOSE.
    for flags in [0, PSH] {
        let (mut d, _) = setup(|_| {});
        let first = send(&mut d, 0, SYN);
        send(&mut d, 1, ACK);
        send(&mut d, 2, flags);
        assert_eq!(state(&d), ConnState::Close);
        assert_ne!(send(&mut d, 3, SYN), first, "flags {flags:#x}");
        assert_eq!(d.counters().conns_reused(), 1);
    }
}

#[test]
fn a_syn_with_rst_also_expires_a_closed_entry_but_opens_nothing() {
    // is_new_conn tests only th->syn, so the entry goes; the scheduler then refuses a
    // SYN+RST (tcp_conn_schedule wants SYN without RST), which goes to the host.
    let (mut d, _) = setup(|_| {});
    send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    send(&mut d, 2, RST);
    let verdict = d.process(s(3), &mut tcp4("192.0.2.7", 40000, VIP, 80, SYN | RST));
    assert_eq!(verdict, Verdict::Pass(dr_core::PassReason::NoConnection));
    assert_eq!(d.connection_count(), 0);
    assert_eq!(d.counters().conns_reused(), 1);
}

#[test]
fn a_closed_entry_under_a_template_is_not_rescheduled() {
    // `if (cp->control) return false;`: the SYN moves CLOSE to SYN_RECV on the same entry.
    let (mut d, reals) = setup(|_| {});
    let svc =
        d.find_service(&dr_core::ServiceKey { protocol: Protocol::Tcp, vip: ip(VIP), port: 80 });
    d.set_persistence(svc.unwrap(), Some(dr_core::Persistence::new(300))).unwrap();
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    send(&mut d, 2, RST);
    assert_eq!(the_connection(&d).state, ConnState::Close);
    assert_eq!(send(&mut d, 3, SYN), first);
    assert_eq!(the_connection(&d).state, ConnState::SynRecv);
    assert_eq!(d.counters().conns_reused(), 0);
    assert_eq!(d.counters().conns_created(), 1);
    assert_eq!(counted(&d, reals), 1);
}

#[test]
fn expire_nodest_conn_reschedules_a_quiesced_server_even_in_mode_0() {
    // Since kernel 5.16 (c95c07836fa4) the weight-0 test stands before the mode's.
    let (mut d, reals) = setup(|c| {
        c.conn_reuse_mode = 0;
        c.expire_nodest_conn = true;
    });
    let first = send(&mut d, 0, SYN);
    send(&mut d, 1, ACK);
    d.edit_real(first, RealEdit::of(d.real(first).unwrap()).with_weight(0)).unwrap();
    assert_eq!(send(&mut d, 2, ACK), first, "data still goes to the quiesced server");
    let second = send(&mut d, 3, SYN);
    assert_ne!(second, first);
    assert_eq!(d.counters().conns_reused(), 1);
    assert_eq!(counted(&d, reals), 1);
    assert_eq!(d.real(first).unwrap().active_conns() + d.real(first).unwrap().inactive_conns(), 0);
}

#[test]
fn a_reused_port_of_a_removed_server_is_rescheduled_not_dropped() {
    // The reuse block of ip_vs_in_hook comes before the "destination not available" drop
    // and sets cp = NULL, so with expire_nodest_conn off (the default) a SYN on a closed
    // entry of a removed server is scheduled, while its other packets are dropped, and so
    // is a SYN on an entry the reuse rules keep (FIN_WAIT in mode 1).
    let (mut d, reals) = setup(|_| {});
    let closing = |flags| tcp4("192.0.2.7", 40001, VIP, 80, flags);
    let first = send(&mut d, 0, SYN);
    let Verdict::Forward { real: second } = d.process(s(0), &mut closing(SYN)) else {
        panic!("the second SYN was not forwarded");
    };
    send(&mut d, 1, ACK);
    send(&mut d, 2, RST); // CLOSE
    for flags in [ACK, FIN | ACK] {
        assert_eq!(d.process(s(2), &mut closing(flags)), Verdict::Forward { real: second });
    }
    d.remove_real(reals[0]).unwrap();
    d.remove_real(reals[1]).unwrap();
    let other = d.add_real(
        d.real(first).unwrap().service(),
        RealConfig::new(ip("10.0.0.13")).with_mac(mac(REAL_MACS[2])),
    );
    let other = other.unwrap();
    let dropped = Verdict::Drop(dr_core::DropReason::RealRemoved);
    assert_eq!(d.process(s(3), &mut tcp4("192.0.2.7", 40000, VIP, 80, ACK)), dropped);
    assert_eq!(d.process(s(3), &mut closing(SYN)), dropped, "FIN_WAIT is not reused");
    assert_eq!(send(&mut d, 4, SYN), other, "CLOSE is");
    assert_eq!(d.counters().conns_reused(), 1);
    assert_eq!(d.real(other).unwrap().active_conns(), 1);
    assert_eq!(d.real(first).unwrap().active_conns() + d.real(first).unwrap().inactive_conns(), 0);
}
