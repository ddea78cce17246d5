//! Virtual services and their real servers.

use crate::flow::{Protocol, SocketDisplay};
use crate::mac::MacAddr;
use crate::neigh::NeighbourId;
use crate::sched::{SchedFlags, Scheduler, SchedulerKind};
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

            /// The handle at `index` (a backend's or a test's own verdicts; the director
            /// answers `None` for a handle it never gave out).
            pub const fn from_index(index: usize) -> Self {
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

/// Persistence (`ipvsadm -p timeout -M netmask`): every new connection from a client network
/// goes to the real server the first one got, while the client's template lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Seconds a template outlives the last connection that used it, 1 ..=
    /// [`MAX_PERSISTENT_SECS`]. `ipvsadm -p` without a value gives
    /// [`DEFAULT_PERSISTENT_SECS`].
    pub timeout_secs: u32,
    /// The prefix length that groups clients, at most 128: 24 for one template per IPv4 /24
    /// (`-M 255.255.255.0`), 64 for one per IPv6 /64. The address's width or more (32 for
    /// IPv4, 128 for IPv6) means one template per client address, ipvsadm's default.
    pub prefix_len: u8,
}

/// ipvsadm's `-p` without a value (`IPVS_SVC_PERSISTENT_TIMEOUT`): 6 minutes.
pub const DEFAULT_PERSISTENT_SECS: u32 = 360;
/// The longest persistence ipvsadm accepts: 31 days.
pub const MAX_PERSISTENT_SECS: u32 = 31 * 24 * 3600;

impl Persistence {
    /// Persistence for `timeout_secs` per client address (netmask /32 or /128).
    pub const fn new(timeout_secs: u32) -> Self {
        Self { timeout_secs, prefix_len: 128 }
    }

    /// Groups clients by a network of `prefix_len` bits.
    #[must_use]
    pub const fn with_prefix_len(mut self, prefix_len: u8) -> Self {
        self.prefix_len = prefix_len;
        self
    }

    /// The prefix length for an address family, at most the family's width.
    pub(crate) fn prefix_for(self, addr: IpAddr) -> u8 {
        self.prefix_len.min(if addr.is_ipv4() { 32 } else { 128 })
    }

    /// The client address as a template keys it: `caddr & netmask`.
    pub(crate) fn mask(self, addr: IpAddr) -> IpAddr {
        let bits = u32::from(self.prefix_for(addr));
        match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

/// A virtual service to add to a director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Protocol, VIP and port. Port 0 (any port) needs persistence.
    pub key: ServiceKey,
    /// The scheduler that picks a real server for each new connection.
    pub scheduler: SchedulerKind,
    /// Scheduler flags (`ipvsadm -b`).
    pub flags: SchedFlags,
    /// Persistence, if the service has it.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`ipvsadm -o`, `IP_VS_SVC_F_ONEPACKET`): each UDP datagram is
    /// scheduled on its own and leaves no connection entry. The kernel takes the flag on a
    /// TCP service too, where it changes nothing: only UDP datagrams are scheduled so.
    pub one_packet: bool,
}

impl ServiceConfig {
    /// A service on `vip:port` with the given scheduler.
    pub const fn new(protocol: Protocol, vip: IpAddr, port: u16, scheduler: SchedulerKind) -> Self {
        Self {
            key: ServiceKey { protocol, vip, port },
            scheduler,
            flags: SchedFlags::NONE,
            persistence: None,
            one_packet: false,
        }
    }

    /// Sets the scheduler flags.
    #[must_use]
    pub const fn with_flags(mut self, flags: SchedFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Makes the service persistent.
    #[must_use]
    pub const fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = Some(persistence);
        self
    }

    /// Sets one-packet scheduling (`ipvsadm -o`).
    #[must_use]
    pub const fn with_one_packet(mut self, one_packet: bool) -> Self {
        self.one_packet = one_packet;
        self
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
    /// The server's MAC address; `None` to learn it from the answer to the director's ARP
    /// request or Neighbor Solicitation.
    pub mac: Option<MacAddr>,
    /// Upper connection threshold: at this many connections (active + inactive) the server
    /// is overloaded and no scheduler picks it. 0 = no limit.
    pub u_threshold: u32,
    /// Lower connection threshold: the overload clears below it (0: below 3/4 of the upper
    /// threshold). Must not exceed the upper threshold.
    pub l_threshold: u32,
}

/// The largest weight the kernel stores (an `int`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// A change to a real server's weight and thresholds (`ipvsadm -e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealEdit {
    /// The new weight; 0 quiesces the server (its connections continue).
    pub weight: u32,
    /// The new upper threshold.
    pub u_threshold: u32,
    /// The new lower threshold.
    pub l_threshold: u32,
}

impl RealEdit {
    /// The server's current settings, to change from.
    pub fn of(real: &RealServer) -> Self {
        Self { weight: real.weight, u_threshold: real.u_threshold, l_threshold: real.l_threshold }
    }

