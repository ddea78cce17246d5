//! The director's construction-time configuration and the errors of every configuration
//! call.

use crate::conn::{MAX_CAPACITY, TimeoutSettings};
use crate::mac::MacAddr;
use crate::service::{MAX_PERSISTENT_SECS, MAX_WEIGHT, ServiceKey};
use crate::time::Duration;
use crate::vlan::VlanSet;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest timeout the kernel accepts: `INT_MAX / HZ` seconds at HZ=1000.
pub const MAX_TIMEOUT_SECS: u32 = 2_147_483;

/// How a [`Director`](crate::Director) is built. Fields not set keep the kernel's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The director's MAC: the source of every frame it sends.
    pub mac: MacAddr,
    /// Connection entries, fixed for the director's life (default 1 048 576). All memory
    /// for them is reserved at construction.
    pub capacity: usize,
    /// The key of every hash a client's packets can steer (connection table, neighbour and
    /// service indexes). Give it fresh randomness, or colliding flows can be precomputed.
    pub hash_seed: [u64; 4],
    /// Linux parity mode: decrement the IPv4 TTL (fixing the header checksum) or IPv6 hop
    /// limit of forwarded packets, and drop those that arrive with 1 or less. Off by default:
    /// LVS-DR as designed changes only the MAC addresses.
    pub decrement_ttl: bool,
    /// `ipvsadm --set tcp tcpfin udp`, in seconds; 0 keeps the kernel default.
    pub timeouts: TimeoutSettings,
    /// The IPv4 source of ARP requests for real servers (0.0.0.0, an RFC 5227 probe, when
    /// `None`).
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv6 source of Neighbor Solicitations for real servers (the EUI-64 link-local
    /// address of `mac` when `None`).
    pub ipv6: Option<Ipv6Addr>,
    /// How long to wait before asking again for a real server's MAC; an answer is taken
    /// only within this time of its request.
    pub neighbour_retry: Duration,
    /// How long after a learned MAC was last confirmed it is asked for again (default 60 s;
    /// zero: never), so a real server that changes its MAC quietly is followed.
    pub neighbour_refresh: Duration,
    /// `expire_nodest_conn`: when a real server is removed, expire its connections (their
    /// next SYN or UDP datagram is scheduled afresh) instead of dropping their packets (the
    /// kernel's default, off).
    pub expire_nodest_conn: bool,
    /// When a new connection finds no real server, also answer the client with ICMP (or
    /// ICMPv6) port unreachable from the VIP, as the kernel's `ip_vs_leave` does; off by
    /// default. Replies are rate limited like the kernel's global ICMP limit (1000 per
    /// second, bursts of 50) and fetched with
    /// [`poll_reply`](crate::Director::poll_reply).
    pub icmp_port_unreachable: bool,
    /// `conn_reuse_mode` (default 1): a TCP SYN that finds a connection not controlled by a
    /// template in TIME_WAIT or CLOSE expires it and is scheduled afresh; with bit 2 set (2 or 3) also
    /// in FIN_WAIT, the state a Direct Routing connection ends in. 0: a SYN always follows
    /// the state table on the old connection.
    pub conn_reuse_mode: u8,
    /// `sloppy_tcp` (off by default): any TCP segment without RST that finds no connection
    /// is scheduled, not only a SYN (`tcp_conn_schedule`). The new entry starts in NONE and
    /// takes the first segment's transition of the state table: an ACK makes it
    /// ESTABLISHED, a FIN (with or without ACK) CLOSE, a segment with none of SYN, FIN, ACK
    /// CLOSE. With `mh`, directors behind one ECMP route that share their configuration
    /// pick the same real server for a flow, so a flow the router moves to another director
    /// keeps its server without connection sync.
    pub sloppy_tcp: bool,
    /// Answer ICMP and ICMPv6 echo requests to a VIP from the director, as a kernel holding
    /// the VIP does (on by default); off passes them to the host, which does not hold the
    /// VIP.
    pub icmp_echo: bool,
    /// `run_estimation` (on by default): sample every counter every 2 s for the rates of
    /// `--rate`. Off leaves the rates at 0 and takes the 2-second timer out of
    /// [`poll_timeout`](crate::Director::poll_timeout).
    pub run_estimation: bool,
    /// How many fragmented datagrams to VIPs are tracked at once, so that their later
    /// fragments follow the first one to its real server (default 4096; 0 drops every later
    /// fragment).
    pub fragment_capacity: usize,
    /// How long a fragmented datagram is tracked after its latest fragment (default 5 s).
    pub fragment_timeout: Duration,
    /// `expire_quiescent_template`: a persistence template whose real server has weight 0
    /// is no longer honoured (off by default: clients with a template keep reaching a
    /// quiesced server).
    pub expire_quiescent_template: bool,
    /// The VLANs the director serves (default: the untagged LAN only). Frames on any other
    /// are passed to the host, never forwarded nor answered; frames it serves leave with
    /// exactly the tags they came with.
    pub vlans: VlanSet,
    /// The lookup table size of `mh` services, one of
    /// [`MH_TABLE_SIZES`](crate::sched::MH_TABLE_SIZES) (default 4093, the kernel's
    /// `CONFIG_IP_VS_MH_TAB_INDEX` 12). Directors that are to pick alike behind one ECMP
    /// route need the same size. A change rebuilds the tables of running services.
    pub mh_table_size: u32,
    /// `lblc_expiration`: how long an `lblc` cache entry may stay unused before the
    /// half-hourly full check drops it (default 24 hours).
    pub lblc_expiration: Duration,
    /// `lblcr_expiration`: as `lblc_expiration` for `lblcr`, which also drops the most
    /// loaded member of a server set not modified for this long (default 24 hours).
    pub lblcr_expiration: Duration,
}

