//! Virtual services and their real servers.

use crate::flow::{Protocol, SocketDisplay};
use crate::mac::MacAddr;
use crate::neigh::NeighbourId;
use crate::sched::{Scheduler, SchedulerKind};
use crate::stats::Stats;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

/// A handle to a virtual service of a [`Director`](crate::Director).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(u16);

/// A handle to a real server of a [`Director`](crate::Director).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealId(u16);

macro_rules! id_conversions {
    ($($id:ident),*) => {$(
        impl $id {
            /// The position of this handle in the director's storage.
            pub const fn index(self) -> usize {
                self.0 as usize
            }

            pub(crate) const fn from_index(index: usize) -> Self {
                Self(index as u16)
            }
        }
    )*};
}
id_conversions!(ServiceId, RealId);

/// What identifies a virtual service: `(protocol, VIP, port)`, as `ipvsadm -A -t|-u` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The virtual IP address.
    pub vip: IpAddr,
    /// The service port.
    pub port: u16,
}

impl fmt::Display for ServiceKey {
    /// `TCP  10.0.0.100:80`, the `ipvsadm -L -n` service text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}", self.protocol.name(), SocketDisplay(self.vip, self.port))
    }
}

/// A virtual service to add to a director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// The scheduler that picks a real server for each new connection.
    pub scheduler: SchedulerKind,
}

impl ServiceConfig {
    /// A service on `vip:port` with the given scheduler.
    pub const fn new(protocol: Protocol, vip: IpAddr, port: u16, scheduler: SchedulerKind) -> Self {
        Self { key: ServiceKey { protocol, vip, port }, scheduler }
    }
}

/// A real server to add to a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealConfig {
    /// The real server's own address (same family as the VIP). Direct Routing forwards
    /// on layer 2, so this address only serves to find its MAC.
    pub addr: IpAddr,
    /// Scheduling weight, 0 ..= [`MAX_WEIGHT`]; 0 quiesces the server.
    pub weight: u32,
    /// The server's MAC address; `None` to learn it by ARP or Neighbor Discovery.
    pub mac: Option<MacAddr>,
}

/// The largest weight the kernel stores (an `int`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

impl RealConfig {
    /// A real server at `addr` with weight 1 (the `ipvsadm` default) and a MAC to learn.
    pub const fn new(addr: IpAddr) -> Self {
        Self { addr, weight: 1, mac: None }
    }

    /// Sets the weight.
    #[must_use]
    pub const fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets a static MAC address.
    #[must_use]
    pub const fn with_mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }
}

/// A virtual service and its state.
#[derive(Debug)]
pub struct Service {
    pub(crate) key: ServiceKey,
    pub(crate) scheduler: Scheduler,
    /// Real servers in the kernel's list order: the most recently added first.
    pub(crate) reals: Vec<RealId>,
    pub(crate) stats: Stats,
}

impl Service {
    /// Protocol, VIP and port.
    pub fn key(&self) -> ServiceKey {
        self.key
    }

    /// The scheduler.
    pub fn scheduler(&self) -> SchedulerKind {
        self.scheduler.kind()
    }

    /// The real servers in the kernel's list order (most recently added first), which is the
    /// order the schedulers walk them in.
    pub fn reals(&self) -> &[RealId] {
        &self.reals
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// A real server and its connection counts.
#[derive(Debug)]
pub struct RealServer {
    pub(crate) addr: IpAddr,
    pub(crate) service: ServiceId,
    pub(crate) weight: u32,
    pub(crate) mac: Option<MacAddr>,
    pub(crate) neighbour: NeighbourId,
    pub(crate) active: u32,
    pub(crate) inactive: u32,
    pub(crate) stats: Stats,
}

impl RealServer {
    /// The real server's address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The service it belongs to.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// Its weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Its MAC address, if configured or learned.
    pub fn mac(&self) -> Option<MacAddr> {
        self.mac
    }

    /// Connections counted active (`ActiveConn`).
    pub fn active_conns(&self) -> u32 {
        self.active
    }

    /// Connections counted inactive (`InActConn`).
    pub fn inactive_conns(&self) -> u32 {
        self.inactive
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether a scheduler may pick it: weight above 0 and a known MAC.
    pub(crate) fn is_schedulable(&self) -> bool {
        self.weight > 0 && self.mac.is_some()
    }
}
