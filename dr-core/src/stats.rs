//! Counters: per service and real server as IPVS keeps them, and per verdict reason.

use crate::verdict::{DropReason, PassReason, Verdict};

/// IPVS's per-service, per-real and total counters. In Direct Routing replies never cross
/// the director, so there are no `outpkts`/`outbytes`: they are always 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets forwarded for connections.
    pub inpkts: u64,
    /// Bytes of those packets, counted as IP datagram length (no link layer), as the kernel
    /// counts `skb->len` at `LOCAL_IN`.
    pub inbytes: u64,
    estimator: Estimator,
}

/// Rates as the kernel's estimator reports them (`ip_vs_read_estimator`): per second,
/// smoothed over 2-second samples. `bps` is bytes per second, as in ipvsadm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second.
    pub inpps: u64,
    /// Bytes per second.
    pub inbps: u64,
}

/// The estimator's state (`struct ip_vs_estimator`): the counters at the last sample and
/// the scaled moving averages (cps and pps scaled by 2^10, bps by 2^5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Estimator {
    last_conns: u64,
    last_inpkts: u64,
    last_inbytes: u64,
    cps: i64,
    inpps: i64,
    inbps: i64,
}

/// How often the estimator samples the counters.
pub const ESTIMATOR_INTERVAL: crate::time::Duration = crate::time::Duration::from_secs(2);

impl Stats {
    /// The rates the estimator reports (`(avg + 0x1FF) >> 10` for cps and pps,
    /// `(avg + 0xF) >> 5` for bps).
    pub fn rates(&self) -> Rates {
        let e = &self.estimator;
        let read =
            |avg: i64, round: i64, shift: u32| (avg.wrapping_add(round) >> shift).max(0) as u64;
        Rates {
            cps: read(e.cps, 0x1ff, 10),
            inpps: read(e.inpps, 0x1ff, 10),
            inbps: read(e.inbps, 0xf, 5),
        }
    }

    /// One 2-second sample (`ip_vs_chain_estimation`): each average moves a quarter of the
    /// way to the rate seen since the last sample.
    pub(crate) fn estimate(&mut self) {
        let e = &mut self.estimator;
        let step = |avg: &mut i64, last: &mut u64, now: u64, shift: u32| {
            let delta = now.wrapping_sub(*last) as i64;
            *last = now;
            let rate = delta.wrapping_shl(shift);
            *avg = avg.wrapping_add(rate.wrapping_sub(*avg) >> 2);
        };
        step(&mut e.cps, &mut e.last_conns, self.conns, 9);
        step(&mut e.inpps, &mut e.last_inpkts, self.inpkts, 9);
        step(&mut e.inbps, &mut e.last_inbytes, self.inbytes, 4);
    }

    /// `samples` more samples in which the counters have not changed, stopping early once
    /// the averages no longer move (every later sample would leave them as they are).
    pub(crate) fn estimate_idle(&mut self, samples: u32) {
        for _ in 0..samples {
            let before = self.estimator;
            self.estimate();
            if self.estimator == before {
                return;
            }
        }
    }

    /// `ipvsadm -Z`: counters and rates start again from 0.
    pub(crate) fn zero(&mut self) {
        *self = Self::default();
    }

    pub(crate) fn count_packet(&mut self, datagram_len: u32) {
        self.inpkts = self.inpkts.wrapping_add(1);
        self.inbytes = self.inbytes.wrapping_add(u64::from(datagram_len));
    }

    /// Bytes of a datagram already counted as a packet (its later fragments).
    pub(crate) fn count_bytes(&mut self, len: u32) {
        self.inbytes = self.inbytes.wrapping_add(u64::from(len));
    }

    pub(crate) fn count_conn(&mut self) {
        self.conns = self.conns.wrapping_add(1);
    }
}

/// Counters for every verdict of the director.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    drops: [u64; DropReason::COUNT],
    passes: [u64; PassReason::COUNT],
    forwarded: u64,
    replies: u64,
    /// Connection entries created.
    pub(crate) conns_created: u64,
    /// Connection entries that expired or were removed.
    pub(crate) conns_expired: u64,
    /// Unproven connections evicted to make room in a full table.
    pub(crate) conns_evicted: u64,
    /// Connections a SYN expired to start afresh (`conn_reuse_mode`, `expire_nodest_conn`).
    pub(crate) conns_reused: u64,
    /// UDP datagrams scheduled by one-packet scheduling, which makes no entry.
    pub(crate) one_packet: u64,
    /// Persistence templates created.
    pub(crate) templates_created: u64,
    /// Persistence templates expired or removed.
    pub(crate) templates_expired: u64,
    /// MAC addresses learned or changed by ARP or Neighbor Discovery.
    pub(crate) neighbours_learned: u64,
    /// ARP and Neighbor Discovery messages that would have set or changed a real server's
    /// MAC but were not taken.
    pub(crate) neighbours_rejected: u64,
    /// ICMP port-unreachable replies queued.
    pub(crate) icmp_replies: u64,
    /// ICMP errors relayed to the real server of the connection they quote.
    pub(crate) icmp_relayed: u64,
    /// Echo requests to a VIP answered.
    pub(crate) echo_replies: u64,
    /// Later fragments forwarded after their first fragment.
    pub(crate) fragments_forwarded: u64,
    /// ICMP port-unreachable replies not sent: over the rate limit or the queue full.
    pub(crate) icmp_suppressed: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::COUNT],
            passes: [0; PassReason::COUNT],
            forwarded: 0,
            replies: 0,
            conns_created: 0,
            conns_expired: 0,
            conns_evicted: 0,
            conns_reused: 0,
            one_packet: 0,
            templates_created: 0,
            templates_expired: 0,
            neighbours_learned: 0,
            neighbours_rejected: 0,
            icmp_replies: 0,
            icmp_relayed: 0,
            echo_replies: 0,
            fragments_forwarded: 0,
            icmp_suppressed: 0,
        }
    }
}

