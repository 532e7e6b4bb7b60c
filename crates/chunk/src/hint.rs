//! [`LineHint`]: what a reader will keep of a chunk's lines, so that blocks
//! laid out for it can skip lines that cannot be kept without rebuilding
//! them.

/// Byte strings every line a reader keeps contains (its case-sensitive line
/// filters, e.g. `|= "error"`).
///
/// A hint only allows skipping: an iterator given one may still return
/// lines that do not contain the strings (the reader filters them as
/// before), and never skips one that does. Version-3 blocks use it: a line
/// whose template and values cannot hold a string made only of ASCII
/// letters is not rebuilt; a block where none can is not rebuilt at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHint {
    contains: Vec<Box<[u8]>>,
}

impl LineHint {
    /// A hint that every kept line contains each of `needles`.
    pub fn contains<T: AsRef<[u8]>>(needles: impl IntoIterator<Item = T>) -> LineHint {
        LineHint {
            contains: needles
                .into_iter()
                .filter(|needle| !needle.as_ref().is_empty())
                .map(|needle| needle.as_ref().into())
                .collect(),
        }
    }

    /// Whether the hint says nothing.
    pub fn is_empty(&self) -> bool {
        self.contains.is_empty()
    }

    /// The strings made only of ASCII letters: those that cannot span a
    /// template's text and a variable, nor hide in a stored difference.
    pub(crate) fn words(&self) -> impl Iterator<Item = &[u8]> {
        self.contains
            .iter()
            .map(|needle| &needle[..])
            .filter(|needle| needle.iter().all(u8::is_ascii_alphabetic))
    }
}
