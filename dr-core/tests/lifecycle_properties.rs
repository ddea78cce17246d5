//! The table's invariants under everything at once: frames of every kind from a small set of
//! clients (so ports are reused and templates shared), time steps, and configuration
//! changes (weights, thresholds, removal and re-adding of real servers, persistence on and
//! off, timeouts, zeroing), in any order.

mod support;

use dr_core::{
    Config, ConnKind, Director, Instant, Persistence, Protocol, RealConfig, RealEdit, RealId,
    SchedulerKind, ServiceConfig, ServiceId, TimeoutSettings,
};
use proptest::prelude::*;
use support::*;

const VIP: &str = "10.0.0.100";
const CAPACITY: usize = 24;

#[derive(Clone, Debug)]
enum Op {
    /// A TCP segment or UDP datagram from client `host` port `port`.
    Frame {
        host: u8,
        port: u16,
        udp: bool,
        flags: u8,
    },
    /// A UDP datagram in two fragments.
    Fragmented {
        host: u8,
        port: u16,
    },
    /// An ICMP error about a client's connection.
    IcmpError {
        host: u8,
        port: u16,
    },
    /// Time passes (milliseconds), with or without a call to handle_timeout.
    Wait {
        ms: u64,
        timers: bool,
    },
    Weight {
        real: usize,
        weight: u32,
    },
    Thresholds {
        real: usize,
        upper: u32,
    },
    Remove {
        real: usize,
    },
    AddBack {
        real: usize,
    },
    Persistence {
        secs: u32,
        prefix: u8,
    },
    NoPersistence,
    Timeouts {
        tcp: u32,
        udp: u32,
    },
    Zero,
}

fn op() -> impl Strategy<Value = Op> {
    let host = 0u8..6;
    let port = 0u16..4;
    let flags = prop::sample::select(vec![SYN, ACK, ACK | PSH, FIN | ACK, RST, SYN | ACK]);
    prop_oneof![
        8 => (host.clone(), port.clone(), any::<bool>(), flags)
            .prop_map(|(host, port, udp, flags)| Op::Frame { host, port, udp, flags }),
        1 => (host.clone(), port.clone()).prop_map(|(host, port)| Op::Fragmented { host, port }),
        1 => (host, port).prop_map(|(host, port)| Op::IcmpError { host, port }),
        3 => (0u64..200_000, any::<bool>()).prop_map(|(ms, timers)| Op::Wait { ms, timers }),
        1 => (0usize..3, 0u32..4).prop_map(|(real, weight)| Op::Weight { real, weight }),
        1 => (0usize..3, 0u32..4).prop_map(|(real, upper)| Op::Thresholds { real, upper }),
        1 => (0usize..3).prop_map(|real| Op::Remove { real }),
        1 => (0usize..3).prop_map(|real| Op::AddBack { real }),
        1 => (1u32..120, prop::sample::select(vec![24u8, 32])).prop_map(|(secs, prefix)| Op::Persistence { secs, prefix }),
        1 => Just(Op::NoPersistence),
        1 => (0u32..100, 0u32..100).prop_map(|(tcp, udp)| Op::Timeouts { tcp, udp }),
        1 => Just(Op::Zero),
    ]
}

struct World {
    d: Director,
    services: Vec<ServiceId>,
    /// Each service's real servers, by address index.
    reals: [[Option<RealId>; 3]; 2],
}

fn world(conn_reuse_mode: u8, expire_nodest_conn: bool) -> World {
    let mut config = Config::new(mac(DIRECTOR_MAC), [9, 8, 7, 6]);
    config.capacity = CAPACITY;
    config.conn_reuse_mode = conn_reuse_mode;
    config.expire_nodest_conn = expire_nodest_conn;
    config.fragment_capacity = 8;
    let mut d = Director::new(config).unwrap();
    let mut services = Vec::new();
    let mut reals = [[None; 3]; 2];
    for (s, (proto, port)) in [(Protocol::Tcp, 80), (Protocol::Udp, 53)].into_iter().enumerate() {
        let svc = d.add_service(ServiceConfig::new(proto, ip(VIP), port, SchedulerKind::Wlc));
        services.push(svc.unwrap());
        for (i, m) in REAL_MACS.iter().take(3).enumerate() {
            let config = RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_mac(mac(*m));
            reals[s][i] = Some(d.add_real(services[s], config).unwrap());
        }
    }
    World { d, services, reals }
}

