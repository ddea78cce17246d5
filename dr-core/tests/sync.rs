//! Connection sync (spec §7, `ip_vs_sync.c`): the datagrams a master sends, byte for byte
//! as the kernel's structs lay them out; what a backup makes of the kernel's datagrams;
//! the sending and receiving rules; and the property that a backup fed a master's export
//! holds the master's table.

mod support;

use dr_core::sync::wire::{self, MessageWriter, SyncRecord};
use dr_core::sync::{SyncConfig, SyncMode};
use dr_core::{
    ConnKind, ConnState, Director, Duration, FlowKey, Instant, Persistence, Protocol, RealConfig,
    SchedulerKind, ServiceConfig,
};
use proptest::prelude::*;
use support::*;

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";
const CLIENT: &str = "192.0.2.1";

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A director with a TCP and a UDP service on VIP:80 / VIP:53 and a TCP service on
/// VIP6:80, two real servers each (.11, .12), rr; `persistent` makes VIP:80 persistent
/// (360 s).
fn director_with(persistent: bool) -> Director {
    let mut d = director(1024);
    for (proto, vip, port, reals) in [
        (Protocol::Tcp, VIP, 80, ["10.0.0.11", "10.0.0.12"]),
        (Protocol::Udp, VIP, 53, ["10.0.0.11", "10.0.0.12"]),
        (Protocol::Tcp, VIP6, 80, ["2001:db8::11", "2001:db8::12"]),
    ] {
        let mut service = ServiceConfig::new(proto, ip(vip), port, SchedulerKind::Rr);
        if persistent && port == 80 && vip == VIP {
            service = service.with_persistence(Persistence::new(360));
        }
        let svc = d.add_service(service).unwrap();
        for (i, real) in reals.iter().enumerate() {
            d.add_real(svc, RealConfig::new(ip(real)).with_mac(mac(REAL_MACS[i]))).unwrap();
        }
    }
    d
}

fn master(persistent: bool, configure: impl FnOnce(&mut SyncConfig)) -> Director {
    let mut d = director_with(persistent);
    let mut config = SyncConfig::new(SyncMode::Master);
    configure(&mut config);
    d.start_sync(config).unwrap();
    d
}

fn backup() -> Director {
    let mut d = director_with(false);
    d.start_sync(SyncConfig::new(SyncMode::Backup)).unwrap();
    d
}

/// Every datagram the director has ready at `now`.
fn drain(d: &mut Director, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(m) = d.poll_sync(now) {
        out.push(m.to_vec());
    }
    out
}

fn send(d: &mut Director, now: Instant, mut frame: Vec<u8>) {
    let verdict = d.process(now, &mut frame);
    assert!(verdict.is_transmit(), "{verdict:?}");
}

fn key(client: &str, cport: u16, vip: &str, vport: u16) -> FlowKey {
    FlowKey {
        protocol: Protocol::Tcp,
        client: ip(client),
        client_port: cport,
        vip: ip(vip),
        vip_port: vport,
    }
}

/// The records of datagrams, decoded.
fn records(datagrams: &[Vec<u8>]) -> Vec<SyncRecord> {
    datagrams
        .iter()
        .flat_map(|d| {
            let m = wire::parse(d).unwrap();
            m.records().map(|e| e.unwrap().record).collect::<Vec<_>>()
        })
        .collect()
}

/// A handshake and one data segment: SYN (SYN_RECV), ACK (ESTABLISHED), data.
fn open(d: &mut Director, now: Instant, cport: u16) {
    send(d, now, tcp4(CLIENT, cport, VIP, 80, SYN));
    send(d, now, tcp4(CLIENT, cport, VIP, 80, ACK));
    send(d, now, tcp4_payload(CLIENT, cport, VIP, 80, ACK | PSH, b"GET /"));
}

