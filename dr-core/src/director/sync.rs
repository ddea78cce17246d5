//! The director's side of connection sync: the hook on the packet path that queues
//! records as a master, the import of records as a backup, and the bulk resync.

use super::{Director, release};
use crate::conn::{Conn, ConnId, ConnState, FLAG_ASSURED, FLAG_INACTIVE, FLAG_RETIRED, expiry};
use crate::flow::Protocol;
use crate::sync::export::{self, Outbox, Subject, SyncMeta};
use crate::sync::import::{self, Incoming, TEMPLATE_DEFAULT_TIMEOUT};
use crate::sync::wire::{self, Entry, ResyncMark, SyncRecord, flags};
use crate::sync::{
    MAX_DEFERRED_RESYNCS, MAX_RESYNC_PEERS, RESYNC_HOLD_OFF, ResyncPhase, ResyncStatus, SyncConfig,
    SyncConfigError, SyncCounters, SyncError,
};
use crate::time::Instant;

/// Slots the bulk resync looks at per [`Director::poll_sync`] call, at most.
const BULK_SCAN: usize = 4096;

/// A running sync daemon.
#[derive(Clone, Debug)]
pub(super) struct SyncState {
    config: SyncConfig,
    outbox: Outbox,
    /// A bulk resync under way.
    bulk: Option<Bulk>,
    /// When the last bulk resync ended: requests within [`RESYNC_HOLD_OFF`] are deferred.
    bulk_ended: Option<Instant>,
    /// The requesters whose requests were deferred, answered together by the next bulk
    /// resync.
    deferred: Requesters,
    /// This director's own resync, as a backup.
    resync: ResyncWait,
}

/// A bulk resync being sent.
#[derive(Clone, Copy, Debug)]
struct Bulk {
    /// The next slot.
    slot: usize,
    /// Whether templates are being sent (they go after every connection).
    templates: bool,
    /// The origins of the directors whose requests this answers.
    requesters: Requesters,
    /// Records sent so far.
    records: u32,
}

/// Up to [`MAX_DEFERRED_RESYNCS`] requesters' origins, without allocating.
#[derive(Clone, Copy, Debug, Default)]
struct Requesters {
    origins: [u32; MAX_DEFERRED_RESYNCS],
    count: usize,
}

impl Requesters {
    fn one(origin: u32) -> Self {
        let mut r = Self::default();
        r.push(origin);
        r
    }

    fn as_slice(&self) -> &[u32] {
        &self.origins[..self.count]
    }

    fn contains(&self, origin: u32) -> bool {
        self.as_slice().contains(&origin)
    }

    /// Adds `origin`; false when full.
    fn push(&mut self, origin: u32) -> bool {
        if self.count == MAX_DEFERRED_RESYNCS {
            return false;
        }
        self.origins[self.count] = origin;
        self.count += 1;
        true
    }
}

/// A peer answering a resync request, in parts (one per worker of its process).
#[derive(Clone, Copy, Debug)]
struct Peer {
    origin: u32,
    /// The parts its marks name (the most of them).
    parts: u8,
    /// A bit per part whose end mark came.
    ended: u64,
}

impl Peer {
    const NONE: Self = Self { origin: 0, parts: 1, ended: 0 };

    /// Whether every part of its answer ended.
    fn done(&self) -> bool {
        let all = if self.parts >= 64 { u64::MAX } else { (1u64 << self.parts) - 1 };
        self.ended & all == all
    }
}

/// A backup's wait for the answers to its resync request.
#[derive(Clone, Copy, Debug)]
struct ResyncWait {
    phase: ResyncPhase,
    requested: Option<Instant>,
    ended: Option<Instant>,
    /// The peers that started an answer, and the parts of it each ended.
    peers: [Peer; MAX_RESYNC_PEERS],
    count: usize,
    records_announced: u64,
    records_imported: u64,
}

impl ResyncWait {
    const IDLE: Self = Self {
        phase: ResyncPhase::Idle,
        requested: None,
        ended: None,
        peers: [Peer::NONE; MAX_RESYNC_PEERS],
        count: 0,
        records_announced: 0,
        records_imported: 0,
    };

