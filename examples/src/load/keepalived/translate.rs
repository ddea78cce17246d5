//! The statements of a keepalived configuration into a [`Plan`], as keepalived's
//! `check_parser.c`, `check_http.c`, `check_misc.c`, `check_dns.c` and `check_api.c` read
//! them, with their defaults: `delay_loop` 60 s, `connect_timeout` 5 s, `retry` 1 (3 for
//! `DNS_CHECK`, 0 for `MISC_CHECK`), `delay_before_retry` 1 s (3 s for `HTTP_GET` and
//! `SSL_GET`, `delay_loop` for `DNS_CHECK`), weight 1, `quorum` 1; a checker's setting
//! falls back to its real server's, then its virtual server's. Words after a keyword that
//! its keepalived handler does not read are ignored, as keepalived ignores them, with a
//! warning for each line naming them.

use super::plan::{Checker, Plan, RealServer, SorryServer, VirtualServer};
use super::tree::Node;
use super::{KeepalivedError, Place};
use crate::health::{HealthCheck, Probe};
use crate::ipvsadm::MAX_WEIGHT;
use crate::netmask::parse_netmask;
use crate::probes::{Dns, DnsType, HttpGet, HttpVersion, Misc, Url};
use dr_core::{Persistence, Protocol, SchedFlags, SchedulerKind, TimeoutSettings};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The most addresses one `virtual_server_group` range may give.
const MAX_GROUP_RANGE: u128 = 256;

/// The warnings so far: one per kind.
#[derive(Default)]
struct Warnings {
    list: Vec<KeepalivedError>,
    kinds: HashSet<String>,
}

impl Warnings {
    fn warn(&mut self, kind: &str, place: &Place, message: String) {
        if self.kinds.insert(kind.to_string()) {
            self.list.push(KeepalivedError::at(place, message));
        }
    }

    fn unknown(&mut self, within: &str, node: &Node) {
        self.warn(
            &format!("unknown {within} {}", node.keyword),
            &node.at,
            format!(
                "{within}: unknown keyword {}: skipped (keepalived too only warns of it)",
                node.keyword
            ),
        );
    }

    /// Words after a keyword that keepalived's handler does not read: keepalived ignores
    /// them (`strvec_slot(strvec, 1)` and no more), and dr too, but says so.
    fn extra(&mut self, within: &str, node: &Node) {
        let Some(takes) = takes(within, &node.keyword) else { return };
        let Some(extra) = node.args.get(takes..).filter(|e| !e.is_empty()) else { return };
        let words = match takes {
            0 => "no word".to_string(),
            1 => "one word".to_string(),
            n => format!("{n} words"),
        };
        let unset = if takes == 0 && matches!(node.keyword.as_str(), "alpha" | "inhibit_on_failure")
        {
            " (so it is set, whatever they say, as keepalived sets it; remove the line to leave \
             it unset)"
        } else {
            ""
        };
        self.warn(
            &format!("extra {}:{}:{}", node.at.file.display(), node.at.line, node.keyword),
            &node.at,
            format!(
                "{}: takes {words}{}: the extra words `{}` are ignored, as keepalived \
                 ignores them{unset}: remove them{}",
                node.keyword,
                if within == "the top level" { String::new() } else { format!(" in {within}") },
                extra.join(" "),
                if node.keyword == "misc_path" {
                    " (quote the program with its arguments: misc_path \"/path/to/check ARGS\")"
                } else {
                    ""
                }
            ),
        );
    }

    fn not_applied(&mut self, within: &str, node: &Node, why: &str) {
        self.warn(
            &format!("{within} {}", node.keyword),
            &node.at,
            format!("{within}: {} {why}: skipped", node.keyword),
        );
    }
}

