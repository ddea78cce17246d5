//! The kernel's sync messages on the wire (`include/net/ip_vs.h`, `ip_vs_sync.c`): the
//! version 1 header and records that a master sends, the version 0 ones a backup still
//! accepts, and dr's bulk resync request, an optional option a kernel backup skips.
//!
//! Everything is network byte order. A version 1 message is an 8-byte header followed by
//! `nr_conns` records, each starting on a 4-byte boundary from the start of the message:
//!
//! ```text
//! header   0 reserved (0)  1 syncid  2..4 size  4 nr_conns  5 version (1)  6..8 spare (0)
//! record   0 type (0 IPv4, 1 IPv6)  1 protocol  2..4 ver_size (version << 12 | length)
//!          4..8 flags  8..10 state  10 cport  12 vport  14 dport  16 fwmark  20 timeout (s)
//!          24 caddr, vaddr, daddr (4 or 16 bytes each), then [type][len][data] options
//! ```
//!
//! Parsing never panics and never allocates: [`parse`] checks the header, and the records
//! come out of an iterator that stops at the first error, as the kernel drops the rest of a
//! datagram it cannot follow.

use crate::flow::FlowKey;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The multicast group the kernel's sync daemons use (`IP_VS_SYNC_GROUP`).
pub const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The UDP port of the first sync thread (`IP_VS_SYNC_PORT`).
pub const SYNC_PORT: u16 = 8848;
/// The default largest message: a 1500-byte MTU less the IPv4 and UDP headers.
pub const DEFAULT_MAXLEN: u16 = 1472;
/// The largest message a UDP datagram over IPv4 can carry.
pub const MAX_MAXLEN: u16 = 65535 - 28;

/// Length of the version 1 header (`struct ip_vs_sync_mesg`).
pub const HEADER_LEN: usize = 8;
/// Length of an IPv4 record before its options (`struct ip_vs_sync_v4`).
pub const V4_RECORD_LEN: usize = 36;
/// Length of an IPv6 record before its options (`struct ip_vs_sync_v6`).
pub const V6_RECORD_LEN: usize = 72;
/// Length of the version 0 header (`struct ip_vs_sync_mesg_v0`).
pub const V0_HEADER_LEN: usize = 4;
/// Length of a version 0 record (`struct ip_vs_sync_conn_v0`, `SIMPLE_CONN_SIZE`).
pub const V0_RECORD_LEN: usize = 24;
/// Length of the sequence options (`struct ip_vs_sync_conn_options`): two `ip_vs_seq`.
pub const SEQ_OPTIONS_LEN: usize = 24;
/// The protocol version a master sends (`SYNC_PROTO_VER`).
pub const VERSION: u8 = 1;
/// The most records a message holds: `nr_conns` is one byte.
pub const MAX_RECORDS: usize = 255;

