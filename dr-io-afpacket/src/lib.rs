//! # dr-io-afpacket: a live director on a Linux interface
//!
//! A [`FrameIo`] over an `AF_PACKET` socket bound to one interface:
//!
//! - frames arrive in a receive ring mapped into memory, and the director rewrites them
//!   **in place in the ring**: no copy and no allocation per frame;
//!   [`FrameIo::process_bursts`] lends them up to [`BURST`] at a time, straight from the
//!   ring, for [`Director::process_burst`](dr_core::Director::process_burst);
//! - the ring hands each frame over the moment the kernel has written it (TPACKET_V2, one
//!   slot per frame, [`RxRing::Frames`], the default), or a block of frames at a time when
//!   the block fills or times out (TPACKET_V3, [`RxRing::Blocks`]), which makes a lone frame
//!   wait for the timeout; optionally the backend spins on the ring for a while before it
//!   sleeps ([`AfPacketConfig::busy_poll_us`]);
//! - frames to transmit leave in batches with `sendmmsg`, pointing straight into the ring,
//!   past the queueing discipline (`PACKET_QDISC_BYPASS`);
//! - the socket never sees its own transmissions (`PACKET_IGNORE_OUTGOING`);
//! - a classic BPF filter lets through only ARP, IPv4 and IPv6 to the VIPs, ICMPv6
//!   (Neighbor Discovery) and VLAN-tagged frames ([`AfPacketConfig::vips`]);
//! - several workers can share the interface in a `PACKET_FANOUT` group, each seeing whole
//!   flows: a classic BPF program picks the worker from the IP addresses alone, so every
//!   fragment of a datagram reaches the worker that saw its first fragment, and nothing is
//!   reassembled by the kernel ([`AfPacketConfig::fanout`]).
//!
//! **Offloads.** On veth, virtio and most NICs the kernel hands a packet socket frames whose
//! TCP/UDP checksum is not filled in yet, and segmentation-offloaded frames larger than the
//! MTU. The socket asks for a `virtio_net_hdr` in front of each frame (`PACKET_VNET_HDR`)
//! and sends a forwarded frame back out *with the header it came with*: the checksum is
//! completed, and large frames segmented, by the kernel on the way to the real server,
//! exactly as if the frame had never left the offload path. Frames the director writes
//! itself (ARP and ND answers, echo replies, announcements) carry complete checksums and
//! go out with an empty header.
//!
//! Frames the ring truncated (longer than a ring block, or, with [`RxRing::Frames`], longer
//! than a slot and than 128 KiB, or than a slot when the socket's receive buffer was full)
//! are counted in [`AfPacket::truncated`] and not forwarded.
//!
//! **VLANs.** Linux usually takes a frame's outer 802.1Q or 802.1ad tag out into packet
//! metadata (`tp_vlan_tci`, `TP_STATUS_VLAN_VALID`) before a packet socket sees it. The
//! backend puts it back in the frame, in place in the ring, before the director decides: the
//! director sees every frame exactly as it was on the wire, serves only the VLANs its
//! configuration names (`Config::vlans`), and a frame it forwards or answers leaves with
//! exactly the tags it came with (a tag in the frame is transmitted as it stands). A frame
//! whose tag could not be put back is counted in [`AfPacket::vlan_lost`] and never
//! processed.
//!
//! All `unsafe` code is in the private `sys` module, each block with its `// SAFETY:`
//! argument.

mod error;
mod filter;
mod link;
mod sys;

pub use error::Error;
pub use link::LinkSocket;

use dr_core::{BURST, Batch, DropReason, FrameIo, Instant, MacAddr, Verdict};
use std::net::IpAddr;
use sys::{RingRequest, RxFrame, Socket, TP_STATUS_COPY, TxBatch, VNET_HDR_LEN};

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the only header flag that means something on transmit.
const VNET_NEEDS_CSUM: u8 = 1;

/// How the kernel hands received frames over to the backend: the trade-off between the
/// latency a frame waits at low rates and the work per frame at high rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RxRing {
    /// TPACKET_V2 (the default): every frame has a slot of its own
    /// ([`AfPacketConfig::frame_size`]), handed over, and the backend woken, the moment
    /// the kernel has written it. A frame waits for nothing but the director. A frame
    /// longer than its slot (an offloaded segment of up to 64 KiB) is also queued whole on
    /// the socket and read from there, one more copy by the kernel.
    Frames,
    /// TPACKET_V3: frames are packed into blocks, and a block is handed over when it is
    /// full or `timeout_ms` after it was opened, whichever is first: at low rates every
    /// frame waits for the timeout (a millisecond at least), at high rates one wakeup and
    /// one release serve a block of frames.
    Blocks {
        /// The block timeout (`retire_blk_tov`) in milliseconds; 0 lets the kernel choose
        /// from the link speed (8 ms when it is unknown).
        timeout_ms: u32,
    },
}

