//! The driver loop over the in-memory backend.

mod support;

use dr_core::{
    Driver, DriverOptions, FrameIo, Instant, MemoryIo, Protocol, RealConfig, SchedulerKind,
    ServiceConfig,
};
use smoltcp::wire::ArpOperation;
use support::*;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn memory_io_batches_and_reports_the_next_timestamp() {
    let mut io = MemoryIo::new(2);
    assert_eq!(io.now(), Instant::ZERO);
    io.push(t(5), vec![1u8; 20]);
    io.push(t(6), vec![2u8; 20]);
    io.push(t(7), vec![3u8; 20]);
    assert_eq!(io.now(), t(5), "a replay's clock is the next frame's timestamp");
    let mut seen = Vec::new();
    let batch = io
        .process_batch(|now, frame| {
            seen.push((now, frame[0]));
            frame[0] = 9;
            if now == t(5) {
                dr_core::Verdict::Reply
            } else {
                dr_core::Verdict::Pass(dr_core::PassReason::NotVip)
            }
        })
        .unwrap();
    assert_eq!((batch.frames, batch.transmitted, batch.finished), (2, 1, false));
    assert_eq!(seen, [(t(5), 1), (t(6), 2)]);
    assert_eq!(
        io.transmitted(),
        &[(t(5), vec![9u8; 1].into_iter().chain([1u8; 19]).collect::<Vec<_>>())]
    );
    assert_eq!(io.now(), t(7));
    let batch = io.process_batch(|_, _| dr_core::Verdict::Reply).unwrap();
    assert_eq!((batch.frames, batch.finished), (1, true));
    assert_eq!(io.now(), t(7), "after the last frame the clock stays there");
    io.send(t(8), &[7u8; 3]).unwrap();
    assert_eq!(io.take_transmitted().len(), 3);
    assert!(io.transmitted().is_empty());
}

#[test]
fn driver_announces_first_forwards_and_resolves_neighbours() {
    let mut d = director(256);
    let web = d
        .add_service(ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, SchedulerKind::Rr))
        .unwrap();
    let known =
        d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let learned = d.add_real(web, RealConfig::new(ip("10.0.0.12"))).unwrap();

    let mut io = MemoryIo::new(4);
    for port in 0..4 {
        io.push(t(1000 + port), tcp4("192.0.2.7", port as u16, "10.0.0.100", 80, SYN));
    }
    // The second batch brings the answer to the director's ARP request.
    io.push(
        t(2000),
        arp(ArpOperation::Reply, DIRECTOR_MAC, REAL_MACS[1], "10.0.0.12", DIRECTOR_MAC, "0.0.0.0"),
    );
    for port in 4..7 {
        io.push(t(3000 + port), tcp4("192.0.2.7", port as u16, "10.0.0.100", 80, SYN));
    }
    let mut driver = Driver::new(DriverOptions::default());
    let run = driver.run(&mut d, &mut io).unwrap();
    assert_eq!((run.frames, run.batches), (8, 2));
    assert_eq!(run.transmitted, 7);
    assert_eq!(run.generated, 2, "one announcement, one ARP request");

    let tx = io.transmitted();
    // 1. The announcement, stamped with the first frame's time, before any forwarding.
    assert_eq!(tx[0].0, t(1000));
    let (eth, announcement) = parse_arp(&tx[0].1);
    assert_eq!(eth.dst_addr.0, [0xff; 6]);
    assert!(
        matches!(announcement, smoltcp::wire::ArpRepr::EthernetIpv4 { source_protocol_addr, .. } if source_protocol_addr == v4("10.0.0.100"))
    );
    // 2. The first four SYNs all go to the only resolved real server.
    for (_, frame) in &tx[1..5] {
        assert_eq!(&frame[0..6], &REAL_MACS[0]);
    }
    // 3. After that batch, the ARP request for the unresolved one.
    let (_, request) = parse_arp(&tx[5].1);
    assert!(
        matches!(request, smoltcp::wire::ArpRepr::EthernetIpv4 { operation: ArpOperation::Request, target_protocol_addr, .. } if target_protocol_addr == v4("10.0.0.12"))
    );
    // 4. Once learned, round robin uses both.
    let macs: Vec<&[u8]> = tx[6..].iter().map(|(_, f)| &f[0..6]).collect();
    assert!(macs.contains(&&REAL_MACS[0][..]) && macs.contains(&&REAL_MACS[1][..]), "{macs:?}");
    assert!(d.real(learned).unwrap().mac().is_some());
    assert!(d.real(known).unwrap().stats().conns >= 5);
}

#[test]
fn driver_expires_connections_between_frames_of_a_batch() {
    // lc over B, A (list order, newest first). Flows 1-3 go B, A, B: B holds 2, A 1.
    // Flow 1 (on B) expires at 300 s. If the driver expires it before the fourth frame of
    // the same batch, B and A hold 1 each and lc picks B (the earlier); if it only expired
    // after the batch, lc would pick A.
    let mut d = director(256);
    let dns = d
        .add_service(ServiceConfig::new(Protocol::Udp, ip("10.0.0.100"), 53, SchedulerKind::Lc))
        .unwrap();
    let a = d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let b = d.add_real(dns, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    let mut io = MemoryIo::new(64);
    io.push(t(0), udp4("192.0.2.7", 1, "10.0.0.100", 53, b"a"));
    io.push(t(1_000), udp4("192.0.2.7", 2, "10.0.0.100", 53, b"b"));
    io.push(t(2_000), udp4("192.0.2.7", 3, "10.0.0.100", 53, b"c"));
    io.push(t(300_000), udp4("192.0.2.7", 4, "10.0.0.100", 53, b"d"));
    let mut options = DriverOptions::default();
    options.announce = false;
    let mut driver = Driver::new(options);
    let batch = driver.step(&mut d, &mut io).unwrap();
    assert!(batch.finished);
    assert_eq!(batch.frames, 4);
    let macs: Vec<&[u8]> = io.transmitted().iter().map(|(_, f)| &f[0..6]).collect();
    assert_eq!(macs, [&REAL_MACS[1][..], &REAL_MACS[0][..], &REAL_MACS[1][..], &REAL_MACS[1][..]]);
    assert_eq!(d.counters().conns_expired(), 1);
    assert_eq!((d.real(a).unwrap().inactive_conns(), d.real(b).unwrap().inactive_conns()), (1, 2));
    assert_eq!(driver.stats().generated, 0);
}
