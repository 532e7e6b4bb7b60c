//! Line digests: what an ingester sends instead of a line when the querier
//! only counts entries or gets samples. Equal lines give equal digests in every process and
//! version (XXH3 64, a fixed specification, written as 16 hex digits), so
//! copies of one entry from several replicas, or from an ingester and the
//! store, still deduplicate by (time, digest).

/// Returns the digest of `line`.
pub fn line_digest(line: &str) -> String {
    format!("{:016x}", line_hash(line))
}

/// Returns the digest of `line` as a number (what sample queries send).
pub fn line_hash(line: &str) -> u64 {
    twox_hash::XxHash3_64::oneshot(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_tell_lines_apart() {
        // XXH3 64 (seed 0) of the empty string: the specification's vector.
        assert_eq!(line_digest(""), "2d06800538d394c2");
        assert_eq!(line_digest("level=info n=1"), line_digest("level=info n=1"));
        assert_ne!(line_digest("level=info n=1"), line_digest("level=info n=2"));
    }
}
