//! The packet path for bursts of frames: the same verdicts as [`Director::process`] frame by
//! frame, with each frame's table memory requested well before the frame is decided.
//!
//! With a large connection table, a lookup is two cache misses (an index cell, then the
//! entry), and one frame's misses cannot overlap with the next frame's when frames are
//! decided one at a time. Here the burst is taken in chunks: before chunk `k` is decided,
//! the flow keys of chunk `k + 1` are peeked at and hashed and their index cells
//! prefetched; after it, their likely entries (found through those cells, by then in the
//! cache). Every miss is thus in flight while a chunk's worth of frames is being decided.
//!
//! Prefetches are hints: a peek that guessed wrong, or an entry gone or moved by an earlier
//! frame of the burst, costs a useless load, and every frame is classified and decided on
//! what the table holds when its turn comes, exactly as `process` decides it.

use super::Director;
use crate::time::Instant;
use crate::verdict::Verdict;
use crate::wire::{classify, peek_flow_key};

/// How many frames [`Director::process_burst`] takes per chunk: a good number of frames to
/// hand it at a time (any number works).
pub const BURST: usize = 32;

/// The hash of the peeked flow key of each frame of a chunk.
type Peeked = [Option<u64>; BURST];

impl Director {
    /// Decides what happens to each frame in `frames`, in order, exactly as
    /// [`process`](Self::process) on each would, and stores each verdict at the same index
    /// of `verdicts`. Frames beyond `verdicts.len()` are left alone; returns how many were
    /// processed.
    ///
    /// Faster than `process` one frame at a time when the connection table is larger than
    /// the processor's caches: each frame's table memory is requested a chunk of
    /// [`BURST`] frames before it is decided. Never allocates, never panics, never reads a
    /// clock.
    pub fn process_burst<F: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frames: &mut [F],
        verdicts: &mut [Verdict],
    ) -> usize {
        let now = self.advance_clock(now);
        let count = frames.len().min(verdicts.len());
        let (frames, verdicts) = (&mut frames[..count], &mut verdicts[..count]);
        let mut next: Peeked = [None; BURST];
        if let Some(first) = frames.chunks_mut(BURST).next() {
            self.request_indexes(first, &mut next);
            self.request_entries(&next);
        }
        let mut chunks = frames.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)).peekable();
        while let Some((chunk, verdicts)) = chunks.next() {
            let following = chunks.peek_mut().map(|(chunk, _)| &mut **chunk);
            let more = following.is_some();
            if let Some(following) = following {
                self.request_indexes(following, &mut next);
            }
            for (frame, verdict) in chunk.iter_mut().zip(verdicts) {
                let frame = frame.as_mut();
                let packet = classify(frame);
                *verdict = self.decide_counted(now, frame, packet);
            }
            if more {
                self.request_entries(&next);
            }
        }
        count
    }

    /// Peeks at the flow keys of a chunk, hashes them into `peeked` and prefetches their
    /// index cells.
    fn request_indexes<F: AsMut<[u8]>>(&self, chunk: &mut [F], peeked: &mut Peeked) {
        peeked.fill(None);
        for (slot, frame) in peeked.iter_mut().zip(chunk.iter_mut()) {
            if let Some(key) = peek_flow_key(frame.as_mut()) {
                let hash = self.conns.hash(&key);
                self.conns.prefetch_index(hash);
                *slot = Some(hash);
            }
        }
    }

    /// Prefetches the likely entries of a chunk whose index cells were requested earlier.
    fn request_entries(&self, peeked: &Peeked) {
        for &hash in peeked.iter().flatten() {
            self.conns.prefetch_entry(hash);
        }
    }
}
