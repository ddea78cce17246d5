//! The listings' content as one JSON object: services with their real servers, counters
//! and rates, the totals and the timeouts. Written by hand (addresses, numbers and fixed
//! names need no escaping), so an embedder gets it without a serialisation library.

use super::{Counts, RealRow, ServiceRow, Table};
use crate::service::Persistence;
use alloc::vec::Vec;
use core::fmt;

/// `{"conns":…,"inpkts":…,…}` and `{"cps":…,…}` for one set of counters.
struct Counters<'a>(&'a Counts);

impl fmt::Display for Counters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, r) = (self.0, self.0.rates);
        write!(
            f,
            r#""stats":{{"conns":{},"inpkts":{},"outpkts":0,"inbytes":{},"outbytes":0}},"#,
            s.conns, s.inpkts, s.inbytes
        )?;
        write!(
            f,
            r#""rates":{{"cps":{},"inpps":{},"outpps":0,"inbps":{},"outbps":0}}"#,
            r.cps, r.inpps, r.inbps
        )
    }
}

/// `"persistent":360,"netmask":24` or `"persistent":null,"netmask":null`.
struct PersistenceFields(Option<Persistence>, core::net::IpAddr);

impl fmt::Display for PersistenceFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => {
                write!(f, r#""persistent":{},"netmask":{}"#, p.timeout_secs, p.prefix_for(self.1))
            }
            None => f.write_str(r#""persistent":null,"netmask":null"#),
        }
    }
}

pub(super) fn write<'a>(
    f: &mut fmt::Formatter<'_>,
    table: &Table,
    services: &[&'a ServiceRow],
    reals: impl Fn(&'a ServiceRow) -> Vec<&'a RealRow>,
) -> fmt::Result {
    write!(f, r#"{{"version":"1.2.1","size":{},"services":["#, table.capacity)?;
    for (i, service) in services.iter().enumerate() {
        let key = service.key;
        if i > 0 {
            f.write_str(",")?;
        }
        write!(
            f,
            r#"{{"protocol":"{}","vip":"{}","port":{},"scheduler":"{}","flags":"{}",{},"ops":{},{},"reals":["#,
            key.protocol.name(),
            key.vip,
            key.port,
            service.scheduler,
            service.flags.names(service.scheduler),
            PersistenceFields(service.persistence, key.vip),
            service.one_packet,
            Counters(&service.counts)
        )?;
        for (j, real) in reals(service).into_iter().enumerate() {
            if j > 0 {
                f.write_str(",")?;
            }
            let (upper, lower) = real.thresholds;
            write!(
                f,
                r#"{{"address":"{}","port":{},"forward":"Route","weight":{},"active":{},"inactive":{},"persistent":{},"u_threshold":{},"l_threshold":{},"overloaded":{},{}}}"#,
                real.addr,
                key.port,
                real.weight,
                real.active,
                real.inactive,
                real.persistent,
                upper,
                lower,
                real.overloaded,
                Counters(&real.counts)
            )?;
        }
        f.write_str("]}")?;
    }
    let t = table.timeouts;
    write!(
        f,
        r#"],"totals":{{{}}},"timeouts":{{"tcp":{},"tcpfin":{},"udp":{}}},"connections":{},"templates":{}"#,
        Counters(&table.totals),
        t.tcp,
        t.tcpfin,
        t.udp,
        table.connections,
        table.templates
    )?;
    match &table.sync {
        Some((mode, counters)) => {
            write!(f, r#","sync":{{"mode":"{mode}""#)?;
            for (name, value) in counters.fields() {
                write!(f, r#","{name}":{value}"#)?;
            }
            f.write_str("}")?;
        }
        None => f.write_str(r#","sync":null"#)?,
    }
    writeln!(f, "}}")
}