#[test]
fn an_established_connection_goes_out_at_its_third_packet_as_the_kernel_lays_it_out() {
    let mut d = master(false, |_| {});
    open(&mut d, at(1000), 40000);
    // Partly filled: not before 2 s after its first record.
    assert!(drain(&mut d, at(2999)).is_empty());
    assert_eq!(d.poll_timeout().map(|t| t <= at(3000)), Some(true));
    let sent = drain(&mut d, at(3000));
    // struct ip_vs_sync_mesg, then struct ip_vs_sync_v4 (include/net/ip_vs.h).
    let expected: [u8; 44] = [
        0x00, // 0: reserved, 0 so that a v0 receiver drops it
        0x00, // 1: syncid
        0x00, 0x2c, // 2..4: size of the whole message, 8 + 36 = 44
        0x01, // 4: nr_conns
        0x01, // 5: version 1
        0x00, 0x00, // 6..8: spare
        0x00, // +0: type, IPv4
        0x06, // +1: protocol TCP
        0x00, 0x24, // +2..4: ver_size, version 0, 36 bytes
        0x00, 0x00, 0x00, 0x83, // +4..8: flags DROUTE (3) | NOOUTPUT (0x80), active
        0x00, 0x01, // +8..10: state ESTABLISHED
        0x9c, 0x40, // +10..12: cport 40000
        0x00, 0x50, // +12..14: vport 80
        0x00, 0x50, // +14..16: dport 80
        0x00, 0x00, 0x00, 0x00, // +16..20: fwmark
        0x00, 0x00, 0x03, 0x84, // +20..24: timeout 900 s (tcp ESTABLISHED)
        192, 0, 2, 1, // +24..28: caddr
        10, 0, 0, 100, // +28..32: vaddr
        10, 0, 0, 12, // +32..36: daddr, the first rr pick (newest first)
    ];
    assert_eq!(sent, vec![expected.to_vec()]);
    let c = d.sync_counters();
    assert_eq!((c.messages_sent, c.records_sent), (1, 1));
}

#[test]
fn state_changes_other_than_to_established_go_out_at_once_syn_recv_never() {
    let mut d = master(false, |_| {});
    send(&mut d, at(0), tcp4(CLIENT, 1, VIP, 80, SYN));
    send(&mut d, at(0), tcp4(CLIENT, 1, VIP, 80, ACK));
    assert_eq!(d.sync_counters().records_sent + count_pending(&mut d, at(0)), 0);
    // The FIN moves it to FIN_WAIT at packet 3 and 4 would not be a threshold packet.
    send(&mut d, at(10), tcp4(CLIENT, 1, VIP, 80, ACK));
    send(&mut d, at(10), tcp4(CLIENT, 1, VIP, 80, FIN | ACK));
    let sent = records(&drain(&mut d, at(5000)));
    let states: Vec<u16> = sent.iter().map(|r| r.state).collect();
    // Packet 3 (ESTABLISHED, 3 % 50 == 3), then the FIN at once: FIN_WAIT (4), INACTIVE.
    assert_eq!(states, [1, 4]);
    assert_eq!(sent[1].flags, 0x0183);
    assert_eq!(sent[1].timeout, Some(120));
}

fn count_pending(d: &mut Director, now: Instant) -> u64 {
    records(&drain(d, now.saturating_add(Duration::from_secs(2)))).len() as u64
}

#[test]
fn sync_threshold_3_50_sends_at_packets_3_53_and_103() {
    let mut d = master(false, |_| {});
    send(&mut d, at(0), tcp4(CLIENT, 2, VIP, 80, SYN));
    let mut sent_at = Vec::new();
    for packet in 2..=110u32 {
        send(&mut d, at(0), tcp4_payload(CLIENT, 2, VIP, 80, ACK, b"x"));
        let before = d.sync_counters().records_sent;
        let _ = drain(&mut d, at(10_000));
        if d.sync_counters().records_sent > before {
            sent_at.push(packet);
        }
    }
    assert_eq!(sent_at, [3, 53, 103]);
}

#[test]
fn a_udp_connection_is_sent_inactive_with_state_0_and_the_udp_timeout() {
    let mut d = master(false, |_| {});
    for _ in 0..3 {
        send(&mut d, at(0), udp4(CLIENT, 5353, VIP, 53, b"q"));
    }
    let sent = records(&drain(&mut d, at(2000)));
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].protocol, sent[0].state, sent[0].flags), (17, 0, 0x0183));
    assert_eq!(sent[0].timeout, Some(300));
}

#[test]
fn a_template_goes_out_after_the_connection_it_controls() {
    let mut d = master(true, |_| {});
    open(&mut d, at(0), 40001);
    let sent = records(&drain(&mut d, at(2000)));
    // Each packet sends the template (the threshold does not gate templates); packet 3
    // sends the connection first.
    let kinds: Vec<bool> = sent.iter().map(SyncRecord::is_template).collect();
    assert_eq!(kinds, [true, true, false, true]);
    let t = sent[3];
    assert_eq!(t.flags, 0x1183, "TEMPLATE | INACTIVE | NOOUTPUT | DROUTE");
    assert_eq!((t.client_port, t.vip_port, t.timeout), (0, 80, Some(360)));
    assert_eq!(t.state, 1, "assured: its connection reached ESTABLISHED");
    assert_eq!(t.client, ip(CLIENT));
}

