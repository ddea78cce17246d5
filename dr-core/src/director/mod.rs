//! The director: the state machine that owns services, real servers, connections and the
//! neighbour table, and decides what happens to every frame.
//!
//! - [`Director::process`] is the packet path (in `packet.rs`): classify, find or create the
//!   connection, rewrite the MACs in place. It never allocates, never panics, never reads a
//!   clock. [`Director::process_burst`] (in `burst.rs`) decides a burst of frames the same
//!   way, classifying each chunk of frames and loading its table memory while the chunk
//!   before it is decided.
//! - [`Director::poll_timeout`] / [`Director::handle_timeout`] expire connections.
//! - The configuration methods (here) change services and real servers while the
//!   connections live on, as `ipvsadm` does.
//! - Layer 2 ownership of the VIPs (ARP, Neighbor Discovery, announcements, neighbour
//!   requests) is in `link.rs`.
//! - Packets to a VIP from a martian source (a VIP, unspecified, loopback, multicast or
//!   broadcast address) are dropped before anything else looks at them (`martian.rs`).

mod admin;
mod burst;
mod icmp;
mod link;
mod martian;
mod packet;
mod replies;
mod stats;
mod sync;

pub use burst::BURST;

use crate::config::{Config, ConfigError};
use crate::conn::{Conn, ConnState, ConnTable, FLAG_ASSURED, FLAG_RETIRED, Timeouts};
use crate::flow::FlowKey;
use crate::fragments::Fragments;
use crate::neigh::Neighbours;
use crate::service::{RealId, RealServer, Service, ServiceId, ServiceKey};
use crate::stats::{Counters, Stats};
use crate::time::Instant;
use alloc::vec::Vec;
use core::net::IpAddr;
use hashbrown::HashMap;

/// An LVS Direct Routing director.
///
/// A `Director` is a state machine: it performs no I/O and reads no clock. The embedder
/// owns the interface, the timer and the time, and drives it with these calls.
///
/// # The calling protocol
///
/// 1. **Build** it with [`Director::new`], then add services and real servers
///    ([`add_service`](Self::add_service), [`add_real`](Self::add_real)). Send the frames of
///    [`announcements`](Self::announcements) once the interface is up.
/// 2. **Every frame** received on the interface goes to [`process`](Self::process) (or
///    many at once to [`process_burst`](Self::process_burst)) with the current time. The
///    verdict says what to do with it: [`Verdict::Forward`](crate::Verdict::Forward) and [`Verdict::Reply`](crate::Verdict::Reply) mean
///    transmit the frame, rewritten in place, on the same interface; [`Verdict::Pass`](crate::Verdict::Pass)
///    means give it to the host's stack (or drop it, if the host must not see it);
///    [`Verdict::Drop`](crate::Verdict::Drop) means discard it. The frame is not used after the call returns.
/// 3. **After each frame or burst**, drain [`poll_reply`](Self::poll_reply): ICMP
///    port-unreachable replies a refused connection queued. The queue is small and bounded;
///    what is not drained before it fills is counted in
///    [`Counters::icmp_suppressed`](crate::Counters::icmp_suppressed) and lost.
/// 4. **Timers**: [`poll_timeout`](Self::poll_timeout) gives the earliest time there is
///    work; call [`handle_timeout`](Self::handle_timeout) at or after it. Then drain
///    [`poll_neighbour_request`](Self::poll_neighbour_request) (ARP requests and Neighbor
///    Solicitations for real servers whose MAC is not known yet or due for refresh) and
///    transmit what it gives; a request not fetched stays due until it is.
///    Re-read `poll_timeout` after every `process`, `handle_timeout` and configuration call:
///    each may move it.
/// 5. **Configuration** may change at any time between frames (services, real servers,
///    weights, thresholds, persistence, timeouts, [`zero_stats`](Self::zero_stats)); the
///    connections of what stays live on, as with `ipvsadm`. A change applies to the table as
///    of the last time given; call `handle_timeout(now)` first to apply it as of now.
///
/// Time never runs backwards inside the director: a time earlier than one seen before
/// counts as that one. Every call that takes a time first brings the table up to it,
/// deciding every timer that came due in deadline order as the kernel's timers would have
/// fired, so verdicts, counts, scheduler picks, templates and rates do not depend on how
/// often or how late `handle_timeout` is called; calling it on time keeps the listings and
/// counts that [`connections`](Self::connections) and the statistics show current between
/// frames, and spreads the expiry work instead of handing it to the next frame.
///
/// [`Driver`](crate::Driver) runs this loop over any [`FrameIo`](crate::FrameIo) backend.
#[derive(Debug)]
pub struct Director {
    config: Config,
    timeouts: Timeouts,
    conns: ConnTable,
    services: Vec<Service>,
    service_index: HashMap<ServiceKey, ServiceId, ahash::RandomState>,
    /// Each VIP with the number of services on it.
    vips: HashMap<IpAddr, u32, ahash::RandomState>,
    /// The VIPs in the order their first service was added.
    vip_order: Vec<IpAddr>,
    /// The buckets of the VIPs, so that the packet path tells a source is no VIP cheaply.
    vip_filter: martian::VipFilter,
    /// Services on port 0 (any port): only when there are some does a miss look for one.
    port_zero_services: u32,
    reals: Vec<RealServer>,
    neighbours: Neighbours,
    counters: Counters,
    totals: Stats,
    /// The latest `now` seen: time never runs backwards inside the director.
    clock: Instant,
    /// ICMP replies waiting to be sent.
    replies: replies::Replies,
    /// Where the first fragments of recent datagrams went.
    fragments: Fragments,
    /// When the rate estimators next sample the counters: every 2 s from the first time
    /// the director is given.
    next_estimate: Option<Instant>,
    /// Where a burst keeps the frames it classified ahead of deciding them.
    ahead: burst::Ahead,
    /// The connection sync daemon, when one runs.
    sync: Option<sync::SyncState>,
    /// What sync did.
    sync_counters: crate::sync::SyncCounters,
}

