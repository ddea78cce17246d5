//! A hashed timing wheel over intrusive circular lists, for connection expiry.
//!
//! Entries live in the table's slab and carry `prev`/`next` indices; indices at or above
//! `base` name the slots' sentinel nodes. Each entry sits in the slot of a *check tick* no
//! later than its expiry tick, so:
//!
//! - re-arming to a later expiry (every packet of a live flow) only stores the new expiry:
//!   no list operation, no other entry touched;
//! - re-arming to an earlier expiry (a state change to a shorter timeout) relinks;
//! - processing a slot expires the entries that are due and relinks the others to the slot
//!   of their real expiry.
//!
//! Work is proportional to the entries that expire or were re-armed, plus one look at each
//! long-lived idle entry per turn of the wheel; never a scan of the whole table.

use alloc::vec;
use alloc::vec::Vec;

/// The wheel's tick: one millisecond, like a kernel with HZ=1000. Expiry times are rounded
/// up to a whole tick.
pub(crate) const TICK_NANOS: u64 = 1_000_000;

/// No entry.
pub(crate) const NIL: u32 = u32::MAX;

/// The intrusive links every wheel entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl Link {
    pub(crate) const UNLINKED: Self = Self { prev: NIL, next: NIL };
}

/// Access to the links of the entries a wheel orders.
pub(crate) trait Linked {
    fn link(&self, id: u32) -> Link;
    fn set_link(&mut self, id: u32, link: Link);
}

/// The timing wheel: sentinels, an occupancy bitmap and the processing cursor.
#[derive(Debug)]
pub(crate) struct Wheel {
    sentinels: Vec<Link>,
    occupied: Vec<u64>,
    /// The index of the first sentinel: the table's capacity.
    base: u32,
    mask: u64,
    /// The next tick to process.
    cursor: u64,
    /// A lower bound on the tick of the earliest occupied slot at or after `cursor`.
    next_due: Option<u64>,
}

#[cfg(fuzzing)]
fuzzing_clone!(Wheel { sentinels, occupied, base, mask, cursor, next_due });

impl Wheel {
    /// A wheel of `slots` (a power of two) slots for entries with indices below `base`.
    pub(crate) fn new(base: u32, slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        let sentinels =
            (0..slots as u32).map(|s| Link { prev: base + s, next: base + s }).collect();
        Self {
            sentinels,
            occupied: vec![0; slots.div_ceil(64)],
            base,
            mask: slots as u64 - 1,
            cursor: 0,
            next_due: None,
        }
    }

    /// The number of slots.
    pub(crate) fn slots(&self) -> usize {
        self.sentinels.len()
    }

    fn get<L: Linked>(&self, nodes: &L, id: u32) -> Link {
        match id.checked_sub(self.base) {
            Some(s) => self.sentinels[s as usize],
            None => nodes.link(id),
        }
    }

    fn set<L: Linked>(&mut self, nodes: &mut L, id: u32, link: Link) {
        match id.checked_sub(self.base) {
            Some(s) => self.sentinels[s as usize] = link,
            None => nodes.set_link(id, link),
        }
    }

    /// Links entry `id` (currently unlinked) to the slot of `tick`.
    pub(crate) fn link<L: Linked>(&mut self, nodes: &mut L, id: u32, tick: u64) {
        let tick = tick.max(self.cursor);
        let slot = (tick & self.mask) as usize;
        let sentinel = self.base + slot as u32;
        let tail = self.sentinels[slot].prev;
        self.set(nodes, id, Link { prev: tail, next: sentinel });
        let mut tail_link = self.get(nodes, tail);
        tail_link.next = id;
        self.set(nodes, tail, tail_link);
        self.sentinels[slot].prev = id;
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.next_due = Some(self.next_due.map_or(tick, |due| due.min(tick)));
    }