#[test]
fn persist_mode_sends_only_the_templates() {
    let mut d = master(true, |c| c.persist_mode = true);
    open(&mut d, at(0), 40002);
    send(&mut d, at(0), tcp4(CLIENT, 40002, VIP, 80, FIN | ACK));
    let sent = records(&drain(&mut d, at(2000)));
    assert!(!sent.is_empty());
    assert!(sent.iter().all(SyncRecord::is_template));
}

#[test]
fn maxlen_bounds_every_message() {
    // 8 + 2 × 36 = 80 bytes: two records per message.
    let mut d = master(false, |c| c.maxlen = 100);
    for port in 0..5 {
        open(&mut d, at(0), 1000 + port);
    }
    let sent = drain(&mut d, at(2000));
    let sizes: Vec<usize> = sent.iter().map(Vec::len).collect();
    assert_eq!(sizes, [80, 80, 44]);
    for m in &sent {
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
    }
}

#[test]
fn a_full_queue_drops_the_newest_message_and_counts_it() {
    let mut d = master(false, |c| {
        c.maxlen = 44;
        c.queue = 2;
    });
    // One record a message (8 + 36 = 44 bytes).
    for port in 0..5 {
        open(&mut d, at(0), 2000 + port);
    }
    // Two queued, one being filled, two dropped when they found the queue full.
    assert_eq!(d.sync_counters().queue_drops, 2);
    let sent = drain(&mut d, at(2000));
    assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [44, 44, 44]);
}

