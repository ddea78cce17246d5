//! A director on a bundled default scenario, in memory: two VIPs (IPv4 and IPv6), TCP and
//! UDP services, four real servers (one whose MAC must be learned by ARP), a few hundred
//! clients opening, using and closing connections over ten minutes, ARP and Neighbor
//! Discovery for the VIPs, and some malformed frames. Frames are built with smoltcp, driven
//! through `MemoryIo` and `Driver`, and the run ends with what the director decided.
//!
//! `cargo run -p dr-core --example demo`

// The frame builders the tests use, over smoltcp's `wire` module.
#[path = "../tests/support/mod.rs"]
mod support;

use dr_core::{
    Config, Director, Driver, DriverOptions, Instant, MacAddr, MemoryIo, Protocol, RealConfig,
    SchedulerKind, ServiceConfig,
};
use smoltcp::wire::ArpOperation;
use std::error::Error;
use support::{
    ACK, DIRECTOR_MAC, FIN, REAL_MACS, ROUTER_MAC, SYN, arp, ip, neighbor_solicitation, tcp4,
    tcp4_payload, tcp6, udp4,
};

const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";
/// Address, weight, and whether the MAC is configured (the last one is learned by ARP).
const REALS: [(&str, u32, bool); 4] = [
    ("10.0.0.11", 1, true),
    ("10.0.0.12", 1, true),
    ("10.0.0.13", 0, true),
    ("10.0.0.14", 1, false),
];

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = Config::new(MacAddr(DIRECTOR_MAC), [0x5eed, 1, 2, 3]);
    config.capacity = 4096;
    config.ipv4 = Some("10.0.0.2".parse()?);
    let mut director = Director::new(config)?;
    let service = |proto, vip, port| ServiceConfig::new(proto, ip(vip), port, SchedulerKind::Rr);
    let web = director.add_service(service(Protocol::Tcp, VIP, 80))?;
    let dns = director.add_service(service(Protocol::Udp, VIP, 53))?;
    let web6 = director.add_service(service(Protocol::Tcp, VIP6, 80))?;
    for (i, (addr, weight, known)) in REALS.into_iter().enumerate() {
        let real = RealConfig::new(ip(addr)).with_weight(weight);
        let real = if known { real.with_mac(MacAddr(REAL_MACS[i])) } else { real };
        director.add_real(web, real)?;
        director.add_real(dns, real)?;
        if i < 2 {
            let addr6 = ip(&format!("2001:db8::{}", 11 + i));
            director.add_real(web6, RealConfig::new(addr6).with_mac(MacAddr(REAL_MACS[i])))?;
        }
    }

    let mut io = MemoryIo::new(32);
    let mut ms = 0u64;
    let mut at = |step: u64| {
        ms += step;
        Instant::from_millis(ms)
    };
    io.push(at(1), support::arp_request(VIP));
    io.push(at(1), neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6));
    for c in 0..300u16 {
        if c == 20 {
            // By now the director has asked for the MAC it lacks; the real server answers.
            let reply = arp(
                ArpOperation::Reply,
                DIRECTOR_MAC,
                REAL_MACS[3],
                REALS[3].0,
                DIRECTOR_MAC,
                "10.0.0.2",
            );
            io.push(at(1), reply);
        }
        let client = format!("192.0.2.{}", c % 250 + 1);
        let port = 30000 + c;
        io.push(at(7), tcp4(&client, port, VIP, 80, SYN));
        io.push(at(3), tcp4(&client, port, VIP, 80, ACK));
        io.push(
            at(2),
            tcp4_payload(&client, port, VIP, 80, ACK, b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n"),
        );
        if c % 3 != 0 {
            io.push(at(20), tcp4(&client, port, VIP, 80, FIN | ACK));
        }
        io.push(
            at(1),
            udp4(&client, port, VIP, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
        );
        if c % 6 == 0 {
            io.push(at(1), tcp6(&format!("2001:db8:1::{}", c + 1), 40000 + c, VIP6, 80, SYN));
        }
    }
    let mut truncated = tcp4("198.51.100.1", 1, VIP, 80, SYN);
    truncated.truncate(30);
    io.push(at(1), truncated);
    let mut corrupt = tcp4("198.51.100.2", 2, VIP, 80, SYN);
    corrupt[24] ^= 0x55;
    io.push(at(1), corrupt);
    io.push(at(1), tcp4_payload("198.51.100.3", 3, VIP, 80, ACK, b"stray"));
    // Ten minutes later, the last client: by then UDP (300 s) and closed flows (120 s) are gone.
    io.push(at(600_000), udp4("203.0.113.9", 999, VIP, 53, b"late"));

    let frames_in = io.pending();
    let mut driver = Driver::new(DriverOptions::default());
    let run = driver.run(&mut director, &mut io)?;
    report(&director, frames_in, run);
    Ok(())
}

fn report(director: &Director, frames_in: usize, run: dr_core::RunStats) {
    println!(
        "dr demo: {frames_in} frames in, {} transmitted, {} generated (announcements, ARP requests)\n",
        run.transmitted, run.generated
    );
    println!(
        "{:<26} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7}  mac",
        "service / real", "weight", "active", "inactive", "conns", "inpkts", "inbytes"
    );
    for (_, service) in director.services() {
        let s = service.stats();
        let name = format!("{} {}", service.key(), service.scheduler());
        println!("{name:<26} {:>30} {:>6} {:>7}", s.conns, s.inpkts, s.inbytes);
        for real in service.reals().iter().filter_map(|&id| director.real(id)) {
            let mac = real.mac().map_or_else(|| "(unknown)".to_string(), |m| m.to_string());
            let st = real.stats();
            println!(
                "  -> {:<21} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7}  {mac}",
                real.addr().to_string(),
                real.weight(),
                real.active_conns(),
                real.inactive_conns(),
                st.conns,
                st.inpkts,
                st.inbytes
            );
        }
    }
    let c = director.counters();
    println!(
        "\nforwarded {}  replies {}  connections now {} (created {}, expired {})  MACs learned {}",
        c.forwarded(),
        c.replies(),
        director.connection_count(),
        c.conns_created(),
        c.conns_expired(),
        c.neighbours_learned()
    );
    for (reason, n) in c.pass_counts().filter(|(_, n)| *n > 0) {
        println!("passed  {reason:<28} {n}");
    }
    for (reason, n) in c.drop_counts().filter(|(_, n)| *n > 0) {
        println!("dropped {reason:<28} {n}");
    }
}
