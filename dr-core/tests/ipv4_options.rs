//! IPv4 options are walked as the kernel's `ip_options_compile` walks them on input
//! (net/ipv4/ip_options.c): End of Option List (0) ends the list, No Operation (1) is one
//! byte, every other option is type, length (counting both bytes), data. A length below 2
//! or past the header is malformed and the packet is dropped.
//!
//! Frames are built with etherparse, whose header writer takes the option bytes as given.

mod support;

use dr_core::wire::{Network, Transport, classify};
use dr_core::{Director, DropReason, Instant, Protocol, Verdict};
use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv4Options, TcpHeader};
use support::{DIRECTOR_MAC, ROUTER_MAC, dual_stack};

/// A client's TCP SYN, 192.0.2.7:40000 → 10.0.0.100:80, whose IPv4 header carries `options`
/// (a multiple of 4 bytes, at most 40), with valid IP and TCP checksums.
fn syn_with_options(options: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, [192, 0, 2, 7], [10, 0, 0, 100]).unwrap();
    ip.options = Ipv4Options::try_from(options).unwrap();
    let mut tcp = TcpHeader::new(40000, 80, 1000, 64240);
    tcp.syn = true;
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, &[]).unwrap();
    ip.set_payload_len(tcp.header_len()).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let eth = Ethernet2Header {
        source: ROUTER_MAC,
        destination: DIRECTOR_MAC,
        ether_type: EtherType::IPV4,
    };
    let mut frame = eth.to_bytes().to_vec();
    frame.extend_from_slice(&ip.to_bytes());
    frame.extend_from_slice(&tcp.to_bytes());
    frame
}

fn director() -> Director {
    dual_stack(Protocol::Tcp, 80, |_| {})
}

fn drops(d: &Director, name: &str) -> u64 {
    let (_, n) = d.counters().drop_counts().find(|(r, _)| r.name() == name).unwrap();
    n
}

/// Router Alert (RFC 2113): type 0x94, length 4, value 0.
const ROUTER_ALERT: [u8; 4] = [0x94, 4, 0, 0];

#[test]
fn well_formed_options_pass() {
    let mut rr = vec![7, 39, 4]; // record route with room for nine addresses, then EOL
    rr.resize(39, 0);
    rr.push(0);
    let cases: [(&str, Vec<u8>); 7] = [
        ("router alert", ROUTER_ALERT.to_vec()),
        ("three NOPs and EOL", vec![1, 1, 1, 0]),
        ("EOL, then bytes that are padding", vec![0, 0x94, 0, 0xff]),
        ("NOP, router alert, NOP, NOP, EOL", vec![1, 0x94, 4, 0, 0, 1, 1, 0]),
        ("forty NOPs", vec![1; 40]),
        ("record route filling the header", rr),
        ("an unknown option with a length of 2, and NOPs", vec![0x9e, 2, 1, 1]),
    ];
    for (what, options) in cases {
        let frame = syn_with_options(&options);
        let packet = classify(&frame).unwrap_or_else(|e| panic!("{what}: {e}"));
        let Network::Ip(ip) = packet.network else { panic!("{what}: not IP") };
        assert_eq!(ip.l4_offset, 14 + 20 + options.len(), "{what}");
        assert!(
            matches!(ip.transport, Transport::Tcp { src_port: 40000, dst_port: 80, .. }),
            "{what}: {:?}",
            ip.transport
        );
        let mut d = director();
        let mut frame = frame;
        assert!(
            matches!(d.process(Instant::from_secs(1), &mut frame), Verdict::Forward { .. }),
            "{what}"
        );
    }
}

#[test]
fn malformed_options_are_dropped() {
    let cases: [(&str, &[u8]); 7] = [
        ("router alert with length 0", &[0x94, 0, 0, 0]),
        ("router alert with length 1", &[0x94, 1, 0, 0]),
        ("router alert running 4 bytes past the header", &[0x94, 8, 0, 0]),
        ("a length byte past the header", &[1, 1, 1, 0x94]),
        ("a valid option, then one with length 0", &[0x94, 4, 0, 0, 7, 0, 0, 0]),
        ("39 NOPs and an option with no length byte", &{
            let mut o = [1u8; 40];
            o[39] = 0x44;
            o
        }),
        ("record route one byte longer than the header", &{
            let mut o = [0u8; 40];
            o[..3].copy_from_slice(&[7, 41, 4]);
            o
        }),
    ];
    for (what, options) in cases {
        let frame = syn_with_options(options);
        assert_eq!(classify(&frame).err(), Some(DropReason::MalformedIpv4Options), "{what}");
        let mut d = director();
        let mut frame = frame;
        assert_eq!(
            d.process(Instant::from_secs(1), &mut frame),
            Verdict::Drop(DropReason::MalformedIpv4Options),
            "{what}"
        );
        assert_eq!(drops(&d, "malformed-ipv4-options"), 1, "{what}");
        assert_eq!(d.counters().forwarded(), 0, "{what}");
        assert_eq!(d.connection_count(), 0, "{what}");
    }
}

#[test]
fn the_header_checksum_is_checked_first() {
    // A bad checksum is a bad header whatever its options say.
    let mut frame = syn_with_options(&[0x94, 0, 0, 0]);
    frame[14 + 10] ^= 0xff;
    assert_eq!(classify(&frame).err(), Some(DropReason::Ipv4Checksum));
}
