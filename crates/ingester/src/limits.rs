//! The limits an ingester enforces, as Loki's ingester does: how many
//! streams a tenant may have here, and which entries a stream takes
//! (per-stream rate, order). Entries are checked under the stream's lock,
//! before the WAL write, so the WAL holds only what was accepted; WAL
//! replay skips these checks.

use std::sync::Arc;
use std::time::Instant;

use sluice_common::byte_size::format_byte_size;
use sluice_common::overrides::{FixedCount, InstanceCount};
use sluice_common::token_bucket::TokenBucket;
use sluice_common::{DiscardMetrics, DiscardReason, ErrorCode, LimitsConfig, Overrides};

use crate::stream::StreamData;

/// Loki's message for a new stream over the tenant's limit.
pub(crate) const STREAM_LIMIT_MESSAGE: &str = "Maximum active stream limit exceeded, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased";

/// Most per-entry errors a push reply lists (Loki's
/// `max_returned_stream_errors`).
const MAX_RETURNED_ERRORS: usize = 10;

/// What an ingester needs to enforce per-tenant limits.
#[derive(Debug, Clone)]
pub struct IngesterLimits {
    /// Each tenant's limits.
    pub overrides: Arc<Overrides>,
    /// How many healthy ingesters share a tenant's global stream limit.
    pub ingesters: Arc<dyn InstanceCount>,
    /// How many ingesters hold each stream.
    pub replication_factor: usize,
    /// The process's discard counters (shared with the distributor).
    pub discards: DiscardMetrics,
}

impl Default for IngesterLimits {
    /// Default limits on a lone ingester without replication.
    fn default() -> IngesterLimits {
        IngesterLimits {
            overrides: Overrides::new(LimitsConfig::default()),
            ingesters: Arc::new(FixedCount(1)),
            replication_factor: 1,
            discards: DiscardMetrics::default(),
        }
    }
}

impl IngesterLimits {
    /// Returns how many streams `limits`' tenant may have on this ingester:
    /// the smaller of `max_streams_per_user` and this ingester's share of
    /// `max_global_streams_per_user` (global ÷ healthy ingesters ×
    /// replication factor), 0 meaning unset; `usize::MAX` when neither is.
    pub(crate) fn max_streams(&self, limits: &LimitsConfig) -> usize {
        let local = limits.max_streams_per_user;
        let ingesters = self.ingesters.healthy_instances();
        // While the ring is not known yet the global limit is ignored, in
        // the tenant's favour, as Loki does.
        let global = if limits.max_global_streams_per_user == 0 || ingesters == 0 {
            0
        } else {
            (limits.max_global_streams_per_user as f64 / ingesters as f64
                * self.replication_factor.max(1) as f64) as usize
        };
        match (local, global) {
            (0, 0) => usize::MAX,
            (0, limit) | (limit, 0) => limit,
            (local, global) => local.min(global),
        }
    }
}

/// How a stream judges new entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRules {
    /// `unordered_writes`.
    pub(crate) unordered: bool,
    /// Half of `max_chunk_age`, in nanoseconds: how far behind the newest
    /// entry an unordered entry may be.
    pub(crate) behind_window: i64,
    /// `per_stream_rate_limit` in bytes/s (0 = none) and its burst.
    pub(crate) rate: f64,
    pub(crate) burst: f64,
}

impl EntryRules {
    pub(crate) fn new(limits: &LimitsConfig, max_chunk_age: std::time::Duration) -> EntryRules {
        EntryRules {
            unordered: limits.unordered_writes,
            behind_window: i64::try_from(max_chunk_age.as_nanos() / 2).unwrap_or(i64::MAX),
            rate: limits.per_stream_rate_limit as f64,
            burst: limits.per_stream_rate_limit_burst as f64,
        }
    }
}

/// Why one entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Over the stream's rate limit.
    RateLimited,
    /// Older than the stream's last entry, with ordered writes.
    OutOfOrder,
    /// Older than the stream's newest entry minus the window.
    TooFarBehind {
        /// The oldest acceptable timestamp.
        cutoff: i64,
    },
}

impl Rejection {
    fn reason(self) -> DiscardReason {
        match self {
            Rejection::RateLimited => DiscardReason::PerStreamRateLimit,
            Rejection::OutOfOrder => DiscardReason::OutOfOrder,
            Rejection::TooFarBehind { .. } => DiscardReason::TooFarBehind,
        }
    }
}

/// A refused entry: its timestamp, line size and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) timestamp: i64,
    pub(crate) bytes: usize,
    pub(crate) rejection: Rejection,
}

