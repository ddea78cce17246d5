//! Workloads for the benchmarks, and the naive baseline they are measured against.
//!
//! The baseline is what a straightforward balancer does: decode every header into owned
//! structs (etherparse's `PacketHeaders`), look the 5-tuple up in a `std` `HashMap` with its
//! default SipHash, and rewrite the MACs.

use dr_core::{
    Config, Director, DropReason, FlowKey, Instant, MacAddr, Protocol, RealConfig, SchedulerKind,
    ServiceConfig, Verdict,
};
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

/// The director's MAC in every workload.
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The router's MAC, the source of client frames.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
/// The VIP.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

/// The client address and port of flow `i`.
pub fn client(i: usize) -> (Ipv4Addr, u16) {
    let host = (i / 50_000) as u32;
    (Ipv4Addr::from(0xc000_0000 | (host << 8) | ((i % 250) as u32 + 1)), 1024 + (i % 50_000) as u16)
}

/// A TCP segment of flow `i` to the VIP on port 80.
pub fn tcp_frame(i: usize, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (addr, port) = client(i);
    let builder = PacketBuilder::ethernet2(ROUTER_MAC, DIRECTOR_MAC)
        .ipv4(addr.octets(), VIP.octets(), 64)
        .tcp(port, 80, 1000, 64240);
    let builder = if syn { builder.syn() } else { builder.ack(1) };
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).expect("writing to a Vec cannot fail");
    frame
}

/// A UDP datagram of flow `i` to the VIP on port 53.
pub fn udp_frame(i: usize) -> Vec<u8> {
    let (addr, port) = client(i);
    let builder = PacketBuilder::ethernet2(ROUTER_MAC, DIRECTOR_MAC)
        .ipv4(addr.octets(), VIP.octets(), 64)
        .udp(port, 53);
    let payload: &[u8] = b"query";
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).expect("writing to a Vec cannot fail");
    frame
}

/// A director with one UDP service on the VIP, port 53, of `reals` real servers scheduled
/// round robin, with one-packet scheduling (`ops`) or without, and one datagram of each of
/// `flows` flows; without ops each flow already has its entry.
pub fn udp_flows(flows: usize, reals: usize, ops: bool) -> (Director, Vec<Vec<u8>>) {
    let mut config = Config::new(MacAddr(DIRECTOR_MAC), [0x1234, 0x5678, 0x9abc, 0xdef0]);
    config.capacity = flows.next_power_of_two();
    let mut director = Director::new(config).expect("valid configuration");
    let udp = ServiceConfig::new(Protocol::Udp, IpAddr::V4(VIP), 53, SchedulerKind::Rr)
        .with_one_packet(ops);
    let service = director.add_service(udp).expect("new service");
    for r in 0..reals {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0100 + r as u32));
        let mac = MacAddr([0x02, 0, 0, 1, (r >> 8) as u8, r as u8]);
        director.add_real(service, RealConfig::new(addr).with_mac(mac)).expect("new real");
    }
    let frames: Vec<Vec<u8>> = shuffled((0..flows).map(udp_frame).collect());
    for frame in &frames {
        let verdict = director.process(Instant::from_secs(1), &mut frame.clone());
        assert!(verdict.is_transmit(), "{verdict:?}");
    }
    assert_eq!(director.connection_count(), if ops { 0 } else { flows });
    (director, frames)
}

/// The connection key of flow `i`.
pub fn flow_key(i: usize) -> FlowKey {
    let (addr, port) = client(i);
    FlowKey {
        protocol: Protocol::Tcp,
        client: IpAddr::V4(addr),
        client_port: port,
        vip: IpAddr::V4(VIP),
        vip_port: 80,
    }
}

/// The baseline's key of flow `i`.
pub fn tuple(i: usize) -> Tuple {
    let (addr, port) = client(i);
    (6, IpAddr::V4(addr), port, IpAddr::V4(VIP), 80)
}

