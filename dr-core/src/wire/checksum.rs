//! Internet checksums: the IPv4 header check, and the Linux-parity TTL decrement with the
//! kernel's incremental update.

use crate::verdict::DropReason;
use etherparse::checksum::u32_16bit_word;

/// Decrements the IPv4 TTL (fixing the header checksum exactly as the kernel's
/// `ip_decrease_ttl` does) or the IPv6 hop limit, in place.
///
/// # Errors
///
/// [`DropReason::TtlExceeded`] when the TTL or hop limit is 1 or less (the kernel's
/// `ip_vs_dr_xmit` sends ICMP Time Exceeded then; the director drops), and
/// [`DropReason::MalformedIpv4`] if `l3_offset` does not leave room for the header.
pub(crate) fn decrement_ttl(
    frame: &mut [u8],
    l3_offset: usize,
    ipv4: bool,
) -> Result<(), DropReason> {
    let ttl_at = l3_offset + if ipv4 { 8 } else { 7 };
    let Some(&ttl) = frame.get(ttl_at) else {
        return Err(DropReason::MalformedIpv4);
    };
    if ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    if ipv4 {
        let Some(field) = frame.get_mut(l3_offset + 10..l3_offset + 12) else {
            return Err(DropReason::MalformedIpv4);
        };
        // `check += htons(0x0100); check = check + (check >= 0xFFFF)`: one's-complement
        // addition of the TTL's weight, with the kernel's normalisation of 0xFFFF to 0.
        let check = u32::from(u16::from_be_bytes([field[0], field[1]])) + 0x0100;
        let check = check + u32::from(check >= 0xFFFF);
        field.copy_from_slice(&(check as u16).to_be_bytes());
    }
    frame[ttl_at] = ttl - 1;
    Ok(())
}

/// Whether an IPv4 header (`IHL * 4` bytes, a multiple of 4) is intact: its 16-bit words
/// add up to 0xFFFF in one's complement arithmetic, checksum field included (RFC 1071).
///
/// On the packet path of every IPv4 frame, so it sums 32-bit words into a 64-bit
/// accumulator and folds once at the end; the usual 20-byte header is summed unrolled.
#[inline(always)]
pub(crate) fn ipv4_header_checksum_ok(header: &[u8]) -> bool {
    let sum = match <&[u8; 20]>::try_from(header) {
        Ok(fixed) => sum_words(fixed),
        Err(_) => sum_words(header),
    };
    fold(sum) == 0xFFFF
}

/// The sum of `bytes` as native-endian 32-bit words (a trailing partial word is not
/// summed: IPv4 headers are whole words).
#[inline(always)]
fn sum_words(bytes: &[u8]) -> u64 {
    let mut sum = 0;
    for word in bytes.chunks_exact(4) {
        sum += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
    }
    sum
}

/// Folds a sum of 32-bit words to 16 bits with end-around carries. Byte order does not
/// matter for the comparison with 0xFFFF: one's complement sums commute with byte swaps.
#[inline(always)]
fn fold(sum: u64) -> u16 {
    // Below 2^36 (at most 15 words): 32 + 4 bits, then 16 + 1, then at most 0x10000, then 16.
    let sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    let sum = (sum & 0xFFFF) + (sum >> 16);
    let sum = (sum & 0xFFFF) + (sum >> 16);
    let sum = (sum & 0xFFFF) + (sum >> 16);
    sum as u16
}

