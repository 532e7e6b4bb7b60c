//! [`LabelSet`]: an immutable, sorted, cheaply clonable set of labels, the
//! label type produced by log pipelines and consumed by the metric engine
//! and the ingester. Also the small non-cryptographic hashers the pipeline
//! uses for its caches.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use crate::print::quote;

/// A sorted set of labels with unique names.
///
/// Cloning is cheap (one reference count). Equality, ordering and hashing
/// follow the `(name, value)` pairs in name order, like Prometheus'
/// `labels.Labels`. [`LabelSet::new`] drops empty values (an empty value is
/// an absent label); label sets produced by a pipeline keep the empty values
/// Loki keeps (`logfmt --keep-empty`, missing `json a="x"` paths).
#[derive(Clone)]
pub struct LabelSet {
    inner: Arc<Inner>,
}

struct Inner {
    /// Names and values, concatenated.
    text: Box<str>,
    /// Per label: end of the name, end of the value (offsets into `text`);
    /// each name starts where the previous value ended.
    ends: Box<[(u32, u32)]>,
    hash: u64,
}

impl LabelSet {
    /// Builds a set: sorts by name, keeps the last value of a duplicated
    /// name, and drops empty values.
    pub fn new(mut pairs: Vec<(String, String)>) -> LabelSet {
        // Stable sort keeps input order among equal names: the last one wins.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
        for (name, value) in &pairs {
            if let Some(last) = kept.last_mut() {
                if last.0 == name.as_str() {
                    *last = (name, value);
                    continue;
                }
            }
            kept.push((name, value));
        }
        kept.retain(|(_, value)| !value.is_empty());
        LabelSet::from_sorted(&kept)
    }

    /// The empty set.
    pub fn empty() -> LabelSet {
        LabelSet::from_sorted(&[])
    }

    /// Builds a set from pairs already sorted by name with unique names
    /// (empty values are kept). Callers inside the crate guarantee the order.
    pub(crate) fn from_sorted(pairs: &[(&str, &str)]) -> LabelSet {
        LabelSet::from_sorted_with_hash(pairs, hash_pairs(pairs.iter().copied()))
    }

    pub(crate) fn from_sorted_with_hash(pairs: &[(&str, &str)], hash: u64) -> LabelSet {
        let total: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
        LabelSet::from_sorted_parts(pairs.len(), total, pairs.iter().copied(), hash)
    }

    /// Builds a set from `count` pairs sorted by name whose names and values
    /// are `total` bytes long, and their [`hash_pairs`] hash.
    pub(crate) fn from_sorted_parts<'a>(
        count: usize,
        total: usize,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        hash: u64,
    ) -> LabelSet {
        let mut text = String::with_capacity(total);
        let mut ends = Vec::with_capacity(count);
        for (name, value) in pairs {
            text.push_str(name);
            let name_end = text.len() as u32;
            text.push_str(value);
            ends.push((name_end, text.len() as u32));
        }
        LabelSet {
            inner: Arc::new(Inner {
                text: text.into_boxed_str(),
                ends: ends.into_boxed_slice(),
                hash,
            }),
        }
    }

    /// The value of a label.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Sets are small; a binary search over names avoids touching values.
        let mut lo = 0usize;
        let mut hi = self.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (n, v) = self.pair(mid);
            match n.cmp(name) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(v),
            }
        }
        None
    }

    /// Returns true if the label is present (possibly with an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    #[inline]
    fn pair(&self, index: usize) -> (&str, &str) {
        let inner = &*self.inner;
        let start = if index == 0 {
            0
        } else {
            inner.ends[index - 1].1 as usize
        };
        let (name_end, value_end) = inner.ends[index];
        (
            &inner.text[start..name_end as usize],
            &inner.text[name_end as usize..value_end as usize],
        )
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(move |index| self.pair(index))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.inner.ends.len()
    }

    /// Returns true when there is no label.
    pub fn is_empty(&self) -> bool {
        self.inner.ends.is_empty()
    }

    /// The labels as owned pairs, in name order.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// A stable 64-bit hash of the pairs (the same for equal sets, across
    /// processes and versions of this crate), for grouping.
    pub fn hash64(&self) -> u64 {
        self.inner.hash
    }
}

