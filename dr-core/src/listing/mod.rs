//! Listings in the layouts of `ipvsadm -L -n` (ipvsadm 1.31, `ipvsadm.c` `list_all`,
//! `list_service`, `print_title`, `print_service_entry`, `print_largenum`,
//! `print_sched_flags`, `list_timeout`, `list_conn`; `libipvs.c` `ipvs_cmp_*`), the rules of
//! `ipvsadm -S -n`, and the same content as JSON.
//!
//! Services and real servers are sorted as ipvsadm sorts them by default (it has since
//! 1.25; `--sort` is a no-op there, `--nosort` turns sorting off), including its comparison
//! quirk: addresses are compared by subtracting unsigned words into an `int`, so two IPv4
//! addresses 2^31 or more apart compare the "wrong" way. Unsorted, services come in the
//! order they were added (the kernel's is its hash table's) and real servers in the
//! service's list order, newest first, as the kernel returns them. The size in the header
//! is the connection capacity (the kernel prints its hash table size there).
//!
//! A listing prints a [`Table`]: one director's ([`Director::table`]), or several added up
//! ([`Table::add`]).

mod connections;
mod json;
mod table;

pub use connections::ConnectionListing;
pub use table::{Counts, RealRow, ServiceRow, Table};

use crate::director::Director;
use crate::service::ServiceKey;
use crate::stats::Rates;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

/// Which `ipvsadm -L -n` layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListingFormat {
    /// `ipvsadm -L -n`: schedulers, weights, active and inactive connections.
    Plain,
    /// `ipvsadm -L -n --stats`: connections, packets and bytes.
    Stats,
    /// `ipvsadm -L -n --rate`: connections, packets and bytes per second, by the kernel's
    /// estimator.
    Rate,
    /// `ipvsadm -L -n --thresholds`: each real server's upper and lower thresholds.
    Thresholds,
    /// `ipvsadm -L -n --persistent-conn`: each real server's persistence templates.
    PersistentConn,
    /// `ipvsadm -S -n`: the `-A` and `-a` lines that rebuild the services, as `ipvsadm -R`
    /// and rules files take them.
    Rules,
    /// `ipvsadm -L --timeout`: the one line of the three settable timeouts.
    Timeout,
    /// Everything of `Plain`, `Stats` and `Rate` and the timeouts, as one JSON object.
    Json,
}

/// A layout and how to fill it: which service, sorted or not, exact numbers or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListingOptions {
    /// The layout.
    pub format: ListingFormat,
    /// `--exact`: numbers in full, not abbreviated with K, M, G and T.
    pub exact: bool,
    /// Sorted as ipvsadm sorts (the default); `false` for `--nosort`.
    pub sorted: bool,
    /// `-t`/`-u` with `-L`: this service only, under the title lines and without the
    /// version line, as `list_service` prints it. (A listing of a service the table does
    /// not have has the title lines only: check [`Table::service`] first.)
    pub service: Option<ServiceKey>,
}

impl ListingOptions {
    /// `format`, sorted, abbreviated numbers, every service.
    pub const fn new(format: ListingFormat) -> Self {
        Self { format, exact: false, sorted: true, service: None }
    }

    /// `--exact`.
    pub const fn exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// `sorted(false)`: `--nosort`.
    pub const fn sorted(mut self, sorted: bool) -> Self {
        self.sorted = sorted;
        self
    }

    /// This service only.
    pub const fn service(mut self, service: Option<ServiceKey>) -> Self {
        self.service = service;
        self
    }
}

impl From<ListingFormat> for ListingOptions {
    fn from(format: ListingFormat) -> Self {
        Self::new(format)
    }
}

/// A listing of services, ready to `Display`.
#[derive(Clone, Debug)]
pub struct Listing {
    table: Table,
    options: ListingOptions,
}

impl Listing {
    /// `table` laid out as `options` say.
    pub fn new(table: Table, options: impl Into<ListingOptions>) -> Self {
        Self { table, options: options.into() }
    }
}

impl Director {
    /// The services and real servers in an `ipvsadm -L -n` layout (or `-S -n`, or JSON).
    pub fn listing(&self, options: impl Into<ListingOptions>) -> Listing {
        Listing::new(self.table(), options)
    }
}

