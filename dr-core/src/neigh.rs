//! The neighbour table: the real servers' MAC addresses, configured or learned.
//!
//! Entries exist only for real-server addresses, so a flood of ARP from elsewhere cannot
//! grow the table. A configured MAC is static and never replaced. A learned MAC is taken
//! only from the answer to a request of the director's own, never from what a host says
//! unasked (a gratuitous ARP, an ARP request, an unsolicited Neighbor Advertisement, the
//! source link-layer option of a solicitation): on a shared LAN anyone can say that, and a
//! director that believed it would send a real server's traffic wherever it was told.
//!
//! A request is *outstanding* from the moment it is handed out
//! ([`next_request`](Neighbours::next_request)) until it is answered, or until the retry
//! interval has passed (by then an address still unresolved is due to be asked again,
//! which opens a new request). The first answer taken closes it, so a second answer to the
//! same request, even a different one, is refused until the next request: as the kernel's
//! `locktime` keeps a neighbour's first answer, the first to answer wins. A learned MAC is
//! asked for again once per refresh interval after it was last confirmed, which opens a
//! request again, so a real server that changed its MAC is followed at the next refresh;
//! an unanswered refresh keeps the MAC it had (the health checks judge whether the server
//! is alive).

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
    /// Whether the last request was answered (or no request was ever sent).
    answered: bool,
    /// When an answer to our request last told us its MAC.
    confirmed_at: Option<Instant>,
}

impl Neighbour {
    /// Whether a request for this address is outstanding at `now`: sent less than `retry`
    /// ago and not answered yet.
    fn awaits_answer(&self, now: Instant, retry: Duration) -> bool {
        !self.answered && self.requested_at.is_some_and(|at| now < at.saturating_add(retry))
    }

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
    /// Not a real server's address, or nothing new: the MAC the entry already holds.
    Nothing,
    /// The entry now holds this (new) MAC.
    Changed(NeighbourId, MacAddr),
    /// A real server's entry would have been set or changed, but the frame was not an
    /// answer to be taken: not to an outstanding request, an advertisement that may not
    /// override the MAC known, or against a static entry.
    Refused,
}

/// How a frame tells an address's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// An answer to a request, as ARP replies and solicited Neighbor Advertisements are;
    /// `overrides` is false for an advertisement without the Override flag, which may
    /// teach a MAC to an entry without one but not replace one (RFC 4861 §7.2.5).
    Answer {
        /// The answer may replace a MAC already known.
        overrides: bool,
    },
    /// Said unasked: a gratuitous ARP, an ARP request, an unsolicited advertisement, a
    /// solicitation's source link-layer option. Never taken.
    Unsolicited,
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

    /// Changes the refresh interval (zero: never).
    pub(crate) fn set_refresh(&mut self, refresh: Duration) {
        self.refresh = refresh;
        self.update_refresh_due();
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
            answered: true,
            confirmed_at: None,
        });
        self.index.insert(addr, id);
        self.unresolved += usize::from(mac.is_none());
        Ok(id)
    }

    /// Makes `addr`'s MAC the configured `mac` (static), or, with `None`, leaves it to be
    /// learned: the MAC it had is kept until a refresh, asked for at once, answers.
    /// Returns the entry when it changed.
    pub(crate) fn configure(&mut self, addr: IpAddr, mac: Option<MacAddr>) -> Option<NeighbourId> {
        let id = self.find(addr)?;
        let entry = &mut self.entries[id.index()];
        let changed = match mac {
            Some(mac) => {
                let changed = !entry.is_static || entry.mac != Some(mac);
                if entry.mac.is_none() {
                    self.unresolved -= 1;
                }
                entry.mac = Some(mac);
                entry.is_static = true;
                changed
            }
            None if entry.is_static => {
                entry.is_static = false;
                entry.confirmed_at = None;
                entry.requested_at = None;
                true
            }
            None => false,
        };
        self.update_refresh_due();
        changed.then_some(id)
    }

    /// What a frame seen at `now`, saying that `addr` is at `mac`, does to the table: an
    /// answer to an outstanding request (sent less than `retry` before) is taken, and
    /// closes the request; anything else is refused if it would have set or changed the
    /// entry's MAC.
    pub(crate) fn hear(
        &mut self,
        addr: IpAddr,
        mac: MacAddr,
        claim: Claim,
        now: Instant,
        retry: Duration,
    ) -> Learned {
        let Some(id) = self.find(addr) else {
            return Learned::Nothing;
        };
        let entry = &self.entries[id.index()];
        let taken = match claim {
            Claim::Answer { overrides } => {
                !entry.is_static
                    && mac.is_unicast()
                    && entry.awaits_answer(now, retry)
                    && (overrides || entry.mac.is_none_or(|known| known == mac))
            }
            Claim::Unsolicited => false,
        };
        if taken {
            self.learn(addr, mac, now)
        } else if entry.mac == Some(mac) {
            Learned::Nothing
        } else {
            Learned::Refused
        }
    }

    /// Records that `addr` is at `mac` as of `now`, as the answer to a request would: the
    /// embedder's word ([`Director::learn_neighbour`](crate::Director::learn_neighbour)) or
    /// an answer [`hear`](Self::hear) took. Closes the outstanding request.
    pub(crate) fn learn(&mut self, addr: IpAddr, mac: MacAddr, now: Instant) -> Learned {
        let Some(id) = self.find(addr) else {
            return Learned::Nothing;
        };
        let entry = &mut self.entries[id.index()];
        if entry.is_static || !mac.is_unicast() {
            return Learned::Nothing;
        }
        entry.confirmed_at = Some(now);
        entry.answered = true;
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
            entry.answered = false;
            return Some(entry.addr);
        }
        if self.refresh_due.is_none_or(|due| due > now) {
            return None;
        }
        let refresh = self.refresh;
        let entry =
            self.entries.iter_mut().find(|e| e.refresh_at(refresh).is_some_and(|at| at <= now))?;
        entry.requested_at = Some(now);
        entry.answered = false;
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
