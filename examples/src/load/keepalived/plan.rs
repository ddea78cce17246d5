//! What a keepalived configuration describes, ready to run: the virtual servers with their
//! real servers and checkers, and keepalived's rules for what is in the IPVS table as the
//! checkers' states change (`ipwrapper.c`): a real server is alive while none of its
//! checkers fails; a dead one is removed, or with `inhibit_on_failure` kept at weight 0;
//! `alpha` starts its checkers failed; when the live weight falls below `quorum`
//! (`- hysteresis` to lose it, `+ hysteresis` to gain it) the `sorry_server` replaces the
//! real servers.

use super::Place;
use crate::health::HealthCheck;
use crate::ipvsadm::MAX_WEIGHT;
use dr_core::{
    Config, ConfigError, Director, MacAddr, Persistence, Protocol, RealConfig, RealEdit,
    SchedFlags, SchedulerKind, ServiceConfig, ServiceKey, TimeoutSettings,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A keepalived configuration, translated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `global_defs { lvs_timeouts … }`, when given.
    pub timeouts: Option<TimeoutSettings>,
    /// The virtual servers, in file order (a `virtual_server_group` gives one per address,
    /// checked together: [`VirtualServer::checked_by`]).
    pub services: Vec<VirtualServer>,
    /// What was skipped: one entry per kind, naming its first line.
    pub warnings: Vec<super::KeepalivedError>,
}

/// One `virtual_server`.
#[derive(Debug, Clone)]
pub struct VirtualServer {
    /// Where its block starts.
    pub place: Place,
    /// `protocol` (default TCP).
    pub protocol: Protocol,
    /// The VIP.
    pub vip: IpAddr,
    /// The port (0: every port, for a persistent service).
    pub port: u16,
    /// `lb_algo` / `lvs_sched` (default wlc, as ipvsadm's).
    pub scheduler: SchedulerKind,
    /// `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`, `flag-1..3`.
    pub flags: SchedFlags,
    /// `persistence_timeout` and `persistence_granularity`.
    pub persistence: Option<Persistence>,
    /// `ops`: one-packet scheduling (UDP services only; keepalived clears it on others).
    pub ops: bool,
    /// `quorum` (default 1).
    pub quorum: u64,
    /// `hysteresis` (default 0).
    pub hysteresis: u64,
    /// `sorry_server`.
    pub sorry: Option<SorryServer>,
    /// The real servers, in file order.
    pub reals: Vec<RealServer>,
    /// The index in [`Plan::services`] of the virtual server whose checkers judge these real
    /// servers: its own, or for each address of a `virtual_server group NAME` block, the
    /// group's first address's. keepalived checks each real server of the block once and
    /// applies the result (removal or inhibition, `misc_dynamic` weights, quorum and sorry
    /// server) to every address of the group, so dr runs the first address's checkers only
    /// and [`Pool::record`] gives their results to the whole group.
    pub checked_by: usize,
}

impl VirtualServer {
    /// The service's key in the director.
    pub fn key(&self) -> ServiceKey {
        ServiceKey { protocol: self.protocol, vip: self.vip, port: self.port }
    }
}

/// `sorry_server IP [PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    /// Its address.
    pub addr: IpAddr,
    /// `sorry_server_inhibit`: kept in the table at weight 0 while not needed.
    pub inhibit: bool,
}

/// One `real_server`.
#[derive(Debug, Clone)]
pub struct RealServer {
    /// Where its block starts.
    pub place: Place,
    /// Its address.
    pub addr: IpAddr,
    /// Its port as written (the checkers' default port).
    pub port: u16,
    /// `weight` (default 1).
    pub weight: u32,
    /// `uthreshold`.
    pub u_threshold: u32,
    /// `lthreshold`.
    pub l_threshold: u32,
    /// `inhibit_on_failure`: weight 0 rather than removal when it fails.
    pub inhibit: bool,
    /// Its checkers; none: always alive.
    pub checkers: Vec<Checker>,
}

/// One checker of a real server (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK`,
/// `DNS_CHECK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// Where its block starts.
    pub place: Place,
    /// What to probe, how often, and when it counts as failed.
    pub check: HealthCheck,
    /// Where to probe (`connect_ip`, `connect_port`; the real server's by default).
    pub target: SocketAddr,
    /// `alpha`: failed until it first succeeds.
    pub alpha: bool,
}

