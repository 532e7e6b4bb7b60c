//! The ring record: every member with its state, tokens and heartbeat.
//!
//! # Stored format
//!
//! The whole ring is one KV item, UTF-8 JSON:
//!
//! ```json
//! {"members":{"ingester-0":{"id":"ingester-0","addr":"10.0.0.7:9095","zone":"zone-a",
//!   "state":"ACTIVE","tokens":[1234,98765],"heartbeat_ms":1764000000000,
//!   "registered_ms":1763990000000}}}
//! ```
//!
//! Members are keyed by id; `state` is `JOINING`, `ACTIVE` or `LEAVING`;
//! `tokens` are sorted `u32`s; times are Unix milliseconds. Unknown fields
//! are ignored so that a newer Sluice can add fields during a rolling
//! upgrade. With 128 tokens a member takes ≈1.6 KB, so memcached's default
//! 1 MB item limit holds several hundred members.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::RingError;

/// A member's lifecycle state, as in Loki's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberState {
    /// Registered with tokens but not yet taking writes.
    Joining,
    /// Taking reads and writes.
    Active,
    /// Shutting down: still readable, no new writes.
    Leaving,
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberState::Joining => "JOINING",
            MemberState::Active => "ACTIVE",
            MemberState::Leaving => "LEAVING",
        })
    }
}

/// One ring member (an ingester).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Unique instance id.
    pub id: String,
    /// gRPC address, `host:port`.
    pub addr: String,
    /// Availability zone; empty when unset.
    #[serde(default)]
    pub zone: String,
    /// Lifecycle state.
    pub state: MemberState,
    /// Sorted ring tokens.
    pub tokens: Vec<u32>,
    /// Last heartbeat, Unix milliseconds.
    pub heartbeat_ms: i64,
    /// When the member first registered, Unix milliseconds.
    pub registered_ms: i64,
}

impl Member {
    /// Returns whether the member heartbeated within `timeout_ms` of `now_ms`.
    pub fn is_healthy(&self, now_ms: i64, timeout_ms: i64) -> bool {
        now_ms.saturating_sub(self.heartbeat_ms) <= timeout_ms
    }
}

/// The ring record: all members by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingDesc {
    /// Members keyed by their id.
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
}

impl RingDesc {
    /// Encodes the record in its stored JSON form.
    pub fn encode(&self, key: &str) -> Result<Vec<u8>, RingError> {
        serde_json::to_vec(self).map_err(|source| RingError::Encode {
            key: key.to_owned(),
            source,
        })
    }

    /// Decodes a stored record.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<Self, RingError> {
        serde_json::from_slice(bytes).map_err(|source| RingError::Decode {
            key: key.to_owned(),
            source,
        })
    }

    /// Returns every token taken by a member other than `except_id`.
    pub fn taken_tokens(&self, except_id: &str) -> HashSet<u32> {
        self.members
            .values()
            .filter(|member| member.id != except_id)
            .flat_map(|member| member.tokens.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_documents_the_format() {
        let mut desc = RingDesc::default();
        desc.members.insert(
            "ingester-0".into(),
            Member {
                id: "ingester-0".into(),
                addr: "10.0.0.7:9095".into(),
                zone: "zone-a".into(),
                state: MemberState::Active,
                tokens: vec![1234, 98765],
                heartbeat_ms: 1_764_000_000_000,
                registered_ms: 1_763_990_000_000,
            },
        );
        let bytes = desc.encode("ring").expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert_eq!(
            text,
            r#"{"members":{"ingester-0":{"id":"ingester-0","addr":"10.0.0.7:9095","zone":"zone-a","state":"ACTIVE","tokens":[1234,98765],"heartbeat_ms":1764000000000,"registered_ms":1763990000000}}}"#
        );
        assert_eq!(RingDesc::decode("ring", &bytes).expect("decode"), desc);
    }

    #[test]
    fn decode_error_names_the_key() {
        let err = RingDesc::decode("my-ring", b"not json").expect_err("garbage");
        assert!(err.to_string().contains("my-ring"), "{err}");
    }

    #[test]
    fn health_uses_the_timeout() {
        let member = Member {
            id: "a".into(),
            addr: String::new(),
            zone: String::new(),
            state: MemberState::Active,
            tokens: vec![],
            heartbeat_ms: 1_000,
            registered_ms: 0,
        };
        assert!(member.is_healthy(61_000, 60_000));
        assert!(!member.is_healthy(61_001, 60_000));
    }
}
