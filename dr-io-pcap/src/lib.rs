//! # dr-io-pcap: captures in, captures out
//!
//! [`FrameIo`](dr_core::FrameIo) backends over pcap and pcapng files, for deterministic
//! replay and regression tests:
//!
//! - [`PcapSource`] reads pcap (microsecond or nanosecond) and pcapng (any `if_tsresol`)
//!   captures of Ethernet links, record by record.
//! - [`PcapSink`] writes classic pcap with nanosecond timestamps, which tcpdump and
//!   Wireshark read.
//! - [`PcapReplay`] runs a source through the director into a sink. The clock is the
//!   records' timestamps, so the same capture and configuration always give a
//!   byte-identical output.
//! - [`Tee`] wraps any backend (a live one, say) and records what it receives and sends.
//!
//! Errors name the file and the record.

#![forbid(unsafe_code)]

mod error;
mod replay;
mod sink;
mod source;
mod tee;

pub use error::PcapIoError;
pub use replay::PcapReplay;
pub use sink::PcapSink;
pub use source::{PcapSource, RecordInfo};
pub use tee::{Tee, TeeError};
