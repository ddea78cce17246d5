//! Every system call of the backend, and the only `unsafe` code of the project.
//!
//! What is here: an `AF_PACKET` socket (an [`OwnedFd`]), its options, the receive ring
//! mapped into memory with bounds-checked walkers over its TPACKET_V3 blocks and its
//! TPACKET_V2 frames, batched
//! transmission with `sendmmsg`, and interface queries by `ioctl`. Everything above this
//! module is safe code.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{Ordering, fence};

/// `PACKET_VERSION`'s value for TPACKET_V2.
pub(crate) const TPACKET_V2: libc::c_int = 1;
/// `PACKET_VERSION`'s value for TPACKET_V3.
pub(crate) const TPACKET_V3: libc::c_int = 2;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_COPY_THRESH: libc::c_int = 7;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_DATA: libc::c_int = 22;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `PACKET_FANOUT_CBPF`: the group's classic BPF program picks each frame's socket.
const FANOUT_CBPF: u32 = 6;

/// A block the kernel has handed over.
pub(crate) const TP_STATUS_USER: u32 = 1;
const TP_STATUS_KERNEL: u32 = 0;
/// The frame was truncated to the ring's frame size.
pub(crate) const TP_STATUS_COPY: u32 = 1 << 1;
/// The kernel took the frame's outer VLAN tag out into `tp_vlan_tci`.
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `tp_vlan_tpid` holds the outer tag's protocol identifier.
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// `sizeof(struct tpacket3_hdr)`: a frame's bytes never start before its header ends.
const TPACKET3_HDR_LEN: usize = 48;
/// `TPACKET2_HDRLEN`: the header and the `sockaddr_ll` the kernel writes after it; a
/// TPACKET_V2 frame's bytes never start before it ends.
const TPACKET2_HDRLEN: usize = 52;

/// `struct virtio_net_hdr`, in front of every frame once `PACKET_VNET_HDR` is on.
pub(crate) const VNET_HDR_LEN: usize = 10;

/// `struct tpacket_req3` (for TPACKET_V2 the kernel reads only its first four fields, the
/// `struct tpacket_req`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RingRequest {
    pub(crate) block_size: u32,
    pub(crate) block_nr: u32,
    pub(crate) frame_size: u32,
    pub(crate) frame_nr: u32,
    pub(crate) retire_blk_tov: u32,
    pub(crate) sizeof_priv: u32,
    pub(crate) feature_req_word: u32,
}

/// An `AF_PACKET` raw socket.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: OwnedFd,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

