//! The ingester's WAL records. A push record holds one push (per stream:
//! labels and entries) stamped with a sequence number; a checkpoint record
//! holds one stream's chunks and the sequence of the last push applied to
//! it, so replay applies a push record to a stream only when it is newer
//! than the checkpoint's copy.
//!
//! Layout (varints are LEB128 as in protobuf; timestamps zigzag):
//! ```text
//! push:       0x01 seq tenant_len tenant streams_count
//!             { labels_len labels entries_count { ts line_len line } }
//! checkpoint: 0x02 seq tenant_len tenant labels_len labels has_last
//!             [ last_ts last_line_len last_line ] chunks_count
//!             { closed chunk_len chunk_bytes }
//! compressed: 0x03 snappy_raw(push record, from its 0x01 on)
//! ```
//!
//! With `ingester.wal.compression: snappy` push records are written
//! compressed; replay reads both kinds, whatever the setting.

use bytes::Buf;
use prost::encoding::{decode_varint, encode_varint};

const PUSH: u8 = 1;
const CHECKPOINT: u8 = 2;
const SNAPPY: u8 = 3;

/// The most bytes a compressed record may expand to (a push is bounded by
/// the server's message size limits far below this).
const MAX_EXPANDED: usize = 1 << 30;

/// A stream part of a decoded push record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushStream<'a> {
    pub(crate) labels: &'a str,
    pub(crate) entries: Vec<(i64, &'a str)>,
}