/// A kernel master's datagram: two IPv4 records and an IPv6 one, with options, built
/// field by field from `struct ip_vs_sync_v4` / `ip_vs_sync_v6`.
fn kernel_datagram() -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, 3, 1, 0, 0]; // header: size filled in below, 3 records
    // Record 1: IPv4 TCP ESTABLISHED to .11, with an optional option the receiver does
    // not know (0x45, 2 bytes): 36 + 4 = 40 bytes.
    m.extend([0, 6, 0, 40]);
    m.extend(0x0000_0083u32.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    m.extend(40000u16.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(0u32.to_be_bytes());
    m.extend(600u32.to_be_bytes());
    m.extend([192, 0, 2, 1, 10, 0, 0, 100, 10, 0, 0, 11]);
    m.extend([0x45, 2, 0xaa, 0xbb]);
    // Record 2: IPv4 UDP with sequence data (a NAT leftover, 24 bytes) and a
    // persistence engine name: 36 + 26 + 5 = 67 bytes, padded to 68.
    m.extend([0, 17, 0, 67]);
    m.extend(0x0000_0183u32.to_be_bytes());
    m.extend(0u16.to_be_bytes());
    m.extend(5353u16.to_be_bytes());
    m.extend(53u16.to_be_bytes());
    m.extend(53u16.to_be_bytes());
    m.extend(0u32.to_be_bytes());
    m.extend(30u32.to_be_bytes());
    m.extend([192, 0, 2, 2, 10, 0, 0, 100, 10, 0, 0, 12]);
    m.push(1);
    m.push(24);
    m.extend([0u8; 24]);
    m.extend([3, 3, b's', b'i', b'p']);
    m.push(0); // padding to 32 bits
    // Record 3: IPv6 TCP FIN_WAIT, inactive, 72 bytes.
    m.extend([1, 6, 0, 72]);
    m.extend(0x0000_0183u32.to_be_bytes());
    m.extend(4u16.to_be_bytes());
    m.extend(40001u16.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(0u32.to_be_bytes());
    m.extend(100u32.to_be_bytes());
    m.extend(v6("2001:db8:1::1").octets());
    m.extend(v6(VIP6).octets());
    m.extend(v6("2001:db8::12").octets());
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(m.len(), 8 + 40 + 68 + 72);
    m
}

#[test]
fn a_backup_takes_a_kernel_masters_records() {
    let mut d = backup();
    assert_eq!(d.import_sync(at(1000), &kernel_datagram()), Ok(3));
    let c = d.connection(&key(CLIENT, 40000, VIP, 80)).unwrap();
    assert_eq!(c.state, ConnState::Established);
    assert_eq!(d.real(c.real).unwrap().addr(), ip("10.0.0.11"));
    assert_eq!(c.expires, at(601_000), "the record's timeout");
    assert_eq!(d.real(c.real).unwrap().active_conns(), 1);
    let udp = FlowKey { protocol: Protocol::Udp, ..key("192.0.2.2", 5353, VIP, 53) };
    let u = d.connection(&udp).unwrap();
    assert_eq!((u.state, u.expires), (ConnState::Udp, at(31_000)));
    assert_eq!(d.real(u.real).unwrap().addr(), ip("10.0.0.12"));
    assert_eq!(d.real(u.real).unwrap().inactive_conns(), 1);
    let six = d.connection(&key("2001:db8:1::1", 40001, VIP6, 80)).unwrap();
    assert_eq!(six.state, ConnState::FinWait);
    assert_eq!(d.real(six.real).unwrap().addr(), ip("2001:db8::12"));
    assert_eq!(d.sync_counters().imported, 3);
}

#[test]
fn a_backup_takes_version_0_with_its_own_state_timeouts() {
    // struct ip_vs_sync_mesg_v0 (nr_conns, syncid, size) and struct ip_vs_sync_conn_v0.
    let mut m = vec![1, 7, 0, 28];
    m.extend([0, 6]); // reserved, protocol
    m.extend(40002u16.to_be_bytes()); // cport
    m.extend(80u16.to_be_bytes()); // vport
    m.extend(80u16.to_be_bytes()); // dport
    m.extend([192, 0, 2, 3, 10, 0, 0, 100, 10, 0, 0, 12]); // caddr, vaddr, daddr
    m.extend(0x0003u16.to_be_bytes()); // flags: DROUTE, active
    m.extend(1u16.to_be_bytes()); // state ESTABLISHED
    let mut d = backup();
    assert_eq!(d.import_sync(at(0), &m), Ok(1));
    let c = d.connection(&key("192.0.2.3", 40002, VIP, 80)).unwrap();
    assert_eq!((c.state, c.expires), (ConnState::Established, at(900_000)));
}

#[test]
fn the_receiver_checks_size_syncid_and_record_versions() {
    let good = kernel_datagram();
    let mut d = backup();
    // The size field must be the datagram's length.
    assert!(d.import_sync(at(0), &good[..good.len() - 1]).is_err());
    assert_eq!(d.connection_count(), 0);
    // Version bits in a record end the datagram; the records before it are taken.
    let mut bad = good.clone();
    bad[8 + 40 + 2] |= 0x10;
    assert_eq!(d.import_sync(at(0), &bad), Err(wire::SyncError::RecordVersion(1)));
    assert_eq!(d.connection_count(), 1);
    // A backup with syncid 9 ignores syncid 0; one with 0 takes every ID.
    let mut nine = director_with(false);
    let mut config = SyncConfig::new(SyncMode::Backup);
    config.syncid = 9;
    nine.start_sync(config).unwrap();
    assert_eq!(nine.import_sync(at(0), &good), Ok(0));
    assert_eq!((nine.connection_count(), nine.sync_counters().syncid_ignored), (0, 1));
    let mut other = good.clone();
    other[1] = 9;
    assert_eq!(nine.import_sync(at(0), &other), Ok(3));
    let mut any = backup();
    assert_eq!(any.import_sync(at(0), &other), Ok(3));
    // A master takes no records.
    let mut m = master(false, |_| {});
    assert_eq!(m.import_sync(at(0), &good), Ok(3));
    assert_eq!(m.connection_count(), 0);
}

#[test]
fn an_unknown_mandatory_option_or_unsupported_protocol_skips_only_that_record() {
    let mut m = kernel_datagram();
    m[8 + 36] = 0x05; // record 1's option, now mandatory
    let mut d = backup();
    assert_eq!(d.import_sync(at(0), &m), Ok(3));
    assert!(d.connection(&key(CLIENT, 40000, VIP, 80)).is_none());
    assert_eq!((d.connection_count(), d.sync_counters().skipped), (2, 1));
}

/// One record as `SyncRecord::encode` would not be trusted to write it: a TCP connection
/// from `client:cport` to VIP:80 on `real`.
fn record(cport: u16, real: &str, flags: u32, state: u16) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 44, 1, 1, 0, 0, 0, 6, 0, 36];
    m.extend(flags.to_be_bytes());
    m.extend(state.to_be_bytes());
    m.extend(cport.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(80u16.to_be_bytes());
    m.extend(0u32.to_be_bytes());
    m.extend(900u32.to_be_bytes());
    m.extend([192, 0, 2, 1, 10, 0, 0, 100]);
    m.extend(v4(real).octets());
    m
}

#[test]
fn another_real_is_replaced_unless_the_record_is_inactive_and_only_inactive_is_updated() {
    let mut d = backup();
    let k = key(CLIENT, 7, VIP, 80);
    d.import_sync(at(0), &record(7, "10.0.0.11", 0x83, 1)).unwrap();
    let first = d.connection(&k).unwrap();
    // INACTIVE news for another server: the late end of a replaced connection, ignored.
    d.import_sync(at(0), &record(7, "10.0.0.12", 0x183, 4)).unwrap();
    assert_eq!(d.connection(&k).unwrap().real, first.real);
    assert_eq!(d.sync_counters().stale, 1);
    // Active for another server: replaces it.
    d.import_sync(at(0), &record(7, "10.0.0.12", 0x83, 1)).unwrap();
    let second = d.connection(&k).unwrap();
    assert_ne!(second.real, first.real);
    assert_eq!(d.real(first.real).unwrap().active_conns(), 0);
    assert_eq!(d.real(second.real).unwrap().active_conns(), 1);
    // Same server, INACTIVE and FIN_WAIT: moved to the inactive count.
    d.import_sync(at(1000), &record(7, "10.0.0.12", 0x183, 4)).unwrap();
    let c = d.connection(&k).unwrap();
    assert_eq!(c.state, ConnState::FinWait);
    assert_eq!(c.expires, at(901_000));
    let r = d.real(c.real).unwrap();
    assert_eq!((r.active_conns(), r.inactive_conns()), (0, 1));
    // A record for a server the backup does not have is not kept.
    d.import_sync(at(0), &record(8, "10.0.0.99", 0x83, 1)).unwrap();
    assert!(d.connection(&key(CLIENT, 8, VIP, 80)).is_none());
    assert_eq!(d.sync_counters().no_real, 1);
}

#[test]
fn a_resync_request_is_a_record_a_kernel_backup_skips() {
    let mut d = backup();
    assert!(d.request_resync(at(0)));
    let sent = drain(&mut d, at(0));
    let expected: Vec<u8> = [
        &[0, 0, 0, 50, 1, 1, 0, 0][..], // header: 8 + 42 bytes, one record
        &[0, 0, 0, 42], // IPv4, protocol 0 (not one IPVS handles: skipped), 36 + 6 bytes
        &[0; 32],       // flags, state, ports, fwmark, timeout, addresses: all 0
        &[0x50, 4, 0, 0, 0, 0], // option 0x50: bit 0x40, optional, skipped
    ]
    .concat();
    assert_eq!(sent, vec![expected]);
}

#[test]
fn a_master_answers_a_resync_request_with_its_whole_table() {
    let mut m = master(true, |_| {});
    for port in 0..100 {
        open(&mut m, at(0), 3000 + port);
    }
    send(&mut m, at(0), tcp4(CLIENT, 3000, VIP, 80, SYN)); // one in SYN_RECV... reused
    let _ = drain(&mut m, at(10_000));
    let mut b = backup();
    b.request_resync(at(10_000));
    for request in drain(&mut b, at(10_000)) {
        m.import_sync(at(10_000), &request).unwrap();
    }
    assert!(m.sync_bulk_pending());
    for message in drain(&mut m, at(10_000)) {
        b.import_sync(at(10_000), &message).unwrap();
    }
    assert!(!m.sync_bulk_pending());
    assert_eq!(table(&b), table(&m));
    assert_eq!(m.sync_counters().bulk_records, m.connection_count() as u64);
}

/// A table as both directors can show it: key, kind, real address, state, counts.
fn table(d: &Director) -> Vec<(String, bool, std::net::IpAddr, ConnState)> {
    let mut rows: Vec<_> = d
        .connections()
        .map(|c| {
            let template = matches!(c.kind, ConnKind::Template { .. });
            (format!("{:?}", c.key), template, d.real(c.real).unwrap().addr(), c.state)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    rows
}

fn counts(d: &Director) -> Vec<(std::net::IpAddr, u32, u32, u32)> {
    let mut rows: Vec<_> = d
        .reals()
        .map(|(_, r)| (r.addr(), r.active_conns(), r.inactive_conns(), r.persistent_conns()))
        .collect();
    rows.sort();
    rows
}

#[derive(Clone, Debug)]
enum Step {
    Tcp { client: u8, port: u16, flags: u8, data: bool },
    Udp { client: u8, port: u16 },
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let flags = prop_oneof![Just(SYN), Just(ACK), Just(ACK | PSH), Just(FIN | ACK), Just(RST)];
    prop_oneof![
        4 => (0u8..4, 0u16..6, flags, any::<bool>())
            .prop_map(|(client, port, flags, data)| Step::Tcp { client, port, flags, data }),
        1 => (0u8..4, 0u16..4).prop_map(|(client, port)| Step::Udp { client, port }),
        1 => (0u64..200_000).prop_map(Step::Wait),
    ]
}

fn run(m: &mut Director, now: &mut u64, step: &Step) {
    match *step {
        Step::Tcp { client, port, flags, data } => {
            let c = format!("192.0.2.{}", 10 + client);
            let payload: &[u8] = if data { b"data" } else { b"" };
            let mut f = tcp4_payload(&c, 1000 + port, VIP, 80, flags, payload);
            let _ = m.process(at(*now), &mut f);
        }
        Step::Udp { client, port } => {
            let c = format!("192.0.2.{}", 10 + client);
            let mut f = udp4(&c, 2000 + port, VIP, 53, b"q");
            let _ = m.process(at(*now), &mut f);
        }
        Step::Wait(ms) => *now += ms,
    }
}

proptest! {
    /// Whatever traffic a master saw, a backup that asked for a resync and imported the
    /// answer holds the same entries: keys, kinds, real servers, states, and each real
    /// server's active, inactive and persistent counts.
    #[test]
    fn a_backup_fed_a_masters_bulk_export_holds_its_table(
        steps in proptest::collection::vec(step(), 1..120),
        persistent in any::<bool>(),
    ) {
        let mut m = master(persistent, |_| {});
        let mut now = 1_000;
        for s in &steps {
            run(&mut m, &mut now, s);
        }
        m.handle_timeout(at(now));
        let _ = drain(&mut m, at(now));
        let mut b = director_with(persistent);
        b.start_sync(SyncConfig::new(SyncMode::Backup)).unwrap();
        b.request_resync(at(now));
        for r in drain(&mut b, at(now)) {
            m.import_sync(at(now), &r).unwrap();
        }
        for _ in 0..1000 {
            let messages = drain(&mut m, at(now));
            for message in &messages {
                b.import_sync(at(now), message).unwrap();
            }
            if !m.sync_bulk_pending() && messages.is_empty() {
                break;
            }
        }
        // Entries in state NONE never leave a master; none survive a packet.
        prop_assert_eq!(table(&b), table(&m));
        prop_assert_eq!(counts(&b), counts(&m));
    }

    /// With `sync_threshold` "0 1" a master sends every packet's entry that the TCP state
    /// rule lets through; a backup that imports each message as it comes holds every
    /// entry of the master in those states, on the same real server, in the same state.
    #[test]
    fn a_backup_fed_every_message_follows_the_masters_entries(
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut m = master(false, |c| { c.threshold = 0; c.period = 1; });
        let mut b = backup();
        let mut now = 1_000;
        for s in &steps {
            run(&mut m, &mut now, s);
            for message in drain(&mut m, at(now + 2_000)) {
                b.import_sync(at(now), &message).unwrap();
            }
        }
        let synced = [ConnState::Established, ConnState::FinWait, ConnState::Close,
            ConnState::CloseWait, ConnState::TimeWait, ConnState::Udp];
        m.handle_timeout(at(now));
        b.handle_timeout(at(now));
        for c in m.connections().filter(|c| synced.contains(&c.state)) {
            let on_backup = b.connection(&c.key);
            prop_assert!(on_backup.is_some(), "{:?} missing", c.key);
            let on_backup = on_backup.unwrap();
            let here = b.real(on_backup.real).unwrap().addr();
            let there = m.real(c.real).unwrap().addr();
            if here != there {
                // ip_vs_proc_conn: an INACTIVE record (sent while not established) for an
                // entry bound to another real server is taken for the late end of a replaced
                // connection and ignored. A SYN that reused a closed flow's entry
                // (conn_reuse_mode) and was scheduled elsewhere sends just that.
                prop_assert!(c.state != ConnState::Established, "{:?}: {here} against {there}", c.key);
                prop_assert!(b.sync_counters().stale > 0);
                continue;
            }
            prop_assert_eq!(on_backup.state, c.state);
        }
    }

    /// A record written by the encoder reads back the same, IPv4 or IPv6, after any
    /// number of others in the message.
    #[test]
    fn records_round_trip(
        recs in proptest::collection::vec((any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>(),
            any::<[u8; 16]>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>(),
            any::<u16>(), any::<u32>(), any::<u32>()), 1..30),
    ) {
        let mut buf = vec![0u8; 4096];
        let mut w = MessageWriter::new(&mut buf, 42).unwrap();
        let mut written = Vec::new();
        for (six, c, v, r, cp, vp, rp, flags, state, fwmark, timeout) in recs {
            let addr = |b: [u8; 16]| -> std::net::IpAddr {
                if six { std::net::Ipv6Addr::from(b).into() }
                else { std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into() }
            };
            let mut rec = SyncRecord::connection(
                FlowKey { protocol: Protocol::Tcp, client: addr(c), client_port: cp, vip: addr(v), vip_port: vp },
                addr(r),
            );
            rec.real_port = rp;
            rec.flags = flags & !wire::flags::HASHED;
            rec.state = state;
            rec.fwmark = fwmark;
            rec.timeout = Some(timeout);
            prop_assert!(w.push(&rec));
            written.push(rec);
        }
        let len = w.len();
        let m = wire::parse(&buf[..len]).unwrap();
        prop_assert_eq!((m.version, m.syncid), (1, 42));
        let read: Vec<SyncRecord> = m.records().map(|e| e.unwrap().record).collect();
        prop_assert_eq!(read, written);
    }

    /// Any bytes, and every prefix and one-byte change of a good datagram, are taken or
    /// refused without a panic, and never leave an entry a real server does not count.
    #[test]
    fn the_receiver_survives_anything(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        at_byte in any::<usize>(), value in any::<u8>(),
    ) {
        let mut d = backup();
        let _ = d.import_sync(at(0), &bytes);
        let mut good = kernel_datagram();
        let i = at_byte % good.len();
        good[i] = value;
        let _ = d.import_sync(at(0), &good);
        for len in 0..good.len() {
            let _ = d.import_sync(at(0), &good[..len]);
        }
        let counted: u32 = d.reals().map(|(_, r)| r.active_conns() + r.inactive_conns() + r.persistent_conns()).sum();
        prop_assert_eq!(counted as usize, d.connection_count());
    }
}

/// A datagram from `syncid` holding dr's bulk resync request.
fn resync_request(syncid: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, syncid).unwrap();
    let (record, option) = wire::resync_request_record();
    assert!(w.push_with(&record, &option));
    let len = w.len();
    buf[..len].to_vec()
}

/// A datagram holding a resync request from the director of `origin`.
fn resync_request_from(origin: u32) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, 0).unwrap();
    let (record, option) = wire::resync_request_from(origin);
    assert!(w.push_with(&record, &option));
    let len = w.len();
    buf[..len].to_vec()
}

