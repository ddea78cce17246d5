//! Time as an input: the director never reads a clock.
//!
//! [`Instant`] is a point on the caller's clock in nanoseconds. Which clock does not matter
//! (a monotonic clock for a live director, capture timestamps for a replay) as long as the
//! caller keeps using the same one. Spans of time are [`core::time::Duration`], re-exported
//! as [`Duration`].

use core::fmt;
use core::ops::{Add, Sub};

pub use core::time::Duration;

/// A point in time on the caller's clock, in nanoseconds.
///
/// Arithmetic saturates instead of overflowing: the packet path must never panic, whatever
/// timestamps a capture file holds.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Self = Self { nanos: 0 };
    /// The latest representable instant (about 584 years after the origin).
    pub const MAX: Self = Self { nanos: u64::MAX };

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// An instant `micros` microseconds after the origin (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Self { nanos: micros.saturating_mul(1_000) }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self { nanos: millis.saturating_mul(1_000_000) }
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self { nanos: secs.saturating_mul(1_000_000_000) }
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Whole seconds since the origin.
    pub const fn as_secs(self) -> u64 {
        self.nanos / 1_000_000_000
    }

    /// `self + duration`, or `None` past [`Instant::MAX`].
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let add = u64::try_from(duration.as_nanos()).ok()?;
        self.nanos.checked_add(add).map(Self::from_nanos)
    }

    /// `self + duration`, clamped to [`Instant::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        self.checked_add(duration).unwrap_or(Self::MAX)
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturating addition.
    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for Instant {
    type Output = Duration;

    /// Saturating difference.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.nanos / 1_000_000_000, self.nanos % 1_000_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_agree() {
        assert_eq!(Instant::from_secs(2), Instant::from_millis(2_000));
        assert_eq!(Instant::from_millis(3), Instant::from_micros(3_000));
        assert_eq!(Instant::from_micros(5).as_nanos(), 5_000);
        assert_eq!(Instant::from_secs(7).as_secs(), 7);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
        assert_eq!(Instant::ZERO - Instant::from_secs(1), Duration::ZERO);
        assert_eq!(Instant::from_secs(5) - Instant::from_secs(3), Duration::from_secs(2));
        assert_eq!(Instant::ZERO.checked_add(Duration::MAX), None);
    }

    #[test]
    fn debug_shows_seconds() {
        extern crate alloc;
        assert_eq!(alloc::format!("{:?}", Instant::from_millis(1_500)), "1.500000000s");
    }
}