impl Config {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 1 << 20;
    /// The default fragment table capacity.
    pub const DEFAULT_FRAGMENT_CAPACITY: usize = 4096;
    /// The largest fragment table.
    pub const MAX_FRAGMENT_CAPACITY: usize = 1 << 20;

    /// A configuration with the kernel's defaults, for a director at `mac`, hashing with
    /// `hash_seed`.
    pub fn new(mac: MacAddr, hash_seed: [u64; 4]) -> Self {
        Self {
            mac,
            capacity: Self::DEFAULT_CAPACITY,
            hash_seed,
            decrement_ttl: false,
            timeouts: TimeoutSettings::default(),
            ipv4: None,
            ipv6: None,
            neighbour_retry: Duration::from_secs(1),
            neighbour_refresh: Duration::from_secs(60),
            expire_nodest_conn: false,
            icmp_port_unreachable: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            icmp_echo: true,
            run_estimation: true,
            fragment_capacity: Self::DEFAULT_FRAGMENT_CAPACITY,
            fragment_timeout: Duration::from_secs(5),
            expire_quiescent_template: false,
            vlans: VlanSet::untagged(),
            mh_table_size: crate::sched::DEFAULT_MH_TABLE_SIZE,
            lblc_expiration: Duration::from_secs(24 * 60 * 60),
            lblcr_expiration: Duration::from_secs(24 * 60 * 60),
        }
    }

    /// Checks every field as [`Director::new`](crate::Director::new) does.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.mac.is_unicast() {
            return Err(ConfigError::DirectorMac(self.mac));
        }
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(ConfigError::Capacity(self.capacity));
        }
        validate_timeouts(self.timeouts)?;
        if self.neighbour_retry.is_zero() {
            return Err(ConfigError::NeighbourRetry);
        }
        if self.fragment_capacity > Self::MAX_FRAGMENT_CAPACITY {
            return Err(ConfigError::FragmentCapacity(self.fragment_capacity));
        }
        if self.fragment_timeout.is_zero() && self.fragment_capacity > 0 {
            return Err(ConfigError::FragmentTimeout);
        }
        if self.conn_reuse_mode > 3 {
            return Err(ConfigError::ConnReuseMode(self.conn_reuse_mode));
        }
        if !crate::sched::MH_TABLE_SIZES.contains(&self.mh_table_size) {
            return Err(ConfigError::MhTableSize(self.mh_table_size));
        }
        for (field, d) in
            [("lblc_expiration", self.lblc_expiration), ("lblcr_expiration", self.lblcr_expiration)]
        {
            if d > Duration::from_secs(u64::from(MAX_TIMEOUT_SECS)) {
                return Err(ConfigError::Expiration { field, secs: d.as_secs() });
            }
        }
        Ok(())
    }
}

