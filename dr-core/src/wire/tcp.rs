//! What the packet path reads of a TCP segment beyond its classification.

use super::IpPacket;

/// The data bytes a TCP segment carries: its datagram less the IP headers and the TCP
/// header (data offset); 0 when the header cannot be read. For a first fragment, the data
/// of that fragment.
#[inline]
pub(crate) fn tcp_payload_len(frame: &[u8], ip: &IpPacket) -> usize {
    let Some(&data_offset) = frame.get(ip.l4_offset + 12) else {
        return 0;
    };
    let header = usize::from(data_offset >> 4) * 4;
    let end = ip.l3_offset + ip.datagram_len as usize;
    end.saturating_sub(ip.l4_offset + header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Network, classify};

    /// Ethernet, IPv4 and TCP headers by etherparse, then the payload and padding.
    fn segment(options: &[u8], payload: &[u8]) -> alloc::vec::Vec<u8> {
        let mut tcp = etherparse::TcpHeader::new(40000, 80, 1, 1024);
        tcp.ack = true;
        tcp.set_options_raw(options).unwrap();
        let len = (tcp.header_len() + payload.len()) as u16;
        let mut ip = etherparse::Ipv4Header::new(
            len,
            64,
            etherparse::IpNumber::TCP,
            [192, 0, 2, 1],
            [10, 0, 0, 100],
        )
        .unwrap();
        ip.header_checksum = ip.calc_header_checksum();
        let mut frame = alloc::vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9, 0x08, 0x00];
        frame.extend_from_slice(&ip.to_bytes());
        frame.extend_from_slice(&tcp.to_bytes());
        frame.extend_from_slice(payload);
        // Ethernet padding after the datagram is not data.
        frame.resize(frame.len().max(60), 0);
        frame
    }

    #[test]
    fn counts_data_after_the_header_and_its_options() {
        for (options, payload) in [
            (&[][..], &b""[..]),
            (&[][..], &b"GET / HTTP/1.1\r\n"[..]),
            (&[1, 1, 1, 1, 1, 1, 1, 0][..], &b"x"[..]),
            (&[1, 1, 1, 1][..], &b""[..]),
        ] {
            let frame = segment(options, payload);
            let Network::Ip(ip) = classify(&frame).unwrap().network else { panic!("not IP") };
            assert_eq!(tcp_payload_len(&frame, &ip), payload.len(), "options {options:?}");
        }
    }
}