    /// Sets the weight.
    #[must_use]
    pub const fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the thresholds.
    #[must_use]
    pub const fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}

impl RealConfig {
    /// A real server at `addr` with weight 1 (the `ipvsadm` default) and a MAC to learn.
    pub const fn new(addr: IpAddr) -> Self {
        Self { addr, weight: 1, mac: None, u_threshold: 0, l_threshold: 0 }
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

    /// Sets the upper and lower connection thresholds (`ipvsadm -x`, `-y`).
    #[must_use]
    pub const fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}

/// A virtual service and its state.
#[derive(Debug)]
pub struct Service {
    pub(crate) key: ServiceKey,
    pub(crate) scheduler: Scheduler,
    pub(crate) flags: SchedFlags,
    pub(crate) persistence: Option<Persistence>,
    /// One-packet scheduling (`IP_VS_SVC_F_ONEPACKET`).
    pub(crate) one_packet: bool,
    /// Real servers in the kernel's list order: the most recently added first.
    pub(crate) reals: Vec<RealId>,
    pub(crate) stats: Stats,
    /// Deleted (`ipvsadm -D`); kept so handles stay valid.
    pub(crate) removed: bool,
}

#[cfg(fuzzing)]
fuzzing_clone!(Service { key, scheduler, flags, persistence, one_packet, reals, stats, removed });

impl Service {
    /// Protocol, VIP and port.
    pub fn key(&self) -> ServiceKey {
        self.key
    }

    /// The scheduler.
    pub fn scheduler(&self) -> SchedulerKind {
        self.scheduler.kind()
    }

    /// The scheduler flags.
    pub fn flags(&self) -> SchedFlags {
        self.flags
    }

    /// Persistence, if the service has it.
    pub fn persistence(&self) -> Option<Persistence> {
        self.persistence
    }

    /// Whether the service has one-packet scheduling (`ipvsadm -o`; it applies to UDP
    /// datagrams only).
    pub fn one_packet(&self) -> bool {
        self.one_packet
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
#[cfg_attr(fuzzing, derive(Clone))]
pub struct RealServer {
    pub(crate) addr: IpAddr,
    pub(crate) service: ServiceId,
    pub(crate) weight: u32,
    /// IPVS's `last_weight`: the weight it was added with, or last edited to other than 0
    /// (`mh` builds its table from it, so a quiesced server keeps its slots).
    pub(crate) last_weight: u32,
    pub(crate) mac: Option<MacAddr>,
    pub(crate) neighbour: NeighbourId,
    pub(crate) active: u32,
    pub(crate) inactive: u32,
    /// Persistence templates bound to it (`persistconns`).
    pub(crate) persistent: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    /// IPVS's `IP_VS_DEST_F_OVERLOAD`.
    pub(crate) overloaded: bool,
    /// IPVS's `IP_VS_DEST_F_AVAILABLE`: cleared when the server is removed from its service.
    pub(crate) available: bool,
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

    /// Persistence templates bound to it (`PersistConn`).
    pub fn persistent_conns(&self) -> u32 {
        self.persistent
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The upper and lower connection thresholds.
    pub fn thresholds(&self) -> (u32, u32) {
        (self.u_threshold, self.l_threshold)
    }

    /// Whether it is still in its service (a removed server lingers while its connections
    /// do, and comes back with its counters if added again).
    pub fn is_available(&self) -> bool {
        self.available
    }

    /// Whether the upper threshold has been reached (`IP_VS_DEST_F_OVERLOAD`).
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Active plus inactive connections (`ip_vs_dest_totalconns`).
    pub(crate) fn total_conns(&self) -> u32 {
        self.active.saturating_add(self.inactive)
    }

    /// `ip_vs_dest_conn_overhead`: an active connection weighs 256 inactive ones, computed in
    /// the kernel's `int`.
    pub(crate) fn overhead(&self) -> i32 {
        (self.active.wrapping_shl(8)).wrapping_add(self.inactive) as i32
    }

    /// Whether schedulers may consider it at all: not overloaded, and its MAC known (a server
    /// the director cannot address is treated like an overloaded one). Weight is each
    /// scheduler's own test.
    pub(crate) fn is_usable(&self) -> bool {
        !self.overloaded && self.mac.is_some()
    }

    /// A new connection is bound (`ip_vs_bind_dest`): counted inactive, and the overload
    /// flag set when the total reaches the upper threshold.
    /// A template binds as well: it is counted in `persistconns` instead, and may set the
    /// flag too, though it is not part of the total.
    pub(crate) fn bind(&mut self, template: bool) {
        if template {
            self.persistent = self.persistent.saturating_add(1);
        } else {
            self.inactive = self.inactive.saturating_add(1);
        }
        if self.u_threshold != 0 && self.total_conns() >= self.u_threshold {
            self.overloaded = true;
        }
    }

    /// A connection goes away (`ip_vs_unbind_dest`): uncounted, and the overload flag
    /// cleared below the lower threshold, or below 3/4 of the upper one without a lower one,
    /// or at once without thresholds.
    pub(crate) fn unbind(&mut self, conn: &crate::conn::Conn) {
        if conn.is_template() {
            self.persistent = self.persistent.saturating_sub(1);
        } else if conn.is_inactive() {
            self.inactive = self.inactive.saturating_sub(1);
        } else {
            self.active = self.active.saturating_sub(1);
        }
        let total = u64::from(self.total_conns());
        let clear = if self.l_threshold != 0 {
            total < u64::from(self.l_threshold)
        } else if self.u_threshold != 0 {
            total * 4 < u64::from(self.u_threshold) * 3
        } else {
            true
        };
        if clear {
            self.overloaded = false;
        }
    }
}
