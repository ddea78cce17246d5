//! `rr`, round robin (`net/netfilter/ipvs/ip_vs_rr.c`).
//!
//! The scheduler remembers the last real server it picked and resumes just after it,
//! walking the list circularly; servers with weight 0 (and overloaded or unusable ones) are
//! skipped, other weights are ignored. When nothing is eligible the position stays.

use super::Dests;

/// Round-robin state: the list position of the last pick, `None` for the list head.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundRobin {
    last: Option<usize>,
}

impl RoundRobin {
    pub(crate) fn schedule(&mut self, dests: &Dests<'_>) -> Option<usize> {
        let n = dests.len();
        // From the head: one pass over the list. From a server: every other server, then
        // that server itself as the last candidate.
        let start = self.last.map_or(0, |last| last + 1);
        let pick = (0..n)
            .map(|i| (start + i) % n)
            .find(|&pos| dests.usable(pos) && dests.weight(pos) > 0)?;
        self.last = Some(pick);
        Some(pick)
    }

    /// A server went in at the head: the remembered server moved one position down.
    pub(crate) fn added(&mut self) {
        self.last = self.last.map(|last| last + 1);
    }

    /// The server at `position` left the list (`ip_vs_rr_del_dest`): if it was the
    /// remembered one, its predecessor (or the head) is remembered instead.
    pub(crate) fn removed(&mut self, position: usize) {
        self.last = match self.last {
            Some(last) if last == position => last.checked_sub(1),
            Some(last) if last > position => Some(last - 1),
            other => other,
        };
    }
}
