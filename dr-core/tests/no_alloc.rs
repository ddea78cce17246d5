//! The packet path allocates nothing: a counting global allocator (allocation-counter)
//! watches `process`, `process_burst`, `handle_timeout`, `poll_timeout` and `poll_neighbour_request` over
//! every kind of frame (persistence templates, fragments, ICMP errors and pings included),
//! a full table with evictions, churn, and the rate estimator's samples.

mod support;

use dr_core::{Instant, Protocol, RealConfig, SchedulerKind, ServiceConfig};
use support::*;

/// Runs `f` counting the allocations this thread makes.
fn watched<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let mut result = None;
    let info = allocation_counter::measure(|| result = Some(f()));
    (result.expect("the closure ran"), info.count_total)
}

#[test]
fn the_packet_path_never_allocates() {
    let capacity = 512;
    let mut d = director(capacity);
    let web = d
        .add_service(ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, SchedulerKind::Rr))
        .unwrap();
    let dns = d
        .add_service(ServiceConfig::new(Protocol::Udp, ip("10.0.0.100"), 53, SchedulerKind::Rr))
        .unwrap();
    let web6 = d
        .add_service(ServiceConfig::new(Protocol::Tcp, ip("2001:db8::100"), 80, SchedulerKind::Rr))
        .unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.12"))).unwrap();
    d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(web6, RealConfig::new(ip("2001:db8::11")).with_mac(mac(REAL_MACS[1]))).unwrap();
    let any_port = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip("10.0.0.101"), 0, SchedulerKind::Wlc)
                .with_persistence(dr_core::Persistence::new(30).with_prefix_len(24)),
        )
        .unwrap();
    d.add_real(any_port, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();

    // Frames prepared outside the watched sections.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for i in 0..(capacity as u16 * 4) {
        let client = format!("192.0.2.{}", i % 250 + 1);
        frames.push(tcp4(&client, i, "10.0.0.100", 80, SYN));
        frames.push(tcp4(&client, i, "10.0.0.100", 80, ACK));
        // Data proves the connection: it never gives way, so the table fills up.
        frames.push(tcp4_payload(&client, i, "10.0.0.100", 80, ACK | PSH, b"GET"));
        frames.push(udp4(&client, i, "10.0.0.100", 53, b"query"));
        frames.push(tcp6("2001:db8:1::7", i, "2001:db8::100", 80, SYN));
        frames.push(tcp4(&client, i, "10.0.0.101", 1000 + i % 7, SYN));
        if i % 16 == 0 {
            frames.extend(udp4_fragments(&client, i, "10.0.0.100", 53, &[7; 100], i, 48));
            let reply = tcp4("10.0.0.100", 80, &client, i, ACK);
            frames.push(icmp4_error("192.0.2.254", "10.0.0.100", 3, 4, &datagram(&reply)[..28]));
        }
    }
    frames.push(icmp6_echo("2001:db8:1::7", "2001:db8::100"));
    let learn =
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[1], "10.0.0.12", DIRECTOR_MAC, "10.0.0.1");
    frames.push(learn);
    frames.push(arp_request("10.0.0.100"));
    frames.push(neighbor_solicitation(ROUTER_MAC, "2001:db8::1", "2001:db8::100"));
    frames.push(icmp4_echo("192.0.2.1", "10.0.0.100"));
    frames.push(vec![0u8; 10]);
    let copies: Vec<Vec<u8>> = frames.clone();

    let mut now = 0;
    let mut total = 0;
    let mut verdicts = vec![dr_core::Verdict::Drop(dr_core::DropReason::MalformedEthernet); 40];
    // Several rounds: fill the table past capacity, let it expire, fill again (churn). Odd
    // rounds go through process_burst.
    for round in 0..6 {
        let mut batch = copies.clone();
        let ((), allocations) = watched(|| {
            for frames in batch.chunks_mut(40) {
                now += 1_000_000; // 1 ms per burst
                let at = Instant::from_nanos(now);
                if d.poll_timeout().is_some_and(|due| due <= at) {
                    d.handle_timeout(at);
                }
                if round % 2 == 1 {
                    d.process_burst(at, frames, &mut verdicts);
                } else {
                    for frame in frames {
                        let _ = d.process(at, frame);
                    }
                }
                let _ = d.poll_neighbour_request(at);
            }
            now += 400_000_000_000; // everything expires
            d.handle_timeout(Instant::from_nanos(now));
        });
        assert_eq!(allocations, 0, "round {round} allocated");
        total += batch.len();
    }
    assert!(d.counters().conns_created() > capacity as u64 * 4, "the table churned");
    let c = d.counters();
    assert!(c.drops(dr_core::DropReason::ConnTableFull) > 0, "the table filled up");
    assert!(c.conns_evicted() > 0, "unproven entries gave way");
    assert!(c.templates_created() > 0 && c.fragments_forwarded() > 0 && c.icmp_relayed() > 0);
    assert!(c.echo_replies() > 0);
    assert!(total > 0);
}

