//! The TOML configuration of DESIGN.md, loaded into a [`Director`].
//!
//! Unknown fields and bad values are errors that name the field and its line, in plain
//! words: `service 1 (10.0.0.100:80), real server 2 (10.0.0.12): weight 70000 is out of
//! range: give 0 to 65535`. Real servers are added in the order listed, as `ipvsadm -a`
//! lines would add them. `[director]` may be left out where the binary has a MAC to use
//! (dr-director: the interface's).

use crate::LineError;
use crate::health::{HealthCheck, Probe};
use crate::ipvsadm::MAX_WEIGHT;
use crate::netmask::parse_netmask;
use dr_core::SchedFlags;
use dr_core::{
    Config, Director, MacAddr, Persistence, Protocol, RealConfig, SchedulerKind, ServiceConfig,
    ServiceId, TimeoutSettings,
};
use serde::Deserialize;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    director: DirectorSection,
    #[serde(default)]
    timeouts: Option<Spanned<TimeoutsSection>>,
    #[serde(default)]
    service: Vec<Spanned<ServiceSection>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectorSection {
    mac: Option<Spanned<String>>,
    capacity: Option<Spanned<i64>>,
    #[serde(default)]
    decrement_ttl: bool,
    #[serde(default)]
    expire_nodest_conn: bool,
    #[serde(default)]
    icmp_port_unreachable: bool,
    conn_reuse_mode: Option<Spanned<i64>>,
    #[serde(default)]
    sloppy_tcp: bool,
    announce_delay: Option<Spanned<i64>>,
    resync_wait: Option<Spanned<i64>>,
    #[serde(default)]
    expire_quiescent_template: bool,
    icmp_echo: Option<bool>,
    run_estimation: Option<bool>,
    fragment_capacity: Option<Spanned<i64>>,
    fragment_timeout: Option<Spanned<i64>>,
    neighbour_refresh: Option<Spanned<i64>>,
    vlans: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    mh_table_size: Option<Spanned<u32>>,
    lblc_expiration: Option<Spanned<u32>>,
    lblcr_expiration: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsSection {
    tcp: Option<Spanned<i64>>,
    tcpfin: Option<Spanned<i64>>,
    udp: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSection {
    proto: Spanned<String>,
    vip: Spanned<String>,
    port: Spanned<i64>,
    scheduler: Option<Spanned<String>>,
    persistent: Option<Spanned<i64>>,
    netmask: Option<Spanned<toml::Value>>,
    #[serde(default)]
    flags: Vec<Spanned<String>>,
    ops: Option<Spanned<bool>>,
    health: Option<Spanned<HealthSection>>,
    quorum: Option<Spanned<i64>>,
    #[serde(default)]
    real: Vec<Spanned<RealSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSection {
    kind: Option<Spanned<String>>,
    interval: Option<Spanned<u32>>,
    timeout: Option<Spanned<u32>>,
    fall: Option<Spanned<u32>>,
    rise: Option<Spanned<u32>>,
    path: Option<Spanned<String>>,
    expect: Option<Spanned<u16>>,
    payload: Option<Spanned<String>>,
    expect_reply: Option<Spanned<bool>>,
    through_vip: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RealSection {
    ip: Spanned<String>,
    weight: Option<Spanned<i64>>,
    mac: Option<Spanned<String>>,
    u_threshold: Option<Spanned<i64>>,
    l_threshold: Option<Spanned<i64>>,
}

/// `director.vlans`: the VLANs served. A number is a VLAN (0 is the untagged LAN); a string
/// `"OUTER.INNER"` a QinQ pair; `"any"` every frame whatever its tags.
fn parse_vlans(
    vlans: &Spanned<Vec<Spanned<toml::Value>>>,
    at: &impl Fn(Range<usize>, String) -> LineError,
) -> Result<dr_core::VlanSet, LineError> {
    const HELP: &str = "give VLAN numbers (0 for the untagged LAN), \"OUTER.INNER\" for \
                        QinQ, or \"any\"";
    let mut set = dr_core::VlanSet::none();
    for vlan in vlans.get_ref() {
        let bad = |why: String| at(vlan.span(), format!("director.vlans: {why}"));
        let result = match vlan.get_ref() {
            toml::Value::Integer(id) => {
                let id = u16::try_from(*id).map_err(|_| bad(format!("VLAN {id}: {HELP}")))?;
                set.insert(id)
            }
            toml::Value::String(any) if any == "any" => {
                if vlans.get_ref().len() > 1 {
                    return Err(bad("\"any\" stands alone: it serves every VLAN".into()));
                }
                return Ok(dr_core::VlanSet::any());
            }
            toml::Value::String(pair) => {
                let parsed = pair
                    .split_once('.')
                    .and_then(|(o, i)| Some((o.parse::<u16>().ok()?, i.parse::<u16>().ok()?)));
                let (outer, inner) = parsed.ok_or_else(|| bad(format!("{pair:?}: {HELP}")))?;
                set.insert_stacked(outer, inner)
            }
            other => return Err(bad(format!("{other}: {HELP}"))),
        };
        result.map_err(|e| bad(e.to_string()))?;
    }
    if set.single().next().is_none() && set.stacked().next().is_none() {
        return Err(at(vlans.span(), format!("director.vlans is empty: {HELP}")));
    }
    Ok(set)
}

/// What the binary needs besides the configuration file.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// The key of the director's hashes.
    pub hash_seed: [u64; 4],
    /// Whether every real server must have a MAC in the file (dr-replay cannot ask).
    pub require_real_macs: bool,
    /// The director MAC to use when the file has none (dr-director: the interface's).
    pub default_mac: Option<MacAddr>,
    /// The connection capacity when the file gives none (`None`: the director's default of
    /// 1 048 576 entries).
    pub default_capacity: Option<usize>,
}

/// Loads a configuration file's text into a director.
///
/// # Errors
///
/// A [`LineError`] naming the field and line of the first problem.
pub fn load(text: &str, options: LoadOptions) -> Result<Director, LineError> {
    load_all(text, options).map(|loaded| loaded.director)
}

/// The most `[director] announce_delay` takes, in seconds (an hour).
pub const MAX_ANNOUNCE_DELAY_SECS: i64 = 3600;

/// The default `[director] announce_delay`: longer than the default health checks take to
/// find a server down (3 failures a second apart), so the first announcement counts only
/// servers that were checked.
pub const DEFAULT_ANNOUNCE_DELAY: Duration = Duration::from_secs(5);

/// The most `[director] resync_wait` takes, in seconds (an hour).
pub const MAX_RESYNC_WAIT_SECS: i64 = 3600;

/// The default `[director] resync_wait`: how long a restarted director with `--sync backup`
/// or `both` waits for its peers' bulk resync at most before it announces its VIPs: longer
/// than the 10 s a peer may defer a request after answering another.
pub const DEFAULT_RESYNC_WAIT: Duration = Duration::from_secs(15);

/// When dr-director announces its VIPs (see `dr-director ctl watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSettings {
    /// `[director] announce_delay`: how long after start nothing is announced.
    pub announce_delay: Duration,
    /// `[director] resync_wait`: with `--sync backup` or `both`, nothing is announced
    /// either until the bulk resync asked for at start ended (every peer that answered sent
    /// its end mark), or this long after start at most.
    pub resync_wait: Duration,
    /// Each service's `quorum`: the healthy real servers with weight above 0 it needs for
    /// its VIP to be announced (default 1).
    pub quorum: Vec<(ServiceId, u32)>,
}

impl Default for RouteSettings {
    fn default() -> Self {
        Self {
            announce_delay: DEFAULT_ANNOUNCE_DELAY,
            resync_wait: DEFAULT_RESYNC_WAIT,
            quorum: Vec::new(),
        }
    }
}

/// A configuration file's director, and the health checks of its services.
#[derive(Debug)]
pub struct Loaded {
    /// The director, with its services and real servers added.
    pub director: Director,
    /// Each service's health check (`[service.health]`, or the defaults).
    pub health: Vec<(ServiceId, HealthCheck)>,
    /// When the VIPs are announced.
    pub routes: RouteSettings,
    /// The director's configuration as the file gives it (the director itself may have
    /// been built with smaller tables: see [`load_small`]).
    pub config: Config,
    /// What the file sets that is applied but has no effect, with its line: to print as
    /// warnings.
    pub warnings: Vec<LineError>,
}

/// Loads a configuration file's text into a director, keeping the health checks.
///
/// # Errors
///
/// A [`LineError`] naming the field and line of the first problem.
pub fn load_all(text: &str, options: LoadOptions) -> Result<Loaded, LineError> {
    load_with(text, options, false)
}

/// Loads a configuration file's text as [`load_all`] does, every value checked, but builds
/// the director with the smallest tables (one connection entry, no fragment table): to
/// compare a file with a running director, as a reload does, without reserving a second
/// connection table. [`Loaded::config`] holds the file's own values.
///
/// # Errors
///
/// A [`LineError`] naming the field and line of the first problem.
pub fn load_small(text: &str, options: LoadOptions) -> Result<Loaded, LineError> {
    load_with(text, options, true)
}

fn load_with(text: &str, options: LoadOptions, small: bool) -> Result<Loaded, LineError> {
    let file: File = toml::from_str(text).map_err(|e| LineError {
        line: e.span().map(|s| line_of(text, s.start)),
        message: plain_words(text, &e),
    })?;
    let at = |span: Range<usize>, message: String| LineError {
        line: Some(line_of(text, span.start)),
        message,
    };

    let mac = match (&file.director.mac, options.default_mac) {
        (Some(mac), _) => parse_mac(mac, "[director] mac", &at)?,
        (None, Some(mac)) => mac,
        (None, None) => {
            return Err(LineError {
                line: None,
                message: "[director] mac is missing: with no interface to take it from (a \
                          replay), give the director's MAC: [director] mac = \"02:00:00:00:00:01\""
                    .into(),
            });
        }
    };
    let d = &file.director;
    let director = |key: &str| format!("[director] {key}");
    let mut config = Config::new(mac, options.hash_seed);
    if let Some(capacity) = options.default_capacity {
        config.capacity = capacity;
    }
    if let Some(capacity) = &d.capacity {
        let max = dr_core::conn::MAX_CAPACITY as i64;
        config.capacity = ranged(capacity, 1, max, &director("capacity"), &at)?;
    }
    config.decrement_ttl = file.director.decrement_ttl;
    config.expire_nodest_conn = file.director.expire_nodest_conn;
    config.icmp_port_unreachable = file.director.icmp_port_unreachable;
    config.expire_quiescent_template = file.director.expire_quiescent_template;
    if let Some(mode) = &d.conn_reuse_mode {
        config.conn_reuse_mode = ranged(mode, 0, 3, &director("conn_reuse_mode"), &at)?;
    }
    config.sloppy_tcp = file.director.sloppy_tcp;
    let mut routes = RouteSettings::default();
    if let Some(delay) = &d.announce_delay {
        let secs: u64 =
            ranged(delay, 0, MAX_ANNOUNCE_DELAY_SECS, &director("announce_delay"), &at)?;
        routes.announce_delay = Duration::from_secs(secs);
    }
    if let Some(wait) = &d.resync_wait {
        let secs: u64 = ranged(wait, 0, MAX_RESYNC_WAIT_SECS, &director("resync_wait"), &at)?;
        routes.resync_wait = Duration::from_secs(secs);
    }
    if let Some(echo) = file.director.icmp_echo {
        config.icmp_echo = echo;
    }
    if let Some(estimation) = file.director.run_estimation {
        config.run_estimation = estimation;
    }
    if let Some(capacity) = &d.fragment_capacity {
        let max = Config::MAX_FRAGMENT_CAPACITY as i64;
        config.fragment_capacity = ranged(capacity, 0, max, &director("fragment_capacity"), &at)?;
    }
    if let Some(secs) = &d.neighbour_refresh {
        let secs: u32 = ranged(secs, 1, i64::from(u32::MAX), &director("neighbour_refresh"), &at)?;
        config.neighbour_refresh = Duration::from_secs(u64::from(secs));
    }
    if let Some(timeout) = &d.fragment_timeout {
        let secs: u32 =
            ranged(timeout, 0, i64::from(u32::MAX), &director("fragment_timeout"), &at)?;
        config.fragment_timeout = Duration::from_secs(u64::from(secs));
    }
    if let Some(vlans) = &file.director.vlans {
        config.vlans = parse_vlans(vlans, &at)?;
    }
    if let Some(size) = &file.director.mh_table_size {
        config.mh_table_size = *size.get_ref();
    }
    if let Some(secs) = &file.director.lblc_expiration {
        config.lblc_expiration = Duration::from_secs(u64::from(*secs.get_ref()));
    }
    if let Some(secs) = &file.director.lblcr_expiration {
        config.lblcr_expiration = Duration::from_secs(u64::from(*secs.get_ref()));
    }
    if let Some(timeouts) = &file.timeouts {
        let t = timeouts.get_ref();
        let max = i64::from(dr_core::MAX_TIMEOUT_SECS);
        let secs = |value: &Option<Spanned<i64>>, key: &str| match value {
            Some(v) => ranged(v, 0, max, &format!("[timeouts] {key}"), &at),
            None => Ok(0),
        };
        config.timeouts = TimeoutSettings {
            tcp: secs(&t.tcp, "tcp")?,
            tcpfin: secs(&t.tcpfin, "tcpfin")?,
            udp: secs(&t.udp, "udp")?,
        };
    }
    let file_config = config.clone();
    let director = match config.validate() {
        Ok(()) if small => {
            let mut small = config;
            small.capacity = 1;
            small.fragment_capacity = 0;
            Director::new(small)
        }
        Ok(()) => Director::new(config),
        Err(e) => Err(e),
    };
    let mut director = director.map_err(|e| {
        let span = match e {
            dr_core::ConfigError::Capacity(_) => file.director.capacity.as_ref().map(Spanned::span),
            dr_core::ConfigError::Timeout { field, .. } => {
                let t = file.timeouts.as_ref();
                let value = t.and_then(|t| match field {
                    "tcp" => t.get_ref().tcp.as_ref(),
                    "tcpfin" => t.get_ref().tcpfin.as_ref(),
                    _ => t.get_ref().udp.as_ref(),
                });
                value.map(Spanned::span).or_else(|| t.map(Spanned::span))
            }
            dr_core::ConfigError::ConnReuseMode(_) => {
                file.director.conn_reuse_mode.as_ref().map(Spanned::span)
            }
            dr_core::ConfigError::FragmentCapacity(_) => {
                file.director.fragment_capacity.as_ref().map(Spanned::span)
            }
            dr_core::ConfigError::FragmentTimeout => {
                file.director.fragment_timeout.as_ref().map(Spanned::span)
            }
            dr_core::ConfigError::MhTableSize(_) => {
                file.director.mh_table_size.as_ref().map(Spanned::span)
            }
            dr_core::ConfigError::Expiration { field: "lblc_expiration", .. } => {
                file.director.lblc_expiration.as_ref().map(Spanned::span)
            }
            dr_core::ConfigError::Expiration { .. } => {
                file.director.lblcr_expiration.as_ref().map(Spanned::span)
            }
            _ => file.director.mac.as_ref().map(Spanned::span),
        };
        LineError { line: span.map(|s| line_of(text, s.start)), message: e.to_string() }
    })?;

    let mut health = Vec::new();
    let mut warnings = Vec::new();
    for (i, service) in file.service.iter().enumerate() {
        let s = service.get_ref();
        let written_port = Some(*s.port.get_ref()).filter(|p| (0..=65_535).contains(p));
        let place = service_place(i, s.vip.get_ref(), written_port);
        let field = |name: &str| format!("{place}: {name}");
        let port: u16 = ranged(&s.port, 0, 65_535, &field("port"), &at)?;
        let protocol = match s.proto.get_ref().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(at(
                    s.proto.span(),
                    format!("{} = {other:?}: expected \"tcp\" or \"udp\"", field("proto")),
                ));
            }
        };
        let vip: IpAddr = s.vip.get_ref().parse().map_err(|_| {
            at(
                s.vip.span(),
                format!("{} = {:?} is not an IPv4 or IPv6 address", field("vip"), s.vip.get_ref()),
            )
        })?;

        let scheduler = match &s.scheduler {
            None => SchedulerKind::default(),
            Some(name) => name.get_ref().parse::<SchedulerKind>().map_err(|e| {
                at(name.span(), format!("{} = {:?}: {e}", field("scheduler"), name.get_ref()))
            })?,
        };
        let persistence = persistence(s, vip.is_ipv4(), &field, &at)?;
        let mut flags = SchedFlags::NONE;
        for flag in &s.flags {
            let name = flag.get_ref().as_str();
            flags = flags.with_named(name, scheduler).map_err(|e| {
                let why = match e {
                    dr_core::SchedFlagError::Incompatible => {
                        let owner = if name.starts_with("mh") { "mh" } else { "sh" };
                        format!(
                            "a flag of the {owner} scheduler, not of {scheduler} (ipvsadm: \
                             incompatible scheduler flag)"
                        )
                    }
                    _ => e.to_string(),
                };
                at(flag.span(), format!("{} = {name:?}: {why}", field("flags")))
            })?;
        }
        let check = match &s.health {
            Some(health) => health_check(health, protocol, &field("health"), &at)?,
            None => HealthCheck::for_protocol(protocol),
        };
        let mut ops = s.ops.as_ref().is_some_and(|o| *o.get_ref());
        if let Some(o) = s.ops.as_ref().filter(|_| ops && protocol != Protocol::Udp) {
            // The kernel takes IP_VS_SVC_F_ONEPACKET on any service and applies it to UDP
            // datagrams only: on TCP it changes nothing. ipvsadm refuses it there and
            // keepalived resets it; left off, the service's -S rules stay ones ipvsadm (and
            // a rules file, and ctl -R) take.
            warnings.push(at(
                o.span(),
                format!(
                    "{} = true on a TCP service is not applied: one-packet scheduling is for \
                     UDP datagrams only (the kernel takes the flag and ignores it for TCP; \
                     ipvsadm refuses it, keepalived resets it); remove it, or set proto = \
                     \"udp\"",
                    field("ops")
                ),
            ));
            ops = false;
        }
        let mut config = ServiceConfig::new(protocol, vip, port, scheduler)
            .with_flags(flags)
            .with_one_packet(ops);
        if let Some(p) = persistence {
            config = config.with_persistence(p);
        }
        let id = director.add_service(config).map_err(|e| {
            let span = match e {
                dr_core::ConfigError::Persistence { .. } => {
                    s.persistent.as_ref().map_or(service.span(), Spanned::span)
                }
                dr_core::ConfigError::InvalidVip(_) | dr_core::ConfigError::VipIsReal(_) => {
                    s.vip.span()
                }
                _ => service.span(),
            };
            at(span, format!("{place}: {e}"))
        })?;
        health.push((id, check));
        if let Some(quorum) = &s.quorum {
            let reals = s.real.len() as i64;
            if *quorum.get_ref() > reals && *quorum.get_ref() <= 65_535 {
                return Err(at(
                    quorum.span(),
                    format!(
                        "{} = {} is more than the service's {reals} real servers: its VIP \
                         would never be announced; lower it or add real servers",
                        field("quorum"),
                        quorum.get_ref()
                    ),
                ));
            }
            routes.quorum.push((id, ranged(quorum, 1, 65_535, &field("quorum"), &at)?));
        }

        for (j, real) in s.real.iter().enumerate() {
            let r = real.get_ref();
            let rplace = format!("{place}, {}", real_place(j, r.ip.get_ref()));
            let rfield = |name: &str| format!("{rplace}: {name}");
            let addr: IpAddr = r.ip.get_ref().parse().map_err(|_| {
                at(
                    r.ip.span(),
                    format!(
                        "{} = {:?} is not an IPv4 or IPv6 address",
                        rfield("ip"),
                        r.ip.get_ref()
                    ),
                )
            })?;
            let mut rc = RealConfig::new(addr);
            if let Some(weight) = &r.weight {
                rc = rc.with_weight(ranged(weight, 0, MAX_WEIGHT.into(), &rfield("weight"), &at)?);
            }
            match &r.mac {
                Some(mac) => rc = rc.with_mac(parse_mac(mac, &rfield("mac"), &at)?),
                None if options.require_real_macs => {
                    return Err(at(
                        real.span(),
                        format!(
                            "{} is missing: a replay cannot learn MACs by ARP; give mac = \"02:..\"",
                            rfield("mac")
                        ),
                    ));
                }
                None => {}
            }
            let threshold = |t: &Option<Spanned<i64>>, key: &str| match t {
                Some(t) => ranged(t, 0, i64::from(i32::MAX), &rfield(key), &at),
                None => Ok(0),
            };
            let upper = threshold(&r.u_threshold, "u_threshold")?;
            rc = rc.with_thresholds(upper, threshold(&r.l_threshold, "l_threshold")?);
            director.add_real(id, rc).map_err(|e| {
                let span = match e {
                    dr_core::ConfigError::Weight(_) => {
                        r.weight.as_ref().map_or(real.span(), Spanned::span)
                    }
                    dr_core::ConfigError::Thresholds { .. } => {
                        r.l_threshold.as_ref().map_or(real.span(), Spanned::span)
                    }
                    dr_core::ConfigError::RealMac(_) | dr_core::ConfigError::MacConflict { .. } => {
                        r.mac.as_ref().map_or(real.span(), Spanned::span)
                    }
                    _ => r.ip.span(),
                };
                at(span, format!("{rplace}: {e}"))
            })?;
        }
    }
    Ok(Loaded { director, health, routes, config: file_config, warnings })
}

