//! Schedulers: which real server gets a new connection.
//!
//! One module per scheduler, after IPVS's `ip_vs_<name>.c` files, dispatched through one
//! enum (no `Box<dyn>`: no allocation, and the calls inline). Each scheduler sees the
//! service's real servers in the kernel's list order (most recently added first), and keeps
//! whatever position it needs across picks. The change hooks mirror `ip_vs_scheduler`'s
//! `add_dest` / `del_dest` / `upd_dest`; tables (sh, dh, mh) are built there, at
//! configuration time, never on the packet path.
//!
//! All fourteen of the kernel's: rr, wrr, lc, wlc, sh, sed, nq, mh, dh, fo, ovf, lblc and
//! lblcr pick for pick as the kernel does; twos is random and follows the kernel's
//! distribution from a generator seeded by the director. Each module's docs give worked
//! examples computed from the kernel code, and the tests check them. What Direct Routing
//! changes: a real server's port is the service's (mh hashes it), and a packet's
//! destination is always its service's VIP, so dh sends a whole service to one server and
//! lblc and lblcr cache one entry per service.

mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod weighted;
mod wlc;
mod wrr;

use crate::flow::FlowKey;
use crate::service::{RealId, RealServer, ServiceId};
use crate::time::{Duration, Instant};
use core::fmt;
use core::str::FromStr;

pub use mh::{DEFAULT_MH_TABLE_SIZE, MH_TABLE_SIZES};

#[cfg(test)]
use mh::gcd as mh_gcd;
#[cfg(test)]
use sh::hash_32_8;

/// The scheduling algorithms, pick for pick as in Linux IPVS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchedulerKind {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
    /// `lc`: least connection.
    Lc,
    /// `wlc`: weighted least connection, the default as in ipvsadm.
    #[default]
    Wlc,
    /// `sh`: source hashing.
    Sh,
    /// `sed`: shortest expected delay.
    Sed,
    /// `nq`: never queue.
    Nq,
    /// `mh`: Maglev hashing of the client address (and port with `mh-port`).
    Mh,
    /// `dh`: destination hashing (for Direct Routing, of the VIP: one server per service).
    Dh,
    /// `fo`: weighted failover, the available server of highest weight.
    Fo,
    /// `ovf`: overflow, the server of highest weight until its active connections exceed
    /// its weight.
    Ovf,
    /// `lblc`: locality-based least-connection (for Direct Routing, one cached server per
    /// service until it is overloaded).
    Lblc,
    /// `lblcr`: locality-based least-connection with replication (a cached set of servers).
    Lblcr,
    /// `twos`: weighted random two choices. Random: its picks follow the kernel's
    /// distribution, from a generator seeded by the director's hash seed, not the kernel's
    /// own draws.
    Twos,
}

impl SchedulerKind {
    /// Every scheduler.
    pub const ALL: &'static [Self] = &[
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Mh,
        Self::Dh,
        Self::Fo,
        Self::Ovf,
        Self::Lblc,
        Self::Lblcr,
        Self::Twos,
    ];

    /// The `ipvsadm -s` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sh => "sh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Mh => "mh",
            Self::Dh => "dh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Twos => "twos",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not a scheduler this director implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownScheduler;

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown scheduler: expected one of")?;
        for kind in SchedulerKind::ALL {
            write!(f, " {kind}")?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownScheduler {}

impl FromStr for SchedulerKind {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|k| k.name() == s).ok_or(UnknownScheduler)
    }
}

/// Scheduler flags (`ipvsadm -b`): the kernel's three scheduler bits
/// (`IP_VS_SVC_F_SCHED1..3`). `sh` reads the first two as `sh-fallback` and `sh-port`, `mh`
/// as `mh-fallback` and `mh-port`; ipvsadm refuses an `sh-` flag for any scheduler but `sh`,
/// and an `mh-` flag for any but `mh` ([`SchedFlags::with_named`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// `sh-port`: hash the client port too (`IP_VS_SVC_F_SCHED_SH_PORT`, the second bit,
    /// `flag-2` for other schedulers).
    pub sh_port: bool,
    /// `sh-fallback`: if the hashed server is unavailable, probe onwards
    /// (`IP_VS_SVC_F_SCHED_SH_FALLBACK`, the first bit, `flag-1` for other schedulers).
    pub sh_fallback: bool,
    /// `mh-port`: hash the client port too (`IP_VS_SVC_F_SCHED_MH_PORT`, the second bit).
    pub mh_port: bool,
    /// `mh-fallback`: if the hashed server is unavailable, re-hash until an available one
    /// (`IP_VS_SVC_F_SCHED_MH_FALLBACK`, the first bit).
    pub mh_fallback: bool,
    /// The third bit (`flag-3`), which no scheduler reads.
    pub flag_3: bool,
}

