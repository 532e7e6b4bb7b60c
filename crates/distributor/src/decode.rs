//! Push body decoding: Content-Encoding, then protobuf (raw snappy block) or
//! JSON by media type, exactly as Loki chooses between them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use http::HeaderMap;
use prost::Message;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use sluice_chunk::Labels;
use sluice_proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};
use sluice_proto::timestamp_from_nanos;

use crate::error::PushError;

/// Which wire shape a JSON body uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonShape {
    /// `/loki/api/v1/push`: `{"streams":[{"stream":{…},"values":[["ns","line"]]}]}`.
    V1,
    /// `/api/prom/push`: `{"streams":[{"labels":"{…}","entries":[{"ts":"RFC3339","line":"…"}]}]}`.
    Legacy,
}

/// Decodes a push body into a request, refusing anything larger than
/// `limit` bytes at any stage without allocating it.
pub(crate) fn decode_push(
    headers: &HeaderMap,
    body: &[u8],
    shape: JsonShape,
    limit: usize,
) -> Result<PushRequest, PushError> {
    let decoded = decode_content_encoding(headers, body, limit)?;
    if is_json(headers) {
        decode_json(&decoded, shape)
    } else {
        decode_protobuf(&decoded, limit)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

fn decode_content_encoding<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, PushError> {
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_string())
        .unwrap_or_default();
    match encoding.to_ascii_lowercase().as_str() {
        "" | "snappy" => Ok(std::borrow::Cow::Borrowed(body)),
        "gzip" => read_limited(flate2::read::GzDecoder::new(body), "gzip", limit),
        "deflate" => read_limited(flate2::read::DeflateDecoder::new(body), "flate", limit),
        _ => Err(PushError::UnsupportedEncoding(encoding)),
    }
}

fn read_limited<'a>(
    reader: impl Read,
    encoding: &'static str,
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, PushError> {
    let mut out = Vec::new();
    let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(read_limit)
        .read_to_end(&mut out)
        .map_err(|err| PushError::Decompress {
            encoding,
            reason: err.to_string(),
        })?;
    if out.len() > limit {
        return Err(PushError::TooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn decode_protobuf(body: &[u8], limit: usize) -> Result<PushRequest, PushError> {
    let size = snap::raw::decompress_len(body).map_err(|_| PushError::Snappy)?;
    if size > limit {
        return Err(PushError::TooLarge { size, limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|_| PushError::Snappy)?;
    PushRequest::decode(raw.as_slice()).map_err(|err| PushError::Protobuf(err.to_string()))
}

fn decode_json(body: &[u8], shape: JsonShape) -> Result<PushRequest, PushError> {
    let json_error = |err: serde_json::Error| PushError::Json(err.to_string());
    match shape {
        JsonShape::V1 => {
            let request: V1Request = serde_json::from_slice(body).map_err(json_error)?;
            Ok(PushRequest {
                streams: request
                    .streams
                    .into_iter()
                    // Loki ignores objects without a `stream` (e.g. the legacy
                    // shape posted to the v1 path): they store nothing.
                    .filter_map(|stream| {
                        let labels = stream.stream?;
                        Some(StreamAdapter {
                            labels: Labels::from_pairs(labels).to_string(),
                            entries: stream.values.into_iter().map(|value| value.0).collect(),
                            hash: 0,
                        })
                    })
                    .collect(),
            })
        }
        JsonShape::Legacy => {
            let request: LegacyRequest = serde_json::from_slice(body).map_err(json_error)?;
            let mut streams = Vec::with_capacity(request.streams.len());
            for stream in request.streams {
                let mut entries = Vec::with_capacity(stream.entries.len());
                for entry in stream.entries {
                    let nanos = sluice_common::time::parse_timestamp(&entry.ts)
                        .ok()
                        .filter(|_| entry.ts.contains('T'))
                        .ok_or_else(|| {
                            PushError::Json(format!(
                                "invalid timestamp {:?}: expected RFC3339Nano",
                                entry.ts
                            ))
                        })?;
                    entries.push(EntryAdapter {
                        timestamp: Some(timestamp_from_nanos(nanos)),
                        line: entry.line,
                        structured_metadata: Vec::new(),
                    });
                }
                streams.push(StreamAdapter {
                    labels: stream.labels,
                    entries,
                    hash: 0,
                });
            }
            Ok(PushRequest { streams })
        }
    }
}

#[derive(Deserialize)]
struct V1Request {
    #[serde(default)]
    streams: Vec<V1Stream>,
}

#[derive(Deserialize)]
struct V1Stream {
    #[serde(default)]
    stream: Option<BTreeMap<String, String>>,
    #[serde(default)]
    values: Vec<V1Value>,
}

/// One `["<ns>", "<line>"]` pair.
struct V1Value(EntryAdapter);

impl<'de> Deserialize<'de> for V1Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<V1Value, D::Error> {
        deserializer.deserialize_seq(V1ValueVisitor)
    }
}

struct V1ValueVisitor;

impl<'de> Visitor<'de> for V1ValueVisitor {
    type Value = V1Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array [\"<timestamp in nanoseconds>\", \"<log line>\"]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V1Value, A::Error> {
        let timestamp: TimestampString = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("missing timestamp in value"))?;
        let line: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("missing log line in value"))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "structured metadata (a third element in a value) is not supported",
            ));
        }
        Ok(V1Value(EntryAdapter {
            timestamp: Some(timestamp_from_nanos(timestamp.0)),
            line,
            structured_metadata: Vec::new(),
        }))
    }
}

