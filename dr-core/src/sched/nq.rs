//! `nq`, never queue (`net/netfilter/ipvs/ip_vs_nq.c`): the first idle server (no active
//! connections) in list order if there is one; otherwise as sed, minimising
//! (active + 1) / weight, the first eligible server initialising and ties keeping it.

use super::Dests;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    let mut least: Option<(usize, i64)> = None;
    for pos in 0..dests.len() {
        if !dests.usable(pos) || dests.weight(pos) == 0 {
            continue;
        }
        if dests.active(pos) == 0 {
            return Some(pos);
        }
        let doh = i64::from(dests.active(pos)) + 1;
        let better = least.is_none_or(|(l, loh)| {
            loh * i64::from(dests.weight(pos)) > doh * i64::from(dests.weight(l))
        });
        if better {
            least = Some((pos, doh));
        }
    }
    least.map(|(pos, _)| pos)
}
