//! One-packet scheduling (`ipvsadm -o`, `IP_VS_SVC_F_ONEPACKET`), as the kernel does it:
//! `ip_vs_schedule` / `ip_vs_sched_persist` give a UDP datagram to an ops service an entry
//! flagged `IP_VS_CONN_F_ONE_PACKET`, which `ip_vs_conn_hash` never hashes and
//! `ip_vs_conn_put` expires at once. So each datagram is scheduled on its own (rr
//! alternates per datagram of one flow), counted as a connection with its packet and bytes,
//! and leaves nothing in the table; a template of a persistent ops service is still made
//! and used; a TCP service takes the flag and behaves as without it; the entry is never
//! synced (its template is: `ip_vs_sync_conn`'s `control:` step).
//!
//! Expected values are worked from those rules by hand: rr walks the real servers newest
//! added first, so with .11 added before .12 its picks are .12, .11, .12, …

mod support;

use dr_core::sync::wire::{self, SyncRecord};
use dr_core::sync::{SyncConfig, SyncMode};
use dr_core::{
    Config, ConnState, Director, DropReason, FlowKey, Instant, ListingFormat, Persistence,
    Protocol, RealConfig, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";
/// REAL_MACS[0] is .11's, REAL_MACS[1] .12's.
const R11: [u8; 6] = REAL_MACS[0];
const R12: [u8; 6] = REAL_MACS[1];

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn config(capacity: usize) -> Config {
    let mut config = Config::new(mac(DIRECTOR_MAC), [3, 1, 4, 1]);
    config.capacity = capacity;
    config
}

/// `service` on `d` with real servers .11 then .12 (or ::11, ::12 for an IPv6 VIP).
fn add(d: &mut Director, service: ServiceConfig) -> ServiceId {
    let v6 = service.key.vip.is_ipv6();
    let id = d.add_service(service).unwrap();
    for (i, real) in ["11", "12"].iter().enumerate() {
        let addr = if v6 { format!("2001:db8::{real}") } else { format!("10.0.0.{real}") };
        d.add_real(id, RealConfig::new(ip(&addr)).with_mac(mac(REAL_MACS[i]))).unwrap();
    }
    id
}

fn udp_service(vip: &str, ops: bool) -> ServiceConfig {
    ServiceConfig::new(Protocol::Udp, ip(vip), 53, SchedulerKind::Rr).with_one_packet(ops)
}

/// The MAC a frame was sent to, after it was forwarded.
fn forward(d: &mut Director, now: Instant, mut frame: Vec<u8>) -> [u8; 6] {
    let verdict = d.process(now, &mut frame);
    assert!(matches!(verdict, Verdict::Forward { .. }), "{verdict:?}");
    frame[0..6].try_into().unwrap()
}

#[test]
fn rr_picks_afresh_for_each_datagram_of_one_flow_and_keeps_nothing() {
    for (vip, client) in [(VIP, "192.0.2.7"), (VIP6, "2001:db8:1::7")] {
        let mut d = Director::new(config(64)).unwrap();
        let svc = add(&mut d, udp_service(vip, true));
        let frame = |payload: &[u8]| {
            if vip == VIP {
                udp4(client, 5353, vip, 53, payload)
            } else {
                udp6(client, 5353, vip, 53, payload)
            }
        };
        let sent: Vec<[u8; 6]> = (0..6).map(|i| forward(&mut d, at(i), frame(b"query"))).collect();
        assert_eq!(sent, [R12, R11, R12, R11, R12, R11], "{vip}");
        assert_eq!((d.connection_count(), d.template_count()), (0, 0), "{vip}");
        assert_eq!(d.connections().count(), 0);
        // The connection listing (ipvsadm -L -c) has its title only.
        let listing = d.connection_listing(at(10)).to_string();
        assert_eq!(listing.lines().count(), 2, "{listing}");
        // Each datagram a connection, a packet and its bytes: IP header + 8 + 5.
        let header = if vip == VIP { 20 } else { 40 };
        let s = d.service(svc).unwrap().stats();
        assert_eq!((s.conns, s.inpkts, s.inbytes), (6, 6, 6 * (header + 8 + 5)), "{vip}");
        for &real in d.service(svc).unwrap().reals() {
            let r = d.real(real).unwrap();
            assert_eq!((r.stats().conns, r.stats().inpkts), (3, 3), "{vip}");
            assert_eq!((r.active_conns(), r.inactive_conns(), r.persistent_conns()), (0, 0, 0));
        }
        assert_eq!((d.totals().conns, d.totals().inpkts), (6, 6));
        let c = d.counters();
        assert_eq!((c.forwarded(), c.one_packet_scheduled()), (6, 6));
        assert_eq!((c.conns_created(), c.conns_expired()), (0, 0));
    }
}

#[test]
fn without_ops_the_flow_keeps_its_server_and_its_entry() {
    let mut d = Director::new(config(64)).unwrap();
    add(&mut d, udp_service(VIP, false));
    let sent: Vec<[u8; 6]> =
        (0..4).map(|i| forward(&mut d, at(i), udp4("192.0.2.7", 5353, VIP, 53, b"q"))).collect();
    assert_eq!(sent, [R12; 4]);
    assert_eq!(d.connection_count(), 1);
    assert_eq!(d.counters().one_packet_scheduled(), 0);
}

#[test]
fn nothing_is_left_to_expire() {
    let mut c = config(64);
    c.run_estimation = false;
    let mut d = Director::new(c).unwrap();
    add(&mut d, udp_service(VIP, true));
    forward(&mut d, at(0), udp4("192.0.2.7", 5353, VIP, 53, b"q"));
    // No entry, no timer: nothing for housekeeping to do.
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn lc_sees_no_connection_left_behind() {
    // wlc on an ops service: every entry is gone before the next datagram, so both servers
    // always have 0 connections and the first of the list (the newest, .12) wins each time
    // (ip_vs_wlc_schedule keeps the first of equal overheads).
    let mut d = Director::new(config(64)).unwrap();
    add(
        &mut d,
        ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Wlc).with_one_packet(true),
    );
    for i in 0..4 {
        let sent = forward(&mut d, at(i), udp4("192.0.2.7", 6000 + i as u16, VIP, 53, b"q"));
        assert_eq!(sent, R12);
    }
}

#[test]
fn an_upper_threshold_of_one_never_stays_overloaded() {
    // ip_vs_bind_dest sets OVERLOAD at 1 of u_threshold 1; ip_vs_unbind_dest clears it at
    // 0 (0 * 4 < 1 * 3): the server takes every datagram.
    let mut d = Director::new(config(64)).unwrap();
    let svc = d.add_service(udp_service(VIP, true)).unwrap();
    let only = RealConfig::new(ip("10.0.0.11")).with_mac(mac(R11)).with_thresholds(1, 0);
    let real = d.add_real(svc, only).unwrap();
    for i in 0..5 {
        assert_eq!(forward(&mut d, at(i), udp4("192.0.2.7", 5353, VIP, 53, b"q")), R11);
    }
    assert!(!d.real(real).unwrap().is_overloaded());
}

#[test]
fn a_flood_of_sources_leaves_the_table_empty_and_is_never_dropped_for_room() {
    let capacity = 64;
    let mut d = Director::new(config(capacity)).unwrap();
    add(&mut d, udp_service(VIP, true));
    // A second UDP service, without ops, fills the table with proven entries (two
    // datagrams each): nothing can be evicted any more.
    add(&mut d, ServiceConfig::new(Protocol::Udp, ip("10.0.0.101"), 53, SchedulerKind::Rr));
    for i in 0..capacity as u16 {
        for _ in 0..2 {
            forward(&mut d, at(0), udp4("198.51.100.1", 1000 + i, "10.0.0.101", 53, b"q"));
        }
    }
    assert_eq!(d.connection_count(), capacity);
    let mut refused = udp4("198.51.100.2", 1, "10.0.0.101", 53, b"q");
    assert_eq!(d.process(at(1), &mut refused), Verdict::Drop(DropReason::ConnTableFull));
    // 20 000 datagrams from 20 000 sources to the ops service: all forwarded, alternating.
    let mut to_12 = 0u32;
    for i in 0..20_000u32 {
        let client = format!("203.0.{}.{}", i / 250, i % 250 + 1);
        let sent = forward(&mut d, at(2), udp4(&client, (i % 60_000) as u16 + 1, VIP, 53, b"x"));
        to_12 += u32::from(sent == R12);
        assert_eq!(sent, if i % 2 == 0 { R12 } else { R11 }, "datagram {i}");
    }
    assert_eq!(to_12, 10_000);
    assert_eq!(d.connection_count(), capacity, "the ops datagrams took no entry");
    let c = d.counters();
    assert_eq!(c.drops(DropReason::ConnTableFull), 1, "only the non-ops datagram");
    assert_eq!(c.conns_evicted(), 0);
    assert_eq!(c.one_packet_scheduled(), 20_000);
}

#[test]
fn the_packet_path_of_an_ops_service_never_allocates() {
    let mut d = Director::new(config(64)).unwrap();
    add(&mut d, udp_service(VIP, true));
    add(
        &mut d,
        udp_service("10.0.0.101", true).with_persistence(Persistence::new(60).with_prefix_len(24)),
    );
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for i in 0..2000u16 {
        let client = format!("192.0.{}.{}", i / 200, i % 200 + 1);
        frames.push(udp4(&client, i, VIP, 53, b"q"));
        frames.push(udp4(&client, i, "10.0.0.101", 53, b"q"));
        if i % 50 == 0 {
            frames.extend(udp4_fragments(&client, i, VIP, 53, &[7; 100], i, 48));
        }
    }
    let info = allocation_counter::measure(|| {
        for (n, frame) in frames.iter_mut().enumerate() {
            let verdict = d.process(at(n as u64), frame);
            assert!(verdict.is_transmit());
        }
        d.handle_timeout(at(200_000));
    });
    assert_eq!(info.count_total, 0);
}

#[test]
fn a_persistent_ops_service_makes_and_uses_its_template() {
    // ip_vs_sched_persist: the template is made (scheduled once) and hashed as usual; each
    // datagram's entry follows it, is one-packet, and re-arms it (ip_vs_conn_put(ct)).
    let mut c = config(64);
    c.run_estimation = false;
    let mut d = Director::new(c).unwrap();
    let svc = add(&mut d, udp_service(VIP, true).with_persistence(Persistence::new(360)));
    let a = "192.0.2.7";
    let b = "192.0.2.8";
    for port in [1000, 1001, 1002, 1000] {
        assert_eq!(forward(&mut d, at(0), udp4(a, port, VIP, 53, b"q")), R12);
    }
    // Another client: rr's next pick, .11, for all of its datagrams.
    for port in [2000, 2001] {
        assert_eq!(forward(&mut d, at(0), udp4(b, port, VIP, 53, b"q")), R11);
    }
    assert_eq!((d.connection_count(), d.template_count()), (2, 2), "the templates only");
    let templates: Vec<_> = d.connections().collect();
    assert!(templates.iter().all(|t| t.key.client_port == 0 && t.key.vip_port == 53));
    let s = d.service(svc).unwrap().stats();
    assert_eq!((s.conns, s.inpkts), (6, 6), "a connection per datagram");
    for &real in d.service(svc).unwrap().reals() {
        let r = d.real(real).unwrap();
        assert_eq!((r.active_conns(), r.inactive_conns(), r.persistent_conns()), (0, 0, 1));
    }
    assert_eq!(d.counters().templates_created(), 2);
    // A's datagram at 300 s re-arms its template to 660 s; B's still ends at 360 s.
    assert_eq!(forward(&mut d, at(300_000), udp4(a, 1003, VIP, 53, b"q")), R12);
    d.handle_timeout(at(361_000));
    let left: Vec<FlowKey> = d.connections().map(|c| c.key).collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].client, ip(a));
    d.handle_timeout(at(661_000));
    assert_eq!(d.connection_count(), 0);
    assert_eq!(d.counters().templates_expired(), 2);
    // A fresh template after expiry: rr goes on from where it was (.11 was last: .12).
    assert_eq!(forward(&mut d, at(700_000), udp4(b, 2002, VIP, 53, b"q")), R12);
}