/// How many words after `keyword` (within `within`: `virtual_server`, `real_server`, a
/// checker's name, `url`, `global_defs`, `virtual_server_group`) keepalived's handler reads
/// (`check_parser.c`, `check_api.c`, `check_http.c`, `check_misc.c`, `check_dns.c`): the
/// first word for a value; two for an address and port; none for a flag, and for
/// `alpha` and `inhibit_on_failure` of a `virtual_server` (`vs_alpha_handler` and
/// `vs_inhibit_handler` read no word), one (a `<BOOL>`) elsewhere. `None`: any number
/// (`status_code`, `lvs_timeouts`) or a keyword dr does not read.
fn takes(within: &str, keyword: &str) -> Option<usize> {
    let vs = within == "virtual_server";
    Some(match keyword {
        "delay_loop" | "connect_timeout" | "delay_before_retry" | "retry" | "nb_get_retry" => 1,
        "alpha" | "inhibit_on_failure" => usize::from(!vs),
        "lb_algo"
        | "lvs_sched"
        | "lb_kind"
        | "lvs_method"
        | "persistence_timeout"
        | "persistence_granularity"
        | "protocol"
        | "quorum"
        | "hysteresis"
        | "sorry_server_lvs_method"
        | "virtualhost" => 1,
        "sorry_server" | "real_server" | "virtual_server" => 2,
        "sorry_server_inhibit"
        | "hashed"
        | "ops"
        | "flag-1"
        | "flag-2"
        | "flag-3"
        | "sh-port"
        | "sh-fallback"
        | "mh-port"
        | "mh-fallback" => 0,
        "weight" | "uthreshold" | "lthreshold" => 1,
        "connect_ip" | "connect_port" | "http_protocol" | "enable_sni" | "sni_name"
        | "misc_path" | "misc_timeout" | "type" | "name" | "path" | "digest" => 1,
        "misc_dynamic" => 0,
        "fast_recovery" => 1,
        "virtual_server_group" => 1,
        "url" | "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" => 0,
        _ => return None,
    })
}

fn err(node: &Node, message: String) -> KeepalivedError {
    KeepalivedError::at(&node.at, format!("{}: {message}", node.keyword))
}

/// Timer and retry settings, inherited from virtual server to real server to checker.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    delay_loop: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    alpha: Option<bool>,
    inhibit: Option<bool>,
}

impl Timing {
    fn over(self, base: Self) -> Self {
        Self {
            delay_loop: self.delay_loop.or(base.delay_loop),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            retry: self.retry.or(base.retry),
            delay_before_retry: self.delay_before_retry.or(base.delay_before_retry),
            alpha: self.alpha.or(base.alpha),
            inhibit: self.inhibit.or(base.inhibit),
        }
    }

    /// Reads a timing keyword; false when `node` is not one. In a `virtual_server`
    /// (`vs`), `alpha` and `inhibit_on_failure` take no word and set the flag, as
    /// keepalived's `vs_alpha_handler` and `vs_inhibit_handler` do.
    fn read(&mut self, node: &Node, vs: bool) -> Result<bool, KeepalivedError> {
        match node.keyword.as_str() {
            "alpha" if vs => self.alpha = Some(true),
            "inhibit_on_failure" if vs => self.inhibit = Some(true),
            "delay_loop" => self.delay_loop = Some(timer(node, 0.000_001)?),
            "connect_timeout" => self.connect_timeout = Some(timer(node, 0.000_001)?),
            "delay_before_retry" => self.delay_before_retry = Some(timer(node, 0.0)?),
            "retry" | "nb_get_retry" => {
                self.retry = Some(number(node, 0, u64::from(u32::MAX))? as u32);
            }
            "alpha" => self.alpha = Some(boolean(node)?),
            "inhibit_on_failure" => self.inhibit = Some(boolean(node)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn arg<'a>(node: &'a Node, what: &str) -> Result<&'a str, KeepalivedError> {
    node.args
        .first()
        .map(String::as_str)
        .ok_or_else(|| err(node, format!("{what} is missing: {} {what}", node.keyword)))
}

/// A `<TIMER>`: seconds, fractions allowed.
fn timer(node: &Node, min: f64) -> Result<Duration, KeepalivedError> {
    let text = arg(node, "SECONDS")?;
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= min && secs <= f64::from(u32::MAX) => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(err(node, format!("{text} is not a time: give seconds, e.g. 3 or 2.5"))),
    }
}

fn number(node: &Node, lo: u64, hi: u64) -> Result<u64, KeepalivedError> {
    let text = arg(node, "NUMBER")?;
    match text.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(err(node, format!("{text} is out of range: give a whole number, {lo} to {hi}"))),
    }
}

/// A `<BOOL>`; the keyword alone is true.
fn boolean(node: &Node) -> Result<bool, KeepalivedError> {
    match node.args.first().map(String::as_str) {
        None | Some("on" | "true" | "yes") => Ok(true),
        Some("off" | "false" | "no") => Ok(false),
        Some(other) => Err(err(node, format!("{other}: give on|off|true|false|yes|no"))),
    }
}

fn address(node: &Node, text: &str) -> Result<IpAddr, KeepalivedError> {
    text.parse().map_err(|_| {
        err(node, format!("{text} is not an IP address: give a numeric IPv4 or IPv6 address"))
    })
}

fn port(node: &Node, text: Option<&String>) -> Result<u16, KeepalivedError> {
    match text {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| err(node, format!("port {text}: give a port number, 0 to 65535"))),
    }
}

