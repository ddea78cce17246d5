//! `sh`, source hashing (`net/netfilter/ipvs/ip_vs_sh.c`, `include/linux/hash.h`).
//!
//! A 256-bucket table, filled at every add, edit or delete by walking the list and giving
//! each server `weight` consecutive buckets (weight 0: one). A client's bucket is
//! `hash_32(port + address fold, 8)`; with `sh-port` the client port counts, otherwise it
//! is 0. Without `sh-fallback` an unavailable server in the bucket means no server; with it
//! the table is probed onwards, starting at twice the hash, as the kernel does.

use super::Dests;
use crate::flow::FlowKey;
use core::net::IpAddr;

const BUCKETS: usize = 256;
/// `GOLDEN_RATIO_32`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The bucket table: each bucket a list position.
#[derive(Clone, Debug)]
pub(crate) struct SourceHash {
    buckets: [Option<u16>; BUCKETS],
    port: bool,
    fallback: bool,
}

/// `hash_32(value, 8)`.
pub(crate) fn hash_32_8(value: u32) -> usize {
    (value.wrapping_mul(GOLDEN_RATIO_32) >> 24) as usize
}

/// The address folded to 32 bits: IPv4 as is, IPv6 the XOR of its four words.
pub(crate) fn fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (0..4)
                .map(|i| (u32::from(s[2 * i]) << 16) | u32::from(s[2 * i + 1]))
                .fold(0, |a, w| a ^ w)
        }
    }
}

impl SourceHash {
    pub(crate) fn new(dests: &Dests<'_>, port: bool, fallback: bool) -> Self {
        let mut table = Self { buckets: [None; BUCKETS], port, fallback };
        table.reassign(dests);
        table
    }

    pub(crate) fn set_flags(&mut self, port: bool, fallback: bool) {
        self.port = port;
        self.fallback = fallback;
    }

    /// `ip_vs_sh_reassign`.
    pub(crate) fn reassign(&mut self, dests: &Dests<'_>) {
        let n = dests.len();
        let mut p = 0;
        let mut count = 0;
        for bucket in &mut self.buckets {
            if n == 0 {
                *bucket = None;
                continue;
            }
            *bucket = u16::try_from(p).ok();
            count += 1;
            if count >= dests.weight(p) {
                p = (p + 1) % n;
                count = 0;
            }
        }
    }

    /// The bucket of a client.
    pub(crate) fn hash(&self, flow: &FlowKey) -> usize {
        let port = if self.port { u32::from(flow.client_port) } else { 0 };
        hash_32_8(port.wrapping_add(fold(flow.client)))
    }

    fn available(dests: &Dests<'_>, position: Option<u16>) -> Option<usize> {
        let pos = usize::from(position?);
        (dests.usable(pos) && dests.weight(pos) > 0).then_some(pos)
    }

    pub(crate) fn schedule(&self, dests: &Dests<'_>, flow: &FlowKey) -> Option<usize> {
        let hash = self.hash(flow);
        let first = self.buckets[hash]?;
        if let Some(pos) = Self::available(dests, Some(first)) {
            return Some(pos);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..BUCKETS {
            let roffset = (offset + hash) % BUCKETS;
            let bucket = self.buckets[(roffset + hash) % BUCKETS]?;
            if let Some(pos) = Self::available(dests, Some(bucket)) {
                return Some(pos);
            }
        }
        None
    }
}
