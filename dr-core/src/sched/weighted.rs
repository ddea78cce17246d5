//! The shape `wlc` and `sed` share (`ip_vs_wlc.c`, `ip_vs_sed.c`): the first usable server
//! with weight > 0 is the candidate; each later server that is not overloaded replaces it
//! when `loh × weight(d) > doh × weight(least)` in 64-bit signed arithmetic (strict, so
//! ties keep the earlier server, and weight 0 can never win).

use super::Dests;
use crate::service::RealServer;

pub(crate) fn least_weighted(
    dests: &Dests<'_>,
    overhead: impl Fn(&RealServer) -> i64,
) -> Option<usize> {
    let mut servers = (0..dests.len()).filter_map(|pos| dests.get(pos).map(|real| (pos, real)));
    let (mut least, first) = servers.by_ref().find(|(_, r)| r.is_usable() && r.weight > 0)?;
    let (mut loh, mut lw) = (overhead(first), i64::from(first.weight));
    for (pos, real) in servers {
        if !real.is_usable() {
            continue;
        }
        let (doh, dw) = (overhead(real), i64::from(real.weight));
        if loh * dw > doh * lw {
            (least, loh, lw) = (pos, doh, dw);
        }
    }
    Some(least)
}
