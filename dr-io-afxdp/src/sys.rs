//! Every system call of the backend, and its only `unsafe` code.
//!
//! What is here: memory mappings that unmap themselves (the UMEM and the four rings), the
//! `AF_XDP` socket and its options, and the `bpf()` calls that create maps, load and attach
//! the XDP program and run it on test frames. Everything above this module is safe code:
//! a ring is read and written only through [`RingMap`]'s bounds-masked accessors, and the
//! UMEM is lent as one `&mut [u8]` borrowed from its owner, so a frame can never outlive
//! the memory it lies in.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A shared mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it is tied to the
// thread that mapped it.
unsafe impl Send for Mapping {}

impl Mapping {
    /// `mmap(len, fd at offset)`, or anonymous memory when `fd` is `None`.
    fn new(len: usize, fd: Option<RawFd>, offset: u64, populate: bool) -> io::Result<Self> {
        let mut flags = libc::MAP_SHARED;
        if fd.is_none() {
            flags |= libc::MAP_ANONYMOUS;
        }
        if populate {
            flags |= libc::MAP_POPULATE;
        }
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh mapping at an address the kernel picks; no existing memory is
        // touched. The result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd.unwrap_or(-1),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are exactly what mmap returned and took; every borrow of the
        // memory borrowed self, so none outlives this.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The UMEM: page-aligned memory that the kernel and the backend share frames in.
#[derive(Debug)]
pub(crate) struct Umem {
    map: Mapping,
}

impl Umem {
    /// `len` bytes of zeroed anonymous memory, faulted in now.
    pub(crate) fn new(len: usize) -> io::Result<Self> {
        Ok(Self { map: Mapping::new(len, None, 0, true)? })
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len
    }

    /// The frames at `ranges` (byte ranges of the UMEM), as slices that live as long as
    /// `self` is mutably borrowed; a range out of bounds or overlapping one before it is
    /// left out (`None` in its place), and so is one overlapping a range lent before it. The kernel writes received frames only into chunks
    /// the backend handed it on the fill ring and reads only those on the transmit ring:
    /// the ranges asked for are chunks between their arrival on the receive ring (or
    /// their taking from the free list) and their return to the kernel, which no one else
    /// touches. No reference to the rest of the UMEM is ever made.
    pub(crate) fn slices<const N: usize>(
        &mut self,
        ranges: &[std::ops::Range<usize>],
    ) -> heapless::Vec<Option<&mut [u8]>, N> {
        let mut out = heapless::Vec::new();
        let mut lent: heapless::Vec<std::ops::Range<usize>, N> = heapless::Vec::new();
        for range in ranges.iter().take(N) {
            let fits = range.start <= range.end && range.end <= self.map.len;
            let apart =
                lent.iter().all(|other| range.end <= other.start || other.end <= range.start);
            if fits && apart && !range.is_empty() {
                let _ = lent.push(range.clone());
            }
            let slice = (fits && apart).then(|| {
                // SAFETY: start..end lies inside the mapping (checked), which lives as long
                // as self; it overlaps no other range lent by this call (checked against
                // each before it), and self stays mutably borrowed while the slices live,
                // so each is the only reference to its bytes (an empty one has none); the
                // kernel does not touch them meanwhile (see above).
                unsafe {
                    std::slice::from_raw_parts_mut(
                        self.map.ptr.as_ptr().add(range.start),
                        range.end - range.start,
                    )
                }
            });
            let _ = out.push(slice);
        }
        out
    }
}

/// What a ring holds: a UMEM address (fill and completion rings) or a descriptor (receive
/// and transmit rings).
pub(crate) trait Entry: Copy + Default + private::Sealed {}

mod private {
    pub(crate) trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for super::Desc {}
}

impl Entry for u64 {}
impl Entry for Desc {}

/// `struct xdp_desc`: a frame's UMEM address and length.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    /// Where the frame starts in the UMEM.
    pub(crate) addr: u64,
    /// Its length.
    pub(crate) len: u32,
    /// Option bits (`XDP_PKT_CONTD` and the like; none are used).
    pub(crate) options: u32,
}

/// Which of the four rings to map.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RingKind {
    Fill,
    Completion,
    Rx,
    Tx,
}

