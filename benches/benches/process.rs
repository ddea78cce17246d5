//! `Director::process` on established flows, next to the naive baseline, at several table
//! sizes. Frames come from a contiguous ring in arrival order; the flows in it are shuffled,
//! so table lookups hit random entries. Run with `cargo bench -p dr-benches --bench process`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dr_benches::{Baseline, Burst, Ring, established, restore_macs};
use dr_core::Instant;
use std::hint::black_box;

fn established_flows(c: &mut Criterion) {
    let mut group = c.benchmark_group("process/established");
    group.throughput(Throughput::Elements(1));
    for flows in [1_000, 100_000] {
        let (mut director, frames) = established(flows, 4);
        let mut ring = Ring::new(&frames);
        let now = Instant::from_secs(2);
        group.bench_function(BenchmarkId::new("dr", flows), |b| {
            b.iter(|| {
                let frame = ring.next_frame();
                restore_macs(frame);
                black_box(director.process(now, black_box(frame)))
            });
        });
        let mut burst = Burst::new(&frames);
        group.bench_function(BenchmarkId::new("dr-burst", flows), |b| {
            b.iter_custom(|iters| {
                burst.run(iters, |frames, verdicts| {
                    black_box(director.process_burst(now, frames, verdicts));
                })
            });
        });
        let mut baseline = Baseline::established(4, &frames);
        let mut ring = Ring::new(&frames);
        group.bench_function(BenchmarkId::new("baseline", flows), |b| {
            b.iter(|| {
                let frame = ring.next_frame();
                restore_macs(frame);
                black_box(baseline.process(black_box(frame)))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, established_flows);
criterion_main!(benches);