/// `persistent` (seconds; absent or 0: none) and `netmask` (a mask or a prefix length).
fn persistence(
    s: &ServiceSection,
    ipv4: bool,
    field: &impl Fn(&str) -> String,
    at: &impl Fn(Range<usize>, String) -> LineError,
) -> Result<Option<Persistence>, LineError> {
    let timeout = match &s.persistent {
        Some(p) => ranged(p, 0, dr_core::MAX_PERSISTENT_SECS.into(), &field("persistent"), at)?,
        None => 0,
    };
    let prefix = match &s.netmask {
        None => None,
        Some(_) if timeout == 0 => {
            let span = s.netmask.as_ref().map(Spanned::span).unwrap_or_default();
            return Err(at(
                span,
                format!("{}: a netmask needs persistence; set persistent too", field("netmask")),
            ));
        }
        Some(mask) => {
            let text = match mask.get_ref() {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(n) => n.to_string(),
                other => other.to_string(),
            };
            let prefix = parse_netmask(&text, ipv4)
                .map_err(|e| at(mask.span(), format!("{} = {text}: {e}", field("netmask"))))?;
            Some(prefix)
        }
    };
    Ok((timeout != 0).then(|| {
        let p = Persistence::new(timeout);
        prefix.map_or(p, |len| p.with_prefix_len(len))
    }))
}

