//! A push as the ingester reads it: labels and lines borrowed from the
//! gRPC message's bytes instead of a `String` per line.
//!
//! Decoding a `PushRequest` with prost allocates every line, and the
//! ingester copies each line again into its WAL record and head block and
//! then drops the decoded request: a profile of `make ring-bench` put 16%
//! of an ingester's CPU there. [`PushView::decode`] reads the same wire
//! format as prost does (unknown fields skipped, the last value of a
//! repeated scalar kept, strings checked for UTF-8) without copying.

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use prost::Message;
use sluice_proto::logproto::{EntryAdapter, LabelPairAdapter, PushRequest};
use sluice_proto::timestamp_to_nanos;

/// A push: its streams in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PushView<'a> {
    pub(crate) streams: Vec<StreamView<'a>>,
}

/// One stream of a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamView<'a> {
    /// The labels as sent (the distributor sends them canonical).
    pub(crate) labels: &'a str,
    pub(crate) entries: Vec<EntryView<'a>>,
}

/// One entry: nanoseconds since the epoch (a missing timestamp is 0, as
/// [`timestamp_to_nanos`] has it) and the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryView<'a> {
    pub(crate) timestamp: i64,
    pub(crate) line: &'a str,
}

impl EntryView<'_> {
    /// The entry as the protobuf type (for live tails).
    pub(crate) fn to_adapter(self) -> EntryAdapter {
        EntryAdapter {
            timestamp: Some(sluice_proto::timestamp_from_nanos(self.timestamp)),
            line: self.line.to_owned(),
            structured_metadata: Vec::new(),
        }
    }
}

impl<'a> PushView<'a> {
    /// Views a decoded request.
    pub(crate) fn of(request: &'a PushRequest) -> PushView<'a> {
        PushView {
            streams: request
                .streams
                .iter()
                .map(|stream| StreamView {
                    labels: &stream.labels,
                    entries: stream
                        .entries
                        .iter()
                        .map(|entry| EntryView {
                            timestamp: timestamp_to_nanos(entry.timestamp.as_ref()),
                            line: &entry.line,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Reads an encoded `PushRequest`; the error says what is malformed.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<PushView<'a>, String> {
        let mut reader = Reader { rest: bytes };
        let mut streams = Vec::new();
        while !reader.rest.is_empty() {
            let (tag, wire_type) = reader.key()?;
            match tag {
                1 => streams.push(decode_stream(reader.message(wire_type)?)?),
                _ => reader.skip(wire_type, tag)?,
            }
        }
        Ok(PushView { streams })
    }
}

fn decode_stream(bytes: &[u8]) -> Result<StreamView<'_>, String> {
    let mut reader = Reader { rest: bytes };
    let mut stream = StreamView::default();
    while !reader.rest.is_empty() {
        let (tag, wire_type) = reader.key()?;
        match tag {
            1 => stream.labels = reader.string(wire_type)?,
            2 => stream
                .entries
                .push(decode_entry(reader.message(wire_type)?)?),
            // The distributor's label hash, which the ingester does not need.
            3 => {
                reader.varint(wire_type)?;
            }
            _ => reader.skip(wire_type, tag)?,
        }
    }
    Ok(stream)
}

fn decode_entry(bytes: &[u8]) -> Result<EntryView<'_>, String> {
    let mut reader = Reader { rest: bytes };
    let mut timestamp: Option<(i64, i32)> = None;
    let mut line = "";
    while !reader.rest.is_empty() {
        let (tag, wire_type) = reader.key()?;
        match tag {
            // A message field sent twice merges, as in prost.
            1 => {
                let (seconds, nanos) = timestamp.get_or_insert((0, 0));
                let mut inner = Reader {
                    rest: reader.message(wire_type)?,
                };
                while !inner.rest.is_empty() {
                    let (tag, wire_type) = inner.key()?;
                    match tag {
                        1 => *seconds = inner.varint(wire_type)? as i64,
                        2 => *nanos = inner.varint(wire_type)? as i32,
                        _ => inner.skip(wire_type, tag)?,
                    }
                }
            }
            2 => line = reader.string(wire_type)?,
            // Structured metadata: the ingester stores none (as before),
            // but a malformed pair is still an error, as with prost.
            3 => {
                LabelPairAdapter::decode(reader.message(wire_type)?)
                    .map_err(|err| err.to_string())?;
            }
            _ => reader.skip(wire_type, tag)?,
        }
    }
    // What `timestamp_to_nanos` computes (the tests hold them equal).
    let timestamp = timestamp.map_or(0, |(seconds, nanos)| {
        seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos))
    });
    Ok(EntryView { timestamp, line })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn key(&mut self) -> Result<(u32, WireType), String> {
        decode_key(&mut self.rest).map_err(|err| err.to_string())
    }

    fn varint(&mut self, wire_type: WireType) -> Result<u64, String> {
        expect(wire_type, WireType::Varint)?;
        decode_varint(&mut self.rest).map_err(|err| err.to_string())
    }

    fn message(&mut self, wire_type: WireType) -> Result<&'a [u8], String> {
        expect(wire_type, WireType::LengthDelimited)?;
        let length = decode_varint(&mut self.rest).map_err(|err| err.to_string())?;
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= self.rest.len())
            .ok_or_else(|| "buffer underflow".to_string())?;
        let (bytes, rest) = self.rest.split_at(length);
        self.rest = rest;
        Ok(bytes)
    }