/// Connection flags, as `include/uapi/linux/ip_vs.h` numbers them.
pub mod flags {
    /// The forwarding method's bits (`IP_VS_CONN_F_FWD_MASK`).
    pub const FWD_MASK: u32 = 0x0007;
    /// Direct Routing (`IP_VS_CONN_F_DROUTE`).
    pub const DROUTE: u32 = 0x0003;
    /// Created by a sync message (`IP_VS_CONN_F_SYNC`), set by the receiver.
    pub const SYNC: u32 = 0x0020;
    /// In the kernel's hash table (`IP_VS_CONN_F_HASHED`), never sent.
    pub const HASHED: u32 = 0x0040;
    /// Sees no output packets (`IP_VS_CONN_F_NOOUTPUT`): every method but NAT.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted inactive (`IP_VS_CONN_F_INACTIVE`).
    pub const INACTIVE: u32 = 0x0100;
    /// Sequence adjustment bits (`IP_VS_CONN_F_SEQ_MASK`), NAT only.
    pub const SEQ_MASK: u32 = 0x0600;
    /// Client port not yet known (`IP_VS_CONN_F_NO_CPORT`).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template (`IP_VS_CONN_F_TEMPLATE`).
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling (`IP_VS_CONN_F_ONE_PACKET`), never synced.
    pub const ONE_PACKET: u32 = 0x2000;
    /// What a backup keeps of a record's flags (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// What a backup updates on an entry it has (`IP_VS_CONN_F_BACKUP_UPD_MASK`).
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

/// Option types (`IPVS_OPT_*`).
pub mod options {
    /// Sequence data, NAT only (`IPVS_OPT_SEQ_DATA`).
    pub const SEQ_DATA: u8 = 1;
    /// Persistence engine data (`IPVS_OPT_PE_DATA`).
    pub const PE_DATA: u8 = 2;
    /// Persistence engine name (`IPVS_OPT_PE_NAME`).
    pub const PE_NAME: u8 = 3;
    /// The bit that makes an option optional: a receiver that does not know it skips it
    /// (`IPVS_OPT_F_PARAM`); without it, an unknown option makes the record be skipped.
    pub const PARAM: u8 = 0x40;
    /// dr's bulk resync request: optional, so a kernel backup skips it. Its 4 bytes are
    /// the requester's origin ([`SyncConfig::origin`](crate::SyncConfig::origin), 0: none).
    pub const RESYNC_REQUEST: u8 = PARAM | 0x10;
    /// dr's mark of the start of a bulk resync answer: optional. Its 16 bytes are the
    /// requester's origin, the answerer's, 0, the part and the parts ([`super::ResyncMark`]).
    pub const RESYNC_BEGIN: u8 = PARAM | 0x11;
    /// dr's mark of the end of a bulk resync answer: optional. Its 16 bytes are the
    /// requester's origin, the answerer's, the records the part held, the part and the
    /// parts.
    pub const RESYNC_END: u8 = PARAM | 0x12;
    /// The longest persistence engine data a kernel accepts (`IP_VS_PEDATA_MAXLEN`).
    pub const PE_DATA_MAXLEN: usize = 255;
    /// The longest persistence engine name a kernel accepts (`IP_VS_PENAME_MAXLEN`).
    pub const PE_NAME_MAXLEN: usize = 16;
}

/// One connection or template as a sync message carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncRecord {
    /// The IP protocol number (6 TCP, 17 UDP).
    pub protocol: u8,
    /// The connection flags ([`flags`]), as sent.
    pub flags: u32,
    /// The state, in the kernel's numbers (TCP `IP_VS_TCP_S_*`, UDP 0, templates 0 or 1).
    pub state: u16,
    /// The client's address (a template's: masked by the service's netmask).
    pub client: IpAddr,
    /// The client's port (0 for a template).
    pub client_port: u16,
    /// The virtual address.
    pub vip: IpAddr,
    /// The virtual port.
    pub vip_port: u16,
    /// The real server's address.
    pub real: IpAddr,
    /// The real server's port.
    pub real_port: u16,
    /// The firewall mark of a firewall-mark service, else 0.
    pub fwmark: u32,
    /// The entry's timeout in seconds (version 1); `None` from a version 0 message, which
    /// has none.
    pub timeout: Option<u32>,
}

impl SyncRecord {
    /// The record of a Direct Routing connection with this key to the real server `real`:
    /// flags DROUTE | NOOUTPUT, state 0, the virtual port as the real port, no timeout
    /// yet. Set the rest with the fields.
    pub fn connection(key: FlowKey, real: IpAddr) -> Self {
        Self {
            protocol: key.protocol.number(),
            flags: flags::DROUTE | flags::NOOUTPUT,
            state: 0,
            client: key.client,
            client_port: key.client_port,
            vip: key.vip,
            vip_port: key.vip_port,
            real,
            real_port: key.vip_port,
            fwmark: 0,
            timeout: Some(0),
        }
    }

    /// Whether the record is a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// Whether the record says inactive.
    pub fn is_inactive(&self) -> bool {
        self.flags & flags::INACTIVE != 0
    }

    /// Its length as a version 1 record, without options: `None` when its three addresses
    /// are not of one family.
    pub fn encoded_len(&self) -> Option<usize> {
        match (self.client, self.vip, self.real) {
            (IpAddr::V4(_), IpAddr::V4(_), IpAddr::V4(_)) => Some(V4_RECORD_LEN),
            (IpAddr::V6(_), IpAddr::V6(_), IpAddr::V6(_)) => Some(V6_RECORD_LEN),
            _ => None,
        }
    }

