//! `SyncMode::Both` (the kernel's master and backup daemons side by side) for directors that
//! share the traffic, and the end of a bulk resync: two directors exchanging each other's
//! exports stay quiet once their flows are, converge and never move a flow; a flow that an
//! ECMP change moves to a director whose `mh` pick differs keeps its synced real server;
//! the resync wait ends when every answering peer ended, and not on hostile marks.

mod support;

use dr_core::sync::wire::{self, MessageWriter, ResyncMark};
use dr_core::sync::{ResyncPhase, SyncConfig, SyncMode};
use dr_core::{
    Config, Director, Duration, FlowKey, Instant, Protocol, RealConfig, SchedulerKind,
    ServiceConfig,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use support::*;

const VIP: &str = "10.0.0.100";
const CLIENT: &str = "192.0.2.1";

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A `sloppy_tcp` director with one mh service on VIP:80 and `reals` (REAL_MACS in order),
/// running sync in `mode` with `origin`.
fn director_of(reals: &[&str], mode: SyncMode, origin: u32) -> Director {
    let mut config = Config::new(mac(DIRECTOR_MAC), [1, 2, 3, 4]);
    config.capacity = 1024;
    config.sloppy_tcp = true;
    let mut d = Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Mh)).unwrap();
    for (i, real) in reals.iter().enumerate() {
        d.add_real(svc, RealConfig::new(ip(real)).with_mac(mac(REAL_MACS[i]))).unwrap();
    }
    let mut sync = SyncConfig::new(mode);
    sync.origin = origin;
    d.start_sync(sync).unwrap();
    d
}

const TWO: [&str; 2] = ["10.0.0.11", "10.0.0.12"];
const THREE: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];

/// The real server (by MAC) a segment of the flow from `cport` went to.
fn forward(d: &mut Director, now: Instant, mut frame: Vec<u8>) -> [u8; 6] {
    let verdict = d.process(now, &mut frame);
    assert!(verdict.is_transmit(), "{verdict:?}");
    frame[..6].try_into().unwrap()
}

fn data(cport: u16) -> Vec<u8> {
    tcp4_payload(CLIENT, cport, VIP, 80, ACK | PSH, b"x")
}

fn drain(d: &mut Director, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = d.poll_sync(now) {
        out.push(m.to_vec());
    }
    out
}

fn key(cport: u16) -> FlowKey {
    FlowKey {
        protocol: Protocol::Tcp,
        client: ip(CLIENT),
        client_port: cport,
        vip: ip(VIP),
        vip_port: 80,
    }
}

/// Every connection entry: client port → real server address.
fn table(d: &Director) -> BTreeMap<u16, IpAddr> {
    d.connections()
        .filter(|c| matches!(c.kind, dr_core::ConnKind::Connection { .. }))
        .map(|c| (c.key.client_port, d.real(c.real).unwrap().addr()))
        .collect()
}

fn records(datagrams: &[Vec<u8>]) -> usize {
    datagrams.iter().map(|m| wire::parse(m).unwrap().records().count()).sum()
}

