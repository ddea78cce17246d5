//! Errors, each naming the file and, when it is about a record, the record.

use std::path::PathBuf;

/// What went wrong with a capture file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapIoError {
    /// The file could not be opened or created.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file does not start like a pcap or pcapng file.
    #[error("{path}: not a pcap or pcapng capture ({reason})")]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// What the reader saw.
        reason: String,
    },
    /// The capture's link type is not Ethernet.
    #[error(
        "{path}: record {record}: link type {linktype} is not Ethernet; capture on an Ethernet \
         interface (tcpdump -i eth0, not -i any)"
    )]
    LinkType {
        /// The file.
        path: PathBuf,
        /// The 1-based record number (0: the file header).
        record: u64,
        /// The link type found.
        linktype: u32,
    },
    /// A record could not be read: the file is cut short or damaged.
    #[error("{path}: record {record}{} is corrupt: {reason}", AtByte(*.offset))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based record number.
        record: u64,
        /// Where the record starts in the file, when the format tells (classic pcap; a
        /// pcapng reader does not give its block offsets).
        offset: Option<u64>,
        /// What the reader saw.
        reason: String,
    },
    /// Writing the output capture failed.
    #[error("{path}: writing record {record} failed: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The 1-based record number in the output.
        record: u64,
        /// The writer's error.
        reason: String,
    },
}

/// ` (at byte N)`, or nothing when the offset is unknown.
struct AtByte(Option<u64>);

impl std::fmt::Display for AtByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " (at byte {offset})"),
            None => Ok(()),
        }
    }
}
