//! Deterministic simulations with a fake clock: connection lives checked against the
//! kernel's state table and timeouts (spec §2.4, §2.5).

mod support;

use dr_core::{
    ConnState, Director, Instant, Protocol, RealConfig, RealId, SchedulerKind, ServiceConfig,
    TimeoutSettings, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

struct Sim {
    d: Director,
    real: RealId,
}

impl Sim {
    fn new() -> Self {
        // Without the estimator's 2-second timer, poll_timeout shows the connections' own.
        let mut config = dr_core::Config::new(mac(DIRECTOR_MAC), [11, 22, 33, 44]);
        config.capacity = 1024;
        config.run_estimation = false;
        let mut d = Director::new(config).unwrap();
        let web = d
            .add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr))
            .unwrap();
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
        let real =
            d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
        let dns = d
            .find_service(&dr_core::ServiceKey { protocol: Protocol::Udp, vip: ip(VIP), port: 53 })
            .unwrap();
        d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
        Self { d, real }
    }

    /// Runs the clock to `now` the way a driver does, then sends a TCP segment of the
    /// client's connection, which must be forwarded.
    fn tcp(&mut self, now: Instant, flags: u8) {
        self.tick(now);
        let verdict = self.d.process(now, &mut tcp4("192.0.2.7", 40000, VIP, 80, flags));
        assert_eq!(verdict, Verdict::Forward { real: self.real });
    }

    fn udp(&mut self, now: Instant) {
        self.tick(now);
        let verdict = self.d.process(now, &mut udp4("192.0.2.7", 5353, VIP, 53, b"q"));
        assert!(matches!(verdict, Verdict::Forward { .. }), "{verdict:?}");
    }

    /// What a driver does before each frame.
    fn tick(&mut self, now: Instant) {
        if self.d.poll_timeout().is_some_and(|at| at <= now) {
            self.d.handle_timeout(now);
        }
    }

    /// The single connection's state and expiry, if it is alive.
    fn conn(&self) -> Option<(ConnState, Instant)> {
        let mut conns = self.d.connections();
        let c = conns.next()?;
        assert!(conns.next().is_none());
        Some((c.state, c.expires))
    }

    /// The driver is never told to wake later than the connection expires.
    fn assert_wakes_by(&self, expiry: Instant) {
        let due = self.d.poll_timeout().expect("a timer is pending");
        assert!(due <= expiry, "poll_timeout {due:?} is later than the expiry {expiry:?}");
    }

    fn counts(&self) -> (u32, u32) {
        let r = self.d.real(self.real).unwrap();
        (r.active_conns(), r.inactive_conns())
    }
}

#[test]
fn tcp_life_syn_ack_data_fin_then_expiry_after_tcpfin() {
    let mut sim = Sim::new();
    sim.tcp(s(0), SYN);
    // SYN: NONE -> SYN_RECV, 60 s, active.
    assert_eq!(sim.conn(), Some((ConnState::SynRecv, s(60))));
    assert_eq!(sim.counts(), (1, 0));
    assert_eq!(sim.d.poll_timeout(), Some(s(60)), "armed at its expiry, not at NONE's");

    // ACK: SYN_RECV -> ESTABLISHED, 900 s.
    sim.tcp(s(1), ACK);
    assert_eq!(sim.conn(), Some((ConnState::Established, s(901))));
    // Data re-arms the timer on every packet.
    sim.tcp(s(100), ACK | PSH);
    assert_eq!(sim.conn(), Some((ConnState::Established, s(1000))));
    assert_eq!(sim.counts(), (1, 0));

    // FIN+ACK: ESTABLISHED -> FIN_WAIT, 120 s, inactive.
    sim.tcp(s(200), FIN | ACK);
    assert_eq!(sim.conn(), Some((ConnState::FinWait, s(320))));
    assert_eq!(sim.counts(), (0, 1));
    // The last ACK keeps FIN_WAIT and re-arms.
    sim.tcp(s(201), ACK);
    assert_eq!(sim.conn(), Some((ConnState::FinWait, s(321))));

    sim.assert_wakes_by(s(321));
    sim.tick(ms(320_999));
    assert!(sim.conn().is_some(), "alive 1 ms before tcpfin runs out");
    sim.tick(s(321));
    assert_eq!(sim.conn(), None);
    assert_eq!(sim.counts(), (0, 0));
    assert_eq!(sim.d.counters().conns_expired(), 1);
    assert_eq!(sim.d.poll_timeout(), None);
}

#[test]
fn rst_closes_for_ten_seconds() {
    let mut sim = Sim::new();
    sim.tcp(s(0), SYN);
    sim.tcp(s(1), ACK);
    sim.tcp(s(5), RST | ACK);
    assert_eq!(sim.conn(), Some((ConnState::Close, s(15))));
    assert_eq!(sim.counts(), (0, 1));
    sim.assert_wakes_by(s(15));
    sim.tick(ms(14_999));
    assert!(sim.conn().is_some());
    sim.tick(s(15));
    assert_eq!(sim.conn(), None);
    assert_eq!(sim.counts(), (0, 0));
}

#[test]
fn segment_without_flags_moves_to_close() {
    let mut sim = Sim::new();
    sim.tcp(s(0), SYN);
    sim.tcp(s(1), ACK);
    sim.tcp(s(2), PSH);
    assert_eq!(sim.conn(), Some((ConnState::Close, s(12))));
}

