//! The neighbour table: the real servers' MAC addresses, configured or learned.
//!
//! Entries exist only for real-server addresses, so a flood of ARP from elsewhere cannot
//! grow the table. A configured MAC is static and never replaced; a learned one follows
//! the latest ARP packet or Neighbor Advertisement (or Solicitation with a source
//! link-layer option) from that address, as a host's neighbour cache does.

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
}

/// The outcome of a frame that told us an address's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// Not a real server's address, a static entry, or nothing new.
    Nothing,
    /// The entry now holds this (new) MAC.
    Changed(NeighbourId, MacAddr),
}

impl Neighbours {
    pub(crate) fn new(hasher: ahash::RandomState) -> Self {
        Self { entries: Vec::new(), index: HashMap::with_hasher(hasher), unresolved: 0 }
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
            }
            return Ok(id);
        }
        let id = NeighbourId(self.entries.len() as u16);
        self.entries.push(Neighbour { addr, mac, is_static: mac.is_some(), requested_at: None });
        self.index.insert(addr, id);
        self.unresolved += usize::from(mac.is_none());
        Ok(id)
    }

    /// Records that `addr` is at `mac`.
    pub(crate) fn learn(&mut self, addr: IpAddr, mac: MacAddr) -> Learned {
        let Some(id) = self.find(addr) else {
            return Learned::Nothing;
        };
        let entry = &mut self.entries[id.index()];
        if entry.is_static || entry.mac == Some(mac) || !mac.is_unicast() {
            return Learned::Nothing;
        }
        if entry.mac.is_none() {
            self.unresolved -= 1;
        }
        entry.mac = Some(mac);
        Learned::Changed(id, mac)
    }

    /// The next unresolved address to ask for at `now` (at most once per `retry`), marked
    /// as asked.
    pub(crate) fn next_request(&mut self, now: Instant, retry: Duration) -> Option<IpAddr> {
        if self.unresolved == 0 {
            return None;
        }
        let entry = self.entries.iter_mut().find(|e| {
            e.mac.is_none() && e.requested_at.is_none_or(|at| now >= at.saturating_add(retry))
        })?;
        entry.requested_at = Some(now);
        Some(entry.addr)
    }

    /// When the next request is due, if any address is unresolved.
    pub(crate) fn next_request_due(&self, retry: Duration) -> Option<Instant> {
        if self.unresolved == 0 {
            return None;
        }
        self.entries
            .iter()
            .filter(|e| e.mac.is_none())
            .map(|e| e.requested_at.map_or(Instant::ZERO, |at| at.saturating_add(retry)))
            .min()
    }
}
