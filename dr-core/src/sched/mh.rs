//! `mh`, Maglev hashing (`net/netfilter/ipvs/ip_vs_mh.c`, `lib/siphash.c`; the algorithm of
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
//! §3.4).
//!
//! A lookup table of M slots (M prime, [`MH_TABLE_SIZES`], default 4093) maps a client to a
//! real server. Directors with the same servers build the same table, so every director
//! behind an ECMP router sends a client to the same server without sharing state, and a
//! change of one server moves few clients that were not its own.
//!
//! # The hash
//!
//! `hsiphash` of the 4-byte value `offset + port + fold(addr)` (host order, wrapping; an IPv6
//! address folded to the XOR of its four 32-bit words) with the fixed keys of
//! `generate_hash_secret`: H1 with both key words 2654435761, H2 with both 2654446892. On
//! 64-bit kernels `hsiphash` is SipHash-1-3 (`lib/siphash.c`: "on 64-bit, we make
//! HalfSipHash1-3 actually be SipHash1-3"), the key words being 64-bit, the value's four
//! little-endian bytes the message, and the result the low 32 bits of the 64-bit output.
//! That is what dr computes, so it builds the tables of x86-64 and arm64 kernels; a 32-bit
//! kernel's `hsiphash` is HalfSipHash-1-3 and gives other tables (and a big-endian kernel
//! hashes the value's bytes the other way round).
//!
//! # The table (`ip_vs_mh_reassign`, at every add, edit and delete)
//!
//! For each server in list order (newest first), with the service port as its port:
//! `offset = H1(addr, port, 0) % M`, `skip = H2(addr, port, 0) % (M − 1) + 1`. Turns come
//! from the servers' `last_weight`, the last weight they were given other than 0 (a server
//! edited to weight 0 keeps its slots, so quiescing it moves nobody): with `g` the gcd of
//! the positive ones and `rshift = max(fls(max / g) − IP_VS_MH_TAB_BITS, 0)`
//! (`IP_VS_MH_TAB_BITS` is half the table's `CONFIG_IP_VS_MH_TAB_INDEX`: 6 for 4093),
//! `turns = ((last_weight / g) >> rshift)`, or 1 if that is 0 and `last_weight` is not.
//! Then rounds over the list: each server with turns claims, one at a time, `turns` slots,
//! each the next free one of its permutation `offset, offset + skip, …` (mod M), until all
//! M slots are claimed. With no positive `last_weight` the table is empty; with more
//! servers than slots the kernel refuses to rebuild, and the table stays as it was.
//!
//! # The pick (`ip_vs_mh_schedule`)
//!
//! The slot of `H1(client, port, 0) % M`, port being the client's port with `mh-port` and 0
//! otherwise. A server of weight 0 (now), overloaded, or unaddressable is unavailable: no
//! server, unless `mh-fallback`, which then tries `H1(client, port, (i + slot) % M) % M` for
//! `i = 0, 1, …` until an available server, stopping at an empty slot or after M tries.
//!
//! # Worked examples (computed from the kernel code)
//!
//! M = 251, service port 80, servers 10.0.0.11, .12 and .13 added in that order, so the
//! list is A = .13, B = .12, C = .11, all weight 1 (one turn each):
//!
//! | server | H1(addr, 80, 0) % 251 = offset | skip |
//! |---|---|---|
//! | A 10.0.0.13 | 36 | 240 |
//! | B 10.0.0.12 | 77 | 78 |
//! | C 10.0.0.11 | 137 | 15 |
//!
//! Round 1: A takes slot 36, B 77, C 137; round 2: A 36 + 240 − 251 = 25, B 155, C 152; …
//! The table begins `C A B A A B C C A B C C A A A B` (slots 0 to 15) and gives A and B 84
//! slots, C 83. Clients (port 0): 192.0.2.1 hashes to 2458426504, slot 227, C; 192.0.2.2 to
//! slot 247, C; 198.51.100.10 to 16, C; 203.0.113.77 to 234, B. With `mh-port`, 192.0.2.1
//! from port 1000 is slot 152 (C), from 1001 slot 54 (A), from 1002 slot 249 (B).
//!
//! B set to weight 0 keeps its 84 slots (`last_weight` is still 1): 203.0.113.77 finds B
//! unavailable and gets no server; with `mh-fallback` it tries `H1(client, 0, 234 + i)`:
//! slot 69 (B), 131 (B), 111 (C): C.
//!
//! Weights A = 3, B = 1, C = 1: A claims three slots a round, and gets 151, B and C 50 each.
//!
//! At the default M = 4093 the same servers have offsets 2586, 870, 4032 and skips 2286,
//! 874, 1541, and A gets 1365 slots, B and C 1364; 192.0.2.1 is slot 2891 (A), 192.0.2.2
//! 746 (C), 198.51.100.10 3456 (A), 203.0.113.77 2731 (B).
//!
//! SipHash-1-3 with both key words 2654435761 over the bytes of 80u32 (`50 00 00 00`) has
//! low 32 bits 101399046.

