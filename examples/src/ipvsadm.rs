//! ipvsadm's command language, for `ipvsadm-save` rules files and for dr-director's control
//! socket: one command line parsed into a [`Rule`], then applied to a director.
//!
//! Commands: `-A`/`-E`/`-D` (services), `-a`/`-e`/`-d` (real servers), `-Z` (zero
//! counters), `-L` with `-n`, `--stats`, `--rate`, `-c`, `--timeout` or `--json`.
//! Options: `-t`/`-u` service, `-s` scheduler, `-b` flags, `-p [timeout]`, `-M netmask`,
//! `-r` real server, `-g` (the only forwarding method), `-w`, `-x`, `-y`. Short and long
//! forms are accepted, as ipvsadm accepts them.

use crate::netmask::parse_netmask;
use dr_core::{
    DEFAULT_PERSISTENT_SECS, Director, Instant, ListingFormat, MacAddr, Persistence, Protocol,
    RealConfig, RealEdit, SchedFlags, SchedulerKind, ServiceConfig, ServiceKey,
};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;

/// The highest weight: ipvsadm's `-w` takes 0 to 65535, and so do the configuration file
/// and the control socket.
pub const MAX_WEIGHT: u32 = 65_535;

/// What a command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-A`: add a service.
    AddService,
    /// `-E`: edit a service (scheduler, flags, persistence, as given: ipvsadm's defaults for
    /// what is not).
    EditService,
    /// `-D`: delete a service.
    DeleteService,
    /// `-a`: add a real server.
    AddReal,
    /// `-e`: edit a real server's weight and thresholds.
    EditReal,
    /// `-d`: delete a real server.
    DeleteReal,
    /// `-Z`: zero the counters (of one service with `-t`/`-u`).
    Zero,
    /// `-L`: a listing.
    List(Listing),
}

/// Which listing `-L` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Services, real servers, weights and connection counts.
    Plain,
    /// `--stats`.
    Stats,
    /// `--rate`.
    Rate,
    /// `-c`: the connection entries.
    Connections,
    /// `--timeout`.
    Timeout,
    /// `--json`: all of it as JSON.
    Json,
}

/// One parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The command.
    pub command: Command,
    /// `-t`/`-u`.
    pub service: Option<ServiceKey>,
    /// `-s`.
    pub scheduler: Option<SchedulerKind>,
    /// `-b`.
    pub flags: SchedFlags,
    /// `-p`, in seconds.
    pub persistent: Option<u32>,
    /// `-M`, as written.
    pub netmask: Option<String>,
    /// `-r`, with its port if given.
    pub real: Option<(IpAddr, Option<u16>)>,
    /// `-w`.
    pub weight: Option<u32>,
    /// `-x`.
    pub upper: Option<u32>,
    /// `-y`.
    pub lower: Option<u32>,
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

