//! Byte framing shared by segments and checkpoints: the 8-byte file header,
//! record frames (`len`, `crc`, payload) and the checkpoint trailer frame.
//!
//! The reader never panics and never trusts a length it has not checked
//! against the bytes actually left in the file; anything it cannot decode is
//! reported as a [`Corruption`] with the offset of the last good frame end.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::WalError;

/// Size of the file header: magic (4), version (1), reserved zeros (3).
pub(crate) const FILE_HEADER_LEN: u64 = 8;
/// Size of a record frame header: payload length (4) and CRC-32 (4).
pub(crate) const FRAME_HEADER_LEN: u64 = 8;
/// Format version written into new files.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Length value that marks the checkpoint trailer frame instead of a record.
pub(crate) const TRAILER_MARKER: u32 = u32::MAX;
/// Size of the trailer frame: marker (4), CRC-32 of the count (4), count (8).
pub(crate) const TRAILER_LEN: u64 = 16;

/// Read buffer for sequential scans.
const READ_BUFFER_SIZE: usize = 256 * 1024;

/// Largest accepted record payload, in bytes (1 GiB).
pub const MAX_RECORD_LEN: usize = 1 << 30;

/// Why a frame or a file header could not be decoded.
///
/// A closed set, so it can be used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Corruption {
    /// The file ends inside its 8-byte header.
    TruncatedFileHeader,
    /// The file header has the wrong magic or non-zero reserved bytes.
    BadFileHeader,
    /// The file ends inside a frame header.
    TruncatedHeader,
    /// The file ends inside a record payload.
    TruncatedPayload,
    /// A frame with length 0 (typically a zero-filled tail after a crash).
    ZeroLength,
    /// A frame length larger than [`MAX_RECORD_LEN`].
    LengthTooLarge,
    /// The payload does not match its CRC-32.
    ChecksumMismatch,
    /// A checkpoint trailer marker inside a segment.
    UnexpectedTrailer,
    /// A checkpoint without its trailer frame.
    MissingTrailer,
    /// The trailer's record count differs from the records read.
    TrailerCountMismatch,
    /// Bytes after a checkpoint's trailer.
    DataAfterTrailer,
}

impl Corruption {
    /// Returns a short stable name, suitable as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Corruption::TruncatedFileHeader => "truncated_file_header",
            Corruption::BadFileHeader => "bad_file_header",
            Corruption::TruncatedHeader => "truncated_header",
            Corruption::TruncatedPayload => "truncated_payload",
            Corruption::ZeroLength => "zero_length",
            Corruption::LengthTooLarge => "length_too_large",
            Corruption::ChecksumMismatch => "checksum_mismatch",
            Corruption::UnexpectedTrailer => "unexpected_trailer",
            Corruption::MissingTrailer => "missing_trailer",
            Corruption::TrailerCountMismatch => "trailer_count_mismatch",
            Corruption::DataAfterTrailer => "data_after_trailer",
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Corruption::TruncatedFileHeader => "file ends inside its header",
            Corruption::BadFileHeader => "bad file header",
            Corruption::TruncatedHeader => "file ends inside a record header",
            Corruption::TruncatedPayload => "file ends inside a record payload",
            Corruption::ZeroLength => "record of length zero",
            Corruption::LengthTooLarge => "record length too large",
            Corruption::ChecksumMismatch => "record checksum mismatch",
            Corruption::UnexpectedTrailer => "checkpoint trailer inside a segment",
            Corruption::MissingTrailer => "checkpoint trailer missing",
            Corruption::TrailerCountMismatch => "checkpoint trailer record count mismatch",
            Corruption::DataAfterTrailer => "data after checkpoint trailer",
        };
        f.write_str(text)
    }
}

/// Returns the 8-byte file header for `magic`.
pub(crate) fn file_header(magic: [u8; 4]) -> [u8; FILE_HEADER_LEN as usize] {
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    header[..4].copy_from_slice(&magic);
    header[4] = FORMAT_VERSION;
    header
}

