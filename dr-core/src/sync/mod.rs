//! Connection synchronisation, wire-compatible with the kernel's sync daemon
//! (`net/netfilter/ipvs/ip_vs_sync.c`).
//!
//! A *master* director sends a record of each connection and persistence template when the
//! kernel's rules say so; a *backup* imports the records into its own table, so that when
//! it takes over the VIPs the flows continue to the same real servers. Messages are the
//! kernel's protocol version 1 (a backup also accepts version 0), so a dr director and a
//! kernel IPVS director can be master and backup of each other.
//!
//! Like the rest of the crate this is sans-I/O: the embedder owns the UDP socket
//! (multicast group [`wire::SYNC_GROUP`], port [`wire::SYNC_PORT`], TTL 1 by default).
//!
//! - [`Director::start_sync`](crate::Director::start_sync) reserves the outgoing queue and
//!   the per-entry sync state, once; nothing is allocated afterwards.
//! - A master: the packet path queues records as it forwards
//!   ([`export`]'s rules); drain [`Director::poll_sync`](crate::Director::poll_sync) after
//!   each frame or burst and send each datagram. A partly filled message is released 2 s
//!   after its first record ([`FLUSH_TIME`]); [`Director::poll_timeout`](crate::Director::poll_timeout)
//!   includes that deadline.
//! - A backup: hand each datagram received to
//!   [`Director::import_sync`](crate::Director::import_sync) ([`import`]'s rules).
//! - [`Director::request_resync`](crate::Director::request_resync) queues dr's bulk resync
//!   request (sent by a backup when it starts): a dr master that receives it sends its whole
//!   table, paced by `poll_sync`: each call fills at most one message, so the embedder
//!   decides how many go out per turn. Anyone on the sync LAN can send a request, so a
//!   master sends at most one bulk resync per [`RESYNC_HOLD_OFF`]: a request that comes
//!   while one is under way, or within the hold-off after the end of the last one, is
//!   deferred ([`SyncCounters::resync_requests_deferred`]) and answered, with every other
//!   deferred one, by one bulk resync when the hold-off is over; up to
//!   [`MAX_DEFERRED_RESYNCS`] requesters wait so, and a request from one already waiting
//!   or being answered, or from one more, is ignored and counted
//!   ([`SyncCounters::resync_requests_ignored`]).
//!   A master answers requests of its own sync ID and of 0 (a backup that takes every
//!   ID). The request travels in an optional option, which a kernel backup skips.
//! - The answer goes between a start and an end mark ([`wire::options::RESYNC_BEGIN`],
//!   [`wire::options::RESYNC_END`], records of protocol 0 like the request's, so a kernel
//!   backup skips them and goes on with the message), each naming the requester's and the
//!   answerer's [`SyncConfig::origin`], the end mark the records sent, and which
//!   [`SyncConfig::part`] of how many [`SyncConfig::parts`] the answer is: directors that
//!   share an origin (the workers of one process) each answer with their own table, and a
//!   requester waits for every part.
//!   [`Director::resync_status`](crate::Director::resync_status) tells the requester where
//!   its resync stands: [`ResyncPhase::Done`] once every peer that started an answer ended
//!   it, [`ResyncPhase::TimedOut`] after [`SyncConfig::resync_wait`] (a peer that never
//!   ends, a lost mark, only kernel peers, which do not answer). An embedder that
//!   announces its VIPs to routers waits for it to be over.
//!
//! # Both
//!
//! [`SyncMode::Both`] is the kernel's master and backup daemons at once (`ipvsadm
//! --start-daemon master` and `backup`), for directors that share the traffic (ECMP): each
//! sends the connections it forwards and imports its peers'. As `ip_vs_proc_conn` does, an
//! imported entry (new or updated) gets the threshold as its packet count and its state as
//! the last state sent, so when it then carries traffic here it is sent again `period`
//! packets later (53rd of the count with "3 50"), or at once on a change of state to one
//! other than ESTABLISHED: an import is never answered by a record, and two directors do not
//! echo each other. An entry a record made is sent on with the `IP_VS_CONN_F_SYNC` bit
//! (0x20) the kernel gives it (every receiver masks it off: [`wire::flags::BACKUP_MASK`]);
//! an entry of its own that a record updated is not.
//!
//! A director must not import its own messages: the kernel relies on multicast loop being
//! off on the sending socket (and, with distinct master and backup sync IDs, on the ID). dr
//! has one [`SyncConfig::syncid`], sent and taken: every director of a cluster is given
//! the same. The embedder keeps the loop off and drops datagrams from its own sending
//! socket's address and port; the core ignores a resync request or mark that carries its
//! own [`SyncConfig::origin`] ([`SyncCounters::own_ignored`]). A record of its own that came
//! back anyway would only update its entry (same real server) and reset its count.
//!
//! # Where dr differs from the kernel
//!
//! - A record for which the backup has no matching service and real server is not kept
//!   (the kernel keeps such an entry unbound and binds it if the server is added later):
//!   a dr entry always names its real server. It is counted in
//!   [`SyncCounters::no_real`].
//! - A real server has no port of its own in dr (Direct Routing does not rewrite ports),
//!   so a record's real server is matched by address; the master sends the connection's
//!   virtual port as the real port, as the kernel does for a real server added without one.
//! - The kernel has no bulk resync; dr adds one, and its start and end marks, in a way a
//!   kernel peer ignores.
//! - The backup does not tie imported connections to imported templates (neither does the
//!   kernel); both expire on the timeouts the records carry.
//! - Imported entries are not proven (see the crate docs on eviction): a full backup table
//!   gives them up before the connections it has seen data for.
//! - The outgoing queue is bounded ([`SyncConfig::queue`] messages): a message that finds
//!   it full is dropped and counted ([`SyncCounters::queue_drops`]), as the kernel drops
//!   past `sync_qlen_max`.
//! - One sync thread (the kernel's `sync_ports` 1), version 1 only when sending.