impl Socket {
    /// `socket(AF_PACKET, SOCK_RAW, 0)`: a socket that receives nothing until
    /// [`Socket::bind`] names its interface and `ETH_P_ALL`. (Opened with `ETH_P_ALL` it
    /// would take frames from every interface until then, into its ring too.)
    pub(crate) fn open() -> io::Result<Self> {
        // SAFETY: socket() takes no pointers; a non-negative return is a new descriptor
        // that nothing else owns, so OwnedFd may take it.
        let fd = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: fd was just returned by socket() and is owned by no one else.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn set_option<T>(&self, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: value points to a live T of size_of::<T>() bytes for the duration of the
        // call; the kernel only reads it.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                name,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// Selects the ring's layout: [`TPACKET_V2`] or [`TPACKET_V3`].
    pub(crate) fn set_version(&self, version: libc::c_int) -> io::Result<()> {
        self.set_option(PACKET_VERSION, &version)
    }

    /// `PACKET_COPY_THRESH`: a TPACKET_V2 frame too long for its ring slot is also queued
    /// whole on the socket (its slot says `TP_STATUS_COPY`), to be read with `recv`.
    pub(crate) fn set_copy_thresh(&self) -> io::Result<()> {
        self.set_option(PACKET_COPY_THRESH, &1 as &libc::c_int)
    }

    /// The socket's receive buffer, which holds the frames queued whole for a TPACKET_V2
    /// ring: `SO_RCVBUFFORCE` (past `rmem_max`, with CAP_NET_ADMIN), else `SO_RCVBUF`.
    pub(crate) fn set_receive_buffer(&self, bytes: libc::c_int) -> io::Result<()> {
        let set = |name| {
            // SAFETY: bytes is a live c_int for the call; the kernel only reads it.
            check(unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    name,
                    (&raw const bytes).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            })
        };
        set(libc::SO_RCVBUFFORCE).or_else(|_| set(libc::SO_RCVBUF))?;
        Ok(())
    }

    /// `PACKET_VNET_HDR`: a `virtio_net_hdr` before each frame, in and out, so checksum
    /// and segmentation offloads are carried through instead of lost.
    pub(crate) fn set_vnet_hdr(&self) -> io::Result<()> {
        self.set_option(PACKET_VNET_HDR, &1 as &libc::c_int)
    }

    /// `PACKET_QDISC_BYPASS`: transmit straight to the device.
    pub(crate) fn set_qdisc_bypass(&self) -> io::Result<()> {
        self.set_option(PACKET_QDISC_BYPASS, &1 as &libc::c_int)
    }

    /// `PACKET_IGNORE_OUTGOING`: never see our own transmissions (nor the host's).
    pub(crate) fn set_ignore_outgoing(&self) -> io::Result<()> {
        self.set_option(PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
    }

    /// Asks for the receive ring.
    pub(crate) fn set_rx_ring(&self, request: &RingRequest) -> io::Result<()> {
        self.set_option(PACKET_RX_RING, request)
    }

    /// Joins fanout group `group`, whose members are picked by `program` (classic BPF,
    /// `PACKET_FANOUT_CBPF`): nothing is reassembled for the choice.
    pub(crate) fn join_fanout(&self, group: u16, program: &[libc::sock_filter]) -> io::Result<()> {
        let arg: u32 = u32::from(group) | (FANOUT_CBPF << 16);
        self.set_option(PACKET_FANOUT, &arg)?;
        let len = u16::try_from(program.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fprog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
        self.set_option(PACKET_FANOUT_DATA, &fprog)
    }

    /// Attaches a classic BPF program.
    pub(crate) fn attach_filter(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        let len = u16::try_from(program.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fprog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
        // SAFETY: fprog and the program it points to are alive for the call; the kernel
        // copies the program and does not write through the pointer.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const fprog).cast(),
                size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// Binds to one interface, all protocols: from now on the socket receives its frames.
    pub(crate) fn bind(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: addr is a live sockaddr_ll and the length given is its size.
        check(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// `PACKET_STATISTICS`: frames the socket took and frames it dropped because the ring
    /// was full, and how often the ring froze, since the last call (reading resets them).
    pub(crate) fn statistics(&self) -> io::Result<libc::tpacket_stats_v3> {
        // SAFETY: tpacket_stats_v3 is plain old data; all zeroes is a valid value.
        let mut stats: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: stats and len are live for the call; the kernel writes at most len bytes
        // into stats and the length it wrote into len.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&raw mut stats).cast(),
                &raw mut len,
            )
        })?;
        Ok(stats)
    }

    /// Sends one whole frame on the bound interface (`send`, no `virtio_net_hdr`: a socket
    /// without `PACKET_VNET_HDR`).
    pub(crate) fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is a live slice of frame.len() bytes for the call; the kernel only
        // reads it.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf` without waiting; `None` when none is there. Returns the
    /// bytes written (a longer frame is cut to `buf`).
    pub(crate) fn recv_frame(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: buf is a live, writable slice of buf.len() bytes for the call; the kernel
        // writes at most that many.
        let n = unsafe {
            libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some((n as usize).min(buf.len())))
    }

    /// Waits up to `timeout_ms` for the socket to become readable.
    pub(crate) fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one live pollfd, and the count given is 1.
        match check(unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) }) {
            Ok(n) if n > 0 && pfd.revents & libc::POLLERR != 0 => Err(self.take_error()),
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The socket's pending error (`SO_ERROR`), which reading clears: `ENETDOWN` once its
    /// interface went down or away.
    fn take_error(&self) -> io::Error {
        let mut error: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: error and len are live for the call; the kernel writes an int and its
        // length.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut error).cast(),
                &raw mut len,
            )
        };
        match ret {
            0 if error != 0 => io::Error::from_raw_os_error(error),
            0 => io::Error::other("the socket reported an error and none is pending"),
            _ => io::Error::last_os_error(),
        }
    }

    /// Maps the receive ring of `len` bytes.
    pub(crate) fn map_ring(&self, len: usize) -> io::Result<Ring> {
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel checks that len
        // matches the ring it set up. The pointer is only used through Ring, within len.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        Ok(Ring { ptr, len })
    }

    /// Sends the prepared messages of `batch` with `sendmmsg` and empties it. A message the
    /// kernel refuses (`sendmmsg` reports the ones before it as sent, then the error) is
    /// skipped and the rest are sent after it, so one refused frame costs only itself.
    /// Bounded: each call either sends at least one message or refuses one.
    pub(crate) fn send_batch(&self, batch: &mut TxBatch) -> SendReport {
        let mut report = SendReport::default();
        let mut at = 0;
        while at < batch.len {
            let n = self.sendmmsg(batch, at);
            match n {
                Ok(0) => {
                    report.refused += batch.len - at;
                    report.error = Some(io::Error::other("sendmmsg sent nothing"));
                    break;
                }
                Ok(n) => {
                    report.sent += n;
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    report.refused += 1;
                    report.error = Some(e);
                    at += 1;
                }
            }
        }
        batch.len = 0;
        report
    }

    /// One `sendmmsg` of the messages from `at` on.
    fn sendmmsg(&self, batch: &mut TxBatch, at: usize) -> io::Result<usize> {
        let len = batch.len - at;
        #[cfg(test)]
        let len = faults::take(len).map_err(io::Error::from_raw_os_error)?;
        // SAFETY: entries at..at+len of batch.msgs are initialised by TxBatch::push, and
        // point to iovecs and buffers that stay alive and unmoved until the batch is
        // cleared (the caller keeps the ring block it points into).
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                batch.msgs.as_mut_ptr().add(at),
                len as libc::c_uint,
                0,
            )
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }
}

