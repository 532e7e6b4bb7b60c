//! An immutable ring snapshot: sorted tokens → members, replica lookup and
//! token ownership.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::desc::{Member, MemberState, RingDesc};
use crate::error::RingError;

/// Returns the minimum successful writes for `replication_factor` replicas.
pub fn quorum(replication_factor: usize) -> usize {
    replication_factor / 2 + 1
}

/// Returns a stream's ring token: FNV-1 (not 1a) 32-bit of the tenant bytes
/// followed by the canonical label string (`{a="1", b="2"}`, as
/// `sluice_chunk::Labels`' `Display`), as Loki's `TokenFor`.
pub fn stream_token(tenant: &str, canonical_labels: &str) -> u32 {
    fnv1_32(
        fnv1_32(FNV_OFFSET, tenant.as_bytes()),
        canonical_labels.as_bytes(),
    )
}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

fn fnv1_32(mut hash: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        hash = hash.wrapping_mul(FNV_PRIME) ^ u32::from(byte);
    }
    hash
}

/// The members a stream is replicated to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationSet {
    /// Distinct healthy members, in ring order (shared with the snapshot,
    /// so a lookup copies no member data).
    pub members: Vec<Arc<Member>>,
    /// How many of them may fail with the write still reaching quorum.
    pub max_errors: usize,
}

/// A ring snapshot built from a [`RingDesc`].
#[derive(Clone, Debug, Default)]
pub struct Ring {
    members: Vec<Arc<Member>>,
    /// `(token, index into members)`, sorted by token.
    tokens: Vec<(u32, usize)>,
    zone_awareness_enabled: bool,
    zone_count: usize,
    /// When the record was read, Unix ms; 0 when unknown.
    read_ms: i64,
}

/// How far past the last successful read of the record health is judged.
/// Past that the ring is stale (the store is unreachable) and health is
/// judged as of the read, so an outage of the store longer than the
/// heartbeat timeout does not turn every member unhealthy.
const STALE_AFTER_MS: i64 = 5_000;

impl Ring {
    /// Builds a snapshot. Members without tokens own nothing.
    pub fn new(desc: &RingDesc, zone_awareness_enabled: bool) -> Self {
        let members: Vec<Arc<Member>> = desc.members.values().cloned().map(Arc::new).collect();
        let mut tokens: Vec<(u32, usize)> = members
            .iter()
            .enumerate()
            .flat_map(|(index, member)| member.tokens.iter().map(move |&token| (token, index)))
            .collect();
        tokens.sort_unstable();
        let zone_count = members
            .iter()
            .filter(|member| !member.zone.is_empty())
            .map(|member| member.zone.as_str())
            .collect::<HashSet<_>>()
            .len();
        Ring {
            members,
            tokens,
            zone_awareness_enabled,
            zone_count,
            read_ms: 0,
        }
    }

    /// Records when the ring record was read (see [`Ring::get`]).
    pub fn read_at(mut self, read_ms: i64) -> Self {
        self.read_ms = read_ms;
        self
    }

    /// The time health is judged at: `now_ms`, unless the record was last
    /// read more than a few seconds ago, then shortly after that read.
    fn clock(&self, now_ms: i64) -> i64 {
        if self.read_ms == 0 {
            now_ms
        } else {
            now_ms.min(self.read_ms.saturating_add(STALE_AFTER_MS))
        }
    }

    /// Returns all members, ordered by id.
    pub fn members(&self) -> &[Arc<Member>] {
        &self.members
    }

    /// Returns whether `member` heartbeated within `timeout` of `now_ms`.
    pub fn healthy(member: &Member, now_ms: i64, timeout: Duration) -> bool {
        member.is_healthy(now_ms, duration_ms(timeout))
    }