#[test]
fn two_both_directors_exchanging_their_exports_stay_bounded_converge_and_never_flap() {
    let mut d = [director_of(&TWO, SyncMode::Both, 1), director_of(&TWO, SyncMode::Both, 2)];
    const FLOWS: u16 = 40;
    const ROUNDS: u64 = 300;
    // Each flow opens on one director (ECMP's pick) with a handshake, then sends one
    // segment a round; every 25 rounds a quarter of the flows move to the other director.
    let mut on: Vec<usize> = (0..FLOWS).map(|f| usize::from(f % 2)).collect();
    let mut first: BTreeMap<u16, [u8; 6]> = BTreeMap::new();
    for f in 0..FLOWS {
        let cport = 10_000 + f;
        let dir = &mut d[on[usize::from(f)]];
        let real = forward(dir, at(0), tcp4(CLIENT, cport, VIP, 80, SYN));
        forward(dir, at(0), tcp4(CLIENT, cport, VIP, 80, ACK));
        first.insert(cport, real);
    }
    let mut total_records = 0;
    let mut packets = 0;
    // The kernel's rule, written out: each director's in_pkts per flow, one more a packet,
    // a record when it reaches 3 mod 50; the record sets the other's in_pkts to 3 when
    // it is imported (at the end of the round). The handshake counted 2.
    let mut in_pkts: Vec<[u32; 2]> =
        on.iter().map(|&o| if o == 0 { [2, 0] } else { [0, 2] }).collect();
    let mut expected = 0;
    for round in 1..=ROUNDS {
        let now = at(round * 1000);
        if round % 25 == 0 {
            for f in (0..FLOWS).filter(|f| (u64::from(*f) + round / 25) % 4 == 0) {
                on[usize::from(f)] ^= 1;
            }
        }
        let mut imports = Vec::new();
        for f in 0..FLOWS {
            let cport = 10_000 + f;
            let here = on[usize::from(f)];
            let real = forward(&mut d[here], now, data(cport));
            packets += 1;
            let count = &mut in_pkts[usize::from(f)][here];
            *count += 1;
            if *count % 50 == 3 {
                expected += 1;
                imports.push((usize::from(f), 1 - here));
            }
            // Never another real server, on either director.
            assert_eq!(real, first[&cport], "round {round}: flow {cport} moved");
        }
        // The exports crossed over (flushed: 2 s later).
        let later = at(round * 1000 + 2000);
        let (a, b) = d.split_at_mut(1);
        let from_a = drain(&mut a[0], later);
        let from_b = drain(&mut b[0], later);
        for m in &from_a {
            b[0].import_sync(later, m).unwrap();
        }
        for m in &from_b {
            a[0].import_sync(later, m).unwrap();
        }
        for (f, there) in imports {
            in_pkts[f][there] = 3;
        }
        let sent = records(&from_a) + records(&from_b);
        // At most one record a flow a round: an import is never sent back.
        assert!(sent <= usize::from(FLOWS), "round {round}: {sent} records");
        total_records += sent;
    }
    // The kernel's rule: a record at packets 3, 53, 103 … of each stint (an import sets the
    // count to the threshold, 3): about one record every 50 packets, and one per stint.
    let stints = usize::from(FLOWS) * (1 + (ROUNDS as usize / 25));
    eprintln!("{total_records} records for {packets} packets in {stints} stints");
    assert_eq!(total_records, expected, "the kernel's rule, worked by hand");
    assert!(total_records <= packets / 50 + stints, "{total_records} for {packets} packets");
    assert!(total_records >= packets / 50, "{total_records} for {packets} packets");
    // Quiet flows: nothing more is sent, however long the two exchange.
    for round in 0..20 {
        let now = at(ROUNDS * 1000 + 10_000 + round * 3000);
        let (a, b) = d.split_at_mut(1);
        let (from_a, from_b) = (drain(&mut a[0], now), drain(&mut b[0], now));
        for m in &from_a {
            b[0].import_sync(now, m).unwrap();
        }
        for m in &from_b {
            a[0].import_sync(now, m).unwrap();
        }
        if round > 0 {
            assert_eq!((from_a.len(), from_b.len()), (0, 0), "quiet round {round}");
        }
    }
    // Converged: both hold every flow, on the real server it started on.
    let (ta, tb) = (table(&d[0]), table(&d[1]));
    assert_eq!(ta.len(), usize::from(FLOWS));
    assert_eq!(ta, tb);
    for (cport, real) in &ta {
        let mac =
            d[0].reals().find(|(_, r)| r.addr() == *real).map(|(_, r)| r.mac().unwrap().0).unwrap();
        assert_eq!(mac, first[cport]);
    }
    // The imported side's counters: updates, never a replacement.
    for dir in &d {
        assert_eq!(dir.sync_counters().replaced, 0);
        assert_eq!(dir.sync_counters().stale, 0);
    }
}

