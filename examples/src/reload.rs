//! Applying a changed configuration to a running director, as the `ipvsadm -A/-E/-D` and
//! `-a/-e/-d` lines that turn the old configuration into the new one would: only what
//! differs changes, and every connection of a service or real server that stays survives.

use dr_core::{
    ConfigError, Director, RealConfig, RealEdit, RealId, ServiceConfig, ServiceId, ServiceKey,
};
use std::net::IpAddr;

/// One change made to the running director.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `-A`: a new service.
    AddService(ServiceKey),
    /// `-E`: a service's scheduler, flags or persistence.
    EditService(ServiceKey),
    /// `-D`: a service removed, with its real servers.
    RemoveService(ServiceKey),
    /// `-a`: a real server added to a service.
    AddReal(ServiceKey, IpAddr),
    /// `-e`: a real server's weight or thresholds.
    EditReal(ServiceKey, IpAddr),
    /// `-d`: a real server removed from a service.
    RemoveReal(ServiceKey, IpAddr),
    /// `--set`: the timeouts.
    Timeouts,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AddService(k) => write!(f, "added service {k}"),
            Self::EditService(k) => write!(f, "edited service {k}"),
            Self::RemoveService(k) => write!(f, "removed service {k}"),
            Self::AddReal(k, a) => write!(f, "added real server {a} to {k}"),
            Self::EditReal(k, a) => write!(f, "edited real server {a} of {k}"),
            Self::RemoveReal(k, a) => write!(f, "removed real server {a} from {k}"),
            Self::Timeouts => f.write_str("set the timeouts"),
        }
    }
}

fn reals_of(director: &Director, service: ServiceId) -> Vec<(IpAddr, RealId)> {
    director
        .service(service)
        .map(|s| s.reals().iter().filter_map(|&id| Some((director.real(id)?.addr(), id))).collect())
        .unwrap_or_default()
}