#[test]
fn every_scheduler_picks_without_allocating() {
    for &kind in SchedulerKind::ALL {
        let mut d = director(256);
        let flags = dr_core::SchedFlags {
            sh_port: true,
            sh_fallback: true,
            mh_port: true,
            mh_fallback: true,
            flag_3: false,
        };
        let s = d
            .add_service(
                ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, kind).with_flags(flags),
            )
            .unwrap();
        for (i, m) in REAL_MACS.iter().enumerate() {
            let real = RealConfig::new(ip(&format!("10.0.0.{}", 11 + i)))
                .with_weight(i as u32)
                .with_thresholds(8, 0);
            d.add_real(s, real.with_mac(mac(*m))).unwrap();
        }
        let mut frames: Vec<Vec<u8>> =
            (0..600u16).map(|p| tcp4("192.0.2.7", p, "10.0.0.100", 80, SYN)).collect();
        let ((), allocations) = watched(|| {
            for (i, frame) in frames.iter_mut().enumerate() {
                let at = Instant::from_millis(1_000 * i as u64);
                if d.poll_timeout().is_some_and(|due| due <= at) {
                    d.handle_timeout(at);
                }
                let _ = d.process(at, frame);
            }
        });
        assert_eq!(allocations, 0, "{kind} allocated");
        assert!(d.counters().forwarded() > 0, "{kind} forwarded nothing");
    }
}

/// Connection sync allocates nothing after `start_sync`: a master queueing records on the
/// packet path, handing out messages and answering a bulk resync request, and a backup
/// importing them; both directors run both (master and backup at once), and the backup's
/// wait for the resync ends on the answer's end mark.
#[test]
fn connection_sync_never_allocates() {
    use dr_core::{SyncConfig, SyncMode};
    let build = |mode| {
        let mut d = director(256);
        let svc = d
            .add_service(
                ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, SchedulerKind::Rr)
                    .with_persistence(dr_core::Persistence::new(60)),
            )
            .unwrap();
        d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
        d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
        d.start_sync(SyncConfig::new(mode)).unwrap();
        d
    };
    let (mut master, mut backup) = (build(SyncMode::Both), build(SyncMode::Both));
    let frames: Vec<Vec<u8>> = (0..60u16)
        .flat_map(|port| {
            let client = format!("192.0.2.{}", port % 7 + 1);
            [
                tcp4(&client, 1000 + port, "10.0.0.100", 80, SYN),
                tcp4(&client, 1000 + port, "10.0.0.100", 80, ACK),
                tcp4_payload(&client, 1000 + port, "10.0.0.100", 80, ACK | PSH, b"data"),
                tcp4(&client, 1000 + port, "10.0.0.100", 80, FIN | ACK),
            ]
        })
        .collect();
    let mut frames = frames;
    let mut buf = [0u8; 2048];
    backup.request_resync(Instant::from_secs(1));
    let request = backup.poll_sync(Instant::from_secs(1)).map(|m| m.to_vec()).unwrap();
    let ((), count) = watched(|| {
        let now = Instant::from_secs(1);
        for frame in &mut frames {
            let _ = master.process(now, frame);
            while let Some(message) = master.poll_sync(now) {
                buf[..message.len()].copy_from_slice(message);
                let len = message.len();
                let _ = backup.import_sync(now, &buf[..len]);
            }
        }
        let _ = master.import_sync(now, &request);
        let later = Instant::from_secs(4);
        master.handle_timeout(later);
        while let Some(message) = master.poll_sync(later) {
            buf[..message.len()].copy_from_slice(message);
            let len = message.len();
            let _ = backup.import_sync(later, &buf[..len]);
        }
        assert!(backup.resync_status(later).is_some_and(|s| s.phase.is_over()));
    });
    assert_eq!(count, 0);
    let done = backup.resync_status(Instant::from_secs(4)).unwrap();
    assert_eq!(done.phase, dr_core::sync::ResyncPhase::Done);
    assert!(backup.sync_counters().imported > 0 && backup.sync_counters().bulk_records == 0);
    assert!(master.sync_counters().bulk_records > 0);
}
