//! The backup's rules for one record (`ip_vs_proc_sync_conn`, `ip_vs_proc_conn`).
//!
//! - A record whose protocol dr does not handle (anything but TCP and UDP), whose state is
//!   not one of its protocol's (TCP 0 ..= 10, UDP 0), that carries an unknown mandatory
//!   option or persistence engine data (dr has no persistence engines) is skipped; the
//!   rest of the datagram is still read.
//! - Flags are masked with `IP_VS_CONN_F_BACKUP_MASK` (version 1); only INACTIVE and
//!   TEMPLATE mean anything to a Direct Routing director.
//! - The entry is looked up by (protocol, client address and port, VIP and port): a
//!   connection among connections, a template among templates.
//! - Found with another real server: a record that is not INACTIVE replaces it (the old one
//!   expires now); an INACTIVE one is the late news of a connection already replaced, and
//!   is ignored.
//! - Found otherwise: its state, its INACTIVE bit (moving it between its real server's
//!   active and inactive counts) and its timer are updated; no other flag changes.
//! - Not found: a new entry, bound to the real server of that address in the service of
//!   (protocol, VIP, port), or of (protocol, VIP, 0), counted active or inactive as the
//!   record says.
//! - The timer runs for the record's timeout, or without one (version 0, or 0) for the
//!   state's timeout here; a template's is then 180 s, as the kernel's.

use super::wire::{Entry, flags};
use crate::config::MAX_TIMEOUT_SECS;
use crate::conn::ConnState;
use crate::flow::{FlowKey, Protocol};
use crate::time::Duration;
use core::net::IpAddr;

/// A template's timeout when the record has none (`ip_vs_proc_conn`: 3 minutes).
pub const TEMPLATE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// A record a backup takes, as dr's table holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) key: FlowKey,
    pub(crate) template: bool,
    /// A connection's state (`None` for a template).
    pub(crate) state: ConnState,
    /// A template's state is `IP_VS_CTPL_S_ASSURED`.
    pub(crate) assured: bool,
    pub(crate) inactive: bool,
    pub(crate) real: IpAddr,
    /// The record's timeout; `None` for the state's own.
    pub(crate) timeout: Option<Duration>,
}

/// The kernel's TCP states by number (`IP_VS_TCP_S_NONE` ..= `IP_VS_TCP_S_SYNACK`).
const TCP_STATES: [ConnState; 11] = [
    ConnState::None,
    ConnState::Established,
    ConnState::SynSent,
    ConnState::SynRecv,
    ConnState::FinWait,
    ConnState::TimeWait,
    ConnState::Close,
    ConnState::CloseWait,
    ConnState::LastAck,
    ConnState::Listen,
    ConnState::SynAck,
];

/// The kernel's number for a state: TCP states are their own, UDP's is 0.
pub(crate) fn wire_state(state: ConnState) -> u16 {
    match state {
        ConnState::Udp => 0,
        s => TCP_STATES.iter().position(|t| *t == s).unwrap_or(0) as u16,
    }
}

/// What a record means to a Direct Routing backup, or `None` when it is skipped.
pub(crate) fn check(entry: &Entry, version: u8) -> Option<Incoming> {
    let r = &entry.record;
    let o = &entry.options;
    if o.unknown_mandatory.is_some() || o.pe_data {
        return None;
    }
    let flags = if version == 1 { r.flags & flags::BACKUP_MASK } else { r.flags };
    let template = flags & flags::TEMPLATE != 0;
    let protocol = Protocol::from_number(r.protocol)?;
    let state = match (template, protocol) {
        (true, _) => ConnState::None,
        (false, Protocol::Tcp) => *TCP_STATES.get(usize::from(r.state))?,
        (false, Protocol::Udp) if r.state == 0 => ConnState::Udp,
        (false, Protocol::Udp) => return None,
    };
    let timeout = r
        .timeout
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(u64::from(t.min(MAX_TIMEOUT_SECS))));
    Some(Incoming {
        key: FlowKey {
            protocol,
            client: r.client,
            client_port: r.client_port,
            vip: r.vip,
            vip_port: r.vip_port,
        },
        template,
        state,
        assured: template && r.state == 1,
        inactive: flags & flags::INACTIVE != 0,
        real: r.real,
        timeout,
    })
}
