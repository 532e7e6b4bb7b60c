//! Block compression codecs, with Loki's names and chunk-format id bytes.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use crate::error::ChunkError;

thread_local! {
    /// A zstd compression context per thread, reused from block to block:
    /// creating one per block (its allocation and table set-up) was a
    /// visible part of an ingester's profile under load.
    static ZSTD_CONTEXT: std::cell::RefCell<Option<zstd::zstd_safe::CCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A block compression codec.
///
/// Names and id bytes are Loki's (`ingester.chunk_encoding`), so configuration
/// carries over unchanged. The LZ4 variants keep Loki's block-size suffix in
/// their Rust names (`Lz4_64k` … `Lz4_4M`), hence `non_camel_case_types`; they
/// all write the LZ4 frame format with that maximum block size.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// No compression (`none`, id 0).
    None,
    /// gzip at the default level (`gzip`, id 1).
    Gzip,
    /// LZ4 frames with 64 KiB blocks (`lz4-64k`, id 3).
    Lz4_64k,
    /// LZ4 frames with 256 KiB blocks (`lz4-256k`, id 5).
    Lz4_256k,
    /// LZ4 frames with 1 MiB blocks (`lz4-1M`, id 6).
    Lz4_1M,
    /// LZ4 frames with 4 MiB blocks (`lz4`, id 7).
    Lz4_4M,
    /// Snappy framed stream format (`snappy`, id 4).
    Snappy,
    /// Raw DEFLATE at the default level (`flate`, id 8).
    Flate,
    /// Zstandard (`zstd`, id 9); the default. Written at
    /// [`DEFAULT_ZSTD_LEVEL`] unless the writer picks another level (see
    /// [`Codec::compress_with_level`]), up to level 15 with a minimum match
    /// length of 6; neither is stored and any level decodes the same way.
    #[default]
    Zstd,
}

/// Loki's encoding names, in Loki's order, as listed in error messages.
const SUPPORTED: &str = "none, gzip, lz4-64k, snappy, lz4-256k, lz4-1M, lz4, flate, zstd";

/// The zstd level blocks are written at unless the writer chooses another
/// (`MemChunk::with_zstd_level`). Only the encoder uses it: the level is not part
/// of the format, so chunks written at any level decode alike.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The shortest match zstd's encoder looks for at levels up to
/// [`ZSTD_MIN_MATCH_MAX_LEVEL`].
///
/// For inputs of a block's size zstd's fast levels look for matches of 4 or 5
/// bytes; in logs full of random ids (trace ids, hex, numbers) such short
/// matches cost more than the literals they replace. 6 is what zstd itself
/// uses at level 1 on large inputs: at level 3 a version-2 block's lines come
/// out 4–10% smaller on the bench data sets, and compress faster
/// (`docs/performance.md`). An encoder setting only: it is not stored.
const ZSTD_MIN_MATCH: u32 = 6;
/// From level 16 on, zstd's optimal parsers price short matches themselves
/// and forcing 6 costs up to 40% (highly regular input at level 22).
const ZSTD_MIN_MATCH_MAX_LEVEL: i32 = 15;

impl Codec {
    /// Every codec, in id order.
    pub const ALL: [Codec; 9] = [
        Codec::None,
        Codec::Gzip,
        Codec::Lz4_64k,
        Codec::Snappy,
        Codec::Lz4_256k,
        Codec::Lz4_1M,
        Codec::Lz4_4M,
        Codec::Flate,
        Codec::Zstd,
    ];

