//! `dh`, destination hashing (`net/netfilter/ipvs/ip_vs_dh.c`, `include/linux/hash.h`).
//!
//! A 256-bucket table, filled at every add and delete (not at an edit: the kernel has no
//! `upd_dest` hook, and weights play no part) by giving the servers one bucket each in list
//! order, round and round: bucket `i` holds server `i mod n`. A packet's bucket is
//! `hash_32(fold(destination), 8)`; its server must have weight > 0 and not be overloaded,
//! or there is no server (no fallback).
//!
//! For Direct Routing the destination is the VIP itself, the same for every packet of a
//! service: every connection of a service goes to one server, the one in the VIP's bucket,
//! as the kernel does for a `dh` service on one address. (The kernel's `dh` is meant for
//! firewall-mark services in front of caches, where destinations vary.)
//!
//! Worked examples: 10.0.0.100 is bucket `hash_32(0x0a000064, 8)` = 248; with servers
//! A, B, C in list order that bucket holds C (248 mod 3 = 2), with four servers A
//! (248 mod 4 = 0). 10.0.0.101 is bucket 90 (A of three); 2001:db8::100 folds to
//! 0x20010cb8, bucket 20 (C of three). C quiesced: no server for 10.0.0.100.

use super::Dests;
use super::sh::{fold, hash_32_8};
use crate::flow::FlowKey;

const BUCKETS: usize = 256;

/// The bucket table: each bucket a list position.
#[derive(Clone, Debug)]
pub(crate) struct DestinationHash {
    buckets: [Option<u16>; BUCKETS],
}

impl DestinationHash {
    pub(crate) fn new(dests: &Dests<'_>) -> Self {
        let mut table = Self { buckets: [None; BUCKETS] };
        table.reassign(dests);
        table
    }

    /// `ip_vs_dh_reassign`.
    pub(crate) fn reassign(&mut self, dests: &Dests<'_>) {
        let n = dests.len();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            *bucket = i.checked_rem(n).and_then(|p| u16::try_from(p).ok());
        }
    }

    pub(crate) fn schedule(&self, dests: &Dests<'_>, flow: &FlowKey) -> Option<usize> {
        let pos = usize::from(self.buckets[hash_32_8(fold(flow.vip))]?);
        (dests.usable(pos) && dests.weight(pos) > 0).then_some(pos)
    }
}
