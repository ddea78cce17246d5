//! The director fed an arbitrary sequence of frames, time steps and configuration changes.
//! After every step: active + inactive equal the live connections of every real server
//! (removed ones included), persistent equals its templates, every entry is bound to one of
//! the real servers, the table holds its capacity, and a forwarded frame differs from what
//! arrived only in its MAC addresses. 10 000 s after the last step the table is empty, and
//! `handle_timeout(Instant::MAX)` returns.
//!
//! Each input starts from a director set up for its header (scheduler, `conn_reuse_mode`
//! and, in its bit 2, `sloppy_tcp`, flags), built once per process and copied into the previous input's director with
//! `clone_from` (dr-core's `Clone` for `--cfg fuzzing`, which `cargo fuzz` passes): setting
//! up and tearing down a director was most of the cost of an input.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use dr_core::{
    Config, ConnKind, Director, DropReason, Instant, MacAddr, Persistence, Protocol, RealConfig,
    RealEdit, RealId, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const CAPACITY: usize = 16;

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// Any bytes as a frame.
    Raw(&'a [u8]),
    /// Frames in one `process_burst`: any bytes, and flows whose connections the burst's
    /// own frames may open, close or evict.
    Burst(Vec<BurstFrame<'a>>),
    /// A TCP or UDP packet to a VIP service, built from a few fields, so that connections
    /// are made and reused.
    Flow {
        client: u8,
        port: u8,
        udp: bool,
        flags: u8,
        vip6: bool,
        fragment: u8,
    },
    Wait {
        millis: u32,
        timers: bool,
    },
    Weight {
        real: u8,
        weight: u8,
    },
    Thresholds {
        real: u8,
        upper: u8,
        lower: u8,
    },
    Remove {
        real: u8,
    },
    AddBack {
        real: u8,
    },
    Persist {
        secs: u8,
        prefix: u8,
    },
    NoPersist {
        service: u8,
    },
    Zero,
    /// One-packet scheduling set or cleared on a service (`ipvsadm -E … -o`).
    OnePacket {
        service: u8,
        on: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// `conn_reuse_mode` in bits 0 and 1, `sloppy_tcp` in bit 2.
    conn_reuse_mode: u8,
    expire_nodest_conn: bool,
    decrement_ttl: bool,
    scheduler: u8,
    ops: Ops<'a>,
}

/// The most operations one input runs: enough to fill and empty the table many times over.
/// With 256, the corpus of a 10-minute run ran a quarter slower, for little more coverage.
const MAX_STEPS: usize = 128;

/// The operations: the rest of the input, decoded one at a time as they run, so that
/// nothing past [`MAX_STEPS`] or a malformed operation is decoded (or allocated) at all.
struct Ops<'a>(&'a [u8]);

impl<'a> Arbitrary<'a> for Ops<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.arbitrary_len::<u8>()?;
        Ok(Self(u.bytes(len)?))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(u.take_rest()))
    }
}

impl<'a> Ops<'a> {
    fn iter(&self) -> impl Iterator<Item = Op<'a>> + use<'a> {
        let ops = Unstructured::new(self.0).arbitrary_take_rest_iter::<Op<'a>>();
        ops.into_iter().flatten().map_while(Result::ok).take(MAX_STEPS)
    }
}

impl fmt::Debug for Ops<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

const DIRECTOR: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = bytes
        .chunks(2)
        .fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])));
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The longest frame [`flow`] builds: Ethernet, IPv6 and TCP headers.
const FLOW_MAX: usize = 14 + 40 + 20;

