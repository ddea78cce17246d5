//! Route health injection: which VIPs this director asks its routers for, and
//! `dr-director ctl watch`, which tells a routing daemon.
//!
//! The rule: a VIP is announced when **every** service on it has at least its `quorum`
//! (default 1) of usable real servers: weight above 0 (a server its health checks found
//! down is held at 0), not down by its checks, and with a MAC the director knows (it cannot
//! forward to a server it has not resolved). A director then attracts only traffic it can
//! serve on every port of the VIP; services that are to fail apart need VIPs of their own.
//! Nothing is announced for `[director] announce_delay` after start (default 5 s, longer
//! than the default checks take to find a dead server down), and everything is withdrawn
//! when the director stops. With `--sync backup` or `both`, nothing is announced either
//! while the bulk resync asked for at start is under way ([`Announcer::resyncing`]; it
//! ends when every peer that answered sent its end mark, or `[director] resync_wait` after
//! start): a restarted director holds the live table before routers send it flows.
//!
//! The director publishes the changes on its control socket to every client that sent
//! [`WATCH_REQUEST`]: `OK`, then one line per announced VIP (`announce 10.0.0.100`), then
//! each change (`announce …`, `withdraw …`) and `alive` every second. `dr-director ctl
//! watch` prints them for a routing daemon (with `--exabgp`, ExaBGP's process API:
//! `announce route 10.0.0.100/32 next-hop self`), and withdraws everything it announced
//! when the director goes away (its socket closes, or it says nothing for
//! [`SILENCE`]), then waits for it to come back.

use dr_core::{Director, ServiceKey};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The request line that makes a control connection a watch.
pub const WATCH_REQUEST: &str = "watch routes";

/// How often a watched director says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a watch waits for a line before it takes the director for gone.
pub const SILENCE: Duration = Duration::from_secs(3);

/// The VIPs whose services all have their quorum of usable real servers in `director`:
/// weight above 0, not in `down`, MAC known. A service not in `quorum` needs 1.
pub fn wanted(
    director: &Director,
    down: &HashSet<(ServiceKey, IpAddr)>,
    quorum: &HashMap<ServiceKey, u32>,
) -> BTreeSet<IpAddr> {
    let mut vips: BTreeMap<IpAddr, bool> = BTreeMap::new();
    for (_, service) in director.services() {
        let key = service.key();
        let usable = service
            .reals()
            .iter()
            .filter_map(|&id| director.real(id))
            .filter(|r| r.weight() > 0 && r.mac().is_some() && !down.contains(&(key, r.addr())))
            .count();
        let enough = usable >= quorum.get(&key).copied().unwrap_or(1) as usize;
        *vips.entry(key.vip).or_insert(true) &= enough;
    }
    vips.into_iter().filter_map(|(vip, enough)| enough.then_some(vip)).collect()
}

/// A change of what is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Ask the routers to send the VIP's traffic here.
    Announce(IpAddr),
    /// Stop asking.
    Withdraw(IpAddr),
}

impl Change {
    /// The line on the control socket: `announce 10.0.0.100`, `withdraw 2001:db8::100`.
    pub fn line(&self) -> String {
        match self {
            Self::Announce(vip) => format!("announce {vip}"),
            Self::Withdraw(vip) => format!("withdraw {vip}"),
        }
    }

    /// A line of the control socket back into a change (`None` for `alive` and the like).
    pub fn parse(line: &str) -> Option<Self> {
        let (verb, vip) = line.trim().split_once(' ')?;
        let vip: IpAddr = vip.trim().parse().ok()?;
        match verb {
            "announce" => Some(Self::Announce(vip)),
            "withdraw" => Some(Self::Withdraw(vip)),
            _ => None,
        }
    }

    /// The line for ExaBGP's process API: `announce route 10.0.0.100/32 next-hop self`
    /// (`/128` for IPv6).
    pub fn exabgp(&self) -> String {
        let (verb, vip) = match self {
            Self::Announce(vip) => ("announce", vip),
            Self::Withdraw(vip) => ("withdraw", vip),
        };
        let len = if vip.is_ipv4() { 32 } else { 128 };
        format!("{verb} route {vip}/{len} next-hop self")
    }
}