/// Parses one command line (without the program name; a leading `ipvsadm` is skipped).
///
/// # Errors
///
/// A message naming the option at fault and what it takes.
pub fn parse(line: &str) -> Result<Rule, String> {
    let mut words = line.split_whitespace().peekable();
    if words.peek() == Some(&"ipvsadm") {
        words.next();
    }
    let mut command = match words.next() {
        Some("-A" | "--add-service") => Command::AddService,
        Some("-E" | "--edit-service") => Command::EditService,
        Some("-D" | "--delete-service") => Command::DeleteService,
        Some("-a" | "--add-server") => Command::AddReal,
        Some("-e" | "--edit-server") => Command::EditReal,
        Some("-d" | "--delete-server") => Command::DeleteReal,
        Some("-Z" | "--zero") => Command::Zero,
        Some("-L" | "-l" | "--list") => Command::List(Listing::Plain),
        Some(other) => {
            return Err(format!("{other:?}: expected a command: -A -E -D -a -e -d -Z -L"));
        }
        None => return Err("empty command".into()),
    };
    let mut rule = Rule {
        command,
        service: None,
        scheduler: None,
        flags: SchedFlags::NONE,
        persistent: None,
        netmask: None,
        real: None,
        weight: None,
        upper: None,
        lower: None,
    };
    while let Some(option) = words.next() {
        let mut value = |name: &str| words.next().ok_or_else(|| format!("{name} needs a value"));
        match option {
            "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                let protocol = if matches!(option, "-t" | "--tcp-service") {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                };
                let (vip, port) = parse_endpoint(value(option)?)?;
                let port = port
                    .ok_or_else(|| format!("{option}: the service needs a port, e.g. {vip}:80"))?;
                rule.service = Some(ServiceKey { protocol, vip, port });
            }
            "-f" | "--fwmark-service" => {
                return Err("firewall-mark services are not supported: services are matched by protocol, VIP and port".into());
            }
            "-s" | "--scheduler" => {
                let name = value(option)?;
                rule.scheduler = Some(name.parse().map_err(|e| format!("-s {name}: {e}"))?);
            }
            "-r" | "--real-server" => rule.real = Some(parse_endpoint(value(option)?)?),
            "-g" | "--gatewaying" => {}
            "-m" | "--masquerading" | "-i" | "--ipip" => {
                return Err(format!("{option}: only direct routing (-g) is supported"));
            }
            "-w" | "--weight" => {
                let w = value(option)?;
                let weight = w
                    .parse()
                    .ok()
                    .filter(|w| *w <= MAX_WEIGHT)
                    .ok_or_else(|| format!("-w {w}: out of range: give 0 to {MAX_WEIGHT}"))?;
                rule.weight = Some(weight);
            }
            "-p" | "--persistent" => {
                // The timeout is optional (ipvsadm's default is 360 s).
                let secs = match words.peek().filter(|w| !w.starts_with('-')) {
                    Some(w) => {
                        let w = *w;
                        words.next();
                        w.parse().map_err(|_| {
                            format!("-p {w}: give the persistence timeout in seconds")
                        })?
                    }
                    None => DEFAULT_PERSISTENT_SECS,
                };
                rule.persistent = Some(secs);
            }
            "-M" | "--netmask" => rule.netmask = Some(value(option)?.to_string()),
            "-b" | "--sched-flags" => {
                for flag in value(option)?.split(',') {
                    match flag {
                        "sh-port" | "flag-2" => rule.flags.sh_port = true,
                        "sh-fallback" | "flag-1" => rule.flags.sh_fallback = true,
                        other => {
                            return Err(format!("-b {other}: expected sh-port or sh-fallback"));
                        }
                    }
                }
            }
            "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
                let v = value(option)?;
                let n: u32 =
                    v.parse().map_err(|_| format!("{option} {v}: give a connection count"))?;
                if matches!(option, "-x" | "--u-threshold") {
                    rule.upper = Some(n);
                } else {
                    rule.lower = Some(n);
                }
            }
            "-n" | "--numeric" | "--exact" => {}
            "--stats" | "--rate" | "-c" | "--connection" | "--timeout" | "--json"
                if matches!(command, Command::List(_)) =>
            {
                command = Command::List(match option {
                    "--stats" => Listing::Stats,
                    "--rate" => Listing::Rate,
                    "--timeout" => Listing::Timeout,
                    "--json" => Listing::Json,
                    _ => Listing::Connections,
                });
                rule.command = command;
            }
            "-o" | "--ops" | "--pe" => {
                return Err(format!("{option}: not available in this build; remove it"));
            }
            other => return Err(format!("{other:?}: unknown option")),
        }
    }
    Ok(rule)
}

/// Where real servers' MACs come from when a rule adds one.
#[derive(Clone, Debug, Default)]
pub struct Macs {
    /// Known MACs by address.
    pub known: HashMap<IpAddr, MacAddr>,
    /// Whether a real server without a known MAC is an error (a replay cannot ask by ARP).
    pub required: bool,
}