/// Translates a file's statements.
pub(crate) fn translate(nodes: &[Node], main: &Path) -> Result<Plan, KeepalivedError> {
    let mut warnings = Warnings::default();
    let mut timeouts = None;
    // The groups first: keepalived links a `virtual_server group NAME` to its group once the
    // whole file is read (`link_vsg_to_vs`), so a group may come after its use.
    let mut groups: Vec<(&str, Vec<(IpAddr, u16)>)> = Vec::new();
    for node in nodes.iter().filter(|n| n.keyword == "virtual_server_group") {
        warnings.extra("the top level", node);
        let name = arg(node, "NAME")?;
        groups.push((name, group_entries(node, &mut warnings)?));
    }
    let mut services = Vec::new();
    for node in nodes {
        match node.keyword.as_str() {
            "global_defs" => timeouts = global_defs(node, &mut warnings)?.or(timeouts),
            "virtual_server_group" => {}
            "virtual_server" => {
                if let Some(vs) = virtual_server(node, &groups, &mut warnings)? {
                    // A group's addresses are checked by its first one's checkers.
                    let first = services.len();
                    services
                        .extend(vs.into_iter().map(|v| VirtualServer { checked_by: first, ..v }));
                }
            }
            "SSL" => warnings.not_applied(
                "the top level",
                node,
                "(SSL_GET's client certificate) is not used: SSL_GET checks connect without one",
            ),
            k if k.starts_with("vrrp_")
                || k == "static_ipaddress"
                || k == "static_routes"
                || k == "static_rules"
                || k == "linkbeat_interfaces"
                || k == "track_file"
                || k == "track_process"
                || k == "bfd_instance"
                || k == "garp_group" =>
            {
                warnings.warn(
                    &format!("top {k}"),
                    &node.at,
                    format!(
                        "{k}: VRRP and the host's addresses are not the director's: dr owns the \
                         VIPs itself (ARP); skipped"
                    ),
                );
            }
            _ => warnings.unknown("the top level", node),
        }
    }
    let mut seen: Vec<(dr_core::ServiceKey, &Place)> = Vec::new();
    for vs in &services {
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == vs.key()) {
            return Err(KeepalivedError::at(
                &vs.place,
                format!(
                    "virtual_server {}: the same service is defined at {} line {}: merge the two",
                    vs.key(),
                    first.file.display(),
                    first.line
                ),
            ));
        }
        seen.push((vs.key(), &vs.place));
    }
    if services.is_empty() {
        return Err(KeepalivedError {
            file: main.to_path_buf(),
            line: None,
            message: "no virtual_server with lb_kind DR to serve: add one (virtual_server IP PORT \
                      { lb_kind DR … real_server IP PORT { … } })"
                .into(),
        });
    }
    Ok(Plan { timeouts, services, warnings: warnings.list })
}

/// `global_defs`: only `lvs_timeouts` applies to the director.
fn global_defs(
    node: &Node,
    warnings: &mut Warnings,
) -> Result<Option<TimeoutSettings>, KeepalivedError> {
    let mut timeouts = None;
    for n in node.block.as_deref().unwrap_or_default() {
        if n.keyword == "lvs_timeouts" {
            let mut t = TimeoutSettings::default();
            let mut words = n.args.iter();
            while let Some(which) = words.next() {
                let value = words
                    .next()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|v| *v > 0)
                    .ok_or_else(|| err(n, format!("{which}: give seconds, e.g. {which} 900")))?;
                match which.as_str() {
                    "tcp" => t.tcp = value,
                    "tcpfin" => t.tcpfin = value,
                    "udp" => t.udp = value,
                    other => {
                        return Err(err(
                            n,
                            format!("{other}: give tcp SECS, tcpfin SECS, udp SECS"),
                        ));
                    }
                }
            }
            timeouts = Some(t);
        } else {
            warnings.not_applied("global_defs", n, "does not apply to the director");
        }
    }
    Ok(timeouts)
}

/// The addresses of a `virtual_server_group`: `IP [PORT]`, ranges `A.B.C.D-E`,
/// `A.B.C.D-E.F.G.H`, `A.B.C.D/NN`; `fwmark` entries are skipped.
fn group_entries(
    node: &Node,
    warnings: &mut Warnings,
) -> Result<Vec<(IpAddr, u16)>, KeepalivedError> {
    let mut entries = Vec::new();
    for n in node.block.as_deref().unwrap_or_default() {
        if n.keyword == "fwmark" {
            warnings.warn(
                "fwmark",
                &n.at,
                "fwmark services are not supported (dr classifies by address and port, not by \
                 firewall mark): skipped"
                    .into(),
            );
            continue;
        }
        if let Some(extra) = n.args.get(1..).filter(|e| !e.is_empty()) {
            warnings.warn(
                &format!("extra {}:{}", n.at.file.display(), n.at.line),
                &n.at,
                format!(
                    "{}: an entry of virtual_server_group takes IP [PORT]: the extra words \
                     `{}` are ignored, as keepalived ignores them: remove them",
                    n.keyword,
                    extra.join(" ")
                ),
            );
        }
        let p = port(n, n.args.first())?;
        for addr in range(n, &n.keyword)? {
            entries.push((addr, p));
        }
    }
    Ok(entries)
}