/// Why a scheduler flag name was not taken (`parse_sched_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedFlagError {
    /// Not a flag name ipvsadm knows: `flag-1` to `flag-3`, `sh-fallback`, `sh-port`,
    /// `mh-fallback`, `mh-port`.
    Unknown,
    /// A flag of another scheduler (`sh-port` on an `rr` service, `mh-port` on `sh`).
    Incompatible,
}

impl fmt::Display for SchedFlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unknown => {
                "not a scheduler flag: give sh-fallback or sh-port (sh), mh-fallback or mh-port \
                 (mh), or flag-1, flag-2, flag-3"
            }
            Self::Incompatible => {
                "incompatible scheduler flag: sh- flags are for sh, mh- flags for mh (flag-1, \
                 flag-2 for others)"
            }
        })
    }
}

impl core::error::Error for SchedFlagError {}

impl SchedFlags {
    /// No flags.
    pub const NONE: Self = Self {
        sh_port: false,
        sh_fallback: false,
        mh_port: false,
        mh_fallback: false,
        flag_3: false,
    };

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        !(self.sh_port || self.sh_fallback || self.mh_port || self.mh_fallback || self.flag_3)
    }

    /// These flags and the one named, as ipvsadm's `parse_sched_flags` takes names for a
    /// service of `scheduler`: `flag-1`, `flag-2`, `flag-3` for any (the first two are
    /// `mh`'s fallback and port for `mh`, `sh`'s for any other), `sh-fallback` and
    /// `sh-port` for `sh` only, `mh-fallback` and `mh-port` for `mh` only.
    ///
    /// # Errors
    ///
    /// [`SchedFlagError`] for an unknown name or a flag of another scheduler.
    pub fn with_named(
        mut self,
        name: &str,
        scheduler: SchedulerKind,
    ) -> Result<Self, SchedFlagError> {
        let (sh, mh) = (scheduler == SchedulerKind::Sh, scheduler == SchedulerKind::Mh);
        match name {
            "flag-1" if mh => self.mh_fallback = true,
            "flag-2" if mh => self.mh_port = true,
            "flag-1" => self.sh_fallback = true,
            "flag-2" => self.sh_port = true,
            "flag-3" => self.flag_3 = true,
            "sh-fallback" | "sh-port" if !sh => return Err(SchedFlagError::Incompatible),
            "mh-fallback" | "mh-port" if !mh => return Err(SchedFlagError::Incompatible),
            "sh-fallback" => self.sh_fallback = true,
            "sh-port" => self.sh_port = true,
            "mh-fallback" => self.mh_fallback = true,
            "mh-port" => self.mh_port = true,
            _ => return Err(SchedFlagError::Unknown),
        }
        Ok(self)
    }

    /// Sets a flag by name, as [`with_named`](Self::with_named) takes it.
    ///
    /// # Errors
    ///
    /// As [`with_named`](Self::with_named); nothing changes then.
    pub fn set(&mut self, name: &str, scheduler: SchedulerKind) -> Result<(), SchedFlagError> {
        *self = self.with_named(name, scheduler)?;
        Ok(())
    }

    /// Whether every flag set can belong to a service of `scheduler` (the `sh-` bits on
    /// `mh`, or the `mh-` ones elsewhere, cannot).
    ///
    /// # Errors
    ///
    /// [`SchedFlagError::Incompatible`].
    pub fn check(&self, scheduler: SchedulerKind) -> Result<(), SchedFlagError> {
        let mh = scheduler == SchedulerKind::Mh;
        let foreign =
            if mh { self.sh_port || self.sh_fallback } else { self.mh_port || self.mh_fallback };
        if foreign { Err(SchedFlagError::Incompatible) } else { Ok(()) }
    }

    /// The flags set that a service of `scheduler` does not read, named as ipvsadm names
    /// them for it (`flag-1`, `flag-2`, `flag-3`). The kernel takes any of the three bits for
    /// any scheduler and keeps them on the service, but only `sh` (`ip_vs_sh.c`) and `mh`
    /// (`ip_vs_mh.c`) read the first two, and no scheduler reads the third.
    pub fn ignored_by(self, scheduler: SchedulerKind) -> impl Iterator<Item = &'static str> {
        let reads = matches!(scheduler, SchedulerKind::Sh | SchedulerKind::Mh);
        let first = (self.sh_fallback || self.mh_fallback) && !reads;
        let second = (self.sh_port || self.mh_port) && !reads;
        [(first, "flag-1"), (second, "flag-2"), (self.flag_3, "flag-3")]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name)
    }

    /// The flags as ipvsadm's `print_sched_flags` names them for a service of
    /// `scheduler`: `sh-fallback,sh-port` for `sh`, `mh-fallback,mh-port` for `mh` (which
    /// have no name for the third bit, so print nothing for it), `flag-1,flag-2,flag-3` for
    /// the others.
    pub const fn names(self, scheduler: SchedulerKind) -> FlagNames {
        FlagNames { flags: self, scheduler }
    }
}

