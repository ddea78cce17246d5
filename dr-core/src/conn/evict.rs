//! The eviction queue: the entries a full table may give up for a new connection, in the
//! order they became evictable, as one intrusive list over the table's slots.
//!
//! An entry is evictable while nothing it carried shows that a client is behind it: a
//! connection from its creation until it is *proven* (see
//! [`ConnTable::prove`](super::ConnTable::prove)), a persistence template while it controls
//! no connection and none of its connections was proven. Every slot is linked at most once,
//! so an entry has exactly one place in the queue whatever a flood sends for it (a SYN
//! repeated, a reset, a forged ACK), and leaving the queue is O(1): no record goes stale,
//! none needs checking.

use super::wheel::{Link, NIL};
use alloc::vec;
use alloc::vec::Vec;

/// A circular doubly linked list over slots `0..capacity`, with its sentinel at `capacity`.
#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
pub(super) struct EvictionQueue {
    links: Vec<Link>,
    sentinel: u32,
}

impl EvictionQueue {
    /// An empty queue for slots below `capacity`.
    pub(super) fn new(capacity: u32) -> Self {
        let mut links = vec![Link::UNLINKED; capacity as usize + 1];
        links[capacity as usize] = Link { prev: capacity, next: capacity };
        Self { links, sentinel: capacity }
    }

    /// Whether `slot` is in the queue.
    pub(super) fn contains(&self, slot: u32) -> bool {
        self.links.get(slot as usize).is_some_and(|l| l.next != NIL)
    }

    /// Adds `slot` as the newest evictable entry; a slot already queued keeps its place.
    pub(super) fn push_back(&mut self, slot: u32) {
        if slot >= self.sentinel || self.contains(slot) {
            return;
        }
        let tail = self.links[self.sentinel as usize].prev;
        self.links[slot as usize] = Link { prev: tail, next: self.sentinel };
        self.links[tail as usize].next = slot;
        self.links[self.sentinel as usize].prev = slot;
    }

    /// Takes `slot` out of the queue, if it is in it.
    pub(super) fn remove(&mut self, slot: u32) {
        if slot >= self.sentinel || !self.contains(slot) {
            return;
        }
        let Link { prev, next } = self.links[slot as usize];
        self.links[prev as usize].next = next;
        self.links[next as usize].prev = prev;
        self.links[slot as usize] = Link::UNLINKED;
    }

    /// The oldest evictable entry, taken out of the queue.
    pub(super) fn pop_front(&mut self) -> Option<u32> {
        let head = self.links[self.sentinel as usize].next;
        if head == self.sentinel {
            return None;
        }
        self.remove(head);
        Some(head)
    }

    /// Bytes reserved.
    pub(super) fn allocation_size(&self) -> usize {
        self.links.capacity() * size_of::<Link>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push(u32),
        Remove(u32),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![(0u32..12).prop_map(Op::Push), (0u32..12).prop_map(Op::Remove), Just(Op::Pop),]
    }

    proptest! {
        /// The queue agrees with a naive list of unique slots in first-push order.
        #[test]
        fn agrees_with_a_list(ops in prop::collection::vec(op(), 1..300)) {
            let mut queue = EvictionQueue::new(12);
            let mut model: VecDeque<u32> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(s) => {
                        queue.push_back(s);
                        if !model.contains(&s) {
                            model.push_back(s);
                        }
                    }
                    Op::Remove(s) => {
                        queue.remove(s);
                        model.retain(|&m| m != s);
                    }
                    Op::Pop => prop_assert_eq!(queue.pop_front(), model.pop_front()),
                }
                for s in 0..12 {
                    prop_assert_eq!(queue.contains(s), model.contains(&s));
                }
            }
        }
    }

    #[test]
    fn out_of_range_slots_are_ignored() {
        let mut queue = EvictionQueue::new(2);
        queue.push_back(2);
        queue.push_back(u32::MAX);
        queue.remove(7);
        assert_eq!(queue.pop_front(), None);
    }
}
