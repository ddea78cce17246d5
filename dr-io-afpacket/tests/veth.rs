//! The backend on a real veth pair (needs root, as CI runs): frames sent on one end arrive
//! in the other end's ring, are rewritten in place and sent back, and the BPF filter keeps
//! out what the director does not need.

use dr_core::{FrameIo, Instant, RealId, Verdict};
use dr_io_afpacket::{AfPacket, AfPacketConfig, Error, RxRing};
use std::process::Command;
use std::time::{Duration, Instant as Clock};

/// A veth pair in the root namespace, deleted when dropped (even when a test fails).
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    fn new(tag: &str) -> Option<Self> {
        let (a, b) = (format!("drt{tag}a"), format!("drt{tag}b"));
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        if !ok(&["link", "add", &a, "type", "veth", "peer", "name", &b]) {
            return None;
        }
        let veth = Self { a, b };
        for end in [&veth.a, &veth.b] {
            // No IPv6 on the test ends: no router or neighbour chatter, nor the multicast
            // listener reports sent a while after the link comes up, in the rings.
            let _ = ok(&["link", "set", end, "addrgenmode", "none"]);
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6"), "1");
            assert!(ok(&["link", "set", end, "up"]), "ip link set {end} up");
        }
        Some(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).output();
    }
}

/// Whether this process runs as root (`id -u` is 0).
fn root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// Root is needed. A build that is not root's compiles these tests ignored (see build.rs);
/// run all the same (`--include-ignored`), they skip, saying so; under CI they fail.
fn privileged() -> bool {
    let root = root();
    if !root {
        assert!(std::env::var_os("CI").is_none(), "CI must run the AF_PACKET tests as root");
        eprintln!("skipped: the AF_PACKET tests need root (CAP_NET_RAW and CAP_NET_ADMIN)");
    }
    root
}

fn udp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], dst: [u8; 4], tag: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 29, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 7];
    ip.extend_from_slice(&dst);
    let sum = !ip.chunks(2).fold(0u32, |a, w| {
        let s = a + u32::from(u16::from_be_bytes([w[0], w[1]]));
        (s & 0xffff) + (s >> 16)
    }) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 9, 0, 0, tag]);
    f.resize(60, 0);
    f
}

/// Runs `io`'s batches until `done` or two seconds pass.
fn pump(
    io: &mut AfPacket,
    mut handler: impl FnMut(&mut [u8]) -> Verdict,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Clock::now() + Duration::from_secs(2);
    while !done() && Clock::now() < deadline {
        io.process_batch(|_, frame| handler(frame)).unwrap();
    }
}

