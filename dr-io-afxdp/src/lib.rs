//! # dr-io-afxdp: a live director on a Linux interface, over AF_XDP
//!
//! A [`FrameIo`] over `AF_XDP` sockets on one interface, one per receive queue:
//!
//! - an XDP program, assembled by this crate and loaded with `bpf()` (no compiler, no C
//!   library), redirects to the sockets **only** the frames the director handles: IPv4 and
//!   IPv6 to the VIPs, ARP and Neighbor Discovery for them, and the answers to the
//!   director's own ARP requests and Neighbor Solicitations. Everything else goes on to the
//!   kernel (`XDP_PASS`), so the host keeps its own traffic. The rule is written out in the
//!   `program` module, and the VIPs live in BPF maps that [`AfXdp::set_vips`] updates;
//! - frames arrive in a UMEM shared with the kernel through the fill and receive rings;
//!   the director rewrites them **in place** and the same UMEM frame goes back out through
//!   the transmit ring: no copy and no allocation per frame. The completion ring returns
//!   transmitted frames to be filled again;
//! - the socket binds in zero-copy mode where the driver supports it and falls back to
//!   copy mode (veth, most virtual NICs); the program attaches in the driver (native XDP)
//!   where it can, else in the kernel's generic path ([`XdpMode`]);
//! - with several workers, each has the socket of one queue ([`AfXdp::open_queues`]); the
//!   NIC's receive-side scaling keeps a flow on one queue.
//!
//! **Offloads.** XDP sees frames as the wire has them, without the checksum and
//! segmentation offload metadata an `AF_PACKET` socket gets: on veth, a peer that leaves
//! TCP/UDP checksums to the hardware (`tx-checksumming on`, the default) sends frames whose
//! checksum is not filled in, and the director would forward them so. Hosts that send to
//! the VIPs over veth must turn transmit checksum offload off (`ethtool -K IF tx off`); on
//! a physical LAN the frames arrive complete.
//!
//! All `unsafe` code is in the private `sys` module, each block with its `// SAFETY:`
//! argument; the UMEM and the rings are owned by [`AfXdp`], and a frame is lent only as a
//! slice of its own bytes for the length of a borrow of it.

mod asm;
mod error;
mod program;
mod ring;
mod sys;

pub use error::Error;
pub use program::XdpMode;

use dr_core::{BURST, Batch, DropReason, FrameIo, Instant, MacAddr, Verdict};
use program::{Program, ProgramError};
use ring::{Consumer, Producer};
use std::net::IpAddr;
use std::sync::Arc;
use sys::{Desc, RingKind, RingMap, Umem, XskSocket};

/// How to open the backend.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AfXdpConfig {
    /// The interface.
    pub interface: String,
    /// The VIPs whose traffic the XDP program redirects to the director.
    pub vips: Vec<IpAddr>,
    /// Frames in each socket's UMEM (default 12288: the rings' 8192 and room for those in
    /// flight, 48 MiB at 4096 bytes a frame).
    pub frames: u32,
    /// Bytes per UMEM frame: 2048 or 4096 (default 4096; the page size is the largest the
    /// kernel takes, so frames longer than about 3.8 KiB are dropped by the kernel).
    pub frame_size: u32,
    /// Entries in each of the four rings, a power of two (default 8192). The fill and
    /// receive rings hold what arrives while the director is not running: 8192 frames ride
    /// out 80 ms at 100 000 frames/s, as `AF_PACKET`'s default ring does.
    pub ring_size: u32,
    /// Where to attach the program (default [`XdpMode::Auto`]).
    pub mode: XdpMode,
    /// `Some(true)`: zero-copy or fail; `Some(false)`: copy mode; `None` (the default):
    /// zero-copy where the driver supports it.
    pub zero_copy: Option<bool>,
    /// How long [`FrameIo::process_batch`] waits for frames, in milliseconds (default 10).
    pub poll_timeout_ms: i32,
    /// Microseconds to check the receive ring for frames before sleeping in `poll` (default
    /// 0: sleep at once). For a director with a CPU of its own: a frame that comes while it
    /// spins is taken without a wakeup.
    pub busy_poll_us: u32,
}

