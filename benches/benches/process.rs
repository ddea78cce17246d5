//! `Director::process` and `Director::process_burst`, next to the naive baseline:
//!
//! - on established flows at several table sizes: frames come from a contiguous ring in
//!   arrival order, one data segment per flow, shuffled, so lookups hit random entries;
//! - on new connections: SYNs of flows that come round only after their entries expired,
//!   so every frame schedules, inserts and (later) expires a connection;
//! - on UDP datagrams to a service with one-packet scheduling (`ops`: each datagram
//!   scheduled on its own, no entry), next to the same datagrams to a service without it
//!   (each flow's entry found).
//!
//! Run with `cargo bench -p dr-benches --bench process`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dr_benches::{
    BURST, Baseline, Burst, Ring, established, new_connections, restore_macs, udp_flows,
};
use dr_core::Instant;
use std::hint::black_box;

fn established_flows(c: &mut Criterion) {
    let mut group = c.benchmark_group("process/established");
    group.throughput(Throughput::Elements(1));
    for flows in [1_000, 10_000, 100_000, 1_000_000] {
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
        drop((director, burst, ring));
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

/// Asserts that every SYN the director forwarded opened a connection: the workload measures
/// new connections, not lookups of live ones.
fn all_new(director: &dr_core::Director) {
    let counters = director.counters();
    assert_eq!(counters.conns_created(), counters.forwarded());
}

fn new_flows(c: &mut Criterion) {
    const FLOWS: usize = 1 << 17;
    let mut group = c.benchmark_group("process/new");
    group.throughput(Throughput::Elements(1));
    // One new flow per millisecond of the director's clock.
    let step = dr_core::Duration::from_millis(1);
    let (mut director, frames) = new_connections(FLOWS, 4);
    let mut ring = Ring::new(&frames);
    let mut now = Instant::from_secs(1);
    group.bench_function(BenchmarkId::new("dr", 60_000), |b| {
        b.iter(|| {
            now = now.saturating_add(step);
            if director.poll_timeout().is_some_and(|due| due <= now) {
                director.handle_timeout(now);
            }
            let frame = ring.next_frame();
            restore_macs(frame);
            black_box(director.process(now, black_box(frame)))
        });
    });
    all_new(&director);
    let (mut director, _) = new_connections(FLOWS, 4);
    let mut burst = Burst::new(&frames);
    let mut now = Instant::from_secs(1);
    let burst_step = dr_core::Duration::from_millis(BURST as u64);
    group.bench_function(BenchmarkId::new("dr-burst", 60_000), |b| {
        b.iter_custom(|iters| {
            burst.run(iters, |frames, verdicts| {
                now = now.saturating_add(burst_step);
                if director.poll_timeout().is_some_and(|due| due <= now) {
                    director.handle_timeout(now);
                }
                black_box(director.process_burst(now, frames, verdicts));
            })
        });
    });
    all_new(&director);
    let mut baseline = Baseline::with_window(4, 60_000);
    let mut ring = Ring::new(&frames);
    group.bench_function(BenchmarkId::new("baseline", 60_000), |b| {
        b.iter(|| {
            let frame = ring.next_frame();
            restore_macs(frame);
            black_box(baseline.process(black_box(frame)))
        });
    });
    group.finish();
}

fn one_packet(c: &mut Criterion) {
    let mut group = c.benchmark_group("process/one-packet");
    group.throughput(Throughput::Elements(1));
    let now = Instant::from_secs(2);
    for (name, ops) in [("dr-ops", true), ("dr-entries", false)] {
        let (mut director, frames) = udp_flows(10_000, 4, ops);
        let mut ring = Ring::new(&frames);
        group.bench_function(BenchmarkId::new(name, 10_000), |b| {
            b.iter(|| {
                let frame = ring.next_frame();
                restore_macs(frame);
                black_box(director.process(now, black_box(frame)))
            });
        });
        // ops leaves no entry, whatever came; without, each flow kept its own.
        assert_eq!(director.connection_count(), if ops { 0 } else { 10_000 });
    }
    group.finish();
}

criterion_group!(benches, established_flows, new_flows, one_packet);
criterion_main!(benches);
