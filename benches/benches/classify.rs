//! The frame classifier on a realistic mix of frames (IPv4 and IPv6 TCP, UDP, VLAN tags, ARP,
//! ICMP, fragments), next to the baseline's full parse into owned header structs
//! (etherparse's `PacketHeaders`). Run with `cargo bench -p dr-benches --bench classify`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dr_benches::{Ring, frame_mix};
use dr_core::wire::classify;
use etherparse::PacketHeaders;
use std::hint::black_box;

fn classifier(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(1));
    let frames = frame_mix(4096);
    let mut ring = Ring::new(&frames);
    group.bench_function(BenchmarkId::new("dr", "mix"), |b| {
        b.iter(|| black_box(classify(black_box(ring.next_frame())).is_ok()));
    });
    let mut ring = Ring::new(&frames);
    group.bench_function(BenchmarkId::new("baseline", "mix"), |b| {
        b.iter(|| {
            black_box(PacketHeaders::from_ethernet_slice(black_box(ring.next_frame())).is_ok())
        });
    });
    group.finish();
}

criterion_group!(benches, classifier);
criterion_main!(benches);
