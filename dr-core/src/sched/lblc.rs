//! `lblc`, locality-based least-connection (`net/netfilter/ipvs/ip_vs_lblc.c`).
//!
//! A cache maps a packet's destination address to the server last chosen for it. A new
//! connection goes to the cached server if it is still in the service, has weight > 0, and
//! is not "overloaded" in lblc's own sense: more active connections than its weight while
//! some server of the service has fewer than half its weight in active connections. The
//! cache does *not* look at the upper-threshold overload flag: a cached server over its
//! `u_threshold` keeps taking connections, as in the kernel. Otherwise weighted
//! least-connection (wlc's rule: overhead = active × 256 + inactive, the first server with
//! weight > 0 not overloaded, replaced when `loh × w > doh × w_least`) picks, and the cache
//! remembers that server.
//!
//! Every cache lookup refreshes the entry's last use. Garbage collection runs on the
//! kernel's timer, every 60 s from the scheduler's start; every 30th run (every 30 minutes)
//! is a full check that drops the entries idle for `lblc_expiration` (default 24 hours,
//! [`Config::lblc_expiration`](crate::Config::lblc_expiration)). The other runs only act
//! on a table over 16 384 entries. dr follows the director's time: the runs that fell due
//! since the last pick are applied, at their own times, before the next pick (which is when
//! their effect can be seen), so no clock and no timer is needed.
//!
//! For Direct Routing the destination is the VIP, the same for every packet of a service:
//! the cache has one entry per service, so it is one entry here (bounded memory, and the
//! kernel's 16 384-entry rule never applies). lblc thus keeps a whole service on one server
//! until that server is overloaded in lblc's sense, then moves it to the least loaded one.
//!
//! Worked example: list order A(1), B(1), C(2), every connection staying active. First
//! pick: no entry, wlc gives A (all empty, the first). A is then cached: A has 1 active, not
//! more than its weight: A again; A has 2 > 1, and C has 0 × 2 < 2: overloaded, wlc gives
//! B (A 512 × 1 > B 0 × 1, then C: 0 × 2 > 0 × 1 is false); B 1 active: B; B 2 > 1 and C
//! is under half: wlc over A 512/1, B 512/1, C 0/2 gives C; C takes connections until it has
//! 3 > 2 active and someone is under half its weight, and nobody is (A 2, B 2, C 3): C keeps
//! them all. So `A A B B C C C C …`.
//!
//! Expiry: with the scheduler started at 0 s and `lblc_expiration` 3600 s, an entry last
//! used at 100 s survives the full checks at 1800 s and 3600 s (idle less than 3600 s) and
//! is dropped by the one at 5400 s; a pick at 5399 s still finds it, one at 5400 s does not.

use super::weighted::least_weighted;
use super::{Dests, SchedParams};
use crate::flow::FlowKey;
use crate::service::{RealId, RealServer};
use crate::time::{Duration, Instant};
use core::net::IpAddr;

/// `CHECK_EXPIRE_INTERVAL` × `COUNT_FOR_FULL_EXPIRATION`: the full check's period.
const FULL_CHECK: u64 = 30 * 60 * 1_000_000_000;

/// The kernel's garbage-collection timer, applied lazily: when did it last run up to, and
/// does one of its full checks since drop an entry last used at `lastuse`?
#[derive(Clone, Copy, Debug)]
pub(crate) struct Collector {
    /// When the scheduler started (`init_service` armed the timer).
    started: Instant,
    /// Every run up to this time has been applied.
    checked: Instant,
    pub(crate) expiration: Duration,
}

impl Collector {
    pub(crate) fn new(now: Instant, expiration: Duration) -> Self {
        Self { started: now, checked: now, expiration }
    }

    /// Whether a full check in (`checked`, `now`] finds an entry last used at `lastuse`
    /// idle for the expiration (`!time_before(now, lastuse + expiration)`); the runs up to
    /// `now` count as applied afterwards.
    pub(crate) fn expires(&mut self, now: Instant, lastuse: Option<Instant>) -> bool {
        let checked = self.checked;
        self.checked = self.checked.max(now);
        let Some(lastuse) = lastuse else { return false };
        let start = self.started.as_nanos();
        let idle_until = lastuse.saturating_add(self.expiration).as_nanos();
        let lower = (checked.as_nanos().saturating_add(1))
            .max(idle_until)
            .max(start.saturating_add(FULL_CHECK));
        let runs = (lower - start).div_ceil(FULL_CHECK);
        runs.checked_mul(FULL_CHECK)
            .and_then(|t| t.checked_add(start))
            .is_some_and(|t| t <= now.as_nanos())
    }
}

/// lblc's `is_overloaded`: more active connections than its weight while some server of
/// the service has fewer than half its weight.
pub(crate) fn overloaded(real: &RealServer, dests: &Dests<'_>) -> bool {
    u64::from(real.active) > u64::from(real.weight)
        && (0..dests.len()).any(|p| u64::from(dests.active(p)) * 2 < u64::from(dests.weight(p)))
}

/// `__ip_vs_lblc_schedule`: weighted least-connection.
pub(crate) fn least_connection(dests: &Dests<'_>) -> Option<RealId> {
    let pos = least_weighted(dests, |real| i64::from(real.overhead()))?;
    dests.order.get(pos).copied()
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: IpAddr,
    real: RealId,
    lastuse: Instant,
}

/// The cache (one entry) and its collector.
#[derive(Clone, Debug)]
pub(crate) struct Lblc {
    entry: Option<Entry>,
    collector: Collector,
}

impl Lblc {
    pub(crate) fn new(params: &SchedParams) -> Self {
        Self { entry: None, collector: Collector::new(params.now, params.lblc_expiration) }
    }

    /// A new `lblc_expiration`, from `now` on.
    pub(crate) fn set_expiration(&mut self, now: Instant, expiration: Duration) {
        self.collect(now);
        self.collector.expiration = expiration;
    }

    fn collect(&mut self, now: Instant) {
        if self.collector.expires(now, self.entry.map(|e| e.lastuse)) {
            self.entry = None;
        }
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
            let cached = dests.real(entry.real).filter(|r| {
                r.available && r.weight > 0 && r.mac.is_some() && !overloaded(r, dests)
            });
            if cached.is_some() {
                return Some(entry.real);
            }
        }
        let real = least_connection(dests)?;
        // ip_vs_lblc_new: the same server keeps its entry, another replaces it.
        if !self.entry.is_some_and(|e| e.addr == addr && e.real == real) {
            self.entry = Some(Entry { addr, real, lastuse: now });
        }
        Some(real)
    }
}
