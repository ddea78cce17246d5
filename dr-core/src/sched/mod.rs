//! Schedulers: which real server gets a new connection.
//!
//! One module per scheduler, after IPVS's `ip_vs_<name>.c` files, dispatched through one
//! enum (no `Box<dyn>`: no allocation, and the calls inline). Each scheduler sees the
//! service's real servers in the kernel's list order (most recently added first), and keeps
//! whatever position it needs across picks. The change hooks mirror `ip_vs_scheduler`'s
//! `add_dest` / `del_dest` / `upd_dest`.

mod lc;
mod nq;
mod rr;
mod sed;
mod sh;
mod weighted;
mod wlc;
mod wrr;

use crate::flow::FlowKey;
use crate::service::{RealId, RealServer};
use core::fmt;
use core::str::FromStr;

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
}

impl SchedulerKind {
    /// Every scheduler.
    pub const ALL: &'static [Self] =
        &[Self::Rr, Self::Wrr, Self::Lc, Self::Wlc, Self::Sh, Self::Sed, Self::Nq];

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

/// Scheduler flags (`ipvsadm -b`); only `sh` reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// `sh-port`: hash the client port too (`IP_VS_SVC_F_SCHED_SH_PORT`).
    pub sh_port: bool,
    /// `sh-fallback`: if the hashed server is unavailable, probe onwards
    /// (`IP_VS_SVC_F_SCHED_SH_FALLBACK`).
    pub sh_fallback: bool,
}

impl SchedFlags {
    /// No flags.
    pub const NONE: Self = Self { sh_port: false, sh_fallback: false };
}

impl fmt::Display for SchedFlags {
    /// `sh-fallback,sh-port`, as `ipvsadm -L` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (set, name) in [(self.sh_fallback, "sh-fallback"), (self.sh_port, "sh-port")] {
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
        }
    }

    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Self::Sh(mine), Self::Sh(theirs)) => mine.clone_from(theirs),
            (mine, theirs) => *mine = theirs.clone(),
        }
    }
}

impl Scheduler {
    /// A scheduler for a service with these real servers (`init_service`).
    pub(crate) fn new(kind: SchedulerKind, flags: SchedFlags, dests: &Dests<'_>) -> Self {
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
        }
    }

    /// Picks the position (in list order) of the real server for a new connection.
    pub(crate) fn schedule(&mut self, dests: &Dests<'_>, flow: &FlowKey) -> Option<usize> {
        match self {
            Self::Rr(s) => s.schedule(dests),
            Self::Wrr(s) => s.schedule(dests),
            Self::Lc => lc::schedule(dests),
            Self::Wlc => wlc::schedule(dests),
            Self::Sh(s) => s.schedule(dests, flow),
            Self::Sed => sed::schedule(dests),
            Self::Nq => nq::schedule(dests),
        }
    }

    /// A real server was added at the head of the list (`add_dest`).
    pub(crate) fn added(&mut self, dests: &Dests<'_>) {
        match self {
            Self::Rr(s) => s.added(),
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Lc | Self::Wlc | Self::Sed | Self::Nq => {}
        }
    }

    /// The real server at `position` left the list; `dests` is the list without it
    /// (`del_dest`).
    pub(crate) fn removed(&mut self, position: usize, dests: &Dests<'_>) {
        match self {
            Self::Rr(s) => s.removed(position),
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Lc | Self::Wlc | Self::Sed | Self::Nq => {}
        }
    }

    /// The service's flags changed, the scheduler did not (`ipvsadm -E -b`): sh reads them
    /// at every pick, as the kernel reads `svc->flags`.
    pub(crate) fn set_flags(&mut self, flags: SchedFlags) {
        if let Self::Sh(s) = self {
            s.set_flags(flags.sh_port, flags.sh_fallback);
        }
    }

    /// A real server's weight or thresholds changed (`upd_dest`).
    pub(crate) fn edited(&mut self, dests: &Dests<'_>) {
        match self {
            Self::Wrr(s) => s.changed(dests),
            Self::Sh(s) => s.reassign(dests),
            Self::Rr(_) | Self::Lc | Self::Wlc | Self::Sed | Self::Nq => {}
        }
    }
}

#[cfg(test)]
mod tests;