/// What is announced, held back for the learn delay after start.
#[derive(Debug)]
pub struct Announcer {
    hold_until: Instant,
    resyncing: bool,
    announced: BTreeSet<IpAddr>,
}

impl Announcer {
    /// Nothing is announced before `start + delay`.
    pub fn new(start: Instant, delay: Duration) -> Self {
        Self { hold_until: start + delay, resyncing: false, announced: BTreeSet::new() }
    }

    /// Whether a bulk resync is under way: nothing changes until it is over.
    pub fn resyncing(&mut self, under_way: bool) {
        self.resyncing = under_way;
    }

    /// Whether a bulk resync holds the announcements back.
    pub fn is_resyncing(&self) -> bool {
        self.resyncing
    }

    /// The changes that make what is announced `wanted`, once the delay and any resync are
    /// over.
    pub fn update(&mut self, now: Instant, wanted: &BTreeSet<IpAddr>) -> Vec<Change> {
        if now < self.hold_until || self.resyncing {
            return Vec::new();
        }
        let mut changes: Vec<Change> =
            self.announced.difference(wanted).map(|&vip| Change::Withdraw(vip)).collect();
        changes.extend(wanted.difference(&self.announced).map(|&vip| Change::Announce(vip)));
        self.announced.clone_from(wanted);
        changes
    }

    /// Everything announced, withdrawn (the director is stopping).
    pub fn withdraw_all(&mut self) -> Vec<Change> {
        let changes = self.announced.iter().map(|&vip| Change::Withdraw(vip)).collect();
        self.announced.clear();
        changes
    }
}

/// How `ctl watch` prints the changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `announce 10.0.0.100` / `withdraw 10.0.0.100`, for a script.
    Plain,
    /// ExaBGP's process API.
    Exabgp,
}

impl Format {
    fn render(self, change: &Change) -> String {
        match self {
            Self::Plain => change.line(),
            Self::Exabgp => change.exabgp(),
        }
    }
}

/// `dr-director ctl watch [--exabgp]`'s arguments, after `watch`.
///
/// # Errors
///
/// What is wrong with them.
pub fn parse_args(args: &[String]) -> Result<Format, String> {
    match args {
        [] => Ok(Format::Plain),
        [flag] if flag == "--exabgp" => Ok(Format::Exabgp),
        [flag] if flag == "--plain" => Ok(Format::Plain),
        _ => Err(format!(
            "watch {}: give watch --exabgp (ExaBGP's process API) or watch alone (plain \
             announce/withdraw lines)",
            args.join(" ")
        )),
    }
}

/// Prints each change, flushed at once, and keeps `announced` up to date.
fn emit(
    out: &mut impl Write,
    format: Format,
    change: Change,
    announced: &mut BTreeSet<IpAddr>,
) -> std::io::Result<()> {
    let fresh = match change {
        Change::Announce(vip) => announced.insert(vip),
        Change::Withdraw(vip) => announced.remove(&vip),
    };
    if fresh {
        writeln!(out, "{}", format.render(&change))?;
        out.flush()?;
    }
    Ok(())
}

/// One watch of the director at `path`: the changes it publishes, printed until it goes
/// away; then everything still announced is withdrawn. Returns why the watch ended.
///
/// # Errors
///
/// Writing to `out` failed (the routing daemon is gone).
pub fn watch_once(
    path: &Path,
    format: Format,
    out: &mut impl Write,
    announced: &mut BTreeSet<IpAddr>,
) -> std::io::Result<String> {
    let ended = match session(path, format, out, announced) {
        Ok(why) | Err(why) => why,
    };
    for vip in std::mem::take(announced) {
        let mut none = BTreeSet::from([vip]);
        emit(out, format, Change::Withdraw(vip), &mut none)?;
    }
    Ok(ended)
}

