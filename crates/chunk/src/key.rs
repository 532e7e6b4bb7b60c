//! The object-store layout: schema periods, chunk object keys and index file
//! keys. `docs/formats.md` ("Object keys") documents every shape.
//!
//! ```text
//! <tenant>/chunks/<period>/<fingerprint, 16 hex>/<from ms hex>:<through ms hex>:<checksum hex>
//! index/<prefix><period>/<tenant>/<upload ns>-<writer>.idx                                   (ingester)
//! index/<prefix><period>/<tenant>/<upload ns>-<writer>.<from ns>.<through ns>.<crc 8 hex>.idx (compacted)
//! ```
//!
//! Every `parse` accepts exactly the strings the matching `to_*` method writes
//! (canonical form), so `parse(s)` succeeding implies `to_*(parse(s)) == s`.

use std::fmt;

use crate::error::ChunkError;

/// Nanoseconds in a millisecond.
const NS_PER_MS: i64 = 1_000_000;
/// Loki's default index period: 24 hours, in nanoseconds.
pub const DEFAULT_PERIOD_NS: i64 = 24 * 60 * 60 * 1_000_000_000;
/// Loki's default index table prefix.
pub const DEFAULT_INDEX_PREFIX: &str = "index_";
/// The extension of every index file.
pub const INDEX_FILE_EXTENSION: &str = ".idx";
/// The longest accepted writer name in an index file name.
pub const MAX_WRITER_LEN: usize = 128;
/// Longest key echoed back in an [`ChunkError::InvalidKey`] message.
const MAX_ECHOED_KEY: usize = 256;

/// One schema period: from `from_ns` on, data is indexed in tables of
/// `period_ns` named `<prefix><period index>` (Loki's `schema_config.configs[]`
/// entry, reduced to what the layout needs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeriodConfig {
    /// Start of this schema period, ns since epoch; it applies until the next
    /// period's `from_ns`.
    pub from_ns: i64,
    /// Length of one index table, ns ([`DEFAULT_PERIOD_NS`] = 24h); must be
    /// positive.
    pub period_ns: i64,
    /// Table name prefix, e.g. [`DEFAULT_INDEX_PREFIX`] (`index_`).
    pub prefix: String,
}

impl Default for PeriodConfig {
    /// From the epoch on, 24h tables named `index_<n>`.
    fn default() -> PeriodConfig {
        PeriodConfig {
            from_ns: 0,
            period_ns: DEFAULT_PERIOD_NS,
            prefix: DEFAULT_INDEX_PREFIX.to_owned(),
        }
    }
}

impl PeriodConfig {
    /// Returns the period that applies at `ts_ns`: the last of `configs`
    /// (sorted by `from_ns`) whose `from_ns <= ts_ns`, or `None` when `ts_ns`
    /// is before the first.
    pub fn active(configs: &[PeriodConfig], ts_ns: i64) -> Option<&PeriodConfig> {
        configs.iter().rev().find(|config| config.from_ns <= ts_ns)
    }

    /// Checks that `period_ns` is positive.
    pub fn validate(&self) -> Result<(), ChunkError> {
        if self.period_ns <= 0 {
            return Err(ChunkError::InvalidKey {
                key: self.prefix.clone(),
                reason: format!("index period must be positive, got {} ns", self.period_ns),
            });
        }
        Ok(())
    }

    /// Returns the period index (table number) holding `ts_ns`; see
    /// [`period_index`].
    pub fn period(&self, ts_ns: i64) -> i64 {
        period_index(ts_ns, self.period_ns)
    }

    /// Returns the period indexes overlapping `[from_ns, through_ns]`
    /// (empty when `through_ns < from_ns`).
    pub fn periods(&self, from_ns: i64, through_ns: i64) -> std::ops::RangeInclusive<i64> {
        if through_ns < from_ns {
            #[allow(clippy::reversed_empty_ranges)]
            return 1..=0;
        }
        self.period(from_ns)..=self.period(through_ns)
    }

