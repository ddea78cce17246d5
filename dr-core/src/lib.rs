//! # dr-core: the sans-I/O core of an LVS Direct Routing director
//!
//! A Direct Routing director receives the Ethernet frames clients send to a virtual IP
//! (VIP), picks a real server for each new connection with an IPVS scheduler, and sends the
//! *same frame* back onto the LAN with only the MAC addresses changed. The real servers hold
//! the VIP on a non-ARP interface and answer the clients directly.
//!
//! This crate is the whole decision-making part of such a director, with no I/O: it never
//! reads a clock (time is a parameter), never reads randomness (the hash seed is given),
//! never allocates after construction, and never panics on any input. Backends (pcap files,
//! `AF_PACKET` sockets, the in-memory [`MemoryIo`]) move frames through the [`FrameIo`]
//! trait.
//!
//! ```
//! use dr_core::{Config, Director, Instant, MacAddr, Protocol, RealConfig, SchedulerKind, ServiceConfig};
//!
//! let mac: MacAddr = "02:00:00:00:00:01".parse()?;
//! let mut director = Director::new(Config::new(mac, [1, 2, 3, 4]))?;
//! let web = director.add_service(ServiceConfig::new(
//!     Protocol::Tcp, "10.0.0.100".parse()?, 80, SchedulerKind::Rr))?;
//! director.add_real(web, RealConfig::new("10.0.0.11".parse()?)
//!     .with_mac("02:00:00:00:00:11".parse()?))?;
//!
//! let mut frame = [0u8; 64]; // a frame from the wire
//! let verdict = director.process(Instant::from_secs(1), &mut frame);
//! assert!(!verdict.is_transmit()); // zeros are not a packet
//! if let Some(at) = director.poll_timeout() {
//!     director.handle_timeout(at);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Director`] documents the calling protocol: what to call, in which order, how often.
//!
//! With a large table, [`Director::process_burst`] decides a slice of frames exactly as
//! `process` would decide each, prefetching the table memory of the next [`BURST`] frames
//! while it decides the current ones (on x86 and x86-64; elsewhere without the prefetch).
//!
//! # Layout
//!
//! - [`wire`]: the frame classifier (over etherparse's slicing API) and frame writers.
//! - [`conn`]: connection states, timeouts and the fixed-capacity table.
//! - [`sched`]: the schedulers, one module each.
//! - [`Director`]: services, real servers, the packet path, ICMP, ARP and Neighbor
//!   Discovery, statistics.
//! - [`Listing`]: the `ipvsadm -L` layouts and JSON.
//! - [`io`]: the [`FrameIo`] seam, the [`Driver`] loop and the in-memory backend.
//! - [`sync`]: connection sync with the kernel's sync daemon's messages and rules:
//!   [`Director::start_sync`], [`Director::poll_sync`] (a master's datagrams),
//!   [`Director::import_sync`] (a backup's), [`Director::request_resync`] and
//!   [`Director::resync_status`] (a restarted backup's bulk resync, and its end).
//!
//! # What it does as IPVS does
//!
//! The input-only TCP state table and its timeouts; the fourteen schedulers of
//! [`sched`], pick for pick but for `twos`, which is random and follows the kernel's
//! distribution from a seeded generator;
//! active, inactive and persistent counts; thresholds; persistence templates (netmask or
//! IPv6 prefix, port-0 services, the 60 s `expire_later` steps while a template controls
//! connections, counted from each deadline and decided in deadline order however late
//! [`Director::handle_timeout`] is called, `expire_quiescent_template`); `conn_reuse_mode`
//! (a SYN on a TIME_WAIT or CLOSE entry, or FIN_WAIT with bit 2, is scheduled afresh, even
//! when its server was removed) and `expire_nodest_conn` (as since kernel 5.16, in every
//! `conn_reuse_mode`); `sloppy_tcp` (any TCP segment without RST opens a connection, in
//! the state its first segment leads to from NONE); one-packet scheduling
//! ([`ServiceConfig::one_packet`], `ipvsadm -o`: each UDP datagram scheduled on its own,
//! counted as a connection, leaving no entry; persistence templates still made and synced;
//! no effect on TCP);
//! ICMP errors relayed to the connection they quote, unchanged but for the MACs; the
//! counters (inbytes as IP datagram length) and the 2-second rate estimator; the
//! `ipvsadm -L` layouts ([`Listing`], [`ConnectionListing`]).
//!
//! # Where dr differs from Linux IPVS on purpose
//!
//! - `twos` draws from a generator seeded by [`Config::hash_seed`], not from the kernel's
//!   `prandom_u32`: its picks are reproducible and follow the kernel's distribution, not its
//!   draws. `mh` builds the tables of 64-bit little-endian kernels (x86-64, arm64), whose
//!   `hsiphash` is SipHash-1-3; a server the table still names after the service lost it
//!   (more servers than slots, which the kernel refuses to rebuild for) is not picked.
//! - The TTL is left alone unless [`Config::decrement_ttl`] is set (Linux decrements it);
//!   with it set, a TTL of 1 or less is dropped rather than answered with ICMP.
//! - The connection table has a fixed capacity (IPVS's grows until memory runs out). A new
//!   connection that finds it full evicts the oldest *unproven* entry: a connection that
//!   has not yet carried what only a client that completed its handshake sends (TCP data
//!   after the handshake, a second UDP datagram), or a persistence template that controls
//!   no connection and none of whose connections was proven. Each entry has one place in
//!   that queue, taken when it becomes evictable and kept whatever else arrives for it, so
//!   a flood of spoofed flows cannot escape it: a SYN, a SYN then a reset, a SYN then a
//!   forged ACK, or one flow's SYN over and over all leave unproven entries that give way
//!   oldest first, and a connection that carried data never gives way, in any state. With
//!   no unproven entry left the new connection is dropped ([`DropReason::ConnTableFull`]).
//!   This replaces the kernel's memory-driven `drop_entry` (whose `todrop_entry` prefers
//!   entries with few packets too), `drop_packet` and `secure_tcp`. A new legitimate
//!   connection survives a flood as long as fewer new flows than there are unproven
//!   entries arrive between its SYN and its first data: with a quarter of a 256-entry
//!   table established and ten times its capacity in spoofed flows, of every pattern,
//!   every legitimate connection whose round trip is shorter than 60 spoofed flows gets
//!   every segment to one real server (`tests/flood.rs`). A flood that completes what
//!   looks like a handshake and sends data is indistinguishable from clients.
//! - Expiry times are rounded up to a 1 ms tick (the kernel's jiffies are as coarse at
//!   HZ=1000, and its timer wheel coarser still for long timeouts). When a connection and
//!   the template that controls it are due in the same tick, the connection's timer goes
//!   first (the kernel's order within a jiffy is its timer wheel's).
//! - There is no reassembly. The first fragment of a TCP or UDP datagram to a VIP is
//!   handled as the datagram; its later fragments follow it to the same real server through
//!   a small bounded table keyed by source, destination, protocol and IP identification
//!   ([`Config::fragment_capacity`], [`Config::fragment_timeout`]). A later fragment that
//!   arrives before its first one is dropped ([`DropReason::FragmentUnmatched`]), never
//!   held. Statistics count the datagram once, at its reassembled length, as the kernel.
//!   A datagram to a one-packet service is scheduled at its first fragment, and its later
//!   fragments follow it just the same (the kernel schedules it once, reassembled).
//!   A fragmented ICMP message goes to the host (IPv4) or is dropped (IPv6, as the kernel).
//! - Echo requests to a VIP are answered by the director ([`Config::icmp_echo`]), as a
//!   kernel holding the VIP would: here the host does not hold it.
//! - A template that a one-packet datagram finds is proven (the client network sent again),
//!   so floods do not evict it; the kernel has no eviction to spare it from.
//! - A template re-armed after its service's persistence timeout was edited uses the new
//!   timeout (the kernel keeps the one the template was made with).
//! - There are no firewall-mark services and no FTP helper (port 20/21 special cases).
//! - Connection sync ([`sync`]) keeps only records it can bind to a service and real
//!   server of its own, matches real servers by address alone, and adds a bulk resync
//!   request, with marks of the start and end of its answer, that a kernel peer ignores;
//!   see the module for the rest.
//!
//! # Features
//!
//! - `std` (default): implies `alloc`; nothing else yet.
//! - `alloc`: the in-memory backend [`MemoryIo`].
//!
//! The crate always needs a global allocator, to reserve its tables at construction.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// `Clone` for the fuzz targets (built with `--cfg fuzzing`), whose `clone_from` reuses
/// every buffer the copy already has: each fuzz input starts from a copy of a director set
/// up once, without allocating it again. Every field is named, so a field added to the type
/// and not here fails to compile instead of leaking from one input into the next.
#[cfg(fuzzing)]
macro_rules! fuzzing_clone {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl Clone for $ty {
            fn clone(&self) -> Self {
                let Self { $($field),* } = self;
                Self { $($field: Clone::clone($field)),* }
            }

            fn clone_from(&mut self, source: &Self) {
                let Self { $($field),* } = self;
                $(Clone::clone_from($field, &source.$field);)*
            }
        }
    };
}

