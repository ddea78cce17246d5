//! The sync receiver on arbitrary datagrams. A backup director (`both`, waiting for the
//! answers to its resync request, with services, real
//! servers and entries of its own, copied for each input with `clone_from`) imports the
//! input whole and cut into two datagrams at its first byte; it must never panic, and after
//! every datagram each real server's active + inactive counts equal its live connections,
//! its persistent count its templates, and every entry is bound to a real server that is
//! still in its service. A master imports the same bytes too (it takes only resync
//! requests) and every message it then sends reads back as version 1, each record
//! decoding to a record that encodes to the same bytes.

#![no_main]

use dr_core::sync::wire::{self, SyncRecord};
use dr_core::sync::{SyncConfig, SyncMode};
use dr_core::{
    ConnKind, Director, Instant, MacAddr, Persistence, Protocol, RealConfig, SchedulerKind,
    ServiceConfig,
};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

fn built(mode: SyncMode) -> Director {
    let mut config = dr_core::Config::new(MacAddr([2, 0, 0, 0, 0, 1]), [1, 2, 3, 4]);
    config.capacity = 64;
    let mut d = Director::new(config).unwrap();
    for (proto, vip, port, persistent) in [
        (Protocol::Tcp, "10.0.0.100", 80, false),
        (Protocol::Tcp, "10.0.0.100", 443, true),
        (Protocol::Udp, "10.0.0.100", 0, true),
        (Protocol::Tcp, "2001:db8::100", 80, false),
    ] {
        let mut service = ServiceConfig::new(proto, vip.parse().unwrap(), port, SchedulerKind::Rr);
        if persistent {
            service = service.with_persistence(Persistence::new(60));
        }
        let svc = d.add_service(service).unwrap();
        let reals: &[&str] = if vip.contains(':') {
            &["2001:db8::11", "2001:db8::12"]
        } else {
            &["10.0.0.11", "10.0.0.12"]
        };
        for (i, real) in reals.iter().enumerate() {
            let mac = MacAddr([2, 0, 0, 0, 0, 0x11 + i as u8]);
            d.add_real(svc, RealConfig::new(real.parse().unwrap()).with_mac(mac)).unwrap();
        }
    }
    let mut config = SyncConfig::new(mode);
    config.queue = 8;
    config.origin = 7;
    d.start_sync(config).unwrap();
    if mode.is_backup() {
        d.await_resync(Instant::from_secs(9));
    }
    d
}

thread_local! {
    static BUILT: (Director, Director) = (built(SyncMode::Both), built(SyncMode::Master));
    static COPIES: RefCell<Option<(Director, Director)>> = const { RefCell::new(None) };
}

fn check(d: &Director) {
    let mut counted = 0usize;
    for (_, real) in d.reals() {
        counted += (real.active_conns() + real.inactive_conns() + real.persistent_conns()) as usize;
    }
    assert_eq!(counted, d.connection_count());
    let templates = d.connections().filter(|c| matches!(c.kind, ConnKind::Template { .. })).count();
    assert_eq!(templates, d.template_count());
    for c in d.connections() {
        assert!(d.real(c.real).is_some_and(|r| r.is_available()), "{c:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    BUILT.with(|(backup, master)| {
        COPIES.with(|copies| {
            let mut copies = copies.borrow_mut();
            let (b, m) = copies.get_or_insert_with(|| (backup.clone(), master.clone()));
            b.clone_from(backup);
            m.clone_from(master);
            let now = Instant::from_secs(10);
            let _ = b.import_sync(now, data);
            check(b);
            if let Some((&cut, rest)) = data.split_first() {
                let cut = usize::from(cut).min(rest.len());
                let _ = b.import_sync(now, &rest[..cut]);
                let _ = b.import_sync(now, &rest[cut..]);
                check(b);
            }
            // Whatever the marks said, the wait is over at its bound.
            let wait = b.sync_config().unwrap().resync_wait.as_secs();
            let status = b.resync_status(Instant::from_secs(9 + wait)).unwrap();
            assert!(status.phase.is_over());
            assert!(status.peers_ended <= status.peers);
            b.handle_timeout(Instant::from_secs(100_000));
            check(b);
            let _ = m.import_sync(now, data);
            let mut out = [0u8; 128];
            while let Some(message) = m.poll_sync(now) {
                let parsed = wire::parse(message).unwrap();
                assert_eq!(parsed.version, 1);
                for entry in parsed.records() {
                    let record: SyncRecord = entry.unwrap().record;
                    let len = record.encode(&mut out).unwrap();
                    let again = wire::parse(message).unwrap();
                    assert!(again.records().any(|e| e.unwrap().record == record));
                    assert!(len == wire::V4_RECORD_LEN || len == wire::V6_RECORD_LEN);
                }
            }
        });
    });
});
