//! The shape `wlc` and `sed` share (`ip_vs_wlc.c`, `ip_vs_sed.c`): the first usable server
//! with weight > 0 is the candidate; each later server that is not overloaded replaces it
//! when `loh × weight(d) > doh × weight(least)` in 64-bit signed arithmetic (strict, so
//! ties keep the earlier server, and weight 0 can never win).

use super::Dests;

pub(crate) fn least_weighted(dests: &Dests<'_>, overhead: impl Fn(usize) -> i64) -> Option<usize> {
    let first = (0..dests.len()).find(|&pos| dests.usable(pos) && dests.weight(pos) > 0)?;
    let (mut least, mut loh) = (first, overhead(first));
    for pos in first + 1..dests.len() {
        if !dests.usable(pos) {
            continue;
        }
        let doh = overhead(pos);
        if loh * i64::from(dests.weight(pos)) > doh * i64::from(dests.weight(least)) {
            least = pos;
            loh = doh;
        }
    }
    Some(least)
}
