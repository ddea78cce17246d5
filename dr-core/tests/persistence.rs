//! Persistence templates (spec §2.7, `ip_vs_sched_persist`, `ip_vs_check_template`,
//! `ip_vs_conn_expire`), with the fake clock.

mod support;

use dr_core::{
    ConfigError, ConnKind, ConnState, Director, Instant, Persistence, Protocol, RealConfig,
    RealEdit, RealId, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// A persistent rr service on VIP:80 with three servers (newest first: .13, .12, .11).
fn setup(persistence: Persistence) -> (Director, ServiceId, [RealId; 3]) {
    let mut d = director(1024);
    let svc = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(persistence),
        )
        .unwrap();
    let reals = [0, 1, 2].map(|i| {
        let addr = ip(&format!("10.0.0.{}", 11 + i));
        d.add_real(svc, RealConfig::new(addr).with_mac(mac(REAL_MACS[i]))).unwrap()
    });
    (d, svc, reals)
}

fn real_of(verdict: Verdict) -> RealId {
    match verdict {
        Verdict::Forward { real } => real,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn templates(d: &Director) -> Vec<dr_core::ConnInfo> {
    d.connections().filter(|c| matches!(c.kind, ConnKind::Template { .. })).collect()
}

#[test]
fn a_client_keeps_its_real_server_across_connections() {
    let (mut d, _, reals) = setup(Persistence::new(360));
    let first = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    // rr would move on; the template keeps the client where its first connection went.
    for port in 1001..1010 {
        assert_eq!(real_of(d.process(s(2), &mut tcp4("192.0.2.7", port, VIP, 80, SYN))), first);
    }
    // Another client is scheduled: rr's next server.
    let other = real_of(d.process(s(2), &mut tcp4("192.0.2.8", 1000, VIP, 80, SYN)));
    assert_ne!(other, first);
    assert_eq!(d.template_count(), 2);
    assert_eq!(d.connection_count(), 13, "11 connections and 2 templates");
    // Templates are counted in persistconns, not in active/inactive, and not in conns.
    let r = d.real(first).unwrap();
    assert_eq!((r.persistent_conns(), r.active_conns(), r.inactive_conns()), (1, 10, 0));
    assert_eq!(r.stats().conns, 10);
    assert_eq!(d.counters().templates_created(), 2);
    let t = templates(&d);
    let mine = t.iter().find(|t| t.key.client == ip("192.0.2.7")).unwrap();
    assert_eq!((mine.key.client_port, mine.key.vip_port, mine.real), (0, 80, first));
    assert_eq!(mine.kind, ConnKind::Template { controlled: 10, assured: false, retired: false });
    assert!(reals.contains(&first));
}

#[test]
fn a_netmask_groups_clients() {
    let (mut d, _, _) = setup(Persistence::new(360).with_prefix_len(24));
    let first = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    assert_eq!(real_of(d.process(s(1), &mut tcp4("192.0.2.200", 1000, VIP, 80, SYN))), first);
    assert_ne!(real_of(d.process(s(1), &mut tcp4("192.0.3.7", 1000, VIP, 80, SYN))), first);
    let t = templates(&d);
    assert!(t.iter().any(|t| t.key.client == ip("192.0.2.0")), "{t:?}");
    assert!(t.iter().any(|t| t.key.client == ip("192.0.3.0")), "{t:?}");
}

#[test]
fn ipv6_prefix_groups_clients() {
    let mut d = director(64);
    let svc = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP6), 443, SchedulerKind::Rr)
                .with_persistence(Persistence::new(60).with_prefix_len(64)),
        )
        .unwrap();
    for (i, addr) in ["2001:db8::11", "2001:db8::12"].into_iter().enumerate() {
        d.add_real(svc, RealConfig::new(ip(addr)).with_mac(mac(REAL_MACS[i]))).unwrap();
    }
    let first = real_of(d.process(s(1), &mut tcp6("2001:db8:1::7", 1, VIP6, 443, SYN)));
    assert_eq!(real_of(d.process(s(1), &mut tcp6("2001:db8:1::ff:8", 2, VIP6, 443, SYN))), first);
    assert_ne!(real_of(d.process(s(1), &mut tcp6("2001:db8:2::7", 1, VIP6, 443, SYN))), first);
    assert!(templates(&d).iter().any(|t| t.key.client == ip("2001:db8:1::")));
}