/// [`SchedFlags::names`], ready to `Display`.
#[derive(Clone, Copy, Debug)]
pub struct FlagNames {
    flags: SchedFlags,
    scheduler: SchedulerKind,
}

impl fmt::Display for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.flags;
        let named: [(bool, &str); 3] = match self.scheduler {
            SchedulerKind::Sh => {
                [(s.sh_fallback, "sh-fallback"), (s.sh_port, "sh-port"), (false, "")]
            }
            SchedulerKind::Mh => {
                [(s.mh_fallback, "mh-fallback"), (s.mh_port, "mh-port"), (false, "")]
            }
            _ => [
                (s.sh_fallback || s.mh_fallback, "flag-1"),
                (s.sh_port || s.mh_port, "flag-2"),
                (s.flag_3, "flag-3"),
            ],
        };
        let mut first = true;
        for (_, name) in named.iter().filter(|(set, _)| *set) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Display for SchedFlags {
    /// The flags with their schedulers' names (`sh-fallback,sh-port,mh-fallback,mh-port`,
    /// and `flag-3`); [`SchedFlags::names`] names them as ipvsadm does for a scheduler.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (set, name) in [
            (self.sh_fallback, "sh-fallback"),
            (self.sh_port, "sh-port"),
            (self.mh_fallback, "mh-fallback"),
            (self.mh_port, "mh-port"),
            (self.flag_3, "flag-3"),
        ] {
            if set {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A service's real servers in list order, as a scheduler sees them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dests<'a> {
    pub(crate) order: &'a [RealId],
    pub(crate) reals: &'a [RealServer],
}

impl<'a> Dests<'a> {
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn get(&self, position: usize) -> Option<&'a RealServer> {
        self.order.get(position).and_then(|id| self.reals.get(id.index()))
    }

    /// Each position with its server, in list order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &'a RealServer)> + '_ {
        let reals = self.reals;
        self.order.iter().enumerate().filter_map(move |(p, id)| Some((p, reals.get(id.index())?)))
    }

    /// The real server behind a handle (in the list or removed from it).
    pub(crate) fn real(&self, id: RealId) -> Option<&'a RealServer> {
        self.reals.get(id.index())
    }

    /// Not overloaded and addressable.
    pub(crate) fn usable(&self, position: usize) -> bool {
        self.get(position).is_some_and(RealServer::is_usable)
    }

    pub(crate) fn weight(&self, position: usize) -> u32 {
        self.get(position).map_or(0, RealServer::weight)
    }

    pub(crate) fn active(&self, position: usize) -> u32 {
        self.get(position).map_or(0, RealServer::active_conns)
    }

    pub(crate) fn overhead(&self, position: usize) -> i32 {
        self.get(position).map_or(0, RealServer::overhead)
    }
}

/// What a scheduler is built with besides its servers: the service's port (a real server's
/// port in Direct Routing), the director's settings for the schedulers that have any, and
/// the director's time and seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SchedParams {
    /// The service port: `dest->port` of every real server in Direct Routing.
    pub(crate) port: u16,
    /// `mh`'s lookup table size, one of [`MH_TABLE_SIZES`].
    pub(crate) mh_table_size: u32,
    /// `lblc_expiration` and `lblcr_expiration`.
    pub(crate) lblc_expiration: Duration,
    pub(crate) lblcr_expiration: Duration,
    /// The service.
    pub(crate) service: ServiceId,
    /// The director's time: when the scheduler starts, or the settings change.
    pub(crate) now: Instant,
    /// `twos`'s generator seed, from the director's hash seed and the service.
    pub(crate) seed: u64,
}

