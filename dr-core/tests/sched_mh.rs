//! `mh` replayed through the packet path against a Maglev table built in this file, the
//! straightforward way, from `ip_vs_mh.c` and the Maglev paper, with the siphasher crate's
//! SipHash-1-3 as the hash: nothing here comes from dr's own mh code.

mod support;

use core::hash::Hasher;
use dr_core::{
    Config, Director, Instant, Protocol, RealConfig, RealEdit, RealId, SchedFlags, SchedulerKind,
    ServiceConfig, ServiceId, Verdict,
};
use siphasher::sip::SipHasher13;
use std::net::IpAddr;
use support::*;

/// `hsiphash` on a 64-bit kernel: SipHash-1-3, both key words the same, low 32 bits.
fn hsiphash(key: u64, value: u32) -> u32 {
    let mut h = SipHasher13::new_with_keys(key, key);
    h.write(&value.to_le_bytes());
    h.finish() as u32
}

fn fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            (0..4).fold(0, |x, i| {
                x ^ u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

fn key(addr: IpAddr, port: u16, offset: u32) -> u32 {
    offset.wrapping_add(u32::from(port)).wrapping_add(fold(addr))
}

const H1: u64 = 2_654_435_761;
const H2: u64 = 2_654_446_892;

/// One server as the kernel sees it: address, weight now, `last_weight`.
#[derive(Clone, Copy)]
struct Server {
    addr: IpAddr,
    weight: u32,
    last_weight: u32,
}

/// The table: for each slot the index (in `servers`, the kernel's list order) of its owner.
fn build(m: u32, servers: &[Server], port: u16) -> Vec<Option<usize>> {
    let bits = ([251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071]
        .iter()
        .position(|&p| p == m)
        .unwrap() as u32
        + 8)
        / 2;
    let gcd = |mut a: u32, mut b: u32| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let g = servers.iter().map(|s| s.last_weight).filter(|&w| w > 0).fold(0, gcd);
    let mut table = vec![None; m as usize];
    if g == 0 {
        return table;
    }
    let max = servers.iter().map(|s| s.last_weight).max().unwrap();
    let shift = (32 - (max / g).leading_zeros()).saturating_sub(bits);
    let mut perms: Vec<(u32, u32, u32)> = servers
        .iter()
        .map(|s| {
            let offset = hsiphash(H1, key(s.addr, port, 0)) % m;
            let skip = hsiphash(H2, key(s.addr, port, 0)) % (m - 1) + 1;
            let turns = match (s.last_weight / g) >> shift {
                0 => u32::from(s.last_weight != 0),
                t => t,
            };
            (offset, skip, turns)
        })
        .collect();
    let mut filled = 0;
    while filled < m {
        for (i, (next, skip, turns)) in perms.iter_mut().enumerate() {
            for _ in 0..*turns {
                while table[*next as usize].is_some() {
                    *next = (*next + *skip) % m;
                }
                table[*next as usize] = Some(i);
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
    table
}

/// The server the kernel would pick, or `None`.
fn pick(
    m: u32,
    table: &[Option<usize>],
    servers: &[Server],
    client: IpAddr,
    port: u16,
    fallback: bool,
) -> Option<usize> {
    let available = |i: usize| servers[i].weight > 0;
    let ihash = hsiphash(H1, key(client, port, 0)) % m;
    let first = table[ihash as usize]?;
    if available(first) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    for offset in 0..m {
        let roffset = (offset + ihash) % m;
        let slot = hsiphash(H1, key(client, port, roffset)) % m;
        let owner = table[slot as usize]?;
        if available(owner) {
            return Some(owner);
        }
    }
    None
}

struct Case {
    d: Director,
    s: ServiceId,
    /// In the kernel's list order (newest first), with the director's handles.
    servers: Vec<(Server, RealId)>,
    m: u32,
    vip: &'static str,
    port: u16,
    now: u64,
}

impl Case {
    fn new(m: u32, vip: &'static str, reals: &[(&str, u32)], flags: SchedFlags) -> Self {
        let mut config = Config::new(mac(DIRECTOR_MAC), [9, 9, 9, 9]);
        config.capacity = 1 << 14;
        config.mh_table_size = m;
        let mut d = Director::new(config).unwrap();
        let port = 80;
        let s = d
            .add_service(
                ServiceConfig::new(Protocol::Tcp, ip(vip), port, SchedulerKind::Mh)
                    .with_flags(flags),
            )
            .unwrap();
        let mut servers = Vec::new();
        for (i, &(addr, weight)) in reals.iter().enumerate() {
            let real = RealConfig::new(ip(addr))
                .with_weight(weight)
                .with_mac(mac([2, 0, 0, 0, 1, i as u8]));
            let id = d.add_real(s, real).unwrap();
            servers.insert(0, (Server { addr: ip(addr), weight, last_weight: weight }, id));
        }
        Self { d, s, servers, m, vip, port, now: 1 }
    }

    fn edit(&mut self, addr: &str, weight: u32) {
        let i = self.servers.iter().position(|(s, _)| s.addr == ip(addr)).unwrap();
        let (server, id) = &mut self.servers[i];
        let edit = RealEdit::of(self.d.real(*id).unwrap()).with_weight(weight);
        self.d.edit_real(*id, edit).unwrap();
        server.weight = weight;
        if weight != 0 {
            server.last_weight = weight;
        }
    }

    fn remove(&mut self, addr: &str) {
        let i = self.servers.iter().position(|(s, _)| s.addr == ip(addr)).unwrap();
        self.d.remove_real(self.servers.remove(i).1).unwrap();
    }

    /// Opens a connection from each client (a new source port every time, so each SYN is
    /// scheduled) and checks that the director forwards it where the kernel would, or
    /// drops it when the kernel has no server. Returns how many were forwarded.
    fn replay(&mut self, clients: &[String], hash_port: bool, fallback: bool) -> usize {
        let servers: Vec<Server> = self.servers.iter().map(|(s, _)| *s).collect();
        let table = build(self.m, &servers, self.port);
        assert!(table.iter().all(Option::is_some) || servers.iter().all(|s| s.last_weight == 0));
        let mut forwarded = 0;
        for client in clients {
            self.now += 1;
            let cport = 1024 + (self.now % 60_000) as u16;
            let frame = if self.vip.contains(':') {
                tcp6(client, cport, self.vip, self.port, SYN)
            } else {
                tcp4(client, cport, self.vip, self.port, SYN)
            };
            let hashed_port = if hash_port { cport } else { 0 };
            let expected = pick(self.m, &table, &servers, ip(client), hashed_port, fallback)
                .map(|i| self.servers[i].1);
            let verdict = self.d.process(Instant::from_millis(self.now), &mut frame.clone());
            match (verdict, expected) {
                (Verdict::Forward { real }, Some(want)) => {
                    assert_eq!(real, want, "client {client} port {cport}");
                    forwarded += 1;
                }
                (Verdict::Drop(dr_core::DropReason::NoRealAvailable), None) => {}
                (v, e) => panic!("client {client}: {v:?}, the kernel would pick {e:?}"),
            }
        }
        forwarded
    }
}

fn clients4(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("198.{}.{}.{}", 18 + i % 2, (i / 250) % 256, i % 250 + 1)).collect()
}

#[test]
fn mh_picks_as_the_kernel_through_adds_edits_and_deletes() {
    let reals = [
        ("10.0.0.11", 1),
        ("10.0.0.12", 3),
        ("10.0.0.13", 2),
        ("10.0.0.14", 5),
        ("10.0.0.15", 1),
        ("10.0.1.16", 4),
        ("10.0.1.17", 2),
    ];
    let clients = clients4(2000);
    for m in [251, 4093, 65521] {
        let mut case = Case::new(m, "10.0.0.100", &reals, SchedFlags::NONE);
        assert_eq!(case.replay(&clients, false, false), clients.len(), "M = {m}");
        // Quiesced: its clients get no server, the others stay.
        case.edit("10.0.0.14", 0);
        let forwarded = case.replay(&clients, false, false);
        assert!(forwarded < clients.len(), "10.0.0.14 held some clients");
        // Back, at another weight: a new table.
        case.edit("10.0.0.14", 7);
        assert_eq!(case.replay(&clients, false, false), clients.len());
        case.remove("10.0.0.12");
        assert_eq!(case.replay(&clients, false, false), clients.len());
        let new = RealConfig::new(ip("10.0.2.20")).with_weight(3).with_mac(mac([2, 0, 0, 0, 2, 0]));
        let id = case.d.add_real(case.s, new).unwrap();
        case.servers.insert(0, (Server { addr: ip("10.0.2.20"), weight: 3, last_weight: 3 }, id));
        assert_eq!(case.replay(&clients, false, false), clients.len());
    }
}

#[test]
fn mh_fallback_and_port_as_the_kernel() {
    let reals = [("10.0.0.11", 1), ("10.0.0.12", 1), ("10.0.0.13", 1), ("10.0.0.14", 2)];
    let clients = clients4(1500);
    let both = SchedFlags { mh_port: true, mh_fallback: true, ..SchedFlags::NONE };
    let mut case = Case::new(4093, "10.0.0.100", &reals, both);
    assert_eq!(case.replay(&clients, true, true), clients.len());
    case.edit("10.0.0.11", 0);
    case.edit("10.0.0.13", 0);
    assert_eq!(case.replay(&clients, true, true), clients.len(), "fallback finds a server");
    // Without fallback, through ipvsadm -E: the quiesced servers' clients are dropped.
    let port = SchedFlags { mh_port: true, ..SchedFlags::NONE };
    case.d.edit_service(case.s, SchedulerKind::Mh, port).unwrap();
    assert!(case.replay(&clients, true, false) < clients.len());
    // Every server quiesced: nobody, fallback or not.
    case.edit("10.0.0.12", 0);
    case.edit("10.0.0.14", 0);
    case.d.edit_service(case.s, SchedulerKind::Mh, both).unwrap();
    assert_eq!(case.replay(&clients, true, true), 0);
}

#[test]
fn mh_ipv6_folds_the_address() {
    let reals = [("2001:db8::11", 2), ("2001:db8::12", 1), ("2001:db8:1::13", 1)];
    let clients: Vec<String> =
        (0..1000).map(|i| format!("2001:db8:ff::{:x}:{:x}", i / 7, i)).collect();
    let mut case = Case::new(509, "2001:db8::100", &reals, SchedFlags::NONE);
    assert_eq!(case.replay(&clients, false, false), clients.len());
}

/// The worked example of the module docs, through the packet path.
#[test]
fn mh_worked_example_by_hand() {
    let reals = [("10.0.0.11", 1), ("10.0.0.12", 1), ("10.0.0.13", 1)];
    let case = Case::new(251, "10.0.0.100", &reals, SchedFlags::NONE);
    let mut d = case.d;
    let ids: Vec<RealId> = case.servers.iter().map(|(_, id)| *id).collect(); // A, B, C
    for (client, want) in
        [("192.0.2.1", 2), ("192.0.2.2", 2), ("198.51.100.10", 2), ("203.0.113.77", 1)]
    {
        let verdict =
            d.process(Instant::from_secs(1), &mut tcp4(client, 4000, "10.0.0.100", 80, SYN));
        assert_eq!(verdict, Verdict::Forward { real: ids[want] }, "{client}");
    }
}

#[test]
fn a_new_table_size_rebuilds_running_services() {
    let reals = [("10.0.0.11", 1), ("10.0.0.12", 2), ("10.0.0.13", 1)];
    let clients = clients4(600);
    let mut case = Case::new(4093, "10.0.0.100", &reals, SchedFlags::NONE);
    assert_eq!(case.replay(&clients, false, false), clients.len());
    let mut config = case.d.config().clone();
    config.mh_table_size = 251;
    assert_eq!(case.d.reconfigure(&config).unwrap(), ["mh_table_size"]);
    case.m = 251;
    assert_eq!(case.replay(&clients, false, false), clients.len());
    config.mh_table_size = 250;
    assert_eq!(case.d.reconfigure(&config), Err(dr_core::ConfigError::MhTableSize(250)));
}
