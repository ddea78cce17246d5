//! Schedulers: which real server gets a new connection.
//!
//! One module per scheduler, after IPVS's `ip_vs_<name>.c` files, dispatched through one
//! enum (no `Box<dyn>`: no allocation, and the calls inline). Each scheduler sees the
//! service's real servers in the kernel's list order (most recently added first), and keeps
//! whatever position it needs across picks. The change hooks mirror `ip_vs_scheduler`'s
//! `add_dest` / `del_dest` / `upd_dest`.

mod rr;

use crate::flow::FlowKey;
use crate::service::{RealId, RealServer};
use core::fmt;
use core::str::FromStr;

/// The scheduling algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchedulerKind {
    /// `rr`: round robin.
    Rr,
}

impl SchedulerKind {
    /// Every scheduler.
    pub const ALL: &'static [Self] = &[Self::Rr];

    /// The `ipvsadm -s` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
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

    /// Whether the real server at `position` may be picked.
    pub(crate) fn is_schedulable(&self, position: usize) -> bool {
        self.get(position).is_some_and(RealServer::is_schedulable)
    }
}

/// A scheduler with its state.
#[derive(Clone, Debug)]
pub(crate) enum Scheduler {
    Rr(rr::RoundRobin),
}

impl Scheduler {
    pub(crate) fn new(kind: SchedulerKind) -> Self {
        match kind {
            SchedulerKind::Rr => Self::Rr(rr::RoundRobin::default()),
        }
    }

    pub(crate) fn kind(&self) -> SchedulerKind {
        match self {
            Self::Rr(_) => SchedulerKind::Rr,
        }
    }

    /// Picks the position (in list order) of the real server for a new connection.
    pub(crate) fn schedule(&mut self, dests: &Dests<'_>, _flow: &FlowKey) -> Option<usize> {
        match self {
            Self::Rr(s) => s.schedule(dests),
        }
    }

    /// A real server was added at the head of the list (position 0).
    pub(crate) fn real_added(&mut self, _dests: &Dests<'_>) {
        match self {
            Self::Rr(s) => s.real_added(),
        }
    }
}