/// A director with room for `capacity` connections and one TCP service on the VIP, port
/// 80, of `reals` real servers scheduled round robin.
pub fn director(capacity: usize, reals: usize) -> Director {
    let mut config = Config::new(MacAddr(DIRECTOR_MAC), [0x1234, 0x5678, 0x9abc, 0xdef0]);
    config.capacity = capacity;
    let mut director = Director::new(config).expect("valid configuration");
    let service = director
        .add_service(ServiceConfig::new(Protocol::Tcp, IpAddr::V4(VIP), 80, SchedulerKind::Rr))
        .expect("new service");
    for r in 0..reals {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0100 + r as u32));
        let mac = MacAddr([0x02, 0, 0, 1, (r >> 8) as u8, r as u8]);
        director.add_real(service, RealConfig::new(addr).with_mac(mac)).expect("new real");
    }
    director
}

/// A director with one TCP service of `reals` real servers and `flows` established flows,
/// and one data segment of each flow in a shuffled order.
pub fn established(flows: usize, reals: usize) -> (Director, Vec<Vec<u8>>) {
    let mut director = director(flows.next_power_of_two(), reals);
    for i in 0..flows {
        let verdict = director.process(Instant::from_secs(1), &mut tcp_frame(i, true, b""));
        assert!(verdict.is_transmit(), "flow {i}: {verdict:?}");
    }
    (director, shuffled((0..flows).map(|i| tcp_frame(i, false, &[0u8; 64])).collect()))
}

/// A deterministic shuffle (xorshift), so runs compare.
pub fn shuffled<T>(mut items: Vec<T>) -> Vec<T> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

/// The 5-tuple the baseline keys on.
pub type Tuple = (u8, IpAddr, u16, IpAddr, u16);

/// The naive balancer: owned header structs and a SipHash `HashMap`.
#[derive(Debug, Default)]
pub struct Baseline {
    table: HashMap<Tuple, [u8; 6]>,
    reals: Vec<[u8; 6]>,
    next: usize,
    /// With [`with_window`](Self::with_window): the keys in the order they were added.
    order: VecDeque<Tuple>,
    window: usize,
}

impl Baseline {
    /// A baseline with `reals` real servers and the flows of `frames` already established.
    pub fn established(reals: usize, frames: &[Vec<u8>]) -> Self {
        let mut baseline = Self {
            reals: (0..reals).map(|r| [0x02, 0, 0, 1, (r >> 8) as u8, r as u8]).collect(),
            ..Self::default()
        };
        for frame in frames {
            let mut f = frame.clone();
            baseline.process(&mut f);
        }
        baseline
    }

    /// A baseline with `reals` real servers that keeps only the `window` newest flows,
    /// as expiry keeps a table of new connections at a steady size.
    pub fn with_window(reals: usize, window: usize) -> Self {
        Self { window, ..Self::established(reals, &[]) }
    }

    /// The real server's MAC for a flow, if the flow is known.
    pub fn lookup(&self, tuple: &Tuple) -> Option<[u8; 6]> {
        self.table.get(tuple).copied()
    }

    /// Forwards a frame: true if it was rewritten.
    pub fn process(&mut self, frame: &mut [u8]) -> bool {
        let Ok(headers) = PacketHeaders::from_ethernet_slice(frame) else {
            return false;
        };
        let (src, dst) = match &headers.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                (IpAddr::from(ip.source), IpAddr::from(ip.destination))
            }
            _ => return false,
        };
        let (proto, sport, dport) = match &headers.transport {
            Some(TransportHeader::Tcp(t)) => (6, t.source_port, t.destination_port),
            Some(TransportHeader::Udp(u)) => (17, u.source_port, u.destination_port),
            _ => return false,
        };
        let tuple = (proto, src, sport, dst, dport);
        let mac = match self.table.get(&tuple) {
            Some(mac) => *mac,
            None => {
                self.next = (self.next + 1) % self.reals.len();
                let mac = self.reals[self.next];
                self.table.insert(tuple, mac);
                if self.window > 0 {
                    self.order.push_back(tuple);
                    if self.order.len() > self.window
                        && let Some(old) = self.order.pop_front()
                    {
                        self.table.remove(&old);
                    }
                }
                mac
            }
        };
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&DIRECTOR_MAC);
        true
    }
}