    /// Ends a wait whose time is up.
    fn expire(&mut self, now: Instant, wait: crate::time::Duration) {
        if self.phase == ResyncPhase::Waiting
            && let Some(requested) = self.requested
            && now >= requested.saturating_add(wait)
        {
            self.phase = ResyncPhase::TimedOut;
            self.ended = Some(requested.saturating_add(wait));
        }
    }

    /// A peer's mark: returns false when there is no room for another peer.
    fn mark(&mut self, now: Instant, mark: &ResyncMark, end: bool) -> bool {
        let known = self.peers[..self.count].iter().position(|p| p.origin == mark.answerer);
        let at = match known {
            Some(at) => at,
            None if self.count < MAX_RESYNC_PEERS => {
                self.peers[self.count] = Peer { origin: mark.answerer, parts: 1, ended: 0 };
                self.count += 1;
                self.count - 1
            }
            None => return false,
        };
        let peer = &mut self.peers[at];
        // The most parts any of its marks names: a peer of several workers ends with all.
        peer.parts = peer.parts.max(mark.parts);
        let bit = 1u64.checked_shl(u32::from(mark.part)).unwrap_or(0);
        if end && peer.ended & bit == 0 {
            peer.ended |= bit;
            self.records_announced = self.records_announced.wrapping_add(u64::from(mark.records));
        }
        if self.peers[..self.count].iter().all(Peer::done) {
            self.phase = ResyncPhase::Done;
            self.ended = Some(now);
        }
        true
    }

    fn status(&self) -> ResyncStatus {
        let peers_ended = self.peers[..self.count].iter().filter(|p| p.done()).count();
        ResyncStatus {
            phase: self.phase,
            requested: self.requested,
            ended: self.ended,
            peers: self.count,
            peers_ended,
            records_announced: self.records_announced,
            records_imported: self.records_imported,
        }
    }
}

impl Director {
    /// Starts the sync daemon ([`SyncConfig::mode`]: master, backup or both), replacing one
    /// that runs. Reserves the outgoing queue and, for a master (or both), the sync state of
    /// every table slot: the only allocation sync makes. Entries already in the table are
    /// sent by the kernel's rules from their next packet on.
    ///
    /// # Errors
    ///
    /// A [`SyncConfigError`] naming the field out of range; nothing changes then.
    pub fn start_sync(&mut self, config: SyncConfig) -> Result<(), SyncConfigError> {
        config.validate()?;
        if config.mode.is_master() {
            self.conns.enable_sync_meta();
        } else {
            self.conns.disable_sync_meta();
        }
        self.sync = Some(SyncState {
            config,
            outbox: Outbox::new(&config),
            bulk: None,
            bulk_ended: None,
            deferred: Requesters::default(),
            resync: ResyncWait::IDLE,
        });
        Ok(())
    }

    /// Stops the sync daemon; what was queued and not fetched is dropped. The counters stay.
    pub fn stop_sync(&mut self) {
        self.sync = None;
        self.conns.disable_sync_meta();
    }

    /// The running sync daemon's settings.
    pub fn sync_config(&self) -> Option<&SyncConfig> {
        self.sync.as_ref().map(|s| &s.config)
    }

    /// What sync did since the director was built.
    pub fn sync_counters(&self) -> &SyncCounters {
        &self.sync_counters
    }

    /// Counts `n` sync messages [`poll_sync`](Self::poll_sync) gave that could not be sent
    /// (a full socket buffer: the kernel's master waits there, a worker does not), in
    /// [`SyncCounters::send_drops`].
    pub fn count_sync_send_drops(&mut self, n: u64) {
        self.sync_counters.send_drops = self.sync_counters.send_drops.wrapping_add(n);
    }

    /// Counts `n` sync datagrams received but dropped before
    /// [`import_sync`](Self::import_sync) (a full queue to this director), in
    /// [`SyncCounters::receive_drops`].
    pub fn count_sync_receive_drops(&mut self, n: u64) {
        self.sync_counters.receive_drops = self.sync_counters.receive_drops.wrapping_add(n);
    }

    /// Whether a bulk resync is being sent.
    pub fn sync_bulk_pending(&self) -> bool {
        self.sync.as_ref().is_some_and(|s| s.bulk.is_some())
    }

