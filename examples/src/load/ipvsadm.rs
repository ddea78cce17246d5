//! ipvsadm's command language, for `ipvsadm-save` rules files and for dr-director's control
//! socket: one command line parsed into a [`Rule`], then applied to a director.
//!
//! A line is read as ipvsadm reads its arguments (see [`crate::popt`]): after an optional
//! program word (`ipvsadm`, `/sbin/ipvsadm`), the command comes first, short options bundle
//! (`-At VIP:80`, `-ar RIP`), long options are ipvsadm's (`--add-service`, `--tcp-service`,
//! `--weight=3`, …). Each command takes the options ipvsadm's table
//! (`commands_v_options`) allows it, once each; anything else is an error naming the option.
//!
//! Commands: `-A`/`-E`/`-D` (services), `-a`/`-e`/`-d` (real servers), `-C` (clear), `-Z`
//! (zero counters), `--set TCP TCPFIN UDP` (timeouts), `-S` (save: the rules that rebuild
//! the services), `-R` (restore: rules read from standard input, see [`crate::control`]),
//! `-L` with `-n`, `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `-c`,
//! `--timeout` or `--json`, `-t`/`-u` for one service, `--exact`, `--sort` (the default),
//! `--nosort`, and dr's `--per-worker`. Options: `-t`/`-u` service (`VIP:PORT`, or `VIP`
//! alone for a persistent port-0 service), `-s` scheduler, `-b` flags (as ipvsadm names
//! them: `sh-fallback`, `sh-port` for `sh`, `flag-1` to `flag-3`), `-p [timeout]`,
//! `-M netmask`, `-o` (`--ops`, one-packet scheduling: UDP services only, as ipvsadm says),
//! `-r` real server, `-g` (direct routing, the default and only forwarding method), `-w`,
//! `-x`, `-y`. NAT (`-m`), tunnelling (`-i`, `--tun-*`) and firewall-mark
//! services (`-f`) are refused: the director does direct routing only.

use crate::endpoint::parse_endpoint;
use crate::netmask::parse_netmask;
use crate::popt::{self, Spec, Takes, Token};
use dr_core::{
    DEFAULT_PERSISTENT_SECS, Director, Instant, ListingFormat, ListingOptions, MacAddr,
    Persistence, Protocol, RealConfig, RealEdit, SchedFlags, SchedulerKind, ServiceConfig,
    ServiceKey, TimeoutSettings,
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
    /// `-C`: remove every service.
    Clear,
    /// `-Z`: zero the counters (of one service with `-t`/`-u`).
    Zero,
    /// `--set TCP TCPFIN UDP`: the timeouts, in seconds (0 keeps the current value).
    SetTimeouts(TimeoutSettings),
    /// `-S`: the `-A` and `-a` lines that rebuild the services (`ipvsadm -S -n`).
    Save,
    /// `-R`: rules from standard input, applied in order.
    Restore,
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
    /// `--thresholds`: each real server's upper and lower connection thresholds.
    Thresholds,
    /// `--persistent-conn`: each real server's persistence templates.
    PersistentConn,
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
    /// `-o` (`--ops`): one-packet scheduling.
    pub ops: bool,
    /// `-r`, with its port if given.
    pub real: Option<(IpAddr, Option<u16>)>,
    /// `-w`.
    pub weight: Option<u32>,
    /// `-x`.
    pub upper: Option<u32>,
    /// `-y`.
    pub lower: Option<u32>,
    /// `--exact` (listings): numbers in full.
    pub exact: bool,
    /// Listings sorted as ipvsadm sorts them; `false` with `--nosort`.
    pub sorted: bool,
    /// `--per-worker` (dr's): with several workers, each worker's own listing.
    pub per_worker: bool,
}

impl Rule {
    /// The listing options of a `-L` or `-S` line (none for `-c`, whose entries are listed
    /// in the table's order).
    pub fn listing_options(&self) -> Option<ListingOptions> {
        let format = match self.command {
            Command::Save => ListingFormat::Rules,
            Command::List(Listing::Plain) => ListingFormat::Plain,
            Command::List(Listing::Stats) => ListingFormat::Stats,
            Command::List(Listing::Rate) => ListingFormat::Rate,
            Command::List(Listing::Thresholds) => ListingFormat::Thresholds,
            Command::List(Listing::PersistentConn) => ListingFormat::PersistentConn,
            Command::List(Listing::Timeout) => ListingFormat::Timeout,
            Command::List(Listing::Json) => ListingFormat::Json,
            _ => return None,
        };
        Some(
            ListingOptions::new(format)
                .exact(self.exact)
                .sorted(self.sorted)
                .service(self.service.filter(|_| matches!(self.command, Command::List(_)))),
        )
    }

    /// Whether the line changes the director (everything but listings and `-S`).
    pub fn mutates(&self) -> bool {
        !matches!(self.command, Command::List(_) | Command::Save)
    }
}

/// Every option ipvsadm 1.31 has (`options_table` in ipvsadm.c), and `--json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    Timeout,
    Stats,
    Rate,
    Json,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    Daemon,
    SyncDaemonOption,
    TunInfo,
    Tunnel,
    PerWorker,
}

const fn opt(short: Option<char>, long: &'static str, takes: Takes, id: Opt) -> Spec<Opt> {
    Spec { short, long: Some(long), takes, id }
}

const NONE: Takes = Takes::Nothing;
const VALUE: Takes = Takes::Value;

