//! A model of the kernel's IPVS for the golden cases of the schedulers mh, dh, fo, ovf, lblc,
//! lblcr and twos, written from the kernel's C (`net/netfilter/ipvs/ip_vs_<name>.c` for each
//! scheduler, `ip_vs_proto_tcp.c` for the states, `ip_vs_conn.c` for the counters and the
//! overload flag), never from dr's code: it reads a case's `director.toml` and its input
//! frames, and says for each frame which real server the kernel would send it to.
//!
//! What it keeps: each service's real servers in the kernel's list order (the last added
//! first), each with its active and inactive connections and its `IP_VS_DEST_F_OVERLOAD`
//! flag; each connection with its state and when it expires; and each scheduler's state (mh's
//! table, dh's buckets, lblc's cached server, lblcr's set). Times are milliseconds from the
//! case's start, which is also when every scheduler started (its services are made before the
//! first frame, and 2026-01-01 00:00 is a multiple of lblc's 30-minute full check).

use core::hash::Hasher;
use siphasher::sip::SipHasher13;
use std::collections::HashMap;
use std::net::IpAddr;

/// TCP states, in the kernel's order (`IP_VS_TCP_S_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    None,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    /// Reached only through the `secure_tcp` tables, which the cases do not use.
    #[expect(dead_code)]
    SynAck,
}

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `tcp_states`, the INPUT-ONLY rows (every Direct Routing connection is `NOOUTPUT`): for a
/// SYN, a FIN, an ACK and a RST, the next state from each state.
const INPUT_ONLY: [[State; 11]; 4] = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

impl State {
    /// `tcp_state_active_table`.
    fn active(self) -> bool {
        matches!(self, ES | SS | SR | SA)
    }

    /// `tcp_timeouts`, in milliseconds.
    fn timeout(self) -> u64 {
        1000 * match self {
            Self::None => 2,
            ES => 900,
            SS | FW | TW | LI | SA => 120,
            SR | CW => 60,
            CL => 10,
            LA => 30,
        }
    }

    /// `set_tcp_state`: `tcp_state_idx` (RST, then SYN, then FIN, then ACK; none of them:
    /// CLOSE) into the INPUT-ONLY rows.
    fn next(self, tcp: &Segment) -> Self {
        let row = if tcp.rst {
            3
        } else if tcp.syn {
            0
        } else if tcp.fin {
            1
        } else if tcp.ack {
            2
        } else {
            return CL;
        };
        INPUT_ONLY[row][self as usize]
    }
}

/// The TCP segment in a client's frame.
struct Segment {
    client: IpAddr,
    cport: u16,
    vip: IpAddr,
    vport: u16,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
}

impl Segment {
    /// The segment of an Ethernet frame, if it holds one.
    fn parse(frame: &[u8]) -> Option<Self> {
        let packet = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
        let (client, vip) = match packet.net? {
            etherparse::NetSlice::Ipv4(ip) => {
                (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()))
            }
            etherparse::NetSlice::Ipv6(ip) => {
                (IpAddr::V6(ip.header().source_addr()), IpAddr::V6(ip.header().destination_addr()))
            }
            _ => return None,
        };
        let etherparse::TransportSlice::Tcp(tcp) = packet.transport? else { return None };
        Some(Self {
            client,
            cport: tcp.source_port(),
            vip,
            vport: tcp.destination_port(),
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        })
    }
}

/// A real server of a service (`struct ip_vs_dest`).
struct Real {
    addr: IpAddr,
    mac: [u8; 6],
    weight: u32,
    u_threshold: u32,
    active: u32,
    inactive: u32,
    overloaded: bool,
}

impl Real {
    /// `ip_vs_dest_conn_overhead`.
    fn overhead(&self) -> i64 {
        (i64::from(self.active) << 8) + i64::from(self.inactive)
    }

    fn weight(&self) -> i64 {
        i64::from(self.weight)
    }
}