/// One ring mapped from the socket: its producer and consumer indexes, its flags word and
/// `size` entries of `T`. Every access masks the index, so none is out of bounds.
#[derive(Debug)]
pub(crate) struct RingMap<T: Entry> {
    map: Mapping,
    producer: usize,
    consumer: usize,
    flags: usize,
    desc: usize,
    mask: u32,
    _entry: std::marker::PhantomData<T>,
}

impl<T: Entry> RingMap<T> {
    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: offset is one the kernel gave for this ring and was checked, at mapping,
        // to leave 4 aligned bytes inside the mapping; the kernel reads and writes the
        // word only atomically, and it lives as long as self.
        unsafe { &*self.map.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// The producer index.
    pub(crate) fn producer(&self) -> &AtomicU32 {
        self.word(self.producer)
    }

    /// The consumer index.
    pub(crate) fn consumer(&self) -> &AtomicU32 {
        self.word(self.consumer)
    }

    /// The ring's flags (`XDP_RING_NEED_WAKEUP`).
    pub(crate) fn flags(&self) -> u32 {
        self.word(self.flags).load(Ordering::Relaxed)
    }

    /// The number of entries (a power of two).
    pub(crate) fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Reads entry `index` (masked into the ring).
    pub(crate) fn read(&self, index: u32) -> T {
        let slot = (index & self.mask) as usize;
        // SAFETY: the entries start at an offset checked, at mapping, to leave size
        // aligned entries of T inside the mapping, and slot < size. The slot belongs to
        // this side (between the indexes, as the ring protocol in ring.rs keeps them), so
        // the kernel does not write it concurrently; a volatile read never assumes more.
        unsafe { self.map.ptr.as_ptr().add(self.desc).cast::<T>().add(slot).read_volatile() }
    }

    /// Writes entry `index` (masked into the ring).
    pub(crate) fn write(&mut self, index: u32, value: T) {
        let slot = (index & self.mask) as usize;
        // SAFETY: as in read: in bounds, aligned, and a slot the kernel does not read until
        // the producer index is published past it.
        unsafe {
            self.map.ptr.as_ptr().add(self.desc).cast::<T>().add(slot).write_volatile(value);
        }
    }
}

/// An `AF_XDP` socket.
#[derive(Debug)]
pub(crate) struct XskSocket {
    fd: OwnedFd,
}

impl XskSocket {
    /// `socket(AF_XDP, SOCK_RAW)`.
    pub(crate) fn open() -> io::Result<Self> {
        // SAFETY: socket() takes no pointers; a non-negative return is a new descriptor
        // that nothing else owns.
        let fd =
            check(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fd was just returned by socket() and is owned by no one else.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// The descriptor, for the XSKMAP.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn set_option<T>(&self, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: value points to a live T of size_of::<T>() bytes for the call; the
        // kernel only reads it.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                name,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    fn get_option<T: Copy>(&self, name: libc::c_int, value: &mut T) -> io::Result<usize> {
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: value and len are live for the call; the kernel writes at most len bytes
        // into value (a plain-old-data struct) and the length it wrote into len.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                name,
                (value as *mut T).cast(),
                &raw mut len,
            )
        })?;
        Ok(len as usize)
    }

    /// Registers `umem` as this socket's UMEM, in chunks of `chunk_size` bytes. The kernel
    /// pins its pages; the mapping must outlive the socket's use of it, which the backend
    /// guarantees by owning both and dropping the socket first.
    pub(crate) fn register_umem(&self, umem: &Umem, chunk_size: u32) -> io::Result<()> {
        let reg = libc::xdp_umem_reg {
            addr: umem.map.ptr.as_ptr() as u64,
            len: umem.len() as u64,
            chunk_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        self.set_option(libc::XDP_UMEM_REG, &reg)
    }

    /// Sets a ring's number of entries.
    pub(crate) fn set_ring_size(&self, kind: RingKind, entries: u32) -> io::Result<()> {
        let name = match kind {
            RingKind::Fill => libc::XDP_UMEM_FILL_RING,
            RingKind::Completion => libc::XDP_UMEM_COMPLETION_RING,
            RingKind::Rx => libc::XDP_RX_RING,
            RingKind::Tx => libc::XDP_TX_RING,
        };
        self.set_option(name, &entries)
    }

    /// Maps a ring whose size was set, of `entries` entries.
    pub(crate) fn map_ring<T: Entry>(
        &self,
        kind: RingKind,
        entries: u32,
    ) -> io::Result<RingMap<T>> {
        // SAFETY: xdp_mmap_offsets is plain old data; all zeroes is a valid value.
        let mut offsets: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let got = self.get_option(libc::XDP_MMAP_OFFSETS, &mut offsets)?;
        if got != size_of::<libc::xdp_mmap_offsets>() {
            // Kernels before 5.4 have no flags word: not supported.
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let (ring, page) = match kind {
            RingKind::Fill => (offsets.fr, libc::XDP_UMEM_PGOFF_FILL_RING),
            RingKind::Completion => (offsets.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING),
            RingKind::Rx => (offsets.rx, libc::XDP_PGOFF_RX_RING as u64),
            RingKind::Tx => (offsets.tx, libc::XDP_PGOFF_TX_RING as u64),
        };
        if !entries.is_power_of_two() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let len = ring.desc as usize + entries as usize * size_of::<T>();
        let fits = |offset: u64, size: usize, align: usize| {
            let offset = offset as usize;
            offset.is_multiple_of(align) && offset.checked_add(size).is_some_and(|end| end <= len)
        };
        let words = [ring.producer, ring.consumer, ring.flags];
        if !words.iter().all(|&w| fits(w, 4, 4)) || !fits(ring.desc, 0, align_of::<T>()) {
            return Err(io::Error::from(io::ErrorKind::InvalidData));
        }
        let map = Mapping::new(len, Some(self.fd.as_raw_fd()), page, true)?;
        Ok(RingMap {
            map,
            producer: ring.producer as usize,
            consumer: ring.consumer as usize,
            flags: ring.flags as usize,
            desc: ring.desc as usize,
            mask: entries - 1,
            _entry: std::marker::PhantomData,
        })
    }

    /// Binds to queue `queue` of interface `ifindex` with these `XDP_*` bind flags.
    pub(crate) fn bind(&self, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: addr is a live sockaddr_xdp and the length given is its size.
        check(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// Whether the bound socket runs in zero-copy mode (`XDP_OPTIONS`).
    pub(crate) fn zero_copy(&self) -> io::Result<bool> {
        let mut options = libc::xdp_options { flags: 0 };
        self.get_option(libc::XDP_OPTIONS, &mut options)?;
        Ok(options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// `XDP_STATISTICS`, cumulative since the socket was bound.
    pub(crate) fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        // SAFETY: xdp_statistics is plain old data; all zeroes is a valid value.
        let mut stats: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        self.get_option(libc::XDP_STATISTICS, &mut stats)?;
        Ok(stats)
    }

    /// Tells the kernel the transmit ring has frames: `sendto(fd, NULL, 0, MSG_DONTWAIT)`.
    pub(crate) fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: no buffer and no address are passed (null with length 0).
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Waits up to `timeout_ms` for received frames; true when some are there.
    pub(crate) fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd, and the count given is 1.
        match check(unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) }) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }
}

// --- bpf() ---------------------------------------------------------------------------

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
#[cfg(test)]
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;

/// `BPF_MAP_TYPE_HASH`.
pub(crate) const MAP_HASH: u32 = 1;
/// `BPF_MAP_TYPE_XSKMAP`.
pub(crate) const MAP_XSK: u32 = 17;
const PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP`, the attach type of an XDP link.
const ATTACH_XDP: u32 = 37;

/// `bpf(cmd, attr, sizeof attr)`.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_int> {
    // SAFETY: attr is a live, fully initialised #[repr(C)] prefix of union bpf_attr for
    // this command, of the size given; the kernel reads it and writes back only fields
    // inside it (test-run results). Pointers inside it point to live buffers of the sizes
    // given, as each caller below states.
    let ret = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, (attr as *mut T).cast::<libc::c_void>(), size_of::<T>())
    };
    let ret =
        libc::c_int::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    check(ret)
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: fd was just returned by a bpf() call that creates a descriptor, and is owned
    // by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The name fields of bpf_attr: up to 15 bytes and a NUL.
fn object_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (dst, src) in out.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    out
}

#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// A BPF map with fixed key and value sizes, which every access is checked against: the
/// kernel reads exactly that many bytes behind each pointer.
#[derive(Debug)]
pub(crate) struct BpfMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl BpfMap {
    /// Creates a map.
    pub(crate) fn create(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> io::Result<Self> {
        let mut attr = MapCreate {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: object_name(name),
        };
        let fd = bpf(BPF_MAP_CREATE, &mut attr).map(owned)?;
        Ok(Self { fd, key_size: key_size as usize, value_size: value_size as usize })
    }

    /// The map's descriptor, for the program's `ld_imm64` map references.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sets `key` to `value`; `EINVAL` unless they have the map's sizes.
    pub(crate) fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if key.len() != self.key_size || value.len() != self.value_size {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut attr = MapElem {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// Removes `key` (a missing key is `ENOENT`); `EINVAL` unless it has the key size.
    pub(crate) fn delete(&self, key: &[u8]) -> io::Result<()> {
        if key.len() != self.key_size {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut attr = MapElem {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: key.as_ptr() as u64,
            value: 0,
            flags: 0,
        };
        bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
    }
}

#[repr(C)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads an XDP program; on refusal, the error and the verifier's log.
pub(crate) fn prog_load(insns: &[[u8; 8]], name: &str) -> Result<OwnedFd, (io::Error, String)> {
    let license = c"Dual MIT/GPL";
    let mut log = vec![0u8; 1 << 16];
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut attr = ProgLoad {
            prog_type: PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size: if log_level == 0 { 0 } else { log.len() as u32 },
            log_buf: if log_level == 0 { 0 } else { log.as_mut_ptr() as u64 },
            kern_version: 0,
            prog_flags: 0,
            prog_name: object_name(name),
            prog_ifindex: 0,
            expected_attach_type: ATTACH_XDP,
        };
        bpf(BPF_PROG_LOAD, &mut attr).map(owned)
    };
    match attempt(0, &mut log) {
        Ok(fd) => Ok(fd),
        Err(first) => match attempt(1, &mut log) {
            Ok(fd) => Ok(fd),
            Err(_) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                Err((first, String::from_utf8_lossy(&log[..end]).into_owned()))
            }
        },
    }
}

/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the kernel's receive path.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

#[repr(C)]
struct LinkCreate {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Attaches an XDP program to an interface with a BPF link: it stays attached exactly as
/// long as the returned descriptor is open, so the program goes away with the process.
pub(crate) fn xdp_link(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreate {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: ATTACH_XDP,
        flags,
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

#[cfg(test)]
#[repr(C)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

#[cfg(test)]
/// Runs the program once on `frame` (`BPF_PROG_TEST_RUN`) and returns its XDP action.
pub(crate) fn test_run(prog: &OwnedFd, frame: &[u8]) -> io::Result<u32> {
    let mut attr = TestRun {
        prog_fd: prog.as_raw_fd() as u32,
        retval: 0,
        data_size_in: frame.len() as u32,
        data_size_out: 0,
        data_in: frame.as_ptr() as u64,
        data_out: 0,
        repeat: 1,
        duration: 0,
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.retval)
}

// --- interfaces ----------------------------------------------------------------------

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

/// Moves the calling thread into the network namespace `ip netns` calls `name`
/// (`setns`): its sockets and interface queries are then that namespace's.
#[cfg(test)]
pub(crate) fn enter_netns(name: &str) -> io::Result<()> {
    let file = std::fs::File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: setns takes a live descriptor (the file is open for the call) and changes
    // only this thread's namespace.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_umem_lends_only_disjoint_ranges_inside_it() {
        let mut umem = Umem::new(4 * 4096).unwrap();
        let ranges = [0..10, 4096..4200, 5..20, 16380..16390, 8192..8192, 12288..16384];
        let slices: heapless::Vec<Option<&mut [u8]>, 8> = umem.slices(&ranges);
        let lens: Vec<Option<usize>> = slices.iter().map(|s| s.as_ref().map(|s| s.len())).collect();
        assert_eq!(lens, [Some(10), Some(104), None, None, Some(0), Some(4096)]);
        let mut slices = slices;
        if let Some(Some(first)) = slices.first_mut() {
            first.fill(7);
        }
        drop(slices);
        let again: heapless::Vec<Option<&mut [u8]>, 1> =
            umem.slices(std::slice::from_ref(&(0..12)));
        assert_eq!(again[0].as_deref(), Some(&[7u8, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0][..]));
    }
}