/// ipvsadm's `options_table`, in its order.
const OPTIONS: &[Spec<Opt>] = &[
    opt(Some('A'), "add-service", NONE, Opt::AddService),
    opt(Some('E'), "edit-service", NONE, Opt::EditService),
    opt(Some('D'), "delete-service", NONE, Opt::DeleteService),
    opt(Some('C'), "clear", NONE, Opt::Clear),
    opt(Some('L'), "list", NONE, Opt::List),
    opt(Some('l'), "list", NONE, Opt::List),
    opt(Some('Z'), "zero", NONE, Opt::Zero),
    opt(Some('a'), "add-server", NONE, Opt::AddServer),
    opt(Some('e'), "edit-server", NONE, Opt::EditServer),
    opt(Some('d'), "delete-server", NONE, Opt::DeleteServer),
    opt(None, "set", NONE, Opt::Set),
    opt(Some('h'), "help", NONE, Opt::Help),
    opt(Some('v'), "version", NONE, Opt::Version),
    opt(Some('R'), "restore", NONE, Opt::Restore),
    opt(Some('S'), "save", NONE, Opt::Save),
    opt(None, "start-daemon", VALUE, Opt::StartDaemon),
    opt(None, "stop-daemon", VALUE, Opt::StopDaemon),
    opt(Some('t'), "tcp-service", VALUE, Opt::Tcp),
    opt(Some('u'), "udp-service", VALUE, Opt::Udp),
    opt(None, "sctp-service", VALUE, Opt::Sctp),
    opt(Some('f'), "fwmark-service", VALUE, Opt::Fwmark),
    opt(Some('s'), "scheduler", VALUE, Opt::Scheduler),
    opt(Some('p'), "persistent", Takes::OptionalValue, Opt::Persistent),
    opt(Some('M'), "netmask", VALUE, Opt::Netmask),
    opt(Some('r'), "real-server", VALUE, Opt::RealServer),
    opt(Some('m'), "masquerading", NONE, Opt::Masquerading),
    opt(Some('i'), "ipip", NONE, Opt::Ipip),
    opt(Some('g'), "gatewaying", NONE, Opt::Gatewaying),
    opt(Some('w'), "weight", VALUE, Opt::Weight),
    opt(Some('x'), "u-threshold", VALUE, Opt::UThreshold),
    opt(Some('y'), "l-threshold", VALUE, Opt::LThreshold),
    opt(Some('n'), "numeric", NONE, Opt::Numeric),
    opt(Some('c'), "connection", NONE, Opt::Connection),
    opt(None, "mcast-interface", VALUE, Opt::SyncDaemonOption),
    opt(None, "syncid", VALUE, Opt::SyncDaemonOption),
    opt(None, "timeout", NONE, Opt::Timeout),
    opt(None, "daemon", NONE, Opt::Daemon),
    opt(None, "stats", NONE, Opt::Stats),
    opt(None, "rate", NONE, Opt::Rate),
    opt(None, "thresholds", NONE, Opt::Thresholds),
    opt(None, "persistent-conn", NONE, Opt::PersistentConn),
    opt(None, "nosort", NONE, Opt::NoSort),
    opt(None, "sort", NONE, Opt::Sort),
    opt(Some('X'), "exact", NONE, Opt::Exact),
    opt(Some('6'), "ipv6", NONE, Opt::Ipv6),
    opt(Some('o'), "ops", NONE, Opt::Ops),
    opt(None, "pe", VALUE, Opt::Pe),
    opt(Some('b'), "sched-flags", VALUE, Opt::SchedFlags),
    opt(None, "mcast-group", VALUE, Opt::SyncDaemonOption),
    opt(None, "mcast-port", VALUE, Opt::SyncDaemonOption),
    opt(None, "mcast-ttl", VALUE, Opt::SyncDaemonOption),
    opt(None, "sync-maxlen", VALUE, Opt::SyncDaemonOption),
    opt(None, "tun-info", NONE, Opt::TunInfo),
    opt(None, "tun-type", VALUE, Opt::Tunnel),
    opt(None, "tun-port", VALUE, Opt::Tunnel),
    opt(None, "tun-nocsum", NONE, Opt::Tunnel),
    opt(None, "tun-csum", NONE, Opt::Tunnel),
    opt(None, "tun-remcsum", NONE, Opt::Tunnel),
    opt(None, "json", NONE, Opt::Json),
    opt(None, "per-worker", NONE, Opt::PerWorker),
];

/// The commands dr takes, for messages.
const COMMANDS: &str = "-A -E -D -a -e -d -C -Z -L -S -R --set";

/// What a command is called in ipvsadm's messages (`cmdnames`).
fn command_name(command: Command) -> &'static str {
    match command {
        Command::AddService => "add-service",
        Command::EditService => "edit-service",
        Command::DeleteService => "delete-service",
        Command::AddReal => "add-server",
        Command::EditReal => "edit-server",
        Command::DeleteReal => "delete-server",
        Command::Clear => "clear",
        Command::Zero => "zero",
        Command::SetTimeouts(_) => "set",
        Command::Save => "save",
        Command::Restore => "restore",
        Command::List(_) => "list",
    }
}

/// The option kinds of ipvsadm's `commands_v_options` table that dr takes, named as its
/// messages name them (`optnames`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Numeric,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    SchedFlags,
    /// `-o`: one-packet scheduling.
    Ops,
    /// `-c`: the connection entries.
    Connection,
    /// `--timeout`.
    Timeout,
    /// `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--json`: which layout.
    Listing,
    /// `--exact`.
    Exact,
    /// `--nosort`.
    NoSort,
    /// `--per-worker`.
    PerWorker,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Numeric => "numeric",
            Self::Service => "service-address",
            Self::Scheduler => "scheduler",
            Self::Persistent => "persistent",
            Self::Netmask => "netmask",
            Self::Server => "real-server",
            Self::Forward => "forwarding-method",
            Self::Weight => "weight",
            Self::UThreshold => "u-threshold",
            Self::LThreshold => "l-threshold",
            Self::SchedFlags => "sched-flags",
            Self::Ops => "ops",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Listing => "listing",
            Self::Exact => "exact",
            Self::NoSort => "nosort",
            Self::PerWorker => "per-worker",
        }
    }
}

/// Whether a command must have, may have, or must not have an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Legal {
    Required,
    Optional,
    Illegal,
}

