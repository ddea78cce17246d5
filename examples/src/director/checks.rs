//! The real servers' health in the running director: one checker per server, quiescing
//! (weight 0) a server that goes down and giving back its weight when it recovers, and
//! keeping it at 0 through control commands and reloads; the MACs that the checks through
//! the VIP, and the workers, share.

use crate::control;
use crate::health::{self, HealthCheck, HealthEvent, Probe};
use crate::workers::Workers;
use dr_core::{Director, FrameIo, RealEdit, RealId, ServiceKey};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use tracing::{info, warn};

/// A real server to check.
pub(crate) struct Target {
    id: RealId,
    key: ServiceKey,
    addr: IpAddr,
    weight: u32,
    check: HealthCheck,
}

/// The real servers the checks cover, read from one director (all workers' are alike).
fn targets(director: &Director, checks: &[(dr_core::ServiceId, HealthCheck)]) -> Vec<Target> {
    let mut targets = Vec::new();
    for (service, check) in checks {
        let Some(svc) = director.service(*service) else { continue };
        let key = svc.key();
        if check.probe == Probe::None || key.port == 0 {
            continue;
        }
        for &id in svc.reals() {
            if let Some(real) = director.real(id) {
                let (addr, weight) = (real.addr(), real.weight());
                targets.push(Target { id, key, addr, weight, check: check.clone() });
            }
        }
    }
    targets
}