impl Plan {
    /// The checkers to run, each with its key for [`Pool::record`] (service, real server,
    /// checker): those of each virtual server that is checked by itself, so a group's real
    /// servers are checked once, not once per address.
    pub fn checkers(&self) -> impl Iterator<Item = ((usize, usize, usize), &Checker)> {
        self.services.iter().enumerate().filter(|(s, vs)| vs.checked_by == *s).flat_map(
            |(s, vs)| {
                vs.reals.iter().enumerate().flat_map(move |(r, real)| {
                    real.checkers.iter().enumerate().map(move |(c, checker)| ((s, r, c), checker))
                })
            },
        )
    }

    /// The indices of the virtual servers that `service`'s checkers judge: itself and, for
    /// a group's first address, the group's other addresses.
    pub fn checked_with(&self, service: usize) -> impl Iterator<Item = usize> + '_ {
        self.services
            .iter()
            .enumerate()
            .filter(move |(i, vs)| *i == service || vs.checked_by == service)
            .map(|(i, _)| i)
    }
}

/// The checkers' states, and what they put in the table: keepalived's `ipwrapper.c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    services: Vec<ServiceState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceState {
    key: ServiceKey,
    quorum_up: bool,
    reals: Vec<RealState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RealState {
    addr: IpAddr,
    /// Each checker: up, and the weight it adds (`misc_dynamic`).
    checkers: Vec<(bool, i64)>,
}

/// An entry of the table as the pool wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The real (or sorry) server.
    pub addr: IpAddr,
    /// Its weight now.
    pub weight: u32,
    /// Its thresholds (upper, lower).
    pub thresholds: (u32, u32),
}

impl RealState {
    fn alive(&self) -> bool {
        self.checkers.iter().all(|(up, _)| *up)
    }
}

/// keepalived's `real_weight`: the effective weight within 0 ..= 65535.
fn effective(real: &RealServer, state: &RealState) -> u32 {
    let extra: i64 = state.checkers.iter().map(|(_, w)| w).sum();
    (i64::from(real.weight) + extra).clamp(0, i64::from(MAX_WEIGHT)) as u32
}

impl Pool {
    /// The states at start: each checker up, or failed with `alpha`.
    pub fn new(plan: &Plan) -> Self {
        Self::with(plan, |_, _, checker| !checker.alpha)
    }

    /// Every checker up: what a replay, which runs no checks, serves.
    pub fn all_alive(plan: &Plan) -> Self {
        Self::with(plan, |_, _, _| true)
    }

    /// The states after a reload: the checkers of a real server that stays (same service
    /// and address, as many checkers) keep their states, as keepalived does not re-add a
    /// failed server on reload; the others start as [`new`](Self::new) starts them.
    pub fn carried(plan: &Plan, before: &Self) -> Self {
        let mut pool = Self::new(plan);
        for service in &mut pool.services {
            let Some(old) = before.services.iter().find(|s| s.key == service.key) else {
                continue;
            };
            for real in &mut service.reals {
                if let Some(was) = old.reals.iter().find(|r| r.addr == real.addr)
                    && was.checkers.len() == real.checkers.len()
                {
                    real.checkers.clone_from(&was.checkers);
                }
            }
            service.quorum_up = old.quorum_up;
        }
        for (state, vs) in pool.services.iter_mut().zip(&plan.services) {
            update_quorum(state, vs);
        }
        pool.mirror(plan);
        pool
    }

    /// Gives each address of a group after the first the states of the group's first
    /// address, which its checkers feed.
    fn mirror(&mut self, plan: &Plan) {
        for (i, vs) in plan.services.iter().enumerate() {
            let head = vs.checked_by;
            if head == i || head >= self.services.len() {
                continue;
            }
            let (reals, quorum_up) = {
                let h = &self.services[head];
                (h.reals.iter().map(|r| r.checkers.clone()).collect::<Vec<_>>(), h.quorum_up)
            };
            let member = &mut self.services[i];
            for (real, checkers) in member.reals.iter_mut().zip(reals) {
                if real.checkers.len() == checkers.len() {
                    real.checkers = checkers;
                }
            }
            member.quorum_up = quorum_up;
            update_quorum(member, vs);
        }
    }