    /// Returns the table name of period `period`: `<prefix><period>`,
    /// e.g. `index_19723`.
    pub fn table_name(&self, period: i64) -> String {
        format!("{}{period}", self.prefix)
    }

    /// Returns the directory of `tenant`'s index files for `period`; see
    /// [`index_dir`].
    pub fn index_dir(&self, period: i64, tenant: &str) -> String {
        index_dir(&self.prefix, period, tenant)
    }
}

/// Returns the period index (Loki's table number) holding `ts_ns`:
/// `floor(ts_ns / period_ns)`, rounding towards negative infinity, so
/// 2024-01-01T00:00:00Z at 24h is `19723`. A non-positive `period_ns` is a
/// configuration error ([`PeriodConfig::validate`]); it yields 0 rather than
/// panicking.
pub fn period_index(ts_ns: i64, period_ns: i64) -> i64 {
    if period_ns <= 0 {
        return 0;
    }
    ts_ns.div_euclid(period_ns)
}

/// Returns the directory (with a trailing `/`) holding `tenant`'s index files
/// for `period`: `index/<prefix><period>/<tenant>/`.
pub fn index_dir(prefix: &str, period: i64, tenant: &str) -> String {
    format!("index/{prefix}{period}/{tenant}/")
}

/// The object key of one chunk.
///
/// Path: `<tenant>/chunks/<period>/<fingerprint>/<from>:<through>:<checksum>`,
/// with the period in decimal, the fingerprint as exactly 16 lower-case hex
/// digits, and from (floored), through (ceiled) in **milliseconds** and the
/// checksum as lower-case hex without leading zeros (Go's `%x`; a negative
/// time is `-` then the hex magnitude). Times in a parsed key are therefore
/// whole milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkKey {
    /// The tenant id (validated before it reaches a key; never contains `/`).
    pub tenant: String,
    /// The index period of the chunk (its `from`), see [`period_index`].
    pub period: i64,
    /// The stream fingerprint, [`crate::Labels::fingerprint`].
    pub fingerprint: u64,
    /// Timestamp of the first entry, ns since epoch.
    pub from_ns: i64,
    /// Timestamp of the last entry, ns since epoch.
    pub through_ns: i64,
    /// Checksum of the chunk object's bytes.
    pub checksum: u32,
}

impl ChunkKey {
    /// Returns the object path, see [`ChunkKey`].
    pub fn to_path(&self) -> String {
        format!(
            "{}/chunks/{}/{:016x}/{}:{}:{:x}",
            self.tenant,
            self.period,
            self.fingerprint,
            signed_hex(self.from_ms()),
            signed_hex(self.through_ms()),
            self.checksum
        )
    }

    /// Returns `from_ns` in milliseconds, floored.
    pub fn from_ms(&self) -> i64 {
        self.from_ns.div_euclid(NS_PER_MS)
    }

    /// Returns `through_ns` in milliseconds, ceiled.
    pub fn through_ms(&self) -> i64 {
        ceil_ms(self.through_ns)
    }

    /// Returns the prefix (with a trailing `/`) under which all chunks of one
    /// stream and period live: `<tenant>/chunks/<period>/<fingerprint>/`.
    pub fn stream_prefix(tenant: &str, period: i64, fingerprint: u64) -> String {
        format!("{tenant}/chunks/{period}/{fingerprint:016x}/")
    }