    /// Queues dr's bulk resync request (a message of its own, sent by the next
    /// [`poll_sync`](Self::poll_sync)): a dr master that imports it answers with its whole
    /// table, between a start and an end mark. A backup sends one when it starts, so that a
    /// restarted backup gets the live table back; a backup (or both) then waits for the
    /// answers, as [`await_resync`](Self::await_resync). False when no sync daemon runs.
    pub fn request_resync(&mut self, now: Instant) -> bool {
        if !self.await_resync(now) {
            return false;
        }
        let Some(sync) = &mut self.sync else { return false };
        let (record, option) = wire::resync_request_from(sync.config.origin);
        let mut dropped = sync.outbox.finish();
        dropped += sync.outbox.push(now, &record, &option);
        dropped += sync.outbox.finish();
        let c = &mut self.sync_counters;
        c.queue_drops = c.queue_drops.wrapping_add(dropped);
        c.resync_requests_sent = c.resync_requests_sent.wrapping_add(1);
        true
    }

    /// Waits for the answers to a resync request of this director's origin without sending
    /// one (another director of the same origin, such as another worker, sent it): the
    /// [`resync_status`](Self::resync_status) is [`ResyncPhase::Waiting`] from `now` until
    /// every peer that started an answer (a start mark for this origin) ended it, or
    /// [`SyncConfig::resync_wait`] passed. A master alone does not wait (its status stays
    /// [`ResyncPhase::Idle`]). False when no sync daemon runs.
    pub fn await_resync(&mut self, now: Instant) -> bool {
        let Some(sync) = &mut self.sync else { return false };
        if sync.config.mode.is_backup() {
            sync.resync = ResyncWait {
                phase: ResyncPhase::Waiting,
                requested: Some(now),
                ..ResyncWait::IDLE
            };
        }
        true
    }

    /// Where this director's bulk resync stands at `now` (a wait past
    /// [`SyncConfig::resync_wait`] is timed out); `None` when no sync daemon runs.
    pub fn resync_status(&self, now: Instant) -> Option<ResyncStatus> {
        let sync = self.sync.as_ref()?;
        let mut wait = sync.resync;
        wait.expire(now, sync.config.resync_wait);
        Some(wait.status())
    }

    /// The next sync message to send, if one is ready: call after every frame or burst and
    /// after [`handle_timeout`](Self::handle_timeout), until it gives `None`, and send each
    /// as one UDP datagram to the sync group. A partly filled message is ready 2 s after its
    /// first record; a bulk resync under way fills the next message here, looking at a
    /// bounded number of table slots per call. Each call gives at most one message: the
    /// caller paces a bulk resync by how many it takes per turn.
    pub fn poll_sync(&mut self, now: Instant) -> Option<&[u8]> {
        let now = self.clock.max(now);
        self.start_deferred_resync(now);
        if self.sync.as_ref().is_some_and(|s| s.bulk.is_some() && !s.outbox.has_ready()) {
            self.bulk_step(now);
        }
        let Self { sync, sync_counters, .. } = self;
        let sync = sync.as_mut()?;
        if !sync.outbox.has_ready() {
            sync.outbox.flush_due(now);
        }
        let (message, records) = sync.outbox.pop()?;
        sync_counters.messages_sent = sync_counters.messages_sent.wrapping_add(1);
        sync_counters.records_sent = sync_counters.records_sent.wrapping_add(records as u64);
        Some(message)
    }

    /// When the message being filled is due to be sent, or the deferred resync requests
    /// are due to be answered, whichever is first.
    pub(super) fn sync_deadline(&self) -> Option<Instant> {
        let sync = self.sync.as_ref()?;
        let deferred = match (sync.deferred.count, sync.bulk, sync.bulk_ended) {
            (0, _, _) | (_, Some(_), _) => None,
            (_, None, ended) => {
                Some(ended.map_or(Instant::ZERO, |t| t.saturating_add(RESYNC_HOLD_OFF)))
            }
        };
        [sync.outbox.deadline(), deferred].into_iter().flatten().min()
    }

    /// Finishes a message whose first record has waited 2 s, and starts the bulk resync
    /// that answers deferred requests once their hold-off is over.
    pub(super) fn sync_flush(&mut self, now: Instant) {
        if let Some(sync) = &mut self.sync {
            sync.outbox.flush_due(now);
        }
        self.start_deferred_resync(now);
    }

