//! Query shards: a metric query can be run as `n` shards, each reading
//! only the streams whose fingerprint falls in its share, and the parts
//! merged. On the wire a shard is written as Loki writes it, `<index>_of_<n>`.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `of` (`index < of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    of: u32,
}

impl Shard {
    /// Returns shard `index` of `of`, or `None` unless `index < of`.
    pub fn new(index: u32, of: u32) -> Option<Shard> {
        (index < of).then_some(Shard { index, of })
    }

    /// Returns the shard's position.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Returns the number of shards.
    pub fn of(self) -> u32 {
        self.of
    }

    /// Returns whether the stream with `fingerprint` belongs to this shard.
    /// The fingerprint is mixed first (FNV-1a leaves its high bits nearly
    /// equal for label sets that differ only in their last bytes), then
    /// spread by its high bits (multiply-shift), so any shard count
    /// divides streams evenly.
    pub fn contains(self, fingerprint: u64) -> bool {
        let position = (u128::from(mix(fingerprint)) * u128::from(self.of)) >> 64;
        position == u128::from(self.index)
    }
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_of_{}", self.index, self.of)
    }
}

/// A shard that does not read `<index>_of_<n>` with `index < n`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard {0:?}: expected <index>_of_<count> with index < count")]
pub struct ShardError(pub String);

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let invalid = || ShardError(text.to_string());
        let (index, of) = text.split_once("_of_").ok_or_else(invalid)?;
        let index: u32 = index.parse().map_err(|_| invalid())?;
        let of: u32 = of.parse().map_err(|_| invalid())?;
        Shard::new(index, of).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    #[test]
    fn parses_and_prints_lokis_form() {
        let shard: Shard = "3_of_16".parse().unwrap();
        assert_eq!((shard.index(), shard.of()), (3, 16));
        assert_eq!(shard.to_string(), "3_of_16");
        for bad in ["", "3", "16_of_16", "a_of_2", "1_of_", "-1_of_2", "1of2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_stream_is_in_exactly_one_shard_and_shards_are_even() {
        for of in [1u32, 2, 3, 7, 16] {
            let mut counts = vec![0usize; of as usize];
            for i in 0..7000 {
                let labels = Labels::parse(&format!("{{app=\"a\", zone=\"z{i}\"}}")).unwrap();
                let owners: Vec<u32> = (0..of)
                    .filter(|index| {
                        Shard::new(*index, of)
                            .unwrap()
                            .contains(labels.fingerprint())
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "stream {i} with {of} shards");
                counts[owners[0] as usize] += 1;
            }
            let expected = 7000 / of as usize;
            for count in counts {
                assert!(
                    count.abs_diff(expected) < expected / 5 + 50,
                    "{of} shards: {count} streams in one, expected about {expected}"
                );
            }
        }
    }
}
