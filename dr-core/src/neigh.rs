//! The neighbour table: the real servers' MAC addresses, configured or learned.
//!
//! Entries exist only for real-server addresses, so a flood of ARP from elsewhere cannot
//! grow the table. A configured MAC is static and never replaced; a learned one follows
//! the latest ARP packet or Neighbor Advertisement (or Solicitation with a source
//! link-layer option) from that address, as a host's neighbour cache does. A learned MAC is
//! asked for again once per refresh interval after it was last confirmed, so a real server
//! that changed its MAC without announcing it is followed; an unanswered refresh keeps the
//! MAC it had (the health checks judge whether the server is alive).

use crate::mac::MacAddr;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use core::net::IpAddr;
use hashbrown::HashMap;

/// A handle to a neighbour entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NeighbourId(pub(crate) u16);

impl NeighbourId {
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Neighbour {
    pub(crate) addr: IpAddr,
    pub(crate) mac: Option<MacAddr>,
    pub(crate) is_static: bool,
    /// When we last asked for this address.
    requested_at: Option<Instant>,
    /// When a frame from this address last told us its MAC.
    confirmed_at: Option<Instant>,
}

impl Neighbour {
    /// When a learned entry is next to be asked for again.
    fn refresh_at(&self, refresh: Duration) -> Option<Instant> {
        if self.is_static || self.mac.is_none() || refresh.is_zero() {
            return None;
        }
        let last = self.confirmed_at.max(self.requested_at).unwrap_or(Instant::ZERO);
        Some(last.saturating_add(refresh))
    }
}

/// The configured MAC conflicts with the one configured before for the same address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StaticConflict {
    pub(crate) existing: MacAddr,
}

#[derive(Debug)]
pub(crate) struct Neighbours {
    entries: Vec<Neighbour>,
    index: HashMap<IpAddr, NeighbourId, ahash::RandomState>,
    /// Entries without a MAC.
    unresolved: usize,
    /// How often a learned MAC is asked for again (zero: never).
    refresh: Duration,
    /// The earliest refresh due, kept so that polling for it costs nothing.
    refresh_due: Option<Instant>,
}

/// The outcome of a frame that told us an address's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// Not a real server's address, a static entry, or nothing new.
    Nothing,
    /// The entry now holds this (new) MAC.
    Changed(NeighbourId, MacAddr),
}

#[cfg(fuzzing)]
fuzzing_clone!(Neighbours { entries, index, unresolved, refresh, refresh_due });

impl Neighbours {
    pub(crate) fn new(hasher: ahash::RandomState, refresh: Duration) -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::with_hasher(hasher),
            unresolved: 0,
            refresh,
            refresh_due: None,
        }
    }

    fn update_refresh_due(&mut self) {
        let refresh = self.refresh;
        self.refresh_due = self.entries.iter().filter_map(|e| e.refresh_at(refresh)).min();
    }

    pub(crate) fn get(&self, id: NeighbourId) -> &Neighbour {
        &self.entries[id.index()]
    }

    pub(crate) fn find(&self, addr: IpAddr) -> Option<NeighbourId> {
        self.index.get(&addr).copied()
    }

    /// The entry for `addr`, created if needed; a `mac` makes it static.
    pub(crate) fn ensure(
        &mut self,
        addr: IpAddr,
        mac: Option<MacAddr>,
    ) -> Result<NeighbourId, StaticConflict> {
        if let Some(id) = self.find(addr) {
            let entry = &mut self.entries[id.index()];
            if let Some(mac) = mac {
                match entry.mac {
                    Some(existing) if entry.is_static && existing != mac => {
                        return Err(StaticConflict { existing });
                    }
                    _ => {
                        if entry.mac.is_none() {
                            self.unresolved -= 1;
                        }
                        entry.mac = Some(mac);
                        entry.is_static = true;
                    }
                }
                self.update_refresh_due();
            }
            return Ok(id);
        }
        let id = NeighbourId(self.entries.len() as u16);
        self.entries.push(Neighbour {
            addr,
            mac,
            is_static: mac.is_some(),
            requested_at: None,
            confirmed_at: None,
        });
        self.index.insert(addr, id);
        self.unresolved += usize::from(mac.is_none());
        Ok(id)
    }

    /// Records that `addr` is at `mac`, as a frame seen at `now` says.
    pub(crate) fn learn(&mut self, addr: IpAddr, mac: MacAddr, now: Instant) -> Learned {
        let Some(id) = self.find(addr) else {
            return Learned::Nothing;
        };
        let entry = &mut self.entries[id.index()];
        if entry.is_static || !mac.is_unicast() {
            return Learned::Nothing;
        }
        entry.confirmed_at = Some(now);
        let changed = entry.mac != Some(mac);
        if entry.mac.is_none() {
            self.unresolved -= 1;
        }
        entry.mac = Some(mac);
        self.update_refresh_due();
        if changed { Learned::Changed(id, mac) } else { Learned::Nothing }
    }

    /// The next address to ask for at `now`, marked as asked: an unresolved one (at most
    /// once per `retry`), or a learned one due for its refresh.
    pub(crate) fn next_request(&mut self, now: Instant, retry: Duration) -> Option<IpAddr> {
        if self.unresolved > 0
            && let Some(entry) = self.entries.iter_mut().find(|e| {
                e.mac.is_none() && e.requested_at.is_none_or(|at| now >= at.saturating_add(retry))
            })
        {
            entry.requested_at = Some(now);
            return Some(entry.addr);
        }
        if self.refresh_due.is_none_or(|due| due > now) {
            return None;
        }
        let refresh = self.refresh;
        let entry =
            self.entries.iter_mut().find(|e| e.refresh_at(refresh).is_some_and(|at| at <= now))?;
        entry.requested_at = Some(now);
        let addr = entry.addr;
        self.update_refresh_due();
        Some(addr)
    }

    /// When the next request is due: an unresolved address, or a refresh.
    pub(crate) fn next_request_due(&self, retry: Duration) -> Option<Instant> {
        let unresolved = (self.unresolved > 0)
            .then(|| {
                self.entries
                    .iter()
                    .filter(|e| e.mac.is_none())
                    .map(|e| e.requested_at.map_or(Instant::ZERO, |at| at.saturating_add(retry)))
                    .min()
            })
            .flatten();
        [unresolved, self.refresh_due].into_iter().flatten().min()
    }
}
