//! Applying a changed configuration to a running director, as the `ipvsadm -A/-E/-D` and
//! `-a/-e/-d` lines that turn the old configuration into the new one would: only what
//! differs changes, and every connection of a service or real server that stays survives.

use dr_core::{
    Config, ConfigError, Director, RealConfig, RealEdit, RealId, ServiceConfig, ServiceId,
    ServiceKey,
};
use std::net::IpAddr;

/// One change made to the running director.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `-A`: a new service.
    AddService(ServiceKey),
    /// `-E`: a service's scheduler, flags, persistence or one-packet scheduling.
    EditService(ServiceKey),
    /// `-D`: a service removed, with its real servers.
    RemoveService(ServiceKey),
    /// `-a`: a real server added to a service.
    AddReal(ServiceKey, IpAddr),
    /// `-e`: a real server's weight or thresholds.
    EditReal(ServiceKey, IpAddr),
    /// `-d`: a real server removed from a service.
    RemoveReal(ServiceKey, IpAddr),
    /// A real server's configured MAC set, changed or left to be learned.
    RealMac(IpAddr),
    /// A field of `[director]` (or `[timeouts]`, as `timeouts`).
    Director(&'static str),
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
            Self::RealMac(a) => write!(f, "set the MAC of real server {a}"),
            Self::Director(field) => write!(f, "set director.{field}"),
        }
    }
}

fn reals_of(director: &Director, service: ServiceId) -> Vec<(IpAddr, RealId)> {
    director
        .service(service)
        .map(|s| s.reals().iter().filter_map(|&id| Some((director.real(id)?.addr(), id))).collect())
        .unwrap_or_default()
}