/// A scheduler's state.
enum Sched {
    /// The lookup table: each slot's server (an index into the list).
    Mh {
        table: Vec<usize>,
        hash_port: bool,
        fallback: bool,
    },
    /// The 256 buckets: each one's server.
    Dh {
        buckets: Vec<usize>,
    },
    Fo,
    Ovf,
    /// The VIP's entry: its server and when it was last used.
    Lblc {
        entry: Option<(usize, u64)>,
    },
    /// The VIP's entry: its set (newest first), last use and last modification.
    Lblcr {
        entry: Option<(Vec<usize>, u64, u64)>,
    },
    Twos,
}

struct Service {
    vip: IpAddr,
    port: u16,
    reals: Vec<Real>,
    sched: Sched,
}

struct Conn {
    service: usize,
    real: usize,
    state: State,
    inactive: bool,
    expires: u64,
}

/// What the kernel does with a new connection: a server (an index into the list) or none,
/// or for twos, the chance of each server.
enum Pick {
    Exact(Option<usize>),
    Chances(Vec<f64>),
}

/// One twos pick: the chance the kernel gives each server, and the one dr picked.
pub(crate) struct Draw {
    /// Per server in configuration order: its chance, and whether dr picked it.
    pub(crate) servers: Vec<(IpAddr, f64, bool)>,
}

/// The kernel, as far as the golden cases need it.
pub(crate) struct Model {
    services: Vec<Service>,
    conns: HashMap<(IpAddr, u16, IpAddr, u16), Conn>,
    lblc_expiration: u64,
    lblcr_expiration: u64,
    /// Every twos pick.
    pub(crate) draws: Vec<Draw>,
}

const H1: u64 = 2_654_435_761;
const H2: u64 = 2_654_446_892;
const MH_PRIMES: [u32; 10] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];

/// `hsiphash` on a 64-bit kernel: SipHash-1-3 with both key words `key`, of the value's four
/// bytes in host (little-endian) order, the low 32 bits of the result.
fn hsiphash(key: u64, value: u32) -> u32 {
    let mut h = SipHasher13::new_with_keys(key, key);
    h.write(&value.to_le_bytes());
    h.finish() as u32
}

/// An address as `ntohl(addr_fold)`: IPv6 folded by XOR of its four 32-bit words.
fn fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            a.octets().chunks(4).fold(0, |x, w| x ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        }
    }
}

/// `ip_vs_mh_hashkey`.
fn mh_hash(addr: IpAddr, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash(key, offset.wrapping_add(u32::from(port)).wrapping_add(fold(addr)))
}

