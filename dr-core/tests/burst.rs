//! `process_burst` decides exactly as `process` frame by frame: the same verdicts, the same
//! bytes out, the same counters, connections and statistics, whatever the frames (including
//! bursts where one frame opens, closes or evicts the connection a later one belongs to).

mod support;

use dr_core::{
    BURST, Director, DropReason, Instant, ListingFormat, Persistence, Protocol, RealConfig,
    SchedulerKind, ServiceConfig, Verdict,
};
use proptest::prelude::*;
use support::*;

const VIP: &str = "10.0.0.100";

/// A small table (so bursts evict and fill it) with TCP and UDP services, one persistent.
fn director() -> Director {
    let mut d = support::director(12);
    let web =
        d.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 80, SchedulerKind::Wrr)).unwrap();
    let dns = d
        .add_service(
            ServiceConfig::new(Protocol::Udp, ip(VIP), 53, SchedulerKind::Lc)
                .with_persistence(Persistence::new(5)),
        )
        .unwrap();
    let web6 = d
        .add_service(ServiceConfig::new(Protocol::Tcp, ip("2001:db8::100"), 80, SchedulerKind::Rr))
        .unwrap();
    for (i, m) in REAL_MACS.iter().take(3).enumerate() {
        let real = RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_weight(i as u32 + 1);
        d.add_real(web, real.with_mac(mac(*m))).unwrap();
        d.add_real(dns, RealConfig::new(ip(&format!("10.0.0.{}", 11 + i))).with_mac(mac(*m)))
            .unwrap();
    }
    d.add_real(web6, RealConfig::new(ip("2001:db8::11")).with_mac(mac(REAL_MACS[3]))).unwrap();
    d
}

#[derive(Clone, Debug)]
enum Frame {
    Tcp {
        host: u8,
        port: u16,
        flags: u8,
    },
    Tcp6 {
        port: u16,
        flags: u8,
    },
    Udp {
        host: u8,
        port: u16,
    },
    Fragmented {
        host: u8,
        port: u16,
    },
    Garbage(Vec<u8>),
    Arp,
    /// A TCP frame with one byte changed: a bad checksum, a wrong length, a foreign MAC.
    Mangled {
        port: u16,
        at: usize,
        byte: u8,
    },
}

fn frame() -> impl Strategy<Value = Frame> {
    let flags = prop::sample::select(vec![SYN, ACK, ACK | PSH, FIN | ACK, RST]);
    prop_oneof![
        6 => (0u8..4, 0u16..6, flags.clone())
            .prop_map(|(host, port, flags)| Frame::Tcp { host, port, flags }),
        2 => (0u16..4, flags).prop_map(|(port, flags)| Frame::Tcp6 { port, flags }),
        3 => (0u8..4, 0u16..6).prop_map(|(host, port)| Frame::Udp { host, port }),
        1 => (0u8..4, 0u16..6).prop_map(|(host, port)| Frame::Fragmented { host, port }),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Frame::Garbage),
        1 => Just(Frame::Arp),
        1 => (0u16..6, 0usize..54, any::<u8>())
            .prop_map(|(port, at, byte)| Frame::Mangled { port, at, byte }),
    ]
}

fn build(frame: &Frame) -> Vec<Vec<u8>> {
    let client = |host: u8| format!("192.0.2.{}", host + 1);
    match frame {
        Frame::Tcp { host, port, flags } => {
            vec![tcp4(&client(*host), 1000 + port, VIP, 80, *flags)]
        }
        Frame::Tcp6 { port, flags } => {
            vec![tcp6("2001:db8:1::7", 1000 + port, "2001:db8::100", 80, *flags)]
        }
        Frame::Udp { host, port } => vec![udp4(&client(*host), 2000 + port, VIP, 53, b"query")],
        Frame::Fragmented { host, port } => {
            udp4_fragments(&client(*host), 2000 + port, VIP, 53, &[7; 60], *port, 32)
        }
        Frame::Garbage(bytes) => vec![bytes.clone()],
        Frame::Arp => vec![arp_request(VIP)],
        Frame::Mangled { port, at, byte } => {
            let mut f = tcp4("192.0.2.9", 3000 + port, VIP, 80, SYN);
            f[*at] = *byte;
            vec![f]
        }
    }
}

/// Everything observable about a director at `now`.
fn state(d: &Director, now: Instant) -> (dr_core::Counters, String, String) {
    (
        d.counters().clone(),
        d.listing(ListingFormat::Stats).to_string(),
        d.connection_listing(now).to_string(),
    )
}

proptest! {
    #[test]
    fn a_burst_decides_as_frame_by_frame(
        rounds in prop::collection::vec(
            (prop::collection::vec(frame(), 0..3 * BURST), 0u64..20_000, any::<bool>()),
            1..6,
        )
    ) {
        let (mut one, mut burst) = (director(), director());
        let mut now = 1_000u64;
        for (frames, wait_ms, timers) in rounds {
            now += wait_ms;
            let at = Instant::from_millis(now);
            if timers {
                one.handle_timeout(at);
                burst.handle_timeout(at);
            }
            let built: Vec<Vec<u8>> = frames.iter().flat_map(build).collect();
            let mut a = built.clone();
            let expected: Vec<Verdict> = a.iter_mut().map(|f| one.process(at, f)).collect();
            let mut b = built;
            let mut verdicts = vec![Verdict::Drop(DropReason::MalformedEthernet); b.len()];
            prop_assert_eq!(burst.process_burst(at, &mut b, &mut verdicts), b.len());
            prop_assert_eq!(&verdicts, &expected);
            prop_assert_eq!(&b, &a, "the frames as sent");
            // An empty burst still brings the table up to `at`; no frame does.
            one.handle_timeout(at);
            burst.handle_timeout(at);
            prop_assert_eq!(state(&burst, at), state(&one, at));
        }
    }
}

#[test]
fn frames_beyond_the_verdicts_are_left_alone() {
    let mut d = director();
    let original: Vec<Vec<u8>> =
        (0..5).map(|p| tcp4("192.0.2.1", 1000 + p, VIP, 80, SYN)).collect();
    let mut frames = original.clone();
    let mut verdicts = [Verdict::Drop(DropReason::MalformedEthernet); 3];
    assert_eq!(d.process_burst(Instant::from_secs(1), &mut frames, &mut verdicts), 3);
    assert!(verdicts.iter().all(|v| v.is_transmit()), "{verdicts:?}");
    assert_eq!(frames[3..], original[3..]);
    assert_ne!(frames[..3], original[..3]);
    assert_eq!(d.counters().conns_created(), 3);
    let mut none: [&mut [u8]; 0] = [];
    assert_eq!(d.process_burst(Instant::from_secs(1), &mut none, &mut verdicts), 0);
}