/// What one [`Socket::send_batch`] came to.
#[derive(Debug, Default)]
pub(crate) struct SendReport {
    /// Messages the kernel took.
    pub(crate) sent: usize,
    /// Messages it refused.
    pub(crate) refused: usize,
    /// The last refusal's error.
    pub(crate) error: Option<io::Error>,
}

/// Refusals to inject into `sendmmsg`, for the tests of what the backend does with them.
#[cfg(test)]
pub(crate) mod faults {
    use std::cell::RefCell;

    thread_local! {
        /// Message positions (counted over the batches sent since set) to refuse, with the
        /// error number.
        static PLAN: RefCell<(usize, Vec<(usize, i32)>)> = const { RefCell::new((0, Vec::new())) };
    }

    /// From now on, refuse the messages at these positions (0 the next one sent).
    pub(crate) fn refuse(plan: &[(usize, i32)]) {
        PLAN.with(|p| *p.borrow_mut() = (0, plan.to_vec()));
    }

    /// Called before a `sendmmsg` of `len` messages: the error to return for the first of
    /// them, or how many to send, stopping before the next refused one as the kernel does
    /// (the ones before it are sent, the call after them fails).
    pub(crate) fn take(len: usize) -> Result<usize, i32> {
        PLAN.with(|p| {
            let (seen, plan) = &mut *p.borrow_mut();
            let first = *seen;
            let next = plan.iter().filter(|(pos, _)| *pos >= first).copied().min();
            match next {
                Some((pos, errno)) if pos == first => {
                    *seen += 1;
                    Err(errno)
                }
                Some((pos, _)) if pos < first + len => {
                    *seen = pos;
                    Ok(pos - first)
                }
                _ => {
                    *seen += len;
                    Ok(len)
                }
            }
        })
    }
}