#[test]
fn an_imported_entry_that_carries_traffic_is_sent_again_only_a_period_later() {
    // ip_vs_proc_conn sets in_pkts to sync_threshold (3): the 50th packet here is the 53rd
    // of the count, the first sent; the 49 before it are not.
    let mut a = director_of(&TWO, SyncMode::Both, 1);
    let mut b = director_of(&TWO, SyncMode::Both, 2);
    forward(&mut a, at(0), tcp4(CLIENT, 5000, VIP, 80, SYN));
    forward(&mut a, at(0), tcp4(CLIENT, 5000, VIP, 80, ACK));
    forward(&mut a, at(0), data(5000));
    let export = drain(&mut a, at(2000));
    assert_eq!(records(&export), 1);
    // Its own: DROUTE | NOOUTPUT.
    assert_eq!(flags_of(&export), [0x83]);
    b.import_sync(at(2000), &export[0]).unwrap();
    assert!(drain(&mut b, at(5000)).is_empty(), "an import is not sent back");
    for i in 1..50 {
        forward(&mut b, at(3000), data(5000));
        assert!(drain(&mut b, at(3000 + 2000)).is_empty(), "packet {i}");
    }
    forward(&mut b, at(4000), data(5000));
    let again = drain(&mut b, at(6000));
    assert_eq!(records(&again), 1);
    // Made by a record: the kernel's cp->flags carry IP_VS_CONN_F_SYNC (0x20), sent on.
    assert_eq!(flags_of(&again), [0xa3]);
    // a takes it back as its own entry, updated: not SYNC, so sent on without it.
    a.import_sync(at(6000), &again[0]).unwrap();
    for _ in 0..50 {
        forward(&mut a, at(7000), data(5000));
    }
    assert_eq!(flags_of(&drain(&mut a, at(9000))), [0x83]);
}

fn flags_of(datagrams: &[Vec<u8>]) -> Vec<u32> {
    datagrams
        .iter()
        .flat_map(|m| wire::parse(m).unwrap().records().map(|e| e.unwrap().record.flags))
        .collect()
}

#[test]
fn a_flow_moved_to_a_director_whose_servers_differ_keeps_its_synced_real_server() {
    // d1 has two servers, d2 three (one added meanwhile): mh picks differ for some flows.
    let mut d1 = director_of(&TWO, SyncMode::Both, 1);
    let mut d2 = director_of(&THREE, SyncMode::Both, 2);
    // What d2 picks for a flow it has never heard of: a director like it, without sync.
    let mut fresh = director_of(&THREE, SyncMode::Master, 3);
    let mut differ = 0;
    for cport in 20_000..20_040 {
        forward(&mut d1, at(0), tcp4(CLIENT, cport, VIP, 80, SYN));
        forward(&mut d1, at(0), tcp4(CLIENT, cport, VIP, 80, ACK));
        let real = forward(&mut d1, at(0), data(cport));
        for m in drain(&mut d1, at(2000)) {
            d2.import_sync(at(2000), &m).unwrap();
        }
        let own_pick = forward(&mut fresh, at(2000), data(cport));
        differ += usize::from(own_pick != real);
        // ECMP moved the flow: its next segment reaches d2.
        assert_eq!(forward(&mut d2, at(2500), data(cport)), real, "flow {cport}");
        assert!(d2.connection(&key(cport)).is_some());
    }
    assert!(differ > 0, "mh picks the same for every flow: the test proves nothing");
}

/// A datagram of `syncid` with one record: the start (`end` false) or end mark.
fn mark(syncid: u8, end: bool, m: ResyncMark) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(&mut buf, syncid).unwrap();
    let (record, option) = wire::resync_mark_record(end, &m);
    assert!(w.push_with(&record, &option));
    let len = w.len();
    buf[..len].to_vec()
}

fn backup(syncid: u8, origin: u32, wait_secs: u64) -> Director {
    let mut d = director_of(&TWO, SyncMode::Both, origin);
    let mut sync = *d.sync_config().unwrap();
    sync.syncid = syncid;
    sync.resync_wait = Duration::from_secs(wait_secs);
    d.start_sync(sync).unwrap();
    d
}

