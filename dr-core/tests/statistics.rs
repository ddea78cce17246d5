//! Statistics (spec §4): the kernel's 2-second rate estimator, zeroing, and the `--rate`,
//! `--timeout`, `-c` and JSON listings.

mod support;

use dr_core::{
    Director, Instant, ListingFormat, Persistence, Protocol, RealConfig, SchedulerKind,
    ServiceConfig, ServiceId, TimeoutSettings,
};
use support::*;

const VIP: &str = "10.0.0.100";

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// A UDP service with two real servers, the clock started at 0.
fn setup() -> (Director, ServiceId) {
    let mut d = director(100_000);
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    d.handle_timeout(s(0));
    (d, svc)
}

/// `n` new UDP connections spread over the 2 s from `start`, then the sample at its end.
fn window(d: &mut Director, start: u64, n: u32, next_client: &mut u32) {
    for i in 0..n {
        *next_client += 1;
        let client = format!("192.0.{}.{}", 2 + *next_client / 250, *next_client % 250 + 1);
        let at = Instant::from_millis(start * 1000 + u64::from(i) * 2000 / u64::from(n));
        assert!(d.process(at, &mut udp4(&client, 5353, VIP, 53, b"query")).is_transmit());
    }
    assert!(d.poll_timeout() <= Some(s(start + 2)), "a sample is due every 2 s");
    d.handle_timeout(s(start + 2));
}

#[test]
fn the_estimator_follows_the_kernels_sequence() {
    // Spec §4.2: a steady 50 connections per second shows 12, 22, 29, 34, 38, 41, 43, 45;
    // from 34, when the traffic stops: 26, 19, 14, 11.
    let (mut d, svc) = setup();
    let mut client = 0;
    let mut shown = Vec::new();
    for k in 0..8 {
        window(&mut d, 2 * k, 100, &mut client);
        shown.push(d.service(svc).unwrap().stats().rates().cps);
    }
    assert_eq!(shown, [12, 22, 29, 34, 38, 41, 43, 45]);

    let (mut d, svc) = setup();
    let mut client = 0;
    for k in 0..4 {
        window(&mut d, 2 * k, 100, &mut client);
    }
    assert_eq!(d.service(svc).unwrap().stats().rates().cps, 34);
    let mut after = Vec::new();
    for k in 4..8 {
        d.handle_timeout(s(2 * k + 2));
        after.push(d.service(svc).unwrap().stats().rates().cps);
    }
    assert_eq!(after, [26, 19, 14, 11]);
}

#[test]
fn packet_and_byte_rates_and_the_totals() {
    let (mut d, svc) = setup();
    let mut client = 0;
    for k in 0..30 {
        window(&mut d, 2 * k, 100, &mut client);
    }
    // Converged on 50 packets (one per connection) and 50 x 33 bytes per second.
    let rates = d.service(svc).unwrap().stats().rates();
    assert_eq!((rates.cps, rates.inpps, rates.inbps), (50, 50, 50 * 33));
    assert_eq!(d.totals().rates(), rates);
    // rr split them evenly.
    for &real in d.service(svc).unwrap().reals() {
        assert_eq!(d.real(real).unwrap().stats().rates().cps, 25);
    }
}

#[test]
fn a_long_silence_decays_every_rate_to_zero() {
    let (mut d, svc) = setup();
    let mut client = 0;
    window(&mut d, 0, 1000, &mut client);
    assert!(d.service(svc).unwrap().stats().rates().cps > 0);
    // An hour without a call: the missed samples are taken (bounded), then the phase kept.
    d.handle_timeout(s(3602));
    assert_eq!(d.service(svc).unwrap().stats().rates(), Default::default());
    assert_eq!(d.poll_timeout(), Some(s(3604)));
}

#[test]
fn missed_samples_taken_at_once_match_samples_taken_on_time() {
    let (mut on_time, svc) = setup();
    let (mut late, _) = setup();
    let (mut a, mut b) = (0, 0);
    window(&mut on_time, 0, 1000, &mut a);
    window(&mut late, 0, 1000, &mut b);
    for k in 1..=12 {
        on_time.handle_timeout(s(2 + 2 * k));
    }
    late.handle_timeout(s(2 + 2 * 12 + 1));
    let rates = |d: &Director| {
        let real = d.service(svc).unwrap().reals()[0];
        (
            d.totals().rates(),
            d.service(svc).unwrap().stats().rates(),
            d.real(real).unwrap().stats().rates(),
        )
    };
    assert_eq!(rates(&late), rates(&on_time));
    assert!(rates(&late).0.inpps > 0, "rates have not decayed yet");
    assert_eq!(late.poll_timeout(), Some(s(28)));
}