#[cfg(fuzzing)]
fuzzing_clone!(Director {
    config,
    timeouts,
    conns,
    services,
    service_index,
    vips,
    vip_order,
    port_zero_services,
    reals,
    neighbours,
    counters,
    totals,
    clock,
    replies,
    fragments,
    next_estimate,
    ahead,
    vip_filter,
    sync,
    sync_counters,
});

/// A read-only view of one connection entry, for listings (`ipvsadm -L -c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The connection's key. A template's has client port 0, the client address masked by
    /// the service's netmask, and the service's port (65535 once retired).
    pub key: FlowKey,
    /// Its state (`None` for a template).
    pub state: ConnState,
    /// The service it belongs to.
    pub service: ServiceId,
    /// The real server it is bound to.
    pub real: RealId,
    /// When it expires unless another packet re-arms it.
    pub expires: Instant,
    /// Whether it is a connection or a persistence template.
    pub kind: ConnKind,
}

/// What a connection entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// A connection; `persistent` when a template controls it.
    Connection {
        /// A persistence template controls it.
        persistent: bool,
    },
    /// A persistence template.
    Template {
        /// The live connections it controls (`n_control`).
        controlled: u32,
        /// One of its TCP connections reached ESTABLISHED (listed as `ASSURED`).
        assured: bool,
        /// Found invalid (its server was removed or quiesced): no new connection uses it.
        retired: bool,
    },
}

