//! Bookkeeping of sent and received canary entries: which arrived in order,
//! out of order, twice, unexpectedly, or not at all. Pure: callers pass the
//! current time, so every rule is unit-tested without clocks or servers.
//!
//! An entry is identified by its timestamp (nanoseconds, unique per canary).
//! It is *pending* from when it is written until it is received; received
//! entries are remembered for `wait` to recognise duplicates. A pending
//! entry older than `wait` moves to *confirming*: the caller queries the
//! server for the [`Comparator::confirm_window`] and passes what it found to
//! [`Comparator::confirm`]; an entry still not found after `max_wait` is
//! missing.

use std::collections::{BTreeSet, VecDeque};

/// What a received entry turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The oldest pending entry: the expected one.
    InOrder {
        /// Time since the entry was written.
        latency_ns: i64,
    },
    /// Pending, but older pending entries have not arrived yet.
    OutOfOrder {
        /// Time since the entry was written.
        latency_ns: i64,
        /// How many older entries are still pending.
        ahead: usize,
    },
    /// Arrived after `wait`, while it was being confirmed by query.
    Late {
        /// Time since the entry was written.
        latency_ns: i64,
    },
    /// Already received.
    Duplicate,
    /// Never sent by this canary, or received after it was reported missing.
    Unexpected,
}

/// Entries that a confirmation query settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmed {
    /// Found by the query, so not missing after all.
    pub found: Vec<i64>,
    /// Not found and older than `max_wait`: missing for good.
    pub missing: Vec<i64>,
}

/// Sent/received bookkeeping of one canary.
#[derive(Debug)]
pub struct Comparator {
    wait_ns: i64,
    max_wait_ns: i64,
    spot_check_interval_ns: i64,
    spot_check_max_ns: i64,
    /// Written, not yet received, oldest first.
    pending: VecDeque<i64>,
    /// Received within the last `wait`, for duplicate detection (sorted).
    received: BTreeSet<i64>,
    /// Not received within `wait`, not yet found by query (sorted).
    confirming: BTreeSet<i64>,
    /// One written entry per spot-check interval, oldest first.
    spot_checks: VecDeque<i64>,
}

/// Durations (ns) the comparator works with, as the canary's flags name them.
#[derive(Debug, Clone, Copy)]
pub struct ComparatorConfig {
    /// `-wait`.
    pub wait_ns: i64,
    /// `-max-wait`.
    pub max_wait_ns: i64,
    /// `-spot-check-interval`.
    pub spot_check_interval_ns: i64,
    /// `-spot-check-max`.
    pub spot_check_max_ns: i64,
}

impl Comparator {
    /// An empty comparator.
    pub fn new(config: ComparatorConfig) -> Comparator {
        Comparator {
            wait_ns: config.wait_ns,
            max_wait_ns: config.max_wait_ns,
            spot_check_interval_ns: config.spot_check_interval_ns,
            spot_check_max_ns: config.spot_check_max_ns,
            pending: VecDeque::new(),
            received: BTreeSet::new(),
            confirming: BTreeSet::new(),
            spot_checks: VecDeque::new(),
        }
    }

    /// Records an entry as written.
    pub fn sent(&mut self, ts: i64) {
        self.pending.push_back(ts);
        let sample = self
            .spot_checks
            .back()
            .is_none_or(|last| ts - last >= self.spot_check_interval_ns);
        if sample {
            self.spot_checks.push_back(ts);
        }
    }

    /// Records an entry as received at `now`.
    pub fn received(&mut self, ts: i64, now: i64) -> Received {
        let latency_ns = now - ts;
        if let Some(position) = self.pending.iter().position(|pending| *pending == ts) {
            self.pending.remove(position);
            self.received.insert(ts);
            return if position == 0 {
                Received::InOrder { latency_ns }
            } else {
                Received::OutOfOrder {
                    latency_ns,
                    ahead: position,
                }
            };
        }
        if self.confirming.remove(&ts) {
            self.received.insert(ts);
            return Received::Late { latency_ns };
        }
        if self.received.contains(&ts) {
            Received::Duplicate
        } else {
            Received::Unexpected
        }
    }

    /// Moves pending entries written at or before `now - wait` to
    /// confirming and forgets received entries older than that; returns how
    /// many entries moved (not received in time by the receive path).
    pub fn prune(&mut self, now: i64) -> usize {
        let cutoff = now - self.wait_ns;
        let mut moved = 0;
        self.pending.retain(|ts| {
            if *ts <= cutoff {
                self.confirming.insert(*ts);
                moved += 1;
                false
            } else {
                true
            }
        });
        self.received = self.received.split_off(&cutoff);
        moved
    }

    /// The range to query to confirm entries: 10 s either side of the
    /// oldest and newest confirming entry (clocks may disagree), or `None`
    /// when nothing awaits confirmation.
    pub fn confirm_window(&self) -> Option<(i64, i64)> {
        const MARGIN_NS: i64 = 10_000_000_000;
        let first = self.confirming.first()?;
        let last = self.confirming.last()?;
        Some((first - MARGIN_NS, last + MARGIN_NS))
    }

    /// Applies a confirmation query made at `now` that returned `found`:
    /// found entries stop being tracked; entries not found and written
    /// before `now - max_wait` are missing.
    pub fn confirm(&mut self, found: &BTreeSet<i64>, now: i64) -> Confirmed {
        let mut confirmed = Confirmed::default();
        let cutoff = now - self.max_wait_ns;
        self.confirming.retain(|ts| {
            if found.contains(ts) {
                confirmed.found.push(*ts);
                false
            } else if *ts < cutoff {
                confirmed.missing.push(*ts);
                false
            } else {
                true
            }
        });
        confirmed
    }