/// A minimal frame to one of the VIPs: Ethernet, IPv4 or IPv6, TCP or UDP header, built
/// without allocating: the first `len` bytes of the array returned with `len`.
fn flow(
    client: u8,
    port: u8,
    udp: bool,
    flags: u8,
    vip6: bool,
    fragment: u8,
) -> ([u8; FLOW_MAX], usize) {
    let mut f = [0u8; FLOW_MAX];
    f[..6].copy_from_slice(&DIRECTOR.0);
    f[6..12].copy_from_slice(&ROUTER);
    let udp_header = [0x13, port, 0, 53, 0, 8, 0, 0];
    let tcp_header =
        [0x13, port, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0];
    let l4: &[u8] = if udp { &udp_header } else { &tcp_header };
    let proto = if udp { 17 } else { 6 };
    let l3 = if vip6 {
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let ip = &mut f[14..54];
        ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, l4.len() as u8, proto, 64]);
        ip[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, client]);
        ip[24..40].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        40
    } else {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = 20 + l4.len() as u16;
        let frag = match fragment % 4 {
            1 => 0x2000u16, // first fragment
            2 => 0x0001,    // a later one
            _ => 0,
        };
        let ip = &mut f[14..34];
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 7, 0, 0, 64, proto, 0, 0, 192, 0, 2, client, 10, 0, 0, 100,
        ]);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        let sum = checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        20
    };
    let len = 14 + l3 + l4.len();
    f[14 + l3..len].copy_from_slice(l4);
    (f, len)
}

/// The real servers of each service.
const REALS_PER_SERVICE: usize = 3;
/// Every real server the world has: removed ones come back in their own slot, so there are
/// never more.
const REALS: usize = 3 * REALS_PER_SERVICE;

struct World {
    d: Director,
    services: [ServiceId; 3],
    reals: [(ServiceId, IpAddr, [u8; 6], Option<RealId>); REALS],
    now: u64,
}

impl Clone for World {
    fn clone(&self) -> Self {
        let Self { d, services, reals, now } = self;
        Self { d: d.clone(), services: *services, reals: *reals, now: *now }
    }

    fn clone_from(&mut self, source: &Self) {
        let Self { d, services, reals, now } = self;
        d.clone_from(&source.d);
        (*services, *reals, *now) = (source.services, source.reals, source.now);
    }
}

/// The world an input starts from, in `into`. Building one is most of the work an input
/// takes, and it depends only on the header: each is built once, and copied into the world
/// of the input before, reusing its memory.
fn world(input: &Input<'_>, into: &mut Option<World>) {
    const WORLDS: usize = 8 * 2 * 2 * SchedulerKind::ALL.len();
    thread_local! {
        static BUILT: RefCell<Vec<Option<World>>> = const { RefCell::new(Vec::new()) };
    }
    let kind = usize::from(input.scheduler) % SchedulerKind::ALL.len();
    let reuse = usize::from(input.conn_reuse_mode % 8);
    let flags = usize::from(input.expire_nodest_conn) * 2 + usize::from(input.decrement_ttl);
    BUILT.with_borrow_mut(|built| {
        built.resize_with(WORLDS, || None);
        let built = built[(kind * 8 + reuse) * 4 + flags].get_or_insert_with(|| build(input));
        match into {
            Some(w) => w.clone_from(built),
            None => *into = Some(built.clone()),
        }
    });
}