impl Default for LabelSet {
    fn default() -> Self {
        LabelSet::empty()
    }
}

impl PartialEq for LabelSet {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.hash == other.inner.hash
                && self.inner.ends == other.inner.ends
                && self.inner.text == other.inner.text)
    }
}

impl Eq for LabelSet {}

impl Hash for LabelSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner.hash);
    }
}

impl Ord for LabelSet {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.iter().zip(other.iter()) {
            match a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        self.len().cmp(&other.len())
    }
}

impl PartialOrd for LabelSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LabelSet {
    /// Prints `{a="1", b="2"}` with Go-quoted values, like Loki prints series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, (name, value)) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={}", quote(value))?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LabelSet({self})")
    }
}

impl From<Vec<(String, String)>> for LabelSet {
    fn from(pairs: Vec<(String, String)>) -> Self {
        LabelSet::new(pairs)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for LabelSet {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        LabelSet::new(
            iter.into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// Hashes name/value pairs exactly as [`LabelSet::hash64`] does.
pub(crate) fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut hasher = Hash64::default();
    for (name, value) in pairs {
        hasher.write_str(name);
        hasher.write_str(value);
    }
    hasher.finish64()
}

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;

#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A small, fast, deterministic 64-bit hasher (wyhash-style mixing). Each
/// `write_str` is length-delimited, so pair sequences hash unambiguously.
#[derive(Clone, Copy)]
pub(crate) struct Hash64 {
    state: u64,
}

impl Default for Hash64 {
    fn default() -> Self {
        Hash64 { state: P0 }
    }
}

impl Hash64 {
    #[inline]
    pub(crate) fn write_str(&mut self, s: &str) {
        self.write_bytes(s.as_bytes());
    }

    #[inline]
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        let mut h = self.state;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = mum(h ^ u64::from_le_bytes(word), P1);
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = mum(h ^ u64::from_le_bytes(tail) ^ P0, P1 ^ (bytes.len() as u64));
        self.state = h;
    }

    #[inline]
    pub(crate) fn finish64(&self) -> u64 {
        // murmur3 fmix64
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// FxHash-style hasher for the pipeline's internal maps (short byte keys).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.hash;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(FX_K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(FX_K);
        }
        self.hash = h;
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.hash = (self.hash.rotate_left(5) ^ n).wrapping_mul(FX_K);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Build hasher of [`FxHasher`].
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// A hasher that passes a precomputed u64 through (cache keys).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Build hasher of [`IdentityHasher`].
pub(crate) type IdentityBuild = BuildHasherDefault<IdentityHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs.iter().copied().collect()
    }

    #[test]
    fn new_sorts_dedups_and_drops_empty() {
        let s = LabelSet::new(vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("b".into(), "3".into()),
            ("c".into(), "".into()),
        ]);
        assert_eq!(
            s.to_pairs(),
            vec![("a".into(), "1".into()), ("b".into(), "3".into())]
        );
        assert_eq!(s.get("b"), Some("3"));
        assert_eq!(s.get("c"), None);
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
        assert!(LabelSet::empty().is_empty());
    }

    #[test]
    fn display_and_eq() {
        let s = set(&[("job", "a\"b"), ("app", "x")]);
        assert_eq!(s.to_string(), r#"{app="x", job="a\"b"}"#);
        assert_eq!(LabelSet::empty().to_string(), "{}");
        assert_eq!(s, set(&[("app", "x"), ("job", "a\"b")]));
        assert_eq!(s.hash64(), set(&[("app", "x"), ("job", "a\"b")]).hash64());
        assert_ne!(s.hash64(), set(&[("app", "xj"), ("ob", "a\"b")]).hash64());
        assert_ne!(s, set(&[("app", "xj"), ("ob", "a\"b")]));
    }

    #[test]
    fn ordering() {
        let a = set(&[("a", "1")]);
        let b = set(&[("a", "1"), ("b", "1")]);
        let c = set(&[("a", "2")]);
        assert!(a < b);
        assert!(b < c);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
    }
}