fn persistence(rule: &Rule, vip: IpAddr) -> Result<Option<Persistence>, String> {
    match (rule.persistent, &rule.netmask) {
        (Some(secs), mask) => {
            let mut p = Persistence::new(secs);
            if let Some(mask) = mask {
                let len =
                    parse_netmask(mask, vip.is_ipv4()).map_err(|e| format!("-M {mask}: {e}"))?;
                p = p.with_prefix_len(len);
            }
            Ok(Some(p))
        }
        (None, Some(mask)) => Err(format!("-M {mask}: a netmask needs -p (persistence)")),
        (None, None) => Ok(None),
    }
}

/// Applies a rule; returns what it prints (a listing, or nothing).
///
/// # Errors
///
/// A message saying what is wrong: a missing option, an unknown service or real server, or
/// the director's refusal.
pub fn apply(
    director: &mut Director,
    rule: &Rule,
    macs: &Macs,
    now: Instant,
) -> Result<String, String> {
    let need_service =
        || rule.service.ok_or_else(|| "no service: give -t VIP:PORT or -u VIP:PORT".to_string());
    let find = |director: &Director, key: ServiceKey| {
        director
            .find_service(&key)
            .ok_or_else(|| format!("service {key} is not defined: add it with -A first"))
    };
    let find_real = |director: &Director, key: ServiceKey| -> Result<_, String> {
        let id = find(director, key)?;
        let (addr, _) = rule.real.ok_or_else(|| "no real server: give -r IP[:PORT]".to_string())?;
        let service = director.service(id).ok_or("the service is gone")?;
        service
            .reals()
            .iter()
            .copied()
            .find(|&r| director.real(r).is_some_and(|r| r.addr() == addr))
            .ok_or_else(|| format!("real server {addr} is not in {key}"))
    };
    match rule.command {
        Command::AddService | Command::EditService => {
            if rule.real.is_some() {
                return Err("-r belongs on an -a or -e line".into());
            }
            let key = need_service()?;
            let scheduler = rule.scheduler.unwrap_or_default();
            let persistence = persistence(rule, key.vip)?;
            if rule.command == Command::AddService {
                let mut config = ServiceConfig::new(key.protocol, key.vip, key.port, scheduler)
                    .with_flags(rule.flags);
                if let Some(p) = persistence {
                    config = config.with_persistence(p);
                }
                director.add_service(config).map_err(|e| e.to_string())?;
            } else {
                let id = find(director, key)?;
                director.edit_service(id, scheduler, rule.flags).map_err(|e| e.to_string())?;
                director.set_persistence(id, persistence).map_err(|e| e.to_string())?;
            }
        }
        Command::DeleteService => {
            let id = find(director, need_service()?)?;
            director.remove_service(id).map_err(|e| e.to_string())?;
        }
        Command::AddReal => {
            let key = need_service()?;
            let id = find(director, key)?;
            let (addr, port) =
                rule.real.ok_or_else(|| "no real server: give -r IP[:PORT]".to_string())?;
            if port.is_some_and(|p| p != key.port) {
                return Err(format!(
                    "-r {addr}:{}: direct routing forwards to the service port; give {} or no port",
                    port.unwrap_or(0),
                    key.port
                ));
            }
            let mut config = RealConfig::new(addr)
                .with_weight(rule.weight.unwrap_or(1))
                .with_thresholds(rule.upper.unwrap_or(0), rule.lower.unwrap_or(0));
            match macs.known.get(&addr) {
                Some(mac) => config = config.with_mac(*mac),
                None if macs.required => {
                    return Err(format!("real server {addr} has no MAC: add --neigh {addr}=MAC"));
                }
                None => {}
            }
            director.add_real(id, config).map_err(|e| e.to_string())?;
        }
        Command::EditReal => {
            let real = find_real(director, need_service()?)?;
            let current = director.real(real).ok_or("the real server is gone")?;
            let (upper, lower) = current.thresholds();
            let edit = RealEdit::of(current)
                .with_weight(rule.weight.unwrap_or(1))
                .with_thresholds(rule.upper.unwrap_or(upper), rule.lower.unwrap_or(lower));
            director.edit_real(real, edit).map_err(|e| e.to_string())?;
        }
        Command::DeleteReal => {
            let real = find_real(director, need_service()?)?;
            director.remove_real(real).map_err(|e| e.to_string())?;
        }
        Command::Zero => match rule.service {
            Some(key) => {
                let id = find(director, key)?;
                director.zero_service_stats(id).map_err(|e| e.to_string())?;
            }
            None => director.zero_stats(),
        },
        Command::List(listing) => {
            let mut out = String::new();
            let format = match listing {
                Listing::Plain => ListingFormat::Plain,
                Listing::Stats => ListingFormat::Stats,
                Listing::Rate => ListingFormat::Rate,
                Listing::Timeout => ListingFormat::Timeout,
                Listing::Json => ListingFormat::Json,
                Listing::Connections => {
                    let _ = write!(out, "{}", director.connection_listing(now));
                    return Ok(out);
                }
            };
            let _ = write!(out, "{}", director.listing(format));
            return Ok(out);
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn director() -> Director {
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        Director::new(dr_core::Config::new(mac, [1, 2, 3, 4])).unwrap()
    }

    fn run(d: &mut Director, line: &str) -> Result<String, String> {
        let macs = Macs { known: HashMap::new(), required: false };
        apply(d, &parse(line)?, &macs, Instant::ZERO)
    }

    #[test]
    fn every_command_as_ipvsadm_takes_it() {
        let mut d = director();
        run(&mut d, "-A -t 10.0.0.100:80 -s wrr").unwrap();
        run(&mut d, "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3").unwrap();
        run(&mut d, "--add-server --tcp-service 10.0.0.100:80 --real-server 10.0.0.12 --weight 2")
            .unwrap();
        let listing = run(&mut d, "-L -n").unwrap();
        assert!(listing.contains("TCP  10.0.0.100:80 wrr\n"), "{listing}");
        assert!(listing.contains("  -> 10.0.0.11:80                 Route   3"), "{listing}");
        run(&mut d, "-e -t 10.0.0.100:80 -r 10.0.0.11 -w 0").unwrap();
        assert!(run(&mut d, "-L -n").unwrap().contains("Route   0"));
        run(&mut d, "-E -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0").unwrap();
        assert!(run(&mut d, "-L -n").unwrap().contains("rr persistent 60 mask 255.255.255.0"));
        run(&mut d, "-d -t 10.0.0.100:80 -r 10.0.0.12").unwrap();
        assert!(!run(&mut d, "-L -n").unwrap().contains("10.0.0.12"));
        assert!(run(&mut d, "-L -n --stats").unwrap().contains("Conns"));
        assert!(run(&mut d, "-L -n --rate").unwrap().contains("CPS"));
        assert!(run(&mut d, "-L --timeout").unwrap().starts_with("Timeout (tcp tcpfin udp)"));
        assert!(run(&mut d, "-L -n -c").unwrap().starts_with("IPVS connection entries"));
        assert!(run(&mut d, "-L --json").unwrap().starts_with("{\"version\""));
        run(&mut d, "-Z").unwrap();
        run(&mut d, "-Z -t 10.0.0.100:80").unwrap();
        run(&mut d, "-D -t 10.0.0.100:80").unwrap();
        assert_eq!(d.services().count(), 0);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let mut d = director();
        let cases = [
            ("-X", "expected a command"),
            ("-D -t 10.0.0.100:80", "not defined"),
            ("-A", "no service"),
            ("-A -t 10.0.0.100:80 -s fair", "unknown scheduler"),
            ("-a -t 10.0.0.100:80", "not defined"),
            ("-L --bogus", "unknown option"),
        ];
        for (line, says) in cases {
            let err = run(&mut d, line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
        run(&mut d, "-A -t 10.0.0.100:80").unwrap();
        let err = run(&mut d, "-e -t 10.0.0.100:80 -r 10.0.0.99").unwrap_err();
        assert!(err.contains("not in"), "{err}");
    }
}
