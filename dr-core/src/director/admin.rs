//! Runtime configuration, as `ipvsadm -A/-E/-D` (services) and `-a/-e/-d` (real servers)
//! change a running kernel: existing connections are kept.
//!
//! Sources: `ip_vs_ctl.c` (`ip_vs_add_service`, `ip_vs_edit_service`, `ip_vs_del_service`,
//! `__ip_vs_update_dest`, `ip_vs_del_dest`, `ip_vs_trash_get_dest`).

use super::martian::VipFilter;
use super::{Director, host_refusal, release};
use crate::config::{Config, ConfigError, validate_timeouts};
use crate::conn::TimeoutSettings;
use crate::sched::{Dests, SchedFlags, SchedParams, Scheduler, SchedulerKind};
use crate::service::{
    MAX_PERSISTENT_SECS, MAX_WEIGHT, Persistence, RealConfig, RealEdit, RealId, RealServer,
    Service, ServiceConfig, ServiceId,
};
use crate::stats::Stats;
use alloc::vec::Vec;

impl Director {
    /// Adds a virtual service (`ipvsadm -A`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ServiceExists`], [`ConfigError::InvalidVip`] (loopback, unspecified,
    /// multicast, broadcast), [`ConfigError::VipIsReal`], [`ConfigError::PortZero`] or
    /// [`ConfigError::TooMany`].
    pub fn add_service(&mut self, service: ServiceConfig) -> Result<ServiceId, ConfigError> {
        let key = service.key;
        if self.service_index.contains_key(&key) {
            return Err(ConfigError::ServiceExists(key));
        }
        if host_refusal(key.vip, false).is_some() {
            return Err(ConfigError::InvalidVip(key.vip));
        }
        if self.reals.iter().any(|r| r.available && r.addr == key.vip) {
            return Err(ConfigError::VipIsReal(key.vip));
        }
        if key.port == 0 && service.persistence.is_none() {
            return Err(ConfigError::PortZero(key));
        }
        validate_persistence(service.persistence)?;
        if self.services.len() >= usize::from(u16::MAX) {
            return Err(ConfigError::TooMany("services"));
        }
        let id = ServiceId::from_index(self.services.len());
        let no_reals = Dests { order: &[], reals: &self.reals };
        let params = SchedParams::of(&self.config, id, key.port, self.clock);
        self.services.push(Service {
            key,
            scheduler: Scheduler::new(service.scheduler, service.flags, &params, &no_reals),
            flags: service.flags,
            persistence: service.persistence,
            one_packet: service.one_packet,
            reals: Vec::new(),
            stats: Stats::default(),
            removed: false,
        });
        self.service_index.insert(key, id);
        self.port_zero_services += u32::from(key.port == 0);
        let count = self.vips.entry(key.vip).or_insert(0);
        if *count == 0 {
            self.vip_order.push(key.vip);
            self.vip_filter = VipFilter::of(self.vip_order.iter().copied());
        }
        *count += 1;
        Ok(id)
    }

    /// Changes a service's scheduler or flags (`ipvsadm -E`). A new scheduler starts from
    /// the servers the service has now (`init_service`); flags alone change in place.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`].
    pub fn edit_service(
        &mut self,
        id: ServiceId,
        scheduler: SchedulerKind,
        flags: SchedFlags,
    ) -> Result<(), ConfigError> {
        let service = self.services.get_mut(id.index()).filter(|s| !s.removed);
        let service = service.ok_or(ConfigError::UnknownService)?;
        if service.scheduler.kind() != scheduler || service.flags != flags {
            let dests = Dests { order: &service.reals, reals: &self.reals };
            if service.scheduler.kind() == scheduler {
                service.scheduler.set_flags(flags);
            } else {
                let params = SchedParams::of(&self.config, id, service.key.port, self.clock);
                service.scheduler = Scheduler::new(scheduler, flags, &params, &dests);
            }
            service.flags = flags;
        }
        Ok(())
    }

    /// Sets or clears a service's persistence (`ipvsadm -E -p … -M …`). Templates already
    /// made keep their key and real server; new ones follow the new netmask, and every
    /// template re-armed from now on uses the new timeout.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`], [`ConfigError::Persistence`], or
    /// [`ConfigError::PortZero`] when clearing persistence from a port-0 service.
    pub fn set_persistence(
        &mut self,
        id: ServiceId,
        persistence: Option<Persistence>,
    ) -> Result<(), ConfigError> {
        let service = self.services.get_mut(id.index()).filter(|s| !s.removed);
        let service = service.ok_or(ConfigError::UnknownService)?;
        if service.key.port == 0 && persistence.is_none() {
            return Err(ConfigError::PortZero(service.key));
        }
        validate_persistence(persistence)?;
        service.persistence = persistence;
        Ok(())
    }

