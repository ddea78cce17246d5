//! The connection table: a slab of fixed capacity, a hashbrown index over it and the timing
//! wheel that expires its entries.

use super::state::ConnState;
use super::wheel::{Link, Linked, NIL, TICK_NANOS, Wheel};
use crate::flow::FlowKey;
use crate::service::{RealId, ServiceId};
use crate::time::Instant;
use alloc::vec::Vec;
use hashbrown::HashTable;

/// The largest capacity a table accepts (indices are 32-bit, and sentinels follow them).
pub const MAX_CAPACITY: usize = 1 << 30;

/// The entry is counted in its real server's inactive connections (IPVS's
/// `IP_VS_CONN_F_INACTIVE`).
pub(crate) const FLAG_INACTIVE: u8 = 0x01;

/// One connection entry: Katran's "which real, and until when", plus IPVS's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn {
    pub(crate) key: FlowKey,
    pub(crate) expires: Instant,
    link: Link,
    pub(crate) real: RealId,
    pub(crate) service: ServiceId,
    pub(crate) state: ConnState,
    pub(crate) flags: u8,
}

impl Conn {
    /// A new entry as `ip_vs_conn_new` makes it: state NONE, flagged inactive.
    pub(crate) fn new(key: FlowKey, service: ServiceId, real: RealId) -> Self {
        Self {
            key,
            expires: Instant::ZERO,
            link: Link::UNLINKED,
            real,
            service,
            state: ConnState::None,
            flags: FLAG_INACTIVE,
        }
    }

    pub(crate) fn is_inactive(&self) -> bool {
        self.flags & FLAG_INACTIVE != 0
    }
}

/// A handle to a live entry, valid until the entry is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnId(u32);

#[derive(Debug)]
struct Slab {
    entries: Vec<Conn>,
    /// Free entries, chained through `link.next`.
    free: u32,
}

impl Linked for Slab {
    fn link(&self, id: u32) -> Link {
        self.entries[id as usize].link
    }
    fn set_link(&mut self, id: u32, link: Link) {
        self.entries[id as usize].link = link;
    }
}

/// The tick an expiry time falls in (expiry times are whole ticks).
fn tick_of(instant: Instant) -> u64 {
    instant.as_nanos() / TICK_NANOS
}

/// `now + timeout`, rounded up to a whole tick.
pub(crate) fn expiry(now: Instant, timeout: core::time::Duration) -> Instant {
    let at = now.saturating_add(timeout).as_nanos();
    let ticks = at / TICK_NANOS + u64::from(!at.is_multiple_of(TICK_NANOS));
    // At the end of time, the last whole tick.
    Instant::from_nanos(ticks.min(u64::MAX / TICK_NANOS) * TICK_NANOS)
}

/// The connection table.
///
/// All memory is reserved at construction: the slab holds `capacity` entries and the index
/// is sized for twice that, so hashbrown's tombstone clean-up always rehashes in place and
/// never allocates.
pub(crate) struct ConnTable {
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    slab: Slab,
    wheel: Wheel,
    capacity: u32,
    len: u32,
}

impl core::fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("wheel_slots", &self.wheel.slots())
            .field("next_expiry", &self.next_expiry())
            .finish_non_exhaustive()
    }
}