#[test]
fn a_template_expires_only_after_its_last_connection() {
    let (mut d, _, _) = setup(Persistence::new(30));
    let real = real_of(d.process(s(0), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    let _ = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, ACK));
    assert!(matches!(templates(&d)[0].kind, ConnKind::Template { assured: true, .. }));
    // The template's own timeout (30 s from the connection's start) passes: it still
    // controls an established connection, so it is re-armed for 60 s at a time.
    d.handle_timeout(s(30));
    assert_eq!(d.template_count(), 1);
    assert_eq!(templates(&d)[0].expires, s(90));
    // While it lives, a new connection from the client goes to the same server, and re-arms
    // the template for 60 s: its timeout became 60 s when it outlived its own.
    assert_eq!(real_of(d.process(s(40), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN))), real);
    assert_eq!(templates(&d)[0].expires, s(100));
    // Both connections end (RST: CLOSE, 10 s).
    let _ = d.process(s(41), &mut tcp4("192.0.2.7", 1001, VIP, 80, ACK));
    let _ = d.process(s(50), &mut tcp4("192.0.2.7", 1000, VIP, 80, RST));
    let _ = d.process(s(50), &mut tcp4("192.0.2.7", 1001, VIP, 80, RST));
    d.handle_timeout(s(60));
    assert_eq!(d.connection_count(), 1, "only the template is left");
    assert!(matches!(templates(&d)[0].kind, ConnKind::Template { controlled: 0, .. }));
    d.handle_timeout(s(99));
    assert_eq!(d.template_count(), 1);
    d.handle_timeout(s(100));
    assert_eq!(d.template_count(), 0);
    assert_eq!(d.real(real).unwrap().persistent_conns(), 0);
    assert_eq!(d.counters().templates_expired(), 1);
}

#[test]
fn an_idle_template_expires_at_its_timeout() {
    let (mut d, _, _) = setup(Persistence::new(300));
    // A connection that ends quickly: the template outlives it by its timeout.
    for flags in [SYN, ACK, RST] {
        let _ = d.process(s(0), &mut tcp4("192.0.2.7", 1000, VIP, 80, flags));
    }
    d.handle_timeout(s(10));
    assert_eq!(d.connection_count(), 1);
    d.handle_timeout(Instant::from_millis(299_999));
    assert_eq!(d.template_count(), 1);
    d.handle_timeout(s(300));
    assert_eq!(d.connection_count(), 0);
}

#[test]
fn quiesced_and_overloaded_servers_keep_their_clients() {
    let (mut d, _, _) = setup(Persistence::new(360));
    let real = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    let edit = RealEdit::of(d.real(real).unwrap()).with_weight(0).with_thresholds(1, 0);
    d.edit_real(real, edit).unwrap();
    // Quiesced (weight 0), and with an upper threshold of 1 also overloaded: no scheduler
    // would pick it, but the template still sends the client there.
    assert_eq!(real_of(d.process(s(2), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN))), real);
    assert!(d.real(real).unwrap().is_overloaded());
    // A new client never gets it.
    for port in 0..6 {
        assert_ne!(real_of(d.process(s(2), &mut tcp4("192.0.2.9", port, VIP, 80, SYN))), real);
    }
}

#[test]
fn expire_quiescent_template_retires_templates_of_weight_zero_servers() {
    let mut config = dr_core::Config::new(mac(DIRECTOR_MAC), [1, 2, 3, 4]);
    config.expire_quiescent_template = true;
    let mut d = Director::new(config).unwrap();
    let svc = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(Persistence::new(360)),
        )
        .unwrap();
    let a = d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let b = d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    let first = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    d.edit_real(first, RealEdit::of(d.real(first).unwrap()).with_weight(0)).unwrap();
    let other = if first == a { b } else { a };
    assert_eq!(real_of(d.process(s(2), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN))), other);
    // The old template is retired (port 65535, never found again) and lives on until it
    // expires; the new one points at the other server.
    let t = templates(&d);
    assert_eq!(t.len(), 2);
    let retired = t.iter().find(|t| t.real == first).unwrap();
    assert_eq!(retired.key.vip_port, 65535);
    assert!(matches!(retired.kind, ConnKind::Template { retired: true, .. }));
    // The connection it controls keeps working, on its server.
    assert_eq!(real_of(d.process(s(3), &mut tcp4("192.0.2.7", 1000, VIP, 80, ACK))), first);
}

#[test]
fn a_removed_server_loses_its_templates() {
    let (mut d, _, _) = setup(Persistence::new(360));
    let first = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    d.remove_real(first).unwrap();
    let next = real_of(d.process(s(2), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN)));
    assert_ne!(next, first);
    assert_eq!(templates(&d).iter().filter(|t| t.key.vip_port == 80).count(), 1);
}

