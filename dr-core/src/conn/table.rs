//! The connection table: a slab of fixed capacity, an index over it and the timing wheel
//! that expires its entries.

use super::index::Index;
use super::state::ConnState;
use super::wheel::{Link, Linked, NIL, TICK_NANOS, Wheel};
use crate::flow::FlowKey;
use crate::service::RealId;
use crate::time::{Duration, Instant};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::{BuildHasher, Hash, Hasher};

/// The largest capacity a table accepts (indices are 32-bit, and sentinels follow them).
pub const MAX_CAPACITY: usize = 1 << 30;

/// The entry is counted in its real server's inactive connections (IPVS's
/// `IP_VS_CONN_F_INACTIVE`).
pub(crate) const FLAG_INACTIVE: u8 = 0x01;
/// The entry is a persistence template (`IP_VS_CONN_F_TEMPLATE`).
pub(crate) const FLAG_TEMPLATE: u8 = 0x02;
/// A template one of whose connections reached ESTABLISHED (`ASSURED` in listings).
pub(crate) const FLAG_ASSURED: u8 = 0x04;
/// A template that outlived its timeout while it controlled connections: like the kernel's
/// `expire_later`, its timeout is 60 s from then on.
pub(crate) const FLAG_EXPIRE_LATER: u8 = 0x08;
/// A template found invalid: re-keyed to port 65535 so no lookup finds it again, left to
/// expire (`ip_vs_check_template`).
pub(crate) const FLAG_RETIRED: u8 = 0x10;
/// The slot is free.
const FLAG_FREE: u8 = 0x80;

/// How long a template that still controls connections lives on past its timeout, each time
/// it comes up (`ip_vs_conn_expire`: `cp->timeout = 60*HZ`).
pub(crate) const TEMPLATE_EXPIRE_LATER: Duration = Duration::from_secs(60);

/// "No template": the `tie` of a connection not controlled by one.
pub(crate) const NO_TEMPLATE: u32 = NIL;

/// One connection entry: Katran's "which real, and until when", plus IPVS's state. Exactly
/// one cache line, and aligned to one, so a lookup touches one line of the slab.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub(crate) struct Conn {
    pub(crate) key: FlowKey,
    pub(crate) expires: Instant,
    link: Link,
    /// A connection: the slot of the template that controls it, or [`NO_TEMPLATE`]
    /// (`cp->control`). A template: how many connections it controls (`cp->n_control`).
    pub(crate) tie: u32,
    pub(crate) real: RealId,
    pub(crate) state: ConnState,
    pub(crate) flags: u8,
}

impl Conn {
    /// A new entry as `ip_vs_conn_new` makes it: state NONE, flagged inactive.
    pub(crate) fn new(key: FlowKey, real: RealId) -> Self {
        Self {
            key,
            expires: Instant::ZERO,
            link: Link::UNLINKED,
            tie: NO_TEMPLATE,
            real,
            state: ConnState::None,
            flags: FLAG_INACTIVE,
        }
    }

    /// A persistence template: client port 0, controlling nothing yet, counted in neither
    /// active nor inactive connections.
    pub(crate) fn template(key: FlowKey, real: RealId) -> Self {
        Self { tie: 0, flags: FLAG_TEMPLATE, ..Self::new(key, real) }
    }

    pub(crate) fn is_inactive(&self) -> bool {
        self.flags & FLAG_INACTIVE != 0
    }

    pub(crate) fn is_template(&self) -> bool {
        self.flags & FLAG_TEMPLATE != 0
    }

    /// The template slot that controls this connection, if one does.
    pub(crate) fn template_slot(&self) -> Option<ConnId> {
        (!self.is_template() && self.tie != NO_TEMPLATE).then_some(ConnId(self.tie))
    }

    /// A TCP connection waiting for the client's ACK: what a SYN flood leaves behind.
    fn is_half_open(&self) -> bool {
        self.state == ConnState::SynRecv && self.flags & (FLAG_TEMPLATE | FLAG_FREE) == 0
    }
}

/// A handle to a live entry, valid until the entry is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnId(u32);

impl ConnId {
    /// The slot, as a template's connections record it.
    pub(crate) fn slot(self) -> u32 {
        self.0
    }
}