/// A director whose TCP SYN_RECV entries (60 s) expire while `new_flows` distinct flows
/// come round at one per millisecond of its clock, so every SYN of the returned frames opens
/// a new connection; about 60 000 stay live.
pub fn new_connections(new_flows: usize, reals: usize) -> (Director, Vec<Vec<u8>>) {
    assert!(new_flows > 60_000, "flows must come round only after their entries expired");
    let director = director(1 << 17, reals);
    (director, (0..new_flows).map(|i| tcp_frame(i, true, b"")).collect())
}

/// Writes a packet builder's frame into a new `Vec`.
macro_rules! build {
    ($builder:expr, $payload:expr $(,)?) => {{
        let builder = $builder;
        let payload: &[u8] = $payload;
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut frame, payload).expect("writing to a Vec cannot fail");
        frame
    }};
}

/// Builds a realistic mix of frames to a director: mostly IPv4 TCP data, then UDP, IPv6,
/// VLAN-tagged, ARP, ICMP and fragments, in a fixed shuffled order.
pub fn frame_mix(n: usize) -> Vec<Vec<u8>> {
    let eth = || PacketBuilder::ethernet2(ROUTER_MAC, DIRECTOR_MAC);
    let frames = (0..n).map(|i| {
        let (addr, port) = client(i);
        let (src, dst) = (addr.octets(), VIP.octets());
        let mut src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        src6[12..].copy_from_slice(&src);
        let dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
        match i % 100 {
            // 60% IPv4 TCP segments, 40 of them carrying 512 bytes, 20 bare ACKs.
            0..40 => tcp_frame(i, false, &[0u8; 512]),
            40..60 => tcp_frame(i, false, b""),
            // 15% IPv4 UDP.
            60..75 => build!(eth().ipv4(src, dst, 64).udp(port, 53), &[0u8; 64]),
            // 10% IPv6 TCP.
            75..85 => {
                build!(eth().ipv6(src6, dst6, 64).tcp(port, 80, 1, 64240).ack(1), &[0; 256])
            }
            // 5% tagged IPv4 TCP.
            85..90 => build!(
                eth()
                    .single_vlan(etherparse::VlanId::try_new(10).expect("valid id"))
                    .ipv4(src, dst, 64)
                    .tcp(port, 80, 1, 64240)
                    .ack(1),
                &[0; 128],
            ),
            // 4% ARP requests, 3% ICMP echo, 3% first fragments of UDP datagrams.
            90..94 => arp_request(addr),
            94..97 => build!(eth().ipv4(src, dst, 64).icmpv4_echo_request(1, 1), &[0; 56]),
            _ => {
                let mut frame = build!(eth().ipv4(src, dst, 64).udp(port, 53), &[0u8; 1400]);
                let mut ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..])
                    .expect("a valid header")
                    .to_header();
                ip.more_fragments = true;
                ip.header_checksum = ip.calc_header_checksum();
                frame[14..34].copy_from_slice(&ip.to_bytes());
                frame
            }
        }
    });
    shuffled(frames.collect())
}

/// An ARP request from the router at `sender` asking who has the VIP.
fn arp_request(sender: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&ROUTER_MAC);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame.extend_from_slice(&ROUTER_MAC);
    frame.extend_from_slice(&sender.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&VIP.octets());
    frame.resize(60, 0);
    frame
}

/// Frames laid out back to back at a fixed stride, walked in order, as in a receive ring.
#[derive(Debug)]
pub struct Ring {
    buf: Vec<u8>,
    lens: Vec<usize>,
    stride: usize,
    next: usize,
}

impl Ring {
    /// A ring holding `frames` in order.
    pub fn new(frames: &[Vec<u8>]) -> Self {
        let stride = frames.iter().map(Vec::len).max().unwrap_or(0).next_multiple_of(64);
        let mut buf = vec![0u8; stride * frames.len()];
        for (slot, frame) in buf.chunks_mut(stride.max(1)).zip(frames) {
            slot[..frame.len()].copy_from_slice(frame);
        }
        Self { buf, lens: frames.iter().map(Vec::len).collect(), stride, next: 0 }
    }

