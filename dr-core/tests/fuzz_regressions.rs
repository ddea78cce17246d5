//! Inputs the fuzz targets (`fuzz/`) found, replayed through the public API.

mod support;

use dr_core::{Instant, Protocol, RealConfig, SchedulerKind, ServiceConfig};
use support::*;

/// `director` target, input `e5 0a e5 32` (conn_reuse_mode 1, decrement_ttl, no
/// operations): the clock starts at the end-of-time check 10 000 s in, then
/// `handle_timeout(Instant::MAX)`. The next estimator sample saturated at `Instant::MAX`,
/// was due again at once, and `handle_timeout` never returned.
#[test]
fn handle_timeout_at_the_end_of_time_returns() {
    let mut d = director(16);
    let svc = d
        .add_service(ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, SchedulerKind::Rr))
        .unwrap();
    d.add_real(svc, RealConfig::new(ip("10.0.0.11")).with_mac(mac(REAL_MACS[0]))).unwrap();
    d.handle_timeout(Instant::from_secs(10_001));
    d.handle_timeout(Instant::MAX);
    assert_eq!(d.poll_timeout(), Some(Instant::MAX));
    // Again at the end of time: one sample, and back.
    d.handle_timeout(Instant::MAX);
    assert_eq!(d.connection_count(), 0);
}