#[test]
fn a_removed_server_s_template_is_replaced_as_ip_vs_check_template_says() {
    let mut d = Director::new(config(64)).unwrap();
    let svc = add(&mut d, udp_service(VIP, true).with_persistence(Persistence::new(360)));
    assert_eq!(forward(&mut d, at(0), udp4("192.0.2.7", 1, VIP, 53, b"q")), R12);
    let twelve = d.service(svc).unwrap().reals()[0];
    assert_eq!(d.real(twelve).unwrap().addr(), ip("10.0.0.12"));
    d.remove_real(twelve).unwrap();
    // The template names a server no longer in the service: retired, and a new one made.
    assert_eq!(forward(&mut d, at(1), udp4("192.0.2.7", 2, VIP, 53, b"q")), R11);
    assert_eq!(d.counters().templates_created(), 2);
}

#[test]
fn a_tcp_service_takes_the_flag_and_behaves_as_without_it() {
    // The kernel sets IP_VS_CONN_F_ONE_PACKET only for IPPROTO_UDP: a TCP service with the
    // flag makes its entries, follows its state table and keeps a flow on its server.
    let run = |ops: bool| {
        let mut d = Director::new(config(64)).unwrap();
        add(
            &mut d,
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr).with_one_packet(ops),
        );
        let mut sent = Vec::new();
        for flags in [SYN, ACK, ACK | PSH, FIN | ACK] {
            sent.push(forward(&mut d, at(0), tcp4("192.0.2.7", 40000, VIP, 80, flags)));
        }
        sent.push(forward(&mut d, at(0), tcp4("192.0.2.7", 40001, VIP, 80, SYN)));
        let conns: Vec<(FlowKey, ConnState)> = d.connections().map(|c| (c.key, c.state)).collect();
        let stats = *d.totals();
        (sent, conns.len(), d.connection_listing(at(0)).to_string(), stats.conns, stats.inpkts)
    };
    let with = run(true);
    assert_eq!(with, run(false));
    assert_eq!(with.0, [R12, R12, R12, R12, R11]);
    assert_eq!((with.1, with.3, with.4), (2, 2, 5));
}