fn health_check(
    health: &Spanned<HealthSection>,
    protocol: Protocol,
    field: &str,
    at: &impl Fn(Range<usize>, String) -> LineError,
) -> Result<HealthCheck, LineError> {
    let h = health.get_ref();
    if let Some(kind) = &h.kind
        && !matches!(kind.get_ref().as_str(), "tcp" | "http" | "udp" | "none")
    {
        return Err(at(
            kind.span(),
            format!(
                "{field}.kind = {:?}: expected \"tcp\", \"http\", \"udp\" or \"none\"",
                kind.get_ref()
            ),
        ));
    }
    let kind = h.kind.as_ref().map_or(
        match protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        },
        |k| k.get_ref().as_str(),
    );
    let span = h.kind.as_ref().map_or(health.span(), Spanned::span);
    let fits = match protocol {
        Protocol::Tcp => matches!(kind, "tcp" | "http" | "none"),
        Protocol::Udp => matches!(kind, "udp" | "none"),
    };
    if matches!(kind, "tcp" | "http" | "udp" | "none") && !fits {
        return Err(at(
            span,
            format!(
                "{field}.kind = {kind:?} does not fit a {protocol} service: its real servers \
                 would be judged by a protocol they do not serve; use {}",
                match protocol {
                    Protocol::Tcp => "\"tcp\", \"http\" or \"none\"",
                    Protocol::Udp => "\"udp\" or \"none\"",
                }
            ),
        ));
    }
    for (name, given, allowed) in [
        ("payload", h.payload.is_some(), kind == "udp"),
        ("expect_reply", h.expect_reply.is_some(), kind == "udp"),
        ("path", h.path.is_some(), kind == "http"),
        ("expect", h.expect.is_some(), kind == "http"),
        ("through_vip", h.through_vip.as_ref().is_some_and(|t| *t.get_ref()), kind == "tcp"),
    ] {
        if given && !allowed {
            return Err(at(
                span,
                format!(
                    "{field}.{name} does not apply to kind = {kind:?}: remove it or change kind"
                ),
            ));
        }
    }
    for (name, value) in [("timeout", &h.timeout), ("fall", &h.fall), ("rise", &h.rise)] {
        if let Some(v) = value
            && *v.get_ref() == 0
        {
            return Err(at(v.span(), format!("{field}.{name} = 0: give at least 1")));
        }
    }
    if let Some(interval) = &h.interval
        && *interval.get_ref() == 0
    {
        return Err(at(interval.span(), format!("{field}.interval = 0: give at least 1 second")));
    }
    if let Some(path) = &h.path
        && !path.get_ref().starts_with('/')
    {
        return Err(at(
            path.span(),
            format!("{field}.path = {:?}: an HTTP path starts with /", path.get_ref()),
        ));
    }
    if let Some(expect) = &h.expect
        && !(100..=599).contains(expect.get_ref())
    {
        return Err(at(
            expect.span(),
            format!("{field}.expect = {}: give an HTTP status, 100 to 599", expect.get_ref()),
        ));
    }
    let defaults = HealthCheck::default();
    let secs = |v: &Option<Spanned<u32>>, default: Duration| {
        v.as_ref().map_or(default, |v| Duration::from_secs(u64::from(*v.get_ref())))
    };
    let count =
        |v: &Option<Spanned<u32>>, default: u32| v.as_ref().map_or(default, |v| *v.get_ref());
    let probe = match kind {
        "none" => Probe::None,
        "http" => Probe::Http {
            path: h.path.as_ref().map_or_else(|| "/".to_string(), |p| p.get_ref().clone()),
            expect: h.expect.as_ref().map_or(200, |e| *e.get_ref()),
        },
        "udp" => Probe::Udp {
            payload: h
                .payload
                .as_ref()
                .map(|p| p.get_ref().as_bytes().to_vec())
                .unwrap_or_default(),
            expect_reply: h.expect_reply.as_ref().is_some_and(|e| *e.get_ref()),
        },
        _ => Probe::Tcp,
    };
    Ok(HealthCheck {
        probe,
        interval: secs(&h.interval, defaults.interval),
        timeout: secs(&h.timeout, defaults.timeout),
        through_vip: h.through_vip.as_ref().is_some_and(|t| *t.get_ref()),
        fall: count(&h.fall, defaults.fall),
        rise: count(&h.rise, defaults.rise),
        retry_interval: None,
    })
}

