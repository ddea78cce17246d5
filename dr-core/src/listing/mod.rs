//! Listings in the layouts of `ipvsadm -L -n` (ipvsadm 1.31, `ipvsadm.c` `list_all`,
//! `print_title`, `print_service_entry`, `print_largenum`, `list_timeout`, `list_conn`;
//! `libipvs.c` `ipvs_cmp_*`), and the same content as JSON.
//!
//! Services and real servers are sorted as ipvsadm sorts them by default, including its
//! comparison quirk: addresses are compared by subtracting unsigned words into an `int`, so
//! two IPv4 addresses 2^31 or more apart compare the "wrong" way. The size in the header is
//! the director's connection capacity (the kernel prints its hash table size there).

mod connections;
mod json;

pub use connections::ConnectionListing;

use crate::director::Director;
use crate::service::{RealServer, Service, ServiceId};
use crate::stats::{Rates, Stats};
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
    /// `ipvsadm -L --timeout`: the one line of the three settable timeouts.
    Timeout,
    /// Everything of `Plain`, `Stats` and `Rate` and the timeouts, as one JSON object.
    Json,
}

/// A listing of a director's services, ready to `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    director: &'a Director,
    format: ListingFormat,
}

impl Director {
    /// The services and real servers in an `ipvsadm -L -n` layout.
    pub fn listing(&self, format: ListingFormat) -> Listing<'_> {
        Listing { director: self, format }
    }
}

/// `ipvs_cmp_services`: af, protocol, address words, port, each as an `int` difference.
fn cmp_services(a: &Service, b: &Service) -> i32 {
    let (a, b) = (a.key(), b.key());
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

/// `print_largenum`: `%9llu` below 10^8, then K, M, G and T suffixes.
struct LargeNum(u64);

impl fmt::Display for LargeNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
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
struct StatsColumns<'a>(&'a Stats);

impl fmt::Display for StatsColumns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(
            f,
            "{}{}{}{}{}",
            LargeNum(s.conns),
            LargeNum(s.inpkts),
            LargeNum(0),
            LargeNum(s.inbytes),
            LargeNum(0)
        )
    }
}

/// The five `--rate` columns of a service line, each by `print_largenum`.
struct RateColumns(Rates);

impl fmt::Display for RateColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(
            f,
            "{}{}{}{}{}",
            LargeNum(r.cps),
            LargeNum(r.inpps),
            LargeNum(0),
            LargeNum(r.inbps),
            LargeNum(0)
        )
    }
}

/// The `--rate` columns of a real server line: `" %8u %8u %8u"` for cps, inpps and outpps,
/// then inbps and outbps by `print_largenum`.
struct RealRateColumns(Rates);

impl fmt::Display for RealRateColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        // The old interface's 32-bit fields, as ipvsadm prints them.
        let narrow = |v: u64| v as u32;
        write!(
            f,
            " {:8} {:8} {:8}{}{}",
            narrow(r.cps),
            narrow(r.inpps),
            0,
            LargeNum(r.inbps),
            LargeNum(0)
        )
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

/// The services sorted as ipvsadm sorts them.
fn sorted_services(d: &Director) -> Vec<(ServiceId, &Service)> {
    let mut services: Vec<(ServiceId, &Service)> = d.services().collect();
    sort_by_c(&mut services, |a, b| cmp_services(a.1, b.1));
    services
}

/// A service's real servers sorted as ipvsadm sorts them.
fn sorted_reals<'a>(d: &'a Director, service: &Service) -> Vec<&'a RealServer> {
    let mut reals: Vec<&RealServer> = service.reals().iter().filter_map(|&id| d.real(id)).collect();
    sort_by_c(&mut reals, |a, b| cmp_addrs(a.addr(), b.addr()));
    reals
}

/// `Timeout (tcp tcpfin udp): 900 120 300`.
fn write_timeouts(f: &mut fmt::Formatter<'_>, d: &Director) -> fmt::Result {
    let t = d.timeouts().settings();
    writeln!(f, "Timeout (tcp tcpfin udp): {} {} {}", t.tcp, t.tcpfin, t.udp)
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.director;
        match self.format {
            ListingFormat::Timeout => return write_timeouts(f, d),
            ListingFormat::Json => return json::write(f, d),
            _ => {}
        }
        writeln!(f, "IP Virtual Server version 1.2.1 (size={})", d.capacity())?;
        match self.format {
            ListingFormat::Plain => f.write_str(
                "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            )?,
            ListingFormat::Stats => writeln!(
                f,
                "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            )?,
            _ => writeln!(
                f,
                "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
                "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            )?,
        }
        for (_, service) in sorted_services(d) {
            let key = service.key();
            let mut name = heapless::String::<64>::new();
            fmt::write(&mut name, format_args!("{key}"))?;
            match self.format {
                ListingFormat::Plain => {
                    write!(f, "{name} {}", service.scheduler())?;
                    let flags = service.flags();
                    if flags != crate::sched::SchedFlags::NONE {
                        write!(f, " ({flags})")?;
                    }
                    if let Some(p) = service.persistence() {
                        write!(f, " persistent {}", p.timeout_secs)?;
                        match key.vip {
                            IpAddr::V4(_) if p.prefix_for(key.vip) < 32 => {
                                let mask =
                                    u32::MAX.checked_shl(32 - u32::from(p.prefix_for(key.vip)));
                                let mask = core::net::Ipv4Addr::from(mask.unwrap_or(0));
                                write!(f, " mask {mask}")?;
                            }
                            IpAddr::V6(_) if p.prefix_len < 128 => {
                                write!(f, " mask {}", p.prefix_len)?;
                            }
                            _ => {}
                        }
                    }
                    writeln!(f)?;
                }
                ListingFormat::Stats => writeln!(f, "{name:<33}{}", StatsColumns(service.stats()))?,
                _ => writeln!(f, "{name:<33}{}", RateColumns(service.stats().rates()))?,
            }
            for real in sorted_reals(d, service) {
                let endpoint = Endpoint(real.addr(), key.port);
                match self.format {
                    ListingFormat::Plain => writeln!(
                        f,
                        "  -> {endpoint:<28} {:<7} {:<6} {:<10} {:<10}",
                        "Route",
                        real.weight(),
                        real.active_conns(),
                        real.inactive_conns()
                    )?,
                    ListingFormat::Stats => {
                        writeln!(f, "  -> {endpoint:<28}{}", StatsColumns(real.stats()))?;
                    }
                    _ => {
                        let rates = RealRateColumns(real.stats().rates());
                        writeln!(f, "  -> {endpoint:<28}{rates}")?;
                    }
                }
            }
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
            assert_eq!(LargeNum(n).to_string(), text, "{n}");
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