/// A half-open entry in the order it was opened, with the expiry it had then: an entry whose
/// expiry moved since has seen another packet, and a reused slot has another expiry.
#[derive(Clone, Copy, Debug)]
struct HalfOpen {
    slot: u32,
    expires_tick: u32,
}

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
pub(crate) fn expiry(now: Instant, timeout: Duration) -> Instant {
    let at = now.saturating_add(timeout).as_nanos();
    let ticks = at / TICK_NANOS + u64::from(!at.is_multiple_of(TICK_NANOS));
    // At the end of time, the last whole tick.
    Instant::from_nanos(ticks.min(u64::MAX / TICK_NANOS) * TICK_NANOS)
}

/// The connection table.
///
/// All memory is reserved at construction: the slab holds `capacity` entries and the index
/// at least twice as many cells, so it never grows.
pub(crate) struct ConnTable {
    index: Index,
    hasher: ahash::RandomState,
    slab: Slab,
    wheel: Wheel,
    /// Half-open TCP entries, oldest first: the first to give way when the table is full.
    half_open: VecDeque<HalfOpen>,
    capacity: u32,
    len: u32,
    templates: u32,
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

/// A copy reserves what the original reserved, so that it never allocates either; a copy
/// into an existing table reuses its buffers. For the fuzz targets: see `fuzzing_clone!`.
#[cfg(fuzzing)]
impl Clone for ConnTable {
    fn clone(&self) -> Self {
        let Self { index, hasher, slab, wheel, half_open, capacity, len, templates } = self;
        let mut entries = Vec::with_capacity(slab.entries.capacity());
        entries.extend_from_slice(&slab.entries);
        let mut queue = VecDeque::with_capacity(half_open.capacity());
        queue.extend(half_open.iter().copied());
        Self {
            index: index.clone(),
            hasher: hasher.clone(),
            slab: Slab { entries, free: slab.free },
            wheel: wheel.clone(),
            half_open: queue,
            capacity: *capacity,
            len: *len,
            templates: *templates,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let Self { index, hasher, slab, wheel, half_open, capacity, len, templates } = self;
        index.clone_from(&source.index);
        hasher.clone_from(&source.hasher);
        let Slab { entries, free } = slab;
        entries.clone_from(&source.slab.entries);
        *free = source.slab.free;
        wheel.clone_from(&source.wheel);
        half_open.clone_from(&source.half_open);
        *capacity = source.capacity;
        *len = source.len;
        *templates = source.templates;
    }
}

impl ConnTable {
    /// A table of `capacity` entries (1 ..= [`MAX_CAPACITY`]) hashed with `seed`.
    pub(crate) fn new(capacity: usize, seed: [u64; 4]) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let slots = capacity.next_power_of_two().clamp(256, 1 << 16);
        Self {
            index: Index::new(capacity),
            hasher: crate::hashing::keyed(seed, 0),
            slab: Slab { entries: Vec::with_capacity(capacity), free: NIL },
            wheel: Wheel::new(capacity as u32, slots),
            half_open: VecDeque::with_capacity(capacity),
            capacity: capacity as u32,
            len: 0,
            templates: 0,
        }
    }

    /// The number of live persistence templates.
    pub(crate) fn templates(&self) -> usize {
        self.templates as usize
    }

    /// Free slots.
    pub(crate) fn free(&self) -> usize {
        (self.capacity - self.len) as usize
    }

