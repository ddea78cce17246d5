//! Fragment tracking: later fragments of a datagram follow its first fragment.
//!
//! Only the first fragment of a datagram carries the ports, so only it can be matched to a
//! connection. When it is forwarded (or passed to the host), the datagram's identity
//! (source, destination, protocol, IP identification) is remembered with where it went, for
//! a short time; later fragments go the same way, one by one, never reassembled. A later
//! fragment that arrives before its first one, or after the entry has gone, is dropped with
//! `fragment-unmatched`: the director holds no fragments (a buffer would be memory an
//! attacker fills for free), and the sender's retransmission sends the whole datagram again.
//!
//! The table is a fixed array of small sets (4 entries each), indexed by a seeded hash of
//! the identity. A new datagram takes a free or expired entry of its set, or else the one
//! that expires first: the table never grows, never allocates and never scans.

use crate::service::RealId;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use core::net::IpAddr;

/// Entries per set.
const WAYS: usize = 4;

/// What identifies the fragments of one datagram (RFC 791 / RFC 8200).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DatagramId {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) protocol: u8,
    pub(crate) ident: u32,
}

/// Where the first fragment of a datagram went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragmentTarget {
    /// Forwarded to this real server.
    Real(RealId),
    /// Passed to the host.
    Host,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: DatagramId,
    target: FragmentTarget,
    expires: Instant,
}

/// The fragment table.
pub(crate) struct Fragments {
    entries: Vec<Option<Entry>>,
    /// `sets - 1`, sets being a power of two.
    mask: usize,
    hasher: ahash::RandomState,
    timeout: Duration,
}

impl core::fmt::Debug for Fragments {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fragments")
            .field("capacity", &self.entries.len())
            .field("tracked", &self.entries.iter().flatten().count())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(fuzzing)]
fuzzing_clone!(Fragments { entries, mask, hasher, timeout });

impl Fragments {
    /// A table for at least `capacity` datagrams (0 turns tracking off), each remembered for
    /// `timeout` after its latest fragment.
    pub(crate) fn new(capacity: usize, timeout: Duration, hasher: ahash::RandomState) -> Self {
        let sets = capacity.div_ceil(WAYS).next_power_of_two();
        let len = if capacity == 0 { 0 } else { sets * WAYS };
        let mut entries = Vec::with_capacity(len);
        entries.resize(len, None);
        Self { entries, mask: sets - 1, hasher, timeout }
    }

    /// The number of datagrams the table holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    fn set(&mut self, id: &DatagramId) -> &mut [Option<Entry>] {
        let start = (self.hasher.hash_one(id) as usize & self.mask) * WAYS;
        self.entries.get_mut(start..start + WAYS).unwrap_or_default()
    }

    /// Changes how long datagrams are tracked after their latest fragment (from the next
    /// fragment on).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Remembers where the first fragment of `id` went, until `now + timeout`.
    pub(crate) fn insert(&mut self, id: DatagramId, target: FragmentTarget, now: Instant) {
        let expires = now.saturating_add(self.timeout);
        let set = self.set(&id);
        let slot = set
            .iter()
            .position(|e| e.is_some_and(|e| e.id == id))
            .or_else(|| set.iter().position(|e| e.is_none_or(|e| e.expires <= now)))
            .or_else(|| {
                let oldest = set.iter().flatten().map(|e| e.expires).min();
                set.iter().position(|e| e.map(|e| e.expires) == oldest)
            });
        if let Some(slot) = slot.and_then(|i| set.get_mut(i)) {
            *slot = Some(Entry { id, target, expires });
        }
    }

    /// Where the fragments of `id` go, if its first fragment was seen within the timeout;
    /// each hit keeps the entry for another timeout.
    pub(crate) fn get(&mut self, id: &DatagramId, now: Instant) -> Option<FragmentTarget> {
        let timeout = self.timeout;
        let entry = self.set(id).iter_mut().flatten().find(|e| e.id == *id && e.expires > now)?;
        entry.expires = now.saturating_add(timeout);
        Some(entry.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DatagramId {
        DatagramId {
            src: IpAddr::V4([192, 0, 2, 7].into()),
            dst: IpAddr::V4([10, 0, 0, 100].into()),
            protocol: 17,
            ident: n,
        }
    }

    fn table(capacity: usize) -> Fragments {
        Fragments::new(capacity, Duration::from_secs(5), ahash::RandomState::with_seeds(1, 2, 3, 4))
    }

    #[test]
    fn remembers_until_the_timeout_after_the_latest_fragment() {
        let mut t = table(16);
        let real = FragmentTarget::Real(RealId::from_index(3));
        t.insert(id(1), real, Instant::from_secs(10));
        assert_eq!(t.get(&id(1), Instant::from_secs(14)), Some(real));
        // The hit at 14 s keeps it until 19 s.
        assert_eq!(t.get(&id(1), Instant::from_millis(18_999)), Some(real));
        assert_eq!(t.get(&id(1), Instant::from_secs(24)), None);
        assert_eq!(t.get(&id(2), Instant::from_secs(10)), None);
    }

    #[test]
    fn a_full_set_gives_up_the_entry_that_expires_first() {
        // One set of four: the fifth datagram replaces the oldest.
        let mut t = table(4);
        assert_eq!(t.capacity(), 4);
        for n in 0..5 {
            t.insert(id(n), FragmentTarget::Host, Instant::from_secs(u64::from(n)));
        }
        let now = Instant::from_secs(5);
        assert_eq!(t.get(&id(0), now), None);
        for n in 1..5 {
            assert_eq!(t.get(&id(n), now), Some(FragmentTarget::Host), "{n}");
        }
    }

    #[test]
    fn capacity_zero_tracks_nothing() {
        let mut t = table(0);
        t.insert(id(1), FragmentTarget::Host, Instant::ZERO);
        assert_eq!(t.get(&id(1), Instant::ZERO), None);
    }

    #[test]
    fn the_same_datagram_is_updated_in_place() {
        let mut t = table(4);
        t.insert(id(1), FragmentTarget::Host, Instant::ZERO);
        let real = FragmentTarget::Real(RealId::from_index(0));
        t.insert(id(1), real, Instant::ZERO);
        assert_eq!(t.get(&id(1), Instant::ZERO), Some(real));
        assert_eq!(t.entries.iter().flatten().count(), 1);
    }
}