    /// Imports one sync datagram, as the kernel's backup does (see
    /// [`sync::import`](crate::sync::import)); a master takes only the bulk resync requests
    /// in it, and answers one at once only when no bulk resync is under way nor ended less
    /// than [`RESYNC_HOLD_OFF`] ago (otherwise it is deferred, counted in
    /// [`SyncCounters::resync_requests_deferred`]). A backup takes the datagrams of its
    /// sync ID, or every one with sync ID 0; a master the requests of its sync ID and of 0,
    /// since a backup left at 0 takes every ID. Returns how many records were read. Never
    /// panics and never allocates.
    ///
    /// # Errors
    ///
    /// The [`SyncError`] that ended the datagram: records before it were taken, as the
    /// kernel takes them.
    pub fn import_sync(&mut self, now: Instant, datagram: &[u8]) -> Result<usize, SyncError> {
        let now = self.advance_clock(now);
        self.sync_counters.messages_received = self.sync_counters.messages_received.wrapping_add(1);
        let Some(config) = self.sync.as_ref().map(|s| s.config) else {
            self.sync_counters.not_backup = self.sync_counters.not_backup.wrapping_add(1);
            return Ok(0);
        };
        let message = match wire::parse(datagram) {
            Ok(message) => message,
            Err(e) => {
                self.sync_counters.messages_bad = self.sync_counters.messages_bad.wrapping_add(1);
                return Err(e);
            }
        };
        // A backup at 0 takes every ID; a master answers its own and 0's requests; both
        // does either.
        let backup_ok =
            config.mode.is_backup() && (config.syncid == 0 || message.syncid == config.syncid);
        let master_ok =
            config.mode.is_master() && (message.syncid == 0 || message.syncid == config.syncid);
        if !backup_ok && !master_ok {
            self.sync_counters.syncid_ignored = self.sync_counters.syncid_ignored.wrapping_add(1);
            return Ok(0);
        }
        if let Some(sync) = &mut self.sync {
            sync.resync.expire(now, config.resync_wait);
        }
        let mut read = 0;
        let mut refused = false;
        for entry in message.records() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.sync_counters.messages_bad =
                        self.sync_counters.messages_bad.wrapping_add(1);
                    return Err(e);
                }
            };
            read += 1;
            self.sync_counters.records_received =
                self.sync_counters.records_received.wrapping_add(1);
            let o = &entry.options;
            if o.resync_request {
                self.sync_counters.resync_requests_received =
                    self.sync_counters.resync_requests_received.wrapping_add(1);
                if master_ok {
                    self.answer_resync(now, o.resync_requester);
                }
            } else if let Some(mark) = o.resync_begin.or(o.resync_end) {
                if backup_ok {
                    self.resync_mark(now, &mark, o.resync_end.is_some());
                } else {
                    self.sync_counters.resync_marks_ignored =
                        self.sync_counters.resync_marks_ignored.wrapping_add(1);
                }
            } else if backup_ok {
                self.import_entry(now, &entry, message.version);
            } else {
                refused = true;
            }
        }
        if refused {
            // A master only; or a backup too (both) to whom the sync ID is another's.
            if config.mode.is_backup() {
                self.sync_counters.syncid_ignored =
                    self.sync_counters.syncid_ignored.wrapping_add(1);
            } else {
                self.sync_counters.not_backup = self.sync_counters.not_backup.wrapping_add(1);
            }
        }
        Ok(read)
    }

    /// A resync request from `requester`: answered at once unless it is this director's
    /// own, or one is being answered or was answered less than [`RESYNC_HOLD_OFF`] ago;
    /// then deferred (see [`sync`](crate::sync)).
    fn answer_resync(&mut self, now: Instant, requester: u32) {
        let Some(sync) = &mut self.sync else { return };
        let c = &mut self.sync_counters;
        if sync.config.origin != 0 && requester == sync.config.origin {
            c.own_ignored = c.own_ignored.wrapping_add(1);
            return;
        }
        let held = sync.bulk_ended.is_some_and(|t| now < t.saturating_add(RESYNC_HOLD_OFF));
        if sync.bulk.is_some() || held {
            let answering = sync.bulk.is_some_and(|b| b.requesters.contains(requester));
            if answering || sync.deferred.contains(requester) || !sync.deferred.push(requester) {
                c.resync_requests_ignored = c.resync_requests_ignored.wrapping_add(1);
            } else {
                c.resync_requests_deferred = c.resync_requests_deferred.wrapping_add(1);
            }
            return;
        }
        self.begin_bulk(now, Requesters::one(requester));
    }

    /// Starts the bulk resync that answers the deferred requests, once the hold-off after
    /// the last one is over.
    fn start_deferred_resync(&mut self, now: Instant) {
        let Some(sync) = &mut self.sync else { return };
        if sync.deferred.count == 0
            || sync.bulk.is_some()
            || sync.bulk_ended.is_some_and(|t| now < t.saturating_add(RESYNC_HOLD_OFF))
        {
            return;
        }
        let requesters = core::mem::take(&mut sync.deferred);
        self.begin_bulk(now, requesters);
    }

    /// Starts a bulk resync for `requesters`: a start mark for each, then the table.
    fn begin_bulk(&mut self, now: Instant, requesters: Requesters) {
        let Some(sync) = &mut self.sync else { return };
        sync.bulk = Some(Bulk { slot: 0, templates: false, requesters, records: 0 });
        let mut dropped = 0;
        for &requester in requesters.as_slice() {
            let mark = ResyncMark::new(requester, sync.config.origin, 0)
                .in_part(sync.config.part, sync.config.parts);
            let (record, option) = wire::resync_mark_record(false, &mark);
            dropped += sync.outbox.push(now, &record, &option);
        }
        let c = &mut self.sync_counters;
        c.queue_drops = c.queue_drops.wrapping_add(dropped);
    }

    /// A peer's start or end mark: counted in this director's wait when it answers this
    /// director's request.
    fn resync_mark(&mut self, now: Instant, mark: &ResyncMark, end: bool) {
        let Some(sync) = &mut self.sync else { return };
        let c = &mut self.sync_counters;
        let origin = sync.config.origin;
        if origin != 0 && mark.answerer == origin {
            c.own_ignored = c.own_ignored.wrapping_add(1);
            return;
        }
        let w = &mut sync.resync;
        if w.phase != ResyncPhase::Waiting || mark.requester != origin || !w.mark(now, mark, end) {
            c.resync_marks_ignored = c.resync_marks_ignored.wrapping_add(1);
            return;
        }
        if end {
            c.resync_ends = c.resync_ends.wrapping_add(1);
        } else {
            c.resync_begins = c.resync_begins.wrapping_add(1);
        }
    }

    fn import_entry(&mut self, now: Instant, entry: &Entry, version: u8) {
        let c = &mut self.sync_counters;
        let Some(incoming) = import::check(entry, version) else {
            c.skipped = c.skipped.wrapping_add(1);
            return;
        };
        // A firewall-mark service's entry: dr has none, so no service takes it.
        if entry.record.fwmark != 0 {
            c.no_real = c.no_real.wrapping_add(1);
            return;
        }
        let hash = self.conns.hash(&incoming.key);
        if let Some(id) = self.conns.find(hash, &incoming.key, incoming.template) {
            let conn = self.conns.get(id);
            let same = self.reals.get(conn.real.index()).is_some_and(|r| r.addr == incoming.real);
            if incoming.template || same {
                self.update_imported(now, id, &incoming);
                self.sync_counters.updated = self.sync_counters.updated.wrapping_add(1);
                return;
            }
            if incoming.inactive {
                self.sync_counters.stale = self.sync_counters.stale.wrapping_add(1);
                return;
            }
            let conn = self.conns.remove(id);
            release(&mut self.reals, &mut self.counters, &conn);
            self.sync_counters.replaced = self.sync_counters.replaced.wrapping_add(1);
        }
        let real = self.find_service_for(&incoming.key).and_then(|service| {
            self.services[service.index()]
                .reals
                .iter()
                .copied()
                .find(|r| self.reals[r.index()].addr == incoming.real)
        });
        let Some(real) = real.filter(|r| self.reals[r.index()].available) else {
            self.sync_counters.no_real = self.sync_counters.no_real.wrapping_add(1);
            return;
        };
        let conn = if incoming.template {
            Conn::template(incoming.key, real)
        } else {
            Conn::new(incoming.key, real)
        };
        if !self.make_room(1) {
            self.sync_counters.table_full = self.sync_counters.table_full.wrapping_add(1);
            return;
        }
        let Ok(id) = self.conns.insert(hash, conn) else {
            self.sync_counters.table_full = self.sync_counters.table_full.wrapping_add(1);
            return;
        };
        self.reals[real.index()].bind(incoming.template);
        if let Some(meta) = self.conns.sync_meta_mut(id) {
            // ip_vs_proc_sync_conn: an entry a record made carries IP_VS_CONN_F_SYNC.
            meta.synced = true;
        }
        self.update_imported(now, id, &incoming);
        self.sync_counters.imported = self.sync_counters.imported.wrapping_add(1);
    }

    /// Sets an entry's state, INACTIVE bit and timer from a record.
    fn update_imported(&mut self, now: Instant, id: ConnId, incoming: &Incoming) {
        let conn = self.conns.get_mut(id);
        let real = self.reals.get_mut(conn.real.index());
        if incoming.template {
            if incoming.assured {
                conn.flags |= FLAG_ASSURED;
            } else {
                conn.flags &= !FLAG_ASSURED;
            }
        } else {
            conn.state = incoming.state;
            if conn.is_inactive() != incoming.inactive
                && let Some(real) = real
            {
                if incoming.inactive {
                    real.active = real.active.saturating_sub(1);
                    real.inactive = real.inactive.saturating_add(1);
                    conn.flags |= FLAG_INACTIVE;
                } else {
                    real.inactive = real.inactive.saturating_sub(1);
                    real.active = real.active.saturating_add(1);
                    conn.flags &= !FLAG_INACTIVE;
                }
            }
        }
        let timeout = incoming.timeout.unwrap_or(if incoming.template {
            TEMPLATE_DEFAULT_TIMEOUT
        } else {
            self.timeouts.of(incoming.state)
        });
        self.conns.rearm(id, expiry(now, timeout));
        // Both (a master that imports): ip_vs_proc_conn sets in_pkts to the threshold and
        // old_state to the state, new or updated, so an entry that then carries traffic
        // here is sent again only `period` packets on (or at a change of state), never
        // in answer to the import itself; a new one's sync_endtime is its creation.
        let threshold = self.sync.as_ref().map_or(0, |s| s.config.threshold);
        let state = if incoming.template {
            u16::from(incoming.assured)
        } else {
            import::wire_state(incoming.state)
        };
        if let Some(meta) = self.conns.sync_meta_mut(id) {
            meta.pkts = threshold;
            meta.old_state = state;
            if meta.end == SyncMeta::UNSET {
                meta.end = now.as_nanos() & !3;
            }
        }
        if let Some(sync) = &mut self.sync
            && sync.resync.phase == ResyncPhase::Waiting
        {
            sync.resync.records_imported = sync.resync.records_imported.wrapping_add(1);
        }
    }

    /// The record of an entry as a master sends it; `None` for a retired template.
    /// `synced`: a record made it ([`flags::SYNC`], sent on as the kernel's `cp->flags`).
    fn record_of(&self, conn: &Conn, synced: bool) -> Option<SyncRecord> {
        if conn.flags & FLAG_RETIRED != 0 {
            return None;
        }
        let real = self.reals.get(conn.real.index())?;
        let template = conn.is_template();
        // A Direct Routing entry: DROUTE | NOOUTPUT, and INACTIVE as counted (a template
        // keeps the INACTIVE every new entry starts with).
        let mut f = flags::DROUTE | flags::NOOUTPUT;
        if template {
            f |= flags::TEMPLATE | flags::INACTIVE;
        } else if conn.is_inactive() {
            f |= flags::INACTIVE;
        }
        if synced {
            f |= flags::SYNC;
        }
        let (state, timeout) = if template {
            (u16::from(conn.flags & FLAG_ASSURED != 0), self.template_timeout(conn))
        } else {
            (import::wire_state(conn.state), self.timeouts.of(conn.state))
        };
        let mut record = SyncRecord::connection(conn.key, real.addr);
        record.flags = f;
        record.state = state;
        record.timeout = Some(timeout.as_secs().min(u64::from(u32::MAX)) as u32);
        Some(record)
    }

    /// The master's hook after a packet of entry `id` was counted (`ip_vs_sync_conn`): the
    /// connection, then the template that controls it, each if the rules say so.
    #[inline(never)]
    pub(super) fn sync_forwarded(&mut self, now: Instant, id: ConnId) {
        let Some(config) = self.sync.as_ref().map(|s| s.config) else { return };
        if !config.mode.is_master() {
            return;
        }
        let conn = *self.conns.get(id);
        let subject = Subject {
            template: false,
            tcp: conn.key.protocol == Protocol::Tcp,
            state: import::wire_state(conn.state),
            timeout: self.timeouts.of(conn.state),
            in_persistence: conn.controller().is_some(),
        };
        self.sync_if_needed(now, id, &conn, subject);
        if let Some(template_id) = conn.controller() {
            self.sync_controller(now, template_id);
        }
    }

    /// The master's hook for the template that controls a forwarded connection (the
    /// `control:` step of `ip_vs_sync_conn`, the only step for a one-packet connection,
    /// which is never sent itself).
    pub(super) fn sync_controller(&mut self, now: Instant, template_id: ConnId) {
        let Some(config) = self.sync.as_ref().map(|s| s.config) else { return };
        if !config.mode.is_master() {
            return;
        }
        let template = *self.conns.get(template_id);
        let subject = Subject {
            template: true,
            tcp: template.key.protocol == Protocol::Tcp,
            state: u16::from(template.flags & FLAG_ASSURED != 0),
            timeout: self.template_timeout(&template),
            in_persistence: false,
        };
        self.sync_if_needed(now, template_id, &template, subject);
    }

    fn sync_if_needed(&mut self, now: Instant, id: ConnId, conn: &Conn, subject: Subject) {
        let Some(config) = self.sync.as_ref().map(|s| s.config) else { return };
        let Some(meta) = self.conns.sync_meta_mut(id) else { return };
        meta.pkts = meta.pkts.wrapping_add(1);
        let pkts = meta.pkts;
        if !export::needed(&config, meta, subject, now, pkts) {
            return;
        }
        let synced = meta.synced;
        let Some(record) = self.record_of(conn, synced) else { return };
        if let Some(sync) = &mut self.sync {
            let dropped = sync.outbox.push(now, &record, &[]);
            self.sync_counters.queue_drops = self.sync_counters.queue_drops.wrapping_add(dropped);
        }
    }

    /// Fills messages of the bulk resync from the table: every connection (but those a
    /// template controls, with `sync_persist_mode`), then every live template; stops when a
    /// message is finished or [`BULK_SCAN`] slots were looked at.
    fn bulk_step(&mut self, now: Instant) {
        let Some(sync) = &self.sync else { return };
        let Some(mut bulk) = sync.bulk else { return };
        let persist_mode = sync.config.persist_mode;
        let mut sent = 0u64;
        let mut dropped = 0u64;
        let mut done = false;
        for _ in 0..BULK_SCAN {
            if bulk.slot >= self.conns.slots_used() {
                if bulk.templates {
                    done = true;
                    break;
                }
                bulk.templates = true;
                bulk.slot = 0;
                continue;
            }
            let id = self.conns.live_at(bulk.slot);
            bulk.slot += 1;
            let Some(id) = id else { continue };
            let conn = self.conns.get(id);
            if conn.is_template() != bulk.templates
                || (persist_mode && conn.controller().is_some())
                || conn.state == ConnState::None && !conn.is_template()
            {
                continue;
            }
            let synced = self.conns.sync_meta(id).is_some_and(|m| m.synced);
            let Some(record) = self.record_of(conn, synced) else { continue };
            let Some(sync) = &mut self.sync else { return };
            dropped += sync.outbox.push(now, &record, &[]);
            sent += 1;
            bulk.records = bulk.records.saturating_add(1);
            if sync.outbox.has_ready() {
                break;
            }
        }
        let Some(sync) = &mut self.sync else { return };
        if done {
            // An end mark for each requester, then the message goes at once.
            for &requester in bulk.requesters.as_slice() {
                let mark = ResyncMark::new(requester, sync.config.origin, bulk.records)
                    .in_part(sync.config.part, sync.config.parts);
                let (record, option) = wire::resync_mark_record(true, &mark);
                dropped += sync.outbox.push(now, &record, &option);
            }
            dropped += sync.outbox.finish();
            sync.bulk = None;
            sync.bulk_ended = Some(now);
        } else {
            sync.bulk = Some(bulk);
        }
        let c = &mut self.sync_counters;
        c.bulk_records = c.bulk_records.wrapping_add(sent);
        c.queue_drops = c.queue_drops.wrapping_add(dropped);
    }
}