/// Messages for one `sendmmsg`: each a `virtio_net_hdr` and a frame. The arrays are
/// allocated once; the messages point into them and into frames the caller keeps alive.
pub(crate) struct TxBatch {
    msgs: Vec<libc::mmsghdr>,
    iovs: Vec<[libc::iovec; 2]>,
    vnet: Vec<[u8; VNET_HDR_LEN]>,
    len: usize,
}

// SAFETY: the raw pointers in a batch refer to its own arrays and to frames it does not
// own; a batch is only ever used by the thread that owns its backend.
unsafe impl Send for TxBatch {}

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch")
            .field("len", &self.len)
            .field("capacity", &self.msgs.len())
            .finish()
    }
}

impl TxBatch {
    /// A batch of up to `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Self {
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        Self {
            // SAFETY: mmsghdr is plain old data; all zeroes is a valid (empty) message.
            msgs: (0..capacity).map(|_| unsafe { std::mem::zeroed() }).collect(),
            iovs: vec![[empty, empty]; capacity],
            vnet: vec![[0; VNET_HDR_LEN]; capacity],
            len: 0,
        }
    }

    /// Whether no more messages fit.
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.msgs.len()
    }

    /// Queues `frame` behind `vnet`. The frame must stay alive and unmoved until the batch
    /// is sent: the caller sends before it gives the memory back.
    pub(crate) fn push(&mut self, vnet: [u8; VNET_HDR_LEN], frame: &[u8]) -> bool {
        if self.is_full() {
            return false;
        }
        let i = self.len;
        self.vnet[i] = vnet;
        self.iovs[i] = [
            libc::iovec { iov_base: self.vnet[i].as_mut_ptr().cast(), iov_len: VNET_HDR_LEN },
            libc::iovec { iov_base: frame.as_ptr().cast_mut().cast(), iov_len: frame.len() },
        ];
        // SAFETY: msghdr is plain old data; all zeroes is a valid message without address.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = self.iovs[i].as_mut_ptr();
        hdr.msg_iovlen = 2;
        self.msgs[i] = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
        self.len += 1;
        true
    }
}

/// The mapped TPACKET_V3 receive ring.
pub(crate) struct Ring {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping belongs to this Ring alone; it is used by one thread at a time.
unsafe impl Send for Ring {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: ptr and len are the mapping made in map_ring, unmapped only here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One frame's place in the ring, read from its `tpacket3_hdr`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RxFrame {
    /// Offset of the frame's first byte in the ring.
    pub(crate) offset: usize,
    /// Bytes of the frame in the ring.
    pub(crate) snaplen: usize,
    /// The frame's length on the wire.
    pub(crate) len: usize,
    /// `tp_status`.
    pub(crate) status: u32,
    /// The outer VLAN tag the kernel took out of the frame (`tp_vlan_tpid`, `tp_vlan_tci`),
    /// if it did.
    pub(crate) vlan: Option<(u16, u16)>,
    /// The first byte after the frame's `tpacket` header: the frame may grow into the
    /// bytes between it and the frame, never before.
    floor: usize,
}

impl Ring {
    /// The ring's length in bytes.
    pub(crate) fn size(&self) -> usize {
        self.len
    }

