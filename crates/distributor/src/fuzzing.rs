//! The push path without the network, for the cargo-fuzz targets in
//! `fuzz/` (feature `fuzzing`): decoding by content type and encoding, then
//! validation with the default limits. Any input must give a result or an
//! error, never a panic.

use http::HeaderMap;
use sluice_common::LimitsConfig;

use crate::decode::{decode_push, JsonShape};
use crate::validate::validate;

/// The content type and encoding `selector` picks (the first input byte of
/// a fuzz case).
fn headers_for(selector: u8) -> HeaderMap {
    let (content_type, encoding) = match selector % 8 {
        0 => ("application/x-protobuf", None),
        1 => ("application/json", None),
        2 => ("application/json", Some("gzip")),
        3 => ("application/x-protobuf", Some("gzip")),
        4 => ("application/x-protobuf", Some("deflate")),
        5 => ("application/x-protobuf", Some("snappy")),
        6 => ("application/json; charset=utf-8", Some("deflate")),
        _ => ("text/plain", None),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Some(encoding) = encoding {
        headers.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static(encoding),
        );
    }
    headers
}

/// Decodes and validates a push: `input[0]` picks the content type and
/// encoding, `input[1]`'s low bit the legacy JSON shape, the rest is the
/// body. Returns the number of lines that would be stored.
pub fn push(input: &[u8]) -> Result<u64, String> {
    let (selector, legacy, body) = match input {
        [selector, legacy, body @ ..] => (*selector, legacy & 1 == 1, body),
        _ => return Err("input too short".to_string()),
    };
    let shape = if legacy {
        JsonShape::Legacy
    } else {
        JsonShape::V1
    };
    let request =
        decode_push(&headers_for(selector), body, shape, 1 << 20).map_err(|err| err.to_string())?;
    let validated = validate(request, &LimitsConfig::default(), 1_700_000_000_000_000_000);
    Ok(validated.lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decode() {
        let json =
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1700000000000000001","hello"]]}]}"#;
        let mut input = vec![1, 0];
        input.extend_from_slice(json);
        assert_eq!(push(&input), Ok(1));
        assert!(push(&[0]).is_err());
        assert!(push(&[0, 0, 0xff]).is_err());
    }

    /// The committed seeds of `fuzz/corpus/push_decode` are what their
    /// names say, so fuzzing starts from inputs that reach deep.
    #[test]
    fn seed_corpus_decodes() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/push_decode");
        let seed = |name: &str| {
            std::fs::read(dir.join(name)).unwrap_or_else(|err| panic!("seed {name}: {err}"))
        };
        for (name, lines) in [
            ("proto_snappy", 3),
            ("proto_gzip_snappy", 3),
            ("proto_deflate_snappy", 3),
            ("json_v1", 2),
            ("json_v1_gzip", 2),
            ("json_legacy", 1),
        ] {
            assert_eq!(push(&seed(name)), Ok(lines), "{name}");
        }
        assert_eq!(push(&seed("proto_snappy_bad_labels")), Ok(0));
        assert!(push(&seed("json_numeric_ts")).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use prost::Message;
    use sluice_proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};

    use super::push;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Arbitrary bytes through decoding and validation: a result or an
        /// error, never a panic.
        #[test]
        fn arbitrary_inputs_never_panic(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = push(&input);
        }

        /// Well-formed protobuf carrying arbitrary label strings, lines and
        /// timestamps reaches the label parser and every validation rule.
        #[test]
        fn arbitrary_streams_never_panic(
            labels in prop_oneof!["\\PC{0,64}", "\\{([a-z_]{1,4}=\"[^\"]{0,6}\",? ?){0,4}\\}"],
            line in "\\PC{0,300}",
            timestamp in any::<i64>(),
        ) {
            let request = PushRequest {
                streams: vec![StreamAdapter {
                    labels,
                    entries: vec![EntryAdapter {
                        timestamp: Some(sluice_proto::timestamp_from_nanos(timestamp)),
                        line,
                        structured_metadata: Vec::new(),
                    }],
                    hash: 0,
                }],
            };
            let body = snap::raw::Encoder::new()
                .compress_vec(&request.encode_to_vec())
                .expect("snappy encodes");
            let mut input = vec![0, 0];
            input.extend_from_slice(&body);
            let _ = push(&input);
        }
    }
}