    /// The next `frames.len()` frames in order, starting over at the beginning when fewer
    /// are left before the end.
    pub fn next_burst<'a>(&'a mut self, frames: &mut [&'a mut [u8]]) {
        let n = frames.len().min(self.lens.len());
        if self.next + n > self.lens.len() {
            self.next = 0;
        }
        let first = self.next;
        self.next = (first + n) % self.lens.len();
        let region = &mut self.buf[first * self.stride..(first + n) * self.stride];
        for ((slot, chunk), len) in
            frames.iter_mut().zip(region.chunks_mut(self.stride)).zip(&self.lens[first..])
        {
            *slot = &mut chunk[..*len];
        }
    }

    /// The next frame, wrapping around at the end.
    pub fn next_frame(&mut self) -> &mut [u8] {
        let i = self.next;
        self.next = (i + 1) % self.lens.len();
        &mut self.buf[i * self.stride..i * self.stride + self.lens[i]]
    }
}

/// Puts a frame's original MACs back, so the same frame can be processed again.
pub fn restore_macs(frame: &mut [u8]) {
    frame[0..6].copy_from_slice(&DIRECTOR_MAC);
    frame[6..12].copy_from_slice(&ROUTER_MAC);
}

/// Frames in bursts of [`BURST`], as a receive ring hands them over, for
/// `Director::process_burst`.
#[derive(Debug)]
pub struct Burst {
    ring: Ring,
    verdicts: Vec<Verdict>,
}

/// The frames of one burst.
pub const BURST: usize = dr_core::BURST;

impl Burst {
    /// Bursts over `frames`, walked in order.
    pub fn new(frames: &[Vec<u8>]) -> Self {
        Self {
            ring: Ring::new(frames),
            verdicts: vec![Verdict::Drop(DropReason::MalformedEthernet); BURST],
        }
    }

    /// Runs `process` on bursts of frames until `iters` frames went through it (rounded up to
    /// whole bursts), and returns the time per `iters` frames.
    pub fn run(
        &mut self,
        iters: u64,
        mut process: impl FnMut(&mut [&mut [u8]], &mut [Verdict]),
    ) -> std::time::Duration {
        let bursts = iters.div_ceil(BURST as u64);
        let start = std::time::Instant::now();
        for _ in 0..bursts {
            let mut frames: [&mut [u8]; BURST] = Default::default();
            self.ring.next_burst(&mut frames);
            for frame in frames.iter_mut() {
                restore_macs(frame);
            }
            process(&mut frames, &mut self.verdicts);
        }
        start.elapsed().mul_f64(iters as f64 / (bursts * BURST as u64) as f64)
    }
}

/// One real server as the naive scheduler keeps it.
#[derive(Clone, Debug)]
pub struct NaiveReal {
    /// Its address.
    pub addr: IpAddr,
    /// Its weight.
    pub weight: u32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
}

/// The naive scheduler each of ours is measured against: the straightforward code for the
/// same rule over a `Vec` of owned structs, with floating point and SipHash where they come
/// to mind first.
#[derive(Debug)]
pub struct NaiveScheduler {
    kind: SchedulerKind,
    reals: Vec<NaiveReal>,
    /// Weighted round robin: each server's index repeated weight times.
    slots: Vec<usize>,
    next: usize,
    /// Source hashing: the same client always hashes the same.
    hasher: std::hash::RandomState,
    /// Maglev: the lookup table.
    maglev: Vec<Option<usize>>,
}

impl NaiveScheduler {
    /// A scheduler of `kind` over `reals`.
    pub fn new(kind: SchedulerKind, reals: Vec<NaiveReal>) -> Self {
        let slots = reals
            .iter()
            .enumerate()
            .flat_map(|(i, r)| std::iter::repeat_n(i, r.weight as usize))
            .collect();
        let maglev = if kind == SchedulerKind::Mh {
            let servers: Vec<(IpAddr, u32)> = reals.iter().map(|r| (r.addr, r.weight)).collect();
            naive_maglev(4093, &servers)
        } else {
            Vec::new()
        };
        Self { kind, reals, slots, next: 0, hasher: std::hash::RandomState::new(), maglev }
    }