impl Director {
    /// Builds a director, reserving all memory for its connection table.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field that is out of range.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let seed = config.hash_seed;
        let mut tables = 0;
        let mut hasher = || {
            tables += 1;
            crate::hashing::keyed(seed, tables)
        };
        let mut timeouts = Timeouts::default();
        timeouts.apply(config.timeouts);
        Ok(Self {
            conns: ConnTable::new(config.capacity, config.hash_seed),
            timeouts,
            services: Vec::new(),
            service_index: HashMap::with_hasher(hasher()),
            vips: HashMap::with_hasher(hasher()),
            vip_order: Vec::new(),
            vip_filter: martian::VipFilter::default(),
            port_zero_services: 0,
            reals: Vec::new(),
            neighbours: Neighbours::new(hasher(), config.neighbour_refresh),
            counters: Counters::default(),
            totals: Stats::default(),
            clock: Instant::ZERO,
            replies: replies::Replies::default(),
            fragments: Fragments::new(config.fragment_capacity, config.fragment_timeout, hasher()),
            next_estimate: None,
            ahead: burst::Ahead::new(),
            sync: None,
            sync_counters: crate::sync::SyncCounters::default(),
            config,
        })
    }

    /// The configuration the director was built with (timeouts as last set).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The timeout of every state.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The service with this handle, unless it was removed.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id.index()).filter(|s| !s.removed)
    }

    /// Every service, in the order added, with its handle.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &Service)> + '_ {
        self.services
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.removed)
            .map(|(i, s)| (ServiceId::from_index(i), s))
    }

    /// The service for `(protocol, VIP, port)`.
    pub fn find_service(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.service_index.get(key).copied()
    }

    /// The VIPs of the services, in the order their first service was added.
    pub fn vips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vip_order.iter().copied()
    }

    /// The real server with this handle.
    pub fn real(&self, id: RealId) -> Option<&RealServer> {
        self.reals.get(id.index())
    }

    /// Every real server ever added, with its handle: those removed from their service
    /// linger (unavailable) with their connections and come back if added again.
    pub fn reals(&self) -> impl Iterator<Item = (RealId, &RealServer)> + '_ {
        self.reals.iter().enumerate().map(|(i, r)| (RealId::from_index(i), r))
    }

    /// Every connection entry and persistence template, in the table's (seeded hash) order.
    pub fn connections(&self) -> impl Iterator<Item = ConnInfo> + '_ {
        self.conns.iter().map(|c| self.info(c))
    }

    /// The connection with this key, as the packet path finds it (templates are not found
    /// this way). Its timer may have run out if [`handle_timeout`](Self::handle_timeout) has
    /// not been called since: see [`ConnInfo::expires`].
    pub fn connection(&self, key: &FlowKey) -> Option<ConnInfo> {
        let id = self.conns.find(self.conns.hash(key), key, false)?;
        Some(self.info(self.conns.get(id)))
    }

    fn info(&self, c: &Conn) -> ConnInfo {
        ConnInfo {
            key: c.key,
            state: c.state,
            service: self.reals.get(c.real.index()).map_or(ServiceId::from_index(0), |r| r.service),
            real: c.real,
            expires: c.expires,
            kind: if c.is_template() {
                ConnKind::Template {
                    controlled: c.controlled(),
                    assured: c.flags & FLAG_ASSURED != 0,
                    retired: c.flags & FLAG_RETIRED != 0,
                }
            } else {
                ConnKind::Connection { persistent: c.controller().is_some() }
            },
        }
    }

    /// The number of entries in the connection table: connections and templates.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The number of persistence templates in the connection table.
    pub fn template_count(&self) -> usize {
        self.conns.templates()
    }

    /// The connection table's fixed capacity.
    pub fn capacity(&self) -> usize {
        self.conns.capacity()
    }

    /// How many fragmented datagrams are tracked at once.
    pub fn fragment_capacity(&self) -> usize {
        self.fragments.capacity()
    }

    /// Bytes reserved for the connection table at construction.
    pub fn table_bytes(&self) -> usize {
        self.conns.reserved_bytes()
    }

    /// Verdict and event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters summed over every service (`ipvsadm`'s totals).
    pub fn totals(&self) -> &Stats {
        &self.totals
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has work: a connection
    /// may expire, a neighbour request is due, or the rate estimators sample the counters
    /// (every 2 s once the director has been given a time), or a partly filled sync message
    /// is due to be sent. `None` when there is nothing to wait for.
    ///
    /// It may change after [`process`](Self::process), [`handle_timeout`](Self::handle_timeout)
    /// and [`add_real`](Self::add_real). Calling `handle_timeout` earlier than this is
    /// harmless, and calling it late changes no verdict, count or rate: every call that
    /// takes a time first expires what came due before it, in deadline order.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.next_expiry();
        let neighbours = self.neighbours.next_request_due(self.config.neighbour_retry);
        [conns, neighbours, self.next_estimate, self.sync_deadline()].into_iter().flatten().min()
    }

    /// Expires every connection and template whose time has come by `now`, each with the
    /// outcome its own timer would have had at its deadline, and takes every rate sample
    /// due. The work is proportional to the entries due, never a scan of the table.
    /// Neighbour requests that are due are fetched with
    /// [`poll_neighbour_request`](Self::poll_neighbour_request).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance_clock(now);
        self.sync_flush(now);
    }

    /// Clamps `now` to the latest time seen, starts the estimators' clock, and brings the
    /// table and the estimators up to it: whatever came due by then is done before
    /// anything else happens at `now`, so no result depends on how often
    /// [`handle_timeout`](Self::handle_timeout) is called.
    #[inline(always)]
    fn advance_clock(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        if self.next_estimate.is_none() && self.config.run_estimation {
            self.next_estimate = Some(self.clock.saturating_add(crate::stats::ESTIMATOR_INTERVAL));
        }
        let now = self.clock;
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        if due(self.conns.next_expiry()) || due(self.next_estimate) {
            self.catch_up(now);
        }
        now
    }

    /// Expires the entries due by `now` and takes the rate samples due.
    #[inline(never)]
    fn catch_up(&mut self, now: Instant) {
        let Self { conns, reals, counters, .. } = self;
        conns.expire(now, |conn| release(reals, counters, conn));
        self.run_estimators(now);
    }
}

