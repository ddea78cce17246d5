//! The single-producer / single-consumer protocol of the four AF_XDP rings, in safe code
//! over any [`Slots`] (the kernel's mapped rings, or memory of a test), and the lending of
//! received frames out of the UMEM as disjoint slices.
//!
//! A ring of `size` entries has a producer and a consumer index that only grow (wrapping);
//! entries `consumer..producer` are the consumer's, the rest the producer's. Each side
//! keeps cached copies of both and reads the other side's index (Acquire) only when its
//! cache says the ring is full or empty, and publishes its own (Release) after the entries
//! it wrote or finished reading.

use crate::sys::Desc;
use dr_core::BURST;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

/// The memory of a ring.
pub(crate) trait Slots {
    /// What an entry is.
    type Entry: Copy;
    /// The producer index.
    fn producer(&self) -> &AtomicU32;
    /// The consumer index.
    fn consumer(&self) -> &AtomicU32;
    /// The number of entries (a power of two).
    fn size(&self) -> u32;
    /// Entry `index`, masked into the ring.
    fn read(&self, index: u32) -> Self::Entry;
    /// Writes entry `index`, masked into the ring.
    fn write(&mut self, index: u32, value: Self::Entry);
}

impl<T: crate::sys::Entry> Slots for crate::sys::RingMap<T> {
    type Entry = T;
    fn producer(&self) -> &AtomicU32 {
        Self::producer(self)
    }
    fn consumer(&self) -> &AtomicU32 {
        Self::consumer(self)
    }
    fn size(&self) -> u32 {
        Self::size(self)
    }
    fn read(&self, index: u32) -> T {
        Self::read(self, index)
    }
    fn write(&mut self, index: u32, value: T) {
        Self::write(self, index, value);
    }
}

/// Our side of a ring we fill (the fill and transmit rings).
#[derive(Debug)]
pub(crate) struct Producer<S> {
    slots: S,
    /// The next entry to write.
    head: u32,
    /// The consumer index last read, plus the ring's size: we may write up to it.
    limit: u32,
    /// Entries written and not yet published.
    unpublished: u32,
}

impl<S: Slots> Producer<S> {
    /// The producer side of `slots`, whose indexes are those of a ring just set up.
    pub(crate) fn new(slots: S) -> Self {
        let head = slots.producer().load(Ordering::Relaxed);
        let limit = slots.consumer().load(Ordering::Acquire).wrapping_add(slots.size());
        Self { slots, head, limit, unpublished: 0 }
    }

    /// The ring memory (its flags, for the kernel's wakeup request).
    pub(crate) fn slots(&self) -> &S {
        &self.slots
    }

    /// Free entries, reading the consumer's index if fewer than `want` are known free.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let known = self.limit.wrapping_sub(self.head);
        if known >= want {
            return known;
        }
        self.limit = self.slots.consumer().load(Ordering::Acquire).wrapping_add(self.slots.size());
        self.limit.wrapping_sub(self.head)
    }

    /// Writes `value` into the next free entry; false when the ring is full.
    pub(crate) fn push(&mut self, value: S::Entry) -> bool {
        if self.free(1) == 0 {
            return false;
        }
        self.slots.write(self.head, value);
        self.head = self.head.wrapping_add(1);
        self.unpublished += 1;
        true
    }

    /// Publishes the entries written; how many that was.
    pub(crate) fn publish(&mut self) -> u32 {
        let n = self.unpublished;
        if n > 0 {
            self.slots.producer().store(self.head, Ordering::Release);
            self.unpublished = 0;
        }
        n
    }

    /// Entries published and not yet taken by the consumer.
    pub(crate) fn outstanding(&self) -> u32 {
        self.head.wrapping_sub(self.slots.consumer().load(Ordering::Acquire))
    }
}

/// Our side of a ring the kernel fills (the receive and completion rings).
#[derive(Debug)]
pub(crate) struct Consumer<S> {
    slots: S,
    /// The next entry to read.
    tail: u32,
    /// The producer index last read: entries up to it are ours.
    limit: u32,
}

impl<S: Slots> Consumer<S> {
    /// The consumer side of `slots`.
    pub(crate) fn new(slots: S) -> Self {
        let tail = slots.consumer().load(Ordering::Relaxed);
        let limit = slots.producer().load(Ordering::Acquire);
        Self { slots, tail, limit }
    }

    /// The number of entries of the ring.
    pub(crate) fn size(&self) -> u32 {
        self.slots.size()
    }

    /// Entries ready, reading the producer's index if none are known.
    pub(crate) fn ready(&mut self) -> u32 {
        if self.limit == self.tail {
            self.limit = self.slots.producer().load(Ordering::Acquire);
        }
        // Never more than a ring's worth, whatever the other side wrote in the index.
        self.limit.wrapping_sub(self.tail).min(self.slots.size())
    }

    /// The `i`th ready entry (`i < ready()`).
    pub(crate) fn peek(&self, i: u32) -> S::Entry {
        self.slots.read(self.tail.wrapping_add(i))
    }

    /// Hands `n` read entries back to the producer.
    pub(crate) fn release(&mut self, n: u32) {
        if n > 0 {
            self.tail = self.tail.wrapping_add(n);
            self.slots.consumer().store(self.tail, Ordering::Release);
        }
    }
}