/// The protocol-0 records (resync marks) in `messages`.
fn marks(messages: &[Vec<u8>]) -> usize {
    let records = messages.iter().flat_map(|m| {
        wire::parse(m).unwrap().records().map(|e| e.unwrap().record).collect::<Vec<_>>()
    });
    records.filter(|r| r.protocol == 0).count()
}

#[test]
fn a_resync_request_during_a_bulk_resync_or_its_hold_off_is_deferred_and_answered_once() {
    let mut m = master(false, |_| {});
    for port in 0..20 {
        open(&mut m, at(0), 3000 + port);
    }
    let _ = drain(&mut m, at(5_000));
    m.import_sync(at(10_000), &resync_request(0)).unwrap();
    assert!(m.sync_bulk_pending());
    // Under way: the same requester again is being answered already.
    m.import_sync(at(10_000), &resync_request(0)).unwrap();
    assert_eq!(m.sync_counters().resync_requests_ignored, 1);
    let first = drain(&mut m, at(10_000));
    assert!(!first.is_empty());
    assert_eq!(marks(&first), 2, "a start and an end mark");
    assert!(!m.sync_bulk_pending());
    let bulk = m.sync_counters().bulk_records;
    // Ended at 10 s: requests until 20 s wait, at most four requesters, each once.
    for origin in [7, 7, 8, 9, 10, 11] {
        m.import_sync(at(19_999), &resync_request_from(origin)).unwrap();
    }
    let c = m.sync_counters();
    assert_eq!((c.resync_requests_deferred, c.resync_requests_ignored), (4, 3));
    assert!(!m.sync_bulk_pending());
    assert!(drain(&mut m, at(19_999)).is_empty(), "nothing before the hold-off is over");
    // The embedder is woken for it, and one bulk resync answers all four.
    assert_eq!(m.poll_timeout(), Some(at(20_000)));
    m.handle_timeout(at(20_000));
    assert!(m.sync_bulk_pending());
    let second = drain(&mut m, at(20_000));
    assert_eq!(marks(&second), 8, "a start and an end mark for each of the four");
    assert_eq!(m.sync_counters().bulk_records, 2 * bulk);
    assert_eq!(m.sync_counters().resync_requests_received, 8);
    // A flood of requests yields no more than one bulk resync per hold-off.
    for origin in 100..200 {
        m.import_sync(at(20_000), &resync_request_from(origin)).unwrap();
    }
    assert!(drain(&mut m, at(29_999)).is_empty());
    let _ = drain(&mut m, at(30_000));
    assert_eq!(m.sync_counters().bulk_records, 3 * bulk);
}