#[test]
fn a_mark_is_a_record_a_kernel_backup_skips_laid_out_by_hand() {
    let m = mark(5, true, ResyncMark::new(0x0102_0304, 0x0a0b_0c0d, 48));
    let expected: Vec<u8> = [
        &[0, 5, 0, 62, 1, 1, 0, 0][..], // header: 8 + 54 bytes, one record
        &[0, 0, 0, 54],                 // IPv4, protocol 0: skipped; 36 + 18 bytes
        &[0; 32],
        &[0x52, 16], // option 0x52: bit 0x40, optional
        &[1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 48],
        &[0, 1, 0, 0], // part 0 of 1
    ]
    .concat();
    assert_eq!(m, expected);
    // A backup that waits for nothing imports the records beside a mark, as a kernel does.
    let mut a = director_of(&TWO, SyncMode::Master, 9);
    forward(&mut a, at(0), tcp4(CLIENT, 6000, VIP, 80, SYN));
    forward(&mut a, at(0), tcp4(CLIENT, 6000, VIP, 80, ACK));
    forward(&mut a, at(0), data(6000));
    let export = drain(&mut a, at(2000));
    let mut b = director_of(&TWO, SyncMode::Backup, 0);
    b.import_sync(at(0), &m).unwrap();
    b.import_sync(at(0), &export[0]).unwrap();
    assert_eq!(b.connection_count(), 1);
    assert_eq!(b.resync_status(at(0)).unwrap().phase, ResyncPhase::Idle);
}

#[test]
fn the_resync_is_done_when_every_peer_that_began_an_answer_ended_it() {
    // Two masters answer one backup's request with their tables.
    let mut m1 = director_of(&TWO, SyncMode::Both, 11);
    let mut m2 = director_of(&TWO, SyncMode::Both, 12);
    for (m, cports) in [(&mut m1, 100..150), (&mut m2, 200..260)] {
        for cport in cports {
            forward(m, at(0), tcp4(CLIENT, cport, VIP, 80, SYN));
            forward(m, at(0), tcp4(CLIENT, cport, VIP, 80, ACK));
        }
        let _ = drain(m, at(5000));
    }
    let mut b = backup(0, 7, 10);
    assert!(b.request_resync(at(10_000)));
    let request = drain(&mut b, at(10_000));
    assert_eq!(request.len(), 1);
    // The request carries the origin.
    assert_eq!(&request[0][8 + 36..], &[0x50, 4, 0, 0, 0, 7]);
    assert_eq!(b.resync_status(at(10_000)).unwrap().phase, ResyncPhase::Waiting);
    for m in [&mut m1, &mut m2] {
        m.import_sync(at(10_000), &request[0]).unwrap();
    }
    let (a1, a2) = (drain(&mut m1, at(10_000)), drain(&mut m2, at(10_000)));
    assert!(a1.len() > 1 && a2.len() > 1, "{} and {} messages", a1.len(), a2.len());
    // Interleaved: m1's first message, all of m2's but its last, m1's rest, m2's last.
    b.import_sync(at(10_010), &a1[0]).unwrap();
    for m in &a2[..a2.len() - 1] {
        b.import_sync(at(10_010), m).unwrap();
    }
    for m in &a1[1..] {
        b.import_sync(at(10_020), m).unwrap();
    }
    let s = b.resync_status(at(10_020)).unwrap();
    assert_eq!((s.phase, s.peers, s.peers_ended), (ResyncPhase::Waiting, 2, 1));
    b.import_sync(at(10_030), a2.last().unwrap()).unwrap();
    let s = b.resync_status(at(10_030)).unwrap();
    assert_eq!((s.phase, s.peers, s.peers_ended), (ResyncPhase::Done, 2, 2));
    assert_eq!((s.records_announced, s.records_imported), (110, 110));
    assert_eq!(s.elapsed(at(20_000)), Duration::from_millis(30));
    assert_eq!(b.connection_count(), 110);
    let c = b.sync_counters();
    assert_eq!((c.resync_begins, c.resync_ends), (2, 2));
}