    /// Writes the record as version 1 with no options at the start of `out` and returns
    /// its length; `None` (nothing written) when `out` is too short or the addresses are
    /// of mixed families.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.encoded_len()?;
        let out = out.get_mut(..len)?;
        out[0] = u8::from(len == V6_RECORD_LEN);
        out[1] = self.protocol;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        out[4..8].copy_from_slice(&(self.flags & !flags::HASHED).to_be_bytes());
        out[8..10].copy_from_slice(&self.state.to_be_bytes());
        out[10..12].copy_from_slice(&self.client_port.to_be_bytes());
        out[12..14].copy_from_slice(&self.vip_port.to_be_bytes());
        out[14..16].copy_from_slice(&self.real_port.to_be_bytes());
        out[16..20].copy_from_slice(&self.fwmark.to_be_bytes());
        out[20..24].copy_from_slice(&self.timeout.unwrap_or(0).to_be_bytes());
        let width = (len - 24) / 3;
        for (i, addr) in [self.client, self.vip, self.real].into_iter().enumerate() {
            let at = 24 + i * width;
            match addr {
                IpAddr::V4(a) => out[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => out[at..at + 16].copy_from_slice(&a.octets()),
            }
        }
        Some(len)
    }
}

/// Why a datagram, or the rest of it, is not taken (the kernel's "Dropping buffer").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// Shorter than the 4-byte version 0 header.
    TooShort,
    /// The header's size is not the datagram's length.
    SizeMismatch {
        /// The header's size field.
        header: u16,
        /// The datagram's length.
        datagram: usize,
    },
    /// A record runs past the end of the datagram.
    Truncated,
    /// A version 1 record's version bits are not 0.
    RecordVersion(u8),
    /// A version 1 record's type is neither IPv4 (0) nor IPv6 (bit 0 set).
    RecordType(u8),
    /// A record's length is shorter than its addresses.
    RecordLength(u16),
    /// An option is cut short, empty, repeated or of the wrong length.
    BadOption(u8),
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("shorter than a sync message header"),
            Self::SizeMismatch { header, datagram } => {
                write!(f, "header says {header} bytes, datagram has {datagram}")
            }
            Self::Truncated => f.write_str("a record runs past the end of the datagram"),
            Self::RecordVersion(v) => write!(f, "record version {v}, not 0"),
            Self::RecordType(t) => write!(f, "record type {t}, neither IPv4 nor IPv6"),
            Self::RecordLength(l) => write!(f, "record length {l} shorter than its addresses"),
            Self::BadOption(t) => write!(f, "option {t} cut short, empty, repeated or misshapen"),
        }
    }
}

impl core::error::Error for SyncError {}

/// What the options of a version 1 record said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordOptions {
    /// It carried sequence data (NAT only; ignored by a Direct Routing director).
    pub seq: bool,
    /// It carried persistence engine data.
    pub pe_data: bool,
    /// It carried a persistence engine name.
    pub pe_name: bool,
    /// The first mandatory option type the receiver does not know: the kernel skips the
    /// record, and reads none of its options after that one.
    pub unknown_mandatory: Option<u8>,
    /// It carried dr's bulk resync request.
    pub resync_request: bool,
    /// The origin the request named (0 when it named none, or its data was shorter).
    pub resync_requester: u32,
    /// It carried dr's mark of the start of a bulk resync answer.
    pub resync_begin: Option<ResyncMark>,
    /// It carried dr's mark of the end of a bulk resync answer.
    pub resync_end: Option<ResyncMark>,
}

/// What a mark of the start or end of a bulk resync answer says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResyncMark {
    /// The origin of the director whose request this answers.
    pub requester: u32,
    /// The origin of the director that answers.
    pub answerer: u32,
    /// The records the answer held (the end mark; 0 in the start mark).
    pub records: u32,
    /// Which part of the answerer's answer this is (`0..parts`): a director whose table is
    /// shared between workers answers with one part per worker.
    pub part: u8,
    /// How many parts the answerer's answer has (1 to [`MAX_ANSWER_PARTS`]).
    pub parts: u8,
}

/// The most parts one director's answer to a bulk resync request may have.
pub const MAX_ANSWER_PARTS: u8 = 64;