#[test]
fn poll_sync_gives_one_message_per_call_and_a_bulk_resync_goes_on_over_calls() {
    let mut m = master(false, |c| c.maxlen = 100); // two IPv4 records a message
    for port in 0..20 {
        open(&mut m, at(0), 3000 + port);
    }
    let _ = drain(&mut m, at(5_000));
    m.import_sync(at(10_000), &resync_request(0)).unwrap();
    let mut messages = 0;
    while m.sync_bulk_pending() {
        assert!(m.poll_sync(at(10_000)).is_some());
        messages += 1;
        assert!(messages < 100);
    }
    let _ = drain(&mut m, at(10_000));
    assert_eq!(m.sync_counters().bulk_records, 20);
    assert!(messages >= 9, "{messages}");
}

#[test]
fn a_master_answers_resync_requests_of_its_syncid_and_of_0_only() {
    let mut m = master(false, |c| c.syncid = 5);
    m.import_sync(at(0), &resync_request(7)).unwrap();
    assert!(!m.sync_bulk_pending());
    assert_eq!(m.sync_counters().syncid_ignored, 1);
    // A backup left at syncid 0 (it takes every ID) is answered.
    m.import_sync(at(0), &resync_request(0)).unwrap();
    assert!(m.sync_bulk_pending());
    let _ = drain(&mut m, at(0));
    m.import_sync(at(60_000), &resync_request(5)).unwrap();
    assert!(m.sync_bulk_pending());
    // A backup with its own ID still takes only that one.
    let mut b = director_with(false);
    let mut config = SyncConfig::new(SyncMode::Backup);
    config.syncid = 5;
    b.start_sync(config).unwrap();
    let mut other = record(7, "10.0.0.11", 0x83, 1);
    other[1] = 0;
    b.import_sync(at(0), &other).unwrap();
    assert_eq!((b.connection_count(), b.sync_counters().syncid_ignored), (0, 1));
}