/// The tags of the first `count` IPv4 frames that come back to `peer` (within two seconds).
fn returned_tags(peer: &mut AfPacket, count: usize) -> Vec<u8> {
    let back = std::cell::RefCell::new(Vec::new());
    pump(
        peer,
        |frame| {
            if frame.len() > 42 && frame[12..14] == [0x08, 0x00] {
                back.borrow_mut().push(frame[42]);
            }
            Verdict::Drop(dr_core::DropReason::OtherHost)
        },
        || back.borrow().len() >= count,
    );
    back.into_inner()
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn frames_go_round_a_veth_pair_through_the_ring() {
    if !privileged() {
        return;
    }
    // Each way of handing frames over: slot by slot, slot by slot after a spin, by blocks.
    let rings = [(RxRing::Frames, 0), (RxRing::Frames, 200), (RxRing::Blocks { timeout_ms: 1 }, 0)];
    for (i, (ring, spin)) in rings.into_iter().enumerate() {
        go_round(&format!("1{i}"), ring, spin);
    }
}

fn go_round(tag: &str, ring: RxRing, busy_poll_us: u32) {
    let veth = Veth::new(tag).expect("ip link add veth");
    let vip = [10, 0, 0, 100];
    let config = AfPacketConfig::new(&veth.a)
        .with_vips(vec!["10.0.0.100".parse().unwrap()])
        .with_ring(ring)
        .with_busy_poll(busy_poll_us);
    let mut director = AfPacket::open(&config).unwrap();
    let mut peer = AfPacket::open(&AfPacketConfig::new(&veth.b)).unwrap();
    let (dmac, pmac) = (director.mac().0, peer.mac().0);

    // To the VIP: seen, rewritten in place (a new destination MAC) and sent back.
    for tag in 0..20 {
        peer.send(Instant::ZERO, &udp_frame(dmac, pmac, vip, tag)).unwrap();
    }
    // Not to the VIP: the filter keeps it out of the ring.
    peer.send(Instant::ZERO, &udp_frame(dmac, pmac, [10, 0, 0, 2], 99)).unwrap();

    // Room reserved up front: the handler's record of what it saw allocates nothing, so the
    // count below is the backend's own.
    let seen = std::cell::RefCell::new(Vec::with_capacity(64));
    let counted = allocation_counter::measure(|| {
        pump(
            &mut director,
            |frame| {
                seen.borrow_mut().push(frame[42]);
                frame[0..6].copy_from_slice(&pmac);
                frame[6..12].copy_from_slice(&dmac);
                frame[42] += 100;
                Verdict::Forward { real: RealId::from_index(0) }
            },
            || seen.borrow().len() >= 20,
        );
    });
    assert_eq!(counted.count_total, 0, "the ring is processed and sent without allocating");
    assert_eq!(
        seen.into_inner(),
        (0..20).collect::<Vec<u8>>(),
        "every frame to the VIP, in order, and no other"
    );

    assert_eq!(
        returned_tags(&mut peer, 20),
        (100..120).collect::<Vec<u8>>(),
        "the rewritten frames came back"
    );
    assert_eq!(director.truncated(), 0);
    let stats = director.ring_stats().unwrap();
    assert_eq!((stats.received, stats.dropped, stats.freezes), (20, 0, 0), "{stats:?}");
    assert_eq!(director.ring_stats().unwrap(), stats, "the counts add up across reads");
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn bursts_of_frames_go_round_in_order_without_allocating() {
    if !privileged() {
        return;
    }
    let veth = Veth::new("4").expect("ip link add veth");
    let config = AfPacketConfig::new(&veth.a).with_vips(vec!["10.0.0.100".parse().unwrap()]);
    let mut director = AfPacket::open(&config).unwrap();
    let mut peer = AfPacket::open(&AfPacketConfig::new(&veth.b)).unwrap();
    let (dmac, pmac) = (director.mac().0, peer.mac().0);
    for tag in 0..40 {
        peer.send(Instant::ZERO, &udp_frame(dmac, pmac, [10, 0, 0, 100], tag)).unwrap();
    }
    let seen = std::cell::RefCell::new(Vec::with_capacity(64));
    let largest = std::cell::Cell::new(0);
    let deadline = Clock::now() + Duration::from_secs(2);
    let counted = allocation_counter::measure(|| {
        while seen.borrow().len() < 40 && Clock::now() < deadline {
            director
                .process_bursts(|_, frames, verdicts| {
                    largest.set(largest.get().max(frames.len()));
                    assert_eq!(frames.len(), verdicts.len());
                    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
                        seen.borrow_mut().push(frame[42]);
                        frame[0..6].copy_from_slice(&pmac);
                        frame[6..12].copy_from_slice(&dmac);
                        frame[42] += 100;
                        // Every other frame is answered, the others dropped.
                        *verdict = if frame[42] % 2 == 0 {
                            Verdict::Forward { real: RealId::from_index(0) }
                        } else {
                            Verdict::Drop(dr_core::DropReason::OtherHost)
                        };
                    }
                })
                .unwrap();
        }
    });
    assert_eq!(counted.count_total, 0, "bursts are processed and sent without allocating");
    assert_eq!(seen.into_inner(), (0..40).collect::<Vec<u8>>(), "every frame, in order, once");
    assert!((1..=dr_core::BURST).contains(&largest.get()), "bursts of {}", largest.get());
    eprintln!("largest burst: {} frames", largest.get());

    let expected: Vec<u8> = (100..140).filter(|t| t % 2 == 0).collect();
    assert_eq!(returned_tags(&mut peer, 20), expected, "the forwarded frames came back, rewritten");
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn a_ring_whose_interface_goes_down_waits_and_one_whose_interface_goes_away_stops() {
    if !privileged() {
        return;
    }
    let veth = Veth::new("3").expect("ip link add veth");
    let mut io = AfPacket::open(&AfPacketConfig::new(&veth.a)).unwrap();
    let run =
        |io: &mut AfPacket| io.process_batch(|_, _| Verdict::Drop(dr_core::DropReason::OtherHost));

    // Down: the backend waits (no error, no busy loop) and carries on once it is up.
    assert!(Command::new("ip").args(["link", "set", &veth.a, "down"]).status().unwrap().success());
    let started = Clock::now();
    for _ in 0..5 {
        assert_eq!(run(&mut io).unwrap().frames, 0);
    }
    assert!(started.elapsed() >= Duration::from_millis(20), "five waits of the poll timeout");
    assert!(Command::new("ip").args(["link", "set", &veth.a, "up"]).status().unwrap().success());
    assert!(run(&mut io).is_ok());

    // Gone: the next batches report it, within a bounded number of calls.
    assert!(Command::new("ip").args(["link", "del", &veth.a]).status().unwrap().success());
    let deadline = Clock::now() + Duration::from_secs(2);
    let err = loop {
        match run(&mut io) {
            Err(e) => break e,
            Ok(_) => assert!(Clock::now() < deadline, "no error after the interface went away"),
        }
    };
    assert!(matches!(err, Error::InterfaceGone(_)), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("went away"), "{err}");
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn a_ring_whose_interface_is_deleted_while_down_stops_too() {
    if !privileged() {
        return;
    }
    let veth = Veth::new("6").expect("ip link add veth");
    let mut io = AfPacket::open(&AfPacketConfig::new(&veth.a)).unwrap();
    let run =
        |io: &mut AfPacket| io.process_batch(|_, _| Verdict::Drop(dr_core::DropReason::OtherHost));
    // The kernel tells the socket once, when the interface goes down; deleted afterwards,
    // it says nothing more (as when a deletion's "down" is read before the interface is
    // unlisted).
    assert!(Command::new("ip").args(["link", "set", &veth.a, "down"]).status().unwrap().success());
    assert_eq!(run(&mut io).unwrap().frames, 0, "down: waits");
    assert!(Command::new("ip").args(["link", "del", &veth.a]).status().unwrap().success());
    let deadline = Clock::now() + Duration::from_secs(2);
    let err = loop {
        match run(&mut io) {
            Err(e) => break e,
            Ok(_) => assert!(Clock::now() < deadline, "no error after the interface went away"),
        }
    };
    assert!(matches!(err, Error::InterfaceGone(_)), "{err}");
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn errors_say_what_to_do() {
    if !privileged() {
        return;
    }
    let err = AfPacket::open(&AfPacketConfig::new("drt-none0")).unwrap_err();
    assert!(matches!(err, Error::NoSuchInterface(_)));
    assert!(err.to_string().contains("ip link"), "{err}");
    let veth = Veth::new("2").expect("ip link add veth");
    let _ = Command::new("ip").args(["link", "set", &veth.a, "down"]).status();
    let err = AfPacket::open(&AfPacketConfig::new(&veth.a)).unwrap_err();
    assert!(matches!(err, Error::InterfaceDown(_)), "{err}");
    assert!(err.to_string().contains("ip link set"), "{err}");
}

#[test]
fn the_allocation_counter_counts() {
    let counted = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 100]);
    });
    assert!(counted.count_total > 0, "the counter sees allocations in this test binary");
}

