use proptest::prelude::*;

use super::super::tests::{build, refs};
use super::super::{decode_block, decode_block_with_hint, BlockMeta, DecodedBlock};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::format::ChunkFormat;
use crate::hint::LineHint;

/// The lines of a block decoded with `hint`.
fn hinted(lines: &[(i64, &str)], hint: &LineHint) -> Vec<String> {
    let block = build(ChunkFormat::V3, Codec::Zstd, lines);
    let decoded =
        decode_block_with_hint(ChunkFormat::V3, Codec::Zstd, &block.data, &block.meta, hint)
            .expect("valid");
    decoded
        .entries
        .iter()
        .map(|entry| decoded.text[entry.start..entry.end()].to_owned())
        .collect()
}

fn decode(codec: Codec, data: &[u8], meta: &BlockMeta) -> Result<DecodedBlock, ChunkError> {
    decode_block(ChunkFormat::V3, codec, data, meta)
}

fn round_trip(lines: &[(i64, &str)]) {
    for codec in Codec::ALL {
        let block = build(ChunkFormat::V3, codec, lines);
        let decoded = decode(codec, &block.data, &block.meta).expect("valid");
        let (text, entries) = refs(lines);
        assert_eq!(decoded.text, text, "{codec}");
        assert_eq!(decoded.entries, entries, "{codec}");
    }
}

#[test]
fn layout_is_timestamps_templates_then_columns() {
    let block = build(
        ChunkFormat::V3,
        Codec::None,
        &[(10, "took 5 ms"), (12, "took 6 ms"), (300, "done")],
    );
    let expected: Vec<u8> = [
        &[0x06, 0x14][..], // section lengths
        // First ts 10; differences 2 and 288 need 2 bytes: low plane, high plane.
        &[0x14, 0x02, 0x02, 0x20, 0x00, 0x01],
        &[0x02], // 2 templates
        &[0x09, b't', b'o', b'o', b'k', b' ', 0x01, b' ', b'm', b's'],
        &[0x04, b'd', b'o', b'n', b'e'],
        &[0x00, 0x00, 0x01],       // the template of each entry
        &[0x08],                   // one column (after "took "): 4 bytes, no ids
        &[b'5', 0x00, 0x03, 0x02], // 5, then 6 as the difference +1
    ]
    .concat();
    assert_eq!(&*block.data, &expected[..]);
    // The logical size is the version-1 layout's.
    assert_eq!(block.meta.uncompressed_size, 11 + 11 + 7);
}

#[test]
fn awkward_lines_round_trip() {
    round_trip(&[
        (i64::MIN, "min"),
        (i64::MIN, ""),
        (
            -1,
            "\u{1}\u{2}\u{1}\u{2}\u{2} marker and escape bytes 12 \u{2}",
        ),
        (0, "é 9 ü x1y 0x7f"),
        (0, "007 008 009 010 0999 1000"),
        (
            1,
            "big 123456789012345678901234567890 and 999999999999999999",
        ),
        (2, "end with a number 42"),
        (3, "42"),
        (i64::MAX, "max\n\ttab and newline\u{0}nul 3"),
        (i64::MAX, "max again"),
    ]);
}

#[test]
fn repeated_ids_and_counters_round_trip() {
    let lines: Vec<(i64, String)> = (0..500i64)
        .map(|index| {
            let trace = format!(
                "{:032x}",
                (index / 3 + 1) as u128 * 0x9e37_79b9_7f4a_7c15_u128
            );
            (
                1_700_000_000_000_000_000 + index * 1_234_567,
                format!(
                    "2024-05-17 10:{:02}:{:02}.{:03} req={index:05} trace={trace} took {} ms",
                    index / 60 % 60,
                    index % 60,
                    index * 7 % 1000,
                    index * 31 % 17
                ),
            )
        })
        .collect();
    let lines: Vec<(i64, &str)> = lines
        .iter()
        .map(|(ts, line)| (*ts, line.as_str()))
        .collect();
    round_trip(&lines);
    // More distinct ids than a column remembers, coming back later.
    let ids: Vec<(i64, String)> = (0..200i64)
        .map(|index| {
            (
                index,
                format!("id {:016x}", (index % 40 + 1) as u64 * 0xdead_beef_1234),
            )
        })
        .collect();
    let ids: Vec<(i64, &str)> = ids.iter().map(|(ts, line)| (*ts, line.as_str())).collect();
    round_trip(&ids);
}

