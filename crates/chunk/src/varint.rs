//! Go-compatible varints (`encoding/binary` `PutUvarint` / `PutVarint`).
//!
//! Unsigned values are LEB128 (7 bits per byte, low groups first, high bit set on
//! every byte but the last, at most 10 bytes). Signed values are zig-zag mapped
//! first (`(x << 1) ^ (x >> 63)`), exactly as Go does.

/// The longest a varint or uvarint can be, in bytes.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` as a zig-zag encoded varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, zigzag(value));
}

/// Returns how many bytes [`put_uvarint`] writes for `value`.
pub(crate) fn uvarint_len(value: u64) -> usize {
    let significant_bits = 64 - value.leading_zeros() as usize;
    significant_bits.max(1).div_ceil(7)
}

/// Returns how many bytes [`put_varint`] writes for `value`.
pub(crate) fn varint_len(value: i64) -> usize {
    uvarint_len(zigzag(value))
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Reads an unsigned varint from the front of `buf`, returning the value and the
/// number of bytes used, or `None` when `buf` is truncated or the value overflows
/// 64 bits.
pub(crate) fn uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    for (index, &byte) in buf.iter().enumerate() {
        if index == 10 {
            return None;
        }
        if byte < 0x80 {
            if index == 9 && byte > 1 {
                return None;
            }
            return Some((value | (u64::from(byte) << shift), index + 1));
        }
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    None
}

/// Reads a zig-zag varint from the front of `buf` (see [`uvarint`]).
pub(crate) fn varint(buf: &[u8]) -> Option<(i64, usize)> {
    uvarint(buf).map(|(value, used)| (unzigzag(value), used))
}

/// A forward-only reader over a byte slice that reads varints and raw bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Returns how many bytes have been consumed.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Returns how many bytes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Returns whether every byte has been consumed.
    pub(crate) fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads an unsigned varint.
    pub(crate) fn uvarint(&mut self) -> Option<u64> {
        let (value, used) = uvarint(self.buf.get(self.pos..)?)?;
        self.pos += used;
        Some(value)
    }

    /// Reads a signed (zig-zag) varint.
    pub(crate) fn varint(&mut self) -> Option<i64> {
        let (value, used) = varint(self.buf.get(self.pos..)?)?;
        self.pos += used;
        Some(value)
    }

    /// Reads `len` raw bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let slice = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for value in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(varint(&buf), Some((value, buf.len())), "{value}");
            assert_eq!(varint_len(value), buf.len(), "{value}");
        }
        for value in [0u64, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, value);
            assert_eq!(uvarint(&buf), Some((value, buf.len())), "{value}");
            assert_eq!(uvarint_len(value), buf.len(), "{value}");
        }
    }

    #[test]
    fn matches_go_encoding() {
        // Go: binary.PutVarint(buf, -1) == [0x01]; PutUvarint(300) == [0xac, 0x02].
        let mut buf = Vec::new();
        put_varint(&mut buf, -1);
        put_uvarint(&mut buf, 300);
        assert_eq!(buf, [0x01, 0xac, 0x02]);
    }

    #[test]
    fn rejects_truncated_and_overflowing_input() {
        assert_eq!(uvarint(&[]), None);
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 10]), None);
        assert_eq!(
            uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(uvarint(&[0xff; 11]), None);
    }
}
