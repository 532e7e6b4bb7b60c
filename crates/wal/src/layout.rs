//! File names inside the WAL directory and directory-level operations.
//!
//! - `<dir>/00000042`: segment 42 (at least 8 digits, zero padded);
//! - `<dir>/checkpoint.00000042`: checkpoint covering segments ≤ 42;
//! - `<dir>/checkpoint.00000042.tmp`: a checkpoint being written (removed at
//!   open: it was never renamed, so it never counted).
//!
//! Other files are ignored.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::WalError;

const CHECKPOINT_PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// Returns the path of segment `index`.
pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// Returns the path of checkpoint `index`.
pub(crate) fn checkpoint_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{index:08}"))
}

/// Returns the temporary path checkpoint `index` is written to.
pub(crate) fn checkpoint_tmp_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{index:08}{TMP_SUFFIX}"))
}

/// Parses an index written with at least 8 digits.
fn parse_index(digits: &str) -> Option<u64> {
    if digits.len() < 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The WAL files found in a directory.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment indexes, ascending.
    pub(crate) segments: Vec<u64>,
    /// Checkpoint indexes, ascending.
    pub(crate) checkpoints: Vec<u64>,
    /// Leftover temporary checkpoint files.
    pub(crate) temporary: Vec<PathBuf>,
}

/// Lists the WAL files in `dir`.
pub(crate) fn list(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(WalError::with_path(dir))?;
    for entry in entries {
        let entry = entry.map_err(WalError::with_path(dir))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        if let Some(index) = parse_index(name) {
            listing.segments.push(index);
        } else if let Some(rest) = name.strip_prefix(CHECKPOINT_PREFIX) {
            if let Some(index) = parse_index(rest) {
                listing.checkpoints.push(index);
            } else if rest
                .strip_suffix(TMP_SUFFIX)
                .and_then(parse_index)
                .is_some()
            {
                listing.temporary.push(entry.path());
            }
        }
    }
    listing.segments.sort_unstable();
    listing.checkpoints.sort_unstable();
    Ok(listing)
}

/// Fsyncs `dir` so that file creations, renames and deletions in it are
/// durable. A no-op where directories cannot be opened as files.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(WalError::with_path(dir))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(WalError::io(path, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_zero_padded_to_eight_digits() {
        let dir = Path::new("/w");
        assert_eq!(segment_path(dir, 42), Path::new("/w/00000042"));
        assert_eq!(checkpoint_path(dir, 7), Path::new("/w/checkpoint.00000007"));
        assert_eq!(
            checkpoint_tmp_path(dir, 7),
            Path::new("/w/checkpoint.00000007.tmp")
        );
        assert_eq!(segment_path(dir, 123_456_789), Path::new("/w/123456789"));
    }

    #[test]
    fn parse_index_needs_eight_digits() {
        assert_eq!(parse_index("00000042"), Some(42));
        assert_eq!(parse_index("123456789"), Some(123_456_789));
        assert_eq!(parse_index("42"), None);
        assert_eq!(parse_index("0000004x"), None);
        assert_eq!(parse_index("+0000042"), None);
    }
}
