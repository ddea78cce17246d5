//! Workloads for the benchmarks, and the naive baseline they are measured against.
//!
//! The baseline is what a straightforward balancer does: decode every header into owned
//! structs (etherparse's `PacketHeaders`), look the 5-tuple up in a `std` `HashMap` with its
//! default SipHash, and rewrite the MACs.

use dr_core::{
    Config, Director, DropReason, Instant, MacAddr, Protocol, RealConfig, SchedulerKind,
    ServiceConfig, Verdict,
};
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use std::collections::HashMap;
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

/// A director with one TCP service of `reals` real servers and `flows` established flows,
/// and one data segment of each flow in a shuffled order.
pub fn established(flows: usize, reals: usize) -> (Director, Vec<Vec<u8>>) {
    let mut config = Config::new(MacAddr(DIRECTOR_MAC), [0x1234, 0x5678, 0x9abc, 0xdef0]);
    config.capacity = flows.next_power_of_two();
    let mut director = Director::new(config).expect("valid configuration");
    let service = director
        .add_service(ServiceConfig::new(Protocol::Tcp, IpAddr::V4(VIP), 80, SchedulerKind::Rr))
        .expect("new service");
    for r in 0..reals {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0100 + r as u32));
        let mac = MacAddr([0x02, 0, 0, 1, (r >> 8) as u8, r as u8]);
        director.add_real(service, RealConfig::new(addr).with_mac(mac)).expect("new real");
    }
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
type Tuple = (u8, IpAddr, u16, IpAddr, u16);

/// The naive balancer: owned header structs and a SipHash `HashMap`.
#[derive(Debug, Default)]
pub struct Baseline {
    table: HashMap<Tuple, [u8; 6]>,
    reals: Vec<[u8; 6]>,
    next: usize,
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
        let reals = &self.reals;
        let next = &mut self.next;
        let mac = *self.table.entry((proto, src, sport, dst, dport)).or_insert_with(|| {
            *next = (*next + 1) % reals.len();
            reals[*next]
        });
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&DIRECTOR_MAC);
        true
    }
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