#[test]
fn a_record_with_a_firewall_mark_is_not_bound_to_an_address_service() {
    let mut d = backup();
    let mut m = record(7, "10.0.0.11", 0x83, 1);
    m[8 + 16..8 + 20].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(d.import_sync(at(0), &m), Ok(1));
    assert_eq!(d.connection_count(), 0);
    assert_eq!(d.sync_counters().no_real, 1);
    // The same without the mark is taken.
    d.import_sync(at(0), &record(7, "10.0.0.11", 0x83, 1)).unwrap();
    assert_eq!(d.connection_count(), 1);
}

#[test]
fn an_unknown_mandatory_option_ends_the_records_options_so_a_bad_one_after_it_skips_only_that_record()
 {
    let mut m = kernel_datagram();
    // Record 1's option, now mandatory (0x05) of 1 byte, then a lone byte that is no
    // option: the kernel stops reading the options at the mandatory one.
    m[8 + 36] = 0x05;
    m[8 + 36 + 1] = 1;
    let mut d = backup();
    assert_eq!(d.import_sync(at(0), &m), Ok(3));
    assert!(d.connection(&key(CLIENT, 40000, VIP, 80)).is_none());
    assert_eq!((d.connection_count(), d.sync_counters().skipped), (2, 1));
    assert_eq!(d.sync_counters().messages_bad, 0);
}

#[test]
fn a_template_record_of_an_unknown_state_is_taken_not_assured_as_the_kernel_takes_it() {
    // ip_vs_proc_sync_conn only logs a template state >= IP_VS_CTPL_S_LAST (2), and
    // goes on: so does dr, and the template is not assured.
    let mut d = backup();
    assert_eq!(d.import_sync(at(0), &record(0, "10.0.0.11", 0x1183, 2)), Ok(1));
    assert_eq!((d.template_count(), d.sync_counters().skipped), (1, 0));
}