/// Outcome of checking a file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    Valid,
    /// Right magic, version this build does not know.
    UnsupportedVersion(u8),
    Corrupt(Corruption),
}

/// Reads and checks the file header; `file_len` is the file's size.
pub(crate) fn read_file_header(
    reader: &mut impl Read,
    file_len: u64,
    magic: [u8; 4],
) -> io::Result<HeaderCheck> {
    if file_len < FILE_HEADER_LEN {
        return Ok(HeaderCheck::Corrupt(Corruption::TruncatedFileHeader));
    }
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
            return Ok(HeaderCheck::Corrupt(Corruption::TruncatedFileHeader))
        }
        Err(error) => return Err(error),
    }
    if header[..4] != magic || header[5..] != [0, 0, 0] {
        return Ok(HeaderCheck::Corrupt(Corruption::BadFileHeader));
    }
    if header[4] != FORMAT_VERSION {
        return Ok(HeaderCheck::UnsupportedVersion(header[4]));
    }
    Ok(HeaderCheck::Valid)
}

/// Appends one record frame (header and payload) to `out`.
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_RECORD_LEN);
    out.extend_from_slice(&frame_header(payload));
    out.extend_from_slice(payload);
}

/// Returns the 8-byte frame header for `payload`.
pub(crate) fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER_LEN as usize] {
    // Callers check MAX_RECORD_LEN (< u32::MAX) before framing.
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    let mut header = [0u8; FRAME_HEADER_LEN as usize];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..].copy_from_slice(&crc.to_be_bytes());
    header
}

/// Returns the checkpoint trailer frame for `records` records.
pub(crate) fn trailer_frame(records: u64) -> [u8; TRAILER_LEN as usize] {
    let count = records.to_be_bytes();
    let mut frame = [0u8; TRAILER_LEN as usize];
    frame[..4].copy_from_slice(&TRAILER_MARKER.to_be_bytes());
    frame[4..8].copy_from_slice(&crc32fast::hash(&count).to_be_bytes());
    frame[8..].copy_from_slice(&count);
    frame
}

/// Checks a record payload before it is framed.
pub(crate) fn check_payload(payload: &[u8]) -> Result<(), WalError> {
    if payload.is_empty() {
        return Err(WalError::EmptyRecord);
    }
    if payload.len() > MAX_RECORD_LEN {
        return Err(WalError::RecordTooLarge {
            len: payload.len(),
            max: MAX_RECORD_LEN,
        });
    }
    Ok(())
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A record; its payload is in the caller's buffer.
    Record,
    /// A checkpoint trailer carrying the record count.
    Trailer { records: u64 },
    /// Clean end: no bytes left.
    End,
    /// Undecodable bytes start at [`FrameReader::offset`].
    Corrupt(Corruption),
}

/// Sequential frame decoder over the bytes `[offset, end)` of a file.
pub(crate) struct FrameReader<R> {
    reader: R,
    offset: u64,
    end: u64,
}

impl<R: Read> FrameReader<R> {
    /// Starts decoding at `offset` (positioned there already) up to `end`.
    pub(crate) fn new(reader: R, offset: u64, end: u64) -> Self {
        FrameReader {
            reader,
            offset,
            end,
        }
    }