    /// Returns Loki's name for the codec (`lz4` for [`Codec::Lz4_4M`]).
    pub fn as_str(&self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Lz4_64k => "lz4-64k",
            Codec::Lz4_256k => "lz4-256k",
            Codec::Lz4_1M => "lz4-1M",
            Codec::Lz4_4M => "lz4",
            Codec::Snappy => "snappy",
            Codec::Flate => "flate",
            Codec::Zstd => "zstd",
        }
    }

    /// Returns the codec's id byte in the chunk format (Loki's values).
    pub fn id(&self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Lz4_64k => 3,
            Codec::Snappy => 4,
            Codec::Lz4_256k => 5,
            Codec::Lz4_1M => 6,
            Codec::Lz4_4M => 7,
            Codec::Flate => 8,
            Codec::Zstd => 9,
        }
    }

    /// Returns the codec with id byte `id`, or [`ChunkError::UnknownCodec`].
    pub fn from_id(id: u8) -> Result<Codec, ChunkError> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.id() == id)
            .ok_or(ChunkError::UnknownCodec(id))
    }

    /// Appends the compressed form of `input` to `out`, zstd at
    /// [`DEFAULT_ZSTD_LEVEL`].
    pub fn compress(&self, input: &[u8], out: &mut Vec<u8>) {
        self.compress_with_level(input, DEFAULT_ZSTD_LEVEL, out);
    }

    /// Like [`Codec::compress`], with zstd at `zstd_level` (clamped to zstd's
    /// range, 1 to 22 — negative "fast" levels are not used). The other codecs
    /// have a single setting and ignore it. The output decodes with
    /// [`Codec::decompress`] whatever the level.
    pub fn compress_with_level(&self, input: &[u8], zstd_level: i32, out: &mut Vec<u8>) {
        // Every encoder below writes into a Vec, which cannot fail, and none of
        // them can reject its input, so an error here is a bug, not bad data.
        const INFALLIBLE: &str = "compressing into a Vec<u8> cannot fail";
        match self {
            Codec::None => out.extend_from_slice(input),
            Codec::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::default());
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.finish().expect(INFALLIBLE);
            }
            Codec::Flate => {
                let mut encoder =
                    flate2::write::DeflateEncoder::new(out, flate2::Compression::default());
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.finish().expect(INFALLIBLE);
            }
            Codec::Lz4_64k | Codec::Lz4_256k | Codec::Lz4_1M | Codec::Lz4_4M => {
                let block_size = match self {
                    Codec::Lz4_64k => lz4_flex::frame::BlockSize::Max64KB,
                    Codec::Lz4_256k => lz4_flex::frame::BlockSize::Max256KB,
                    Codec::Lz4_1M => lz4_flex::frame::BlockSize::Max1MB,
                    _ => lz4_flex::frame::BlockSize::Max4MB,
                };
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(block_size)
                    .content_size(Some(input.len() as u64));
                let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.finish().expect(INFALLIBLE);
            }
            Codec::Snappy => {
                let mut encoder = snap::write::FrameEncoder::new(out);
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.flush().expect(INFALLIBLE);
            }
            Codec::Zstd => ZSTD_CONTEXT.with_borrow_mut(|context| {
                let level = zstd_level.clamp(1, 22);
                let context = context.get_or_insert_with(zstd::zstd_safe::CCtx::create);
                // Every block starts from zstd's defaults, whatever the
                // previous one on this thread set.
                context
                    .reset(zstd::zstd_safe::ResetDirective::SessionAndParameters)
                    .map_err(zstd::zstd_safe::get_error_name)
                    .expect("resetting an idle zstd context cannot fail");
                let mut encoder = zstd::stream::write::Encoder::with_context(out, context);
                encoder
                    .set_parameter(zstd::stream::raw::CParameter::CompressionLevel(level))
                    .expect("the level is clamped to zstd's range");
                if level <= ZSTD_MIN_MATCH_MAX_LEVEL {
                    encoder
                        .set_parameter(zstd::stream::raw::CParameter::MinMatch(ZSTD_MIN_MATCH))
                        .expect("6 is within zstd's minimum match range");
                }
                encoder
                    .set_pledged_src_size(Some(input.len() as u64))
                    .expect(INFALLIBLE);
                encoder.include_contentsize(true).expect(INFALLIBLE);
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.finish().expect(INFALLIBLE);
            }),
        }
    }

    /// Appends the decompressed form of `input` to `out`.
    ///
    /// Fails with [`ChunkError::TooLarge`] rather than appending more than
    /// `max_size` bytes, and with [`ChunkError::Decompress`] on corrupt input;
    /// it never panics. On error `out` is truncated back to its original length.
    pub fn decompress(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_size: usize,
    ) -> Result<(), ChunkError> {
        let original_len = out.len();
        let result = self.decompress_into(input, out, max_size);
        if result.is_err() {
            out.truncate(original_len);
        }
        result
    }

    fn decompress_into(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_size: usize,
    ) -> Result<(), ChunkError> {
        match self {
            Codec::None => {
                if input.len() > max_size {
                    return Err(ChunkError::TooLarge);
                }
                out.extend_from_slice(input);
                Ok(())
            }
            Codec::Gzip => self.read_bounded(flate2::read::GzDecoder::new(input), out, max_size),
            Codec::Flate => {
                self.read_bounded(flate2::read::DeflateDecoder::new(input), out, max_size)
            }
            Codec::Lz4_64k | Codec::Lz4_256k | Codec::Lz4_1M | Codec::Lz4_4M => {
                self.read_bounded(lz4_flex::frame::FrameDecoder::new(input), out, max_size)
            }
            Codec::Snappy => self.read_bounded(snap::read::FrameDecoder::new(input), out, max_size),
            Codec::Zstd => {
                // Sluice writes one frame with its content size: decompress
                // it in one call into exactly that much room, with this
                // thread's reused context (creating one per block cost ~5%
                // of a scan).
                if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(input) {
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    if size > max_size {
                        return Err(ChunkError::TooLarge);
                    }
                    return self.zstd_one_shot(input, out, size);
                }
                let decoder = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|error| self.failure(&error))?;
                self.read_bounded(decoder, out, max_size)
            }
        }
    }

    /// Decompresses a zstd frame announcing `size` bytes; a frame that
    /// holds more or less than it announced is an error.
    fn zstd_one_shot(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        size: usize,
    ) -> Result<(), ChunkError> {
        thread_local! {
            static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let start = out.len();
        // Exactly `size` bytes of room after `out`'s end: a frame holding
        // more fails instead of growing it.
        out.resize(start + size, 0);
        let written = DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decompressor = match slot.as_mut() {
                Some(decompressor) => decompressor,
                None => slot.insert(zstd::bulk::Decompressor::new()?),
            };
            decompressor.decompress_to_buffer(input, &mut out[start..])
        });
        match written {
            Ok(written) if written == size => Ok(()),
            Ok(written) => Err(self.failure(&std::io::Error::other(format!(
                "frame announced {size} bytes and held {written}"
            )))),
            Err(error) => Err(self.failure(&error)),
        }
    }

    fn read_bounded(
        &self,
        decoder: impl Read,
        out: &mut Vec<u8>,
        max_size: usize,
    ) -> Result<(), ChunkError> {
        let limit = u64::try_from(max_size)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = decoder
            .take(limit)
            .read_to_end(out)
            .map_err(|error| self.failure(&error))?;
        if read > max_size {
            return Err(ChunkError::TooLarge);
        }
        Ok(())
    }

    fn failure(&self, error: &std::io::Error) -> ChunkError {
        ChunkError::Decompress {
            codec: *self,
            reason: error.to_string(),
        }
    }
}

