//! Connection table lookups, hit and miss, at 1k, 100k and 1M entries, next to the
//! baseline's `std` `HashMap` with SipHash. Keys are looked up in a shuffled order, so
//! lookups land on random entries. Run with `cargo bench -p dr-benches --bench table`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dr_benches::{Baseline, established, flow_key, shuffled, tuple};
use std::hint::black_box;

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(1));
    for entries in [1_000, 100_000, 1_000_000] {
        let (director, frames) = established(entries, 4);
        let baseline = Baseline::established(4, &frames);
        drop(frames);
        let order = shuffled((0..entries).collect::<Vec<_>>());
        // Flows beyond `entries` were never opened: every lookup of them misses.
        for (name, offset) in [("hit", 0), ("miss", entries)] {
            let keys: Vec<_> = order.iter().map(|&i| flow_key(offset + i)).collect();
            let mut at = 0;
            group.bench_function(BenchmarkId::new(format!("dr-{name}"), entries), |b| {
                b.iter(|| {
                    at = (at + 1) % keys.len();
                    black_box(director.connection(black_box(&keys[at])).is_some())
                });
            });
            let tuples: Vec<_> = order.iter().map(|&i| tuple(offset + i)).collect();
            group.bench_function(BenchmarkId::new(format!("baseline-{name}"), entries), |b| {
                b.iter(|| {
                    at = (at + 1) % tuples.len();
                    black_box(baseline.lookup(black_box(&tuples[at])).is_some())
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