#[test]
fn a_peer_of_two_workers_is_waited_for_until_both_parts_of_its_answer_ended() {
    // One process, origin 11, two workers with their own connections: each answers as one
    // part of two. The first part's whole answer comes before the second even starts.
    let mut w0 = director_of(&TWO, SyncMode::Both, 11);
    let mut w1 = director_of(&TWO, SyncMode::Both, 11);
    for (part, (w, cports)) in [(&mut w0, 100..120), (&mut w1, 200..230)].into_iter().enumerate() {
        let mut sync = *w.sync_config().unwrap();
        (sync.part, sync.parts) = (part as u8, 2);
        w.start_sync(sync).unwrap();
        for cport in cports {
            forward(w, at(0), tcp4(CLIENT, cport, VIP, 80, SYN));
            forward(w, at(0), tcp4(CLIENT, cport, VIP, 80, ACK));
        }
        let _ = drain(w, at(5000));
    }
    let mut b = backup(0, 7, 10);
    assert!(b.request_resync(at(10_000)));
    let request = drain(&mut b, at(10_000));
    w0.import_sync(at(10_000), &request[0]).unwrap();
    for m in drain(&mut w0, at(10_000)) {
        b.import_sync(at(10_010), &m).unwrap();
    }
    let s = b.resync_status(at(10_010)).unwrap();
    assert_eq!((s.phase, s.peers, s.peers_ended), (ResyncPhase::Waiting, 1, 0), "half of it");
    w1.import_sync(at(10_020), &request[0]).unwrap();
    for m in drain(&mut w1, at(10_020)) {
        b.import_sync(at(10_030), &m).unwrap();
    }
    let s = b.resync_status(at(10_030)).unwrap();
    assert_eq!((s.phase, s.peers, s.peers_ended), (ResyncPhase::Done, 1, 1));
    assert_eq!((s.records_announced, b.connection_count()), (50, 50));
    // A part above the parts, or parts over the bound, is no configuration.
    let mut sync = *w0.sync_config().unwrap();
    (sync.part, sync.parts) = (2, 2);
    assert!(w0.start_sync(sync).is_err());
    (sync.part, sync.parts) = (0, 65);
    assert!(w0.start_sync(sync).is_err());
}

#[test]
fn a_peer_that_never_ends_or_no_answer_times_the_resync_out_at_resync_wait() {
    let mut b = backup(0, 7, 4);
    b.request_resync(at(1000));
    b.import_sync(at(1100), &mark(0, false, ResyncMark::new(7, 11, 0))).unwrap();
    assert_eq!(b.resync_status(at(4999)).unwrap().phase, ResyncPhase::Waiting);
    let s = b.resync_status(at(5000)).unwrap();
    assert_eq!(
        (s.phase, s.ended, s.peers, s.peers_ended),
        (ResyncPhase::TimedOut, Some(at(5000)), 1, 0)
    );
    // A late end changes nothing.
    b.import_sync(at(6000), &mark(0, true, ResyncMark::new(7, 11, 3))).unwrap();
    assert_eq!(b.resync_status(at(6000)).unwrap().phase, ResyncPhase::TimedOut);
    assert_eq!(b.sync_counters().resync_marks_ignored, 1);
    // Nobody answers (kernel peers only): timed out at the bound too.
    let mut b = backup(0, 7, 4);
    b.request_resync(at(0));
    assert!(!b.resync_status(at(3999)).unwrap().phase.is_over());
    assert_eq!(b.resync_status(at(4000)).unwrap().phase, ResyncPhase::TimedOut);
}