    fn string(&mut self, wire_type: WireType) -> Result<&'a str, String> {
        std::str::from_utf8(self.message(wire_type)?)
            .map_err(|_| "invalid string value: data is not UTF-8 encoded".to_string())
    }

    fn skip(&mut self, wire_type: WireType, tag: u32) -> Result<(), String> {
        skip_field(wire_type, tag, &mut self.rest, DecodeContext::default())
            .map_err(|err| err.to_string())
    }
}

fn expect(actual: WireType, expected: WireType) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "invalid wire type: {actual:?} (expected {expected:?})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::logproto::StreamAdapter;

    use super::*;

    fn request(streams: &[(&str, &[(i64, &str)])]) -> PushRequest {
        PushRequest {
            streams: streams
                .iter()
                .map(|(labels, entries)| StreamAdapter {
                    labels: labels.to_string(),
                    entries: entries
                        .iter()
                        .map(|(timestamp, line)| EntryAdapter {
                            timestamp: Some(sluice_proto::timestamp_from_nanos(*timestamp)),
                            line: line.to_string(),
                            structured_metadata: Vec::new(),
                        })
                        .collect(),
                    hash: 42,
                })
                .collect(),
        }
    }

    #[test]
    fn reads_what_prost_writes() {
        let mut request = request(&[
            (
                "{a=\"1\"}",
                &[(1, "x"), (-1_500_000_000, "before 1970"), (0, "")],
            ),
            ("{b=\"2\"}", &[]),
            ("", &[(i64::MAX, "far future")]),
        ]);
        request.streams[0].entries[0]
            .structured_metadata
            .push(LabelPairAdapter {
                name: "trace".into(),
                value: "abc".into(),
            });
        request.streams[0].entries.push(EntryAdapter {
            timestamp: None,
            line: "no timestamp".into(),
            structured_metadata: Vec::new(),
        });
        let bytes = request.encode_to_vec();
        let view = PushView::decode(&bytes).expect("valid");
        assert_eq!(view, PushView::of(&request));
        assert_eq!(view.streams[0].entries[3].timestamp, 0);
        assert_eq!(PushView::decode(&[]).expect("empty"), PushView::default());
    }

    #[test]
    fn refuses_what_prost_refuses() {
        let bytes = request(&[("{a=\"1\"}", &[(1, "line")])]).encode_to_vec();
        for cut in 1..bytes.len() {
            assert!(
                PushView::decode(&bytes[..cut]).is_err(),
                "truncated at {cut} of {}",
                bytes.len()
            );
            assert!(PushRequest::decode(&bytes[..cut]).is_err());
        }
        let mut bad_utf8 = bytes.clone();
        let at = bad_utf8
            .windows(4)
            .position(|window| window == b"line")
            .expect("the line is in the bytes");
        bad_utf8[at] = 0xff;
        let error = PushView::decode(&bad_utf8).expect_err("not UTF-8");
        assert!(error.contains("UTF-8"), "{error}");
        assert!(PushRequest::decode(bad_utf8.as_slice()).is_err());
        // Field 1 with the varint wire type.
        assert!(PushView::decode(&[0x08, 0x01]).is_err());
    }

    #[test]
    fn agrees_with_prost_on_damaged_requests() {
        let mut request = request(&[
            (
                "{a=\"1\"}",
                &[(1, "x"), (1_700_000_000_123_456_789, "line two")],
            ),
            ("{b=\"2\"}", &[(5, "y")]),
        ]);
        request.streams[1].entries[0]
            .structured_metadata
            .push(LabelPairAdapter {
                name: "k".into(),
                value: "v".into(),
            });
        let bytes = request.encode_to_vec();
        for at in 0..bytes.len() {
            for value in [0x00, 0x01, 0x02, 0x07, 0x0a, 0x12, 0x1a, 0x7f, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] = value;
                match (
                    PushView::decode(&damaged),
                    PushRequest::decode(damaged.as_slice()),
                ) {
                    (Ok(view), Ok(request)) => assert_eq!(view, PushView::of(&request)),
                    (Err(_), Err(_)) => {}
                    (view, request) => panic!("byte {at} = {value:#x}: {view:?} vs {request:?}"),
                }
            }
        }
    }
}