/// The ICMPv6 checksum field of `message` (whose checksum field must be zero) between
/// `src` and `dst` (RFC 4443 §2.3), as the two bytes to store.
pub(crate) fn icmpv6_checksum(src: [u8; 16], dst: [u8; 16], message: &[u8]) -> [u8; 2] {
    let len = message.len() as u32;
    let mut sum = u32_16bit_word::add_slice(0, &src);
    sum = u32_16bit_word::add_slice(sum, &dst);
    sum = u32_16bit_word::add_4bytes(sum, len.to_be_bytes());
    sum = u32_16bit_word::add_4bytes(sum, [0, 0, 0, 58]);
    sum = u32_16bit_word::add_slice(sum, message);
    // etherparse sums native-endian words, so the result is stored native-endian too.
    u32_16bit_word::ones_complement(sum).to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate alloc;
    use alloc::vec::Vec;

    fn ipv4_header_checksum(header: &[u8]) -> u16 {
        u32_16bit_word::ones_complement(u32_16bit_word::add_slice(0, header))
    }

    fn valid(header: &[u8]) -> bool {
        u32_16bit_word::ones_complement(u32_16bit_word::add_slice(0, header)) == 0
    }

    fn header(ttl: u8) -> [u8; 20] {
        let mut h =
            [0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, ttl, 6, 0, 0, 192, 0, 2, 1, 10, 0, 0, 100];
        let c = ipv4_header_checksum(&h).to_ne_bytes();
        h[10] = c[0];
        h[11] = c[1];
        h
    }

    proptest::proptest! {
        #[test]
        fn header_check_agrees_with_etherparse(
            words in proptest::collection::vec(proptest::prelude::any::<u32>(), 5..=15),
            fix in proptest::prelude::any::<bool>(),
        ) {
            let mut header: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            if fix {
                header[10..12].fill(0);
                let c = ipv4_header_checksum(&header).to_ne_bytes();
                header[10..12].copy_from_slice(&c);
            }
            proptest::prop_assert_eq!(ipv4_header_checksum_ok(&header), valid(&header));
            if fix {
                proptest::prop_assert!(ipv4_header_checksum_ok(&header));
            }
        }
    }

    #[test]
    fn header_check_edge_sums() {
        // All zeros sums to 0, not 0xFFFF: not a valid header, as etherparse also says.
        assert!(!ipv4_header_checksum_ok(&[0; 20]));
        assert!(!valid(&[0; 20]));
        assert!(ipv4_header_checksum_ok(&header(64)));
        let mut broken = header(64);
        broken[15] ^= 1;
        assert!(!ipv4_header_checksum_ok(&broken));
    }

    #[test]
    fn ipv4_ttl_and_checksum() {
        for ttl in 2..=255 {
            let mut frame = header(ttl);
            decrement_ttl(&mut frame, 0, true).unwrap();
            assert_eq!(frame[8], ttl - 1);
            assert!(valid(&frame), "ttl {ttl}");
        }
    }

    #[test]
    fn every_checksum_value_stays_valid() {
        // Whatever the checksum field holds, the update keeps the header sum intact.
        for check in 0..=u16::MAX {
            let mut frame = [0u8; 20];
            frame[8] = 64;
            frame[10..12].copy_from_slice(&check.to_be_bytes());
            let before = u32_16bit_word::add_slice(0, &frame);
            decrement_ttl(&mut frame, 0, true).unwrap();
            let after = u32_16bit_word::add_slice(0, &frame);
            assert_eq!(
                u32_16bit_word::ones_complement(before) == 0,
                u32_16bit_word::ones_complement(after) == 0,
                "check {check:#06x}"
            );
        }
    }

    #[test]
    fn kernel_normalises_ffff_to_zero() {
        let mut frame = [0u8; 20];
        frame[8] = 64;
        frame[10..12].copy_from_slice(&0xfeffu16.to_be_bytes());
        decrement_ttl(&mut frame, 0, true).unwrap();
        assert_eq!(&frame[10..12], &[0, 0]);
    }

    #[test]
    fn ttl_one_or_zero_is_exceeded() {
        for ttl in [0, 1] {
            let mut frame = header(ttl);
            let before = frame;
            assert_eq!(decrement_ttl(&mut frame, 0, true), Err(DropReason::TtlExceeded));
            assert_eq!(frame, before);
        }
    }

    #[test]
    fn ipv6_hop_limit() {
        let mut frame = [0u8; 40];
        frame[7] = 64;
        decrement_ttl(&mut frame, 0, false).unwrap();
        assert_eq!(frame[7], 63);
        frame[7] = 1;
        assert_eq!(decrement_ttl(&mut frame, 0, false), Err(DropReason::TtlExceeded));
    }

    #[test]
    fn short_frames_are_errors_not_panics() {
        let mut frame = [64u8; 9];
        assert_eq!(decrement_ttl(&mut frame, 0, true), Err(DropReason::MalformedIpv4));
        assert_eq!(decrement_ttl(&mut [], 0, false), Err(DropReason::MalformedIpv4));
    }
}