/// `ipvs_cmp_services`: af, protocol, address words, port, each as an `int` difference.
fn cmp_services(a: &ServiceRow, b: &ServiceRow) -> i32 {
    let (a, b) = (a.key, b.key);
    let af = |ip: IpAddr| if ip.is_ipv4() { 2 } else { 10 };
    let mut r = af(a.vip) - af(b.vip);
    if r == 0 {
        r = i32::from(a.protocol.number()) - i32::from(b.protocol.number());
    }
    if r == 0 {
        r = cmp_addrs(a.vip, b.vip);
    }
    if r == 0 {
        r = i32::from(a.port) - i32::from(b.port);
    }
    r
}

/// The address part of `ipvs_cmp_services` / `ipvs_cmp_dests`.
fn cmp_addrs(a: IpAddr, b: IpAddr) -> i32 {
    let words = |ip: IpAddr| -> [u32; 4] {
        match ip {
            IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
            IpAddr::V6(v6) => {
                let s = v6.segments();
                core::array::from_fn(|i| (u32::from(s[2 * i]) << 16) | u32::from(s[2 * i + 1]))
            }
        }
    };
    let (a, b) = (words(a), words(b));
    a.iter().zip(&b).map(|(x, y)| x.wrapping_sub(*y) as i32).find(|r| *r != 0).unwrap_or(0)
}

/// Sorts by a C comparator, stably, without ever panicking on an inconsistent order.
fn sort_by_c<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> i32) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && cmp(&items[j - 1], &items[j]) > 0 {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// `print_largenum`: `%9llu` below 10^8, then K, M, G and T suffixes; with `--exact` the
/// whole number, right-aligned in nine columns or its width and one more.
struct LargeNum(u64, bool);

impl fmt::Display for LargeNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(n, exact) = *self;
        if exact {
            let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
            let width = if digits <= 8 { 9 } else { digits + 1 };
            return write!(f, "{n:width$}");
        }
        match n {
            0..100_000_000 => write!(f, "{n:9}"),
            100_000_000..1_000_000_000 => write!(f, "{:8}K", n / 1_000),
            1_000_000_000..100_000_000_000 => write!(f, "{:8}M", n / 1_000_000),
            100_000_000_000..100_000_000_000_000 => write!(f, "{:8}G", n / 1_000_000_000),
            _ => write!(f, "{:8}T", n / 1_000_000_000_000),
        }
    }
}

/// The five `--stats` columns: conns, inpkts, outpkts, inbytes, outbytes. Direct Routing
/// replies never cross the director, so the out columns are 0, as in the kernel.
struct StatsColumns<'a>(&'a Counts, bool);

impl fmt::Display for StatsColumns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, x) = (self.0, self.1);
        let n = |v| LargeNum(v, x);
        write!(f, "{}{}{}{}{}", n(s.conns), n(s.inpkts), n(0), n(s.inbytes), n(0))
    }
}

/// The five `--rate` columns of a service line, each by `print_largenum`.
struct RateColumns(Rates, bool);

impl fmt::Display for RateColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, x) = (self.0, self.1);
        let n = |v| LargeNum(v, x);
        write!(f, "{}{}{}{}{}", n(r.cps), n(r.inpps), n(0), n(r.inbps), n(0))
    }
}

/// The `--rate` columns of a real server line: `" %8u %8u %8u"` for cps, inpps and outpps,
/// then inbps and outbps by `print_largenum`.
struct RealRateColumns(Rates, bool);

impl fmt::Display for RealRateColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, x) = (self.0, self.1);
        // The old interface's 32-bit fields, as ipvsadm prints them.
        let narrow = |v: u64| v as u32;
        let n = |v| LargeNum(v, x);
        write!(f, " {:8} {:8} {:8}{}{}", narrow(r.cps), narrow(r.inpps), 0, n(r.inbps), n(0))
    }
}

/// `a.b.c.d:port` / `[v6]:port`, as a string for `%-28s` padding.
struct Endpoint(IpAddr, u16);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = crate::flow::SocketDisplay(self.0, self.1);
        // Pad like printf's %-Ns: render once into a small buffer to know the width.
        let mut buf = heapless::String::<64>::new();
        fmt::write(&mut buf, format_args!("{text}"))?;
        f.pad(&buf)
    }
}