/// `frame` with VLAN tags `(tpid, tci)` after its MAC addresses, outermost first.
fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    for (tpid, tci) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&tci.to_be_bytes());
    }
    out.extend_from_slice(&frame[12..]);
    out
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn vlan_tags_the_kernel_takes_out_are_put_back_and_leave_with_the_frame() {
    if !privileged() {
        return;
    }
    // Slots of 2048 bytes (the long frames read whole from the socket), slots that hold
    // them (69632 bytes: 15 to a 1 MiB block, which they do not divide), and blocks.
    let rings =
        [(RxRing::Frames, 2048), (RxRing::Frames, 69632), (RxRing::Blocks { timeout_ms: 1 }, 2048)];
    for (i, (ring, slot)) in rings.into_iter().enumerate() {
        tags_go_round(&format!("5{i}"), ring, slot);
    }
}

/// Tagged and untagged frames, short and longer than a TPACKET_V2 slot, round a veth pair
/// whose MTU lets the long ones through.
fn tags_go_round(tag: &str, ring: RxRing, frame_size: u32) {
    let veth = Veth::new(tag).expect("ip link add veth");
    for end in [&veth.a, &veth.b] {
        let mtu = Command::new("ip").args(["link", "set", end, "mtu", "9000"]).status();
        assert!(mtu.unwrap().success(), "ip link set {end} mtu 9000");
    }
    let config = AfPacketConfig::new(&veth.a)
        .with_vips(vec!["10.0.0.100".parse().unwrap()])
        .with_ring(ring)
        .with_frame_size(frame_size);
    let mut director = AfPacket::open(&config).unwrap();
    let mut peer = AfPacket::open(&AfPacketConfig::new(&veth.b)).unwrap();
    let (dmac, pmac) = (director.mac().0, peer.mac().0);
    // 802.1Q VLAN 10 with priority 5, QinQ (802.1ad 100, then 802.1Q 10), and untagged;
    // each short (60 bytes), then long (5000 bytes: more than a 2048-byte slot holds).
    let tag_sets: [&[(u16, u16)]; 3] = [&[(0x8100, 0xa00a)], &[(0x88a8, 100), (0x8100, 10)], &[]];
    let sent: Vec<Vec<u8>> = [60, 5000]
        .into_iter()
        .flat_map(|len| tag_sets.iter().map(move |tags| (len, tags)))
        .enumerate()
        .map(|(i, (len, tags))| {
            let mut frame = udp_frame(dmac, pmac, [10, 0, 0, 100], i as u8);
            frame.resize(len, 0xab);
            tagged(&frame, tags)
        })
        .collect();
    for frame in &sent {
        peer.send(Instant::ZERO, frame).unwrap();
    }
    let seen = std::cell::RefCell::new(Vec::new());
    pump(
        &mut director,
        |frame| {
            seen.borrow_mut().push(frame.to_vec());
            frame[0..6].copy_from_slice(&pmac);
            frame[6..12].copy_from_slice(&dmac);
            Verdict::Forward { real: RealId::from_index(0) }
        },
        || seen.borrow().len() >= sent.len(),
    );
    assert_eq!(seen.into_inner(), sent, "the director sees each frame as it was on the wire");
    assert_eq!(director.vlan_lost(), 0);
    assert_eq!(director.truncated(), 0);

    let back = std::cell::RefCell::new(Vec::new());
    pump(
        &mut peer,
        |frame| {
            if frame[6..12] == dmac {
                back.borrow_mut().push(frame.to_vec());
            }
            Verdict::Drop(dr_core::DropReason::OtherHost)
        },
        || back.borrow().len() >= sent.len(),
    );
    let expected: Vec<Vec<u8>> = sent
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f[0..6].copy_from_slice(&pmac);
            f[6..12].copy_from_slice(&dmac);
            f
        })
        .collect();
    assert_eq!(back.into_inner(), expected, "each frame left with exactly its tags");
}