/// A timestamp that must be a JSON string of integer nanoseconds.
struct TimestampString(i64);

impl<'de> Deserialize<'de> for TimestampString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TimestampString, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = TimestampString;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a timestamp as a string of integer nanoseconds")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<TimestampString, E> {
                value.parse::<i64>().map(TimestampString).map_err(|_| {
                    E::custom(format!(
                        "invalid timestamp {value:?}: expected a string of integer nanoseconds"
                    ))
                })
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

#[derive(Deserialize)]
struct LegacyRequest {
    #[serde(default)]
    streams: Vec<LegacyStream>,
}

#[derive(Deserialize)]
struct LegacyStream {
    labels: String,
    #[serde(default)]
    entries: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
struct LegacyEntry {
    ts: String,
    line: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn headers(content_type: &str, encoding: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        if let Some(encoding) = encoding {
            headers.insert(http::header::CONTENT_ENCODING, encoding.parse().unwrap());
        }
        headers
    }

    fn sample() -> PushRequest {
        PushRequest {
            streams: vec![StreamAdapter {
                labels: "{job=\"a\"}".to_string(),
                entries: vec![EntryAdapter {
                    timestamp: Some(timestamp_from_nanos(1_700_000_000_000_000_001)),
                    line: "hello".to_string(),
                    structured_metadata: Vec::new(),
                }],
                hash: 0,
            }],
        }
    }

    #[test]
    fn protobuf_snappy_round_trip() {
        let body = snap::raw::Encoder::new()
            .compress_vec(&sample().encode_to_vec())
            .unwrap();
        let decoded = decode_push(
            &headers("application/x-protobuf", None),
            &body,
            JsonShape::V1,
            LIMIT,
        )
        .unwrap();
        assert_eq!(decoded, sample());
    }

    #[test]
    fn json_and_gzip_json() {
        let json =
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1700000000000000001","hello"]]}]}"#;
        let decoded = decode_push(
            &headers("application/json; charset=utf-8", None),
            json,
            JsonShape::V1,
            LIMIT,
        )
        .unwrap();
        assert_eq!(decoded, sample());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, json).unwrap();
        let body = gz.finish().unwrap();
        let decoded = decode_push(
            &headers("application/json", Some("gzip")),
            &body,
            JsonShape::V1,
            LIMIT,
        )
        .unwrap();
        assert_eq!(decoded, sample());
    }

