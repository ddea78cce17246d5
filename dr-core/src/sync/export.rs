//! The master's rules: when a connection or template is sent (`ip_vs_sync_conn`,
//! `ip_vs_sync_conn_needed`), and the queue of messages waiting to be sent.
//!
//! After each packet a connection forwards, its inbound packet count `pkts` decides:
//!
//! - a TCP connection only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT or TIME_WAIT; a
//!   change to one of these other than ESTABLISHED is sent at once;
//! - otherwise with `sync_threshold` "T P": when `pkts % P == T` (P = 0: when `pkts == T`);
//! - with `sync_refresh_period` R > 0, not when its expiry moved by less than
//!   min(R, max(timeout / 2, 10 s)) since it was last sent, unless retries are left;
//! - with `sync_persist_mode`, a connection that a template controls is not sent;
//! - then the template that controls it, if one does, with the template's own count, which
//!   the threshold does not gate: a template is sent after every packet of its
//!   connections that the refresh rule lets through.

use super::wire::{MessageWriter, SyncRecord};
use super::{FLUSH_TIME, SyncConfig};
use crate::time::{Duration, Instant};
use alloc::vec;
use alloc::vec::Vec;

/// What the master remembers of each entry (the kernel's `in_pkts`, `old_state` and
/// `sync_endtime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SyncMeta {
    /// Packets counted for the rules.
    pub(crate) pkts: u32,
    /// The state last sent (the kernel's `old_state`).
    pub(crate) old_state: u16,
    /// When the entry was last sent to expire, in nanoseconds, with the retries in the low
    /// two bits; [`SyncMeta::UNSET`] until the first packet.
    pub(crate) end: u64,
    /// Made by an import (the kernel's `IP_VS_CONN_F_SYNC`, which it sends on).
    pub(crate) synced: bool,
}

impl SyncMeta {
    /// Not seen since it was made.
    pub(crate) const UNSET: u64 = u64::MAX;
    /// A new entry's.
    pub(crate) const NEW: Self = Self { pkts: 0, old_state: 0, end: Self::UNSET, synced: false };
}

/// What the rules look at besides the counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject {
    pub(crate) template: bool,
    pub(crate) tcp: bool,
    /// The kernel's state number.
    pub(crate) state: u16,
    /// The entry's timeout.
    pub(crate) timeout: Duration,
    /// Controlled by a template.
    pub(crate) in_persistence: bool,
}

/// TCP states a connection is sent in (`ip_vs_sync_conn_needed`).
const TCP_SYNC_STATES: u32 = (1 << 1) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 5);
/// `IP_VS_TCP_S_ESTABLISHED`.
const ESTABLISHED: u16 = 1;

/// `ip_vs_sync_conn_needed`, for the entry's `pkts`-th packet at `now`; records the sending
/// in `meta` when it says yes.
pub(crate) fn needed(
    config: &SyncConfig,
    meta: &mut SyncMeta,
    subject: Subject,
    now: Instant,
    pkts: u32,
) -> bool {
    let now_ns = now.as_nanos();
    let timeout = subject.timeout.as_nanos() as u64;
    if meta.end == SyncMeta::UNSET {
        // ip_vs_conn_new: sync_endtime = jiffies & ~3.
        meta.end = now_ns & !3;
    }
    let orig = meta.end;
    let mut n = now_ns.wrapping_add(timeout) & !3;
    if subject.template {
        // Templates: no state rule.
    } else if config.persist_mode && subject.in_persistence {
        return false;
    } else if subject.tcp {
        if subject.state > 31 || TCP_SYNC_STATES & (1 << subject.state) == 0 {
            return false;
        }
        // A change of state other than to ESTABLISHED is sent at once.
        if subject.state != meta.old_state && subject.state != ESTABLISHED {
            meta.old_state = subject.state;
            meta.end = n;
            return true;
        }
    }
    let refresh = config.refresh_period.as_nanos() as u64;
    if refresh > 0 {
        let diff = n.wrapping_sub(orig) as i64;
        let min_diff = (timeout >> 1).max(10_000_000_000);
        if diff.unsigned_abs() < refresh.min(min_diff) {
            let retries = orig & 3;
            if retries >= u64::from(config.retries) {
                return false;
            }
            let from = orig.wrapping_sub(timeout).wrapping_add(refresh >> 3);
            if (now_ns.wrapping_sub(from) as i64) < 0 {
                return false;
            }
            n |= retries + 1;
        }
    }
    if config.period > 0 {
        if !subject.template && pkts % config.period != config.threshold {
            return false;
        }
    } else if refresh == 0 && pkts != config.threshold {
        return false;
    }
    // The kernel's cmpxchg of sync_endtime cannot fail here: one thread owns the entry.
    meta.old_state = subject.state;
    meta.end = n;
    true
}