impl ResyncMark {
    /// A mark for `requester`'s request, from `answerer`, of `records` records, the whole
    /// answer (part 0 of 1).
    pub const fn new(requester: u32, answerer: u32, records: u32) -> Self {
        Self { requester, answerer, records, part: 0, parts: 1 }
    }

    /// The same mark, for part `part` of `parts`.
    #[must_use]
    pub const fn in_part(self, part: u8, parts: u8) -> Self {
        Self { part, parts, ..self }
    }

    /// The option's 16 bytes of data: requester, answerer, records, part, parts, 2 bytes 0.
    fn encode(&self) -> [u8; 16] {
        let mut data = [0u8; 16];
        data[..4].copy_from_slice(&self.requester.to_be_bytes());
        data[4..8].copy_from_slice(&self.answerer.to_be_bytes());
        data[8..12].copy_from_slice(&self.records.to_be_bytes());
        data[12] = self.part;
        data[13] = self.parts;
        data
    }

    /// The mark from an option's data: `None` unless 16 bytes with a part below parts and
    /// at most [`MAX_ANSWER_PARTS`] parts.
    fn decode(data: &[u8]) -> Option<Self> {
        if data.len() != 16 {
            return None;
        }
        let (part, parts) = (data[12], data[13]);
        if parts == 0 || parts > MAX_ANSWER_PARTS || part >= parts {
            return None;
        }
        Some(Self {
            requester: be32(data, 0),
            answerer: be32(data, 4),
            records: be32(data, 8),
            part,
            parts,
        })
    }
}

/// One record of a message, with what its options said (all false for version 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The record.
    pub record: SyncRecord,
    /// Its options.
    pub options: RecordOptions,
}

/// A sync message whose header was checked; its records come from [`Message::records`].
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    datagram: &'a [u8],
    /// The message's protocol version: 0 or 1.
    pub version: u8,
    /// The sync ID of the sender.
    pub syncid: u8,
    /// The number of records the header announces.
    pub nr_conns: u8,
}

/// Checks a datagram's header as `ip_vs_process_message` does: at least the 4-byte version
/// 0 header, a size field equal to the datagram's length. A header with `reserved` 0,
/// version 1 and `spare` 0 is version 1; anything else is read as version 0.
///
/// # Errors
///
/// [`SyncError::TooShort`] or [`SyncError::SizeMismatch`].
pub fn parse(datagram: &[u8]) -> Result<Message<'_>, SyncError> {
    let [b0, syncid, s0, s1, ..] = *datagram else { return Err(SyncError::TooShort) };
    let size = u16::from_be_bytes([s0, s1]);
    if usize::from(size) != datagram.len() {
        return Err(SyncError::SizeMismatch { header: size, datagram: datagram.len() });
    }
    let v1 = datagram.len() >= HEADER_LEN
        && b0 == 0
        && datagram[5] == VERSION
        && datagram[6..8] == [0, 0];
    Ok(if v1 {
        Message { datagram, version: 1, syncid, nr_conns: datagram[4] }
    } else {
        Message { datagram, version: 0, syncid, nr_conns: b0 }
    })
}

impl<'a> Message<'a> {
    /// The records, in order; the iterator ends after the first error.
    pub fn records(&self) -> Records<'a> {
        let at = if self.version == 1 { HEADER_LEN } else { V0_HEADER_LEN };
        Records {
            datagram: self.datagram,
            version: self.version,
            at,
            left: self.nr_conns,
            failed: false,
        }
    }
}

/// The records of a [`Message`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    datagram: &'a [u8],
    version: u8,
    at: usize,
    left: u8,
    failed: bool,
}

impl Iterator for Records<'_> {
    type Item = Result<Entry, SyncError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        self.left -= 1;
        let item = if self.version == 1 { self.next_v1() } else { self.next_v0() };
        self.failed = item.is_err();
        Some(item)
    }
}

/// Reads an address of one family at an offset.
type AddrReader = fn(&[u8], usize) -> IpAddr;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(octets))
}