/// ipvsadm's `commands_v_options`, for the commands and options dr takes.
fn legal(command: Command, kind: Kind) -> Legal {
    use Kind as K;
    use Legal::{Illegal, Optional, Required};
    match (command, kind) {
        (Command::AddService | Command::EditService, K::Service) => Required,
        (
            Command::AddService | Command::EditService,
            K::Scheduler | K::Persistent | K::Netmask | K::SchedFlags | K::Ops,
        ) => Optional,
        (Command::DeleteService, K::Service) => Required,
        (Command::AddReal | Command::EditReal | Command::DeleteReal, K::Service | K::Server) => {
            Required
        }
        (
            Command::AddReal | Command::EditReal,
            K::Forward | K::Weight | K::UThreshold | K::LThreshold,
        ) => Optional,
        (Command::Zero, K::Service) => Optional,
        (
            Command::List(_),
            K::Numeric
            | K::Service
            | K::Connection
            | K::Timeout
            | K::Listing
            | K::Exact
            | K::NoSort
            | K::PerWorker,
        ) => Optional,
        (Command::Save, K::Numeric) => Optional,
        _ => Illegal,
    }
}

/// What dr says of an ipvsadm option it does not take.
fn refusal(id: Opt, written: &str) -> Option<String> {
    const DR_ONLY: &str = "dr does direct routing only";
    let message = match id {
        Opt::Masquerading => format!(
            "{written} (masquerading, NAT): {DR_ONLY}: forward with -g (gatewaying, the default)"
        ),
        Opt::Ipip => format!(
            "{written} (ipip, tunnelling): {DR_ONLY}: forward with -g (gatewaying, the default)"
        ),
        Opt::Tunnel => {
            format!("{written} (tunnelling): {DR_ONLY}: forward with -g (gatewaying, the default)")
        }
        Opt::Fwmark => format!(
            "{written} (fwmark-service): {DR_ONLY}, of services given by protocol, VIP and \
             port: give -t VIP:PORT or -u VIP:PORT instead of a firewall mark"
        ),
        Opt::Ipv6 => format!(
            "{written} (ipv6) belongs to -f (fwmark-service): {DR_ONLY}, of services given by \
             protocol, VIP and port: an IPv6 service is -t [V6]:PORT"
        ),
        Opt::Sctp => {
            format!("{written}: SCTP services are not supported: give -t (TCP) or -u (UDP)")
        }
        Opt::Pe => format!("{written} (persistence engine): not supported; remove it"),
        Opt::TunInfo | Opt::Daemon => format!(
            "{written}: that listing is not available: -L -n, --stats, --rate, --thresholds, \
             --persistent-conn, -c, --timeout or --json"
        ),
        Opt::SyncDaemonOption | Opt::StartDaemon | Opt::StopDaemon => format!(
            "{written}: the connection synchronisation daemon is not driven by ipvsadm commands; \
             remove it"
        ),
        Opt::Help | Opt::Version => {
            format!("{written}: not a command dr takes here: {COMMANDS}")
        }
        _ => return None,
    };
    Some(message)
}

/// The command an option word starts, if it is one dr takes.
fn command_of(id: Opt) -> Option<Command> {
    Some(match id {
        Opt::AddService => Command::AddService,
        Opt::EditService => Command::EditService,
        Opt::DeleteService => Command::DeleteService,
        Opt::AddServer => Command::AddReal,
        Opt::EditServer => Command::EditReal,
        Opt::DeleteServer => Command::DeleteReal,
        Opt::Clear => Command::Clear,
        Opt::Zero => Command::Zero,
        Opt::List => Command::List(Listing::Plain),
        Opt::Set => Command::SetTimeouts(TimeoutSettings { tcp: 0, tcpfin: 0, udp: 0 }),
        Opt::Save => Command::Save,
        Opt::Restore => Command::Restore,
        _ => return None,
    })
}

fn is_command(id: Opt) -> bool {
    matches!(
        id,
        Opt::AddService
            | Opt::EditService
            | Opt::DeleteService
            | Opt::Clear
            | Opt::List
            | Opt::Zero
            | Opt::AddServer
            | Opt::EditServer
            | Opt::DeleteServer
            | Opt::Set
            | Opt::Help
            | Opt::Version
            | Opt::Restore
            | Opt::Save
            | Opt::StartDaemon
            | Opt::StopDaemon
    )
}

/// `0 ..= max`, or a message naming the option and the range.
fn number(option: &str, value: &str, what: &str, max: u32) -> Result<u32, String> {
    if !value.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') || value.is_empty() {
        return Err(format!("{option} {value:?}: give {what}, 0 to {max}"));
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| format!("{option} {value}: out of range: give 0 to {max}"))
}