#[test]
fn fragments_of_an_ops_datagram_follow_its_first_fragment() {
    // The kernel schedules the reassembled datagram once; dr does not reassemble, so the
    // first fragment is scheduled and the later ones follow it (the fragment table, not
    // the connection table, remembers where it went). The next datagram of the same flow is
    // scheduled afresh: rr sends it to the other server.
    for v6 in [false, true] {
        let mut d = Director::new(config(64)).unwrap();
        let svc = add(&mut d, udp_service(if v6 { VIP6 } else { VIP }, true));
        let payload: Vec<u8> = (0..=255).cycle().take(3000).collect();
        let mut datagrams = Vec::new();
        for ident in [1u16, 2, 3] {
            let fragments = if v6 {
                udp6_fragments("2001:db8:1::7", 5353, VIP6, 53, &payload, u32::from(ident), 1232)
            } else {
                udp4_fragments("192.0.2.7", 5353, VIP, 53, &payload, ident, 1480)
            };
            assert_eq!(fragments.len(), 3);
            let sent: Vec<[u8; 6]> =
                fragments.into_iter().map(|f| forward(&mut d, at(0), f)).collect();
            datagrams.push(sent);
        }
        assert_eq!(datagrams, [[R12; 3], [R11; 3], [R12; 3]], "v6 {v6}");
        assert_eq!(d.connection_count(), 0);
        let s = d.service(svc).unwrap().stats();
        let header = if v6 { 40 } else { 20 };
        assert_eq!((s.conns, s.inpkts), (3, 3), "one connection and packet per datagram");
        assert_eq!(s.inbytes, 3 * (header + 8 + 3000));
        assert_eq!(d.counters().fragments_forwarded(), 6);
    }
}