#[test]
fn hostile_marks_do_not_end_the_resync() {
    let mut b = backup(5, 7, 10);
    b.request_resync(at(0));
    b.import_sync(at(1), &mark(5, false, ResyncMark::new(7, 11, 0))).unwrap();
    // A forged end from another sync ID: dropped whole.
    b.import_sync(at(2), &mark(6, true, ResyncMark::new(7, 11, 0))).unwrap();
    assert_eq!(b.sync_counters().syncid_ignored, 1);
    // An end for another director's request.
    b.import_sync(at(3), &mark(5, true, ResyncMark::new(8, 11, 0))).unwrap();
    // This director's own end, come back (its origin as the answerer).
    b.import_sync(at(4), &mark(5, true, ResyncMark::new(7, 7, 0))).unwrap();
    // An end mark of the wrong length is no mark: an optional option, skipped.
    let mut short = mark(5, true, ResyncMark::new(7, 11, 0));
    short[8 + 37] = 15;
    short[8 + 3] -= 1;
    short[3] -= 1;
    short.pop();
    b.import_sync(at(5), &short).unwrap();
    // Nor is one whose part is not below its parts (the last two data bytes: part, parts).
    let mut bad_part = mark(5, true, ResyncMark::new(7, 11, 0));
    let at_part = bad_part.len() - 4;
    bad_part[at_part] = 1;
    b.import_sync(at(5), &bad_part).unwrap();
    let s = b.resync_status(at(6)).unwrap();
    assert_eq!((s.phase, s.peers, s.peers_ended), (ResyncPhase::Waiting, 1, 0));
    let c = b.sync_counters();
    assert_eq!((c.own_ignored, c.resync_marks_ignored, c.resync_ends), (1, 1, 0));
    // A peer that ends twice is one end; the genuine one ends the wait.
    b.import_sync(at(7), &mark(5, true, ResyncMark::new(7, 11, 0))).unwrap();
    b.import_sync(at(8), &mark(5, true, ResyncMark::new(7, 11, 0))).unwrap();
    assert_eq!(b.resync_status(at(8)).unwrap().phase, ResyncPhase::Done);
}

#[test]
fn a_both_director_counts_another_sync_ids_records_and_marks_as_ignored() {
    // Sync ID 5, both: a datagram of sync ID 0 is taken for its requests only (a master
    // answers 0's); its records and marks are another cluster's.
    let mut a = director_of(&TWO, SyncMode::Master, 9);
    forward(&mut a, at(0), tcp4(CLIENT, 6000, VIP, 80, SYN));
    forward(&mut a, at(0), tcp4(CLIENT, 6000, VIP, 80, ACK));
    forward(&mut a, at(0), data(6000));
    let export = drain(&mut a, at(2000));
    let mut b = backup(5, 7, 10);
    b.request_resync(at(0));
    b.import_sync(at(1), &export[0]).unwrap();
    b.import_sync(at(1), &mark(0, true, ResyncMark::new(7, 11, 0))).unwrap();
    assert_eq!(b.connection_count(), 0);
    let c = b.sync_counters();
    assert_eq!((c.syncid_ignored, c.not_backup, c.resync_marks_ignored), (1, 0, 1));
    assert_eq!(b.resync_status(at(2)).unwrap().phase, ResyncPhase::Waiting);
}

#[test]
fn a_director_does_not_answer_its_own_resync_request() {
    let mut b = backup(0, 7, 10);
    b.request_resync(at(0));
    let request = drain(&mut b, at(0));
    // Its own request, come back: not answered.
    b.import_sync(at(0), &request[0]).unwrap();
    assert!(!b.sync_bulk_pending());
    assert_eq!(b.sync_counters().own_ignored, 1);
    // A peer's is, with a start and an end mark around the table.
    let mut peer = backup(0, 8, 10);
    peer.import_sync(at(0), &request[0]).unwrap();
    assert!(peer.sync_bulk_pending());
    let answer = drain(&mut peer, at(0));
    let marks: Vec<_> = answer
        .iter()
        .flat_map(|m| {
            wire::parse(m).unwrap().records().map(|e| e.unwrap().options).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(marks.first().unwrap().resync_begin, Some(ResyncMark::new(7, 8, 0)));
    assert_eq!(marks.last().unwrap().resync_end, Some(ResyncMark::new(7, 8, 0)));
}
