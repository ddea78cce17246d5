//! The connection table's index: open addressing with linear probing over 64-bit cells,
//! each the high half of an entry's keyed hash (its *tag*) and its slab slot.
//!
//! Why not a general hash map: a lookup here is one cache line of cells whose address is
//! known from the hash alone, so a burst of lookups can load all of them at once
//! ([`Director::process_burst`](crate::Director::process_burst)); and with deletion by
//! backward shift there are no tombstones, so the index never needs rehashing, never
//! allocates after construction and never degrades under churn.
//!
//! The index has at least twice as many cells as the table has slots, so it is at most half
//! full: probes are short and an empty cell always ends them.

use alloc::vec;
use alloc::vec::Vec;

/// An empty cell. No real cell equals it: slots are below `MAX_CAPACITY` (2^30).
const EMPTY: u64 = u64::MAX;

/// The index: `cells.len()` is a power of two, at least twice the table's capacity.
#[derive(Debug)]
pub(crate) struct Index {
    cells: Vec<u64>,
    mask: usize,
}

/// The tag of a hash: its high 32 bits. The home cell follows from the tag alone, so an
/// entry can be moved during deletion without its key.
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

#[cfg(fuzzing)]
fuzzing_clone!(Index { cells, mask });

impl Index {
    /// An index for up to `capacity` entries (`capacity` ≤ 2^30).
    pub(crate) fn new(capacity: usize) -> Self {
        let cells = (capacity * 2).next_power_of_two().max(8);
        Self { cells: vec![EMPTY; cells], mask: cells - 1 }
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// The slots whose tags match `hash`, in probe order: the entry with the key, if there
    /// is one, is among them.
    #[inline(always)]
    pub(crate) fn candidates(&self, hash: u64) -> Candidates<'_> {
        let tag = tag(hash);
        // The index is never full, so an empty cell ends the probe; the bound is for proof.
        Candidates { index: self, tag, at: self.home(tag), left: self.cells.len() }
    }

    /// The slot of the first entry with this hash that `is_it` accepts.
    #[cfg(test)]
    pub(crate) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        self.candidates(hash).find(|&slot| is_it(slot))
    }

    /// The slot of the first entry whose tag matches the hash: most likely the entry with
    /// the key, and the one worth loading ahead of the real lookup.
    #[inline(always)]
    pub(crate) fn likely(&self, hash: u64) -> Option<u32> {
        self.candidates(hash).next()
    }

    /// The cell a lookup of `hash` starts at (to load it ahead of the lookup).
    pub(crate) fn home_cell(&self, hash: u64) -> &u64 {
        &self.cells[self.home(tag(hash))]
    }

    /// Adds `slot` under `hash`. The caller keeps at most half the cells full.
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        let tag = tag(hash);
        let mut at = self.home(tag);
        for _ in 0..self.cells.len() {
            if self.cells[at] == EMPTY {
                self.cells[at] = u64::from(tag) << 32 | u64::from(slot);
                return;
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Removes `slot`, filed under `hash`; false if it is not there.
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let tag = tag(hash);
        let mut at = self.home(tag);
        let want = u64::from(tag) << 32 | u64::from(slot);
        for _ in 0..self.cells.len() {
            let cell = self.cells[at];
            if cell == EMPTY {
                return false;
            }
            if cell == want {
                self.close_gap(at);
                return true;
            }
            at = (at + 1) & self.mask;
        }
        false
    }

    /// Empties cell `gap` and shifts back the entries after it that may move, so every entry
    /// stays reachable from its home without crossing an empty cell (no tombstones).
    fn close_gap(&mut self, mut gap: usize) {
        self.cells[gap] = EMPTY;
        let mut at = gap;
        for _ in 0..self.cells.len() {
            at = (at + 1) & self.mask;
            let cell = self.cells[at];
            if cell == EMPTY {
                return;
            }
            let home = self.home((cell >> 32) as u32);
            // The entry stays if its home lies cyclically in (gap, at].
            let stays = if gap <= at { gap < home && home <= at } else { gap < home || home <= at };
            if !stays {
                self.cells[gap] = cell;
                self.cells[at] = EMPTY;
                gap = at;
            }
        }
    }

    /// Every slot in the index, in no particular order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.cells.iter().filter(|&&c| c != EMPTY).map(|&c| c as u32)
    }

    /// The number of cells.
    #[cfg(test)]
    pub(crate) fn cells(&self) -> usize {
        self.cells.len()
    }

    /// Bytes reserved.
    pub(crate) fn allocation_size(&self) -> usize {
        self.cells.capacity() * size_of::<u64>()
    }
}

/// The probe of one hash through the index: see [`Index::candidates`].
#[derive(Debug)]
pub(crate) struct Candidates<'a> {
    index: &'a Index,
    tag: u32,
    at: usize,
    left: usize,
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        while self.left > 0 {
            self.left -= 1;
            let cell = self.index.cells[self.at];
            if cell == EMPTY {
                self.left = 0;
                return None;
            }
            self.at = (self.at + 1) & self.index.mask;
            if (cell >> 32) as u32 == self.tag {
                return Some(cell as u32);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct home cells, so clusters form, wrap around the end and collide.
        let hash = (0u64..64, any::<u32>()).prop_map(|(high, low)| high << 32 | u64::from(low));
        prop_oneof![hash.prop_map(Op::Insert), any::<usize>().prop_map(Op::Remove)]
    }

    proptest! {
        /// Whatever the inserts and removals, the index finds exactly the slots a map holds,
        /// under their own hashes.
        #[test]
        fn agrees_with_a_map(ops in prop::collection::vec(op(), 1..300)) {
            const CAPACITY: usize = 16;
            let mut index = Index::new(CAPACITY);
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Insert(hash) if model.len() < CAPACITY => {
                        index.insert(hash, next);
                        model.insert(next, hash);
                        next += 1;
                    }
                    Op::Insert(_) => {}
                    Op::Remove(pick) => {
                        let Some((&slot, &hash)) = model.iter().nth(pick % model.len().max(1)) else {
                            continue;
                        };
                        prop_assert!(index.remove(hash, slot));
                        prop_assert!(!index.remove(hash, slot));
                        model.remove(&slot);
                    }
                }
                for (&slot, &hash) in &model {
                    prop_assert_eq!(index.find(hash, |s| s == slot), Some(slot));
                }
                let mut slots: Vec<u32> = index.slots().collect();
                slots.sort_unstable();
                prop_assert_eq!(slots, model.keys().copied().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_missing_key_ends_at_an_empty_cell() {
        let mut index = Index::new(4);
        assert_eq!(index.cells(), 8);
        index.insert(7 << 32, 0);
        index.insert(7 << 32, 1);
        assert_eq!(index.find(7 << 32, |s| s == 1), Some(1));
        assert_eq!(index.find(7 << 32, |s| s == 2), None);
        assert_eq!(index.likely(7 << 32), Some(0));
        assert_eq!(index.likely(3 << 32), None);
        assert!(!index.remove(3 << 32, 0));
    }
}
