//! Prometheus' remote-write protobuf messages (`prompb`, field numbers as
//! in Prometheus' `types.proto` / `remote.proto`), declared with prost's
//! derive: four small messages do not warrant a protoc step.

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

impl WriteRequest {
    /// The body Prometheus' receiver takes: protobuf, snappy block format.
    pub fn encode_snappy(&self) -> Result<Vec<u8>, snap::Error> {
        let bytes = prost::Message::encode_to_vec(self);
        snap::raw::Encoder::new().compress_vec(&bytes)
    }

    /// Decodes a snappy-compressed body (tests, and receivers).
    pub fn decode_snappy(body: &[u8]) -> Result<WriteRequest, String> {
        let bytes = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|err| err.to_string())?;
        <WriteRequest as prost::Message>::decode(bytes.as_slice()).map_err(|err| err.to_string())
    }

    /// Total samples.
    pub fn sample_count(&self) -> usize {
        self.timeseries
            .iter()
            .map(|series| series.samples.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_matches_prompb() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "x".into(),
                }],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1000,
                }],
            }],
        };
        let bytes = prost::Message::encode_to_vec(&request);
        // timeseries (1, len) { labels (1, len) { name (1) "__name__", value (2) "x" },
        // samples (2, len) { value (1, fixed64) 1.5, timestamp (2, varint) 1000 } }
        let mut expected = vec![0x0a, 0x1d, 0x0a, 0x0d, 0x0a, 0x08];
        expected.extend_from_slice(b"__name__");
        expected.extend_from_slice(&[0x12, 0x01, b'x', 0x12, 0x0c, 0x09]);
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(bytes, expected);
        let body = request.encode_snappy().unwrap();
        assert_eq!(WriteRequest::decode_snappy(&body).unwrap(), request);
    }
}