#[test]
fn ids_and_counters_take_less_than_their_text() {
    let lines: Vec<(i64, String)> = (0..300i64)
        .map(|index| {
            (
                index,
                format!(
                    "seq={} trace={:032x}",
                    1_000_000 + index,
                    (index / 3 + 1) as u128 * 0x1234_5678_9abc_def1_u128
                ),
            )
        })
        .collect();
    let lines: Vec<(i64, &str)> = lines
        .iter()
        .map(|(ts, line)| (*ts, line.as_str()))
        .collect();
    let block = build(ChunkFormat::V3, Codec::None, &lines);
    // Uncompressed, each line stores a 2-byte difference instead of 8 bytes
    // of counter, and two of three lines a 2-byte reference instead of 33
    // bytes of trace id.
    let text: usize = lines.iter().map(|(_, line)| line.len()).sum();
    assert!(
        block.data.len() * 2 < text,
        "{} of {text}",
        block.data.len()
    );
}

#[test]
fn rejects_malformed_blocks() {
    let lines = [(1i64, "a 1"), (2, "a 2")];
    let block = build(ChunkFormat::V3, Codec::None, &lines);
    assert!(decode(Codec::None, &block.data, &block.meta).is_ok());
    let valid = block.data.to_vec();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "timestamp column length"),
        (valid[..valid.len() - 1].to_vec(), "column"),
        ([&valid[..], &[0x00]].concat(), "exceeds the allowed size"),
        ([&valid[..2], &[0x7f]].concat(), "runs past"),
    ];
    for (data, expected) in cases {
        let error = decode(Codec::None, &data, &block.meta).expect_err(expected);
        assert!(error.to_string().contains(expected), "{error} / {expected}");
    }
    let mut wrong_count = block.meta;
    wrong_count.entries = 3;
    let error = decode(Codec::None, &valid, &wrong_count).expect_err("count");
    assert!(error.to_string().contains("entry count"), "{error}");
}

#[test]
fn differences_and_references_are_checked() {
    let meta = |entries| BlockMeta {
        entries,
        min_ts: 0,
        max_ts: 0,
        uncompressed_size: 3,
        checksum: 0,
    };
    // One entry at ts 0 with template "\x01" and a one-column section.
    let block = |column: &[u8]| {
        let mut data = vec![0x02, 0x00]; // lengths patched below
        let timestamps = [0x00, 0x00];
        // The column holds ids: references are allowed.
        let mut structure = vec![0x01, 0x01, 0x01, 0x00, (column.len() as u8) << 1 | 1];
        data[1] = structure.len() as u8;
        data.extend_from_slice(&timestamps);
        data.append(&mut structure);
        data.extend_from_slice(column);
        data
    };
    assert_eq!(
        decode(Codec::None, &block(b"7\0"), &meta(1))
            .expect("valid")
            .text,
        "7"
    );
    for (column, expected) in [
        (&[0x03, 0x02][..], "without a number before"),
        (&[0x02, 0x00][..], "reference"),
        (&[b'7'][..], "unterminated"),
        (&[][..], "fewer values"),
    ] {
        let error = decode(Codec::None, &block(column), &meta(1)).expect_err(expected);
        assert!(error.to_string().contains(expected), "{error} / {expected}");
    }
}