/// How to open the backend.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AfPacketConfig {
    /// The interface.
    pub interface: String,
    /// The VIPs whose traffic the BPF filter lets through; `None` for no filter.
    pub vips: Option<Vec<IpAddr>>,
    /// Join this `PACKET_FANOUT` group, to share the interface with other workers; each
    /// frame goes to the worker its IP addresses hash to.
    pub fanout: Option<u16>,
    /// How frames are handed over (default [`RxRing::Frames`]).
    pub ring: RxRing,
    /// Ring block size in bytes (a power of two, at least one page; default 1 MiB, room for
    /// offloaded 64 KiB frames in [`RxRing::Blocks`]).
    pub block_size: u32,
    /// Ring blocks (default 16).
    pub blocks: u32,
    /// [`RxRing::Frames`]: the size of a frame's slot in bytes, its header included (a
    /// multiple of 16, at most `block_size`; a block holds `block_size / frame_size` slots
    /// and never part of one; default 2048, room for a 1518-byte frame).
    pub frame_size: u32,
    /// How long the backend checks the ring for a frame, without sleeping, before it waits
    /// in `poll`, in microseconds (default 0: it sleeps at once). Spinning saves the
    /// wakeup of a sleeping thread on the next frame, and spends that time's CPU when no
    /// frame comes.
    pub busy_poll_us: u32,
    /// How long [`FrameIo::process_batch`] waits for frames, in milliseconds (default 10).
    pub poll_timeout_ms: i32,
}

impl AfPacketConfig {
    /// The defaults, on `interface`.
    pub fn new(interface: impl Into<String>) -> Self {
        Self {
            interface: interface.into(),
            vips: None,
            fanout: None,
            ring: RxRing::Frames,
            block_size: 1 << 20,
            blocks: 16,
            frame_size: 2048,
            busy_poll_us: 0,
            poll_timeout_ms: 10,
        }
    }

    /// Filters the socket down to these VIPs' traffic (and ARP, ICMPv6, tagged frames).
    #[must_use]
    pub fn with_vips(mut self, vips: Vec<IpAddr>) -> Self {
        self.vips = Some(vips);
        self
    }

    /// Joins a fanout group.
    #[must_use]
    pub fn with_fanout(mut self, group: u16) -> Self {
        self.fanout = Some(group);
        self
    }

    /// Hands frames over as `ring` says.
    #[must_use]
    pub fn with_ring(mut self, ring: RxRing) -> Self {
        self.ring = ring;
        self
    }

    /// Gives each frame a slot of `bytes` ([`RxRing::Frames`]).
    #[must_use]
    pub fn with_frame_size(mut self, bytes: u32) -> Self {
        self.frame_size = bytes;
        self
    }

    /// Checks the ring for `micros` microseconds before sleeping.
    #[must_use]
    pub fn with_busy_poll(mut self, micros: u32) -> Self {
        self.busy_poll_us = micros;
        self
    }
}

/// The ring's layout, as set up.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// TPACKET_V3: `blocks` blocks of `block_size` bytes.
    Blocks { block_size: usize, blocks: usize },
    /// TPACKET_V2: `slots` slots of `frame_size` bytes, `per_block` to a block of
    /// `block_size` (a slot never spans two blocks).
    Frames { frame_size: usize, per_block: usize, block_size: usize, slots: usize },
}

impl Layout {
    /// Blocks or slots in the ring.
    fn count(self) -> usize {
        match self {
            Self::Blocks { blocks, .. } => blocks,
            Self::Frames { slots, .. } => slots,
        }
    }

    /// Where block or slot `i` starts in the ring.
    fn offset(self, i: usize) -> usize {
        match self {
            Self::Blocks { block_size, .. } => i * block_size,
            Self::Frames { frame_size, per_block, block_size, .. } => {
                i / per_block * block_size + i % per_block * frame_size
            }
        }
    }
}

/// The longest frame read whole from the socket ([`RxRing::Frames`]): 64 KiB of an
/// offloaded segment, its headers and `virtio_net_hdr`, with room to spare.
const LONG_FRAME: usize = 1 << 17;

/// The socket's receive buffer in [`RxRing::Frames`], which holds the long frames queued
/// whole until they are read.
const LONG_FRAME_BUFFER: i32 = 8 << 20;

