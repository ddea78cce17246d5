//! The backend each worker forwards through, behind one type: `AF_PACKET` (the default:
//! a receive ring on any interface, `--ring frames` or `--ring blocks`) or `AF_XDP` (an XDP program that redirects only the
//! director's traffic into a UMEM, one socket per receive queue). The workers, the
//! control socket and the metrics see only [`Io`].

use dr_core::{Batch, FrameIo, Instant, MacAddr, Verdict};
use dr_io_afpacket::{AfPacket, AfPacketConfig, RxRing};
use dr_io_afxdp::{AfXdp, AfXdpConfig};
use std::fmt;
use std::net::IpAddr;

/// Which backend dr-director runs on (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// `AF_PACKET` sockets with mmap rings, in a fanout group with several workers.
    #[default]
    Afpacket,
    /// `AF_XDP` sockets, one per receive queue (`--workers` = the interface's queues).
    Afxdp,
}

/// How an `AF_PACKET` ring hands frames over (`--ring`, `--block-timeout`, `--frame-size`,
/// `--busy-poll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Frame by frame, or by blocks.
    pub ring: RxRing,
    /// The frame ring's slot size, if not the backend's default.
    pub frame_size: Option<u32>,
    /// Microseconds to spin on the ring before sleeping.
    pub busy_poll_us: u32,
}

impl Default for RingOptions {
    fn default() -> Self {
        Self { ring: RxRing::Frames, frame_size: None, busy_poll_us: 0 }
    }
}

/// One worker's frames.
#[derive(Debug)]
pub enum Io {
    /// On `AF_PACKET`.
    AfPacket(AfPacket),
    /// On `AF_XDP`.
    AfXdp(AfXdp),
}

/// An error of either backend.
#[derive(Debug)]
pub enum IoError {
    /// From `AF_PACKET`.
    AfPacket(dr_io_afpacket::Error),
    /// From `AF_XDP`.
    AfXdp(dr_io_afxdp::Error),
}

impl IoError {
    /// Whether the worker cannot go on (the interface is gone, permissions lost).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::AfPacket(e) => e.is_fatal(),
            Self::AfXdp(e) => e.is_fatal(),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AfPacket(e) => e.fmt(f),
            Self::AfXdp(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for IoError {}

/// The interface's MAC address.
///
/// # Errors
///
/// The backend's error opening a probe socket on the interface.
pub fn interface_mac(iface: &str) -> Result<MacAddr, String> {
    let probe = AfPacket::open(&AfPacketConfig::new(iface)).map_err(|e| e.to_string())?;
    Ok(probe.mac())
}

/// Opens `workers` backends on `iface` that let these VIPs' traffic in: `AF_PACKET` rings
/// sharing a fanout group when there are several, or one `AF_XDP` socket per queue.
///
/// # Errors
///
/// The backend's error, which says what to do (for `AF_XDP` on an interface without XDP,
/// to use `--backend afpacket`).
pub fn open(
    backend: Backend,
    iface: &str,
    vips: &[IpAddr],
    workers: u16,
    ring: RingOptions,
) -> Result<Vec<Io>, String> {
    match backend {
        Backend::Afpacket => {
            let fanout = (workers > 1).then(|| (std::process::id() & 0xffff) as u16);
            (0..workers)
                .map(|_| {
                    let mut config = AfPacketConfig::new(iface)
                        .with_vips(vips.to_vec())
                        .with_ring(ring.ring)
                        .with_busy_poll(ring.busy_poll_us);
                    if let Some(size) = ring.frame_size {
                        config = config.with_frame_size(size);
                    }
                    if let Some(group) = fanout {
                        config = config.with_fanout(group);
                    }
                    AfPacket::open(&config).map(Io::AfPacket).map_err(|e| e.to_string())
                })
                .collect()
        }
        Backend::Afxdp => {
            let mut config = AfXdpConfig::new(iface, vips.to_vec());
            config.busy_poll_us = ring.busy_poll_us;
            let sockets =
                AfXdp::open_queues(&config, u32::from(workers)).map_err(|e| e.to_string())?;
            if let Some(first) = sockets.first() {
                tracing::info!(
                    mode = ?first.mode(),
                    zero_copy = first.zero_copy(),
                    queues = sockets.len(),
                    "AF_XDP program attached"
                );
            }
            Ok(sockets.into_iter().map(Io::AfXdp).collect())
        }
    }
}

impl Io {
    /// Lets exactly these VIPs' traffic in (after services were added or removed).
    ///
    /// # Errors
    ///
    /// The backend's refusal.
    pub fn set_vips(&mut self, vips: &[IpAddr]) -> Result<(), String> {
        match self {
            Self::AfPacket(io) => io.set_vips(vips).map_err(|e| e.to_string()),
            Self::AfXdp(io) => io.set_vips(vips).map_err(|e| e.to_string()),
        }
    }

    /// The backend's counters in the OpenMetrics text format (the `dr_ring_*` family).
    pub fn render_metrics(&mut self) -> String {
        match self {
            Self::AfPacket(io) => {
                let ring = io.ring_stats().unwrap_or_else(|e| {
                    tracing::warn!("reading the ring's statistics: {e}");
                    dr_io_afpacket::RingStats::default()
                });
                crate::metrics::render_ring(ring, io.truncated(), io.vlan_lost(), io.unsent())
            }
            Self::AfXdp(io) => {
                let stats = io.stats().unwrap_or_else(|e| {
                    tracing::warn!("reading the socket's statistics: {e}");
                    dr_io_afxdp::XdpStats::default()
                });
                let ring = dr_io_afpacket::RingStats {
                    received: stats.received,
                    dropped: stats.dropped,
                    freezes: 0,
                };
                let mut out = crate::metrics::render_ring(ring, 0, 0, io.unsent());
                out.push_str(&crate::metrics::render_xdp(&stats));
                out
            }
        }
    }
}

impl FrameIo for Io {
    type Error = IoError;

    fn process_batch<F>(&mut self, handler: F) -> Result<Batch, IoError>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict,
    {
        match self {
            Self::AfPacket(io) => io.process_batch(handler).map_err(IoError::AfPacket),
            Self::AfXdp(io) => io.process_batch(handler).map_err(IoError::AfXdp),
        }
    }

    fn process_bursts<F>(&mut self, handler: F) -> Result<Batch, IoError>
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        match self {
            Self::AfPacket(io) => io.process_bursts(handler).map_err(IoError::AfPacket),
            Self::AfXdp(io) => io.process_bursts(handler).map_err(IoError::AfXdp),
        }
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> Result<(), IoError> {
        match self {
            Self::AfPacket(io) => io.send(now, frame).map_err(IoError::AfPacket),
            Self::AfXdp(io) => io.send(now, frame).map_err(IoError::AfXdp),
        }
    }

    fn now(&self) -> Instant {
        match self {
            Self::AfPacket(io) => io.now(),
            Self::AfXdp(io) => io.now(),
        }
    }
}