    fn with(plan: &Plan, up: impl Fn(&VirtualServer, &RealServer, &Checker) -> bool) -> Self {
        let services = plan
            .services
            .iter()
            .map(|vs| {
                let reals = vs
                    .reals
                    .iter()
                    .map(|r| RealState {
                        addr: r.addr,
                        checkers: r.checkers.iter().map(|c| (up(vs, r, c), 0)).collect(),
                    })
                    .collect();
                let mut state = ServiceState { key: vs.key(), quorum_up: false, reals };
                // At start, quorum is up when the live weight reaches quorum + hysteresis.
                state.quorum_up = live_weight(&state, vs) >= vs.quorum + vs.hysteresis;
                state
            })
            .collect();
        let mut pool = Self { services };
        pool.mirror(plan);
        pool
    }

    /// Takes one checker's result (`weight`: what a `misc_dynamic` checker's exit status
    /// asks), for the service and every address checked with it ([`Plan::checked_with`]).
    /// Returns whether any of their tables changes.
    pub fn record(
        &mut self,
        plan: &Plan,
        (service, real, checker): (usize, usize, usize),
        up: bool,
        weight: Option<crate::probes::DynamicWeight>,
    ) -> bool {
        let mut changed = false;
        for s in plan.checked_with(service).collect::<Vec<_>>() {
            changed |= self.record_one(plan, (s, real, checker), up, weight);
        }
        changed
    }

    fn record_one(
        &mut self,
        plan: &Plan,
        (service, real, checker): (usize, usize, usize),
        up: bool,
        weight: Option<crate::probes::DynamicWeight>,
    ) -> bool {
        let (Some(state), Some(vs)) = (self.services.get_mut(service), plan.services.get(service))
        else {
            return false;
        };
        let before = table(state, vs);
        if let Some(slot) = state.reals.get_mut(real).and_then(|r| r.checkers.get_mut(checker)) {
            slot.0 = up;
            let configured = vs.reals.get(real).map_or(1, |r| i64::from(r.weight));
            if let Some(crate::probes::DynamicWeight(w)) = weight {
                slot.1 = i64::from(w) - configured;
            }
        }
        update_quorum(state, vs);
        table(state, vs) != before
    }

    /// The entries of service `index`'s table, in the order they are added.
    pub fn table(&self, plan: &Plan, index: usize) -> Vec<Entry> {
        match (self.services.get(index), plan.services.get(index)) {
            (Some(state), Some(vs)) => table(state, vs),
            _ => Vec::new(),
        }
    }

    /// Whether a real server of service `index` is alive.
    pub fn alive(&self, index: usize, addr: IpAddr) -> bool {
        self.services
            .get(index)
            .and_then(|s| s.reals.iter().find(|r| r.addr == addr))
            .is_some_and(RealState::alive)
    }

    /// Whether checker `checker` of real server `real` of service `service` is up.
    pub fn checker_up(&self, (service, real, checker): (usize, usize, usize)) -> bool {
        self.services
            .get(service)
            .and_then(|s| s.reals.get(real))
            .and_then(|r| r.checkers.get(checker))
            .is_some_and(|c| c.0)
    }

    /// Whether service `index` has its quorum.
    pub fn quorum_up(&self, index: usize) -> bool {
        self.services.get(index).is_some_and(|s| s.quorum_up)
    }
}

fn live_weight(state: &ServiceState, vs: &VirtualServer) -> u64 {
    state
        .reals
        .iter()
        .zip(&vs.reals)
        .filter(|(s, _)| s.alive())
        .map(|(s, r)| u64::from(effective(r, s)))
        .sum()
}

/// `update_quorum_state`: gained at quorum + hysteresis, lost below quorum - hysteresis
/// (or at no live weight).
fn update_quorum(state: &mut ServiceState, vs: &VirtualServer) {
    let sum = live_weight(state, vs);
    if state.quorum_up {
        let threshold = vs.quorum.saturating_sub(vs.hysteresis);
        if sum == 0 || sum < threshold {
            state.quorum_up = false;
        }
    } else if sum >= vs.quorum + vs.hysteresis {
        state.quorum_up = true;
    }
}

fn table(state: &ServiceState, vs: &VirtualServer) -> Vec<Entry> {
    let sorry_in = vs.sorry.is_some() && !state.quorum_up;
    let mut entries = Vec::new();
    for (real, s) in vs.reals.iter().zip(&state.reals) {
        let thresholds = (real.u_threshold, real.l_threshold);
        let weight = match (s.alive() && !sorry_in, real.inhibit) {
            (true, _) => effective(real, s),
            (false, true) => 0,
            (false, false) => continue,
        };
        entries.push(Entry { addr: real.addr, weight, thresholds });
    }
    if let Some(sorry) = &vs.sorry {
        match (sorry_in, sorry.inhibit) {
            (true, _) => entries.push(Entry { addr: sorry.addr, weight: 1, thresholds: (0, 0) }),
            (false, true) => {
                entries.push(Entry { addr: sorry.addr, weight: 0, thresholds: (0, 0) });
            }
            (false, false) => {}
        }
    }
    entries
}