use super::sh::fold;
use super::{Dests, SchedFlags, SchedParams};
use crate::flow::FlowKey;
use crate::service::{RealId, RealServer};
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;

/// The table sizes the kernel can be built with (`primes` in `ip_vs_mh.c`, index
/// `CONFIG_IP_VS_MH_TAB_INDEX − 8`).
pub const MH_TABLE_SIZES: [u32; 10] =
    [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];

/// The kernel's default table size (`CONFIG_IP_VS_MH_TAB_INDEX` 12).
pub const DEFAULT_MH_TABLE_SIZE: u32 = 4093;

/// `generate_hash_secret`: the keys of H1 and H2.
const HASH1: u64 = 2_654_435_761;
const HASH2: u64 = 2_654_446_892;

/// A slot without a server.
const EMPTY: u16 = u16::MAX;

/// One SipHash round.
#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The 64-bit kernel's `hsiphash(&value, 4, {key, key})`: SipHash-1-3 of the value's four
/// little-endian bytes under the key words `(key, key)`, truncated to 32 bits
/// (`hsiphash_1u32`: `HPREAMBLE(4)`, `b |= first`, `HPOSTAMBLE`).
#[inline]
pub(crate) fn hsiphash(key: u64, value: u32) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key,
        0x646f_7261_6e64_6f6d ^ key,
        0x6c79_6765_6e65_7261 ^ key,
        0x7465_6462_7974_6573 ^ key,
    ];
    let b = (4u64 << 56) | u64::from(value);
    v[3] ^= b;
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `ip_vs_mh_hashkey`.
#[inline]
fn hashkey(addr: IpAddr, port: u16, key: u64, offset: u32) -> u32 {
    hsiphash(key, offset.wrapping_add(u32::from(port)).wrapping_add(fold(addr)))
}

/// `struct ip_vs_mh_dest_setup`.
#[derive(Clone, Copy, Debug, Default)]
struct Setup {
    skip: u32,
    perm: u32,
    turns: u32,
}

/// The table and what building it needs, kept between builds so that a rebuild allocates
/// only when the service has more servers than ever before.
#[derive(Clone, Debug)]
pub(crate) struct Maglev {
    /// Each slot's server as a [`RealId`] index, or [`EMPTY`].
    lookup: Box<[u16]>,
    /// `IP_VS_MH_TAB_BITS` for this size.
    bits: u32,
    /// The service port (every real server's port in Direct Routing).
    port: u16,
    hash_port: bool,
    fallback: bool,
    /// Per server, in list order, while building.
    setup: Vec<Setup>,
    /// Claimed slots, while building.
    claimed: Vec<u64>,
}

/// `IP_VS_MH_TAB_BITS` of a table size: half its `CONFIG_IP_VS_MH_TAB_INDEX`.
fn tab_bits(size: u32) -> u32 {
    let index = MH_TABLE_SIZES.iter().position(|&m| m == size).unwrap_or(4) as u32 + 8;
    index / 2
}