    /// Unlinks entry `id` from whatever slot holds it.
    pub(crate) fn unlink<L: Linked>(&mut self, nodes: &mut L, id: u32) {
        let Link { prev, next } = nodes.link(id);
        if prev == NIL || next == NIL {
            return;
        }
        let mut p = self.get(nodes, prev);
        p.next = next;
        self.set(nodes, prev, p);
        let mut n = self.get(nodes, next);
        n.prev = prev;
        self.set(nodes, next, n);
        nodes.set_link(id, Link::UNLINKED);
        if let Some(slot) = prev.checked_sub(self.base)
            && self.sentinels[slot as usize].next == prev
        {
            let slot = slot as usize;
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// The earliest tick at which an entry may be due.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.next_due
    }

    /// Visits every entry in the slots due by `now_tick`, in tick order, and afterwards moves
    /// the cursor past `now_tick`. At most one full turn of slots is visited.
    ///
    /// `visit` gets each entry unlinked and decides its fate: `Some(tick)` relinks it to the
    /// slot of `tick`; `None` leaves it unlinked (the caller has freed it). The visitor sees
    /// only the entry it is given, so the chain being walked cannot change under it.
    pub(crate) fn advance<L: Linked>(
        &mut self,
        nodes: &mut L,
        now_tick: u64,
        mut visit: impl FnMut(&mut L, u32) -> Option<u64>,
    ) {
        if now_tick < self.cursor {
            return;
        }
        let last = self.cursor + (now_tick - self.cursor).min(self.mask);
        let mut tick = self.cursor;
        while let Some(due) = self.next_occupied(tick, last) {
            let slot = (due & self.mask) as usize;
            let sentinel = self.base + slot as u32;
            let mut id = self.sentinels[slot].next;
            // Detach the whole chain; entries relinked below start a fresh list here.
            self.sentinels[slot] = Link { prev: sentinel, next: sentinel };
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            while id != sentinel && id != NIL {
                let next = nodes.link(id).next;
                nodes.set_link(id, Link::UNLINKED);
                if let Some(relink) = visit(nodes, id) {
                    self.link(nodes, id, relink);
                }
                id = next;
            }
            tick = due + 1;
            if tick > last {
                break;
            }
        }
        self.cursor = now_tick.saturating_add(1);
        self.next_due = if self.occupied.iter().any(|w| *w != 0) {
            self.next_occupied(self.cursor, self.cursor.saturating_add(self.mask))
        } else {
            None
        };
    }

    /// The first tick in `from..=to` (at most one turn) whose slot is occupied.
    fn next_occupied(&self, from: u64, to: u64) -> Option<u64> {
        let mut tick = from;
        while tick <= to {
            let slot = (tick & self.mask) as usize;
            let word = self.occupied[slot / 64] >> (slot % 64);
            if word != 0 {
                let found = tick + u64::from(word.trailing_zeros());
                return (found <= to).then_some(found);
            }
            // Skip to the start of the next bitmap word (or wrap to slot 0).
            let step = 64 - (slot % 64) as u64;
            let step = step.min(self.mask + 1 - slot as u64);
            tick = tick.checked_add(step)?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Entries with an expiry tick, as the table keeps them.
    struct Nodes {
        links: Vec<Link>,
        expires: Vec<Option<u64>>,
    }

    impl Linked for Nodes {
        fn link(&self, id: u32) -> Link {
            self.links[id as usize]
        }
        fn set_link(&mut self, id: u32, link: Link) {
            self.links[id as usize] = link;
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Arm (or re-arm) entry `id` to expire `delay` ticks from now.
        Arm { id: usize, delay: u64 },
        /// Let time pass.
        Advance { ticks: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..32, 1u64..3_000).prop_map(|(id, delay)| Op::Arm { id, delay }),
            (0u64..2_000).prop_map(|ticks| Op::Advance { ticks }),
        ]
    }

    proptest! {
        /// Whatever the arms, re-arms (later or earlier) and advances, the wheel expires
        /// exactly the entries a naive model says are due, never one early or late.
        #[test]
        fn expires_exactly_what_is_due(ops in prop::collection::vec(op(), 1..200)) {
            const N: usize = 32;
            let mut nodes = Nodes { links: alloc::vec![Link::UNLINKED; N], expires: alloc::vec![None; N] };
            let mut wheel = Wheel::new(N as u32, 256);
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Arm { id, delay } => {
                        let at = now + delay;
                        // As the table does: a later expiry is one store, an earlier one relinks.
                        let relink = nodes.expires[id].is_none_or(|old| at < old);
                        nodes.expires[id] = Some(at);
                        if relink {
                            wheel.unlink(&mut nodes, id as u32);
                            wheel.link(&mut nodes, id as u32, at);
                        }
                    }
                    Op::Advance { ticks } => {
                        now += ticks;
                        let mut expired = Vec::new();
                        wheel.advance(&mut nodes, now, |nodes, id| {
                            let at = nodes.expires[id as usize].expect("linked entries are armed");
                            if at > now {
                                return Some(at);
                            }
                            nodes.expires[id as usize] = None;
                            expired.push(id);
                            None
                        });
                        for id in &expired {
                            prop_assert!(nodes.links[*id as usize] == Link::UNLINKED);
                        }
                        for (id, at) in nodes.expires.iter().enumerate() {
                            if let Some(at) = at {
                                prop_assert!(*at > now, "entry {} due at {} still armed at {}", id, at, now);
                                let due = wheel.next_due().expect("armed entries keep a due time");
                                prop_assert!(due <= *at, "next_due {} after an expiry at {}", due, at);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_wheel_has_nothing_due() {
        let mut nodes = Nodes { links: alloc::vec![Link::UNLINKED; 1], expires: alloc::vec![None] };
        let mut wheel = Wheel::new(1, 256);
        assert_eq!(wheel.next_due(), None);
        wheel.link(&mut nodes, 0, 10);
        assert_eq!(wheel.next_due(), Some(10));
        wheel.unlink(&mut nodes, 0);
        wheel.advance(&mut nodes, 100, |_, _| None);
        assert_eq!(wheel.next_due(), None);
    }
}
