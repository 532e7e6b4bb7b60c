//! Sharding of rule groups over the rulers of the ruler ring: a group's
//! token is FNV-1a 32-bit of `tenant/namespace/group` (as Loki's
//! `tokenForGroup`), and its owner is the first healthy ACTIVE ruler
//! clockwise from it. A ruler that stops heartbeating (past
//! `heartbeat_timeout`) or leaves owns nothing, so the others take its
//! groups at their next sync, which runs whenever the set of healthy
//! rulers changes.
//!
//! A ruler's ring address is its HTTP address: rulers ask each other for
//! their groups' state over HTTP (`/ruler/internal/groups`) to answer the
//! rules APIs for the whole ring.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sluice_ring::{now_ms, AnyKv, Lifecycler, MemberState, Ring, RingConfig, RingError};
use tokio::sync::watch;

/// The KV key of the ruler ring.
pub const RULER_RING_KEY: &str = "sluice-ring-ruler";

/// Returns a group's ring token.
pub fn group_token(tenant: &str, namespace: &str, group: &str) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let mut hash = OFFSET;
    for part in [
        tenant.as_bytes(),
        b"/",
        namespace.as_bytes(),
        b"/",
        group.as_bytes(),
    ] {
        for &byte in part {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// This ruler's membership in the ruler ring.
pub struct Sharding {
    lifecycler: Lifecycler<AnyKv>,
    instance_id: String,
    heartbeat_timeout: Duration,
}

impl std::fmt::Debug for Sharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharding")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// A ruler of the ring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RulerMember {
    /// Instance id.
    pub id: String,
    /// HTTP address (`host:port`).
    pub addr: String,
}

impl Sharding {
    /// Joins the ring (one ACTIVE member with `num_tokens` tokens);
    /// `config.instance_addr` must be this ruler's HTTP address.
    pub async fn join(kv: AnyKv, config: RingConfig) -> Result<Sharding, RingError> {
        let config = RingConfig {
            replication_factor: 1,
            ..config
        };
        let instance_id = config.instance_id.clone();
        let heartbeat_timeout = config.heartbeat_timeout;
        let lifecycler = Lifecycler::new(kv, RULER_RING_KEY, config)?;
        // A failed join is retried by the heartbeat loop.
        if let Err(error) = lifecycler.start().await {
            tracing::warn!(%error, "cannot join the ruler ring yet");
        }
        if let Err(error) = lifecycler.set_state(MemberState::Active).await {
            tracing::warn!(%error, "cannot write ACTIVE to the ruler ring yet; the next heartbeat will");
        }
        Ok(Sharding {
            lifecycler,
            instance_id,
            heartbeat_timeout,
        })
    }

    /// Notified on every ring refresh (each heartbeat).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Ring>> {
        self.lifecycler.subscribe()
    }

    /// Whether this ruler owns the group now.
    pub fn owns(&self, tenant: &str, namespace: &str, group: &str) -> Result<bool, RingError> {
        let ring = self.lifecycler.ring();
        let owners = ring.get(
            group_token(tenant, namespace, group),
            1,
            now_ms(),
            self.heartbeat_timeout,
        )?;
        Ok(owners
            .members
            .first()
            .is_some_and(|member| member.id == self.instance_id))
    }

    /// The healthy ACTIVE rulers.
    pub fn healthy_members(&self) -> BTreeSet<RulerMember> {
        let ring = self.lifecycler.ring();
        let now = now_ms();
        ring.members()
            .iter()
            .filter(|member| {
                member.state == MemberState::Active
                    && Ring::healthy(member, now, self.heartbeat_timeout)
            })
            .map(|member| RulerMember {
                id: member.id.clone(),
                addr: member.addr.clone(),
            })
            .collect()
    }

    /// This ruler's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Leaves the ring so the others take the groups at once.
    pub async fn leave(&self) {
        if let Err(error) = self.lifecycler.leave().await {
            tracing::warn!(%error, "cannot remove this ruler from the ring");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sluice_ring::{Member, RingDesc};

    use super::*;

    #[test]
    fn token_is_fnv1a_of_the_path() {
        // FNV-1a 32 of "fake/ns/g".
        let mut expected: u32 = 0x811c_9dc5;
        for byte in b"fake/ns/g" {
            expected = (expected ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
        }
        assert_eq!(group_token("fake", "ns", "g"), expected);
        assert_ne!(
            group_token("fake", "ns", "g"),
            group_token("fake", "n", "sg")
        );
    }

    #[test]
    fn each_group_has_exactly_one_owner_and_moves_when_one_dies() {
        let now = now_ms();
        let member = |id: &str, heartbeat_ms: i64, tokens: Vec<u32>| Member {
            id: id.into(),
            addr: format!("{id}:3100"),
            zone: String::new(),
            state: MemberState::Active,
            tokens,
            heartbeat_ms,
            registered_ms: now,
        };
        // Interleaved tokens: each ruler owns every other slice.
        let step = u32::MAX / 128;
        let tokens_a: Vec<u32> = (0..64).map(|i| i * 2 * step).collect();
        let tokens_b: Vec<u32> = (0..64).map(|i| (i * 2 + 1) * step).collect();
        let both = RingDesc {
            members: BTreeMap::from([
                ("a".to_string(), member("a", now, tokens_a.clone())),
                ("b".to_string(), member("b", now, tokens_b.clone())),
            ]),
        };
        let ring = Ring::new(&both, false);
        let timeout = Duration::from_secs(10);
        let mut owned = BTreeMap::new();
        for index in 0..200 {
            let token = group_token("fake", "ns", &format!("group-{index}"));
            let owner = ring.get(token, 1, now, timeout).unwrap().members[0]
                .id
                .clone();
            *owned.entry(owner).or_insert(0) += 1;
        }
        assert_eq!(owned.len(), 2, "{owned:?}");
        let b_dead = RingDesc {
            members: BTreeMap::from([
                ("a".to_string(), member("a", now, tokens_a)),
                ("b".to_string(), member("b", now - 60_000, tokens_b)),
            ]),
        };
        let ring = Ring::new(&b_dead, false);
        for index in 0..200 {
            let token = group_token("fake", "ns", &format!("group-{index}"));
            assert_eq!(ring.get(token, 1, now, timeout).unwrap().members[0].id, "a");
        }
    }
}