impl ConnTable {
    /// A table of `capacity` entries (1 ..= [`MAX_CAPACITY`]) hashed with `seed`.
    pub(crate) fn new(capacity: usize, seed: [u64; 4]) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let slots = capacity.next_power_of_two().clamp(256, 1 << 16);
        Self {
            index: HashTable::with_capacity(capacity * 2),
            hasher: ahash::RandomState::with_seeds(seed[0], seed[1], seed[2], seed[3]),
            slab: Slab { entries: Vec::with_capacity(capacity), free: NIL },
            wheel: Wheel::new(capacity as u32, slots),
            capacity: capacity as u32,
            len: 0,
        }
    }

    /// The number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The fixed capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// The keyed hash of a flow.
    pub(crate) fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn find(&self, hash: u64, key: &FlowKey) -> Option<ConnId> {
        let entries = &self.slab.entries;
        self.index.find(hash, |&i| entries[i as usize].key == *key).map(|&i| ConnId(i))
    }

    pub(crate) fn get(&self, id: ConnId) -> &Conn {
        &self.slab.entries[id.0 as usize]
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> &mut Conn {
        &mut self.slab.entries[id.0 as usize]
    }

    /// Inserts `conn`, or gives it back when the table is full. The caller has checked that
    /// the key is not present, and arms the timer with [`rearm`](Self::rearm) before it
    /// returns to its caller: until then the entry is in no timer slot.
    pub(crate) fn insert(&mut self, hash: u64, mut conn: Conn) -> Result<ConnId, Conn> {
        let id = if self.slab.free != NIL {
            let id = self.slab.free;
            self.slab.free = self.slab.entries[id as usize].link.next;
            id
        } else if self.slab.entries.len() < self.capacity as usize {
            self.slab.entries.push(conn);
            (self.slab.entries.len() - 1) as u32
        } else {
            return Err(conn);
        };
        conn.expires = Instant::ZERO;
        conn.link = Link::UNLINKED;
        self.slab.entries[id as usize] = conn;
        let entries = &self.slab.entries;
        self.index.insert_unique(hash, id, |&i| self.hasher.hash_one(entries[i as usize].key));
        self.len += 1;
        Ok(ConnId(id))
    }

    /// Arms or re-arms the entry's timer to `expires` (from [`expiry`]). A later expiry is
    /// one store: the entry stays in its earlier slot and moves when that slot comes up.
    pub(crate) fn rearm(&mut self, id: ConnId, expires: Instant) {
        let entry = &mut self.slab.entries[id.0 as usize];
        let relink = expires < entry.expires || entry.link == Link::UNLINKED;
        entry.expires = expires;
        if relink {
            self.wheel.unlink(&mut self.slab, id.0);
            self.wheel.link(&mut self.slab, id.0, tick_of(expires));
        }
    }

    /// Removes a live entry and returns it.
    pub(crate) fn remove(&mut self, id: ConnId) -> Conn {
        self.wheel.unlink(&mut self.slab, id.0);
        let conn = self.slab.entries[id.0 as usize];
        let hash = self.hasher.hash_one(conn.key);
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == id.0) {
            entry.remove();
        }
        self.release(id.0);
        conn
    }

    fn release(&mut self, id: u32) {
        self.slab.entries[id as usize].link = Link { prev: NIL, next: self.slab.free };
        self.slab.free = id;
        self.len -= 1;
    }

    /// Removes every entry `doomed` selects, handing each to `on_remove` first. A scan of the
    /// whole table: for configuration changes, never the packet path.
    pub(crate) fn remove_where(
        &mut self,
        doomed: impl Fn(&Conn) -> bool,
        mut on_remove: impl FnMut(&Conn),
    ) {
        let ids: Vec<u32> = self
            .index
            .iter()
            .copied()
            .filter(|&i| doomed(&self.slab.entries[i as usize]))
            .collect();
        for id in ids {
            let conn = self.remove(ConnId(id));
            on_remove(&conn);
        }
    }

    /// The earliest time an entry may expire.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.wheel.next_due().map(|tick| Instant::from_nanos(tick.saturating_mul(TICK_NANOS)))
    }

    /// Removes every entry whose expiry is at or before `now`, handing each to `on_expire`
    /// before it goes.
    pub(crate) fn expire(&mut self, now: Instant, mut on_expire: impl FnMut(&Conn)) {
        let Self { index, hasher, slab, wheel, len, .. } = self;
        wheel.advance(slab, tick_of(now), |slab, id| {
            let conn = &slab.entries[id as usize];
            if conn.expires > now {
                return Some(tick_of(conn.expires));
            }
            on_expire(conn);
            let hash = hasher.hash_one(conn.key);
            if let Ok(entry) = index.find_entry(hash, |&i| i == id) {
                entry.remove();
            }
            slab.entries[id as usize].link = Link { prev: NIL, next: slab.free };
            slab.free = id;
            *len -= 1;
            None
        });
    }

    /// Every live entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Conn> + '_ {
        self.index.iter().map(|&i| &self.slab.entries[i as usize])
    }

    /// The number of wheel slots (for memory accounting).
    pub(crate) fn wheel_slots(&self) -> usize {
        self.wheel.slots()
    }

    /// Bytes reserved for the table.
    pub(crate) fn reserved_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.slab.entries.capacity() * size_of::<Conn>()
            + self.wheel_slots() * (size_of::<Link>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_fits_a_cache_line() {
        assert!(size_of::<Conn>() <= 64, "Conn is {} bytes", size_of::<Conn>());
    }

    #[test]
    fn the_index_never_needs_to_grow() {
        // hashbrown rehashes in place (no allocation) while items <= full capacity / 2.
        let table = ConnTable::new(1000, [1, 2, 3, 4]);
        assert!(table.index.capacity() >= 2 * table.capacity());
    }

    #[test]
    fn expiry_rounds_up_to_whole_ticks() {
        let now = Instant::from_nanos(1_000_000_001);
        assert_eq!(expiry(now, core::time::Duration::from_secs(1)), Instant::from_millis(2_001));
        assert_eq!(
            expiry(Instant::from_secs(1), core::time::Duration::from_secs(1)),
            Instant::from_secs(2)
        );
        assert_eq!(
            expiry(Instant::MAX, core::time::Duration::from_secs(1)).as_nanos() % TICK_NANOS,
            0
        );
    }
}
