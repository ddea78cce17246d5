//! Scheduler flags a service's scheduler does not read: `flag-1` and `flag-2` (`sh-fallback`
//! and `sh-port`, `mh-fallback` and `mh-port`) on any scheduler but `sh` and `mh`, `flag-3`
//! on any. The kernel takes them and ignores them, and so does dr; every loader (the TOML
//! configuration, ipvsadm rules, keepalived.conf) warns of each, once per service, so that
//! a flag that does nothing is not taken for one that does.

use dr_core::Director;

/// One warning for each flag a service of `director` has that its scheduler ignores,
/// naming the service, the flag and the scheduler.
pub fn ignored_flags(director: &Director) -> Vec<String> {
    let mut out = Vec::new();
    for (_, service) in director.services() {
        let scheduler = service.scheduler();
        let key = service.key();
        let name =
            format!("{} {}", key.protocol.name(), std::net::SocketAddr::new(key.vip, key.port));
        for flag in service.flags().ignored_by(scheduler) {
            out.push(format!(
                "service {}: scheduler flag {flag} is ignored by the {scheduler} scheduler (only \
                 sh and mh read flag-1 and flag-2, and no scheduler reads flag-3); the kernel \
                 takes it and ignores it too: remove it, or use the scheduler it is for",
                name
            ));
        }
    }
    out
}