fn range(node: &Node, text: &str) -> Result<Vec<IpAddr>, KeepalivedError> {
    let bad = |why: &str| {
        err(node, format!("{text}: {why}: give IP, IP-LAST (192.168.200.1-10), IP-IP or IP/PREFIX"))
    };
    let as_int = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let (first, last) = if let Some((base, prefix)) = text.split_once('/') {
        let base: IpAddr = base.parse().map_err(|_| bad("not an address"))?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix: u32 =
            prefix.parse().ok().filter(|p| *p <= bits).ok_or_else(|| bad("not a prefix length"))?;
        let host = bits - prefix;
        let mask = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
        let start = as_int(base) & !mask;
        (start, start | mask)
    } else if let Some((base, end)) = text.split_once('-') {
        let base: IpAddr = base.parse().map_err(|_| bad("not an address"))?;
        let end = match end.parse::<IpAddr>() {
            Ok(end) => as_int(end),
            Err(_) if base.is_ipv4() => {
                let last: u128 =
                    end.parse().ok().filter(|n| *n <= 255).ok_or_else(|| bad("not a range"))?;
                (as_int(base) & !0xff) | last
            }
            Err(_) => {
                let last = u128::from_str_radix(end, 16)
                    .ok()
                    .filter(|n| *n <= 0xffff)
                    .ok_or_else(|| bad("not a range"))?;
                (as_int(base) & !0xffff) | last
            }
        };
        (as_int(base), end)
    } else {
        let a: IpAddr = text.parse().map_err(|_| bad("not an address"))?;
        (as_int(a), as_int(a))
    };
    if last < first {
        return Err(bad("the range ends before it starts"));
    }
    if last - first >= MAX_GROUP_RANGE {
        return Err(bad(&format!("more than {MAX_GROUP_RANGE} addresses in one range")));
    }
    let v4 = !text.contains(':');
    Ok((first..=last)
        .map(|n| if v4 { IpAddr::V4((n as u32).into()) } else { IpAddr::V6(n.into()) })
        .collect())
}