#[test]
fn port_zero_services_need_persistence_and_take_every_port() {
    let mut d = director(64);
    let any = ServiceConfig::new(Protocol::Tcp, ip(VIP), 0, SchedulerKind::Rr);
    assert!(matches!(d.add_service(any), Err(ConfigError::PortZero(_))));
    let svc = d.add_service(any.with_persistence(Persistence::new(120))).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    // An exact service on the same VIP still wins for its port.
    let web = d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr));
    let web = web.unwrap();
    let web_real = d.add_real(web, RealConfig::new(ip("10.0.0.13")).with_mac(mac(REAL_MACS[2])));
    let web_real = web_real.unwrap();
    assert_eq!(real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1, VIP, 80, SYN))), web_real);
    // Every other port goes to one server per client: ftp, https and ssh alike.
    let r = real_of(d.process(s(1), &mut tcp4("192.0.2.7", 2, VIP, 21, SYN)));
    assert_eq!(real_of(d.process(s(1), &mut tcp4("192.0.2.7", 3, VIP, 443, SYN))), r);
    assert_eq!(real_of(d.process(s(1), &mut tcp4("192.0.2.7", 4, VIP, 22, SYN))), r);
    // One template, with port 0.
    let t = templates(&d);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].key.vip_port, 0);
    assert_eq!(
        d.set_persistence(svc, None),
        Err(ConfigError::PortZero(d.service(svc).unwrap().key()))
    );
}

#[test]
fn persistence_settings_are_validated() {
    let mut d = director(64);
    for p in [
        Persistence::new(0),
        Persistence::new(31 * 86400 + 1),
        Persistence::new(1).with_prefix_len(129),
    ] {
        let svc =
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr).with_persistence(p);
        let err = d.add_service(svc).unwrap_err();
        assert!(matches!(err, ConfigError::Persistence { .. }), "{err}");
        assert!(err.to_string().contains("persistence"), "{err}");
    }
    // IPv6 takes prefixes up to 128.
    let svc = ServiceConfig::new(Protocol::Tcp, ip(VIP6), 80, SchedulerKind::Rr)
        .with_persistence(Persistence::new(1).with_prefix_len(96));
    let id = d.add_service(svc).unwrap();
    assert_eq!(d.set_persistence(id, None), Ok(()));
    assert_eq!(d.service(id).unwrap().persistence(), None);
}

#[test]
fn a_persistent_connection_in_time_wait_is_not_rescheduled() {
    // conn_reuse_mode leaves connections controlled by a template alone: the SYN follows
    // the state table on the old entry (TIME_WAIT -> SYN_RECV), same server.
    let (mut d, _, _) = setup(Persistence::new(360));
    let real = real_of(d.process(s(0), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN)));
    let _ = d.process(s(0), &mut tcp4("192.0.2.7", 1000, VIP, 80, FIN));
    let c = d.connections().find(|c| c.key.client_port == 1000).unwrap();
    assert_eq!(c.state, ConnState::TimeWait);
    assert_eq!(real_of(d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN))), real);
    assert_eq!(d.counters().conns_reused(), 0);
    assert_eq!(d.counters().conns_created(), 1);
}

#[test]
fn listing_shows_persistence_and_mask() {
    let (d, _, _) = setup(Persistence::new(360).with_prefix_len(24));
    let text = d.listing(dr_core::ListingFormat::Plain).to_string();
    assert!(text.contains("TCP  10.0.0.100:80 rr persistent 360 mask 255.255.255.0\n"), "{text}");
    let (d, _, _) = setup(Persistence::new(50));
    let text = d.listing(dr_core::ListingFormat::Plain).to_string();
    assert!(text.contains("TCP  10.0.0.100:80 rr persistent 50\n"), "{text}");
}

#[test]
fn a_late_handle_timeout_expires_in_time_order() {
    // The template is due at 30 s while its connection lives until 32 s... from the
    // template's own expiry it would be re-armed, but the connection was reset at 22 s
    // (CLOSE, gone at 32 s) and the template re-armed to 51 s by a connection at 21 s. One
    // call at 120 s must reach what the kernel's timers reach one by one: both gone.
    let (mut d, _, _) = setup(Persistence::new(30));
    let _ = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN));
    let _ = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, ACK));
    let _ = d.process(s(2), &mut tcp4("192.0.2.7", 1000, VIP, 80, RST));
    let _ = d.process(s(21), &mut tcp4("192.0.2.7", 1001, VIP, 80, SYN));
    let _ = d.process(s(21), &mut tcp4("192.0.2.7", 1001, VIP, 80, ACK));
    let _ = d.process(s(22), &mut tcp4("192.0.2.7", 1001, VIP, 80, RST));
    d.handle_timeout(s(120));
    assert_eq!(d.connection_count(), 0);
    // Whereas a template whose connection outlives it is kept, 60 s from its own expiry.
    let (mut d, _, _) = setup(Persistence::new(30));
    let _ = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, SYN));
    let _ = d.process(s(1), &mut tcp4("192.0.2.7", 1000, VIP, 80, ACK));
    d.handle_timeout(s(40));
    assert_eq!(templates(&d)[0].expires, s(91));
}
