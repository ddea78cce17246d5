//! The golden replay cases under `testdata/`: each a capture built here with smoltcp, run
//! through `testdata/director.toml`, whose output is kept and compared byte for byte.

use dr_core::SchedulerKind;

use crate::frames::{
    ACK, ArpOperation, DIRECTOR_MAC, EthernetProtocol, FIN, IpProtocol, PSH, REAL_MACS, ROUTER_MAC,
    RST, SYN, arp, arp_request, datagram, ethernet, icmp4_echo, icmp4_error, icmp6_echo,
    icmp6_error, ipv4_packet, malformed_variants, neighbor_solicitation, tcp4, tcp4_payload, tcp6,
    udp4, udp4_fragments, udp6, udp6_fragments, v4, with_vlans,
};

/// 2026-01-01 00:00:00 UTC, the start of every case.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
const VIP: &str = "10.0.0.100";
const VIP6: &str = "2001:db8::100";

/// One golden case: its name (the directory under `testdata/`), what it covers, its own
/// configuration if it has one, and its frames with their time in milliseconds from
/// [`EPOCH_MS`].
#[derive(Debug)]
pub struct Case {
    /// The directory under `testdata/`.
    pub name: String,
    /// What the case covers.
    pub covers: &'static str,
    /// The case's `director.toml`; `None` for the shared `testdata/director.toml`.
    pub config: Option<String>,
    /// The input frames, in time order.
    pub frames: Vec<(u64, Vec<u8>)>,
}

impl Case {
    fn shared(name: &str, covers: &'static str, frames: Vec<(u64, Vec<u8>)>) -> Self {
        Self { name: name.to_string(), covers, config: None, frames }
    }
}

fn sorted(mut frames: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    frames.sort_by_key(|(ms, _)| *ms);
    frames
}