    /// Returns the replicas for a write of `key_hash`: walking clockwise from
    /// the first token ≥ `key_hash`, the first `replication_factor` distinct
    /// healthy ACTIVE members, at most one per zone when zone awareness is on
    /// and there are at least `replication_factor` zones.
    ///
    /// Unlike Loki, which keeps an unhealthy replica in the set and counts it
    /// as an error, we skip it and take the next member, so a dead ingester
    /// does not eat into the write's error budget. Fails when fewer than
    /// `quorum(replication_factor)` members qualify.
    ///
    /// Health is judged at `now_ms`, or, when the snapshot is stale (its
    /// record could not be re-read for a while: the KV store is down), as
    /// of shortly after its last read: members keep the health they had
    /// instead of all timing out together.
    pub fn get(
        &self,
        key_hash: u32,
        replication_factor: usize,
        now_ms: i64,
        heartbeat_timeout: Duration,
    ) -> Result<ReplicationSet, RingError> {
        let now_ms = self.clock(now_ms);
        let timeout_ms = duration_ms(heartbeat_timeout);
        let zone_aware = self.zone_awareness_enabled && self.zone_count >= replication_factor;
        let start = self.tokens.partition_point(|&(token, _)| token < key_hash);
        let mut chosen: Vec<usize> = Vec::with_capacity(replication_factor);
        let mut zones: HashSet<&str> = HashSet::new();
        let walk = self.tokens[start..].iter().chain(&self.tokens[..start]);
        for &(_, index) in walk {
            if chosen.len() == replication_factor {
                break;
            }
            if chosen.contains(&index) {
                continue;
            }
            let member = &self.members[index];
            if member.state != MemberState::Active || !member.is_healthy(now_ms, timeout_ms) {
                continue;
            }
            if zone_aware && !zones.insert(member.zone.as_str()) {
                continue;
            }
            chosen.push(index);
        }
        let required = quorum(replication_factor);
        if chosen.len() < required {
            return Err(RingError::TooFewHealthyMembers {
                required,
                found: chosen.len(),
            });
        }
        Ok(ReplicationSet {
            max_errors: chosen.len() - required,
            members: chosen
                .into_iter()
                .map(|index| self.members[index].clone())
                .collect(),
        })
    }

    /// Returns the members a read must ask: every healthy ACTIVE or LEAVING
    /// member (a LEAVING one still holds unflushed data; health judged as in
    /// [`Ring::get`]), and how many of them may fail. A write reached a quorum of `replication_factor`
    /// replicas, so a read survives `replication_factor - quorum` missing
    /// members; members already missing (unhealthy, or JOINING and so not
    /// serving reads yet) use up that budget first. Fails when they exceed
    /// it, since some stream may then have no replica left to answer.
    pub fn read_set(
        &self,
        replication_factor: usize,
        now_ms: i64,
        heartbeat_timeout: Duration,
    ) -> Result<ReplicationSet, RingError> {
        let now_ms = self.clock(now_ms);
        let timeout_ms = duration_ms(heartbeat_timeout);
        let (members, missing): (Vec<&Arc<Member>>, Vec<&Arc<Member>>) = self
            .members
            .iter()
            .filter(|member| !member.tokens.is_empty())
            .partition(|member| {
                matches!(member.state, MemberState::Active | MemberState::Leaving)
                    && member.is_healthy(now_ms, timeout_ms)
            });
        let budget = replication_factor.saturating_sub(quorum(replication_factor));
        if missing.len() > budget {
            return Err(RingError::TooManyUnhealthy {
                unavailable: missing.len(),
                allowed: budget,
            });
        }
        Ok(ReplicationSet {
            members: members.into_iter().cloned().collect(),
            max_errors: budget - missing.len(),
        })
    }

    /// Returns how many ACTIVE members heartbeated within
    /// `heartbeat_timeout` (health judged as in [`Ring::get`]): the
    /// instances a cluster-wide limit is shared among.
    pub fn healthy_active_count(&self, now_ms: i64, heartbeat_timeout: Duration) -> usize {
        let now_ms = self.clock(now_ms);
        let timeout_ms = duration_ms(heartbeat_timeout);
        self.members
            .iter()
            .filter(|member| {
                member.state == MemberState::Active && member.is_healthy(now_ms, timeout_ms)
            })
            .count()
    }

