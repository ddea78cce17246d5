//! The one seam between the director and the world: [`FrameIo`].
//!
//! A backend receives frames in batches (each with its timestamp), lends each one, in
//! place in its own buffer, to a handler that returns a [`Verdict`], and transmits the
//! frames whose verdict says so. A ring-buffer backend therefore copies nothing the kernel
//! does not force it to. Backends own their clock: a live one reads the system clock, a
//! capture replay uses the records' timestamps.
//!
//! [`Driver`] runs a [`Director`] over any backend: it hands the frames over in bursts
//! ([`FrameIo::process_bursts`], [`Director::process_burst`]), expires connections when
//! they are due, sends the start-up announcements and asks for unknown real-server MACs.

#[cfg(feature = "alloc")]
mod memory;

#[cfg(feature = "alloc")]
pub use memory::MemoryIo;

use crate::director::Director;
use crate::time::Instant;
use crate::verdict::Verdict;

/// What one call to [`FrameIo::process_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// Frames handed to the handler.
    pub frames: usize,
    /// Frames transmitted because the handler said so.
    pub transmitted: usize,
    /// The source is exhausted (end of a capture); a live backend never says so.
    pub finished: bool,
}

impl Batch {
    /// A batch report.
    pub const fn new(frames: usize, transmitted: usize, finished: bool) -> Self {
        Self { frames, transmitted, finished }
    }
}

/// The bursts handler that hands each frame of a burst to `handler` alone, with the
/// burst's timestamp: how a backend whose own method is
/// [`FrameIo::process_bursts`] provides [`FrameIo::process_batch`]
/// (`self.process_bursts(each_frame(handler))`).
pub fn each_frame<F>(mut handler: F) -> impl FnMut(Instant, &mut [&mut [u8]], &mut [Verdict])
where
    F: FnMut(Instant, &mut [u8]) -> Verdict,
{
    move |now, frames, verdicts| {
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = handler(now, frame);
        }
    }
}

/// A source and sink of Ethernet frames.
pub trait FrameIo {
    /// The backend's error.
    type Error;

    /// Receives up to one batch of frames and calls `handler(timestamp, frame)` for each,
    /// in arrival order, with the frame in the backend's own buffer. Frames whose verdict
    /// [is a transmission](Verdict::is_transmit) are sent as rewritten. May wait a
    /// backend-defined short time for frames to arrive.
    ///
    /// # Errors
    ///
    /// The backend's receive or transmit error.
    fn process_batch<F>(&mut self, handler: F) -> Result<Batch, Self::Error>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict;

    /// Like [`process_batch`](Self::process_batch), but lends the frames in bursts of up to
    /// [`BURST`](crate::BURST) that share one timestamp, so that the handler can decide them
    /// together ([`Director::process_burst`]). `handler(timestamp, frames, verdicts)` must
    /// store a verdict for each frame at the same index of `verdicts` (as long as `frames`).
    ///
    /// The provided method lends one frame at a time through `process_batch`, which keeps
    /// every frame's own timestamp; a ring backend whose frames arrive in blocks overrides
    /// it.
    ///
    /// # Errors
    ///
    /// The backend's receive or transmit error.
    fn process_bursts<F>(&mut self, mut handler: F) -> Result<Batch, Self::Error>
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        self.process_batch(|now, frame| {
            // Overwritten by the handler; the value only fills the slot.
            let mut verdict = [Verdict::Drop(crate::DropReason::MalformedEthernet)];
            handler(now, &mut [frame], &mut verdict);
            verdict[0]
        })
    }

    /// Transmits a frame the director built on its own.
    ///
    /// # Errors
    ///
    /// The backend's transmit error.
    fn send(&mut self, now: Instant, frame: &[u8]) -> Result<(), Self::Error>;

    /// The backend's clock: the system clock for a live backend; for a replay, the
    /// timestamp of the next frame to come (the last one once the source is exhausted).
    fn now(&self) -> Instant;
}

/// What a [`Driver`] does besides processing frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverOptions {
    /// Send the VIP announcements before the first batch (default on).
    pub announce: bool,
    /// Send ARP requests / Neighbor Solicitations for real servers without a MAC (default on).
    pub solicit_neighbours: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self { announce: true, solicit_neighbours: true }
    }
}

/// Totals of a [`Driver`]'s run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// Frames processed.
    pub frames: u64,
    /// Frames transmitted after processing.
    pub transmitted: u64,
    /// Frames the director generated and the driver sent.
    pub generated: u64,
    /// Batches received.
    pub batches: u64,
}

/// Drives a [`Director`] over a [`FrameIo`] backend.
#[derive(Debug, Default)]
pub struct Driver {
    options: DriverOptions,
    started: bool,
    stats: RunStats,
}

impl Driver {
    /// A driver with these options.
    pub fn new(options: DriverOptions) -> Self {
        Self { options, started: false, stats: RunStats::default() }
    }

    /// Totals so far.
    pub fn stats(&self) -> RunStats {
        self.stats
    }

    /// Processes one batch: on the first call sends the VIP announcements first; expires
    /// connections that come due before each frame, so the schedulers always see the counts
    /// of that instant; then expires what is due by the backend's clock and sends the
    /// neighbour requests that are due.
    ///
    /// # Errors
    ///
    /// The backend's error; the director is left consistent.
    pub fn step<I: FrameIo>(
        &mut self,
        director: &mut Director,
        io: &mut I,
    ) -> Result<Batch, I::Error> {
        if !self.started {
            self.started = true;
            if self.options.announce {
                let now = io.now();
                for frame in director.announcements() {
                    io.send(now, &frame)?;
                    self.stats.generated += 1;
                }
            }
        }
        let batch = io.process_bursts(|now, frames, verdicts| {
            // Frames of a burst share `now`, and a frame can only make an entry due after
            // `now`: checking before each burst is as exact as before each frame.
            if director.poll_timeout().is_some_and(|at| at <= now) {
                director.handle_timeout(now);
            }
            director.process_burst(now, frames, verdicts);
        })?;
        self.stats.frames += batch.frames as u64;
        self.stats.transmitted += batch.transmitted as u64;
        self.stats.batches += 1;
        while let Some((at, reply)) = director.poll_reply() {
            io.send(at, &reply)?;
            self.stats.generated += 1;
        }
        self.housekeeping(director, io, io.now())?;
        Ok(batch)
    }

    /// Runs until the backend is exhausted.
    ///
    /// # Errors
    ///
    /// The backend's first error.
    pub fn run<I: FrameIo>(
        &mut self,
        director: &mut Director,
        io: &mut I,
    ) -> Result<RunStats, I::Error> {
        while !self.step(director, io)?.finished {}
        Ok(self.stats)
    }

    fn housekeeping<I: FrameIo>(
        &mut self,
        director: &mut Director,
        io: &mut I,
        now: Instant,
    ) -> Result<(), I::Error> {
        if director.poll_timeout().is_some_and(|at| at <= now) {
            director.handle_timeout(now);
        }
        if self.options.solicit_neighbours {
            while let Some(frame) = director.poll_neighbour_request(now) {
                io.send(now, &frame)?;
                self.stats.generated += 1;
            }
        }
        Ok(())
    }
}