    /// The index of the server for a new connection of `client`.
    pub fn pick(&mut self, client: IpAddr) -> Option<usize> {
        use std::hash::BuildHasher;
        let n = self.reals.len();
        match self.kind {
            SchedulerKind::Rr => {
                let start = self.next;
                let pick = (1..=n).map(|k| (start + k) % n).find(|&i| self.reals[i].weight > 0);
                self.next = pick.unwrap_or(start);
                pick
            }
            SchedulerKind::Wrr => {
                self.next = (self.next + 1) % self.slots.len().max(1);
                self.slots.get(self.next).copied()
            }
            SchedulerKind::Sh => {
                let pick = (self.hasher.hash_one(client) % n as u64) as usize;
                (self.reals[pick].weight > 0).then_some(pick)
            }
            SchedulerKind::Mh => {
                let slot = self.hasher.hash_one(client) % self.maglev.len() as u64;
                self.maglev[slot as usize].filter(|&i| self.reals[i].weight > 0)
            }
            // Every connection of a VIP to one server.
            SchedulerKind::Dh => {
                let pick = (self.hasher.hash_one(VIP) % n as u64) as usize;
                (self.reals[pick].weight > 0).then_some(pick)
            }
            SchedulerKind::Fo => {
                let best = self.reals.iter().enumerate().filter(|(_, r)| r.weight > 0);
                best.max_by_key(|(i, r)| (r.weight, std::cmp::Reverse(*i))).map(|(i, _)| i)
            }
            SchedulerKind::Ovf => {
                let fits = self.reals.iter().enumerate();
                let fits = fits.filter(|(_, r)| r.weight > 0 && r.active <= r.weight);
                fits.max_by_key(|(i, r)| (r.weight, std::cmp::Reverse(*i))).map(|(i, _)| i)
            }
            SchedulerKind::Twos => {
                self.next = self.next.wrapping_add(1);
                let a = (self.hasher.hash_one(self.next) % n as u64) as usize;
                let b = (self.hasher.hash_one(!self.next) % n as u64) as usize;
                let load = |r: &NaiveReal| f64::from(r.active) / f64::from(r.weight.max(1));
                let pick = if load(&self.reals[b]) < load(&self.reals[a]) { b } else { a };
                (self.reals[pick].weight > 0).then_some(pick)
            }
            kind => {
                let cost = |r: &NaiveReal| -> f64 {
                    let w = f64::from(r.weight);
                    match kind {
                        SchedulerKind::Lc => f64::from(r.active) * 256.0 + f64::from(r.inactive),
                        SchedulerKind::Wlc | SchedulerKind::Lblc | SchedulerKind::Lblcr => {
                            (f64::from(r.active) * 256.0 + f64::from(r.inactive)) / w
                        }
                        _ => (f64::from(r.active) + 1.0) / w,
                    }
                };
                self.reals
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.weight > 0)
                    .min_by(|a, b| cost(a.1).total_cmp(&cost(b.1)))
                    .map(|(i, _)| i)
            }
        }
    }
}

/// The Maglev paper's Algorithm 1 written the first way that comes to mind: a fresh table of
/// `Option<usize>` per build, offsets and skips from std's SipHash per server, and weights
/// as that many turns a round. The baseline of `dr`'s `mh` table builds.
pub fn naive_maglev(m: u64, servers: &[(IpAddr, u32)]) -> Vec<Option<usize>> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let mut next: Vec<(u64, u64)> = servers
        .iter()
        .map(|(addr, _)| {
            (hasher.hash_one((addr, 1u8)) % m, hasher.hash_one((addr, 2u8)) % (m - 1) + 1)
        })
        .collect();
    let mut table = vec![None; m as usize];
    let mut filled = 0;
    if servers.iter().all(|(_, w)| *w == 0) {
        return table;
    }
    while filled < m {
        for (i, (offset, skip)) in next.iter_mut().enumerate() {
            for _ in 0..servers[i].1 {
                while table[*offset as usize].is_some() {
                    *offset = (*offset + *skip) % m;
                }
                table[*offset as usize] = Some(i);
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
    table
}
