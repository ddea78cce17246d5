//! `ipvsadm-save -n` rules, so LVS users can bring their rules file unchanged.
//!
//! Lines are `-A` (add service) and `-a` (add real server) commands with ipvsadm's short
//! or long options; blank lines and `#` comments are skipped. Real servers have no MAC in
//! this format: the caller gives them (`--neigh IP=MAC`) or the director learns them.

use crate::LineError;
use crate::netmask::parse_netmask;
use dr_core::SchedFlags;
use dr_core::{
    Config, DEFAULT_PERSISTENT_SECS, Director, MacAddr, Persistence, Protocol, RealConfig,
    SchedulerKind, ServiceConfig, ServiceKey,
};
use std::collections::HashMap;
use std::net::IpAddr;

/// Where the MAC addresses come from.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// The director's configuration (MAC, seed, capacity, timeouts).
    pub config: Config,
    /// Real servers' MACs by address.
    pub neighbours: HashMap<IpAddr, MacAddr>,
    /// Whether every real server needs a MAC from `neighbours` (a replay cannot ask by ARP).
    pub require_real_macs: bool,
}

/// Parses `IP=MAC`, as `--neigh` takes it.
///
/// # Errors
///
/// A message saying which half is wrong.
pub fn parse_neighbour(text: &str) -> Result<(IpAddr, MacAddr), String> {
    let (ip, mac) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected IP=MAC"))?;
    let ip = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    let mac = mac.parse().map_err(|e| format!("{mac:?}: {e}"))?;
    Ok((ip, mac))
}

enum Command {
    AddService,
    AddReal,
}

