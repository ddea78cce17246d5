//! `dr-demo-capture [--repeat N] OUTPUT.pcap`: writes the bundled demo capture,
//! `examples/data/demo.pcap` (or, with `--repeat`, the scenario N times over, in consecutive
//! ten-minute windows: a large capture for load tests).
//!
//! Ten minutes of traffic to the VIPs of `examples/data/demo.toml`, built with smoltcp and
//! timed by a fixed-seed generator, so the same build always writes the same bytes:
//!
//! - 400 IPv4 and 60 IPv6 web clients: SYN, ACK, requests, then FIN (most), RST (some) or
//!   nothing (left open); 40 of the IPv4 clients come over VLAN 10;
//! - 300 DNS queries over UDP from 150 clients;
//! - a second wave of clients five minutes later, after the first wave's UDP flows (300 s)
//!   and closed connections (120 s) have expired;
//! - ARP and Neighbor Solicitations for the VIPs, traffic for the director's own address,
//!   broadcasts and multicasts, stray ACKs, and a dozen malformed frames;
//! - a ping to the VIP (answered), a router's "fragmentation needed" about a reply of a
//!   live connection (relayed to its real server), and a DNS query in three fragments
//!   (all three to the same real server).

use dr_core::Instant;
use dr_examples::frames::{
    ACK, DIRECTOR_MAC, EthernetProtocol, FIN, IpProtocol, PSH, ROUTER_MAC, RST, SYN, arp_request,
    datagram, ethernet, icmp4_echo, icmp4_error, ipv4_packet, malformed_variants,
    neighbor_solicitation, tcp4, tcp4_payload, tcp6, udp4, udp4_fragments, v4, with_vlans,
};
use dr_io_pcap::PcapSink;
use std::process::ExitCode;

/// 2026-01-01 00:00:00 UTC.
const EPOCH_SECS: u64 = 1_767_225_600;
const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

/// A fixed-seed xorshift generator: the capture must not change from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Frames with their time in milliseconds from the start.
struct Timeline(Vec<(u64, Vec<u8>)>);

impl Timeline {
    fn at(&mut self, ms: u64, frame: Vec<u8>) {
        self.0.push((ms, frame));
    }
}

fn web_client(t: &mut Timeline, rng: &mut Rng, start: u64, client: &str, port: u16, vlan: bool) {
    let tag = |f: Vec<u8>| if vlan { with_vlans(&f, &[(0x8100, 10)]) } else { f };
    let mut at = start;
    t.at(at, tag(tcp4(client, port, VIP, 80, SYN)));
    at += 1 + rng.below(40);
    t.at(at, tag(tcp4(client, port, VIP, 80, ACK)));
    for request in 0..=rng.below(3) {
        at += 1 + rng.below(200);
        let body = format!("GET /page/{request} HTTP/1.1\r\nHost: demo\r\n\r\n");
        t.at(at, tag(tcp4_payload(client, port, VIP, 80, ACK | PSH, body.as_bytes())));
    }
    at += 50 + rng.below(2_000);
    match rng.below(10) {
        0 => t.at(at, tag(tcp4(client, port, VIP, 80, RST | ACK))),
        1 => {} // left open: still established at the end
        _ => {
            t.at(at, tag(tcp4(client, port, VIP, 80, FIN | ACK)));
            t.at(at + 1 + rng.below(30), tag(tcp4(client, port, VIP, 80, ACK)));
        }
    }
}

