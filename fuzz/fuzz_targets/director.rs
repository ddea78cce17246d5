//! The director fed an arbitrary sequence of frames, time steps and configuration changes.
//! After every step: active + inactive equal the live connections of every real server
//! (removed ones included), persistent equals its templates, the table holds its capacity,
//! and a forwarded frame differs from what arrived only in its MAC addresses.

#![no_main]

use arbitrary::Arbitrary;
use dr_core::{
    Config, ConnKind, Director, DropReason, Instant, MacAddr, Persistence, Protocol, RealConfig,
    RealEdit, RealId, SchedulerKind, ServiceConfig, ServiceId, Verdict,
};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

const CAPACITY: usize = 16;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any bytes as a frame.
    Raw(Vec<u8>),
    /// Frames in one `process_burst`: any bytes, and flows whose connections the burst's
    /// own frames may open, close or evict.
    Burst(Vec<BurstFrame>),
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
}

#[derive(Arbitrary, Debug)]
struct Input {
    conn_reuse_mode: u8,
    expire_nodest_conn: bool,
    decrement_ttl: bool,
    scheduler: u8,
    ops: Vec<Op>,
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

/// A minimal frame to one of the VIPs: Ethernet, IPv4 or IPv6, TCP or UDP header.
fn flow(client: u8, port: u8, udp: bool, flags: u8, vip6: bool, fragment: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DIRECTOR.0);
    f.extend_from_slice(&ROUTER);
    let l4 = if udp {
        vec![0x13, port, 0, 53, 0, 8, 0, 0]
    } else {
        let mut t =
            vec![0x13, port, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0];
        t[13] = flags;
        t
    };
    let proto = if udp { 17 } else { 6 };
    if vip6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        let mut ip = vec![0x60, 0, 0, 0, 0, l4.len() as u8, proto, 64];
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, client]);
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        f.extend_from_slice(&ip);
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + l4.len() as u16;
        let frag = match fragment % 4 {
            1 => 0x2000u16, // first fragment
            2 => 0x0001,    // a later one
            _ => 0,
        };
        let mut ip =
            vec![0x45, 0, 0, 0, 0, 7, 0, 0, 64, proto, 0, 0, 192, 0, 2, client, 10, 0, 0, 100];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
    }
    f.extend_from_slice(&l4);
    f
}

struct World {
    d: Director,
    services: Vec<ServiceId>,
    reals: Vec<(ServiceId, IpAddr, [u8; 6], Option<RealId>)>,
    now: u64,
}

fn world(input: &Input) -> World {
    let mut config = Config::new(DIRECTOR, [1, 2, 3, 4]);
    config.capacity = CAPACITY;
    config.conn_reuse_mode = input.conn_reuse_mode % 4;
    config.expire_nodest_conn = input.expire_nodest_conn;
    config.decrement_ttl = input.decrement_ttl;
    config.fragment_capacity = 8;
    let mut d = Director::new(config).unwrap();
    let kind = SchedulerKind::ALL[usize::from(input.scheduler) % SchedulerKind::ALL.len()];
    let mut services = Vec::new();
    let mut reals = Vec::new();
    for (proto, vip, port) in [
        (Protocol::Tcp, "10.0.0.100", 80),
        (Protocol::Udp, "10.0.0.100", 53),
        (Protocol::Tcp, "2001:db8::100", 80),
    ] {
        let vip: IpAddr = vip.parse().unwrap();
        let s = d.add_service(ServiceConfig::new(proto, vip, port, kind)).unwrap();
        services.push(s);
        for i in 0..3u8 {
            let addr: IpAddr = if vip.is_ipv4() {
                format!("10.0.0.{}", 11 + i).parse().unwrap()
            } else {
                format!("2001:db8::{}", 11 + i).parse().unwrap()
            };
            let mac = [2, 0, 0, 0, 0, 0x11 + i];
            let id = d.add_real(s, RealConfig::new(addr).with_mac(MacAddr(mac))).unwrap();
            reals.push((s, addr, mac, Some(id)));
        }
    }
    World { d, services, reals, now: 1_000_000_000 }
}

/// One frame of a burst.
#[derive(Arbitrary, Debug)]
enum BurstFrame {
    Raw(Vec<u8>),
    Flow { client: u8, port: u8, flags: u8 },
}