#[test]
#[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
fn one_frame_is_handed_over_alone_without_waiting_for_its_block() {
    if !privileged() {
        return;
    }
    // The default ring, and a ring of blocks that would hold a lone frame for 30 s.
    let veth = Veth::new("7").expect("ip link add veth");
    let vip = "10.0.0.100".parse().unwrap();
    let frames = AfPacketConfig::new(&veth.a).with_vips(vec![vip]);
    assert_eq!(frames.ring, RxRing::Frames);
    let blocks = frames.clone().with_ring(RxRing::Blocks { timeout_ms: 30_000 });
    let mut by_frame = AfPacket::open(&frames).unwrap();
    let mut by_block = AfPacket::open(&blocks).unwrap();
    let mut peer = AfPacket::open(&AfPacketConfig::new(&veth.b)).unwrap();
    let (dmac, pmac) = (by_frame.mac().0, peer.mac().0);
    peer.send(Instant::ZERO, &udp_frame(dmac, pmac, [10, 0, 0, 100], 7)).unwrap();

    // Both rings hold that one frame and nothing else; the frame ring hands it over at once
    // (the two seconds are only a bound for a test that failed).
    let seen = std::cell::RefCell::new(Vec::new());
    pump(
        &mut by_frame,
        |frame| {
            seen.borrow_mut().push(frame[42]);
            Verdict::Drop(dr_core::DropReason::OtherHost)
        },
        || !seen.borrow().is_empty(),
    );
    assert_eq!(seen.into_inner(), [7], "one frame, handed over while it is alone in the ring");
    assert_eq!(by_frame.ring_stats().unwrap().received, 1);
    // The block ring has it too, and keeps it: its block is neither full nor timed out.
    let mut held = 0;
    for _ in 0..5 {
        held += by_block
            .process_batch(|_, _| Verdict::Drop(dr_core::DropReason::OtherHost))
            .unwrap()
            .frames;
    }
    assert_eq!(held, 0, "a block ring hands over no lone frame before its timeout");
    assert_eq!(by_block.ring_stats().unwrap().received, 1);
}

#[test]
fn the_root_only_tests_are_ignored_exactly_when_the_build_is_neither_root_nor_ci() {
    let expected = root() || std::env::var_os("CI").is_some();
    assert_eq!(
        cfg!(dr_root),
        expected,
        "built by another user than the one running the tests: rebuild (touch dr-io-afpacket/build.rs)"
    );
}
