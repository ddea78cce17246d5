//! `twos`, weighted random two choices (`net/netfilter/ipvs/ip_vs_twos.c`, after
//! Mitzenmacher's "power of two choices").
//!
//! Two servers are drawn at random, each with a chance after its weight, and the one with
//! the lower overhead per weight (active × 256 + inactive) wins. As in the kernel: the
//! total weight W of the servers with weight > 0 that are not overloaded is taken, two
//! numbers `r1`, `r2` are drawn from `0 ..= W` (`prandom_u32() % (W + 1)`), and walking the
//! list each subtracts the servers' weights; a draw picks the server at which it reaches 0
//! or less. So the first server has one chance more than its weight in `W + 1`, each other
//! its weight. The second choice wins only if `w2 × overhead1 > w1 × overhead2` (the kernel's
//! `int` arithmetic, wrapping), so ties keep the first.
//!
//! The picks are **not** the kernel's: the kernel draws from `prandom_u32()`, dr from a
//! splitmix64 generator seeded from the director's hash seed and the service, so a replay
//! is deterministic and two directors with the same seed draw alike. What matches the
//! kernel is the distribution of the picks, for any counts.
//!
//! Worked examples (list order): A(1), B(2), no connections: W = 3, draws 0 and 1 pick A,
//! 2 and 3 pick B, and with equal overheads the first draw stands: A and B half the time
//! each, not 1 : 2. With A at 1 active (overhead 256) and B idle, B also wins when drawn
//! second after A: B three times in four. Only A(0) and B(3) overloaded: no server.

use super::Dests;

/// The generator, one per service.
#[derive(Clone, Debug)]
pub(crate) struct Twos {
    state: u64,
}

impl Twos {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// splitmix64's next output, its high half.
    fn next_u32(&mut self) -> u32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 32) as u32
    }

    /// `ip_vs_twos_schedule`.
    pub(crate) fn schedule(&mut self, dests: &Dests<'_>) -> Option<usize> {
        let eligible = || dests.iter().filter(|(_, r)| r.is_usable() && r.weight > 0);
        let mut total: i32 = 0;
        let mut choice1 = None;
        for (p, real) in eligible() {
            total = total.wrapping_add(real.weight as i32);
            choice1 = Some(p);
        }
        choice1?;
        // The kernel's `prandom_u32() % total_weight`, `int` converted to unsigned.
        let total = total.wrapping_add(1) as u32;
        let mut r1 = self.next_u32().checked_rem(total).unwrap_or(0) as i32;
        let mut r2 = self.next_u32().checked_rem(total).unwrap_or(0) as i32;
        let (mut first, mut second) = (None::<(usize, i32, i32)>, None::<(usize, i32, i32)>);
        for (p, real) in eligible() {
            let w = real.weight as i32;
            r1 = r1.wrapping_sub(w);
            r2 = r2.wrapping_sub(w);
            if r1 <= 0 && first.is_none() {
                first = Some((p, w, real.overhead()));
            }
            if r2 <= 0 && second.is_none() {
                second = Some((p, w, real.overhead()));
            }
            if first.is_some() && second.is_some() {
                break;
            }
        }
        let (w1, oh1) = first.map_or((-1, 0), |(_, w, oh)| (w, oh));
        choice1 = first.map(|(p, ..)| p).or(choice1);
        if let Some((p2, w2, oh2)) = second
            && w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2)
        {
            choice1 = Some(p2);
        }
        choice1
    }
}

/// A service's generator seed: every bit of the director's seed, and the service.
pub(crate) fn seed(hash_seed: [u64; 4], service: usize) -> u64 {
    let [a, b, c, d] = hash_seed;
    let mut z = a ^ b.rotate_left(16) ^ c.rotate_left(32) ^ d.rotate_left(48);
    z ^= (service as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^ (z >> 27)
}