fn check(d: &Director) {
    assert!(d.connection_count() <= CAPACITY);
    for (id, real) in d.reals() {
        let (mut conns, mut active, mut templates) = (0u32, 0u32, 0u32);
        for c in d.connections().filter(|c| c.real == id) {
            match c.kind {
                ConnKind::Template { .. } => templates += 1,
                ConnKind::Connection { .. } => {
                    conns += 1;
                    active += u32::from(c.state.is_active());
                }
            }
        }
        assert_eq!(real.active_conns() + real.inactive_conns(), conns);
        assert_eq!(real.active_conns(), active);
        assert_eq!(real.persistent_conns(), templates);
    }
}

fuzz_target!(|input: Input| {
    let mut w = world(&input);
    for op in input.ops.iter().take(256) {
        let at = Instant::from_nanos(w.now);
        match op {
            Op::Raw(bytes) => {
                let mut frame = bytes.clone();
                let _ = w.d.process(at, &mut frame);
            }
            Op::Burst(frames) => {
                let mut frames: Vec<Vec<u8>> = frames
                    .iter()
                    .take(64)
                    .map(|f| match f {
                        BurstFrame::Raw(bytes) => bytes.clone(),
                        BurstFrame::Flow { client, port, flags } => {
                            flow(*client, *port, false, *flags, false, 0)
                        }
                    })
                    .collect();
                let mut verdicts = vec![Verdict::Drop(DropReason::MalformedEthernet); frames.len()];
                assert_eq!(w.d.process_burst(at, &mut frames, &mut verdicts), frames.len());
            }
            Op::Flow { client, port, udp, flags, vip6, fragment } => {
                let original = flow(*client, *port, *udp, *flags, *vip6, *fragment);
                let mut frame = original.clone();
                if let Verdict::Forward { .. } = w.d.process(at, &mut frame) {
                    assert_eq!(frame.len(), original.len());
                    // MACs always; TTL / hop limit and the IPv4 header checksum in Linux
                    // parity mode.
                    let ttl_bytes: &[usize] =
                        if *vip6 { &[14 + 7] } else { &[14 + 8, 14 + 10, 14 + 11] };
                    for (i, (a, b)) in frame.iter().zip(&original).enumerate() {
                        let allowed = i < 12 || (input.decrement_ttl && ttl_bytes.contains(&i));
                        assert!(a == b || allowed, "byte {i} changed");
                    }
                }
            }
            Op::Wait { millis, timers } => {
                w.now = w.now.saturating_add(u64::from(*millis) * 1_000_000);
                if *timers {
                    w.d.handle_timeout(Instant::from_nanos(w.now));
                }
            }
            Op::Weight { real, weight } => {
                if let Some((_, _, _, Some(id))) = w.reals.get(usize::from(*real) % w.reals.len()) {
                    let edit =
                        RealEdit::of(w.d.real(*id).unwrap()).with_weight(u32::from(*weight % 4));
                    w.d.edit_real(*id, edit).unwrap();
                }
            }
            Op::Thresholds { real, upper, lower } => {
                if let Some((_, _, _, Some(id))) = w.reals.get(usize::from(*real) % w.reals.len()) {
                    let edit = RealEdit::of(w.d.real(*id).unwrap())
                        .with_thresholds(u32::from(*upper % 8), u32::from(*lower % 8));
                    let _ = w.d.edit_real(*id, edit);
                }
            }
            Op::Remove { real } => {
                let n = w.reals.len();
                if let Some(entry) = w.reals.get_mut(usize::from(*real) % n)
                    && let Some(id) = entry.3.take()
                {
                    w.d.remove_real(id).unwrap();
                }
            }
            Op::AddBack { real } => {
                let n = w.reals.len();
                let entry = &mut w.reals[usize::from(*real) % n];
                if entry.3.is_none() {
                    let config = RealConfig::new(entry.1).with_mac(MacAddr(entry.2));
                    entry.3 = Some(w.d.add_real(entry.0, config).unwrap());
                }
            }
            Op::Persist { secs, prefix } => {
                let p = Persistence::new(u32::from(*secs) + 1).with_prefix_len(*prefix % 129);
                for &s in &w.services {
                    w.d.set_persistence(s, Some(p)).unwrap();
                }
            }
            Op::NoPersist { service } => {
                let s = w.services[usize::from(*service) % w.services.len()];
                w.d.set_persistence(s, None).unwrap();
            }
            Op::Zero => w.d.zero_stats(),
        }
        check(&w.d);
    }
    w.d.handle_timeout(Instant::from_nanos(w.now.saturating_add(10_000_000_000_000)));
    assert_eq!(w.d.connection_count(), 0, "everything expires in the end");
    check(&w.d);
    // The end of time, where every clock saturates.
    w.d.handle_timeout(Instant::MAX);
    check(&w.d);
});