fn tcp_lifecycle() -> Case {
    let c = "192.0.2.10";
    let frames = vec![
        // A full life: SYN, ACK, data, FIN, last ACK.
        (0, tcp4(c, 1000, VIP, 80, SYN)),
        (10, tcp4(c, 1000, VIP, 80, ACK)),
        (20, tcp4_payload(c, 1000, VIP, 80, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n")),
        (30, tcp4(c, 1000, VIP, 80, FIN | ACK)),
        (40, tcp4(c, 1000, VIP, 80, ACK)),
        // Reset: CLOSE for 10 s. A packet in CLOSE re-arms those 10 s; at their end the
        // flow is unknown.
        (1_000, tcp4(c, 2000, VIP, 80, SYN)),
        (1_010, tcp4(c, 2000, VIP, 80, ACK)),
        (2_000, tcp4(c, 2000, VIP, 80, RST)),
        (11_999, tcp4(c, 2000, VIP, 80, ACK)),
        (21_999, tcp4(c, 2000, VIP, 80, ACK)),
        // Established, then idle past 900 s.
        (5_000, tcp4(c, 3000, VIP, 80, SYN)),
        (5_010, tcp4(c, 3000, VIP, 80, ACK)),
        (905_009, tcp4(c, 3000, VIP, 80, ACK)),
        (1_805_010, tcp4(c, 3000, VIP, 80, ACK)),
        // The first flow's port again, long after FIN_WAIT (120 s) ran out: a new connection.
        (200_000, tcp4(c, 1000, VIP, 80, SYN)),
        // A SYN in TIME_WAIT (SYN_RECV + FIN) expires the entry and is scheduled afresh
        // (conn_reuse_mode 1): the next real server.
        (300_000, tcp4(c, 4000, VIP, 80, SYN)),
        (300_010, tcp4(c, 4000, VIP, 80, FIN | ACK)),
        (300_020, tcp4(c, 4000, VIP, 80, SYN)),
        // A SYN in FIN_WAIT reuses the entry and its real server (FIN_WAIT -> SYN_RECV).
        (400_000, tcp4(c, 4001, VIP, 80, SYN)),
        (400_010, tcp4(c, 4001, VIP, 80, ACK)),
        (400_020, tcp4(c, 4001, VIP, 80, FIN | ACK)),
        (400_030, tcp4(c, 4001, VIP, 80, SYN)),
    ];
    Case::shared(
        "tcp-lifecycle",
        "new and established TCP, FIN and RST lives, timeouts over minutes",
        sorted(frames),
    )
}

fn udp() -> Case {
    let frames = vec![
        (0, udp4("192.0.2.20", 5000, VIP, 53, b"query 1")),
        (100_000, udp4("192.0.2.20", 5000, VIP, 53, b"query 2")),
        (399_999, udp4("192.0.2.21", 5001, VIP, 53, b"other client")),
        (401_000, udp4("192.0.2.20", 5000, VIP, 53, b"after 300 s idle")),
    ];
    Case::shared("udp", "UDP flows and their 300 s timeout", sorted(frames))
}

fn ipv6() -> Case {
    let c = "2001:db8:1::10";
    let frames = vec![
        (0, neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6)),
        (10, tcp6(c, 40000, VIP6, 80, SYN)),
        (20, tcp6(c, 40000, VIP6, 80, ACK)),
        (30, tcp6(c, 40000, VIP6, 80, FIN | ACK)),
        (40, tcp6(c, 40001, VIP6, 80, SYN)),
        (50, udp6(c, 5353, VIP6, 53, b"no such service")),
    ];
    Case::shared(
        "ipv6",
        "IPv6 TCP, Neighbor Discovery for the VIP, no IPv6 UDP service",
        sorted(frames),
    )
}

fn vlan() -> Case {
    let q = |f: Vec<u8>| with_vlans(&f, &[(0x8100, 10)]);
    let qinq = |f: Vec<u8>| with_vlans(&f, &[(0x88a8, 100), (0x8100, 10)]);
    let frames = vec![
        (0, q(arp_request(VIP))),
        (10, q(tcp4("192.0.2.30", 1000, VIP, 80, SYN))),
        (20, q(tcp4("192.0.2.30", 1000, VIP, 80, ACK))),
        (30, qinq(tcp4("192.0.2.31", 1000, VIP, 80, SYN))),
        (40, qinq(udp4("192.0.2.31", 1000, VIP, 53, b"q"))),
    ];
    Case::shared(
        "vlan",
        "802.1Q and 802.1ad tagged traffic and ARP, answered on the same VLAN",
        sorted(frames),
    )
}

fn arp_nd() -> Case {
    let frames = vec![
        (0, arp_request(VIP)),
        (10, arp_request("10.0.0.1")),
        (20, arp(ArpOperation::Request, DIRECTOR_MAC, ROUTER_MAC, "10.0.0.1", [0; 6], "10.0.0.2")),
        (30, arp(ArpOperation::Request, [0xff; 6], ROUTER_MAC, VIP, [0; 6], VIP)),
        (40, neighbor_solicitation(ROUTER_MAC, "2001:db8::1", VIP6)),
        (50, neighbor_solicitation(ROUTER_MAC, "2001:db8::1", "2001:db8::77")),
        (
            60,
            arp(
                ArpOperation::Reply,
                DIRECTOR_MAC,
                REAL_MACS[3],
                "10.0.0.11",
                DIRECTOR_MAC,
                "10.0.0.2",
            ),
        ),
    ];
    Case::shared("arp-nd", "ARP and ND for the VIPs answered; other ARP and ND not", sorted(frames))
}

fn non_vip() -> Case {
    let mut other_host = tcp4("192.0.2.40", 1, VIP, 80, SYN);
    other_host[0..6].copy_from_slice(&REAL_MACS[3]);
    let frames = vec![
        (0, tcp4("192.0.2.40", 1, "10.0.0.2", 22, SYN)),
        (10, tcp4("192.0.2.40", 2, VIP, 443, SYN)),
        // Not an error and not an echo request: a timestamp request.
        (20, icmp4_error("192.0.2.1", VIP, 13, 0, &[0; 12])),
        (
            30,
            ethernet(
                DIRECTOR_MAC,
                ROUTER_MAC,
                EthernetProtocol::Ipv4,
                &ipv4_packet(v4("192.0.2.40"), v4(VIP), IpProtocol::Unknown(47), 64, &[0; 8]),
            ),
        ),
        (
            40,
            ethernet(
                [0x01, 0x80, 0xc2, 0, 0, 0x0e],
                ROUTER_MAC,
                EthernetProtocol::Unknown(0x88cc),
                &[0; 46],
            ),
        ),
        (50, other_host),
        (60, tcp4("192.0.2.40", 3, VIP, 80, ACK)),
    ];
    Case::shared(
        "non-vip",
        "traffic that is not for a VIP service: passed or dropped, never forwarded",
        sorted(frames),
    )
}

fn malformed() -> Case {
    let good = tcp4("192.0.2.50", 6666, VIP, 80, SYN);
    let mut frames = malformed_variants(&good);
    frames.push(good);
    let frames = frames.into_iter().enumerate().map(|(i, f)| (10 * i as u64, f)).collect();
    Case::shared(
        "malformed",
        "malformed frames dropped with their reasons; the one good SYN forwarded",
        frames,
    )
}

/// One scheduler's case: four real servers (weights 4, 3, 2 and 0; the second overloaded
/// at 6 connections), clients opening, closing and resetting connections over four minutes,
/// so the connection-counting schedulers see their counts change.
fn scheduler(kind: SchedulerKind) -> Case {
    let flags =
        if kind == SchedulerKind::Sh { "\nflags = [\"sh-port\", \"sh-fallback\"]" } else { "" };
    let mut config = format!(
        "# The {kind} golden case.\n\n[director]\nmac = \"02:00:00:00:00:01\"\ncapacity = 4096\n\n\
         [[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 80\nscheduler = \"{kind}\"{flags}\n"
    );
    for (i, (weight, upper)) in [(4, 0), (3, 6), (2, 0), (0, 0)].into_iter().enumerate() {
        config.push_str(&format!(
            "\n[[service.real]]\nip = \"10.0.0.{}\"\nweight = {weight}\nu_threshold = {upper}\nmac = \"02:00:00:00:00:{:02x}\"\n",
            11 + i,
            0x11 + i
        ));
    }
    let mut frames = Vec::new();
    for c in 0..48u64 {
        let client = format!("192.0.2.{}", 10 + c % 24);
        let port = 20_000 + c as u16;
        let start = c * 5_000;
        frames.push((start, tcp4(&client, port, VIP, 80, SYN)));
        frames.push((start + 10, tcp4(&client, port, VIP, 80, ACK)));
        match c % 4 {
            0 => frames.push((start + 20_000, tcp4(&client, port, VIP, 80, FIN | ACK))),
            1 => frames.push((start + 7_000, tcp4(&client, port, VIP, 80, RST))),
            _ => {}
        }
    }
    Case {
        name: format!("sched-{kind}"),
        covers: "the scheduler's picks as counts change",
        config: Some(config),
        frames: sorted(frames),
    }
}

/// A case's `director.toml`: the header, then services in TOML.
fn own_config(name: &str, director: &str, services: &str) -> String {
    format!(
        "# The {name} golden case.\n\n[director]\nmac = \"02:00:00:00:00:01\"\n{director}\n{services}"
    )
}

/// `[[service.real]]` entries for 10.0.0.11.. (or 2001:db8::11..) with their MACs.
fn reals(count: usize, ipv6: bool) -> String {
    (0..count)
        .map(|i| {
            let ip =
                if ipv6 { format!("2001:db8::{}", 11 + i) } else { format!("10.0.0.{}", 11 + i) };
            format!(
                "\n[[service.real]]\nip = \"{ip}\"\nmac = \"02:00:00:00:00:{:02x}\"\n",
                0x11 + i
            )
        })
        .collect()
}

/// Persistence: one template per client /24, connections of a client network kept on one
/// server, a template outliving its connections by its timeout and then expiring, and a
/// port-0 service taking every port of its VIP to one server per client.
fn persistence() -> Case {
    let mut services = format!(
        "\n[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 443\nscheduler = \"rr\"\n\
         persistent = 30\nnetmask = \"255.255.255.0\"\n{}",
        reals(3, false)
    );
    services.push_str(&format!(
        "\n[[service]]\nproto = \"tcp\"\nvip = \"10.0.0.101\"\nport = 0\nscheduler = \"rr\"\n\
         persistent = 60\n{}",
        reals(3, false)
    ));
    let mut frames = Vec::new();
    let connect = |frames: &mut Vec<(u64, Vec<u8>)>,
                   at: u64,
                   client: &str,
                   port: u16,
                   vip: &str,
                   vport: u16| {
        frames.push((at, tcp4(client, port, vip, vport, SYN)));
        frames.push((at + 5, tcp4(client, port, vip, vport, ACK)));
    };
    // One network, two clients, five connections: one server.
    for (i, client) in ["192.0.2.10", "192.0.2.10", "192.0.2.20", "192.0.2.10", "192.0.2.20"]
        .into_iter()
        .enumerate()
    {
        connect(&mut frames, i as u64 * 100, client, 40_000 + i as u16, VIP, 443);
    }
    // Another network: the next server.
    connect(&mut frames, 600, "198.51.100.5", 40_000, VIP, 443);
    // A short connection; its template (30 s) brings the client back 20 s later and is
    // re-armed to 51 s. Its last connection is reset at 22 s and gone at 32 s, the template
    // at 51 s; at 120 s the client is scheduled afresh (rr's next server).
    connect(&mut frames, 1_000, "203.0.113.7", 50_000, VIP, 443);
    frames.push((2_000, tcp4("203.0.113.7", 50_000, VIP, 443, RST)));
    connect(&mut frames, 21_000, "203.0.113.7", 50_001, VIP, 443);
    frames.push((22_000, tcp4("203.0.113.7", 50_001, VIP, 443, RST)));
    connect(&mut frames, 120_000, "203.0.113.7", 50_002, VIP, 443);
    // Every port of 10.0.0.101 goes to one server per client.
    for (i, port) in [21u16, 443, 8080].into_iter().enumerate() {
        connect(
            &mut frames,
            130_000 + i as u64 * 10,
            "192.0.2.10",
            41_000 + i as u16,
            "10.0.0.101",
            port,
        );
        connect(
            &mut frames,
            130_100 + i as u64 * 10,
            "198.51.100.5",
            41_000 + i as u16,
            "10.0.0.101",
            port,
        );
    }
    Case {
        name: "persistence".into(),
        covers: "templates per /24, expiry after the last connection, a port-0 service",
        config: Some(own_config("persistence", "", &services)),
        frames: sorted(frames),
    }
}

/// ICMP to the VIPs: errors about live connections relayed to their real servers, errors
/// about nothing passed, a bad checksum dropped, pings answered.
fn icmp() -> Case {
    let (c, c6) = ("192.0.2.50", "2001:db8:1::50");
    let reply = tcp4_payload(VIP, 80, c, 40_000, ACK | PSH, &[0; 1400]);
    let reply6 = tcp6(VIP6, 80, c6, 40_000, ACK);
    let dns_reply = udp4(VIP, 53, c, 5_353, b"answer");
    let stranger = tcp4(VIP, 80, "192.0.2.99", 40_000, ACK);
    let mut bad = icmp4_error("192.0.2.1", VIP, 3, 4, &datagram(&reply)[..28]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let frames = vec![
        (0, tcp4(c, 40_000, VIP, 80, SYN)),
        (10, tcp4(c, 40_000, VIP, 80, ACK)),
        (20, tcp6(c6, 40_000, VIP6, 80, SYN)),
        (30, udp4(c, 5_353, VIP, 53, b"query")),
        (100, icmp4_error("192.0.2.1", VIP, 3, 4, &datagram(&reply)[..28])),
        (110, icmp6_error("2001:db8:1::1", VIP6, 2, 0, &datagram(&reply6)[..48])),
        (120, icmp4_error("192.0.2.1", VIP, 11, 0, &datagram(&dns_reply)[..28])),
        (130, icmp4_error("192.0.2.1", VIP, 3, 3, &datagram(&stranger)[..28])),
        (140, bad),
        (150, icmp4_echo(c, VIP)),
        (160, icmp6_echo(c6, VIP6)),
    ];
    Case::shared("icmp", "ICMP errors relayed by their quoted connection, pings answered", frames)
}

/// Fragments: every fragment of a datagram to its first fragment's real server, over IPv4
/// and IPv6; a later fragment ahead of its first one dropped.
fn fragments() -> Case {
    let services = format!(
        "\n[[service]]\nproto = \"udp\"\nvip = \"{VIP}\"\nport = 53\nscheduler = \"rr\"\n{}\
         \n[[service]]\nproto = \"udp\"\nvip = \"{VIP6}\"\nport = 53\nscheduler = \"rr\"\n{}",
        reals(2, false),
        reals(2, true)
    );
    let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut push = |list: Vec<Vec<u8>>, frames: &mut Vec<(u64, Vec<u8>)>| {
        for frame in list {
            frames.push((at, frame));
            at += 1;
        }
    };
    push(udp4_fragments("192.0.2.60", 5_353, VIP, 53, &payload, 100, 1480), &mut frames);
    push(udp4_fragments("192.0.2.61", 5_353, VIP, 53, &payload, 100, 1480), &mut frames);
    push(udp6_fragments("2001:db8:1::60", 5_353, VIP6, 53, &payload, 7, 1232), &mut frames);
    // The last fragment first: dropped; the rest of the datagram goes through.
    let mut early = udp4_fragments("192.0.2.62", 5_353, VIP, 53, &payload, 200, 1480);
    let last = early.pop().into_iter().collect();
    push(last, &mut frames);
    push(early, &mut frames);
    Case {
        name: "fragments".into(),
        covers: "later fragments follow the first, IPv4 and IPv6",
        config: Some(own_config("fragments", "", &services)),
        frames,
    }
}

/// A SYN flood of ten times the table's capacity from random sources: the established
/// connections keep working, the flood's half-open entries give way, a quick handshake
/// completes and a slow one does not.
fn syn_flood() -> Case {
    let services = format!(
        "\n[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = 80\nscheduler = \"rr\"\n{}",
        reals(2, false)
    );
    let mut frames = Vec::new();
    for port in 0..16u16 {
        frames.push((u64::from(port), tcp4("198.51.100.1", 30_000 + port, VIP, 80, SYN)));
        frames.push((100 + u64::from(port), tcp4("198.51.100.1", 30_000 + port, VIP, 80, ACK)));
        let request = tcp4_payload("198.51.100.1", 30_000 + port, VIP, 80, ACK | PSH, b"GET");
        frames.push((200 + u64::from(port), request));
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut at = 1_000;
    for n in 0..640u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let src = format!(
            "100.{}.{}.{}",
            (state >> 8) as u8 % 64 + 64,
            (state >> 16) as u8,
            (state >> 24) as u8
        );
        frames.push((at, tcp4(&src, (state >> 32) as u16 | 1024, VIP, 80, SYN)));
        if n == 100 {
            frames.push((at, tcp4("203.0.113.5", 1, VIP, 80, SYN)));
            frames.push((at + 5, tcp4("203.0.113.6", 1, VIP, 80, SYN)));
        }
        if n == 105 {
            frames.push((at + 1, tcp4("203.0.113.5", 1, VIP, 80, ACK)));
        }
        if n == 300 {
            frames.push((at + 1, tcp4("203.0.113.6", 1, VIP, 80, ACK)));
        }
        at += 10;
    }
    for port in 0..16u16 {
        frames.push((
            at + u64::from(port),
            tcp4_payload("198.51.100.1", 30_000 + port, VIP, 80, ACK | PSH, b"still here"),
        ));
    }
    Case {
        name: "syn-flood".into(),
        covers: "a SYN flood at 10x capacity against established connections",
        config: Some(own_config("syn-flood", "capacity = 64\n", &services)),
        frames: sorted(frames),
    }
}

/// Every golden case.
pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        tcp_lifecycle(),
        udp(),
        ipv6(),
        vlan(),
        arp_nd(),
        non_vip(),
        malformed(),
        persistence(),
        icmp(),
        fragments(),
        syn_flood(),
    ];
    // The schedulers that have a replay here; the others' replays are dr-core's
    // `tests/sched_*.rs`, whose expected picks are worked out independently of dr.
    use SchedulerKind::{Lc, Nq, Rr, Sed, Sh, Wlc, Wrr};
    cases.extend([Rr, Wrr, Lc, Wlc, Sh, Sed, Nq].into_iter().map(scheduler));
    cases
}
