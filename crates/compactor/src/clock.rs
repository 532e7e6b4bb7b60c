//! Where the compactor reads the time from. Retention, delays, lease
//! expiry and delete-request deadlines all use one [`Clock`], so tests
//! move time forward by days without waiting.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of wall-clock time, in nanoseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Returns the current time.
    fn now_ns(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        sluice_common::time::now_nanos()
    }
}

/// A clock that only moves when told to (for tests and tools).
#[derive(Debug)]
pub struct ManualClock {
    now_ns: AtomicI64,
}

impl ManualClock {
    /// Creates a clock reading `now_ns`.
    pub fn new(now_ns: i64) -> ManualClock {
        ManualClock {
            now_ns: AtomicI64::new(now_ns),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ns: i64) {
        self.now_ns.store(now_ns, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.now_ns.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}

/// Converts a duration to nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(5);
        assert_eq!(clock.now_ns(), 5);
        clock.advance(Duration::from_nanos(10));
        assert_eq!(clock.now_ns(), 15);
        clock.set(1);
        assert_eq!(clock.now_ns(), 1);
        assert!(SystemClock.now_ns() > 1_600_000_000_000_000_000);
    }
}