/// Where the frames of `descs` lie in a UMEM of `len` bytes in chunks of `chunk`: each
/// descriptor's index and byte range. A descriptor that is out of bounds, crosses the end
/// of its chunk or shares a chunk with another (none of which the kernel does) is left
/// out, so the ranges are disjoint.
pub(crate) fn frames(
    len: usize,
    descs: &[Desc],
    chunk: usize,
) -> heapless::Vec<(usize, Range<usize>), BURST> {
    let chunk = chunk.max(1);
    let mut out: heapless::Vec<(usize, Range<usize>), BURST> = heapless::Vec::new();
    for (i, desc) in descs.iter().enumerate().take(BURST) {
        let (Ok(addr), Ok(n)) = (usize::try_from(desc.addr), usize::try_from(desc.len)) else {
            continue;
        };
        let index = addr / chunk;
        let shared = out.iter().any(|(_, r)| r.start / chunk == index);
        if shared || addr % chunk + n > chunk || addr + n > len {
            continue;
        }
        let _ = out.push((i, addr..addr + n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in plain memory; the test plays the kernel's side by hand.
    struct Mem<T> {
        producer: AtomicU32,
        consumer: AtomicU32,
        entries: Vec<T>,
    }

    impl<T: Copy + Default> Mem<T> {
        fn new(size: u32, start: u32) -> Self {
            Self {
                producer: AtomicU32::new(start),
                consumer: AtomicU32::new(start),
                entries: vec![T::default(); size as usize],
            }
        }
    }

    impl<T: Copy> Slots for &mut Mem<T> {
        type Entry = T;
        fn producer(&self) -> &AtomicU32 {
            &self.producer
        }
        fn consumer(&self) -> &AtomicU32 {
            &self.consumer
        }
        fn size(&self) -> u32 {
            self.entries.len() as u32
        }
        fn read(&self, index: u32) -> T {
            self.entries[(index as usize) & (self.entries.len() - 1)]
        }
        fn write(&mut self, index: u32, value: T) {
            let mask = self.entries.len() - 1;
            self.entries[(index as usize) & mask] = value;
        }
    }

    #[test]
    fn a_producer_fills_to_the_size_and_no_further_until_the_consumer_moves() {
        // Start near the wrap of the indexes.
        let mut mem = Mem::new(4, u32::MAX - 1);
        let mut p = Producer::new(&mut mem);
        for v in 0..4 {
            assert!(p.push(v));
        }
        assert!(!p.push(9), "full");
        assert_eq!(p.publish(), 4);
        assert_eq!(p.outstanding(), 4);
        // The kernel consumes two.
        p.slots().consumer.store((u32::MAX - 1).wrapping_add(2), Ordering::Release);
        assert_eq!(p.free(1), 2);
        assert!(p.push(4) && p.push(5) && !p.push(6));
        p.publish();
        assert_eq!(mem.producer.load(Ordering::Relaxed), (u32::MAX - 1).wrapping_add(6));
        assert_eq!(mem.entries, vec![2, 3, 4, 5], "slots 2, 3, 0, 1, then 2, 3 again");
    }

    #[test]
    fn nothing_is_visible_to_the_kernel_before_it_is_published() {
        let mut mem = Mem::new(8, 0);
        let mut p = Producer::new(&mut mem);
        assert!(p.push(1));
        assert_eq!(p.slots().producer.load(Ordering::Relaxed), 0);
        assert_eq!(p.publish(), 1);
        assert_eq!(p.publish(), 0, "published once");
        assert_eq!(mem.producer.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_consumer_reads_what_was_produced_in_order_and_releases_it() {
        let mut mem = Mem::new(4, u32::MAX);
        for i in 0..3u32 {
            let at = u32::MAX.wrapping_add(i);
            (&mut mem).write(at, Desc { addr: u64::from(i) * 4096, len: 60 + i, options: 0 });
        }
        mem.producer.store(u32::MAX.wrapping_add(3), Ordering::Release);
        let mut c = Consumer::new(&mut mem);
        assert_eq!(c.ready(), 3);
        let lens: Vec<u32> = (0..3).map(|i| c.peek(i).len).collect();
        assert_eq!(lens, [60, 61, 62]);
        c.release(2);
        assert_eq!(c.ready(), 1);
        c.release(1);
        assert_eq!(c.ready(), 0);
        assert_eq!(mem.consumer.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_consumer_never_believes_in_more_than_a_ring() {
        let mut mem = Mem::<u64>::new(4, 0);
        mem.producer.store(1000, Ordering::Release);
        let mut c = Consumer::new(&mut mem);
        assert_eq!(c.ready(), 4);
    }

    #[test]
    fn frames_are_found_in_ring_order_and_never_overlap() {
        let d = |addr: u64, len: u32| Desc { addr, len, options: 0 };
        // Out of address order; one in the same chunk as another, one crossing its
        // chunk's end, one past the UMEM.
        let descs =
            [d(512, 10), d(0, 20), d(10, 5), d(768 + 200, 100), d(256 + 16, 30), d(4096, 1)];
        let got: Vec<(usize, Range<usize>)> = frames(1024, &descs, 256).into_iter().collect();
        assert_eq!(got, [(0, 512..522), (1, 0..20), (4, 272..302)]);
    }
}