    /// Returns the percentage of the token space each member owns. A token
    /// owns the range after the previous token up to and including itself.
    pub fn token_ownership(&self) -> BTreeMap<String, f64> {
        let mut owned: BTreeMap<String, u64> = self
            .members
            .iter()
            .map(|member| (member.id.clone(), 0))
            .collect();
        let Some(&(last_token, _)) = self.tokens.last() else {
            return owned.into_keys().map(|id| (id, 0.0)).collect();
        };
        let mut previous = last_token;
        for &(token, index) in &self.tokens {
            // Wrapping: the first token owns (last, 2^32) ∪ [0, first]. A
            // single token owns the whole space.
            let span = match token.wrapping_sub(previous) {
                0 => 1u64 << 32,
                span => u64::from(span),
            };
            if let Some(total) = owned.get_mut(&self.members[index].id) {
                *total += span;
            }
            previous = token;
        }
        let space = (1u64 << 32) as f64;
        owned
            .into_iter()
            .map(|(id, span)| (id, span as f64 * 100.0 / space))
            .collect()
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::tokens::generate_tokens;

    const NOW: i64 = 1_000_000;
    const TIMEOUT: Duration = Duration::from_secs(60);

    fn member(id: &str, zone: &str, tokens: Vec<u32>) -> Member {
        Member {
            id: id.to_owned(),
            addr: format!("{id}:9095"),
            zone: zone.to_owned(),
            state: MemberState::Active,
            tokens,
            heartbeat_ms: NOW,
            registered_ms: 0,
        }
    }

    fn desc(members: Vec<Member>) -> RingDesc {
        RingDesc {
            members: members.into_iter().map(|m| (m.id.clone(), m)).collect(),
        }
    }

    fn ids(set: &ReplicationSet) -> Vec<&str> {
        set.members.iter().map(|m| m.id.as_str()).collect()
    }

    fn random_desc(count: usize, seed: u64) -> RingDesc {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ring = RingDesc::default();
        for index in 0..count {
            add_random_member(&mut ring, &format!("ingester-{index}"), &mut rng);
        }
        ring
    }

    fn add_random_member(ring: &mut RingDesc, id: &str, rng: &mut fastrand::Rng) {
        let tokens = generate_tokens(128, &ring.taken_tokens(id), rng).expect("tokens");
        ring.members.insert(id.to_owned(), member(id, "", tokens));
    }

    #[test]
    fn fnv1_test_vectors() {
        // Published FNV-1 32-bit vectors (FNV-1a differs: "a" = 0xe40c292c).
        assert_eq!(fnv1_32(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1_32(FNV_OFFSET, b"a"), 0x050c_5d7e);
        assert_eq!(fnv1_32(FNV_OFFSET, b"foobar"), 0x31f0_b262);
        // Tenant and labels are hashed as one byte string.
        assert_eq!(stream_token("foo", "bar"), fnv1_32(FNV_OFFSET, b"foobar"));
        assert_eq!(
            stream_token("fake", r#"{app="api", env="prod"}"#),
            fnv1_32(FNV_OFFSET, br#"fake{app="api", env="prod"}"#)
        );
    }

    #[test]
    fn healthy_active_count_skips_stale_and_non_active_members() {
        let mut joining = member("c", "", vec![3]);
        joining.state = MemberState::Joining;
        let mut stale = member("d", "", vec![4]);
        stale.heartbeat_ms = NOW - 120_000;
        let ring = Ring::new(
            &desc(vec![
                member("a", "", vec![1]),
                member("b", "", vec![2]),
                joining,
                stale,
            ]),
            false,
        );
        assert_eq!(ring.healthy_active_count(NOW, Duration::from_secs(60)), 2);
    }

    #[test]
    fn quorum_is_majority() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(5), 3);
    }

    #[test]
    fn walks_clockwise_collecting_distinct_members() {
        let ring = Ring::new(
            &desc(vec![
                member("a", "", vec![10, 40]),
                member("b", "", vec![20, 50]),
                member("c", "", vec![30, 60]),
            ]),
            false,
        );
        let set = ring.get(15, 3, NOW, TIMEOUT).expect("set");
        assert_eq!(ids(&set), ["b", "c", "a"]);
        assert_eq!(set.max_errors, 1);
        assert_eq!(
            ids(&ring.get(20, 2, NOW, TIMEOUT).expect("set")),
            ["b", "c"]
        );
        // Past the last token wraps to the first.
        assert_eq!(ids(&ring.get(61, 1, NOW, TIMEOUT).expect("set")), ["a"]);
        assert_eq!(
            ids(&ring.get(u32::MAX, 3, NOW, TIMEOUT).expect("set")),
            ["a", "b", "c"]
        );
        // More replicas than members: all members, error budget shrinks.
        let set = ring.get(0, 5, NOW, TIMEOUT).expect("set");
        assert_eq!(ids(&set), ["a", "b", "c"]);
        assert_eq!(set.max_errors, 0);
    }

    #[test]
    fn skips_unhealthy_and_non_active_members() {
        let mut stale = member("b", "", vec![20]);
        stale.heartbeat_ms = NOW - 61_000;
        let mut leaving = member("c", "", vec![30]);
        leaving.state = MemberState::Leaving;
        let mut joining = member("d", "", vec![40]);
        joining.state = MemberState::Joining;
        let ring = Ring::new(
            &desc(vec![
                member("a", "", vec![10]),
                stale,
                leaving,
                joining,
                member("e", "", vec![50]),
            ]),
            false,
        );
        assert_eq!(
            ids(&ring.get(15, 2, NOW, TIMEOUT).expect("set")),
            ["e", "a"]
        );
        let err = ring
            .get(15, 5, NOW, TIMEOUT)
            .expect_err("only 2 healthy of 5");
        assert!(matches!(
            err,
            RingError::TooFewHealthyMembers {
                required: 3,
                found: 2
            }
        ));
        // `stale` and `joining` are missing: RF 5 tolerates 2, RF 3 only 1.
        let readable = ring.read_set(5, NOW, TIMEOUT).expect("read set");
        assert_eq!(ids(&readable), ["a", "c", "e"]);
        assert_eq!(readable.max_errors, 0);
        let err = ring
            .read_set(3, NOW, TIMEOUT)
            .expect_err("2 missing of RF 3");
        assert!(matches!(
            err,
            RingError::TooManyUnhealthy {
                unavailable: 2,
                allowed: 1
            }
        ));
        assert!(Ring::healthy(&ring.members()[0], NOW + 60_000, TIMEOUT));
        assert!(!Ring::healthy(&ring.members()[0], NOW + 60_001, TIMEOUT));
    }

    #[test]
    fn a_stale_ring_keeps_the_health_it_had() {
        let ring = Ring::new(&desc(vec![member("a", "", vec![10])]), false);
        let later = NOW + 120_000;
        assert!(ring.get(5, 1, later, TIMEOUT).is_err(), "heartbeat too old");
        // Read just before the store went away: judged as of that read.
        let stale = ring.clone().read_at(NOW);
        assert_eq!(ids(&stale.get(5, 1, later, TIMEOUT).expect("set")), ["a"]);
        assert_eq!(
            ids(&stale.read_set(1, later, TIMEOUT).expect("read")),
            ["a"]
        );
        // Read recently: judged now.
        let fresh = ring.read_at(later - 1_000);
        assert!(fresh.get(5, 1, later, TIMEOUT).is_err());
    }

    #[test]
    fn zone_awareness_places_one_replica_per_zone() {
        let members = vec![
            member("a1", "a", vec![10]),
            member("a2", "a", vec![20]),
            member("b1", "b", vec![30]),
            member("b2", "b", vec![40]),
            member("c1", "c", vec![50]),
        ];
        let aware = Ring::new(&desc(members.clone()), true);
        assert_eq!(
            ids(&aware.get(5, 3, NOW, TIMEOUT).expect("set")),
            ["a1", "b1", "c1"]
        );
        let unaware = Ring::new(&desc(members.clone()), false);
        assert_eq!(
            ids(&unaware.get(5, 3, NOW, TIMEOUT).expect("set")),
            ["a1", "a2", "b1"]
        );
        // Fewer zones than replicas: zone awareness cannot apply.
        let two_zones: Vec<Member> = members
            .into_iter()
            .filter(|m| !m.id.starts_with('c'))
            .collect();
        let ring = Ring::new(&desc(two_zones), true);
        assert_eq!(
            ids(&ring.get(5, 3, NOW, TIMEOUT).expect("set")),
            ["a1", "a2", "b1"]
        );
    }

    #[test]
    fn zone_aware_lookups_are_always_zone_distinct() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut ring_desc = RingDesc::default();
        for index in 0..9 {
            let id = format!("ingester-{index}");
            let tokens =
                generate_tokens(128, &ring_desc.taken_tokens(&id), &mut rng).expect("tokens");
            let zone = format!("zone-{}", index % 3);
            ring_desc
                .members
                .insert(id.clone(), member(&id, &zone, tokens));
        }
        let ring = Ring::new(&ring_desc, true);
        for _ in 0..10_000 {
            let set = ring.get(rng.u32(..), 3, NOW, TIMEOUT).expect("set");
            let zones: HashSet<&str> = set.members.iter().map(|m| m.zone.as_str()).collect();
            assert_eq!(zones.len(), 3);
        }
    }

    #[test]
    fn ownership_sums_to_one_hundred() {
        let ring = Ring::new(
            &desc(vec![
                member("a", "", vec![0]),
                member("b", "", vec![1 << 31]),
            ]),
            false,
        );
        let ownership = ring.token_ownership();
        assert!((ownership["a"] - 50.0).abs() < 1e-9);
        assert!((ownership["b"] - 50.0).abs() < 1e-9);
        let single = Ring::new(
            &desc(vec![member("a", "", vec![42]), member("idle", "", vec![])]),
            false,
        );
        assert_eq!(single.token_ownership()["a"], 100.0);
        assert_eq!(single.token_ownership()["idle"], 0.0);
        let random = Ring::new(&random_desc(7, 11), false);
        let total: f64 = random.token_ownership().values().sum();
        assert!((total - 100.0).abs() < 1e-6, "{total}");
    }

    /// Adding one member to N moves about 1/(N+1) of the streams, and only to
    /// the new member; 128 tokens keep ownership balanced.
    #[test]
    fn adding_a_member_moves_about_one_over_n_plus_one() {
        let mut rng = fastrand::Rng::with_seed(42);
        let keys: Vec<u32> = (0..100_000)
            .map(|index| {
                stream_token(
                    "tenant",
                    &format!("{{app=\"a{index}\", pod=\"{}\"}}", rng.u32(..)),
                )
            })
            .collect();
        for count in 3..=10 {
            let before_desc = random_desc(count, count as u64);
            let mut after_desc = before_desc.clone();
            add_random_member(&mut after_desc, "new", &mut rng);
            let before = Ring::new(&before_desc, false);
            let after = Ring::new(&after_desc, false);
            let mut moved = 0usize;
            for &key in &keys {
                let old = &before.get(key, 1, NOW, TIMEOUT).expect("set").members[0].id;
                let new = &after.get(key, 1, NOW, TIMEOUT).expect("set").members[0].id;
                if old != new {
                    assert_eq!(new, "new", "streams move only to the new member");
                    moved += 1;
                }
            }
            let fraction = moved as f64 / keys.len() as f64;
            let expected = 1.0 / (count as f64 + 1.0);
            let ownership = after.token_ownership();
            let max = ownership.values().copied().fold(f64::MIN, f64::max);
            let min = ownership.values().copied().fold(f64::MAX, f64::min);
            println!(
                "n={count}->{}: moved {:.2}% (ideal {:.2}%), ownership min {min:.2}% max {max:.2}% ratio {:.2}",
                count + 1,
                fraction * 100.0,
                expected * 100.0,
                max / min
            );
            assert!(
                (fraction - expected).abs() < expected * 0.35,
                "n={count}: moved {fraction}, expected about {expected}"
            );
            // With 128 random tokens a member's share has a relative standard
            // deviation of about 1/sqrt(128) ≈ 9%, so across 11 members the
            // max/min ratio is typically 1.2–1.6 (seeded, so not flaky).
            assert!(max / min < 1.75, "n={count}: ownership max/min {max}/{min}");
        }
    }
}