    /// Sets or clears a service's one-packet scheduling (`ipvsadm -E … -o`; `-E` without
    /// `-o` clears it). Connection entries already made stay and keep their datagrams, as
    /// in the kernel, which looks an entry up before it schedules; with the flag cleared,
    /// new datagrams make entries again.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`].
    pub fn set_one_packet(&mut self, id: ServiceId, one_packet: bool) -> Result<(), ConfigError> {
        let service = self.services.get_mut(id.index()).filter(|s| !s.removed);
        service.ok_or(ConfigError::UnknownService)?.one_packet = one_packet;
        Ok(())
    }

    /// Removes a service (`ipvsadm -D`) and all its real servers, as [`remove_real`] does
    /// for each: their connections follow `expire_nodest_conn`.
    ///
    /// [`remove_real`]: Self::remove_real
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`].
    pub fn remove_service(&mut self, id: ServiceId) -> Result<(), ConfigError> {
        let service = self.services.get(id.index()).filter(|s| !s.removed);
        let reals: Vec<RealId> = service.ok_or(ConfigError::UnknownService)?.reals.clone();
        for real in reals {
            self.remove_real(real)?;
        }
        let service = &mut self.services[id.index()];
        service.removed = true;
        let key = service.key;
        self.service_index.remove(&key);
        self.port_zero_services -= u32::from(key.port == 0);
        if let Some(count) = self.vips.get_mut(&key.vip) {
            *count -= 1;
            if *count == 0 {
                self.vips.remove(&key.vip);
                self.vip_order.retain(|vip| *vip != key.vip);
                self.vip_filter = VipFilter::of(self.vip_order.iter().copied());
            }
        }
        Ok(())
    }

    /// Adds a real server to a service (`ipvsadm -a`). It goes to the head of the service's
    /// list, as in the kernel, so schedulers meet the newest server first. A server removed
    /// from this service before comes back with its counters and connections, as the
    /// kernel takes it back from its trash.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownService`], [`ConfigError::RealExists`],
    /// [`ConfigError::InvalidRealAddr`] (loopback, unspecified, multicast, broadcast, IPv6
    /// link-local), [`ConfigError::RealIsVip`], [`ConfigError::FamilyMismatch`],
    /// [`ConfigError::Weight`], [`ConfigError::RealMac`], [`ConfigError::Thresholds`],
    /// [`ConfigError::MacConflict`] or [`ConfigError::TooMany`].
    pub fn add_real(
        &mut self,
        service: ServiceId,
        real: RealConfig,
    ) -> Result<RealId, ConfigError> {
        let svc = self.services.get(service.index()).filter(|s| !s.removed);
        let svc = svc.ok_or(ConfigError::UnknownService)?;
        let addr = real.addr;
        if svc.reals.iter().any(|r| self.reals[r.index()].addr == addr) {
            return Err(ConfigError::RealExists(addr));
        }
        if host_refusal(addr, true).is_some() {
            return Err(ConfigError::InvalidRealAddr(addr));
        }
        if self.vips.contains_key(&addr) {
            return Err(ConfigError::RealIsVip(addr));
        }
        if addr.is_ipv4() != svc.key.vip.is_ipv4() {
            return Err(ConfigError::FamilyMismatch { vip: svc.key.vip, real: addr });
        }
        validate_edit(RealEdit {
            weight: real.weight,
            u_threshold: real.u_threshold,
            l_threshold: real.l_threshold,
        })?;
        if let Some(mac) = real.mac.filter(|m| !m.is_unicast()) {
            return Err(ConfigError::RealMac(mac));
        }
        let trashed =
            self.reals.iter().position(|r| r.service == service && r.addr == addr && !r.available);
        if trashed.is_none() && self.reals.len() >= usize::from(u16::MAX) {
            return Err(ConfigError::TooMany("real servers"));
        }
        let neighbour =
            self.neighbours.ensure(addr, real.mac).map_err(|c| ConfigError::MacConflict {
                addr,
                existing: c.existing,
                new: real.mac.unwrap_or_default(),
            })?;
        let mac = self.neighbours.get(neighbour).mac;
        // A static MAC given now applies to every server at that address.
        for other in self.reals.iter_mut().filter(|r| r.neighbour == neighbour) {
            other.mac = mac;
        }
        let id = match trashed {
            Some(index) => {
                let old = &mut self.reals[index];
                old.weight = real.weight;
                old.last_weight = real.weight;
                old.u_threshold = real.u_threshold;
                old.l_threshold = real.l_threshold;
                old.overloaded = false;
                old.available = true;
                RealId::from_index(index)
            }
            None => {
                self.reals.push(RealServer {
                    addr,
                    service,
                    weight: real.weight,
                    last_weight: real.weight,
                    mac,
                    neighbour,
                    active: 0,
                    inactive: 0,
                    persistent: 0,
                    u_threshold: real.u_threshold,
                    l_threshold: real.l_threshold,
                    overloaded: false,
                    available: true,
                    stats: Stats::default(),
                });
                RealId::from_index(self.reals.len() - 1)
            }
        };
        let Service { scheduler, reals: order, .. } = &mut self.services[service.index()];
        order.insert(0, id);
        scheduler.added(&Dests { order, reals: &self.reals });
        Ok(id)
    }

    /// Changes a real server's weight and thresholds (`ipvsadm -e`). Weight 0 quiesces it:
    /// no new connections, existing ones continue. Raising the upper threshold or setting
    /// it to 0 clears the overload, as `__ip_vs_update_dest` does.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownReal`], [`ConfigError::Weight`] or [`ConfigError::Thresholds`].
    pub fn edit_real(&mut self, id: RealId, edit: RealEdit) -> Result<(), ConfigError> {
        validate_edit(edit)?;
        let real = self.reals.get_mut(id.index()).filter(|r| r.available);
        let real = real.ok_or(ConfigError::UnknownReal)?;
        if edit.u_threshold == 0 || edit.u_threshold > real.u_threshold {
            real.overloaded = false;
        }
        // __ip_vs_update_dest: "keep the last_weight with latest non-0 weight".
        if edit.weight != 0 {
            real.last_weight = edit.weight;
        }
        real.weight = edit.weight;
        real.u_threshold = edit.u_threshold;
        real.l_threshold = edit.l_threshold;
        let Service { scheduler, reals: order, .. } = &mut self.services[real.service.index()];
        scheduler.edited(&Dests { order, reals: &self.reals });
        Ok(())
    }

    /// Removes a real server from its service (`ipvsadm -d`). The scheduler forgets it at
    /// once. Its connections stay and their packets are dropped (`real-removed`), unless
    /// `expire_nodest_conn` is set: then they are expired now.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownReal`].
    pub fn remove_real(&mut self, id: RealId) -> Result<(), ConfigError> {
        let real = self.reals.get_mut(id.index()).filter(|r| r.available);
        let real = real.ok_or(ConfigError::UnknownReal)?;
        real.available = false;
        let Service { scheduler, reals: order, .. } = &mut self.services[real.service.index()];
        if let Some(position) = order.iter().position(|r| *r == id) {
            order.remove(position);
            scheduler.removed(position, &Dests { order, reals: &self.reals });
        }
        if self.config.expire_nodest_conn {
            let Self { conns, reals, counters, .. } = self;
            conns.remove_where(|conn| conn.real == id, |conn| release(reals, counters, conn));
        }
        Ok(())
    }

    /// Runs the service's scheduler as a new connection from `flow` would, without creating
    /// the connection: which real server would it get? The scheduler's own state (rr's and
    /// wrr's position, lblc's and lblcr's cache, twos's randomness) moves on as for a real
    /// pick, at the latest time the director was given; connection counts do not change.
    pub fn schedule(&mut self, service: ServiceId, flow: &crate::flow::FlowKey) -> Option<RealId> {
        let now = self.clock;
        let svc = self.services.get_mut(service.index()).filter(|s| !s.removed)?;
        let Service { scheduler, reals: order, .. } = svc;
        scheduler.schedule(&Dests { order, reals: &self.reals }, flow, now)
    }

    /// Sets the three timeouts `ipvsadm --set tcp tcpfin udp` sets (0 keeps the current
    /// value). Live connections keep their timers until their next packet, as in the kernel.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Timeout`] when a value exceeds the kernel's limit.
    pub fn set_timeouts(&mut self, settings: TimeoutSettings) -> Result<(), ConfigError> {
        validate_timeouts(settings)?;
        self.timeouts.apply(settings);
        self.config.timeouts = self.timeouts.settings();
        Ok(())
    }
}