impl Counters {
    pub(crate) fn record(&mut self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Forward { .. } => &mut self.forwarded,
            Verdict::Reply => &mut self.replies,
            Verdict::Pass(reason) => &mut self.passes[reason.index()],
            Verdict::Drop(reason) => &mut self.drops[reason.index()],
        };
        *counter = counter.wrapping_add(1);
    }

    /// Frames dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Frames passed to the host for `reason`.
    pub fn passes(&self, reason: PassReason) -> u64 {
        self.passes[reason.index()]
    }

    /// Every drop reason with its count.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.drops(r)))
    }

    /// Every pass reason with its count.
    pub fn pass_counts(&self) -> impl Iterator<Item = (PassReason, u64)> + '_ {
        PassReason::ALL.iter().map(|&r| (r, self.passes(r)))
    }

    /// Frames forwarded to real servers.
    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// ARP replies, Neighbor Advertisements and echo replies written in answer to a frame.
    pub fn replies(&self) -> u64 {
        self.replies
    }

    /// All frames dropped.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// All frames passed.
    pub fn passed(&self) -> u64 {
        self.passes.iter().sum()
    }

    /// Connection entries created.
    pub fn conns_created(&self) -> u64 {
        self.conns_created
    }

    /// Connection entries expired or removed.
    pub fn conns_expired(&self) -> u64 {
        self.conns_expired
    }

    /// Unproven connections (no data yet: a flood's SYNs, resets and forged ACKs) evicted to
    /// make room in a full table, oldest first (each is also counted in
    /// [`conns_expired`](Self::conns_expired); a template that goes with its connection is
    /// counted in [`templates_expired`](Self::templates_expired)).
    pub fn conns_evicted(&self) -> u64 {
        self.conns_evicted
    }

    /// Live connections a SYN expired to be scheduled afresh, as `conn_reuse_mode` and
    /// `expire_nodest_conn` say (each is also counted in
    /// [`conns_expired`](Self::conns_expired)).
    pub fn conns_reused(&self) -> u64 {
        self.conns_reused
    }

    /// UDP datagrams of one-packet services (`ipvsadm -o`) scheduled on their own, without
    /// an entry (each also counted as a connection of its service and real server, and in
    /// [`forwarded`](Self::forwarded) when it left).
    pub fn one_packet_scheduled(&self) -> u64 {
        self.one_packet
    }

    /// Persistence templates created.
    pub fn templates_created(&self) -> u64 {
        self.templates_created
    }

    /// Persistence templates expired or removed.
    pub fn templates_expired(&self) -> u64 {
        self.templates_expired
    }

    /// Real servers' MAC addresses learned or changed, from the answers to the director's
    /// requests or [`Director::learn_neighbour`](crate::Director::learn_neighbour).
    pub fn neighbours_learned(&self) -> u64 {
        self.neighbours_learned
    }

    /// ARP packets and Neighbor Discovery messages that named a real server's address with
    /// a MAC other than the one the director holds for it (or when it holds none), and were
    /// not taken: not the answer to an outstanding request of the director's (a gratuitous
    /// ARP, an ARP request, a reply from the wrong source or to no request, an unsolicited
    /// advertisement, a solicitation's source link-layer option), an advertisement without
    /// the Override flag against a known MAC, or anything against a configured MAC. Not
    /// drops: each frame's verdict is what it would be otherwise.
    pub fn neighbours_rejected(&self) -> u64 {
        self.neighbours_rejected
    }

    /// ICMP port-unreachable replies queued for clients.
    pub fn icmp_replies(&self) -> u64 {
        self.icmp_replies
    }

    /// ICMP and ICMPv6 errors relayed to the real server of the connection they quote
    /// (each also counted in [`forwarded`](Self::forwarded)).
    pub fn icmp_relayed(&self) -> u64 {
        self.icmp_relayed
    }

    /// Echo requests to a VIP answered by the director (each also counted in
    /// [`replies`](Self::replies)).
    pub fn echo_replies(&self) -> u64 {
        self.echo_replies
    }

    /// Later fragments forwarded to the real server of their first fragment (each also
    /// counted in [`forwarded`](Self::forwarded)).
    pub fn fragments_forwarded(&self) -> u64 {
        self.fragments_forwarded
    }

    /// ICMP port-unreachable replies suppressed by the rate limit or a full queue.
    pub fn icmp_suppressed(&self) -> u64 {
        self.icmp_suppressed
    }
}
