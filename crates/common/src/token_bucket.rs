//! A token bucket with the semantics of Go's `rate.Limiter.AllowN`, which
//! Loki's rate limits use: tokens refill at `rate` per second up to
//! `burst`; a request for `n` tokens is allowed only if that many are
//! there, and a refused request takes nothing. Rate and burst can change
//! between calls (per-tenant limits are reloaded at runtime).

use std::time::Instant;

/// One bucket. Not synchronized; callers hold it under their own lock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Returns a full bucket.
    pub fn new(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            last: now,
        }
    }

    /// Refills for the time since the last call at `rate` per second, with
    /// the bucket capped at `burst`.
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * rate.max(0.0)).min(burst);
    }

    /// Returns whether `n` tokens are available now (after refilling).
    pub fn can_take(&mut self, n: f64, rate: f64, burst: f64, now: Instant) -> bool {
        if rate.is_infinite() {
            return true;
        }
        self.refill(rate, burst, now);
        n <= self.tokens
    }

    /// Takes `n` tokens if available; returns whether it did.
    pub fn take(&mut self, n: f64, rate: f64, burst: f64, now: Instant) -> bool {
        if !self.can_take(n, rate, burst, now) {
            return false;
        }
        if !rate.is_infinite() {
            self.tokens -= n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, start);
        assert!(bucket.take(60.0, 10.0, 100.0, start));
        assert!(!bucket.take(60.0, 10.0, 100.0, start), "only 40 left");
        assert!(bucket.take(40.0, 10.0, 100.0, start));
        let later = start + Duration::from_secs(2);
        assert!(!bucket.take(30.0, 10.0, 100.0, later), "20 refilled");
        assert!(bucket.take(20.0, 10.0, 100.0, later));
        let much_later = start + Duration::from_secs(3600);
        assert!(
            bucket.take(100.0, 10.0, 100.0, much_later),
            "capped at burst"
        );
        assert!(!bucket.take(1.0, 10.0, 100.0, much_later));
    }

    #[test]
    fn more_than_burst_is_never_allowed() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, start);
        assert!(!bucket.take(11.0, 1000.0, 10.0, start + Duration::from_secs(60)));
    }

    #[test]
    fn limits_can_change() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, start);
        assert!(bucket.take(10.0, 1.0, 10.0, start));
        let later = start + Duration::from_secs(1);
        assert!(bucket.take(100.0, 1000.0, 1000.0, later + Duration::from_millis(100)));
        assert!(bucket.take(1e12, f64::INFINITY, 0.0, later));
    }
}
