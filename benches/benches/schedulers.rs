//! Each scheduler picking a real server among 4, 64 and 1024, with connection counts spread
//! over the servers (so lc/wlc/sed/nq compare real numbers), next to the naive scheduler for
//! the same rule (`dr_benches::NaiveScheduler`). Run with
//! `cargo bench -p dr-benches --bench schedulers`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dr_benches::{DIRECTOR_MAC, NaiveReal, NaiveScheduler, VIP, flow_key};
use dr_core::{
    Config, Director, FlowKey, Instant, MacAddr, Protocol, RealConfig, SchedFlags, SchedulerKind,
    ServiceConfig, ServiceId,
};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

fn director(kind: SchedulerKind, reals: usize) -> (Director, ServiceId) {
    let mut config = Config::new(MacAddr(DIRECTOR_MAC), [9, 8, 7, 6]);
    config.capacity = 1 << 16;
    let mut d = Director::new(config).expect("valid configuration");
    let flags = SchedFlags {
        sh_port: true,
        sh_fallback: true,
        mh_port: true,
        mh_fallback: true,
        flag_3: false,
    };
    let s = d
        .add_service(ServiceConfig::new(Protocol::Tcp, IpAddr::V4(VIP), 80, kind).with_flags(flags))
        .expect("new service");
    for r in 0..reals {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0100 + r as u32));
        let mac = MacAddr([0x02, 0, 0, 1, (r >> 8) as u8, r as u8]);
        let weight = 1 + (r as u32 % 5);
        d.add_real(s, RealConfig::new(addr).with_weight(weight).with_mac(mac)).expect("new real");
    }
    // Spread connections over the servers through the packet path, so the counts are real.
    for i in 0..(8 * reals).min(60_000) {
        let _ = d.process(Instant::from_secs(1), &mut dr_benches::tcp_frame(i, true, b""));
    }
    (d, s)
}

fn schedulers(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    group.throughput(Throughput::Elements(1));
    for &kind in SchedulerKind::ALL {
        for reals in [4, 64, 1024] {
            let (mut d, s) = director(kind, reals);
            let flows: Vec<FlowKey> = (0..1024).map(|i| flow_key(100_000 + i)).collect();
            let mut i = 0;
            group.bench_function(BenchmarkId::new(kind.name(), reals), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    black_box(d.schedule(s, black_box(&flows[i])))
                });
            });
            // The same servers, weights and connection counts, kept the naive way.
            let naive = d
                .reals()
                .map(|(_, r)| NaiveReal {
                    addr: r.addr(),
                    weight: r.weight(),
                    active: r.active_conns(),
                    inactive: r.inactive_conns(),
                })
                .collect();
            let mut naive = NaiveScheduler::new(kind, naive);
            group.bench_function(
                BenchmarkId::new(format!("baseline-{}", kind.name()), reals),
                |b| {
                    b.iter(|| {
                        i = (i + 1) & 1023;
                        black_box(naive.pick(black_box(flows[i].client)))
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, schedulers);
criterion_main!(benches);