/// `ip_vs_mh_permutate` and `ip_vs_mh_populate` over servers added with their weights (so
/// `last_weight` is the weight), with the service port as every server's port.
fn maglev(m: u32, reals: &[Real], port: u16) -> Vec<usize> {
    let index = MH_PRIMES.iter().position(|&p| p == m).expect("a table size") as u32 + 8;
    let tab_bits = index / 2; // IP_VS_MH_TAB_BITS
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = reals.iter().map(|r| r.weight).filter(|&w| w > 0).fold(0, gcd);
    assert!(g > 0, "some server has a weight");
    let max = reals.iter().map(|r| r.weight).max().unwrap_or(0);
    let fls = 32 - (max / g).leading_zeros();
    let shift = fls.saturating_sub(tab_bits);
    // (next slot of the permutation, skip, turns)
    let mut setup: Vec<(u32, u32, u32)> = reals
        .iter()
        .map(|r| {
            let offset = mh_hash(r.addr, port, H1, 0) % m;
            let skip = mh_hash(r.addr, port, H2, 0) % (m - 1) + 1;
            let turns = match (r.weight / g) >> shift {
                0 => u32::from(r.weight != 0),
                t => t,
            };
            (offset, skip, turns)
        })
        .collect();
    let mut table: Vec<Option<usize>> = vec![None; m as usize];
    let mut filled = 0;
    'rounds: loop {
        for (i, (next, skip, turns)) in setup.iter_mut().enumerate() {
            for _ in 0..*turns {
                while table[*next as usize].is_some() {
                    *next = (*next + *skip) % m;
                }
                table[*next as usize] = Some(i);
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
    }
    table.into_iter().map(|s| s.expect("every slot filled")).collect()
}

/// `hash_32(val, 8)`: the top 8 bits of `val × GOLDEN_RATIO_32`.
fn hash_32_8(val: u32) -> usize {
    (val.wrapping_mul(0x61c8_8647) >> 24) as usize
}

/// `__ip_vs_lblc_schedule` / `__ip_vs_lblcr_schedule`: the first server not overloaded with
/// weight > 0, replaced by a later one not overloaded when `loh × w > doh × w_least`.
fn weighted_least(reals: &[Real]) -> Option<usize> {
    let mut least = reals.iter().position(|r| !r.overloaded && r.weight > 0)?;
    for (i, r) in reals.iter().enumerate().skip(least + 1) {
        if r.overloaded {
            continue;
        }
        if reals[least].overhead() * r.weight() > r.overhead() * reals[least].weight() {
            least = i;
        }
    }
    Some(least)
}

/// lblc's and lblcr's `is_overloaded`: more active connections than its weight while some
/// server has fewer than half its weight.
fn lblc_overloaded(real: &Real, reals: &[Real]) -> bool {
    real.active > real.weight && reals.iter().any(|d| d.active * 2 < d.weight)
}

/// The GC timer of lblc and lblcr, from the scheduler's start at 0: a full check every
/// 30th run of the 60-second timer, so every 30 minutes, drops an entry whose last use plus
/// the expiration is not after it. Was there such a check by `now`?
fn collected(lastuse: u64, expiration: u64, now: u64) -> bool {
    const FULL: u64 = 30 * 60 * 1000;
    let due = (lastuse + expiration).max(FULL);
    due.div_ceil(FULL) * FULL <= now
}

impl Model {
    /// The services of a case's `director.toml`.
    pub(crate) fn new(config: &str) -> Self {
        let config: toml::Table = config.parse().expect("director.toml");
        let director = config.get("director").and_then(|d| d.as_table());
        let int = |key: &str| director.and_then(|d| d.get(key)).and_then(|v| v.as_integer());
        let secs = |key: &str| int(key).map(|s| s as u64 * 1000);
        let mh_size = int("mh_table_size").map_or(4093, |m| m as u32);
        let day = 24 * 60 * 60 * 1000;
        let mut services = Vec::new();
        for s in config["service"].as_array().expect("services") {
            assert_eq!(s["proto"].as_str(), Some("tcp"));
            let port = s["port"].as_integer().unwrap() as u16;
            let flags: Vec<&str> = s
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|f| f.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            // ipvsadm -a puts each server at the head of the list.
            let mut reals: Vec<Real> = s["real"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let int = |key: &str| r.get(key).and_then(|v| v.as_integer());
                    let mac: Vec<u8> = r["mac"]
                        .as_str()
                        .unwrap()
                        .split(':')
                        .map(|b| u8::from_str_radix(b, 16).unwrap())
                        .collect();
                    Real {
                        addr: r["ip"].as_str().unwrap().parse().unwrap(),
                        mac: mac.try_into().unwrap(),
                        weight: int("weight").unwrap_or(1) as u32,
                        u_threshold: int("u_threshold").unwrap_or(0) as u32,
                        active: 0,
                        inactive: 0,
                        overloaded: false,
                    }
                })
                .collect();
            reals.reverse();
            let sched = match s["scheduler"].as_str().unwrap() {
                "mh" => Sched::Mh {
                    table: maglev(mh_size, &reals, port),
                    hash_port: flags.contains(&"mh-port"),
                    fallback: flags.contains(&"mh-fallback"),
                },
                // ip_vs_dh_reassign: bucket i holds the (i mod n)th server of the list.
                "dh" => Sched::Dh { buckets: (0..256).map(|i| i % reals.len()).collect() },
                "fo" => Sched::Fo,
                "ovf" => Sched::Ovf,
                "lblc" => Sched::Lblc { entry: None },
                "lblcr" => Sched::Lblcr { entry: None },
                "twos" => Sched::Twos,
                other => panic!("no model of {other}"),
            };
            let vip = s["vip"].as_str().unwrap().parse().unwrap();
            services.push(Service { vip, port, reals, sched });
        }
        Self {
            services,
            conns: HashMap::new(),
            lblc_expiration: secs("lblc_expiration").unwrap_or(day),
            lblcr_expiration: secs("lblcr_expiration").unwrap_or(day),
            draws: Vec::new(),
        }
    }

    /// The connections due by `now` expire (`ip_vs_conn_expire`, `ip_vs_unbind_dest`): their
    /// counter goes down, and the overload flag clears below three quarters of the upper
    /// threshold (or at once without one).
    fn expire(&mut self, now: u64) {
        let due: Vec<_> =
            self.conns.iter().filter(|(_, c)| c.expires <= now).map(|(k, _)| *k).collect();
        for key in due {
            let conn = self.conns.remove(&key).unwrap();
            let real = &mut self.services[conn.service].reals[conn.real];
            if conn.inactive {
                real.inactive -= 1;
            } else {
                real.active -= 1;
            }
            let total = real.active + real.inactive;
            if real.u_threshold == 0 || total * 4 < real.u_threshold * 3 {
                real.overloaded = false;
            }
        }
    }

    /// The kernel's pick for a new connection of `tcp` to service `s` at `now`.
    fn pick(&mut self, s: usize, tcp: &Segment, now: u64) -> Pick {
        let (lblc_exp, lblcr_exp) = (self.lblc_expiration, self.lblcr_expiration);
        let Service { reals, sched, .. } = &mut self.services[s];
        // Whom a scheduler may give a connection (`IP_VS_DEST_F_OVERLOAD` clear, weight > 0).
        let open = |r: &Real| !r.overloaded && r.weight > 0;
        let pick = match sched {
            // ip_vs_mh_schedule: the slot of the client (and its port with mh-port); an
            // unavailable server is no server, unless mh-fallback re-hashes with
            // `offset + ihash` until an available one.
            Sched::Mh { table, hash_port, fallback } => {
                let m = table.len() as u32;
                let port = if *hash_port { tcp.cport } else { 0 };
                let ihash = mh_hash(tcp.client, port, H1, 0) % m;
                let first = table[ihash as usize];
                if open(&reals[first]) {
                    Some(first)
                } else if *fallback {
                    (0..m)
                        .map(|offset| {
                            let roffset = (offset + ihash) % m;
                            table[(mh_hash(tcp.client, port, H1, roffset) % m) as usize]
                        })
                        .find(|&i| open(&reals[i]))
                } else {
                    None
                }
            }
            // ip_vs_dh_schedule: the destination's bucket, no fallback.
            Sched::Dh { buckets } => {
                let real = buckets[hash_32_8(fold(tcp.vip))];
                open(&reals[real]).then_some(real)
            }
            // ip_vs_fo_schedule: the highest weight not overloaded, `>` from 0.
            Sched::Fo => {
                let mut best = None;
                let mut hw = 0;
                for (i, r) in reals.iter().enumerate() {
                    if !r.overloaded && r.weight > hw {
                        best = Some(i);
                        hw = r.weight;
                    }
                }
                best
            }
            // ip_vs_ovf_schedule: the highest weight among those not overloaded, with weight
            // > 0 and no more active connections than their weight.
            Sched::Ovf => {
                let mut best: Option<usize> = None;
                for (i, r) in reals.iter().enumerate() {
                    if r.overloaded || r.active > r.weight || r.weight == 0 {
                        continue;
                    }
                    if best.is_none_or(|b| r.weight > reals[b].weight) {
                        best = Some(i);
                    }
                }
                best
            }
            // ip_vs_lblc_schedule.
            Sched::Lblc { entry } => {
                if entry.is_some_and(|(_, lastuse)| collected(lastuse, lblc_exp, now)) {
                    *entry = None;
                }
                if let Some((real, lastuse)) = entry {
                    *lastuse = now;
                    let r = &reals[*real];
                    if r.weight > 0 && !lblc_overloaded(r, reals) {
                        return Pick::Exact(Some(*real));
                    }
                }
                let least = weighted_least(reals);
                // ip_vs_lblc_new: the same server keeps its entry, another replaces it.
                if let Some(least) = least
                    && entry.is_none_or(|(real, _)| real != least)
                {
                    *entry = Some((least, now));
                }
                least
            }
            // ip_vs_lblcr_schedule.
            Sched::Lblcr { entry } => {
                if entry.as_ref().is_some_and(|(_, lastuse, _)| collected(*lastuse, lblcr_exp, now))
                {
                    *entry = None;
                }
                let Some((set, lastuse, lastmod)) = entry else {
                    let least = weighted_least(reals);
                    *entry = least.map(|l| (vec![l], now, now));
                    return Pick::Exact(least);
                };
                *lastuse = now;
                // ip_vs_dest_set_min: the first member not overloaded with weight > 0,
                // replaced by a later member not overloaded when `loh × w > doh × w_least`.
                let mut min = set.iter().copied().find(|&i| open(&reals[i]));
                if let Some(first) = min {
                    for &i in set.iter().skip_while(|&&i| i != first).skip(1) {
                        let (d, l) = (&reals[i], &reals[min.unwrap()]);
                        if !d.overloaded && l.overhead() * d.weight() > d.overhead() * l.weight() {
                            min = Some(i);
                        }
                    }
                }
                // More than one member and not modified for lblcr_expiration: the most
                // loaded goes (ip_vs_dest_set_max: the first with weight > 0, replaced when
                // `moh × w < doh × w_most` with weight > 0).
                if set.len() > 1 && now > *lastmod + lblcr_exp {
                    let mut most = set.iter().copied().find(|&i| reals[i].weight > 0);
                    if let Some(first) = most {
                        for &i in set.iter().skip_while(|&&i| i != first).skip(1) {
                            let (d, m) = (&reals[i], &reals[most.unwrap()]);
                            if m.overhead() * d.weight() < d.overhead() * m.weight() && d.weight > 0
                            {
                                most = Some(i);
                            }
                        }
                    }
                    if let Some(most) = most {
                        set.retain(|&i| i != most);
                        *lastmod = now;
                    }
                }
                if let Some(min) = min
                    && !lblc_overloaded(&reals[min], reals)
                {
                    return Pick::Exact(Some(min));
                }
                let least = weighted_least(reals);
                // ip_vs_dest_set_insert with check: at the head unless already a member.
                if let Some(least) = least
                    && !set.contains(&least)
                {
                    set.insert(0, least);
                    *lastmod = now;
                }
                least
            }
            // ip_vs_twos_schedule: r1 and r2 uniform in 0 ..= W over the open servers; each
            // picks the server at which it reaches 0 or less after subtracting the weights
            // in list order (the first also takes r = 0); the second choice wins when
            // `w2 × oh1 > w1 × oh2`.
            Sched::Twos => {
                let eligible: Vec<usize> = (0..reals.len()).filter(|&i| open(&reals[i])).collect();
                let total: u32 = eligible.iter().map(|&i| reals[i].weight).sum();
                let mut chances = vec![0.0; reals.len()];
                if eligible.is_empty() {
                    return Pick::Chances(chances);
                }
                let draw = |r: u32| {
                    let mut left = i64::from(r);
                    eligible
                        .iter()
                        .copied()
                        .find(|&i| {
                            left -= reals[i].weight();
                            left <= 0
                        })
                        .unwrap()
                };
                let n = f64::from(total + 1);
                for r1 in 0..=total {
                    let c1 = draw(r1);
                    for r2 in 0..=total {
                        let c2 = draw(r2);
                        let (a, b) = (&reals[c1], &reals[c2]);
                        let pick = if b.weight() * a.overhead() > a.weight() * b.overhead() {
                            c2
                        } else {
                            c1
                        };
                        chances[pick] += 1.0 / (n * n);
                    }
                }
                return Pick::Chances(chances);
            }
        };
        Pick::Exact(pick)
    }

    /// One input frame at `now`, and what dr did with it (`Some(mac)`: forwarded to that
    /// MAC): panics, saying why, where the kernel would have done otherwise.
    pub(crate) fn frame(&mut self, now: u64, frame: &[u8], forwarded: Option<[u8; 6]>, what: &str) {
        self.expire(now);
        let tcp = Segment::parse(frame).unwrap_or_else(|| panic!("{what}: not TCP"));
        let Some(s) =
            self.services.iter().position(|svc| svc.vip == tcp.vip && svc.port == tcp.vport)
        else {
            assert_eq!(forwarded, None, "{what}: no service, yet forwarded");
            return;
        };
        let key = (tcp.client, tcp.cport, tcp.vip, tcp.vport);
        let real = match self.conns.get(&key) {
            Some(conn) => conn.real,
            None if tcp.syn && !tcp.rst => {
                let real = match self.pick(s, &tcp, now) {
                    Pick::Exact(real) => real,
                    Pick::Chances(chances) => {
                        let reals = &self.services[s].reals;
                        let picked = forwarded.map(|mac| {
                            reals.iter().position(|r| r.mac == mac).unwrap_or_else(|| {
                                panic!("{what}: forwarded to {mac:02x?}, no server of the service")
                            })
                        });
                        match picked {
                            Some(i) => assert!(
                                chances[i] > 0.0,
                                "{what}: the kernel never picks {}",
                                reals[i].addr
                            ),
                            None => assert!(
                                chances.iter().all(|&c| c == 0.0),
                                "{what}: dropped, yet a server was open"
                            ),
                        }
                        let mut servers: Vec<_> = reals
                            .iter()
                            .enumerate()
                            .map(|(i, r)| (r.addr, chances[i], picked == Some(i)))
                            .collect();
                        servers.reverse();
                        self.draws.push(Draw { servers });
                        picked
                    }
                };
                let Some(real) = real else {
                    assert_eq!(forwarded, None, "{what}: the kernel has no server for it");
                    return;
                };
                // ip_vs_bind_dest: counted inactive (INACTIVE is set at first), and
                // overloaded once the total reaches the upper threshold.
                let r = &mut self.services[s].reals[real];
                r.inactive += 1;
                if r.u_threshold != 0 && r.active + r.inactive >= r.u_threshold {
                    r.overloaded = true;
                }
                let conn =
                    Conn { service: s, real, state: State::None, inactive: true, expires: 0 };
                self.conns.insert(key, conn);
                real
            }
            None => {
                assert_eq!(forwarded, None, "{what}: no connection, yet forwarded");
                return;
            }
        };
        // set_tcp_state: the counters follow the state's activity; the timeout is re-armed.
        let conn = self.conns.get_mut(&key).unwrap();
        let next = conn.state.next(&tcp);
        let r = &mut self.services[s].reals[real];
        if next != conn.state {
            if !conn.inactive && !next.active() {
                r.active -= 1;
                r.inactive += 1;
                conn.inactive = true;
            } else if conn.inactive && next.active() {
                r.inactive -= 1;
                r.active += 1;
                conn.inactive = false;
            }
        }
        conn.state = next;
        conn.expires = now + next.timeout();
        let want = r.mac;
        assert_eq!(
            forwarded.map(|m| m.map(|b| format!("{b:02x}")).join(":")),
            Some(want.map(|b| format!("{b:02x}")).join(":")),
            "{what}: the kernel sends it to {}",
            r.addr
        );
    }
}