/// The `AF_PACKET` backend.
#[derive(Debug)]
pub struct AfPacket {
    socket: Socket,
    ring: sys::Ring,
    layout: Layout,
    /// The next block or slot to look at.
    current: usize,
    tx: Tx,
    /// [`RxRing::Frames`]: where a frame too long for its slot is read to, whole (empty for
    /// [`RxRing::Blocks`]). Four bytes stay free in front, for a VLAN tag to put back.
    long: Vec<u8>,
    busy_poll: std::time::Duration,
    poll_timeout_ms: i32,
    mac: MacAddr,
    /// The interface's name and index, to tell an interface down from one gone.
    interface: String,
    ifindex: u32,
    /// The kernel said the interface went down, and no frame has come since. It says so
    /// once, at the interface's `NETDEV_DOWN`: one deleted while down, or deleted the
    /// moment after going down, is told apart from one down only by looking it up again.
    down: bool,
    started: std::time::Instant,
    truncated: u64,
    vlan_lost: u64,
    ring_stats: RingStats,
}

/// The kernel's counts for an [`AfPacket`] socket, from `PACKET_STATISTICS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames the kernel handed to the socket (`tp_packets`, dropped ones included).
    pub received: u64,
    /// Frames dropped because no block of the ring was free (`tp_drops`): the director fell
    /// behind. A larger ring (`blocks`, `block_size`) or more workers help.
    pub dropped: u64,
    /// Times the ring froze because the next block was still the director's
    /// (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

impl AfPacket {
    /// Opens the backend on `config.interface`.
    ///
    /// # Errors
    ///
    /// [`Error::Permission`] without CAP_NET_RAW, [`Error::NoSuchInterface`],
    /// [`Error::InterfaceDown`], [`Error::RingSetup`] with the sizes tried, or
    /// [`Error::Io`].
    pub fn open(config: &AfPacketConfig) -> Result<Self, Error> {
        let name = config.interface.as_str();
        let ifindex = sys::if_index(name).map_err(|_| Error::NoSuchInterface(name.into()))?;
        let (up, _) = sys::if_up(name).map_err(|e| Error::io("reading the interface flags", e))?;
        if !up {
            return Err(Error::InterfaceDown(name.into()));
        }
        let mac =
            MacAddr(sys::if_mac(name).map_err(|e| Error::io("reading the interface MAC", e))?);
        let socket = Socket::open().map_err(|e| Error::io("opening an AF_PACKET socket", e))?;
        match config.ring {
            RxRing::Blocks { .. } => {
                socket
                    .set_version(sys::TPACKET_V3)
                    .map_err(|e| Error::io("selecting TPACKET_V3", e))?;
            }
            RxRing::Frames => {
                socket
                    .set_version(sys::TPACKET_V2)
                    .map_err(|e| Error::io("selecting TPACKET_V2", e))?;
                socket.set_copy_thresh().map_err(|e| Error::io("setting PACKET_COPY_THRESH", e))?;
                socket
                    .set_receive_buffer(LONG_FRAME_BUFFER)
                    .map_err(|e| Error::io("setting the receive buffer", e))?;
            }
        }
        socket.set_vnet_hdr().map_err(|e| Error::io("asking for virtio_net_hdr", e))?;
        socket.set_ignore_outgoing().map_err(|e| Error::io("setting PACKET_IGNORE_OUTGOING", e))?;
        socket.set_qdisc_bypass().map_err(|e| Error::io("setting PACKET_QDISC_BYPASS", e))?;
        if let Some(vips) = &config.vips {
            socket
                .attach_filter(&filter::program(vips))
                .map_err(|e| Error::io("attaching the BPF filter", e))?;
        }
        let (ring, layout) = Self::ring(&socket, config)?;
        socket.bind(ifindex).map_err(|e| Error::io("binding to the interface", e))?;
        if let Some(group) = config.fanout {
            socket
                .join_fanout(group, &filter::fanout_program())
                .map_err(|e| Error::io("joining the fanout group", e))?;
        }
        Ok(Self {
            socket,
            ring,
            layout,
            current: 0,
            tx: Tx { batch: TxBatch::new(64), unsent: 0, last_error: None },
            long: match layout {
                Layout::Frames { .. } => vec![0; LONG_FRAME],
                Layout::Blocks { .. } => Vec::new(),
            },
            busy_poll: std::time::Duration::from_micros(config.busy_poll_us.into()),
            poll_timeout_ms: config.poll_timeout_ms,
            mac,
            interface: name.to_owned(),
            ifindex,
            down: false,
            started: std::time::Instant::now(),
            truncated: 0,
            vlan_lost: 0,
            ring_stats: RingStats::default(),
        })
    }