    /// Parses a path written by [`ChunkKey::to_path`]. Times come back as whole
    /// milliseconds (in ns, saturated at the `i64` range); anything not in the
    /// canonical form is an [`ChunkError::InvalidKey`].
    pub fn parse(path: &str) -> Result<ChunkKey, ChunkError> {
        let invalid = |reason: &str| invalid_key(path, reason);
        let mut parts = path.split('/');
        let (Some(tenant), Some(chunks), Some(period), Some(fingerprint), Some(id), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid("expected 5 '/'-separated parts"));
        };
        if tenant.is_empty() || tenant == "." || tenant == ".." {
            return Err(invalid("bad tenant"));
        }
        if chunks != "chunks" {
            return Err(invalid("second part must be \"chunks\""));
        }
        let period = parse_decimal(period).ok_or_else(|| invalid("bad period"))?;
        if fingerprint.len() != 16 {
            return Err(invalid("fingerprint must be 16 hex digits"));
        }
        let fingerprint =
            parse_hex_digits(fingerprint).ok_or_else(|| invalid("bad fingerprint"))?;
        let mut fields = id.split(':');
        let (Some(from), Some(through), Some(checksum), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid("chunk id must be <from>:<through>:<checksum>"));
        };
        let from_ms = parse_signed_hex(from)
            .filter(|ms| {
                (i64::MIN.div_euclid(NS_PER_MS)..=i64::MAX.div_euclid(NS_PER_MS)).contains(ms)
            })
            .ok_or_else(|| invalid("bad from time"))?;
        let through_ms = parse_signed_hex(through)
            .filter(|ms| (ceil_ms(i64::MIN)..=ceil_ms(i64::MAX)).contains(ms))
            .ok_or_else(|| invalid("bad through time"))?;
        if through_ms < from_ms {
            return Err(invalid("through is before from"));
        }
        let checksum = parse_signed_hex(checksum)
            .and_then(|value| u32::try_from(value).ok())
            .ok_or_else(|| invalid("bad checksum"))?;
        Ok(ChunkKey {
            tenant: tenant.to_owned(),
            period,
            fingerprint,
            from_ns: ms_to_ns(from_ms),
            through_ns: ms_to_ns(through_ms),
            checksum,
        })
    }
}

impl fmt::Display for ChunkKey {
    /// Writes [`ChunkKey::to_path`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_path())
    }
}

/// What wrote an index file, and for compacted files what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexFileKind {
    /// Uploaded by an ingester (one of many per period and tenant).
    Ingester,
    /// Written by the compactor, replacing the files it merged.
    Compacted {
        /// Smallest chunk `from` in the file, ns since epoch.
        from_ns: i64,
        /// Largest chunk `through` in the file, ns since epoch.
        through_ns: i64,
        /// CRC-32 (IEEE) of the file's bytes.
        checksum: u32,
    },
}

/// The name (last path element) of one index file under [`index_dir`].
///
/// - ingester: `<upload ns>-<writer>.idx`, e.g. `1704067200000000000-ingester-0.idx`;
/// - compacted: `<upload ns>-<writer>.<from ns>.<through ns>.<checksum>.idx`,
///   e.g. `1704153600000000000-compactor.1704067200000000000.1704153599999999999.0a1b2c3d.idx`.
///
/// Numbers are canonical decimal (`upload ns` non-negative, so names of one
/// writer sort by upload time), the checksum exactly 8 lower-case hex digits,
/// and the writer 1 to [`MAX_WRITER_LEN`] characters of `[A-Za-z0-9_-]`
/// ([`is_valid_writer`]). A writer never contains `.`, so the number of `.`s
/// tells the kinds apart. Names built from an invalid writer or a negative
/// `upload_ns` do not parse back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexFileName {
    /// Who uploaded the file: the ingester's instance id, or the compactor's.
    pub writer: String,
    /// Upload time, ns since epoch (non-negative).
    pub upload_ns: i64,
    /// Ingester or compacted file.
    pub kind: IndexFileKind,
}

impl IndexFileName {
    /// Returns whether this is a compacted file.
    pub fn is_compacted(&self) -> bool {
        matches!(self.kind, IndexFileKind::Compacted { .. })
    }

    /// Returns the file name, see [`IndexFileName`].
    pub fn to_file_name(&self) -> String {
        match self.kind {
            IndexFileKind::Ingester => {
                format!("{}-{}{INDEX_FILE_EXTENSION}", self.upload_ns, self.writer)
            }
            IndexFileKind::Compacted {
                from_ns,
                through_ns,
                checksum,
            } => format!(
                "{}-{}.{from_ns}.{through_ns}.{checksum:08x}{INDEX_FILE_EXTENSION}",
                self.upload_ns, self.writer
            ),
        }
    }