impl fmt::Display for Codec {
    /// Writes Loki's name for the codec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Codec {
    type Err = ChunkError;

    /// Parses one of Loki's encoding names, ignoring ASCII case as Loki does.
    fn from_str(name: &str) -> Result<Codec, ChunkError> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| ChunkError::UnknownCodecName {
                name: name.to_owned(),
                supported: SUPPORTED,
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        for index in 0..5_000 {
            data.extend_from_slice(
                format!("ts=2024-01-01T00:00:{index:05} level=info msg=\"request {index}\" status=200\n")
                    .as_bytes(),
            );
        }
        data
    }

    #[test]
    fn names_and_ids_match_loki() {
        let expected = [
            ("none", 0),
            ("gzip", 1),
            ("lz4-64k", 3),
            ("snappy", 4),
            ("lz4-256k", 5),
            ("lz4-1M", 6),
            ("lz4", 7),
            ("flate", 8),
            ("zstd", 9),
        ];
        for (name, id) in expected {
            let codec: Codec = name.parse().expect("valid name");
            assert_eq!(codec.as_str(), name);
            assert_eq!(codec.to_string(), name);
            assert_eq!(codec.id(), id);
            assert_eq!(Codec::from_id(id), Ok(codec));
        }
        assert_eq!("LZ4-1m".parse::<Codec>(), Ok(Codec::Lz4_1M));
        assert_eq!(Codec::default(), Codec::Zstd);
    }