impl Records<'_> {
    /// `ip_vs_process_message`'s loop and `ip_vs_proc_sync_conn`'s decoding.
    fn next_v1(&mut self) -> Result<Entry, SyncError> {
        let start = self.at;
        let rest = self.datagram.get(start..).ok_or(SyncError::Truncated)?;
        if rest.len() < V4_RECORD_LEN {
            return Err(SyncError::Truncated);
        }
        let ver_size = be16(rest, 2);
        let size = usize::from(ver_size & 0x0fff);
        let r = rest.get(..size).ok_or(SyncError::Truncated)?;
        if ver_size >> 12 != 0 {
            return Err(SyncError::RecordVersion((ver_size >> 12) as u8));
        }
        let kind = rest[0];
        let (len, addr): (usize, AddrReader) = if kind & 1 != 0 {
            (V6_RECORD_LEN, v6)
        } else if kind == 0 {
            (V4_RECORD_LEN, v4)
        } else {
            return Err(SyncError::RecordType(kind));
        };
        if size < len {
            return Err(SyncError::RecordLength(ver_size));
        }
        let options = parse_options(&r[len..])?;
        let width = (len - 24) / 3;
        let record = SyncRecord {
            protocol: r[1],
            flags: be32(r, 4),
            state: be16(r, 8),
            client_port: be16(r, 10),
            vip_port: be16(r, 12),
            real_port: be16(r, 14),
            fwmark: be32(r, 16),
            timeout: Some(be32(r, 20)),
            client: addr(r, 24),
            vip: addr(r, 24 + width),
            real: addr(r, 24 + 2 * width),
        };
        // The next record starts 32-bit aligned.
        self.at = start + ((size + 3) & !3);
        Ok(Entry { record, options })
    }

    /// `ip_vs_process_message_v0`.
    fn next_v0(&mut self) -> Result<Entry, SyncError> {
        let r = self.datagram.get(self.at..self.at + V0_RECORD_LEN).ok_or(SyncError::Truncated)?;
        let flags = u32::from(be16(r, 20)) & !flags::HASHED;
        let len = if flags & flags::SEQ_MASK != 0 {
            V0_RECORD_LEN + SEQ_OPTIONS_LEN
        } else {
            V0_RECORD_LEN
        };
        if self.at + len > self.datagram.len() {
            return Err(SyncError::Truncated);
        }
        self.at += len;
        let record = SyncRecord {
            protocol: r[1],
            client_port: be16(r, 2),
            vip_port: be16(r, 4),
            real_port: be16(r, 6),
            client: v4(r, 8),
            vip: v4(r, 12),
            real: v4(r, 16),
            flags,
            state: be16(r, 22),
            fwmark: 0,
            timeout: None,
        };
        Ok(Entry {
            record,
            options: RecordOptions { seq: len > V0_RECORD_LEN, ..Default::default() },
        })
    }
}

/// The options after a record's addresses, as `ip_vs_proc_sync_conn` reads them.
fn parse_options(mut p: &[u8]) -> Result<RecordOptions, SyncError> {
    let mut seen = RecordOptions::default();
    while !p.is_empty() {
        let [kind, len, ref rest @ ..] = *p else { return Err(SyncError::BadOption(p[0])) };
        let len = usize::from(len);
        if len == 0 || len > rest.len() {
            return Err(SyncError::BadOption(kind));
        }
        let repeated = match kind & !options::PARAM {
            options::SEQ_DATA => len != SEQ_OPTIONS_LEN || core::mem::replace(&mut seen.seq, true),
            options::PE_DATA => {
                len > options::PE_DATA_MAXLEN || core::mem::replace(&mut seen.pe_data, true)
            }
            options::PE_NAME => {
                len > options::PE_NAME_MAXLEN || core::mem::replace(&mut seen.pe_name, true)
            }
            _ if kind == options::RESYNC_REQUEST => {
                seen.resync_request = true;
                if len >= 4 {
                    seen.resync_requester = be32(rest, 0);
                }
                false
            }
            // A mark of another length is no mark: an optional option, skipped.
            _ if kind == options::RESYNC_BEGIN => {
                seen.resync_begin = ResyncMark::decode(&rest[..len]);
                false
            }
            _ if kind == options::RESYNC_END => {
                seen.resync_end = ResyncMark::decode(&rest[..len]);
                false
            }
            _ if kind & options::PARAM == 0 => {
                // The kernel stops reading the record's options here and skips only the
                // record: what follows is not looked at.
                seen.unknown_mandatory = Some(kind);
                return Ok(seen);
            }
            _ => false,
        };
        if repeated {
            return Err(SyncError::BadOption(kind));
        }
        p = &rest[len..];
    }
    Ok(seen)
}

