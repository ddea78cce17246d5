//! `lblcr`, locality-based least-connection with replication
//! (`net/netfilter/ipvs/ip_vs_lblcr.c`).
//!
//! A cache maps a packet's destination address to a *set* of servers (newest member
//! first). A new connection goes to the set's least loaded member (`ip_vs_dest_set_min`:
//! wlc's rule among members in the service, with weight > 0 and not overloaded); if there is
//! none, or it is "overloaded" in lblc's sense (more active connections than its weight
//! while some server has fewer than half its weight), weighted least-connection over the
//! whole service picks, and the server joins the set. A set of two or more members not
//! modified for `lblcr_expiration` (default 24 hours,
//! [`Config::lblcr_expiration`](crate::Config::lblcr_expiration)) loses its most loaded
//! member (`ip_vs_dest_set_max`: members with weight > 0, removed servers included) at the
//! next lookup, before the pick is made from what it found. Garbage collection is lblc's:
//! full checks every 30 minutes from the scheduler's start drop entries idle for the
//! expiration, applied here at the next pick.
//!
//! For Direct Routing the destination is the VIP: one entry per service. Its set holds only
//! servers of the service, so its memory is reserved when servers are added, never on the
//! packet path. Members stay in the set when removed from the service (the kernel holds a
//! reference), skipped by the pick but still counted and still candidates for removal.
//!
//! Worked example: list order A(1), B(1), C(2), connections staying active (established).
//! No entry: wlc gives A, the set is {A}. A has 1 active, not above its weight: A. A has 2,
//! and B is under half its weight: wlc over the service gives B, the set is {B, A}. The
//! set's least loaded is B (256 against 512): B. B's 2 > 1 with C under half: wlc gives C
//! (A 512/1, B 512/1, C 0/2), the set is {C, B, A}. C at 1, 2, 3 and 4 active stays the
//! least loaded (B's 512/1 is never below C's load per weight until C has 5), and C with 3
//! or 4 is above its weight but nobody is under half: C, C, C, C. Then C (1280/2) loses to
//! B (512/1): B, with 3 above 1 but nobody under half; then A (512/1 under B's 768/1 and
//! C's 1280/2): A. So `A A B B C C C C C B A …`.
//!
//! With `lblcr_expiration` 60 s and the connections kept, a pick more than 60 s after C
//! joined first finds C (1024/2: B's and A's 512/1 are not below), then drops the most
//! loaded member, C itself (the first of the highest load per weight), and still returns C;
//! the set is {B, A} and the next picks are B, then A.

use super::lblc::{Collector, least_connection, overloaded};
use super::{Dests, SchedParams};
use crate::flow::FlowKey;
use crate::service::{RealId, ServiceId};
use crate::time::{Duration, Instant};
use alloc::vec::Vec;
use core::net::IpAddr;

#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: IpAddr,
    lastuse: Instant,
    /// The set's `lastmod`.
    lastmod: Instant,
}

/// The cache (one entry), its set and its collector.
#[derive(Clone, Debug)]
pub(crate) struct Lblcr {
    entry: Option<Entry>,
    /// The entry's members, newest first (empty without an entry); its capacity is the
    /// number of servers the service has had, reserved as they are added.
    set: Vec<RealId>,
    service: ServiceId,
    collector: Collector,
}

impl Lblcr {
    pub(crate) fn new(params: &SchedParams, dests: &Dests<'_>) -> Self {
        let mut s = Self {
            entry: None,
            set: Vec::new(),
            service: params.service,
            collector: Collector::new(params.now, params.lblcr_expiration),
        };
        s.reserve(dests);
        s
    }

    /// A server was added: room for every server the service has had, so that the set
    /// never grows on the packet path.
    pub(crate) fn reserve(&mut self, dests: &Dests<'_>) {
        let members = dests.reals.iter().filter(|r| r.service == self.service).count();
        self.set.reserve(members.saturating_sub(self.set.len()));
    }

    /// A new `lblcr_expiration`, from `now` on.
    pub(crate) fn set_expiration(&mut self, now: Instant, expiration: Duration) {
        self.collect(now);
        self.collector.expiration = expiration;
    }

    fn collect(&mut self, now: Instant) {
        if self.collector.expires(now, self.entry.map(|e| e.lastuse)) {
            self.entry = None;
            self.set.clear();
        }
    }

    /// The set's members, newest first (tests).
    #[cfg(test)]
    pub(crate) fn members(&self) -> impl Iterator<Item = RealId> + '_ {
        self.set.iter().copied()
    }

    /// `ip_vs_dest_set_insert`: at the head, unless already there (or, as a failed
    /// allocation in the kernel, without room).
    fn insert(&mut self, real: RealId, now: Instant) {
        if self.set.contains(&real) || self.set.len() == self.set.capacity() {
            return;
        }
        self.set.insert(0, real);
        if let Some(entry) = &mut self.entry {
            entry.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_min`.
    fn min(&self, dests: &Dests<'_>) -> Option<RealId> {
        let mut members = self.set.iter().filter_map(|&id| Some((id, dests.real(id)?)));
        let (mut least, first) =
            members.by_ref().find(|(_, r)| r.is_usable() && r.weight > 0 && r.available)?;
        let (mut loh, mut lw) = (i64::from(first.overhead()), i64::from(first.weight));
        for (id, r) in members {
            if !r.is_usable() {
                continue;
            }
            let (doh, dw) = (i64::from(r.overhead()), i64::from(r.weight));
            if loh * dw > doh * lw && r.available {
                (least, loh, lw) = (id, doh, dw);
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`.
    fn max(&self, dests: &Dests<'_>) -> Option<RealId> {
        let mut members = self.set.iter().filter_map(|&id| Some((id, dests.real(id)?)));
        let (mut most, first) = members.by_ref().find(|(_, r)| r.weight > 0)?;
        let (mut moh, mut mw) = (i64::from(first.overhead()), i64::from(first.weight));
        for (id, r) in members {
            let (doh, dw) = (i64::from(r.overhead()), i64::from(r.weight));
            if moh * dw < doh * mw && dw > 0 {
                (most, moh, mw) = (id, doh, dw);
            }
        }
        Some(most)
    }

    pub(crate) fn schedule(
        &mut self,
        dests: &Dests<'_>,
        flow: &FlowKey,
        now: Instant,
    ) -> Option<RealId> {
        self.collect(now);
        let addr = flow.vip;
        if let Some(entry) = self.entry.as_mut().filter(|e| e.addr == addr) {
            entry.lastuse = now;
            let lastmod = entry.lastmod;
            let found = self.min(dests);
            let stale = now > lastmod.saturating_add(self.collector.expiration);
            if self.set.len() > 1
                && stale
                && let Some(most) = self.max(dests)
            {
                self.set.retain(|&m| m != most);
                if let Some(entry) = &mut self.entry {
                    entry.lastmod = now;
                }
            }
            if let Some(real) =
                found.filter(|&id| dests.real(id).is_some_and(|r| !overloaded(r, dests)))
            {
                return Some(real);
            }
            let real = least_connection(dests)?;
            self.insert(real, now);
            return Some(real);
        }
        let real = least_connection(dests)?;
        self.entry = Some(Entry { addr, lastuse: now, lastmod: now });
        self.set.clear();
        self.insert(real, now);
        Some(real)
    }
}
