//! Keyed hashing for every table a client's packets can steer (HashDoS).
//!
//! The hasher for ahash's portable fallback is keyed by only two of the four seed words
//! given to `RandomState::with_seeds` when it hashes integers, so each key word here is
//! mixed from all four seed words: a change in any bit of the seed changes every layout.

/// The keyed hasher for one of the director's tables; `table` tells the tables apart, so
/// that flows colliding in one do not collide in another.
pub(crate) fn keyed(seed: [u64; 4], table: u64) -> ahash::RandomState {
    let [a, b, c, d] = seed;
    let mix = |x: u64, y: u64, z: u64| {
        // splitmix64's finaliser over the three words: every input bit reaches every output.
        let mut v =
            x ^ y.rotate_left(21) ^ z.rotate_left(42) ^ table.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        v = (v ^ (v >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        v = (v ^ (v >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        v ^ (v >> 31)
    };
    ahash::RandomState::with_seeds(mix(a, c, d), mix(b, d, c), mix(c, a, b), mix(d, b, a))
}

#[cfg(test)]
mod tests {
    use super::keyed;

    #[test]
    fn every_seed_word_and_the_table_change_the_hash() {
        let base = keyed([1, 2, 3, 4], 0).hash_one(42u64);
        for seed in [[0, 2, 3, 4], [1, 0, 3, 4], [1, 2, 0, 4], [1, 2, 3, 0]] {
            assert_ne!(keyed(seed, 0).hash_one(42u64), base, "{seed:?}");
        }
        assert_ne!(keyed([1, 2, 3, 4], 1).hash_one(42u64), base);
        assert_eq!(keyed([1, 2, 3, 4], 0).hash_one(42u64), base);
    }
}