impl Director {
    /// The MAC configured for real-server address `addr` (static), if one is: `None` when it
    /// is learned, or `addr` is no real server's.
    pub fn configured_mac(&self, addr: core::net::IpAddr) -> Option<crate::mac::MacAddr> {
        let entry = self.neighbours.get(self.neighbours.find(addr)?);
        entry.mac.filter(|_| entry.is_static)
    }

    /// Configures the MAC of real-server address `addr` for every service it is in, as
    /// [`RealConfig::with_mac`] would have (`None`: learned from the director's requests
    /// from now on, the current MAC kept until an answer replaces it). Returns whether
    /// anything changed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::RealMac`] for a MAC that is not unicast, [`ConfigError::UnknownReal`]
    /// when no real server has that address.
    pub fn set_configured_mac(
        &mut self,
        addr: core::net::IpAddr,
        mac: Option<crate::mac::MacAddr>,
    ) -> Result<bool, ConfigError> {
        if let Some(mac) = mac.filter(|m| !m.is_unicast()) {
            return Err(ConfigError::RealMac(mac));
        }
        if self.neighbours.find(addr).is_none() {
            return Err(ConfigError::UnknownReal);
        }
        let Some(id) = self.neighbours.configure(addr, mac) else { return Ok(false) };
        let mac = self.neighbours.get(id).mac;
        for real in self.reals.iter_mut().filter(|r| r.neighbour == id) {
            real.mac = mac;
        }
        Ok(true)
    }