/// A decoded record, borrowing from the WAL's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Push {
        seq: u64,
        tenant: &'a str,
        streams: Vec<PushStream<'a>>,
    },
    Checkpoint {
        seq: u64,
        tenant: &'a str,
        labels: &'a str,
        last: Option<(i64, &'a str)>,
        /// (closed, encoded chunk)
        chunks: Vec<(bool, &'a [u8])>,
    },
}

/// Builds a push record without copying lines into intermediate values.
pub(crate) struct PushRecordBuilder {
    buffer: Vec<u8>,
    streams_at: usize,
    streams: u32,
}

impl PushRecordBuilder {
    pub(crate) fn new(seq: u64, tenant: &str, capacity: usize) -> PushRecordBuilder {
        let mut buffer = Vec::with_capacity(capacity + 64);
        buffer.push(PUSH);
        encode_varint(seq, &mut buffer);
        put_str(&mut buffer, tenant);
        let streams_at = buffer.len();
        // Fixed-width stream count, patched in `finish`.
        buffer.extend_from_slice(&[0; 4]);
        PushRecordBuilder {
            buffer,
            streams_at,
            streams: 0,
        }
    }

    /// Adds a stream with `count` entries (the iterator must yield exactly
    /// that many).
    pub(crate) fn add_stream<'a>(
        &mut self,
        labels: &str,
        count: usize,
        entries: impl Iterator<Item = (i64, &'a str)>,
    ) {
        self.streams += 1;
        put_str(&mut self.buffer, labels);
        encode_varint(count as u64, &mut self.buffer);
        for (timestamp, line) in entries {
            encode_varint(zigzag(timestamp), &mut self.buffer);
            put_str(&mut self.buffer, line);
        }
    }

    /// The record's bytes, snappy-compressed when `compress` (unless the
    /// record is too large for snappy, then plain).
    pub(crate) fn finish(mut self, compress: bool) -> Vec<u8> {
        self.buffer[self.streams_at..self.streams_at + 4]
            .copy_from_slice(&self.streams.to_le_bytes());
        if !compress {
            return self.buffer;
        }
        let mut out = vec![0; 1 + snap::raw::max_compress_len(self.buffer.len())];
        match snap::raw::Encoder::new().compress(&self.buffer, &mut out[1..]) {
            Ok(written) if written > 0 => {
                out[0] = SNAPPY;
                out.truncate(1 + written);
                out
            }
            _ => self.buffer,
        }
    }
}

/// Encodes one stream's checkpoint record.
pub(crate) fn encode_checkpoint(
    seq: u64,
    tenant: &str,
    labels: &str,
    last: Option<(i64, &str)>,
    chunks: &[(bool, Vec<u8>)],
) -> Vec<u8> {
    let size: usize = chunks.iter().map(|(_, bytes)| bytes.len() + 8).sum();
    let mut buffer = Vec::with_capacity(size + labels.len() + 64);
    buffer.push(CHECKPOINT);
    encode_varint(seq, &mut buffer);
    put_str(&mut buffer, tenant);
    put_str(&mut buffer, labels);
    match last {
        Some((timestamp, line)) => {
            buffer.push(1);
            encode_varint(zigzag(timestamp), &mut buffer);
            put_str(&mut buffer, line);
        }
        None => buffer.push(0),
    }
    encode_varint(chunks.len() as u64, &mut buffer);
    for (closed, bytes) in chunks {
        buffer.push(u8::from(*closed));
        encode_varint(bytes.len() as u64, &mut buffer);
        buffer.extend_from_slice(bytes);
    }
    buffer
}

/// Returns the record inside a compressed record (`None` for a plain one,
/// which [`decode`] reads as it is).
pub(crate) fn expand(record: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let Some((&SNAPPY, body)) = record.split_first() else {
        return Ok(None);
    };
    let length =
        snap::raw::decompress_len(body).map_err(|err| format!("compressed record: {err}"))?;
    if length > MAX_EXPANDED {
        return Err(format!("compressed record claims {length} bytes"));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map(Some)
        .map_err(|err| format!("compressed record: {err}"))
}

/// Decodes a record; errors describe what is malformed.
pub(crate) fn decode(record: &[u8]) -> Result<Record<'_>, String> {
    let mut reader = Reader { rest: record };
    match reader.byte()? {
        PUSH => {
            let seq = reader.varint()?;
            let tenant = reader.str()?;
            let streams_count = u32::from_le_bytes(reader.array::<4>()?);
            let mut streams = Vec::with_capacity(streams_count.min(1024) as usize);
            for _ in 0..streams_count {
                let labels = reader.str()?;
                let count = reader.varint()?;
                let mut entries = Vec::with_capacity(count.min(65_536) as usize);
                for _ in 0..count {
                    let timestamp = unzigzag(reader.varint()?);
                    entries.push((timestamp, reader.str()?));
                }
                streams.push(PushStream { labels, entries });
            }
            reader.end()?;
            Ok(Record::Push {
                seq,
                tenant,
                streams,
            })
        }
        CHECKPOINT => {
            let seq = reader.varint()?;
            let tenant = reader.str()?;
            let labels = reader.str()?;
            let last = match reader.byte()? {
                0 => None,
                1 => {
                    let timestamp = unzigzag(reader.varint()?);
                    Some((timestamp, reader.str()?))
                }
                other => return Err(format!("bad last-entry flag {other}")),
            };
            let count = reader.varint()?;
            let mut chunks = Vec::with_capacity(count.min(1024) as usize);
            for _ in 0..count {
                let closed = reader.byte()? == 1;
                let length =
                    usize::try_from(reader.varint()?).map_err(|_| "chunk too long".to_string())?;
                chunks.push((closed, reader.bytes(length)?));
            }
            reader.end()?;
            Ok(Record::Checkpoint {
                seq,
                tenant,
                labels,
                last,
                chunks,
            })
        }
        other => Err(format!("unknown record type {other}")),
    }
}

fn put_str(buffer: &mut Vec<u8>, text: &str) {
    encode_varint(text.len() as u64, buffer);
    buffer.extend_from_slice(text.as_bytes());
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&first, rest) = self.rest.split_first().ok_or("record truncated")?;
        self.rest = rest;
        Ok(first)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.bytes(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut buf = self.rest;
        let value = decode_varint(&mut buf).map_err(|err| err.to_string())?;
        let consumed = self.rest.len() - buf.remaining();
        self.rest = &self.rest[consumed..];
        Ok(value)
    }

    fn bytes(&mut self, length: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < length {
            return Err("record truncated".to_string());
        }
        let (bytes, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(bytes)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let length = usize::try_from(self.varint()?).map_err(|_| "string too long".to_string())?;
        std::str::from_utf8(self.bytes(length)?).map_err(|err| err.to_string())
    }

    fn end(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_round_trip() {
        let mut builder = PushRecordBuilder::new(42, "tenant-a", 128);
        builder.add_stream("{a=\"1\"}", 2, [(5, "x"), (-3, "yy")].into_iter());
        builder.add_stream("{b=\"2\"}", 1, [(i64::MAX, "")].into_iter());
        let bytes = builder.finish(false);
        assert_eq!(
            expand(&bytes).unwrap(),
            None,
            "a plain record is read as it is"
        );
        assert_eq!(
            decode(&bytes).unwrap(),
            Record::Push {
                seq: 42,
                tenant: "tenant-a",
                streams: vec![
                    PushStream {
                        labels: "{a=\"1\"}",
                        entries: vec![(5, "x"), (-3, "yy")],
                    },
                    PushStream {
                        labels: "{b=\"2\"}",
                        entries: vec![(i64::MAX, "")],
                    },
                ],
            }
        );
    }

    #[test]
    fn compressed_push_records_expand_to_the_plain_record() {
        let build = || {
            let mut builder = PushRecordBuilder::new(9, "t", 4096);
            let lines: Vec<String> = (0..100)
                .map(|i| {
                    format!(
                        "level=info msg=\"request served\" route=/api/v1/items status=200 i={i}"
                    )
                })
                .collect();
            builder.add_stream(
                "{app=\"x\"}",
                lines.len(),
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| (i as i64, line.as_str())),
            );
            builder
        };
        let plain = build().finish(false);
        let compressed = build().finish(true);
        assert_eq!(compressed[0], SNAPPY);
        assert!(
            compressed.len() * 3 < plain.len(),
            "{} compressed bytes for {} plain",
            compressed.len(),
            plain.len()
        );
        assert_eq!(expand(&compressed).unwrap().as_deref(), Some(&plain[..]));
        // A damaged compressed record is an error, never a panic.
        for cut in 1..compressed.len() {
            let _ = expand(&compressed[..cut]);
        }
        assert!(expand(&[SNAPPY, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn checkpoint_round_trip() {
        let chunks = vec![(true, vec![1, 2, 3]), (false, vec![])];
        let bytes = encode_checkpoint(7, "t", "{a=\"1\"}", Some((i64::MIN, "last")), &chunks);
        assert_eq!(
            decode(&bytes).unwrap(),
            Record::Checkpoint {
                seq: 7,
                tenant: "t",
                labels: "{a=\"1\"}",
                last: Some((i64::MIN, "last")),
                chunks: vec![(true, &[1, 2, 3][..]), (false, &[][..])],
            }
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut builder = PushRecordBuilder::new(1, "t", 16);
        builder.add_stream("{a=\"1\"}", 1, [(1, "line")].into_iter());
        let bytes = builder.finish(false);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
        }
        assert!(decode(&[9, 9, 9]).is_err());
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(decode(&extended).is_err());
    }
}