    /// Sets up the ring, halving the block count while the kernel refuses.
    fn ring(socket: &Socket, config: &AfPacketConfig) -> Result<(sys::Ring, Layout), Error> {
        let mut tried = Vec::new();
        let mut blocks = config.blocks.max(1);
        let (frame_size, timeout) = match config.ring {
            RxRing::Blocks { timeout_ms } => (2048, timeout_ms),
            RxRing::Frames => (config.frame_size.max(1), 0),
        };
        loop {
            let request = RingRequest {
                block_size: config.block_size,
                block_nr: blocks,
                frame_size,
                frame_nr: config.block_size / frame_size * blocks,
                retire_blk_tov: timeout,
                ..RingRequest::default()
            };
            tried.push((config.block_size, blocks));
            match socket.set_rx_ring(&request) {
                Ok(()) => {
                    let len = config.block_size as usize * blocks as usize;
                    let ring =
                        socket.map_ring(len).map_err(|e| Error::io("mapping the ring", e))?;
                    let (block_size, blocks) = (config.block_size as usize, blocks as usize);
                    let layout = match config.ring {
                        RxRing::Blocks { .. } => Layout::Blocks { block_size, blocks },
                        RxRing::Frames => {
                            let frame_size = frame_size as usize;
                            // At least one: the kernel refuses a ring with none.
                            let per_block = (block_size / frame_size).max(1);
                            Layout::Frames {
                                frame_size,
                                per_block,
                                block_size,
                                slots: per_block * blocks.max(1),
                            }
                        }
                    };
                    return Ok((ring, layout));
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    return Err(Error::Permission { operation: "setting up the receive ring" });
                }
                Err(source) if blocks <= 1 => return Err(Error::RingSetup { tried, source }),
                Err(_) => blocks /= 2,
            }
        }
    }

