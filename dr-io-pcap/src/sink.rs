//! Writing classic pcap, readable by tcpdump and Wireshark.

use crate::PcapIoError;
use dr_core::Instant;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A classic pcap file (Ethernet, nanosecond timestamps) the director's frames go to.
pub struct PcapSink<W: Write = BufWriter<File>> {
    writer: PcapWriter<W>,
    path: PathBuf,
    records: u64,
}

impl<W: Write> std::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSink")
            .field("path", &self.path)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl PcapSink {
    /// Creates (or truncates) a capture file.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Open`] or [`PcapIoError::Write`].
    pub fn create(path: impl AsRef<Path>) -> Result<Self, PcapIoError> {
        let path = path.as_ref();
        let file =
            File::create(path).map_err(|source| PcapIoError::Open { path: path.into(), source })?;
        Self::from_writer(BufWriter::with_capacity(1 << 16, file), path)
    }
}

impl<W: Write> PcapSink<W> {
    /// Writes a capture to any writer; `name` stands for it in errors.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Write`] if the file header cannot be written.
    pub fn from_writer(writer: W, name: impl AsRef<Path>) -> Result<Self, PcapIoError> {
        let path = name.as_ref().to_path_buf();
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            snaplen: 262_144,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(writer, header).map_err(|e| PcapIoError::Write {
            path: path.clone(),
            record: 0,
            reason: e.to_string(),
        })?;
        Ok(Self { writer, path, records: 0 })
    }

    /// Appends a frame captured at `timestamp`.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Write`].
    pub fn write(&mut self, timestamp: Instant, frame: &[u8]) -> Result<(), PcapIoError> {
        let record = self.records + 1;
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let packet = PcapPacket::new(Duration::from_nanos(timestamp.as_nanos()), orig_len, frame);
        self.writer.write_packet(&packet).map_err(|e| PcapIoError::Write {
            path: self.path.clone(),
            record,
            reason: e.to_string(),
        })?;
        self.records = record;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Write`] if the flush fails.
    pub fn finish(self) -> Result<W, PcapIoError> {
        let Self { writer, path, records } = self;
        let mut inner = writer.into_writer();
        inner.flush().map_err(|e| PcapIoError::Write {
            path,
            record: records,
            reason: e.to_string(),
        })?;
        Ok(inner)
    }
}
