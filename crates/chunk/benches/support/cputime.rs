//! A criterion measurement of the benchmark thread's CPU time instead of wall
//! clock time: on a machine shared with other builds, wall clock varies by
//! 2× between runs while the CPU time a run needs varies far less (cache and
//! SMT contention still show). Read from Linux's `/proc/thread-self/schedstat`
//! (nanoseconds on CPU); elsewhere it falls back to wall clock time.

use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Thread CPU time, in nanoseconds, reported like wall time.
pub struct CpuTime;

/// Reuses criterion's duration formatting: values are nanoseconds either way.
static WALL_TIME: WallTime = WallTime;

/// Nanoseconds since an arbitrary origin: thread CPU time where Linux tells
/// it, otherwise wall clock time.
pub fn now_ns() -> u64 {
    if let Some(cpu_ns) = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
    {
        return cpu_ns;
    }
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        now_ns()
    }

    fn end(&self, started: u64) -> u64 {
        now_ns().saturating_sub(started)
    }

    fn add(&self, left: &u64, right: &u64) -> u64 {
        left + right
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}