fn parse_mac(
    mac: &Spanned<String>,
    field: &str,
    at: &impl Fn(Range<usize>, String) -> LineError,
) -> Result<MacAddr, LineError> {
    mac.get_ref().parse().map_err(|e| at(mac.span(), format!("{field} = {:?}: {e}", mac.get_ref())))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `value` within `lo ..= hi`, or an error naming where it is: `{what} {value} is out of
/// range: give {lo} to {hi}`.
fn ranged<T: TryFrom<i64>>(
    value: &Spanned<i64>,
    lo: i64,
    hi: i64,
    what: &str,
    at: &impl Fn(Range<usize>, String) -> LineError,
) -> Result<T, LineError> {
    let v = *value.get_ref();
    (lo..=hi)
        .contains(&v)
        .then(|| T::try_from(v).ok())
        .flatten()
        .ok_or_else(|| at(value.span(), format!("{what} {v} is out of range: give {lo} to {hi}")))
}

/// `service 1 (10.0.0.100:80)`: a service by its place in the file (from 1) and its address
/// as written.
fn service_place(index: usize, vip: &str, port: Option<i64>) -> String {
    let n = index + 1;
    match (vip, port) {
        ("", _) => format!("service {n}"),
        (vip, Some(port)) if vip.contains(':') => format!("service {n} ([{vip}]:{port})"),
        (vip, Some(port)) => format!("service {n} ({vip}:{port})"),
        (vip, None) => format!("service {n} ({vip})"),
    }
}

/// `real server 2 (10.0.0.12)`.
fn real_place(index: usize, ip: &str) -> String {
    match ip {
        "" => format!("real server {}", index + 1),
        ip => format!("real server {} ({ip})", index + 1),
    }
}

/// One step of the way to a value in the file.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The way to the innermost value or key whose text holds `offset`.
fn path_to(root: &toml::de::DeTable<'_>, offset: usize) -> Vec<Step> {
    fn walk(
        value: &toml::de::DeValue<'_>,
        path: &mut Vec<Step>,
        offset: usize,
        best: &mut (usize, Vec<Step>),
    ) {
        fn consider(
            span: Range<usize>,
            path: &[Step],
            offset: usize,
            best: &mut (usize, Vec<Step>),
        ) {
            if span.contains(&offset) && span.len() <= best.0 {
                *best = (span.len(), path.to_vec());
            }
        }
        match value {
            toml::de::DeValue::Table(table) => {
                for (key, value) in table {
                    path.push(Step::Key(key.get_ref().to_string()));
                    consider(key.span(), path, offset, best);
                    consider(value.span(), path, offset, best);
                    walk(value.get_ref(), path, offset, best);
                    path.pop();
                }
            }
            toml::de::DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    consider(item.span(), path, offset, best);
                    walk(item.get_ref(), path, offset, best);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut best = (usize::MAX, Vec::new());
    walk(&toml::de::DeValue::Table(root.clone()), &mut Vec::new(), offset, &mut best);
    best.1
}

/// Where a path leads, in plain words, and the key it ends on: (`service 1
/// (10.0.0.100:80), real server 2 (10.0.0.12)`, `weight`), (`[director]`, `capacity`).
fn describe(root: &toml::de::DeTable<'_>, path: &[Step]) -> (String, String) {
    let text_of = |table: Option<&toml::de::DeValue<'_>>, key: &str| -> (String, Option<i64>) {
        let field = table.and_then(|t| t.as_table()).and_then(|t| t.get(key));
        let text = field.and_then(|v| v.get_ref().as_str()).unwrap_or("").to_string();
        let number = field
            .and_then(|v| v.get_ref().as_integer())
            .and_then(|n| i64::from_str_radix(n.as_str(), n.radix()).ok());
        (text, number)
    };
    let keys = |rest: &[Step]| {
        rest.iter()
            .filter_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    match path {
        [Step::Key(service), Step::Index(i), rest @ ..] if service == "service" => {
            let table =
                root.get("service").and_then(|v| v.get_ref().as_array()).and_then(|a| a.get(*i));
            let table = table.map(Spanned::get_ref);
            let (vip, _) = text_of(table, "vip");
            let (_, port) = text_of(table, "port");
            let port = port.filter(|p| (0..=65_535).contains(p));
            let mut place = service_place(*i, &vip, port);
            let rest = match rest {
                [Step::Key(real), Step::Index(j), rest @ ..] if real == "real" => {
                    let reals = table.and_then(|t| t.as_table()).and_then(|t| t.get("real"));
                    let real_table = reals
                        .and_then(|v| v.get_ref().as_array())
                        .and_then(|a| a.get(*j))
                        .map(Spanned::get_ref);
                    let (ip, _) = text_of(real_table, "ip");
                    place = format!("{place}, {}", real_place(*j, &ip));
                    rest
                }
                rest => rest,
            };
            (place, keys(rest))
        }
        [Step::Key(section), rest @ ..] if !rest.is_empty() => (format!("[{section}]"), keys(rest)),
        rest => (String::new(), keys(rest)),
    }
}

/// The range of a Rust integer type as serde names it, for "out of range" messages.
fn type_range(name: &str) -> Option<(i128, i128)> {
    Some(match name {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" | "usize" => (0, u64::MAX.into()),
        "i64" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

/// A deserialisation error of toml and serde, said as the loader says its own: where the
/// value is in plain words, the key, and what to give (`service 1 (10.0.0.100:80),
/// health: interval -1 is out of range: give 0 to 4294967295`, `… port = "80": give a
/// whole number`).
fn plain_words(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end().to_string();
    let (Some(span), Ok(root)) = (error.span(), toml::de::DeTable::parse(text)) else {
        return message;
    };
    let path = path_to(root.get_ref(), span.start);
    let (place, key) = describe(root.get_ref(), &path);
    let raw = text.get(span.clone()).unwrap_or("").trim();
    let section = place.starts_with('[');
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let expected = rest.split_once(", ").map_or("", |(_, e)| e).replace('`', "");
        let within = if place.is_empty() { "the top level".to_string() } else { place };
        return format!("{within}: unknown field {key}: {expected}");
    }
    let at = match (place.is_empty(), key.is_empty()) {
        (true, true) => return message,
        (true, false) => key.clone(),
        (false, true) => place,
        (false, false) if section => format!("{place} {key}"),
        (false, false) => format!("{place}: {key}"),
    };
    if let Some(rest) = message.strip_prefix("invalid value: integer `") {
        let (value, expected) = rest.split_once("`, expected ").unwrap_or((rest, ""));
        if let Some((lo, hi)) = type_range(expected) {
            return format!("{at} {value} is out of range: give {lo} to {hi}");
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        let wanted = match expected {
            e if type_range(e).is_some() => "a whole number",
            "a boolean" => "true or false",
            "a string" => "a quoted string",
            "a sequence" => "a list, [ … ]",
            e => e,
        };
        return format!("{at} = {raw}: give {wanted}");
    }
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        return format!("{at}: {field} is missing");
    }
    format!("{at}: {message}")
}