impl SchedParams {
    /// The parameters of `service` on `port` under `config` at `now`.
    pub(crate) fn of(config: &crate::Config, service: ServiceId, port: u16, now: Instant) -> Self {
        Self {
            port,
            mh_table_size: config.mh_table_size,
            lblc_expiration: config.lblc_expiration,
            lblcr_expiration: config.lblcr_expiration,
            service,
            now,
            seed: twos::seed(config.hash_seed, service.index()),
        }
    }
}

/// A scheduler with its state.
#[derive(Debug)]
#[cfg_attr(not(fuzzing), derive(Clone))]
pub(crate) enum Scheduler {
    Rr(rr::RoundRobin),
    Wrr(wrr::WeightedRoundRobin),
    Lc,
    Wlc,
    /// Boxed: its 256-bucket table is built at configuration time, never on the packet path.
    Sh(alloc::boxed::Box<sh::SourceHash>),
    Sed,
    Nq,
    Mh(mh::Maglev),
    /// Boxed as sh is.
    Dh(alloc::boxed::Box<dh::DestinationHash>),
    Fo,
    Ovf,
    Lblc(lblc::Lblc),
    Lblcr(lblcr::Lblcr),
    Twos(twos::Twos),
}

/// As derived, except that a copy of source hashing into source hashing reuses its table
/// (see `fuzzing_clone!`).
#[cfg(fuzzing)]
impl Clone for Scheduler {
    fn clone(&self) -> Self {
        match self {
            Self::Rr(s) => Self::Rr(s.clone()),
            Self::Wrr(s) => Self::Wrr(s.clone()),
            Self::Lc => Self::Lc,
            Self::Wlc => Self::Wlc,
            Self::Sh(s) => Self::Sh(s.clone()),
            Self::Sed => Self::Sed,
            Self::Nq => Self::Nq,
            Self::Mh(s) => Self::Mh(s.clone()),
            Self::Dh(s) => Self::Dh(s.clone()),
            Self::Fo => Self::Fo,
            Self::Ovf => Self::Ovf,
            Self::Lblc(s) => Self::Lblc(s.clone()),
            Self::Lblcr(s) => Self::Lblcr(s.clone()),
            Self::Twos(s) => Self::Twos(s.clone()),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Self::Sh(mine), Self::Sh(theirs)) => mine.clone_from(theirs),
            (Self::Mh(mine), Self::Mh(theirs)) => mine.clone_from(theirs),
            (Self::Dh(mine), Self::Dh(theirs)) => mine.clone_from(theirs),
            (mine, theirs) => *mine = theirs.clone(),
        }
    }
}

impl Scheduler {
    /// A scheduler for a service with these real servers (`init_service`).
    pub(crate) fn new(
        kind: SchedulerKind,
        flags: SchedFlags,
        params: &SchedParams,
        dests: &Dests<'_>,
    ) -> Self {
        match kind {
            SchedulerKind::Rr => Self::Rr(rr::RoundRobin::default()),
            SchedulerKind::Wrr => Self::Wrr(wrr::WeightedRoundRobin::new(dests)),
            SchedulerKind::Lc => Self::Lc,
            SchedulerKind::Wlc => Self::Wlc,
            SchedulerKind::Sh => Self::Sh(alloc::boxed::Box::new(sh::SourceHash::new(
                dests,
                flags.sh_port,
                flags.sh_fallback,
            ))),
            SchedulerKind::Sed => Self::Sed,
            SchedulerKind::Nq => Self::Nq,
            SchedulerKind::Mh => Self::Mh(mh::Maglev::new(params, flags, dests)),
            SchedulerKind::Dh => Self::Dh(alloc::boxed::Box::new(dh::DestinationHash::new(dests))),
            SchedulerKind::Fo => Self::Fo,
            SchedulerKind::Ovf => Self::Ovf,
            SchedulerKind::Lblc => Self::Lblc(lblc::Lblc::new(params)),
            SchedulerKind::Lblcr => Self::Lblcr(lblcr::Lblcr::new(params, dests)),
            SchedulerKind::Twos => Self::Twos(twos::Twos::new(params.seed)),
        }
    }