    /// The number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The fixed capacity.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The keyed hash of a flow.
    #[inline(always)]
    #[expect(
        clippy::manual_hash_one,
        reason = "ahash's hash_one is not inlined into the packet path; this is"
    )]
    pub(crate) fn hash(&self, key: &FlowKey) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        key.hash(&mut hasher);
        hasher.finish()
    }

    /// The connection with this key (`template = false`) or the live template with this key
    /// (`template = true`); retired templates are never found.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, key: &FlowKey, template: bool) -> Option<ConnId> {
        let flags = if template { FLAG_TEMPLATE } else { 0 };
        for slot in self.index.candidates(hash) {
            let e = &self.slab.entries[slot as usize];
            if e.key == *key && e.flags & (FLAG_TEMPLATE | FLAG_RETIRED) == flags {
                return Some(ConnId(slot));
            }
        }
        None
    }

    /// Starts loading the index cell a lookup of `hash` begins at.
    pub(crate) fn prefetch_index(&self, hash: u64) {
        crate::prefetch::prefetch(self.index.home_cell(hash));
    }

    /// Starts loading the entry a lookup of `hash` most likely ends at (best once its index
    /// cell is in the cache: finding it reads the index).
    pub(crate) fn prefetch_entry(&self, hash: u64) {
        if let Some(entry) = self.index.likely(hash).and_then(|i| self.slab.entries.get(i as usize))
        {
            crate::prefetch::prefetch(entry);
        }
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
        if let Some(template) = conn.template_slot() {
            let t = &mut self.slab.entries[template.0 as usize];
            t.tie = t.tie.saturating_add(1);
        }
        self.templates += u32::from(conn.is_template());
        self.slab.entries[id as usize] = conn;
        self.index.insert(hash, id);
        self.len += 1;
        Ok(ConnId(id))
    }

    /// Retires an invalid template (`ip_vs_check_template`): re-keyed with port 65535 so no
    /// lookup finds it again, it lives on until it expires, still counted.
    pub(crate) fn retire(&mut self, id: ConnId) {
        unindex(&mut self.index, &self.hasher, self.slab.entries[id.0 as usize].key, id.0);
        let conn = &mut self.slab.entries[id.0 as usize];
        conn.key.vip_port = u16::MAX;
        conn.flags |= FLAG_RETIRED;
        self.index.insert(self.hasher.hash_one(conn.key), id.0);
    }

    /// Records that the entry has just become half-open (a SYN moved it to SYN_RECV), after
    /// its timer was armed. When the queue is full the oldest record is forgotten: its entry
    /// then only expires.
    pub(crate) fn note_half_open(&mut self, id: ConnId) {
        if self.half_open.len() >= self.capacity as usize {
            self.half_open.pop_front();
        }
        let tick = tick_of(self.slab.entries[id.0 as usize].expires) as u32;
        self.half_open.push_back(HalfOpen { slot: id.0, expires_tick: tick });
    }

    /// Removes the oldest entry that is still half-open, as it was when recorded, and returns
    /// it; `None` when no such entry is left. Amortised O(1): each record is looked at once.
    pub(crate) fn evict_half_open(&mut self) -> Option<Conn> {
        while let Some(record) = self.half_open.pop_front() {
            let conn = &self.slab.entries[record.slot as usize];
            if conn.is_half_open() && tick_of(conn.expires) as u32 == record.expires_tick {
                return Some(self.remove(ConnId(record.slot)));
            }
        }
        None
    }

    /// Arms or re-arms the entry's timer to `expires` (from [`expiry`]). A later expiry is
    /// one store: the entry stays in its earlier slot and moves when that slot comes up.
    #[inline(always)]
    pub(crate) fn rearm(&mut self, id: ConnId, expires: Instant) {
        let entry = &mut self.slab.entries[id.0 as usize];
        let relink = expires < entry.expires || entry.link == Link::UNLINKED;
        entry.expires = expires;
        if relink {
            self.relink(id, expires);
        }
    }

    /// Moves an entry to the wheel slot of an expiry earlier than the slot it is in, or
    /// links it for the first time.
    #[inline(never)]
    fn relink(&mut self, id: ConnId, expires: Instant) {
        self.wheel.unlink(&mut self.slab, id.0);
        self.wheel.link(&mut self.slab, id.0, tick_of(expires));
    }

    /// Removes a live entry and returns it. A template must control nothing any more.
    pub(crate) fn remove(&mut self, id: ConnId) -> Conn {
        self.wheel.unlink(&mut self.slab, id.0);
        let conn = self.slab.entries[id.0 as usize];
        unindex(&mut self.index, &self.hasher, conn.key, id.0);
        free_slot(&mut self.slab, &mut self.len, &mut self.templates, id.0);
        conn
    }

    /// Removes every entry `doomed` selects, handing each to `on_remove` first. A scan of the
    /// whole table: for configuration changes, never the packet path.
    ///
    /// Connections go before templates, so a template whose connections all go is removed
    /// with them; a template that still controls a connection that stays is kept.
    pub(crate) fn remove_where(
        &mut self,
        doomed: impl Fn(&Conn) -> bool,
        mut on_remove: impl FnMut(&Conn),
    ) {
        let mut ids: Vec<u32> =
            self.index.slots().filter(|&i| doomed(&self.slab.entries[i as usize])).collect();
        ids.sort_by_key(|&i| self.slab.entries[i as usize].is_template());
        for id in ids {
            let conn = &self.slab.entries[id as usize];
            if conn.is_template() && conn.tie > 0 {
                continue;
            }
            let conn = self.remove(ConnId(id));
            on_remove(&conn);
        }
    }

    /// The earliest time an entry may expire.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.wheel.next_due().map(|tick| Instant::from_nanos(tick.saturating_mul(TICK_NANOS)))
    }

    /// Removes every entry whose expiry is at or before `now`, handing each to `on_expire`
    /// before it goes. A template that still controls connections is not removed but
    /// re-armed for [`TEMPLATE_EXPIRE_LATER`], as `ip_vs_conn_expire` does.
    ///
    /// The wheel hands entries over slot by slot, not in time order, so a due template that
    /// still controls connections is decided only after the pass, once every connection due
    /// by `now` is gone: only those still live keep it, as in the kernel, whose timers fire
    /// in time order. (Beyond [`DEFERRED_TEMPLATES`] such templates in one call, the rest
    /// are decided on the spot.)
    pub(crate) fn expire(&mut self, now: Instant, mut on_expire: impl FnMut(&Conn)) {
        let mut deferred = heapless::Vec::<u32, DEFERRED_TEMPLATES>::new();
        let Self { index, hasher, slab, wheel, len, templates, .. } = self;
        wheel.advance(slab, tick_of(now), |slab, id| {
            let conn = &mut slab.entries[id as usize];
            if conn.expires > now {
                return Some(tick_of(conn.expires));
            }
            if conn.is_template() && conn.tie > 0 {
                if deferred.push(id).is_ok() {
                    return None;
                }
                return Some(expire_later(conn, now));
            }
            on_expire(conn);
            unindex(index, hasher, conn.key, id);
            free_slot(slab, len, templates, id);
            None
        });
        for id in deferred {
            let conn = &mut slab.entries[id as usize];
            if conn.tie > 0 {
                let tick = expire_later(conn, now);
                wheel.link(slab, id, tick);
            } else {
                on_expire(conn);
                unindex(index, hasher, conn.key, id);
                free_slot(slab, len, templates, id);
            }
        }
    }

    /// Every live entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Conn> + '_ {
        self.index.slots().map(|i| &self.slab.entries[i as usize])
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
            + self.half_open.capacity() * size_of::<HalfOpen>()
    }
}