mod config;
pub mod conn;
mod director;
mod flow;
mod fragments;
mod hashing;
pub mod io;
mod listing;
mod mac;
mod neigh;
mod prefetch;
pub mod sched;
mod service;
mod stats;
pub mod sync;
mod time;
mod verdict;
mod vlan;
pub mod wire;

pub use config::{Config, ConfigError, MAX_TIMEOUT_SECS};
pub use conn::{ConnState, TimeoutSettings, Timeouts};
pub use director::{BURST, ConnInfo, ConnKind, Director};
pub use flow::{FlowKey, Protocol, SocketDisplay};
#[cfg(feature = "alloc")]
pub use io::MemoryIo;
pub use io::{Batch, Driver, DriverOptions, FrameIo, RunStats, each_frame};
pub use listing::{
    ConnectionListing, Counts, Listing, ListingFormat, ListingOptions, RealRow, ServiceRow, Table,
};
pub use mac::{MacAddr, MacParseError};
pub use sched::{
    DEFAULT_MH_TABLE_SIZE, FlagNames, MH_TABLE_SIZES, SchedFlagError, SchedFlags, SchedulerKind,
    UnknownScheduler,
};
pub use service::{
    DEFAULT_PERSISTENT_SECS, MAX_PERSISTENT_SECS, MAX_WEIGHT, Persistence, RealConfig, RealEdit,
    RealId, RealServer, Service, ServiceConfig, ServiceId, ServiceKey,
};
pub use stats::{Counters, ESTIMATOR_INTERVAL, Rates, Stats};
pub use sync::{SyncConfig, SyncConfigError, SyncCounters, SyncMode};
pub use time::{Duration, Instant};
pub use verdict::{DropReason, PassReason, Verdict};
pub use vlan::{MAX_STACKED_VLANS, MAX_VLAN_ID, VlanError, VlanSet};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