/// One `virtual_server` block: none when it does not apply (NAT, TUN, fwmark).
fn virtual_server(
    node: &Node,
    groups: &[(&str, Vec<(IpAddr, u16)>)],
    warnings: &mut Warnings,
) -> Result<Option<Vec<VirtualServer>>, KeepalivedError> {
    warnings.extra("the top level", node);
    let addresses: Vec<(IpAddr, u16)> = match node.args.first().map(String::as_str) {
        Some("fwmark") => {
            warnings.warn(
                "fwmark",
                &node.at,
                "virtual_server fwmark: fwmark services are not supported (dr classifies by \
                 address and port, not by firewall mark): skipped"
                    .into(),
            );
            return Ok(None);
        }
        Some("group") => {
            let name = node
                .args
                .get(1)
                .ok_or_else(|| err(node, "group NAME: the group's name is missing".into()))?;
            let group = groups.iter().find(|(n, _)| n == name).ok_or_else(|| {
                err(
                    node,
                    format!("group {name}: the file has no virtual_server_group {name}: define it"),
                )
            })?;
            group.1.clone()
        }
        Some(ip) => vec![(address(node, ip)?, port(node, node.args.get(1))?)],
        None => return Err(err(node, "give the VIP and port: virtual_server IP PORT {".into())),
    };
    let Some(block) = &node.block else {
        return Err(err(node, "the block is missing: virtual_server IP PORT { … }".into()));
    };
    let mut timing = Timing::default();
    let mut scheduler = SchedulerKind::Wlc;
    let mut flag_nodes: Vec<&Node> = Vec::new();
    let mut ops: Option<&Node> = None;
    let mut protocol = Protocol::Tcp;
    let mut persistence_timeout: Option<u32> = None;
    let mut granularity: Option<&Node> = None;
    let mut quorum = 1;
    let mut hysteresis = 0;
    let mut sorry: Option<(SorryServer, &Node)> = None;
    let mut sorry_inhibit = false;
    let mut host: Option<String> = None;
    let mut real_nodes = Vec::new();
    let mut method: Option<&Node> = None;
    let within = "virtual_server";
    for n in block {
        warnings.extra(within, n);
        if timing.read(n, true)? {
            continue;
        }
        match n.keyword.as_str() {
            "lb_algo" | "lvs_sched" => {
                let name = arg(n, "SCHEDULER")?;
                scheduler = name.parse().map_err(|e| err(n, format!("{name}: {e}")))?;
            }
            "lb_kind" | "lvs_method" => method = Some(n),
            "ops" => ops = Some(n),
            "persistence_engine" => {
                return Err(err(
                    n,
                    "persistence engines (sip) are not supported by dr: remove it".into(),
                ));
            }
            "hashed" => {
                warnings.not_applied(within, n, "(a flag the kernel sets itself) has no effect");
            }
            "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
            | "mh-fallback" => {
                flag_nodes.push(n);
            }
            "persistence_timeout" => {
                // 0 (which keepalived refuses, keeping its default of none) is no persistence.
                persistence_timeout = match n.args.first() {
                    None => Some(360),
                    Some(_) => match number(n, 0, u64::from(dr_core::MAX_PERSISTENT_SECS))? {
                        0 => None,
                        secs => Some(secs as u32),
                    },
                };
            }
            "persistence_granularity" => granularity = Some(n),
            "protocol" => {
                protocol = match arg(n, "TCP|UDP")?.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    other => {
                        return Err(err(
                            n,
                            format!(
                                "{other}: dr serves TCP and UDP: give protocol TCP or protocol UDP"
                            ),
                        ));
                    }
                };
            }
            "quorum" => quorum = number(n, 1, u64::from(u32::MAX))?,
            "hysteresis" => hysteresis = number(n, 0, u64::from(u32::MAX))?,
            "sorry_server" => {
                let ip = arg(n, "IP")?;
                sorry = Some((SorryServer { addr: address(n, ip)?, inhibit: false }, n));
            }
            "sorry_server_inhibit" => sorry_inhibit = true,
            "sorry_server_lvs_method" => {
                if arg(n, "DR")? != "DR" {
                    return Err(err(n, "a DR director forwards to its sorry server by DR only: give DR or remove the line".into()));
                }
            }
            "virtualhost" => host = Some(arg(n, "NAME")?.to_string()),
            "real_server" => real_nodes.push(n),
            "omega" => warnings.not_applied(
                within,
                n,
                "(scripts at shutdown) has no effect: dr runs no notify scripts",
            ),
            "quorum_up" | "quorum_down" | "smtp_alert" | "snmp_name" | "ha_suspend" | "warmup"
            | "ip_family" => {
                warnings.not_applied(within, n, "does not apply to dr-director (no scripts, mail, SNMP or interface tracking; checks start at once)");
            }
            _ => warnings.unknown(within, n),
        }
    }
    if let Some(m) = method {
        let kind = arg(m, "DR")?;
        if kind != "DR" {
            warnings.warn(
                &format!("lb_kind {kind}"),
                &m.at,
                format!(
                    "{} {kind}: dr is a Direct Routing director; this virtual_server (and any \
                     other that is not DR) is skipped",
                    m.keyword
                ),
            );
            return Ok(None);
        }
    } else {
        // keepalived's default is NAT.
        warnings.warn(
            "lb_kind NAT",
            &node.at,
            "virtual_server without lb_kind: keepalived's default is NAT, and dr is a Direct \
             Routing director; this virtual_server (and any other that is not DR) is skipped: \
             add lb_kind DR"
                .into(),
        );
        return Ok(None);
    }
    // check_data.c: "one packet scheduling requires UDP - resetting", once the protocol is
    // known (it may come after ops).
    let ops = match ops {
        Some(n) if protocol != Protocol::Udp => {
            warnings.warn(
                "ops on tcp",
                &n.at,
                "ops: one packet scheduling requires UDP: not applied to this TCP \
                 virtual_server (keepalived resets it too)"
                    .into(),
            );
            false
        }
        found => found.is_some(),
    };
    let mut flags = SchedFlags::NONE;
    for f in flag_nodes {
        match flags.with_named(&f.keyword, scheduler) {
            Ok(next) => flags = next,
            Err(_) => warnings.warn(
                &format!("flag {}", f.keyword),
                &f.at,
                format!(
                    "{} only applies to the {} scheduler: skipped (as keepalived does)",
                    f.keyword,
                    &f.keyword[..2]
                ),
            ),
        }
    }
    let mut out = Vec::new();
    for (vip, vport) in addresses {
        if vport == 0 && persistence_timeout.is_none() {
            return Err(err(node, "a virtual server without a port must be persistent: give the port, or persistence_timeout".into()));
        }
        let timeout = persistence_timeout.or(granularity.map(|_| 360));
        let persistence = match timeout {
            None => None,
            Some(secs) => {
                let mut p = Persistence::new(secs);
                if let Some(g) = granularity {
                    let mask = arg(g, "NETMASK")?;
                    let len = parse_netmask(mask, vip.is_ipv4())
                        .map_err(|e| err(g, format!("{mask}: {e}")))?;
                    p = p.with_prefix_len(len);
                }
                Some(p)
            }
        };
        let mut reals = Vec::new();
        for r in &real_nodes {
            if let Some(real) =
                real_server(r, vip, vport, protocol, timing, host.as_deref(), warnings)?
            {
                if reals.iter().any(|x: &RealServer| x.addr == real.addr) {
                    return Err(err(
                        r,
                        format!(
                            "{} is already a real server of this virtual_server: each address once",
                            real.addr
                        ),
                    ));
                }
                reals.push(real);
            }
        }
        if reals.is_empty() {
            warnings.warn(
                &format!("no reals {}", node.at.line),
                &node.at,
                "virtual_server has no real servers: skipped (as keepalived does)".into(),
            );
            continue;
        }
        let sorry = match &sorry {
            Some((s, n)) => {
                if s.addr.is_ipv4() != vip.is_ipv4() {
                    return Err(err(n, format!("{} is not of the VIP's address family", s.addr)));
                }
                if reals.iter().any(|r| r.addr == s.addr) {
                    return Err(err(
                        n,
                        format!(
                            "{} is also a real_server of this virtual_server: dr lists each address once; give the sorry server an address of its own",
                            s.addr
                        ),
                    ));
                }
                Some(SorryServer { addr: s.addr, inhibit: sorry_inhibit })
            }
            None => None,
        };
        out.push(VirtualServer {
            place: node.at.clone(),
            protocol,
            vip,
            port: vport,
            scheduler,
            flags,
            persistence,
            ops,
            quorum,
            hysteresis,
            sorry,
            reals,
            checked_by: 0,
        });
    }
    Ok(Some(out))
}