    /// Returns the offset just past the last fully decoded frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Decodes the next frame; a record's payload replaces `payload`'s
    /// contents. After `End` or `Corrupt` the reader must not be used again.
    pub(crate) fn next_frame(&mut self, payload: &mut Vec<u8>) -> io::Result<Frame> {
        let remaining = self.end.saturating_sub(self.offset);
        if remaining == 0 {
            return Ok(Frame::End);
        }
        if remaining < FRAME_HEADER_LEN {
            return Ok(Frame::Corrupt(Corruption::TruncatedHeader));
        }
        let mut header = [0u8; FRAME_HEADER_LEN as usize];
        if !read_exact_or_eof(&mut self.reader, &mut header)? {
            return Ok(Frame::Corrupt(Corruption::TruncatedHeader));
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let after_header = remaining - FRAME_HEADER_LEN;

        if len == TRAILER_MARKER {
            return self.read_trailer(crc, after_header);
        }
        if len == 0 {
            return Ok(Frame::Corrupt(Corruption::ZeroLength));
        }
        if len as usize > MAX_RECORD_LEN {
            return Ok(Frame::Corrupt(Corruption::LengthTooLarge));
        }
        if u64::from(len) > after_header {
            return Ok(Frame::Corrupt(Corruption::TruncatedPayload));
        }
        payload.clear();
        payload.resize(len as usize, 0);
        if !read_exact_or_eof(&mut self.reader, payload)? {
            return Ok(Frame::Corrupt(Corruption::TruncatedPayload));
        }
        if crc32fast::hash(payload) != crc {
            return Ok(Frame::Corrupt(Corruption::ChecksumMismatch));
        }
        self.offset += FRAME_HEADER_LEN + u64::from(len);
        Ok(Frame::Record)
    }

    fn read_trailer(&mut self, crc: u32, after_header: u64) -> io::Result<Frame> {
        let body_len = TRAILER_LEN - FRAME_HEADER_LEN;
        if after_header < body_len {
            return Ok(Frame::Corrupt(Corruption::TruncatedPayload));
        }
        let mut count = [0u8; 8];
        if !read_exact_or_eof(&mut self.reader, &mut count)? {
            return Ok(Frame::Corrupt(Corruption::TruncatedPayload));
        }
        if crc32fast::hash(&count) != crc {
            return Ok(Frame::Corrupt(Corruption::ChecksumMismatch));
        }
        self.offset += TRAILER_LEN;
        Ok(Frame::Trailer {
            records: u64::from_be_bytes(count),
        })
    }
}

/// A framed file opened for sequential reading.
pub(crate) type FileFrames = FrameReader<BufReader<File>>;

/// Result of opening a framed file for reading.
pub(crate) enum OpenedFile {
    /// Header valid; frames follow.
    Frames { frames: FileFrames, file_len: u64 },
    /// The header is unreadable; `file_len` bytes are unusable.
    Corrupt { reason: Corruption, file_len: u64 },
}

/// Opens `path`, checks its header against `magic` and returns a frame reader
/// over the bytes up to `limit` (or the whole file).
pub(crate) fn open_file_frames(
    path: &Path,
    magic: [u8; 4],
    limit: Option<u64>,
) -> Result<OpenedFile, WalError> {
    let file = File::open(path).map_err(WalError::with_path(path))?;
    let file_len = file.metadata().map_err(WalError::with_path(path))?.len();
    let end = limit.map_or(file_len, |limit| limit.min(file_len));
    let mut reader = BufReader::with_capacity(READ_BUFFER_SIZE, file);
    match read_file_header(&mut reader, end, magic).map_err(WalError::with_path(path))? {
        HeaderCheck::Valid => Ok(OpenedFile::Frames {
            frames: FrameReader::new(reader, FILE_HEADER_LEN, end),
            file_len,
        }),
        HeaderCheck::UnsupportedVersion(version) => Err(WalError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        }),
        HeaderCheck::Corrupt(reason) => Ok(OpenedFile::Corrupt { reason, file_len }),
    }
}