/// A service's ` persistent 360 mask 255.255.255.0` (listings) or ` -p 360 -M
/// 255.255.255.0` (rules): the mask only when it is not the whole address.
struct PersistenceText<'a>(&'a ServiceRow, bool);

impl fmt::Display for PersistenceText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (service, rules) = (self.0, self.1);
        let Some(p) = service.persistence else { return Ok(()) };
        let (timeout, mask) = if rules { ("-p", "-M") } else { ("persistent", "mask") };
        write!(f, " {timeout} {}", p.timeout_secs)?;
        let vip = service.key.vip;
        match vip {
            IpAddr::V4(_) if p.prefix_for(vip) < 32 => {
                let bits = u32::MAX.checked_shl(32 - u32::from(p.prefix_for(vip)));
                write!(f, " {mask} {}", core::net::Ipv4Addr::from(bits.unwrap_or(0)))
            }
            IpAddr::V6(_) if p.prefix_len < 128 => write!(f, " {mask} {}", p.prefix_len),
            _ => Ok(()),
        }
    }
}

impl Listing {
    /// The services to print, in the order to print them.
    fn services(&self) -> Vec<&ServiceRow> {
        let only = self.options.service;
        let mut services: Vec<&ServiceRow> =
            self.table.services.iter().filter(|s| only.is_none_or(|k| s.key == k)).collect();
        if self.options.sorted {
            sort_by_c(&mut services, |a, b| cmp_services(a, b));
        }
        services
    }