    /// Applies every field of `config` that differs from the running one, as if the
    /// director had been built with it, and returns the names of the fields it changed.
    /// The connections live on. Fields that size memory reserved at construction
    /// (`capacity`, `fragment_capacity`) cannot change: when one differs nothing changes and
    /// the error names it. The hash seed is kept (it is the running table's key).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NeedsRestart`] naming the field, or the error [`Director::new`]
    /// would give for `config`; nothing is changed then.
    pub fn reconfigure(&mut self, config: &Config) -> Result<Vec<&'static str>, ConfigError> {
        config.validate()?;
        let old = &self.config;
        if config.capacity != old.capacity {
            return Err(ConfigError::NeedsRestart("capacity"));
        }
        if config.fragment_capacity != old.fragment_capacity {
            return Err(ConfigError::NeedsRestart("fragment_capacity"));
        }
        let mut changed = Vec::new();
        let mut note = |differs: bool, name: &'static str| {
            if differs {
                changed.push(name);
            }
        };
        note(config.mac != old.mac, "mac");
        note(config.decrement_ttl != old.decrement_ttl, "decrement_ttl");
        let mut timeouts = crate::conn::Timeouts::default();
        timeouts.apply(config.timeouts);
        note(timeouts != self.timeouts, "timeouts");
        note(config.ipv4 != old.ipv4, "ipv4");
        note(config.ipv6 != old.ipv6, "ipv6");
        note(config.neighbour_retry != old.neighbour_retry, "neighbour_retry");
        note(config.neighbour_refresh != old.neighbour_refresh, "neighbour_refresh");
        note(config.expire_nodest_conn != old.expire_nodest_conn, "expire_nodest_conn");
        note(config.icmp_port_unreachable != old.icmp_port_unreachable, "icmp_port_unreachable");
        note(config.conn_reuse_mode != old.conn_reuse_mode, "conn_reuse_mode");
        note(config.sloppy_tcp != old.sloppy_tcp, "sloppy_tcp");
        note(config.icmp_echo != old.icmp_echo, "icmp_echo");
        note(config.run_estimation != old.run_estimation, "run_estimation");
        note(config.fragment_timeout != old.fragment_timeout, "fragment_timeout");
        note(
            config.expire_quiescent_template != old.expire_quiescent_template,
            "expire_quiescent_template",
        );
        note(config.vlans != old.vlans, "vlans");
        note(config.mh_table_size != old.mh_table_size, "mh_table_size");
        note(config.lblc_expiration != old.lblc_expiration, "lblc_expiration");
        note(config.lblcr_expiration != old.lblcr_expiration, "lblcr_expiration");
        if config.neighbour_refresh != old.neighbour_refresh {
            self.neighbours.set_refresh(config.neighbour_refresh);
        }
        if config.fragment_timeout != old.fragment_timeout {
            self.fragments.set_timeout(config.fragment_timeout);
        }
        if !config.run_estimation {
            self.next_estimate = None;
        }
        let hash_seed = self.config.hash_seed;
        self.timeouts = timeouts;
        self.config = Config { hash_seed, timeouts: timeouts.settings(), ..config.clone() };
        let Self { services, reals, config, clock, .. } = self;
        for (i, service) in services.iter_mut().enumerate().filter(|(_, s)| !s.removed) {
            let id = ServiceId::from_index(i);
            let params = SchedParams::of(config, id, service.key.port, *clock);
            let dests = Dests { order: &service.reals, reals };
            service.scheduler.reconfigure(&params, &dests);
        }
        Ok(changed)
    }
}

fn validate_persistence(persistence: Option<Persistence>) -> Result<(), ConfigError> {
    let Some(p) = persistence else { return Ok(()) };
    if p.timeout_secs == 0 || p.timeout_secs > MAX_PERSISTENT_SECS || p.prefix_len > 128 {
        return Err(ConfigError::Persistence {
            timeout_secs: p.timeout_secs,
            prefix_len: p.prefix_len,
        });
    }
    Ok(())
}

fn validate_edit(edit: RealEdit) -> Result<(), ConfigError> {
    if edit.weight > MAX_WEIGHT {
        return Err(ConfigError::Weight(edit.weight));
    }
    if edit.l_threshold > edit.u_threshold {
        return Err(ConfigError::Thresholds { upper: edit.u_threshold, lower: edit.l_threshold });
    }
    Ok(())
}
