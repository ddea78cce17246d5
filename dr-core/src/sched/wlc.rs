//! `wlc`, weighted least connection, the default (`net/netfilter/ipvs/ip_vs_wlc.c`):
//! minimises overhead / weight, overhead = active × 256 + inactive.

use super::Dests;
use super::weighted::least_weighted;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    least_weighted(dests, |real| i64::from(real.overhead()))
}