fn real_server(
    node: &Node,
    vip: IpAddr,
    vport: u16,
    protocol: Protocol,
    vs_timing: Timing,
    vs_host: Option<&str>,
    warnings: &mut Warnings,
) -> Result<Option<RealServer>, KeepalivedError> {
    let addr = address(node, arg(node, "IP")?)?;
    if addr.is_ipv4() != vip.is_ipv4() {
        return Err(err(
            node,
            format!(
                "{addr} is not of the VIP's address family: a DR real server is on the VIP's LAN"
            ),
        ));
    }
    let rport = match node.args.get(1) {
        None => vport,
        some => port(node, some)?,
    };
    if rport != vport && vport != 0 {
        warnings.warn(
            "real port",
            &node.at,
            format!(
                "real_server {addr} {rport}: Direct Routing delivers to the VIP's port {vport} \
                 (the packet is not rewritten); the checks use port {rport} as keepalived's do"
            ),
        );
    }
    let mut timing = Timing::default();
    let mut weight = 1;
    let (mut upper, mut lower) = (0, 0);
    let mut host = vs_host.map(str::to_string);
    let mut checker_nodes = Vec::new();
    let within = "real_server";
    for n in node.block.as_deref().unwrap_or_default() {
        warnings.extra(within, n);
        if timing.read(n, false)? {
            continue;
        }
        match n.keyword.as_str() {
            "weight" => weight = number(n, 0, u64::from(MAX_WEIGHT))? as u32,
            "uthreshold" => upper = number(n, 0, u64::from(u32::MAX))? as u32,
            "lthreshold" => lower = number(n, 0, u64::from(u32::MAX))? as u32,
            "lvs_method" | "lb_kind" => {
                if arg(n, "DR")? != "DR" {
                    return Err(err(n, "a DR director forwards to every real server by DR: give DR or remove the line".into()));
                }
            }
            "virtualhost" => host = Some(arg(n, "NAME")?.to_string()),
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" => {
                checker_nodes.push(n);
            }
            "SMTP_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                return Err(err(n, "this checker is not supported by dr-director: use TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK or DNS_CHECK".into()));
            }
            "notify_up" | "notify_down" | "smtp_alert" | "snmp_name" | "warmup" => {
                warnings.not_applied(within, n, "does not apply to dr-director (no scripts, mail or SNMP; checks start at once)");
            }
            _ => warnings.unknown(within, n),
        }
    }
    if lower > upper && upper != 0 {
        return Err(err(
            node,
            format!("lthreshold {lower} is above uthreshold {upper}: give a lower one"),
        ));
    }
    let timing = timing.over(vs_timing);
    let mut checkers = Vec::new();
    for c in checker_nodes {
        checkers.push(checker(c, addr, rport, protocol, timing, host.as_deref(), warnings)?);
    }
    Ok(Some(RealServer {
        place: node.at.clone(),
        addr,
        port: rport,
        weight,
        u_threshold: upper,
        l_threshold: lower,
        inhibit: timing.inhibit.unwrap_or(false),
        checkers,
    }))
}