/// Builds a director from rules text.
///
/// # Errors
///
/// A [`LineError`] naming the line and the option at fault.
pub fn load(text: &str, options: &RulesOptions) -> Result<Director, LineError> {
    let mut director = Director::new(options.config.clone())
        .map_err(|e| LineError { line: None, message: e.to_string() })?;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let err = |message: String| LineError { line: Some(line), message };
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut words = content.split_whitespace().peekable();
        if words.peek() == Some(&"ipvsadm") {
            words.next();
        }
        let command = match words.next() {
            Some("-A" | "--add-service") => Command::AddService,
            Some("-a" | "--add-server") => Command::AddReal,
            Some(other) => {
                return Err(err(format!(
                    "{other:?}: only -A (add service) and -a (add real server) lines are read"
                )));
            }
            None => continue,
        };
        let mut service: Option<ServiceKey> = None;
        let mut scheduler: Option<SchedulerKind> = None;
        let mut real: Option<(IpAddr, Option<u16>)> = None;
        let mut weight = 1u32;
        let mut flags = SchedFlags::NONE;
        let (mut upper, mut lower) = (0u32, 0u32);
        let mut persistent: Option<u32> = None;
        let mut netmask: Option<&str> = None;
        while let Some(option) = words.next() {
            let mut value =
                |name: &str| words.next().ok_or_else(|| err(format!("{name} needs a value")));
            match option {
                "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                    let protocol = if matches!(option, "-t" | "--tcp-service") {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    };
                    let (vip, port) = parse_endpoint(value(option)?).map_err(err)?;
                    let port = port.ok_or_else(|| {
                        err(format!("{option}: the service needs a port, e.g. {vip}:80"))
                    })?;
                    service = Some(ServiceKey { protocol, vip, port });
                }
                "-f" | "--fwmark-service" => {
                    return Err(err("firewall-mark services are not supported: services are matched by protocol, VIP and port".into()));
                }
                "-s" | "--scheduler" => {
                    let name = value(option)?;
                    scheduler = Some(name.parse().map_err(|e| err(format!("-s {name}: {e}")))?);
                }
                "-r" | "--real-server" => real = Some(parse_endpoint(value(option)?).map_err(err)?),
                "-g" | "--gatewaying" => {}
                "-m" | "--masquerading" | "-i" | "--ipip" => {
                    return Err(err(format!("{option}: only direct routing (-g) is supported")));
                }
                "-w" | "--weight" => {
                    let w = value(option)?;
                    let w16: u16 =
                        w.parse().map_err(|_| err(format!("-w {w}: give a weight 0 to 65535")))?;
                    weight = u32::from(w16);
                }
                "-p" | "--persistent" => {
                    // The timeout is optional (ipvsadm's default is 360 s).
                    let secs = match words.peek().filter(|w| !w.starts_with('-')) {
                        Some(w) => {
                            let w = *w;
                            words.next();
                            w.parse().map_err(|_| {
                                err(format!("-p {w}: give the persistence timeout in seconds"))
                            })?
                        }
                        None => DEFAULT_PERSISTENT_SECS,
                    };
                    persistent = Some(secs);
                }
                "-M" | "--netmask" => netmask = Some(value(option)?),
                "-b" | "--sched-flags" => {
                    for flag in value(option)?.split(',') {
                        match flag {
                            "sh-port" | "flag-2" => flags.sh_port = true,
                            "sh-fallback" | "flag-1" => flags.sh_fallback = true,
                            other => {
                                return Err(err(format!(
                                    "-b {other}: expected sh-port or sh-fallback"
                                )));
                            }
                        }
                    }
                }
                "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
                    let v = value(option)?;
                    let n: u32 = v
                        .parse()
                        .map_err(|_| err(format!("{option} {v}: give a connection count")))?;
                    if matches!(option, "-x" | "--u-threshold") {
                        upper = n;
                    } else {
                        lower = n;
                    }
                }
                "-o" | "--ops" | "--pe" => {
                    return Err(err(format!("{option}: not available in this build; remove it")));
                }
                other => return Err(err(format!("{other:?}: unknown option"))),
            }
        }
        let key =
            service.ok_or_else(|| err("no service: give -t VIP:PORT or -u VIP:PORT".into()))?;
        match command {
            Command::AddService => {
                if real.is_some() {
                    return Err(err("-r belongs on an -a line".into()));
                }
                let scheduler = scheduler.unwrap_or_default();
                let mut config = ServiceConfig::new(key.protocol, key.vip, key.port, scheduler)
                    .with_flags(flags);
                match (persistent, netmask) {
                    (Some(secs), mask) => {
                        let mut p = Persistence::new(secs);
                        if let Some(mask) = mask {
                            let len = parse_netmask(mask, key.vip.is_ipv4())
                                .map_err(|e| err(format!("-M {mask}: {e}")))?;
                            p = p.with_prefix_len(len);
                        }
                        config = config.with_persistence(p);
                    }
                    (None, Some(mask)) => {
                        return Err(err(format!("-M {mask}: a netmask needs -p (persistence)")));
                    }
                    (None, None) => {}
                }
                director.add_service(config).map_err(|e| err(e.to_string()))?;
            }
            Command::AddReal => {
                let id = director.find_service(&key).ok_or_else(|| {
                    err(format!(
                        "service {key} is not defined: add its -A line before its -a lines"
                    ))
                })?;
                let (addr, port) =
                    real.ok_or_else(|| err("no real server: give -r IP[:PORT]".into()))?;
                if port.is_some_and(|p| p != key.port) {
                    return Err(err(format!(
                        "-r {addr}:{}: direct routing forwards to the service port; give {} or no port",
                        port.unwrap_or(0),
                        key.port
                    )));
                }
                let mut rc =
                    RealConfig::new(addr).with_weight(weight).with_thresholds(upper, lower);
                match options.neighbours.get(&addr) {
                    Some(mac) => rc = rc.with_mac(*mac),
                    None if options.require_real_macs => {
                        return Err(err(format!(
                            "real server {addr} has no MAC: add --neigh {addr}=MAC"
                        )));
                    }
                    None => {}
                }
                director.add_real(id, rc).map_err(|e| err(e.to_string()))?;
            }
        }
    }
    Ok(director)
}

/// `a.b.c.d[:port]` or `[v6][:port]`.
fn parse_endpoint(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("{text:?} is not an address (a.b.c.d:port or [v6]:port)");
    let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        (addr, after.strip_prefix(':'))
    } else {
        match text.split_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (text, None),
        }
    };
    let addr = addr.parse().map_err(|_| bad())?;
    let port =
        port.map(|p| p.parse::<u16>().map_err(|_| format!("{p:?} is not a port"))).transpose()?;
    Ok((addr, port))
}