/// `fls`: the position of the highest bit set, 0 for 0.
fn fls(x: u32) -> u32 {
    u32::BITS - x.leading_zeros()
}

pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Maglev {
    /// `ip_vs_mh_init_svc`: the table allocated once, then built.
    pub(crate) fn new(params: &SchedParams, flags: SchedFlags, dests: &Dests<'_>) -> Self {
        let size = params.mh_table_size;
        let mut table = Self {
            lookup: vec![EMPTY; size as usize].into_boxed_slice(),
            bits: tab_bits(size),
            port: params.port,
            hash_port: flags.mh_port,
            fallback: flags.mh_fallback,
            setup: Vec::new(),
            claimed: vec![0; (size as usize).div_ceil(64)],
        };
        table.reassign(dests);
        table
    }

    pub(crate) fn set_flags(&mut self, flags: SchedFlags) {
        self.hash_port = flags.mh_port;
        self.fallback = flags.mh_fallback;
    }

    /// A table of another size, built afresh.
    pub(crate) fn resize(&mut self, size: u32, dests: &Dests<'_>) {
        if self.lookup.len() != size as usize {
            self.lookup = vec![EMPTY; size as usize].into_boxed_slice();
            self.claimed = vec![0; (size as usize).div_ceil(64)];
            self.bits = tab_bits(size);
            self.reassign(dests);
        }
    }

    fn size(&self) -> u32 {
        self.lookup.len() as u32
    }

    /// `ip_vs_mh_dest_changed`: gcd, shift, then `ip_vs_mh_reassign`.
    pub(crate) fn reassign(&mut self, dests: &Dests<'_>) {
        let m = self.size();
        let n = dests.len();
        if n > m as usize {
            return; // -EINVAL: the table stays as it was.
        }
        let last_weight = |p: usize| dests.get(p).map_or(0, |r| r.last_weight);
        let g = (0..n).map(last_weight).filter(|w| *w > 0).fold(0, gcd);
        if g < 1 {
            self.lookup.fill(EMPTY);
            return;
        }
        let max = (0..n).map(last_weight).max().unwrap_or(0);
        let rshift = fls(max / g).saturating_sub(self.bits);
        // ip_vs_mh_permutate
        self.setup.clear();
        for p in 0..n {
            let Some(real) = dests.get(p) else { continue };
            let offset = hashkey(real.addr, self.port, HASH1, 0) % m;
            let skip = hashkey(real.addr, self.port, HASH2, 0) % (m - 1) + 1;
            let lw = real.last_weight;
            let turns = match (lw / g) >> rshift {
                0 => u32::from(lw != 0),
                t => t,
            };
            self.setup.push(Setup { skip, perm: offset, turns });
        }
        self.populate(dests);
    }

    /// `ip_vs_mh_populate`: rounds over the list until every slot is claimed.
    fn populate(&mut self, dests: &Dests<'_>) {
        let m = self.size();
        self.claimed.fill(0);
        let mut filled = 0;
        let mut count = 0;
        // Some server has turns (g >= 1), and each permutation visits every slot (M is
        // prime and 1 <= skip < M): every round claims a slot, and claiming ends.
        loop {
            let mut p = 0;
            while let Some(ds) = self.setup.get_mut(p) {
                if ds.turns < 1 {
                    p += 1;
                    continue;
                }
                let (mut c, skip) = (ds.perm, ds.skip);
                while self.claimed[(c / 64) as usize] & (1 << (c % 64)) != 0 {
                    c += skip;
                    if c >= m {
                        c -= m;
                    }
                }
                ds.perm = c;
                self.claimed[(c / 64) as usize] |= 1 << (c % 64);
                self.lookup[c as usize] = dests.order.get(p).map_or(EMPTY, |id| id.index() as u16);
                filled += 1;
                if filled == m {
                    return;
                }
                count += 1;
                if count >= ds.turns {
                    count = 0;
                    p += 1;
                }
            }
        }
    }

    /// The table, slot by slot (tests).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> impl Iterator<Item = Option<RealId>> + '_ {
        self.lookup.iter().map(|&s| (s != EMPTY).then(|| RealId::from_index(usize::from(s))))
    }

    /// The server in a slot, if it can take the connection (`!is_unavailable`: weight > 0
    /// and not overloaded; for dr also addressable and still in the service).
    #[inline]
    fn available<'a>(&self, dests: &Dests<'a>, slot: u32) -> Result<RealId, bool> {
        let index = self.lookup.get(slot as usize).copied().unwrap_or(EMPTY);
        if index == EMPTY {
            return Err(false);
        }
        let id = RealId::from_index(usize::from(index));
        let ok = dests
            .real(id)
            .is_some_and(|r: &RealServer| r.weight > 0 && r.is_usable() && r.available);
        if ok { Ok(id) } else { Err(true) }
    }

    /// `ip_vs_mh_get` / `ip_vs_mh_get_fallback`.
    pub(crate) fn schedule(&self, dests: &Dests<'_>, flow: &FlowKey) -> Option<RealId> {
        let m = self.size();
        let port = if self.hash_port { flow.client_port } else { 0 };
        let ihash = hashkey(flow.client, port, HASH1, 0) % m;
        match self.available(dests, ihash) {
            Ok(id) => return Some(id),
            Err(false) => return None,
            Err(true) if !self.fallback => return None,
            Err(true) => {}
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let hash = hashkey(flow.client, port, HASH1, roffset) % m;
            match self.available(dests, hash) {
                Ok(id) => return Some(id),
                Err(false) => return None,
                Err(true) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;
    use siphasher::sip::SipHasher13;

    /// An independent SipHash-1-3: the siphasher crate, fed the value's bytes.
    fn reference(key: u64, value: u32) -> u32 {
        let mut h = SipHasher13::new_with_keys(key, key);
        h.write(&value.to_le_bytes());
        h.finish() as u32
    }

    #[test]
    fn hsiphash_is_siphash13_truncated() {
        // The spec's check value, and values computed with a separate implementation of
        // SipHash-1-3 written from the SipHash paper (it gives the paper's SipHash-2-4
        // vectors with c = 2, d = 4).
        assert_eq!(hsiphash(HASH1, 80), 101_399_046);
        for (key, value, expected) in [
            (HASH1, 80, 101_399_046),
            (HASH1, 0x0a00_000d + 80, 4_175_149_096),
            (HASH2, 0x0a00_000d + 80, 2_044_721_489),
            (HASH1, 0x0a00_000c + 80, 2_712_210_948),
            (HASH2, 0x0a00_000c + 80, 4_223_710_077),
            (HASH1, 0x0a00_000b + 80, 1_271_420_808),
            (HASH2, 0x0a00_000b + 80, 1_706_353_264),
            (HASH1, 0xc000_0201, 2_458_426_504),
            (HASH1, 0xc000_0202, 4_179_178_861),
            (HASH1, 0xc633_640a, 2_968_054_685),
            (HASH1, 0xcb00_714d, 3_597_184_897),
        ] {
            assert_eq!(hsiphash(key, value), expected, "{value:#x}");
            assert_eq!(hsiphash(key, value), reference(key, value), "{value:#x}");
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            for key in [HASH1, HASH2, 0, u64::MAX, 0x0123_4567_89ab_cdef] {
                assert_eq!(hsiphash(key, x), reference(key, x));
            }
        }
    }

    #[test]
    fn table_bits_follow_the_config_index() {
        assert_eq!(tab_bits(251), 4);
        assert_eq!(tab_bits(4093), 6);
        assert_eq!(tab_bits(65521), 8);
        assert_eq!(tab_bits(131071), 8);
        assert_eq!((fls(0), fls(1), fls(64), fls(65535)), (0, 1, 7, 16));
    }
}
