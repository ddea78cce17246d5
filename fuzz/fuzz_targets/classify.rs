//! The classifier on arbitrary bytes: it must never panic, and whatever it accepts must
//! have every offset inside the frame and a flow key consistent with its transport.

#![no_main]

use dr_core::wire::{Network, Transport, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let Ok(packet) = classify(frame) else {
        return;
    };
    assert!(packet.l3_offset >= 14 && packet.l3_offset <= frame.len());
    assert_eq!(packet.l3_offset, 14 + 4 * packet.vlans.len());
    if let Network::Ip(ip) = packet.network {
        let end = packet.l3_offset + ip.datagram_len as usize;
        assert!(end <= frame.len(), "datagram runs past the frame");
        assert!(ip.l4_offset <= end, "transport header past the datagram");
        assert_eq!(ip.src.is_ipv4(), ip.dst.is_ipv4());
        let has_ports = matches!(ip.transport, Transport::Tcp { .. } | Transport::Udp { .. });
        assert_eq!(ip.flow_key().is_some(), has_ports);
        if has_ports {
            assert!(ip.l4_offset + 8 <= end, "ports outside the datagram");
        }
    }
});