    /// Drops spot-check samples older than `spot_check_max` and returns
    /// those written at least `initial_wait_ns` before `now`, to query.
    pub fn spot_checks_due(&mut self, now: i64, initial_wait_ns: i64) -> Vec<i64> {
        let oldest = now - self.spot_check_max_ns;
        while self.spot_checks.front().is_some_and(|ts| *ts < oldest) {
            self.spot_checks.pop_front();
        }
        self.spot_checks
            .iter()
            .copied()
            .filter(|ts| now - ts >= initial_wait_ns)
            .collect()
    }

    /// Entries written and not yet received or confirming.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Entries awaiting a confirmation query.
    pub fn confirming(&self) -> usize {
        self.confirming.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn comparator() -> Comparator {
        Comparator::new(ComparatorConfig {
            wait_ns: 60 * SEC,
            max_wait_ns: 300 * SEC,
            spot_check_interval_ns: 10 * SEC,
            spot_check_max_ns: 3600 * SEC,
        })
    }

    #[test]
    fn entries_received_in_order() {
        let mut c = comparator();
        for ts in [SEC, 2 * SEC, 3 * SEC] {
            c.sent(ts);
        }
        assert_eq!(
            c.received(SEC, SEC + SEC / 2),
            Received::InOrder {
                latency_ns: SEC / 2
            }
        );
        assert_eq!(
            c.received(2 * SEC, 3 * SEC),
            Received::InOrder { latency_ns: SEC }
        );
        assert_eq!(c.pending(), 1);
    }

    #[test]
    fn an_entry_overtaking_older_ones_is_out_of_order() {
        let mut c = comparator();
        for ts in [SEC, 2 * SEC, 3 * SEC] {
            c.sent(ts);
        }
        assert_eq!(
            c.received(3 * SEC, 4 * SEC),
            Received::OutOfOrder {
                latency_ns: SEC,
                ahead: 2
            }
        );
        // The older ones then arrive in order among themselves.
        assert!(matches!(c.received(SEC, 4 * SEC), Received::InOrder { .. }));
        assert!(matches!(
            c.received(2 * SEC, 4 * SEC),
            Received::InOrder { .. }
        ));
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn a_second_copy_is_a_duplicate_and_a_stranger_is_unexpected() {
        let mut c = comparator();
        c.sent(SEC);
        assert!(matches!(c.received(SEC, 2 * SEC), Received::InOrder { .. }));
        assert_eq!(c.received(SEC, 3 * SEC), Received::Duplicate);
        assert_eq!(c.received(SEC, 4 * SEC), Received::Duplicate);
        assert_eq!(c.received(7 * SEC, 4 * SEC), Received::Unexpected);
    }

    #[test]
    fn duplicates_are_remembered_for_wait_only() {
        let mut c = comparator();
        c.sent(SEC);
        c.received(SEC, 2 * SEC);
        c.prune(30 * SEC);
        assert_eq!(c.received(SEC, 30 * SEC), Received::Duplicate);
        c.prune(62 * SEC);
        assert_eq!(c.received(SEC, 62 * SEC), Received::Unexpected);
    }

    #[test]
    fn unreceived_entries_are_confirmed_by_query_or_reported_missing() {
        let mut c = comparator();
        for ts in [SEC, 2 * SEC, 3 * SEC, 100 * SEC] {
            c.sent(ts);
        }
        assert_eq!(c.prune(30 * SEC), 0);
        assert_eq!(c.confirm_window(), None);
        // At 63 s the first three are past the 60 s wait.
        assert_eq!(c.prune(63 * SEC), 3);
        assert_eq!((c.pending(), c.confirming()), (1, 3));
        assert_eq!(c.confirm_window(), Some((-9 * SEC, 13 * SEC)));
        // The query finds the second one; the rest are not old enough yet.
        let confirmed = c.confirm(&BTreeSet::from([2 * SEC]), 62 * SEC);
        assert_eq!(
            confirmed,
            Confirmed {
                found: vec![2 * SEC],
                missing: vec![]
            }
        );
        // The third arrives late through the receive path.
        assert_eq!(
            c.received(3 * SEC, 70 * SEC),
            Received::Late {
                latency_ns: 67 * SEC
            }
        );
        // Past max-wait (300 s) the first is missing for good.
        let confirmed = c.confirm(&BTreeSet::new(), 302 * SEC);
        assert_eq!(confirmed.missing, vec![SEC]);
        assert_eq!(c.confirming(), 0);
        // Arriving after being reported missing makes it unexpected.
        assert_eq!(c.received(SEC, 303 * SEC), Received::Unexpected);
    }

    #[test]
    fn spot_checks_sample_one_entry_per_interval() {
        let mut c = comparator();
        for second in 0..35 {
            c.sent(second * SEC);
        }
        assert_eq!(
            c.spot_checks_due(35 * SEC, 10 * SEC),
            [0, 10 * SEC, 20 * SEC]
        );
        assert_eq!(
            c.spot_checks_due(3615 * SEC, 10 * SEC),
            [20 * SEC, 30 * SEC],
            "samples older than spot-check-max are dropped"
        );
    }
}