/// Parses one command line, as ipvsadm reads its arguments (the module docs say how).
///
/// # Errors
///
/// A message naming the option at fault and what it takes.
pub fn parse(line: &str) -> Result<Rule, String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let program = words.first().is_some_and(|w| *w == "ipvsadm" || w.ends_with("/ipvsadm"));
    if program {
        words.remove(0);
    }
    let mut tokens = popt::split(&words, OPTIONS)?.into_iter();
    let (mut command, command_written) = match tokens.next() {
        // ipvsadm without arguments lists the table.
        None if program => (Command::List(Listing::Plain), "ipvsadm".to_string()),
        None => return Err("empty command".into()),
        Some(Token::Argument(word)) => {
            return Err(format!("{word:?}: expected a command: {COMMANDS}"));
        }
        Some(Token::Option { id, written, .. }) => match command_of(id) {
            Some(command) => (command, written),
            None => {
                if let Some(refused) = refusal(id, &written).filter(|_| is_command(id)) {
                    return Err(refused);
                }
                return Err(format!("{written}: expected a command first: {COMMANDS}"));
            }
        },
    };
    let mut rule = Rule {
        command,
        service: None,
        scheduler: None,
        flags: SchedFlags::NONE,
        persistent: None,
        netmask: None,
        ops: false,
        real: None,
        weight: None,
        upper: None,
        lower: None,
        exact: false,
        sorted: true,
        per_worker: false,
    };
    let mut seen: Vec<(Kind, String)> = Vec::new();
    let mut arguments = Vec::new();
    // -b is read once the scheduler is known, as ipvsadm's parse_sched_flags is.
    let mut flags: Option<(String, String)> = None;
    let mut layout: Option<Listing> = None;
    for token in tokens {
        let (id, written, value) = match token {
            Token::Argument(word) => {
                arguments.push(word);
                continue;
            }
            Token::Option { id, written, value } => (id, written, value),
        };
        // Every option but -p has its value when it takes one (popt::split sees to it).
        let optional = value;
        let value = value.unwrap_or_default();
        if is_command(id) {
            return Err(format!(
                "{command_written} and {written}: one command per line (ipvsadm: multiple \
                 commands specified)"
            ));
        }
        if let Some(refused) = refusal(id, &written) {
            return Err(refused);
        }
        let kind = match id {
            Opt::Tcp | Opt::Udp => {
                let protocol = if id == Opt::Tcp { Protocol::Tcp } else { Protocol::Udp };
                let (vip, port) = parse_endpoint(value).map_err(|e| format!("{written}: {e}"))?;
                rule.service = Some(ServiceKey { protocol, vip, port: port.unwrap_or(0) });
                Kind::Service
            }
            Opt::Scheduler => {
                rule.scheduler =
                    Some(value.parse().map_err(|e| format!("{written} {value}: {e}"))?);
                Kind::Scheduler
            }
            Opt::Persistent => {
                // Without a value, ipvsadm's default of 360 s.
                rule.persistent = Some(match optional {
                    None => DEFAULT_PERSISTENT_SECS,
                    Some(v) => v.parse().map_err(|_| {
                        format!("{written} {v:?}: give the persistence timeout in seconds")
                    })?,
                });
                Kind::Persistent
            }
            Opt::Netmask => {
                rule.netmask = Some(value.to_string());
                Kind::Netmask
            }
            Opt::RealServer => {
                rule.real = Some(parse_endpoint(value).map_err(|e| format!("{written}: {e}"))?);
                Kind::Server
            }
            Opt::Gatewaying => Kind::Forward,
            Opt::Ops => {
                rule.ops = true;
                Kind::Ops
            }
            Opt::Weight => {
                rule.weight = Some(number(&written, value, "a weight", MAX_WEIGHT)?);
                Kind::Weight
            }
            Opt::UThreshold | Opt::LThreshold => {
                let n = number(&written, value, "a connection count", i32::MAX as u32)?;
                if id == Opt::UThreshold {
                    rule.upper = Some(n);
                    Kind::UThreshold
                } else {
                    rule.lower = Some(n);
                    Kind::LThreshold
                }
            }
            Opt::SchedFlags => {
                flags = Some((written.clone(), value.to_string()));
                Kind::SchedFlags
            }
            Opt::Numeric => Kind::Numeric,
            // ipvsadm sorts by default; --sort is accepted and changes nothing.
            Opt::Sort => continue,
            Opt::NoSort => {
                rule.sorted = false;
                Kind::NoSort
            }
            Opt::Exact => {
                rule.exact = true;
                Kind::Exact
            }
            Opt::PerWorker => {
                rule.per_worker = true;
                Kind::PerWorker
            }
            Opt::Connection => Kind::Connection,
            Opt::Timeout => Kind::Timeout,
            Opt::Stats | Opt::Rate | Opt::Thresholds | Opt::PersistentConn | Opt::Json => {
                layout = Some(match id {
                    Opt::Stats => Listing::Stats,
                    Opt::Rate => Listing::Rate,
                    Opt::Thresholds => Listing::Thresholds,
                    Opt::PersistentConn => Listing::PersistentConn,
                    _ => Listing::Json,
                });
                Kind::Listing
            }
            _ => return Err(format!("{written}: unknown option")),
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == kind) {
            return Err(match kind {
                Kind::Listing => format!("{first} and {written}: give one listing option"),
                _ => format!("{first} and {written}: one {} option per line", kind.name()),
            });
        }
        if legal(command, kind) == Legal::Illegal {
            return Err(format!(
                "{written} ({}) does not go with {command_written} ({})",
                kind.name(),
                command_name(command)
            ));
        }
        seen.push((kind, written));
    }
    for kind in [Kind::Service, Kind::Server] {
        if legal(command, kind) == Legal::Required && !seen.iter().any(|(k, _)| *k == kind) {
            let name = command_name(command);
            return Err(match kind {
                Kind::Service => format!(
                    "no service: {command_written} ({name}) needs -t VIP:PORT or -u VIP:PORT"
                ),
                _ => format!("no real server: {command_written} ({name}) needs -r IP[:PORT]"),
            });
        }
    }
    // ipvsadm's own check, before it asks the kernel (which would take the flag, and do
    // nothing with it: only UDP datagrams are scheduled one by one).
    if let (true, Some(key)) = (rule.ops, rule.service)
        && key.protocol != Protocol::Udp
    {
        let written = seen.iter().find(|(k, _)| *k == Kind::Ops).map_or("-o", |(_, w)| w);
        return Err(format!(
            "{written} (ops): One-Packet Scheduling is only for UDP virtual services \
             (ipvsadm refuses it for {}): give -u VIP:PORT, or remove {written}",
            service_option(key)
        ));
    }
    if let Some((written, names)) = flags {
        let scheduler = rule.scheduler.unwrap_or_default();
        for name in names.split(',') {
            rule.flags = rule.flags.with_named(name, scheduler).map_err(|e| match e {
                dr_core::SchedFlagError::Incompatible => {
                    let owner = if name.starts_with("mh") { "mh" } else { "sh" };
                    format!(
                        "{written} {name}: a flag of the {owner} scheduler, not of {scheduler} \
                         (ipvsadm: incompatible scheduler flag): give -s {owner}, or flag-1, \
                         flag-2, flag-3"
                    )
                }
                _ => format!(
                    "{written} {name}: expected sh-fallback or sh-port (sh), mh-fallback or \
                     mh-port (mh), or flag-1, flag-2, flag-3"
                ),
            })?;
        }
    }
    if let Command::List(_) = command {
        command = Command::List(list_layout(&seen, layout)?);
    }
    if let Command::SetTimeouts(_) = command {
        let [tcp, tcpfin, udp] = arguments[..] else {
            return Err(format!(
                "{command_written} needs three timeouts in seconds: {command_written} TCP TCPFIN \
                 UDP (0 keeps the current value)"
            ));
        };
        let secs = |v: &str| {
            v.parse::<u32>().map_err(|_| {
                format!("{command_written} {tcp} {tcpfin} {udp}: {v:?} is not a number of seconds")
            })
        };
        command = Command::SetTimeouts(TimeoutSettings {
            tcp: secs(tcp)?,
            tcpfin: secs(tcpfin)?,
            udp: secs(udp)?,
        });
    } else if let Some(word) = arguments.first() {
        return Err(format!("{word:?}: unexpected argument"));
    }
    rule.command = command;
    Ok(rule)
}

