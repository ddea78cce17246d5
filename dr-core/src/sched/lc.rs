//! `lc`, least connection (`net/netfilter/ipvs/ip_vs_lc.c`): the server with the smallest
//! overhead (active × 256 + inactive); weights other than 0 are ignored; ties go to the
//! earlier server in list order.

use super::Dests;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    let mut least: Option<(usize, u32)> = None;
    for pos in 0..dests.len() {
        if !dests.usable(pos) || dests.weight(pos) == 0 {
            continue;
        }
        // The kernel compares the overhead as unsigned int.
        let overhead = dests.overhead(pos) as u32;
        if least.is_none_or(|(_, loh)| overhead < loh) {
            least = Some((pos, overhead));
        }
    }
    least.map(|(pos, _)| pos)
}