    fn read_u32(&self, at: usize) -> Option<u32> {
        if at.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: at..at+4 is inside the mapping (checked above); a byte array has no
        // alignment to meet, and the read is volatile because the kernel writes this memory.
        let bytes = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(at).cast::<[u8; 4]>()) };
        Some(u32::from_ne_bytes(bytes))
    }

    fn read_u16(&self, at: usize) -> Option<u16> {
        if at.checked_add(2)? > self.len {
            return None;
        }
        // SAFETY: as in read_u32, for two bytes.
        let bytes = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(at).cast::<[u8; 2]>()) };
        Some(u16::from_ne_bytes(bytes))
    }

    /// Whether the block at `base` is the user's, and if so how many frames it holds and
    /// where the first is.
    pub(crate) fn block(&self, base: usize) -> Option<(u32, usize)> {
        let status = self.read_u32(base + 8)?;
        if status & TP_STATUS_USER == 0 {
            return None;
        }
        // The block's contents are valid once its status says so.
        fence(Ordering::Acquire);
        let frames = self.read_u32(base + 12)?;
        let first = self.read_u32(base + 16)? as usize;
        Some((frames, base + first))
    }

    /// The frame whose header is at `at`, and where the next header is (`tp_next_offset`).
    pub(crate) fn frame(&self, at: usize) -> Option<(RxFrame, usize)> {
        let next = self.read_u32(at)? as usize;
        let snaplen = self.read_u32(at + 12)? as usize;
        let len = self.read_u32(at + 16)? as usize;
        let status = self.read_u32(at + 20)?;
        let mac = usize::from(self.read_u16(at + 24)?);
        let offset = at.checked_add(mac)?;
        if offset.checked_add(snaplen)? > self.len || mac < VNET_HDR_LEN {
            return None;
        }
        let vlan = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
            let tci = self.read_u32(at + 32).unwrap_or(0) as u16;
            let tpid = match self.read_u16(at + 36) {
                Some(tpid) if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 => tpid,
                _ => 0x8100,
            };
            (tpid, tci)
        });
        let floor = at + TPACKET3_HDR_LEN;
        Some((RxFrame { offset, snaplen, len, status, vlan, floor }, at.checked_add(next)?))
    }

    /// The TPACKET_V2 frame slot of `size` bytes at `at`: `None` while it is the kernel's;
    /// once it is the user's, the frame it holds, or `Some(None)` if its header does not
    /// describe a frame inside the slot (the slot is then only to be given back).
    pub(crate) fn slot(&self, at: usize, size: usize) -> Option<Option<RxFrame>> {
        let status = self.read_u32(at)?;
        if status & TP_STATUS_USER == 0 {
            return None;
        }
        // The slot's contents are valid once its status says so.
        fence(Ordering::Acquire);
        Some(self.slot_frame(at, size, status))
    }

    fn slot_frame(&self, at: usize, size: usize, status: u32) -> Option<RxFrame> {
        let len = self.read_u32(at + 4)? as usize;
        let snaplen = self.read_u32(at + 8)? as usize;
        let mac = usize::from(self.read_u16(at + 12)?);
        let offset = at.checked_add(mac)?;
        let end = offset.checked_add(snaplen)?;
        if end > at.checked_add(size)? || end > self.len || mac < TPACKET2_HDRLEN + VNET_HDR_LEN {
            return None;
        }
        let vlan = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
            let tci = self.read_u16(at + 24).unwrap_or(0);
            let tpid = match self.read_u16(at + 26) {
                Some(tpid) if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 => tpid,
                _ => 0x8100,
            };
            (tpid, tci)
        });
        let floor = at + TPACKET2_HDRLEN;
        Some(RxFrame { offset, snaplen, len, status, vlan, floor })
    }

    /// Whether the TPACKET_V2 slot at `at` is the user's.
    pub(crate) fn slot_ready(&self, at: usize) -> bool {
        self.read_u32(at).is_some_and(|status| status & TP_STATUS_USER != 0)
    }

    /// Puts back the VLAN tag the kernel took out of `frame`: its MAC addresses move four
    /// bytes towards its header, over the end of the `virtio_net_hdr` (read before), and the
    /// tag goes between them and the EtherType, so the frame is exactly as it was on the
    /// wire. Returns the frame's new place; `None` (nothing written) without room.
    pub(crate) fn restore_vlan_tag(&mut self, frame: RxFrame) -> Option<RxFrame> {
        let (tpid, tci) = frame.vlan?;
        let start = frame.offset.checked_sub(4)?;
        if start < frame.floor || frame.snaplen < 12 {
            return None;
        }
        let bytes = self.bytes_mut(start, frame.snaplen + 4)?;
        bytes.copy_within(4..16, 0);
        bytes[12..14].copy_from_slice(&tpid.to_be_bytes());
        bytes[14..16].copy_from_slice(&tci.to_be_bytes());
        Some(RxFrame {
            offset: start,
            snaplen: frame.snaplen + 4,
            len: frame.len + 4,
            vlan: None,
            ..frame
        })
    }

    /// The bytes of a frame, to rewrite in place.
    pub(crate) fn bytes_mut(&mut self, offset: usize, len: usize) -> Option<&mut [u8]> {
        if offset.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: the range is inside the mapping; its block belongs to user space until
        // release_block, and &mut self keeps this the only reference into the ring.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) })
    }

    /// The bytes of a whole block, to split into its frames and rewrite them in place.
    pub(crate) fn block_mut(&mut self, base: usize, size: usize) -> Option<&mut [u8]> {
        self.bytes_mut(base, size)
    }

    /// The `virtio_net_hdr` in front of a frame.
    pub(crate) fn vnet_header(&self, frame_offset: usize) -> [u8; VNET_HDR_LEN] {
        let mut header = [0; VNET_HDR_LEN];
        if let Some(start) = frame_offset.checked_sub(VNET_HDR_LEN) {
            for (i, b) in header.iter_mut().enumerate() {
                // SAFETY: start + i < frame_offset <= len (frame() checked the frame lies in
                // the mapping and has room for the header before it).
                *b = unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(start + i)) };
            }
        }
        header
    }

    /// Gives the TPACKET_V3 block at `base` back to the kernel.
    pub(crate) fn release_block(&mut self, base: usize) {
        self.give_back(base + 8);
    }

    /// Gives the TPACKET_V2 slot at `at` back to the kernel.
    pub(crate) fn release_slot(&mut self, at: usize) {
        self.give_back(at);
    }

    /// Writes `TP_STATUS_KERNEL` into the status word at `at`.
    fn give_back(&mut self, at: usize) {
        if at.checked_add(4).is_none_or(|end| end > self.len) {
            return;
        }
        // Every read and write of the block or slot happens before the kernel may reuse it.
        fence(Ordering::Release);
        // SAFETY: at..at+4 is inside the mapping (checked above).
        unsafe {
            std::ptr::write_volatile(
                self.ptr.as_ptr().add(at).cast::<[u8; 4]>(),
                TP_STATUS_KERNEL.to_ne_bytes(),
            );
        }
    }
}

