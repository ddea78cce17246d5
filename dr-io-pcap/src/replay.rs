//! Replaying a capture through the director: a [`FrameIo`] whose clock is the records'
//! timestamps, so the same capture and configuration always give the same output.

use crate::{PcapIoError, PcapSink, PcapSource, RecordInfo};
use dr_core::{Batch, FrameIo, Instant, Verdict};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};

/// Frames from a [`PcapSource`], transmitted frames to a [`PcapSink`], each written with the
/// timestamp of the input record that produced it.
///
/// Two buffers are reused for the whole replay (the current record and the one read ahead
/// to know the clock), so no memory is allocated per frame once they have grown to the
/// largest frame.
///
/// A record that cannot be read ends the replay with its error, after every record before
/// it has been handed over: a batch stops at the corrupt record, and the next batch returns
/// the error.
#[derive(Debug)]
pub struct PcapReplay<R: Read = BufReader<File>, W: Write = BufWriter<File>> {
    source: PcapSource<R>,
    sink: PcapSink<W>,
    batch_size: usize,
    current: Vec<u8>,
    ahead: Vec<u8>,
    ahead_info: Option<RecordInfo>,
    /// The error of the record after the last one read, returned by the next batch.
    failed: Option<PcapIoError>,
    now: Instant,
}

impl<R: Read, W: Write> PcapReplay<R, W> {
    /// A replay of `source` into `sink`, handing out up to `batch_size` frames per batch.
    /// A first record that cannot be read is the first batch's error.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for a backend that checks more up front.
    pub fn new(
        mut source: PcapSource<R>,
        sink: PcapSink<W>,
        batch_size: usize,
    ) -> Result<Self, PcapIoError> {
        let mut ahead = Vec::with_capacity(2048);
        let (ahead_info, failed) = match source.next_into(&mut ahead) {
            Ok(info) => (info, None),
            Err(e) => (None, Some(e)),
        };
        Ok(Self {
            source,
            sink,
            batch_size: batch_size.max(1),
            current: Vec::with_capacity(2048),
            ahead,
            ahead_info,
            failed,
            now: ahead_info.map_or(Instant::ZERO, |i| i.timestamp),
        })
    }

    /// Records read from the input so far.
    pub fn records_read(&self) -> u64 {
        self.source.records() - u64::from(self.ahead_info.is_some())
    }

    /// Records written to the output so far.
    pub fn records_written(&self) -> u64 {
        self.sink.records()
    }

    /// Ends the replay and returns the output, flushed.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Write`] if the flush fails.
    pub fn finish(self) -> Result<W, PcapIoError> {
        self.sink.finish()
    }
}

impl<R: Read, W: Write> FrameIo for PcapReplay<R, W> {
    type Error = PcapIoError;

    fn process_batch<F>(&mut self, mut handler: F) -> Result<Batch, PcapIoError>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict,
    {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut frames = 0;
        let mut transmitted = 0;
        while frames < self.batch_size {
            let Some(info) = self.ahead_info else { break };
            std::mem::swap(&mut self.current, &mut self.ahead);
            self.ahead_info = match self.source.next_into(&mut self.ahead) {
                Ok(next) => next,
                Err(e) => {
                    self.failed = Some(e);
                    None
                }
            };
            self.now = info.timestamp;
            frames += 1;
            if handler(info.timestamp, &mut self.current).is_transmit() {
                transmitted += 1;
                self.sink.write(info.timestamp, &self.current)?;
            }
        }
        let finished = self.ahead_info.is_none() && self.failed.is_none();
        Ok(Batch::new(frames, transmitted, finished))
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> Result<(), PcapIoError> {
        self.sink.write(now, frame)
    }

    fn now(&self) -> Instant {
        self.ahead_info.map_or(self.now, |i| i.timestamp)
    }
}