fn scenario() -> Vec<(u64, Vec<u8>)> {
    let mut rng = Rng(0x0dd5_eed5_dead_beef);
    let mut t = Timeline(Vec::new());
    // The router resolves the VIPs first.
    t.at(0, arp_request(VIP));
    t.at(2, neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6));
    for wave in 0..2u64 {
        let base = 10 + wave * 300_000;
        for c in 0..200u64 {
            let client = format!("198.51.{}.{}", 100 + c / 200, c % 200 + 1);
            let port = 40_000 + (c as u16) + 1_000 * wave as u16;
            let start = base + rng.below(60_000);
            web_client(&mut t, &mut rng, start, &client, port, wave == 0 && c < 40);
        }
        for c in 0..30u64 {
            let start = base + rng.below(60_000);
            let client = format!("2001:db8:1::{:x}", c + 1 + 100 * wave);
            let port = 50_000 + c as u16;
            t.at(start, tcp6(&client, port, VIP6, 80, SYN));
            t.at(start + 5 + rng.below(20), tcp6(&client, port, VIP6, 80, ACK));
            t.at(start + 200 + rng.below(500), tcp6(&client, port, VIP6, 80, FIN | ACK));
        }
        for q in 0..150u64 {
            let client = format!("203.0.113.{}", q % 75 + 1);
            let start = base + rng.below(120_000);
            let query = [0x12, q as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            t.at(start, udp4(&client, 5_300 + q as u16, VIP, 53, &query));
        }
    }
    // Not for a VIP service: the host's own traffic, other ports, echo, broadcasts.
    t.at(1_000, tcp4("198.51.100.7", 51_000, "10.0.0.2", 22, SYN));
    t.at(1_100, tcp4("198.51.100.7", 51_001, VIP, 443, SYN));
    t.at(1_200, icmp4_echo("198.51.100.7", VIP));
    t.at(1_250, icmp4_error("198.51.100.1", VIP, 13, 0, &[0; 12])); // timestamp: the host's
    // ICMP about a live connection, and a fragmented datagram.
    t.at(3_000, tcp4("198.51.100.20", 52_000, VIP, 80, SYN));
    t.at(3_010, tcp4("198.51.100.20", 52_000, VIP, 80, ACK));
    let reply = tcp4_payload(VIP, 80, "198.51.100.20", 52_000, ACK | PSH, &[0; 1400]);
    t.at(3_100, icmp4_error("198.51.100.1", VIP, 3, 4, &datagram(&reply)[..28]));
    let query: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    for (i, fragment) in
        udp4_fragments("203.0.113.200", 5_400, VIP, 53, &query, 4242, 1480).into_iter().enumerate()
    {
        t.at(3_200 + i as u64, fragment);
    }
    t.at(1_300, arp_request("10.0.0.1"));
    let mut multicast = udp4("10.0.0.50", 5353, "224.0.0.251", 5353, b"mdns");
    multicast[0..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    t.at(1_400, multicast);
    t.at(1_500, tcp4("198.51.100.9", 42_424, VIP, 80, ACK | PSH)); // no connection
    // Malformed frames.
    let good = tcp4("198.51.100.66", 6_666, VIP, 80, SYN);
    let mut malformed = malformed_variants(&good);
    malformed.push(ethernet(
        DIRECTOR_MAC,
        ROUTER_MAC,
        EthernetProtocol::Ipv4,
        &ipv4_packet(v4("198.51.100.66"), v4(VIP), IpProtocol::Udp, 64, &[0; 4]),
    ));
    for (i, frame) in malformed.into_iter().enumerate() {
        t.at(2_000 + 37 * i as u64, frame);
    }
    let mut frames = t.0;
    frames.sort_by_key(|(ms, _)| *ms); // stable: equal times keep their order
    frames
}

/// The length of one run of the scenario, for `--repeat`.
const WINDOW_MS: u64 = 600_000;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (repeat, path) = match args.as_slice() {
        [path] => (1, path.clone()),
        [flag, n, path] if flag == "--repeat" => {
            match n.to_str().and_then(|n| n.parse::<u64>().ok()) {
                Some(n) if n > 0 => (n, path.clone()),
                _ => {
                    eprintln!("dr-demo-capture: --repeat takes a count of 1 or more");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => {
            eprintln!("usage: dr-demo-capture [--repeat N] OUTPUT.pcap");
            return ExitCode::FAILURE;
        }
    };
    let write = || -> Result<u64, dr_io_pcap::PcapIoError> {
        let mut sink = PcapSink::create(&path)?;
        let frames = scenario();
        for round in 0..repeat {
            for (ms, frame) in &frames {
                sink.write(
                    Instant::from_millis(EPOCH_SECS * 1_000 + round * WINDOW_MS + ms),
                    frame,
                )?;
            }
        }
        sink.finish()?;
        Ok(frames.len() as u64 * repeat)
    };
    match write() {
        Ok(n) => {
            eprintln!(
                "dr-demo-capture: {n} frames written to {}",
                std::path::Path::new(&path).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dr-demo-capture: {e}");
            ExitCode::FAILURE
        }
    }
}