pub mod export;
pub mod import;
pub mod wire;

use crate::time::{Duration, Instant};
use core::fmt;

pub use wire::{ResyncMark, SyncError, SyncRecord};

/// How long a partly filled message waits for more records (`IPVS_SYNC_FLUSH_TIME`).
pub const FLUSH_TIME: Duration = Duration::from_secs(2);

/// How long after a bulk resync ended a master ignores further requests.
pub const RESYNC_HOLD_OFF: Duration = Duration::from_secs(10);

/// The most requesters one bulk resync answers (those whose requests were deferred).
pub const MAX_DEFERRED_RESYNCS: usize = 4;

/// Which sync daemon a director runs, as `ipvsadm --start-daemon` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncMode {
    /// Send records of the connections this director forwards.
    Master,
    /// Import the records a master sends.
    Backup,
    /// Both at once, as the kernel runs a master and a backup daemon side by side
    /// (`start_sync_thread` for each state): send this director's connections and import
    /// its peers'. For directors that share the traffic (ECMP): see [`both`](self#both).
    Both,
}

impl SyncMode {
    /// Whether records are sent.
    pub fn is_master(self) -> bool {
        matches!(self, Self::Master | Self::Both)
    }

    /// Whether records are imported.
    pub fn is_backup(self) -> bool {
        matches!(self, Self::Backup | Self::Both)
    }