#[test]
fn zeroing_all_and_one_service() {
    let (mut d, svc) = setup();
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let mut client = 0;
    window(&mut d, 0, 10, &mut client);
    let _ = d.process(s(2), &mut tcp4("192.0.2.9", 1, VIP, 80, SYN));
    d.zero_service_stats(svc).unwrap();
    assert_eq!(*d.service(svc).unwrap().stats(), Default::default());
    for &real in d.service(svc).unwrap().reals() {
        assert_eq!(*d.real(real).unwrap().stats(), Default::default());
    }
    assert_eq!(d.service(web).unwrap().stats().conns, 1, "other services keep theirs");
    assert_eq!(d.totals().conns, 11, "the totals keep theirs");
    // Connections and their counts are not statistics.
    assert_eq!(d.connection_count(), 11);
    d.zero_stats();
    assert_eq!(*d.totals(), Default::default());
    assert_eq!(d.service(web).unwrap().stats().conns, 0);
    let real = d.service(web).unwrap().reals()[0];
    assert_eq!(d.real(real).unwrap().active_conns(), 1);
    // Counting starts again from 0.
    let _ = d.process(s(3), &mut tcp4("192.0.2.9", 1, VIP, 80, ACK));
    assert_eq!(d.service(web).unwrap().stats().inpkts, 1);
}

#[test]
fn rate_listing_matches_ipvsadm() {
    let (mut d, _) = setup();
    let mut client = 0;
    for k in 0..30 {
        window(&mut d, 2 * k, 100, &mut client);
    }
    let expected = "\
IP Virtual Server version 1.2.1 (size=100000)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
UDP  10.0.0.100:53                      50       50        0     1650        0
  -> 10.0.0.11:53                       25       25        0      825        0
  -> 10.0.0.12:53                       25       25        0      825        0
";
    assert_eq!(d.listing(ListingFormat::Rate).to_string(), expected);
}

#[test]
fn timeout_listing_matches_ipvsadm() {
    let (mut d, _) = setup();
    assert_eq!(
        d.listing(ListingFormat::Timeout).to_string(),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    d.set_timeouts(TimeoutSettings { tcp: 3600, tcpfin: 0, udp: 30 }).unwrap();
    assert_eq!(
        d.listing(ListingFormat::Timeout).to_string(),
        "Timeout (tcp tcpfin udp): 3600 120 30\n"
    );
}

#[test]
fn connection_listing_matches_ipvsadm() {
    let mut d = director(64);
    let web = d
        .add_service(
            ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)
                .with_persistence(Persistence::new(360).with_prefix_len(24)),
        )
        .unwrap();
    d.add_real(web, RealConfig::new(ip("10.0.0.12")).with_mac(mac(REAL_MACS[1]))).unwrap();
    let dns =
        d.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Rr)).unwrap();
    d.add_real(dns, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    let _ = d.process(s(0), &mut tcp4("203.0.113.7", 51514, VIP, 80, SYN));
    let _ = d.process(s(1), &mut tcp4("203.0.113.7", 51514, VIP, 80, ACK));
    let _ = d.process(s(1), &mut tcp4("203.0.113.9", 40022, VIP, 80, SYN));
    let _ = d.process(s(1), &mut tcp4("203.0.113.9", 40022, VIP, 80, ACK));
    let _ = d.process(s(1), &mut tcp4("203.0.113.9", 40022, VIP, 80, FIN | ACK));
    let _ = d.process(s(1), &mut udp4("198.51.100.4", 5353, VIP, 53, b"q"));
    let text = d.connection_listing(Instant::from_millis(1_500)).to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination"
    );
    lines[2..].sort_unstable();
    assert_eq!(
        lines[2..],
        [
            "TCP 01:59  FIN_WAIT    203.0.113.9:40022  10.0.0.100:80      10.0.0.12:80",
            "TCP 05:59  ASSURED     203.0.113.0:0      10.0.0.100:80      10.0.0.12:80",
            "TCP 14:59  ESTABLISHED 203.0.113.7:51514  10.0.0.100:80      10.0.0.12:80",
            "UDP 04:59  UDP         198.51.100.4:5353  10.0.0.100:53      10.0.0.11:53",
        ]
    );
}

#[test]
fn json_listing_carries_everything() {
    let (mut d, svc) = setup();
    d.set_persistence(svc, Some(Persistence::new(60))).unwrap();
    let mut client = 0;
    window(&mut d, 0, 100, &mut client);
    let text = d.listing(ListingFormat::Json).to_string();
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let service = &v["services"][0];
    assert_eq!(service["protocol"], "UDP");
    assert_eq!(service["vip"], VIP);
    assert_eq!(service["persistent"], 60);
    assert_eq!(service["netmask"], 32);
    assert_eq!(service["stats"]["conns"], 100);
    assert_eq!(service["rates"]["cps"], 12);
    assert_eq!(service["reals"].as_array().unwrap().len(), 2);
    let persistent: u64 = service["reals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["persistent"].as_u64().unwrap())
        .sum();
    assert_eq!(persistent, 100, "one template per client");
    assert_eq!(v["totals"]["stats"]["inpkts"], 100);
    assert_eq!(v["timeouts"]["udp"], 300);
    assert_eq!(v["templates"], 100);
    assert_eq!(v["connections"], 200);
}