/// The messages waiting to be sent: a ring of `queue` buffers of one message each, one of
/// them being filled. Reserved once; never allocates afterwards.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    data: Vec<u8>,
    lens: Vec<u16>,
    slot_len: usize,
    slots: usize,
    /// The oldest finished message.
    head: usize,
    /// Finished messages.
    ready: usize,
    /// The message being filled: its length and records (0 records: none started).
    len: usize,
    count: usize,
    first_use: Instant,
    syncid: u8,
    /// `sync_maxlen`: a message grows past it only to hold its first record.
    maxlen: usize,
}

impl Outbox {
    pub(crate) fn new(config: &SyncConfig) -> Self {
        let slot_len = config.message_len();
        // One more buffer than the queue: the one being filled.
        let slots = config.queue + 1;
        Self {
            data: vec![0; slot_len * slots],
            lens: vec![0; slots],
            slot_len,
            slots,
            head: 0,
            ready: 0,
            len: 0,
            count: 0,
            first_use: Instant::ZERO,
            syncid: config.syncid,
            maxlen: usize::from(config.maxlen),
        }
    }

    fn current(&mut self) -> &mut [u8] {
        let at = (self.head + self.ready) % self.slots * self.slot_len;
        &mut self.data[at..at + self.slot_len]
    }

    /// Appends a record (with encoded options) to the message being filled, finishing it
    /// first when the record does not fit. Returns how many messages were dropped for a
    /// full queue (0 or 1).
    pub(crate) fn push(&mut self, now: Instant, record: &SyncRecord, options: &[u8]) -> u64 {
        let mut dropped = 0;
        for _ in 0..2 {
            let (len, count, syncid, maxlen) = (self.len, self.count, self.syncid, self.maxlen);
            if count == 0 {
                self.first_use = now;
            }
            let buf = self.current();
            let writer = if count == 0 {
                // ip_vs_sync_buff_create: room for the first record even past maxlen.
                MessageWriter::new(buf, syncid)
            } else {
                Some(MessageWriter::resume(&mut buf[..maxlen], len, count))
            };
            let Some(mut writer) = writer else { return dropped };
            let pushed =
                writer.push_with(record, options).then(|| (writer.len(), writer.records()));
            if let Some((len, count)) = pushed {
                self.len = len;
                self.count = count;
                return dropped;
            }
            if count == 0 {
                // Cannot happen: a buffer holds the largest record.
                return dropped;
            }
            dropped += self.finish();
        }
        dropped
    }

    /// Finishes the message being filled, if it has records: it joins the queue, or is
    /// dropped (returns 1) when the queue is full.
    pub(crate) fn finish(&mut self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let slot = (self.head + self.ready) % self.slots;
        let dropped = if self.ready + 1 < self.slots {
            self.lens[slot] = self.len as u16;
            self.ready += 1;
            0
        } else {
            1
        };
        self.len = 0;
        self.count = 0;
        dropped
    }

    /// Finishes the message being filled if its first record has waited [`FLUSH_TIME`] and
    /// the queue has room for it (otherwise it waits for the queue to be drained).
    pub(crate) fn flush_due(&mut self, now: Instant) {
        if self.deadline().is_some_and(|at| at <= now) && self.ready + 1 < self.slots {
            self.finish();
        }
    }

    /// When the message being filled is due to go.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (self.count > 0).then(|| self.first_use.saturating_add(FLUSH_TIME))
    }

    /// Whether a finished message waits.
    pub(crate) fn has_ready(&self) -> bool {
        self.ready > 0
    }

    /// The oldest finished message and its record count, taken off the queue.
    pub(crate) fn pop(&mut self) -> Option<(&[u8], usize)> {
        if self.ready == 0 {
            return None;
        }
        let slot = self.head;
        self.head = (self.head + 1) % self.slots;
        self.ready -= 1;
        let at = slot * self.slot_len;
        let message = &self.data[at..at + usize::from(self.lens[slot])];
        Some((message, usize::from(message.get(4).copied().unwrap_or(0))))
    }
}