/// What a director built from a plan needs besides it.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The director's configuration (MAC, seed, capacity); the plan's timeouts replace its
    /// own when the file gives them.
    pub config: Config,
    /// Real servers' MACs by address.
    pub neighbours: HashMap<IpAddr, MacAddr>,
    /// Whether every real server needs a MAC from `neighbours` (a replay cannot ask).
    pub require_real_macs: bool,
}

impl Plan {
    /// The director's configuration: `options.config` with the file's timeouts.
    pub fn config(&self, options: &BuildOptions) -> Config {
        let mut config = options.config.clone();
        if let Some(timeouts) = self.timeouts {
            config.timeouts = timeouts;
        }
        config
    }

    /// A director serving every virtual server with the table `pool` wants.
    ///
    /// # Errors
    ///
    /// What the director refused, naming the line of the virtual or real server.
    pub fn build(
        &self,
        pool: &Pool,
        options: &BuildOptions,
        config: Config,
    ) -> Result<Director, super::KeepalivedError> {
        let mut director = Director::new(config).map_err(|e| super::KeepalivedError {
            file: self.services.first().map(|s| s.place.file.to_path_buf()).unwrap_or_default(),
            line: None,
            message: e.to_string(),
        })?;
        for (index, vs) in self.services.iter().enumerate() {
            let err = |e: ConfigError| {
                super::KeepalivedError::at(&vs.place, format!("virtual_server {}: {e}", vs.key()))
            };
            let mut sc = ServiceConfig::new(vs.protocol, vs.vip, vs.port, vs.scheduler)
                .with_flags(vs.flags)
                .with_one_packet(vs.ops);
            if let Some(p) = vs.persistence {
                sc = sc.with_persistence(p);
            }
            director.add_service(sc).map_err(err)?;
            for entry in pool.table(self, index) {
                if options.require_real_macs && !options.neighbours.contains_key(&entry.addr) {
                    let place = vs
                        .reals
                        .iter()
                        .find(|r| r.addr == entry.addr)
                        .map_or(&vs.place, |r| &r.place);
                    return Err(super::KeepalivedError::at(
                        place,
                        format!(
                            "real server {} has no MAC: a replay cannot ask for it by ARP; give \
                             --neigh {}=MAC",
                            entry.addr, entry.addr
                        ),
                    ));
                }
            }
            sync_service(&mut director, vs.key(), &pool.table(self, index), &options.neighbours)
                .map_err(err)?;
        }
        Ok(director)
    }
}

/// Makes the real servers of service `key` in `director` those of `entries`: the others
/// removed, the missing added in order, the weights and thresholds set. Returns whether
/// anything changed.
///
/// # Errors
///
/// What the director refused.
pub fn sync_service(
    director: &mut Director,
    key: ServiceKey,
    entries: &[Entry],
    neighbours: &HashMap<IpAddr, MacAddr>,
) -> Result<bool, ConfigError> {
    let id = director.find_service(&key).ok_or(ConfigError::UnknownService)?;
    let have: Vec<_> = director
        .service(id)
        .map(|s| s.reals().to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|real| Some((real, director.real(real)?.addr())))
        .collect();
    let mut changed = false;
    for (real, addr) in &have {
        if !entries.iter().any(|e| e.addr == *addr) {
            director.remove_real(*real)?;
            changed = true;
        }
    }
    for entry in entries {
        match have.iter().find(|(_, a)| *a == entry.addr) {
            Some((real, _)) => {
                let r = director.real(*real).ok_or(ConfigError::UnknownReal)?;
                let edit = RealEdit::of(r)
                    .with_weight(entry.weight)
                    .with_thresholds(entry.thresholds.0, entry.thresholds.1);
                if edit != RealEdit::of(r) {
                    director.edit_real(*real, edit)?;
                    changed = true;
                }
            }
            None => {
                let mut rc = RealConfig::new(entry.addr)
                    .with_weight(entry.weight)
                    .with_thresholds(entry.thresholds.0, entry.thresholds.1);
                if let Some(mac) = neighbours.get(&entry.addr) {
                    rc = rc.with_mac(*mac);
                }
                director.add_real(id, rc)?;
                changed = true;
            }
        }
    }
    Ok(changed)
}