/// Unbinds an entry that is going away from its real server's counts.
fn release(reals: &mut [RealServer], counters: &mut Counters, conn: &Conn) {
    if let Some(real) = reals.get_mut(conn.real.index()) {
        real.unbind(conn);
    }
    let counter = if conn.is_template() {
        &mut counters.templates_expired
    } else {
        &mut counters.conns_expired
    };
    *counter = counter.wrapping_add(1);
}

/// Why `addr` cannot be a VIP or a real server, if it cannot: it must be a unicast host
/// address another host on the LAN can have. Refused: unspecified and "this network"
/// (0.0.0.0/8, `::`), loopback (127.0.0.0/8, `::1`: the director itself), multicast
/// (224.0.0.0/4, ff00::/8, link-local groups included) and the IPv4 broadcast
/// 255.255.255.255. A real server may not be IPv6 link-local (fe80::/10) either: the
/// kernel refuses one that is not the host's own (`ip_vs_new_dest`), and Direct Routing
/// forwards to it by its address.
pub(crate) fn host_refusal(addr: IpAddr, real: bool) -> Option<&'static str> {
    Some(match addr {
        IpAddr::V4(a) if a.octets()[0] == 0 => "unspecified (0.0.0.0/8, this network)",
        IpAddr::V4(a) if a.is_loopback() => "loopback (127.0.0.0/8), the director's own host",
        IpAddr::V4(a) if a.is_multicast() => "multicast (224.0.0.0/4)",
        IpAddr::V4(a) if a.is_broadcast() => "the broadcast address",
        IpAddr::V6(a) if a.is_unspecified() => "unspecified (::)",
        IpAddr::V6(a) if a.is_loopback() => "loopback (::1), the director's own host",
        IpAddr::V6(a) if a.is_multicast() => "multicast (ff00::/8)",
        IpAddr::V6(a) if real && a.is_unicast_link_local() => {
            "link-local (fe80::/10), which the kernel refuses for a real server"
        }
        _ => return None,
    })
}