/// Which listing a `-L` line asks for, with ipvsadm's checks: one of `-c`, `--timeout` and
/// a service (`commands_v_options`), and neither `-c` nor `--timeout` with a layout of
/// services ("options conflicts in the list command").
fn list_layout(seen: &[(Kind, String)], layout: Option<Listing>) -> Result<Listing, String> {
    let written = |kind: Kind| seen.iter().find(|(k, _)| *k == kind).map(|(_, w)| w.as_str());
    let one_of: Vec<&str> = seen
        .iter()
        .filter(|(k, _)| matches!(k, Kind::Connection | Kind::Timeout | Kind::Service))
        .map(|(_, w)| w.as_str())
        .collect();
    if let [first, second, ..] = one_of[..] {
        return Err(format!(
            "{first} and {second}: a listing is of the connections (-c), the timeouts \
             (--timeout) or the services (one with -t/-u), not two of them (ipvsadm: the \
             option conflicts)"
        ));
    }
    let by = written(Kind::Connection).or(written(Kind::Timeout));
    match (by, layout, written(Kind::Listing)) {
        (Some(by), Some(_), Some(other)) => Err(format!(
            "{by} and {other}: {other} is a layout of the services, not of {by} (ipvsadm: \
             options conflicts in the list command)"
        )),
        (Some(_), _, _) if written(Kind::Connection).is_some() => Ok(Listing::Connections),
        (Some(_), _, _) => Ok(Listing::Timeout),
        (None, layout, _) => Ok(layout.unwrap_or(Listing::Plain)),
    }
}

/// How a restore is given its rules.
pub const RESTORE_HOW: &str = "dr-director ctl -R < RULES";