/// Makes `running` serve what `wanted` and its configuration `config` (the file's
/// `[director]` and `[timeouts]`, as [`Loaded::config`](crate::config::Loaded::config)
/// holds them) describe: every field of the configuration, every service, real server,
/// weight, threshold and configured MAC. The real servers of a new or changed service are
/// added in `wanted`'s order (oldest first), so the schedulers meet them as a fresh start
/// would. `wanted` may have been built with small tables ([`crate::config::load_small`]).
///
/// # Errors
///
/// A field that needs a restart ([`ConfigError::NeedsRestart`]: nothing is changed then),
/// or the first refusal of the running director (the changes before it stay made).
pub fn apply(
    running: &mut Director,
    wanted: &Director,
    config: &Config,
) -> Result<Vec<Change>, ConfigError> {
    let mut changes: Vec<Change> =
        running.reconfigure(config)?.into_iter().map(Change::Director).collect();
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
                    || have.one_packet() != want.one_packet()
                {
                    running.edit_service(id, want.scheduler(), want.flags())?;
                    running.set_persistence(id, want.persistence())?;
                    running.set_one_packet(id, want.one_packet())?;
                    changes.push(Change::EditService(key));
                }
                id
            }
            None => {
                let mut config =
                    ServiceConfig::new(key.protocol, key.vip, key.port, want.scheduler())
                        .with_flags(want.flags())
                        .with_one_packet(want.one_packet());
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
                    let mac = wanted.configured_mac(*addr);
                    if running.configured_mac(*addr) != mac
                        && running.set_configured_mac(*addr, mac)?
                        && !changes.contains(&Change::RealMac(*addr))
                    {
                        changes.push(Change::RealMac(*addr));
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
    use crate::config::{LoadOptions, Loaded, load_all, load_small};
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

    fn load(text: &str, options: LoadOptions) -> Result<Director, crate::LineError> {
        load_all(text, options).map(|loaded| loaded.director)
    }

    /// `running` made to serve `text`, as a reload does.
    fn reload(running: &mut Director, text: &str) -> Result<Vec<Change>, ConfigError> {
        let Loaded { director, config, .. } = load_small(text, OPTIONS).unwrap();
        apply(running, &director, &config)
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
        let syn = dr_fixtures::frames::tcp4(
            "192.0.2.7",
            1000,
            "10.0.0.100",
            80,
            dr_fixtures::frames::SYN,
        );
        let Verdict::Forward { real } = running.process(Instant::from_secs(1), &mut syn.clone())
        else {
            panic!("not forwarded")
        };
        let served_by = running.real(real).unwrap().addr();

        // Same file: nothing to do.
        assert_eq!(reload(&mut running, &config(WEB)).unwrap(), []);

        // New weights, a new server, one removed, a new service, wlc instead of rr.
        let new = WEB.replace("scheduler = \"rr\"", "scheduler = \"wlc\"").replace(
            "ip = \"10.0.0.12\"\nmac = \"02:00:00:00:00:12\"",
            "ip = \"10.0.0.13\"\nmac = \"02:00:00:00:00:13\"\nweight = 5",
        ) + "\n[[service]]\nproto = \"udp\"\nvip = \"10.0.0.100\"\nport = 53\n";
        let wanted = load(&config(&new), OPTIONS).unwrap();
        let changes = reload(&mut running, &config(&new)).unwrap();
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
        let ack = dr_fixtures::frames::tcp4(
            "192.0.2.7",
            1000,
            "10.0.0.100",
            80,
            dr_fixtures::frames::ACK,
        );
        let verdict = running.process(Instant::from_secs(2), &mut ack.clone());
        if served_by == a("10.0.0.11") {
            assert_eq!(verdict, Verdict::Forward { real });
        } else {
            assert_eq!(verdict, Verdict::Drop(dr_core::DropReason::RealRemoved));
        }
        // And the running director now matches the file: applying it again changes nothing.
        assert_eq!(reload(&mut running, &config(&new)).unwrap(), []);

        // A service dropped from the file goes.
        let changes = reload(&mut running, &config(WEB)).unwrap();
        assert!(changes.contains(&Change::RemoveService(udp)), "{changes:?}");
        assert_eq!(running.services().count(), 1);
    }

    #[test]
    fn every_director_field_and_configured_mac_is_applied_or_refused() {
        let mut running = load(&config(WEB), OPTIONS).unwrap();
        let text = config(WEB).replace(
            "[director]\n",
            "[director]\ndecrement_ttl = true\nconn_reuse_mode = 2\nvlans = [0, 10]\n\
             expire_nodest_conn = true\nicmp_echo = false\nneighbour_refresh = 30\n\
             fragment_timeout = 9\n",
        ) + "\n[timeouts]\ntcp = 600\n";
        let changes = reload(&mut running, &text).unwrap();
        for field in [
            "decrement_ttl",
            "conn_reuse_mode",
            "vlans",
            "expire_nodest_conn",
            "icmp_echo",
            "neighbour_refresh",
            "fragment_timeout",
            "timeouts",
        ] {
            assert!(changes.contains(&Change::Director(field)), "{field}: {changes:?}");
        }
        assert_eq!(changes.len(), 8, "{changes:?}");
        let c = running.config();
        assert!(c.decrement_ttl && c.expire_nodest_conn && !c.icmp_echo);
        assert_eq!(c.conn_reuse_mode, 2);
        assert_eq!(running.timeouts().settings().tcp, 600);
        assert_eq!(reload(&mut running, &text).unwrap(), [], "applied: nothing left to do");

        // A real server's configured MAC: changed, then left to be learned.
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let moved = text.replace("02:00:00:00:00:11", "02:00:00:00:00:99");
        assert_eq!(reload(&mut running, &moved).unwrap(), [Change::RealMac(a("10.0.0.11"))]);
        assert_eq!(
            running.configured_mac(a("10.0.0.11")),
            Some(dr_core::MacAddr([2, 0, 0, 0, 0, 0x99]))
        );
        let learned = moved.replace("mac = \"02:00:00:00:00:99\"\n", "");
        let options = LoadOptions { require_real_macs: false, ..OPTIONS };
        let Loaded { director, config: wanted, .. } = load_small(&learned, options).unwrap();
        let changes = apply(&mut running, &director, &wanted).unwrap();
        assert_eq!(changes, [Change::RealMac(a("10.0.0.11"))]);
        assert_eq!(running.configured_mac(a("10.0.0.11")), None);

        // The table's size needs a restart: refused, naming it, and nothing changed.
        let bigger = text.replace("[director]\n", "[director]\ncapacity = 4096\n");
        let err = reload(&mut running, &bigger).unwrap_err();
        assert!(err.to_string().contains("director.capacity cannot change"), "{err}");
        assert!(running.config().decrement_ttl, "nothing was undone");
    }
}