/// How many due templates one [`ConnTable::expire`] call decides after its pass.
const DEFERRED_TEMPLATES: usize = 64;

/// `expire_later`: a template that still controls connections lives 60 s past the time its
/// timer fired (its expiry), or until the next tick if that is already past; its timeout
/// is 60 s from then on. Returns the tick to link it at.
fn expire_later(template: &mut Conn, now: Instant) -> u64 {
    let later = expiry(template.expires, TEMPLATE_EXPIRE_LATER);
    template.expires = later.max(expiry(now, Duration::from_nanos(1)));
    template.flags |= FLAG_EXPIRE_LATER;
    tick_of(template.expires)
}

/// Takes an entry out of the index.
fn unindex(index: &mut Index, hasher: &ahash::RandomState, key: FlowKey, id: u32) {
    index.remove(hasher.hash_one(key), id);
}

/// Returns an unlinked slot to the free list, and a connection's place in its template.
fn free_slot(slab: &mut Slab, len: &mut u32, templates: &mut u32, id: u32) {
    let conn = slab.entries[id as usize];
    if let Some(template) = conn.template_slot() {
        let t = &mut slab.entries[template.0 as usize];
        t.tie = t.tie.saturating_sub(1);
    }
    *templates -= u32::from(conn.is_template());
    let entry = &mut slab.entries[id as usize];
    entry.flags = FLAG_FREE;
    entry.link = Link { prev: NIL, next: slab.free };
    slab.free = id;
    *len -= 1;
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
        // At most half the cells are ever full, so probes end at an empty cell.
        let table = ConnTable::new(1000, [1, 2, 3, 4]);
        assert!(table.index.cells() >= 2 * table.capacity());
    }

    #[test]
    fn expiry_rounds_up_to_whole_ticks() {
        let now = Instant::from_nanos(1_000_000_001);
        assert_eq!(expiry(now, Duration::from_secs(1)), Instant::from_millis(2_001));
        assert_eq!(expiry(Instant::from_secs(1), Duration::from_secs(1)), Instant::from_secs(2));
        assert_eq!(expiry(Instant::MAX, Duration::from_secs(1)).as_nanos() % TICK_NANOS, 0);
    }
}
