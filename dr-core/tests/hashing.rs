//! Seeded hashing (HashDoS): every table a client's packets can steer is keyed by the seed
//! the director is built with, so which flows collide cannot be worked out in advance.

mod support;

use dr_core::{Config, Director, Instant, Protocol, RealConfig, SchedulerKind, ServiceConfig};
use support::*;

const VIP: &str = "10.0.0.100";

/// The order the connection table holds 200 flows in, for a given seed.
fn table_order(seed: [u64; 4]) -> Vec<u16> {
    let mut config = Config::new(mac(DIRECTOR_MAC), seed);
    config.capacity = 1024;
    let mut d = Director::new(config).unwrap();
    let svc =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Rr)).unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    for port in 0..200 {
        let _ = d.process(Instant::from_secs(1), &mut tcp4("192.0.2.7", port, VIP, 80, SYN));
    }
    d.connections().map(|c| c.key.client_port).collect()
}

#[test]
fn the_seed_decides_where_flows_land() {
    let a = table_order([1, 2, 3, 4]);
    assert_eq!(a.len(), 200);
    // The same seed: the same layout, so replays are reproducible.
    assert_eq!(a, table_order([1, 2, 3, 4]));
    // Any other seed: another layout. Flows that share a bucket under one seed do not under
    // the next, so colliding 5-tuples cannot be precomputed.
    for seed in [[1, 2, 3, 5], [5, 6, 7, 8], [u64::MAX, 0, 0, 0]] {
        assert_ne!(a, table_order(seed), "seed {seed:?}");
    }
}