    #[test]
    fn rejects_unknown_names_and_ids() {
        let error = "brotli".parse::<Codec>().expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "invalid encoding: brotli, supported: none, gzip, lz4-64k, snappy, lz4-256k, lz4-1M, lz4, flate, zstd"
        );
        assert_eq!(Codec::from_id(2), Err(ChunkError::UnknownCodec(2)));
        assert_eq!(Codec::from_id(255), Err(ChunkError::UnknownCodec(255)));
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in Codec::ALL {
            for input in [&data[..], b"", b"x"] {
                let mut compressed = b"prefix".to_vec();
                codec.compress(input, &mut compressed);
                let mut decompressed = b"keep".to_vec();
                codec
                    .decompress(&compressed[6..], &mut decompressed, input.len())
                    .unwrap_or_else(|error| panic!("{codec}: {error}"));
                assert_eq!(&decompressed[4..], input, "{codec}");
            }
            if codec != Codec::None {
                let mut compressed = Vec::new();
                codec.compress(&data, &mut compressed);
                assert!(compressed.len() < data.len() / 3, "{codec} should compress");
            }
        }
    }

    /// What a fresh zstd context writes for `input` at `level`.
    fn zstd_fresh(input: &[u8], level: i32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut out, level).expect("context");
        if level <= ZSTD_MIN_MATCH_MAX_LEVEL {
            encoder
                .set_parameter(zstd::stream::raw::CParameter::MinMatch(ZSTD_MIN_MATCH))
                .expect("min match");
        }
        encoder
            .set_pledged_src_size(Some(input.len() as u64))
            .expect("pledge");
        encoder.include_contentsize(true).expect("content size");
        encoder.write_all(input).expect("write");
        encoder.finish().expect("finish");
        out
    }

    #[test]
    fn a_reused_zstd_context_writes_what_a_fresh_one_does() {
        let data = sample();
        // Alternate levels with and without the minimum match setting, so
        // nothing may carry over from one block to the next.
        for (level, input) in [
            (3, &data[..]),
            (19, &data[..]),
            (3, b"x"),
            (1, &data[..500]),
        ] {
            let mut compressed = Vec::new();
            Codec::Zstd.compress_with_level(input, level, &mut compressed);
            assert_eq!(compressed, zstd_fresh(input, level), "level {level}");
        }
    }

    #[test]
    fn zstd_levels_decode_alike() {
        let data = sample();
        let mut sizes = Vec::new();
        for level in [-5, 0, 1, 3, 9, 19, 22, 99] {
            let mut compressed = Vec::new();
            Codec::Zstd.compress_with_level(&data, level, &mut compressed);
            let mut out = Vec::new();
            Codec::Zstd
                .decompress(&compressed, &mut out, data.len())
                .unwrap_or_else(|error| panic!("level {level}: {error}"));
            assert_eq!(out, data, "level {level}");
            sizes.push(compressed.len());
        }
        assert!(sizes[6] < sizes[2], "level 22 beats level 1: {sizes:?}");
        assert_eq!(sizes[0], sizes[2], "levels below 1 clamp to 1");
        assert_eq!(sizes[6], sizes[7], "levels above 22 clamp to 22");
        let (mut default, mut explicit) = (Vec::new(), Vec::new());
        Codec::Zstd.compress(&data, &mut default);
        Codec::Zstd.compress_with_level(&data, DEFAULT_ZSTD_LEVEL, &mut explicit);
        assert_eq!(default, explicit, "compress uses DEFAULT_ZSTD_LEVEL");
        // Other codecs have one setting: the level changes nothing.
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4_64k] {
            let (mut low, mut high) = (Vec::new(), Vec::new());
            codec.compress_with_level(&data, 1, &mut low);
            codec.compress_with_level(&data, 19, &mut high);
            assert_eq!(low, high, "{codec}");
        }
    }

    #[test]
    fn zstd_skips_short_matches_in_random_ids() {
        // Log lines whose ids are random hex: the minimum match length of 6
        // beats zstd's own level-3 choice for inputs this size.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut data = Vec::new();
        for index in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(
                format!(
                    "level=info msg=\"request {index}\" trace_id={state:016x}{:016x}\n",
                    state.rotate_left(29)
                )
                .as_bytes(),
            );
        }
        let mut ours = Vec::new();
        Codec::Zstd.compress(&data, &mut ours);
        let plain = zstd::bulk::compress(&data, DEFAULT_ZSTD_LEVEL).expect("compress");
        assert!(
            ours.len() < plain.len(),
            "{} vs {}",
            ours.len(),
            plain.len()
        );
        let mut out = Vec::new();
        Codec::Zstd
            .decompress(&ours, &mut out, data.len())
            .expect("valid");
        assert_eq!(out, data);
    }

    #[test]
    fn refuses_to_exceed_max_size() {
        let data = sample();
        for codec in Codec::ALL {
            let mut compressed = Vec::new();
            codec.compress(&data, &mut compressed);
            let mut out = Vec::new();
            assert_eq!(
                codec.decompress(&compressed, &mut out, data.len() - 1),
                Err(ChunkError::TooLarge),
                "{codec}"
            );
            assert!(out.is_empty(), "{codec}: out restored on error");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let garbage = b"this is certainly not a compressed stream \x00\x01\x02\xff";
        for codec in Codec::ALL.into_iter().filter(|codec| *codec != Codec::None) {
            let mut out = Vec::new();
            let result = codec.decompress(garbage, &mut out, 1 << 20);
            assert!(
                matches!(result, Err(ChunkError::Decompress { codec: failed, .. }) if failed == codec),
                "{codec}: {result:?}"
            );
        }
    }

    #[test]
    fn truncated_and_flipped_streams_are_errors_not_panics() {
        let data = sample();
        for codec in Codec::ALL.into_iter().filter(|codec| *codec != Codec::None) {
            let mut compressed = Vec::new();
            codec.compress(&data, &mut compressed);
            let truncated = &compressed[..compressed.len() / 2];
            let mut out = Vec::new();
            assert!(
                codec.decompress(truncated, &mut out, data.len()).is_err(),
                "{codec}"
            );
            for position in (0..compressed.len()).step_by(97) {
                let mut flipped = compressed.clone();
                flipped[position] ^= 0x5a;
                let mut out = Vec::new();
                let _ = codec.decompress(&flipped, &mut out, data.len());
                assert!(out.len() <= data.len());
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for codec in Codec::ALL {
                let mut out = Vec::new();
                let _ = codec.decompress(&bytes, &mut out, 1 << 16);
                prop_assert!(out.len() <= 1 << 16);
            }
        }

        #[test]
        fn random_data_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            for codec in Codec::ALL {
                let mut compressed = Vec::new();
                codec.compress(&bytes, &mut compressed);
                let mut out = Vec::new();
                prop_assert!(codec.decompress(&compressed, &mut out, bytes.len()).is_ok());
                prop_assert_eq!(&out, &bytes);
            }
        }
    }
}