fn checker(
    node: &Node,
    addr: IpAddr,
    rport: u16,
    protocol: Protocol,
    rs_timing: Timing,
    host: Option<&str>,
    warnings: &mut Warnings,
) -> Result<Checker, KeepalivedError> {
    let kind = node.keyword.as_str();
    let mut timing = Timing::default();
    let mut connect_ip = addr;
    let mut connect_port = rport;
    let mut urls = Vec::new();
    let mut version = HttpVersion::V1_0;
    let mut host = host.map(str::to_string);
    let mut sni: Option<String> = None;
    let mut enable_sni = false;
    let mut misc_path: Option<Vec<String>> = None;
    let mut misc_timeout = None;
    let mut dynamic = false;
    let mut dns_type = DnsType::Soa;
    let mut dns_name = ".".to_string();
    let http = matches!(kind, "HTTP_GET" | "SSL_GET");
    for n in node.block.as_deref().unwrap_or_default() {
        warnings.extra(kind, n);
        if timing.read(n, false)? {
            continue;
        }
        match (kind, n.keyword.as_str()) {
            (k, "connect_ip") if k != "MISC_CHECK" => connect_ip = address(n, arg(n, "IP")?)?,
            (k, "connect_port") if k != "MISC_CHECK" => connect_port = number(n, 1, 65_535)? as u16,
            (k, "bindto" | "bind_port" | "bind_if" | "fwmark") if k != "MISC_CHECK" => {
                return Err(err(n, "dr-director's checks leave from the host's own address and port: remove the line".into()));
            }
            (_, "log_all_failures" | "warmup") => {
                warnings.not_applied(kind, n, "has no effect in dr-director");
            }
            (_, "url") if http => urls.push(url(n, warnings)?),
            (_, "virtualhost") if http => host = Some(arg(n, "NAME")?.to_string()),
            (_, "http_protocol") if http => {
                version = match arg(n, "1.0|1.0C|1.1")? {
                    "1.0" => HttpVersion::V1_0,
                    "1.0C" => HttpVersion::V1_0Close,
                    "1.1" => HttpVersion::V1_1,
                    other => return Err(err(n, format!("{other}: give 1.0, 1.0C or 1.1"))),
                };
            }
            (_, "fast_recovery") if http => {
                warnings.not_applied(kind, n, "has no effect: dr checks every url at each check");
            }
            ("SSL_GET", "enable_sni") => enable_sni = boolean(n)?,
            ("SSL_GET", "sni_name") => {
                sni = Some(arg(n, "NAME")?.to_string());
                enable_sni = true;
            }
            ("SSL_GET", "tls_compliant") => {
                warnings.not_applied(
                    kind,
                    n,
                    "has no effect: dr always closes TLS with close_notify",
                );
            }
            ("MISC_CHECK", "misc_path") => {
                let line = arg(n, "PROGRAM")?;
                let argv = super::lexer::split_command(line);
                if argv.is_empty() {
                    return Err(err(
                        n,
                        "the program is missing: misc_path \"/path/to/check ARGS\"".into(),
                    ));
                }
                misc_path = Some(argv);
            }
            ("MISC_CHECK", "misc_timeout") => {
                misc_timeout = Some(Duration::from_secs(number(n, 1, u64::from(u32::MAX))?));
            }
            ("MISC_CHECK", "misc_dynamic") => dynamic = true,
            ("MISC_CHECK", "user") => {
                return Err(err(n, "dr-director runs a MISC_CHECK program as its own user: remove the line, or run the program with the user's rights itself (e.g. through setpriv)".into()));
            }
            ("DNS_CHECK", "type") => {
                let t = arg(n, "TYPE")?;
                dns_type = t.parse().map_err(|e| err(n, format!("{t}: {e}")))?;
            }
            ("DNS_CHECK", "name") => dns_name = arg(n, "NAME")?.to_string(),
            _ => warnings.unknown(kind, n),
        }
    }
    let timing = timing.over(rs_timing);
    let delay_loop = timing.delay_loop.unwrap_or(Duration::from_secs(60));
    let (default_retry, default_delay) = match kind {
        "HTTP_GET" | "SSL_GET" => (1, Duration::from_secs(3)),
        "DNS_CHECK" => (3, delay_loop),
        "MISC_CHECK" => (0, Duration::from_secs(1)),
        _ => (1, Duration::from_secs(1)),
    };
    let timeout = timing.connect_timeout.unwrap_or(Duration::from_secs(5));
    let probe = match kind {
        "TCP_CHECK" => {
            if protocol == Protocol::Udp {
                warnings.warn("tcp on udp", &node.at, "TCP_CHECK on a UDP service: the real server is judged by a TCP connection, as keepalived does".into());
            }
            Probe::Tcp
        }
        "HTTP_GET" | "SSL_GET" => {
            if urls.is_empty() {
                return Err(err(
                    node,
                    "no url: give url { path /PATH } (keepalived would drop the checker)".into(),
                ));
            }
            let tls = (kind == "SSL_GET").then(|| crate::probes::Tls {
                sni: enable_sni.then(|| {
                    sni.clone().or_else(|| host.clone()).unwrap_or_else(|| connect_ip.to_string())
                }),
            });
            Probe::HttpGet(HttpGet { urls, version, host, tls })
        }
        "MISC_CHECK" => {
            let argv = misc_path.ok_or_else(|| {
                err(node, "misc_path is missing: misc_path \"/path/to/check ARGS\"".into())
            })?;
            Probe::Misc(Misc { argv, timeout: misc_timeout.unwrap_or(delay_loop), dynamic })
        }
        _ => Probe::Dns(Dns { qtype: dns_type, name: dns_name }),
    };
    let retry = timing.retry.unwrap_or(default_retry);
    Ok(Checker {
        place: node.at.clone(),
        check: HealthCheck {
            probe,
            interval: delay_loop,
            timeout,
            fall: retry.saturating_add(1),
            rise: 1,
            through_vip: false,
            retry_interval: Some(timing.delay_before_retry.unwrap_or(default_delay)),
        },
        target: SocketAddr::new(connect_ip, connect_port),
        alpha: timing.alpha.unwrap_or(false),
    })
}