#[test]
fn a_later_fragment_without_its_first_is_dropped_as_for_any_service() {
    let mut d = Director::new(config(64)).unwrap();
    add(&mut d, udp_service(VIP, true));
    let fragments = udp4_fragments("192.0.2.7", 5353, VIP, 53, &[1; 3000], 9, 1480);
    let mut later = fragments[1].clone();
    assert_eq!(d.process(at(0), &mut later), Verdict::Drop(DropReason::FragmentUnmatched));
}

#[test]
fn an_entry_made_before_the_flag_keeps_its_flow() {
    // The kernel looks an entry up before it schedules: an entry made while the service had
    // no -o still carries its flow; other flows are scheduled per datagram; with -o cleared
    // again (ipvsadm -E without -o), datagrams make entries again.
    let mut d = Director::new(config(64)).unwrap();
    let svc = add(&mut d, udp_service(VIP, false));
    assert_eq!(forward(&mut d, at(0), udp4("192.0.2.7", 1, VIP, 53, b"q")), R12);
    d.set_one_packet(svc, true).unwrap();
    assert!(d.service(svc).unwrap().one_packet());
    for i in 0..3 {
        assert_eq!(forward(&mut d, at(i), udp4("192.0.2.7", 1, VIP, 53, b"q")), R12);
    }
    let other: Vec<[u8; 6]> =
        (0..3).map(|i| forward(&mut d, at(i), udp4("192.0.2.8", 1, VIP, 53, b"q"))).collect();
    assert_eq!(other, [R11, R12, R11]);
    assert_eq!(d.connection_count(), 1);
    d.set_one_packet(svc, false).unwrap();
    forward(&mut d, at(5), udp4("192.0.2.8", 1, VIP, 53, b"q"));
    assert_eq!(d.connection_count(), 2);
    assert!(d.set_one_packet(ServiceId::from_index(9), true).is_err());
}