    pub(crate) fn kind(&self) -> SchedulerKind {
        match self {
            Self::Rr(_) => SchedulerKind::Rr,
            Self::Wrr(_) => SchedulerKind::Wrr,
            Self::Lc => SchedulerKind::Lc,
            Self::Wlc => SchedulerKind::Wlc,
            Self::Sh(_) => SchedulerKind::Sh,
            Self::Sed => SchedulerKind::Sed,
            Self::Nq => SchedulerKind::Nq,
            Self::Mh(_) => SchedulerKind::Mh,
            Self::Dh(_) => SchedulerKind::Dh,
            Self::Fo => SchedulerKind::Fo,
            Self::Ovf => SchedulerKind::Ovf,
            Self::Lblc(_) => SchedulerKind::Lblc,
            Self::Lblcr(_) => SchedulerKind::Lblcr,
            Self::Twos(_) => SchedulerKind::Twos,
        }
    }

    /// Picks the real server for a new connection of `flow` at `now` (the director's time).
    pub(crate) fn schedule(
        &mut self,
        dests: &Dests<'_>,
        flow: &FlowKey,
        now: Instant,
    ) -> Option<RealId> {
        let position = match self {
            Self::Rr(s) => s.schedule(dests),
            Self::Wrr(s) => s.schedule(dests),
            Self::Lc => lc::schedule(dests),
            Self::Wlc => wlc::schedule(dests),
            Self::Sh(s) => s.schedule(dests, flow),
            Self::Sed => sed::schedule(dests),
            Self::Nq => nq::schedule(dests),
            Self::Mh(s) => return s.schedule(dests, flow),
            Self::Dh(s) => s.schedule(dests, flow),
            Self::Fo => fo::schedule(dests),
            Self::Ovf => ovf::schedule(dests),
            Self::Lblc(s) => return s.schedule(dests, flow, now),
            Self::Lblcr(s) => return s.schedule(dests, flow, now),
            Self::Twos(s) => s.schedule(dests),
        };
        dests.order.get(position?).copied()
    }

    /// A real server was added at the head of the list (`add_dest`).
    pub(crate) fn added(&mut self, dests: &Dests<'_>) {
        match self {
            Self::Rr(s) => s.added(),
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Mh(s) => s.reassign(dests),
            Self::Dh(s) => s.reassign(dests),
            // No add_dest hook in the kernel: lblcr only makes room for the new member.
            Self::Lblcr(s) => s.reserve(dests),
            Self::Lc
            | Self::Wlc
            | Self::Sed
            | Self::Nq
            | Self::Fo
            | Self::Ovf
            | Self::Lblc(_)
            | Self::Twos(_) => {}
        }
    }

    /// The real server at `position` left the list; `dests` is the list without it
    /// (`del_dest`).
    pub(crate) fn removed(&mut self, position: usize, dests: &Dests<'_>) {
        match self {
            Self::Rr(s) => s.removed(position),
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Mh(s) => s.reassign(dests),
            Self::Dh(s) => s.reassign(dests),
            // Removed servers stay in lblc's and lblcr's caches, as the kernel holds them.
            Self::Lc
            | Self::Wlc
            | Self::Sed
            | Self::Nq
            | Self::Fo
            | Self::Ovf
            | Self::Lblc(_)
            | Self::Lblcr(_)
            | Self::Twos(_) => {}
        }
    }

    /// The service's flags changed, the scheduler did not (`ipvsadm -E -b`): sh and mh
    /// read them at every pick, as the kernel reads `svc->flags`.
    pub(crate) fn set_flags(&mut self, flags: SchedFlags) {
        match self {
            Self::Sh(s) => s.set_flags(flags.sh_port, flags.sh_fallback),
            Self::Mh(s) => s.set_flags(flags),
            _ => {}
        }
    }

    /// A real server's weight or thresholds changed (`upd_dest`).
    pub(crate) fn edited(&mut self, dests: &Dests<'_>) {
        match self {
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Mh(s) => s.reassign(dests),
            // dh has no upd_dest hook: weights do not place servers in its table.
            Self::Rr(_)
            | Self::Lc
            | Self::Wlc
            | Self::Sed
            | Self::Nq
            | Self::Dh(_)
            | Self::Fo
            | Self::Ovf
            | Self::Lblc(_)
            | Self::Lblcr(_)
            | Self::Twos(_) => {}
        }
    }

    /// The director's settings changed (a reload): `mh` rebuilds its table at a new size,
    /// lblc and lblcr take their expiration from `params.now` on.
    pub(crate) fn reconfigure(&mut self, params: &SchedParams, dests: &Dests<'_>) {
        match self {
            Self::Mh(s) => s.resize(params.mh_table_size, dests),
            Self::Lblc(s) => s.set_expiration(params.now, params.lblc_expiration),
            Self::Lblcr(s) => s.set_expiration(params.now, params.lblcr_expiration),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