/// `ifreq` for the interface queries.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: ifreq is plain old data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn interface_ioctl(name: &str, request: libc::Ioctl) -> io::Result<libc::ifreq> {
    let mut req = ifreq(name)?;
    // SAFETY: a plain datagram socket, owned at once.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: req is a live ifreq the kernel fills for this request.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request, &raw mut req) })?;
    Ok(req)
}

/// The interface's index.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: name is a live NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// Whether the interface is up (`IFF_UP`), and running (`IFF_RUNNING`).
pub(crate) fn if_up(name: &str) -> io::Result<(bool, bool)> {
    let req = interface_ioctl(name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    Ok((flags & libc::IFF_UP != 0, flags & libc::IFF_RUNNING != 0))
}

/// The interface's (first) IPv4 address.
pub(crate) fn if_ipv4(name: &str) -> io::Result<std::net::Ipv4Addr> {
    let req = interface_ioctl(name, libc::SIOCGIFADDR)?;
    // SAFETY: SIOCGIFADDR filled the addr member of the union with a sockaddr_in.
    let addr = unsafe { req.ifr_ifru.ifru_addr };
    // sockaddr_in: family (2 bytes), port (2), then the address (4) in sa_data[2..6].
    let d = addr.sa_data;
    Ok(std::net::Ipv4Addr::new(d[2] as u8, d[3] as u8, d[4] as u8, d[5] as u8))
}

/// The interface's MAC address.
pub(crate) fn if_mac(name: &str) -> io::Result<[u8; 6]> {
    let req = interface_ioctl(name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}
