//! Rate estimation and zeroing of the statistics (spec §4.1, §4.2; `ip_vs_est.c`,
//! `ip_vs_zero_stats`).

use super::Director;
use crate::config::ConfigError;
use crate::service::ServiceId;
use crate::stats::{ESTIMATOR_INTERVAL, Stats};
use crate::time::Instant;

/// After this many missed samples every average has decayed to 0 (each sample keeps 3/4,
/// and an `i64` runs out in fewer): more would change nothing. Fewer are taken when the
/// averages stop moving sooner.
const MAX_SAMPLES: u32 = 256;

impl Director {
    /// Takes every 2-second sample due by `now`, for the totals, every service and every
    /// real server, as the kernel's estimator does for each of them. Samples missed while
    /// no time was given see the counters' whole change in the first and none after.
    pub(super) fn run_estimators(&mut self, now: Instant) {
        let Some(due) = self.next_estimate.filter(|&due| due <= now) else {
            return;
        };
        let interval = ESTIMATOR_INTERVAL.as_nanos() as u64;
        let missed = (now.as_nanos() - due.as_nanos()) / interval;
        let idle = u32::try_from(missed).unwrap_or(u32::MAX).min(MAX_SAMPLES - 1);
        let sample = |stats: &mut Stats| {
            stats.estimate();
            stats.estimate_idle(idle);
        };
        sample(&mut self.totals);
        self.services.iter_mut().for_each(|s| sample(&mut s.stats));
        self.reals.iter_mut().for_each(|r| sample(&mut r.stats));
        // The first sample after `now`, keeping the 2-second phase; past the end of time,
        // the end of time (each call there takes one sample).
        let next = (missed + 1).checked_mul(interval).and_then(|n| due.as_nanos().checked_add(n));
        self.next_estimate = Some(next.map_or(Instant::MAX, Instant::from_nanos));
    }

    /// `ipvsadm -Z`: the counters and rates of every service, every real server and the
    /// totals start again from 0. Connections, counts of active and inactive connections
    /// and the verdict counters are not touched.
    pub fn zero_stats(&mut self) {
        self.totals.zero();
        self.services.iter_mut().for_each(|s| s.stats.zero());
        self.reals.iter_mut().for_each(|r| r.stats.zero());
    }

    /// `ipvsadm -Z -t|-u service`: the counters and rates of one service and its real
    /// servers start again from 0 (the totals keep theirs, as in the kernel).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`].
    pub fn zero_service_stats(&mut self, id: ServiceId) -> Result<(), ConfigError> {
        let service = self.services.get_mut(id.index()).filter(|s| !s.removed);
        let service = service.ok_or(ConfigError::UnknownService)?;
        service.stats.zero();
        for real in &service.reals {
            if let Some(real) = self.reals.get_mut(real.index()) {
                real.stats.zero();
            }
        }
        Ok(())
    }
}