/// Sets a real server's weight in every worker's director.
pub(crate) fn set_weight(workers: &Workers, id: RealId, weight: u32) -> Result<(), String> {
    for result in workers.each(move |_, d, _| {
        let real = d.real(id).ok_or(dr_core::ConfigError::UnknownReal)?;
        d.edit_real(id, RealEdit::of(real).with_weight(weight))
    }) {
        result.ok_or("a worker did not answer")?.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The health checkers, the weights to give back to servers that recover, and the servers
/// now down.
pub(crate) struct Health {
    events: Receiver<HealthEvent<RealId>>,
    weights: HashMap<RealId, u32>,
    pub(crate) down: HashSet<(ServiceKey, IpAddr)>,
    /// The weights the file or a control command gave the servers that are down now: what
    /// they get back when they recover (the directors hold them at 0 meanwhile).
    pub(crate) held: HashMap<(ServiceKey, IpAddr), u32>,
    names: HashMap<RealId, (ServiceKey, IpAddr)>,
    stop: Arc<AtomicBool>,
}

impl Health {
    /// One checker thread per real server of every service with checks. Servers in `down`
    /// (down before a reload) stay quiesced until their checks pass again.
    pub(crate) fn start(
        workers: &Workers,
        checks: Vec<(dr_core::ServiceId, HealthCheck)>,
        down: HashSet<(ServiceKey, IpAddr)>,
        held: HashMap<(ServiceKey, IpAddr), u32>,
        interface: &str,
        macs: &health::Macs,
    ) -> Result<Self, String> {
        let targets = workers
            .each(move |_, d, _| targets(d, &checks))
            .into_iter()
            .next()
            .flatten()
            .ok_or("the worker did not answer")?;
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (mut weights, mut still_down, mut names) =
            (HashMap::new(), HashSet::new(), HashMap::new());
        let mut still_held = HashMap::new();
        for t in targets {
            let name = (t.key, t.addr);
            let healthy = !down.contains(&name);
            // A server that is down is held at 0: its weight to give back is the one held.
            let weight =
                if healthy { t.weight } else { held.get(&name).copied().unwrap_or(t.weight) };
            weights.insert(t.id, weight);
            names.insert(t.id, name);
            if !healthy {
                still_down.insert(name);
                still_held.insert(name, weight);
                if t.weight != 0 {
                    set_weight(workers, t.id, 0)?;
                }
            }
            let target = SocketAddr::new(t.addr, t.key.port);
            let through = t.check.through_vip.then(|| health::ThroughVip {
                interface: interface.to_owned(),
                vip: SocketAddr::new(t.key.vip, t.key.port),
                macs: Arc::clone(macs),
            });
            health::spawn(t.id, target, t.check, through, healthy, tx.clone(), Arc::clone(&stop))
                .map_err(|e| {
                format!("starting the health check of {target} (service {}): {e}", t.key)
            })?;
        }
        Ok(Self { events, weights, down: still_down, held: still_held, names, stop })
    }

    /// Applies the changes reported since the last call.
    pub(crate) fn apply(&mut self, workers: &Workers) {
        while let Ok(event) = self.events.try_recv() {
            let Some(&name) = self.names.get(&event.key) else { continue };
            if event.healthy {
                self.down.remove(&name);
                self.held.remove(&name);
            } else {
                self.down.insert(name);
                self.held.insert(name, self.weights.get(&event.key).copied().unwrap_or(1));
            }
            let weight =
                if event.healthy { self.weights.get(&event.key).copied().unwrap_or(1) } else { 0 };
            let service = name.0;
            match set_weight(workers, event.key, weight) {
                Ok(()) if event.healthy => {
                    info!(%service, real = %event.target, weight, "real server is up: weight restored");
                }
                Ok(()) => {
                    warn!(
                        %service,
                        real = %event.target,
                        "real server is down: quiesced (weight 0, its connections continue)"
                    );
                }
                Err(e) => warn!(%service, real = %event.target, "health change not applied: {e}"),
            }
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// With several workers, each sees only the ARP and ND replies its fanout share brings it:
/// the MACs any of them learned are given to all.
pub(crate) fn share_macs(workers: &Workers) {
    let known: HashMap<IpAddr, dr_core::MacAddr> = workers
        .each(|_, d, _| {
            d.reals().filter_map(|(_, r)| Some((r.addr(), r.mac()?))).collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    if known.is_empty() {
        return;
    }
    let known = Arc::new(known);
    workers.each(move |_, d, _| {
        for (&addr, &mac) in known.iter() {
            d.learn_neighbour(addr, mac);
        }
    });
}

/// The workers as the control commands see them: after each job, in the same step, the
/// servers that are down are held at weight 0 whatever the command gave them, and the
/// weights given (the first worker's) are kept to give back when they recover.
pub(crate) struct HoldDown<'a> {
    pub(crate) workers: &'a Workers,
    pub(crate) down: Arc<HashSet<(ServiceKey, IpAddr)>>,
    pub(crate) held: std::cell::RefCell<Held>,
}

impl control::Directors for HoldDown<'_> {
    fn on_each<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Director, dr_core::Instant) -> T + Send + Sync + 'static,
    ) -> Vec<Option<T>> {
        let down = Arc::clone(&self.down);
        let results = self.workers.each(move |_, d, io| {
            let out = f(d, io.now());
            (out, hold_down(d, &down, None))
        });
        results
            .into_iter()
            .enumerate()
            .map(|(i, result)| {
                result.map(|(out, held)| {
                    if i == 0 {
                        self.held.borrow_mut().extend(held);
                    }
                    out
                })
            })
            .collect()
    }
}

/// Weights to give back to servers that are down, by service and address.
pub(crate) type Held = Vec<((ServiceKey, IpAddr), u32)>;

/// After a control command or a reload changed the director: the servers that are down get
/// weight 0 again in the same step (no frame sees the weight in between), and the weight
/// each of them is to get back when it recovers is returned: the file's (`file`, on a
/// reload), or the one a control command just gave it (a weight other than 0).
pub(crate) fn hold_down(
    d: &mut Director,
    down: &HashSet<(ServiceKey, IpAddr)>,
    file: Option<&Director>,
) -> Held {
    let weight_in = |d: &Director, key: &ServiceKey, addr: IpAddr| -> Option<(RealId, u32)> {
        let service = d.service(d.find_service(key)?)?;
        service.reals().iter().find_map(|&id| {
            let r = d.real(id)?;
            (r.addr() == addr).then_some((id, r.weight()))
        })
    };
    let mut held = Vec::new();
    for &(key, addr) in down {
        let Some((id, weight)) = weight_in(d, &key, addr) else { continue };
        match file.and_then(|f| weight_in(f, &key, addr)) {
            Some((_, wanted)) => held.push(((key, addr), wanted)),
            None if file.is_none() && weight != 0 => held.push(((key, addr), weight)),
            None => {}
        }
        if weight != 0
            && let Some(r) = d.real(id)
        {
            let _ = d.edit_real(id, RealEdit::of(r).with_weight(0));
        }
    }
    held
}

/// Gives the health checks that go through the VIP the real servers' MACs as the first
/// worker knows them.
pub(crate) fn publish_macs(workers: &Workers, macs: &health::Macs) {
    let known: Vec<(IpAddr, dr_core::MacAddr)> = workers
        .each(|_, d, _| d.reals().filter_map(|(_, r)| Some((r.addr(), r.mac()?))).collect())
        .into_iter()
        .next()
        .flatten()
        .unwrap_or_default();
    if let Ok(mut macs) = macs.lock() {
        macs.extend(known);
    }
}