/// Builds a version 1 message in a caller's buffer: the header, then records appended while
/// they fit.
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: usize,
}

impl<'a> MessageWriter<'a> {
    /// A message with no records yet, from `syncid`; `None` when `buf` cannot hold the
    /// header.
    pub fn new(buf: &'a mut [u8], syncid: u8) -> Option<Self> {
        let header = buf.get_mut(..HEADER_LEN)?;
        header.copy_from_slice(&[0, syncid, 0, HEADER_LEN as u8, 0, VERSION, 0, 0]);
        Some(Self { buf, len: HEADER_LEN, count: 0 })
    }

    /// A message already holding `count` records in its first `len` bytes.
    pub(crate) fn resume(buf: &'a mut [u8], len: usize, count: usize) -> Self {
        Self { buf, len, count }
    }

    /// The records written so far.
    pub fn records(&self) -> usize {
        self.count
    }

    /// The message's length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no record yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends a record (after padding to 4 bytes), or returns false and leaves the message
    /// as it was when it does not fit, the message holds [`MAX_RECORDS`], or the record's
    /// addresses are of mixed families.
    pub fn push(&mut self, record: &SyncRecord) -> bool {
        self.push_with(record, &[])
    }

    /// Appends a record followed by `options` (already encoded as `[type][len][data]`…).
    pub fn push_with(&mut self, record: &SyncRecord, options: &[u8]) -> bool {
        let Some(base) = record.encoded_len() else { return false };
        let pad = (4 - self.len % 4) % 4;
        let total = base + options.len();
        let end = self.len + pad + total;
        if self.count >= MAX_RECORDS || total > 0x0fff || end > self.buf.len() || end > 0xffff {
            return false;
        }
        self.buf[self.len..self.len + pad].fill(0);
        let at = self.len + pad;
        if record.encode(&mut self.buf[at..]).is_none() {
            return false;
        }
        self.buf[at + 2..at + 4].copy_from_slice(&(total as u16).to_be_bytes());
        self.buf[at + base..end].copy_from_slice(options);
        self.len = end;
        self.count += 1;
        self.buf[2..4].copy_from_slice(&(end as u16).to_be_bytes());
        self.buf[4] = self.count as u8;
        true
    }
}

/// The record that carries dr's bulk resync request: IPv4, protocol 0 (a protocol IPVS
/// does not handle, so a kernel backup skips the record), everything else 0, with the
/// option [`options::RESYNC_REQUEST`] of 4 zero bytes.
pub fn resync_request_record() -> (SyncRecord, [u8; 6]) {
    resync_request_from(0)
}

/// [`resync_request_record`] naming the requester's origin in the option's 4 bytes.
pub fn resync_request_from(origin: u32) -> (SyncRecord, [u8; 6]) {
    let o = origin.to_be_bytes();
    (marker_record(), [options::RESYNC_REQUEST, 4, o[0], o[1], o[2], o[3]])
}

/// The record that carries a mark of the start ([`options::RESYNC_BEGIN`]) or end
/// ([`options::RESYNC_END`]) of a bulk resync answer: like the request's, protocol 0, so a
/// kernel backup skips it and goes on with the message's next record.
pub fn resync_mark_record(end: bool, mark: &ResyncMark) -> (SyncRecord, [u8; 18]) {
    let mut option = [0u8; 18];
    option[0] = if end { options::RESYNC_END } else { options::RESYNC_BEGIN };
    option[1] = 16;
    option[2..].copy_from_slice(&mark.encode());
    (marker_record(), option)
}

/// An IPv4 record of protocol 0 with every field 0.
fn marker_record() -> SyncRecord {
    let zero = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    SyncRecord {
        protocol: 0,
        flags: 0,
        state: 0,
        client: zero,
        client_port: 0,
        vip: zero,
        vip_port: 0,
        real: zero,
        real_port: 0,
        fwmark: 0,
        timeout: Some(0),
    }
}