#[test]
fn listings_show_ops_where_ipvsadm_does() {
    let mut d = Director::new(config(4096)).unwrap();
    add(&mut d, udp_service(VIP, true).with_persistence(Persistence::new(360).with_prefix_len(24)));
    add(
        &mut d,
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr).with_one_packet(true),
    );
    add(&mut d, udp_service("10.0.0.101", true));
    // ipvsadm 1.31 print_service_entry: " ops" after the persistence, for any service
    // with the flag; -S: " -o" after -p/-M (and before -b).
    let plain = "IP Virtual Server version 1.2.1 (size=4096)\n\
                 Prot LocalAddress:Port Scheduler Flags\n  \
                 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
                 TCP  10.0.0.100:80 rr ops\n  \
                 -> 10.0.0.11:80                 Route   1      0          0         \n  \
                 -> 10.0.0.12:80                 Route   1      0          0         \n\
                 UDP  10.0.0.100:53 rr persistent 360 mask 255.255.255.0 ops\n  \
                 -> 10.0.0.11:53                 Route   1      0          0         \n  \
                 -> 10.0.0.12:53                 Route   1      0          0         \n\
                 UDP  10.0.0.101:53 rr ops\n  \
                 -> 10.0.0.11:53                 Route   1      0          0         \n  \
                 -> 10.0.0.12:53                 Route   1      0          0         \n";
    assert_eq!(d.listing(ListingFormat::Plain).to_string(), plain);
    let rules = "-A -t 10.0.0.100:80 -s rr -o\n\
                 -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1\n\
                 -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1\n\
                 -A -u 10.0.0.100:53 -s rr -p 360 -M 255.255.255.0 -o\n\
                 -a -u 10.0.0.100:53 -r 10.0.0.11:53 -g -w 1\n\
                 -a -u 10.0.0.100:53 -r 10.0.0.12:53 -g -w 1\n\
                 -A -u 10.0.0.101:53 -s rr -o\n\
                 -a -u 10.0.0.101:53 -r 10.0.0.11:53 -g -w 1\n\
                 -a -u 10.0.0.101:53 -r 10.0.0.12:53 -g -w 1\n";
    assert_eq!(d.listing(ListingFormat::Rules).to_string(), rules);
    let json = d.listing(ListingFormat::Json).to_string();
    assert_eq!(json.matches(r#""ops":true"#).count(), 3, "{json}");
    assert!(json.contains(r#""persistent":360,"netmask":24,"ops":true,"#), "{json}");
    // The flag sits after the scheduler flags in the rules: -o, then -b.
    let mut sh = Director::new(config(4096)).unwrap();
    let flags = dr_core::SchedFlags { sh_port: true, ..dr_core::SchedFlags::NONE };
    add(
        &mut sh,
        ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Sh)
            .with_flags(flags)
            .with_one_packet(true),
    );
    let rules = sh.listing(ListingFormat::Rules).to_string();
    assert!(rules.starts_with("-A -u 10.0.0.100:53 -s sh -o -b sh-port\n"), "{rules}");
    let plain = sh.listing(ListingFormat::Plain).to_string();
    assert!(plain.contains("UDP  10.0.0.100:53 sh (sh-port) ops\n"), "{plain}");
    let no_ops = Director::new(config(16)).unwrap().listing(ListingFormat::Json).to_string();
    assert!(!no_ops.contains("ops"));
}

/// The records of every datagram the director has ready.
fn sync_records(d: &mut Director, now: Instant) -> Vec<SyncRecord> {
    let mut out = Vec::new();
    while let Some(m) = d.poll_sync(now) {
        let m = wire::parse(m).unwrap();
        out.extend(m.records().map(|e| e.unwrap().record));
    }
    out
}

#[test]
fn the_sync_master_never_sends_a_one_packet_entry() {
    // A plain UDP connection goes out at its third packet (sync_threshold 3 50); an ops
    // datagram's entry never does, at any count.
    let mut plain = Director::new(config(64)).unwrap();
    add(&mut plain, udp_service(VIP, false));
    plain.start_sync(SyncConfig::new(SyncMode::Master)).unwrap();
    let mut ops = Director::new(config(64)).unwrap();
    add(&mut ops, udp_service(VIP, true));
    ops.start_sync(SyncConfig::new(SyncMode::Master)).unwrap();
    for d in [&mut plain, &mut ops] {
        for i in 0..120 {
            forward(d, at(i), udp4("192.0.2.7", 5353, VIP, 53, b"q"));
        }
    }
    assert_eq!(sync_records(&mut plain, at(5000)).len(), 3, "packets 3, 53 and 103");
    assert!(sync_records(&mut ops, at(5000)).is_empty());
    assert_eq!(ops.sync_counters().records_sent, 0);
    // Asked for a bulk resync, it has nothing to send either: its table is empty.
    let mut asking = Director::new(config(64)).unwrap();
    asking.start_sync(SyncConfig::new(SyncMode::Backup)).unwrap();
    assert!(asking.request_resync(at(6000)));
    let request = asking.poll_sync(at(6000)).unwrap().to_vec();
    ops.import_sync(at(6000), &request).unwrap();
    assert!(ops.sync_bulk_pending());
    let mut sent = Vec::new();
    for ms in (6000..9000).step_by(100) {
        sent.extend(sync_records(&mut ops, at(ms)));
    }
    // Only the answer's start and end marks (protocol-0 records, which a kernel skips).
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|r| r.protocol == 0), "{sent:?}");
    assert_eq!(ops.sync_counters().records_sent, 2);
}