/// Makes `running` serve what `wanted` describes. The real servers of a new or changed
/// service are added in `wanted`'s order (oldest first), so the schedulers meet them as a
/// fresh start would.
///
/// # Errors
///
/// The first refusal of the running director; the changes before it stay made.
pub fn apply(running: &mut Director, wanted: &Director) -> Result<Vec<Change>, ConfigError> {
    let mut changes = Vec::new();
    if running.timeouts().settings() != wanted.timeouts().settings() {
        running.set_timeouts(wanted.timeouts().settings())?;
        changes.push(Change::Timeouts);
    }
    // Services that are gone.
    let gone: Vec<(ServiceId, ServiceKey)> = running
        .services()
        .filter(|(_, s)| wanted.find_service(&s.key()).is_none())
        .map(|(id, s)| (id, s.key()))
        .collect();
    for (id, key) in gone {
        running.remove_service(id)?;
        changes.push(Change::RemoveService(key));
    }
    for (wanted_id, want) in wanted.services() {
        let key = want.key();
        let id = match running.find_service(&key) {
            Some(id) => {
                let have = running.service(id).ok_or(ConfigError::UnknownService)?;
                if have.scheduler() != want.scheduler()
                    || have.flags() != want.flags()
                    || have.persistence() != want.persistence()
                {
                    running.edit_service(id, want.scheduler(), want.flags())?;
                    running.set_persistence(id, want.persistence())?;
                    changes.push(Change::EditService(key));
                }
                id
            }
            None => {
                let mut config =
                    ServiceConfig::new(key.protocol, key.vip, key.port, want.scheduler())
                        .with_flags(want.flags());
                if let Some(p) = want.persistence() {
                    config = config.with_persistence(p);
                }
                changes.push(Change::AddService(key));
                running.add_service(config)?
            }
        };
        let have = reals_of(running, id);
        let wants = reals_of(wanted, wanted_id);
        for (addr, real) in &have {
            if !wants.iter().any(|(a, _)| a == addr) {
                running.remove_real(*real)?;
                changes.push(Change::RemoveReal(key, *addr));
            }
        }
        // The wanted list is newest first; add in the order the file lists them.
        for (addr, wanted_real) in wants.iter().rev() {
            let Some(w) = wanted.real(*wanted_real) else { continue };
            match have.iter().find(|(a, _)| a == addr) {
                Some((_, real)) => {
                    let r = running.real(*real).ok_or(ConfigError::UnknownReal)?;
                    let edit = RealEdit::of(w);
                    if RealEdit::of(r) != edit {
                        running.edit_real(*real, edit)?;
                        changes.push(Change::EditReal(key, *addr));
                    }
                }
                None => {
                    let (upper, lower) = w.thresholds();
                    let mut config = RealConfig::new(*addr)
                        .with_weight(w.weight())
                        .with_thresholds(upper, lower);
                    if let Some(mac) = w.mac() {
                        config = config.with_mac(mac);
                    }
                    running.add_real(id, config)?;
                    changes.push(Change::AddReal(key, *addr));
                }
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, load};
    use dr_core::{Instant, Verdict};

    const OPTIONS: LoadOptions = LoadOptions {
        hash_seed: [1, 2, 3, 4],
        require_real_macs: true,
        default_mac: None,
        default_capacity: None,
    };

    fn config(services: &str) -> String {
        format!("[director]\nmac = \"02:00:00:00:00:01\"\n{services}")
    }

    const WEB: &str = r#"
[[service]]
proto = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
[[service.real]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
"#;

    #[test]
    fn only_the_difference_changes_and_connections_survive() {
        let mut running = load(&config(WEB), OPTIONS).unwrap();
        let syn = crate::frames::tcp4("192.0.2.7", 1000, "10.0.0.100", 80, crate::frames::SYN);
        let Verdict::Forward { real } = running.process(Instant::from_secs(1), &mut syn.clone())
        else {
            panic!("not forwarded")
        };
        let served_by = running.real(real).unwrap().addr();

        // Same file: nothing to do.
        let same = load(&config(WEB), OPTIONS).unwrap();
        assert_eq!(apply(&mut running, &same).unwrap(), []);

        // New weights, a new server, one removed, a new service, wlc instead of rr.
        let new = WEB.replace("scheduler = \"rr\"", "scheduler = \"wlc\"").replace(
            "ip = \"10.0.0.12\"\nmac = \"02:00:00:00:00:12\"",
            "ip = \"10.0.0.13\"\nmac = \"02:00:00:00:00:13\"\nweight = 5",
        ) + "\n[[service]]\nproto = \"udp\"\nvip = \"10.0.0.100\"\nport = 53\n";
        let wanted = load(&config(&new), OPTIONS).unwrap();
        let changes = apply(&mut running, &wanted).unwrap();
        let key = running.services().next().unwrap().1.key();
        let udp = wanted.services().nth(1).unwrap().1.key();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            changes,
            [
                Change::EditService(key),
                Change::RemoveReal(key, a("10.0.0.12")),
                Change::AddReal(key, a("10.0.0.13")),
                Change::AddService(udp),
            ]
        );
        // The connection opened before goes on where it went (unless its server left).
        let ack = crate::frames::tcp4("192.0.2.7", 1000, "10.0.0.100", 80, crate::frames::ACK);
        let verdict = running.process(Instant::from_secs(2), &mut ack.clone());
        if served_by == a("10.0.0.11") {
            assert_eq!(verdict, Verdict::Forward { real });
        } else {
            assert_eq!(verdict, Verdict::Drop(dr_core::DropReason::RealRemoved));
        }
        // And the running director now matches the file: applying it again changes nothing.
        assert_eq!(apply(&mut running, &wanted).unwrap(), []);

        // A service dropped from the file goes.
        let back = load(&config(WEB), OPTIONS).unwrap();
        let changes = apply(&mut running, &back).unwrap();
        assert!(changes.contains(&Change::RemoveService(udp)), "{changes:?}");
        assert_eq!(running.services().count(), 1);
    }
}