#[test]
fn half_open_connection_expires_after_syn_recv() {
    let mut sim = Sim::new();
    sim.tcp(s(0), SYN);
    sim.tcp(s(30), SYN); // a retransmitted SYN keeps SYN_RECV and re-arms
    assert_eq!(sim.conn(), Some((ConnState::SynRecv, s(90))));
    sim.tick(s(90));
    assert_eq!(sim.conn(), None);
    assert_eq!(sim.counts(), (0, 0));
}

#[test]
fn udp_expires_after_300_seconds_and_stays_inactive() {
    let mut sim = Sim::new();
    sim.udp(s(0));
    assert_eq!(sim.conn(), Some((ConnState::Udp, s(300))));
    let dns = sim.d.connections().next().unwrap().real;
    let counts = |sim: &Sim| {
        let r = sim.d.real(dns).unwrap();
        (r.active_conns(), r.inactive_conns())
    };
    assert_eq!(counts(&sim), (0, 1));
    sim.udp(s(100));
    assert_eq!(sim.conn(), Some((ConnState::Udp, s(400))));
    sim.tick(ms(399_999));
    assert!(sim.conn().is_some());
    sim.tick(s(400));
    assert_eq!(sim.conn(), None);
    assert_eq!(counts(&sim), (0, 0));
}

#[test]
fn packet_after_expiry_starts_a_new_connection_even_without_handle_timeout() {
    let mut sim = Sim::new();
    let _ = sim.d.process(s(0), &mut udp4("192.0.2.7", 5353, VIP, 53, b"q"));
    // No handle_timeout: the entry is found expired by the packet itself.
    assert!(matches!(
        sim.d.process(s(301), &mut udp4("192.0.2.7", 5353, VIP, 53, b"q")),
        Verdict::Forward { .. }
    ));
    assert_eq!(sim.d.counters().conns_created(), 2);
    assert_eq!(sim.d.counters().conns_expired(), 1);
    assert_eq!(sim.conn(), Some((ConnState::Udp, s(601))));
    // A TCP ACK for an expired entry is no longer forwarded.
    let _ = sim.d.process(s(0), &mut tcp4("192.0.2.8", 1, VIP, 80, SYN));
    let verdict = sim.d.process(s(400), &mut tcp4("192.0.2.8", 1, VIP, 80, ACK));
    assert_eq!(verdict, Verdict::Pass(dr_core::PassReason::NoConnection));
}

#[test]
fn set_timeouts_applies_from_the_next_packet() {
    let mut sim = Sim::new();
    sim.tcp(s(0), SYN);
    sim.tcp(s(1), ACK);
    assert_eq!(sim.conn(), Some((ConnState::Established, s(901))));
    sim.d.set_timeouts(TimeoutSettings { tcp: 60, tcpfin: 0, udp: 0 }).unwrap();
    assert_eq!(sim.conn(), Some((ConnState::Established, s(901))), "the running timer is kept");
    sim.tcp(s(2), ACK);
    assert_eq!(sim.conn(), Some((ConnState::Established, s(62))));
    assert_eq!(sim.d.timeouts().settings(), TimeoutSettings { tcp: 60, tcpfin: 120, udp: 300 });
    sim.tick(s(62));
    assert_eq!(sim.conn(), None);
    assert!(sim.d.set_timeouts(TimeoutSettings { tcp: 3_000_000, tcpfin: 0, udp: 0 }).is_err());
}

#[test]
fn time_never_runs_backwards() {
    let mut sim = Sim::new();
    sim.udp(s(100));
    // A capture with a timestamp from the past: treated as the latest time seen.
    let _ = sim.d.process(s(5), &mut udp4("192.0.2.7", 5353, VIP, 53, b"q"));
    assert_eq!(sim.conn(), Some((ConnState::Udp, s(400))));
}

#[test]
fn expiry_rounds_up_to_the_millisecond_tick() {
    let mut sim = Sim::new();
    sim.udp(Instant::from_micros(1_500));
    assert_eq!(sim.conn(), Some((ConnState::Udp, ms(300_002))));
}

#[test]
fn many_connections_expire_in_time_order_across_wheel_turns() {
    // UDP flows opened every 1.777 s over an hour, a driver waking every 0.997 s: each entry
    // must be gone exactly at its expiry, however many turns of the wheel that takes.
    let mut d = director(4096);
    let dns =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let opens: Vec<u64> = (0..2000u64).map(|i| i * 1_777).collect();
    let mut opened = 0;
    for step in (0..4000u64).map(|k| k * 997) {
        while opened < opens.len() && opens[opened] <= step {
            let at = ms(opens[opened]);
            if d.poll_timeout().is_some_and(|due| due <= at) {
                d.handle_timeout(at);
            }
            assert!(
                d.process(at, &mut udp4("192.0.2.7", opened as u16, VIP, 53, b"q")).is_transmit()
            );
            opened += 1;
        }
        if d.poll_timeout().is_some_and(|due| due <= ms(step)) {
            d.handle_timeout(ms(step));
        }
        let alive = opens[..opened].iter().filter(|&&o| o + 300_000 > step).count();
        assert_eq!(d.connection_count(), alive, "at {step} ms");
    }
    assert_eq!(d.connection_count(), 0);
}
