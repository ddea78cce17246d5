//! `sed`, shortest expected delay (`net/netfilter/ipvs/ip_vs_sed.c`): as wlc, with
//! overhead = active + 1 (inactive connections ignored).

use super::Dests;
use super::weighted::least_weighted;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    least_weighted(dests, |real| i64::from(real.active) + 1)
}
