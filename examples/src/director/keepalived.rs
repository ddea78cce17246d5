//! The checkers of a keepalived configuration in the running director: one thread per
//! checker of each real server (once for a `virtual_server group`, whatever its number of
//! addresses); each change of a checker's state goes through the
//! configuration's [`Pool`] (keepalived's rules: remove or inhibit, quorum, sorry server),
//! and the service's table becomes what the pool wants, in every worker in the same step.

use crate::health::{self, HealthEvent};
use crate::keepalived::{Plan, Pool, sync_service};
use crate::workers::Workers;
use dr_core::{MacAddr, ServiceKey};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use tracing::{info, warn};

/// Which checker: service, real server and checker, by their places in the [`Plan`].
type CheckerKey = (usize, usize, usize);

/// The running checkers and the pool they feed.
pub(crate) struct Checkers {
    plan: Arc<Plan>,
    /// The checkers' states.
    pub(crate) pool: Pool,
    neighbours: Arc<HashMap<IpAddr, MacAddr>>,
    events: Receiver<HealthEvent<CheckerKey>>,
    stop: Arc<AtomicBool>,
}

impl Checkers {
    /// Starts every checker of `plan`, each in the state `pool` has for it.
    pub(crate) fn start(
        plan: Arc<Plan>,
        pool: Pool,
        neighbours: Arc<HashMap<IpAddr, MacAddr>>,
    ) -> Result<Self, String> {
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        // A group's real servers once, by its first address's checkers.
        for (key, checker) in plan.checkers() {
            health::spawn(
                key,
                checker.target,
                checker.check.clone(),
                None,
                pool.checker_up(key),
                tx.clone(),
                Arc::clone(&stop),
            )
            .map_err(|e| {
                format!(
                    "starting the checker of {} (virtual_server {}): {e}",
                    checker.target,
                    plan.services[key.0].key()
                )
            })?;
        }
        Ok(Self { plan, pool, neighbours, events, stop })
    }

    /// Applies the checkers' changes since the last call, to the checked service and every
    /// address of its group.
    pub(crate) fn apply(&mut self, workers: &Workers) {
        while let Ok(event) = self.events.try_recv() {
            let (head, r, _) = event.key;
            let group: Vec<usize> = self.plan.checked_with(head).collect();
            let before: Vec<(Option<bool>, bool)> = group
                .iter()
                .map(|&s| {
                    let real = self.plan.services[s].reals.get(r).map(|r| r.addr);
                    (real.map(|a| self.pool.alive(s, a)), self.pool.quorum_up(s))
                })
                .collect();
            let before_tables: Vec<_> =
                group.iter().map(|&s| self.pool.table(&self.plan, s)).collect();
            self.pool.record(&self.plan, event.key, event.healthy, event.weight);
            for ((&s, (was_alive, had_quorum)), old_table) in
                group.iter().zip(before).zip(before_tables)
            {
                let vs = &self.plan.services[s];
                let service = vs.key();
                if let (Some(real), Some(was_alive)) = (vs.reals.get(r), was_alive) {
                    let addr = real.addr;
                    match (was_alive, self.pool.alive(s, addr), real.inhibit) {
                        (false, true, _) => {
                            info!(%service, real = %addr, "real server is up: added");
                        }
                        (true, false, true) => {
                            warn!(%service, real = %addr, "real server is down: inhibited (weight 0)");
                        }
                        (true, false, false) => {
                            warn!(%service, real = %addr, "real server is down: removed");
                        }
                        _ => {}
                    }
                }
                match (had_quorum, self.pool.quorum_up(s)) {
                    (true, false) => warn!(%service, "quorum lost"),
                    (false, true) => info!(%service, "quorum gained"),
                    _ => {}
                }
                let entries = self.pool.table(&self.plan, s);
                if entries != old_table {
                    self.sync(workers, service, entries);
                }
            }
        }
    }

    /// Makes `service`'s table `entries` in every worker.
    fn sync(&self, workers: &Workers, service: ServiceKey, entries: Vec<crate::keepalived::Entry>) {
        let neighbours = Arc::clone(&self.neighbours);
        for result in workers.each(move |_, d, _| sync_service(d, service, &entries, &neighbours)) {
            match result {
                Some(Ok(_)) => {}
                Some(Err(e)) => warn!(%service, "health change not applied: {e}"),
                None => {
                    warn!(%service, "health change not applied: a worker did not answer");
                }
            }
        }
    }

    /// The real servers that are not alive, by service and address.
    pub(crate) fn down(&self) -> HashSet<(ServiceKey, IpAddr)> {
        let mut down = HashSet::new();
        for (s, vs) in self.plan.services.iter().enumerate() {
            for real in &vs.reals {
                if !self.pool.alive(s, real.addr) {
                    down.insert((vs.key(), real.addr));
                }
            }
        }
        down
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
