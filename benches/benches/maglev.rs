//! Building an `mh` (Maglev) lookup table: M = 65521 slots for 1000 real servers, rebuilt
//! as an `ipvsadm -e` weight change rebuilds it, next to the naive build of the same table
//! (`dr_benches::naive_maglev`). The Maglev paper (Eisenbud et al., NSDI 2016, §5.3) reports
//! 1.8 ms for M = 65537 and 1000 backends. Run with
//! `cargo bench -p dr-benches --bench maglev`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dr_benches::{DIRECTOR_MAC, VIP, naive_maglev};
use dr_core::{
    Config, Director, MacAddr, Protocol, RealConfig, RealEdit, RealId, SchedulerKind, ServiceConfig,
};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("mh_build");
    group.sample_size(20);
    for (m, servers) in [(65_521u32, 1000usize), (4093, 100)] {
        let mut config = Config::new(MacAddr(DIRECTOR_MAC), [9, 8, 7, 6]);
        config.capacity = 1024;
        config.mh_table_size = m;
        let mut d = Director::new(config).expect("valid configuration");
        let s = d
            .add_service(ServiceConfig::new(Protocol::Tcp, IpAddr::V4(VIP), 80, SchedulerKind::Mh))
            .expect("new service");
        let mut ids: Vec<RealId> = Vec::new();
        let mut naive = Vec::new();
        for r in 0..servers {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a01_0001 + r as u32));
            let mac = MacAddr([0x02, 0, 0, 1, (r >> 8) as u8, r as u8]);
            let real = RealConfig::new(addr).with_mac(mac);
            ids.push(d.add_real(s, real).expect("new real"));
            naive.push((addr, 1));
        }
        // Every edit rebuilds the whole table; 1 and 2 alternate so that each one changes.
        let mut weight = 1;
        let id = BenchmarkId::new(format!("dr-{servers}"), m);
        group.bench_function(id, |b| {
            b.iter(|| {
                weight = 3 - weight;
                let edit = RealEdit::of(d.real(ids[0]).expect("real")).with_weight(weight);
                d.edit_real(ids[0], black_box(edit)).expect("edit");
            });
        });
        group.bench_function(BenchmarkId::new(format!("baseline-{servers}"), m), |b| {
            b.iter(|| black_box(naive_maglev(u64::from(m), black_box(&naive))));
        });
    }
    group.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
