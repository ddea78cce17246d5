//! The connection table: a slab of fixed capacity, an index over it, the timing wheel that
//! expires its entries and the queue of entries a full table may evict.

use super::evict::EvictionQueue;
use super::index::Index;
use super::state::ConnState;
use super::wheel::{Link, Linked, NIL, TICK_NANOS, Wheel};
use crate::flow::FlowKey;
use crate::service::RealId;
use crate::sync::export::SyncMeta;
use crate::time::{Duration, Instant};
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
/// Proven: a connection that carried what only a real client sends (see
/// [`ConnTable::prove`]), or a template one of whose connections did. Never evicted.
pub(crate) const FLAG_PROVEN: u8 = 0x20;
/// A template a new connection is about to be tied to: not evictable meanwhile (see
/// [`ConnTable::hold`]).
const FLAG_HELD: u8 = 0x40;
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
    /// Two meanings in one word, read through their own names: for a connection, the slot
    /// of the template that controls it or [`NO_TEMPLATE`] ([`Conn::controller`],
    /// `cp->control`); for a template, how many connections it controls
    /// ([`Conn::controlled`], `cp->n_control`).
    tie: u32,
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

    /// A new connection controlled by the persistence template in slot `template`.
    pub(crate) fn controlled_by(key: FlowKey, real: RealId, template: ConnId) -> Self {
        Self { tie: template.0, ..Self::new(key, real) }
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

    /// A connection: the template that controls it, if one does (`cp->control`).
    pub(crate) fn controller(&self) -> Option<ConnId> {
        (!self.is_template() && self.tie != NO_TEMPLATE).then_some(ConnId(self.tie))
    }

    /// A template: how many live connections it controls (`cp->n_control`); 0 for a
    /// connection.
    pub(crate) fn controlled(&self) -> u32 {
        if self.is_template() { self.tie } else { 0 }
    }

    pub(crate) fn is_proven(&self) -> bool {
        self.flags & FLAG_PROVEN != 0
    }

    /// Whether the entry belongs in the eviction queue: a connection not proven, or a
    /// template not proven that controls nothing.
    fn is_evictable(&self) -> bool {
        self.flags & (FLAG_PROVEN | FLAG_FREE | FLAG_HELD) == 0 && self.controlled() == 0
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
    /// The entries that give way, oldest first, when the table is full.
    evictable: EvictionQueue,
    capacity: u32,
    len: u32,
    templates: u32,
    /// What the sync master remembers of each slot; empty unless a master runs.
    sync_meta: Vec<SyncMeta>,
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
        let Self { index, hasher, slab, wheel, evictable, capacity, len, templates, sync_meta } =
            self;
        let mut entries = Vec::with_capacity(slab.entries.capacity());
        entries.extend_from_slice(&slab.entries);
        Self {
            index: index.clone(),
            hasher: hasher.clone(),
            slab: Slab { entries, free: slab.free },
            wheel: wheel.clone(),
            evictable: evictable.clone(),
            capacity: *capacity,
            len: *len,
            templates: *templates,
            sync_meta: sync_meta.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let Self { index, hasher, slab, wheel, evictable, capacity, len, templates, sync_meta } =
            self;
        sync_meta.clone_from(&source.sync_meta);
        index.clone_from(&source.index);
        hasher.clone_from(&source.hasher);
        let Slab { entries, free } = slab;
        entries.clone_from(&source.slab.entries);
        *free = source.slab.free;
        wheel.clone_from(&source.wheel);
        evictable.clone_from(&source.evictable);
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
            evictable: EvictionQueue::new(capacity as u32),
            capacity: capacity as u32,
            len: 0,
            templates: 0,
            sync_meta: Vec::new(),
        }
    }

    /// Reserves the sync master's state of every slot (once; configuration time).
    pub(crate) fn enable_sync_meta(&mut self) {
        if self.sync_meta.is_empty() {
            self.sync_meta = alloc::vec![SyncMeta::NEW; self.capacity as usize];
        }
    }

    /// Frees the sync master's state.
    pub(crate) fn disable_sync_meta(&mut self) {
        self.sync_meta = Vec::new();
    }

    /// The sync master's state of a live entry, when a master runs.
    pub(crate) fn sync_meta(&self, id: ConnId) -> Option<&SyncMeta> {
        self.sync_meta.get(id.0 as usize)
    }

    /// The sync master's state of a live entry, when a master runs, to change.
    pub(crate) fn sync_meta_mut(&mut self, id: ConnId) -> Option<&mut SyncMeta> {
        self.sync_meta.get_mut(id.0 as usize)
    }

    /// How many slots have ever been used: live entries are among `0..slots_used()`.
    pub(crate) fn slots_used(&self) -> usize {
        self.slab.entries.len()
    }

    /// The live entry in `slot`, if there is one.
    pub(crate) fn live_at(&self, slot: usize) -> Option<ConnId> {
        let entry = self.slab.entries.get(slot)?;
        (entry.flags & FLAG_FREE == 0).then_some(ConnId(slot as u32))
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
    /// returns to its caller: until then the entry is in no timer slot. A new entry is not
    /// proven, so it joins the eviction queue (a template only while it controls nothing).
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
        conn.flags &= !FLAG_PROVEN;
        if let Some(template) = conn.controller() {
            let t = &mut self.slab.entries[template.0 as usize];
            t.tie = t.tie.saturating_add(1);
            t.flags &= !FLAG_HELD;
            // A template that controls a connection is not evictable.
            self.evictable.remove(template.0);
        }
        self.templates += u32::from(conn.is_template());
        self.slab.entries[id as usize] = conn;
        if let Some(meta) = self.sync_meta.get_mut(id as usize) {
            *meta = SyncMeta::NEW;
        }
        self.index.insert(hash, id);
        self.len += 1;
        self.evictable.push_back(id);
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

    /// Keeps a template out of reach of eviction while room is made for a connection that
    /// is to be tied to it: otherwise the room could be made by evicting the template itself
    /// (idle and unproven, it is evictable), and the connection would be tied to a freed
    /// slot. Inserting the connection ends the hold; [`unhold`](Self::unhold) ends it when
    /// no connection comes.
    pub(crate) fn hold(&mut self, id: ConnId) {
        self.slab.entries[id.0 as usize].flags |= FLAG_HELD;
        self.evictable.remove(id.0);
    }

    /// Ends a [`hold`](Self::hold) that no connection ended.
    pub(crate) fn unhold(&mut self, id: ConnId) {
        let entry = &mut self.slab.entries[id.0 as usize];
        if entry.flags & FLAG_HELD != 0 {
            entry.flags &= !FLAG_HELD;
            if entry.is_evictable() {
                self.evictable.push_back(id.0);
            }
        }
    }

    /// Marks a connection proven: it carried what a client that completed its handshake
    /// sends (TCP data after the handshake, a second UDP datagram), so a flood of spoofed
    /// sources cannot have produced it cheaply. It leaves the eviction queue for good, and
    /// so does its template.
    #[inline(never)]
    pub(crate) fn prove(&mut self, id: ConnId) {
        let conn = &mut self.slab.entries[id.0 as usize];
        conn.flags |= FLAG_PROVEN;
        let template = conn.controller();
        self.evictable.remove(id.0);
        if let Some(template) = template {
            self.slab.entries[template.0 as usize].flags |= FLAG_PROVEN;
        }
    }

    /// Evicts the oldest entry in the eviction queue, and with a connection its template if
    /// that is left controlling nothing and unproven (nothing else would use it soon: its
    /// client never proved itself), handing each to `on_evict`. False when no entry is
    /// evictable. O(1).
    pub(crate) fn evict(&mut self, mut on_evict: impl FnMut(&Conn)) -> bool {
        let Some(slot) = self.evictable.pop_front() else {
            return false;
        };
        let conn = self.remove(ConnId(slot));
        on_evict(&conn);
        if let Some(template) = conn.controller()
            && self.slab.entries[template.0 as usize].is_evictable()
        {
            let template = self.remove(template);
            on_evict(&template);
        }
        true
    }

    /// Whether the entry is in the eviction queue (for tests of the queue's invariant).
    #[cfg(test)]
    fn is_queued(&self, id: u32) -> bool {
        self.evictable.contains(id)
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
        self.free_slot(id.0);
        conn
    }

    /// Returns an unlinked, unindexed slot to the free list, takes it out of the eviction
    /// queue, and a connection out of its template's count.
    fn free_slot(&mut self, id: u32) {
        let Self { slab, len, templates, evictable, .. } = self;
        free_slot(slab, evictable, len, templates, id);
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
    /// before it goes, with the outcome each timer would have had had it fired at its own
    /// deadline, in deadline order, however late this call comes.
    ///
    /// The only decision that depends on the order is a template's: one whose deadline comes
    /// while it still controls connections is not removed but re-armed for
    /// [`TEMPLATE_EXPIRE_LATER`] from that deadline (`ip_vs_conn_expire`), again and again
    /// while a connection it controls outlives the new deadline. So:
    ///
    /// - a connection that expires at `E` while its template's deadline `T` is earlier moves
    ///   that deadline to the first `T + k·60 s` (k ≥ 1) at or after `E`: the template's
    ///   timer fired at `T`, `T + 60 s`, … and found the connection alive each time but the
    ///   last (at the same instant, the connection's timer goes first);
    /// - a due template is decided only after every due connection is gone (the wheel hands
    ///   entries over slot by slot, not in deadline order): controlling nothing, it goes at
    ///   its (moved) deadline if that has come; still controlling a connection that lives
    ///   past `now`, its deadline becomes the first `T + k·60 s` after `now`.
    ///
    /// Allocation-free: due templates wait in a list threaded through their own links.
    pub(crate) fn expire(&mut self, now: Instant, mut on_expire: impl FnMut(&Conn)) {
        let mut deferred = NIL;
        let Self { index, hasher, slab, wheel, len, templates, evictable, .. } = self;
        wheel.advance(slab, tick_of(now), |slab, id| {
            let conn = slab.entries[id as usize];
            if conn.expires > now {
                return Some(tick_of(conn.expires));
            }
            if conn.is_template() && conn.tie > 0 {
                // Unlinked by the wheel: its link threads the list of due templates.
                slab.entries[id as usize].link = Link { prev: NIL, next: deferred };
                deferred = id;
                return None;
            }
            if let Some(template) = conn.controller() {
                let t = &mut slab.entries[template.0 as usize];
                if t.expires < conn.expires {
                    t.expires = expire_later(t.expires, conn.expires);
                    t.flags |= FLAG_EXPIRE_LATER;
                }
            }
            on_expire(&conn);
            unindex(index, hasher, conn.key, id);
            free_slot(slab, evictable, len, templates, id);
            None
        });
        while deferred != NIL {
            let id = deferred;
            let template = &mut slab.entries[id as usize];
            deferred = template.link.next;
            template.link = Link::UNLINKED;
            // A connection that expired in the pass may have moved it past `now` already.
            if template.tie > 0 && template.expires <= now {
                template.expires = expire_later(template.expires, now.saturating_add(ONE_NANO));
                template.flags |= FLAG_EXPIRE_LATER;
            }
            if template.expires > now {
                let tick = tick_of(template.expires);
                wheel.link(slab, id, tick);
            } else {
                let template = *template;
                on_expire(&template);
                unindex(index, hasher, template.key, id);
                free_slot(slab, evictable, len, templates, id);
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
            + self.evictable.allocation_size()
            + self.sync_meta.capacity() * size_of::<SyncMeta>()
    }
}

/// One nanosecond: "after `now`" is "at or after `now` + 1 ns".
const ONE_NANO: Duration = Duration::from_nanos(1);

/// The deadline of a template timer that fired at `deadline` and was re-armed for
/// [`TEMPLATE_EXPIRE_LATER`] each time it fired, until the first time at or after `until`:
/// `deadline + k·60 s` with the smallest k ≥ 1 that reaches it.
fn expire_later(deadline: Instant, until: Instant) -> Instant {
    let step = TEMPLATE_EXPIRE_LATER.as_nanos() as u64;
    let behind = until.as_nanos().saturating_sub(deadline.as_nanos());
    let steps = behind.div_ceil(step).max(1);
    Instant::from_nanos(deadline.as_nanos().saturating_add(steps.saturating_mul(step)))
}

/// Takes an entry out of the index.
fn unindex(index: &mut Index, hasher: &ahash::RandomState, key: FlowKey, id: u32) {
    index.remove(hasher.hash_one(key), id);
}

/// Returns an unlinked, unindexed slot to the free list, takes it out of the eviction queue,
/// and a connection out of its template's count: a template left controlling nothing, and
/// never proven, becomes evictable.
fn free_slot(
    slab: &mut Slab,
    evictable: &mut EvictionQueue,
    len: &mut u32,
    templates: &mut u32,
    id: u32,
) {
    let conn = slab.entries[id as usize];
    evictable.remove(id);
    if let Some(template) = conn.controller() {
        let t = &mut slab.entries[template.0 as usize];
        t.tie = t.tie.saturating_sub(1);
        if t.is_evictable() {
            evictable.push_back(template.0);
        }
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

    fn key(n: u16, template: bool) -> FlowKey {
        FlowKey {
            protocol: crate::flow::Protocol::Tcp,
            client: core::net::IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, (n % 8) as u8)),
            client_port: if template { 0 } else { n },
            vip: core::net::IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 100)),
            vip_port: 80,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A connection, controlled by the template of its client when there is one.
        Connect(u16, bool),
        Template(u16),
        Prove(usize),
        Remove(usize),
        Evict,
        Wait(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u16..64, any::<bool>()).prop_map(|(n, t)| Op::Connect(n, t)),
            (0u16..8).prop_map(Op::Template),
            any::<usize>().prop_map(Op::Prove),
            any::<usize>().prop_map(Op::Remove),
            Just(Op::Evict),
            (0u64..5_000).prop_map(Op::Wait),
        ]
    }

    proptest::proptest! {
        /// Whatever is inserted, proven, removed, evicted or expired, exactly the evictable
        /// entries are queued (unproven connections, unproven templates that control
        /// nothing), every template counts its live connections, and eviction only fails
        /// when nothing is evictable.
        #[test]
        fn the_eviction_queue_holds_exactly_the_evictable(ops in proptest::collection::vec(op(), 1..200)) {
            let mut table = ConnTable::new(16, [1, 2, 3, 4]);
            let mut now = Instant::from_secs(1);
            let live = |table: &ConnTable| -> Vec<u32> { table.index.slots().collect() };
            for op in ops {
                match op {
                    Op::Connect(n, controlled) => {
                        let k = key(n, false);
                        let h = table.hash(&k);
                        if table.find(h, &k, false).is_none() {
                            let tk = key(n, true);
                            let conn = match table.find(table.hash(&tk), &tk, true) {
                                Some(t) if controlled => Conn::controlled_by(k, RealId::from_index(0), t),
                                _ => Conn::new(k, RealId::from_index(0)),
                            };
                            if let Ok(id) = table.insert(h, conn) {
                                table.rearm(id, expiry(now, Duration::from_secs(2)));
                            }
                        }
                    }
                    Op::Template(n) => {
                        let k = key(n, true);
                        let h = table.hash(&k);
                        if table.find(h, &k, true).is_none()
                            && let Ok(id) = table.insert(h, Conn::template(k, RealId::from_index(0)))
                        {
                            table.rearm(id, expiry(now, Duration::from_secs(3)));
                        }
                    }
                    Op::Prove(i) => {
                        let slots = live(&table);
                        if let Some(&s) = slots.get(i % slots.len().max(1))
                            && !table.get(ConnId(s)).is_template()
                        {
                            table.prove(ConnId(s));
                        }
                    }
                    Op::Remove(i) => {
                        let slots = live(&table);
                        if let Some(&s) = slots.get(i % slots.len().max(1))
                            && table.get(ConnId(s)).controlled() == 0
                        {
                            table.remove(ConnId(s));
                        }
                    }
                    Op::Evict => {
                        let any = live(&table).iter().any(|&s| table.get(ConnId(s)).is_evictable());
                        proptest::prop_assert_eq!(table.evict(|_| {}), any);
                    }
                    Op::Wait(ms) => {
                        now = now.saturating_add(Duration::from_millis(ms));
                        table.expire(now, |_| {});
                    }
                }
                let slots = live(&table);
                proptest::prop_assert_eq!(slots.len(), table.len());
                for s in 0..16u32 {
                    let Some(entry) = table.slab.entries.get(s as usize) else {
                        proptest::prop_assert!(!table.is_queued(s));
                        continue;
                    };
                    let is_live = slots.contains(&s);
                    proptest::prop_assert_eq!(table.is_queued(s), is_live && entry.is_evictable(), "slot {}", s);
                    if is_live && entry.is_template() {
                        let controlled = slots
                            .iter()
                            .filter(|&&c| table.get(ConnId(c)).controller() == Some(ConnId(s)))
                            .count();
                        proptest::prop_assert_eq!(entry.controlled() as usize, controlled);
                    }
                }
            }
        }
    }

    #[test]
    fn expiry_rounds_up_to_whole_ticks() {
        let now = Instant::from_nanos(1_000_000_001);
        assert_eq!(expiry(now, Duration::from_secs(1)), Instant::from_millis(2_001));
        assert_eq!(expiry(Instant::from_secs(1), Duration::from_secs(1)), Instant::from_secs(2));
        assert_eq!(expiry(Instant::MAX, Duration::from_secs(1)).as_nanos() % TICK_NANOS, 0);
    }
}