/// A service as ipvsadm's options name it: `-t 10.0.0.100:80`, `-u [2001:db8::1]:53`.
pub fn service_option(key: ServiceKey) -> String {
    let endpoint = match key.vip {
        IpAddr::V4(ip) => format!("{ip}:{}", key.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", key.port),
    };
    format!("{} {endpoint}", key.protocol.option())
}

/// ipvsadm's "No such service", for a service a director does not have.
pub fn no_such_service(key: ServiceKey) -> String {
    format!("No such service: {} is not defined: add it with -A first", service_option(key))
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
    // ipvsadm's words (ipvs_strerror): "Service not defined" for the real server
    // commands, "No such service" for the others.
    let find = |director: &Director, key: ServiceKey| {
        director.find_service(&key).ok_or_else(|| {
            let words = match rule.command {
                Command::AddReal | Command::EditReal | Command::DeleteReal => "Service not defined",
                _ => "No such service",
            };
            format!("{words}: {} is not defined: add it with -A first", service_option(key))
        })
    };
    // Direct routing forwards to the service's port: ipvsadm puts it on every real server.
    let need_real = |key: ServiceKey| -> Result<IpAddr, String> {
        let (addr, port) =
            rule.real.ok_or_else(|| "no real server: give -r IP[:PORT]".to_string())?;
        match port {
            Some(port) if port != key.port => Err(format!(
                "-r {}: direct routing forwards to the service port; give {} or no port",
                std::net::SocketAddr::new(addr, port),
                std::net::SocketAddr::new(addr, key.port)
            )),
            _ => Ok(addr),
        }
    };
    let find_real = |director: &Director, key: ServiceKey| -> Result<_, String> {
        let id = find(director, key)?;
        let addr = need_real(key)?;
        let service = director.service(id).ok_or("the service is gone")?;
        service
            .reals()
            .iter()
            .copied()
            .find(|&r| director.real(r).is_some_and(|r| r.addr() == addr))
            .ok_or_else(|| {
                format!("No such destination: real server {addr} is not in {}", service_option(key))
            })
    };
    match rule.command {
        Command::AddService | Command::EditService => {
            if rule.real.is_some() {
                return Err("-r belongs on an -a or -e line".into());
            }
            let key = need_service()?;
            let scheduler = rule.scheduler.unwrap_or_default();
            let persistence = persistence(rule, key.vip)?;
            if key.port == 0 && persistence.is_none() {
                return Err(format!(
                    "service {key} has port 0 (every port), which ipvsadm takes only for a \
                     persistent service: add -p [TIMEOUT], or give the port"
                ));
            }
            if rule.command == Command::AddService {
                let mut config = ServiceConfig::new(key.protocol, key.vip, key.port, scheduler)
                    .with_flags(rule.flags)
                    .with_one_packet(rule.ops);
                if let Some(p) = persistence {
                    config = config.with_persistence(p);
                }
                director
                    .add_service(config)
                    .map_err(|e| format!("{}: {e}", service_option(key)))?;
            } else {
                let id = find(director, key)?;
                director.edit_service(id, scheduler, rule.flags).map_err(|e| e.to_string())?;
                director.set_persistence(id, persistence).map_err(|e| e.to_string())?;
                // -E sets the service's flags as given: without -o, ops is cleared.
                director.set_one_packet(id, rule.ops).map_err(|e| e.to_string())?;
            }
        }
        Command::DeleteService => {
            let id = find(director, need_service()?)?;
            director.remove_service(id).map_err(|e| e.to_string())?;
        }
        Command::AddReal => {
            let key = need_service()?;
            let id = find(director, key)?;
            let addr = need_real(key)?;
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
            // The director's checks (loopback, multicast, a VIP of its own…), naming -r.
            director.add_real(id, config).map_err(|e| format!("-r {addr}: {e}"))?;
        }
        Command::EditReal => {
            let real = find_real(director, need_service()?)?;
            let current = director.real(real).ok_or("the real server is gone")?;
            // As ipvsadm -e: what is not given takes its default (weight 1, thresholds 0).
            let edit = RealEdit::of(current)
                .with_weight(rule.weight.unwrap_or(1))
                .with_thresholds(rule.upper.unwrap_or(0), rule.lower.unwrap_or(0));
            director.edit_real(real, edit).map_err(|e| e.to_string())?;
        }
        Command::DeleteReal => {
            let real = find_real(director, need_service()?)?;
            director.remove_real(real).map_err(|e| e.to_string())?;
        }
        Command::Clear => {
            let ids: Vec<_> = director.services().map(|(id, _)| id).collect();
            for id in ids {
                director.remove_service(id).map_err(|e| e.to_string())?;
            }
        }
        Command::SetTimeouts(settings) => {
            director.set_timeouts(settings).map_err(|e| e.to_string())?;
        }
        Command::Zero => match rule.service {
            Some(key) => {
                let id = find(director, key)?;
                director.zero_service_stats(id).map_err(|e| e.to_string())?;
            }
            None => director.zero_stats(),
        },
        Command::Restore => {
            return Err(format!("-R (restore) reads its rules from standard input: {RESTORE_HOW}"));
        }
        Command::Save | Command::List(_) => {
            let mut out = String::new();
            if let Some(key) = rule.service.filter(|_| rule.command != Command::Save) {
                find(director, key)?;
            }
            match rule.listing_options() {
                Some(options) => {
                    let _ = write!(out, "{}", director.listing(options));
                }
                None => {
                    let _ = write!(out, "{}", director.connection_listing(now));
                }
            }
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
            ("-t 10.0.0.100:80 -A", "-t: expected a command first"),
            ("foo", "\"foo\": expected a command"),
            ("", "empty command"),
            ("-D -t 10.0.0.100:80", "not defined"),
            ("-A", "no service: -A (add-service) needs -t VIP:PORT or -u VIP:PORT"),
            ("-a -t 10.0.0.100:80", "no real server: -a (add-server) needs -r IP[:PORT]"),
            ("-A -t 10.0.0.100:80 -s fair", "unknown scheduler"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11", "not defined"),
            ("-L --bogus", "unknown option"),
            ("-A -t 10.0.0.100:80 -a", "-A and -a: one command per line"),
            ("-A -t 10.0.0.100:80 -u 10.0.0.100:53", "-t and -u: one service-address option"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11 -w 1 -w 2", "-w and -w: one weight option"),
            ("-A -t 10.0.0.100:80 -w 2", "-w (weight) does not go with -A (add-service)"),
            ("-A -t 10.0.0.100:80 -r 10.0.0.11", "-r (real-server) does not go with -A"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11 -s rr", "-s (scheduler) does not go with -a"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11 -n", "-n (numeric) does not go with -a"),
            ("-d -t 10.0.0.100:80 -r 10.0.0.11 -w 2", "-w (weight) does not go with -d"),
            ("-C -t 10.0.0.100:80", "-t (service-address) does not go with -C (clear)"),
            ("-A -t 10.0.0.100:80 extra", "\"extra\": unexpected argument"),
            ("-L --stats --rate", "--stats and --rate: give one listing option"),
            ("-L -n -t 10.0.0.9:80", "No such service: -t 10.0.0.9:80 is not defined"),
            ("-A -t 10.0.0.100:80 --stats", "--stats (listing) does not go with -A"),
            ("-L -c -t 10.0.0.100:80", "-c and -t: a listing is of the connections (-c)"),
            ("-L --timeout -c", "--timeout and -c: a listing is of"),
            ("-L -c --stats", "-c and --stats: --stats is a layout of the services"),
            ("-L --timeout --persistent-conn", "(ipvsadm: options conflicts in the list"),
            ("-L --thresholds --rate", "--thresholds and --rate: give one listing option"),
            ("-S -n -t 10.0.0.100:80", "-t (service-address) does not go with -S (save)"),
            ("-S --nosort", "--nosort (nosort) does not go with -S (save)"),
            ("-R", "-R (restore) reads its rules from standard input"),
            ("-Z --exact", "--exact (exact) does not go with -Z (zero)"),
            ("-A -t 10.0.0.100:80 -s rr -b sh-port", "a flag of the sh scheduler, not of rr"),
            ("-A -t 10.0.0.100:80 -b sh-fallback -s sh -b flag-1", "one sched-flags option"),
            ("-A -t 10.0.0.100:80 -s sh -b sh-bogus", "-b sh-bogus: expected sh-fallback"),
            ("-E -t 10.0.0.9:80", "No such service: -t 10.0.0.9:80"),
            ("-a -t 10.0.0.9:80 -r 10.0.0.11", "Service not defined: -t 10.0.0.9:80"),
            ("--set 900 120", "--set needs three timeouts"),
            ("--set 900 120 x", "\"x\" is not a number of seconds"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11 -x -1", "-x -1: out of range"),
            ("-a -t 10.0.0.100:80 -r 10.0.0.11 -y 2147483648", "0 to 2147483647"),
            ("-A -t 10.0.0.100:80 -p 1m", "-p \"1m\": give the persistence timeout in seconds"),
            ("-A -t 10.0.0.100:80 --persistent=", "--persistent \"\": give the persistence"),
        ];
        for (line, says) in cases {
            let err = run(&mut d, line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
        run(&mut d, "-A -t 10.0.0.100:80").unwrap();
        let err = run(&mut d, "-e -t 10.0.0.100:80 -r 10.0.0.99").unwrap_err();
        assert!(err.contains("No such destination: real server 10.0.0.99 is not in"), "{err}");
        let err = run(&mut d, "-d -t 10.0.0.100:80 -r 10.0.0.99:8080").unwrap_err();
        assert!(err.contains("give 10.0.0.99:80 or no port"), "{err}");
    }

    #[test]
    fn lines_as_ipvsadm_reads_them() {
        let service = |port| {
            Some(ServiceKey { protocol: Protocol::Tcp, vip: "10.0.0.1".parse().unwrap(), port })
        };
        for line in [
            "-A -t 10.0.0.1:80 -s rr",
            "ipvsadm -A -t 10.0.0.1:80 -s rr",
            "/sbin/ipvsadm -A -t 10.0.0.1:80 -s rr",
            "/usr/sbin/ipvsadm -At 10.0.0.1:80 -srr",
            "-At10.0.0.1:80 -s=rr",
            "--add-service --tcp-service=10.0.0.1:80 --scheduler rr",
        ] {
            let rule = parse(line).unwrap();
            assert_eq!(rule.command, Command::AddService, "{line}");
            assert_eq!(rule.service, service(80), "{line}");
            assert_eq!(rule.scheduler, Some(SchedulerKind::Rr), "{line}");
        }
        let rule = parse("-ar 10.0.0.2 -t 10.0.0.1:80 -gw 5 -x 10 --l-threshold=2").unwrap();
        assert_eq!(rule.command, Command::AddReal);
        assert_eq!(rule.real, Some(("10.0.0.2".parse().unwrap(), None)));
        assert_eq!((rule.weight, rule.upper, rule.lower), (Some(5), Some(10), Some(2)));
        // A port-less service is port 0; -p takes a timeout only when one follows.
        let rule = parse("-A -t 10.0.0.1 -p -s lc").unwrap();
        assert_eq!((rule.service, rule.persistent), (service(0), Some(360)));
        let rule = parse("-A -t 10.0.0.1 -s lc --persistent 1999999").unwrap();
        assert_eq!(rule.persistent, Some(1_999_999));
        let rule = parse("-A -t 10.0.0.1 -p").unwrap();
        assert_eq!(rule.persistent, Some(360));
        assert_eq!(parse("-C").unwrap().command, Command::Clear);
        assert_eq!(parse("/sbin/ipvsadm").unwrap().command, Command::List(Listing::Plain));
        assert_eq!(parse("--clear").unwrap().command, Command::Clear);
        assert_eq!(parse("-Ln").unwrap().command, Command::List(Listing::Plain));
        assert_eq!(parse("-lnc").unwrap().command, Command::List(Listing::Connections));
        assert_eq!(parse("-L -n --sort --stats").unwrap().command, Command::List(Listing::Stats));
        assert_eq!(
            parse("--set 900 120 300").unwrap().command,
            Command::SetTimeouts(TimeoutSettings { tcp: 900, tcpfin: 120, udp: 300 })
        );
        let rule = parse("-Z -t 10.0.0.1:80").unwrap();
        assert_eq!((rule.command, rule.service), (Command::Zero, service(80)));
    }

    #[test]
    fn other_forwarding_methods_and_firewall_marks_are_refused() {
        for line in [
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -m",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 --masquerading",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 --ipip",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-type gre",
            "-A -f 1 -s rr",
            "-a --fwmark-service 1 -r 10.0.0.2 -g",
            "-A -f 1 -6 -s rr",
            "-A -6 -s rr",
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -gm",
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains("dr does direct routing only"), "{line}: {err}");
            assert_eq!(err.lines().count(), 1, "{line}: {err}");
        }
        // In -arm, -r takes the rest of the word: "m" as its address, as popt reads it.
        assert!(parse("-arm -t 10.0.0.1:80").unwrap_err().contains("m is a host name"));
    }

    #[test]
    fn port_zero_services_are_persistent_as_ipvsadm_requires() {
        let mut d = director();
        let err = run(&mut d, "-A -t 10.0.0.1 -s rr").unwrap_err();
        assert!(err.contains("port 0") && err.contains("add -p"), "{err}");
        let err = run(&mut d, "-A -u 10.0.0.1:0").unwrap_err();
        assert!(err.contains("port 0"), "{err}");
        run(&mut d, "-A -t 10.0.0.1 -s lc -p 1999999").unwrap();
        run(&mut d, "-a -t 10.0.0.1 -r 10.0.0.2 -g").unwrap();
        run(&mut d, "-a -t 10.0.0.1:0 -r 10.0.0.3:0 -g").unwrap();
        let err = run(&mut d, "-a -t 10.0.0.1 -r 127.0.0.1").unwrap_err();
        assert!(err.contains("-r 127.0.0.1: real server address 127.0.0.1 is loopback"), "{err}");
        let err = run(&mut d, "-a -t 10.0.0.1 -r 10.0.0.4:80").unwrap_err();
        assert!(err.contains("give 10.0.0.4:0 or no port"), "{err}");
        let err = run(&mut d, "-E -t 10.0.0.1 -s rr").unwrap_err();
        assert!(err.contains("port 0"), "{err}");
        let listing = run(&mut d, "-L -n").unwrap();
        assert!(listing.contains("TCP  10.0.0.1:0 lc persistent 1999999\n"), "{listing}");
        assert!(listing.contains("  -> 10.0.0.2:0 "), "{listing}");
    }

    #[test]
    fn addresses_the_director_refuses_name_the_option() {
        let mut d = director();
        for (line, says) in [
            ("-A -t 127.0.0.1:80", "-t 127.0.0.1:80: vip 127.0.0.1 is loopback"),
            ("-A -u [ff02::1]:53", "-u [ff02::1]:53: vip ff02::1 is multicast"),
            ("-A -t 255.255.255.255:80", "is the broadcast address"),
        ] {
            let err = run(&mut d, line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
        run(&mut d, "-A -t 10.0.0.1:80").unwrap();
        run(&mut d, "-A -t 10.0.0.2:80").unwrap();
        for (line, says) in [
            (
                "-a -t 10.0.0.1:80 -r 127.0.0.5",
                "-r 127.0.0.5: real server address 127.0.0.5 is loopback",
            ),
            (
                "-a -t 10.0.0.1:80 -r 224.0.0.5",
                "-r 224.0.0.5: real server address 224.0.0.5 is multicast",
            ),
            ("-a -t 10.0.0.1:80 -r 0.0.0.0", "is unspecified"),
            ("-a -t 10.0.0.1:80 -r 10.0.0.2", "-r 10.0.0.2: real server address 10.0.0.2 is a VIP"),
        ] {
            let err = run(&mut d, line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
        run(&mut d, "-a -t 10.0.0.1:80 -r 10.0.0.3").unwrap();
        let err = run(&mut d, "-A -t 10.0.0.3:443").unwrap_err();
        assert!(err.contains("-t 10.0.0.3:443: vip 10.0.0.3 is a real server's address"), "{err}");
    }

    #[test]
    fn edit_real_resets_what_it_does_not_give_as_ipvsadm_does() {
        let mut d = director();
        run(&mut d, "-A -t 10.0.0.1:80").unwrap();
        run(&mut d, "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 5 -x 100 -y 10").unwrap();
        run(&mut d, "-e -t 10.0.0.1:80 -r 10.0.0.2 -w 3").unwrap();
        let (_, service) = d.services().next().unwrap();
        let real = d.real(service.reals()[0]).unwrap();
        assert_eq!((real.weight(), real.thresholds()), (3, (0, 0)));
        run(&mut d, "-e -t 10.0.0.1:80 -r 10.0.0.2").unwrap();
        let real = d.real(service_real(&d)).unwrap();
        assert_eq!(real.weight(), 1, "ipvsadm's default weight");
    }

    fn service_real(d: &Director) -> dr_core::RealId {
        d.services().next().unwrap().1.reals()[0]
    }

    #[test]
    fn listing_options_as_ipvsadm_takes_them() {
        let rule = parse("-L -n -t 10.0.0.1:80 --stats --exact --nosort").unwrap();
        let options = rule.listing_options().unwrap();
        assert_eq!(options.format, ListingFormat::Stats);
        assert!(options.exact && !options.sorted);
        assert_eq!(options.service.map(|k| k.port), Some(80));
        assert!(parse("-L -n --sort").unwrap().listing_options().unwrap().sorted);
        assert_eq!(parse("-Ln --thresholds").unwrap().command, Command::List(Listing::Thresholds));
        assert_eq!(
            parse("-L --persistent-conn").unwrap().command,
            Command::List(Listing::PersistentConn)
        );
        assert_eq!(parse("-L -c --exact").unwrap().listing_options(), None);
        assert_eq!(parse("-Sn").unwrap().command, Command::Save);
        assert_eq!(parse("--save").unwrap().command, Command::Save);
        assert_eq!(parse("--restore").unwrap().command, Command::Restore);
        assert!(parse("-L -n --per-worker").unwrap().per_worker);
        assert!(!parse("-S -n").unwrap().mutates() && parse("-C").unwrap().mutates());
    }

    #[test]
    fn scheduler_flags_as_ipvsadm_names_them() {
        // parse_sched_flags: flag-N for any scheduler, sh-* for sh only, -b read after -s;
        // print_sched_flags: sh's names for sh, flag-N for the others.
        let mut d = director();
        run(&mut d, "-A -t 10.0.0.1:80 -b sh-port,sh-fallback -s sh").unwrap();
        run(&mut d, "-A -t 10.0.0.1:81 -s rr -b flag-1,flag-3").unwrap();
        run(&mut d, "-A -t 10.0.0.1:82 -s sh -b flag-2").unwrap();
        let listing = run(&mut d, "-L -n").unwrap();
        assert!(listing.contains("TCP  10.0.0.1:80 sh (sh-fallback,sh-port)\n"), "{listing}");
        assert!(listing.contains("TCP  10.0.0.1:81 rr (flag-1,flag-3)\n"), "{listing}");
        assert!(listing.contains("TCP  10.0.0.1:82 sh (sh-port)\n"), "{listing}");
        // -E without -b clears the flags, as ipvsadm's edit does.
        run(&mut d, "-E -t 10.0.0.1:82 -s rr").unwrap();
        assert!(run(&mut d, "-L -n").unwrap().contains("TCP  10.0.0.1:82 rr\n"));
        let saved = run(&mut d, "-S -n").unwrap();
        assert!(saved.contains("-A -t 10.0.0.1:81 -s rr -b flag-1,flag-3\n"), "{saved}");
    }

    #[test]
    fn one_service_is_listed_with_its_title() {
        let mut d = director();
        run(&mut d, "-A -u 10.0.0.1:53 -s rr").unwrap();
        run(&mut d, "-a -u 10.0.0.1:53 -r 10.0.0.2 -w 3").unwrap();
        run(&mut d, "-A -t 10.0.0.1:80").unwrap();
        // list_service: print_title, then the service; no version line.
        let expected = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.1:53 rr
  -> 10.0.0.2:53                  Route   3      0          0         
";
        assert_eq!(run(&mut d, "-L -n -u 10.0.0.1:53").unwrap(), expected);
        let err = run(&mut d, "-L -n -u 10.0.0.1:54").unwrap_err();
        assert!(err.starts_with("No such service"), "{err}");
    }

    #[test]
    fn clear_and_set() {
        let mut d = director();
        run(&mut d, "-A -t 10.0.0.1:80").unwrap();
        run(&mut d, "-A -u 10.0.0.1:53").unwrap();
        run(&mut d, "--set 600 0 60").unwrap();
        run(&mut d, "-C").unwrap();
        assert_eq!(d.services().count(), 0);
        assert_eq!(run(&mut d, "-L --timeout").unwrap(), "Timeout (tcp tcpfin udp): 600 120 60\n");
        let err = run(&mut d, "--set 99999999 0 0").unwrap_err();
        assert!(err.contains("99999999"), "{err}");
    }
}