#[cfg(test)]
mod tests {
    //! `sync_refresh_period` and `sync_retries` as `ip_vs_sync_conn_needed` applies them.

    use super::*;
    use crate::sync::SyncMode;

    const S: u64 = 1000;

    /// A UDP connection (one state, no state rule) with a 300 s timeout.
    fn udp(timeout_secs: u64) -> Subject {
        Subject {
            template: false,
            tcp: false,
            state: 0,
            timeout: Duration::from_secs(timeout_secs),
            in_persistence: false,
        }
    }

    fn config(refresh_secs: u64, retries: u8, period: u32) -> SyncConfig {
        let mut c = SyncConfig::new(SyncMode::Master);
        c.refresh_period = Duration::from_secs(refresh_secs);
        c.retries = retries;
        c.period = period;
        c
    }

    /// The milliseconds, from `start`, of the packets (one every `step` ms, up to `until`)
    /// that the rules send.
    fn sent(c: &SyncConfig, subject: Subject, step: u64, until: u64) -> Vec<u64> {
        let mut meta = SyncMeta::NEW;
        let mut out = Vec::new();
        let mut pkts = 0u32;
        let mut t = 0;
        while t <= until {
            pkts += 1;
            if needed(c, &mut meta, subject, Instant::from_millis(t), pkts) {
                out.push(t);
            }
            t += step;
        }
        out
    }

    #[test]
    fn without_a_refresh_period_the_threshold_alone_decides() {
        // "3 50": packets 3, 53, 103 (one a second from 0 s: at 2 s, 52 s, 102 s).
        assert_eq!(sent(&config(0, 0, 50), udp(300), S, 110 * S), [2 * S, 52 * S, 102 * S]);
        // Period 0: packet 3 only.
        let mut c = config(0, 0, 0);
        c.threshold = 3;
        assert_eq!(sent(&c, udp(300), S, 110 * S), [2 * S]);
    }

    #[test]
    fn a_refresh_period_sends_when_the_expiry_moved_by_the_smaller_of_it_and_half_the_timeout() {
        // Period 0 with a refresh period: every packet is looked at, the threshold is not.
        // 300 s timeout, 60 s refresh: min(60 s, max(150 s, 10 s)) = 60 s. The first packet
        // moves the expiry from its creation (0 s) to 300 s: sent.
        assert_eq!(sent(&config(60, 0, 0), udp(300), S, 200 * S), [0, 60 * S, 120 * S, 180 * S]);
        // A 40 s timeout: half of it, 20 s, is below the refresh period.
        assert_eq!(sent(&config(60, 0, 0), udp(40), 5 * S, 60 * S), [0, 20 * S, 40 * S, 60 * S]);
        // Never below 10 s: a 4 s timeout is sent every 10 s, not every 2 s; its first
        // packets (expiry 4 s after the creation at 0 s) are held until 6 s.
        assert_eq!(sent(&config(60, 0, 0), udp(4), S, 30 * S), [6 * S, 16 * S, 26 * S]);
    }

    #[test]
    fn retries_repeat_a_refresh_no_sooner_than_an_eighth_of_the_period_apart() {
        // 300 s timeout, 80 s refresh, 2 retries, a packet every 5 s. Sent at 0 s (the
        // expiry moved by 300 s); then a retry is due once now reaches the last expiry
        // sent less the timeout plus 80 s / 8 = 10 s: at 10 s; the next from just after
        // 20 s (the retry count sits in the expiry's low bits, one tick late): at 25 s.
        // Then no more until the expiry moved by 80 s from the last one sent (325 s): at
        // 110 s, which starts the count again.
        assert_eq!(sent(&config(80, 2, 0), udp(300), 5 * S, 115 * S), [0, 10 * S, 25 * S, 110 * S]);
        // No retries: only the refreshes.
        assert_eq!(sent(&config(80, 0, 0), udp(300), 5 * S, 115 * S), [0, 80 * S]);
    }

    #[test]
    fn with_a_period_the_refresh_rule_only_holds_back_what_the_threshold_sends() {
        // "3 50", 300 s timeout, 60 s refresh, a packet a second: packet 3 (2 s) is sent,
        // packet 53 (52 s) moved the expiry by only 50 s: held; packet 103 (102 s) is sent,
        // 153 held again, 203 sent.
        let mut c = config(60, 0, 50);
        c.threshold = 3;
        assert_eq!(sent(&c, udp(300), S, 210 * S), [2 * S, 102 * S, 202 * S]);
    }
}