#[test]
fn the_sync_master_sends_the_template_of_each_ops_datagram() {
    // ip_vs_sync_conn (v1): ONE_PACKET goes to control:, where the template is sent with
    // its own count, which sync_threshold does not gate: once per datagram.
    let mut d = Director::new(config(64)).unwrap();
    add(&mut d, udp_service(VIP, true).with_persistence(Persistence::new(360)));
    d.start_sync(SyncConfig::new(SyncMode::Master)).unwrap();
    for port in [1, 2, 3, 4] {
        forward(&mut d, at(0), udp4("192.0.2.7", port, VIP, 53, b"q"));
    }
    let sent = sync_records(&mut d, at(5000));
    assert_eq!(sent.len(), 4);
    for r in &sent {
        assert!(r.is_template());
        assert_eq!(r.flags, 0x1183, "TEMPLATE | INACTIVE | NOOUTPUT | DROUTE");
        assert_eq!((r.protocol, r.client_port, r.vip_port), (17, 0, 53));
        assert_eq!((r.state, r.timeout), (0, Some(360)), "UDP: never assured in DR");
        assert_eq!(r.client, ip("192.0.2.7"));
    }
}

#[test]
fn a_persistent_ops_service_in_a_full_table_needs_room_only_for_a_new_template() {
    let capacity = 8;
    let mut d = Director::new(config(capacity)).unwrap();
    add(&mut d, udp_service(VIP, true).with_persistence(Persistence::new(360)));
    add(&mut d, ServiceConfig::new(Protocol::Udp, ip("10.0.0.101"), 53, SchedulerKind::Rr));
    // One template, then the rest of the table proven connections of the other service.
    assert_eq!(forward(&mut d, at(0), udp4("192.0.2.7", 1, VIP, 53, b"q")), R12);
    for i in 0..(capacity - 1) as u16 {
        for _ in 0..2 {
            forward(&mut d, at(0), udp4("198.51.100.1", 1000 + i, "10.0.0.101", 53, b"q"));
        }
    }
    assert_eq!(d.connection_count(), capacity);
    // The client with a template: its datagrams need no room at all. Its template was
    // proven by its second datagram, so nothing can be evicted for a new one.
    for port in 2..50 {
        assert_eq!(forward(&mut d, at(1), udp4("192.0.2.7", port, VIP, 53, b"q")), R12);
    }
    // A new client needs a template, and there is no room for one: dropped, as any new
    // entry of a full table of proven entries is.
    let mut new = udp4("192.0.2.8", 1, VIP, 53, b"q");
    assert_eq!(d.process(at(2), &mut new), Verdict::Drop(DropReason::ConnTableFull));
    assert_eq!(d.connection_count(), capacity);
}