    /// Returns the full object key: [`index_dir`] followed by the file name.
    pub fn to_path(&self, prefix: &str, period: i64, tenant: &str) -> String {
        index_dir(prefix, period, tenant) + &self.to_file_name()
    }

    /// Parses a file name written by [`IndexFileName::to_file_name`] (the last
    /// path element only); anything else is an [`ChunkError::InvalidKey`].
    pub fn parse(name: &str) -> Result<IndexFileName, ChunkError> {
        let invalid = |reason: &str| invalid_key(name, reason);
        let stem = name
            .strip_suffix(INDEX_FILE_EXTENSION)
            .ok_or_else(|| invalid("missing .idx extension"))?;
        let mut fields = stem.split('.');
        let head = fields.next().unwrap_or_default();
        let (upload, writer) = head
            .split_once('-')
            .ok_or_else(|| invalid("expected <upload ns>-<writer>"))?;
        let upload_ns = parse_decimal(upload)
            .filter(|ns| *ns >= 0)
            .ok_or_else(|| invalid("bad upload time"))?;
        if !is_valid_writer(writer) {
            return Err(invalid("bad writer name"));
        }
        let kind = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (None, ..) => IndexFileKind::Ingester,
            (Some(from), Some(through), Some(checksum), None) => IndexFileKind::Compacted {
                from_ns: parse_decimal(from).ok_or_else(|| invalid("bad from time"))?,
                through_ns: parse_decimal(through).ok_or_else(|| invalid("bad through time"))?,
                checksum: (checksum.len() == 8)
                    .then(|| parse_hex_digits(checksum))
                    .flatten()
                    .and_then(|value| u32::try_from(value).ok())
                    .ok_or_else(|| invalid("checksum must be 8 hex digits"))?,
            },
            _ => return Err(invalid("expected 1 or 4 '.'-separated fields")),
        };
        Ok(IndexFileName {
            writer: writer.to_owned(),
            upload_ns,
            kind,
        })
    }
}

impl fmt::Display for IndexFileName {
    /// Writes [`IndexFileName::to_file_name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_file_name())
    }
}

/// Returns whether `writer` may appear in an index file name: 1 to
/// [`MAX_WRITER_LEN`] characters of `[A-Za-z0-9_-]`.
pub fn is_valid_writer(writer: &str) -> bool {
    !writer.is_empty()
        && writer.len() <= MAX_WRITER_LEN
        && writer
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn invalid_key(key: &str, reason: &str) -> ChunkError {
    let mut echoed: String = key.chars().take(MAX_ECHOED_KEY).collect();
    if echoed.len() < key.len() {
        echoed.push('…');
    }
    ChunkError::InvalidKey {
        key: echoed,
        reason: reason.to_owned(),
    }
}

fn ceil_ms(ns: i64) -> i64 {
    ns.div_euclid(NS_PER_MS) + i64::from(ns.rem_euclid(NS_PER_MS) != 0)
}

/// Converts milliseconds to ns, saturating at the `i64` range.
fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(NS_PER_MS)
}

/// Formats like Go's `%x` of an `int64`: `-` then the magnitude for negatives.
fn signed_hex(value: i64) -> String {
    if value < 0 {
        format!("-{:x}", value.unsigned_abs())
    } else {
        format!("{value:x}")
    }
}