impl AfXdpConfig {
    /// The defaults, on `interface`, with these VIPs.
    pub fn new(interface: impl Into<String>, vips: Vec<IpAddr>) -> Self {
        Self {
            interface: interface.into(),
            vips,
            frames: 12288,
            frame_size: 4096,
            ring_size: 8192,
            mode: XdpMode::Auto,
            zero_copy: None,
            poll_timeout_ms: 10,
            busy_poll_us: 0,
        }
    }
}

/// Counts of an [`AfXdp`] socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct XdpStats {
    /// Frames the socket received.
    pub received: u64,
    /// Frames the kernel dropped, all reasons together (`rx_dropped` + `rx_ring_full` of
    /// `XDP_STATISTICS`; `rx_dropped` already counts the frames that found the fill ring
    /// empty, and those longer than a UMEM frame): the director fell behind.
    pub dropped: u64,
    /// Of those, frames dropped because the receive ring was full (`rx_ring_full`).
    pub ring_full: u64,
    /// Times the kernel found the fill ring without a free UMEM frame
    /// (`rx_fill_ring_empty_descs`). In copy mode each is one of the dropped frames; with
    /// zero-copy the driver counts its attempts to refill, which need not lose a frame, so
    /// this may then exceed `dropped`.
    pub fill_empty: u64,
    /// Receive descriptors found invalid: by the kernel (`rx_invalid_descs`), or by this
    /// socket (pointing outside the UMEM). Never expected.
    pub invalid_rx: u64,
    /// Transmit descriptors the kernel found invalid (`tx_invalid_descs`). Never expected.
    pub invalid_tx: u64,
}

/// The `AF_XDP` backend: one socket, on one queue of the interface.
#[derive(Debug)]
pub struct AfXdp {
    // Dropped in this order: the socket (unbinding it from the queue and the UMEM), the
    // rings, the UMEM, and last the program (detached with its last socket).
    socket: XskSocket,
    fill: Producer<RingMap<u64>>,
    completion: Consumer<RingMap<u64>>,
    rx: Consumer<RingMap<Desc>>,
    tx: Producer<RingMap<Desc>>,
    umem: Umem,
    /// UMEM frames (their chunk addresses) that are ours and idle. Its capacity is every
    /// frame, reserved at open: pushing never allocates.
    free: Vec<u64>,
    /// Frames kept back from the fill ring for the director's own transmissions.
    reserve: usize,
    chunk: u64,
    program: Arc<Program>,
    zero_copy: bool,
    mode: XdpMode,
    queue: u32,
    mac: MacAddr,
    interface: String,
    ifindex: u32,
    poll_timeout_ms: i32,
    busy_poll: std::time::Duration,
    started: std::time::Instant,
    /// Transmit descriptors published that a kick has not yet been accepted for.
    kick_pending: bool,
    received: u64,
    unsent: u64,
    invalid_rx: u64,
    last_error: Option<std::io::Error>,
}

/// The interface's receive queues, from sysfs (1 if it cannot be read).
fn rx_queues(interface: &str) -> u32 {
    let dir = format!("/sys/class/net/{interface}/queues");
    let count = std::fs::read_dir(dir).map(|entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
            .count()
    });
    count.ok().and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0).unwrap_or(1)
}

impl AfXdp {
    /// Opens the backend on an interface with a single receive queue.
    ///
    /// # Errors
    ///
    /// As [`open_queues`](Self::open_queues).
    pub fn open(config: &AfXdpConfig) -> Result<Self, Error> {
        let mut sockets = Self::open_queues(config, 1)?;
        sockets.pop().ok_or(Error::Queues {
            interface: config.interface.clone(),
            queues: rx_queues(&config.interface),
            workers: 1,
        })
    }