    /// A service's real servers, in the order to print them.
    fn reals<'a>(&self, service: &'a ServiceRow) -> Vec<&'a RealRow> {
        let mut reals: Vec<&RealRow> = service.reals.iter().collect();
        if self.options.sorted {
            sort_by_c(&mut reals, |a, b| cmp_addrs(a.addr, b.addr));
        }
        reals
    }

    fn write_title(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PROT: &str = "Prot LocalAddress:Port";
        const REMOTE: &str = "  -> RemoteAddress:Port";
        match self.options.format {
            ListingFormat::Stats => writeln!(
                f,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            ),
            ListingFormat::Rate => writeln!(
                f,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            ),
            ListingFormat::Thresholds => writeln!(
                f,
                "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            ),
            ListingFormat::PersistentConn => writeln!(
                f,
                "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            ),
            ListingFormat::Rules => Ok(()),
            _ => f.write_str(
                "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            ),
        }
    }

    fn write_service(&self, f: &mut fmt::Formatter<'_>, service: &ServiceRow) -> fmt::Result {
        let (key, exact) = (service.key, self.options.exact);
        let mut name = heapless::String::<64>::new();
        fmt::write(&mut name, format_args!("{key}"))?;
        let flags = service.flags.names(service.scheduler);
        match self.options.format {
            ListingFormat::Rules => {
                let option = Endpoint(key.vip, key.port);
                write!(f, "-A {} {option} -s {}", key.protocol.option(), service.scheduler)?;
                write!(f, "{}", PersistenceText(service, true))?;
                if service.one_packet {
                    f.write_str(" -o")?;
                }
                if !service.flags.is_empty() {
                    write!(f, " -b {flags}")?;
                }
                writeln!(f)?;
            }
            ListingFormat::Stats => {
                writeln!(f, "{name:<33}{}", StatsColumns(&service.counts, exact))?;
            }
            ListingFormat::Rate => {
                writeln!(f, "{name:<33}{}", RateColumns(service.counts.rates, exact))?;
            }
            _ => {
                write!(f, "{name} {}", service.scheduler)?;
                if !service.flags.is_empty() {
                    write!(f, " ({flags})")?;
                }
                write!(f, "{}", PersistenceText(service, false))?;
                writeln!(f, "{}", if service.one_packet { " ops" } else { "" })?;
            }
        }
        for real in self.reals(service) {
            let endpoint = Endpoint(real.addr, key.port);
            let (active, inactive) = (real.active, real.inactive);
            match self.options.format {
                ListingFormat::Rules => {
                    write!(
                        f,
                        "-a {} {} -r {endpoint} -g -w {}",
                        key.protocol.option(),
                        Endpoint(key.vip, key.port),
                        real.weight
                    )?;
                    // ipvsadm -S leaves thresholds out, so its rules lose them: dr keeps
                    // them, in ipvsadm's own options.
                    let (upper, lower) = real.thresholds;
                    if upper != 0 || lower != 0 {
                        write!(f, " -x {upper} -y {lower}")?;
                    }
                    writeln!(f)?;
                }
                ListingFormat::Stats => {
                    writeln!(f, "  -> {endpoint:<28}{}", StatsColumns(&real.counts, exact))?;
                }
                ListingFormat::Rate => {
                    let rates = RealRateColumns(real.counts.rates, exact);
                    writeln!(f, "  -> {endpoint:<28}{rates}")?;
                }
                ListingFormat::Thresholds => {
                    let (upper, lower) = real.thresholds;
                    writeln!(
                        f,
                        "  -> {endpoint:<28} {upper:<10} {lower:<10} {active:<10} {inactive:<10}"
                    )?;
                }
                ListingFormat::PersistentConn => writeln!(
                    f,
                    "  -> {endpoint:<28} {:<9} {:<11} {active:<10} {inactive:<10}",
                    real.weight, real.persistent
                )?,
                _ => writeln!(
                    f,
                    "  -> {endpoint:<28} {:<7} {:<6} {active:<10} {inactive:<10}",
                    "Route", real.weight
                )?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = &self.table;
        match self.options.format {
            ListingFormat::Timeout => {
                let t = table.timeouts;
                return writeln!(f, "Timeout (tcp tcpfin udp): {} {} {}", t.tcp, t.tcpfin, t.udp);
            }
            ListingFormat::Json => {
                return json::write(f, table, &self.services(), |s| self.reals(s));
            }
            ListingFormat::Rules => {}
            // list_all prints the version line; list_service (one service) does not.
            _ if self.options.service.is_none() => {
                writeln!(f, "IP Virtual Server version 1.2.1 (size={})", table.capacity)?;
            }
            _ => {}
        }
        self.write_title(f)?;
        for service in self.services() {
            self.write_service(f, service)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn large_numbers_as_ipvsadm_prints_them() {
        let cases = [
            (0, "        0"),
            (99_999_999, " 99999999"),
            (100_000_000, "  100000K"),
            (999_999_999, "  999999K"),
            (1_000_000_000, "    1000M"),
            (99_999_999_999, "   99999M"),
            (100_000_000_000, "     100G"),
            (100_000_000_000_000, "     100T"),
        ];
        for (n, text) in cases {
            assert_eq!(text.len(), 9, "every column is nine wide");
            assert_eq!(LargeNum(n, false).to_string(), text, "{n}");
        }
    }

    #[test]
    fn exact_numbers_as_ipvsadm_prints_them() {
        // printf("%*llu", len <= 8 ? 9 : len + 1, i)
        let cases = [
            (0, "        0"),
            (99_999_999, " 99999999"),
            (100_000_000, " 100000000"),
            (1_234_567_890_123, " 1234567890123"),
            (u64::MAX, " 18446744073709551615"),
        ];
        for (n, text) in cases {
            assert_eq!(LargeNum(n, true).to_string(), text, "{n}");
        }
    }

    #[test]
    fn address_comparison_keeps_the_int_quirk() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "192.168.0.1".parse().unwrap();
        // 10.0.0.1 - 192.168.0.1 wraps to a positive int: 10.0.0.1 sorts after.
        assert!(cmp_addrs(a, b) > 0);
        let c: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(cmp_addrs(a, c) < 0);
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(cmp_addrs(v6a, v6b) < 0);
        assert_eq!(cmp_addrs(v6a, v6a), 0);
    }

    #[test]
    fn sort_is_stable_and_total() {
        let mut v = [3, 1, 2, 1];
        sort_by_c(&mut v, |a, b| a - b);
        assert_eq!(v, [1, 1, 2, 3]);
        // An inconsistent comparator still terminates.
        let mut w = [1, 2, 3];
        sort_by_c(&mut w, |_, _| 1);
        assert_eq!(w.len(), 3);
    }
}
