//! Chunks written by the version-1 writer before format version 2 existed
//! (`tests/fixtures/v1-*.chunk`, made at commit 88ddaea with 60 entries,
//! block size 700, target size 0, a manual cut after the 26th entry, and the
//! rest left in the head) must stay readable, entry for entry.

use sluice_chunk::{ChunkFormat, Codec, Direction, MemChunk, CHUNK_FORMAT_V1};

/// The entries the fixtures were written from, in append order: out-of-order
/// timestamps with duplicates, multi-byte characters.
fn fixture_entries() -> Vec<(i64, String)> {
    (0..60i64)
        .map(|index| {
            let ts = 1_700_000_000_000_000_000 + ((index * 7919) % 23) * 1_000_003;
            let line = format!("level=info i={index} msg=\"héllo wörld {}\" 🚀", index % 5);
            (ts, line)
        })
        .collect()
}

/// Stable sort by timestamp: the order a chunk returns entries going forward
/// when every duplicate timestamp's entries were appended in index order.
fn expected_forward() -> Vec<(i64, String)> {
    let mut entries = fixture_entries();
    entries.sort_by_key(|(ts, _)| *ts);
    entries
}

const FIXTURES: [(&str, &[u8], Codec); 2] = [
    (
        "v1-zstd",
        include_bytes!("fixtures/v1-zstd.chunk"),
        Codec::Zstd,
    ),
    (
        "v1-snappy",
        include_bytes!("fixtures/v1-snappy.chunk"),
        Codec::Snappy,
    ),
];

fn read(chunk: &MemChunk, from: i64, through: i64, direction: Direction) -> Vec<(i64, String)> {
    chunk
        .iter(from, through, direction)
        .expect("iterator")
        .collect_all()
}

#[test]
fn v1_fixtures_decode_entry_for_entry() {
    let forward = expected_forward();
    for (name, bytes, codec) in FIXTURES {
        assert_eq!(bytes[4], CHUNK_FORMAT_V1, "{name}");
        let chunk = MemChunk::decode(bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(chunk.format(), ChunkFormat::V1, "{name}");
        assert_eq!(chunk.codec(), codec, "{name}");
        assert_eq!(chunk.entries(), 60, "{name}");
        assert!(chunk.blocks() >= 3, "{name}: {} blocks", chunk.blocks());
        assert_eq!(
            chunk.bounds(),
            Some((forward[0].0, forward[59].0)),
            "{name}"
        );
        assert_eq!(
            read(&chunk, i64::MIN, i64::MAX, Direction::Forward),
            forward,
            "{name}"
        );
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(
            read(&chunk, i64::MIN, i64::MAX, Direction::Backward),
            backward,
            "{name}"
        );
        // A time range query skips blocks and keeps order.
        let (from, through) = (forward[10].0, forward[40].0);
        let window: Vec<(i64, String)> = forward
            .iter()
            .filter(|(ts, _)| (from..through).contains(ts))
            .cloned()
            .collect();
        assert!(!window.is_empty());
        assert_eq!(
            read(&chunk, from, through, Direction::Forward),
            window,
            "{name}"
        );
        // Unchanged v1 blocks re-encode to the very same bytes.
        assert_eq!(chunk.encode(), bytes, "{name}");
    }
}

#[test]
fn v1_fixture_appended_to_stays_v1_and_readable() {
    let (_, bytes, _) = FIXTURES[0];
    let mut chunk = MemChunk::decode(bytes).expect("fixture");
    chunk.append(1, "before everything");
    let encoded = chunk.encode();
    assert_eq!(encoded[4], CHUNK_FORMAT_V1);
    let decoded = MemChunk::decode(&encoded).expect("round trip");
    let all = read(&decoded, i64::MIN, i64::MAX, Direction::Forward);
    assert_eq!(all.len(), 61);
    assert_eq!(all[0], (1, "before everything".to_owned()));
    assert_eq!(all[1..], expected_forward()[..]);
}

#[test]
fn v2_chunk_of_the_same_entries_cuts_the_same_blocks_and_reads_the_same() {
    for (name, bytes, codec) in FIXTURES {
        let mut chunk = MemChunk::new(codec, 700, 0);
        for (index, (ts, line)) in fixture_entries().into_iter().enumerate() {
            chunk.append(ts, &line);
            if index == 25 {
                chunk.cut_block();
            }
        }
        let v2 = chunk.encode();
        assert_eq!(chunk.format(), ChunkFormat::V2);
        let v1 = MemChunk::decode(bytes).expect("fixture");
        let v2_decoded = MemChunk::decode(&v2).expect("v2");
        assert_eq!(v2_decoded.block_metas().len(), v1.block_metas().len());
        for (left, right) in v1.block_metas().iter().zip(v2_decoded.block_metas()) {
            assert_eq!(
                (
                    left.entries,
                    left.min_ts,
                    left.max_ts,
                    left.uncompressed_size
                ),
                (
                    right.entries,
                    right.min_ts,
                    right.max_ts,
                    right.uncompressed_size
                ),
                "{name}: blocks are cut at the same entries"
            );
        }
        assert_eq!(
            read(&v2_decoded, i64::MIN, i64::MAX, Direction::Forward),
            expected_forward(),
            "{name}"
        );
    }
}