    /// Replaces the BPF filter with one for these VIPs (after services were added or
    /// removed).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel refuses the program.
    pub fn set_vips(&mut self, vips: &[IpAddr]) -> Result<(), Error> {
        self.socket
            .attach_filter(&filter::program(vips))
            .map_err(|e| Error::io("attaching the BPF filter", e))
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Frames the ring truncated and the backend therefore did not process.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Frames to transmit that the kernel refused (`sendmmsg` errors such as `ENOBUFS` when
    /// the device queue is full, or `EMSGSIZE`); they are dropped, as a router drops what
    /// it cannot send, and never counted as transmitted.
    pub fn unsent(&self) -> u64 {
        self.tx.unsent
    }

    /// The error of the latest refused transmission, taken (so it is reported once).
    pub fn take_send_error(&mut self) -> Option<std::io::Error> {
        self.tx.last_error.take()
    }

    /// Frames whose VLAN tag the kernel had taken out and the backend could not put back
    /// (no room before the frame in the ring: never seen with the kernel's layout), and
    /// therefore did not process.
    pub fn vlan_lost(&self) -> u64 {
        self.vlan_lost
    }

    /// The kernel's counts for this socket since it was opened: frames it put in the ring,
    /// frames it dropped because the ring was full, and how often the ring froze for want
    /// of a free block.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel refuses `PACKET_STATISTICS`.
    pub fn ring_stats(&mut self) -> Result<RingStats, Error> {
        let delta =
            self.socket.statistics().map_err(|e| Error::io("reading PACKET_STATISTICS", e))?;
        // The kernel's counters reset on each read; ours add up.
        self.ring_stats.received += u64::from(delta.tp_packets);
        self.ring_stats.dropped += u64::from(delta.tp_drops);
        self.ring_stats.freezes += u64::from(delta.tp_freeze_q_cnt);
        Ok(self.ring_stats)
    }

    /// Whether the current block or slot is the user's.
    fn ready(&self) -> bool {
        let at = self.layout.offset(self.current);
        match self.layout {
            Layout::Blocks { .. } => self.ring.block(at).is_some(),
            Layout::Frames { .. } => self.ring.slot_ready(at),
        }
    }

    /// Checks the ring for up to the busy-poll time; whether a block or slot came.
    fn spin(&self) -> bool {
        if self.busy_poll.is_zero() {
            return false;
        }
        let until = std::time::Instant::now() + self.busy_poll;
        loop {
            if self.ready() {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Waits up to the poll timeout for the current block or slot, unless it is already the
    /// user's. False when the interface is down for now (the wait is then a sleep).
    fn wait_for_block(&mut self) -> Result<bool, Error> {
        if self.ready() || self.spin() {
            self.down = false;
            return Ok(true);
        }
        match self.socket.wait_readable(self.poll_timeout_ms) {
            Ok(_) if self.down => {
                self.still_there()?;
                Ok(true)
            }
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                self.down = true;
                self.still_there()?;
                // Down for now: the socket stays bound and frames resume when it is up.
                std::thread::sleep(std::time::Duration::from_millis(
                    self.poll_timeout_ms.max(1).unsigned_abs().into(),
                ));
                Ok(false)
            }
            Err(e) => Err(Error::io("waiting for frames", e)),
        }
    }

    /// [`Error::InterfaceGone`] unless the interface's name still has the index bound to.
    fn still_there(&self) -> Result<(), Error> {
        if sys::if_index(&self.interface).ok() == Some(self.ifindex) {
            Ok(())
        } else {
            Err(Error::InterfaceGone(self.interface.clone()))
        }
    }

    /// The places of the next frames of a block, at most [`BURST`], with their offload
    /// headers; truncated frames are counted and skipped. `at` and `left` walk the block.
    fn next_frames(
        &mut self,
        at: &mut usize,
        left: &mut u32,
    ) -> heapless::Vec<(RxFrame, [u8; VNET_HDR_LEN]), BURST> {
        let mut places = heapless::Vec::new();
        while *left > 0 && !places.is_full() {
            let Some((frame, next)) = self.ring.frame(*at) else {
                *left = 0;
                break;
            };
            (*at, *left) = (next, *left - 1);
            if frame.snaplen < frame.len || frame.status & TP_STATUS_COPY != 0 {
                self.truncated += 1;
                continue;
            }
            let Some((frame, vnet)) = self.prepare(frame) else { continue };
            let _ = places.push((frame, vnet));
        }
        places
    }

    /// A whole frame's offload header, with its VLAN tag put back in place; `None` (counted)
    /// if the tag could not be.
    fn prepare(&mut self, frame: RxFrame) -> Option<(RxFrame, [u8; VNET_HDR_LEN])> {
        let mut vnet = self.ring.vnet_header(frame.offset);
        let frame = match frame.vlan {
            None => frame,
            Some(_) => match self.ring.restore_vlan_tag(frame) {
                Some(restored) => {
                    shift_vnet_offsets(&mut vnet, 4);
                    restored
                }
                None => {
                    // Without its tag it would leave on the wrong LAN.
                    self.vlan_lost += 1;
                    return None;
                }
            },
        };
        Some((frame, vnet))
    }

    /// The next ready slots of a [`RxRing::Frames`] ring, at most [`BURST`], up to the
    /// ring's end (so that they lie in increasing order) and up to `budget`: the whole
    /// frames to decide together, and every slot taken, to give back once they are sent.
    /// Stops after a slot whose frame was queued whole on the socket, and returns it apart.
    fn next_slots(&mut self, budget: &mut usize) -> Slots {
        let mut slots = Slots::default();
        let Layout::Frames { frame_size, slots: count, .. } = self.layout else { return slots };
        while *budget > 0 && !slots.taken.is_full() {
            let at = self.layout.offset(self.current);
            let Some(slot) = self.ring.slot(at, frame_size) else { break };
            *budget -= 1;
            self.current = (self.current + 1) % count;
            match slot {
                Some(frame) if frame.status & TP_STATUS_COPY != 0 => {
                    slots.long = Some((at, frame));
                    break;
                }
                Some(frame) if frame.snaplen >= frame.len => {
                    if let Some(prepared) = self.prepare(frame) {
                        let _ = slots.places.push(prepared);
                    }
                    let _ = slots.taken.push(at);
                }
                // Cut short and not queued whole (the receive buffer was full), or not a
                // frame at all: not forwarded.
                Some(_) | None => {
                    self.truncated += 1;
                    let _ = slots.taken.push(at);
                }
            }
            if self.current == 0 {
                break;
            }
        }
        slots
    }

    /// Every block the kernel has handed over, in ring order, in bursts of frames.
    fn block_bursts<F>(&mut self, handler: &mut F) -> (usize, usize)
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        let Layout::Blocks { block_size, blocks } = self.layout else { return (0, 0) };
        let (mut frames, mut transmitted) = (0, 0);
        let mut verdicts = [Verdict::Drop(DropReason::MalformedEthernet); BURST];
        for _ in 0..blocks {
            let base = self.current * block_size;
            let Some((count, first)) = self.ring.block(base) else { break };
            let now = self.now();
            let (mut at, mut left) = (first, count);
            while left > 0 {
                let places = self.next_frames(&mut at, &mut left);
                let Some(block) = self.ring.block_mut(base, block_size) else { break };
                let mut burst = split_frames(block, base, &places);
                let n = burst.len();
                handler(now, &mut burst, &mut verdicts[..n]);
                frames += n;
                for ((bytes, verdict), (_, vnet)) in burst.iter().zip(&verdicts).zip(&places) {
                    let Some(header) = transmit_header(*verdict, *vnet) else { continue };
                    if self.tx.batch.is_full() {
                        transmitted += self.tx.send(&self.socket);
                    }
                    self.tx.batch.push(header, bytes);
                }
            }
            // The batch points into this block: send before handing it back. Whatever the
            // kernel made of the sends, the block goes back once and its frames are done.
            transmitted += self.tx.send(&self.socket);
            self.ring.release_block(base);
            self.current = (self.current + 1) % blocks;
        }
        (frames, transmitted)
    }

    /// Every slot the kernel has handed over (a ring's worth at most), in ring order, in
    /// bursts of frames.
    fn slot_bursts<F>(&mut self, handler: &mut F) -> Result<(usize, usize), Error>
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        let (mut frames, mut transmitted) = (0, 0);
        let mut verdicts = [Verdict::Drop(DropReason::MalformedEthernet); BURST];
        let mut budget = self.layout.count();
        while budget > 0 {
            let slots = self.next_slots(&mut budget);
            if slots.taken.is_empty() && slots.long.is_none() {
                break;
            }
            let now = self.now();
            if !slots.places.is_empty() {
                let size = self.ring.size();
                if let Some(ring) = self.ring.block_mut(0, size) {
                    let mut burst = split_frames(ring, 0, &slots.places);
                    let n = burst.len();
                    handler(now, &mut burst, &mut verdicts[..n]);
                    frames += n;
                    for ((bytes, verdict), (_, vnet)) in
                        burst.iter().zip(&verdicts).zip(&slots.places)
                    {
                        if let Some(header) = transmit_header(*verdict, *vnet) {
                            // At most BURST frames: the batch has room for them all.
                            self.tx.batch.push(header, bytes);
                        }
                    }
                }
                // The batch points into these slots: send before handing them back.
                transmitted += self.tx.send(&self.socket);
            }
            for &at in &slots.taken {
                self.ring.release_slot(at);
            }
            if let Some((at, slot)) = slots.long {
                let done = self.long_frame(now, slot, handler, &mut verdicts[..1]);
                self.ring.release_slot(at);
                let (n, sent) = done?;
                frames += n;
                transmitted += sent;
            }
        }
        Ok((frames, transmitted))
    }

    /// The frame too long for `slot`, read whole from the socket, decided and sent: how
    /// many were decided and transmitted (none if it was not there, or longer still than
    /// [`LONG_FRAME`]: counted as truncated).
    fn long_frame<F>(
        &mut self,
        now: Instant,
        slot: RxFrame,
        handler: &mut F,
        verdict: &mut [Verdict],
    ) -> Result<(usize, usize), Error>
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        let buf = self.long.as_mut_slice();
        let room = buf.len().saturating_sub(4);
        let n = match self.socket.recv_frame(buf.get_mut(4..).unwrap_or_default()) {
            Ok(Some(n)) if n < room && n >= VNET_HDR_LEN + 14 => n,
            Ok(_) => {
                self.truncated += 1;
                return Ok((0, 0));
            }
            Err(e) => return Err(Error::io("reading a long frame", e)),
        };
        let mut vnet = [0; VNET_HDR_LEN];
        vnet.copy_from_slice(&buf[4..4 + VNET_HDR_LEN]);
        let (mut start, end) = (4 + VNET_HDR_LEN, 4 + n);
        if let Some((tpid, tci)) = slot.vlan {
            // Put the tag back as in the ring: the MAC addresses move four bytes forward.
            buf.copy_within(start..start + 12, start - 4);
            start -= 4;
            buf[start + 12..start + 14].copy_from_slice(&tpid.to_be_bytes());
            buf[start + 14..start + 16].copy_from_slice(&tci.to_be_bytes());
            shift_vnet_offsets(&mut vnet, 4);
        }
        let mut frame = [&mut buf[start..end]];
        handler(now, &mut frame, verdict);
        let [bytes] = frame;
        let sent = match verdict.first().and_then(|v| transmit_header(*v, vnet)) {
            Some(header) => {
                self.tx.batch.push(header, bytes);
                self.tx.send(&self.socket)
            }
            None => 0,
        };
        Ok((1, sent))
    }
}

/// What [`AfPacket::next_slots`] took from the ring.
#[derive(Default)]
struct Slots {
    /// The whole frames, with their offload headers.
    places: heapless::Vec<(RxFrame, [u8; VNET_HDR_LEN]), BURST>,
    /// Every slot taken but the long one.
    taken: heapless::Vec<usize, BURST>,
    /// A slot whose frame was too long for it, and was queued whole on the socket.
    long: Option<(usize, RxFrame)>,
}

impl FrameIo for AfPacket {
    type Error = Error;