    /// Loads and attaches the XDP program on `config.interface` and opens one socket on
    /// each of its `workers` receive queues, which must be all of them.
    ///
    /// # Errors
    ///
    /// [`Error::Permission`] without CAP_NET_ADMIN / CAP_BPF, [`Error::NoSuchInterface`],
    /// [`Error::InterfaceDown`], [`Error::Queues`] when the interface has another number
    /// of queues, [`Error::XdpUnsupported`] when neither the program nor the socket can be
    /// set up on it, [`Error::Verifier`] or [`Error::Io`].
    pub fn open_queues(config: &AfXdpConfig, workers: u32) -> Result<Vec<Self>, Error> {
        let name = config.interface.as_str();
        let ifindex = sys::if_index(name).map_err(|_| Error::NoSuchInterface(name.into()))?;
        let (up, _) = sys::if_up(name).map_err(|e| Error::io("reading the interface flags", e))?;
        if !up {
            return Err(Error::InterfaceDown(name.into()));
        }
        let queues = rx_queues(name);
        if queues != workers {
            return Err(Error::Queues { interface: name.into(), queues, workers });
        }
        let mac =
            MacAddr(sys::if_mac(name).map_err(|e| Error::io("reading the interface MAC", e))?);
        let mut program = Program::load(queues).map_err(|e| program_error(name, e))?;
        program.set_vips(&config.vips, mac).map_err(|e| Error::io("filling the VIP maps", e))?;
        let mode = program.attach(ifindex, config.mode).map_err(|e| program_error(name, e))?;
        let program = Arc::new(program);
        (0..workers)
            .map(|queue| Self::socket(config, &program, mode, queue, ifindex, mac))
            .collect()
    }