    #[test]
    fn legacy_json() {
        let json = br#"{"streams":[{"labels":"{job=\"a\"}","entries":[{"ts":"2023-11-14T22:13:20.000000001Z","line":"hello"}]}]}"#;
        let decoded = decode_push(
            &headers("application/json", None),
            json,
            JsonShape::Legacy,
            LIMIT,
        )
        .unwrap();
        assert_eq!(decoded, sample());
    }

    #[test]
    fn errors_name_the_problem() {
        let err = decode_push(
            &headers("application/x-protobuf", None),
            b"\xff\xff\xff\xff",
            JsonShape::V1,
            LIMIT,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "snappy: corrupt input");
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        let err = decode_push(
            &headers("application/x-protobuf", None),
            &not_proto,
            JsonShape::V1,
            LIMIT,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("proto: "), "{err}");
        let err = decode_push(
            &headers("application/x-protobuf", Some("br")),
            b"",
            JsonShape::V1,
            LIMIT,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Content-Encoding \"br\" not supported");
        let err = decode_push(
            &headers("application/json", None),
            b"{",
            JsonShape::V1,
            LIMIT,
        )
        .unwrap_err();
        assert!(matches!(err, PushError::Json(_)));
        let numeric =
            br#"{"streams":[{"stream":{"job":"a"},"values":[[1700000000000000001,"hello"]]}]}"#;
        let err = decode_push(
            &headers("application/json", None),
            numeric,
            JsonShape::V1,
            LIMIT,
        )
        .unwrap_err();
        assert!(err.to_string().contains("timestamp"), "{err}");
    }

    #[test]
    fn oversized_bodies_are_refused_before_allocation() {
        let big = vec![b'a'; 4096];
        let body = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        let err = decode_push(
            &headers("application/x-protobuf", None),
            &body,
            JsonShape::V1,
            1024,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            PushError::TooLarge {
                size: 4096,
                limit: 1024
            }
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &big).unwrap();
        let body = gz.finish().unwrap();
        let err = decode_push(
            &headers("application/json", Some("gzip")),
            &body,
            JsonShape::V1,
            1024,
        )
        .unwrap_err();
        assert!(matches!(err, PushError::TooLarge { .. }));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    fn headers_for(kind: u8) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let (content_type, encoding) = match kind % 6 {
            0 => ("application/x-protobuf", None),
            1 => ("application/json", None),
            2 => ("application/json", Some("gzip")),
            3 => ("application/x-protobuf", Some("deflate")),
            4 => ("application/x-protobuf", Some("snappy")),
            _ => ("text/plain", Some("gzip")),
        };
        headers.insert(
            http::header::CONTENT_TYPE,
            content_type.parse().expect("static"),
        );
        if let Some(encoding) = encoding {
            headers.insert(
                http::header::CONTENT_ENCODING,
                encoding.parse().expect("static"),
            );
        }
        headers
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Arbitrary bytes under every content type and encoding give a
        /// result or an error, never a panic, and never more than the limit.
        #[test]
        fn arbitrary_bodies_never_panic(kind in any::<u8>(), legacy in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let shape = if legacy { JsonShape::Legacy } else { JsonShape::V1 };
            let _ = decode_push(&headers_for(kind), &body, shape, 64 * 1024);
        }

        /// Valid snappy framing around arbitrary payloads reaches the
        /// protobuf decoder, which must not panic either.
        #[test]
        fn snappy_wrapped_garbage_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let body = snap::raw::Encoder::new().compress_vec(&payload).expect("snappy encodes");
            let _ = decode_push(&headers_for(0), &body, JsonShape::V1, 64 * 1024);
        }

        /// Arbitrary JSON text shaped like a push never panics.
        #[test]
        fn jsonish_text_never_panics(text in r#"\{"streams":\[\{"stream":\{("[a-z]{0,3}":"[^"]{0,5}",?){0,3}\},"values":\[(\["[0-9-]{0,25}","[^"]{0,8}"(,\{\})?\],?){0,3}\]\}\]\}"#) {
            let _ = decode_push(&headers_for(1), text.as_bytes(), JsonShape::V1, 64 * 1024);
        }
    }
}
