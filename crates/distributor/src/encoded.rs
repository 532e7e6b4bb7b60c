//! A push encoded once for all of its replicas.
//!
//! At replication factor 3 every ingester gets (nearly) the same streams.
//! Cloning the request per ingester and letting tonic encode each copy
//! cost the distributor a third of its CPU (a profile of `make
//! ring-bench`); instead the validated request is encoded once, each
//! stream's bytes are remembered, and each ingester's body is either the
//! whole encoding (shared, no copy) or its streams' bytes put together. A
//! `PushRequest` is a repeated field and nothing else, so concatenated
//! encoded streams are a valid `PushRequest` with exactly those streams.

use std::ops::Range;

use bytes::{BufMut, Bytes};
use prost::Message;
use sluice_proto::logproto::{PushRequest, PushResponse};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The tag of `PushRequest.streams`.
const STREAMS_FIELD: u32 = 1;

/// A `PushRequest` in protobuf form, with where each stream lies.
#[derive(Debug, Clone)]
pub(crate) struct EncodedPush {
    bytes: Bytes,
    streams: Vec<Range<usize>>,
}

impl EncodedPush {
    /// Encodes `request` once.
    pub(crate) fn new(request: &PushRequest) -> EncodedPush {
        let mut buffer = Vec::with_capacity(request.encoded_len());
        let mut streams = Vec::with_capacity(request.streams.len());
        for stream in &request.streams {
            let start = buffer.len();
            prost::encoding::message::encode(STREAMS_FIELD, stream, &mut buffer);
            streams.push(start..buffer.len());
        }
        EncodedPush {
            bytes: Bytes::from(buffer),
            streams,
        }
    }

    /// Returns the request holding the streams at `indexes` (ascending, as
    /// the replication code collects them): the shared encoding when that
    /// is every stream, otherwise a copy of just their bytes.
    pub(crate) fn select(&self, indexes: &[usize]) -> Bytes {
        if indexes.len() == self.streams.len() {
            return self.bytes.clone();
        }
        let size = indexes.iter().map(|&index| self.streams[index].len()).sum();
        let mut out = Vec::with_capacity(size);
        for &index in indexes {
            out.extend_from_slice(&self.bytes[self.streams[index].clone()]);
        }
        Bytes::from(out)
    }
}

/// Sends an already encoded `PushRequest` and decodes the `PushResponse`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreEncodedPush;

impl Codec for PreEncodedPush {
    type Encode = Bytes;
    type Decode = PushResponse;
    type Encoder = PreEncodedPush;
    type Decoder = PreEncodedPush;

    fn encoder(&mut self) -> PreEncodedPush {
        PreEncodedPush
    }

    fn decoder(&mut self) -> PreEncodedPush {
        PreEncodedPush
    }
}

impl Encoder for PreEncodedPush {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        // One reservation instead of growing the buffer as it fills.
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncodedPush {
    type Item = PushResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<PushResponse>, tonic::Status> {
        PushResponse::decode(src)
            .map(Some)
            .map_err(|err| tonic::Status::internal(format!("decoding the push response: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::logproto::{EntryAdapter, StreamAdapter};

    fn request() -> PushRequest {
        PushRequest {
            streams: (0..4)
                .map(|stream| StreamAdapter {
                    labels: format!("{{app=\"a{stream}\"}}"),
                    entries: (0..=stream)
                        .map(|line| EntryAdapter {
                            timestamp: Some(sluice_proto::timestamp_from_nanos(
                                1_000 * stream as i64 + line as i64,
                            )),
                            line: format!("line {line} of stream {stream}"),
                            structured_metadata: Vec::new(),
                        })
                        .collect(),
                    hash: 7 + stream as u64,
                })
                .collect(),
        }
    }

    #[test]
    fn every_stream_is_the_plain_encoding() {
        let request = request();
        let encoded = EncodedPush::new(&request);
        let all = encoded.select(&[0, 1, 2, 3]);
        assert_eq!(all.as_ref(), request.encode_to_vec().as_slice());
        assert_eq!(
            all.as_ptr(),
            encoded.bytes.as_ptr(),
            "the whole request is shared, not copied"
        );
    }

    #[test]
    fn a_subset_decodes_to_those_streams() {
        let request = request();
        let encoded = EncodedPush::new(&request);
        let some = PushRequest::decode(encoded.select(&[1, 3])).expect("valid protobuf");
        assert_eq!(
            some.streams,
            vec![request.streams[1].clone(), request.streams[3].clone()]
        );
        let none = PushRequest::decode(encoded.select(&[])).expect("valid protobuf");
        assert!(none.streams.is_empty());
    }
}
