//! An in-memory backend for tests and examples.

use super::{Batch, FrameIo};
use crate::time::Instant;
use crate::verdict::Verdict;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Frames queued in memory in, transmitted frames collected in memory out.
#[derive(Debug, Default)]
pub struct MemoryIo {
    rx: VecDeque<(Instant, Vec<u8>)>,
    tx: Vec<(Instant, Vec<u8>)>,
    batch_size: usize,
    now: Instant,
}

impl MemoryIo {
    /// An empty backend that hands out up to `batch_size` frames per batch (at least one).
    pub fn new(batch_size: usize) -> Self {
        Self {
            rx: VecDeque::new(),
            tx: Vec::new(),
            batch_size: batch_size.max(1),
            now: Instant::ZERO,
        }
    }

    /// Queues a received frame with its timestamp.
    pub fn push(&mut self, now: Instant, frame: impl Into<Vec<u8>>) {
        self.rx.push_back((now, frame.into()));
    }

    /// Frames still queued.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Everything transmitted so far, with the time it was sent.
    pub fn transmitted(&self) -> &[(Instant, Vec<u8>)] {
        &self.tx
    }

    /// Takes the transmitted frames out.
    pub fn take_transmitted(&mut self) -> Vec<(Instant, Vec<u8>)> {
        core::mem::take(&mut self.tx)
    }
}

impl FrameIo for MemoryIo {
    type Error = core::convert::Infallible;

    fn process_batch<F>(&mut self, mut handler: F) -> Result<Batch, Self::Error>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict,
    {
        let mut frames = 0;
        let mut transmitted = 0;
        while frames < self.batch_size {
            let Some((now, mut frame)) = self.rx.pop_front() else {
                break;
            };
            frames += 1;
            self.now = self.now.max(now);
            if handler(now, &mut frame).is_transmit() {
                transmitted += 1;
                self.tx.push((now, frame));
            }
        }
        Ok(Batch::new(frames, transmitted, self.rx.is_empty()))
    }

    fn now(&self) -> Instant {
        self.rx.front().map_or(self.now, |(at, _)| self.now.max(*at))
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> Result<(), Self::Error> {
        self.tx.push((now, frame.to_vec()));
        Ok(())
    }
}