    fn process_batch<F>(&mut self, handler: F) -> Result<Batch, Error>
    where
        F: FnMut(Instant, &mut [u8]) -> Verdict,
    {
        self.process_bursts(dr_core::each_frame(handler))
    }

    fn process_bursts<F>(&mut self, mut handler: F) -> Result<Batch, Error>
    where
        F: FnMut(Instant, &mut [&mut [u8]], &mut [Verdict]),
    {
        if !self.wait_for_block()? {
            return Ok(Batch::new(0, 0, false));
        }
        let (frames, transmitted) = match self.layout {
            Layout::Blocks { .. } => self.block_bursts(&mut handler),
            Layout::Frames { .. } => self.slot_bursts(&mut handler)?,
        };
        Ok(Batch::new(frames, transmitted, false))
    }

    fn send(&mut self, _now: Instant, frame: &[u8]) -> Result<(), Error> {
        self.tx.send(&self.socket);
        self.tx.batch.push([0; VNET_HDR_LEN], frame);
        if self.tx.send(&self.socket) == 1 {
            return Ok(());
        }
        let error = self.tx.last_error.take();
        Err(Error::io("sending a frame", error.unwrap_or_else(|| std::io::Error::other("refused"))))
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The transmit side: the batch of frames to send and what became of those refused.
#[derive(Debug)]
struct Tx {
    batch: TxBatch,
    /// Frames the verdict said to transmit that the kernel refused.
    unsent: u64,
    last_error: Option<std::io::Error>,
}

impl Tx {
    /// Sends the queued frames and counts those the kernel refused. Returns how many it
    /// took.
    fn send(&mut self, socket: &Socket) -> usize {
        let report = socket.send_batch(&mut self.batch);
        self.unsent += report.refused as u64;
        if let Some(error) = report.error {
            self.last_error = Some(error);
        }
        report.sent
    }
}

/// The offload header a frame leaves with, if its verdict sends it: a forwarded frame keeps
/// the one it came with (checksum to complete, segments to cut); an answer the director
/// wrote is complete as it is.
fn transmit_header(verdict: Verdict, vnet: [u8; VNET_HDR_LEN]) -> Option<[u8; VNET_HDR_LEN]> {
    match verdict {
        Verdict::Forward { .. } => {
            let mut header = vnet;
            header[0] &= VNET_NEEDS_CSUM;
            Some(header)
        }
        Verdict::Reply => Some([0; VNET_HDR_LEN]),
        Verdict::Pass(_) | Verdict::Drop(_) => None,
    }
}

/// Moves the offsets a `virtio_net_hdr` counts from the frame's start (`hdr_len` and
/// `csum_start`, native-endian as the packet socket writes them) by `by` bytes, after that
/// many bytes were put in front of the frame's network header.
fn shift_vnet_offsets(vnet: &mut [u8; VNET_HDR_LEN], by: u16) {
    let shift = |vnet: &mut [u8; VNET_HDR_LEN], at: usize| {
        let value = u16::from_ne_bytes([vnet[at], vnet[at + 1]]);
        vnet[at..at + 2].copy_from_slice(&value.saturating_add(by).to_ne_bytes());
    };
    // gso_type (byte 1) not NONE: hdr_len (bytes 2-3) is the headers' length.
    if vnet[1] != 0 {
        shift(vnet, 2);
    }
    // NEEDS_CSUM: csum_start (bytes 6-7) is where the checksum's coverage starts.
    if vnet[0] & VNET_NEEDS_CSUM != 0 {
        shift(vnet, 6);
    }
}

/// Splits a block (starting at ring offset `base`) into the frames at `places`, which the
/// kernel lays out in increasing order without overlap. Stops at a place that is not.
fn split_frames<'a>(
    block: &'a mut [u8],
    base: usize,
    places: &[(RxFrame, [u8; VNET_HDR_LEN])],
) -> heapless::Vec<&'a mut [u8], BURST> {
    let mut frames = heapless::Vec::new();
    let (mut rest, mut start) = (block, base);
    for (frame, _) in places {
        let Some(gap) = frame.offset.checked_sub(start) else { break };
        let Some((_, tail)) = rest.split_at_mut_checked(gap) else { break };
        let Some((bytes, tail)) = tail.split_at_mut_checked(frame.snaplen) else { break };
        if frames.push(bytes).is_err() {
            break;
        }
        (rest, start) = (tail, frame.offset + frame.snaplen);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::RealId;
    use std::process::Command;
    use std::time::{Duration, Instant as Clock};

    /// A UDP frame to `dst` whose last byte is `tag`.
    fn udp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], tag: u8) -> Vec<u8> {
        let mut f = [dst_mac, src_mac].concat();
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 29, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 7, 10, 0, 0, 100];
        let sum = !ip.chunks(2).fold(0u32, |a, w| {
            let s = a + u32::from(u16::from_be_bytes([w[0], w[1]]));
            (s & 0xffff) + (s >> 16)
        }) as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 9, 0, 0, tag]);
        f.resize(60, 0);
        f
    }

    /// Root is needed. A build that is not root's compiles the test ignored (see build.rs);
    /// run all the same (`--include-ignored`), it skips, saying so; under CI it fails.
    fn privileged() -> bool {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
        if !root {
            assert!(std::env::var_os("CI").is_none(), "CI must run the AF_PACKET tests as root");
            eprintln!("skipped: the AF_PACKET tests need root");
        }
        root
    }

    struct Veth(String);

    impl Drop for Veth {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }

    /// Runs batches until `count` frames were seen or two seconds pass; returns the last
    /// byte of each frame seen and how many were transmitted.
    fn pump(
        io: &mut AfPacket,
        count: usize,
        verdict: impl Fn(&mut [u8]) -> Verdict,
    ) -> (Vec<u8>, usize) {
        let (mut seen, mut transmitted) = (Vec::new(), 0);
        let deadline = Clock::now() + Duration::from_secs(2);
        while seen.len() < count && Clock::now() < deadline {
            let batch = io
                .process_batch(|_, frame| {
                    seen.push(frame[42]);
                    verdict(frame)
                })
                .unwrap();
            transmitted += batch.transmitted;
        }
        (seen, transmitted)
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")]
    fn refused_sends_are_counted_and_every_frame_is_decided_once() {
        if !privileged() {
            return;
        }
        let (a, b) = ("drtu1a".to_string(), "drtu1b".to_string());
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        assert!(ok(&["link", "add", &a, "type", "veth", "peer", "name", &b]));
        let _veth = Veth(a.clone());
        for end in [&a, &b] {
            let _ = ok(&["link", "set", end, "addrgenmode", "none"]);
            assert!(ok(&["link", "set", end, "up"]));
        }
        let config = AfPacketConfig::new(&a).with_vips(vec!["10.0.0.100".parse().unwrap()]);
        let mut director = AfPacket::open(&config).unwrap();
        let mut peer = AfPacket::open(&AfPacketConfig::new(&b)).unwrap();
        let (dmac, pmac) = (director.mac().0, peer.mac().0);
        for tag in 0..10 {
            peer.send(Instant::ZERO, &udp_frame(dmac, pmac, tag)).unwrap();
        }
        // The kernel refuses the 4th and the 8th frame the director sends: ENOBUFS, as a
        // full device queue does.
        sys::faults::refuse(&[(3, libc::ENOBUFS), (7, libc::ENOBUFS)]);
        let forward = |frame: &mut [u8]| {
            frame[0..6].copy_from_slice(&pmac);
            frame[6..12].copy_from_slice(&dmac);
            Verdict::Forward { real: RealId::from_index(0) }
        };
        let (seen, transmitted) = pump(&mut director, 10, forward);
        sys::faults::refuse(&[]);
        assert_eq!(seen, (0..10).collect::<Vec<u8>>(), "every frame decided once, in order");
        assert_eq!(transmitted, 8, "the refused ones are not counted as transmitted");
        assert_eq!(director.unsent(), 2);
        let error = director.take_send_error().unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ENOBUFS));
        assert!(director.take_send_error().is_none(), "reported once");

        // The others reached the peer, and the blocks went back: new frames are new.
        let (back, _) = pump(&mut peer, 8, |_| Verdict::Drop(DropReason::OtherHost));
        assert_eq!(back, [0, 1, 2, 4, 5, 6, 8, 9]);
        for tag in 10..15 {
            peer.send(Instant::ZERO, &udp_frame(dmac, pmac, tag)).unwrap();
        }
        let (seen, transmitted) = pump(&mut director, 5, forward);
        assert_eq!(seen, (10..15).collect::<Vec<u8>>(), "no frame decided twice");
        assert_eq!(transmitted, 5);
        assert_eq!(director.unsent(), 2);
    }

    #[test]
    fn by_default_each_frame_is_handed_over_as_it_arrives_and_nothing_spins() {
        let config = AfPacketConfig::new("eth0");
        assert_eq!(config.ring, RxRing::Frames);
        assert_eq!(config.busy_poll_us, 0);
        assert_eq!(config.block_size % config.frame_size, 0, "slots fill the blocks");
    }

    #[test]
    fn a_slot_never_spans_two_blocks() {
        let layout = Layout::Frames { frame_size: 3000, per_block: 2, block_size: 8192, slots: 6 };
        let offsets: Vec<usize> = (0..6).map(|i| layout.offset(i)).collect();
        assert_eq!(offsets, [0, 3000, 8192, 11192, 16384, 19384]);
        let blocks = Layout::Blocks { block_size: 8192, blocks: 3 };
        assert_eq!((blocks.count(), blocks.offset(2)), (3, 16384));
    }

    #[test]
    fn a_refusal_plan_stops_a_send_before_the_refused_message() {
        sys::faults::refuse(&[(2, libc::ENOBUFS)]);
        assert_eq!(sys::faults::take(5), Ok(2), "the two before it are sent");
        assert_eq!(sys::faults::take(3), Err(libc::ENOBUFS));
        assert_eq!(sys::faults::take(2), Ok(2));
        sys::faults::refuse(&[]);
    }
}
