//! Cache prefetch hints, for the burst path: on x86 and x86-64 (SSE) the `prefetcht0`
//! instruction through `safe_arch`'s safe wrapper; elsewhere nothing, and the burst path
//! still decides the same, only without loading ahead.

/// Asks the processor to bring the cache line holding `value` into every cache level, without
/// waiting for it.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse")))]
    let _ = value;
}
