//! Recording what any backend receives and sends, for debugging a live director.

use crate::{PcapIoError, PcapSink};
use dr_core::{Batch, FrameIo, Instant, Verdict};
use std::fs::File;
use std::io::{BufWriter, Write};

/// The error of a [`Tee`]: the wrapped backend's, or a capture write's.
#[derive(Debug, thiserror::Error)]
pub enum TeeError<E> {
    /// The wrapped backend failed.
    #[error(transparent)]
    Inner(E),
    /// Writing a capture failed.
    #[error(transparent)]
    Capture(PcapIoError),
}

/// Wraps any [`FrameIo`] and writes every frame it receives (as received, before the
/// director rewrites it) to one capture and every frame it transmits to another.
#[derive(Debug)]
pub struct Tee<I, W: Write = BufWriter<File>> {
    inner: I,
    received: PcapSink<W>,
    sent: PcapSink<W>,
}

impl<I, W: Write> Tee<I, W> {
    /// Records `inner`'s traffic into `received` and `sent`.
    pub fn new(inner: I, received: PcapSink<W>, sent: PcapSink<W>) -> Self {
        Self { inner, received, sent }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &I {
        &self.inner
    }

    /// Ends the recording and returns the backend and both captures, flushed.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Write`] if a flush fails.
    pub fn finish(self) -> Result<(I, W, W), PcapIoError> {
        Ok((self.inner, self.received.finish()?, self.sent.finish()?))
    }
}

impl<I: FrameIo, W: Write> FrameIo for Tee<I, W> {
    type Error = TeeError<I::Error>;

    fn process_batch<F>(&mut self, mut handler: F) -> Result<Batch, Self::Error>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict,
    {
        let (received, sent) = (&mut self.received, &mut self.sent);
        let mut failure = None;
        let batch = self
            .inner
            .process_batch(|now, frame| {
                if failure.is_none() {
                    failure = received.write(now, frame).err();
                }
                let verdict = handler(now, frame);
                if verdict.is_transmit() && failure.is_none() {
                    failure = sent.write(now, frame).err();
                }
                verdict
            })
            .map_err(TeeError::Inner)?;
        match failure {
            Some(e) => Err(TeeError::Capture(e)),
            None => Ok(batch),
        }
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> Result<(), Self::Error> {
        self.sent.write(now, frame).map_err(TeeError::Capture)?;
        self.inner.send(now, frame).map_err(TeeError::Inner)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }
}