/// Fills `buf`; returns `false` if the reader hit end of file first.
fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (Vec<Vec<u8>>, Frame, u64) {
        let mut reader = FrameReader::new(bytes, 0, bytes.len() as u64);
        let mut payload = Vec::new();
        let mut records = Vec::new();
        loop {
            match reader.next_frame(&mut payload).unwrap() {
                Frame::Record => records.push(payload.clone()),
                other => return (records, other, reader.offset()),
            }
        }
    }

    #[test]
    fn frame_layout_is_len_crc_payload_big_endian() {
        let mut out = Vec::new();
        encode_frame(b"abc", &mut out);
        assert_eq!(&out[..4], &3u32.to_be_bytes());
        assert_eq!(&out[4..8], &crc32fast::hash(b"abc").to_be_bytes());
        assert_eq!(&out[8..], b"abc");
    }

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        encode_frame(b"one", &mut out);
        encode_frame(&[7u8; 1000], &mut out);
        let (records, end, offset) = decode_all(&out);
        assert_eq!(records, vec![b"one".to_vec(), vec![7u8; 1000]]);
        assert_eq!(end, Frame::End);
        assert_eq!(offset, out.len() as u64);
    }

    #[test]
    fn every_truncation_is_detected_at_the_last_good_frame() {
        let mut out = Vec::new();
        encode_frame(b"first", &mut out);
        let first_end = out.len();
        encode_frame(b"second record", &mut out);
        for cut in 0..out.len() {
            let (records, end, offset) = decode_all(&out[..cut]);
            if cut == 0 {
                assert_eq!(end, Frame::End);
            } else if cut < first_end {
                assert!(records.is_empty());
                assert!(matches!(end, Frame::Corrupt(_)), "cut {cut}");
                assert_eq!(offset, 0);
            } else if cut == first_end {
                assert_eq!(records.len(), 1);
                assert_eq!(end, Frame::End);
            } else {
                assert_eq!(records.len(), 1);
                assert!(matches!(end, Frame::Corrupt(_)), "cut {cut}");
                assert_eq!(offset, first_end as u64);
            }
        }
    }

    #[test]
    fn flipped_payload_bit_is_a_checksum_mismatch() {
        let mut out = Vec::new();
        encode_frame(b"payload", &mut out);
        out[10] ^= 0x01;
        let (_, end, offset) = decode_all(&out);
        assert_eq!(end, Frame::Corrupt(Corruption::ChecksumMismatch));
        assert_eq!(offset, 0);
    }

    #[test]
    fn zero_fill_is_corrupt_not_empty_records() {
        let (records, end, _) = decode_all(&[0u8; 64]);
        assert!(records.is_empty());
        assert_eq!(end, Frame::Corrupt(Corruption::ZeroLength));
    }

    #[test]
    fn huge_length_is_rejected_without_allocating() {
        let mut out = Vec::new();
        out.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let (_, end, _) = decode_all(&out);
        assert_eq!(end, Frame::Corrupt(Corruption::LengthTooLarge));
    }

    #[test]
    fn trailer_round_trips() {
        let mut out = Vec::new();
        encode_frame(b"x", &mut out);
        out.extend_from_slice(&trailer_frame(1));
        let (records, end, offset) = decode_all(&out);
        assert_eq!(records.len(), 1);
        assert_eq!(end, Frame::Trailer { records: 1 });
        assert_eq!(offset, out.len() as u64);
    }

    #[test]
    fn file_header_checks_magic_and_version() {
        let magic = *b"TEST";
        let header = file_header(magic);
        let check =
            |bytes: &[u8]| read_file_header(&mut &bytes[..], bytes.len() as u64, magic).unwrap();
        assert_eq!(check(&header), HeaderCheck::Valid);
        assert_eq!(
            check(&header[..5]),
            HeaderCheck::Corrupt(Corruption::TruncatedFileHeader)
        );
        assert_eq!(
            check(&file_header(*b"NOPE")),
            HeaderCheck::Corrupt(Corruption::BadFileHeader)
        );
        let mut future = header;
        future[4] = 9;
        assert_eq!(check(&future), HeaderCheck::UnsupportedVersion(9));
    }

    #[test]
    fn payload_checks() {
        assert!(matches!(check_payload(b""), Err(WalError::EmptyRecord)));
        assert!(check_payload(b"a").is_ok());
    }
}
