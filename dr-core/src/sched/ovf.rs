//! `ovf`, overflow (`net/netfilter/ipvs/ip_vs_ovf.c`): the server of highest weight among
//! those with weight > 0, not overloaded, and with no more active connections than their
//! weight; ties go to the earlier server in list order. Once a server has more active
//! connections than its weight, the next one takes the overflow. Inactive connections do
//! not count, so for UDP (whose connections are never active) it always picks the top one.
//!
//! Worked example: list order A(3), B(1), every connection staying active: A while it has
//! 0 to 3 active (four picks), then B with 0 and 1, then nobody: `A A A A B B -`.

use super::Dests;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (pos, real) in dests.iter() {
        let w = real.weight;
        if !real.is_usable() || real.active > w || w == 0 {
            continue;
        }
        if best.is_none_or(|(_, hw)| w > hw) {
            best = Some((pos, w));
        }
    }
    best.map(|(pos, _)| pos)
}