/// Parses lower-case hex digits only (no sign, no prefix) into a `u64`.
fn parse_hex_digits(digits: &str) -> Option<u64> {
    if digits.is_empty()
        || digits.len() > 16
        || !digits
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Parses the canonical output of [`signed_hex`] (no leading zeros, no `-0`).
fn parse_signed_hex(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let magnitude = i128::from(parse_hex_digits(digits)?);
    let value = i64::try_from(if negative { -magnitude } else { magnitude }).ok()?;
    (signed_hex(value) == text).then_some(value)
}

/// Parses a canonical decimal `i64` (no `+`, no leading zeros, no `-0`).
fn parse_decimal(text: &str) -> Option<i64> {
    let value: i64 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> ChunkKey {
        ChunkKey {
            tenant: "fake".to_owned(),
            period: 19723,
            fingerprint: 0x0586_69f0_5a43_dd0d,
            from_ns: 1_704_067_200_123_456_789,
            through_ns: 1_704_067_260_000_000_001,
            checksum: 0x6de0_6a7c,
        }
    }

    #[test]
    fn period_index_matches_loki_tables() {
        let jan_1_2024 = 1_704_067_200 * 1_000_000_000;
        assert_eq!(period_index(jan_1_2024, DEFAULT_PERIOD_NS), 19723);
        assert_eq!(period_index(jan_1_2024 - 1, DEFAULT_PERIOD_NS), 19722);
        assert_eq!(period_index(-1, DEFAULT_PERIOD_NS), -1);
        assert_eq!(period_index(0, DEFAULT_PERIOD_NS), 0);
        assert_eq!(period_index(5, 0), 0);
        assert_eq!(period_index(i64::MIN, 1), i64::MIN);
        let config = PeriodConfig::default();
        assert_eq!(config.table_name(config.period(jan_1_2024)), "index_19723");
        assert_eq!(config.index_dir(19723, "fake"), "index/index_19723/fake/");
        assert_eq!(index_dir("tsdb_", 5, "t1"), "index/tsdb_5/t1/");
        assert_eq!(
            config.periods(jan_1_2024 - 1, jan_1_2024 + DEFAULT_PERIOD_NS),
            19722..=19724
        );
        assert!(config.periods(10, 5).is_empty());
        assert!(config.validate().is_ok());
        let bad = PeriodConfig {
            period_ns: 0,
            ..PeriodConfig::default()
        };
        assert!(bad.validate().is_err());
        let configs = [
            PeriodConfig::default(),
            PeriodConfig {
                from_ns: jan_1_2024,
                period_ns: DEFAULT_PERIOD_NS,
                prefix: "v2_".to_owned(),
            },
        ];
        assert_eq!(
            PeriodConfig::active(&configs, jan_1_2024).map(|c| c.prefix.as_str()),
            Some("v2_")
        );
        assert_eq!(
            PeriodConfig::active(&configs, jan_1_2024 - 1).map(|c| c.prefix.as_str()),
            Some("index_")
        );
        assert_eq!(PeriodConfig::active(&configs, -1), None);
    }

    #[test]
    fn chunk_key_path_and_round_trip() {
        let key = key();
        let path = key.to_path();
        assert_eq!(
            path,
            "fake/chunks/19723/058669f05a43dd0d/18cc251f47b:18cc252de61:6de06a7c"
        );
        assert_eq!(key.to_string(), path);
        let parsed = ChunkKey::parse(&path).expect("valid");
        assert_eq!(parsed.from_ns, 1_704_067_200_123_000_000);
        assert_eq!(parsed.through_ns, 1_704_067_260_001_000_000);
        assert_eq!(parsed.to_path(), path);
        assert_eq!(
            ChunkKey::stream_prefix("fake", 19723, key.fingerprint),
            "fake/chunks/19723/058669f05a43dd0d/"
        );
        assert!(path.starts_with(&ChunkKey::stream_prefix("fake", 19723, key.fingerprint)));
        let negative = ChunkKey {
            from_ns: -1_500_000,
            through_ns: -1,
            period: -1,
            checksum: 0,
            fingerprint: 0,
            ..key
        };
        assert_eq!(negative.to_path(), "fake/chunks/-1/0000000000000000/-2:0:0");
        assert_eq!(
            ChunkKey::parse(&negative.to_path()).expect("valid").from_ns,
            -2_000_000
        );
    }

    #[test]
    fn chunk_key_parse_errors() {
        let valid = "fake/chunks/19723/058669f05a43dd0d/18cc251f47b:18cc252de61:6de06a7c";
        assert!(ChunkKey::parse(valid).is_ok());
        let cases = [
            ("", "expected 5"),
            ("fake/chunks/1/058669f05a43dd0d", "expected 5"),
            (&format!("{valid}/x"), "expected 5"),
            ("/chunks/1/058669f05a43dd0d/1:2:3", "tenant"),
            ("../chunks/1/058669f05a43dd0d/1:2:3", "tenant"),
            ("fake/chunk/1/058669f05a43dd0d/1:2:3", "chunks"),
            ("fake/chunks/01/058669f05a43dd0d/1:2:3", "period"),
            ("fake/chunks/+1/058669f05a43dd0d/1:2:3", "period"),
            ("fake/chunks/x/058669f05a43dd0d/1:2:3", "period"),
            ("fake/chunks/1/58669f05a43dd0d/1:2:3", "16 hex"),
            ("fake/chunks/1/058669F05A43DD0D/1:2:3", "fingerprint"),
            ("fake/chunks/1/+58669f05a43dd0d/1:2:3", "fingerprint"),
            ("fake/chunks/1/058669f05a43dd0d/1:2", "chunk id"),
            ("fake/chunks/1/058669f05a43dd0d/1:2:3:4", "chunk id"),
            ("fake/chunks/1/058669f05a43dd0d/01:2:3", "from"),
            ("fake/chunks/1/058669f05a43dd0d/-0:2:3", "from"),
            ("fake/chunks/1/058669f05a43dd0d/A:b:3", "from"),
            ("fake/chunks/1/058669f05a43dd0d/1:+2:3", "through"),
            (
                "fake/chunks/1/058669f05a43dd0d/1:fffffffffffffff:3",
                "through",
            ),
            ("fake/chunks/1/058669f05a43dd0d/2:1:3", "before"),
            ("fake/chunks/1/058669f05a43dd0d/1:2:100000000", "checksum"),
            ("fake/chunks/1/058669f05a43dd0d/1:2:", "checksum"),
            ("fake/chunks/1/058669f05a43dd0d/1:2:-1", "checksum"),
        ];
        for (path, reason) in cases {
            let error = ChunkKey::parse(path).expect_err(path);
            assert!(
                error.to_string().contains(reason),
                "{path:?}: {error} lacks {reason:?}"
            );
        }
        let long = "x".repeat(1000);
        let message = ChunkKey::parse(&long).expect_err("long").to_string();
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn chunk_key_saturates_at_the_i64_range() {
        let extreme = ChunkKey {
            from_ns: i64::MIN,
            through_ns: i64::MAX,
            ..key()
        };
        let parsed = ChunkKey::parse(&extreme.to_path()).expect("valid");
        assert_eq!((parsed.from_ns, parsed.through_ns), (i64::MIN, i64::MAX));
        assert_eq!(parsed.to_path(), extreme.to_path());
    }

    #[test]
    fn index_file_names_round_trip() {
        let ingester = IndexFileName {
            writer: "sluice-ingester-0".to_owned(),
            upload_ns: 1_704_067_200_000_000_000,
            kind: IndexFileKind::Ingester,
        };
        assert_eq!(
            ingester.to_file_name(),
            "1704067200000000000-sluice-ingester-0.idx"
        );
        assert_eq!(
            IndexFileName::parse(&ingester.to_file_name()),
            Ok(ingester.clone())
        );
        assert!(!ingester.is_compacted());
        assert_eq!(
            ingester.to_path("index_", 19723, "fake"),
            "index/index_19723/fake/1704067200000000000-sluice-ingester-0.idx"
        );
        let compacted = IndexFileName {
            writer: "compactor".to_owned(),
            upload_ns: 1_704_153_600_000_000_000,
            kind: IndexFileKind::Compacted {
                from_ns: -5,
                through_ns: 1_704_153_599_999_999_999,
                checksum: 0x0a1b_2c3d,
            },
        };
        let name = compacted.to_file_name();
        assert_eq!(
            name,
            "1704153600000000000-compactor.-5.1704153599999999999.0a1b2c3d.idx"
        );
        assert_eq!(compacted.to_string(), name);
        assert_eq!(IndexFileName::parse(&name), Ok(compacted.clone()));
        assert!(compacted.is_compacted());
    }

    #[test]
    fn index_file_name_parse_errors() {
        for name in [
            "",
            ".idx",
            "1-w",
            "1-w.tsdb",
            "1.idx",
            "-1-w.idx",
            "01-w.idx",
            "1-.idx",
            "1-w x.idx",
            "1-w/x.idx",
            "x-w.idx",
            "1-w.1.2.idx",
            "1-w.1.2.3.4.idx",
            "1-w.1.2.abc.idx",
            "1-w.1.2.0A1B2C3D.idx",
            "1-w.01.2.0a1b2c3d.idx",
            "1-w.1.x.0a1b2c3d.idx",
            "1-w..2.0a1b2c3d.idx",
        ] {
            assert!(
                matches!(
                    IndexFileName::parse(name),
                    Err(ChunkError::InvalidKey { .. })
                ),
                "{name:?} parsed"
            );
        }
        assert!(is_valid_writer("a_B-9"));
        assert!(!is_valid_writer(&"a".repeat(MAX_WRITER_LEN + 1)));
        assert!(!is_valid_writer("a.b"));
    }

    proptest! {
        #[test]
        fn chunk_keys_round_trip(
            tenant in "[a-zA-Z0-9_!*'()-]{1,20}",
            period in any::<i64>(),
            fingerprint in any::<u64>(),
            a in any::<i64>(),
            b in any::<i64>(),
            checksum in any::<u32>(),
        ) {
            let key = ChunkKey {
                tenant,
                period,
                fingerprint,
                from_ns: a.min(b),
                through_ns: a.max(b),
                checksum,
            };
            let path = key.to_path();
            let parsed = ChunkKey::parse(&path).expect("round trip");
            prop_assert_eq!(parsed.to_path(), path);
            prop_assert!(parsed.from_ns <= key.from_ns && key.from_ns - parsed.from_ns < NS_PER_MS);
            prop_assert!(parsed.through_ns >= key.through_ns && parsed.through_ns - key.through_ns < NS_PER_MS);
            prop_assert_eq!((parsed.tenant, parsed.period, parsed.fingerprint, parsed.checksum),
                (key.tenant, key.period, key.fingerprint, key.checksum));
        }

        #[test]
        fn index_file_names_round_trip_prop(
            writer in "[A-Za-z0-9_-]{1,30}",
            upload_ns in 0..i64::MAX,
            compacted in any::<Option<(i64, i64, u32)>>(),
        ) {
            let name = IndexFileName {
                writer,
                upload_ns,
                kind: match compacted {
                    None => IndexFileKind::Ingester,
                    Some((from_ns, through_ns, checksum)) => IndexFileKind::Compacted { from_ns, through_ns, checksum },
                },
            };
            prop_assert_eq!(IndexFileName::parse(&name.to_file_name()), Ok(name));
        }

        #[test]
        fn parse_never_panics_and_is_canonical(path in "[a-z0-9/:.+-]{0,60}") {
            if let Ok(key) = ChunkKey::parse(&path) {
                prop_assert_eq!(key.to_path(), path.clone());
            }
            if let Ok(name) = IndexFileName::parse(&path) {
                prop_assert_eq!(name.to_file_name(), path);
            }
        }

        #[test]
        fn near_valid_keys_never_panic(
            mutation in "[0-9a-fA-F:/.+-]{0,3}",
            at in any::<prop::sample::Index>(),
        ) {
            let path = key().to_path();
            let cut = at.index(path.len());
            let mutated = format!("{}{mutation}{}", &path[..cut], &path[cut..]);
            if let Ok(key) = ChunkKey::parse(&mutated) {
                prop_assert_eq!(key.to_path(), mutated);
            }
        }
    }
}
