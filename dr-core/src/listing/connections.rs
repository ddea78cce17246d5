//! `ipvsadm -L -n -c`: one line per connection entry and persistence template, in the
//! table's order (the kernel's is its hash order too), from `/proc/net/ip_vs_conn`'s fields
//! as ipvsadm's `list_conn` prints them.

use super::Endpoint;
use crate::director::{ConnKind, Director};
use crate::time::Instant;
use core::fmt;

/// The connection listing at a given time, ready to `Display`.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionListing<'a> {
    director: &'a Director,
    now: Instant,
}

impl Director {
    /// The connection entries in the `ipvsadm -L -n -c` layout, with the time left to each
    /// counted from `now`.
    pub fn connection_listing(&self, now: Instant) -> ConnectionListing<'_> {
        ConnectionListing { director: self, now }
    }
}

/// `%02d:%02d` minutes and seconds left, whole seconds rounded down as the kernel's
/// `jiffies_delta_to_msecs(expires - now) / 1000`.
struct Expire(u64);

impl fmt::Display for Expire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = heapless::String::<24>::new();
        fmt::write(&mut buf, format_args!("{:02}:{:02}", self.0 / 60, self.0 % 60))?;
        f.pad(&buf)
    }
}

impl fmt::Display for ConnectionListing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LINE: fn(&mut fmt::Formatter<'_>, [&dyn fmt::Display; 6]) -> fmt::Result =
            |f, [pro, expire, state, source, virt, dest]| {
                writeln!(f, "{pro:<3} {expire:<6} {state:<11} {source:<18} {virt:<18} {dest}")
            };
        f.write_str("IPVS connection entries\n")?;
        LINE(f, [&"pro", &"expire", &"state", &"source", &"virtual", &"destination"])?;
        for conn in self.director.connections() {
            let Some(real) = self.director.real(conn.real) else { continue };
            let left = conn.expires.saturating_duration_since(self.now).as_secs();
            let state = match conn.kind {
                ConnKind::Template { assured: true, .. } => "ASSURED",
                ConnKind::Template { .. } => "NONE",
                ConnKind::Connection { .. } => conn.state.name(),
            };
            let k = conn.key;
            LINE(
                f,
                [
                    &k.protocol.name(),
                    &Expire(left),
                    &state,
                    &Endpoint(k.client, k.client_port),
                    &Endpoint(k.vip, k.vip_port),
                    &Endpoint(real.addr(), k.vip_port),
                ],
            )?;
        }
        Ok(())
    }
}