#[test]
fn a_hint_skips_lines_and_blocks_that_cannot_hold_its_words() {
    let lines = [
        (1, "GET /cart 200 in 5 ms"),
        (2, "error talking to db7 after 3 tries"),
        (3, "GET /cart 200 in 6 ms"),
        (4, "retry id=a1b2c3d4e5f60718 errno 9"),
    ];
    // "error" is in one template's text only.
    assert_eq!(
        hinted(&lines, &LineHint::contains(["error"])),
        ["error talking to db7 after 3 tries"]
    );
    // Nowhere: the block is not rebuilt at all.
    assert!(hinted(&lines, &LineHint::contains(["needle"])).is_empty());
    // "db" is inside a variable's stored value: nothing can be skipped.
    assert_eq!(hinted(&lines, &LineHint::contains(["db"])).len(), 4);
    // Not only letters: no skipping either (the caller filters).
    assert_eq!(hinted(&lines, &LineHint::contains(["in 5"])).len(), 4);
    // Every word must be possible.
    assert!(hinted(&lines, &LineHint::contains(["error", "cart"])).is_empty());
    assert_eq!(hinted(&lines, &LineHint::default()).len(), 4);
}

fn line() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[a-z]{1,6}",
        "[0-9]{1,20}",
        "[0-9a-f]{16,32}",
        "[ =:,.\"{}\\[\\]/-]{1,3}",
        Just("\u{1}".to_owned()),
        Just("\u{2}".to_owned()),
        Just("é".to_owned()),
    ];
    proptest::collection::vec(token, 0..12).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn any_lines_round_trip(
        lines in proptest::collection::vec((0i64..1_000_000, line()), 1..60),
        codec_index in 0usize..Codec::ALL.len(),
    ) {
        let mut lines = lines;
        lines.sort_by_key(|(ts, _)| *ts);
        let lines: Vec<(i64, &str)> = lines.iter().map(|(ts, line)| (*ts, line.as_str())).collect();
        let codec = Codec::ALL[codec_index];
        let block = build(ChunkFormat::V3, codec, &lines);
        let decoded = decode(codec, &block.data, &block.meta).expect("valid");
        let (text, entries) = refs(&lines);
        prop_assert_eq!(decoded.text, text);
        prop_assert_eq!(decoded.entries, entries);
    }

    /// A hint never drops a line that holds its words, and returns only
    /// lines of the block, in order.
    #[test]
    fn hints_keep_every_line_holding_their_words(
        lines in proptest::collection::vec((0i64..1_000_000, line()), 1..60),
        word in prop_oneof![Just("ab"), Just("e"), Just("cafe"), Just("x1"), Just("z")],
    ) {
        let mut lines = lines;
        lines.sort_by_key(|(ts, _)| *ts);
        let lines: Vec<(i64, &str)> = lines.iter().map(|(ts, line)| (*ts, line.as_str())).collect();
        let got = hinted(&lines, &LineHint::contains([word]));
        let mut rest = got.iter().peekable();
        for (_, line) in &lines {
            let returned = rest.next_if(|got| *got == line).is_some();
            prop_assert!(returned || !line.contains(word), "{line:?} holds {word:?} and was skipped");
        }
        prop_assert!(rest.next().is_none(), "a returned line is not a line of the block, in order");
    }

    #[test]
    fn mutated_blocks_never_panic(
        lines in proptest::collection::vec((0i64..1_000, line()), 1..20),
        position in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut lines = lines;
        lines.sort_by_key(|(ts, _)| *ts);
        let lines: Vec<(i64, &str)> = lines.iter().map(|(ts, line)| (*ts, line.as_str())).collect();
        let block = build(ChunkFormat::V3, Codec::None, &lines);
        let mut data = block.data.to_vec();
        let at = position.index(data.len());
        data[at] ^= xor;
        let _ = decode(Codec::None, &data, &block.meta);
        let _ = decode(Codec::None, &data[..at], &block.meta);
    }
}