#[test]
fn an_icmp_error_about_an_ops_flow_finds_no_entry_and_goes_to_the_host() {
    // ip_vs_in_icmp looks the quoted flow up among the entries; a one-packet entry is never
    // hashed, so the error is not relayed (NF_ACCEPT: the host's). A flow of a service
    // without ops has its entry, and its error is relayed to its server.
    let mut d = Director::new(config(64)).unwrap();
    add(&mut d, udp_service(VIP, true));
    add(&mut d, udp_service("10.0.0.101", false));
    forward(&mut d, at(0), udp4("192.0.2.7", 5353, VIP, 53, b"q"));
    forward(&mut d, at(0), udp4("192.0.2.7", 5353, "10.0.0.101", 53, b"q"));
    // A reply quoted back, as a router on the way to the client returns it.
    let quoted = |vip: &str| datagram(&udp4(vip, 53, "192.0.2.7", 5353, b"answer"))[..28].to_vec();
    let mut ops = icmp4_error("192.0.2.254", VIP, 3, 3, &quoted(VIP));
    assert_eq!(d.process(at(1), &mut ops), Verdict::Pass(dr_core::PassReason::Icmp));
    let mut plain = icmp4_error("192.0.2.254", "10.0.0.101", 3, 3, &quoted("10.0.0.101"));
    assert!(matches!(d.process(at(1), &mut plain), Verdict::Forward { .. }));
    assert_eq!(d.counters().icmp_relayed(), 1);
}