fn build(input: &Input<'_>) -> World {
    let mut config = Config::new(DIRECTOR, [1, 2, 3, 4]);
    config.capacity = CAPACITY;
    config.conn_reuse_mode = input.conn_reuse_mode % 4;
    config.sloppy_tcp = input.conn_reuse_mode & 4 != 0;
    config.expire_nodest_conn = input.expire_nodest_conn;
    config.decrement_ttl = input.decrement_ttl;
    config.fragment_capacity = 8;
    // The kernel's smallest Maglev table: `mh` is rebuilt on every weight, threshold or
    // server change, and at the default 4093 slots the rebuilds took most of an input's time
    // for no code the smallest table does not reach.
    config.mh_table_size = dr_core::MH_TABLE_SIZES[0];
    let mut d = Director::new(config).unwrap();
    let kind = SchedulerKind::ALL[usize::from(input.scheduler) % SchedulerKind::ALL.len()];
    let vip4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let vip6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100));
    let services =
        [(Protocol::Tcp, vip4, 80), (Protocol::Udp, vip4, 53), (Protocol::Tcp, vip6, 80)].map(
            |(proto, vip, port)| d.add_service(ServiceConfig::new(proto, vip, port, kind)).unwrap(),
        );
    // 10.0.0.11 to .13 behind both IPv4 services, 2001:db8::11 to ::13 behind the IPv6 one.
    let reals = core::array::from_fn(|n| {
        let (s, i) = (services[n / REALS_PER_SERVICE], (n % REALS_PER_SERVICE) as u8);
        let addr = if n / REALS_PER_SERVICE < 2 {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11 + i))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11 + u16::from(i)))
        };
        let mac = [2, 0, 0, 0, 0, 0x11 + i];
        let id = d.add_real(s, RealConfig::new(addr).with_mac(MacAddr(mac))).unwrap();
        (s, addr, mac, Some(id))
    });
    World { d, services, reals, now: 1_000_000_000 }
}

/// One frame of a burst.
#[derive(Arbitrary, Debug)]
enum BurstFrame<'a> {
    Raw(&'a [u8]),
    Flow { client: u8, port: u8, flags: u8 },
}

/// The most frames one burst takes.
const MAX_BURST: usize = 64;

/// After every step: the table holds its capacity, every entry is bound to a real server
/// the director knows, and each real server's active, inactive and persistent counts are
/// the entries bound to it. One pass over the entries, one over the real servers, and the
/// counts compared all at once.
fn check(d: &Director) {
    assert!(d.connection_count() <= CAPACITY);
    // Per real server: connections (active + inactive), active connections, templates.
    let mut bound = [[0u32; 3]; REALS];
    for c in d.connections() {
        let Some(counts) = bound.get_mut(c.real.index()) else {
            panic!("an entry bound to {:?}, beyond the {REALS} real servers", c.real);
        };
        match c.kind {
            ConnKind::Template { .. } => counts[2] += 1,
            ConnKind::Connection { .. } => {
                counts[0] += 1;
                counts[1] += u32::from(c.state.is_active());
            }
        }
    }
    let mut counted = [[0u32; 3]; REALS];
    let mut reals = 0;
    for (id, real) in d.reals() {
        let active = real.active_conns();
        counted[id.index()] = [active + real.inactive_conns(), active, real.persistent_conns()];
        reals += 1;
    }
    assert_eq!(reals, REALS, "removed real servers linger and come back in their own slot");
    assert_eq!(counted, bound, "each real server's [active + inactive, active, persistent]");
}

/// A frame as `process` gets it: `frame` is reused from step to step.
fn load<'f>(frame: &'f mut Vec<u8>, bytes: &[u8]) -> &'f mut [u8] {
    frame.clear();
    frame.extend_from_slice(bytes);
    frame
}