/// Reads one watch connection; `Err` when it could not be set up or `out` failed.
fn session(
    path: &Path,
    format: Format,
    out: &mut impl Write,
    announced: &mut BTreeSet<IpAddr>,
) -> Result<String, String> {
    let mut stream =
        UnixStream::connect(path).map_err(|e| format!("control socket {}: {e}", path.display()))?;
    stream.set_read_timeout(Some(SILENCE)).map_err(|e| e.to_string())?;
    writeln!(stream, "{WATCH_REQUEST}").map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.trim() != "OK" {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        return Err(format!("the director refused the watch: {}", rest.trim()));
    }
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok("the director closed the watch".into()),
            Ok(_) => {
                if let Some(change) = Change::parse(&line) {
                    emit(out, format, change, announced).map_err(|e| format!("output: {e}"))?;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(format!("the director said nothing for {} s", SILENCE.as_secs()));
            }
            Err(e) => return Ok(format!("reading the watch: {e}")),
        }
    }
}

/// `dr-director ctl watch`: watches the director at `path` for as long as this process
/// lives, reconnecting every second while it is away. Returns only when `out` fails.
pub fn watch(path: &Path, format: Format, out: &mut impl Write) -> std::io::Error {
    let mut announced = BTreeSet::new();
    let mut last = String::new();
    loop {
        match watch_once(path, format, out, &mut announced) {
            Ok(why) => {
                if why != last {
                    eprintln!("dr-director ctl watch: {why}; retrying every second");
                    last = why;
                }
            }
            Err(e) => return e,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_core::{Config, MacAddr, Protocol, RealConfig, RealEdit, SchedulerKind, ServiceConfig};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn mac(last: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, last])
    }

    /// 10.0.0.100:80 with three servers (.11 .12 .13, MACs known but .13's), :443 with one
    /// (.21); 2001:db8::100:80 with one (::11).
    fn director() -> Director {
        let mut config = Config::new(mac(1), [1, 2, 3, 4]);
        config.capacity = 16;
        let mut d = Director::new(config).unwrap();
        let web = ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 80, SchedulerKind::Mh);
        let web = d.add_service(web).unwrap();
        for (addr, m) in [("10.0.0.11", Some(11)), ("10.0.0.12", Some(12)), ("10.0.0.13", None)] {
            let mut real = RealConfig::new(ip(addr));
            if let Some(m) = m {
                real = real.with_mac(mac(m));
            }
            d.add_real(web, real).unwrap();
        }
        let tls = ServiceConfig::new(Protocol::Tcp, ip("10.0.0.100"), 443, SchedulerKind::Mh);
        let tls = d.add_service(tls).unwrap();
        d.add_real(tls, RealConfig::new(ip("10.0.0.21")).with_mac(mac(21))).unwrap();
        let six = ServiceConfig::new(Protocol::Tcp, ip("2001:db8::100"), 80, SchedulerKind::Mh);
        let six = d.add_service(six).unwrap();
        d.add_real(six, RealConfig::new(ip("2001:db8::11")).with_mac(mac(31))).unwrap();
        d
    }

    fn key(vip: &str, port: u16) -> ServiceKey {
        ServiceKey { protocol: Protocol::Tcp, vip: ip(vip), port }
    }

    fn set(vips: &[&str]) -> BTreeSet<IpAddr> {
        vips.iter().map(|v| ip(v)).collect()
    }

    #[test]
    fn a_vip_is_wanted_when_every_service_on_it_has_its_quorum() {
        let mut d = director();
        let none = HashSet::new();
        let mut quorum = HashMap::new();
        // Default quorum 1: every service has a usable server.
        assert_eq!(wanted(&d, &none, &quorum), set(&["10.0.0.100", "2001:db8::100"]));
        // :80 has two usable servers (.13 has no MAC yet): a quorum of 2 holds, 3 does not.
        quorum.insert(key("10.0.0.100", 80), 2);
        assert_eq!(wanted(&d, &none, &quorum), set(&["10.0.0.100", "2001:db8::100"]));
        quorum.insert(key("10.0.0.100", 80), 3);
        assert_eq!(wanted(&d, &none, &quorum), set(&["2001:db8::100"]));
        d.learn_neighbour(ip("10.0.0.13"), mac(13));
        assert_eq!(wanted(&d, &none, &quorum), set(&["10.0.0.100", "2001:db8::100"]));
        // A server down by its checks does not count, nor one at weight 0.
        let down = HashSet::from([(key("10.0.0.100", 80), ip("10.0.0.12"))]);
        assert_eq!(wanted(&d, &down, &quorum), set(&["2001:db8::100"]));
        quorum.insert(key("10.0.0.100", 80), 1);
        assert_eq!(wanted(&d, &down, &quorum), set(&["10.0.0.100", "2001:db8::100"]));
        let (id, real) = d.reals().find(|(_, r)| r.addr() == ip("10.0.0.21")).unwrap();
        d.edit_real(id, RealEdit::of(real).with_weight(0)).unwrap();
        // :443 has none left: the whole VIP goes, :80 with it.
        assert_eq!(wanted(&d, &down, &quorum), set(&["2001:db8::100"]));
    }

    #[test]
    fn nothing_is_announced_during_the_learn_delay_and_changes_are_diffs() {
        let start = Instant::now();
        let mut a = Announcer::new(start, Duration::from_secs(5));
        let both = set(&["10.0.0.100", "2001:db8::100"]);
        assert_eq!(a.update(start, &both), []);
        assert_eq!(a.update(start + Duration::from_millis(4999), &both), []);
        let at = start + Duration::from_secs(5);
        assert_eq!(
            a.update(at, &both),
            [Change::Announce(ip("10.0.0.100")), Change::Announce(ip("2001:db8::100"))]
        );
        assert_eq!(a.update(at, &both), [], "no change, nothing said");
        assert_eq!(a.update(at, &set(&["2001:db8::100"])), [Change::Withdraw(ip("10.0.0.100"))]);
        assert_eq!(a.withdraw_all(), [Change::Withdraw(ip("2001:db8::100"))]);
        assert_eq!(a.withdraw_all(), []);
    }

    #[test]
    fn nothing_is_announced_while_a_resync_is_under_way_even_past_the_delay() {
        let start = Instant::now();
        let mut a = Announcer::new(start, Duration::from_secs(1));
        let vips = set(&["10.0.0.100"]);
        a.resyncing(true);
        assert_eq!(a.update(start + Duration::from_secs(9), &vips), []);
        a.resyncing(false);
        assert_eq!(
            a.update(start + Duration::from_secs(9), &vips),
            [Change::Announce(ip("10.0.0.100"))]
        );
        // Over early: the delay still holds.
        let mut a = Announcer::new(start, Duration::from_secs(5));
        a.resyncing(false);
        assert_eq!(a.update(start + Duration::from_secs(1), &vips), []);
    }

    #[test]
    fn lines_for_the_socket_and_for_exabgp() {
        let v4 = Change::Announce(ip("10.0.0.100"));
        let v6 = Change::Withdraw(ip("2001:db8::100"));
        assert_eq!(v4.line(), "announce 10.0.0.100");
        assert_eq!(v6.line(), "withdraw 2001:db8::100");
        assert_eq!(Change::parse(&v4.line()), Some(v4));
        assert_eq!(Change::parse("withdraw 2001:db8::100\n"), Some(v6));
        assert_eq!(Change::parse("alive"), None);
        assert_eq!(Change::parse("announce nonsense"), None);
        // ExaBGP's process API (doc/api: "announce route <prefix> next-hop <ip>|self").
        assert_eq!(v4.exabgp(), "announce route 10.0.0.100/32 next-hop self");
        assert_eq!(v6.exabgp(), "withdraw route 2001:db8::100/128 next-hop self");
        assert_eq!(parse_args(&["--exabgp".into()]), Ok(Format::Exabgp));
        assert_eq!(parse_args(&[]), Ok(Format::Plain));
        let err = parse_args(&["--bgp".into()]).unwrap_err();
        assert!(err.contains("give watch --exabgp"), "{err}");
    }
}