impl World {
    fn apply(&mut self, op: &Op, now: &mut u64) {
        let at = Instant::from_millis(*now);
        let client = |host: u8| format!("192.0.2.{}", 10 + host);
        let d = &mut self.d;
        match *op {
            Op::Frame { host, port, udp, flags } => {
                let mut frame = if udp {
                    udp4(&client(host), 1000 + port, VIP, 53, b"q")
                } else {
                    tcp4(&client(host), 1000 + port, VIP, 80, flags)
                };
                let _ = d.process(at, &mut frame);
            }
            Op::Fragmented { host, port } => {
                for mut f in udp4_fragments(&client(host), 1000 + port, VIP, 53, &[1; 64], port, 40)
                {
                    let _ = d.process(at, &mut f);
                }
            }
            Op::IcmpError { host, port } => {
                let reply = tcp4(VIP, 80, &client(host), 1000 + port, ACK);
                let _ = d
                    .process(at, &mut icmp4_error("192.0.2.1", VIP, 3, 4, &datagram(&reply)[..28]));
            }
            Op::Wait { ms, timers } => {
                *now += ms;
                if timers {
                    d.handle_timeout(Instant::from_millis(*now));
                }
            }
            Op::Weight { real, weight } => {
                for s in 0..2 {
                    if let Some(id) = self.reals[s][real] {
                        let edit = RealEdit::of(d.real(id).unwrap()).with_weight(weight);
                        d.edit_real(id, edit).unwrap();
                    }
                }
            }
            Op::Thresholds { real, upper } => {
                for s in 0..2 {
                    if let Some(id) = self.reals[s][real] {
                        let edit = RealEdit::of(d.real(id).unwrap()).with_thresholds(upper, 0);
                        d.edit_real(id, edit).unwrap();
                    }
                }
            }
            Op::Remove { real } => {
                for s in 0..2 {
                    if let Some(id) = self.reals[s][real].take() {
                        d.remove_real(id).unwrap();
                    }
                }
            }
            Op::AddBack { real } => {
                for s in 0..2 {
                    if self.reals[s][real].is_none() {
                        let config = RealConfig::new(ip(&format!("10.0.0.{}", 11 + real)))
                            .with_mac(mac(REAL_MACS[real]));
                        self.reals[s][real] = Some(d.add_real(self.services[s], config).unwrap());
                    }
                }
            }
            Op::Persistence { secs, prefix } => {
                for &s in &self.services {
                    let p = Persistence::new(secs).with_prefix_len(prefix);
                    d.set_persistence(s, Some(p)).unwrap();
                }
            }
            Op::NoPersistence => {
                for &s in &self.services {
                    d.set_persistence(s, None).unwrap();
                }
            }
            Op::Timeouts { tcp, udp } => {
                d.set_timeouts(TimeoutSettings { tcp, tcpfin: tcp, udp }).unwrap();
            }
            Op::Zero => d.zero_stats(),
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let d = &self.d;
        prop_assert!(d.connection_count() <= CAPACITY);
        prop_assert_eq!(d.connections().count(), d.connection_count());
        let mut controlled = std::collections::HashMap::new();
        for c in d.connections() {
            if let ConnKind::Connection { persistent: true } = c.kind {
                *controlled.entry((c.key.protocol, c.real)).or_insert(0u32) += 1;
            }
        }
        // Every real server ever added, removed ones included: their connections live on.
        for (id, r) in d.reals() {
            let entries: Vec<_> = d.connections().filter(|c| c.real == id).collect();
            let conns = entries.iter().filter(|c| matches!(c.kind, ConnKind::Connection { .. }));
            let templates = entries.iter().filter(|c| matches!(c.kind, ConnKind::Template { .. }));
            let (conns, templates): (Vec<_>, Vec<_>) = (conns.collect(), templates.collect());
            prop_assert_eq!(r.active_conns() + r.inactive_conns(), conns.len() as u32, "{:?}", id);
            let active = conns.iter().filter(|c| c.state.is_active()).count() as u32;
            prop_assert_eq!(r.active_conns(), active, "{:?}", id);
            prop_assert_eq!(r.persistent_conns(), templates.len() as u32, "{:?}", id);
        }
        // A template's count of controlled connections is the number that point at it.
        let total_controlled: u32 = d
            .connections()
            .filter_map(|c| match c.kind {
                ConnKind::Template { controlled, .. } => Some(controlled),
                ConnKind::Connection { .. } => None,
            })
            .sum();
        prop_assert_eq!(total_controlled, controlled.values().sum::<u32>());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn counts_always_match_the_table(
        ops in prop::collection::vec(op(), 1..150),
        conn_reuse_mode in 0u8..4,
        expire_nodest_conn in any::<bool>(),
    ) {
        let mut w = world(conn_reuse_mode, expire_nodest_conn);
        let mut now = 1_000;
        for op in &ops {
            w.apply(op, &mut now);
            w.check()?;
        }
        // And at the end of time everything has gone.
        w.d.handle_timeout(Instant::from_millis(now + 100_000_000));
        prop_assert_eq!(w.d.connection_count(), 0);
        w.check()?;
    }
}

/// Found by the property test: a template whose connections all expire in the same late
/// call to handle_timeout is gone after it, whatever order the wheel hands them over in.
#[test]
fn regression_template_and_connections_expiring_in_one_late_call() {
    let mut w = world(0, false);
    let mut now = 1_000;
    for op in [
        Op::Timeouts { tcp: 0, udp: 96 },
        Op::Persistence { secs: 87, prefix: 24 },
        Op::Frame { host: 0, port: 0, udp: true, flags: SYN },
        Op::Wait { ms: 14_296, timers: true },
        Op::Frame { host: 0, port: 1, udp: true, flags: SYN },
    ] {
        w.apply(&op, &mut now);
        w.check().unwrap();
    }
    w.d.handle_timeout(Instant::from_millis(now + 100_000_000));
    assert_eq!(w.d.connection_count(), 0);
}
