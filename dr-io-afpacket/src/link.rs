//! A plain packet socket on one interface, for probes that must leave exactly as forwarded
//! traffic does (to a real server's MAC, addressed to a VIP) and for reading the answers:
//! the health check that goes through the VIP.

use crate::sys::{self, Socket};
use crate::{Error, filter};
use dr_core::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// A packet socket bound to one interface that sees the TCP segments arriving on it.
#[derive(Debug)]
pub struct LinkSocket {
    socket: Socket,
    mac: MacAddr,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
}

impl LinkSocket {
    /// Opens the socket on `interface`.
    ///
    /// # Errors
    ///
    /// [`Error::Permission`] without CAP_NET_RAW, [`Error::NoSuchInterface`], or
    /// [`Error::Io`].
    pub fn open(interface: &str) -> Result<Self, Error> {
        let ifindex =
            sys::if_index(interface).map_err(|_| Error::NoSuchInterface(interface.into()))?;
        let mac =
            MacAddr(sys::if_mac(interface).map_err(|e| Error::io("reading the interface MAC", e))?);
        let socket = Socket::open().map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => Error::Permission { operation: "opening a packet socket" },
            _ => Error::io("opening a packet socket", e),
        })?;
        socket
            .attach_filter(&filter::tcp_program())
            .map_err(|e| Error::io("attaching the BPF filter", e))?;
        socket.bind(ifindex).map_err(|e| Error::io("binding to the interface", e))?;
        Ok(Self { socket, mac, ipv4: sys::if_ipv4(interface).ok(), ipv6: if_ipv6(interface) })
    }

    /// The interface's MAC.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The interface's address of the family of `like`, if it has one: the source of a
    /// probe, to which the answer comes back.
    pub fn address_like(&self, like: IpAddr) -> Option<IpAddr> {
        match like {
            IpAddr::V4(_) => self.ipv4.map(IpAddr::V4),
            IpAddr::V6(_) => self.ipv6.map(IpAddr::V6),
        }
    }

    /// Sends a whole Ethernet frame.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with the kernel's refusal.
    pub fn send(&self, frame: &[u8]) -> Result<(), Error> {
        self.socket.send_frame(frame).map_err(|e| Error::io("sending a probe", e))
    }

    /// Waits until `deadline` for a TCP frame `is_it` accepts, and returns what `is_it`
    /// made of it; `None` at the deadline.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails.
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        mut is_it: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(n) =
                self.socket.recv_frame(&mut buf).map_err(|e| Error::io("reading frames", e))?
            {
                if let Some(found) = is_it(&buf[..n]) {
                    return Ok(Some(found));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let wait = left.min(Duration::from_millis(100)).as_millis().max(1) as i32;
            self.socket.wait_readable(wait).map_err(|e| Error::io("waiting for frames", e))?;
        }
    }
}

/// The interface's IPv6 address from `/proc/net/if_inet6`: a global one if it has one,
/// else its link-local one.
fn if_ipv6(interface: &str) -> Option<Ipv6Addr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    let mut found: Option<Ipv6Addr> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[5] != interface {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(fields[0], 16) else { continue };
        let addr = Ipv6Addr::from(bits);
        let link_local = addr.segments()[0] & 0xffc0 == 0xfe80;
        if found.is_none() || !link_local {
            found = Some(addr);
        }
    }
    found
}