/// Splits `entries` into those the stream takes, in order, and those it
/// refuses. Exact repeats of the previous accepted entry are dropped
/// silently. Charges the stream's rate limiter for what it takes.
pub(crate) fn admit_entries<'a>(
    data: &mut StreamData,
    entries: impl Iterator<Item = (i64, &'a str)>,
    rules: &EntryRules,
    now: Instant,
) -> (Vec<(i64, &'a str)>, Vec<Refused>) {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut last_timestamp = data.last_timestamp;
    let mut last_line: Option<&'a str> = None;
    let mut highest = data.highest_timestamp;
    for (timestamp, line) in entries {
        let repeats_last = last_timestamp == Some(timestamp)
            && match last_line {
                Some(previous) => previous == line,
                None => data.last_line == line,
            };
        if repeats_last {
            continue;
        }
        let refuse = |rejection| Refused {
            timestamp,
            bytes: line.len(),
            rejection,
        };
        if rules.rate > 0.0 {
            let bucket = data
                .rate_limiter
                .get_or_insert_with(|| TokenBucket::new(rules.burst, now));
            if !bucket.take(line.len() as f64, rules.rate, rules.burst, now) {
                refused.push(refuse(Rejection::RateLimited));
                continue;
            }
        }
        if rules.unordered {
            if let Some(newest) = highest {
                let cutoff = newest.saturating_sub(rules.behind_window);
                if timestamp < cutoff {
                    refused.push(refuse(Rejection::TooFarBehind { cutoff }));
                    continue;
                }
            }
        } else if last_timestamp.is_some_and(|last| timestamp < last) {
            refused.push(refuse(Rejection::OutOfOrder));
            continue;
        }
        accepted.push((timestamp, line));
        last_timestamp = Some(timestamp);
        last_line = Some(line);
        highest = Some(highest.map_or(timestamp, |newest| newest.max(timestamp)));
    }
    (accepted, refused)
}

/// The refusals of one push to one stream, as Loki words them: one line
/// per refused entry (at most ten), then the count; 429 if the last one
/// was over the rate limit, else 400.
pub(crate) fn refusal_reply(
    tenant: &str,
    labels: &str,
    refused: &[Refused],
    total: usize,
    rules: &EntryRules,
) -> (ErrorCode, String) {
    let mut message = String::new();
    for entry in refused.iter().take(MAX_RETURNED_ERRORS) {
        let reason = match entry.rejection {
            Rejection::RateLimited => format!(
                "Per stream rate limit exceeded (limit: {}/sec) while attempting to ingest for stream '{labels}' totaling {}, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased",
                format_byte_size(rules.rate as u64),
                format_byte_size(entry.bytes as u64)
            ),
            Rejection::OutOfOrder => "entry out of order".to_string(),
            Rejection::TooFarBehind { cutoff } => format!(
                "entry too far behind, oldest acceptable timestamp is: {}",
                chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(cutoff)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
        message.push_str(&format!(
            "entry with timestamp {} ignored, reason: '{reason}' for stream: {labels},\n",
            format_go_time(entry.timestamp)
        ));
    }
    message.push_str(&format!(
        "user '{tenant}', total ignored: {} out of {total}",
        refused.len()
    ));
    let code = match refused.last().map(|entry| entry.rejection) {
        Some(Rejection::RateLimited) => ErrorCode::RateLimited,
        _ => ErrorCode::BadRequest,
    };
    (code, message)
}

/// Counts refused entries in the discard metrics.
pub(crate) fn record_refusals(discards: &DiscardMetrics, tenant: &str, refused: &[Refused]) {
    for entry in refused {
        discards.record(entry.rejection.reason(), tenant, 1, entry.bytes as u64);
    }
}

/// Formats a timestamp as Go's `time.Time.String()` in UTC:
/// `2026-11-24 04:25:10.374934517 +0000 UTC` (fraction without trailing
/// zeros, none when whole).
pub(crate) fn format_go_time(nanos: i64) -> String {
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos);
    let whole = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = nanos.rem_euclid(1_000_000_000);
    if fraction == 0 {
        format!("{whole} +0000 UTC")
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{} +0000 UTC", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_chunk::Labels;

    use super::*;
    use crate::config::IngesterConfig;
    use crate::stream::Stream;

    fn rules(unordered: bool, rate: f64, burst: f64) -> EntryRules {
        EntryRules {
            unordered,
            behind_window: 100,
            rate,
            burst,
        }
    }

    fn stream() -> Stream {
        Stream::new(
            Labels::from_pairs([("job", "t")]),
            &IngesterConfig::default(),
        )
    }

    #[test]
    fn stream_limit_takes_the_smaller_of_local_and_global_share() {
        let limits = |local, global| LimitsConfig {
            max_streams_per_user: local,
            max_global_streams_per_user: global,
            ..LimitsConfig::default()
        };
        let ingester = |count, replication_factor| IngesterLimits {
            ingesters: Arc::new(FixedCount(count)),
            replication_factor,
            ..IngesterLimits::default()
        };
        assert_eq!(ingester(1, 1).max_streams(&limits(0, 5000)), 5000);
        assert_eq!(ingester(6, 3).max_streams(&limits(0, 5000)), 2500);
        assert_eq!(ingester(6, 3).max_streams(&limits(100, 5000)), 100);
        assert_eq!(ingester(6, 3).max_streams(&limits(0, 0)), usize::MAX);
        assert_eq!(ingester(0, 3).max_streams(&limits(0, 5000)), usize::MAX);
        assert_eq!(ingester(0, 3).max_streams(&limits(7, 5000)), 7);
    }

    #[test]
    fn ordered_writes_refuse_older_entries_unordered_only_far_behind() {
        let stream = stream();
        let now = Instant::now();
        let mut data = stream.data.lock();
        let (accepted, refused) = admit_entries(
            &mut data,
            [(1000, "a"), (999, "b"), (1000, "c")].into_iter(),
            &rules(false, 0.0, 0.0),
            now,
        );
        assert_eq!(accepted, vec![(1000, "a"), (1000, "c")]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].rejection, Rejection::OutOfOrder);

        let (accepted, refused) = admit_entries(
            &mut data,
            [
                (1000, "a"),
                (950, "b"),
                (899, "c"),
                (2000, "d"),
                (1899, "e"),
            ]
            .into_iter(),
            &rules(true, 0.0, 0.0),
            now,
        );
        assert_eq!(accepted, vec![(1000, "a"), (950, "b"), (2000, "d")]);
        assert_eq!(
            refused
                .iter()
                .map(|entry| entry.rejection)
                .collect::<Vec<_>>(),
            vec![
                Rejection::TooFarBehind { cutoff: 900 },
                Rejection::TooFarBehind { cutoff: 1900 }
            ]
        );
    }

    #[test]
    fn stream_state_carries_across_pushes_and_repeats_are_dropped() {
        let stream = stream();
        let now = Instant::now();
        let mut data = stream.data.lock();
        data.append([(5000, "x")].into_iter(), now);
        let (accepted, refused) = admit_entries(
            &mut data,
            [(5000, "x"), (4000, "y"), (4950, "z")].into_iter(),
            &rules(true, 0.0, 0.0),
            now,
        );
        assert_eq!(accepted, vec![(4950, "z")]);
        assert_eq!(refused.len(), 1);
        let (accepted, _) = admit_entries(
            &mut data,
            [(4999, "w")].into_iter(),
            &rules(false, 0.0, 0.0),
            now,
        );
        assert!(accepted.is_empty(), "4999 is before the last entry 5000");
    }

    #[test]
    fn per_stream_rate_limit_and_lokis_reply() {
        let stream = stream();
        let now = Instant::now();
        let mut data = stream.data.lock();
        let rules = rules(true, 10.0, 10.0);
        let (accepted, refused) = admit_entries(
            &mut data,
            [(1, "12345"), (2, "12345"), (3, "1")].into_iter(),
            &rules,
            now,
        );
        assert_eq!(accepted, vec![(1, "12345"), (2, "12345")]);
        assert_eq!(refused.len(), 1);
        let later = now + Duration::from_secs(1);
        let (accepted, _) =
            admit_entries(&mut data, [(4, "1234567890")].into_iter(), &rules, later);
        assert_eq!(accepted.len(), 1, "refilled after a second");
        let (code, message) = refusal_reply("a", "{job=\"t\"}", &refused, 3, &rules);
        assert_eq!(code, ErrorCode::RateLimited);
        assert_eq!(
            message,
            "entry with timestamp 1970-01-01 00:00:00.000000003 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 10B/sec) while attempting to ingest for stream '{job=\"t\"}' totaling 1B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased' for stream: {job=\"t\"},\nuser 'a', total ignored: 1 out of 3"
        );
    }

    #[test]
    fn go_time_format() {
        assert_eq!(
            format_go_time(1_795_493_110_374_934_517),
            "2026-11-24 04:05:10.374934517 +0000 UTC"
        );
        assert_eq!(
            format_go_time(1_795_493_110_500_000_000),
            "2026-11-24 04:05:10.5 +0000 UTC"
        );
        assert_eq!(format_go_time(0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
