//! Reading pcap and pcapng captures, record by record.

use crate::PcapIoError;
use dr_core::Instant;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};
use std::fs::File;
use std::io::{BufReader, Chain, Cursor, Read};
use std::path::{Path, PathBuf};

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// A classic pcap file header's length.
const PCAP_HEADER_LEN: u64 = 24;
/// A classic pcap record header's length (timestamp, captured and wire lengths).
const PCAP_RECORD_HEADER_LEN: u64 = 16;

/// The reader with the four magic bytes, read to tell the formats apart, put back in front.
type Rewound<R> = Chain<Cursor<[u8; 4]>, R>;

enum Format<R: Read> {
    Pcap(PcapReader<Rewound<R>>),
    PcapNg(PcapNgReader<Rewound<R>>),
}

/// One record's timestamp and the length its frame had on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// When the frame was captured.
    pub timestamp: Instant,
    /// Its length on the wire (more than the bytes captured, for a record cut short).
    pub orig_len: u32,
}

/// Frames from a pcap or pcapng capture of an Ethernet link, with their timestamps.
///
/// Timestamps of every resolution the formats allow are read exactly: pcap microseconds or
/// nanoseconds; pcapng `if_tsresol` in powers of ten or of two, plus `if_tsoffset`. A record
/// captured short (caplen < len) is returned as the bytes it holds, never read past.
pub struct PcapSource<R: Read = BufReader<File>> {
    format: Format<R>,
    path: PathBuf,
    record: u64,
    /// Where the next record starts (classic pcap only).
    offset: Option<u64>,
    last: Instant,
}

impl<R: Read> std::fmt::Debug for PcapSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSource")
            .field("path", &self.path)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl PcapSource {
    /// Opens a capture file.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Open`], [`PcapIoError::NotACapture`] or [`PcapIoError::LinkType`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapIoError> {
        let path = path.as_ref();
        let file =
            File::open(path).map_err(|source| PcapIoError::Open { path: path.into(), source })?;
        Self::from_reader(BufReader::with_capacity(1 << 16, file), path)
    }
}

impl<R: Read> PcapSource<R> {
    /// Reads a capture from any reader; `name` stands for it in errors.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::NotACapture`] or [`PcapIoError::LinkType`].
    pub fn from_reader(mut reader: R, name: impl AsRef<Path>) -> Result<Self, PcapIoError> {
        let path = name.as_ref().to_path_buf();
        let not_capture = |reason: String| PcapIoError::NotACapture { path: path.clone(), reason };
        let mut magic = [0u8; 4];
        reader.read_exact(&mut magic).map_err(|e| not_capture(e.to_string()))?;
        let rewound = Cursor::new(magic).chain(reader);
        let (format, offset) = if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(rewound).map_err(|e| not_capture(e.to_string()))?;
            (Format::PcapNg(reader), None)
        } else {
            let pcap = PcapReader::new(rewound).map_err(|e| not_capture(e.to_string()))?;
            let linktype = pcap.header().datalink;
            if linktype != DataLink::ETHERNET {
                return Err(PcapIoError::LinkType { path, record: 0, linktype: linktype.into() });
            }
            (Format::Pcap(pcap), Some(PCAP_HEADER_LEN))
        };
        Ok(Self { format, path, record: 0, offset, last: Instant::ZERO })
    }

    /// The file's name, as errors give it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.record
    }

    /// The byte offset in the file where the next record starts, for a classic pcap file
    /// (`None` for pcapng).
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// Reads the next frame into `frame` (replacing its contents; its capacity is reused)
    /// and returns its record's timestamp and wire length, or `None` at the end.
    ///
    /// # Errors
    ///
    /// [`PcapIoError::Corrupt`] for a record that cannot be read, [`PcapIoError::LinkType`]
    /// for a pcapng interface that is not Ethernet.
    pub fn next_into(&mut self, frame: &mut Vec<u8>) -> Result<Option<RecordInfo>, PcapIoError> {
        let record = self.record + 1;
        let info = match &mut self.format {
            Format::Pcap(reader) => match reader.next_packet() {
                None => None,
                Some(Err(e)) => return Err(self.corrupt(record, reason(&e))),
                Some(Ok(packet)) => {
                    frame.clear();
                    frame.extend_from_slice(&packet.data);
                    self.offset =
                        self.offset.map(|o| o + PCAP_RECORD_HEADER_LEN + frame.len() as u64);
                    let timestamp = duration_to_instant(packet.timestamp);
                    Some(RecordInfo { timestamp, orig_len: packet.orig_len })
                }
            },
            Format::PcapNg(reader) => next_pcapng(reader, frame, self.last)
                .map_err(|e| e.into_error(&self.path, record, self.offset))?,
        };
        if let Some(info) = info {
            self.record = record;
            self.last = info.timestamp;
        }
        Ok(info)
    }

    fn corrupt(&self, record: u64, reason: String) -> PcapIoError {
        PcapIoError::Corrupt { path: self.path.clone(), record, offset: self.offset, reason }
    }
}