fn url(node: &Node, warnings: &mut Warnings) -> Result<Url, KeepalivedError> {
    let mut path = None;
    let mut status = Vec::new();
    let mut digest = None;
    let mut host = None;
    for n in node.block.as_deref().unwrap_or_default() {
        warnings.extra("url", n);
        match n.keyword.as_str() {
            "path" => path = Some(arg(n, "PATH")?.to_string()),
            "status_code" => {
                if n.args.is_empty() {
                    return Err(err(
                        n,
                        "give codes or ranges: status_code 200 or status_code 200-299 503".into(),
                    ));
                }
                for code in &n.args {
                    let (lo, hi) = code.split_once('-').unwrap_or((code, code));
                    let parse = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
                    match (parse(lo), parse(hi)) {
                        (Some(lo), Some(hi)) if lo <= hi => status.push((lo, hi)),
                        _ => {
                            return Err(err(
                                n,
                                format!(
                                    "{code}: give HTTP statuses, 100 to 599, or ranges LOW-HIGH"
                                ),
                            ));
                        }
                    }
                }
            }
            "digest" => {
                let hex = arg(n, "MD5")?;
                let bytes: Option<Vec<u8>> = (hex.len() == 32)
                    .then(|| {
                        (0..16)
                            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                            .collect()
                    })
                    .flatten();
                let bytes = bytes.ok_or_else(|| {
                    err(
                        n,
                        format!("{hex}: give the body's MD5 as 32 hex digits (genhash prints it)"),
                    )
                })?;
                let mut d = [0u8; 16];
                d.copy_from_slice(&bytes);
                digest = Some(d);
            }
            "virtualhost" => host = Some(arg(n, "NAME")?.to_string()),
            "regex" | "regex_no_match" | "regex_options" | "regex_stack" | "regex_min_offset"
            | "regex_max_offset" => {
                return Err(err(n, "regular expression checks are not supported by dr-director: use status_code or digest".into()));
            }
            "tls_compliant" => warnings.not_applied(
                "url",
                n,
                "has no effect: dr always closes TLS with close_notify",
            ),
            _ => warnings.unknown("url", n),
        }
    }
    let path = path.ok_or_else(|| err(node, "path is missing: url { path /PATH }".into()))?;
    if status.is_empty() {
        status.push((200, 299));
    }
    Ok(Url { path, status, digest, host })
}
