//! `wrr`, weighted round robin (`net/netfilter/ipvs/ip_vs_wrr.c`).
//!
//! Passes with a falling threshold `cw = mw, mw − di, …, 1` (di = gcd of the positive
//! weights, mw = max weight − (di − 1)); in each pass every server in list order whose weight
//! reaches `cw` gets one pick. On any add, edit or delete the position goes back to the list
//! head and `cw` is kept (clamped), as the kernel's `ip_vs_wrr_dest_changed` does.

use super::Dests;

/// The kernel's `ip_vs_wrr_mark`: position (`None` = the list head), current weight,
/// maximum weight and decreasing interval.
#[derive(Clone, Debug)]
pub(crate) struct WeightedRoundRobin {
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl WeightedRoundRobin {
    /// `ip_vs_wrr_init_svc`: with the servers the service has now.
    pub(crate) fn new(dests: &Dests<'_>) -> Self {
        let (di, mw) = Self::weights(dests);
        Self { cl: None, cw: mw, mw, di }
    }

    fn weights(dests: &Dests<'_>) -> (i64, i64) {
        let weights = (0..dests.len()).map(|p| i64::from(dests.weight(p)));
        let di = weights.clone().filter(|w| *w > 0).fold(0, gcd);
        let di = if di == 0 { 1 } else { di };
        let max = weights.max().unwrap_or(0);
        (di, max - (di - 1))
    }

    /// `ip_vs_wrr_dest_changed`: after an add, edit or delete.
    pub(crate) fn changed(&mut self, dests: &Dests<'_>) {
        self.cl = None;
        (self.di, self.mw) = Self::weights(dests);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    pub(crate) fn schedule(&mut self, dests: &Dests<'_>) -> Option<usize> {
        if self.mw <= 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop: Option<usize> = None;
        let (mut last_pass, mut restarted) = (false, false);
        // The kernel's loop always ends; the bound only guards against a state it never
        // reaches (every pass lowers cw, and two full descents end in a failure).
        let bound = 2 * (self.mw / self.di + 2);
        for _ in 0..bound {
            let start = pos.map_or(0, |p| p + 1);
            for p in start..n {
                if dests.usable(p) && i64::from(dests.weight(p)) >= self.cw {
                    self.cl = Some(p);
                    return Some(p);
                }
                if stop == Some(p) {
                    self.cl = Some(p);
                    return None;
                }
            }
            pos = None; // the walk ended on the list head
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
        self.cl = None;
        None
    }
}
