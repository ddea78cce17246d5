//! Frame classification and in-place frame writing.
//!
//! # Contract
//!
//! [`classify`] takes any byte slice, never panics, never allocates, and either returns a
//! [`Packet`] whose offsets are all inside the slice it was given, or the [`DropReason`]
//! that names the first thing wrong with it. Every writer in this module takes offsets that
//! came out of a successful [`classify`] of the same bytes, and checks them again before it
//! writes, so a stale offset can cost a frame but never a panic.
//!
//! Parsing goes through etherparse's zero-copy slicing API; the fields it does not judge
//! (the IPv4 header checksum, Neighbor Discovery validity) are checked here.
//!
//! [`DropReason`]: crate::DropReason

mod arp;
mod checksum;
mod classify;
mod icmp;
mod ndp;
mod tcp;
mod unreach;

pub use classify::{
    ArpInfo, Fragment, IpPacket, Network, Packet, TcpFlags, Transport, VlanTag, VlanTags, classify,
};

pub(crate) use arp::{write_arp_announcement, write_arp_reply, write_arp_request};
pub(crate) use checksum::decrement_ttl;
pub(crate) use icmp::{IcmpKind, icmp_checksum_ok, icmp_kind, quoted_flow, write_echo_reply};
pub(crate) use ndp::{
    NdMessage, link_local, parse_neighbor_message, write_neighbor_advertisement,
    write_neighbor_solicitation, write_unsolicited_advertisement,
};
pub(crate) use tcp::tcp_payload_len;
pub(crate) use unreach::write_port_unreachable;

/// The length of an Ethernet II header without VLAN tags.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// The shortest Ethernet frame on the wire, without the frame check sequence.
pub const MIN_FRAME_LEN: usize = 60;

/// A frame the director builds on its own (an announcement or a neighbour request), held
/// inline so that building one never allocates.
#[derive(Clone, Copy)]
pub struct GeneratedFrame {
    bytes: [u8; Self::CAPACITY],
    len: u16,
}

impl GeneratedFrame {
    /// The largest generated frame: an ICMP port unreachable quoting 548 bytes, behind two
    /// VLAN tags and an IPv6 header (14 + 8 + 40 + 8 + 548 = 618).
    pub const CAPACITY: usize = 640;

    /// Builds a frame with `write`, which returns the length it wrote (0 for none).
    pub(crate) fn build(write: impl FnOnce(&mut [u8]) -> usize) -> Option<Self> {
        let mut bytes = [0u8; Self::CAPACITY];
        let len = write(&mut bytes);
        (len > 0 && len <= Self::CAPACITY).then_some(Self { bytes, len: len as u16 })
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::ops::Deref for GeneratedFrame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl core::fmt::Debug for GeneratedFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GeneratedFrame").field("len", &self.len).finish_non_exhaustive()
    }
}
