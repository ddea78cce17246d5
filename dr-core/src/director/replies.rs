//! ICMP replies the director sends on its own: queued on the packet path (bounded, no
//! allocation), rate limited, and fetched by the driver.

use super::Director;
use crate::time::{Duration, Instant};
use crate::wire::{GeneratedFrame, IpPacket, Packet, write_port_unreachable};

/// Replies that may wait between two polls.
const QUEUE: usize = 8;
/// The kernel's `icmp_msgs_burst`.
const BURST: u32 = 50;
/// One token per millisecond: the kernel's `icmp_msgs_per_sec` of 1000.
const REFILL: Duration = Duration::from_millis(1);

/// The queue and the token bucket.
#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
pub(super) struct Replies {
    queue: heapless::Deque<(Instant, GeneratedFrame), QUEUE>,
    tokens: u32,
    refilled: Instant,
}

impl Default for Replies {
    fn default() -> Self {
        Self { queue: heapless::Deque::new(), tokens: BURST, refilled: Instant::ZERO }
    }
}

impl Replies {
    /// Takes a token if the rate allows one at `now`.
    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled);
        let new = u32::try_from(elapsed.as_nanos() / REFILL.as_nanos()).unwrap_or(u32::MAX);
        if new > 0 {
            self.tokens = self.tokens.saturating_add(new).min(BURST);
            self.refilled = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

impl Director {
    /// Queues the port-unreachable answer to a packet whose connection found no real server.
    pub(super) fn queue_port_unreachable(
        &mut self,
        now: Instant,
        frame: &[u8],
        packet: &Packet,
        ip: &IpPacket,
    ) {
        let mac = self.config.mac;
        let sent = self.replies.queue.len() < QUEUE
            && self.replies.allow(now)
            && GeneratedFrame::build(|buf| write_port_unreachable(buf, mac, frame, packet, ip))
                .is_some_and(|reply| self.replies.queue.push_back((now, reply)).is_ok());
        let counter =
            if sent { &mut self.counters.icmp_replies } else { &mut self.counters.icmp_suppressed };
        *counter = counter.wrapping_add(1);
    }

    /// The next reply the director wants sent (an ICMP port unreachable, with the time of the
    /// packet that caused it). The [`Driver`](crate::Driver) sends them after each batch.
    #[must_use]
    pub fn poll_reply(&mut self) -> Option<(Instant, GeneratedFrame)> {
        self.replies.queue.pop_front()
    }
}
