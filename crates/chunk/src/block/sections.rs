//! The framing versions 2 and 3 share: three sections, each compressed on
//! its own with the chunk's codec.
//!
//! ```text
//! uvarint  compressed length of the first section
//! uvarint  compressed length of the second section
//! bytes    first section, compressed
//! bytes    second section, compressed
//! bytes    third section, compressed: every remaining byte of the block
//! ```

use crate::codec::Codec;
use crate::error::ChunkError;
use crate::varint::{self, Reader};

/// Compresses `first`, `second` and `last` and frames them.
pub(super) fn write(
    codec: Codec,
    zstd_level: i32,
    [first, second]: [&[u8]; 2],
    last: &[u8],
) -> Vec<u8> {
    let mut first_compressed = Vec::new();
    codec.compress_with_level(first, zstd_level, &mut first_compressed);
    let mut second_compressed = Vec::new();
    codec.compress_with_level(second, zstd_level, &mut second_compressed);
    let mut out =
        Vec::with_capacity(first_compressed.len() + second_compressed.len() + last.len() / 4 + 64);
    varint::put_uvarint(&mut out, first_compressed.len() as u64);
    varint::put_uvarint(&mut out, second_compressed.len() as u64);
    out.extend_from_slice(&first_compressed);
    out.extend_from_slice(&second_compressed);
    codec.compress_with_level(last, zstd_level, &mut out);
    out
}

/// Splits a block into its three sections, still compressed; `names` name
/// the first two in errors.
pub(super) fn read<'a>(
    compressed: &'a [u8],
    names: [&str; 2],
) -> Result<([&'a [u8]; 2], &'a [u8]), ChunkError> {
    let mut reader = Reader::new(compressed);
    let mut lengths = [0usize; 2];
    for (len, name) in lengths.iter_mut().zip(names) {
        *len = reader
            .uvarint()
            .and_then(|len| usize::try_from(len).ok())
            .ok_or_else(|| ChunkError::corrupt(format!("bad {name} length in block")))?;
    }
    let mut sections = [&[][..]; 2];
    for ((section, len), name) in sections.iter_mut().zip(lengths).zip(names) {
        *section = reader
            .bytes(len)
            .ok_or_else(|| ChunkError::corrupt(format!("{name} runs past the end of its block")))?;
    }
    Ok((
        sections,
        compressed.get(reader.position()..).unwrap_or_default(),
    ))
}
