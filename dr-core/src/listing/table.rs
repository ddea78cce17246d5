//! What the listings print, copied out of a director: its services and real servers with
//! their counters, rates and connection counts. Tables of directors that share the work
//! (one per worker thread, each with its own connections) add up to one.

use crate::conn::TimeoutSettings;
use crate::director::Director;
use crate::sched::{SchedFlags, SchedulerKind};
use crate::service::{Persistence, ServiceKey};
use crate::stats::{Rates, Stats};
use alloc::vec::Vec;
use core::net::IpAddr;

/// Counters and rates of a service, a real server or the whole director.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets forwarded.
    pub inpkts: u64,
    /// Bytes forwarded (IP datagram lengths).
    pub inbytes: u64,
    /// The estimator's rates.
    pub rates: Rates,
}

impl Counts {
    fn of(stats: &Stats) -> Self {
        Self {
            conns: stats.conns,
            inpkts: stats.inpkts,
            inbytes: stats.inbytes,
            rates: stats.rates(),
        }
    }

    fn add(&mut self, other: &Self) {
        self.conns = self.conns.wrapping_add(other.conns);
        self.inpkts = self.inpkts.wrapping_add(other.inpkts);
        self.inbytes = self.inbytes.wrapping_add(other.inbytes);
        self.rates.cps = self.rates.cps.wrapping_add(other.rates.cps);
        self.rates.inpps = self.rates.inpps.wrapping_add(other.rates.inpps);
        self.rates.inbps = self.rates.inbps.wrapping_add(other.rates.inbps);
    }
}

/// A real server as the listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealRow {
    /// Its address.
    pub addr: IpAddr,
    /// Its weight.
    pub weight: u32,
    /// Upper and lower connection thresholds (0: none).
    pub thresholds: (u32, u32),
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates pointing at it.
    pub persistent: u32,
    /// Whether its upper threshold stops new connections now (in any of the directors
    /// added up).
    pub overloaded: bool,
    /// Its counters.
    pub counts: Counts,
}

/// A service as the listings show it, with its real servers in the service's list order
/// (newest added first, as the kernel keeps them).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceRow {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// The scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if the service has it.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`ops`).
    pub one_packet: bool,
    /// Its counters.
    pub counts: Counts,
    /// Its real servers, newest first.
    pub reals: Vec<RealRow>,
}

/// Everything the `ipvsadm -L` listings print, copied from one director or added up over
/// several.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Table {
    /// The connection capacity (added up: the entries of every director's table).
    pub capacity: usize,
    /// The settable timeouts (those of the first director added).
    pub timeouts: TimeoutSettings,
    /// Connection entries in the table(s).
    pub connections: usize,
    /// Persistence templates in the table(s).
    pub templates: usize,
    /// The director's totals.
    pub totals: Counts,
    /// The services, in the order added.
    pub services: Vec<ServiceRow>,
    /// The sync daemon's mode and counters, when one runs.
    pub sync: Option<(crate::sync::SyncMode, crate::sync::SyncCounters)>,
}

impl Director {
    /// The listings' content, copied out: to print later, elsewhere, or added up with the
    /// tables of directors that share the work ([`Table::add`]).
    pub fn table(&self) -> Table {
        let services = self
            .services()
            .map(|(_, service)| ServiceRow {
                key: service.key(),
                scheduler: service.scheduler(),
                flags: service.flags(),
                persistence: service.persistence(),
                one_packet: service.one_packet(),
                counts: Counts::of(service.stats()),
                reals: service
                    .reals()
                    .iter()
                    .filter_map(|&id| self.real(id))
                    .map(|real| RealRow {
                        addr: real.addr(),
                        weight: real.weight(),
                        thresholds: real.thresholds(),
                        active: real.active_conns(),
                        inactive: real.inactive_conns(),
                        persistent: real.persistent_conns(),
                        overloaded: real.is_overloaded(),
                        counts: Counts::of(real.stats()),
                    })
                    .collect(),
            })
            .collect();
        Table {
            capacity: self.capacity(),
            timeouts: self.timeouts().settings(),
            connections: self.connection_count(),
            templates: self.template_count(),
            totals: Counts::of(self.totals()),
            services,
            sync: self.sync_config().map(|c| (c.mode, *self.sync_counters())),
        }
    }
}

impl Table {
    /// Adds another director's table to this one, as for directors that share an
    /// interface, each with its own connections: counters, rates, connection counts and
    /// capacities are summed for the same service and real server; the configuration
    /// (scheduler, flags, persistence, one-packet scheduling, weights, thresholds,
    /// timeouts) is this table's. A
    /// service or real server only `other` has is appended.
    pub fn add(&mut self, other: &Self) {
        self.capacity = self.capacity.saturating_add(other.capacity);
        self.connections = self.connections.saturating_add(other.connections);
        self.templates = self.templates.saturating_add(other.templates);
        self.totals.add(&other.totals);
        if let (Some((_, mine)), Some((_, theirs))) = (&mut self.sync, &other.sync) {
            mine.add(theirs);
        }
        for theirs in &other.services {
            let Some(ours) = self.services.iter_mut().find(|s| s.key == theirs.key) else {
                self.services.push(theirs.clone());
                continue;
            };
            ours.counts.add(&theirs.counts);
            for real in &theirs.reals {
                match ours.reals.iter_mut().find(|r| r.addr == real.addr) {
                    Some(mine) => {
                        mine.active = mine.active.saturating_add(real.active);
                        mine.inactive = mine.inactive.saturating_add(real.inactive);
                        mine.persistent = mine.persistent.saturating_add(real.persistent);
                        mine.overloaded |= real.overloaded;
                        mine.counts.add(&real.counts);
                    }
                    None => ours.reals.push(real.clone()),
                }
            }
        }
    }

    /// The service with this key.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceRow> {
        self.services.iter().find(|s| s.key == *key)
    }
}