pub(crate) fn validate_timeouts(t: TimeoutSettings) -> Result<(), ConfigError> {
    for (field, secs) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
        if secs > MAX_TIMEOUT_SECS {
            return Err(ConfigError::Timeout { field, secs });
        }
    }
    Ok(())
}

/// A configuration call was refused; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `mac` is not a unicast address.
    DirectorMac(MacAddr),
    /// `capacity` is outside 1 ..= [`MAX_CAPACITY`](crate::conn::MAX_CAPACITY).
    Capacity(usize),
    /// A timeout is longer than the kernel allows.
    Timeout {
        /// `tcp`, `tcpfin` or `udp`.
        field: &'static str,
        /// The value given.
        secs: u32,
    },
    /// `neighbour_retry` is zero.
    NeighbourRetry,
    /// `conn_reuse_mode` is not 0 to 3.
    ConnReuseMode(u8),
    /// `fragment_capacity` is above [`Config::MAX_FRAGMENT_CAPACITY`].
    FragmentCapacity(usize),
    /// `fragment_timeout` is zero while fragments are tracked.
    FragmentTimeout,
    /// `mh_table_size` is not one of the kernel's primes.
    MhTableSize(u32),
    /// `lblc_expiration` or `lblcr_expiration` is longer than the kernel's sysctl holds.
    Expiration {
        /// `lblc_expiration` or `lblcr_expiration`.
        field: &'static str,
        /// The value given, in seconds.
        secs: u64,
    },
    /// Persistence with a timeout outside 1 ..= 31 days, or a prefix longer than 128 bits.
    Persistence {
        /// The timeout given, in seconds.
        timeout_secs: u32,
        /// The prefix length given.
        prefix_len: u8,
    },
    /// The service already exists.
    ServiceExists(ServiceKey),
    /// The VIP is not a unicast host address (unspecified, loopback, multicast, broadcast).
    InvalidVip(IpAddr),
    /// The VIP is the address of a real server of this director.
    VipIsReal(IpAddr),
    /// Port 0 means "any port", which IPVS allows only for persistent services.
    PortZero(ServiceKey),
    /// The service handle does not name a service of this director.
    UnknownService,
    /// The real server handle does not name a real server in a service of this director.
    UnknownReal,
    /// The real server is already in the service.
    RealExists(IpAddr),
    /// The real server's address is not a unicast host address (unspecified, loopback,
    /// multicast, broadcast, IPv6 link-local).
    InvalidRealAddr(IpAddr),
    /// The real server's address is a VIP this director serves.
    RealIsVip(IpAddr),
    /// The real server's address family differs from the VIP's (Direct Routing forwards on
    /// the same link, in the same family).
    FamilyMismatch {
        /// The service's VIP.
        vip: IpAddr,
        /// The real server's address.
        real: IpAddr,
    },
    /// A weight above [`MAX_WEIGHT`](crate::service::MAX_WEIGHT).
    Weight(u32),
    /// A real server MAC that is not unicast.
    RealMac(MacAddr),
    /// A lower threshold above the upper one (the kernel refuses it, so a lower threshold
    /// needs an upper one).
    Thresholds {
        /// The upper threshold.
        upper: u32,
        /// The lower threshold.
        lower: u32,
    },
    /// The same real server address was configured with two different MACs.
    MacConflict {
        /// The address.
        addr: IpAddr,
        /// The MAC configured first.
        existing: MacAddr,
        /// The MAC configured now.
        new: MacAddr,
    },
    /// More services or real servers than a director holds (65 535 each).
    TooMany(&'static str),
    /// A field that sizes memory reserved at construction differs from the running
    /// director's: it takes a new director (a restart).
    NeedsRestart(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DirectorMac(mac) => write!(
                f,
                "director mac {mac} is not a unicast address: use the interface's own MAC"
            ),
            Self::Capacity(n) => write!(
                f,
                "capacity {n} is out of range: give 1 to {MAX_CAPACITY} connection entries"
            ),
            Self::Timeout { field, secs } => write!(
                f,
                "timeouts.{field} = {secs} is too long: the kernel allows at most \
                 {MAX_TIMEOUT_SECS} seconds"
            ),
            Self::NeighbourRetry => {
                f.write_str("neighbour retry interval is zero: give at least one millisecond")
            }
            Self::FragmentCapacity(n) => write!(
                f,
                "fragment_capacity {n} is too large: give at most {} datagrams (0 turns \
                 fragment tracking off)",
                Config::MAX_FRAGMENT_CAPACITY
            ),
            Self::FragmentTimeout => f.write_str(
                "fragment_timeout is zero: give at least one millisecond, or set \
                 fragment_capacity to 0",
            ),
            Self::MhTableSize(size) => {
                write!(f, "mh_table_size {size} is not one of the kernel's table sizes: give")?;
                for (i, m) in crate::sched::MH_TABLE_SIZES.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    write!(f, "{m}")?;
                }
                f.write_str(" (default 4093)")
            }
            Self::Expiration { field, secs } => write!(
                f,
                "director.{field} = {secs} is too long: the kernel allows at most \
                 {MAX_TIMEOUT_SECS} seconds"
            ),
            Self::ConnReuseMode(mode) => write!(
                f,
                "conn_reuse_mode {mode} is out of range: give 0 (off), 1 (TIME_WAIT, the \
                 default) or 2/3 (also FIN_WAIT)"
            ),
            Self::Persistence { timeout_secs, prefix_len } => write!(
                f,
                "persistence {timeout_secs} s with netmask /{prefix_len} is out of range: give \
                 1 to {MAX_PERSISTENT_SECS} seconds and a prefix of at most 128 bits"
            ),
            Self::ServiceExists(key) => write!(f, "service {key} already exists: edit it instead"),
            Self::InvalidVip(ip) => write!(
                f,
                "vip {ip} is {}: a VIP is a unicast address of the LAN, which the director \
                 answers ARP for",
                crate::director::host_refusal(ip, false).unwrap_or("not a unicast host address")
            ),
            Self::VipIsReal(ip) => write!(
                f,
                "vip {ip} is a real server's address: the director would take its traffic; \
                 give the VIP an address of its own"
            ),
            Self::PortZero(key) => write!(
                f,
                "service {key}: port 0 (any port) needs persistence; give the service port"
            ),
            Self::UnknownService => f.write_str("no such service in this director"),
            Self::UnknownReal => f.write_str("no such real server in any service of this director"),
            Self::RealExists(ip) => {
                write!(f, "real server {ip} is already in this service: edit it instead")
            }
            Self::InvalidRealAddr(ip) => write!(
                f,
                "real server address {ip} is {}: give the server's own address on the LAN",
                crate::director::host_refusal(ip, true).unwrap_or("not a unicast host address")
            ),
            Self::RealIsVip(ip) => write!(
                f,
                "real server address {ip} is a VIP of this director: its packets would come \
                 back to the director; give the server's own address (the VIP goes on its lo)"
            ),
            Self::FamilyMismatch { vip, real } => write!(
                f,
                "real server {real} and vip {vip} are of different families: direct routing \
                 needs real servers of the VIP's family"
            ),
            Self::Weight(w) => write!(f, "weight {w} is out of range: give 0 to {MAX_WEIGHT}"),
            Self::RealMac(mac) => write!(
                f,
                "real server mac {mac} is not a unicast address: give the server's interface MAC"
            ),
            Self::Thresholds { upper, lower } => write!(
                f,
                "l_threshold {lower} is above u_threshold {upper}: the lower threshold must not \
                 exceed the upper one (set u_threshold too)"
            ),
            Self::MacConflict { addr, existing, new } => write!(
                f,
                "real server {addr} is configured with mac {existing} and {new}: one address, \
                 one MAC"
            ),
            Self::NeedsRestart(field) => write!(
                f,
                "director.{field} cannot change while the director runs (its memory is \
                 reserved at start): restart to apply it"
            ),
            Self::TooMany(what) => write!(f, "too many {what}: a director holds at most 65535"),
        }
    }
}

impl core::error::Error for ConfigError {}
