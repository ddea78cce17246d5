//! `fo`, weighted failover (`net/netfilter/ipvs/ip_vs_fo.c`): the server of highest weight
//! that is not overloaded. The walk starts from weight 0 and replaces the candidate only on
//! a strictly higher weight, so weight 0 never wins and ties go to the earlier server in
//! list order (the most recently added). Connection counts play no part.
//!
//! Worked examples (list order): A(2), B(5), C(5) → B every time; B overloaded → C; B and
//! C at weight 0 → A; all at weight 0 → no server.

use super::Dests;

pub(crate) fn schedule(dests: &Dests<'_>) -> Option<usize> {
    let mut best = None;
    let mut hw = 0;
    for (pos, real) in dests.iter() {
        if real.is_usable() && real.weight > hw {
            best = Some(pos);
            hw = real.weight;
        }
    }
    best
}