/// What a reader error says about the record, in words for the person with the file.
fn reason(e: &PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends before the record does (cut short, or a damaged length)".to_string()
        }
        PcapError::IoError(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// A pcapng problem, before the file and record are attached.
enum NgError {
    Corrupt(String),
    LinkType(u32),
}

impl NgError {
    fn into_error(self, path: &Path, record: u64, offset: Option<u64>) -> PcapIoError {
        match self {
            Self::Corrupt(reason) => {
                PcapIoError::Corrupt { path: path.into(), record, offset, reason }
            }
            Self::LinkType(linktype) => {
                PcapIoError::LinkType { path: path.into(), record, linktype }
            }
        }
    }
}

fn next_pcapng<R: Read>(
    reader: &mut PcapNgReader<R>,
    frame: &mut Vec<u8>,
    last: Instant,
) -> Result<Option<RecordInfo>, NgError> {
    loop {
        // Copy out what is needed: the block borrows the reader.
        let (interface, raw, orig_len) = match reader.next_block() {
            None => return Ok(None),
            Some(Err(e)) => return Err(NgError::Corrupt(reason(&e))),
            Some(Ok(Block::EnhancedPacket(packet))) => {
                frame.clear();
                frame.extend_from_slice(&packet.data);
                // pcap-file keeps the raw 64-bit timestamp in a Duration's nanoseconds.
                let raw = u64::try_from(packet.timestamp.as_nanos()).unwrap_or(u64::MAX);
                (packet.interface_id, Some(raw), packet.original_len)
            }
            Some(Ok(Block::SimplePacket(packet))) => {
                frame.clear();
                frame.extend_from_slice(&packet.data);
                (0, None, packet.original_len)
            }
            Some(Ok(_)) => continue,
        };
        let idb = reader.interfaces().get(interface as usize).ok_or_else(|| {
            NgError::Corrupt(format!("packet on interface {interface}, which is not described"))
        })?;
        if idb.linktype != DataLink::ETHERNET {
            return Err(NgError::LinkType(idb.linktype.into()));
        }
        // A simple packet block has no timestamp: it keeps the previous record's.
        let timestamp = raw.map_or(last, |raw| ng_timestamp(idb, raw));
        return Ok(Some(RecordInfo { timestamp, orig_len }));
    }
}

/// Converts a pcapng timestamp in the interface's units to an instant.
fn ng_timestamp(idb: &InterfaceDescriptionBlock<'_>, raw: u64) -> Instant {
    let mut resolution = 6; // microseconds unless if_tsresol says otherwise
    let mut offset_secs = 0;
    for option in &idb.options {
        match option {
            InterfaceDescriptionOption::IfTsResol(r) => resolution = *r,
            InterfaceDescriptionOption::IfTsOffset(o) => offset_secs = *o,
            _ => {}
        }
    }
    let raw = u128::from(raw);
    let nanos = if resolution & 0x80 == 0 {
        let exponent = u32::from(resolution);
        if exponent <= 9 {
            raw * 10u128.pow(9 - exponent)
        } else {
            raw / 10u128.checked_pow(exponent - 9).unwrap_or(u128::MAX)
        }
    } else {
        let shift = u32::from(resolution & 0x7f);
        (raw * 1_000_000_000).checked_shr(shift).unwrap_or(0)
    };
    let nanos = nanos + u128::from(offset_secs) * 1_000_000_000;
    Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn duration_to_instant(d: std::time::Duration) -> Instant {
    Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