    fn socket(
        config: &AfXdpConfig,
        program: &Arc<Program>,
        mode: XdpMode,
        queue: u32,
        ifindex: u32,
        mac: MacAddr,
    ) -> Result<Self, Error> {
        let name = config.interface.as_str();
        let frames = config.frames.max(64);
        let chunk = config.frame_size;
        let entries = config.ring_size;
        let socket =
            XskSocket::open().map_err(|e| Error::xdp(name, "opening an AF_XDP socket", e))?;
        let len = frames as usize * chunk as usize;
        let umem = Umem::new(len).map_err(|e| Error::io("allocating the UMEM", e))?;
        socket.register_umem(&umem, chunk).map_err(|e| Error::io("registering the UMEM", e))?;
        for kind in [RingKind::Fill, RingKind::Completion, RingKind::Rx, RingKind::Tx] {
            socket
                .set_ring_size(kind, entries)
                .map_err(|e| Error::io("sizing the rings (ring_size: a power of two)", e))?;
        }
        let map = |kind| socket.map_ring(kind, entries).map_err(|e| Error::io("mapping a ring", e));
        let fill = Producer::new(map(RingKind::Fill)?);
        let completion = Consumer::new(map(RingKind::Completion)?);
        let rx = Consumer::new(
            socket.map_ring(RingKind::Rx, entries).map_err(|e| Error::io("mapping a ring", e))?,
        );
        let tx = Producer::new(
            socket.map_ring(RingKind::Tx, entries).map_err(|e| Error::io("mapping a ring", e))?,
        );
        let wakeup = libc::XDP_USE_NEED_WAKEUP;
        let bound = match config.zero_copy {
            Some(true) => socket.bind(ifindex, queue, libc::XDP_ZEROCOPY | wakeup),
            Some(false) => socket.bind(ifindex, queue, libc::XDP_COPY | wakeup),
            None => socket
                .bind(ifindex, queue, libc::XDP_ZEROCOPY | wakeup)
                .or_else(|_| socket.bind(ifindex, queue, libc::XDP_COPY | wakeup)),
        };
        bound.map_err(|e| Error::xdp(name, "binding an AF_XDP socket to the queue", e))?;
        let zero_copy = socket.zero_copy().map_err(|e| Error::io("reading XDP_OPTIONS", e))?;
        program
            .register(queue, socket.raw())
            .map_err(|e| Error::io("putting the socket in the XSKMAP", e))?;
        let mut free = Vec::with_capacity(frames as usize);
        free.extend((0..u64::from(frames)).rev().map(|i| i * u64::from(chunk)));
        let mut xdp = Self {
            socket,
            fill,
            completion,
            rx,
            tx,
            umem,
            free,
            reserve: (frames as usize / 8).min(256),
            chunk: u64::from(chunk),
            program: Arc::clone(program),
            zero_copy,
            mode,
            queue,
            mac,
            interface: name.to_owned(),
            ifindex,
            poll_timeout_ms: config.poll_timeout_ms,
            busy_poll: std::time::Duration::from_micros(config.busy_poll_us.into()),
            started: std::time::Instant::now(),
            kick_pending: false,
            received: 0,
            unsent: 0,
            invalid_rx: 0,
            last_error: None,
        };
        xdp.refill();
        Ok(xdp)
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the socket runs in zero-copy mode (else the kernel copies each frame
    /// between the driver's buffers and the UMEM).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Where the XDP program runs.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Makes the XDP program redirect exactly these VIPs' traffic (after services were
    /// added or removed). The program and its maps are shared by all the sockets of the
    /// interface: calling it on one is enough, on all is harmless.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel refuses a map update (more than 4095 VIPs).
    pub fn set_vips(&mut self, vips: &[IpAddr]) -> Result<(), Error> {
        self.program.set_vips(vips, self.mac).map_err(|e| Error::io("updating the VIP maps", e))
    }

    /// Frames to transmit that found no room in the transmit ring, or (for the
    /// director's own frames) no free UMEM frame; they are dropped, never counted as
    /// transmitted.
    pub fn unsent(&self) -> u64 {
        self.unsent
    }

    /// The error of the latest refused transmission, taken (so it is reported once).
    pub fn take_send_error(&mut self) -> Option<std::io::Error> {
        self.last_error.take()
    }

    /// The socket's counts since it was opened.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the kernel refuses `XDP_STATISTICS`.
    pub fn stats(&self) -> Result<XdpStats, Error> {
        let s = self.socket.statistics().map_err(|e| Error::io("reading XDP_STATISTICS", e))?;
        Ok(XdpStats {
            received: self.received,
            dropped: s.rx_dropped + s.rx_ring_full,
            ring_full: s.rx_ring_full,
            fill_empty: s.rx_fill_ring_empty_descs,
            invalid_rx: s.rx_invalid_descs + self.invalid_rx,
            invalid_tx: s.tx_invalid_descs,
        })
    }

    /// Frames completed by the kernel's transmission go back to the free list.
    fn reap(&mut self) {
        let ready = self.completion.ready();
        for i in 0..ready {
            let addr = self.completion.peek(i);
            self.recycle(addr);
        }
        self.completion.release(ready);
    }

    /// Gives a frame back to the free list, by its chunk. An address outside the UMEM
    /// (never written by the kernel) is not taken.
    fn recycle(&mut self, addr: u64) {
        let base = addr - addr % self.chunk;
        if base < self.umem.len() as u64 && self.free.len() < self.free.capacity() {
            self.free.push(base);
        }
    }

    /// Tops the fill ring up from the free list, keeping the reserve back.
    fn refill(&mut self) {
        let spare = self.free.len().saturating_sub(self.reserve);
        let room = self.fill.free(u32::try_from(spare).unwrap_or(u32::MAX)) as usize;
        for _ in 0..spare.min(room) {
            let Some(addr) = self.free.pop() else { break };
            if !self.fill.push(addr) {
                self.free.push(addr);
                break;
            }
        }
        self.fill.publish();
    }

    /// Has the kernel send what the transmit ring holds (in copy mode it sends only from
    /// this call, at most a kernel batch at a time).
    fn kick(&mut self) {
        let wanted = !self.zero_copy || self.tx.slots().flags() & libc::XDP_RING_NEED_WAKEUP != 0;
        if !wanted {
            self.kick_pending = false;
            return;
        }
        let rounds = self.tx.outstanding() / 16 + 2;
        for _ in 0..rounds {
            match self.socket.kick_tx() {
                Ok(()) => {
                    self.kick_pending = false;
                    if self.tx.outstanding() == 0 {
                        return;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOBUFS)) => {
                    // The device is busy: again on the next batch.
                    self.kick_pending = true;
                    return;
                }
                Err(e) => {
                    self.last_error = Some(e);
                    self.kick_pending = true;
                    return;
                }
            }
        }
        self.kick_pending = self.tx.outstanding() > 0;
    }

    /// Checks the receive ring for up to the busy-poll time; whether frames came.
    fn spin(&mut self) -> bool {
        if self.busy_poll.is_zero() {
            return false;
        }
        let until = std::time::Instant::now() + self.busy_poll;
        loop {
            if self.rx.ready() > 0 {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Waits up to the poll timeout for frames; on a wait that ends with none, checks the
    /// interface is still there.
    fn wait(&mut self) -> Result<bool, Error> {
        if self.rx.ready() > 0 || self.spin() {
            return Ok(true);
        }
        let readable = self
            .socket
            .wait_readable(self.poll_timeout_ms)
            .map_err(|e| Error::io("waiting for frames", e))?;
        if !readable && sys::if_index(&self.interface).ok() != Some(self.ifindex) {
            return Err(Error::InterfaceGone(self.interface.clone()));
        }
        Ok(readable)
    }
}

fn program_error(interface: &str, e: ProgramError) -> Error {
    match e {
        ProgramError::Map(e) => Error::xdp(interface, "creating the BPF maps", e),
        ProgramError::Load(source, log) if log.is_empty() => {
            Error::xdp(interface, "loading the XDP program", source)
        }
        ProgramError::Load(source, log) => Error::Verifier { source, log },
        ProgramError::Attach(e) => Error::xdp(interface, "attaching the XDP program", e),
    }
}

impl FrameIo for AfXdp {
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
        self.reap();
        self.refill();
        if self.kick_pending || self.tx.outstanding() > 0 {
            self.kick();
        }
        if !self.wait()? {
            return Ok(Batch::new(0, 0, false));
        }
        let (mut frames, mut transmitted) = (0, 0);
        let mut verdicts = [Verdict::Drop(DropReason::MalformedEthernet); BURST];
        // At most a ring's worth per call, so housekeeping is never starved.
        let mut budget = self.rx.size();
        let now = self.now();
        while budget > 0 {
            let ready = self.rx.ready().min(BURST as u32).min(budget);
            if ready == 0 {
                break;
            }
            budget -= ready;
            let mut descs = [Desc::default(); BURST];
            for (i, desc) in descs.iter_mut().enumerate().take(ready as usize) {
                *desc = self.rx.peek(i as u32);
            }
            let descs = &descs[..ready as usize];
            let chunk = self.chunk as usize;
            let places = ring::frames(self.umem.len(), descs, chunk);
            let mut ranges: heapless::Vec<std::ops::Range<usize>, BURST> = heapless::Vec::new();
            for (_, range) in &places {
                let _ = ranges.push(range.clone());
            }
            let mut index: heapless::Vec<usize, BURST> = heapless::Vec::new();
            let mut burst: heapless::Vec<&mut [u8], BURST> = heapless::Vec::new();
            let lent: heapless::Vec<Option<&mut [u8]>, BURST> = self.umem.slices(&ranges);
            for ((i, _), bytes) in places.iter().zip(lent) {
                if let Some(bytes) = bytes {
                    let _ = index.push(*i);
                    let _ = burst.push(bytes);
                }
            }
            let n = burst.len();
            handler(now, &mut burst, &mut verdicts[..n]);
            drop(burst);
            self.received += u64::from(ready);
            self.invalid_rx += (ready as usize - n) as u64;
            frames += n;
            for (&i, verdict) in index.iter().zip(&verdicts[..n]) {
                let desc = descs[i];
                if verdict.is_transmit() {
                    if self.tx.push(Desc { options: 0, ..desc }) {
                        transmitted += 1;
                        continue;
                    }
                    self.unsent += 1;
                }
                self.recycle(desc.addr);
            }
            self.rx.release(ready);
        }
        if self.tx.publish() > 0 {
            self.kick();
        }
        self.refill();
        Ok(Batch::new(frames, transmitted, false))
    }

    fn send(&mut self, _now: Instant, frame: &[u8]) -> Result<(), Error> {
        self.reap();
        let too_long = frame.len() as u64 > self.chunk;
        let Some(addr) = (if too_long { None } else { self.free.pop() }) else {
            self.unsent += 1;
            let why = if too_long { "longer than a UMEM frame" } else { "no free UMEM frame" };
            return Err(Error::io("sending a frame", std::io::Error::other(why)));
        };
        let start = addr as usize;
        let range = start..start + frame.len();
        let mut lent: heapless::Vec<Option<&mut [u8]>, 1> =
            self.umem.slices(std::slice::from_ref(&range));
        if let Some(Some(dst)) = lent.first_mut() {
            dst.copy_from_slice(frame);
        }
        drop(lent);
        let desc = Desc { addr, len: frame.len() as u32, options: 0 };
        if !self.tx.push(desc) {
            self.free.push(addr);
            self.unsent += 1;
            return Err(Error::io("sending a frame", std::io::Error::other("transmit ring full")));
        }
        self.tx.publish();
        self.kick();
        match self.last_error.take() {
            Some(e) => Err(Error::io("sending a frame", e)),
            None => Ok(()),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::RealId;
    use dr_fixtures::frames as f;
    use std::process::Command;
    use std::time::{Duration, Instant as Clock};

    /// Root is needed. A build that is not root's compiles these tests ignored (see
    /// build.rs); run all the same (`--include-ignored`), they skip, saying so; under CI
    /// they fail.
    pub(crate) fn privileged() -> bool {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
        if !root {
            assert!(std::env::var_os("CI").is_none(), "CI must run the AF_XDP tests as root");
            eprintln!("skipped: the AF_XDP tests need root");
        }
        root
    }

    fn run(args: &[&str]) {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Two namespaces joined by a veth pair: `d` (the director's, `eth0` at 10.98.0.2)
    /// and `p` (its peer's, `eth0` at 10.98.0.1). Removed on drop.
    struct Pair {
        d: String,
        p: String,
    }

    impl Pair {
        fn new(tag: &str) -> Self {
            let id = std::process::id() % 100_000;
            let pair = Self { d: format!("drx{tag}{id}d"), p: format!("drx{tag}{id}p") };
            for ns in [&pair.d, &pair.p] {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
                run(&["ip", "netns", "add", ns]);
            }
            run(&[
                "ip", "-n", &pair.d, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", &pair.p,
            ]);
            for (ns, addr) in [(&pair.d, "10.98.0.2/24"), (&pair.p, "10.98.0.1/24")] {
                run(&["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"]);
                run(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
                run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
                // The peer's TCP and UDP checksums complete, as a physical LAN has them.
                run(&["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"]);
            }
            pair
        }

        fn mac(&self, ns: &str) -> [u8; 6] {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "cat", "/sys/class/net/eth0/address"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let bytes: Vec<u8> =
                text.trim().split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
            bytes.try_into().unwrap()
        }

        fn xdp_attached(&self) -> bool {
            let out = Command::new("ip").args(["-n", &self.d, "link", "show", "eth0"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("prog/xdp"))
        }
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            for ns in [&self.d, &self.p] {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }

    /// The peer: an AF_PACKET socket that sends and sees every frame.
    fn peer(pair: &Pair) -> dr_io_afpacket::AfPacket {
        sys::enter_netns(&pair.p).unwrap();
        dr_io_afpacket::AfPacket::open(&dr_io_afpacket::AfPacketConfig::new("eth0")).unwrap()
    }

    /// Runs batches on `io` until `count` frames were seen or two seconds pass; the last
    /// byte of each frame seen, and how many were transmitted.
    fn pump<Io: FrameIo>(
        io: &mut Io,
        count: usize,
        mut verdict: impl FnMut(&mut [u8]) -> Verdict,
    ) -> (Vec<u8>, usize)
    where
        Io::Error: std::fmt::Debug,
    {
        let (mut seen, mut transmitted) = (Vec::new(), 0);
        let deadline = Clock::now() + Duration::from_secs(2);
        while seen.len() < count && Clock::now() < deadline {
            let batch = io
                .process_batch(|_, frame| {
                    seen.push(frame[frame.len() - 1]);
                    verdict(frame)
                })
                .unwrap();
            transmitted += batch.transmitted;
        }
        (seen, transmitted)
    }

    /// A UDP datagram to `dst` whose last byte is `tag`, between the two MACs.
    fn udp(dst_mac: [u8; 6], src_mac: [u8; 6], dst: &str, tag: u8) -> Vec<u8> {
        let mut frame = f::udp4("10.98.0.1", 5000, dst, 53, &[tag]);
        frame[0..6].copy_from_slice(&dst_mac);
        frame[6..12].copy_from_slice(&src_mac);
        frame
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_BPF)")]
    fn vip_frames_reach_the_socket_and_leave_rewritten_while_the_host_keeps_its_traffic() {
        if !privileged() {
            return;
        }
        let pair = Pair::new("a");
        let (dmac, pmac) = (pair.mac(&pair.d), pair.mac(&pair.p));
        let mut peer = peer(&pair);
        sys::enter_netns(&pair.d).unwrap();
        let vip = "10.98.0.100";
        let config = AfXdpConfig::new("eth0", vec![f::ip(vip)]);
        let mut xdp = AfXdp::open(&config).unwrap();
        assert!(pair.xdp_attached());
        assert_eq!(xdp.mac().0, dmac);

        // Frames to the VIP (and one to the host between them) from the peer.
        for tag in 0..8 {
            peer.send(Instant::ZERO, &udp(dmac, pmac, vip, tag)).unwrap();
        }
        peer.send(Instant::ZERO, &udp(dmac, pmac, "10.98.0.2", 99)).unwrap();
        // The director forwards each back to the peer's MAC, from the same UMEM frame.
        let forward = |frame: &mut [u8]| {
            frame[0..6].copy_from_slice(&pmac);
            frame[6..12].copy_from_slice(&dmac);
            Verdict::Forward { real: RealId::from_index(0) }
        };
        let (seen, transmitted) = pump(&mut xdp, 8, forward);
        assert_eq!(seen, (0..8).collect::<Vec<u8>>(), "only the VIP's, in order");
        assert_eq!(transmitted, 8);
        let mut back = Vec::new();
        let deadline = Clock::now() + Duration::from_secs(2);
        while back.len() < 8 && Clock::now() < deadline {
            peer.process_batch(|_, frame| {
                // The VIP's datagrams (the host answers the one to itself, with an ICMP error).
                if frame[0..6] == pmac && frame.len() > 42 && frame[30..34] == [10, 98, 0, 100] {
                    back.push(frame[42]);
                }
                Verdict::Drop(DropReason::OtherHost)
            })
            .unwrap();
        }
        assert_eq!(back, (0..8).collect::<Vec<u8>>(), "forwarded as rewritten");

        // ARP for the VIP is the director's; the host still answers ARP, ping and TCP for
        // its own address.
        peer.send(
            Instant::ZERO,
            &f::arp(f::ArpOperation::Request, [0xff; 6], pmac, "10.98.0.1", [0; 6], vip),
        )
        .unwrap();
        let (arp, _) = pump(&mut xdp, 1, |_| Verdict::Drop(DropReason::OtherHost));
        assert_eq!(arp.len(), 1, "the ARP request for the VIP");
        let listener = std::net::TcpListener::bind("10.98.0.2:2222").unwrap();
        run(&["ip", "netns", "exec", &pair.p, "ping", "-c", "2", "-W", "1", "10.98.0.2"]);
        run(&[
            "ip",
            "netns",
            "exec",
            &pair.p,
            "timeout",
            "5",
            "bash",
            "-c",
            "exec 3<>/dev/tcp/10.98.0.2/2222 && echo hello >&3",
        ]);
        listener.set_nonblocking(false).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let mut text = String::new();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        std::io::Read::read_to_string(&mut conn, &mut text).unwrap();
        assert_eq!(text, "hello\n", "TCP to the host reaches its kernel");
        let (seen, _) = pump(&mut xdp, 1, |_| Verdict::Drop(DropReason::OtherHost));
        assert!(seen.is_empty(), "none of the host's traffic reached the director: {seen:?}");

        // The director's own frames leave from the UMEM too.
        xdp.send(Instant::ZERO, &udp(pmac, dmac, "10.98.0.1", 42)).unwrap();
        let mut got = Vec::new();
        let deadline = Clock::now() + Duration::from_secs(2);
        while !got.contains(&42) && Clock::now() < deadline {
            got.extend(pump(&mut peer, 1, |_| Verdict::Drop(DropReason::OtherHost)).0);
        }
        assert!(got.contains(&42), "{got:?}");
        assert_eq!(xdp.unsent(), 0);
        assert_eq!(xdp.stats().unwrap().received, 9);

        // Closing the socket detaches the program.
        drop(xdp);
        assert!(!pair.xdp_attached(), "the program goes with the backend");
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_BPF)")]
    fn frames_that_find_the_rings_full_are_each_counted_once_by_cause() {
        if !privileged() {
            return;
        }
        let pair = Pair::new("f");
        let (dmac, pmac) = (pair.mac(&pair.d), pair.mac(&pair.p));
        let mut peer = peer(&pair);
        sys::enter_netns(&pair.d).unwrap();
        let vip = "10.98.0.100";
        // Rings of 32: the fill ring is given 32 free frames and nothing more while the
        // director does not run.
        let mut config = AfXdpConfig::new("eth0", vec![f::ip(vip)]);
        config.frames = 64;
        config.ring_size = 32;
        let mut xdp = AfXdp::open(&config).unwrap();
        for tag in 0..100 {
            peer.send(Instant::ZERO, &udp(dmac, pmac, vip, tag)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        // The kernel's rule (net/xdp/xsk.c, __xsk_rcv): the first 32 take the fill ring's
        // frames into the receive ring; each of the other 68 finds the fill ring empty, which
        // the kernel counts twice (rx_dropped and rx_fill_ring_empty_descs).
        let (seen, _) = pump(&mut xdp, 100, |_| Verdict::Drop(DropReason::OtherHost));
        assert_eq!(seen, (0..32).collect::<Vec<u8>>());
        let stats = xdp.stats().unwrap();
        assert_eq!(stats.received, 32);
        assert_eq!(stats.dropped, 68, "each lost frame counted once: {stats:?}");
        assert_eq!(stats.fill_empty, 68, "{stats:?}");
        assert_eq!(stats.ring_full, 0, "{stats:?}");
        assert_eq!((stats.invalid_rx, stats.invalid_tx), (0, 0));
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_BPF)")]
    fn a_spinning_socket_takes_frames_as_a_sleeping_one_does() {
        if !privileged() {
            return;
        }
        let pair = Pair::new("s");
        let (dmac, pmac) = (pair.mac(&pair.d), pair.mac(&pair.p));
        let mut peer = peer(&pair);
        sys::enter_netns(&pair.d).unwrap();
        let vip = "10.98.0.100";
        let mut config = AfXdpConfig::new("eth0", vec![f::ip(vip)]);
        config.busy_poll_us = 500;
        let mut xdp = AfXdp::open(&config).unwrap();
        // Nothing comes: each batch spins, then sleeps its poll timeout, and returns empty.
        let (seen, _) = pump(&mut xdp, 1, |_| Verdict::Drop(DropReason::OtherHost));
        assert!(seen.is_empty());
        let sender = std::thread::spawn(move || {
            for tag in 0..16 {
                peer.send(Instant::ZERO, &udp(dmac, pmac, vip, tag)).unwrap();
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        let (seen, _) = pump(&mut xdp, 16, |_| Verdict::Drop(DropReason::OtherHost));
        sender.join().unwrap();
        assert_eq!(seen, (0..16).collect::<Vec<u8>>());
        assert_eq!(xdp.stats().unwrap().dropped, 0);
    }

    #[test]
    #[cfg_attr(not(dr_root), ignore = "needs root (CAP_NET_ADMIN, CAP_BPF)")]
    fn a_queue_count_other_than_the_workers_is_refused_with_the_fix() {
        if !privileged() {
            return;
        }
        let pair = Pair::new("q");
        sys::enter_netns(&pair.d).unwrap();
        let config = AfXdpConfig::new("eth0", vec![f::ip("10.98.0.100")]);
        let e = AfXdp::open_queues(&config, 2).unwrap_err();
        assert!(matches!(e, Error::Queues { queues: 1, workers: 2, .. }), "{e}");
        assert!(e.to_string().contains("--workers 1"), "{e}");
        assert!(!pair.xdp_attached());
        let e = AfXdp::open(&AfXdpConfig::new("nosuch0", vec![])).unwrap_err();
        assert!(matches!(e, Error::NoSuchInterface(_)), "{e}");
    }
}