/// What one input leaves behind for the next to reuse: its world, and its frame buffers.
#[derive(Default)]
struct Scratch {
    world: Option<World>,
    frame: Vec<u8>,
    burst: Vec<Vec<u8>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fuzz_target!(|input: Input<'_>| SCRATCH.with_borrow_mut(|scratch| run(&input, scratch)));

fn run(input: &Input<'_>, scratch: &mut Scratch) {
    world(input, &mut scratch.world);
    let Scratch { world: Some(w), frame, burst } = scratch else { unreachable!() };
    let mut verdicts = [Verdict::Drop(DropReason::MalformedEthernet); MAX_BURST];
    for op in input.ops.iter() {
        let at = Instant::from_nanos(w.now);
        match op {
            Op::Raw(bytes) => {
                let _ = w.d.process(at, load(frame, bytes));
            }
            Op::Burst(frames) => {
                let n = frames.len().min(MAX_BURST);
                if burst.len() < n {
                    burst.resize_with(n, Vec::new);
                }
                for (f, buf) in frames.iter().take(n).zip(burst.iter_mut()) {
                    match f {
                        BurstFrame::Raw(bytes) => {
                            load(buf, bytes);
                        }
                        BurstFrame::Flow { client, port, flags } => {
                            let (f, len) = flow(*client, *port, false, *flags, false, 0);
                            load(buf, &f[..len]);
                        }
                    }
                }
                assert_eq!(w.d.process_burst(at, &mut burst[..n], &mut verdicts[..n]), n);
            }
            Op::Flow { client, port, udp, flags, vip6, fragment } => {
                let (original, len) = flow(client, port, udp, flags, vip6, fragment);
                let mut frame = original;
                if let Verdict::Forward { .. } = w.d.process(at, &mut frame[..len]) {
                    // The MACs may change; in Linux parity mode also the TTL / hop limit and
                    // the IPv4 header checksum. The rest is as it arrived (compared as one
                    // slice: a comparison per byte took a tenth of the time of an input).
                    let rewritten: &[usize] = match (input.decrement_ttl, vip6) {
                        (false, _) => &[],
                        (true, true) => &[14 + 7],
                        (true, false) => &[14 + 8, 14 + 10, 14 + 11],
                    };
                    let mut expected = original;
                    for &i in rewritten {
                        expected[i] = frame[i];
                    }
                    assert_eq!(frame[12..len], expected[12..len], "a byte past the MACs changed");
                }
            }
            Op::Wait { millis, timers } => {
                w.now = w.now.saturating_add(u64::from(millis) * 1_000_000);
                if timers {
                    w.d.handle_timeout(Instant::from_nanos(w.now));
                }
            }
            Op::Weight { real, weight } => {
                if let (_, _, _, Some(id)) = w.reals[usize::from(real) % REALS] {
                    let edit =
                        RealEdit::of(w.d.real(id).unwrap()).with_weight(u32::from(weight % 4));
                    w.d.edit_real(id, edit).unwrap();
                }
            }
            Op::Thresholds { real, upper, lower } => {
                if let (_, _, _, Some(id)) = w.reals[usize::from(real) % REALS] {
                    let edit = RealEdit::of(w.d.real(id).unwrap())
                        .with_thresholds(u32::from(upper % 8), u32::from(lower % 8));
                    let _ = w.d.edit_real(id, edit);
                }
            }
            Op::Remove { real } => {
                if let Some(id) = w.reals[usize::from(real) % REALS].3.take() {
                    w.d.remove_real(id).unwrap();
                }
            }
            Op::AddBack { real } => {
                let entry = &mut w.reals[usize::from(real) % REALS];
                if entry.3.is_none() {
                    let config = RealConfig::new(entry.1).with_mac(MacAddr(entry.2));
                    entry.3 = Some(w.d.add_real(entry.0, config).unwrap());
                }
            }
            Op::Persist { secs, prefix } => {
                let p = Persistence::new(u32::from(secs) + 1).with_prefix_len(prefix % 129);
                for &s in &w.services {
                    w.d.set_persistence(s, Some(p)).unwrap();
                }
            }
            Op::NoPersist { service } => {
                let s = w.services[usize::from(service) % w.services.len()];
                w.d.set_persistence(s, None).unwrap();
            }
            Op::Zero => w.d.zero_stats(),
            Op::OnePacket { service, on } => {
                let s = w.services[usize::from(service) % w.services.len()];
                w.d.set_one_packet(s, on).unwrap();
            }
        }
        check(&w.d);
    }
    w.d.handle_timeout(Instant::from_nanos(w.now.saturating_add(10_000_000_000_000)));
    assert_eq!(w.d.connection_count(), 0, "everything expires in the end");
    check(&w.d);
    // The end of time, where every clock saturates.
    w.d.handle_timeout(Instant::MAX);
    check(&w.d);
}
