//! Hashing for the maps of version-3 blocks. Their keys (templates,
//! contexts) come from pushed lines, so the hash is seeded at random per
//! process: lines crafted to collide cannot make a block's lookups
//! quadratic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use twox_hash::XxHash3_64;

/// The process's seed.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0u64)
    })
}

/// Seeded XXH3 of `bytes`.
pub(super) fn hash(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(seed(), bytes)
}

/// Hashes `u64` keys with seeded XXH3.
#[derive(Default)]
pub(super) struct Seeded(u64);

impl Hasher for Seeded {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = XxHash3_64::oneshot_with_seed(seed() ^ self.0, bytes);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = hash(&value.to_le_bytes());
    }
}

/// A map with `u64` keys and a seeded hash.
pub(super) type SeededMap<V> = HashMap<u64, V, BuildHasherDefault<Seeded>>;