    /// `master`, `backup` (as ipvsadm prints them) or `both`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Backup => "backup",
            Self::Both => "both",
        }
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The sync daemon's settings, with the kernel's defaults ([`SyncConfig::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Master or backup.
    pub mode: SyncMode,
    /// The sync ID sent in every message; a backup with 0 takes every ID, otherwise only
    /// its own (`--syncid`, 0 ..= 255, default 0).
    pub syncid: u8,
    /// The largest message, in bytes of UDP payload (`--sync-maxlen`, default
    /// [`wire::DEFAULT_MAXLEN`]); a message always holds at least one record.
    pub maxlen: u16,
    /// `sync_threshold`'s first number (default 3): the packet count at which a
    /// connection is sent.
    pub threshold: u32,
    /// `sync_threshold`'s second number (default 50): after the first time, the connection
    /// is sent again every `period` packets (0: only once).
    pub period: u32,
    /// `sync_refresh_period` (default 0, off): with a value, a connection is sent when its
    /// expiry moved by more than the smaller of this and max(timeout / 2, 10 s).
    pub refresh_period: Duration,
    /// `sync_retries` (0 ..= 3, default 0): how many times a refresh is repeated.
    pub retries: u8,
    /// `sync_persist_mode` (default off): connections controlled by a template are not
    /// sent, only their templates.
    pub persist_mode: bool,
    /// How many finished messages wait for [`Director::poll_sync`](crate::Director::poll_sync)
    /// (1 ..= 4096, default 64).
    pub queue: usize,
    /// This director's origin: a number, different on every director of the sync LAN
    /// (random at start), that its resync request and the marks of its resync answers
    /// carry, so that it never takes its own for a peer's. 0 (the default): none; the
    /// request then goes out as it always did, and no message is told for its own.
    pub origin: u32,
    /// How long a backup waits for the answers to its bulk resync request at most
    /// (default [`DEFAULT_RESYNC_WAIT`]); see [`ResyncStatus`].
    pub resync_wait: Duration,
    /// This director's part of its [`origin`](Self::origin)'s answers to bulk resync
    /// requests (default 0), when several directors share one origin and each holds its
    /// own connections (the workers of one process): each answers with its table as part
    /// `part` of [`parts`](Self::parts), and a requester waits for every part.
    pub part: u8,
    /// How many directors answer for this origin (default 1; at most
    /// [`wire::MAX_ANSWER_PARTS`]).
    pub parts: u8,
}

/// The default [`SyncConfig::resync_wait`]: longer than [`RESYNC_HOLD_OFF`], so that a
/// request a peer defers is still answered within it.
pub const DEFAULT_RESYNC_WAIT: Duration = Duration::from_secs(15);

/// The most peers whose answers a resync waits for; the answers of further peers are
/// imported all the same, but not waited for.
pub const MAX_RESYNC_PEERS: usize = 8;

impl SyncConfig {
    /// The kernel's defaults for `mode`.
    pub const fn new(mode: SyncMode) -> Self {
        Self {
            mode,
            syncid: 0,
            maxlen: wire::DEFAULT_MAXLEN,
            threshold: 3,
            period: 50,
            refresh_period: Duration::ZERO,
            retries: 0,
            persist_mode: false,
            queue: 64,
            origin: 0,
            resync_wait: DEFAULT_RESYNC_WAIT,
            part: 0,
            parts: 1,
        }
    }

    /// The largest queue [`SyncConfig::queue`] may ask for.
    pub const MAX_QUEUE: usize = 4096;

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// A [`SyncConfigError`] naming the field and what it accepts.
    pub fn validate(&self) -> Result<(), SyncConfigError> {
        if self.maxlen == 0 || self.maxlen > wire::MAX_MAXLEN {
            return Err(SyncConfigError::Maxlen(self.maxlen));
        }
        // proc_do_sync_threshold: the threshold below the period, unless the period is 0.
        if self.period != 0 && self.threshold >= self.period {
            return Err(SyncConfigError::Threshold {
                threshold: self.threshold,
                period: self.period,
            });
        }
        if self.retries > 3 {
            return Err(SyncConfigError::Retries(self.retries));
        }
        if self.queue == 0 || self.queue > Self::MAX_QUEUE {
            return Err(SyncConfigError::Queue(self.queue));
        }
        if self.parts == 0 || self.parts > wire::MAX_ANSWER_PARTS || self.part >= self.parts {
            return Err(SyncConfigError::Part { part: self.part, parts: self.parts });
        }
        Ok(())
    }

    /// The bytes of one message buffer: `maxlen`, or the largest record with the header and
    /// a resync request's option if that is more (`ip_vs_sync_buff_create`).
    pub(crate) fn message_len(&self) -> usize {
        usize::from(self.maxlen).max(wire::HEADER_LEN + wire::V6_RECORD_LEN + 8)
    }
}

/// A [`SyncConfig`] field out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncConfigError {
    /// `maxlen` is 0 or above [`wire::MAX_MAXLEN`].
    Maxlen(u16),
    /// `threshold` is not below `period` (and `period` is not 0).
    Threshold {
        /// The threshold given.
        threshold: u32,
        /// The period given.
        period: u32,
    },
    /// `retries` is above 3.
    Retries(u8),
    /// `queue` is 0 or above [`SyncConfig::MAX_QUEUE`].
    Queue(usize),
    /// `parts` is 0 or above [`wire::MAX_ANSWER_PARTS`], or `part` is not below it.
    Part {
        /// The part given.
        part: u8,
        /// The parts given.
        parts: u8,
    },
}

impl fmt::Display for SyncConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Maxlen(n) => write!(
                f,
                "sync maxlen {n} is out of range: give 1 to {} bytes of UDP payload",
                wire::MAX_MAXLEN
            ),
            Self::Threshold { threshold, period } => write!(
                f,
                "sync threshold {threshold} {period}: the threshold must be below the period \
                 (or the period 0), as the kernel's sync_threshold \"3 50\""
            ),
            Self::Retries(n) => write!(f, "sync retries {n} is out of range: give 0 to 3"),
            Self::Part { part, parts } => write!(
                f,
                "sync part {part} of {parts}: give 1 to {} parts and a part below them",
                wire::MAX_ANSWER_PARTS
            ),
            Self::Queue(n) => write!(
                f,
                "sync queue {n} is out of range: give 1 to {} messages",
                SyncConfig::MAX_QUEUE
            ),
        }
    }
}

impl core::error::Error for SyncConfigError {}

/// What the sync daemon did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncCounters {
    /// Messages handed out by `poll_sync`.
    pub messages_sent: u64,
    /// Records in them.
    pub records_sent: u64,
    /// Messages dropped because the queue was full.
    pub queue_drops: u64,
    /// Datagrams given to `import_sync`.
    pub messages_received: u64,
    /// Datagrams dropped whole or in part: bad size, truncated or malformed records.
    pub messages_bad: u64,
    /// Datagrams ignored for another sync ID.
    pub syncid_ignored: u64,
    /// Datagrams ignored because this director is not a backup.
    pub not_backup: u64,
    /// Records read from the datagrams taken.
    pub records_received: u64,
    /// New entries made from records.
    pub imported: u64,
    /// Existing entries updated from records.
    pub updated: u64,
    /// Entries whose real server differed, replaced by the record.
    pub replaced: u64,
    /// INACTIVE records for an entry already bound elsewhere: ignored, as the kernel.
    pub stale: u64,
    /// Records skipped: a protocol or state dr does not handle, an unknown mandatory
    /// option, persistence engine data.
    pub skipped: u64,
    /// Records with no matching service and real server here, those with a firewall mark
    /// included (dr has no firewall-mark services).
    pub no_real: u64,
    /// Records refused because the table was full.
    pub table_full: u64,
    /// Bulk resync requests sent.
    pub resync_requests_sent: u64,
    /// Bulk resync requests received (answered by a master).
    pub resync_requests_received: u64,
    /// Records sent in answer to resync requests.
    pub bulk_records: u64,
    /// Resync requests ignored: from a requester already being answered or already
    /// waiting, or from one more than [`MAX_DEFERRED_RESYNCS`] waiting.
    pub resync_requests_ignored: u64,
    /// Resync requests deferred: one was being answered, or was answered less than
    /// [`RESYNC_HOLD_OFF`] ago; answered when the hold-off is over.
    pub resync_requests_deferred: u64,
    /// Messages the embedder could not send (a full socket buffer), as it reported them
    /// ([`Director::count_sync_send_drops`](crate::Director::count_sync_send_drops)).
    pub send_drops: u64,
    /// Datagrams the embedder dropped before `import_sync` (a full receive queue), as it
    /// reported them
    /// ([`Director::count_sync_receive_drops`](crate::Director::count_sync_receive_drops)).
    pub receive_drops: u64,
    /// Resync requests and marks that carried this director's own origin (its own
    /// messages, come back): ignored.
    pub own_ignored: u64,
    /// Marks of the start of a bulk resync answer to this director's request.
    pub resync_begins: u64,
    /// Marks of the end of a bulk resync answer to this director's request.
    pub resync_ends: u64,
    /// Marks not for this director's resync: another director's request, none under way,
    /// or from more than [`MAX_RESYNC_PEERS`] peers.
    pub resync_marks_ignored: u64,
}

impl SyncCounters {
    /// Every counter with its name, in the order the JSON listing and the metrics give
    /// them.
    pub fn fields(&self) -> [(&'static str, u64); 26] {
        [
            ("messages_sent", self.messages_sent),
            ("records_sent", self.records_sent),
            ("queue_drops", self.queue_drops),
            ("messages_received", self.messages_received),
            ("messages_bad", self.messages_bad),
            ("syncid_ignored", self.syncid_ignored),
            ("not_backup", self.not_backup),
            ("records_received", self.records_received),
            ("imported", self.imported),
            ("updated", self.updated),
            ("replaced", self.replaced),
            ("stale", self.stale),
            ("skipped", self.skipped),
            ("no_real", self.no_real),
            ("table_full", self.table_full),
            ("resync_requests_sent", self.resync_requests_sent),
            ("resync_requests_received", self.resync_requests_received),
            ("bulk_records", self.bulk_records),
            ("resync_requests_ignored", self.resync_requests_ignored),
            ("resync_requests_deferred", self.resync_requests_deferred),
            ("send_drops", self.send_drops),
            ("receive_drops", self.receive_drops),
            ("own_ignored", self.own_ignored),
            ("resync_begins", self.resync_begins),
            ("resync_ends", self.resync_ends),
            ("resync_marks_ignored", self.resync_marks_ignored),
        ]
    }

    /// Adds another director's counters (directors that share the work).
    pub fn add(&mut self, other: &Self) {
        let Self {
            messages_sent,
            records_sent,
            queue_drops,
            messages_received,
            messages_bad,
            syncid_ignored,
            not_backup,
            records_received,
            imported,
            updated,
            replaced,
            stale,
            skipped,
            no_real,
            table_full,
            resync_requests_sent,
            resync_requests_received,
            bulk_records,
            resync_requests_ignored,
            resync_requests_deferred,
            send_drops,
            receive_drops,
            own_ignored,
            resync_begins,
            resync_ends,
            resync_marks_ignored,
        } = self;
        for (mine, theirs) in [
            (messages_sent, other.messages_sent),
            (records_sent, other.records_sent),
            (queue_drops, other.queue_drops),
            (messages_received, other.messages_received),
            (messages_bad, other.messages_bad),
            (syncid_ignored, other.syncid_ignored),
            (not_backup, other.not_backup),
            (records_received, other.records_received),
            (imported, other.imported),
            (updated, other.updated),
            (replaced, other.replaced),
            (stale, other.stale),
            (skipped, other.skipped),
            (no_real, other.no_real),
            (table_full, other.table_full),
            (resync_requests_sent, other.resync_requests_sent),
            (resync_requests_received, other.resync_requests_received),
            (bulk_records, other.bulk_records),
            (resync_requests_ignored, other.resync_requests_ignored),
            (resync_requests_deferred, other.resync_requests_deferred),
            (send_drops, other.send_drops),
            (receive_drops, other.receive_drops),
            (own_ignored, other.own_ignored),
            (resync_begins, other.resync_begins),
            (resync_ends, other.resync_ends),
            (resync_marks_ignored, other.resync_marks_ignored),
        ] {
            *mine = mine.wrapping_add(theirs);
        }
    }
}

/// Where a backup's bulk resync stands ([`Director::resync_status`](crate::Director::resync_status)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResyncPhase {
    /// No resync was asked for (a master, or a backup before its request).
    Idle,
    /// Asked for: waiting for the answers.
    Waiting,
    /// Every peer that started an answer ended it.
    Done,
    /// [`SyncConfig::resync_wait`] passed first (no peer answered, a peer never ended, or
    /// an end was lost).
    TimedOut,
}

impl ResyncPhase {
    /// `idle`, `waiting`, `done` or `timed-out`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::TimedOut => "timed-out",
        }
    }

    /// Whether the resync is over, or none runs: what a director waits for before it
    /// announces its VIPs.
    pub fn is_over(self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// A backup's bulk resync: when it was asked for and ended, and what its peers answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResyncStatus {
    /// Where it stands.
    pub phase: ResyncPhase,
    /// When it was asked for.
    pub requested: Option<Instant>,
    /// When it ended (done or timed out).
    pub ended: Option<Instant>,
    /// Peers that started an answer.
    pub peers: usize,
    /// Of them, those that ended it.
    pub peers_ended: usize,
    /// The records the ended answers said they held.
    pub records_announced: u64,
    /// Records imported (new or updated entries) since it was asked for.
    pub records_imported: u64,
}

impl ResyncStatus {
    /// How long it took, or has taken until `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        let Some(requested) = self.requested else { return Duration::ZERO };
        self.ended.unwrap_or(now).saturating_duration_since(requested)
    }
}

impl fmt::Display for ResyncStatus {
    /// `resync done in 12 ms: 2 of 2 peers ended, 48 records announced, 48 imported`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resync {}", self.phase.name())?;
        if let (Some(requested), Some(ended)) = (self.requested, self.ended) {
            write!(f, " in {} ms", ended.saturating_duration_since(requested).as_millis())?;
        }
        write!(
            f,
            ": {} of {} peers ended, {} records announced, {} imported",
            self.peers_ended, self.peers, self.records_announced, self.records_imported
        )
    }
}
