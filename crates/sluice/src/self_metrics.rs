//! Metrics read at scrape time: the process's memory, CPU and file
//! descriptors under the standard `process_*` names (what the ingester
//! memory panels and the high-memory runbook read), and the ring's members
//! by state as `cortex_ring_members` (what the ingester-unhealthy alert
//! reads), as Loki exposes them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sluice_ring::{now_ms, MemberState, Ring};
use tokio::sync::watch;

/// The kernel's clock tick for `/proc/<pid>/stat` times (`USER_HZ`, 100 on
/// every architecture Linux runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// `process_*` metrics from `/proc/self` (absent where there is no procfs).
#[derive(Debug)]
struct ProcessCollector {
    start_time_seconds: f64,
}

/// What `/proc/self` says now.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    cpu_seconds: Option<f64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
    threads: Option<i64>,
}

impl ProcessStats {
    fn read() -> ProcessStats {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as i64);
        ProcessStats {
            open_fds,
            ..parse(&status, &stat, &limits)
        }
    }
}

/// Parses `/proc/self/status` (`VmRSS`, `VmSize`, `Threads`), `stat`
/// (utime and stime, fields 14 and 15) and `limits` (`Max open files`).
fn parse(status: &str, stat: &str, limits: &str) -> ProcessStats {
    let kilobytes = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<i64>().ok())
    };
    // Fields after the command name, which is in parentheses and may
    // contain spaces.
    let cpu_seconds = stat.rsplit_once(')').and_then(|(_, rest)| {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): utime is field 14.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / TICKS_PER_SECOND)
    });
    let max_fds = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok());
    ProcessStats {
        resident_bytes: kilobytes("VmRSS:").map(|kb| kb * 1024),
        virtual_bytes: kilobytes("VmSize:").map(|kb| kb * 1024),
        cpu_seconds,
        open_fds: None,
        max_fds,
        threads: kilobytes("Threads:"),
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<i64>,
) -> Result<(), std::fmt::Error> {
    if let Some(value) = value {
        let metric = ConstGauge::new(value);
        metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
    }
    Ok(())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = ProcessStats::read();
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stats.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stats.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            stats.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            stats.max_fds,
        )?;
        gauge(
            &mut encoder,
            "process_threads",
            "Number of OS threads in the process.",
            stats.threads,
        )?;
        if let Some(seconds) = stats.cpu_seconds {
            let metric = ConstCounter::new(seconds);
            metric.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
        }
        let start = ConstGauge::new(self.start_time_seconds);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// Registers the `process_*` metrics.
pub(crate) fn register_process_metrics(registry: &mut Registry) {
    let start_time_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or_default();
    registry.register_collector(Box::new(ProcessCollector { start_time_seconds }));
}

/// `cortex_ring_members{name, state}`: members per state, unhealthy ones
/// (no heartbeat within the timeout) as `Unhealthy`, every state present.
#[derive(Debug)]
struct RingMembers {
    name: &'static str,
    ring: watch::Receiver<Arc<Ring>>,
    heartbeat_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct RingLabels {
    name: &'static str,
    state: &'static str,
}

/// Counts `members` by Loki's ring state names.
fn count_states(ring: &Ring, now_ms: i64, heartbeat_timeout: Duration) -> [(&'static str, i64); 4] {
    let mut counts = [
        ("ACTIVE", 0),
        ("JOINING", 0),
        ("LEAVING", 0),
        ("Unhealthy", 0),
    ];
    for member in ring.members() {
        let slot = if !Ring::healthy(member, now_ms, heartbeat_timeout) {
            3
        } else {
            match member.state {
                MemberState::Active => 0,
                MemberState::Joining => 1,
                MemberState::Leaving => 2,
            }
        };
        counts[slot].1 += 1;
    }
    counts
}

impl Collector for RingMembers {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ring = Arc::clone(&self.ring.borrow());
        let counts = count_states(&ring, now_ms(), self.heartbeat_timeout);
        let mut family = encoder.encode_descriptor(
            "cortex_ring_members",
            "Number of members in the ring, by state.",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in counts {
            let labels = RingLabels {
                name: self.name,
                state,
            };
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Registers `cortex_ring_members` for the ring called `name`
/// (`ingester`, `distributor`).
pub(crate) fn register_ring_members(
    registry: &mut Registry,
    name: &'static str,
    ring: watch::Receiver<Arc<Ring>>,
    heartbeat_timeout: Duration,
) {
    registry.register_collector(Box::new(RingMembers {
        name,
        ring,
        heartbeat_timeout,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\tsluice\nVmSize:\t  200 kB\nVmRSS:\t   12 kB\nThreads:\t7\n";
        let stat = "123 (sluice (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 4096 3";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
        let stats = parse(status, stat, limits);
        assert_eq!(stats.resident_bytes, Some(12 * 1024));
        assert_eq!(stats.virtual_bytes, Some(200 * 1024));
        assert_eq!(stats.threads, Some(7));
        assert_eq!(stats.max_fds, Some(1024));
        assert_eq!(stats.cpu_seconds, Some(3.0));
        assert_eq!(parse("", "", ""), ProcessStats::default());
    }

    #[test]
    fn process_metrics_render() {
        let mut registry = Registry::default();
        register_process_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_open_fds ",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}
